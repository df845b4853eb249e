//! The in-pod faults against the simulator: each adds an ephemeral container whose effect the
//! synthetic service shows while it runs and not after; revert stops it with TERM through
//! pods/exec long before its duration; it ends on its own when nobody reverts it, even after
//! Disasterpiece was killed with SIGKILL.

use std::time::{Duration, Instant};

use disasterpiece::blast_radius::resolve::resolve;
use disasterpiece::blast_radius::{Candidate, Unit};
use disasterpiece::fault::{self, Context, Outcome, Prepared, Undo};
use disasterpiece::scenario::model::{
    ContainerKill, CpuStress, FaultKind, MemoryStress, NetworkDelay, NetworkLoss, Signal, Target, TargetKind,
};
use disasterpiece_sim::Sim;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

mod common;
use common::{eventually, fast_shop, http_body, http_get, start};

fn ctx(client: &Client, lasts: Duration) -> Context {
    Context {
        client: client.clone(),
        exercise: "ex-inpod".into(),
        dry_run: false,
        in_pod: fault::in_pod::Settings {
            image: fault::in_pod::DEFAULT_IMAGE.into(),
            duration: lasts,
        },
        clock: Default::default(),
    }
}

async fn pods_of(client: &Client, workload: &str) -> Vec<Candidate> {
    let target = Target {
        namespace: Some("shop".into()),
        kind: TargetKind::Deployment,
        name: Some(workload.into()),
        selector: None,
    };
    resolve(client, &target, Unit::Pod).await.expect("resolve").candidates
}

async fn service_url(client: &Client, workload: &str) -> String {
    Api::<Deployment>::namespaced(client.clone(), "shop")
        .get(workload)
        .await
        .expect("get")
        .annotations()["sim.disasterpiece.dev/url"]
        .clone()
}

/// Injects `fault` into every pod of `workload`; returns what was prepared.
async fn inject_all(c: &Context, fault: FaultKind<'_>, workload: &str) -> Vec<Prepared> {
    let mut prepared = Vec::new();
    for pod in pods_of(&c.client, workload).await {
        let p = fault::prepare(c, fault, &pod).await.expect("prepare");
        assert_eq!(
            fault::apply(c, &p).await.expect("apply"),
            Outcome::Injected,
            "{}",
            p.action
        );
        prepared.push(p);
    }
    prepared
}

async fn revert_all(c: &Context, prepared: &[Prepared]) {
    for p in prepared {
        for undo in &p.undo {
            fault::revert(c, undo).await.expect("revert");
        }
    }
}

/// The median time of `n` requests, and how many got no answer within 2s.
async fn median_latency(url: &str, n: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut lost = 0;
    for _ in 0..n {
        let started = Instant::now();
        match http_get(url, "/").await {
            Some((200, _)) => times.push(started.elapsed()),
            _ => lost += 1,
        }
    }
    times.sort();
    (times.get(times.len() / 2).copied().unwrap_or(Duration::MAX), lost)
}

