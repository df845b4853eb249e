//! The controllers of the simulated cluster: the world that makes objects behave.
//!
//! Deployments own ReplicaSets own Pods; StatefulSets keep ordinal pods; the scheduler puts
//! pods on schedulable nodes; the "kubelet" makes them Ready after a delay, finishes
//! graceful deletions, runs ephemeral containers for the duration their environment states,
//! and restarts a container a `containerKill` fault container targets; the garbage collector
//! follows ownerReferences; PodDisruptionBudgets get their status. Every write goes through
//! the store, so watches see the world change as they would in a cluster.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::Config;
use super::resources::ResourceType;
use super::runtime::{self, Runtime};
use super::store::{DeleteOptions, Store, at, pod_is_healthy, rfc3339, text};
use disasterpiece_common::duration::Duration as ScenarioDuration;
use disasterpiece_common::selector::LabelSelector;

/// Environment variables that describe a fault to the container running it (and to the
/// simulator, which plays its effect).
pub const ENV_FAULT: &str = "DISASTERPIECE_FAULT";
pub const ENV_DURATION: &str = "DISASTERPIECE_DURATION";
pub const ENV_SIGNAL: &str = "DISASTERPIECE_SIGNAL";
/// The wall-clock second after which a fault script stops by itself (fault::in_pod).
pub const ENV_NOT_AFTER: &str = "DISASTERPIECE_NOT_AFTER";

/// Timers and bookkeeping the world keeps between passes.
#[derive(Default)]
pub struct World {
    ready_at: HashMap<String, Instant>,
    missing_since: HashMap<String, Instant>,
    container_back_at: HashMap<(String, String), Instant>,
    ephemeral_end: HashMap<(String, String), Instant>,
    next_ip: u32,
    /// The last change the world has looked at; it reads only what came after.
    seen_rv: Option<u64>,
    /// Pods the scheduler or kubelet still has to do something with, by (namespace, name):
    /// at 10 000 pods, walking every pod on every pass is what costs.
    tracked: HashSet<(String, String)>,
}

struct Types {
    pods: ResourceType,
    replicasets: ResourceType,
    deployments: ResourceType,
    statefulsets: ResourceType,
    nodes: ResourceType,
    pdbs: ResourceType,
}

impl Types {
    fn of(store: &Store) -> Self {
        let get = |key: &str| store.type_by_key(key).expect("built-in type");
        Types {
            pods: get("/pods"),
            replicasets: get("apps/replicasets"),
            deployments: get("apps/deployments"),
            statefulsets: get("apps/statefulsets"),
            nodes: get("/nodes"),
            pdbs: get("policy/poddisruptionbudgets"),
        }
    }
}

/// A soonest-deadline accumulator.
struct Next(Option<Instant>);

impl Next {
    fn at(&mut self, when: Instant) {
        self.0 = Some(self.0.map_or(when, |n| n.min(when)));
    }
}

impl World {
    /// Runs the controllers until nothing changes; returns when the next timer is due.
    pub fn reconcile(
        &mut self,
        store: &mut Store,
        config: &Config,
        mut runtime: Option<&mut Runtime>,
    ) -> Option<Instant> {
        let types = Types::of(store);
        let mut next = Next(None);
        if let Some(rt) = runtime.as_deref_mut() {
            // Pods whose processes ended need the kubelet again; processes of pods that are
            // gone end with them.
            for pod in rt.take_ended() {
                self.tracked.insert(pod);
            }
            for (uid, ns, name) in rt.pods() {
                if store
                    .get("/pods", &ns, &name)
                    .is_none_or(|p| text(p, "/metadata/uid") != uid)
                {
                    rt.forget_pod(&uid);
                }
            }
        }
        for _ in 0..10 {
            let before = store.rv;
            let now = Instant::now();
            let collect = self.take_changes(store);
            terminate_namespaces(store);
            service_accounts(store);
            if collect {
                collect_garbage(store);
            }
            self.deployments(store, &types);
            self.replicasets(store, &types, config, now, &mut next);
            self.statefulsets(store, &types, config, now, &mut next);
            self.schedule(store, &types, config, now);
            self.kubelet(store, &types, config, now, &mut next, runtime.as_deref_mut());
            taint_cordoned_nodes(store, &types);
            dependencies(store, &types);
            pdb_status(store, &types);
            if store.rv == before {
                break;
            }
        }
        next.0
    }

    /// Notes the pods that changed since the last pass; says whether the garbage collector
    /// has work (something was deleted or is being deleted).
    fn take_changes(&mut self, store: &Store) -> bool {
        let events = self.seen_rv.and_then(|rv| store.events_since(rv));
        self.seen_rv = Some(store.rv);
        let Some(events) = events else {
            // First pass, or the log was compacted past us: look at everything once.
            for pod in store.all_of("/pods") {
                self.tracked.insert((
                    text(pod, "/metadata/namespace").to_owned(),
                    text(pod, "/metadata/name").to_owned(),
                ));
            }
            return true;
        };
        let mut collect = false;
        for event in events {
            if event.type_key == "/pods" {
                self.tracked.insert((
                    event.namespace.clone(),
                    text(&event.object, "/metadata/name").to_owned(),
                ));
            }
            collect |= event.event == super::store::EventType::Deleted
                || at(&event.object, "/metadata/deletionTimestamp").is_some();
        }
        collect
    }

