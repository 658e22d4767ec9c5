//! `update`: the one place where the console decides what an action means.
//! Pure: no IO, no clock reads, no `.await`. Returns the effects to run.

use crate::cluster::model::ClusterEvent;
use crate::engine::{Command as EngineCommand, CommandKind, Outcome};
use crate::metrics::MetricsEvent;
use crate::metrics::series::Series;
use crate::plan::{Step, Weight, WeightStep};
use crate::traffic::TrafficEvent;

use super::action::{Action, Effect, EffectId};
use super::keymap::{self, Command};
use super::model::{App, Level, Origin};

/// Applies one action to the app and returns the effects it calls for.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(key) => match keymap::command_for(&key, app.help_open) {
            Some(command) => on_command(app, command),
            None => Vec::new(),
        },
        Action::Tick(now) => {
            app.now = now;
            let outcome = app.deployment.tick(now);
            apply_outcome(app, outcome)
        }
        Action::Resize => Vec::new(),
        Action::Cluster(event) => {
            on_cluster(app, event);
            Vec::new()
        }
        Action::Traffic(event) => {
            on_traffic(app, event);
            Vec::new()
        }
        Action::Metrics(event) => {
            on_metrics(app, event);
            Vec::new()
        }
        Action::EffectDone { id, result } => on_effect_done(app, id, result),
        Action::EffectProgress { id, note } => {
            if app.in_flight.contains_key(&id) {
                app.push_log(Level::Warn, note);
            }
            Vec::new()
        }
        Action::InputClosed(why) => {
            app.push_log(Level::Warn, format!("terminal closed ({why}); leaving"));
            app.should_quit = true;
            Vec::new()
        }
    }
}

fn on_command(app: &mut App, command: Command) -> Vec<Effect> {
    match command {
        Command::Advance => {
            let outcome = app.deployment.advance(app.now);
            apply_outcome(app, outcome)
        }
        Command::TogglePause => {
            let outcome = app.deployment.toggle_pause(app.now);
            apply_outcome(app, outcome)
        }
        Command::WeightUp => shift_weight(app, 1),
        Command::WeightDown => shift_weight(app, -1),
        Command::EmergencyRollback => emergency_rollback(app),
        Command::ToggleHelp => {
            app.help_open = !app.help_open;
            Vec::new()
        }
        Command::CloseModal => {
            app.help_open = false;
            Vec::new()
        }
        Command::Quit => {
            app.should_quit = true;
            Vec::new()
        }
    }
}

fn shift_weight(app: &mut App, direction: i64) -> Vec<Effect> {
    let step = app
        .plan
        .traffic
        .as_ref()
        .map_or(10, |t| i64::from(t.step.percent()));
    let Some(base) = app.weight_base() else {
        app.push_log(
            Level::Warn,
            "canary weight not read yet; cannot shift it — check the traffic router's health",
        );
        return Vec::new();
    };
    let target = base.shifted(direction * step);
    if target == base {
        app.push_log(Level::Info, format!("canary weight already at {base}"));
        return Vec::new();
    }
    app.push_log(
        Level::Operator,
        format!("{}: canary weight {base} → {target}", app.operator),
    );
    vec![set_weight(app, target, Origin::ManualWeight)]
}

fn emergency_rollback(app: &mut App) -> Vec<Effect> {
    app.push_log(
        Level::Error,
        format!(
            "ROLLBACK (immediate) by {}: canary weight → 0%",
            app.operator
        ),
    );
    app.deployment.rolled_back();
    let effects = vec![set_weight(app, Weight::ZERO, Origin::Rollback)];
    let actions: Vec<Step> = app
        .plan
        .rollback
        .immediate
        .as_ref()
        .map(|tier| tier.actions.clone())
        .unwrap_or_default();
    for action in actions {
        match action {
            // Already sent first, before anything else.
            Step::Weight(WeightStep::To(w)) if w == Weight::ZERO => {}
            other => {
                let (label, _) = crate::engine::state::describe(&other);
                app.push_log(
                    Level::Warn,
                    format!("rollback action not automated yet — do it by hand: {label}"),
                );
            }
        }
    }
    effects
}

