//! What watching beyond the targets costs, and how fast it halts (issue 25):
//! - API requests per second the watches add at rest: the watches of the shop (its workloads,
//!   pods and the Nodes) held open for 10 s after they read their first lists, counted by the
//!   simulator;
//! - the same with 5 000 more pods watched (`watch.namespaces: ['*']` over 50 namespaces of
//!   100 pods), from a real `disasterpiece run` process: the requests the whole run sent, with
//!   and without the watch of every namespace, and the run's peak memory (VmHWM) both ways;
//! - detection → everything reverted: a pod kill of checkout whose dependant `orders` (another
//!   namespace, `unanticipated.abortOn.collateralIn: [orders]`) goes unready, from the moment
//!   the watch saw it (`firstSeen`) to `abort.completedAt`, median of 10 runs.
//!
//! Against the embedded simulator over loopback HTTP. Run with `cargo bench --bench beyond`
//! (it builds the release binary first: `cargo build --release`). A benchmark, not a test:
//! nothing here fails on a number.

use std::time::Duration;

use disasterpiece::clock::Clock;
use disasterpiece::engine::beyond::{Floor, Scope, Started, Watcher, ledger::Declared};
use disasterpiece::engine::run::{RunOptions, Silent, run};
use disasterpiece::report::model::Outcome;
use disasterpiece::scenario::{self, Resource, Scenario};
use disasterpiece_sim::{Seed, Sim};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use tokio::sync::watch;

fn scenario(text: &str) -> Scenario {
    match scenario::load(text, &|_| true).resources.remove(0).1 {
        Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    }
}

fn pod_loss(extra: &str) -> String {
    format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: checkout-loss}}
spec:
  hypothesis: Losing every checkout pod is absorbed.
  target: {{namespace: shop, kind: Deployment, name: checkout}}
  blastRadius: {{mode: all, respectPodDisruptionBudgets: false}}
  faults: [{{podKill: {{gracePeriodSeconds: 0}}}}]
  duration: 5s
  expect:
    - {{name: replaced, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 30s}}
  recovery: {{within: 30s}}
{extra}"
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    at_rest().await;
    with_5000_pods().await;
    detection_to_reverted().await;
}

/// The shop's watches held open, after their first lists: what they cost at rest.
async fn at_rest() {
    let sim = Sim::builder().seed(Seed::Shop).start().await.expect("sim");
    let client = sim.raw_client().await.expect("client");
    let spec = scenario(&pod_loss("")).spec;
    let (halt, _rx) = watch::channel(None);
    let started = Started {
        scope: Scope::of(&spec, &Floor::default()),
        declared: Declared::default(),
        nodes_not_watched: None,
        alertmanager: None,
        exercise: "bench".into(),
        nodes_journal_namespace: "default".into(),
        clock: Clock::system(),
    };
    let before = sim.requests_served();
    let watcher = Watcher::start(&client, started, halt).await.expect("watch");
    let opened = sim.requests_served() - before;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet = sim.requests_served();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let per_second = (sim.requests_served() - quiet) as f64 / 10.0;
    drop(watcher);
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| requests to open the watches of shop (5 kinds) | {opened} |");
    println!("| requests/s the open watches add at rest (10 s) | {per_second:.2} |");
}

