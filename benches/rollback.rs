//! Latency harness for the one key that matters (`cargo bench --bench rollback`): `!` pressed →
//! canary weight 0 stored by the API server, through `update`, the effect runner, the
//! gateway-api router and the simulator over loopback HTTP. Prints percentiles only; the
//! DESIGN target is p99 < 100 ms.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc::unbounded_channel;

use warroom::app::console::router_for;
use warroom::app::effects::EffectRunner;
use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::client::connect;
use warroom::plan::Weight;
use warroom::sim::server::Simulator;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = std::env::var("ROLLBACK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let plan = Arc::new(warroom::plan::parse(
        std::path::Path::new("plans/demo.yaml"),
        warroom::cli::DEMO_PLAN,
    )?);
    let dir = tempfile::tempdir()?;
    let sim = Simulator::start(
        &plan,
        "127.0.0.1:0".parse()?,
        Some(&dir.path().join("kubeconfig")),
        20.0,
    )
    .await?;
    let conn = connect(Some(&sim.kubeconfig), Some("sim-development")).await?;
    let router = router_for(&plan, &conn, "shop")?;
    let (tx, mut rx) = unbounded_channel();
    let env = warroom::app::console::env_clients(&plan, "development", "shop", &conn)?;
    let runner = EffectRunner::start(
        plan.clone(),
        std::path::PathBuf::from("."),
        vec![env],
        Default::default(),
        tx,
    );
    let bang = Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE));

    let mut millis = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        router.set_weight(Weight::clamped(30)).await?;
        let mut app = App::new(
            plan.clone(),
            Target {
                environment: "development".into(),
                namespace: "shop".into(),
                context: "sim-development".into(),
                kubeconfig_hint: None,
            },
            "bench".into(),
            SystemTime::now(),
        );
        app.traffic.observed = Some(Weight::clamped(30));
        let started = Instant::now();
        // The first effect of `!` is the weight-0 write; the clock stops when it is stored.
        let mut weight_write = None;
        for effect in update(&mut app, bang.clone()) {
            weight_write = weight_write.or(effect.id());
            runner.run(effect);
        }
        let weight_write = weight_write.ok_or("`!` sent no write")?;
        loop {
            let action = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await?
                .ok_or("effect runner stopped")?;
            if matches!(&action, Action::EffectDone { id, .. } if *id == weight_write) {
                break;
            }
        }
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        if router.weight().await? != Weight::ZERO {
            return Err("the rollback did not store weight 0".into());
        }
    }
    millis.sort_by(f64::total_cmp);
    println!(
        "rollback `!` → weight 0 stored, {rounds} rounds: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&millis, 0.5),
        percentile(&millis, 0.9),
        percentile(&millis, 0.99),
        percentile(&millis, 1.0),
    );
    Ok(())
}
