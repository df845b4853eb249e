//! One exercise, start to finish, in phases: preflight → inject → observe → revert → recovery,
//! then the report, built by a pure function from what was recorded (`finish`).
//!
//! Guarantees: nothing is changed unless preflight passes; every mutation is journaled
//! before it is sent; the guard is asked again right before each injection, counting what
//! every live exercise has on record; every journaled entry is reverted through the one revert
//! path (`engine::revert`) whatever happened — abort, error, or the duration ending — and the
//! journal is closed only when all of it was undone. An abort (Ctrl-C, `abortWhen`, the kill
//! switch, a deleted Exercise) interrupts every wait of every phase. Everything the exercise
//! says goes out as one typed stream of [`ExerciseEvent`]s: the progress, the report's
//! timeline and the controller's Events all read it.

mod clause;
pub mod finish;
mod inject;
mod observe;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;

pub use super::abort::{ABORT_ANNOTATION, KILL_SWITCH_NAME, KillSwitch, kill_switch};
use super::abort::{AbortSignal, Aborted, requested, unless_aborted};
use super::event::{ExerciseEvent, Phase};
use super::journal::{Journal, journal_namespace, name_for};
use super::preflight;
use crate::clock::Clock;
use crate::fault::{self, Context};
use crate::report::model::{Abort, Environment, Event, Report, TargetChoice};
use crate::scenario::Scenario;
use crate::scenario::model::ScenarioSpec;
use finish::{People, Record};
use inject::Injected;

/// How a run is made.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The exercise id: names the journal and labels what the faults create.
    pub exercise: String,
    pub seed: u64,
    pub sample_every: Duration,
    /// The cluster's address, for the report.
    pub cluster: String,
    /// The retry log of the client, so the report can say which calls were retried.
    pub retries: Option<super::retry::RetryLog>,
    /// Where prometheus and alert probes look when they name no `url`.
    pub sources: crate::probe::Sources,
    /// The image of in-pod fault containers when the scenario names none (`--fault-image`).
    pub fault_image: Option<String>,
    /// Where the journals of Node faults are kept (the controller's own namespace), and the
    /// only namespace whose journals recovery lets change Nodes; `default` when unset.
    pub nodes_journal_namespace: Option<String>,
    /// For the report's environment: the kubeconfig context named, if any.
    pub context: Option<String>,
    /// Who runs the exercise, and with whom (the report keeps them).
    pub host: Option<String>,
    pub participants: Vec<String>,
    /// How sure the team is that the hypothesis holds, 1 to 5.
    pub confidence_before: Option<u8>,
    /// What time it is: every time in the report and the journal comes from it.
    pub clock: Clock,
    /// The operator's floor of what every exercise watches beyond its targets and halts on.
    pub floor: super::beyond::Floor,
    /// The ConfigMap that stops every exercise while it exists.
    pub kill_switch: KillSwitch,
}

/// A new exercise id: `<name>-<YYYYmmdd-HHMMSS>-<4 hex>`, the name cut to 40 characters. The
/// random suffix keeps two runs started in the same second apart (their reports and journals
/// are named by it).
pub fn exercise_id(name: &str, now: chrono::DateTime<Utc>) -> String {
    let mut name = name.to_owned();
    name.truncate(40);
    format!(
        "{}-{}-{:04x}",
        name.trim_end_matches('-'),
        now.format("%Y%m%d-%H%M%S"),
        crate::random::u64() & 0xffff
    )
}

/// Where progress goes: a terminal, a log, a test, the controller's Events.
pub trait Progress: Send + Sync {
    /// Something happened, `elapsed` into the exercise.
    fn event(&self, elapsed: Duration, event: &ExerciseEvent);
}

/// Says nothing: for runs no one watches.
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Duration, _: &ExerciseEvent) {}
}

/// Each event to the progress and, when it has entries, to the report's timeline.
struct Events<'a> {
    progress: &'a dyn Progress,
    clock: Clock,
    begun: Instant,
    timeline: Vec<Event>,
}

impl Events<'_> {
    fn emit(&mut self, event: ExerciseEvent) {
        let at = self.clock.now();
        for (kind, detail) in event.timeline() {
            self.timeline.push(Event {
                at,
                kind: kind.into(),
                detail,
            });
        }
        self.progress.event(self.begun.elapsed(), &event);
    }
}

