//! The journal: a write-ahead record of every mutation an exercise makes, kept in the cluster
//! (a ConfigMap `disasterpiece-journal-<exercise>` in the target's namespace) so that a
//! fault never outlives its exercise, even when the process that made it dies.
//!
//! Expected flow: [`Journal::open`] creates it; before each fault is applied, [`Journal::intend`]
//! records the action with its undo steps; [`Journal::mark`] records `applied`, then
//! `reverted`; [`Journal::beat`] renews the heartbeat while the exercise runs;
//! [`Journal::close`] deletes it once everything is reverted.
//! Guarantees: an entry is written before its mutation is sent, so every mutation that may
//! have happened is on record. Writes use the ConfigMap's resourceVersion (409 → re-read).
//! Recovery: [`recover_lapsed`] reverts every entry not yet reverted in journals whose
//! heartbeat has lapsed, then deletes them; run twice, the second run finds nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};

use crate::api::api_message;
use crate::clock::Clock;
use crate::fault::{self, Action, EXERCISE_LABEL, MANAGED_BY, Undo};

pub const JOURNAL_LABEL: &str = "disasterpiece.dev/journal";
pub const HEARTBEAT: &str = "disasterpiece.dev/heartbeat";
/// A journal whose heartbeat is older than this belongs to a dead run.
pub const LAPSE: Duration = Duration::from_secs(30);
/// How often a running exercise renews its journal's heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// The shortest lapse `recover` accepts: three heartbeats. A shorter one would take a live run
/// (one heartbeat late on a slow API server) for a dead one and revert it under its feet.
pub const MIN_LAPSE: Duration = Duration::from_secs(15);

/// A journal whose run still beats.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    pub journal: String,
    pub namespace: String,
    pub exercise: String,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_s: f64,
    /// Seconds until `recover` takes it for a dead run's, if it stops beating.
    pub recoverable_in_s: f64,
}

/// The journals (in `namespace`, or everywhere) whose heartbeat is younger than `lapse`: runs
/// that are alive, or died less than `lapse` ago.
pub async fn live(
    client: &Client,
    namespace: Option<&str>,
    lapse: Duration,
    clock: &Clock,
) -> Result<Vec<Live>, JournalError> {
    let now = clock.now();
    Ok(listed(client, namespace, None)
        .await?
        .iter()
        .filter_map(|cm| {
            let age = heartbeat_age(cm, now)?;
            (age < lapse).then(|| Live {
                journal: cm.name_any(),
                namespace: cm.namespace().unwrap_or_default(),
                exercise: cm.labels().get(EXERCISE_LABEL).cloned().unwrap_or_default(),
                heartbeat_age_s: age.as_secs_f64(),
                recoverable_in_s: (lapse - age).as_secs_f64(),
            })
        })
        .collect())
}

/// The journals in `namespace` (or everywhere), of one exercise when given.
pub(super) async fn listed(
    client: &Client,
    namespace: Option<&str>,
    exercise: Option<&str>,
) -> Result<Vec<ConfigMap>, JournalError> {
    let api: Api<ConfigMap> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut selector = format!("{JOURNAL_LABEL}=true");
    if let Some(exercise) = exercise {
        selector.push_str(&format!(",{EXERCISE_LABEL}={exercise}"));
    }
    let listed = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| JournalError::Api {
            name: "(list)".into(),
            source,
        })?;
    Ok(listed.items)
}

/// How old a journal's heartbeat is at `now`; `None` without a readable one.
pub(super) fn heartbeat_age(cm: &ConfigMap, now: DateTime<Utc>) -> Option<Duration> {
    let beat = cm
        .annotations()
        .get(HEARTBEAT)
        .and_then(|b| DateTime::parse_from_rfc3339(b).ok())?
        .with_timezone(&Utc);
    Some((now - beat).to_std().unwrap_or_default())
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Written before the mutation: it may or may not have happened.
    Intended,
    Applied,
    Reverted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: u32,
    pub target: String,
    pub action: Action,
    pub undo: Vec<Undo>,
    pub state: State,
    /// When the fault must be gone at the latest.
    pub expires: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {name}: {}", api_message(source))]
    Api { name: String, source: kube::Error },
    #[error("journal {name} is unreadable: {message}")]
    Corrupt { name: String, message: String },
}

/// The journal of one exercise.
pub struct Journal {
    pub(super) api: Api<ConfigMap>,
    pub name: String,
    pub namespace: String,
    pub exercise: String,
    /// Stamps the heartbeat.
    pub(super) clock: Clock,
}

pub fn name_for(exercise: &str) -> String {
    format!("disasterpiece-journal-{exercise}")
}

/// A fault some exercise has on record and has not reverted: in place, or about to be.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    pub exercise: String,
    pub id: u32,
    pub action: Action,
}

