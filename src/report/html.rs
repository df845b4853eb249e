//! The HTML report: one self-contained file (inline CSS and SVG, no script, font or request
//! to anything else — its Content-Security-Policy forbids them) that reads on screen and on
//! paper. The SVG timeline shows the fault window, each expectation as a lane that turns
//! from pending to held or failed, the injection, detection, revert and recovery marks, and
//! the http probes' latency as a line. PURE.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::model::{ClauseVerdict, FollowUpStatus, Report};
use super::render::{
    Table, events_table, expectations_table, held_count, impact, offset, outcome_word, seconds, targets_table,
    timestamp, verdict_word, xml,
};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 210.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 26.0;
const LATENCY_HEIGHT: f64 = 90.0;

const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;max-width:1000px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
.verdict{display:inline-block;padding:.1em .6em;border-radius:.3em;color:#fff;font-weight:600}
.confirmed{background:#1f7a3f}.refuted{background:#b3261e}.inconclusive{background:#7a6a1f}.aborted{background:#8a4b08}.refused{background:#555}
blockquote{margin:.6em 0;padding:.4em 1em;border-left:4px solid #9ab;background:#f4f7fa}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #e3e6ee;vertical-align:top}
th{background:#f4f5f8}td.num{text-align:right}.summary td:first-child{width:14em;color:#556}
svg text{font:12px system-ui,sans-serif;fill:#1d2330}svg .small{font-size:10px;fill:#556}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,svg{break-inside:avoid}}";

/// The whole HTML document.
pub fn html(report: &Report) -> String {
    let scenario = &report.scenario;
    let spec = &scenario.spec;
    let outcome = outcome_word(report.outcome);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} — {outcome}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        xml(&scenario.metadata.name)
    );
    let _ = writeln!(
        out,
        "<h1>{} <span class=\"verdict {}\">{outcome}</span></h1>",
        xml(&scenario.metadata.name),
        outcome.to_lowercase()
    );
    let _ = writeln!(
        out,
        "<blockquote><strong>Hypothesis:</strong> {}</blockquote>",
        xml(&spec.hypothesis)
    );
    let _ = writeln!(out, "<table class=\"summary\">");
    let row = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "<tr><td>{label}</td><td>{value}</td></tr>");
    };
    row(
        &mut out,
        "Verdict",
        format!("<strong>{outcome}</strong> ({})", held_count(report)),
    );
    row(
        &mut out,
        "Exercise",
        format!(
            "<code>{}</code>, {}",
            xml(&report.exercise),
            timestamp(report.started_at)
        ),
    );
    if let Some(owner) = &spec.owner {
        let runbook = spec
            .runbook
            .as_ref()
            .map_or(String::new(), |r| format!(" · runbook: {}", xml(r)));
        row(&mut out, "Owner", format!("{}{runbook}", xml(owner)));
    }
    row(&mut out, "Time to detect", seconds(report.metrics.time_to_detect_s));
    row(
        &mut out,
        "Time to remediate",
        seconds(report.metrics.time_to_remediate_s),
    );
    row(&mut out, "Time to recover", seconds(report.metrics.time_to_recover_s));
    if let Some(abort) = &report.abort {
        row(
            &mut out,
            "Aborted",
            format!(
                "{} (everything reverted in {})",
                xml(&abort.reason),
                seconds(report.metrics.abort_latency_s)
            ),
        );
    }
    row(&mut out, "Impact", xml(&impact(report)));
    if let Some(line) = super::render::beyond(report) {
        row(&mut out, "Beyond the targets", xml(&line));
    }
    let open = report
        .follow_ups
        .iter()
        .filter(|f| f.status == FollowUpStatus::Open)
        .count();
    row(
        &mut out,
        "Follow-ups",
        format!("{open} open, {} done", report.follow_ups.len() - open),
    );
    if report.confidence_before.is_some() || report.confidence_after.is_some() {
        let level = |c: Option<u8>| c.map_or("—".into(), |c| format!("{c}/5"));
        row(
            &mut out,
            "Confidence",
            format!(
                "{} before → {} after",
                level(report.confidence_before),
                level(report.confidence_after)
            ),
        );
    }
    let _ = writeln!(out, "</table>");

    let _ = writeln!(out, "<h2>Timeline</h2>");
    out.push_str(&timeline_svg(report));

    for (title, items) in [
        ("Refused", &report.refusals),
        ("Revert failures — run disasterpiece recover", &report.revert_failures),
        ("What we learned", &report.learned),
    ] {
        if !items.is_empty() {
            let _ = writeln!(out, "<h2>{title}</h2>\n<ul>");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", xml(item));
            }
            let _ = writeln!(out, "</ul>");
        }
    }
    if !report.follow_ups.is_empty() {
        let _ = writeln!(out, "<h2>Follow-ups</h2>\n<ul>");
        for f in &report.follow_ups {
            let mark = if f.status == FollowUpStatus::Done { "☑" } else { "☐" };
            let owner = f.owner.as_ref().map_or(String::new(), |o| format!(" — {}", xml(o)));
            let _ = writeln!(out, "<li>{mark} {}{owner}</li>", xml(&f.text));
        }
        let _ = writeln!(out, "</ul>");
    }

    if let Some(observed) = &report.observed_blast_radius {
        let _ = writeln!(out, "<h2>Observed blast radius</h2>\n<ul id=\"observed\">");
        for line in super::render::observed_lines(observed) {
            let _ = writeln!(out, "<li>{}</li>", xml(&line));
        }
        let _ = writeln!(out, "</ul>");
        if observed.collateral.is_empty() {
            let _ = writeln!(out, "<p>Nothing outside the declared radius degraded or alerted.</p>");
        } else {
            out.push_str(&html_table("collateral", &super::render::collateral_table(report)));
        }
    }
    for (title, id, table) in [
        ("Expectations", "expectations", expectations_table(report)),
        ("Events", "events", events_table(report)),
        ("Targets", "targets", targets_table(report)),
    ] {
        let _ = writeln!(out, "<h2>{title}</h2>");
        out.push_str(&html_table(id, &table));
    }
    let env = &report.environment;
    let _ = writeln!(out, "<h2>Environment</h2>\n<ul>");
    let _ = writeln!(out, "<li>Cluster: {}</li>", xml(&env.cluster));
    for (label, value) in [
        ("Context", &env.context),
        ("Namespace", &env.namespace),
        ("Host", &report.host),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "<li>{label}: {}</li>", xml(v));
        }
    }
    if !report.participants.is_empty() {
        let _ = writeln!(out, "<li>Participants: {}</li>", xml(&report.participants.join(", ")));
    }
    let _ = writeln!(
        out,
        "<li>Disasterpiece {}; ran {} to {}</li>\n</ul>\n</body>\n</html>",
        xml(&env.disasterpiece_version),
        timestamp(report.started_at),
        timestamp(report.ended_at)
    );
    out
}

