//! Kubernetes label selectors (`app=web,tier!=db,env in (a,b),!legacy`) and field selectors
//! (`metadata.name=x,status.phase!=Running`), parsed and matched as the API server does.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, Op)>);

impl LabelSelector {
    /// Parses the query-string form. Errors say what could not be read.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(requirements))
    }

    /// From a `metav1.LabelSelector` object (`matchLabels` and `matchExpressions`).
    pub fn from_object(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                requirements.push((k.clone(), Op::Eq(v.as_str().unwrap_or_default().to_owned())));
            }
        }
        for expr in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            let op = match expr.get("operator").and_then(Value::as_str) {
                Some("In") => Op::In(values),
                Some("NotIn") => Op::NotIn(values),
                Some("Exists") => Op::Exists,
                Some("DoesNotExist") => Op::DoesNotExist,
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            };
            requirements.push((key, op));
        }
        Ok(LabelSelector(requirements))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.0.iter().all(|(key, op)| {
            let value = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
            match op {
                Op::Eq(v) => value == Some(v.as_str()),
                Op::NotEq(v) => value != Some(v.as_str()),
                Op::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(object.pointer("/metadata/labels").and_then(Value::as_object))
    }

    /// The `key=value` pairs, as `spec.selector` of a Scale (a string).
    pub fn to_query(&self) -> String {
        self.0
            .iter()
            .map(|(k, op)| match op {
                Op::Eq(v) => format!("{k}={v}"),
                Op::NotEq(v) => format!("{k}!={v}"),
                Op::In(vs) => format!("{k} in ({})", vs.join(",")),
                Op::NotIn(vs) => format!("{k} notin ({})", vs.join(",")),
                Op::Exists => k.clone(),
                Op::DoesNotExist => format!("!{k}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<(String, Op), String> {
    let bad = || format!("unable to parse requirement: {part:?}");
    if let Some(key) = part.strip_prefix('!') {
        return Ok((valid_key(key.trim()).ok_or_else(bad)?, Op::DoesNotExist));
    }
    for (token, set_op) in [(" notin ", false), (" in ", true)] {
        if let Some(at) = part.find(token) {
            let key = valid_key(part[..at].trim()).ok_or_else(bad)?;
            let list = part[at + token.len()..].trim();
            let inner = list
                .strip_prefix('(')
                .and_then(|l| l.strip_suffix(')'))
                .ok_or_else(bad)?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(format!(
                    "{part:?}: for 'in', 'notin' operators, values set can't be empty"
                ));
            }
            return Ok((key, if set_op { Op::In(values) } else { Op::NotIn(values) }));
        }
    }
    for (token, equal) in [("!=", false), ("==", true), ("=", true)] {
        if let Some(at) = part.find(token) {
            let key = valid_key(part[..at].trim()).ok_or_else(bad)?;
            let value = part[at + token.len()..].trim().to_owned();
            // As Kubernetes' lexer reads `a===b`: an operator where a value must be.
            if let Some(symbol) = value.chars().next().filter(|c| "=!(),<>".contains(*c)) {
                return Err(format!(
                    "unable to parse requirement: found '{symbol}', expected: identifier"
                ));
            }
            return Ok((key, if equal { Op::Eq(value) } else { Op::NotEq(value) }));
        }
    }
    Ok((valid_key(part).ok_or_else(bad)?, Op::Exists))
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_owned())
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// The fields a resource can be selected by, with where they live in the object.
pub fn field_pointer(field: &str) -> Option<&'static str> {
    Some(match field {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "spec.nodeName" => "/spec/nodeName",
        "status.phase" => "/status/phase",
        "spec.unschedulable" => "/spec/unschedulable",
        "involvedObject.name" => "/involvedObject/name",
        "involvedObject.kind" => "/involvedObject/kind",
        "involvedObject.uid" => "/involvedObject/uid",
        "involvedObject.namespace" => "/involvedObject/namespace",
        "involvedObject.apiVersion" => "/involvedObject/apiVersion",
        "reason" => "/reason",
        "type" => "/type",
        _ => return None,
    })
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{part}'; can't understand '{part}'"));
            };
            let field = field.trim();
            if field_pointer(field).is_none() {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    /// Selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = field_pointer(field).and_then(|p| object.pointer(p));
            let actual = match actual {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_match_like_the_api_server() {
        let labels = json!({"app": "web", "tier": "front", "env": "prod"});
        let labels = labels.as_object();
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=web,tier=back", false),
            ("env in (prod, staging)", true),
            ("env notin (prod)", false),
            ("missing notin (x)", true),
            ("tier", true),
            ("!tier", false),
            ("!legacy", true),
            ("app=web,env in (dev,prod),!legacy", true),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(selector.matches(labels), expected, "{text}");
        }
        assert!(LabelSelector::parse("env in ()").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        // An operator where the value must be, in the API server's words.
        assert_eq!(
            LabelSelector::parse("a===b"),
            Err("unable to parse requirement: found '=', expected: identifier".to_owned())
        );
        assert!(LabelSelector::parse("a!=!b").is_err());
    }

    #[test]
    fn field_selectors_match_and_refuse_unknown_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        for (text, expected) in [
            ("metadata.name=p", true),
            ("spec.nodeName=n2", false),
            ("status.phase!=Running", false),
            ("metadata.namespace==shop,status.phase=Running", true),
            ("spec.nodeName=", false),
        ] {
            assert_eq!(FieldSelector::parse(text).unwrap().matches(&pod), expected, "{text}");
        }
        assert!(
            FieldSelector::parse("spec.color=red")
                .unwrap_err()
                .contains("not supported")
        );
    }
}
