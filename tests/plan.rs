//! `disasterpiece plan`: the dry run changes nothing, explains its choices, and refuses what
//! may not run — against the simulator over HTTP.

use std::process::Command;
use std::time::Duration;

use disasterpiece::blast_radius::guard::Exclusion;
use disasterpiece::clock::Clock;
use disasterpiece::engine::preflight::{PlanOptions, plan};
use disasterpiece::fault::Action;
use disasterpiece::scenario::{self, Resource, Scenario};
use disasterpiece_sim::{Seed, Sim};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

mod common;
use common::{eventually, start};

/// A plan that knows where Prometheus is (it is not asked: only `expect` clauses read it).
fn with_prometheus() -> PlanOptions {
    PlanOptions {
        sources: disasterpiece::probe::Sources {
            prometheus: Some("http://prometheus.monitoring.svc:9090".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn scenario(file: &str) -> Scenario {
    let text = std::fs::read_to_string(file).expect("read");
    let loaded = scenario::load(&text, &|_| true);
    match loaded.resources.into_iter().next() {
        Some((_, Resource::Scenario(s))) => *s,
        other => panic!("{file}: no scenario ({other:?}, {:?})", loaded.problems),
    }
}

/// The scenario called `name` in a file of several.
fn scenario_named(file: &str, name: &str) -> Scenario {
    let text = std::fs::read_to_string(file).expect("read");
    scenario::load(&text, &|_| true)
        .resources
        .into_iter()
        .find_map(|(_, r)| match r {
            Resource::Scenario(s) if s.metadata.name == name => Some(*s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{file}: no scenario {name}"))
}

async fn shop(builder: disasterpiece_sim::SimBuilder) -> (Sim, kube::Client) {
    start(
        builder
            .seed(Seed::Shop)
            .replace_delay(Duration::from_millis(200))
            .ready_delay(Duration::from_millis(100)),
    )
    .await
}

#[tokio::test]
async fn plan_changes_nothing_and_explains_its_choice() {
    let (sim, client) = shop(Sim::builder()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    // Its alert and PromQL clauses need a Prometheus: without one the run could only hold the
    // fault for an INCONCLUSIVE, so the plan refuses and says what to give.
    let blind = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        sim.url(),
        7,
        &Default::default(),
        &Clock::system(),
    )
    .await;
    assert!(!blind.runnable);
    assert!(
        blind
            .refusals
            .iter()
            .any(|r| r.starts_with("`alert fires` cannot be judged") && r.contains("--prometheus-url")),
        "{:?}",
        blind.refusals
    );
    let planned = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        sim.url(),
        7,
        &with_prometheus(),
        &Clock::system(),
    )
    .await;
    assert_eq!(sim.resource_version(), before, "plan wrote nothing");
    assert!(planned.runnable, "{:?}", planned.refusals);
    let fault = &planned.faults[0];
    assert_eq!(
        (fault.fault.as_str(), fault.wanted, fault.chosen.len()),
        ("podKill", 2, 1)
    );
    assert!(
        fault
            .excluded
            .iter()
            .all(|e| e.reason == Exclusion::WouldBreakMinHealthy { left: 1, min: 2 }),
        "{:?}",
        fault.excluded
    );
    assert_eq!(fault.steps.len(), 1);
    assert!(
        fault.steps[0].does.starts_with("delete pod shop/checkout-"),
        "{}",
        fault.steps[0].does
    );
    let steady = &planned.steady_state[0];
    assert_eq!(steady.name, "checkout answers");
    assert!(
        steady.sample.observed.starts_with("200 in"),
        "reached through the service proxy: {}",
        steady.sample.observed
    );
    assert!(
        planned
            .permissions
            .iter()
            .any(|p| p.permission.describe() == "delete pods in shop" && p.allowed)
    );
    assert!(
        planned.dry_run.iter().all(|d| d.refused.is_none()),
        "{:?}",
        planned.dry_run
    );

    let again = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        sim.url(),
        7,
        &Default::default(),
        &Clock::system(),
    )
    .await;
    assert_eq!(
        again.faults[0].chosen, fault.chosen,
        "the same seed chooses the same target"
    );
}

#[tokio::test]
async fn plan_refuses_without_permission() {
    let (_sim, client) = shop(Sim::builder().deny("delete", "pods")).await;
    let planned = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        "sim",
        1,
        &Default::default(),
        &Clock::system(),
    )
    .await;
    assert!(!planned.runnable);
    assert!(
        planned
            .refusals
            .contains(&"not allowed to delete pods in shop".to_owned()),
        "{:?}",
        planned.refusals
    );
}

#[tokio::test]
async fn plan_refuses_when_the_steady_state_does_not_hold() {
    let (_sim, client) = shop(Sim::builder()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let zero = Patch::Merge(json!({"spec": {"replicas": 0}}));
    deployments
        .patch_scale("checkout", &PatchParams::default(), &zero)
        .await
        .expect("scale");
    eventually("checkout has no pods left", || async {
        let d = deployments.get("checkout").await.expect("get");
        d.status.and_then(|s| s.replicas).unwrap_or(0) == 0
    })
    .await;
    let refused = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        "sim",
        1,
        &Default::default(),
        &Clock::system(),
    )
    .await
    .refusals;
    let steady = refused
        .iter()
        .any(|r| r.starts_with("steady state `checkout answers` does not hold: 503"));
    assert!(steady, "{refused:?}");
    // Terminating pods are still candidates, excluded as not Ready; gone pods are not.
    let empty = refused.iter().any(|r| r.starts_with("podKill: nothing to act on ("));
    assert!(empty, "{refused:?}");
}

/// Sets `pod-security.kubernetes.io/enforce` on the shop namespace.
async fn enforce(client: &kube::Client, level: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let patch = serde_json::json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}});
    Api::<Namespace>::all(client.clone())
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label the namespace");
}

#[tokio::test]
async fn plan_shows_the_ephemeral_container_and_whether_pod_security_admits_it() {
    let (sim, client) = shop(Sim::builder()).await;
    let before = sim.resource_version();
    let latency = scenario("scenarios/frontend-latency.yaml");
    let planned = plan(&client, &latency, "sim", 1, &with_prometheus(), &Clock::system()).await;
    assert!(planned.runnable, "{:?}", planned.refusals);
    let step = &planned.faults[0].steps[0];
    let Action::InPod { container, .. } = &step.action else {
        panic!("an in-pod action: {step:?}");
    };
    assert_eq!(container["image"], "docker.io/nicolaka/netshoot:v0.13");
    assert_eq!(
        container["securityContext"]["capabilities"]["add"],
        serde_json::json!(["NET_ADMIN"])
    );
    let env = |name: &str| {
        container["env"]
            .as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == name))
            .map(|v| v["value"].clone())
    };
    assert_eq!(env("DISASTERPIECE_NETEM"), Some("delay 200ms 50ms 25%".into()));
    assert_eq!(env("DISASTERPIECE_CIDR"), Some("10.96.0.0/12".into()));
    assert!(
        step.does
            .contains("tc netem delay 200ms 50ms 25% on eth0 to 10.96.0.0/12 port 8080 for 5m"),
        "{}",
        step.does
    );
    assert!(
        step.undone_by[0].starts_with("send TERM to ephemeral container"),
        "{:?}",
        step.undone_by
    );
    // A global image is used when the scenario names none.
    let mirrored = plan(
        &client,
        &latency,
        "sim",
        1,
        &PlanOptions {
            fault_image: Some("registry.local/netshoot:v0.13".into()),
            ..Default::default()
        },
        &Clock::system(),
    )
    .await;
    let Action::InPod { container, .. } = &mirrored.faults[0].steps[0].action else {
        panic!("an in-pod action");
    };
    assert_eq!(container["image"], "registry.local/netshoot:v0.13");
    // A plan for its own sake names its objects `<scenario>-plan`; a run's preflight names
    // them as the run would, so its report never speaks of the dry run's objects.
    assert_eq!(
        env("DISASTERPIECE_EXERCISE"),
        Some(format!("{}-plan", latency.metadata.name).into())
    );
    let for_a_run = plan(
        &client,
        &latency,
        "sim",
        1,
        &PlanOptions {
            exercise: Some("latency-1".into()),
            ..Default::default()
        },
        &Clock::system(),
    )
    .await;
    let step = &for_a_run.faults[0].steps[0];
    let Action::InPod { container, .. } = &step.action else {
        panic!("an in-pod action");
    };
    assert!(
        container["env"].as_array().is_some_and(|e| e
            .iter()
            .any(|v| v["name"] == "DISASTERPIECE_EXERCISE" && v["value"] == "latency-1")),
        "{container}"
    );
    // The container the report would name is the one the run adds.
    let name = container["name"].as_str().expect("a container name");
    assert!(
        name.contains("latency-1") && step.does.contains(name),
        "{name}: {}",
        step.does
    );
    assert_eq!(sim.resource_version(), before, "plan changed the cluster");

    // PodSecurity baseline refuses NET_ADMIN, and the plan says so up front.
    enforce(&client, "baseline").await;
    let refused = plan(&client, &latency, "sim", 1, &Default::default(), &Clock::system()).await;
    assert!(!refused.runnable);
    assert!(
        refused.refusals.iter().any(|r| r
            .contains("violates PodSecurity \"baseline:latest\": non-default capabilities")
            && r.contains("must not include \"NET_ADMIN\" in securityContext.capabilities.add")),
        "{:?}",
        refused.refusals
    );
    // The stress faults need no privilege: `restricted` admits them.
    enforce(&client, "restricted").await;
    let stress = scenario_named("scenarios/resource-stress.yaml", "checkout-cpu-stress");
    let admitted = plan(&client, &stress, "sim", 1, &Default::default(), &Clock::system()).await;
    assert!(admitted.runnable, "{:?}", admitted.refusals);
    let container_kill = scenario("scenarios/orders-db-container-kill.yaml");
    let refused = plan(
        &client,
        &container_kill,
        "sim",
        1,
        &Default::default(),
        &Clock::system(),
    )
    .await;
    assert!(
        refused.refusals.iter().any(
            |r| r.contains("violates PodSecurity \"restricted:latest\"") && r.contains("must not include \"KILL\"")
        ),
        "{:?}",
        refused.refusals
    );
}

