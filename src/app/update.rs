//! `update`: the one place where the console decides what an action means.
//! Pure: no IO, no clock reads, no `.await`. Returns the effects to run. What changes the run is
//! a journal record applied by [`apply`], so the journal replays to the same state.

use std::time::SystemTime;

use crate::cluster::model::{ClusterEvent, WorkloadView};
use crate::engine::{AutoApprove, Origin as EngineOrigin, Outcome, Round, RunStatus, Work};
use crate::journal::record::SampleRecord;
use crate::journal::{OperatorCommand, Record};
use crate::metrics::series::{Point, Series};
use crate::metrics::{MetricsEvent, Sample};
use crate::plan::{TrackName, Weight};
use crate::traffic::TrafficEvent;

use super::action::{Action, Effect, EffectId, Purpose};
use super::keymap::Command;
use super::model::{App, ClusterView, Level, MetricsView, Mode, Origin, TrafficView};

/// Applies one action to the app and returns the effects it calls for. What changes the run
/// goes through [`apply`] as a journal record; keys that only move the screen do not.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    if app.mode == Mode::Observer {
        observe(app, action);
        return Vec::new();
    }
    let now = app.now;
    let mut effects = match action {
        Action::Key(key) => super::input::on_key(app, key),
        Action::Tick(at) => apply(app, at, Record::Tick),
        Action::Clock(at) => {
            app.now = app.now.max(at);
            Vec::new()
        }
        Action::Resize => Vec::new(),
        Action::Cluster(ClusterEvent::Workload(track, view)) => {
            if app.cluster.workloads.get(&track) == Some(&view) {
                Vec::new()
            } else {
                let record = workload_record(&app.target.environment, track, view);
                apply(app, now, record)
            }
        }
        Action::Cluster(event) => {
            on_cluster(app, event);
            Vec::new()
        }
        // A reading that changes nothing is not journaled; one that changes either the engine's
        // or the screen's weight is, so a replay ends with the same of both.
        Action::Traffic(TrafficEvent::Weight(w))
            if app.deployment.weight == Some(w) && app.traffic.observed == Some(w) =>
        {
            Vec::new()
        }
        Action::Traffic(TrafficEvent::Weight(w)) => apply(
            app,
            now,
            Record::Weight {
                percent: w.percent(),
            },
        ),
        Action::Traffic(event) => {
            on_traffic(app, event);
            Vec::new()
        }
        Action::Metrics(MetricsEvent::Samples(samples)) => apply(
            app,
            now,
            Record::Samples {
                samples: samples.iter().map(sample_record).collect(),
            },
        ),
        Action::Metrics(MetricsEvent::Unanswered { error, at }) => {
            apply(app, now, Record::Unanswered { time: at, error })
        }
        Action::Metrics(MetricsEvent::Health(health)) => {
            on_metrics_health(app, health);
            Vec::new()
        }
        Action::EffectDone { id, result } => {
            let (ok, err) = match result {
                Ok(note) => (Some(note), None),
                Err(e) => (None, Some(e)),
            };
            apply(app, now, Record::Result { id: id.0, ok, err })
        }
        Action::EffectProgress { id, note } => {
            if app.in_flight.contains_key(&id) {
                app.push_log(Level::Warn, note);
            }
            Vec::new()
        }
        Action::EffectOutput { id, line } => {
            if app.in_flight.contains_key(&id) {
                app.push_log(Level::Info, format!("  │ {line}"));
            }
            Vec::new()
        }
        Action::Begin if app.journal_error.is_some() => {
            refuse_unrecorded_start(app);
            Vec::new()
        }
        Action::Begin => {
            let operator = app.operator.clone();
            apply(app, now, Record::Begin { operator })
        }
        Action::Operator(command) => {
            let operator = app.operator.clone();
            apply(app, now, Record::Command { operator, command })
        }
        Action::JournalFailed(why) => {
            if app.journal_error.is_some() {
                return Vec::new();
            }
            app.push_log(
                Level::Error,
                format!(
                    "journal: {why} — what happens from now on is not recorded, and --resume could not continue from here"
                ),
            );
            app.journal_error = Some(why);
            pause_for(app, "the journal cannot be written")
        }
        Action::Notified(attempt) => {
            use crate::notify::AttemptOutcome;
            match &attempt.outcome {
                AttemptOutcome::Delivered { .. } => {}
                AttemptOutcome::Retrying {
                    status_or_error,
                    after,
                } => app.push_log(
                    Level::Warn,
                    format!(
                        "webhook message #{} attempt {}: {status_or_error}; again in {:.1} s",
                        attempt.message_id,
                        attempt.attempt,
                        after.as_secs_f64()
                    ),
                ),
                AttemptOutcome::GaveUp { why } => app.push_log(
                    Level::Error,
                    format!(
                        "webhook message #{} not delivered after {} attempt(s): {why}",
                        attempt.message_id, attempt.attempt
                    ),
                ),
            }
            Vec::new()
        }
        Action::LeaseProblem(why) => {
            app.push_log(
                Level::Error,
                format!("lease: {why} — a second run of this plan might not be kept out"),
            );
            Vec::new()
        }
        // Journaled by the event loop; nothing to show.
        Action::Snapshotted { .. } => Vec::new(),
        Action::LeaseLost(why) => {
            app.push_log(
                Level::Error,
                format!("lease: {why} — another process may be running this plan"),
            );
            pause_for(app, "the plan's lease was lost")
        }
        Action::Interrupted(why) if app.interrupted.is_some() => {
            app.push_log(
                Level::Error,
                format!("{why} again: leaving now; the rollback under way was not finished"),
            );
            app.stopped = Some(format!("interrupted twice ({why})"));
            app.should_quit = true;
            Vec::new()
        }
        Action::Interrupted(why) => {
            if app.deployment.status == RunStatus::RollingBack {
                app.push_log(
                    Level::Warn,
                    format!("{why}: stopping once the rollback under way has finished"),
                );
            } else {
                app.push_log(Level::Warn, format!("{why}: stopping"));
            }
            app.interrupted = Some(why);
            Vec::new()
        }
        Action::InputClosed(why) => {
            app.push_log(Level::Warn, format!("terminal closed ({why}); leaving"));
            app.should_quit = true;
            Vec::new()
        }
        Action::DrillDone { label, result } => {
            match result {
                Ok(Some(active)) => {
                    app.push_log(Level::Warn, format!("drill: {label} — done by the simulator"));
                    if let Some(d) = &mut app.drills {
                        d.active = active;
                    }
                }
                Ok(None) => app.push_log(
                    Level::Warn,
                    format!(
                        "drill: {label} — done by the simulator (its list of active faults could not be read; the header catches up)"
                    ),
                ),
                Err(why) => app.push_log(
                    Level::Error,
                    format!("drill: {label} — the simulator refused: {why}"),
                ),
            }
            Vec::new()
        }
        Action::DrillsActive(active) => {
            if let Some(d) = &mut app.drills {
                d.active = active;
            }
            Vec::new()
        }
        // The event loop unwraps current sources' actions; one that reaches here is stale.
        Action::Sourced { .. } => Vec::new(),
    };
    effects.extend(follow_environment(app));
    decide_end(app);
    super::input::withdraw_stale_questions(app);
    effects
}

