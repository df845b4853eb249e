//! Gathers what a plan needs from the cluster, changing nothing: live targets, the guard's
//! decision, each fault prepared (reads only), the steady state sampled once, permissions
//! asked with SelfSubjectAccessReview, and every mutation sent with `dryRun=All`.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use super::plan::{DryRun, FaultPlan, Permission, PermissionCheck, Plan, SteadyCheck, Step, permissions, refusals};
use crate::blast_radius::guard::decide;
use crate::blast_radius::resolve::resolve;
use crate::blast_radius::{Candidate, Unit};
use crate::clock::Clock;
use crate::fault::{self, Context};
use crate::probe::{self, ProbeContext};
use crate::scenario::model::{HasProbe, Scenario};

/// What a plan is made with, besides the scenario.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// What probes may reach (the steady state is read once).
    pub sources: probe::Sources,
    /// The image of in-pod fault containers when the scenario names none (`--fault-image`).
    pub fault_image: Option<String>,
    /// Where the journals of Node faults are kept (see `journal::journal_namespace`).
    pub nodes_journal_namespace: Option<String>,
    /// The exercise the plan is for, whose name the objects it would create carry; `None` (a
    /// dry run for its own sake): `<scenario>-plan`. A run passes its own, so that what its
    /// report says it would have done names what it would really have made.
    pub exercise: Option<String>,
    /// The operator's floor of what every exercise watches and halts on.
    pub floor: super::beyond::Floor,
    /// The ConfigMap that stops every exercise while it exists.
    pub kill_switch: super::abort::KillSwitch,
}

