//! `warroom watch` as a second engineer would use it: a headless run carries out a plan on the
//! simulator and writes its journal; the watcher follows that journal in a tmux pane. Keys are
//! sent with send-keys and the screen read with capture-pane, polled with deadlines.

mod common;

use common::headless::{BIN, Bench, blocking};
use common::tmux::{Session, tmux};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for the whole plan (a 10 s hold) on a slow machine.
const DEADLINE: Duration = Duration::from_secs(120);

const PLAN: &str = r#"version: 1
name: watch test
service: checkout
risk: low
strategy: canary
workload:
  name: checkout
  canary: checkout-canary
  container: app
  image: registry.example.com/shop/checkout:2.4.0
traffic: { router: gateway-api, route: checkout, stable_backend: checkout, canary_backend: checkout-canary }
environments:
  dev: { context: sim-dev, namespace: shop }
metrics:
  interval: 1s
  history: 2m
  rate: 5s
  queries:
    error_rate: sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}",code=~"5.."}[{{rate}}])) / sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}[{{rate}}]))
  thresholds:
    error_rate: { max: 0.05 }
  no_data: { after: 10, action: pause }
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 20
      - hold: 10s
      - weight: 50
rollback:
  immediate:
    target: 5m
    actions:
      - weight: 0
"#;

/// The headless run; killed if the test ends before it does.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Blocks until `path` holds at least one whole line (the run's start).
fn wait_for_journal(path: &Path, run: &mut Run) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if std::fs::read(path).is_ok_and(|b| b.contains(&b'\n')) {
            return;
        }
        if let Ok(Some(status)) = run.0.try_wait() {
            panic!("the run ended ({status}) before its journal began");
        }
        assert!(
            Instant::now() < deadline,
            "no journal at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_follows_a_run_live_read_only_to_its_end() {
    if !common::tool_available("tmux", &["-V"], "warroom watch end-to-end test") {
        return;
    }
    let bench = Bench::new(PLAN).await;
    let (dir, plan_path, sim) = (&bench.dir, &bench.plan_path, &bench.sim);

    let journal: PathBuf = dir.path().join("run.jsonl");
    let mut run = Run(Command::new(BIN)
        .arg("run")
        .arg(plan_path)
        .arg("--headless")
        .arg("--journal")
        .arg(&journal)
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .arg("--prometheus")
        .arg(&sim.prometheus)
        .arg("--operator")
        .arg("tester")
        .env("XDG_STATE_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("warroom run starts"));
    let kubeconfig = sim.kubeconfig.clone();
    let watched = journal.clone();
    let (code, screen) = blocking(move || {
        wait_for_journal(&watched, &mut run);
        let socket = format!("warroom-watch-test-{}", std::process::id());
        let session = Session {
            socket: socket.clone(),
            name: "watch".to_string(),
        };
        // A shell runs the watcher so that after `q` the pane shows what it left behind.
        let script = format!(
            "printf 'before\\n'; XDG_CONFIG_HOME={} {BIN} watch {} --kubeconfig {}; printf 'after exit=%s\\n' $?; sleep 60",
            watched.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            watched.display(),
            kubeconfig.display()
        );
        tmux(&[
            "-L", &socket, "new-session", "-d", "-s", "watch", "-x", "120", "-y", "40", "sh",
            "-c", &script,
        ])
        .expect("tmux starts the watcher");

        let screen = session.wait_for("the hold running, as an observer", |s| {
            s.contains("OBSERVER") && s.lines().any(|l| l.contains("▶ hold 10s"))
        });
        assert!(
            screen.contains("✓ weight → 20%"),
            "the step before the hold is done:\n{screen}"
        );
        assert!(screen.contains("at the keys: tester"), "{screen}");
        assert!(screen.contains("q  quit watching"), "{screen}");

        session.keys("n");
        session.wait_for("the read-only answer", |s| {
            s.contains("read-only: this is an observer (n would advance the plan)")
        });
        session.wait_for("live pods", |s| {
            s.contains("kube ● live") && s.contains(" Running ")
        });

        let screen = session.wait_for("the run's end", |s| {
            s.contains("the run ended: COMPLETE (exit 0)")
        });
        let code = run.0.wait().expect("the run is waited for").code();
        session.keys("q");
        let after = session.wait_for("the shell after the watcher", |s| s.contains("after exit="));
        assert!(
            after.contains("before") && !after.contains("OBSERVER"),
            "the terminal is given back:\n{after}"
        );
        assert!(after.contains("after exit=0"), "{after}");
        (code, screen)
    })
    .await;
    assert_eq!(code, Some(0), "the run completed");
    assert!(screen.contains("COMPLETE"), "{screen}");
    assert!(screen.contains("3/3"), "every step done:\n{screen}");
    for done in ["✓ hold 10s", "✓ weight → 50%", "plan complete"] {
        assert!(
            screen.lines().any(|l| l.contains(done)),
            "{done} missing:\n{screen}"
        );
    }
    let read = warroom::journal::read::read(&journal).expect("journal reads");
    let text = std::fs::read_to_string(&journal).expect("journal");
    assert!(
        !text.contains("read-only") && !text.contains("observer"),
        "the watcher wrote nothing into the journal"
    );
    assert!(matches!(
        read.lines.last().map(|l| &l.record),
        Some(warroom::journal::Record::End { exit: 0, .. })
    ));
}

/// A journal that cannot be followed is refused before the terminal is touched.
#[test]
fn a_missing_or_bad_journal_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.jsonl");
    let out = Command::new(BIN)
        .arg("watch")
        .arg(&missing)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"v\":1}\nnot json\n").expect("written");
    let out = Command::new(BIN)
        .arg("watch")
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl"), "{err}");
}

/// Without a terminal the watcher says it needs one (exit 1), after the journal checked out.
#[test]
fn no_terminal_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.jsonl");
    let start = serde_json::json!({
        "v": 1, "seq": 0, "at": "2026-12-02T10:00:00Z", "type": "start", "run_id": "r1",
        "warroom": "0.1.0",
        "plan": {"path": "plan.yaml", "name": "watch test", "sha256": "00", "text": PLAN},
        "environments": [{"name": "dev", "context": "sim-dev", "namespace": "shop"}],
        "operator": "alice", "host": "h", "mode": "headless", "auto_approve": "nothing"
    });
    std::fs::write(&path, format!("{start}\n")).expect("written");
    let out = Command::new(BIN)
        .arg("watch")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs a terminal"), "{err}");
}
