//! Carrying out a plan's `run` steps (`sh -c`, streamed output, timeout and cancel kill the whole
//! process group) and writing the one-context kubeconfig such a step gets. Never touches the cluster.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use kube::config::{Kubeconfig, NamedContext};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a run step needs.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Given to `sh -c` as is.
    pub cmd: String,
    /// Working directory: the plan file's directory.
    pub dir: PathBuf,
    /// When it passes, the process group is killed; `None` waits for ever.
    pub timeout: Option<Duration>,
    /// Added to the inherited environment (KUBECONFIG, WARROOM_*).
    pub env: Vec<(String, String)>,
}

/// How a command ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `sh -c`: {0}")]
    Spawn(String),
    #[error("exited with code {code}{}", last_line(.last_stderr))]
    Exit {
        code: i32,
        last_stderr: Option<String>,
    },
    #[error("killed by signal {signal}{}", last_line(.last_stderr))]
    Signal {
        signal: i32,
        last_stderr: Option<String>,
    },
    #[error(
        "timed out after {}; its process group was killed",
        crate::plan::duration::format_duration(*.after)
    )]
    TimedOut { after: Duration },
    #[error("cancelled; its process group was killed")]
    Cancelled,
}

/// `: <line>` for an error message, or nothing when stderr said nothing.
fn last_line(line: &Option<String>) -> String {
    match line {
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}

/// A line longer than this (in bytes) without a newline is handed on in pieces of at most this
/// size, so a command printing a progress bar for ever cannot make us hold it all in memory.
pub const MAX_LINE_BYTES: usize = 4096;

/// After SIGTERM the group gets this long to exit before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// After `sh` exits, output still in the pipes is read for at most this long. A background
/// process it left behind may hold the pipes open for ever; we stop listening rather than wait.
const DRAIN: Duration = Duration::from_secs(2);

/// How often a killed group is checked for members still running.
const KILL_POLL: Duration = Duration::from_millis(20);

/// The environment a run step gets besides the inherited one: `KUBECONFIG` (normally from
/// [`write_phase_kubeconfig`]) and the `WARROOM_*` variables naming where it runs.
pub fn phase_env(
    kubeconfig: &Path,
    plan: &str,
    phase: &str,
    environment: &str,
    namespace: &str,
    context: &str,
) -> Vec<(String, String)> {
    vec![
        (
            "KUBECONFIG".to_string(),
            kubeconfig.to_string_lossy().into_owned(),
        ),
        ("WARROOM_PLAN".to_string(), plan.to_string()),
        ("WARROOM_PHASE".to_string(), phase.to_string()),
        ("WARROOM_ENVIRONMENT".to_string(), environment.to_string()),
        ("WARROOM_NAMESPACE".to_string(), namespace.to_string()),
        ("WARROOM_CONTEXT".to_string(), context.to_string()),
    ]
}

/// Runs `spec`, sending each output line to `on_line` as it comes. Ok(()) on exit code 0.
///
/// `sh -c` runs in its own process group, so that a timeout or `cancel` can kill everything it
/// started (SIGTERM, then SIGKILL after [`KILL_GRACE`]). Dropping the returned future before the
/// command ends SIGKILLs the group. Processes the command leaves in the background after `sh`
/// exits on its own are not killed; their output stops being read [`DRAIN`] after the exit.
pub async fn run_command(
    spec: &CommandSpec,
    on_line: impl Fn(Stream, String) + Send + Sync,
    cancel: CancellationToken,
) -> Result<(), ExecError> {
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&spec.cmd)
        .current_dir(&spec.dir)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group (pgid = its pid), so signalling -pgid reaches everything it starts
        // (unless something deliberately leaves the group with setsid).
        .process_group(0)
        // Belt and braces with `GroupGuard`: tokio also reaps a child whose handle is dropped.
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| ExecError::Spawn(format!("{e} (in {})", spec.dir.display())))?;
    let pgid = match child.id().map(i32::try_from) {
        Some(Ok(pid)) => pid,
        _ => return Err(ExecError::Spawn("started without a process id".to_string())),
    };
    let mut guard = GroupGuard { pgid, armed: true };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ExecError::Spawn("output pipes missing".to_string()));
    };
    let mut out = LineReader::new(stdout);
    let mut err = LineReader::new(stderr);
    let mut last_stderr: Option<String> = None;
    let timeout_at = spec.timeout.map(|t| Instant::now() + t);
    let mut status: Option<ExitStatus> = None;
    let mut drain_until = Instant::now();

    loop {
        if status.is_some() && out.done() && err.done() {
            break;
        }
        // Every branch is cancel-safe: `next_line` keeps partial lines in the reader and only
        // awaits `read`, and `Child::wait` may be polled again.
        tokio::select! {
            _ = cancel.cancelled(), if status.is_none() => {
                kill_group(&mut child, pgid).await;
                guard.armed = false;
                return Err(ExecError::Cancelled);
            }
            _ = sleep_until_opt(timeout_at), if status.is_none() && timeout_at.is_some() => {
                kill_group(&mut child, pgid).await;
                guard.armed = false;
                return Err(ExecError::TimedOut {
                    after: spec.timeout.unwrap_or_default(),
                });
            }
            line = out.next_line(), if !out.done() => {
                if let Some(line) = line {
                    on_line(Stream::Stdout, line);
                }
            }
            line = err.next_line(), if !err.done() => {
                if let Some(line) = line {
                    if !line.trim().is_empty() {
                        last_stderr = Some(line.clone());
                    }
                    on_line(Stream::Stderr, line);
                }
            }
            exited = child.wait(), if status.is_none() => {
                match exited {
                    Ok(exited) => status = Some(exited),
                    Err(e) => {
                        // Cannot learn how it ended; make sure it is gone rather than leak it.
                        kill_group(&mut child, pgid).await;
                        guard.armed = false;
                        return Err(ExecError::Spawn(format!("cannot wait for `sh -c`: {e}")));
                    }
                }
                // Reaped: from here on the pgid may be reused once the group empties, so the
                // guard must not signal it.
                guard.armed = false;
                drain_until = Instant::now() + DRAIN;
            }
            _ = tokio::time::sleep_until(drain_until), if status.is_some() => break,
        }
    }

    let Some(status) = status else {
        return Err(ExecError::Spawn("ended without an exit status".to_string()));
    };
    exit_result(status, last_stderr)
}

