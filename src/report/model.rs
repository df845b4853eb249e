//! The report document (`reportVersion: 1`). Written by `run` to `reports/`; the reporting
//! work extends it, never changes the meaning of a field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

pub const REPORT_VERSION: u32 = 1;

/// The outcome of an exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Every expectation held.
    Confirmed,
    /// At least one expectation did not hold (or the steady state did not return).
    Refuted,
    /// Nothing refuted, but something could not be judged.
    Inconclusive,
    /// Stopped early (Ctrl-C, `abortWhen`); every fault was reverted.
    Aborted,
    /// Preflight said no; nothing was changed.
    Refused,
}

impl Outcome {
    /// 0 confirmed, 1 refuted or inconclusive, 2 refused, 3 aborted.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Confirmed => 0,
            Outcome::Refuted | Outcome::Inconclusive => 1,
            Outcome::Refused => 2,
            Outcome::Aborted => 3,
        }
    }
}

/// One thing that happened, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at: DateTime<Utc>,
    /// `phase`, `injected`, `notInjected`, `reverted`, `expectation`, `abort`, `skipped`, `error`.
    pub kind: String,
    pub detail: String,
}

/// The guard's choice for one fault: what it acted on, and what it spared and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetChoice {
    pub fault: String,
    pub chosen: Vec<String>,
    /// `(target, reason)`.
    pub excluded: Vec<(String, String)>,
}

/// One fault on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Injection {
    pub fault: String,
    pub target: String,
    pub action: String,
    pub injected_at: Option<DateTime<Utc>>,
    /// Why it was not injected (a guard said no at the last moment, a PDB refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_injected: Option<String>,
    pub reverted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClauseVerdict {
    Confirmed,
    Refuted,
    Inconclusive,
}

/// One `expect` clause: what was expected, what was seen, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectationResult {
    pub name: String,
    /// `within 60s`, `throughout`, `after recovery`.
    pub expected: String,
    pub verdict: ClauseVerdict,
    /// When it first held.
    pub first_held: Option<DateTime<Utc>>,
    /// The sample that decided, said for people.
    pub observed: String,
    pub samples: u32,
}

/// The derived times, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// From the first injection to the first detection clause (an alert, else the first
    /// `within` clause) holding.
    pub time_to_detect_s: Option<f64>,
    /// From the first injection until the target was back to its desired state.
    pub time_to_remediate_s: Option<f64>,
    /// From the last revert until the steady state held again.
    pub time_to_recover_s: Option<f64>,
    /// From the abort request until the last revert was confirmed.
    pub abort_latency_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Abort {
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub report_version: u32,
    pub exercise: String,
    pub scenario: Scenario,
    pub cluster: String,
    pub disasterpiece_version: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// Why preflight refused, when it did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<String>,
    pub timeline: Vec<Event>,
    pub targets: Vec<TargetChoice>,
    pub injections: Vec<Injection>,
    pub expectations: Vec<ExpectationResult>,
    pub metrics: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
    /// API calls that failed transiently and were retried (`PATCH /apis/… → 503, retry 1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried_calls: Vec<String>,
    /// Undo steps that failed: the journal is kept and `disasterpiece recover` must finish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revert_failures: Vec<String>,
}

impl Report {
    pub fn event(&mut self, kind: &str, detail: impl Into<String>) {
        self.timeline.push(Event {
            at: Utc::now(),
            kind: kind.into(),
            detail: detail.into(),
        });
    }
}
