//! YAML text → a tree of values that remember where they were written.
//!
//! Scalars are resolved with the YAML 1.2 core schema (as serde_yaml does): `true`/`false`
//! are booleans, `yes`/`no` are strings; quoted scalars are always strings. Anchors and
//! aliases are expanded, within a size limit so that an alias bomb cannot exhaust memory.
//! Duplicate keys, complex keys and application tags are reported as problems.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::problem::{Pos, Problem};

/// The most values one document may expand to (aliases counted at every use).
pub const MAX_NODES: usize = 100_000;

/// A value and the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The value as JSON, for handing to serde once its shape has been checked.
    /// Non-finite floats, which JSON cannot hold, become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
        }
    }
}

impl Value {
    /// How the value is named in messages: "a string", "an integer", …
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// A short rendering of a scalar for messages (`three`, `140`); empty for collections.
    pub fn shown(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => String::new(),
        }
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub start: Pos,
    pub root: Node,
    /// Problems found while building the tree (duplicate keys, tags, complex keys).
    pub problems: Vec<Problem>,
}

/// Everything read from one file: the complete documents, and the syntax error that ended
/// reading, if any. Documents before a syntax error are still returned and checked.
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Document>,
    pub syntax_error: Option<Problem>,
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line().max(1),
        column: span.start.col() + 1,
    }
}

enum Frame {
    Seq {
        node_pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        node_pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Pos)>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    problems: Vec<Problem>,
    root: Option<Node>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            problems: Vec::new(),
            root: None,
        }
    }

    /// Places a finished node into its parent (or as the root).
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let name = match &node.value {
                        Value::Seq(_) | Value::Map(_) => {
                            self.problems.push(
                                Problem::new(node.pos, "", "a key must be a plain word, not a list or mapping")
                                    .with_hint("write `name: value` pairs"),
                            );
                            String::from("<complex key>")
                        }
                        other => other.shown(),
                    };
                    *key = Some((name, node.pos));
                }
                Some((name, key_pos)) => {
                    if let Some(first) = entries.iter().find(|e| e.key == name) {
                        self.problems
                            .push(
                                Problem::new(key_pos, "", format!("duplicate key `{name}`")).with_hint(format!(
                                    "`{name}` is already set at line {}; keep one of them",
                                    first.key_pos.line
                                )),
                            );
                    } else {
                        entries.push(Entry {
                            key: name,
                            key_pos,
                            value: node,
                        });
                    }
                }
            },
        }
    }

    fn count(&mut self, n: usize) -> Result<(), ()> {
        self.nodes += n;
        if self.nodes > MAX_NODES { Err(()) } else { Ok(()) }
    }
}

fn size(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|e| 1 + size(&e.value)).sum::<usize>(),
        _ => 1,
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => text
                .parse::<f64>()
                .map_or_else(|_| Value::Str(text.into()), Value::Float),
        };
    }
    let radix = |prefix: &str, radix: u32| {
        text.strip_prefix(prefix)
            .filter(|digits| !digits.is_empty())
            .and_then(|digits| i64::from_str_radix(digits, radix).ok())
    };
    if let Some(i) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Value::Int(i);
    }
    if is_core_float(unsigned)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.into())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already removed.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Reads every document of `text`. Never panics; a syntax error ends the stream.
pub fn parse(text: &str) -> Stream {
    let mut stream = Stream::default();
    let mut parser = Parser::new_from_str(text);
    let mut builder: Option<(Pos, Builder)> = None;
    let too_large = |at: Pos| {
        Problem::new(at, "", format!("the document expands to more than {MAX_NODES} values"))
            .with_hint("aliases (`*name`) may be expanding a large anchor many times; write the values out")
    };
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ok) => ok,
            Err(err) => {
                let marker = err.marker();
                let at = Pos {
                    line: marker.line().max(1),
                    column: marker.col() + 1,
                };
                stream.syntax_error = Some(
                    Problem::new(at, "", format!("YAML syntax error: {}", err.info()))
                        .with_hint("check the indentation and the brackets and quotes before this point"),
                );
                break;
            }
        };
        let at = pos(&span);
        match event {
            Event::DocumentStart(_) => builder = Some((at, Builder::new())),
            Event::DocumentEnd => {
                if let Some((start, b)) = builder.take()
                    && let Some(root) = b.root
                {
                    // An empty document (only comments, or a trailing `---`) is skipped.
                    if root.value != Value::Null || !b.problems.is_empty() {
                        stream.documents.push(Document {
                            start,
                            root,
                            problems: b.problems,
                        });
                    }
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            other => {
                let Some((_, b)) = builder.as_mut() else { continue };
                if b.nodes > MAX_NODES {
                    continue; // already reported; skip the rest of this document
                }
                let result = build(b, other, at);
                if result.is_err() {
                    b.problems.push(too_large(at));
                    b.stack.clear();
                    b.root = Some(Node {
                        pos: at,
                        value: Value::Null,
                    });
                    b.nodes = MAX_NODES + 1;
                }
            }
        }
    }
    stream
}

