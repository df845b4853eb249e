//! Faults. Each acts on ONE target; the engine chooses targets and the guard approves them.
//!
//! Expected flow: [`prepare`] reads what the fault will need to restore and returns the
//! [`Prepared`] action with its [`Undo`] steps — the engine journals that *before* acting —
//! then [`apply`] performs it (with `dry_run`, the same requests go out with `dryRun=All`).
//! Guarantees: [`revert`] is idempotent — an undo whose object is already gone or already
//! restored succeeds. Caveats: a pod deleted by podKill/podEvict is not "reverted"; its
//! controller replaces it, and the exercise measures that.

pub mod dns_failure;
pub mod in_pod;
pub mod network_partition;
pub mod node_cordon;
pub mod node_drain;
pub mod pod_evict;
pub mod pod_kill;
pub mod review;
pub mod scale;

use std::fmt;

use kube::Client;
use serde::{Deserialize, Serialize};

use crate::blast_radius::Candidate;
use crate::scenario::model::FaultKind;

/// Labels every object Disasterpiece creates, so `recover` and people can find them.
pub const EXERCISE_LABEL: &str = "disasterpiece.dev/exercise";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "disasterpiece");

/// Who acts, for which exercise, and whether for real.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// The exercise id, used to name and label what the fault creates.
    pub exercise: String,
    pub dry_run: bool,
    /// The image and duration of in-pod fault containers.
    pub in_pod: in_pod::Settings,
    /// What time it is: when an in-pod fault's window ends.
    pub clock: crate::clock::Clock,
}

/// A fault ready to be applied to one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prepared {
    pub action: Action,
    /// What puts things back, in order.
    pub undo: Vec<Undo>,
}

/// What a fault does, with everything needed to do it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    DeletePod {
        namespace: String,
        pod: String,
        grace_period_seconds: Option<u32>,
    },
    EvictPod {
        namespace: String,
        pod: String,
        grace_period_seconds: Option<u32>,
    },
    Scale {
        kind: String,
        namespace: String,
        name: String,
        from: u32,
        to: u32,
    },
    Cordon {
        node: String,
    },
    Drain {
        node: String,
        grace_period_seconds: Option<u32>,
        timeout_seconds: u64,
    },
    Partition {
        namespace: String,
        pod: String,
        policy: String,
        ingress: bool,
        egress: bool,
    },
    BlockDns {
        namespace: String,
        pod: String,
        policy: String,
    },
    /// An ephemeral container that applies the fault inside the pod and ends on its own.
    InPod {
        namespace: String,
        pod: String,
        fault: String,
        /// What it does, for people: `tc netem delay 300ms on eth0 for 1m`.
        effect: String,
        /// The container as sent.
        container: serde_json::Value,
    },
}

/// One step that puts something back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "undo")]
pub enum Undo {
    /// The controller replaces what was lost; nothing to do.
    Nothing {
        why: String,
    },
    SetReplicas {
        kind: String,
        namespace: String,
        name: String,
        replicas: u32,
    },
    Uncordon {
        node: String,
    },
    DeleteNetworkPolicy {
        namespace: String,
        name: String,
    },
    RemovePodLabel {
        namespace: String,
        pod: String,
        key: String,
    },
    /// TERM to an in-pod fault's script, then wait until its container has ended cleanly.
    StopInPod {
        namespace: String,
        pod: String,
        container: String,
        fault: String,
        /// When the container ends on its own.
        ends_at: chrono::DateTime<chrono::Utc>,
    },
}

/// How applying went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Outcome {
    Injected,
    /// A drain: the node is cordoned and these pods (`namespace/name`) were evicted (with
    /// `dryRun`: would be).
    Evicted {
        pods: Vec<String>,
    },
    /// Partly in place (a drain that timed out: the node cordoned, some pods evicted, others
    /// held by a PodDisruptionBudget): reverted like the rest, reported as partial.
    Partial {
        evicted: Vec<String>,
        reason: String,
    },
    /// Refused by the cluster in a way that is a finding, not an error (a PDB said no).
    NotInjected {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The API server's own words, not kube's debug rendering of them.
    #[error("{action}: {}", api_message(source))]
    Api { action: String, source: kube::Error },
    #[error("{0}")]
    Refused(String),
}

