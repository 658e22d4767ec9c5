//! Istio router: the canary weight is the canary destination's `weight` in a VirtualService
//! (`networking.istio.io/v1`, `spec.http[].route[]`). Reads, watches and writes it in one JSON
//! patch; knows nothing of the console.
//!
//! Destinations are matched by `destination.host` against the plan's Service names: the short
//! name (`checkout`) or the name qualified with the VirtualService's namespace (`checkout.shop`,
//! `checkout.shop.svc`, `checkout.shop.svc.cluster.local`). A `subset` is left as it is and
//! not looked at, so a split between two subsets of one host (stable and canary behind one
//! Service) is not supported: such a route is reported as malformed.

use kube::Client;
use serde_json::Value;

use super::object::{
    ObjectKind, ObjectRef, ObjectRouter, WeightCodec, WeightEntry, only_stable_and_canary, share,
    weight_ops,
};
use crate::plan::Weight;

/// A VirtualService whose http routes split traffic between a stable and a canary Service.
pub type IstioRouter = ObjectRouter<VirtualServiceWeights>;

/// The VirtualService the weight is kept in.
pub const OBJECT: ObjectKind = ObjectKind {
    group: "networking.istio.io",
    version: "v1",
    kind: "VirtualService",
    plural: "virtualservices",
    noun: "virtualservice",
};

/// The stable and canary Services, and the namespace that qualifies their host names.
pub struct VirtualServiceWeights {
    namespace: String,
    stable_backend: String,
    canary_backend: String,
}

impl IstioRouter {
    pub fn new(
        client: Client,
        namespace: &str,
        virtual_service: &str,
        stable_backend: &str,
        canary_backend: &str,
    ) -> IstioRouter {
        ObjectRouter::with_codec(
            ObjectRef::new(client, OBJECT.gvk(), namespace, virtual_service),
            "VirtualService",
            VirtualServiceWeights {
                namespace: namespace.to_string(),
                stable_backend: stable_backend.to_string(),
                canary_backend: canary_backend.to_string(),
            },
        )
    }
}

/// Whether a destination `host` names Service `service` of `namespace`.
pub fn host_is(host: &str, service: &str, namespace: &str) -> bool {
    let Some(rest) = host.strip_prefix(service) else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('.')
            .and_then(|r| r.strip_prefix(namespace))
            .is_some_and(|r| r.is_empty() || r == ".svc" || r == ".svc.cluster.local")
}

/// One http route naming both Services: its index, and (route entry index, host, weight) of
/// the stable and the canary destination.
type Pair = (usize, (usize, String, u64), (usize, String, u64));

impl VirtualServiceWeights {
    fn pairs(&self, vs: &Value) -> Result<Vec<Pair>, String> {
        let (stable, canary, ns) = (&self.stable_backend, &self.canary_backend, &self.namespace);
        if host_is(stable, canary, ns) || host_is(canary, stable, ns) {
            return Err(format!(
                "stable and canary backends are the same Service ({stable}); splits between subsets of one host are not supported"
            ));
        }
        let Some(http) = vs.pointer("/spec/http") else {
            return Err("spec.http is missing".into());
        };
        let http = http
            .as_array()
            .ok_or_else(|| "spec.http is not a list".to_string())?;
        let mut pairs = Vec::new();
        for (i, entry) in http.iter().enumerate() {
            let Some(routes) = entry.get("route").and_then(Value::as_array) else {
                continue;
            };
            let mut found: [Vec<(usize, String, u64)>; 2] = [Vec::new(), Vec::new()];
            let mut others = Vec::new();
            for (j, route) in routes.iter().enumerate() {
                let Some(host) = route.pointer("/destination/host").and_then(Value::as_str) else {
                    return Err(format!("spec.http[{i}].route[{j}] has no destination.host"));
                };
                // Istio: a lone destination takes everything; otherwise a missing weight is 0.
                let weight = match route.get("weight") {
                    None | Some(Value::Null) => {
                        if routes.len() == 1 {
                            100
                        } else {
                            0
                        }
                    }
                    Some(w) => w.as_u64().ok_or_else(|| {
                        format!("spec.http[{i}].route[{j}].weight is not a whole number: {w}")
                    })?,
                };
                if host_is(host, stable, ns) {
                    found[0].push((j, host.to_string(), weight));
                } else if host_is(host, canary, ns) {
                    found[1].push((j, host.to_string(), weight));
                } else if weight > 0 {
                    others.push(host.to_string());
                }
            }
            let [s, c] = found;
            if s.is_empty() || c.is_empty() {
                continue;
            }
            if s.len() > 1 || c.len() > 1 {
                return Err(format!(
                    "spec.http[{i}].route has several destinations for one backend (subsets are not supported)"
                ));
            }
            only_stable_and_canary(&format!("spec.http[{i}].route"), &others)?;
            let (Some(s), Some(c)) = (s.into_iter().next(), c.into_iter().next()) else {
                continue;
            };
            pairs.push((i, s, c));
        }
        if pairs.is_empty() {
            return Err(format!(
                "no http route has destinations for both {stable} and {canary}"
            ));
        }
        Ok(pairs)
    }
}

impl WeightCodec for VirtualServiceWeights {
    /// The canary's share in the first http route naming both backends.
    fn weight(&self, vs: &Value) -> Result<Weight, String> {
        let pairs = self.pairs(vs)?;
        let (_, (_, _, sw), (_, _, cw)) = pairs
            .first()
            .ok_or_else(|| "no http route names both backends".to_string())?;
        Ok(share(*sw, *cw))
    }

