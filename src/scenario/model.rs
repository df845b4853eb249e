//! The scenario format (`disasterpiece.dev/v1alpha1`) as Rust types.
//!
//! These types are the single description of the format: the JSON Schema (`disasterpiece
//! schema`), the structural checks of `validate`, and later the CRDs are all generated from
//! them, and their doc comments become the schema's descriptions. Everything a user writes
//! rejects unknown fields; wire names are camelCase.
//!
//! Unions ("exactly one fault kind", "exactly one probe kind") are written as structs of
//! optional members, the way Kubernetes writes `VolumeSource`: the schema stays structural
//! (as CRDs require) and [`super::validate`] reports a clear error when none or several are set.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// The only API version this release reads.
pub const API_VERSION: &str = "disasterpiece.dev/v1alpha1";

/// Namespaces no scenario may target: the cluster's own and Disasterpiece's.
pub const PROTECTED_NAMESPACES: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", "disasterpiece-system"];

/// How long a fault may hold unless `allowLongDuration` is set.
pub const DURATION_CAP: Duration = Duration::from_secs(30 * 60);

/// How long a fault may hold even with `allowLongDuration`: every fault is time-bounded.
pub const HARD_DURATION_CAP: Duration = Duration::from_secs(24 * 60 * 60);

/// The API version of Disasterpiece documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "disasterpiece.dev/v1alpha1")]
    V1alpha1,
}

/// A chaos exercise: a hypothesis, the fault that tests it, where it may act, how the
/// result is measured, and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Disasterpiece Scenario")]
pub struct Scenario {
    /// Always `disasterpiece.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Scenario`.
    pub kind: ScenarioKind,
    pub metadata: Metadata,
    pub spec: ScenarioSpec,
}

/// The kind of a scenario document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ScenarioKind {
    Scenario,
}

/// Name and labels, as on any Kubernetes object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The name: lowercase letters, digits and `-`, as for Kubernetes object names.
    pub name: String,
    /// The namespace the object lives in, when stored in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels, e.g. `team: payments`; reports can be grouped by them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the controller says about a Scenario resource, as soon as it is created or changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioStatus {
    /// The `metadata.generation` the conditions speak of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: whether the Scenario passes what `disasterpiece validate` checks (with its
    /// messages when not); an Exercise of an invalid one is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::condition::Condition>,
}

/// What the exercise does and what the team expects to happen. In a cluster this is the spec
/// of the `Scenario` custom resource (`ScenarioResource` here, as `Scenario` is the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[kube(
    group = "disasterpiece.dev",
    version = "v1alpha1",
    kind = "Scenario",
    doc = "A chaos exercise: a hypothesis, the fault that tests it, where it may act, how the system is watched and what is expected.",
    root = "ScenarioResource",
    namespaced,
    status = "ScenarioStatus",
    shortname = "dps",
    category = "disasterpiece",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target.name"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".spec.duration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// What this exercise is about, in a sentence or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The team that owns the service under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A link to the service's runbook (http or https); the report links to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The hypothesis in plain words, e.g. "checkout keeps serving; lost pods are replaced
    /// within 60s; CheckoutDegraded fires within 2m". The `expect` clauses make it measurable.
    pub hypothesis: String,
    /// What the faults act on.
    pub target: Target,
    /// How many of the matching targets may be hit, and the guards that protect the rest.
    /// Defaults to a single target (`mode: one`).
    #[serde(default)]
    pub blast_radius: BlastRadius,
    /// The faults to inject, each into every chosen target.
    pub faults: Vec<Fault>,
    /// How long the faults hold before they are reverted, e.g. `2m`. At most 30m unless
    /// `allowLongDuration` is true, and never more than 24h.
    pub duration: Duration,
    /// Allow a `duration` above 30m (up to 24h).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_long_duration: bool,
    /// The image of the ephemeral container the in-pod faults (networkDelay, networkLoss,
    /// cpuStress, memoryStress, containerKill) add to target pods: it needs `sh`, `tc` and
    /// `kill`, and uses `stress-ng` when present. Overrides `--fault-image` and the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_image: Option<String>,
    /// Checks that must pass before the fault is injected (else the exercise does not start)
    /// and again after it is reverted (recovery).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steady_state: Vec<SteadyStateCheck>,
    /// The hypothesis as measurable clauses; each gets a verdict in the report.
    pub expect: Vec<Expectation>,
    /// The automatic Andon cord: when any of these holds, every fault is reverted at once
    /// and the exercise ends as aborted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abort_when: Vec<AbortCondition>,
    /// How soon the steady state must return after the revert. Defaults to 5m.
    #[serde(default)]
    pub recovery: Recovery,
    /// Where the run looks beyond its targets, from the first injection to the end of
    /// recovery: what degrades there is the observed blast radius (collateral).
    #[serde(default, skip_serializing_if = "Watch::is_empty")]
    pub watch: Watch,
    /// What to do when the fault reaches further than the hypothesis said: an alert no
    /// clause names starts firing, or a workload, pod or node outside the targets degrades.
    /// Without `abortOn`, it is recorded in the report. The operator's floor
    /// (`--halt-on-alert`, `--halt-on-collateral-in`) always applies as well.
    #[serde(default, skip_serializing_if = "Unanticipated::is_empty")]
    pub unanticipated: Unanticipated,
}

