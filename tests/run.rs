//! `disasterpiece run`: whole exercises against the simulator — one that confirms its
//! hypothesis, one that refutes it, an Andon pull (SIGINT), a kill (SIGKILL) recovered from
//! the journal, and a refusal that changes nothing.

use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use disasterpiece::engine::event::ExerciseEvent;
use disasterpiece::engine::run::{Progress, RunOptions, run};
use disasterpiece::report::model::{ClauseVerdict, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use tokio::sync::watch;

mod common;
use common::{eventually, fast_shop, parse, replicas, signal, start, start_run};

#[derive(Default)]
struct Collect(Mutex<Vec<ExerciseEvent>>);

impl Progress for Collect {
    fn event(&self, _: Duration, event: &ExerciseEvent) {
        self.0.lock().expect("events").push(event.clone());
    }
}

fn options(exercise: &str) -> RunOptions {
    RunOptions {
        exercise: exercise.into(),
        seed: 1,
        sample_every: Duration::from_millis(200),
        cluster: "sim".into(),
        retries: None,
        // As `disasterpiece run` does: the person running it runs its command probes.
        sources: disasterpiece::probe::Sources {
            commands: disasterpiece::probe::CommandProbes::On,
            ..Default::default()
        },
        ..Default::default()
    }
}

const SCALE: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: frontend-scale}
spec:
  hypothesis: Frontend keeps answering on one replica and is back to three afterwards.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: DURATION
  steadyState:
    - {name: frontend answers, http: {url: 'http://frontend.shop.svc/healthz'}}
  expect:
    - {name: scaled down, kube: {readyReplicas: {atMost: 1}}, within: 3s}
    - {name: keeps answering, http: {url: 'http://frontend.shop.svc/healthz'}, throughout: true}
    - {name: three again, kube: {readyReplicas: {equals: 3}}, afterRecovery: true}
  recovery: {within: 20s}
";

async fn journals(client: &kube::Client) -> usize {
    Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default().labels("disasterpiece.dev/journal=true"))
        .await
        .expect("list")
        .items
        .len()
}

#[tokio::test]
async fn a_run_that_confirms_its_hypothesis_reverts_and_closes_its_journal() {
    let (_sim, client) = start(fast_shop()).await;
    let (_tx, abort) = watch::channel(None);
    let progress = Collect::default();
    let report = run(
        &client,
        &parse(&SCALE.replace("DURATION", "2s")),
        options("ex-confirm"),
        abort,
        &progress,
    )
    .await;
    assert_eq!(report.outcome, Outcome::Confirmed, "{:#?}", report.expectations);
    assert!(
        report
            .expectations
            .iter()
            .all(|e| e.verdict == ClauseVerdict::Confirmed)
    );
    assert_eq!(report.injections.len(), 1);
    assert!(report.injections[0].injected_at.is_some() && report.injections[0].reverted_at.is_some());
    // No alert or prometheus clause: nothing detected the fault, so no time to detect.
    assert!(report.metrics.time_to_detect_s.is_none() && report.metrics.time_to_recover_s.is_some());
    assert_eq!(replicas(&client, "frontend").await, 3);
    assert_eq!(journals(&client).await, 0, "the journal is closed");
    let events = progress.0.lock().expect("events").clone();
    let injected = ExerciseEvent::Injected {
        action: "scale Deployment shop/frontend from 3 to 1 replicas".into(),
    };
    assert!(events.contains(&injected), "{events:#?}");
    // The timeline is the same stream: each event is on it once, in order.
    let kinds: Vec<&str> = report.timeline.iter().map(|e| e.kind.as_str()).collect();
    let said: Vec<&str> = events.iter().flat_map(|e| e.timeline()).map(|(kind, _)| kind).collect();
    assert_eq!(kinds, said);
}

#[tokio::test]
async fn a_run_that_refutes_its_hypothesis_says_which_clause_failed_and_still_reverts() {
    let (_sim, client) = start(fast_shop()).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-cut-off}
