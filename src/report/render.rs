//! Renderings of a report for people and tools: Markdown (a summary a lead reads in 30
//! seconds, then the details, diff-friendly) and JUnit XML (one testsuite per exercise, one
//! testcase per expectation). PURE: the same report gives the same bytes.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::model::{ClauseVerdict, FollowUpStatus, Outcome, Report};
use super::text::markdown as item;
use super::text::markdown_inline as cell;
pub use super::text::xml;

/// `CONFIRMED`, `REFUTED`…
pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Confirmed => "CONFIRMED",
        Outcome::Refuted => "REFUTED",
        Outcome::Inconclusive => "INCONCLUSIVE",
        Outcome::Aborted => "ABORTED",
        Outcome::Refused => "REFUSED",
    }
}

pub fn verdict_word(verdict: ClauseVerdict) -> &'static str {
    match verdict {
        ClauseVerdict::Confirmed => "confirmed",
        ClauseVerdict::Refuted => "refuted",
        ClauseVerdict::Inconclusive => "inconclusive",
    }
}

/// Seconds for people: `—`, `850ms`, `12.3s`, `2m 05s`.
pub fn seconds(s: Option<f64>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s < 1.0 => format!("{:.0}ms", s * 1000.0),
        Some(s) if s < 60.0 => format!("{s:.1}s"),
        Some(s) => format!("{}m {:02}s", (s / 60.0).floor(), (s % 60.0).round() as u64 % 60),
    }
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Seconds after the exercise started: `+12.3s`.
pub fn offset(report: &Report, at: DateTime<Utc>) -> String {
    format!("+{:.1}s", (at - report.started_at).num_milliseconds() as f64 / 1000.0)
}

pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".into(), |s| format!("{:.1}%", s * 100.0))
}

/// `3 of 4 held` and the like.
pub fn held_count(report: &Report) -> String {
    let held = report
        .expectations
        .iter()
        .filter(|e| e.verdict == ClauseVerdict::Confirmed)
        .count();
    format!("{held} of {} expectations held", report.expectations.len())
}

/// What hurt: availability and the blast radius, said in one line.
pub fn impact(report: &Report) -> String {
    let radius = &report.metrics.blast_radius;
    let mut parts = vec![format!(
        "{} of {} candidate target(s) hit",
        radius.hit, radius.candidates
    )];
    if let Some(a) = report.metrics.availability {
        parts.push(format!(
            "{} of http probe samples succeeded during the fault",
            percent(Some(a))
        ));
    }
    parts.join("; ")
}