/// Where a run watches beyond its targets. The target's namespace is always watched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Watch {
    /// More namespaces to watch, e.g. the services that call the target (`orders`), or `*`
    /// for every namespace (needs the right to list cluster-wide; not for tenants of the
    /// controller).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub namespaces: Vec<String>,
    /// Watch Nodes for one that stops being Ready or schedulable. `true`: the run is refused
    /// when it may not; unset: watched when the identity may list and watch Nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<bool>,
}

impl Watch {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.nodes.is_none()
    }
}

/// What to do on unanticipated impact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unanticipated {
    /// Halt the exercise (revert everything, verdict Aborted) on these; anything else
    /// unanticipated is recorded only.
    #[serde(default, skip_serializing_if = "AbortOn::is_empty")]
    pub abort_on: AbortOn,
}

impl Unanticipated {
    pub fn is_empty(&self) -> bool {
        self.abort_on.is_empty()
    }
}

/// The unanticipated impact that halts an exercise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbortOn {
    /// Alert label matchers, as Alertmanager writes them: an unanticipated alert that every
    /// matcher of one entry matches halts, e.g. `severity=~"page|critical"` or
    /// `{team="orders", severity="page"}`. Alerts are read from `--alertmanager-url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub alerts: Vec<String>,
    /// Collateral (a workload below its desired Ready replicas, a pod that restarts or stops
    /// being Ready, outside the targets) in one of these namespaces halts; `*`: in any
    /// watched namespace. A Node that degrades counts under `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub collateral_in: Vec<String>,
}

impl AbortOn {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.collateral_in.is_empty()
    }
}

/// What the faults act on: one named object, or the objects a selector matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// The namespace of the target. Required for every kind but `Node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The kind of object.
    pub kind: TargetKind,
    /// The name of one object. Set either `name` or `selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Selects objects by label. Set either `name` or `selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The kinds of object a scenario can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TargetKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Pod,
    Node,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::StatefulSet => "StatefulSet",
            TargetKind::DaemonSet => "DaemonSet",
            TargetKind::Pod => "Pod",
            TargetKind::Node => "Node",
        }
    }
}

/// A Kubernetes label selector: all `matchLabels` and all `matchExpressions` must match.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// How the label is compared with `values`.
    pub operator: SelectorOperator,
    /// The values for `In` and `NotIn`; must be empty for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Operators of set-based label requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// How many targets are hit, and the guards that protect the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlastRadius {
    /// How `value` is read.
    pub mode: BlastRadiusMode,
    /// The number of targets (mode `count`, at least 1) or the share of them (mode
    /// `percent`, 1 to 100, rounded up). Not used by `one` and `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub value: Option<u32>,
    /// A hard ceiling on the number of targets, whatever the mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max: Option<u32>,
    /// Never act if it would leave fewer Ready pods than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_healthy: Option<u32>,
    /// Skip targets whose PodDisruptionBudget allows no disruption. Defaults to true.
    #[serde(default = "yes")]
    pub respect_pod_disruption_budgets: bool,
}

fn yes() -> bool {
    true
}

