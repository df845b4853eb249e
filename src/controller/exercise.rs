//! Runs Exercises: the same engine as `disasterpiece run`, driven by custom resources.
//!
//! Expected flow, per Exercise: a finalizer is added; the Scenario it names is read, checked
//! as `validate` checks a file, and checked for tenancy; the engine runs it; the status
//! follows the phases; Kubernetes Events record each phase, injection, revert, abort and
//! error; the report JSON lands in a ConfigMap `report-<exercise>-<uid>` that outlives the
//! Exercise (`reports`); the finalizer is removed.
//! Guarantees: deleting a running Exercise, or annotating it (or its namespace)
//! `disasterpiece.dev/abort`, aborts it and reverts its faults before the finalizer goes;
//! an Exercise that finished is never run again; at start-up every journal left by a dead
//! run is reverted first.
//! An Exercise found Running that this controller did not start (its controller died) is
//! aborted and its journal reverted, never run again: its observations died with the old
//! controller, so resuming would judge the hypothesis on half the samples.
//! With `election`, only the replica holding the Lease runs Exercises; one that loses it
//! drops what it runs without one write more, and the new leader takes those over as above.
//! Its writes pass the Lease's fence (`lease::Fence`): one cut off from the API server stops
//! writing before another replica may take the Lease, even while its renewal hangs.
//! Reconciled per Exercise by a kube-runtime `Controller` (`manager`): a controller at rest
//! makes no request but its watches; an Exercise running here is read again every poll (its
//! namespace's and GameDay's abort annotations).
//! Why not kube-runtime's `finalizer()` helper: it keeps its finalizer on an object for the
//! object's whole life. An Exercise needs one only while something of it may be in place, so
//! it is added when the run starts and removed once everything is reverted: a finished
//! Exercise (and its namespace) can be deleted even with the controller gone or uninstalled.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::crd::{Condition, Exercise, ExerciseStatus, ExpectationStatus, Phase};
use super::manager::{Context, Options};
use crate::clock::Clock;
use crate::engine::event::ExerciseEvent;
use crate::engine::run::{Progress, RunOptions, run};
use crate::report::model::{Outcome, Report};
use crate::report::render::seconds;
use crate::scenario::model::{ProbeKind, Scenario, ScenarioResource};

pub const FINALIZER: &str = "disasterpiece.dev/revert";
pub const ABORT_ANNOTATION: &str = "disasterpiece.dev/abort";
/// The label a namespace carries to let Scenarios of other namespaces target it: a namespace
/// name, or `*`.
pub const ALLOW_FROM_LABEL: &str = "disasterpiece.dev/allow-from";
/// The label by which a namespace lets Scenarios of every namespace target it (`*` is not a
/// valid label value, so "any" needs a label of its own).
pub const ALLOW_FROM_ALL_LABEL: &str = "disasterpiece.dev/allow-from-all";

