//! End-to-end tests of the simulated Kubernetes API through kube-rs (and kubectl when present).
//! Each test serves its own simulator on an ephemeral loopback port.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use warroom::sim::kube::{
    AppSeed, DenyRule, KubeSim, RouteKind, RouteSeed, serve_loopback, spawn_controllers,
};
use warroom::sim::server::Simulator;

const DEADLINE: Duration = Duration::from_secs(30);
const STABLE_IMAGE: &str = "registry.example.com/shop/checkout:2.3.1";
const CANARY_IMAGE: &str = "registry.example.com/shop/checkout:2.4.0";

struct Harness {
    sim: KubeSim,
    client: Client,
    port: u16,
    cancel: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn demo_seed() -> AppSeed {
    AppSeed {
        namespace: "shop".into(),
        app: "checkout".into(),
        stable: "checkout".into(),
        canary: "checkout-canary".into(),
        container: "checkout".into(),
        stable_image: STABLE_IMAGE.into(),
        canary_image: CANARY_IMAGE.into(),
        stable_history: Vec::new(),
        stable_replicas: 4,
        canary_replicas: 1,
        route: Some(RouteSeed {
            kind: RouteKind::HttpRoute,
            name: "checkout".into(),
            stable_backend: "checkout".into(),
            canary_backend: "checkout-canary".into(),
            canary_weight: 0,
        }),
        configmaps: vec![(
            "checkout-flags".into(),
            BTreeMap::from([("new_payment_flow".to_string(), "false".to_string())]),
        )],
    }
}

async fn start_with(sim: KubeSim) -> Harness {
    let cancel = CancellationToken::new();
    // Ten times real speed keeps pod start-up to a fraction of a second.
    spawn_controllers(sim.clone(), 10.0, cancel.clone());
    sim.seed_app(&demo_seed()).expect("seeding the demo app");
    let port = serve_loopback(sim.clone(), cancel.clone())
        .await
        .expect("serve")
        .port();
    let url = format!("http://127.0.0.1:{port}").parse().expect("url");
    let client = Client::try_from(Config::new(url)).expect("client");
    Harness {
        sim,
        client,
        port,
        cancel,
    }
}

async fn start() -> Harness {
    start_with(KubeSim::new()).await
}

fn route_api(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "httproutes");
    Api::namespaced_with(client.clone(), "shop", &ar)
}

fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Polls `check` until it returns `Some`, failing the test at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready_pods(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(is_ready)
        .collect()
}

#[tokio::test]
async fn seeded_pods_reach_running_and_ready_with_kubelet_fields() {
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    let ready = eventually("5 ready pods", || async {
        let ready = ready_pods(&pods, "app=checkout").await;
        (ready.len() == 5).then_some(ready)
    })
    .await;
    for p in &ready {
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(
            status
                .pod_ip
                .as_deref()
                .is_some_and(|ip| ip.starts_with("10.244."))
        );
        let cs = &status
            .container_statuses
            .as_ref()
            .expect("container statuses")[0];
        assert!(
            cs.ready
                && cs.restart_count == 0
                && cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some()
        );
        let spec = p.spec.as_ref().expect("spec");
        assert!(
            spec.node_name
                .as_deref()
                .is_some_and(|n| n.starts_with("sim-node-"))
        );
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(owner.kind, "ReplicaSet");
        let name = p.metadata.name.as_deref().unwrap_or_default();
        assert!(
            name.starts_with(&format!("{}-", owner.name)),
            "{name} is named after {}",
            owner.name
        );
        let labels = p.metadata.labels.as_ref().expect("labels");
        assert!(labels.contains_key("pod-template-hash"));
    }
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    let d = eventually("stable deployment available", || async {
        let d = deploys.get("checkout").await.expect("get deployment");
        let s = d.status.clone().unwrap_or_default();
        (s.available_replicas == Some(4) && s.ready_replicas == Some(4)).then_some(d)
    })
    .await;
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    let types: Vec<_> = conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(types, vec![("Available", "True"), ("Progressing", "True")]);
}