spec:
  hypothesis: Checkout keeps answering with every pod cut off the network.
  target: {namespace: shop, kind: Deployment, name: checkout}
  blastRadius: {mode: all, respectPodDisruptionBudgets: false}
  faults: [{networkPartition: {direction: ingress}}]
  duration: 2s
  steadyState:
    - {name: checkout answers, http: {url: 'http://checkout.shop.svc/healthz', timeout: 1s}}
  expect:
    - {name: keeps answering, http: {url: 'http://checkout.shop.svc/healthz', timeout: 500ms}, throughout: true}
  recovery: {within: 10s}
",
    );
    let (_tx, abort) = watch::channel(None);
    let report = run(&client, &scenario, options("ex-refute"), abort, &Collect::default()).await;
    assert_eq!(report.outcome, Outcome::Refuted);
    assert_eq!(report.injections.len(), 3, "every checkout pod was cut off");
    let clause = &report.expectations[0];
    assert_eq!(clause.verdict, ClauseVerdict::Refuted);
    assert!(
        clause.observed.contains("no answer within 500ms"),
        "{}",
        clause.observed
    );
    common::assert_no_policy_nor_label(&client, "partition.disasterpiece.dev").await;
    assert_eq!(journals(&client).await, 0);
}

#[tokio::test]
async fn a_refused_run_changes_nothing() {
    let (sim, client) = start(fast_shop().deny("patch", "deployments/scale")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    let (_tx, abort) = watch::channel(None);
    let report = run(
        &client,
        &parse(&SCALE.replace("DURATION", "2s")),
        options("ex-refused"),
        abort,
        &Collect::default(),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Refused);
    assert!(
        report
            .refusals
            .iter()
            .any(|r| r == "not allowed to patch deployments.apps/scale in shop"),
        "{:?}",
        report.refusals
    );
    assert_eq!(sim.resource_version(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_fault_reverts_everything_and_exits_3_with_the_abort_latency() {
    let (sim, client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("run-sigint-{}", std::process::id()));
    let mut child = start_run(&sim, &dir, &SCALE.replace("DURATION", "60s"), 1).await;
    assert_eq!(replicas(&client, "frontend").await, 1, "the fault is in place");
    signal(&child, "-INT");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(status.code(), Some(3));
    assert_eq!(replicas(&client, "frontend").await, 3);
    assert_eq!(journals(&client).await, 0);
    let report = std::fs::read_dir(dir.join("reports"))
        .expect("reports")
        .next()
        .expect("a report")
        .expect("entry")
        .path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).expect("read")).expect("json");
    assert_eq!(report["outcome"], "aborted");
    assert_eq!(report["abort"]["reason"], "interrupted (SIGINT)");
    assert!(
        report["metrics"]["abortLatencyS"].as_f64().is_some_and(|s| s >= 0.0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_recovered_from_its_journal_and_a_second_recover_does_nothing() {
    let (sim, client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("run-sigkill-{}", std::process::id()));
    let scenario = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-two-faults}
spec:
  hypothesis: Checkout survives fewer replicas and a partitioned pod.
  target: {namespace: shop, kind: Deployment, name: checkout}
  blastRadius: {mode: one, respectPodDisruptionBudgets: false}
  faults: [{networkPartition: {}}, {scale: {replicas: 2}}]
  duration: 60s
  expect:
    - {name: two ready, kube: {readyReplicas: {atLeast: 2}}, throughout: true}
";
    let mut child = start_run(&sim, &dir, scenario, 2).await;
    let policies = common::shop_policies(&client);
    assert_eq!(replicas(&client, "checkout").await, 2);
    assert_eq!(
        policies.list(&ListParams::default()).await.expect("list").items.len(),
        1
    );
    signal(&child, "-KILL");
    let _ = child.wait().await;
    assert_eq!(journals(&client).await, 1, "the dead run left its journal");
    let exercise = Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default().labels("disasterpiece.dev/journal=true"))
        .await
        .expect("list")
        .items[0]
        .labels()
        .get("disasterpiece.dev/exercise")
        .cloned()
        .expect("the journal names its exercise");

    let kubeconfig = sim.kubeconfig_path().to_owned();
    let recover = |args: &'static [&'static str]| {
        let k = kubeconfig.clone();
        let exercise = exercise.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
                .arg("recover")
                .args(args.iter().map(|a| a.replace("EXERCISE", &exercise)))
                .arg("--kubeconfig")
                .arg(k)
                .env_remove("KUBECONFIG")
                .output()
                .expect("recover")
        })
    };
    // Right after the kill its heartbeat is fresh: `recover` says when it becomes recoverable
    // and touches nothing; a lapse below three heartbeats is refused.
    let scaled = replicas(&client, "checkout").await;
    let early = recover(&[]).await.expect("join");
    let out = String::from_utf8_lossy(&early.stdout);
    assert!(
        out.starts_with("nothing to recover")
            && out.contains(&format!("live: exercise {exercise}"))
            && out.contains("recoverable in"),
        "{out}"
    );
    assert_eq!(
        replicas(&client, "checkout").await,
        scaled,
        "a live-looking run is left alone"
    );
    assert_eq!(journals(&client).await, 1);
    let short = recover(&["--lapse", "1s"]).await.expect("join");
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("three heartbeats"));
    // The person who killed it knows it is dead: it is reverted on purpose.
    let first = recover(&["--exercise", "EXERCISE"]).await.expect("join");
    let out = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{out}");
    assert!(
        out.contains("reverted: scale Deployment shop/checkout back to 3")
            && out.contains("reverted: delete NetworkPolicy shop/"),
        "{out}"
    );
    assert_eq!(replicas(&client, "checkout").await, 3);
    common::assert_no_policy_nor_label(&client, "partition.disasterpiece.dev").await;
    assert_eq!(journals(&client).await, 0);
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items;
    assert!(
        nodes
            .iter()
            .all(|n| n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)),
        "no node left cordoned"
    );
    eventually("checkout is whole again", || async {
        Api::<Deployment>::namespaced(client.clone(), "shop")
            .get("checkout")
            .await
            .expect("get")
            .status
            .and_then(|s| s.ready_replicas)
            == Some(3)
    })
    .await;
    // The pods the scale-down removed finish terminating (a change of their own, not recover's).
    eventually("no checkout pod is terminating", || async {
        Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "shop")
            .list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_none())
    })
    .await;

    let before = sim.resource_version();
    let second = recover(&[]).await.expect("join");
    assert!(String::from_utf8_lossy(&second.stdout).starts_with("nothing to recover"));
    assert_eq!(sim.resource_version(), before, "the second recover changes nothing");
}