/// A plan is not started without its journal: nothing it did could be resumed or reported.
pub(crate) fn refuse_unrecorded_start(app: &mut App) {
    app.push_log(
        Level::Error,
        "the journal cannot be written, so the plan is not started: nothing it did could be resumed or reported",
    );
}

/// The name warroom's own commands are journaled under.
pub const SYSTEM: &str = "warroom";

/// Stops a running plan from advancing by itself (rollbacks still work, and `p` resumes it):
/// for what makes carrying on unsafe without a person deciding.
fn pause_for(app: &mut App, why: &str) -> Vec<Effect> {
    if app.deployment.status != RunStatus::Running {
        return Vec::new();
    }
    let now = app.now;
    let effects = apply(
        app,
        now,
        Record::Command {
            operator: SYSTEM.to_string(),
            command: OperatorCommand::Pause,
        },
    );
    app.push_log(Level::Error, format!("paused: {why}; p resumes"));
    effects
}

/// An observer (`warroom watch`) follows a run from its journal, whose lines reach the app
/// through [`apply`]; here it gets only its own keys, clock, live pods and terminal. Nothing is
/// applied, journaled or carried out: a key that would change the run says so in the observer's
/// own log, so a stakeholder pressing `!` learns why nothing happened.
fn observe(app: &mut App, action: Action) {
    match action {
        Action::Key(key) => {
            use ratatui::crossterm::event::KeyCode;
            if key.kind == ratatui::crossterm::event::KeyEventKind::Release {
                return;
            }
            let command = app.keymap.command_for(&key);
            let closing = key.code == KeyCode::Esc
                || matches!(command, Some(Command::ToggleHelp | Command::Quit));
            if app.help_open() {
                if closing {
                    app.modals.clear();
                } else {
                    app.notice("help is open: Esc or ? closes it");
                }
                return;
            }
            let Some(command) = command else {
                return;
            };
            match (command, command.would()) {
                (_, Some(what)) => {
                    let key = match key.code {
                        KeyCode::Char(c) => c.to_string(),
                        other => other.to_string(),
                    };
                    let text = format!("read-only: this is an observer ({key} would {what})");
                    app.notice(text.clone());
                    app.push_log(Level::Warn, text);
                }
                (Command::ToggleHelp, None) => app.modals.push(super::modal::Modal::Help),
                (Command::Quit, None) => app.should_quit = true,
                (other, None) => super::input::navigate(app, other),
            }
        }
        // The observer's own clock moves the screen only: the ticks that move the engine are the
        // run's, from the journal, or the two engines would part ways.
        Action::Tick(at) | Action::Clock(at) => app.now = app.now.max(at),
        // Live pods and ReplicaSets; a Deployment's counts go to the view only, since the
        // journal's `workload` lines are the run's record of them.
        Action::Cluster(event) => on_cluster(app, event),
        Action::InputClosed(why) | Action::Interrupted(why) => {
            app.push_log(Level::Warn, format!("{why}: leaving"));
            app.should_quit = true;
        }
        // What only the run itself has: its work, sources, journal and lease.
        Action::Resize
        | Action::Traffic(_)
        | Action::Metrics(_)
        | Action::EffectDone { .. }
        | Action::EffectProgress { .. }
        | Action::EffectOutput { .. }
        | Action::Begin
        | Action::Operator(_)
        | Action::LeaseProblem(_)
        | Action::LeaseLost(_)
        | Action::Snapshotted { .. }
        | Action::JournalFailed(_)
        | Action::Notified(_)
        | Action::DrillDone { .. }
        | Action::DrillsActive(_)
        | Action::Sourced { .. } => {}
    }
}

/// Applies one journaled input at `at`: the transitions a run is a fold of. Live, [`update`]
/// calls it and the record is kept in `app.recorded` for the journal; resuming and watching
/// call it with the journal's lines, in order, and get the same state. Lines that are not
/// inputs change nothing.
pub fn apply(app: &mut App, at: SystemTime, record: Record) -> Vec<Effect> {
    app.now = app.now.max(at);
    if record.is_input() {
        app.recorded.push((app.now, record.clone()));
    }
    let now = app.now;
    match record {
        Record::Tick => {
            let outcome = app.deployment.tick(now);
            apply_outcome(app, outcome)
        }
        Record::Begin { operator } => {
            let outcome = app.deployment.advance(now, &operator);
            apply_outcome(app, outcome)
        }
        Record::Command { operator, command } => on_operator_command(app, &operator, command),
        Record::Samples { samples } => {
            let samples: Vec<Sample> = samples.into_iter().map(sample_of).collect();
            on_samples(app, samples)
        }
        Record::Unanswered { time, error } => {
            app.now = app.now.max(time);
            let outcome = app
                .deployment
                .samples(Round::Unanswered { error: &error }, app.now);
            apply_outcome(app, outcome)
        }
        Record::Weight { percent } => {
            let w = Weight::clamped(i64::from(percent));
            app.traffic.observed = Some(w);
            app.deployment.observe_weight(w);
            Vec::new()
        }
        Record::Workload {
            track,
            name,
            desired,
            ready,
            updated,
            available,
            image,
            revision,
            ..
        } => {
            let view = WorkloadView {
                name,
                desired,
                ready,
                updated,
                available,
                image,
                revision,
            };
            app.cluster.workloads.insert(track, view);
            Vec::new()
        }
        Record::Result { id, ok, err } => {
            let result = match (ok, err) {
                (_, Some(e)) => Err(e),
                (ok, None) => Ok(ok.unwrap_or_default()),
            };
            on_effect_done(app, EffectId(id), result)
        }
        Record::Resume(resume) => {
            let text = if resume.forced {
                format!(
                    "resumed by {} on {} with a changed plan (--force): {}",
                    resume.operator,
                    resume.host,
                    resume.changes.join("; ")
                )
            } else {
                format!(
                    "resumed by {} on {}: steps done stay done, approvals given stand",
                    resume.operator, resume.host
                )
            };
            app.push_log(Level::Operator, text);
            // Whoever resumed is at the keys from here on (a replay shows who that was).
            app.operator = resume.operator;
            app.deployment.auto_approve = AutoApprove::from_name(&resume.auto_approve);
            let mut outcome = app.deployment.resumed(now);
            // A pause warroom made itself (a lost lease) is lifted: this run holds the lease
            // again. A person's pause stands.
            let by_warroom = format!("paused by {SYSTEM}");
            if app.deployment.status == RunStatus::Paused
                && app
                    .deployment
                    .paused
                    .as_ref()
                    .is_some_and(|(why, _)| *why == by_warroom)
            {
                app.push_log(
                    Level::Operator,
                    "the pause warroom made when the lease was lost is lifted: this run holds the lease again",
                );
                let lifted = app.deployment.toggle_pause(now, SYSTEM);
                outcome.commands.extend(lifted.commands);
                outcome.notes.extend(lifted.notes);
            }
            apply_outcome(app, outcome)
        }
        Record::Start(_)
        | Record::Intent(_)
        | Record::Step { .. }
        | Record::RollbackStep { .. }
        | Record::Status { .. }
        | Record::Log { .. }
        | Record::Snapshot { .. }
        | Record::Notify { .. }
        | Record::Lease { .. }
        | Record::End { .. } => Vec::new(),
    }
}

