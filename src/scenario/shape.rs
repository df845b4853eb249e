//! Structural checks: does the tree have the shape the JSON Schema describes?
//!
//! The schema generated from the model types is the single description of the format, so
//! this walker, editors and (later) the API server all agree on it. It finds every unknown
//! field (with a "did you mean"), wrong type, unknown enum value, missing required field and
//! out-of-range number — all of them, not just the first — and returns the tree with the bad
//! parts pruned, so the semantic rules can still look at everything that was well-formed.
//!
//! It understands the subset of JSON Schema that schemars emits for our types: `$ref`,
//! `allOf`/`anyOf`/`oneOf`, `type`, `enum`/`const`, `properties`/`required`/
//! `additionalProperties`, `items`/`minItems`/`maxItems`, `minimum`/`maximum`, and the
//! formats `duration`, `uint32` and `int32`.

use serde_json::{Map, Value as J};

use super::duration::Duration;
use super::problem::{Pos, Problem, did_you_mean, list};
use super::yaml::{Node, Value};

/// Checks `node` against `schema` (a root schema with `definitions`). Returns the problems
/// and the pruned value (`None` when the node itself is unusable).
pub fn check(schema: &J, node: &Node) -> (Vec<Problem>, Option<J>) {
    let empty = Map::new();
    let defs = schema.get("definitions").and_then(J::as_object).unwrap_or(&empty);
    let mut walker = Walker {
        defs,
        problems: Vec::new(),
    };
    let pruned = walker.walk(schema, node, "", None);
    (walker.problems, pruned)
}

/// `parent.key`, or `parent["a.b"]` when the key would be ambiguous in a dotted path.
pub fn child_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

pub fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

struct Walker<'s> {
    defs: &'s Map<String, J>,
    problems: Vec<Problem>,
}

