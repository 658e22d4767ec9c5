//! Starting the whole simulator on loopback: Kubernetes API, Prometheus API, /metrics,
//! controllers and traffic, seeded from a plan. Wiring only; each part lives in its own module.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::kube::{AppSeed, KubeSim, RouteKind, RouteSeed};
use super::tsdb::{Tsdb, TsdbConfig};
use super::{exposition, faults, kubeconfig, prom_api, traffic};
use crate::plan::{Plan, Router, Step};

/// A running simulator. Dropping it (or [`Simulator::shutdown`]) stops it and removes the
/// kubeconfig it wrote in its own temporary directory.
pub struct Simulator {
    pub kubernetes: String,
    pub prometheus: String,
    pub metrics: String,
    pub kubeconfig: PathBuf,
    pub kube: KubeSim,
    pub tsdb: Tsdb,
    /// Switches for Prometheus faults (outage, slow answers).
    pub prom_faults: prom_api::PromFaults,
    /// Per-track error and latency overrides, for drills.
    pub traffic: traffic::TrafficControl,
    /// The drills behind `POST {kubernetes}/sim/faults`.
    pub faults: faults::Faults,
    cancel: CancellationToken,
    own_dir: Option<PathBuf>,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {why}")]
    Listen { addr: String, why: String },
    #[error("cannot write kubeconfig {path}: {why}")]
    Kubeconfig { path: String, why: String },
    #[error("cannot seed the simulator: {0}")]
    Seed(String),
}

/// How [`Simulator::start_with`] sets the world up beyond what the plan says.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Divides every simulated delay (pod start-up, rollouts); 1.0 is real time.
    pub speed: f64,
    /// Metric history to write before serving: this much of the past, as the traffic generator
    /// would have written it, so windowed queries answer from the first second instead of
    /// "no data". `None`: the store starts empty, as in the demo.
    pub backfill: Option<Duration>,
    /// Give the stable Deployment two older revisions, so `rollout undo` on it has somewhere to
    /// go (see [`stable_history`]). `false`: it starts at revision 1, as in the demo.
    pub stable_history: bool,
    /// The share of a healthy track's requests that fail; `None`: the generator's default
    /// (0.2 %). A rehearsal sets 0, so that a canary judged on its first few dozen requests
    /// is not rolled back by one unlucky error: what it proves is the plan's logic, not the
    /// simulator's noise.
    pub healthy_error_ratio: Option<f64>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            healthy_error_ratio: None,
            backfill: None,
            stable_history: false,
        }
    }
}

impl Simulator {
    /// Seeds what `plan` needs and serves on `listen` (Kubernetes) and the next free loopback
    /// ports (Prometheus API, /metrics). The kubeconfig goes to `kubeconfig_out`, or to a fresh
    /// temporary directory.
    pub async fn start(
        plan: &Plan,
        listen: SocketAddr,
        kubeconfig_out: Option<&Path>,
        speed: f64,
    ) -> Result<Simulator, SimError> {
        let options = SimOptions {
            speed,
            ..SimOptions::default()
        };
        Self::start_with(plan, listen, kubeconfig_out, options).await
    }

