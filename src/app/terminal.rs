//! The terminal: taken once and given back once — by the console when it ends, or by a panic
//! anywhere (see `crate::panics`) — and the console's screen on it, which draws a frame in
//! full only when more than the clock changed, and each frame inside a synchronized update.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::crossterm::{cursor, execute, queue, terminal};
use ratatui::{DefaultTerminal, Frame, Terminal};

use super::event_loop::Screen;
use super::model::App;

/// Whether warroom holds the terminal: raw mode on, the alternate screen shown.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Held while a frame is written and while the terminal is given back: a panic on another
/// thread never restores the terminal in the middle of a frame, and no frame follows.
static SCREEN: Mutex<()> = Mutex::new(());

thread_local! {
    /// This thread is writing a frame (and holds [`SCREEN`]): its own panic must not wait
    /// for the lock.
    static DRAWING: Cell<bool> = const { Cell::new(false) };
}

/// How long a panic on another thread waits for a frame being written to end.
const FRAME_WAIT: Duration = Duration::from_secs(1);

/// Takes the terminal: raw mode, the alternate screen. What `ratatui::try_init` does, less its
/// panic hook: warroom's own (`crate::panics::install`) gives the terminal back and ends the
/// console, rather than leaving it drawing on a restored terminal.
pub fn take() -> io::Result<DefaultTerminal> {
    terminal::enable_raw_mode()?;
    TAKEN.store(true, Ordering::SeqCst);
    let taken = execute!(io::stdout(), terminal::EnterAlternateScreen)
        .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
    if taken.is_err() {
        give_back();
    }
    taken
}

/// Gives the terminal back — raw mode off, the shell's screen, the cursor shown — once: later
/// calls do nothing.
pub fn give_back() {
    let _screen = lock(&SCREEN);
    restore();
}

/// Gives the terminal back from a panic hook: after the frame another thread is writing, if it
/// ends soon; at once if the panic is in this thread's frame.
pub(crate) fn give_back_after_panic() {
    let _screen = if DRAWING.with(Cell::get) {
        None
    } else {
        lock_within(&SCREEN, FRAME_WAIT)
    };
    restore();
}

