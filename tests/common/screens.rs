//! The console in fixed states, for snapshot tests: the demo plan with pods, workloads and a
//! minute of samples, then a breach, a rollback, a failed rollback. Built through `update`
//! alone, as the live console is.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::model::{ClusterEvent, PodView, ReplicaSetView, WorkloadView};
use warroom::health::Health;
use warroom::metrics::series::Point;
use warroom::metrics::{MetricsEvent, Sample};
use warroom::plan::{TrackName, Weight};
use warroom::traffic::TrafficEvent;

pub fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

pub fn healthy_app() -> App {
    let plan = warroom::plan::parse(
        std::path::Path::new("plans/demo.yaml"),
        warroom::cli::DEMO_PLAN,
    )
    .expect("demo plan parses");
    let mut app = App::new(
        Arc::new(plan),
        Target {
            environment: "development".into(),
            namespace: "shop".into(),
            context: "sim-development".into(),
            kubeconfig_hint: Some("/tmp/warroom-demo/kubeconfig".into()),
        },
        "alice".into(),
        at(0),
    );
    app.tz = jiff::tz::TimeZone::UTC;
    let mut feed = |a: Action| {
        update(&mut app, a);
    };
    feed(Action::Cluster(ClusterEvent::Health(Health::Live)));
    feed(Action::Traffic(TrafficEvent::Health(Health::Live)));
    feed(Action::Traffic(TrafficEvent::Weight(Weight::ZERO)));
    feed(Action::Metrics(MetricsEvent::Health(Health::Live)));
    let pods: Vec<PodView> = (0..4)
        .map(|i| PodView {
            name: format!(
                "checkout-7d9f8b6c5-{}",
                ["abcde", "fghij", "klmno", "pqrst"][i]
            ),
            track: Some(TrackName::Stable),
            ready_containers: 1,
            total_containers: 1,
            status: "Running".into(),
            restarts: 0,
            created: Some(at(0)),
            version: "2.3.0".into(),
        })
        .chain((0..2).map(|i| {
            PodView {
                name: format!("checkout-canary-5c6d7e8f9-{}", ["uvwxy", "zabcd"][i]),
                track: Some(TrackName::Canary),
                ready_containers: u32::from(i == 0),
                total_containers: 1,
                status: if i == 0 {
                    "Running"
                } else {
                    "ContainerCreating"
                }
                .into(),
                restarts: 0,
                created: Some(at(30)),
                version: "2.4.0".into(),
            }
        }))
        .collect();
    feed(Action::Cluster(ClusterEvent::PodsRelisted(pods)));
    for (track, name, desired, ready, image) in [
        (
            TrackName::Stable,
            "checkout",
            4,
            4,
            "registry.example.com/shop/checkout:2.3.0",
        ),
        (
            TrackName::Canary,
            "checkout-canary",
            2,
            1,
            "registry.example.com/shop/checkout:2.4.0",
        ),
    ] {
        feed(Action::Cluster(ClusterEvent::Workload(
            track,
            WorkloadView {
                name: name.into(),
                desired,
                ready,
                updated: desired,
                available: ready,
                image: image.into(),
                revision: Some(if track == TrackName::Stable { 7 } else { 2 }),
            },
        )));
    }
    feed(Action::Cluster(ClusterEvent::ReplicaSetsRelisted(vec![
        ReplicaSetView {
            name: "checkout-7d9f8b6c5".into(),
            track: TrackName::Stable,
            revision: Some(7),
            desired: 4,
            ready: 4,
        },
        ReplicaSetView {
            name: "checkout-5b4a39d81".into(),
            track: TrackName::Stable,
            revision: Some(6),
            desired: 0,
            ready: 0,
        },
        ReplicaSetView {
            name: "checkout-canary-5c6d7e8f9".into(),
            track: TrackName::Canary,
            revision: Some(2),
            desired: 2,
            ready: 1,
        },
    ])));
    for i in 0..60u64 {
        let wave = (i % 7) as f64;
        let samples = [
            ("error_rate", TrackName::Stable, 0.002 + wave * 0.0002),
            ("error_rate", TrackName::Canary, 0.003 + wave * 0.0003),
            ("latency_p95", TrackName::Stable, 0.140 + wave * 0.004),
            ("latency_p95", TrackName::Canary, 0.150 + wave * 0.005),
            ("cpu", TrackName::Stable, 0.30 + wave * 0.01),
            ("cpu", TrackName::Canary, 0.32 + wave * 0.01),
        ]
        .into_iter()
        .map(|(metric, track, v)| Sample {
            metric: metric.into(),
            track,
            point: Point {
                at: at(i * 2),
                value: Some(v),
            },
        })
        .collect();
        feed(Action::Metrics(MetricsEvent::Samples(samples)));
    }
    feed(Action::Tick(at(120)));
    feed(Action::Key(KeyEvent::new(
        KeyCode::Char('n'),
        KeyModifiers::NONE,
    )));
    app
}

