//! Target resolution and each fault against the simulator: the effect is visible, then the
//! revert puts everything back, and running the revert twice changes nothing more.

use std::time::Duration;

use disasterpiece::blast_radius::guard::{Exclusion, decide};
use disasterpiece::blast_radius::resolve::resolve;
use disasterpiece::blast_radius::{Candidate, Unit};
use disasterpiece::fault::{self, Context, Outcome, Undo};
use disasterpiece::scenario::model::{
    BlastRadius, BlastRadiusMode, Fault, FaultKind, LabelSelector, NetworkPartition, NodeCordon, NodeDrain, PodEvict,
    PodKill, Scale, Target, TargetKind,
};
use disasterpiece_sim::Sim;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

mod common;
use common::{eventually, fast_shop, start};

async fn shop() -> (Sim, Client) {
    start(fast_shop()).await
}

fn ctx(client: &Client, dry_run: bool) -> Context {
    Context {
        client: client.clone(),
        exercise: "ex-test".into(),
        dry_run,
        in_pod: Default::default(),
        clock: Default::default(),
    }
}

fn deployment(name: &str) -> Target {
    Target {
        namespace: Some("shop".into()),
        kind: TargetKind::Deployment,
        name: Some(name.into()),
        selector: None,
    }
}

async fn one_pod(client: &Client, workload: &str) -> Candidate {
    let resolved = resolve(client, &deployment(workload), Unit::Pod)
        .await
        .expect("resolve");
    resolved.candidates.into_iter().find(|c| c.ready).expect("a ready pod")
}

async fn inject_and_revert(c: &Context, fault: FaultKind<'_>, target: &Candidate) -> Vec<Undo> {
    let prepared = fault::prepare(c, fault, target).await.expect("prepare");
    assert_eq!(fault::apply(c, &prepared).await.expect("apply"), Outcome::Injected);
    prepared.undo
}

async fn revert_all(c: &Context, undo: &[Undo]) {
    for step in undo {
        fault::revert(c, step).await.expect("revert");
    }
}

#[tokio::test]
async fn resolve_reads_pods_with_their_workload_budget_and_health() {
    let (_sim, client) = shop().await;
    let resolved = resolve(&client, &deployment("checkout"), Unit::Pod)
        .await
        .expect("resolve");
    assert_eq!(resolved.candidates.len(), 3);
    assert!(
        resolved
            .candidates
            .iter()
            .all(|c| c.ready && c.workload.as_deref() == Some("Deployment/checkout") && c.node.is_some())
    );
    assert_eq!(
        resolved.candidates[0]
            .budget
            .as_ref()
            .map(|b| (b.name.as_str(), b.disruptions_allowed)),
        Some(("checkout", 1))
    );
    assert_eq!(resolved.health.ready_pods["Deployment/checkout"], 3);
    // The shop's checkout PDB (minAvailable 2) lets the guard take one pod of three.
    let decision = decide(
        Unit::Pod,
        &resolved.candidates,
        &BlastRadius {
            mode: BlastRadiusMode::All,
            ..BlastRadius::default()
        },
        &resolved.health,
    );
    assert_eq!(decision.chosen.len(), 1);
    assert_eq!(
        decision.excluded[0].1,
        Exclusion::NoBudgetHeadroom {
            budget: "checkout".into()
        }
    );

    let by_selector = Target {
        selector: Some(LabelSelector {
            match_labels: [("topology.kubernetes.io/zone".to_owned(), "zone-a".to_owned())].into(),
            ..LabelSelector::default()
        }),
        name: None,
        namespace: None,
        kind: TargetKind::Node,
    };
    let nodes = resolve(&client, &by_selector, Unit::Node).await.expect("nodes");
    assert_eq!(
        nodes.candidates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["sim-node-1", "sim-node-2"]
    );
    assert_eq!(nodes.health.ready_nodes, 3);
    let missing = resolve(&client, &deployment("nope"), Unit::Pod)
        .await
        .expect_err("missing");
    assert_eq!(missing.to_string(), "Deployment nope not found");
}

