//! What an exercise says as it goes: one typed stream of [`ExerciseEvent`]s. The CLI's
//! progress, the report's timeline and the controller's Kubernetes Events are all read from
//! it — each by matching on the variant, never by parsing the English of [`ExerciseEvent::line`].
//! PURE.

use std::fmt;
use std::time::Duration;

/// The phases of an exercise, in order. `Revert` always runs once injection began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Preflight,
    Inject,
    Observe,
    Revert,
    Recovery,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Inject => "inject",
            Phase::Observe => "observe",
            Phase::Revert => "revert",
            Phase::Recovery => "recovery",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one expectation stands while the exercise runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClauseState {
    /// Not decided yet.
    Pending,
    /// A `throughout` clause not failed so far: all it can say before the end.
    Holding,
    Held,
    Failed,
}

/// Whether a Kubernetes Event of it would be `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "Normal",
            Severity::Warning => "Warning",
        }
    }
}

/// Why a Kubernetes Event about an exercise is recorded: its `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Phase,
    Refused,
    Spared,
    InjectionFailed,
    Injected,
    Evicted,
    PartlyInjected,
    NotInjected,
    SlowInjection,
    NothingInPlace,
    FaultEndedEarly,
    ExpectationHeld,
    ExpectationFailed,
    Aborted,
    Reverted,
    RevertFailed,
    UnanticipatedImpact,
    Recovered,
    NotRecovered,
    Started,
    Finished,
    WebhookRefused,
    Invalid,
}

impl Reason {
    /// As the Event spells it (UpperCamelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Phase => "Phase",
            Reason::Refused => "Refused",
            Reason::Spared => "Spared",
            Reason::InjectionFailed => "InjectionFailed",
            Reason::Injected => "Injected",
            Reason::Evicted => "Evicted",
            Reason::PartlyInjected => "PartlyInjected",
            Reason::NotInjected => "NotInjected",
            Reason::SlowInjection => "SlowInjection",
            Reason::NothingInPlace => "NothingInPlace",
            Reason::FaultEndedEarly => "FaultEndedEarly",
            Reason::ExpectationHeld => "ExpectationHeld",
            Reason::ExpectationFailed => "ExpectationFailed",
            Reason::Aborted => "Aborted",
            Reason::Reverted => "Reverted",
            Reason::RevertFailed => "RevertFailed",
            Reason::UnanticipatedImpact => "UnanticipatedImpact",
            Reason::Recovered => "Recovered",
            Reason::NotRecovered => "NotRecovered",
            Reason::Started => "Started",
            Reason::Finished => "Finished",
            Reason::WebhookRefused => "WebhookRefused",
            Reason::Invalid => "Invalid",
        }
    }
}

/// What was being done when an Event was recorded: its `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Run,
    Preflight,
    Inject,
    Observe,
    Abort,
    Revert,
    Recover,
    Start,
    Report,
    Notify,
    TakeOver,
    Validate,
}

impl Act {
    /// As the Event spells it (UpperCamelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Run => "Run",
            Act::Preflight => "Preflight",
            Act::Inject => "Inject",
            Act::Observe => "Observe",
            Act::Abort => "Abort",
            Act::Revert => "Revert",
            Act::Recover => "Recover",
            Act::Start => "Start",
            Act::Report => "Report",
            Act::Notify => "Notify",
            Act::TakeOver => "TakeOver",
            Act::Validate => "Validate",
        }
    }
}

