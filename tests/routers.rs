//! Every traffic router against the simulator over real HTTP, built the way the console builds
//! it (`router_for` on a plan from tests/fixtures/plans). Each one: reads the seeded weight,
//! writes 30 (checked with a plain client), writes 30 again without a change, writes 0 and 100,
//! survives a concurrent editor, reports someone else's change on its watch, makes the
//! simulator's traffic follow, and turns a broken object into a clear error.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use warroom::app::console::router_for;
use warroom::cluster::client::connect;
use warroom::metrics::prometheus::{PromClient, PromConfig};
use warroom::plan::{Plan, Weight};
use warroom::sim::server::Simulator;
use warroom::traffic::{RouterError, TrafficRouter};

const DEADLINE: Duration = Duration::from_secs(30);

type Gvkp = (&'static str, &'static str, &'static str, &'static str);
const HTTPROUTE: Gvkp = ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes");
const VIRTUALSERVICE: Gvkp = (
    "networking.istio.io",
    "v1",
    "VirtualService",
    "virtualservices",
);
const INGRESS: Gvkp = ("networking.k8s.io", "v1", "Ingress", "ingresses");
const TRAFFICSPLIT: Gvkp = (
    "split.smi-spec.io",
    "v1alpha2",
    "TrafficSplit",
    "trafficsplits",
);
const DEPLOYMENT: Gvkp = ("apps", "v1", "Deployment", "deployments");

const CANARY_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary";
const WEIGHT_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary-weight";

fn api(client: &Client, (g, v, k, plural): Gvkp) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural);
    Api::namespaced_with(client.clone(), "shop", &ar)
}

async fn get(client: &Client, what: Gvkp, name: &str) -> Value {
    let obj = api(client, what)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {name}: {e}", what.3));
    serde_json::to_value(obj).expect("object as JSON")
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn patch(client: &Client, what: Gvkp, name: &str, patch: Patch<Value>) {
    api(client, what)
        .patch(name, &PatchParams::default(), &patch)
        .await
        .unwrap_or_else(|e| panic!("patch {} {name}: {e}", what.3));
}

fn json_patch(ops: Value) -> Patch<Value> {
    Patch::Json(serde_json::from_value(ops).expect("JSON patch"))
}

fn percent(stable: u64, canary: u64) -> u8 {
    if stable + canary == 0 {
        return 0;
    }
    ((canary as f64 * 100.0) / (stable + canary) as f64).round() as u8
}

/// Index of the first entry of `list` whose `key` (a JSON pointer) is `name`.
fn index_of(list: &Value, key: &str, name: &str) -> usize {
    list.as_array()
        .and_then(|l| l.iter().position(|e| e.pointer(key) == Some(&json!(name))))
        .unwrap_or_else(|| panic!("no {name} at {key} in {list}"))
}

/// A change made with a plain client.
type Edit = fn(Client) -> BoxFuture<'static, ()>;

/// What one router's test needs to know about its object, all done with a plain client.
struct Case {
    plan: &'static str,
    /// The weight the simulator seeds.
    seeded: u8,
    /// Done before the exercise proper (with a plain client); the weight it leaves.
    prepare: Option<(Edit, u8)>,
    /// (stable, canary) as stored, read without the router.
    plain: fn(Client) -> BoxFuture<'static, (u64, u64)>,
    /// What changes when the router's objects are written (resourceVersions, or generations
    /// where controllers write status).
    versions: fn(Client) -> BoxFuture<'static, Vec<String>>,
    /// Someone else sets the canary weight to 50.
    set_50: Edit,
    /// Someone else edits the object (`i`-th time) without changing what it routes or where.
    disturb: fn(Client, usize) -> BoxFuture<'static, ()>,
    /// Someone else reorders the weighted entries (`i`-th time), weights and all: what is
    /// routed stays, but the indexes the router's patch addresses move.
    reorder: Option<fn(Client, usize) -> BoxFuture<'static, ()>>,
    /// Someone breaks the object; returns what the router's error must mention.
    break_it: fn(Client) -> BoxFuture<'static, &'static str>,
    /// Whether a broken object is `Malformed` (otherwise an API error, e.g. not found).
    malformed: bool,
}

/// The simulator for a fixture plan, a plain client, the plan, and the directory holding the
/// simulator's kubeconfig (removed when dropped, so keep it alive as long as the simulator).
async fn start(plan_file: &str) -> (Simulator, Client, Arc<Plan>, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(plan_file);
    let text = std::fs::read_to_string(&path).expect("fixture plan");
    let plan = Arc::new(warroom::plan::parse(&path, &text).expect("fixture plan parses"));
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start(
        &plan,
        "127.0.0.1:0".parse().expect("addr"),
        Some(&dir.path().join("kubeconfig")),
        20.0,
    )
    .await
    .expect("simulator starts");
    let conn = connect(Some(&sim.kubeconfig), Some("sim-development"))
        .await
        .expect("connects");
    (sim, conn.client, plan, dir)
}

/// Polls `check` until it returns `Some`, or fails naming `what` at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::new();
    while Instant::now() < deadline {
        match check().await {
            Ok(v) => return v,
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} not reached before the deadline; last: {last}");
}

/// Reads the watch until it reports `want`.
async fn watch_reports(stream: &mut BoxStream<'static, Result<Weight, RouterError>>, want: u8) {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, stream.next())
            .await
            .unwrap_or_else(|_| panic!("watch did not report {want}; saw {seen:?}"))
            .expect("watch stream goes on");
        match item {
            Ok(w) if w.percent() == want => return,
            other => seen.push(format!("{other:?}")),
        }
    }
}

