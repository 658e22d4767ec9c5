//! Replicas router: no traffic object. A Service selecting both tracks spreads requests over the
//! ready pods of both Deployments, so the canary weight is the canary's share of the two
//! Deployments' replicas, and setting it scales them. Knows nothing of the console.
//!
//! Resolution: the total (stable + canary `spec.replicas`, at least 1) is kept, so the weight
//! moves in steps of 100/total percent. The canary gets `round(total × weight / 100)` replicas
//! (halves round up), but never 0 nor all of them unless the weight is 0 or 100. A weight
//! strictly between 0 and 100 on a total of 1 grows the total to 2 (one replica each), so no
//! partial weight empties a track. [`TrafficRouter::weight`] reports the ratio the replica
//! counts give (`spec.replicas`), so after setting 30 on 6 replicas it reads 33.

use std::future::Future;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::Client;
use serde_json::{Value, json};

use super::object::{ObjectRef, share};
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
    async fn read(&self) -> Result<Read, RouterError> {
        let (s, c) = futures::future::try_join(self.stable.read(), self.canary.read()).await?;
        let sr = replicas(&s).map_err(|why| self.stable.malformed(why))?;
        let cr = replicas(&c).map_err(|why| self.canary.malformed(why))?;
        Ok(((s, sr), (c, cr)))
    }

    /// Moves both Deployments to `target` (stable, canary) from the counts in `read`: two
    /// writes, the growing side first. When the second write fails after the first landed,
    /// the error says which Deployment already moved.
    async fn move_to(&self, read: Read, target: (u64, u64)) -> Result<(), RouterError> {
        let ((s, sr), (c, cr)) = read;
        let stable = (&self.stable, s, sr, target.0);
        let canary = (&self.canary, c, cr, target.1);
        // The side that grows goes first, so the sum of spec.replicas never drops below the
        // smaller of the two totals. That is requested capacity only: the grown side's new pods
        // may not be Ready yet when the other side shrinks (nothing here waits for them).
        let [first, second] = if target.1 > cr {
            [canary, stable]
        } else {
            [stable, canary]
        };
        let (target1, current1, from1, to1) = first;
        target1
            .json_patch(&current1, scale_ops(&current1, from1, to1))
            .await?;
        let (target2, current2, from2, to2) = second;
        target2
            .json_patch(&current2, scale_ops(&current2, from2, to2))
            .await
            .map_err(|e| {
                // After a retry the first side may have been moved by the attempt before.
                let first = if from1 == to1 {
                    format!("{} is already at {to1} replicas", target1.object())
                } else {
                    format!(
                        "{} was already scaled from {from1} to {to1} replicas",
                        target1.object()
                    )
                };
                already_moved(
                    e,
                    &format!("{first}; {} is still at {from2}", target2.object()),
                )
            })
    }
}

/// Both Deployments as read, and their `spec.replicas`.
type Read = ((Value, u64), (Value, u64));

/// `err` with `note` (what already changed) added to its message, keeping its kind.
fn already_moved(err: RouterError, note: &str) -> RouterError {
    match err {
        RouterError::Api(m) => RouterError::Api(format!("{m} ({note})")),
        RouterError::Refused(m) => RouterError::Refused(format!("{m} ({note})")),
        RouterError::Conflict(m) => RouterError::Conflict(format!("{m} ({note})")),
        RouterError::Malformed { object, why } => RouterError::Malformed {
            object,
            why: format!("{why} ({note})"),
        },
    }
}

