//! `disasterpiece sim`: the embedded simulated cluster, standalone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use disasterpiece_sim::{Misbehaviour, Seed, Sim};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// What the cluster holds at start.
    #[arg(long, value_enum, default_value_t = SeedArg::Shop)]
    pub seed: SeedArg,
    /// Where to write the kubeconfig (default: a file in the temp directory); removed on exit.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Seconds before a missing pod is replaced.
    #[arg(long, default_value_t = 1.0)]
    pub replace_delay: f64,
    /// Seconds before a scheduled pod is Ready.
    #[arg(long, default_value_t = 2.0)]
    pub ready_delay: f64,
    /// Share of API requests answered with an error (500, 503 or 429), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub api_error_rate: f64,
    /// Milliseconds added to every API request.
    #[arg(long, default_value_t = 0)]
    pub api_latency_ms: u64,
    /// Close every watch this many seconds after it starts.
    #[arg(long)]
    pub drop_watches_after: Option<u64>,
    /// Answer `pods/exec` as an API server that cannot reach the kubelets does (500 "error
    /// dialing backend").
    #[arg(long)]
    pub kubelet_unreachable: bool,
    /// Also plant bare pods for scale tests, as NAMESPACESxPODS (`100x100`: 10 000 pods in
    /// namespaces bulk-000…, labelled app=bulk and group=g0…g9).
    #[arg(long, value_name = "NxM")]
    pub bulk_pods: Option<String>,
    /// Run containers as real processes on this machine (needs root and util-linux): fault
    /// scripts really run, as their securityContext's user, in namespaces of their own, and
    /// `kubectl exec` runs inside them. Without it their effect is played.
    #[arg(long)]
    pub run_containers: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeedArg {
    Shop,
    Empty,
}

pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let SimArgs {
        port,
        seed,
        kubeconfig_out,
        replace_delay,
        ready_delay,
        api_error_rate,
        api_latency_ms,
        drop_watches_after,
        kubelet_unreachable,
        bulk_pods,
        run_containers,
    } = args;
    if !(0.0..=1.0).contains(&api_error_rate) {
        anyhow::bail!("--api-error-rate must be between 0 and 1 (got {api_error_rate})");
    }
    let seconds = |name: &str, s: f64| {
        if s.is_finite() && s >= 0.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(anyhow::anyhow!(
                "{name} must be a number of seconds, 0 or more (got {s})"
            ))
        }
    };
    let mut builder = Sim::builder()
        .port(port)
        .seed(match seed {
            SeedArg::Shop => Seed::Shop,
            SeedArg::Empty => Seed::Empty,
        })
        .replace_delay(seconds("--replace-delay", replace_delay)?)
        .ready_delay(seconds("--ready-delay", ready_delay)?)
        .run_containers(run_containers)
        .misbehaviour(Misbehaviour {
            error_rate: api_error_rate,
            latency_ms: api_latency_ms,
            drop_watches_after_seconds: drop_watches_after,
            kubelet_unreachable,
        });
    if let Some(path) = kubeconfig_out {
        builder = builder.kubeconfig_path(path);
    }
    if let Some(bulk) = bulk_pods {
        let parsed = bulk
            .split_once('x')
            .and_then(|(n, m)| Some((n.parse::<usize>().ok()?, m.parse::<usize>().ok()?)));
        let Some((namespaces, pods)) = parsed else {
            anyhow::bail!("--bulk-pods takes NAMESPACESxPODS, e.g. 100x100 (got {bulk})");
        };
        builder = builder.bulk_pods(namespaces, pods);
    }
    let sim = builder.start().await.context("starting the simulator")?;
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    println!("disasterpiece simulator listening on {}", sim.url());
    println!("kubeconfig: {kubeconfig}");
    println!();
    println!("  kubectl --kubeconfig {kubeconfig} get pods -A");
    println!("  export KUBECONFIG={kubeconfig}");
    println!();
    println!("  kubectl --kubeconfig {kubeconfig} create token default -n shop   # a ServiceAccount's token");
    println!();
    println!(
        "misbehave on purpose (cluster admin only):\n  curl -X PUT -H 'Authorization: Bearer {}' {}/sim/admin/misbehave -d '{{\"errorRate\": 0.2}}'",
        sim.admin_token(),
        sim.url()
    );
    println!("Ctrl-C stops it.");
    wait_for_stop().await;
    let path = sim.kubeconfig_path().to_path_buf();
    // The kubeconfig is removed: it would point at a port nothing listens on any more.
    sim.shutdown().await;
    eprintln!("stopped; removed {}", path.display());
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