    /// The tracked pods as they are now; forgets the ones that no longer exist.
    fn tracked_pods(&mut self, store: &Store) -> Vec<Value> {
        let mut pods = Vec::new();
        self.tracked.retain(|(ns, name)| match store.get("/pods", ns, name) {
            Some(pod) => {
                pods.push(pod.clone());
                true
            }
            None => false,
        });
        pods
    }

    /// Whether a pod still needs the scheduler or the kubelet.
    fn needs_attention(&self, pod: &Value) -> bool {
        text(pod, "/spec/nodeName").is_empty()
            || text(pod, "/status/phase") == "Pending"
            || at(pod, "/metadata/deletionTimestamp").is_some()
            || has_unfinished_ephemeral(pod)
            || self
                .container_back_at
                .keys()
                .any(|(uid, _)| uid == text(pod, "/metadata/uid"))
    }

    fn deployments(&mut self, store: &mut Store, t: &Types) {
        let stamp = store.now_rfc3339();
        let deployments: Vec<Value> = store.all_of("apps/deployments").cloned().collect();
        for d in deployments {
            if at(&d, "/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let (ns, name, uid) = meta(&d);
            let template = d["spec"]["template"].clone();
            let hash = template_hash(&template);
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let owned: Vec<Value> = store.owned_by("apps/replicasets", &ns, &uid).cloned().collect();
            if !owned
                .iter()
                .any(|rs| text(rs, "/metadata/labels/pod-template-hash") == hash)
            {
                let mut labels = template["metadata"]["labels"].clone();
                labels["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let mut rs_template = template.clone();
                rs_template["metadata"]["labels"] = labels.clone();
                let revision = owned.len() + 1;
                let rs = json!({
                    "metadata": {"name": format!("{name}-{hash}"), "namespace": ns, "labels": labels,
                        "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                        "ownerReferences": [owner_ref(&d, "apps/v1", "Deployment")]},
                    "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
                });
                store.create_internal(&t.replicasets, rs);
            }
            let owned: Vec<Value> = store.owned_by("apps/replicasets", &ns, &uid).cloned().collect();
            let (mut total, mut ready, mut updated) = (0, 0, 0);
            for rs in &owned {
                let current = text(rs, "/metadata/labels/pod-template-hash") == hash;
                let desired = if current { replicas } else { 0 };
                if rs["spec"]["replicas"].as_i64() != Some(desired) {
                    let mut scaled = rs.clone();
                    scaled["spec"]["replicas"] = json!(desired);
                    store.put_internal(&t.replicasets, scaled);
                }
                total += at(rs, "/status/replicas").and_then(Value::as_i64).unwrap_or(0);
                ready += at(rs, "/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
                if current {
                    updated = at(rs, "/status/replicas").and_then(Value::as_i64).unwrap_or(0);
                }
            }
            let max_unavailable = replicas / 4; // the default 25%, rounded down
            let available = ready >= replicas - max_unavailable;
            let mut status = json!({
                "observedGeneration": at(&d, "/metadata/generation").cloned().unwrap_or(json!(1)),
                "replicas": total, "readyReplicas": ready, "availableReplicas": ready,
                "updatedReplicas": updated, "unavailableReplicas": (replicas - ready).max(0),
            });
            let old_conditions = at(&d, "/status/conditions").cloned();
            status["conditions"] = json!([
                condition(
                    &stamp,
                    old_conditions.as_ref(),
                    "Available",
                    available,
                    if available {
                        "MinimumReplicasAvailable"
                    } else {
                        "MinimumReplicasUnavailable"
                    },
                    if available {
                        "Deployment has minimum availability."
                    } else {
                        "Deployment does not have minimum availability."
                    }
                ),
                condition(
                    &stamp,
                    old_conditions.as_ref(),
                    "Progressing",
                    true,
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{name}-{hash}\" has successfully progressed.")
                ),
            ]);
            clean_zero(&mut status);
            write_status(store, &t.deployments, &d, status);
        }
    }

    fn replicasets(&mut self, store: &mut Store, t: &Types, config: &Config, now: Instant, next: &mut Next) {
        let sets: Vec<Value> = store.all_of("apps/replicasets").cloned().collect();
        for rs in sets {
            if at(&rs, "/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let (ns, name, uid) = meta(&rs);
            let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
            let pods: Vec<Value> = store
                .owned_by("/pods", &ns, &uid)
                .filter(|p| at(p, "/metadata/deletionTimestamp").is_none())
                .cloned()
                .collect();
            if pods.len() < desired {
                let since = *self.missing_since.entry(uid.clone()).or_insert(now);
                if now >= since + config.replace_delay {
                    for _ in pods.len()..desired {
                        let pod_name = format!("{name}-{}", store.random_suffix(5));
                        let pod = pod_from_template(&rs, &pod_name, &ns, "ReplicaSet", None);
                        // As the ReplicaSet controller's create goes through admission:
                        // PodSecurity refuses the pod and it is tried again later.
                        if store.admit_new_pod(&ns, &pod).is_ok() {
                            store.create_internal(&t.pods, pod);
                        }
                    }
                    self.missing_since.remove(&uid);
                } else {
                    next.at(since + config.replace_delay);
                }
            } else {
                self.missing_since.remove(&uid);
            }
            if pods.len() > desired {
                // Remove the least useful first: unscheduled, then not ready, then newest.
                let mut victims = pods.clone();
                victims.sort_by_key(|p| {
                    (
                        text(p, "/spec/nodeName").is_empty(),
                        !pod_is_healthy(p),
                        text(p, "/metadata/creationTimestamp").to_owned(),
                    )
                });
                victims.reverse();
                for victim in victims.iter().take(pods.len() - desired) {
                    let _ = store.delete(&t.pods, &ns, text(victim, "/metadata/name"), &DeleteOptions::default());
                }
            }
            let pods: Vec<Value> = store
                .owned_by("/pods", &ns, &uid)
                .filter(|p| at(p, "/metadata/deletionTimestamp").is_none())
                .cloned()
                .collect();
            let ready = pods.iter().filter(|p| pod_is_healthy(p)).count();
            let mut status = json!({
                "replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": at(&rs, "/metadata/generation").cloned().unwrap_or(json!(1)),
            });
            clean_zero(&mut status);
            write_status(store, &t.replicasets, &rs, status);
        }
    }

    fn statefulsets(&mut self, store: &mut Store, t: &Types, config: &Config, now: Instant, next: &mut Next) {
        let sets: Vec<Value> = store.all_of("apps/statefulsets").cloned().collect();
        for sts in sets {
            if at(&sts, "/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let (ns, name, uid) = meta(&sts);
            let desired = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
            let ordered = sts["spec"]["podManagementPolicy"] != "Parallel";
            for ordinal in 0..desired {
                let pod_name = format!("{name}-{ordinal}");
                let existing = store.get("/pods", &ns, &pod_name).cloned();
                match existing {
                    Some(pod) => {
                        self.missing_since.remove(&format!("{uid}/{ordinal}"));
                        if ordered && !pod_is_healthy(&pod) {
                            break; // OrderedReady: the next ordinal waits for this one
                        }
                    }
                    None => {
                        let key = format!("{uid}/{ordinal}");
                        let since = *self.missing_since.entry(key.clone()).or_insert(now);
                        if now >= since + config.replace_delay {
                            let pod = pod_from_template(&sts, &pod_name, &ns, "StatefulSet", Some(ordinal));
                            if store.admit_new_pod(&ns, &pod).is_ok() {
                                store.create_internal(&t.pods, pod);
                            }
                            self.missing_since.remove(&key);
                        } else {
                            next.at(since + config.replace_delay);
                        }
                        if ordered {
                            break;
                        }
                    }
                }
            }
            let owned: Vec<Value> = store.owned_by("/pods", &ns, &uid).cloned().collect();
            for pod in &owned {
                let ordinal = text(pod, "/metadata/name")
                    .rsplit('-')
                    .next()
                    .and_then(|o| o.parse::<usize>().ok());
                if ordinal.is_some_and(|o| o >= desired) && at(pod, "/metadata/deletionTimestamp").is_none() {
                    let _ = store.delete(&t.pods, &ns, text(pod, "/metadata/name"), &DeleteOptions::default());
                }
            }
            let live: Vec<&Value> = owned
                .iter()
                .filter(|p| at(p, "/metadata/deletionTimestamp").is_none())
                .collect();
            let ready = live.iter().filter(|p| pod_is_healthy(p)).count();
            let mut status = json!({
                "replicas": live.len(), "readyReplicas": ready, "currentReplicas": live.len(), "updatedReplicas": live.len(),
                "availableReplicas": ready, "observedGeneration": at(&sts, "/metadata/generation").cloned().unwrap_or(json!(1)),
            });
            clean_zero(&mut status);
            write_status(store, &t.statefulsets, &sts, status);
        }
    }

    fn schedule(&mut self, store: &mut Store, t: &Types, config: &Config, now: Instant) {
        let stamp = store.now_rfc3339();
        let pending: Vec<Value> = self
            .tracked_pods(store)
            .into_iter()
            .filter(|p| text(p, "/spec/nodeName").is_empty() && at(p, "/metadata/deletionTimestamp").is_none())
            .collect();
        if pending.is_empty() {
            return;
        }
        let nodes: Vec<Value> = store.all_of("/nodes").cloned().collect();
        let mut load: HashMap<String, usize> = HashMap::new();
        for pod in store.all_of("/pods") {
            *load.entry(text(pod, "/spec/nodeName").to_owned()).or_default() += 1;
        }
        for mut pod in pending {
            let candidates = nodes.iter().filter(|n| node_schedulable(n));
            let chosen = candidates.min_by_key(|n| {
                (
                    load.get(text(n, "/metadata/name")).copied().unwrap_or(0),
                    text(n, "/metadata/name").to_owned(),
                )
            });
            let old = at(&pod, "/status/conditions").cloned();
            match chosen {
                Some(node) => {
                    let node_name = text(node, "/metadata/name").to_owned();
                    *load.entry(node_name.clone()).or_default() += 1;
                    pod["spec"]["nodeName"] = json!(node_name);
                    pod["status"]["conditions"] =
                        json!([condition(&stamp, old.as_ref(), "PodScheduled", true, "", "")]);
                    self.ready_at
                        .insert(text(&pod, "/metadata/uid").to_owned(), now + config.ready_delay);
                }
                None => {
                    let message = format!(
                        "0/{} nodes are available: {} node(s) were unschedulable.",
                        nodes.len(),
                        nodes.len()
                    );
                    pod["status"]["conditions"] = json!([condition(
                        &stamp,
                        old.as_ref(),
                        "PodScheduled",
                        false,
                        "Unschedulable",
                        &message
                    )]);
                }
            }
            store.put_internal(&t.pods, pod);
        }
    }

    fn kubelet(
        &mut self,
        store: &mut Store,
        t: &Types,
        config: &Config,
        now: Instant,
        next: &mut Next,
        mut runtime: Option<&mut Runtime>,
    ) {
        let pods: Vec<Value> = self
            .tracked_pods(store)
            .into_iter()
            .filter(|p| !text(p, "/spec/nodeName").is_empty())
            .collect();
        for pod in pods {
            let (ns, name, uid) = meta(&pod);
            if at(&pod, "/metadata/deletionTimestamp").is_some() {
                let finalizers = pod
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                match store.deletion_deadlines.get(&uid).copied() {
                    Some(deadline) if now < deadline => next.at(deadline),
                    _ if finalizers => {}
                    _ => {
                        store.remove_internal("/pods", &ns, &name);
                        self.forget(&uid);
                        if let Some(rt) = runtime.as_deref_mut() {
                            rt.forget_pod(&uid);
                        }
                    }
                }
                continue;
            }
            let mut updated = pod.clone();
            if text(&pod, "/status/phase") == "Pending" {
                let ready_at = *self.ready_at.entry(uid.clone()).or_insert(now + config.ready_delay);
                if now >= ready_at {
                    self.start(store, &mut updated);
                } else {
                    next.at(ready_at);
                }
            }
            match runtime.as_deref_mut() {
                Some(rt) => {
                    self.processes(&mut updated, rt, config, now, next);
                }
                None => self.ephemeral(&mut updated, config, now, next),
            }
            self.container_restarts(&mut updated, now, next, &store.now_rfc3339());
            if updated != pod {
                store.put_internal(&t.pods, updated);
            }
        }
        // Pods that are Running, Ready and idle need nothing more until they change again.
        let idle: Vec<(String, String)> = self
            .tracked
            .iter()
            .filter(|(ns, name)| store.get("/pods", ns, name).is_none_or(|p| !self.needs_attention(p)))
            .cloned()
            .collect();
        for key in idle {
            self.tracked.remove(&key);
        }
    }

    fn forget(&mut self, uid: &str) {
        self.ready_at.remove(uid);
        self.container_back_at.retain(|(u, _), _| u != uid);
        self.ephemeral_end.retain(|(u, _), _| u != uid);
    }

    /// Pending → Running and Ready.
    fn start(&mut self, store: &Store, pod: &mut Value) {
        self.next_ip += 1;
        let ip = format!("10.244.{}.{}", (self.next_ip / 250) % 250, self.next_ip % 250 + 2);
        let node = store.get("/nodes", "", text(pod, "/spec/nodeName"));
        let host_ip = node
            .and_then(|n| at(n, "/status/addresses/0/address"))
            .cloned()
            .unwrap_or(json!("10.0.0.1"));
        let started = store.now_rfc3339();
        let statuses: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true,
                "restartCount": 0, "state": {"running": {"startedAt": started}}})
            })
            .collect();
        let old = at(pod, "/status/conditions").cloned();
        pod["status"] = json!({
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip, "startTime": started,
            "qosClass": "BestEffort", "containerStatuses": statuses,
            "conditions": [
                condition(&started, old.as_ref(), "Initialized", true, "", ""),
                condition(&started, old.as_ref(), "Ready", true, "", ""),
                condition(&started, old.as_ref(), "ContainersReady", true, "", ""),
                condition(&started, old.as_ref(), "PodScheduled", true, "", ""),
            ],
        });
    }

    /// Ephemeral containers start when they appear and end after their stated duration.
    fn ephemeral(&mut self, pod: &mut Value, config: &Config, now: Instant, next: &mut Next) {
        let uid = text(pod, "/metadata/uid").to_owned();
        // The node's clock: what a fault script's `date +%s` reads.
        let wall = config.clock.now();
        let stamp = rfc3339(wall);
        let containers = ephemeral_containers(pod);
        for container in containers {
            let name = text(&container, "/name").to_owned();
            let statuses = pod["status"]["ephemeralContainerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let status = statuses.iter().find(|s| s["name"] == name.as_str()).cloned();
            let key = (uid.clone(), name.clone());
            let image = container["image"].as_str().unwrap_or_default().to_owned();
            match status {
                // An image from a registry that does not resolve is never pulled: the kubelet
                // backs off for good, and the container never runs.
                None if unpullable(&image).is_some() => {
                    let mut list = statuses;
                    list.push(pull_error(&name, &image));
                    pod["status"]["ephemeralContainerStatuses"] = json!(list);
                }
                None => {
                    // A container never runs past its exercise's window.
                    let left = env(&container, ENV_NOT_AFTER)
                        .and_then(|t| t.parse::<i64>().ok())
                        .map(|t| t - wall.timestamp());
                    let lasts = match left {
                        Some(s) => stated_duration(&container).min(Duration::from_secs(s.max(0) as u64)),
                        None => stated_duration(&container),
                    };
                    let fault = env(&container, ENV_FAULT);
                    let started = stamp.clone();
                    let ended = |code: i32, message: &str| {
                        json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                            "message": message, "startedAt": started, "finishedAt": started}})
                    };
                    let state = if fault.as_deref() == Some("containerKill") {
                        // It signals its target and exits: the target's restart is the effect. A
                        // container's PID 1 never receives KILL from inside its PID namespace.
                        let target = container["targetContainerName"].as_str().unwrap_or_default();
                        if env(&container, ENV_SIGNAL).as_deref() == Some("KILL") {
                            ended(3, &pid1_ignores_kill(target))
                        } else {
                            // The target's main process exits; its PID namespace, which the
                            // fault container shares, goes with it, so the kernel kills the
                            // script (137) before it can say anything. The kubelet restarts the
                            // target a moment later: the restart count is what tells.
                            self.kill_container(pod, target, 143, now + config.ready_delay, &stamp);
                            next.at(now + config.ready_delay);
                            ended(137, "")
                        }
                    } else if left.is_some_and(|s| s <= 0) {
                        ended(3, "started after its exercise's window ended; nothing done")
                    } else if matches!(fault.as_deref(), Some("networkDelay" | "networkLoss"))
                        && !has_capability(&container, "NET_ADMIN")
                    {
                        ended(3, NO_NET_ADMIN)
                    } else {
                        self.ephemeral_end.insert(key.clone(), now + lasts);
                        next.at(now + lasts);
                        json!({"running": {"startedAt": started}})
                    };
                    let mut list = statuses;
                    list.push(json!({"name": name, "image": container["image"], "imageID": "", "ready": false, "restartCount": 0, "state": state}));
                    pod["status"]["ephemeralContainerStatuses"] = json!(list);
                }
                Some(s) if at(&s, "/state/running").is_some() => {
                    let end = *self.ephemeral_end.entry(key.clone()).or_insert(now);
                    if now >= end {
                        let list: Vec<Value> = statuses
                            .into_iter()
                            .map(|mut st| {
                                if st["name"] == name.as_str() {
                                    let started = at(&st, "/state/running/startedAt").cloned().unwrap_or(json!(stamp));
                                    let message = removed_message(&fault_of(&container));
                                    st["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": message, "startedAt": started, "finishedAt": stamp}});
                                }
                                st
                            })
                            .collect();
                        pod["status"]["ephemeralContainerStatuses"] = json!(list);
                        self.ephemeral_end.remove(&key);
                    } else {
                        next.at(end);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Containers as real processes (`runtime`): each ephemeral container is started when it
    /// appears, Running once its namespaces are made, terminated when its process ends, with
    /// the process's exit code and termination message. A regular container whose stand-in
    /// ended is terminated with its code and restarted, as the kubelet restarts it.
    fn processes(&mut self, pod: &mut Value, rt: &mut Runtime, config: &Config, now: Instant, next: &mut Next) {
        let stamp = rfc3339(config.clock.now());
        let uid = text(pod, "/metadata/uid").to_owned();
        let regular: Vec<String> = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| at(s, "/state/running").is_some())
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect();
        for name in regular {
            if let runtime::State::Exited(exit) = rt.container(pod, &name, false) {
                rt.remove(&uid, &name);
                self.kill_container(pod, &name, exit.code, now + config.ready_delay, &stamp);
                next.at(now + config.ready_delay);
            }
        }
        let containers = ephemeral_containers(pod);
        for container in containers {
            let name = text(&container, "/name").to_owned();
            let image = text(&container, "/image").to_owned();
            let mut list = pod["status"]["ephemeralContainerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let index = list.iter().position(|s| s["name"] == name.as_str());
            let running = index.is_some_and(|i| at(&list[i], "/state/running").is_some());
            let state = match index {
                None if unpullable(&image).is_some() => {
                    list.push(pull_error(&name, &image));
                    pod["status"]["ephemeralContainerStatuses"] = json!(list);
                    continue;
                }
                None => rt.container(pod, &name, true),
                Some(_) if running => rt.container(pod, &name, false),
                Some(_) => continue,
            };
            let new = match state {
                runtime::State::Absent | runtime::State::Starting => {
                    next.at(now + Duration::from_millis(20));
                    continue;
                }
                runtime::State::Running { .. } if running => continue,
                runtime::State::Running { started } => json!({"running": {"startedAt": rfc3339(started)}}),
                runtime::State::Exited(exit) => terminated(&exit, &stamp),
            };
            match index {
                Some(i) => list[i]["state"] = new,
                None => list.push(json!({"name": name, "image": image, "imageID": "", "ready": false,
                    "restartCount": 0, "state": new})),
            }
            pod["status"]["ephemeralContainerStatuses"] = json!(list);
        }
    }

    /// The target's main process ended (with `code`: 143 for the TERM it handled): terminated
    /// now, restarted by the kubelet at `back_at` (the restart count goes up then, as a real
    /// kubelet's status shows it after the restart).
    fn kill_container(&mut self, pod: &mut Value, target: &str, code: i32, back_at: Instant, now: &str) {
        let uid = text(pod, "/metadata/uid").to_owned();
        for status in pod["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
            if status["name"] == target {
                let started = at(status, "/state/running/startedAt").cloned().unwrap_or(json!(now));
                status["ready"] = json!(false);
                status["state"] = json!({"terminated": {"exitCode": code, "reason": "Error", "startedAt": started, "finishedAt": now}});
            }
        }
        set_ready(pod, false, now);
        self.container_back_at.insert((uid, target.to_owned()), back_at);
    }

    fn container_restarts(&mut self, pod: &mut Value, now: Instant, next: &mut Next, stamp: &str) {
        let uid = text(pod, "/metadata/uid").to_owned();
        let due: Vec<String> = self
            .container_back_at
            .iter()
            .filter(|((u, _), _)| *u == uid)
            .filter_map(|((_, c), at)| {
                if now >= *at {
                    Some(c.clone())
                } else {
                    next.at(*at);
                    None
                }
            })
            .collect();
        for container in due {
            self.container_back_at.remove(&(uid.clone(), container.clone()));
            for status in pod["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
                if status["name"] == container.as_str() {
                    if let Some(ended) = at(status, "/state/terminated").cloned() {
                        let restarts = status["restartCount"].as_i64().unwrap_or(0) + 1;
                        status["restartCount"] = json!(restarts);
                        status["lastState"] = json!({"terminated": ended});
                        status["state"] = json!({"running": {"startedAt": stamp}});
                    }
                    status["ready"] = json!(true);
                }
            }
            let all_ready = pod["status"]["containerStatuses"]
                .as_array()
                .is_none_or(|s| s.iter().all(|c| c["ready"] == true));
            if all_ready {
                set_ready(pod, true, stamp);
            }
        }
    }
}

/// The ephemeral containers of a pod's spec.
fn ephemeral_containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The status of a container whose image cannot be pulled: the kubelet backs off for good.
fn pull_error(name: &str, image: &str) -> Value {
    let host = unpullable(image).unwrap_or_default();
    let message = format!(
        "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": failed to do request: Head \"https://{host}/v2/\": dial tcp: lookup {host}: no such host"
    );
    json!({"name": name, "image": image, "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ErrImagePull", "message": message}}})
}

