//! Beyond the targets: the observed blast radius, and the halt on unanticipated impact.
//!
//! Flow: `plan` computes the [`Scope`] (pure: the scenario's `watch` and `unanticipated` on top
//! of the operator's [`Floor`]) and checks the permissions its watches need; `run` starts a
//! [`Watcher`] right before the first injection and stops it at the end of recovery. The
//! watcher feeds the pure [`ledger`] from Kubernetes watches (workloads and pods of the
//! watched namespaces, Nodes) and from Alertmanager, and pulls the exercise's Andon cord when
//! a halt rule matches new collateral. The report gets what the ledger found.
//!
//! Guarantees: a tenant can only add to the operator's floor, never take from it (the scope
//! is a union); what cannot be watched is refused at preflight, not skipped; a halt goes
//! through the one abort path, so it reverts everything in every phase.

pub mod ledger;
mod watch;

use std::collections::BTreeSet;

use crate::scenario::matcher::{self, MatcherSet};
use crate::scenario::model::{ProbeKind, ScenarioSpec};

pub use watch::{AlertsError, Started, WatchError, Watcher, reachable};

/// What the operator sets for every exercise (flags, Helm values); a Scenario may add to it,
/// never take from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Floor {
    /// Namespaces every exercise watches (`*`: all), e.g. `kube-system` and the ingress's.
    pub namespaces: Vec<String>,
    /// Alert matcher sets that always halt (`severity=~"page|critical"`).
    pub alerts: Vec<String>,
    /// Namespaces where collateral always halts (`*`: anywhere watched).
    pub collateral_in: Vec<String>,
    /// Why Nodes are not watched for this exercise, when they may not be: the controller does
    /// not show Nodes to a namespace it does not let read them (`--node-scenario-namespaces`).
    pub nodes_hidden: Option<String>,
}

impl Floor {
    /// What is wrong with the floor, if anything: checked once, when the CLI or the
    /// controller starts.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .alerts
            .iter()
            .filter_map(|a| matcher::parse(a).err().map(|e| format!("--halt-on-alert `{a}`: {e}")))
            .collect();
        let names = self.namespaces.iter().chain(&self.collateral_in);
        problems.extend(
            names
                .filter(|ns| *ns != "*" && !disasterpiece_common::names::is_dns_label(ns))
                .map(|ns| format!("`{ns}` is not a namespace name (nor `*`)")),
        );
        problems
    }
}

/// Namespaces: some, or every one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    All,
    Some(BTreeSet<String>),
}

impl Namespaces {
    fn of<'a>(names: impl IntoIterator<Item = &'a String>) -> Namespaces {
        let mut set = BTreeSet::new();
        for name in names {
            if name == "*" {
                return Namespaces::All;
            }
            set.insert(name.clone());
        }
        Namespaces::Some(set)
    }

    pub fn contains(&self, ns: &str) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Some(set) => set.contains(ns),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Namespaces::Some(set) if set.is_empty())
    }

    /// As people read it: `orders, shop`, or `*`.
    pub fn names(&self) -> Vec<String> {
        match self {
            Namespaces::All => vec!["*".into()],
            Namespaces::Some(set) => set.iter().cloned().collect(),
        }
    }
}

/// Who set a halt rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Operator,
    Scenario,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Operator => "operator",
            Origin::Scenario => "scenario",
        })
    }
}

/// An alert the hypothesis names: its firing is anticipated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anticipated {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What one exercise watches and what halts it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespaces: Namespaces,
    /// Nodes must be watched (`watch.nodes: true`); else they are when the identity may.
    pub nodes_required: bool,
    /// Why Nodes may not be watched for this exercise, whatever the identity may (see
    /// [`Floor::nodes_hidden`]).
    pub nodes_hidden: Option<String>,
    /// Halt on a new alert one of these sets matches.
    pub halt_alerts: Vec<(MatcherSet, Origin)>,
    /// Halt on collateral in these namespaces (and on Nodes under `*`), with who asked.
    pub halt_collateral: Vec<(Namespaces, Origin)>,
    /// The alerts the scenario's clauses name.
    pub anticipated: Vec<Anticipated>,
}

