//! nodeCordon: mark a node unschedulable; uncordoned afterwards. A node that was cordoned
//! before the exercise is not a candidate (it is not Ready for scheduling), so the revert
//! never uncordons a node someone else cordoned.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{Action, Context, FaultError, Prepared, Undo};
use crate::blast_radius::Candidate;

pub async fn prepare(ctx: &Context, target: &Candidate) -> Result<Prepared, FaultError> {
    refuse_if_cordoned(ctx, &target.name).await?;
    Ok(Prepared {
        action: Action::Cordon {
            node: target.name.clone(),
        },
        undo: vec![Undo::Uncordon {
            node: target.name.clone(),
        }],
    })
}

pub(crate) async fn refuse_if_cordoned(ctx: &Context, node: &str) -> Result<(), FaultError> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let current = nodes
        .get(node)
        .await
        .map_err(FaultError::api(format!("read node {node}")))?;
    if current.spec.and_then(|s| s.unschedulable) == Some(true) {
        return Err(FaultError::Refused(format!(
            "node {node} is already cordoned; an exercise must not take over someone else's cordon"
        )));
    }
    Ok(())
}

/// Sets `spec.unschedulable` (a strategic merge patch, as kubectl cordon sends).
pub async fn set(ctx: &Context, node: &str, unschedulable: bool) -> Result<(), FaultError> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let pp = PatchParams {
        dry_run: ctx.dry_run,
        ..PatchParams::default()
    };
    let value = if unschedulable { json!(true) } else { json!(null) };
    nodes
        .patch(node, &pp, &Patch::Strategic(json!({"spec": {"unschedulable": value}})))
        .await
        .map(|_| ())
        .map_err(FaultError::api(format!(
            "{} node {node}",
            if unschedulable { "cordon" } else { "uncordon" }
        )))
}
