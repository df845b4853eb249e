//! When a GameDay runs, with the clock passed in. PURE: every function takes `now`.
//!
//! A run is due at each minute its cron matches in its time zone. A due run is skipped, with
//! the reason, while the GameDay is suspended, during quiet hours, or on a blackout date (both
//! read in the schedule's time zone). Stages run in order; a later stage only once every
//! Exercise of the earlier ones confirmed its hypothesis.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::report::model::Outcome;
use crate::scenario::gameday::{GameDaySpec, QuietHours, Weekday};

/// A run the schedule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at: DateTime<Utc>,
    /// Why it does not run, when it does not.
    pub skipped: Option<String>,
}

/// How late a run may start. One found later than this (the controller was down, or could
/// not reach the API server) is recorded as missed, not started: an exercise long after its
/// slot lands in an hour nobody planned for, perhaps with nobody watching.
pub const STARTING_DEADLINE: TimeDelta = TimeDelta::minutes(5);

/// Why a GameDay's schedule cannot be read (validation refuses both before it is stored).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone `{0}`")]
    TimeZone(String),
    #[error("`{cron}`: {reason}")]
    Cron { cron: String, reason: String },
}

/// Why the later stages of a run are skipped: stage `stage` did not confirm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage {stage} did not confirm its hypotheses ({why}): the later stages are skipped")]
pub struct Skipped {
    pub stage: String,
    pub why: String,
}

/// A five-field cron (minutes to weekdays; no seconds, no years), as GameDays and the weekly
/// review write them.
pub fn cron(text: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
}

/// The runs due after `last` (exclusive) up to `now` (inclusive), oldest first, at most
/// `limit`. Runs due more than [`STARTING_DEADLINE`] before `now` are not started: the latest
/// of them comes first, skipped as missed, and stands for all of them. Without a schedule,
/// none. `last` and `now` are the controller's own clock, never the API server's.
pub fn due(
    spec: &GameDaySpec,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Due>, ScheduleError> {
    let Some(schedule) = &spec.schedule else {
        return Ok(Vec::new());
    };
    let tz: Tz = schedule
        .time_zone
        .parse()
        .map_err(|_| ScheduleError::TimeZone(schedule.time_zone.clone()))?;
    let parsed = cron(&schedule.cron).map_err(|e| ScheduleError::Cron {
        cron: schedule.cron.clone(),
        reason: e.to_string(),
    })?;
    let mut runs = Vec::new();
    let mut cursor = last.with_timezone(&tz);
    let too_late = (now - STARTING_DEADLINE).with_timezone(&tz);
    if let Ok(missed) = parsed.find_previous_occurrence(&too_late, false)
        && missed > cursor
    {
        let at = missed.with_timezone(&Utc);
        runs.push(Due {
            at,
            skipped: Some(format!(
                "missed: due at {}, found {} later (a run starts at most {} late; was the controller down?)",
                local(at, &schedule.time_zone),
                whole_seconds(now - at),
                whole_seconds(STARTING_DEADLINE),
            )),
        });
        cursor = missed;
    }
    while runs.len() < limit {
        let Ok(next) = parsed.find_next_occurrence(&cursor, false) else {
            break;
        };
        let at = next.with_timezone(&Utc);
        if at > now {
            break;
        }
        runs.push(Due {
            at,
            skipped: blocked(spec, at),
        });
        cursor = next;
    }
    Ok(runs)
}

fn whole_seconds(d: TimeDelta) -> crate::scenario::Duration {
    std::time::Duration::from_secs(d.num_seconds().max(0) as u64).into()
}

/// Why no run may start at `at`: suspended, a blackout date, quiet hours.
pub fn blocked(spec: &GameDaySpec, at: DateTime<Utc>) -> Option<String> {
    if spec.suspend {
        return Some("the GameDay is suspended".into());
    }
    let tz: Tz = spec
        .schedule
        .as_ref()
        .and_then(|s| s.time_zone.parse().ok())
        .unwrap_or(Tz::UTC);
    let local = at.with_timezone(&tz);
    let date = local.date_naive();
    if let Some(day) = spec
        .blackout_dates
        .iter()
        .find(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok() == Some(date))
    {
        return Some(format!("{day} is a blackout date"));
    }
    spec.quiet_hours
        .iter()
        .find(|q| in_quiet_hours(q, local.time(), local.weekday()))
        .map(|q| format!("quiet hours {}–{} ({})", q.start, q.end, tz.name()))
}

fn weekday(day: chrono::Weekday) -> Weekday {
    match day {
        chrono::Weekday::Mon => Weekday::Mon,
        chrono::Weekday::Tue => Weekday::Tue,
        chrono::Weekday::Wed => Weekday::Wed,
        chrono::Weekday::Thu => Weekday::Thu,
        chrono::Weekday::Fri => Weekday::Fri,
        chrono::Weekday::Sat => Weekday::Sat,
        chrono::Weekday::Sun => Weekday::Sun,
    }
}

/// Whether `time` on `day` falls in the window. A window past midnight (22:00–06:00) belongs
/// to the day it starts on.
fn in_quiet_hours(q: &QuietHours, time: NaiveTime, day: chrono::Weekday) -> bool {
    let (Ok(start), Ok(end)) = (
        NaiveTime::parse_from_str(&q.start, "%H:%M"),
        NaiveTime::parse_from_str(&q.end, "%H:%M"),
    ) else {
        return false;
    };
    let applies = |d: chrono::Weekday| q.days.is_empty() || q.days.contains(&weekday(d));
    if start <= end {
        applies(day) && time >= start && time < end
    } else {
        (applies(day) && time >= start) || (applies(day.pred()) && time < end)
    }
}

/// What a stage's Exercises ended as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageState {
    /// Not all finished yet.
    Running,
    /// Every Exercise confirmed its hypothesis.
    Confirmed,
    /// At least one did not: the verdicts that stop the later stages.
    NotConfirmed(String),
}

