//! `warroom report` as scripts see it: stdout, stderr and exit codes on journal files the test
//! writes itself (from the journal's own types, independent of the run that normally writes them).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use warroom::journal::record::{EnvironmentRecord, PlanRecord, Start};
use warroom::journal::{Line, OperatorCommand, Record, VERSION};

const PLAN: &str = "version: 1
name: checkout 2.4.0
service: checkout
strategy: rolling
environments:
  staging: { namespace: shop }
workload: { name: checkout }
success:
  max_deploy_time: 15m
phases:
  - name: Staging
    environment: staging
    steps:
      - image: stable
notify:
  webhook: https://hooks.slack.com/…
";

fn line(seq: u64, secs: u64, record: Record) -> Line {
    Line {
        v: VERSION,
        seq,
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs),
        record,
    }
}

fn journal() -> String {
    let start = Record::Start(Start {
        run_id: "run-1".into(),
        warroom: "0.1.0".into(),
        plan: PlanRecord {
            path: "plans/checkout.yaml".into(),
            name: "checkout 2.4.0".into(),
            sha256: "0".repeat(64),
            text: PLAN.into(),
        },
        environments: vec![EnvironmentRecord {
            name: "staging".into(),
            context: "stg".into(),
            namespace: "shop".into(),
        }],
        operator: "alice".into(),
        host: "laptop".into(),
        mode: "headless".into(),
        auto_approve: "gates".into(),
        override_window: None,
    });
    let step = |state: &str| Record::Step {
        phase: 0,
        phase_name: "Staging".into(),
        slot: 0,
        label: "image stable".into(),
        state: state.into(),
        detail: None,
    };
    let records = vec![
        (0, start),
        (
            1,
            Record::Command {
                operator: "alice".into(),
                command: OperatorCommand::Advance,
            },
        ),
        (
            1,
            Record::Status {
                status: "RUNNING".into(),
            },
        ),
        (1, step("running")),
        (61, step("done")),
        (
            61,
            Record::Status {
                status: "COMPLETE".into(),
            },
        ),
        (
            62,
            Record::End {
                exit: 0,
                status: "COMPLETE".into(),
                reason: None,
            },
        ),
    ];
    records
        .into_iter()
        .enumerate()
        .map(|(i, (secs, r))| {
            serde_json::to_string(&line(i as u64, secs, r)).expect("serializes") + "\n"
        })
        .collect()
}

fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warroom"))
        .arg("report")
        .args(args)
        .output()
        .expect("run warroom")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write journal");
    path.display().to_string()
}

#[test]
fn markdown_is_the_default_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "run.journal", &journal());
    let out = report(&[&path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("# Deployment report: checkout 2.4.0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| Deploy time | 15m | ✅ met | 1m |"),
        "{stdout}"
    );
    assert!(!stdout.contains("hooks.slack.com"), "{stdout}");
    let md = report(&[&path, "--format", "md"]);
    assert_eq!(md.stdout, out.stdout);
}

#[test]
fn json_exits_0_and_parses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "run.journal", &journal());
    let out = report(&[&path, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(value["summary"]["plan"], "checkout 2.4.0");
    assert_eq!(value["summary"]["status"], "COMPLETE");
    assert_eq!(value["success"]["targets"][0]["verdict"], "met");
}

#[test]
fn a_torn_last_line_still_reports_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let torn = journal() + r#"{"v":1,"seq":7,"at":"2027-01"#;
    let path = write(dir.path(), "torn.journal", &torn);
    let out = report(&[&path]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("line 8 is torn"));
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let out = report(&["/nonexistent/run.journal"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("cannot read /nonexistent/run.journal"),
        "{stderr}"
    );
}

#[test]
fn a_damaged_journal_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines: Vec<String> = journal().lines().map(str::to_string).collect();
    lines[2] = "not json".into();
    let path = write(dir.path(), "bad.journal", &(lines.join("\n") + "\n"));
    let out = report(&[&path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}: line 3: not a JSON line")),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_subcommand() {
    let out = report(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("--format <FORMAT>"), "{stdout}");
    assert!(stdout.contains("success targets"), "{stdout}");
}
