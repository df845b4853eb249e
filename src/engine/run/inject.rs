//! The inject phase: every fault on each of its chosen targets, in order. For each target: the
//! fault is prepared, its intent journaled, the guard asked again with the cluster as it is
//! now and every live exercise's record (the intent written first, so of two exercises asking
//! at once the later sees the earlier), then it is applied — raced with the Andon cord.

use std::time::Duration;

use tokio::time::Instant;

use super::{Exercise, kill_switch};
use crate::blast_radius::guard::{Disruption, second_look};
use crate::blast_radius::resolve::resolve;
use crate::blast_radius::{Candidate, Unit};
use crate::engine::abort::unless_aborted;
use crate::engine::event::{ExerciseEvent, Phase};
use crate::engine::journal::{self, Entry, Journal, State};
use crate::engine::journal::{held_by_another, journal_namespace};
use crate::engine::plan::Plan;
use crate::fault::{self, Context, Outcome};
use crate::report::model::Injection;
use crate::scenario::model::FaultKind;

/// What the inject phase did.
pub(super) struct Injected {
    pub injections: Vec<Injection>,
    /// The journaled entries, each with the index of its injection record: what the revert
    /// puts back.
    pub entries: Vec<(Entry, usize)>,
    /// When the first fault went in: `within` clauses count from here.
    pub first: Option<Instant>,
    /// When injection was complete: the window opens.
    pub complete: Instant,
}

/// Whether injection goes on after one target.
enum Next {
    Continue,
    Stop,
}

pub(super) async fn inject(x: &mut Exercise<'_>, ctx: &Context, plan: &Plan, journal: &Journal) -> Injected {
    x.enter(Phase::Inject, None, None);
    let started = Instant::now();
    let mut done = Injected {
        injections: Vec::new(),
        entries: Vec::new(),
        first: None,
        complete: started,
    };
    // The faults must be gone by then at the latest (recovery's mark for a dead run).
    let expires = x.options.clock.now()
        + chrono::Duration::from_std(x.spec.duration.as_std() + Duration::from_secs(60)).unwrap_or_default();
    'faults: for (fault_plan, fault) in plan.faults.iter().zip(&x.spec.faults) {
        let Some(kind) = fault.kind() else { continue };
        for (target, step) in fault_plan.chosen.iter().zip(&fault_plan.steps) {
            let mut cord = x.abort.clone();
            let pulled = unless_aborted(
                &mut cord,
                kill_switch(x.client, &x.options.kill_switch, x.spec.target.namespace.as_deref()),
            )
            .await;
            x.check_abort();
            if let Some(Some(reason)) = pulled {
                x.abort_with(reason);
            }
            if x.aborted.is_some() {
                break 'faults;
            }
            let mut record = Injection {
                fault: fault_plan.fault.clone(),
                target: target.display(),
                action: step.does.clone(),
                injected_at: None,
                not_injected: None,
                reverted_at: None,
                evicted: Vec::new(),
                partial: None,
            };
            let (entry, next) = one(x, ctx, journal, (kind, fault_plan.unit, target), &mut record, expires).await;
            if record.injected_at.is_some() && done.first.is_none() {
                done.first = Some(Instant::now());
            }
            if let Some(entry) = entry {
                done.entries.push((entry, done.injections.len()));
            }
            done.injections.push(record);
            if let Next::Stop = next {
                break 'faults;
            }
        }
    }
    done.complete = Instant::now();
    let took = done.complete - started;
    if x.aborted.is_none() && took > Duration::from_secs(1) {
        let window = x.spec.duration.to_string();
        x.emit(ExerciseEvent::SlowInjection { took, window });
    }
    done
}

