//! What Disasterpiece and its simulated cluster share: Kubernetes' label and field selector
//! semantics and name rules, the duration syntax of scenario files and fault containers, the
//! clock (the only reader of the wall clock), random seeds, and Kubernetes' `$(VAR)`
//! expansion. Small and pure, so the product and the simulator agree without either depending
//! on the other.

#![forbid(unsafe_code)]

pub mod clock;
pub mod duration;
pub mod expansion;
pub mod names;
pub mod random;
pub mod selector;
