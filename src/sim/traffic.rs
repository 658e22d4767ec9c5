//! Simulated request traffic: turns the Kubernetes side's `TrafficSnapshot` into per-pod counters,
//! latency histograms and CPU series in the Tsdb. It reads snapshots only; it never edits the cluster.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::sim::model::{ServiceTraffic, TrackTraffic, TrafficSnapshot};
use crate::sim::tsdb::{Labels, Tsdb, stale_nan};

/// Upper bounds of the latency histogram, Prometheus client libraries' default buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bound on `requests_per_second`; see [`Generator::new`].
pub const MAX_REQUESTS_PER_SECOND: f64 = 100_000.0;

/// Shortest tick the generator accepts.
pub const MIN_TICK: Duration = Duration::from_millis(10);

/// z-score of the 95th percentile of a standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

/// Knobs of the request generator. `Default` gives the demo's numbers.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    /// Requests per second per service, split across tracks by weight.
    pub requests_per_second: f64,
    /// Error ratio of an ordinary version.
    pub error_ratio: f64,
    /// Error ratio of a version whose tag contains `bad` or `errors`.
    pub bad_error_ratio: f64,
    /// Median and 95th percentile latency of an ordinary version (log-normal).
    pub latency_median_secs: f64,
    pub latency_p95_secs: f64,
    /// Latency multiplier of a version whose tag contains `slow` (6 turns p95 150 ms into 900 ms).
    pub slow_latency_multiplier: f64,
    /// CPU model: cores used by an idle pod, plus this many per request/second it serves.
    pub cpu_base_cores: f64,
    pub cpu_cores_per_rps: f64,
    /// Wall-clock period between samples.
    pub tick: Duration,
    /// Fixed seed for reproducible runs; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Handle for fault drills; clone it before handing the config to [`run`].
    pub control: TrafficControl,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 40.0,
            error_ratio: 0.002,
            bad_error_ratio: 0.2,
            latency_median_secs: 0.060,
            latency_p95_secs: 0.150,
            slow_latency_multiplier: 6.0,
            cpu_base_cores: 0.05,
            cpu_cores_per_rps: 0.004,
            tick: Duration::from_secs(1),
            seed: None,
            control: TrafficControl::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TrackKey {
    namespace: String,
    service: String,
    track: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Override {
    error_ratio: Option<(f64, Instant)>,
    latency_multiplier: Option<(f64, Instant)>,
}

/// Temporary per-track overrides used by fault drills. Cloning shares the overrides.
#[derive(Debug, Clone, Default)]
pub struct TrafficControl {
    overrides: Arc<Mutex<HashMap<TrackKey, Override>>>,
}

impl TrafficControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Until `until`, the track answers this share of requests (clamped to 0..=1) with 500.
    pub fn set_error_ratio(
        &self,
        namespace: &str,
        service: &str,
        track: &str,
        ratio: f64,
        until: Instant,
    ) {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self.update(namespace, service, track, |o| {
            o.error_ratio = Some((ratio, until));
        });
    }

    /// Until `until`, the track's latency multiplier is `multiplier` instead of its version's.
    pub fn set_latency_multiplier(
        &self,
        namespace: &str,
        service: &str,
        track: &str,
        multiplier: f64,
        until: Instant,
    ) {
        let multiplier = if multiplier.is_finite() && multiplier > 0.0 {
            multiplier
        } else {
            1.0
        };
        self.update(namespace, service, track, |o| {
            o.latency_multiplier = Some((multiplier, until));
        });
    }

    /// Removes every override of the track at once.
    pub fn clear(&self, namespace: &str, service: &str, track: &str) {
        self.lock().remove(&key(namespace, service, track));
    }

    fn update(&self, namespace: &str, service: &str, track: &str, f: impl FnOnce(&mut Override)) {
        let mut map = self.lock();
        f(map.entry(key(namespace, service, track)).or_default());
    }

    /// Active overrides for a track; expired ones are forgotten.
    fn active(&self, k: &TrackKey, now: Instant) -> (Option<f64>, Option<f64>) {
        let mut map = self.lock();
        let Some(o) = map.get_mut(k) else {
            return (None, None);
        };
        if o.error_ratio.is_some_and(|(_, until)| until <= now) {
            o.error_ratio = None;
        }
        if o.latency_multiplier.is_some_and(|(_, until)| until <= now) {
            o.latency_multiplier = None;
        }
        let out = (
            o.error_ratio.map(|(r, _)| r),
            o.latency_multiplier.map(|(m, _)| m),
        );
        if out == (None, None) {
            map.remove(k);
        }
        out
    }

    // Every critical section is a single map operation, so a poisoned lock holds consistent data.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TrackKey, Override>> {
        self.overrides.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key(namespace: &str, service: &str, track: &str) -> TrackKey {
    TrackKey {
        namespace: namespace.to_string(),
        service: service.to_string(),
        track: track.to_string(),
    }
}

/// Cumulative counters of one pod (or of the gateway for a track without ready pods).
#[derive(Debug, Default, Clone)]
struct Counters {
    ok: u64,
    errors: u64,
    unavailable: u64,
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
    cpu_seconds: f64,
}

impl Counters {
    fn observe(&mut self, latency: f64) {
        self.count += 1;
        self.sum += latency;
        for (i, &ub) in LATENCY_BUCKETS.iter().enumerate() {
            if latency <= ub {
                self.buckets[i] += 1;
            }
        }
    }
}

/// Identity of a counter set: a pod of a track's version, or the track's gateway (`pod` None).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SourceKey {
    namespace: String,
    service: String,
    track: String,
    version: String,
    pod: Option<String>,
}

