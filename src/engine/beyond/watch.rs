//! The watches beyond the targets (I/O): Deployments, StatefulSets, DaemonSets and Pods of the
//! watched namespaces and Nodes through kube-runtime watchers (one long request each, nothing
//! polled), and Alertmanager's active alerts, which it can only be asked for (every 500 ms).
//! Each sighting goes to the pure [`Ledger`]; new collateral a halt rule matches pulls the
//! exercise's Andon cord at once.
//!
//! Guarantees: the watch is in sync (every initial list read) before `start` returns, so what
//! was degraded before the first injection is the baseline, not collateral; a watch that
//! cannot be opened fails `start` (the run is refused, nothing was changed); the tasks end
//! when the watcher is stopped or dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::ledger::{Change, Declared, Ledger, Sighting};
use super::{Namespaces, Scope};
use crate::clock::Clock;
use crate::fault::Action;
use crate::report::model::{Collateral, CollateralKind, Watched};

/// How often Alertmanager is asked for its active alerts: it has no watch.
const ALERTS_EVERY: Duration = Duration::from_millis(500);
/// How long the initial lists may take before the watch counts as not opened.
const SYNC_WITHIN: Duration = Duration::from_secs(30);
/// How long new collateral waits for its owner and for the other exercises' journals before
/// it is taken as it is (owner unknown, no other exercise's): a slow API server must not hold
/// a halt up.
const LOOKUP_WITHIN: Duration = Duration::from_secs(1);

/// What the tasks share.
struct Shared {
    client: Client,
    scope: Scope,
    ledger: Mutex<Ledger>,
    clock: Clock,
    /// The exercise's own name: its journal is not "another exercise".
    exercise: String,
    /// Where Node faults are journaled, to find another exercise's Node target.
    nodes_journal_namespace: String,
    halt: watch::Sender<Option<String>>,
    halted_by: Mutex<Option<usize>>,
    /// A namespace's `team` label, read once.
    owners: tokio::sync::Mutex<HashMap<String, Option<String>>>,
}

/// The running watches.
pub struct Watcher {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    watched: Watched,
    /// Findings already handed out by `new_findings`.
    told: usize,
}

/// Why the watch beyond the targets could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {what}: {reason}")]
    Watch { what: String, reason: String },
    #[error("a watch ended before it read its first list")]
    Ended,
    #[error("the watches beyond the targets did not read their first lists within {0}s")]
    Slow(u64),
    #[error("cannot read the alerts of Alertmanager {base}: {source}")]
    Alerts { base: String, source: AlertsError },
}

/// Why Alertmanager's alerts could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertsError {
    #[error("`{base}` is not a URL: {reason}")]
    NotUrl { base: String, reason: String },
    #[error(transparent)]
    Request(#[from] crate::probe::http::RequestError),
    #[error("Alertmanager answered {0}")]
    Status(u16),
    #[error("Alertmanager answered with no list of alerts")]
    NoList,
}

/// How the watcher was started.
pub struct Started {
    pub scope: Scope,
    pub declared: Declared,
    /// Why Nodes are not watched, when they are not.
    pub nodes_not_watched: Option<String>,
    pub alertmanager: Option<String>,
    pub exercise: String,
    pub nodes_journal_namespace: String,
    pub clock: Clock,
}

