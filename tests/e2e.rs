//! One test per fault kind, each on a cluster of its own choosing: the simulator by default,
//! a real cluster when `DISASTERPIECE_E2E_KUBECONFIG` names a kubeconfig whose context may
//! create namespaces (`DISASTERPIECE_E2E_KUBECONFIG=… cargo test --test e2e`).
//!
//! Each test makes its own namespace (PodSecurity `privileged`, for NET_ADMIN), a Deployment
//! `target` of two `registry.k8s.io/pause` pods, injects one fault through the same code the
//! engine uses, checks what a user would see, reverts, checks it is gone, and deletes the
//! namespace whatever happened. What one kind of cluster cannot show is ignored with the
//! reason (build.rs): the netem check needs a real kernel's `tc`; a real cluster's nodes are
//! not drained unless `DISASTERPIECE_E2E_DISRUPTIVE=1` says it is there to be disrupted.

use std::time::Duration;

use disasterpiece::blast_radius::resolve::resolve;
use disasterpiece::blast_radius::{Candidate, Unit};
use disasterpiece::fault::{self, Context, Outcome, Prepared};
use disasterpiece::scenario::model::{
    ContainerKill, CpuStress, DnsFailure, FaultKind, MemoryStress, NetworkDelay, NetworkLoss, NetworkPartition,
    NodeCordon, NodeDrain, PodEvict, PodKill, Scale, Signal, Target, TargetKind,
};
use disasterpiece_sim::{Seed, Sim};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

/// Where a test runs: its client, its namespace, and (on the simulator) the simulator.
struct Cluster {
    client: kube::Client,
    ns: String,
    real: bool,
    _scratch: Scratch,
    _sim: Option<Sim>,
}

