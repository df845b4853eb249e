//! `disasterpiece recover`: reverts whatever a dead run left, from its journal.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::cluster::ClusterArgs;
use super::validate::Output;
use disasterpiece::engine::journal::{LAPSE, MIN_LAPSE, live};
use disasterpiece::engine::recovery::{recover_exercise_anywhere, recover_lapsed};

#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Look in every namespace (default: the --namespace given, else every namespace).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A journal whose heartbeat is older than this belongs to a dead run (at least 15s: three
    /// heartbeats).
    #[arg(long, default_value_t = LAPSE.into())]
    pub lapse: disasterpiece::scenario::Duration,
    /// Revert this exercise's journal now, however fresh its heartbeat: for a run you know is
    /// dead (its machine is gone) and do not want to wait for.
    #[arg(long, value_name = "ID")]
    pub exercise: Option<String>,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub async fn run(args: RecoverArgs) -> anyhow::Result<ExitCode> {
    let RecoverArgs {
        cluster,
        all_namespaces,
        lapse,
        exercise,
        output,
    } = args;
    if lapse.as_std() < MIN_LAPSE {
        anyhow::bail!(
            "--lapse {lapse} is shorter than {}s (three heartbeats): a live run a heartbeat late would be taken for a dead one and reverted under its feet. To revert one run now, use --exercise ID",
            MIN_LAPSE.as_secs()
        );
    }
    let (client, server) = cluster.client().await?;
    let namespace = if all_namespaces {
        None
    } else {
        cluster.namespace.as_deref()
    };
    let clock = disasterpiece::clock::Clock::system();
    let recovered = match &exercise {
        Some(id) => {
            let found = recover_exercise_anywhere(&client, namespace, &cluster.journal_namespace, id, &clock).await?;
            if found.is_empty() {
                anyhow::bail!("no journal of exercise {id} on {server}: nothing to revert");
            }
            found
        }
        None => recover_lapsed(&client, namespace, &cluster.journal_namespace, lapse.as_std(), &clock).await?,
    };
    let alive = live(&client, namespace, lapse.as_std(), &clock).await?;
    let failed = recovered.iter().any(|r| !r.failed.is_empty());
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"recovered": recovered, "live": alive}))?
        )?,
        Output::Text => {
            if recovered.is_empty() {
                writeln!(out, "nothing to recover on {server}: no journal of a dead run")?;
            }
            // Runs that still beat (or died less than --lapse ago): said, never touched.
            for l in &alive {
                writeln!(
                    out,
                    "live: exercise {} (journal {}/{}), heartbeat {:.0}s ago: recoverable in {:.0}s if its run has died, or now with `disasterpiece recover --exercise {}` once you are sure it has",
                    l.exercise, l.namespace, l.journal, l.heartbeat_age_s, l.recoverable_in_s, l.exercise
                )?;
            }
            for r in &recovered {
                writeln!(out, "exercise {} (journal {}/{}):", r.exercise, r.namespace, r.journal)?;
                for step in &r.reverted {
                    writeln!(out, "  reverted: {step}")?;
                }
                for step in &r.failed {
                    writeln!(out, "  FAILED:   {step}")?;
                }
                if r.failed.is_empty() {
                    writeln!(out, "  journal closed")?;
                } else {
                    writeln!(out, "  journal kept; run recover again once the cause is fixed")?;
                }
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
