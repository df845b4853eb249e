//! dnsFailure: the target pod can resolve no name. NetworkPolicies only allow, so the policy
//! allows egress everywhere on every port but 53 (TCP and UDP), which blocks DNS alone. It
//! selects the pod through a label the fault puts on it, is labelled with the exercise id,
//! and is deleted (and the label removed) on revert.

use serde_json::json;

use super::{Action, Context, FaultError, Outcome, Prepared, Undo, namespace_of};
use crate::blast_radius::Candidate;

/// The domain of the labels that put a pod under a DNS policy (one key per exercise, see
/// `network_partition::label_key`).
pub const DNS_LABEL: &str = "dns-failure.disasterpiece.dev";

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
                key: super::network_partition::label_key(DNS_LABEL, &ctx.exercise),
            },
        ],
    }
}

pub async fn apply(ctx: &Context, namespace: &str, pod: &str, policy: &str) -> Result<Outcome, FaultError> {
    let ranges = |protocol: &str| {
        [
            json!({"protocol": protocol, "port": 1, "endPort": 52}),
            json!({"protocol": protocol, "port": 54, "endPort": 65535}),
        ]
    };
    let ports: Vec<serde_json::Value> = ranges("UDP").into_iter().chain(ranges("TCP")).collect();
    let rules = json!({"policyTypes": ["Egress"], "egress": [{"ports": ports}]});
    super::network_partition::select_and_police(ctx, namespace, pod, DNS_LABEL, policy, rules).await
}