impl Watcher {
    /// Opens every watch and waits until each has read its initial list. `halt` is the
    /// exercise's Andon cord. Fails, naming the watch, when one cannot be opened.
    pub async fn start(
        client: &Client,
        started: Started,
        halt: watch::Sender<Option<String>>,
    ) -> Result<Watcher, WatchError> {
        let Started {
            scope,
            declared,
            nodes_not_watched,
            alertmanager,
            exercise,
            nodes_journal_namespace,
            clock,
        } = started;
        let watched = Watched {
            namespaces: scope.namespaces.names(),
            nodes: nodes_not_watched.is_none(),
            nodes_not_watched: nodes_not_watched.clone(),
            alertmanager: alertmanager.clone(),
            already_firing: Vec::new(),
            halts_on: scope.halts_on(),
        };
        let namespaces = scope.namespaces.clone();
        let shared = Arc::new(Shared {
            client: client.clone(),
            scope,
            ledger: Mutex::new(Ledger::new(declared)),
            clock,
            exercise,
            nodes_journal_namespace,
            halt,
            halted_by: Mutex::new(None),
            owners: tokio::sync::Mutex::new(HashMap::new()),
        });
        let (ready, mut synced) = mpsc::channel::<Result<(), WatchError>>(64);
        let mut watcher = Watcher {
            shared: shared.clone(),
            tasks: Vec::new(),
            watched,
            told: 0,
        };
        let apis: Vec<Option<String>> = match &namespaces {
            Namespaces::All => vec![None],
            Namespaces::Some(set) => set.iter().cloned().map(Some).collect(),
        };
        for ns in &apis {
            let where_ = ns
                .as_ref()
                .map_or("in every namespace".to_owned(), |ns| format!("in namespace {ns}"));
            let what = |kinds: &str| format!("{kinds} {where_}");
            watcher.spawn(api::<Deployment>(client, ns), what("Deployments"), &ready, workload);
            watcher.spawn(api::<StatefulSet>(client, ns), what("StatefulSets"), &ready, workload);
            watcher.spawn(api::<DaemonSet>(client, ns), what("DaemonSets"), &ready, workload);
            watcher.spawn(api::<Pod>(client, ns), what("Pods"), &ready, pod);
        }
        if nodes_not_watched.is_none() {
            watcher.spawn::<Node>(Api::all(client.clone()), "Nodes".into(), &ready, node);
        }
        let expected = watcher.tasks.len();
        if let Some(base) = alertmanager {
            let firing = alerts(&base).await.map_err(|source| WatchError::Alerts {
                base: base.clone(),
                source,
            })?;
            let now = shared.clock.now();
            {
                let mut ledger = lock(&shared.ledger);
                for labels in &firing {
                    // Firing already: the baseline of this alert is "firing".
                    ledger.see(&alert(labels, false), None, now);
                }
            }
            watcher.watched.already_firing = firing.iter().map(alert_text).collect();
            let (shared, task_base) = (shared.clone(), base.clone());
            watcher.tasks.push(tokio::spawn(async move {
                poll_alerts(&shared, &task_base, firing).await;
            }));
        }
        drop(ready);
        let wait = async {
            for _ in 0..expected {
                match synced.recv().await {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(WatchError::Ended),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(SYNC_WITHIN, wait).await {
            Ok(Ok(())) => Ok(watcher),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(WatchError::Slow(SYNC_WITHIN.as_secs())),
        }
    }

    fn spawn<K>(
        &mut self,
        api: Api<K>,
        what: String,
        ready: &mpsc::Sender<Result<(), WatchError>>,
        sight: fn(&K) -> Option<Sighting>,
    ) where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    {
        let (shared, ready) = (self.shared.clone(), ready.clone());
        self.tasks.push(tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
            let mut synced = false;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => {
                        if let Some(seen) = sight(&o) {
                            take(&shared, seen).await;
                        }
                    }
                    Ok(Event::Delete(o)) => {
                        if let Some(seen) = sight(&o) {
                            lock(&shared.ledger).gone(&seen.key(), shared.clock.now());
                        }
                    }
                    Ok(Event::InitDone) if !synced => {
                        synced = true;
                        let _ = ready.send(Ok(())).await;
                    }
                    Ok(Event::Init | Event::InitDone) => {}
                    Err(e) if !synced => {
                        let failed = WatchError::Watch {
                            what: what.clone(),
                            reason: e.to_string(),
                        };
                        let _ = ready.send(Err(failed)).await;
                        return;
                    }
                    Err(e) => tracing::warn!("the watch of {what} failed, and is opened again: {e}"),
                }
            }
        }));
    }

    /// Collateral found since the last call (for the progress and the controller's Events),
    /// with whether it halts.
    pub fn new_findings(&mut self) -> Vec<Collateral> {
        let now = self.shared.clock.now();
        let all = lock(&self.shared.ledger).findings(now);
        let new = all.into_iter().skip(self.told).collect::<Vec<_>>();
        self.told += new.len();
        new
    }

    /// Stops every watch: what was watched, everything found, and which one halted.
    pub fn stop(self) -> (Watched, Vec<Collateral>, Option<usize>) {
        for task in &self.tasks {
            task.abort();
        }
        let now = self.shared.clock.now();
        let found = lock(&self.shared.ledger).findings(now);
        let halted_by = *lock(&self.shared.halted_by);
        (self.watched.clone(), found, halted_by)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The objects of one namespace, or of all.
fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A poisoned lock still holds a usable ledger: a panic elsewhere must not blind the watch.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One sighting into the ledger; new collateral is attributed, checked against the other
/// live exercises, and halts the exercise when a rule says so.
async fn take(shared: &Shared, seen: Sighting) {
    let new = would_be_new(shared, &seen);
    let owner = match (&seen.team, &seen.namespace) {
        (Some(team), _) => Some(team.clone()),
        (None, Some(ns)) if new => tokio::time::timeout(LOOKUP_WITHIN, namespace_team(shared, ns))
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    if new
        && tokio::time::timeout(LOOKUP_WITHIN, another_exercises(shared, &seen))
            .await
            .unwrap_or(false)
    {
        return;
    }
    let now = shared.clock.now();
    let change = lock(&shared.ledger).see(&seen, owner, now);
    let Change::New(i) = change else { return };
    let Some(found) = lock(&shared.ledger).finding(i).cloned() else {
        return;
    };
    let Some(rule) = shared.scope.halt_rule(&found) else {
        return;
    };
    lock(&shared.ledger).halts(i);
    let owner = found
        .owner
        .as_deref()
        .map(|o| format!(", owner {o}"))
        .unwrap_or_default();
    let reason = format!(
        "unanticipated impact: {} {}{owner} (halts on {rule})",
        found.subject, found.what
    );
    let first = shared.halt.send_if_modified(|asked| {
        if asked.is_none() {
            *asked = Some(reason.clone());
            true
        } else {
            false
        }
    });
    if first {
        *lock(&shared.halted_by) = Some(i);
    }
}

/// Whether this sighting would be new collateral (the async checks are made only then).
fn would_be_new(shared: &Shared, seen: &Sighting) -> bool {
    lock(&shared.ledger).would_be_new(seen)
}

/// The `team` label of a namespace, read once.
async fn namespace_team(shared: &Shared, ns: &str) -> Option<String> {
    let mut owners = shared.owners.lock().await;
    if let Some(team) = owners.get(ns) {
        return team.clone();
    }
    let team = Api::<Namespace>::all(shared.client.clone())
        .get_opt(ns)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.labels().get("team").cloned());
    owners.insert(ns.to_owned(), team.clone());
    team
}

/// Whether another live exercise has a fault on record on this object (its own target, not
/// our collateral). Journals that cannot be read count as no.
async fn another_exercises(shared: &Shared, seen: &Sighting) -> bool {
    let ns = match seen.kind {
        CollateralKind::Alert => return false,
        CollateralKind::Node => shared.nodes_journal_namespace.clone(),
        _ => seen.namespace.clone().unwrap_or_default(),
    };
    let Ok(active) = crate::engine::journal::active(&shared.client, &ns).await else {
        return false;
    };
    active
        .iter()
        .filter(|a| a.exercise != shared.exercise)
        .any(|a| touches(&a.action, seen))
}

/// Whether `action` acts on what `seen` is: the same pod, node or scaled workload; a pod on a
/// drained node; a workload one of whose pods (named `<workload>-…`, as Deployments,
/// StatefulSets and DaemonSets name them) it acts on.
fn touches(action: &Action, seen: &Sighting) -> bool {
    let ns = seen.namespace.as_deref().unwrap_or("");
    let pod_of = |namespace: &str, pod: &str| {
        namespace == ns
            && match seen.kind {
                CollateralKind::Pod => pod == seen.name,
                CollateralKind::Workload => pod.starts_with(&format!("{}-", seen.name)),
                _ => false,
            }
    };
    match action {
        Action::DeletePod { namespace, pod, .. }
        | Action::EvictPod { namespace, pod, .. }
        | Action::Partition { namespace, pod, .. }
        | Action::BlockDns { namespace, pod, .. }
        | Action::InPod { namespace, pod, .. } => pod_of(namespace, pod),
        Action::Scale {
            kind, namespace, name, ..
        } => {
            seen.kind == CollateralKind::Workload && *kind == seen.object_kind && namespace == ns && *name == seen.name
        }
        Action::Cordon { node } => seen.kind == CollateralKind::Node && *node == seen.name,
        Action::Drain { node, .. } => {
            (seen.kind == CollateralKind::Node && *node == seen.name) || seen.node.as_ref() == Some(node)
        }
    }
}

fn team(labels: &BTreeMap<String, String>) -> Option<String> {
    labels.get("team").cloned()
}

/// A Deployment, StatefulSet or DaemonSet: healthy while its Ready replicas reach its desired
/// count.
fn workload<K: kube::Resource<DynamicType = ()> + serde::Serialize>(object: &K) -> Option<Sighting> {
    let value = serde_json::to_value(object).ok()?;
    let kind = K::kind(&()).to_string();
    let (want, ready) = match kind.as_str() {
        "DaemonSet" => (
            value["status"]["desiredNumberScheduled"].as_u64().unwrap_or(0),
            value["status"]["numberReady"].as_u64().unwrap_or(0),
        ),
        _ => (
            value["spec"]["replicas"].as_u64().unwrap_or(1),
            value["status"]["readyReplicas"].as_u64().unwrap_or(0),
        ),
    };
    let meta = object.meta();
    Some(Sighting {
        kind: CollateralKind::Workload,
        object_kind: kind,
        namespace: meta.namespace.clone(),
        name: meta.name.clone()?,
        healthy: ready >= want,
        ready: Some(u32::try_from(ready).unwrap_or(u32::MAX)),
        restarts: 0,
        what: format!("{ready}/{want} Ready"),
        workload: None,
        node: None,
        team: meta.labels.as_ref().and_then(team),
        labels: BTreeMap::new(),
    })
}

/// A pod: healthy while Ready (a pod still starting or ending is left out: neither is a
/// degradation); its restarts summed over its containers.
fn pod(pod: &Pod) -> Option<Sighting> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let restarts = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
        .sum();
    Some(Sighting {
        kind: CollateralKind::Pod,
        object_kind: "Pod".into(),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone()?,
        healthy: ready,
        ready: None,
        restarts,
        what: if ready { "Ready" } else { "not Ready" }.into(),
        workload: owning_workload(pod),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        team: pod.metadata.labels.as_ref().and_then(team),
        labels: BTreeMap::new(),
    })
}

