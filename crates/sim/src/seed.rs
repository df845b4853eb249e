//! What the simulated cluster holds when it starts.

use serde_json::{Value, json};

use super::service::ANNOTATION_HTTP;
use super::store::Store;

/// A starting world.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Seed {
    /// Only the system namespaces and three nodes.
    Empty,
    /// Namespace `shop`: Deployments `frontend` (3), `checkout` (3), `payments` (2) with
    /// PodDisruptionBudgets, Services and synthetic HTTP services, and a StatefulSet
    /// `orders-db` (3).
    #[default]
    Shop,
}

/// The names of the seeded nodes.
pub const NODES: [&str; 3] = ["sim-node-1", "sim-node-2", "sim-node-3"];

pub fn plant(store: &mut Store, seed: Seed) {
    let ty = |store: &Store, key: &str| store.type_by_key(key).expect("built-in type");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let t = ty(store, "/namespaces");
        store.create_internal(&t, namespace(ns));
    }
    for (i, name) in NODES.iter().enumerate() {
        let t = ty(store, "/nodes");
        let zone = if i < 2 { "zone-a" } else { "zone-b" };
        store.create_internal(&t, node(name, zone, i));
    }
    if seed == Seed::Empty {
        return;
    }
    let t = ty(store, "/namespaces");
    store.create_internal(&t, namespace("shop"));
    for (name, replicas, min_available) in [("frontend", 3, 2), ("checkout", 3, 2), ("payments", 2, 1)] {
        let t = ty(store, "apps/deployments");
        store.create_internal(&t, deployment(name, replicas));
        let t = ty(store, "policy/poddisruptionbudgets");
        store.create_internal(&t, pdb(name, min_available));
        let t = ty(store, "/services");
        store.create_internal(&t, service(name));
    }
    let t = ty(store, "apps/statefulsets");
    store.create_internal(&t, statefulset("orders-db", 3));
}

fn namespace(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn node(name: &str, zone: &str, index: usize) -> Value {
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": zone}},
        "spec": {"podCIDR": format!("10.244.{index}.0/24")},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", 11 + index)}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.34.0", "containerRuntimeVersion": "sim://1.0", "operatingSystem": "linux", "architecture": "amd64"},
        },
    })
}

fn pod_template(app: &str, image: &str, port: u16) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"terminationGracePeriodSeconds": 2,
            "containers": [{"name": app, "image": image, "ports": [{"containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}}}]},
    })
}

fn deployment(name: &str, replicas: u32) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}, "annotations": {ANNOTATION_HTTP: "true"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, &format!("registry.example.com/shop/{name}:1.4.2"), 8080),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
    })
}

fn service(name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "type": "ClusterIP"}})
}

fn pdb(name: &str, min_available: u32) -> Value {
    json!({"metadata": {"name": name, "namespace": "shop"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}}})
}

fn statefulset(name: &str, replicas: u32) -> Value {
    let mut template = pod_template(name, "postgres:16", 5432);
    template["spec"]["containers"][0]["name"] = json!("postgres");
    template["spec"]["containers"][0]["readinessProbe"] = json!({"exec": {"command": ["pg_isready"]}});
    json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "template": template, "podManagementPolicy": "OrderedReady"},
    })
}

/// Bare Running pods in many namespaces, written straight into the store.
pub fn plant_bulk(store: &mut Store, namespaces: usize, per_namespace: usize) {
    let ns_type = store.type_by_key("/namespaces").expect("built-in type");
    let pod_type = store.type_by_key("/pods").expect("built-in type");
    let mut n = 0usize;
    for i in 0..namespaces {
        let ns = format!("bulk-{i:03}");
        store.create_internal(&ns_type, namespace(&ns));
        for j in 0..per_namespace {
            let node = NODES[n % NODES.len()];
            let ip = format!("10.{}.{}.{}", 100 + n / 65_536, (n / 256) % 256, n % 256);
            n += 1;
            let pod = json!({
                "metadata": {"name": format!("pod-{j:05}"), "namespace": ns, "labels": {"app": "bulk", "group": format!("g{}", n % 10)}},
                "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                    "containers": [{"name": "app", "image": "registry.example.com/bulk:1"}]},
                "status": {"phase": "Running", "podIP": ip, "hostIP": "10.0.0.11",
                    "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                    "containerStatuses": [{"name": "app", "image": "registry.example.com/bulk:1", "imageID": "", "ready": true,
                        "restartCount": 0, "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
            });
            store.create_internal(&pod_type, pod);
        }
    }
}