/// The fault containers' final states in the pods of `workload`.
async fn ended(client: &Client, workload: &str) -> Vec<Value> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let listed = pods
        .list(&ListParams::default().labels(&format!("app={workload}")))
        .await
        .expect("list");
    listed
        .items
        .iter()
        .flat_map(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.ephemeral_container_statuses.clone())
                .unwrap_or_default()
        })
        .map(|s| serde_json::to_value(s.state).expect("json"))
        .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_delay_slows_the_service_and_term_removes_it_long_before_its_duration() {
    let (_sim, client) = start(fast_shop()).await;
    let url = service_url(&client, "checkout").await;
    let (before, _) = median_latency(&url, 5).await;
    let c = ctx(&client, Duration::from_secs(120));
    let delay = NetworkDelay {
        latency: Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    let prepared = inject_all(&c, FaultKind::NetworkDelay(&delay), "checkout").await;
    let Undo::StopInPod { ends_at, .. } = &prepared[0].undo[0] else {
        panic!("stopped by TERM: {:?}", prepared[0].undo)
    };
    assert!(*ends_at > chrono::Utc::now() + chrono::Duration::seconds(100));
    let (during, _) = median_latency(&url, 5).await;
    assert!(during >= Duration::from_millis(300), "{during:?} with a 300ms delay");
    assert!(before < Duration::from_millis(200), "{before:?} before the fault");

    revert_all(&c, &prepared).await;
    // Reverted by TERM through exec: the script's trap said the qdisc is gone, and the
    // containers ended far before their two minutes.
    let states = ended(&client, "checkout").await;
    assert_eq!(states.len(), 3);
    for state in &states {
        assert_eq!(state["terminated"]["exitCode"], 0, "{state}");
        assert_eq!(state["terminated"]["message"], "netem removed from eth0", "{state}");
    }
    let (after, _) = median_latency(&url, 5).await;
    assert!(after < Duration::from_millis(200), "{after:?} after the revert");
    // Idempotent: reverting again finds the containers ended and does nothing.
    revert_all(&c, &prepared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_delay_ends_on_its_own_when_nobody_reverts_it() {
    let (_sim, client) = start(fast_shop()).await;
    let url = service_url(&client, "checkout").await;
    // Long enough for three injections, each in place once it has run a second.
    let c = ctx(&client, Duration::from_secs(6));
    let delay = NetworkDelay {
        latency: Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    inject_all(&c, FaultKind::NetworkDelay(&delay), "checkout").await;
    let (during, _) = median_latency(&url, 3).await;
    assert!(during >= Duration::from_millis(300), "{during:?}");
    eventually("every delay ends with its duration", || async {
        ended(&client, "checkout")
            .await
            .iter()
            .all(|s| s.get("terminated").is_some())
    })
    .await;
    assert!(median_latency(&url, 3).await.0 < Duration::from_millis(200));
    let states = ended(&client, "checkout").await;
    assert!(states.iter().all(|s| s["terminated"]["exitCode"] == 0), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_loss_drops_requests_until_reverted() {
    let (_sim, client) = start(fast_shop()).await;
    let url = service_url(&client, "payments").await;
    let c = ctx(&client, Duration::from_secs(120));
    let loss = NetworkLoss {
        percent: 100.0,
        correlation: None,
        destination: None,
    };
    let prepared = inject_all(&c, FaultKind::NetworkLoss(&loss), "payments").await;
    let (_, lost) = median_latency(&url, 2).await;
    assert_eq!(lost, 2, "every request is dropped");
    revert_all(&c, &prepared).await;
    let (_, lost) = median_latency(&url, 4).await;
    assert_eq!(lost, 0, "nothing is dropped after the revert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_memory_stress_show_in_the_service_metrics_while_they_run() {
    let (_sim, client) = start(fast_shop()).await;
    let url = service_url(&client, "frontend").await;
    let c = ctx(&client, Duration::from_secs(120));
    let pod = pods_of(&client, "frontend").await.remove(0);
    let cpu = CpuStress { workers: 2, load: 80 };
    let memory = MemoryStress {
        size: "256Mi".into(),
        ramp: None,
    };
    let mut prepared = Vec::new();
    for fault in [FaultKind::CpuStress(&cpu), FaultKind::MemoryStress(&memory)] {
        let p = fault::prepare(&c, fault, &pod).await.expect("prepare");
        assert_eq!(fault::apply(&c, &p).await.expect("apply"), Outcome::Injected);
        // The stress faults run unprivileged, as PodSecurity `restricted` demands.
        let Fault { container, .. } = in_pod(&p);
        assert_eq!(container["securityContext"]["runAsNonRoot"], true);
        assert_eq!(container["securityContext"]["capabilities"]["drop"][0], "ALL");
        prepared.push(p);
    }
    let metrics = http_body(&url, "/metrics").await;
    assert_eq!(metric(&metrics, "sim_cpu_stress_percent"), 160.0, "{metrics}");
    assert_eq!(metric(&metrics, "sim_memory_stress_bytes"), (256u64 << 20) as f64);
    revert_all(&c, &prepared).await;
    let metrics = http_body(&url, "/metrics").await;
    assert_eq!(metric(&metrics, "sim_cpu_stress_percent"), 0.0);
    assert_eq!(metric(&metrics, "sim_memory_stress_bytes"), 0.0);
    let states = ended(&client, "frontend").await;
    let messages: Vec<&Value> = states.iter().map(|s| &s["terminated"]["message"]).collect();
    assert!(messages.contains(&&Value::from("cpuStress stopped")), "{states:?}");
    assert!(messages.contains(&&Value::from("memoryStress stopped")), "{states:?}");
}

struct Fault<'a> {
    container: &'a Value,
}

fn in_pod(p: &Prepared) -> Fault<'_> {
    match &p.action {
        fault::Action::InPod { container, .. } => Fault { container },
        other => panic!("not in-pod: {other:?}"),
    }
}

fn restarts(pod: &Pod, container: &str) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.iter().find(|c| c.name == container))
        .map_or(0, |c| c.restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_kill_restarts_the_target_container_once() {
    let (_sim, client) = start(fast_shop()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let c = ctx(&client, Duration::from_secs(60));
    let target = pods_of(&client, "checkout").await.remove(0);
    let kill = ContainerKill {
        container: "checkout".into(),
        signal: Signal::TERM,
    };
    let p = fault::prepare(&c, FaultKind::ContainerKill(&kill), &target)
        .await
        .expect("prepare");
    let Fault { container } = in_pod(&p);
    assert_eq!(container["targetContainerName"], "checkout");
    // As on a real node, the fault container dies with its target's PID namespace (137, no
    // word of its own) before the kubelet shows the restart: judged by the restart.
    assert_eq!(fault::apply(&c, &p).await.expect("apply"), Outcome::Injected);
    let pod = pods.get(&target.name).await.expect("get");
    let fault_end = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|s| {
            s.iter()
                .find(|c| c.name == container["name"].as_str().unwrap_or_default())
        })
        .and_then(|c| c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code));
    assert_eq!(fault_end, Some(137));
    let pod = pods.get(&target.name).await.expect("get");
    assert_eq!(restarts(&pod, "checkout"), 1);
    eventually("the container is Ready again", || async {
        let pod = pods.get(&target.name).await.expect("get");
        pod.status
            .and_then(|s| s.container_statuses)
            .is_some_and(|s| s.iter().all(|c| c.ready))
    })
    .await;
    // Nothing to stop: the kubelet restarted the container, the fault container is done.
    assert!(matches!(p.undo[..], [Undo::Nothing { .. }]), "{:?}", p.undo);
    let pod = pods.get(&target.name).await.expect("get");
    assert_eq!(restarts(&pod, "checkout"), 1, "restarted exactly once");

    // KILL cannot reach a container's PID 1 from inside the pod: not injected, and why.
    let kill = ContainerKill {
        container: "checkout".into(),
        signal: Signal::KILL,
    };
    let c = Context {
        exercise: "ex-inpod-kill".into(),
        ..c
    };
    let p = fault::prepare(&c, FaultKind::ContainerKill(&kill), &target)
        .await
        .expect("prepare");
    match fault::apply(&c, &p).await.expect("apply") {
        Outcome::NotInjected { reason } => assert!(reason.contains("pid_namespaces(7)"), "{reason}"),
        other => panic!("KILL was injected: {other:?}"),
    }
    let pod = pods.get(&target.name).await.expect("get");
    assert_eq!(restarts(&pod, "checkout"), 1, "no second restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_disasterpiece_leaves_no_delay_behind_once_the_duration_ends() {
    let sim = Sim::builder()
        .seed(disasterpiece_sim::Seed::Shop)
        .replace_delay(Duration::from_millis(200))
        .ready_delay(Duration::from_millis(100))
        .start()
        .await
        .expect("simulator");
    let client = sim.raw_client().await.expect("client");
    let url = service_url(&client, "checkout").await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sigkill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("delay.yaml");
    std::fs::write(
        &file,
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-delay}
spec:
  hypothesis: Checkout stays usable with 300ms more latency.
  target: {namespace: shop, kind: Deployment, name: checkout}
  blastRadius: {mode: all, respectPodDisruptionBudgets: false}
  faults: [{networkDelay: {latency: 300ms}}]
  duration: 8s
  expect:
    - {name: answers, http: {url: 'http://checkout.shop.svc/'}, throughout: true}
",
    )
    .expect("write");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(["run", file.to_str().expect("utf-8"), "--yes", "--reports"])
        .arg(dir.join("reports"))
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start disasterpiece run");
    eventually("the delay runs in every checkout pod", || async {
        let states = ended(&client, "checkout").await;
        states.len() == 3 && states.iter().all(|s| s.get("running").is_some())
    })
    .await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    let (during, _) = median_latency(&url, 3).await;
    assert!(
        during >= Duration::from_millis(300),
        "{during:?}: the delay holds after SIGKILL"
    );
    // No `recover`: the containers end with their duration and take the delay with them.
    eventually("every delay ends with its duration", || async {
        ended(&client, "checkout")
            .await
            .iter()
            .all(|s| s.get("terminated").is_some())
    })
    .await;
    assert!(median_latency(&url, 3).await.0 < Duration::from_millis(200));
    let states = ended(&client, "checkout").await;
    for state in &states {
        assert_eq!(state["terminated"]["message"], "netem removed from eth0", "{state}");
        // Ended by its own clock, not by a revert: the exercise's 8s window, counted from when
        // the fault was prepared in whole seconds (DISASTERPIECE_NOT_AFTER), so a container
        // that started a moment later shows 7 whole seconds between its stamps.
        let time = |key: &str| {
            chrono::DateTime::parse_from_rfc3339(state["terminated"][key].as_str().expect("time")).expect("RFC 3339")
        };
        let ran = time("finishedAt") - time("startedAt");
        assert!(ran >= chrono::Duration::seconds(7), "{state}");
    }
}

/// Ephemeral containers stay in a pod's spec after they end, and the API server refuses to
/// change one: each fault container's name is unique per exercise, pod and fault, so two
/// faults of one kind on one pod run side by side, and the same scenario runs again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_faults_of_one_kind_on_one_pod_and_a_rerun_both_work() {
    let (_sim, client) = start(fast_shop()).await;
    let scenario = common::two_cpu_stresses("1s");
    let mut containers = Vec::new();
    for exercise in ["ex-stress-1", "ex-stress-2"] {
        let report = common::run_to_end(&client, &scenario, exercise).await;
        let hit: Vec<_> = report.injections.iter().filter(|i| i.injected_at.is_some()).collect();
        assert_eq!(hit.len(), 2, "{exercise}: {:#?}", report.injections);
        assert!(report.revert_failures.is_empty(), "{:?}", report.revert_failures);
        // The report names the container that was added, not the dry run's.
        for injection in &report.injections {
            assert!(!injection.action.contains("-plan"), "{}", injection.action);
            containers.push(injection.action.clone());
        }
    }
    containers.sort();
    containers.dedup();
    assert_eq!(containers.len(), 4, "four distinct containers: {containers:#?}");
}

/// An image no node can pull (an air-gapped cluster with the default image): the fault is not
/// injected, there is nothing to observe or wait out, the revert has nothing to stop, and the
/// journal is closed — where before the revert waited for the fault's end plus 30 s, then
/// failed with "it ends by itself at …", and `recover` failed forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_image_that_cannot_be_pulled_ends_the_fault_at_once() {
    use disasterpiece::report::model::Outcome as Verdict;
    let (_sim, client) = start(fast_shop()).await;
    let scenario = common::parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: frontend-stress-airgapped}
spec:
  hypothesis: Frontend keeps up under CPU pressure.
  target: {namespace: shop, kind: Deployment, name: frontend}
  blastRadius: {mode: one}
  faultImage: registry.airgap.invalid/tools/netshoot:v0.13
  faults: [{cpuStress: {workers: 1, load: 50}}]
  duration: 30s
  expect:
    - {name: some ready, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
    );
    let started = Instant::now();
    let report = common::run_to_end(&client, &scenario, "ex-airgap").await;
    let took = started.elapsed();
    let reason = report.injections[0].not_injected.clone().unwrap_or_default();
    assert!(
        reason.contains("ErrImagePull") && reason.contains("no such host"),
        "{reason}"
    );
    assert!(report.revert_failures.is_empty(), "{:?}", report.revert_failures);
    assert_eq!(report.outcome, Verdict::Inconclusive);
    assert!(report.timeline.iter().any(|e| e.kind == "notObserved"));
    // Far from the 30 s window and the 30 s stop timeout it used to wait out.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let journals = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "shop")
        .list(&ListParams::default().labels("disasterpiece.dev/journal=true"))
        .await
        .expect("list")
        .items;
    assert!(journals.is_empty(), "the journal is closed");
}

/// A fault container that ends before its window (here its script is stopped by hand, as an
/// OOM-killed stressor or a deleted pod would end it): the window ends there, the report says
/// when and why, and a clause seen over part of the window confirms nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_ends_early_ends_the_window_and_confirms_nothing() {
    use disasterpiece::report::model::{ClauseVerdict, Outcome as Verdict};
    let (_sim, client) = start(fast_shop()).await;
    let scenario = common::parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: frontend-stress-stopped}
