//! A program under a pseudo-terminal this process owns: `openpty`, a window size set with
//! `TIOCSWINSZ`, the slave as the child's controlling terminal and stdin/stdout/stderr. A
//! thread drains the master all the time (the console never blocks on output), replays what it
//! reads onto a [`Screen`], and stamps when awaited text first shows.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Res;
use super::screen::Screen;

/// Texts awaited on some output, and when each was first seen there.
#[derive(Default)]
pub struct Sightings {
    seen: Mutex<Vec<(String, Option<Instant>)>>,
    changed: Condvar,
}

impl Sightings {
    /// Starts looking for `text`.
    pub fn want(&self, text: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.iter().any(|(t, _)| t == text) {
            seen.push((text.to_string(), None));
        }
    }

    /// Whether anything is still awaited.
    pub fn pending(&self) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().any(|(_, at)| at.is_none())
    }

    /// Marks, as seen at `at`, every awaited text `shows` says is there.
    pub fn check(&self, at: Instant, shows: impl Fn(&str) -> bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        for (text, when) in seen.iter_mut() {
            if when.is_none() && shows(text) {
                *when = Some(at);
                any = true;
            }
        }
        if any {
            self.changed.notify_all();
        }
    }

    /// When `text` was first seen, waiting at most `timeout` for it.
    pub fn wait(&self, text: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(at) = seen.iter().find(|(t, _)| t == text).and_then(|(_, at)| *at) {
                return Some(at);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            seen = self
                .changed
                .wait_timeout(seen, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Forgets texts seen (or not) so the list stays short.
    pub fn forget(&self, text: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|(t, _)| t != text);
    }
}

/// The console under its pty.
pub struct Console {
    pub child: Child,
    pub screen: Arc<Mutex<Screen>>,
    pub sightings: Arc<Sightings>,
    /// Bytes the console wrote to its terminal so far.
    pub bytes: Arc<AtomicU64>,
    master: File,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn cloexec(fd: i32) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
    }
}

impl Console {
    pub fn start(
        bin: &Path,
        args: &[String],
        env: &[(&str, String)],
        cols: u16,
        rows: u16,
    ) -> Res<Console> {
        let (mut master_fd, mut slave_fd) = (-1, -1);
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the locals; no name buffer, default
        // termios.
        let rc = unsafe {
            libc::openpty(
                &mut master_fd,
                &mut slave_fd,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(format!("openpty: {}", std::io::Error::last_os_error()).into());
        }
        cloexec(master_fd);
        cloexec(slave_fd);
        // SAFETY: both descriptors were just opened and are owned here only.
        let (master, slave) = unsafe {
            (
                OwnedFd::from_raw_fd(master_fd),
                OwnedFd::from_raw_fd(slave_fd),
            )
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            return Err(format!("TIOCSWINSZ: {}", std::io::Error::last_os_error()).into());
        }
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave.try_clone()?));
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own with the pty as controlling terminal, so /dev/tty is
                // the pty and not whatever terminal runs the bench.
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // The parent's copies of the slave go, so the master reads EIO once the child is gone.
        drop(cmd);
        drop(slave);
        let screen = Arc::new(Mutex::new(Screen::new(cols, rows)));
        let sightings = Arc::new(Sightings::default());
        let bytes = Arc::new(AtomicU64::new(0));
        let mut reading = File::from(master.try_clone()?);
        let reader = {
            let screen = screen.clone();
            let sightings = sightings.clone();
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = match reading.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let at = Instant::now();
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let mut screen = screen.lock().unwrap_or_else(|e| e.into_inner());
                    screen.feed(&buf[..n]);
                    if sightings.pending() {
                        sightings.check(at, |text| screen.contains(text));
                    }
                }
            })
        };
        Ok(Console {
            child,
            screen,
            sightings,
            bytes,
            master: File::from(master),
            reader: Some(reader),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `text` is on screen; fails with the screen after `timeout`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Res<Instant> {
        self.sightings.want(text);
        {
            // Already there before it was asked for.
            let screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
            self.sightings.check(Instant::now(), |t| screen.contains(t));
        }
        match self.sightings.wait(text, timeout) {
            Some(at) => Ok(at),
            None => Err(format!(
                "`{text}` not on screen after {timeout:?}; screen:\n{}",
                self.screen_text()
            )
            .into()),
        }
    }

    pub fn screen_text(&self) -> String {
        self.screen.lock().unwrap_or_else(|e| e.into_inner()).text()
    }

    /// Presses `q` and waits for the console to leave; kills it (its own pid only) if it does
    /// not within 15 s.
    pub fn quit(mut self) -> Res<()> {
        let _ = self.master.write_all(b"q");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