#[tokio::test]
async fn with_a_fifth_of_api_calls_failing_the_run_still_reverts_everything_and_says_what_it_retried() {
    use disasterpiece::engine::retry::retrying_client;
    use disasterpiece_sim::Misbehaviour;
    let (sim, raw) = start(fast_shop()).await;
    let (client, log) = retrying_client(sim.kube_config().await.expect("config")).expect("client");
    sim.set_misbehaviour(&Misbehaviour {
        error_rate: 0.2,
        ..Misbehaviour::default()
    });
    let (_tx, abort) = watch::channel(None);
    let mut opts = options("ex-flaky");
    opts.retries = Some(log);
    let report = run(
        &client,
        &parse(&SCALE.replace("DURATION", "2s")),
        opts,
        abort,
        &Collect::default(),
    )
    .await;
    sim.set_misbehaviour(&Misbehaviour::default());
    assert_eq!(
        report.outcome,
        Outcome::Confirmed,
        "{:?} {:#?}",
        report.refusals,
        report.expectations
    );
    assert!(report.revert_failures.is_empty(), "{:?}", report.revert_failures);
    assert_eq!(replicas(&raw, "frontend").await, 3, "reverted despite the errors");
    assert_eq!(journals(&raw).await, 0);
    assert!(sim.injected_errors() > 0);
    assert!(
        !report.retried_calls.is_empty(),
        "the report says which calls were retried"
    );
    assert!(
        report
            .retried_calls
            .iter()
            .all(|c| c.contains(" → 500, retry") || c.contains(" → 503, retry") || c.contains(" → 429, retry")),
        "{:?}",
        report.retried_calls
    );
}

