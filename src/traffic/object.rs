//! What the routers share: one named object read, JSON-patched and watched through the dynamic
//! API, with errors worded for the console, and the router that keeps the weight in one object.
//! Each router file only says how its object encodes the weight ([`WeightCodec`]).

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{RouterError, TrafficRouter};
use crate::cluster::client::{WatchFailure, explain, is_forbidden};
use crate::plan::Weight;

/// One namespaced object of one resource type, by name.
#[derive(Clone)]
pub struct ObjectRef {
    api: Api<DynamicObject>,
    namespace: String,
    name: String,
    /// `httproutes.gateway.networking.k8s.io`, as kubectl and the API server name it.
    resource: String,
}

/// The API type a router keeps its weight in; the one table the routers and the preflight
/// read it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// What messages call it: `httproute`.
    pub noun: &'static str,
}

impl ObjectKind {
    /// Group, version, kind and plural, as [`ObjectRef::new`] takes them.
    pub fn gvk(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        (self.group, self.version, self.kind, self.plural)
    }
}

impl ObjectRef {
    pub fn new(
        client: Client,
        (group, version, kind, plural): (&str, &str, &str, &str),
        namespace: &str,
        name: &str,
    ) -> ObjectRef {
        let mut ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        ar.plural = plural.to_string();
        ObjectRef {
            api: Api::namespaced_with(client, namespace, &ar),
            namespace: namespace.to_string(),
            name: name.to_string(),
            resource: if group.is_empty() {
                plural.to_string()
            } else {
                format!("{plural}.{group}")
            },
        }
    }

    /// `httproutes.gateway.networking.k8s.io shop/checkout`: what error messages name.
    pub fn object(&self) -> String {
        format!("{} {}/{}", self.resource, self.namespace, self.name)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn malformed(&self, why: String) -> RouterError {
        RouterError::Malformed {
            object: self.object(),
            why,
        }
    }

    /// The whole object (apiVersion, kind, metadata and the rest) as JSON.
    pub async fn read(&self) -> Result<Value, RouterError> {
        let obj = self
            .api
            .get(&self.name)
            .await
            .map_err(|e| api_error(&e, "get", &self.object()))?;
        serde_json::to_value(&obj).map_err(|e| self.malformed(e.to_string()))
    }

    /// Applies `ops` (a JSON patch, normally with `test` ops guarding what it rewrites) to the
    /// object as last read. Sends nothing when the patch would not change `current`, so writing
    /// the value already there leaves the resourceVersion alone. A version conflict (409) or a
    /// patch the server could not apply (a failed `test`, see [`is_failed_test`]) is
    /// [`RouterError::Conflict`]: the object moved since `current`. Any other refusal, other
    /// 422s (schema or CEL validation) included, is [`RouterError::Api`] with the server's
    /// message.
    pub async fn json_patch(&self, current: &Value, ops: Vec<Value>) -> Result<(), RouterError> {
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))
            .map_err(|e| self.malformed(format!("cannot build the patch: {e}")))?;
        let mut after = current.clone();
        if json_patch::patch(&mut after, &patch.0).is_ok() && after == *current {
            return Ok(());
        }
        self.api
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Json::<()>(patch),
            )
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 409 || is_failed_test(s.code, &s.message) => {
                    RouterError::Conflict(explain(&e, "patch", &self.object()))
                }
                _ => api_error(&e, "patch", &self.object()),
            })?;
        Ok(())
    }

    /// The object as it changes: every applied version (the first one on start and after each
    /// relist), as JSON. Errors are reported and the watch goes on with backoff.
    pub fn watch(&self) -> BoxStream<'static, Result<Value, RouterError>> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let object = self.object();
        // Whether the current (re)list has shown the object.
        let mut listed = false;
        watcher(self.api.clone(), config)
            .default_backoff()
            .filter_map(move |event| {
                if matches!(event, Ok(watcher::Event::InitApply(_))) {
                    listed = true;
                }
                let result = match event {
                    Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => Some(
                        serde_json::to_value(&o).map_err(|e| RouterError::Malformed {
                            object: object.clone(),
                            why: e.to_string(),
                        }),
                    ),
                    // The watch selects this one object by name, so a Delete is of it: the
                    // weight last seen is no longer routed by anything.
                    Ok(watcher::Event::Delete(_)) => {
                        Some(Err(RouterError::Api(format!("{object} was deleted"))))
                    }
                    Ok(watcher::Event::Init) => {
                        listed = false;
                        None
                    }
                    // A (re)list that found nothing: gone while the watch was down, or never
                    // there.
                    Ok(watcher::Event::InitDone) if !listed => {
                        Some(Err(RouterError::Api(format!("{object} does not exist"))))
                    }
                    Ok(watcher::Event::InitDone) => None,
                    Err(e) => match WatchFailure::of(e) {
                        WatchFailure::Expired => None,
                        WatchFailure::Api(e) => Some(Err(api_error(&e, "watch", &object))),
                        WatchFailure::Other(why) => {
                            Some(Err(RouterError::Api(format!("watch of {object}: {why}"))))
                        }
                    },
                };
                futures::future::ready(result)
            })
            .boxed()
    }
}

