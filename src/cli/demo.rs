//! `disasterpiece demo`: the simulated shop, three exercises, three reports.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::sync::watch;

use super::run::summary;
use disasterpiece::clock::Clock;
use disasterpiece::engine::event::{ExerciseEvent, stamped};
use disasterpiece::engine::run::{Progress, RunOptions, run as run_exercise};
use disasterpiece::report::model::Outcome;
use disasterpiece::scenario::{self, Resource, Scenario};
use disasterpiece_sim::{Seed, Sim};

/// The demo scenarios, built in so the demo runs from anywhere; the same files are in
/// `scenarios/` (labelled `disasterpiece.dev/demo: "true"`) to read and to run by hand.
const SCENARIOS: [(&str, &str); 3] = [
    (
        "scenarios/demo-checkout-pod-loss.yaml",
        include_str!("../../scenarios/demo-checkout-pod-loss.yaml"),
    ),
    (
        "scenarios/demo-frontend-scale-down.yaml",
        include_str!("../../scenarios/demo-frontend-scale-down.yaml"),
    ),
    (
        "scenarios/demo-checkout-partition.yaml",
        include_str!("../../scenarios/demo-checkout-partition.yaml"),
    ),
];

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the reports are written.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
}

struct Indented;

impl Progress for Indented {
    fn event(&self, elapsed: std::time::Duration, event: &ExerciseEvent) {
        if let Some(line) = stamped(elapsed, event) {
            println!("    {}", disasterpiece::report::text::terminal(&line));
        }
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let DemoArgs { reports } = args;
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (file, text) in SCENARIOS {
        let loaded = scenario::load(text, &|_| true);
        anyhow::ensure!(loaded.problems.is_empty(), "{file} is invalid: {:?}", loaded.problems);
        for (_, resource) in loaded.resources {
            if let Resource::Scenario(s) = resource {
                scenarios.push(*s);
            }
        }
    }
    println!("Starting the simulated cluster (seed shop: checkout, frontend, payments, orders-db)…");
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_secs(1))
        .ready_delay(Duration::from_secs(1))
        .start()
        .await
        .context("starting the simulator")?;
    let client = sim.raw_client().await.context("connecting to the simulator")?;
    println!(
        "  API server {}, kubeconfig {}",
        sim.url(),
        sim.kubeconfig_path().display()
    );
    println!(
        "  (while it runs: kubectl --kubeconfig {} get pods -n shop -w)",
        sim.kubeconfig_path().display()
    );

    let (abort_tx, abort_rx) = watch::channel(None);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = abort_tx.send(Some("interrupted (SIGINT)".to_owned()));
        }
    });
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    let mut results = Vec::new();
    let clock = Clock::system();
    for (i, scenario) in scenarios.iter().enumerate() {
        println!();
        println!("== {}/{} {}", i + 1, scenarios.len(), scenario.metadata.name);
        println!("   hypothesis: {}", scenario.spec.hypothesis);
        let exercise = format!("{}-{}", scenario.metadata.name, clock.now().format("%Y%m%d-%H%M%S"));
        let options = RunOptions {
            exercise: exercise.clone(),
            seed: i as u64 + 1,
            sample_every: Duration::from_millis(500),
            cluster: sim.url().to_owned(),
            retries: None,
            // The demo's scenarios have no command probes; none would run.
            sources: Default::default(),
            host: Some("disasterpiece demo".into()),
            clock: clock.clone(),
            ..Default::default()
        };
        let report = run_exercise(&client, scenario, options, abort_rx.clone(), &Indented).await;
        let path = reports.join(format!("{exercise}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        // The same report for people, next to it.
        for (extension, text) in [
            ("md", disasterpiece::report::render::markdown(&report)),
            ("html", disasterpiece::report::html::html(&report)),
        ] {
            let rendered = path.with_extension(extension);
            std::fs::write(&rendered, text).with_context(|| format!("writing {}", rendered.display()))?;
        }
        for line in summary(&report).lines().filter(|l| !l.is_empty()) {
            println!("   {line}");
        }
        let stop = report.outcome == Outcome::Aborted;
        results.push((scenario.metadata.name.clone(), report.outcome, path));
        if stop {
            break;
        }
    }
    sim.shutdown().await;
    println!();
    println!("Results (the partition scenario is meant to refute its hypothesis: a NetworkPolicy");
    println!("does not fail the kubelet's readiness probe, so the cut-off pod stays in rotation):");
    for (name, outcome, path) in &results {
        println!(
            "  {:<13} {name:<26} {}",
            format!("{outcome:?}").to_uppercase(),
            path.display()
        );
    }
    println!(
        "The reports are in {}/: JSON, Markdown and HTML (open the .html in a browser).",
        reports.display()
    );
    let ran_as_designed = results.len() == SCENARIOS.len()
        && results
            .iter()
            .all(|(_, o, _)| matches!(o, Outcome::Confirmed | Outcome::Refuted));
    Ok(if ran_as_designed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