#[tokio::test]
async fn pulling_the_kill_switch_mid_run_aborts_and_reverts() {
    use kube::api::PostParams;
    let (_sim, client) = start(fast_shop()).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "disasterpiece-system"}})).expect("ns"),
        )
        .await
        .expect("create ns");
    let (_tx, abort) = watch::channel(None);
    let scenario = parse(&SCALE.replace("DURATION", "60s"));
    let puller = {
        let client = client.clone();
        tokio::spawn(async move {
            eventually("the fault is in place", || async {
                replicas(&client, "frontend").await == 1
            })
            .await;
            let switch: ConfigMap =
                serde_json::from_value(serde_json::json!({"metadata": {"name": "disasterpiece-killswitch"}}))
                    .expect("cm");
            Api::<ConfigMap>::namespaced(client.clone(), "disasterpiece-system")
                .create(&PostParams::default(), &switch)
                .await
                .expect("pull");
        })
    };
    let report = run(&client, &scenario, options("ex-killswitch"), abort, &Collect::default()).await;
    puller.await.expect("puller");
    assert_eq!(report.outcome, Outcome::Aborted);
    assert_eq!(
        report.abort.as_ref().map(|a| a.reason.as_str()),
        Some("kill switch: ConfigMap disasterpiece-system/disasterpiece-killswitch exists")
    );
    assert_eq!(replicas(&client, "frontend").await, 3);
    assert_eq!(journals(&client).await, 0);
}

#[tokio::test]
async fn a_namespace_annotated_to_abort_refuses_the_run() {
    use kube::api::{Patch, PatchParams};
    let (sim, client) = start(fast_shop()).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"metadata": {"annotations": {"disasterpiece.dev/abort": "game day paused"}}}),
            ),
        )
        .await
        .expect("annotate");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    let (_tx, abort) = watch::channel(None);
    let report = run(
        &client,
        &parse(&SCALE.replace("DURATION", "2s")),
        options("ex-annotated"),
        abort,
        &Collect::default(),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Refused);
    assert!(
        report
            .refusals
            .contains(&"kill switch: namespace shop is annotated disasterpiece.dev/abort".to_owned()),
        "{:?}",
        report.refusals
    );
    assert_eq!(sim.resource_version(), before);
}

#[tokio::test]
async fn the_guard_asked_again_before_each_injection_counts_each_lost_pod_once() {
    // Killed pods stay gone for the whole run.
    let (_sim, client) = start(fast_shop().replace_delay(Duration::from_secs(5))).await;
    // Three pods, minHealthy 1: two may go. Each fault's plan chose two of them (a plan does
    // not count the other fault's); asked again before each injection, the guard counts each
    // lost pod once (the cluster's count already lacks it) and lets two go in all.
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-two-pods}
spec:
  hypothesis: Checkout survives losing two pods.
  target: {namespace: shop, kind: Deployment, name: checkout}
  blastRadius: {mode: count, value: 2, minHealthy: 1, respectPodDisruptionBudgets: false}
  faults: [{podKill: {gracePeriodSeconds: 0}}, {podKill: {gracePeriodSeconds: 0}}]
  duration: 1s
  expect:
    - {name: one ready, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
    );
    let (_tx, abort) = watch::channel(None);
    let report = run(&client, &scenario, options("ex-guard"), abort, &Collect::default()).await;
    let hit: Vec<_> = report.injections.iter().filter(|i| i.injected_at.is_some()).collect();
    assert_eq!(hit.len(), 2, "{:#?}", report.injections);
    let spared: Vec<_> = report
        .injections
        .iter()
        .filter_map(|i| i.not_injected.as_deref())
        .collect();
    assert!(
        !spared.is_empty()
            && spared
                .iter()
                .all(|r| r.contains("minHealthy is 1") || r.contains("it is gone")),
        "{spared:?}"
    );
}

#[tokio::test]
async fn command_probes_judge_by_exit_code() {
    let (_sim, client) = start(fast_shop()).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: command-probes}
