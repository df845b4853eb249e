//! The in-pod faults with their containers run as real processes (the simulator's runtime):
//! the fault scripts run after Kubernetes' expansion, as their securityContext's user, from
//! `/`, with a private `/tmp`, in the PID namespace of the container they target; `exec` runs
//! inside them. What the tests see is what the processes did: the CPU time they used, the
//! memory they held, the restart of the process they signalled, and how soon they stopped.
//!
//! Ignored where this machine cannot make containers (root and util-linux are needed).

use std::time::{Duration, Instant};

use disasterpiece::blast_radius::resolve::resolve;
use disasterpiece::blast_radius::{Candidate, Unit};
use disasterpiece::fault::{self, Context, Outcome, Prepared};
use disasterpiece::scenario::model::{ContainerKill, CpuStress, FaultKind, MemoryStress, Signal, Target, TargetKind};
use disasterpiece_sim::{Sim, SimBuilder};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, AttachParams};
use serde_json::Value;

mod common;
use common::{eventually, fast_shop};

/// The shop, its containers run as processes.
fn shop() -> SimBuilder {
    fast_shop().run_containers(true)
}

async fn start() -> (Sim, Client) {
    common::start(shop()).await
}

fn ctx(client: &Client, exercise: &str, lasts: Duration) -> Context {
    Context {
        client: client.clone(),
        exercise: exercise.into(),
        dry_run: false,
        in_pod: fault::in_pod::Settings {
            image: fault::in_pod::DEFAULT_IMAGE.into(),
            duration: lasts,
        },
        clock: Default::default(),
    }
}

async fn first_pod(client: &Client, workload: &str) -> Candidate {
    let target = Target {
        namespace: Some("shop".into()),
        kind: TargetKind::Deployment,
        name: Some(workload.into()),
        selector: None,
    };
    resolve(client, &target, Unit::Pod)
        .await
        .expect("resolve")
        .candidates
        .remove(0)
}

async fn inject(c: &Context, fault: FaultKind<'_>, pod: &Candidate) -> Prepared {
    let p = fault::prepare(c, fault, pod).await.expect("prepare");
    assert_eq!(
        fault::apply(c, &p).await.expect("apply"),
        Outcome::Injected,
        "{}",
        p.action
    );
    p
}

fn container_of(p: &Prepared) -> String {
    match &p.action {
        fault::Action::InPod { container, .. } => container["name"].as_str().expect("name").to_owned(),
        other => panic!("not in-pod: {other:?}"),
    }
}

/// Runs `command` in `container` of `pod` as `kubectl exec` does; its stdout.
async fn exec(client: &Client, pod: &str, container: &str, command: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let params = AttachParams::default().container(container).stderr(false);
    let mut process = pods.exec(pod, ["/bin/sh", "-c", command], &params).await.expect("exec");
    let mut stdout = process.stdout().expect("stdout");
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
        .await
        .expect("read");
    let _ = process.join().await;
    out
}