fn set_weight(app: &mut App, weight: Weight, origin: Origin) -> Effect {
    let id = app.next_effect_id();
    app.in_flight.insert(id, origin);
    app.traffic.requested = Some((id, weight));
    Effect::SetWeight {
        id,
        weight,
        emergency: origin == Origin::Rollback,
    }
}

fn apply_outcome(app: &mut App, outcome: Outcome) -> Vec<Effect> {
    for line in outcome.log {
        app.push_log(Level::Info, line);
    }
    outcome
        .commands
        .into_iter()
        .map(|command| run_engine_command(app, command))
        .collect()
}

fn run_engine_command(app: &mut App, command: EngineCommand) -> Effect {
    let origin = Origin::Step(command.origin);
    match command.kind {
        CommandKind::SetWeight(w) => set_weight(app, w, origin),
    }
}

fn on_effect_done(app: &mut App, id: EffectId, result: Result<String, String>) -> Vec<Effect> {
    let Some(origin) = app.in_flight.remove(&id) else {
        return Vec::new();
    };
    if let Some((pending, weight)) = app.traffic.requested {
        if pending == id {
            app.traffic.requested = None;
            if result.is_ok() {
                app.traffic.observed = Some(weight);
            }
        }
    }
    match origin {
        Origin::Step(at) => {
            let outcome = app.deployment.command_done(at, result.map(|_| ()), app.now);
            apply_outcome(app, outcome)
        }
        Origin::ManualWeight | Origin::Rollback => {
            match result {
                Ok(note) => app.push_log(Level::Info, note),
                Err(e) => app.push_log(Level::Error, e),
            }
            Vec::new()
        }
    }
}

fn on_cluster(app: &mut App, event: ClusterEvent) {
    match event {
        ClusterEvent::PodsRelisted(pods) => {
            app.cluster.pods = pods.into_iter().map(|p| (p.name.clone(), p)).collect();
        }
        ClusterEvent::PodApplied(pod) => {
            app.cluster.pods.insert(pod.name.clone(), pod);
        }
        ClusterEvent::PodDeleted(name) => {
            app.cluster.pods.remove(&name);
        }
        ClusterEvent::Workload(track, view) => {
            app.cluster.workloads.insert(track, view);
        }
        ClusterEvent::ReplicaSetsRelisted(sets) => {
            app.cluster.replica_sets = sets.into_iter().map(|r| (r.name.clone(), r)).collect();
        }
        ClusterEvent::ReplicaSetApplied(rs) => {
            app.cluster.replica_sets.insert(rs.name.clone(), rs);
        }
        ClusterEvent::ReplicaSetDeleted(name) => {
            app.cluster.replica_sets.remove(&name);
        }
        ClusterEvent::Health(health) => {
            let health = app.cluster.health.then(health);
            log_health_change(app, "kubernetes", &app.cluster.health.clone(), &health);
            app.cluster.health = health;
        }
    }
}

fn on_traffic(app: &mut App, event: TrafficEvent) {
    match event {
        TrafficEvent::Weight(w) => app.traffic.observed = Some(w),
        TrafficEvent::Health(health) => {
            let health = app.traffic.health.then(health);
            log_health_change(app, "traffic router", &app.traffic.health.clone(), &health);
            app.traffic.health = health;
        }
    }
}

fn on_metrics(app: &mut App, event: MetricsEvent) {
    match event {
        MetricsEvent::Samples(samples) => {
            let capacity = app.series_capacity();
            for sample in samples {
                app.metrics
                    .series
                    .entry((sample.metric, sample.track))
                    .or_insert_with(|| Series::new(capacity))
                    .push(sample.point);
            }
        }
        MetricsEvent::Health(health) => {
            let health = app.metrics.health.then(health);
            log_health_change(app, "prometheus", &app.metrics.health.clone(), &health);
            app.metrics.health = health;
        }
    }
}

