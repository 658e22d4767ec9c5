//! Preflight against the simulator over real HTTP, through the kubeconfig it writes: the demo
//! plan passes, and each kind of problem (RBAC, a missing object, Prometheus, a context) fails it.

mod common;

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use warroom::metrics::prometheus::{PromClient, PromConfig};
use warroom::plan::{Plan, TrackName};
use warroom::preflight::{self, Access, CheckLine, CheckStatus, Options};
use warroom::sim::server::Simulator;

const DEADLINE: Duration = Duration::from_secs(30);
const ENVIRONMENTS: [(&str, &str); 3] = [
    ("development", "sim-development"),
    ("staging", "sim-staging"),
    ("production", "sim-production"),
];

fn options(sim: &Simulator) -> Options {
    Options {
        kubeconfig: Some(sim.kubeconfig.clone()),
        context: None,
        prometheus: Some(sim.prometheus.clone()),
        timeout: Duration::from_secs(5),
    }
}

/// The demo plan with its first phase only (development), for checks of one environment.
fn one_environment_plan() -> Plan {
    let mut plan = (*common::demo_plan()).clone();
    plan.phases.truncate(1);
    plan
}

fn lines_of<'a>(lines: &'a [CheckLine], environment: &str) -> Vec<&'a CheckLine> {
    lines
        .iter()
        .filter(|l| l.environment == environment)
        .collect()
}

fn show(lines: &[CheckLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{:?} {}: {}", l.status, l.environment, l.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls until the stable track's demo queries return numbers, so Prometheus checks see data.
async fn wait_for_stable_data(sim: &Simulator) {
    let client = PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_secs(5)))
        .expect("prometheus client");
    let started = Instant::now();
    loop {
        let mut missing = Vec::new();
        for p in common::demo_probes()
            .iter()
            .filter(|p| p.track == TrackName::Stable)
        {
            match client
                .query_scalar(&p.promql, Some(SystemTime::now()))
                .await
            {
                Ok(Some(v)) if v.is_finite() => {}
                _ => missing.push(p.metric.clone()),
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no stable data before the deadline for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// resourceVersions of every object the preflight reads, to show it wrote none of them.
async fn versions(conn: &warroom::cluster::client::Connection) -> Vec<Option<String>> {
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), "shop");
    let configmaps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), "shop");
    let mut ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
    ));
    ar.plural = "httproutes".into();
    let routes: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), "shop", &ar);
    let mut out = Vec::new();
    for name in ["checkout", "checkout-canary"] {
        let d = deployments.get(name).await.expect("deployment");
        // Controllers update status on their own; a write by the preflight would bump spec.
        out.push(d.metadata.generation.map(|g| g.to_string()));
    }
    out.push(
        configmaps
            .get("checkout-flags")
            .await
            .expect("configmap")
            .metadata
            .resource_version,
    );
    out.push(
        routes
            .get("checkout")
            .await
            .expect("route")
            .metadata
            .resource_version,
    );
    out
}

