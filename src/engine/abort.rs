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

/// The kill switch: a ConfigMap that, while it exists, stops every exercise and lets none
/// start. It lives in the controller's own namespace (the chart passes its release namespace);
/// the CLI takes it as `--kill-switch NAMESPACE/NAME`, `disasterpiece-system/disasterpiece-killswitch`
/// by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitch {
    pub namespace: String,
    pub name: String,
}

/// The kill switch's name, in whatever namespace it is kept.
pub const KILL_SWITCH_NAME: &str = "disasterpiece-killswitch";

impl Default for KillSwitch {
    fn default() -> Self {
        KillSwitch {
            namespace: "disasterpiece-system".into(),
            name: KILL_SWITCH_NAME.into(),
        }
    }
}

impl std::fmt::Display for KillSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Text that names no kill switch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not NAMESPACE/NAME of a ConfigMap, e.g. disasterpiece-system/disasterpiece-killswitch")]
pub struct NotAKillSwitch(pub String);

impl std::str::FromStr for KillSwitch {
    type Err = NotAKillSwitch;

    /// `NAMESPACE/NAME`, each a valid Kubernetes name.
    fn from_str(text: &str) -> Result<Self, NotAKillSwitch> {
        let valid = |namespace: &str, name: &str| {
            disasterpiece_common::names::is_dns_label(namespace) && disasterpiece_common::names::is_dns_subdomain(name)
        };
        match text.split_once('/') {
            Some((namespace, name)) if valid(namespace, name) => Ok(KillSwitch {
                namespace: namespace.into(),
                name: name.into(),
            }),
            _ => Err(NotAKillSwitch(text.to_owned())),
        }
    }
}
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
pub async fn kill_switch(client: &Client, switch: &KillSwitch, namespace: Option<&str>) -> Option<String> {
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &switch.namespace);
    if let Ok(Some(_)) = maps.get_metadata_opt(&switch.name).await {
        return Some(format!("kill switch: ConfigMap {switch} exists"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_switch_is_namespace_slash_name_and_anything_else_says_how_to_write_it() {
        let switch: KillSwitch = "chaos-tools/disasterpiece-killswitch".parse().expect("valid");
        assert_eq!(
            (switch.namespace.as_str(), switch.name.as_str()),
            ("chaos-tools", KILL_SWITCH_NAME)
        );
        assert_eq!(switch.to_string(), "chaos-tools/disasterpiece-killswitch");
        for bad in ["disasterpiece-killswitch", "a/b/c", "Chaos/x", "/x", "ns/"] {
            let error = bad.parse::<KillSwitch>().expect_err(bad).to_string();
            assert!(error.contains("NAMESPACE/NAME"), "{error}");
        }
    }
}