/// An exercise under way: what every phase reads, and the abort it watches for.
struct Exercise<'a> {
    client: &'a Client,
    spec: &'a ScenarioSpec,
    options: &'a RunOptions,
    events: Events<'a>,
    abort: AbortSignal,
    /// Pulls `abort` from within (the watch beyond the targets).
    cord: watch::Sender<Option<String>>,
    aborted: Option<Aborted>,
    phase: Phase,
}

impl Exercise<'_> {
    fn emit(&mut self, event: ExerciseEvent) {
        self.events.emit(event);
    }

    fn enter(&mut self, phase: Phase, window: Option<Duration>, every: Option<Duration>) {
        self.phase = phase;
        self.emit(ExerciseEvent::Phase { phase, window, every });
    }

    /// Takes an abort that was asked for into account (the first reason wins).
    fn check_abort(&mut self) {
        let asked = self.abort.borrow().clone();
        if let Some(reason) = asked {
            self.abort_with(reason);
        }
    }

    fn abort_with(&mut self, reason: String) {
        if self.aborted.is_none() {
            self.aborted = Some(Aborted {
                reason,
                at: Instant::now(),
                wall: self.options.clock.now(),
                during: self.phase,
            });
        }
    }

    /// Sleeps `pause`, or until an abort is asked for: `false` then.
    async fn wait(&mut self, pause: Duration) -> bool {
        let slept = tokio::select! {
            () = requested(&mut self.abort) => false,
            () = tokio::time::sleep(pause) => true,
        };
        self.check_abort();
        slept
    }
}

/// Runs `scenario`. Never panics on cluster errors: they end up in the report.
pub async fn run(
    client: &Client,
    scenario: &Scenario,
    options: RunOptions,
    abort: AbortSignal,
    progress: &dyn Progress,
) -> Report {
    let retried_before = options.retries.as_ref().map_or(0, |r| r.entries().len());
    let clock = options.clock.clone();
    let mut record = Record {
        started_at: clock.now(),
        ..Record::default()
    };
    // The cord the exercise watches: whatever the caller pulls, and the watch beyond the
    // targets when it sees unanticipated impact a halt rule names.
    let (cord, merged) = watch::channel(abort.borrow().clone());
    let _forward = StopOnDrop(tokio::spawn(forward(abort, cord.clone())));
    let mut x = Exercise {
        client,
        spec: &scenario.spec,
        options: &options,
        events: Events {
            progress,
            clock: clock.clone(),
            begun: Instant::now(),
            timeline: Vec::new(),
        },
        abort: merged,
        cord,
        aborted: None,
        phase: Phase::Preflight,
    };
    // Preflight changes nothing: an abort during it just ends the exercise.
    let mut cord = x.abort.clone();
    let plan = unless_aborted(&mut cord, preflight(&mut x, scenario, &mut record)).await;
    x.check_abort();
    match (plan, &x.aborted) {
        (_, Some(aborted)) => {
            let reason = aborted.reason.clone();
            x.emit(ExerciseEvent::Abort {
                reason,
                during: Phase::Preflight,
            });
            settle_abort(&x, &mut record);
        }
        (Some(Some(plan)), None) => exercise(&mut x, scenario, &plan, &mut record).await,
        _ => {}
    }
    for reason in record.refusals.clone() {
        x.emit(ExerciseEvent::Refused { reason });
    }
    record.timeline = std::mem::take(&mut x.events.timeline);
    record.retried_calls = options
        .retries
        .as_ref()
        .map(|r| r.entries().into_iter().skip(retried_before).collect())
        .unwrap_or_default();
    record.ended_at = clock.now();
    let environment = Environment {
        cluster: options.cluster.clone(),
        context: options.context.clone(),
        namespace: scenario.spec.target.namespace.clone(),
        disasterpiece_version: env!("CARGO_PKG_VERSION").into(),
    };
    let people = People {
        host: options.host.clone(),
        participants: options.participants.clone(),
        confidence_before: options.confidence_before,
    };
    finish::report(options.exercise.clone(), scenario, environment, people, record)
}

