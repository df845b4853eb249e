//! The embedded simulated cluster, driven by the real `kube::Client` over HTTP: every
//! behaviour the engine will rely on, as a cluster would show it.

use std::time::Duration;

use disasterpiece_sim::{Misbehaviour, Seed, Sim};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::json;

mod common;
use common::{eventually, fast_shop, http_body, http_status, start};

async fn shop() -> (Sim, Client) {
    start(fast_shop()).await
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn ready_pods(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list pods");
    list.items.into_iter().filter(ready).collect()
}

#[tokio::test]
async fn the_shop_seed_has_three_ready_deployments_a_statefulset_and_pdbs() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let mut seen = Vec::new();
    for d in deployments.list(&ListParams::default()).await.expect("list").items {
        let d = serde_json::to_value(&d).expect("json");
        let want = d["spec"]["replicas"].as_i64().expect("replicas");
        assert_eq!(d["status"]["readyReplicas"].as_i64(), Some(want), "{d}");
        let conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True"),
            "{d}"
        );
        seen.push((d["metadata"]["name"].as_str().unwrap_or_default().to_owned(), want));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![("checkout".into(), 3), ("frontend".into(), 3), ("payments".into(), 2)]
    );
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "shop");
    let db = sts.get("orders-db").await.expect("orders-db");
    assert_eq!(db.status.and_then(|s| s.ready_replicas), Some(3));
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "shop");
    assert_eq!(pdbs.list(&ListParams::default()).await.expect("pdbs").items.len(), 3);
    let nodes: Api<Node> = Api::all(client);
    assert_eq!(nodes.list(&ListParams::default()).await.expect("nodes").items.len(), 3);
}

#[tokio::test]
async fn a_deleted_pod_is_replaced_by_its_replicaset_and_becomes_ready() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let before = ready_pods(&pods, "app=checkout").await;
    assert_eq!(before.len(), 3);
    let victim = before[0].name_any();
    let owner = before[0].owner_references()[0].clone();
    assert_eq!(owner.kind, "ReplicaSet");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    let rs = replicasets.get(&owner.name).await.expect("owning replicaset");
    assert_eq!(rs.owner_references()[0].kind, "Deployment");

    pods.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    let status = api_error(pods.get(&victim).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, format!("pods \"{victim}\" not found"));
    eventually("checkout has three ready pods again", || async {
        let now = ready_pods(&pods, "app=checkout").await;
        now.len() == 3 && now.iter().all(|p| p.name_any() != victim)
    })
    .await;
    let replacement = ready_pods(&pods, "app=checkout")
        .await
        .into_iter()
        .find(|p| !before.iter().any(|b| b.name_any() == p.name_any()));
    let replacement = replacement.expect("a new pod");
    assert!(
        replacement.name_any().starts_with(&format!("{}-", owner.name)),
        "{}",
        replacement.name_any()
    );
    assert!(
        replacement.spec.as_ref().and_then(|s| s.node_name.clone()).is_some(),
        "the replacement is scheduled"
    );
}

/// A ReplicaSet's pods go through PodSecurity admission as a real controller's do: in a
/// namespace that enforces `restricted`, the shop's plain pods are not replaced until the
/// namespace allows them again.
#[tokio::test]
async fn pod_security_stops_a_replicaset_from_replacing_a_pod_it_would_refuse() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_sim, client) = shop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let enforce = |level: &str| json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}});
    namespaces
        .patch("shop", &PatchParams::default(), &Patch::Merge(enforce("restricted")))
        .await
        .expect("label");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let victim = ready_pods(&pods, "app=checkout").await[0].name_any();
    pods.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    // Several replace delays (200 ms each): the ReplicaSet tries, admission refuses.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left = pods
        .list(&ListParams::default().labels("app=checkout"))
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(left, 2, "a pod restricted PodSecurity refuses was created");
    namespaces
        .patch("shop", &PatchParams::default(), &Patch::Merge(enforce("privileged")))
        .await
        .expect("label");
    eventually("checkout has three ready pods again", || async {
        ready_pods(&pods, "app=checkout").await.len() == 3
    })
    .await;
}

#[tokio::test]
async fn graceful_deletion_marks_the_pod_then_removes_it_after_the_grace_period() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let victim = ready_pods(&pods, "app=payments").await[0].name_any();
    let deleted = pods
        .delete(&victim, &DeleteParams::default().grace_period(1))
        .await
        .expect("delete");
    let pending = deleted
        .left()
        .expect("a graceful deletion returns the object, not a Status");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(1));
    let still = pods.get(&victim).await.expect("still there during the grace period");
    assert!(still.metadata.deletion_timestamp.is_some());
    eventually("the pod is gone after its grace period", || async {
        pods.get_opt(&victim).await.expect("get").is_none()
    })
    .await;
}

