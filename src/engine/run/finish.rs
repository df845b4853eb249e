//! The report builder: the report, built at the end of an exercise from what it recorded.
//! PURE: the verdict and every metric are computed here, from the record alone, so a record
//! of any exercise (a test's history of half a year included) is judged as a run is.

use chrono::{DateTime, Utc};

use crate::report::model::{
    Abort, ActualBlastRadius, ClauseVerdict, Declared, Environment, Event, ExpectationResult, Injection, Metrics,
    ObservedBlastRadius, Outcome, REPORT_VERSION, Report, TargetChoice,
};
use crate::scenario::Scenario;
use crate::scenario::model::{HasProbe, ProbeKind, ScenarioSpec, Timing};

/// What an exercise recorded as it went.
#[derive(Debug, Default)]
pub struct Record {
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Why preflight refused, when it did: nothing was changed.
    pub refusals: Vec<String>,
    pub targets: Vec<TargetChoice>,
    pub timeline: Vec<Event>,
    pub injections: Vec<Injection>,
    pub expectations: Vec<ExpectationResult>,
    /// The abort, and the seconds from its request to the last revert confirmed.
    pub abort: Option<(Abort, f64)>,
    pub revert_failures: Vec<String>,
    /// The steady state returned (or an abort ended the watch: nothing to judge).
    pub recovered: bool,
    pub time_to_recover_s: Option<f64>,
    pub time_to_remediate_s: Option<f64>,
    pub retried_calls: Vec<String>,
    /// Why a fault ended before its window did, and when: the window ended there.
    pub ended_early: Option<String>,
    /// What the watch beyond the targets saw (its `declared` is filled in here).
    pub observed: Option<ObservedBlastRadius>,
}

/// Who ran it, and how sure they were.
#[derive(Debug, Default)]
pub struct People {
    pub host: Option<String>,
    pub participants: Vec<String>,
    pub confidence_before: Option<u8>,
}