/// The workload a pod belongs to (`Deployment/checkout`), from its owner: a ReplicaSet named
/// `<deployment>-<pod-template-hash>` is a Deployment's, as the Deployment controller names
/// them; a StatefulSet's or DaemonSet's pods name it directly.
pub fn owning_workload(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))?;
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash")?;
            let deployment = owner.name.strip_suffix(&format!("-{hash}"))?;
            Some(format!("Deployment/{deployment}"))
        }
        "StatefulSet" | "DaemonSet" => Some(format!("{}/{}", owner.kind, owner.name)),
        _ => None,
    }
}

/// A Node: healthy while Ready and schedulable.
fn node(node: &Node) -> Option<Sighting> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    let what = match (ready, cordoned) {
        (true, false) => "Ready",
        (true, true) => "cordoned (not schedulable)",
        (false, false) => "not Ready",
        (false, true) => "not Ready and cordoned",
    };
    Some(Sighting {
        kind: CollateralKind::Node,
        object_kind: "Node".into(),
        namespace: None,
        name: node.metadata.name.clone()?,
        healthy: ready && !cordoned,
        ready: None,
        restarts: 0,
        what: what.into(),
        workload: None,
        node: None,
        team: node.metadata.labels.as_ref().and_then(team),
        labels: BTreeMap::new(),
    })
}

