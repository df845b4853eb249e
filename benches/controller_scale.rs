//! The controller at rest in a cluster that has used it for months: 1 000 finished Exercises
//! and 100 GameDays (scheduled at 03:00 UTC, so none is due), in the embedded simulator.
//! `disasterpiece controller -A --leader-election default/disasterpiece` (the release binary,
//! `$DISASTERPIECE_BIN` or target/release/disasterpiece) runs against it as a process of its
//! own, holding the Lease as a chart-installed replica does; measured:
//! - API requests per second while idle (60 s, after 5 s to settle), every request counted by
//!   the simulator, the Lease's renewals included;
//! - its resident memory (VmRSS, VmHWM);
//! - `kubectl create` → `Running`: 20 Exercises created one after another, from the create
//!   request to the status the controller writes (p50, p99).
//!
//! Run with `cargo build --release && cargo bench --bench controller_scale`. A benchmark, not
//! a test: nothing here fails on a number.

use std::time::{Duration, Instant};

use disasterpiece::controller::crd::{Exercise, ExerciseSpec, Phase};
use disasterpiece::scenario::gameday::GameDayResource;
use disasterpiece::scenario::model::ScenarioResource;
use disasterpiece_sim::{Seed, Sim};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const EXERCISES: usize = 1000;
const GAMEDAYS: usize = 100;
const CREATED: usize = 20;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let sim = Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(200))
        .ready_delay(Duration::from_millis(100))
        .start()
        .await
        .expect("simulator");
    let client = sim.client().await.expect("client");
    install(&client).await;
    let bin = std::env::var("DISASTERPIECE_BIN").unwrap_or_else(|_| "target/release/disasterpiece".into());
    let mut controller = tokio::process::Command::new(&bin)
        .args([
            "controller",
            "-A",
            "--leader-election",
            "default/disasterpiece",
            "--identity",
            "bench-0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(sim.kubeconfig_path())
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} (cargo build --release first): {e}"));
    let pid = controller.id().expect("pid");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (before, started) = (sim.requests_served(), Instant::now());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let rate = (sim.requests_served() - before) as f64 / started.elapsed().as_secs_f64();
    let (rss, peak) = (kib(pid, "VmRSS:"), kib(pid, "VmHWM:"));

    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    let mut latencies = Vec::new();
    for i in 0..CREATED {
        let name = format!("fresh-{i:02}");
        let at = Instant::now();
        exercises
            .create(&PostParams::default(), &exercise(&name))
            .await
            .expect("create");
        loop {
            let running = exercises
                .get(&name)
                .await
                .ok()
                .and_then(|e| e.status?.phase)
                .is_some_and(|p| p != Phase::Pending);
            if running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(at.elapsed());
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "| controller at rest (leader), {EXERCISES} finished Exercises, {GAMEDAYS} GameDays | {rate:.2} API requests/s | RSS {:.1} MiB (peak {:.1} MiB) | create → Running p50 {:.0} ms, p99 {:.0} ms |",
        rss / 1024.0,
        peak / 1024.0,
        pick(0.5).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0
    );
    let _ = controller.start_kill();
    let _ = controller.wait().await;
}

/// The CRDs, a Scenario, the finished Exercises and the GameDays.
async fn install(client: &kube::Client) {
    disasterpiece::controller::crd::install(client).await.expect("CRDs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let scenario: ScenarioResource = serde_json::from_value(json!({
        "apiVersion": "disasterpiece.dev/v1alpha1", "kind": "Scenario",
        "metadata": {"name": "bench-pod-loss", "namespace": "shop"},
        "spec": {"hypothesis": "Measured, not judged.",
            "target": {"namespace": "shop", "kind": "Deployment", "name": "checkout"},
            "blastRadius": {"mode": "one", "respectPodDisruptionBudgets": false},
            "faults": [{"podKill": {"gracePeriodSeconds": 0}}],
            "duration": "1s",
            "expect": [{"name": "some ready", "kube": {"readyReplicas": {"atLeast": 1}}, "throughout": true}]}
    }))
    .expect("scenario");
    Api::<ScenarioResource>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &scenario)
        .await
        .expect("scenario");
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    for i in 0..EXERCISES {
        let name = format!("done-{i:04}");
        exercises
            .create(&PostParams::default(), &exercise(&name))
            .await
            .expect("exercise");
        let status = json!({"status": {"phase": "Finished", "verdict": "Confirmed",
            "startedAt": "2026-06-01T10:00:00Z", "endedAt": "2026-06-01T10:01:00Z"}});
        exercises
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("status");
    }
    let gamedays: Api<GameDayResource> = Api::namespaced(client.clone(), "shop");
    for i in 0..GAMEDAYS {
        let gameday: GameDayResource = serde_json::from_value(json!({
            "apiVersion": "disasterpiece.dev/v1alpha1", "kind": "GameDay",
            "metadata": {"name": format!("nightly-{i:03}"), "namespace": "shop"},
            "spec": {"host": {"name": "Alice"}, "schedule": {"cron": "0 3 * * *", "timeZone": "UTC"},
                "stages": [{"name": "dev", "namespaces": ["shop"], "scenarios": [{"name": "bench-pod-loss"}]}]}
        }))
        .expect("game day");
        gamedays
            .create(&PostParams::default(), &gameday)
            .await
            .expect("game day");
    }
}

fn exercise(name: &str) -> Exercise {
    Exercise::new(
        name,
        ExerciseSpec {
            scenario: "bench-pod-loss".into(),
            seed: Some(1),
            sample_every: Some(Duration::from_millis(200).into()),
            ..Default::default()
        },
    )
}

/// A `kB` field of /proc/PID/status.
fn kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}
