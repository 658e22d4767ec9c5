//! The event loop: one action channel in, `update`, effects out, a frame (or, headless, the new
//! log lines) when something changed. Decides nothing itself.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::action::{Action, Effect, Purpose};
use super::console::Sources;
use super::effects::EffectRunner;
use super::model::App;
use super::update::update;
use crate::cluster::model::ClusterEvent;
use crate::engine::{Origin as EngineOrigin, Work};
use crate::journal::Journal;
use crate::journal::Record;
use crate::journal::progress::Progress;
use crate::journal::record::Intent;
use crate::notify::{Event as NotifyEvent, Message, Notifier};

/// While changes keep coming, one frame per this on average: what comes in meanwhile is drawn
/// in the next one.
const FRAME: Duration = Duration::from_millis(16);
/// How many frames may follow one another at once after a quiet spell, before [`FRAME`]
/// paces them: a lone change (a pod event, a key) is drawn as soon as it is taken.
const BURST: u32 = 4;

/// When the next frame may be drawn: a token bucket of [`BURST`] frames, one more every
/// [`FRAME`]. At most `BURST` frames back to back, then one per `FRAME` while changes keep
/// coming; a screen that changes a few times a second (pods moving on, the clock, the metric
/// polls) always has a frame in hand, so a change is on screen in the time it takes to draw.
#[derive(Debug, Clone, Copy)]
struct Pacer {
    /// Frames in hand, in units of one frame, as of `at`.
    tokens: f64,
    at: Instant,
}

impl Pacer {
    fn new(now: Instant) -> Pacer {
        Pacer {
            tokens: f64::from(BURST),
            at: now,
        }
    }

    fn tokens(&self, now: Instant) -> f64 {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() / FRAME.as_secs_f64();
        (self.tokens + earned).min(f64::from(BURST))
    }

    /// The earliest a frame may be drawn (`now` or before when one is in hand).
    fn ready_at(&self, now: Instant) -> Instant {
        let short = 1.0 - self.tokens(now);
        if short <= 0.0 {
            now
        } else {
            now + FRAME.mul_f64(short)
        }
    }

    /// A frame was drawn at `now`.
    fn drew(&mut self, now: Instant) {
        self.tokens = (self.tokens(now) - 1.0).max(0.0);
        self.at = now;
    }
}

/// What the loop shows the app on (the terminal's: `terminal::Console`).
pub trait Screen {
    fn show(&mut self, app: &App) -> std::io::Result<()>;

    /// The terminal says it changed size: whether that calls for a frame.
    fn resized(&mut self) -> std::io::Result<bool> {
        Ok(true)
    }

    /// The state may have changed: called after every action handled, whether or not a frame
    /// follows, for what must not miss a state that lasts less than a frame (a rehearsal's
    /// driver).
    fn changed(&mut self, _app: &App) {}
}

/// Headless: prints each new log line once, as text or JSON.
pub struct LinePrinter {
    json: bool,
    printed: u64,
}

impl LinePrinter {
    pub fn new(json: bool) -> LinePrinter {
        LinePrinter { json, printed: 0 }
    }

    /// Prints only lines after the first `total` (a resume does not print the history again).
    pub fn skip_to(&mut self, total: u64) {
        self.printed = total;
    }
}

impl Screen for LinePrinter {
    fn show(&mut self, app: &App) -> std::io::Result<()> {
        let new = app.log_total.saturating_sub(self.printed);
        let kept = app.log.len() as u64;
        let skip = kept.saturating_sub(new);
        let mut out = std::io::stdout().lock();
        for line in app
            .log
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        {
            let at = jiff::Timestamp::try_from(line.at)
                .map(|t| t.to_string())
                .unwrap_or_default();
            if self.json {
                let record = serde_json::json!({
                    "at": at,
                    "level": line.level,
                    "environment": line.environment,
                    "text": line.text,
                });
                writeln!(out, "{record}")?;
            } else {
                let level = match line.level {
                    super::model::Level::Info => "info ",
                    super::model::Level::Operator => "op   ",
                    super::model::Level::Warn => "warn ",
                    super::model::Level::Error => "ERROR",
                };
                writeln!(out, "{at} {level} {}", line.text)?;
            }
        }
        out.flush()?;
        self.printed = app.log_total;
        Ok(())
    }
}

/// What carries effects out: the runner (through the journal, which writes each intent
/// first), and the source tasks that follow the environment.
pub struct Shell {
    pub runner: EffectRunner,
    pub sources: Sources,
    pub journal: Option<Journal>,
    /// The engine's progress as last journaled.
    pub progress: Progress,
    /// `app.log_total` as last journaled.
    pub logged: u64,
    /// Where the plan's `notify.on` events go.
    pub notifier: Option<Notifier>,
    /// What has been announced, so each event is sent once.
    announced: Announced,
}

