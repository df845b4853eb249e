//! `disasterpiece schema scenario|gameday|report`

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
    /// The report JSON that `run` writes (`reportVersion: 1`).
    Report,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let SchemaArgs { format } = args;
    let schema = match format {
        Format::Scenario => Kind::Scenario.schema(),
        Format::Gameday => Kind::GameDay.schema(),
        Format::Report => crate::report::model::schema(),
    };
    let text = serde_json::to_string_pretty(schema).context("rendering the schema")?;
    writeln!(std::io::stdout(), "{text}").context("writing the schema")?;
    Ok(ExitCode::SUCCESS)
}
