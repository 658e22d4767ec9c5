//! ingress-nginx router: the canary weight is the `nginx.ingress.kubernetes.io/canary-weight`
//! annotation (a string) of the canary Ingress (`networking.k8s.io/v1`) that `traffic.route`
//! names. ingress-nginx sends that share of the primary Ingress's requests (same host and path)
//! to the canary Ingress's Service. Reads, watches and writes the annotation in one JSON patch;
//! knows nothing of the console.
//!
//! `canary-weight-total` (default 100) is honoured: the weight is `canary-weight` over it, and
//! writes round to its unit. Header and cookie canary rules are left as they are.

use kube::Client;
use serde_json::{Value, json};

use super::object::{ObjectKind, ObjectRef, ObjectRouter, WeightCodec, pointer_key};
use crate::plan::Weight;

pub const CANARY: &str = "nginx.ingress.kubernetes.io/canary";
pub const CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
pub const CANARY_WEIGHT_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";

/// The canary Ingress of an ingress-nginx canary pair.
pub type NginxRouter = ObjectRouter<CanaryIngressWeight>;

/// The canary Ingress the weight is kept in.
pub const OBJECT: ObjectKind = ObjectKind {
    group: "networking.k8s.io",
    version: "v1",
    kind: "Ingress",
    plural: "ingresses",
    noun: "ingress",
};

/// The Service the canary Ingress must send to.
pub struct CanaryIngressWeight {
    canary_backend: String,
}

impl NginxRouter {
    pub fn new(
        client: Client,
        namespace: &str,
        canary_ingress: &str,
        canary_backend: &str,
    ) -> NginxRouter {
        ObjectRouter::with_codec(
            ObjectRef::new(client, OBJECT.gvk(), namespace, canary_ingress),
            "canary Ingress",
            CanaryIngressWeight {
                canary_backend: canary_backend.to_string(),
            },
        )
    }
}

/// Names of the Services an Ingress sends to (default backend and every path), in order.
pub fn ingress_services(ingress: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let default = ingress
        .pointer("/spec/defaultBackend/service/name")
        .and_then(Value::as_str);
    let paths = ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.pointer("/http/paths").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.pointer("/backend/service/name").and_then(Value::as_str));
    for name in default.into_iter().chain(paths) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Whether an Ingress is an ingress-nginx canary (`canary: "true"`).
pub fn is_canary(ingress: &Value) -> bool {
    annotation(ingress, CANARY) == Some("true")
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `(canary-weight, canary-weight-total)` of a canary Ingress; a missing weight is 0 and a
/// missing total 100, as ingress-nginx reads them.
pub fn canary_weight_parts(ingress: &Value) -> Result<(u64, u64), String> {
    let number = |key: &str, default: u64| -> Result<u64, String> {
        match annotation(ingress, key) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("annotation {key} is not a whole number: {s:?}")),
        }
    };
    let total = number(CANARY_WEIGHT_TOTAL, 100)?;
    if total == 0 {
        return Err(format!("annotation {CANARY_WEIGHT_TOTAL} is 0"));
    }
    Ok((number(CANARY_WEIGHT, 0)?.min(total), total))
}

impl CanaryIngressWeight {
    /// The weight parts, once the Ingress is known to be a canary sending to the canary backend.
    fn check(&self, ingress: &Value) -> Result<(u64, u64), String> {
        if !is_canary(ingress) {
            return Err(format!(
                "not a canary Ingress: annotation {CANARY} is not \"true\"; traffic.route must name the canary Ingress, not the primary"
            ));
        }
        let services = ingress_services(ingress);
        if !services.contains(&self.canary_backend.as_str()) {
            return Err(if services.is_empty() {
                format!(
                    "it has no backend Service; expected the canary backend {}",
                    self.canary_backend
                )
            } else {
                format!(
                    "it sends to {}, not to the canary backend {}",
                    services.join(", "),
                    self.canary_backend
                )
            });
        }
        canary_weight_parts(ingress)
    }
}

impl WeightCodec for CanaryIngressWeight {
    fn weight(&self, ingress: &Value) -> Result<Weight, String> {
        let (w, total) = self.check(ingress)?;
        Ok(Weight::clamped(
            (w as f64 * 100.0 / total as f64).round() as i64
        ))
    }