#[tokio::test]
async fn the_demo_plan_passes_with_one_line_per_check_per_environment_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, conn) = common::start_demo_sim(dir.path()).await;
    wait_for_stable_data(&sim).await;
    let plan = common::demo_plan();
    let before = versions(&conn).await;

    let started = Instant::now();
    let result = preflight::run(&plan, &options(&sim)).await;
    let took = started.elapsed();

    assert!(result.passed(), "{}", show(&result.lines));
    // Concurrent requests: three environments take about as long as one.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(
        result
            .envs
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["development", "staging", "production"]
    );
    for (env, context) in ENVIRONMENTS {
        let link = result.env(env).expect("environment connected");
        assert_eq!(link.context, context);
        assert_eq!(link.namespace, "shop");
        assert_eq!(link.prometheus, sim.prometheus);
        let lines = lines_of(&result.lines, env);
        let expected_passes = [
            format!("context {context} (server "),
            "API server answers (Kubernetes v1.33.1)".to_string(),
            "permissions allowed in namespace shop".to_string(),
            "deployment shop/checkout exists".to_string(),
            "deployment shop/checkout-canary exists".to_string(),
            "httproute shop/checkout exists".to_string(),
            "configmap shop/checkout-flags exists".to_string(),
            format!("metric queries answered by prometheus {}", sim.prometheus),
        ];
        for wanted in &expected_passes {
            let found: Vec<_> = lines
                .iter()
                .filter(|l| l.status == CheckStatus::Pass && l.text.contains(wanted.as_str()))
                .collect();
            assert_eq!(found.len(), 1, "{wanted}:\n{}", show(&result.lines));
        }
        // At weight 0 the canary serves no requests, so its request ratios have no data: a
        // warning each, nothing else.
        let others: Vec<_> = lines
            .iter()
            .filter(|l| l.status != CheckStatus::Pass)
            .collect();
        assert!(
            others.iter().all(|l| l.status == CheckStatus::Warn
                && l.text.starts_with("no data for ")
                && l.text.contains("(canary)")),
            "{}",
            show(&result.lines)
        );
        assert_eq!(
            lines.len(),
            expected_passes.len() + others.len(),
            "{}",
            show(&result.lines)
        );
    }
    assert_eq!(
        versions(&conn).await,
        before,
        "the preflight wrote to the cluster"
    );
}

#[test]
fn required_access_of_the_demo_plan_covers_the_route_patch_and_the_flag_configmap() {
    let plan = common::demo_plan();
    let access = preflight::required_access(&plan, "production");
    let has = |verb: &str, group: &str, resource: &str| {
        access
            .iter()
            .any(|a| a.verb == verb && a.group == group && a.resource == resource)
    };
    assert!(has("patch", "gateway.networking.k8s.io", "httproutes"));
    assert!(has("watch", "gateway.networking.k8s.io", "httproutes"));
    assert!(has("get", "", "configmaps"), "the rollback tier's flag");
    assert!(has("patch", "", "configmaps"), "the rollback tier's flag");
    assert!(has("watch", "", "pods"), "the cluster watch");
    assert!(has("list", "apps", "replicasets"), "the cluster watch");
    // Its promote scales the canary to 0 through the scale subresource; it restores nothing.
    assert!(
        access.iter().any(|a| a.verb == "patch"
            && a.resource == "deployments"
            && a.subresource == Some("scale")),
        "{access:?}"
    );
    assert!(!has("create", "", "configmaps"));
    let mut sorted: Vec<Access> = access.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, access, "sorted and deduplicated");
    assert_eq!(
        preflight::environments_used(&plan),
        ["development", "staging", "production"]
    );
}

/// A replicas-router plan whose phases scale, set images, wait, undo and restore ConfigMaps,
/// in two environments used twice each.
const BUSY_PLAN: &str = r#"
version: 1
name: web 1.1
service: web
strategy: canary
environments:
  qa: { context: qa, namespace: web }
  live: { context: live, namespace: web }
workload: { name: web, canary: web-canary, image: "web:1.1" }
traffic: { router: replicas }
phases:
  - name: qa
    environment: qa
    steps:
      - image: canary
      - wait: ready
      - scale: { track: canary, replicas: 2 }
  - name: live
    environment: live
    steps:
      - config: snapshot
      - flag: { configmap: web-flags, key: beta, value: "true" }
  - name: qa again
    environment: qa
    steps:
      - promote: {}
rollback:
  immediate:
    actions:
      - undo: canary
      - config: restore
"#;