    /// Every http route naming both backends gets 100−w / w; each rewritten entry's host is
    /// tested, so a route reordered since the read fails the patch instead.
    fn patch(&self, vs: &Value, weight: Weight) -> Result<Vec<Value>, String> {
        let w = u64::from(weight.percent());
        let mut entries = Vec::new();
        for (i, (sj, shost, _), (cj, chost, _)) in self.pairs(vs)? {
            entries.push((format!("/spec/http/{i}/route/{sj}"), shost, 100 - w));
            entries.push((format!("/spec/http/{i}/route/{cj}"), chost, w));
        }
        Ok(weight_ops(entries.iter().map(|(at, host, weight)| {
            WeightEntry {
                at: at.clone(),
                name_at: "/destination/host",
                name: host,
                weight: *weight,
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codec() -> VirtualServiceWeights {
        VirtualServiceWeights {
            namespace: "shop".into(),
            stable_backend: "checkout".into(),
            canary_backend: "checkout-canary".into(),
        }
    }

    fn vs(stable_host: &str, sw: Option<u64>, cw: Option<u64>) -> Value {
        let mut s = json!({"destination": {"host": stable_host, "port": {"number": 80}}});
        let mut c = json!({"destination": {"host": "checkout-canary", "subset": "v2"}});
        if let Some(w) = sw {
            s["weight"] = json!(w);
        }
        if let Some(w) = cw {
            c["weight"] = json!(w);
        }
        json!({"spec": {"hosts": ["checkout"], "http": [
            {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": [{"destination": {"host": "checkout-canary"}}]},
            {"route": [s, c]},
        ]}})
    }

    #[test]
    fn hosts_match_short_and_namespace_qualified_names() {
        for host in [
            "checkout",
            "checkout.shop",
            "checkout.shop.svc",
            "checkout.shop.svc.cluster.local",
        ] {
            assert!(host_is(host, "checkout", "shop"), "{host}");
        }
        for host in [
            "checkout-canary",
            "checkout.other",
            "checkout.shop.svc.example",
            "check",
        ] {
            assert!(!host_is(host, "checkout", "shop"), "{host}");
        }
    }

    #[test]
    fn weight_is_the_canary_share_of_the_route_naming_both() {
        let w = codec().weight(&vs("checkout.shop.svc.cluster.local", Some(75), Some(25)));
        assert_eq!(w, Ok(Weight::clamped(25)));
        assert_eq!(
            codec().weight(&vs("checkout", None, None)),
            Ok(Weight::ZERO)
        );
    }

    #[test]
    fn patch_sets_both_weights_and_tests_hosts() {
        let doc = vs("checkout.shop", Some(100), Some(0));
        let ops = codec().patch(&doc, Weight::clamped(30)).expect("ops");
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops.clone())).expect("patch");
        let mut after = doc.clone();
        json_patch::patch(&mut after, &patch).expect("applies");
        assert_eq!(codec().weight(&after), Ok(Weight::clamped(30)));
        assert_eq!(
            after.pointer("/spec/http/1/route/0/weight"),
            Some(&json!(70))
        );
        assert_eq!(
            after.pointer("/spec/http/1/route/1/destination/subset"),
            Some(&json!("v2"))
        );
        // The same patch on a route whose destinations were swapped meanwhile fails.
        let mut swapped = doc.clone();
        if let Some(r) = swapped
            .pointer_mut("/spec/http/1/route")
            .and_then(Value::as_array_mut)
        {
            r.swap(0, 1);
        }
        assert!(json_patch::patch(&mut swapped, &patch).is_err());
    }

    #[test]
    fn malformed_routes_are_reported_not_panicked_on() {
        let c = codec();
        assert!(c.weight(&json!({})).is_err_and(|e| e.contains("spec.http")));
        assert!(
            c.weight(&json!({"spec": {"http": "x"}}))
                .is_err_and(|e| e.contains("not a list"))
        );
        let no_host = json!({"spec": {"http": [{"route": [{"destination": {}}]}]}});
        assert!(
            c.weight(&no_host)
                .is_err_and(|e| e.contains("destination.host"))
        );
        let only_stable =
            json!({"spec": {"http": [{"route": [{"destination": {"host": "checkout"}}]}]}});
        assert!(
            c.weight(&only_stable)
                .is_err_and(|e| e.contains("checkout-canary"))
        );
        let third = json!({"spec": {"http": [{"route": [
            {"destination": {"host": "checkout"}, "weight": 50},
            {"destination": {"host": "checkout-canary"}, "weight": 25},
            {"destination": {"host": "legacy"}, "weight": 25}]}]}});
        assert!(c.weight(&third).is_err_and(|e| e.contains("legacy")));
        let bad_weight = json!({"spec": {"http": [{"route": [
            {"destination": {"host": "checkout"}, "weight": "ten"},
            {"destination": {"host": "checkout-canary"}}]}]}});
        assert!(c.weight(&bad_weight).is_err_and(|e| e.contains("weight")));
        let subsets = json!({"spec": {"http": [{"route": [
            {"destination": {"host": "checkout", "subset": "v1"}, "weight": 90},
            {"destination": {"host": "checkout", "subset": "v2"}, "weight": 10},
            {"destination": {"host": "checkout-canary"}, "weight": 0}]}]}});
        assert!(c.weight(&subsets).is_err_and(|e| e.contains("subsets")));
    }
}