impl Default for BlastRadius {
    fn default() -> Self {
        BlastRadius {
            mode: BlastRadiusMode::One,
            value: None,
            max: None,
            min_healthy: None,
            respect_pod_disruption_budgets: true,
        }
    }
}

/// How the number of targets is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BlastRadiusMode {
    /// One target, chosen at random.
    One,
    /// `value` targets.
    Count,
    /// `value` percent of the matching targets, rounded up.
    Percent,
    /// Every matching target (still bounded by `max` and the guards).
    All,
}

impl BlastRadiusMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BlastRadiusMode::One => "one",
            BlastRadiusMode::Count => "count",
            BlastRadiusMode::Percent => "percent",
            BlastRadiusMode::All => "all",
        }
    }
}

/// One fault: set exactly one of its members.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Delete target pods; their controller replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_kill: Option<PodKill>,
    /// Evict target pods through the Eviction API, which honours PodDisruptionBudgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_evict: Option<PodEvict>,
    /// Send a signal to one container's main process; the kubelet restarts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_kill: Option<ContainerKill>,
    /// Set the workload's replicas, restored afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// Mark nodes unschedulable, uncordoned afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cordon: Option<NodeCordon>,
    /// Cordon nodes and evict their pods, uncordoned afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_drain: Option<NodeDrain>,
    /// Cut target pods off the network with a NetworkPolicy, deleted afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_partition: Option<NetworkPartition>,
    /// Block DNS (port 53) for target pods with a NetworkPolicy, deleted afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_failure: Option<DnsFailure>,
    /// Add latency to target pods' traffic (in-pod; ends on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_delay: Option<NetworkDelay>,
    /// Drop a share of target pods' packets (in-pod; ends on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_loss: Option<NetworkLoss>,
    /// Load the CPU inside target pods (in-pod; ends on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_stress: Option<CpuStress>,
    /// Consume memory inside target pods (in-pod; ends on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_stress: Option<MemoryStress>,
}

/// A fault, once it is known that exactly one kind is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind<'a> {
    PodKill(&'a PodKill),
    PodEvict(&'a PodEvict),
    ContainerKill(&'a ContainerKill),
    Scale(&'a Scale),
    NodeCordon(&'a NodeCordon),
    NodeDrain(&'a NodeDrain),
    NetworkPartition(&'a NetworkPartition),
    DnsFailure(&'a DnsFailure),
    NetworkDelay(&'a NetworkDelay),
    NetworkLoss(&'a NetworkLoss),
    CpuStress(&'a CpuStress),
    MemoryStress(&'a MemoryStress),
}

impl Fault {
    /// Every kind that is set, with its wire name.
    pub fn kinds(&self) -> Vec<(&'static str, FaultKind<'_>)> {
        let mut set = Vec::new();
        macro_rules! collect {
            ($($field:ident => $name:literal, $variant:ident;)*) => {
                $(if let Some(params) = &self.$field {
                    set.push(($name, FaultKind::$variant(params)));
                })*
            };
        }
        collect! {
            pod_kill => "podKill", PodKill;
            pod_evict => "podEvict", PodEvict;
            container_kill => "containerKill", ContainerKill;
            scale => "scale", Scale;
            node_cordon => "nodeCordon", NodeCordon;
            node_drain => "nodeDrain", NodeDrain;
            network_partition => "networkPartition", NetworkPartition;
            dns_failure => "dnsFailure", DnsFailure;
            network_delay => "networkDelay", NetworkDelay;
            network_loss => "networkLoss", NetworkLoss;
            cpu_stress => "cpuStress", CpuStress;
            memory_stress => "memoryStress", MemoryStress;
        }
        set
    }

    /// The one kind that is set; `None` when none or several are (validation reports that).
    pub fn kind(&self) -> Option<FaultKind<'_>> {
        match self.kinds().as_slice() {
            [(_, kind)] => Some(*kind),
            _ => None,
        }
    }
}

impl FaultKind<'_> {
    /// The target kinds this fault can act on.
    pub fn fits(&self) -> &'static [TargetKind] {
        use TargetKind::*;
        match self {
            FaultKind::NodeCordon(_) | FaultKind::NodeDrain(_) => &[Node],
            FaultKind::Scale(_) => &[Deployment, StatefulSet],
            _ => &[Deployment, StatefulSet, DaemonSet, Pod],
        }
    }
}

/// Delete pods.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodKill {
    /// Seconds the pod gets to shut down; 0 kills at once. Defaults to the pod's own setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
}

/// Evict pods through the Eviction API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodEvict {
    /// Seconds the pod gets to shut down. Defaults to the pod's own setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
}

/// Signal one container's main process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerKill {
    /// The name of the container in the target pods.
    pub container: String,
    /// The signal to send to the container's main process. Defaults to `TERM`. A container's
    /// PID 1 receives only the signals it handles, and never `KILL` from inside the pod, so
    /// `validate` refuses `KILL`.
    #[serde(default)]
    pub signal: Signal,
}

/// Signals `containerKill` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum Signal {
    #[default]
    TERM,
    KILL,
    INT,
    HUP,
    QUIT,
    USR1,
    USR2,
}

/// Set the number of replicas of a Deployment or StatefulSet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scale {
    /// The replicas to hold during the fault; the previous count is restored afterwards.
    pub replicas: u32,
}

/// Mark nodes unschedulable. Written `nodeCordon: {}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeCordon {}

/// Cordon nodes and evict their pods.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeDrain {
    /// Seconds each evicted pod gets to shut down. Defaults to the pod's own setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
    /// Give up evicting after this long (pods protected by a PDB stay). Defaults to 2m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Isolate pods with a NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPartition {
    /// Which traffic is cut. Defaults to `both`.
    #[serde(default)]
    pub direction: TrafficDirection,
}

/// Directions of traffic a partition cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TrafficDirection {
    /// Nothing reaches the pods.
    Ingress,
    /// The pods reach nothing.
    Egress,
    /// Both.
    #[default]
    Both,
}

/// Block DNS for pods. Written `dnsFailure: {}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsFailure {}

/// Limit an in-pod network fault to some destinations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Only traffic to this network, e.g. `10.0.0.0/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// Only traffic to this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
}

