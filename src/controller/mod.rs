//! The in-cluster controller. `manager` runs it: the Lease, and one kube-runtime `Controller`
//! (watch and work queue) per kind, whose reconcilers are `exercise`, `gameday` and
//! `scenarios`. `crd` holds the Exercise resource and renders every CustomResourceDefinition
//! (Scenario and GameDay come from the file formats' own types: one model, two homes).

pub mod context;
pub mod crd;
pub mod error;
pub mod events;
pub mod exercise;
pub mod gameday;
pub mod learning;
pub mod lease;
pub mod manager;
pub mod metrics;
pub mod notify;
pub mod reports;
pub mod scenarios;
pub mod schedule;
pub mod weekly;

pub use context::Options;
pub use manager::control;
