//! The observe phase (the fault window) and the recovery phase (after the revert): rounds of
//! samples, each raced with the Andon cord so a slow probe or API server never holds an abort
//! up.

use futures_util::future::join_all;
use kube::Client;
use kube::api::Api;
use kube::core::DynamicObject;
use tokio::time::Instant;

use super::clause::{Change, Clause};
use super::inject::Injected;
use super::{Exercise, kill_switch};
use crate::blast_radius::resolve::api_resource;
use crate::engine::abort::unless_aborted;
use crate::engine::beyond::Watcher;
use crate::engine::event::{ExerciseEvent, Phase};
use crate::fault::Undo;
use crate::probe::{self, ProbeContext, Verdict};
use crate::report::model::{ExpectationResult, ObservedBlastRadius};
use crate::scenario::model::{FaultKind, HasProbe, ProbeKind, ScenarioSpec};

/// The expectations and what they are sampled with, and the remediation watch.
pub(super) struct Watch<'a> {
    clauses: Vec<Clause>,
    probes: Vec<Option<ProbeKind<'a>>>,
    ctx: ProbeContext,
    remediation: Remediation,
    /// The watch beyond the targets, from before the first injection to the end of recovery.
    beyond: Watcher,
}

/// Time to remediate: from when remediation can start until the target's workload is back to
/// its desired replicas, at the resolution of the sampling.
struct Remediation {
    /// Faults the system repairs while they last (a killed or evicted pod, a killed container,
    /// a drained node) can be remediated from their injection; faults the tool itself holds
    /// (a scale, a cordon, a network or stress fault) only from their revert — else the time
    /// to remediate would be the tool's own fault window.
    while_held: bool,
    disrupted: bool,
    since: Option<Instant>,
    took: Option<f64>,
}