/// The generator's state between ticks.
pub struct Generator {
    config: TrafficConfig,
    rng: StdRng,
    counters: HashMap<SourceKey, Counters>,
    /// Label sets each source wrote last tick, so they can be marked stale when it goes away.
    written: HashMap<SourceKey, Vec<Labels>>,
    last_ms: Option<i64>,
    ticks: u64,
}

impl Generator {
    pub fn new(mut config: TrafficConfig) -> Self {
        // Every simulated request is drawn one by one, so an absurd rate would stall the tick;
        // a zero tick would simulate nothing. Clamp both to workable values.
        config.requests_per_second = config
            .requests_per_second
            .clamp(0.0, MAX_REQUESTS_PER_SECOND);
        if config.requests_per_second.is_nan() {
            config.requests_per_second = 0.0;
        }
        config.tick = config.tick.max(MIN_TICK);
        let rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self {
            config,
            rng,
            counters: HashMap::new(),
            written: HashMap::new(),
            last_ms: None,
            ticks: 0,
        }
    }

    /// Simulates the requests since the previous tick and appends one sample per series at
    /// `ts_ms`. `now` is only used to expire drill overrides.
    pub fn tick(&mut self, tsdb: &Tsdb, snapshot: &TrafficSnapshot, ts_ms: i64, now: Instant) {
        let tick_secs = self.config.tick.as_secs_f64();
        // A stalled runtime must not produce a burst; cap the simulated interval.
        let dt = match self.last_ms {
            Some(last) if ts_ms > last => ((ts_ms - last) as f64 / 1000.0).min(10.0 * tick_secs),
            Some(_) => return,
            None => tick_secs,
        };
        self.last_ms = Some(ts_ms);
        let mut seen = HashSet::new();
        for svc in &snapshot.services {
            self.service_tick(tsdb, svc, dt, ts_ms, now, &mut seen);
        }
        // Pods that left the snapshot stop reporting. Like Prometheus when a target vanishes,
        // their series get a staleness marker, so instant queries drop them at once instead of
        // showing their last value for five more minutes.
        self.counters.retain(|k, _| seen.contains(k));
        let gone: Vec<SourceKey> = self
            .written
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            for labels in self.written.remove(&k).unwrap_or_default() {
                put(tsdb, labels, ts_ms, stale_nan());
            }
        }
        self.ticks += 1;
        if self.ticks % 60 == 0 {
            tsdb.trim(ts_ms);
        }
    }

    /// Writes the `span` before `end_ms` as if this generator had been running all along:
    /// one tick per interval, ending at `end_ms`, for the tracks serving in `snapshot` (those
    /// with weight and Ready pods; a canary at 0 % has nothing to show yet). Call it on a fresh
    /// generator and keep ticking the same one live: its counters carry on from where the
    /// history ends, so `rate()` sees no reset at the seam.
    pub fn backfill(
        &mut self,
        tsdb: &Tsdb,
        snapshot: &TrafficSnapshot,
        span: Duration,
        end_ms: i64,
    ) {
        let serving = serving_before_the_change(snapshot);
        let tick_ms = i64::try_from(self.config.tick.as_millis()).unwrap_or(i64::MAX);
        let ticks = i64::try_from(span.as_millis()).unwrap_or(i64::MAX) / tick_ms;
        let now = Instant::now();
        for i in (0..=ticks).rev() {
            self.tick(
                tsdb,
                &serving,
                end_ms.saturating_sub(i.saturating_mul(tick_ms)),
                now,
            );
        }
    }

    fn service_tick(
        &mut self,
        tsdb: &Tsdb,
        svc: &ServiceTraffic,
        dt: f64,
        ts_ms: i64,
        now: Instant,
        seen: &mut HashSet<SourceKey>,
    ) {
        let total_weight: f64 = svc.tracks.iter().map(|t| f64::from(t.weight)).sum();
        for track in &svc.tracks {
            let share = if total_weight > 0.0 {
                f64::from(track.weight) / total_weight
            } else {
                0.0
            };
            let expected = self.config.requests_per_second.max(0.0) * share * dt;
            let (err_override, lat_override) = self
                .config
                .control
                .active(&key(&svc.namespace, &svc.service, &track.track), now);
            let error_ratio = err_override.unwrap_or_else(|| self.version_error_ratio(track));
            let latency_mult = lat_override.unwrap_or_else(|| self.version_latency(track));
            let gateway = SourceKey {
                namespace: svc.namespace.clone(),
                service: svc.service.clone(),
                track: track.track.clone(),
                version: track.version.clone(),
                pod: None,
            };
            if track.ready_pods.is_empty() {
                // Nobody can answer: the gateway returns 503 for the track's whole share.
                let n = stochastic_round(&mut self.rng, expected);
                if n > 0 || self.counters.contains_key(&gateway) {
                    let c = self.counters.entry(gateway.clone()).or_default();
                    c.unavailable += n;
                    for _ in 0..n {
                        c.observe(0.001);
                    }
                    seen.insert(gateway.clone());
                    let samples = gateway_samples(&gateway, c);
                    self.emit(tsdb, &gateway, samples, ts_ms);
                }
                continue;
            }
            if let Some(c) = self.counters.get(&gateway) {
                // Keep the gateway's 503 counter flat (rather than vanish) while pods serve again.
                seen.insert(gateway.clone());
                let samples = gateway_samples(&gateway, c);
                self.emit(tsdb, &gateway, samples, ts_ms);
            }
            let per_pod = expected / track.ready_pods.len() as f64;
            for pod in &track.ready_pods {
                let k = SourceKey {
                    pod: Some(pod.clone()),
                    ..gateway.clone()
                };
                let n = stochastic_round(&mut self.rng, per_pod);
                let mut c = self.counters.remove(&k).unwrap_or_default();
                for _ in 0..n {
                    if self.rng.random::<f64>() < error_ratio {
                        c.errors += 1;
                    } else {
                        c.ok += 1;
                    }
                    let latency = self.sample_latency(latency_mult);
                    c.observe(latency);
                }
                let rps = n as f64 / dt;
                c.cpu_seconds +=
                    (self.config.cpu_base_cores + self.config.cpu_cores_per_rps * rps) * dt;
                let samples = pod_samples(&k, pod, track, &c);
                self.emit(tsdb, &k, samples, ts_ms);
                seen.insert(k.clone());
                self.counters.insert(k, c);
            }
        }
    }

    fn emit(&mut self, tsdb: &Tsdb, key: &SourceKey, samples: Vec<(Labels, f64)>, ts_ms: i64) {
        let mut labels = Vec::with_capacity(samples.len());
        for (l, v) in samples {
            labels.push(l.clone());
            put(tsdb, l, ts_ms, v);
        }
        self.written.insert(key.clone(), labels);
    }

    fn version_error_ratio(&self, track: &TrackTraffic) -> f64 {
        let v = track.version.to_ascii_lowercase();
        if v.contains("bad") || v.contains("errors") {
            self.config.bad_error_ratio
        } else {
            self.config.error_ratio
        }
    }

    fn version_latency(&self, track: &TrackTraffic) -> f64 {
        if track.version.to_ascii_lowercase().contains("slow") {
            self.config.slow_latency_multiplier
        } else {
            1.0
        }
    }

    /// Log-normal latency: median and p95 from the config, scaled by `mult`.
    fn sample_latency(&mut self, mult: f64) -> f64 {
        let median = self.config.latency_median_secs.max(1e-6);
        let ratio = (self.config.latency_p95_secs / median).max(1.0);
        let sigma = ratio.ln() / Z95;
        // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * mult * (sigma * z).exp()
    }
}

