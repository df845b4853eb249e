//! The ledger of what degraded beyond the targets. PURE: the watches feed it what they see,
//! each time stamped by the run's clock; it answers whether that is new collateral.
//!
//! The first sight of an object is its baseline: what was already degraded when the watch
//! began (or when the object appeared, e.g. a new pod starting) is not the exercise's doing.
//! Collateral is a change for the worse after that: a healthy object becoming unhealthy, or a
//! pod's restart count going up. An object the exercise declared (a target, a pod of a target
//! workload, a pod on a target node) is never collateral.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::report::model::{Collateral, CollateralKind};

/// What a watch saw of one object, reduced to what the ledger needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub kind: CollateralKind,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Pod`, `Node`, or the alert's name.
    pub object_kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub healthy: bool,
    /// A workload's Ready replicas: it degrades when they fall below its desired count (a
    /// scale-up that is not Ready yet is no degradation).
    pub ready: Option<u32>,
    /// A pod's restarts, summed over its containers.
    pub restarts: u32,
    /// For people: `1/3 Ready (wants 3)`, `not Ready`, `firing`.
    pub what: String,
    /// The workload a pod belongs to (`Deployment/checkout`), and the node it runs on.
    pub workload: Option<String>,
    pub node: Option<String>,
    /// The object's own `team` label (an alert's `team` label).
    pub team: Option<String>,
    /// An alert's labels.
    pub labels: BTreeMap<String, String>,
}

impl Sighting {
    /// `Deployment orders/orders`, `Node worker-2`, an alert's name.
    pub fn subject(&self) -> String {
        match (&self.kind, &self.namespace) {
            (CollateralKind::Alert, _) => self.name.clone(),
            (_, Some(ns)) => format!("{} {ns}/{}", self.object_kind, self.name),
            (_, None) => format!("{} {}", self.object_kind, self.name),
        }
    }

    /// What identifies it across sightings: an alert's labels, an object's kind and name.
    pub fn key(&self) -> String {
        if self.kind == CollateralKind::Alert {
            let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            return format!("Alert/{}", labels.join(","));
        }
        format!(
            "{}/{}/{}",
            self.object_kind,
            self.namespace.as_deref().unwrap_or(""),
            self.name
        )
    }
}

/// The blast radius the exercise declared: never collateral.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Declared {
    /// `(kind, namespace, name)` of target workloads (and of the workloads of target pods,
    /// whose replacements are the system's answer to the fault, not collateral).
    pub workloads: HashSet<(String, String, String)>,
    /// `(namespace, name)` of target pods.
    pub pods: HashSet<(String, String)>,
    pub nodes: HashSet<String>,
}

impl Declared {
    pub fn covers(&self, seen: &Sighting) -> bool {
        let ns = seen.namespace.clone().unwrap_or_default();
        match seen.kind {
            CollateralKind::Alert => false,
            CollateralKind::Node => self.nodes.contains(&seen.name),
            CollateralKind::Workload => self
                .workloads
                .contains(&(seen.object_kind.clone(), ns, seen.name.clone())),
            CollateralKind::Pod => {
                self.pods.contains(&(ns.clone(), seen.name.clone()))
                    || seen.node.as_ref().is_some_and(|n| self.nodes.contains(n))
                    || seen.workload.as_ref().is_some_and(|w| {
                        w.split_once('/')
                            .is_some_and(|(k, n)| self.workloads.contains(&(k.to_owned(), ns.clone(), n.to_owned())))
                    })
            }
        }
    }
}

/// What the ledger keeps of one object.
#[derive(Debug, Clone)]
struct State {
    healthy: bool,
    ready: Option<u32>,
    restarts: u32,
    /// Its finding, when it has one.
    finding: Option<usize>,
    /// Since when it is degraded, while it is.
    degraded_since: Option<DateTime<Utc>>,
}