spec:
  hypothesis: The smoke test passes before and after a scale-down.
  target: {namespace: shop, kind: Deployment, name: payments}
  faults: [{scale: {replicas: 1}}]
  duration: 1s
  steadyState:
    - {name: smoke test, command: {run: [sh, -c, 'exit 0']}}
  expect:
    - {name: exits 3, command: {run: [sh, -c, 'exit 3'], expectExitCode: 3}, within: 2s}
    - {name: exits 1, command: {run: [sh, -c, 'exit 1']}, within: 1s}
",
    );
    let (_tx, abort) = watch::channel(None);
    let report = run(&client, &scenario, options("ex-command"), abort, &Collect::default()).await;
    assert_eq!(
        report.expectations[0].verdict,
        ClauseVerdict::Confirmed,
        "{:?}",
        report.expectations
    );
    assert_eq!(report.expectations[1].verdict, ClauseVerdict::Refuted);
    assert_eq!(report.expectations[1].observed, "exit code 1, expected 0");
    assert_eq!(report.outcome, Outcome::Refuted);
}

#[tokio::test]
async fn an_abort_when_clause_that_holds_aborts_and_reverts() {
    let (_sim, client) = start(fast_shop()).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: frontend-too-far}
spec:
  hypothesis: Frontend copes with a single replica.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 60s
  expect:
    - {name: answers, http: {url: 'http://frontend.shop.svc/healthz', timeout: 1s}, throughout: true}
  abortWhen:
    - {name: fewer than two ready, kube: {readyReplicas: {below: 2}}}
",
    );
    let (_tx, abort) = watch::channel(None);
    let report = run(&client, &scenario, options("ex-abortwhen"), abort, &Collect::default()).await;
    assert_eq!(report.outcome, Outcome::Aborted);
    let reason = report.abort.as_ref().map(|a| a.reason.clone()).unwrap_or_default();
    assert!(
        reason.starts_with("abortWhen `fewer than two ready` held: 1 ready replicas"),
        "{reason}"
    );
    assert!(report.metrics.abort_latency_s.is_some());
    assert_eq!(replicas(&client, "frontend").await, 3);
    assert_eq!(report.targets[0].chosen, ["deployment shop/frontend"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_cluster_that_is_not_the_simulator_run_needs_yes() {
    let (sim, client) = start(fast_shop().git_version("v1.34.2")).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("run-confirm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("scenario.yaml"), SCALE.replace("DURATION", "1s")).expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    let run_cli = |extra: &'static [&'static str]| {
        let (dir, kubeconfig) = (dir.clone(), sim.kubeconfig_path().to_owned());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
                .args(["run", "scenario.yaml", "--kubeconfig"])
                .arg(kubeconfig)
                .args(extra)
                .current_dir(dir)
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null())
                .output()
                .expect("run")
        })
    };
    let unconfirmed = run_cli(&[]).await.expect("join");
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unconfirmed.stderr).contains("pass --yes"),
        "{}",
        String::from_utf8_lossy(&unconfirmed.stderr)
    );
    assert_eq!(sim.resource_version(), before, "nothing was changed");
    let confirmed = run_cli(&["--yes"]).await.expect("join");
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&confirmed.stdout)
    );
    assert_eq!(replicas(&client, "frontend").await, 3);
}

/// Nodes belong to no namespace: a Node run keeps its journal in the journal namespace (the
/// controller's own), the one place recovery trusts Node steps from, never in `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_run_keeps_its_journal_in_the_journal_namespace() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_sim, client) = start(fast_shop()).await;
    let ops: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "ops"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ops)
        .await
        .expect("namespace");
    let cordon = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: cordon-one}
spec:
  hypothesis: Nothing needs a new pod for a while.
  target: {kind: Node, name: sim-node-1}
  faults: [{nodeCordon: {}}]
  duration: 3s
  expect:
    - {name: checkout stays, kube: {kind: Deployment, name: checkout, namespace: shop, readyReplicas: {atLeast: 1}}, within: 3s}