/// Runs `attempt`, and once more when it reports a [`RouterError::Conflict`]: the object changed
/// between our read and our write, so reading it again and retrying is safe. A second conflict
/// is reported as it is.
pub async fn retry_on_conflict<F, Fut>(mut attempt: F) -> Result<(), RouterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), RouterError>>,
{
    match attempt().await {
        Err(RouterError::Conflict(_)) => attempt().await,
        other => other,
    }
}

/// How one kind of traffic object holds the canary weight. Pure functions of the object's JSON;
/// a message in `Err` says what is wrong with the object (the caller names the object).
pub trait WeightCodec: Send + Sync + 'static {
    /// The canary weight the object gives.
    fn weight(&self, obj: &Value) -> Result<Weight, String>;
    /// JSON patch operations that set the canary weight (stable gets the rest) in one write,
    /// with `test` operations on what locates the entries they rewrite.
    fn patch(&self, obj: &Value, weight: Weight) -> Result<Vec<Value>, String>;
}

/// A router whose weight lives in one object: reads it, writes it with one JSON patch (retried
/// once on conflict), watches it.
pub struct ObjectRouter<C> {
    target: ObjectRef,
    /// `HTTPRoute`, `VirtualService`, … for [`TrafficRouter::describe`].
    kind: &'static str,
    codec: Arc<C>,
}

impl<C: WeightCodec> ObjectRouter<C> {
    pub fn with_codec(target: ObjectRef, kind: &'static str, codec: C) -> ObjectRouter<C> {
        ObjectRouter {
            target,
            kind,
            codec: Arc::new(codec),
        }
    }

    /// The object's resource name and `namespace/name`, as error messages give it.
    pub fn object(&self) -> String {
        self.target.object()
    }

    async fn write(&self, weight: Weight) -> Result<(), RouterError> {
        let current = self.target.read().await?;
        let ops = self
            .codec
            .patch(&current, weight)
            .map_err(|why| self.target.malformed(why))?;
        self.target.json_patch(&current, ops).await
    }
}

impl<C: WeightCodec> TrafficRouter for ObjectRouter<C> {
    fn describe(&self) -> String {
        format!(
            "{} {}/{}",
            self.kind,
            self.target.namespace(),
            self.target.name()
        )
    }

    fn weight(&self) -> BoxFuture<'_, Result<Weight, RouterError>> {
        async move {
            let obj = self.target.read().await?;
            self.codec
                .weight(&obj)
                .map_err(|why| self.target.malformed(why))
        }
        .boxed()
    }

    fn set_weight(&self, weight: Weight) -> BoxFuture<'_, Result<(), RouterError>> {
        retry_on_conflict(move || self.write(weight)).boxed()
    }

    fn watch(&self) -> BoxStream<'static, Result<Weight, RouterError>> {
        let codec = self.codec.clone();
        let target = self.target.clone();
        self.target
            .watch()
            .map(move |item| {
                item.and_then(|obj| codec.weight(&obj).map_err(|why| target.malformed(why)))
            })
            .boxed()
    }
}

/// A kube error as a router error, worded by [`explain`]: refusals of credentials or
/// permissions (401/403) apart, since retrying them is pointless.
fn api_error(e: &kube::Error, verb: &str, object: &str) -> RouterError {
    let message = explain(e, verb, object);
    if is_forbidden(e) {
        RouterError::Refused(message)
    } else {
        RouterError::Api(message)
    }
}

/// The message kube-apiserver gives every JSON patch it cannot apply, a failed `test` among
/// them (it drops the patch library's own error from the response).
const PATCH_NOT_APPLIED: &str = "the server rejected our request due to an error in our request";

/// Whether a refused JSON patch failed a `test` op (or could not be applied at all, which for a
/// patch built from our last read means the same: the object is no longer what we read).
/// Only 422s whose message says so: kube-apiserver's generic message, the
/// `testing value /path failed` of the patch library some servers pass on, or the simulator's
/// `value did not match`. Other 422s (schema or CEL validation: `HTTPRoute "x" is invalid:
/// ...`) are not conflicts; retrying them would only fail again.
pub fn is_failed_test(code: u16, message: &str) -> bool {
    let message = message.trim();
    code == 422
        && (message == PATCH_NOT_APPLIED
            || (message.contains("testing value") && message.contains("failed"))
            || message.contains("value did not match"))
}

/// One weighted entry of a list a weight patch rewrites (a backendRef, a route destination, a
/// TrafficSplit backend).
pub struct WeightEntry<'a> {
    /// JSON pointer of the entry: `/spec/rules/0/backendRefs/1`.
    pub at: String,
    /// Pointer, under the entry, of what names it: `/name`, `/destination/host`.
    pub name_at: &'static str,
    /// The name read there.
    pub name: &'a str,
    /// The weight it gets.
    pub weight: u64,
}

