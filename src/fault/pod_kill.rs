//! podKill: delete a pod; its controller replaces it.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};

use super::{Action, Context, FaultError, Outcome, Prepared, namespace_of, replaced_by};
use crate::blast_radius::Candidate;
use crate::scenario::model::PodKill;

pub fn prepare(params: &PodKill, target: &Candidate) -> Prepared {
    Prepared {
        action: Action::DeletePod {
            namespace: namespace_of(target),
            pod: target.name.clone(),
            grace_period_seconds: params.grace_period_seconds,
        },
        undo: vec![replaced_by(target)],
    }
}

pub async fn apply(ctx: &Context, namespace: &str, pod: &str, grace: Option<u32>) -> Result<Outcome, FaultError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let mut dp = DeleteParams {
        dry_run: ctx.dry_run,
        ..DeleteParams::default()
    };
    dp.grace_period_seconds = grace;
    match pods.delete(pod, &dp).await {
        Ok(_) => Ok(Outcome::Injected),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Outcome::NotInjected {
            reason: format!("pod {namespace}/{pod} was already gone"),
        }),
        Err(source) => Err(FaultError::Api {
            action: format!("delete pod {namespace}/{pod}"),
            source,
        }),
    }
}