/// The Markdown report.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let scenario = &report.scenario;
    let spec = &scenario.spec;
    let _ = writeln!(
        out,
        "# {} — {}\n",
        item(&scenario.metadata.name),
        outcome_word(report.outcome)
    );
    let _ = writeln!(out, "> **Hypothesis:** {}\n", cell(&spec.hypothesis));
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(
        out,
        "| Verdict | **{}** ({}) |",
        outcome_word(report.outcome),
        held_count(report)
    );
    let _ = writeln!(
        out,
        "| Exercise | {}, {} |",
        cell(&report.exercise),
        timestamp(report.started_at)
    );
    if let Some(owner) = &spec.owner {
        let runbook = spec
            .runbook
            .as_ref()
            .map_or(String::new(), |r| match super::text::markdown_link(r) {
                Some(link) => format!(" · [runbook]({link})"),
                None => format!(" · runbook: {}", cell(r)),
            });
        let _ = writeln!(out, "| Owner | {}{runbook} |", cell(owner));
    }
    for (label, value) in [
        ("Time to detect", report.metrics.time_to_detect_s),
        ("Time to remediate", report.metrics.time_to_remediate_s),
        ("Time to recover", report.metrics.time_to_recover_s),
    ] {
        let _ = writeln!(out, "| {label} | {} |", seconds(value));
    }
    if let Some(abort) = &report.abort {
        let _ = writeln!(
            out,
            "| Aborted | {} (everything reverted in {}) |",
            cell(&abort.reason),
            seconds(report.metrics.abort_latency_s)
        );
    }
    let _ = writeln!(out, "| Impact | {} |", impact(report));
    if let Some(line) = beyond(report) {
        let _ = writeln!(out, "| Beyond the targets | {} |", cell(&line));
    }
    let open = report
        .follow_ups
        .iter()
        .filter(|f| f.status == FollowUpStatus::Open)
        .count();
    let _ = writeln!(
        out,
        "| Follow-ups | {open} open, {} done |",
        report.follow_ups.len() - open
    );
    if report.confidence_before.is_some() || report.confidence_after.is_some() {
        let level = |c: Option<u8>| c.map_or("—".into(), |c| format!("{c}/5"));
        let _ = writeln!(
            out,
            "| Confidence | {} before → {} after |",
            level(report.confidence_before),
            level(report.confidence_after)
        );
    }
    if !report.refusals.is_empty() {
        let _ = writeln!(out, "\n## Refused\n");
        for r in &report.refusals {
            let _ = writeln!(out, "- {}", item(r));
        }
    }
    if !report.revert_failures.is_empty() {
        let _ = writeln!(out, "\n## Revert failures — run `disasterpiece recover`\n");
        for r in &report.revert_failures {
            let _ = writeln!(out, "- {}", item(r));
        }
    }
    if !report.follow_ups.is_empty() {
        let _ = writeln!(out, "\n## Follow-ups\n");
        for f in &report.follow_ups {
            let mark = if f.status == FollowUpStatus::Done { "x" } else { " " };
            let owner = f.owner.as_ref().map_or(String::new(), |o| format!(" — {}", cell(o)));
            let _ = writeln!(out, "- [{mark}] {}{owner}", item(&f.text));
        }
    }
    if !report.learned.is_empty() {
        let _ = writeln!(out, "\n## What we learned\n");
        for l in &report.learned {
            let _ = writeln!(out, "- {}", item(l));
        }
    }

    if let Some(observed) = &report.observed_blast_radius {
        let _ = writeln!(out, "\n## Observed blast radius\n");
        for line in observed_lines(observed) {
            let _ = writeln!(out, "- {}", item(&line));
        }
        if observed.collateral.is_empty() {
            let _ = writeln!(out, "\nNothing outside the declared radius degraded or alerted.");
        } else {
            let _ = writeln!(out);
            out.push_str(&markdown_table(&collateral_table(report)));
        }
    }
    for (title, table) in [
        ("Expectations", expectations_table(report)),
        ("Timeline", events_table(report)),
        ("Targets", targets_table(report)),
    ] {
        let _ = writeln!(out, "\n## {title}\n");
        out.push_str(&markdown_table(&table));
    }
    let env = &report.environment;
    let _ = writeln!(out, "\n## Environment\n");
    let _ = writeln!(out, "- Cluster: {}", cell(&env.cluster));
    if let Some(c) = &env.context {
        let _ = writeln!(out, "- Context: {}", cell(c));
    }
    if let Some(n) = &env.namespace {
        let _ = writeln!(out, "- Namespace: {}", cell(n));
    }
    let _ = writeln!(out, "- Disasterpiece {}", cell(&env.disasterpiece_version));
    if let Some(h) = &report.host {
        let _ = writeln!(out, "- Host: {}", cell(h));
    }
    if !report.participants.is_empty() {
        let _ = writeln!(out, "- Participants: {}", cell(&report.participants.join(", ")));
    }
    let _ = writeln!(
        out,
        "- Ran {} to {}",
        timestamp(report.started_at),
        timestamp(report.ended_at)
    );
    out
}

/// What the run saw beyond its targets, in one line for the summary; `None` when it did not
/// watch (refused before it began).
pub fn beyond(report: &Report) -> Option<String> {
    let observed = report.observed_blast_radius.as_ref()?;
    if observed.collateral.is_empty() {
        return Some(format!(
            "nothing degraded or alerted outside the declared radius (watched: {})",
            watched_scope(observed)
        ));
    }
    let owners = owners(observed);
    Some(format!(
        "{} collateral hit{}{}",
        observed.collateral.len(),
        if owners.is_empty() {
            String::new()
        } else {
            format!(", owned by {}", owners.join(", "))
        },
        observed
            .halted_by
            .and_then(|i| observed.collateral.get(i))
            .map_or(String::new(), |c| format!("; halted by {}", c.subject))
    ))
}

/// The owners of the collateral, each once, in order.
pub fn owners(observed: &crate::report::model::ObservedBlastRadius) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = observed.collateral.iter().filter_map(|c| c.owner.clone()).collect();
    set.into_iter().collect()
}

/// `namespaces shop, orders; nodes; alerts from http://am`.
pub fn watched_scope(observed: &crate::report::model::ObservedBlastRadius) -> String {
    let w = &observed.watched;
    let mut parts = vec![format!("namespaces {}", w.namespaces.join(", "))];
    parts.push(if w.nodes { "nodes".into() } else { "not nodes".into() });
    parts.push(match &w.alertmanager {
        Some(a) => format!("alerts from {a}"),
        None => "no alerts (no Alertmanager)".into(),
    });
    parts.join("; ")
}