/// The canary's share (percent) of the simulator's traffic for `checkout` in `shop`, as the
/// request generator reads it.
fn sim_canary_share(sim: &Simulator) -> Result<u8, String> {
    let snap = sim.kube.traffic_snapshots().borrow().clone();
    let svc = snap
        .services
        .iter()
        .find(|s| s.namespace == "shop" && s.service == "checkout")
        .ok_or_else(|| format!("no checkout in {snap:?}"))?;
    let weight = |t: &str| {
        svc.tracks
            .iter()
            .find(|x| x.track == t)
            .map_or(0, |x| u64::from(x.weight))
    };
    Ok(percent(weight("stable"), weight("canary")))
}

async fn set_and_check(router: &dyn TrafficRouter, case: &Case, client: &Client, want: u8) {
    router
        .set_weight(Weight::clamped(i64::from(want)))
        .await
        .unwrap_or_else(|e| panic!("{}: set {want}: {e}", router.describe()));
    let (s, c) = (case.plain)(client.clone()).await;
    assert_eq!(percent(s, c), want, "{}: stored ({s}, {c})", case.plan);
    if (1..100).contains(&want) {
        assert!(
            s > 0 && c > 0,
            "{}: a track went to 0: ({s}, {c})",
            case.plan
        );
    }
    assert_eq!(
        router.weight().await.expect("weight readable").percent(),
        want,
        "{}",
        case.plan
    );
}

