//! The report document (`reportVersion: 2`). Written by `run` to `reports/`; the reporting
//! work extends it, never changes the meaning of a field.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// 2: `observedBlastRadius`. A version-1 report reads as one without it.
pub const REPORT_VERSION: u32 = 2;

/// The outcome of an exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

/// The exit code of a run whose revert failed, whatever the verdict: a fault may still be in
/// place, and `disasterpiece recover` must finish.
pub const REVERT_FAILED_EXIT: u8 = 4;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at: DateTime<Utc>,
    /// `phase`, `refused`, `skipped`, `injected`, `evicted`, `partial`, `notInjected`, `error`,
    /// `slowInjection`, `notObserved`, `faultEnded`, `expectation`, `collateral`, `abort`, `reverted`,
    /// `revertFailed`, `recovered`, `notRecovered` (`engine::event::ExerciseEvent::timeline`).
    pub kind: String,
    pub detail: String,
}

/// The guard's choice for one fault: what it acted on, and what it spared and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetChoice {
    pub fault: String,
    pub chosen: Vec<String>,
    /// `(target, reason)`.
    pub excluded: Vec<(String, String)>,
}

/// One fault on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// A drain: the pods it evicted (`namespace/name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evicted: Vec<String>,
    /// Why it is only partly in place (a drain that timed out), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ClauseVerdict {
    Confirmed,
    Refuted,
    Inconclusive,
}

/// One `expect` clause: what was expected, what was seen, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// The probe kind (`http`, `kube`, `prometheus`, `alert`, `command`).
    #[serde(default)]
    pub probe: String,
    /// Every sample, in order (at most [`HISTORY_CAP`]; the first and the latest are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Observation>,
}

/// How many samples an expectation keeps in `history`.
pub const HISTORY_CAP: usize = 2000;

/// One sample of a clause's probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub at: DateTime<Utc>,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    pub observed: String,
    /// How long an http probe waited for the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// Where the exercise ran, and with what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// The API server's address.
    pub cluster: String,
    /// The kubeconfig context, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The target namespace as run (after `--namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub disasterpiece_version: String,
}

/// A follow-up a team takes from an exercise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowUp {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub status: FollowUpStatus,
    /// When it is due; open past that day, it is overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<chrono::NaiveDate>,
    /// The ticket that tracks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The scenario whose next confirming run proves it done ("reliability improvement
    /// validated"): the review shows it verified, with that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_by: Option<String>,
    /// When it was added, and when it was marked done (by `annotate`'s clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FollowUpStatus {
    Open,
    Done,
}

/// How much of what the blast radius allowed was hit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActualBlastRadius {
    /// Targets a fault was injected into.
    pub hit: u32,
    /// Targets the guard chose before the inject phase.
    pub chosen: u32,
    /// Candidates that matched the target, chosen or not.
    pub candidates: u32,
}

/// The derived times, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// From the first injection to the first detection clause holding: an `alert` `within`
    /// clause, else a `prometheus` one; none without such a clause.
    pub time_to_detect_s: Option<f64>,
    /// From when remediation can start (the injection for faults the system repairs while
    /// they last, the revert for faults the tool holds) to the first sample with the target's
    /// workload back to its desired Ready replicas.
    pub time_to_remediate_s: Option<f64>,
    /// From the last revert until the steady state held again.
    pub time_to_recover_s: Option<f64>,
    /// From the abort request until the last revert was confirmed.
    pub abort_latency_s: Option<f64>,
    /// The share of http probe samples that passed while the faults were in (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    #[serde(default)]
    pub blast_radius: ActualBlastRadius,
}

/// What the run watched beyond its targets, and what it saw there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedBlastRadius {
    /// What was watched, and what would halt the exercise.
    pub watched: Watched,
    /// The blast radius the scenario declared: what its faults hit, and what the guard
    /// spared (`target: reason`).
    pub declared: Declared,
    /// Everything outside the declared radius that degraded or alerted while the exercise
    /// ran (first injection to the end of recovery), in the order first seen.
    #[serde(default)]
    pub collateral: Vec<Collateral>,
    /// The collateral that halted the exercise (an index into `collateral`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted_by: Option<usize>,
}

/// The watched scope and the halt rules, as the run applied them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Watched {
    /// The namespaces watched (`*`: every namespace).
    pub namespaces: Vec<String>,
    /// Whether Nodes were watched (and why not, when not).
    pub nodes: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_not_watched: Option<String>,
    /// The Alertmanager read for alerts, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
    /// Alerts already firing when the watch began: not counted as unanticipated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub already_firing: Vec<String>,
    /// The rules that halt the exercise, each with who set it (`operator` or `scenario`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub halts_on: Vec<String>,
}

/// The declared blast radius.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Declared {
    pub hit: Vec<String>,
    pub spared: Vec<String>,
}

/// What kind of thing was hit beyond the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CollateralKind {
    /// A Deployment, StatefulSet or DaemonSet below its desired Ready replicas.
    Workload,
    /// A pod that restarted or stopped being Ready.
    Pod,
    /// A Node that stopped being Ready or schedulable.
    Node,
    /// An alert no clause of the scenario names, not firing when the watch began.
    Alert,
}

/// One thing outside the declared blast radius that was hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Collateral {
    pub kind: CollateralKind,
    /// `Deployment orders/orders`, `Pod orders/orders-7d9f-x2`, `Node worker-2`, or the
    /// alert's name.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What was seen, for people: `0/2 Ready (wants 2)`, `not Ready`, `restarted (1 → 2)`.
    pub what: String,
    /// An alert's labels.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Whose it is: the `team` label of the workload (or pod, or alert), else of its
    /// namespace; `None` when neither says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub first_seen: DateTime<Utc>,
    /// When it was healthy again (or the alert resolved); `None`: still degraded when the
    /// watch ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// How long it was degraded, up to the end of the watch, in seconds.
    pub for_s: f64,
    /// Whether a halt rule matched it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub halts: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Abort {
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub report_version: u32,
    pub exercise: String,
    pub scenario: Scenario,
    pub environment: Environment,
    /// Who ran the exercise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
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
    /// How sure the team was that the hypothesis holds, 1 to 5, before the exercise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub confidence_before: Option<u8>,
    /// And after it (`disasterpiece annotate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub confidence_after: Option<u8>,
    /// What the team learned, in its words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<FollowUp>,
    /// What the run saw beyond its targets (none when it was refused before it watched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_blast_radius: Option<ObservedBlastRadius>,
}

/// The JSON Schema of the report (draft-07).
pub fn schema() -> &'static serde_json::Value {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        schemars::generate::SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Report>()
            .to_value()
    })
}

impl Report {
    /// The exit code of the run: `REVERT_FAILED_EXIT` when an undo step failed, else the
    /// outcome's.
    pub fn exit_code(&self) -> u8 {
        if self.revert_failures.is_empty() {
            self.outcome.exit_code()
        } else {
            REVERT_FAILED_EXIT
        }
    }

    /// Adds `kind` to the timeline, at `at`.
    pub fn event(&mut self, at: DateTime<Utc>, kind: &str, detail: impl Into<String>) {
        self.timeline.push(Event {
            at,
            kind: kind.into(),
            detail: detail.into(),
        });
    }
}