impl<'a> Watch<'a> {
    pub fn new(spec: &'a ScenarioSpec, ctx: ProbeContext, beyond: Watcher) -> Watch<'a> {
        let timed = || spec.expect.iter().filter_map(|c| c.timing().map(|t| (c, t)));
        Watch {
            clauses: timed()
                .map(|(c, timing)| {
                    let hold_for = match c.probe() {
                        Some(ProbeKind::Prometheus(p)) => p.for_.map(|d| d.as_std()),
                        _ => None,
                    };
                    let probe = c.probes().first().map(|(name, _)| name.to_string()).unwrap_or_default();
                    Clause::new(c.name.clone(), timing, hold_for, probe)
                })
                .collect(),
            probes: timed().map(|(c, _)| c.probe()).collect(),
            ctx,
            remediation: Remediation {
                while_held: spec.faults.iter().all(|f| {
                    matches!(
                        f.kind(),
                        Some(
                            FaultKind::PodKill(_)
                                | FaultKind::PodEvict(_)
                                | FaultKind::ContainerKill(_)
                                | FaultKind::NodeDrain(_)
                        )
                    )
                }),
                disrupted: false,
                since: None,
                took: None,
            },
            beyond,
        }
    }

    /// Says each piece of collateral found since the last time.
    fn tell_collateral(&mut self, events: &mut super::Events<'_>) {
        for found in self.beyond.new_findings() {
            events.emit(ExerciseEvent::Collateral {
                subject: found.subject,
                what: found.what,
                owner: found.owner,
                halts: found.halts,
            });
        }
    }

    /// Ends the watch beyond the targets (at the end of recovery): what it saw.
    pub fn stop_beyond(mut self, events: &mut super::Events<'_>) -> ObservedBlastRadius {
        self.tell_collateral(events);
        let (watched, collateral, halted_by) = self.beyond.stop();
        ObservedBlastRadius {
            watched,
            declared: Default::default(),
            collateral,
            halted_by,
        }
    }

    pub fn results(&self) -> Vec<ExpectationResult> {
        self.clauses.iter().map(Clause::result).collect()
    }

    pub fn remediated(&self) -> Option<f64> {
        self.remediation.took
    }

    fn states(&self) -> ExerciseEvent {
        ExerciseEvent::Clauses {
            states: self.clauses.iter().map(|c| (c.name.clone(), c.state())).collect(),
        }
    }
}

/// Samples until the window (`duration`, from when injection was complete) ends, an
/// `abortWhen` clause holds, the kill switch is pulled, an abort is requested or a fault ends
/// before its time; then closes what the window left undecided. Returns why a fault ended
/// early, when one did.
pub(super) async fn observe(x: &mut Exercise<'_>, watch: &mut Watch<'_>, injected: &Injected) -> Option<String> {
    let first = injected.first.unwrap_or(injected.complete);
    if watch.remediation.while_held && injected.first.is_some() {
        // The fault itself is the disruption: a replacement faster than one sample still counts.
        watch.remediation.disrupted = true;
        watch.remediation.since = injected.first;
    }
    if injected.first.is_none() && x.aborted.is_none() {
        // Nothing to judge the hypothesis by (the report says so): no window to wait out.
        x.emit(ExerciseEvent::NothingInPlace);
        return None;
    }
    let end = injected.complete + x.spec.duration.as_std();
    if x.aborted.is_none() {
        let every = x.options.sample_every;
        x.enter(Phase::Observe, Some(x.spec.duration.as_std()), Some(every));
        x.emit(watch.states());
    }
    let mut ended = None;
    while x.aborted.is_none() && Instant::now() < end {
        let pause = x
            .options
            .sample_every
            .min(end.saturating_duration_since(Instant::now()));
        if !x.wait(pause).await {
            continue;
        }
        if let Some(Some(reason)) = raced_round(x, watch, first, false).await {
            x.abort_with(reason);
        }
        if x.aborted.is_none()
            && let Some((action, reason)) = ended_early(x, injected).await
        {
            let at = injected.complete.elapsed().as_secs_f64();
            x.emit(ExerciseEvent::FaultEnded {
                action: action.clone(),
                reason: reason.clone(),
            });
            ended = Some(format!("{action}: {reason}, {at:.1}s into the window"));
            break;
        }
    }
    let now = Instant::now();
    match &x.aborted {
        Some(aborted) => {
            let at = aborted.at.saturating_duration_since(injected.complete).as_secs_f64();
            watch
                .clauses
                .iter_mut()
                .for_each(|c| c.cut_by_abort(at, &aborted.reason));
        }
        None => watch.clauses.iter_mut().for_each(|c| c.cut_by_revert(first, now)),
    }
    ended
}

/// The first in-pod fault the tool holds that is no longer in place while it should be (more
/// than a second before its own end): its action and why.
async fn ended_early(x: &mut Exercise<'_>, injected: &Injected) -> Option<(String, String)> {
    let now = x.events.clock.now();
    let held: Vec<(String, String, String, String)> = injected
        .entries
        .iter()
        .flat_map(|(entry, _)| {
            entry.undo.iter().filter_map(move |undo| match undo {
                Undo::StopInPod {
                    namespace,
                    pod,
                    container,
                    ends_at,
                    ..
                } if *ends_at > now + chrono::Duration::seconds(1) => Some((
                    entry.action.to_string(),
                    namespace.clone(),
                    pod.clone(),
                    container.clone(),
                )),
                _ => None,
            })
        })
        .collect();
    let mut cord = x.abort.clone();
    let client = x.client;
    let look = async {
        for (action, namespace, pod, container) in &held {
            if let Some(why) = crate::fault::in_pod::gone(client, namespace, pod, container).await {
                return Some((action.clone(), why));
            }
        }
        None
    };
    let found = unless_aborted(&mut cord, look).await.flatten();
    x.check_abort();
    found
}

/// One round (`round`), unless an abort comes first: `None` then, the abort taken into account.
async fn raced_round(
    x: &mut Exercise<'_>,
    watch: &mut Watch<'_>,
    first: Instant,
    recovering: bool,
) -> Option<Option<String>> {
    let mut cord = x.abort.clone();
    let Exercise {
        events,
        client,
        spec,
        options,
        ..
    } = x;
    let switch = &options.kill_switch;
    let done = unless_aborted(&mut cord, round(client, spec, switch, watch, events, first, recovering)).await;
    x.check_abort();
    done
}

/// One round: the open clauses, then (in the window) the `abortWhen` clauses and the kill
/// switch; returns why to abort, if so.
async fn round(
    client: &Client,
    spec: &ScenarioSpec,
    switch: &super::KillSwitch,
    watch: &mut Watch<'_>,
    events: &mut super::Events<'_>,
    first: Instant,
    recovering: bool,
) -> Option<String> {
    let now = Instant::now();
    let open: Vec<usize> = (0..watch.clauses.len())
        .filter(|i| watch.clauses[*i].open(first, now, recovering) && watch.probes[*i].is_some())
        .collect();
    let samples = join_all(
        open.iter()
            .filter_map(|i| watch.probes[*i])
            .map(|p| probe::sample(&watch.ctx, p)),
    )
    .await;
    for (i, sample) in open.into_iter().zip(samples) {
        let clause = &mut watch.clauses[i];
        let (name, observed) = (clause.name.clone(), sample.observed.clone());
        match clause.record(sample) {
            Change::Held => events.emit(ExerciseEvent::Held { clause: name, observed }),
            Change::Failed => events.emit(ExerciseEvent::Failed { clause: name, observed }),
            Change::None => {}
        }
    }
    for clause in &mut watch.clauses {
        if let Some(observed) = clause.expire(first, now) {
            let within = match clause.timing {
                crate::scenario::model::Timing::Within(d) => d.to_string(),
                _ => String::new(),
            };
            let event = ExerciseEvent::Missed {
                clause: clause.name.clone(),
                within,
                observed,
            };
            events.emit(event);
        }
    }
    events.emit(watch.states());
    watch.tell_collateral(events);
    track_remediation(client, spec, &mut watch.remediation).await;
    if recovering {
        return None;
    }
    let conditions = spec.abort_when.iter().filter_map(|c| c.probe().map(|p| (c, p)));
    let ctx = &watch.ctx;
    let samples = join_all(conditions.map(|(c, p)| async move { (c, probe::sample(ctx, p).await) })).await;
    if let Some((condition, sample)) = samples.into_iter().find(|(_, s)| s.verdict == Verdict::Pass) {
        let name = condition.name.clone().unwrap_or_else(|| "abortWhen".into());
        return Some(format!("abortWhen `{name}` held: {}", sample.observed));
    }
    kill_switch(client, switch, spec.target.namespace.as_deref()).await
}

/// Watches, after the revert, for the steady state to return and the after-recovery (and
/// remediation) clauses to be decided, until `recovery.within`. Returns whether it returned,
/// and how long after `reverted` it did. An abort ends the watch at once: everything is
/// reverted already.
pub(super) async fn recovery(
    x: &mut Exercise<'_>,
    watch: &mut Watch<'_>,
    injected: &Injected,
    reverted: Instant,
) -> (bool, Option<f64>) {
    if x.aborted.is_some() {
        return (true, None);
    }
    let within = x.spec.recovery.within.as_std();
    x.enter(Phase::Recovery, Some(within), Some(x.options.sample_every));
    if !watch.remediation.while_held {
        watch.remediation.since = Some(reverted);
    }
    let first = injected.first.unwrap_or(injected.complete);
    let deadline = reverted + within;
    let mut recovered = None;
    loop {
        if raced_round(x, watch, first, true).await.is_none() {
            break;
        }
        let mut cord = x.abort.clone();
        let back = recovered.is_some() || unless_aborted(&mut cord, steady(x.spec, &watch.ctx)).await == Some(true);
        x.check_abort();
        if x.aborted.is_some() {
            break;
        }
        if back && recovered.is_none() {
            recovered = Some(reverted.elapsed().as_secs_f64());
            x.emit(ExerciseEvent::Recovered);
        }
        let pending = watch.clauses.iter().any(|c| c.open(first, Instant::now(), true));
        if (recovered.is_some() && !pending) || Instant::now() >= deadline || !x.wait(x.options.sample_every).await {
            break;
        }
    }
    if let Some(aborted) = &x.aborted {
        let event = ExerciseEvent::Abort {
            reason: aborted.reason.clone(),
            during: Phase::Recovery,
        };
        x.emit(event);
        return (true, recovered);
    }
    if recovered.is_none() {
        x.emit(ExerciseEvent::NotRecovered {
            within: x.spec.recovery.within.to_string(),
        });
    }
    (recovered.is_some(), recovered)
}

/// Whether every steady-state clause holds now.
async fn steady(spec: &ScenarioSpec, ctx: &ProbeContext) -> bool {
    let samples = join_all(
        spec.steady_state
            .iter()
            .filter_map(|c| c.probe())
            .map(|p| probe::sample(ctx, p)),
    )
    .await;
    samples.iter().all(|s| s.verdict == Verdict::Pass)
}

/// The first moment, once remediation can start and the target was disrupted, when its
/// workload is back to its desired replicas.
async fn track_remediation(client: &Client, spec: &ScenarioSpec, remediation: &mut Remediation) {
    let Remediation {
        disrupted, since, took, ..
    } = remediation;
    let (Some(since), None) = (*since, *took) else { return };
    if matches!(spec.target.kind.as_str(), "Node" | "Pod") {
        return;
    }
    let (Some(ns), Some(name)) = (&spec.target.namespace, &spec.target.name) else {
        return;
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(spec.target.kind.as_str()));
    let Ok(object) = api.get(name).await else { return };
    let want = object.data["spec"]["replicas"].as_u64().unwrap_or(1);
    let ready = object.data["status"]["readyReplicas"].as_u64().unwrap_or(0);
    if ready < want {
        *disrupted = true;
    } else if *disrupted {
        *took = Some(since.elapsed().as_secs_f64());
    }
}
