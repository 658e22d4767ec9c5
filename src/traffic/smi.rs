//! SMI router: the canary weight is the canary backend's share in a TrafficSplit
//! (`split.smi-spec.io/v1alpha2`, `spec.backends[{service, weight}]`, integer weights).
//! Reads, watches and writes it in one JSON patch; knows nothing of the console.

use kube::Client;
use serde_json::Value;

use super::object::{
    ObjectKind, ObjectRef, ObjectRouter, WeightCodec, WeightEntry, only_stable_and_canary, share,
    weight_ops,
};
use crate::plan::Weight;

/// A TrafficSplit whose backends are the stable and the canary Service.
pub type SmiRouter = ObjectRouter<TrafficSplitWeights>;

/// The TrafficSplit the weight is kept in.
pub const OBJECT: ObjectKind = ObjectKind {
    group: "split.smi-spec.io",
    version: "v1alpha2",
    kind: "TrafficSplit",
    plural: "trafficsplits",
    noun: "trafficsplit",
};

/// The stable and canary backend Services of a TrafficSplit.
pub struct TrafficSplitWeights {
    stable_backend: String,
    canary_backend: String,
}

impl SmiRouter {
    pub fn new(
        client: Client,
        namespace: &str,
        split: &str,
        stable_backend: &str,
        canary_backend: &str,
    ) -> SmiRouter {
        ObjectRouter::with_codec(
            ObjectRef::new(client, OBJECT.gvk(), namespace, split),
            "TrafficSplit",
            TrafficSplitWeights {
                stable_backend: stable_backend.to_string(),
                canary_backend: canary_backend.to_string(),
            },
        )
    }
}

/// `(service, weight)` of every backend; a backend without a service or a whole-number weight
/// is an error (SMI requires both).
pub fn backends(split: &Value) -> Result<Vec<(&str, u64)>, String> {
    let list = split
        .pointer("/spec/backends")
        .ok_or_else(|| "spec.backends is missing".to_string())?
        .as_array()
        .ok_or_else(|| "spec.backends is not a list".to_string())?;
    list.iter()
        .enumerate()
        .map(|(i, b)| {
            let service = b
                .get("service")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("spec.backends[{i}] has no service"))?;
            let weight = b
                .get("weight")
                .ok_or_else(|| format!("spec.backends[{i}] ({service}) has no weight"))?;
            let weight = weight.as_u64().ok_or_else(|| {
                format!("spec.backends[{i}] ({service}) weight is not a whole number: {weight}")
            })?;
            Ok((service, weight))
        })
        .collect()
}

/// Index in `spec.backends` and weight of one backend.
type Slot = (usize, u64);

impl TrafficSplitWeights {
    /// Indexes and weights of the stable and canary backends.
    fn pair(&self, split: &Value) -> Result<(Slot, Slot), String> {
        let list = backends(split)?;
        let find = |name: &str| {
            list.iter()
                .enumerate()
                .find_map(|(i, (s, w))| (*s == name).then_some((i, *w)))
                .ok_or_else(|| format!("spec.backends has no service {name}"))
        };
        let stable = find(&self.stable_backend)?;
        let canary = find(&self.canary_backend)?;
        let others: Vec<String> = list
            .iter()
            .filter(|(s, w)| *w > 0 && *s != self.stable_backend && *s != self.canary_backend)
            .map(|(s, _)| s.to_string())
            .collect();
        only_stable_and_canary("spec.backends", &others)?;
        Ok((stable, canary))
    }
}

impl WeightCodec for TrafficSplitWeights {
    fn weight(&self, split: &Value) -> Result<Weight, String> {
        let ((_, sw), (_, cw)) = self.pair(split)?;
        Ok(share(sw, cw))
    }

    /// Sets 100−w / w on the two backends, testing each one's service name first.
    fn patch(&self, split: &Value, weight: Weight) -> Result<Vec<Value>, String> {
        let ((si, _), (ci, _)) = self.pair(split)?;
        let w = u64::from(weight.percent());
        Ok(weight_ops(
            [
                (si, &self.stable_backend, 100 - w),
                (ci, &self.canary_backend, w),
            ]
            .map(|(i, name, weight)| WeightEntry {
                at: format!("/spec/backends/{i}"),
                name_at: "/service",
                name,
                weight,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codec() -> TrafficSplitWeights {
        TrafficSplitWeights {
            stable_backend: "checkout".into(),
            canary_backend: "checkout-canary".into(),
        }
    }

    fn split(sw: u64, cw: u64) -> Value {
        json!({"spec": {"service": "checkout", "backends": [
            {"service": "checkout", "weight": sw}, {"service": "checkout-canary", "weight": cw}]}})
    }

    #[test]
    fn weight_is_the_canary_share() {
        assert_eq!(codec().weight(&split(90, 10)), Ok(Weight::clamped(10)));
        assert_eq!(codec().weight(&split(500, 500)), Ok(Weight::clamped(50)));
        assert_eq!(codec().weight(&split(0, 0)), Ok(Weight::ZERO));
    }

    #[test]
    fn patch_sets_both_and_fails_on_a_reordered_split() {
        let doc = split(100, 0);
        let ops = codec().patch(&doc, Weight::clamped(30)).expect("ops");
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("patch");
        let mut after = doc.clone();
        json_patch::patch(&mut after, &patch).expect("applies");
        assert_eq!(after.pointer("/spec/backends/0/weight"), Some(&json!(70)));
        assert_eq!(after.pointer("/spec/backends/1/weight"), Some(&json!(30)));
        let mut reordered = json!({"spec": {"backends": [
            {"service": "checkout-canary", "weight": 0}, {"service": "checkout", "weight": 100}]}});
        assert!(json_patch::patch(&mut reordered, &patch).is_err());
    }

    #[test]
    fn malformed_splits_are_reported() {
        let c = codec();
        assert!(
            c.weight(&json!({}))
                .is_err_and(|e| e.contains("spec.backends"))
        );
        let no_weight = json!({"spec": {"backends": [{"service": "checkout"}, {"service": "checkout-canary", "weight": 1}]}});
        assert!(c.weight(&no_weight).is_err_and(|e| e.contains("no weight")));
        let no_service = json!({"spec": {"backends": [{"weight": 1}]}});
        assert!(
            c.weight(&no_service)
                .is_err_and(|e| e.contains("no service"))
        );
        let missing = json!({"spec": {"backends": [{"service": "checkout", "weight": 1}]}});
        assert!(
            c.weight(&missing)
                .is_err_and(|e| e.contains("checkout-canary"))
        );
        let neg = json!({"spec": {"backends": [{"service": "checkout", "weight": -1}, {"service": "checkout-canary", "weight": 1}]}});
        assert!(c.weight(&neg).is_err_and(|e| e.contains("whole number")));
        let third = json!({"spec": {"backends": [{"service": "checkout", "weight": 1}, {"service": "checkout-canary", "weight": 1}, {"service": "old", "weight": 1}]}});
        assert!(c.weight(&third).is_err_and(|e| e.contains("old")));
    }
}
