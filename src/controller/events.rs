//! Kubernetes Events about Disasterpiece's resources: what `kubectl describe` shows under
//! "Events", and what `kubectl events` lists.
//!
//! Guarantees: each Event carries its `eventTime` to the microsecond (so `describe` lists
//! Events of one second in the order they happened, not shuffled as with `lastTimestamp`,
//! which holds whole seconds), with the reporting controller, its instance and the action, as
//! the API server requires of an Event that has an `eventTime`; a note longer than an Event
//! may hold (1 024 bytes) is cut at a character boundary. Recording never holds up the caller:
//! a failure is logged with its category.

use chrono::{DateTime, Utc};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::engine::event::{Act, Reason, Severity};

/// Who reports: the controller's component name and its instance.
pub const COMPONENT: &str = "disasterpiece-controller";

/// Records Events as one controller instance.
#[derive(Clone)]
pub struct Reporter {
    client: Client,
    /// This replica (its Lease identity), or the component's name.
    instance: String,
}

impl Reporter {
    pub fn new(client: &Client, instance: &str) -> Reporter {
        Reporter {
            client: client.clone(),
            instance: instance.to_owned(),
        }
    }

    /// Records an Event about `involved` (an object reference) in its namespace: why
    /// (`reason`), what the controller did (`action`), `Normal` or `Warning`, at `now`. In the
    /// background.
    pub fn record(
        &self,
        involved: serde_json::Value,
        (reason, action, severity): (Reason, Act, Severity),
        message: &str,
        now: DateTime<Utc>,
    ) {
        let client = self.client.clone();
        let ns = involved["namespace"].as_str().unwrap_or_default().to_owned();
        let name = involved["name"].as_str().unwrap_or_default().to_owned();
        let object = format!("{ns}/{name}");
        let event = json!({
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": involved,
            "reason": reason.as_str(), "action": action.as_str(), "message": note(message), "type": severity.as_str(),
            "eventTime": micro_time(now),
            "reportingComponent": COMPONENT,
            "reportingInstance": truncate(&self.instance, 128),
            "source": {"component": COMPONENT},
        });
        tokio::spawn(async move {
            if let Ok(event) = serde_json::from_value::<k8s_openapi::api::core::v1::Event>(event)
                && let Err(e) = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client, &ns)
                    .create(&PostParams::default(), &event)
                    .await
            {
                let category = super::error::Category::of(&e).as_str();
                tracing::warn!(category, object = %object, error = %e, "could not record an Event");
            }
        });
    }

    /// Says, in the log and an `Invalid` Event about `involved`, why a resource `validate`
    /// rejects will not be acted on (`condition`: its `Valid=False` condition).
    pub fn invalid(
        &self,
        involved: serde_json::Value,
        condition: &crate::scenario::condition::Condition,
        now: DateTime<Utc>,
    ) {
        let object = format!(
            "{} {}/{}",
            involved["kind"].as_str().unwrap_or_default(),
            involved["namespace"].as_str().unwrap_or_default(),
            involved["name"].as_str().unwrap_or_default()
        );
        tracing::warn!(object = %object, "{}", condition.message);
        let what = (Reason::Invalid, Act::Validate, Severity::Warning);
        self.record(involved, what, &condition.message, now);
    }
}

/// A MicroTime as the API server writes it: six fractional digits, UTC. PURE.
pub fn micro_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `message` as an Event's note may hold it (at most 1 024 bytes). PURE.
pub fn note(message: &str) -> String {
    truncate(message, 1024)
}

/// The longest prefix of `text` of at most `bytes` bytes that ends at a character boundary.
fn truncate(text: &str, bytes: usize) -> String {
    let mut end = text.len().min(bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_cut_to_1024_bytes_at_a_character_boundary() {
        let long = "é".repeat(600); // 1 200 bytes
        let cut = note(&long);
        assert_eq!(cut.len(), 1024);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(note("short"), "short");
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("time");
        assert_eq!(micro_time(at), "2023-11-14T22:13:20.123456Z");
    }
}