/// Logs only transitions, so a source failing every second does not flood the log.
fn log_health_change(
    app: &mut App,
    source: &str,
    old: &crate::health::Health,
    new: &crate::health::Health,
) {
    use crate::health::Health;
    match (old, new) {
        (Health::Live, Health::Live) | (Health::Degraded { .. }, Health::Degraded { .. }) => {}
        (_, Health::Live) => app.push_log(Level::Info, format!("{source}: connected")),
        (_, Health::Degraded { error, .. }) => {
            app.push_log(Level::Error, format!("{source}: {error}"))
        }
        (Health::Forbidden(_), Health::Forbidden(_)) => {}
        (_, Health::Forbidden(why)) => app.push_log(Level::Error, format!("{source}: {why}")),
        (_, Health::Connecting) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::model::Target;
    use crate::engine::{RunStatus, StepRef};
    use crate::health::Health;

    fn plan() -> Arc<crate::plan::Plan> {
        let text = crate::cli::DEMO_PLAN;
        Arc::new(crate::plan::parse(std::path::Path::new("demo.yaml"), text).expect("demo plan"))
    }

    fn app() -> App {
        let mut app = App::new(
            plan(),
            Target {
                environment: "development".into(),
                namespace: "shop".into(),
                context: "sim-development".into(),
                kubeconfig_hint: None,
            },
            "alice".into(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        );
        app.traffic.observed = Some(Weight::ZERO);
        app
    }

    fn key(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn weights(effects: &[Effect]) -> Vec<(u8, bool)> {
        effects
            .iter()
            .map(
                |Effect::SetWeight {
                     weight, emergency, ..
                 }| (weight.percent(), *emergency),
            )
            .collect()
    }

    fn done(app: &mut App, effects: &[Effect]) -> Vec<Effect> {
        let mut out = Vec::new();
        for e in effects {
            out.extend(update(
                app,
                Action::EffectDone {
                    id: e.id(),
                    result: Ok("stored".into()),
                },
            ));
        }
        out
    }

    #[test]
    fn plus_raises_weight_by_the_plan_step() {
        let mut app = app();
        let effects = update(&mut app, key('+'));
        assert_eq!(weights(&effects), vec![(10, false)]);
        assert!(app.log.back().is_some_and(|l| l.text.contains("0% → 10%")));
    }

    #[test]
    fn plus_twice_before_the_first_lands_goes_two_steps() {
        let mut app = app();
        update(&mut app, key('+'));
        let effects = update(&mut app, key('+'));
        assert_eq!(weights(&effects), vec![(20, false)]);
    }

    #[test]
    fn minus_at_zero_does_nothing_and_says_so() {
        let mut app = app();
        assert!(update(&mut app, key('-')).is_empty());
        assert!(
            app.log
                .back()
                .is_some_and(|l| l.text.contains("already at 0%"))
        );
    }

    #[test]
    fn minus_lowers_weight() {
        let mut app = app();
        app.traffic.observed = Some(Weight::clamped(30));
        assert_eq!(weights(&update(&mut app, key('-'))), vec![(20, false)]);
    }

    #[test]
    fn weight_keys_refuse_when_weight_is_unknown() {
        let mut app = app();
        app.traffic.observed = None;
        assert!(update(&mut app, key('+')).is_empty());
        assert!(app.log.back().is_some_and(|l| l.level == Level::Warn));
    }

    #[test]
    fn bang_sets_weight_zero_at_once_as_emergency_and_logs_it() {
        let mut app = app();
        app.traffic.observed = Some(Weight::clamped(50));
        let effects = update(&mut app, key('!'));
        assert_eq!(weights(&effects), vec![(0, true)]);
        assert_eq!(app.deployment.status, RunStatus::RolledBack);
        assert!(
            app.log
                .iter()
                .any(|l| l.level == Level::Error && l.text.contains("ROLLBACK"))
        );
    }

    #[test]
    fn bang_works_while_help_is_open() {
        let mut app = app();
        update(&mut app, key('?'));
        assert!(app.help_open);
        assert_eq!(weights(&update(&mut app, key('!'))), vec![(0, true)]);
    }

    #[test]
    fn n_starts_the_plan_and_runs_weight_steps() {
        let mut app = app();
        let effects = update(&mut app, key('n'));
        assert!(effects.is_empty(), "first slot is a checklist item");
        let effects = update(&mut app, key('n'));
        assert_eq!(weights(&effects), vec![(10, false)]);
        done(&mut app, &effects);
        assert_eq!(app.traffic.observed, Some(Weight::clamped(10)));
        assert_eq!(app.deployment.cursor, Some(StepRef { phase: 0, slot: 2 }));
    }

    #[test]
    fn failed_weight_write_marks_the_step_failed() {
        let mut app = app();
        update(&mut app, key('n'));
        let effects = update(&mut app, key('n'));
        update(
            &mut app,
            Action::EffectDone {
                id: effects[0].id(),
                result: Err("forbidden".into()),
            },
        );
        assert_eq!(app.deployment.status, RunStatus::Failed);
        assert_eq!(
            app.traffic.observed,
            Some(Weight::ZERO),
            "failed write changes nothing"
        );
    }

    #[test]
    fn p_pauses_and_resumes() {
        let mut app = app();
        update(&mut app, key('n'));
        update(&mut app, key('p'));
        assert_eq!(app.deployment.status, RunStatus::Paused);
        update(&mut app, key('p'));
        assert_eq!(app.deployment.status, RunStatus::Running);
    }

    #[test]
    fn question_mark_toggles_help_and_esc_closes_it() {
        let mut app = app();
        update(&mut app, key('?'));
        assert!(app.help_open);
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
        );
        assert!(!app.help_open);
    }

    #[test]
    fn q_quits_but_closes_help_first() {
        let mut app = app();
        update(&mut app, key('?'));
        update(&mut app, key('q'));
        assert!(!app.should_quit && !app.help_open);
        update(&mut app, key('q'));
        assert!(app.should_quit);
    }

    #[test]
    fn ctrl_c_quits() {
        let mut app = app();
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        );
        assert!(app.should_quit);
    }

    #[test]
    fn tick_ends_a_hold() {
        let mut app = app();
        update(&mut app, key('n'));
        let effects = update(&mut app, key('n'));
        done(&mut app, &effects);
        let start = app.now;
        update(&mut app, Action::Tick(start + Duration::from_secs(10)));
        assert_eq!(app.deployment.cursor, Some(StepRef { phase: 0, slot: 2 }));
        let effects = update(&mut app, Action::Tick(start + Duration::from_secs(21)));
        assert_eq!(app.deployment.cursor, Some(StepRef { phase: 1, slot: 0 }));
        assert_eq!(
            weights(&effects),
            vec![(25, false)],
            "next phase's weight starts"
        );
    }

    #[test]
    fn health_changes_are_logged_once() {
        let mut app = app();
        let down = |s| {
            Action::Metrics(MetricsEvent::Health(Health::Degraded {
                since: SystemTime::UNIX_EPOCH + Duration::from_secs(s),
                error: "connection refused".into(),
            }))
        };
        let before = app.log.len();
        update(&mut app, down(1));
        update(&mut app, down(2));
        assert_eq!(app.log.len(), before + 1);
    }

    #[test]
    fn relist_replaces_pods_without_duplicates() {
        use crate::cluster::model::PodView;
        let pod = |n: &str| PodView {
            name: n.into(),
            track: None,
            ready_containers: 1,
            total_containers: 1,
            status: "Running".into(),
            restarts: 0,
            created: None,
            version: "1".into(),
        };
        let mut app = app();
        update(
            &mut app,
            Action::Cluster(ClusterEvent::PodApplied(pod("a"))),
        );
        update(
            &mut app,
            Action::Cluster(ClusterEvent::PodApplied(pod("gone"))),
        );
        update(
            &mut app,
            Action::Cluster(ClusterEvent::PodsRelisted(vec![pod("a"), pod("b")])),
        );
        let names: Vec<&String> = app.cluster.pods.keys().collect();
        assert_eq!(names, ["a", "b"]);
    }
}
