//! The dashboard drawn into a TestBackend at 120×40 from a fixed state, checked by insta.

mod common;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use warroom::app::{Action, update};
use warroom::cluster::model::{ClusterEvent, ReplicaSetView};
use warroom::health::Health;
use warroom::metrics::MetricsEvent;
use warroom::plan::TrackName;
use warroom::traffic::TrafficEvent;

use common::screens::{at, draw, healthy_app, round};

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
    assert!(screen.contains("q  quit watching"), "{screen}");
    assert!(
        screen.contains("read-only: the run is changed only at its own console"),
        "{screen}"
    );
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
