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
use serde_json::Value;

use super::{RouterError, TrafficRouter};
use crate::cluster::client::explain;
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
            .map_err(|e| RouterError::Api(explain(&e, "get", &self.object())))?;
        serde_json::to_value(&obj).map_err(|e| self.malformed(e.to_string()))
    }

    /// Applies `ops` (a JSON patch, normally with `test` ops guarding what it rewrites) to the
    /// object as last read. Sends nothing when the patch would not change `current`, so writing
    /// the value already there leaves the resourceVersion alone. A failed `test` (422) or a
    /// version conflict (409) is [`RouterError::Conflict`]: the object moved since `current`.
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
            .map_err(|e| {
                let message = explain(&e, "patch", &self.object());
                if matches!(&e, kube::Error::Api(s) if s.code == 409 || s.code == 422) {
                    RouterError::Conflict(message)
                } else {
                    RouterError::Api(message)
                }
            })?;
        Ok(())
    }

    /// The object as it changes: every applied version (the first one on start and after each
    /// relist), as JSON. Errors are reported and the watch goes on with backoff.
    pub fn watch(&self) -> BoxStream<'static, Result<Value, RouterError>> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let object = self.object();
        watcher(self.api.clone(), config)
            .default_backoff()
            .filter_map(move |event| {
                let result = match event {
                    Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => Some(
                        serde_json::to_value(&o).map_err(|e| RouterError::Malformed {
                            object: object.clone(),
                            why: e.to_string(),
                        }),
                    ),
                    Ok(_) => None,
                    Err(e) => Some(Err(RouterError::Api(format!("watch of {object}: {e}")))),
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
