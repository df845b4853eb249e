//! The exercise engine. `plan` is the dry run (PURE: what was found → a verdict),
//! `preflight` gathers what a plan needs from the cluster (I/O, changes nothing); `run` takes an
//! exercise through its phases, saying what happens as typed `event`s; `revert` is the one
//! path that puts faults back (for `run`, `recover` and a controller's takeover); `abort` is
//! the Andon cord; `beyond` watches past the targets (the observed blast radius) and pulls the
//! cord on unanticipated impact.

pub mod abort;
pub mod beyond;
pub mod event;
pub mod journal;
pub mod plan;
pub mod preflight;
pub mod recovery;
pub mod retry;
pub mod revert;
pub mod run;