impl Cluster {
    /// A namespace `dp-e2e-NAME-PID` with Deployment `target` (two Ready pause pods).
    async fn new(name: &str) -> Cluster {
        let (client, sim) = match std::env::var_os("DISASTERPIECE_E2E_KUBECONFIG") {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(&path).expect("read DISASTERPIECE_E2E_KUBECONFIG");
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .expect("a usable kubeconfig");
                (kube::Client::try_from(config).expect("client"), None)
            }
            None => {
                let sim = Sim::builder()
                    .seed(Seed::Empty)
                    .replace_delay(Duration::from_millis(200))
                    .ready_delay(Duration::from_millis(100))
                    .start()
                    .await
                    .expect("simulator");
                (sim.raw_client().await.expect("client"), Some(sim))
            }
        };
        let ns = format!("dp-e2e-{name}-{}", std::process::id());
        let namespace = serde_json::from_value(json!({"metadata": {"name": ns,
            "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}))
        .expect("namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the namespace");
        let scratch = Scratch {
            client: client.clone(),
            name: ns.clone(),
        };
        let deployment = serde_json::from_value(json!({
            "metadata": {"name": "target"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "target"}},
                "template": {"metadata": {"labels": {"app": "target"}},
                    "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}},
        }))
        .expect("deployment");
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &deployment)
            .await
            .expect("create the deployment");
        let cluster = Cluster {
            real: sim.is_none(),
            client,
            ns,
            _scratch: scratch,
            _sim: sim,
        };
        cluster.until_whole().await;
        cluster
    }

    /// Until the Deployment has its two pods Ready again.
    async fn until_whole(&self) {
        let deployments = self.deployments();
        until("two target pods are Ready", Duration::from_secs(180), async || {
            deployments
                .get("target")
                .await
                .ok()
                .and_then(|d| d.status?.ready_replicas)
                == Some(2)
        })
        .await;
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn workload(&self) -> Target {
        Target {
            namespace: Some(self.ns.clone()),
            kind: TargetKind::Deployment,
            name: Some("target".into()),
            selector: None,
        }
    }

    async fn candidates(&self, unit: Unit) -> Vec<Candidate> {
        resolve(&self.client, &self.workload(), unit)
            .await
            .expect("resolve")
            .candidates
    }

    fn context(&self, exercise: &str) -> Context {
        Context {
            client: self.client.clone(),
            exercise: exercise.into(),
            dry_run: false,
            in_pod: fault::in_pod::Settings {
                image: fault::in_pod::DEFAULT_IMAGE.into(),
                duration: Duration::from_secs(120),
            },
            clock: Default::default(),
        }
    }

    /// Prepares and applies `fault` on `target`; it must be in place.
    async fn inject(&self, ctx: &Context, fault: FaultKind<'_>, target: &Candidate) -> Prepared {
        let prepared = fault::prepare(ctx, fault, target).await.expect("prepare");
        let outcome = fault::apply(ctx, &prepared).await.expect("apply");
        // A drain says which pods it evicted; every other fault is simply in place.
        assert!(
            matches!(outcome, Outcome::Injected | Outcome::Evicted { .. }),
            "{outcome:?}"
        );
        prepared
    }

    async fn revert(&self, ctx: &Context, prepared: &Prepared) {
        for undo in &prepared.undo {
            fault::revert(ctx, undo).await.expect("revert");
        }
    }

    /// `tc qdisc show dev eth0` in the fault container.
    async fn qdisc(&self, pod: &str, container: &str) -> String {
        let mut shown = self
            .pods()
            .exec(
                pod,
                ["tc", "qdisc", "show", "dev", "eth0"],
                &AttachParams::default().container(container).stderr(false),
            )
            .await
            .expect("exec tc");
        let mut out = String::new();
        if let Some(mut stdout) = shown.stdout() {
            use tokio::io::AsyncReadExt;
            let _ = stdout.read_to_string(&mut out).await;
        }
        let _ = shown.join().await;
        out
    }

    /// The state of the first ephemeral container of `pod`: `running`, or how it ended.
    async fn fault_container(&self, pod: &str) -> (String, Option<i32>, String) {
        let pod = self.pods().get(pod).await.expect("get the pod");
        let status = pod
            .status
            .and_then(|s| s.ephemeral_container_statuses)
            .and_then(|s| s.into_iter().next())
            .and_then(|s| s.state);
        match status {
            Some(s) if s.running.is_some() => ("running".into(), None, String::new()),
            Some(s) => match s.terminated {
                Some(t) => (
                    "terminated".into(),
                    Some(t.exit_code),
                    t.message.unwrap_or_default().trim().to_owned(),
                ),
                None => ("waiting".into(), None, String::new()),
            },
            None => ("none".into(), None, String::new()),
        }
    }

    /// An in-pod fault: its container runs, the revert stops it long before its duration, and
    /// it ends cleanly saying `farewell`.
    async fn in_pod(&self, exercise: &str, fault: FaultKind<'_>, farewell: &str) {
        let ctx = self.context(exercise);
        let target = self.candidates(Unit::Pod).await.remove(0);
        let prepared = self.inject(&ctx, fault, &target).await;
        until("the fault container runs", Duration::from_secs(120), async || {
            self.fault_container(&target.name).await.0 == "running"
        })
        .await;
        self.revert(&ctx, &prepared).await;
        until("the fault container ends", Duration::from_secs(60), async || {
            self.fault_container(&target.name).await.0 == "terminated"
        })
        .await;
        let (_, code, message) = self.fault_container(&target.name).await;
        assert_eq!(code, Some(0), "{message}");
        assert_eq!(message, farewell);
    }
}

/// The name of the container an in-pod fault adds.
fn fault_container_name(prepared: &Prepared) -> String {
    match &prepared.action {
        fault::Action::InPod { container, .. } => container["name"].as_str().unwrap_or_default().to_owned(),
        other => panic!("not an in-pod fault: {other:?}"),
    }
}

/// Deletes the namespace when dropped, so a failed assertion leaves nothing behind.
struct Scratch {
    client: kube::Client,
    name: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = runtime {
                rt.block_on(async {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::default())
                        .await;
                });
            }
        })
        .join();
    }
}

async fn until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until pod `gone` is no more and the Deployment is whole again.
async fn replaced(cluster: &Cluster, gone: &str) {
    let pods = cluster.pods();
    until("the pod is replaced", Duration::from_secs(180), async || {
        let listed = pods
            .list(&ListParams::default().labels("app=target"))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        listed.iter().all(|p| p.metadata.name.as_deref() != Some(gone))
    })
    .await;
    cluster.until_whole().await;
}

