//! Runs Exercises: the same engine as `disasterpiece run`, driven by custom resources.
//!
//! `reconcile` (here) gathers what it needs to know of an Exercise, asks the pure
//! [`decide::decide`] what to do, and takes that one step: wait, watch one running here, pull
//! its cord, let a deleted one go, take over one a dead controller left Running, or start a
//! new one. `execute` runs a started one; `tenancy` says what a Scenario may reach and what
//! this controller refuses ([`Refusal`]); `status` writes its Events and status.
//!
//! Expected flow, per Exercise: a finalizer is added; the Scenario it names is read, checked
//! as `validate` checks a file, and checked for tenancy; the engine runs it; the status
//! follows the phases; Kubernetes Events record each phase, injection, revert, abort and
//! error; the report JSON lands in a ConfigMap `report-<exercise>-<uid>` that outlives the
//! Exercise (`reports`); the finalizer is removed.
//! Guarantees: deleting a running Exercise, or annotating it (or its namespace, or its
//! GameDay) `disasterpiece.dev/abort`, aborts it and reverts its faults before the finalizer
//! goes; an Exercise that finished is never run again; at start-up every journal left by a
//! dead run is reverted first.
//! An Exercise found Running that this controller did not start (its controller died) is
//! aborted and its journal reverted, never run again.
//! With `election`, only the replica holding the Lease runs Exercises; one that loses it
//! drops what it runs without one write more, and the new leader takes those over as above.
//! Its writes pass the Lease's fence (`lease::Fence`): one cut off from the API server stops
//! writing before another replica may take the Lease, even while its renewal hangs.
//! A controller at rest makes no request but its watches; an Exercise running here is looked
//! at every poll (its namespace's and GameDay's abort annotations).
//! Why not kube-runtime's `finalizer()` helper: it keeps its finalizer on an object for the
//! object's whole life. An Exercise needs one only while something of it may be in place, so
//! it is added when the run starts and removed once everything is reverted: a finished
//! Exercise (and its namespace) can be deleted even with the controller gone or uninstalled.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::context::{Context, Kind};
use super::crd::{ConditionType, Exercise, Phase, Verdict};
use crate::engine::abort::ABORT_ANNOTATION;
use crate::engine::event::{Act, Reason, Severity};
use decide::{Fresh, Seen, Step, decide};
use status::{Recorder, condition, set_status};

pub mod decide;
mod execute;
mod status;
pub mod tenancy;

pub use status::status_from;
pub use tenancy::{ALLOW_FROM_ALL_LABEL, ALLOW_FROM_LABEL, Refusal};

pub const FINALIZER: &str = "disasterpiece.dev/revert";

/// One Exercise: gathers what [`decide`] needs, and takes the one step it decides. Only the
/// replica that leads acts; one running here is looked at every poll for its kill switches.
pub(super) async fn reconcile(exercise: Arc<Exercise>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    let api: Api<Exercise> = Api::namespaced(ctx.client.clone(), &exercise.namespace().unwrap_or_default());
    let mut seen = gather(&ctx, &exercise).await;
    let mut step = decide(&seen);
    let mut current = exercise.as_ref().clone();
    if step == Step::ReadAgain {
        current = api.get(&exercise.name_any()).await?;
        seen.fresh = Some(Fresh {
            phase: current.status.as_ref().and_then(|s| s.phase),
            deleting: current.metadata.deletion_timestamp.is_some(),
        });
        step = decide(&seen);
    }
    let poll = ctx.options.poll;
    match step {
        Step::Wait | Step::ReadAgain => Ok(Action::await_change()),
        Step::Watch => Ok(Action::requeue(poll)),
        Step::Signal(reason) => {
            let sender = ctx.running.lock().expect("lock").get(&uid(&current)).cloned();
            if let Some(sender) = sender
                && sender.borrow().is_none()
            {
                let _ = sender.send(Some(reason));
            }
            Ok(Action::requeue(poll))
        }
        Step::LetGo => {
            remove_finalizer(&api, &current).await?;
            Ok(Action::await_change())
        }
        Step::TakeOver => {
            take_over(&ctx, &api, &current).await?;
            ctx.options.metrics.finished(Verdict::Aborted, None);
            Ok(Action::await_change())
        }
        Step::Start => {
            start(&ctx, &api, current).await?;
            Ok(Action::requeue(poll))
        }
    }
}

fn uid(exercise: &Exercise) -> String {
    exercise.uid().unwrap_or_default()
}

/// What [`decide`] needs, read without a request unless the Exercise runs here (its kill
/// switches are read then: its namespace's, else its GameDay's).
async fn gather(ctx: &Context, exercise: &Exercise) -> Seen {
    let here = ctx
        .running
        .lock()
        .expect("lock")
        .get(&uid(exercise))
        .map(|sender| sender.borrow().is_some());
    let annotated = exercise.annotations().get(ABORT_ANNOTATION).cloned();
    let deleting = exercise.metadata.deletion_timestamp.is_some();
    let switch = match (ctx.leads(), here, deleting || annotated.is_some()) {
        (true, Some(false), false) => {
            let ns = exercise.namespace().unwrap_or_default();
            match namespace_abort(&ctx.client, &ns).await {
                Some(reason) => Some(reason),
                None => gameday_abort(&ctx.client, &ns, exercise.spec.game_day.as_deref()).await,
            }
        }
        _ => None,
    };
    Seen {
        leads: ctx.leads(),
        here,
        phase: exercise.status.as_ref().and_then(|s| s.phase),
        deleting,
        has_finalizer: exercise.finalizers().iter().any(|f| f == FINALIZER),
        annotated,
        switch,
        fresh: None,
    }
}