/// An alert, by its labels; `healthy` is false while it fires.
fn alert(labels: &BTreeMap<String, String>, resolved: bool) -> Sighting {
    Sighting {
        kind: CollateralKind::Alert,
        object_kind: "Alert".into(),
        namespace: labels.get("namespace").cloned(),
        name: labels.get("alertname").cloned().unwrap_or_default(),
        healthy: resolved,
        ready: None,
        restarts: 0,
        what: if resolved { "resolved" } else { "firing" }.into(),
        workload: None,
        node: None,
        team: team(labels),
        labels: labels.clone(),
    }
}

/// `Name{k="v",…}`, for people.
fn alert_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("alertname").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// Asks Alertmanager for its alerts every [`ALERTS_EVERY`]: a new one that the hypothesis
/// does not name is unanticipated; one that is gone from the list has resolved.
async fn poll_alerts(shared: &Shared, base: &str, baseline: Vec<BTreeMap<String, String>>) {
    let mut firing: Vec<BTreeMap<String, String>> = baseline;
    loop {
        tokio::time::sleep(ALERTS_EVERY).await;
        let now_firing = match alerts(base).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("cannot read the alerts of Alertmanager {base}: {e}");
                continue;
            }
        };
        for labels in &now_firing {
            if firing.contains(labels) || shared.scope.anticipates(labels) {
                continue;
            }
            // Not firing before: its baseline is "not firing", then it fires.
            lock(&shared.ledger).see(&alert(labels, true), None, shared.clock.now());
            take(shared, alert(labels, false)).await;
        }
        for labels in firing.iter().filter(|l| !now_firing.contains(l)) {
            let now = shared.clock.now();
            lock(&shared.ledger).see(&alert(labels, true), None, now);
        }
        firing = now_firing;
    }
}

