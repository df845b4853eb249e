//! The weekly review: what a lead runs in fifteen minutes, from the reports of a period. PURE:
//! reports and the period in, a [`Review`] out; `markdown`, `html` and JSON (serde) render it.
//!
//! Sections, in the order of the meeting: what ran and how it ended; what we learned (each
//! refuted or inconclusive hypothesis, with its lessons); unanticipated impact (the observed
//! blast radius); follow-ups (overdue first, then open, verified, done); the key figures per
//! team, with the change since the previous period and the last 12 periods; coverage (what
//! was exercised, when last, with which fault classes, and what went stale).
//!
//! Three depths: `team` (every exercise), `lead` (each team of each group), `org` (the groups
//! rolled up). Teams roll up into groups through an org file (`team: group`).
//!
//! Every figure says what it counts: exercises *started* in the period; follow-ups from any
//! report, open or overdue as of the period's end.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::model::{FollowUp, FollowUpStatus, Metrics, ObservedBlastRadius, Outcome, Report};
use super::render::Table;
use super::render::{outcome_word, seconds};
use super::stats::median;
use super::text::{markdown as item, markdown_inline as cell, xml};
use crate::scenario::Scenario;

/// How deep the review goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "camelCase")]
pub enum View {
    /// An engineer's: every exercise.
    Team,
    /// A lead's: each team of each group.
    Lead,
    /// The head of the domain's: the groups rolled up.
    Org,
}

/// Which group each team belongs to (`--org FILE`): `{org: NAME, teams: {TEAM: GROUP}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Org {
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub teams: BTreeMap<String, String>,
}

/// The group of a team that the org file does not name.
pub const NO_GROUP: &str = "(no group)";

impl Org {
    pub fn group(&self, team: &str) -> String {
        self.teams.get(team).cloned().unwrap_or_else(|| NO_GROUP.into())
    }
}

/// What the review reads of a report: all but its timeline, samples, targets and injections,
/// which are most of its size (a report of a long window holds thousands of samples). Read
/// straight from the file, the rest of it is skipped, not held.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub exercise: String,
    pub scenario: Scenario,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub metrics: Metrics,
    #[serde(default)]
    pub learned: Vec<String>,
    #[serde(default)]
    pub follow_ups: Vec<FollowUp>,
    #[serde(default)]
    pub confidence_before: Option<u8>,
    #[serde(default)]
    pub confidence_after: Option<u8>,
    #[serde(default)]
    pub observed_blast_radius: Option<ObservedBlastRadius>,
}

impl From<&Report> for Summary {
    fn from(r: &Report) -> Self {
        Summary {
            exercise: r.exercise.clone(),
            scenario: r.scenario.clone(),
            started_at: r.started_at,
            ended_at: r.ended_at,
            outcome: r.outcome,
            metrics: r.metrics.clone(),
            learned: r.learned.clone(),
            follow_ups: r.follow_ups.clone(),
            confidence_before: r.confidence_before,
            confidence_after: r.confidence_after,
            observed_blast_radius: r.observed_blast_radius.clone(),
        }
    }
}

/// One report, as the review reads it: where it came from, and what it says.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file (or ConfigMap) that holds it, for people to open.
    pub at: String,
    pub report: Summary,
}

/// What the review is asked for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub view: View,
    pub org: Org,
    /// A target last exercised longer ago than this, as of `until`, is stale.
    pub stale: chrono::Duration,
}

/// One exercise of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ran {
    pub team: String,
    pub group: String,
    pub scenario: String,
    pub exercise: String,
    pub started_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub hypothesis: String,
    pub report: String,
}

/// A hypothesis that did not hold, and what the team said it learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lesson {
    pub team: String,
    pub scenario: String,
    pub exercise: String,
    pub outcome: Outcome,
    pub hypothesis: String,
    /// Empty: nothing written down yet (the review says so).
    pub learned: Vec<String>,
    pub report: String,
}

/// Something an exercise hit beyond its targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    pub team: String,
    pub exercise: String,
    pub subject: String,
    pub what: String,
    pub owner: Option<String>,
    pub halted: bool,
}

/// Where a follow-up stands as of the period's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Standing {
    /// Open, and its due date has passed.
    Overdue,
    Open,
    /// A later run of the scenario that proves it confirmed its hypothesis.
    Verified,
    Done,
}

/// A follow-up, where it came from, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracked {
    pub standing: Standing,
    pub text: String,
    pub owner: Option<String>,
    pub due: Option<NaiveDate>,
    pub ticket: Option<String>,
    pub team: String,
    /// The exercise whose report holds it.
    pub from: String,
    /// The exercise whose confirming run verified it.
    pub verified_by: Option<String>,
}

