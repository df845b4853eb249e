//! Reports that last: each finished Exercise's report JSON is kept in ConfigMaps of their own,
//! not owned by the Exercise, so deleting the Exercise (or a GameDay pruning its history)
//! leaves it; months of in-cluster game days can be tracked (`trend --from-cluster`).
//!
//! A report is `report-<exercise>-<8 of its uid>` (key `report.json`), or, too large for one
//! object, split in order over that name and `…-2`, `…-3` with the key `report.json.part` and
//! the annotation `disasterpiece.dev/report-part: I/N`. Every part is labelled with the
//! report's name, its scenario, its team (the Scenario's `team` label) and its target
//! namespace. Each scenario keeps its latest `disasterpiece.dev/keep-reports` reports (an
//! annotation on the Scenario resource; 100 by default); older ones are deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::crd::Exercise;
use crate::report::model::Report;

/// The label every part of a report carries: the report's name.
pub const REPORT_LABEL: &str = "disasterpiece.dev/report";
pub const SCENARIO_LABEL: &str = "disasterpiece.dev/scenario";
pub const TEAM_LABEL: &str = "disasterpiece.dev/team";
pub const TARGET_NAMESPACE_LABEL: &str = "disasterpiece.dev/target-namespace";
/// On a Scenario resource: how many of its reports are kept.
pub const KEEP_ANNOTATION: &str = "disasterpiece.dev/keep-reports";
pub const KEEP_DEFAULT: usize = 100;

/// How much report JSON one ConfigMap holds (the API server takes at most 1 MiB per object).
const PART: usize = 900 * 1024;

/// The name of an Exercise's report: unique per Exercise (a re-created one of the same name
/// gets its own).
pub fn name_for(exercise: &Exercise) -> String {
    let uid: String = exercise
        .uid()
        .unwrap_or_default()
        .chars()
        .filter(|c| *c != '-')
        .take(8)
        .collect();
    let mut name = format!("report-{}", exercise.name_any());
    // Room for `-<uid>` and a part's `-NN` within a label value's 63 characters.
    name.truncate(50);
    format!("{}-{uid}", name.trim_end_matches('-'))
}

/// `text` in parts of at most `limit` bytes, cut between characters. PURE.
pub fn split(text: &str, limit: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// A label value as Kubernetes accepts it, if `value` is one.
fn label_value(value: &str) -> Option<String> {
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && value.chars().last().is_none_or(|c| c.is_ascii_alphanumeric());
    ok.then(|| value.to_owned())
}

/// The labels of every part of `report` (named `name`). PURE.
pub fn labels(name: &str, exercise: &str, report: &Report) -> BTreeMap<String, String> {
    let scenario = &report.scenario;
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_owned(), "disasterpiece".to_owned()),
        ("disasterpiece.dev/exercise".to_owned(), exercise.to_owned()),
        (REPORT_LABEL.to_owned(), name.to_owned()),
    ]);
    if let Some(v) = label_value(&scenario.metadata.name) {
        labels.insert(SCENARIO_LABEL.into(), v);
    }
    if let Some(v) = scenario.metadata.labels.get("team").and_then(|t| label_value(t)) {
        labels.insert(TEAM_LABEL.into(), v);
    }
    if let Some(v) = scenario.spec.target.namespace.as_deref().and_then(label_value) {
        labels.insert(TARGET_NAMESPACE_LABEL.into(), v);
    }
    labels
}

/// Writes the report of `exercise` as `name` in `ns`, then prunes its scenario's old reports.
pub async fn store(
    client: &Client,
    ns: &str,
    name: &str,
    exercise: &Exercise,
    report: &Report,
) -> Result<(), kube::Error> {
    let json = serde_json::to_string(report).unwrap_or_default();
    let parts = split(&json, PART);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let labels = labels(name, &exercise.name_any(), report);
    for (i, part) in parts.iter().enumerate() {
        let (map_name, key) = match (i, parts.len()) {
            (0, 1) => (name.to_owned(), "report.json"),
            (0, _) => (name.to_owned(), "report.json.part"),
            (i, _) => (format!("{name}-{}", i + 1), "report.json.part"),
        };
        let map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": map_name, "namespace": ns, "labels": labels,
                "annotations": {"disasterpiece.dev/report-part": format!("{}/{}", i + 1, parts.len())}},
            "data": {key: part},
        }))
        .map_err(kube::Error::SerdeError)?;
        match api.create(&PostParams::default(), &map).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                api.replace(&map_name, &PostParams::default(), &map).await?;
            }
            Err(e) => return Err(e),
        }
    }
    let keep = report
        .scenario
        .metadata
        .annotations
        .get(KEEP_ANNOTATION)
        .and_then(|k| k.parse::<usize>().ok())
        .unwrap_or(KEEP_DEFAULT)
        .max(1);
    if let Some(scenario) = labels.get(SCENARIO_LABEL) {
        prune(&api, scenario, keep).await?;
    }
    Ok(())
}

