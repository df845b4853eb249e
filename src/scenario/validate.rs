//! Semantic rules: what the types alone cannot say. Pure: values in, findings out.
//!
//! Each finding names the field path it is about; [`super::load`] turns paths into
//! positions. The rules are the product's promises in miniature: a fault is time-bounded,
//! fits its target, never touches a protected namespace, and the hypothesis is measurable.

use std::collections::HashMap;
use std::str::FromStr;

use super::duration::Duration;
use serde::de::DeserializeOwned;
use serde_json::Value as J;

use super::gameday::{GameDay, Notify, Participant, Person, QuietHours, ScenarioRef, Schedule, Stage};
use super::model::*;
use super::problem::{did_you_mean, list};
use super::shape::{child_path, index_path};

/// A problem found by a rule, located by field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) -> &mut Finding {
        self.0.push(Finding {
            path: path.into(),
            message: message.into(),
            hint: None,
        });
        self.0.last_mut().expect("just pushed")
    }
}

impl Finding {
    fn hint(&mut self, hint: impl Into<String>) {
        self.hint = Some(hint.into());
    }
}

/// The part at `pointer` (`/spec/target`), when it is there and well-formed.
fn part<T: DeserializeOwned>(document: &J, pointer: &str) -> Option<T> {
    document.pointer(pointer).and_then(|value| T::deserialize(value).ok())
}

/// The items of the list at `pointer`, each `None` where it is malformed; `None` when the
/// list itself is absent or no list (the structural check reports that).
fn items<T: DeserializeOwned>(document: &J, pointer: &str) -> Option<Vec<Option<T>>> {
    let list = document.pointer(pointer)?.as_array()?;
    Some(list.iter().map(|item| T::deserialize(item).ok()).collect())
}

/// The rules, applied to each well-formed part of a scenario document (JSON, as left by the
/// structural check): a typo in one clause does not hide a protected namespace in another.
pub fn validate_scenario_parts(document: &J) -> Vec<Finding> {
    let mut f = Findings::default();
    if let Some(metadata) = part::<Metadata>(document, "/metadata") {
        check_metadata(&mut f, &metadata);
    }
    if let Some(hypothesis) = part::<String>(document, "/spec/hypothesis")
        && hypothesis.trim().is_empty()
    {
        f.add("spec.hypothesis", "must not be empty")
            .hint("write what you expect to happen, e.g. \"checkout keeps serving while a pod is lost\"");
    }
    if let Some(runbook) = part::<String>(document, "/spec/runbook") {
        check_http_url(&mut f, "spec.runbook", &runbook);
    }
    let target = part::<Target>(document, "/spec/target");
    if let Some(target) = &target {
        check_target(&mut f, target);
    }
    let target_kind = target.as_ref().map(|t| t.kind);
    if document.pointer("/spec/blastRadius").is_some()
        && let Some(radius) = part::<BlastRadius>(document, "/spec/blastRadius")
    {
        check_blast_radius(&mut f, &radius);
    }
    if let Some(faults) = items::<Fault>(document, "/spec/faults") {
        check_faults(
            &mut f,
            &faults,
            target_kind,
            part::<Duration>(document, "/spec/duration"),
        );
    }
    if let Some(image) = part::<String>(document, "/spec/faultImage")
        && (image.is_empty() || image.contains(char::is_whitespace))
    {
        f.add("spec.faultImage", format!("`{image}` is not an image reference"))
            .hint("e.g. `registry.example.com/tools/netshoot:v0.13`");
    }
    if let Some(duration) = part::<Duration>(document, "/spec/duration") {
        let allow_long = part::<bool>(document, "/spec/allowLongDuration").unwrap_or(false);
        check_duration(&mut f, duration, allow_long);
    }

    let mut names: HashMap<String, String> = HashMap::new();
    for (i, check) in items::<SteadyStateCheck>(document, "/spec/steadyState")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(check) = check else { continue };
        let path = index_path("spec.steadyState", i);
        check_clause_name(&mut f, &mut names, &path, Some(&check.name));
        check_probe(&mut f, &path, check, target_kind);
    }
    if let Some(expect) = items::<Expectation>(document, "/spec/expect") {
        if expect.is_empty() {
            f.add("spec.expect", "the hypothesis needs at least one measurable clause")
                .hint("add a clause, e.g. `- {name: pods replaced, kube: {readyReplicas: {atLeast: 3}}, within: 60s}`");
        }
        for (i, clause) in expect.iter().enumerate() {
            let Some(clause) = clause else { continue };
            let path = index_path("spec.expect", i);
            check_clause_name(&mut f, &mut names, &path, Some(&clause.name));
            check_timing(&mut f, &path, clause);
            check_probe(&mut f, &path, clause, target_kind);
        }
    }
    for (i, condition) in items::<AbortCondition>(document, "/spec/abortWhen")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(condition) = condition else { continue };
        let path = index_path("spec.abortWhen", i);
        check_clause_name(&mut f, &mut names, &path, condition.name.as_deref());
        check_probe(&mut f, &path, condition, target_kind);
    }
    if let Some(recovery) = part::<Recovery>(document, "/spec/recovery")
        && recovery.within.is_zero()
    {
        f.add("spec.recovery.within", "must be longer than 0s")
            .hint("give the system time to recover, e.g. `5m`");
    }
    if let Some(watch) = part::<Watch>(document, "/spec/watch") {
        check_watched_namespaces(&mut f, "spec.watch.namespaces", &watch.namespaces);
    }
    if let Some(unanticipated) = part::<Unanticipated>(document, "/spec/unanticipated") {
        check_unanticipated(&mut f, &unanticipated);
    }
    f.0
}

