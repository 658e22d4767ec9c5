//! The console's screen on a recording backend: a clock-only frame is the full frame it stands
//! for, a tick writes only the cells that moved, every frame is one synchronized update, and a
//! resize, even to the size drawn, writes every cell again.

use std::io::{self, Write};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Size};

use super::{Console, Frames};
use crate::app::event_loop::Screen;
use crate::app::model::{App, Mode};
use crate::app::scenario::{self, drive};
use crate::app::update::update;

/// A TestBackend that also keeps the bytes written to it (the synchronized-update sequences)
/// and counts the cells drawn.
struct Recorder {
    screen: TestBackend,
    bytes: Vec<u8>,
    cells: usize,
}

impl Recorder {
    fn new(width: u16, height: u16) -> Recorder {
        Recorder {
            screen: TestBackend::new(width, height),
            bytes: Vec::new(),
            cells: 0,
        }
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn never(e: std::convert::Infallible) -> io::Error {
    match e {}
}

impl Backend for Recorder {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let content: Vec<_> = content.collect();
        self.cells += content.len();
        self.screen.draw(content.into_iter()).map_err(never)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.screen.hide_cursor().map_err(never)
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.screen.show_cursor().map_err(never)
    }

    /// A real terminal answers on stdin, where the console's input reader takes the answer:
    /// the console must never ask.
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Err(io::Error::other("the console asked where the cursor is"))
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.screen.set_cursor_position(position).map_err(never)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.screen.clear().map_err(never)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.screen.clear_region(clear_type).map_err(never)
    }

    fn size(&self) -> io::Result<Size> {
        self.screen.size().map_err(never)
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.screen.window_size().map_err(never)
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.screen).map_err(never)
    }
}

fn console(width: u16, height: u16, colour: bool) -> Console<Recorder> {
    let terminal = Terminal::new(Recorder::new(width, height)).expect("test terminal");
    Console::with_colour(terminal, colour)
}

/// What `ui::render_with` draws for `app`, from nothing.
fn full(app: &App, width: u16, height: u16, colour: bool) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| crate::ui::render_with(app, f, !colour))
        .expect("draws");
    terminal.backend().buffer().clone()
}

fn shown(console: &Console<Recorder>) -> &Buffer {
    console.terminal().backend().screen.buffer()
}

/// States a run passes through: ready, holds counting, pods of every age, help open, the
/// command line open, a breach's countdown, a rollback under way and done, an observer's.
fn states() -> Vec<App> {
    let mut states = vec![scenario::app()];
    let mut app = scenario::app();
    let keep = |every: u64| {
        let mut seen = 0;
        move |_: &App, after: &App| {
            seen += 1;
            (seen % every == 0).then(|| after.clone())
        }
    };
    let mut kept = Vec::new();
    let mut pick = keep(17);
    drive(&mut app, 0, 400, None, |b, a| kept.extend(pick(b, a)));
    let mut breached = scenario::app();
    let mut pick = keep(3);
    drive(&mut breached, 0, 140, Some(60), |b, a| {
        kept.extend(pick(b, a))
    });
    assert!(
        kept.iter().any(|a| a.deployment.countdown.is_some()),
        "the scenario reaches a countdown"
    );
    assert!(
        kept.iter().any(|a| a.deployment.rollback.is_some()),
        "and a rollback"
    );
    states.extend(kept);
    // A hold paused, and a rollback under way (its clock counting in the header).
    let mut paused = scenario::app();
    drive(&mut paused, 0, 30, None, |_, _| {});
    update(&mut paused, scenario::key('p'));
    let mut rolling = scenario::app();
    drive(&mut rolling, 0, 66, Some(60), |_, _| {});
    assert!(rolling.deployment.countdown.is_some(), "a countdown runs");
    update(&mut rolling, scenario::key('!'));
    assert_eq!(
        rolling.deployment.status,
        crate::engine::RunStatus::RollingBack
    );
    states.extend([paused, rolling]);
    let mut help = app.clone();
    update(&mut help, scenario::key('?'));
    let mut command = app.clone();
    update(&mut command, scenario::key(':'));
    update(&mut command, scenario::key('s'));
    let mut observer = app.clone();
    observer.mode = Mode::Observer;
    states.extend([help, command, observer]);
    states
}

