//! The prometheus probe: a PromQL instant query, compared with a threshold. No data, several
//! series or NaN is inconclusive — never a pass — with what to change in the query.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ProbeContext, Reading, Verdict, describe, holds};
use crate::scenario::model::PrometheusProbe;

/// A series' labels.
pub type Labels = BTreeMap<String, String>;

/// Why a query gave no figure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("the Prometheus address `{base}` is not a URL: {reason}")]
    NotUrl { base: String, reason: String },
    #[error(transparent)]
    Request(#[from] super::http::RequestError),
    #[error("Prometheus answered {0} with no JSON")]
    NoJson(u16),
    #[error("Prometheus refused the query: {0}")]
    Refused(String),
    #[error("the query returns a {0}, not a number; make it an instant vector")]
    NotNumber(String),
}

/// The result of an instant query: each series with its value (none: no data), or why not.
pub async fn instant(
    policy: Option<&super::hosts::HostPolicy>,
    base: &str,
    query: &str,
) -> Result<Vec<(Labels, f64)>, QueryError> {
    let url = url::Url::parse(base).map_err(|e| QueryError::NotUrl {
        base: base.to_owned(),
        reason: e.to_string(),
    })?;
    let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let path = format!("{}/api/v1/query?query={encoded}", url.path().trim_end_matches('/'));
    let (status, body) = super::http::direct(policy, &url, "GET", &path, &BTreeMap::new()).await?;
    let answer: Value = serde_json::from_str(&body).map_err(|_| QueryError::NoJson(status))?;
    if answer["status"] != "success" {
        return Err(QueryError::Refused(
            answer["error"].as_str().unwrap_or("no reason given").to_owned(),
        ));
    }
    let number = |v: &Value| v.get(1).and_then(Value::as_str).and_then(|s| s.parse::<f64>().ok());
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some("scalar") => Ok(number(&data["result"])
            .map(|v| (BTreeMap::new(), v))
            .into_iter()
            .collect()),
        Some("vector") => Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|series| {
                let labels = series["metric"]
                    .as_object()?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                Some((labels, number(&series["value"])?))
            })
            .collect()),
        other => Err(QueryError::NotNumber(other.unwrap_or("nothing").to_owned())),
    }
}

/// The Prometheus to ask: the probe's own (which the allowed hosts must allow), else the
/// run's (the operator's, asked as is).
pub fn base<'a>(
    own: Option<&'a str>,
    ctx: &'a ProbeContext,
) -> Option<(&'a str, Option<&'a super::hosts::HostPolicy>)> {
    match own {
        Some(url) => Some((url, Some(&ctx.sources.hosts))),
        None => ctx.sources.prometheus.as_deref().map(|url| (url, None)),
    }
}

pub async fn sample(ctx: &ProbeContext, probe: &PrometheusProbe) -> Reading {
    let Some((base, policy)) = base(probe.url.as_deref(), ctx) else {
        return Reading::new(
            Verdict::Inconclusive,
            "no Prometheus address: set `url` on the probe, or --prometheus-url",
        );
    };
    let cmp = probe.comparison();
    match instant(policy, base, &probe.query).await {
        Err(e) => Reading::new(Verdict::Inconclusive, e.to_string()),
        Ok(series) => match series.as_slice() {
            [] => Reading::new(Verdict::Inconclusive, "no data: the query matched no series"),
            [(_, value)] if value.is_nan() => Reading::new(Verdict::Inconclusive, "the query returned NaN"),
            [(_, value)] => {
                let verdict = if holds(&cmp, *value) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                Reading::new(verdict, format!("{value} (want {})", describe(&cmp)))
            }
            many => Reading::new(
                Verdict::Inconclusive,
                format!(
                    "the query returned {} series; aggregate it to one number, e.g. sum(…)",
                    many.len()
                ),
            ),
        },
    }
}