#[tokio::test]
async fn pod_kill_deletes_the_pod_and_the_deployment_replaces_it() {
    let (_sim, client) = shop().await;
    let target = one_pod(&client, "checkout").await;
    let c = ctx(&client, false);
    let undo = inject_and_revert(
        &c,
        FaultKind::PodKill(&PodKill {
            grace_period_seconds: Some(0),
        }),
        &target,
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    assert!(pods.get_opt(&target.name).await.expect("get").is_none());
    assert!(matches!(undo.as_slice(), [Undo::Nothing { .. }]));
    eventually("checkout has three ready pods again", || async {
        resolve(&client, &deployment("checkout"), Unit::Pod)
            .await
            .expect("resolve")
            .health
            .ready_pods["Deployment/checkout"]
            == 3
    })
    .await;
}

#[tokio::test]
async fn pod_evict_reports_a_pdb_refusal_as_protected_not_as_an_error() {
    let (_sim, client) = shop().await;
    let c = ctx(&client, false);
    let pods = resolve(&client, &deployment("payments"), Unit::Pod)
        .await
        .expect("resolve")
        .candidates; // 2 pods, minAvailable 1
    let evict = PodEvict {
        grace_period_seconds: Some(30),
    };
    let first = fault::prepare(&c, FaultKind::PodEvict(&evict), &pods[0])
        .await
        .expect("prepare");
    assert_eq!(fault::apply(&c, &first).await.expect("first"), Outcome::Injected);
    let second = fault::prepare(&c, FaultKind::PodEvict(&evict), &pods[1])
        .await
        .expect("prepare");
    match fault::apply(&c, &second).await.expect("a refusal is not an error") {
        Outcome::NotInjected { reason } => assert!(
            reason.starts_with("protected by PDB: The disruption budget payments needs 1 healthy pods"),
            "{reason}"
        ),
        other => panic!("expected a PDB refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn scale_holds_the_new_count_and_revert_restores_the_previous_one() {
    let (_sim, client) = shop().await;
    let c = ctx(&client, false);
    let workloads = resolve(&client, &deployment("frontend"), Unit::Workload)
        .await
        .expect("resolve")
        .candidates;
    let undo = inject_and_revert(&c, FaultKind::Scale(&Scale { replicas: 1 }), &workloads[0]).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(1));
    assert_eq!(
        undo,
        [Undo::SetReplicas {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "frontend".into(),
            replicas: 3
        }]
    );
    revert_all(&c, &undo).await;
    revert_all(&c, &undo).await; // idempotent
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    eventually("frontend is back to three ready pods", || async {
        resolve(&client, &deployment("frontend"), Unit::Pod)
            .await
            .expect("resolve")
            .health
            .ready_pods["Deployment/frontend"]
            == 3
    })
    .await;
}

fn node(name: &str) -> Target {
    Target {
        namespace: None,
        kind: TargetKind::Node,
        name: Some(name.into()),
        selector: None,
    }
}

async fn unschedulable(client: &Client, name: &str) -> bool {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.get(name).await.expect("node").spec.and_then(|s| s.unschedulable) == Some(true)
}

#[tokio::test]
async fn node_cordon_is_undone_and_an_already_cordoned_node_is_refused() {
    let (_sim, client) = shop().await;
    let c = ctx(&client, false);
    let target = resolve(&client, &node("sim-node-2"), Unit::Node)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let undo = inject_and_revert(&c, FaultKind::NodeCordon(&NodeCordon {}), &target).await;
    assert!(unschedulable(&client, "sim-node-2").await);
    let again = fault::prepare(&c, FaultKind::NodeCordon(&NodeCordon {}), &target)
        .await
        .expect_err("cordoned already");
    assert!(again.to_string().contains("already cordoned"), "{again}");
    revert_all(&c, &undo).await;
    revert_all(&c, &undo).await;
    assert!(!unschedulable(&client, "sim-node-2").await);
}

#[tokio::test]
async fn node_drain_empties_the_node_and_revert_uncordons_it() {
    let (_sim, client) = shop().await;
    let c = ctx(&client, false);
    let target = resolve(&client, &node("sim-node-3"), Unit::Node)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let drain = NodeDrain {
        grace_period_seconds: Some(0),
        timeout: Some("30s".parse().expect("duration")),
    };
    // What a drain must leave: a pod no controller would recreate, a pod in a protected
    // namespace, and a pod opted out with disasterpiece.dev/exclude=true.
    let bare = |ns: &str, name: &str| -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": "sim-node-3", "containers": [{"name": "c", "image": "registry.example.com/x:1"}]}}))
        .expect("pod")
    };
    let pp = kube::api::PostParams::default();
    Api::<Pod>::namespaced(client.clone(), "shop")
        .create(&pp, &bare("shop", "lonely"))
        .await
        .expect("bare pod");
    Api::<Pod>::namespaced(client.clone(), "kube-system")
        .create(&pp, &bare("kube-system", "system-agent"))
        .await
        .expect("kube-system pod");
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = || async {
        pods.list(&ListParams::default().fields("spec.nodeName=sim-node-3"))
            .await
            .expect("list")
            .items
    };
    let opted_out = on_node()
        .await
        .into_iter()
        .find(|p| p.owner_references().iter().any(|o| o.controller == Some(true)))
        .expect("a pod with a controller on sim-node-3");
    Api::<Pod>::namespaced(client.clone(), "shop")
        .patch(
            &opted_out.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"disasterpiece.dev/exclude": "true"}}})),
        )
        .await
        .expect("opt out");
    // What `plan` shows first: every pod of the node, evicted or spared, with the reason.
    let survey = disasterpiece::fault::node_drain::survey(&client, "sim-node-3")
        .await
        .expect("survey");
    let why = |pod: &str| {
        survey
            .iter()
            .find(|f| f.pod == pod)
            .and_then(|f| f.spared.clone())
            .unwrap_or_default()
    };
    assert_eq!(why("shop/lonely"), "no controller would recreate it");
    assert_eq!(why("kube-system/system-agent"), "in a protected namespace");
    assert_eq!(
        why(&format!("shop/{}", opted_out.name_any())),
        "opted out (label disasterpiece.dev/exclude=true)"
    );
    let mut would_evict: Vec<String> = (survey.iter())
        .filter(|f| f.spared.is_none())
        .map(|f| f.pod.clone())
        .collect();
    assert!(!would_evict.is_empty(), "{survey:?}");
    let prepared = fault::prepare(&c, FaultKind::NodeDrain(&drain), &target)
        .await
        .expect("prepare");
    // And what the report lists after: exactly the pods the survey said.
    let Outcome::Evicted { pods: mut evicted } = fault::apply(&c, &prepared).await.expect("apply") else {
        panic!("a drain says what it evicted");
    };
    evicted.sort();
    would_evict.sort();
    assert_eq!(evicted, would_evict);
    let undo = prepared.undo;
    let mut kept: Vec<String> = on_node()
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    kept.sort();
    let mut spared = vec!["lonely".to_owned(), "system-agent".to_owned(), opted_out.name_any()];
    spared.sort();
    assert_eq!(kept, spared, "every other pod is evicted; these are spared");
    assert!(unschedulable(&client, "sim-node-3").await);
    revert_all(&c, &undo).await;
    assert!(!unschedulable(&client, "sim-node-3").await);
}

