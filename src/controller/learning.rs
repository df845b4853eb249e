//! The success metrics in Prometheus, from the reports the controller keeps (issue 26): every
//! replica reads them (`reports::list`) every `Options::learn_every` (5 minutes from the
//! command line) and `/metrics` shows the figures of what it read. They are figures of the reports kept (each scenario keeps its
//! latest 100), not counters of this process: a restart changes nothing, and a pruned report
//! leaves them.
//!
//! - `disasterpiece_reported_exercises{team,scenario,verdict}`: reports kept;
//! - `disasterpiece_follow_ups{team,standing}`: follow-ups as they stand now (`overdue`,
//!   `open`, `verified`, `done`);
//! - `disasterpiece_hypotheses_taught{team}`: refuted or inconclusive with a lesson;
//! - `disasterpiece_time_to_{detect,remediate,recover}_seconds{team}`: histograms over the
//!   kept reports that measured them;
//! - `disasterpiece_workloads{team,coverage}` and `disasterpiece_coverage_ratio{team}`: the
//!   cluster's Deployments and StatefulSets by whether a kept report exercised them in the last
//!   [`COVERAGE_WITHIN`] (`exercised`), before (`stale`) or never (`never`), and the share
//!   exercised; left out when the workloads cannot be listed.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::report::review::{self, Source, Standing, Summary, Workload};

/// The upper bounds of the time histograms, in seconds.
const BUCKETS: [f64; 9] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

/// A label value in the text format: `\`, `"` and line breaks escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A workload exercised longer ago than this counts as stale (the review's `--stale` default).
pub const COVERAGE_WITHIN: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// The families, in the OpenMetrics text format, of `reports` and the cluster's `workloads`
/// (when they could be listed) as they stand at `now`. PURE.
pub fn families(reports: &[Summary], workloads: Option<&[Workload]>, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let teams = exercises(&mut out, reports);
    let sources: Vec<Source> = reports
        .iter()
        .map(|r| Source {
            at: r.exercise.clone(),
            report: r.clone(),
        })
        .collect();
    follow_ups(&mut out, &sources, &teams, now);
    times(&mut out, reports);
    if let Some(workloads) = workloads {
        coverage(&mut out, &sources, workloads, now);
    }
    out
}

/// `disasterpiece_reported_exercises` and `disasterpiece_hypotheses_taught`; the teams seen.
fn exercises(out: &mut String, reports: &[Summary]) -> Vec<String> {
    let mut exercises: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    let mut taught: BTreeMap<String, u32> = BTreeMap::new();
    for r in reports {
        let team = review::team_of(r);
        let verdict = format!("{:?}", r.outcome).to_lowercase();
        *exercises
            .entry((team.clone(), r.scenario.metadata.name.clone(), verdict))
            .or_default() += 1;
        let counted = taught.entry(team).or_default();
        if matches!(
            r.outcome,
            crate::report::model::Outcome::Refuted | crate::report::model::Outcome::Inconclusive
        ) && !r.learned.is_empty()
        {
            *counted += 1;
        }
    }
    let _ = writeln!(
        out,
        "# HELP disasterpiece_reported_exercises Exercises whose reports the controller keeps."
    );
    let _ = writeln!(out, "# TYPE disasterpiece_reported_exercises gauge");
    for ((team, scenario, verdict), n) in &exercises {
        let _ = writeln!(
            out,
            "disasterpiece_reported_exercises{{team=\"{}\",scenario=\"{}\",verdict=\"{verdict}\"}} {n}",
            label(team),
            label(scenario)
        );
    }
    let _ = writeln!(
        out,
        "# HELP disasterpiece_hypotheses_taught Hypotheses refuted or inconclusive with a lesson written down, in the reports kept."
    );
    let _ = writeln!(out, "# TYPE disasterpiece_hypotheses_taught gauge");
    for (team, n) in &taught {
        let _ = writeln!(out, "disasterpiece_hypotheses_taught{{team=\"{}\"}} {n}", label(team));
    }
    taught.keys().cloned().collect()
}