/// Whether Alertmanager answers with its alerts.
pub async fn reachable(base: &str) -> Result<(), AlertsError> {
    alerts(base).await.map(|_| ())
}

/// The labels of every active alert (not silenced, not inhibited) Alertmanager has.
async fn alerts(base: &str) -> Result<Vec<crate::probe::prometheus::Labels>, AlertsError> {
    let url = url::Url::parse(base).map_err(|e| AlertsError::NotUrl {
        base: base.to_owned(),
        reason: e.to_string(),
    })?;
    let path = format!(
        "{}/api/v2/alerts?active=true&silenced=false&inhibited=false",
        url.path().trim_end_matches('/')
    );
    let (status, body) = crate::probe::http::direct(None, &url, "GET", &path, &Default::default()).await?;
    if status != 200 {
        return Err(AlertsError::Status(status));
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).map_err(|_| AlertsError::NoList)?;
    Ok(list
        .iter()
        .filter(|a| a["status"]["state"] == "active")
        .filter_map(|a| serde_json::from_value(a["labels"].clone()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(kind: CollateralKind, object_kind: &str, ns: Option<&str>, name: &str, node: Option<&str>) -> Sighting {
        Sighting {
            kind,
            object_kind: object_kind.into(),
            namespace: ns.map(str::to_owned),
            name: name.into(),
            healthy: false,
            ready: None,
            restarts: 0,
            what: String::new(),
            workload: None,
            node: node.map(str::to_owned),
            team: None,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn another_exercises_fault_covers_its_pod_its_workload_and_what_a_drain_reaches() {
        let kill = Action::DeletePod {
            namespace: "orders".into(),
            pod: "orders-7d9f-x2".into(),
            grace_period_seconds: None,
        };
        let workload = sighting(CollateralKind::Workload, "Deployment", Some("orders"), "orders", None);
        let pod = sighting(CollateralKind::Pod, "Pod", Some("orders"), "orders-7d9f-x2", None);
        let other = sighting(CollateralKind::Workload, "Deployment", Some("orders"), "payments", None);
        assert!(touches(&kill, &workload));
        assert!(touches(&kill, &pod));
        assert!(!touches(&kill, &other));
        let drain = Action::Drain {
            node: "worker-2".into(),
            grace_period_seconds: None,
            timeout_seconds: 60,
        };
        let on_node = sighting(CollateralKind::Pod, "Pod", Some("x"), "a", Some("worker-2"));
        assert!(touches(&drain, &on_node));
        assert!(touches(
            &drain,
            &sighting(CollateralKind::Node, "Node", None, "worker-2", None)
        ));
        let scale = Action::Scale {
            kind: "Deployment".into(),
            namespace: "orders".into(),
            name: "orders".into(),
            from: 2,
            to: 1,
        };
        assert!(touches(&scale, &workload));
        assert!(!touches(&scale, &pod));
    }

    #[test]
    fn a_pods_workload_comes_from_its_controller() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "checkout-5d8f7-abcde", "labels": {"pod-template-hash": "5d8f7"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-5d8f7", "uid": "u", "controller": true}]}
        }))
        .expect("pod");
        assert_eq!(owning_workload(&pod).as_deref(), Some("Deployment/checkout"));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cache-0", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "cache", "uid": "u", "controller": true}]}
        }))
        .expect("pod");
        assert_eq!(owning_workload(&pod).as_deref(), Some("StatefulSet/cache"));
    }
}
