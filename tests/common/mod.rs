//! Helpers shared by the integration tests (each test crate uses some of them).
#![allow(dead_code)]

use std::time::Duration;

use disasterpiece::sim::{Seed, Sim, SimBuilder};

/// Polls until `check` holds; panics naming `what` after 30 seconds. Not a timing assertion:
/// the simulator's delays are fractions of a second, the limit only stops a hung test.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The shop, with a world fast enough for tests (pods replaced after 200 ms, Ready 100 ms later).
pub fn fast_shop() -> SimBuilder {
    Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(200))
        .ready_delay(Duration::from_millis(100))
}

/// Starts a simulator and a client that shows every answer as it is (no kube retries).
pub async fn start(builder: SimBuilder) -> (Sim, kube::Client) {
    let sim = builder.start().await.expect("simulator starts");
    let client = sim.raw_client().await.expect("client from the written kubeconfig");
    (sim, client)
}
