//! `disasterpiece plan FILE`: the dry run hosts run the day before.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::cluster::ClusterArgs;
use super::validate::Output;
use disasterpiece::clock::Clock;
use disasterpiece::engine::plan::Plan;
use disasterpiece::engine::preflight;
use disasterpiece::probe::Verdict;
use disasterpiece::scenario::model::{PROTECTED_NAMESPACES, TargetKind};
use disasterpiece::scenario::{self, Resource, Scenario};

/// Which scenario, from which file, and the seed of the target choice: what `plan` and `run`
/// both take.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Which scenario, when the file holds several.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Fixes the choice among eligible targets (`plan` shows it; `run` with the same seed
    /// chooses the same).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl ScenarioArgs {
    /// The scenario, valid, with `--namespace` applied, and the seed (given, or from the clock).
    /// `None` after printing why there is nothing to act on: nothing reaches the cluster.
    pub fn load(&self, cluster: &ClusterArgs) -> anyhow::Result<Option<(Scenario, u64)>> {
        let Some(mut scenario) = load_one(&self.file, self.scenario.as_deref())? else {
            return Ok(None);
        };
        if let Some(ns) = &cluster.namespace
            && scenario.spec.target.kind != TargetKind::Node
        {
            // The override comes after `validate`, so it gets validate's namespace rule here.
            if PROTECTED_NAMESPACES.contains(&ns.as_str()) {
                eprintln!("--namespace {ns}: namespace `{ns}` is protected; no exercise may act in it");
                return Ok(None);
            }
            // The probes that watched the target's namespace move with it; each is said.
            for moved in disasterpiece::scenario::retarget::retarget(&mut scenario, ns) {
                eprintln!("--namespace {ns}: {}", disasterpiece::report::text::terminal(&moved));
            }
        }
        let seed = self.seed.unwrap_or_else(|| disasterpiece::random::u64() % 1_000_000);
        Ok(Some((scenario, seed)))
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// How to print the plan.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Run the steady state's `command` probes. Without it they are not run (a plan of a
    /// scenario from someone else's pull request runs none of its programs) and read
    /// inconclusive, which refuses the plan.
    #[arg(long)]
    pub run_commands: bool,
}

/// Exit code for a plan that may not run, or input that is invalid.
const REFUSED: u8 = 2;

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let PlanArgs {
        scenario,
        cluster,
        output,
        run_commands,
    } = args;
    let Some((scenario, seed)) = scenario.load(&cluster)? else {
        return Ok(ExitCode::from(REFUSED));
    };
    // The operator's floor is checked before the cluster is reached.
    let floor = cluster.floor()?;
    let (client, server) = cluster.client().await?;
    let plan = preflight::plan(
        &client,
        &scenario,
        &server,
        seed,
        &preflight::PlanOptions {
            sources: cluster.sources(if run_commands {
                disasterpiece::probe::CommandProbes::On
            } else {
                disasterpiece::probe::CommandProbes::Off
            })?,
            fault_image: cluster.fault_image.clone(),
            nodes_journal_namespace: Some(cluster.journal_namespace.clone()),
            exercise: None,
            floor,
            kill_switch: cluster.kill_switch.clone(),
        },
        &Clock::system(),
    )
    .await;
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?,
        Output::Text => write!(out, "{}", disasterpiece::report::text::terminal_lines(&render(&plan)))?,
    }
    Ok(if plan.runnable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(REFUSED)
    })
}

/// Reads the file and returns its one scenario (or the one named); prints problems and
/// returns `None` when there is none to plan.
pub fn load_one(file: &std::path::Path, wanted: Option<&str>) -> anyhow::Result<Option<Scenario>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
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
        return Ok(None);
    }
    let scenarios: Vec<Scenario> = loaded
        .resources
        .into_iter()
        .filter_map(|(_, r)| match r {
            Resource::Scenario(s) => Some(*s),
            Resource::GameDay(_) => None,
        })
        .collect();
    let names: Vec<&str> = scenarios.iter().map(|s| s.metadata.name.as_str()).collect();
    let chosen = match (wanted, scenarios.len()) {
        (Some(name), _) => scenarios.iter().find(|s| s.metadata.name == name).cloned(),
        (None, 1) => scenarios.first().cloned(),
        _ => None,
    };
    if chosen.is_none() {
        match (wanted, names.is_empty()) {
            (_, true) => eprintln!("{} holds no Scenario", file.display()),
            (Some(name), false) => eprintln!(
                "{} holds no scenario named {name:?}; it holds {}",
                file.display(),
                names.join(", ")
            ),
            (None, false) => eprintln!(
                "{} holds {} scenarios ({}); choose one with --scenario NAME",
                file.display(),
                names.len(),
                names.join(", ")
            ),
        }
    }
    Ok(chosen)
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}