#[tokio::test]
async fn an_in_pod_fault_without_exec_permission_is_refused() {
    let (_sim, client) = shop(Sim::builder().deny("create", "pods/exec")).await;
    let planned = plan(
        &client,
        &scenario("scenarios/payments-packet-loss.yaml"),
        "sim",
        1,
        &Default::default(),
        &Clock::system(),
    )
    .await;
    assert!(
        planned.refusals.iter().any(|r| r.contains("create pods/exec in shop")),
        "{:?}",
        planned.refusals
    );
}

/// RBAC allows the exec, but the API server cannot reach the kubelet: the revert could not stop
/// the fault early, so the plan refuses, with what to check — and no longer once the kubelet
/// answers.
#[tokio::test]
async fn an_in_pod_fault_whose_exec_cannot_reach_the_pod_is_refused() {
    let (sim, client) = shop(Sim::builder()).await;
    let packet_loss = scenario("scenarios/payments-packet-loss.yaml");
    let planned = |client: kube::Client, scenario: Scenario| async move {
        plan(&client, &scenario, "sim", 1, &Default::default(), &Clock::system()).await
    };
    sim.set_misbehaviour(&disasterpiece_sim::Misbehaviour {
        kubelet_unreachable: true,
        ..Default::default()
    });
    // Through the retrying client, as `plan` and `run` use it: the API server's words, at once
    // (a retried exec spent its 10 s bound in backoff and said only that it did not answer).
    let (retrying, _) =
        disasterpiece::engine::retry::retrying_client(sim.kube_config().await.expect("config")).expect("client");
    let refused = planned(retrying, packet_loss.clone()).await;
    assert!(!refused.runnable);
    assert!(
        refused
            .refusals
            .iter()
            .any(|r| r.contains("exec into the pod fails (error dialing backend")
                && r.contains("could not be stopped before its")
                && r.contains("port 10250")),
        "{:?}",
        refused.refusals
    );
    sim.set_misbehaviour(&Default::default());
    let answered = planned(client, packet_loss).await;
    assert!(
        !answered.refusals.iter().any(|r| r.contains("exec into the pod")),
        "{:?}",
        answered.refusals
    );
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run disasterpiece")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_command_exits_0_when_runnable_and_2_when_refused_or_invalid() {
    let (sim, client) = shop(Sim::builder()).await;
    let kubeconfig = sim.kubeconfig_path().to_str().expect("utf-8").to_owned();
    let runnable = tokio::task::spawn_blocking({
        let k = kubeconfig.clone();
        move || {
            cli(&[
                "plan",
                "scenarios/frontend-scale-down.yaml",
                "--kubeconfig",
                &k,
                "--output",
                "json",
                "--seed",
                "3",
            ])
        }
    })
    .await
    .expect("join");
    assert_eq!(
        runnable.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&runnable.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&runnable.stdout).expect("JSON");
    assert_eq!(json["runnable"], true);
    assert_eq!(
        json["faults"][0]["steps"][0]["does"],
        "scale Deployment shop/frontend from 3 to 1 replicas"
    );
    assert_eq!(
        json["faults"][0]["steps"][0]["undoneBy"][0],
        "scale Deployment shop/frontend back to 3"
    );

    enforce(&client, "baseline").await;
    let text = tokio::task::spawn_blocking({
        let k = kubeconfig.clone();
        move || cli(&["plan", "scenarios/frontend-latency.yaml", "--kubeconfig", &k])
    })
    .await
    .expect("join");
    assert_eq!(text.status.code(), Some(2));
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("Verdict: REFUSED") && out.contains("violates PodSecurity \"baseline:latest\""),
        "{out}"
    );

    let invalid = tokio::task::spawn_blocking(move || {
        cli(&[
            "plan",
            "scenarios/invalid/percent-typo.yaml",
            "--kubeconfig",
            &kubeconfig,
        ])
    })
    .await
    .expect("join");
    assert_eq!(invalid.status.code(), Some(2));
    let err = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        err.contains("percent-typo.yaml:8:23: spec.blastRadius.mode: unknown value `percnt`")
            && err.contains("nothing was sent to the cluster"),
        "{err}"
    );
}

