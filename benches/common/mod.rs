//! What the console benches share: the simulator seeded from the demo plan, in this process,
//! with the plan's namespace filled to N pods; the real `warroom run` console under a
//! pseudo-terminal this process owns, its output drained and replayed into a small screen model;
//! and what `/proc` says about the console's process.
//!
//! Not every bench uses every helper.
#![allow(dead_code)]

pub mod pty;
pub mod screen;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warroom::sim::server::Simulator;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The namespace every environment of the demo plan uses.
pub const NS: &str = "shop";
/// The simulator caps a workload at this many replicas.
const MAX_REPLICAS: usize = 1_000;

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `--NAME VALUE` from the bench's arguments (after `cargo bench --bench X --`), else the
/// environment variable `env`, else `default`.
pub fn arg<T: std::str::FromStr>(name: &str, env: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var(env).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The console binary: `WARROOM_BIN`, else the one cargo built with this bench's profile
/// (`target/release/warroom` under `cargo bench`).
pub fn warroom_bin() -> PathBuf {
    std::env::var_os("WARROOM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_warroom")))
}

/// The simulator seeded from the demo plan, the plan file, and a directory for the console's
/// journal, log and kubectl's cache.
pub struct SimSetup {
    pub dir: tempfile::TempDir,
    pub plan_path: PathBuf,
    pub sim: Simulator,
    pub http: reqwest::Client,
}

impl SimSetup {
    /// Starts the simulator at `speed` and waits until Prometheus has data for the stable track
    /// (a console started earlier would show `no data`).
    pub async fn start(speed: f64) -> Res<SimSetup> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir()?;
        let plan_path = dir.path().join("demo.yaml");
        std::fs::write(&plan_path, warroom::cli::DEMO_PLAN)?;
        let plan = warroom::plan::load_file(&plan_path)?;
        let sim = Simulator::start(
            &plan,
            "127.0.0.1:0".parse()?,
            Some(&dir.path().join("kubeconfig")),
            speed,
        )
        .await?;
        let setup = SimSetup {
            dir,
            plan_path,
            sim,
            http: reqwest::Client::new(),
        };
        setup.wait_for_data(&plan).await?;
        Ok(setup)
    }

    async fn wait_for_data(&self, plan: &warroom::plan::Plan) -> Res<()> {
        let prom = warroom::metrics::prometheus::PromClient::new(
            warroom::metrics::prometheus::PromConfig::new(
                &self.sim.prometheus,
                Duration::from_secs(5),
            ),
        )?;
        let probes = warroom::metrics::sampler::probes(
            &plan.metrics.queries,
            NS,
            &plan.service,
            plan.metrics.rate.get(),
            // The canary gets no traffic before the plan moves weight to it.
            &[warroom::plan::TrackName::Stable],
        )?;
        let deadline = Instant::now() + Duration::from_secs(180);
        for probe in &probes {
            loop {
                if let Ok(Some(_)) = prom.query_scalar(&probe.promql, None).await {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("no data for {}", probe.promql).into());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.kubernetes)
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Res<Value> {
        let resp = self
            .http
            .request(method, self.url(path))
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status}: {v}").into());
        }
        Ok(v)
    }

    /// Pods in the plan's namespace the console shows (label `app=checkout`), and how many of
    /// them are Ready.
    pub async fn pod_counts(&self) -> Res<(usize, usize)> {
        let list: Value = self
            .http
            .get(self.url(&format!(
                "/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dcheckout"
            )))
            .send()
            .await?
            .json()
            .await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let ready = items
            .iter()
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        Ok((items.len(), ready))
    }

    /// The pods a ReplicaSet replaces when they are deleted, but the canary's: the stable's and
    /// the bulk Deployments' (see [`SimSetup::populate`]), by name.
    pub async fn replaceable_pods(&self) -> Res<Vec<String>> {
        let list: Value = self
            .http
            .get(self.url(&format!("/api/v1/namespaces/{NS}/pods")))
            .send()
            .await?
            .json()
            .await?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["metadata"]["labels"]["app"] == "checkout"
                    && p["metadata"]["labels"]["track"] != "canary"
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect())
    }

    /// Fills the namespace to `total` pods the console watches, all Ready: the canary keeps its
    /// 2, the stable Deployment `checkout` is scaled up (at most 1,000), and the rest come from
    /// Deployments `checkout-bulk-K` whose pods carry `app=checkout` too (the console's pod
    /// watch selects `app=checkout`; they show with TRACK `-`).
    pub async fn populate(&self, total: usize) -> Res<Duration> {
        let started = Instant::now();
        let canary = 2;
        let stable = total.saturating_sub(canary).clamp(1, MAX_REPLICAS);
        let resp = self
            .http
            .patch(self.url(&format!(
                "/apis/apps/v1/namespaces/{NS}/deployments/checkout"
            )))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"spec": {"replicas": stable}}).to_string())
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(format!("scaling checkout: {}", resp.text().await?).into());
        }
        let mut rest = total.saturating_sub(canary + stable);
        let mut k = 0;
        while rest > 0 {
            let replicas = rest.min(MAX_REPLICAS);
            let labels = json!({"app": "checkout", "track": format!("bulk-{k}")});
            self.send(
                reqwest::Method::POST,
                &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
                &json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("checkout-bulk-{k}"), "labels": labels},
                    "spec": {
                        "replicas": replicas,
                        "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                            {"name": "app", "image": "registry.example.com/shop/checkout:2.3.0"}
                        ]}},
                    },
                }),
            )
            .await?;
            rest -= replicas;
            k += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let (pods, ready) = self.pod_counts().await?;
            if pods == total && ready == total {
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!("{ready} of {pods} pods Ready, wanted {total}").into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `warroom run demo.yaml` against this simulator: the console, under a pty of
    /// `cols`×`rows`. Its journal and log go to this setup's directory.
    pub fn console(&self, cols: u16, rows: u16) -> Res<pty::Console> {
        let bin = warroom_bin();
        let args: Vec<String> = vec![
            "run".into(),
            self.plan_path.display().to_string(),
            "--kubeconfig".into(),
            self.sim.kubeconfig.display().to_string(),
            "--prometheus".into(),
            self.sim.prometheus.clone(),
            "--operator".into(),
            "bench".into(),
        ];
        let env = [
            ("XDG_STATE_HOME", self.dir.path().display().to_string()),
            ("HOME", self.dir.path().display().to_string()),
            ("TERM", "xterm-256color".to_string()),
        ];
        pty::Console::start(&bin, &args, &env, cols, rows)
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.sim.kubeconfig
    }
}

/// utime + stime of `pid` in clock ticks (all its threads), from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("odd /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Clock ticks per second.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in kB.
pub fn status_kb(pid: u32, key: &str) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("odd status line")?
        .parse()?)
}