/// `snapshot` without the tracks that take no traffic or have no Ready pod to answer it.
fn serving_before_the_change(snapshot: &TrafficSnapshot) -> TrafficSnapshot {
    let services = snapshot
        .services
        .iter()
        .map(|svc| ServiceTraffic {
            tracks: svc
                .tracks
                .iter()
                .filter(|t| t.weight > 0 && !t.ready_pods.is_empty())
                .cloned()
                .collect(),
            ..svc.clone()
        })
        .filter(|svc| !svc.tracks.is_empty())
        .collect();
    TrafficSnapshot { services }
}

/// Rounds `x` up with probability equal to its fraction, so the expected count is exactly `x`.
fn stochastic_round(rng: &mut StdRng, x: f64) -> u64 {
    if !x.is_finite() || x <= 0.0 {
        return 0;
    }
    let floor = x.floor();
    let up = rng.random::<f64>() < x - floor;
    floor as u64 + u64::from(up)
}

fn base_labels(k: &SourceKey) -> Labels {
    let mut l = Labels::new();
    l.insert("namespace".into(), k.namespace.clone());
    l.insert("service".into(), k.service.clone());
    l.insert("track".into(), k.track.clone());
    l.insert("version".into(), k.version.clone());
    if let Some(p) = &k.pod {
        l.insert("pod".into(), p.clone());
    }
    l
}