",
    );
    let (_tx, abort) = watch::channel(None);
    let running = tokio::spawn({
        let client = client.clone();
        async move {
            let options = RunOptions {
                nodes_journal_namespace: Some("ops".into()),
                ..options("ex-node")
            };
            run(&client, &cordon, options, abort, &Collect::default()).await
        }
    });
    let in_ns = |ns: &'static str| {
        let client = client.clone();
        async move {
            Api::<ConfigMap>::namespaced(client, ns)
                .list(&ListParams::default().labels("disasterpiece.dev/journal=true"))
                .await
                .map(|l| l.items.len())
                .unwrap_or(0)
        }
    };
    eventually("the journal is in ops", || async { in_ns("ops").await == 1 }).await;
    assert_eq!(in_ns("default").await, 0);
    let report = running.await.expect("the run");
    assert_eq!(report.outcome, Outcome::Confirmed, "{:?}", report.refusals);
    assert_eq!(journals(&client).await, 0, "closed after the revert");
}

/// Through the service proxy the API server may answer instead of the service: a Service
/// that does not exist (404 Status) says nothing about the application and is inconclusive;
/// the service's own answers are judged as they are.
#[tokio::test]
async fn an_http_probe_tells_the_api_servers_answer_from_the_services() {
    use disasterpiece::probe::{ProbeContext, Verdict, sample};
    use disasterpiece::scenario::model::{HttpMethod, HttpProbe, ProbeKind, Target, TargetKind};
    let (_sim, client) = start(fast_shop()).await;
    let ctx = ProbeContext {
        client: client.clone(),
        target: Target {
            namespace: Some("shop".into()),
            kind: TargetKind::Deployment,
            name: Some("checkout".into()),
            selector: None,
        },
        sources: Default::default(),
        clock: Default::default(),
    };
    let probe = |url: &str| HttpProbe {
        url: url.into(),
        method: HttpMethod::GET,
        expect_status: 200,
        max_latency: None,
        body_contains: None,
        timeout: "2s".parse().expect("duration"),
        headers: Default::default(),
    };
    let missing = probe("http://nosuch.shop.svc/healthz");
    let reading = sample(&ctx, ProbeKind::Http(&missing)).await;
    assert_eq!(reading.verdict, Verdict::Inconclusive, "{}", reading.observed);
    assert!(
        reading.observed.contains("the API server answered") && reading.observed.contains("404 NotFound"),
        "{}",
        reading.observed
    );
    let real = probe("http://checkout.shop.svc/healthz");
    let reading = sample(&ctx, ProbeKind::Http(&real)).await;
    assert_eq!(reading.verdict, Verdict::Pass, "{}", reading.observed);
}

/// Nodes belong to no namespace: a kube probe on a Node reads it cluster-wide.
#[tokio::test]
async fn a_kube_probe_reads_a_node_without_a_namespace() {
    use disasterpiece::probe::{ProbeContext, Verdict, sample};
    use disasterpiece::scenario::model::{ConditionCheck, ConditionStatus, KubeProbe, ProbeKind, Target, TargetKind};
    let (_sim, client) = start(fast_shop()).await;
    let ctx = ProbeContext {
        client: client.clone(),
        target: Target {
            namespace: None,
            kind: TargetKind::Node,
            name: Some("sim-node-1".into()),
            selector: None,
        },
        sources: Default::default(),
        clock: Default::default(),
    };
    let ready = |name: &str| KubeProbe {
        kind: Some(TargetKind::Node),
        name: Some(name.into()),
        condition: Some(ConditionCheck {
            type_: "Ready".into(),
            status: ConditionStatus::True,
        }),
        ..Default::default()
    };
    let reading = sample(&ctx, ProbeKind::Kube(&ready("sim-node-1"))).await;
    assert_eq!(reading.verdict, Verdict::Pass, "{}", reading.observed);
    let reading = sample(&ctx, ProbeKind::Kube(&ready("sim-node-9"))).await;
    assert_eq!(reading.observed, "Node sim-node-9 does not exist");
}

