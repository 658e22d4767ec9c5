//! Gateway API router: the canary weight is the share of the canary backendRef in an HTTPRoute.
//! Reads, watches and writes the HTTPRoute; knows nothing of the console.

use kube::Client;
use serde_json::Value;

use super::object::{
    ObjectKind, ObjectRef, ObjectRouter, WeightCodec, WeightEntry, only_stable_and_canary, share,
    weight_ops,
};
use crate::plan::Weight;

/// An HTTPRoute whose rules send traffic to a stable and a canary Service.
pub type GatewayApiRouter = ObjectRouter<HttpRouteWeights>;

/// The HTTPRoute the weight is kept in.
pub const OBJECT: ObjectKind = ObjectKind {
    group: "gateway.networking.k8s.io",
    version: "v1",
    kind: "HTTPRoute",
    plural: "httproutes",
    noun: "httproute",
};

/// The stable and canary backendRef names of an HTTPRoute.
pub struct HttpRouteWeights {
    stable_backend: String,
    canary_backend: String,
}

impl GatewayApiRouter {
    pub fn new(
        client: Client,
        namespace: &str,
        route: &str,
        stable_backend: &str,
        canary_backend: &str,
    ) -> GatewayApiRouter {
        ObjectRouter::with_codec(
            ObjectRef::new(client, OBJECT.gvk(), namespace, route),
            "HTTPRoute",
            HttpRouteWeights {
                stable_backend: stable_backend.to_string(),
                canary_backend: canary_backend.to_string(),
            },
        )
    }
}

impl WeightCodec for HttpRouteWeights {
    fn weight(&self, obj: &Value) -> Result<Weight, String> {
        canary_weight(obj, &self.stable_backend, &self.canary_backend)
    }

    // The JSON patch tests the backend names it rewrites, so a route edited between our read
    // and our write fails the patch instead of getting weights on the wrong refs.
    fn patch(&self, obj: &Value, weight: Weight) -> Result<Vec<Value>, String> {
        weight_patch(obj, &self.stable_backend, &self.canary_backend, weight)
    }
}

/// Where one rule naming both backends has them: (rule index, stable ref index, stable weight,
/// canary ref index, canary weight).
type Pair = (usize, usize, u64, usize, u64);

/// The backendRefs weights of every rule naming both backends. A missing weight is 1, as
/// Gateway API says; a weight that is not a whole number, or weight on a third backendRef of
/// such a rule, is an error.
fn backend_pairs(route: &Value, stable: &str, canary: &str) -> Result<Vec<Pair>, String> {
    let rules = route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut pairs = Vec::new();
    for (r, rule) in rules.iter().enumerate() {
        let Some(refs) = rule.get("backendRefs").and_then(Value::as_array) else {
            continue;
        };
        let (mut s, mut c, mut others) = (None, None, Vec::new());
        for (i, b) in refs.iter().enumerate() {
            let name = b.get("name").and_then(Value::as_str);
            let weight = match b.get("weight") {
                None | Some(Value::Null) => 1,
                Some(w) => w.as_u64().ok_or_else(|| {
                    format!(
                        "spec.rules[{r}].backendRefs[{i}] ({}) weight is not a whole number: {w}",
                        name.unwrap_or("no name")
                    )
                })?,
            };
            match name {
                Some(n) if n == stable && s.is_none() => s = Some((i, weight)),
                Some(n) if n == canary && c.is_none() => c = Some((i, weight)),
                _ if weight > 0 => {
                    others.push(name.unwrap_or("a backendRef without a name").to_string())
                }
                _ => {}
            }
        }
        let (Some((si, sw)), Some((ci, cw))) = (s, c) else {
            continue;
        };
        only_stable_and_canary(&format!("spec.rules[{r}].backendRefs"), &others)?;
        pairs.push((r, si, sw, ci, cw));
    }
    if pairs.is_empty() {
        return Err(format!(
            "no rule has both backendRefs {stable} and {canary}"
        ));
    }
    Ok(pairs)
}

/// The canary's share, in percent, of the first rule that names both backends.
pub fn canary_weight(route: &Value, stable: &str, canary: &str) -> Result<Weight, String> {
    let pairs = backend_pairs(route, stable, canary)?;
    let &(_, _, sw, _, cw) = pairs
        .first()
        .ok_or_else(|| format!("no rule has both backendRefs {stable} and {canary}"))?;
    Ok(share(sw, cw))
}

