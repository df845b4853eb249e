//! The Andon cord in every phase, and an honest window (issue 15): an abort interrupts a drain
//! that a PodDisruptionBudget blocks, a slow probe, and the recovery watch, and everything is
//! reverted; the window holds `duration` of samples after a slow injection; a `within` clause
//! still open when the fault goes is not confirmed by a sample taken after; a revert that fails
//! gives its own exit code.
//!
//! The bounds on abort latency here are far above the figures (BENCHMARKS.md measures those):
//! they tell an interrupted wait (well under a second) from one waited out (a minute).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use disasterpiece::engine::event::{ExerciseEvent, Phase};
use disasterpiece::engine::run::{Progress, RunOptions, run};
use disasterpiece::report::model::{ClauseVerdict, Outcome, Report};
use disasterpiece::scenario::Scenario;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use tokio::sync::watch;

mod common;
use common::{fast_shop, parse, replicas, start};

/// Says each phase as it starts, so a test can pull the cord in the phase it wants.
struct Phases {
    tx: watch::Sender<String>,
    events: Mutex<Vec<ExerciseEvent>>,
}

impl Progress for Phases {
    fn event(&self, _: Duration, event: &ExerciseEvent) {
        if let ExerciseEvent::Phase { phase, .. } = event {
            let _ = self.tx.send(phase.to_string());
        }
        self.events.lock().expect("events").push(event.clone());
    }
}

/// A run under way in the background, whose cord a test can pull in the phase it wants.
struct Running {
    report: tokio::task::JoinHandle<Report>,
    cord: watch::Sender<Option<String>>,
    phases: watch::Receiver<String>,
    progress: Arc<Phases>,
}

fn start_run(client: &kube::Client, scenario: Scenario, options: RunOptions) -> Running {
    let (tx, phases) = watch::channel(String::new());
    let progress = Arc::new(Phases {
        tx,
        events: Mutex::default(),
    });
    let (cord, abort) = watch::channel(None);
    let report = tokio::spawn({
        let (client, progress) = (client.clone(), progress.clone());
        async move { run(&client, &scenario, options, abort, progress.as_ref()).await }
    });
    Running {
        report,
        cord,
        phases,
        progress,
    }
}

impl Running {
    /// Returns once the run has entered `phase`.
    async fn until(&mut self, phase: &str) {
        while *self.phases.borrow_and_update() != phase {
            self.phases.changed().await.expect("the run goes on");
        }
    }

    fn pull(&self, reason: &str) {
        self.cord.send(Some(reason.to_owned())).expect("abort");
    }

    /// The report, and what the run said.
    async fn finish(self) -> (Report, Vec<ExerciseEvent>) {
        let report = self.report.await.expect("the run");
        let events = self.progress.events.lock().expect("events").clone();
        (report, events)
    }
}

/// Runs `scenario` to its end.
async fn run_to_end(client: &kube::Client, scenario: Scenario, exercise: &str) -> (Report, Vec<ExerciseEvent>) {
    start_run(client, scenario, common::run_options(exercise))
        .finish()
        .await
}

/// Runs `scenario`, pulls the cord `after` the phase `phase` starts, and returns the report.
async fn abort_in(
    client: &kube::Client,
    scenario: &Scenario,
    phase: &str,
    after: Duration,
) -> (Report, Vec<ExerciseEvent>) {
    let mut running = start_run(client, scenario.clone(), common::run_options("ex-andon"));
    running.until(phase).await;
    tokio::time::sleep(after).await;
    running.pull(&format!("Andon pulled in {phase}"));
    running.finish().await
}

/// Preflight changes nothing, and a slow steady-state check (here a command that takes 30 s)
/// does not hold an abort up: the run ends at once, aborted, with nothing injected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_during_preflight_ends_the_run_before_anything_changes() {
    let (sim, client) = start(fast_shop()).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: slow-steady-state}
spec:
  hypothesis: Frontend copes with one replica.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 5s
  steadyState:
    - {name: slow check, command: {run: [sleep, '30']}}
  expect:
    - {name: one left, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
    );
    let before = sim.resource_version();
    let mut options = common::run_options("ex-preflight");
    options.sources.commands = disasterpiece::probe::CommandProbes::On;
    let mut running = start_run(&client, scenario, options);
    running.until("preflight").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.pull("Andon pulled in preflight");
    let (report, events) = running.finish().await;
    assert_eq!(report.outcome, Outcome::Aborted, "{events:#?}");
    assert!(report.injections.is_empty());
    let latency = report.metrics.abort_latency_s.expect("abort latency");
    assert!(latency < 5.0, "the 30 s check held the abort up for {latency}s");
    assert!(events.iter().any(|e| matches!(
        e,
        ExerciseEvent::Abort {
            during: Phase::Preflight,
            ..
        }
    )));
    assert_eq!(replicas(&client, "frontend").await, 3);
    assert_eq!(sim.resource_version(), before, "nothing was written");
}

