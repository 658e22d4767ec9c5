//! `warroom rehearse` as a person runs it: the binary on real plan files, its exit code, its
//! JSON report. Every plan in `plans/` must rehearse clean; plans whose rollback cannot work
//! must fail naming the action; a rehearsal never contacts what the plan names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_warroom");

/// `warroom rehearse PLAN --format json ARGS…` with short holds; the JSON report, the exit
/// code and stderr.
fn rehearse(plan: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let out: Output = Command::new(BIN)
        .arg("rehearse")
        .arg(plan)
        .args([
            "--format",
            "json",
            "--max-hold",
            "2s",
            "--scenario-limit",
            "4m",
        ])
        .args(args)
        // Whatever the environment says, the rehearsal must not need it.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("warroom-rehearse-test-state"),
        )
        .output()
        .expect("warroom runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

fn plans_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans")
}

/// The scenario of that name in a JSON report.
fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no scenario {name} in {report:#}"))
}

/// The demo plan with `edit` applied to its text, written next to a scratch directory.
fn demo_with(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(plans_dir().join("demo.yaml")).expect("demo plan");
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit of {name} changed nothing");
    let path = dir.join(name);
    std::fs::write(&path, edited).expect("write plan");
    path
}

#[test]
fn every_plan_in_plans_rehearses_to_exit_0() {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(plans_dir())
        .expect("plans/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    plans.sort();
    assert!(plans.len() >= 4, "{plans:?}");
    // Every scenario of every plan at once: a scenario mostly waits on its holds (about half a
    // core for all of them together), so the wall time is the longest scenario's.
    let runs: Vec<_> = plans
        .into_iter()
        .map(|plan| std::thread::spawn(move || (rehearse(&plan, &["--jobs", "12"]), plan)))
        .collect();
    for run in runs {
        let ((code, report, stderr), plan) = run.join().expect("rehearsal thread");
        assert_eq!(code, Some(0), "{}:\n{stderr}\n{report:#}", plan.display());
        assert_eq!(report["passed"], true, "{}", plan.display());
        let tiers = report["tiers_defined"].as_u64().unwrap_or(0);
        assert!(tiers >= 1, "{}", plan.display());
        // A tier whose `run` actions were only printed is not counted as passed (the
        // platform plan's gradual and full tiers are Helm, Ansible and Terraform commands).
        let printed = report["tiers_printed_only"].as_array().map_or(0, Vec::len) as u64;
        let line = report["rollback_success"].as_str().unwrap_or_default();
        assert!(
            line.starts_with(&format!(
                "Rollback success: {} of {tiers} tiers rehearsed and passed",
                tiers - printed
            )),
            "{}: {line}",
            plan.display()
        );
        if plan.ends_with("platform-infra.yaml") {
            assert_eq!(printed, 2, "{line}");
            assert!(line.contains("gradual, full only in part"), "{line}");
        }
        for s in report["scenarios"].as_array().expect("scenarios") {
            assert_eq!(s["passed"], true, "{}: {s:#}", plan.display());
        }
        // Each tier's time to safety is measured against its target.
        for s in report["scenarios"].as_array().expect("scenarios") {
            if s["name"].as_str().is_some_and(|n| n.starts_with("tier-")) {
                assert_eq!(s["tier"]["outcome"], "ROLLED BACK", "{s:#}");
                assert!(s["tier"]["done_ms"].as_u64().is_some(), "{s:#}");
            }
        }
    }
}

#[test]
fn a_tier_that_leaves_the_canary_serving_fails_and_says_to_add_weight_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The immediate tier always starts with weight 0 (the engine puts it first); a gradual
    // tier does only what it lists.
    let plan = demo_with(dir.path(), "no-weight-0.yaml", |t| {
        t.replace(
            "rollback:\n",
            "rollback:\n  gradual:\n    target: 30m\n    actions:\n      - flag: { configmap: checkout-flags, key: new_payment_flow, value: \"false\" }\n",
        )
    });
    let (code, report, stderr) = rehearse(&plan, &["--scenario", "tier-gradual"]);
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    let s = scenario(&report, "tier-gradual");
    assert_eq!(s["passed"], false);
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("the canary weight is"), "{reason}");
    assert!(
        s["fix"]
            .as_str()
            .is_some_and(|f| f.contains("add `- weight: 0`")),
        "{s:#}"
    );
    assert!(
        stderr.contains("rehearsal failed: tier-gradual"),
        "{stderr}"
    );
}

