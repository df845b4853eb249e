//! The one revert path. A run at its end, `recover` after a dead run, and a controller taking
//! over an exercise all put faults back here, from the same per-target records: the journal's
//! entries. The desired state of every entry is `reverted`; each entry not there yet has its
//! undo steps performed in order (entries in parallel), and is marked reverted once all of them
//! succeeded.
//!
//! Guarantees: a step is only performed if the journal's place allows it
//! ([`undo_allowed`](super::journal::undo_allowed)); a step that lost a race with another
//! writer (409 Conflict) is applied again with a fresh read — other transient errors are the
//! client's retry layer's (`retry`), so attempts never multiply; a failed step is reported with
//! the API server's words and leaves its entry unreverted, so its journal is kept for
//! `recover`.

use std::time::Duration;

use futures_util::future::join_all;

use super::journal::{Entry, Journal, State, undo_allowed};
use crate::fault::{self, Context, FaultError, Undo};

/// What became of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryReverted {
    pub id: u32,
    /// The undo steps performed, said for people.
    pub done: Vec<String>,
    /// Undo steps refused or failed, with why.
    pub failed: Vec<String>,
}

/// Reverts every entry of `journal` in `entries` that is not reverted yet: their undo steps in
/// parallel, then the reverted ones recorded in one journal write (parallel writes of one
/// ConfigMap would only conflict). `nodes_ns`: the only namespace whose journals may change
/// Nodes.
pub async fn revert(ctx: &Context, journal: &Journal, entries: &[Entry], nodes_ns: &str) -> Vec<EntryReverted> {
    let results = join_all(
        entries
            .iter()
            .filter(|e| e.state != State::Reverted)
            .map(|entry| revert_entry(ctx, journal, entry, nodes_ns)),
    )
    .await;
    let done: Vec<u32> = results.iter().filter(|r| r.failed.is_empty()).map(|r| r.id).collect();
    if !done.is_empty() {
        // Best effort: a journal with nothing left to undo is deleted next; should that fail
        // too, `recover` performs these steps again, which finds them done.
        let _ = journal.mark_all(&done, State::Reverted).await;
    }
    results
}

async fn revert_entry(ctx: &Context, journal: &Journal, entry: &Entry, nodes_ns: &str) -> EntryReverted {
    let mut result = EntryReverted {
        id: entry.id,
        done: Vec::new(),
        failed: Vec::new(),
    };
    for step in &entry.undo {
        let outcome = match undo_allowed(step, &journal.namespace, nodes_ns) {
            Err(refused) => Err(refused.to_string()),
            Ok(()) => retry_conflicts(ctx, step).await.map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(()) => result.done.push(step.to_string()),
            Err(e) => result.failed.push(format!("{step}: {e}")),
        }
    }
    result
}

/// An undo step, applied again (with a fresh read) when it lost a race with another writer.
async fn retry_conflicts(ctx: &Context, step: &Undo) -> Result<(), FaultError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match fault::revert(ctx, step).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 8 && conflict(&e) => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(e) => return Err(e),
        }
    }
}

/// 409 Conflict: someone else wrote the object between our read and our write.
fn conflict(e: &FaultError) -> bool {
    matches!(
        e,
        FaultError::Api {
            source: kube::Error::Api(status),
            ..
        } if status.code == 409
    )
}