impl FaultError {
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> FaultError {
        let action = action.into();
        move |source| FaultError::Api { action, source }
    }
}

use crate::api::api_message;

/// Reads what `fault` on `target` will need to restore.
pub async fn prepare(ctx: &Context, fault: FaultKind<'_>, target: &Candidate) -> Result<Prepared, FaultError> {
    match fault {
        FaultKind::PodKill(p) => Ok(pod_kill::prepare(p, target)),
        FaultKind::PodEvict(p) => Ok(pod_evict::prepare(p, target)),
        FaultKind::Scale(p) => scale::prepare(ctx, p, target).await,
        FaultKind::NodeCordon(_) => node_cordon::prepare(ctx, target).await,
        FaultKind::NodeDrain(p) => node_drain::prepare(ctx, p, target).await,
        FaultKind::NetworkPartition(p) => Ok(network_partition::prepare(ctx, p, target)),
        FaultKind::DnsFailure(_) => Ok(dns_failure::prepare(ctx, target)),
        FaultKind::NetworkDelay(_)
        | FaultKind::NetworkLoss(_)
        | FaultKind::CpuStress(_)
        | FaultKind::MemoryStress(_)
        | FaultKind::ContainerKill(_) => in_pod::prepare(ctx, fault, target),
    }
}

/// Performs a prepared fault.
pub async fn apply(ctx: &Context, prepared: &Prepared) -> Result<Outcome, FaultError> {
    match &prepared.action {
        Action::DeletePod {
            namespace,
            pod,
            grace_period_seconds,
        } => pod_kill::apply(ctx, namespace, pod, *grace_period_seconds).await,
        Action::EvictPod {
            namespace,
            pod,
            grace_period_seconds,
        } => pod_evict::apply(ctx, namespace, pod, *grace_period_seconds).await,
        Action::Scale {
            kind,
            namespace,
            name,
            to,
            ..
        } => scale::set(ctx, kind, namespace, name, *to)
            .await
            .map(|()| Outcome::Injected),
        Action::Cordon { node } => node_cordon::set(ctx, node, true).await.map(|()| Outcome::Injected),
        Action::Drain {
            node,
            grace_period_seconds,
            timeout_seconds,
        } => node_drain::apply(ctx, node, *grace_period_seconds, *timeout_seconds).await,
        Action::Partition {
            namespace,
            pod,
            policy,
            ingress,
            egress,
        } => network_partition::apply(ctx, namespace, pod, policy, *ingress, *egress).await,
        Action::BlockDns { namespace, pod, policy } => dns_failure::apply(ctx, namespace, pod, policy).await,
        Action::InPod {
            namespace,
            pod,
            container,
            ..
        } => in_pod::apply(ctx, namespace, pod, container).await,
    }
}

