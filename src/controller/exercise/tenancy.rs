//! Tenancy: what a Scenario of one namespace may reach, and what this controller refuses
//! whoever asks. Every refusal is a [`Refusal`]; its text says what to change to allow it.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::super::context::Options;
use super::Exercise;
use crate::scenario::model::{ProbeKind, Scenario, ScenarioResource};

/// The label a namespace carries to let Scenarios of other namespaces target it: a namespace
/// name, or `*`.
pub const ALLOW_FROM_LABEL: &str = "disasterpiece.dev/allow-from";
/// The label by which a namespace lets Scenarios of every namespace target it (`*` is not a
/// valid label value, so "any" needs a label of its own).
pub const ALLOW_FROM_ALL_LABEL: &str = "disasterpiece.dev/allow-from-all";

/// Why an Exercise is refused before anything is done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "a Scenario in namespace {from} may not target namespace {to}: label namespace {to} {ALLOW_FROM_LABEL}={from} (or {ALLOW_FROM_ALL_LABEL}=true for every namespace) to allow it"
    )]
    Namespace { from: String, to: String },
    /// A probe or a watch reads a namespace the Scenario may not target.
    #[error("Scenario {scenario}, {what} namespace {namespace}: {refusal}")]
    Reads {
        scenario: String,
        what: String,
        namespace: String,
        refusal: Box<Refusal>,
    },
    #[error(
        "Scenario {scenario} {what}, which every namespace shares, and namespace {from} may not: list it in the controller's --node-scenario-namespaces (Helm controller.nodeScenarioNamespaces) to allow it"
    )]
    Nodes {
        scenario: String,
        what: String,
        from: String,
    },
    #[error(
        "Scenario {scenario} runs its in-pod faults with faultImage {image}, which this controller does not allow: the image runs inside the target pod. Remove faultImage to use the controller's own, or list the image in --allowed-fault-images (Helm controller.allowedFaultImages)"
    )]
    FaultImage { scenario: String, image: String },
    #[error(
        "Scenario {scenario} asks to watch every namespace (`*`), which only the operator may: name the namespaces in watch.namespaces (each must allow namespace {from}, as a target would), or ask the operator to add them with --watch-namespace (Helm controller.watch.namespaces)"
    )]
    WatchEverything { scenario: String, from: String },
    #[error(
        "Scenario {scenario} has command probes ({probes}), which this controller does not run: they would run inside it, as its ServiceAccount. Use an http or kube probe, or start the controller with --allow-command-probes (Helm: controller.allowCommandProbes) if every Scenario author may act as the controller"
    )]
    CommandProbes { scenario: String, probes: String },
    #[error("Scenario {scenario}, probe `{clause}`: {reason}")]
    ProbeAddress {
        scenario: String,
        clause: String,
        reason: String,
    },
    #[error("Scenario {namespace}/{name}: {reason}")]
    Unreadable {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("Scenario {namespace}/{name} is invalid: {problems}")]
    Invalid {
        namespace: String,
        name: String,
        problems: String,
    },
}

/// Why a Scenario of namespace `from` may not target namespace `to`, whose labels are
/// `labels`, if it may not.
pub fn tenancy_refusal(from: &str, to: &str, labels: &std::collections::BTreeMap<String, String>) -> Option<Refusal> {
    if from == to {
        return None;
    }
    let named = labels
        .get(ALLOW_FROM_LABEL)
        .is_some_and(|v| v.split(['.', ',']).any(|n| n == from));
    let everyone = labels.get(ALLOW_FROM_ALL_LABEL).is_some_and(|v| v == "true");
    (!(named || everyone)).then(|| Refusal::Namespace {
        from: from.to_owned(),
        to: to.to_owned(),
    })
}

/// Where a probe reaches, for the checks below.
enum Reach<'a> {
    /// An address a Scenario names, asked directly.
    Address(&'a str),
    /// A namespace it reads (kube probes) or a Service in it (service-proxy http probes).
    Namespace(String),
    /// Nodes, which every namespace shares.
    Nodes,
    /// The operator's own Prometheus or Alertmanager, or a program (checked apart).
    Nothing,
}

