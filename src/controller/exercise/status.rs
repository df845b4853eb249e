//! What an Exercise shows: its Events as the engine goes, and its status, from its report.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::super::crd::{
    Condition, ConditionType, Exercise, ExerciseStatus, ExpectationStatus, Phase, StepState, Verdict,
};
use crate::clock::Clock;
use crate::engine::event::{Act, ExerciseEvent, Reason, Severity};
use crate::engine::run::Progress;
use crate::report::model::{Outcome, Report};
use crate::report::render::seconds;

/// Records Events on the Exercise as the engine goes.
pub(super) struct Recorder {
    pub reporter: super::super::events::Reporter,
    pub exercise: Exercise,
    pub clock: Clock,
}

impl Recorder {
    pub fn event(&self, reason: Reason, action: Act, severity: Severity, message: &str) {
        let ns = self.exercise.namespace().unwrap_or_default();
        let name = self.exercise.name_any();
        // The log says what the Event says: each phase, injection, revert and end at info.
        let object = format!("{ns}/{name}");
        if severity == Severity::Warning {
            tracing::warn!(exercise = %object, reason = reason.as_str(), "{message}");
        } else {
            tracing::info!(exercise = %object, reason = reason.as_str(), "{message}");
        }
        let involved = json!({"apiVersion": "disasterpiece.dev/v1alpha1", "kind": "Exercise", "name": name,
            "namespace": ns, "uid": self.exercise.uid()});
        self.reporter
            .record(involved, (reason, action, severity), message, self.clock.now());
    }
}

impl Progress for Recorder {
    fn event(&self, _elapsed: Duration, event: &ExerciseEvent) {
        let Some((reason, severity)) = event.reason() else {
            return;
        };
        let message = match event {
            ExerciseEvent::Phase { phase, .. } => format!("phase {phase}"),
            _ => event.line().unwrap_or_default(),
        };
        self.event(reason, event.action(), severity, &message);
    }
}

pub(super) fn condition(
    at: DateTime<Utc>,
    type_: ConditionType,
    status: bool,
    reason: &str,
    message: &str,
) -> Condition {
    Condition::new(at, type_, status, reason, message)
}

/// The conditions of a finished exercise: `Finished` with its verdict and what it says first,
/// and `Refused`, `Reverted`, `Aborted` as they happened. PURE.
fn conditions(report: &Report, verdict: Verdict, said: &str) -> Vec<Condition> {
    let at = report.ended_at;
    let mut conditions = vec![condition(at, ConditionType::Finished, true, verdict.as_str(), said)];
    if !report.refusals.is_empty() {
        // `kubectl describe` shows why, not only that, preflight refused.
        conditions.push(condition(
            at,
            ConditionType::Refused,
            true,
            "Refused",
            &report.refusals.join("; "),
        ));
    }
    if !report.revert_failures.is_empty() {
        conditions.push(condition(
            at,
            ConditionType::Reverted,
            false,
            "RevertFailed",
            &report.revert_failures.join("; "),
        ));
    } else if !report.injections.is_empty() {
        conditions.push(condition(
            at,
            ConditionType::Reverted,
            true,
            "Reverted",
            "every fault was reverted",
        ));
    }
    if let Some(abort) = &report.abort {
        conditions.push(condition(at, ConditionType::Aborted, true, "Aborted", &abort.reason));
    }
    conditions
}

/// The status of a finished exercise, from its report. PURE.
pub fn status_from(report: &Report, report_map: &str) -> ExerciseStatus {
    let verdict = Verdict::from(report.outcome);
    let finished = if report.outcome == Outcome::Refused {
        Phase::Refused
    } else {
        Phase::Finished
    };
    // What `kubectl get`/`describe` shows first: why it was refused or aborted, else the
    // hypothesis the verdict is about.
    let said = match (&report.refusals[..], &report.abort) {
        ([], None) => report.scenario.spec.hypothesis.clone(),
        ([], Some(abort)) => format!("aborted: {}", abort.reason),
        (refusals, _) => format!("refused before anything changed: {}", refusals.join("; ")),
    };
    let conditions = conditions(report, verdict, &said);
    ExerciseStatus {
        phase: Some(finished),
        verdict: Some(verdict),
        conditions,
        started_at: Some(report.started_at),
        ended_at: Some(report.ended_at),
        expectations: report
            .expectations
            .iter()
            .map(|e| ExpectationStatus {
                name: e.name.clone(),
                verdict: Some(e.verdict),
                first_held: e.first_held,
            })
            .collect(),
        time_to_detect: report.metrics.time_to_detect_s.map(|s| seconds(Some(s))),
        time_to_remediate: report.metrics.time_to_remediate_s.map(|s| seconds(Some(s))),
        time_to_recover: report.metrics.time_to_recover_s.map(|s| seconds(Some(s))),
        // Written when the run started; a merge patch keeps it.
        journal_namespace: None,
        journal: report
            .injections
            .iter()
            .map(|i| super::super::crd::JournalStatus {
                target: i.target.clone(),
                action: i.action.clone(),
                state: match (&i.injected_at, &i.reverted_at, &i.not_injected) {
                    (_, _, Some(_)) => StepState::NotInjected,
                    (Some(_), Some(_), _) => StepState::Reverted,
                    (Some(_), None, _) => StepState::Applied,
                    _ => StepState::Intended,
                },
            })
            .collect(),
        report: Some(report_map.to_owned()),
        observed_generation: None,
    }
}

pub(super) async fn set_status(api: &Api<Exercise>, name: &str, status: &ExerciseStatus) -> Result<(), kube::Error> {
    let patch = json!({"status": status});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finished_condition_says_why_a_run_was_refused_or_aborted() {
        let golden = crate::report::store::parse(include_str!("../../../tests/golden/report.json")).expect("golden");
        let finished = |report: &Report| {
            let status = status_from(report, "report-x");
            status
                .conditions
                .into_iter()
                .find(|c| c.type_ == ConditionType::Finished)
                .expect("Finished")
        };
        let mut refused = golden.clone();
        refused.outcome = Outcome::Refused;
        refused.abort = None;
        refused.refusals = vec!["not allowed to delete pods in shop".into()];
        let c = finished(&refused);
        assert_eq!(c.reason, "Refused");
        assert_eq!(
            c.message,
            "refused before anything changed: not allowed to delete pods in shop"
        );
        let mut plain = golden;
        plain.refusals.clear();
        plain.abort = None;
        assert_eq!(finished(&plain).message, plain.scenario.spec.hypothesis);
    }
}
