//! networkPartition: cut one pod off the network with a NetworkPolicy that selects it alone
//! (through a label the fault puts on the pod), labelled with the exercise id; the policy is
//! deleted and the label removed on revert.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use serde_json::json;

use super::{Action, Context, EXERCISE_LABEL, FaultError, MANAGED_BY, Outcome, Prepared, Undo, namespace_of};
use crate::blast_radius::Candidate;
use crate::blast_radius::resolve::api_resource;
use crate::scenario::model::{NetworkPartition, TrafficDirection};

/// The domain of the labels that put a pod under a partition policy: one key per exercise
/// (`partition.disasterpiece.dev/<exercise>: "true"`), so two exercises partitioning one pod
/// never end each other's fault by relabelling it or by removing the label on revert.
pub const PARTITION_LABEL: &str = "partition.disasterpiece.dev";

/// The label key of `exercise` under `domain`. The name part of a label key has at most 63
/// characters: a longer exercise name (an Exercise resource may have 253) is cut and given a
/// hash of the whole, so keys of different exercises stay different.
pub fn label_key(domain: &str, exercise: &str) -> String {
    let name = if exercise.len() <= 63 {
        exercise.to_owned()
    } else {
        let hash = disasterpiece_common::names::stable_hash(exercise);
        // By characters: a name from a resource is ASCII, but nothing here may panic on one
        // that is not.
        let mut cut: String = exercise.chars().take(46).collect();
        while cut.ends_with(['-', '.', '_']) {
            cut.pop();
        }
        format!("{cut}-{hash:016x}")
    };
    format!("{domain}/{name}")
}

pub fn prepare(ctx: &Context, params: &NetworkPartition, target: &Candidate) -> Prepared {
    let namespace = namespace_of(target);
    let policy = policy_name(&ctx.exercise, &target.name);
    let (ingress, egress) = match params.direction {
        TrafficDirection::Ingress => (true, false),
        TrafficDirection::Egress => (false, true),
        TrafficDirection::Both => (true, true),
    };
    Prepared {
        action: Action::Partition {
            namespace: namespace.clone(),
            pod: target.name.clone(),
            policy: policy.clone(),
            ingress,
            egress,
        },
        // Policy first: the pod must not stay cut off while its label is being removed.
        undo: vec![
            Undo::DeleteNetworkPolicy {
                namespace: namespace.clone(),
                name: policy.clone(),
            },
            Undo::RemovePodLabel {
                namespace,
                pod: target.name.clone(),
                key: label_key(PARTITION_LABEL, &ctx.exercise),
            },
        ],
    }
}

/// `disasterpiece-<exercise>-<pod>`, cut to the 253 characters a name may have.
fn policy_name(exercise: &str, pod: &str) -> String {
    let mut name = format!("disasterpiece-{exercise}-{pod}");
    name.truncate(253);
    name.trim_end_matches(['-', '.']).to_owned()
}

fn policies(ctx: &Context, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), namespace, &api_resource("NetworkPolicy"))
}

pub async fn apply(
    ctx: &Context,
    namespace: &str,
    pod: &str,
    policy: &str,
    ingress: bool,
    egress: bool,
) -> Result<Outcome, FaultError> {
    let mut types = Vec::new();
    if ingress {
        types.push("Ingress");
    }
    if egress {
        types.push("Egress");
    }
    // No rules: nothing is allowed in the directions listed.
    select_and_police(
        ctx,
        namespace,
        pod,
        PARTITION_LABEL,
        policy,
        json!({"policyTypes": types}),
    )
    .await
}

/// What the NetworkPolicy faults share: label the pod with the exercise's own key under
/// `label` (see `label_key`), then create `policy` selecting pods with that label, with
/// `rules` (policyTypes and rules) and the exercise's labels. An existing policy of the same
/// name is the same fault, already in.
pub(super) async fn select_and_police(
    ctx: &Context,
    namespace: &str,
    pod: &str,
    label: &str,
    policy: &str,
    rules: serde_json::Value,
) -> Result<Outcome, FaultError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let pp = PatchParams {
        dry_run: ctx.dry_run,
        ..PatchParams::default()
    };
    let key = label_key(label, &ctx.exercise);
    let marked = json!({"metadata": {"labels": {&key: "true"}}});
    pods.patch(pod, &pp, &Patch::Merge(marked))
        .await
        .map_err(FaultError::api(format!("label pod {namespace}/{pod}")))?;
    let mut spec = rules;
    spec["podSelector"] = json!({"matchLabels": {&key: "true"}});
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": policy, "namespace": namespace, "labels": {EXERCISE_LABEL: ctx.exercise, MANAGED_BY.0: MANAGED_BY.1}},
        "spec": spec,
    }))
    .map_err(|e| FaultError::Refused(format!("cannot build the NetworkPolicy: {e}")))?;
    let post = PostParams {
        dry_run: ctx.dry_run,
        ..PostParams::default()
    };
    match policies(ctx, namespace).create(&post, &object).await {
        Ok(_) => Ok(Outcome::Injected),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Outcome::Injected),
        Err(source) => Err(FaultError::Api {
            action: format!("create NetworkPolicy {namespace}/{policy}"),
            source,
        }),
    }
}

pub async fn delete_policy(ctx: &Context, namespace: &str, name: &str) -> Result<(), FaultError> {
    let dp = DeleteParams {
        dry_run: ctx.dry_run,
        ..DeleteParams::default()
    };
    match policies(ctx, namespace).delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(FaultError::Api {
            action: format!("delete NetworkPolicy {namespace}/{name}"),
            source,
        }),
    }
}

pub async fn remove_label(ctx: &Context, namespace: &str, pod: &str, key: &str) -> Result<(), FaultError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let pp = PatchParams {
        dry_run: ctx.dry_run,
        ..PatchParams::default()
    };
    match pods
        .patch(pod, &pp, &Patch::Merge(json!({"metadata": {"labels": {key: null}}})))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()), // the pod is gone, and its label with it
        Err(source) => Err(FaultError::Api {
            action: format!("remove label {key} from pod {namespace}/{pod}"),
            source,
        }),
    }
}