#[tokio::test]
async fn kube_runtime_watcher_sees_pods_and_route_changes() {
    let h = start().await;
    let pods: Api<Pod> = Api::all(h.client.clone());
    let mut pod_stream = watcher(pods, watcher::Config::default().labels("app=checkout"))
        .applied_objects()
        .boxed();
    let mut ready = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while ready.values().filter(|r| **r).count() < 5 {
        let next = tokio::time::timeout_at(deadline, pod_stream.try_next())
            .await
            .expect("watcher saw 5 ready pods before the deadline")
            .expect("watch stream healthy")
            .expect("stream not ended");
        ready.insert(
            next.metadata.name.clone().unwrap_or_default(),
            is_ready(&next),
        );
    }

    let routes = route_api(&h.client);
    let mut route_stream = watcher(routes.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(DEADLINE, route_stream.try_next())
        .await
        .expect("route listed")
        .expect("route watch healthy")
        .expect("route present");
    assert_eq!(first.metadata.name.as_deref(), Some("checkout"));
    let patch = json!({"spec": {"rules": [{"backendRefs": [
        {"name": "checkout", "port": 80, "weight": 75},
        {"name": "checkout-canary", "port": 80, "weight": 25}]}]}});
    routes
        .patch("checkout", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch route");
    let seen = tokio::time::timeout(DEADLINE, async {
        loop {
            let r = route_stream
                .try_next()
                .await
                .expect("route watch healthy")
                .expect("not ended");
            if r.data["spec"]["rules"][0]["backendRefs"][1]["weight"] == json!(25) {
                return r;
            }
        }
    })
    .await
    .expect("watcher saw the new weights");
    assert_eq!(
        seen.data["spec"]["rules"][0]["backendRefs"][0]["weight"],
        json!(75)
    );
}

#[tokio::test]
async fn merge_patch_of_route_weights_reads_back_and_moves_the_traffic_snapshot() {
    let h = start().await;
    let mut snapshots = h.sim.traffic_snapshots();
    tokio::time::timeout(
        DEADLINE,
        snapshots.wait_for(|s| {
            s.services.iter().any(|svc| {
                svc.service == "checkout"
                    && svc
                        .tracks
                        .iter()
                        .any(|t| t.track == "stable" && t.ready_pods.len() == 4 && t.weight == 100)
                    && svc
                        .tracks
                        .iter()
                        .any(|t| t.track == "canary" && t.weight == 0)
            })
        }),
    )
    .await
    .expect("snapshot follows seeded route")
    .expect("snapshot sender alive");

    let routes = route_api(&h.client);
    let patch = json!({"spec": {"rules": [{"backendRefs": [
        {"name": "checkout", "port": 80, "weight": 90},
        {"name": "checkout-canary", "port": 80, "weight": 10}]}]}});
    routes
        .patch("checkout", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch route");
    let back = routes.get("checkout").await.expect("get route");
    let refs = &back.data["spec"]["rules"][0]["backendRefs"];
    assert_eq!(
        (refs[0]["weight"].clone(), refs[1]["weight"].clone()),
        (json!(90), json!(10))
    );
    assert_eq!(
        back.metadata.generation,
        Some(2),
        "a spec change bumps generation"
    );

    let snap = tokio::time::timeout(
        DEADLINE,
        snapshots.wait_for(|s| {
            s.services.iter().any(|svc| {
                svc.tracks
                    .iter()
                    .any(|t| t.track == "canary" && t.weight == 10)
            })
        }),
    )
    .await
    .expect("snapshot reflects new weights")
    .expect("snapshot sender alive")
    .clone();
    let svc = &snap.services[0];
    let stable = svc
        .tracks
        .iter()
        .find(|t| t.track == "stable")
        .expect("stable track");
    let canary = svc
        .tracks
        .iter()
        .find(|t| t.track == "canary")
        .expect("canary track");
    assert_eq!(
        (svc.namespace.as_str(), svc.service.as_str()),
        ("shop", "checkout")
    );
    assert_eq!((stable.weight, stable.version.as_str()), (90, "2.3.1"));
    assert_eq!(canary.version, "2.4.0");
    assert!((stable.cpu_limit_cores - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn set_image_patch_rolls_out_to_a_new_replicaset() {
    let h = start().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "shop");
    eventually("stable available", || async {
        let d = deploys.get("checkout").await.expect("get");
        (d.status.and_then(|s| s.available_replicas) == Some(4)).then_some(())
    })
    .await;
    // What `kubectl set image` sends.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": CANARY_IMAGE}]}}}});
    deploys
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("set image");
    let done = eventually("rollout complete", || async {
        let d = deploys.get("checkout").await.expect("get");
        let generation = d.metadata.generation;
        let s = d.status.clone().unwrap_or_default();
        let complete = s.observed_generation == generation
            && s.updated_replicas == Some(4)
            && s.replicas == Some(4)
            && s.available_replicas == Some(4);
        complete.then_some(d)
    })
    .await;
    let ann = done.metadata.annotations.unwrap_or_default();
    assert_eq!(
        ann.get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("2")
    );
    let container = &done
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers[0];
    assert!(
        container
            .ports
            .as_ref()
            .is_some_and(|p| p[0].container_port == 8080),
        "strategic merge kept ports"
    );

    let sets = rss
        .list(&ListParams::default().labels("app=checkout,track=stable"))
        .await
        .expect("list rs");
    assert_eq!(sets.items.len(), 2);
    let image_of = |rs: &ReplicaSet| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.clone().unwrap_or_default())
    };
    let new = sets
        .items
        .iter()
        .find(|rs| image_of(rs).as_deref() == Some(CANARY_IMAGE))
        .expect("new rs");
    let old = sets
        .items
        .iter()
        .find(|rs| image_of(rs).as_deref() == Some(STABLE_IMAGE))
        .expect("old rs");
    assert_eq!(new.spec.as_ref().and_then(|s| s.replicas), Some(4));
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));
    let rev = |rs: &ReplicaSet| {
        rs.metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .get("deployment.kubernetes.io/revision")
            .cloned()
    };
    assert_eq!(
        (rev(old).as_deref(), rev(new).as_deref()),
        (Some("1"), Some("2"))
    );

    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    eventually("only new pods remain", || async {
        let all = pods
            .list(&ListParams::default().labels("app=checkout,track=stable"))
            .await
            .expect("list");
        let images: Vec<String> = all
            .items
            .iter()
            .filter_map(|p| p.spec.as_ref().and_then(|s| s.containers[0].image.clone()))
            .collect();
        (images.len() == 4 && images.iter().all(|i| i == CANARY_IMAGE)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn stale_update_gets_409_conflict_with_a_status_body() {
    let h = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let original = cms.get("checkout-flags").await.expect("get configmap");
    let mut fresh = original.clone();
    fresh
        .data
        .get_or_insert_default()
        .insert("new_payment_flow".into(), "true".into());
    let updated = cms
        .replace("checkout-flags", &PostParams::default(), &fresh)
        .await
        .expect("first update");
    assert_ne!(
        updated.metadata.resource_version,
        original.metadata.resource_version
    );

    let mut stale = original.clone();
    stale
        .data
        .get_or_insert_default()
        .insert("other".into(), "x".into());
    let err = cms
        .replace("checkout-flags", &PostParams::default(), &stale)
        .await
        .expect_err("stale update must fail");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let missing = cms.get("nope").await.expect_err("missing object");
    assert!(matches!(missing, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"));
}

#[tokio::test]
async fn watch_from_an_expired_resource_version_gets_410_gone() {
    let h = start_with(KubeSim::with_event_window(50)).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let old_rv = cms
        .get("checkout-flags")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("rv");
    for i in 0..60 {
        let patch = json!({"data": {"counter": i.to_string()}});
        cms.patch(
            "checkout-flags",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &old_rv)
        .await
        .expect("watch request")
        .boxed();
    let first = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("an event")
        .expect("stream item");
    match first {
        Ok(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // A recent version still resumes.
    let recent = cms
        .get("checkout-flags")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("rv");
    let mut ok_stream = cms
        .watch(&WatchParams::default(), &recent)
        .await
        .expect("watch")
        .boxed();
    cms.patch(
        "checkout-flags",
        &PatchParams::default(),
        &Patch::Merge(&json!({"data": {"k": "v"}})),
    )
    .await
    .expect("patch");
    let ev = tokio::time::timeout(DEADLINE, ok_stream.next())
        .await
        .expect("event")
        .expect("item")
        .expect("ok");
    assert!(
        matches!(ev, WatchEvent::Modified(cm) if cm.data.clone().unwrap_or_default().get("k").map(String::as_str) == Some("v"))
    );
}

#[tokio::test]
async fn deleted_pod_is_replaced_and_scale_changes_pod_count() {
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    let ready = eventually("4 stable pods", || async {
        let r = ready_pods(&pods, "track=stable").await;
        (r.len() == 4).then_some(r)
    })
    .await;
    let victim = ready[0].metadata.name.clone().expect("name");
    pods.delete(&victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("replacement ready and victim gone", || async {
        let r = ready_pods(&pods, "track=stable").await;
        let gone = pods.get_opt(&victim).await.expect("get").is_none();
        (gone
            && r.len() == 4
            && r.iter()
                .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())))
        .then_some(())
    })
    .await;

    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    deploys
        .patch_scale(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale");
    eventually("2 stable pods", || async {
        let all = pods
            .list(&ListParams::default().labels("track=stable"))
            .await
            .expect("list");
        (all.items.len() == 2 && all.items.iter().all(is_ready)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn faults_outage_returns_503_and_watch_expiry_ends_watches_with_410() {
    let h = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let mut stream = watch_from_now(&cms).await;
    h.sim.watch_expiry();
    let ev = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("event")
        .expect("item");
    assert!(
        matches!(&ev, Ok(WatchEvent::Error(e)) if e.code == 410),
        "{ev:?}"
    );

    h.sim.api_outage(true);
    // kube-rs retries 503 by default; this client reports the first answer.
    let mut config = Config::new(format!("http://127.0.0.1:{}", h.port).parse().expect("url"));
    config.default_retry = false;
    let no_retry: Api<ConfigMap> =
        Api::namespaced(Client::try_from(config).expect("client"), "shop");
    let err = no_retry.get("checkout-flags").await.expect_err("outage");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 503 && s.reason == "ServiceUnavailable"),
        "{err:?}"
    );
    // A retrying client rides out a short outage.
    let sim = h.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sim.api_outage(false);
    });
    tokio::time::timeout(DEADLINE, cms.get("checkout-flags"))
        .await
        .expect("retried within the deadline")
        .expect("recovered");
}

#[tokio::test]
async fn malformed_requests_get_status_errors_not_panics() {
    let h = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", h.port);
    let cases = [
        (
            "POST",
            "/api/v1/namespaces/shop/configmaps",
            "{not json",
            400,
        ),
        ("POST", "/api/v1/namespaces/shop/configmaps", "[1,2]", 400),
        (
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            r#"{"metadata":{"name":"x"}}"#,
            404,
        ),
        ("GET", "/api/v1/pods?labelSelector=app%20in", "", 400),
        ("GET", "/api/v1/pods?watch=1&resourceVersion=abc", "", 400),
        (
            "GET",
            "/apis/apps/v1/namespaces/shop/deployments/checkout/exec",
            "",
            404,
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/shop/deployments/checkout",
            r#"{"spec":{"replicas":"x"}}"#,
            422,
        ),
        ("GET", "/no/such/path", "", 404),
    ];
    for (method, path, body, code) in cases {
        let req = http
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        let resp = req.send().await.expect("response");
        assert_eq!(resp.status().as_u16(), code, "{method} {path}");
        let status: serde_json::Value = resp.json().await.expect("Status body");
        assert_eq!(status["kind"], "Status", "{method} {path}");
        assert_eq!(status["code"], code, "{method} {path}");
    }
    let resp = http
        .patch(format!(
            "{base}/apis/apps/v1/namespaces/shop/deployments/checkout"
        ))
        .header("content-type", "application/cbor")
        .body("x")
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status().as_u16(), 415);
}

fn kubectl_available() -> bool {
    common::tool_available("kubectl", &["version", "--client"], "kubectl test")
}

/// `kubectl rollout status deploy/checkout -n shop`, which returns once the rollout is done.
async fn rollout_status_of_checkout(port: u16) -> String {
    let args = [
        "rollout",
        "status",
        "deploy/checkout",
        "-n",
        "shop",
        "--timeout=30s",
    ];
    kubectl(port, &args).await
}

async fn kubectl(port: u16, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("kubeconfig");
    std::fs::write(
        &config,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: http://127.0.0.1:{port}\n  name: sim\ncontexts:\n- context:\n    cluster: sim\n    user: sim\n  name: sim\ncurrent-context: sim\nusers:\n- name: sim\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .args(&args)
            .env("KUBECONFIG", &config)
            .env("HOME", dir.path())
            .output()
            .expect("run kubectl")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_get_prints_the_columns_of_a_real_cluster() {
    if !kubectl_available() {
        return;
    }
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    eventually("5 ready pods", || async {
        (ready_pods(&pods, "app=checkout").await.len() == 5).then_some(())
    })
    .await;

    let out = kubectl(h.port, &["get", "pods", "-A"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 5);
    for row in &rows {
        assert_eq!(
            (row[0], row[2], row[3], row[4]),
            ("shop", "1/1", "Running", "0"),
            "{row:?}"
        );
    }

    eventually("deployments available", || async {
        let out = kubectl(h.port, &["get", "deploy", "-n", "shop"]).await;
        out.contains("checkout          4/4     4            4")
            .then_some(())
    })
    .await;
    let out = kubectl(h.port, &["get", "deploy", "-n", "shop"]).await;
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);

    let yaml = kubectl(
        h.port,
        &["get", "httproute", "checkout", "-n", "shop", "-o", "yaml"],
    )
    .await;
    assert!(
        yaml.starts_with("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"),
        "{yaml}"
    );
    assert!(yaml.contains("name: checkout-canary"));

    let nodes = kubectl(h.port, &["get", "nodes"]).await;
    let mut lines = nodes.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(
        lines.filter(|l| l.contains(" Ready ")).count(),
        3,
        "{nodes}"
    );

    let wide = kubectl(h.port, &["get", "pods", "-n", "shop", "-o", "wide"]).await;
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_changes() {
    let h = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let mut stream = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        let ev = tokio::time::timeout(DEADLINE, stream.try_next())
            .await
            .expect("initial events before the deadline")
            .expect("healthy")
            .expect("not ended");
        match ev {
            watcher::Event::Init => {}
            watcher::Event::InitApply(cm) => initial.push(cm.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?} before InitDone"),
        }
    }
    assert_eq!(initial, ["checkout-flags"]);
    cms.patch(
        "checkout-flags",
        &PatchParams::default(),
        &Patch::Merge(&json!({"data": {"x": "1"}})),
    )
    .await
    .expect("patch");
    let ev = tokio::time::timeout(DEADLINE, stream.try_next())
        .await
        .expect("change")
        .expect("ok")
        .expect("item");
    assert!(
        matches!(ev, watcher::Event::Apply(cm) if cm.data.clone().unwrap_or_default().contains_key("x"))
    );
}

#[tokio::test]
async fn paused_deployment_holds_a_template_change_until_resumed() {
    let h = start().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "shop");
    eventually("stable available", || async {
        let d = deploys.get("checkout").await.expect("get");
        (d.status.and_then(|s| s.available_replicas) == Some(4)).then_some(())
    })
    .await;
    deploys
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": true}})),
        )
        .await
        .expect("pause");
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": CANARY_IMAGE}]}}}});
    deploys
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("set image");
    eventually("paused condition", || async {
        let d = deploys.get("checkout").await.expect("get");
        let conds = d.status.and_then(|s| s.conditions).unwrap_or_default();
        conds
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused"))
            .then_some(())
    })
    .await;
    let sets = rss
        .list(&ListParams::default().labels("track=stable"))
        .await
        .expect("list");
    assert_eq!(sets.items.len(), 1, "no new ReplicaSet while paused");

    deploys
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": false}})),
        )
        .await
        .expect("resume");
    eventually("rollout after resume", || async {
        let d = deploys.get("checkout").await.expect("get");
        let s = d.status.unwrap_or_default();
        (s.updated_replicas == Some(4) && s.replicas == Some(4) && s.available_replicas == Some(4))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn kubectl_set_image_rollout_undo_and_apply_behave_as_on_a_real_cluster() {
    if !kubectl_available() {
        return;
    }
    let h = start().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "shop");
    let image = format!("checkout={CANARY_IMAGE}");
    kubectl(
        h.port,
        &["set", "image", "deploy/checkout", &image, "-n", "shop"],
    )
    .await;
    let out = rollout_status_of_checkout(h.port).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    kubectl(
        h.port,
        &["rollout", "undo", "deploy/checkout", "-n", "shop"],
    )
    .await;
    let out = rollout_status_of_checkout(h.port).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    // Undo reuses the first ReplicaSet, which becomes revision 3.
    let sets = rss
        .list(&ListParams::default().labels("track=stable"))
        .await
        .expect("list");
    assert_eq!(sets.items.len(), 2);
    let history = kubectl(
        h.port,
        &["rollout", "history", "deploy/checkout", "-n", "shop"],
    )
    .await;
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    let d = deploys.get("checkout").await.expect("get");
    let img = d
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].image.clone().unwrap_or_default());
    assert_eq!(img.as_deref(), Some(STABLE_IMAGE));

    // Generators go through typed clients, which send protobuf.
    let out = kubectl(
        h.port,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "shop",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=80",
        ],
    )
    .await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    let out = kubectl(
        h.port,
        &[
            "create",
            "configmap",
            "gen",
            "-n",
            "shop",
            "--from-literal=a=b",
        ],
    )
    .await;
    assert_eq!(out.trim(), "configmap/gen created");
    let web = deploys.get("web").await.expect("created deployment");
    let spec = web.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.expect("pod spec").containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
    assert!(
        container
            .ports
            .as_ref()
            .is_some_and(|p| p[0].container_port == 80)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: shop\ndata:\n  a: \"1\"\n")
        .expect("write manifest");
    let path = manifest.to_string_lossy().to_string();
    let out = kubectl(h.port, &["apply", "-f", &path]).await;
    assert_eq!(out.trim(), "configmap/applied created");
    let out = kubectl(h.port, &["apply", "-f", &path]).await;
    assert_eq!(out.trim(), "configmap/applied unchanged");
}

#[tokio::test]
async fn odd_objects_and_garbage_leave_the_server_and_controllers_running() {
    let h = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", h.port);
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let requests: Vec<(&str, &str, &str, String)> = vec![
        ("POST", "/api/v1/namespaces/shop/pods", "application/json",
            r#"{"metadata":{"name":"odd"},"spec":{"containers":[1,"x",{"name":5,"image":[]}]},"status":"x"}"#.into()),
        ("POST", "/apis/apps/v1/namespaces/shop/deployments", "application/json",
            r#"{"metadata":{"name":"weird"},"spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"strategy":{"rollingUpdate":{"maxSurge":"99999999999999%","maxUnavailable":-5}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":7}]}}}}"#.into()),
        ("PUT", "/apis/apps/v1/namespaces/shop/deployments/checkout/status", "application/json",
            r#"{"metadata":{"name":"checkout"},"status":{"conditions":[1,2,"x"],"replicas":"many"}}"#.into()),
        ("PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/checkout", "application/merge-patch+json",
            r#"{"spec":{"rules":"x","parentRefs":[7]}}"#.into()),
        ("PATCH", "/api/v1/namespaces/shop/services/checkout-canary", "application/merge-patch+json",
            r#"{"spec":{"ports":"x","selector":[1]}}"#.into()),
        ("PATCH", "/api/v1/namespaces/shop/configmaps/checkout-flags", "application/json-patch+json",
            r#"[{"op":"replace","path":"","value":5}]"#.into()),
        ("PATCH", "/api/v1/namespaces/shop/configmaps/checkout-flags", "application/json-patch+json",
            r#"[{"op":"replace","path":"/metadata","value":"x"}]"#.into()),
        ("PATCH", "/api/v1/namespaces/shop/configmaps/checkout-flags", "application/strategic-merge-patch+json",
            r#"{"metadata":{"name":"renamed"}}"#.into()),
        ("PUT", "/apis/apps/v1/namespaces/shop/deployments/checkout/scale", "application/json",
            r#"{"spec":{"replicas":99999999999}}"#.into()),
        ("POST", "/api/v1/namespaces/shop/configmaps", "application/json", deep),
        ("POST", "/api/v1/namespaces/shop/configmaps", "application/yaml", "a: [unclosed".into()),
        ("GET", "/api/v1/namespaces/shop/pods?watch=1&timeoutSeconds=abc&labelSelector=%%%", "application/json", String::new()),
    ];
    for (method, path, ct, body) in requests {
        let resp = http
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("server still answers");
        assert!(
            resp.status().as_u16() < 500,
            "{method} {path}: {}",
            resp.status()
        );
    }
    // Controllers survived: a scale-up still produces ready pods.
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    deploys
        .patch_scale(
            "checkout-canary",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    eventually("3 canary pods ready", || async {
        (ready_pods(&pods, "track=canary").await.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn pod_logs_are_served_once_the_container_runs() {
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    let ready = eventually("canary ready", || async {
        ready_pods(&pods, "track=canary").await.into_iter().next()
    })
    .await;
    let name = ready.metadata.name.expect("name");
    let log = pods
        .logs(&name, &kube::api::LogParams::default())
        .await
        .expect("logs");
    assert!(log.contains("version=2.4.0"), "{log}");
    let missing = pods
        .logs(
            &name,
            &kube::api::LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("unknown container");
    assert!(matches!(missing, kube::Error::Api(s) if s.code == 400));
}

#[tokio::test]
async fn server_side_apply_creates_and_updates_and_dry_run_changes_nothing() {
    let h = start().await;
    let routes = route_api(&h.client);
    let apply = PatchParams::apply("warroom-test");
    let weights = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"rules": [{"backendRefs": [
            {"name": "checkout", "port": 80, "weight": 50},
            {"name": "checkout-canary", "port": 80, "weight": 50}]}]},
    });
    let applied = routes
        .patch("checkout", &apply, &Patch::Apply(&weights))
        .await
        .expect("apply route");
    assert_eq!(
        applied.data["spec"]["rules"][0]["backendRefs"][1]["weight"],
        json!(50)
    );
    assert_eq!(
        applied.data["spec"]["parentRefs"][0]["name"],
        json!("public-gateway"),
        "fields not in the apply are kept"
    );

    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}});
    let created = cms
        .patch("applied", &apply, &Patch::Apply(&cm))
        .await
        .expect("apply creates");
    assert!(created.metadata.uid.is_some());

    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let preview = cms
        .patch(
            "applied",
            &dry,
            &Patch::Merge(&json!({"data": {"k": "changed"}})),
        )
        .await
        .expect("dry-run patch");
    assert_eq!(
        preview
            .data
            .unwrap_or_default()
            .get("k")
            .map(String::as_str),
        Some("changed")
    );
    let stored = cms.get("applied").await.expect("get");
    assert_eq!(
        stored.data.unwrap_or_default().get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(
        stored.metadata.resource_version,
        created.metadata.resource_version
    );
    cms.delete(
        "applied",
        &DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        },
    )
    .await
    .expect("dry-run delete");
    assert!(cms.get_opt("applied").await.expect("get").is_some());
}

#[tokio::test]
async fn cancelling_the_controllers_ends_open_watches_so_the_server_can_stop() {
    let h = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let mut stream = watch_from_now(&cms).await;
    h.cancel.cancel();
    let end = tokio::time::timeout(DEADLINE, async {
        while let Some(item) = stream.next().await {
            assert!(item.is_ok(), "a clean end, not an error: {item:?}");
        }
    })
    .await;
    assert!(end.is_ok(), "the watch ended after shutdown");
}

#[tokio::test]
async fn concurrent_watchers_each_see_every_change_once_and_in_order() {
    let h = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "shop");
    let rv = current_version(&cms).await;
    let mut watchers = Vec::new();
    for _ in 0..20 {
        let stream = cms
            .watch(&WatchParams::default(), &rv)
            .await
            .expect("watch");
        watchers.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = Vec::new();
            while seen.len() < 100 {
                match stream.next().await {
                    Some(Ok(WatchEvent::Modified(cm))) => {
                        let rv: u64 = cm
                            .metadata
                            .resource_version
                            .unwrap_or_default()
                            .parse()
                            .unwrap_or(0);
                        let n: u32 = cm
                            .data
                            .unwrap_or_default()
                            .get("n")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        seen.push((rv, n));
                    }
                    Some(Ok(WatchEvent::Bookmark(_))) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            seen
        }));
    }
    for n in 1..=100u32 {
        let cms = cms.clone();
        cms.patch(
            "checkout-flags",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"n": n.to_string()}})),
        )
        .await
        .expect("patch");
    }
    for w in watchers {
        let seen = tokio::time::timeout(DEADLINE, w)
            .await
            .expect("watcher done")
            .expect("joined");
        let values: Vec<u32> = seen.iter().map(|(_, n)| *n).collect();
        assert_eq!(values, (1..=100).collect::<Vec<_>>());
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0),
            "versions increase"
        );
    }
}

#[tokio::test]
async fn failing_image_pulls_stall_a_rollout_past_its_deadline_until_healed() {
    let h = start().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    eventually("stable available", || async {
        let d = deploys.get("checkout").await.expect("get");
        (d.status.and_then(|s| s.available_replicas) == Some(4)).then_some(())
    })
    .await;
    h.sim.fail_image_pulls(":9.9.9-broken");
    let broken = "registry.example.com/shop/checkout:9.9.9-broken";
    let patch = json!({"spec": {"progressDeadlineSeconds": 2, "template": {"spec": {"containers": [{"name": "checkout", "image": broken}]}}}});
    deploys
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("set image");

    let waiting = eventually("a pod in ImagePullBackOff", || async {
        let list = pods
            .list(&ListParams::default().labels("track=stable"))
            .await
            .expect("list");
        list.items.into_iter().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs[0].state.as_ref())
                .and_then(|st| st.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("ImagePullBackOff")
        })
    })
    .await;
    assert!(!is_ready(&waiting));
    eventually("progress deadline exceeded", || async {
        let d = deploys.get("checkout").await.expect("get");
        let conds = d.status.and_then(|s| s.conditions).unwrap_or_default();
        conds
            .iter()
            .any(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .then_some(())
    })
    .await;
    assert!(
        ready_pods(&pods, "track=stable").await.len() >= 3,
        "maxUnavailable keeps old pods serving"
    );

    h.sim.heal_image_pulls();
    eventually("rollout completes after healing", || async {
        let d = deploys.get("checkout").await.expect("get");
        let s = d.status.unwrap_or_default();
        let done = s.updated_replicas == Some(4)
            && s.available_replicas == Some(4)
            && s.replicas == Some(4);
        let progressing = s.conditions.unwrap_or_default().into_iter().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        });
        (done && progressing).then_some(())
    })
    .await;
}

/// What a kube-rs watcher delivered, in order.
#[derive(Debug, Clone)]
enum Seen {
    Init,
    InitApply(String, String),
    InitDone,
    Apply(String, String, String),
    Delete(String),
    Error,
}

async fn active_faults(http: &reqwest::Client, sim: &Simulator) -> Vec<serde_json::Value> {
    let v: serde_json::Value = http
        .get(format!("{}/sim/faults", sim.kubernetes))
        .send()
        .await
        .expect("GET /sim/faults")
        .json()
        .await
        .expect("fault list is JSON");
    v["faults"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn kube_watcher_recovers_by_itself_from_api_outage_and_watch_expiry_faults() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start(
        &common::demo_plan(),
        "127.0.0.1:0".parse().expect("addr"),
        Some(&dir.path().join("kubeconfig")),
        20.0,
    )
    .await
    .expect("simulator starts");
    let http = reqwest::Client::new();
    let client =
        Client::try_from(Config::new(sim.kubernetes.parse().expect("url"))).expect("client");
    let cms: Api<ConfigMap> = Api::namespaced(client, "shop");

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Seen>::new()));
    let record = seen.clone();
    let stream = watcher(
        cms.clone(),
        watcher::Config::default().labels("probe=recovery"),
    )
    .default_backoff();
    let watching = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let name = |c: &ConfigMap| c.metadata.name.clone().unwrap_or_default();
            let rv = |c: &ConfigMap| c.metadata.resource_version.clone().unwrap_or_default();
            let value = |c: &ConfigMap| {
                c.data
                    .as_ref()
                    .and_then(|d| d.get("v").cloned())
                    .unwrap_or_default()
            };
            let s = match item {
                Ok(watcher::Event::Init) => Seen::Init,
                Ok(watcher::Event::InitApply(c)) => Seen::InitApply(name(&c), value(&c)),
                Ok(watcher::Event::InitDone) => Seen::InitDone,
                Ok(watcher::Event::Apply(c)) => Seen::Apply(name(&c), rv(&c), value(&c)),
                Ok(watcher::Event::Delete(c)) => Seen::Delete(name(&c)),
                Err(_) => Seen::Error,
            };
            record.lock().expect("lock").push(s);
        }
    });
    // The watcher's view: replayed from what it delivered, as a reflector would build it.
    let view = |seen: &[Seen]| {
        let mut state = BTreeMap::new();
        let mut fresh: Option<BTreeMap<String, String>> = None;
        for s in seen {
            match s {
                Seen::Init => fresh = Some(BTreeMap::new()),
                Seen::InitApply(n, v) => {
                    if let Some(f) = fresh.as_mut() {
                        f.insert(n.clone(), v.clone());
                    }
                }
                Seen::InitDone => state = fresh.take().unwrap_or_default(),
                Seen::Apply(n, _, v) => {
                    state.insert(n.clone(), v.clone());
                }
                Seen::Delete(n) => {
                    state.remove(n);
                }
                Seen::Error => {}
            }
        }
        state
    };
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let probe = |name: &str, v: &str| -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"probe": "recovery"}},
            "data": {"v": v},
        }))
        .expect("configmap")
    };
    let wait_for_view = |expected: BTreeMap<String, String>, what: &'static str| {
        let seen = seen.clone();
        async move {
            eventually(what, || {
                let got = view(&seen.lock().expect("lock"));
                let ok = got == expected;
                async move { ok.then_some(()) }
            })
            .await
        }
    };

    cms.create(&PostParams::default(), &probe("probe-a", "1"))
        .await
        .expect("create a");
    wait_for_view(want(&[("probe-a", "1")]), "the first change").await;

    // An outage: the API answers 503 and the open watch is cut, but /sim/faults still answers.
    common::post_fault(&sim, r#"{"kind":"api_outage","for":"1500ms"}"#).await;
    let during = http
        .get(format!(
            "{}/api/v1/namespaces/shop/configmaps",
            sim.kubernetes
        ))
        .send()
        .await
        .expect("GET during outage");
    assert_eq!(during.status(), 503);
    let listed = active_faults(&http, &sim).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["kind"], "api_outage");
    eventually("the outage to end by itself", || {
        let (http, sim) = (&http, &sim);
        async move { active_faults(http, sim).await.is_empty().then_some(()) }
    })
    .await;
    cms.create(&PostParams::default(), &probe("probe-b", "1"))
        .await
        .expect("create b after the outage");
    cms.patch(
        "probe-a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch a");
    wait_for_view(
        want(&[("probe-a", "2"), ("probe-b", "1")]),
        "changes after the outage",
    )
    .await;
    // (The cut watch was re-opened into 503s, which kube's client retries after `Retry-After`
    // by itself, so the watcher may not report an error at all; what counts is the above.)

    // Watch expiry: once, then repeatedly for a while; the watcher relists each time.
    let inits_before = seen
        .lock()
        .expect("lock")
        .iter()
        .filter(|s| matches!(s, Seen::Init))
        .count();
    common::post_fault(&sim, r#"{"kind":"watch_expiry"}"#).await;
    common::post_fault(&sim, r#"{"kind":"watch_expiry","for":"2s"}"#).await;
    eventually("the expiry to end by itself", || {
        let (http, sim) = (&http, &sim);
        async move { active_faults(http, sim).await.is_empty().then_some(()) }
    })
    .await;
    cms.create(&PostParams::default(), &probe("probe-c", "1"))
        .await
        .expect("create c");
    cms.delete("probe-b", &DeleteParams::default())
        .await
        .expect("delete b");
    wait_for_view(
        want(&[("probe-a", "2"), ("probe-c", "1")]),
        "changes after the expiry",
    )
    .await;
    let seen_now = seen.lock().expect("lock").clone();
    let inits_after = seen_now.iter().filter(|s| matches!(s, Seen::Init)).count();
    assert!(
        inits_after > inits_before,
        "410 Gone should make the watcher relist: {seen_now:?}"
    );
    // No change delivered twice, none out of order.
    let mut applies: Vec<(String, u64)> = seen_now
        .iter()
        .filter_map(|s| match s {
            Seen::Apply(n, rv, _) => Some((n.clone(), rv.parse::<u64>().expect("numeric rv"))),
            _ => None,
        })
        .collect();
    let count = applies.len();
    applies.sort();
    applies.dedup();
    assert_eq!(applies.len(), count, "duplicate deliveries: {seen_now:?}");
    // And the view agrees with the server.
    let server: BTreeMap<String, String> = cms
        .list(&ListParams::default().labels("probe=recovery"))
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.data
                    .as_ref()
                    .and_then(|d| d.get("v").cloned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(view(&seen_now), server);
    watching.abort();
}

#[tokio::test]
async fn fault_endpoint_lists_clears_and_rejects_bad_bodies_with_a_message() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start(
        &common::demo_plan(),
        "127.0.0.1:0".parse().expect("addr"),
        Some(&dir.path().join("kubeconfig")),
        20.0,
    )
    .await
    .expect("simulator starts");
    let http = reqwest::Client::new();
    common::post_fault(&sim, r#"{"kind":"error_spike","namespace":"shop","service":"checkout","track":"canary","ratio":0.2,"for":"60s"}"#).await;
    common::post_fault(&sim, r#"{"kind":"latency_spike","namespace":"shop","service":"checkout","track":"canary","factor":3}"#).await;
    common::post_fault(&sim, r#"{"kind":"prometheus_outage","for":"60s"}"#).await;
    let listed = active_faults(&http, &sim).await;
    let kinds: Vec<&str> = listed.iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(kinds, ["error_spike", "latency_spike", "prometheus_outage"]);
    assert_eq!(listed[0]["ratio"], 0.2);
    assert!(listed[0]["ends"].is_string() && listed[1]["ends"].is_null());
    let ready = http
        .get(format!("{}/-/ready", sim.prometheus))
        .send()
        .await
        .expect("prometheus");
    assert_eq!(ready.status(), 503);

    let bad = http
        .post(format!("{}/sim/faults", sim.kubernetes))
        .body(r#"{"kind":"error_spike","namespace":"shop"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(bad.status(), 400);
    let msg: serde_json::Value = bad.json().await.expect("json");
    assert!(
        msg["error"]
            .as_str()
            .is_some_and(|m| m.contains("error_spike needs \"service\"")),
        "{msg}"
    );

    let cleared: serde_json::Value = http
        .delete(format!("{}/sim/faults", sim.kubernetes))
        .send()
        .await
        .expect("DELETE")
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["cleared"], 3);
    assert!(active_faults(&http, &sim).await.is_empty());
    let ready = http
        .get(format!("{}/-/ready", sim.prometheus))
        .send()
        .await
        .expect("prometheus");
    assert_eq!(ready.status(), 200);
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

#[tokio::test]
async fn crashloop_and_pullfail_image_tags_behave_like_broken_images() {
    let h = start().await;
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "shop");
    let set_image = |image: &str| json!({"spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": image}]}}}});
    deployments
        .patch(
            "checkout-canary",
            &PatchParams::default(),
            &Patch::Strategic(set_image(
                "registry.example.com/shop/checkout:2.5.0-crashloop",
            )),
        )
        .await
        .expect("set crashloop image");
    let crashing = eventually("a crash-looping pod with climbing restarts", || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("track=canary"))
                .await
                .ok()?
                .items
                .into_iter()
                .find(|p| {
                    waiting_reason(p).as_deref() == Some("CrashLoopBackOff") && restarts(p) >= 2
                })
        }
    })
    .await;
    let last = crashing
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.last_state.as_ref())
        .and_then(|l| l.terminated.as_ref())
        .map(|t| (t.exit_code, t.reason.clone()));
    assert_eq!(last, Some((1, Some("Error".to_string()))));
    assert!(!is_ready(&crashing));

    deployments
        .patch(
            "checkout-canary",
            &PatchParams::default(),
            &Patch::Strategic(set_image(
                "registry.example.com/shop/checkout:2.5.1-pullfail",
            )),
        )
        .await
        .expect("set pullfail image");
    eventually("a pod in ImagePullBackOff", || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("track=canary"))
                .await
                .ok()?
                .items
                .into_iter()
                .find(|p| waiting_reason(p).as_deref() == Some("ImagePullBackOff"))
        }
    })
    .await;

    // The fault form: the stable track crash-loops until the fault ends, then recovers.
    let rule = h.sim.start_crashloop(warroom::sim::kube::CrashRule::Track {
        namespace: "shop".into(),
        service: Some("checkout".into()),
        track: "stable".into(),
    });
    eventually("a stable pod crashing", || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("track=stable"))
                .await
                .ok()?
                .items
                .into_iter()
                .find(|p| restarts(p) >= 1)
        }
    })
    .await;
    h.sim.stop_crashloop(rule);
    eventually("every stable pod ready again", || {
        let pods = pods.clone();
        async move {
            let ready = ready_pods(&pods, "track=stable").await;
            (ready.len() == 4).then_some(())
        }
    })
    .await;
}