/// A real `disasterpiece run` process against a simulator with 5 000 more pods, watching its
/// target's namespace only, then every namespace: the requests it sent and its peak memory.
async fn with_5000_pods() {
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .bulk_pods(50, 100)
        .watch_history(100_000)
        .start()
        .await
        .expect("sim");
    let bin = std::env::var("DISASTERPIECE_BIN").unwrap_or_else(|_| "target/release/disasterpiece".into());
    let dir = std::env::temp_dir().join(format!("beyond-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut runs = vec![
        (bin.clone(), "the target's namespace only", ""),
        (
            bin.clone(),
            "every namespace (`*`, 5 000 more pods)",
            "  watch: {namespaces: ['*']}",
        ),
    ];
    // A build from before the watch (`DISASTERPIECE_BIN_BEFORE`), on the same exercise.
    if let Ok(before) = std::env::var("DISASTERPIECE_BIN_BEFORE") {
        runs.insert(0, (before, "nothing (a build from before the watch)", ""));
    }
    for (bin, label, extra) in runs {
        let mut requests = Vec::new();
        let mut rates = Vec::new();
        let mut peaks = Vec::new();
        for i in 0..3 {
            let file = dir.join(format!("scenario-{i}.yaml"));
            std::fs::write(&file, pod_loss(extra)).expect("write");
            let before = sim.requests_served();
            let began = std::time::Instant::now();
            let mut child = tokio::process::Command::new(&bin)
                .arg("run")
                .arg(&file)
                .arg("--kubeconfig")
                .arg(sim.kubeconfig_path())
                .arg("--reports")
                .arg(dir.join("reports"))
                .arg("--yes")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("run");
            let pid = child.id().expect("pid");
            let mut peak = 0u64;
            loop {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kib) = status
                        .lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                {
                    peak = peak.max(kib);
                }
                if child.try_wait().expect("wait").is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let sent = (sim.requests_served() - before) as f64;
            requests.push(sent);
            rates.push(sent / began.elapsed().as_secs_f64());
            peaks.push(peak as f64 / 1024.0);
        }
        println!(
            "| a run watching {label}: requests sent (median of 3) | {:.0} ({:.1}/s over the run) |",
            median(requests),
            median(rates)
        );
        println!(
            "| a run watching {label}: peak RSS (median of 3) | {:.1} MiB |",
            median(peaks)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Detection → everything reverted, median of 10.
async fn detection_to_reverted() {
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(500))
        .ready_delay(Duration::from_millis(200))
        .start()
        .await
        .expect("sim");
    let client = sim.raw_client().await.expect("client");
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "orders", "labels": {"team": "orders-team"}}}))
            .expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await
        .expect("namespace");
    let orders: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "orders", "namespace": "orders", "annotations": {"sim.disasterpiece.dev/depends-on": "shop/checkout"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}},
            "template": {"metadata": {"labels": {"app": "orders"}}, "spec": {"containers": [{"name": "orders", "image": "orders:1"}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), "orders")
        .create(&Default::default(), &orders)
        .await
        .expect("orders");
    let halting = scenario(&pod_loss(
        "  watch: {namespaces: [orders]}\n  unanticipated: {abortOn: {collateralIn: [orders]}}",
    ));
    let mut latencies = Vec::new();
    for i in 0..10 {
        wait_ready(&client).await;
        let (_tx, abort) = watch::channel(None);
        let options = RunOptions {
            exercise: format!("halt-{i}"),
            seed: i,
            sample_every: Duration::from_secs(1),
            cluster: "sim".into(),
            clock: Clock::system(),
            ..Default::default()
        };
        let report = run(&client, &halting, options, abort, &Silent).await;
        let (Some(abort), Some(observed)) = (&report.abort, &report.observed_blast_radius) else {
            println!("run {i}: not halted ({:?})", report.outcome);
            continue;
        };
        assert_eq!(report.outcome, Outcome::Aborted);
        let Some(tripped) = observed.halted_by.and_then(|h| observed.collateral.get(h)) else {
            continue;
        };
        let completed = abort.completed_at.expect("completed");
        latencies.push((completed - tripped.first_seen).num_microseconds().unwrap_or_default() as f64 / 1000.0);
    }
    println!(
        "| detection → everything reverted (median of {}) | {:.1} ms (max {:.1} ms) |",
        latencies.len(),
        median(latencies.clone()),
        latencies.iter().copied().fold(0.0, f64::max)
    );
}

/// Until checkout and orders are fully Ready again.
async fn wait_ready(client: &kube::Client) {
    for _ in 0..200 {
        let ready = |ns: &'static str, name: &'static str, want: i32| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            async move {
                api.get(name)
                    .await
                    .ok()
                    .and_then(|d| d.status?.ready_replicas)
                    .is_some_and(|r| r == want)
            }
        };
        if ready("shop", "checkout", 3).await && ready("orders", "orders", 2).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
