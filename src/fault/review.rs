//! What `plan` says about an in-pod fault's container before it is added, from the pod as it
//! is (pure): a name the pod already holds (the API server would refuse it with 422: ephemeral
//! containers stay listed after they end), and stress that nothing bounds (an ephemeral
//! container cannot have resources of its own: its processes count against the pod's limits,
//! and where the pod has none, against the node's).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::scenario::validate::quantity_bytes;

/// What the plan shows: a problem that refuses it, and warnings.
#[derive(Debug, Default, PartialEq)]
pub struct Review {
    pub problem: Option<String>,
    pub warnings: Vec<String>,
}

pub fn review(pod: &Pod, container: &Value) -> Review {
    let pod_name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let name = container["name"].as_str().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let taken = spec
        .and_then(|s| s.ephemeral_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == name));
    let problem = taken.then(|| {
        format!("pod {pod_name} already has an ephemeral container named {name}, and the API server refuses to change one: use another exercise name")
    });
    let env = |key: &str| {
        container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == key)
            .and_then(|e| e["value"].as_str())
            .map(str::to_owned)
    };
    let mut warnings = Vec::new();
    match env("DISASTERPIECE_FAULT").as_deref() {
        Some("cpuStress") => {
            let workers: f64 = env("DISASTERPIECE_CPU_WORKERS")
                .and_then(|w| w.parse().ok())
                .unwrap_or(1.0);
            let load: f64 = env("DISASTERPIECE_CPU_LOAD")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100.0);
            let cores = workers * load / 100.0;
            match limit(pod, "cpu", cpu_cores) {
                None => warnings.push(format!(
                    "pod {pod_name} has no CPU limit (every container needs one for the pod to have one): cpuStress may take {cores} cores of its node, not a share of the pod's"
                )),
                Some(limit) if cores > limit => warnings.push(format!(
                    "cpuStress asks {cores} cores, more than pod {pod_name}'s CPU limit of {limit}: the pod is throttled at its limit, the application with it"
                )),
                Some(_) => {}
            }
        }
        Some("memoryStress") => {
            let bytes: u64 = env("DISASTERPIECE_MEMORY_BYTES")
                .and_then(|b| b.parse().ok())
                .unwrap_or(0);
            let size = env("DISASTERPIECE_MEMORY").unwrap_or_default();
            match limit(pod, "memory", |q| quantity_bytes(q).map(|b| b as f64)) {
                None => warnings.push(format!(
                    "pod {pod_name} has no memory limit (every container needs one for the pod to have one): memoryStress takes {size} from its node, where the node's OOM killer, not the pod's limit, chooses what dies"
                )),
                Some(limit) if bytes as f64 >= limit => warnings.push(format!(
                    "memoryStress holds {size}, at or above pod {pod_name}'s memory limit ({}): the OOM killer will end the stressor or the application",
                    human_bytes(limit)
                )),
                Some(_) => {}
            }
        }
        _ => {}
    }
    Review { problem, warnings }
}

/// The pod's limit of `resource`: the sum of its containers' limits, `None` when one of them
/// has none (the pod then has no limit).
fn limit(pod: &Pod, resource: &str, parse: impl Fn(&str) -> Option<f64>) -> Option<f64> {
    let containers = &pod.spec.as_ref()?.containers;
    let mut total = 0.0;
    for c in containers {
        let limits = c.resources.as_ref()?.limits.as_ref()?;
        let Quantity(q) = limits.get(resource)?;
        total += parse(q)?;
    }
    (!containers.is_empty()).then_some(total)
}

/// Cores of a CPU quantity: `2`, `1.5`, `500m`.
fn cpu_cores(q: &str) -> Option<f64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse::<f64>().ok(),
    }
    .filter(|c| c.is_finite() && *c >= 0.0)
}

fn human_bytes(bytes: f64) -> String {
    if bytes >= (1u64 << 30) as f64 {
        format!("{:.1}Gi", bytes / (1u64 << 30) as f64)
    } else {
        format!("{:.0}Mi", bytes / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(limits: Value, ephemeral: &[&str]) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"namespace": "shop", "name": "web-1"},
            "spec": {
                "containers": [{"name": "web", "resources": {"limits": limits}}],
                "ephemeralContainers": ephemeral.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
            }
        }))
        .expect("pod")
    }

    fn stress(fault: &str, env: &[(&str, &str)]) -> Value {
        let mut vars = vec![json!({"name": "DISASTERPIECE_FAULT", "value": fault})];
        vars.extend(env.iter().map(|(k, v)| json!({"name": k, "value": v})));
        json!({"name": "dp-cpu-ex-1234abcd", "env": vars})
    }

    #[test]
    fn stress_in_a_pod_without_limits_is_warned_about() {
        let cpu = stress(
            "cpuStress",
            &[("DISASTERPIECE_CPU_WORKERS", "4"), ("DISASTERPIECE_CPU_LOAD", "100")],
        );
        let r = review(&pod(json!({}), &[]), &cpu);
        assert_eq!(r.problem, None);
        assert!(
            r.warnings[0].contains("no CPU limit") && r.warnings[0].contains("4 cores"),
            "{r:?}"
        );
        let r = review(&pod(json!({"cpu": "500m"}), &[]), &cpu);
        assert!(
            r.warnings[0].contains("more than pod shop/web-1's CPU limit of 0.5"),
            "{r:?}"
        );
        let r = review(&pod(json!({"cpu": "8"}), &[]), &cpu);
        assert!(r.warnings.is_empty(), "{r:?}");

        let memory = stress(
            "memoryStress",
            &[
                ("DISASTERPIECE_MEMORY", "1Gi"),
                ("DISASTERPIECE_MEMORY_BYTES", "1073741824"),
            ],
        );
        let r = review(&pod(json!({"cpu": "1"}), &[]), &memory);
        assert!(r.warnings[0].contains("no memory limit"), "{r:?}");
        let r = review(&pod(json!({"memory": "512Mi"}), &[]), &memory);
        assert!(
            r.warnings[0].contains("above pod shop/web-1's memory limit (512Mi)"),
            "{r:?}"
        );
        assert!(review(&pod(json!({"memory": "4Gi"}), &[]), &memory).warnings.is_empty());
    }

    #[test]
    fn a_name_the_pod_already_holds_is_a_problem() {
        let cpu = stress("cpuStress", &[]);
        let r = review(&pod(json!({"cpu": "8"}), &["dp-cpu-ex-1234abcd"]), &cpu);
        assert!(
            r.problem
                .is_some_and(|p| p.contains("already has an ephemeral container named dp-cpu-ex-1234abcd"))
        );
        assert_eq!(review(&pod(json!({"cpu": "8"}), &["other"]), &cpu).problem, None);
    }
}
