//! `disasterpiece recover`: reverts whatever a dead run left, from its journal.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::cluster::ClusterArgs;
use super::validate::Output;
use disasterpiece::engine::journal::{LAPSE, recover_lapsed};

#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Look in every namespace (default: the --namespace given, else every namespace).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A journal whose heartbeat is older than this belongs to a dead run.
    #[arg(long, default_value_t = LAPSE.into())]
    pub lapse: disasterpiece::scenario::Duration,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub async fn run(args: RecoverArgs) -> anyhow::Result<ExitCode> {
    let RecoverArgs {
        cluster,
        all_namespaces,
        lapse,
        output,
    } = args;
    let (client, server) = cluster.client().await?;
    let namespace = if all_namespaces {
        None
    } else {
        cluster.namespace.as_deref()
    };
    let recovered = recover_lapsed(
        &client,
        namespace,
        &cluster.journal_namespace,
        lapse.as_std(),
        &disasterpiece::clock::Clock::system(),
    )
    .await?;
    let failed = recovered.iter().any(|r| !r.failed.is_empty());
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&recovered)?)?,
        Output::Text => {
            if recovered.is_empty() {
                writeln!(out, "nothing to recover on {server}: no journal of a dead run")?;
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