/// One Exercise: signal the one running here, let a deleted one go, take over one a dead
/// controller left Running, or start a new one.
/// Only the replica that leads acts; one running here is read again every poll for its kill
/// switches (its namespace's and its GameDay's annotations).
pub(super) async fn reconcile(exercise: Arc<Exercise>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    if !ctx.leads() {
        return Ok(Action::await_change());
    }
    let (client, options, running) = (&ctx.client, &ctx.options, &ctx.running);
    let mut leads = ctx.leads.subscribe();
    let exercise = exercise.as_ref();
    let uid = exercise.uid().unwrap_or_default();
    let ns = exercise.namespace().unwrap_or_default();
    let api: Api<Exercise> = Api::namespaced(client.clone(), &ns);
    let deleting = exercise.metadata.deletion_timestamp.is_some();
    let sender = running.lock().expect("lock").get(&uid).cloned();
    if let Some(sender) = sender {
        // Running here: deletion or the abort annotation pulls the cord.
        let annotated = exercise.annotations().get(ABORT_ANNOTATION).cloned();
        let reason = if deleting {
            Some("the Exercise was deleted".to_owned())
        } else if let Some(r) = annotated {
            Some(format!("annotation {ABORT_ANNOTATION}: {r}"))
        } else if let Some(r) = namespace_abort(client, &ns).await {
            Some(r)
        } else {
            gameday_abort(client, &ns, exercise.spec.game_day.as_deref()).await
        };
        if let Some(reason) = reason
            && sender.borrow().is_none()
        {
            let _ = sender.send(Some(reason));
        }
        return Ok(Action::requeue(options.poll));
    }
    let finished = matches!(
        exercise.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Finished | Phase::Refused)
    );
    if deleting {
        // Not running here: nothing of ours can be active; let it go.
        if exercise.finalizers().iter().any(|f| f == FINALIZER) {
            remove_finalizer(&api, exercise).await?;
        }
        return Ok(Action::await_change());
    }
    if finished {
        return Ok(Action::await_change());
    }
    if exercise.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running) {
        // Started by a controller that is gone. Its observations died with it, so
        // resuming would judge the hypothesis on half the samples; and running it again
        // would inject twice. It is aborted: its faults are reverted from its journal.
        // The list may be older than an exercise this controller has just finished (it
        // leaves `running` only after writing its final status): read it again.
        let fresh = api.get(&exercise.name_any()).await?;
        if fresh.status.as_ref().and_then(|s| s.phase) != Some(Phase::Running) {
            return Ok(Action::await_change());
        }
        take_over(&ctx, &api, &fresh).await?;
        options.metrics.finished("Aborted", None);
        return Ok(Action::await_change());
    }
    // What the watch showed may be older than an Exercise this controller has just finished
    // (it leaves `running` once its final status is written): only a fresh read starts one.
    let exercise = api.get(&exercise.name_any()).await?;
    let fresh = exercise.status.as_ref().and_then(|s| s.phase);
    if !matches!(fresh, None | Some(Phase::Pending)) || exercise.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    add_finalizer(&api, &exercise).await?;
    let (tx, rx) = watch::channel(None);
    running.lock().expect("lock").insert(uid.clone(), tx);
    let requeue = Action::requeue(options.poll);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (options, running) = (&ctx.options, &ctx.running);
        let name = exercise.name_any();
        options.metrics.started();
        let object = format!("{ns}/{name}");
        tokio::select! {
            done = execute(&ctx, exercise, rx) => {
                if let Err(e) = done {
                    ctx.failed("exercise", &object, &e);
                }
            }
            _ = leads.wait_for(|leads| !leads) => {
                tracing::warn!(exercise = %object, "dropped without a write more: this replica lost the lease; the one that leads next reverts it from its journal");
            }
        }
        options.metrics.ended();
        running.lock().expect("lock").remove(&uid);
    });
    Ok(requeue)
}