/// The current resourceVersion of ConfigMap `checkout-flags`: a point to watch from.
async fn current_version(cms: &Api<ConfigMap>) -> String {
    cms.get("checkout-flags")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("rv")
}

/// A raw watch of the namespace's ConfigMaps, starting now.
async fn watch_from_now(
    cms: &Api<ConfigMap>,
) -> futures::stream::BoxStream<'static, kube::Result<kube::api::WatchEvent<ConfigMap>>> {
    let rv = current_version(cms).await;
    cms.watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed()
}

/// A SelfSubjectAccessReview for `verb` on `resource` (`plural` or `plural/sub`) in `group`
/// and namespace `shop`.
fn review_of(verb: &str, group: &str, resource: &str) -> SelfSubjectAccessReview {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some("shop".into()),
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource,
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    }
}

/// `status.allowed` and `status.reason` of the review as the simulator answers it.
async fn ask(client: &Client, review: &SelfSubjectAccessReview) -> (bool, Option<String>) {
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), review)
        .await
        .expect("review answered");
    let status = answer.status.expect("status");
    (status.allowed, status.reason)
}

#[tokio::test]
async fn self_subject_access_reviews_agree_with_the_forbidden_fault_and_are_never_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, conn) = common::start_demo_sim(dir.path()).await;
    let client = conn.client.clone();
    let patch_routes = review_of("patch", "gateway.networking.k8s.io", "httproutes");
    assert_eq!(ask(&client, &patch_routes).await, (true, None));

    // Discovery names the API, as `kubectl auth can-i` needs.
    let resources = client
        .list_api_group_resources("authorization.k8s.io/v1")
        .await
        .expect("discovery");
    let ssar = resources
        .resources
        .iter()
        .find(|r| r.name == "selfsubjectaccessreviews")
        .expect("selfsubjectaccessreviews listed");
    assert_eq!(ssar.verbs, ["create"]);
    assert!(!ssar.namespaced);
    let groups = client.list_api_groups().await.expect("groups");
    assert!(
        groups
            .groups
            .iter()
            .any(|g| g.name == "authorization.k8s.io")
    );

    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"httproutes","namespace":"shop"}"#,
    )
    .await;
    let (allowed, reason) = ask(&client, &patch_routes).await;
    assert!(!allowed);
    assert_eq!(
        reason.as_deref(),
        Some(
            "User \"warroom-sim\" cannot patch resource \"httproutes\" in API group \"gateway.networking.k8s.io\" in the namespace \"shop\""
        )
    );
    // The review and the request it asks about get the same answer.
    let patched = route_api(&client)
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await;
    assert!(
        matches!(&patched, Err(kube::Error::Api(s)) if s.code == 403),
        "{patched:?}"
    );
    // Other verbs and namespaces stay allowed.
    let get_routes = review_of("get", "gateway.networking.k8s.io", "httproutes");
    assert!(ask(&client, &get_routes).await.0);
    let mut elsewhere = patch_routes.clone();
    if let Some(attrs) = elsewhere.spec.resource_attributes.as_mut() {
        attrs.namespace = Some("default".into());
    }
    assert!(ask(&client, &elsewhere).await.0);

    // A rule on a resource covers its subresources, as for requests.
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"deployments"}"#,
    )
    .await;
    assert!(
        !ask(&client, &review_of("patch", "apps", "deployments/scale"))
            .await
            .0
    );

    // Even when everything is denied, asking is not.
    common::post_fault(&sim, r#"{"kind":"forbidden"}"#).await;
    assert!(!ask(&client, &get_routes).await.0);
}