#[test]
fn a_clock_only_frame_is_the_full_frame_it_stands_for() {
    let states = states();
    for (width, height) in [(80, 24), (120, 40), (200, 60), (60, 14)] {
        for colour in [true, false] {
            for state in &states {
                for later in [1, 9, 61, 599, 3600] {
                    let mut console = console(width, height, colour);
                    console.show(state).expect("first frame");
                    let mut app = state.clone();
                    app.now += Duration::from_secs(later);
                    console.show(&app).expect("clock frame");
                    assert_eq!(console.frames(), Frames { full: 1, clock: 1 });
                    let expected = full(&app, width, height, colour);
                    assert!(
                        *shown(&console) == expected,
                        "{width}x{height} colour {colour}, {later} s later, status {:?}:\nclock-only frame:\n{}\nfull frame:\n{}",
                        app.deployment.status,
                        text(shown(&console)),
                        text(&expected),
                    );
                }
            }
        }
    }
}

fn text(buffer: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn a_tick_that_moves_only_the_clock_writes_only_its_seconds() {
    let mut app = scenario::app();
    // Pods older than ten minutes show minutes: the clock is all a second moves.
    app.now = scenario::at(3600);
    let mut console = console(120, 40, true);
    console.show(&app).expect("first frame");
    let first = console.terminal().backend().cells;
    assert!(first > 1000, "the first frame writes the screen: {first}");
    app.now += Duration::from_secs(1);
    console.show(&app).expect("tick");
    let written = console.terminal().backend().cells - first;
    assert_eq!(console.frames(), Frames { full: 1, clock: 1 });
    assert_eq!(
        written, 1,
        "only the clock's last digit: 01:00:00 to 01:00:01"
    );
    // Something else changed: the whole frame is drawn again (and written where it differs).
    update(&mut app, scenario::key('?'));
    app.touch();
    console.show(&app).expect("help");
    assert_eq!(console.frames(), Frames { full: 2, clock: 1 });
}

#[test]
fn every_frame_is_one_synchronized_update() {
    let mut app = scenario::app();
    let mut console = console(80, 24, true);
    for _ in 0..3 {
        console.show(&app).expect("frame");
        app.now += Duration::from_secs(1);
    }
    let bytes = String::from_utf8_lossy(&console.terminal().backend().bytes).into_owned();
    assert_eq!(bytes, "\x1b[?2026h\x1b[?2026l".repeat(3), "{bytes:?}");
}

#[test]
fn a_resize_writes_every_cell_again_even_at_the_size_drawn() {
    let mut app = scenario::app();
    let mut console = console(120, 40, true);
    console.show(&app).expect("first frame");
    console.terminal_mut().backend_mut().screen.resize(80, 24);
    assert!(console.resized().expect("size"), "a new size");
    app.now += Duration::from_secs(1);
    console.show(&app).expect("frame at the new size");
    assert_eq!(shown(&console).area.as_size(), Size::new(80, 24));
    assert_eq!(console.frames().full, 2, "a new size is drawn in full");
    assert_eq!(*shown(&console), full(&app, 80, 24, true));
    // One event at the size drawn: the terminal may have been through other sizes in between
    // (it reports the last) and shows anything now, so all of it is written again.
    assert!(console.resized().expect("size"), "the size drawn");
    let before = console.terminal().backend().cells;
    console.show(&app).expect("frame");
    let written = console.terminal().backend().cells - before;
    let expected = full(&app, 80, 24, true);
    let visible = expected
        .content
        .iter()
        .filter(|c| **c != Cell::EMPTY)
        .count();
    assert!(
        written >= visible,
        "every visible cell written again: {written} of {visible}"
    );
    assert_eq!(*shown(&console), expected);
    // And only then: the next frame writes what changed, here nothing.
    let before = console.terminal().backend().cells;
    console.show(&app).expect("frame");
    assert_eq!(console.terminal().backend().cells, before, "nothing moved");
}