/// Events already sent to the webhook.
#[derive(Debug, Default)]
struct Announced {
    started: std::collections::BTreeSet<usize>,
    finished: std::collections::BTreeSet<usize>,
    banner: Option<String>,
    status: Option<crate::engine::RunStatus>,
}

impl Announced {
    /// The messages `app`'s state calls for since the last call.
    fn messages(&mut self, app: &App) -> Vec<Message> {
        use crate::engine::{RunStatus, StepState};
        let d = &app.deployment;
        let plan = app.plan.name.clone();
        let mut out = Vec::new();
        let message = |event, phase: Option<&str>, env: &str, text: String| {
            let mut m = Message::new(event, plan.clone(), text);
            m.phase = phase.map(str::to_string);
            m.environment = Some(env.to_string()).filter(|e| !e.is_empty());
            m.operator = Some(app.operator.clone());
            m
        };
        for (i, phase) in d.phases.iter().enumerate() {
            let started = phase.slots.iter().any(|s| s.state != StepState::Pending);
            if started && self.started.insert(i) {
                out.push(message(
                    NotifyEvent::Phase,
                    Some(&phase.name),
                    &phase.environment,
                    format!(
                        "{plan}: phase {} started in {}",
                        phase.name, phase.environment
                    ),
                ));
            }
            let finished =
                !phase.slots.is_empty() && phase.slots.iter().all(|s| s.state == StepState::Done);
            if finished && self.finished.insert(i) {
                out.push(message(
                    NotifyEvent::Phase,
                    Some(&phase.name),
                    &phase.environment,
                    format!("{plan}: phase {} done in {}", phase.name, phase.environment),
                ));
            }
        }
        if d.banner != self.banner {
            if let Some(banner) = &d.banner {
                let mut m = message(
                    NotifyEvent::Breach,
                    None,
                    d.active_environment(),
                    format!("{plan}: {banner}"),
                );
                m.figures.push(("verdict".into(), banner.clone()));
                if let Some(w) = d.weight {
                    m.figures.push(("canary weight".into(), w.to_string()));
                }
                out.push(m);
            }
            self.banner = d.banner.clone();
        }
        if self.status != Some(d.status) {
            let env = d
                .rollback
                .as_ref()
                .map_or_else(|| d.environment().to_string(), |r| r.environment.clone());
            let headline = d.headline(app.now);
            match d.status {
                RunStatus::RollingBack | RunStatus::RolledBack | RunStatus::RollbackFailed => out
                    .push(message(
                        NotifyEvent::Rollback,
                        None,
                        &env,
                        format!("{plan}: {headline}"),
                    )),
                RunStatus::Complete => out.push(message(
                    NotifyEvent::Done,
                    None,
                    &env,
                    format!("{plan}: deployment complete"),
                )),
                _ => {}
            }
            self.status = Some(d.status);
        }
        out
    }
}

impl Shell {
    pub fn new(runner: EffectRunner, sources: Sources, journal: Option<Journal>) -> Shell {
        Shell {
            runner,
            sources,
            journal,
            progress: Progress::default(),
            logged: 0,
            notifier: None,
            announced: Announced::default(),
        }
    }

    /// Takes the journal up to `app`'s state without writing (after a replay).
    pub fn caught_up(&mut self, app: &mut App) {
        app.recorded.clear();
        self.progress.advance(&app.deployment);
        self.logged = app.log_total;
        // What the journal shows was announced before.
        self.announced.messages(app);
    }

    /// Journals what the last action changed: the inputs applied, the log lines, the step and
    /// status changes.
    pub fn journal_changes(&mut self, app: &mut App) {
        let messages = self.announced.messages(app);
        if let Some(notifier) = &self.notifier {
            for message in messages {
                notifier.send(message);
            }
        }
        let recorded = std::mem::take(&mut app.recorded);
        let Some(journal) = &self.journal else {
            self.logged = app.log_total;
            return;
        };
        for (at, record) in recorded {
            journal.record(at, record);
        }
        let new = app.log_total.saturating_sub(self.logged);
        let skip = (app.log.len() as u64).saturating_sub(new);
        for line in app
            .log
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        {
            journal.record(
                line.at,
                Record::Log {
                    level: line.level,
                    environment: line.environment.clone(),
                    text: line.text.clone(),
                },
            );
        }
        self.logged = app.log_total;
        for record in self.progress.advance(&app.deployment) {
            journal.record(app.now, record);
        }
    }

    /// Hands one effect on: source changes here, work to the runner (its intent journaled and
    /// on disk first).
    pub fn dispatch(&mut self, app: &App, effect: Effect) {
        match effect {
            Effect::Watch { environment } => self.sources.watch(&environment),
            other => match &self.journal {
                None => self.runner.run(other),
                Some(journal) => match intent_of(app, &other) {
                    Some(intent) if intent.purpose == "rollback" => {
                        tracing::info!(id = intent.id, environment = %intent.environment, "rollback action: {}", intent.label);
                        journal.intent(app.now, intent, other)
                    }
                    Some(intent) => journal.intent(app.now, intent, other),
                    None => journal.effect(other),
                },
            },
        }
    }
}