#[tokio::test]
async fn network_partition_cuts_one_pod_and_revert_removes_policy_and_label() {
    let (_sim, client) = shop().await;
    let c = ctx(&client, false);
    let target = one_pod(&client, "checkout").await;
    let undo = inject_and_revert(&c, FaultKind::NetworkPartition(&NetworkPartition::default()), &target).await;
    let policies = common::shop_policies(&client);
    let listed = policies
        .list(&ListParams::default().labels("disasterpiece.dev/exercise=ex-test"))
        .await
        .expect("list")
        .items;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].data["spec"]["podSelector"]["matchLabels"]["partition.disasterpiece.dev/ex-test"],
        "true"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let selected = pods
        .list(&ListParams::default().labels("partition.disasterpiece.dev/ex-test=true"))
        .await
        .expect("list")
        .items;
    let selected: Vec<String> = selected.iter().map(|p| p.name_any()).collect();
    assert_eq!(
        selected,
        std::slice::from_ref(&target.name),
        "the policy selects that pod alone"
    );
    revert_all(&c, &undo).await;
    revert_all(&c, &undo).await;
    assert!(
        policies
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(
        pods.get(&target.name)
            .await
            .expect("pod")
            .labels()
            .get("partition.disasterpiece.dev/ex-test")
            .is_none()
    );
}

#[tokio::test]
async fn dry_run_sends_every_fault_and_changes_nothing() {
    let (sim, client) = shop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    let c = ctx(&client, true);
    let pod = one_pod(&client, "checkout").await;
    let workload = resolve(&client, &deployment("frontend"), Unit::Workload)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let node3 = resolve(&client, &node("sim-node-3"), Unit::Node)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let faults = [
        (
            Fault {
                pod_kill: Some(PodKill::default()),
                ..Fault::default()
            },
            &pod,
        ),
        (
            Fault {
                pod_evict: Some(PodEvict::default()),
                ..Fault::default()
            },
            &pod,
        ),
        (
            Fault {
                network_partition: Some(NetworkPartition::default()),
                ..Fault::default()
            },
            &pod,
        ),
        (
            Fault {
                scale: Some(Scale { replicas: 0 }),
                ..Fault::default()
            },
            &workload,
        ),
        (
            Fault {
                node_cordon: Some(NodeCordon {}),
                ..Fault::default()
            },
            &node3,
        ),
        (
            Fault {
                node_drain: Some(NodeDrain::default()),
                ..Fault::default()
            },
            &node3,
        ),
    ];
    for (f, target) in &faults {
        let kind = f.kind().expect("one kind");
        let prepared = fault::prepare(&c, kind, target).await.expect("prepare");
        let outcome = fault::apply(&c, &prepared).await.expect("dry run");
        assert!(
            matches!(outcome, Outcome::Injected | Outcome::Evicted { .. }),
            "{}: {outcome:?}",
            prepared.action
        );
        revert_all(&c, &prepared.undo).await;
    }
    assert_eq!(sim.resource_version(), before, "a dry run writes nothing");
}