/// Ok for exit code 0, else the code or the signal with the last stderr line.
fn exit_result(status: ExitStatus, last_stderr: Option<String>) -> Result<(), ExecError> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    if let Some(code) = status.code() {
        return Err(ExecError::Exit { code, last_stderr });
    }
    Err(ExecError::Signal {
        signal: status.signal().unwrap_or(0),
        last_stderr,
    })
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// SIGTERM to the group, up to [`KILL_GRACE`] for it to go, then SIGKILL; the leader is reaped.
async fn kill_group(child: &mut Child, pgid: i32) {
    signal_group(pgid, libc::SIGTERM);
    let give_up = Instant::now() + KILL_GRACE;
    loop {
        // Reap the leader as soon as it dies: a zombie leader would otherwise look alive.
        let leader_gone = matches!(child.try_wait(), Ok(Some(_)));
        if leader_gone && !group_has_live_members(pgid) {
            return;
        }
        if Instant::now() >= give_up {
            break;
        }
        tokio::time::sleep(KILL_POLL).await;
    }
    signal_group(pgid, libc::SIGKILL);
    let _ = child.wait().await;
}

/// Sends `signal` to every process in group `pgid`.
fn signal_group(pgid: i32, signal: i32) {
    // pgid 0 would mean our own group and -1 every process we may signal: never send those.
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours. -pgid names the group
    // `sh` was started in (its pid); the callers only signal it while that group is known to
    // exist (leader not yet reaped, or members still running), so the id cannot have been reused.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Whether group `pgid` still has a member that is not a zombie. Zombies count as gone: they
/// have exited, and whoever reaps orphans (often nobody, in containers) may never collect them.
fn group_has_live_members(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: as in `signal_group`; signal 0 only checks that the group exists.
    let exists = unsafe { libc::kill(-pgid, 0) } == 0;
    if !exists {
        return false;
    }
    live_members_in_proc(pgid).unwrap_or(true)
}

/// Scans /proc for a non-zombie process in group `pgid`; `None` where /proc cannot tell.
fn live_members_in_proc(pgid: i32) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut saw_any = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process can vanish between listing and reading; that is just one fewer member.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        saw_any = true;
        // `pid (comm) state ppid pgrp …`; comm may contain spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next();
        let _ppid = fields.next();
        let pgrp = fields.next().and_then(|f| f.parse::<i32>().ok());
        if pgrp == Some(pgid) && !matches!(state, Some("Z") | Some("X")) {
            return Some(true);
        }
    }
    saw_any.then_some(false)
}