#[tokio::test]
async fn a_statefulset_recreates_a_lost_pod_with_the_same_ordinal_name() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let old_uid = pods.get("orders-db-1").await.expect("orders-db-1").uid();
    pods.delete("orders-db-1", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    eventually("orders-db-1 is back and ready", || async {
        pods.get_opt("orders-db-1")
            .await
            .expect("get")
            .is_some_and(|p| ready(&p) && p.uid() != old_uid)
    })
    .await;
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app=orders-db"))
        .await
        .expect("list")
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(names, ["orders-db-0", "orders-db-1", "orders-db-2"]);
}

#[tokio::test]
async fn eviction_is_refused_with_429_when_the_budget_allows_no_disruption() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let payments = ready_pods(&pods, "app=payments").await; // 2 pods, minAvailable 1
    let first = pods
        .evict(&payments[0].name_any(), &EvictParams::default())
        .await
        .expect("the first eviction is allowed");
    assert!(first.is_success());
    let refused = api_error(pods.evict(&payments[1].name_any(), &EvictParams::default()).await);
    assert_eq!((refused.code, refused.reason.as_str()), (429, "TooManyRequests"));
    assert!(refused.message.contains("disruption budget"), "{}", refused.message);
    let cause = refused
        .details
        .and_then(|d| d.causes.into_iter().next())
        .expect("a cause");
    assert_eq!(cause.reason, "DisruptionBudget");
    assert!(
        pods.get(&payments[1].name_any())
            .await
            .expect("get")
            .metadata
            .deletion_timestamp
            .is_none(),
        "the protected pod is untouched"
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client, "shop");
    let status = pdbs.get("payments").await.expect("pdb").status.expect("status");
    assert_eq!(serde_json::to_value(&status).expect("json")["disruptionsAllowed"], 0);
}

