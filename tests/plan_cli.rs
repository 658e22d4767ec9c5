//! `warroom validate` and `warroom schema` as scripts see them: output streams and exit codes.
//! Runs the built binary; the checks themselves are tested in the library.

use std::path::Path;
use std::process::Command;

fn warroom() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warroom"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn validate_accepts_all_example_plans_with_exit_0() {
    let out = warroom()
        .args([
            "validate",
            "plans/demo.yaml",
            "plans/checkout-canary.yaml",
            "plans/payments-blue-green.yaml",
            "plans/platform-infra.yaml",
        ])
        .output()
        .expect("run warroom");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("4 plan(s) checked: 0 error(s), 0 warning(s)"),
        "{stderr}"
    );
}

#[test]
fn validate_reports_every_file_with_location_source_line_and_caret_and_exits_2() {
    let bad = "tests/fixtures/bad-plans/01-unknown-top-level-key.yaml";
    let warn = "tests/fixtures/bad-plans/29-hold-shorter-than-two-intervals.yaml";
    let out = warroom()
        .args(["validate", bad, warn])
        .output()
        .expect("run warroom");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "{bad}:5:1: error: unknown key `servce` in the plan; did you mean `service`?\n  servce: checkout\n  ^"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{warn}:32:15: warning: hold 8s")),
        "{stderr}"
    );
}

#[test]
fn validate_with_only_warnings_exits_0() {
    let warn = "tests/fixtures/bad-plans/29-hold-shorter-than-two-intervals.yaml";
    let out = warroom()
        .args(["validate", warn])
        .output()
        .expect("run warroom");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn validate_of_a_missing_file_is_bad_input() {
    let out = warroom()
        .args(["validate", "plans/does-not-exist.yaml"])
        .output()
        .expect("run warroom");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read plan"));
}

#[test]
fn schema_prints_the_committed_schema() {
    let out = warroom().arg("schema").output().expect("run warroom");
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/plan.schema.json"))
            .expect("schema file");
    assert!(
        out.stdout == committed,
        "warroom schema differs from plans/plan.schema.json"
    );
}

#[test]
fn validate_reports_a_tab_in_indentation_at_the_tab_not_the_line_above() {
    let tab = "tests/fixtures/bad-plans/45-tab-indentation.yaml";
    let out = warroom()
        .args(["validate", tab])
        .output()
        .expect("run warroom");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{tab}:12:1: error: tab used for indentation; YAML indents with spaces\n  \tcanary: checkout-canary\n  ^\n"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("plain scalar"), "{stderr}");
    assert!(
        stderr.contains("1 plan(s) checked: 1 error(s), 0 warning(s)"),
        "{stderr}"
    );
}

#[test]
fn validate_reports_a_step_type_error_and_a_cross_field_error_in_one_run() {
    let bad = "tests/fixtures/bad-plans/46-bad-step-and-unknown-environment.yaml";
    let out = warroom()
        .args(["validate", bad])
        .output()
        .expect("run warroom");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{bad}:28:18: error: phase `Staging` runs in unknown environment `nowhere`; defined: staging\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{bad}:34:17: error: weight 150 is outside 0–100\n"
        )),
        "{stderr}"
    );
    // The weight going from 50 to 5 past the unparsed step is no finding: that step may have set any weight.
    assert!(
        stderr.contains("1 plan(s) checked: 2 error(s), 0 warning(s)"),
        "{stderr}"
    );
}
