//! Traffic routers: read and set the canary weight on whatever object splits the traffic.
//! One file per router, plus what they share (`object`); nothing here draws or decides, it only
//! talks to the API.

pub mod follow;
pub mod gateway_api;
pub mod istio;
pub mod nginx;
pub mod object;
pub mod replicas;
pub mod smi;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::health::Health;
use crate::plan::Weight;

/// What the traffic watch reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TrafficEvent {
    Weight(Weight),
    Health(Health),
}

/// Why a router call failed, worded for the person at the keys.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    Api(String),
    /// The object changed between our read and our write; reading again and retrying is safe.
    #[error("{0}")]
    Conflict(String),
    /// The API server refused our credentials or permissions (401/403): retrying will not help
    /// until someone fixes access.
    #[error("{0}")]
    Refused(String),
    #[error("{object} is malformed: {why}")]
    Malformed { object: String, why: String },
}

/// Reads and sets the canary weight (percent of requests to the canary backend).
pub trait TrafficRouter: Send + Sync {
    /// Human name of the traffic object, e.g. `HTTPRoute shop/checkout`.
    fn describe(&self) -> String;
    /// Current canary weight.
    fn weight(&self) -> BoxFuture<'_, Result<Weight, RouterError>>;
    /// Sets the canary weight (stable gets the rest) in one write; setting the current weight
    /// again is harmless.
    fn set_weight(&self, weight: Weight) -> BoxFuture<'_, Result<(), RouterError>>;
    /// Weight changes as they happen, from a watch; errors are reported, the stream goes on.
    fn watch(&self) -> BoxStream<'static, Result<Weight, RouterError>>;
}

/// The API type `router` keeps the weight in; `None` for the replicas router, whose "object"
/// is the two Deployments.
pub fn object_kind(router: crate::plan::Router) -> Option<object::ObjectKind> {
    use crate::plan::Router;
    match router {
        Router::Replicas => None,
        Router::GatewayApi => Some(gateway_api::OBJECT),
        Router::Istio => Some(istio::OBJECT),
        Router::Nginx => Some(nginx::OBJECT),
        Router::Smi => Some(smi::OBJECT),
    }
}
