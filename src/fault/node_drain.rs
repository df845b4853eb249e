//! nodeDrain: cordon a node and evict its pods, sparing DaemonSet pods (as with
//! `kubectl drain --ignore-daemonsets`), protected namespaces, opted-out pods and pods
//! without a controller (see [`spared`]); uncordoned afterwards. Evictions a
//! PodDisruptionBudget refuses are retried until the timeout, then reported.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::{Action, Context, FaultError, Outcome, Prepared, Undo, node_cordon, pod_evict};
use crate::blast_radius::Candidate;
use crate::scenario::model::NodeDrain;

pub async fn prepare(ctx: &Context, params: &NodeDrain, target: &Candidate) -> Result<Prepared, FaultError> {
    node_cordon::refuse_if_cordoned(ctx, &target.name).await?;
    let timeout_seconds = params.timeout.map_or(120, |t| t.as_std().as_secs().max(1));
    Ok(Prepared {
        action: Action::Drain {
            node: target.name.clone(),
            grace_period_seconds: params.grace_period_seconds,
            timeout_seconds,
        },
        undo: vec![Undo::Uncordon {
            node: target.name.clone(),
        }],
    })
}

/// Why a drain leaves `pod` where it is, if it does: DaemonSet pods (as `kubectl drain
/// --ignore-daemonsets`), pods in a protected namespace, pods opted out with
/// `disasterpiece.dev/exclude=true`, and pods no controller would recreate (evicted, they
/// would be gone for good; `kubectl drain` refuses them too without `--force`).
pub fn spared(pod: &Pod) -> Option<&'static str> {
    let owners = pod.owner_references();
    if owners.iter().any(|o| o.kind == "DaemonSet") {
        return Some("a DaemonSet pod");
    }
    if pod
        .namespace()
        .is_some_and(|ns| crate::scenario::model::PROTECTED_NAMESPACES.contains(&ns.as_str()))
    {
        return Some("in a protected namespace");
    }
    if pod
        .labels()
        .get(crate::blast_radius::EXCLUDE_LABEL)
        .is_some_and(|v| v == "true")
    {
        return Some("opted out (label disasterpiece.dev/exclude=true)");
    }
    if !owners.iter().any(|o| o.controller == Some(true)) {
        return Some("no controller would recreate it");
    }
    None
}

/// What a drain does to one pod of the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodFate {
    /// `namespace/name`.
    pub pod: String,
    /// Why it stays, when it stays (else it is evicted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spared: Option<String>,
}

/// Every pod on `node` now, and whether a drain would evict it or spare it (and why): what
/// `plan` shows before anyone says yes.
pub async fn survey(client: &kube::Client, node: &str) -> Result<Vec<PodFate>, FaultError> {
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(FaultError::api(format!("list the pods of node {node}")))?;
    let mut fates: Vec<PodFate> = on_node
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| PodFate {
            pod: format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()),
            spared: spared(p).map(str::to_owned),
        })
        .collect();
    fates.sort_by(|a, b| (a.spared.is_some(), &a.pod).cmp(&(b.spared.is_some(), &b.pod)));
    Ok(fates)
}

pub async fn apply(ctx: &Context, node: &str, grace: Option<u32>, timeout_seconds: u64) -> Result<Outcome, FaultError> {
    node_cordon::set(ctx, node, true).await?;
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_seconds);
    let mut evicted: Vec<String> = Vec::new();
    loop {
        let on_node = pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(FaultError::api(format!("list the pods of node {node}")))?;
        let evictable: Vec<Pod> = on_node
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| spared(p).is_none())
            .collect();
        let mut refused = Vec::new();
        for pod in &evictable {
            let namespace = pod.namespace().unwrap_or_default();
            let name = format!("{namespace}/{}", pod.name_any());
            match pod_evict::evict(ctx, &namespace, &pod.name_any(), grace).await? {
                Outcome::NotInjected { reason } => refused.push(format!("{name}: {reason}")),
                _ if !evicted.contains(&name) => evicted.push(name),
                _ => {}
            }
        }
        if refused.is_empty() || ctx.dry_run {
            return Ok(Outcome::Evicted { pods: evicted });
        }
        if tokio::time::Instant::now() >= deadline {
            // Half a drain is still a fault in place: the node is cordoned and these pods
            // are gone. Said as it is, never as "not injected".
            return Ok(Outcome::Partial {
                evicted,
                reason: format!(
                    "node {node} is cordoned but not empty after {timeout_seconds}s: {}",
                    refused.join("; ")
                ),
            });
        }
        // As kubectl drain does: wait, then try the refused evictions again.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
