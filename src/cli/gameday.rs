//! `disasterpiece gameday run FILE`: a GameDay file's stages from the command line, in order,
//! each in its kube context and namespaces, a later stage only after every exercise of the
//! earlier ones confirmed its hypothesis. Ctrl-C aborts the running exercise and stops.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kube::api::Api;
use tokio::sync::watch;

use super::cluster::ClusterArgs;
use super::run::{ExerciseArgs, Lines, confirmed, summary, wait_for_signal};
use disasterpiece::clock::Clock;
use disasterpiece::controller::schedule::{StageState, next_stage};
use disasterpiece::engine::run::{RunOptions, run as run_exercise};
use disasterpiece::report::model::Outcome;
use disasterpiece::scenario::model::{ApiVersion, Metadata, Scenario, ScenarioKind, ScenarioResource};
use disasterpiece::scenario::{self, Resource};

#[derive(Debug, Args)]
pub struct GameDayArgs {
    #[command(subcommand)]
    pub command: GameDayCommand,
}

#[derive(Debug, Subcommand)]
pub enum GameDayCommand {
    /// Run every stage of a GameDay file now, in order, with stage gating.
    Run(GameDayRunArgs),
}

#[derive(Debug, Args)]
pub struct GameDayRunArgs {
    /// The GameDay file.
    pub file: PathBuf,
    /// The kubeconfig and sources; each stage's `context` replaces `--context`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub exercise: ExerciseArgs,
}

