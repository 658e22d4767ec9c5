//! The shared clients under the simulator's faults, over real HTTP: the cluster watch and the
//! Prometheus sampler recover by themselves after an outage, a 410 relists without losing or
//! duplicating pods, and 403/404 answers name what was refused.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use warroom::app::console::router_for;
use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::client::{Connection, connect};
use warroom::cluster::model::{ClusterEvent, PodView};
use warroom::cluster::watch::{self, Workloads};
use warroom::health::Health;
use warroom::metrics::prometheus::{PromClient, PromConfig};
use warroom::metrics::{MetricsEvent, sampler};
use warroom::plan::{TrackName, Weight};
use warroom::sim::server::Simulator;
use warroom::traffic::follow::follow;
use warroom::traffic::{RouterError, TrafficEvent};

const DEADLINE: Duration = Duration::from_secs(30);

async fn start() -> (Simulator, Connection, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, conn) = common::start_demo_sim(dir.path()).await;
    (sim, conn, dir)
}

/// The console's state, fed the watch's events through `update` as the console does.
struct Screen {
    app: App,
    relists: usize,
    /// Health reports other than live or connecting, in order.
    outages: Vec<Health>,
}

impl Default for Screen {
    fn default() -> Self {
        let app = App::new(
            common::demo_plan(),
            Target {
                environment: "development".into(),
                namespace: "shop".into(),
                context: "sim-development".into(),
                kubeconfig_hint: None,
            },
            "test".into(),
            SystemTime::now(),
        );
        Screen {
            app,
            relists: 0,
            outages: Vec::new(),
        }
    }
}

impl Screen {
    fn apply(&mut self, event: ClusterEvent) {
        match &event {
            ClusterEvent::PodsRelisted(_) => self.relists += 1,
            ClusterEvent::Health(h @ (Health::Degraded { .. } | Health::Forbidden(_))) => {
                self.outages.push(h.clone())
            }
            _ => {}
        }
        update(&mut self.app, Action::Cluster(event));
    }

    fn pods(&self) -> &BTreeMap<String, PodView> {
        &self.app.cluster.pods
    }

    fn health(&self) -> &Health {
        &self.app.cluster.health
    }

    fn running(&self) -> usize {
        self.pods()
            .values()
            .filter(|p| p.status == "Running")
            .count()
    }
}

/// Applies events until `done` holds; panics with `what` at the deadline.
async fn until(
    rx: &mut UnboundedReceiver<ClusterEvent>,
    screen: &mut Screen,
    what: &str,
    done: impl Fn(&Screen) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    while !done(screen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(event)) => screen.apply(event),
            _ => panic!(
                "{what}: not seen before the deadline; pods {:?}, health {:?}",
                screen.pods().keys().collect::<Vec<_>>(),
                screen.health()
            ),
        }
    }
}

