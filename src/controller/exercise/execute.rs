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
use super::tenancy::{allowed_here, probe_tenancy, scenario_for};
use crate::engine::event::{Act, Reason, Severity};
use crate::engine::run::{RunOptions, run};
use crate::report::model::Outcome;
use crate::report::render::seconds;

pub(super) async fn execute(
    ctx: &Context,
    exercise: Exercise,
    abort: watch::Receiver<Option<String>>,
) -> Result<(), kube::Error> {
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
            let refusal = refusal.to_string();
            recorder.event(Reason::Refused, Act::Preflight, Severity::Warning, &refusal);
            options.metrics.finished(Verdict::Refused, None);
            let status = ExerciseStatus {
                phase: Some(Phase::Refused),
                verdict: Some(Verdict::Refused),
                conditions: vec![condition(
                    options.clock.now(),
                    ConditionType::Refused,
                    true,
                    "Refused",
                    &refusal,
                )],
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
            journal_namespace: Some(crate::engine::journal::journal_namespace(
                &scenario.spec,
                Some(&options.journal_namespace),
            )),
            ..Default::default()
        },
    )
    .await?;
    recorder.event(
        Reason::Started,
        Act::Start,
        Severity::Normal,
        &format!("running Scenario {}", scenario.metadata.name),
    );
    let mut webhook = webhook_of(client, &ns, exercise.spec.game_day.as_deref()).await;
    // A GameDay's webhook is an address its author chose: the same hosts as probes.
    if let Some(refused) = webhook.as_deref().and_then(|w| match url::Url::parse(w) {
        Ok(u) => options.sources.hosts.check_url(&u).err().map(|e| e.to_string()),
        Err(e) => Some(format!("`{w}` is not a URL: {e}")),
    }) {
        recorder.event(
            Reason::WebhookRefused,
            Act::Notify,
            Severity::Warning,
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
        .finished(report.outcome.into(), report.metrics.abort_latency_s);
    let report_map = super::super::reports::name_for(&exercise);
    super::super::reports::store(client, &ns, &report_map, &exercise, &report).await?;
    let status = status_from(&report, &report_map);
    let details = json!({"exercise": name, "namespace": ns, "gameDay": exercise.spec.game_day, "stage": exercise.spec.stage,
        "verdict": status.verdict, "report": format!("configmap/{report_map}"), "timeToDetect": status.time_to_detect});
    if let Some(abort) = &report.abort {
        recorder.event(
            Reason::Aborted,
            Act::Abort,
            Severity::Warning,
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
            status.verdict.map(Verdict::as_str).unwrap_or_default().to_uppercase()
        ),
        d,
    )
    .await;
    recorder.event(
        Reason::Finished,
        Act::Report,
        if report.outcome == Outcome::Confirmed {
            Severity::Normal
        } else {
            Severity::Warning
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