/// Add latency to the pods' outgoing traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkDelay {
    /// The added delay, e.g. `200ms`.
    pub latency: Duration,
    /// Random variation around `latency`, e.g. `50ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Duration>,
    /// How much each delay depends on the previous one, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub correlation: Option<u32>,
    /// Only traffic to these destinations; all traffic when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
}

/// Drop a share of the pods' outgoing packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkLoss {
    /// The share of packets dropped, in percent (above 0, at most 100).
    pub percent: f64,
    /// How much each drop depends on the previous one, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub correlation: Option<u32>,
    /// Only traffic to these destinations; all traffic when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
}

/// Load the CPU inside the pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CpuStress {
    /// The number of busy workers. Defaults to 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 256))]
    pub workers: u32,
    /// How busy each worker is, in percent. Defaults to 100.
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 100))]
    pub load: u32,
}

fn one() -> u32 {
    1
}

fn hundred() -> u32 {
    100
}

/// Consume memory inside the pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryStress {
    /// How much memory, as a Kubernetes quantity, e.g. `256Mi` or `1Gi`.
    pub size: String,
    /// Reach `size` gradually over this long instead of at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Duration>,
}

/// Defines a struct that carries one probe: its own fields, then one optional member per
/// probe kind (`http`, `kube`, `prometheus`, `alert`, `command`), of which exactly one is set.
/// serde cannot `flatten` into a struct that denies unknown fields, hence the macro.
macro_rules! with_probe {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Probe: send an HTTP request and check the answer.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub http: Option<HttpProbe>,
            /// Probe: read the state of a workload or its pods from the Kubernetes API.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub kube: Option<KubeProbe>,
            /// Probe: run a PromQL query and compare the result.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub prometheus: Option<PrometheusProbe>,
            /// Probe: check whether an alert is firing.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub alert: Option<AlertProbe>,
            /// Probe: run a local command and check its exit code (CLI runs only).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub command: Option<CommandProbe>,
        }

        impl HasProbe for $name {
            fn probes(&self) -> Vec<(&'static str, ProbeKind<'_>)> {
                let mut set = Vec::new();
                if let Some(p) = &self.http { set.push(("http", ProbeKind::Http(p))); }
                if let Some(p) = &self.kube { set.push(("kube", ProbeKind::Kube(p))); }
                if let Some(p) = &self.prometheus { set.push(("prometheus", ProbeKind::Prometheus(p))); }
                if let Some(p) = &self.alert { set.push(("alert", ProbeKind::Alert(p))); }
                if let Some(p) = &self.command { set.push(("command", ProbeKind::Command(p))); }
                set
            }
        }
    };
}