/// Plans `scenario` against the cluster behind `client`. Reads, and writes only with
/// `dryRun=All`.
pub async fn plan(
    client: &Client,
    scenario: &Scenario,
    cluster: &str,
    seed: u64,
    options: &PlanOptions,
    clock: &Clock,
) -> Plan {
    let PlanOptions {
        sources,
        fault_image,
        nodes_journal_namespace,
        exercise,
        floor,
        kill_switch,
    } = options;
    let (fault_image, nodes_journal_namespace) = (fault_image.as_deref(), nodes_journal_namespace.as_deref());
    let spec = &scenario.spec;
    let exercise = exercise
        .clone()
        .unwrap_or_else(|| format!("{}-plan", scenario.metadata.name));
    let dry = Context {
        client: client.clone(),
        exercise,
        dry_run: true,
        in_pod: fault::in_pod::Settings {
            image: fault::in_pod::image(spec.fault_image.as_deref(), fault_image),
            duration: spec.duration.as_std(),
        },
        clock: clock.clone(),
    };
    let mut faults = Vec::new();
    let mut dry_runs = Vec::new();
    for fault in &spec.faults {
        let kinds = fault.kinds();
        let Some((name, kind)) = kinds.first().copied() else {
            continue;
        };
        let unit = Unit::of(kind);
        let resolved = match resolve(client, &spec.target, unit).await {
            Ok(r) => r,
            Err(e) => {
                faults.push(FaultPlan {
                    problem: Some(e.to_string()),
                    ..FaultPlan::from_decision(name, unit, Default::default())
                });
                continue;
            }
        };
        let candidates = shuffle(resolved.candidates, seed);
        let decision = decide(unit, &candidates, &spec.blast_radius, &resolved.health);
        let mut planned = FaultPlan::from_decision(name, unit, decision);
        if let (crate::scenario::model::FaultKind::Scale(s), Some(min)) = (kind, spec.blast_radius.min_healthy)
            && s.replicas < min
        {
            planned.problem = Some(format!(
                "scaling to {} replicas would leave fewer than minHealthy ({min})",
                s.replicas
            ));
        }
        for target in planned.chosen.clone() {
            match fault::prepare(&dry, kind, &target).await {
                Ok(prepared) => {
                    if let Some(held) = super::journal::held_by_another(client, &prepared.action, &dry.exercise).await {
                        planned.problem = Some(held);
                    }
                    // An in-pod fault is stopped early (revert, abort) through pods/exec: if
                    // no exec stream opens, an abort would wait for the fault's end.
                    if prepared.undo.iter().any(|u| matches!(u, fault::Undo::StopInPod { .. }))
                        && let (Some(ns), false) = (&target.namespace, target.name.is_empty())
                        && let Err(e) = fault::in_pod::exec_reaches(client, ns, &target.name).await
                    {
                        planned.problem = Some(format!(
                            "{}: exec into the pod fails ({e}), so the fault could not be stopped before its {} end, not even by an abort; check that the API server reaches the node's kubelet (port 10250)",
                            target.display(),
                            spec.duration
                        ));
                    }
                    // The container's name must be free in the pod, and its stress bounded.
                    if let fault::Action::InPod {
                        namespace,
                        pod,
                        container,
                        ..
                    } = &prepared.action
                        && let Ok(current) = Api::<Pod>::namespaced(client.clone(), namespace).get(pod).await
                    {
                        let review = fault::review::review(&current, container);
                        if review.problem.is_some() {
                            planned.problem = review.problem;
                        }
                        planned.warnings.extend(review.warnings);
                    }
                    dry_runs.push(send_dry_run(&dry, &prepared).await);
                    let mut step = Step::new(&target, prepared.action, prepared.undo);
                    // A drain's reach is every pod on the node: each one is listed.
                    if let fault::Action::Drain { node, .. } = &step.action {
                        match fault::node_drain::survey(client, node).await {
                            Ok(pods) => step.pods = pods,
                            Err(e) => planned.problem = Some(e.to_string()),
                        }
                    }
                    planned.steps.push(step);
                }
                Err(e) => planned.problem = Some(format!("{}: {e}", target.display())),
            }
        }
        faults.push(planned);
    }
    let probe_ctx = ProbeContext {
        client: client.clone(),
        target: spec.target.clone(),
        sources: sources.clone(),
        clock: clock.clone(),
    };
    let mut steady_state = Vec::new();
    for check in &spec.steady_state {
        let probes = check.probes();
        let Some((kind, probe)) = probes.first().copied() else {
            continue;
        };
        steady_state.push(SteadyCheck {
            name: check.name.clone(),
            probe: kind.into(),
            sample: probe::sample(&probe_ctx, probe).await,
        });
    }
    let scope = super::beyond::Scope::of(spec, floor);
    // Every access review at once: each is one round trip, and none depends on another.
    let mut wanted = permissions(scenario, nodes_journal_namespace, kill_switch);
    wanted.extend(super::beyond::permissions(&scope));
    let checks = futures_util::future::join_all(wanted.into_iter().map(|p| review(client, p))).await;
    let watch = watch_plan(client, spec, &scope, sources.alertmanager.as_deref()).await;
    let journal_ns = super::journal::journal_namespace(spec, nodes_journal_namespace);
    dry_runs.push(journal_dry_run(client, &journal_ns, &scenario.metadata.name).await);
    let mut plan = Plan {
        scenario: scenario.metadata.name.clone(),
        hypothesis: spec.hypothesis.clone(),
        cluster: cluster.to_owned(),
        seed,
        faults,
        steady_state,
        permissions: checks,
        dry_run: dry_runs,
        unjudgeable: unjudgeable(spec, sources),
        watch,
        runnable: false,
        refusals: Vec::new(),
    };
    plan.refusals = refusals(&plan);
    if let Some(pulled) = super::abort::kill_switch(client, kill_switch, spec.target.namespace.as_deref()).await {
        plan.refusals.push(pulled);
    }
    plan.runnable = plan.refusals.is_empty();
    plan
}

/// The watch beyond the targets: Nodes are watched when required, or else when the identity
/// may; Alertmanager, when one is known, must answer now (its alerts already firing are the
/// baseline).
async fn watch_plan(
    client: &Client,
    spec: &crate::scenario::model::ScenarioSpec,
    scope: &super::beyond::Scope,
    alertmanager: Option<&str>,
) -> super::plan::WatchPlan {
    let mut problems = scope.problems(spec, alertmanager);
    let mut nodes_not_watched = scope.nodes_hidden.clone();
    if !scope.nodes_required && nodes_not_watched.is_none() {
        let checks =
            futures_util::future::join_all(super::beyond::node_permissions().into_iter().map(|p| review(client, p)))
                .await;
        nodes_not_watched = checks.iter().find(|c| !c.allowed).map(|c| {
            format!(
                "not allowed to {} (set watch.nodes: true to require it)",
                c.permission.describe()
            )
        });
    }
    if let Some(base) = alertmanager
        && let Err(e) = super::beyond::reachable(base).await
    {
        problems.push(format!(
            "cannot read the alerts of Alertmanager {base}, so an unanticipated alert would go unseen: {e}"
        ));
    }
    super::plan::WatchPlan {
        namespaces: scope.namespaces.names(),
        nodes: nodes_not_watched.is_none(),
        nodes_not_watched,
        alertmanager: alertmanager.map(str::to_owned),
        halts_on: scope.halts_on(),
        problems,
    }
}

