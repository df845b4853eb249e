//! The Andon cord in every phase: with 10 faults, from the moment the cord is pulled (by the
//! benchmark's own clock) to the moment the run has reverted everything and stopped
//! (`abort.completedAt` of the report), when pulled
//! - in inject: after the 5th of 10 faults went in;
//! - in observe: as observation starts;
//! - in revert: as the revert starts (the run notices once everything is reverted);
//! - in recovery: 300 ms into the watch of an after-recovery clause (up to 20 s).
//!
//! The fault is networkPartition on 10 pods (two API writes to inject and two to revert per
//! target), against the embedded simulator over loopback HTTP. Run with
//! `cargo bench --bench andon`; prints medians and maxima of 7 runs. A benchmark, not a test:
//! nothing here fails on a number.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use disasterpiece::engine::event::ExerciseEvent;
use disasterpiece::engine::run::{Progress, RunOptions, run};
use disasterpiece::scenario::{self, Resource, Scenario};
use disasterpiece_sim::{Seed, Sim};
use tokio::sync::watch;

const RUNS: usize = 7;
const FAULTS: usize = 10;

/// Pulls the cord in `phase` (in inject: after the 5th injection; in recovery: 300 ms into
/// the watch, mid-round), and notes when.
struct Cord {
    phase: &'static str,
    tx: Arc<watch::Sender<Option<String>>>,
    injected: Mutex<usize>,
    pulled: Arc<Mutex<Option<DateTime<Utc>>>>,
}

fn pull(tx: &watch::Sender<Option<String>>, pulled: &Mutex<Option<DateTime<Utc>>>, phase: &str) {
    let mut pulled = pulled.lock().expect("lock");
    if pulled.is_none() {
        *pulled = Some(Utc::now());
        let _ = tx.send(Some(format!("benchmark abort in {phase}")));
    }
}

impl Cord {
    fn pull(&self) {
        pull(&self.tx, &self.pulled, self.phase);
    }
}

impl Progress for Cord {
    fn event(&self, _: Duration, event: &ExerciseEvent) {
        match event {
            ExerciseEvent::Injected { .. } => self.injected(),
            ExerciseEvent::Phase { phase, .. } => self.phase(phase.as_str()),
            _ => {}
        }
    }
}

impl Cord {
    fn injected(&self) {
        if self.phase == "inject" {
            let mut n = self.injected.lock().expect("lock");
            *n += 1;
            if *n == FAULTS / 2 {
                drop(n);
                self.pull();
            }
        }
    }

    fn phase(&self, name: &str) {
        if name == self.phase && name == "recovery" {
            let (tx, pulled, phase) = (self.tx.clone(), self.pulled.clone(), self.phase);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                pull(&tx, &pulled, phase);
            });
        } else if name == self.phase && name != "inject" {
            self.pull();
        }
    }
}

fn scenario() -> Scenario {
    let text = format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: partition-andon}}
spec:
  hypothesis: Measured, not judged.
  target: {{namespace: bulk-000, kind: Pod, selector: {{matchLabels: {{app: bulk}}}}}}
  blastRadius: {{mode: count, value: {FAULTS}, respectPodDisruptionBudgets: false}}
  faults: [{{networkPartition: {{}}}}]
  duration: 1s
  expect:
    - {{name: pods listed, kube: {{kind: Pod, podPhase: Running}}, within: 1s}}
    - {{name: never, kube: {{kind: Pod, podPhase: Failed}}, afterRecovery: true}}
  recovery: {{within: 20s}}
"
    );
    match scenario::load(&text, &|_| true).resources.remove(0).1 {
        Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    }
}

fn stats(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], *values.last().unwrap_or(&0.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = Sim::builder()
        .seed(Seed::Empty)
        .bulk_pods(1, 20)
        .start()
        .await
        .expect("simulator");
    let client = sim.raw_client().await.expect("client");
    let scenario = scenario();
    println!(
        "abort latency by phase, {FAULTS} faults, {RUNS} runs each, milliseconds (cord pulled → run stopped, all reverted)"
    );
    println!();
    println!("| phase     | median ms | max ms |");
    println!("|-----------|----------:|-------:|");
    for phase in ["inject", "observe", "revert", "recovery"] {
        let mut latencies = Vec::new();
        for i in 0..RUNS {
            let (tx, rx) = watch::channel(None);
            let cord = Cord {
                phase,
                tx: Arc::new(tx),
                injected: Mutex::new(0),
                pulled: Arc::default(),
            };
            let options = RunOptions {
                exercise: format!("andon-{phase}-{i}"),
                seed: i as u64 + 1,
                sample_every: Duration::from_millis(200),
                cluster: sim.url().to_owned(),
                ..Default::default()
            };
            let report = run(&client, &scenario, options, rx, &cord).await;
            let stopped = Utc::now();
            let pulled = cord.pulled.lock().expect("lock").expect("the cord was pulled");
            // Until the run said it had stopped (all reverted), else until it returned.
            let done = report.abort.as_ref().and_then(|a| a.completed_at).unwrap_or(stopped);
            assert!(report.revert_failures.is_empty(), "{:?}", report.revert_failures);
            latencies.push((done - pulled).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
        let (median, max) = stats(latencies);
        println!("| {phase:<9} | {median:>9.1} | {max:>6.1} |");
    }
}
