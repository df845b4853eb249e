//! The expectations as the exercise judges them, one sample at a time. PURE: samples in,
//! verdicts out.
//!
//! A `within` clause is judged only while the faults are in place (a sample taken after the
//! revert proves nothing about them) and fails when its time runs out; a `throughout` clause is
//! sampled over the whole window, even after a failure (availability counts every sample); an
//! after-recovery clause is sampled after the revert. A clause the exercise could not finish
//! judging (an abort, a revert before its `within` ended) is inconclusive, with why.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::time::Instant;

use crate::engine::event::ClauseState;
use crate::probe::{Sample, Verdict};
use crate::report::model::{ClauseVerdict, ExpectationResult, HISTORY_CAP, Observation};
use crate::scenario::model::Timing;

pub(super) struct Clause {
    pub name: String,
    pub timing: Timing,
    /// A prometheus probe's `for`: it must pass this long without a break to count as held.
    pub hold_for: Option<Duration>,
    passing_since: Option<DateTime<Utc>>,
    expected: String,
    pub first_held: Option<DateTime<Utc>>,
    pub failed: Option<Sample>,
    pub last: Option<Sample>,
    samples: u32,
    pub conclusive: u32,
    probe: String,
    history: Vec<Observation>,
    /// Why it can no longer be judged (a `within` still open when the faults were reverted).
    pub cut_short: Option<String>,
}

/// What changed for a clause with one sample.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Change {
    None,
    Held,
    Failed,
}

impl Clause {
    pub fn new(name: String, timing: Timing, hold_for: Option<Duration>, probe: String) -> Clause {
        Clause {
            name,
            timing,
            hold_for,
            passing_since: None,
            expected: match timing {
                Timing::Within(d) => format!("within {d}"),
                Timing::Throughout => "throughout the fault".into(),
                Timing::AfterRecovery => "after recovery".into(),
            },
            first_held: None,
            failed: None,
            last: None,
            samples: 0,
            conclusive: 0,
            probe,
            history: Vec::new(),
            cut_short: None,
        }
    }

    pub fn state(&self) -> ClauseState {
        match (&self.first_held, &self.failed, self.timing) {
            (_, Some(_), _) => ClauseState::Failed,
            (Some(_), None, _) => ClauseState::Held,
            (None, None, Timing::Throughout) if self.conclusive > 0 => ClauseState::Holding,
            (None, None, _) => ClauseState::Pending,
        }
    }

    pub fn result(&self) -> ExpectationResult {
        let verdict = match (&self.first_held, &self.failed, self.timing) {
            (None, None, _) if self.cut_short.is_some() => ClauseVerdict::Inconclusive,
            (_, Some(_), _) => ClauseVerdict::Refuted,
            (Some(_), None, _) => ClauseVerdict::Confirmed,
            (None, None, Timing::Throughout) if self.conclusive > 0 && self.conclusive == self.samples => {
                ClauseVerdict::Confirmed
            }
            (None, None, _) if self.conclusive > 0 => ClauseVerdict::Refuted,
            _ => ClauseVerdict::Inconclusive,
        };
        let decisive = self.failed.as_ref().or(self.last.as_ref());
        ExpectationResult {
            name: self.name.clone(),
            expected: self.expected.clone(),
            verdict,
            first_held: self.first_held,
            observed: match (&self.cut_short, decisive) {
                (Some(why), _) if self.first_held.is_none() && self.failed.is_none() => why.clone(),
                (_, Some(s)) => s.observed.clone(),
                (_, None) => "not sampled".to_owned(),
            },
            samples: self.samples,
            probe: self.probe.clone(),
            history: self.history.clone(),
        }
    }

    /// Takes one sample into account.
    pub fn record(&mut self, sample: Sample) -> Change {
        let (was_held, was_failed) = (self.first_held.is_some(), self.failed.is_some());
        self.samples += 1;
        if self.history.len() >= HISTORY_CAP {
            // Keep the first sample; drop the oldest after it.
            self.history.remove(1);
        }
        self.history.push(Observation {
            at: sample.at,
            verdict: match sample.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::Inconclusive => "inconclusive",
            }
            .into(),
            observed: sample.observed.clone(),
            latency_ms: sample.latency_ms,
        });
        if sample.verdict != Verdict::Inconclusive {
            self.conclusive += 1;
        }
        // With `for`, a pass counts once the passes have lasted that long without a break.
        let since = if sample.verdict == Verdict::Pass {
            *self.passing_since.get_or_insert(sample.at)
        } else {
            sample.at
        };
        if sample.verdict != Verdict::Pass {
            self.passing_since = None;
        }
        let long_enough = self
            .hold_for
            .is_none_or(|d| (sample.at - since).to_std().unwrap_or_default() >= d);
        match (self.timing, sample.verdict) {
            (Timing::Throughout, Verdict::Fail) if self.failed.is_none() => self.failed = Some(sample.clone()),
            (Timing::Within(_) | Timing::AfterRecovery, Verdict::Pass) if self.first_held.is_none() && long_enough => {
                self.first_held = Some(sample.at)
            }
            _ => {}
        }
        self.last = Some(sample);
        match (was_held, self.first_held.is_some(), was_failed, self.failed.is_some()) {
            (false, true, _, _) => Change::Held,
            (_, _, false, true) => Change::Failed,
            _ => Change::None,
        }
    }

    /// Still worth sampling now?
    pub fn open(&self, injected: Instant, now: Instant, recovering: bool) -> bool {
        match self.timing {
            // Only while the faults are in place: a sample after the revert proves nothing.
            Timing::Within(d) => {
                !recovering && self.cut_short.is_none() && self.first_held.is_none() && now <= injected + d.as_std()
            }
            // Sampled over the whole window even after a failure: availability counts every
            // sample of the fault window, not those until the first failure.
            Timing::Throughout => !recovering,
            Timing::AfterRecovery => recovering && self.first_held.is_none(),
        }
    }

    /// A `within` clause whose time ran out without holding fails on its last conclusive
    /// sample; returns that sample's words when it does.
    pub fn expire(&mut self, injected: Instant, now: Instant) -> Option<String> {
        let Timing::Within(d) = self.timing else { return None };
        if self.first_held.is_some()
            || self.failed.is_some()
            || self.cut_short.is_some()
            || now <= injected + d.as_std()
            || self.conclusive == 0
        {
            return None;
        }
        let last = self.last.clone()?;
        let observed = last.observed.clone();
        self.failed = Some(last);
        Some(observed)
    }

    /// An abort `at` seconds into the window: a clause not decided yet cannot be said to have
    /// held (a `within` that held did hold).
    pub fn cut_by_abort(&mut self, at: f64, reason: &str) {
        let unfinished = match self.timing {
            Timing::Within(_) | Timing::AfterRecovery => self.first_held.is_none() && self.failed.is_none(),
            Timing::Throughout => self.failed.is_none(),
        };
        if unfinished {
            self.cut_short = Some(format!(
                "aborted {at:.1}s into the window ({reason}) before it could be judged"
            ));
        }
    }

    /// The faults are reverted `left` before this `within` clause's time ended, and it had
    /// not held: samples taken after would not be about the fault.
    pub fn cut_by_revert(&mut self, injected: Instant, reverted: Instant) {
        if let Timing::Within(d) = self.timing
            && self.first_held.is_none()
            && self.failed.is_none()
        {
            let left = (injected + d.as_std()).saturating_duration_since(reverted);
            self.cut_short = Some(format!(
                "the fault was reverted {:.1}s before its `within {d}` ended, and it had not held",
                left.as_secs_f64()
            ));
        }
    }
}
