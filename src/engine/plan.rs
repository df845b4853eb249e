//! The plan: what an exercise would do, to what, how each step is undone, and whether it may
//! run. PURE: built from what preflight found; nothing here touches the cluster.

use serde::Serialize;

use crate::blast_radius::guard::{Decision, Exclusion};
use crate::blast_radius::{Candidate, Unit};
use crate::fault::{Action, Undo};
use crate::probe::Sample;
use crate::scenario::model::{FaultKind, HasProbe, ProbeKind, Scenario};

/// What one fault of the scenario would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    /// The fault's wire name (`podKill`).
    pub fault: String,
    pub unit: Unit,
    /// How many targets the blast radius asks for.
    pub wanted: u32,
    pub chosen: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
    /// One step per chosen target, in order.
    pub steps: Vec<Step>,
    /// Why this fault cannot be planned, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What the run would do that you may not mean (stress no limit bounds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Excluded {
    pub target: Candidate,
    pub reason: Exclusion,
    pub explanation: String,
}

/// One action on one target and what undoes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub target: String,
    pub action: Action,
    pub undo: Vec<Undo>,
    /// Both, said for people.
    pub does: String,
    pub undone_by: Vec<String>,
    /// A drain: each pod on the node, evicted or spared (and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<crate::fault::node_drain::PodFate>,
}

/// A steady-state check, evaluated once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteadyCheck {
    pub name: String,
    pub probe: String,
    pub sample: Sample,
}