/// The node that holds a checkout pod, and checkout's PDB set to allow no disruption.
async fn blocked_drain(client: &kube::Client) -> String {
    let pods = Api::<Pod>::namespaced(client.clone(), "shop")
        .list(&ListParams::default().labels("app=checkout"))
        .await
        .expect("pods");
    let node = pods.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .expect("scheduled");
    set_min_available(client, 3).await;
    node
}

async fn set_min_available(client: &kube::Client, n: u32) {
    Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::namespaced(client.clone(), "shop")
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"minAvailable": n}})),
        )
        .await
        .expect("patch the PDB");
}

fn drain(node: &str, duration: &str) -> Scenario {
    parse(&format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: drain-blocked}}
spec:
  hypothesis: Checkout keeps two pods while a node drains.
  target: {{kind: Node, name: {node}}}
  blastRadius: {{mode: one, respectPodDisruptionBudgets: false}}
  faults: [{{nodeDrain: {{gracePeriodSeconds: 0, timeout: 60s}}}}]
  duration: {duration}
  expect:
    - {{name: two left, kube: {{kind: Deployment, name: checkout, namespace: shop, readyReplicas: {{atLeast: 2}}}}, throughout: true}}
  recovery: {{within: 30s}}
"
    ))
}

async fn unschedulable(client: &kube::Client, node: &str) -> bool {
    Api::<Node>::all(client.clone())
        .get(node)
        .await
        .expect("node")
        .spec
        .and_then(|s| s.unschedulable)
        == Some(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_interrupts_a_drain_a_pdb_blocks_and_uncordons_the_node() {
    let (_sim, client) = start(fast_shop()).await;
    let node = blocked_drain(&client).await;
    let (report, lines) = abort_in(&client, &drain(&node, "20s"), "inject", Duration::from_secs(2)).await;
    assert_eq!(report.outcome, Outcome::Aborted, "{lines:#?}");
    let latency = report.metrics.abort_latency_s.expect("abort latency");
    assert!(latency < 10.0, "the drain's 60s timeout was waited out: {latency}s");
    let record = &report.injections[0];
    assert!(
        record
            .not_injected
            .as_deref()
            .is_some_and(|n| n.contains("interrupted by the abort")),
        "{record:?}"
    );
    assert!(!unschedulable(&client, &node).await, "the node is uncordoned");
    assert!(report.revert_failures.is_empty(), "{:?}", report.revert_failures);
    // Cut short, nothing can be said to have held.
    let clause = &report.expectations[0];
    assert_eq!(clause.verdict, ClauseVerdict::Inconclusive, "{clause:?}");
    assert!(clause.observed.starts_with("aborted"), "{}", clause.observed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_slow_injection_the_window_still_holds_its_duration_of_samples() {
    let (_sim, client) = start(fast_shop()).await;
    let node = blocked_drain(&client).await;
    // The PDB lets go after 3 s: the drain completes then, and only then does the window open.
    let releasing = tokio::spawn({
        let client = client.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            set_min_available(&client, 2).await;
        }
    });
    let (report, lines) = run_to_end(&client, drain(&node, "2s"), "ex-slow").await;
    releasing.await.expect("released");
    let injected = report.injections[0].injected_at.expect("the drain went in");
    assert!(
        (injected - report.started_at).num_milliseconds() >= 2500,
        "the drain waited for the PDB"
    );
    assert!(
        lines.iter().any(|e| matches!(e, ExerciseEvent::SlowInjection { .. })),
        "{lines:#?}"
    );
    assert!(report.timeline.iter().any(|e| e.kind == "slowInjection"));
    let clause = &report.expectations[0];
    // 2 s every 200 ms, all after the drain completed (a few may be lost to scheduling).
    assert!(clause.samples >= 5, "{} samples: {lines:#?}", clause.samples);
    assert!(
        clause.history.iter().all(|o| o.at >= injected),
        "a sample before the fault was in place: {:?}",
        clause.history
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_during_a_slow_probe_is_not_held_up_by_it() {
    let (_sim, client) = start(fast_shop()).await;
    // A service that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let address = silent.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let scenario = parse(&format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: slow-probe}}
spec:
  hypothesis: The frontend copes with one replica.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  faults: [{{scale: {{replicas: 1}}}}]
  duration: 1m
  expect:
    - {{name: answers, http: {{url: 'http://{address}/', timeout: 20s}}, throughout: true}}
"
    ));
    let mut opts = common::run_options("ex-slow-probe");
    opts.sources.hosts = disasterpiece::probe::hosts::HostPolicy::any();
    let mut running = start_run(&client, scenario, opts);
    running.until("observe").await;
    // The first sample is under way (it will take 20 s) when the cord is pulled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.pull("Andon");
    let (report, _) = running.finish().await;
    assert_eq!(report.outcome, Outcome::Aborted);
    let latency = report.metrics.abort_latency_s.expect("latency");
    assert!(latency < 10.0, "the 20s probe held the abort: {latency}s");
    assert_eq!(replicas(&client, "frontend").await, 3, "reverted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_during_recovery_stops_the_watch_at_once() {
    let (_sim, client) = start(fast_shop()).await;
    // An after-recovery clause that never holds keeps recovery watching for its whole minute.
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: long-recovery}
spec:
  hypothesis: The frontend copes with one replica.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 1s
  expect:
    - {name: never, kube: {readyReplicas: {atLeast: 99}}, afterRecovery: true}
  recovery: {within: 1m}
",
    );
    let (report, lines) = abort_in(&client, &scenario, "recovery", Duration::from_millis(800)).await;
    assert_eq!(report.outcome, Outcome::Aborted, "{lines:#?}");
    let latency = report.metrics.abort_latency_s.expect("latency");
    assert!(latency < 10.0, "recovery was waited out: {latency}s");
    assert!(
        lines.iter().any(|e| matches!(
            e,
            ExerciseEvent::Abort {
                during: Phase::Recovery,
                ..
            }
        )),
        "{lines:#?}"
    );
    assert_eq!(replicas(&client, "frontend").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_within_clause_still_open_when_the_fault_goes_is_not_confirmed_after_it() {
    let (_sim, client) = start(fast_shop()).await;
    // The frontend is back to 3 Ready only after the revert: `within 30s` of a 1 s fault would
    // be "confirmed" by a sample taken once the fault was gone.
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: late-within}
spec:
  hypothesis: The frontend is whole again while scaled down.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 1s
  expect:
    - {name: whole, kube: {readyReplicas: {atLeast: 3}}, within: 30s}
  recovery: {within: 20s}
",
    );
    let (report, _) = run_to_end(&client, scenario, "ex-late").await;
    let clause = &report.expectations[0];
    assert_eq!(clause.verdict, ClauseVerdict::Inconclusive, "{clause:?}");
    assert!(clause.observed.contains("reverted") && clause.observed.contains("before its `within 30s` ended"));
    assert!(clause.first_held.is_none());
    assert_eq!(report.outcome, Outcome::Inconclusive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_that_fails_gives_its_own_exit_code() {
    let (sim, admin) = start(fast_shop()).await;
    // Someone who may do everything, until their binding is taken away mid-run.
    let binding = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "runner-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "shop"}]});
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), "shop");
    accounts
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "runner"}})).expect("sa"),
        )
        .await
        .expect("service account");
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(admin.clone());
    bindings
        .create(&Default::default(), &serde_json::from_value(binding).expect("binding"))
        .await
        .expect("binding");
    let runner = sim.service_account_client("shop", "runner").await.expect("token");
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: revert-fails}
spec:
  hypothesis: The frontend copes with one replica.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 2s
  expect:
    - {name: one left, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
    );
    let mut running = start_run(&runner, scenario, common::run_options("ex-revert-fails"));
    running.until("observe").await;
    bindings
        .delete("runner-admin", &Default::default())
        .await
        .expect("take the binding away");
    let (report, _) = running.finish().await;
    assert!(!report.revert_failures.is_empty(), "{:?}", report);
    // The README's exit code for a failed revert, whatever the verdict.
    assert_eq!(report.exit_code(), 4);
    assert_eq!(
        replicas(&admin, "frontend").await,
        1,
        "still scaled down, as the report says"
    );
}

