//! Latency harness for the one key that matters (`cargo bench --bench rollback`): `!` pressed →
//! canary weight 0 stored by the API server, through `update`, the effect runner, the
//! gateway-api router and the simulator over loopback HTTP. Prints percentiles only; the
//! target is p99 < 100 ms. Measured twice: without a journal, and with one (the intent written
//! and fsync'd before the write goes out, as every run does).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc::unbounded_channel;

use warroom::app::console::router_for;
use warroom::app::effects::EffectRunner;
use warroom::app::event_loop::intent_of;
use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::client::connect;
use warroom::journal::Journal;
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

struct Setup {
    plan: Arc<warroom::plan::Plan>,
    router: Arc<dyn warroom::traffic::TrafficRouter>,
    runner: EffectRunner,
    bang: Action,
    rounds: usize,
}

fn print_line(what: &str, rounds: usize, millis: &[f64]) {
    println!(
        "rollback `!` → weight 0 stored, {what}, {rounds} rounds: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(millis, 0.5),
        percentile(millis, 0.9),
        percentile(millis, 0.99),
        percentile(millis, 1.0),
    );
}

/// `rounds` times: weight 30, then `!`, timed until weight 0 is stored. With a journal, the
/// inputs and the intent are written as the event loop writes them (the intent fsync'd before
/// the write goes out).
async fn measure(
    setup: &Setup,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>,
    journal: Option<&Journal>,
) -> Res<Vec<f64>> {
    let mut millis = Vec::with_capacity(setup.rounds);
    for _ in 0..setup.rounds {
        setup.router.set_weight(Weight::clamped(30)).await?;
        let mut app = App::new(
            setup.plan.clone(),
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
        let effects = update(&mut app, setup.bang.clone());
        if let Some(journal) = journal {
            for (at, record) in app.recorded.drain(..) {
                journal.record(at, record);
            }
        }
        for effect in effects {
            weight_write = weight_write.or(effect.id());
            match journal {
                Some(journal) => match intent_of(&app, &effect) {
                    Some(intent) => journal.intent(app.now, intent, effect),
                    None => journal.effect(effect),
                },
                None => setup.runner.run(effect),
            }
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
        if setup.router.weight().await? != Weight::ZERO {
            return Err("the rollback did not store weight 0".into());
        }
    }
    millis.sort_by(f64::total_cmp);
    Ok(millis)
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
    let (tx, rx) = unbounded_channel();
    let env = warroom::app::console::env_clients(&plan, "development", "shop", &conn)?;
    let runner = EffectRunner::start(
        plan.clone(),
        std::path::PathBuf::from("."),
        vec![env],
        Default::default(),
        tx,
    );
    let bang = Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE));
    let mut rx = rx;
    let setup = Setup {
        plan: plan.clone(),
        router,
        runner: runner.clone(),
        bang,
        rounds,
    };

    let off = measure(&setup, &mut rx, None).await?;
    print_line("journal off", rounds, &off);
    let path = dir.path().join("bench.jsonl");
    let journal = Journal::start(warroom::journal::writer::create(&path)?, &path, 0);
    let carry = runner.clone();
    journal.attach(
        Box::new(move |effect| carry.run(effect)),
        Box::new(|why| eprintln!("journal: {why}")),
    );
    let on = measure(&setup, &mut rx, Some(&journal)).await?;
    journal.close().await;
    print_line("journal on (intent fsync'd first)", rounds, &on);
    Ok(())
}
