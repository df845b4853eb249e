//! Conditions in the statuses of Disasterpiece's custom resources, as the Kubernetes API
//! conventions describe them. PURE.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The conditions Disasterpiece's resources carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionType {
    /// The resource passes what `disasterpiece validate` checks (Scenario, GameDay).
    Valid,
    /// The Exercise ended; the reason is its verdict.
    Finished,
    /// The Exercise was refused before anything changed.
    Refused,
    /// Every fault of the Exercise was reverted (`False`: some undo step failed).
    Reverted,
    /// The Exercise was aborted.
    Aborted,
}

/// A condition's status, as the API conventions spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(holds: bool) -> Self {
        if holds {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// A condition, as Kubernetes API conventions describe them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: ConditionType,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
}

impl Condition {
    pub fn new(at: DateTime<Utc>, type_: ConditionType, status: bool, reason: &str, message: &str) -> Condition {
        Condition {
            type_,
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: at,
        }
    }
}

/// The `Valid` condition of a resource `disasterpiece validate` judged: `True`, or `False` with
/// what follows (`consequence`, e.g. "it will not run") and validate's `problems`. PURE.
pub fn valid(at: DateTime<Utc>, problems: Option<&str>, consequence: &str) -> Condition {
    match problems {
        None => Condition::new(
            at,
            ConditionType::Valid,
            true,
            "Valid",
            "passes what `disasterpiece validate` checks",
        ),
        Some(problems) => Condition::new(
            at,
            ConditionType::Valid,
            false,
            "Invalid",
            &format!("{consequence}: {problems}"),
        ),
    }
}

/// Sets `new` in `conditions` (one per type); keeps the transition time when the status did
/// not change. Whether anything changed.
pub fn set(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) if old.status == new.status && old.reason == new.reason && old.message == new.message => false,
        Some(old) => {
            let at = if old.status == new.status {
                old.last_transition_time
            } else {
                new.last_transition_time
            };
            *old = Condition {
                last_transition_time: at,
                ..new
            };
            true
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_is_replaced_and_keeps_its_transition_time_while_its_status_holds() {
        let t0 = DateTime::from_timestamp(1_000, 0).expect("time");
        let t1 = DateTime::from_timestamp(2_000, 0).expect("time");
        let mut conditions = Vec::new();
        assert!(set(
            &mut conditions,
            Condition::new(t0, ConditionType::Valid, false, "Invalid", "a")
        ));
        assert!(!set(
            &mut conditions,
            Condition::new(t1, ConditionType::Valid, false, "Invalid", "a")
        ));
        assert!(set(
            &mut conditions,
            Condition::new(t1, ConditionType::Valid, false, "Invalid", "b")
        ));
        assert_eq!(conditions[0].last_transition_time, t0);
        assert!(set(
            &mut conditions,
            Condition::new(t1, ConditionType::Valid, true, "Valid", "ok")
        ));
        assert_eq!((conditions.len(), conditions[0].last_transition_time), (1, t1));
    }
}
