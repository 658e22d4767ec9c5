//! A plan file and the simulator seeded from it, and `warroom run --headless` against them:
//! what the headless, resume and journal tests share.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use warroom::app::console::router_for;
use warroom::cluster::client::connect;
use warroom::plan::{Plan, Weight};
use warroom::sim::server::Simulator;

pub const BIN: &str = env!("CARGO_BIN_EXE_warroom");
/// Long enough for a whole test plan at 20× simulator speed on a slow machine.
pub const DEADLINE: Duration = Duration::from_secs(120);

pub const QUERIES: &str = r#"
metrics:
  interval: 1s
  history: 2m
  rate: 5s
  queries:
    error_rate: sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}",code=~"5.."}[{{rate}}])) / sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}[{{rate}}]))
  thresholds:
    error_rate: { max: 0.05 }
  on_breach: { action: rollback, tier: immediate, after: 2, countdown: 2s }
  no_data: { after: 4, action: pause }
"#;

pub fn plan_text(body: &str) -> String {
    format!(
        r#"version: 1
name: headless test
service: checkout
risk: low
strategy: canary
workload:
  name: checkout
  canary: checkout-canary
  container: app
  image: registry.example.com/shop/checkout:2.4.0
traffic: {{ router: gateway-api, route: checkout, stable_backend: checkout, canary_backend: checkout-canary }}
{QUERIES}
{body}"#
    )
}

/// A plan file in its own directory, the simulator seeded from it, and a kube client per
/// context.
pub struct Bench {
    /// Holds the plan and the kubeconfig until the test ends.
    pub dir: tempfile::TempDir,
    pub plan_path: PathBuf,
    pub plan: Arc<Plan>,
    pub sim: Simulator,
}

impl Bench {
    pub async fn new(text: &str) -> Bench {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let plan_path = dir.path().join("plan.yaml");
        std::fs::write(&plan_path, text).expect("plan written");
        let plan = Arc::new(warroom::plan::load_file(&plan_path).expect("test plan is valid"));
        let sim = Simulator::start(
            &plan,
            "127.0.0.1:0".parse().expect("addr"),
            Some(&dir.path().join("kubeconfig")),
            20.0,
        )
        .await
        .expect("simulator starts");
        wait_for_data(&plan, &sim).await;
        Bench {
            dir,
            plan_path,
            plan,
            sim,
        }
    }

    pub async fn client(&self, context: &str) -> kube::Client {
        connect(Some(&self.sim.kubeconfig), Some(context))
            .await
            .expect("connects")
            .client
    }

    pub async fn weight(&self, context: &str, namespace: &str) -> Weight {
        let conn = connect(Some(&self.sim.kubeconfig), Some(context))
            .await
            .expect("connects");
        router_for(&self.plan, &conn, namespace)
            .expect("router")
            .weight()
            .await
            .expect("weight")
    }

    /// Starts a headless run and waits until its hold has begun.
    pub async fn run_into_the_hold(&self) -> Headless {
        let mut run = self.run(&[]);
        blocking(move || {
            run.wait_for("▶ hold 1m");
            run
        })
        .await
    }

    /// Starts `warroom run PLAN --headless` with the simulator's kubeconfig and Prometheus.
    pub fn run(&self, extra: &[&str]) -> Headless {
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(&self.plan_path)
            .arg("--kubeconfig")
            .arg(&self.sim.kubeconfig)
            .arg("--prometheus")
            .arg(&self.sim.prometheus)
            .arg("--headless")
            .arg("--operator")
            .arg("tester")
            .args(extra)
            // Journals go to the test's own directory, never the user's; and the user's config
            // file (theme, operator, keys) is not read.
            .env("XDG_STATE_HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("warroom starts");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Headless {
            child,
            lines,
            seen: Vec::new(),
        }
    }
}

/// Polls the simulator's Prometheus until the stable track's error rate has a value: a fresh
/// simulator has no history, and a run started before its first samples would (rightly) pause
/// for missing data.
pub async fn wait_for_data(plan: &Plan, sim: &Simulator) {
    let prom = warroom::metrics::prometheus::PromClient::new(
        warroom::metrics::prometheus::PromConfig::new(&sim.prometheus, Duration::from_secs(5)),
    )
    .expect("client");
    let probes = warroom::metrics::sampler::probes(
        &plan.metrics.queries,
        "shop",
        &plan.service,
        plan.metrics.rate.get(),
        &[warroom::plan::TrackName::Stable],
    )
    .expect("probes");
    let deadline = Instant::now() + DEADLINE;
    let namespaces: Vec<&str> = plan
        .environments
        .values()
        .map(|e| e.namespace.as_str())
        .collect();
    for ns in namespaces {
        let promql = probes[0]
            .promql
            .replace("namespace=\"shop\"", &format!("namespace=\"{ns}\""));
        loop {
            if let Ok(Some(_)) = prom.query_scalar(&promql, None).await {
                break;
            }
            assert!(Instant::now() < deadline, "no data for {promql}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A headless run in progress: its stdout lines as they come.
pub struct Headless {
    pub child: Child,
    pub lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Headless {
    /// Blocks until a line containing `text` is printed; fails with everything seen otherwise.
    pub fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(text);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("no line with {text:?}; seen:\n{}", self.seen.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "run ended without {text:?}; seen:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Waits for the exit; returns the code, all stdout lines and stderr.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => self.seen.push(line),
                Err(_) if Instant::now() < deadline => {}
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("run did not end; seen:\n{}", self.seen.join("\n"));
                }
            }
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        (status.code(), self.seen.join("\n"), stderr)
    }
}

/// Runs the blocking `f` off the async runtime, so the simulator keeps answering.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("joined")
}
