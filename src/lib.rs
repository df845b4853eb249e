//! Disasterpiece runs chaos exercises ("game days") against Kubernetes: every exercise starts
//! from a written hypothesis, injects a fault into a guarded blast radius, measures what
//! happened against what was expected, always reverts the fault, and writes a report.
//!
//! Data flows one way: scenario → plan → exercise → journal/observations → report.
//! What is built so far:
//! - [`scenario`]: the file formats (Scenario, GameDay) as types, and reading them with
//!   every problem reported at its line and column. Pure: no network, no cluster.
//! - [`target`]: which objects a fault may act on — `resolve` reads them (I/O), `guard`
//!   applies the blast radius (pure).
//! - [`sim`]: the embedded simulated cluster, a Kubernetes API server on 127.0.0.1.
//! - [`selector`]: Kubernetes label and field selector semantics, shared by both.
//! - [`fault`], [`probe`], [`engine`]: the faults, the probes, and plan/run/journal.
//! - [`report`]: the report document, its renderings and trends.
//! - [`controller`]: the custom resources of the in-cluster controller.
//! - [`cli`]: the command line; argument handling and printing only.
//! - [`clock`]: what time it is, passed in everywhere so tests pin it (the only reader of
//!   the wall clock).

#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod controller;
pub mod engine;
pub mod fault;
pub mod probe;
pub mod random;
pub mod report;
pub mod scenario;
pub mod selector;
pub mod sim;
pub mod target;
