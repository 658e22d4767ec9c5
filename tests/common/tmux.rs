//! A tmux server of a test's own, driven as a person would: send-keys in, capture-pane out.

use std::process::Command;
use std::time::{Duration, Instant};

/// How long a screen may take to show what a test waits for, on a slow machine.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `tmux args…`; its stdout when it succeeded.
pub fn tmux(args: &[&str]) -> Option<String> {
    let out = Command::new("tmux").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One session on a server of the test's own (`-L socket`); the server is killed, and its
/// socket file removed, even when an assertion fails.
pub struct Session {
    pub socket: String,
    pub name: String,
}

impl Session {
    /// A detached session `width`×`height` named `name` running `command` (argv, no shell in
    /// between unless it is one), on a server of its own: `socket`-PID.
    pub fn start(socket: &str, name: &str, width: u16, height: u16, command: &[&str]) -> Session {
        let socket = format!("{socket}-{}", std::process::id());
        let (w, h) = (width.to_string(), height.to_string());
        let mut args = vec![
            "-L",
            &socket,
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &w,
            "-y",
            &h,
        ];
        args.extend(command);
        tmux(&args).expect("tmux starts the session");
        Session {
            socket: socket.clone(),
            name: name.to_string(),
        }
    }

    pub fn capture(&self) -> String {
        tmux(&["-L", &self.socket, "capture-pane", "-p", "-t", &self.name]).unwrap_or_default()
    }

    pub fn keys(&self, keys: &str) {
        tmux(&["-L", &self.socket, "send-keys", "-t", &self.name, keys]);
    }

    /// Polls the screen until `pred` holds; fails with the last screen after the deadline.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let socket_path = tmux(&[
            "-L",
            &self.socket,
            "display-message",
            "-p",
            "#{socket_path}",
        ]);
        tmux(&["-L", &self.socket, "kill-server"]);
        if let Some(path) = socket_path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let _ = std::fs::remove_file(path);
        }
    }
}
