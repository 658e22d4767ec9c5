//! The Health panel in the whole console, drawn into a TestBackend and checked by insta: a
//! healthy canary in its hold, a breach with the rollback countdown running, the same breach
//! once the countdown was cancelled; at 120×40 and 80×24 (and 200×60 for the countdown). And
//! odd data — NaN, ±∞, negative, huge values, a zero threshold, a minimum-only metric — drawn
//! at many sizes without a panic.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::model::{ClusterEvent, PodView, WorkloadView};
use warroom::health::Health;
use warroom::metrics::series::Point;
use warroom::metrics::{MetricsEvent, Sample};
use warroom::plan::{Plan, Threshold, TrackName, Weight};
use warroom::traffic::TrafficEvent;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn demo_plan() -> Plan {
    warroom::plan::parse(
        std::path::Path::new("plans/demo.yaml"),
        warroom::cli::DEMO_PLAN,
    )
    .expect("demo plan parses")
}

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// One round of samples at `secs`: `(metric, track, value)`.
fn samples(secs: u64, values: &[(&str, TrackName, Option<f64>)]) -> Action {
    Action::Metrics(MetricsEvent::Samples(
        values
            .iter()
            .map(|(metric, track, value)| Sample {
                metric: (*metric).into(),
                track: *track,
                point: Point {
                    at: at(secs),
                    value: *value,
                },
            })
            .collect(),
    ))
}

/// A healthy round of the demo's metrics, wavering a little with `i`; the canary's error rate
/// as given.
fn round(i: u64, canary_error: f64) -> Action {
    let wave = (i % 7) as f64;
    samples(
        i * 2,
        &[
            ("error_rate", TrackName::Stable, Some(0.002 + wave * 0.0002)),
            ("error_rate", TrackName::Canary, Some(canary_error)),
            ("latency_p95", TrackName::Stable, Some(0.140 + wave * 0.004)),
            ("latency_p95", TrackName::Canary, Some(0.150 + wave * 0.005)),
            ("cpu", TrackName::Stable, Some(0.30 + wave * 0.01)),
            ("cpu", TrackName::Canary, Some(0.32 + wave * 0.01)),
        ],
    )
}

fn canary_error(i: u64) -> f64 {
    0.003 + (i % 7) as f64 * 0.0003
}

/// The console of `plan` at 08:02:00 with two minutes of samples, the sources live, pods and
/// workloads of both tracks, and the plan started (its checklist item waiting).
fn started(plan: Plan) -> App {
    let mut app = App::new(
        Arc::new(plan),
        Target {
            environment: "development".into(),
            namespace: "shop".into(),
            context: "sim-development".into(),
            kubeconfig_hint: None,
        },
        "alice".into(),
        at(0),
    );
    app.tz = jiff::tz::TimeZone::UTC;
    for action in [
        Action::Cluster(ClusterEvent::Health(Health::Live)),
        Action::Traffic(TrafficEvent::Health(Health::Live)),
        Action::Traffic(TrafficEvent::Weight(Weight::ZERO)),
        Action::Metrics(MetricsEvent::Health(Health::Live)),
    ] {
        update(&mut app, action);
    }
    let pod = |name: &str, track, version: &str| PodView {
        name: name.into(),
        track: Some(track),
        ready_containers: 1,
        total_containers: 1,
        status: "Running".into(),
        restarts: 0,
        created: Some(at(0)),
        version: version.into(),
    };
    update(
        &mut app,
        Action::Cluster(ClusterEvent::PodsRelisted(vec![
            pod(
                "checkout-canary-5c6d7e8f9-uvwxy",
                TrackName::Canary,
                "2.4.0",
            ),
            pod("checkout-7d9f8b6c5-abcde", TrackName::Stable, "2.3.0"),
            pod("checkout-7d9f8b6c5-fghij", TrackName::Stable, "2.3.0"),
            pod("checkout-7d9f8b6c5-klmno", TrackName::Stable, "2.3.0"),
        ])),
    );
    for (track, name, desired, tag) in [
        (TrackName::Stable, "checkout", 3, "2.3.0"),
        (TrackName::Canary, "checkout-canary", 1, "2.4.0"),
    ] {
        update(
            &mut app,
            Action::Cluster(ClusterEvent::Workload(
                track,
                WorkloadView {
                    name: name.into(),
                    desired,
                    ready: desired,
                    updated: desired,
                    available: desired,
                    image: format!("registry.example.com/shop/checkout:{tag}"),
                    revision: Some(if track == TrackName::Stable { 7 } else { 2 }),
                },
            )),
        );
    }
    for i in 0..60 {
        update(&mut app, round(i, canary_error(i)));
    }
    update(&mut app, Action::Tick(at(120)));
    update(&mut app, key('n'));
    app
}