/// The wire names of the probe kinds.
pub const PROBE_KINDS: [&str; 5] = ["http", "kube", "prometheus", "alert", "command"];

/// A probe, once it is known that exactly one kind is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeKind<'a> {
    Http(&'a HttpProbe),
    Kube(&'a KubeProbe),
    Prometheus(&'a PrometheusProbe),
    Alert(&'a AlertProbe),
    Command(&'a CommandProbe),
}

impl ScenarioSpec {
    /// Every probe of the scenario (steady state, expectations, abortWhen), with the name of
    /// its clause (`abortWhen` for an unnamed abort condition).
    pub fn named_probes(&self) -> Vec<(String, ProbeKind<'_>)> {
        let steady = (self.steady_state.iter()).filter_map(|c| Some((c.name.clone(), c.probe()?)));
        let expect = (self.expect.iter()).filter_map(|c| Some((c.name.clone(), c.probe()?)));
        let abort = (self.abort_when.iter())
            .filter_map(|c| Some((c.name.clone().unwrap_or_else(|| "abortWhen".into()), c.probe()?)));
        steady.chain(expect).chain(abort).collect()
    }
}

/// Something that carries exactly one probe.
pub trait HasProbe {
    /// Every probe kind that is set, with its wire name.
    fn probes(&self) -> Vec<(&'static str, ProbeKind<'_>)>;

    /// The one probe; `None` when none or several are set (validation reports that).
    fn probe(&self) -> Option<ProbeKind<'_>> {
        match self.probes().as_slice() {
            [(_, kind)] => Some(*kind),
            _ => None,
        }
    }
}

with_probe! {
    /// A check that must pass before injecting and again after the revert.
    pub struct SteadyStateCheck {
        /// A short name, unique in the scenario; shown in the plan and the report.
        pub name: String,
    }
}

with_probe! {
    /// One measurable clause of the hypothesis, with when it must hold: set exactly one of
    /// `within`, `throughout` and `afterRecovery`.
    pub struct Expectation {
        /// A short name, unique in the scenario; the report gives it a verdict.
        pub name: String,
        /// The clause must become true within this long after injection; the time it first
        /// held is recorded (e.g. time to detect).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub within: Option<Duration>,
        /// The clause must hold during the whole fault window. Write `throughout: true`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub throughout: Option<bool>,
        /// The clause must hold once the fault is reverted and the steady state is back.
        /// Write `afterRecovery: true`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub after_recovery: Option<bool>,
    }
}

with_probe! {
    /// A condition that stops the exercise at once and reverts every fault.
    pub struct AbortCondition {
        /// A short name, unique in the scenario; the report says which condition aborted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
    }
}

/// When an expectation is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Within(Duration),
    Throughout,
    AfterRecovery,
}

impl Expectation {
    /// The timing, when exactly one is set to a meaningful value.
    pub fn timing(&self) -> Option<Timing> {
        match (self.within, self.throughout, self.after_recovery) {
            (Some(d), None, None) => Some(Timing::Within(d)),
            (None, Some(true), None) => Some(Timing::Throughout),
            (None, None, Some(true)) => Some(Timing::AfterRecovery),
            _ => None,
        }
    }
}

/// How soon things must be back to normal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recovery {
    /// The steady state must hold again within this long after the revert. Defaults to 5m.
    pub within: Duration,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            within: Duration::from_secs(300),
        }
    }
}

/// Send an HTTP request and check the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    /// The address, http or https, e.g. `http://checkout.shop/healthz`.
    pub url: String,
    /// The request method. Defaults to `GET`.
    #[serde(default)]
    pub method: HttpMethod,
    /// The status the answer must have. Defaults to 200.
    #[serde(default = "ok_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: u32,
    /// The answer must come within this long (a latency budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Duration>,
    /// The body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Give up on a request after this long. Defaults to 2s.
    #[serde(default = "two_seconds")]
    pub timeout: Duration,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn ok_status() -> u32 {
    200
}

fn two_seconds() -> Duration {
    Duration::from_secs(2)
}

