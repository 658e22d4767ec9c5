//! Webhook delivery against a real HTTP receiver on loopback: retries, Retry-After, giving up,
//! the `on` filter, and that no report ever shows the webhook's secret path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use warroom::notify::{
    Attempt, AttemptOutcome, Event, MAX_ATTEMPTS, Message, Notifier, Timing, mask_url,
    webhook_client,
};
use warroom::plan::{Notify, NotifyEvent};

/// Fast enough for tests, slow enough that a Retry-After of 1 s is clearly not the backoff.
const FAST: Timing = Timing {
    backoff_base: Duration::from_millis(10),
    request_timeout: Duration::from_secs(5),
};

/// What the receiver answers to one request.
#[derive(Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    /// Wait this long before answering (to trip the client's timeout).
    delay: Duration,
    /// Answer with the request's path and query in the body, as a careless receiver might.
    echo_url: bool,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
            echo_url: false,
        }
    }
}

struct Hit {
    body: Vec<u8>,
    content_type: String,
    uri: String,
    at: Instant,
}

/// A webhook receiver: answers from `script` in order, 200 once it runs out.
struct Receiver {
    script: Mutex<VecDeque<Reply>>,
    hits: Mutex<Vec<Hit>>,
    /// When set, the first request waits for the test's go before answering.
    gate: Option<tokio::sync::Notify>,
    responded: AtomicUsize,
}

impl Receiver {
    fn hits(&self) -> usize {
        self.hits.lock().expect("hits").len()
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.hits
            .lock()
            .expect("hits")
            .iter()
            .map(|h| h.body.clone())
            .collect()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let first = {
        let mut hits = receiver.hits.lock().expect("hits");
        hits.push(Hit {
            body: body.to_vec(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            uri: uri.to_string(),
            at: Instant::now(),
        });
        hits.len() == 1
    };
    if first && let Some(gate) = &receiver.gate {
        gate.notified().await;
    }
    let reply = receiver
        .script
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or(Reply::status(200));
    tokio::time::sleep(reply.delay).await;
    receiver.responded.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(reply.status).expect("status");
    let body = if reply.echo_url {
        format!("no such hook: {uri}")
    } else if status.is_success() {
        "ok".to_string()
    } else {
        "invalid_payload".to_string()
    };
    let mut response = (status, body).into_response();
    if let Some(after) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().expect("header"));
    }
    response
}

/// Starts a receiver on 127.0.0.1:0; returns it and its base URL.
async fn serve(script: Vec<Reply>, gated: bool) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver {
        script: Mutex::new(script.into()),
        hits: Mutex::new(Vec::new()),
        gate: gated.then(tokio::sync::Notify::new),
        responded: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, format!("http://{addr}"))
}

/// A `report` callback that keeps every attempt.
fn recorder() -> (
    Arc<Mutex<Vec<Attempt>>>,
    impl Fn(Attempt) + Send + Sync + 'static,
) {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let sink = attempts.clone();
    (attempts, move |a| sink.lock().expect("attempts").push(a))
}

fn attempts_of(attempts: &Mutex<Vec<Attempt>>) -> Vec<Attempt> {
    attempts.lock().expect("attempts").clone()
}

/// Polls `ready` until it holds; fails the test after 20 s.
async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn config(webhook: String, on: &[NotifyEvent]) -> Notify {
    Notify {
        webhook,
        on: on.to_vec(),
    }
}