/// The ledger: the state of every object seen, and the collateral found.
#[derive(Debug, Default)]
pub struct Ledger {
    declared: Declared,
    states: HashMap<String, State>,
    found: Vec<Collateral>,
    /// Seconds each finding was degraded in episodes already over.
    past: Vec<f64>,
}

/// What a sighting changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Nothing,
    /// New collateral, at this index of the findings.
    New(usize),
}

impl Ledger {
    pub fn new(declared: Declared) -> Self {
        Ledger {
            declared,
            ..Ledger::default()
        }
    }

    /// Takes a sighting at `at`. `owner` is who the object belongs to, when known.
    pub fn see(&mut self, seen: &Sighting, owner: Option<String>, at: DateTime<Utc>) -> Change {
        self.declare_workload_on_target_node(seen);
        if self.declared.covers(seen) {
            return Change::Nothing;
        }
        let key = seen.key();
        let Some(state) = self.states.get_mut(&key) else {
            // The baseline: as it was when the watch began, or when it appeared.
            self.states.insert(
                key,
                State {
                    healthy: seen.healthy,
                    ready: seen.ready,
                    restarts: seen.restarts,
                    finding: None,
                    degraded_since: None,
                },
            );
            return Change::Nothing;
        };
        let restarted = seen.restarts > state.restarts;
        let worse = worse(state, seen) || restarted;
        let what = if restarted {
            format!(
                "restarted ({} → {}){}",
                state.restarts,
                seen.restarts,
                if seen.healthy { "" } else { ", not Ready" }
            )
        } else {
            seen.what.clone()
        };
        let mut change = Change::Nothing;
        if worse {
            if state.degraded_since.is_none() {
                state.degraded_since = Some(at);
            }
            match state.finding {
                Some(i) => {
                    if let Some(found) = self.found.get_mut(i) {
                        found.what = what;
                        found.until = None;
                    }
                }
                None => {
                    self.found.push(Collateral {
                        kind: seen.kind,
                        subject: seen.subject(),
                        namespace: seen.namespace.clone(),
                        what,
                        labels: seen.labels.clone(),
                        owner,
                        first_seen: at,
                        until: None,
                        for_s: 0.0,
                        halts: false,
                    });
                    self.past.push(0.0);
                    state.finding = Some(self.found.len() - 1);
                    change = Change::New(self.found.len() - 1);
                }
            }
            if seen.healthy {
                // A restart of a pod that is Ready again by the time it is seen: an episode
                // that is already over.
                state.degraded_since = None;
                if let Some(found) = state.finding.and_then(|i| self.found.get_mut(i)) {
                    found.until = Some(at);
                }
            }
        } else if seen.healthy
            && !state.healthy
            && let (Some(i), Some(since)) = (state.finding, state.degraded_since.take())
        {
            // Healthy again: the episode ends.
            if let (Some(found), Some(past)) = (self.found.get_mut(i), self.past.get_mut(i)) {
                found.until = Some(at);
                *past += seconds(since, at);
            }
        }
        state.healthy = seen.healthy;
        state.ready = seen.ready;
        state.restarts = state.restarts.max(seen.restarts);
        change
    }

    /// A pod on a target node (a drain, a cordon) is hit by the fault itself, and so is the
    /// workload it belongs to: that workload falling below its replicas is declared, not
    /// collateral. Learnt from the pods as they are seen, the first time before the injection.
    fn declare_workload_on_target_node(&mut self, seen: &Sighting) {
        if seen.kind == CollateralKind::Pod
            && seen.node.as_ref().is_some_and(|n| self.declared.nodes.contains(n))
            && let Some((kind, name)) = seen.workload.as_deref().and_then(|w| w.split_once('/'))
        {
            let ns = seen.namespace.clone().unwrap_or_default();
            self.declared.workloads.insert((kind.to_owned(), ns, name.to_owned()));
        }
    }

    /// Whether `seen` would be new collateral (a cheap look before the async checks).
    pub fn would_be_new(&self, seen: &Sighting) -> bool {
        if self.declared.covers(seen) {
            return false;
        }
        self.states
            .get(&seen.key())
            .is_some_and(|s| s.finding.is_none() && (worse(s, seen) || seen.restarts > s.restarts))
    }

