//! One exercise, start to finish: preflight → inject → observe → revert → recovery → report.
//!
//! Guarantees: nothing is changed unless preflight passes; every mutation is journaled
//! before it is sent; the guard is asked again right before each injection; every journaled
//! entry is reverted (in parallel) whatever happened — abort, error, or the duration ending —
//! and the journal is closed only when all of it was undone. An abort request (Ctrl-C, an
//! `abortWhen` clause) stops injection and observation at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use kube::Client;
use kube::api::Api;
use kube::core::DynamicObject;
use tokio::sync::watch;
use tokio::time::Instant;

use super::journal::{Journal, State};
use super::preflight;
use crate::clock::Clock;
use crate::fault::{self, Context, Outcome as FaultOutcome, Undo};
use crate::probe::{self, ProbeContext, Sample, Verdict};
use crate::report::model::{
    Abort, ActualBlastRadius, ClauseVerdict, Environment, ExpectationResult, HISTORY_CAP, Injection, Metrics,
    Observation, Outcome, REPORT_VERSION, Report, TargetChoice,
};
use crate::scenario::Scenario;
use crate::scenario::model::{HasProbe, ProbeKind, Timing};
use crate::target::guard::{Health, second_look};
use crate::target::resolve::{api_resource, resolve};

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
}