fn reach<'a>(probe: ProbeKind<'a>, target: &crate::scenario::model::Target, from: &str) -> Reach<'a> {
    use crate::scenario::model::TargetKind;
    let target_ns = || target.namespace.clone().unwrap_or_else(|| from.to_owned());
    match probe {
        ProbeKind::Http(p) => match url::Url::parse(&p.url)
            .ok()
            .as_ref()
            .and_then(crate::scenario::address::service_address)
        {
            Some((namespace, _, _)) => Reach::Namespace(namespace),
            None => Reach::Address(&p.url),
        },
        ProbeKind::Kube(p) if p.kind.as_ref().unwrap_or(&target.kind) == &TargetKind::Node => Reach::Nodes,
        ProbeKind::Kube(p) => Reach::Namespace(p.namespace.clone().unwrap_or_else(target_ns)),
        ProbeKind::Prometheus(p) => p.url.as_deref().map_or(Reach::Nothing, Reach::Address),
        ProbeKind::Alert(p) => p.url.as_deref().map_or(Reach::Nothing, Reach::Address),
        ProbeKind::Command(_) => Reach::Nothing,
    }
}

/// Whether `image` may run as an in-pod fault: the controller's own fault image (or the
/// built-in default when it has none), or one `--allowed-fault-images` lists (exactly, or by a
/// prefix ending in `*`).
pub fn fault_image_allowed(image: &str, own: Option<&str>, allowed: &[String]) -> bool {
    image == own.unwrap_or(crate::fault::in_pod::DEFAULT_IMAGE)
        || allowed.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => image.starts_with(prefix),
            None => image == a,
        })
}

