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
    Ok(app)
}

fn handle(app: &mut App, action: Action, runner: &EffectRunner) {
    for effect in update(app, action) {
        runner.run(effect);
    }
}
