//! The shape of `src/`, checked from its text: no import circle among sibling modules at any
//! depth, and no module importing one from a layer above it (ARCHITECTURE.md draws them).
//! Every `crate::`, `super::` and `self::` path outside comments and test modules counts,
//! whether in a `use` line or inline. Run: `cargo test --test architecture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's top-level modules, lowest layer first: each may import only those before it
/// (and the crate root's re-exports of `disasterpiece-common`).
const LAYERS: [&str; 8] = [
    "api",
    "scenario",
    "blast_radius",
    "probe",
    "fault",
    "report",
    "engine",
    "controller",
];

/// Every `.rs` file under `dir`.
fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// `src/engine/run/mod.rs` → `["engine", "run"]`.
fn module_of(path: &Path) -> Vec<String> {
    let relative = path.strip_prefix("src").expect("under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `crate::a::b`, `super::x`, `self::y` in `code`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let rest: String = bytes[i..bytes.len().min(i + 8)].iter().collect();
        if boundary && ["crate::", "super::", "self::"].iter().any(|p| rest.starts_with(p)) {
            let mut segments = Vec::new();
            let mut word = String::new();
            while i < bytes.len() {
                let c = bytes[i];
                if c.is_alphanumeric() || c == '_' {
                    word.push(c);
                    i += 1;
                } else if c == ':' && bytes.get(i + 1) == Some(&':') && !word.is_empty() {
                    segments.push(std::mem::take(&mut word));
                    i += 2;
                } else {
                    break;
                }
            }
            if !word.is_empty() {
                segments.push(word);
            }
            found.push(segments);
        } else {
            i += 1;
        }
    }
    found
}

/// The module `path`, seen from `from`, refers to: its longest prefix that is a module.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut base: Vec<String> = from.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    (0..=rest.len()).rev().find_map(|k| {
        let mut candidate = base.clone();
        candidate.extend_from_slice(&rest[..k]);
        modules.contains(&candidate).then_some(candidate)
    })
}

/// Every import edge between two modules of `src/` (the binary's `cli` left out).
fn edges() -> BTreeSet<(Vec<String>, Vec<String>)> {
    let mut all = Vec::new();
    files(Path::new("src"), &mut all);
    let modules: BTreeSet<Vec<String>> = all.iter().map(|p| module_of(p)).collect();
    let mut edges = BTreeSet::new();
    for file in all {
        let from = module_of(&file);
        if from.first().is_some_and(|m| m == "cli") || file.ends_with("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for path in paths(&code(&text)) {
            if let Some(to) = resolve(&from, &path, &modules)
                && to != from
            {
                edges.insert((from.clone(), to));
            }
        }
    }
    edges
}

/// The sibling modules an edge joins under their closest common parent, unless one contains
/// the other: `engine::run::inject → engine::plan` joins `run → plan` under `engine`.
fn siblings(from: &[String], to: &[String]) -> Option<(Vec<String>, String, String)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    (common < from.len() && common < to.len())
        .then(|| (from[..common].to_vec(), from[common].clone(), to[common].clone()))
}

/// A circle in `graph`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_of_src_imports_its_way_back_to_itself() {
    let edges = edges();
    assert!(edges.len() > 100, "the reader found only {} edges", edges.len());
    let mut groups: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in &edges {
        if let Some((parent, a, b)) = siblings(from, to) {
            groups.entry(parent).or_default().entry(a).or_default().insert(b);
        }
    }
    for (parent, graph) in &groups {
        if let Some(found) = circle(graph) {
            let why: Vec<String> = edges
                .iter()
                .filter(|(f, t)| {
                    siblings(f, t)
                        .is_some_and(|(p, a, b)| &p == parent && found.windows(2).any(|w| w[0] == a && w[1] == b))
                })
                .map(|(f, t)| format!("{} → {}", f.join("::"), t.join("::")))
                .collect();
            panic!(
                "an import circle under `{}`: {}\nthrough: {why:#?}",
                parent.join("::"),
                found.join(" → ")
            );
        }
    }
}

#[test]
fn no_module_imports_one_from_a_layer_above_it() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut upward = Vec::new();
    for (from, to) in edges() {
        let (Some(a), Some(b)) = (from.first(), to.first()) else {
            continue;
        };
        let (ra, rb) = (rank(a), rank(b));
        assert!(
            ra.is_some(),
            "`{a}` is in no layer: add it to LAYERS and ARCHITECTURE.md"
        );
        if let (Some(ra), Some(rb)) = (ra, rb)
            && rb > ra
        {
            upward.push(format!("{} → {}", from.join("::"), to.join("::")));
        }
    }
    assert!(upward.is_empty(), "imports from a layer above: {upward:#?}");
}

/// The reader itself: it finds what a circle is made of, so the tests above can fail.
#[test]
fn the_reader_finds_paths_and_circles() {
    let found = paths("use crate::engine::run::{a, b};\nlet x = super::super::journal::f(crate_thing::y);");
    assert_eq!(
        found,
        [vec!["crate", "engine", "run"], vec!["super", "super", "journal", "f"],]
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["c".to_owned()].into()),
        ("c".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert_eq!(circle(&graph).expect("a circle").len(), 4);
    let modules: BTreeSet<Vec<String>> = [
        vec!["engine".to_owned()],
        vec!["engine".to_owned(), "journal".to_owned()],
    ]
    .into();
    let from = vec!["engine".to_owned(), "run".to_owned()];
    let path: Vec<String> = ["super", "journal", "f"].map(str::to_owned).to_vec();
    assert_eq!(
        resolve(&from, &path, &modules),
        Some(vec!["engine".to_owned(), "journal".to_owned()])
    );
}