fn watch_cluster(conn: &Connection, cancel: &CancellationToken) -> UnboundedReceiver<ClusterEvent> {
    let (tx, rx) = unbounded_channel();
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
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_watch_rides_out_an_api_outage_and_keeps_its_pods() {
    let (sim, conn, _dir) = start().await;
    let cancel = CancellationToken::new();
    let mut rx = watch_cluster(&conn, &cancel);
    let mut screen = Screen::default();
    until(&mut rx, &mut screen, "six Running pods", |s| {
        s.running() == 6 && s.health().is_live()
    })
    .await;

    // The ReplicaSets arrive too: each track's current revision, no old pods at rest.
    until(&mut rx, &mut screen, "a ReplicaSet per track", |s| {
        TrackName::BOTH.iter().all(|t| {
            let current = s.app.cluster.workloads.get(t).and_then(|w| w.revision);
            current.is_some()
                && s.app
                    .cluster
                    .replica_sets
                    .values()
                    .any(|r| r.track == *t && r.revision == current && r.ready > 0)
        })
    })
    .await;
    assert_eq!(screen.app.cluster.old_pods(TrackName::Stable), 0);

    common::post_fault(&sim, r#"{"kind":"api_outage","for":"3s"}"#).await;
    until(&mut rx, &mut screen, "the outage reported", |s| {
        matches!(s.health(), Health::Degraded { .. })
    })
    .await;
    let Health::Degraded { error, .. } = screen.health() else {
        unreachable!()
    };
    assert!(
        error.starts_with("cannot watch ") && error.contains(" in namespace shop: "),
        "{error}"
    );
    assert_eq!(
        screen.pods().len(),
        6,
        "the last pods stay on screen during the outage"
    );

    // Nobody touches anything: the watch comes back by itself (resuming, or relisting when
    // its resourceVersion is gone) with the same pods.
    until(&mut rx, &mut screen, "live again after the outage", |s| {
        s.health().is_live()
    })
    .await;
    until(&mut rx, &mut screen, "the same six pods", |s| {
        s.running() == 6
    })
    .await;
    assert_eq!(screen.pods().len(), 6, "{:?}", screen.pods().keys());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_expiry_relists_without_losing_or_duplicating_pods() {
    let (sim, conn, _dir) = start().await;
    let cancel = CancellationToken::new();
    let mut rx = watch_cluster(&conn, &cancel);
    let mut screen = Screen::default();
    until(&mut rx, &mut screen, "six Running pods", |s| {
        s.running() == 6
    })
    .await;
    let before: Vec<String> = screen.pods().keys().cloned().collect();
    let relists = screen.relists;

    common::post_fault(&sim, r#"{"kind":"watch_expiry"}"#).await;
    until(&mut rx, &mut screen, "a relist after 410 Gone", |s| {
        s.relists > relists
    })
    .await;
    let after: Vec<String> = screen.pods().keys().cloned().collect();
    assert_eq!(after, before, "the same pods, once each");
    // A 410 is routine: the source never looked down, not even for a moment.
    assert!(screen.health().is_live(), "{:?}", screen.health());
    assert_eq!(screen.outages, Vec::new(), "a 410 was shown as an outage");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_watch_names_verb_resource_and_namespace_and_recovers_when_allowed() {
    let (sim, conn, _dir) = start().await;
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"list","resource":"pods","namespace":"shop","for":"3s"}"#,
    )
    .await;
    let cancel = CancellationToken::new();
    let mut rx = watch_cluster(&conn, &cancel);
    let mut screen = Screen::default();
    until(&mut rx, &mut screen, "forbidden reported", |s| {
        matches!(s.health(), Health::Forbidden(_))
    })
    .await;
    let Health::Forbidden(why) = screen.health() else {
        unreachable!()
    };
    assert!(why.contains("cannot watch pods in namespace shop"), "{why}");
    assert!(why.contains("forbidden (RBAC)"), "{why}");
    assert!(
        why.contains("User \"warroom-sim\" cannot list resource \"pods\""),
        "{why}"
    );
    // When the permission is back, the watch gets going without a restart.
    until(&mut rx, &mut screen, "pods once allowed", |s| {
        s.running() == 6 && s.health().is_live()
    })
    .await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_weight_write_names_verb_and_object_and_a_missing_route_is_named() {
    let (sim, conn, _dir) = start().await;
    let plan = common::demo_plan();
    let router = router_for(&plan, &conn, "shop").expect("router");
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","verb":"patch","resource":"httproutes"}"#,
    )
    .await;
    let err = router
        .set_weight(Weight::clamped(20))
        .await
        .expect_err("patch refused");
    let msg = err.to_string();
    assert!(matches!(err, RouterError::Refused(_)), "{err:?}");
    assert!(
        msg.contains("cannot patch httproutes.gateway.networking.k8s.io shop/checkout: forbidden"),
        "{msg}"
    );
    // Reading is still allowed, and the weight did not move.
    assert_eq!(router.weight().await.expect("reads"), Weight::ZERO);

    let other = router_for(&plan, &conn, "nowhere").expect("router");
    let msg = other
        .weight()
        .await
        .expect_err("no route there")
        .to_string();
    assert!(
        msg.contains("httproutes.gateway.networking.k8s.io nowhere/checkout: not found"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampler_keeps_the_last_data_through_a_prometheus_outage_and_recovers() {
    let (sim, _conn, _dir) = start().await;
    let probes = common::demo_probes();
    let client =
        PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_secs(5))).expect("client");
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(sampler::run(
        client,
        probes,
        Duration::from_millis(200),
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    let deadline = Instant::now() + DEADLINE;
    let mut next = async || common::next_by(&mut rx, deadline, "sampler event").await;
    // Numbers first.
    loop {
        if let MetricsEvent::Samples(s) = next().await
            && s.iter().any(|s| s.point.value.is_some())
        {
            break;
        }
    }
    common::post_fault(&sim, r#"{"kind":"prometheus_outage","for":"2s"}"#).await;
    // The outage: health turns, and until it ends no batch of empty points replaces the data.
    let error = loop {
        match next().await {
            MetricsEvent::Health(Health::Degraded { error, .. }) => break error,
            MetricsEvent::Health(other) => panic!("unexpected health {other:?}"),
            MetricsEvent::Samples(_) | MetricsEvent::Unanswered { .. } => {}
        }
    };
    assert!(error.contains("unavailable"), "{error}");
    loop {
        match next().await {
            MetricsEvent::Samples(s) => assert!(
                s.iter().any(|s| s.point.value.is_some()),
                "a batch without any number during or after the outage: {s:?}"
            ),
            MetricsEvent::Health(Health::Live) => break,
            MetricsEvent::Health(_) | MetricsEvent::Unanswered { .. } => {}
        }
    }
    // And numbers again.
    loop {
        if let MetricsEvent::Samples(s) = next().await {
            assert!(s.iter().any(|s| s.point.value.is_some()), "{s:?}");
            break;
        }
    }
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_pressed_during_an_api_outage_lands_when_the_server_is_back() {
    let (sim, conn, _dir) = start().await;
    let plan = common::demo_plan();
    let router = router_for(&plan, &conn, "shop").expect("router");
    router
        .set_weight(Weight::clamped(30))
        .await
        .expect("weight 30");
    let (tx, mut rx) = unbounded_channel();
    let runner = common::runner(&conn, tx);
    let mut screen = Screen::default();
    let app = &mut screen.app;
    app.traffic.observed = Some(Weight::clamped(30));

    common::post_fault(&sim, r#"{"kind":"api_outage","for":"2s"}"#).await;
    let bang = Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE));
    for effect in update(app, bang) {
        runner.run(effect);
    }
    common::settle(app, &runner, &mut rx, Instant::now() + DEADLINE).await;
    let log: Vec<&str> = app.log.iter().map(|l| l.text.as_str()).collect();
    assert!(
        log.iter()
            .any(|l| l.starts_with("rollback write attempt 1 failed")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("canary weight 0% stored")),
        "{log:#?}"
    );
    assert_eq!(router.weight().await.expect("weight"), Weight::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_refusing_connections_is_named_unreachable() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\ncurrent-context: gone\n"
        ),
    )
    .expect("kubeconfig");
    let conn = connect(Some(&kubeconfig), None)
        .await
        .expect("client built");
    let cancel = CancellationToken::new();
    let mut rx = watch_cluster(&conn, &cancel);
    let mut screen = Screen::default();
    until(&mut rx, &mut screen, "unreachable reported", |s| {
        matches!(s.health(), Health::Degraded { .. })
    })
    .await;
    let Health::Degraded { error, .. } = screen.health() else {
        unreachable!()
    };
    assert!(error.contains("API server unreachable"), "{error}");
    assert!(error.contains("deployment shop/checkout"), "{error}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traffic_source_comes_back_after_an_outage_though_the_route_never_changes() {
    let (sim, conn, _dir) = start().await;
    let router = router_for(&common::demo_plan(), &conn, "shop").expect("router");
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(follow(
        router,
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    let deadline = Instant::now() + DEADLINE;
    let mut next = async || common::next_by(&mut rx, deadline, "traffic event").await;
    while next().await != TrafficEvent::Weight(Weight::ZERO) {}

    common::post_fault(&sim, r#"{"kind":"api_outage","for":"2s"}"#).await;
    loop {
        if let TrafficEvent::Health(Health::Degraded { error, .. }) = next().await {
            assert!(error.contains("httproutes"), "{error}");
            break;
        }
    }
    // Nobody edits the HTTPRoute: the source is seen live again by itself, weight and all.
    let mut live = false;
    loop {
        match next().await {
            TrafficEvent::Health(Health::Live) => live = true,
            TrafficEvent::Weight(w) if live => {
                assert_eq!(w, Weight::ZERO);
                break;
            }
            _ => {}
        }
    }
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_traffic_watch_shows_forbidden_and_a_refused_rollback_is_not_retried() {
    let (sim, conn, _dir) = start().await;
    let router = router_for(&common::demo_plan(), &conn, "shop").expect("router");
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","resource":"httproutes","namespace":"shop"}"#,
    )
    .await;
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(follow(
        router.clone(),
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = common::next_by(&mut rx, deadline, "traffic event").await;
        if let TrafficEvent::Health(Health::Forbidden(why)) = event {
            assert!(why.contains("cannot watch httproutes"), "{why}");
            assert!(why.contains("forbidden (RBAC)"), "{why}");
            break;
        }
    }
    cancel.cancel();

    // `!` while the write is forbidden: reported at once, not retried for minutes.
    let (tx, mut rx) = unbounded_channel();
    let runner = common::runner(&conn, tx);
    let mut screen = Screen::default();
    let app = &mut screen.app;
    app.traffic.observed = Some(Weight::clamped(10));
    let bang = Action::Key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE));
    for effect in update(app, bang) {
        runner.run(effect);
    }
    common::settle(app, &runner, &mut rx, deadline).await;
    let log: Vec<&str> = app.log.iter().map(|l| l.text.as_str()).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("canary weight 0% NOT set") && l.contains("forbidden")),
        "{log:#?}"
    );
    assert_eq!(
        app.deployment.status,
        warroom::engine::RunStatus::RollbackFailed,
        "the header must not say ROLLED BACK: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("rollback write attempt")),
        "a refusal was retried: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_expiry_is_not_a_traffic_outage() {
    let (sim, conn, _dir) = start().await;
    let router = router_for(&common::demo_plan(), &conn, "shop").expect("router");
    let (tx, mut rx) = unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(follow(
        router.clone(),
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    let deadline = Instant::now() + DEADLINE;
    while common::next_by(&mut rx, deadline, "first weight").await
        != TrafficEvent::Weight(Weight::ZERO)
    {}
    common::post_fault(&sim, r#"{"kind":"watch_expiry"}"#).await;
    // After the 410 the watcher relists, which reports the weight again; then a change made
    // meanwhile must arrive, and nothing in between may be a health change.
    router
        .set_weight(Weight::clamped(10))
        .await
        .expect("weight 10");
    loop {
        match common::next_by(&mut rx, deadline, "the new weight").await {
            TrafficEvent::Weight(w) if w == Weight::clamped(10) => break,
            TrafficEvent::Weight(_) => {}
            TrafficEvent::Health(h) => panic!("a 410 was shown as {h:?}"),
        }
    }
    cancel.cancel();
}

/// Runs `work` as a plan step (or a rollback's, per `purpose`) through the effect runner and
/// collects what it reports until its result: the progress notes (failed attempts) and the
/// result.
async fn carry_out(
    runner: &warroom::app::effects::EffectRunner,
    rx: &mut UnboundedReceiver<Action>,
    purpose: warroom::app::action::Purpose,
    work: warroom::engine::Work,
) -> (Vec<String>, Result<String, String>) {
    let id = warroom::app::action::EffectId(7);
    runner.run(warroom::app::action::Effect::Work {
        id,
        environment: "development".into(),
        phase: "test".into(),
        purpose,
        work,
    });
    let deadline = Instant::now() + DEADLINE;
    let mut progress = Vec::new();
    loop {
        match common::next_by(rx, deadline, "the work's result").await {
            Action::EffectProgress { id: i, note } if i == id => progress.push(note),
            Action::EffectDone { id: i, result } if i == id => return (progress, result),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_image_started_during_an_api_outage_lands_when_the_server_is_back() {
    use k8s_openapi::api::apps::v1::Deployment;
    let (sim, conn, _dir) = start().await;
    let (tx, mut rx) = unbounded_channel();
    let runner = common::runner(&conn, tx);
    common::post_fault(&sim, r#"{"kind":"api_outage","for":"2s"}"#).await;
    let (progress, result) = carry_out(
        &runner,
        &mut rx,
        warroom::app::action::Purpose::Step,
        warroom::engine::Work::SetImage {
            track: TrackName::Canary,
            timeout: Duration::from_secs(25),
        },
    )
    .await;
    let done = result.expect("the image is set once the API server is back");
    assert!(done.contains("successfully rolled out"), "{done}");
    assert!(
        progress
            .first()
            .is_some_and(|p| p.starts_with("attempt 1 failed: ")
                && p.contains("(503)")
                && p.contains("retrying in 250 ms")),
        "{progress:#?}"
    );
    let api: kube::Api<Deployment> = kube::Api::namespaced(conn.client.clone(), "shop");
    let canary = api.get("checkout-canary").await.expect("canary");
    let image = canary
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().find(|c| c.name == "app"))
        .and_then(|c| c.image);
    assert_eq!(
        image.as_deref(),
        Some(
            common::demo_plan()
                .workload
                .image
                .as_deref()
                .expect("image")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_set_image_is_not_retried() {
    let (sim, conn, _dir) = start().await;
    let (tx, mut rx) = unbounded_channel();
    let runner = common::runner(&conn, tx);
    common::post_fault(
        &sim,
        r#"{"kind":"forbidden","resource":"deployments","namespace":"shop"}"#,
    )
    .await;
    let (progress, result) = carry_out(
        &runner,
        &mut rx,
        warroom::app::action::Purpose::Rollback,
        warroom::engine::Work::SetImage {
            track: TrackName::Canary,
            timeout: Duration::from_secs(25),
        },
    )
    .await;
    let err = result.expect_err("forbidden");
    assert!(
        err.starts_with("forbidden: cannot get deployment shop/checkout-canary"),
        "{err}"
    );
    assert!(progress.is_empty(), "a refusal was retried: {progress:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_is_not_retried_during_an_api_outage() {
    let (sim, conn, _dir) = start().await;
    let (tx, mut rx) = unbounded_channel();
    let runner = common::runner(&conn, tx);
    common::post_fault(&sim, r#"{"kind":"api_outage","for":"2s"}"#).await;
    let (progress, result) = carry_out(
        &runner,
        &mut rx,
        warroom::app::action::Purpose::Rollback,
        warroom::engine::Work::Undo {
            track: TrackName::Stable,
        },
    )
    .await;
    let err = result.expect_err("an outage");
    assert!(err.contains("(503)"), "{err}");
    assert!(progress.is_empty(), "an undo was retried: {progress:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_weight_write_retries_through_an_outage_and_a_rollback_write_supersedes_it() {
    use warroom::app::action::{Effect, EffectId, Purpose};
    use warroom::engine::Work;
    let (sim, conn, _dir) = start().await;
    let router = router_for(&common::demo_plan(), &conn, "shop").expect("router");
    let (tx, mut rx) = unbounded_channel();
    let runner = common::runner(&conn, tx);
    common::post_fault(&sim, r#"{"kind":"api_outage","for":"3s"}"#).await;
    let write = |id: u64, percent: i64, emergency: bool| Effect::Work {
        id: EffectId(id),
        environment: "development".into(),
        phase: "test".into(),
        purpose: if emergency {
            Purpose::Rollback
        } else {
            Purpose::Step
        },
        work: Work::SetWeight {
            weight: Weight::clamped(percent),
            emergency,
        },
    };
    runner.run(write(1, 20, false));
    let deadline = Instant::now() + DEADLINE;
    // The step's write fails and says it will try again…
    loop {
        match common::next_by(&mut rx, deadline, "a failed attempt").await {
            Action::EffectProgress {
                id: EffectId(1),
                note,
            } => {
                assert!(
                    note.starts_with("weight write attempt 1 failed: "),
                    "{note}"
                );
                break;
            }
            Action::EffectDone {
                id: EffectId(1),
                result,
            } => {
                panic!("the step's write ended during the outage: {result:?}")
            }
            _ => {}
        }
    }
    // …and a rollback's write, sent while it waits, ends those retries and goes next.
    runner.run(write(2, 0, true));
    let mut step = None;
    let mut rollback = None;
    while step.is_none() || rollback.is_none() {
        match common::next_by(&mut rx, deadline, "both results").await {
            Action::EffectDone {
                id: EffectId(1),
                result,
            } => {
                assert!(
                    rollback.is_none(),
                    "the rollback's write waited for the step's"
                );
                step = Some(result);
            }
            Action::EffectDone {
                id: EffectId(2),
                result,
            } => rollback = Some(result),
            _ => {}
        }
    }
    let step = step.and_then(Result::err).unwrap_or_default();
    assert!(step.contains("superseded by rollback"), "{step}");
    assert!(rollback.is_some_and(|r| r.is_ok()));
    assert_eq!(router.weight().await.expect("weight"), Weight::ZERO);
}
