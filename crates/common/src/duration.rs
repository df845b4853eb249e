//! Durations as people write them in scenarios: `90s`, `2m`, `1h30m`, `250ms`.
//!
//! The syntax is the subset of Go's `time.ParseDuration` that Kubernetes accepts for
//! `format: duration` fields: whole numbers, units `h`, `m`, `s`, `ms`, largest unit first,
//! each unit at most once. No fractions and no bare numbers — a bare `120` is ambiguous.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative span of time, written like `90s`, `2m` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

/// The regular expression given to editors; [`Duration::from_str`] is the authority.
pub const DURATION_PATTERN: &str = "^([0-9]+(h|ms|m|s))+$";

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("an empty string is not a duration")]
    Empty,
    #[error("`{0}` has a number without a unit")]
    MissingUnit(String),
    #[error("`{input}` has an unknown unit `{unit}`")]
    UnknownUnit { input: String, unit: String },
    #[error("`{0}` must start with a whole number")]
    MissingNumber(String),
    #[error("`{0}` repeats a unit or puts a smaller unit before a larger one")]
    UnitOrder(String),
    #[error("`{0}` is too long to represent")]
    Overflow(String),
}

impl DurationError {
    /// What to write instead.
    pub fn hint(&self) -> &'static str {
        match self {
            DurationError::UnknownUnit { .. } => {
                "units are h, m, s and ms, written without spaces: `90s`, `2m`, `1h30m`, `250ms`"
            }
            _ => "write whole numbers with units, largest first: `90s`, `2m`, `1h30m`, `250ms`",
        }
    }
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Duration(std::time::Duration::from_millis(millis))
    }

    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(DurationError::Empty);
        }
        // Units from largest to smallest; each may appear once, in this order.
        const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
        let mut rest = input;
        let mut millis: u64 = 0;
        let mut next_unit = 0; // index into UNITS of the largest unit still allowed
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(DurationError::MissingNumber(input.to_owned()));
            }
            let overflow = || DurationError::Overflow(input.to_owned());
            let number: u64 = rest[..digits].parse().map_err(|_| overflow())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            if unit.is_empty() {
                return Err(DurationError::MissingUnit(input.to_owned()));
            }
            let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                return Err(DurationError::UnknownUnit {
                    input: input.to_owned(),
                    unit: unit.to_owned(),
                });
            };
            if index < next_unit {
                return Err(DurationError::UnitOrder(input.to_owned()));
            }
            next_unit = index + 1;
            let part = number.checked_mul(UNITS[index].1).ok_or_else(overflow)?;
            millis = millis.checked_add(part).ok_or_else(overflow)?;
            rest = &rest[unit_len..];
        }
        Ok(Duration::from_millis(millis))
    }
}

impl fmt::Display for Duration {
    /// The canonical spelling: `1h30m`, `90s` is shown as `1m30s`, zero as `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_millis();
        if total == 0 {
            return f.write_str("0s");
        }
        let (h, rem) = (total / 3_600_000, total % 3_600_000);
        let (m, rem) = (rem / 60_000, rem % 60_000);
        let (s, ms) = (rem / 1_000, rem % 1_000);
        for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // `format: duration` is what Kubernetes CRD validation knows for Go-style durations.
        json_schema!({
            "type": "string",
            "format": "duration",
            "pattern": DURATION_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spellings_people_write() {
        let cases = [
            ("90s", 90_000),
            ("2m", 120_000),
            ("1h30m", 5_400_000),
            ("1h30m15s", 5_415_000),
            ("250ms", 250),
            ("1s500ms", 1_500),
            ("0s", 0),
        ];
        for (text, millis) in cases {
            let parsed: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.as_std().as_millis(), millis, "{text}");
        }
    }

    #[test]
    fn refuses_ambiguous_or_malformed_spellings() {
        let cases = [
            ("", DurationError::Empty),
            ("120", DurationError::MissingUnit("120".into())),
            ("2 m", DurationError::MissingUnit("2 m".into())),
            (
                "2min",
                DurationError::UnknownUnit {
                    input: "2min".into(),
                    unit: "min".into(),
                },
            ),
            ("m", DurationError::MissingNumber("m".into())),
            ("1.5s", DurationError::MissingUnit("1.5s".into())),
            ("30m1h", DurationError::UnitOrder("30m1h".into())),
            ("1m1m", DurationError::UnitOrder("1m1m".into())),
            ("-5s", DurationError::MissingNumber("-5s".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Duration>(), Err(expected), "{text}");
        }
        assert!(matches!(
            "99999999999999999999h".parse::<Duration>(),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn displays_canonically_and_round_trips() {
        for (text, shown) in [("90s", "1m30s"), ("1h30m", "1h30m"), ("250ms", "250ms"), ("0s", "0s")] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(shown.parse::<Duration>().unwrap(), d);
        }
    }
}
