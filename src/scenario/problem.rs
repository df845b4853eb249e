//! What is wrong with a file, where, and what to do about it.

use std::fmt;

use serde::Serialize;

/// A position in a file: 1-based line, 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem in one document. Every problem has a position; `path` is the field path
/// (`spec.blastRadius.value`), empty when the problem is not about one field (YAML syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            line: pos.line,
            column: pos.column,
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }
}

impl fmt::Display for Problem {
    /// `LINE:COLUMN: path: message`, then `  hint: …` on its own line when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The known word closest to `word`, when it is close enough to be a likely typo
/// (`percnt` → `percent`, `min_healthy` → `minHealthy`, `MinHealthy` → `minHealthy`).
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(word);
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        if candidate == word {
            continue;
        }
        let distance = if fold(candidate) == folded {
            0
        } else {
            strsim::damerau_levenshtein(&word.to_lowercase(), &candidate.to_lowercase())
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    // One edit in four characters, at least one: `percnt` (1 edit) yes, `max` for `mode` no.
    let limit = (word.chars().count() / 4).max(1);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

/// Lowercase without separators, so that spelling variants of one name compare equal.
fn fold(word: &str) -> String {
    word.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `a, b, c` with each word in backticks.
pub fn list(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_and_nothing_for_far_ones() {
        let fields = ["mode", "value", "max", "minHealthy", "respectPodDisruptionBudgets"];
        let cases = [
            ("minHelthy", Some("minHealthy")),
            ("min_healthy", Some("minHealthy")),
            ("MinHealthy", Some("minHealthy")),
            ("vaule", Some("value")),
            ("respectPDBs", None),
            ("colour", None),
        ];
        for (typo, expected) in cases {
            assert_eq!(did_you_mean(typo, fields), expected, "{typo}");
        }
        assert_eq!(
            did_you_mean("percnt", ["one", "count", "percent", "all"]),
            Some("percent")
        );
    }

    #[test]
    fn displays_position_path_message_and_hint() {
        let p = Problem::new(Pos { line: 12, column: 11 }, "spec.blastRadius.mode", "bad").with_hint("do this");
        assert_eq!(p.to_string(), "12:11: spec.blastRadius.mode: bad\n  hint: do this");
    }
}
