//! The exercise engine. `plan` is the dry run (PURE: what was found → a verdict),
//! `preflight` gathers what a plan needs from the cluster (I/O, changes nothing).

pub mod journal;
pub mod plan;
pub mod preflight;
pub mod retry;
pub mod run;