#[tokio::test]
async fn a_stale_update_is_refused_with_409_conflict() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client, "shop");
    let stale = deployments.get("frontend").await.expect("get");
    let mut fresh = stale.clone();
    fresh.labels_mut().insert("touched".into(), "yes".into());
    deployments
        .replace("frontend", &PostParams::default(), &fresh)
        .await
        .expect("first update");
    let mut late = stale.clone();
    late.labels_mut().insert("touched".into(), "late".into());
    let status = api_error(deployments.replace("frontend", &PostParams::default(), &late).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
    assert_eq!(
        deployments.get("frontend").await.expect("get").labels()["touched"],
        "yes"
    );
    let exists = api_error(deployments.create(&PostParams::default(), &stale).await);
    assert_eq!((exists.code, exists.reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn an_invalid_object_is_refused_with_422_and_the_field() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let bad: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "broken"},
        "spec": {"selector": {"matchLabels": {"app": "x"}},
                 "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }))
    .expect("deployment");
    let status = api_error(deployments.create(&PostParams::default(), &bad).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let cause = status
        .details
        .and_then(|d| d.causes.into_iter().next())
        .expect("a cause");
    assert_eq!(cause.field, "spec.template.metadata.labels");
    let pods: Api<Pod> = Api::namespaced(client, "nowhere");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("pod");
    let missing_ns = api_error(pods.create(&PostParams::default(), &pod).await);
    assert_eq!(
        (missing_ns.code, missing_ns.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn dry_run_validates_every_mutation_and_stores_nothing() {
    let (sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    tokio::time::sleep(Duration::from_millis(300)).await; // let the world settle completely
    let before = sim.resource_version();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "dry"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("pod");
    let created = pods.create(&dry, &pod).await.expect("dry-run create answers");
    assert_eq!(created.name_any(), "dry");
    let scale = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let patched = deployments
        .patch("checkout", &scale, &Patch::Merge(json!({"spec": {"replicas": 0}})))
        .await
        .expect("dry-run patch");
    assert_eq!(patched.spec.replicas, Some(0));
    let victim = ready_pods(&pods, "app=checkout").await[0].name_any();
    pods.delete(
        &victim,
        &DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        },
    )
    .await
    .expect("dry-run delete");
    pods.evict(
        &victim,
        &EvictParams {
            delete_options: None,
            post_options: dry.clone(),
        },
    )
    .await
    .expect("dry-run eviction");
    let invalid = api_error(
        pods.create(
            &dry,
            &serde_json::from_value::<Pod>(json!({"metadata": {"name": "x"}, "spec": {"containers": []}}))
                .expect("pod"),
        )
        .await,
    );
    assert_eq!(invalid.code, 422, "dry runs are validated");

    assert_eq!(sim.resource_version(), before, "nothing was written");
    assert!(pods.get_opt("dry").await.expect("get").is_none());
    assert_eq!(deployments.get("checkout").await.expect("get").spec.replicas, Some(3));
    assert!(
        pods.get(&victim)
            .await
            .expect("get")
            .metadata
            .deletion_timestamp
            .is_none()
    );
}

#[tokio::test]
async fn selectors_filter_lists_by_labels_and_fields() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::all(client.clone());
    let count = |lp: ListParams| {
        let pods = pods.clone();
        async move { pods.list(&lp).await.expect("list").items.len() }
    };
    assert_eq!(count(ListParams::default().labels("app=checkout")).await, 3);
    assert_eq!(
        count(ListParams::default().labels("app in (checkout, payments)")).await,
        5
    );
    assert_eq!(count(ListParams::default().labels("app notin (checkout),app")).await, 8);
    assert_eq!(count(ListParams::default().labels("!app")).await, 0);
    assert_eq!(count(ListParams::default().fields("status.phase=Running")).await, 11);
    assert_eq!(
        count(ListParams::default().fields("metadata.namespace=shop,metadata.name=orders-db-0")).await,
        1
    );
    let on_node = count(ListParams::default().fields("spec.nodeName=sim-node-1")).await;
    let off_node = count(ListParams::default().fields("spec.nodeName!=sim-node-1")).await;
    assert!(on_node > 0 && on_node + off_node == 11, "{on_node} + {off_node}");
    let status = api_error(pods.list(&ListParams::default().fields("spec.color=red")).await);
    assert_eq!(status.code, 400);
    // Pagination: limit and continue see every pod once.
    let first = pods.list(&ListParams::default().limit(4)).await.expect("page 1");
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = pods
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(first.items.len() + rest.items.len(), 11);
}

#[tokio::test]
async fn a_watch_resumes_from_a_resource_version_and_sees_later_changes() {
    let (_sim, client) = shop().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    let list = maps.list(&ListParams::default()).await.expect("list");
    let from = list.metadata.resource_version.expect("list resourceVersion");
    for name in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"watched": "yes"}}, "data": {"k": "v"}}),
        )
        .expect("cm");
        maps.create(&PostParams::default(), &cm).await.expect("create");
    }
    maps.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "w"}})))
        .await
        .expect("patch");
    maps.delete("b", &DeleteParams::default()).await.expect("delete");
    // Started after the changes, from the old version: it replays them in order.
    let stream = maps
        .watch(&WatchParams::default().labels("watched=yes").timeout(2), &from)
        .await
        .expect("watch");
    let events: Vec<String> = stream
        .take(4)
        .map_ok(|e| match e {
            WatchEvent::Added(cm) => format!("ADDED {}", cm.name_any()),
            WatchEvent::Modified(cm) => format!("MODIFIED {}", cm.name_any()),
            WatchEvent::Deleted(cm) => format!("DELETED {}", cm.name_any()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(s) => format!("ERROR {}", s.code),
        })
        .try_collect()
        .await
        .expect("events");
    assert_eq!(events, ["ADDED a", "ADDED b", "MODIFIED a", "DELETED b"]);
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_410_gone() {
    let sim = Sim::builder()
        .seed(Seed::Empty)
        .watch_history(5)
        .start()
        .await
        .expect("sim");
    let client = sim.raw_client().await.expect("client");
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let old = maps
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    for i in 0..10 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}})).expect("cm");
        maps.create(&PostParams::default(), &cm).await.expect("create");
    }
    let mut stream = maps.watch(&WatchParams::default(), &old).await.expect("watch").boxed();
    match stream.try_next().await.expect("an event") {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn watches_get_bookmarks_and_see_only_what_their_selector_matches() {
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(50))
        .ready_delay(Duration::from_millis(50))
        .bookmark_interval(Duration::from_millis(200))
        .start()
        .await
        .expect("sim");
    let client = sim.raw_client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=payments").timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    let victim = ready_pods(&pods, "app=checkout").await[0].name_any();
    pods.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete a checkout pod");
    match stream.try_next().await.expect("an event") {
        Some(WatchEvent::Bookmark(b)) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("a payments watch must not see checkout pods; expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn an_ephemeral_container_is_accepted_runs_for_its_stated_duration_and_ends() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let target = ready_pods(&pods, "app=frontend").await[0].name_any();
    let patch = json!({"spec": {"ephemeralContainers": [{
        "name": "disasterpiece-delay", "image": "registry.example.com/disasterpiece/faults:1",
        "targetContainerName": "frontend",
        "env": [{"name": "DISASTERPIECE_FAULT", "value": "networkDelay"}, {"name": "DISASTERPIECE_DURATION", "value": "1s"},
                {"name": "DISASTERPIECE_LATENCY", "value": "50ms"}],
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
    }]}});
    let patched = pods
        .patch_ephemeral_containers(&target, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("accepted");
    let containers = patched.spec.and_then(|s| s.ephemeral_containers).unwrap_or_default();
    assert_eq!(containers.len(), 1);
    let state = |pod: &Pod| {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.ephemeral_container_statuses.clone())
            .unwrap_or_default();
        statuses.first().and_then(|s| s.state.clone())
    };
    eventually("the ephemeral container runs", || async {
        state(&pods.get(&target).await.expect("get")).is_some_and(|s| s.running.is_some())
    })
    .await;
    eventually("it ends after its duration", || async {
        state(&pods.get(&target).await.expect("get"))
            .and_then(|s| s.terminated)
            .is_some_and(|t| t.exit_code == 0)
    })
    .await;
    // Existing ephemeral containers cannot be removed.
    let removal = api_error(
        pods.patch_ephemeral_containers(
            &target,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ephemeralContainers": []}})),
        )
        .await,
    );
    assert_eq!(removal.code, 422);
    // Without NET_ADMIN, tc cannot add netem: the container ends at once with exit 3.
    let patch = json!({"spec": {"ephemeralContainers": [{
        "name": "no-net-admin", "image": "registry.example.com/disasterpiece/faults:1",
        "env": [{"name": "DISASTERPIECE_FAULT", "value": "networkLoss"}, {"name": "DISASTERPIECE_DURATION", "value": "1m"}],
    }, {
        // Started after its exercise's window: it does nothing.
        "name": "too-late", "image": "registry.example.com/disasterpiece/faults:1",
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        "env": [{"name": "DISASTERPIECE_FAULT", "value": "networkDelay"}, {"name": "DISASTERPIECE_DURATION", "value": "1m"},
                {"name": "DISASTERPIECE_NOT_AFTER", "value": "1000"}],
    }]}});
    pods.patch_ephemeral_containers(&target, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("accepted");
    eventually("it ends, saying why", || async {
        let pod = pods.get(&target).await.expect("get");
        let statuses = pod
            .status
            .and_then(|s| s.ephemeral_container_statuses)
            .unwrap_or_default();
        statuses
            .iter()
            .find(|s| s.name == "no-net-admin")
            .and_then(|s| s.state.clone()?.terminated)
            .is_some_and(|t| t.exit_code == 3 && t.message.is_some_and(|m| m.contains("Operation not permitted")))
    })
    .await;
    let pod = pods.get(&target).await.expect("get");
    let late = pod
        .status
        .and_then(|s| s.ephemeral_container_statuses)
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.name == "too-late")
        .and_then(|s| s.state?.terminated)
        .expect("ended at once");
    assert_eq!(late.exit_code, 3);
}

#[tokio::test]
async fn a_container_kill_restarts_the_target_container() {
    let (_sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let patch = json!({"spec": {"ephemeralContainers": [{
        "name": "disasterpiece-kill", "image": "busybox", "targetContainerName": "postgres",
        "env": [{"name": "DISASTERPIECE_FAULT", "value": "containerKill"}],
    }]}});
    pods.patch_ephemeral_containers("orders-db-0", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("accepted");
    let restarts = |pod: &Pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum::<i32>())
    };
    eventually("postgres restarted and is ready again", || async {
        let pod = pods.get("orders-db-0").await.expect("get");
        restarts(&pod) == 1 && ready(&pod)
    })
    .await;
}

#[tokio::test]
async fn cordoned_nodes_get_no_new_pods() {
    let (_sim, client) = shop().await;
    let nodes: Api<Node> = Api::all(client.clone());
    for node in ["sim-node-1", "sim-node-2", "sim-node-3"] {
        nodes
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
            )
            .await
            .expect("cordon");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let victim = ready_pods(&pods, "app=frontend").await[0].name_any();
    pods.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    eventually("a replacement exists but is unschedulable", || async {
        pods.list(&ListParams::default().labels("app=frontend"))
            .await
            .expect("list")
            .items
            .iter()
            .any(|p| {
                p.spec.as_ref().is_some_and(|s| s.node_name.is_none())
                    && p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable"))
                    })
            })
    })
    .await;
    let tainted = nodes
        .get("sim-node-1")
        .await
        .expect("node")
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default();
    assert!(tainted.iter().any(|t| t.key == "node.kubernetes.io/unschedulable"));
    nodes
        .patch(
            "sim-node-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": null}})),
        )
        .await
        .expect("uncordon");
    eventually("the pending pod lands on the uncordoned node", || async {
        let ready = ready_pods(&pods, "app=frontend").await;
        ready.len() == 3
            && ready
                .iter()
                .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("sim-node-2"))
    })
    .await;
}