/// Why `action` must not be taken because another live exercise acts on the same object, if
/// so. A scale: its undo is an absolute count, so a second scale of one workload would leave it
/// at the wrong size for good once both are reverted. Fails closed: journals that cannot be
/// read count as a reason.
pub async fn held_by_another(client: &Client, action: &fault::Action, exercise: &str) -> Option<String> {
    let fault::Action::Scale {
        kind, namespace, name, ..
    } = action
    else {
        return None;
    };
    match super::journal::scaled_by_another(client, namespace, kind, name, exercise).await {
        Ok(None) => None,
        Ok(Some(other)) => Some(format!(
            "{kind} {namespace}/{name} is scaled by exercise {other}, still running; one scale of a workload at a time (its undo restores an absolute count)"
        )),
        Err(e) => Some(format!(
            "cannot tell whether another exercise scales {kind} {namespace}/{name}: {e}"
        )),
    }
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

/// Where a run of `spec` keeps its journal: beside its faults, in the target namespace; for
/// Nodes, which belong to no namespace, in `nodes` (the controller's own namespace), the only
/// place recovery trusts Node steps from. `default` when unset.
pub fn journal_namespace(spec: &crate::scenario::model::ScenarioSpec, nodes: Option<&str>) -> String {
    let namespace = match spec.target.kind {
        crate::scenario::model::TargetKind::Node => nodes,
        _ => spec.target.namespace.as_deref(),
    };
    namespace.unwrap_or("default").to_owned()
}

/// Where progress goes: a terminal, a log, a test.
pub trait Progress: Send + Sync {
    /// Something happened (one line).
    fn say(&self, line: &str);
    /// A phase starts; `window` is how long it lasts at most, when known.
    fn phase(&self, _name: &str, _window: Option<Duration>) {}
    /// The expectations as they stand: name and state (`pending`, `holding`, `held`, `failed`).
    fn clauses(&self, _states: &[(String, &'static str)]) {}
}

fn states(clauses: &[Clause]) -> Vec<(String, &'static str)> {
    clauses
        .iter()
        .map(|c| {
            let state = match (&c.first_held, &c.failed, c.timing) {
                (_, Some(_), _) => "failed",
                (Some(_), None, _) => "held",
                // Not failed so far is all a `throughout` clause can say before the end.
                (None, None, Timing::Throughout) if c.conclusive > 0 => "holding",
                (None, None, _) => "pending",
            };
            (c.name.clone(), state)
        })
        .collect()
}

/// Abort requests: `Some(reason)` stops the exercise.
pub type AbortSignal = watch::Receiver<Option<String>>;

/// Returns once an abort is requested (never, if no one can request one any more).
async fn requested(abort: &mut AbortSignal) {
    loop {
        if abort.borrow_and_update().is_some() {
            return;
        }
        if abort.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

struct Clause {
    name: String,
    timing: Timing,
    /// A prometheus probe's `for`: it must pass this long without a break to count as held.
    hold_for: Option<Duration>,
    passing_since: Option<chrono::DateTime<Utc>>,
    expected: String,
    first_held: Option<chrono::DateTime<Utc>>,
    failed: Option<Sample>,
    last: Option<Sample>,
    samples: u32,
    conclusive: u32,
    probe: String,
    history: Vec<Observation>,
    /// Why it can no longer be judged (a `within` still open when the faults were reverted).
    cut_short: Option<String>,
}

impl Clause {
    fn result(&self) -> ExpectationResult {
        let verdict = match (&self.first_held, &self.failed, self.timing) {
            (None, None, _) if self.cut_short.is_some() => ClauseVerdict::Inconclusive,
            (_, Some(_), _) => ClauseVerdict::Refuted,
            (Some(_), None, _) => ClauseVerdict::Confirmed,
            (None, None, Timing::Throughout) if self.conclusive > 0 && self.conclusive == self.samples => {
                ClauseVerdict::Confirmed
            }
            (None, None, _) if self.conclusive > 0 => ClauseVerdict::Refuted,
            _ => ClauseVerdict::Inconclusive,
        };
        let decisive = self.failed.as_ref().or(self.last.as_ref());
        ExpectationResult {
            name: self.name.clone(),
            expected: self.expected.clone(),
            verdict,
            first_held: self.first_held,
            observed: match (&self.cut_short, decisive) {
                (Some(why), _) if self.first_held.is_none() && self.failed.is_none() => why.clone(),
                (_, Some(s)) => s.observed.clone(),
                (_, None) => "not sampled".to_owned(),
            },
            samples: self.samples,
            probe: self.probe.clone(),
            history: self.history.clone(),
        }
    }

    fn record(&mut self, sample: Sample) {
        self.samples += 1;
        if self.history.len() >= HISTORY_CAP {
            // Keep the first sample; drop the oldest after it.
            self.history.remove(1);
        }
        self.history.push(Observation {
            at: sample.at,
            verdict: match sample.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::Inconclusive => "inconclusive",
            }
            .into(),
            observed: sample.observed.clone(),
            latency_ms: sample.latency_ms,
        });
        if sample.verdict != Verdict::Inconclusive {
            self.conclusive += 1;
        }
        // With `for`, a pass counts once the passes have lasted that long without a break.
        let since = if sample.verdict == Verdict::Pass {
            *self.passing_since.get_or_insert(sample.at)
        } else {
            sample.at
        };
        if sample.verdict != Verdict::Pass {
            self.passing_since = None;
        }
        let long_enough = self
            .hold_for
            .is_none_or(|d| (sample.at - since).to_std().unwrap_or_default() >= d);
        match (self.timing, sample.verdict) {
            (Timing::Throughout, Verdict::Fail) if self.failed.is_none() => self.failed = Some(sample.clone()),
            (Timing::Within(_) | Timing::AfterRecovery, Verdict::Pass) if self.first_held.is_none() && long_enough => {
                self.first_held = Some(sample.at)
            }
            _ => {}
        }
        self.last = Some(sample);
    }

    /// Still worth sampling now?
    fn open(&self, injected: Instant, now: Instant, recovering: bool) -> bool {
        match self.timing {
            // Only while the faults are in place: a sample after the revert proves nothing.
            Timing::Within(d) => {
                !recovering && self.cut_short.is_none() && self.first_held.is_none() && now <= injected + d.as_std()
            }
            // Sampled over the whole window even after a failure: availability counts every
            // sample of the fault window, not those until the first failure.
            Timing::Throughout => !recovering,
            Timing::AfterRecovery => recovering && self.first_held.is_none(),
        }
    }
}

fn expected(timing: Timing) -> String {
    match timing {
        Timing::Within(d) => format!("within {d}"),
        Timing::Throughout => "throughout the fault".into(),
        Timing::AfterRecovery => "after recovery".into(),
    }
}

/// Runs `scenario`. Never panics on cluster errors: they end up in the report.
pub async fn run(
    client: &Client,
    scenario: &Scenario,
    options: RunOptions,
    mut abort: AbortSignal,
    progress: &dyn Progress,
) -> Report {
    let RunOptions {
        exercise,
        seed,
        sample_every,
        cluster,
        retries,
        sources,
        fault_image,
        nodes_journal_namespace,
        context,
        host,
        participants,
        confidence_before,
        clock,
    } = options;
    let retried_before = retries.as_ref().map_or(0, |r| r.entries().len());
    let spec = &scenario.spec;
    let begun = Instant::now();
    let say = |text: String| progress.say(&format!("[{:>6.1}s] {text}", begun.elapsed().as_secs_f64()));
    let mut report = Report {
        report_version: REPORT_VERSION,
        exercise: exercise.clone(),
        scenario: scenario.clone(),
        environment: Environment {
            cluster: cluster.clone(),
            context,
            namespace: spec.target.namespace.clone(),
            disasterpiece_version: env!("CARGO_PKG_VERSION").into(),
        },
        host,
        participants,
        confidence_before,
        confidence_after: None,
        learned: Vec::new(),
        follow_ups: Vec::new(),
        started_at: clock.now(),
        ended_at: clock.now(),
        outcome: Outcome::Refused,
        refusals: Vec::new(),
        timeline: Vec::new(),
        targets: Vec::new(),
        injections: Vec::new(),
        expectations: Vec::new(),
        metrics: Metrics::default(),
        abort: None,
        retried_calls: Vec::new(),
        revert_failures: Vec::new(),
    };

    // Preflight: the same checks as `plan`; a refusal changes nothing.
    report.event(clock.now(), "phase", "preflight");
    progress.phase("preflight", None);
    say("preflight: targets, guards, steady state, permissions, dry run".into());
    let plan = preflight::plan(
        client,
        scenario,
        &cluster,
        seed,
        &preflight::PlanOptions {
            sources: sources.clone(),
            fault_image: fault_image.clone(),
            nodes_journal_namespace: nodes_journal_namespace.clone(),
        },
        &clock,
    )
    .await;
    report.targets = plan
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
    if !plan.runnable {
        for reason in &plan.refusals {
            say(format!("refused: {reason}"));
        }
        report.refusals = plan.refusals;
        report.ended_at = clock.now();
        return report;
    }
    let journal_ns = journal_namespace(spec, nodes_journal_namespace.as_deref());
    let journal = match Journal::open(client, &journal_ns, &exercise, &scenario.metadata.name, &clock).await {
        Ok(j) => Arc::new(j),
        Err(e) => {
            report.refusals = vec![format!("cannot open the journal: {e}")];
            report.ended_at = clock.now();
            return report;
        }
    };
    let heartbeat = {
        let journal = journal.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(super::journal::HEARTBEAT_EVERY).await;
                let _ = journal.beat().await;
            }
        })
    };
    let ctx = Context {
        client: client.clone(),
        exercise: exercise.clone(),
        dry_run: false,
        in_pod: fault::in_pod::Settings {
            image: fault::in_pod::image(spec.fault_image.as_deref(), fault_image.as_deref()),
            duration: spec.duration.as_std(),
        },
        clock: clock.clone(),
    };
    let expires =
        clock.now() + chrono::Duration::from_std(spec.duration.as_std() + Duration::from_secs(60)).unwrap_or_default();
    let mut aborted: Option<(String, Instant, chrono::DateTime<Utc>)> = None;
    let check_abort = |abort: &AbortSignal, aborted: &mut Option<(String, Instant, chrono::DateTime<Utc>)>| {
        if aborted.is_none()
            && let Some(reason) = abort.borrow().clone()
        {
            *aborted = Some((reason, Instant::now(), clock.now()));
        }
    };

    // Inject, asking the guard again before each target.
    report.event(clock.now(), "phase", "inject");
    progress.phase("inject", None);
    let mut entries: Vec<(u32, Vec<Undo>, usize)> = Vec::new();
    let inject_started = Instant::now();
    let injected_wall = clock.now();
    // When the first fault went in: `within` clauses count from here.
    let mut first_injected: Option<Instant> = None;
    'faults: for (fault_plan, fault) in plan.faults.iter().zip(&spec.faults) {
        let Some(kind) = fault.kind() else { continue };
        let mut hit = Vec::new();
        for (target, step) in fault_plan.chosen.iter().zip(&fault_plan.steps) {
            check_abort(&abort, &mut aborted);
            if aborted.is_none()
                && let Some(reason) = kill_switch(client, spec.target.namespace.as_deref()).await
            {
                aborted = Some((reason, Instant::now(), clock.now()));
            }
            if aborted.is_some() {
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
            // The guard fails closed: if the cluster cannot be read now, the target is spared.
            let health = fresh_health(client, spec, fault_plan.unit)
                .await
                .map_err(|e| e.to_string());
            let verdict = second_look(
                fault_plan.unit,
                target,
                &spec.blast_radius,
                health.as_ref().map_err(Clone::clone),
                &hit,
            );
            if let Some(reason) = verdict {
                record.not_injected = Some(format!("guard: {reason}"));
                say(format!("skipped {}: the guard says {reason}", target.display()));
                report.event(clock.now(), "skipped", format!("{}: {reason}", target.display()));
                report.injections.push(record);
                continue;
            }
            let prepared = match fault::prepare(&ctx, kind, target).await {
                Ok(p) => p,
                Err(e) => {
                    record.not_injected = Some(e.to_string());
                    report.event(clock.now(), "error", format!("prepare {}: {e}", target.display()));
                    report.injections.push(record);
                    aborted = Some((
                        format!("could not prepare {}: {e}", target.display()),
                        Instant::now(),
                        clock.now(),
                    ));
                    break 'faults;
                }
            };
            if let Some(held) = held_by_another(client, &prepared.action, &exercise).await {
                record.not_injected = Some(held.clone());
                say(format!("skipped {}: {held}", target.display()));
                report.event(clock.now(), "skipped", format!("{}: {held}", target.display()));
                report.injections.push(record);
                continue;
            }
            let id = match journal.intend(&target.display(), &prepared, expires).await {
                Ok(id) => id,
                Err(e) => {
                    // Not journaled, so not sent: nothing may happen that cannot be undone.
                    aborted = Some((format!("journal write failed: {e}"), Instant::now(), clock.now()));
                    break 'faults;
                }
            };
            entries.push((id, prepared.undo.clone(), report.injections.len()));
            // Applying may wait long (a drain a PodDisruptionBudget blocks, an image pull, a
            // container restart): an abort interrupts it. What it did so far is journaled,
            // and its undo steps run with the others.
            let applied = tokio::select! {
                applied = fault::apply(&ctx, &prepared) => Some(applied),
                () = requested(&mut abort) => None,
            };
            let Some(applied) = applied else {
                check_abort(&abort, &mut aborted);
                let reason = "interrupted by the abort while it was being injected; its undo steps were run";
                say(format!("{}: {reason}", prepared.action));
                report.event(clock.now(), "notInjected", format!("{}: {reason}", prepared.action));
                record.not_injected = Some(reason.into());
                report.injections.push(record);
                break 'faults;
            };
            if first_injected.is_none() {
                first_injected = Some(Instant::now());
            }
            match applied {
                Ok(outcome @ (FaultOutcome::Injected | FaultOutcome::Evicted { .. })) => {
                    let _ = journal.mark(id, State::Applied).await;
                    record.injected_at = Some(clock.now());
                    say(format!("injected: {}", prepared.action));
                    report.event(clock.now(), "injected", prepared.action.to_string());
                    if let FaultOutcome::Evicted { pods } = outcome {
                        for pod in &pods {
                            report.event(clock.now(), "evicted", pod.clone());
                        }
                        say(format!("evicted {} pod(s)", pods.len()));
                        record.evicted = pods;
                    }
                    hit.push(target.clone());
                }
                Ok(FaultOutcome::Partial { evicted, reason }) => {
                    let _ = journal.mark(id, State::Applied).await;
                    record.injected_at = Some(clock.now());
                    say(format!("partly injected: {} — {reason}", prepared.action));
                    report.event(clock.now(), "partial", format!("{}: {reason}", prepared.action));
                    for pod in &evicted {
                        report.event(clock.now(), "evicted", pod.clone());
                    }
                    record.evicted = evicted;
                    record.partial = Some(reason);
                    hit.push(target.clone());
                }
                Ok(FaultOutcome::NotInjected { reason }) => {
                    say(format!("not injected: {} — {reason}", prepared.action));
                    report.event(clock.now(), "notInjected", format!("{}: {reason}", prepared.action));
                    record.not_injected = Some(reason);
                }
                Err(e) => {
                    report.event(clock.now(), "error", format!("{}: {e}", prepared.action));
                    record.not_injected = Some(e.to_string());
                    report.injections.push(record);
                    aborted = Some((format!("injection failed: {e}"), Instant::now(), clock.now()));
                    break 'faults;
                }
            }
            report.injections.push(record);
        }
    }

    // The window opens when injection is complete, however long that took: `duration` of
    // samples with every fault in place.
    let window_start = Instant::now();
    let injected_at = first_injected.unwrap_or(window_start);
    let injecting = window_start - inject_started;
    if aborted.is_none() && injecting > Duration::from_secs(1) {
        let took = format!(
            "injection took {:.1}s; the {} window starts now",
            injecting.as_secs_f64(),
            spec.duration
        );
        say(took.clone());
        report.event(clock.now(), "slowInjection", took);
    }

    // Observe until the duration ends, an abortWhen clause holds, or an abort is requested.
    let probe_ctx = ProbeContext {
        client: client.clone(),
        target: spec.target.clone(),
        sources: sources.clone(),
        clock: clock.clone(),
    };
    let mut clauses: Vec<Clause> = spec
        .expect
        .iter()
        .filter_map(|c| {
            let timing = c.timing()?;
            Some(Clause {
                name: c.name.clone(),
                timing,
                hold_for: match c.probe() {
                    Some(ProbeKind::Prometheus(p)) => p.for_.map(|d| d.as_std()),
                    _ => None,
                },
                passing_since: None,
                expected: expected(timing),
                first_held: None,
                failed: None,
                last: None,
                samples: 0,
                conclusive: 0,
                probe: c.probes().first().map(|(name, _)| name.to_string()).unwrap_or_default(),
                history: Vec::new(),
                cut_short: None,
            })
        })
        .collect();
    let probes: Vec<Option<ProbeKind<'_>>> = spec
        .expect
        .iter()
        .filter(|c| c.timing().is_some())
        .map(|c| c.probe())
        .collect();
    let mut disrupted = false;
    let mut remediated: Option<f64> = None;
    // When remediation can start: at injection for faults the system repairs while they last
    // (a killed or evicted pod, a killed container, a drained node), at the revert for faults
    // the tool itself holds (a scale, a cordon, a network or stress fault) — else the time to
    // remediate would be the tool's own fault window.
    let repaired_while_held = spec.faults.iter().all(|f| {
        matches!(
            f.kind(),
            Some(
                crate::scenario::model::FaultKind::PodKill(_)
                    | crate::scenario::model::FaultKind::PodEvict(_)
                    | crate::scenario::model::FaultKind::ContainerKill(_)
                    | crate::scenario::model::FaultKind::NodeDrain(_)
            )
        )
    });
    if aborted.is_none() {
        report.event(clock.now(), "phase", "observe");
        progress.phase("observe", Some(spec.duration.as_std()));
        progress.clauses(&states(&clauses));
        say(format!(
            "observing for {} (every {:.1}s)",
            spec.duration,
            sample_every.as_secs_f64()
        ));
    }
    let window_end = window_start + spec.duration.as_std();
    while aborted.is_none() && Instant::now() < window_end {
        tokio::select! {
            () = requested(&mut abort) => { check_abort(&abort, &mut aborted); continue; }
            _ = tokio::time::sleep(sample_every.min(window_end.saturating_duration_since(Instant::now()))) => {}
        }
        // One round of samples, the abortWhen clauses, the kill switch: a slow probe or API
        // server never holds up an abort.
        let round = async {
            let now = Instant::now();
            sample_clauses(
                &probe_ctx,
                &mut clauses,
                &probes,
                injected_at,
                now,
                false,
                &say,
                &mut report,
            )
            .await;
            progress.clauses(&states(&clauses));
            let abort_samples = join_all(spec.abort_when.iter().filter_map(|c| c.probe().map(|p| (c, p))).map(
                |(c, p)| {
                    let ctx = &probe_ctx;
                    async move { (c, probe::sample(ctx, p).await) }
                },
            ))
            .await;
            if let Some((condition, sample)) = abort_samples.into_iter().find(|(_, s)| s.verdict == Verdict::Pass) {
                let name = condition.name.clone().unwrap_or_else(|| "abortWhen".into());
                aborted = Some((
                    format!("abortWhen `{name}` held: {}", sample.observed),
                    Instant::now(),
                    clock.now(),
                ));
            }
            if aborted.is_none()
                && let Some(reason) = kill_switch(client, spec.target.namespace.as_deref()).await
            {
                aborted = Some((reason, Instant::now(), clock.now()));
            }
            if repaired_while_held {
                track_remediation(client, spec, &mut disrupted, &mut remediated, injected_at).await;
            }
        };
        let interrupted = tokio::select! {
            () = round => false,
            () = requested(&mut abort) => true,
        };
        if interrupted {
            check_abort(&abort, &mut aborted);
        }
    }
    // An abort cuts the window short: a clause that had not failed yet cannot be said to have
    // held (a `within` that held did hold).
    if let Some((reason, requested, _)) = &aborted {
        let at = requested.saturating_duration_since(window_start).as_secs_f64();
        for clause in &mut clauses {
            let unfinished = match clause.timing {
                Timing::Within(_) | Timing::AfterRecovery => clause.first_held.is_none() && clause.failed.is_none(),
                Timing::Throughout => clause.failed.is_none(),
            };
            if unfinished {
                clause.cut_short = Some(format!(
                    "aborted {at:.1}s into the window ({reason}) before it could be judged"
                ));
            }
        }
    }
    // A `within` clause still open when the faults go is not judged on samples taken after:
    // the fault was gone before its time was up.
    if aborted.is_none() {
        let reverted_at = Instant::now();
        for clause in &mut clauses {
            if let Timing::Within(d) = clause.timing
                && clause.first_held.is_none()
                && clause.failed.is_none()
            {
                let left = (injected_at + d.as_std()).saturating_duration_since(reverted_at);
                clause.cut_short = Some(format!(
                    "the fault was reverted {:.1}s before its `within {d}` ended, and it had not held",
                    left.as_secs_f64()
                ));
            }
        }
    }

    // Revert everything journaled, in parallel, whatever happened.
    if let Some((reason, _, _)) = &aborted {
        say(format!("ABORT: {reason} — reverting everything"));
        report.event(clock.now(), "abort", reason.clone());
    }
    report.event(clock.now(), "phase", "revert");
    progress.phase("revert", None);
    let reverts = join_all(entries.iter().map(|(id, undo, index)| {
        let ctx = ctx.clone();
        async move {
            let mut failures = Vec::new();
            for step in undo {
                if let Err(e) = revert_with_retries(&ctx, step).await {
                    failures.push(format!("{step}: {e}"));
                }
            }
            (*id, *index, failures)
        }
    }))
    .await;
    let reverted_at = clock.now();
    for (id, index, failures) in reverts {
        if failures.is_empty() {
            let _ = journal.mark(id, State::Reverted).await;
            if let Some(record) = report.injections.get_mut(index) {
                record.reverted_at = Some(reverted_at);
            }
        }
        report.revert_failures.extend(failures);
    }
    heartbeat.abort();
    let _ = heartbeat.await;
    say(format!(
        "reverted {} journaled action(s){}",
        entries.len(),
        if report.revert_failures.is_empty() {
            String::new()
        } else {
            format!("; {} undo step(s) FAILED", report.revert_failures.len())
        }
    ));
    report.event(clock.now(), "reverted", format!("{} action(s)", entries.len()));
    if let Some((reason, requested, requested_wall)) = &aborted {
        report.metrics.abort_latency_s = Some(requested.elapsed().as_secs_f64());
        report.abort = Some(Abort {
            reason: reason.clone(),
            requested_at: *requested_wall,
            completed_at: Some(clock.now()),
        });
    }
    let reverted_instant = Instant::now();

    // Recovery: the steady state must return; after-recovery and late `within` clauses are judged.
    let mut recovered = aborted.is_some();
    if aborted.is_none() {
        report.event(clock.now(), "phase", "recovery");
        progress.phase("recovery", Some(spec.recovery.within.as_std()));
        say(format!(
            "recovery: steady state must return within {}",
            spec.recovery.within
        ));
        let deadline = reverted_instant + spec.recovery.within.as_std();
        loop {
            if abort.borrow().is_some() {
                check_abort(&abort, &mut aborted);
                break;
            }
            let now = Instant::now();
            sample_clauses(
                &probe_ctx,
                &mut clauses,
                &probes,
                injected_at,
                now,
                true,
                &say,
                &mut report,
            )
            .await;
            progress.clauses(&states(&clauses));
            let since = if repaired_while_held {
                injected_at
            } else {
                reverted_instant
            };
            track_remediation(client, spec, &mut disrupted, &mut remediated, since).await;
            if !recovered {
                let samples = join_all(
                    spec.steady_state
                        .iter()
                        .filter_map(|c| c.probe())
                        .map(|p| probe::sample(&probe_ctx, p)),
                )
                .await;
                if samples.iter().all(|s| s.verdict == Verdict::Pass) {
                    recovered = true;
                    report.metrics.time_to_recover_s = Some(reverted_instant.elapsed().as_secs_f64());
                    say("steady state is back".into());
                    report.event(clock.now(), "recovered", "steady state holds again");
                }
            }
            let pending = clauses.iter().any(|c| c.open(injected_at, now, true));
            if (recovered && !pending) || now >= deadline {
                break;
            }
            tokio::select! {
                () = requested(&mut abort) => {}
                () = tokio::time::sleep(sample_every) => {}
            }
        }
        if let Some((reason, requested_at, requested_wall)) = &aborted {
            // Everything was reverted already: stopping the watch is all an abort does here.
            say(format!(
                "ABORT: {reason} — the faults were already reverted; recovery not watched further"
            ));
            report.event(clock.now(), "abort", reason.clone());
            report.metrics.abort_latency_s = Some(requested_at.elapsed().as_secs_f64());
            report.abort = Some(Abort {
                reason: reason.clone(),
                requested_at: *requested_wall,
                completed_at: Some(clock.now()),
            });
        } else if !recovered {
            say(format!("steady state did NOT return within {}", spec.recovery.within));
            report.event(
                clock.now(),
                "notRecovered",
                format!("steady state did not return within {}", spec.recovery.within),
            );
        }
    }

    if report.revert_failures.is_empty() {
        if let Err(e) = journal.close().await {
            say(format!(
                "could not close the journal: {e}; `disasterpiece recover` will"
            ));
        }
    } else {
        say(format!(
            "the journal {journal_ns}/{} is kept: run `disasterpiece recover`",
            super::journal::name_for(&exercise)
        ));
    }
    report.expectations = clauses.iter().map(Clause::result).collect();
    report.metrics.time_to_remediate_s = remediated;
    // From the moment the first fault actually went in, not the start of the phase.
    let first_injection = report
        .injections
        .iter()
        .filter_map(|i| i.injected_at)
        .min()
        .unwrap_or(injected_wall);
    report.metrics.time_to_detect_s = detection(&report, spec, first_injection);
    report.metrics.availability = availability(&report);
    report.metrics.blast_radius = ActualBlastRadius {
        hit: report.injections.iter().filter(|i| i.injected_at.is_some()).count() as u32,
        chosen: plan.faults.iter().map(|f| f.chosen.len() as u32).sum(),
        candidates: plan
            .faults
            .iter()
            .map(|f| (f.chosen.len() + f.excluded.len()) as u32)
            .sum(),
    };
    report.outcome = if aborted.is_some() {
        Outcome::Aborted
    } else if !recovered || report.expectations.iter().any(|e| e.verdict == ClauseVerdict::Refuted) {
        Outcome::Refuted
    } else if report
        .expectations
        .iter()
        .any(|e| e.verdict == ClauseVerdict::Inconclusive)
    {
        Outcome::Inconclusive
    } else {
        Outcome::Confirmed
    };
    report.retried_calls = retries
        .map(|r| r.entries().into_iter().skip(retried_before).collect())
        .unwrap_or_default();
    report.ended_at = clock.now();
    report
}

#[allow(clippy::too_many_arguments)]
async fn sample_clauses(
    ctx: &ProbeContext,
    clauses: &mut [Clause],
    probes: &[Option<ProbeKind<'_>>],
    injected: Instant,
    now: Instant,
    recovering: bool,
    say: &impl Fn(String),
    report: &mut Report,
) {
    let open: Vec<usize> = (0..clauses.len())
        .filter(|i| clauses[*i].open(injected, now, recovering) && probes[*i].is_some())
        .collect();
    let samples = join_all(
        open.iter()
            .map(|i| probe::sample(ctx, probes[*i].expect("filtered to Some"))),
    )
    .await;
    for (i, sample) in open.into_iter().zip(samples) {
        let clause = &mut clauses[i];
        let was_held = clause.first_held.is_some();
        let was_failed = clause.failed.is_some();
        clause.record(sample.clone());
        if !was_held && clause.first_held.is_some() {
            say(format!("expectation `{}` holds: {}", clause.name, sample.observed));
            report.event(
                ctx.clock.now(),
                "expectation",
                format!("`{}` holds: {}", clause.name, sample.observed),
            );
        }
        if !was_failed && clause.failed.is_some() {
            say(format!("expectation `{}` FAILED: {}", clause.name, sample.observed));
            report.event(
                ctx.clock.now(),
                "expectation",
                format!("`{}` failed: {}", clause.name, sample.observed),
            );
        }
    }
    // A `within` clause whose deadline passed without holding is decided now.
    for clause in clauses.iter_mut() {
        if let Timing::Within(d) = clause.timing
            && clause.first_held.is_none()
            && clause.failed.is_none()
            && clause.cut_short.is_none()
            && now > injected + d.as_std()
            && clause.conclusive > 0
            && let Some(last) = clause.last.clone()
        {
            say(format!(
                "expectation `{}` did not hold within {d}: {}",
                clause.name, last.observed
            ));
            report.event(
                ctx.clock.now(),
                "expectation",
                format!("`{}` did not hold within {d}", clause.name),
            );
            clause.failed = Some(last);
        }
    }
}

/// The kill switch's ConfigMap: while it exists, no exercise runs.
pub const KILL_SWITCH: (&str, &str) = ("disasterpiece-system", "disasterpiece-killswitch");
/// The annotation that stops every exercise in a namespace.
pub const ABORT_ANNOTATION: &str = "disasterpiece.dev/abort";

/// Whether someone pulled the kill switch: the ConfigMap exists, or the target's namespace
/// carries the abort annotation. Unreadable counts as not pulled; `plan` checks the
/// permissions to read both.
pub async fn kill_switch(client: &Client, namespace: Option<&str>) -> Option<String> {
    let (ks_ns, ks_name) = KILL_SWITCH;
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ks_ns);
    if let Ok(Some(_)) = maps.get_opt(ks_name).await {
        return Some(format!("kill switch: ConfigMap {ks_ns}/{ks_name} exists"));
    }
    let ns = namespace?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let annotated = namespaces
        .get_opt(ns)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.metadata.annotations)
        .is_some_and(|a| a.contains_key(ABORT_ANNOTATION));
    annotated.then(|| format!("kill switch: namespace {ns} is annotated {ABORT_ANNOTATION}"))
}

/// The workload's Ready pods now, for the guard's second look.
async fn fresh_health(
    client: &Client,
    spec: &crate::scenario::model::ScenarioSpec,
    unit: crate::target::Unit,
) -> Result<Health, crate::target::resolve::ResolveError> {
    resolve(client, &spec.target, unit).await.map(|r| r.health)
}

/// Time to remediate: the first moment, after the target was disrupted, when its workloads
/// are back to their desired replicas.
async fn track_remediation(
    client: &Client,
    spec: &crate::scenario::model::ScenarioSpec,
    disrupted: &mut bool,
    remediated: &mut Option<f64>,
    since: Instant,
) {
    if remediated.is_some() || spec.target.kind.as_str() == "Node" || spec.target.kind.as_str() == "Pod" {
        return;
    }
    let Some(ns) = &spec.target.namespace else { return };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(spec.target.kind.as_str()));
    let Some(name) = &spec.target.name else { return };
    let Ok(object) = api.get(name).await else { return };
    let want = object.data["spec"]["replicas"].as_u64().unwrap_or(1);
    let ready = object.data["status"]["readyReplicas"].as_u64().unwrap_or(0);
    if ready < want {
        *disrupted = true;
    } else if *disrupted {
        *remediated = Some(since.elapsed().as_secs_f64());
    }
}