async fn exercise(case: Case) {
    let (sim, client, plan, _dir) = start(case.plan).await;
    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");

    // Seeded weight, read through the router.
    assert_eq!(
        router.weight().await.expect("weight").percent(),
        case.seeded,
        "{}",
        router.describe()
    );
    let mut watch = router.watch();
    watch_reports(&mut watch, case.seeded).await;
    if let Some((prepare, weight)) = case.prepare {
        prepare(client.clone()).await;
        watch_reports(&mut watch, weight).await;
    }

    // 30, read back with a plain client; again, without a change.
    set_and_check(router.as_ref(), &case, &client, 30).await;
    let before = (case.versions)(client.clone()).await;
    set_and_check(router.as_ref(), &case, &client, 30).await;
    assert_eq!(
        (case.versions)(client.clone()).await,
        before,
        "{}: writing the same weight changed the object",
        case.plan
    );
    // The simulator's traffic follows.
    eventually("simulated traffic at 30 % canary", || async {
        match sim_canary_share(&sim)? {
            30 => Ok(()),
            other => Err(format!("canary share {other}")),
        }
    })
    .await;

    set_and_check(router.as_ref(), &case, &client, 0).await;
    set_and_check(router.as_ref(), &case, &client, 100).await;
    // End to end: the requests the simulator's Prometheus counts all go to the canary.
    let prom = PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_secs(5)))
        .expect("prometheus client");
    eventually("Prometheus counting canary requests only", || async {
        let rate = async |track: &str| {
            prom.query_scalar(
                &format!("sum(rate(http_requests_total{{namespace=\"shop\",service=\"checkout\",track=\"{track}\"}}[3s]))"),
                None,
            )
            .await
            .map(|v| v.unwrap_or(0.0))
            .map_err(|e| e.to_string())
        };
        match (rate("stable").await?, rate("canary").await?) {
            (s, c) if s == 0.0 && c > 0.0 => Ok(()),
            other => Err(format!("stable, canary request rates {other:?}")),
        }
    })
    .await;
    set_and_check(router.as_ref(), &case, &client, 30).await;
    eventually("simulated traffic at 30 % canary again", || async {
        match sim_canary_share(&sim)? {
            30 => Ok(()),
            other => Err(format!("canary share {other}")),
        }
    })
    .await;

    // Someone else moves the weight: the watch says so.
    (case.set_50)(client.clone()).await;
    watch_reports(&mut watch, 50).await;
    assert_eq!(router.weight().await.expect("weight").percent(), 50);

    // A concurrent editor whose edits leave what is routed alone: every write succeeds.
    concurrently(
        router.as_ref(),
        &client,
        case.disturb,
        |plan, result| {
            if let Err(e) = result {
                panic!("{plan}: write during edits: {e:?}");
            }
        },
        case.plan,
    )
    .await;
    set_and_check(router.as_ref(), &case, &client, 40).await;
    // One reordering the entries: a write may report a conflict (its retry raced the editor
    // too), but none lands on the wrong entry.
    if let Some(reorder) = case.reorder {
        concurrently(
            router.as_ref(),
            &client,
            reorder,
            |plan, result| match result {
                Ok(()) | Err(RouterError::Conflict(_)) => {}
                Err(e) => panic!("{plan}: write during reorders: {e:?}"),
            },
            case.plan,
        )
        .await;
        set_and_check(router.as_ref(), &case, &client, 40).await;
    }

    // A broken object: a clear error, no panic, and the watch goes on.
    let mention = (case.break_it)(client.clone()).await;
    let err = router.weight().await.expect_err("broken object");
    assert_eq!(
        matches!(err, RouterError::Malformed { .. }),
        case.malformed,
        "{err:?}"
    );
    assert!(err.to_string().contains(mention), "{err}");
    let err = router
        .set_weight(Weight::clamped(10))
        .await
        .expect_err("write to a broken object");
    assert!(err.to_string().contains(mention), "{err}");
    drop(sim);
}

/// Ten writes (20 and 40 in turn) while `edit` runs twenty times; `judge` looks at each result.
async fn concurrently(
    router: &dyn TrafficRouter,
    client: &Client,
    edit: fn(Client, usize) -> BoxFuture<'static, ()>,
    judge: impl Fn(&str, Result<(), RouterError>),
    plan: &str,
) {
    let editor = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                edit(client.clone(), i).await;
                tokio::task::yield_now().await;
            }
        })
    };
    for i in 0..10 {
        let w = if i % 2 == 0 { 20 } else { 40 };
        judge(plan, router.set_weight(Weight::clamped(w)).await);
    }
    editor.await.expect("editor finished");
}

/// An edit that routes nothing: the `i`-th value of an annotation.
async fn annotate(c: &Client, what: Gvkp, name: &str, i: usize) {
    patch(
        c,
        what,
        name,
        Patch::Merge(json!({"metadata": {"annotations": {"example.com/edited": i.to_string()}}})),
    )
    .await;
}

async fn warroom_conn(sim: &Simulator) -> warroom::cluster::client::Connection {
    connect(Some(&sim.kubeconfig), Some("sim-development"))
        .await
        .expect("connects")
}

// --- gateway-api ---------------------------------------------------------------------------

fn route_weights(route: &Value) -> (u64, u64) {
    let refs = &route["spec"]["rules"][0]["backendRefs"];
    let w = |name: &str| {
        refs[index_of(refs, "/name", name)]["weight"]
            .as_u64()
            .unwrap_or(1)
    };
    (w("checkout"), w("checkout-canary"))
}