#[tokio::test]
async fn the_synthetic_service_answers_503_without_pods_and_200_when_they_return() {
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(800))
        .ready_delay(Duration::from_millis(100))
        .start()
        .await
        .expect("sim");
    let client = sim.raw_client().await.expect("client");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    // The URL is published by the world right after start.
    let url = deployments.get("checkout").await.expect("get").annotations()["sim.disasterpiece.dev/url"].clone();
    assert_eq!(http_status(&url, "/healthz").await, Some(200));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    pods.delete_collection(
        &DeleteParams::default().grace_period(0),
        &ListParams::default().labels("app=checkout"),
    )
    .await
    .expect("delete all");
    assert_eq!(http_status(&url, "/healthz").await, Some(503), "no ready pod: 503");
    eventually("checkout answers 200 again", || async {
        http_status(&url, "/healthz").await == Some(200)
    })
    .await;
    let metrics = http_body(&url, "/metrics").await;
    assert!(
        metrics.contains("http_requests_total{service=\"checkout\",code=\"503\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("sim_ready_pods{service=\"checkout\"} 3"), "{metrics}");
}

#[tokio::test]
async fn a_network_policy_cutting_every_pod_off_makes_the_service_time_out() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let url = deployments.get("payments").await.expect("get").annotations()["sim.disasterpiece.dev/url"].clone();
    assert_eq!(http_status(&url, "/").await, Some(200));
    let policies: Api<DynamicObject> = Api::namespaced_with(
        client,
        "shop",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("networking.k8s.io", "v1", "NetworkPolicy"),
            "networkpolicies",
        ),
    );
    let policy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "cut-payments"}, "spec": {"podSelector": {"matchLabels": {"app": "payments"}}, "policyTypes": ["Ingress", "Egress"]},
    })).expect("policy");
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("create policy");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(http_status(&url, "/").await, None, "requests to cut-off pods time out");
    policies
        .delete("cut-payments", &DeleteParams::default())
        .await
        .expect("delete policy");
    eventually("payments answers again", || async {
        http_status(&url, "/").await == Some(200)
    })
    .await;
}

