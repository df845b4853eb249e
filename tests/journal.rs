//! The journal makes faults outlive nothing: a run that dies leaves a journal, and recovery
//! reverts everything it records — once.

use std::time::Duration;

use chrono::Utc;
use disasterpiece::blast_radius::Unit;
use disasterpiece::blast_radius::resolve::resolve;
use disasterpiece::clock::Clock;
use disasterpiece::engine::journal::{Journal, State};
use disasterpiece::engine::recovery::recover_lapsed;
use disasterpiece::fault::{self, Context};
use disasterpiece::scenario::model::{FaultKind, NetworkPartition, NodeCordon, Scale, Target, TargetKind};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams};

mod common;
use common::{fast_shop, start};

fn target(kind: TargetKind, name: &str) -> Target {
    let namespace = (kind != TargetKind::Node).then(|| "shop".to_owned());
    Target {
        namespace,
        kind,
        name: Some(name.into()),
        selector: None,
    }
}

#[tokio::test]
async fn a_dead_run_is_recovered_exactly_once() {
    let (sim, client) = start(fast_shop()).await;
    let ctx = Context {
        client: client.clone(),
        exercise: "ex-dead".into(),
        dry_run: false,
        in_pod: Default::default(),
        clock: Default::default(),
    };
    let journal = Journal::open(&client, "shop", "ex-dead", "mixed", &Clock::system())
        .await
        .expect("journal");
    let expires = Utc::now() + chrono::Duration::minutes(2);

    let workload = resolve(&client, &target(TargetKind::Deployment, "payments"), Unit::Workload)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let pod = resolve(&client, &target(TargetKind::Deployment, "checkout"), Unit::Pod)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let node = resolve(&client, &target(TargetKind::Node, "sim-node-2"), Unit::Node)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let delayed = resolve(&client, &target(TargetKind::Deployment, "frontend"), Unit::Pod)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let scale = Scale { replicas: 0 };
    let partition = NetworkPartition::default();
    let delay = disasterpiece::scenario::model::NetworkDelay {
        latency: std::time::Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    let faults = [
        (FaultKind::NetworkDelay(&delay), &delayed),
        (FaultKind::Scale(&scale), &workload),
        (FaultKind::NetworkPartition(&partition), &pod),
        (FaultKind::NodeCordon(&NodeCordon {}), &node),
    ];
    for (kind, t) in faults {
        let prepared = fault::prepare(&ctx, kind, t).await.expect("prepare");
        let id = journal
            .intend(&t.display(), &prepared, expires)
            .await
            .expect("intend")
            .id;
        fault::apply(&ctx, &prepared).await.expect("apply");
        journal.mark(id, State::Applied).await.expect("mark");
    }
    // One more intended, never applied: the process "died" right after journaling it.
    let prepared = fault::prepare(
        &ctx,
        FaultKind::Scale(&Scale { replicas: 1 }),
        &resolve(&client, &target(TargetKind::Deployment, "frontend"), Unit::Workload)
            .await
            .expect("resolve")
            .candidates[0],
    )
    .await
    .expect("prepare");
    journal
        .intend("deployment shop/frontend", &prepared, expires)
        .await
        .expect("intend");
    assert_eq!(journal.entries().await.expect("entries").len(), 5);
    drop(journal); // the run dies: no revert, no close

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let nodes: Api<Node> = Api::all(client.clone());
    let policies = common::shop_policies(&client);
    assert_eq!(deployments.get("payments").await.expect("get").spec.replicas, Some(0));

    // A live journal (fresh heartbeat) is left alone.
    assert!(
        recover_lapsed(&client, None, "shop", Duration::from_secs(30), &Clock::system())
            .await
            .expect("recover")
            .is_empty()
    );
    // Once its heartbeat has lapsed, everything it records is put back.
    // This test keeps its Node step in the shop journal, so Node journals are trusted there.
    let recovered = recover_lapsed(&client, None, "shop", Duration::ZERO, &Clock::system())
        .await
        .expect("recover");
    assert_eq!(recovered.len(), 1);
    assert!(recovered[0].failed.is_empty(), "{:?}", recovered[0].failed);
    assert_eq!(recovered[0].reverted.len(), 6, "{:?}", recovered[0].reverted);
    // The in-pod delay was stopped by TERM, well before its own end.
    let stopped = Api::<Pod>::namespaced(client.clone(), "shop")
        .get(&delayed.name)
        .await
        .map(|p| serde_json::to_value(p.status).expect("json"))
        .expect("the delayed pod is still there");
    assert_eq!(
        stopped.pointer("/ephemeralContainerStatuses/0/state/terminated/message"),
        Some(&"netem removed from eth0".into()),
        "{stopped}"
    );
    assert_eq!(deployments.get("payments").await.expect("get").spec.replicas, Some(2));
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    assert_eq!(
        nodes
            .get("sim-node-2")
            .await
            .expect("node")
            .spec
            .and_then(|s| s.unschedulable),
        None
    );
    assert!(
        policies
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    let journals: Api<ConfigMap> = Api::all(client.clone());
    assert!(
        journals
            .list(&ListParams::default().labels("disasterpiece.dev/journal=true"))
            .await
            .expect("list")
            .items
            .is_empty(),
        "the journal is closed"
    );

    let before = sim.resource_version();
    assert!(
        recover_lapsed(&client, None, "shop", Duration::ZERO, &Clock::system())
            .await
            .expect("recover again")
            .is_empty()
    );
    assert_eq!(sim.resource_version(), before, "a second recovery changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recover_command_reverts_a_journal_left_ten_minutes_ago_then_finds_nothing() {
    use kube::api::{Patch, PatchParams, PostParams};
    let (sim, client) = start(fast_shop()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .patch_scale(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scale");
    let old = (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    let entries = serde_json::json!([{"id": 1, "target": "deployment shop/checkout", "state": "applied", "expires": old,
        "action": {"action": "scale", "kind": "Deployment", "namespace": "shop", "name": "checkout", "from": 3, "to": 1},
        "undo": [{"undo": "setReplicas", "kind": "Deployment", "namespace": "shop", "name": "checkout", "replicas": 3}]}]);
    let journal: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "disasterpiece-journal-ex-old", "labels": {"disasterpiece.dev/journal": "true", "disasterpiece.dev/exercise": "ex-old"},
            "annotations": {"disasterpiece.dev/heartbeat": old}},
        "data": {"entries": entries.to_string()},
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &journal)
        .await
        .expect("journal");

    let kubeconfig = sim.kubeconfig_path().to_owned();
    let recover = move || {
        let k = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
                .arg("recover")
                .arg("--kubeconfig")
                .arg(k)
                .env_remove("KUBECONFIG")
                .output()
                .expect("run")
        })
    };
    let first = recover().await.expect("join");
    let out = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{out}");
    assert!(
        out.contains("exercise ex-old (journal shop/disasterpiece-journal-ex-old):")
            && out.contains("reverted: scale Deployment shop/checkout back to 3")
            && out.contains("journal closed"),
        "{out}"
    );
    assert_eq!(deployments.get("checkout").await.expect("get").spec.replicas, Some(3));
    let second = recover().await.expect("join");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .split(" on ")
            .next(),
        Some("nothing to recover")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_journal_is_reported_and_every_other_dead_run_is_still_recovered() {
    use disasterpiece::engine::journal::{HEARTBEAT, JOURNAL_LABEL, LAPSE};
    use kube::api::PostParams;
    let (_sim, client) = start(fast_shop()).await;
    // A dead run's journal: frontend scaled to 1, never reverted.
    let ctx = Context {
        client: client.clone(),
        exercise: "ex-real".into(),
        dry_run: false,
        in_pod: Default::default(),
        clock: Default::default(),
    };
    let ten_minutes_ago = Clock::system().skewed(-chrono::Duration::minutes(10));
    let journal = Journal::open(&client, "shop", "ex-real", "scale", &ten_minutes_ago)
        .await
        .expect("journal");
    let workload = resolve(&client, &target(TargetKind::Deployment, "frontend"), Unit::Workload)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let prepared = fault::prepare(&ctx, FaultKind::Scale(&Scale { replicas: 1 }), &workload)
        .await
        .expect("prepare");
    let id = journal
        .intend(
            "deployment shop/frontend",
            &prepared,
            Utc::now() + chrono::Duration::minutes(2),
        )
        .await
        .expect("intend")
        .id;
    fault::apply(&ctx, &prepared).await.expect("apply");
    journal.mark(id, State::Applied).await.expect("mark");
    drop(journal);
    // And one planted by whoever may create ConfigMaps, that no one can read. Listed first.
    let planted: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "aaa-disasterpiece-journal-planted", "namespace": "default",
            "labels": {JOURNAL_LABEL: "true"},
            "annotations": {HEARTBEAT: "2000-01-01T00:00:00Z"}},
        "data": {"entries": "not json"},
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &planted)
        .await
        .expect("plant");

    let recovered = recover_lapsed(&client, None, "default", LAPSE, &Clock::system())
        .await
        .expect("recovery goes on past an unreadable journal");
    let bad = recovered
        .iter()
        .find(|r| r.journal == "aaa-disasterpiece-journal-planted")
        .expect("the unreadable journal is reported");
    assert!(
        bad.failed[0].starts_with("the journal cannot be read"),
        "{:?}",
        bad.failed
    );
    let good = recovered
        .iter()
        .find(|r| r.exercise == "ex-real")
        .expect("the real one");
    assert!(good.failed.is_empty(), "{:?}", good.failed);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    assert_eq!(
        deployments.get("frontend").await.expect("get").spec.replicas,
        Some(3),
        "reverted"
    );
    // The unreadable one is kept for a person to look at.
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .get("aaa-disasterpiece-journal-planted")
            .await
            .is_ok()
    );
}