/// The key figures of one team (or one group, or the org) over the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub name: String,
    pub group: String,
    /// Exercises started in the period.
    pub exercises: u32,
    pub confirmed: u32,
    /// Refuted or inconclusive with at least one lesson written down.
    pub taught: u32,
    pub aborted: u32,
    /// Exercises that hit something beyond their targets.
    pub with_collateral: u32,
    pub median_time_to_detect_s: Option<f64>,
    pub median_time_to_recover_s: Option<f64>,
    /// This period's median minus the previous period's (negative: faster).
    pub time_to_detect_change_s: Option<f64>,
    pub mean_confidence_before: Option<f64>,
    pub mean_confidence_after: Option<f64>,
    pub follow_ups_overdue: u32,
    pub follow_ups_verified: u32,
    /// Exercises per period over the last 12 periods, oldest first (this one last).
    pub exercises_by_period: Vec<u32>,
}

/// The four success metrics (the README defines them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Success {
    /// Engineers more confident: mean confidence before → after, over the exercises that
    /// recorded both.
    pub confidence_before: Option<f64>,
    pub confidence_after: Option<f64>,
    pub confidence_pairs: u32,
    /// Something new learned: refuted or inconclusive hypotheses with a lesson written down.
    pub hypotheses_taught: u32,
    /// Reliability improvements validated: follow-ups verified by a confirming run in the period.
    pub follow_ups_verified: u32,
    /// Incident response practised: exercises whose detection clause held, and the median
    /// time to detect.
    pub detections: u32,
    pub median_time_to_detect_s: Option<f64>,
}

/// One target of one team that was exercised.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Covered {
    pub team: String,
    /// `Deployment shop/checkout`, `Node (selector)`.
    pub target: String,
    /// `None`: never exercised (a workload of the cluster no report names).
    pub last_exercised: Option<DateTime<Utc>>,
    /// pod loss, network, node, in-pod stress.
    pub fault_classes: Vec<String>,
    pub stale: bool,
}

/// The review.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub view: View,
    pub org: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub ran: Vec<Ran>,
    pub learned: Vec<Lesson>,
    pub impact: Vec<Impact>,
    pub follow_ups: Vec<Tracked>,
    pub follow_ups_opened: u32,
    pub follow_ups_closed: u32,
    pub teams: Vec<Figures>,
    pub groups: Vec<Figures>,
    pub total: Figures,
    pub success: Success,
    pub coverage: Vec<Covered>,
}

/// The team of a report: the scenario's `team` label, else its owner.
pub fn team_of(report: &Summary) -> String {
    let scenario = &report.scenario;
    (scenario.metadata.labels.get("team").cloned())
        .or_else(|| scenario.spec.owner.clone())
        .unwrap_or_else(|| "(no team)".into())
}

fn within(at: DateTime<Utc>, since: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    at >= since && at < until
}