fn breach_message() -> Message {
    let mut m = Message::new(
        Event::Breach,
        "checkout 2.4.0",
        "checkout 2.4.0: error rate breached in production",
    );
    m.phase = Some("canary".into());
    m.environment = Some("production".into());
    m.operator = Some("ana".into());
    m.figures = vec![
        ("error_rate".into(), "2.1 % > 1 %".into()),
        ("weight".into(), "30 %".into()),
    ];
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_then_delivers_without_blocking_the_sender() {
    let (receiver, base) = serve(
        vec![Reply::status(500), Reply::status(500), Reply::status(200)],
        true,
    )
    .await;
    let (attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(format!("{base}/services/T0/B0/XYZ"), &[])),
        webhook_client().expect("client"),
        report,
        FAST,
    );

    let first = notifier.send(breach_message()).expect("queued");
    // The receiver cannot answer before the test releases it, so `send` did not wait for it.
    assert_eq!(receiver.responded.load(Ordering::SeqCst), 0);
    // With the delivery stuck inside the receiver, `send` still returns at once.
    wait_for("the first request", || receiver.hits() == 1).await;
    let mut done = Message::new(Event::Done, "checkout 2.4.0", "checkout 2.4.0: done");
    done.operator = Some("ana".into());
    let second = notifier.send(done).expect("queued");
    assert!(second > first);
    assert!(attempts_of(&attempts).is_empty());

    receiver.gate.as_ref().expect("gate").notify_one();
    wait_for("four attempts", || attempts_of(&attempts).len() == 4).await;
    notifier.flush(Duration::from_secs(5)).await;

    let seen: Vec<(u64, u32, AttemptOutcome)> = attempts_of(&attempts)
        .into_iter()
        .map(|a| (a.message_id, a.attempt, a.outcome))
        .collect();
    assert!(
        matches!(&seen[0], (id, 1, AttemptOutcome::Retrying { status_or_error, .. })
            if *id == first && status_or_error.starts_with("HTTP 500")),
        "{seen:?}"
    );
    assert!(
        matches!(&seen[1], (id, 2, AttemptOutcome::Retrying { status_or_error, .. })
            if *id == first && status_or_error.starts_with("HTTP 500")),
        "{seen:?}"
    );
    assert_eq!(
        seen[2],
        (first, 3, AttemptOutcome::Delivered { status: 200 })
    );
    assert_eq!(
        seen[3],
        (second, 1, AttemptOutcome::Delivered { status: 200 })
    );

    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    for hit in receiver.hits.lock().expect("hits").iter() {
        assert_eq!(hit.content_type, "application/json");
    }
    let json: serde_json::Value = serde_json::from_slice(&bodies[0]).expect("JSON body");
    assert_eq!(
        json["text"],
        "checkout 2.4.0: error rate breached in production — \
         error_rate: 2.1 % &gt; 1 %, weight: 30 %"
    );
    let w = &json["warroom"];
    assert_eq!(w["plan"], "checkout 2.4.0");
    assert_eq!(w["phase"], "canary");
    assert_eq!(w["environment"], "production");
    assert_eq!(w["event"], "breach");
    assert_eq!(w["operator"], "ana");
    assert_eq!(
        w["figures"],
        serde_json::json!({"error_rate": "2.1 % > 1 %", "weight": "30 %"})
    );
    let json: serde_json::Value = serde_json::from_slice(&bodies[3]).expect("JSON body");
    assert_eq!(json["text"], "checkout 2.4.0: done");
    assert_eq!(json["warroom"]["event"], "done");
    assert_eq!(json["warroom"]["phase"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_retry_after_on_429() {
    let (receiver, base) = serve(
        vec![
            Reply {
                retry_after: Some("1"),
                ..Reply::status(429)
            },
            Reply::status(200),
        ],
        false,
    )
    .await;
    let (attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(format!("{base}/hook"), &[])),
        webhook_client().expect("client"),
        report,
        FAST,
    );
    notifier.send(breach_message()).expect("queued");
    wait_for("two attempts", || attempts_of(&attempts).len() == 2).await;

    let seen = attempts_of(&attempts);
    assert!(
        matches!(&seen[0].outcome, AttemptOutcome::Retrying { status_or_error, after }
            if status_or_error.starts_with("HTTP 429") && *after == Duration::from_secs(1)),
        "{seen:?}"
    );
    assert_eq!(seen[1].outcome, AttemptOutcome::Delivered { status: 200 });
    let gap = seen[1].at.duration_since(seen[0].at).expect("in order");
    assert!(gap >= Duration::from_secs(1), "attempts {gap:?} apart");
    let hits = receiver.hits.lock().expect("hits");
    let gap = hits[1].at.duration_since(hits[0].at);
    assert!(gap >= Duration::from_secs(1), "requests {gap:?} apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_at_once_on_400() {
    let (receiver, base) = serve(vec![Reply::status(400)], false).await;
    let (attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(format!("{base}/hook"), &[])),
        webhook_client().expect("client"),
        report,
        FAST,
    );
    let id = notifier.send(breach_message()).expect("queued");
    wait_for("one attempt", || !attempts_of(&attempts).is_empty()).await;
    notifier.flush(Duration::from_secs(5)).await;

    let seen = attempts_of(&attempts);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].message_id, seen[0].attempt), (id, 1));
    assert!(
        matches!(&seen[0].outcome, AttemptOutcome::GaveUp { why }
            if why.contains("400") && why.contains("invalid_payload")),
        "{seen:?}"
    );
    assert_eq!(receiver.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_only_wanted_events_and_always_steps() {
    let (receiver, base) = serve(Vec::new(), false).await;
    let (attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(format!("{base}/hook"), &[NotifyEvent::Breach])),
        webhook_client().expect("client"),
        report,
        FAST,
    );
    let plan = "checkout 2.4.0";
    assert_eq!(
        notifier.send(Message::new(Event::Phase, plan, "phase canary started")),
        None
    );
    assert!(
        notifier
            .send(Message::new(Event::Step, plan, "tell #payments"))
            .is_some()
    );
    assert_eq!(
        notifier.send(Message::new(Event::Rollback, plan, "rollback started")),
        None
    );
    assert!(notifier.send(breach_message()).is_some());
    notifier.flush(Duration::from_secs(5)).await;

    let events: Vec<String> = receiver
        .bodies()
        .iter()
        .map(|b| {
            let json: serde_json::Value = serde_json::from_slice(b).expect("JSON body");
            json["warroom"]["event"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(events, ["step", "breach"]);
    assert_eq!(attempts_of(&attempts).len(), 2);

    let off = Notifier::start_with(
        None,
        webhook_client().expect("client"),
        |_| panic!("nothing to report"),
        FAST,
    );
    assert_eq!(off.send(Message::new(Event::Step, plan, "x")), None);
    off.flush(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_never_show_the_secret_path() {
    // A receiver that echoes the URL in its 500s, until the notifier gives up.
    let (receiver, base) = serve(
        vec![
            Reply {
                echo_url: true,
                ..Reply::status(500)
            };
            MAX_ATTEMPTS as usize
        ],
        false,
    )
    .await;
    let secret = "/services/T0/B0/SECRETXYZ?token=TOKENABC";
    let webhook = format!("{base}{secret}");
    let (attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(webhook.clone(), &[])),
        webhook_client().expect("client"),
        report,
        FAST,
    );
    notifier.send(breach_message()).expect("queued");

    // Nothing listening: connection refused on every attempt.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let (refused, report) = recorder();
    let unreachable = Notifier::start_with(
        Some(&config(format!("http://{closed}{secret}"), &[])),
        webhook_client().expect("client"),
        report,
        FAST,
    );
    unreachable.send(breach_message()).expect("queued");

    let limit = MAX_ATTEMPTS as usize;
    wait_for("six attempts each", || {
        attempts_of(&attempts).len() == limit && attempts_of(&refused).len() == limit
    })
    .await;
    // The receiver did see the secret path: it was sent, only never reported.
    assert!(
        receiver
            .hits
            .lock()
            .expect("hits")
            .iter()
            .all(|h| h.uri == secret)
    );

    for seen in [attempts_of(&attempts), attempts_of(&refused)] {
        assert!(
            matches!(&seen[limit - 1].outcome, AttemptOutcome::GaveUp { why }
                if why.contains("gave up after 6 attempts")),
            "{seen:?}"
        );
        for attempt in &seen {
            let text = format!("{attempt:?}");
            for part in ["SECRETXYZ", "TOKENABC", "/services/"] {
                assert!(!text.contains(part), "{text}");
            }
        }
    }
    // The echoed URL was replaced by the masked one, so the report still says what happened.
    assert!(
        matches!(&attempts_of(&attempts)[0].outcome, AttemptOutcome::Retrying { status_or_error, .. }
            if status_or_error.contains(&mask_url(&webhook))),
        "{:?}",
        attempts_of(&attempts)
    );
    for debug in [format!("{notifier:?}"), format!("{unreachable:?}")] {
        assert!(
            !debug.contains("SECRETXYZ") && !debug.contains("TOKENABC"),
            "{debug}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_retried() {
    let (_receiver, base) = serve(
        vec![Reply {
            delay: Duration::from_secs(2),
            ..Reply::status(200)
        }],
        false,
    )
    .await;
    let (attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(format!("{base}/hook"), &[])),
        webhook_client().expect("client"),
        report,
        Timing {
            request_timeout: Duration::from_millis(200),
            ..FAST
        },
    );
    notifier.send(breach_message()).expect("queued");
    wait_for("two attempts", || attempts_of(&attempts).len() == 2).await;
    let seen = attempts_of(&attempts);
    assert!(
        matches!(&seen[0].outcome, AttemptOutcome::Retrying { status_or_error, .. }
            if status_or_error.contains("no answer within 0.2 s")),
        "{seen:?}"
    );
    assert_eq!(seen[1].outcome, AttemptOutcome::Delivered { status: 200 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_gives_up_at_its_limit() {
    // The receiver holds the request until released, which this test never does.
    let (receiver, base) = serve(Vec::new(), true).await;
    let (_attempts, report) = recorder();
    let notifier = Notifier::start_with(
        Some(&config(format!("{base}/hook"), &[])),
        webhook_client().expect("client"),
        report,
        FAST,
    );
    notifier.send(breach_message()).expect("queued");
    wait_for("the request", || receiver.hits() == 1).await;
    let started = Instant::now();
    notifier.flush(Duration::from_millis(200)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(4),
        "{took:?}"
    );
}