fn sample_record(sample: &Sample) -> SampleRecord {
    SampleRecord {
        metric: sample.metric.clone(),
        track: sample.track,
        time: sample.point.at,
        value: sample.point.value,
    }
}

fn sample_of(record: SampleRecord) -> Sample {
    Sample {
        metric: record.metric,
        track: record.track,
        point: Point {
            at: record.time,
            value: record.value,
        },
    }
}

fn workload_record(environment: &str, track: TrackName, view: WorkloadView) -> Record {
    Record::Workload {
        environment: environment.to_string(),
        track,
        name: view.name,
        desired: view.desired,
        ready: view.ready,
        updated: view.updated,
        available: view.available,
        image: view.image,
        revision: view.revision,
    }
}

/// The screen follows the engine's environment (for replays, which apply inputs one by one).
pub(crate) fn follow(app: &mut App) -> Vec<Effect> {
    follow_environment(app)
}

/// When the engine moved to another environment (a new phase, a rollback), the screen follows:
/// the previous environment's pods, weight and samples are dropped, never shown as current.
fn follow_environment(app: &mut App) -> Vec<Effect> {
    let wanted = app.deployment.environment().to_string();
    if wanted.is_empty() || wanted == app.target.environment {
        return Vec::new();
    }
    let Some(target) = app.targets.get(&wanted).cloned() else {
        app.push_log(
            Level::Error,
            format!(
                "environment {wanted} has no connection; the screen stays on {}",
                app.target.environment
            ),
        );
        return Vec::new();
    };
    app.push_log(
        Level::Info,
        format!(
            "now showing environment {} ({} @ {})",
            target.environment, target.namespace, target.context
        ),
    );
    app.target = target;
    app.cluster = ClusterView::default();
    app.traffic = TrafficView::default();
    app.metrics = MetricsView::default();
    vec![Effect::Watch {
        environment: wanted,
    }]
}

/// Headless runs end when the plan is finished or would wait for a person; either run ends on
/// an interrupt once no rollback is under way.
fn decide_end(app: &mut App) {
    if app.should_quit {
        return;
    }
    let rolling_back = app.deployment.status == RunStatus::RollingBack;
    if let Some(why) = &app.interrupted {
        if !rolling_back {
            app.stopped
                .get_or_insert_with(|| format!("interrupted ({why})"));
            app.should_quit = true;
        }
        return;
    }
    if app.mode != Mode::Headless {
        return;
    }
    if app.deployment.is_finished() {
        app.should_quit = true;
    } else if let Some(waiting) = app
        .deployment
        .waiting_for_person()
        .or_else(|| app.deployment.hold_overdue(app.now))
    {
        if app.deployment.status != RunStatus::Ready {
            app.push_log(Level::Warn, format!("headless run stops: {waiting}"));
            app.stopped = Some(waiting);
            app.should_quit = true;
        }
    }
}

/// An operator's command, live or replayed from the journal: `operator` is who gave it.
fn on_operator_command(app: &mut App, operator: &str, command: OperatorCommand) -> Vec<Effect> {
    let now = app.now;
    let outcome = match command {
        OperatorCommand::Advance => app.deployment.advance(now, operator),
        OperatorCommand::Pause => app.deployment.toggle_pause(now, operator),
        OperatorCommand::CancelCountdown => app.deployment.cancel_countdown(now, operator),
        OperatorCommand::WeightUp => return shift_weight(app, operator, 1),
        OperatorCommand::WeightDown => return shift_weight(app, operator, -1),
        OperatorCommand::SetWeight { percent } => {
            return set_weight(app, operator, Weight::clamped(i64::from(percent)));
        }
        OperatorCommand::Rollback { tier } => app.deployment.rollback(tier, now, operator),
        OperatorCommand::Skip { reason } => app.deployment.skip_hold(now, operator, &reason),
        OperatorCommand::WindowOverride { reason } => {
            app.deployment.override_window(now, operator, &reason)
        }
        OperatorCommand::OverrideAllWindows { reason } => {
            app.deployment.override_all_windows(operator, &reason)
        }
        OperatorCommand::Note { text } => {
            app.push_log(Level::Operator, format!("note by {operator}: {text}"));
            return Vec::new();
        }
        OperatorCommand::Op { name } => {
            app.push_log(
                Level::Operator,
                format!("{operator} hands the keys to {name}"),
            );
            app.operator = name;
            return Vec::new();
        }
    };
    apply_outcome(app, outcome)
}

/// `+`/`-` as journaled by earlier versions: a step from the weight at the time.
fn shift_weight(app: &mut App, operator: &str, direction: i64) -> Vec<Effect> {
    let step = app
        .plan
        .traffic
        .as_ref()
        .map_or(10, |t| i64::from(t.step.percent()));
    match app.weight_base() {
        Some(base) => set_weight(app, operator, base.shifted(direction * step)),
        None => set_weight(app, operator, Weight::ZERO.shifted(direction * step)),
    }
}

/// The operator's own weight change (`+`, `-`, `w`, `:weight`), live or replayed. Refused while
/// a rollback is under way or has run (it would undo it), and before the weight is known.
fn set_weight(app: &mut App, operator: &str, target: Weight) -> Vec<Effect> {
    let base = match super::input::weight_base(app) {
        Ok(base) => base,
        Err(why) => {
            app.push_log(Level::Warn, format!("weight not changed: {why}"));
            return Vec::new();
        }
    };
    if target == base {
        app.push_log(Level::Info, format!("canary weight already at {base}"));
        return Vec::new();
    }
    app.push_log(
        Level::Operator,
        format!("{operator}: canary weight {base} → {target}"),
    );
    let id = app.next_effect_id();
    app.in_flight.insert(id, Origin::ManualWeight);
    app.traffic.requested = Some((id, target));
    vec![Effect::Work {
        id,
        environment: app.target.environment.clone(),
        phase: current_phase(app),
        purpose: Purpose::Operator,
        work: Work::SetWeight {
            weight: target,
            emergency: false,
        },
    }]
}

