//! Webhook notifications: a JSON POST with a `text` field (what a Slack incoming webhook
//! reads, escaped as Slack asks: `&`, `<` and `>` as entities, so that text a tenant wrote —
//! a hypothesis, a lesson, a follow-up — cannot mention `<!channel>` or hide a link), the same
//! text unescaped as `markdown`, and the details beside them. Best effort: a webhook that fails is logged, never a
//! reason to stop or fail an exercise.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The most of a webhook's answer that is read.
const MAX_ANSWER: usize = 64 * 1024;

/// What a notification posts: `text` escaped for Slack, `markdown` as written, and `details`.
/// PURE.
pub fn payload(text: &str, details: serde_json::Value) -> serde_json::Value {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut body = serde_json::json!({ "text": escaped, "markdown": text });
    if let (Some(map), serde_json::Value::Object(extra)) = (body.as_object_mut(), details) {
        map.extend(extra);
    }
    body
}

/// Why a notification did not arrive.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotifyError {
    #[error("`{url}` is not a URL: {reason}")]
    NotUrl { url: String, reason: String },
    #[error("not sent: {0}")]
    NotAllowed(#[from] crate::probe::hosts::HostError),
    #[error("the webhook answered {0}: the notification was refused")]
    Refused(u16),
    #[error("the notification was not delivered: {0}")]
    NotDelivered(String),
}

/// Posts `{"text": text, ...details}` to `webhook`, if there is one, as [`post`] does; a
/// notification is best effort, so this is what the CLI and the controller both call, and
/// each says a failure its own way (stderr, the log).
pub async fn send(
    hosts: &crate::probe::hosts::HostPolicy,
    webhook: Option<&str>,
    text: &str,
    details: serde_json::Value,
) -> Result<(), NotifyError> {
    match webhook {
        Some(url) => post(hosts, url, text, details).await,
        None => Ok(()),
    }
}

/// Posts `{"text": text, ...details}` to `url` if `hosts` allow it and every address it
/// resolves to; a 2xx answer is delivered.
pub async fn post(
    hosts: &crate::probe::hosts::HostPolicy,
    url: &str,
    text: &str,
    details: serde_json::Value,
) -> Result<(), NotifyError> {
    let parsed = url::Url::parse(url).map_err(|e| NotifyError::NotUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    hosts.resolve(&parsed).await?;
    let body = payload(text, details);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| NotifyError::NotDelivered(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "disasterpiece")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| NotifyError::NotDelivered(e.to_string()))?;
    let send = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| NotifyError::NotDelivered(e.to_string()))?;
        let status = response.status().as_u16();
        let _ = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await;
        match status {
            200..=299 => Ok(()),
            refused => Err(NotifyError::Refused(refused)),
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), send)
        .await
        .unwrap_or_else(|_| Err(NotifyError::NotDelivered("no answer within 10s".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_a_tenant_wrote_cannot_mention_the_channel_or_hide_a_link_in_slack() {
        let body = payload(
            "lesson: <!channel> see <http://evil.example|the runbook> & more",
            serde_json::json!({"event": "weeklyReview"}),
        );
        assert_eq!(
            body["text"],
            "lesson: &lt;!channel&gt; see &lt;http://evil.example|the runbook&gt; &amp; more"
        );
        assert_eq!(
            body["markdown"],
            "lesson: <!channel> see <http://evil.example|the runbook> & more"
        );
        assert_eq!(body["event"], "weeklyReview");
    }
}
