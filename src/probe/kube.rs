//! The kube probe: a workload's Ready replicas, its pods' restarts or phase, or a condition.
//! Kind, name and namespace default to the scenario's target.

use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use serde_json::Value;

use super::{ProbeContext, Reading, Verdict, describe, holds};
use crate::blast_radius::resolve::{api_resource, selector_query};
use crate::scenario::model::{ConditionStatus, KubeProbe, PodPhase};
use crate::selector::LabelSelector as Matcher;

pub async fn sample(ctx: &ProbeContext, probe: &KubeProbe) -> Reading {
    match read(ctx, probe).await {
        Ok(sample) => sample,
        Err(e) => Reading::new(Verdict::Inconclusive, e.to_string()),
    }
}

/// Why a kube probe read nothing to judge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// What the API server said.
    #[error("{0}")]
    Api(String),
    #[error("the probe names no object")]
    NoObject,
    #[error("the probe says nothing to read")]
    NothingToRead,
}

async fn read(ctx: &ProbeContext, probe: &KubeProbe) -> Result<Reading, ReadError> {
    let kind = probe.kind.unwrap_or(ctx.target.kind).as_str();
    let namespace = probe
        .namespace
        .clone()
        .or_else(|| ctx.target.namespace.clone())
        .unwrap_or_else(|| "default".into());
    // Nodes belong to no namespace: read them cluster-wide, and name them without one.
    let (api, shown): (Api<DynamicObject>, String) = if kind == "Node" {
        (Api::all_with(ctx.client.clone(), &api_resource(kind)), String::new())
    } else {
        (
            Api::namespaced_with(ctx.client.clone(), &namespace, &api_resource(kind)),
            format!("{namespace}/"),
        )
    };
    let api_error = |e: kube::Error| ReadError::Api(crate::api::api_message(&e));
    let objects: Vec<DynamicObject> = match (&probe.name, &ctx.target.name, &ctx.target.selector) {
        (Some(name), _, _) | (None, Some(name), _) => match api.get_opt(name).await.map_err(api_error)? {
            Some(o) => vec![o],
            None => {
                return Ok(Reading::new(
                    Verdict::Fail,
                    format!("{kind} {shown}{name} does not exist"),
                ));
            }
        },
        (None, None, Some(selector)) => {
            api.list(&ListParams::default().labels(&selector_query(selector)))
                .await
                .map_err(api_error)?
                .items
        }
        (None, None, None) => return Err(ReadError::NoObject),
    };
    if let Some(cmp) = &probe.ready_replicas {
        let ready: u64 = objects
            .iter()
            .map(|o| o.data["status"]["readyReplicas"].as_u64().unwrap_or(0))
            .sum();
        let verdict = if holds(cmp, ready as f64) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        return Ok(Reading::new(
            verdict,
            format!("{ready} ready replicas (want {})", describe(cmp)),
        ));
    }
    if let Some(condition) = &probe.condition {
        let want = match condition.status {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        };
        let found: Vec<String> = objects
            .iter()
            .map(|o| {
                o.data["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == condition.type_.as_str()))
                    .and_then(|c| c["status"].as_str())
                    .unwrap_or("absent")
                    .to_owned()
            })
            .collect();
        let verdict = if !found.is_empty() && found.iter().all(|s| s == want) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        return Ok(Reading::new(
            verdict,
            format!("{} is {} (want {want})", condition.type_, found.join(", ")),
        ));
    }
    // Restarts and phase are read from the pods of the objects.
    let pods = pods_of(ctx, &namespace, kind, &objects).await?;
    if let Some(cmp) = &probe.restarts {
        let restarts: u64 = pods
            .iter()
            .flat_map(|p| {
                p.data["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| c["restartCount"].as_u64().unwrap_or(0))
            .sum();
        let verdict = if holds(cmp, restarts as f64) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        return Ok(Reading::new(
            verdict,
            format!("{restarts} restarts over {} pods (want {})", pods.len(), describe(cmp)),
        ));
    }
    if let Some(phase) = probe.pod_phase {
        let want = match phase {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        };
        let other = pods.iter().filter(|p| p.data["status"]["phase"] != want).count();
        let verdict = if !pods.is_empty() && other == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        return Ok(Reading::new(
            verdict,
            format!("{} of {} pods {want}", pods.len() - other, pods.len()),
        ));
    }
    Err(ReadError::NothingToRead)
}

async fn pods_of(
    ctx: &ProbeContext,
    namespace: &str,
    kind: &str,
    objects: &[DynamicObject],
) -> Result<Vec<DynamicObject>, ReadError> {
    if kind == "Pod" {
        return Ok(objects.to_vec());
    }
    let pods: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &api_resource("Pod"));
    let mut all = Vec::new();
    for object in objects {
        let selector = Matcher::from_object(&object.data["spec"]["selector"]).unwrap_or_default();
        if selector.is_empty() {
            continue;
        }
        let listed = pods
            .list(&ListParams::default().labels(&selector.to_query()))
            .await
            .map_err(|e| ReadError::Api(crate::api::api_message(&e)))?;
        all.extend(
            listed
                .items
                .into_iter()
                .filter(|p: &DynamicObject| p.metadata.deletion_timestamp.is_none() || p.data["status"] != Value::Null),
        );
    }
    Ok(all)
}