#[test]
fn a_protected_namespace_given_with_namespace_is_refused_before_the_cluster_is_asked() {
    // No cluster at all: the refusal must come first.
    let output = cli(&[
        "plan",
        "scenarios/checkout-pod-loss.yaml",
        "--namespace",
        "kube-system",
        "--kubeconfig",
        "/nonexistent",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--namespace kube-system: namespace `kube-system` is protected"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_runs_no_command_probe_unless_told_to() {
    let (sim, _client) = shop(Sim::builder()).await;
    let kubeconfig = sim.kubeconfig_path().to_str().expect("utf-8").to_owned();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("plan-commands-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let marker = dir.join("ran");
    let file = dir.join("scenario.yaml");
    // A scenario from someone else's pull request: its steady state "checks" by writing a file.
    std::fs::write(
        &file,
        format!(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: sneaky}}
spec:
  hypothesis: The frontend copes with one replica.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  faults: [{{scale: {{replicas: 1}}}}]
  duration: 1m
  steadyState:
    - {{name: looks harmless, command: {{run: [touch, '{}']}}}}
  expect:
    - {{name: one left, kube: {{readyReplicas: {{atLeast: 1}}}}, throughout: true}}
",
            marker.display()
        ),
    )
    .expect("write the scenario");
    let path = file.to_str().expect("utf-8").to_owned();
    let plan = |extra: Option<&'static str>| {
        let (k, p) = (kubeconfig.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["plan", p.as_str(), "--kubeconfig", k.as_str()];
            args.extend(extra);
            cli(&args)
        })
    };
    let without = plan(None).await.expect("join");
    let out = String::from_utf8_lossy(&without.stdout).into_owned() + &String::from_utf8_lossy(&without.stderr);
    assert!(!marker.exists(), "plan ran the command: {out}");
    assert_eq!(without.status.code(), Some(2), "{out}");
    assert!(
        out.contains("not run: command probes are off here") && out.contains("--run-commands"),
        "{out}"
    );

    let with = plan(Some("--run-commands")).await.expect("join");
    let out = String::from_utf8_lossy(&with.stdout).into_owned() + &String::from_utf8_lossy(&with.stderr);
    assert!(marker.exists(), "asked to, plan runs it: {out}");
    assert_eq!(with.status.code(), Some(0), "{out}");
}