/// A webhook attempt as a journal line.
pub fn notify_record(attempt: &crate::notify::Attempt) -> Record {
    use crate::notify::AttemptOutcome;
    let outcome = match &attempt.outcome {
        AttemptOutcome::Delivered { status } => format!("delivered ({status})"),
        AttemptOutcome::Retrying {
            status_or_error,
            after,
        } => format!(
            "{status_or_error}; retrying in {:.1} s",
            after.as_secs_f64()
        ),
        AttemptOutcome::GaveUp { why } => format!("gave up: {why}"),
    };
    Record::Notify {
        message: attempt.message_id,
        attempt: attempt.attempt,
        event: attempt.event.name().to_string(),
        outcome,
    }
}

/// The journal's intent line for a piece of work.
pub fn intent_of(app: &App, effect: &Effect) -> Option<Intent> {
    let Effect::Work {
        id,
        environment,
        phase,
        purpose,
        work,
    } = effect
    else {
        return None;
    };
    let origin = match app.in_flight.get(id) {
        Some(super::model::Origin::Engine(o)) => Some(*o),
        _ => None,
    };
    let label = match origin {
        Some(EngineOrigin::Step(at)) => app.deployment.slot(at).map(|s| s.label.clone()),
        Some(EngineOrigin::Rollback { action, .. }) => app
            .deployment
            .rollback
            .as_ref()
            .and_then(|r| r.actions.get(action))
            .map(|a| a.label.clone()),
        None => None,
    }
    .unwrap_or_else(|| match work {
        Work::SetWeight { weight, .. } => format!("weight {weight} by {}", app.operator),
        other => format!("{other:?}"),
    });
    Some(Intent {
        id: id.0,
        environment: environment.clone(),
        phase: phase.clone(),
        purpose: match purpose {
            Purpose::Step => "step",
            Purpose::Rollback => "rollback",
            Purpose::Operator => "operator",
        }
        .to_string(),
        origin,
        label,
        work: work.clone(),
    })
}

/// Sends terminal input into the action channel.
pub fn spawn_input(tx: UnboundedSender<Action>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        loop {
            let next = tokio::select! {
                n = events.next() => n,
                () = cancel.cancelled() => return,
            };
            let action = match next {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => Action::Key(key),
                Some(Ok(Event::Resize(_, _))) => Action::Resize,
                Some(Ok(_)) => continue,
                // A vanished tty gives errors or EOF forever; reading on would spin a core.
                Some(Err(e)) => Action::InputClosed(format!("input error: {e}")),
                None => Action::InputClosed("end of input".to_string()),
            };
            let closed = matches!(action, Action::InputClosed(_));
            if tx.send(action).is_err() || closed {
                return;
            }
        }
    });
}

/// Sends the 1 Hz clock.
pub fn spawn_clock(tx: UnboundedSender<Action>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = cancel.cancelled() => return,
            }
            if tx.send(Action::Tick(SystemTime::now())).is_err() {
                return;
            }
        }
    });
}

/// Termination signals. The console leaves on SIGTERM/SIGHUP as on a closed terminal; a
/// headless run is interrupted by SIGINT/SIGTERM, which lets a rollback under way finish.
pub fn spawn_signals(tx: UnboundedSender<Action>, cancel: CancellationToken, headless: bool) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        loop {
            let why = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
                _ = int.recv() => "SIGINT",
                () = cancel.cancelled() => return,
            };
            let action = if headless {
                Action::Interrupted(why.to_string())
            } else {
                Action::InputClosed(why.to_string())
            };
            if tx.send(action).is_err() {
                return;
            }
        }
    });
}

