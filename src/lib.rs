//! Disasterpiece runs chaos exercises ("game days") against Kubernetes: every exercise starts
//! from a written hypothesis, injects a fault into a guarded blast radius, measures what
//! happened against what was expected, always reverts the fault, and writes a report.
//!
//! Data flows one way: scenario → plan → exercise → journal/observations → report.
//! What is built so far:
//! - [`scenario`]: the file formats (Scenario, GameDay) as types, and reading them with
//!   every problem reported at its line and column. Pure: no network, no cluster.
//! - [`cli`]: the command line (`validate`, `schema`); argument handling and printing only.

#![forbid(unsafe_code)]

pub mod cli;
pub mod scenario;
pub mod sim;