pub fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| warroom::ui::render(app, frame))
        .expect("draws");
    terminal.backend().to_string()
}

/// Samples of one round: everything healthy but the canary's error rate.
pub fn round(canary_error: f64, secs: u64) -> Action {
    let samples = [
        ("error_rate", TrackName::Stable, 0.002),
        ("error_rate", TrackName::Canary, canary_error),
        ("latency_p95", TrackName::Stable, 0.14),
        ("latency_p95", TrackName::Canary, 0.15),
        ("cpu", TrackName::Stable, 0.3),
        ("cpu", TrackName::Canary, 0.3),
    ]
    .into_iter()
    .map(|(metric, track, v)| Sample {
        metric: metric.into(),
        track,
        point: Point {
            at: at(secs),
            value: Some(v),
        },
    })
    .collect();
    Action::Metrics(MetricsEvent::Samples(samples))
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<warroom::app::Effect> {
    update(app, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// Reports every effect as succeeded (or failed with `fail` when it says so).
pub fn report(app: &mut App, effects: Vec<warroom::app::Effect>, fail: Option<&str>) {
    let mut pending = effects;
    while !pending.is_empty() {
        let mut next = Vec::new();
        for effect in pending {
            if let Some(id) = effect.id() {
                let result = match fail {
                    Some(why) => Err(why.to_string()),
                    None => Ok("done".to_string()),
                };
                next.extend(update(app, Action::EffectDone { id, result }));
            }
        }
        pending = next;
    }
}

/// The hold running after the weight step, then two breaching rounds: the countdown runs.
pub fn breach_app() -> App {
    let mut app = healthy_app();
    let effects = key(&mut app, KeyCode::Char('n'));
    report(&mut app, effects, None);
    update(&mut app, round(0.072, 122));
    update(&mut app, round(0.072, 124));
    update(&mut app, Action::Tick(at(125)));
    app
}

/// `!` pressed during the breach; the weight write reported, the flag still in flight.
pub fn rolling_back_app() -> App {
    let mut app = breach_app();
    let effects = key(&mut app, KeyCode::Char('!'));
    let weight = effects.iter().find_map(|e| e.id());
    if let Some(id) = weight {
        update(
            &mut app,
            Action::EffectDone {
                id,
                result: Ok("canary weight 0% stored".into()),
            },
        );
    }
    update(
        &mut app,
        Action::Traffic(TrafficEvent::Weight(Weight::ZERO)),
    );
    update(&mut app, Action::Tick(at(126)));
    app
}

/// `!` pressed; the weight write stored, the flag write refused (403).
pub fn rollback_failed_app() -> App {
    let mut app = breach_app();
    let effects = key(&mut app, KeyCode::Char('!'));
    let mut pending = effects;
    let mut first = true;
    while !pending.is_empty() {
        let mut next = Vec::new();
        for effect in pending {
            if let Some(id) = effect.id() {
                let result = if first {
                    Ok("canary weight 0% stored".to_string())
                } else {
                    Err(
                        "configmaps \"checkout-flags\" is forbidden: patch denied (403)"
                            .to_string(),
                    )
                };
                first = false;
                next.extend(update(&mut app, Action::EffectDone { id, result }));
            }
        }
        pending = next;
    }
    update(
        &mut app,
        Action::Traffic(TrafficEvent::Weight(Weight::ZERO)),
    );
    update(&mut app, Action::Tick(at(127)));
    app
}