/// Namespaces to watch (or to halt on collateral in): names, or `*` alone; each once.
fn check_watched_namespaces(f: &mut Findings, path: &str, namespaces: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let at = index_path(path, i);
        if !seen.insert(ns.as_str()) {
            f.add(at, format!("`{ns}` is listed twice"))
                .hint("list each namespace once");
        } else if ns == "*" {
            if namespaces.len() > 1 {
                f.add(at, "`*` already means every namespace")
                    .hint("give `*` alone, or the namespaces one by one");
            }
        } else if !is_dns_label(ns) {
            f.add(at, format!("`{ns}` is not a valid namespace name"))
                .hint("use lowercase letters, digits and `-`, at most 63 characters, or `*` for every namespace");
        }
    }
}

fn check_unanticipated(f: &mut Findings, unanticipated: &Unanticipated) {
    let abort_on = &unanticipated.abort_on;
    for (i, text) in abort_on.alerts.iter().enumerate() {
        if let Err(e) = super::matcher::parse(text) {
            f.add(
                index_path("spec.unanticipated.abortOn.alerts", i),
                format!("`{text}` is no alert matcher: {e}"),
            )
            .hint(r#"write Alertmanager matchers, e.g. `severity=~"page|critical"` or `{team="orders", severity="page"}`"#);
        }
    }
    check_watched_namespaces(f, "spec.unanticipated.abortOn.collateralIn", &abort_on.collateral_in);
}

/// Every rule a game day must meet beyond its shape. `file_exists` answers whether a
/// scenario file named by a stage exists (relative to the game day file); the caller
/// does the I/O.
pub fn validate_gameday(gameday: &GameDay, file_exists: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    match serde_json::to_value(gameday) {
        Ok(document) => validate_gameday_parts(&document, file_exists),
        Err(err) => vec![Finding {
            path: String::new(),
            message: format!("the game day cannot be represented: {err}"),
            hint: None,
        }],
    }
}

/// The game day rules, applied to each well-formed part (see [`validate_scenario_parts`]).
pub fn validate_gameday_parts(document: &J, file_exists: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut f = Findings::default();
    if let Some(metadata) = part::<Metadata>(document, "/metadata") {
        check_metadata(&mut f, &metadata);
    }
    if let Some(host) = part::<Person>(document, "/spec/host")
        && host.name.trim().is_empty()
    {
        f.add("spec.host.name", "must not be empty");
    }
    for (i, p) in items::<Participant>(document, "/spec/participants")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if p.as_ref().is_some_and(|p| p.name.trim().is_empty()) {
            f.add(
                child_path(&index_path("spec.participants", i), "name"),
                "must not be empty",
            );
        }
    }
    if let Some(schedule) = part::<Schedule>(document, "/spec/schedule") {
        check_cron(&mut f, "spec.schedule.cron", &schedule.cron);
        check_time_zone(&mut f, "spec.schedule.timeZone", &schedule.time_zone);
    }
    for (i, window) in items::<QuietHours>(document, "/spec/quietHours")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(window) = window else { continue };
        let path = index_path("spec.quietHours", i);
        let start = check_clock(&mut f, &child_path(&path, "start"), &window.start);
        let end = check_clock(&mut f, &child_path(&path, "end"), &window.end);
        if start.is_some() && start == end {
            f.add(
                child_path(&path, "end"),
                "must differ from `start`; an empty window blocks nothing",
            )
            .hint("for a window past midnight write e.g. `start: \"22:00\"`, `end: \"07:00\"`");
        }
    }
    for (i, date) in items::<String>(document, "/spec/blackoutDates")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(date) = date else { continue };
        if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
            f.add(index_path("spec.blackoutDates", i), format!("`{date}` is not a date"))
                .hint("write dates as YYYY-MM-DD, e.g. `2026-12-24`");
        }
    }
    if let Some(notify) = part::<Notify>(document, "/spec/notify") {
        check_http_url(&mut f, "spec.notify.webhook", &notify.webhook);
    }
    let Some(stages) = items::<Stage>(document, "/spec/stages") else {
        return f.0;
    };
    if stages.is_empty() {
        f.add("spec.stages", "a game day needs at least one stage")
            .hint("e.g. `- {name: dev, context: dev-cluster, scenarios: [{file: checkout-pod-loss.yaml}]}`");
    }
    let mut stage_names: HashMap<&str, usize> = HashMap::new();
    for (i, stage) in stages.iter().enumerate() {
        let Some(stage) = stage else { continue };
        let path = index_path("spec.stages", i);
        if !is_dns_label(&stage.name) {
            f.add(
                child_path(&path, "name"),
                format!("`{}` is not a valid stage name", stage.name),
            )
            .hint("use lowercase letters, digits and `-`, e.g. `dev` or `prod`");
        } else if let Some(first) = stage_names.insert(&stage.name, i) {
            f.add(
                child_path(&path, "name"),
                format!("duplicate stage name `{}`", stage.name),
            )
            .hint(format!(
                "stage {first} is already called `{}`; give each stage its own name",
                stage.name
            ));
        }
        if stage.context.is_none() && stage.namespaces.is_empty() {
            f.add(
                path.clone(),
                "a stage must say where it runs: set `context`, `namespaces` or both",
            )
            .hint("e.g. `context: prod-cluster`");
        }
        for (j, ns) in stage.namespaces.iter().enumerate() {
            check_namespace(&mut f, &index_path(&child_path(&path, "namespaces"), j), ns);
        }
        let scenarios_path = child_path(&path, "scenarios");
        if stage.scenarios.is_empty() {
            f.add(scenarios_path.clone(), "a stage needs at least one scenario");
        }
        for (j, reference) in stage.scenarios.iter().enumerate() {
            check_scenario_ref(&mut f, &index_path(&scenarios_path, j), reference, file_exists);
        }
    }
    f.0
}

