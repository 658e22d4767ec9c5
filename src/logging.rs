//! Tracing goes to a file, never over the screen: `$XDG_STATE_HOME/warroom/warroom.log`
//! (`~/.local/state/warroom/warroom.log`), at the level `RUST_LOG` or `--log-level` says.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_appender::non_blocking::WorkerGuard;

/// The level when neither `RUST_LOG` nor `--log-level` says: warroom's own notices, and only
/// warnings from the libraries it uses.
pub const DEFAULT_FILTER: &str = "warn,warroom=info";

static PATH: OnceLock<PathBuf> = OnceLock::new();

/// Where this process logs, once [`init`] has succeeded (the help screen shows it).
pub fn path() -> Option<&'static Path> {
    PATH.get().map(PathBuf::as_path)
}

/// Starts logging to the file; the guard flushes it when dropped (at exit). A directory that
/// cannot be made, or a filter that does not parse, is an error for the caller to print:
/// the run goes on without a log file.
pub fn init(level: Option<&str>) -> Result<WorkerGuard, String> {
    use std::os::unix::fs::DirBuilderExt;
    use tracing_subscriber::EnvFilter;
    let dir = crate::journal::default_dir()
        .ok_or("no log directory: set XDG_STATE_HOME or HOME".to_string())?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let filter = match std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(spec) => EnvFilter::try_new(&spec).map_err(|e| format!("RUST_LOG={spec}: {e}"))?,
        None => EnvFilter::try_new(level.unwrap_or(DEFAULT_FILTER))
            .map_err(|e| format!("--log-level: {e}"))?,
    };
    // The builder, not `rolling::never`: that one panics on a file it cannot open (a root-owned
    // log left by `sudo`, a read-only state directory).
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::NEVER)
        .filename_prefix("warroom.log")
        .build(&dir)
        .map_err(|e| format!("cannot open {}: {e}", dir.join("warroom.log").display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .map_err(|e| format!("logging already set up: {e}"))?;
    let _ = PATH.set(dir.join("warroom.log"));
    Ok(guard)
}