/// Whoever may create ConfigMaps in a namespace can plant a journal there, and recovery runs
/// with the rights of whoever recovers (the controller: every namespace). A planted journal in
/// `default` that "undoes" by scaling `shop`'s frontend to 0 and uncordoning a node is
/// refused step by step, reported, kept, and changes nothing; `shop`'s own journal still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_journal_changes_nothing_outside_its_namespace_nor_any_node() {
    use disasterpiece::engine::journal::{HEARTBEAT, JOURNAL_LABEL, LAPSE};
    let (_sim, client) = common::start(common::fast_shop()).await;
    // A node an operator cordoned on purpose (maintenance): "uncordoning" it would be harm.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.list(&Default::default()).await.expect("nodes").items.remove(0);
    let node_name = node.metadata.name.clone().expect("name");
    nodes
        .patch(
            &node_name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("cordon");
    let entries = serde_json::json!([{
        "id": 1, "target": "deployment shop/frontend", "state": "applied",
        "expires": "2000-01-01T00:00:00Z",
        "action": {"action": "scale", "kind": "Deployment", "namespace": "shop", "name": "frontend", "from": 3, "to": 3},
        "undo": [
            {"undo": "setReplicas", "kind": "Deployment", "namespace": "shop", "name": "frontend", "replicas": 0},
            {"undo": "uncordon", "node": node_name},
        ],
    }]);
    let planted: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "disasterpiece-journal-planted", "namespace": "default",
            "labels": {JOURNAL_LABEL: "true", "disasterpiece.dev/exercise": "planted"},
            "annotations": {HEARTBEAT: "2000-01-01T00:00:00Z"}},
        "data": {"entries": entries.to_string()},
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&kube::api::PostParams::default(), &planted)
        .await
        .expect("plant");

    // Node journals are trusted in `disasterpiece-system` only (the controller's namespace).
    let recovered = recover_lapsed(&client, None, "disasterpiece-system", LAPSE, &Clock::system())
        .await
        .expect("recovery runs");
    let planted = recovered.iter().find(|r| r.exercise == "planted").expect("reported");
    assert!(planted.reverted.is_empty(), "{:?}", planted.reverted);
    assert_eq!(planted.failed.len(), 2, "{:?}", planted.failed);
    assert!(
        planted.failed[0].contains("a journal in namespace default may not change namespace shop"),
        "{:?}",
        planted.failed
    );
    assert!(
        planted.failed[1].contains("may not change Nodes"),
        "{:?}",
        planted.failed
    );
    let frontend = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("frontend")
        .await
        .expect("get");
    assert_eq!(frontend.spec.replicas, Some(3), "scaled by a planted journal");
    let node = nodes.get(&node_name).await.expect("node");
    assert_eq!(
        node.spec.and_then(|s| s.unschedulable),
        Some(true),
        "uncordoned by a planted journal"
    );
    // Kept for a person to look at.
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .get("disasterpiece-journal-planted")
            .await
            .is_ok()
    );
}