    /// [`Simulator::start`] with `options`. With a backfill it returns only once the seeded
    /// pods serve (at most a minute) and their history is written, so the first query after it
    /// already finds an hour of data; without, it returns at once and traffic begins when the
    /// pods are Ready.
    pub async fn start_with(
        plan: &Plan,
        listen: SocketAddr,
        kubeconfig_out: Option<&Path>,
        options: SimOptions,
    ) -> Result<Simulator, SimError> {
        let cancel = CancellationToken::new();
        let kube = KubeSim::new();
        for seed in seeds_with(plan, options.stable_history) {
            kube.seed_app(&seed)
                .map_err(|e| SimError::Seed(e.to_string()))?;
        }
        let tsdb = Tsdb::new(tsdb_config(options.backfill));

        let kube_listener = bind(listen).await?;
        let prom_listener = bind(SocketAddr::new(listen.ip(), 0)).await?;
        let metrics_listener = bind(SocketAddr::new(listen.ip(), 0)).await?;
        let kubernetes = url_of(&kube_listener)?;
        let prometheus = url_of(&prom_listener)?;
        let metrics = format!("{}/metrics", url_of(&metrics_listener)?);

        let prom_faults = prom_api::PromFaults::new();
        let mut traffic_config = traffic::TrafficConfig::default();
        if let Some(ratio) = options.healthy_error_ratio {
            traffic_config.error_ratio = ratio;
        }
        let traffic_control = traffic_config.control.clone();
        let faults =
            faults::Faults::new(kube.clone(), prom_faults.clone(), traffic_control.clone());
        // `/sim/…` is routed before the API server's fallback, so it answers during an outage.
        serve(
            kube_listener,
            super::kube::router(kube.clone()).nest("/sim", faults::router(faults.clone())),
            cancel.clone(),
        );
        serve(
            prom_listener,
            prom_api::router_with_faults(tsdb.clone(), prom_faults.clone()),
            cancel.clone(),
        );
        serve(
            metrics_listener,
            exposition::metrics_router(tsdb.clone()),
            cancel.clone(),
        );
        super::kube::spawn_controllers(kube.clone(), options.speed, cancel.child_token());
        let mut snapshots = kube.traffic_snapshots();
        let traffic_tsdb = tsdb.clone();
        let traffic_cancel = cancel.child_token();
        match options.backfill {
            Some(span) => {
                wait_until_serving(&mut snapshots).await;
                let generator = backfill(&tsdb, &snapshots, traffic_config, span).await;
                tokio::spawn(traffic::run_generator(
                    traffic_tsdb,
                    snapshots,
                    generator,
                    traffic_cancel,
                ));
            }
            None => {
                tokio::spawn(async move {
                    wait_until_serving(&mut snapshots).await;
                    traffic::run(traffic_tsdb, snapshots, traffic_config, traffic_cancel).await;
                });
            }
        }

        let (path, own_dir) = match kubeconfig_out {
            Some(p) => (p.to_path_buf(), None),
            None => {
                let dir = std::env::temp_dir().join(format!("warroom-sim-{}", std::process::id()));
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        let text = kubeconfig::render(&kubernetes, &kubeconfig::contexts(plan));
        kubeconfig::write(&path, &text).map_err(|e| SimError::Kubeconfig {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        Ok(Simulator {
            kubernetes,
            prometheus,
            metrics,
            kubeconfig: path,
            kube,
            tsdb,
            prom_faults,
            traffic: traffic_control,
            faults,
            cancel,
            own_dir,
        })
    }

    /// Stops serving and removes a kubeconfig written to our own temporary directory.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(dir) = &self.own_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Waits (at most a minute) until every seeded service has a Ready pod. Until then the service
/// is "not launched yet" rather than failing: starting traffic earlier would open every demo with
/// a wall of 503s from pods that are still being created.
async fn wait_until_serving(
    snapshots: &mut tokio::sync::watch::Receiver<super::model::TrafficSnapshot>,
) {
    let serving = |s: &super::model::TrafficSnapshot| {
        !s.services.is_empty()
            && s.services
                .iter()
                .all(|svc| svc.tracks.iter().any(|t| !t.ready_pods.is_empty()))
    };
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        snapshots.wait_for(serving),
    )
    .await;
}

/// Retention that keeps the whole backfill, and as much live history again as without one.
fn tsdb_config(backfill: Option<Duration>) -> TsdbConfig {
    let default = TsdbConfig::default();
    TsdbConfig {
        retention: default
            .retention
            .saturating_add(backfill.unwrap_or_default()),
    }
}

/// A traffic generator that has written the `span` up to now for the current snapshot's
/// serving tracks (see [`traffic::Generator::backfill`]), ready to carry on live. An hour is a
/// few hundred thousand samples, so it is written off the async threads.
async fn backfill(
    tsdb: &Tsdb,
    snapshots: &tokio::sync::watch::Receiver<super::model::TrafficSnapshot>,
    config: traffic::TrafficConfig,
    span: Duration,
) -> traffic::Generator {
    let snapshot = snapshots.borrow().clone();
    let tsdb = tsdb.clone();
    let live_config = config.clone();
    let write = move || {
        let mut generator = traffic::Generator::new(config);
        generator.backfill(&tsdb, &snapshot, span, traffic::now_ms());
        generator
    };
    match tokio::task::spawn_blocking(write).await {
        Ok(generator) => generator,
        Err(e) => {
            tracing::warn!(error = %e, "metric backfill failed; traffic starts without history");
            traffic::Generator::new(live_config)
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SimError> {
    TcpListener::bind(addr).await.map_err(|e| SimError::Listen {
        addr: addr.to_string(),
        why: e.to_string(),
    })
}

fn url_of(listener: &TcpListener) -> Result<String, SimError> {
    listener
        .local_addr()
        .map(|a| format!("http://{a}"))
        .map_err(|e| SimError::Listen {
            addr: "?".to_string(),
            why: e.to_string(),
        })
}

fn serve(listener: TcpListener, router: axum::Router, cancel: CancellationToken) {
    tokio::spawn(async move {
        let shutdown = async move { cancel.cancelled().await };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("simulator server stopped: {e}");
        }
    });
}

/// The objects a plan's environments need: one app per distinct namespace.
pub fn seeds(plan: &Plan) -> Vec<AppSeed> {
    seeds_with(plan, false)
}

/// [`seeds`], with the stable Deployment's older images (see [`stable_history`]) when
/// `stable_history` is set.
pub fn seeds_with(plan: &Plan, stable_history: bool) -> Vec<AppSeed> {
    let new_image = plan
        .workload
        .image
        .clone()
        .unwrap_or_else(|| format!("registry.example.com/{}:2.0.0", plan.service));
    let stable_image = previous_version(&new_image);
    let history = if stable_history {
        self::stable_history(&stable_image)
    } else {
        Vec::new()
    };
    let traffic = plan.traffic.as_ref();
    let route = traffic.and_then(|t| {
        Some(RouteSeed {
            kind: match t.router {
                Router::GatewayApi => RouteKind::HttpRoute,
                Router::Istio => RouteKind::VirtualService,
                Router::Nginx => RouteKind::NginxCanaryIngress,
                Router::Smi => RouteKind::TrafficSplit,
                Router::Replicas => RouteKind::None,
            },
            name: t.route.clone()?,
            stable_backend: t
                .stable_backend
                .clone()
                .unwrap_or_else(|| plan.workload.name.clone()),
            canary_backend: t
                .canary_backend
                .clone()
                .or_else(|| plan.workload.canary.clone())?,
            canary_weight: 0,
        })
    });
    let mut namespaces: Vec<&str> = plan
        .environments
        .values()
        .map(|e| e.namespace.as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    namespaces
        .into_iter()
        .map(|namespace| AppSeed {
            namespace: namespace.to_string(),
            app: plan.service.clone(),
            stable: plan.workload.name.clone(),
            canary: plan
                .workload
                .canary
                .clone()
                .unwrap_or_else(|| format!("{}-canary", plan.workload.name)),
            container: plan
                .workload
                .container
                .clone()
                .unwrap_or_else(|| "app".to_string()),
            stable_image: stable_image.clone(),
            canary_image: new_image.clone(),
            stable_history: history.clone(),
            stable_replicas: 4,
            canary_replicas: 2,
            route: route.clone(),
            configmaps: configmaps(plan),
        })
        .collect()
}

/// ConfigMaps named by flag steps, with each flag at its opposite of the rollback value
/// (so rolling back visibly changes it).
fn configmaps(plan: &Plan) -> Vec<(String, BTreeMap<String, String>)> {
    let mut maps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let tiers = [
        &plan.rollback.immediate,
        &plan.rollback.gradual,
        &plan.rollback.full,
    ];
    let steps = plan
        .phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .chain(tiers.into_iter().flatten().flat_map(|t| t.actions.iter()));
    for step in steps {
        if let Step::Flag(f) = step {
            let value = match f.value.as_str() {
                "false" => "true".to_string(),
                "true" => "false".to_string(),
                other => other.to_string(),
            };
            maps.entry(f.configmap.clone())
                .or_default()
                .insert(f.key.clone(), value);
        }
    }
    maps.into_iter().collect()
}

/// A plausible image the stable track runs before the change: one minor version back.
fn previous_version(image: &str) -> String {
    let Some((repo, tag)) = image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) else {
        return format!("{image}:previous");
    };
    let parts: Vec<&str> = tag.split('.').collect();
    if let [major, minor, _patch] = parts.as_slice() {
        if let Ok(m) = minor.parse::<u32>() {
            if m > 0 {
                return format!("{repo}:{major}.{}.0", m - 1);
            }
        }
    }
    format!("{repo}:{tag}-previous")
}

/// Two images the stable track plausibly ran before `stable_image`, oldest first: each one
/// minor version back from the next (2.3.0 → [2.1.0, 2.2.0]).
pub fn stable_history(stable_image: &str) -> Vec<String> {
    let last = previous_version(stable_image);
    let first = previous_version(&last);
    vec![first, last]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_runs_the_previous_minor_version() {
        assert_eq!(
            previous_version("r.io/shop/checkout:2.4.0"),
            "r.io/shop/checkout:2.3.0"
        );
        assert_eq!(
            previous_version("r.io:5000/checkout:1.0.3"),
            "r.io:5000/checkout:1.0.3-previous"
        );
        assert_eq!(previous_version("checkout"), "checkout:previous");
    }

    #[test]
    fn stable_history_is_two_distinct_older_images_oldest_first() {
        assert_eq!(
            stable_history("r.io/shop/checkout:2.3.0"),
            ["r.io/shop/checkout:2.1.0", "r.io/shop/checkout:2.2.0"]
        );
        let odd = stable_history("checkout:1.0.0");
        assert_eq!(
            odd,
            [
                "checkout:1.0.0-previous-previous",
                "checkout:1.0.0-previous"
            ]
        );
    }

    #[test]
    fn history_is_seeded_only_when_asked() {
        let plan =
            crate::plan::parse(Path::new("demo.yaml"), crate::cli::DEMO_PLAN).expect("demo plan");
        assert!(seeds(&plan).iter().all(|s| s.stable_history.is_empty()));
        let with = seeds_with(&plan, true);
        assert_eq!(
            with[0].stable_history,
            stable_history(&with[0].stable_image)
        );
        assert_eq!(
            seeds_with(&plan, false),
            seeds(&plan),
            "without history the seeds are the demo's"
        );
    }

    #[test]
    fn demo_plan_seeds_one_namespace_with_route_and_flags() {
        let plan =
            crate::plan::parse(Path::new("demo.yaml"), crate::cli::DEMO_PLAN).expect("demo plan");
        let seeds = seeds(&plan);
        assert_eq!(seeds.len(), 1);
        let s = &seeds[0];
        assert_eq!(
            (s.namespace.as_str(), s.stable.as_str(), s.canary.as_str()),
            ("shop", "checkout", "checkout-canary")
        );
        assert_eq!(s.route.as_ref().map(|r| r.name.as_str()), Some("checkout"));
        assert_eq!(s.configmaps[0].0, "checkout-flags");
        assert_eq!(
            s.configmaps[0]
                .1
                .get("new_payment_flow")
                .map(String::as_str),
            Some("true")
        );
    }
}
