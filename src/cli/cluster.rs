//! `--kubeconfig`, `--context` and `--namespace`, the way kubectl takes them.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long the first request may take before the cluster counts as unreachable.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Use this namespace instead of the scenario's target namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The Prometheus that `prometheus` and `alert` probes ask when they name no `url`.
    #[arg(long, value_name = "URL", env = "DISASTERPIECE_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// The Alertmanager that `alert` probes with `source: alertmanager` ask when they name no `url`.
    #[arg(long, value_name = "URL", env = "DISASTERPIECE_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// The image of the ephemeral containers that in-pod faults add, when the scenario's
    /// `faultImage` names none (default: docker.io/nicolaka/netshoot:v0.13); e.g. a mirror in
    /// an air-gapped registry.
    #[arg(long, value_name = "IMAGE", env = "DISASTERPIECE_FAULT_IMAGE")]
    pub fault_image: Option<String>,
    /// The hosts that addresses in a Scenario (http probes, prometheus and alert probes with a
    /// `url`) and GameDay webhooks may reach, comma-separated: `name.example.com`,
    /// `*.example.com`, `10.0.0.0/8`, `*`. Link-local and metadata addresses only when named
    /// (never through `*`). Default: `*` for `run` and `plan`; nothing for the controller.
    #[arg(
        long,
        value_name = "HOST,...",
        value_delimiter = ',',
        env = "DISASTERPIECE_ALLOWED_PROBE_HOSTS"
    )]
    pub allowed_probe_hosts: Vec<String>,
    /// Where the journals of Node faults are kept, and the only namespace whose journals
    /// `recover` lets change Nodes (a journal elsewhere only undoes what lies in its own
    /// namespace). The controller's Helm chart sets its own namespace.
    #[arg(
        long,
        value_name = "NS",
        env = "DISASTERPIECE_JOURNAL_NAMESPACE",
        default_value = "default"
    )]
    pub journal_namespace: String,
    /// The kill switch: while this ConfigMap exists (NAMESPACE/NAME), every exercise stops and
    /// none starts. The Helm chart keeps it in the controller's own namespace.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        env = "DISASTERPIECE_KILL_SWITCH",
        default_value = "disasterpiece-system/disasterpiece-killswitch"
    )]
    pub kill_switch: disasterpiece::engine::abort::KillSwitch,
    #[command(flatten)]
    pub beyond: BeyondArgs,
}

/// The operator's floor for what every exercise watches beyond its targets and halts on; a
/// Scenario may add to it, never take from it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BeyondArgs {
    /// A namespace every exercise watches for collateral (repeat; `*` for all), e.g. kube-system.
    #[arg(
        long = "watch-namespace",
        value_name = "NS",
        env = "DISASTERPIECE_WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    pub watch_namespaces: Vec<String>,
    /// Halt every exercise on an unanticipated alert these Alertmanager matchers match (repeat),
    /// e.g. 'severity=~"page|critical"'. Alerts are read from --alertmanager-url.
    #[arg(long = "halt-on-alert", value_name = "MATCHERS", env = "DISASTERPIECE_HALT_ON_ALERT")]
    pub halt_on_alerts: Vec<String>,
    /// Halt every exercise on collateral in this namespace (repeat; `*`: anywhere watched).
    #[arg(
        long = "halt-on-collateral-in",
        value_name = "NS",
        env = "DISASTERPIECE_HALT_ON_COLLATERAL_IN",
        value_delimiter = ','
    )]
    pub halt_on_collateral_in: Vec<String>,
}

impl BeyondArgs {
    /// The floor, checked: a matcher that does not parse stops the command before anything runs.
    pub fn floor(&self) -> anyhow::Result<disasterpiece::engine::beyond::Floor> {
        let floor = disasterpiece::engine::beyond::Floor {
            namespaces: self.watch_namespaces.clone(),
            alerts: self.halt_on_alerts.clone(),
            collateral_in: self.halt_on_collateral_in.clone(),
            // The CLI acts as whoever runs it: Nodes are watched when that identity may.
            nodes_hidden: None,
        };
        let problems = floor.problems();
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        Ok(floor)
    }
}

impl ClusterArgs {
    /// The operator's floor (`--watch-namespace`, `--halt-on-alert`, `--halt-on-collateral-in`).
    pub fn floor(&self) -> anyhow::Result<disasterpiece::engine::beyond::Floor> {
        self.beyond.floor()
    }

