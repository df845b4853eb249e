//! The custom resources of group `disasterpiece.dev`, version `v1alpha1`: `Scenario` (the
//! scenario file's spec), `GameDay` (the game day file's spec), and `Exercise`, one run of
//! one scenario, whose status carries the phase, the verdict, each expectation and the
//! derived times, and names the ConfigMap holding the report.

use chrono::{DateTime, Utc};
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::model::{ClauseVerdict, Outcome};
use crate::scenario::Duration;
use crate::scenario::gameday::GameDayResource;
use crate::scenario::model::ScenarioResource;

/// One run of one Scenario, created by a GameDay or by a person (`kubectl create`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[kube(
    group = "disasterpiece.dev",
    version = "v1alpha1",
    kind = "Exercise",
    doc = "One run of a Scenario: the controller injects its faults, observes, reverts them and reports whether the hypothesis held.",
    namespaced,
    status = "ExerciseStatus",
    shortname = "ex",
    category = "disasterpiece",
    printcolumn = r#"{"name":"Scenario","type":"string","jsonPath":".spec.scenario"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verdict"}"#,
    printcolumn = r#"{"name":"Detect","type":"string","jsonPath":".status.timeToDetect","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExerciseSpec {
    /// The Scenario to run, in this namespace.
    pub scenario: String,
    /// Fixes the choice among eligible targets (`plan` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How often expectations and abortWhen are sampled. Defaults to 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_every: Option<Duration>,
    /// Who runs it (kept in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The GameDay that created it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_day: Option<String>,
    /// The GameDay stage it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Run the Scenario against this namespace instead of its own target namespace (a
    /// GameDay stage's namespaces). Tenancy applies to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
}

/// Where an Exercise is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    Pending,
    Running,
    Reverting,
    Finished,
    /// Not run: refused by preflight or by tenancy.
    Refused,
}

/// What the controller says about an Exercise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExerciseStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The report's outcome, once finished.
    // Never written as `null`: its schema is the enum's, with no `null` among the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Verdict")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<ExpectationStatus>,
    /// The derived times, for people (`12.3s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_detect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_remediate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_recover: Option<String>,
    /// The journal of mutations (write-ahead): what was done and whether it is undone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalStatus>,
    /// Where the run keeps its journal (the target's namespace, or the controller's for
    /// Nodes): where a replica that takes the Exercise over finds what to revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_namespace: Option<String>,
    /// The ConfigMap in this namespace that holds the report JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

pub use crate::scenario::condition::{Condition, ConditionStatus, ConditionType};

/// An Exercise's verdict: the report's [`Outcome`], spelled as a status field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Verdict {
    Confirmed,
    Refuted,
    Inconclusive,
    Aborted,
    Refused,
}

impl From<Outcome> for Verdict {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Confirmed => Verdict::Confirmed,
            Outcome::Refuted => Verdict::Refuted,
            Outcome::Inconclusive => Verdict::Inconclusive,
            Outcome::Aborted => Verdict::Aborted,
            Outcome::Refused => Verdict::Refused,
        }
    }
}

impl From<Verdict> for Outcome {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Confirmed => Outcome::Confirmed,
            Verdict::Refuted => Outcome::Refuted,
            Verdict::Inconclusive => Outcome::Inconclusive,
            Verdict::Aborted => Outcome::Aborted,
            Verdict::Refused => Outcome::Refused,
        }
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "Confirmed",
            Verdict::Refuted => "Refuted",
            Verdict::Inconclusive => "Inconclusive",
            Verdict::Aborted => "Aborted",
            Verdict::Refused => "Refused",
        }
    }
}

/// Where a step of an Exercise's journal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StepState {
    /// Written before the mutation: it may or may not have happened.
    Intended,
    Applied,
    Reverted,
    /// Tried, and not in place (a guard said no at the last moment, a PDB refused).
    NotInjected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpectationStatus {
    pub name: String,
    /// Absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ClauseVerdict")]
    pub verdict: Option<ClauseVerdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_held: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalStatus {
    pub target: String,
    pub action: String,
    pub state: StepState,
}

/// Creates every CustomResourceDefinition this controller serves (`disasterpiece crd |
/// kubectl apply -f -` does the same): for tests, benchmarks and a fresh cluster.
pub async fn install(client: &kube::Client) -> Result<(), kube::Error> {
    use kube::api::{Api, PostParams};
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    for (_, yaml) in definitions() {
        let crd: DynamicObject = serde_yaml::from_str(&yaml).map_err(|e| kube::Error::Service(e.to_string().into()))?;
        crds.create(&PostParams::default(), &crd).await?;
    }
    Ok(())
}

/// Every CustomResourceDefinition, as `disasterpiece crd` prints them and the chart carries
/// them: (file name, YAML).
pub fn definitions() -> Vec<(String, String)> {
    [ScenarioResource::crd(), GameDayResource::crd(), Exercise::crd()]
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_yaml::to_string(&crd).unwrap_or_default();
            (format!("{name}.yaml"), yaml)
        })
        .collect()
}
