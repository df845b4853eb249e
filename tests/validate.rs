//! `disasterpiece validate`: every problem of a file, at its line and column, with a hint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use disasterpiece::scenario::model::{HasProbe, PROBE_KINDS};
use disasterpiece::scenario::validate::FAULT_KINDS;
use disasterpiece::scenario::{self, Loaded, Problem, Resource};

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .arg("validate")
        .args(args)
        .output()
        .expect("run disasterpiece")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn load(text: &str) -> Loaded {
    scenario::load(text, &|_| true)
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// `# expect: LINE:COLUMN: fragment` on the first line of each invalid example.
fn expectation(file: &Path) -> (usize, usize, String) {
    let text = std::fs::read_to_string(file).expect("read");
    let first = text.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("# expect: ").unwrap_or_else(|| {
        panic!(
            "{}: first line must be `# expect: LINE:COLUMN: fragment`",
            file.display()
        )
    });
    let mut parts = rest.splitn(3, ':');
    let line = parts.next().and_then(|l| l.parse().ok()).expect("line");
    let column = parts.next().and_then(|c| c.parse().ok()).expect("column");
    let fragment = parts.next().expect("fragment").trim().to_owned();
    (line, column, fragment)
}

fn rendered(problem: &Problem) -> String {
    format!("{}: {}", problem.path, problem.message)
}

#[test]
fn every_invalid_example_reports_its_expected_error_at_its_position() {
    let files = yaml_files("scenarios/invalid");
    assert!(
        files.len() >= 15,
        "scenarios/invalid holds {} files, want at least 15",
        files.len()
    );
    for file in files {
        let (line, column, fragment) = expectation(&file);
        let text = std::fs::read_to_string(&file).expect("read");
        let loaded = load(&text);
        assert!(
            loaded.resources.is_empty(),
            "{}: an invalid file yielded a valid document",
            file.display()
        );
        let found = loaded
            .problems
            .iter()
            .any(|p| p.line == line && p.column == column && rendered(p).contains(&fragment));
        assert!(
            found,
            "{}: expected `{fragment}` at {line}:{column}, got:\n{}",
            file.display(),
            loaded
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn the_cli_exits_1_and_prints_each_expected_problem_as_file_line_column() {
    let files = yaml_files("scenarios/invalid");
    let args: Vec<&str> = files.iter().map(|f| f.to_str().expect("utf-8 path")).collect();
    let output = validate(&args);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    for file in &files {
        let (line, column, fragment) = expectation(file);
        let prefix = format!("{}:{line}:{column}: ", file.display());
        assert!(
            out.lines().any(|l| l.starts_with(&prefix) && l.contains(&fragment)),
            "no line `{prefix}…{fragment}` in:\n{out}"
        );
    }
}

#[test]
fn the_example_directory_is_valid_and_skips_the_invalid_subdirectory() {
    let output = validate(&["scenarios/"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output), "", "a valid run prints no problems");
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("valid:"), "{summary}");

    // With --recursive, the invalid examples are read too.
    let output = validate(&["--recursive", "scenarios/"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("scenarios/invalid/percent-typo.yaml:"));
}

#[test]
fn the_examples_use_every_fault_kind_and_every_probe_kind() {
    let mut faults = std::collections::BTreeSet::new();
    let mut probes = std::collections::BTreeSet::new();
    let mut scenarios = 0;
    let mut stages: Vec<Vec<String>> = Vec::new();
    for file in yaml_files("scenarios") {
        let text = std::fs::read_to_string(&file).expect("read");
        let base = file.parent().expect("parent").to_path_buf();
        let loaded = scenario::load(&text, &|name| base.join(name).is_file());
        assert!(loaded.problems.is_empty(), "{}: {:?}", file.display(), loaded.problems);
        for (_, resource) in loaded.resources {
            match resource {
                Resource::Scenario(s) => {
                    scenarios += 1;
                    for fault in &s.spec.faults {
                        faults.extend(fault.kinds().into_iter().map(|(name, _)| name));
                    }
                    let spec = &s.spec;
                    let clauses = spec.steady_state.iter().flat_map(|c| c.probes());
                    let clauses = clauses.chain(spec.expect.iter().flat_map(|c| c.probes()));
                    let clauses = clauses.chain(spec.abort_when.iter().flat_map(|c| c.probes()));
                    probes.extend(clauses.map(|(name, _)| name));
                }
                Resource::GameDay(g) => stages.push(g.spec.stages.iter().map(|s| s.name.clone()).collect()),
            }
        }
    }
    assert!(scenarios >= 8, "{scenarios} example scenarios, want at least 8");
    assert_eq!(
        faults,
        FAULT_KINDS.into_iter().collect(),
        "fault kinds used by the examples"
    );
    assert_eq!(
        probes,
        PROBE_KINDS.into_iter().collect(),
        "probe kinds used by the examples"
    );
    assert!(
        stages
            .iter()
            .any(|s| s.contains(&"dev".to_owned()) && s.contains(&"prod".to_owned())),
        "no GameDay with a dev and a prod stage: {stages:?}"
    );
}

const SCENARIO_HEAD: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-pod-loss}
spec:
  hypothesis: Checkout keeps serving.
  target: {namespace: shop, kind: Deployment, name: checkout}
";

#[test]
fn a_misspelled_mode_gets_line_column_allowed_values_and_a_suggestion() {
    let dir = tempdir("percnt");
    let file = dir.join("typo.yaml");
    let text = format!(
        "{SCENARIO_HEAD}  blastRadius: {{mode: percnt}}\n  faults: [{{podKill: {{}}}}]\n  duration: 2m\n  expect:\n    - {{name: ready, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 60s}}\n"
    );
    std::fs::write(&file, text).expect("write");
    let output = validate(&[file.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    let expected = format!(
        "{}:7:23: spec.blastRadius.mode: unknown value `percnt`; expected one of `one`, `count`, `percent`, `all`\n  hint: did you mean `percent`?\n",
        file.display()
    );
    assert_eq!(out, expected);
}

#[test]
fn escape_sequences_in_a_file_do_not_reach_the_terminal() {
    let dir = tempdir("escape");
    let file = dir.join("escape.yaml");
    // A mode that clears the screen and sets the window title, as YAML escapes.
    let text = format!(
        "{SCENARIO_HEAD}  blastRadius: {{mode: \"x\\e[2J\\e]0;owned\\a\"}}\n  faults: [{{podKill: {{}}}}]\n  duration: 2m\n  expect:\n    - {{name: ready, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 60s}}\n"
    );
    std::fs::write(&file, text).expect("write");
    let output = validate(&[file.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.contains("spec.blastRadius.mode: unknown value"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
}

#[test]
fn all_problems_of_a_file_are_reported_not_just_the_first() {
    let text = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: Bad_Name}
spec:
  hypothesis: x
  target: {namespace: kube-system, kind: Deployment, name: coredns}
  blastRadius: {mode: percent, value: 140, minHelthy: 1}
  faults:
    - nodeDrain: {}
    - podKil: {}
  duration: 45m
  expect:
    - {name: a, kube: {readyReplicas: {atLeast: 3}}, within: 60s, throughout: true}
    - {name: a, prometheus: {query: '', below: 1}, within: 1m}
";
    let loaded = load(text);
    let got: Vec<(usize, String)> = loaded.problems.iter().map(|p| (p.line, rendered(p))).collect();
    let expected = [
        (3, "metadata.name: `Bad_Name` is not a valid name"),
        (6, "spec.target.namespace: namespace `kube-system` is protected"),
        (
            7,
            "spec.blastRadius.value: must be between 1 and 100 for mode percent (got 140)",
        ),
        (7, "spec.blastRadius.minHelthy: unknown field `minHelthy`"),
        (
            9,
            "spec.faults[0].nodeDrain: `nodeDrain` cannot act on a Deployment target",
        ),
        (10, "spec.faults[1].podKil: unknown field `podKil`"),
        (11, "spec.duration: must be at most 30m (got 45m)"),
        (13, "spec.expect[0].throughout: set only one of `within`, `throughout`"),
        (14, "spec.expect[1].name: duplicate clause name `a`"),
        (14, "spec.expect[1].prometheus.query: the PromQL query is empty"),
    ];
    for (line, fragment) in expected {
        assert!(
            got.iter().any(|(l, r)| *l == line && r.contains(fragment)),
            "missing `{fragment}` on line {line}; got {got:#?}"
        );
    }
    assert_eq!(got.len(), expected.len(), "unexpected extra problems: {got:#?}");
}

#[test]
fn json_output_carries_the_same_problems_for_tools() {
    let output = validate(&[
        "--output",
        "json",
        "scenarios/invalid/percent-typo.yaml",
        "scenarios/checkout-pod-loss.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], false);
    assert_eq!(report["files"], 2);
    assert_eq!(report["scenarios"], 1);
    let problems = report["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p["file"], "scenarios/invalid/percent-typo.yaml");
    assert_eq!((p["line"].as_u64(), p["column"].as_u64()), (Some(8), Some(23)));
    assert_eq!(p["path"], "spec.blastRadius.mode");
    assert_eq!(p["hint"], "did you mean `percent`?");
}

#[test]
fn each_document_of_a_multi_document_file_is_checked_with_its_own_lines() {
    let text = format!(
        "{SCENARIO_HEAD}  faults: [{{podKill: {{}}}}]\n  duration: 2m\n  expect:\n    - {{name: ready, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 60s}}\n---\n{SCENARIO_HEAD}  faults: [{{scale: {{replicas: 1}}}}]\n  duration: 2h\n  expect:\n    - {{name: ready, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 60s}}\n"
    );
    let loaded = load(&text);
    assert_eq!(loaded.resources.len(), 1, "the first document is valid");
    assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
    assert_eq!((loaded.problems[0].line, loaded.problems[0].column), (19, 13));
    assert!(loaded.problems[0].message.contains("at most 30m (got 2h)"));
}

#[test]
fn a_game_day_naming_a_missing_scenario_file_is_refused() {
    let dir = tempdir("gameday");
    let file = dir.join("gameday.yaml");
    std::fs::write(dir.join("present.yaml"), "").expect("write");
    let text = "apiVersion: disasterpiece.dev/v1alpha1
kind: GameDay
metadata: {name: q4}
spec:
  host: {name: Ana}
  stages:
    - name: dev
      namespaces: [shop-dev]
      scenarios: [{file: present.yaml}, {file: missing.yaml}]
";
    std::fs::write(&file, text).expect("write");
    let output = validate(&[file.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out.contains(":9:48: spec.stages[0].scenarios[1].file: scenario file `missing.yaml` does not exist"),
        "{out}"
    );
    assert!(!out.contains("present.yaml"), "{out}");
}

#[test]
fn a_path_that_does_not_exist_is_a_problem_not_a_crash() {
    let output = validate(&["scenarios/no-such-file.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "scenarios/no-such-file.yaml:1:1: no such file or directory\n"
    );
}

#[test]
fn a_file_without_documents_is_reported() {
    let loaded = load("# nothing but a comment\n");
    assert_eq!(loaded.problems.len(), 1);
    assert!(loaded.problems[0].message.contains("holds no document"));
}

/// A fresh directory under the target dir, for files a test writes.
fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("validate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
