//! `disasterpiece gameday run FILE` against the simulator: stages in order, a later stage only
//! after the earlier one confirmed every hypothesis.

use std::path::Path;

mod common;
use common::{fast_shop, start};

const CONFIRMS: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-pod-loss}
spec:
  hypothesis: Checkout keeps answering while a pod is lost.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{podKill: {gracePeriodSeconds: 0}}]
  duration: 2s
  expect:
    - {name: keeps answering, http: {url: 'http://checkout.shop.svc/'}, throughout: true}
  recovery: {within: 20s}
";

const REFUTES: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: payments-refutes}
spec:
  hypothesis: Payments has 99 replicas (it does not).
  target: {namespace: shop, kind: Deployment, name: payments}
  faults: [{podKill: {gracePeriodSeconds: 0}}]
  duration: 2s
  expect:
    - {name: ninety-nine, kube: {readyReplicas: {equals: 99}}, within: 2s}
  recovery: {within: 20s}
";

fn gameday(dev: &str, prod: &str) -> String {
    format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: GameDay
metadata: {{name: checkout}}
spec:
  host: {{name: Alice}}
  participants: [{{name: Bob, role: operator}}]
  stages:
    - {{name: dev, namespaces: [shop], scenarios: [{{file: {dev}}}]}}
    - {{name: prod, namespaces: [shop], scenarios: [{{file: {prod}}}]}}
"
    )
}

async fn run_gameday(dir: &Path, kubeconfig: &Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args([
            "gameday",
            "run",
            "gameday.yaml",
            "--sample-every",
            "250ms",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run the game day")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_run_in_order_and_prod_waits_for_dev_to_confirm() {
    let (sim, _client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gameday-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("confirms.yaml"), CONFIRMS).expect("write");
    std::fs::write(dir.join("refutes.yaml"), REFUTES).expect("write");
    let reports = |dir: &Path| std::fs::read_dir(dir.join("reports")).map_or(0, |d| d.count());

    std::fs::write(dir.join("gameday.yaml"), gameday("confirms.yaml", "confirms.yaml")).expect("write");
    let output = run_gameday(&dir, sim.kubeconfig_path()).await;
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dev = out.find("== stage dev").expect("dev ran");
    let prod = out.find("== stage prod").expect("prod ran");
    assert!(dev < prod && out.contains("every stage confirmed"), "{out}");
    assert_eq!(reports(&dir), 2);

    std::fs::remove_dir_all(dir.join("reports")).expect("clean");
    std::fs::write(dir.join("gameday.yaml"), gameday("refutes.yaml", "confirms.yaml")).expect("write");
    let output = run_gameday(&dir, sim.kubeconfig_path()).await;
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "stage dev did not confirm its hypotheses (payments-refutes: Refuted): the later stages are skipped"
        ),
        "{out}"
    );
    assert!(!out.contains("== stage prod"), "{out}");
    assert_eq!(reports(&dir), 1);
}

/// `gameday run` sends what the controller sends (each exercise started and finished) to the
/// GameDay's webhook, and ends with the day's summary, printed and sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gameday_run_notifies_its_webhook_and_prints_the_days_summary() {
    let (sim, _client) = start(fast_shop()).await;
    let (url, got) = common::webhook().await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gameday-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("confirms.yaml"), CONFIRMS).expect("write");
    let text = gameday("confirms.yaml", "confirms.yaml") + &format!("  notify: {{webhook: '{url}'}}\n");
    std::fs::write(dir.join("gameday.yaml"), text).expect("write");
    let output = run_gameday(&dir, sim.kubeconfig_path()).await;
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("game day checkout: 2 exercise(s)"), "{out}");
    assert!(
        out.lines()
            .filter(|l| l.contains("checkout-pod-loss  CONFIRMED"))
            .count()
            == 2,
        "{out}"
    );
    let sent = got.lock().expect("lock").clone();
    let events: Vec<&str> = sent.iter().filter_map(|m| m["event"].as_str()).collect();
    assert_eq!(
        events,
        ["started", "finished", "started", "finished", "summary"],
        "{sent:#?}"
    );
    assert!(
        sent[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Game day checkout, stage dev: exercise"))
    );
    assert_eq!(sent[1]["verdict"], "CONFIRMED");
    assert_eq!(sent[4]["exercises"].as_array().map(Vec::len), Some(2));
}
