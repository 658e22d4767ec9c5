//! Replicas router: no traffic object. A Service selecting both tracks spreads requests over the
//! ready pods of both Deployments, so the canary weight is the canary's share of the two
//! Deployments' replicas, and setting it scales them. Knows nothing of the console.
//!
//! Resolution: the total (stable + canary `spec.replicas`, at least 1) is kept, so the weight
//! moves in steps of 100/total percent. The canary gets `round(total × weight / 100)` replicas
//! (halves round up), but never 0 nor all of them unless the weight is 0 or 100. With a total
//! of 1 only 0 and 100 exist. [`TrafficRouter::weight`] reports the ratio the replica counts
//! give (`spec.replicas`), so after setting 30 on 6 replicas it reads 33.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::Client;
use serde_json::{Value, json};

use super::object::{ObjectRef, retry_on_conflict, share};
use super::{RouterError, TrafficRouter};
use crate::plan::Weight;

/// The stable and canary Deployments whose replica counts split the traffic.
#[derive(Clone)]
pub struct ReplicasRouter {
    stable: ObjectRef,
    canary: ObjectRef,
}

const DEPLOYMENT: (&str, &str, &str, &str) = ("apps", "v1", "Deployment", "deployments");

impl ReplicasRouter {
    pub fn new(client: Client, namespace: &str, stable: &str, canary: &str) -> ReplicasRouter {
        ReplicasRouter {
            stable: ObjectRef::new(client.clone(), DEPLOYMENT, namespace, stable),
            canary: ObjectRef::new(client, DEPLOYMENT, namespace, canary),
        }
    }

    /// Both Deployments as read, with their `spec.replicas`.
    async fn read(&self) -> Result<((Value, u64), (Value, u64)), RouterError> {
        let (s, c) = futures::future::try_join(self.stable.read(), self.canary.read()).await?;
        let sr = replicas(&s).map_err(|why| self.stable.malformed(why))?;
        let cr = replicas(&c).map_err(|why| self.canary.malformed(why))?;
        Ok(((s, sr), (c, cr)))
    }

    async fn write(&self, weight: Weight) -> Result<(), RouterError> {
        let ((s, sr), (c, cr)) = self.read().await?;
        let (ts, tc) = split(sr.saturating_add(cr), weight);
        let stable = (&self.stable, s, sr, ts);
        let canary = (&self.canary, c, cr, tc);
        // The side that grows goes first, so capacity never drops below the total.
        let order = if tc > cr {
            [canary, stable]
        } else {
            [stable, canary]
        };
        for (target, current, from, to) in order {
            target
                .json_patch(&current, scale_ops(&current, from, to))
                .await?;
        }
        Ok(())
    }
}

/// `spec.replicas` of a Deployment; absent is 1, as the API server defaults it.
pub fn replicas(deployment: &Value) -> Result<u64, String> {
    match deployment.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("spec.replicas is not a whole number: {v}")),
    }
}

/// `(stable, canary)` replica counts for `weight` out of `total` (at least 1); see the module
/// documentation for the rounding.
pub fn split(total: u64, weight: Weight) -> (u64, u64) {
    let total = total.max(1);
    let w = u64::from(weight.percent());
    let canary = match w {
        0 => 0,
        100 => total,
        _ => {
            let rounded = (u128::from(total) * u128::from(w) + 50) / 100;
            let rounded = u64::try_from(rounded).unwrap_or(total);
            if total >= 2 {
                rounded.clamp(1, total - 1)
            } else {
                rounded.min(total)
            }
        }
    };
    (total - canary, canary)
}

/// A JSON patch setting `spec.replicas` from `from` to `to`, testing `from` when the object had
/// the field.
fn scale_ops(current: &Value, from: u64, to: u64) -> Vec<Value> {
    let mut ops = Vec::new();
    if current
        .pointer("/spec/replicas")
        .is_some_and(|v| !v.is_null())
    {
        ops.push(json!({"op": "test", "path": "/spec/replicas", "value": from}));
    }
    ops.push(json!({"op": "add", "path": "/spec/replicas", "value": to}));
    ops
}

impl TrafficRouter for ReplicasRouter {
    fn describe(&self) -> String {
        format!(
            "replicas of Deployments {}/{} and {}",
            self.stable.namespace(),
            self.stable.name(),
            self.canary.name()
        )
    }