/// Runs until the operator quits, the terminal goes away, a headless run ends or something
/// panics. Returns the final state.
///
/// A frame is drawn only when something changed, as [`Pacer`] allows (the actions queued by
/// then cost one frame together): when an action moved `app.generation` (see [`handle`]), at
/// each tick (the clock moved; the screen then draws only what the clock moves, see
/// `terminal::Console`), and when the terminal says it was resized. A key that means nothing
/// draws nothing.
pub async fn run(
    mut app: App,
    screen: &mut impl Screen,
    mut actions: UnboundedReceiver<Action>,
    mut shell: Shell,
) -> std::io::Result<App> {
    crate::panics::loop_started();
    let mut dirty = true;
    let mut pacer = Pacer::new(Instant::now());
    'run: loop {
        // What happened before the loop (a resume, a rollback begun while leaving) is drawn in
        // full.
        app.touch();
        loop {
            let now = Instant::now();
            if dirty && pacer.ready_at(now) <= now {
                screen.show(&app)?;
                dirty = false;
                pacer.drew(now);
            }
            let next_frame = pacer.ready_at(Instant::now());
            // A rollback countdown ends when it says, not at the next 1 Hz tick.
            let countdown_end = app.deployment.countdown.as_ref().map(|c| {
                let left = c.ends.duration_since(SystemTime::now()).unwrap_or_default();
                Instant::now() + left
            });
            tokio::select! {
                () = crate::panics::panicked() => {
                    leave_after_panic(&mut app, &mut shell);
                    // Headless prints the last lines (a console draws nothing after a panic).
                    let _ = screen.show(&app);
                    return Ok(app);
                }
                () = sleep_until_some(countdown_end) => {
                    dirty |= take(&mut app, Action::Tick(SystemTime::now()), &mut shell, screen)?;
                }
                action = actions.recv() => {
                    let Some(action) = action else { break 'run };
                    dirty |= take(&mut app, action, &mut shell, screen)?;
                    // Drain what is already queued: a burst of events costs one frame.
                    while let Ok(action) = actions.try_recv() {
                        dirty |= take(&mut app, action, &mut shell, screen)?;
                    }
                }
                () = tokio::time::sleep_until(next_frame.into()), if dirty => {}
            }
            if app.should_quit {
                break;
            }
        }
        let mut shown: std::io::Result<()> = Ok(());
        let settled = settle_in_flight(
            &mut app,
            &mut actions,
            |app, settle| match settle {
                // `!`, and a snapshot taken just before quitting, are handled like any other.
                Settle::Handle(action) => handle(app, action, &mut shell),
                Settle::Journal => shell.journal_changes(app),
                Settle::Dispatch(effect) => shell.dispatch(app, effect),
            },
            |app| {
                if shown.is_ok() {
                    shown = screen.show(app);
                }
            },
        )
        .await;
        shown?;
        match settled {
            Settled::Done => break,
            Settled::Panicked => {
                leave_after_panic(&mut app, &mut shell);
                let _ = screen.show(&app);
                return Ok(app);
            }
            // `!` while leaving: the rollback runs to its end on a live screen, then warroom
            // leaves (the interrupt it set says so).
            Settled::RollingBack => {
                dirty = true;
                continue 'run;
            }
        }
    }
    app.touch();
    screen.show(&app)?;
    Ok(app)
}

/// Handles one action of the loop's; whether it calls for a frame.
fn take(
    app: &mut App,
    action: Action,
    shell: &mut Shell,
    screen: &mut impl Screen,
) -> std::io::Result<bool> {
    match action {
        Action::Resize => screen.resized(),
        // The clock moved: what it moves is drawn again, whatever else the tick did.
        Action::Tick(_) => {
            handle(app, action, shell);
            screen.changed(app);
            Ok(true)
        }
        other => {
            let before = app.generation;
            handle(app, other, shell);
            screen.changed(app);
            Ok(app.generation != before)
        }
    }
}

/// Something panicked and the terminal is already given back (`crate::panics`): the run ends
/// now, without waiting for writes in flight, and says why in its log and journal.
fn leave_after_panic(app: &mut App, shell: &mut Shell) {
    let why = crate::panics::message().unwrap_or("a panic");
    app.push_log(
        super::model::Level::Error,
        format!("warroom panicked ({why}); leaving"),
    );
    app.stopped = Some(format!("warroom panicked: {why}"));
    app.should_quit = true;
    app.touch();
    shell.journal_changes(app);
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// How long quitting waits for writes already sent (a rollback pressed just before `q`).
const SETTLE: Duration = Duration::from_secs(10);

/// What the wait for writes in flight asks of the shell.
enum Settle {
    /// Journal what changed.
    Journal,
    /// Handle an action in full (`!`, a snapshot's record).
    Handle(Action),
    /// Carry out a rollback's next action: a rollback under way goes on while warroom waits.
    Dispatch(Effect),
}

/// How leaving ended.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    /// Everything in flight reported back, or the wait ran out, or `q` was pressed again.
    Done,
    /// `!` was pressed while leaving: back to the loop until the rollback has finished.
    RollingBack,
    /// Something panicked: the terminal is gone, nothing more is waited for.
    Panicked,
}