    /// An object was deleted: a degraded one's episode ends there, and a new object of the
    /// same name starts from its own baseline.
    pub fn gone(&mut self, key: &str, at: DateTime<Utc>) {
        if let Some(state) = self.states.remove(key)
            && let (Some(i), Some(since)) = (state.finding, state.degraded_since)
            && let (Some(found), Some(past)) = (self.found.get_mut(i), self.past.get_mut(i))
        {
            found.until = Some(at);
            *past += seconds(since, at);
        }
    }

    /// Marks finding `i` as one a halt rule matched.
    pub fn halts(&mut self, i: usize) {
        if let Some(found) = self.found.get_mut(i) {
            found.halts = true;
        }
    }

    pub fn finding(&self, i: usize) -> Option<&Collateral> {
        self.found.get(i)
    }

    /// How many findings there are.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The findings as of `at`, the end of the watch: what is still degraded counts until
    /// then.
    pub fn findings(&self, at: DateTime<Utc>) -> Vec<Collateral> {
        let open: HashMap<usize, DateTime<Utc>> = self
            .states
            .values()
            .filter_map(|s| Some((s.finding?, s.degraded_since?)))
            .collect();
        self.found
            .iter()
            .enumerate()
            .map(|(i, found)| {
                let mut found = found.clone();
                let past = self.past.get(i).copied().unwrap_or_default();
                found.for_s = past + open.get(&i).map_or(0.0, |since| seconds(*since, at));
                found
            })
            .collect()
    }
}

