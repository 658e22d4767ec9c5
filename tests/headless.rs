//! `warroom run --headless` against the simulator over real HTTP: the real binary carries out
//! plans, analysis acts on injected faults, rollbacks finish or fail honestly, preflight stops
//! bad runs before anything changes. Waits poll with deadlines; nothing sleeps for state.

mod common;

use common::headless::{BIN, Bench, DEADLINE, blocking, plan_text};

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use warroom::app::console::router_for;
use warroom::cluster::client::connect;
use warroom::plan::Weight;

fn flag_value(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data.as_ref().and_then(|d| d.get(key)).cloned()
}

const ONE_ENV: &str = r#"
environments:
  dev: { context: sim-dev, namespace: shop }
"#;

const ROLLBACK: &str = r#"
rollback:
  immediate:
    target: 5m
    actions:
      - weight: 0
      - flag: { configmap: checkout-flags, key: new_payment_flow, value: "false" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_kind_is_carried_out_to_the_end() {
    let body = format!(
        r#"{ONE_ENV}
phases:
  - name: Everything
    environment: dev
    steps:
      - config: snapshot
      - check: image scanned
      - run: echo "phase=$WARROOM_PHASE ns=$WARROOM_NAMESPACE ctx=$WARROOM_CONTEXT" && kubectl config current-context 2>/dev/null || true
      - flag: {{ configmap: checkout-flags, key: new_payment_flow, value: "canary-only" }}
      - image: canary
      - wait: ready
      - undo: canary
      - wait: {{ for: ready, timeout: 2m }}
      - image: canary
      - scale: {{ track: canary, replicas: 2 }}
      - wait: ready
      - weight: 20
      - hold: 3s
      - weight: {{ to: 40, step: 10, every: 2s, comment: "paced" }}
      - approve: tester
      - pause: look at it
      - promote: {{}}
      - config: restore
      - notify: all done
{ROLLBACK}"#
    );
    // A tag the simulator's canary does not run yet, so `image` makes a new revision for `undo`.
    let text = plan_text(&body).replace("checkout:2.4.0", "checkout:2.5.0");
    let bench = Bench::new(&text).await;
    // The simulator seeds the canary with the plan's image; an older one first gives the
    // `image` step something to change and `undo` a revision to go back to.
    let client = bench.client("sim-dev").await;
    warroom::cluster::actions::set_image(
        &client,
        "shop",
        "checkout-canary",
        Some("app"),
        "registry.example.com/shop/checkout:2.3.0",
    )
    .await
    .expect("older canary image");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let status = warroom::cluster::actions::status::wait_complete(
        &client,
        "shop",
        "checkout-canary",
        deadline,
    )
    .await
    .expect("rollout status");
    assert!(status.is_done(), "{status:?}");
    let run = bench.run(&["--auto-approve=all"]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    for expected in [
        "phase=Everything ns=shop ctx=sim-dev",
        "✓ run:",
        "✓ image: canary",
        "rolled back",
        "scaled from",
        "canary weight 20% → 30% (paced",
        "✓ approval: tester",
        "pause: look at it — passed through --auto-approve",
        "promoted: checkout runs registry.example.com/shop/checkout:2.5.0",
        "ConfigMaps checkout-flags restored",
        "plan complete",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let stable = deployments.get("checkout").await.expect("stable");
    let image = stable
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].image.clone().unwrap_or_default());
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/shop/checkout:2.5.0")
    );
    let canary = deployments.get("checkout-canary").await.expect("canary");
    assert_eq!(
        canary.spec.and_then(|s| s.replicas),
        Some(0),
        "promote scales the canary to 0"
    );
    assert_eq!(bench.weight("sim-dev", "shop").await, Weight::ZERO);
    let cms: Api<ConfigMap> = Api::namespaced(client, "shop");
    let cm = cms.get("checkout-flags").await.expect("configmap");
    assert_eq!(
        flag_value(&cm, "new_payment_flow").as_deref(),
        Some("true"),
        "restored to the snapshot taken by `config: snapshot`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_step_fails_the_step_and_headless_stops_with_4() {
    let body = format!(
        r#"{ONE_ENV}
phases:
  - name: Dev
    environment: dev
    steps:
      - run: echo about to fail >&2; exit 3
      - weight: 20
{ROLLBACK}"#
    );
    let bench = Bench::new(&plan_text(&body)).await;
    let run = bench.run(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(4), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("stderr: about to fail"), "{out}");
    assert!(out.contains("exited with code 3"), "{out}");
    assert!(out.contains("headless run stops: step failed"), "{out}");
    assert_eq!(
        bench.weight("sim-dev", "shop").await,
        Weight::ZERO,
        "the weight step after it never ran"
    );
}

const CANARY_ERROR_SPIKE: &str = r#"{"kind":"error_spike","namespace":"shop","service":"checkout","track":"canary","ratio":0.5,"for":"120s"}"#;

const HOLD_PLAN: &str = r#"
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 20
      - hold: 60s
      - weight: 50
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_during_a_hold_rolls_back_automatically_and_exits_3() {
    let bench = Bench::new(&plan_text(&format!("{ONE_ENV}{HOLD_PLAN}{ROLLBACK}"))).await;
    let run = bench.run_into_the_hold().await;
    common::post_fault(&bench.sim, CANARY_ERROR_SPIKE).await;
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(3), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("error_rate canary") && out.contains("(2 of 2) → rollback immediate in 2s"),
        "the verdict with its numbers: {out}"
    );
    assert!(out.contains("✓ rollback: weight → 0%"), "{out}");
    assert!(
        out.contains("✓ rollback: flag: checkout-flags/new_payment_flow = false"),
        "{out}"
    );
    assert!(out.contains("ROLLED BACK (immediate)"), "{out}");
    assert!(!out.contains("✓ hold 1m"), "the hold did not pass: {out}");
    assert_eq!(bench.weight("sim-dev", "shop").await, Weight::ZERO);
    let cms: Api<ConfigMap> = Api::namespaced(bench.client("sim-dev").await, "shop");
    let cm = cms.get("checkout-flags").await.expect("configmap");
    assert_eq!(
        flag_value(&cm, "new_payment_flow").as_deref(),
        Some("false")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_during_a_hold_never_passes_it_and_stops_with_4() {
    let bench = Bench::new(&plan_text(&format!("{ONE_ENV}{HOLD_PLAN}{ROLLBACK}"))).await;
    let run = bench.run_into_the_hold().await;
    common::post_fault(&bench.sim, r#"{"kind":"prometheus_outage","for":"120s"}"#).await;
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(4), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("no answer from Prometheus"), "{out}");
    assert!(out.contains("paused by analysis"), "{out}");
    assert!(!out.contains("✓ hold"), "{out}");
    assert_eq!(bench.weight("sim-dev", "shop").await, Weight::clamped(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rollback_action_is_rollback_failed_naming_it_and_exits_1() {
    let bench = Bench::new(&plan_text(&format!("{ONE_ENV}{HOLD_PLAN}{ROLLBACK}"))).await;
    let run = bench.run_into_the_hold().await;
    common::post_fault(
        &bench.sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"configmaps","namespace":"shop"}"#,
    )
    .await;
    common::post_fault(&bench.sim, CANARY_ERROR_SPIKE).await;
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("✓ rollback: weight → 0%"),
        "weight 0 still lands: {out}"
    );
    assert!(
        out.contains("ROLLBACK FAILED (immediate)")
            && out.contains("flag: checkout-flags/new_payment_flow = false: "),
        "{out}"
    );
    assert!(out.to_lowercase().contains("forbidden"), "{out}");
    assert!(!out.contains("ROLLED BACK"), "{out}");
    assert!(err.contains("ROLLBACK FAILED"), "{err}");
}

const TWO_NAMESPACES: &str = r#"
environments:
  staging: { context: sim-staging, namespace: shop-staging }
  production: { context: sim-production, namespace: shop-prod }
phases:
  - name: Staging
    environment: staging
    steps:
      - weight: 30
  - name: Production
    environment: production
    steps:
      - weight: 60
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_phase_writes_only_to_its_own_namespace() {
    let bench = Bench::new(&plan_text(&format!("{TWO_NAMESPACES}{ROLLBACK}"))).await;
    let run = bench.run(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("now showing environment production (shop-prod @ sim-production)"),
        "{out}"
    );
    assert_eq!(
        bench.weight("sim-staging", "shop-staging").await,
        Weight::clamped(30)
    );
    assert_eq!(
        bench.weight("sim-production", "shop-prod").await,
        Weight::clamped(60)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_verb_in_one_environment_stops_the_preflight_with_2_and_changes_nothing() {
    let bench = Bench::new(&plan_text(&format!("{TWO_NAMESPACES}{ROLLBACK}"))).await;
    common::post_fault(
        &bench.sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"httproutes","namespace":"shop-prod"}"#,
    )
    .await;
    let run = bench.run(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(2), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains(
            "cannot patch httproutes.gateway.networking.k8s.io in namespace shop-prod (context sim-production)"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        bench.weight("sim-staging", "shop-staging").await,
        Weight::ZERO
    );
    assert_eq!(
        bench.weight("sim-production", "shop-prod").await,
        Weight::ZERO
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_weight_writes_are_at_least_every_apart() {
    let body = format!(
        r#"{ONE_ENV}
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: {{ to: 30, step: 10, every: 2s }}
{ROLLBACK}"#
    );
    let bench = Bench::new(&plan_text(&body)).await;
    let conn = connect(Some(&bench.sim.kubeconfig), Some("sim-dev"))
        .await
        .expect("connects");
    let router = router_for(&bench.plan, &conn, "shop").expect("router");
    let mut changes = router.watch();
    let seen = tokio::spawn(async move {
        let mut seen: Vec<(Instant, Weight)> = Vec::new();
        while let Some(Ok(w)) = changes.next().await {
            if seen.last().is_none_or(|(_, last)| *last != w) {
                seen.push((Instant::now(), w));
            }
            if w == Weight::clamped(30) {
                break;
            }
        }
        seen
    });
    let run = bench.run(&[]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let seen = tokio::time::timeout(DEADLINE, seen)
        .await
        .expect("watch saw 30%")
        .expect("joined");
    let weights: Vec<u8> = seen.iter().map(|(_, w)| w.percent()).collect();
    assert_eq!(weights, [0, 10, 20, 30], "in order, one step at a time");
    for pair in seen.windows(2).skip(1) {
        let apart = pair[1].0.duration_since(pair[0].0);
        // The watch adds its own delay to each; a write is never sent before `every` has passed.
        assert!(
            apart >= Duration::from_millis(1900),
            "{apart:?} between writes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_the_steps_and_run_commands_and_changes_nothing() {
    let body = format!(
        r#"{ONE_ENV}
phases:
  - name: Dev
    environment: dev
    steps:
      - run: {{ cmd: ./migrate.sh, timeout: 5m }}
      - weight: 20
{ROLLBACK}"#
    );
    let bench = Bench::new(&plan_text(&body)).await;
    let plan_path = bench.plan_path.clone();
    let kc = bench.sim.kubeconfig.clone();
    let prom = bench.sim.prometheus.clone();
    let out = blocking(move || {
        Command::new(BIN)
            .args(["run", "--dry-run", "--prometheus", &prom, "--kubeconfig"])
            .arg(&kc)
            .arg(&plan_path)
            .output()
            .expect("runs")
    })
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("run `sh -c \"./migrate.sh\"` in the plan's directory, timeout 5m"),
        "{stdout}"
    );
    assert!(stdout.contains("weight → 20%"), "{stdout}");
    assert!(
        stdout.contains("rollback immediate (target 5m):"),
        "{stdout}"
    );
    assert!(stderr.contains("preflight:"), "{stderr}");
    assert_eq!(bench.weight("sim-dev", "shop").await, Weight::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plan_runs_to_the_end_with_its_weights_in_order_and_promote_done() {
    // The demo plan as shipped, its holds shortened so the test takes seconds, not minutes.
    let text = warroom::cli::DEMO_PLAN
        .replace("hold: 20s", "hold: 4s")
        .replace("hold: 30s", "hold: 4s")
        .replace("hold: 45s", "hold: 4s");
    let bench = Bench::new(&text).await;
    let conn = connect(Some(&bench.sim.kubeconfig), Some("sim-development"))
        .await
        .expect("connects");
    let router = router_for(&bench.plan, &conn, "shop").expect("router");
    let mut changes = router.watch();
    let seen = tokio::spawn(async move {
        let mut seen: Vec<u8> = Vec::new();
        while let Some(Ok(w)) = changes.next().await {
            if seen.last() != Some(&w.percent()) {
                seen.push(w.percent());
            }
            if seen.len() >= 6 {
                break;
            }
        }
        seen
    });
    let run = bench.run(&["--auto-approve=all"]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    for phase in ["Development", "Staging", "Production"] {
        assert!(
            out.contains(&format!("phase {phase}")) || phase == "Development",
            "{out}"
        );
    }
    assert!(out.contains("✓ promote"), "{out}");
    let seen = tokio::time::timeout(DEADLINE, seen)
        .await
        .expect("the watch saw every weight")
        .expect("joined");
    assert_eq!(seen, [0, 10, 25, 50, 100, 0], "promote ends at weight 0");
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), "shop");
    let canary = deployments.get("checkout-canary").await.expect("canary");
    assert_eq!(canary.spec.and_then(|s| s.replicas), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_headless_run_cleanly_with_4() {
    let bench = Bench::new(&plan_text(&format!("{ONE_ENV}{HOLD_PLAN}{ROLLBACK}"))).await;
    let run = bench.run_into_the_hold().await;
    let pid = run.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(4), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("SIGTERM: stopping"), "{out}");
    assert!(
        err.contains("stopped before completion (interrupted (SIGTERM)) at Dev: hold 1m"),
        "{err}"
    );
    assert_eq!(
        bench.weight("sim-dev", "shop").await,
        Weight::clamped(20),
        "left as it was: nothing rolled back, nothing advanced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_time_level_environment_and_text() {
    let body = format!(
        r#"{ONE_ENV}
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 20
{ROLLBACK}"#
    );
    let bench = Bench::new(&plan_text(&body)).await;
    let run = bench.run(&["--json"]);
    let (code, out, err) = blocking(move || run.finish()).await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(records.iter().all(|r| {
        r["at"].is_string()
            && r["level"].is_string()
            && r["environment"] == "dev"
            && r["text"].is_string()
    }));
    assert!(records.iter().any(|r| {
        r["level"] == "operator"
            && r["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("tester started the plan"))
    }));
    assert!(records.iter().any(|r| r["text"] == "plan complete"));
}
