//! The weekly review on a schedule (Helm `review`): at each tick of its cron, the replica that
//! leads builds the review of the period that ends there from the reports kept (and the
//! workloads, for coverage) and posts it in Markdown to a webhook (what a Slack-compatible
//! incoming webhook reads, as `text`).
//!
//! Each review is posted once: the tick it was posted for is written to the ConfigMap
//! [`RECORD`] in the controller's namespace, through the Lease's fence. A replica that takes the
//! lead reads it and posts a tick the last leader missed, if that tick is at most [`DEADLINE`]
//! old; an older one is skipped and logged. A post that failed is tried again every 30 polls
//! (30 s by default) within that hour. Between ticks the schedule costs no API request.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::report::review::{self, Ask, Org, Source, View};

/// The ConfigMap, in the controller's namespace, that says which review was posted last.
pub const RECORD: &str = "disasterpiece-review";
/// Its annotation: the tick (RFC 3339) of the last review posted.
pub const POSTED_FOR: &str = "disasterpiece.dev/review-posted-for";
/// A tick found later than this (the controller was down) is skipped, not posted late.
pub const DEADLINE: TimeDelta = TimeDelta::hours(1);
/// The most of the review's Markdown posted (Slack takes 40 000 characters of `text`).
pub const MAX_TEXT: usize = 35_000;

/// What is wrong with a review schedule, and how to write it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the review's cron `{cron}`: {reason} (five fields, e.g. `0 9 * * MON`)")]
    Cron { cron: String, reason: String },
    #[error("unknown time zone `{0}` (an IANA name, e.g. Europe/Paris)")]
    TimeZone(String),
    #[error("the review's period must be longer than 0, e.g. 7d")]
    Period,
    #[error("the review's webhook `{0}` is not an http or https URL, e.g. https://hooks.slack.com/services/…")]
    Webhook(String),
}

/// When and what to post.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Five fields, e.g. `0 9 * * MON`.
    pub cron: String,
    /// The time zone the cron is read in (IANA, e.g. `Europe/Paris`).
    pub time_zone: String,
    /// The review covers the `period` that ends at the tick.
    pub period: TimeDelta,
    pub view: View,
    pub org: Org,
    /// A workload exercised longer ago counts as stale.
    pub stale: TimeDelta,
    pub webhook: String,
}

impl Schedule {
    /// Checks the cron, the time zone, the period and the webhook; the error says which and how
    /// to fix it.
    pub fn check(&self) -> Result<(), ScheduleError> {
        self.cron()?;
        self.tz()?;
        if self.period <= TimeDelta::zero() {
            return Err(ScheduleError::Period);
        }
        match url::Url::parse(&self.webhook) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            _ => Err(ScheduleError::Webhook(self.webhook.clone())),
        }
    }

    fn cron(&self) -> Result<croner::Cron, ScheduleError> {
        super::schedule::cron(&self.cron).map_err(|e| ScheduleError::Cron {
            cron: self.cron.clone(),
            reason: e.to_string(),
        })
    }

    fn tz(&self) -> Result<Tz, ScheduleError> {
        self.time_zone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(self.time_zone.clone()))
    }

    /// The tick to post for: the latest in (`last`, `now`]; `Err` with it when it is older
    /// than [`DEADLINE`] (too late to post); `Ok(None)` when none is due. PURE.
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, DateTime<Utc>> {
        let (Ok(cron), Ok(tz)) = (self.cron(), self.tz()) else {
            return Ok(None);
        };
        let Ok(tick) = cron.find_previous_occurrence(&now.with_timezone(&tz), true) else {
            return Ok(None);
        };
        let tick = tick.with_timezone(&Utc);
        if tick <= last {
            Ok(None)
        } else if now - tick > DEADLINE {
            Err(tick)
        } else {
            Ok(Some(tick))
        }
    }

    /// The question the review of `tick` answers.
    pub fn ask(&self, tick: DateTime<Utc>) -> Ask {
        Ask {
            since: tick - self.period,
            until: tick,
            view: self.view,
            org: self.org.clone(),
            stale: self.stale,
        }
    }
}

/// `text`, cut at a line to at most `max` bytes, saying so.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').unwrap_or(end);
    format!(
        "{}\n\n… (cut here: the whole review is `disasterpiece review --from-cluster`)\n",
        &text[..end]
    )
}

/// The tick of the last review posted, as the record says.
async fn posted(client: &Client, namespace: &str) -> Result<Option<DateTime<Utc>>, kube::Error> {
    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_metadata_opt(RECORD)
        .await?;
    Ok(map
        .and_then(|m| m.metadata.annotations?.get(POSTED_FOR).cloned())
        .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| at.with_timezone(&Utc)))
}

async fn record(client: &Client, namespace: &str, tick: DateTime<Utc>) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": RECORD, "annotations": {POSTED_FOR: tick.to_rfc3339()}},
    });
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            RECORD,
            &PatchParams::apply("disasterpiece").force(),
            &Patch::Apply(patch),
        )
        .await
        .map(|_| ())
}

/// The review of `tick` in Markdown, from what the cluster keeps.
async fn build(
    client: &Client,
    namespace: Option<&str>,
    schedule: &Schedule,
    tick: DateTime<Utc>,
) -> Result<String, kube::Error> {
    let (summaries, _) = super::reports::list_summaries(client, namespace).await?;
    let sources: Vec<Source> = summaries
        .into_iter()
        .map(|report| Source {
            at: format!("report of {}", report.exercise),
            report,
        })
        .collect();
    let mut result = review::review(&sources, &schedule.ask(tick));
    match super::reports::workloads(client, namespace).await {
        Ok(workloads) => review::add_never_exercised(&mut result, &workloads),
        Err(e) => tracing::warn!("the review leaves out the workloads never exercised: {e}"),
    }
    Ok(cut(&review::markdown(&result), MAX_TEXT))
}

