//! podEvict: evict a pod through the Eviction API, which honours PodDisruptionBudgets. A 429
//! is the budget saying no: a finding ("protected by PDB"), not an error.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, EvictParams, PostParams};

use super::{Action, Context, FaultError, Outcome, Prepared, namespace_of, replaced_by};
use crate::blast_radius::Candidate;
use crate::scenario::model::PodEvict;

pub fn prepare(params: &PodEvict, target: &Candidate) -> Prepared {
    Prepared {
        action: Action::EvictPod {
            namespace: namespace_of(target),
            pod: target.name.clone(),
            grace_period_seconds: params.grace_period_seconds,
        },
        undo: vec![replaced_by(target)],
    }
}

pub async fn apply(ctx: &Context, namespace: &str, pod: &str, grace: Option<u32>) -> Result<Outcome, FaultError> {
    evict(ctx, namespace, pod, grace).await
}

/// One eviction; shared with nodeDrain.
pub async fn evict(ctx: &Context, namespace: &str, pod: &str, grace: Option<u32>) -> Result<Outcome, FaultError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = EvictParams {
        delete_options: grace.map(|g| DeleteParams {
            grace_period_seconds: Some(g),
            ..DeleteParams::default()
        }),
        post_options: PostParams {
            dry_run: ctx.dry_run,
            ..PostParams::default()
        },
    };
    match pods.evict(pod, &params).await {
        Ok(_) => Ok(Outcome::Injected),
        Err(kube::Error::Api(status)) if status.code == 429 => {
            let cause = status
                .details
                .and_then(|d| d.causes.into_iter().next())
                .map(|c| c.message)
                .unwrap_or(status.message);
            Ok(Outcome::NotInjected {
                reason: format!("protected by PDB: {cause}"),
            })
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Outcome::NotInjected {
            reason: format!("pod {namespace}/{pod} was already gone"),
        }),
        Err(source) => Err(FaultError::Api {
            action: format!("evict pod {namespace}/{pod}"),
            source,
        }),
    }
}
