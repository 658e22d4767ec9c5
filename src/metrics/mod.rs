//! Prometheus: the HTTP client, the sampler task, and the ring buffers it fills.
//! Talks to Prometheus only; thresholds and decisions live in the engine and app.

pub mod prometheus;
pub mod sampler;
pub mod series;
pub mod units;

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
    /// One round: every query for every track (a failed query has a `None` point).
    Samples(Vec<Sample>),
    /// A round for which Prometheus could not be reached: no points, so the last good data
    /// stays on screen, but analysis counts it as missing data.
    Unanswered {
        at: std::time::SystemTime,
        error: String,
    },
    Health(Health),
}