/// Posts the review at each tick of `schedule` while this replica leads, until dropped.
pub(super) async fn post_reviews(
    client: Client,
    namespace: Option<String>,
    record_namespace: String,
    schedule: Schedule,
    clock: Clock,
    poll: Duration,
    mut leads: watch::Receiver<bool>,
) {
    // Unknown until this replica leads: it reads the record then.
    let mut last: Option<DateTime<Utc>> = None;
    // A post that failed (the webhook down, the reports unreadable) is tried again from then
    // on, every 30 polls, until its tick is too old.
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        if !*leads.borrow_and_update() {
            last = None;
            if leads.changed().await.is_err() {
                return;
            }
            continue;
        }
        let now = clock.now();
        let last_posted = match last {
            Some(at) => at,
            None => match posted(&client, &record_namespace).await {
                // Never posted: from now on.
                Ok(found) => *last.insert(found.unwrap_or(now)),
                Err(e) => {
                    tracing::warn!("cannot read which weekly review was posted last: {e}");
                    tokio::time::sleep(poll.max(Duration::from_secs(5))).await;
                    continue;
                }
            },
        };
        match schedule.due(last_posted, now) {
            Ok(None) => {}
            Err(missed) => {
                tracing::warn!(tick = %missed, "the weekly review of this tick was not posted: found more than an hour late (was the controller down?)");
                last = Some(missed);
            }
            Ok(Some(tick)) => {
                // Another replica may have posted it since this one last looked.
                match posted(&client, &record_namespace).await {
                    Ok(Some(at)) if at >= tick => {
                        last = Some(at);
                        continue;
                    }
                    _ => {}
                }
                if retry_at.is_none_or(|at| tokio::time::Instant::now() >= at) {
                    if post_tick(&client, namespace.as_deref(), &record_namespace, &schedule, tick).await {
                        last = Some(tick);
                        retry_at = None;
                    } else {
                        retry_at = Some(tokio::time::Instant::now() + poll * 30);
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = leads.changed() => {}
        }
    }
}

/// Builds the review of `tick`, posts it, and records that it was posted; says in the log
/// what failed. Whether it was posted.
async fn post_tick(
    client: &Client,
    namespace: Option<&str>,
    record_namespace: &str,
    schedule: &Schedule,
    tick: DateTime<Utc>,
) -> bool {
    let text = match build(client, namespace, schedule, tick).await {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(error = %e, "the weekly review was not posted: cannot read the reports kept");
            return false;
        }
    };
    let details = serde_json::json!({
        "event": "weeklyReview",
        "since": (tick - schedule.period).to_rfc3339(),
        "until": tick.to_rfc3339(),
        "view": schedule.view,
    });
    // The operator chose the webhook: any host it names.
    let hosts = crate::probe::hosts::HostPolicy::any();
    if let Err(e) = super::notify::post(&hosts, &schedule.webhook, &text, details).await {
        tracing::warn!(error = %e, "the weekly review was not posted; it is tried again");
        return false;
    }
    tracing::info!(tick = %tick, "posted the weekly review");
    if let Err(e) = record(client, record_namespace, tick).await {
        tracing::warn!("posted the weekly review, but could not record it: {e}");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn schedule() -> Schedule {
        Schedule {
            cron: "0 9 * * MON".into(),
            time_zone: "Europe/Paris".into(),
            period: TimeDelta::days(7),
            view: View::Lead,
            org: Org::default(),
            stale: TimeDelta::days(90),
            webhook: "https://hooks.example.com/x".into(),
        }
    }

    #[test]
    fn a_review_is_due_once_per_tick_in_its_time_zone_and_not_when_found_too_late() {
        let s = schedule();
        // Monday 2026-12-07 09:00 in Paris is 08:00 UTC.
        let tick = utc("2026-12-07T08:00:00Z");
        assert_eq!(
            s.due(utc("2026-12-01T00:00:00Z"), utc("2026-12-07T07:59:00Z")),
            Ok(None)
        );
        assert_eq!(
            s.due(utc("2026-12-01T00:00:00Z"), utc("2026-12-07T08:00:30Z")),
            Ok(Some(tick))
        );
        assert_eq!(s.due(tick, utc("2026-12-07T08:10:00Z")), Ok(None), "posted once");
        assert_eq!(
            s.due(utc("2026-12-01T00:00:00Z"), utc("2026-12-07T09:30:00Z")),
            Err(tick)
        );
        let ask = s.ask(tick);
        assert_eq!((ask.since, ask.until), (utc("2026-11-30T08:00:00Z"), tick));
    }

    #[test]
    fn a_bad_schedule_says_which_field_and_how_to_fix_it() {
        let bad = |f: fn(&mut Schedule)| {
            let mut s = schedule();
            f(&mut s);
            s.check().expect_err("refused").to_string()
        };
        assert!(bad(|s| s.cron = "every monday".into()).contains("five fields"));
        assert!(bad(|s| s.time_zone = "Mars/Olympus".into()).contains("IANA"));
        assert!(bad(|s| s.webhook = "file:///etc/passwd".into()).contains("http or https"));
        assert!(bad(|s| s.period = TimeDelta::zero()).contains("longer than 0"));
        assert!(schedule().check().is_ok());
    }

    #[test]
    fn a_long_review_is_cut_at_a_line_and_says_where_to_read_it_whole() {
        let text = "é line\n".repeat(10_000);
        let cut = cut(&text, 1000);
        assert!(cut.len() < 1200 && cut.contains("cut here"), "{}", cut.len());
        assert!(cut.lines().take_while(|l| !l.is_empty()).all(|l| l == "é line"));
    }
}
