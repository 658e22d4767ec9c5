//! The sampler task: every `metrics.interval`, each query for each track, sent as one batch.
//! Owns the Prometheus client; keeps no history (the app's ring buffers do).

use std::time::{Duration, SystemTime};

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use super::prometheus::{PromClient, PromError};
use super::series::Point;
use super::{MetricsEvent, Sample};
use crate::health::Health;
use crate::plan::template::{expand, query_vars};
use crate::plan::{TrackName, duration::format_duration};

/// One query to sample, already expanded for one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub metric: String,
    pub track: TrackName,
    pub promql: String,
}

/// Expands every query of the plan for every track.
pub fn probes(
    queries: &indexmap::IndexMap<String, String>,
    namespace: &str,
    service: &str,
    rate: Duration,
    tracks: &[TrackName],
) -> Result<Vec<Probe>, String> {
    let rate = format_duration(rate);
    let mut out = Vec::new();
    for (metric, template) in queries {
        for track in tracks {
            let vars = query_vars(namespace, service, track.as_str(), &rate);
            let promql =
                expand(template, &vars).map_err(|e| format!("metrics.queries.{metric}: {e}"))?;
            out.push(Probe {
                metric: metric.clone(),
                track: *track,
                promql,
            });
        }
    }
    Ok(out)
}

/// Samples until cancelled. A failing query reports "no data" for its point and the error as
/// health, so a gap is visible instead of a made-up zero.
pub async fn run(
    client: PromClient,
    probes: Vec<Probe>,
    interval: Duration,
    sink: impl Fn(MetricsEvent) + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut health = Health::Connecting;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = cancel.cancelled() => return,
        }
        let at = SystemTime::now();
        let answers = join_all(
            probes
                .iter()
                .map(|p| client.query_scalar(&p.promql, Some(at))),
        )
        .await;
        let mut first_error: Option<(String, PromError)> = None;
        let samples = probes
            .iter()
            .zip(answers)
            .map(|(probe, answer)| {
                let value = match answer {
                    Ok(v) => v,
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some((probe.metric.clone(), e));
                        }
                        None
                    }
                };
                Sample {
                    metric: probe.metric.clone(),
                    track: probe.track,
                    point: Point { at, value },
                }
            })
            .collect();
        let unreachable = first_error
            .as_ref()
            .is_some_and(|(_, e)| e.is_unreachable());
        // An unreachable server gives no points at all: the last good data stays on screen.
        if unreachable {
            if let Some((_, e)) = &first_error {
                sink(MetricsEvent::Unanswered {
                    at,
                    error: e.to_string(),
                });
            }
        } else {
            sink(MetricsEvent::Samples(samples));
        }
        let next = match first_error {
            None => Health::Live,
            Some((_, e @ PromError::Forbidden { .. })) => Health::Forbidden(e.to_string()),
            Some((_, e)) if e.is_unreachable() => health.then(Health::Degraded {
                since: at,
                error: e.to_string(),
            }),
            Some((metric, e)) => health.then(Health::Degraded {
                since: at,
                error: format!("{metric}: {e}"),
            }),
        };
        if next != health {
            health = next.clone();
            sink(MetricsEvent::Health(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_expand_each_query_for_each_track() {
        let mut q = indexmap::IndexMap::new();
        q.insert(
            "error_rate".to_string(),
            "x{ns=\"{{namespace}}\",s=\"{{service}}\",t=\"{{track}}\"}[{{rate}}]".to_string(),
        );
        let p = probes(
            &q,
            "shop",
            "checkout",
            Duration::from_secs(30),
            &TrackName::BOTH,
        )
        .expect("expands");
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[1].promql,
            "x{ns=\"shop\",s=\"checkout\",t=\"canary\"}[30s]"
        );
    }

    #[test]
    fn unknown_variable_names_the_metric() {
        let mut q = indexmap::IndexMap::new();
        q.insert("cpu".to_string(), "{{pod}}".to_string());
        let err = probes(
            &q,
            "shop",
            "checkout",
            Duration::from_secs(30),
            &TrackName::BOTH,
        )
        .expect_err("unknown var");
        assert!(err.starts_with("metrics.queries.cpu"), "{err}");
    }
}