fn current_phase(app: &App) -> String {
    app.deployment
        .phases
        .get(app.deployment.phase_index())
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

fn apply_outcome(app: &mut App, outcome: Outcome) -> Vec<Effect> {
    for note in outcome.notes {
        app.push_log(note.level, note.text);
    }
    let mut effects = Vec::new();
    if outcome.cancel_steps {
        effects.push(Effect::CancelSteps);
    }
    if outcome.cancel_rollback {
        effects.push(Effect::CancelRollback);
    }
    // The screen follows the engine before the work starts, so a first write in a new
    // environment shows as requested there.
    effects.extend(follow_environment(app));
    for command in outcome.commands {
        let id = app.next_effect_id();
        app.in_flight.insert(id, Origin::Engine(command.origin));
        if let Work::SetWeight { weight, .. } = command.work {
            if command.environment == app.target.environment {
                app.traffic.requested = Some((id, weight));
            }
        }
        effects.push(Effect::Work {
            id,
            environment: command.environment,
            phase: current_phase(app),
            purpose: match command.origin {
                EngineOrigin::Step(_) => Purpose::Step,
                EngineOrigin::Rollback { .. } => Purpose::Rollback,
            },
            work: command.work,
        });
    }
    effects
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
                app.deployment.observe_weight(weight);
            }
        }
    }
    match origin {
        Origin::Engine(origin) => {
            let outcome = app.deployment.command_done(origin, result, app.now);
            apply_outcome(app, outcome)
        }
        Origin::ManualWeight => {
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
        TrafficEvent::Weight(w) => {
            app.traffic.observed = Some(w);
            app.deployment.observe_weight(w);
        }
        TrafficEvent::Health(health) => {
            let health = app.traffic.health.then(health);
            log_health_change(app, "traffic router", &app.traffic.health.clone(), &health);
            app.traffic.health = health;
        }
    }
}

fn on_samples(app: &mut App, samples: Vec<Sample>) -> Vec<Effect> {
    // The round's own time, so a countdown it starts is not up to a tick late.
    if let Some(at) = samples.iter().map(|s| s.point.at).max() {
        app.now = app.now.max(at);
    }
    let capacity = app.series_capacity();
    for sample in &samples {
        app.metrics
            .series
            .entry((sample.metric.clone(), sample.track))
            .or_insert_with(|| Series::new(capacity))
            .push(sample.point);
    }
    let outcome = app.deployment.samples(Round::Samples(&samples), app.now);
    apply_outcome(app, outcome)
}