/// A terminated state from a process's end.
fn terminated(exit: &runtime::Exit, stamp: &str) -> Value {
    let started = exit.started.map_or_else(|| stamp.to_owned(), rfc3339);
    json!({"terminated": {"exitCode": exit.code, "reason": if exit.code == 0 { "Completed" } else { "Error" },
        "message": exit.message, "startedAt": started, "finishedAt": rfc3339(exit.finished)}})
}

/// The registry host of `image` when it lies under `.invalid` (RFC 2606: never resolves), as a
/// registry an air-gapped cluster cannot reach.
pub fn unpullable(image: &str) -> Option<String> {
    let (first, _) = image.split_once('/')?;
    let host = first.split(':').next().unwrap_or(first);
    (host.ends_with(".invalid") || host == "invalid").then(|| host.to_owned())
}

/// Whether a pod has an ephemeral container that has not ended and may still (a container
/// whose image cannot be pulled never will).
fn has_unfinished_ephemeral(pod: &Value) -> bool {
    let declared = pod
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = pod
        .pointer("/status/ephemeralContainerStatuses")
        .and_then(Value::as_array);
    let finished = statuses.map_or(0, |s| {
        s.iter()
            .filter(|c| {
                at(c, "/state/terminated").is_some() || at(c, "/state/waiting/reason") == Some(&json!("ErrImagePull"))
            })
            .count()
    });
    declared > finished
}