#[tokio::test]
async fn deletion_propagation_follows_owner_references() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    deployments
        .delete("payments", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    eventually("the deployment is gone and its replicaset orphaned", || async {
        deployments.get_opt("payments").await.expect("get").is_none()
            && replicasets
                .list(&ListParams::default().labels("app=payments"))
                .await
                .expect("list")
                .items
                .iter()
                .all(|rs| rs.owner_references().is_empty())
    })
    .await;
    assert_eq!(
        ready_pods(&pods, "app=payments").await.len(),
        2,
        "orphaned pods keep running"
    );
    deployments
        .delete("checkout", &DeleteParams::foreground())
        .await
        .expect("foreground delete");
    eventually("checkout, its replicaset and its pods are all gone", || async {
        deployments.get_opt("checkout").await.expect("get").is_none()
            && replicasets
                .list(&ListParams::default().labels("app=checkout"))
                .await
                .expect("list")
                .items
                .is_empty()
    })
    .await;
    deployments
        .delete("frontend", &DeleteParams::background())
        .await
        .expect("background delete");
    eventually("frontend's pods are collected", || async {
        pods.list(&ListParams::default().labels("app=frontend"))
            .await
            .expect("list")
            .items
            .is_empty()
    })
    .await;
}

#[tokio::test]
async fn scale_subresource_and_server_side_apply_work() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let scale = deployments.get_scale("frontend").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        scale.status.map(|s| s.selector.unwrap_or_default()),
        Some("app=frontend".into())
    );
    deployments
        .patch_scale(
            "frontend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scale");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    eventually("frontend runs one pod", || async {
        ready_pods(&pods, "app=frontend").await.len() == 1
    })
    .await;

    let maps: Api<ConfigMap> = Api::namespaced(client, "shop");
    let apply = PatchParams::apply("disasterpiece-test");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    maps.patch("applied", &apply, &Patch::Apply(&cm))
        .await
        .expect("apply creates");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"b": "2"}});
    let applied = maps
        .patch("applied", &apply, &Patch::Apply(&cm))
        .await
        .expect("apply updates");
    assert_eq!(applied.data.unwrap_or_default().get("b").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn custom_resource_definitions_serve_their_kinds() {
    let sim = Sim::builder().seed(Seed::Empty).start().await.expect("sim");
    let client = sim.raw_client().await.expect("client");
    let crd_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let crds: Api<DynamicObject> = Api::all_with(client.clone(), &crd_resource);
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "exercises.disasterpiece.dev"},
        "spec": {"group": "disasterpiece.dev", "scope": "Namespaced",
            "names": {"plural": "exercises", "singular": "exercise", "kind": "Exercise", "shortNames": ["ex"]},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))
    .expect("crd");
    crds.create(&PostParams::default(), &crd).await.expect("create crd");
    let established = crds.get("exercises.disasterpiece.dev").await.expect("get crd");
    assert!(
        established.data["status"]["conditions"]
            .to_string()
            .contains("Established")
    );
    let exercise_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("disasterpiece.dev", "v1alpha1", "Exercise"),
        "exercises",
    );
    let exercises: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &exercise_resource);
    let exercise: DynamicObject = serde_json::from_value(json!({"apiVersion": "disasterpiece.dev/v1alpha1", "kind": "Exercise", "metadata": {"name": "first"}, "spec": {"scenario": "x"}})).expect("exercise");
    exercises
        .create(&PostParams::default(), &exercise)
        .await
        .expect("create exercise");
    let status = exercises
        .patch_status(
            "first",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .expect("status");
    assert_eq!(status.data["status"]["phase"], "Running");
    assert_eq!(status.data["spec"]["scenario"], "x");
    let discovery = kube::discovery::Discovery::new(client).run().await.expect("discovery");
    assert!(discovery.groups().any(|g| g.name() == "disasterpiece.dev"));
}

