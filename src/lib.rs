//! warroom: a terminal console for running Kubernetes deployments live.
#![deny(clippy::unwrap_used)]

pub mod engine;
pub mod plan;
pub mod sim;
