//! Probes: each reads one thing once and returns a timestamped [`Sample`] with its verdict.
//! A probe never changes anything. An answer that cannot be judged (no data, a kind of probe
//! this version cannot run) is inconclusive, never a pass.

pub mod alert;
pub mod command;
pub mod hosts;
pub mod http;
pub mod kube;
pub mod prometheus;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::scenario::model::{Comparison, ProbeKind, Target};

/// What one probe saw once, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    /// What was seen, for people: `200 in 12 ms`, `2 ready replicas`.
    pub observed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// What a probe read, before [`sample`] stamps it with the time (from the run's clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub verdict: Verdict,
    pub observed: String,
    pub latency_ms: Option<f64>,
}

impl Reading {
    pub fn new(verdict: Verdict, observed: impl Into<String>) -> Self {
        Reading {
            verdict,
            observed: observed.into(),
            latency_ms: None,
        }
    }

    /// This reading, taken at `at`.
    pub fn at(self, at: DateTime<Utc>) -> Sample {
        let Reading {
            verdict,
            observed,
            latency_ms,
        } = self;
        Sample {
            at,
            verdict,
            observed,
            latency_ms,
        }
    }
}

/// What probes may reach: the Prometheus and Alertmanager that `prometheus` and `alert`
/// probes ask when they name no `url`, and whether `command` probes may run at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub prometheus: Option<String>,
    pub alertmanager: Option<String>,
    /// Command probes run programs as whoever runs Disasterpiece: off unless the person
    /// running it says so (`run`, `plan --run-commands`, the controller's
    /// `--allow-command-probes`). Off, a command probe is not run and reads inconclusive.
    pub commands: CommandProbes,
    /// The hosts that addresses a Scenario names (http probes, and prometheus and alert
    /// probes with their own `url`) may reach. Closed by default; the CLI allows any but
    /// link-local and metadata addresses; the controller what `--allowed-probe-hosts` lists.
    pub hosts: hosts::HostPolicy,
}

/// Whether `command` probes may run here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommandProbes {
    #[default]
    Off,
    On,
}

/// What a command probe reads where command probes are off.
pub const COMMANDS_OFF: &str = "not run: command probes are off here (they run programs as whoever runs Disasterpiece); `plan --run-commands` or the controller's `--allow-command-probes` turns them on";

/// What probes need: a client, the scenario's target for the defaults of `kube` probes, and
/// the Prometheus and Alertmanager to ask when a probe names none.
#[derive(Clone)]
pub struct ProbeContext {
    pub client: ::kube::Client,
    pub target: Target,
    pub sources: Sources,
    /// Stamps each sample with the time it was answered.
    pub clock: Clock,
}

/// The longest any one sample may take, whatever its kind: a probe never holds up the
/// observation (and the abort checks between samples) for longer.
pub const SAMPLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Takes one sample of a probe, within `SAMPLE_LIMIT`.
pub async fn sample(ctx: &ProbeContext, probe: ProbeKind<'_>) -> Sample {
    let reading = tokio::time::timeout(SAMPLE_LIMIT, read(ctx, probe))
        .await
        .unwrap_or_else(|_| Reading {
            verdict: Verdict::Inconclusive,
            observed: format!("no answer within {}s", SAMPLE_LIMIT.as_secs()),
            latency_ms: None,
        });
    reading.at(ctx.clock.now())
}

async fn read(ctx: &ProbeContext, probe: ProbeKind<'_>) -> Reading {
    match probe {
        ProbeKind::Http(p) => http::sample(ctx, p).await,
        ProbeKind::Kube(p) => kube::sample(ctx, p).await,
        ProbeKind::Command(_) if ctx.sources.commands == CommandProbes::Off => Reading {
            verdict: Verdict::Inconclusive,
            observed: COMMANDS_OFF.into(),
            latency_ms: None,
        },
        ProbeKind::Command(p) => command::sample(p).await,
        ProbeKind::Prometheus(p) => prometheus::sample(ctx, p).await,
        ProbeKind::Alert(p) => alert::sample(ctx, p).await,
    }
}

/// Whether every bound of a comparison holds for `value`.
pub fn holds(cmp: &Comparison, value: f64) -> bool {
    cmp.above.is_none_or(|b| value > b)
        && cmp.below.is_none_or(|b| value < b)
        && cmp.at_least.is_none_or(|b| value >= b)
        && cmp.at_most.is_none_or(|b| value <= b)
        && cmp.equals.is_none_or(|b| value == b)
        && cmp.between.is_none_or(|[low, high]| value >= low && value <= high)
}

/// `≥ 3`, `< 1 and ≥ 0`: a comparison for people.
pub fn describe(cmp: &Comparison) -> String {
    let mut parts = Vec::new();
    let fmt = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            v.to_string()
        }
    };
    if let Some(v) = cmp.above {
        parts.push(format!("> {}", fmt(v)));
    }
    if let Some(v) = cmp.at_least {
        parts.push(format!(">= {}", fmt(v)));
    }
    if let Some(v) = cmp.below {
        parts.push(format!("< {}", fmt(v)));
    }
    if let Some(v) = cmp.at_most {
        parts.push(format!("<= {}", fmt(v)));
    }
    if let Some(v) = cmp.equals {
        parts.push(format!("= {}", fmt(v)));
    }
    if let Some([low, high]) = cmp.between {
        parts.push(format!("in [{}, {}]", fmt(low), fmt(high)));
    }
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_hold_when_every_bound_does() {
        let cmp = |f: fn(&mut Comparison)| {
            let mut c = Comparison::default();
            f(&mut c);
            c
        };
        let cases = [
            (cmp(|c| c.at_least = Some(3.0)), 3.0, true),
            (cmp(|c| c.at_least = Some(3.0)), 2.0, false),
            (cmp(|c| c.below = Some(1.0)), 1.0, false),
            (cmp(|c| c.between = Some([0.0, 0.1])), 0.05, true),
            (
                cmp(|c| {
                    c.above = Some(1.0);
                    c.at_most = Some(5.0)
                }),
                5.0,
                true,
            ),
            (cmp(|c| c.equals = Some(3.0)), 3.0, true),
        ];
        for (c, value, expected) in cases {
            assert_eq!(holds(&c, value), expected, "{} with {value}", describe(&c));
        }
    }
}