spec:
  hypothesis: Frontend keeps up under CPU pressure.
  target: {namespace: shop, kind: Deployment, name: frontend}
  blastRadius: {mode: one}
  faults: [{cpuStress: {workers: 1, load: 50}}]
  duration: 30s
  expect:
    - {name: some ready, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
    );
    let started = Instant::now();
    let run = {
        let client = client.clone();
        tokio::spawn(async move { common::run_to_end(&client, &scenario, "ex-stopped").await })
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let running = || async {
        let list = pods
            .list(&ListParams::default().labels("app=frontend"))
            .await
            .expect("list");
        list.items.into_iter().find_map(|p| {
            let status = p
                .status
                .as_ref()?
                .ephemeral_container_statuses
                .as_ref()?
                .first()?
                .clone();
            status.state.as_ref()?.running.as_ref()?;
            Some((p.metadata.name.clone()?, status.name))
        })
    };
    eventually("the fault container runs", || async { running().await.is_some() }).await;
    let (pod, container) = running().await.expect("running");
    // Past the second it takes to count as injected.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let params = kube::api::AttachParams::default().container(&container).stdout(false);
    let stopped = pods
        .exec(
            &pod,
            ["/bin/sh", "-c", "kill -TERM $(cat /tmp/disasterpiece.pid)"],
            &params,
        )
        .await
        .expect("exec");
    let _ = stopped.join().await;
    let report = run.await.expect("run");
    let ended = report
        .timeline
        .iter()
        .find(|e| e.kind == "faultEnded")
        .expect("faultEnded");
    assert!(ended.detail.contains("cpuStress stopped"), "{}", ended.detail);
    assert_eq!(report.outcome, Verdict::Inconclusive);
    assert_eq!(report.expectations[0].verdict, ClauseVerdict::Inconclusive);
    assert!(
        report.expectations[0].observed.contains("the fault ended early"),
        "{}",
        report.expectations[0].observed
    );
    // Not the 30 s window.
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}