impl Scope {
    /// The scope of `spec` under `floor`: the union of both. Matchers that do not parse were
    /// refused by `validate` and `Floor::problems`; one that slips through is left out here
    /// and reported by `problems`.
    pub fn of(spec: &ScenarioSpec, floor: &Floor) -> Scope {
        let target_ns = spec.target.namespace.iter();
        let namespaces = Namespaces::of(target_ns.chain(&spec.watch.namespaces).chain(&floor.namespaces));
        let sets = |texts: &[String], origin| {
            texts
                .iter()
                .filter_map(|t| matcher::parse(t).ok())
                .map(|set| (set, origin))
                .collect::<Vec<_>>()
        };
        let mut halt_alerts = sets(&floor.alerts, Origin::Operator);
        halt_alerts.extend(sets(&spec.unanticipated.abort_on.alerts, Origin::Scenario));
        let mut halt_collateral = Vec::new();
        if !floor.collateral_in.is_empty() {
            halt_collateral.push((Namespaces::of(&floor.collateral_in), Origin::Operator));
        }
        if !spec.unanticipated.abort_on.collateral_in.is_empty() {
            halt_collateral.push((
                Namespaces::of(&spec.unanticipated.abort_on.collateral_in),
                Origin::Scenario,
            ));
        }
        let anticipated = spec
            .named_probes()
            .into_iter()
            .filter_map(|(_, probe)| match probe {
                ProbeKind::Alert(a) => Some(Anticipated {
                    name: a.name.clone(),
                    labels: a.labels.clone(),
                }),
                _ => None,
            })
            .collect();
        Scope {
            namespaces,
            nodes_required: spec.watch.nodes.unwrap_or(false),
            nodes_hidden: floor.nodes_hidden.clone(),
            halt_alerts,
            halt_collateral,
            anticipated,
        }
    }

