//! warroom: a terminal console for running Kubernetes deployments live.
#![deny(clippy::unwrap_used)]

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod exec;
pub mod health;
pub mod journal;
pub mod lease;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod panics;
pub mod plan;
pub mod preflight;
pub mod rehearse;
pub mod report;
pub mod sim;
pub mod traffic;
pub mod ui;
