//! scale: hold a Deployment or StatefulSet at N replicas; the previous count is restored.

use kube::api::{Api, Patch, PatchParams};
use kube::core::DynamicObject;
use serde_json::json;

use super::{Action, Context, FaultError, Prepared, Undo, namespace_of};
use crate::blast_radius::Candidate;
use crate::blast_radius::resolve::api_resource;
use crate::scenario::model::Scale;

pub async fn prepare(ctx: &Context, params: &Scale, target: &Candidate) -> Result<Prepared, FaultError> {
    let namespace = namespace_of(target);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &api_resource(&target.kind));
    let current = api.get(&target.name).await.map_err(FaultError::api(format!(
        "read {} {namespace}/{}",
        target.kind, target.name
    )))?;
    let from = current.data["spec"]["replicas"].as_u64().unwrap_or(1) as u32;
    Ok(Prepared {
        action: Action::Scale {
            kind: target.kind.clone(),
            namespace: namespace.clone(),
            name: target.name.clone(),
            from,
            to: params.replicas,
        },
        undo: vec![Undo::SetReplicas {
            kind: target.kind.clone(),
            namespace,
            name: target.name.clone(),
            replicas: from,
        }],
    })
}

/// Sets the replicas through the scale subresource.
pub async fn set(ctx: &Context, kind: &str, namespace: &str, name: &str, replicas: u32) -> Result<(), FaultError> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &api_resource(kind));
    let pp = PatchParams {
        dry_run: ctx.dry_run,
        ..PatchParams::default()
    };
    api.patch_scale(name, &pp, &Patch::Merge(json!({"spec": {"replicas": replicas}})))
        .await
        .map(|_| ())
        .map_err(FaultError::api(format!(
            "scale {kind} {namespace}/{name} to {replicas}"
        )))
}
