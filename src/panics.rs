//! A panic anywhere — the main task, a spawned task, any thread — ends warroom. The hook gives
//! the terminal back at once (a console must not go on drawing over the shell), says what
//! panicked on stderr and in the log file, and wakes the event loop, which leaves the way it
//! always does, so the journal still gets its `end` line; the exit code is 1. A panic in the
//! main task unwinds out of `main` itself (exit 101). Should nothing end the process within
//! [`WATCHDOG`], the hook's watchdog does.
//!
//! A panic the code catches on purpose ([`caught`]: a parser's on odd input) is none of that.

use std::cell::Cell;
use std::panic::{PanicHookInfo, UnwindSafe};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The first panic, as said on stderr.
static MESSAGE: OnceLock<String> = OnceLock::new();
/// A panic (outside [`caught`]) has begun: set before the terminal is given back, so no frame
/// is drawn after it.
static HAPPENED: AtomicBool = AtomicBool::new(false);
/// A console, run or watch loop is running: a panic then ends the process, by the loop or the
/// watchdog. Without one (`warroom sim`), a panic ends only what panicked, as tokio has it.
static LOOP: AtomicBool = AtomicBool::new(false);
static WOKEN: Notify = Notify::const_new();

/// How long warroom may take to end after a panic before the watchdog ends it: the loop
/// leaves at once, then a webhook flush (at most 5 s), the journal and the leases.
pub const WATCHDOG: Duration = Duration::from_secs(15);

thread_local! {
    /// Inside [`caught`] on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// Installs the hook, over the one already there (color-eyre's report), which it calls after
/// giving the terminal back.
pub fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CATCHING.with(Cell::get) > 0 {
            // The caller turns it into an error of its own.
            tracing::debug!("panic caught by design: {}", describe(info));
            return;
        }
        let message = describe(info);
        HAPPENED.store(true, Ordering::SeqCst);
        crate::app::terminal::give_back_after_panic();
        previous(info);
        tracing::error!("panic: {message}");
        eprintln!("warroom: panicked: {message}");
        match crate::logging::path() {
            Some(path) => eprintln!("warroom: log file: {}", path.display()),
            None => eprintln!("warroom: no log file"),
        }
        if MESSAGE.set(message).is_ok() && LOOP.load(Ordering::SeqCst) {
            // Every loop waiting now (a rehearsal runs several), and a permit for one that is
            // about to wait; a loop that is busy checks the message before it waits again.
            WOKEN.notify_waiters();
            WOKEN.notify_one();
            let _ = std::thread::Builder::new()
                .name("panic-watchdog".into())
                .spawn(|| {
                    std::thread::sleep(WATCHDOG);
                    eprintln!(
                        "warroom: still running {} s after a panic; ending now",
                        WATCHDOG.as_secs()
                    );
                    std::process::exit(1);
                });
        }
    }));
}

/// Whether a panic has begun (outside [`caught`]): nothing more is drawn.
pub fn happened() -> bool {
    HAPPENED.load(Ordering::SeqCst)
}

/// Marks that a loop that ends on a panic is running (the console, a run, a watch).
pub fn loop_started() {
    LOOP.store(true, Ordering::SeqCst);
}

/// The first panic's message, once one happened (outside [`caught`]).
pub fn message() -> Option<&'static str> {
    MESSAGE.get().map(String::as_str)
}

/// Resolves once a panic has happened (at once if one already has): the event loop's way out.
pub async fn panicked() {
    loop {
        if MESSAGE.get().is_some() {
            return;
        }
        WOKEN.notified().await;
    }
}

/// `catch_unwind` for a panic expected of a library on odd input, which the caller turns into
/// an error: the hook lets it pass.
pub fn caught<R>(f: impl FnOnce() -> R + UnwindSafe) -> std::thread::Result<R> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(f);
    CATCHING.with(|c| c.set(c.get().saturating_sub(1)));
    result
}

/// `MESSAGE at FILE:LINE (thread NAME)`.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    format!("{text}{at} (thread {name})")
}