/// One fault on one target; returns its journal entry when one was written. Every wait is
/// raced with the Andon cord: an abort before the fault is sent leaves nothing to undo (an
/// intent written but not known here is deleted with the journal), one while it is applied
/// leaves its entry for the revert.
async fn one(
    x: &mut Exercise<'_>,
    ctx: &Context,
    journal: &Journal,
    (kind, unit, target): (FaultKind<'_>, Unit, &Candidate),
    record: &mut Injection,
    expires: chrono::DateTime<chrono::Utc>,
) -> (Option<Entry>, Next) {
    let (client, exercise) = (x.client, &x.options.exercise);
    let mut cord = x.abort.clone();
    let prepared = match unless_aborted(&mut cord, fault::prepare(ctx, kind, target)).await {
        None => return (None, cut(x, record)),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            record.not_injected = Some(e.to_string());
            let error = e.to_string();
            x.emit(ExerciseEvent::PrepareFailed {
                target: target.display(),
                error: error.clone(),
            });
            x.abort_with(format!("could not prepare {}: {error}", target.display()));
            return (None, Next::Stop);
        }
    };
    // The action as it will be sent (the plan's names the dry run's objects).
    record.action = prepared.action.to_string();
    match unless_aborted(&mut cord, held_by_another(client, &prepared.action, exercise)).await {
        None => return (None, cut(x, record)),
        Some(Some(held)) => return (None, spare(x, record, target, held)),
        Some(None) => {}
    }
    let entry = match unless_aborted(&mut cord, journal.intend(&target.display(), &prepared, expires)).await {
        None => return (None, cut(x, record)),
        Some(Ok(entry)) => entry,
        Some(Err(e)) => {
            // Not journaled, so not sent: nothing may happen that cannot be undone.
            record.not_injected = Some(format!("not journaled, so not sent: {e}"));
            x.abort_with(format!("journal write failed: {e}"));
            return (None, Next::Stop);
        }
    };
    match unless_aborted(&mut cord, look(x, unit, target, &entry)).await {
        None => return (Some(entry), cut(x, record)),
        Some(Some(reason)) => {
            // Nothing was done; an intent that cannot be taken back is reverted with the
            // others (its undo steps find nothing to undo).
            let kept = journal.withdraw(entry.id).await.is_err().then_some(entry);
            return (kept, spare(x, record, target, format!("the guard says {reason}")));
        }
        Some(None) => {}
    }
    // Applying may wait long (a drain a PodDisruptionBudget blocks, an image pull, a container
    // restart). What it did so far is journaled; its undo steps run with the others.
    let action = prepared.action.to_string();
    let Some(applied) = unless_aborted(&mut cord, fault::apply(ctx, &prepared)).await else {
        x.check_abort();
        record.not_injected =
            Some("interrupted by the abort while it was being injected; its undo steps were run".into());
        x.emit(ExerciseEvent::Interrupted { action });
        return (Some(entry), Next::Stop);
    };
    let next = outcome(x, record, action, applied);
    if record.injected_at.is_some() {
        // Best effort: an entry still `intended` is reverted all the same.
        let _ = journal.mark(entry.id, State::Applied).await;
    }
    (Some(entry), next)
}

/// The abort came before the fault was sent.
fn cut(x: &mut Exercise<'_>, record: &mut Injection) -> Next {
    x.check_abort();
    record.not_injected = Some("not sent: the abort came first".into());
    Next::Stop
}

/// What applying did, on the record and in events.
fn outcome(
    x: &mut Exercise<'_>,
    record: &mut Injection,
    action: String,
    applied: Result<Outcome, fault::FaultError>,
) -> Next {
    match applied {
        Ok(Outcome::Injected) => {
            record.injected_at = Some(x.options.clock.now());
            x.emit(ExerciseEvent::Injected { action });
        }
        Ok(Outcome::Evicted { pods }) => {
            record.injected_at = Some(x.options.clock.now());
            x.emit(ExerciseEvent::Injected { action });
            record.evicted = pods.clone();
            x.emit(ExerciseEvent::Evicted { pods });
        }
        Ok(Outcome::Partial { evicted, reason }) => {
            record.injected_at = Some(x.options.clock.now());
            record.evicted = evicted.clone();
            record.partial = Some(reason.clone());
            x.emit(ExerciseEvent::Partial {
                action,
                reason,
                evicted,
            });
        }
        Ok(Outcome::NotInjected { reason }) => {
            record.not_injected = Some(reason.clone());
            x.emit(ExerciseEvent::NotInjected { action, reason });
        }
        Err(e) => {
            record.not_injected = Some(e.to_string());
            x.emit(ExerciseEvent::InjectFailed {
                action,
                error: e.to_string(),
            });
            x.abort_with(format!("injection failed: {e}"));
            return Next::Stop;
        }
    }
    Next::Continue
}

fn spare(x: &mut Exercise<'_>, record: &mut Injection, target: &Candidate, reason: String) -> Next {
    record.not_injected = Some(reason.clone());
    x.emit(ExerciseEvent::Spared {
        target: target.display(),
        reason,
    });
    Next::Continue
}

/// The guard's second look at `target`, with the cluster read now and every fault on record
/// in the journals where this exercise keeps its own, but `own` (the intent just written for
/// it). Fails closed: what cannot be read spares the target.
async fn look(x: &Exercise<'_>, unit: Unit, target: &Candidate, own: &Entry) -> Option<String> {
    let exercise = &x.options.exercise;
    let fresh = resolve(x.client, &x.spec.target, unit).await;
    let ns = journal_namespace(x.spec, x.options.nodes_journal_namespace.as_deref());
    let disrupted: Vec<Disruption> = match journal::active(x.client, &ns).await {
        Ok(active) => active
            .into_iter()
            .filter(|a| !(a.exercise == *exercise && a.id == own.id))
            .filter_map(|a| {
                a.action.disrupts().map(|target| Disruption {
                    target,
                    exercise: a.exercise,
                })
            })
            .collect(),
        Err(e) => return Some(format!("cannot read what other exercises hold ({e})")),
    };
    let now = fresh.as_ref().map(|r| (r.candidates.as_slice(), &r.health));
    second_look(unit, target, &x.spec.blast_radius, now, &disrupted, exercise)
}