/// The API server answers 500 to the eviction of a pod under two PodDisruptionBudgets: an
/// answer, not a hiccup. It is reported at once, in the API server's words, never retried.
#[tokio::test]
async fn an_eviction_refused_for_two_pdbs_is_not_retried() {
    use disasterpiece::blast_radius::Unit;
    use disasterpiece::blast_radius::resolve::resolve;
    use disasterpiece::engine::retry::retrying_client;
    use disasterpiece::fault::{self, Context};
    use disasterpiece::scenario::model::{FaultKind, PodEvict, Target, TargetKind};
    let (sim, raw) = start(fast_shop()).await;
    let second: k8s_openapi::api::policy::v1::PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "checkout-too", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "checkout"}}}}))
    .expect("pdb");
    Api::namespaced(raw.clone(), "shop")
        .create(&Default::default(), &second)
        .await
        .expect("a second PDB");
    let (client, log) = retrying_client(sim.kube_config().await.expect("config")).expect("client");
    let target = Target {
        namespace: Some("shop".into()),
        kind: TargetKind::Deployment,
        name: Some("checkout".into()),
        selector: None,
    };
    let pod = resolve(&client, &target, Unit::Pod)
        .await
        .expect("resolve")
        .candidates
        .into_iter()
        .find(|c| c.ready)
        .expect("a ready pod");
    let ctx = Context {
        client: client.clone(),
        exercise: "ex-two-pdbs".into(),
        dry_run: false,
        in_pod: Default::default(),
        clock: Default::default(),
    };
    let prepared = fault::prepare(&ctx, FaultKind::PodEvict(&PodEvict::default()), &pod)
        .await
        .expect("prepare");
    let answer = fault::apply(&ctx, &prepared).await;
    let said = match &answer {
        Ok(fault::Outcome::NotInjected { reason }) => reason.clone(),
        Err(e) => e.to_string(),
        other => panic!("evicted although two PDBs cover it: {other:?}"),
    };
    assert!(said.contains("more than one PodDisruptionBudget"), "{said}");
    assert!(
        log.entries().iter().all(|e| !e.contains("/eviction")),
        "retried: {:?}",
        log.entries()
    );
}

/// The cluster as kubectl finds it: `KUBECONFIG` may list several files (merged, missing ones
/// skipped), the context in use is kept in the report, and a cluster that does not answer is
/// said at once, in words, before anything is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_lists_are_merged_the_context_is_reported_and_an_unreachable_cluster_is_said() {
    let (sim, client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kubeconfig-merge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let scenario = dir.join("scale.yaml");
    std::fs::write(&scenario, SCALE.replace("DURATION", "1s")).expect("scenario");
    let text = std::fs::read_to_string(sim.kubeconfig_path()).expect("kubeconfig");
    // The context, named in a file of its own that comes first; the rest in the second.
    let context = text
        .lines()
        .find_map(|l| l.strip_prefix("current-context: "))
        .expect("a current context")
        .to_owned();
    let first = dir.join("context.yaml");
    std::fs::write(
        &first,
        format!("apiVersion: v1\nkind: Config\ncurrent-context: {context}\n"),
    )
    .expect("first file");
    let list = std::env::join_paths([dir.join("missing.yaml"), first, sim.kubeconfig_path().to_owned()])
        .expect("a list of paths");
    let reports = dir.join("reports");
    let run_with = |kubeconfig: std::ffi::OsString| {
        let scenario = scenario.clone();
        let reports = reports.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
                .arg("run")
                .arg(&scenario)
                .arg("--reports")
                .arg(&reports)
                .env("KUBECONFIG", kubeconfig)
                .output()
                .expect("run")
        })
    };
    let merged = run_with(list).await.expect("join");
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&merged.stdout),
        String::from_utf8_lossy(&merged.stderr)
    );
    let report = std::fs::read_dir(&reports)
        .expect("reports")
        .next()
        .expect("a report")
        .expect("entry")
        .path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).expect("read")).expect("JSON");
    assert_eq!(report["environment"]["context"], serde_json::json!(context));
    assert_eq!(replicas(&client, "frontend").await, 3);

    // A cluster whose address answers nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let dead = dir.join("dead.yaml");
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server")
        .to_owned();
    std::fs::write(&dead, text.replace(&server, &format!("https://127.0.0.1:{port}"))).expect("dead");
    let unreachable = run_with(dead.into_os_string()).await.expect("join");
    assert_eq!(unreachable.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the cluster at https://127.0.0.1:{port}/ (context {context})"
        )),
        "{stderr}"
    );
}
