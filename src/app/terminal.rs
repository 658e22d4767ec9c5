//! The console's screen on the terminal: a frame drawn in full only when more than the clock
//! changed, and each frame inside a synchronized update.

use std::io::{self, Write};

use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::{execute, queue, terminal};
use ratatui::{DefaultTerminal, Frame, Terminal};

use super::event_loop::Screen;
use super::model::App;

/// Writes one frame, inside a synchronized update: a terminal that knows it shows the frame
/// whole, never half drawn; one that does not ignores it. `clear` writes every cell, not only
/// those that changed.
fn frame<B, T>(
    terminal: &mut Terminal<B>,
    clear: bool,
    draw: impl FnOnce(&mut Frame) -> T,
) -> io::Result<Option<(T, Buffer)>>
where
    B: Backend<Error = io::Error> + Write,
{
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
    let buffer = drawn?;
    ended?;
    Ok(out.map(|out| (out, buffer)))
}

/// A full frame every time: the observer's screen (`warroom watch`), and the console's before
/// its loop starts.
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
    /// Resize events since the last frame.
    resizes: u32,
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
            resizes: 0,
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
        // Several sizes since the last frame, even if back to the same one: what the terminal
        // shows now may be anything, so every cell is written again.
        let clear = self.resizes > 1;
        self.resizes = 0;
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

    /// Only a new size calls for a frame; the same size again does not, unless more sizes came
    /// in between (a quick shrink and grow back may have cut what the terminal shows).
    fn resized(&mut self) -> io::Result<bool> {
        self.resizes += 1;
        let size = self.terminal.size()?;
        tracing::debug!(
            width = size.width,
            height = size.height,
            events = self.resizes,
            "terminal resized"
        );
        let Some(last) = &self.last else {
            return Ok(true);
        };
        Ok(self.resizes > 1 || size != last.buffer.area.as_size())
    }
}

#[cfg(test)]
mod tests;
