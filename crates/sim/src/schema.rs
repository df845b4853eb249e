//! Custom resources against their CustomResourceDefinition's structural schema, as the API
//! server treats them: fields the schema does not name are pruned (unless it says
//! `x-kubernetes-preserve-unknown-fields`), nulls where it does not allow them are dropped,
//! then types, enums, bounds, lengths, item counts, patterns and required fields are checked,
//! each problem in the API server's words.
//!
//! Not modelled: CEL rules (`x-kubernetes-validations`), defaults, formats, list types.

use serde_json::{Map, Value};

use super::store::Cause;

/// Drops what `schema` does not allow from a custom resource (its root keeps `apiVersion`,
/// `kind` and `metadata`, which the API server handles itself).
pub fn prune_object(schema: &Value, object: &mut Value) {
    let Some(map) = object.as_object_mut() else { return };
    let kept: Map<String, Value> = ["apiVersion", "kind", "metadata"]
        .into_iter()
        .filter_map(|k| map.remove(k).map(|v| (k.to_owned(), v)))
        .collect();
    prune(schema, object);
    if let Some(map) = object.as_object_mut() {
        map.extend(kept);
    }
}

fn prune(schema: &Value, value: &mut Value) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child = match properties.and_then(|p| p.get(&key)) {
                    Some(s) => Some(s),
                    None if additional.is_object() => Some(additional),
                    None if *additional == true || preserve => None,
                    None => {
                        map.remove(&key);
                        continue;
                    }
                };
                let Some(child) = child else { continue };
                if map.get(&key).is_some_and(Value::is_null) && child["nullable"] != true {
                    map.remove(&key);
                    continue;
                }
                if let Some(v) = map.get_mut(&key) {
                    prune(child, v);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items.iter_mut() {
                prune(&schema["items"], item);
            }
        }
        _ => {}
    }
}

