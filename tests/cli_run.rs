//! `warroom run` before the console opens: kubeconfig, context and API server checks, with the
//! exit codes and messages an operator acts on. Runs the real binary.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_warroom");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("run")
        .args(args)
        .output()
        .expect("warroom runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A kubeconfig with one context, `staging-eu1`, whose server refuses connections.
fn dead_kubeconfig(dir: &Path) -> std::path::PathBuf {
    // Port 9 (discard) on loopback: nothing listens there, so connecting is refused at once.
    let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: { server: \"http://127.0.0.1:9\" }\nusers:\n- name: u\n  user: { token: x }\ncontexts:\n- name: staging-eu1\n  context: { cluster: dead, user: u, namespace: shop }\ncurrent-context: staging-eu1\n";
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("kubeconfig written");
    path
}

#[test]
fn unknown_context_names_it_and_the_known_ones_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dead_kubeconfig(dir.path());
    let out = run(&[
        "plans/demo.yaml",
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("context sim-development"), "{err}");
    assert!(err.contains("known contexts: staging-eu1"), "{err}");
}

/// The demo plan cut down to one environment, so `--context` applies.
fn one_environment_plan(dir: &Path) -> std::path::PathBuf {
    let text = warroom::cli::DEMO_PLAN
        .replace(
            "  staging:     { context: sim-staging, namespace: shop }\n  production:  { context: sim-production, namespace: shop }\n",
            "",
        )
        .replace("environment: staging", "environment: development")
        .replace("environment: production", "environment: development");
    let path = dir.join("one-env.yaml");
    std::fs::write(&path, text).expect("plan written");
    path
}

#[test]
fn unreachable_server_names_server_and_context_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dead_kubeconfig(dir.path());
    let plan = one_environment_plan(dir.path());
    let out = run(&[
        plan.to_str().expect("utf-8"),
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
        "--context",
        "staging-eu1",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
    assert!(err.contains("staging-eu1"), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
}

#[test]
fn context_flag_on_a_plan_with_several_environments_is_refused_exit_2() {
    let out = run(&["plans/demo.yaml", "--context", "staging-eu1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "--context applies only to plans with one environment; this plan's phases use 3"
        ),
        "{err}"
    );
    assert!(err.contains("development,staging,production"), "{err}");
}

#[tokio::test]
async fn reachable_cluster_gets_as_far_as_the_terminal() {
    let plan = warroom::plan::load_file(Path::new("plans/demo.yaml")).expect("demo plan");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    let sim = warroom::sim::server::Simulator::start(
        &plan,
        "127.0.0.1:0".parse().expect("addr"),
        Some(&kc),
        10.0,
    )
    .await
    .expect("simulator starts");
    let kc = kc.to_str().expect("utf-8").to_string();
    let prom = sim.prometheus.clone();
    // The binary blocks; run it off the runtime so the simulator keeps answering.
    let out = tokio::task::spawn_blocking(move || {
        run(&[
            "plans/demo.yaml",
            "--kubeconfig",
            &kc,
            "--prometheus",
            &prom,
        ])
    })
    .await
    .expect("joined");
    let err = stderr(&out);
    // Context, server and Prometheus were accepted; only the missing tty stops it here.
    assert!(err.contains("the console needs a terminal"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
}