/// Performs one undo step. Idempotent: what is already gone or restored is success.
pub async fn revert(ctx: &Context, undo: &Undo) -> Result<(), FaultError> {
    match undo {
        Undo::Nothing { .. } => Ok(()),
        Undo::SetReplicas {
            kind,
            namespace,
            name,
            replicas,
        } => match scale::set(ctx, kind, namespace, name, *replicas).await {
            Err(FaultError::Api {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 404 => Ok(()),
            other => other,
        },
        Undo::Uncordon { node } => match node_cordon::set(ctx, node, false).await {
            Err(FaultError::Api {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 404 => Ok(()),
            other => other,
        },
        Undo::DeleteNetworkPolicy { namespace, name } => network_partition::delete_policy(ctx, namespace, name).await,
        Undo::RemovePodLabel { namespace, pod, key } => network_partition::remove_label(ctx, namespace, pod, key).await,
        Undo::StopInPod {
            namespace,
            pod,
            container,
            fault,
            ends_at,
        } => in_pod::stop(ctx, namespace, pod, container, fault, *ends_at).await,
    }
}

impl Action {
    /// The one pod (`ns/name`) or node it disrupts, as the guard names candidates; `None` for a
    /// scale, which acts on a workload's size rather than on one of its members.
    pub fn disrupts(&self) -> Option<String> {
        match self {
            Action::DeletePod { namespace, pod, .. }
            | Action::EvictPod { namespace, pod, .. }
            | Action::Partition { namespace, pod, .. }
            | Action::BlockDns { namespace, pod, .. }
            | Action::InPod { namespace, pod, .. } => Some(format!("{namespace}/{pod}")),
            Action::Cordon { node } | Action::Drain { node, .. } => Some(node.clone()),
            Action::Scale { .. } => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grace = |g: &Option<u32>| g.map_or(String::new(), |g| format!(" (grace {g}s)"));
        match self {
            Action::DeletePod {
                namespace,
                pod,
                grace_period_seconds,
            } => write!(f, "delete pod {namespace}/{pod}{}", grace(grace_period_seconds)),
            Action::EvictPod {
                namespace,
                pod,
                grace_period_seconds,
            } => write!(f, "evict pod {namespace}/{pod}{}", grace(grace_period_seconds)),
            Action::Scale {
                kind,
                namespace,
                name,
                from,
                to,
            } => write!(f, "scale {kind} {namespace}/{name} from {from} to {to} replicas"),
            Action::Cordon { node } => write!(f, "cordon node {node}"),
            Action::BlockDns { namespace, pod, policy } => write!(
                f,
                "block DNS (port 53) for pod {namespace}/{pod} with NetworkPolicy {policy}"
            ),
            Action::InPod {
                namespace,
                pod,
                effect,
                container,
                ..
            } => {
                let caps = container
                    .pointer("/securityContext/capabilities/add")
                    .and_then(serde_json::Value::as_array)
                    .map(|c| {
                        c.iter()
                            .filter_map(serde_json::Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|c| !c.is_empty())
                    .map_or(String::new(), |c| format!(", adds {c}"));
                write!(
                    f,
                    "add ephemeral container {} (image {}{caps}) to pod {namespace}/{pod}: {effect}, ending on its own",
                    container["name"].as_str().unwrap_or_default(),
                    container["image"].as_str().unwrap_or_default(),
                )
            }
            Action::Drain { node, .. } => write!(f, "drain node {node} (cordon, then evict its pods)"),
            Action::Partition {
                namespace,
                pod,
                policy,
                ingress,
                egress,
            } => {
                let direction = match (ingress, egress) {
                    (true, true) => "all traffic",
                    (true, false) => "incoming traffic",
                    _ => "outgoing traffic",
                };
                write!(
                    f,
                    "cut pod {namespace}/{pod} off ({direction}) with NetworkPolicy {policy}"
                )
            }
        }
    }
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undo::Nothing { why } => write!(f, "nothing to undo: {why}"),
            Undo::SetReplicas {
                kind,
                namespace,
                name,
                replicas,
            } => write!(f, "scale {kind} {namespace}/{name} back to {replicas}"),
            Undo::Uncordon { node } => write!(f, "uncordon node {node}"),
            Undo::DeleteNetworkPolicy { namespace, name } => write!(f, "delete NetworkPolicy {namespace}/{name}"),
            Undo::RemovePodLabel { namespace, pod, key } => write!(f, "remove label {key} from pod {namespace}/{pod}"),
            Undo::StopInPod {
                namespace,
                pod,
                container,
                ends_at,
                ..
            } => write!(
                f,
                "send TERM to ephemeral container {container} in pod {namespace}/{pod} and wait until it has removed its fault (it ends by itself at {})",
                ends_at.format("%H:%M:%S UTC")
            ),
        }
    }
}

/// What replaces a pod a fault takes away: its controller, if it has one.
pub(crate) fn replaced_by(target: &Candidate) -> Undo {
    match &target.workload {
        Some(owner) => Undo::Nothing {
            why: format!("{owner} replaces the pod"),
        },
        None => Undo::Nothing {
            why: "no controller: the pod is not replaced".into(),
        },
    }
}

pub(crate) fn namespace_of(target: &Candidate) -> String {
    target.namespace.clone().unwrap_or_else(|| "default".into())
}
