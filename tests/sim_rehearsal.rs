//! The simulator as a rehearsal starts it: the stable Deployment with older revisions, so
//! `rollout undo` (ours and kubectl's) has somewhere to go, and an hour of metric history, so
//! windowed PromQL answers from the first second. kubectl comparisons need kubectl on PATH
//! (required when CI is set). Waits are polls against a deadline.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value as Json;
use tokio::time::Instant;

use warroom::cluster::actions::ActionError;
use warroom::cluster::actions::rollout::{self, UndoOutcome};
use warroom::cluster::actions::status;
use warroom::sim::server::{SimOptions, Simulator, seeds_with};

const NS: &str = "shop";
const STABLE: &str = "checkout";
const CANARY: &str = "checkout-canary";
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

struct Env {
    sim: Simulator,
    client: Client,
    home: tempfile::TempDir,
}

async fn start(options: SimOptions) -> Env {
    let home = tempfile::tempdir().expect("tempdir");
    let (sim, conn) = common::start_demo_sim_with(home.path(), options).await;
    Env {
        sim,
        client: conn.client,
        home,
    }
}

/// At 20× speed with the stable Deployment's history, once the stable track has rolled out.
async fn start_with_history() -> Env {
    let env = start(SimOptions {
        speed: 20.0,
        stable_history: true,
        ..SimOptions::default()
    })
    .await;
    env.rolled_out(STABLE).await;
    env
}

/// The older images the demo's stable Deployment is seeded with, oldest first.
fn seeded_history() -> Vec<String> {
    seeds_with(&common::demo_plan(), true)[0]
        .stable_history
        .clone()
}

impl Env {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn rolled_out(&self, name: &str) {
        let status = status::wait_complete(&self.client, NS, name, Instant::now() + DEADLINE)
            .await
            .expect("rollout status readable");
        assert!(status.is_done(), "{name} did not roll out: {status:?}");
    }

    async fn image(&self, name: &str) -> Option<String> {
        let d = self.deployments().get(name).await.expect("get deployment");
        d.spec?.template.spec?.containers.first()?.image.clone()
    }

    async fn revision(&self, name: &str) -> Option<String> {
        let d = self.deployments().get(name).await.expect("get deployment");
        d.metadata
            .annotations?
            .get(rollout::REVISION_ANNOTATION)
            .cloned()
    }