    /// Whether an alert with these labels is one the hypothesis names.
    pub fn anticipates(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.anticipated
            .iter()
            .any(|a| labels.get("alertname") == Some(&a.name) && a.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    /// The first rule that halts on this collateral, said for people; `None`: record only.
    pub fn halt_rule(&self, found: &crate::report::model::Collateral) -> Option<String> {
        use crate::report::model::CollateralKind;
        match found.kind {
            CollateralKind::Alert => self
                .halt_alerts
                .iter()
                .find(|(set, _)| set.matches(&found.labels))
                .map(|(set, origin)| format!("alerts matching {} ({origin})", set.text)),
            _ => self
                .halt_collateral
                .iter()
                .find(|(namespaces, _)| match &found.namespace {
                    Some(ns) => namespaces.contains(ns),
                    None => *namespaces == Namespaces::All,
                })
                .map(|(namespaces, origin)| format!("collateral in {} ({origin})", namespaces.names().join(", "))),
        }
    }

    /// Every halt rule, said for people.
    pub fn halts_on(&self) -> Vec<String> {
        let alerts = self
            .halt_alerts
            .iter()
            .map(|(set, origin)| format!("alerts matching {} ({origin})", set.text));
        let collateral = self
            .halt_collateral
            .iter()
            .map(|(ns, origin)| format!("collateral in {} ({origin})", ns.names().join(", ")));
        alerts.chain(collateral).collect()
    }

    /// Why this scope cannot be run as asked, if so: a halt rule that could never trigger
    /// gives a false sense of safety, so it is refused rather than ignored.
    pub fn problems(&self, spec: &ScenarioSpec, alertmanager: Option<&str>) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.halt_alerts.is_empty() && alertmanager.is_none() {
            problems.push(
                "unanticipated alerts are to halt the exercise, but no Alertmanager is known to read them from: give --alertmanager-url (Helm controller.alertmanagerUrl)"
                    .to_owned(),
            );
        }
        for ns in &spec.unanticipated.abort_on.collateral_in {
            if ns != "*" && !self.namespaces.contains(ns) {
                problems.push(format!(
                    "unanticipated.abortOn.collateralIn names namespace {ns}, which this exercise does not watch: add it to watch.namespaces"
                ));
            }
        }
        if let (true, Some(why)) = (self.nodes_required, &self.nodes_hidden) {
            problems.push(format!("watch.nodes is true, but Nodes may not be watched here: {why}"));
        }
        let parsed = self.halt_alerts.iter().filter(|(_, o)| *o == Origin::Scenario).count();
        if parsed < spec.unanticipated.abort_on.alerts.len() {
            problems.push(
                "an alert matcher of unanticipated.abortOn.alerts does not parse: run `disasterpiece validate`".into(),
            );
        }
        problems
    }
}

/// The blast radius the plan declares: its chosen targets, the workloads their pods belong
/// to (a replacement pod is the system's answer, not collateral) and the target workload.
/// PURE.
pub fn declared(plan: &crate::engine::plan::Plan, spec: &ScenarioSpec) -> ledger::Declared {
    let mut declared = ledger::Declared::default();
    let target_ns = spec.target.namespace.clone().unwrap_or_default();
    if let Some(name) = &spec.target.name
        && matches!(spec.target.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
    {
        declared
            .workloads
            .insert((spec.target.kind.as_str().to_owned(), target_ns.clone(), name.clone()));
    }
    for chosen in plan.faults.iter().flat_map(|f| &f.chosen) {
        let ns = chosen.namespace.clone().unwrap_or_default();
        match chosen.kind.as_str() {
            "Node" => {
                declared.nodes.insert(chosen.name.clone());
            }
            "Pod" => {
                declared.pods.insert((ns.clone(), chosen.name.clone()));
            }
            kind => {
                declared
                    .workloads
                    .insert((kind.to_owned(), ns.clone(), chosen.name.clone()));
            }
        }
        if let Some((kind, name)) = chosen.workload.as_deref().and_then(|w| w.split_once('/')) {
            declared.workloads.insert((kind.to_owned(), ns, name.to_owned()));
        }
    }
    declared
}

/// What the watches of `scope` need: list and watch of workloads and pods in each watched
/// namespace (cluster-wide for `*`), and of Nodes when they are required. PURE.
pub fn permissions(scope: &Scope) -> Vec<crate::engine::plan::Permission> {
    use crate::engine::plan::Permission;
    let namespaces = match &scope.namespaces {
        Namespaces::All => vec![String::new()],
        Namespaces::Some(set) => set.iter().cloned().collect(),
    };
    let mut needed = Vec::new();
    for ns in &namespaces {
        for (group, resource) in WATCHED {
            for verb in ["list", "watch"] {
                needed.push(Permission::new(verb, group, resource, "", ns));
            }
        }
    }
    if scope.nodes_required && scope.nodes_hidden.is_none() {
        needed.extend(node_permissions());
    }
    needed
}

/// The kinds watched in each namespace: `(group, resource)`.
const WATCHED: [(&str, &str); 4] = [
    ("", "pods"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
];

/// What watching Nodes needs.
pub fn node_permissions() -> Vec<crate::engine::plan::Permission> {
    use crate::engine::plan::Permission;
    vec![
        Permission::new("list", "", "nodes", "", ""),
        Permission::new("watch", "", "nodes", "", ""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Collateral, CollateralKind};

    fn spec(extra: &str) -> ScenarioSpec {
        let text = format!(
            "hypothesis: h\ntarget: {{namespace: shop, kind: Deployment, name: checkout}}\nfaults: [{{podKill: {{}}}}]\nduration: 10s\nexpect: [{{name: paged, alert: {{name: CheckoutDegraded, labels: {{severity: page}}}}, within: 1m}}]\n{extra}"
        );
        serde_yaml::from_str(&text).expect("spec")
    }

    fn collateral(kind: CollateralKind, ns: Option<&str>, labels: &[(&str, &str)]) -> Collateral {
        Collateral {
            kind,
            subject: "x".into(),
            namespace: ns.map(str::to_owned),
            what: String::new(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            owner: None,
            first_seen: chrono::DateTime::from_timestamp(0, 0).expect("time"),
            until: None,
            for_s: 0.0,
            halts: false,
        }
    }

    #[test]
    fn a_tenant_adds_to_the_operators_floor_and_cannot_take_from_it() {
        let floor = Floor {
            namespaces: vec!["kube-system".into()],
            alerts: vec![r#"severity="page""#.into()],
            collateral_in: vec!["payments".into()],
            nodes_hidden: None,
        };
        // Record only, by the scenario's word: the floor still halts.
        let scope = Scope::of(&spec("watch: {namespaces: [orders]}"), &floor);
        assert_eq!(scope.namespaces.names(), ["kube-system", "orders", "shop"]);
        let page = collateral(
            CollateralKind::Alert,
            None,
            &[("alertname", "DiskFull"), ("severity", "page")],
        );
        assert_eq!(
            scope.halt_rule(&page).as_deref(),
            Some(r#"alerts matching severity="page" (operator)"#)
        );
        let in_payments = collateral(CollateralKind::Workload, Some("payments"), &[]);
        assert!(scope.halt_rule(&in_payments).is_some());
        assert_eq!(
            scope.halt_rule(&collateral(CollateralKind::Workload, Some("orders"), &[])),
            None
        );
        // A tighter scenario adds its own rules to the floor's.
        let scope = Scope::of(
            &spec(
                "watch: {namespaces: [orders]}\nunanticipated: {abortOn: {collateralIn: [orders], alerts: ['team=\"orders\"']}}",
            ),
            &floor,
        );
        assert_eq!(scope.halts_on().len(), 4, "{:?}", scope.halts_on());
        assert!(
            scope
                .halt_rule(&collateral(CollateralKind::Workload, Some("orders"), &[]))
                .is_some_and(|r| r.contains("(scenario)"))
        );
        assert!(scope.halt_rule(&page).is_some(), "the floor still halts");
    }

    #[test]
    fn alerts_the_hypothesis_names_are_anticipated_and_nodes_halt_only_under_a_star() {
        let scope = Scope::of(
            &spec("unanticipated: {abortOn: {collateralIn: ['*']}}"),
            &Floor::default(),
        );
        let named: std::collections::BTreeMap<String, String> =
            [("alertname", "CheckoutDegraded"), ("severity", "page"), ("pod", "x")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        assert!(scope.anticipates(&named));
        let mut other = named.clone();
        other.insert("severity".into(), "ticket".into());
        assert!(!scope.anticipates(&other), "a label the clause names differs");
        assert!(scope.halt_rule(&collateral(CollateralKind::Node, None, &[])).is_some());
        let scope = Scope::of(
            &spec("unanticipated: {abortOn: {collateralIn: [shop]}}"),
            &Floor::default(),
        );
        assert!(scope.halt_rule(&collateral(CollateralKind::Node, None, &[])).is_none());
    }

    #[test]
    fn a_halt_rule_that_could_never_trigger_is_a_problem() {
        let s = spec("unanticipated: {abortOn: {alerts: ['severity=\"page\"'], collateralIn: [orders]}}");
        let scope = Scope::of(&s, &Floor::default());
        let problems = scope.problems(&s, None);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("--alertmanager-url"));
        assert!(problems[1].contains("namespace orders"));
        assert!(scope.problems(&s, Some("http://am")).len() == 1);
        let floor = Floor {
            alerts: vec!["severity=~\"(\"".into()],
            namespaces: vec!["Bad_NS".into()],
            collateral_in: vec!["*".into()],
            nodes_hidden: None,
        };
        // Nodes required where they may not be shown: a problem, and no permission asked.
        let hidden = Floor {
            nodes_hidden: Some("namespace team-a may not read Nodes".into()),
            ..Floor::default()
        };
        let required = spec("watch: {nodes: true}");
        let scope = Scope::of(&required, &hidden);
        assert!(scope.problems(&required, None)[0].contains("namespace team-a may not read Nodes"));
        assert!(permissions(&scope).iter().all(|p| p.resource != "nodes"));
        assert_eq!(floor.problems().len(), 2, "{:?}", floor.problems());
    }
}
