//! The embedded simulated cluster: a Kubernetes API and a Prometheus API on loopback.
//! It shares no code with the clients (`cluster`, `traffic`, `metrics`): a bug on both sides of
//! the wire would hide itself.

pub mod kube;
pub mod model;