    /// Waits until `name`'s revision annotation reads `want`.
    async fn revision_becomes(&self, name: &str, want: &str) {
        let deadline = Instant::now() + DEADLINE;
        while self.revision(name).await.as_deref() != Some(want) {
            assert!(Instant::now() < deadline, "{name} never at revision {want}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Images of the stable track's Running pods that are not being deleted.
    async fn stable_pod_images(&self) -> Vec<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        let list = pods
            .list(&ListParams::default().labels("app=checkout,track=stable"))
            .await
            .expect("list pods");
        list.items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.spec?.containers.first()?.image.clone())
            .collect()
    }

    /// kubectl against the simulator's development context, without blocking its runtime.
    async fn kubectl(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new("kubectl")
            .args(args)
            .args(["--context", "sim-development", "-n", NS])
            .env("KUBECONFIG", &self.sim.kubeconfig)
            .env("HOME", self.home.path())
            .output()
            .await
            .expect("kubectl runs")
    }

    async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

#[tokio::test]
async fn undo_on_the_seeded_stable_goes_back_one_image_and_the_pods_follow() {
    let env = start_with_history().await;
    let history = seeded_history();
    assert_eq!(env.revision(STABLE).await.as_deref(), Some("3"));
    assert_eq!(env.revision(CANARY).await.as_deref(), Some("1"));

    let outcome = rollout::undo(&env.client, NS, STABLE, None)
        .await
        .expect("undo");
    assert_eq!(outcome, UndoOutcome::RolledBack { revision: 2 });
    assert_eq!(env.image(STABLE).await.as_ref(), Some(&history[1]));
    // The controller makes revision 2's ReplicaSet the newest (4) and rolls the pods over.
    env.revision_becomes(STABLE, "4").await;
    env.rolled_out(STABLE).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let images = env.stable_pod_images().await;
        if images.len() == 4 && images.iter().all(|i| *i == history[1]) {
            break;
        }
        assert!(Instant::now() < deadline, "stable pods run {images:?}");
        tokio::time::sleep(POLL).await;
    }

    // The canary is a new Deployment: nothing to go back to.
    let refused = rollout::undo(&env.client, NS, CANARY, None)
        .await
        .expect_err("canary has no history");
    assert_eq!(
        refused,
        ActionError::NoHistory {
            namespace: NS.into(),
            name: CANARY.into()
        }
    );
}

#[tokio::test]
async fn kubectl_reads_and_undoes_the_seeded_history() {
    if !common::tool_available("kubectl", &["version", "--client"], "sim_rehearsal") {
        return;
    }
    let env = start_with_history().await;
    let history = seeded_history();
    let listed = env
        .kubectl_ok(&["rollout", "history", &format!("deployment/{STABLE}")])
        .await;
    let revisions: Vec<&str> = listed
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{listed}");
    for (revision, image) in [("1", &history[0]), ("2", &history[1])] {
        let shown = env
            .kubectl_ok(&[
                "rollout",
                "history",
                &format!("deployment/{STABLE}"),
                &format!("--revision={revision}"),
            ])
            .await;
        assert!(shown.contains(image.as_str()), "{shown}");
    }

    let said = env
        .kubectl_ok(&["rollout", "undo", &format!("deployment/{STABLE}")])
        .await;
    assert_eq!(
        said,
        UndoOutcome::RolledBack { revision: 2 }.message(STABLE)
    );
    assert_eq!(env.image(STABLE).await.as_ref(), Some(&history[1]));
    env.revision_becomes(STABLE, "4").await;

    let canary = env
        .kubectl(&["rollout", "undo", &format!("deployment/{CANARY}")])
        .await;
    assert!(!canary.status.success());
    let ours = ActionError::NoHistory {
        namespace: NS.into(),
        name: CANARY.into(),
    }
    .to_string();
    let theirs = String::from_utf8_lossy(&canary.stderr);
    let theirs = theirs.trim_end().trim_start_matches("error: ");
    assert!(
        ours.ends_with(theirs),
        "kubectl said {theirs:?}, we say {ours:?}"
    );
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// One instant query through the simulator's Prometheus HTTP API at `time`; the value of the
/// single series it must return.
async fn instant(sim: &Simulator, query: &str, time: f64) -> f64 {
    let params = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("time", &format!("{time:.3}"))
        .finish();
    let body: Json = reqwest::Client::new()
        .get(format!("{}/api/v1/query?{params}", sim.prometheus))
        .send()
        .await
        .expect("query sent")
        .json()
        .await
        .expect("json answer");
    let result = body
        .pointer("/data/result")
        .and_then(Json::as_array)
        .unwrap_or_else(|| panic!("{query}: {body}"));
    assert_eq!(result.len(), 1, "{query} at {time}: {body}");
    result[0]
        .pointer("/value/1")
        .and_then(Json::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{query}: {body}"))
}

const STABLE_RATE: &str = r#"sum(rate(http_requests_total{namespace="shop",track="stable"}[5m]))"#;
const STABLE_RATE_1M: &str =
    r#"sum(rate(http_requests_total{namespace="shop",track="stable"}[1m]))"#;
const STABLE_ERRORS: &str = r#"sum(rate(http_requests_total{namespace="shop",track="stable",code=~"5.."}[5m])) / sum(rate(http_requests_total{namespace="shop",track="stable"}[5m]))"#;
const STABLE_P95: &str = r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",track="stable"}[1m])))"#;

#[tokio::test]
async fn a_backfilled_sim_answers_windowed_queries_at_once_and_the_seam_is_smooth() {
    let env = start(SimOptions {
        speed: 20.0,
        backfill: Some(Duration::from_secs(3600)),
        ..SimOptions::default()
    })
    .await;
    let started = now_s();
    let sim = &env.sim;

    // Right away: the demo's 40 requests/s, its 0.2 % errors, a p95 near 150 ms (the bucket
    // interpolation lands it between 100 and 250 ms).
    let rate = instant(sim, STABLE_RATE, started).await;
    assert!((30.0..50.0).contains(&rate), "{rate}");
    let errors = instant(sim, STABLE_ERRORS, started).await;
    assert!((0.0..0.02).contains(&errors), "{errors}");
    let p95 = instant(sim, STABLE_P95, started).await;
    assert!((0.1..0.25).contains(&p95), "{p95}");
    // The whole hour is there, not only its end.
    let early = instant(sim, STABLE_RATE, started - 3300.0).await;
    assert!((30.0..50.0).contains(&early), "{early}");

    // A minute's window reaching past the seam into live samples reads like one before it:
    // a counter reset there would read as a spike of thousands of requests per second.
    let before = instant(sim, STABLE_RATE_1M, started - 1.0).await;
    let deadline = Instant::now() + DEADLINE;
    while now_s() < started + 8.0 {
        assert!(Instant::now() < deadline, "the clock stands still");
        tokio::time::sleep(POLL).await;
    }
    let across = instant(sim, STABLE_RATE_1M, started + 6.0).await;
    assert!(
        (across / before - 1.0).abs() < 0.25,
        "{before} before the seam, {across} across it"
    );
    let resets = instant(
        sim,
        r#"sum(resets(http_requests_total{namespace="shop",track="stable",code="200"}[10m]))"#,
        started + 6.0,
    )
    .await;
    assert_eq!(resets, 0.0);
}
