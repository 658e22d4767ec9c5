//! The traffic task: follows the router's watch and reports the weight and the router's health
//! to the console. Owns no state beyond the health it last reported.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{RouterError, TrafficEvent, TrafficRouter};
use crate::health::Health;

/// How often the traffic object is read while its watch is failing.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Follows `router` until cancelled. A watch resumed after an outage says nothing until the
/// object changes, and traffic objects rarely change; so while the watch is failing the object
/// is read directly, and once that works the watch is opened afresh and the source is live.
pub async fn follow(
    router: Arc<dyn TrafficRouter>,
    sink: impl Fn(TrafficEvent) + Send,
    cancel: CancellationToken,
) {
    let mut stream = router.watch();
    let mut health = Health::Connecting;
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let report = |health: &mut Health, next: Health| {
        let next = health.then(next);
        if *health != next {
            *health = next.clone();
            sink(TrafficEvent::Health(next));
        }
    };
    loop {
        let failing = matches!(health, Health::Degraded { .. });
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(w)) => {
                    report(&mut health, Health::Live);
                    sink(TrafficEvent::Weight(w));
                }
                Some(Err(e @ RouterError::Refused(_))) => {
                    report(&mut health, Health::Forbidden(e.to_string()))
                }
                Some(Err(e)) => report(
                    &mut health,
                    Health::Degraded { since: SystemTime::now(), error: e.to_string() },
                ),
                None => return,
            },
            _ = probe.tick(), if failing => {
                let read = tokio::select! {
                    r = tokio::time::timeout(PROBE_EVERY * 5, router.weight()) => r,
                    () = cancel.cancelled() => return,
                };
                if let Ok(Ok(w)) = read {
                    stream = router.watch();
                    report(&mut health, Health::Live);
                    sink(TrafficEvent::Weight(w));
                }
            }
            () = cancel.cancelled() => return,
        }
    }
}