/// The annotation that makes a workload depend on another: `NAMESPACE/NAME` of a Deployment
/// or StatefulSet. Its pods are Ready only while that workload has a Ready pod, as a pod
/// whose readiness probe checks its dependency is; its synthetic service then answers 503.
pub const ANNOTATION_DEPENDS_ON: &str = "sim.disasterpiece.dev/depends-on";

/// Pods of a workload that depends on another follow that one's health (see
/// [`ANNOTATION_DEPENDS_ON`]).
fn dependencies(store: &mut Store, t: &Types) {
    let pointer = format!("/metadata/annotations/{}", ANNOTATION_DEPENDS_ON.replace('/', "~1"));
    let dependents: Vec<(String, String, Option<LabelSelector>)> = ["apps/deployments", "apps/statefulsets"]
        .iter()
        .flat_map(|key| store.all_of(key))
        .filter(|w| at(w, "/metadata/deletionTimestamp").is_none())
        .filter_map(|w| {
            let on = at(w, &pointer)?.as_str()?.to_owned();
            Some((text(w, "/metadata/namespace").to_owned(), on, workload_selector(w)))
        })
        .collect();
    for (ns, on, selector) in dependents {
        let Some(selector) = selector else { continue };
        let Some((dep_ns, dep_name)) = on.split_once('/') else {
            continue;
        };
        let dependency = ["apps/deployments", "apps/statefulsets"]
            .iter()
            .find_map(|key| store.get(key, dep_ns, dep_name))
            .and_then(workload_selector);
        let up = dependency.is_some_and(|dep| {
            store
                .all_of("/pods")
                .filter(|p| text(p, "/metadata/namespace") == dep_ns)
                .any(|p| dep.matches_object(p) && pod_is_healthy(p))
        });
        let stamp = store.now_rfc3339();
        let changed: Vec<Value> = store
            .all_of("/pods")
            .filter(|p| text(p, "/metadata/namespace") == ns && selector.matches_object(p))
            .filter(|p| text(p, "/status/phase") == "Running" && at(p, "/metadata/deletionTimestamp").is_none())
            .filter(|p| pod_is_healthy(p) != up)
            .map(|p| {
                let mut pod = p.clone();
                set_ready(&mut pod, up, &stamp);
                // As a kubelet reports a failing readiness probe: the containers are not ready.
                if let Some(statuses) = pod
                    .pointer_mut("/status/containerStatuses")
                    .and_then(Value::as_array_mut)
                {
                    for status in statuses {
                        status["ready"] = json!(up);
                    }
                }
                pod
            })
            .collect();
        for pod in changed {
            store.put_internal(&t.pods, pod);
        }
    }
}

