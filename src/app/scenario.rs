//! Tests only: the demo plan run second by second through `update`, as the cluster, Prometheus
//! and an operator pressing `n` would drive it — for tests that need the states a real run
//! passes through (holds counting, pods ageing, a breach, its countdown, a rollback).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, Effect};
use super::model::{App, Target};
use super::update::update;
use crate::cluster::model::{ClusterEvent, PodView};
use crate::engine::{RunStatus, Work};
use crate::health::Health;
use crate::metrics::series::Point;
use crate::metrics::{MetricsEvent, Sample};
use crate::plan::{TrackName, Weight};
use crate::traffic::TrafficEvent;

pub fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

pub fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// The demo plan at `now` and nothing else: one environment (`development` on context `sim`),
/// `t` at the keys, no sources yet.
pub fn bare(now: SystemTime) -> App {
    let plan = crate::plan::parse(Path::new("demo.yaml"), crate::cli::DEMO_PLAN)
        .expect("demo plan parses");
    App::new(
        Arc::new(plan),
        Target {
            environment: "development".into(),
            namespace: "shop".into(),
            context: "sim".into(),
            kubeconfig_hint: None,
        },
        "t".into(),
        now,
    )
}

/// The demo plan at `at(0)`, sources live, weight 0, six pods (the canary's two younger), with
/// `carol` at the keys (the production approval is hers).
pub fn app() -> App {
    let plan = crate::plan::parse(Path::new("demo.yaml"), crate::cli::DEMO_PLAN)
        .expect("demo plan parses");
    let mut app = App::new(
        Arc::new(plan),
        Target {
            environment: "development".into(),
            namespace: "shop".into(),
            context: "sim-development".into(),
            kubeconfig_hint: None,
        },
        "carol".into(),
        at(0),
    );
    app.tz = jiff::tz::TimeZone::UTC;
    for name in app.plan.environments.keys() {
        let target = Target {
            environment: name.clone(),
            namespace: "shop".into(),
            context: format!("sim-{name}"),
            kubeconfig_hint: None,
        };
        app.targets.insert(name.clone(), target);
    }
    for action in [
        Action::Cluster(ClusterEvent::Health(Health::Live)),
        Action::Traffic(TrafficEvent::Health(Health::Live)),
        Action::Traffic(TrafficEvent::Weight(Weight::ZERO)),
        Action::Metrics(MetricsEvent::Health(Health::Live)),
        Action::Cluster(ClusterEvent::PodsRelisted(pods())),
    ] {
        update(&mut app, action);
    }
    app
}

fn pods() -> Vec<PodView> {
    let pod = |name: String, track, created| PodView {
        name,
        track: Some(track),
        ready_containers: 1,
        total_containers: 1,
        status: "Running".into(),
        restarts: 0,
        created: Some(at(created)),
        version: "2.3.0".into(),
    };
    (0..4)
        .map(|i| pod(format!("checkout-7d9f8b6c5-{i}"), TrackName::Stable, 0))
        .chain((0..2).map(|i| pod(format!("checkout-canary-5c6d7e-{i}"), TrackName::Canary, 30)))
        .collect()
}

/// One round of samples at `t`; the canary's error rate as given.
pub fn samples(t: u64, canary_errors: f64) -> Action {
    let samples = [
        ("error_rate", TrackName::Stable, 0.001),
        ("error_rate", TrackName::Canary, canary_errors),
        ("latency_p95", TrackName::Stable, 0.120),
        ("latency_p95", TrackName::Canary, 0.130),
        ("cpu", TrackName::Stable, 0.30),
        ("cpu", TrackName::Canary, 0.32),
    ]
    .into_iter()
    .map(|(metric, track, value)| Sample {
        metric: metric.into(),
        track,
        point: Point {
            at: at(t),
            value: Some(value),
        },
    })
    .collect();
    Action::Metrics(MetricsEvent::Samples(samples))
}

/// Every piece of work done at once, as the cluster would report it; a weight written is read
/// back.
pub fn complete(app: &mut App, effects: Vec<Effect>) {
    let mut queue = effects;
    while let Some(effect) = queue.pop() {
        let Effect::Work { id, work, .. } = effect else {
            continue;
        };
        queue.extend(update(
            app,
            Action::EffectDone {
                id,
                result: Ok("done".into()),
            },
        ));
        if let Work::SetWeight { weight, .. } = work {
            queue.extend(update(app, Action::Traffic(TrafficEvent::Weight(weight))));
        }
    }
}

/// Runs from second `from` to `to`: samples every 2 s (the canary failing from `breach_at`),
/// `n` whenever a person is awaited, all work done at once, pods wherever the screen is, and a tick each second, which
/// `on_tick` sees before and after.
pub fn drive(
    app: &mut App,
    from: u64,
    to: u64,
    breach_at: Option<u64>,
    mut on_tick: impl FnMut(&App, &App),
) {
    for t in from..to {
        if t % 2 == 0 {
            let errors = if breach_at.is_some_and(|b| t >= b) {
                0.5
            } else {
                0.001
            };
            let effects = update(app, samples(t, errors));
            complete(app, effects);
        }
        if app.deployment.waiting_for_person().is_some()
            && !matches!(
                app.deployment.status,
                RunStatus::RolledBack | RunStatus::RollbackFailed
            )
        {
            let mut effects = update(app, key('n'));
            // Where a change asks first (a high-risk phase), the operator says yes.
            if matches!(app.modal(), Some(super::modal::Modal::Confirm(_))) {
                effects.extend(update(app, key('y')));
            }
            complete(app, effects);
        }
        // Each environment's pods, once the screen has moved there.
        if app.cluster.pods.is_empty() {
            update(app, Action::Cluster(ClusterEvent::PodsRelisted(pods())));
        }
        app.recorded.clear();
        let before = app.clone();
        let effects = update(app, Action::Tick(at(t)));
        on_tick(&before, app);
        complete(app, effects);
        app.recorded.clear();
    }
}