/// Deletes all but the latest `keep` reports of `scenario` in the namespace of `api`.
async fn prune(api: &Api<ConfigMap>, scenario: &str, keep: usize) -> Result<(), kube::Error> {
    let maps = api
        .list(&ListParams::default().labels(&format!("{SCENARIO_LABEL}={scenario},{REPORT_LABEL}")))
        .await?
        .items;
    let mut reports: BTreeMap<String, (Option<k8s_openapi::jiff::Timestamp>, Vec<String>)> = BTreeMap::new();
    for map in &maps {
        let Some(report) = map.labels().get(REPORT_LABEL) else {
            continue;
        };
        let entry = reports.entry(report.clone()).or_default();
        let created = map.metadata.creation_timestamp.as_ref().map(|t| t.0);
        entry.0 = entry.0.max(created);
        entry.1.push(map.name_any());
    }
    let mut by_age: Vec<_> = reports.into_iter().collect();
    by_age.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| b.0.cmp(&a.0)));
    for (_, (_, names)) in by_age.into_iter().skip(keep) {
        for name in names {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// A stored report that could not be read, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub name: String,
    pub reason: String,
}

/// Every report stored in `namespace` (or every namespace), its parts joined in order.
pub async fn list(client: &Client, namespace: Option<&str>) -> Result<(Vec<Report>, Vec<Unreadable>), kube::Error> {
    let api: Api<ConfigMap> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let maps = api.list(&ListParams::default().labels(REPORT_LABEL)).await?.items;
    Ok(join(&maps))
}

/// What the review reads of every report stored in `namespace` (or every namespace): the
/// timelines and samples are skipped as each is parsed (see `report::review::Summary`).
pub async fn list_summaries(
    client: &Client,
    namespace: Option<&str>,
) -> Result<(Vec<crate::report::review::Summary>, Vec<Unreadable>), kube::Error> {
    let api: Api<ConfigMap> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let maps = api.list(&ListParams::default().labels(REPORT_LABEL)).await?.items;
    Ok(join_with(&maps, crate::report::store::parse_summary))
}

/// The Deployments and StatefulSets of the cluster (or of `namespace`), for coverage: each
/// with its team: its own `team` label, else its namespace's.
/// Metadata only: a workload's spec is not needed to know whose it is.
pub async fn workloads(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<crate::report::review::Workload>, kube::Error> {
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::core::ObjectMeta;
    fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let team = |meta: &ObjectMeta| meta.labels.as_ref().and_then(|l| l.get("team").cloned());
    let lp = ListParams::default();
    let mut found: Vec<(&str, ObjectMeta)> = api::<Deployment>(client, namespace)
        .list_metadata(&lp)
        .await?
        .items
        .into_iter()
        .map(|d| ("Deployment", d.metadata))
        .collect();
    found.extend(
        api::<StatefulSet>(client, namespace)
            .list_metadata(&lp)
            .await?
            .items
            .into_iter()
            .map(|s| ("StatefulSet", s.metadata)),
    );
    // The namespaces' teams: listed when allowed, else read one by one (the controller may
    // `get` a namespace, not list them all); one that cannot be read has no team.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut teams: BTreeMap<String, Option<String>> = match namespaces.list_metadata(&lp).await {
        Ok(list) => list
            .items
            .into_iter()
            .map(|n| (n.name_any(), team(&n.metadata)))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    for (_, meta) in &found {
        let ns = meta.namespace.clone().unwrap_or_default();
        if team(meta).is_none() && !teams.contains_key(&ns) {
            let read = namespaces.get_metadata_opt(&ns).await.ok().flatten();
            teams.insert(ns, read.and_then(|n| team(&n.metadata)));
        }
    }
    Ok(found
        .into_iter()
        .map(|(kind, meta)| {
            let namespace = meta.namespace.clone().unwrap_or_default();
            crate::report::review::Workload {
                kind: kind.to_owned(),
                team: team(&meta).or_else(|| teams.get(&namespace).cloned().flatten()),
                namespace,
                name: meta.name.clone().unwrap_or_default(),
            }
        })
        .collect())
}

/// One stored part of a report: its index and count (`I/N`) and its text.
type Part = (usize, usize, String);

/// Why a report could not be fetched from the cluster.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "`{0}` names no report or Exercise: use the name `status.report` gives, or the Exercise's (at most 63 letters, digits, `-`, `_`, `.`)"
    )]
    BadName(String),
    #[error("listing the reports in {namespace}: {}", crate::api::api_message(source))]
    List { namespace: String, source: kube::Error },
    #[error("report {name} cannot be read: {reason}")]
    Unreadable { name: String, reason: String },
    #[error(
        "no report named {name} in {namespace}, and no Exercise of that name has one (kubectl get configmaps -n {namespace} -l {REPORT_LABEL})"
    )]
    NotFound { name: String, namespace: String },
}

