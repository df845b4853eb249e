//! The `GameDay` file format: scenarios grouped into stages (e.g. `dev` then `prod`), the
//! people taking part, and when it runs. Only the model lives here; scheduling is the
//! controller's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{ApiVersion, Metadata};

/// A game day: stages of scenarios run in order, a later stage only when the earlier one
/// confirmed its hypotheses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Disasterpiece GameDay")]
pub struct GameDay {
    /// Always `disasterpiece.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `GameDay`.
    pub kind: GameDayKind,
    pub metadata: Metadata,
    pub spec: GameDaySpec,
}

/// The kind of a game day document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GameDayKind {
    GameDay,
}

/// Who takes part, when it runs, and the stages. In a cluster this is the spec of the
/// `GameDay` custom resource (`GameDayResource` here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[kube(
    group = "disasterpiece.dev",
    version = "v1alpha1",
    kind = "GameDay",
    doc = "A game day: stages of Scenarios run on a schedule, a later stage only when the earlier one confirmed its hypotheses.",
    root = "GameDayResource",
    namespaced,
    status = "GameDayStatus",
    shortname = "gd",
    category = "disasterpiece",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule.cron"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GameDaySpec {
    /// What the game day is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The person who runs the game day and holds the Andon cord.
    pub host: Person,
    /// Everyone else taking part, with their role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// When the game day runs by itself (in the controller). Absent: only when started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Times of day when no exercise may start, in the schedule's time zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet_hours: Vec<QuietHours>,
    /// Dates (`YYYY-MM-DD`, in the schedule's time zone) when no exercise may start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blackout_dates: Vec<String>,
    /// Where to announce the start, the end and every abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// The stages, run in order.
    pub stages: Vec<Stage>,
    /// What the controller does when a run is due while the previous one still runs.
    /// Defaults to `Forbid` (skip the new run).
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// How many finished Exercises of this game day are kept. Defaults to 10.
    #[serde(default = "ten", skip_serializing_if = "is_ten")]
    #[schemars(range(min = 1, max = 1000))]
    pub history_limit: u32,
    /// Stop starting scheduled runs (running exercises continue).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

fn ten() -> u32 {
    10
}

fn is_ten(n: &u32) -> bool {
    *n == 10
}

/// What the controller says about a GameDay: when it last ran, and its recent runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameDayStatus {
    /// The minute the controller first read this schedule, by its own clock: runs are due
    /// from then on. Never the creation time, which the API server's clock wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_since: Option<chrono::DateTime<chrono::Utc>>,
    /// The last time a run was due (run or skipped), by the controller's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The recent runs, oldest first (`historyLimit` of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<GameDayRun>,
    /// `Valid`: whether the GameDay passes what `disasterpiece validate` checks (with its
    /// messages when not); an invalid one never runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::condition::Condition>,
}

/// One run of a GameDay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameDayRun {
    pub id: String,
    pub scheduled_at: chrono::DateTime<chrono::Utc>,
    /// `running`, `confirmed` (every stage confirmed), `stopped` (a stage did not confirm, or
    /// could not start) or `skipped` (never started).
    pub state: String,
    /// The stages started so far.
    #[serde(default)]
    pub stages_started: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The Exercises it created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exercises: Vec<String>,
}

/// What happens when a run is due while the previous one still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Skip the new run (recorded as skipped).
    #[default]
    Forbid,
    /// Start it anyway.
    Allow,
    /// Abort and revert the running one, then start the new one.
    Replace,
}

/// A person and how to reach them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Person {
    /// The person's name.
    pub name: String,
    /// How to reach them: an e-mail address, a chat handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// A participant and their role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Participant {
    /// The person's name.
    pub name: String,
    /// What they do during the game day.
    pub role: Role,
    /// How to reach them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// Roles in a game day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Runs the commands.
    Operator,
    /// On call for the service; responds as they would to a real incident.
    Responder,
    /// Watches dashboards and says what they see.
    Observer,
    /// Writes down what happens, for the report.
    Scribe,
}

/// A cron schedule in a time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// A standard 5-field cron expression (minute hour day-of-month month day-of-week),
    /// e.g. `0 14 * * WED` for Wednesdays at 14:00.
    pub cron: String,
    /// An IANA time zone, e.g. `Europe/Berlin`. Defaults to `UTC`.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

/// A daily window when no exercise may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuietHours {
    /// Start of the window, `HH:MM` (24-hour clock).
    pub start: String,
    /// End of the window, `HH:MM`; may be earlier than `start` for a window past midnight.
    pub end: String,
    /// The days the window applies to. Absent: every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Weekday>,
}

/// Days of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notify {
    /// A webhook (http or https) that receives a JSON message for each event.
    pub webhook: String,
}

/// One stage: where it runs and which scenarios it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    /// A short name, unique in the game day, e.g. `dev` or `prod`.
    pub name: String,
    /// The kubeconfig context the stage runs in. Set `context`, `namespaces` or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The namespaces the stage's scenarios run in, replacing their own target namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The scenarios, run in order.
    pub scenarios: Vec<ScenarioRef>,
}

/// A scenario, by file or by name: set exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioRef {
    /// A scenario file, relative to this game day file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The name of a `Scenario` object in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
