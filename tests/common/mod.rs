//! Helpers shared by integration tests: outside tools a test needs, the simulator started on
//! the demo plan, faults posted to it. Test scaffolding only; no assertions about warroom
//! itself live here.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

pub mod headless;
pub mod screens;
pub mod tmux;

use std::process::Command;

/// Whether `tool` runs (`tool args…` exits 0). When it does not: a failure when `CI` is set
/// (`.ci/run` installs it), a loud skip otherwise.
pub fn tool_available(tool: &str, args: &[&str], test: &str) -> bool {
    let found = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required when CI is set (.ci/run installs it)"
        );
        eprintln!("\n*** SKIPPED {test}: {tool} not found on PATH ***\n");
    }
    found
}

/// The built-in demo plan.
pub fn demo_plan() -> std::sync::Arc<warroom::plan::Plan> {
    std::sync::Arc::new(
        warroom::plan::parse(
            std::path::Path::new("plans/demo.yaml"),
            warroom::cli::DEMO_PLAN,
        )
        .expect("demo plan parses"),
    )
}

/// The simulator on free loopback ports, seeded from the demo plan, its kubeconfig in `dir`,
/// at 20× speed; and a kube client for `sim-development` through that kubeconfig.
pub async fn start_demo_sim(
    dir: &std::path::Path,
) -> (
    warroom::sim::server::Simulator,
    warroom::cluster::client::Connection,
) {
    let options = warroom::sim::server::SimOptions {
        speed: 20.0,
        ..Default::default()
    };
    start_demo_sim_with(dir, options).await
}

/// [`start_demo_sim`] with `options` (speed, metric backfill, stable history).
pub async fn start_demo_sim_with(
    dir: &std::path::Path,
    options: warroom::sim::server::SimOptions,
) -> (
    warroom::sim::server::Simulator,
    warroom::cluster::client::Connection,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = warroom::sim::server::Simulator::start_with(
        &demo_plan(),
        "127.0.0.1:0".parse().expect("addr"),
        Some(&dir.join("kubeconfig")),
        options,
    )
    .await
    .expect("simulator starts");
    let conn = warroom::cluster::client::connect(Some(&sim.kubeconfig), Some("sim-development"))
        .await
        .expect("connects");
    (sim, conn)
}

/// Switches on a fault drill (`POST {kubernetes}/sim/faults`).
pub async fn post_fault(sim: &warroom::sim::server::Simulator, body: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{}/sim/faults", sim.kubernetes))
        .body(body.to_string())
        .send()
        .await
        .expect("fault posted");
    // The simulator answers an accepted fault with 201 Created.
    assert_eq!(resp.status(), 201, "{body}: {}", resp.status());
}

/// The demo plan's queries, expanded for both tracks in namespace `shop`.
pub fn demo_probes() -> Vec<warroom::metrics::sampler::Probe> {
    let plan = demo_plan();
    warroom::metrics::sampler::probes(
        &plan.metrics.queries,
        "shop",
        &plan.service,
        plan.metrics.rate.get(),
        &warroom::plan::TrackName::BOTH,
    )
    .expect("probes")
}

/// The next item from `rx`; fails naming `what` when none comes by `deadline` or the sender is
/// gone.
pub async fn next_by<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    deadline: impl Into<tokio::time::Instant>,
    what: &str,
) -> T {
    match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("{what}: the sender is gone"),
        Err(_) => panic!("{what}: nothing before the deadline"),
    }
}

/// Feeds effect results back into `app` (and runs what they start) until nothing is in flight.
pub async fn settle(
    app: &mut warroom::app::App,
    runner: &warroom::app::effects::EffectRunner,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<warroom::app::Action>,
    deadline: impl Into<tokio::time::Instant>,
) {
    let deadline = deadline.into();
    while !app.in_flight.is_empty() {
        let action = next_by(rx, deadline, "effect results").await;
        for effect in warroom::app::update(app, action) {
            runner.run(effect);
        }
    }
}

/// The effect runner with the demo plan's development environment (namespace `shop`) through
/// `conn`.
pub fn runner(
    conn: &warroom::cluster::client::Connection,
    tx: tokio::sync::mpsc::UnboundedSender<warroom::app::Action>,
) -> warroom::app::effects::EffectRunner {
    let plan = demo_plan();
    let env = warroom::app::console::env_clients(&plan, "development", "shop", conn)
        .expect("clients for the development environment");
    warroom::app::effects::EffectRunner::start(
        plan,
        std::path::PathBuf::from("."),
        vec![env],
        Default::default(),
        tx,
    )
}
