//! `disasterpiece plan`: the dry run changes nothing, explains its choices, and refuses what
//! may not run — against the simulator over HTTP.

use std::process::Command;
use std::time::Duration;

use disasterpiece::engine::preflight::plan;
use disasterpiece::scenario::{self, Resource, Scenario};
use disasterpiece::sim::{Seed, Sim};
use disasterpiece::target::guard::Exclusion;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

mod common;
use common::{eventually, start};

fn scenario(file: &str) -> Scenario {
    let text = std::fs::read_to_string(file).expect("read");
    let loaded = scenario::load(&text, &|_| true);
    match loaded.resources.into_iter().next() {
        Some((_, Resource::Scenario(s))) => *s,
        other => panic!("{file}: no scenario ({other:?}, {:?})", loaded.problems),
    }
}

async fn shop(builder: disasterpiece::sim::SimBuilder) -> (Sim, kube::Client) {
    start(
        builder
            .seed(Seed::Shop)
            .replace_delay(Duration::from_millis(200))
            .ready_delay(Duration::from_millis(100)),
    )
    .await
}

#[tokio::test]
async fn plan_changes_nothing_and_explains_its_choice() {
    let (sim, client) = shop(Sim::builder()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sim.resource_version();
    let planned = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        sim.url(),
        7,
        &Default::default(),
    )
    .await;
    assert_eq!(sim.resource_version(), before, "plan wrote nothing");
    assert!(planned.runnable, "{:?}", planned.refusals);
    let fault = &planned.faults[0];
    assert_eq!(
        (fault.fault.as_str(), fault.wanted, fault.chosen.len()),
        ("podKill", 2, 1)
    );
    assert!(
        fault
            .excluded
            .iter()
            .all(|e| e.reason == Exclusion::WouldBreakMinHealthy { left: 1, min: 2 }),
        "{:?}",
        fault.excluded
    );
    assert_eq!(fault.steps.len(), 1);
    assert!(
        fault.steps[0].does.starts_with("delete pod shop/checkout-"),
        "{}",
        fault.steps[0].does
    );
    let steady = &planned.steady_state[0];
    assert_eq!(steady.name, "checkout answers");
    assert!(
        steady.sample.observed.starts_with("200 in"),
        "reached through the service proxy: {}",
        steady.sample.observed
    );
    assert!(
        planned
            .permissions
            .iter()
            .any(|p| p.permission.describe() == "delete pods in shop" && p.allowed)
    );
    assert!(
        planned.dry_run.iter().all(|d| d.refused.is_none()),
        "{:?}",
        planned.dry_run
    );

    let again = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        sim.url(),
        7,
        &Default::default(),
    )
    .await;
    assert_eq!(
        again.faults[0].chosen, fault.chosen,
        "the same seed chooses the same target"
    );
}

#[tokio::test]
async fn plan_refuses_without_permission() {
    let (_sim, client) = shop(Sim::builder().deny("delete", "pods")).await;
    let planned = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        "sim",
        1,
        &Default::default(),
    )
    .await;
    assert!(!planned.runnable);
    assert!(
        planned
            .refusals
            .contains(&"not allowed to delete pods in shop".to_owned()),
        "{:?}",
        planned.refusals
    );
}

#[tokio::test]
async fn plan_refuses_when_the_steady_state_does_not_hold() {
    let (_sim, client) = shop(Sim::builder()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let zero = Patch::Merge(json!({"spec": {"replicas": 0}}));
    deployments
        .patch_scale("checkout", &PatchParams::default(), &zero)
        .await
        .expect("scale");
    eventually("checkout has no pods left", || async {
        let d = deployments.get("checkout").await.expect("get");
        d.status.and_then(|s| s.replicas).unwrap_or(0) == 0
    })
    .await;
    let refused = plan(
        &client,
        &scenario("scenarios/checkout-pod-loss.yaml"),
        "sim",
        1,
        &Default::default(),
    )
    .await
    .refusals;
    let steady = refused
        .iter()
        .any(|r| r.starts_with("steady state `checkout answers` does not hold: 503"));
    assert!(steady, "{refused:?}");
    // Terminating pods are still candidates, excluded as not Ready; gone pods are not.
    let empty = refused.iter().any(|r| r.starts_with("podKill: nothing to act on ("));
    assert!(empty, "{refused:?}");
}

#[tokio::test]
async fn plan_refuses_a_fault_this_version_cannot_inject() {
    let (_sim, client) = shop(Sim::builder()).await;
    let planned = plan(
        &client,
        &scenario("scenarios/frontend-latency.yaml"),
        "sim",
        1,
        &Default::default(),
    )
    .await;
    assert_eq!(
        planned.refusals,
        ["networkDelay: this fault kind is not available in this version"]
    );
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run disasterpiece")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_command_exits_0_when_runnable_and_2_when_refused_or_invalid() {
    let (sim, _client) = shop(Sim::builder()).await;
    let kubeconfig = sim.kubeconfig_path().to_str().expect("utf-8").to_owned();
    let runnable = tokio::task::spawn_blocking({
        let k = kubeconfig.clone();
        move || {
            cli(&[
                "plan",
                "scenarios/frontend-scale-down.yaml",
                "--kubeconfig",
                &k,
                "--output",
                "json",
                "--seed",
                "3",
            ])
        }
    })
    .await
    .expect("join");
    assert_eq!(
        runnable.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&runnable.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&runnable.stdout).expect("JSON");
    assert_eq!(json["runnable"], true);
    assert_eq!(
        json["faults"][0]["steps"][0]["does"],
        "scale Deployment shop/frontend from 3 to 1 replicas"
    );
    assert_eq!(
        json["faults"][0]["steps"][0]["undoneBy"][0],
        "scale Deployment shop/frontend back to 3"
    );

    let text = tokio::task::spawn_blocking({
        let k = kubeconfig.clone();
        move || cli(&["plan", "scenarios/frontend-latency.yaml", "--kubeconfig", &k])
    })
    .await
    .expect("join");
    assert_eq!(text.status.code(), Some(2));
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("Verdict: REFUSED") && out.contains("networkDelay: this fault kind is not available"),
        "{out}"
    );

    let invalid = tokio::task::spawn_blocking(move || {
        cli(&[
            "plan",
            "scenarios/invalid/percent-typo.yaml",
            "--kubeconfig",
            &kubeconfig,
        ])
    })
    .await
    .expect("join");
    assert_eq!(invalid.status.code(), Some(2));
    let err = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        err.contains("percent-typo.yaml:8:23: spec.blastRadius.mode: unknown value `percnt`")
            && err.contains("nothing was sent to the cluster"),
        "{err}"
    );
}

#[test]
fn a_protected_namespace_given_with_namespace_is_refused_before_the_cluster_is_asked() {
    // No cluster at all: the refusal must come first.
    let output = cli(&[
        "plan",
        "scenarios/checkout-pod-loss.yaml",
        "--namespace",
        "kube-system",
        "--kubeconfig",
        "/nonexistent",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--namespace kube-system: namespace `kube-system` is protected"),
        "{err}"
    );
}