#[tokio::test]
async fn gateway_api_router() {
    exercise(Case {
        plan: "tests/fixtures/plans/router-gateway-api.yaml",
        seeded: 0,
        prepare: None,
        plain: |c| Box::pin(async move { route_weights(&get(&c, HTTPROUTE, "checkout").await) }),
        // The gateway controller writes status, so the spec's generation it is.
        versions: |c| {
            Box::pin(async move {
                vec![get(&c, HTTPROUTE, "checkout").await["metadata"]["generation"].to_string()]
            })
        },
        set_50: |c| {
            Box::pin(async move {
                patch(&c, HTTPROUTE, "checkout", json_patch(json!([
                    {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50},
                    {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50},
                ])))
                .await;
            })
        },
        disturb: |c, i| Box::pin(async move { annotate(&c, HTTPROUTE, "checkout", i).await }),
        reorder: Some(|c, _| {
            Box::pin(async move {
                // Swaps the two backendRefs, weights and all.
                patch(&c, HTTPROUTE, "checkout", json_patch(json!([
                    {"op": "move", "from": "/spec/rules/0/backendRefs/1", "path": "/spec/rules/0/backendRefs/0"},
                ])))
                .await;
            })
        }),
        break_it: |c| {
            Box::pin(async move {
                let route = get(&c, HTTPROUTE, "checkout").await;
                let i = index_of(
                    &route["spec"]["rules"][0]["backendRefs"],
                    "/name",
                    "checkout-canary",
                );
                patch(&c, HTTPROUTE, "checkout", json_patch(json!([
                    {"op": "remove", "path": format!("/spec/rules/0/backendRefs/{i}")},
                ])))
                .await;
                "no rule has both backendRefs checkout and checkout-canary"
            })
        },
        malformed: true,
    })
    .await;
}

// --- istio ---------------------------------------------------------------------------------

fn vs_weights(vs: &Value) -> (u64, u64) {
    let route = &vs["spec"]["http"][0]["route"];
    // Hosts may be short or qualified (`checkout.shop.svc.cluster.local`).
    let w = |service: &str| {
        route
            .as_array()
            .and_then(|r| {
                r.iter().find(|d| {
                    d["destination"]["host"]
                        .as_str()
                        .is_some_and(|h| h.split('.').next() == Some(service))
                })
            })
            .unwrap_or_else(|| panic!("no destination {service} in {route}"))["weight"]
            .as_u64()
            .unwrap_or(0)
    };
    (w("checkout"), w("checkout-canary"))
}

#[tokio::test]
async fn istio_router() {
    exercise(Case {
        plan: "tests/fixtures/plans/router-istio.yaml",
        seeded: 0,
        prepare: None,
        plain: |c| Box::pin(async move { vs_weights(&get(&c, VIRTUALSERVICE, "checkout").await) }),
        versions: |c| Box::pin(async move { vec![rv(&get(&c, VIRTUALSERVICE, "checkout").await)] }),
        set_50: |c| {
            Box::pin(async move {
                // As people write it: a fully qualified host, a merge patch of the whole list.
                patch(
                    &c,
                    VIRTUALSERVICE,
                    "checkout",
                    Patch::Merge(json!({"spec": {"http": [{"route": [
                        {"destination": {"host": "checkout.shop.svc.cluster.local"}, "weight": 50},
                        {"destination": {"host": "checkout-canary"}, "weight": 50},
                    ]}]}})),
                )
                .await;
            })
        },
        disturb: |c, i| Box::pin(async move { annotate(&c, VIRTUALSERVICE, "checkout", i).await }),
        reorder: Some(|c, _| {
            Box::pin(async move {
                patch(&c, VIRTUALSERVICE, "checkout", json_patch(json!([
                    {"op": "move", "from": "/spec/http/0/route/1", "path": "/spec/http/0/route/0"},
                ])))
                .await;
            })
        }),
        break_it: |c| {
            Box::pin(async move {
                patch(
                    &c,
                    VIRTUALSERVICE,
                    "checkout",
                    json_patch(json!([
                        {"op": "remove", "path": "/spec/http/0/route/1/destination/host"},
                    ])),
                )
                .await;
                "has no destination.host"
            })
        },
        malformed: true,
    })
    .await;
}

// --- nginx ---------------------------------------------------------------------------------