/// Waits, bounded, for effects in flight to report back, so quitting never abandons a weight
/// write such as the one `!` started. Work those results would start next is not run. The
/// screen stays live (`show`), and `!` still works: it is handled in full (`handle`), and
/// leaving waits for its rollback to finish. `q` again leaves at once.
async fn settle_in_flight(
    app: &mut App,
    actions: &mut UnboundedReceiver<Action>,
    mut handle: impl FnMut(&mut App, Settle),
    mut show: impl FnMut(&App),
) -> Settled {
    use super::keymap::Command;
    if !app.in_flight.is_empty() {
        app.push_log(
            super::model::Level::Warn,
            format!(
                "leaving once {} change(s) in flight have reported (at most {} s); ! still rolls back, q again leaves now",
                app.in_flight.len(),
                SETTLE.as_secs()
            ),
        );
        handle(app, Settle::Journal);
    }
    let deadline = Instant::now() + SETTLE;
    while !app.in_flight.is_empty() {
        // Every pass changed something: drawn in full.
        app.touch();
        show(app);
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::select! {
            () = crate::panics::panicked() => return Settled::Panicked,
            next = tokio::time::timeout(left, actions.recv()) => next,
        };
        let Ok(Some(action)) = next else {
            return Settled::Done;
        };
        match action {
            Action::EffectDone { .. } => {
                let effects = update(app, action);
                handle(app, Settle::Journal);
                for effect in effects {
                    match effect {
                        // A rollback's next action goes on (and is waited for): dropping it
                        // would leave the tier half done, and a later `!` stuck behind it.
                        Effect::Work {
                            purpose: super::action::Purpose::Rollback,
                            ..
                        } => handle(app, Settle::Dispatch(effect)),
                        Effect::CancelSteps | Effect::CancelRollback => {
                            handle(app, Settle::Dispatch(effect))
                        }
                        other => {
                            if let Some(id) = other.id() {
                                app.in_flight.remove(&id);
                            }
                        }
                    }
                }
            }
            Action::Snapshotted { .. } => handle(app, Settle::Handle(action)),
            Action::Key(key) => match app.keymap.command_for(&key) {
                Some(Command::EmergencyRollback) => {
                    app.should_quit = false;
                    handle(app, Settle::Handle(Action::Key(key)));
                    if app.deployment.status == crate::engine::RunStatus::RollingBack {
                        app.interrupted
                            .get_or_insert_with(|| format!("quit by {}", app.operator));
                        return Settled::RollingBack;
                    }
                    app.should_quit = true;
                }
                Some(Command::Quit) => {
                    app.push_log(
                        super::model::Level::Warn,
                        format!(
                            "leaving now: {} change(s) sent were not confirmed",
                            app.in_flight.len()
                        ),
                    );
                    return Settled::Done;
                }
                _ => {}
            },
            _ => {}
        }
    }
    Settled::Done
}

/// Applies one action and hands its effects on. Moves `app.generation` on when the action may
/// have changed anything but the clock (see [`Changes`]).
pub fn handle(app: &mut App, action: Action, shell: &mut Shell) {
    let action = match action {
        Action::Sourced { epoch, action } if epoch == shell.sources.epoch => *action,
        // From the tasks of an environment no longer on screen.
        Action::Sourced { .. } => return,
        other => other,
    };
    let changes = Changes::of(app, &action);
    // Keys and results carry the moment they arrive: a rollback's start and end are measured
    // to them, not to the last 1 Hz tick.
    if matches!(action, Action::EffectDone { .. } | Action::Key(_)) {
        update(app, Action::Clock(SystemTime::now()));
    }
    if let Action::Snapshotted {
        environment,
        configmaps,
    } = action
    {
        if let Some(journal) = &shell.journal {
            journal.record(
                app.now,
                Record::Snapshot {
                    environment,
                    configmaps,
                },
            );
        }
        return;
    }
    let relisted =
        matches!(&action, Action::Cluster(ClusterEvent::PodsRelisted(pods)) if pods.len() >= 100);
    let effects = update(app, action);
    if changes.happened(app) {
        app.touch();
    }
    if relisted {
        crate::exec::give_back_heap();
    }
    shell.journal_changes(app);
    for effect in effects {
        shell.dispatch(app, effect);
    }
}

/// Whether `action` changes nothing but the clock, whatever `update` does with it: a clock, a
/// resize (the screen decides), a key that is no command with no modal open.
pub(super) fn changes_nothing(app: &App, action: &Action) -> bool {
    matches!(Changes::of(app, action), Changes::None)
}

/// What an action may change besides the clock, to tell after `update` whether the screen
/// needs more than the clock drawn again. Wrong the safe way: any action not known to change
/// nothing is taken to have changed something.
enum Changes {
    /// Nothing but the clock: `Clock`; `Resize` (the screen decides); a key that is no command
    /// (`update` does nothing with it: no modal open, and the keymap maps it to none); a pod
    /// event whose row is the one already held.
    None,
    /// A tick: whatever the engine's tick can change, as it was, to compare.
    Tick(Box<Seen>),
    /// Anything.
    Any,
}

impl Changes {
    fn of(app: &App, action: &Action) -> Changes {
        match action {
            Action::Clock(_) | Action::Resize => Changes::None,
            Action::Key(key) if app.modals.is_empty() && app.keymap.command_for(key).is_none() => {
                Changes::None
            }
            // A pod event that leaves its row as it was (a heartbeat, an annotation, a condition
            // the table does not show): the cluster sends many.
            Action::Cluster(ClusterEvent::PodApplied(pod))
                if app.cluster.pods.get(&pod.name) == Some(pod) =>
            {
                Changes::None
            }
            Action::Tick(_) => Changes::Tick(Box::new(Seen::of(app))),
            _ => Changes::Any,
        }
    }