/// A drain reaches every pod of its node: `plan` lists each one it would evict and each one it
/// spares, with the reason, and still changes nothing.
#[tokio::test]
async fn plan_lists_every_pod_a_drain_would_evict_and_each_it_spares() {
    use k8s_openapi::api::core::v1::Pod;
    let (sim, client) = shop(Sim::builder()).await;
    let drain = scenario("scenarios/node-drain.yaml");
    let first = plan(&client, &drain, "sim", 1, &Default::default(), &Clock::system()).await;
    let node = first.faults[0].chosen[0].name.clone();
    // A pod no controller would recreate, on the node the seed chooses.
    let bare: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "lonely", "namespace": "shop"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.example.com/x:1"}]}}))
    .expect("pod");
    kube::Api::<Pod>::namespaced(client.clone(), "shop")
        .create(&Default::default(), &bare)
        .await
        .expect("bare pod");
    // The simulated kubelet starts it; then the cluster is still.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    let planned = plan(&client, &drain, "sim", 1, &Default::default(), &Clock::system()).await;
    assert_eq!(sim.resource_version(), before, "plan wrote nothing");
    let step = &planned.faults[0].steps[0];
    assert_eq!(
        planned.faults[0].chosen[0].name, node,
        "the same seed chooses the same node"
    );
    let lonely = step.pods.iter().find(|f| f.pod == "shop/lonely").expect("listed");
    assert_eq!(lonely.spared.as_deref(), Some("no controller would recreate it"));
    assert!(
        step.pods
            .iter()
            .any(|f| f.spared.is_none() && f.pod.starts_with("shop/")),
        "{:?}",
        step.pods
    );
    let json = serde_json::to_value(&planned).expect("json");
    assert!(
        json.to_string()
            .contains("\"spared\":\"no controller would recreate it\""),
        "{json}"
    );
}