/// The problems of a (pruned) custom resource against `schema`.
pub fn validate_object(schema: &Value, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(map) = object.as_object() else { return causes };
    // The root's own fields are the API server's; the rest is checked against the schema.
    let body: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut root = schema.clone();
    if let Some(required) = root["required"].as_array_mut() {
        required.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
    }
    check(&root, &Value::Object(body), "", &mut causes);
    causes
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn fits(expected: &str, value: &Value) -> bool {
    match expected {
        "integer" => value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => value.is_number(),
        other => type_name(value) == other,
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn cause(field: &str, reason: &'static str, message: String) -> Cause {
    Cause {
        field: field.to_owned(),
        reason,
        message,
    }
}

fn check(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    let (expected, fitting) = if schema["x-kubernetes-int-or-string"] == true {
        (Some("integer or string"), fits("integer", value) || value.is_string())
    } else {
        let expected = schema["type"].as_str();
        (expected, expected.is_none_or(|e| fits(e, value)))
    };
    if let Some(expected) = expected.filter(|_| !fitting) {
        let got = type_name(value);
        causes.push(cause(
            path,
            "FieldValueTypeInvalid",
            format!("Invalid value: \"{got}\": {path} in body must be of type {expected}: \"{got}\""),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push(cause(
            path,
            "FieldValueNotSupported",
            format!("Unsupported value: {value}: supported values: {}", list.join(", ")),
        ));
    }
    match value {
        Value::Number(n) => check_number(schema, n.as_f64().unwrap_or_default(), value, path, causes),
        Value::String(s) => check_string(schema, s, value, path, causes),
        Value::Array(items) => {
            let n = items.len();
            if let Some(max) = schema["maxItems"].as_u64().filter(|m| n as u64 > *m) {
                causes.push(cause(
                    path,
                    "FieldValueTooMany",
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            if let Some(min) = schema["minItems"].as_u64().filter(|m| (n as u64) < *m) {
                causes.push(cause(
                    path,
                    "FieldValueInvalid",
                    format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                ));
            }
            if schema["items"].is_object() {
                for (i, item) in items.iter().enumerate() {
                    check(&schema["items"], item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(map) => {
            for name in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(name) {
                    causes.push(cause(
                        &child_path(path, name),
                        "FieldValueRequired",
                        "Required value".into(),
                    ));
                }
            }
            for (key, v) in map {
                let child = schema["properties"].get(key).or_else(|| {
                    schema["additionalProperties"]
                        .as_object()
                        .map(|_| &schema["additionalProperties"])
                });
                if let Some(child) = child {
                    check(child, v, &child_path(path, key), causes);
                }
            }
        }
        _ => {}
    }
}

fn check_number(schema: &Value, n: f64, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let bound = |key: &str| schema[key].as_f64();
    let shown = |key: &str| schema[key].to_string();
    if let Some(max) = bound("maximum") {
        let exclusive = schema["exclusiveMaximum"] == true;
        if n > max || (exclusive && n == max) {
            let rule = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push(cause(
                path,
                "FieldValueInvalid",
                format!(
                    "Invalid value: {value}: {path} in body should be {rule} {}",
                    shown("maximum")
                ),
            ));
        }
    }
    if let Some(min) = bound("minimum") {
        let exclusive = schema["exclusiveMinimum"] == true;
        if n < min || (exclusive && n == min) {
            let rule = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push(cause(
                path,
                "FieldValueInvalid",
                format!(
                    "Invalid value: {value}: {path} in body should be {rule} {}",
                    shown("minimum")
                ),
            ));
        }
    }
}

fn check_string(schema: &Value, s: &str, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let length = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64().filter(|m| length > *m) {
        causes.push(cause(
            path,
            "FieldValueTooLong",
            format!("Too long: may not be longer than {max}"),
        ));
    }
    if let Some(min) = schema["minLength"].as_u64().filter(|m| length < *m) {
        causes.push(cause(
            path,
            "FieldValueInvalid",
            format!("Invalid value: {value}: {path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        // A pattern the API server accepted but this engine cannot read is not enforced.
        if let Ok(re) = regex::Regex::new(pattern)
            && !re.is_match(s)
        {
            causes.push(cause(
                path,
                "FieldValueInvalid",
                format!("Invalid value: {value}: {path} in body should match '{pattern}'"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "green", "blue"]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}}}}}})
    }

    fn problems(spec: Value) -> Vec<String> {
        let object = json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
        validate_object(&widget_schema(), &object)
            .into_iter()
            .map(|c| format!("{} {}: {}", c.reason, c.field, c.message))
            .collect()
    }

    #[test]
    fn unknown_fields_are_pruned_but_maps_and_preserved_objects_keep_theirs() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1, "extra": 1, "color": null, "labels": {"a": "b"}, "free": {"any": {"thing": 1}}},
            "other": true});
        prune_object(&widget_schema(), &mut object);
        assert_eq!(
            object,
            json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"size": 1, "labels": {"a": "b"}, "free": {"any": {"thing": 1}}}})
        );
    }

    #[test]
    fn each_rule_is_reported_in_the_api_servers_words() {
        assert_eq!(
            problems(json!({"size": 3, "color": "red", "port": "http"})),
            Vec::<String>::new()
        );
        let cases = [
            (
                json!({"size": "big"}),
                "FieldValueTypeInvalid spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
            ),
            (
                json!({"size": 2, "color": "purple"}),
                "FieldValueNotSupported spec.color: Unsupported value: \"purple\": supported values: \"red\", \"green\", \"blue\"",
            ),
            (
                json!({"size": 11}),
                "FieldValueInvalid spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
            ),
            (
                json!({"size": 0}),
                "FieldValueInvalid spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
            ),
            (json!({}), "FieldValueRequired spec.size: Required value"),
            (
                json!({"size": 1, "tags": ["a", "b", "c"]}),
                "FieldValueTooMany spec.tags: Too many: 3: must have at most 2 items",
            ),
            (
                json!({"size": 1, "name": "ab1"}),
                "FieldValueInvalid spec.name: Invalid value: \"ab1\": spec.name in body should match '^[a-z]+$'",
            ),
            (
                json!({"size": 1, "name": "abcdef"}),
                "FieldValueTooLong spec.name: Too long: may not be longer than 5",
            ),
            (
                json!({"size": 1, "port": true}),
                "FieldValueTypeInvalid spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer or string: \"boolean\"",
            ),
            (
                json!({"size": 1, "labels": {"a": 1}}),
                "FieldValueTypeInvalid spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(problems(spec.clone()), [expected], "{spec}");
        }
    }
}
