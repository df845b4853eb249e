//! Runs GameDays on their schedule: each due run starts its first stage's Exercises; a later
//! stage starts once every Exercise of the earlier ones confirmed its hypothesis; runs that
//! may not start are recorded as skipped with the reason; old runs and their Exercises are
//! pruned to `historyLimit`. The clock is passed in, so tests pin it.
//!
//! Guarantees: whether a run is due is decided on the controller's clock alone, from what the
//! GameDay's status says the controller already did (`scheduledSince`, `lastScheduleTime`);
//! `creationTimestamp`, written by the API server's clock, never counts, so clock skew
//! between the two neither delays nor invents runs. Each due minute runs once: its Exercises
//! have names fixed by the minute (a second create is a no-op), and the status is written
//! with the resourceVersion it was read at, so a controller acting on a stale copy gets a
//! conflict instead of recording the minute twice.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::crd::{Exercise, ExerciseSpec, Phase};
use super::schedule::{self, StageState};
use crate::engine::abort::ABORT_ANNOTATION;
use crate::report::model::Outcome;
use crate::scenario::condition;
use crate::scenario::gameday::{ConcurrencyPolicy, GameDay, GameDayKind, GameDayResource, GameDayRun, GameDayStatus};
use crate::scenario::model::{ApiVersion, Metadata};
use crate::scenario::validate::validate_gameday;

/// The label on Exercises a GameDay run created.
pub const RUN_LABEL: &str = "disasterpiece.dev/gameday-run";

/// How often a GameDay is read again at rest (its schedule is kept by the controller's clock:
/// a due run starts at most this late); an Exercise it owns that changes wakes it at once.
const AT_REST: std::time::Duration = std::time::Duration::from_secs(10);

/// One GameDay, at the controller clock's now. Only the replica that leads acts.
pub(super) async fn reconcile(
    gameday: std::sync::Arc<GameDayResource>,
    ctx: std::sync::Arc<super::context::Context>,
) -> Result<Action, kube::Error> {
    if !ctx.leads() {
        return Ok(Action::await_change());
    }
    let now = ctx.options.clock.now();
    match step(&ctx.client, &ctx.events, &gameday, now).await {
        // Written with the resourceVersion read: a copy older than the last write is
        // refused, and the watch brings the newer one.
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        other => other?,
    }
    Ok(Action::requeue(AT_REST))
}

fn run_id(gameday: &str, at: DateTime<Utc>) -> String {
    let mut id = format!("{gameday}-{}", at.format("%Y%m%d%H%M"));
    id.truncate(52);
    id.trim_end_matches('-').to_owned()
}