/// `--namespace` moves the probes that watched the target's namespace along with it, and says
/// so: a dev run must not measure prod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_override_moves_the_probes_and_plan_says_which() {
    let (sim, _client) = shop(Sim::builder()).await;
    let kubeconfig = sim.kubeconfig_path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
            .args([
                "plan",
                "scenarios/checkout-pod-loss.yaml",
                "--namespace",
                "shop-dev",
                "--kubeconfig",
            ])
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .output()
            .expect("plan")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--namespace shop-dev: probe `checkout answers`: http://checkout.shop.svc/healthz → http://checkout.shop-dev.svc/healthz"),
        "{stderr}"
    );
    // shop-dev does not exist in the simulator: the plan is refused, and nothing reads shop.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("checkout.shop.svc"), "{stdout}");
}

/// An identity granted exactly the objects the run touches (`resourceNames`) may run it: the
/// plan asks for the namespace and the kill switch by name, as the run reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_accepts_an_identity_granted_only_the_named_objects_it_reads() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::DynamicObject;
    use kube::core::{ApiResource, GroupVersionKind};
    let (sim, admin) = shop(Sim::builder()).await;
    let create = |kind: &str, plural: &str, ns: Option<&str>, body: serde_json::Value| {
        let admin = admin.clone();
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind), plural);
        let ns = ns.map(str::to_owned);
        let kind = kind.to_owned();
        async move {
            let api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(admin, &ns, &resource),
                None => Api::all_with(admin, &resource),
            };
            api.create(&Default::default(), &serde_json::from_value(body).expect("object"))
                .await
                .unwrap_or_else(|e| panic!("create {kind}: {e}"));
        }
    };
    let system: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "disasterpiece-system"}})).expect("ns");
    Api::<Namespace>::all(admin.clone())
        .create(&Default::default(), &system)
        .await
        .expect("namespace");
    let account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "narrow"}})).expect("sa");
    Api::namespaced(admin.clone(), "shop")
        .create(&Default::default(), &account)
        .await
        .expect("service account");
    let subject = serde_json::json!([{"kind": "ServiceAccount", "name": "narrow", "namespace": "shop"}]);
    let role_ref = |kind: &str, name: &str| serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
    // In shop: what a pod kill needs.
    create("Role", "roles", Some("shop"), serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "narrow", "namespace": "shop"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list"]}]})).await;
    create("RoleBinding", "rolebindings", Some("shop"), serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "narrow", "namespace": "shop"}, "roleRef": role_ref("Role", "narrow"), "subjects": subject})).await;
    // Cluster-wide: shop's Namespace object only, and access reviews.
    create(
        "ClusterRole",
        "clusterroles",
        None,
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "narrow"}, "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["shop"], "verbs": ["get"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]}]}),
    )
    .await;
    create(
        "ClusterRoleBinding",
        "clusterrolebindings",
        None,
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "narrow"}, "roleRef": role_ref("ClusterRole", "narrow"), "subjects": subject}),
    )
    .await;
    // The kill switch, and nothing else there.
    create("Role", "roles", Some("disasterpiece-system"), serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "killswitch", "namespace": "disasterpiece-system"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["disasterpiece-killswitch"], "verbs": ["get"]}]})).await;
    create("RoleBinding", "rolebindings", Some("disasterpiece-system"), serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "killswitch", "namespace": "disasterpiece-system"}, "roleRef": role_ref("Role", "killswitch"), "subjects": subject})).await;

    let narrow = sim.service_account_client("shop", "narrow").await.expect("token");
    let scenario = scenario("scenarios/demo-checkout-pod-loss.yaml");
    let planned = plan(&narrow, &scenario, "sim", 1, &Default::default(), &Clock::system()).await;
    assert!(planned.runnable, "{:?}", planned.refusals);
    let named: Vec<String> = planned
        .permissions
        .iter()
        .filter(|p| !p.permission.name.is_empty())
        .map(|p| p.permission.describe())
        .collect();
    assert!(
        named.contains(&"get namespaces shop cluster-wide".to_owned()),
        "{named:?}"
    );
    assert!(
        named.contains(&"get configmaps disasterpiece-killswitch in disasterpiece-system".to_owned()),
        "{named:?}"
    );
}