#[tokio::test]
async fn the_simulator_misbehaves_on_purpose() {
    let (sim, client) = shop().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    sim.set_misbehaviour(&Misbehaviour {
        error_rate: 1.0,
        ..Misbehaviour::default()
    });
    let status = api_error(pods.list(&ListParams::default()).await);
    assert!(matches!(status.code, 429 | 500 | 503), "{status:?}");
    assert!(status.message.contains("the simulator injected"), "{}", status.message);
    sim.set_misbehaviour(&Misbehaviour::default());
    assert_eq!(pods.list(&ListParams::default()).await.expect("list").items.len(), 11);
    assert!(sim.injected_errors() >= 1);

    // The admin endpoint sets the same, for `disasterpiece sim` users.
    let put = |client: kube::Client| async move {
        let request = http::Request::put("/sim/admin/misbehave")
            .header("Content-Type", "application/json")
            .body(br#"{"dropWatchesAfterSeconds": 1}"#.to_vec())
            .expect("request");
        let response = client
            .send(request.map(kube::client::Body::from))
            .await
            .expect("an answer");
        response.status().as_u16()
    };
    // Only the cluster admin may: without its token, 401.
    let mut anonymous = sim.kube_config().await.expect("config");
    anonymous.auth_info.token = None;
    assert_eq!(put(kube::Client::try_from(anonymous).expect("client")).await, 401);
    assert_eq!(put(sim.raw_client().await.expect("client")).await, 200);
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let started = tokio::time::Instant::now();
    let events: Vec<_> = pods
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .expect("watch")
        .collect()
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the watch was dropped early ({} events)",
        events.len()
    );
}

#[tokio::test]
async fn a_metadata_patch_on_a_pod_is_accepted_and_a_spec_change_is_refused() {
    let sim = Sim::builder()
        .seed(Seed::Empty)
        .bulk_pods(1, 2)
        .start()
        .await
        .expect("sim");
    let client = sim.raw_client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "bulk-000");
    let patched = pods
        .patch(
            "pod-00000",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .expect("metadata patch");
    assert_eq!(patched.annotations().get("a").map(String::as_str), Some("b"));
    let refused = api_error(
        pods.patch(
            "pod-00000",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartPolicy": "Never"}})),
        )
        .await,
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert!(
        refused.message.contains("pod updates may not change fields"),
        "{}",
        refused.message
    );
}

/// `(requests answered within 0.25 s, all requests)` from a synthetic service's histogram.
async fn fast_and_total(url: &str) -> (u64, u64) {
    let metrics = http_body(url, "/metrics").await;
    let value = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        value("http_request_duration_seconds_bucket{service=\"frontend\",le=\"0.25\"}"),
        value("http_request_duration_seconds_count{service=\"frontend\"}"),
    )
}