/// Whether `seen` is worse than `before`: a workload's Ready replicas fell while below its
/// desired count; anything else went from healthy to not.
fn worse(before: &State, seen: &Sighting) -> bool {
    match (before.ready, seen.ready) {
        (Some(was), Some(now)) => !seen.healthy && now < was,
        _ => before.healthy && !seen.healthy,
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("time")
    }

    fn deployment(ns: &str, name: &str, ready: u32, want: u32) -> Sighting {
        Sighting {
            kind: CollateralKind::Workload,
            object_kind: "Deployment".into(),
            namespace: Some(ns.into()),
            name: name.into(),
            healthy: ready >= want,
            ready: Some(ready),
            restarts: 0,
            what: format!("{ready}/{want} Ready"),
            workload: None,
            node: None,
            team: None,
            labels: BTreeMap::new(),
        }
    }

    fn pod(ns: &str, name: &str, workload: &str, ready: bool, restarts: u32) -> Sighting {
        Sighting {
            kind: CollateralKind::Pod,
            object_kind: "Pod".into(),
            namespace: Some(ns.into()),
            name: name.into(),
            healthy: ready,
            ready: None,
            restarts,
            what: if ready { "Ready" } else { "not Ready" }.into(),
            workload: Some(workload.into()),
            node: Some("worker-1".into()),
            team: None,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn a_workload_that_falls_below_its_replicas_after_the_baseline_is_collateral_with_its_duration() {
        let mut ledger = Ledger::new(Declared::default());
        assert_eq!(
            ledger.see(&deployment("orders", "orders", 2, 2), None, at(0)),
            Change::Nothing
        );
        assert_eq!(
            ledger.see(&deployment("orders", "orders", 0, 2), Some("orders-team".into()), at(3)),
            Change::New(0)
        );
        // Still down: the same finding, no new one.
        assert_eq!(
            ledger.see(&deployment("orders", "orders", 1, 2), None, at(4)),
            Change::Nothing
        );
        ledger.see(&deployment("orders", "orders", 2, 2), None, at(8));
        let found = ledger.findings(at(20));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, "Deployment orders/orders");
        assert_eq!(found[0].owner.as_deref(), Some("orders-team"));
        assert_eq!((found[0].first_seen, found[0].until), (at(3), Some(at(8))));
        assert_eq!(found[0].for_s, 5.0);
    }

    #[test]
    fn what_was_degraded_at_the_baseline_or_is_declared_is_not_collateral() {
        let declared = Declared {
            workloads: [("Deployment".to_owned(), "shop".to_owned(), "checkout".to_owned())].into(),
            pods: [("shop".to_owned(), "frontend-1".to_owned())].into(),
            nodes: ["worker-9".to_owned()].into(),
        };
        let mut ledger = Ledger::new(declared);
        // Already degraded when the watch began.
        ledger.see(&deployment("orders", "legacy", 0, 1), None, at(0));
        ledger.see(&deployment("orders", "legacy", 0, 1), None, at(5));
        // The target workload, a replacement pod of it, a target pod, a pod on a target node.
        ledger.see(&deployment("shop", "checkout", 3, 3), None, at(0));
        ledger.see(&deployment("shop", "checkout", 1, 3), None, at(1));
        ledger.see(
            &pod("shop", "checkout-new", "Deployment/checkout", true, 0),
            None,
            at(0),
        );
        ledger.see(
            &pod("shop", "checkout-new", "Deployment/checkout", false, 1),
            None,
            at(1),
        );
        ledger.see(&pod("shop", "frontend-1", "Deployment/frontend", true, 0), None, at(0));
        ledger.see(&pod("shop", "frontend-1", "Deployment/frontend", false, 0), None, at(1));
        let mut on_node = pod("shop", "cache-1", "StatefulSet/cache", true, 0);
        on_node.node = Some("worker-9".into());
        ledger.see(&on_node, None, at(0));
        on_node.healthy = false;
        ledger.see(&on_node, None, at(1));
        // The workload of a pod on a target node is hit by the fault itself.
        let mut cache = deployment("shop", "cache", 3, 3);
        cache.object_kind = "StatefulSet".into();
        ledger.see(&cache, None, at(0));
        cache.healthy = false;
        ledger.see(&cache, None, at(2));
        assert!(ledger.is_empty(), "{:#?}", ledger.findings(at(9)));
    }

    #[test]
    fn a_restart_is_collateral_even_when_the_pod_stays_ready_and_a_deleted_object_ends_its_episode() {
        let mut ledger = Ledger::new(Declared::default());
        ledger.see(&pod("orders", "orders-1", "Deployment/orders", true, 2), None, at(0));
        assert_eq!(
            ledger.see(&pod("orders", "orders-1", "Deployment/orders", true, 3), None, at(2)),
            Change::New(0)
        );
        assert_eq!(ledger.findings(at(2))[0].what, "restarted (2 → 3)");
        ledger.see(&pod("orders", "orders-2", "Deployment/orders", true, 0), None, at(0));
        ledger.see(&pod("orders", "orders-2", "Deployment/orders", false, 0), None, at(4));
        ledger.gone("Pod/orders/orders-2", at(6));
        let found = ledger.findings(at(10));
        assert_eq!(found[1].until, Some(at(6)));
        assert_eq!(found[1].for_s, 2.0);
        // A scale-up whose new replicas are not Ready yet is no degradation; a fall is.
        let mut ledger = Ledger::new(Declared::default());
        ledger.see(&deployment("orders", "orders", 2, 2), None, at(0));
        assert_eq!(
            ledger.see(&deployment("orders", "orders", 2, 4), None, at(1)),
            Change::Nothing
        );
        assert_eq!(
            ledger.see(&deployment("orders", "orders", 3, 4), None, at(2)),
            Change::Nothing
        );
        assert_eq!(
            ledger.see(&deployment("orders", "orders", 1, 4), None, at(3)),
            Change::New(0)
        );
        // Still open at the end of the watch: counted until then.
        let mut ledger = Ledger::new(Declared::default());
        ledger.see(&deployment("orders", "orders", 2, 2), None, at(0));
        ledger.see(&deployment("orders", "orders", 0, 2), None, at(1));
        let found = ledger.findings(at(10));
        assert_eq!((found[0].until, found[0].for_s), (None, 9.0));
    }
}