    fn happened(&self, app: &App) -> bool {
        match self {
            Changes::None => false,
            Changes::Tick(seen) => **seen != Seen::of(app),
            Changes::Any => true,
        }
    }
}

/// What a tick can change besides `app.now`: the deployment (a hold passing, a countdown ending,
/// a paced write, a window opening), and what `update` does after it (log lines, work started,
/// the screen following the engine to another environment, a headless run stopping).
#[derive(PartialEq)]
struct Seen {
    deployment: crate::engine::Deployment,
    log_total: u64,
    in_flight: usize,
    requested: Option<(super::action::EffectId, crate::plan::Weight)>,
    environment: String,
    should_quit: bool,
    stopped: Option<String>,
}

impl Seen {
    fn of(app: &App) -> Seen {
        Seen {
            deployment: app.deployment.clone(),
            log_total: app.log_total,
            in_flight: app.in_flight.len(),
            requested: app.traffic.requested,
            environment: app.target.environment.clone(),
            should_quit: app.should_quit,
            stopped: app.stopped.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;
    use crate::app::scenario;
    use crate::plan::Weight;

    fn app() -> App {
        let mut app = scenario::bare(SystemTime::UNIX_EPOCH);
        app.traffic.observed = Some(Weight::clamped(40));
        app
    }

    #[tokio::test]
    async fn quitting_waits_for_a_rollback_write_in_flight() {
        let mut app = app();
        let effects = update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE)),
        );
        let id = effects.iter().find_map(Effect::id).expect("a write");
        app.should_quit = true;
        let (tx, mut rx) = unbounded_channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(Action::Tick(SystemTime::UNIX_EPOCH));
            let _ = tx.send(Action::EffectDone {
                id,
                result: Ok("canary weight 0% stored".into()),
            });
        });
        settle_in_flight(&mut app, &mut rx, |_, _| {}, |_| {}).await;
        assert!(!app.in_flight.contains_key(&id), "the write reported back");
        assert_eq!(app.traffic.observed, Some(Weight::ZERO));
        assert!(app.log.iter().any(|l| l.text == "canary weight 0% stored"));
    }

    #[tokio::test]
    async fn bang_while_leaving_still_rolls_back_and_leaving_waits_for_it() {
        let mut app = app();
        let effects = update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('+'), KeyModifiers::NONE)),
        );
        assert_eq!(effects.len(), 1, "a write in flight");
        app.should_quit = true;
        let (tx, mut rx) = unbounded_channel();
        let _ = tx.send(Action::Key(KeyEvent::new(
            KeyCode::Char('!'),
            KeyModifiers::NONE,
        )));
        let mut shown = 0;
        let settled = settle_in_flight(
            &mut app,
            &mut rx,
            |app, settle| {
                if let Settle::Handle(action) = settle {
                    update(app, action);
                }
            },
            |_| shown += 1,
        )
        .await;
        assert_eq!(settled, Settled::RollingBack);
        assert_eq!(app.deployment.status, crate::engine::RunStatus::RollingBack);
        assert!(!app.should_quit, "back to the loop until the rollback ends");
        assert!(app.interrupted.is_some(), "then it leaves");
        assert!(shown > 0, "the screen stayed live while leaving");
        assert!(
            app.log
                .iter()
                .any(|l| l.text.contains("! still rolls back"))
        );
    }

    #[tokio::test]
    async fn a_rollback_under_way_goes_on_to_its_end_while_leaving() {
        let mut app = app();
        let effects = update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE)),
        );
        let weight_zero = effects.iter().find_map(Effect::id).expect("weight 0");
        app.should_quit = true;
        let (tx, mut rx) = unbounded_channel();
        let _ = tx.send(Action::EffectDone {
            id: weight_zero,
            result: Ok("stored".into()),
        });
        let mut dispatched = Vec::new();
        let sender = tx.clone();
        let settled = settle_in_flight(
            &mut app,
            &mut rx,
            |_, settle| {
                if let Settle::Dispatch(effect) = settle {
                    // The flag action is carried out and reports back.
                    if let Some(id) = effect.id() {
                        let _ = sender.send(Action::EffectDone {
                            id,
                            result: Ok("flag written".into()),
                        });
                    }
                    dispatched.push(effect);
                }
            },
            |_| {},
        )
        .await;
        assert_eq!(settled, Settled::Done);
        assert_eq!(
            dispatched.len(),
            1,
            "the tier's flag action: {dispatched:?}"
        );
        assert_eq!(app.deployment.status, crate::engine::RunStatus::RolledBack);
    }

    #[tokio::test]
    async fn q_while_leaving_leaves_at_once() {
        let mut app = app();
        update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('+'), KeyModifiers::NONE)),
        );
        app.should_quit = true;
        let (tx, mut rx) = unbounded_channel();
        let _ = tx.send(Action::Key(KeyEvent::new(
            KeyCode::Char('q'),
            KeyModifiers::NONE,
        )));
        let settled = settle_in_flight(&mut app, &mut rx, |_, _| {}, |_| {}).await;
        assert_eq!(settled, Settled::Done);
        assert!(!app.in_flight.is_empty(), "left without waiting");
    }

    #[tokio::test]
    async fn quitting_does_not_start_the_next_step() {
        let text = crate::cli::DEMO_PLAN.replace(
            "      - check: Container image built and scanned\n      - weight: 10\n",
            "      - weight: 5\n      - weight: 10\n",
        );
        let plan = crate::plan::parse(Path::new("t.yaml"), &text).expect("plan parses");
        let mut app = app();
        app.deployment = crate::engine::Deployment::new(Arc::new(plan));
        let effects = update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE)),
        );
        assert_eq!(effects.len(), 1, "weight 5 starts");
        app.should_quit = true;
        let (tx, mut rx) = unbounded_channel();
        let _ = tx.send(Action::EffectDone {
            id: effects[0].id().expect("a write"),
            result: Ok("stored".into()),
        });
        settle_in_flight(&mut app, &mut rx, |_, _| {}, |_| {}).await;
        assert!(
            app.in_flight.is_empty(),
            "weight 10, which the result would start, is neither run nor waited for"
        );
    }

    /// A screen that keeps what each frame showed: the generation and the log lines.
    #[derive(Default)]
    struct Counting {
        frames: Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
    }

    impl Screen for Counting {
        fn show(&mut self, app: &App) -> std::io::Result<()> {
            if let Ok(mut frames) = self.frames.lock() {
                frames.push((app.generation, app.log_total));
            }
            Ok(())
        }
    }

    fn shell(app: &App, tx: UnboundedSender<Action>) -> Shell {
        let runner = EffectRunner::start(
            app.plan.clone(),
            ".".into(),
            Vec::new(),
            Default::default(),
            tx.clone(),
        );
        Shell::new(
            runner,
            super::super::console::Sources::idle(app.plan.clone(), tx),
            None,
        )
    }

    #[tokio::test]
    async fn a_key_that_means_nothing_draws_nothing_and_a_resize_is_the_screens_business() {
        let mut app = scenario::app();
        let (tx, _rx) = unbounded_channel();
        let mut shell = shell(&app, tx);
        let mut screen = Counting::default();
        let generation = app.generation;
        for nothing in [
            scenario::key('z'),
            Action::Key(KeyEvent::new(KeyCode::F(7), KeyModifiers::NONE)),
        ] {
            let drawn = take(&mut app, nothing.clone(), &mut shell, &mut screen).expect("takes");
            assert!(!drawn, "{nothing:?} draws nothing");
        }
        assert_eq!(app.generation, generation);
        // A pod event that leaves its row as it was draws nothing; one that changes it does.
        let mut pod = app.cluster.pods.values().next().cloned().expect("a pod");
        let same = Action::Cluster(ClusterEvent::PodApplied(pod.clone()));
        assert!(!take(&mut app, same, &mut shell, &mut screen).expect("takes"));
        assert_eq!(app.generation, generation);
        pod.restarts += 1;
        let restarted = Action::Cluster(ClusterEvent::PodApplied(pod));
        assert!(take(&mut app, restarted, &mut shell, &mut screen).expect("takes"));
        let generation = app.generation;
        assert!(take(&mut app, Action::Resize, &mut shell, &mut screen).expect("takes"));
        assert_eq!(
            app.generation, generation,
            "a resize is the screen's business"
        );
        // A tick draws what the clock moves; nothing else changed.
        let tick = Action::Tick(scenario::at(5));
        assert!(take(&mut app, tick, &mut shell, &mut screen).expect("takes"));
        assert_eq!(app.generation, generation, "only the clock moved");
        assert!(take(&mut app, scenario::key('?'), &mut shell, &mut screen).expect("takes"));
        assert_ne!(app.generation, generation, "help opened");
    }

    /// What `update` leaves of `app` that the screen could show: all but the clock and the
    /// journal's queue.
    fn shown(app: &App, now: SystemTime) -> String {
        let mut app = app.clone();
        app.now = now;
        app.recorded.clear();
        format!("{app:?}")
    }

    #[test]
    fn a_tick_judged_to_change_only_the_clock_changes_only_the_clock() {
        let (mut only_clock, mut more) = (0, 0);
        let mut check = |before: &App, after: &App| {
            if Seen::of(before) == Seen::of(after) {
                only_clock += 1;
                assert_eq!(shown(before, after.now), shown(after, after.now));
            } else {
                more += 1;
            }
        };
        let mut app = scenario::app();
        scenario::drive(&mut app, 0, 400, None, &mut check);
        let mut app = scenario::app();
        scenario::drive(&mut app, 0, 150, Some(60), &mut check);
        // A countdown ends on a tick, and so does a hold in a breach-free run.
        assert!(only_clock > 100 && more >= 2, "{only_clock} {more}");
    }

    #[test]
    fn a_key_judged_to_mean_nothing_changes_nothing() {
        let mut states = vec![scenario::app()];
        let mut app = scenario::app();
        scenario::drive(&mut app, 0, 68, Some(60), |_, _| {});
        assert!(app.deployment.countdown.is_some(), "a countdown runs");
        states.push(app.clone());
        let mut help = app.clone();
        update(&mut help, scenario::key('?'));
        let mut command = app.clone();
        update(&mut command, scenario::key(':'));
        let mut observer = app;
        observer.mode = crate::app::model::Mode::Observer;
        states.extend([help, command, observer]);
        let codes = (' '..='~')
            .map(KeyCode::Char)
            .chain((1..=12).map(KeyCode::F))
            .chain([
                KeyCode::Esc,
                KeyCode::Enter,
                KeyCode::Tab,
                KeyCode::BackTab,
                KeyCode::Backspace,
                KeyCode::Delete,
                KeyCode::Insert,
                KeyCode::Up,
                KeyCode::Down,
                KeyCode::Left,
                KeyCode::Right,
                KeyCode::Home,
                KeyCode::End,
                KeyCode::PageUp,
                KeyCode::PageDown,
            ]);
        let mut nothing = 0;
        for code in codes {
            for modifiers in [
                KeyModifiers::NONE,
                KeyModifiers::SHIFT,
                KeyModifiers::CONTROL,
                KeyModifiers::ALT,
            ] {
                let action = Action::Key(KeyEvent::new(code, modifiers));
                for state in &states {
                    if !matches!(Changes::of(state, &action), Changes::None) {
                        continue;
                    }
                    nothing += 1;
                    let mut app = state.clone();
                    update(&mut app, action.clone());
                    assert_eq!(
                        shown(state, state.now),
                        shown(&app, state.now),
                        "{action:?} was taken to change nothing"
                    );
                }
            }
        }
        assert!(nothing > 100, "{nothing}");
    }

    #[test]
    fn a_lone_change_is_drawn_at_once_and_a_stream_of_them_is_paced() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        // After a quiet spell, BURST frames back to back.
        for _ in 0..BURST {
            assert_eq!(pacer.ready_at(start), start);
            pacer.drew(start);
        }
        // Then one per FRAME.
        let next = pacer.ready_at(start);
        assert_eq!(next, start + FRAME);
        pacer.drew(next);
        assert_eq!(pacer.ready_at(next), next + FRAME);
        // A change a few times a second: always a frame in hand.
        let mut at = next + FRAME * 10;
        for _ in 0..20 {
            assert_eq!(pacer.ready_at(at), at, "drawn at once");
            pacer.drew(at);
            at += Duration::from_millis(150);
        }
        // Frames in hand never pile up past BURST, however long the quiet.
        let later = at + Duration::from_secs(3600);
        assert_eq!(pacer.tokens(later), f64::from(BURST));
        // An instant before the last frame earns nothing and owes nothing.
        assert!(pacer.tokens(start) >= 0.0);
    }

    #[tokio::test]
    async fn a_burst_of_actions_costs_one_frame_and_a_key_that_means_nothing_none() {
        let app = scenario::app();
        let (tx, rx) = unbounded_channel();
        let shell = shell(&app, tx.clone());
        let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut screen = Counting {
            frames: frames.clone(),
        };
        let looping = tokio::spawn(async move {
            run(app, &mut screen, rx, shell)
                .await
                .map(|app| app.log_total)
        });
        let count = || frames.lock().map(|f| f.len()).unwrap_or_default();
        let frames_by = async |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while count() < n {
                assert!(Instant::now() < deadline, "no frame {n}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        frames_by(1).await;
        let first = frames.lock().map(|f| f[0].1).unwrap_or_default();
        // Sent while the loop waits: it takes them as one burst.
        for i in 0..100 {
            let _ = tx.send(Action::LeaseProblem(format!("problem {i}")));
        }
        frames_by(2).await;
        let second = frames.lock().map(|f| f[1].1).unwrap_or_default();
        assert_eq!(second, first + 100, "one frame shows the whole burst");
        for _ in 0..20 {
            let _ = tx.send(scenario::key('z'));
        }
        // Long enough for several frames, had any been due.
        tokio::time::sleep(FRAME * 5).await;
        assert_eq!(count(), 2, "keys that mean nothing draw nothing");
        let _ = tx.send(scenario::key('q'));
        let total = looping
            .await
            .expect("the loop ends")
            .expect("without error");
        assert_eq!(count(), 3, "and a last frame on the way out");
        assert_eq!(total, first + 100);
    }
}
