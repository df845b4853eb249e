//! Reads the live candidates of a scenario's target from the cluster. I/O only: what is
//! chosen is the guard's decision.

use std::collections::BTreeMap;

use kube::api::{Api, ListParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::guard::Health;
use super::{Budget, Candidate, Unit};
use crate::scenario::model::{LabelSelector, SelectorOperator, Target, TargetKind};
use crate::selector::LabelSelector as Matcher;

/// Why the target could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("cannot read {what}: {}", crate::api::api_message(source))]
    Api { what: String, source: kube::Error },
}

/// The candidates for one unit of one target, and the health the guard weighs them against.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub candidates: Vec<Candidate>,
    pub health: Health,
}

pub fn api_resource(kind: &str) -> ApiResource {
    let (group, version, plural) = match kind {
        "Deployment" => ("apps", "v1", "deployments"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "DaemonSet" => ("apps", "v1", "daemonsets"),
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        "Node" => ("", "v1", "nodes"),
        "PodDisruptionBudget" => ("policy", "v1", "poddisruptionbudgets"),
        "NetworkPolicy" => ("networking.k8s.io", "v1", "networkpolicies"),
        "ConfigMap" => ("", "v1", "configmaps"),
        _ => ("", "v1", "pods"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn api(client: &Client, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = api_resource(kind);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// The query-string form of a scenario's selector (`app=checkout,tier in (a,b)`).
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for req in &selector.match_expressions {
        parts.push(match req.operator {
            SelectorOperator::In => format!("{} in ({})", req.key, req.values.join(",")),
            SelectorOperator::NotIn => format!("{} notin ({})", req.key, req.values.join(",")),
            SelectorOperator::Exists => req.key.clone(),
            SelectorOperator::DoesNotExist => format!("!{}", req.key),
        });
    }
    parts.join(",")
}

/// The objects a target names: one by name, or all matching the selector.
async fn named_or_selected(
    api: &Api<DynamicObject>,
    target: &Target,
    what: &str,
) -> Result<Vec<DynamicObject>, ResolveError> {
    let wrap = |source| ResolveError::Api {
        what: what.to_owned(),
        source,
    };
    match (&target.name, &target.selector) {
        (Some(name), _) => match api.get_opt(name).await.map_err(wrap)? {
            Some(object) => Ok(vec![object]),
            None => Err(ResolveError::NotFound {
                what: format!("{what} {name}"),
            }),
        },
        (None, Some(selector)) => {
            let lp = ListParams::default().labels(&selector_query(selector));
            Ok(api.list(&lp).await.map_err(wrap)?.items)
        }
        (None, None) => Ok(Vec::new()),
    }
}

fn labels(object: &DynamicObject) -> BTreeMap<String, String> {
    object.labels().clone()
}

fn condition_true(object: &DynamicObject, kind: &str) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

fn pod_ready(pod: &DynamicObject) -> bool {
    pod.metadata.deletion_timestamp.is_none() && condition_true(pod, "Ready")
}

/// Reads the candidates for `unit` of `target` (whose namespace the caller has settled).
pub async fn resolve(client: &Client, target: &Target, unit: Unit) -> Result<Resolved, ResolveError> {
    let namespace = target.namespace.as_deref();
    let kind = target.kind.as_str();
    let mut resolved = Resolved::default();
    if unit == Unit::Node {
        let nodes = api(client, "Node", None);
        let all = nodes
            .list(&ListParams::default())
            .await
            .map_err(|source| ResolveError::Api {
                what: "nodes".into(),
                source,
            })?;
        let schedulable_ready =
            |n: &DynamicObject| condition_true(n, "Ready") && n.data["spec"]["unschedulable"] != true;
        resolved.health.ready_nodes = all.items.iter().filter(|n| schedulable_ready(n)).count() as u32;
        for node in named_or_selected(&nodes, target, "Node").await? {
            resolved.candidates.push(Candidate {
                kind: "Node".into(),
                namespace: None,
                name: node.name_any(),
                uid: node.uid().unwrap_or_default(),
                labels: labels(&node),
                ready: schedulable_ready(&node),
                workload: None,
                node: None,
                budget: None,
                replicas: None,
            });
        }
        return Ok(resolved);
    }
    let ns = namespace.unwrap_or("default");
    let pods_api = api(client, "Pod", Some(ns));
    let mut pods: Vec<(DynamicObject, String)> = Vec::new();
    if target.kind == TargetKind::Pod {
        for pod in named_or_selected(&pods_api, target, "Pod").await? {
            let owner = pod
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true))
                .map(|o| format!("{}/{}", o.kind, o.name));
            let workload = owner.unwrap_or_else(|| format!("Pod/{}", pod.name_any()));
            pods.push((pod, workload));
        }
    } else {
        let workloads = named_or_selected(&api(client, kind, Some(ns)), target, kind).await?;
        for workload in workloads {
            let key = format!("{kind}/{}", workload.name_any());
            if unit == Unit::Workload {
                let replicas = workload.data["spec"]["replicas"].as_u64().unwrap_or(1) as u32;
                let ready = workload.data["status"]["readyReplicas"].as_u64().unwrap_or(0) as u32;
                resolved.health.ready_pods.insert(key, ready);
                resolved.candidates.push(Candidate {
                    kind: kind.into(),
                    namespace: Some(ns.into()),
                    name: workload.name_any(),
                    uid: workload.uid().unwrap_or_default(),
                    labels: labels(&workload),
                    ready: ready >= replicas,
                    workload: None,
                    node: None,
                    budget: None,
                    replicas: Some(replicas),
                });
                continue;
            }
            let selector = Matcher::from_object(&workload.data["spec"]["selector"]).unwrap_or_default();
            if selector.is_empty() {
                continue; // a workload without selector owns nothing we can name
            }
            let lp = ListParams::default().labels(&selector.to_query());
            let owned = pods_api.list(&lp).await.map_err(|source| ResolveError::Api {
                what: format!("pods of {key}"),
                source,
            })?;
            pods.extend(owned.items.into_iter().map(|p| (p, key.clone())));
        }
    }
    if unit == Unit::Workload {
        return Ok(resolved);
    }
    let budgets = api(client, "PodDisruptionBudget", Some(ns))
        .list(&ListParams::default())
        .await
        .map_err(|source| ResolveError::Api {
            what: format!("PodDisruptionBudgets in {ns}"),
            source,
        })?
        .items;
    for (pod, workload) in pods {
        let ready = pod_ready(&pod);
        if ready {
            *resolved.health.ready_pods.entry(workload.clone()).or_default() += 1;
        }
        let pod_labels: serde_json::Map<String, Value> = pod
            .labels()
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let budget = budgets.iter().find_map(|pdb| {
            let selector = Matcher::from_object(&pdb.data["spec"]["selector"]).ok()?;
            (!selector.is_empty() && selector.matches(Some(&pod_labels))).then(|| Budget {
                name: pdb.name_any(),
                disruptions_allowed: pdb.data["status"]["disruptionsAllowed"].as_u64().unwrap_or(0) as u32,
                desired_healthy: pdb.data["status"]["desiredHealthy"].as_u64().map(|n| n as u32),
            })
        });
        resolved.candidates.push(Candidate {
            kind: "Pod".into(),
            namespace: Some(ns.into()),
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            labels: labels(&pod),
            ready,
            workload: Some(workload),
            node: pod.data["spec"]["nodeName"].as_str().map(str::to_owned),
            budget,
            replicas: None,
        });
    }
    resolved.candidates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(resolved)
}