#[tokio::test]
async fn dns_failure_blocks_port_53_for_one_pod_and_revert_removes_policy_and_label() {
    use common::http_status;
    use k8s_openapi::api::apps::v1::Deployment as D;
    let (_sim, client) = shop().await;
    let c = ctx(&client, false);
    let target = one_pod(&client, "checkout").await;
    let undo = inject_and_revert(
        &c,
        FaultKind::DnsFailure(&disasterpiece::scenario::model::DnsFailure {}),
        &target,
    )
    .await;
    let policies = common::shop_policies(&client);
    let listed = policies.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].data["spec"]["policyTypes"], serde_json::json!(["Egress"]));
    let allowed: Vec<(u64, u64)> = listed[0].data["spec"]["egress"][0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["port"].as_u64().unwrap_or(0), p["endPort"].as_u64().unwrap_or(0)))
        .collect();
    assert!(
        allowed.iter().all(|(a, b)| !(a..=b).contains(&&53)),
        "port 53 stays blocked: {allowed:?}"
    );
    // One checkout pod in three cannot resolve names: some requests fail with 502.
    let url = Api::<D>::namespaced(client.clone(), "shop")
        .get("checkout")
        .await
        .expect("get")
        .annotations()["sim.disasterpiece.dev/url"]
        .clone();
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(http_status(&url, "/").await);
    }
    assert!(codes.contains(&Some(502)) && codes.contains(&Some(200)), "{codes:?}");
    revert_all(&c, &undo).await;
    revert_all(&c, &undo).await;
    common::assert_no_policy_nor_label(&client, "dns-failure.disasterpiece.dev").await;
    eventually("every request answers 200 again", || async {
        let mut all = true;
        for _ in 0..3 {
            all &= http_status(&url, "/").await == Some(200);
        }
        all
    })
    .await;
}

/// Two exercises partition one pod: each labels it with a key of its own, so the first one's
/// revert leaves the second one's fault in place (before, both used one key: the second
/// relabelled the pod out of the first one's policy, and the first one's revert removed the
/// label the second one's policy selected).
#[tokio::test]
async fn two_exercises_partitioning_one_pod_never_end_each_others_fault() {
    let (_sim, client) = shop().await;
    let target = one_pod(&client, "checkout").await;
    let a = Context {
        exercise: "ex-a".into(),
        ..ctx(&client, false)
    };
    let b = Context {
        exercise: "ex-b".into(),
        ..ctx(&client, false)
    };
    let undo_a = inject_and_revert(&a, FaultKind::NetworkPartition(&NetworkPartition::default()), &target).await;
    let undo_b = inject_and_revert(&b, FaultKind::NetworkPartition(&NetworkPartition::default()), &target).await;
    revert_all(&a, &undo_a).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let labels = pods.get(&target.name).await.expect("pod").labels().clone();
    assert_eq!(
        labels.get("partition.disasterpiece.dev/ex-b").map(String::as_str),
        Some("true")
    );
    assert!(!labels.contains_key("partition.disasterpiece.dev/ex-a"));
    let policies = common::shop_policies(&client);
    let left = policies
        .list(&ListParams::default().labels("disasterpiece.dev/exercise=ex-b"))
        .await
        .expect("list")
        .items;
    assert_eq!(left.len(), 1, "ex-b's policy is still in place");
    revert_all(&b, &undo_b).await;
    common::assert_no_policy_nor_label(&client, "partition.disasterpiece.dev").await;
}

#[test]
fn label_keys_stay_valid_and_distinct_for_long_exercise_names() {
    use disasterpiece::fault::network_partition::label_key;
    let long_a = format!("{}-a", "x".repeat(200));
    let long_b = format!("{}-b", "x".repeat(200));
    let (ka, kb) = (
        label_key("partition.disasterpiece.dev", &long_a),
        label_key("partition.disasterpiece.dev", &long_b),
    );
    assert_ne!(ka, kb);
    for key in [&ka, &kb] {
        let name = key.split_once('/').expect("prefix/name").1;
        assert!(
            name.len() <= 63 && disasterpiece_common::names::is_dns_label(name),
            "{key}"
        );
    }
    assert_eq!(
        label_key("partition.disasterpiece.dev", "ex-1"),
        "partition.disasterpiece.dev/ex-1"
    );
}
