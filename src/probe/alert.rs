//! The alert probe: is an alert firing (or, with `firing: false`, not)? Read from
//! Prometheus's `ALERTS` series; when it holds, detection time is recorded by the engine.

use super::{ProbeContext, Sample, Verdict};
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

pub async fn sample(ctx: &ProbeContext, probe: &AlertProbe) -> Sample {
    if probe.source == AlertSource::Alertmanager {
        return Sample::new(
            Verdict::Inconclusive,
            "reading alerts from Alertmanager is not available in this version; use source: prometheus",
        );
    }
    let Some(base) = super::prometheus::base(probe.url.as_deref(), ctx) else {
        return Sample::new(
            Verdict::Inconclusive,
            "no Prometheus address: set `url` on the probe, or --prometheus-url",
        );
    };
    match super::prometheus::instant(base, &selector(probe)).await {
        Err(e) => Sample::new(Verdict::Inconclusive, e),
        Ok(series) => {
            let firing = !series.is_empty();
            let verdict = if firing == probe.firing {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let state = if firing { "firing" } else { "not firing" };
            Sample::new(verdict, format!("{} is {state}", probe.name))
        }
    }
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