    /// Where probes look when they name no `url`; `commands` says whether command probes may
    /// run (the caller decides: `run` yes, `plan` only with `--run-commands`, the controller
    /// only with `--allow-command-probes`).
    pub fn sources(
        &self,
        commands: disasterpiece::probe::CommandProbes,
    ) -> anyhow::Result<disasterpiece::probe::Sources> {
        Ok(disasterpiece::probe::Sources {
            prometheus: self.prometheus_url.clone(),
            alertmanager: self.alertmanager_url.clone(),
            commands,
            // Whoever runs the CLI chose the scenario: any host by default, but link-local and
            // metadata addresses only when --allowed-probe-hosts names them.
            hosts: self.probe_hosts(disasterpiece::probe::hosts::HostPolicy::any())?,
        })
    }

    /// The hosts `--allowed-probe-hosts` allows, or `default` when it is not given.
    pub fn probe_hosts(
        &self,
        default: disasterpiece::probe::hosts::HostPolicy,
    ) -> anyhow::Result<disasterpiece::probe::hosts::HostPolicy> {
        if self.allowed_probe_hosts.is_empty() {
            return Ok(default);
        }
        disasterpiece::probe::hosts::HostPolicy::parse(&self.allowed_probe_hosts)
            .map_err(|e| anyhow::anyhow!("--allowed-probe-hosts {e}"))
    }
}

impl ClusterArgs {
    /// A client that retries transient API errors only (see `engine::retry`: an eviction
    /// refused by a PodDisruptionBudget must be reported, not retried for minutes), and the
    /// cluster's server address, for the report.
    pub async fn client(&self) -> anyhow::Result<(kube::Client, String)> {
        let (client, server, _) = self.retrying_client().await?;
        Ok((client, server))
    }

    /// The client, the server's address, and the log of the calls it had to retry.
    pub async fn retrying_client(
        &self,
    ) -> anyhow::Result<(kube::Client, String, disasterpiece::engine::retry::RetryLog)> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match self.merged_kubeconfig()? {
            Some(kubeconfig) => kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .context("using the kubeconfig")?,
            None => match kube::Config::from_kubeconfig(&options).await {
                Ok(config) => config,
                // In a pod (the controller), the service account's own credentials.
                Err(_) if self.context.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
                    kube::Config::incluster().context("using the pod's service account")?
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context("finding a kubeconfig (set --kubeconfig or KUBECONFIG, or run in a pod)"));
                }
            },
        };
        let server = config.cluster_url.to_string();
        let (client, log) =
            disasterpiece::engine::retry::retrying_client(config).context("building the Kubernetes client")?;
        // A cluster that does not answer is said at once, not after minutes of retries.
        let why = match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(_)) => return Ok((client, server, log)),
            Ok(Err(e)) => disasterpiece::api::api_message(&e),
            Err(_) => format!(
                "no answer within {}s; check the address, the network, or --context",
                REACH_TIMEOUT.as_secs()
            ),
        };
        let context = self.context_name().map_or(String::new(), |c| format!(" (context {c})"));
        anyhow::bail!("cannot reach the cluster at {server}{context}: {why}")
    }

    /// `--kubeconfig` (or `$KUBECONFIG`), every file it lists merged as kubectl merges them
    /// (the first file to set a value wins); `None` when neither is given.
    fn merged_kubeconfig(&self) -> anyhow::Result<Option<Kubeconfig>> {
        let Some(paths) = &self.kubeconfig else {
            return Ok(None);
        };
        let listed: Vec<PathBuf> = std::env::split_paths(paths)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let mut merged: Option<Kubeconfig> = None;
        for path in &listed {
            // kubectl skips files of a list that do not exist.
            if listed.len() > 1 && !path.exists() {
                continue;
            }
            let next =
                Kubeconfig::read_from(path).with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            merged = Some(match merged {
                None => next,
                Some(m) => m.merge(next).context("merging the kubeconfig files")?,
            });
        }
        merged
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("none of the kubeconfig files {} exists", paths.display()))
    }

    /// The kubeconfig context in use: `--context`, else the current context of the
    /// kubeconfig (for the prompt and the report).
    pub fn context_name(&self) -> Option<String> {
        if let Some(c) = &self.context {
            return Some(c.clone());
        }
        match self.merged_kubeconfig() {
            Ok(Some(k)) => k.current_context,
            _ => Kubeconfig::read().ok().and_then(|k| k.current_context),
        }
    }
}