    /// One `add` of the weight annotation, after `test`s that the Ingress is still a canary and
    /// that `canary-weight-total` is still the one the value was computed in, so a total changed
    /// meanwhile fails the patch instead of getting a weight in the wrong unit.
    ///
    /// JSON patch cannot test that a member is absent. When the Ingress has no total, the patch
    /// adds it, set to ingress-nginx's default `"100"`, in the same write: ingress-nginx reads
    /// the Ingress as before, and if someone added another total meanwhile, the weight and its
    /// unit are still written together and agree. (Testing the whole annotations map instead
    /// would turn every unrelated annotation edit into a conflict.) Later writes then test it.
    fn patch(&self, ingress: &Value, weight: Weight) -> Result<Vec<Value>, String> {
        let (_, total) = self.check(ingress)?;
        let value = (f64::from(weight.percent()) * total as f64 / 100.0).round() as u64;
        let path = |key: &str| format!("/metadata/annotations/{}", pointer_key(key));
        let total_op = match annotation(ingress, CANARY_WEIGHT_TOTAL) {
            Some(read) => json!({"op": "test", "path": path(CANARY_WEIGHT_TOTAL), "value": read}),
            None => {
                json!({"op": "add", "path": path(CANARY_WEIGHT_TOTAL), "value": total.to_string()})
            }
        };
        Ok(vec![
            json!({"op": "test", "path": path(CANARY), "value": "true"}),
            total_op,
            json!({"op": "add", "path": path(CANARY_WEIGHT), "value": value.to_string()}),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CanaryIngressWeight {
        CanaryIngressWeight {
            canary_backend: "checkout-canary".into(),
        }
    }

    fn ingress(annotations: Value) -> Value {
        json!({
            "metadata": {"name": "checkout-canary", "annotations": annotations},
            "spec": {"rules": [{"host": "checkout.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "checkout-canary", "port": {"number": 80}}}}]}}]},
        })
    }

    #[test]
    fn weight_is_the_annotation_over_its_total() {
        let c = codec();
        let i = ingress(json!({CANARY: "true", CANARY_WEIGHT: "25"}));
        assert_eq!(c.weight(&i), Ok(Weight::clamped(25)));
        let i = ingress(json!({CANARY: "true"}));
        assert_eq!(c.weight(&i), Ok(Weight::ZERO));
        let i = ingress(json!({CANARY: "true", CANARY_WEIGHT: "50", CANARY_WEIGHT_TOTAL: "200"}));
        assert_eq!(c.weight(&i), Ok(Weight::clamped(25)));
    }

    #[test]
    fn patch_writes_a_string_in_the_total_unit_and_tests_the_canary_flag() {
        let c = codec();
        let i = ingress(json!({CANARY: "true", CANARY_WEIGHT_TOTAL: "1000"}));
        let ops = c.patch(&i, Weight::clamped(30)).expect("ops");
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("patch");
        let mut after = i.clone();
        json_patch::patch(&mut after, &patch).expect("applies");
        assert_eq!(annotation(&after, CANARY_WEIGHT), Some("300"));
        assert_eq!(c.weight(&after), Ok(Weight::clamped(30)));
        // An Ingress that stopped being a canary meanwhile fails the test op.
        let mut demoted = i.clone();
        demoted["metadata"]["annotations"][CANARY] = json!("false");
        assert!(json_patch::patch(&mut demoted, &patch).is_err());
        // So does one whose total changed meanwhile: 300 would be 30 % of 1000, not of 100.
        let mut retotalled = i.clone();
        retotalled["metadata"]["annotations"][CANARY_WEIGHT_TOTAL] = json!("100");
        assert!(json_patch::patch(&mut retotalled, &patch).is_err());
        // Or lost it (back to the default 100).
        let mut untotalled = i.clone();
        if let Some(a) = untotalled["metadata"]["annotations"].as_object_mut() {
            a.remove(CANARY_WEIGHT_TOTAL);
        }
        assert!(json_patch::patch(&mut untotalled, &patch).is_err());
    }

    #[test]
    fn without_a_total_the_patch_writes_the_default_with_the_weight() {
        let c = codec();
        let i = ingress(json!({CANARY: "true", CANARY_WEIGHT: "10"}));
        let ops = c.patch(&i, Weight::clamped(30)).expect("ops");
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("patch");
        let mut after = i.clone();
        json_patch::patch(&mut after, &patch).expect("applies");
        assert_eq!(annotation(&after, CANARY_WEIGHT_TOTAL), Some("100"));
        assert_eq!(annotation(&after, CANARY_WEIGHT), Some("30"));
        // A total someone added meanwhile is written over together with the weight: the two
        // agree, and the share is the one asked for.
        let mut raced = i.clone();
        raced["metadata"]["annotations"][CANARY_WEIGHT_TOTAL] = json!("1000");
        json_patch::patch(&mut raced, &patch).expect("applies");
        assert_eq!(c.weight(&raced), Ok(Weight::clamped(30)));
        // Once there, the next patch tests it and writes nothing else.
        let ops = c.patch(&after, Weight::clamped(30)).expect("ops");
        assert_eq!(ops[1]["op"], "test");
        assert_eq!(ops[1]["value"], "100");
    }

    #[test]
    fn primary_or_broken_ingresses_are_reported() {
        let c = codec();
        let primary = ingress(json!({}));
        assert!(
            c.weight(&primary)
                .is_err_and(|e| e.contains("not a canary Ingress"))
        );
        assert!(
            c.patch(&primary, Weight::clamped(10))
                .is_err_and(|e| e.contains("not a canary Ingress"))
        );
        let no_annotations = json!({"metadata": {"name": "x"}});
        assert!(c.weight(&no_annotations).is_err());
        let garbage = ingress(json!({CANARY: "true", CANARY_WEIGHT: "lots"}));
        assert!(c.weight(&garbage).is_err_and(|e| e.contains("lots")));
        let zero_total = ingress(json!({CANARY: "true", CANARY_WEIGHT_TOTAL: "0"}));
        assert!(c.weight(&zero_total).is_err());
        let mut elsewhere = ingress(json!({CANARY: "true"}));
        elsewhere["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
            json!("checkout");
        assert!(
            c.weight(&elsewhere)
                .is_err_and(|e| e.contains("sends to checkout,"))
        );
        let mut no_backend = ingress(json!({CANARY: "true"}));
        no_backend["spec"] = json!({});
        assert!(
            c.weight(&no_backend)
                .is_err_and(|e| e.contains("no backend"))
        );
    }
}