/// One thing that happened in an exercise.
#[derive(Debug, Clone, PartialEq)]
pub enum ExerciseEvent {
    /// A phase starts. `window`: how long it lasts at most, when known; `every`: how often it
    /// samples, for the phases that do.
    Phase {
        phase: Phase,
        window: Option<Duration>,
        every: Option<Duration>,
    },
    /// Preflight said no: nothing was changed.
    Refused {
        reason: String,
    },
    /// A target was spared at the last moment (the guard's second look, another exercise).
    Spared {
        target: String,
        reason: String,
    },
    /// A fault could not be prepared for its target; the exercise stops injecting.
    PrepareFailed {
        target: String,
        error: String,
    },
    Injected {
        action: String,
    },
    /// Pods a drain evicted.
    Evicted {
        pods: Vec<String>,
    },
    /// Part of the fault is in place (a drain that timed out with pods left).
    Partial {
        action: String,
        reason: String,
        evicted: Vec<String>,
    },
    /// The fault was tried and is not in place.
    NotInjected {
        action: String,
        reason: String,
    },
    /// The abort came while the fault was being applied; its undo steps run with the others.
    Interrupted {
        action: String,
    },
    /// Applying the fault failed; the exercise stops injecting.
    InjectFailed {
        action: String,
        error: String,
    },
    /// No fault went in: there is nothing to observe, and the window is skipped.
    NothingInPlace,
    /// A fault ended before its window did (a fault container whose script or stressor
    /// stopped): the window ends here, as nothing is left to observe the hypothesis under.
    FaultEnded {
        action: String,
        reason: String,
    },
    /// Injection took long; the window starts when it is complete.
    SlowInjection {
        took: Duration,
        window: String,
    },
    /// The expectations as they stand.
    Clauses {
        states: Vec<(String, ClauseState)>,
    },
    /// An expectation held (a `within` or after-recovery clause).
    Held {
        clause: String,
        observed: String,
    },
    /// A `throughout` clause failed.
    Failed {
        clause: String,
        observed: String,
    },
    /// A `within` clause's time ran out.
    Missed {
        clause: String,
        within: String,
        observed: String,
    },
    /// The Andon cord: signal, `abortWhen`, kill switch, a failed injection. `during`: the
    /// phase it came in; after the revert there is nothing left to revert.
    Abort {
        reason: String,
        during: Phase,
    },
    /// Every journaled action was put back, or `failed` undo steps were not.
    Reverted {
        actions: usize,
        failed: Vec<String>,
    },
    Recovered,
    NotRecovered {
        within: String,
    },
    /// Something outside the declared blast radius degraded or alerted (the observed blast
    /// radius); `halts`: a halt rule matched it, and the exercise stops.
    Collateral {
        subject: String,
        what: String,
        owner: Option<String>,
        halts: bool,
    },
    /// Something is left in place: the journal stays for `disasterpiece recover`.
    JournalKept {
        journal: String,
    },
    /// Everything was reverted, but the journal could not be deleted.
    JournalNotClosed {
        error: String,
    },
}

impl ExerciseEvent {
    /// The report timeline's entries for it: `(kind, detail)`. The kinds are the report's
    /// (`phase`, `injected`, `expectation`, …); a progress update has none.
    pub fn timeline(&self) -> Vec<(&'static str, String)> {
        use ExerciseEvent as E;
        match self {
            E::Phase { phase, .. } => vec![("phase", phase.to_string())],
            E::Refused { reason } => vec![("refused", reason.clone())],
            E::Spared { target, reason } => vec![("skipped", format!("{target}: {reason}"))],
            E::PrepareFailed { target, error } => vec![("error", format!("prepare {target}: {error}"))],
            E::Injected { action } => vec![("injected", action.clone())],
            E::Evicted { pods } => pods.iter().map(|p| ("evicted", p.clone())).collect(),
            E::Partial {
                action,
                reason,
                evicted,
            } => std::iter::once(("partial", format!("{action}: {reason}")))
                .chain(evicted.iter().map(|p| ("evicted", p.clone())))
                .collect(),
            E::NotInjected { action, reason } => vec![("notInjected", format!("{action}: {reason}"))],
            E::Interrupted { action } => vec![("notInjected", format!("{action}: {INTERRUPTED}"))],
            E::InjectFailed { action, error } => vec![("error", format!("{action}: {error}"))],
            E::SlowInjection { .. } => vec![("slowInjection", self.line().unwrap_or_default())],
            E::NothingInPlace => vec![("notObserved", self.line().unwrap_or_default())],
            E::FaultEnded { action, reason } => vec![("faultEnded", format!("{action}: {reason}"))],
            E::Clauses { .. } | E::JournalKept { .. } | E::JournalNotClosed { .. } => Vec::new(),
            E::Held { clause, observed } => vec![("expectation", format!("`{clause}` holds: {observed}"))],
            E::Failed { clause, observed } => vec![("expectation", format!("`{clause}` failed: {observed}"))],
            E::Missed { clause, within, .. } => {
                vec![("expectation", format!("`{clause}` did not hold within {within}"))]
            }
            E::Abort { reason, .. } => vec![("abort", reason.clone())],
            E::Reverted { actions, failed } if failed.is_empty() => vec![("reverted", format!("{actions} action(s)"))],
            E::Reverted { actions, failed } => vec![(
                "revertFailed",
                format!(
                    "{actions} action(s); {} undo step(s) failed: {}",
                    failed.len(),
                    failed.join("; ")
                ),
            )],
            E::Collateral { .. } => vec![("collateral", self.line().unwrap_or_default())],
            E::Recovered => vec![("recovered", "steady state holds again".into())],
            E::NotRecovered { within } => {
                vec![("notRecovered", format!("steady state did not return within {within}"))]
            }
        }
    }