/// The same checks as `plan`; a refusal changes nothing. The plan, when runnable.
async fn preflight(
    x: &mut Exercise<'_>,
    scenario: &Scenario,
    record: &mut Record,
) -> Option<crate::engine::plan::Plan> {
    x.enter(Phase::Preflight, None, None);
    let options = x.options;
    let plan_options = preflight::PlanOptions {
        sources: options.sources.clone(),
        fault_image: options.fault_image.clone(),
        nodes_journal_namespace: options.nodes_journal_namespace.clone(),
        exercise: Some(options.exercise.clone()),
        floor: options.floor.clone(),
        kill_switch: options.kill_switch.clone(),
    };
    let plan = preflight::plan(
        x.client,
        scenario,
        &options.cluster,
        options.seed,
        &plan_options,
        &options.clock,
    )
    .await;
    record.targets = plan
        .faults
        .iter()
        .map(|f| TargetChoice {
            fault: f.fault.clone(),
            chosen: f.chosen.iter().map(|c| c.display()).collect(),
            excluded: f
                .excluded
                .iter()
                .map(|e| (e.target.display(), e.explanation.clone()))
                .collect(),
        })
        .collect();
    if plan.runnable {
        Some(plan)
    } else {
        record.refusals = plan.refusals;
        None
    }
}

/// From opening the journal to closing it: inject, observe, revert, recovery.
async fn exercise(x: &mut Exercise<'_>, scenario: &Scenario, plan: &crate::engine::plan::Plan, record: &mut Record) {
    let (spec, options) = (x.spec, x.options);
    let Some((beyond, journal)) = open(x, scenario, plan, record).await else {
        return;
    };
    // Stopped when the run ends, and when the run is dropped where it stands (a controller
    // that lost its lease): the journal's heartbeat then lapses, as a dead run's does.
    let heartbeat = StopOnDrop(tokio::spawn({
        let journal = journal.clone();
        async move {
            loop {
                tokio::time::sleep(super::journal::HEARTBEAT_EVERY).await;
                let _ = journal.beat().await;
            }
        }
    }));
    let ctx = Context {
        client: x.client.clone(),
        exercise: options.exercise.clone(),
        dry_run: false,
        in_pod: fault::in_pod::Settings {
            image: fault::in_pod::image(spec.fault_image.as_deref(), options.fault_image.as_deref()),
            duration: spec.duration.as_std(),
        },
        clock: options.clock.clone(),
    };
    let mut injected = inject::inject(x, &ctx, plan, &journal).await;
    let probes = crate::probe::ProbeContext {
        client: x.client.clone(),
        target: spec.target.clone(),
        sources: options.sources.clone(),
        clock: options.clock.clone(),
    };
    let mut watch = observe::Watch::new(spec, probes, beyond);
    record.ended_early = observe::observe(x, &mut watch, &injected).await;
    record.revert_failures = revert(x, &ctx, &journal, &mut injected).await;
    let mut heartbeat = heartbeat;
    heartbeat.0.abort();
    // No beat in flight once the journal is closed.
    let _ = (&mut heartbeat.0).await;
    settle_abort(x, record);
    let reverted = Instant::now();
    (record.recovered, record.time_to_recover_s) = observe::recovery(x, &mut watch, &injected, reverted).await;
    settle_abort(x, record);
    close(x, &journal, record.revert_failures.is_empty()).await;
    record.injections = injected.injections;
    record.expectations = watch.results();
    record.time_to_remediate_s = watch.remediated();
    record.observed = Some(watch.stop_beyond(&mut x.events));
}

/// Opens the watch beyond the targets and the journal, at once: the watch takes its baseline
/// before the first injection, and neither waits for the other. Either failing refuses the
/// run (an abort ends it), before anything was changed; a journal opened for nothing is closed.
async fn open(
    x: &mut Exercise<'_>,
    scenario: &Scenario,
    plan: &crate::engine::plan::Plan,
    record: &mut Record,
) -> Option<(super::beyond::Watcher, Arc<Journal>)> {
    let options = x.options;
    let journal_ns = journal_namespace(x.spec, options.nodes_journal_namespace.as_deref());
    let mut cord = x.abort.clone();
    let (opened, journal) = tokio::join!(
        unless_aborted(&mut cord, beyond(x, plan)),
        Journal::open(
            x.client,
            &journal_ns,
            &options.exercise,
            &scenario.metadata.name,
            &options.clock,
        )
    );
    x.check_abort();
    let journal = match journal {
        Ok(journal) => journal,
        Err(e) => {
            record.refusals = vec![format!("cannot open the journal: {e}")];
            return None;
        }
    };
    match opened {
        Some(Ok(watcher)) => return Some((watcher, Arc::new(journal))),
        Some(Err(e)) => record.refusals = vec![e.to_string()],
        None => {
            if let Some(aborted) = &x.aborted {
                let reason = aborted.reason.clone();
                x.emit(ExerciseEvent::Abort {
                    reason,
                    during: Phase::Preflight,
                });
            }
            settle_abort(x, record);
        }
    }
    if let Err(e) = journal.close().await {
        x.emit(ExerciseEvent::JournalNotClosed { error: e.to_string() });
    }
    None
}