/// Builds the review of `sources` for `ask`.
pub fn review(sources: &[Source], ask: &Ask) -> Review {
    let (since, until) = (ask.since, ask.until);
    let mut in_period: Vec<&Source> = sources
        .iter()
        .filter(|s| within(s.report.started_at, since, until))
        .collect();
    in_period.sort_by_key(|s| (s.report.started_at, s.report.exercise.clone()));
    let ran = in_period
        .iter()
        .map(|s| {
            let team = team_of(&s.report);
            Ran {
                group: ask.org.group(&team),
                team,
                scenario: s.report.scenario.metadata.name.clone(),
                exercise: s.report.exercise.clone(),
                started_at: s.report.started_at,
                outcome: s.report.outcome,
                hypothesis: s.report.scenario.spec.hypothesis.clone(),
                report: s.at.clone(),
            }
        })
        .collect();
    let learned = in_period
        .iter()
        .filter(|s| matches!(s.report.outcome, Outcome::Refuted | Outcome::Inconclusive))
        .map(|s| Lesson {
            team: team_of(&s.report),
            scenario: s.report.scenario.metadata.name.clone(),
            exercise: s.report.exercise.clone(),
            outcome: s.report.outcome,
            hypothesis: s.report.scenario.spec.hypothesis.clone(),
            learned: s.report.learned.clone(),
            report: s.at.clone(),
        })
        .collect();
    let impact = in_period
        .iter()
        .flat_map(|s| {
            let team = team_of(&s.report);
            let observed = s.report.observed_blast_radius.iter();
            observed.flat_map(move |o| {
                let team = team.clone();
                o.collateral.iter().map(move |c| Impact {
                    team: team.clone(),
                    exercise: s.report.exercise.clone(),
                    subject: c.subject.clone(),
                    what: c.what.clone(),
                    owner: c.owner.clone(),
                    halted: c.halts,
                })
            })
        })
        .collect();
    let follow_ups = follow_ups(sources, until);
    let (opened, closed) = follow_up_flow(sources, since, until);
    let span = until - since;
    // Each report's team, once, and the period (of the last 12) it started in, if any.
    let teams_of: Vec<String> = sources.iter().map(|s| team_of(&s.report)).collect();
    let periods: Vec<Option<usize>> = sources
        .iter()
        .map(|s| {
            let back = (until - s.report.started_at).num_milliseconds();
            let span_ms = span.num_milliseconds().max(1);
            (back > 0 && back <= span_ms * 12).then(|| 11 - ((back - 1) / span_ms) as usize)
        })
        .collect();
    let figures_of = |name: String, group: String, pick: &dyn Fn(&str) -> bool| {
        let picked = || {
            (sources.iter().zip(&teams_of))
                .filter(|(_, team)| pick(team))
                .map(|(s, _)| s)
        };
        let now: Vec<&Summary> = in_period
            .iter()
            .filter(|s| pick(&team_of(&s.report)))
            .map(|s| &s.report)
            .collect();
        let before: Vec<&Summary> = picked()
            .map(|s| &s.report)
            .filter(|r| within(r.started_at, since - span, since))
            .collect();
        let mut history = vec![0u32; 12];
        for (period, team) in periods.iter().zip(&teams_of) {
            if let (Some(p), true) = (period, pick(team)) {
                history[*p] += 1;
            }
        }
        let tracked_here: Vec<&Tracked> = follow_ups.iter().filter(|t| pick(&t.team)).collect();
        figures(name, group, &now, &before, history, &tracked_here)
    };
    let teams_seen: BTreeSet<String> = teams_of.iter().cloned().collect();
    let teams: Vec<Figures> = teams_seen
        .iter()
        .map(|team| figures_of(team.clone(), ask.org.group(team), &|t: &str| t == team))
        .collect();
    let groups_seen: BTreeSet<String> = teams_seen.iter().map(|t| ask.org.group(t)).collect();
    let groups = groups_seen
        .iter()
        .map(|group| figures_of(group.clone(), group.clone(), &|t: &str| &ask.org.group(t) == group))
        .collect();
    let org = ask.org.org.clone().unwrap_or_else(|| "all teams".into());
    let total = figures_of(org.clone(), org.clone(), &|_| true);
    let success = success(&in_period, &follow_ups);
    Review {
        view: ask.view,
        org,
        since,
        until,
        ran,
        learned,
        impact,
        follow_ups,
        follow_ups_opened: opened,
        follow_ups_closed: closed,
        teams,
        groups,
        total,
        success,
        coverage: coverage(sources, until, ask.stale),
    }
}

fn figures(
    name: String,
    group: String,
    now: &[&Summary],
    before: &[&Summary],
    exercises_by_period: Vec<u32>,
    tracked: &[&Tracked],
) -> Figures {
    let count = |o: Outcome| now.iter().filter(|r| r.outcome == o).count() as u32;
    let detect = |reports: &[&Summary]| median(reports.iter().filter_map(|r| r.metrics.time_to_detect_s).collect());
    let mean = |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    let (ttd, ttd_before) = (detect(now), detect(before));
    Figures {
        name,
        group,
        exercises: now.len() as u32,
        confirmed: count(Outcome::Confirmed),
        taught: now.iter().filter(|r| taught(r)).count() as u32,
        aborted: count(Outcome::Aborted),
        with_collateral: now
            .iter()
            .filter(|r| {
                r.observed_blast_radius
                    .as_ref()
                    .is_some_and(|o| !o.collateral.is_empty())
            })
            .count() as u32,
        median_time_to_detect_s: ttd,
        median_time_to_recover_s: median(now.iter().filter_map(|r| r.metrics.time_to_recover_s).collect()),
        time_to_detect_change_s: ttd.zip(ttd_before).map(|(a, b)| a - b),
        mean_confidence_before: mean(now.iter().filter_map(|r| r.confidence_before).map(f64::from).collect()),
        mean_confidence_after: mean(now.iter().filter_map(|r| r.confidence_after).map(f64::from).collect()),
        follow_ups_overdue: tracked.iter().filter(|t| t.standing == Standing::Overdue).count() as u32,
        follow_ups_verified: tracked.iter().filter(|t| t.standing == Standing::Verified).count() as u32,
        exercises_by_period,
    }
}