    /// What a person watching is told, in one line; `None` for what only updates a display.
    pub fn line(&self) -> Option<String> {
        use ExerciseEvent as E;
        Some(match self {
            E::Phase {
                phase: Phase::Preflight,
                ..
            } => "preflight: targets, guards, steady state, permissions, dry run".into(),
            E::Phase {
                phase: Phase::Observe,
                window,
                every,
            } => format!(
                "observing for {} (every {:.1}s)",
                seconds(window.unwrap_or_default()),
                every.unwrap_or_default().as_secs_f64()
            ),
            E::Phase {
                phase: Phase::Recovery,
                window,
                ..
            } => format!(
                "recovery: steady state must return within {}",
                seconds(window.unwrap_or_default())
            ),
            E::Phase { .. } | E::Clauses { .. } => return None,
            E::Refused { reason } => format!("refused: {reason}"),
            E::Spared { target, reason } => format!("skipped {target}: {reason}"),
            E::PrepareFailed { target, error } => format!("could not prepare {target}: {error}"),
            E::Injected { action } => format!("injected: {action}"),
            E::Evicted { pods } => format!("evicted {} pod(s)", pods.len()),
            E::Partial { action, reason, .. } => format!("partly injected: {action} — {reason}"),
            E::NotInjected { action, reason } => format!("not injected: {action} — {reason}"),
            E::Interrupted { action } => format!("{action}: {INTERRUPTED}"),
            E::InjectFailed { action, error } => format!("injection failed: {action}: {error}"),
            E::SlowInjection { took, window } => format!(
                "injection took {:.1}s; the {window} window starts now",
                took.as_secs_f64()
            ),
            E::NothingInPlace => "no fault went in: nothing to observe, the window is skipped".into(),
            E::FaultEnded { action, reason } => {
                format!("a fault ended early ({action}: {reason}): the window ends here")
            }
            E::Held { clause, observed } => format!("expectation `{clause}` holds: {observed}"),
            E::Failed { clause, observed } => format!("expectation `{clause}` FAILED: {observed}"),
            E::Missed {
                clause,
                within,
                observed,
            } => format!("expectation `{clause}` did not hold within {within}: {observed}"),
            E::Abort {
                reason,
                during: Phase::Recovery,
            } => format!("ABORT: {reason} — the faults were already reverted; recovery not watched further"),
            E::Abort {
                reason,
                during: Phase::Preflight,
            } => format!("ABORT: {reason} — before anything was changed"),
            E::Abort { reason, .. } => format!("ABORT: {reason} — reverting everything"),
            E::Reverted { actions, failed } if failed.is_empty() => format!("reverted {actions} journaled action(s)"),
            E::Reverted { actions, failed } => format!(
                "reverted {actions} journaled action(s); {} undo step(s) FAILED",
                failed.len()
            ),
            E::Collateral {
                subject,
                what,
                owner,
                halts,
            } => format!(
                "beyond the targets: {subject} {what}{}{}",
                owner.as_deref().map(|o| format!(" (owner {o})")).unwrap_or_default(),
                if *halts { " — this halts the exercise" } else { "" }
            ),
            E::Recovered => "steady state is back".into(),
            E::NotRecovered { within } => format!("steady state did NOT return within {within}"),
            E::JournalKept { journal } => {
                format!("the journal {journal} is kept: run `disasterpiece recover`")
            }
            E::JournalNotClosed { error } => {
                format!("could not close the journal: {error}; `disasterpiece recover` will")
            }
        })
    }