/// The share of http probe samples that passed between the first injection and the last
/// revert; `None` without such samples.
fn availability(report: &Report) -> Option<f64> {
    let from = report.injections.iter().filter_map(|i| i.injected_at).min()?;
    let to = report
        .injections
        .iter()
        .filter_map(|i| i.reverted_at)
        .max()
        .unwrap_or(report.ended_at);
    let (passed, total) = report
        .expectations
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
fn detection(
    report: &Report,
    spec: &crate::scenario::model::ScenarioSpec,
    injected: chrono::DateTime<Utc>,
) -> Option<f64> {
    let held = |alerts: bool| {
        spec.expect
            .iter()
            .zip(&report.expectations)
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

/// An undo step, applied again (with a fresh read) when it lost a race with another writer
/// (409 Conflict). Transient errors are the client's retry layer's business (`retry`): retrying
/// them here too would multiply its attempts.
async fn revert_with_retries(ctx: &Context, step: &Undo) -> Result<(), fault::FaultError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match fault::revert(ctx, step).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 8 && conflict(&e) => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(e) => return Err(e),
        }
    }
}

/// 429 with a Retry-After (flow control), 5xx, or no answer at all: worth another try.
fn conflict(e: &fault::FaultError) -> bool {
    matches!(
        e,
        fault::FaultError::Api {
            source: kube::Error::Api(status),
            ..
        } if status.code == 409
    )
}