fn check_metadata(f: &mut Findings, metadata: &Metadata) {
    if !is_dns_subdomain(&metadata.name) {
        f.add("metadata.name", format!("`{}` is not a valid name", metadata.name))
            .hint("use lowercase letters, digits and `-`, starting and ending with a letter or digit, e.g. `checkout-pod-loss`");
    }
    if let Some(ns) = &metadata.namespace
        && !is_dns_label(ns)
    {
        f.add("metadata.namespace", format!("`{ns}` is not a valid namespace name"));
    }
    check_labels(f, "metadata.labels", &metadata.labels);
}

fn check_labels(f: &mut Findings, path: &str, labels: &std::collections::BTreeMap<String, String>) {
    for (key, value) in labels {
        let at = child_path(path, key);
        if !is_label_key(key) {
            f.add(at.clone(), format!("`{key}` is not a valid label key"))
                .hint("a key is an optional DNS prefix and `/`, then up to 63 letters, digits, `-`, `_` or `.`");
        }
        if !is_label_value(value) {
            f.add(at, format!("`{value}` is not a valid label value"))
                .hint("up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit");
        }
    }
}

fn check_namespace(f: &mut Findings, path: &str, namespace: &str) {
    if PROTECTED_NAMESPACES.contains(&namespace) {
        f.add(
            path,
            format!("namespace `{namespace}` is protected; no exercise may act in it"),
        )
        .hint(format!(
            "protected namespaces are {}; target your workload's own namespace",
            list(&PROTECTED_NAMESPACES)
        ));
    } else if !is_dns_label(namespace) {
        f.add(path, format!("`{namespace}` is not a valid namespace name"))
            .hint("use lowercase letters, digits and `-`, at most 63 characters");
    }
}

fn check_target(f: &mut Findings, target: &Target) {
    let kind = target.kind.as_str();
    match (&target.namespace, target.kind) {
        (Some(_), TargetKind::Node) => {
            f.add("spec.target.namespace", "nodes belong to no namespace")
                .hint("remove `namespace` from a Node target");
        }
        (None, TargetKind::Node) => {}
        (None, _) => {
            f.add(
                "spec.target",
                format!("missing required field `namespace` for kind {kind}"),
            )
            .hint(format!("every {kind} lives in a namespace, e.g. `namespace: shop`"));
        }
        (Some(ns), _) => check_namespace(f, "spec.target.namespace", ns),
    }
    match (&target.name, &target.selector) {
        (Some(_), Some(_)) => {
            f.add("spec.target.selector", "set either `name` or `selector`, not both")
                .hint("`name` picks one object; `selector` picks every object with the labels");
        }
        (None, None) => {
            f.add(
                "spec.target",
                "set `name` or `selector` to say which objects are targeted",
            )
            .hint(format!(
                "e.g. `name: checkout`, or `selector: {{matchLabels: {{app: checkout}}}}` for every matching {kind}"
            ));
        }
        (Some(name), None) => {
            if !is_dns_subdomain(name) {
                f.add("spec.target.name", format!("`{name}` is not a valid {kind} name"));
            }
        }
        (None, Some(selector)) => check_selector(f, "spec.target.selector", selector, kind),
    }
}

