//! What to do with an Exercise, decided from what was seen of it. PURE: every decision of the
//! Exercise reconciler is here; `reconcile` gathers what this needs, asks, and takes the one
//! step it is told.

use super::super::crd::Phase;

/// What the reconciler saw of one Exercise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// This replica holds the Lease (or runs alone): only then does it act.
    pub leads: bool,
    /// Running here; `Some(true)` once its cord was pulled.
    pub here: Option<bool>,
    /// The phase the watch showed.
    pub phase: Option<Phase>,
    pub deleting: bool,
    pub has_finalizer: bool,
    /// The value of its own abort annotation, if it has one.
    pub annotated: Option<String>,
    /// Why its namespace's or its GameDay's kill switch says stop (read only for one running
    /// here).
    pub switch: Option<String>,
    /// The Exercise as read again from the API server, where the watch's copy may be older
    /// than what this controller has just written: before it is taken over or started.
    pub fresh: Option<Fresh>,
}

/// An Exercise read again.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fresh {
    pub phase: Option<Phase>,
    pub deleting: bool,
}

/// The one step to take.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing, until the Exercise changes.
    Wait,
    /// Running here: look again at the next poll.
    Watch,
    /// Running here: pull its cord for this reason, and look again at the next poll.
    Signal(String),
    /// Deleted, and not running here: nothing of it can be in place; remove the finalizer.
    LetGo,
    /// Read the Exercise again before deciding (see [`Seen::fresh`]).
    ReadAgain,
    /// Found Running, started by a controller that is gone: revert its journal and end it
    /// aborted. Its observations died with that controller, so resuming would judge the
    /// hypothesis on half the samples, and running it again would inject twice.
    TakeOver,
    /// New: start it.
    Start,
}

/// Why an Exercise running here must stop, if it must: deletion first, then its own
/// annotation, then its namespace's or GameDay's kill switch.
pub fn abort_reason(seen: &Seen) -> Option<String> {
    if seen.deleting {
        Some("the Exercise was deleted".to_owned())
    } else if let Some(reason) = &seen.annotated {
        Some(format!(
            "annotation {}: {reason}",
            crate::engine::abort::ABORT_ANNOTATION
        ))
    } else {
        seen.switch.clone()
    }
}

/// The step for what was seen.
pub fn decide(seen: &Seen) -> Step {
    if !seen.leads {
        return Step::Wait;
    }
    if let Some(signalled) = seen.here {
        return match abort_reason(seen) {
            Some(reason) if !signalled => Step::Signal(reason),
            _ => Step::Watch,
        };
    }
    if seen.deleting {
        return if seen.has_finalizer { Step::LetGo } else { Step::Wait };
    }
    if matches!(seen.phase, Some(Phase::Finished | Phase::Refused)) {
        return Step::Wait;
    }
    let Some(fresh) = seen.fresh else {
        return Step::ReadAgain;
    };
    match (seen.phase, fresh.phase) {
        (Some(Phase::Running), Some(Phase::Running)) => Step::TakeOver,
        (Some(Phase::Running), _) => Step::Wait,
        (_, None | Some(Phase::Pending)) if !fresh.deleting => Step::Start,
        _ => Step::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification: every combination that leads to a different step.
    #[test]
    fn each_combination_of_what_was_seen_takes_its_one_step() {
        use Phase::{Finished, Pending, Refused, Running};
        fn fresh(phase: Option<Phase>, deleting: bool) -> Option<Fresh> {
            Some(Fresh { phase, deleting })
        }
        let base = Seen {
            leads: true,
            ..Seen::default()
        };
        let s = |f: fn(&mut Seen)| {
            let mut seen = base.clone();
            f(&mut seen);
            seen
        };
        let signal = |r: &str| Step::Signal(r.to_owned());
        #[rustfmt::skip]
        let table: Vec<(&str, Seen, Step)> = vec![
            ("a standby does nothing", s(|x| { x.leads = false; x.here = Some(false); x.deleting = true }), Step::Wait),
            ("running here, nothing asked", s(|x| x.here = Some(false)), Step::Watch),
            ("running here, deleted", s(|x| { x.here = Some(false); x.deleting = true; x.annotated = Some("a".into()) }), signal("the Exercise was deleted")),
            ("running here, annotated", s(|x| { x.here = Some(false); x.annotated = Some("stop".into()); x.switch = Some("ns".into()) }), signal("annotation disasterpiece.dev/abort: stop")),
            ("running here, a kill switch", s(|x| { x.here = Some(false); x.switch = Some("namespace shop is annotated".into()) }), signal("namespace shop is annotated")),
            ("running here, already signalled", s(|x| { x.here = Some(true); x.deleting = true }), Step::Watch),
            ("deleted, not here, finalizer", s(|x| { x.deleting = true; x.has_finalizer = true; x.phase = Some(Running) }), Step::LetGo),
            ("deleted, not here, no finalizer", s(|x| x.deleting = true), Step::Wait),
            ("finished", s(|x| x.phase = Some(Finished)), Step::Wait),
            ("refused", s(|x| x.phase = Some(Refused)), Step::Wait),
            ("running elsewhere, not read again", s(|x| x.phase = Some(Running)), Step::ReadAgain),
            ("running elsewhere, still running", s(|x| { x.phase = Some(Running); x.fresh = fresh(Some(Running), false) }), Step::TakeOver),
            ("running elsewhere, finished since", s(|x| { x.phase = Some(Running); x.fresh = fresh(Some(Finished), false) }), Step::Wait),
            ("new, not read again", s(|x| x.phase = None), Step::ReadAgain),
            ("pending, not read again", s(|x| x.phase = Some(Pending)), Step::ReadAgain),
            ("new, still new", s(|x| x.fresh = fresh(None, false)), Step::Start),
            ("pending, still pending", s(|x| { x.phase = Some(Pending); x.fresh = fresh(Some(Pending), false) }), Step::Start),
            ("new, started since", s(|x| x.fresh = fresh(Some(Running), false)), Step::Wait),
            ("new, finished since", s(|x| x.fresh = fresh(Some(Finished), false)), Step::Wait),
            ("new, deleted since", s(|x| x.fresh = fresh(None, true)), Step::Wait),
        ];
        for (case, seen, step) in table {
            assert_eq!(decide(&seen), step, "{case}: {seen:?}");
        }
    }
}