/// SIGKILLs the group if `run_command` is dropped while `sh` has not been reaped.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// Splits a byte stream into lines (lossily decoded, at most [`MAX_LINE_BYTES`] each).
struct LineReader<R> {
    inner: R,
    pending: Vec<u8>,
    eof: bool,
    done: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        LineReader {
            inner,
            pending: Vec::new(),
            eof: false,
            done: false,
        }
    }

    /// All lines handed out and the stream ended.
    fn done(&self) -> bool {
        self.done
    }

    /// The next line, or `None` at the end. Cancel-safe: the only await is `read`, and bytes
    /// read are kept in `pending` before anything else can happen.
    async fn next_line(&mut self) -> Option<String> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(line) = take_line(&mut self.pending, self.eof) {
                return Some(line);
            }
            if self.eof {
                self.done = true;
                return None;
            }
            match self.inner.read(&mut buf).await {
                // A read error on a pipe means the writer is gone for good; treat it as the end.
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// Takes the next whole line off `pending` (without `\n` or `\r\n`), or a [`MAX_LINE_BYTES`]
/// piece of an over-long one, or at `eof` whatever is left.
fn take_line(pending: &mut Vec<u8>, eof: bool) -> Option<String> {
    let window = pending.len().min(MAX_LINE_BYTES + 1);
    if let Some(newline) = pending[..window].iter().position(|&b| b == b'\n')
        && newline <= MAX_LINE_BYTES
    {
        let mut line: Vec<u8> = pending.drain(..=newline).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        return Some(String::from_utf8_lossy(&line).into_owned());
    }
    if pending.len() >= MAX_LINE_BYTES {
        let cut = char_boundary_cut(&pending[..MAX_LINE_BYTES]);
        let piece: Vec<u8> = pending.drain(..cut).collect();
        return Some(String::from_utf8_lossy(&piece).into_owned());
    }
    if eof && !pending.is_empty() {
        let rest = std::mem::take(pending);
        return Some(String::from_utf8_lossy(&rest).into_owned());
    }
    None
}

/// Where to cut `piece` so a multi-byte character at its end is not split in two (which would
/// show as two replacement characters); all of it when it ends cleanly or is not UTF-8 anyway.
fn char_boundary_cut(piece: &[u8]) -> usize {
    match std::str::from_utf8(piece) {
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        _ => piece.len(),
    }
}

/// Writes a kubeconfig that can reach only `context`: the source kubeconfig (`kubeconfig`, else
/// $KUBECONFIG, else ~/.kube/config — as kube::config::Kubeconfig::read / read_from do) reduced to
/// that one context, its cluster and its user, with current-context set to it and the context's
/// namespace set to `namespace`. Written to a new file in `dir` with mode 0600, returned.
///
/// An empty `context` means the source's current context; an empty `namespace` keeps the
/// context's own. Relative credential paths (certificate-authority, client-certificate,
/// client-key, tokenFile, exec commands containing a `/`) come out absolute, resolved against
/// the directory of the source file that named them, so they work from any directory. The file
/// is JSON, which kubectl and kube-rs both read as YAML.
pub fn write_phase_kubeconfig(
    kubeconfig: Option<&Path>,
    context: &str,
    namespace: &str,
    dir: &Path,
) -> Result<PathBuf, String> {
    let source = read_source_kubeconfig(kubeconfig)?;
    let reduced = reduce_kubeconfig(source, context, namespace)?;
    let text = serde_json::to_vec_pretty(&reduced)
        .map_err(|e| format!("cannot serialise the phase kubeconfig: {e}"))?;
    let name = reduced.current_context.as_deref().unwrap_or("current");
    write_new_private_file(dir, name, &text)
}

/// The source kubeconfig, every path in it absolute.
fn read_source_kubeconfig(kubeconfig: Option<&Path>) -> Result<Kubeconfig, String> {
    // kube's `read_from` resolves relative credential paths against the file's parent, which
    // for a relative file name is "" and leaves them relative; make the file name absolute first.
    let read = |path: &Path| -> Result<Kubeconfig, String> {
        let path =
            std::path::absolute(path).map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
        Kubeconfig::read_from(&path).map_err(|e| format!("kubeconfig {}: {e}", path.display()))
    };
    if let Some(path) = kubeconfig {
        return read(path);
    }
    let from_env = std::env::var_os("KUBECONFIG").unwrap_or_default();
    let paths: Vec<PathBuf> = std::env::split_paths(&from_env)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if paths.is_empty() {
        let home = std::env::home_dir().ok_or_else(|| {
            "no kubeconfig: KUBECONFIG is unset and there is no home directory".to_string()
        })?;
        return read(&home.join(".kube").join("config"));
    }
    // Merged in order, first value wins, as kubectl and `Kubeconfig::from_env` do.
    let mut merged = Kubeconfig::default();
    for path in &paths {
        merged = merged
            .merge(read(path)?)
            .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
    }
    Ok(merged)
}

/// `source` cut down to `context` (its current one when empty), its cluster and its user.
fn reduce_kubeconfig(
    source: Kubeconfig,
    context: &str,
    namespace: &str,
) -> Result<Kubeconfig, String> {
    let wanted = if context.is_empty() {
        match source.current_context.as_deref() {
            Some(current) if !current.is_empty() => current.to_string(),
            _ => return Err("the kubeconfig has no current context and none was named".to_string()),
        }
    } else {
        context.to_string()
    };
    let Some(named) = source.contexts.iter().find(|c| c.name == wanted) else {
        let known: Vec<&str> = source.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "context `{wanted}` is not in the kubeconfig (it has: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let mut named: NamedContext = named.clone();
    let Some(body) = named.context.as_mut() else {
        return Err(format!("context `{wanted}` names no cluster"));
    };
    if !namespace.is_empty() {
        body.namespace = Some(namespace.to_string());
    }
    let cluster = source
        .clusters
        .iter()
        .find(|c| c.name == body.cluster)
        .cloned()
        .ok_or_else(|| {
            format!(
                "context `{wanted}` names cluster `{}`, which is not in the kubeconfig",
                body.cluster
            )
        })?;
    let user = match body.user.as_deref() {
        None | Some("") => None,
        Some(user) => Some(
            source
                .auth_infos
                .iter()
                .find(|u| u.name == user)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "context `{wanted}` names user `{user}`, which is not in the kubeconfig"
                    )
                })?,
        ),
    };
    Ok(Kubeconfig {
        api_version: Some("v1".to_string()),
        kind: Some("Config".to_string()),
        clusters: vec![cluster],
        auth_infos: user.into_iter().collect(),
        contexts: vec![named],
        current_context: Some(wanted),
        ..Kubeconfig::default()
    })
}

