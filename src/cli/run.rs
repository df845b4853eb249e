//! `disasterpiece run FILE`: one exercise against the cluster. Ctrl-C is the Andon cord.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tokio::sync::watch;

use super::cluster::ClusterArgs;
use super::plan::ScenarioArgs;
use disasterpiece::clock::Clock;
use disasterpiece::engine::event::{ClauseState, ExerciseEvent, stamped};
use disasterpiece::engine::run::{Progress, RunOptions, run as run_exercise};
use disasterpiece::report::model::{ClauseVerdict, Outcome, Report};
use disasterpiece::scenario::Duration;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub exercise: ExerciseArgs,
    /// Who runs the exercise (kept in the report).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Someone taking part (repeat for each).
    #[arg(long = "participant", value_name = "NAME")]
    pub participants: Vec<String>,
    /// How sure the team is, 1 to 5, that the hypothesis holds (`annotate
    /// --confidence-after` records the after).
    #[arg(long, value_name = "1-5", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub confidence_before: Option<u8>,
}

/// How exercises are run, for `run` and `gameday run`.
#[derive(Debug, Args)]
pub struct ExerciseArgs {
    /// Do not ask for confirmation (always skipped against the simulator).
    #[arg(long)]
    pub yes: bool,
    /// How often expectations and abortWhen are sampled.
    #[arg(long, default_value = "1s")]
    pub sample_every: Duration,
    /// Where the report JSON is written.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
}

/// Plain lines, for logs and pipes.
pub(crate) struct Lines;

impl Progress for Lines {
    fn event(&self, elapsed: std::time::Duration, event: &ExerciseEvent) {
        if let Some(line) = stamped(elapsed, event) {
            println!("{}", disasterpiece::report::text::terminal(&line));
        }
    }
}

/// A live status line in a terminal: the phase, elapsed and remaining time, and each
/// expectation's state; what happens scrolls above it.
struct Live {
    bar: indicatif::ProgressBar,
}

impl Live {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Live { bar }
    }
}

impl Progress for Live {
    fn event(&self, elapsed: std::time::Duration, event: &ExerciseEvent) {
        match event {
            ExerciseEvent::Phase { phase, window, .. } => self.phase(phase.as_str(), *window),
            ExerciseEvent::Clauses { states } => self.clauses(states),
            _ => {}
        }
        if let Some(line) = stamped(elapsed, event) {
            self.bar.println(disasterpiece::report::text::terminal(&line));
        }
    }
}

impl Live {
    fn phase(&self, name: &str, window: Option<std::time::Duration>) {
        // Elapsed and, when the phase has a limit, the limit: `observe 4s of 2m`.
        let limit = window.map_or(String::new(), |w| format!(" of {}", Duration::from(w)));
        let template = format!("{{spinner}} {{prefix:.bold}} {{elapsed}}{limit}  {{wide_msg}}");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            self.bar.set_style(style);
        }
        self.bar.reset_elapsed();
        self.bar.set_prefix(name.to_owned());
        self.bar.set_message(String::new());
    }

    fn clauses(&self, states: &[(String, ClauseState)]) {
        let shown: Vec<String> = states
            .iter()
            .map(|(name, state)| {
                let mark = match state {
                    ClauseState::Held | ClauseState::Holding => "✓",
                    ClauseState::Failed => "✗",
                    ClauseState::Pending => "…",
                };
                format!("{mark} {}", disasterpiece::report::text::terminal(name))
            })
            .collect();
        self.bar.set_message(shown.join("  "));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs {
        scenario,
        cluster,
        exercise: ExerciseArgs {
            yes,
            sample_every,
            reports,
        },
        host,
        participants,
        confidence_before,
    } = args;
    let Some((scenario, seed)) = scenario.load(&cluster)? else {
        return Ok(ExitCode::from(2));
    };
    if sample_every.is_zero() {
        anyhow::bail!("--sample-every must be longer than 0s");
    }
    // The operator's floor is checked before the cluster is reached.
    let floor = cluster.floor()?;
    let (client, server, retries) = cluster.retrying_client().await?;
    let simulator = client
        .apiserver_version()
        .await
        .is_ok_and(|v| v.git_version.contains("disasterpiece-sim"));
    let context = cluster.context_name();
    if !simulator && !yes && !confirmed(&scenario.metadata.name, &server, context.as_deref())? {
        eprintln!("not confirmed; nothing was changed");
        return Ok(ExitCode::from(2));
    }
    let clock = Clock::system();
    let exercise = disasterpiece::engine::run::exercise_id(&scenario.metadata.name, clock.now());

    let (abort_tx, abort_rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = wait_for_signal().await;
        let _ = abort_tx.send(Some(reason));
        // A second signal changes nothing: the revert must finish. Only SIGKILL stops it,
        // and then the journal is there for `disasterpiece recover`.
        loop {
            let again = wait_for_signal().await;
            eprintln!("{again} again: still reverting; the journal covers a kill");
        }
    });
    println!(
        "exercise {exercise}: scenario {} on {server} (seed {seed})",
        scenario.metadata.name
    );
    println!(
        "hypothesis: {}",
        disasterpiece::report::text::terminal(&scenario.spec.hypothesis)
    );
    let options = RunOptions {
        exercise: exercise.clone(),
        seed,
        sample_every: sample_every.as_std(),
        cluster: server,
        retries: Some(retries),
        sources: cluster.sources(disasterpiece::probe::CommandProbes::On)?,
        fault_image: cluster.fault_image.clone(),
        nodes_journal_namespace: Some(cluster.journal_namespace.clone()),
        context,
        host,
        participants,
        confidence_before,
        clock,
        floor,
        kill_switch: cluster.kill_switch.clone(),
    };
    let report = if std::io::stdout().is_terminal() {
        let live = Live::new();
        let report = run_exercise(&client, &scenario, options, abort_rx, &live).await;
        drop(live);
        report
    } else {
        run_exercise(&client, &scenario, options, abort_rx, &Lines).await
    };

    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    let path = reports.join(format!("{exercise}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{}", disasterpiece::report::text::terminal_lines(&summary(&report)));
    println!("report: {}", path.display());
    println!(
        "  render it: disasterpiece report {} --format html --out report.html",
        path.display()
    );
    Ok(ExitCode::from(report.exit_code()))
}

