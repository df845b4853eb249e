//! Scenario and game day files: the model, reading them with positions, and checking them.
//!
//! PURE: text in, typed documents or positioned problems out. Nothing here touches the
//! network or the cluster; reading files from disk is the caller's job.
//!
//! A file is checked in layers, and every layer reports all it finds:
//! 1. [`yaml`] builds a tree that remembers line and column of every value;
//! 2. [`shape`] checks that tree against the JSON Schema generated from [`model`];
//! 3. serde turns what is well-formed into typed values;
//! 4. [`validate`] applies the semantic rules, and paths become positions again.

pub use disasterpiece_common::duration;
pub mod address;
pub mod condition;
pub mod gameday;
pub mod matcher;
pub mod model;
pub mod problem;
pub mod retarget;
pub mod shape;
pub mod validate;
pub mod yaml;

use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

pub use duration::Duration;
pub use gameday::GameDay;
pub use model::Scenario;
pub use problem::{Pos, Problem};

use problem::{did_you_mean, list};
use shape::{child_path, index_path};
use yaml::{Node, Value};

/// The kinds of document Disasterpiece reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scenario,
    GameDay,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Scenario, Kind::GameDay];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Scenario => "Scenario",
            Kind::GameDay => "GameDay",
        }
    }

    /// The JSON Schema of this kind of document (draft-07, which editors understand best).
    pub fn schema(self) -> &'static serde_json::Value {
        static SCENARIO: OnceLock<serde_json::Value> = OnceLock::new();
        static GAMEDAY: OnceLock<serde_json::Value> = OnceLock::new();
        match self {
            Kind::Scenario => SCENARIO.get_or_init(generate_schema::<Scenario>),
            Kind::GameDay => GAMEDAY.get_or_init(generate_schema::<GameDay>),
        }
    }
}

fn generate_schema<T: JsonSchema>() -> serde_json::Value {
    let schema = SchemaSettings::draft07().into_generator().into_root_schema_for::<T>();
    schema.to_value()
}

/// A document that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Scenario(Box<Scenario>),
    GameDay(Box<GameDay>),
}

/// What reading one file gave: the valid documents, and every problem of the others.
#[derive(Debug, Default)]
pub struct Loaded {
    pub resources: Vec<(Pos, Resource)>,
    pub problems: Vec<Problem>,
}

/// Reads and checks every document in `text`. `file_exists` answers, for game days, whether
/// a scenario file they name exists (relative to the game day file). Never panics.
pub fn load(text: &str, file_exists: &dyn Fn(&str) -> bool) -> Loaded {
    let stream = yaml::parse(text);
    let mut loaded = Loaded::default();
    for document in stream.documents {
        let mut problems = document.problems;
        if let Some(resource) = load_document(&document.root, &mut problems, file_exists)
            && problems.is_empty()
        {
            loaded.resources.push((document.start, resource));
        }
        loaded.problems.extend(problems);
    }
    loaded.problems.extend(stream.syntax_error);
    if loaded.resources.is_empty() && loaded.problems.is_empty() {
        loaded.problems.push(
            Problem::new(Pos::START, "", "the file holds no document")
                .with_hint("a scenario starts with `apiVersion: disasterpiece.dev/v1alpha1` and `kind: Scenario`"),
        );
    }
    loaded.problems.sort_by_key(|p| (p.line, p.column));
    loaded.problems.dedup();
    loaded
}

