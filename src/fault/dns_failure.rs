//! dnsFailure: the target pod can resolve no name. NetworkPolicies only allow, so the policy
//! allows egress everywhere on every port but 53 (TCP and UDP), which blocks DNS alone. It
//! selects the pod through a label the fault puts on it, is labelled with the exercise id,
//! and is deleted (and the label removed) on revert.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use serde_json::json;

use super::{Action, Context, EXERCISE_LABEL, FaultError, MANAGED_BY, Outcome, Prepared, Undo, namespace_of};
use crate::target::Candidate;
use crate::target::resolve::api_resource;

/// The label that makes a pod selectable by its exercise's DNS policy.
pub const DNS_LABEL: &str = "disasterpiece.dev/dns-failure";

pub fn prepare(ctx: &Context, target: &Candidate) -> Prepared {
    let namespace = namespace_of(target);
    let mut policy = format!("disasterpiece-{}-dns-{}", ctx.exercise, target.name);
    policy.truncate(253);
    let policy = policy.trim_end_matches(['-', '.']).to_owned();
    Prepared {
        action: Action::BlockDns {
            namespace: namespace.clone(),
            pod: target.name.clone(),
            policy: policy.clone(),
        },
        undo: vec![
            Undo::DeleteNetworkPolicy {
                namespace: namespace.clone(),
                name: policy,
            },
            Undo::RemovePodLabel {
                namespace,
                pod: target.name.clone(),
                key: DNS_LABEL.into(),
            },
        ],
    }
}

pub async fn apply(ctx: &Context, namespace: &str, pod: &str, policy: &str) -> Result<Outcome, FaultError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let pp = PatchParams {
        dry_run: ctx.dry_run,
        ..PatchParams::default()
    };
    let label = json!({"metadata": {"labels": {DNS_LABEL: ctx.exercise}}});
    pods.patch(pod, &pp, &Patch::Merge(label))
        .await
        .map_err(FaultError::api(format!("label pod {namespace}/{pod}")))?;
    let ranges = |protocol: &str| {
        [
            json!({"protocol": protocol, "port": 1, "endPort": 52}),
            json!({"protocol": protocol, "port": 54, "endPort": 65535}),
        ]
    };
    let ports: Vec<serde_json::Value> = ranges("UDP").into_iter().chain(ranges("TCP")).collect();
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": policy, "namespace": namespace, "labels": {EXERCISE_LABEL: ctx.exercise, MANAGED_BY.0: MANAGED_BY.1}},
        "spec": {"podSelector": {"matchLabels": {DNS_LABEL: ctx.exercise}}, "policyTypes": ["Egress"], "egress": [{"ports": ports}]},
    }))
    .map_err(|e| FaultError::Refused(format!("cannot build the NetworkPolicy: {e}")))?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &api_resource("NetworkPolicy"));
    match api
        .create(
            &PostParams {
                dry_run: ctx.dry_run,
                ..PostParams::default()
            },
            &object,
        )
        .await
    {
        Ok(_) => Ok(Outcome::Injected),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Outcome::Injected),
        Err(source) => Err(FaultError::Api {
            action: format!("create NetworkPolicy {namespace}/{policy}"),
            source,
        }),
    }
}
