//! The journal, `--resume`, the plan's lease, the report and webhook notifications, through the
//! real binary against the simulator over real HTTP. Processes are killed with SIGKILL as a
//! crash would; waits poll with deadlines.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::headless::{BIN, Bench, DEADLINE, Headless, blocking, plan_text};
use warroom::journal::{Line, Record};
use warroom::plan::Weight;

fn body(run_step: &str) -> String {
    format!(
        r#"environments:
  staging: {{ namespace: shop, context: sim-staging }}
rollback:
  immediate: {{ target: 1m, actions: [ weight: 0 ] }}
success:
  max_deploy_time: 10m
  max_error_rate: 0.5
  max_recovery_time: 5m
phases:
  - name: canary
    environment: staging
    steps:
      - image: canary
      - weight: {{ to: 30, step: 10, every: 3s }}
      - hold: 4s
      - run: {run_step}
      - weight: 50
"#
    )
}

impl Bench {
    fn journal(&self) -> PathBuf {
        self.dir.path().join("run.jsonl")
    }

    fn marks(&self) -> PathBuf {
        self.dir.path().join("marks.txt")
    }

    fn started(&self, extra: &[&str]) -> Headless {
        let journal = self.journal();
        let mut args = vec!["--journal", journal.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

async fn bench_with(run_step: &str) -> Bench {
    let dir_marker = "MARKS";
    let text = plan_text(&body(run_step));
    let bench = Bench::new(&text).await;
    let marks = bench.marks();
    // A few errors among few requests at a small weight must not roll these runs back: only
    // the test that injects a spike wants a breach.
    let text = text
        .replace(dir_marker, marks.to_str().expect("utf-8 path"))
        .replace("error_rate: { max: 0.05 }", "error_rate: { max: 0.3 }");
    std::fs::write(&bench.plan_path, text).expect("plan rewritten");
    bench
}

fn lines_of(path: &Path) -> Vec<Line> {
    warroom::journal::read::read(path)
        .expect("the journal reads back")
        .lines
}

fn marks(bench: &Bench) -> usize {
    std::fs::read_to_string(bench.marks())
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The run, once it has printed a line containing `text`.
async fn until(mut run: Headless, text: &'static str) -> Headless {
    blocking(move || {
        run.wait_for(text);
        run
    })
    .await
}

/// Kills the run as a crash would.
fn kill(mut run: Headless) {
    run.child.kill().expect("SIGKILL");
    let _ = run.child.wait();
}

async fn resumed(bench: &Bench, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["--resume"];
    args.extend_from_slice(extra);
    let run = bench.started(&args);
    blocking(move || run.finish()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_a_paced_weight_step_resumes_where_it_stopped_and_runs_each_step_once() {
    let bench = bench_with("echo ran >> MARKS").await;
    let run = until(bench.started(&[]), "canary weight 10% stored").await;
    kill(run);
    let (code, out, err) = resumed(&bench, &[]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("resumed by tester"), "{out}");
    assert!(
        !out.contains("▶ image"),
        "the image step is not repeated:\n{out}"
    );
    assert!(
        out.contains("canary weight 10% → 20%"),
        "pacing goes on from 10 %:\n{out}"
    );
    assert_eq!(marks(&bench), 1, "the run step ran once");
    assert_eq!(
        bench.weight("sim-staging", "shop").await,
        Weight::clamped(50)
    );
    let lines = lines_of(&bench.journal());
    assert!(matches!(
        lines.last().map(|l| &l.record),
        Some(Record::End { exit: 0, .. })
    ));
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one numbering across the resume"
    );
    let report = bench.journal().with_extension("report.md");
    assert!(std::fs::read_to_string(report).is_ok_and(|r| r.contains("Deployment report")));
    // Tracing went to the log file, not over stdout.
    let log = std::fs::read_to_string(bench.dir.path().join("warroom/warroom.log"))
        .expect("the log file");
    assert!(
        log.contains("run starts") && log.contains("run ends"),
        "{log}"
    );
    assert!(!out.contains("run starts"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_a_hold_resumes_with_the_hold_started_again() {
    let bench = bench_with("echo ran >> MARKS").await;
    let run = until(bench.started(&[]), "▶ hold 4s").await;
    kill(run);
    let (code, out, err) = resumed(&bench, &[]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("its time starts again"), "{out}");
    assert!(out.contains("✓ hold 4s with data and no breach"), "{out}");
    assert_eq!(marks(&bench), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_an_intent_and_its_result_is_checked_and_completed() {
    let bench = bench_with("echo ran >> MARKS").await;
    let text = std::fs::read_to_string(&bench.plan_path).expect("plan");
    // Crashing pods answer with errors; this test is about the rollout, not analysis.
    let text = text
        .replace("- image: canary", "- image: stable")
        .replace("error_rate: { max: 0.3 }", "error_rate: { max: 1.0 }");
    std::fs::write(&bench.plan_path, text).expect("stable gets the new image");
    // The stable pods crash for a while: the image step's rollout is under way, not done.
    common::post_fault(
        &bench.sim,
        r#"{"kind":"crashloop","namespace":"shop","deployment":"checkout","for":"6s"}"#,
    )
    .await;
    let run = until(bench.started(&[]), "following the rollout").await;
    kill(run);
    let lines = lines_of(&bench.journal());
    let intent = lines.iter().find_map(|l| match &l.record {
        Record::Intent(i) => Some(i.id),
        _ => None,
    });
    let id = intent.expect("the image step's intent is journaled");
    assert!(
        !lines
            .iter()
            .any(|l| matches!(&l.record, Record::Result { id: r, .. } if *r == id)),
        "killed before its result"
    );
    let (code, out, err) = resumed(&bench, &[]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("resume: image of the stable track"),
        "checked first:\n{out}"
    );
    assert_eq!(marks(&bench), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_step_without_a_result_is_not_run_again_and_headless_stops_with_4() {
    let bench = bench_with("echo ran >> MARKS; sleep 30").await;
    let run = until(bench.started(&[]), "▶ run:").await;
    let deadline = Instant::now() + DEADLINE;
    while marks(&bench) == 0 {
        assert!(Instant::now() < deadline, "the run step never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(run);
    let (code, out, err) = resumed(&bench, &[]).await;
    assert_eq!(code, Some(4), "{out}\n{err}");
    assert!(out.contains("has no recorded result"), "{out}");
    assert!(err.contains("echo ran"), "the exit names the step:\n{err}");
    assert_eq!(marks(&bench), 1, "not run again by itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_left_out_with_a_warning_and_a_changed_plan_is_refused_unless_forced() {
    let bench = bench_with("echo ran >> MARKS").await;
    let run = until(bench.started(&[]), "▶ hold 4s").await;
    kill(run);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(bench.journal())
        .expect("journal");
    std::io::Write::write_all(&mut file, br#"{"v":1,"seq":9999,"at":"2026-"#).expect("torn");
    drop(file);

    let text = std::fs::read_to_string(&bench.plan_path).expect("plan");
    std::fs::write(&bench.plan_path, text.replace("hold: 4s", "hold: 5s")).expect("changed");
    let (code, _, err) = resumed(&bench, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the plan changed"), "{err}");
    assert!(
        err.contains("-       - hold: 4s") && err.contains("+       - hold: 5s"),
        "{err}"
    );

    let (code, out, err) = resumed(&bench, &["--force"]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("the last line is incomplete"), "{err}");
    assert!(out.contains("with a changed plan (--force)"), "{out}");
    let lines = lines_of(&bench.journal());
    let resume = lines.iter().find_map(|l| match &l.record {
        Record::Resume(r) => Some(r.clone()),
        _ => None,
    });
    let resume = resume.expect("a resume line");
    assert!(resume.forced && resume.torn_line, "{resume:?}");
    assert!(!resume.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_refused_while_the_first_holds_the_lease_and_resume_takes_it_over() {
    let bench = bench_with("echo ran >> MARKS").await;
    let text = std::fs::read_to_string(&bench.plan_path).expect("plan");
    std::fs::write(&bench.plan_path, text.replace("hold: 4s", "hold: 10m")).expect("long hold");
    let first = until(bench.started(&[]), "▶ hold 10m").await;
    let other = bench.dir.path().join("other.jsonl");
    let second = bench.run(&["--journal", other.to_str().expect("utf-8")]);
    let (code, out, err) = blocking(move || second.finish()).await;
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("headless test is being run by tester@")
            && err.contains("(lease shop/warroom-headless-test)"),
        "{err}"
    );
    assert!(!other.exists(), "a refused run writes no journal");
    kill(first);
    // The killed run's lease is still live; its own journal takes it over at once.
    let again = until(bench.started(&["--resume"]), "resumed by tester").await;
    kill(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_figures_come_from_the_journal_of_a_real_run_with_and_without_a_rollback() {
    let bench = bench_with("echo ran >> MARKS").await;
    let run = bench.started(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let json = report(&bench.journal(), "json");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("json report");
    let text = parsed.to_string();
    assert!(text.contains("\"met\""), "deploy time within 10m: {json}");
    assert!(text.contains("COMPLETE"), "{json}");
    let md = report_md(&bench.journal());
    assert!(md.contains("# Deployment report: headless test"), "{md}");

    // A second plan on a fresh simulator rolls back on an error spike.
    let rolled = bench_with("echo ran >> MARKS").await;
    let text = std::fs::read_to_string(&rolled.plan_path).expect("plan");
    std::fs::write(&rolled.plan_path, text.replace("hold: 4s", "hold: 1m")).expect("hold");
    common::post_fault(
        &rolled.sim,
        r#"{"kind":"error_spike","namespace":"shop","service":"checkout","track":"canary","ratio":0.9,"for":"120s"}"#,
    )
    .await;
    let run = rolled.started(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(3), "{out}\n{err}");
    let json = report(&rolled.journal(), "json");
    assert!(json.contains("immediate"), "the tier is reported: {json}");
    assert!(json.contains("ROLLED BACK"), "{json}");
    let md = report_md(&rolled.journal());
    assert!(
        md.contains("1m: met"),
        "the tier's time against its target: {md}"
    );
    assert!(md.to_lowercase().contains("recovery"), "{md}");
}

fn report(journal: &Path, format: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "report",
            journal.to_str().expect("utf-8"),
            "--format",
            format,
        ])
        .output()
        .expect("report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn report_md(journal: &Path) -> String {
    report(journal, "md")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_twice_gets_three_attempts_and_never_holds_the_plan_back() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/hook/s3cr3t",
        axum::routing::post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bench = bench_with("echo ran >> MARKS").await;
    let text = std::fs::read_to_string(&bench.plan_path).expect("plan");
    let text =
        format!("{text}notify:\n  webhook: http://127.0.0.1:{port}/hook/s3cr3t\n  on: [done]\n");
    std::fs::write(&bench.plan_path, text).expect("plan with a webhook");
    let started = Instant::now();
    let run = bench.started(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "500, 500, then 200");
    let lines = lines_of(&bench.journal());
    let attempts: Vec<&Line> = lines
        .iter()
        .filter(|l| matches!(l.record, Record::Notify { .. }))
        .collect();
    assert_eq!(attempts.len(), 3, "every attempt journaled");
    let complete = lines
        .iter()
        .find(|l| matches!(&l.record, Record::Status { status } if status == "COMPLETE"))
        .expect("complete");
    assert!(
        complete.at <= attempts[0].at,
        "the plan completed before the first attempt was answered: not held back"
    );
    let everything = format!(
        "{out}{err}{}{}",
        std::fs::read_to_string(bench.journal()).expect("journal"),
        report_md(&bench.journal())
    );
    assert!(
        !everything.contains("s3cr3t"),
        "the webhook URL is a secret"
    );
    assert!(started.elapsed() < DEADLINE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_created_or_found_stops_the_run_before_it_starts() {
    let bench = bench_with("echo ran >> MARKS").await;
    let run = bench.run(&["--journal", "/dev/null/run.jsonl"]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("cannot create journal /dev/null/run.jsonl") && err.contains("not started"),
        "{err}"
    );
    assert!(!out.contains("started the plan"), "{out}");
    assert_eq!(bench.weight("sim-staging", "shop").await, Weight::ZERO);

    let run = bench.run(&["--resume"]);
    let (code, _, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no journal of plan `headless test`"), "{err}");
}
