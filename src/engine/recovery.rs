//! Recovery: what a run that died left behind, reverted from its journal. Journals whose
//! heartbeat lapsed are found and reverted at the controller's start and by `disasterpiece
//! recover`; one exercise's journal is reverted when a controller takes it over. A journal
//! is closed once every entry is reverted, and kept (to try again) while any step fails.

use std::time::Duration;

use kube::api::Api;
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::journal::{Journal, JournalError, entries_of, heartbeat_age, listed};
use crate::clock::Clock;
use crate::fault::{Context, EXERCISE_LABEL};

/// What `recover` did with one journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovered {
    pub journal: String,
    pub namespace: String,
    pub exercise: String,
    /// The undo steps performed, said for people.
    pub reverted: Vec<String>,
    /// Undo steps that failed (the journal is kept, to try again).
    pub failed: Vec<String>,
}

/// Finds journals whose heartbeat has lapsed (in `namespace`, or everywhere) and reverts
/// every entry not yet reverted; deletes each journal that is then fully reverted. Journals
/// of Node faults are only trusted in `nodes_ns` (see `undo_allowed`).
pub async fn recover_lapsed(
    client: &Client,
    namespace: Option<&str>,
    nodes_ns: &str,
    lapse: Duration,
    clock: &Clock,
) -> Result<Vec<Recovered>, JournalError> {
    recover(client, namespace, nodes_ns, None, lapse, clock).await
}

/// Reverts the journal of one exercise in `namespace`, however fresh its heartbeat: for a
/// controller taking over an exercise whose runner is known to be gone.
pub async fn recover_exercise(
    client: &Client,
    namespace: &str,
    nodes_ns: &str,
    exercise: &str,
    clock: &Clock,
) -> Result<Vec<Recovered>, JournalError> {
    let mut found = recover(client, Some(namespace), nodes_ns, Some(exercise), Duration::ZERO, clock).await?;
    if nodes_ns != namespace {
        // A Node exercise keeps its journal in `nodes_ns`.
        found.extend(recover(client, Some(nodes_ns), nodes_ns, Some(exercise), Duration::ZERO, clock).await?);
    }
    Ok(found)
}

/// Reverts the journal of exercise `id` (in `namespace`, or wherever it is), however fresh its
/// heartbeat: `recover --exercise`, for a run known to be dead.
pub async fn recover_exercise_anywhere(
    client: &Client,
    namespace: Option<&str>,
    nodes_ns: &str,
    id: &str,
    clock: &Clock,
) -> Result<Vec<Recovered>, JournalError> {
    recover(client, namespace, nodes_ns, Some(id), Duration::ZERO, clock).await
}

async fn recover(
    client: &Client,
    namespace: Option<&str>,
    nodes_ns: &str,
    exercise: Option<&str>,
    lapse: Duration,
    clock: &Clock,
) -> Result<Vec<Recovered>, JournalError> {
    let now = clock.now();
    let mut done = Vec::new();
    for cm in listed(client, namespace, exercise).await? {
        if heartbeat_age(&cm, now).is_some_and(|age| age < lapse) {
            continue;
        }
        let ns = cm.namespace().unwrap_or_default();
        let exercise = cm.labels().get(EXERCISE_LABEL).cloned().unwrap_or_default();
        let journal = Journal {
            api: Api::namespaced(client.clone(), &ns),
            name: cm.name_any(),
            namespace: ns.clone(),
            exercise: exercise.clone(),
            clock: clock.clone(),
        };
        let ctx = Context {
            client: client.clone(),
            exercise: exercise.clone(),
            dry_run: false,
            in_pod: Default::default(),
            clock: clock.clone(),
        };
        let mut report = Recovered {
            journal: journal.name.clone(),
            namespace: ns,
            exercise,
            reverted: Vec::new(),
            failed: Vec::new(),
        };
        // One journal that cannot be read or written (corrupted, or planted by whoever may
        // create ConfigMaps) is reported and kept; it never stops the others' recovery.
        let entries = match entries_of(&cm) {
            Ok(entries) => entries,
            Err(e) => {
                report.failed.push(format!(
                    "the journal cannot be read, so nothing of it was reverted: {e}"
                ));
                done.push(report);
                continue;
            }
        };
        for entry in super::revert::revert(&ctx, &journal, &entries, nodes_ns).await {
            report.reverted.extend(entry.done);
            report.failed.extend(entry.failed);
        }
        if report.failed.is_empty()
            && let Err(e) = journal.close().await
        {
            report
                .failed
                .push(format!("everything reverted, but the journal could not be closed: {e}"));
        }
        done.push(report);
    }
    Ok(done)
}