pub async fn run(args: GameDayArgs) -> anyhow::Result<ExitCode> {
    let GameDayCommand::Run(args) = args.command;
    let GameDayRunArgs {
        file,
        cluster,
        exercise: ExerciseArgs {
            yes,
            sample_every,
            reports,
        },
    } = args;
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let base = file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let loaded = scenario::load(&text, &|name| base.join(name).is_file());
    if !loaded.problems.is_empty() {
        for problem in &loaded.problems {
            eprintln!(
                "{}:{}",
                file.display(),
                disasterpiece::report::text::terminal_lines(&problem.to_string())
            );
        }
        eprintln!("{} is invalid; nothing was sent to the cluster", file.display());
        return Ok(ExitCode::from(2));
    }
    let Some(gameday) = loaded.resources.into_iter().find_map(|(_, r)| match r {
        Resource::GameDay(g) => Some(*g),
        Resource::Scenario(_) => None,
    }) else {
        anyhow::bail!("{} holds no GameDay", file.display());
    };
    let clock = Clock::system();
    // Every scenario file is read and checked before anything runs.
    let mut stages = Vec::new();
    for stage in &gameday.spec.stages {
        let mut files = Vec::new();
        for reference in &stage.scenarios {
            if let Some(f) = &reference.file {
                let Some(s) = super::plan::load_one(&base.join(f), None)? else {
                    return Ok(ExitCode::from(2));
                };
                files.push(Some(s));
            } else {
                files.push(None);
            }
        }
        stages.push(files);
    }
    let (abort_tx, abort_rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = wait_for_signal().await;
        let _ = abort_tx.send(Some(reason));
        loop {
            let again = wait_for_signal().await;
            eprintln!("{again} again: still reverting; the journal covers a kill");
        }
    });
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    println!(
        "game day {} (host {}): {} stage(s)",
        gameday.metadata.name,
        gameday.spec.host.name,
        gameday.spec.stages.len()
    );
    // The same notifications as the controller sends, to the webhook the file names, reached
    // as probes are (`--allowed-probe-hosts`).
    let notifier = Notifier {
        webhook: gameday.spec.notify.as_ref().map(|n| n.webhook.clone()),
        hosts: cluster.sources(disasterpiece::probe::CommandProbes::On)?.hosts,
        gameday: gameday.metadata.name.clone(),
    };
    let mut day: Vec<Row> = Vec::new();
    // Each stage as it ended: the later ones run only as the controller's would.
    let names: Vec<String> = gameday.spec.stages.iter().map(|s| s.name.clone()).collect();
    let mut states: Vec<StageState> = Vec::new();
    let code = 'day: {
        for (stage, scenarios) in gameday.spec.stages.iter().zip(stages) {
            let mut stage_cluster = cluster.clone();
            if stage.context.is_some() {
                stage_cluster.context = stage.context.clone();
            }
            let (client, server, retries) = stage_cluster
                .retrying_client()
                .await
                .with_context(|| format!("stage {}", stage.name))?;
            let simulator = client
                .apiserver_version()
                .await
                .is_ok_and(|v| v.git_version.contains("disasterpiece-sim"));
            if !simulator
                && !yes
                && !confirmed(
                    &format!("{}/{}", gameday.metadata.name, stage.name),
                    &server,
                    stage_cluster.context_name().as_deref(),
                )?
            {
                eprintln!("not confirmed; stage {} and the later ones were not run", stage.name);
                break 'day ExitCode::from(2);
            }
            println!("== stage {} on {server}", stage.name);
            let namespaces: Vec<Option<String>> = if stage.namespaces.is_empty() {
                vec![None]
            } else {
                stage.namespaces.iter().cloned().map(Some).collect()
            };
            let mut ended: Vec<(String, Outcome)> = Vec::new();
            for (reference, from_file) in stage.scenarios.iter().zip(scenarios) {
                for namespace in &namespaces {
                    let mut scenario = match (&from_file, &reference.name) {
                        (Some(s), _) => s.clone(),
                        (None, Some(name)) => {
                            let ns = namespace.clone().unwrap_or_else(|| "default".into());
                            let resource = Api::<ScenarioResource>::namespaced(client.clone(), &ns)
                                .get(name)
                                .await
                                .with_context(|| format!("stage {}: Scenario {ns}/{name}", stage.name))?;
                            Scenario {
                                api_version: ApiVersion::V1alpha1,
                                kind: ScenarioKind::Scenario,
                                metadata: Metadata {
                                    name: name.clone(),
                                    ..Metadata::default()
                                },
                                spec: resource.spec,
                            }
                        }
                        (None, None) => continue,
                    };
                    if let Some(ns) = namespace {
                        for moved in disasterpiece::scenario::retarget::retarget(&mut scenario, ns) {
                            println!(
                                "   stage namespace {ns}: {}",
                                disasterpiece::report::text::terminal(&moved)
                            );
                        }
                    }
                    let exercise = disasterpiece::engine::run::exercise_id(
                        &format!("{}-{}", stage.name, scenario.metadata.name),
                        clock.now(),
                    );
                    println!(
                        "-- {exercise}: {}",
                        disasterpiece::report::text::terminal(&scenario.spec.hypothesis)
                    );
                    let options = RunOptions {
                        exercise: exercise.clone(),
                        seed: 1,
                        sample_every: sample_every.as_std(),
                        cluster: server.clone(),
                        retries: Some(retries.clone()),
                        sources: stage_cluster.sources(disasterpiece::probe::CommandProbes::On)?,
                        fault_image: stage_cluster.fault_image.clone(),
                        nodes_journal_namespace: Some(stage_cluster.journal_namespace.clone()),
                        context: stage_cluster.context_name(),
                        host: Some(gameday.spec.host.name.clone()),
                        participants: gameday.spec.participants.iter().map(|p| p.name.clone()).collect(),
                        confidence_before: None,
                        clock: clock.clone(),
                        floor: stage_cluster.floor()?,
                        kill_switch: stage_cluster.kill_switch.clone(),
                    };
                    let place = namespace.clone().unwrap_or_else(|| "-".into());
                    notifier
                    .send(
                        format!(
                            "Game day {}, stage {}: exercise {exercise} started. Hypothesis: {}",
                            notifier.gameday, stage.name, scenario.spec.hypothesis
                        ),
                        serde_json::json!({"event": "started", "exercise": exercise, "namespace": place, "gameDay": notifier.gameday, "stage": stage.name}),
                    )
                    .await;
                    let report = run_exercise(&client, &scenario, options, abort_rx.clone(), &Lines).await;
                    let path = reports.join(format!("{exercise}.json"));
                    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                        .with_context(|| format!("writing {}", path.display()))?;
                    print!("{}", disasterpiece::report::text::terminal_lines(&summary(&report)));
                    println!("report: {}", path.display());
                    let row = Row::of(&stage.name, &place, &report, &path);
                    notifier
                    .send(
                        format!(
                            "Game day {}, stage {}: exercise {exercise} finished: hypothesis {}. Report: {}",
                            notifier.gameday,
                            stage.name,
                            row.verdict,
                            path.display()
                        ),
                        serde_json::json!({"event": "finished", "exercise": exercise, "namespace": place, "gameDay": notifier.gameday,
                            "stage": stage.name, "verdict": row.verdict, "report": path.display().to_string()}),
                    )
                    .await;
                    day.push(row);
                    if !report.revert_failures.is_empty() {
                        println!("a revert failed: the later exercises and stages were not run");
                        break 'day ExitCode::from(report.exit_code());
                    }
                    if report.outcome == Outcome::Aborted {
                        println!("aborted: the later exercises and stages were not run");
                        break 'day ExitCode::from(3);
                    }
                    ended.push((scenario.metadata.name.clone(), report.outcome));
                }
            }
            states.push(StageState::of(ended.iter().map(|(n, o)| (n.as_str(), Some(*o)))));
            if let Err(skipped) = next_stage(&states, names.len(), &names) {
                println!("{skipped}");
                break 'day ExitCode::from(1);
            }
            println!("stage {} confirmed its hypotheses", stage.name);
        }
        println!("game day {}: every stage confirmed", gameday.metadata.name);
        ExitCode::SUCCESS
    };
    let table = day_summary(&notifier.gameday, &day);
    print!("{}", disasterpiece::report::text::terminal_lines(&table));
    let rows: Vec<serde_json::Value> = day
        .iter()
        .map(|r| {
            serde_json::json!({"stage": r.stage, "namespace": r.namespace, "scenario": r.scenario, "verdict": r.verdict,
            "timeToDetect": r.detect, "timeToRecover": r.recover, "report": r.report})
        })
        .collect();
    notifier
        .send(
            table,
            serde_json::json!({"event": "summary", "gameDay": notifier.gameday, "exercises": rows}),
        )
        .await;
    Ok(code)
}

