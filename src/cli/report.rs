//! `disasterpiece report`, `annotate` and `trend`: render what exercises found, add what the
//! team learned, and follow the figures over months.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use disasterpiece::report::model::Report;
use disasterpiece::report::store::{self, Annotation};
use disasterpiece::report::trend::{self, GroupBy, Trend};
use disasterpiece::report::{html, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Markdown,
    Html,
    Junit,
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Junit => "xml",
            Format::Json => "json",
        }
    }
}

#[derive(Debug, Args)]
#[command(mut_arg("namespace", |a| a.help("With --from-cluster: the namespace of the reports (default: the kubeconfig context's, else default)")))]
pub struct ReportArgs {
    /// Report files (the JSON `run` writes); with --from-cluster, the names of reports the
    /// controller keeps (`status.report` of an Exercise) or of Exercises (their latest report).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Fetch the reports from the cluster instead of reading files.
    #[arg(long)]
    pub from_cluster: bool,
    #[command(flatten)]
    pub cluster: super::cluster::ClusterArgs,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Where to write: a file, or a directory for one file per report (default: stdout).
    /// JUnit puts every report in one file.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

fn load_all(files: &[PathBuf]) -> anyhow::Result<Vec<Report>> {
    files
        .iter()
        .map(|f| store::load(f).with_context(|| format!("{}", f.display())))
        .collect()
}

/// The reports named `names` in the cluster.
fn fetch_all(cluster: &super::cluster::ClusterArgs, names: &[PathBuf]) -> anyhow::Result<Vec<Report>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (client, _) = cluster.client().await?;
        let namespace = cluster
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let mut reports = Vec::new();
        for name in names {
            let name = name.display().to_string();
            let report = disasterpiece::controller::reports::fetch(&client, &namespace, &name)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            reports.push(report);
        }
        Ok(reports)
    })
}

fn render_one(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Markdown => render::markdown(report),
        Format::Html => html::html(report),
        Format::Junit => render::junit(std::slice::from_ref(report)),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
    })
}