/// Refuted or inconclusive, with a lesson written down.
fn taught(report: &Summary) -> bool {
    matches!(report.outcome, Outcome::Refuted | Outcome::Inconclusive) && !report.learned.is_empty()
}

/// Every follow-up of every report, as it stands at `until`: overdue first (the most overdue
/// first), then open, verified and done; a follow-up done or verified before the period's
/// previous one is left out.
pub fn follow_ups(sources: &[Source], until: DateTime<Utc>) -> Vec<Tracked> {
    let today = until.date_naive();
    // The confirming runs of each scenario, in the order they started, before `until`.
    let mut confirmed: BTreeMap<&str, Vec<(DateTime<Utc>, &str)>> = BTreeMap::new();
    for r in sources.iter().map(|s| &s.report) {
        if r.outcome == Outcome::Confirmed && r.started_at < until {
            let runs = confirmed.entry(r.scenario.metadata.name.as_str()).or_default();
            runs.push((r.started_at, r.exercise.as_str()));
        }
    }
    for runs in confirmed.values_mut() {
        runs.sort();
    }
    let confirmed = &confirmed;
    let mut rows: Vec<Tracked> = sources
        .iter()
        .flat_map(|s| {
            s.report.follow_ups.iter().map(move |f| {
                let opened = f.opened_at.unwrap_or(s.report.ended_at);
                // The first confirming run of the proving scenario after it was opened.
                let verifier = f.proven_by.as_deref().and_then(|scenario| {
                    let runs = confirmed.get(scenario)?;
                    let first = runs.partition_point(|(at, _)| *at <= opened);
                    runs.get(first).map(|(_, exercise)| *exercise)
                });
                let standing = match (f.status, verifier, f.due) {
                    (_, Some(_), _) => Standing::Verified,
                    (FollowUpStatus::Done, None, _) => Standing::Done,
                    (FollowUpStatus::Open, None, Some(due)) if due < today => Standing::Overdue,
                    (FollowUpStatus::Open, None, _) => Standing::Open,
                };
                Tracked {
                    standing,
                    text: f.text.clone(),
                    owner: f.owner.clone(),
                    due: f.due,
                    ticket: f.ticket.clone(),
                    team: team_of(&s.report),
                    from: s.report.exercise.clone(),
                    verified_by: verifier.map(str::to_owned),
                }
            })
        })
        .collect();
    // Within a standing: the soonest due first, those without a due date last.
    let key = |t: &Tracked| {
        (
            t.standing,
            t.due.is_none(),
            t.due,
            t.owner.clone(),
            t.from.clone(),
            t.text.clone(),
        )
    };
    rows.sort_by_key(key);
    rows
}

/// Follow-ups opened and closed (marked done) in the period.
fn follow_up_flow(sources: &[Source], since: DateTime<Utc>, until: DateTime<Utc>) -> (u32, u32) {
    let all = sources
        .iter()
        .flat_map(|s| s.report.follow_ups.iter().map(move |f| (s, f)));
    let opened = all
        .clone()
        .filter(|(s, f)| within(f.opened_at.unwrap_or(s.report.ended_at), since, until))
        .count() as u32;
    let closed = all
        .filter(|(_, f)| f.status == FollowUpStatus::Done && f.closed_at.is_some_and(|c| within(c, since, until)))
        .count() as u32;
    (opened, closed)
}

fn success(in_period: &[&Source], tracked: &[Tracked]) -> Success {
    let pairs: Vec<(u8, u8)> = in_period
        .iter()
        .filter_map(|s| Some((s.report.confidence_before?, s.report.confidence_after?)))
        .collect();
    let mean = |f: fn(&(u8, u8)) -> u8| {
        (!pairs.is_empty()).then(|| pairs.iter().map(|p| f64::from(f(p))).sum::<f64>() / pairs.len() as f64)
    };
    let verified_in_period = tracked
        .iter()
        .filter(|t| {
            t.verified_by
                .as_ref()
                .is_some_and(|by| in_period.iter().any(|s| &s.report.exercise == by))
        })
        .count() as u32;
    let detections: Vec<f64> = in_period
        .iter()
        .filter_map(|s| s.report.metrics.time_to_detect_s)
        .collect();
    Success {
        confidence_before: mean(|p| p.0),
        confidence_after: mean(|p| p.1),
        confidence_pairs: pairs.len() as u32,
        hypotheses_taught: in_period.iter().filter(|s| taught(&s.report)).count() as u32,
        follow_ups_verified: verified_in_period,
        detections: detections.len() as u32,
        median_time_to_detect_s: median(detections),
    }
}