/// Ends an exercise another controller started: reverts its journal, says so, lets it go.
async fn take_over(ctx: &Context, api: &Api<Exercise>, exercise: &Exercise) -> Result<(), kube::Error> {
    let (client, nodes_ns, clock) = (&ctx.client, ctx.options.journal_namespace.as_str(), &ctx.options.clock);
    let ns = exercise.namespace().unwrap_or_default();
    let name = exercise.name_any();
    let recorder = Recorder {
        reporter: ctx.events.clone(),
        exercise: exercise.clone(),
        clock: clock.clone(),
    };
    // Where the journal is: the status says (the target's namespace, which may not be the
    // Exercise's); an Exercise started before the status said so is looked for where its
    // Scenario targets, then in its own namespace.
    let recorded = exercise.status.as_ref().and_then(|s| s.journal_namespace.clone());
    let derived = match &recorded {
        Some(_) => None,
        None => scenario_for(client, exercise)
            .await
            .ok()
            .map(|s| crate::engine::run::journal_namespace(&s.spec, Some(nodes_ns))),
    };
    let journal_ns = recorded.or(derived).unwrap_or_else(|| ns.clone());
    let mut found = crate::engine::journal::recover_exercise(client, &journal_ns, nodes_ns, &name, clock).await;
    if journal_ns != ns && found.as_ref().is_ok_and(Vec::is_empty) {
        found = crate::engine::journal::recover_exercise(client, &ns, nodes_ns, &name, clock).await;
    }
    let (reason, reverted) = match found {
        Ok(recovered) if recovered.iter().all(|r| r.failed.is_empty()) => {
            let steps: usize = recovered.iter().map(|r| r.reverted.len()).sum();
            (
                format!(
                    "the controller running it stopped; {steps} undo step(s) from its journal were performed, and it is not run again"
                ),
                true,
            )
        }
        Ok(recovered) => (
            format!(
                "the controller running it stopped; reverting its journal failed: {}",
                recovered
                    .iter()
                    .flat_map(|r| r.failed.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            false,
        ),
        Err(e) => (
            format!("the controller running it stopped; its journal could not be read: {e}"),
            false,
        ),
    };
    recorder.event("Aborted", "TakeOver", "Warning", &reason);
    let mut status = exercise.status.clone().unwrap_or_default();
    status.phase = Some(Phase::Finished);
    status.verdict = Some("Aborted".into());
    let now = clock.now();
    status.ended_at = Some(now);
    status
        .conditions
        .push(condition(now, "Aborted", true, "ControllerStopped", &reason));
    status.conditions.push(condition(
        now,
        "Reverted",
        reverted,
        if reverted { "Reverted" } else { "RevertFailed" },
        &reason,
    ));
    if reverted {
        remove_finalizer(api, exercise).await?;
    }
    set_status(api, &name, &status).await
}

/// The kill switch on the GameDay that created an Exercise.
pub async fn gameday_abort(client: &Client, ns: &str, gameday: Option<&str>) -> Option<String> {
    let gameday = Api::<crate::scenario::gameday::GameDayResource>::namespaced(client.clone(), ns)
        .get(gameday?)
        .await
        .ok()?;
    gameday
        .annotations()
        .get(ABORT_ANNOTATION)
        .map(|r| format!("GameDay {} is annotated {ABORT_ANNOTATION}: {r}", gameday.name_any()))
}

/// The webhook of the GameDay that created an Exercise, if it has one.
async fn webhook_of(client: &Client, ns: &str, gameday: Option<&str>) -> Option<String> {
    let gameday = Api::<crate::scenario::gameday::GameDayResource>::namespaced(client.clone(), ns)
        .get(gameday?)
        .await
        .ok()?;
    gameday.spec.notify.map(|n| n.webhook)
}

async fn notify(
    hosts: &crate::probe::hosts::HostPolicy,
    webhook: Option<&str>,
    text: String,
    details: serde_json::Value,
) {
    let Some(url) = webhook else { return };
    match super::notify::post(hosts, url, &text, details).await {
        Ok(code) if (200..300).contains(&code) => {}
        Ok(code) => tracing::warn!(%url, code, "the webhook refused the notification"),
        Err(e) => tracing::warn!(%url, error = %e, "the notification was not delivered"),
    }
}

async fn namespace_abort(client: &Client, ns: &str) -> Option<String> {
    let namespace = Api::<Namespace>::all(client.clone()).get(ns).await.ok()?;
    namespace
        .annotations()
        .get(ABORT_ANNOTATION)
        .map(|r| format!("namespace {ns} is annotated {ABORT_ANNOTATION}: {r}"))
}

async fn add_finalizer(api: &Api<Exercise>, exercise: &Exercise) -> Result<(), kube::Error> {
    if exercise.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let mut finalizers = exercise.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": exercise.resource_version()}});
    api.patch(&exercise.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

async fn remove_finalizer(api: &Api<Exercise>, exercise: &Exercise) -> Result<(), kube::Error> {
    let current = match api.get(&exercise.name_any()).await {
        Ok(e) => e,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    let finalizers: Vec<&String> = current.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": finalizers}});
    match api
        .patch(&exercise.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Why a Scenario of namespace `from` may not target namespace `to`, whose labels are
/// `labels`, if it may not.
pub fn tenancy_refusal(from: &str, to: &str, labels: &std::collections::BTreeMap<String, String>) -> Option<String> {
    if from == to {
        return None;
    }
    let named = labels
        .get(ALLOW_FROM_LABEL)
        .is_some_and(|v| v.split(['.', ',']).any(|n| n == from));
    let everyone = labels.get(ALLOW_FROM_ALL_LABEL).is_some_and(|v| v == "true");
    (!(named || everyone)).then(|| {
        format!(
            "a Scenario in namespace {from} may not target namespace {to}: label namespace {to} {ALLOW_FROM_LABEL}={from} (or {ALLOW_FROM_ALL_LABEL}=true for every namespace) to allow it"
        )
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
            .and_then(crate::probe::http::service_address)
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
fn allowed_here(scenario: Scenario, options: &Options) -> Result<Scenario, String> {
    let from = scenario.metadata.namespace.clone().unwrap_or_default();
    let name = &scenario.metadata.name;
    let spec = &scenario.spec;
    let node_refusal = |what: &str| {
        format!(
            "Scenario {name} {what}, which every namespace shares, and namespace {from} may not: list it in the controller's --node-scenario-namespaces (Helm controller.nodeScenarioNamespaces) to allow it"
        )
    };
    let nodes_allowed = options.node_namespaces.contains(&from);
    if spec.target.kind == crate::scenario::model::TargetKind::Node && !nodes_allowed {
        return Err(node_refusal("targets Nodes"));
    }
    if let Some(image) = &spec.fault_image
        && !fault_image_allowed(image, options.fault_image.as_deref(), &options.fault_images)
    {
        return Err(format!(
            "Scenario {name} runs its in-pod faults with faultImage {image}, which this controller does not allow: the image runs inside the target pod. Remove faultImage to use the controller's own, or list the image in --allowed-fault-images (Helm controller.allowedFaultImages)"
        ));
    }
    if spec
        .watch
        .namespaces
        .iter()
        .chain(&spec.unanticipated.abort_on.collateral_in)
        .any(|n| n == "*")
    {
        return Err(format!(
            "Scenario {name} asks to watch every namespace (`*`), which only the operator may: name the namespaces in watch.namespaces (each must allow namespace {from}, as a target would), or ask the operator to add them with --watch-namespace (Helm controller.watch.namespaces)"
        ));
    }
    let probes = spec.named_probes();
    let commands: Vec<&str> = (probes.iter())
        .filter(|(_, p)| matches!(p, ProbeKind::Command(_)))
        .map(|(n, _)| n.as_str())
        .collect();
    if options.sources.commands == crate::probe::CommandProbes::Off && !commands.is_empty() {
        return Err(format!(
            "Scenario {name} has command probes ({}), which this controller does not run: they would run inside it, as its ServiceAccount. Use an http or kube probe, or start the controller with --allow-command-probes (Helm: controller.allowCommandProbes) if every Scenario author may act as the controller",
            commands.join(", ")
        ));
    }
    for (clause, probe) in &probes {
        match reach(*probe, &spec.target, &from) {
            Reach::Nodes if !nodes_allowed => return Err(node_refusal(&format!("reads Nodes in `{clause}`"))),
            Reach::Address(address) => {
                let checked = url::Url::parse(address)
                    .map_err(|e| e.to_string())
                    .and_then(|u| options.sources.hosts.check_url(&u));
                if let Err(e) = checked {
                    return Err(format!("Scenario {name}, probe `{clause}`: {e}"));
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
async fn probe_tenancy(client: &Client, scenario: &Scenario) -> Result<(), String> {
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
            return Err(format!(
                "Scenario {}, {clause} namespace {ns}: {refusal}",
                scenario.metadata.name
            ));
        }
    }
    Ok(())
}

/// The scenario an Exercise names, as the engine reads it, or why it cannot run.
async fn scenario_for(client: &Client, exercise: &Exercise) -> Result<Scenario, String> {
    let ns = exercise.namespace().unwrap_or_default();
    let resource = Api::<ScenarioResource>::namespaced(client.clone(), &ns)
        .get(&exercise.spec.scenario)
        .await
        .map_err(|e| {
            format!(
                "Scenario {ns}/{}: {}",
                exercise.spec.scenario,
                crate::fault::api_message(&e)
            )
        })?;
    let mut scenario = super::scenarios::as_file(&resource, &ns);
    if let Some(target) = &exercise.spec.target_namespace {
        // The probes that watched the Scenario's namespace move with the target.
        crate::scenario::retarget::retarget(&mut scenario, target);
    }
    // The same checks as `validate`: a Scenario that fails them never reaches the cluster.
    if let Some(problems) = super::scenarios::problems(&scenario) {
        return Err(format!(
            "Scenario {ns}/{} is invalid: {problems}",
            scenario.metadata.name
        ));
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

/// Records Events on the Exercise as the engine goes.
struct Recorder {
    reporter: super::events::Reporter,
    exercise: Exercise,
    clock: Clock,
}

impl Recorder {
    fn event(&self, reason: &str, action: &str, kind: &str, message: &str) {
        let ns = self.exercise.namespace().unwrap_or_default();
        let name = self.exercise.name_any();
        // The log says what the Event says: each phase, injection, revert and end at info.
        let object = format!("{ns}/{name}");
        if kind == "Warning" {
            tracing::warn!(exercise = %object, reason = %reason, "{message}");
        } else {
            tracing::info!(exercise = %object, reason = %reason, "{message}");
        }
        let involved = json!({"apiVersion": "disasterpiece.dev/v1alpha1", "kind": "Exercise", "name": name,
            "namespace": ns, "uid": self.exercise.uid()});
        self.reporter
            .record(involved, reason, action, kind, message, self.clock.now());
    }
}

impl Progress for Recorder {
    fn event(&self, _elapsed: Duration, event: &ExerciseEvent) {
        let Some((reason, severity)) = event.reason() else {
            return;
        };
        let message = match event {
            ExerciseEvent::Phase { phase, .. } => format!("phase {phase}"),
            _ => event.line().unwrap_or_default(),
        };
        self.event(reason, event.action(), severity.as_str(), &message);
    }
}

fn condition(at: DateTime<Utc>, type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition::new(at, type_, status, reason, message)
}

/// The status of a finished exercise, from its report. PURE.
pub fn status_from(report: &Report, report_map: &str) -> ExerciseStatus {
    let verdict = format!("{:?}", report.outcome);
    let finished = if report.outcome == Outcome::Refused {
        Phase::Refused
    } else {
        Phase::Finished
    };
    let at = report.ended_at;
    // What `kubectl get`/`describe` shows first: why it was refused or aborted, else the
    // hypothesis the verdict is about.
    let said = match (&report.refusals[..], &report.abort) {
        ([], None) => report.scenario.spec.hypothesis.clone(),
        ([], Some(abort)) => format!("aborted: {}", abort.reason),
        (refusals, _) => format!("refused before anything changed: {}", refusals.join("; ")),
    };
    let mut conditions = vec![condition(at, "Finished", true, &verdict, &said)];
    if !report.refusals.is_empty() {
        // `kubectl describe` shows why, not only that, preflight refused.
        conditions.push(condition(at, "Refused", true, "Refused", &report.refusals.join("; ")));
    }
    if !report.revert_failures.is_empty() {
        conditions.push(condition(
            at,
            "Reverted",
            false,
            "RevertFailed",
            &report.revert_failures.join("; "),
        ));
    } else if !report.injections.is_empty() {
        conditions.push(condition(at, "Reverted", true, "Reverted", "every fault was reverted"));
    }
    if let Some(abort) = &report.abort {
        conditions.push(condition(at, "Aborted", true, "Aborted", &abort.reason));
    }
    ExerciseStatus {
        phase: Some(finished),
        verdict: Some(verdict),
        conditions,
        started_at: Some(report.started_at),
        ended_at: Some(report.ended_at),
        expectations: report
            .expectations
            .iter()
            .map(|e| ExpectationStatus {
                name: e.name.clone(),
                verdict: Some(crate::report::render::verdict_word(e.verdict).to_owned()),
                first_held: e.first_held,
            })
            .collect(),
        time_to_detect: report.metrics.time_to_detect_s.map(|s| seconds(Some(s))),
        time_to_remediate: report.metrics.time_to_remediate_s.map(|s| seconds(Some(s))),
        time_to_recover: report.metrics.time_to_recover_s.map(|s| seconds(Some(s))),
        // Written when the run started; a merge patch keeps it.
        journal_namespace: None,
        journal: report
            .injections
            .iter()
            .map(|i| super::crd::JournalStatus {
                target: i.target.clone(),
                action: i.action.clone(),
                state: match (&i.injected_at, &i.reverted_at, &i.not_injected) {
                    (_, _, Some(_)) => "notInjected",
                    (Some(_), Some(_), _) => "reverted",
                    (Some(_), None, _) => "applied",
                    _ => "intended",
                }
                .into(),
            })
            .collect(),
        report: Some(report_map.to_owned()),
        observed_generation: None,
    }
}

async fn set_status(api: &Api<Exercise>, name: &str, status: &ExerciseStatus) -> Result<(), kube::Error> {
    let patch = json!({"status": status});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

async fn execute(ctx: &Context, exercise: Exercise, abort: watch::Receiver<Option<String>>) -> Result<(), kube::Error> {
    let (client, options) = (&ctx.client, &ctx.options);
    let ns = exercise.namespace().unwrap_or_default();
    let name = exercise.name_any();
    let api: Api<Exercise> = Api::namespaced(client.clone(), &ns);
    let recorder = Recorder {
        reporter: ctx.events.clone(),
        exercise: exercise.clone(),
        clock: options.clock.clone(),
    };
    // What this controller refuses whoever asks first, then what the Scenario's namespace
    // may reach.
    let checked = match scenario_for(client, &exercise)
        .await
        .and_then(|s| allowed_here(s, options))
    {
        Ok(s) => probe_tenancy(client, &s).await.map(|()| s),
        Err(e) => Err(e),
    };
    let scenario = match checked {
        Ok(s) => s,
        Err(refusal) => {
            recorder.event("Refused", "Preflight", "Warning", &refusal);
            options.metrics.finished("Refused", None);
            let status = ExerciseStatus {
                phase: Some(Phase::Refused),
                verdict: Some("Refused".into()),
                conditions: vec![condition(options.clock.now(), "Refused", true, "Refused", &refusal)],
                ..Default::default()
            };
            remove_finalizer(&api, &exercise).await?;
            return set_status(&api, &name, &status).await;
        }
    };
    set_status(
        &api,
        &name,
        &ExerciseStatus {
            phase: Some(Phase::Running),
            started_at: Some(options.clock.now()),
            journal_namespace: Some(crate::engine::run::journal_namespace(
                &scenario.spec,
                Some(&options.journal_namespace),
            )),
            ..Default::default()
        },
    )
    .await?;
    recorder.event(
        "Started",
        "Start",
        "Normal",
        &format!("running Scenario {}", scenario.metadata.name),
    );
    let mut webhook = webhook_of(client, &ns, exercise.spec.game_day.as_deref()).await;
    // A GameDay's webhook is an address its author chose: the same hosts as probes.
    if let Some(refused) = webhook.as_deref().and_then(|w| match url::Url::parse(w) {
        Ok(u) => options.sources.hosts.check_url(&u).err(),
        Err(e) => Some(format!("`{w}` is not a URL: {e}")),
    }) {
        recorder.event(
            "WebhookRefused",
            "Notify",
            "Warning",
            &format!("no notification is sent: {refused}"),
        );
        webhook = None;
    }
    let hosts = &options.sources.hosts;
    let heading = match (&exercise.spec.game_day, &exercise.spec.stage) {
        (Some(g), Some(s)) => format!("Game day {g}, stage {s}: exercise {ns}/{name}"),
        _ => format!("Exercise {ns}/{name}"),
    };
    notify(
        hosts,
        webhook.as_deref(),
        format!("{heading} started. Hypothesis: {}", scenario.spec.hypothesis),
        json!({"event": "started", "exercise": name, "namespace": ns, "gameDay": exercise.spec.game_day, "stage": exercise.spec.stage}),
    )
    .await;
    let run_options = RunOptions {
        exercise: name.clone(),
        seed: exercise.spec.seed.unwrap_or(1),
        sample_every: exercise
            .spec
            .sample_every
            .map_or(Duration::from_secs(1), |d| d.as_std()),
        cluster: options.cluster.clone(),
        sources: options.sources.clone(),
        fault_image: options.fault_image.clone(),
        nodes_journal_namespace: Some(options.journal_namespace.clone()),
        kill_switch: options.kill_switch.clone(),
        host: exercise.spec.host.clone(),
        clock: options.clock.clone(),
        // Nodes are shown only to the namespaces this controller lets read them.
        floor: crate::engine::beyond::Floor {
            nodes_hidden: (!options.node_namespaces.contains(&ns)).then(|| {
                format!(
                    "namespace {ns} may not read Nodes (the controller's --node-scenario-namespaces; Helm controller.nodeScenarioNamespaces)"
                )
            }),
            ..options.floor.clone()
        },
        ..Default::default()
    };
    let report = run(client, &scenario, run_options, abort, &recorder).await;
    options
        .metrics
        .finished(&format!("{:?}", report.outcome), report.metrics.abort_latency_s);
    let report_map = super::reports::name_for(&exercise);
    super::reports::store(client, &ns, &report_map, &exercise, &report).await?;
    let status = status_from(&report, &report_map);
    let details = json!({"exercise": name, "namespace": ns, "gameDay": exercise.spec.game_day, "stage": exercise.spec.stage,
        "verdict": status.verdict, "report": format!("configmap/{report_map}"), "timeToDetect": status.time_to_detect});
    if let Some(abort) = &report.abort {
        recorder.event(
            "Aborted",
            "Abort",
            "Warning",
            &format!(
                "{}; every fault reverted {} after the request",
                abort.reason,
                seconds(report.metrics.abort_latency_s)
            ),
        );
        let mut d = details.clone();
        d["event"] = json!("aborted");
        notify(
            hosts,
            webhook.as_deref(),
            format!("{heading} was ABORTED ({}); every fault was reverted.", abort.reason),
            d,
        )
        .await;
    }
    if let Some(observed) = report
        .observed_blast_radius
        .as_ref()
        .filter(|o| !o.collateral.is_empty())
    {
        // The owners of what was hit beyond the targets learn it from this team's webhook.
        let owners: std::collections::BTreeSet<&str> =
            observed.collateral.iter().filter_map(|c| c.owner.as_deref()).collect();
        let owners: Vec<&str> = owners.into_iter().collect();
        let hit: Vec<String> = observed
            .collateral
            .iter()
            .map(|c| format!("{} {}", c.subject, c.what))
            .collect();
        let mut d = details.clone();
        d["event"] = json!("unanticipatedImpact");
        d["owners"] = json!(owners);
        d["collateral"] = json!(hit);
        let owned = if owners.is_empty() {
            String::new()
        } else {
            format!(" (owners: {})", owners.join(", "))
        };
        notify(
            hosts,
            webhook.as_deref(),
            format!("{heading} reached beyond its targets: {}{owned}.", hit.join("; ")),
            d,
        )
        .await;
    }
    let mut d = details;
    d["event"] = json!("finished");
    notify(
        hosts,
        webhook.as_deref(),
        format!(
            "{heading} finished: hypothesis {}. Report: kubectl get configmap -n {ns} {report_map}",
            status.verdict.as_deref().unwrap_or_default().to_uppercase()
        ),
        d,
    )
    .await;
    recorder.event(
        "Finished",
        "Report",
        if report.outcome == Outcome::Confirmed {
            "Normal"
        } else {
            "Warning"
        },
        &format!("hypothesis {:?}; report in ConfigMap {report_map}", report.outcome),
    );
    // Everything is reverted: the finalizer goes first, so a Finished status means done.
    remove_finalizer(&api, &exercise).await?;
    match set_status(&api, &name, &status).await {
        // Deleted while it ran: the status has nowhere to go.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finished_condition_says_why_a_run_was_refused_or_aborted() {
        let golden = crate::report::store::parse(include_str!("../../tests/golden/report.json")).expect("golden");
        let finished = |report: &Report| {
            let status = status_from(report, "report-x");
            status
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Finished")
                .expect("Finished")
        };
        let mut refused = golden.clone();
        refused.outcome = Outcome::Refused;
        refused.abort = None;
        refused.refusals = vec!["not allowed to delete pods in shop".into()];
        let c = finished(&refused);
        assert_eq!(c.reason, "Refused");
        assert_eq!(
            c.message,
            "refused before anything changed: not allowed to delete pods in shop"
        );
        let mut plain = golden;
        plain.refusals.clear();
        plain.abort = None;
        assert_eq!(finished(&plain).message, plain.scenario.spec.hypothesis);
    }

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
        let refused = tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_LABEL, "team-b")])).expect("refused");
        assert!(refused.contains("disasterpiece.dev/allow-from=team-a"), "{refused}");
        assert!(refused.contains("disasterpiece.dev/allow-from-all=true"), "{refused}");
        // `*` was documented once, but it is no valid label value: it names no namespace.
        assert!(tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_LABEL, "*")])).is_some());
        assert!(tenancy_refusal("team-a", "shop", &labels(&[(ALLOW_FROM_ALL_LABEL, "false")])).is_some());
        assert!(tenancy_refusal("team-a", "shop", &labels(&[])).is_some());
    }
}