/// Where the game day's notifications go.
struct Notifier {
    webhook: Option<String>,
    hosts: disasterpiece::probe::hosts::HostPolicy,
    gameday: String,
}

impl Notifier {
    /// Best effort, as the controller's: a webhook that fails is said on stderr, never a
    /// reason to stop.
    async fn send(&self, text: String, details: serde_json::Value) {
        if let Err(e) =
            disasterpiece::controller::notify::send(&self.hosts, self.webhook.as_deref(), &text, details).await
        {
            eprintln!("{e}");
        }
    }
}

/// One exercise of the day, as the summary shows it.
struct Row {
    stage: String,
    namespace: String,
    scenario: String,
    verdict: &'static str,
    detect: String,
    recover: String,
    report: String,
}

impl Row {
    fn of(stage: &str, namespace: &str, report: &disasterpiece::report::model::Report, path: &std::path::Path) -> Row {
        let seconds = disasterpiece::report::render::seconds;
        Row {
            stage: stage.to_owned(),
            namespace: namespace.to_owned(),
            scenario: report.scenario.metadata.name.clone(),
            verdict: match report.outcome {
                Outcome::Confirmed => "CONFIRMED",
                Outcome::Refuted => "REFUTED",
                Outcome::Inconclusive => "INCONCLUSIVE",
                Outcome::Aborted => "ABORTED",
                Outcome::Refused => "REFUSED",
            },
            detect: seconds(report.metrics.time_to_detect_s),
            recover: seconds(report.metrics.time_to_recover_s),
            report: path.display().to_string(),
        }
    }
}

/// The day in a table: each exercise run, in order. PURE.
fn day_summary(gameday: &str, day: &[Row]) -> String {
    let mut s = format!("\ngame day {gameday}: {} exercise(s)\n", day.len());
    s.push_str("  stage  namespace  scenario  verdict  detect  recover  report\n");
    for r in day {
        s.push_str(&format!(
            "  {}  {}  {}  {}  {}  {}  {}\n",
            r.stage, r.namespace, r.scenario, r.verdict, r.detect, r.recover, r.report
        ));
    }
    s
}
