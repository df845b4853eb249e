//! `disasterpiece schema scenario|gameday|report`

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use disasterpiece::scenario::Kind;

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file format.
    #[arg(value_enum)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Scenario,
    Gameday,
    /// The report JSON that `run` writes (`reportVersion: 1`).
    Report,
}

#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Write one file per CRD into this directory (as the Helm chart carries them) instead of
    /// printing them.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// `disasterpiece crd`: every CustomResourceDefinition, as one multi-document YAML.
pub fn crd(args: CrdArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = args.out_dir {
        for (file, yaml) in disasterpiece::controller::crd::definitions() {
            let path = dir.join(file);
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout();
    for (i, (_, yaml)) in disasterpiece::controller::crd::definitions().iter().enumerate() {
        if i > 0 {
            writeln!(out, "---").context("writing")?;
        }
        write!(out, "{yaml}").context("writing")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let SchemaArgs { format } = args;
    let schema = match format {
        Format::Scenario => Kind::Scenario.schema(),
        Format::Gameday => Kind::GameDay.schema(),
        Format::Report => disasterpiece::report::model::schema(),
    };
    let text = serde_json::to_string_pretty(schema).context("rendering the schema")?;
    writeln!(std::io::stdout(), "{text}").context("writing the schema")?;
    Ok(ExitCode::SUCCESS)
}