/// Creates a file that did not exist in `dir`, readable by the owner only, holding `text`.
fn write_new_private_file(dir: &Path, context: &str, text: &[u8]) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let stem: String = context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let pid = std::process::id();
    for attempt in 0u32..1000 {
        let path = dir.join(format!("kubeconfig-{stem}-{pid}-{attempt}.yaml"));
        // create_new: never overwrite (or follow a symlink planted at) an existing path.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        let mut file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        };
        // The umask can only take bits away from 0600, but say exactly what we mean.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| file.write_all(text))
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        return Ok(path);
    }
    Err(format!(
        "cannot create a new kubeconfig in {}: too many exist",
        dir.display()
    ))
}

/// Gives the heap's free memory back to the system. A relist of many pods decodes them all at
/// once (the whole list, then each pod into its row), and glibc keeps the freed pages: without
/// this, a console watching 1,000 pods holds a few MB more than it uses.
pub fn give_back_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only returns the allocator's free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut pending = input.to_vec();
        let mut out = Vec::new();
        while let Some(line) = take_line(&mut pending, true) {
            out.push(line);
        }
        out
    }

    #[test]
    fn crlf_and_lf_both_end_a_line_and_a_last_line_without_newline_is_kept() {
        assert_eq!(lines(b"a\r\nb\n\nc"), ["a", "b", "", "c"]);
    }

    #[test]
    fn an_incomplete_line_waits_for_more_until_the_end() {
        let mut pending = b"partial".to_vec();
        assert_eq!(take_line(&mut pending, false), None);
        assert_eq!(pending, b"partial");
    }

    #[test]
    fn an_over_long_line_comes_in_pieces_without_splitting_a_character() {
        // 4095 ASCII bytes then a 2-byte 'é': the first piece must stop before the 'é'.
        let mut input = vec![b'a'; MAX_LINE_BYTES - 1];
        input.extend_from_slice("é".as_bytes());
        input.extend_from_slice(b"tail\n");
        let got = lines(&input);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), MAX_LINE_BYTES - 1);
        assert_eq!(got[1], "étail");
    }

    #[test]
    fn a_newline_right_at_the_limit_ends_a_whole_line() {
        let mut input = vec![b'x'; MAX_LINE_BYTES];
        input.push(b'\n');
        assert_eq!(lines(&input), ["x".repeat(MAX_LINE_BYTES)]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        assert_eq!(lines(b"ok\xff\xfe!\n"), ["ok\u{FFFD}\u{FFFD}!"]);
    }

    #[test]
    fn error_messages_name_the_code_and_the_last_stderr_line() {
        let e = ExecError::Exit {
            code: 3,
            last_stderr: Some("no such chart".to_string()),
        };
        assert_eq!(e.to_string(), "exited with code 3: no such chart");
        let e = ExecError::Signal {
            signal: 9,
            last_stderr: None,
        };
        assert_eq!(e.to_string(), "killed by signal 9");
        let e = ExecError::TimedOut {
            after: Duration::from_secs(300),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 5m; its process group was killed"
        );
    }

    #[test]
    fn an_unknown_context_is_refused_naming_the_ones_there_are() {
        let source = Kubeconfig {
            contexts: vec![NamedContext {
                name: "dev".to_string(),
                ..NamedContext::default()
            }],
            ..Kubeconfig::default()
        };
        let err = reduce_kubeconfig(source, "prod", "shop").expect_err("prod is not there");
        assert!(err.contains("`prod`") && err.contains("dev"), "{err}");
    }

    #[test]
    fn no_current_context_and_none_named_is_refused() {
        let err =
            reduce_kubeconfig(Kubeconfig::default(), "", "shop").expect_err("nothing is current");
        assert!(err.contains("no current context"), "{err}");
    }
}
