//! Runs a started Exercise: its Scenario checked, the engine run, the report kept, the status
//! and Events written, the GameDay's webhook told.

use std::time::Duration;

use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::super::context::Context;
use super::super::crd::{ConditionType, Exercise, ExerciseStatus, Phase, Verdict};
use super::remove_finalizer;
use super::status::{Recorder, condition, set_status, status_from};
use super::tenancy::{Refusal, allowed_here, probe_tenancy, scenario_for};
use crate::engine::event::{Act, Reason, Severity};
use crate::engine::run::{RunOptions, run};
use crate::report::model::{Outcome, Report};
use crate::report::render::seconds;
use crate::scenario::model::Scenario;

/// Runs `exercise`: its Scenario checked (or the Exercise refused), the engine run, the
/// report kept, the GameDay's webhook told, the status and Events written.
pub(super) async fn execute(
    ctx: &Context,
    exercise: Exercise,
    abort: watch::Receiver<Option<String>>,
) -> Result<(), kube::Error> {
    let (client, options) = (&ctx.client, &ctx.options);
    let ns = exercise.namespace().unwrap_or_default();
    let api: Api<Exercise> = Api::namespaced(client.clone(), &ns);
    let recorder = Recorder {
        reporter: ctx.events.clone(),
        exercise: exercise.clone(),
        clock: options.clock.clone(),
    };
    let scenario = match checked(ctx, &exercise).await {
        Ok(s) => s,
        Err(refusal) => return refuse(ctx, &api, &exercise, &recorder, &refusal.to_string()).await,
    };
    let running = ExerciseStatus {
        phase: Some(Phase::Running),
        started_at: Some(options.clock.now()),
        journal_namespace: Some(crate::engine::journal::journal_namespace(
            &scenario.spec,
            Some(&options.journal_namespace),
        )),
        ..Default::default()
    };
    set_status(&api, &exercise.name_any(), &running).await?;
    let started = format!("running Scenario {}", scenario.metadata.name);
    recorder.event(Reason::Started, Act::Start, Severity::Normal, &started);
    let teller = Teller::of(ctx, &exercise, &recorder).await;
    let said = format!("{} started. Hypothesis: {}", teller.heading, scenario.spec.hypothesis);
    teller.tell("started", said, json!({})).await;
    let report = run(client, &scenario, run_options(ctx, &exercise), abort, &recorder).await;
    options
        .metrics
        .finished(report.outcome.into(), report.metrics.abort_latency_s);
    finish(ctx, &api, &exercise, &recorder, &teller, &report).await
}

/// The Scenario `exercise` names, if this controller runs it: what it refuses whoever asks
/// first, then what the Scenario's namespace may reach.
async fn checked(ctx: &Context, exercise: &Exercise) -> Result<Scenario, Refusal> {
    let scenario = allowed_here(scenario_for(&ctx.client, exercise).await?, &ctx.options)?;
    probe_tenancy(&ctx.client, &scenario).await?;
    Ok(scenario)
}

/// Ends `exercise` refused, before anything was done.
async fn refuse(
    ctx: &Context,
    api: &Api<Exercise>,
    exercise: &Exercise,
    recorder: &Recorder,
    refusal: &str,
) -> Result<(), kube::Error> {
    recorder.event(Reason::Refused, Act::Preflight, Severity::Warning, refusal);
    ctx.options.metrics.finished(Verdict::Refused, None);
    let now = ctx.options.clock.now();
    let status = ExerciseStatus {
        phase: Some(Phase::Refused),
        verdict: Some(Verdict::Refused),
        conditions: vec![condition(now, ConditionType::Refused, true, "Refused", refusal)],
        ..Default::default()
    };
    remove_finalizer(api, exercise).await?;
    set_status(api, &exercise.name_any(), &status).await
}

/// How the engine runs `exercise` for this controller.
fn run_options(ctx: &Context, exercise: &Exercise) -> RunOptions {
    let options = &ctx.options;
    let ns = exercise.namespace().unwrap_or_default();
    RunOptions {
        exercise: exercise.name_any(),
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
    }
}

