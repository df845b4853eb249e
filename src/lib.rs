//! Disasterpiece runs chaos exercises ("game days") against Kubernetes: every exercise starts
//! from a written hypothesis, injects a fault into a guarded blast radius, measures what
//! happened against what was expected, always reverts the fault, and writes a report.
//!
//! Data flows one way: scenario → plan → exercise → journal/observations → report.
//! What is built so far:
//! - [`scenario`]: the file formats (Scenario, GameDay) as types, and reading them with
//!   every problem reported at its line and column. Pure: no network, no cluster.
//! - [`api`]: what the API server said, for people (below every module that asks it).
//! - [`blast_radius`]: which objects a fault may act on — `resolve` reads the candidates
//!   (I/O), `guard` chooses among them within the blast radius (pure).
//! - [`selector`]: Kubernetes label and field selector semantics, shared with the simulated
//!   cluster (the `disasterpiece-sim` crate) through `disasterpiece-common`.
//! - [`fault`], [`probe`], [`engine`]: the faults, the probes, and plan/run/journal.
//! - [`report`]: the report document, its renderings and trends.
//! - [`controller`]: the custom resources of the in-cluster controller.
//! - [`clock`]: what time it is, passed in everywhere so tests pin it (the only reader of
//!   the wall clock).

#![forbid(unsafe_code)]

pub mod api;
pub mod blast_radius;
pub mod controller;
pub mod engine;
pub mod fault;
pub mod probe;
pub mod report;
pub mod scenario;

pub use disasterpiece_common::{clock, random, selector};