/// The report named `name` in `namespace` (a report's name, as the Exercise's status gives
/// it, or an Exercise's name: its latest report).
pub async fn fetch(client: &Client, namespace: &str, name: &str) -> Result<Report, FetchError> {
    // The name goes into a label selector: one that is no label value names nothing (and must
    // not add terms to the selector).
    if name.is_empty() || label_value(name).is_none() {
        return Err(FetchError::BadName(name.to_owned()));
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut last = None;
    for selector in [
        format!("{REPORT_LABEL}={name}"),
        format!("{REPORT_LABEL},disasterpiece.dev/exercise={name}"),
    ] {
        let maps = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| FetchError::List {
                namespace: namespace.to_owned(),
                source,
            })?
            .items;
        let (mut reports, unreadable) = join(&maps);
        if let Some(u) = unreadable.first() {
            last = Some(FetchError::Unreadable {
                name: u.name.clone(),
                reason: u.reason.clone(),
            });
        }
        reports.sort_by_key(|r| r.started_at);
        if let Some(report) = reports.pop() {
            return Ok(report);
        }
    }
    Err(last.unwrap_or_else(|| FetchError::NotFound {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
    }))
}

/// The reports in `maps`, each from its parts in order. PURE.
pub fn join(maps: &[ConfigMap]) -> (Vec<Report>, Vec<Unreadable>) {
    join_with(maps, crate::report::store::parse)
}

/// As `join`, each joined report read by `parse`.
fn join_with<T>(
    maps: &[ConfigMap],
    parse: impl Fn(&str) -> Result<T, crate::report::store::LoadError>,
) -> (Vec<T>, Vec<Unreadable>) {
    let mut parts: BTreeMap<(String, String), Vec<Part>> = BTreeMap::new();
    for map in maps {
        let Some(report) = map.labels().get(REPORT_LABEL) else {
            continue;
        };
        let (index, count) = map
            .annotations()
            .get("disasterpiece.dev/report-part")
            .and_then(|p| p.split_once('/'))
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .unwrap_or((1, 1));
        let data = map.data.as_ref();
        let text = data
            .and_then(|d| d.get("report.json").or_else(|| d.get("report.json.part")))
            .cloned()
            .unwrap_or_default();
        parts
            .entry((map.namespace().unwrap_or_default(), report.clone()))
            .or_default()
            .push((index, count, text));
    }
    let mut reports = Vec::new();
    let mut unreadable = Vec::new();
    for ((ns, name), mut pieces) in parts {
        pieces.sort_by_key(|p| p.0);
        let count = pieces.first().map_or(1, |p| p.1);
        let whole = pieces.len() == count && pieces.iter().enumerate().all(|(i, p)| p.0 == i + 1);
        let name = format!("{ns}/{name}");
        if !whole {
            unreadable.push(Unreadable {
                name,
                reason: format!("{} of its {count} parts are stored", pieces.len()),
            });
            continue;
        }
        let text: String = pieces.into_iter().map(|p| p.2).collect();
        match parse(&text) {
            Ok(report) => reports.push(report),
            Err(e) => unreadable.push(Unreadable {
                name,
                reason: e.to_string(),
            }),
        }
    }
    (reports, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_report_is_split_between_characters_and_joins_back() {
        let text = "é".repeat(10) + "abc";
        let parts = split(&text, 5);
        assert!(parts.iter().all(|p| p.len() <= 5), "{parts:?}");
        assert_eq!(parts.concat(), text);
        assert_eq!(split("small", 900), ["small"]);
    }

    #[test]
    fn only_valid_label_values_become_labels() {
        assert_eq!(label_value("payments-team"), Some("payments-team".into()));
        assert_eq!(label_value("Payments Team"), None);
        assert_eq!(label_value(&"x".repeat(64)), None);
        assert_eq!(label_value("-x"), None);
    }
}