fn check_selector(f: &mut Findings, path: &str, selector: &LabelSelector, kind: &str) {
    if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
        f.add(path, format!("an empty selector selects every {kind}"))
            .hint("name at least one label in `matchLabels` or `matchExpressions`");
    }
    check_labels(f, &child_path(path, "matchLabels"), &selector.match_labels);
    for (i, req) in selector.match_expressions.iter().enumerate() {
        let at = index_path(&child_path(path, "matchExpressions"), i);
        let op = match req.operator {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
        };
        match (req.operator, req.values.is_empty()) {
            (SelectorOperator::In | SelectorOperator::NotIn, true) => {
                f.add(
                    child_path(&at, "values"),
                    format!("operator {op} needs at least one value"),
                );
            }
            (SelectorOperator::Exists | SelectorOperator::DoesNotExist, false) => {
                f.add(child_path(&at, "values"), format!("operator {op} takes no values"))
                    .hint("remove `values`, or use `In`/`NotIn`");
            }
            _ => {}
        }
        if !is_label_key(&req.key) {
            f.add(
                child_path(&at, "key"),
                format!("`{}` is not a valid label key", req.key),
            );
        }
    }
}

fn check_blast_radius(f: &mut Findings, radius: &BlastRadius) {
    let mode = radius.mode.as_str();
    match (radius.mode, radius.value) {
        (BlastRadiusMode::Percent, Some(v)) if !(1..=100).contains(&v) => {
            f.add(
                "spec.blastRadius.value",
                format!("must be between 1 and 100 for mode percent (got {v})"),
            )
            .hint("a percentage of the matching targets, rounded up; use `max` to cap the count");
        }
        (BlastRadiusMode::Percent | BlastRadiusMode::Count, None) => {
            f.add(
                "spec.blastRadius",
                format!("missing required field `value` for mode {mode}"),
            )
            .hint(if radius.mode == BlastRadiusMode::Percent {
                "e.g. `value: 30` for 30 percent of the matching targets"
            } else {
                "e.g. `value: 2` for two targets"
            });
        }
        (BlastRadiusMode::One | BlastRadiusMode::All, Some(_)) => {
            f.add("spec.blastRadius.value", format!("has no meaning for mode {mode}"))
                .hint("remove `value`, or use mode `count` or `percent`");
        }
        _ => {}
    }
}

fn check_faults(
    f: &mut Findings,
    faults: &[Option<Fault>],
    target_kind: Option<TargetKind>,
    duration: Option<Duration>,
) {
    if faults.is_empty() {
        f.add("spec.faults", "at least one fault is needed")
            .hint("e.g. `- podKill: {}`");
    }
    let mut scale_seen = false;
    for (i, fault) in faults.iter().enumerate() {
        let Some(fault) = fault else { continue };
        let path = index_path("spec.faults", i);
        let union = Union {
            options: &FAULT_KINDS,
            none: "a fault must name its kind",
            several: "a fault sets exactly one kind",
            split: "write each fault as its own list item",
        };
        let Some((name, kind)) = union.check(f, &path, &fault.kinds()) else {
            continue;
        };
        let at = child_path(&path, name);
        if let Some(target) = target_kind.filter(|k| !kind.fits().contains(k)) {
            let fits: Vec<&str> = kind.fits().iter().map(|k| k.as_str()).collect();
            f.add(
                at.clone(),
                format!("`{name}` cannot act on a {} target", target.as_str()),
            )
            .hint(format!(
                "`{name}` acts on {}; change `spec.target.kind` or choose another fault",
                fits.join(", ")
            ));
        }
        match kind {
            FaultKind::Scale(_) if scale_seen => {
                f.add(at.clone(), "only one `scale` fault per scenario")
                    .hint("two scale faults would fight over the replica count");
            }
            FaultKind::Scale(_) => scale_seen = true,
            FaultKind::ContainerKill(params) if !is_dns_label(&params.container) => {
                f.add(
                    child_path(&at, "container"),
                    format!("`{}` is not a valid container name", params.container),
                );
            }
            FaultKind::ContainerKill(params) if params.signal == crate::scenario::model::Signal::KILL => {
                f.add(
                    child_path(&at, "signal"),
                    "KILL cannot reach a container's main process from inside the pod",
                )
                .hint("a container's PID 1 never receives KILL from its own PID namespace (pid_namespaces(7)); use TERM, INT or QUIT, or podKill with gracePeriodSeconds: 0");
            }
            FaultKind::NodeDrain(params) if params.timeout.is_some_and(Duration::is_zero) => {
                f.add(child_path(&at, "timeout"), "must be longer than 0s");
            }
            FaultKind::NetworkDelay(params) => {
                if params.latency.is_zero() {
                    f.add(child_path(&at, "latency"), "must be longer than 0s")
                        .hint("e.g. `latency: 200ms`");
                }
                check_destination(f, &at, params.destination.as_ref());
            }
            FaultKind::NetworkLoss(params) => {
                if !(params.percent > 0.0 && params.percent <= 100.0) {
                    f.add(
                        child_path(&at, "percent"),
                        format!("must be above 0 and at most 100 (got {})", params.percent),
                    );
                }
                check_destination(f, &at, params.destination.as_ref());
            }
            FaultKind::MemoryStress(params) => {
                if !is_positive_quantity(&params.size) {
                    f.add(
                        child_path(&at, "size"),
                        format!("`{}` is not a memory size", params.size),
                    )
                    .hint("write a Kubernetes quantity such as `256Mi` or `1Gi`");
                }
                // The fault ends when `duration` does: a ramp as long would never hold the
                // whole size.
                if let (Some(ramp), Some(duration)) = (params.ramp, duration)
                    && ramp >= duration
                {
                    f.add(
                        child_path(&at, "ramp"),
                        format!("must be shorter than the duration ({duration}), within which the fault ramps up and holds (got {ramp})"),
                    )
                    .hint("shorten `ramp` or lengthen `duration`: e.g. `ramp: 30s` with `duration: 2m`");
                }
            }
            _ => {}
        }
    }
}

