//! The alert probe: is an alert firing (or, with `firing: false`, not)? Read from
//! Prometheus's `ALERTS` series; when it holds, detection time is recorded by the engine.

use super::{ProbeContext, Reading, Verdict};
use crate::scenario::model::{AlertProbe, AlertSource};

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The PromQL selector of a firing alert: `ALERTS{alertname="X",alertstate="firing",…}`.
pub fn selector(probe: &AlertProbe) -> String {
    let mut matchers = vec![
        format!("alertname=\"{}\"", label_value(&probe.name)),
        "alertstate=\"firing\"".to_owned(),
    ];
    matchers.extend(probe.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label_value(v))));
    format!("ALERTS{{{}}}", matchers.join(","))
}

pub async fn sample(ctx: &ProbeContext, probe: &AlertProbe) -> Reading {
    if probe.source == AlertSource::Alertmanager {
        return from_alertmanager(ctx, probe).await;
    }
    let Some((base, policy)) = super::prometheus::base(probe.url.as_deref(), ctx) else {
        return Reading::new(
            Verdict::Inconclusive,
            "no Prometheus address: set `url` on the probe, or --prometheus-url",
        );
    };
    match super::prometheus::instant(policy, base, &selector(probe)).await {
        Err(e) => Reading::new(Verdict::Inconclusive, e.to_string()),
        Ok(series) => {
            let firing = !series.is_empty();
            let verdict = if firing == probe.firing {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let state = if firing { "firing" } else { "not firing" };
            Reading::new(verdict, format!("{} is {state}", probe.name))
        }
    }
}

/// Alertmanager's v2 API: an alert counts as firing while it is active (not silenced or
/// inhibited) and has not ended.
async fn from_alertmanager(ctx: &ProbeContext, probe: &AlertProbe) -> Reading {
    let (own, operator) = (probe.url.as_deref(), ctx.sources.alertmanager.as_deref());
    let policy = own.map(|_| &ctx.sources.hosts);
    let Some(base) = own.or(operator) else {
        return Reading::new(
            Verdict::Inconclusive,
            "no Alertmanager address: set `url` on the probe, or --alertmanager-url",
        );
    };
    let url = match url::Url::parse(base) {
        Ok(u) => u,
        Err(e) => {
            return Reading::new(
                Verdict::Inconclusive,
                format!("the Alertmanager address `{base}` is not a URL: {e}"),
            );
        }
    };
    let mut path = format!(
        "{}/api/v2/alerts?active=true&silenced=false&inhibited=false",
        url.path().trim_end_matches('/')
    );
    let filters = std::iter::once(("alertname", probe.name.as_str()))
        .chain(probe.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in filters {
        let matcher = format!("{k}=\"{}\"", label_value(v));
        path.push_str("&filter=");
        path.extend(url::form_urlencoded::byte_serialize(matcher.as_bytes()));
    }
    let answer = super::http::direct(policy, &url, "GET", &path, &Default::default()).await;
    let alerts: Vec<serde_json::Value> = match answer {
        Err(e) => return Reading::new(Verdict::Inconclusive, e.to_string()),
        Ok((200, body)) => match serde_json::from_str(&body) {
            Ok(alerts) => alerts,
            Err(_) => return Reading::new(Verdict::Inconclusive, "Alertmanager answered with no list of alerts"),
        },
        Ok((status, _)) => return Reading::new(Verdict::Inconclusive, format!("Alertmanager answered {status}")),
    };
    // Alertmanager leaves resolved alerts (endsAt passed, by its own clock) out of this list;
    // comparing endsAt with this machine's clock instead would misjudge under clock skew.
    let firing = alerts.iter().any(|a| a["status"]["state"] == "active");
    let verdict = if firing == probe.firing {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Reading::new(
        verdict,
        format!(
            "{} is {} (Alertmanager)",
            probe.name,
            if firing { "firing" } else { "not firing" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_names_the_alert_its_labels_and_escapes_quotes() {
        let probe = AlertProbe {
            name: "CheckoutDegraded".into(),
            labels: [("namespace".to_owned(), "sh\"op".to_owned())].into(),
            firing: true,
            source: AlertSource::Prometheus,
            url: None,
        };
        assert_eq!(
            selector(&probe),
            r#"ALERTS{alertname="CheckoutDegraded",alertstate="firing",namespace="sh\"op"}"#
        );
    }
}
