//! Helpers shared by the integration tests.

use std::time::Duration;

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