/// A table; a `Verdict` cell is shown as a badge.
fn html_table(id: &str, table: &Table) -> String {
    let mut out = format!("<table id=\"{id}\">\n<tr>");
    for (name, _) in &table.columns {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("</tr>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for ((name, numeric), value) in table.columns.iter().zip(row) {
            let value = xml(value);
            match (*name, *numeric) {
                ("Verdict", _) => {
                    let _ = write!(out, "<td><span class=\"verdict {value}\">{value}</span></td>");
                }
                (_, true) => {
                    let _ = write!(out, "<td class=\"num\">{value}</td>");
                }
                _ => {
                    let _ = write!(out, "<td>{value}</td>");
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// Maps times to x.
struct Scale {
    start: DateTime<Utc>,
    span_ms: f64,
}

impl Scale {
    fn x(&self, at: DateTime<Utc>) -> f64 {
        let ms = (at - self.start).num_milliseconds() as f64;
        LEFT + (ms / self.span_ms).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }
}

/// `seconds` after `at`, when that is a time at all (a report file may hold any number).
fn after(at: DateTime<Utc>, seconds: f64) -> Option<DateTime<Utc>> {
    let ms = seconds * 1000.0;
    if !ms.is_finite() || ms.abs() > 1e15 {
        return None;
    }
    at.checked_add_signed(chrono::TimeDelta::try_milliseconds(ms as i64)?)
}

/// The SVG timeline.
pub fn timeline_svg(report: &Report) -> String {
    let scale = Scale {
        start: report.started_at,
        span_ms: ((report.ended_at - report.started_at).num_milliseconds() as f64).max(1.0),
    };
    let latencies: Vec<(DateTime<Utc>, f64)> = report
        .expectations
        .iter()
        .filter(|e| e.probe == "http")
        .flat_map(|e| &e.history)
        .filter_map(|o| o.latency_ms.map(|l| (o.at, l)))
        .collect();
    let top = 34.0;
    let lanes_top = top + LANE + 6.0;
    let lanes_end = lanes_top + LANE * report.expectations.len() as f64;
    // A row for the labels of marks that would crowd the top, then the latency chart.
    let latency_top = lanes_end + 26.0;
    let height = latency_top
        + if latencies.is_empty() {
            10.0
        } else {
            LATENCY_HEIGHT + 30.0
        };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"Timeline of the exercise: fault window, expectations, detection and recovery\">"
    );
    // Time axis.
    let span_s = scale.span_ms / 1000.0;
    // At most about ten ticks, however long the report says the exercise took.
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| span_s / s <= 10.0)
    .unwrap_or((span_s / 10.0).ceil());
    let mut t = 0.0;
    while t <= span_s + 0.001 {
        let x = LEFT + t / span_s * (WIDTH - LEFT - RIGHT);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e6e8ef\"/><text class=\"small\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">+{}s</text>",
            height - 6.0,
            top - 18.0,
            t as u64
        );
        t += step;
    }
    // The fault window.
    let injected = report.injections.iter().filter_map(|i| i.injected_at).min();
    let reverted = report.injections.iter().filter_map(|i| i.reverted_at).max();
    let _ = writeln!(svg, "<text x=\"8\" y=\"{:.1}\">fault window</text>", top + 17.0);
    if let Some(from) = injected {
        let to = reverted.unwrap_or(report.ended_at);
        let (x1, x2) = (scale.x(from), scale.x(to));
        let _ = writeln!(
            svg,
            "<rect id=\"fault-window\" x=\"{x1:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"#f0a030\" fill-opacity=\"0.8\"><title>faults in from {} to {}</title></rect>",
            (x2 - x1).max(1.0),
            LANE - 6.0,
            offset(report, from),
            offset(report, to)
        );
    }
    // One lane per expectation: pending, then held (green) or failed (red), with its samples.
    for (i, e) in report.expectations.iter().enumerate() {
        let y = lanes_top + LANE * i as f64;
        let width = WIDTH - LEFT - RIGHT;
        let label: String = e.name.chars().take(30).collect();
        let _ = writeln!(
            svg,
            "<g class=\"lane\" data-expectation=\"{}\" data-verdict=\"{}\"><title>{}: {} ({})</title><text x=\"8\" y=\"{:.1}\">{}</text><rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{}\" fill=\"#d9dce5\"/>",
            xml(&e.name),
            verdict_word(e.verdict),
            xml(&e.name),
            verdict_word(e.verdict),
            xml(&e.observed),
            y + 15.0,
            xml(&label),
            LANE - 8.0
        );
        let first_fail = e.history.iter().find(|o| o.verdict == "fail").map(|o| o.at);
        let turned = match e.verdict {
            ClauseVerdict::Confirmed => e
                .first_held
                .or_else(|| e.history.first().map(|o| o.at))
                .map(|at| (at, "#2e9d55")),
            ClauseVerdict::Refuted => first_fail
                .or_else(|| e.history.last().map(|o| o.at))
                .map(|at| (at, "#d0453a")),
            ClauseVerdict::Inconclusive => None,
        };
        if let Some((at, color)) = turned {
            let x = scale.x(at);
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\"/>",
                (WIDTH - RIGHT - x).max(1.0),
                LANE - 8.0
            );
        }
        for o in &e.history {
            let color = match o.verdict.as_str() {
                "pass" => "#145c2c",
                "fail" => "#7d1b14",
                _ => "#777",
            };
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"1\"/>",
                y + LANE - 11.0,
                y + LANE - 8.0,
                x = scale.x(o.at)
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    // Marks: injection, detection, revert, recovery.
    let mut marks: Vec<(&str, DateTime<Utc>, &str)> = Vec::new();
    if let Some(at) = injected {
        marks.push(("injected", at, "#8a4b08"));
        if let Some(d) = report.metrics.time_to_detect_s.and_then(|d| after(at, d)) {
            marks.push(("detected", d, "#1b4fa0"));
        }
    }
    if let Some(at) = reverted {
        marks.push(("reverted", at, "#555"));
        if let Some(r) = report.metrics.time_to_recover_s.and_then(|r| after(at, r)) {
            marks.push(("recovered", r, "#1f7a3f"));
        }
    }
    for (i, (name, at, color)) in marks.iter().enumerate() {
        let x = scale.x(*at);
        let anchor = if x > WIDTH - RIGHT - 40.0 {
            "end"
        } else if x < LEFT + 30.0 {
            "start"
        } else {
            "middle"
        };
        let _ = writeln!(
            svg,
            "<g class=\"mark\" data-mark=\"{name}\"><line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{x:.1}\" y=\"{:.1}\" fill=\"{color}\" text-anchor=\"{anchor}\">{name}</text></g>",
            lanes_end + 4.0,
            // Alternate above and below the lanes, so marks close in time stay readable.
            if i % 2 == 0 { top - 5.0 } else { lanes_end + 17.0 }
        );
    }
    // Probe latency as a line.
    if !latencies.is_empty() {
        let max = latencies.iter().map(|(_, l)| *l).fold(1.0_f64, f64::max);
        let bottom = latency_top + LATENCY_HEIGHT;
        let points: Vec<String> = latencies
            .iter()
            .map(|(at, l)| format!("{:.1},{:.1}", scale.x(*at), bottom - l / max * LATENCY_HEIGHT))
            .collect();
        let _ = writeln!(
            svg,
            "<g id=\"latency\"><text x=\"8\" y=\"{:.1}\">http latency</text><text class=\"small\" x=\"8\" y=\"{:.1}\">max {max:.0} ms</text><rect x=\"{LEFT}\" y=\"{latency_top:.1}\" width=\"{:.1}\" height=\"{LATENCY_HEIGHT}\" fill=\"#f7f8fb\"/><polyline fill=\"none\" stroke=\"#1b4fa0\" stroke-width=\"1.5\" points=\"{}\"/></g>",
            latency_top + 15.0,
            latency_top + 30.0,
            WIDTH - LEFT - RIGHT,
            points.join(" ")
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}