/// A stress fault in pods without limits takes from the node, not from the pod's share: plan
/// says so. A container name the pod already holds would be refused (422): plan refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_warns_of_unbounded_stress_and_refuses_a_name_the_pod_holds() {
    let (sim, client) = shop(Sim::builder()).await;
    let yaml = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: frontend-cpu}
spec:
  hypothesis: Frontend keeps up under CPU pressure.
  target: {namespace: shop, kind: Deployment, name: frontend}
  blastRadius: {mode: one}
  faults: [{cpuStress: {workers: 4, load: 100}}]
  duration: 30s
  expect:
    - {name: some ready, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
";
    let stress = common::parse(yaml);
    let planned = plan(&client, &stress, "sim", 1, &Default::default(), &Clock::system()).await;
    assert!(planned.runnable, "{:?}", planned.refusals);
    let fault = &planned.faults[0];
    assert!(
        fault
            .warnings
            .iter()
            .any(|w| w.contains("has no CPU limit") && w.contains("4 cores")),
        "{:?}",
        fault.warnings
    );
    let file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("plan-stress-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml).expect("write");
    let kubeconfig = sim.kubeconfig_path().to_str().expect("utf-8").to_owned();
    let shown = cli(&["plan", file.to_str().expect("utf-8"), "--kubeconfig", &kubeconfig]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("  warning   pod shop/frontend-"), "{text}");

    let Action::InPod { pod, container, .. } = &fault.steps[0].action else {
        panic!("in-pod: {:?}", fault.steps[0].action)
    };
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "shop");
    let taken = json!({"spec": {"ephemeralContainers": [{"name": container["name"], "image": "busybox"}]}});
    pods.patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(&taken))
        .await
        .expect("add a container by that name");
    let refused = plan(&client, &stress, "sim", 1, &Default::default(), &Clock::system()).await;
    assert!(!refused.runnable);
    assert!(
        refused
            .refusals
            .iter()
            .any(|r| r.contains("already has an ephemeral container named")),
        "{:?}",
        refused.refusals
    );
}
