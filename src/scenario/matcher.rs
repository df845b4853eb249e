//! Alert label matchers, as Alertmanager and PromQL write them: `severity=~"page|critical"`,
//! `team="payments",env!="dev"`, optionally in braces. A set matches an alert when every one
//! of its matchers does. Regular expressions are anchored at both ends, as in Alertmanager.
//!
//! PURE: used by `validate` (a matcher that does not parse is a problem at its field) and by
//! the engine, which halts an exercise on an unanticipated alert a set matches.

use std::collections::BTreeMap;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    Matches,
    NotMatches,
}

/// One matcher: a label name, how, and the value or pattern.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl Matcher {
    /// Whether the label `name` of `labels` (absent: empty, as in Alertmanager) passes.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (Op::Equal, _) => value == self.value,
            (Op::NotEqual, _) => value != self.value,
            (Op::Matches, Some(re)) => re.is_match(value),
            (Op::NotMatches, Some(re)) => !re.is_match(value),
            // A regex op always carries its compiled pattern (see `parse`); never matching is
            // the safe reading if it did not.
            (Op::Matches | Op::NotMatches, None) => false,
        }
    }
}

/// Several matchers, all of which must hold.
#[derive(Debug, Clone)]
pub struct MatcherSet {
    /// As written, for people.
    pub text: String,
    pub matchers: Vec<Matcher>,
}

impl MatcherSet {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// The longest matcher set read, in bytes: a pattern is compiled, and a tenant writes it.
pub const MAX_LEN: usize = 1024;

/// What is wrong with a matcher set, said on one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatcherError {
    #[error("it is {0} bytes long; at most {MAX_LEN}")]
    TooLong(usize),
    #[error("it opens `{{` and never closes it")]
    Unclosed,
    #[error("expected `,` before `{0}`")]
    ExpectedComma(String),
    #[error("it names no matcher")]
    Empty,
    #[error("expected a label name at `{0}` (letters, digits and `_`, not starting with a digit)")]
    ExpectedName(String),
    #[error("expected `=`, `!=`, `=~` or `!~` after `{0}`")]
    ExpectedOp(String),
    #[error("the value of `{0}` opens `\"` and never closes it")]
    UnclosedValue(String),
    #[error("the pattern of `{name}` is not a regular expression: {why}")]
    BadPattern { name: String, why: String },
}

/// Reads `text` (`name op "value"`, comma-separated, optionally in `{}`); says what is wrong
/// when it does not parse.
pub fn parse(text: &str) -> Result<MatcherSet, MatcherError> {
    if text.len() > MAX_LEN {
        return Err(MatcherError::TooLong(text.len()));
    }
    let trimmed = text.trim();
    let inner = match trimmed.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or(MatcherError::Unclosed)?,
        None => trimmed,
    };
    let mut matchers = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (matcher, after) = one(rest)?;
        matchers.push(matcher);
        rest = after.trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma.trim_start();
        } else if !rest.is_empty() {
            return Err(MatcherError::ExpectedComma(rest.to_owned()));
        }
    }
    if matchers.is_empty() {
        return Err(MatcherError::Empty);
    }
    Ok(MatcherSet {
        text: trimmed.to_owned(),
        matchers,
    })
}

/// One matcher at the start of `text`, and what follows it.
fn one(text: &str) -> Result<(Matcher, &str), MatcherError> {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(MatcherError::ExpectedName(text.to_owned()));
    }
    let rest = text[name_end..].trim_start();
    let (op, rest) = [
        ("=~", Op::Matches),
        ("!~", Op::NotMatches),
        ("!=", Op::NotEqual),
        ("=", Op::Equal),
    ]
    .into_iter()
    .find_map(|(sym, op)| rest.strip_prefix(sym).map(|r| (op, r)))
    .ok_or_else(|| MatcherError::ExpectedOp(name.to_owned()))?;
    let rest = rest.trim_start();
    let (value, rest) = match rest.strip_prefix('"') {
        Some(quoted) => quoted_value(quoted).ok_or_else(|| MatcherError::UnclosedValue(name.to_owned()))?,
        None => {
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            (rest[..end].trim_end().to_owned(), &rest[end..])
        }
    };
    let regex = match op {
        Op::Matches | Op::NotMatches => Some(
            regex::RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    // The regex crate's message spans lines (the pattern, a caret); its last
                    // line says what is wrong.
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                        .to_owned();
                    MatcherError::BadPattern {
                        name: name.to_owned(),
                        why,
                    }
                })?,
        ),
        Op::Equal | Op::NotEqual => None,
    };
    Ok((
        Matcher {
            name: name.to_owned(),
            op,
            value,
            regex,
        },
        rest,
    ))
}

/// A double-quoted value (after its opening quote), with `\"` and `\\` escapes; and the rest.
fn quoted_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_set_matches_when_every_matcher_does() {
        let cases = [
            (r#"severity=~"page|critical""#, vec![("severity", "page")], true),
            (r#"severity=~"page|critical""#, vec![("severity", "pager")], false),
            (
                r#"{severity="page", team!="payments"}"#,
                vec![("severity", "page"), ("team", "orders")],
                true,
            ),
            (
                r#"{severity="page", team!="payments"}"#,
                vec![("severity", "page"), ("team", "payments")],
                false,
            ),
            ("severity = page", vec![("severity", "page")], true),
            (r#"team!~"pay.*""#, vec![], true),
            (r#"team=~".+""#, vec![], false),
            (r#"alertname="Say \"hi\"""#, vec![("alertname", "Say \"hi\"")], true),
        ];
        for (text, pairs, want) in cases {
            let set = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(set.matches(&labels(&pairs)), want, "{text} on {pairs:?}");
        }
    }

    #[test]
    fn what_does_not_parse_says_why() {
        let cases = [
            ("", "names no matcher"),
            ("{severity=\"page\"", "never closes"),
            ("severity", "expected `=`"),
            ("9x=\"a\"", "expected a label name"),
            ("severity=~\"(\"", "not a regular expression"),
            ("severity=\"page", "never closes"),
            ("a=\"b\" c=\"d\"", "expected `,`"),
        ];
        for (text, want) in cases {
            let err = parse(text).err().unwrap_or_else(|| panic!("{text} parsed")).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(parse(&"a".repeat(MAX_LEN + 1)).is_err());
    }
}