fn set_ready(pod: &mut Value, ready: bool, stamp: &str) {
    let old = at(pod, "/status/conditions").cloned();
    let reason = if ready { "" } else { "ContainersNotReady" };
    let mut conditions: Vec<Value> = old.as_ref().and_then(Value::as_array).cloned().unwrap_or_default();
    for kind in ["Ready", "ContainersReady"] {
        let new = condition(stamp, old.as_ref(), kind, ready, reason, "");
        match conditions.iter_mut().find(|c| c["type"] == kind) {
            Some(c) => *c = new,
            None => conditions.push(new),
        }
    }
    pod["status"]["conditions"] = json!(conditions);
}

/// What a fault script says when it has removed its fault and ends.
pub(crate) fn removed_message(fault: &str) -> String {
    match fault {
        "networkDelay" | "networkLoss" => "netem removed from eth0".to_owned(),
        _ => format!("{fault} stopped"),
    }
}

fn fault_of(container: &Value) -> String {
    env(container, ENV_FAULT).unwrap_or_default()
}

/// What tc says without NET_ADMIN, as the fault script reports it.
pub const NO_NET_ADMIN: &str = "could not add netem to eth0: RTNETLINK answers: Operation not permitted";

/// What the containerKill script reports when KILL cannot reach PID 1.
pub fn pid1_ignores_kill(target: &str) -> String {
    format!(
        "the main process of {target} is still running after SIGKILL: a container's PID 1 receives only the signals it handles, and never KILL from inside the pod (pid_namespaces(7)); use signal TERM"
    )
}

