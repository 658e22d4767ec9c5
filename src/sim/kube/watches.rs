//! Watches: replay from a resourceVersion, live fan-out, selectors, bookmarks, timeouts, and the
//! 410 endings (expired version, lag, injected expiry). Reads the store; it must not write.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::KubeSim;
use super::api::{Rendering, Target, partial_metadata, selectors, truthy};
use super::error::ApiError;
use super::resources::ResourceDef;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, ChangeKind};
use super::table;
use super::util::str_at;

pub(super) fn watch(
    sim: &KubeSim,
    t: &Target,
    q: &HashMap<String, String>,
    render: Rendering,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(q)?;
    let from = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let bookmarks = truthy(q, "allowWatchBookmarks");
    // Streaming lists: the current state as ADDED events, then a bookmark marking its end.
    let initial_events = q
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true" || v == "1");
    let from = if initial_events { None } else { from };
    let expiry = sim.watch_expiry_signal();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let filter = WatchFilter {
        def: t.def,
        namespace: t.namespace.clone(),
        labels,
        fields,
        render,
    };
    match sim.store().watch(t.def, t.namespace.as_deref(), from) {
        Ok(start) => {
            tokio::spawn(run_watch(
                filter,
                start,
                tx,
                WatchOptions {
                    timeout,
                    bookmarks,
                    bookmark_every: sim.bookmark_interval(),
                    expiry,
                    shutdown: sim.shutdown_signal(),
                    outage: sim.outage_signal(),
                    initial_events,
                },
            ));
        }
        // The real server answers a too-old version with 200 and a single ERROR event.
        Err(e @ ApiError::Gone { .. }) => {
            let line = error_event(&e);
            tokio::spawn(async move {
                let _ = tx.send(line).await;
            });
        }
        Err(e) => return Err(e),
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let content_type = match render {
        Rendering::Full => "application/json",
        Rendering::Table(_) => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Rendering::Metadata => "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        // Static, valid header values: building the response cannot fail.
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

struct WatchFilter {
    def: &'static ResourceDef,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    render: Rendering,
}

struct WatchOptions {
    timeout: Option<Duration>,
    bookmarks: bool,
    bookmark_every: Duration,
    expiry: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio_util::sync::CancellationToken,
    /// Fires when an API outage starts: the stream ends as a dropped connection would.
    outage: tokio_util::sync::CancellationToken,
    initial_events: bool,
}

impl WatchFilter {
    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event type this watch reports for a change, if any: an object moving out of the
    /// selector is DELETED for this watcher, one moving in is ADDED.
    fn event_type(&self, c: &Change) -> Option<&'static str> {
        if c.def != self.def || self.namespace.as_ref().is_some_and(|ns| *ns != c.namespace) {
            return None;
        }
        let now = self.selects(&c.object);
        match c.kind {
            ChangeKind::Added | ChangeKind::Deleted => now.then(|| c.kind.as_str()),
            ChangeKind::Modified => {
                let before = c.previous.as_ref().is_none_or(|p| self.selects(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }

    fn render(&self, obj: &Value, first: &mut bool) -> Value {
        match self.render {
            Rendering::Full => obj.clone(),
            Rendering::Metadata => partial_metadata(obj),
            Rendering::Table(include) => {
                let rv = str_at(obj, "/metadata/resourceVersion")
                    .unwrap_or_default()
                    .to_string();
                let t = table::render(self.def, std::slice::from_ref(obj), &rv, include, *first);
                *first = false;
                t
            }
        }
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.status()}))
}

async fn run_watch(
    filter: WatchFilter,
    start: super::store::WatchStart,
    tx: mpsc::Sender<Bytes>,
    mut opts: WatchOptions,
) {
    let mut first = true;
    let mut last_rv = start.rv;
    for c in &start.replay {
        if let Some(ty) = filter.event_type(c) {
            let obj = filter.render(&c.object, &mut first);
            if tx
                .send(line(&json!({"type": ty, "object": obj})))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    if opts.initial_events {
        let obj = json!({
            "kind": filter.def.kind,
            "apiVersion": filter.def.api_version(),
            "metadata": {
                "resourceVersion": start.rv.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        });
        if tx
            .send(line(&json!({"type": "BOOKMARK", "object": obj})))
            .await
            .is_err()
        {
            return;
        }
    }
    let mut live: broadcast::Receiver<Arc<Change>> = start.live;
    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut bookmark = tokio::time::interval(opts.bookmark_every);
    bookmark.tick().await;
    loop {
        let sleep_until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            received = live.recv() => match received {
                Ok(c) => {
                    last_rv = last_rv.max(c.rv);
                    if let Some(ty) = filter.event_type(&c) {
                        let obj = filter.render(&c.object, &mut first);
                        if tx.send(line(&json!({"type": ty, "object": obj}))).await.is_err() {
                            return;
                        }
                    }
                }
                // A watcher too slow for the fan-out has lost events; tell it to relist.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(error_event(&ApiError::Gone { requested: last_rv, oldest: last_rv + 1 })).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = bookmark.tick(), if opts.bookmarks => {
                let obj = json!({
                    "kind": filter.def.kind,
                    "apiVersion": filter.def.api_version(),
                    "metadata": {"resourceVersion": last_rv.to_string()},
                });
                if tx.send(line(&json!({"type": "BOOKMARK", "object": obj}))).await.is_err() {
                    return;
                }
            }
            changed = opts.expiry.changed() => {
                if changed.is_ok() {
                    let _ = tx.send(error_event(&ApiError::Gone { requested: last_rv, oldest: last_rv + 1 })).await;
                }
                return;
            }
            _ = sleep_until_deadline => return,
            _ = opts.shutdown.cancelled() => return,
            _ = opts.outage.cancelled() => return,
            _ = tx.closed() => return,
        }
    }
}
