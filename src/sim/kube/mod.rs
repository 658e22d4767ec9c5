//! The simulated Kubernetes API server: store, HTTP API, controllers, seeding, traffic snapshot.
//! It serves the same wire format a real cluster does; it must not use the console's clients.

mod api;
mod controller;
mod defaults;
mod error;
mod logs;
mod patch;
mod proto;
mod rbac;
mod resources;
mod review;
mod seed;
mod selector;
mod snapshot;
mod store;
mod table;
mod util;
mod watches;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use api::router;

/// Serves the API (without the `/sim` fault routes) on a free loopback port until `cancel`;
/// returns its address. For tests and harnesses; `warroom sim` and the demo use
/// [`crate::sim::server::Simulator`].
pub async fn serve_loopback(
    sim: KubeSim,
    cancel: CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(sim))
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
    Ok(addr)
}
pub use controller::spawn_controllers;
pub use error::ApiError;
pub use rbac::{DenyRule, SIM_USER};
pub use seed::{AppSeed, RouteKind, RouteSeed};

use crate::sim::model::TrafficSnapshot;
use store::Store;

/// Which pods a crash-loop fault hits: those of one Deployment (by its selector), or those of
/// one track (`track` label; pods without one are `stable`), optionally of one app (`app` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashRule {
    Deployment {
        namespace: String,
        deployment: String,
    },
    Track {
        namespace: String,
        service: Option<String>,
        track: String,
    },
}

impl CrashRule {
    fn matches(&self, sim: &KubeSim, pod: &serde_json::Value) -> bool {
        let label = |k: &str| {
            pod.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(serde_json::Value::as_str)
        };
        match self {
            CrashRule::Deployment {
                namespace,
                deployment,
            } => {
                if util::namespace_of(pod) != namespace {
                    return false;
                }
                let Ok(d) = sim
                    .store()
                    .get(&resources::DEPLOYMENTS, namespace, deployment)
                else {
                    return false;
                };
                let Some(wanted) = d
                    .pointer("/spec/selector/matchLabels")
                    .and_then(serde_json::Value::as_object)
                else {
                    return false;
                };
                !wanted.is_empty()
                    && wanted
                        .iter()
                        .all(|(k, v)| v.as_str().is_some_and(|v| label(k) == Some(v)))
            }
            CrashRule::Track {
                namespace,
                service,
                track,
            } => {
                util::namespace_of(pod) == namespace
                    && label("track").unwrap_or("stable") == track
                    && service.as_deref().is_none_or(|s| label("app") == Some(s))
            }
        }
    }
}

/// The tag of an image reference (`repo:tag`), or "" when it has none.
fn tag_of(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "",
    }
}

/// How many changes watches can resume from; older resourceVersions get `410 Gone`.
pub const DEFAULT_EVENT_WINDOW: usize = 10_000;

/// Handle to one simulated cluster. Cheap to clone; all clones share the same state.
///
/// Wiring it up:
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use warroom::sim::kube::{AppSeed, KubeSim, router, spawn_controllers};
/// use tokio_util::sync::CancellationToken;
///
/// let sim = KubeSim::new();
/// let cancel = CancellationToken::new();
/// spawn_controllers(sim.clone(), 1.0, cancel.clone());
/// let seed = AppSeed {
///     namespace: "shop".into(),
///     app: "checkout".into(),
///     stable: "checkout".into(),
///     canary: "checkout-canary".into(),
///     container: "app".into(),
///     stable_image: "registry.example.com/shop/checkout:2.3.0".into(),
///     canary_image: "registry.example.com/shop/checkout:2.4.0".into(),
///     stable_history: Vec::new(),
///     stable_replicas: 4,
///     canary_replicas: 2,
///     route: None,
///     configmaps: Vec::new(),
/// };
/// sim.seed_app(&seed)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let url = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, router(sim)).await });
/// // Point kube::Config::new(url.parse()?) or a kubeconfig's `server:` at `url`.
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KubeSim {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    outage: AtomicBool,
    /// Cancelled when an outage starts, ending the watches open at that moment (as a real API
    /// server going away drops its connections); replaced by a fresh token each time.
    outage_cut: Mutex<CancellationToken>,
    /// Bumped to make every open watch end with a 410 ERROR event.
    expiry: watch::Sender<u64>,
    /// Fired by [`KubeSim::shutdown`]: open streams end so the HTTP server can stop gracefully.
    shutdown: CancellationToken,
    /// Image substrings whose pulls fail (fault injection).
    pull_failures: Mutex<Vec<String>>,
    /// Crash-loop faults by id: matching pods' containers exit soon after each start.
    crash_rules: Mutex<Vec<(u64, CrashRule)>>,
    next_crash_rule: std::sync::atomic::AtomicU64,
    bookmark_every: Duration,
    /// RBAC denials (the `forbidden` fault).
    denials: rbac::Denials,
}

impl Default for KubeSim {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for KubeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSim")
            .field("resource_version", &self.resource_version())
            .finish_non_exhaustive()
    }
}

impl KubeSim {
    pub fn new() -> Self {
        Self::with_event_window(DEFAULT_EVENT_WINDOW)
    }