pub fn run_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let ReportArgs {
        files,
        from_cluster,
        cluster,
        format,
        out,
    } = args;
    let reports = if from_cluster {
        fetch_all(&cluster, &files)?
    } else {
        load_all(&files)?
    };
    let one_output = format == Format::Junit || reports.len() == 1;
    match out {
        None if one_output || format == Format::Markdown => {
            let text = if format == Format::Junit {
                render::junit(&reports)
            } else {
                let parts: anyhow::Result<Vec<String>> = reports.iter().map(|r| render_one(r, format)).collect();
                parts?.join("\n---\n\n")
            };
            std::io::stdout().write_all(text.as_bytes())?;
        }
        None => bail!("{} reports in {format:?} need --out DIR (one file each)", reports.len()),
        Some(path) if one_output && !path.is_dir() => {
            let text = if format == Format::Junit {
                render::junit(&reports)
            } else {
                render_one(&reports[0], format)?
            };
            write(&path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (report, file) in reports.iter().zip(&files) {
                let stem = file
                    .file_stem()
                    .map_or_else(|| report.exercise.clone().into(), |s| s.to_owned());
                let path = dir.join(stem).with_extension(format.extension());
                write(&path, &render_one(report, format)?)?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The report file to annotate (changed in place; other annotations are kept).
    pub file: PathBuf,
    /// How sure the team was, 1 to 5, before the exercise.
    #[arg(long, value_name = "1-5", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub confidence_before: Option<u8>,
    /// How sure the team is now, 1 to 5.
    #[arg(long, value_name = "1-5", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub confidence_after: Option<u8>,
    /// Something the team learned (repeat for several).
    #[arg(long, value_name = "TEXT")]
    pub learned: Vec<String>,
    /// A follow-up to track (repeat for several); open until marked done.
    #[arg(long = "follow-up", value_name = "TEXT")]
    pub follow_ups: Vec<String>,
    /// Who owns the follow-ups added by this call.
    #[arg(long, value_name = "NAME", requires = "follow_ups")]
    pub owner: Option<String>,
    /// Mark follow-up N (numbered from 1, as the report lists them) done; repeat for several.
    #[arg(long, value_name = "N")]
    pub done: Vec<usize>,
    /// When the follow-ups added by this call are due (YYYY-MM-DD); open after that day, the
    /// review lists them as overdue, first.
    #[arg(long, value_name = "DATE", requires = "follow_ups")]
    pub due: Option<chrono::NaiveDate>,
    /// The ticket that tracks the follow-ups added by this call (an http or https URL).
    #[arg(long, value_name = "URL", requires = "follow_ups")]
    pub ticket: Option<String>,
    /// The scenario that proves the follow-ups added by this call done: its next run that
    /// confirms its hypothesis marks them verified in the review.
    #[arg(long, value_name = "SCENARIO", requires = "follow_ups")]
    pub proven_by: Option<String>,
}

pub fn run_annotate(args: AnnotateArgs) -> anyhow::Result<ExitCode> {
    let AnnotateArgs {
        file,
        confidence_before,
        confidence_after,
        learned,
        follow_ups,
        owner,
        done,
        due,
        ticket,
        proven_by,
    } = args;
    let annotation = Annotation {
        confidence_before,
        confidence_after,
        learned,
        follow_ups,
        owner,
        done,
        due,
        ticket,
        proven_by,
        at: None,
    };
    if annotation == Annotation::default() {
        bail!("nothing to add: give --confidence-after, --learned, --follow-up or --done (see --help)");
    }
    let annotation = Annotation {
        at: Some(disasterpiece::clock::Clock::system().now()),
        ..annotation
    };
    let report = store::annotate(&file, &annotation).with_context(|| format!("{}", file.display()))?;
    let open = report
        .follow_ups
        .iter()
        .filter(|f| f.status == disasterpiece::report::model::FollowUpStatus::Open)
        .count();
    println!(
        "annotated {}: {} learned, {} follow-ups ({open} open)",
        file.display(),
        report.learned.len(),
        report.follow_ups.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrendFormat {
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Args)]
#[command(mut_arg("namespace", |a| a.help("With --from-cluster: the reports of this namespace only")))]
pub struct TrendArgs {
    /// A directory of reports (searched recursively for *.json).
    #[arg(required_unless_present = "from_cluster", conflicts_with = "from_cluster")]
    pub dir: Option<PathBuf>,
    /// Read the reports the controller keeps in the cluster (ConfigMaps labelled
    /// `disasterpiece.dev/report`, every namespace or `--namespace`) instead of a directory.
    #[arg(long)]
    pub from_cluster: bool,
    #[command(flatten)]
    pub cluster: super::cluster::ClusterArgs,
    /// Only exercises started on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<chrono::NaiveDate>,
    #[arg(long, value_enum, default_value = "scenario")]
    pub group_by: GroupBy,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: TrendFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

pub fn run_trend(args: TrendArgs) -> anyhow::Result<ExitCode> {
    let TrendArgs {
        dir,
        from_cluster,
        cluster,
        since,
        group_by,
        format,
        out,
    } = args;
    let since = since.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    let (reports, skipped) = match dir {
        Some(dir) if !from_cluster => trend::read(&dir, since).with_context(|| format!("reading {}", dir.display()))?,
        _ => from_the_cluster(&cluster, since)?,
    };
    for s in &skipped {
        eprintln!("skipped {}: {}", s.file.display(), s.reason);
    }
    let result = Trend {
        group_by,
        since,
        reports: reports.len(),
        groups: trend::trend(&reports, group_by),
        skipped,
    };
    let text = match format {
        TrendFormat::Markdown => trend::markdown(&result),
        TrendFormat::Html => trend::html(&result),
        TrendFormat::Json => serde_json::to_string_pretty(&result)? + "\n",
    };
    match out {
        Some(path) => {
            write(&path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The reports the controller stored, and the ones it could not read (by their name).
fn from_the_cluster(
    cluster: &super::cluster::ClusterArgs,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<(Vec<Report>, Vec<trend::Skipped>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (client, server) = cluster.client().await?;
        let (reports, unreadable) = disasterpiece::controller::reports::list(&client, cluster.namespace.as_deref())
            .await
            .with_context(|| format!("listing the reports stored in {server}"))?;
        let reports = reports
            .into_iter()
            .filter(|r| since.is_none_or(|s| r.started_at >= s))
            .collect();
        let skipped = unreadable
            .into_iter()
            .map(|u| trend::Skipped {
                file: PathBuf::from(format!("configmap {}", u.name)),
                reason: u.reason,
            })
            .collect();
        Ok((reports, skipped))
    })
}

/// The reports the controller keeps in the cluster; the unreadable ones are said on stderr.
pub(crate) fn stored_reports(cluster: &super::cluster::ClusterArgs) -> anyhow::Result<Vec<Report>> {
    let (reports, skipped) = from_the_cluster(cluster, None)?;
    for s in &skipped {
        eprintln!("skipped {}: {}", s.file.display(), s.reason);
    }
    Ok(reports)
}
