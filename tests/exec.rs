//! Run steps as real `sh -c` processes (streaming, exit codes, timeout and cancel killing the
//! whole group, environment, cwd) and the one-context kubeconfig a phase's steps get.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use warroom::exec::{
    CommandSpec, ExecError, MAX_LINE_BYTES, Stream, phase_env, run_command, write_phase_kubeconfig,
};

type Lines = Arc<Mutex<Vec<(Stream, String)>>>;

fn spec(cmd: &str, dir: &Path) -> CommandSpec {
    CommandSpec {
        cmd: cmd.to_string(),
        dir: dir.to_path_buf(),
        // Long enough never to fire on a slow machine; short enough that a bug cannot hang CI.
        timeout: Some(Duration::from_secs(60)),
        env: Vec::new(),
    }
}

/// Runs `spec`, collecting its lines.
async fn run(spec: &CommandSpec) -> (Result<(), ExecError>, Vec<(Stream, String)>) {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let result = run_command(
        spec,
        move |stream, line| sink.lock().unwrap().push((stream, line)),
        CancellationToken::new(),
    )
    .await;
    let lines = lines.lock().unwrap().clone();
    (result, lines)
}

fn of(lines: &[(Stream, String)], which: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|(s, _)| *s == which)
        .map(|(_, l)| l.clone())
        .collect()
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet), waiting up to a deadline.
fn pid_exits_within(pid: u32, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    loop {
        let exited = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                let state = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
                matches!(state.as_deref(), Some("Z") | Some("X"))
            }
        };
        if exited {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn first_pid(lines: &[(Stream, String)]) -> u32 {
    of(lines, Stream::Stdout)
        .first()
        .expect("the command echoed $!")
        .trim()
        .parse()
        .expect("a pid")
}

#[tokio::test]
async fn lines_stream_while_the_command_is_still_running() {
    let dir = tempfile::tempdir().unwrap();
    // The command cannot finish until `go` exists, and only the callback creates it on seeing
    // `first`: finishing at all proves `first` arrived before the end.
    let cmd = "echo first; while [ ! -e go ]; do sleep 0.02; done; echo second >&2; echo third";
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let go = dir.path().join("go");
    let mut spec = spec(cmd, dir.path());
    spec.timeout = Some(Duration::from_secs(30));
    let result = run_command(
        &spec,
        move |stream, line| {
            if line == "first" {
                std::fs::write(&go, "").unwrap();
            }
            sink.lock().unwrap().push((stream, line));
        },
        CancellationToken::new(),
    )
    .await;
    assert_eq!(result, Ok(()));
    let lines = lines.lock().unwrap().clone();
    assert_eq!(of(&lines, Stream::Stdout), ["first", "third"]);
    assert_eq!(of(&lines, Stream::Stderr), ["second"]);
}

#[tokio::test]
async fn each_stream_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = "i=1; while [ $i -le 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
    let (result, lines) = run(&spec(cmd, dir.path())).await;
    assert_eq!(result, Ok(()));
    let want = |prefix: &str| {
        (1..=300)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&lines, Stream::Stdout), want("out"));
    assert_eq!(of(&lines, Stream::Stderr), want("err"));
}

#[tokio::test]
async fn a_non_zero_exit_names_the_code_and_the_last_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = "echo starting >&2; echo 'Error: chart not found' >&2; echo; exit 3";
    let (result, _) = run(&spec(cmd, dir.path())).await;
    let err = result.unwrap_err();
    assert_eq!(
        err,
        ExecError::Exit {
            code: 3,
            last_stderr: Some("Error: chart not found".to_string())
        }
    );
    assert_eq!(
        err.to_string(),
        "exited with code 3: Error: chart not found"
    );
}

#[tokio::test]
async fn death_by_signal_names_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(&spec("echo bye >&2; kill -9 $$", dir.path())).await;
    assert_eq!(
        result,
        Err(ExecError::Signal {
            signal: 9,
            last_stderr: Some("bye".to_string())
        })
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group_with_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec("sleep 60 & echo $!; sleep 60", dir.path());
    spec.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let (result, lines) = run(&spec).await;
    let took = started.elapsed();
    assert_eq!(
        result,
        Err(ExecError::TimedOut {
            after: Duration::from_secs(1)
        })
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "timed out after 1s; its process group was killed"
    );
    // SIGTERM was enough, so no waiting out the grace period.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let background = first_pid(&lines);
    assert!(
        pid_exits_within(background, Duration::from_secs(2)),
        "background sleep {background} survived"
    );
}

#[tokio::test]
async fn a_group_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // Ignored dispositions are inherited, so both sleeps ignore SIGTERM too.
    let mut spec = spec("trap '' TERM; sleep 60 & echo $!; sleep 60", dir.path());
    spec.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let (result, lines) = run(&spec).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(ExecError::TimedOut { .. })),
        "{result:?}"
    );
    assert!(
        took >= Duration::from_secs(1) + warroom::exec::KILL_GRACE,
        "SIGKILL came before the grace period ended: {took:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let background = first_pid(&lines);
    assert!(
        pid_exits_within(background, Duration::from_secs(2)),
        "background sleep {background} survived"
    );
}