fn nginx_weights(ingress: &Value) -> (u64, u64) {
    let w = ingress["metadata"]["annotations"][WEIGHT_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no canary-weight string in {ingress}"));
    (100 - w, w)
}

#[tokio::test]
async fn nginx_router() {
    exercise(Case {
        plan: "tests/fixtures/plans/router-nginx.yaml",
        seeded: 0,
        prepare: None,
        plain: |c| {
            Box::pin(async move { nginx_weights(&get(&c, INGRESS, "checkout-canary").await) })
        },
        versions: |c| {
            Box::pin(async move {
                vec![
                    rv(&get(&c, INGRESS, "checkout-canary").await),
                    rv(&get(&c, INGRESS, "checkout").await),
                ]
            })
        },
        set_50: |c| {
            Box::pin(async move {
                patch(
                    &c,
                    INGRESS,
                    "checkout-canary",
                    Patch::Merge(json!({"metadata": {"annotations": {WEIGHT_ANNOTATION: "50"}}})),
                )
                .await;
            })
        },
        disturb: |c, i| {
            Box::pin(async move {
                patch(
                    &c,
                    INGRESS,
                    "checkout-canary",
                    Patch::Merge(
                        json!({"metadata": {"annotations": {"example.com/edited": i.to_string()}}}),
                    ),
                )
                .await;
            })
        },
        reorder: None,
        break_it: |c| {
            Box::pin(async move {
                patch(
                    &c,
                    INGRESS,
                    "checkout-canary",
                    Patch::Merge(
                        json!({"metadata": {"annotations": {CANARY_ANNOTATION: "false"}}}),
                    ),
                )
                .await;
                "not a canary Ingress"
            })
        },
        malformed: true,
    })
    .await;
}

#[tokio::test]
async fn nginx_router_refuses_the_primary_ingress() {
    let (sim, client, plan, _dir) = start("tests/fixtures/plans/router-nginx.yaml").await;
    let mut plan = (*plan).clone();
    if let Some(t) = plan.traffic.as_mut() {
        t.route = Some("checkout".into());
    }
    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");
    let before = get(&client, INGRESS, "checkout").await;
    let err = router
        .set_weight(Weight::clamped(30))
        .await
        .expect_err("primary refused");
    assert!(
        matches!(&err, RouterError::Malformed { object, why }
            if object.contains("ingresses.networking.k8s.io shop/checkout") && why.contains("not a canary Ingress")),
        "{err:?}"
    );
    assert_eq!(rv(&get(&client, INGRESS, "checkout").await), rv(&before));
}

// --- smi -----------------------------------------------------------------------------------

fn split_weights(split: &Value) -> (u64, u64) {
    let b = &split["spec"]["backends"];
    let w = |name: &str| {
        b[index_of(b, "/service", name)]["weight"]
            .as_u64()
            .unwrap_or(0)
    };
    (w("checkout-stable"), w("checkout-canary"))
}

#[tokio::test]
async fn smi_router() {
    exercise(Case {
        plan: "tests/fixtures/plans/router-smi.yaml",
        seeded: 0,
        prepare: None,
        plain: |c| {
            Box::pin(async move { split_weights(&get(&c, TRAFFICSPLIT, "checkout-split").await) })
        },
        versions: |c| {
            Box::pin(async move { vec![rv(&get(&c, TRAFFICSPLIT, "checkout-split").await)] })
        },
        set_50: |c| {
            Box::pin(async move {
                patch(
                    &c,
                    TRAFFICSPLIT,
                    "checkout-split",
                    Patch::Merge(json!({"spec": {"backends": [
                        {"service": "checkout-canary", "weight": 500},
                        {"service": "checkout-stable", "weight": 500},
                    ]}})),
                )
                .await;
            })
        },
        disturb: |c, i| {
            Box::pin(async move { annotate(&c, TRAFFICSPLIT, "checkout-split", i).await })
        },
        reorder: Some(|c, _| {
            Box::pin(async move {
                patch(
                    &c,
                    TRAFFICSPLIT,
                    "checkout-split",
                    json_patch(json!([
                        {"op": "move", "from": "/spec/backends/1", "path": "/spec/backends/0"},
                    ])),
                )
                .await;
            })
        }),
        break_it: |c| {
            Box::pin(async move {
                patch(
                    &c,
                    TRAFFICSPLIT,
                    "checkout-split",
                    json_patch(json!([
                        {"op": "remove", "path": "/spec/backends/0/weight"},
                    ])),
                )
                .await;
                "has no weight"
            })
        },
        malformed: true,
    })
    .await;
}

// --- replicas ------------------------------------------------------------------------------

async fn replica_counts(c: &Client) -> (u64, u64) {
    let n = |d: Value| d["spec"]["replicas"].as_u64().unwrap_or(1);
    (
        n(get(c, DEPLOYMENT, "checkout").await),
        n(get(c, DEPLOYMENT, "checkout-canary").await),
    )
}

async fn scale(c: &Client, name: &str, replicas: u64) {
    patch(
        c,
        DEPLOYMENT,
        name,
        Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await;
}

#[tokio::test]
async fn replicas_router() {
    // Seeded 4 stable + 2 canary: 33 %.
    let (sim, client, plan, _dir) = start("tests/fixtures/plans/router-replicas.yaml").await;
    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");
    assert_eq!(router.weight().await.expect("weight").percent(), 33);
    // Resolution on 6 replicas: 30 → 2 of 6 → reads 33; 0 and 100 empty a track.
    router
        .set_weight(Weight::clamped(30))
        .await
        .expect("set 30");
    assert_eq!(replica_counts(&client).await, (4, 2));
    router.set_weight(Weight::clamped(1)).await.expect("set 1");
    assert_eq!(replica_counts(&client).await, (5, 1));
    scale(&client, "checkout", 8).await;
    assert_eq!(router.weight().await.expect("weight").percent(), 11);
    drop(sim);

    exercise(Case {
        plan: "tests/fixtures/plans/router-replicas.yaml",
        seeded: 33,
        // 8 + 2 replicas: 20 %, and weights in steps of 10.
        prepare: Some((
            |c| Box::pin(async move { scale(&c, "checkout", 8).await }),
            20,
        )),
        plain: |c| Box::pin(async move { replica_counts(&c).await }),
        versions: |c| {
            Box::pin(async move {
                // The controllers keep writing status, so the spec's generation it is.
                let generation = |d: Value| d["metadata"]["generation"].to_string();
                vec![
                    generation(get(&c, DEPLOYMENT, "checkout").await),
                    generation(get(&c, DEPLOYMENT, "checkout-canary").await),
                ]
            })
        },
        set_50: |c| {
            Box::pin(async move {
                let (s, k) = replica_counts(&c).await;
                let half = (s + k) / 2;
                scale(&c, "checkout-canary", s + k - half).await;
                scale(&c, "checkout", half).await;
            })
        },
        disturb: |c, i| {
            Box::pin(async move {
                patch(
                    &c,
                    DEPLOYMENT,
                    "checkout",
                    Patch::Merge(
                        json!({"metadata": {"annotations": {"example.com/edited": i.to_string()}}}),
                    ),
                )
                .await;
            })
        },
        reorder: None,
        break_it: |c| {
            Box::pin(async move {
                api(&c, DEPLOYMENT)
                    .delete("checkout-canary", &DeleteParams::default())
                    .await
                    .expect("delete canary");
                "deployments.apps shop/checkout-canary: not found"
            })
        },
        malformed: false,
    })
    .await;
}

/// Requested capacity (the sum of `spec.replicas`) never drops while the replicas router moves:
/// the side that grows is written first. (Ready pods may lag; the router does not wait.)
#[tokio::test]
async fn replicas_router_grows_before_it_shrinks() {
    let (sim, client, plan, _dir) = start("tests/fixtures/plans/router-replicas.yaml").await;
    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");
    let deployments = api(&client, DEPLOYMENT);
    let mut events =
        kube::runtime::watcher(deployments, kube::runtime::watcher::Config::default()).boxed();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = async |counts: &mut BTreeMap<String, u64>| -> (bool, bool) {
        let Ok(Some(event)) = tokio::time::timeout(DEADLINE, events.next()).await else {
            panic!("deployment watch ended or timed out at {counts:?}");
        };
        match event.expect("watch event") {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                let n = o.data["spec"]["replicas"].as_u64().unwrap_or(1);
                (counts.insert(name, n).is_some_and(|old| old != n), false)
            }
            watcher::Event::InitDone => (false, true),
            _ => (false, false),
        }
    };
    // The initial list first, so no write is missed.
    while !next(&mut counts).await.1 {}
    assert_eq!(counts.values().sum::<u64>(), 6, "{counts:?}");
    let setter = tokio::spawn(async move {
        // From 4 + 2: (0, 6), (6, 0), (3, 3), (1, 5), (5, 1): two writes each.
        for w in [100, 0, 50, 90, 10] {
            router
                .set_weight(Weight::clamped(w))
                .await
                .expect("set weight");
        }
    });
    let mut writes = 0;
    while writes < 10 {
        writes += usize::from(next(&mut counts).await.0);
        assert!(
            counts.values().sum::<u64>() >= 6,
            "capacity dropped: {counts:?}"
        );
    }
    assert_eq!(counts.get("checkout-canary"), Some(&1), "{counts:?}");
    setter.await.expect("setter");
    drop(sim);
}

/// One replica in all: a partial weight grows the total to 2 rather than emptying a track.
#[tokio::test]
async fn replicas_router_on_one_replica_keeps_both_tracks() {
    let (sim, client, plan, _dir) = start("tests/fixtures/plans/router-replicas.yaml").await;
    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");
    scale(&client, "checkout-canary", 0).await;
    scale(&client, "checkout", 1).await;
    assert_eq!(router.weight().await.expect("weight").percent(), 0);
    router
        .set_weight(Weight::clamped(50))
        .await
        .expect("set 50");
    assert_eq!(replica_counts(&client).await, (1, 1));
    router
        .set_weight(Weight::clamped(10))
        .await
        .expect("set 10");
    assert_eq!(replica_counts(&client).await, (1, 1));
    router
        .set_weight(Weight::clamped(100))
        .await
        .expect("set 100");
    assert_eq!(replica_counts(&client).await, (0, 2));
    drop(sim);
}

/// Reads the watch until it reports an error mentioning `mention`.
async fn watch_fails(stream: &mut BoxStream<'static, Result<Weight, RouterError>>, mention: &str) {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, stream.next())
            .await
            .unwrap_or_else(|_| panic!("watch did not report {mention:?}; saw {seen:?}"))
            .expect("watch stream goes on");
        match item {
            Err(e) if e.to_string().contains(mention) => return,
            other => seen.push(format!("{other:?}")),
        }
    }
}

