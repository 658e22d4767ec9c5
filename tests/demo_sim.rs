//! The console's clients against the embedded simulator over real HTTP: the `+` and `!` effects
//! change the HTTPRoute, the cluster watch sees pods become Running, the sampler gets numbers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;

use warroom::app::console::{env_clients, router_for};
use warroom::app::effects::EffectRunner;
use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::model::ClusterEvent;
use warroom::cluster::watch::{self, Workloads};
use warroom::metrics::prometheus::{PromClient, PromConfig};
use warroom::metrics::{MetricsEvent, sampler};
use warroom::plan::{Plan, TrackName, Weight};
use warroom::sim::server::Simulator;

const DEADLINE: Duration = Duration::from_secs(30);

fn demo_plan() -> Arc<Plan> {
    common::demo_plan()
}

async fn start() -> (Simulator, warroom::cluster::client::Connection) {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    common::start_demo_sim(&dir).await
}

fn app(plan: Arc<Plan>) -> App {
    App::new(
        plan,
        Target {
            environment: "development".into(),
            namespace: "shop".into(),
            context: "sim-development".into(),
            kubeconfig_hint: None,
        },
        "test".into(),
        SystemTime::now(),
    )
}

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// The effect runner with the development environment's clients.
fn runner_for(
    plan: &Arc<Plan>,
    conn: &warroom::cluster::client::Connection,
    tx: tokio::sync::mpsc::UnboundedSender<Action>,
) -> EffectRunner {
    let env = env_clients(plan, "development", "shop", conn).expect("clients");
    EffectRunner::start(
        plan.clone(),
        std::path::PathBuf::from("."),
        vec![env],
        Default::default(),
        tx,
    )
}

/// Feeds effect results back into `app` until none is in flight.
async fn settle(app: &mut App, runner: &EffectRunner, rx: &mut UnboundedReceiver<Action>) {
    common::settle(app, runner, rx, Instant::now() + DEADLINE).await;
}

#[tokio::test]
async fn plus_key_effect_moves_the_httproute_weight_and_bang_zeroes_it() {
    let (_sim, conn) = start().await;
    let plan = demo_plan();
    let router = router_for(&plan, &conn, "shop").expect("router");
    let (tx, mut rx) = unbounded_channel();
    let runner = runner_for(&plan, &conn, tx);
    let mut app = app(plan);
    app.traffic.observed = Some(router.weight().await.expect("weight readable"));
    assert_eq!(app.traffic.observed, Some(Weight::ZERO));

    for effect in update(&mut app, key('+')) {
        runner.run(effect);
    }
    for effect in update(&mut app, key('+')) {
        runner.run(effect);
    }
    settle(&mut app, &runner, &mut rx).await;
    assert_eq!(router.weight().await.expect("weight"), Weight::clamped(20));

    // Read back with a plain kube client, as kubectl would see it.
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        conn.client.clone(),
        "shop",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
        )),
    );
    let route = api.get("checkout").await.expect("route");
    let refs = route.data["spec"]["rules"][0]["backendRefs"].clone();
    assert_eq!(refs[0]["weight"], 80, "{refs}");
    assert_eq!(refs[1]["weight"], 20, "{refs}");

    for effect in update(&mut app, key('!')) {
        runner.run(effect);
    }
    settle(&mut app, &runner, &mut rx).await;
    assert_eq!(router.weight().await.expect("weight"), Weight::ZERO);
    assert!(app.log.iter().any(|l| l.text.contains("ROLLBACK")));
}

#[tokio::test]
async fn cluster_watch_sees_both_tracks_running() {
    let (_sim, conn) = start().await;
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(watch::run(
        conn.client.clone(),
        Workloads {
            namespace: "shop".into(),
            stable: "checkout".into(),
            canary: Some("checkout-canary".into()),
        },
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    let mut app = app(demo_plan());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let running = |t: TrackName| {
            app.cluster
                .pods
                .values()
                .filter(|p| p.track == Some(t) && p.status == "Running" && p.ready_containers == 1)
                .count()
        };
        if running(TrackName::Stable) == 4 && running(TrackName::Canary) == 2 {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let event: ClusterEvent = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "pods not Running before the deadline: {:?}",
                    app.cluster.pods
                )
            })
            .expect("watch alive");
        update(&mut app, Action::Cluster(event));
    }
    assert!(app.cluster.health.is_live());
    assert_eq!(
        app.cluster
            .workloads
            .get(&TrackName::Stable)
            .map(|w| w.desired),
        Some(4)
    );
    cancel.cancel();
}

#[tokio::test]
async fn sampler_reads_error_rate_and_latency_for_both_tracks() {
    let (sim, _conn) = start().await;
    let probes = common::demo_probes();
    let prom =
        PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_secs(5))).expect("client");
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(sampler::run(
        prom,
        probes,
        Duration::from_millis(500),
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    let deadline = Instant::now() + DEADLINE;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("no stable latency and error rate before the deadline; seen {seen:?}")
            })
            .expect("sampler alive");
        if let MetricsEvent::Samples(samples) = event {
            for s in samples {
                if s.track == TrackName::Stable && s.point.value.is_some() {
                    seen.insert(s.metric);
                }
            }
        }
    }
    cancel.cancel();
}

#[tokio::test]
async fn rollback_write_supersedes_weight_writes_still_queued() {
    use warroom::app::{Effect, EffectId};
    let (_sim, conn) = start().await;
    let plan = demo_plan();
    let router = router_for(&plan, &conn, "shop").expect("router");
    let (tx, mut rx) = unbounded_channel();
    let runner = runner_for(&plan, &conn, tx);
    // Sent before the writer task first runs (current-thread runtime), so all four are queued.
    for (id, weight, emergency) in [(1, 10, false), (2, 20, false), (3, 30, false), (4, 0, true)] {
        runner.run(Effect::Work {
            id: EffectId(id),
            environment: "development".into(),
            phase: "Development".into(),
            purpose: warroom::app::action::Purpose::Operator,
            work: warroom::engine::Work::SetWeight {
                weight: Weight::clamped(weight),
                emergency,
            },
        });
    }
    let mut results = std::collections::BTreeMap::new();
    while results.len() < 4 {
        let action = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("every write reports back")
            .expect("channel open");
        if let Action::EffectDone { id, result } = action {
            results.insert(id.0, result);
        }
    }
    for id in 1..=3 {
        let result = &results[&id];
        assert!(
            result
                .as_ref()
                .is_err_and(|e| e.contains("superseded by rollback")),
            "write {id}: {result:?}"
        );
    }
    assert!(results[&4].is_ok(), "{:?}", results[&4]);
    assert_eq!(router.weight().await.expect("weight"), Weight::ZERO);
}
