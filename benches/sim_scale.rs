//! How the simulator holds up at 10 000 pods in 100 namespaces: LIST and WATCH through the
//! real `kube::Client` over HTTP. Run with `cargo bench --bench sim_scale`; it prints a table
//! of medians and 90th percentiles. A benchmark, not a test: nothing here fails on a number.

use std::time::{Duration, Instant};

use disasterpiece_sim::{Seed, Sim};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;

const NAMESPACES: usize = 100;
const PER_NAMESPACE: usize = 100;

fn summary(name: &str, mut samples: Vec<Duration>, items: usize) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[(samples.len() * 9 / 10).min(samples.len() - 1)];
    println!(
        "| {name:<44} | {items:>6} | {:>9.2} | {:>9.2} | {:>3} |",
        ms(median),
        ms(p90),
        samples.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let sim = Sim::builder()
        .seed(Seed::Empty)
        .bulk_pods(NAMESPACES, PER_NAMESPACE)
        .watch_history(100_000)
        .start()
        .await
        .expect("sim");
    let setup = started.elapsed();
    let client = sim.raw_client().await.expect("client");
    let all: Api<Pod> = Api::all(client.clone());
    let one_ns: Api<Pod> = Api::namespaced(client.clone(), "bulk-042");
    println!(
        "simulator with {} pods in {NAMESPACES} namespaces started in {:.0} ms",
        NAMESPACES * PER_NAMESPACE,
        ms(setup)
    );
    println!();
    println!("| operation                                    |  items | median ms |    p90 ms |  n  |");
    println!("|----------------------------------------------|-------:|----------:|----------:|----:|");

    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..10 {
        let t = Instant::now();
        count = all.list(&ListParams::default()).await.expect("list").items.len();
        times.push(t.elapsed());
    }
    summary("LIST all pods, all namespaces", times, count);

    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let mut token: Option<String> = None;
        count = 0;
        loop {
            let mut lp = ListParams::default().limit(500);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = all.list(&lp).await.expect("page");
            count += page.items.len();
            token = page.metadata.continue_;
            if token.is_none() {
                break;
            }
        }
        times.push(t.elapsed());
    }
    summary("LIST all pods in pages of 500 (as kubectl)", times, count);

    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        count = all
            .list(&ListParams::default().labels("group=g0"))
            .await
            .expect("list")
            .items
            .len();
        times.push(t.elapsed());
    }
    summary("LIST by label selector (a tenth)", times, count);

    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        count = one_ns.list(&ListParams::default()).await.expect("list").items.len();
        times.push(t.elapsed());
    }
    summary("LIST one namespace", times, count);

    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let stream = all
            .watch(&WatchParams::default().timeout(60), "0")
            .await
            .expect("watch");
        let received = stream.take(NAMESPACES * PER_NAMESPACE).count().await;
        times.push(t.elapsed());
        count = received;
    }
    summary("WATCH from 0: initial events for all pods", times, count);

    let rv = all
        .list(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = all
        .watch(&WatchParams::default().labels("group=g0").timeout(120), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut times = Vec::new();
    let mut writes = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let patch = Patch::Merge(json!({"metadata": {"annotations": {"bench": i.to_string()}}}));
        one_ns
            .patch("pod-00009", &PatchParams::default(), &patch)
            .await
            .expect("patch");
        writes.push(t.elapsed());
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Modified(_))) => break,
                Some(Ok(_)) => continue,
                other => panic!("watch ended: {other:?}"),
            }
        }
        times.push(t.elapsed());
    }
    summary("PATCH one pod (write, 10 000 pods in the world)", writes, 1);
    summary("PATCH to its WATCH event (selector watch)", times, 1);
    println!();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
