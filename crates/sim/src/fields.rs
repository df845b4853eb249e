//! Field ownership (`metadata.managedFields`), as server-side apply keeps it: who set each
//! field, by an update or by an apply, and the conflicts an apply meets when it would change a
//! field another manager owns. Lists whose items Kubernetes merges by a key (containers by
//! name, ports by port, conditions by type) are owned item by item; other lists as a whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field: its path of `f:name` and `k:{"name":"app"}` steps, as `fieldsV1` spells them.
pub type Path = Vec<String>;

/// Who writes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    pub name: String,
    /// `Apply` or `Update`.
    pub operation: &'static str,
    /// `""`, or `status` for a write to the status subresource.
    pub subresource: &'static str,
}

/// One field an apply would change that another manager owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    /// `.spec.replicas`, `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
}

/// The key an item of list `field` is owned by: its merge key (`patch::merge_key`), and for
/// ports the protocol too, as Kubernetes keys them.
fn item_key(field: &str, item: &Value) -> Option<Value> {
    let keys: &[&str] = match field {
        "ports" if item.get("containerPort").is_some() => &["containerPort", "protocol"],
        "ports" => &["port", "protocol"],
        _ => &[super::patch::merge_key(field)?],
    };
    let mut key = Map::new();
    for k in keys {
        key.insert((*k).to_owned(), item.get(*k)?.clone());
    }
    Some(Value::Object(key))
}

/// The fields of `object` a manager can own, with their values: every leaf, atomic lists
/// whole. Identity and server-set metadata are nobody's; `status` belongs to the status
/// subresource and only to it.
pub fn leaves(object: &Value, subresource: &str) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    let Some(map) = object.as_object() else {
        return out;
    };
    for (key, value) in map {
        let owned = match key.as_str() {
            "apiVersion" | "kind" => false,
            "status" => subresource == "status",
            "metadata" => subresource.is_empty(),
            _ => subresource.is_empty(),
        };
        if !owned {
            continue;
        }
        if key == "metadata" {
            for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                if let Some(v) = value.get(field) {
                    walk(v, field, vec!["f:metadata".into(), format!("f:{field}")], &mut out);
                }
            }
            continue;
        }
        walk(value, key, vec![format!("f:{key}")], &mut out);
    }
    out
}

fn walk(value: &Value, field: &str, path: Path, out: &mut BTreeMap<Path, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(v, k, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(|i| item_key(field, i).is_some()) => {
            for item in items {
                let key = item_key(field, item).unwrap_or_default();
                let mut p = path.clone();
                p.push(format!("k:{key}"));
                // The item itself, so an item with only its key is still owned.
                let mut me = p.clone();
                me.push(".".into());
                out.insert(me, key.clone());
                if let Value::Object(map) = item {
                    for (k, v) in map {
                        let mut q = p.clone();
                        q.push(format!("f:{k}"));
                        walk(v, k, q, out);
                    }
                }
            }
        }
        _ => {
            out.insert(path, value.clone());
        }
    }
}

/// `fieldsV1` of a set of paths.
fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = json!({});
    for path in paths {
        let mut node = &mut root;
        for step in path {
            node = node
                .as_object_mut()
                .expect("fieldsV1 nodes are objects")
                .entry(step.clone())
                .or_insert_with(|| json!({}));
        }
    }
    root
}

fn from_fields_v1(value: &Value) -> BTreeSet<Path> {
    fn go(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        let Some(map) = value.as_object().filter(|m| !m.is_empty()) else {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        };
        for (k, v) in map {
            prefix.push(k.clone());
            go(v, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    go(value, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry, read.
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
    time: Value,
    fields: BTreeSet<Path>,
}

fn entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_owned(),
            operation: e["operation"].as_str().unwrap_or_default().to_owned(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_owned(),
            time: e.get("time").cloned().unwrap_or(Value::Null),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn store(object: &mut Value, list: Vec<Entry>) {
    let rendered: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields)});
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if rendered.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(rendered));
        }
    }
}

/// Records a write of `new` (which was `old`, or nothing for a create) by `manager`: the
/// fields it changed become its own and no one else's, fields it removed no one's. For an
/// apply, `applied` is the set its configuration names: the manager owns exactly those, and
/// shares those it left as they were with whoever owned them.
pub fn record(
    old: Option<&Value>,
    new: &mut Value,
    manager: &Manager,
    applied: Option<&BTreeSet<Path>>,
    api_version: &str,
    now: &str,
) {
    let before = old.map(|o| leaves(o, manager.subresource)).unwrap_or_default();
    let after = leaves(new, manager.subresource);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed: BTreeSet<Path> = before.keys().filter(|p| !after.contains_key(*p)).cloned().collect();
    let mut list = old.map(entries).unwrap_or_default();
    for e in &mut list {
        let mine =
            e.manager == manager.name && e.operation == manager.operation && e.subresource == manager.subresource;
        if !mine {
            e.fields.retain(|p| !changed.contains(p) && !removed.contains(p));
        }
    }
    let position = list.iter().position(|e| {
        e.manager == manager.name && e.operation == manager.operation && e.subresource == manager.subresource
    });
    let fields = match applied {
        Some(set) => set.iter().filter(|p| after.contains_key(*p)).cloned().collect(),
        None => {
            let mut set = position.map(|i| list[i].fields.clone()).unwrap_or_default();
            set.retain(|p| !removed.contains(p));
            set.extend(changed.iter().cloned());
            set
        }
    };
    let entry = Entry {
        manager: manager.name.clone(),
        operation: manager.operation.into(),
        api_version: api_version.into(),
        subresource: manager.subresource.into(),
        time: json!(now),
        fields,
    };
    match position {
        Some(i) => list[i] = entry,
        None => list.push(entry),
    }
    store(new, list);
}