fn restore() {
    if TAKEN.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        // A frame cut short by a panic may have begun a synchronized update.
        let _ = execute!(
            io::stdout(),
            terminal::EndSynchronizedUpdate,
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock_within(mutex: &Mutex<()>, wait: Duration) -> Option<MutexGuard<'_, ()>> {
    let deadline = Instant::now() + wait;
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// Writes one frame, inside a synchronized update: a terminal that knows it shows the frame
/// whole, never half drawn; one that does not ignores it. Never after a panic has given the
/// terminal back. `clear` writes every cell, not only those that changed.
fn frame<B, T>(
    terminal: &mut Terminal<B>,
    clear: bool,
    draw: impl FnOnce(&mut Frame) -> T,
) -> io::Result<Option<(T, Buffer)>>
where
    B: Backend<Error = io::Error> + Write,
{
    let _screen = lock(&SCREEN);
    if crate::panics::happened() || crate::panics::message().is_some() {
        // The terminal is the shell's again: nothing more is drawn on it.
        return Ok(None);
    }
    DRAWING.with(|d| d.set(true));
    let mut out = None;
    let mut begun = queue!(terminal.backend_mut(), terminal::BeginSynchronizedUpdate);
    if clear {
        // Not `Terminal::clear`: it asks the terminal where the cursor is, and the answer would
        // go to the input reader, not to it (a 2 s wait, then an error). A resize to the same
        // area clears the screen and forgets what ratatui thought it showed.
        begun = begun.and_then(|()| {
            let size = terminal.size()?;
            terminal.resize(ratatui::layout::Rect::from((
                ratatui::layout::Position::ORIGIN,
                size,
            )))
        });
    }
    let drawn = begun.and_then(|()| {
        terminal
            .draw(|f| out = Some(draw(f)))
            .map(|done| done.buffer.clone())
    });
    // Ended even when the frame failed: a terminal left in a synchronized update shows nothing.
    let ended = execute!(terminal.backend_mut(), terminal::EndSynchronizedUpdate);
    DRAWING.with(|d| d.set(false));
    let buffer = drawn?;
    ended?;
    Ok(out.map(|out| (out, buffer)))
}

/// A full frame every time: the console's before its loop starts.
impl Screen for DefaultTerminal {
    fn show(&mut self, app: &App) -> io::Result<()> {
        frame(self, false, |f| crate::ui::render(app, f)).map(|_| ())
    }
}

/// How many frames the console drew, and of which kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frames {
    /// Everything drawn from the app.
    pub full: u64,
    /// Only what the clock moves drawn again; the rest copied from the frame before.
    pub clock: u64,
}

/// The last frame drawn, and what it was drawn from.
struct Drawn {
    buffer: Buffer,
    generation: u64,
    ages: Vec<String>,
}

/// The console's screen. The event loop shows it a frame only when something changed (see
/// `event_loop::run`); it draws all of it only when more than the clock did: when
/// `App::generation` moved since the last frame, or the size changed. Otherwise the frame is
/// the last one with what the clock moves drawn again (`ui::render_clock`). Either way
/// ratatui writes only the cells that differ from what the terminal shows.
pub struct Console<B: Backend<Error = io::Error> + Write> {
    terminal: Terminal<B>,
    monochrome: bool,
    last: Option<Drawn>,
    /// A resize event came since the last frame.
    resized: bool,
    frames: Frames,
}

impl<B: Backend<Error = io::Error> + Write> Console<B> {
    /// Colour as `NO_COLOR` says.
    pub fn new(terminal: Terminal<B>) -> Console<B> {
        Console::with_colour(terminal, !crate::ui::no_color())
    }

    pub fn with_colour(terminal: Terminal<B>, colour: bool) -> Console<B> {
        Console {
            terminal,
            monochrome: !colour,
            last: None,
            resized: false,
            frames: Frames::default(),
        }
    }

    pub fn frames(&self) -> Frames {
        self.frames
    }

    pub fn terminal(&self) -> &Terminal<B> {
        &self.terminal
    }

    pub fn terminal_mut(&mut self) -> &mut Terminal<B> {
        &mut self.terminal
    }
}

impl<B: Backend<Error = io::Error> + Write> Screen for Console<B> {
    fn show(&mut self, app: &App) -> io::Result<()> {
        let last = self.last.take();
        // After a resize what the terminal shows may be anything, whatever size it ends at:
        // every cell is written again.
        let clear = std::mem::take(&mut self.resized);
        let ages = crate::ui::pod_ages(app);
        let monochrome = self.monochrome;
        let drawn = frame(&mut self.terminal, clear, |f| match &last {
            Some(last) if last.generation == app.generation && last.buffer.area == f.area() => {
                crate::ui::render_clock(app, f, monochrome, &last.buffer, last.ages != ages);
                false
            }
            _ => {
                crate::ui::render_with(app, f, monochrome);
                true
            }
        })?;
        let Some((full, buffer)) = drawn else {
            return Ok(());
        };
        if full {
            self.frames.full += 1;
        } else {
            self.frames.clock += 1;
        }
        self.last = Some(Drawn {
            buffer,
            generation: app.generation,
            ages,
        });
        Ok(())
    }

    /// Every resize calls for a frame drawn in full on a cleared screen, even at the size
    /// last drawn. The size read here may already be a later one than the event's, and
    /// signals coalesce, so a terminal that went through other sizes in between can report
    /// only the one it ended at, having cut, shifted or blanked what it shows meanwhile (tmux,
    /// for one, tells a pane shrunk and grown back within a moment in two resizes 10 ms
    /// apart). Diffing against what was drawn before would leave that on screen.
    fn resized(&mut self) -> io::Result<bool> {
        self.resized = true;
        // The size only for the log: the frame reads it again, and fails there if it must.
        if let Ok(size) = self.terminal.size() {
            tracing::debug!(width = size.width, height = size.height, "terminal resized");
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