#[tokio::test]
async fn fault_containers_slow_down_and_drop_the_synthetic_service_only_while_they_run() {
    let (_sim, client) = shop().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let url = deployments.get("frontend").await.expect("get").annotations()["sim.disasterpiece.dev/url"].clone();
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let fault = |name: &str, env: serde_json::Value| {
        json!({"spec": {"ephemeralContainers": [{"name": name, "image": "faults:1", "env": env,
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}})
    };
    // 400 ms of added latency on every frontend pod, for 2 seconds.
    for pod in ready_pods(&pods, "app=frontend").await {
        let env = json!([{"name": "DISASTERPIECE_FAULT", "value": "networkDelay"}, {"name": "DISASTERPIECE_DURATION", "value": "2s"}, {"name": "DISASTERPIECE_LATENCY", "value": "400ms"}]);
        pods.patch_ephemeral_containers(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(fault("delay", env)),
        )
        .await
        .expect("delay");
    }
    eventually("every request is slowed past 0.25 s", || async {
        let (fast_before, total_before) = fast_and_total(&url).await;
        let answered = http_status(&url, "/").await == Some(200);
        let (fast_after, total_after) = fast_and_total(&url).await;
        answered && total_after > total_before && fast_after == fast_before
    })
    .await;
    eventually("latency is back to normal once the containers end", || async {
        let (fast_before, _) = fast_and_total(&url).await;
        http_status(&url, "/").await == Some(200) && fast_and_total(&url).await.0 > fast_before
    })
    .await;
    // All packets lost, for 2 seconds: requests time out, then answer again.
    for pod in ready_pods(&pods, "app=frontend").await {
        let env = json!([{"name": "DISASTERPIECE_FAULT", "value": "networkLoss"}, {"name": "DISASTERPIECE_DURATION", "value": "2s"}, {"name": "DISASTERPIECE_LOSS_PERCENT", "value": "100"}]);
        pods.patch_ephemeral_containers(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(fault("loss", env)),
        )
        .await
        .expect("loss");
    }
    eventually("requests are dropped", || async {
        http_status(&url, "/").await.is_none()
    })
    .await;
    eventually("requests are answered again", || async {
        http_status(&url, "/").await == Some(200)
    })
    .await;
}

/// Creates ServiceAccount `name` in `shop` with a Role of `rules` bound to it.
async fn account_with_role(client: &Client, name: &str, rules: serde_json::Value) {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let pp = PostParams::default();
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "shop"}})).expect("account");
    Api::<ServiceAccount>::namespaced(client.clone(), "shop")
        .create(&pp, &account)
        .await
        .expect("create account");
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "shop"}, "rules": rules})).expect("role");
    Api::<Role>::namespaced(client.clone(), "shop")
        .create(&pp, &role)
        .await
        .expect("create role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "shop"}],
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(client.clone(), "shop")
        .create(&pp, &binding)
        .await
        .expect("create binding");
}

#[tokio::test]
async fn a_service_account_token_gets_what_its_role_grants_and_the_real_403_for_the_rest() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let (sim, admin) = shop().await;
    account_with_role(
        &admin,
        "reader",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
               {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"], "resourceNames": ["checkout"]}]),
    )
    .await;
    let reader = sim.service_account_client("shop", "reader").await.expect("token");
    let pods: Api<Pod> = Api::namespaced(reader.clone(), "shop");
    assert_eq!(pods.list(&ListParams::default()).await.expect("list").items.len(), 11);

    let victim = pods.list(&ListParams::default()).await.expect("list").items[0].name_any();
    let refused = api_error(pods.delete(&victim, &DeleteParams::default()).await);
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        format!(
            "pods \"{victim}\" is forbidden: User \"system:serviceaccount:shop:reader\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
        )
    );
    // Authorization comes before existence: the same 403 for a pod that is not there.
    assert_eq!(api_error(pods.delete("nope", &DeleteParams::default()).await).code, 403);
    assert!(
        Api::<Pod>::namespaced(admin.clone(), "shop").get(&victim).await.is_ok(),
        "nothing was deleted"
    );
    let elsewhere = api_error(
        Api::<Pod>::namespaced(reader.clone(), "default")
            .list(&ListParams::default())
            .await,
    );
    assert!(
        elsewhere.message.ends_with("in the namespace \"default\""),
        "{}",
        elsewhere.message
    );

    // resourceNames: checkout may be scaled, payments may not.
    let deployments: Api<Deployment> = Api::namespaced(reader.clone(), "shop");
    let scale = Patch::Merge(json!({"spec": {"replicas": 3}}));
    let pp = PatchParams::default();
    deployments
        .patch_scale("checkout", &pp, &scale)
        .await
        .expect("checkout may be scaled");
    let other = api_error(deployments.patch_scale("payments", &pp, &scale).await);
    assert_eq!(
        other.message,
        "deployments.apps \"payments\" is forbidden: User \"system:serviceaccount:shop:reader\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"shop\""
    );

    // An access review answers from the same rules, naming the binding that allowed it.
    let review = |verb: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": "shop"}}})
    };
    let reviews: Api<DynamicObject> = Api::all_with(
        reader.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
        )),
    );
    let answer = |verb: &'static str| {
        let reviews = reviews.clone();
        async move {
            let object: DynamicObject = serde_json::from_value(review(verb)).expect("review");
            reviews
                .create(&PostParams::default(), &object)
                .await
                .expect("review")
                .data["status"]
                .clone()
        }
    };
    assert_eq!(
        answer("list").await,
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"reader/shop\" of Role \"reader\" to ServiceAccount \"reader/shop\""})
    );
    assert_eq!(answer("delete").await, json!({"allowed": false}));

    // The token dies with its ServiceAccount; a made-up one never lived.
    Api::<ServiceAccount>::namespaced(admin.clone(), "shop")
        .delete("reader", &DeleteParams::default())
        .await
        .expect("delete account");
    assert_eq!(api_error(pods.list(&ListParams::default()).await).code, 401);
    let mut forged = sim.kube_config().await.expect("config");
    forged.auth_info.token = Some("sim-sa-0123456789abcdef".to_owned().into());
    let forged = Client::try_from(forged).expect("client");
    let status = api_error(
        Api::<Pod>::namespaced(forged, "shop")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!((status.code, status.message.as_str()), (401, "Unauthorized"));
}