impl StageState {
    /// How a started stage stands, from each of its exercises (name, and its outcome once it
    /// ended): the CLI's `gameday run` and the controller's GameDays judge a stage by this
    /// alone. PURE.
    pub fn of<'a>(exercises: impl IntoIterator<Item = (&'a str, Option<Outcome>)>) -> StageState {
        let mut any = false;
        let mut not = Vec::new();
        for (name, outcome) in exercises {
            any = true;
            match outcome {
                None => return StageState::Running,
                Some(Outcome::Confirmed) => {}
                Some(other) => not.push(format!("{name}: {}", super::crd::Verdict::from(other).as_str())),
            }
        }
        match (any, not.is_empty()) {
            (false, _) => StageState::Running,
            (true, true) => StageState::Confirmed,
            (true, false) => StageState::NotConfirmed(not.join(", ")),
        }
    }
}

/// What to do next in a run: the index of the stage to start, `Ok(None)` when every stage is
/// done or one is still running, or why the later stages are skipped.
pub fn next_stage(states: &[StageState], stages: usize, names: &[String]) -> Result<Option<usize>, Skipped> {
    for (i, state) in states.iter().enumerate() {
        match state {
            StageState::Running => return Ok(None),
            StageState::Confirmed => {}
            StageState::NotConfirmed(why) => {
                return Err(Skipped {
                    stage: names.get(i).map_or("?", String::as_str).to_owned(),
                    why: why.clone(),
                });
            }
        }
    }
    Ok((states.len() < stages).then_some(states.len()))
}

