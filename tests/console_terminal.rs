//! The console and its terminal, in tmux: a panic in a spawned task (or a thread) ends
//! warroom and leaves the terminal sane, killing the session ends warroom, and a resize is
//! drawn at the new size at once. Screens and processes are polled with deadlines.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::headless::{BIN, DEADLINE};
use common::tmux::{Session, tmux};

fn tmux_available() -> bool {
    common::tool_available("tmux", &["-V"], "console terminal test")
}

/// A detached session on a server of the test's own (see [`Session::start`]).
fn session(name: &str, width: u16, height: u16, command: &[&str]) -> Session {
    Session::start(
        &format!("warroom-console-{name}"),
        name,
        width,
        height,
        command,
    )
}

/// The whole pane, with what scrolled off the top.
fn history(session: &Session) -> String {
    tmux(&[
        "-L",
        &session.socket,
        "capture-pane",
        "-p",
        "-S",
        "-",
        "-t",
        &session.name,
    ])
    .unwrap_or_default()
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `PID (COMM) STATE …`; COMM may hold spaces and parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// The warroom process in the pane: the pane's own process or one below it.
fn warroom_pid(session: &Session) -> u32 {
    let pane: u32 = display(session, "#{pane_pid}")
        .trim()
        .parse()
        .expect("the pane's process");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(pid) = find_below(pane, "warroom") {
            return pid;
        }
        assert!(Instant::now() < deadline, "no warroom process under {pane}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_below(root: u32, comm: &str) -> Option<u32> {
    let comm_of = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    if comm_of(root).is_some_and(|c| c.trim() == comm) {
        return Some(root);
    }
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let children: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| parent_of(*pid) == Some(root))
        .collect();
    children
        .into_iter()
        .find_map(|child| find_below(child, comm))
}

/// Polls until `pid` is gone; fails after `within`.
fn gone_within(pid: u32, within: Duration, what: &str) {
    let started = Instant::now();
    while alive(pid) {
        assert!(
            started.elapsed() < within,
            "{what}: warroom (pid {pid}) still runs after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls the screen until `pred` holds; fails after `within` with the last screen.
fn screen_within(session: &Session, within: Duration, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let screen = session.capture();
        if pred(&screen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not on screen within {within:?}:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The console is up, its sources live.
fn console_is_up(s: &str) -> bool {
    s.contains("WARROOM") && s.contains("kube ● live") && s.contains("prometheus ● live")
}

fn panic_ends_the_console(name: &str, how: &str) {
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state = state_dir.path().display().to_string();
    // A shell runs the demo, so that afterwards the pane shows what it printed, its exit code
    // and the terminal's settings as warroom left them.
    let script = format!(
        "printf 'before\\n'; XDG_STATE_HOME={state} XDG_CONFIG_HOME={state} RUST_BACKTRACE=0 WARROOM_TEST_PANIC_TASK={how} {BIN} demo --speed 4; code=$?; stty -a; printf 'after exit=%s\\n' $code; sleep 60"
    );
    let session = session(name, 120, 40, &["sh", "-c", &script]);
    session.wait_for("the console with live sources", console_is_up);
    let pid = warroom_pid(&session);
    let signal = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(signal.success());
    gone_within(pid, Duration::from_secs(10), "a panic");
    // `stty -a` runs before the exit line is printed, so its settings are on screen by then.
    session.wait_for("the shell after exit", |s| s.contains("after exit="));
    let pane = history(&session);
    assert!(pane.contains("after exit=1"), "a panic exits 1:\n{pane}");
    assert!(
        pane.contains("warroom: panicked: WARROOM_TEST_PANIC_TASK: a test panic"),
        "the panic is said:\n{pane}"
    );
    assert!(
        pane.contains(&format!("warroom: log file: {state}/warroom/warroom.log")),
        "with the log file:\n{pane}"
    );
    assert!(
        pane.contains("before"),
        "the shell's screen is back:\n{pane}"
    );
    assert!(
        !pane.contains("┌ Plan"),
        "the console left its screen behind:\n{pane}"
    );
    // Cooked mode again: `stty -a` lists `icanon` and `echo`, not `-icanon` and `-echo`.
    let settings: Vec<&str> = pane.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "opost"] {
        assert!(
            settings.contains(&flag),
            "{flag} is not on after warroom:\n{pane}"
        );
    }
    // The run ended the usual way: its journal has its `end` line.
    let journal = std::fs::read_dir(state_dir.path().join("warroom"))
        .expect("state directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a journal");
    let text = std::fs::read_to_string(&journal).expect("journal read");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains(r#""type":"end""#) && last.contains(r#""exit":1"#),
        "{}: last line {last}",
        journal.display()
    );
}

#[test]
fn a_panic_in_a_spawned_task_ends_warroom_and_gives_the_terminal_back() {
    if !tmux_available() {
        return;
    }
    panic_ends_the_console("task", "task");
}

#[test]
fn a_panic_in_a_thread_ends_warroom_and_gives_the_terminal_back() {
    if !tmux_available() {
        return;
    }
    panic_ends_the_console("thread", "thread");
}

/// The demo straight in the pane (no shell), its state in `state`.
fn demo(name: &str, width: u16, height: u16, state: &Path) -> Session {
    let config = format!("XDG_CONFIG_HOME={}", state.display());
    let state = format!("XDG_STATE_HOME={}", state.display());
    session(
        name,
        width,
        height,
        &[
            "env",
            &state,
            &config,
            "RUST_LOG=warroom=debug",
            BIN,
            "demo",
            "--speed",
            "4",
        ],
    )
}

/// tmux's `format` for the session's window and pane (`#{window_width}`, …).
fn display(session: &Session, format: &str) -> String {
    tmux(&[
        "-L",
        &session.socket,
        "display-message",
        "-p",
        "-t",
        &session.name,
        format,
    ])
    .unwrap_or_default()
}

/// The sizes warroom was told of, from its log (debug events, see [`demo`]).
fn resizes_seen(state: &Path) -> String {
    std::fs::read_to_string(state.join("warroom/warroom.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("terminal resized"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn killing_the_tmux_session_ends_warroom_within_two_seconds() {
    if !tmux_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let session = demo("kill", 120, 40, state.path());
    session.wait_for("the console with live sources", console_is_up);
    let pid = warroom_pid(&session);
    // The server ends with its only session: its socket file is removed here, not by Session.
    let socket_path = tmux(&[
        "-L",
        &session.socket,
        "display-message",
        "-p",
        "#{socket_path}",
    ])
    .map(|p| p.trim().to_string())
    .filter(|p| !p.is_empty());
    tmux(&["-L", &session.socket, "kill-session", "-t", &session.name])
        .expect("the session is killed");
    gone_within(pid, Duration::from_secs(2), "tmux kill-session");
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
}

/// The screen at `width`×`height`: the header's status and clock, the key bar with `!`, the
/// last panel's bottom border just above it; nothing wider than the pane.
fn drawn_at(width: usize, height: usize) -> impl Fn(&str) -> bool {
    move |screen: &str| {
        let lines: Vec<&str> = screen.lines().collect();
        // The key bar takes two rows on a tall screen, one on a short one.
        let keys = if height >= 30 { 2 } else { 1 };
        lines.len() == height
            && lines.iter().all(|l| l.chars().count() <= width)
            && lines[0].contains(" READY ")
            && lines[0].chars().filter(|c| *c == ':').count() >= 2
            && lines[height - keys].contains(" !  ROLLBACK")
            && lines[height - keys - 1].starts_with('└')
            && lines[height - keys - 1].trim_end().ends_with('┘')
            && lines[height - keys - 1].chars().count() == width
    }
}

/// The header's clock, `HH:MM:SS`.
fn clock(screen: &str) -> Option<String> {
    let first = screen.lines().next()?;
    first
        .split_whitespace()
        .find(|w| {
            w.len() == 8
                && w.char_indices().all(|(i, c)| {
                    if i % 3 == 2 {
                        c == ':'
                    } else {
                        c.is_ascii_digit()
                    }
                })
        })
        .map(str::to_string)
}

#[test]
fn a_resize_is_drawn_at_the_new_size_at_once() {
    if !tmux_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let session = demo("resize", 120, 40, state.path());
    session.wait_for("the console with live sources", console_is_up);
    session.wait_for("the console at 120x40", drawn_at(120, 40));
    for (width, height) in [(80u16, 24u16), (200, 60), (120, 40)] {
        // Just after a tick, so that the next one — which would draw at the new size too — is
        // a second away: the frame must come from the resize itself, as soon as it is taken.
        let shown = clock(&session.capture());
        session.wait_for("the next tick", |s| clock(s) != shown);
        tmux(&[
            "-L",
            &session.socket,
            "resize-window",
            "-t",
            &session.name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ])
        .expect("the window is resized");
        screen_within(
            &session,
            Duration::from_millis(600),
            &format!("the console at {width}x{height}"),
            drawn_at(usize::from(width), usize::from(height)),
        );
    }
}

/// Two clients of different sizes on the session (each a tmux client running in a pane of
/// another server of the test's own), the window following the latest used: each switch is
/// drawn at the window's size at once, and warroom keeps running.
#[test]
fn two_clients_of_different_sizes_each_get_the_console_at_their_size() {
    if !tmux_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let inner = demo("shared", 120, 40, state.path());
    inner.wait_for("the console with live sources", console_is_up);
    let pid = warroom_pid(&inner);
    let attach = [
        "env",
        "-u",
        "TMUX",
        "tmux",
        "-L",
        &inner.socket,
        "attach",
        "-t",
    ];
    let attach: Vec<&str> = attach.into_iter().chain([inner.name.as_str()]).collect();
    let outer = session("clients", 120, 40, &attach);
    let small = "small";
    tmux(&[
        "-L",
        &outer.socket,
        "new-session",
        "-d",
        "-s",
        small,
        "-x",
        "80",
        "-y",
        "24",
    ])
    .expect("a second outer session");
    let mut respawn = vec![
        "-L",
        outer.socket.as_str(),
        "respawn-pane",
        "-k",
        "-t",
        small,
    ];
    respawn.extend(&attach);
    tmux(&respawn).expect("the second client attaches");
    let clients = Instant::now() + DEADLINE;
    while tmux(&["-L", &inner.socket, "list-clients"]).map_or(0, |c| c.lines().count()) < 2 {
        assert!(Instant::now() < clients, "two clients never attached");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux(&["-L", &inner.socket, "set", "-g", "window-size", "latest"]).expect("window-size");
    let window = || -> (usize, usize) {
        let size = display(&inner, "#{window_width} #{window_height}");
        let mut parts = size.split_whitespace().map(|n| n.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    let mut sizes = std::collections::BTreeSet::new();
    for round in 0..3 {
        for client in [outer.name.as_str(), small] {
            // A key that means nothing, typed at that client, makes it the latest.
            tmux(&["-L", &outer.socket, "send-keys", "-t", client, "z"]).expect("a key");
            let deadline = Instant::now() + Duration::from_secs(5);
            let (width, height) = loop {
                let (width, height) = window();
                let expected = if client == small {
                    width < 100
                } else {
                    width > 100
                };
                if expected {
                    break (width, height);
                }
                assert!(
                    Instant::now() < deadline,
                    "the window never followed {client}"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            sizes.insert((width, height));
            let within = Duration::from_millis(600);
            let deadline = Instant::now() + within;
            loop {
                let screen = inner.capture();
                if drawn_at(width, height)(&screen) {
                    break;
                }
                if Instant::now() >= deadline {
                    let pane = display(&inner, "#{pane_width}x#{pane_height}");
                    panic!(
                        "round {round}: the console at {width}x{height} for {client} not on \
                         screen within {within:?} (pane {}, {} lines captured); warroom was \
                         told of:\n{}\nscreen:\n{screen}",
                        pane.trim(),
                        screen.lines().count(),
                        resizes_seen(state.path()),
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert_eq!(sizes.len(), 2, "two sizes: {sizes:?}");
    assert!(alive(pid), "warroom still runs");
}