/// HTTP methods a probe may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum HttpMethod {
    #[default]
    GET,
    HEAD,
    POST,
}

/// Read the state of a workload or its pods. Set exactly one of `readyReplicas`, `restarts`,
/// `podPhase` and `condition`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeProbe {
    /// The kind of object to read. Defaults to the scenario's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TargetKind>,
    /// The object's name. Defaults to the scenario's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The object's namespace. Defaults to the scenario's target namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Compare the workload's Ready replicas, e.g. `{atLeast: 3}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<Comparison>,
    /// Compare the container restarts summed over the pods, e.g. `{below: 5}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<Comparison>,
    /// Every pod of the target must be in this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_phase: Option<PodPhase>,
    /// A status condition that must have the given status, e.g. `{type: Available, status: "True"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionCheck>,
}

/// The measures a kube probe can take, by wire name.
pub const KUBE_MEASURES: [&str; 4] = ["readyReplicas", "restarts", "podPhase", "condition"];

impl KubeProbe {
    /// The wire names of the measures that are set.
    pub fn measures(&self) -> Vec<&'static str> {
        let set = [
            self.ready_replicas.is_some(),
            self.restarts.is_some(),
            self.pod_phase.is_some(),
            self.condition.is_some(),
        ];
        KUBE_MEASURES
            .iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// Pod phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// A status condition and the status it must have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionCheck {
    /// The condition type, e.g. `Available` or `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status it must have. Defaults to `"True"`.
    #[serde(default)]
    pub status: ConditionStatus,
}

/// Status values of Kubernetes conditions (quote them in YAML: `"True"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    #[default]
    True,
    False,
    Unknown,
}

/// Defines a struct with its own fields followed by the comparison fields (`above`, `below`,
/// `atLeast`, `atMost`, `equals`, `between`), for probes that compare inline.
macro_rules! with_comparison {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// The value must be greater than this.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub above: Option<f64>,
            /// The value must be less than this.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub below: Option<f64>,
            /// The value must be this or more.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub at_least: Option<f64>,
            /// The value must be this or less.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub at_most: Option<f64>,
            /// The value must be exactly this.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub equals: Option<f64>,
            /// The value must lie in `[low, high]`, both included.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub between: Option<[f64; 2]>,
        }

        impl $name {
            /// The comparison part alone.
            pub fn comparison(&self) -> Comparison {
                Comparison {
                    above: self.above,
                    below: self.below,
                    at_least: self.at_least,
                    at_most: self.at_most,
                    equals: self.equals,
                    between: self.between,
                }
            }
        }
    };
}

with_comparison! {
    /// A comparison with a number: set one or more bounds; all must hold.
    pub struct Comparison {}
}

with_comparison! {
    /// Run a PromQL instant query and compare its value. An empty result is inconclusive,
    /// never a pass.
    pub struct PrometheusProbe {
        /// The PromQL query; it must return a single number.
        pub query: String,
        /// The Prometheus base address. Defaults to the one given on the command line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        /// The comparison must hold for this long before the clause counts as true.
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        pub for_: Option<Duration>,
    }
}

/// Check whether an alert is firing, from Prometheus (`ALERTS`) or Alertmanager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertProbe {
    /// The alert name, e.g. `CheckoutDegraded`.
    pub name: String,
    /// Labels the alert must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Whether the alert must be firing (true, the default) or must not be (false).
    #[serde(default = "yes")]
    pub firing: bool,
    /// Where alerts are read. Defaults to `prometheus`.
    #[serde(default)]
    pub source: AlertSource,
    /// The base address of that source. Defaults to the one given on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Where alerts are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AlertSource {
    /// The `ALERTS` series of Prometheus.
    #[default]
    Prometheus,
    /// Alertmanager's v2 API.
    Alertmanager,
}

/// Run a local command; it passes when it exits with the expected code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandProbe {
    /// The program and its arguments, e.g. `["./check-orders.sh", "--quick"]`. No shell is used.
    pub run: Vec<String>,
    /// The exit code that means success. Defaults to 0.
    #[serde(default)]
    pub expect_exit_code: i32,
    /// Stop the command after this long and count it as failed. Defaults to 10s.
    #[serde(default = "ten_seconds")]
    pub timeout: Duration,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