fn on_metrics_health(app: &mut App, health: crate::health::Health) {
    let health = app.metrics.health.then(health);
    log_health_change(app, "prometheus", &app.metrics.health.clone(), &health);
    app.metrics.health = health;
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

    use super::super::input;
    use super::*;
    use crate::app::model::Target;
    use crate::engine::{RunStatus, StepRef};
    use crate::health::Health;
    use crate::plan::Weight;

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
        app.deployment.observe_weight(Weight::ZERO);
        for (env, context) in [("staging", "sim-staging"), ("production", "sim-production")] {
            app.targets.insert(
                env.into(),
                Target {
                    environment: env.into(),
                    namespace: "shop".into(),
                    context: context.into(),
                    kubeconfig_hint: None,
                },
            );
        }
        app
    }

    fn key(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn notice(app: &App) -> String {
        app.notice
            .as_ref()
            .map(|n| n.text.clone())
            .unwrap_or_default()
    }

    fn weights(effects: &[Effect]) -> Vec<(u8, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Work {
                    work: Work::SetWeight { weight, emergency },
                    ..
                } => Some((weight.percent(), *emergency)),
                _ => None,
            })
            .collect()
    }

    fn done(app: &mut App, effects: &[Effect]) -> Vec<Effect> {
        let mut out = Vec::new();
        for e in effects {
            let Some(id) = e.id() else { continue };
            out.extend(update(
                app,
                Action::EffectDone {
                    id,
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
        assert!(notice(&app).contains("already 0%"), "{}", notice(&app));
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
        assert!(notice(&app).contains("not been read"), "{}", notice(&app));
    }

    #[test]
    fn bang_sets_weight_zero_first_and_says_rolled_back_only_when_every_action_succeeded() {
        let mut app = app();
        app.traffic.observed = Some(Weight::clamped(50));
        let effects = update(&mut app, key('!'));
        assert_eq!(weights(&effects), vec![(0, true)]);
        assert_eq!(app.deployment.status, RunStatus::RollingBack);
        assert!(
            app.log
                .iter()
                .any(|l| l.level == Level::Error && l.text.contains("ROLLBACK"))
        );
        let effects = done(&mut app, &effects);
        assert!(
            matches!(
                effects.as_slice(),
                [Effect::Work {
                    work: Work::SetFlag { .. },
                    ..
                }]
            ),
            "then the flag: {effects:?}"
        );
        assert_eq!(app.deployment.status, RunStatus::RollingBack);
        done(&mut app, &effects);
        assert_eq!(app.deployment.status, RunStatus::RolledBack);
    }

    #[test]
    fn bang_works_while_help_is_open() {
        let mut app = app();
        update(&mut app, key('?'));
        assert!(app.help_open());
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
                id: effects[0].id().expect("a write"),
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
        assert!(app.help_open());
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
        );
        assert!(!app.help_open());
    }

    #[test]
    fn q_quits_but_closes_help_first() {
        let mut app = app();
        update(&mut app, key('?'));
        update(&mut app, key('q'));
        assert!(!app.should_quit && !app.help_open());
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
    fn a_hold_ends_with_time_and_clean_data_and_the_next_phase_acts_in_its_environment() {
        let mut app = app();
        into_the_hold(&mut app);
        let start = app.now;
        update(&mut app, Action::Tick(start + Duration::from_secs(21)));
        assert_eq!(
            app.deployment.cursor,
            Some(StepRef { phase: 0, slot: 2 }),
            "no sample yet: the hold does not pass"
        );
        app.cluster.pods.insert("stale".into(), pod("stale"));
        let effects = update(&mut app, clean_round());
        assert_eq!(app.deployment.cursor, Some(StepRef { phase: 1, slot: 0 }));
        assert_eq!(app.target.environment, "staging");
        assert!(
            app.cluster.pods.is_empty(),
            "development's pods are not shown as staging's"
        );
        assert!(effects.contains(&Effect::Watch {
            environment: "staging".into()
        }));
        let writes: Vec<&str> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Work {
                    environment,
                    work: Work::SetWeight { .. },
                    ..
                } => Some(environment.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(writes, ["staging"], "staging's weight goes to staging");
    }

    #[test]
    fn headless_stops_at_what_would_wait_for_a_person() {
        let mut app = app();
        app.mode = crate::app::model::Mode::Headless;
        let effects = update(&mut app, Action::Begin);
        assert!(effects.is_empty());
        assert!(app.should_quit, "the checklist item waits for a person");
        assert!(
            app.stopped
                .as_deref()
                .is_some_and(|s| s.contains("Container image built")),
            "{:?}",
            app.stopped
        );
    }

    #[test]
    fn interrupt_waits_for_a_rollback_under_way() {
        let mut app = app();
        let effects = update(&mut app, key('!'));
        update(&mut app, Action::Interrupted("SIGTERM".into()));
        assert!(!app.should_quit, "the rollback finishes first");
        let effects = done(&mut app, &effects);
        done(&mut app, &effects);
        assert_eq!(app.deployment.status, RunStatus::RolledBack);
        assert!(app.should_quit);
    }

    #[test]
    fn x_cancels_the_countdown_and_pauses() {
        let mut app = app();
        into_the_hold(&mut app);
        update(&mut app, breaching_round());
        update(&mut app, breaching_round());
        assert!(app.deployment.countdown.is_some());
        update(&mut app, key('x'));
        assert!(app.deployment.countdown.is_none());
        assert_eq!(app.deployment.status, RunStatus::Paused);
        assert!(
            app.log
                .iter()
                .any(|l| l.level == Level::Operator && l.text.starts_with("alice cancelled"))
        );
    }

    /// The checklist item passed and the weight step's write stored: the hold runs.
    fn into_the_hold(app: &mut App) {
        update(app, key('n'));
        let effects = update(app, key('n'));
        done(app, &effects);
    }

    fn type_line(app: &mut App, text: &str) -> Vec<Effect> {
        let mut effects = update(app, key(':'));
        for c in text.chars() {
            effects.extend(update(app, key(c)));
        }
        effects.extend(update(
            app,
            Action::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        ));
        effects
    }

    #[test]
    fn colon_skip_cuts_a_running_hold_short_with_the_reason_logged() {
        let mut app = app();
        into_the_hold(&mut app);
        update(&mut app, key('n'));
        assert_eq!(
            app.deployment.cursor,
            Some(StepRef { phase: 0, slot: 2 }),
            "n does not skip the hold"
        );
        type_line(&mut app, "skip canary looked fine for long enough");
        assert_eq!(app.deployment.cursor, Some(StepRef { phase: 1, slot: 0 }));
        assert!(app.log.iter().any(|l| l.level == Level::Operator
            && l.text.contains("cut short by alice")
            && l.text.ends_with("canary looked fine for long enough")));
    }

    #[test]
    fn the_command_line_takes_keys_first_but_not_bang() {
        let mut app = app();
        update(&mut app, key(':'));
        assert!(update(&mut app, key('n')).is_empty(), "n is typed, not run");
        assert_eq!(app.deployment.status, RunStatus::Ready);
        let effects = update(&mut app, key('!'));
        assert_eq!(weights(&effects), vec![(0, true)]);
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
        );
        assert!(app.modals.is_empty());
    }

    #[test]
    fn a_second_interrupt_leaves_at_once_even_during_a_rollback() {
        let mut app = app();
        update(&mut app, key('!'));
        update(&mut app, Action::Interrupted("SIGINT".into()));
        assert!(!app.should_quit);
        update(&mut app, Action::Interrupted("SIGINT".into()));
        assert!(app.should_quit);
        assert_eq!(app.stopped.as_deref(), Some("interrupted twice (SIGINT)"));
    }

    #[test]
    fn weight_keys_do_nothing_once_a_rollback_has_run_even_a_failed_one() {
        let mut app = app();
        let effects = update(&mut app, key('!'));
        let id = effects.iter().find_map(Effect::id).expect("a write");
        let effects = update(
            &mut app,
            Action::EffectDone {
                id,
                result: Err("forbidden".into()),
            },
        );
        done(&mut app, &effects);
        assert_eq!(app.deployment.status, RunStatus::RollbackFailed);
        assert!(update(&mut app, key('+')).is_empty());
        assert!(
            notice(&app).contains("a weight change would undo it"),
            "{}",
            notice(&app)
        );
    }

    #[test]
    fn headless_stops_at_a_hold_twice_overdue() {
        let mut app = app();
        into_the_hold(&mut app);
        app.mode = crate::app::model::Mode::Headless;
        let start = app.now;
        // The demo's hold is 20s; missing data at 0:35 restarts its clean time.
        update(
            &mut app,
            Action::Metrics(MetricsEvent::Unanswered {
                at: start + Duration::from_secs(35),
                error: "refused".into(),
            }),
        );
        update(&mut app, Action::Tick(start + Duration::from_secs(39)));
        assert!(!app.should_quit, "not yet twice its duration");
        update(&mut app, Action::Tick(start + Duration::from_secs(41)));
        assert!(app.should_quit);
        assert!(
            app.stopped
                .as_deref()
                .is_some_and(|s| s.starts_with("hold 20s has not had a clean 20s in 41s")),
            "{:?}",
            app.stopped
        );
    }

    fn round(canary_error: f64) -> Action {
        use crate::metrics::Sample;
        use crate::metrics::series::Point;
        let mut samples = Vec::new();
        for metric in ["error_rate", "latency_p95", "cpu"] {
            for track in crate::plan::TrackName::BOTH {
                let value = if metric == "error_rate" && track == crate::plan::TrackName::Canary {
                    canary_error
                } else {
                    0.01
                };
                samples.push(Sample {
                    metric: metric.into(),
                    track,
                    point: Point {
                        at: SystemTime::UNIX_EPOCH,
                        value: Some(value),
                    },
                });
            }
        }
        Action::Metrics(MetricsEvent::Samples(samples))
    }

    fn clean_round() -> Action {
        round(0.01)
    }

    fn breaching_round() -> Action {
        round(0.3)
    }

    fn pod(n: &str) -> crate::cluster::model::PodView {
        crate::cluster::model::PodView {
            name: n.into(),
            track: None,
            ready_containers: 1,
            total_containers: 1,
            status: "Running".into(),
            restarts: 0,
            created: None,
            version: "1".into(),
        }
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

    /// An observer's keys that would change the run change nothing, start nothing and are
    /// journaled nowhere: each says what it would have done.
    #[test]
    fn an_observer_is_answered_read_only_and_nothing_changes() {
        let mut app = app();
        into_the_hold(&mut app);
        app.recorded.clear();
        app.mode = Mode::Observer;
        let before = app.deployment.phases.clone();
        let (status, weight, in_flight) = (
            app.deployment.status,
            app.traffic.clone(),
            app.in_flight.clone(),
        );
        for (c, what) in [
            ('n', "advance the plan"),
            ('p', "pause or resume the plan"),
            ('x', "cancel an automatic rollback"),
            ('+', "raise the canary weight"),
            ('-', "lower the canary weight"),
            ('!', "roll back at once"),
            (':', "open the command line"),
        ] {
            assert!(update(&mut app, key(c)).is_empty(), "{c} started something");
            let last = app.log.back().map(|l| l.text.clone()).unwrap_or_default();
            assert!(
                last.starts_with(&format!("read-only: this is an observer ({c} would {what}")),
                "{last}"
            );
        }
        assert_eq!(app.deployment.phases, before);
        assert_eq!(app.deployment.status, status);
        assert_eq!(app.traffic, weight);
        assert_eq!(app.in_flight, in_flight);
        assert!(app.modals.is_empty());
        assert!(app.recorded.is_empty(), "nothing to journal");
    }

    #[test]
    fn an_observer_opens_help_and_quits_at_once_even_during_a_rollback() {
        let mut app = app();
        update(&mut app, key('!'));
        app.mode = Mode::Observer;
        update(&mut app, key('?'));
        assert!(app.help_open());
        update(&mut app, key('!'));
        assert!(app.help_open(), "! does not close help, nor roll back");
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
        );
        assert!(!app.help_open());
        update(&mut app, key('q'));
        assert!(
            app.should_quit,
            "the rollback is the run's, not the observer's"
        );
    }

    /// Ticks, samples and results reach an observer only from the journal, through `apply`.
    #[test]
    fn an_observer_applies_nothing_of_its_own() {
        let mut app = app();
        into_the_hold(&mut app);
        app.recorded.clear();
        app.mode = Mode::Observer;
        let before = app.deployment.phases.clone();
        let later = app.now + Duration::from_secs(3600);
        assert!(update(&mut app, Action::Tick(later)).is_empty());
        assert!(update(&mut app, clean_round()).is_empty());
        assert!(update(&mut app, Action::Begin).is_empty());
        assert_eq!(app.now, later, "the screen's clock moves");
        assert_eq!(app.deployment.phases, before, "the engine does not");
        assert!(app.recorded.is_empty());
        let view = crate::cluster::model::WorkloadView {
            name: "checkout".into(),
            ready: 3,
            ..Default::default()
        };
        update(
            &mut app,
            Action::Cluster(ClusterEvent::Workload(TrackName::Stable, view.clone())),
        );
        assert_eq!(app.cluster.workloads.get(&TrackName::Stable), Some(&view));
        assert!(
            app.recorded.is_empty(),
            "live counts are shown, not recorded"
        );
    }

    #[test]
    fn relist_replaces_pods_without_duplicates() {
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

    fn press(code: KeyCode) -> Action {
        Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    /// The app on the production environment, where every change asks for a `y`.
    fn in_production() -> App {
        let mut app = app();
        let text = crate::cli::DEMO_PLAN.replacen(
            "    environment: development",
            "    environment: production",
            1,
        );
        let plan = crate::plan::parse(std::path::Path::new("demo.yaml"), &text).expect("plan");
        app.plan = Arc::new(plan);
        app.deployment = crate::engine::Deployment::new(app.plan.clone());
        app.deployment.observe_weight(Weight::ZERO);
        app.target = app.targets["production"].clone();
        app
    }

    fn journaled_commands(app: &App) -> Vec<OperatorCommand> {
        app.recorded
            .iter()
            .filter_map(|(_, r)| match r {
                Record::Command { command, .. } => Some(command.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn help_takes_keys_first_and_says_so_but_bang_still_rolls_back() {
        let mut app = app();
        update(&mut app, key('?'));
        for c in ['n', 'p', '+', '-', 'w', 'r', ':'] {
            assert!(update(&mut app, key(c)).is_empty(), "{c} acted behind help");
            assert!(
                notice(&app).contains("help is open"),
                "{c}: {}",
                notice(&app)
            );
        }
        assert_eq!(app.deployment.status, RunStatus::Ready);
        assert!(app.help_open(), "still open");
        assert!(journaled_commands(&app).is_empty());
        assert_eq!(weights(&update(&mut app, key('!'))), vec![(0, true)]);
        assert!(app.modals.is_empty(), "! closes what was open");
    }

    #[test]
    fn in_production_a_weight_change_asks_exactly_what_will_change_and_n_declines() {
        let mut app = in_production();
        assert!(update(&mut app, key('+')).is_empty(), "asked, not done");
        let Some(super::super::modal::Modal::Confirm(c)) = app.modal() else {
            panic!("no question: {:?}", app.modals);
        };
        assert_eq!(
            c.question,
            "set canary weight 0% → 10% on HTTPRoute shop/checkout (production)?"
        );
        assert_eq!(c.why, "production environment (production)");
        assert!(update(&mut app, key('n')).is_empty(), "n answers no");
        assert!(app.modals.is_empty());
        assert!(journaled_commands(&app).is_empty(), "nothing journaled");
        update(&mut app, key('+'));
        let effects = update(&mut app, key('y'));
        assert_eq!(weights(&effects), vec![(10, false)]);
        assert_eq!(
            journaled_commands(&app),
            vec![OperatorCommand::SetWeight { percent: 10 }]
        );
    }

    #[test]
    fn a_question_is_withdrawn_when_the_run_moves_on_before_the_answer() {
        let mut app = in_production();
        update(&mut app, key('+'));
        assert!(matches!(
            app.modal(),
            Some(super::super::modal::Modal::Confirm(_))
        ));
        update(
            &mut app,
            Action::Traffic(TrafficEvent::Weight(Weight::clamped(20))),
        );
        assert!(
            matches!(app.modal(), Some(super::super::modal::Modal::Withdrawn(_))),
            "withdrawn, and said so"
        );
        assert!(
            app.log
                .back()
                .is_some_and(|l| l.text.starts_with("question withdrawn")),
            "{:?}",
            app.log.back()
        );
        assert!(
            update(&mut app, key('y')).is_empty(),
            "a late y does nothing"
        );
    }

    #[test]
    fn low_risk_changes_need_no_question() {
        let mut app = app();
        assert_eq!(input::confirm_reason(&app), None);
        assert_eq!(weights(&update(&mut app, key('+'))), vec![(10, false)]);
        assert!(app.modals.is_empty());
    }

    #[test]
    fn the_rollback_menu_lists_tiers_and_runs_one_only_after_y() {
        let mut app = app();
        update(&mut app, key('r'));
        assert!(matches!(
            app.modal(),
            Some(super::super::modal::Modal::RollbackMenu { selected: 0 })
        ));
        assert!(update(&mut app, press(KeyCode::Enter)).is_empty());
        let Some(super::super::modal::Modal::Confirm(c)) = app.modal() else {
            panic!("no question: {:?}", app.modals);
        };
        assert!(
            c.question
                .starts_with("run the immediate rollback — weight → 0%, flag"),
            "{}",
            c.question
        );
        assert!(c.question.contains("target 5m"), "{}", c.question);
        let effects = update(&mut app, key('y'));
        assert_eq!(weights(&effects), vec![(0, true)]);
        assert_eq!(app.deployment.status, RunStatus::RollingBack);
    }

    #[test]
    fn w_takes_digits_only_and_sets_the_weight_typed() {
        let mut app = app();
        update(&mut app, key('w'));
        for c in ['3', 'a', '5'] {
            update(&mut app, key(c));
        }
        assert!(notice(&app).contains("digits only"), "{}", notice(&app));
        let effects = update(&mut app, press(KeyCode::Enter));
        assert_eq!(weights(&effects), vec![(35, false)]);
        assert!(app.modals.is_empty());
        update(&mut app, key('w'));
        for c in ['1', '2', '0'] {
            update(&mut app, key(c));
        }
        assert!(update(&mut app, press(KeyCode::Enter)).is_empty());
        assert!(notice(&app).contains("over 100"), "{}", notice(&app));
        assert!(
            app.modal().is_some(),
            "the field stays open to be corrected"
        );
    }

    #[test]
    fn the_command_line_completes_remembers_and_sets_a_weight() {
        let mut app = app();
        update(&mut app, key(':'));
        update(&mut app, key('w'));
        update(&mut app, key('e'));
        update(&mut app, press(KeyCode::Tab));
        for c in "40".chars() {
            update(&mut app, key(c));
        }
        let effects = update(&mut app, press(KeyCode::Enter));
        assert_eq!(weights(&effects), vec![(40, false)]);
        assert_eq!(app.history, vec!["weight 40".to_string()]);
        update(&mut app, key(':'));
        update(&mut app, press(KeyCode::Up));
        let Some(super::super::modal::Modal::CommandLine(line)) = app.modal() else {
            panic!("line closed");
        };
        assert_eq!(line.input.value(), "weight 40");
        update(&mut app, press(KeyCode::Esc));
        type_line(&mut app, "approve");
        assert!(
            notice(&app).contains("no approval gate is waiting"),
            "{}",
            notice(&app)
        );
        type_line(&mut app, "frobnicate");
        assert!(notice(&app).contains("unknown command"), "{}", notice(&app));
    }

    #[test]
    fn space_ticks_only_the_checklist_item_the_plan_waits_on() {
        let mut app = app();
        update(&mut app, key('n'));
        assert_eq!(app.deployment.cursor, Some(StepRef { phase: 0, slot: 0 }));
        update(&mut app, key('j'));
        assert!(update(&mut app, key(' ')).is_empty());
        assert!(
            notice(&app).contains("not a checklist item"),
            "{}",
            notice(&app)
        );
        update(&mut app, key('k'));
        let effects = update(&mut app, key(' '));
        assert_eq!(
            weights(&effects),
            vec![(10, false)],
            "ticked; the weight step starts"
        );
    }

    #[test]
    fn keys_that_do_nothing_say_why() {
        let mut app = app();
        update(&mut app, key('x'));
        assert!(
            notice(&app).contains("no rollback countdown"),
            "{}",
            notice(&app)
        );
        update(&mut app, key('p'));
        assert!(notice(&app).contains("not started"), "{}", notice(&app));
        update(&mut app, key('D'));
        assert!(notice(&app).contains("demo"), "{}", notice(&app));
        assert!(journaled_commands(&app).is_empty());
    }

    #[test]
    fn focus_moves_and_the_pod_table_and_log_follow_their_keys() {
        let mut app = app();
        update(
            &mut app,
            Action::Cluster(ClusterEvent::PodsRelisted(vec![pod("b"), pod("a")])),
        );
        for i in 0..5 {
            app.push_log(Level::Info, format!("line {i}"));
        }
        update(&mut app, press(KeyCode::Tab));
        assert_eq!(app.view.focus, super::super::modal::Focus::Pods);
        update(&mut app, key('j'));
        assert_eq!(app.view.pod_selected.as_deref(), Some("b"));
        update(&mut app, key('s'));
        assert_eq!(app.view.pod_sort, super::super::modal::PodSort::Status);
        update(&mut app, press(KeyCode::Tab));
        update(&mut app, key('k'));
        update(&mut app, key('k'));
        assert_eq!(app.view.log_back, 2);
        update(&mut app, press(KeyCode::End));
        assert_eq!(app.view.log_back, 0, "End follows the log again");
        assert!(
            app.recorded.is_empty(),
            "the screen's own keys journal nothing"
        );
    }

    /// The demo plan without Production's approval gate, waiting at Staging's last step (the
    /// pause before production): passing it starts production's first weight step.
    fn at_the_gate_before_production() -> App {
        let mut app = app();
        let text = crate::cli::DEMO_PLAN.replacen("    approval: [carol]\n", "", 1);
        let plan = crate::plan::parse(std::path::Path::new("demo.yaml"), &text).expect("plan");
        app.plan = Arc::new(plan);
        let mut d = crate::engine::Deployment::new(app.plan.clone());
        d.status = RunStatus::Running;
        for phase in 0..2 {
            for slot in &mut d.phases[phase].slots {
                slot.state = crate::engine::StepState::Done;
            }
        }
        let pause = StepRef { phase: 1, slot: 2 };
        d.phases[1].slots[2].state = crate::engine::StepState::Waiting;
        d.cursor = Some(pause);
        d.observe_weight(Weight::clamped(25));
        app.deployment = d;
        app.target = app.targets["staging"].clone();
        app.traffic.observed = Some(Weight::clamped(25));
        app
    }

    #[test]
    fn passing_the_last_gate_before_production_asks_first_and_says_where_it_acts() {
        let mut app = at_the_gate_before_production();
        assert_eq!(
            input::confirm_reason(&app),
            None,
            "staging itself is medium risk"
        );
        assert!(update(&mut app, key('n')).is_empty(), "asked, not done");
        let Some(super::super::modal::Modal::Confirm(c)) = app.modal() else {
            panic!("no question: {:?}", app.modals);
        };
        assert!(
            c.question
                .contains("then weight → 50% starts in production"),
            "{}",
            c.question
        );
        assert!(c.why.contains("production"), "{}", c.why);
        let effects = update(&mut app, key('y'));
        assert_eq!(weights(&effects), vec![(50, false)]);
    }

    /// The demo with Development and Staging done, Production waiting for carol's approval;
    /// the screen on production, whose canary weight reads `weight`.
    fn at_productions_approval_gate(weight: i64) -> App {
        let mut app = app();
        let mut d = crate::engine::Deployment::new(app.plan.clone());
        d.status = RunStatus::Running;
        for phase in 0..2 {
            for slot in &mut d.phases[phase].slots {
                slot.state = crate::engine::StepState::Done;
            }
        }
        assert!(matches!(
            d.phases[2].slots[0].work,
            crate::engine::StepWork::Gate(crate::engine::Gate::Approval(_))
        ));
        d.phases[2].slots[0].state = crate::engine::StepState::Waiting;
        d.cursor = Some(StepRef { phase: 2, slot: 0 });
        d.observe_weight(Weight::clamped(weight));
        app.deployment = d;
        app.target = app.targets["production"].clone();
        app.traffic.observed = Some(Weight::clamped(weight));
        app
    }

    #[test]
    fn at_an_approval_gate_the_weight_there_only_goes_down_until_it_is_approved() {
        let mut app = at_productions_approval_gate(0);
        assert!(update(&mut app, key('+')).is_empty());
        assert!(
            notice(&app).contains("Production needs carol's approval")
                && notice(&app).contains("only goes down"),
            "{}",
            notice(&app)
        );
        assert!(app.modal().is_none(), "nothing asked");
        type_line(&mut app, "weight 30");
        assert!(notice(&app).contains("only goes down"), "{}", notice(&app));
        assert!(app.modal().is_none(), ":weight refused too");
        let bar = super::super::hints::key_bar(&app);
        let weight = bar
            .iter()
            .find(|h| h.key == "+/-")
            .expect("the weight keys in the bar");
        assert_eq!(weight.text, "weight 0%: up after approval");
        assert!(
            super::super::hints::now_for(&app, Command::WeightUp)
                .is_some_and(|t| t.starts_with("does nothing now") && t.contains("approval")),
        );
        // Before the gate is reached too (paused, a window closed): the same.
        let mut app = at_productions_approval_gate(0);
        app.deployment.phases[2].slots[0].state = crate::engine::StepState::Pending;
        app.deployment.status = RunStatus::Paused;
        assert!(update(&mut app, key('+')).is_empty());
        assert!(notice(&app).contains("only goes down"), "{}", notice(&app));
        // The w field and the : line say so as you type (their preview is `weight_change`),
        // rather than promising a weight; Enter asks nothing.
        assert!(
            input::weight_change(&app, Weight::clamped(30))
                .is_err_and(|why| why.contains("only goes down"))
        );
        assert_eq!(
            input::weight_change(&app, Weight::ZERO),
            Err("already 0%".into())
        );
        update(&mut app, key('w'));
        for c in "30".chars() {
            update(&mut app, key(c));
        }
        update(&mut app, press(KeyCode::Enter));
        assert!(!matches!(
            app.modal(),
            Some(super::super::modal::Modal::Confirm(_))
        ));
        assert!(notice(&app).contains("only goes down"), "{}", notice(&app));
        // Lowering is allowed (asked first, production); after the approval, raising too.
        let mut app = at_productions_approval_gate(20);
        update(&mut app, key('-'));
        assert!(matches!(
            app.modal(),
            Some(super::super::modal::Modal::Confirm(_))
        ));
        assert_eq!(weights(&update(&mut app, key('y'))), vec![(10, false)]);
        let mut app = at_productions_approval_gate(20);
        app.deployment.phases[2].slots[0].state = crate::engine::StepState::Done;
        app.deployment.cursor = Some(StepRef { phase: 2, slot: 1 });
        update(&mut app, key('+'));
        assert!(
            matches!(app.modal(), Some(super::super::modal::Modal::Confirm(_))),
            "{}",
            notice(&app)
        );
    }

    #[test]
    fn a_withdrawn_question_takes_the_next_key_so_a_late_n_does_not_advance() {
        let mut app = app();
        update(&mut app, key('r'));
        update(&mut app, press(KeyCode::Enter));
        update(
            &mut app,
            Action::Traffic(TrafficEvent::Weight(Weight::clamped(20))),
        );
        assert!(matches!(
            app.modal(),
            Some(super::super::modal::Modal::Withdrawn(_))
        ));
        assert!(update(&mut app, key('n')).is_empty());
        assert_eq!(
            app.deployment.status,
            RunStatus::Ready,
            "n only closed the box"
        );
        assert!(app.modals.is_empty());
        assert!(journaled_commands(&app).is_empty());
    }

    /// The demo at a breach with its countdown running.
    fn counting_down() -> App {
        let mut app = app();
        into_the_hold(&mut app);
        update(&mut app, breaching_round());
        update(&mut app, breaching_round());
        assert!(app.deployment.countdown.is_some(), "a countdown runs");
        app
    }

    #[test]
    fn x_cancels_a_countdown_from_behind_help_and_menus() {
        for open in ['?', 'r', 'w', 'D'] {
            let mut app = counting_down();
            update(&mut app, key(open));
            update(&mut app, key('x'));
            assert!(app.deployment.countdown.is_none(), "x behind {open}");
            assert_eq!(app.deployment.status, RunStatus::Paused, "x behind {open}");
        }
        let mut app = counting_down();
        update(&mut app, key(':'));
        update(&mut app, key('x'));
        assert!(
            app.deployment.countdown.is_some(),
            "x is a letter on the command line"
        );
    }

    #[test]
    fn during_a_countdown_the_weight_only_goes_down_and_a_question_is_withdrawn() {
        let mut app = counting_down();
        assert!(update(&mut app, key('+')).is_empty());
        assert!(notice(&app).contains("only goes down"), "{}", notice(&app));
        assert_eq!(weights(&update(&mut app, key('-'))), vec![(0, false)]);
        let mut app = in_production();
        update(&mut app, key('+'));
        assert!(matches!(
            app.modal(),
            Some(super::super::modal::Modal::Confirm(_))
        ));
        app.deployment.countdown = Some(crate::engine::Countdown {
            tier: crate::plan::TierName::Immediate,
            metric: "error_rate".into(),
            reason: "test".into(),
            ends: app.now + Duration::from_secs(10),
            environment: "production".into(),
        });
        let now = app.now;
        update(&mut app, Action::Tick(now));
        assert!(
            !matches!(app.modal(), Some(super::super::modal::Modal::Confirm(_))),
            "a countdown began: the question is withdrawn"
        );
    }

    #[test]
    fn the_rollback_question_names_where_the_rollback_acts() {
        let mut app = at_the_gate_before_production();
        // The canary is live in staging; the screen may show another environment.
        app.target = app.targets["production"].clone();
        update(&mut app, key('r'));
        update(&mut app, press(KeyCode::Enter));
        let Some(super::super::modal::Modal::Confirm(c)) = app.modal() else {
            panic!("no question: {:?}", app.modals);
        };
        assert!(
            c.question
                .contains(&format!("in {}", input::rollback_where(&app))),
            "{}",
            c.question
        );
    }

    #[test]
    fn skip_and_window_override_say_when_they_would_do_nothing() {
        let mut app = app();
        assert!(input::line_hint(&app, "skip tired").is_err_and(|e| e.contains("no hold")));
        assert!(input::line_hint(&app, "window override late").is_err());
        into_the_hold(&mut app);
        assert!(input::line_hint(&app, "skip tired").is_ok());
    }
}