/// The wire names of the fault kinds, in the order of [`Fault`]'s members.
pub const FAULT_KINDS: [&str; 12] = [
    "podKill",
    "podEvict",
    "containerKill",
    "scale",
    "nodeCordon",
    "nodeDrain",
    "networkPartition",
    "dnsFailure",
    "networkDelay",
    "networkLoss",
    "cpuStress",
    "memoryStress",
];

fn check_destination(f: &mut Findings, fault_path: &str, destination: Option<&Destination>) {
    let Some(cidr) = destination.and_then(|d| d.cidr.as_deref()) else {
        return;
    };
    if !is_cidr(cidr) {
        f.add(
            child_path(&child_path(fault_path, "destination"), "cidr"),
            format!("`{cidr}` is not a network"),
        )
        .hint("write an address and prefix length, e.g. `10.0.0.0/8` or `fd00::/8`");
    }
}

fn check_duration(f: &mut Findings, d: Duration, allow_long: bool) {
    if d.is_zero() {
        f.add("spec.duration", "must be longer than 0s")
            .hint("how long the fault holds, e.g. `2m`");
    } else if d > HARD_DURATION_CAP {
        f.add(
            "spec.duration",
            format!("must be at most {HARD_DURATION_CAP} (got {d})"),
        )
        .hint("every fault is time-bounded; split a longer exercise into several");
    } else if d > DURATION_CAP && !allow_long {
        f.add("spec.duration", format!("must be at most {DURATION_CAP} (got {d})"))
            .hint(format!(
                "shorten it, or set `spec.allowLongDuration: true` to allow up to {HARD_DURATION_CAP}"
            ));
    }
}

fn check_clause_name(f: &mut Findings, names: &mut HashMap<String, String>, path: &str, name: Option<&str>) {
    let Some(name) = name else { return };
    let at = child_path(path, "name");
    if name.trim().is_empty() {
        f.add(at, "must not be empty")
            .hint("a short name the report can refer to, e.g. `pods replaced`");
    } else if let Some(first) = names.get(name) {
        f.add(at, format!("duplicate clause name `{name}`")).hint(format!(
            "`{first}` already has this name; the report needs each clause named once"
        ));
    } else {
        names.insert(name.to_owned(), path.to_owned());
    }
}

