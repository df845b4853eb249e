//! Trends across many reports: per group (scenario, team or namespace) and per month, how
//! many exercises ran, how many confirmed their hypothesis, aborts, the median times to
//! detect, remediate and recover and how they moved since the group's previous month,
//! availability during faults, exercises that hit something beyond their targets (the
//! observed blast radius), follow-ups opened and done, and confidence before and after.
//! PURE over reports; `read` lists and skips what is not a report.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{FollowUpStatus, Outcome, Report};
use super::render::{percent, seconds, xml};
use super::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupBy {
    Scenario,
    /// The scenario's `team` label, else its owner.
    Team,
    /// The target namespace.
    Namespace,
}

/// A file that was not read, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub file: PathBuf,
    pub reason: String,
}

/// The figures of one group over one month (or over all of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// `2026-03`, or `all`.
    pub period: String,
    pub exercises: u32,
    pub confirmed: u32,
    pub confirmed_rate: f64,
    pub aborted: u32,
    pub median_time_to_detect_s: Option<f64>,
    pub median_time_to_remediate_s: Option<f64>,
    pub median_time_to_recover_s: Option<f64>,
    /// This period's median minus the group's previous period's (negative: faster).
    pub time_to_detect_change_s: Option<f64>,
    pub time_to_remediate_change_s: Option<f64>,
    pub time_to_recover_change_s: Option<f64>,
    /// The mean of the reports' availability during their faults.
    pub availability: Option<f64>,
    /// Exercises whose watch saw collateral beyond their targets (of those that watched).
    pub with_collateral: u32,
    /// Exercises that watched beyond their targets (reports from before version 2 did not).
    pub watched: u32,
    pub follow_ups_opened: u32,
    pub follow_ups_done: u32,
    pub mean_confidence_before: Option<f64>,
    pub mean_confidence_after: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub months: Vec<Figures>,
    pub total: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    pub group_by: GroupBy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    pub reports: usize,
    pub groups: Vec<Group>,
    pub skipped: Vec<Skipped>,
}

/// Every report below `dir`, started at or after `since`; what could not be read is listed.
pub fn read(dir: &Path, since: Option<DateTime<Utc>>) -> std::io::Result<(Vec<Report>, Vec<Skipped>)> {
    let mut reports = Vec::new();
    let mut skipped = Vec::new();
    for file in store::find(dir)? {
        match store::load(&file) {
            Ok(r) if since.is_none_or(|s| r.started_at >= s) => reports.push(r),
            Ok(_) => {}
            Err(e) => skipped.push(Skipped {
                file,
                reason: e.to_string(),
            }),
        }
    }
    Ok((reports, skipped))
}

/// The group a report belongs to.
pub fn group_of(report: &Report, by: GroupBy) -> String {
    let scenario = &report.scenario;
    match by {
        GroupBy::Scenario => scenario.metadata.name.clone(),
        GroupBy::Team => scenario
            .metadata
            .labels
            .get("team")
            .cloned()
            .or_else(|| scenario.spec.owner.clone())
            .unwrap_or_else(|| "(no team)".into()),
        GroupBy::Namespace => report
            .environment
            .namespace
            .clone()
            .or_else(|| scenario.spec.target.namespace.clone())
            .unwrap_or_else(|| "(cluster)".into()),
    }
}

use super::stats::median;

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn figures(period: String, reports: &[&Report]) -> Figures {
    let exercises = reports.len() as u32;
    let count = |o: Outcome| reports.iter().filter(|r| r.outcome == o).count() as u32;
    let confirmed = count(Outcome::Confirmed);
    let times = |f: fn(&Report) -> Option<f64>| median(reports.iter().filter_map(|r| f(r)).collect());
    let follow_ups: Vec<_> = reports.iter().flat_map(|r| &r.follow_ups).collect();
    let confidence =
        |f: fn(&Report) -> Option<u8>| mean(&reports.iter().filter_map(|r| f(r)).map(f64::from).collect::<Vec<_>>());
    Figures {
        period,
        exercises,
        confirmed,
        confirmed_rate: if exercises == 0 {
            0.0
        } else {
            f64::from(confirmed) / f64::from(exercises)
        },
        aborted: count(Outcome::Aborted),
        median_time_to_detect_s: times(|r| r.metrics.time_to_detect_s),
        median_time_to_remediate_s: times(|r| r.metrics.time_to_remediate_s),
        median_time_to_recover_s: times(|r| r.metrics.time_to_recover_s),
        time_to_detect_change_s: None,
        time_to_remediate_change_s: None,
        time_to_recover_change_s: None,
        availability: mean(
            &reports
                .iter()
                .filter_map(|r| r.metrics.availability)
                .collect::<Vec<_>>(),
        ),
        with_collateral: reports
            .iter()
            .filter(|r| {
                r.observed_blast_radius
                    .as_ref()
                    .is_some_and(|o| !o.collateral.is_empty())
            })
            .count() as u32,
        watched: reports.iter().filter(|r| r.observed_blast_radius.is_some()).count() as u32,
        follow_ups_opened: follow_ups.len() as u32,
        follow_ups_done: follow_ups.iter().filter(|f| f.status == FollowUpStatus::Done).count() as u32,
        mean_confidence_before: confidence(|r| r.confidence_before),
        mean_confidence_after: confidence(|r| r.confidence_after),
    }
}

