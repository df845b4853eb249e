//! The in-cluster controller's custom resources. `crd` holds the Exercise resource and
//! renders every CustomResourceDefinition (Scenario and GameDay come from the file formats'
//! own types: one model, two homes).

pub mod crd;
pub mod events;
pub mod exercise;
pub mod gameday;
pub mod lease;
pub mod metrics;
pub mod notify;
pub mod reports;
pub mod scenarios;
pub mod schedule;