/// JSON patch operations setting every rule's stable/canary weights to 100−w / w in one write.
pub fn weight_patch(
    route: &Value,
    stable: &str,
    canary: &str,
    weight: Weight,
) -> Result<Vec<Value>, String> {
    let w = u64::from(weight.percent());
    let entries = backend_pairs(route, stable, canary)?
        .into_iter()
        .flat_map(|(r, si, _, ci, _)| [(r, si, stable, 100 - w), (r, ci, canary, w)])
        .map(|(r, i, name, weight)| WeightEntry {
            at: format!("/spec/rules/{r}/backendRefs/{i}"),
            name_at: "/name",
            name,
            weight,
        });
    Ok(weight_ops(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(sw: Option<u64>, cw: Option<u64>) -> Value {
        let mut s = json!({"name": "checkout", "port": 80});
        let mut c = json!({"name": "checkout-canary", "port": 80});
        if let Some(w) = sw {
            s["weight"] = json!(w);
        }
        if let Some(w) = cw {
            c["weight"] = json!(w);
        }
        json!({"spec": {"rules": [{"backendRefs": [s, c]}]}})
    }

    #[test]
    fn canary_share_is_its_weight_over_the_sum() {
        let w = canary_weight(&route(Some(90), Some(10)), "checkout", "checkout-canary");
        assert_eq!(w, Ok(Weight::clamped(10)));
        let w = canary_weight(&route(Some(1), Some(3)), "checkout", "checkout-canary");
        assert_eq!(w, Ok(Weight::clamped(75)));
    }

    #[test]
    fn missing_weights_count_as_one() {
        let w = canary_weight(&route(None, None), "checkout", "checkout-canary");
        assert_eq!(w, Ok(Weight::clamped(50)));
    }

    #[test]
    fn bad_weights_and_third_backends_are_malformed() {
        let mut r = route(Some(90), Some(10));
        r["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!("ten");
        assert!(
            canary_weight(&r, "checkout", "checkout-canary").is_err_and(|e| e
                .contains("backendRefs[1] (checkout-canary) weight")
                && e.contains("ten"))
        );
        r["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(-1);
        assert!(canary_weight(&r, "checkout", "checkout-canary").is_err());
        let mut r = route(Some(80), Some(10));
        if let Some(refs) = r["spec"]["rules"][0]["backendRefs"].as_array_mut() {
            refs.push(json!({"name": "legacy", "weight": 10}));
        }
        assert!(
            canary_weight(&r, "checkout", "checkout-canary")
                .is_err_and(|e| e.contains("also sends traffic to legacy"))
        );
        assert!(
            weight_patch(&r, "checkout", "checkout-canary", Weight::clamped(30))
                .is_err_and(|e| e.contains("legacy"))
        );
        // A third backendRef without a weight has Gateway API's default of 1.
        r["spec"]["rules"][0]["backendRefs"][2] = json!({"name": "legacy"});
        assert!(
            canary_weight(&r, "checkout", "checkout-canary").is_err_and(|e| e.contains("legacy"))
        );
        // With weight 0 it takes no traffic, and is left alone.
        r["spec"]["rules"][0]["backendRefs"][2]["weight"] = json!(0);
        assert_eq!(
            canary_weight(&r, "checkout", "checkout-canary"),
            Ok(Weight::clamped(11))
        );
    }

    #[test]
    fn route_without_both_backends_is_reported() {
        let err = canary_weight(&route(Some(1), Some(1)), "checkout", "nope");
        assert!(err.is_err_and(|e| e.contains("nope")));
    }

    #[test]
    fn patch_sets_both_weights_and_tests_names() {
        let ops = weight_patch(
            &route(Some(100), Some(0)),
            "checkout",
            "checkout-canary",
            Weight::clamped(30),
        )
        .expect("patch built");
        let mut doc = route(Some(100), Some(0));
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).expect("valid JSON patch");
        json_patch::patch(&mut doc, &patch).expect("patch applies");
        assert_eq!(
            canary_weight(&doc, "checkout", "checkout-canary"),
            Ok(Weight::clamped(30))
        );
        assert_eq!(
            doc.pointer("/spec/rules/0/backendRefs/0/weight"),
            Some(&json!(70))
        );
    }
}