/// Runs what is due, moves running runs on, prunes history, and writes the status.
async fn step(
    client: &Client,
    reporter: &super::events::Reporter,
    gameday: &GameDayResource,
    now: DateTime<Utc>,
) -> Result<(), kube::Error> {
    let ns = gameday.namespace().unwrap_or_default();
    let name = gameday.name_any();
    let spec = &gameday.spec;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), &ns);
    let mut status: GameDayStatus = gameday.status.clone().unwrap_or_default();
    // What `validate` says of it, before anything runs: an invalid GameDay never runs, and
    // says why in its status and an Event (once, when that changes).
    let problems = problems_of(gameday);
    let valid = condition::valid(now, problems.as_deref(), "it will not run");
    if condition::set(&mut status.conditions, valid.clone()) && problems.is_some() {
        let involved = json!({"apiVersion": "disasterpiece.dev/v1alpha1", "kind": "GameDay", "name": name, "namespace": ns, "uid": gameday.uid()});
        reporter.invalid(involved, &valid, now);
    }
    if problems.is_some() {
        return write_status(client, gameday, &status).await;
    }
    // First sight: the schedule counts from this minute, by this controller's clock.
    let since = *status
        .scheduled_since
        .get_or_insert_with(|| now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now));
    let last = status.last_schedule_time.unwrap_or(since - TimeDelta::seconds(1));
    let due = match schedule::due(spec, last, now, 3) {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(gameday = %format!("{ns}/{name}"), error = %e, "the schedule cannot be read: no run is due");
            Vec::new()
        }
    };
    for d in due {
        status.last_schedule_time = Some(d.at);
        let id = run_id(&name, d.at);
        let running = status.runs.iter().any(|r| r.state == "running");
        let pulled = gameday
            .annotations()
            .get(ABORT_ANNOTATION)
            .map(|r| format!("the GameDay is annotated {ABORT_ANNOTATION}: {r}"));
        let skipped = d.skipped.or(pulled).or_else(|| {
            (running && spec.concurrency_policy == ConcurrencyPolicy::Forbid)
                .then(|| "the previous run is still running (concurrencyPolicy: Forbid)".to_owned())
        });
        if skipped.is_none() && running && spec.concurrency_policy == ConcurrencyPolicy::Replace {
            for run in status.runs.iter_mut().filter(|r| r.state == "running") {
                for exercise in &run.exercises {
                    let patch = json!({"metadata": {"annotations": {ABORT_ANNOTATION: "replaced by a newer run"}}});
                    let _ = exercises
                        .patch(exercise, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
                run.state = "stopped".into();
                run.reason = Some(format!("replaced by run {id}"));
            }
        }
        status.runs.push(GameDayRun {
            id,
            scheduled_at: d.at,
            state: if skipped.is_some() { "skipped" } else { "running" }.into(),
            stages_started: 0,
            reason: skipped,
            exercises: Vec::new(),
        });
    }
    for run in status.runs.iter_mut().filter(|r| r.state == "running") {
        advance(&exercises, gameday, run).await?;
    }
    // History: the latest `historyLimit` runs stay, with their Exercises.
    let limit = spec.history_limit.max(1) as usize;
    while status.runs.len() > limit {
        let old = status.runs.remove(0);
        for exercise in &old.exercises {
            let _ = exercises.delete(exercise, &DeleteParams::default()).await;
        }
    }
    write_status(client, gameday, &status).await
}

async fn write_status(client: &Client, gameday: &GameDayResource, status: &GameDayStatus) -> Result<(), kube::Error> {
    if gameday.status.as_ref() != Some(status) {
        // With the resourceVersion read: a stale copy must not record its runs again.
        let patch = json!({"metadata": {"resourceVersion": gameday.resource_version()}, "status": status});
        Api::<GameDayResource>::namespaced(client.clone(), &gameday.namespace().unwrap_or_default())
            .patch_status(&gameday.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(())
}

/// What `disasterpiece validate` finds wrong with a GameDay resource, in its words (`path:
/// message (hint)`, joined), or `None`. Stages name Scenario resources: a `file` reference is
/// reported by the run that meets it.
fn problems_of(gameday: &GameDayResource) -> Option<String> {
    let document = GameDay {
        api_version: ApiVersion::V1alpha1,
        kind: GameDayKind::GameDay,
        metadata: Metadata {
            name: gameday.name_any(),
            namespace: gameday.namespace(),
            labels: Default::default(),
            annotations: Default::default(),
        },
        spec: gameday.spec.clone(),
    };
    let findings = validate_gameday(&document, &|_| true);
    if findings.is_empty() {
        return None;
    }
    let said: Vec<String> = findings
        .iter()
        .map(|f| {
            let hint = f.hint.as_deref().map_or(String::new(), |h| format!(" ({h})"));
            let path = f.path.trim_start_matches("spec.");
            format!("{path}: {}{hint}", f.message)
        })
        .collect();
    Some(said.join("; "))
}

/// Moves a running run on: starts the next stage, or ends the run.
async fn advance(
    exercises: &Api<Exercise>,
    gameday: &GameDayResource,
    run: &mut GameDayRun,
) -> Result<(), kube::Error> {
    let stages = &gameday.spec.stages;
    let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    let listed = exercises
        .list(&ListParams::default().labels(&format!("{RUN_LABEL}={}", run.id)))
        .await?
        .items;
    let mut by_stage: BTreeMap<String, Vec<&Exercise>> = BTreeMap::new();
    for e in &listed {
        by_stage
            .entry(e.spec.stage.clone().unwrap_or_default())
            .or_default()
            .push(e);
    }
    let states: Vec<StageState> = names
        .iter()
        .take(run.stages_started as usize)
        .map(|stage| {
            let list = by_stage.get(stage).cloned().unwrap_or_default();
            StageState::of(list.iter().map(|e| {
                let status = e.status.as_ref();
                let ended = matches!(status.and_then(|s| s.phase), Some(Phase::Finished | Phase::Refused));
                let outcome = status.and_then(|s| s.verdict).filter(|_| ended).map(Outcome::from);
                (e.metadata.name.as_deref().unwrap_or_default(), outcome)
            }))
        })
        .collect();
    match schedule::next_stage(&states, stages.len(), &names) {
        Err(skipped) => {
            run.state = "stopped".into();
            run.reason = Some(skipped.to_string());
        }
        Ok(None) if states.len() == stages.len() && states.iter().all(|s| *s == StageState::Confirmed) => {
            run.state = "confirmed".into();
        }
        Ok(None) => {}
        Ok(Some(i)) => {
            let stage = &stages[i];
            let namespaces: Vec<Option<String>> = if stage.namespaces.is_empty() {
                vec![None]
            } else {
                stage.namespaces.iter().cloned().map(Some).collect()
            };
            for (j, reference) in stage.scenarios.iter().enumerate() {
                let Some(scenario) = &reference.name else {
                    run.state = "stopped".into();
                    run.reason = Some(format!(
                        "stage {}: scenario files cannot be read in the cluster; name a Scenario resource",
                        stage.name
                    ));
                    return Ok(());
                };
                for (k, target) in namespaces.iter().enumerate() {
                    let mut exercise_name = format!("{}-{}-{j}{k}", run.id, stage.name);
                    exercise_name.truncate(63);
                    let mut exercise = Exercise::new(
                        &exercise_name,
                        ExerciseSpec {
                            scenario: scenario.clone(),
                            seed: None,
                            sample_every: None,
                            host: Some(gameday.spec.host.name.clone()),
                            game_day: Some(gameday.name_any()),
                            stage: Some(stage.name.clone()),
                            target_namespace: target.clone(),
                        },
                    );
                    exercise.labels_mut().insert(RUN_LABEL.into(), run.id.clone());
                    // Owned by its GameDay: deleted with it (its report stays, see `reports`).
                    exercise.metadata.owner_references =
                        Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                            api_version: "disasterpiece.dev/v1alpha1".into(),
                            kind: "GameDay".into(),
                            name: gameday.name_any(),
                            uid: gameday.uid().unwrap_or_default(),
                            controller: Some(true),
                            block_owner_deletion: None,
                        }]);
                    match exercises.create(&PostParams::default(), &exercise).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                    if !run.exercises.contains(&exercise_name) {
                        run.exercises.push(exercise_name);
                    }
                }
            }
            run.stages_started = i as u32 + 1;
        }
    }
    Ok(())
}