/// Availability counts every http sample of the fault window: a throughout clause that failed
/// once keeps being sampled (before, sampling stopped at the first failure, and identical runs
/// read 66.7% or 0.0%).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_counts_every_sample_of_the_window_not_those_until_the_first_failure() {
    let (_sim, client) = start(fast_shop()).await;
    // One of checkout's three pods loses DNS: about one answer in three is a 502.
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: one-pod-dns}
spec:
  hypothesis: Checkout answers although one pod lost DNS.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{dnsFailure: {}}]
  duration: 3s
  expect:
    - {name: answers, http: {url: 'http://checkout.shop.svc/'}, throughout: true}
",
    );
    let (report, _) = run_to_end(&client, scenario, "ex-availability").await;
    let clause = &report.expectations[0];
    assert_eq!(clause.verdict, ClauseVerdict::Refuted, "{clause:?}");
    assert!(
        clause.samples >= 8,
        "sampling stopped at the first failure: {} samples",
        clause.samples
    );
    let availability = report.metrics.availability.expect("availability");
    assert!(
        (0.4..0.95).contains(&availability),
        "{availability}: {:?}",
        clause.history
    );
}

/// A drain that times out is half a fault, not none: the node was cordoned and the pods that
/// could go are gone. The report says so, and the revert uncordons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_times_out_is_reported_as_partly_injected_and_reverted() {
    let (_sim, client) = start(fast_shop()).await;
    let node = blocked_drain(&client).await;
    let scenario = parse(&format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: drain-times-out}}
