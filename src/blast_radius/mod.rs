//! Which objects an exercise may act on: `resolve` reads them from the cluster (I/O), `guard`
//! decides, from plain values, which of them the blast radius allows (PURE).

pub mod guard;
pub mod resolve;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::scenario::model::FaultKind;

/// What a fault acts on, one object at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Unit {
    /// The pods of the target (podKill, podEvict, networkPartition, in-pod faults…).
    Pod,
    /// The target workload itself (scale).
    Workload,
    /// Nodes (nodeCordon, nodeDrain).
    Node,
}

impl Unit {
    pub fn of(fault: FaultKind<'_>) -> Unit {
        match fault {
            FaultKind::Scale(_) => Unit::Workload,
            FaultKind::NodeCordon(_) | FaultKind::NodeDrain(_) => Unit::Node,
            _ => Unit::Pod,
        }
    }
}

/// A PodDisruptionBudget that covers a pod, and how many more disruptions it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub name: String,
    /// As the budget's status says: the disruption controller updates it some time after a
    /// pod goes.
    pub disruptions_allowed: u32,
    /// How many of its pods must stay healthy (its status's `desiredHealthy`), to count the
    /// headroom from the pods as they are now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_healthy: Option<u32>,
}

/// One object a fault may act on, with what the guard needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// `Pod`, `Deployment`, `StatefulSet`, `DaemonSet` or `Node`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// A Ready pod, a Ready and schedulable node, a workload with all replicas Ready.
    pub ready: bool,
    /// The workload a pod belongs to (`Deployment/checkout`), for `minHealthy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The node a pod runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The PodDisruptionBudget covering a pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// For a workload: its desired replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

impl Candidate {
    /// How journals name it: `ns/name` for a pod, the name for a node.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// `pod shop/checkout-7d4b9-x2k4p`, `node sim-node-1`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.to_lowercase(), self.name),
            None => format!("{} {}", self.kind.to_lowercase(), self.name),
        }
    }
}

/// The label that opts an object out of every exercise.
pub const EXCLUDE_LABEL: &str = "disasterpiece.dev/exclude";
