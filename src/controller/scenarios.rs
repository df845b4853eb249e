//! Says of each Scenario resource, as soon as it is created or changed, whether it passes what
//! `disasterpiece validate` checks: a `Valid` condition in its status and, when it does not,
//! one `Invalid` Event with validate's messages. An Exercise of an invalid Scenario is refused
//! anyway (`exercise`); this tells its author before anyone runs it.
//!
//! Guarantees: a Scenario is judged once per `metadata.generation` (the status records the
//! generation judged), so a controller at rest writes nothing; the judgement is a PURE
//! function of the resource (`problems`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::scenario::condition;
use crate::scenario::model::{ApiVersion, Metadata, Scenario, ScenarioKind, ScenarioResource};

/// The Scenario file a Scenario resource stands for (in namespace `ns`). PURE.
pub fn as_file(resource: &ScenarioResource, ns: &str) -> Scenario {
    Scenario {
        api_version: ApiVersion::V1alpha1,
        kind: ScenarioKind::Scenario,
        metadata: Metadata {
            name: resource.name_any(),
            namespace: Some(ns.to_owned()),
            labels: resource.labels().clone(),
            // Only what Disasterpiece reads (kubectl's last-applied-configuration would copy
            // the whole object into every report).
            annotations: resource
                .annotations()
                .iter()
                .filter(|(k, _)| k.as_str() == super::reports::KEEP_ANNOTATION)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        spec: resource.spec.clone(),
    }
}

/// What `disasterpiece validate` finds wrong with `scenario`, in its words (`path: message
/// (hint)`, joined by `; `), or `None`. PURE.
pub fn problems(scenario: &Scenario) -> Option<String> {
    let text = match serde_yaml::to_string(scenario) {
        Ok(text) => text,
        Err(e) => return Some(e.to_string()),
    };
    let loaded = crate::scenario::load(&text, &|_| true);
    if loaded.problems.is_empty() {
        return None;
    }
    let said: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| {
            let hint = p.hint.as_deref().map_or(String::new(), |h| format!(" ({h})"));
            format!("{}: {}{hint}", p.path, p.message)
        })
        .collect();
    Some(said.join("; "))
}

/// One Scenario: judged when its current generation has not been. Only the replica that
/// leads acts.
pub(super) async fn reconcile(
    scenario: Arc<ScenarioResource>,
    ctx: Arc<super::context::Context>,
) -> Result<Action, kube::Error> {
    let generation = scenario.metadata.generation;
    let judged = scenario.status.as_ref().and_then(|s| s.observed_generation) == generation && generation.is_some();
    if !ctx.leads() || judged {
        return Ok(Action::await_change());
    }
    match judge(&ctx.client, &ctx.events, &scenario, ctx.options.clock.now()).await {
        // A conflict: the watch brings the newer copy, which is judged then.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(Action::await_change()),
        other => other.map(|()| Action::await_change()),
    }
}

async fn judge(
    client: &Client,
    reporter: &super::events::Reporter,
    resource: &ScenarioResource,
    now: DateTime<Utc>,
) -> Result<(), kube::Error> {
    let ns = resource.namespace().unwrap_or_default();
    let name = resource.name_any();
    let found = problems(&as_file(resource, &ns));
    let valid = condition::valid(now, found.as_deref(), "an Exercise of it is refused");
    let mut status = resource.status.clone().unwrap_or_default();
    let changed = condition::set(&mut status.conditions, valid.clone());
    status.observed_generation = resource.metadata.generation;
    // With the resourceVersion read: a judgement of an older copy must not land.
    let patch = json!({"metadata": {"resourceVersion": resource.resource_version()}, "status": status});
    Api::<ScenarioResource>::namespaced(client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    if changed && found.is_some() {
        let involved = json!({"apiVersion": "disasterpiece.dev/v1alpha1", "kind": "Scenario", "name": name, "namespace": ns, "uid": resource.uid()});
        reporter.invalid(involved, &valid, now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_resource_is_judged_in_validates_words() {
        let yaml = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: lose-checkout, namespace: shop}
spec:
  hypothesis: Checkout keeps answering.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{podKill: {}}]
  duration: 30s
  expect:
    - {name: some left, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
";
        let resource: ScenarioResource = serde_yaml::from_str(yaml).expect("resource");
        assert_eq!(problems(&as_file(&resource, "shop")), None);
        let long: ScenarioResource = serde_yaml::from_str(&yaml.replace("30s", "48h")).expect("resource");
        let said = problems(&as_file(&long, "shop")).expect("invalid");
        assert!(said.starts_with("spec.duration: "), "{said}");
    }
}