#[tokio::test]
async fn cancelling_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let trigger = cancel.clone();
    let started = Instant::now();
    let result = run_command(
        &spec("sleep 60 & echo $!; echo ready; sleep 60", dir.path()),
        move |stream, line| {
            if line == "ready" {
                trigger.cancel();
            }
            sink.lock().unwrap().push((stream, line));
        },
        cancel,
    )
    .await;
    assert_eq!(result, Err(ExecError::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(4));
    let background = first_pid(&lines.lock().unwrap());
    assert!(
        pid_exits_within(background, Duration::from_secs(2)),
        "background sleep {background} survived"
    );
}

#[tokio::test]
async fn a_token_cancelled_before_the_start_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let result = run_command(&spec("touch ran", dir.path()), |_, _| {}, cancel).await;
    assert_eq!(result, Err(ExecError::Cancelled));
    assert!(!dir.path().join("ran").exists());
}

#[tokio::test]
async fn dropping_the_run_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let seen = CancellationToken::new();
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let saw = seen.clone();
    let spec = spec("sleep 60 & echo $!; sleep 60", dir.path());
    tokio::select! {
        result = run_command(&spec, move |stream, line| {
            sink.lock().unwrap().push((stream, line));
            saw.cancel();
        }, CancellationToken::new()) => panic!("ended on its own: {result:?}"),
        _ = seen.cancelled() => {}
    }
    let background = first_pid(&lines.lock().unwrap());
    assert!(
        pid_exits_within(background, Duration::from_secs(5)),
        "background sleep {background} survived"
    );
}

#[tokio::test]
async fn a_background_process_left_behind_does_not_hold_the_step_open() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (result, lines) = run(&spec("sleep 60 & echo $!; echo done", dir.path())).await;
    assert_eq!(result, Ok(()));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(of(&lines, Stream::Stdout)[1], "done");
    // Not ours to keep: clean up the straggler the command meant to leave.
    let _ = Command::new("kill")
        .arg(first_pid(&lines).to_string())
        .status();
}

#[tokio::test]
async fn the_phase_environment_arrives_on_top_of_the_inherited_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(
        r#"printf '%s\n' "$KUBECONFIG" "$WARROOM_PLAN" "$WARROOM_PHASE" "$WARROOM_ENVIRONMENT" "$WARROOM_NAMESPACE" "$WARROOM_CONTEXT" "$HOME""#,
        dir.path(),
    );
    spec.env = phase_env(
        Path::new("/tmp/phase.kubeconfig"),
        "checkout",
        "canary",
        "prod",
        "shop-prod",
        "prod-eu",
    );
    let (result, lines) = run(&spec).await;
    assert_eq!(result, Ok(()));
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        of(&lines, Stream::Stdout),
        [
            "/tmp/phase.kubeconfig",
            "checkout",
            "canary",
            "prod",
            "shop-prod",
            "prod-eu",
            home.as_str()
        ]
    );
}

#[tokio::test]
async fn the_command_runs_in_the_given_directory_with_no_stdin() {
    let dir = tempfile::tempdir().unwrap();
    // `cat` would wait for ever on an inherited terminal; on /dev/null it ends at once.
    let (result, lines) = run(&spec("cat; pwd -P", dir.path())).await;
    assert_eq!(result, Ok(()));
    let want = dir.path().canonicalize().unwrap();
    assert_eq!(of(&lines, Stream::Stdout), [want.to_string_lossy()]);
}

#[tokio::test]
async fn a_missing_directory_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(&spec("true", &dir.path().join("missing"))).await;
    assert!(matches!(result, Err(ExecError::Spawn(_))), "{result:?}");
}

#[tokio::test]
async fn invalid_utf8_output_is_replaced_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (result, lines) = run(&spec(
        r"printf 'ok\377\376\n'; printf 'bad\377' >&2",
        dir.path(),
    ))
    .await;
    assert_eq!(result, Ok(()));
    assert_eq!(of(&lines, Stream::Stdout), ["ok\u{FFFD}\u{FFFD}"]);
    assert_eq!(of(&lines, Stream::Stderr), ["bad\u{FFFD}"]);
}

#[tokio::test]
async fn a_very_long_line_comes_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (result, lines) = run(&spec(
        r"head -c 10000 /dev/zero | tr '\0' a; echo; echo next",
        dir.path(),
    ))
    .await;
    assert_eq!(result, Ok(()));
    let lengths: Vec<usize> = of(&lines, Stream::Stdout).iter().map(String::len).collect();
    assert_eq!(
        lengths,
        [
            MAX_LINE_BYTES,
            MAX_LINE_BYTES,
            10000 - 2 * MAX_LINE_BYTES,
            4
        ]
    );
}

// --- the phase kubeconfig ---

const TWO_CONTEXTS: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example:6443
    certificate-authority-data: ZGV2LWNh
- name: prod-cluster
  cluster:
    server: https://prod.example:6443
    certificate-authority: certs/prod-ca.crt
users:
- name: dev-user
  user:
    token: dev-secret-token
- name: prod-user
  user:
    client-certificate: certs/prod.crt
    client-key: certs/prod.key
