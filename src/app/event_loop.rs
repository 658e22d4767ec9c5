//! The event loop: one action channel in, `update`, effects out, a frame when something changed.
//! Owns the terminal while it runs; decides nothing itself.

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::action::Action;
use super::effects::EffectRunner;
use super::model::App;
use super::update::update;

/// At most this many frames a second; bursts of actions are coalesced into one frame.
const FRAME: Duration = Duration::from_millis(33);

/// Sends terminal input, the 1 Hz clock and termination signals into the action channel.
pub fn spawn_input_sources(tx: UnboundedSender<Action>, cancel: CancellationToken) {
    let input_tx = tx.clone();
    let input_cancel = cancel.clone();
    tokio::spawn(async move {
        let mut events = EventStream::new();
        loop {
            let next = tokio::select! {
                n = events.next() => n,
                () = input_cancel.cancelled() => return,
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
            if input_tx.send(action).is_err() || closed {
                return;
            }
        }
    });

    let clock_tx = tx.clone();
    let clock_cancel = cancel.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = clock_cancel.cancelled() => return,
            }
            if clock_tx.send(Action::Tick(SystemTime::now())).is_err() {
                return;
            }
        }
    });

    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        let why = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
            () = cancel.cancelled() => return,
        };
        let _ = tx.send(Action::InputClosed(why.to_string()));
    });
}

/// Runs the console until the operator quits or the terminal goes away. Returns the final state.
pub async fn run(
    mut app: App,
    terminal: &mut DefaultTerminal,
    mut actions: UnboundedReceiver<Action>,
    runner: EffectRunner,
) -> std::io::Result<App> {
    let mut dirty = true;
    let mut last_frame: Option<Instant> = None;
    loop {
        if dirty && last_frame.is_none_or(|t| t.elapsed() >= FRAME) {
            terminal.draw(|frame| crate::ui::render(&app, frame))?;
            dirty = false;
            last_frame = Some(Instant::now());
        }
        let next_frame = last_frame.map_or_else(Instant::now, |t| t + FRAME);
        tokio::select! {
            action = actions.recv() => {
                let Some(action) = action else { break };
                handle(&mut app, action, &runner);
                // Drain what is already queued: a burst of events costs one frame.
                while let Ok(action) = actions.try_recv() {
                    handle(&mut app, action, &runner);
                }
                dirty = true;
            }
            () = tokio::time::sleep_until(next_frame.into()), if dirty => {}
        }
        if app.should_quit {
            break;
        }
    }
    settle_in_flight(&mut app, &mut actions).await;
    Ok(app)
}

/// How long quitting waits for writes already sent (a rollback pressed just before `q`).
const SETTLE: Duration = Duration::from_secs(10);

/// Waits, bounded, for effects in flight to report back, so quitting never abandons a weight
/// write such as the one `!` started. Work those results would start next is not run.
async fn settle_in_flight(app: &mut App, actions: &mut UnboundedReceiver<Action>) {
    let deadline = Instant::now() + SETTLE;
    while !app.in_flight.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(action)) = tokio::time::timeout(left, actions.recv()).await else {
            return;
        };
        if matches!(action, Action::EffectDone { .. }) {
            for effect in update(app, action) {
                app.in_flight.remove(&effect.id());
            }
        }
    }
}

fn handle(app: &mut App, action: Action, runner: &EffectRunner) {
    for effect in update(app, action) {
        runner.run(effect);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;
    use crate::app::model::Target;
    use crate::plan::Weight;

    fn app() -> App {
        let plan = crate::plan::parse(Path::new("demo.yaml"), crate::cli::DEMO_PLAN)
            .expect("demo plan parses");
        let mut app = App::new(
            Arc::new(plan),
            Target {
                environment: "development".into(),
                namespace: "shop".into(),
                context: "sim".into(),
                kubeconfig_hint: None,
            },
            "t".into(),
            SystemTime::UNIX_EPOCH,
        );
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
        let id = effects[0].id();
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
        settle_in_flight(&mut app, &mut rx).await;
        assert!(app.in_flight.is_empty());
        assert_eq!(app.traffic.observed, Some(Weight::ZERO));
        assert!(app.log.iter().any(|l| l.text == "canary weight 0% stored"));
    }

    #[tokio::test]
    async fn quitting_does_not_start_the_next_step() {
        let text = crate::cli::DEMO_PLAN.replace(
            "      - check: Container image built and scanned\n      - weight: 10\n",
            "      - weight: 5\n      - weight: 10\n",
        );
        let plan = crate::plan::parse(Path::new("t.yaml"), &text).expect("plan parses");
        let mut app = app();
        app.deployment = crate::engine::Deployment::new(&plan);
        let effects = update(
            &mut app,
            Action::Key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE)),
        );
        assert_eq!(effects.len(), 1, "weight 5 starts");
        app.should_quit = true;
        let (tx, mut rx) = unbounded_channel();
        let _ = tx.send(Action::EffectDone {
            id: effects[0].id(),
            result: Ok("stored".into()),
        });
        settle_in_flight(&mut app, &mut rx).await;
        assert!(
            app.in_flight.is_empty(),
            "weight 10, which the result would start, is neither run nor waited for"
        );
    }
}
