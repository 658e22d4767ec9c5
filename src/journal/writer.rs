//! Writes the journal on a thread of its own, so `update` and the screen never wait for the
//! disk. An effect's intent is written and fsync'd before the effect is handed on; effects go
//! on in the order they were asked for, cancellations included.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::Record;
use super::record::{Intent, Line, VERSION};
use crate::app::action::Effect;

/// Carries effects out once their intent is on disk.
pub type Dispatch = Box<dyn FnMut(Effect) + Send>;
/// Told, once, that the journal cannot be written.
pub type OnError = Box<dyn Fn(String) + Send>;

enum Entry {
    Line(SystemTime, Record),
    Intent(SystemTime, Box<Intent>, Effect),
    Effect(Effect),
    Attach(Dispatch, OnError),
    Close(tokio::sync::oneshot::Sender<()>),
}

/// The journal of one run, being written. Clones write to the same file.
#[derive(Clone)]
pub struct Journal {
    tx: UnboundedSender<Entry>,
    path: PathBuf,
}

impl Journal {
    /// Starts writing to `file` (opened for appending); lines are numbered from `next_seq`.
    pub fn start(file: File, path: &Path, next_seq: u64) -> Journal {
        let (tx, rx) = unbounded_channel();
        let runtime = tokio::runtime::Handle::try_current().ok();
        let name = path.display().to_string();
        std::thread::spawn(move || {
            // Dispatched effects spawn tasks on the run's runtime.
            let _guard = runtime.as_ref().map(tokio::runtime::Handle::enter);
            write_loop(file, name, next_seq, rx);
        });
        Journal {
            tx,
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on effects are carried out by `dispatch`; a failure to write is told to
    /// `on_error` (at once if one already happened).
    pub fn attach(&self, dispatch: Dispatch, on_error: OnError) {
        self.send(Entry::Attach(dispatch, on_error));
    }

    /// Appends a line stamped `at`.
    pub fn record(&self, at: SystemTime, record: Record) {
        self.send(Entry::Line(at, record));
    }

    /// Writes the intent, fsyncs, then dispatches `effect`.
    pub fn intent(&self, at: SystemTime, intent: Intent, effect: Effect) {
        self.send(Entry::Intent(at, Box::new(intent), effect));
    }

    /// Dispatches `effect` after everything sent before it.
    pub fn effect(&self, effect: Effect) {
        self.send(Entry::Effect(effect));
    }

    fn send(&self, entry: Entry) {
        // The thread only stops when the journal is closed; after that nothing is written.
        let _ = self.tx.send(entry);
    }

    /// Writes what is queued, fsyncs and stops the thread; what is sent afterwards is dropped.
    pub async fn close(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Entry::Close(tx));
        let _ = rx.await;
    }
}

fn write_loop(mut file: File, name: String, mut seq: u64, mut rx: UnboundedReceiver<Entry>) {
    let mut dispatch: Option<Dispatch> = None;
    let mut on_error: Option<OnError> = None;
    let mut failed: Option<String> = None;
    let fail = |why: String, on_error: &Option<OnError>, failed: &mut Option<String>| {
        if failed.is_none() {
            tracing::error!("{why}");
            if let Some(tell) = on_error {
                tell(why.clone());
            }
            *failed = Some(why);
        }
    };
    while let Some(entry) = rx.blocking_recv() {
        match entry {
            Entry::Attach(d, e) => {
                if let Some(why) = &failed {
                    e(why.clone());
                }
                dispatch = Some(d);
                on_error = Some(e);
            }
            Entry::Line(at, record) => {
                if failed.is_none() {
                    if let Err(e) = append(&mut file, &mut seq, at, record) {
                        fail(format!("cannot write {name}: {e}"), &on_error, &mut failed);
                    }
                }
            }
            Entry::Intent(at, intent, effect) => {
                if failed.is_none() {
                    let written = append(&mut file, &mut seq, at, Record::Intent(*intent))
                        .and_then(|()| file.sync_data());
                    if let Err(e) = written {
                        fail(format!("cannot write {name}: {e}"), &on_error, &mut failed);
                    }
                }
                // A journal that cannot be written never holds back a change, a rollback least
                // of all: the failure is on screen.
                if let Some(d) = &mut dispatch {
                    d(effect);
                }
            }
            Entry::Effect(effect) => {
                if let Some(d) = &mut dispatch {
                    d(effect);
                }
            }
            Entry::Close(done) => {
                if failed.is_none() {
                    let _ = file.sync_all();
                }
                let _ = done.send(());
                return;
            }
        }
    }
    if failed.is_none() {
        let _ = file.sync_all();
    }
}

fn append(file: &mut File, seq: &mut u64, at: SystemTime, record: Record) -> std::io::Result<()> {
    let line = Line {
        v: VERSION,
        seq: *seq,
        at,
        record,
    };
    let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
    text.push('\n');
    // One write per line: a killed process leaves whole lines and at most one torn last line.
    file.write_all(text.as_bytes())?;
    *seq += 1;
    Ok(())
}

/// Creates a new journal file (and its directory, private to the user); an existing file is
/// never overwritten.
pub fn create(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Opens a journal to continue it, cut back to `length` bytes (the end of its last whole line).
pub fn reopen(path: &Path, length: u64) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().append(true).open(path)?;
    if file.metadata()?.len() != length {
        file.set_len(length)?;
    }
    Ok(file)
}
