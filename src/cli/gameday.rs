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
            return Ok(ExitCode::from(2));
        }
        println!("== stage {} on {server}", stage.name);
        let namespaces: Vec<Option<String>> = if stage.namespaces.is_empty() {
            vec![None]
        } else {
            stage.namespaces.iter().cloned().map(Some).collect()
        };
        let mut not_confirmed = Vec::new();
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
                };
                let report = run_exercise(&client, &scenario, options, abort_rx.clone(), &Lines).await;
                let path = reports.join(format!("{exercise}.json"));
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                print!("{}", disasterpiece::report::text::terminal_lines(&summary(&report)));
                println!("report: {}", path.display());
                if !report.revert_failures.is_empty() {
                    println!("a revert failed: the later exercises and stages were not run");
                    return Ok(ExitCode::from(report.exit_code()));
                }
                if report.outcome == Outcome::Aborted {
                    println!("aborted: the later exercises and stages were not run");
                    return Ok(ExitCode::from(3));
                }
                if report.outcome != Outcome::Confirmed {
                    not_confirmed.push(format!("{}: {:?}", scenario.metadata.name, report.outcome));
                }
            }
        }
        if !not_confirmed.is_empty() {
            println!(
                "stage {} did not confirm its hypotheses ({}): the later stages are skipped",
                stage.name,
                not_confirmed.join(", ")
            );
            return Ok(ExitCode::from(1));
        }
        println!("stage {} confirmed its hypotheses", stage.name);
    }
    println!("game day {}: every stage confirmed", gameday.metadata.name);
    Ok(ExitCode::SUCCESS)
}
