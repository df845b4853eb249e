//! `disasterpiece review DIR...`: the weekly review of a period, from report files or from the
//! reports the controller keeps in the cluster.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};

use disasterpiece::report::review::{self, Ask, Org, Source, View};
use disasterpiece::report::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Directories of reports (searched recursively for *.json), or report files.
    #[arg(required_unless_present = "from_cluster", conflicts_with = "from_cluster")]
    pub paths: Vec<PathBuf>,
    /// Read the reports the controller keeps in the cluster instead (ConfigMaps labelled
    /// `disasterpiece.dev/report`, every namespace or `--namespace`).
    #[arg(long)]
    pub from_cluster: bool,
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH", env = "KUBECONFIG", requires = "from_cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context to read from; repeat to review several clusters at once (their
    /// reports are merged). Default: the current context.
    #[arg(long = "context", value_name = "NAME", requires = "from_cluster")]
    pub contexts: Vec<String>,
    /// Only the reports of this namespace.
    #[arg(short, long, requires = "from_cluster")]
    pub namespace: Option<String>,
    /// The start of the period: how long before its end (`7d`, `2w`, `12h`), or a day
    /// (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "SPAN|DATE", default_value = "7d")]
    pub since: String,
    /// The end of the period: a day (YYYY-MM-DD, UTC); the period runs up to its start.
    /// Default: now.
    #[arg(long, value_name = "DATE")]
    pub until: Option<NaiveDate>,
    /// How deep: team (every exercise), lead (each team of each group), org (groups rolled up).
    #[arg(long, value_enum, default_value = "team")]
    pub view: View,
    /// Which group each team belongs to: a YAML file `{org: NAME, teams: {TEAM: GROUP}}`.
    #[arg(long, value_name = "FILE")]
    pub org: Option<PathBuf>,
    /// A target last exercised longer ago than this is listed as stale.
    #[arg(long, value_name = "SPAN", default_value = "90d")]
    pub stale: String,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReviewFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// `7d`, `2w`, or a scenario duration (`12h`, `90m`).
pub fn span(text: &str) -> anyhow::Result<chrono::Duration> {
    let days = |n: &str, per: i64| -> anyhow::Result<chrono::Duration> {
        let n: i64 = n.parse().with_context(|| format!("`{text}` is not a span"))?;
        chrono::Duration::try_days(n.checked_mul(per).context("too long a span")?).context("too long a span")
    };
    let span = if let Some(n) = text.strip_suffix('d') {
        days(n, 1)?
    } else if let Some(n) = text.strip_suffix('w') {
        days(n, 7)?
    } else {
        let d: disasterpiece::scenario::Duration = text
            .parse()
            .map_err(|e| anyhow::anyhow!("`{text}` is not a span ({e}): write e.g. 7d, 2w or 12h"))?;
        chrono::Duration::from_std(d.as_std())?
    };
    if span <= chrono::Duration::zero() {
        bail!("`{text}` is no span: it must be longer than 0");
    }
    Ok(span)
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

pub fn run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let ReviewArgs {
        paths,
        from_cluster,
        kubeconfig,
        contexts,
        namespace,
        since,
        until,
        view,
        org,
        stale,
        format,
        out,
    } = args;
    let until = until.map_or_else(|| disasterpiece::clock::Clock::system().now(), start_of);
    let since = match NaiveDate::parse_from_str(&since, "%Y-%m-%d") {
        Ok(day) => start_of(day),
        Err(_) => until - span(&since).context("--since")?,
    };
    if since >= until {
        bail!(
            "--since ({}) is not before --until ({})",
            since.date_naive(),
            until.date_naive()
        );
    }
    let org = match org {
        None => Org::default(),
        Some(path) => read_org(&path)?,
    };
    let (sources, workloads) = if from_cluster {
        from_clusters(kubeconfig, contexts, namespace)?
    } else {
        (read(&paths)?, Vec::new())
    };
    let ask = Ask {
        since,
        until,
        view,
        org,
        stale: span(&stale).context("--stale")?,
    };
    let mut result = review::review(&sources, &ask);
    review::add_never_exercised(&mut result, &workloads);
    let text = match format {
        ReviewFormat::Markdown => review::markdown(&result),
        ReviewFormat::Html => review::html(&result),
        ReviewFormat::Json => serde_json::to_string_pretty(&result)? + "\n",
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The reports every context keeps (one, the current, without `--context`), merged, and the
/// workloads of each for coverage.
fn from_clusters(
    kubeconfig: Option<PathBuf>,
    contexts: Vec<String>,
    namespace: Option<String>,
) -> anyhow::Result<(Vec<Source>, Vec<review::Workload>)> {
    let contexts: Vec<Option<String>> = match contexts.is_empty() {
        true => vec![None],
        false => contexts.into_iter().map(Some).collect(),
    };
    let mut sources = Vec::new();
    let mut workloads = Vec::new();
    for context in contexts {
        let cluster = super::cluster::ClusterArgs {
            kubeconfig: kubeconfig.clone(),
            context: context.clone(),
            namespace: namespace.clone(),
            ..Default::default()
        };
        let from = context.map_or(String::new(), |c| format!(" in {c}"));
        let stored = super::report::stored_reports(&cluster).with_context(|| format!("reading the reports{from}"))?;
        sources.extend(stored.into_iter().map(|report| Source {
            at: format!("report of {}{from}", report.exercise),
            report: (&report).into(),
        }));
        match cluster_workloads(&cluster) {
            Ok(found) => workloads.extend(found),
            Err(e) => eprintln!("coverage of the workloads never exercised{from} is left out: {e:#}"),
        }
    }
    Ok((sources, workloads))
}

/// The org file: which group each team belongs to.
pub fn read_org(path: &std::path::Path) -> anyhow::Result<Org> {
    // A list of teams: a MiB is plenty.
    let text = store::read_capped(path, 1024 * 1024).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| {
        format!(
            "{}: expected `org: NAME` and `teams: {{TEAM: GROUP, …}}`",
            path.display()
        )
    })
}

/// The Deployments and StatefulSets of the cluster (or of `--namespace`), each with its team.
fn cluster_workloads(cluster: &super::cluster::ClusterArgs) -> anyhow::Result<Vec<review::Workload>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (client, _) = cluster.client().await?;
        Ok(disasterpiece::controller::reports::workloads(&client, cluster.namespace.as_deref()).await?)
    })
}

/// Every report in `paths`; what is not a report is said on stderr and left out.
fn read(paths: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            store::find(path).with_context(|| format!("reading {}", path.display()))?
        } else {
            vec![path.clone()]
        };
        for file in files {
            match store::load_summary(&file) {
                Ok(report) => sources.push(Source {
                    at: file.display().to_string(),
                    report,
                }),
                Err(e) => eprintln!("skipped {}: {e}", file.display()),
            }
        }
    }
    Ok(sources)
}
