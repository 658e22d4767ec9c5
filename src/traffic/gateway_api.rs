//! Gateway API router: the canary weight is the share of the canary backendRef in an HTTPRoute.
//! Reads, watches and writes the HTTPRoute; knows nothing of the console.

use kube::Client;
use serde_json::{Value, json};

use super::object::{ObjectRef, ObjectRouter, WeightCodec, share};
use crate::plan::Weight;

/// An HTTPRoute whose rules send traffic to a stable and a canary Service.
pub type GatewayApiRouter = ObjectRouter<HttpRouteWeights>;

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
            ObjectRef::new(
                client,
                ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
                namespace,
                route,
            ),
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

/// The backendRefs weights of every rule naming both backends: (rule index, stable ref index,
/// stable weight, canary ref index, canary weight). A missing weight is 1, as Gateway API says.
fn backend_pairs(spec: &Value, stable: &str, canary: &str) -> Vec<(usize, usize, u64, usize, u64)> {
    let rules = spec
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    rules
        .iter()
        .enumerate()
        .filter_map(|(r, rule)| {
            let refs = rule.get("backendRefs")?.as_array()?;
            let find = |name: &str| {
                refs.iter().enumerate().find_map(|(i, b)| {
                    (b.get("name")?.as_str()? == name)
                        .then(|| (i, b.get("weight").and_then(Value::as_u64).unwrap_or(1)))
                })
            };
            let (si, sw) = find(stable)?;
            let (ci, cw) = find(canary)?;
            Some((r, si, sw, ci, cw))
        })
        .collect()
}

/// The canary's share, in percent, of the first rule that names both backends.
pub fn canary_weight(route: &Value, stable: &str, canary: &str) -> Result<Weight, String> {
    let pairs = backend_pairs(route, stable, canary);
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
    let pairs = backend_pairs(route, stable, canary);
    if pairs.is_empty() {
        return Err(format!(
            "no rule has both backendRefs {stable} and {canary}"
        ));
    }
    let w = u64::from(weight.percent());
    let mut ops = Vec::new();
    for (r, si, _, ci, _) in pairs {
        for (i, name, value) in [(si, stable, 100 - w), (ci, canary, w)] {
            let base = format!("/spec/rules/{r}/backendRefs/{i}");
            ops.push(json!({"op": "test", "path": format!("{base}/name"), "value": name}));
            ops.push(json!({"op": "add", "path": format!("{base}/weight"), "value": value}));
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

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