/// A deleted traffic object is an error on the watch, not the last weight left on screen.
async fn deleting_the_object_is_reported(plan_file: &str, what: Gvkp, name: &str, object: &str) {
    let (sim, client, plan, _dir) = start(plan_file).await;
    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");
    let mut watch = router.watch();
    watch_reports(&mut watch, 0).await;
    api(&client, what)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    watch_fails(&mut watch, &format!("{object} was deleted")).await;
    // A watch started now finds nothing to report but that.
    let mut late = router.watch();
    watch_fails(&mut late, &format!("{object} does not exist")).await;
    drop(sim);
}

#[tokio::test]
async fn gateway_api_router_reports_a_deleted_route() {
    deleting_the_object_is_reported(
        "tests/fixtures/plans/router-gateway-api.yaml",
        HTTPROUTE,
        "checkout",
        "httproutes.gateway.networking.k8s.io shop/checkout",
    )
    .await;
}

#[tokio::test]
async fn nginx_router_reports_a_deleted_ingress() {
    deleting_the_object_is_reported(
        "tests/fixtures/plans/router-nginx.yaml",
        INGRESS,
        "checkout-canary",
        "ingresses.networking.k8s.io shop/checkout-canary",
    )
    .await;
}

/// The write the routers share: a patch built from a read that someone else's edit has since
/// overtaken fails as a conflict instead of landing on the wrong entries; the router's own
/// write reads again and lands right.
#[tokio::test]
async fn a_write_from_a_stale_read_is_a_conflict_and_the_router_retries() {
    use warroom::traffic::gateway_api::weight_patch;
    use warroom::traffic::object::ObjectRef;
    let (sim, client, plan, _dir) = start("tests/fixtures/plans/router-gateway-api.yaml").await;
    let target = ObjectRef::new(client.clone(), HTTPROUTE, "shop", "checkout");
    let stale = target.read().await.expect("read");
    // Someone swaps the two backendRefs (weights and all) after our read.
    patch(&client, HTTPROUTE, "checkout", json_patch(json!([
        {"op": "move", "from": "/spec/rules/0/backendRefs/1", "path": "/spec/rules/0/backendRefs/0"},
    ])))
    .await;
    let ops = weight_patch(&stale, "checkout", "checkout-canary", Weight::clamped(30))
        .expect("ops from the stale read");
    let err = target
        .json_patch(&stale, ops)
        .await
        .expect_err("stale write refused");
    assert!(matches!(err, RouterError::Conflict(_)), "{err:?}");
    assert_eq!(
        route_weights(&get(&client, HTTPROUTE, "checkout").await),
        (100, 0)
    );

    let router = router_for(&plan, &warroom_conn(&sim).await, "shop").expect("router_for");
    router
        .set_weight(Weight::clamped(30))
        .await
        .expect("set 30");
    assert_eq!(
        route_weights(&get(&client, HTTPROUTE, "checkout").await),
        (70, 30)
    );
}

