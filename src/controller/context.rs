//! What the reconcilers share: the controller's [`Options`] and the [`Context`] each
//! reconcile is given. The manager builds them; the reconcilers read them, and never the
//! manager itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;
use tokio::sync::watch;

use super::events::Reporter;
use crate::clock::Clock;

/// The kinds the controller reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Exercise,
    GameDay,
    Scenario,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Watch one namespace, or all.
    pub namespace: Option<String>,
    /// How often a running Exercise's kill switches are read, and a failed Lease renewal
    /// tried again.
    pub poll: Duration,
    /// The cluster's address, for reports.
    pub cluster: String,
    pub sources: crate::probe::Sources,
    pub fault_image: Option<String>,
    /// The images a Scenario's `faultImage` may name besides `fault_image` (exact, or a
    /// prefix ending in `*`); none by default.
    pub fault_images: Vec<String>,
    /// Where the journals of Node faults are kept: the controller's own namespace.
    pub journal_namespace: String,
    /// The ConfigMap that stops every Exercise while it exists (the chart: in the controller's
    /// own namespace).
    pub kill_switch: crate::engine::abort::KillSwitch,
    /// The namespaces whose Scenarios may target Nodes (none by default).
    pub node_namespaces: Vec<String>,
    /// Run Exercises only while holding this Lease (several replicas); `None`: always.
    pub election: Option<super::lease::Election>,
    /// What time it is: GameDay schedules, statuses, Events, reports.
    pub clock: Clock,
    pub metrics: Arc<super::metrics::Metrics>,
    /// What every Exercise watches beyond its targets and halts on, whatever its Scenario says.
    pub floor: crate::engine::beyond::Floor,
    /// How often the reports kept are read for the success metrics on `/metrics`.
    pub learn_every: Duration,
    /// Post the weekly review to a webhook on this schedule (the leader only).
    pub review: Option<super::weekly::Schedule>,
}

/// The running exercises: uid → the abort sender.
pub type Running = Arc<Mutex<HashMap<String, watch::Sender<Option<String>>>>>;

/// What the reconcilers share.
pub struct Context {
    /// Fenced by the Lease when elected.
    pub client: Client,
    pub options: Options,
    pub events: Reporter,
    pub running: Running,
    /// Whether this replica leads: the runs it started stop at once when it does not.
    pub leads: watch::Sender<bool>,
    /// Reconcile failures in a row, per object, for the backoff.
    pub failures: Mutex<HashMap<(Kind, String), u32>>,
}

impl Context {
    pub fn leads(&self) -> bool {
        *self.leads.borrow()
    }

    /// A reconcile of `object` (`ns/name`) went through: its backoff starts over.
    pub fn succeeded(&self, kind: Kind, object: &str) {
        self.failures.lock().expect("lock").remove(&(kind, object.to_owned()));
    }

    /// Logs and counts a reconcile error once, with its category and object; when to try again.
    pub fn failed(&self, kind: Kind, object: &str, e: &kube::Error) -> Action {
        let category = super::error::Category::of(e);
        self.options.metrics.error(category);
        let category = category.as_str();
        match kind {
            Kind::Exercise => tracing::warn!(category, exercise = %object, error = %e, "reconcile failed"),
            Kind::GameDay => tracing::warn!(category, gameday = %object, error = %e, "reconcile failed"),
            Kind::Scenario => tracing::warn!(category, scenario = %object, error = %e, "reconcile failed"),
        }
        let mut failures = self.failures.lock().expect("lock");
        let n = failures.entry((kind, object.to_owned())).or_insert(0);
        *n += 1;
        Action::requeue(backoff(*n))
    }
}

/// How long to wait after `n` failures in a row: 1 s, doubling, at most 5 minutes. PURE.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_a_second_to_five_minutes() {
        let seconds: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX).as_secs(), 300);
    }
}