/// For each entry, a `test` that it is still named as read, then an `add` (set) of its weight:
/// a list reordered or edited since the read fails the patch instead of getting weights on the
/// wrong entries.
pub fn weight_ops<'a>(entries: impl IntoIterator<Item = WeightEntry<'a>>) -> Vec<Value> {
    let mut ops = Vec::new();
    for e in entries {
        ops.push(json!({"op": "test", "path": format!("{}{}", e.at, e.name_at), "value": e.name}));
        ops.push(json!({"op": "add", "path": format!("{}/weight", e.at), "value": e.weight}));
    }
    ops
}

/// Refuses a list where entries other than the stable and canary backends (`others`, by name)
/// have weight: the router would move only part of the traffic and read a share that is not
/// what the canary gets.
pub fn only_stable_and_canary(list: &str, others: &[String]) -> Result<(), String> {
    if others.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{list} also sends traffic to {}; only the stable and canary backends may have weight",
        others.join(", ")
    ))
}

/// `s / (s + c)` of the canary, in percent rounded to nearest; 0 when both are 0.
pub fn share(stable: u64, canary: u64) -> Weight {
    if stable == 0 && canary == 0 {
        return Weight::ZERO;
    }
    let total = stable as f64 + canary as f64;
    Weight::clamped((canary as f64 * 100.0 / total).round() as i64)
}

/// A JSON pointer segment for a map key (`/` and `~` escaped).
pub fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_rounds_to_nearest_and_survives_zero() {
        assert_eq!(share(0, 0), Weight::ZERO);
        assert_eq!(share(2, 1), Weight::clamped(33));
        assert_eq!(share(1, 2), Weight::clamped(67));
        assert_eq!(share(0, 5), Weight::FULL);
        assert_eq!(share(u64::MAX, u64::MAX), Weight::clamped(50));
    }

    #[test]
    fn only_a_failed_test_op_is_a_conflict() {
        // kube-apiserver, any JSON patch it could not apply.
        assert!(is_failed_test(
            422,
            "the server rejected our request due to an error in our request"
        ));
        // The patch library's error, where a server passes it on.
        assert!(is_failed_test(
            422,
            "testing value /spec/rules/0/backendRefs/1/name failed: test failed"
        ));
        // The simulator.
        assert!(is_failed_test(
            422,
            "the JSON patch could not be applied: operation '/0' failed at path '/spec/replicas': value did not match"
        ));
        // Schema and CEL validation are refusals, not conflicts.
        assert!(!is_failed_test(
            422,
            "HTTPRoute.gateway.networking.k8s.io \"checkout\" is invalid: spec.rules[0].backendRefs[0].weight: Invalid value: 2000000: spec.rules[0].backendRefs[0].weight in body should be less than or equal to 1000000"
        ));
        assert!(!is_failed_test(
            422,
            "VirtualService.networking.istio.io \"checkout\" is invalid: spec: Invalid value: \"object\": total weight must be 100"
        ));
        // The same words with another code are not a failed test.
        assert!(!is_failed_test(
            400,
            "the server rejected our request due to an error in our request"
        ));
    }

    #[test]
    fn weight_ops_test_each_name_then_set_its_weight() {
        let ops = weight_ops([
            WeightEntry {
                at: "/spec/backends/0".into(),
                name_at: "/service",
                name: "checkout",
                weight: 70,
            },
            WeightEntry {
                at: "/spec/backends/1".into(),
                name_at: "/service",
                name: "checkout-canary",
                weight: 30,
            },
        ]);
        assert_eq!(
            ops,
            vec![
                json!({"op": "test", "path": "/spec/backends/0/service", "value": "checkout"}),
                json!({"op": "add", "path": "/spec/backends/0/weight", "value": 70}),
                json!({"op": "test", "path": "/spec/backends/1/service", "value": "checkout-canary"}),
                json!({"op": "add", "path": "/spec/backends/1/weight", "value": 30}),
            ]
        );
        assert_eq!(only_stable_and_canary("spec.backends", &[]), Ok(()));
        assert!(
            only_stable_and_canary("spec.backends", &["legacy".into()])
                .is_err_and(|e| e.contains("spec.backends also sends traffic to legacy"))
        );
    }

    #[test]
    fn pointer_keys_are_escaped() {
        assert_eq!(
            pointer_key("nginx.ingress.kubernetes.io/canary"),
            "nginx.ingress.kubernetes.io~1canary"
        );
        assert_eq!(pointer_key("a~b"), "a~0b");
    }

    #[tokio::test]
    async fn conflict_is_retried_once_and_other_errors_are_not() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retry_on_conflict(|| {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(RouterError::Conflict("moved".into()))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retry_on_conflict(|| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(RouterError::Conflict("moved".into())) }
        })
        .await;
        assert!(matches!(result, Err(RouterError::Conflict(_))));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retry_on_conflict(|| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(RouterError::Api("down".into())) }
        })
        .await;
        assert!(matches!(result, Err(RouterError::Api(_))));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