/// A plan missing what its router needs is refused, naming the key.
#[tokio::test]
async fn router_for_names_the_missing_plan_key() {
    let (sim, _client, plan, _dir) = start("tests/fixtures/plans/router-istio.yaml").await;
    let conn = warroom_conn(&sim).await;
    for router in [
        warroom::plan::Router::GatewayApi,
        warroom::plan::Router::Istio,
        warroom::plan::Router::Nginx,
        warroom::plan::Router::Smi,
    ] {
        let mut p = (*plan).clone();
        if let Some(t) = p.traffic.as_mut() {
            t.router = router;
            t.route = None;
        }
        let err = router_for(&p, &conn, "shop").err().expect("refused");
        assert!(
            err.to_string()
                .contains("traffic.route is required for the"),
            "{router:?}: {err}"
        );
    }
    let mut p = (*plan).clone();
    p.workload.canary = None;
    if let Some(t) = p.traffic.as_mut() {
        t.canary_backend = None;
    }
    let err = router_for(&p, &conn, "shop").err().expect("refused");
    assert!(
        err.to_string()
            .contains("traffic.canary_backend is required for the istio traffic router"),
        "{err}"
    );
    if let Some(t) = p.traffic.as_mut() {
        t.router = warroom::plan::Router::Replicas;
    }
    let err = router_for(&p, &conn, "shop").err().expect("refused");
    assert!(err.to_string().contains("workload.canary"), "{err}");
}

