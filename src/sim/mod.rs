//! The embedded simulated cluster: a Kubernetes API and a Prometheus API on loopback.
//! It shares no code with the clients (`cluster`, `traffic`, `metrics`): a bug on both sides of
//! the wire would hide itself.

pub mod exposition;
pub mod faults;
pub mod kube;
pub mod kubeconfig;
pub mod model;
pub mod prom_api;
pub mod promql;
pub mod server;
pub mod traffic;
pub mod tsdb;

pub use server::Simulator;