#[tokio::test]
async fn a_denied_request_is_refused_with_403_and_changes_nothing() {
    let (_sim, client) = start(fast_shop().deny("delete", "pods")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let victim = pods.list(&ListParams::default()).await.expect("list").items[0].name_any();
    let refused = api_error(pods.delete(&victim, &DeleteParams::default()).await);
    assert_eq!(refused.code, 403);
    assert!(
        refused
            .message
            .ends_with(": the simulator was told to deny delete pods"),
        "{}",
        refused.message
    );
    assert!(pods.get(&victim).await.is_ok());
}

/// An Event with an `eventTime` must say who reported it and what was done, as the API server
/// requires (core/v1 validates it as events.k8s.io does); one without stays legacy.
#[tokio::test]
async fn an_event_with_an_event_time_must_name_its_reporter_and_action() {
    use k8s_openapi::api::core::v1::Event;
    let (_sim, client) = start(Sim::builder().seed(Seed::Shop)).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    let event = |extra: serde_json::Value| -> Event {
        let mut value = serde_json::json!({
            "metadata": {"generateName": "checkout.", "namespace": "shop"},
            "involvedObject": {"kind": "Deployment", "name": "checkout", "namespace": "shop"},
            "reason": "Tested", "message": "hello", "type": "Normal",
        });
        for (key, v) in extra.as_object().into_iter().flatten() {
            value[key] = v.clone();
        }
        serde_json::from_value(value).expect("event")
    };
    let refused = events
        .create(
            &PostParams::default(),
            &event(serde_json::json!({"eventTime": "2026-12-02T10:00:00.123456Z"})),
        )
        .await
        .expect_err("refused");
    let kube::Error::Api(status) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(status.code, 422);
    for field in ["reportingComponent", "reportingInstance", "action"] {
        assert!(
            status.message.contains(&format!("{field}: Required value")),
            "{}",
            status.message
        );
    }
    let bad_component = events
        .create(
            &PostParams::default(),
            &event(serde_json::json!({"eventTime": "2026-12-02T10:00:00.123456Z",
                "reportingComponent": "not a name", "reportingInstance": "a", "action": "Test"})),
        )
        .await
        .expect_err("refused");
    assert!(
        bad_component
            .to_string()
            .contains("reportingComponent: Invalid value: \"not a name\""),
        "{bad_component}"
    );
    let made = events
        .create(
            &PostParams::default(),
            &event(serde_json::json!({"eventTime": "2026-12-02T10:00:00.123456Z",
                "reportingComponent": "disasterpiece-controller", "reportingInstance": "replica-a", "action": "Test"})),
        )
        .await
        .expect("a complete new Event");
    assert_eq!(made.event_time.map(|t| t.0.subsec_microsecond()), Some(123_456));
    // Legacy Events (no eventTime) need none of it.
    events
        .create(&PostParams::default(), &event(serde_json::json!({})))
        .await
        .expect("a legacy Event");
}