pub(crate) fn confirmed(scenario: &str, server: &str, context: Option<&str>) -> anyhow::Result<bool> {
    let context = context.map_or(String::new(), |c| format!(", context {c}"));
    if !std::io::stdin().is_terminal() {
        eprintln!("this is not the simulator ({server}{context}); pass --yes to run without confirmation");
        return Ok(false);
    }
    eprint!("This injects real faults into {server}{context}. Type the scenario name ({scenario}) to go on: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == scenario)
}

pub(crate) async fn wait_for_signal() -> String {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (SIGINT)".to_owned(),
        _ = async {
            match terminate.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => "terminated (SIGTERM)".to_owned(),
    }
}

/// The short summary printed at the end.
pub fn summary(report: &Report) -> String {
    let mut s = String::new();
    let outcome = match report.outcome {
        Outcome::Confirmed => "CONFIRMED",
        Outcome::Refuted => "REFUTED",
        Outcome::Inconclusive => "INCONCLUSIVE",
        Outcome::Aborted => "ABORTED",
        Outcome::Refused => "REFUSED (nothing was changed)",
    };
    if !report.revert_failures.is_empty() {
        // Before the verdict: something may still be broken, whatever the hypothesis did.
        s.push_str(&format!(
            "\nREVERT FAILED: {} undo step(s) did not complete; what they undo may still be in place. Run `disasterpiece recover` (exit {})\n",
            report.revert_failures.len(),
            disasterpiece::report::model::REVERT_FAILED_EXIT
        ));
    }
    s.push_str(&format!("\nhypothesis {outcome}\n"));
    for reason in &report.refusals {
        s.push_str(&format!("  refused: {reason}\n"));
    }
    for e in &report.expectations {
        let verdict = match e.verdict {
            ClauseVerdict::Confirmed => "confirmed",
            ClauseVerdict::Refuted => "REFUTED",
            ClauseVerdict::Inconclusive => "inconclusive",
        };
        s.push_str(&format!(
            "  {verdict:<12} {} ({}): {}\n",
            e.name, e.expected, e.observed
        ));
    }
    let secs = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.1}s"));
    let m = &report.metrics;
    s.push_str(&format!(
        "  detect {}  remediate {}  recover {}{}\n",
        secs(m.time_to_detect_s),
        secs(m.time_to_remediate_s),
        secs(m.time_to_recover_s),
        m.abort_latency_s
            .map_or(String::new(), |a| format!("  abort latency {a:.2}s"))
    ));
    if !report.retried_calls.is_empty() {
        let n = report.retried_calls.len();
        s.push_str(&format!(
            "  {n} API call(s) failed transiently and were retried (see the report)\n"
        ));
    }
    for failure in &report.revert_failures {
        s.push_str(&format!("  REVERT FAILED: {failure} — run `disasterpiece recover`\n"));
    }
    s
}