impl<'s> Walker<'s> {
    /// Follows `$ref`s to the schema that describes the value.
    fn resolve(&self, mut schema: &'s J) -> &'s J {
        for _ in 0..32 {
            let Some(target) = schema.get("$ref").and_then(J::as_str) else {
                break;
            };
            let name = target.rsplit('/').next().unwrap_or(target);
            match self.defs.get(name) {
                Some(def) => schema = def,
                None => break,
            }
        }
        schema
    }

    fn report(&mut self, pos: Pos, path: &str, message: String, hint: Option<String>) {
        let mut problem = Problem::new(pos, path, message);
        problem.hint = hint;
        self.problems.push(problem);
    }

    /// `key_pos`: where the key that holds this value is written, for "missing field"
    /// problems (a mapping value starts at its first key, which is the wrong place).
    fn walk(&mut self, schema: &'s J, node: &Node, path: &str, key_pos: Option<Pos>) -> Option<J> {
        let schema = self.resolve(schema);
        if let Some(all) = schema.get("allOf").and_then(J::as_array) {
            let mut result = Some(node.to_json());
            for sub in all {
                let pruned = self.walk(sub, node, path, key_pos);
                if pruned.is_none() {
                    result = None;
                } else if result.is_some() {
                    result = pruned;
                }
            }
            return result;
        }
        let alternatives = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(J::as_array);
        if let Some(alternatives) = alternatives {
            return self.walk_alternatives(alternatives, node, path, key_pos);
        }
        if let Some(allowed) = schema.get("enum").and_then(J::as_array) {
            let allowed: Vec<&str> = allowed.iter().filter_map(J::as_str).collect();
            return self.walk_enum(&allowed, node, path);
        }
        if let Some(constant) = schema.get("const").and_then(J::as_str) {
            return self.walk_enum(&[constant], node, path);
        }
        if !self.type_matches(schema, node, path) {
            return None;
        }
        match &node.value {
            Value::Map(entries) => self.walk_object(schema, node, entries, path, key_pos),
            Value::Seq(items) => self.walk_array(schema, node, items, path),
            Value::Str(text) => self.walk_string(schema, node, text, path),
            Value::Int(_) | Value::Float(_) => self.walk_number(schema, node, path),
            Value::Null | Value::Bool(_) => Some(node.to_json()),
        }
    }

    fn walk_alternatives(&mut self, alternatives: &'s [J], node: &Node, path: &str, key_pos: Option<Pos>) -> Option<J> {
        let is_null = |s: &J| s.get("type").and_then(J::as_str) == Some("null");
        let (nulls, others): (Vec<&J>, Vec<&J>) =
            alternatives.iter().map(|s| self.resolve(s)).partition(|s| is_null(s));
        if node.value == Value::Null && !nulls.is_empty() {
            return Some(J::Null);
        }
        // Unit enums with documented variants come as `oneOf` of `const`s.
        let constants: Option<Vec<&str>> = others
            .iter()
            .map(|s| s.get("const").and_then(J::as_str).or_else(|| single_enum(s)))
            .collect();
        if let Some(constants) = constants.filter(|c| !c.is_empty()) {
            return self.walk_enum(&constants, node, path);
        }
        if let [only] = others.as_slice() {
            return self.walk(only, node, path, key_pos);
        }
        // General case: the first alternative that fits; otherwise the closest one's problems.
        let mut best: Option<(Vec<Problem>, Option<J>)> = None;
        for alternative in others {
            let mut trial = Walker {
                defs: self.defs,
                problems: Vec::new(),
            };
            let pruned = trial.walk(alternative, node, path, key_pos);
            if trial.problems.is_empty() {
                return pruned;
            }
            if best.as_ref().is_none_or(|(p, _)| trial.problems.len() < p.len()) {
                best = Some((trial.problems, pruned));
            }
        }
        let (problems, pruned) = best?;
        self.problems.extend(problems);
        pruned
    }

    fn walk_enum(&mut self, allowed: &[&str], node: &Node, path: &str) -> Option<J> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Null => node.value.shown(),
            Value::Seq(_) | Value::Map(_) => {
                let message = format!("expected one of {}, got {}", list(allowed), node.value.kind());
                self.report(node.pos, path, message, None);
                return None;
            }
        };
        if allowed.contains(&text.as_str()) && matches!(node.value, Value::Str(_)) {
            return Some(J::String(text));
        }
        let hint = if allowed.contains(&text.as_str()) {
            Some(format!(
                "quote it: `\"{text}\"` (unquoted, YAML reads it as {})",
                node.value.kind()
            ))
        } else {
            did_you_mean(&text, allowed.iter().copied()).map(|s| format!("did you mean `{s}`?"))
        };
        let message = format!("unknown value `{text}`; expected one of {}", list(allowed));
        self.report(node.pos, path, message, hint);
        None
    }

    fn type_matches(&mut self, schema: &J, node: &Node, path: &str) -> bool {
        let types: Vec<&str> = match schema.get("type") {
            Some(J::String(t)) => vec![t.as_str()],
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
            _ => return true, // no constraint
        };
        let fits = |t: &str| match (&node.value, t) {
            (Value::Null, "null") | (Value::Bool(_), "boolean") | (Value::Int(_), "integer") => true,
            (Value::Int(_), "number") => true,
            (Value::Float(f), "number") => f.is_finite(),
            (Value::Str(_), "string") | (Value::Seq(_), "array") | (Value::Map(_), "object") => true,
            _ => false,
        };
        if types.iter().any(|t| fits(t)) {
            return true;
        }
        let is_duration = schema.get("format").and_then(J::as_str) == Some("duration");
        let wanted: Vec<&str> = types
            .iter()
            .filter(|t| **t != "null")
            .map(|t| match *t {
                "string" if is_duration => "a duration such as `90s`, `2m` or `1h30m`",
                "string" => "a string",
                "integer" => "a whole number",
                "number" => "a number",
                "boolean" => "`true` or `false`",
                "array" => "a list",
                "object" => "a mapping",
                _ => "a value",
            })
            .collect();
        let got = match &node.value {
            Value::Seq(_) | Value::Map(_) | Value::Null => node.value.kind().to_owned(),
            other => format!("{} `{}`", other.kind(), other.shown()),
        };
        let hint = match (&node.value, types.first().copied()) {
            (Value::Int(_) | Value::Float(_), Some("string")) if is_duration => {
                Some(format!("durations need a unit: write `{}s`", node.value.shown()))
            }
            (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some("string")) => {
                Some(format!("quote it to make it a string: `\"{}\"`", node.value.shown()))
            }
            (Value::Str(s), Some("boolean")) if matches!(s.as_str(), "yes" | "no" | "on" | "off" | "y" | "n") => {
                Some("write `true` or `false`".into())
            }
            (Value::Float(_), Some("integer")) => Some("write a whole number, without a decimal point".into()),
            (Value::Null, Some("object")) => Some("write `{}` for an empty mapping".into()),
            (Value::Map(_), Some("array")) => Some("write each item on its own line starting with `- `".into()),
            (Value::Str(_), Some("array")) => {
                Some("write a list: `[a, b]`, or one item per line starting with `- `".into())
            }
            _ => None,
        };
        let message = format!("expected {}, got {got}", wanted.join(" or "));
        self.report(node.pos, path, message, hint);
        false
    }

    fn walk_object(
        &mut self,
        schema: &'s J,
        node: &Node,
        entries: &[super::yaml::Entry],
        path: &str,
        key_pos: Option<Pos>,
    ) -> Option<J> {
        let properties = schema.get("properties").and_then(J::as_object);
        let property = |name: &str| properties.and_then(|p| p.get(name));
        let additional = schema.get("additionalProperties");
        let mut out = Map::new();
        for entry in entries {
            let entry_path = child_path(path, &entry.key);
            let value_schema = match (property(&entry.key), additional) {
                (Some(s), _) => s,
                (None, Some(J::Bool(false))) => {
                    let known: Vec<&str> = properties
                        .into_iter()
                        .flat_map(|p| p.keys())
                        .map(String::as_str)
                        .collect();
                    let suggestion = did_you_mean(&entry.key, known.iter().copied());
                    let message = format!("unknown field `{}`; expected one of {}", entry.key, list(&known));
                    let hint = suggestion.map(|s| format!("did you mean `{s}`?"));
                    self.report(entry.key_pos, &entry_path, message, hint);
                    continue;
                }
                (None, Some(s)) if s.is_object() => s,
                (None, _) => {
                    out.insert(entry.key.clone(), entry.value.to_json());
                    continue;
                }
            };
            if let Some(pruned) = self.walk(value_schema, &entry.value, &entry_path, Some(entry.key_pos)) {
                out.insert(entry.key.clone(), pruned);
            }
        }
        let required = schema.get("required").and_then(J::as_array);
        for name in required.into_iter().flatten().filter_map(J::as_str) {
            if entries.iter().any(|e| e.key == name) {
                continue;
            }
            let hint = property(name).and_then(|p| self.description(p)).map(first_sentence);
            let at = key_pos.unwrap_or(node.pos);
            self.report(at, path, format!("missing required field `{name}`"), hint);
        }
        Some(J::Object(out))
    }

    fn description(&self, schema: &'s J) -> Option<&'s str> {
        schema
            .get("description")
            .or_else(|| self.resolve(schema).get("description"))
            .and_then(J::as_str)
    }

    fn walk_array(&mut self, schema: &'s J, node: &Node, items: &[Node], path: &str) -> Option<J> {
        let count = |key: &str| schema.get(key).and_then(J::as_u64);
        if let (Some(min), Some(max)) = (count("minItems"), count("maxItems"))
            && min == max
            && items.len() as u64 != min
        {
            let message = format!("expected a list of exactly {min} items, got {}", items.len());
            self.report(node.pos, path, message, None);
            return None;
        }
        if let Some(min) = count("minItems").filter(|m| (items.len() as u64) < *m) {
            self.report(
                node.pos,
                path,
                format!("expected at least {min} items, got {}", items.len()),
                None,
            );
            return None;
        }
        if let Some(max) = count("maxItems").filter(|m| (items.len() as u64) > *m) {
            self.report(
                node.pos,
                path,
                format!("expected at most {max} items, got {}", items.len()),
                None,
            );
            return None;
        }
        let Some(item_schema) = schema.get("items") else {
            return Some(node.to_json());
        };
        // A broken item becomes `null`, so that later items keep their index (and their path).
        let out = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.walk(item_schema, item, &index_path(path, i), None)
                    .unwrap_or(J::Null)
            })
            .collect();
        Some(J::Array(out))
    }

    fn walk_string(&mut self, schema: &J, node: &Node, text: &str, path: &str) -> Option<J> {
        if schema.get("format").and_then(J::as_str) == Some("duration")
            && let Err(err) = text.parse::<Duration>()
        {
            let message = format!("expected a duration such as `90s`, `2m` or `1h30m`: {err}");
            self.report(node.pos, path, message, Some(err.hint().into()));
            return None;
        }
        Some(J::String(text.to_owned()))
    }

    fn walk_number(&mut self, schema: &J, node: &Node, path: &str) -> Option<J> {
        let value = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => return Some(node.to_json()),
        };
        let (format_min, format_max) = match schema.get("format").and_then(J::as_str) {
            Some("uint32") => (Some(0.0), Some(f64::from(u32::MAX))),
            Some("int32") => (Some(f64::from(i32::MIN)), Some(f64::from(i32::MAX))),
            _ => (None, None),
        };
        let bound = |key: &str| schema.get(key).and_then(J::as_f64);
        let min = bound("minimum").or(format_min);
        let max = bound("maximum").or(format_max);
        let shown = node.value.shown();
        let message = match (min, max) {
            (Some(lo), Some(hi)) if (value < lo || value > hi) && max != format_max => {
                Some(format!("must be between {lo} and {hi} (got {shown})"))
            }
            (Some(lo), _) if value < lo => Some(format!("must be at least {lo} (got {shown})")),
            (_, Some(hi)) if value > hi => Some(format!("must be at most {hi} (got {shown})")),
            _ => None,
        };
        match message {
            Some(message) => {
                self.report(node.pos, path, message, None);
                None
            }
            None => Some(node.to_json()),
        }
    }
}

/// `{"type": "string", "enum": ["x"]}`: one value of a documented unit enum.
fn single_enum(schema: &J) -> Option<&str> {
    match schema.get("enum").and_then(J::as_array).map(Vec::as_slice) {
        Some([only]) => only.as_str(),
        _ => None,
    }
}

/// The first sentence of a description (not cut at "e.g."), for use as a hint.
fn first_sentence(text: &str) -> String {
    let line = text.lines().collect::<Vec<_>>().join(" ");
    let mut from = 0;
    while let Some(found) = line[from..].find(". ") {
        let end = from + found;
        if !(line[..end].ends_with("e.g") || line[..end].ends_with("i.e")) {
            return line[..=end].to_owned();
        }
        from = end + 2;
    }
    line
}
