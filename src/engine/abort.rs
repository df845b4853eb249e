//! The Andon cord: whatever asks an exercise to stop — a signal, an `abortWhen` clause, the
//! kill switch, a deleted Exercise — arrives as an [`AbortSignal`]; [`requested`] is raced
//! with every wait of every phase, so none holds an abort up.

use chrono::{DateTime, Utc};
use kube::Client;
use kube::api::Api;
use tokio::sync::watch;
use tokio::time::Instant;

/// Abort requests: `Some(reason)` stops the exercise.
pub type AbortSignal = watch::Receiver<Option<String>>;

/// The kill switch's ConfigMap: while it exists, no exercise runs.
pub const KILL_SWITCH: (&str, &str) = ("disasterpiece-system", "disasterpiece-killswitch");
/// The annotation that stops every exercise in a namespace.
pub const ABORT_ANNOTATION: &str = "disasterpiece.dev/abort";

/// Returns once an abort is requested (never, if no one can request one any more).
pub async fn requested(abort: &mut AbortSignal) {
    loop {
        if abort.borrow_and_update().is_some() {
            return;
        }
        if abort.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// `work`, unless an abort comes first (`None` then): for every wait of an exercise.
pub async fn unless_aborted<T>(cord: &mut AbortSignal, work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        () = requested(cord) => None,
    }
}

/// An abort, as it was asked: why, and when (monotonic, for its latency; and on the clock,
/// for the report).
#[derive(Debug, Clone)]
pub struct Aborted {
    pub reason: String,
    pub at: Instant,
    pub wall: DateTime<Utc>,
    /// The phase it came in.
    pub during: super::event::Phase,
}

/// Whether someone pulled the kill switch: the ConfigMap exists, or the target's namespace
/// carries the abort annotation. Unreadable counts as not pulled; `plan` checks the
/// permissions to read both.
pub async fn kill_switch(client: &Client, namespace: Option<&str>) -> Option<String> {
    let (ks_ns, ks_name) = KILL_SWITCH;
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ks_ns);
    if let Ok(Some(_)) = maps.get_opt(ks_name).await {
        return Some(format!("kill switch: ConfigMap {ks_ns}/{ks_name} exists"));
    }
    let ns = namespace?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let annotated = namespaces
        .get_opt(ns)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.metadata.annotations)
        .is_some_and(|a| a.contains_key(ABORT_ANNOTATION));
    annotated.then(|| format!("kill switch: namespace {ns} is annotated {ABORT_ANNOTATION}"))
}