spec:
  hypothesis: Checkout keeps two pods while a node drains.
  target: {{kind: Node, name: {node}}}
  blastRadius: {{mode: one, respectPodDisruptionBudgets: false}}
  faults: [{{nodeDrain: {{gracePeriodSeconds: 0, timeout: 2s}}}}]
  duration: 1s
  expect:
    - {{name: two left, kube: {{kind: Deployment, name: checkout, namespace: shop, readyReplicas: {{atLeast: 2}}}}, throughout: true}}
  recovery: {{within: 30s}}
"
    ));
    let (report, _) = run_to_end(&client, scenario, "ex-partial").await;
    let record = &report.injections[0];
    assert!(
        record.injected_at.is_some(),
        "a cordoned node is a fault in place: {record:?}"
    );
    assert!(record.not_injected.is_none(), "{record:?}");
    assert!(
        record
            .partial
            .as_deref()
            .is_some_and(|p| p.contains("cordoned but not empty")),
        "{record:?}"
    );
    assert_eq!(report.metrics.blast_radius.hit, 1);
    assert!(report.timeline.iter().any(|e| e.kind == "partial"));
    assert!(!unschedulable(&client, &node).await, "uncordoned");
}

/// Two runs scale one workload: the second is refused while the first holds it, since its undo
/// (an absolute count taken at its start) would leave the workload at the first one's size for
/// good. The workload ends where it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_scales_of_one_workload_restore_the_original_replicas() {
    let (_sim, client) = start(fast_shop()).await;
    let scale = |name: &str, replicas: u32, duration: &str| {
        parse(&format!(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  hypothesis: The frontend copes.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  faults: [{{scale: {{replicas: {replicas}}}}}]
  duration: {duration}
  expect:
    - {{name: some left, kube: {{readyReplicas: {{atLeast: 1}}}}, throughout: true}}
"
        ))
    };
    let mut first = start_run(&client, scale("down-to-one", 1, "3s"), common::run_options("ex-first"));
    first.until("observe").await;
    let (second, _) = run_to_end(&client, scale("down-to-two", 2, "1s"), "ex-second").await;
    assert_eq!(second.outcome, Outcome::Refused, "{:?}", second.injections);
    assert!(
        second
            .refusals
            .iter()
            .any(|r| r.contains("is scaled by exercise ex-first")),
        "{:?}",
        second.refusals
    );
    let (first, _) = first.finish().await;
    assert_eq!(first.outcome, Outcome::Confirmed, "{:?}", first.expectations);
    assert_eq!(replicas(&client, "frontend").await, 3, "back where it began");
}

/// checkout: 3 pods under a budget of minAvailable 2 — one may go. `radius` adds to the blast
/// radius (`mode: one`).
fn one_checkout_pod(name: &str, fault: &str, duration: &str) -> Scenario {
    one_checkout_pod_with(name, fault, duration, "")
}

fn one_checkout_pod_with(name: &str, fault: &str, duration: &str, radius: &str) -> Scenario {
    parse(&format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  hypothesis: Checkout copes with one pod down.
  target: {{namespace: shop, kind: Deployment, name: checkout}}
  blastRadius: {{mode: one{radius}}}
  faults: [{{{fault}: {{}}}}]
  duration: {duration}
  expect:
    - {{name: some left, kube: {{readyReplicas: {{atLeast: 1}}}}, throughout: true}}
"
    ))
}

