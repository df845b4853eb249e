//! Finds the external programs some integration tests need, so that a test whose program is
//! missing is marked `#[ignore = "needs …"]` and counted as ignored in `cargo test`'s summary
//! line, never as passed. Each program sets a cfg (`has_prometheus`, …) that the tests read
//! with `#[cfg_attr(not(has_prometheus), ignore = "needs prometheus …")]`.
//!
//! A program is found through its environment variable (an explicit path), else by name on
//! `PATH`. Cargo runs this again when `PATH` or one of those variables changes, when a program
//! found goes away, and when a directory of `PATH` gains or loses a file (an install).
//! Nothing here affects the library or the binary: only which tests run.

use std::path::{Path, PathBuf};

#[path = "crates/sim/src/runtime/probe.rs"]
mod probe;

/// (cfg, environment variable naming the program, names to look for on PATH).
const PROGRAMS: &[(&str, Option<&str>, &[&str])] = &[
    ("has_prometheus", Some("DISASTERPIECE_PROMETHEUS"), &["prometheus"]),
    (
        "has_alertmanager",
        Some("DISASTERPIECE_ALERTMANAGER"),
        &["prometheus-alertmanager", "alertmanager"],
    ),
    ("has_kubectl", Some("DISASTERPIECE_KUBECTL"), &["kubectl"]),
    ("has_chromium", Some("DISASTERPIECE_CHROMIUM"), &["chromium"]),
    ("has_xmllint", None, &["xmllint"]),
    ("has_helm", Some("DISASTERPIECE_HELM"), &["helm"]),
    ("has_shellcheck", None, &["shellcheck"]),
    ("has_stress_ng", None, &["stress-ng"]),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=crates/sim/src/runtime/probe.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).filter(|d| d.is_dir()).collect();
    for dir in &dirs {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    for (cfg, variable, names) in PROGRAMS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let named = variable.and_then(|v| {
            println!("cargo::rerun-if-env-changed={v}");
            std::env::var_os(v).map(PathBuf::from)
        });
        let found = named.filter(|p| is_program(p)).or_else(|| {
            dirs.iter()
                .flat_map(|d| names.iter().map(move |n| d.join(n)))
                .find(|p| is_program(p))
        });
        match found {
            Some(program) => {
                println!("cargo::rerun-if-changed={}", program.display());
                println!("cargo::rustc-cfg={cfg}");
            }
            None if std::env::var_os("CI").is_some() => {
                println!("cargo::warning=no {}: the tests that need it are ignored", names[0]);
            }
            None => {}
        }
    }
    // Containers as real processes in the simulator (root, util-linux, mount and PID
    // namespaces), for the in-pod tests that run fault scripts for real.
    println!("cargo::rustc-check-cfg=cfg(has_container_runtime)");
    let namespaces = probe::can_make_containers().is_ok();
    if namespaces {
        println!("cargo::rustc-cfg=has_container_runtime");
    } else if std::env::var_os("CI").is_some() {
        println!(
            "cargo::warning=cannot make containers (root and util-linux needed): the tests that run fault scripts as processes are ignored"
        );
    }
    // What a real API server answered, for tests/conformance.rs (beside the repository).
    println!("cargo::rustc-check-cfg=cfg(has_conformance_corpus)");
    // (Watched only where it exists: Cargo reruns a script every time for a missing path.)
    let corpus = Path::new("../shared/k8s-conformance/cases.jsonl");
    if corpus.is_file() {
        println!("cargo::rerun-if-changed={}", corpus.display());
        println!("cargo::rustc-cfg=has_conformance_corpus");
    }
    // A real cluster for tests/e2e.rs.
    println!("cargo::rustc-check-cfg=cfg(e2e_disruptive)");
    println!("cargo::rerun-if-env-changed=DISASTERPIECE_E2E_DISRUPTIVE");
    if std::env::var_os("DISASTERPIECE_E2E_DISRUPTIVE").is_some() {
        println!("cargo::rustc-cfg=e2e_disruptive");
    }
    println!("cargo::rustc-check-cfg=cfg(has_e2e_cluster)");
    println!("cargo::rerun-if-env-changed=DISASTERPIECE_E2E_KUBECONFIG");
    if std::env::var_os("DISASTERPIECE_E2E_KUBECONFIG").is_some() {
        println!("cargo::rustc-cfg=has_e2e_cluster");
    }
}

fn is_program(path: &Path) -> bool {
    let Ok(meta) = path.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}