/// CPU seconds used so far by every process of the PID namespace `container` lives in.
async fn cpu_seconds(client: &Client, pod: &str, container: &str) -> f64 {
    let out = exec(
        client,
        pod,
        container,
        "echo $(getconf CLK_TCK); for f in /proc/[0-9]*/stat; do cat \"$f\" 2>/dev/null; echo; done",
    )
    .await;
    let mut lines = out.lines();
    let tick: f64 = lines.next().and_then(|t| t.trim().parse().ok()).expect("CLK_TCK");
    let ticks: u64 = lines
        .filter_map(|l| {
            // After the command name in parentheses: state is field 3, utime 14, stime 15.
            let rest = l.rsplit_once(") ")?.1;
            let fields: Vec<&str> = rest.split(' ').collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 / tick
}

/// Resident bytes of every process of the PID namespace `container` lives in.
async fn resident_bytes(client: &Client, pod: &str, container: &str) -> u64 {
    let out = exec(
        client,
        pod,
        container,
        "for f in /proc/[0-9]*/status; do grep VmRSS \"$f\" 2>/dev/null; done",
    )
    .await;
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// The commands of the processes `container` sees.
async fn processes(client: &Client, pod: &str, container: &str) -> String {
    exec(
        client,
        pod,
        container,
        "cat /proc/[0-9]*/comm 2>/dev/null | sort | tr '\\n' ' '",
    )
    .await
}

/// The state of ephemeral container `name` of `pod`, as the API shows it.
async fn state(client: &Client, pod: &str, name: &str) -> Value {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let pod = pods.get(pod).await.expect("get");
    let statuses = pod
        .status
        .and_then(|s| s.ephemeral_container_statuses)
        .unwrap_or_default();
    statuses
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| serde_json::to_value(s.state).expect("json"))
        .unwrap_or(Value::Null)
}

async fn ended(client: &Client, pod: &str, name: &str) -> Value {
    eventually(&format!("{name} ends"), || async {
        state(client, pod, name).await.get("terminated").is_some()
    })
    .await;
    state(client, pod, name).await["terminated"].clone()
}

async fn revert(c: &Context, p: &Prepared) {
    for undo in &p.undo {
        fault::revert(c, undo).await.expect("revert");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn cpu_stress_uses_cpu_until_term_stops_it() {
    let (_sim, client) = start().await;
    let c = ctx(&client, "ex-cpu", Duration::from_secs(60));
    let pod = first_pod(&client, "frontend").await;
    let cpu = CpuStress { workers: 1, load: 100 };
    let p = inject(&c, FaultKind::CpuStress(&cpu), &pod).await;
    let name = container_of(&p);
    let before = cpu_seconds(&client, &pod.name, &name).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(&client, &pod.name, &name).await - before;
    // One worker at 100% for 2 s: well over half a CPU second, even on a loaded machine.
    assert!(used >= 0.5, "{used} CPU seconds in 2 s");
    let started = Instant::now();
    revert(&c, &p).await;
    let end = ended(&client, &pod.name, &name).await;
    assert_eq!(end["exitCode"], 0, "{end}");
    assert_eq!(end["message"], "cpuStress stopped", "{end}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Its stressors went with it: the target's PID namespace holds only the application.
    let left = processes(&client, &pod.name, "frontend").await;
    assert!(!left.contains("stress"), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn memory_stress_holds_its_bytes_until_term_stops_it() {
    let (_sim, client) = start().await;
    let c = ctx(&client, "ex-memory", Duration::from_secs(60));
    let pod = first_pod(&client, "frontend").await;
    let memory = MemoryStress {
        size: "64Mi".into(),
        ramp: None,
    };
    let before = resident_bytes(&client, &pod.name, "frontend").await;
    let p = inject(&c, FaultKind::MemoryStress(&memory), &pod).await;
    let name = container_of(&p);
    eventually("64 MiB are resident", || async {
        resident_bytes(&client, &pod.name, &name).await >= before + (60 << 20)
    })
    .await;
    revert(&c, &p).await;
    let end = ended(&client, &pod.name, &name).await;
    assert_eq!(end["message"], "memoryStress stopped", "{end}");
    let after = resident_bytes(&client, &pod.name, "frontend").await;
    assert!(
        after < before + (8 << 20),
        "{after} bytes resident after, {before} before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn container_kill_restarts_its_target_and_kill_cannot_reach_pid_1() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let c = ctx(&client, "ex-kill", Duration::from_secs(60));
    let pod = first_pod(&client, "checkout").await;
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|s| s.iter().find(|c| c.name == "checkout"))
            .map_or(0, |c| c.restart_count)
    };
    let kill = ContainerKill {
        container: "checkout".into(),
        signal: Signal::TERM,
    };
    let p = inject(&c, FaultKind::ContainerKill(&kill), &pod).await;
    let now = pods.get(&pod.name).await.expect("get");
    assert_eq!(restarts(&now), 1);
    let last = now
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|s| s.into_iter().find(|c| c.name == "checkout"))
        .and_then(|c| c.last_state?.terminated);
    // The stand-in's TERM handler: exit 143, as an application's would.
    assert_eq!(last.map(|t| t.exit_code), Some(143));
    // The script died with its target's PID namespace: 137, no word of its own.
    let end = ended(&client, &pod.name, &container_of(&p)).await;
    assert_eq!(end["exitCode"], 137, "{end}");

    // KILL from inside the pod never reaches a PID 1: the kernel drops it.
    let c = ctx(&client, "ex-kill-9", Duration::from_secs(60));
    let kill = ContainerKill {
        container: "checkout".into(),
        signal: Signal::KILL,
    };
    let p = fault::prepare(&c, FaultKind::ContainerKill(&kill), &pod)
        .await
        .expect("prepare");
    match fault::apply(&c, &p).await.expect("apply") {
        Outcome::NotInjected { reason } => assert!(reason.contains("pid_namespaces(7)"), "{reason}"),
        other => panic!("KILL was injected: {other:?}"),
    }
    assert_eq!(
        restarts(&pods.get(&pod.name).await.expect("get")),
        1,
        "no second restart"
    );
}

/// The fault containers of `pod`: (name, state).
async fn fault_states(client: &Client, pod: &str) -> Vec<(String, Value)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let pod = pods.get(pod).await.expect("get");
    pod.status
        .and_then(|s| s.ephemeral_container_statuses)
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name, serde_json::to_value(s.state).expect("json")))
        .collect()
}

/// A scenario with both stress faults on one frontend pod.
fn stresses(duration: &str) -> String {
    format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: frontend-stress}}
spec:
  hypothesis: Frontend keeps serving under CPU and memory pressure.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  blastRadius: {{mode: one}}
  faults: [{{cpuStress: {{workers: 1, load: 100}}}}, {{memoryStress: {{size: 32Mi}}}}]
  duration: {duration}
  expect:
    - {{name: some ready, kube: {{readyReplicas: {{atLeast: 1}}}}, throughout: true}}
"
    )
}