/// Starts `exercise` here: the finalizer first, then the run, as a task of its own that ends
/// when the run does or this replica stops leading.
async fn start(ctx: &Arc<Context>, api: &Api<Exercise>, exercise: Exercise) -> Result<(), kube::Error> {
    add_finalizer(api, &exercise).await?;
    let uid = uid(&exercise);
    let (tx, rx) = watch::channel(None);
    ctx.running.lock().expect("lock").insert(uid.clone(), tx);
    let mut leads = ctx.leads.subscribe();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (options, running) = (&ctx.options, &ctx.running);
        let object = format!("{}/{}", exercise.namespace().unwrap_or_default(), exercise.name_any());
        options.metrics.started();
        tokio::select! {
            done = execute::execute(&ctx, exercise, rx) => {
                if let Err(e) = done {
                    ctx.failed(Kind::Exercise, &object, &e);
                }
            }
            _ = leads.wait_for(|leads| !leads) => {
                tracing::warn!(exercise = %object, "dropped without a write more: this replica lost the lease; the one that leads next reverts it from its journal");
            }
        }
        options.metrics.ended();
        running.lock().expect("lock").remove(&uid);
    });
    Ok(())
}

/// Ends an exercise another controller started: reverts its journal, says so, lets it go.
async fn take_over(ctx: &Context, api: &Api<Exercise>, exercise: &Exercise) -> Result<(), kube::Error> {
    let (client, nodes_ns, clock) = (&ctx.client, ctx.options.journal_namespace.as_str(), &ctx.options.clock);
    let ns = exercise.namespace().unwrap_or_default();
    let name = exercise.name_any();
    let recorder = Recorder {
        reporter: ctx.events.clone(),
        exercise: exercise.clone(),
        clock: clock.clone(),
    };
    // Where the journal is: the status says (the target's namespace, which may not be the
    // Exercise's); an Exercise started before the status said so is looked for where its
    // Scenario targets, then in its own namespace.
    let recorded = exercise.status.as_ref().and_then(|s| s.journal_namespace.clone());
    let derived = match &recorded {
        Some(_) => None,
        None => tenancy::scenario_for(client, exercise)
            .await
            .ok()
            .map(|s| crate::engine::journal::journal_namespace(&s.spec, Some(nodes_ns))),
    };
    let journal_ns = recorded.or(derived).unwrap_or_else(|| ns.clone());
    let mut found = crate::engine::recovery::recover_exercise(client, &journal_ns, nodes_ns, &name, clock).await;
    if journal_ns != ns && found.as_ref().is_ok_and(Vec::is_empty) {
        found = crate::engine::recovery::recover_exercise(client, &ns, nodes_ns, &name, clock).await;
    }
    let (reason, reverted) = match found {
        Ok(recovered) if recovered.iter().all(|r| r.failed.is_empty()) => {
            let steps: usize = recovered.iter().map(|r| r.reverted.len()).sum();
            (
                format!(
                    "the controller running it stopped; {steps} undo step(s) from its journal were performed, and it is not run again"
                ),
                true,
            )
        }
        Ok(recovered) => (
            format!(
                "the controller running it stopped; reverting its journal failed: {}",
                recovered
                    .iter()
                    .flat_map(|r| r.failed.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            false,
        ),
        Err(e) => (
            format!("the controller running it stopped; its journal could not be read: {e}"),
            false,
        ),
    };
    recorder.event(Reason::Aborted, Act::TakeOver, Severity::Warning, &reason);
    let mut status = exercise.status.clone().unwrap_or_default();
    status.phase = Some(Phase::Finished);
    status.verdict = Some(Verdict::Aborted);
    let now = clock.now();
    status.ended_at = Some(now);
    status.conditions.push(condition(
        now,
        ConditionType::Aborted,
        true,
        "ControllerStopped",
        &reason,
    ));
    status.conditions.push(condition(
        now,
        ConditionType::Reverted,
        reverted,
        if reverted { "Reverted" } else { "RevertFailed" },
        &reason,
    ));
    if reverted {
        remove_finalizer(api, exercise).await?;
    }
    set_status(api, &name, &status).await
}

/// The kill switch on the GameDay that created an Exercise.
pub async fn gameday_abort(client: &Client, ns: &str, gameday: Option<&str>) -> Option<String> {
    let gameday = Api::<crate::scenario::gameday::GameDayResource>::namespaced(client.clone(), ns)
        .get(gameday?)
        .await
        .ok()?;
    gameday
        .annotations()
        .get(ABORT_ANNOTATION)
        .map(|r| format!("GameDay {} is annotated {ABORT_ANNOTATION}: {r}", gameday.name_any()))
}

async fn namespace_abort(client: &Client, ns: &str) -> Option<String> {
    let namespace = Api::<Namespace>::all(client.clone()).get(ns).await.ok()?;
    namespace
        .annotations()
        .get(ABORT_ANNOTATION)
        .map(|r| format!("namespace {ns} is annotated {ABORT_ANNOTATION}: {r}"))
}

async fn add_finalizer(api: &Api<Exercise>, exercise: &Exercise) -> Result<(), kube::Error> {
    if exercise.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let mut finalizers = exercise.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": exercise.resource_version()}});
    api.patch(&exercise.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

pub(super) async fn remove_finalizer(api: &Api<Exercise>, exercise: &Exercise) -> Result<(), kube::Error> {
    let current = match api.get(&exercise.name_any()).await {
        Ok(e) => e,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    let finalizers: Vec<&String> = current.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": finalizers}});
    match api
        .patch(&exercise.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}
