//! What time it is. The one place that reads the wall clock: everything else that stamps a
//! time or decides by one (the engine, probes, reports, the controller, GameDay schedules, the
//! simulator's world) is handed a [`Clock`], so tests pin it, move it, or skew one party's
//! clock against another's.
//!
//! Waiting is not this module's business: sleeps and timeouts use tokio's monotonic time,
//! which no wall-clock step (NTP, a VM resumed, `faketime`) can stretch or cut short.
//!
//! Caveat: clocks of different machines disagree (minutes of skew are common). A decision
//! must never compare a time one party wrote with another party's clock; see
//! `controller::gameday` for how schedules avoid it.

use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current time; cheap to clone and share.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The machine's clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Utc::now))
    }

    /// Always `at`.
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock(Arc::new(move || at))
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }

    /// This clock, `skew` ahead of itself (behind when negative): another machine's clock.
    pub fn skewed(&self, skew: TimeDelta) -> Clock {
        let inner = self.clone();
        Clock(Arc::new(move || inner.now() + skew))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.now().to_rfc3339())
    }
}

/// A clock that stands still until it is set or advanced: for tests, and for anyone who
/// replays a schedule.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    /// A [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        let at = self.0.clone();
        Clock(Arc::new(move || *at.lock().unwrap_or_else(|e| e.into_inner())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_reader_sees_it() {
        let hand = ManualClock::new(at("2030-01-01T00:00:00Z"));
        let clock = hand.clock();
        let copy = clock.clone();
        assert_eq!(clock.now(), at("2030-01-01T00:00:00Z"));
        hand.advance(TimeDelta::minutes(90));
        assert_eq!(copy.now(), at("2030-01-01T01:30:00Z"));
        hand.set(at("2029-12-31T23:59:00Z"));
        assert_eq!(clock.now(), at("2029-12-31T23:59:00Z"));
    }

    #[test]
    fn a_skewed_clock_follows_its_base_at_a_fixed_distance() {
        let hand = ManualClock::new(at("2030-01-01T00:00:00Z"));
        let ahead = hand.clock().skewed(TimeDelta::minutes(10));
        let behind = hand.clock().skewed(TimeDelta::minutes(-10));
        assert_eq!(ahead.now(), at("2030-01-01T00:10:00Z"));
        assert_eq!(behind.now(), at("2029-12-31T23:50:00Z"));
        hand.advance(TimeDelta::seconds(30));
        assert_eq!(ahead.now() - behind.now(), TimeDelta::minutes(20));
        assert_eq!(
            Clock::fixed(at("2030-01-01T00:00:00Z")).now(),
            at("2030-01-01T00:00:00Z")
        );
    }
}
