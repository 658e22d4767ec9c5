//! The dashboard drawn into a TestBackend at 120×40 from a fixed state, checked by insta.

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

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn healthy_app() -> App {
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

fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| warroom::ui::render(app, frame))
        .expect("draws");
    terminal.backend().to_string()
}

#[test]
fn dashboard_120x40_healthy() {
    insta::assert_snapshot!(draw(&healthy_app(), 120, 40));
}

#[test]
fn help_overlay_lists_every_key() {
    let mut app = healthy_app();
    update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE)),
    );
    let screen = draw(&app, 120, 40);
    for command in warroom::app::keymap::COMMANDS {
        if command == warroom::app::keymap::Command::Drills {
            continue; // the demo's only
        }
        let keys = app.keymap.keys_of(command);
        let label = keys.first().expect("bound").label();
        let what: String = command.describe().chars().take(20).collect();
        assert!(
            screen.contains(&format!(" {label} ")) && screen.contains(&what),
            "help lacks {label} {what}:\n{screen}"
        );
    }
}

#[test]
fn rollback_shows_on_screen() {
    let mut app = healthy_app();
    update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE)),
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("ROLLING BACK (immediate, 1 of 2, 0:00 of 5m)"),
        "not ROLLED BACK before every action succeeded: {screen}"
    );
    assert!(screen.contains("ROLLBACK (immediate) by alice"), "{screen}");
    assert!(screen.contains("Rollback (immediate)"), "{screen}");
}

#[test]
fn dashboard_80x24_keeps_status_weight_and_rollback_key() {
    let screen = draw(&healthy_app(), 80, 24);
    assert!(screen.contains("RUNNING"), "{screen}");
    assert!(screen.contains("canary 0%"), "{screen}");
    assert!(screen.contains("ROLLBACK"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn dashboard_200x60() {
    insta::assert_snapshot!(draw(&healthy_app(), 200, 60));
}

#[test]
fn sources_down_keep_last_data_on_screen_and_say_since_when() {
    let mut app = healthy_app();
    let down = |secs, error: &str| Health::Degraded {
        since: at(secs),
        error: error.into(),
    };
    let pods_before = app.cluster.pods.len();
    update(
        &mut app,
        Action::Cluster(ClusterEvent::Health(down(
            100,
            "cannot watch pods in namespace shop: API server unreachable (Connection refused)",
        ))),
    );
    // A later retry fails too: the outage still began at the first failure.
    update(
        &mut app,
        Action::Cluster(ClusterEvent::Health(down(110, "still refused"))),
    );
    update(
        &mut app,
        Action::Metrics(MetricsEvent::Health(down(
            105,
            "prometheus http://127.0.0.1:9090 unreachable: Connection refused",
        ))),
    );
    update(
        &mut app,
        Action::Traffic(TrafficEvent::Health(Health::Forbidden(
            "cannot watch httproutes.gateway.networking.k8s.io shop/checkout: forbidden (RBAC)"
                .into(),
        ))),
    );
    let screen = draw(&app, 120, 40);
    assert_eq!(app.cluster.pods.len(), pods_before, "pods kept");
    assert!(
        screen.contains("kube ● reconnecting since 08:01:40"),
        "{screen}"
    );
    assert!(
        screen.contains("prometheus ● reconnecting since 08:01:45"),
        "{screen}"
    );
    assert!(screen.contains("traffic ● FORBIDDEN"), "{screen}");
    assert!(screen.contains("stale"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn a_rollout_under_way_shows_revision_and_old_pods() {
    let mut app = healthy_app();
    // The stable Deployment moved to revision 8; revision 7's ReplicaSet still runs 3 pods.
    let mut stable = app.cluster.workloads[&TrackName::Stable].clone();
    stable.revision = Some(8);
    update(
        &mut app,
        Action::Cluster(ClusterEvent::Workload(TrackName::Stable, stable)),
    );
    update(
        &mut app,
        Action::Cluster(ClusterEvent::ReplicaSetApplied(ReplicaSetView {
            name: "checkout-7d9f8b6c5".into(),
            track: TrackName::Stable,
            revision: Some(7),
            desired: 3,
            ready: 3,
        })),
    );
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("image 2.3.0  4 updated  rev 8  3 old pods"),
        "{screen}"
    );
    assert_eq!(app.cluster.old_pods(TrackName::Canary), 0);
    update(
        &mut app,
        Action::Cluster(ClusterEvent::ReplicaSetDeleted("checkout-7d9f8b6c5".into())),
    );
    assert_eq!(app.cluster.old_pods(TrackName::Stable), 0);
}

/// Samples of one round: everything healthy but the canary's error rate.
fn round(canary_error: f64, secs: u64) -> Action {
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

#[test]
fn a_breach_during_a_hold_shows_the_countdown_and_the_key_that_cancels_it() {
    let mut app = healthy_app();
    // The checklist item, then the weight step's write reported stored: the hold runs.
    let effects = update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE)),
    );
    for effect in effects {
        if let Some(id) = effect.id() {
            update(
                &mut app,
                Action::EffectDone {
                    id,
                    result: Ok("canary weight 10% stored".into()),
                },
            );
        }
    }
    update(&mut app, round(0.072, 122));
    update(&mut app, round(0.072, 124));
    update(&mut app, Action::Tick(at(125)));
    let screen = draw(&app, 120, 40);
    assert!(
        screen.contains("ROLLBACK IMMEDIATE IN 9s — x cancels"),
        "{screen}"
    );
    assert!(screen.contains("x  CANCEL AUTO-ROLLBACK"), "{screen}");
    assert!(screen.contains("BREACH"), "{screen}");
    assert!(
        screen.contains(
            "error_rate canary 7.20% > 5.00% (2 of 2) → rollback immediate in 10s (x to cancel)"
        ),
        "{screen}"
    );
}

/// `warroom watch`: the same dashboard, marked OBSERVER with who is at the run's keys; only
/// `q` and `?` on the key bar, and a run-changing key answered in the log, not carried out.
#[test]
fn observer_says_so_and_keeps_its_hands_off() {
    let mut app = healthy_app();
    app.mode = warroom::app::model::Mode::Observer;
    let effects = update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE)),
    );
    assert!(effects.is_empty());
    let screen = draw(&app, 120, 40);
    assert!(screen.contains(" OBSERVER "), "{screen}");
    assert!(screen.contains("at the keys: alice"), "{screen}");
    assert!(
        screen.contains("read-only: this is an observer (! would roll back at once)"),
        "{screen}"
    );
    assert!(screen.contains(" q  quit   ?  help"), "{screen}");
    assert!(screen.contains("read-only"), "{screen}");
    assert!(!screen.contains(" n  next"), "{screen}");
    assert!(!screen.contains("ROLLING BACK"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_color_keeps_bold_and_reverse_so_the_state_badge_still_stands_out() {
    use ratatui::style::{Color, Modifier};
    let mut app = healthy_app();
    update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE)),
    );
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    terminal
        .draw(|frame| warroom::ui::render_with(&app, frame, true))
        .expect("draws");
    let buffer = terminal.backend().buffer().clone();
    assert!(
        buffer
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "no colour anywhere"
    );
    let header: String = (0..60)
        .map(|x| buffer[(x, 0)].symbol().to_string())
        .collect();
    let start = header.find("ROLLING BACK").expect("the state badge") as u16;
    for x in start..start + 12 {
        let cell = &buffer[(x, 0)];
        assert!(
            cell.modifier.contains(Modifier::BOLD | Modifier::REVERSED),
            "the badge is bold and reversed at column {x}: {:?}",
            cell.modifier
        );
    }
}