/// `now` in a time zone, for messages.
pub fn local(at: DateTime<Utc>, tz: &str) -> String {
    match tz.parse::<Tz>() {
        Ok(tz) => tz
            .from_utc_datetime(&at.naive_utc())
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gameday(extra: &str) -> GameDaySpec {
        let text = format!(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: GameDay
metadata: {{name: checkout}}
spec:
  host: {{name: Alice}}
  schedule: {{cron: '0 14 * * WED', timeZone: Europe/Berlin}}
  stages:
    - {{name: dev, namespaces: [shop-dev], scenarios: [{{name: checkout-pod-loss}}]}}
    - {{name: prod, namespaces: [shop], scenarios: [{{name: checkout-pod-loss}}]}}
{extra}"
        );
        match crate::scenario::load(&text, &|_| true).resources.remove(0).1 {
            crate::scenario::Resource::GameDay(g) => g.spec,
            other => panic!("{other:?}"),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn a_run_is_due_at_the_cron_minute_in_its_time_zone() {
        let spec = gameday("");
        // Wednesday 2026-11-25, 14:00 in Berlin (CET, UTC+1) is 13:00 UTC.
        let last = utc("2026-11-22T00:00:00Z");
        assert!(
            due(&spec, last, utc("2026-11-25T12:59:59Z"), 10)
                .expect("due")
                .is_empty()
        );
        let runs = due(&spec, last, utc("2026-11-25T13:00:00Z"), 10).expect("due");
        assert_eq!(
            runs,
            [Due {
                at: utc("2026-11-25T13:00:00Z"),
                skipped: None
            }]
        );
        // In summer (CEST, UTC+2) the same 14:00 is 12:00 UTC.
        let summer = due(&spec, utc("2026-07-01T00:00:00Z"), utc("2026-07-01T12:00:00Z"), 10).expect("due");
        assert_eq!(summer[0].at, utc("2026-07-01T12:00:00Z"));
    }

    #[test]
    fn runs_found_past_the_starting_deadline_are_missed_once_not_started() {
        let spec = gameday("");
        let last = utc("2026-11-22T00:00:00Z");
        // Four minutes late still starts; five minutes and a second late does not.
        let late = due(&spec, last, utc("2026-11-25T13:04:00Z"), 10).expect("due");
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].skipped, None);
        let missed = due(&spec, last, utc("2026-11-25T13:05:01Z"), 10).expect("due");
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].at, utc("2026-11-25T13:00:00Z"));
        assert_eq!(
            missed[0].skipped.as_deref(),
            Some(
                "missed: due at 2026-11-25 14:00 CET, found 5m1s later (a run starts at most 5m late; was the controller down?)"
            )
        );
        // A controller down for five weeks: one missed record for all of them (the latest),
        // then the run due now starts.
        let runs = due(&spec, last, utc("2026-12-30T13:00:00Z"), 10).expect("due");
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(runs[0].at, utc("2026-12-23T13:00:00Z"));
        assert!(runs[0].skipped.as_deref().is_some_and(|s| s.starts_with("missed: ")));
        assert_eq!(
            runs[1],
            Due {
                at: utc("2026-12-30T13:00:00Z"),
                skipped: None
            }
        );
        // Recorded, the missed run is not found again.
        assert_eq!(
            due(&spec, runs[1].at, utc("2026-12-30T13:00:30Z"), 10).expect("due"),
            []
        );
    }

    #[test]
    fn quiet_hours_blackout_dates_and_suspend_skip_a_run_with_the_reason() {
        let spec = gameday("  quietHours: [{start: '13:30', end: '15:00', days: [wed]}]\n");
        let runs = due(&spec, utc("2026-11-22T00:00:00Z"), utc("2026-11-25T13:00:00Z"), 10).expect("due");
        assert_eq!(
            runs[0].skipped.as_deref(),
            Some("quiet hours 13:30–15:00 (Europe/Berlin)")
        );
        // Past midnight: 22:00–06:00 on Tuesday covers Wednesday 05:00.
        let night = gameday("  quietHours: [{start: '22:00', end: '06:00', days: [tue]}]\n");
        assert!(
            blocked(&night, utc("2026-11-25T04:00:00Z")).is_some(),
            "Wed 05:00 Berlin"
        );
        assert!(
            blocked(&night, utc("2026-11-26T04:00:00Z")).is_none(),
            "Thu 05:00 Berlin"
        );
        let blackout = gameday("  blackoutDates: ['2026-11-25']\n");
        assert_eq!(
            blocked(&blackout, utc("2026-11-25T13:00:00Z")).as_deref(),
            Some("2026-11-25 is a blackout date")
        );
        // 23:30 UTC on the 24th is already the 25th in Berlin.
        assert!(blocked(&blackout, utc("2026-11-24T23:30:00Z")).is_some());
        let suspended = gameday("  suspend: true\n");
        assert_eq!(
            blocked(&suspended, utc("2026-11-25T13:00:00Z")).as_deref(),
            Some("the GameDay is suspended")
        );
    }

    #[test]
    fn a_later_stage_runs_only_after_the_earlier_ones_confirmed() {
        let names = vec!["dev".to_owned(), "prod".to_owned()];
        assert_eq!(next_stage(&[], 2, &names), Ok(Some(0)));
        assert_eq!(next_stage(&[StageState::Running], 2, &names), Ok(None));
        assert_eq!(next_stage(&[StageState::Confirmed], 2, &names), Ok(Some(1)));
        assert_eq!(
            next_stage(&[StageState::Confirmed, StageState::Confirmed], 2, &names),
            Ok(None)
        );
        let stopped = next_stage(
            &[StageState::NotConfirmed("checkout-pod-loss: Refuted".into())],
            2,
            &names,
        );
        assert_eq!(
            stopped.map_err(|e| e.to_string()),
            Err(
                "stage dev did not confirm its hypotheses (checkout-pod-loss: Refuted): the later stages are skipped"
                    .into()
            )
        );
    }

    #[test]
    fn a_stage_stands_confirmed_only_when_every_exercise_ended_confirmed() {
        use Outcome::{Aborted, Confirmed, Refuted};
        assert_eq!(StageState::of([]), StageState::Running);
        assert_eq!(
            StageState::of([("a", Some(Confirmed)), ("b", None)]),
            StageState::Running
        );
        assert_eq!(
            StageState::of([("a", Some(Confirmed)), ("b", Some(Confirmed))]),
            StageState::Confirmed
        );
        assert_eq!(
            StageState::of([("a", Some(Refuted)), ("b", Some(Confirmed)), ("c", Some(Aborted))]),
            StageState::NotConfirmed("a: Refuted, c: Aborted".into())
        );
    }
}
