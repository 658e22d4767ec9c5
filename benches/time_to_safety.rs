//! Time to safety: an error spike is injected into the simulator at t0 while a hold runs; how
//! long until analysis sees it, the countdown starts, weight 0 is stored and the immediate tier
//! is complete. Real HTTP, the real sampler, engine, update and effect runner; a fresh simulator
//! each round. Run with `cargo bench --bench time_to_safety` (`WARROOM_BENCH_ROUNDS`, default 5).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::unbounded_channel;
use tokio_util::sync::CancellationToken;
use warroom::app::console::{env_clients, router_for};
use warroom::app::effects::EffectRunner;
use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::client::connect;
use warroom::engine::{Finding, RunStatus, StepState, StepWork};
use warroom::metrics::prometheus::{PromClient, PromConfig};
use warroom::metrics::sampler;
use warroom::plan::TrackName;
use warroom::sim::server::Simulator;

type Error = Box<dyn std::error::Error + Send + Sync>;

const INTERVAL_S: u64 = 1;
const AFTER: u64 = 2;
const COUNTDOWN_S: u64 = 3;

fn plan_text() -> String {
    format!(
        r#"version: 1
name: time to safety
service: checkout
risk: low
strategy: canary
environments:
  dev: {{ context: sim-dev, namespace: shop }}
workload: {{ name: checkout, canary: checkout-canary, container: app, image: "registry.example.com/shop/checkout:2.4.0" }}
traffic: {{ router: gateway-api, route: checkout, stable_backend: checkout, canary_backend: checkout-canary }}
metrics:
  interval: {INTERVAL_S}s
  rate: 5s
  queries:
    error_rate: sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",service="{{{{service}}}}",track="{{{{track}}}}",code=~"5.."}}[{{{{rate}}}}])) / sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",service="{{{{service}}}}",track="{{{{track}}}}"}}[{{{{rate}}}}]))
  thresholds:
    error_rate: {{ max: 0.05 }}
  on_breach: {{ action: rollback, tier: immediate, after: {AFTER}, countdown: {COUNTDOWN_S}s }}
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 20
      - hold: 10m
rollback:
  immediate:
    target: 5m
    actions:
      - weight: 0
      - flag: {{ configmap: checkout-flags, key: new_payment_flow, value: "false" }}
"#
    )
}

/// Seconds from t0 to each milestone.
#[derive(Debug, Default, Clone, Copy)]
struct Times {
    breach: f64,
    countdown: f64,
    weight_zero: f64,
    done: f64,
}