/// Reads both Deployments, splits the total read for `weight`, and moves them to that split,
/// once more after a conflict (read again, same target). `read` and `move_to` are the
/// router's; tests give fakes.
async fn move_once_to_one_target<R, RF, M, MF>(
    mut read: R,
    mut move_to: M,
    weight: Weight,
) -> Result<(), RouterError>
where
    R: FnMut() -> RF,
    RF: Future<Output = Result<Read, RouterError>>,
    M: FnMut(Read, (u64, u64)) -> MF,
    MF: Future<Output = Result<(), RouterError>>,
{
    let first = read().await?;
    let target = split(first.0.1.saturating_add(first.1.1), weight);
    match move_to(first, target).await {
        Err(RouterError::Conflict(_)) => {
            let again = read().await?;
            move_to(again, target).await
        }
        other => other,
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

/// `(stable, canary)` replica counts for `weight` out of `total` (at least 1, and at least 2
/// for a weight strictly between 0 and 100); see the module documentation for the rounding.
pub fn split(total: u64, weight: Weight) -> (u64, u64) {
    let w = u64::from(weight.percent());
    let total = if w == 0 || w == 100 {
        total.max(1)
    } else {
        total.max(2)
    };
    let canary = match w {
        0 => 0,
        100 => total,
        _ => {
            let rounded = (u128::from(total) * u128::from(w) + 50) / 100;
            u64::try_from(rounded).unwrap_or(total).clamp(1, total - 1)
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

    /// Two writes (one per Deployment), each guarded by a `test` of the replica count it read.
    /// The target split is computed once, from the total read first; after a conflict both are
    /// read again and moved to that same target once more. (Splitting the total read again
    /// would count a side our first write already grew, and the total would creep up.)
    fn set_weight(&self, weight: Weight) -> BoxFuture<'_, Result<(), RouterError>> {
        move_once_to_one_target(
            || self.read(),
            |read, target| self.move_to(read, target),
            weight,
        )
        .boxed()
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
        // One replica: a partial weight grows the total to 2, one each.
        assert_eq!(split(1, w(30)), (1, 1));
        assert_eq!(split(1, w(50)), (1, 1));
        assert_eq!(split(1, w(70)), (1, 1));
        assert_eq!(split(0, w(1)), (1, 1));
        assert_eq!(split(1, w(0)), (1, 0));
        assert_eq!(split(1, w(100)), (0, 1));
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

    /// A fake pair of Deployments: the replica counts, and how many stable writes fail
    /// with a conflict before one lands.
    struct Fake {
        counts: std::sync::Mutex<(u64, u64)>,
        stable_conflicts: std::sync::atomic::AtomicU32,
    }

    impl Fake {
        fn counts(&self) -> (u64, u64) {
            *self.counts.lock().unwrap_or_else(|e| e.into_inner())
        }

        async fn read(&self) -> Result<Read, RouterError> {
            let (s, c) = self.counts();
            Ok(((json!({}), s), (json!({}), c)))
        }

        /// The growing side first, as the router does; a stable write may conflict.
        async fn move_to(&self, read: Read, target: (u64, u64)) -> Result<(), RouterError> {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            let grows_canary = target.1 > read.1.1;
            if grows_canary {
                counts.1 = target.1;
            }
            if self
                .stable_conflicts
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                return Err(RouterError::Conflict("stable moved".into()));
            }
            counts.0 = target.0;
            counts.1 = target.1;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_retry_after_a_half_done_move_keeps_the_original_total() {
        // 4 + 2 at 50 %: the target is 3 + 3. The canary write lands (2 -> 3), the stable one
        // conflicts; the retry reads 4 + 3 and moves to the same 3 + 3, not to a split of 7.
        let fake = Fake {
            counts: std::sync::Mutex::new((4, 2)),
            stable_conflicts: std::sync::atomic::AtomicU32::new(1),
        };
        move_once_to_one_target(|| fake.read(), |r, t| fake.move_to(r, t), w(50))
            .await
            .expect("second attempt lands");
        assert_eq!(fake.counts(), (3, 3));

        // Two conflicts: reported, and the canary stays where the first write put it.
        let fake = Fake {
            counts: std::sync::Mutex::new((4, 2)),
            stable_conflicts: std::sync::atomic::AtomicU32::new(2),
        };
        let err = move_once_to_one_target(|| fake.read(), |r, t| fake.move_to(r, t), w(50))
            .await
            .expect_err("second conflict reported");
        assert!(matches!(err, RouterError::Conflict(_)), "{err:?}");
        assert_eq!(fake.counts(), (4, 3));
    }

    #[test]
    fn a_failure_after_the_first_write_says_which_side_moved() {
        let note = "deployments.apps shop/checkout-canary was already scaled from 2 to 3 replicas";
        let e = already_moved(RouterError::Api("cannot patch x: down".into()), note);
        assert!(matches!(&e, RouterError::Api(m) if m.contains("down") && m.contains(note)));
        let e = already_moved(RouterError::Conflict("moved".into()), note);
        assert!(matches!(&e, RouterError::Conflict(m) if m.contains(note)));
        let e = already_moved(
            RouterError::Malformed {
                object: "o".into(),
                why: "w".into(),
            },
            note,
        );
        assert!(matches!(&e, RouterError::Malformed { why, .. } if why.contains(note)));
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