fn check_timing(f: &mut Findings, path: &str, clause: &Expectation) {
    let set: Vec<&str> = [
        ("within", clause.within.is_some()),
        ("throughout", clause.throughout.is_some()),
        ("afterRecovery", clause.after_recovery.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    match set.as_slice() {
        [] => {
            f.add(path, "say when the clause must hold")
                .hint("set one of `within: 60s`, `throughout: true` or `afterRecovery: true`");
        }
        [_] => {}
        [_, second, ..] => {
            f.add(child_path(path, second), format!("set only one of {}", list(&set)))
                .hint("`within` must become true by a deadline; `throughout` must hold the whole fault window");
        }
    }
    if clause.within.is_some_and(Duration::is_zero) {
        f.add(child_path(path, "within"), "must be longer than 0s");
    }
    for (name, value) in [
        ("throughout", clause.throughout),
        ("afterRecovery", clause.after_recovery),
    ] {
        if value == Some(false) {
            f.add(child_path(path, name), format!("`{name}: false` means nothing"))
                .hint(format!("write `{name}: true`, or remove it"));
        }
    }
}

fn check_probe(f: &mut Findings, path: &str, clause: &impl HasProbe, target_kind: Option<TargetKind>) {
    let union = Union {
        options: &PROBE_KINDS,
        none: "a clause must name what it measures",
        several: "a clause measures one thing",
        split: "split it into one clause per probe",
    };
    let Some((name, probe)) = union.check(f, path, &clause.probes()) else {
        return;
    };
    let at = child_path(path, name);
    match probe {
        ProbeKind::Http(http) => {
            check_http_url(f, &child_path(&at, "url"), &http.url);
            for (name, value) in &http.headers {
                if let Some(problem) = header_problem(&http.url, name, value) {
                    f.add(child_path(&child_path(&at, "headers"), name), problem).hint(
                        "headers are for the service under test (e.g. `X-Canary: 1`); credentials and routing are not the scenario's to set",
                    );
                }
            }
            if http.timeout.is_zero() {
                f.add(child_path(&at, "timeout"), "must be longer than 0s");
            }
            if let Some(budget) = http.max_latency.filter(|b| *b > http.timeout) {
                f.add(
                    child_path(&at, "maxLatency"),
                    format!("{budget} is longer than the timeout ({})", http.timeout),
                )
                .hint("a request is abandoned at the timeout, so this budget can never be exceeded; raise `timeout`");
            }
        }
        ProbeKind::Kube(kube) => {
            let measures: Vec<(&str, ())> = kube.measures().into_iter().map(|m| (m, ())).collect();
            let union = Union {
                options: &KUBE_MEASURES,
                none: "a kube probe must say what it reads",
                several: "a kube probe reads one thing",
                split: "split it into one clause per measure",
            };
            union.check(f, &at, &measures);
            let kind = kube.kind.or(target_kind);
            if let Some(kind) =
                kind.filter(|k| kube.ready_replicas.is_some() && matches!(k, TargetKind::Pod | TargetKind::Node))
            {
                f.add(
                    child_path(&at, "readyReplicas"),
                    format!("a {} has no replicas", kind.as_str()),
                )
                .hint("read `readyReplicas` of a Deployment, StatefulSet or DaemonSet: set `kind` and `name`");
            }
            if let Some(ns) = &kube.namespace {
                check_namespace(f, &child_path(&at, "namespace"), ns);
            }
            for (measure, cmp) in [("readyReplicas", &kube.ready_replicas), ("restarts", &kube.restarts)] {
                if let Some(cmp) = cmp {
                    check_comparison(f, &child_path(&at, measure), cmp);
                }
            }
        }
        ProbeKind::Prometheus(prom) => {
            let query_path = child_path(&at, "query");
            if prom.query.trim().is_empty() {
                f.add(query_path, "the PromQL query is empty")
                    .hint("e.g. `sum(rate(http_requests_total{code=~\"5..\"}[1m]))`");
            } else if let Some(problem) = promql_balance(&prom.query) {
                f.add(query_path, format!("the PromQL query is malformed: {problem}"));
            }
            if let Some(url) = &prom.url {
                check_http_url(f, &child_path(&at, "url"), url);
            }
            check_comparison(f, &at, &prom.comparison());
        }
        ProbeKind::Alert(alert) => {
            if alert.name.trim().is_empty() {
                f.add(child_path(&at, "name"), "must not be empty")
                    .hint("the alert name, e.g. `CheckoutDegraded`");
            }
            if let Some(url) = &alert.url {
                check_http_url(f, &child_path(&at, "url"), url);
            }
        }
        ProbeKind::Command(command) => {
            if command.run.first().is_none_or(|program| program.trim().is_empty()) {
                f.add(child_path(&at, "run"), "name the program to run")
                    .hint("e.g. `run: [\"./check-orders.sh\", \"--quick\"]`");
            }
            if command.timeout.is_zero() {
                f.add(child_path(&at, "timeout"), "must be longer than 0s");
            }
        }
    }
}

/// "Set exactly one of these": how a union of optional members is checked and explained.
struct Union<'a> {
    options: &'a [&'a str],
    none: &'a str,
    several: &'a str,
    split: &'a str,
}

impl Union<'_> {
    /// The one member that is set, or `None` after reporting that none or several are.
    fn check<T: Copy>(&self, f: &mut Findings, path: &str, set: &[(&'static str, T)]) -> Option<(&'static str, T)> {
        match set {
            [only] => Some(*only),
            [] => {
                f.add(path, self.none)
                    .hint(format!("set one of {}", list(self.options)));
                None
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
                f.add(path, format!("{}, found {}", self.several, list(&names)))
                    .hint(self.split);
                None
            }
        }
    }
}

fn check_comparison(f: &mut Findings, path: &str, cmp: &Comparison) {
    let any = cmp.above.is_some()
        || cmp.below.is_some()
        || cmp.at_least.is_some()
        || cmp.at_most.is_some()
        || cmp.equals.is_some()
        || cmp.between.is_some();
    if !any {
        f.add(path, "say what the value is compared with")
            .hint("set one of `above`, `below`, `atLeast`, `atMost`, `equals` or `between`");
        return;
    }
    if let Some([low, high]) = cmp.between.filter(|[low, high]| low > high) {
        f.add(
            child_path(path, "between"),
            format!("the low bound {low} is above the high bound {high}"),
        )
        .hint("write `[low, high]`");
    }
    let lower = [cmp.above.map(|v| (v, true)), cmp.at_least.map(|v| (v, false))];
    let upper = [cmp.below.map(|v| (v, true)), cmp.at_most.map(|v| (v, false))];
    for (low, strict_low) in lower.into_iter().flatten() {
        for (high, strict_high) in upper.into_iter().flatten() {
            if low > high || (low == high && (strict_low || strict_high)) {
                f.add(
                    path,
                    format!("can never hold: the lower bound {low} is not below the upper bound {high}"),
                )
                .hint("check which bound is `above`/`atLeast` and which is `below`/`atMost`");
                return;
            }
        }
    }
}

fn check_http_url(f: &mut Findings, path: &str, text: &str) {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            f.add(
                path,
                format!("`{text}` is not an http or https URL (scheme `{}`)", url.scheme()),
            )
            .hint("e.g. `http://checkout.shop/healthz`");
        }
        Ok(_) => {
            f.add(path, format!("`{text}` has no host"))
                .hint("e.g. `http://checkout.shop/healthz`");
        }
        Err(err) => {
            f.add(path, format!("`{text}` is not a valid URL: {err}"))
                .hint("write a full address with scheme and host, e.g. `http://checkout.shop/healthz`");
        }
    }
}

