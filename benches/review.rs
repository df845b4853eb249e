//! `disasterpiece review` over 10 000 reports (issue 26): wall time and peak memory of the
//! release binary, median of 5, on report files like real ones (a run of the pod-loss demo on
//! the simulator, each expectation carrying 120 samples, as a 2-minute window sampled every
//! second does), spread over 52 weeks and 20 teams.
//!
//! Run with `cargo bench --bench review` (it needs the release binary: `cargo build
//! --release`). A benchmark, not a test: nothing here fails on a number.

use std::time::{Duration, Instant};

use disasterpiece::engine::run::{RunOptions, Silent, run};
use disasterpiece::report::model::Observation;
use disasterpiece::scenario::{self, Resource};
use disasterpiece_sim::{Seed, Sim};

const REPORTS: usize = 10_000;
const RUNS: usize = 5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = Sim::builder().seed(Seed::Shop).start().await.expect("sim");
    let client = sim.raw_client().await.expect("client");
    let text = std::fs::read_to_string("scenarios/demo-checkout-pod-loss.yaml").expect("scenario");
    let scenario = match scenario::load(&text, &|_| true).resources.remove(0).1 {
        Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    };
    let (_tx, abort) = tokio::sync::watch::channel(None);
    let options = RunOptions {
        exercise: "bench".into(),
        seed: 1,
        sample_every: Duration::from_millis(250),
        cluster: "sim".into(),
        ..Default::default()
    };
    let mut report = run(&client, &scenario, options, abort, &Silent).await;
    for e in &mut report.expectations {
        let sample = e.history.first().cloned().unwrap_or(Observation {
            at: report.started_at,
            verdict: "pass".into(),
            observed: "3 ready replicas (want >= 3)".into(),
            latency_ms: None,
        });
        e.history = vec![sample; 120];
    }
    let dir = std::env::temp_dir().join(format!("review-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z")
        .expect("date")
        .with_timezone(&chrono::Utc);
    let mut bytes = 0;
    for i in 0..REPORTS {
        let mut r = report.clone();
        r.exercise = format!("ex-{i}");
        r.started_at = base + chrono::Duration::minutes((i as i64) * 52 * 7 * 24 * 60 / REPORTS as i64);
        r.ended_at = r.started_at + chrono::Duration::minutes(5);
        r.scenario.metadata.labels = [("team".to_owned(), format!("team-{}", i % 20))].into();
        r.scenario.metadata.name = format!("scenario-{}", i % 200);
        let text = serde_json::to_string(&r).expect("json");
        bytes += text.len();
        std::fs::write(dir.join(format!("ex-{i}.json")), text).expect("write");
    }
    let bin = std::env::var("DISASTERPIECE_BIN").unwrap_or_else(|_| "target/release/disasterpiece".into());
    let (mut walls, mut peaks) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let began = Instant::now();
        let mut child = std::process::Command::new(&bin)
            .args([
                "review",
                "--until",
                "2027-01-04",
                "--since",
                "7d",
                "--view",
                "team",
                "--format",
                "json",
            ])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("review");
        let mut peak = 0u64;
        while child.try_wait().expect("wait").is_none() {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                && let Some(kib) = (status.lines())
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        walls.push(began.elapsed().as_secs_f64());
        peaks.push(peak as f64 / 1024.0);
    }
    walls.sort_by(f64::total_cmp);
    peaks.sort_by(f64::total_cmp);
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| reports read ({:.0} MiB of JSON, {:.1} KiB each) | {REPORTS} |",
        bytes as f64 / 1048576.0,
        bytes as f64 / REPORTS as f64 / 1024.0
    );
    println!("| wall time, median of {RUNS} | {:.2} s |", walls[RUNS / 2]);
    println!("| peak RSS (VmHWM), median of {RUNS} | {:.1} MiB |", peaks[RUNS / 2]);
    let _ = std::fs::remove_dir_all(&dir);
}
