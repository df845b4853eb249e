//! Against a real cluster: set `DISASTERPIECE_E2E_KUBECONFIG` to a kubeconfig whose current
//! context may create namespaces. Without it these tests are ignored (build.rs), and
//! `cargo test` counts them so; run with `--ignored` without it, they fail.
//!
//! The test makes its own namespace (PodSecurity `privileged`, for NET_ADMIN), a Deployment of
//! `registry.k8s.io/pause`, and deletes the namespace at the end, whatever happened.

use std::time::Duration;

use disasterpiece::fault::{self, Context, Outcome};
use disasterpiece::scenario::model::{FaultKind, NetworkDelay, PodKill, Target, TargetKind};
use disasterpiece::target::Unit;
use disasterpiece::target::resolve::resolve;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, AttachParams, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

async fn cluster() -> kube::Client {
    let path = std::env::var_os("DISASTERPIECE_E2E_KUBECONFIG")
        .expect("this test needs a real cluster: set DISASTERPIECE_E2E_KUBECONFIG to a kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("read DISASTERPIECE_E2E_KUBECONFIG");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("client")
}

async fn until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes the namespace when dropped, so a failed assertion leaves nothing behind.
struct Scratch {
    client: kube::Client,
    name: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = runtime {
                rt.block_on(async {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::default())
                        .await;
                });
            }
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_e2e_cluster),
    ignore = "needs a real cluster: DISASTERPIECE_E2E_KUBECONFIG=… cargo test --test e2e"
)]
async fn pod_kill_and_network_delay_on_a_real_cluster() {
    let client = cluster().await;
    let ns = format!("disasterpiece-e2e-{}", std::process::id());
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns,
        "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the namespace");
    let _scratch = Scratch {
        client: client.clone(),
        name: ns.clone(),
    };
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "target"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "target"}},
            "template": {"metadata": {"labels": {"app": "target"}},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}},
    }))
    .expect("deployment");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the deployment");
    until("two pods are Ready", Duration::from_secs(180), async || {
        deployments
            .get("target")
            .await
            .ok()
            .and_then(|d| d.status?.ready_replicas)
            == Some(2)
    })
    .await;
    let target = Target {
        namespace: Some(ns.clone()),
        kind: TargetKind::Deployment,
        name: Some("target".into()),
        selector: None,
    };
    let pods = resolve(&client, &target, Unit::Pod).await.expect("resolve").candidates;
    assert_eq!(pods.len(), 2);
    let ctx = Context {
        client: client.clone(),
        exercise: "e2e".into(),
        dry_run: false,
        in_pod: fault::in_pod::Settings {
            image: fault::in_pod::DEFAULT_IMAGE.into(),
            duration: Duration::from_secs(120),
        },
        clock: Default::default(),
    };

    // networkDelay: netem is on eth0 while the fault runs, and gone after the revert.
    let delay = NetworkDelay {
        latency: Duration::from_millis(300).into(),
        jitter: None,
        correlation: None,
        destination: None,
    };
    let prepared = fault::prepare(&ctx, FaultKind::NetworkDelay(&delay), &pods[0])
        .await
        .expect("prepare");
    assert_eq!(fault::apply(&ctx, &prepared).await.expect("apply"), Outcome::Injected);
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut shown = api
        .exec(
            &pods[0].name,
            ["tc", "qdisc", "show", "dev", "eth0"],
            &AttachParams::default().container("dp-delay-e2e").stderr(false),
        )
        .await
        .expect("exec tc");
    let mut out = String::new();
    if let Some(mut stdout) = shown.stdout() {
        use tokio::io::AsyncReadExt;
        let _ = stdout.read_to_string(&mut out).await;
    }
    let _ = shown.join().await;
    assert!(out.contains("netem") && out.contains("delay 300ms"), "{out}");
    for undo in &prepared.undo {
        fault::revert(&ctx, undo).await.expect("revert");
    }
    let pod = api.get(&pods[0].name).await.expect("get");
    let state = pod
        .status
        .and_then(|s| s.ephemeral_container_statuses)
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.state?.terminated)
        .expect("the fault container ended");
    assert_eq!(state.exit_code, 0, "{state:?}");
    assert_eq!(state.message.as_deref().map(str::trim), Some("netem removed from eth0"));

    // podKill: the pod goes, the Deployment replaces it.
    let kill = PodKill {
        grace_period_seconds: Some(0),
    };
    let prepared = fault::prepare(&ctx, FaultKind::PodKill(&kill), &pods[1])
        .await
        .expect("prepare");
    assert_eq!(fault::apply(&ctx, &prepared).await.expect("apply"), Outcome::Injected);
    until("the pod is replaced", Duration::from_secs(180), async || {
        let listed = api
            .list(&ListParams::default().labels("app=target"))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        listed
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some(pods[1].name.as_str()))
            && deployments
                .get("target")
                .await
                .ok()
                .and_then(|d| d.status?.ready_replicas)
                == Some(2)
    })
    .await;
}
