//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! (for the list fields Kubernetes merges by key), and server-side apply.
//!
//! Strategic merge differs from a merge patch only in lists: `containers` merge by `name`,
//! `conditions` by `type`, and so on, and `$patch: delete|replace` directives are honoured.
//! Server-side apply is approximated as a strategic merge of the applied configuration
//! (field ownership and conflicts are not tracked; `force` is accepted).

use serde_json::{Map, Value};

/// The patch content types the simulator understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        Some(match media {
            "application/merge-patch+json" => PatchType::Merge,
            "application/json-patch+json" => PatchType::Json,
            "application/strategic-merge-patch+json" => PatchType::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
            _ => return None,
        })
    }
}

/// Applies `body` to `target`. Errors are messages for a 422 or 400 answer.
/// Why a patch was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// The body is not a patch of its type (400).
    Malformed(String),
    /// A JSON patch's operation failed (a `test`, a missing path): 422.
    NotApplicable(String),
}

pub fn apply(target: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, PatchError> {
    use PatchError::Malformed;
    let mut out = target.clone();
    match patch_type {
        PatchType::Json => {
            let patch: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| Malformed(format!("the JSON patch is malformed: {e}")))?;
            json_patch::patch(&mut out, &patch)
                .map_err(|e| PatchError::NotApplicable(format!("the JSON patch cannot be applied: {e}")))?;
        }
        PatchType::Merge => {
            let patch: Value =
                serde_json::from_slice(body).map_err(|e| Malformed(format!("the merge patch is malformed: {e}")))?;
            json_patch::merge(&mut out, &patch);
        }
        PatchType::Strategic => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| Malformed(format!("the strategic merge patch is malformed: {e}")))?;
            strategic_merge(&mut out, &patch, "");
        }
        PatchType::Apply => {
            // Apply configurations are YAML (JSON is YAML too).
            let patch: Value = serde_yaml::from_slice(body)
                .map_err(|e| Malformed(format!("the apply configuration is malformed: {e}")))?;
            strategic_merge(&mut out, &patch, "");
        }
    }
    Ok(out)
}

/// The key a list field merges by, named by the field's name (as Kubernetes' patch strategy
/// annotations do for the types the simulator serves).
pub(crate) fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "imagePullSecrets"
        | "ephemeralContainerStatuses"
        | "containerStatuses"
        | "initContainerStatuses" => "name",
        "conditions" => "type",
        "taints" | "tolerations" => "key",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "addresses" => "type",
        _ => return None,
    })
}

fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch_map.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else { return };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue; // $retainKeys, $setElementOrder/...: ordering and retention hints
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Array(items) => match merge_key(key) {
                Some(by) => {
                    let existing = target_map
                        .entry(key.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    merge_list(existing, items, by);
                }
                None => {
                    target_map.insert(key.clone(), value.clone());
                }
            },
            Value::Object(_) => {
                let entry = target_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value, key);
            }
            scalar => {
                target_map.insert(key.clone(), scalar.clone());
            }
        }
    }
    let _ = field;
}

fn merge_list(existing: &mut Value, items: &[Value], by: &str) {
    if !existing.is_array() {
        *existing = Value::Array(Vec::new());
    }
    let Value::Array(list) = existing else { return };
    for item in items {
        let key = item.get(by).cloned();
        let position = key
            .as_ref()
            .and_then(|k| list.iter().position(|e| e.get(by) == Some(k)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], item, ""),
            (None, false) => {
                let mut added = item.clone();
                if let Value::Object(m) = &mut added {
                    m.remove("$patch");
                }
                list.push(added);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_honours_delete() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], "nodeName": "n1"}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}, {"name": "a", "$patch": "delete"}]}});
        let out = apply(&pod, PatchType::Strategic, patch.to_string().as_bytes()).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "z"}, {"name": "c", "image": "w"}])
        );
        assert_eq!(out["spec"]["nodeName"], "n1");
    }

    #[test]
    fn merge_patch_replaces_lists_and_null_removes() {
        let obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"items": [1, 2]}});
        let out = apply(
            &obj,
            PatchType::Merge,
            br#"{"metadata":{"labels":{"a":null}},"spec":{"items":[3]}}"#,
        )
        .unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}, "spec": {"items": [3]}}));
    }

    #[test]
    fn json_patch_applies_operations_and_reports_failed_tests() {
        let obj = json!({"spec": {"replicas": 3}});
        let ok = apply(
            &obj,
            PatchType::Json,
            br#"[{"op":"test","path":"/spec/replicas","value":3},{"op":"replace","path":"/spec/replicas","value":1}]"#,
        );
        assert_eq!(ok.unwrap(), json!({"spec": {"replicas": 1}}));
        let failed = apply(
            &obj,
            PatchType::Json,
            br#"[{"op":"test","path":"/spec/replicas","value":4}]"#,
        );
        assert!(failed.is_err());
    }
}