fn build(b: &mut Builder, event: Event<'_>, at: Pos) -> Result<(), ()> {
    match event {
        Event::Scalar(text, style, anchor, tag) => {
            b.count(1)?;
            let mut value = if style == ScalarStyle::Plain {
                resolve_plain(&text)
            } else {
                Value::Str(text.clone().into_owned())
            };
            if let Some(tag) = tag {
                if tag.is_yaml_core_schema() {
                    if tag.suffix == "str" {
                        value = Value::Str(text.into_owned());
                    }
                } else {
                    b.problems.push(
                        Problem::new(
                            at,
                            "",
                            format!("the tag `{}{}` is not supported", tag.handle, tag.suffix),
                        )
                        .with_hint("remove the tag; scenario files are plain YAML"),
                    );
                }
            }
            b.finish(Node { pos: at, value }, anchor);
        }
        Event::SequenceStart(anchor, _) => {
            b.count(1)?;
            b.stack.push(Frame::Seq {
                node_pos: at,
                anchor,
                items: Vec::new(),
            });
        }
        Event::MappingStart(anchor, _) => {
            b.count(1)?;
            b.stack.push(Frame::Map {
                node_pos: at,
                anchor,
                entries: Vec::new(),
                key: None,
            });
        }
        Event::SequenceEnd | Event::MappingEnd => {
            let (node, anchor) = match b.stack.pop() {
                Some(Frame::Seq {
                    node_pos,
                    anchor,
                    items,
                }) => (
                    Node {
                        pos: node_pos,
                        value: Value::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map {
                    node_pos,
                    anchor,
                    entries,
                    ..
                }) => (
                    Node {
                        pos: node_pos,
                        value: Value::Map(entries),
                    },
                    anchor,
                ),
                None => return Ok(()),
            };
            b.finish(node, anchor);
        }
        Event::Alias(id) => {
            let node = match b.anchors.get(&id) {
                Some(target) => {
                    let mut copy = target.clone();
                    copy.pos = at;
                    copy
                }
                None => Node {
                    pos: at,
                    value: Value::Null,
                },
            };
            b.count(size(&node))?;
            b.finish(node, 0);
        }
        Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::DocumentEnd | Event::Nothing => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_scalars_with_the_core_schema() {
        let cases = [
            ("", Value::Null),
            ("~", Value::Null),
            ("true", Value::Bool(true)),
            ("yes", Value::Str("yes".into())),
            ("42", Value::Int(42)),
            ("-7", Value::Int(-7)),
            ("0x1F", Value::Int(31)),
            ("0o17", Value::Int(15)),
            ("0.5", Value::Float(0.5)),
            ("1e3", Value::Float(1000.0)),
            ("2m", Value::Str("2m".into())),
            ("1.2.3", Value::Str("1.2.3".into())),
            (".", Value::Str(".".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(resolve_plain(text), expected, "{text:?}");
        }
    }

    #[test]
    fn remembers_positions_of_keys_and_values() {
        let stream = parse("a: 1\nb:\n  c: [x, 'y']\n");
        assert!(stream.syntax_error.is_none());
        let root = &stream.documents[0].root;
        let b = root.get("b").unwrap();
        assert_eq!(b.key_pos, Pos { line: 2, column: 1 });
        let c = b.value.get("c").unwrap();
        assert_eq!(c.key_pos, Pos { line: 3, column: 3 });
        let Value::Seq(items) = &c.value.value else {
            panic!("not a list")
        };
        assert_eq!(items[1].pos, Pos { line: 3, column: 10 });
        assert_eq!(items[1].value, Value::Str("y".into()));
    }

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let stream = parse("# only a comment\n---\na: 1\n---\n---\nb: 2\n");
        assert_eq!(stream.documents.len(), 2);
        assert_eq!(stream.documents[1].start.line, 5);
    }

    #[test]
    fn reports_duplicate_keys_at_the_second_one() {
        let stream = parse("a: 1\nb: 2\na: 3\n");
        let problems = &stream.documents[0].problems;
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pos(), Pos { line: 3, column: 1 });
        assert!(problems[0].message.contains("duplicate key `a`"));
    }

    #[test]
    fn keeps_documents_before_a_syntax_error() {
        let stream = parse("a: 1\n---\nb: [1, 2\n");
        assert_eq!(stream.documents.len(), 1);
        let err = stream.syntax_error.expect("syntax error");
        assert!(err.line >= 3, "{err}");
    }

    #[test]
    fn an_alias_bomb_is_refused_not_expanded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let stream = parse(&text);
        let doc = &stream.documents[0];
        assert!(doc.problems.iter().any(|p| p.message.contains("expands to more than")));
    }
}