fn check_cron(f: &mut Findings, path: &str, expression: &str) {
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build();
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 && !expression.trim().starts_with('@') {
        f.add(
            path,
            format!(
                "`{expression}` is not a 5-field cron expression (it has {})",
                fields.len()
            ),
        )
        .hint("write minute hour day-of-month month day-of-week, e.g. `0 14 * * WED`");
    } else if let Some(out_of_range) = cron_range_problem(&fields) {
        f.add(
            path,
            format!("`{expression}` is not a valid cron expression: {out_of_range}"),
        )
        .hint("write minute hour day-of-month month day-of-week, e.g. `0 14 * * WED`");
    } else if let Err(err) = parser.parse(expression) {
        f.add(path, format!("`{expression}` is not a valid cron expression: {err}"))
            .hint("write minute hour day-of-month month day-of-week, e.g. `0 14 * * WED`");
    }
}

/// The first number outside its field's range, said in words (croner only says "out of bounds").
fn cron_range_problem(fields: &[&str]) -> Option<String> {
    const RANGES: [(&str, u32, u32); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day-of-month", 1, 31),
        ("month", 1, 12),
        ("day-of-week", 0, 7),
    ];
    for (field, (name, low, high)) in fields.iter().zip(RANGES) {
        for item in field.split(',') {
            // The step after `/` is a count, not a value of the field.
            let values = item.split('/').next().unwrap_or(item);
            for number in values.split('-').filter_map(|n| n.parse::<u32>().ok()) {
                if number < low || number > high {
                    return Some(format!("the {name} field allows {low}-{high}, not {number}"));
                }
            }
        }
    }
    None
}

fn check_time_zone(f: &mut Findings, path: &str, zone: &str) {
    if chrono_tz::Tz::from_str(zone).is_ok() {
        return;
    }
    let finding = f.add(path, format!("unknown time zone `{zone}`"));
    let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    match did_you_mean(zone, names) {
        Some(suggestion) => finding.hint(format!("did you mean `{suggestion}`?")),
        None => finding.hint("use an IANA time zone name, e.g. `Europe/Berlin` or `America/New_York`"),
    }
}

/// `HH:MM` on a 24-hour clock, as minutes after midnight.
fn check_clock(f: &mut Findings, path: &str, text: &str) -> Option<u32> {
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !(two_digits(h) && two_digits(m)) {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        f.add(path, format!("`{text}` is not a time of day"))
            .hint("write `HH:MM` on a 24-hour clock, quoted: `\"22:00\"`");
    }
    parsed
}

fn check_scenario_ref(f: &mut Findings, path: &str, reference: &ScenarioRef, file_exists: &dyn Fn(&str) -> bool) {
    match (&reference.file, &reference.name) {
        (Some(_), Some(_)) => {
            f.add(child_path(path, "name"), "set either `file` or `name`, not both");
        }
        (None, None) => {
            f.add(path, "name a scenario with `file` or `name`")
                .hint("e.g. `- file: checkout-pod-loss.yaml` or `- name: checkout-pod-loss`");
        }
        (Some(file), None) => {
            if !file_exists(file) {
                f.add(
                    child_path(path, "file"),
                    format!("scenario file `{file}` does not exist"),
                )
                .hint("paths are relative to the game day file");
            }
        }
        (None, Some(name)) => {
            if !is_dns_subdomain(name) {
                f.add(
                    child_path(path, "name"),
                    format!("`{name}` is not a valid scenario name"),
                );
            }
        }
    }
}