/// Every fault on record in the journals of `namespace` and not reverted, whoever's: what the
/// guard counts as disrupted, and what keeps two scales of one workload apart. Every run
/// records its faults there before it acts. A journal that cannot be parsed counts as holding
/// nothing here; recovery reports it.
pub async fn active(client: &Client, namespace: &str) -> Result<Vec<Active>, JournalError> {
    Ok(listed(client, Some(namespace), None)
        .await?
        .iter()
        .flat_map(|cm| {
            let exercise = cm.labels().get(EXERCISE_LABEL).cloned().unwrap_or_default();
            entries_of(cm)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.state != State::Reverted)
                .map(move |e| Active {
                    exercise: exercise.clone(),
                    id: e.id,
                    action: e.action,
                })
        })
        .collect())
}

/// The exercise other than `own_exercise` that holds a scale of the workload `kind
/// namespace/name`, if one does. Two runs never scale one workload at once: the second one's
/// undo would restore the first one's count, and the workload would stay at the wrong size
/// for good. PURE.
pub fn scaled_by_another<'a>(
    active: &'a [Active],
    namespace: &str,
    kind: &str,
    name: &str,
    own_exercise: &str,
) -> Option<&'a str> {
    active
        .iter()
        .find(|a| {
            a.exercise != own_exercise
                && matches!(&a.action, Action::Scale { kind: k, namespace: n, name: w, .. }
                    if k == kind && n == namespace && w == name)
        })
        .map(|a| a.exercise.as_str())
}

pub(super) fn entries_of(cm: &ConfigMap) -> Result<Vec<Entry>, JournalError> {
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("entries"))
        .map_or("[]", String::as_str);
    serde_json::from_str(text).map_err(|e| JournalError::Corrupt {
        name: cm.name_any(),
        message: e.to_string(),
    })
}

impl Journal {
    /// Creates the journal of a new exercise.
    pub async fn open(
        client: &Client,
        namespace: &str,
        exercise: &str,
        scenario: &str,
        clock: &Clock,
    ) -> Result<Journal, JournalError> {
        let name = name_for(exercise);
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace,
                "labels": {JOURNAL_LABEL: "true", EXERCISE_LABEL: exercise, MANAGED_BY.0: MANAGED_BY.1},
                "annotations": {HEARTBEAT: clock.now().to_rfc3339(), "disasterpiece.dev/scenario": scenario}},
            "data": {"entries": "[]"},
        }))
        .expect("a static ConfigMap is valid");
        let wrap = |source| JournalError::Api {
            name: name.clone(),
            source,
        };
        api.create(&PostParams::default(), &cm).await.map_err(wrap)?;
        Ok(Journal {
            api,
            name,
            namespace: namespace.to_owned(),
            exercise: exercise.to_owned(),
            clock: clock.clone(),
        })
    }

    /// Reads, changes and writes the entries, retrying when someone else wrote in between.
    async fn update(&self, change: impl Fn(&mut Vec<Entry>)) -> Result<Vec<Entry>, JournalError> {
        let wrap = |source| JournalError::Api {
            name: self.name.clone(),
            source,
        };
        for _ in 0..10 {
            let mut cm = self.api.get(&self.name).await.map_err(wrap)?;
            let mut entries = entries_of(&cm)?;
            change(&mut entries);
            let text = serde_json::to_string(&entries).expect("entries serialize");
            cm.data
                .get_or_insert_with(Default::default)
                .insert("entries".into(), text);
            cm.annotations_mut()
                .insert(HEARTBEAT.into(), self.clock.now().to_rfc3339());
            match self.api.replace(&self.name, &PostParams::default(), &cm).await {
                Ok(_) => return Ok(entries),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(wrap(e)),
            }
        }
        Err(JournalError::Corrupt {
            name: self.name.clone(),
            message: "kept changing under ten consecutive writes".into(),
        })
    }

    /// Records what is about to be done, and how to undo it, before doing it; returns the entry
    /// as recorded.
    pub async fn intend(
        &self,
        target: &str,
        prepared: &fault::Prepared,
        expires: DateTime<Utc>,
    ) -> Result<Entry, JournalError> {
        let entry = |id: u32| Entry {
            id,
            target: target.to_owned(),
            action: prepared.action.clone(),
            undo: prepared.undo.clone(),
            state: State::Intended,
            expires,
        };
        let entries = self
            .update(|entries| {
                let id = entries.iter().map(|e| e.id + 1).max().unwrap_or(1);
                entries.push(entry(id));
            })
            .await?;
        entries.last().cloned().ok_or_else(|| JournalError::Corrupt {
            name: self.name.clone(),
            message: "the entry just written is missing".into(),
        })
    }

    /// Takes back an intent that was never acted on (the guard said no after it was written).
    pub async fn withdraw(&self, id: u32) -> Result<(), JournalError> {
        self.update(|entries| entries.retain(|e| e.id != id)).await.map(|_| ())
    }

    /// Marks every entry in `ids` as `state`, in one write.
    pub async fn mark_all(&self, ids: &[u32], state: State) -> Result<(), JournalError> {
        self.update(|entries| {
            for e in entries.iter_mut().filter(|e| ids.contains(&e.id)) {
                e.state = state;
            }
        })
        .await
        .map(|_| ())
    }

    pub async fn mark(&self, id: u32, state: State) -> Result<(), JournalError> {
        self.update(|entries| {
            if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
                e.state = state;
            }
        })
        .await
        .map(|_| ())
    }

    /// Renews the heartbeat: this exercise is alive.
    pub async fn beat(&self) -> Result<(), JournalError> {
        self.update(|_| {}).await.map(|_| ())
    }

    pub async fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        let cm = self.api.get(&self.name).await.map_err(|source| JournalError::Api {
            name: self.name.clone(),
            source,
        })?;
        entries_of(&cm)
    }

    /// Deletes the journal once every entry is reverted.
    pub async fn close(&self) -> Result<(), JournalError> {
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(JournalError::Api {
                name: self.name.clone(),
                source,
            }),
        }
    }
}

