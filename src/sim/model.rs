//! Types shared between the simulator's Kubernetes side and its traffic/metrics side.
//! The Kubernetes side publishes a [`TrafficSnapshot`]; the request generator reads it.

/// Everything the request generator needs to know about the cluster, recomputed by the
/// Kubernetes side whenever pods, services or traffic objects change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficSnapshot {
    pub services: Vec<ServiceTraffic>,
}

/// One application (pods sharing an `app` label) and how its traffic is split.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTraffic {
    pub namespace: String,
    /// Value of the pods' `app` label; becomes the `service` label of every series.
    pub service: String,
    pub tracks: Vec<TrackTraffic>,
}

/// One track (`stable`, `canary`, …) of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackTraffic {
    /// Value of the pods' `track` label.
    pub track: String,
    /// Image tag of the track's pods (`2.4.0`); selects the error/latency profile.
    pub version: String,
    /// Relative share of requests (HTTPRoute backendRef, VirtualService destination, nginx
    /// canary Ingress or TrafficSplit backend weight, or ready replica count when no traffic
    /// object routes this service). Shares need not sum to 100.
    pub weight: u32,
    /// Names of the track's Ready pods, which receive the track's requests evenly.
    pub ready_pods: Vec<String>,
    /// CPU limit of one pod in cores.
    pub cpu_limit_cores: f64,
}