#[test]
fn a_config_restore_with_no_configmap_named_fails_naming_the_action() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = demo_with(dir.path(), "restore-nothing.yaml", |t| {
        t.replace(
            "      - flag: { configmap: checkout-flags, key: new_payment_flow, value: \"false\" }",
            "      - config: restore",
        )
    });
    let (code, report, stderr) = rehearse(&plan, &["--scenario", "tier-immediate"]);
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    let s = scenario(&report, "tier-immediate");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`config: restore`"), "{reason}");
    assert!(reason.contains("names no ConfigMap"), "{reason}");
    assert!(
        s["fix"].as_str().is_some_and(|f| f.contains("flag")),
        "{s:#}"
    );
}

#[test]
fn undoing_the_canary_fails_naming_the_action_and_what_to_do_instead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = demo_with(dir.path(), "undo-canary.yaml", |t| {
        t.replace(
            "      - weight: 0\n",
            "      - weight: 0\n      - undo: canary\n",
        )
    });
    let (code, report, stderr) = rehearse(&plan, &["--scenario", "tier-immediate"]);
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    let s = scenario(&report, "tier-immediate");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("undo"), "{reason}");
    assert!(reason.contains("failed"), "{reason}");
    assert_eq!(s["tier"]["outcome"], "ROLLBACK FAILED", "{s:#}");
    assert!(
        s["fix"]
            .as_str()
            .is_some_and(|f| f.contains("undo the stable only")),
        "{s:#}"
    );
}

#[test]
fn a_rehearsed_run_step_runs_against_the_simulator_and_its_failure_fails_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    // KUBECONFIG must point at the simulator (loopback), never at the one the test set.
    let passes = demo_with(dir.path(), "run-ok.yaml", |t| {
        t.replace(
            "      - check: Container image built and scanned\n",
            "      - check: Container image built and scanned\n      - run: { cmd: 'grep -q 127.0.0.1 \"$KUBECONFIG\"', rehearse: true }\n      - run: exit 7\n",
        )
    });
    let (code, report, stderr) = rehearse(&passes, &["--scenario", "straight"]);
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");

    let fails = demo_with(dir.path(), "run-fails.yaml", |t| {
        t.replace(
            "      - check: Container image built and scanned\n",
            "      - check: Container image built and scanned\n      - run: { cmd: 'exit 3', rehearse: true }\n",
        )
    });
    let (code, report, stderr) = rehearse(&fails, &["--scenario", "straight"]);
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    let s = scenario(&report, "straight");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("run: exit 3"), "{reason}");
    assert!(
        s["fix"]
            .as_str()
            .is_some_and(|f| f.contains("rehearse: true")),
        "{s:#}"
    );
}

#[test]
fn a_plan_pointing_at_unreachable_clusters_still_rehearses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = demo_with(dir.path(), "unreachable.yaml", |t| {
        t.replace(
            "context: sim-production, namespace: shop }",
            "context: prod-eu1, namespace: shop, prometheus: \"http://10.255.255.1:9090\", bearer_token_file: /nonexistent/token }",
        )
    });
    let (code, report, stderr) = rehearse(&plan, &["--scenario", "straight"]);
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    assert_eq!(scenario(&report, "straight")["passed"], true);
}

#[test]
fn an_unknown_scenario_is_bad_input_and_lists_the_plans_scenarios() {
    let (code, _, stderr) = rehearse(&plans_dir().join("demo.yaml"), &["--scenario", "nope"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no scenario called nope"), "{stderr}");
    assert!(stderr.contains("breach-production"), "{stderr}");
}

#[test]
fn an_api_outage_in_the_middle_of_a_paced_weight_step_is_ridden_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = demo_with(dir.path(), "paced.yaml", |t| {
        t.replace(
            "      - weight: 50\n",
            "      - weight: { to: 50, step: 10, every: 5s }\n",
        )
    });
    let (code, report, stderr) = rehearse(&plan, &["--scenario", "api-outage"]);
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    let s = scenario(&report, "api-outage");
    assert!(
        s["expected"]
            .as_str()
            .is_some_and(|e| e.contains("in the middle of a paced weight step")),
        "{s:#}"
    );
    let observed = s["observed"].as_str().unwrap_or_default();
    assert!(
        observed.contains("injected at Production: weight"),
        "{observed}"
    );
    assert!(observed.contains("tried again"), "{observed}");
}