/// A partitioned pod still looks Ready: the budget's status does not know of it. A second
/// exercise, planned while the first holds its fault, counts that pod from the first one's
/// journal and spares its own target: together they never exceed the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_exercise_counts_the_first_ones_fault_against_the_budget() {
    let (_sim, client) = start(fast_shop()).await;
    let mut first = start_run(
        &client,
        one_checkout_pod("partition-one", "networkPartition", "3s"),
        common::run_options("ex-first"),
    );
    first.until("observe").await;
    // Keep the second off the first one's pod, so it is the budget that says no.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let partitioned = pods
        .list(&ListParams::default().labels("partition.disasterpiece.dev/ex-first=true"))
        .await
        .expect("list")
        .items;
    assert_eq!(partitioned.len(), 1);
    let exclude = serde_json::json!({"metadata": {"labels": {"disasterpiece.dev/exclude": "true"}}});
    pods.patch(
        &partitioned[0].name_any(),
        &PatchParams::default(),
        &Patch::Merge(&exclude),
    )
    .await
    .expect("exclude");
    let (second, _) = run_to_end(
        &client,
        one_checkout_pod("partition-another", "networkPartition", "1s"),
        "ex-second",
    )
    .await;
    assert_eq!(second.metrics.blast_radius.hit, 0, "{:#?}", second.injections);
    assert_eq!(
        second.injections[0].not_injected.as_deref(),
        Some("the guard says no PodDisruptionBudget headroom (checkout)")
    );
    // With no fault in place, its clause held, but proves nothing.
    assert_eq!(second.outcome, Outcome::Inconclusive);
    assert!(
        second.expectations[0]
            .observed
            .starts_with("cannot be judged: no fault was in place"),
        "{:?}",
        second.expectations[0]
    );
    let (first, _) = first.finish().await;
    assert_eq!(first.metrics.blast_radius.hit, 1);
}

/// Two exercises that start at once, each allowed the one disruption by its plan — by the
/// budget, then by `minHealthy: 2` of 3 — each write their intent before their second look,
/// so the later sees the earlier, and at most one pod goes (none, if each sees the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_exercises_at_once_never_exceed_a_budget_or_min_healthy_together() {
    // Killed pods stay gone while the exercises run.
    let (_sim, client) = start(fast_shop().replace_delay(Duration::from_secs(5))).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    // Ready and not terminating.
    let checkout = || async {
        pods.list(&ListParams::default().labels("app=checkout"))
            .await
            .expect("list")
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count()
    };
    for (rule, radius) in [
        ("the budget", ""),
        ("minHealthy", ", minHealthy: 2, respectPodDisruptionBudgets: false"),
    ] {
        common::eventually("checkout has its 3 pods", || async { checkout().await == 3 }).await;
        let a = start_run(
            &client,
            one_checkout_pod_with("kill-a", "podKill", "1s", radius),
            common::run_options("ex-a"),
        );
        let b = start_run(
            &client,
            one_checkout_pod_with("kill-b", "podKill", "1s", radius),
            common::run_options("ex-b"),
        );
        let ((a, _), (b, _)) = tokio::join!(a.finish(), b.finish());
        let hit = a.metrics.blast_radius.hit + b.metrics.blast_radius.hit;
        assert!(
            hit <= 1,
            "{rule}: {hit} pods killed: {:#?} {:#?}",
            a.injections,
            b.injections
        );
        let left = checkout().await;
        assert!(left >= 2, "{rule}: {left} checkout pods Ready");
    }
}

/// A scale is held by the tool itself: the workload can only be repaired once it is reverted,
/// so time to remediate counts from the revert, not from the injection (which would report the
/// tool's own fault window as the system's repair time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_remediate_of_a_held_fault_counts_from_its_revert() {
    let (_sim, client) = start(fast_shop()).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: held-scale}
spec:
  hypothesis: The frontend is whole again soon after the scale is undone.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 3s
  expect:
    - {name: whole again, kube: {readyReplicas: {atLeast: 3}}, afterRecovery: true}
  recovery: {within: 30s}
",
    );
    let (report, _) = run_to_end(&client, scenario, "ex-remediate").await;
    assert_eq!(report.outcome, Outcome::Confirmed, "{:?}", report.expectations);
    let remediate = report.metrics.time_to_remediate_s.expect("remediated");
    // From the revert, the replacements take well under the 3 s window; counted from the
    // injection it could not be under 3 s.
    assert!(remediate < 3.0, "counted from the injection: {remediate}s");
}