fn has_capability(container: &Value, capability: &str) -> bool {
    container
        .pointer("/securityContext/capabilities/add")
        .and_then(Value::as_array)
        .is_some_and(|caps| caps.iter().any(|c| c == capability))
}

pub(crate) fn env(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_owned)
}

/// How long an ephemeral container runs: `DISASTERPIECE_DURATION` (`90s`, `2m`), else the
/// seconds of a `sleep N` in its command, else 30 seconds.
pub fn stated_duration(container: &Value) -> Duration {
    if let Some(d) = env(container, ENV_DURATION).and_then(|d| d.parse::<ScenarioDuration>().ok()) {
        return d.as_std();
    }
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_array().into_iter().flatten().filter_map(Value::as_str))
        .flat_map(str::split_whitespace)
        .collect();
    words
        .windows(2)
        .find(|w| w[0] == "sleep")
        .and_then(|w| w[1].trim_end_matches('s').parse::<u64>().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs)
}

fn node_schedulable(node: &Value) -> bool {
    at(node, "/spec/unschedulable") != Some(&json!(true))
        && node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn taint_cordoned_nodes(store: &mut Store, t: &Types) {
    let nodes: Vec<Value> = store.all_of("/nodes").cloned().collect();
    for node in nodes {
        let cordoned = at(&node, "/spec/unschedulable") == Some(&json!(true));
        let mut taints: Vec<Value> = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has = taints.iter().any(|t| t["key"] == "node.kubernetes.io/unschedulable");
        if cordoned == has {
            continue;
        }
        if cordoned {
            taints.push(
                json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": store.now_rfc3339()}),
            );
        } else {
            taints.retain(|t| t["key"] != "node.kubernetes.io/unschedulable");
        }
        let mut updated = node.clone();
        if taints.is_empty() {
            if let Some(spec) = updated["spec"].as_object_mut() {
                spec.remove("taints");
            }
        } else {
            updated["spec"]["taints"] = json!(taints);
        }
        store.put_internal(&t.nodes, updated);
    }
}

fn pdb_status(store: &mut Store, t: &Types) {
    let stamp = store.now_rfc3339();
    let budgets: Vec<Value> = store.all_of("policy/poddisruptionbudgets").cloned().collect();
    for pdb in budgets {
        let (expected, healthy, desired, allowed) = store.pdb_numbers(&pdb);
        let old = at(&pdb, "/status/conditions").cloned();
        let status = json!({
            "observedGeneration": at(&pdb, "/metadata/generation").cloned().unwrap_or(json!(1)),
            "expectedPods": expected, "currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": allowed,
            "conditions": [condition(&stamp, old.as_ref(), "DisruptionAllowed", allowed > 0,
                if allowed > 0 { "SufficientPods" } else { "InsufficientPods" }, "")],
        });
        write_status(store, &t.pdbs, &pdb, status);
    }
}

/// The ServiceAccount controller: every namespace has a `default` ServiceAccount.
fn service_accounts(store: &mut Store) {
    let missing: Vec<String> = store
        .all_of("/namespaces")
        .map(|n| text(n, "/metadata/name").to_owned())
        .filter(|ns| store.get("/serviceaccounts", ns, "default").is_none())
        .collect();
    for ns in missing {
        store.ensure_default_service_account(&ns);
    }
}

fn terminate_namespaces(store: &mut Store) {
    let terminating: Vec<String> = store
        .all_of("/namespaces")
        .filter(|n| at(n, "/metadata/deletionTimestamp").is_some())
        .map(|n| text(n, "/metadata/name").to_owned())
        .collect();
    for ns in terminating {
        let keys: Vec<String> = store
            .types
            .iter()
            .filter(|t| t.namespaced)
            .map(ResourceType::key)
            .collect();
        for key in keys {
            let names: Vec<String> = store
                .list(&key, Some(&ns))
                .map(|o| text(o, "/metadata/name").to_owned())
                .collect();
            for name in names {
                store.remove_internal(&key, &ns, &name);
            }
        }
        store.remove_internal("/namespaces", "", &ns);
    }
}

/// Follows ownerReferences: background deletion of orphans, and the `orphan` and
/// `foregroundDeletion` finalizers.
fn collect_garbage(store: &mut Store) {
    let mut uids: HashSet<String> = HashSet::new();
    let mut refs: Vec<(String, String, String, Vec<String>)> = Vec::new();
    let keys: Vec<String> = store.types.iter().map(ResourceType::key).collect();
    for key in &keys {
        for object in store.list(key, None) {
            uids.insert(text(object, "/metadata/uid").to_owned());
            let owners: Vec<String> = object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .map(|rs| rs.iter().filter_map(|r| r["uid"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if !owners.is_empty() {
                refs.push((
                    key.clone(),
                    text(object, "/metadata/namespace").to_owned(),
                    text(object, "/metadata/name").to_owned(),
                    owners,
                ));
            }
        }
    }
    // Owners being deleted with a finalizer the collector handles.
    let mut finishing: Vec<(String, Value)> = Vec::new();
    for key in &keys {
        for object in store.list(key, None) {
            if at(object, "/metadata/deletionTimestamp").is_none() {
                continue;
            }
            let finalizers = object
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if finalizers.iter().any(|f| f == "orphan" || f == "foregroundDeletion") {
                finishing.push((key.clone(), object.clone()));
            }
        }
    }
    for (key, owner) in finishing {
        let uid = text(&owner, "/metadata/uid").to_owned();
        let dependents: Vec<&(String, String, String, Vec<String>)> =
            refs.iter().filter(|(_, _, _, o)| o.contains(&uid)).collect();
        let orphan = owner["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "orphan"));
        let Some(ty) = store.type_by_key(&key) else { continue };
        if orphan {
            for (dep_key, ns, name, _) in &dependents {
                let Some(dep_ty) = store.type_by_key(dep_key) else {
                    continue;
                };
                if let Some(mut dep) = store.get(dep_key, ns, name).cloned() {
                    let kept: Vec<Value> = dep["metadata"]["ownerReferences"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| r["uid"] != uid.as_str())
                        .collect();
                    dep["metadata"]["ownerReferences"] = json!(kept);
                    store.put_internal(&dep_ty, dep);
                }
            }
        } else if !dependents.is_empty() {
            for (dep_key, ns, name, _) in &dependents {
                let Some(dep_ty) = store.type_by_key(dep_key) else {
                    continue;
                };
                if store
                    .get(dep_key, ns, name)
                    .is_some_and(|d| at(d, "/metadata/deletionTimestamp").is_none())
                {
                    let _ = store.delete(
                        &dep_ty,
                        ns,
                        name,
                        &DeleteOptions {
                            propagation: Some("Foreground".into()),
                            ..DeleteOptions::default()
                        },
                    );
                }
            }
            continue; // the owner waits for its dependents
        }
        let mut done = owner.clone();
        let remaining: Vec<Value> = done["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != "orphan" && f != "foregroundDeletion")
            .collect();
        done["metadata"]["finalizers"] = json!(remaining);
        let (ns, name) = (
            text(&owner, "/metadata/namespace").to_owned(),
            text(&owner, "/metadata/name").to_owned(),
        );
        if remaining.is_empty() && ty.kind != "Pod" {
            store.remove_internal(&key, &ns, &name);
        } else {
            store.put_internal(&ty, done);
        }
    }
    // Dependents whose every owner is gone: background deletion.
    for (key, ns, name, owners) in refs {
        if owners.iter().any(|o| uids.contains(o)) {
            continue;
        }
        let Some(ty) = store.type_by_key(&key) else { continue };
        if store
            .get(&key, &ns, &name)
            .is_some_and(|o| at(o, "/metadata/deletionTimestamp").is_none())
        {
            let _ = store.delete(&ty, &ns, &name, &DeleteOptions::default());
        }
    }
}

fn meta(object: &Value) -> (String, String, String) {
    (
        text(object, "/metadata/namespace").to_owned(),
        text(object, "/metadata/name").to_owned(),
        text(object, "/metadata/uid").to_owned(),
    )
}

fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true})
}

fn pod_from_template(owner: &Value, name: &str, namespace: &str, kind: &str, ordinal: Option<usize>) -> Value {
    let template = &owner["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if let Some(i) = ordinal {
        labels["statefulset.kubernetes.io/pod-name"] = json!(name);
        labels["apps.kubernetes.io/pod-index"] = json!(i.to_string());
    }
    let mut pod = json!({
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
            "ownerReferences": [owner_ref(owner, "apps/v1", kind)]},
        "spec": template["spec"].clone(),
        "status": {"phase": "Pending"},
    });
    if let Some(annotations) = template["metadata"].get("annotations") {
        pod["metadata"]["annotations"] = annotations.clone();
    }
    if ordinal.is_some() {
        pod["spec"]["hostname"] = json!(name);
    }
    let spec = &mut pod["spec"];
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    pod
}

/// A condition, keeping its lastTransitionTime when its status did not change.
fn condition(now: &str, old: Option<&Value>, kind: &str, status: bool, reason: &str, message: &str) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = old
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let since = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut c = json!({"type": kind, "status": status, "lastTransitionTime": since});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// Kubernetes omits zero counts from workload status.
fn clean_zero(status: &mut Value) {
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| k == "replicas" || k == "observedGeneration" || v.as_i64() != Some(0));
    }
}

fn write_status(store: &mut Store, ty: &ResourceType, object: &Value, status: Value) {
    if object.get("status") == Some(&status) {
        return;
    }
    let (ns, name, _) = meta(object);
    // Re-read: an earlier controller in this pass may have written the object.
    let Some(mut current) = store.get(&ty.key(), &ns, &name).cloned() else {
        return;
    };
    current["status"] = status;
    store.put_internal(ty, current);
}

/// The `pod-template-hash` of a template: stable, 10 characters of the name alphabet.
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in template.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char;
            hash /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The selector of a workload, parsed.
pub fn workload_selector(object: &Value) -> Option<LabelSelector> {
    object
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_object(s).ok())
}
