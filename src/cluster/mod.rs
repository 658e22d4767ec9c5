//! The Kubernetes side of the console: client from kubeconfig, watches, actions.
//! Converts API objects into `model` views; decisions stay in the app and engine.

pub mod actions;
pub mod client;
pub mod model;
pub mod watch;