    fn weight(&self) -> BoxFuture<'_, Result<Weight, RouterError>> {
        async move {
            let ((_, sr), (_, cr)) = self.read().await?;
            Ok(share(sr, cr))
        }
        .boxed()
    }

    /// Two writes (one per Deployment), each guarded by a `test` of the replica count it read;
    /// after a conflict the whole move is read and done again once.
    fn set_weight(&self, weight: Weight) -> BoxFuture<'_, Result<(), RouterError>> {
        retry_on_conflict(move || self.write(weight)).boxed()
    }

    /// Both Deployments watched; a weight is reported once both are known, and again whenever
    /// it changes (status-only updates do not repeat it).
    fn watch(&self) -> BoxStream<'static, Result<Weight, RouterError>> {
        let tagged = |target: &ObjectRef, stable: bool| {
            let t = target.clone();
            target.watch().map(move |item| {
                let counted = item.and_then(|d| replicas(&d).map_err(|why| t.malformed(why)));
                (stable, counted)
            })
        };
        let merged =
            futures::stream::select(tagged(&self.stable, true), tagged(&self.canary, false));
        merged
            .scan(
                (None::<u64>, None::<u64>, None::<Weight>),
                |(s, c, last), (stable, counted)| {
                    let out = match counted {
                        Err(e) => {
                            *last = None;
                            Some(Err(e))
                        }
                        Ok(n) => {
                            if stable {
                                *s = Some(n);
                            } else {
                                *c = Some(n);
                            }
                            match (*s, *c) {
                                (Some(sr), Some(cr)) if *last != Some(share(sr, cr)) => {
                                    *last = Some(share(sr, cr));
                                    Some(Ok(share(sr, cr)))
                                }
                                _ => None,
                            }
                        }
                    };
                    futures::future::ready(Some(out))
                },
            )
            .filter_map(futures::future::ready)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: i64) -> Weight {
        Weight::clamped(p)
    }

    #[test]
    fn split_keeps_the_total_and_rounds_to_nearest() {
        assert_eq!(split(10, w(30)), (7, 3));
        assert_eq!(split(6, w(30)), (4, 2));
        assert_eq!(split(6, w(25)), (4, 2)); // 1.5 rounds up
        assert_eq!(split(6, w(0)), (6, 0));
        assert_eq!(split(6, w(100)), (0, 6));
        assert_eq!(split(0, w(100)), (0, 1));
        assert_eq!(split(0, w(0)), (1, 0));
    }

    #[test]
    fn neither_track_empties_between_0_and_100() {
        assert_eq!(split(10, w(1)), (9, 1));
        assert_eq!(split(10, w(99)), (1, 9));
        assert_eq!(split(2, w(10)), (1, 1));
        for total in 2..=20 {
            for p in 1..=99 {
                let (s, c) = split(total, w(p));
                assert!(s >= 1 && c >= 1 && s + c == total, "{total} {p}");
            }
        }
        // One replica: only 0 and 100 exist.
        assert_eq!(split(1, w(30)), (1, 0));
        assert_eq!(split(1, w(70)), (0, 1));
    }

    #[test]
    fn split_is_idempotent_through_the_reported_ratio() {
        for total in 1..=12 {
            for p in 0..=100 {
                let (s, c) = split(total, w(p));
                assert_eq!(split(total, share(s, c)), (s, c), "{total} {p}");
            }
        }
    }

    #[test]
    fn replicas_read_defaults_and_rejects_garbage() {
        assert_eq!(replicas(&json!({"spec": {"replicas": 4}})), Ok(4));
        assert_eq!(replicas(&json!({"spec": {}})), Ok(1));
        assert!(
            replicas(&json!({"spec": {"replicas": "four"}})).is_err_and(|e| e.contains("four"))
        );
        assert!(replicas(&json!({"spec": {"replicas": -1}})).is_err());
    }

    #[test]
    fn scale_ops_test_the_count_read() {
        let d = json!({"spec": {"replicas": 4}});
        let ops = scale_ops(&d, 4, 3);
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[0]["value"], 4);
        assert_eq!(ops[1]["value"], 3);
        assert_eq!(scale_ops(&json!({"spec": {}}), 1, 2).len(), 1);
    }
}