    /// The reason and type of the Kubernetes Event the controller records for it; `None` for
    /// what is not worth one.
    pub fn reason(&self) -> Option<(Reason, Severity)> {
        use ExerciseEvent as E;
        use Severity::{Normal, Warning};
        Some(match self {
            E::Phase { .. } => (Reason::Phase, Normal),
            E::Refused { .. } => (Reason::Refused, Warning),
            E::Spared { .. } => (Reason::Spared, Normal),
            E::PrepareFailed { .. } | E::InjectFailed { .. } => (Reason::InjectionFailed, Warning),
            E::Injected { .. } => (Reason::Injected, Normal),
            E::Evicted { .. } => (Reason::Evicted, Normal),
            E::Partial { .. } => (Reason::PartlyInjected, Warning),
            E::NotInjected { .. } | E::Interrupted { .. } => (Reason::NotInjected, Warning),
            E::SlowInjection { .. } => (Reason::SlowInjection, Warning),
            E::NothingInPlace => (Reason::NothingInPlace, Warning),
            E::FaultEnded { .. } => (Reason::FaultEndedEarly, Warning),
            E::Held { .. } => (Reason::ExpectationHeld, Normal),
            E::Failed { .. } | E::Missed { .. } => (Reason::ExpectationFailed, Warning),
            E::Abort { .. } => (Reason::Aborted, Warning),
            E::Reverted { failed, .. } if failed.is_empty() => (Reason::Reverted, Normal),
            E::Reverted { .. } | E::JournalKept { .. } => (Reason::RevertFailed, Warning),
            E::Collateral { .. } => (Reason::UnanticipatedImpact, Warning),
            E::Recovered => (Reason::Recovered, Normal),
            E::NotRecovered { .. } => (Reason::NotRecovered, Warning),
            E::Clauses { .. } | E::JournalNotClosed { .. } => return None,
        })
    }
}

impl ExerciseEvent {
    /// What the exercise was doing when this happened, for an Event's `action`: `Run`,
    /// `Preflight`, `Inject`, `Observe`, `Abort`, `Revert` or `Recover`. PURE.
    pub fn action(&self) -> Act {
        use ExerciseEvent as E;
        match self {
            E::Phase { .. } | E::Clauses { .. } => Act::Run,
            E::Refused { .. } => Act::Preflight,
            E::Spared { .. }
            | E::PrepareFailed { .. }
            | E::InjectFailed { .. }
            | E::Injected { .. }
            | E::Evicted { .. }
            | E::Partial { .. }
            | E::NotInjected { .. }
            | E::Interrupted { .. }
            | E::SlowInjection { .. }
            | E::NothingInPlace => Act::Inject,
            E::FaultEnded { .. } | E::Held { .. } | E::Failed { .. } | E::Missed { .. } | E::Collateral { .. } => {
                Act::Observe
            }
            E::Abort { .. } => Act::Abort,
            E::Reverted { .. } | E::JournalKept { .. } | E::JournalNotClosed { .. } => Act::Revert,
            E::Recovered | E::NotRecovered { .. } => Act::Recover,
        }
    }
}

const INTERRUPTED: &str = "interrupted by the abort while it was being injected; its undo steps were run";

/// `20s`, `2m`, `1m30s`: as a scenario writes durations.
fn seconds(d: Duration) -> String {
    crate::scenario::Duration::from(d).to_string()
}

/// The line a terminal shows for `event` at `elapsed` into the exercise: `[   1.2s] injected: …`.
pub fn stamped(elapsed: Duration, event: &ExerciseEvent) -> Option<String> {
    event
        .line()
        .map(|line| format!("[{:>6.1}s] {line}", elapsed.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_revert_is_a_warning_with_its_own_timeline_kind_and_says_how_many_steps_failed() {
        let failed = ExerciseEvent::Reverted {
            actions: 2,
            failed: vec!["uncordon node a: 403".into()],
        };
        assert_eq!(failed.reason(), Some((Reason::RevertFailed, Severity::Warning)));
        assert_eq!(failed.timeline()[0].0, "revertFailed");
        assert_eq!(
            failed.line().as_deref(),
            Some("reverted 2 journaled action(s); 1 undo step(s) FAILED")
        );
        let fine = ExerciseEvent::Reverted {
            actions: 2,
            failed: Vec::new(),
        };
        assert_eq!(fine.reason(), Some((Reason::Reverted, Severity::Normal)));
        assert_eq!(fine.timeline(), vec![("reverted", "2 action(s)".to_owned())]);
    }

    #[test]
    fn an_abort_after_the_revert_says_there_was_nothing_left_to_revert() {
        let late = ExerciseEvent::Abort {
            reason: "SIGINT".into(),
            during: Phase::Recovery,
        };
        assert!(late.line().is_some_and(|l| l.contains("already reverted")));
        let early = ExerciseEvent::Abort {
            reason: "SIGINT".into(),
            during: Phase::Observe,
        };
        assert!(early.line().is_some_and(|l| l.contains("reverting everything")));
    }

    #[test]
    fn a_partial_drain_puts_each_evicted_pod_on_the_timeline() {
        let partial = ExerciseEvent::Partial {
            action: "drain node a".into(),
            reason: "timed out".into(),
            evicted: vec!["shop/x".into(), "shop/y".into()],
        };
        let kinds: Vec<_> = partial.timeline().into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["partial", "evicted", "evicted"]);
    }
}
