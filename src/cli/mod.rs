//! The command line. One file per subcommand; argument handling and printing only — the
//! work is done by the library modules.

mod cluster;
mod controller;
mod demo;
mod gameday;
mod plan;
mod recover;
mod report;
mod review;
mod run;
mod schema;
mod sim;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Chaos exercises for Kubernetes: a hypothesis, a guarded blast radius, always put back,
/// and a report.
#[derive(Debug, Parser)]
#[command(name = "disasterpiece", version, about, propagate_version = true)]
pub struct Cli {
    /// Log more on stderr: -v info, -vv debug (`RUST_LOG`, e.g. `disasterpiece=debug`, wins).
    /// The controller logs at info without it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How log lines are written on stderr: text, or json (one object a line, for log
    /// collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The log on stderr: Disasterpiece's own lines at `warn` (the CLI prints what it does
/// itself), `info` for the controller and with `-v`, `debug` with `-vv`; other crates' at
/// `warn`. `RUST_LOG` replaces all of it.
fn init_logging(verbose: u8, format: LogFormat, controller: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 if controller => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,disasterpiece={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colours for a terminal only, never into a file or a log collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none());
    // A second initialization (tests that call main twice) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the simulated shop, run three exercises against it, and write their reports.
    Demo(demo::DemoArgs),
    /// Check scenario and game day files; every problem is printed with its line and column.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of a file format, for editors and CI.
    Schema(schema::SchemaArgs),
    /// Print the CustomResourceDefinitions (Scenario, GameDay, Exercise) as YAML.
    Crd(schema::CrdArgs),
    /// The dry run: resolve targets, check guards, permissions and steady state, send every
    /// mutation with dryRun=All, and say whether the scenario may run. Changes nothing.
    Plan(plan::PlanArgs),
    /// Run one exercise: preflight, inject, observe, revert, recover, report. Ctrl-C aborts
    /// and reverts everything. Exit 0 confirmed, 1 refuted or inconclusive, 2 refused, 3 aborted.
    Run(run::RunArgs),
    /// Game days from the command line: `gameday run FILE` runs its stages in order.
    Gameday(gameday::GameDayArgs),
    /// Run Exercises created as custom resources (see `crd`), until Ctrl-C or SIGTERM.
    Controller(controller::ControllerArgs),
    /// Revert every fault a dead run left behind (journals whose heartbeat has lapsed).
    Recover(recover::RecoverArgs),
    /// Run the embedded simulated cluster (a Kubernetes API server on 127.0.0.1) until Ctrl-C.
    Sim(sim::SimArgs),
    /// Render reports as Markdown, self-contained HTML, JUnit XML or JSON.
    Report(report::ReportArgs),
    /// Add what the team learned to a report: confidence after, lessons, follow-ups.
    Annotate(report::AnnotateArgs),
    /// Figures across a directory of reports, per group and month.
    Trend(report::TrendArgs),
    /// The weekly review of a period: what ran, what we learned, unanticipated impact,
    /// follow-ups (overdue first), key figures per team, coverage; as a team, lead or org.
    Review(review::ReviewArgs),
}

/// Runs the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(
        cli.verbose,
        cli.log_format,
        matches!(cli.command, Command::Controller(_)),
    );
    let result = match cli.command {
        Command::Demo(args) => tokio_runtime().and_then(|rt| rt.block_on(demo::run(args))),
        Command::Validate(args) => validate::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Crd(args) => schema::crd(args),
        Command::Plan(args) => tokio_runtime().and_then(|rt| rt.block_on(plan::run(args))),
        Command::Run(args) => tokio_runtime().and_then(|rt| rt.block_on(run::run(args))),
        Command::Gameday(args) => tokio_runtime().and_then(|rt| rt.block_on(gameday::run(args))),
        Command::Controller(args) => tokio_runtime().and_then(|rt| rt.block_on(controller::run(args))),
        Command::Recover(args) => tokio_runtime().and_then(|rt| rt.block_on(recover::run(args))),
        Command::Sim(args) => tokio_runtime().and_then(|rt| rt.block_on(sim::run(args))),
        Command::Report(args) => report::run_report(args),
        Command::Annotate(args) => report::run_annotate(args),
        Command::Trend(args) => report::run_trend(args),
        Command::Review(args) => review::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!(
                "error: {}",
                disasterpiece::report::text::terminal_lines(&format!("{err:#}"))
            );
            ExitCode::from(2)
        }
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