pub fn report(
    exercise: String,
    scenario: &Scenario,
    environment: Environment,
    people: People,
    record: Record,
) -> Report {
    let spec = &scenario.spec;
    let ended_at = record.ended_at;
    let mut record = record;
    let no_fault = no_fault(&record);
    if let Some(why) = &no_fault {
        // No claim without evidence: what was seen while no fault was in place says nothing
        // about the hypothesis.
        for e in &mut record.expectations {
            e.verdict = ClauseVerdict::Inconclusive;
            e.observed = format!("cannot be judged: no fault was in place ({why}); seen: {}", e.observed);
        }
    }
    if let (Some(why), None) = (&record.ended_early, &no_fault) {
        // A clause meant to hold throughout the window was seen over part of it only: it
        // cannot confirm the hypothesis. What failed while the fault was in place still
        // refutes it, and a `within` clause that held did so under the fault.
        for e in &mut record.expectations {
            let throughout = spec
                .expect
                .iter()
                .any(|c| c.name == e.name && matches!(c.timing(), Some(Timing::Throughout)));
            if throughout && e.verdict == ClauseVerdict::Confirmed {
                e.verdict = ClauseVerdict::Inconclusive;
                e.observed = format!(
                    "cannot be confirmed: the fault ended early ({why}); seen: {}",
                    e.observed
                );
            }
        }
    }
    let outcome = outcome(&record, no_fault.is_some());
    let first_injection = record.injections.iter().filter_map(|i| i.injected_at).min();
    let last_revert = record.injections.iter().filter_map(|i| i.reverted_at).max();
    let metrics = Metrics {
        time_to_detect_s: first_injection.and_then(|at| detection(spec, &record.expectations, at)),
        time_to_remediate_s: record.time_to_remediate_s,
        time_to_recover_s: record.time_to_recover_s,
        abort_latency_s: record.abort.as_ref().map(|(_, latency)| *latency),
        availability: first_injection
            .and_then(|from| availability(&record.expectations, from, last_revert.unwrap_or(ended_at))),
        blast_radius: ActualBlastRadius {
            hit: record.injections.iter().filter(|i| i.injected_at.is_some()).count() as u32,
            chosen: record.targets.iter().map(|t| t.chosen.len() as u32).sum(),
            candidates: record
                .targets
                .iter()
                .map(|t| (t.chosen.len() + t.excluded.len()) as u32)
                .sum(),
        },
    };
    let observed_blast_radius = record.observed.map(|mut observed| {
        observed.declared = Declared {
            hit: record
                .injections
                .iter()
                .filter(|i| i.injected_at.is_some())
                .map(|i| i.target.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            spared: record
                .targets
                .iter()
                .flat_map(|t| t.excluded.iter().map(|(target, why)| format!("{target}: {why}")))
                .collect(),
        };
        observed
    });
    Report {
        report_version: REPORT_VERSION,
        exercise,
        scenario: scenario.clone(),
        environment,
        host: people.host,
        participants: people.participants,
        started_at: record.started_at,
        ended_at,
        outcome,
        refusals: record.refusals,
        timeline: record.timeline,
        targets: record.targets,
        injections: record.injections,
        expectations: record.expectations,
        metrics,
        abort: record.abort.map(|(abort, _)| abort),
        retried_calls: record.retried_calls,
        revert_failures: record.revert_failures,
        confidence_before: people.confidence_before,
        confidence_after: None,
        learned: Vec::new(),
        follow_ups: Vec::new(),
        observed_blast_radius,
    }
}

/// Refused before anything was done; aborted; inconclusive when no fault was in place (nothing
/// to judge the hypothesis by); refuted by a clause or a steady state that did not return;
/// inconclusive when a clause could not be judged; else confirmed.
fn outcome(record: &Record, no_fault: bool) -> Outcome {
    let any = |verdict| record.expectations.iter().any(|e| e.verdict == verdict);
    if !record.refusals.is_empty() {
        Outcome::Refused
    } else if record.abort.is_some() {
        Outcome::Aborted
    } else if no_fault {
        Outcome::Inconclusive
    } else if !record.recovered || any(ClauseVerdict::Refuted) {
        Outcome::Refuted
    } else if any(ClauseVerdict::Inconclusive) {
        Outcome::Inconclusive
    } else {
        Outcome::Confirmed
    }
}

/// Why no fault was in place, when none was in an exercise that ran (not refused, not
/// aborted): each target's reason, or that none was chosen.
fn no_fault(record: &Record) -> Option<String> {
    if !record.refusals.is_empty()
        || record.abort.is_some()
        || record.injections.iter().any(|i| i.injected_at.is_some())
    {
        return None;
    }
    let reasons: Vec<String> = record
        .injections
        .iter()
        .map(|i| format!("{}: {}", i.target, i.not_injected.as_deref().unwrap_or("not injected")))
        .collect();
    Some(if reasons.is_empty() {
        "no target was chosen".to_owned()
    } else {
        reasons.join("; ")
    })
}

/// The share of http probe samples that passed between the first injection and the last
/// revert; `None` without such samples.
fn availability(expectations: &[ExpectationResult], from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    let (passed, total) = expectations
        .iter()
        .filter(|e| e.probe == "http")
        .flat_map(|e| &e.history)
        .filter(|o| o.at >= from && o.at <= to && o.verdict != "inconclusive")
        .fold((0u32, 0u32), |(p, t), o| (p + u32::from(o.verdict == "pass"), t + 1));
    (total > 0).then(|| f64::from(passed) / f64::from(total))
}

/// Time to detect: from the first injection to the first detection clause that held — an
/// `alert` clause, else a `prometheus` one (what a monitoring system would page on). Other
/// clauses (a pod count, an http answer) measure the system, not its detection: a run with
/// none has no time to detect.
fn detection(spec: &ScenarioSpec, expectations: &[ExpectationResult], injected: DateTime<Utc>) -> Option<f64> {
    let held = |alerts: bool| {
        spec.expect
            .iter()
            .filter(|c| c.timing().is_some())
            .zip(expectations)
            .filter(|(c, _)| {
                matches!(c.timing(), Some(Timing::Within(_)))
                    && match c.probe() {
                        Some(ProbeKind::Alert(_)) => alerts,
                        Some(ProbeKind::Prometheus(_)) => !alerts,
                        _ => false,
                    }
            })
            .filter_map(|(_, r)| r.first_held)
            .min()
    };
    held(true)
        .or_else(|| held(false))
        .map(|at| (at - injected).num_milliseconds() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Observation;

    fn scenario() -> Scenario {
        let text = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: keeps-serving}
spec:
  hypothesis: Checkout keeps serving.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{podKill: {}}]
  duration: 10s
  expect:
    - {name: serves, http: {url: 'http://checkout.shop.svc/'}, throughout: true}
";
        match crate::scenario::load(text, &|_| true).resources.remove(0).1 {
            crate::scenario::Resource::Scenario(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    fn record(injected: bool) -> Record {
        let at = DateTime::<Utc>::default();
        Record {
            recovered: true,
            injections: vec![Injection {
                fault: "podKill".into(),
                target: "pod shop/checkout-a".into(),
                action: "delete pod shop/checkout-a".into(),
                injected_at: injected.then_some(at),
                not_injected: (!injected).then(|| "the guard says not Ready".to_owned()),
                reverted_at: None,
                evicted: Vec::new(),
                partial: None,
            }],
            expectations: vec![ExpectationResult {
                name: "serves".into(),
                expected: "throughout the fault".into(),
                verdict: ClauseVerdict::Confirmed,
                first_held: None,
                observed: "200 in 3 ms".into(),
                samples: 10,
                probe: "http".into(),
                history: vec![Observation {
                    at,
                    verdict: "pass".into(),
                    observed: "200 in 3 ms".into(),
                    latency_ms: Some(3.0),
                }],
            }],
            ..Record::default()
        }
    }

    #[test]
    fn a_hypothesis_is_judged_only_with_a_fault_in_place() {
        let report = |injected| {
            super::report(
                "ex".into(),
                &scenario(),
                Environment::default(),
                People::default(),
                record(injected),
            )
        };
        assert_eq!(report(true).outcome, Outcome::Confirmed);
        let none = report(false);
        assert_eq!(none.outcome, Outcome::Inconclusive);
        assert_eq!(none.expectations[0].verdict, ClauseVerdict::Inconclusive);
        assert_eq!(
            none.expectations[0].observed,
            "cannot be judged: no fault was in place (pod shop/checkout-a: the guard says not Ready); seen: 200 in 3 ms"
        );
    }
}