contexts:
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
    namespace: default
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
current-context: dev
"#;

/// A directory holding a two-context kubeconfig whose prod credentials are relative paths.
fn source_kubeconfig() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    for file in ["prod-ca.crt", "prod.crt", "prod.key"] {
        std::fs::write(dir.path().join("certs").join(file), "").unwrap();
    }
    let path = dir.path().join("config");
    std::fs::write(&path, TWO_CONTEXTS).unwrap();
    (dir, path)
}

/// Whether kubectl can run; in CI its absence is a failure, elsewhere a loud skip.
fn kubectl_available() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is not on PATH and CI is set"
        );
        eprintln!("!!! SKIPPING the kubectl checks: kubectl is not on PATH !!!");
    }
    ok
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_phase_kubeconfig_holds_only_the_phase_context_current_with_its_namespace() {
    let (src, source) = source_kubeconfig();
    let out = tempfile::tempdir().unwrap();
    let written = write_phase_kubeconfig(Some(&source), "prod", "shop-prod", out.path()).unwrap();
    assert_eq!(written.parent(), Some(out.path()));

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&written).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");

    let kc = kube::config::Kubeconfig::read_from(&written).unwrap();
    let contexts: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(contexts, ["prod"]);
    assert_eq!(kc.current_context.as_deref(), Some("prod"));
    let body = kc.contexts[0].context.as_ref().unwrap();
    assert_eq!(body.namespace.as_deref(), Some("shop-prod"));
    let clusters: Vec<&str> = kc.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(clusters, ["prod-cluster"]);
    let users: Vec<&str> = kc.auth_infos.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(users, ["prod-user"]);
    // The other context's secret must not travel with it.
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(!text.contains("dev-secret-token"), "{text}");
    // Relative credential paths were made absolute against the source's directory.
    let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
    let cert = src.path().join("certs/prod.crt");
    assert_eq!(user.client_certificate.as_deref(), cert.to_str());
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    let ca = src.path().join("certs/prod-ca.crt");
    assert_eq!(cluster.certificate_authority.as_deref(), ca.to_str());

    if kubectl_available() {
        assert_eq!(
            kubectl(
                &written,
                &["config", "view", "-o", "jsonpath={.contexts[*].name}"]
            ),
            "prod"
        );
        assert_eq!(
            kubectl(&written, &["config", "current-context"]).trim(),
            "prod"
        );
        assert_eq!(
            kubectl(
                &written,
                &["config", "view", "--minify", "-o", "jsonpath={..namespace}"]
            ),
            "shop-prod"
        );
        assert_eq!(
            kubectl(
                &written,
                &[
                    "config",
                    "view",
                    "-o",
                    "jsonpath={.users[0].user.client-key}"
                ]
            ),
            src.path().join("certs/prod.key").to_string_lossy()
        );
    }
}

#[test]
fn an_empty_context_means_the_current_one() {
    let (_src, source) = source_kubeconfig();
    let out = tempfile::tempdir().unwrap();
    let written = write_phase_kubeconfig(Some(&source), "", "shop", out.path()).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&written).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("dev"));
    assert_eq!(kc.contexts.len(), 1);
    assert_eq!(
        kc.contexts[0]
            .context
            .as_ref()
            .unwrap()
            .namespace
            .as_deref(),
        Some("shop")
    );
}

#[test]
fn each_call_writes_a_new_file() {
    let (_src, source) = source_kubeconfig();
    let out = tempfile::tempdir().unwrap();
    let a = write_phase_kubeconfig(Some(&source), "prod", "a", out.path()).unwrap();
    let b = write_phase_kubeconfig(Some(&source), "prod", "b", out.path()).unwrap();
    assert_ne!(a, b);
    let ns = |p: &Path| {
        kube::config::Kubeconfig::read_from(p).unwrap().contexts[0]
            .context
            .as_ref()
            .unwrap()
            .namespace
            .clone()
    };
    assert_eq!((ns(&a), ns(&b)), (Some("a".into()), Some("b".into())));
}

#[test]
fn a_relative_kubeconfig_path_still_yields_absolute_credential_paths() {
    let (src, source) = source_kubeconfig();
    // The same file named relative to the test's working directory.
    let cwd = std::env::current_dir().unwrap();
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.push(source.strip_prefix("/").unwrap());
    assert!(relative.is_relative());
    let out = tempfile::tempdir().unwrap();
    let written = write_phase_kubeconfig(Some(&relative), "prod", "shop", out.path()).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&written).unwrap();
    let key = kc.auth_infos[0]
        .auth_info
        .as_ref()
        .unwrap()
        .client_key
        .clone()
        .unwrap();
    assert!(Path::new(&key).is_absolute(), "{key}");
    assert!(Path::new(&key).exists(), "{key}");
    drop(src);
}

#[test]
fn an_unknown_context_is_an_error_naming_it() {
    let (_src, source) = source_kubeconfig();
    let out = tempfile::tempdir().unwrap();
    let err = write_phase_kubeconfig(Some(&source), "staging", "shop", out.path()).unwrap_err();
    assert!(
        err.contains("staging") && err.contains("dev, prod"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}