    /// A cluster whose watch history keeps only the last `window` changes (tests use a small
    /// window to reach `410 Gone` quickly).
    pub fn with_event_window(window: usize) -> Self {
        let (expiry, _) = watch::channel(0);
        let sim = KubeSim {
            inner: Arc::new(Inner {
                store: Store::new(window),
                outage: AtomicBool::new(false),
                outage_cut: Mutex::new(CancellationToken::new()),
                expiry,
                shutdown: CancellationToken::new(),
                pull_failures: Mutex::new(Vec::new()),
                crash_rules: Mutex::new(Vec::new()),
                next_crash_rule: std::sync::atomic::AtomicU64::new(1),
                bookmark_every: Duration::from_secs(5),
                denials: rbac::Denials::default(),
            }),
        };
        seed::bootstrap(&sim);
        sim
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.store().resource_version()
    }

    /// The traffic split the request generator should follow; updated on every change to pods,
    /// Services or traffic objects (HTTPRoutes, VirtualServices, Ingresses, TrafficSplits) that
    /// alters it. The receiver's current value counts as seen, so
    /// read it with `borrow()` before waiting on `changed()`. Pods without an `app` label are
    /// not traffic; pods without a `track` label count as track `stable`. With more than
    /// 200 pods (`SNAPSHOT_EAGER_PODS`) the update waits for the controllers' next tick
    /// (50 ms), so bulk changes cost linear rather than quadratic time.
    pub fn traffic_snapshots(&self) -> watch::Receiver<TrafficSnapshot> {
        self.store().snapshots()
    }

    /// Fault: while on, every endpoint except `/sim/…` answers 503 with a Status, and the
    /// watches open when it starts are closed (without an event), as if the server went away.
    pub fn api_outage(&self, on: bool) {
        let was = self.inner.outage.swap(on, Ordering::SeqCst);
        if on && !was {
            let mut cut = self
                .inner
                .outage_cut
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cut.cancel();
            *cut = CancellationToken::new();
        }
    }

    fn outage_signal(&self) -> CancellationToken {
        self.inner
            .outage_cut
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_api_outage(&self) -> bool {
        self.inner.outage.load(Ordering::SeqCst)
    }

    /// Fault: requests the rule covers get `403 Forbidden` until [`KubeSim::allow`] with the
    /// returned id, as if RBAC lacked the permission.
    pub fn deny(&self, rule: DenyRule) -> u64 {
        self.inner.denials.deny(rule)
    }

    pub fn allow(&self, id: u64) {
        self.inner.denials.allow(id)
    }

    fn denials(&self) -> &rbac::Denials {
        &self.inner.denials
    }

    /// Fault: every open watch receives an ERROR event with `410 Gone` and is closed, as when
    /// the API server's watch cache is reset. Clients must relist.
    pub fn watch_expiry(&self) {
        self.inner.expiry.send_modify(|n| *n += 1);
    }

    /// Fault: containers whose image contains `pattern` cannot be pulled. Their pods stay in
    /// `ErrImagePull` / `ImagePullBackOff` (with the kubelet's Warning events), so a rollout to
    /// such an image stalls and, after `progressDeadlineSeconds`, reports
    /// `ProgressDeadlineExceeded`, as on a real cluster. Pods already running are unaffected.
    pub fn fail_image_pulls(&self, pattern: &str) {
        let mut failures = self
            .inner
            .pull_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !failures.iter().any(|p| p == pattern) {
            failures.push(pattern.to_string());
        }
    }

    /// Ends every image-pull fault; waiting pods start on their next pull retry.
    pub fn heal_image_pulls(&self) {
        self.inner
            .pull_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether pulling `image` fails: a pull fault matches it, or its tag contains `pullfail`.
    fn image_pull_fails(&self, image: &str) -> bool {
        tag_of(image).contains("pullfail")
            || self
                .inner
                .pull_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|p| !p.is_empty() && image.contains(p.as_str()))
    }

    /// Fault: containers of the pods `rule` matches exit with an error shortly after every
    /// start, so they go into `CrashLoopBackOff` with a climbing restart count (and rollouts to
    /// them stall), until [`KubeSim::stop_crashloop`] with the returned id. Images whose tag
    /// contains `crashloop` always behave so.
    pub fn start_crashloop(&self, rule: CrashRule) -> u64 {
        let id = self.inner.next_crash_rule.fetch_add(1, Ordering::SeqCst);
        self.inner
            .crash_rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, rule));
        id
    }

    /// Ends one crash-loop fault; its pods start cleanly on their next restart.
    pub fn stop_crashloop(&self, id: u64) {
        self.inner
            .crash_rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }

    /// Whether `pod`'s containers crash: a crash-loop fault matches it, or one of its images
    /// has a tag containing `crashloop`.
    fn pod_crashes(&self, pod: &serde_json::Value) -> bool {
        let images = pod
            .pointer("/spec/containers")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| util::str_at(c, "/image"));
        if images.into_iter().any(|i| tag_of(i).contains("crashloop")) {
            return true;
        }
        let rules = self
            .inner
            .crash_rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        rules.iter().any(|(_, r)| r.matches(self, pod))
    }

    /// Ends every open watch and `logs -f` stream (cleanly, as a stopping API server does) and
    /// every one opened later, so `axum::serve(..).with_graceful_shutdown(..)` can finish while
    /// clients such as `kubectl get -w` are connected. Called when the controllers' cancellation
    /// token fires.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    fn shutdown_signal(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    fn watch_expiry_signal(&self) -> watch::Receiver<u64> {
        self.inner.expiry.subscribe()
    }

    fn bookmark_interval(&self) -> Duration {
        self.inner.bookmark_every
    }
}