#[test]
fn required_access_follows_each_step_kind_and_every_rollback_action() {
    let plan =
        warroom::plan::parse(std::path::Path::new("busy.yaml"), BUSY_PLAN).expect("plan parses");
    assert_eq!(preflight::environments_used(&plan), ["qa", "live"]);
    let names = |env: &str| -> Vec<String> {
        preflight::required_access(&plan, env)
            .iter()
            .map(|a| format!("{} {}", a.verb, a.resource_name()))
            .collect()
    };
    let qa = names("qa");
    for wanted in [
        "get deployments.apps/scale",
        "patch deployments.apps/scale",
        "patch deployments.apps",
        "watch deployments.apps",
        // rollout undo, a rollback action, runs wherever the current phase is.
        "list replicasets.apps",
        "create configmaps",
        "update configmaps",
    ] {
        assert!(qa.iter().any(|n| n == wanted), "{wanted} in {qa:?}");
    }
    let live = names("live");
    assert!(live.iter().any(|n| n == "patch configmaps"), "{live:?}");
    // The replicas router patches Deployments, so every environment needs it; no traffic
    // object of another kind is asked for.
    assert!(
        live.iter().any(|n| n == "patch deployments.apps"),
        "{live:?}"
    );
    assert!(!qa.iter().any(|n| n.contains("networking")), "{qa:?}");
    // Scaling happens only in qa's phases.
    assert!(!live.iter().any(|n| n.ends_with("/scale")), "{live:?}");
}

#[tokio::test]
async fn a_forbidden_route_patch_fails_the_preflight_naming_verb_resource_namespace_and_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"httproutes","namespace":"shop"}"#,
    )
    .await;
    let result = preflight::run(&common::demo_plan(), &options(&sim)).await;
    assert!(!result.passed());
    for (env, context) in ENVIRONMENTS {
        let wanted = format!(
            "cannot patch httproutes.gateway.networking.k8s.io in namespace shop (context {context})"
        );
        let failures: Vec<_> = result.failures().filter(|l| l.environment == env).collect();
        assert_eq!(
            failures.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            [wanted.as_str()],
            "{}",
            show(&result.lines)
        );
    }
    // The connections are still made: the caller can show what else is there.
    assert_eq!(result.envs.len(), 3);
}

#[tokio::test]
async fn a_missing_canary_deployment_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, conn) = common::start_demo_sim(dir.path()).await;
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), "shop");
    deployments
        .delete("checkout-canary", &DeleteParams::default())
        .await
        .expect("deleted");
    let started = Instant::now();
    while deployments
        .get_opt("checkout-canary")
        .await
        .expect("get")
        .is_some()
    {
        assert!(started.elapsed() < DEADLINE, "the canary is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = preflight::run(&one_environment_plan(), &options(&sim)).await;
    assert!(!result.passed());
    assert!(
        result.failures().any(|l| l.environment == "development"
            && l.text == "deployment shop/checkout-canary not found (context sim-development)"),
        "{}",
        show(&result.lines)
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_fails_each_query_naming_its_metric() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    // A port that was free a moment ago and has no listener now: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let options = Options {
        prometheus: Some(format!("http://{closed}")),
        ..options(&sim)
    };
    let plan = one_environment_plan();
    let result = preflight::run(&plan, &options).await;
    assert!(!result.passed());
    let failures: Vec<_> = result.failures().collect();
    for metric in plan.metrics.queries.keys() {
        for track in ["stable", "canary"] {
            let what = format!("query {metric} ({track}) failed: prometheus http://{closed}");
            assert!(
                failures.iter().any(|l| l.text.starts_with(&what)),
                "{what}:\n{}",
                show(&result.lines)
            );
        }
    }
    // Only Prometheus failed; the cluster side is fine and the environment is connected.
    assert!(
        failures.iter().all(|l| l.text.starts_with("query ")),
        "{}",
        show(&result.lines)
    );
    assert!(result.env("development").is_some());
}

#[tokio::test]
async fn a_context_missing_from_the_kubeconfig_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    let options = Options {
        context: Some("sim-nowhere".into()),
        ..options(&sim)
    };
    let result = preflight::run(&one_environment_plan(), &options).await;
    assert!(!result.passed());
    let failures: Vec<_> = result.failures().collect();
    assert_eq!(failures.len(), 1, "{}", show(&result.lines));
    assert!(
        failures[0].text.contains("sim-nowhere") && failures[0].text.contains("sim-development"),
        "names the context and the known ones: {}",
        failures[0].text
    );
    assert!(
        result.envs.is_empty(),
        "no connection, so no environment link"
    );
}