/// What this controller refuses to run whatever the Scenario's author may do:
/// - command probes unless it was started with `--allow-command-probes` (they would run
///   inside the controller, with its ServiceAccount's rights);
/// - Node targets and Node probes from a namespace not listed in `--node-scenario-namespaces`
///   (Nodes are shared by every namespace: a tenant's Scenario could cordon or drain the
///   whole cluster, or read its nodes into a report);
/// - a `faultImage` other than the controller's own unless `--allowed-fault-images` lists it
///   (it runs inside the target pod, sharing its process namespace for containerKill);
/// - probe addresses outside `--allowed-probe-hosts` (the controller would ask them from
///   inside the cluster: metadata services, the kubelet, anything internal).
pub(super) fn allowed_here(scenario: Scenario, options: &Options) -> Result<Scenario, Refusal> {
    let from = scenario.metadata.namespace.clone().unwrap_or_default();
    let name = &scenario.metadata.name;
    let spec = &scenario.spec;
    let node_refusal = |what: &str| Refusal::Nodes {
        scenario: name.clone(),
        what: what.to_owned(),
        from: from.clone(),
    };
    let nodes_allowed = options.node_namespaces.contains(&from);
    if spec.target.kind == crate::scenario::model::TargetKind::Node && !nodes_allowed {
        return Err(node_refusal("targets Nodes"));
    }
    if let Some(image) = &spec.fault_image
        && !fault_image_allowed(image, options.fault_image.as_deref(), &options.fault_images)
    {
        return Err(Refusal::FaultImage {
            scenario: name.clone(),
            image: image.clone(),
        });
    }
    if spec
        .watch
        .namespaces
        .iter()
        .chain(&spec.unanticipated.abort_on.collateral_in)
        .any(|n| n == "*")
    {
        return Err(Refusal::WatchEverything {
            scenario: name.clone(),
            from,
        });
    }
    let probes = spec.named_probes();
    let commands: Vec<&str> = (probes.iter())
        .filter(|(_, p)| matches!(p, ProbeKind::Command(_)))
        .map(|(n, _)| n.as_str())
        .collect();
    if options.sources.commands == crate::probe::CommandProbes::Off && !commands.is_empty() {
        return Err(Refusal::CommandProbes {
            scenario: name.clone(),
            probes: commands.join(", "),
        });
    }
    for (clause, probe) in &probes {
        match reach(*probe, &spec.target, &from) {
            Reach::Nodes if !nodes_allowed => return Err(node_refusal(&format!("reads Nodes in `{clause}`"))),
            Reach::Address(address) => {
                let checked = url::Url::parse(address)
                    .map_err(|e| e.to_string())
                    .and_then(|u| options.sources.hosts.check_url(&u).map_err(|e| e.to_string()));
                if let Err(reason) = checked {
                    return Err(Refusal::ProbeAddress {
                        scenario: name.clone(),
                        clause: clause.clone(),
                        reason,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(scenario)
}

/// The namespaces a Scenario's probes read (kube probes, and Services reached through the
/// service proxy) must be ones the Scenario may target: a tenant's report must not show
/// another team's workloads, nor its probes reach another team's Services.
pub(super) async fn probe_tenancy(client: &Client, scenario: &Scenario) -> Result<(), Refusal> {
    let from = scenario.metadata.namespace.clone().unwrap_or_default();
    // Each namespace read once; the Scenario's own needs no read at all.
    let mut checked: Vec<String> = vec![from.clone()];
    let probes = scenario.spec.named_probes().into_iter().filter_map(|(clause, probe)| {
        match reach(probe, &scenario.spec.target, &from) {
            Reach::Namespace(ns) => Some((format!("probe `{clause}` reads"), ns)),
            _ => None,
        }
    });
    // What the watch beyond the targets reads goes into the report as well.
    let watched = (scenario.spec.watch.namespaces.iter()).map(|ns| ("watch.namespaces names".to_owned(), ns.clone()));
    for (clause, ns) in probes.chain(watched) {
        if checked.contains(&ns) {
            continue;
        }
        let labels = Api::<Namespace>::all(client.clone())
            .get(&ns)
            .await
            .ok()
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        checked.push(ns.clone());
        if let Some(refusal) = tenancy_refusal(&from, &ns, &labels) {
            return Err(Refusal::Reads {
                scenario: scenario.metadata.name.clone(),
                what: clause,
                namespace: ns,
                refusal: Box::new(refusal),
            });
        }
    }
    Ok(())
}

/// The scenario an Exercise names, as the engine reads it, or why it cannot run.
pub(super) async fn scenario_for(client: &Client, exercise: &Exercise) -> Result<Scenario, Refusal> {
    let ns = exercise.namespace().unwrap_or_default();
    let resource = Api::<ScenarioResource>::namespaced(client.clone(), &ns)
        .get(&exercise.spec.scenario)
        .await
        .map_err(|e| Refusal::Unreadable {
            namespace: ns.clone(),
            name: exercise.spec.scenario.clone(),
            reason: crate::api::api_message(&e),
        })?;
    let mut scenario = super::super::scenarios::as_file(&resource, &ns);
    if let Some(target) = &exercise.spec.target_namespace {
        // The probes that watched the Scenario's namespace move with the target.
        crate::scenario::retarget::retarget(&mut scenario, target);
    }
    // The same checks as `validate`: a Scenario that fails them never reaches the cluster.
    if let Some(problems) = super::super::scenarios::problems(&scenario) {
        return Err(Refusal::Invalid {
            namespace: ns,
            name: scenario.metadata.name,
            problems,
        });
    }
    let target_ns = scenario.spec.target.namespace.clone().unwrap_or_else(|| ns.clone());
    let labels = Api::<Namespace>::all(client.clone())
        .get(&target_ns)
        .await
        .ok()
        .map(|n| n.labels().clone())
        .unwrap_or_default();
    if let Some(refusal) = tenancy_refusal(&ns, &target_ns, &labels) {
        return Err(refusal);
    }
    Ok(scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenancy_allows_the_own_namespace_and_what_the_target_opts_into() {
        let labels = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(tenancy_refusal("team-a", "team-a", &labels(&[])), None);
        assert_eq!(
            tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_LABEL, "team-a")])),
            None
        );
        assert_eq!(
            tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_LABEL, "team-b.team-a")])),
            None
        );
        assert_eq!(
            tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_ALL_LABEL, "true")])),
            None
        );
        let refused = tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_LABEL, "team-b")]))
            .expect("refused")
            .to_string();
        assert!(refused.contains("disasterpiece.dev/allow-from=team-a"), "{refused}");
        assert!(refused.contains("disasterpiece.dev/allow-from-all=true"), "{refused}");
        // `*` was documented once, but it is no valid label value: it names no namespace.
        assert!(tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_LABEL, "*")])).is_some());
        assert!(tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_ALL_LABEL, "false")])).is_some());
        assert!(tenancy_refusal("team-a", "shop", &labels(&[])).is_some());
    }
}