/// Finds the first unbalanced bracket or unterminated string in a PromQL query. This is no
/// PromQL parser; it catches the typos that otherwise only show up at run time.
pub fn promql_balance(query: &str) -> Option<String> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Some(format!("the string starting at character {} is not closed", i + 1));
                }
            }
            '#' => break, // a comment runs to the end
            '(' | '[' | '{' => stack.push((c, i)),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match stack.pop() {
                    Some((o, _)) if o == open => {}
                    _ => return Some(format!("`{c}` at character {} has no matching `{open}`", i + 1)),
                }
            }
            _ => {}
        }
    }
    stack
        .pop()
        .map(|(c, i)| format!("`{c}` at character {} is never closed", i + 1))
}

pub use disasterpiece_common::names::{is_dns_label, is_dns_subdomain};

/// Why an http probe may not send header `name: value` to `url`, if it may not: a name that
/// is not an HTTP token, a value with a line break or another control character (it would
/// add headers or a body of its own), a header that frames or routes the request or carries
/// credentials, or any header through the API server's service proxy (it would reach the API
/// server, `Impersonate-User` included). The probe checks the same before it sends.
pub fn header_problem(url: &str, name: &str, value: &str) -> Option<String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Some(format!(
            "`{}` is not a header name (letters, digits and !#$%&'*+-.^_`|~)",
            name.escape_debug()
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Some(format!(
            "the value of `{name}` has a line break or control character (`{}`), which would add to the request",
            value.escape_debug()
        ));
    }
    let lower = name.to_ascii_lowercase();
    const FORBIDDEN: [&str; 12] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
        "authorization",
    ];
    if FORBIDDEN.contains(&lower.as_str()) || lower.starts_with("impersonate-") {
        return Some(format!("`{name}` may not be set by a probe"));
    }
    let through_proxy = url::Url::parse(url)
        .ok()
        .is_some_and(|u| crate::scenario::address::service_address(&u).is_some());
    if through_proxy {
        return Some(format!(
            "`{name}`: a NAME.NAMESPACE.svc address is reached through the API server's service proxy, which would receive the header; probes send no headers there"
        ));
    }
    None
}

fn is_label_value(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    s.is_empty()
        || (s.len() <= 63
            && s.bytes().all(ok)
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else { return false };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// A positive Kubernetes quantity with a memory-style suffix (`256Mi`, `1Gi`, `500M`).
fn is_positive_quantity(s: &str) -> bool {
    quantity_bytes(s).is_some_and(|b| b > 0)
}

/// The bytes a memory quantity (`256Mi`, `1Gi`, `500M`, `1.5Gi`) stands for; `None` when it is
/// not one.
pub fn quantity_bytes(s: &str) -> Option<u64> {
    const SUFFIXES: [(&str, u64); 13] = [
        ("", 1),
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let well_formed = !number.is_empty() && number.split('.').count() <= 2 && number.split('.').all(|p| !p.is_empty());
    let value = number.parse::<f64>().ok().filter(|n| well_formed && *n > 0.0)?;
    let (_, unit) = SUFFIXES.iter().find(|(name, _)| *name == suffix)?;
    let bytes = value * *unit as f64;
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_balance_finds_typos_and_accepts_valid_queries() {
        let valid = [
            "sum(rate(http_requests_total{code=~\"5..\"}[1m]))",
            "up{job='a)'}",
            "rate(x[5m]) # a comment with (",
        ];
        for query in valid {
            assert_eq!(promql_balance(query), None, "{query}");
        }
        let invalid = [
            ("sum(rate(x[1m])", "never closed"),
            ("sum(x))", "no matching"),
            ("up{job=\"a}", "not closed"),
            ("rate(x[1m)]", "no matching"),
        ];
        for (query, fragment) in invalid {
            let problem = promql_balance(query).unwrap_or_default();
            assert!(problem.contains(fragment), "{query}: {problem}");
        }
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(is_dns_label("checkout-1"));
        assert!(!is_dns_label("Checkout"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("a.b-c"));
        assert!(is_dns_subdomain(&"a".repeat(100)), "a part may be longer than 63");
        assert!(!is_dns_subdomain(&"a".repeat(254)));
        assert!(!is_dns_subdomain("a..b"));
        assert!(is_label_key("app.kubernetes.io/name"));
        assert!(!is_label_key("a/b/c"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
    }

    #[test]
    fn quantities_and_networks() {
        assert_eq!(quantity_bytes("256Mi"), Some(256 << 20));
        assert_eq!(quantity_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_bytes("500M"), Some(500_000_000));
        for ok in ["256Mi", "1Gi", "500M", "1.5Gi", "1024"] {
            assert!(is_positive_quantity(ok), "{ok}");
        }
        for bad in ["0Mi", "Mi", "1GB", "1..5Gi", "-1Gi", ""] {
            assert!(!is_positive_quantity(bad), "{bad}");
        }
        assert!(is_cidr("10.0.0.0/8"));
        assert!(is_cidr("fd00::/8"));
        assert!(!is_cidr("10.0.0.0/33"));
        assert!(!is_cidr("10.0.0.0"));
    }
}
