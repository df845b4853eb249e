//! `disasterpiece validate PATH...`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;

use disasterpiece::scenario::{self, Pos, Problem, Resource};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files and directories. A directory means the `.yaml` and `.yml` files directly in it
    /// (like `kubectl apply -f DIR`); add `--recursive` to descend.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also read the YAML files in subdirectories of directories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// How to print the problems.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// `FILE:LINE:COLUMN: field: message`, one line a problem, hints indented below.
    Text,
    /// One JSON object, for editors and CI bots.
    Json,
}

/// One problem with the file it is in.
#[derive(Debug, Serialize)]
struct FileProblem {
    file: String,
    #[serde(flatten)]
    problem: Problem,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    valid: bool,
    files: usize,
    scenarios: usize,
    game_days: usize,
    problems: Vec<FileProblem>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let ValidateArgs {
        paths,
        recursive,
        output,
    } = args;
    let mut summary = Summary {
        valid: true,
        files: 0,
        scenarios: 0,
        game_days: 0,
        problems: Vec::new(),
    };
    for (file, listing_problem) in expand(&paths, recursive) {
        let shown = file.display().to_string();
        if let Some(problem) = listing_problem {
            summary.problems.push(FileProblem { file: shown, problem });
            continue;
        }
        summary.files += 1;
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                let problem = Problem::new(Pos::START, "", format!("cannot read the file: {err}"));
                summary.problems.push(FileProblem { file: shown, problem });
                continue;
            }
        };
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let file_exists = |name: &str| base.join(name).is_file();
        let loaded = scenario::load(&text, &file_exists);
        for (_, resource) in &loaded.resources {
            match resource {
                Resource::Scenario(_) => summary.scenarios += 1,
                Resource::GameDay(_) => summary.game_days += 1,
            }
        }
        summary
            .problems
            .extend(loaded.problems.into_iter().map(|problem| FileProblem {
                file: shown.clone(),
                problem,
            }));
    }
    summary.valid = summary.problems.is_empty();

    let mut stdout = std::io::stdout().lock();
    match output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut stdout, &summary).context("writing JSON")?;
            writeln!(stdout)?;
        }
        Output::Text => {
            for FileProblem { file, problem } in &summary.problems {
                writeln!(
                    stdout,
                    "{file}:{}",
                    disasterpiece::report::text::terminal_lines(&problem.to_string())
                )?;
            }
            let documents = plural(summary.scenarios, "scenario", "scenarios")
                + ", "
                + &plural(summary.game_days, "game day", "game days");
            let files = plural(summary.files, "file", "files");
            if summary.valid {
                eprintln!("valid: {files} ({documents})");
            } else {
                let problems = plural(summary.problems.len(), "problem", "problems");
                eprintln!("invalid: {problems} in {files} (valid: {documents})");
            }
        }
    }
    Ok(if summary.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The files to read, in a stable order; a path that cannot be listed comes with its problem.
fn expand(paths: &[PathBuf], recursive: bool) -> Vec<(PathBuf, Option<Problem>)> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = out.len();
            collect_dir(path, recursive, &mut out);
            if out.len() == before {
                let problem = Problem::new(Pos::START, "", "no .yaml or .yml files in this directory")
                    .with_hint("name the files, or add --recursive to read subdirectories");
                out.push((path.clone(), Some(problem)));
            }
        } else if path.exists() {
            out.push((path.clone(), None));
        } else {
            let problem = Problem::new(Pos::START, "", "no such file or directory");
            out.push((path.clone(), Some(problem)));
        }
    }
    out
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<(PathBuf, Option<Problem>)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            out.push((
                dir.to_path_buf(),
                Some(Problem::new(
                    Pos::START,
                    "",
                    format!("cannot list the directory: {err}"),
                )),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if recursive {
                collect_dir(&path, recursive, out);
            }
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push((path, None));
        }
    }
}
