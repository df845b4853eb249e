//! `disasterpiece controller`: run Exercises from custom resources until Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;

use super::cluster::ClusterArgs;
use disasterpiece::controller::{Options, control};

#[derive(Debug, Args)]
#[command(mut_arg("namespace", |a| {
    a.help("Run the Exercises of this namespace only (a Role there is enough); without it, those of every namespace")
}))]
pub struct ControllerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Run the Exercises of every namespace (the default is the `--namespace` given, if any).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How often a running Exercise's kill switches (its namespace's and GameDay's abort
    /// annotations) are read, and a Lease renewal that failed is tried again (a renewal that
    /// went through is next due in 6 s); everything else is acted on as the watches report it.
    #[arg(long, default_value = "1s")]
    pub poll: disasterpiece::scenario::Duration,
    /// Elect a leader among replicas with this Lease, as NAMESPACE/NAME (only the leader runs
    /// Exercises). Without it, this replica runs them all: run one.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub leader_election: Option<String>,
    /// This replica's name in the Lease (default: $POD_NAME, else the host name and PID).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Run Scenarios' `command` probes. They run inside the controller, as its
    /// ServiceAccount: anyone who may create a Scenario and an Exercise would run code with
    /// the controller's rights. Off, an Exercise whose Scenario has one is refused.
    #[arg(long, env = "DISASTERPIECE_ALLOW_COMMAND_PROBES")]
    pub allow_command_probes: bool,
    /// The namespaces whose Scenarios may target Nodes (comma-separated). Nodes are shared by
    /// every namespace: a Scenario from any other namespace that targets them is refused.
    #[arg(
        long,
        value_name = "NS,...",
        value_delimiter = ',',
        env = "DISASTERPIECE_NODE_SCENARIO_NAMESPACES"
    )]
    pub node_scenario_namespaces: Vec<String>,
    /// Images a Scenario's `faultImage` may name besides `--fault-image` (comma-separated;
    /// exact, or a prefix ending in `*`, e.g. `registry.example.com/chaos/*`). The image runs
    /// inside the target pod: an Exercise whose Scenario names another is refused.
    #[arg(
        long,
        value_name = "IMAGE,...",
        value_delimiter = ',',
        env = "DISASTERPIECE_ALLOWED_FAULT_IMAGES"
    )]
    pub allowed_fault_images: Vec<String>,
    #[command(flatten)]
    pub review: ReviewScheduleArgs,
}

/// The weekly review, posted on a schedule by the replica that leads.
#[derive(Debug, Args)]
pub struct ReviewScheduleArgs {
    /// Post the weekly review at each tick of this cron (five fields, e.g. `0 9 * * MON`);
    /// needs --review-webhook.
    #[arg(long, value_name = "CRON", requires = "review_webhook")]
    pub review_cron: Option<String>,
    /// The time zone --review-cron is read in (IANA, e.g. Europe/Paris).
    #[arg(long, value_name = "TZ", default_value = "UTC")]
    pub review_time_zone: String,
    /// The review covers this span up to the tick (e.g. 7d, 2w).
    #[arg(long, value_name = "SPAN", default_value = "7d")]
    pub review_period: String,
    #[arg(long, value_enum, default_value = "lead")]
    pub review_view: disasterpiece::report::review::View,
    /// Teams into groups: a YAML file `{org: NAME, teams: {TEAM: GROUP, …}}`.
    #[arg(long, value_name = "FILE")]
    pub review_org: Option<std::path::PathBuf>,
    /// A workload exercised longer ago than this is listed as stale.
    #[arg(long, value_name = "SPAN", default_value = "90d")]
    pub review_stale: String,
    /// Where the review is posted: a JSON POST whose `text` is the review in Markdown (what a
    /// Slack-compatible incoming webhook reads).
    #[arg(
        long,
        value_name = "URL",
        requires = "review_cron",
        env = "DISASTERPIECE_REVIEW_WEBHOOK"
    )]
    pub review_webhook: Option<String>,
}

impl ReviewScheduleArgs {
    fn schedule(self) -> anyhow::Result<Option<disasterpiece::controller::weekly::Schedule>> {
        use anyhow::Context;
        let (Some(cron), Some(webhook)) = (self.review_cron, self.review_webhook) else {
            return Ok(None);
        };
        let org = match self.review_org {
            None => Default::default(),
            Some(path) => super::review::read_org(&path)?,
        };
        let schedule = disasterpiece::controller::weekly::Schedule {
            cron,
            time_zone: self.review_time_zone,
            period: super::review::span(&self.review_period).context("--review-period")?,
            view: self.review_view,
            org,
            stale: super::review::span(&self.review_stale).context("--review-stale")?,
            webhook,
        };
        schedule.check()?;
        Ok(Some(schedule))
    }
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let ControllerArgs {
        cluster,
        all_namespaces,
        poll,
        leader_election,
        identity,
        metrics_addr,
        allow_command_probes,
        node_scenario_namespaces,
        allowed_fault_images,
        review,
    } = args;
    let review = review.schedule()?;
    let metrics = std::sync::Arc::new(disasterpiece::controller::metrics::Metrics::default());
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {metrics_addr}: {e}"))?;
    tokio::spawn(disasterpiece::controller::metrics::serve(listener, metrics.clone()));
    let election = match leader_election {
        None => None,
        Some(lease) => {
            let Some((namespace, name)) = lease.split_once('/') else {
                anyhow::bail!(
                    "--leader-election takes NAMESPACE/NAME, e.g. disasterpiece-system/disasterpiece-controller"
                );
            };
            let identity = identity.unwrap_or_else(|| {
                let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
                format!("{}-{}", host.trim(), std::process::id())
            });
            Some(disasterpiece::controller::lease::Election {
                namespace: namespace.into(),
                name: name.into(),
                identity,
                duration: Duration::from_secs(15),
            })
        }
    };
    let floor = cluster.floor()?;
    let (client, server, _retries) = cluster.retrying_client().await?;
    let options = Options {
        namespace: if all_namespaces {
            None
        } else {
            cluster.namespace.clone()
        },
        poll: poll.as_std().max(Duration::from_millis(100)),
        cluster: server.clone(),
        sources: disasterpiece::probe::Sources {
            // Closed unless listed: a Scenario's author reaches no host the operator did not
            // allow (their own Prometheus and Alertmanager are asked as they are).
            hosts: cluster.probe_hosts(disasterpiece::probe::hosts::HostPolicy::closed())?,
            ..cluster.sources(if allow_command_probes {
                disasterpiece::probe::CommandProbes::On
            } else {
                disasterpiece::probe::CommandProbes::Off
            })?
        },
        fault_image: cluster.fault_image.clone(),
        fault_images: allowed_fault_images,
        journal_namespace: cluster.journal_namespace.clone(),
        kill_switch: cluster.kill_switch.clone(),
        node_namespaces: node_scenario_namespaces,
        election,
        clock: Default::default(),
        metrics,
        floor,
        // The success metrics move with finished game days, not by the second.
        learn_every: Duration::from_secs(300),
        review,
    };
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        let interrupted = async {
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        };
        interrupted.await;
        let _ = stop_tx.send(true);
    });
    println!(
        "controller: running Exercises in {} on {server}",
        options.namespace.as_deref().unwrap_or("every namespace")
    );
    control(client, options, stop).await;
    println!("controller: stopped (running exercises were aborted and reverted)");
    Ok(ExitCode::SUCCESS)
}