/// An undo step a journal may not ask for (see [`undo_allowed`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Untrusted {
    #[error(
        "not done: a journal in namespace {journal} may not change Nodes (journals of Node faults are kept in {nodes}); check who wrote it"
    )]
    Nodes { journal: String, nodes: String },
    #[error("not done: a journal in namespace {journal} may not change namespace {namespace}; check who wrote it")]
    Namespace { journal: String, namespace: String },
}

/// Whether recovery may perform `undo` from a journal kept in `journal_ns`. Whoever may
/// create ConfigMaps in a namespace can plant a journal there; recovery runs with the rights
/// of whoever recovers (the controller: every namespace). So a journal only undoes what lies
/// in its own namespace, and Node steps only come from `nodes_ns`, where the journals of Node
/// faults are kept (the controller's namespace). A run's faults always lie where its journal
/// is, so an honest journal never meets this refusal.
pub fn undo_allowed(undo: &fault::Undo, journal_ns: &str, nodes_ns: &str) -> Result<(), Untrusted> {
    use fault::Undo;
    let namespace = match undo {
        Undo::Nothing { .. } => return Ok(()),
        Undo::Uncordon { .. } if journal_ns == nodes_ns => return Ok(()),
        Undo::Uncordon { .. } => {
            return Err(Untrusted::Nodes {
                journal: journal_ns.to_owned(),
                nodes: nodes_ns.to_owned(),
            });
        }
        Undo::SetReplicas { namespace, .. }
        | Undo::DeleteNetworkPolicy { namespace, .. }
        | Undo::RemovePodLabel { namespace, .. }
        | Undo::StopInPod { namespace, .. } => namespace,
    };
    if namespace == journal_ns {
        Ok(())
    } else {
        Err(Untrusted::Namespace {
            journal: journal_ns.to_owned(),
            namespace: namespace.clone(),
        })
    }
}

/// Why `action` must not be taken because another live exercise acts on the same object, if
/// so. A scale: its undo is an absolute count, so a second scale of one workload would leave it
/// at the wrong size for good once both are reverted. Fails closed: journals that cannot be
/// read count as a reason.
pub async fn held_by_another(client: &Client, action: &Action, exercise: &str) -> Option<String> {
    let Action::Scale {
        kind, namespace, name, ..
    } = action
    else {
        return None;
    };
    match active(client, namespace).await {
        Ok(active) => scaled_by_another(&active, namespace, kind, name, exercise).map(|other| {
            format!(
                "{kind} {namespace}/{name} is scaled by exercise {other}, still running; one scale of a workload at a time (its undo restores an absolute count)"
            )
        }),
        Err(e) => Some(format!(
            "cannot tell whether another exercise scales {kind} {namespace}/{name}: {e}"
        )),
    }
}

/// Where a run of `spec` keeps its journal: beside its faults, in the target namespace; for
/// Nodes, which belong to no namespace, in `nodes` (the controller's own namespace), the only
/// place recovery trusts Node steps from. `default` when unset.
pub fn journal_namespace(spec: &crate::scenario::model::ScenarioSpec, nodes: Option<&str>) -> String {
    let namespace = match spec.target.kind {
        crate::scenario::model::TargetKind::Node => nodes,
        _ => spec.target.namespace.as_deref(),
    };
    namespace.unwrap_or("default").to_owned()
}