/// The pod of `workload` that has fault containers.
async fn faulted_pod(client: &Client, workload: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let list = pods
        .list(&kube::api::ListParams::default().labels(&format!("app={workload}")))
        .await
        .expect("list");
    list.items
        .into_iter()
        .find(|p| p.spec.as_ref().is_some_and(|s| s.ephemeral_containers.is_some()))
        .map(|p| p.metadata.name.unwrap_or_default())
        .expect("a pod with fault containers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn sigint_stops_every_fault_script_within_a_second() {
    let (sim, client) = start().await;
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("processes-sigint-{}", std::process::id()));
    let mut child = common::start_run(&sim, &dir, &stresses("60s"), 2).await;
    let pod = faulted_pod(&client, "frontend").await;
    let states = fault_states(&client, &pod).await;
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(states.iter().all(|(_, s)| s.get("running").is_some()), "{states:?}");
    common::signal(&child, "-INT");
    let sent = Instant::now();
    eventually("every fault script ends", || async {
        fault_states(&client, &pod)
            .await
            .iter()
            .all(|(_, s)| s.get("terminated").is_some())
    })
    .await;
    let took = sent.elapsed();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(status.code(), Some(3), "aborted");
    for (name, state) in fault_states(&client, &pod).await {
        assert_eq!(state["terminated"]["exitCode"], 0, "{name}: {state}");
        assert!(
            state["terminated"]["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("Stress stopped")),
            "{name}: {state}"
        );
    }
    // Far from the 60 s the scripts would have run (the bug: 81 s after SIGINT).
    assert!(
        took < Duration::from_secs(1),
        "the scripts stopped {took:?} after SIGINT"
    );
    let left = processes(&client, &pod, "frontend").await;
    assert!(!left.contains("stress"), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn a_killed_disasterpiece_leaves_its_fault_scripts_to_end_on_time() {
    let (sim, client) = start().await;
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("processes-sigkill-{}", std::process::id()));
    let mut child = common::start_run(&sim, &dir, &stresses("4s"), 2).await;
    common::signal(&child, "-KILL");
    child.wait().await.expect("reaped");
    let pod = faulted_pod(&client, "frontend").await;
    assert!(
        fault_states(&client, &pod)
            .await
            .iter()
            .all(|(_, s)| s.get("running").is_some()),
        "the faults hold after SIGKILL"
    );
    // No `recover`: the scripts end by their own clock, at the end of the exercise's window.
    eventually("the fault scripts end by themselves", || async {
        fault_states(&client, &pod)
            .await
            .iter()
            .all(|(_, s)| s.get("terminated").is_some())
    })
    .await;
    for (name, state) in fault_states(&client, &pod).await {
        let t = &state["terminated"];
        assert_eq!(t["exitCode"], 0, "{name}: {state}");
        let time = |key: &str| chrono::DateTime::parse_from_rfc3339(t[key].as_str().expect("time")).expect("RFC 3339");
        let ran = (time("finishedAt") - time("startedAt")).num_seconds();
        // The 4 s window, counted from the preparation in whole seconds; never much longer.
        assert!((2..=6).contains(&ran), "{name} ran {ran}s: {state}");
    }
    let left = processes(&client, &pod, "frontend").await;
    assert!(!left.contains("stress"), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn a_fault_that_did_nothing_cannot_confirm_the_hypothesis() {
    use disasterpiece::report::model::Outcome as Verdict;
    let (_sim, client) = start().await;
    let report = common::run_to_end(
        &client,
        &common::parse(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-quit}
spec:
  hypothesis: Checkout keeps serving when its main process is told to quit.
  target: {namespace: shop, kind: Deployment, name: checkout}
  blastRadius: {mode: one}
  faults: [{containerKill: {container: checkout, signal: QUIT}}]
  duration: 2s
  expect:
    - {name: some ready, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
        ),
        "ex-quit",
    )
    .await;
    // The application's PID 1 handles no QUIT, so the kernel never delivers it: the script
    // says so, and nothing was in place to judge the hypothesis by.
    let reason = report.injections[0].not_injected.clone().unwrap_or_default();
    assert!(reason.contains("still running after SIGQUIT"), "{reason}");
    assert_eq!(report.outcome, Verdict::Inconclusive, "{:?}", report.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn two_stresses_of_one_kind_on_one_pod_and_a_rerun_all_run() {
    let (_sim, client) = start().await;
    let scenario = common::two_cpu_stresses("2s");
    let mut names = Vec::new();
    for exercise in ["ex-twice-1", "ex-twice-2"] {
        let report = common::run_to_end(&client, &scenario, exercise).await;
        let hit = report.injections.iter().filter(|i| i.injected_at.is_some()).count();
        assert_eq!(
            hit, 2,
            "{exercise}: {:#?} {:?} {:?}",
            report.injections, report.outcome, report.refusals
        );
        assert!(report.revert_failures.is_empty(), "{:?}", report.revert_failures);
        names.extend(report.injections.iter().map(|i| i.action.clone()));
    }
    let pod = faulted_pod(&client, "frontend").await;
    let states = fault_states(&client, &pod).await;
    assert_eq!(states.len(), 4, "{states:?}");
    for (name, state) in &states {
        assert_eq!(state["terminated"]["message"], "cpuStress stopped", "{name}: {state}");
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4, "{names:#?}");
}

/// Whether this kernel has netem (`sch_netem`).
fn kernel_has_netem() -> bool {
    std::process::Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_container_runtime),
    ignore = "needs root and util-linux to run containers as processes"
)]
async fn network_delay_runs_tc_in_the_pods_network_namespace() {
    use disasterpiece::scenario::model::NetworkDelay;
    let (_sim, client) = start().await;
    let c = ctx(&client, "ex-netem", Duration::from_secs(60));
    let pod = first_pod(&client, "checkout").await;
    let delay = NetworkDelay {
        latency: Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    let p = fault::prepare(&c, FaultKind::NetworkDelay(&delay), &pod)
        .await
        .expect("prepare");
    let outcome = fault::apply(&c, &p).await.expect("apply");
    if kernel_has_netem() {
        assert_eq!(outcome, Outcome::Injected);
        let qdisc = exec(&client, &pod.name, &container_of(&p), "tc qdisc show dev eth0").await;
        assert!(qdisc.contains("netem") && qdisc.contains("300ms"), "{qdisc}");
        revert(&c, &p).await;
        let end = ended(&client, &pod.name, &container_of(&p)).await;
        assert_eq!(end["message"], "netem removed from eth0", "{end}");
    } else {
        // The kernel's refusal, in tc's words, is why it is not injected.
        match outcome {
            Outcome::NotInjected { reason } => {
                assert!(reason.contains("could not add netem to eth0"), "{reason}");
                assert!(reason.contains("qdisc kind is unknown"), "{reason}");
            }
            other => panic!("netem without the kernel's netem: {other:?}"),
        }
    }
}