/// The class of fault a fault kind belongs to.
fn fault_class(kind: &str) -> &'static str {
    match kind {
        "podKill" | "podEvict" | "containerKill" | "scale" => "pod loss",
        "networkPartition" | "dnsFailure" | "networkDelay" | "networkLoss" => "network",
        "nodeCordon" | "nodeDrain" => "node",
        _ => "in-pod stress",
    }
}

/// Each target each team exercised (whatever the period), when last and with which classes.
fn coverage(sources: &[Source], until: DateTime<Utc>, stale: chrono::Duration) -> Vec<Covered> {
    // (team, target) → when last exercised, and the fault classes tried.
    type Seen = (DateTime<Utc>, BTreeSet<&'static str>);
    let mut seen: BTreeMap<(String, String), Seen> = BTreeMap::new();
    for s in sources.iter().filter(|s| s.report.started_at < until) {
        let r = &s.report;
        if r.outcome == Outcome::Refused {
            continue;
        }
        let t = &r.scenario.spec.target;
        let name = t.name.clone().unwrap_or_else(|| "(selector)".into());
        let target = match &t.namespace {
            Some(ns) => format!("{} {ns}/{name}", t.kind.as_str()),
            None => format!("{} {name}", t.kind.as_str()),
        };
        let entry = seen
            .entry((team_of(r), target))
            .or_insert((r.started_at, BTreeSet::new()));
        entry.0 = entry.0.max(r.started_at);
        for fault in &r.scenario.spec.faults {
            if let Some((kind, _)) = fault.kinds().first() {
                entry.1.insert(fault_class(kind));
            }
        }
    }
    seen.into_iter()
        .map(|((team, target), (last, classes))| Covered {
            team,
            target,
            last_exercised: Some(last),
            fault_classes: classes.into_iter().map(str::to_owned).collect(),
            stale: until - last > stale,
        })
        .collect()
}

/// A workload of the cluster, for coverage: which team owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Its `team` label, else its namespace's; `None`: nobody said.
    pub team: Option<String>,
}

/// Adds the cluster's workloads that no report names to the coverage, as never exercised
/// (a workload in a protected namespace is left out: no exercise may target it). PURE.
pub fn add_never_exercised(review: &mut Review, workloads: &[Workload]) {
    let mut named: BTreeSet<String> = review.coverage.iter().map(|c| c.target.clone()).collect();
    for w in workloads {
        let target = format!("{} {}/{}", w.kind, w.namespace, w.name);
        if crate::scenario::model::PROTECTED_NAMESPACES.contains(&w.namespace.as_str()) || !named.insert(target.clone())
        {
            continue;
        }
        review.coverage.push(Covered {
            team: w.team.clone().unwrap_or_else(|| "(no team)".into()),
            target,
            last_exercised: None,
            fault_classes: Vec::new(),
            stale: false,
        });
    }
    review
        .coverage
        .sort_by(|a, b| (&a.team, &a.target).cmp(&(&b.team, &b.target)));
}

/// How a team's workloads stand: exercised within the stale limit, exercised longer ago, never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub exercised: u32,
    pub stale: u32,
    pub never: u32,
}

impl Coverage {
    /// The share of the team's workloads exercised within the stale limit.
    pub fn ratio(&self) -> f64 {
        let total = self.exercised + self.stale + self.never;
        if total == 0 {
            0.0
        } else {
            f64::from(self.exercised) / f64::from(total)
        }
    }
}

/// Each team's workloads of the cluster (a workload's team, else `(no team)`) by whether a
/// report exercised it before `until`, and how long ago; protected namespaces are left out. PURE.
pub fn coverage_by_team(
    sources: &[Source],
    workloads: &[Workload],
    until: DateTime<Utc>,
    stale: chrono::Duration,
) -> BTreeMap<String, Coverage> {
    let covered: BTreeMap<String, bool> =
        coverage(sources, until, stale)
            .into_iter()
            .fold(BTreeMap::new(), |mut all, c| {
                // Two teams may have exercised one target: recent if either did recently.
                *all.entry(c.target).or_insert(true) &= c.stale;
                all
            });
    let mut teams: BTreeMap<String, Coverage> = BTreeMap::new();
    for w in workloads {
        if crate::scenario::model::PROTECTED_NAMESPACES.contains(&w.namespace.as_str()) {
            continue;
        }
        let team = teams
            .entry(w.team.clone().unwrap_or_else(|| "(no team)".into()))
            .or_default();
        match covered.get(&format!("{} {}/{}", w.kind, w.namespace, w.name)) {
            Some(false) => team.exercised += 1,
            Some(true) => team.stale += 1,
            None => team.never += 1,
        }
    }
    teams
}