/// Stable and canary the same backend: refused for every router, naming both plan keys.
#[tokio::test]
async fn router_for_refuses_one_backend_for_both_tracks() {
    use warroom::plan::Router;
    let (sim, _client, plan, _dir) = start("tests/fixtures/plans/router-istio.yaml").await;
    let conn = warroom_conn(&sim).await;
    for (router, name) in [
        (Router::GatewayApi, "gateway-api"),
        (Router::Istio, "istio"),
        (Router::Nginx, "nginx"),
        (Router::Smi, "smi"),
    ] {
        let mut p = (*plan).clone();
        if let Some(t) = p.traffic.as_mut() {
            t.router = router;
            t.stable_backend = Some("checkout".into());
            t.canary_backend = Some("checkout".into());
        }
        let err = router_for(&p, &conn, "shop").err().expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "traffic.stable_backend and traffic.canary_backend are both `checkout`; the {name} traffic router needs the stable and the canary backend to differ"
            )
        );
        // The defaults count too.
        if let Some(t) = p.traffic.as_mut() {
            t.stable_backend = None;
        }
        let err = router_for(&p, &conn, "shop").err().expect("refused");
        assert!(
            err.to_string()
                .contains("workload.name and traffic.canary_backend are both `checkout`"),
            "{err}"
        );
    }
    let mut p = (*plan).clone();
    p.workload.canary = Some(p.workload.name.clone());
    if let Some(t) = p.traffic.as_mut() {
        t.router = Router::Replicas;
    }
    let err = router_for(&p, &conn, "shop").err().expect("refused");
    assert!(
        err.to_string()
            .contains("workload.name and workload.canary are both `checkout`"),
        "{err}"
    );
}