/// The trend of `reports`, grouped `by`, groups and months in order.
pub fn trend(reports: &[Report], by: GroupBy) -> Vec<Group> {
    let mut grouped: BTreeMap<String, BTreeMap<String, Vec<&Report>>> = BTreeMap::new();
    for r in reports {
        grouped
            .entry(group_of(r, by))
            .or_default()
            .entry(r.started_at.format("%Y-%m").to_string())
            .or_default()
            .push(r);
    }
    grouped
        .into_iter()
        .map(|(name, months)| {
            let all: Vec<&Report> = months.values().flatten().copied().collect();
            let mut figures_by_month: Vec<Figures> =
                months.into_iter().map(|(month, list)| figures(month, &list)).collect();
            for i in 1..figures_by_month.len() {
                let (before, now) = figures_by_month.split_at_mut(i);
                let (previous, current) = (&before[i - 1], &mut now[0]);
                let change = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
                current.time_to_detect_change_s =
                    change(current.median_time_to_detect_s, previous.median_time_to_detect_s);
                current.time_to_remediate_change_s =
                    change(current.median_time_to_remediate_s, previous.median_time_to_remediate_s);
                current.time_to_recover_change_s =
                    change(current.median_time_to_recover_s, previous.median_time_to_recover_s);
            }
            Group {
                total: figures("all".into(), &all),
                name,
                months: figures_by_month,
            }
        })
        .collect()
}

/// `12.3s (↓ 2.0s)`: a median and how it moved.
fn with_change(value: Option<f64>, change: Option<f64>) -> String {
    match change {
        Some(c) if c < 0.0 => format!("{} (↓ {})", seconds(value), seconds(Some(-c))),
        Some(c) if c > 0.0 => format!("{} (↑ {})", seconds(value), seconds(Some(c))),
        Some(_) => format!("{} (=)", seconds(value)),
        None => seconds(value),
    }
}

fn confidence(c: Option<f64>) -> String {
    c.map_or("—".into(), |c| format!("{c:.1}"))
}

/// The columns of a trend table, as text.
fn row(f: &Figures) -> [String; 11] {
    [
        f.period.clone(),
        f.exercises.to_string(),
        format!("{} ({})", f.confirmed, percent(Some(f.confirmed_rate))),
        f.aborted.to_string(),
        with_change(f.median_time_to_detect_s, f.time_to_detect_change_s),
        with_change(f.median_time_to_remediate_s, f.time_to_remediate_change_s),
        with_change(f.median_time_to_recover_s, f.time_to_recover_change_s),
        percent(f.availability),
        if f.watched == 0 {
            "—".into()
        } else {
            format!("{} of {}", f.with_collateral, f.watched)
        },
        format!("{} / {}", f.follow_ups_opened, f.follow_ups_done),
        format!(
            "{} → {}",
            confidence(f.mean_confidence_before),
            confidence(f.mean_confidence_after)
        ),
    ]
}

const HEADERS: [&str; 11] = [
    "Month",
    "Exercises",
    "Confirmed",
    "Aborted",
    "Detect (median)",
    "Remediate (median)",
    "Recover (median)",
    "Availability",
    "Hit beyond targets",
    "Follow-ups opened / done",
    "Confidence before → after",
];

fn skipped_lines(trend: &Trend) -> Vec<String> {
    trend
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.file.display(), s.reason))
        .collect()
}