/// The declared radius, the watched scope and the halt rules, one line each.
pub fn observed_lines(observed: &crate::report::model::ObservedBlastRadius) -> Vec<String> {
    let declared = &observed.declared;
    let mut lines = vec![format!(
        "Declared: {} target(s) hit{}; {} spared",
        declared.hit.len(),
        if declared.hit.is_empty() {
            String::new()
        } else {
            format!(" ({})", declared.hit.join(", "))
        },
        declared.spared.len()
    )];
    lines.push(format!("Watched: {}", watched_scope(observed)));
    if let Some(why) = &observed.watched.nodes_not_watched {
        lines.push(format!("Nodes not watched: {why}"));
    }
    if !observed.watched.already_firing.is_empty() {
        lines.push(format!(
            "Already firing when the watch began (not counted): {}",
            observed.watched.already_firing.join(", ")
        ));
    }
    lines.push(if observed.watched.halts_on.is_empty() {
        "Halts on: nothing (recorded only)".into()
    } else {
        format!("Halts on: {}", observed.watched.halts_on.join("; "))
    });
    lines
}

/// Everything hit beyond the targets: what, where, what was seen, whose, when and how long.
pub fn collateral_table(report: &Report) -> Table {
    let rows = report
        .observed_blast_radius
        .iter()
        .flat_map(|o| o.collateral.iter())
        .map(|c| {
            let labels: Vec<String> = c
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let what = if labels.is_empty() {
                c.what.clone()
            } else {
                format!("{} {{{}}}", c.what, labels.join(", "))
            };
            vec![
                format!("{:?}", c.kind).to_lowercase(),
                c.subject.clone(),
                what,
                c.owner.clone().unwrap_or_else(|| "unknown".into()),
                offset(report, c.first_seen),
                match c.until {
                    Some(_) => format!("{:.1}s", c.for_s),
                    None => format!("{:.1}s, still at the end", c.for_s),
                },
                if c.halts { "HALTED".into() } else { String::new() },
            ]
        })
        .collect();
    Table {
        columns: vec![
            ("Kind", false),
            ("Subject", false),
            ("Seen", false),
            ("Owner", false),
            ("First seen", false),
            ("For", true),
            ("Halt", false),
        ],
        rows,
    }
}