async fn round() -> Result<Times, Error> {
    let dir = tempfile::tempdir()?;
    let plan_path = dir.path().join("plan.yaml");
    std::fs::write(&plan_path, plan_text())?;
    let plan = Arc::new(warroom::plan::load_file(&plan_path).map_err(|e| format!("{e:?}"))?);
    let sim = Simulator::start(
        &plan,
        "127.0.0.1:0".parse()?,
        Some(&dir.path().join("kubeconfig")),
        20.0,
    )
    .await?;
    let conn = connect(Some(&sim.kubeconfig), Some("sim-dev")).await?;
    let (tx, mut rx) = unbounded_channel();
    let runner = EffectRunner::start(
        plan.clone(),
        PathBuf::from("."),
        vec![env_clients(&plan, "dev", "shop", &conn)?],
        Default::default(),
        tx.clone(),
    );
    let cancel = CancellationToken::new();
    let probes = sampler::probes(
        &plan.metrics.queries,
        "shop",
        &plan.service,
        plan.metrics.rate.get(),
        plan.tracks(),
    )?;
    let prom = PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_secs(10)))?;
    let metrics_tx = tx.clone();
    tokio::spawn(sampler::run(
        prom,
        probes,
        plan.metrics.interval.get(),
        move |e| {
            let _ = metrics_tx.send(Action::Metrics(e));
        },
        cancel.child_token(),
    ));
    let traffic_tx = tx.clone();
    tokio::spawn(warroom::traffic::follow::follow(
        router_for(&plan, &conn, "shop")?,
        move |e| {
            let _ = traffic_tx.send(Action::Traffic(e));
        },
        cancel.child_token(),
    ));
    // The console's own 1 Hz clock: countdowns end on its ticks.
    warroom::app::event_loop::spawn_clock(tx.clone(), cancel.clone());

    let mut app = App::new(
        plan.clone(),
        Target {
            environment: "dev".into(),
            namespace: "shop".into(),
            context: "sim-dev".into(),
            kubeconfig_hint: None,
        },
        "bench".into(),
        SystemTime::now(),
    );
    for effect in update(&mut app, Action::Begin) {
        runner.run(effect);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut clean_rounds = 0;
    let mut t0: Option<Instant> = None;
    let mut times = Times::default();
    let mut seen = (false, false, false);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // As the console's event loop does: a countdown wakes the loop when it ends.
        let countdown = app
            .deployment
            .countdown
            .as_ref()
            .map(|c| c.ends.duration_since(SystemTime::now()).unwrap_or_default());
        let action = tokio::select! {
            a = tokio::time::timeout(left, rx.recv()) => a
                .map_err(|_| "no rollback within 120 s")?
                .ok_or("channel closed")?,
            () = tokio::time::sleep(countdown.unwrap_or(left)), if countdown.is_some() => {
                Action::Tick(SystemTime::now())
            }
        };
        let samples = matches!(action, Action::Metrics(_));
        for effect in update(&mut app, action) {
            runner.run(effect);
        }
        let d = &app.deployment;
        let holding = d.current().is_some_and(|s| {
            matches!(s.work, StepWork::Hold(_)) && matches!(s.state, StepState::Running { .. })
        });
        match t0 {
            None => {
                if holding && samples {
                    clean_rounds = if d.analysis.clean() && d.countdown.is_none() {
                        clean_rounds + 1
                    } else {
                        0
                    };
                }
                if d.status != RunStatus::Running {
                    return Err(format!(
                        "the plan left its hold before the spike: {}",
                        d.headline(SystemTime::now())
                    )
                    .into());
                }
                // Three clean rounds in a row first, so the spike is judged against live data.
                if clean_rounds >= 3 {
                    let client = reqwest::Client::new();
                    let resp = client
                        .post(format!("{}/sim/faults", sim.kubernetes))
                        .body(r#"{"kind":"error_spike","namespace":"shop","service":"checkout","track":"canary","ratio":0.5,"for":"60s"}"#)
                        .send()
                        .await?;
                    if !resp.status().is_success() {
                        return Err(format!("fault refused: {}", resp.status()).into());
                    }
                    t0 = Some(Instant::now());
                }
            }
            Some(t0) => {
                let at = t0.elapsed().as_secs_f64();
                let breach = d
                    .analysis
                    .latest
                    .get(&("error_rate".to_string(), TrackName::Canary))
                    .is_some_and(|f| matches!(f, Finding::Breach(_)));
                if breach && !seen.0 {
                    seen.0 = true;
                    times.breach = at;
                }
                if d.countdown.is_some() && !seen.1 {
                    seen.1 = true;
                    times.countdown = at;
                }
                let zero = d
                    .rollback
                    .as_ref()
                    .and_then(|r| r.actions.first())
                    .is_some_and(|a| a.state == StepState::Done);
                if zero && !seen.2 {
                    seen.2 = true;
                    times.weight_zero = at;
                }
                match d.status {
                    RunStatus::RolledBack => {
                        times.done = at;
                        break;
                    }
                    RunStatus::RollbackFailed => return Err("ROLLBACK FAILED".into()),
                    _ => {}
                }
            }
        }
    }
    cancel.cancel();
    sim.shutdown();
    Ok(times)
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    (median, v[v.len() - 1])
}

fn main() -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = std::env::var("WARROOM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Runtime::new()?;
    let mut all = Vec::new();
    let mut i = 0;
    let mut failed = 0;
    while all.len() < rounds {
        i += 1;
        let t = match rt.block_on(round()) {
            Ok(t) => t,
            // Reported, and not counted: a round that never got to inject its spike.
            Err(e) if failed < rounds => {
                failed += 1;
                eprintln!("round {i} discarded: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        eprintln!(
            "round {i}: breach {:.2} s, countdown {:.2} s, weight 0 {:.2} s, tier done {:.2} s",
            t.breach, t.countdown, t.weight_zero, t.done
        );
        all.push(t);
    }
    let floor = AFTER * INTERVAL_S + COUNTDOWN_S;
    println!(
        "time to safety, error spike at t0, {rounds} rounds (interval {INTERVAL_S}s, after {AFTER}, countdown {COUNTDOWN_S}s, rate window 5s; floor after×interval+countdown = {floor} s):"
    );
    for (name, values) in [
        (
            "first breaching sample",
            all.iter().map(|t| t.breach).collect::<Vec<_>>(),
        ),
        ("countdown start", all.iter().map(|t| t.countdown).collect()),
        (
            "weight 0 stored",
            all.iter().map(|t| t.weight_zero).collect(),
        ),
        ("tier complete", all.iter().map(|t| t.done).collect()),
    ] {
        let (median, worst) = stats(values);
        println!("  {name:<24} median {median:6.2} s   worst {worst:6.2} s");
    }
    Ok(())
}