/// The fields of `live` an apply of `applied` by `manager` would change that another manager
/// owns: a conflict unless the apply is forced.
pub fn conflicts(live: &Value, applied: &Value, manager: &str) -> Vec<Conflict> {
    let wanted = leaves(applied, "");
    let current = leaves(live, "");
    let mut out = Vec::new();
    for e in entries(live) {
        if (e.manager == manager && e.operation == "Apply") || !e.subresource.is_empty() {
            continue;
        }
        for (path, value) in &wanted {
            if path.last().is_some_and(|s| s == ".") {
                continue;
            }
            if e.fields.contains(path) && current.get(path) != Some(value) {
                out.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    field: render(path),
                });
            }
        }
    }
    out
}

/// The paths an apply configuration names.
pub fn applied_paths(applied: &Value) -> BTreeSet<Path> {
    leaves(applied, "").into_keys().collect()
}

/// What an apply by `manager` drops: the fields it applied before and no longer names, that
/// no other manager owns.
pub fn dropped(live: &Value, manager: &str, now_applied: &BTreeSet<Path>) -> Vec<Path> {
    let list = entries(live);
    let before = list
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource.is_empty())
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    before
        .into_iter()
        .filter(|p| !now_applied.contains(p))
        .filter(|p| !list.iter().any(|e| e.manager != manager && e.fields.contains(p)))
        .filter(|p| p.last().is_none_or(|s| s != "."))
        .collect()
}

/// Removes the field at `path` from `object` (a keyed item's fields by its key).
pub fn remove(object: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if let Some(name) = first.strip_prefix("f:") {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        if rest.is_empty() {
            map.remove(name);
        } else if let Some(child) = map.get_mut(name) {
            remove(child, rest);
        }
    } else if let Some(key) = first.strip_prefix("k:") {
        let key: Value = serde_json::from_str(key).unwrap_or(Value::Null);
        let Some(items) = object.as_array_mut() else {
            return;
        };
        let matches = |item: &Value| {
            key.as_object()
                .is_some_and(|k| k.iter().all(|(f, v)| item.get(f) == Some(v)))
        };
        if rest.is_empty() {
            items.retain(|i| !matches(i));
        } else if let Some(item) = items.iter_mut().find(|i| matches(i)) {
            remove(item, rest);
        }
    }
}

/// `.spec.template.spec.containers[name="app"].image`, as the API server names a field.
fn render(path: &Path) -> String {
    let mut out = String::new();
    for step in path {
        if let Some(name) = step.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = step.strip_prefix("k:") {
            let key: Value = serde_json::from_str(key).unwrap_or(Value::Null);
            let parts: Vec<String> = key
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str) -> Manager {
        Manager {
            name: name.into(),
            operation: "Update",
            subresource: "",
        }
    }

    #[test]
    fn an_update_takes_the_fields_it_changes_and_an_apply_conflicts_on_them() {
        let mut deployment = json!({"metadata": {"name": "d", "labels": {"app": "d"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "v1"}]}}}});
        record(
            None,
            &mut deployment,
            &update("kubectl-client-side-apply"),
            None,
            "apps/v1",
            "t0",
        );
        let mut scaled = deployment.clone();
        scaled["spec"]["replicas"] = json!(5);
        record(Some(&deployment), &mut scaled, &update("hpa"), None, "apps/v1", "t1");
        let managers: Vec<&str> = scaled["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["kubectl-client-side-apply", "hpa"]);
        assert_eq!(
            scaled["metadata"]["managedFields"][1]["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );

        // Applying replicas 2 meets hpa's replicas; applying the image it already has does not.
        let applied =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "v1"}]}}}});
        let found = conflicts(&scaled, &applied, "ci");
        assert_eq!(
            found,
            vec![Conflict {
                manager: "hpa".into(),
                api_version: "apps/v1".into(),
                field: ".spec.replicas".into()
            }]
        );
        let applied = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "v2"}]}}}});
        assert_eq!(
            conflicts(&scaled, &applied, "ci")[0].field,
            ".spec.template.spec.containers[name=\"app\"].image"
        );
    }

    #[test]
    fn an_apply_that_stops_naming_a_field_drops_it_unless_another_owns_it() {
        let apply = Manager {
            name: "ci".into(),
            operation: "Apply",
            subresource: "",
        };
        let first = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let mut live = first.clone();
        record(None, &mut live, &apply, Some(&applied_paths(&first)), "v1", "t0");
        let second = json!({"metadata": {"labels": {"a": "1"}}});
        let gone = dropped(&live, "ci", &applied_paths(&second));
        assert_eq!(
            gone,
            vec![vec!["f:metadata".to_owned(), "f:labels".into(), "f:b".into()]]
        );
        remove(&mut live, &gone[0]);
        assert_eq!(live["metadata"]["labels"], json!({"a": "1"}));
    }
}