/// The checklist item passed, the weight step's 10% stored and seen: the hold runs, and both
/// tracks serve traffic, so analysis judges both.
fn into_the_hold(app: &mut App) {
    let effects = update(app, key('n'));
    for effect in effects {
        if let Some(id) = effect.id() {
            update(
                app,
                Action::EffectDone {
                    id,
                    result: Ok("canary weight 10% stored".into()),
                },
            );
        }
    }
    let ten = Weight::new(10).expect("10%");
    update(app, Action::Traffic(TrafficEvent::Weight(ten)));
}

/// In the hold at 08:02:11, five clean rounds judged.
fn healthy_canary() -> App {
    let mut app = started(demo_plan());
    into_the_hold(&mut app);
    for i in 61..=65 {
        update(&mut app, round(i, canary_error(i)));
    }
    update(&mut app, Action::Tick(at(131)));
    app
}

/// In the hold, the canary's error rate climbs past 5% for two rounds (the demo's `after: 2`):
/// the 10 s countdown started at 08:02:10 and 7 s are left.
fn breach_with_countdown() -> App {
    let mut app = started(demo_plan());
    into_the_hold(&mut app);
    for i in 61..=63 {
        update(&mut app, round(i, canary_error(i)));
    }
    update(&mut app, round(64, 0.061));
    update(&mut app, round(65, 0.072));
    update(&mut app, Action::Tick(at(133)));
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
fn healthy_canary_120x40() {
    let app = healthy_canary();
    assert!(app.deployment.countdown.is_none());
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("✓ ok"), "{screen}");
    assert!(screen.contains("┄ max 5.00%"), "{screen}");
    assert!(screen.contains("scale 0–6.25%"), "{screen}");
    assert!(!screen.contains("BREACH"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn healthy_canary_80x24() {
    let screen = draw(&healthy_canary(), 80, 24);
    // The threshold in symbols, so each track's gauge keeps four cells and a mark.
    assert!(screen.contains("≤5.00%"), "{screen}");
    assert!(screen.contains("s ▏  │"), "{screen}");
    assert!(!screen.contains("BREACH"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn breach_with_countdown_120x40() {
    let app = breach_with_countdown();
    assert!(app.deployment.countdown.is_some(), "the demo rolls back");
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Health — ✗ BREACH"), "{screen}");
    assert!(screen.contains("✗ BREACH"), "{screen}");
    assert!(screen.contains("x cancels · ! now"), "{screen}");
    assert!(screen.contains("ROLLBACK IMMEDIATE"), "{screen}");
    // The big 7 and s.
    assert!(screen.contains("   █ █▀▀"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn breach_with_countdown_80x24() {
    let screen = draw(&breach_with_countdown(), 80, 24);
    assert!(
        screen.contains("ROLLBACK IMMEDIATE IN 7s — x cancels · ! now"),
        "{screen}"
    );
    assert!(screen.contains("7.20%✗"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn breach_with_countdown_200x60() {
    let screen = draw(&breach_with_countdown(), 200, 60);
    assert!(
        screen.contains("ROLLBACK IMMEDIATE — x cancels · ! now"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn an_observer_is_told_where_the_countdown_is_cancelled() {
    let mut app = breach_with_countdown();
    app.mode = warroom::app::model::Mode::Observer;
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("x at the run's"), "{screen}");
    assert!(!screen.contains("! now"), "{screen}");
}

/// `x` cancelled the countdown; the canary still breaches: red border, BREACH in the title and
/// beside the value, no digits.
#[test]
fn breach_without_countdown_120x40() {
    let mut app = breach_with_countdown();
    update(&mut app, key('x'));
    assert!(app.deployment.countdown.is_none());
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("Health — ✗ BREACH"), "{screen}");
    assert!(!screen.contains("x cancels"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn stale_data_says_so_and_keeps_the_verdict_words() {
    let mut app = breach_with_countdown();
    update(
        &mut app,
        Action::Metrics(MetricsEvent::Health(Health::Degraded {
            since: at(132),
            error: "refused".into(),
        })),
    );
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = draw(&app, w, h);
        assert!(screen.contains("— stale"), "{screen}");
        assert!(screen.contains("✗"), "{screen}");
    }
}

/// The demo plan with a throughput metric that must stay above a minimum, a zero threshold, a
/// threshold that is not a number and one at the largest float; samples of every odd kind.
fn odd_app() -> App {
    let mut plan = demo_plan();
    plan.metrics.queries.insert(
        "requests".into(),
        "sum(rate(http_requests_total[1m]))".into(),
    );
    let threshold = |max, min| Threshold {
        max,
        min,
        vs_stable: None,
    };
    let thresholds = &mut plan.metrics.thresholds;
    thresholds.insert("requests".into(), threshold(None, Some(50.0)));
    thresholds.insert("error_rate".into(), threshold(Some(0.0), None));
    thresholds.insert("cpu".into(), threshold(Some(f64::NAN), Some(-1.0)));
    thresholds.insert("latency_p95".into(), threshold(Some(f64::MAX), None));
    let mut app = started(plan);
    into_the_hold(&mut app);
    let odd = [
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(-0.5),
        Some(0.0),
        Some(f64::MAX),
        Some(1e-300),
        None,
        Some(420.0),
        Some(40.0),
    ];
    for (i, v) in odd.iter().enumerate() {
        let secs = 122 + 2 * i as u64;
        let mut values = vec![("requests", TrackName::Stable, Some(400.0 + i as f64))];
        for metric in ["error_rate", "latency_p95", "cpu"] {
            values.push((metric, TrackName::Stable, *v));
            values.push((metric, TrackName::Canary, *v));
        }
        values.push(("requests", TrackName::Canary, *v));
        update(&mut app, samples(secs, &values));
    }
    update(&mut app, Action::Tick(at(141)));
    app
}

#[test]
fn a_minimum_only_metric_draws_its_threshold_and_odd_data_draws_without_a_panic() {
    let app = odd_app();
    let screen = draw(&app, 120, 46);
    assert!(screen.contains("┄ min 50.000"), "{screen}");
    assert!(screen.contains("┄ max 0.00%"), "{screen}");
    insta::assert_snapshot!(screen);
    for (w, h) in [
        (200, 60),
        (120, 40),
        (80, 24),
        (100, 30),
        (80, 60),
        (60, 20),
        (40, 12),
        (20, 8),
        (1, 1),
    ] {
        draw(&app, w, h);
        draw(&breach_with_countdown(), w, h);
        draw(&healthy_canary(), w, h);
    }
}

/// The cell of the first `text` on screen from row `from` down.
fn find_from(buffer: &ratatui::buffer::Buffer, from: u16, text: &str) -> (u16, u16) {
    let width = buffer.area.width;
    for y in from..buffer.area.height {
        let row: Vec<String> = (0..width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        for x in 0..width {
            let here: String = row[usize::from(x)..].concat();
            if here.starts_with(text) {
                return (x, y);
            }
        }
    }
    panic!("{text} not on screen");
}

fn find(buffer: &ratatui::buffer::Buffer, text: &str) -> (u16, u16) {
    find_from(buffer, 0, text)
}

fn buffer_of(app: &App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| warroom::ui::render(app, frame))
        .expect("draws");
    terminal.backend().buffer().clone()
}

/// The engine's verdict, in red and bold and in words; the border red too; a healthy track's
/// verdict green.
#[test]
fn the_engines_breach_is_red_and_bold_and_an_ok_is_green() {
    use ratatui::style::{Color, Modifier};
    let buffer = buffer_of(&breach_with_countdown(), 120, 40);
    // Below the header, which says the same in its own colours.
    let (_, panel) = find(&buffer, "┏ Health");
    for text in ["✗ BREACH", " 7.20%┃", "ROLLBACK IMMEDIATE IN"] {
        let (x, y) = find_from(&buffer, panel + 1, text);
        let cell = &buffer[(x + 2, y)];
        assert_eq!(cell.fg, Color::Red, "{text}");
        assert!(cell.modifier.contains(Modifier::BOLD), "{text}");
    }
    let (x, y) = find(&buffer, "┏ Health");
    assert_eq!(buffer[(x, y)].fg, Color::Red, "the border");
    let (x, y) = find(&buffer, "✓ ok");
    assert_eq!(buffer[(x, y)].fg, Color::Green);
    // The panel's own reading does not colour: a value over the threshold that the engine
    // has not judged a breach stays the track's colour.
    let mut app = healthy_canary();
    update(&mut app, round(66, 0.09));
    app.deployment.analysis.latest.clear();
    let buffer = buffer_of(&app, 120, 40);
    let (_, panel) = find(&buffer, "┌ Health");
    let (x, y) = find_from(&buffer, panel, "9.00%");
    assert_ne!(buffer[(x, y)].fg, Color::Red);
    for y in panel..panel + 17 {
        assert!(
            (0..120).all(|x| buffer[(x, y)].fg != Color::Red),
            "nothing red in the panel, row {y}"
        );
    }
}