/// A permission the run needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub verb: String,
    pub group: String,
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// Empty: every namespace (or a cluster-scoped resource).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The one object asked about, when the run acts on one only (a role may grant it by
    /// `resourceNames`); empty: any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Permission {
    pub fn new(verb: &str, group: &str, resource: &str, subresource: &str, namespace: &str) -> Self {
        Permission {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: String::new(),
        }
    }

    /// The same permission on the object `name` only.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// `delete pods in shop`, `create pods/eviction in every namespace`.
    pub fn describe(&self) -> String {
        let mut resource = self.resource.clone();
        if !self.group.is_empty() {
            resource = format!("{resource}.{}", self.group);
        }
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        let scope = if self.namespace.is_empty() {
            "cluster-wide".to_owned()
        } else {
            format!("in {}", self.namespace)
        };
        if self.name.is_empty() {
            format!("{} {resource} {scope}", self.verb)
        } else {
            format!("{} {resource} {} {scope}", self.verb, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionCheck {
    pub permission: Permission,
    pub allowed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A mutation sent with `dryRun=All`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Everything `plan` found, and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub scenario: String,
    pub hypothesis: String,
    pub cluster: String,
    /// The seed of the target choice; `run --seed` with the same seed chooses the same.
    pub seed: u64,
    pub faults: Vec<FaultPlan>,
    pub steady_state: Vec<SteadyCheck>,
    pub permissions: Vec<PermissionCheck>,
    pub dry_run: Vec<DryRun>,
    /// Clauses the run could not judge (a prometheus clause with no Prometheus to ask): each
    /// would hold a fault for nothing but an INCONCLUSIVE.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unjudgeable: Vec<String>,
    /// What the run will watch beyond its targets, and what will halt it.
    pub watch: WatchPlan,
    pub runnable: bool,
    /// Why not, when not.
    pub refusals: Vec<String>,
}

/// The watch beyond the targets, as the run will open it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchPlan {
    /// The namespaces whose workloads and pods are watched (`*`: all).
    pub namespaces: Vec<String>,
    /// Whether Nodes are watched; why not, when not.
    pub nodes: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes_not_watched: Option<String>,
    /// Where alerts are read (none: no unanticipated alert is seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
    /// What halts the exercise, each with who set it; nothing else unanticipated does
    /// (it is recorded in the report).
    pub halts_on: Vec<String>,
    /// Why the watch cannot be run as asked (each also a refusal).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl FaultPlan {
    /// A fault plan from the guard's decision (problem and steps added by the caller).
    pub fn from_decision(fault: &str, unit: Unit, decision: Decision) -> Self {
        FaultPlan {
            fault: fault.into(),
            unit,
            wanted: decision.wanted,
            chosen: decision.chosen,
            excluded: decision
                .excluded
                .into_iter()
                .map(|(target, reason)| Excluded {
                    explanation: reason.explain(),
                    target,
                    reason,
                })
                .collect(),
            steps: Vec::new(),
            problem: None,
            warnings: Vec::new(),
        }
    }
}

impl Step {
    pub fn new(target: &Candidate, action: Action, undo: Vec<Undo>) -> Self {
        Step {
            target: target.display(),
            does: action.to_string(),
            undone_by: undo.iter().map(ToString::to_string).collect(),
            action,
            undo,
            pods: Vec::new(),
        }
    }
}

/// The permissions a run of `scenario` needs. The journal is a ConfigMap in the target's
/// namespace; the rest follows from the faults and probes.
pub fn permissions(
    scenario: &Scenario,
    nodes_journal_namespace: Option<&str>,
    kill_switch: &super::abort::KillSwitch,
) -> Vec<Permission> {
    let spec = &scenario.spec;
    let ns = spec.target.namespace.clone().unwrap_or_default();
    let mut needed = Vec::new();
    let journal_ns = super::journal::journal_namespace(spec, nodes_journal_namespace);
    for verb in ["create", "update", "delete"] {
        needed.push(Permission::new(verb, "", "configmaps", "", &journal_ns));
    }
    // The kill switch must be readable, or pulling it would not stop this run. Both are read
    // by name: a role granting exactly these objects is enough.
    needed.push(Permission::new("get", "", "configmaps", "", &kill_switch.namespace).named(&kill_switch.name));
    if !ns.is_empty() {
        needed.push(Permission::new("get", "", "namespaces", "", "").named(&ns));
    }
    for fault in &spec.faults {
        let Some(kind) = fault.kind() else { continue };
        match kind {
            FaultKind::PodKill(_) => needed.push(Permission::new("delete", "", "pods", "", &ns)),
            FaultKind::PodEvict(_) => needed.push(Permission::new("create", "", "pods", "eviction", &ns)),
            FaultKind::Scale(_) => {
                let plural = if spec.target.kind.as_str() == "StatefulSet" {
                    "statefulsets"
                } else {
                    "deployments"
                };
                needed.push(Permission::new("get", "apps", plural, "scale", &ns));
                needed.push(Permission::new("patch", "apps", plural, "scale", &ns));
            }
            FaultKind::NodeCordon(_) => {
                needed.push(Permission::new("get", "", "nodes", "", ""));
                needed.push(Permission::new("patch", "", "nodes", "", ""));
            }
            FaultKind::NodeDrain(_) => {
                needed.push(Permission::new("get", "", "nodes", "", ""));
                needed.push(Permission::new("patch", "", "nodes", "", ""));
                needed.push(Permission::new("list", "", "pods", "", ""));
                needed.push(Permission::new("create", "", "pods", "eviction", ""));
            }
            FaultKind::NetworkPartition(_) | FaultKind::DnsFailure(_) => {
                needed.push(Permission::new("patch", "", "pods", "", &ns));
                needed.push(Permission::new(
                    "create",
                    "networking.k8s.io",
                    "networkpolicies",
                    "",
                    &ns,
                ));
                needed.push(Permission::new(
                    "delete",
                    "networking.k8s.io",
                    "networkpolicies",
                    "",
                    &ns,
                ));
            }
            FaultKind::ContainerKill(_) => {
                needed.push(Permission::new("get", "", "pods", "", &ns));
                needed.push(Permission::new("patch", "", "pods", "ephemeralcontainers", &ns));
            }
            FaultKind::NetworkDelay(_)
            | FaultKind::NetworkLoss(_)
            | FaultKind::CpuStress(_)
            | FaultKind::MemoryStress(_) => {
                needed.push(Permission::new("get", "", "pods", "", &ns));
                needed.push(Permission::new("patch", "", "pods", "ephemeralcontainers", &ns));
                // TERM to the fault's script: without it an abort waits for the duration.
                // The exec is a WebSocket upgrade, a GET: API servers up to 1.34 authorize
                // it as `get`, later ones (AuthorizePodWebsocketUpgradeCreatePermission) as
                // `create` too. Both are asked, so a role that works on one works on all.
                needed.push(Permission::new("get", "", "pods", "exec", &ns));
                needed.push(Permission::new("create", "", "pods", "exec", &ns));
            }
        }
    }
    let probes = spec
        .steady_state
        .iter()
        .flat_map(|c| c.probe())
        .chain(spec.expect.iter().flat_map(|c| c.probe()))
        .chain(spec.abort_when.iter().flat_map(|c| c.probe()));
    for probe in probes {
        match probe {
            ProbeKind::Kube(k) => {
                let namespace = k.namespace.clone().unwrap_or_else(|| ns.clone());
                let kind = k.kind.unwrap_or(spec.target.kind);
                let (group, plural) = match kind.as_str() {
                    "Deployment" => ("apps", "deployments"),
                    "StatefulSet" => ("apps", "statefulsets"),
                    "DaemonSet" => ("apps", "daemonsets"),
                    "Node" => ("", "nodes"),
                    _ => ("", "pods"),
                };
                needed.push(Permission::new("get", group, plural, "", &namespace));
                needed.push(Permission::new("list", "", "pods", "", &namespace));
            }
            ProbeKind::Http(h) => {
                if let Some((namespace, _, _)) = url::Url::parse(&h.url)
                    .ok()
                    .as_ref()
                    .and_then(crate::scenario::address::service_address)
                {
                    // The proxy is authorized by the request's own verb: a POST is `create`.
                    let verb = match h.method {
                        crate::scenario::model::HttpMethod::POST => "create",
                        _ => "get",
                    };
                    needed.push(Permission::new(verb, "", "services", "proxy", &namespace));
                }
            }
            _ => {}
        }
    }
    needed.sort();
    needed.dedup();
    needed
}

/// Why the plan may not run; empty when it may.
pub fn refusals(plan: &Plan) -> Vec<String> {
    let mut reasons = Vec::new();
    for fault in &plan.faults {
        if let Some(problem) = &fault.problem {
            reasons.push(format!("{}: {problem}", fault.fault));
        } else if fault.chosen.is_empty() {
            let why = if fault.excluded.is_empty() {
                "no object matches the target".to_owned()
            } else {
                format!("all {} candidates are excluded", fault.excluded.len())
            };
            reasons.push(format!("{}: nothing to act on ({why})", fault.fault));
        }
    }
    for check in &plan.steady_state {
        if check.sample.verdict != crate::probe::Verdict::Pass {
            reasons.push(format!(
                "steady state `{}` does not hold: {}",
                check.name, check.sample.observed
            ));
        }
    }
    reasons.extend(plan.unjudgeable.iter().cloned());
    reasons.extend(plan.watch.problems.iter().cloned());
    for check in plan.permissions.iter().filter(|c| !c.allowed) {
        reasons.push(format!("not allowed to {}", check.permission.describe()));
    }
    for dry in &plan.dry_run {
        if let Some(refused) = &dry.refused {
            reasons.push(format!("the API server refused `{}`: {refused}", dry.request));
        }
    }
    reasons
}