/// Keeps the report, tells the webhook and the Events how it ended, and writes the final
/// status, the finalizer removed first (everything is reverted: Finished means done).
async fn finish(
    ctx: &Context,
    api: &Api<Exercise>,
    exercise: &Exercise,
    recorder: &Recorder,
    teller: &Teller,
    report: &Report,
) -> Result<(), kube::Error> {
    let ns = exercise.namespace().unwrap_or_default();
    let report_map = super::super::reports::name_for(exercise);
    super::super::reports::store(&ctx.client, &ns, &report_map, exercise, report).await?;
    let status = status_from(report, &report_map);
    let details = json!({"verdict": status.verdict, "report": format!("configmap/{report_map}"),
        "timeToDetect": status.time_to_detect});
    if let Some(abort) = &report.abort {
        let latency = seconds(report.metrics.abort_latency_s);
        let said = format!("{}; every fault reverted {latency} after the request", abort.reason);
        recorder.event(Reason::Aborted, Act::Abort, Severity::Warning, &said);
        let said = format!(
            "{} was ABORTED ({}); every fault was reverted.",
            teller.heading, abort.reason
        );
        teller.tell("aborted", said, details.clone()).await;
    }
    tell_collateral(teller, report, &details).await;
    let verdict = status.verdict.map(Verdict::as_str).unwrap_or_default().to_uppercase();
    let said = format!(
        "{} finished: hypothesis {verdict}. Report: kubectl get configmap -n {ns} {report_map}",
        teller.heading
    );
    teller.tell("finished", said, details).await;
    let severity = match report.outcome {
        Outcome::Confirmed => Severity::Normal,
        _ => Severity::Warning,
    };
    let said = format!("hypothesis {:?}; report in ConfigMap {report_map}", report.outcome);
    recorder.event(Reason::Finished, Act::Report, severity, &said);
    remove_finalizer(api, exercise).await?;
    match set_status(api, &exercise.name_any(), &status).await {
        // Deleted while it ran: the status has nowhere to go.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

/// The owners of what was hit beyond the targets learn it from this team's webhook.
async fn tell_collateral(teller: &Teller, report: &Report, details: &serde_json::Value) {
    let Some(observed) = report
        .observed_blast_radius
        .as_ref()
        .filter(|o| !o.collateral.is_empty())
    else {
        return;
    };
    let owners: std::collections::BTreeSet<&str> =
        observed.collateral.iter().filter_map(|c| c.owner.as_deref()).collect();
    let owners: Vec<&str> = owners.into_iter().collect();
    let hit: Vec<String> = observed
        .collateral
        .iter()
        .map(|c| format!("{} {}", c.subject, c.what))
        .collect();
    let mut d = details.clone();
    d["owners"] = json!(owners);
    d["collateral"] = json!(hit);
    let owned = match owners.is_empty() {
        true => String::new(),
        false => format!(" (owners: {})", owners.join(", ")),
    };
    let said = format!(
        "{} reached beyond its targets: {}{owned}.",
        teller.heading,
        hit.join("; ")
    );
    teller.tell("unanticipatedImpact", said, d).await;
}

/// What tells an Exercise's GameDay webhook, if it has one the hosts allow.
struct Teller {
    hosts: crate::probe::hosts::HostPolicy,
    webhook: Option<String>,
    /// `Exercise ns/name`, or with its game day and stage.
    heading: String,
    /// What every notification carries: the exercise, its namespace, game day and stage.
    about: serde_json::Value,
}

impl Teller {
    /// The GameDay's webhook; one whose address the hosts do not allow is said in an Event.
    async fn of(ctx: &Context, exercise: &Exercise, recorder: &Recorder) -> Teller {
        let (options, ns, name) = (
            &ctx.options,
            exercise.namespace().unwrap_or_default(),
            exercise.name_any(),
        );
        let mut webhook = webhook_of(&ctx.client, &ns, exercise.spec.game_day.as_deref()).await;
        // A GameDay's webhook is an address its author chose: the same hosts as probes.
        if let Some(refused) = webhook.as_deref().and_then(|w| match url::Url::parse(w) {
            Ok(u) => options.sources.hosts.check_url(&u).err().map(|e| e.to_string()),
            Err(e) => Some(format!("`{w}` is not a URL: {e}")),
        }) {
            let said = format!("no notification is sent: {refused}");
            recorder.event(Reason::WebhookRefused, Act::Notify, Severity::Warning, &said);
            webhook = None;
        }
        let heading = match (&exercise.spec.game_day, &exercise.spec.stage) {
            (Some(g), Some(s)) => format!("Game day {g}, stage {s}: exercise {ns}/{name}"),
            _ => format!("Exercise {ns}/{name}"),
        };
        let about = json!({"exercise": name, "namespace": ns, "gameDay": exercise.spec.game_day,
            "stage": exercise.spec.stage});
        Teller {
            hosts: options.sources.hosts.clone(),
            webhook,
            heading,
            about,
        }
    }

    /// Posts `text` with `event`, what every notification carries, and `details`.
    async fn tell(&self, event: &str, text: String, details: serde_json::Value) {
        let mut body = self.about.clone();
        if let (Some(all), serde_json::Value::Object(more)) = (body.as_object_mut(), details) {
            all.extend(more);
        }
        body["event"] = json!(event);
        notify(&self.hosts, self.webhook.as_deref(), text, body).await;
    }
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
    if let Err(e) = super::super::notify::send(hosts, webhook, &text, details).await {
        tracing::warn!(url = webhook.unwrap_or_default(), error = %e, "the GameDay's webhook was not told");
    }
}
