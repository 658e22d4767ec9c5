//! Gateway API router: the canary weight is the share of the canary backendRef in an HTTPRoute.
//! Reads, watches and writes the HTTPRoute; knows nothing of the console.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{RouterError, TrafficRouter};
use crate::cluster::client::explain;
use crate::plan::Weight;

/// An HTTPRoute whose rules send traffic to a stable and a canary Service.
#[derive(Clone)]
pub struct GatewayApiRouter {
    api: Api<DynamicObject>,
    namespace: String,
    route: String,
    stable_backend: String,
    canary_backend: String,
}

fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
    ))
}

impl GatewayApiRouter {
    pub fn new(
        client: Client,
        namespace: &str,
        route: &str,
        stable_backend: &str,
        canary_backend: &str,
    ) -> GatewayApiRouter {
        GatewayApiRouter {
            api: Api::namespaced_with(client, namespace, &http_route_resource()),
            namespace: namespace.to_string(),
            route: route.to_string(),
            stable_backend: stable_backend.to_string(),
            canary_backend: canary_backend.to_string(),
        }
    }

    fn object(&self) -> String {
        format!(
            "httproutes.gateway.networking.k8s.io {}/{}",
            self.namespace, self.route
        )
    }

    async fn read(&self) -> Result<DynamicObject, RouterError> {
        self.api
            .get(&self.route)
            .await
            .map_err(|e| RouterError::Api(explain(&e, "get", &self.object())))
    }

    async fn write(&self, weight: Weight) -> Result<(), RouterError> {
        let route = self.read().await?;
        let ops = weight_patch(
            &route.data,
            &self.stable_backend,
            &self.canary_backend,
            weight,
        )
        .map_err(|why| RouterError::Malformed {
            object: self.object(),
            why,
        })?;
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).map_err(|e| RouterError::Malformed {
                object: self.object(),
                why: e.to_string(),
            })?;
        self.api
            .patch(
                &self.route,
                &PatchParams::default(),
                &Patch::Json::<()>(patch),
            )
            .await
            .map_err(|e| {
                let message = explain(&e, "patch", &self.object());
                // 422 is a failed `test` op: a backendRef moved since we read the route.
                if matches!(&e, kube::Error::Api(s) if s.code == 409 || s.code == 422) {
                    RouterError::Conflict(message)
                } else {
                    RouterError::Api(message)
                }
            })?;
        Ok(())
    }
}

impl TrafficRouter for GatewayApiRouter {
    fn describe(&self) -> String {
        format!("HTTPRoute {}/{}", self.namespace, self.route)
    }

    fn weight(&self) -> BoxFuture<'_, Result<Weight, RouterError>> {
        async move {
            let route = self.read().await?;
            canary_weight(&route.data, &self.stable_backend, &self.canary_backend).map_err(|why| {
                RouterError::Malformed {
                    object: self.object(),
                    why,
                }
            })
        }
        .boxed()
    }

    fn set_weight(&self, weight: Weight) -> BoxFuture<'_, Result<(), RouterError>> {
        async move {
            // The JSON patch tests the backend names it rewrites, so a route edited between our
            // read and our write fails the patch instead of getting weights on the wrong refs.
            match self.write(weight).await {
                Err(RouterError::Conflict(_)) => self.write(weight).await,
                other => other,
            }
        }
        .boxed()
    }

    fn watch(&self) -> BoxStream<'static, Result<Weight, RouterError>> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.route));
        let stable = self.stable_backend.clone();
        let canary = self.canary_backend.clone();
        let object = self.object();
        watcher(self.api.clone(), config)
            .default_backoff()
            .filter_map(move |event| {
                let result = match event {
                    Ok(watcher::Event::Apply(route)) | Ok(watcher::Event::InitApply(route)) => {
                        Some(canary_weight(&route.data, &stable, &canary).map_err(|why| {
                            RouterError::Malformed {
                                object: object.clone(),
                                why,
                            }
                        }))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(RouterError::Api(format!("watch of {object}: {e}")))),
                };
                futures::future::ready(result)
            })
            .boxed()
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
    if sw + cw == 0 {
        return Ok(Weight::ZERO);
    }
    let percent = (cw as f64 * 100.0 / (sw + cw) as f64).round() as i64;
    Ok(Weight::clamped(percent))
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
