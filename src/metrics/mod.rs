//! Prometheus: the HTTP client, the sampler task, and the ring buffers it fills.
//! Talks to Prometheus only; thresholds and decisions live in the engine and app.

pub mod prometheus;
pub mod sampler;
pub mod series;

use crate::health::Health;
use crate::plan::TrackName;

/// One sampled value of one metric for one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: String,
    pub track: TrackName,
    pub point: series::Point,
}

/// What the sampler reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsEvent {
    Samples(Vec<Sample>),
    Health(Health),
}