pub fn markdown(trend: &Trend) -> String {
    let mut out = String::new();
    let by = match trend.group_by {
        GroupBy::Scenario => "scenario",
        GroupBy::Team => "team",
        GroupBy::Namespace => "namespace",
    };
    let _ = writeln!(out, "# Game day trends by {by}\n");
    let since = trend
        .since
        .map_or(String::new(), |s| format!(" since {}", s.format("%Y-%m-%d")));
    let _ = writeln!(out, "{} reports{since}, {} groups.", trend.reports, trend.groups.len());
    for group in &trend.groups {
        let _ = writeln!(out, "\n## {}\n", super::text::markdown(&group.name));
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(out, "|{}", " --- |".repeat(HEADERS.len()));
        for f in group.months.iter().chain([&group.total]) {
            let _ = writeln!(out, "| {} |", row(f).join(" | "));
        }
    }
    let skipped = skipped_lines(trend);
    if !skipped.is_empty() {
        let _ = writeln!(out, "\n## Skipped files\n");
        for s in skipped {
            let _ = writeln!(out, "- {}", super::text::markdown(&s));
        }
    }
    out
}

/// Self-contained HTML with an SVG chart per group: bars for exercises confirmed and not, a
/// line for the median time to detect.
pub fn html(trend: &Trend) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>Game day trends</title>\n<style>body{{font:15px/1.45 system-ui,sans-serif;color:#1d2330;max-width:1100px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;width:100%}}th,td{{padding:.25em .5em;border-bottom:1px solid #e3e6ee;text-align:left}}th{{background:#f4f5f8}}svg text{{font:11px system-ui,sans-serif}}@media print{{body{{margin:0}}svg,table{{break-inside:avoid}}}}</style>\n</head>\n<body>\n<h1>Game day trends</h1>\n<p>{} reports, {} groups.</p>\n",
        trend.reports,
        trend.groups.len()
    );
    for group in &trend.groups {
        let _ = writeln!(out, "<h2>{}</h2>", xml(&group.name));
        out.push_str(&chart(group));
        let _ = writeln!(
            out,
            "<table>\n<tr>{}</tr>",
            HEADERS.iter().map(|h| format!("<th>{h}</th>")).collect::<String>()
        );
        for f in group.months.iter().chain([&group.total]) {
            let _ = writeln!(
                out,
                "<tr>{}</tr>",
                row(f)
                    .iter()
                    .map(|c| format!("<td>{}</td>", xml(c)))
                    .collect::<String>()
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let skipped = skipped_lines(trend);
    if !skipped.is_empty() {
        let _ = writeln!(out, "<h2>Skipped files</h2>\n<ul>");
        for s in skipped {
            let _ = writeln!(out, "<li>{}</li>", xml(&s));
        }
        let _ = writeln!(out, "</ul>");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn chart(group: &Group) -> String {
    let (width, height, left, bottom) = (900.0, 180.0, 40.0, 150.0);
    let months = &group.months;
    let most = months.iter().map(|m| m.exercises).max().unwrap_or(1).max(1) as f64;
    let slowest = months
        .iter()
        .filter_map(|m| m.median_time_to_detect_s)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let slot = (width - left) / months.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"trend\" data-group=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" aria-label=\"Exercises per month, confirmed and not, and the median time to detect\">\n",
        xml(&group.name)
    );
    let mut line = Vec::new();
    for (i, m) in months.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.15;
        let w = slot * 0.7;
        let all = f64::from(m.exercises) / most * (bottom - 20.0);
        let ok = f64::from(m.confirmed) / most * (bottom - 20.0);
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{all:.1}\" fill=\"#e3a29c\"><title>{}: {} exercises</title></rect><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{ok:.1}\" fill=\"#2e9d55\"><title>{}: {} confirmed</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom - all,
            m.period,
            m.exercises,
            bottom - ok,
            m.period,
            m.confirmed,
            x + w / 2.0,
            bottom + 14.0,
            m.period
        );
        if let Some(d) = m.median_time_to_detect_s {
            line.push(format!(
                "{:.1},{:.1}",
                x + w / 2.0,
                bottom - d / slowest * (bottom - 20.0)
            ));
        }
    }
    if !line.is_empty() {
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"#1b4fa0\" stroke-width=\"2\" points=\"{}\"/><text x=\"4\" y=\"14\" fill=\"#1b4fa0\">median time to detect (max {})</text>",
            line.join(" "),
            seconds(Some(slowest))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