/// Opens the watch beyond the targets of `plan`, with the exercise's cord to pull.
async fn beyond(
    x: &Exercise<'_>,
    plan: &crate::engine::plan::Plan,
) -> Result<super::beyond::Watcher, super::beyond::WatchError> {
    let options = x.options;
    let started = super::beyond::Started {
        scope: super::beyond::Scope::of(x.spec, &options.floor),
        declared: super::beyond::declared(plan, x.spec),
        nodes_not_watched: plan.watch.nodes_not_watched.clone(),
        alertmanager: options.sources.alertmanager.clone(),
        exercise: options.exercise.clone(),
        nodes_journal_namespace: options
            .nodes_journal_namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        clock: options.clock.clone(),
    };
    super::beyond::Watcher::start(x.client, started, x.cord.clone()).await
}

/// Puts back everything journaled, through the one revert path; returns the undo steps that
/// failed.
async fn revert(x: &mut Exercise<'_>, ctx: &Context, journal: &Journal, injected: &mut Injected) -> Vec<String> {
    if let Some(aborted) = &x.aborted {
        let event = ExerciseEvent::Abort {
            reason: aborted.reason.clone(),
            during: aborted.during,
        };
        x.emit(event);
    }
    x.enter(Phase::Revert, None, None);
    let entries: Vec<_> = injected.entries.iter().map(|(entry, _)| entry.clone()).collect();
    let nodes_ns = x.options.nodes_journal_namespace.as_deref().unwrap_or("default");
    let results = super::revert::revert(ctx, journal, &entries, nodes_ns).await;
    let at = x.options.clock.now();
    let mut failed = Vec::new();
    for result in results {
        let index = injected
            .entries
            .iter()
            .find(|(e, _)| e.id == result.id)
            .map(|(_, i)| *i);
        if result.failed.is_empty()
            && let Some(record) = index.and_then(|i| injected.injections.get_mut(i))
        {
            record.reverted_at = Some(at);
        }
        failed.extend(result.failed);
    }
    x.emit(ExerciseEvent::Reverted {
        actions: entries.len(),
        failed: failed.clone(),
    });
    failed
}

/// An abort, once everything is reverted: when it was asked, and how long it took.
fn settle_abort(x: &Exercise<'_>, record: &mut Record) {
    if let (Some(aborted), None) = (&x.aborted, &record.abort) {
        let abort = Abort {
            reason: aborted.reason.clone(),
            requested_at: aborted.wall,
            completed_at: Some(x.options.clock.now()),
        };
        record.abort = Some((abort, aborted.at.elapsed().as_secs_f64()));
    }
}

/// Deletes the journal once everything is reverted; else keeps it for `recover`.
async fn close(x: &mut Exercise<'_>, journal: &Journal, reverted: bool) {
    if !reverted {
        let journal = format!("{}/{}", journal.namespace, name_for(&journal.exercise));
        x.emit(ExerciseEvent::JournalKept { journal });
    } else if let Err(e) = journal.close().await {
        x.emit(ExerciseEvent::JournalNotClosed { error: e.to_string() });
    }
}

/// Passes the caller's abort on to the exercise's own cord.
async fn forward(mut from: AbortSignal, to: watch::Sender<Option<String>>) {
    requested(&mut from).await;
    let reason = from.borrow().clone();
    to.send_if_modified(|asked| {
        if asked.is_none() {
            *asked = reason;
            true
        } else {
            false
        }
    });
}

/// A task that ends with its owner.
struct StopOnDrop(tokio::task::JoinHandle<()>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
