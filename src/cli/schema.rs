//! `disasterpiece schema scenario|gameday`

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::scenario::Kind;

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
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let SchemaArgs { format } = args;
    let kind = match format {
        Format::Scenario => Kind::Scenario,
        Format::Gameday => Kind::GameDay,
    };
    let text = serde_json::to_string_pretty(kind.schema()).context("rendering the schema")?;
    writeln!(std::io::stdout(), "{text}").context("writing the schema")?;
    Ok(ExitCode::SUCCESS)
}