/// A table of a report, as plain text: each renderer lays it out its way.
pub struct Table {
    /// Column names; `true` when the column is numeric (aligned right).
    pub columns: Vec<(&'static str, bool)>,
    pub rows: Vec<Vec<String>>,
}

/// Each expectation: what was expected, the verdict, when it first held, what was seen.
pub fn expectations_table(report: &Report) -> Table {
    Table {
        columns: vec![
            ("Expectation", false),
            ("Expected", false),
            ("Verdict", false),
            ("First held", false),
            ("Observed", false),
            ("Samples", true),
        ],
        rows: report
            .expectations
            .iter()
            .map(|e| {
                vec![
                    e.name.clone(),
                    e.expected.clone(),
                    verdict_word(e.verdict).to_owned(),
                    e.first_held.map_or("—".into(), |t| offset(report, t)),
                    e.observed.clone(),
                    e.samples.to_string(),
                ]
            })
            .collect(),
    }
}

/// Every event of the timeline, with its time and offset.
pub fn events_table(report: &Report) -> Table {
    Table {
        columns: vec![("Time (UTC)", false), ("", true), ("Event", false), ("Detail", false)],
        rows: report
            .timeline
            .iter()
            .map(|e| {
                vec![
                    e.at.format("%H:%M:%S%.3f").to_string(),
                    offset(report, e.at),
                    e.kind.clone(),
                    e.detail.clone(),
                ]
            })
            .collect(),
    }
}

/// The targets hit, when, and those spared with the reason.
pub fn targets_table(report: &Report) -> Table {
    let hit = report.injections.iter().map(|i| {
        vec![
            i.fault.clone(),
            i.target.clone(),
            i.injected_at.map_or("—".into(), |t| offset(report, t)),
            i.reverted_at.map_or("—".into(), |t| offset(report, t)),
            match (&i.not_injected, &i.partial, i.evicted.as_slice()) {
                (Some(why), _, _) => why.clone(),
                (None, Some(why), pods) => {
                    format!("PARTIAL: {why}; evicted {} pod(s): {}", pods.len(), pods.join(", "))
                }
                (None, None, []) => String::new(),
                (None, None, pods) => format!("evicted {} pod(s): {}", pods.len(), pods.join(", ")),
            },
        ]
    });
    let spared = report.targets.iter().flat_map(|choice| {
        choice.excluded.iter().map(|(target, why)| {
            vec![
                choice.fault.clone(),
                target.clone(),
                "spared".into(),
                String::new(),
                why.clone(),
            ]
        })
    });
    Table {
        columns: vec![
            ("Fault", false),
            ("Target", false),
            ("Injected", false),
            ("Reverted", false),
            ("Note", false),
        ],
        rows: hit.chain(spared).collect(),
    }
}

fn markdown_table(table: &Table) -> String {
    let mut out = String::new();
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let rules: Vec<&str> = table
        .columns
        .iter()
        .map(|(_, right)| if *right { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "| {} |", rules.join(" | "));
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// JUnit XML: one `testsuite` per report, one `testcase` per expectation. A refuted
/// expectation is a `failure`; an inconclusive one is `skipped`; a refused or aborted
/// exercise adds an `error` testcase saying why.
pub fn junit(reports: &[Report]) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors, mut skipped, mut time) = (0, 0, 0, 0, 0.0);
    for report in reports {
        let duration = (report.ended_at - report.started_at).num_milliseconds().max(0) as f64 / 1000.0;
        let name = &report.scenario.metadata.name;
        let mut cases = String::new();
        let (mut t, mut f, mut e, mut s) = (0, 0, 0, 0);
        for exp in &report.expectations {
            t += 1;
            let held = exp.first_held.map_or(0.0, |h| {
                (h - report.started_at).num_milliseconds().max(0) as f64 / 1000.0
            });
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{held:.3}\">",
                xml(name),
                xml(&exp.name)
            );
            match exp.verdict {
                ClauseVerdict::Confirmed => {}
                ClauseVerdict::Refuted => {
                    f += 1;
                    let _ = writeln!(
                        cases,
                        "      <failure message=\"{}\" type=\"refuted\">expected {}; observed {}</failure>",
                        xml(&exp.observed),
                        xml(&exp.expected),
                        xml(&exp.observed)
                    );
                }
                ClauseVerdict::Inconclusive => {
                    s += 1;
                    let _ = writeln!(
                        cases,
                        "      <skipped message=\"inconclusive: {}\"/>",
                        xml(&exp.observed)
                    );
                }
            }
            let _ = writeln!(cases, "    </testcase>");
        }
        let why = match report.outcome {
            Outcome::Refused => Some(("refused", report.refusals.join("; "))),
            Outcome::Aborted => Some((
                "aborted",
                report.abort.as_ref().map_or(String::new(), |a| a.reason.clone()),
            )),
            _ => None,
        };
        if let Some(observed) = &report.observed_blast_radius {
            // The hypothesis said where the fault would reach: anything beyond is a finding.
            t += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{}\" name=\"no unanticipated impact\" time=\"{duration:.3}\">",
                xml(name)
            );
            if !observed.collateral.is_empty() {
                f += 1;
                let hit: Vec<String> = observed
                    .collateral
                    .iter()
                    .map(|c| {
                        let owner = c.owner.as_deref().map(|o| format!(" (owner {o})")).unwrap_or_default();
                        format!("{} {}{owner}", c.subject, c.what)
                    })
                    .collect();
                let message = format!("{} hit beyond the targets", hit.len());
                let _ = writeln!(
                    cases,
                    "      <failure message=\"{}\" type=\"unanticipated\">{}</failure>",
                    xml(&message),
                    xml(&hit.join("\n"))
                );
            }
            let _ = writeln!(cases, "    </testcase>");
        }
        if let Some((kind, message)) = why {
            t += 1;
            e += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{}\" name=\"exercise\" time=\"{duration:.3}\">\n      <error message=\"{}\" type=\"{kind}\">{}</error>\n    </testcase>",
                xml(name),
                xml(&message),
                xml(&message)
            );
        }
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{duration:.3}\" timestamp=\"{}\" hostname=\"{}\">",
            xml(&format!("{name} ({})", report.exercise)),
            report.started_at.format("%Y-%m-%dT%H:%M:%S"),
            xml(&report.environment.cluster)
        );
        let _ = writeln!(suites, "    <properties>");
        for (key, value) in [
            ("hypothesis", report.scenario.spec.hypothesis.clone()),
            ("outcome", outcome_word(report.outcome).to_owned()),
            ("timeToDetect", seconds(report.metrics.time_to_detect_s)),
            ("timeToRemediate", seconds(report.metrics.time_to_remediate_s)),
            ("timeToRecover", seconds(report.metrics.time_to_recover_s)),
        ] {
            let _ = writeln!(suites, "      <property name=\"{key}\" value=\"{}\"/>", xml(&value));
        }
        let _ = writeln!(suites, "    </properties>");
        suites.push_str(&cases);
        let mut timeline = String::new();
        for event in &report.timeline {
            let _ = writeln!(timeline, "{} {} {}", offset(report, event.at), event.kind, event.detail);
        }
        let _ = writeln!(suites, "    <system-out>{}</system-out>", xml(&timeline));
        let _ = writeln!(suites, "  </testsuite>");
        tests += t;
        failures += f;
        errors += e;
        skipped += s;
        time += duration;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"disasterpiece\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n{suites}</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(seconds(None), "—");
        assert_eq!(seconds(Some(0.85)), "850ms");
        assert_eq!(seconds(Some(12.34)), "12.3s");
        assert_eq!(seconds(Some(125.0)), "2m 05s");
    }
}