fn with(base: &Labels, name: &str, extra: &[(&str, &str)]) -> Labels {
    let mut l = base.clone();
    l.insert("__name__".into(), name.into());
    for (k, v) in extra {
        l.insert((*k).into(), (*v).into());
    }
    l
}

fn put(tsdb: &Tsdb, labels: Labels, ts_ms: i64, v: f64) {
    if let Err(e) = tsdb.append(labels, ts_ms, v) {
        tracing::debug!(error = %e, "traffic sample dropped");
    }
}

fn histogram_samples(base: &Labels, c: &Counters, out: &mut Vec<(Labels, f64)>) {
    for (ub, n) in LATENCY_BUCKETS.iter().zip(c.buckets) {
        let le = format!("{ub}");
        let l = with(base, "http_request_duration_seconds_bucket", &[("le", &le)]);
        out.push((l, n as f64));
    }
    let inf = with(
        base,
        "http_request_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    out.push((inf, c.count as f64));
    out.push((with(base, "http_request_duration_seconds_sum", &[]), c.sum));
    let count = with(base, "http_request_duration_seconds_count", &[]);
    out.push((count, c.count as f64));
}

fn gateway_samples(k: &SourceKey, c: &Counters) -> Vec<(Labels, f64)> {
    let base = base_labels(k);
    let mut out = vec![(
        with(&base, "http_requests_total", &[("code", "503")]),
        c.unavailable as f64,
    )];
    histogram_samples(&base, c, &mut out);
    out
}

fn pod_samples(k: &SourceKey, pod: &str, track: &TrackTraffic, c: &Counters) -> Vec<(Labels, f64)> {
    let base = base_labels(k);
    let mut out = vec![
        (
            with(&base, "http_requests_total", &[("code", "200")]),
            c.ok as f64,
        ),
        (
            with(&base, "http_requests_total", &[("code", "500")]),
            c.errors as f64,
        ),
    ];
    histogram_samples(&base, c, &mut out);

    // Container and kube-state-style series carry the pod's identity but not its version.
    let mut pod_labels = Labels::new();
    pod_labels.insert("namespace".into(), k.namespace.clone());
    pod_labels.insert("pod".into(), pod.to_string());
    pod_labels.insert("track".into(), k.track.clone());
    pod_labels.insert("service".into(), k.service.clone());
    pod_labels.insert("container".into(), k.service.clone());
    out.push((
        with(&pod_labels, "container_cpu_usage_seconds_total", &[]),
        c.cpu_seconds,
    ));
    let limits = with(
        &pod_labels,
        "kube_pod_container_resource_limits",
        &[("resource", "cpu"), ("unit", "core")],
    );
    out.push((limits, track.cpu_limit_cores));
    let mut up = pod_labels;
    up.remove("container");
    out.push((with(&up, "up", &[("job", "warroom-sim")]), 1.0));
    out
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs the request generator until `cancel` fires: every `config.tick` of wall clock it
/// simulates the latest snapshot's traffic and appends samples stamped with wall-clock time.
pub async fn run(
    tsdb: Tsdb,
    snapshots: watch::Receiver<TrafficSnapshot>,
    config: TrafficConfig,
    cancel: CancellationToken,
) {
    run_generator(tsdb, snapshots, Generator::new(config), cancel).await;
}

/// [`run`] with a generator that may already have written history (see
/// [`Generator::backfill`]); its counters continue.
pub async fn run_generator(
    tsdb: Tsdb,
    snapshots: watch::Receiver<TrafficSnapshot>,
    mut generator: Generator,
    cancel: CancellationToken,
) {
    let mut interval = tokio::time::interval(generator.config.tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = interval.tick() => {
                let snapshot = snapshots.borrow().clone();
                generator.tick(&tsdb, &snapshot, now_ms(), Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::promql::{Value, instant_query};

    fn snapshot(canary_version: &str, canary_pods: &[&str]) -> TrafficSnapshot {
        TrafficSnapshot {
            services: vec![ServiceTraffic {
                namespace: "shop".into(),
                service: "checkout".into(),
                tracks: vec![
                    TrackTraffic {
                        track: "stable".into(),
                        version: "2.4.0".into(),
                        weight: 90,
                        ready_pods: vec!["s-1".into(), "s-2".into(), "s-3".into()],
                        cpu_limit_cores: 0.5,
                    },
                    TrackTraffic {
                        track: "canary".into(),
                        version: canary_version.into(),
                        weight: 10,
                        ready_pods: canary_pods.iter().map(|p| p.to_string()).collect(),
                        cpu_limit_cores: 0.25,
                    },
                ],
            }],
        }
    }

    fn run_ticks(g: &mut Generator, db: &Tsdb, snap: &TrafficSnapshot, from_s: i64, n: i64) {
        for s in from_s..from_s + n {
            g.tick(db, snap, s * 1000, Instant::now());
        }
    }

    fn scalar(db: &Tsdb, q: &str, t_s: i64) -> f64 {
        match instant_query(db, q, t_s * 1000) {
            Ok(Value::Vector(v)) if v.len() == 1 => v[0].value,
            other => panic!("{q}: {other:?}"),
        }
    }

    fn seeded() -> Generator {
        Generator::new(TrafficConfig {
            seed: Some(7),
            ..TrafficConfig::default()
        })
    }

    #[test]
    fn traffic_splits_by_weight_and_counts_errors_of_bad_versions() {
        let db = Tsdb::default();
        let mut g = seeded();
        run_ticks(&mut g, &db, &snapshot("2.5.0-bad", &["c-1"]), 1, 600);
        let total = |track: &str| {
            scalar(
                &db,
                &format!("sum(increase(http_requests_total{{track=\"{track}\"}}[500s]))"),
                600,
            )
        };
        let (stable, canary) = (total("stable"), total("canary"));
        assert!((stable / canary - 9.0).abs() < 1.0, "{stable} / {canary}");
        assert!((stable + canary - 40.0 * 500.0).abs() < 40.0 * 500.0 * 0.03);
        let ratio = scalar(
            &db,
            "sum(rate(http_requests_total{track=\"canary\",code=~\"5..\"}[500s])) / sum(rate(http_requests_total{track=\"canary\"}[500s]))",
            600,
        );
        assert!((ratio - 0.2).abs() < 0.05, "{ratio}");
    }

    #[test]
    fn latency_histogram_matches_profile() {
        let db = Tsdb::default();
        let mut g = seeded();
        run_ticks(&mut g, &db, &snapshot("2.5.0-slow", &["c-1"]), 1, 600);
        let p95 = |track: &str| {
            scalar(
                &db,
                &format!(
                    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{track=\"{track}\"}}[500s])))"
                ),
                600,
            )
        };
        let (stable, canary) = (p95("stable"), p95("canary"));
        // True p95s are 0.15 s and 0.9 s, but linear interpolation inside the (0.1, 0.25] and
        // (0.5, 1] buckets lands near 0.21 s and 0.97 s, exactly as a real Prometheus would.
        assert!((0.18..0.24).contains(&stable), "{stable}");
        assert!((0.85..1.2).contains(&canary), "{canary}");
    }

    #[test]
    fn track_without_ready_pods_gets_503s_and_cpu_follows_load() {
        let db = Tsdb::default();
        let mut g = seeded();
        run_ticks(&mut g, &db, &snapshot("2.5.0", &[]), 1, 120);
        let r503 = scalar(
            &db,
            "sum(rate(http_requests_total{track=\"canary\",code=\"503\"}[60s]))",
            120,
        );
        assert!((r503 - 4.0).abs() < 1.5, "{r503}");
        let cpu = scalar(
            &db,
            "sum(rate(container_cpu_usage_seconds_total{track=\"stable\"}[60s]))",
            120,
        );
        // Three pods at 12 req/s each: 3 × (0.05 + 0.004 × 12) = 0.294 cores.
        assert!((cpu - 0.294).abs() < 0.03, "{cpu}");
        let limits = scalar(
            &db,
            "sum(kube_pod_container_resource_limits{track=\"stable\",resource=\"cpu\"})",
            120,
        );
        assert!((limits - 1.5).abs() < 1e-9);
    }

    #[test]
    fn backfill_covers_the_serving_tracks_and_live_ticks_continue_its_counters() {
        let db = Tsdb::default();
        let mut g = seeded();
        let mut snap = snapshot("2.5.0", &["c-1"]);
        snap.services[0].tracks[1].weight = 0;
        g.backfill(&db, &snap, Duration::from_secs(600), 1_000_000);
        let stable_rate = |range: &str, t_s: i64| {
            scalar(
                &db,
                &format!("sum(rate(http_requests_total{{track=\"stable\"}}[{range}]))"),
                t_s,
            )
        };
        // Ten minutes of history at the end of the backfill, none before it.
        assert!((stable_rate("5m", 1000) - 40.0).abs() < 4.0);
        assert!((stable_rate("1m", 460) - 40.0).abs() < 8.0);
        assert!(matches!(
            instant_query(&db, "http_requests_total", 399_000),
            Ok(Value::Vector(v)) if v.is_empty()
        ));
        // The canary at 0 % had nothing to report before now.
        assert!(matches!(
            instant_query(&db, "up{track=\"canary\"}", 1_000_000),
            Ok(Value::Vector(v)) if v.is_empty()
        ));
        run_ticks(&mut g, &db, &snap, 1001, 30);
        let resets = scalar(
            &db,
            "sum(resets(http_requests_total{track=\"stable\",code=\"200\"}[10m]))",
            1030,
        );
        assert_eq!(resets, 0.0);
        let (before, across) = (stable_rate("1m", 1000), stable_rate("1m", 1030));
        assert!(
            (across / before - 1.0).abs() < 0.2,
            "{before} then {across}"
        );
    }

    #[test]
    fn drill_overrides_apply_until_expiry() {
        let control = TrafficControl::new();
        let now = Instant::now();
        control.set_error_ratio(
            "shop",
            "checkout",
            "canary",
            0.5,
            now + Duration::from_secs(5),
        );
        let k = key("shop", "checkout", "canary");
        assert_eq!(control.active(&k, now), (Some(0.5), None));
        assert_eq!(
            control.active(&k, now + Duration::from_secs(6)),
            (None, None)
        );
        control.set_latency_multiplier(
            "shop",
            "checkout",
            "canary",
            3.0,
            now + Duration::from_secs(5),
        );
        control.clear("shop", "checkout", "canary");
        assert_eq!(control.active(&k, now), (None, None));
    }

    #[test]
    fn vanished_pods_are_marked_stale_at_once() {
        let db = Tsdb::default();
        let mut g = seeded();
        run_ticks(&mut g, &db, &snapshot("2.5.0", &["c-1"]), 1, 10);
        run_ticks(&mut g, &db, &snapshot("2.5.0", &["c-2"]), 11, 10);
        let pods = |t_s: i64| match instant_query(&db, "up{track=\"canary\"}", t_s * 1000) {
            Ok(Value::Vector(v)) => v
                .iter()
                .filter_map(|e| e.labels.get("pod").cloned())
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(pods(10), vec!["c-1".to_string()]);
        assert_eq!(pods(11), vec!["c-2".to_string()]);
        let m = [crate::sim::tsdb::LabelMatcher::equal("pod", "c-1")];
        let last_real = db
            .select(&m, 0, 100_000)
            .iter()
            .filter_map(|s| s.samples.last())
            .map(|s| s.0)
            .max();
        assert_eq!(last_real, Some(10_000));
        // /metrics no longer lists the vanished pod.
        assert!(
            db.latest()
                .iter()
                .all(|(l, _)| l.get("pod").map(String::as_str) != Some("c-1"))
        );
    }
}