fn load_document(root: &Node, problems: &mut Vec<Problem>, file_exists: &dyn Fn(&str) -> bool) -> Option<Resource> {
    let Value::Map(_) = root.value else {
        problems.push(
            Problem::new(
                root.pos,
                "",
                format!("expected a Scenario or GameDay mapping, got {}", root.value.kind()),
            )
            .with_hint("a document starts with `apiVersion:`, `kind:`, `metadata:` and `spec:`"),
        );
        return None;
    };
    let kind = document_kind(root, problems)?;
    let (shape_problems, pruned) = shape::check(kind.schema(), root);
    let pruned = pruned.unwrap_or(serde_json::Value::Null);
    let findings = match kind {
        Kind::Scenario => validate::validate_scenario_parts(&pruned),
        Kind::GameDay => validate::validate_gameday_parts(&pruned, file_exists),
    };
    let resource = match kind {
        Kind::Scenario => serde_json::from_value::<Scenario>(pruned)
            .ok()
            .map(|s| Resource::Scenario(Box::new(s))),
        Kind::GameDay => serde_json::from_value::<GameDay>(pruned)
            .ok()
            .map(|g| Resource::GameDay(Box::new(g))),
    };
    if resource.is_none() && shape_problems.is_empty() {
        // Unreachable while the schema describes the types; kept so nothing fails silently.
        problems.push(Problem::new(
            root.pos,
            "",
            format!("this {} could not be read", kind.as_str()),
        ));
    }
    let index = index(root);
    for finding in findings {
        // A problem already reported inside this object explains it; don't say it twice.
        let explained = shape_problems
            .iter()
            .any(|p| p.path == finding.path || parent(&p.path) == finding.path);
        if explained {
            continue;
        }
        let mut problem = Problem::new(locate(&index, &finding.path, root.pos), finding.path, finding.message);
        problem.hint = finding.hint;
        problems.push(problem);
    }
    problems.extend(shape_problems);
    resource
}

/// Reads `kind`, reporting a missing or unknown one.
fn document_kind(root: &Node, problems: &mut Vec<Problem>) -> Option<Kind> {
    let names = Kind::ALL.map(Kind::as_str);
    let Some(entry) = root.get("kind") else {
        problems.push(
            Problem::new(root.pos, "", "missing required field `kind`")
                .with_hint(format!("add `kind:` with one of {}", list(&names))),
        );
        return None;
    };
    let text = entry.value.value.shown();
    if let Some(kind) = Kind::ALL.into_iter().find(|k| k.as_str() == text) {
        return Some(kind);
    }
    let mut problem = Problem::new(
        entry.value.pos,
        "kind",
        format!("unknown kind `{text}`; expected one of {}", list(&names)),
    );
    if let Some(suggestion) = did_you_mean(&text, names) {
        problem = problem.with_hint(format!("did you mean `{suggestion}`?"));
    }
    problems.push(problem);
    None
}

/// Where a path's key and value are written.
#[derive(Debug, Clone, Copy)]
struct Located {
    key: Option<Pos>,
    value: Pos,
    container: bool,
}

fn index(root: &Node) -> HashMap<String, Located> {
    fn walk(node: &Node, path: String, key: Option<Pos>, out: &mut HashMap<String, Located>) {
        let container = matches!(node.value, Value::Map(_) | Value::Seq(_));
        match &node.value {
            Value::Map(entries) => {
                for e in entries {
                    walk(&e.value, child_path(&path, &e.key), Some(e.key_pos), out);
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, index_path(&path, i), None, out);
                }
            }
            _ => {}
        }
        out.insert(
            path,
            Located {
                key,
                value: node.pos,
                container,
            },
        );
    }
    let mut out = HashMap::new();
    walk(root, String::new(), None, &mut out);
    out
}

/// The position for a problem about `path`: a scalar's value, a mapping's key, or, when the
/// path is absent (a missing field), the nearest enclosing key that is written.
fn locate(index: &HashMap<String, Located>, path: &str, fallback: Pos) -> Pos {
    let mut current = path;
    loop {
        if let Some(loc) = index.get(current) {
            let at_key = loc.container || current != path;
            return if at_key {
                loc.key.unwrap_or(loc.value)
            } else {
                loc.value
            };
        }
        if current.is_empty() {
            return fallback;
        }
        current = parent(current);
    }
}

/// `spec.target.name` → `spec.target`; `spec.faults[0]` → `spec.faults`; `spec` → ``.
fn parent(path: &str) -> &str {
    if path.ends_with(']')
        && let Some(open) = path.rfind('[')
    {
        return &path[..open];
    }
    match path.rfind('.') {
        Some(dot) => &path[..dot],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_paths() {
        assert_eq!(parent("spec.target.name"), "spec.target");
        assert_eq!(parent("spec.faults[0]"), "spec.faults");
        assert_eq!(parent("metadata.labels[\"a.b\"]"), "metadata.labels");
        assert_eq!(parent("spec"), "");
    }
}