/// `▁▂▃▅▇`: values as a line of bars, for Markdown.
pub fn sparkline(values: &[u32]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let most = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|v| {
            BARS[((*v as usize) * (BARS.len() - 1))
                .div_ceil(most as usize)
                .min(BARS.len() - 1)]
        })
        .collect()
}

fn change(value: Option<f64>) -> String {
    match value {
        Some(c) if c < 0.0 => format!("↓ {}", seconds(Some(-c))),
        Some(c) if c > 0.0 => format!("↑ {}", seconds(Some(c))),
        Some(_) => "=".into(),
        None => "—".into(),
    }
}

fn confidence(before: Option<f64>, after: Option<f64>) -> String {
    let one = |c: Option<f64>| c.map_or("—".into(), |c| format!("{c:.1}"));
    format!("{} → {}", one(before), one(after))
}

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The period, said for people.
fn period(review: &Review) -> String {
    format!(
        "{} to {} (exercises started from the first day, up to the second)",
        day(review.since),
        day(review.until)
    )
}

/// One section of the review, as both renderings lay it out.
struct Section {
    title: String,
    /// 2: a section of the meeting; 3: a table within one.
    level: u8,
    lines: Vec<String>,
    table: Option<Table>,
    /// The figures whose last 12 periods the HTML charts.
    chart: Vec<Figures>,
}

impl Section {
    fn new(title: impl Into<String>) -> Self {
        Section {
            title: title.into(),
            level: 2,
            lines: Vec::new(),
            table: None,
            chart: Vec::new(),
        }
    }
}

/// The figures of one row: a team, a group or the org.
fn figures_row(f: &Figures) -> Vec<String> {
    vec![
        f.name.clone(),
        f.exercises.to_string(),
        f.confirmed.to_string(),
        f.taught.to_string(),
        f.aborted.to_string(),
        f.with_collateral.to_string(),
        format!(
            "{} ({})",
            seconds(f.median_time_to_detect_s),
            change(f.time_to_detect_change_s)
        ),
        seconds(f.median_time_to_recover_s),
        confidence(f.mean_confidence_before, f.mean_confidence_after),
        f.follow_ups_overdue.to_string(),
        f.follow_ups_verified.to_string(),
        sparkline(&f.exercises_by_period),
    ]
}

fn figures_table(rows: &[&Figures]) -> Table {
    let names = [
        "",
        "Exercises",
        "Confirmed",
        "Taught",
        "Aborted",
        "Hit beyond targets",
        "Detect (median, change)",
        "Recover (median)",
        "Confidence before → after",
        "Follow-ups overdue (at the end)",
        "Verified (to date)",
        "Last 12 periods",
    ];
    Table {
        columns: names.iter().map(|n| (*n, false)).collect(),
        rows: rows.iter().map(|f| figures_row(f)).collect(),
    }
}

/// The key figures each view shows: each team (team view), the teams of each group and the
/// group (lead view), the groups and the org (org view).
fn figure_sections(review: &Review) -> Vec<Section> {
    let section = |title: String, rows: Vec<&Figures>| Section {
        level: 3,
        table: Some(figures_table(&rows)),
        chart: rows.into_iter().cloned().collect(),
        ..Section::new(title)
    };
    match review.view {
        View::Team => vec![section("Teams".into(), review.teams.iter().collect())],
        View::Lead => review
            .groups
            .iter()
            .map(|g| {
                let rows = review.teams.iter().filter(|t| t.group == g.name).chain([g]).collect();
                section(format!("Group {}", g.name), rows)
            })
            .collect(),
        View::Org => vec![section(
            "Groups".into(),
            review.groups.iter().chain([&review.total]).collect(),
        )],
    }
}