/// The clauses whose probe has nowhere to ask: a `prometheus` or `alert` clause with no `url`
/// and no address given to the run.
fn unjudgeable(spec: &crate::scenario::model::ScenarioSpec, sources: &probe::Sources) -> Vec<String> {
    use crate::scenario::model::{AlertSource, ProbeKind};
    spec.named_probes()
        .into_iter()
        .filter_map(|(name, probe)| {
            let (what, flag) = match probe {
                ProbeKind::Prometheus(p) if p.url.is_none() && sources.prometheus.is_none() => {
                    ("Prometheus", "--prometheus-url")
                }
                ProbeKind::Alert(a)
                    if a.url.is_none() && a.source == AlertSource::Prometheus && sources.prometheus.is_none() =>
                {
                    ("Prometheus", "--prometheus-url")
                }
                ProbeKind::Alert(a)
                    if a.url.is_none() && a.source == AlertSource::Alertmanager && sources.alertmanager.is_none() =>
                {
                    ("Alertmanager", "--alertmanager-url")
                }
                _ => return None,
            };
            Some(format!(
                "`{name}` cannot be judged: it asks {what}, and no {what} address is known; give {flag} (or `url` on the probe), or remove the clause"
            ))
        })
        .collect()
}

/// The fault's own requests with `dryRun=All`, then its undo steps the same way.
async fn send_dry_run(ctx: &Context, prepared: &fault::Prepared) -> DryRun {
    let request = prepared.action.to_string();
    let mut refused = match fault::apply(ctx, prepared).await {
        Ok(fault::Outcome::Injected | fault::Outcome::Evicted { .. }) => None,
        Ok(fault::Outcome::Partial { reason, .. }) => Some(reason),
        Ok(fault::Outcome::NotInjected { reason }) => Some(reason),
        Err(e) => Some(e.to_string()),
    };
    for undo in &prepared.undo {
        if refused.is_some() {
            break;
        }
        if let Err(e) = fault::revert(ctx, undo).await {
            refused = Some(format!("undo `{undo}`: {e}"));
        }
    }
    DryRun { request, refused }
}

/// The journal ConfigMap the run will write, sent with `dryRun=All`.
async fn journal_dry_run(client: &Client, namespace: &str, scenario: &str) -> DryRun {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "ConfigMap"), "configmaps"),
    );
    let name = format!("disasterpiece-journal-{scenario}-plan");
    let object: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": {}})).expect("a static ConfigMap is valid");
    let refused = api
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &object,
        )
        .await
        .err()
        .map(|e| e.to_string());
    DryRun {
        request: format!("create journal ConfigMap {namespace}/disasterpiece-journal-…"),
        refused,
    }
}

/// Asks the API server whether the current user may do one thing.
async fn review(client: &Client, permission: Permission) -> PermissionCheck {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
            "selfsubjectaccessreviews",
        ),
    );
    let mut attributes = json!({"verb": permission.verb, "group": permission.group, "resource": permission.resource});
    if !permission.subresource.is_empty() {
        attributes["subresource"] = json!(permission.subresource);
    }
    if !permission.namespace.is_empty() {
        attributes["namespace"] = json!(permission.namespace);
    }
    if !permission.name.is_empty() {
        attributes["name"] = json!(permission.name);
    }
    let object: DynamicObject = serde_json::from_value(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {}, "spec": {"resourceAttributes": attributes}}))
        .expect("a static review is valid");
    match api.create(&PostParams::default(), &object).await {
        Ok(answer) => PermissionCheck {
            allowed: answer.data["status"]["allowed"] == true,
            reason: answer.data["status"]["reason"].as_str().unwrap_or_default().to_owned(),
            permission,
        },
        Err(e) => PermissionCheck {
            permission,
            allowed: false,
            reason: format!("cannot ask: {}", crate::api::api_message(&e)),
        },
    }
}

/// The candidates in an order fixed by `seed`: the same seed chooses the same targets.
pub fn shuffle(mut candidates: Vec<Candidate>, seed: u64) -> Vec<Candidate> {
    let key = |c: &Candidate| {
        let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
        for b in c.uid.bytes().chain(c.name.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    candidates.sort_by_key(key);
    candidates
}