/// A fault that takes one pod away: the Deployment replaces it.
async fn one_pod_replaced(name: &str, fault: FaultKind<'_>) {
    let cluster = Cluster::new(name).await;
    let ctx = cluster.context(&format!("e2e-{name}"));
    let target = cluster.candidates(Unit::Pod).await.remove(0);
    cluster.inject(&ctx, fault, &target).await;
    replaced(&cluster, &target.name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_kill() {
    let kill = PodKill {
        grace_period_seconds: Some(0),
    };
    one_pod_replaced("podkill", FaultKind::PodKill(&kill)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_evict() {
    let evict = PodEvict {
        grace_period_seconds: Some(1),
    };
    one_pod_replaced("podevict", FaultKind::PodEvict(&evict)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale() {
    let cluster = Cluster::new("scale").await;
    let ctx = cluster.context("e2e-scale");
    let workload = cluster.candidates(Unit::Workload).await.remove(0);
    let prepared = cluster
        .inject(&ctx, FaultKind::Scale(&Scale { replicas: 1 }), &workload)
        .await;
    let deployments = cluster.deployments();
    until("one pod is left", Duration::from_secs(120), async || {
        deployments.get("target").await.ok().and_then(|d| d.status?.replicas) == Some(1)
    })
    .await;
    cluster.revert(&ctx, &prepared).await;
    assert_eq!(deployments.get("target").await.expect("get").spec.replicas, Some(2));
    cluster.until_whole().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_kill() {
    let cluster = Cluster::new("containerkill").await;
    let ctx = cluster.context("e2e-containerkill");
    let target = cluster.candidates(Unit::Pod).await.remove(0);
    let kill = ContainerKill {
        container: "pause".into(),
        signal: Signal::TERM,
    };
    cluster.inject(&ctx, FaultKind::ContainerKill(&kill), &target).await;
    let pods = cluster.pods();
    until("the container restarted", Duration::from_secs(120), async || {
        pods.get(&target.name)
            .await
            .ok()
            .and_then(|p| p.status?.container_statuses)
            .is_some_and(|s| s.iter().any(|c| c.name == "pause" && c.restart_count >= 1))
    })
    .await;
    cluster.until_whole().await;
}

/// The NetworkPolicies of the test's namespace, by name.
async fn policies(cluster: &Cluster) -> Vec<String> {
    Api::<NetworkPolicy>::namespaced(cluster.client.clone(), &cluster.ns)
        .list(&ListParams::default())
        .await
        .expect("list policies")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

async fn policy_fault(cluster: &Cluster, exercise: &str, fault: FaultKind<'_>) {
    let ctx = cluster.context(exercise);
    let target = cluster.candidates(Unit::Pod).await.remove(0);
    let prepared = cluster.inject(&ctx, fault, &target).await;
    assert_eq!(
        policies(cluster).await.len(),
        1,
        "one NetworkPolicy while the fault is in place"
    );
    let labels = cluster
        .pods()
        .get(&target.name)
        .await
        .expect("get")
        .metadata
        .labels
        .unwrap_or_default();
    // The fault's label: `<fault>.disasterpiece.dev/<exercise>`, one key per exercise.
    let ours = |k: &String| k.ends_with(&format!(".disasterpiece.dev/{}", ctx.exercise));
    assert!(labels.keys().any(ours), "{labels:?}");
    cluster.revert(&ctx, &prepared).await;
    assert!(policies(cluster).await.is_empty(), "no NetworkPolicy after the revert");
    let labels = cluster
        .pods()
        .get(&target.name)
        .await
        .expect("get")
        .metadata
        .labels
        .unwrap_or_default();
    assert!(!labels.keys().any(ours), "{labels:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_partition() {
    let cluster = Cluster::new("partition").await;
    let partition = NetworkPartition::default();
    policy_fault(&cluster, "e2e-partition", FaultKind::NetworkPartition(&partition)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure() {
    let cluster = Cluster::new("dns").await;
    policy_fault(&cluster, "e2e-dns", FaultKind::DnsFailure(&DnsFailure {})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_delay() {
    let cluster = Cluster::new("delay").await;
    let delay = NetworkDelay {
        latency: Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    cluster
        .in_pod("e2e-delay", FaultKind::NetworkDelay(&delay), "netem removed from eth0")
        .await;
}

/// What only a real kernel shows: the netem qdisc on the pod's eth0 while the fault runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_e2e_cluster),
    ignore = "needs a real cluster whose nodes have netem (tests/in_pod_processes.rs runs tc on this kernel): DISASTERPIECE_E2E_KUBECONFIG=… cargo test --test e2e"
)]
async fn network_delay_puts_netem_on_eth0() {
    let cluster = Cluster::new("netem").await;
    assert!(
        cluster.real,
        "set DISASTERPIECE_E2E_KUBECONFIG: a real cluster whose nodes have netem"
    );
    let delay = NetworkDelay {
        latency: Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    let ctx = cluster.context("e2e-netem");
    let target = cluster.candidates(Unit::Pod).await.remove(0);
    let prepared = cluster.inject(&ctx, FaultKind::NetworkDelay(&delay), &target).await;
    until("the fault container runs", Duration::from_secs(120), async || {
        cluster.fault_container(&target.name).await.0 == "running"
    })
    .await;
    let shown = cluster.qdisc(&target.name, &fault_container_name(&prepared)).await;
    assert!(shown.contains("netem") && shown.contains("delay 300ms"), "{shown}");
    cluster.revert(&ctx, &prepared).await;
    until("the fault container ends", Duration::from_secs(60), async || {
        cluster.fault_container(&target.name).await.0 == "terminated"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_loss() {
    let cluster = Cluster::new("loss").await;
    let loss = NetworkLoss {
        percent: 10.0,
        correlation: None,
        destination: None,
    };
    cluster
        .in_pod("e2e-loss", FaultKind::NetworkLoss(&loss), "netem removed from eth0")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stress() {
    let cluster = Cluster::new("cpu").await;
    let cpu = CpuStress { workers: 1, load: 50 };
    cluster
        .in_pod("e2e-cpu", FaultKind::CpuStress(&cpu), "cpuStress stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stress() {
    let cluster = Cluster::new("memory").await;
    let memory = MemoryStress {
        size: "64Mi".into(),
        ramp: None,
    };
    cluster
        .in_pod("e2e-memory", FaultKind::MemoryStress(&memory), "memoryStress stopped")
        .await;
}

/// Node faults one at a time: two at once on a small cluster would meet on the same node.
static NODE_FAULTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn unschedulable(client: &kube::Client, node: &str) -> bool {
    Api::<Node>::all(client.clone())
        .get(node)
        .await
        .expect("get the node")
        .spec
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// The node one target pod runs on, as a Node target.
async fn node_of_a_target(cluster: &Cluster) -> Candidate {
    let pod = cluster.candidates(Unit::Pod).await.remove(0);
    let node = cluster
        .pods()
        .get(&pod.name)
        .await
        .expect("get")
        .spec
        .and_then(|s| s.node_name)
        .expect("a scheduled pod");
    let target = Target {
        namespace: None,
        kind: TargetKind::Node,
        name: Some(node),
        selector: None,
    };
    resolve(&cluster.client, &target, Unit::Node)
        .await
        .expect("resolve the node")
        .candidates
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cordon() {
    let _one_at_a_time = NODE_FAULTS.lock().await;
    let cluster = Cluster::new("cordon").await;
    let ctx = cluster.context("e2e-cordon");
    let node = node_of_a_target(&cluster).await;
    let prepared = cluster.inject(&ctx, FaultKind::NodeCordon(&NodeCordon {}), &node).await;
    assert!(unschedulable(&cluster.client, &node.name).await);
    cluster.revert(&ctx, &prepared).await;
    assert!(!unschedulable(&cluster.client, &node.name).await);
}

/// On a real cluster only when it may be disrupted: a drain evicts every pod of a node, in
/// every namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(has_e2e_cluster, not(e2e_disruptive)),
    ignore = "drains a node of the real cluster: set DISASTERPIECE_E2E_DISRUPTIVE=1 if it may be disrupted"
)]
async fn node_drain() {
    let _one_at_a_time = NODE_FAULTS.lock().await;
    let cluster = Cluster::new("drain").await;
    let ctx = cluster.context("e2e-drain");
    let node = node_of_a_target(&cluster).await;
    let drain = NodeDrain {
        grace_period_seconds: Some(1),
        timeout: Some("120s".parse().expect("duration")),
    };
    let prepared = cluster.inject(&ctx, FaultKind::NodeDrain(&drain), &node).await;
    assert!(unschedulable(&cluster.client, &node.name).await);
    let pods = cluster.pods();
    until(
        "no target pod is on the drained node",
        Duration::from_secs(180),
        async || {
            pods.list(&ListParams::default().labels("app=target"))
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .iter()
                .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node.name.as_str()))
        },
    )
    .await;
    cluster.revert(&ctx, &prepared).await;
    assert!(!unschedulable(&cluster.client, &node.name).await);
    cluster.until_whole().await;
}