/// The review's sections, in the order of the meeting, for its view.
fn sections(review: &Review) -> Vec<Section> {
    let mut all = Vec::new();
    let s = &review.success;
    all.push(Section {
        lines: vec![
            format!(
                "Engineers more confident: {} over {} exercise(s) that recorded both",
                confidence(s.confidence_before, s.confidence_after),
                s.confidence_pairs
            ),
            format!(
                "Something new learned: {} hypothesis(es) refuted or inconclusive with a lesson written down",
                s.hypotheses_taught
            ),
            format!(
                "Reliability improvements validated: {} follow-up(s) verified by a confirming run",
                s.follow_ups_verified
            ),
            format!(
                "Incident response practised: {} detection(s), median time to detect {}",
                s.detections,
                seconds(s.median_time_to_detect_s)
            ),
        ],
        ..Section::new("Success metrics")
    });
    let total = &review.total;
    let not_held = (review.ran.iter())
        .filter(|r| matches!(r.outcome, Outcome::Refuted | Outcome::Inconclusive))
        .count();
    let refused = review.ran.iter().filter(|r| r.outcome == Outcome::Refused).count();
    let mut ran = Section {
        lines: vec![format!(
            "{} exercise(s): {} confirmed, {not_held} refuted or inconclusive, {} aborted, {refused} refused",
            total.exercises, total.confirmed, total.aborted
        )],
        ..Section::new("What ran")
    };
    if review.view == View::Team && !review.ran.is_empty() {
        ran.table = Some(Table {
            columns: vec![
                ("Day", false),
                ("Team", false),
                ("Scenario", false),
                ("Verdict", false),
                ("Report", false),
            ],
            rows: (review.ran.iter())
                .map(|r| {
                    vec![
                        day(r.started_at),
                        r.team.clone(),
                        r.scenario.clone(),
                        outcome_word(r.outcome).to_owned(),
                        r.report.clone(),
                    ]
                })
                .collect(),
        });
    }
    all.push(ran);
    if review.view != View::Org {
        let mut learned = Section::new("What we learned");
        if review.learned.is_empty() {
            learned.lines.push("Every hypothesis held.".into());
        }
        for lesson in &review.learned {
            let lessons = if lesson.learned.is_empty() {
                "no lesson written down yet (disasterpiece annotate --learned)".to_owned()
            } else {
                lesson.learned.join("; ")
            };
            learned.lines.push(format!(
                "{} ({}, {}): {lessons} — {}",
                lesson.scenario,
                lesson.team,
                outcome_word(lesson.outcome),
                lesson.report
            ));
        }
        all.push(learned);
        let mut impact = Section::new("Unanticipated impact");
        if review.impact.is_empty() {
            impact
                .lines
                .push("Nothing beyond the declared blast radius was hit.".into());
        }
        for i in &review.impact {
            impact.lines.push(format!(
                "{} {} (owner {}), from {} of {}{}",
                i.subject,
                i.what,
                i.owner.as_deref().unwrap_or("unknown"),
                i.exercise,
                i.team,
                if i.halted { " — halted the exercise" } else { "" }
            ));
        }
        all.push(impact);
    }
    let count = |st: Standing| review.follow_ups.iter().filter(|t| t.standing == st).count();
    let shown: Vec<&Tracked> = (review.follow_ups.iter())
        .filter(|t| t.standing != Standing::Done && (review.view != View::Org || t.standing == Standing::Overdue))
        .collect();
    all.push(Section {
        lines: vec![format!(
            "{} opened and {} closed in the period; as of {}: {} overdue, {} open, {} verified",
            review.follow_ups_opened,
            review.follow_ups_closed,
            day(review.until),
            count(Standing::Overdue),
            count(Standing::Open),
            count(Standing::Verified)
        )],
        table: (!shown.is_empty()).then(|| Table {
            columns: vec![
                ("", false),
                ("Follow-up", false),
                ("Owner", false),
                ("Due", false),
                ("Ticket", false),
                ("Verified by", false),
            ],
            rows: (shown.iter())
                .map(|t| {
                    vec![
                        format!("{:?}", t.standing).to_uppercase(),
                        t.text.clone(),
                        t.owner.clone().unwrap_or_else(|| "nobody".into()),
                        t.due.map_or("—".into(), |d| d.to_string()),
                        t.ticket.clone().unwrap_or_default(),
                        t.verified_by.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        }),
        ..Section::new("Follow-ups")
    });
    all.push(Section::new("Key figures"));
    all.extend(figure_sections(review));
    if review.view != View::Org {
        all.push(Section {
            table: Some(Table {
                columns: vec![
                    ("Team", false),
                    ("Target", false),
                    ("Last exercised", false),
                    ("Fault classes", false),
                    ("", false),
                ],
                rows: (review.coverage.iter())
                    .map(|c| {
                        vec![
                            c.team.clone(),
                            c.target.clone(),
                            c.last_exercised.map_or("never".into(), day),
                            c.fault_classes.join(", "),
                            if c.stale { "STALE".into() } else { String::new() },
                        ]
                    })
                    .collect(),
            }),
            ..Section::new("Coverage")
        });
    }
    all
}

fn depth(view: View) -> &'static str {
    match view {
        View::Team => "team view",
        View::Lead => "lead view",
        View::Org => "org view",
    }
}

/// The review as Markdown: pastes into a document, or a Slack-compatible webhook.
pub fn markdown(review: &Review) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Weekly review — {} ({})\n",
        item(&review.org),
        depth(review.view)
    );
    let _ = writeln!(out, "Period: {}.", item(&period(review)));
    for section in sections(review) {
        let _ = writeln!(
            out,
            "\n{} {}",
            "#".repeat(usize::from(section.level)),
            item(&section.title)
        );
        if !section.lines.is_empty() {
            let _ = writeln!(out);
        }
        for line in &section.lines {
            let _ = writeln!(out, "- {}", item(line));
        }
        if let Some(table) = &section.table {
            let _ = writeln!(out);
            let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
            let _ = writeln!(out, "| {} |", names.join(" | "));
            let _ = writeln!(out, "|{}", " --- |".repeat(names.len()));
            for row in &table.rows {
                let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
    }
    out
}

/// The review as one self-contained HTML page: each table of key figures has an SVG chart of
/// the last 12 periods, with axes and a legend.
pub fn html(review: &Review) -> String {
    let mut out = String::new();
    let title = format!("Weekly review — {} ({})", review.org, depth(review.view));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>{}</title>\n<style>body{{font:15px/1.45 system-ui,sans-serif;color:#1d2330;max-width:1100px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}}th,td{{padding:.25em .5em;border-bottom:1px solid #e3e6ee;text-align:left}}th{{background:#f4f5f8}}svg text{{font:11px system-ui,sans-serif}}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>Period: {}.</p>\n",
        xml(&title),
        xml(&title),
        xml(&period(review))
    );
    for section in sections(review) {
        let _ = writeln!(out, "<h{0}>{1}</h{0}>", section.level, xml(&section.title));
        if !section.lines.is_empty() {
            let _ = writeln!(out, "<ul>");
            for line in &section.lines {
                let _ = writeln!(out, "<li>{}</li>", xml(line));
            }
            let _ = writeln!(out, "</ul>");
        }
        if !section.chart.is_empty() {
            out.push_str(&chart(&section.chart));
        }
        if let Some(table) = &section.table {
            out.push_str("<table>\n<tr>");
            for (name, _) in &table.columns {
                let _ = write!(out, "<th>{}</th>", xml(name));
            }
            out.push_str("</tr>\n");
            for row in &table.rows {
                let cells: String = row.iter().map(|c| format!("<td>{}</td>", xml(c))).collect();
                let _ = writeln!(out, "<tr>{cells}</tr>");
            }
            out.push_str("</table>\n");
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Exercises per period over the last 12 periods, one line per row, with axes and a legend.
fn chart(rows: &[Figures]) -> String {
    let (width, height, left, bottom, top) = (900.0, 210.0, 40.0, 170.0, 20.0);
    let most = rows
        .iter()
        .flat_map(|f| f.exercises_by_period.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (width - left - 180.0) / 11.0;
    let right = left + step * 11.0;
    let colours = [
        "#1b4fa0", "#2e9d55", "#c2571a", "#8a3ab9", "#a12622", "#0f7c8c", "#5b6270",
    ];
    let mut svg = format!(
        "<svg class=\"review-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" aria-label=\"Exercises per period over the last 12 periods\">\n<line class=\"axis x\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{right:.0}\" y2=\"{bottom}\" stroke=\"#556\"/><line class=\"axis y\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#556\"/>\n<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{most}</text><text x=\"{:.0}\" y=\"{bottom}\" text-anchor=\"end\">0</text><text x=\"{left}\" y=\"{:.0}\">11 periods before</text><text x=\"{right:.0}\" y=\"{:.0}\" text-anchor=\"end\">this period</text><text x=\"{left}\" y=\"12\">exercises per period</text>\n",
        left - 4.0,
        top + 4.0,
        left - 4.0,
        bottom + 16.0,
        bottom + 16.0,
    );
    for (i, f) in rows.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let points: Vec<String> = (f.exercises_by_period.iter().enumerate())
            .map(|(k, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + step * k as f64,
                    bottom - f64::from(*v) / f64::from(most) * (bottom - top)
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline><rect class=\"legend\" x=\"{:.0}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.0}\" y=\"{:.0}\">{}</text>",
            points.join(" "),
            xml(&f.name),
            width - 165.0,
            top + 16.0 * i as f64,
            width - 150.0,
            top + 9.0 + 16.0 * i as f64,
            xml(&f.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