#[tokio::test]
async fn kubectl_auth_can_i_answers_from_the_forbidden_fault() {
    if !kubectl_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, _conn) = common::start_demo_sim(dir.path()).await;
    let can_i = || {
        let config = sim.kubeconfig.clone();
        let home = dir.path().to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new("kubectl")
                    .args([
                        "auth",
                        "can-i",
                        "patch",
                        "httproutes.gateway.networking.k8s.io",
                        "-n",
                        "shop",
                    ])
                    .env("KUBECONFIG", &config)
                    .env("HOME", &home)
                    .output()
                    .expect("run kubectl")
            })
            .await
            .expect("join")
        }
    };
    let yes = can_i().await;
    assert!(
        yes.status.success(),
        "{}",
        String::from_utf8_lossy(&yes.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&yes.stdout).trim(), "yes");
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"httproutes","namespace":"shop"}"#,
    )
    .await;
    let no = can_i().await;
    assert_eq!(no.status.code(), Some(1), "kubectl exits 1 for no");
    assert!(
        String::from_utf8_lossy(&no.stdout).trim().starts_with("no"),
        "{}",
        String::from_utf8_lossy(&no.stdout)
    );
}

fn lease_named(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

#[tokio::test]
async fn leases_are_discovered_created_updated_with_conflicts_patched_and_deleted() {
    let h = start().await;
    // Discovery: the group between the built-in groups and the CRD groups, as a real server
    // lists it, with the verbs of a real server and no short name.
    let groups = h.client.list_api_groups().await.expect("groups");
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    let at = |g: &str| names.iter().position(|n| *n == g);
    assert!(at("coordination.k8s.io").is_some(), "{names:?}");
    assert!(
        at("coordination.k8s.io") < at("gateway.networking.k8s.io"),
        "{names:?}"
    );
    let resources = h
        .client
        .list_api_group_resources("coordination.k8s.io/v1")
        .await
        .expect("discovery");
    assert_eq!(resources.resources.len(), 1, "{:?}", resources.resources);
    let leases_doc = &resources.resources[0];
    assert_eq!(
        (leases_doc.name.as_str(), leases_doc.kind.as_str()),
        ("leases", "Lease")
    );
    assert!(leases_doc.namespaced);
    assert!(leases_doc.short_names.as_ref().is_none_or(Vec::is_empty));
    for verb in [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ] {
        assert!(leases_doc.verbs.iter().any(|v| v == verb), "{verb}");
    }

    let leases: Api<Lease> = Api::namespaced(h.client.clone(), "shop");
    let mut lease = lease_named("warroom-checkout", "alice@host-1");
    let renewed = "2025-06-01T10:02:30.123456Z"
        .parse::<jiff::Timestamp>()
        .expect("time");
    if let Some(spec) = lease.spec.as_mut() {
        spec.renew_time = Some(MicroTime(renewed));
        spec.acquire_time = Some(MicroTime(renewed));
    }
    let created = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("created");
    assert_eq!(created.metadata.namespace.as_deref(), Some("shop"));
    assert!(created.metadata.uid.is_some());
    // As on a real cluster, Leases carry no generation.
    assert_eq!(created.metadata.generation, None);
    let got = leases.get("warroom-checkout").await.expect("get");
    assert_eq!(got.spec, created.spec);
    assert_eq!(
        got.spec.as_ref().and_then(|s| s.renew_time.clone()),
        Some(MicroTime(renewed))
    );
    let listed = leases.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);

    // PUT with the read resourceVersion lands; with a stale one it is a 409 Conflict.
    let mut next = got.clone();
    if let Some(spec) = next.spec.as_mut() {
        spec.holder_identity = Some("bob@host-2".into());
        spec.lease_transitions = Some(1);
    }
    let updated = leases
        .replace("warroom-checkout", &PostParams::default(), &next)
        .await
        .expect("update with the current resourceVersion");
    assert_ne!(
        updated.metadata.resource_version,
        got.metadata.resource_version
    );
    let mut stale = got.clone();
    if let Some(spec) = stale.spec.as_mut() {
        spec.holder_identity = Some("carol@host-3".into());
    }
    match leases
        .replace("warroom-checkout", &PostParams::default(), &stale)
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message.starts_with(
                    "Operation cannot be fulfilled on leases.coordination.k8s.io \"warroom-checkout\""
                ),
                "{}",
                s.message
            );
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    // Creating it again is AlreadyExists, also a 409.
    let again = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect_err("exists");
    assert!(
        matches!(&again, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again:?}"
    );

    // Merge and JSON patches.
    let merged = leases
        .patch(
            "warroom-checkout",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": null}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        merged.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        None
    );
    let patched = leases
        .patch(
            "warroom-checkout",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "replace", "path": "/spec/leaseTransitions", "value": 2},
                    {"op": "add", "path": "/spec/holderIdentity", "value": "dave@host-4"}
                ]))
                .expect("json patch"),
            ),
        )
        .await
        .expect("json patch");
    let spec = patched.spec.clone().unwrap_or_default();
    assert_eq!(
        (spec.lease_transitions, spec.holder_identity.as_deref()),
        (Some(2), Some("dave@host-4"))
    );
    assert_eq!(patched.metadata.generation, None);

    // Validation as on a real server.
    let invalid = leases
        .patch(
            "warroom-checkout",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"leaseDurationSeconds": 0}})),
        )
        .await
        .expect_err("duration 0 is invalid");
    assert!(
        matches!(&invalid, kube::Error::Api(s) if s.code == 422
            && s.message.contains("spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0")),
        "{invalid:?}"
    );

    leases
        .delete("warroom-checkout", &DeleteParams::default())
        .await
        .expect("deleted");
    let gone = leases.get("warroom-checkout").await.expect_err("gone");
    assert!(matches!(gone, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"));
}

#[tokio::test]
async fn lease_times_come_back_with_microseconds_as_a_real_server_writes_them() {
    let h = start().await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!(
            "http://127.0.0.1:{}/apis/coordination.k8s.io/v1/namespaces/shop/leases",
            h.port
        ))
        .header("content-type", "application/json")
        .body(
            json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "by-hand"},
                "spec": {"holderIdentity": "x", "renewTime": "2025-06-01T10:02:30Z",
                         "acquireTime": "2025-06-01T12:02:30.5+02:00"},
            })
            .to_string(),
        )
        .send()
        .await
        .expect("posted");
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["spec"]["renewTime"], "2025-06-01T10:02:30.000000Z");
    assert_eq!(body["spec"]["acquireTime"], "2025-06-01T10:02:30.500000Z");
    assert_eq!(body["kind"], "Lease");
    assert_eq!(body["apiVersion"], "coordination.k8s.io/v1");

    let bad = http
        .post(format!(
            "http://127.0.0.1:{}/apis/coordination.k8s.io/v1/namespaces/shop/leases",
            h.port
        ))
        .header("content-type", "application/json")
        .body(r#"{"metadata":{"name":"bad"},"spec":{"renewTime":"yesterday"}}"#)
        .send()
        .await
        .expect("posted");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_forbidden_fault_and_access_reviews_cover_leases() {
    let h = start().await;
    let leases: Api<Lease> = Api::namespaced(h.client.clone(), "shop");
    leases
        .create(
            &PostParams::default(),
            &lease_named("warroom-x", "alice@host-1"),
        )
        .await
        .expect("created");
    let update_leases = review_of("update", "coordination.k8s.io", "leases");
    assert_eq!(ask(&h.client, &update_leases).await, (true, None));

    let rule = h.sim.deny(DenyRule {
        verb: Some("update".into()),
        resource: Some("leases".into()),
        namespace: Some("shop".into()),
    });
    let (allowed, reason) = ask(&h.client, &update_leases).await;
    assert!(!allowed);
    assert_eq!(
        reason.as_deref(),
        Some(
            "User \"warroom-sim\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"shop\""
        )
    );
    let current = leases.get("warroom-x").await.expect("get is still allowed");
    let refused = leases
        .replace("warroom-x", &PostParams::default(), &current)
        .await
        .expect_err("update is denied");
    match refused {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(
                s.message.contains("cannot update resource \"leases\""),
                "{}",
                s.message
            );
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(
        ask(
            &h.client,
            &review_of("get", "coordination.k8s.io", "leases")
        )
        .await
        .0
    );
    h.sim.allow(rule);
    leases
        .replace("warroom-x", &PostParams::default(), &current)
        .await
        .expect("allowed again");
}