/// `disasterpiece_follow_ups`, every standing of every team from 0.
fn follow_ups(out: &mut String, sources: &[Source], teams: &[String], now: DateTime<Utc>) {
    let mut standings: BTreeMap<(String, &'static str), u32> = BTreeMap::new();
    for team in teams {
        for standing in ["overdue", "open", "verified", "done"] {
            standings.insert((team.clone(), standing), 0);
        }
    }
    for t in review::follow_ups(sources, now) {
        let standing = match t.standing {
            Standing::Overdue => "overdue",
            Standing::Open => "open",
            Standing::Verified => "verified",
            Standing::Done => "done",
        };
        *standings.entry((t.team, standing)).or_default() += 1;
    }
    let _ = writeln!(
        out,
        "# HELP disasterpiece_follow_ups Follow-ups of the reports kept, as they stand now."
    );
    let _ = writeln!(out, "# TYPE disasterpiece_follow_ups gauge");
    for ((team, standing), n) in &standings {
        let _ = writeln!(
            out,
            "disasterpiece_follow_ups{{team=\"{}\",standing=\"{standing}\"}} {n}",
            label(team)
        );
    }
}

/// The time-to-detect, -remediate and -recover histograms per team.
fn times(out: &mut String, reports: &[Summary]) {
    // (name, what it measures, the figure of a report).
    type Time = (&'static str, &'static str, fn(&Summary) -> Option<f64>);
    let times: [Time; 3] = [
        (
            "detect",
            "From the first injection to the first detection clause that held",
            |r| r.metrics.time_to_detect_s,
        ),
        (
            "remediate",
            "From when remediation could start to the workload back at its replicas",
            |r| r.metrics.time_to_remediate_s,
        ),
        ("recover", "From the revert to the steady state back", |r| {
            r.metrics.time_to_recover_s
        }),
    ];
    for (name, help, of) in times {
        let family = format!("disasterpiece_time_to_{name}_seconds");
        let _ = writeln!(out, "# HELP {family} {help}, over the reports kept.");
        let _ = writeln!(out, "# TYPE {family} histogram");
        let mut by_team: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in reports {
            if let Some(v) = of(r) {
                by_team.entry(review::team_of(r)).or_default().push(v);
            }
        }
        for (team, values) in &by_team {
            let team = label(team);
            for bound in BUCKETS {
                let n = values.iter().filter(|v| **v <= bound).count();
                let _ = writeln!(out, "{family}_bucket{{team=\"{team}\",le=\"{bound:.1}\"}} {n}");
            }
            let _ = writeln!(out, "{family}_bucket{{team=\"{team}\",le=\"+Inf\"}} {}", values.len());
            let _ = writeln!(out, "{family}_sum{{team=\"{team}\"}} {}", values.iter().sum::<f64>());
            let _ = writeln!(out, "{family}_count{{team=\"{team}\"}} {}", values.len());
        }
    }
}

/// `disasterpiece_workloads` and `disasterpiece_coverage_ratio`.
fn coverage(out: &mut String, sources: &[Source], workloads: &[Workload], now: DateTime<Utc>) {
    let teams = review::coverage_by_team(sources, workloads, now, COVERAGE_WITHIN);
    let _ = writeln!(
        out,
        "# HELP disasterpiece_workloads Deployments and StatefulSets by whether a kept report exercised them in the last 90 days, before, or never."
    );
    let _ = writeln!(out, "# TYPE disasterpiece_workloads gauge");
    for (team, c) in &teams {
        for (coverage, n) in [("exercised", c.exercised), ("stale", c.stale), ("never", c.never)] {
            let _ = writeln!(
                out,
                "disasterpiece_workloads{{team=\"{}\",coverage=\"{coverage}\"}} {n}",
                label(team)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP disasterpiece_coverage_ratio The share of the team's Deployments and StatefulSets exercised in the last 90 days."
    );
    let _ = writeln!(out, "# TYPE disasterpiece_coverage_ratio gauge");
    for (team, c) in &teams {
        let _ = writeln!(
            out,
            "disasterpiece_coverage_ratio{{team=\"{}\"}} {}",
            label(team),
            c.ratio()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_value_cannot_add_a_label_or_a_line() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
