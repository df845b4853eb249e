//! How fast the engine acts, against the embedded simulator over loopback HTTP:
//! - injection latency: from the start of the inject phase to the first and to the last
//!   fault confirmed, for 1, 10 and 50 targets;
//! - abort latency: from the abort request to the last revert confirmed by the API
//!   (`metrics.abortLatencyS` of the report), with 1, 10 and 50 active faults.
//!
//! The fault is networkPartition (a NetworkPolicy and a pod label per target, both removed
//! on revert): API-level, two writes to inject and two to revert per target.
//! Run with `cargo bench --bench engine`; prints a table of medians, 90th percentiles and
//! maxima. A benchmark, not a test: nothing here fails on a number.

use std::time::Duration;

use chrono::{DateTime, Utc};
use disasterpiece::engine::event::{ExerciseEvent, Phase};
use disasterpiece::engine::run::{Progress, RunOptions, run};
use disasterpiece::scenario::{self, Resource, Scenario};
use disasterpiece_sim::{Seed, Sim};
use tokio::sync::watch;

const RUNS: usize = 7;

/// Pulls the cord as soon as observation starts.
struct AbortWhenObserving(watch::Sender<Option<String>>);

impl Progress for AbortWhenObserving {
    fn event(&self, _: Duration, event: &ExerciseEvent) {
        if let ExerciseEvent::Phase {
            phase: Phase::Observe, ..
        } = event
        {
            let _ = self.0.send(Some("benchmark abort".into()));
        }
    }
}

fn scenario(targets: usize) -> Scenario {
    let text = format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: partition-{targets}}}
spec:
  hypothesis: Measured, not judged.
  target: {{namespace: bulk-000, kind: Pod, selector: {{matchLabels: {{app: bulk}}}}}}
  blastRadius: {{mode: count, value: {targets}, respectPodDisruptionBudgets: false}}
  faults: [{{networkPartition: {{}}}}]
  duration: 10m
  expect:
    - {{name: pods listed, kube: {{kind: Pod, podPhase: Running}}, within: 10m}}
  recovery: {{within: 1m}}
"
    );
    match scenario::load(&text, &|_| true).resources.remove(0).1 {
        Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    }
}

fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let p90 = values[(values.len() * 9 / 10).min(values.len() - 1)];
    (median, p90, *values.last().unwrap_or(&0.0))
}

fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = Sim::builder()
        .seed(Seed::Empty)
        .bulk_pods(1, 60)
        .start()
        .await
        .expect("simulator");
    let client = sim.raw_client().await.expect("client");
    println!("engine against the simulator (loopback HTTP), {RUNS} runs each, milliseconds");
    println!();
    println!("| measure                                | faults | median ms | p90 ms | max ms |");
    println!("|----------------------------------------|-------:|----------:|-------:|-------:|");
    for targets in [1, 10, 50] {
        let scenario = scenario(targets);
        let (mut first, mut last, mut abort) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..RUNS {
            let (tx, rx) = watch::channel(None);
            let options = RunOptions {
                exercise: format!("bench-{targets}-{i}"),
                seed: i as u64 + 1,
                sample_every: Duration::from_millis(200),
                cluster: sim.url().to_owned(),
                ..Default::default()
            };
            let report = run(&client, &scenario, options, rx, &AbortWhenObserving(tx)).await;
            let inject = report
                .timeline
                .iter()
                .find(|e| e.kind == "phase" && e.detail == "inject")
                .map(|e| e.at)
                .expect("an inject phase");
            let injected: Vec<DateTime<Utc>> = report.injections.iter().filter_map(|i| i.injected_at).collect();
            assert_eq!(injected.len(), targets, "{:?}", report.refusals);
            first.push(seconds_between(inject, *injected.iter().min().expect("one")) * 1000.0);
            last.push(seconds_between(inject, *injected.iter().max().expect("one")) * 1000.0);
            abort.push(report.metrics.abort_latency_s.expect("aborted") * 1000.0);
        }
        for (name, values) in [
            ("injection: first fault confirmed", first),
            ("injection: last fault confirmed", last),
            ("abort: request → last revert confirmed", abort),
        ] {
            let (median, p90, max) = stats(values);
            println!("| {name:<38} | {targets:>6} | {median:>9.1} | {p90:>6.1} | {max:>6.1} |");
        }
    }
}