/// The plan as people read it.
pub fn render(plan: &Plan) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    line(format!(
        "Plan for scenario {} on {} (seed {})",
        plan.scenario, plan.cluster, plan.seed
    ));
    line(format!("Hypothesis: {}", plan.hypothesis));
    for (i, fault) in plan.faults.iter().enumerate() {
        line(String::new());
        let total = fault.chosen.len() + fault.excluded.len();
        line(format!(
            "Fault {}: {} — {} of {total} candidates wanted, {} chosen",
            i + 1,
            fault.fault,
            fault.wanted,
            fault.chosen.len()
        ));
        for target in &fault.chosen {
            line(format!("  chosen    {}", target.display()));
        }
        for excluded in &fault.excluded {
            line(format!(
                "  excluded  {}  ({})",
                excluded.target.display(),
                excluded.explanation
            ));
        }
        if let Some(problem) = &fault.problem {
            line(format!("  problem   {problem}"));
        }
        for warning in &fault.warnings {
            line(format!("  warning   {warning}"));
        }
    }
    line(String::new());
    line("Actions, in order, and what undoes each:".into());
    let mut n = 0;
    for step in plan.faults.iter().flat_map(|f| &f.steps) {
        n += 1;
        line(format!("  {n}. {}", step.does));
        for fate in &step.pods {
            match &fate.spared {
                None => line(format!("     evicts: {}", fate.pod)),
                Some(why) => line(format!("     spares: {}  ({why})", fate.pod)),
            }
        }
        for undo in &step.undone_by {
            line(format!("     undo: {undo}"));
        }
    }
    if n == 0 {
        line("  none".into());
    }
    line(String::new());
    line("Steady state (evaluated once, read-only):".into());
    for check in &plan.steady_state {
        line(format!(
            "  {} {} ({}): {}",
            mark(check.sample.verdict == Verdict::Pass),
            check.name,
            check.probe,
            check.sample.observed
        ));
    }
    if plan.steady_state.is_empty() {
        line("  none declared".into());
    }
    line(String::new());
    line("Watched beyond the targets (from the first injection to the end of recovery):".into());
    let watch = &plan.watch;
    line(format!("  namespaces    {}", watch.namespaces.join(", ")));
    line(format!(
        "  nodes         {}",
        match &watch.nodes_not_watched {
            None => "yes".to_owned(),
            Some(why) => format!("no — {why}"),
        }
    ));
    line(format!(
        "  alerts        {}",
        watch
            .alertmanager
            .as_deref()
            .map_or("no — no Alertmanager given (--alertmanager-url)".to_owned(), |a| {
                format!("from Alertmanager {a}")
            })
    ));
    if watch.halts_on.is_empty() {
        line("  halts on      nothing: unanticipated impact is recorded in the report".into());
    }
    for rule in &watch.halts_on {
        line(format!("  halts on      {rule}"));
    }
    for problem in &watch.problems {
        line(format!("  problem       {problem}"));
    }
    line(String::new());
    line("Permissions (SelfSubjectAccessReview):".into());
    for check in &plan.permissions {
        let reason = if check.allowed || check.reason.is_empty() {
            String::new()
        } else {
            format!(" — {}", check.reason)
        };
        line(format!(
            "  {} {}{reason}",
            mark(check.allowed),
            check.permission.describe()
        ));
    }
    line(String::new());
    line("Dry run (each mutation sent with dryRun=All):".into());
    for dry in &plan.dry_run {
        match &dry.refused {
            None => line(format!("  ok   {}", dry.request)),
            Some(why) => line(format!("  FAIL {} — {why}", dry.request)),
        }
    }
    line(String::new());
    if plan.runnable {
        line("Verdict: RUNNABLE".into());
    } else {
        line("Verdict: REFUSED".into());
        for reason in &plan.refusals {
            line(format!("  - {reason}"));
        }
    }
    s
}