#[tokio::test]
async fn a_valid_query_without_data_warns_and_does_not_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    let mut plan = one_environment_plan();
    plan.metrics.queries = [(
        "ghost".to_string(),
        r#"sum(rate(no_such_metric_total{namespace="{{namespace}}",track="{{track}}"}[{{rate}}]))"#
            .to_string(),
    )]
    .into_iter()
    .collect();
    let result = preflight::run(&plan, &options(&sim)).await;
    assert!(result.passed(), "{}", show(&result.lines));
    for track in ["stable", "canary"] {
        assert!(
            result.lines.iter().any(|l| l.status == CheckStatus::Warn
                && l.text.starts_with(&format!("no data for ghost ({track})"))),
            "{}",
            show(&result.lines)
        );
    }
}

#[tokio::test]
async fn a_forbidden_get_is_reported_as_forbidden_not_as_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"get","resource":"configmaps","namespace":"shop"}"#,
    )
    .await;
    let result = preflight::run(&one_environment_plan(), &options(&sim)).await;
    let failures: Vec<&str> = result.failures().map(|l| l.text.as_str()).collect();
    assert!(
        failures.contains(&"cannot get configmaps in namespace shop (context sim-development)"),
        "{}",
        show(&result.lines)
    );
    assert!(
        failures.iter().any(|t| t
            .starts_with("cannot get configmap shop/checkout-flags: forbidden (RBAC)")
            && t.ends_with("(context sim-development)")),
        "{}",
        show(&result.lines)
    );
    assert!(!failures.iter().any(|t| t.contains("not found")));
}

#[tokio::test]
async fn an_unreadable_prometheus_token_file_fails_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    let mut plan = one_environment_plan();
    let token = dir.path().join("no-such-token");
    if let Some(env) = plan.environments.get_mut("development") {
        env.bearer_token_file = Some(token.display().to_string());
        env.prometheus = Some(sim.prometheus.clone());
    }
    // The environment's own Prometheus, with its token; `--prometheus` would use none.
    let own = Options {
        prometheus: None,
        ..options(&sim)
    };
    let result = preflight::run(&plan, &own).await;
    let failures: Vec<_> = result.failures().collect();
    assert_eq!(failures.len(), 1, "{}", show(&result.lines));
    assert!(
        failures[0]
            .text
            .contains(&format!("bearer_token_file {}", token.display())),
        "{}",
        failures[0].text
    );
    // Without a Prometheus client the environment cannot be used.
    assert!(result.env("development").is_none());
    // Another server named by --prometheus gets no token, so the file is not read at all.
    let result = preflight::run(&plan, &options(&sim)).await;
    assert!(result.passed(), "{}", show(&result.lines));
}

#[test]
fn each_environment_names_the_configmaps_of_its_own_steps_and_the_rollback_tiers() {
    let mut plan = (*common::demo_plan()).clone();
    // Staging sets a flag in a ConfigMap of its own; the rollback tier names checkout-flags.
    plan.phases[1]
        .steps
        .push(warroom::plan::Step::Flag(warroom::plan::FlagStep {
            configmap: "staging-only".into(),
            key: "k".into(),
            value: "v".into(),
        }));
    assert_eq!(
        preflight::configmaps_named(&plan, "development"),
        ["checkout-flags"],
        "development never touches staging-only, so the run neither checks nor snapshots it there"
    );
    assert_eq!(
        preflight::configmaps_named(&plan, "staging"),
        ["staging-only", "checkout-flags"]
    );
}
