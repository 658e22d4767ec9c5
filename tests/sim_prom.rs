//! End-to-end tests of the simulated Prometheus: generator → Tsdb → HTTP API over real sockets.
//! Waits are polls against a deadline; no test sleeps a fixed time to wait for state.

use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use warroom::sim::exposition::metrics_router;
use warroom::sim::faults::{self, Faults};
use warroom::sim::kube::KubeSim;
use warroom::sim::model::{ServiceTraffic, TrackTraffic, TrafficSnapshot};
use warroom::sim::prom_api::{PromFaults, router_with_faults};
use warroom::sim::traffic::{self, TrafficConfig, TrafficControl};
use warroom::sim::tsdb::Tsdb;

type R = Result<(), Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(30);

fn snapshot() -> TrafficSnapshot {
    TrafficSnapshot {
        services: vec![ServiceTraffic {
            namespace: "shop".into(),
            service: "checkout".into(),
            tracks: vec![
                TrackTraffic {
                    track: "stable".into(),
                    version: "2.4.0".into(),
                    weight: 90,
                    ready_pods: vec![
                        "checkout-s-1".into(),
                        "checkout-s-2".into(),
                        "checkout-s-3".into(),
                    ],
                    cpu_limit_cores: 0.5,
                },
                TrackTraffic {
                    track: "canary".into(),
                    version: "2.5.0-bad".into(),
                    weight: 10,
                    ready_pods: vec!["checkout-c-1".into()],
                    cpu_limit_cores: 0.5,
                },
            ],
        }],
    }
}

struct Sim {
    base: String,
    client: reqwest::Client,
    faults: PromFaults,
    traffic: TrafficControl,
    cancel: CancellationToken,
    _snapshots: watch::Sender<TrafficSnapshot>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Serves the API and /metrics on an ephemeral loopback port and runs the generator fast
/// (100 ms ticks, high request rate) so statistics settle within seconds.
async fn start() -> Result<Sim, Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tsdb = Tsdb::default();
    let faults = PromFaults::new();
    let app = router_with_faults(tsdb.clone(), faults.clone()).merge(metrics_router(tsdb.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let server_cancel = cancel.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_cancel.cancelled().await })
            .await;
    });
    let (tx, rx) = watch::channel(snapshot());
    let config = TrafficConfig {
        requests_per_second: 2000.0,
        tick: Duration::from_millis(100),
        seed: Some(42),
        ..TrafficConfig::default()
    };
    let control = config.control.clone();
    tokio::spawn(traffic::run(tsdb, rx, config, cancel.clone()));
    Ok(Sim {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        faults,
        traffic: control,
        cancel,
        _snapshots: tx,
    })
}

impl Sim {
    async fn get(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<(u16, Json), Box<dyn std::error::Error>> {
        let resp = self
            .client
            .get(format!("{}{path}?{}", self.base, encode(params)))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    /// The single value of an instant query, if it returned exactly one sample.
    async fn value(&self, query: &str) -> Result<Option<f64>, Box<dyn std::error::Error>> {
        let (status, body) = self.get("/api/v1/query", &[("query", query)]).await?;
        assert_eq!(status, 200, "{body}");
        let result = &body["data"]["result"];
        match result.as_array().map(Vec::as_slice) {
            Some([one]) => Ok(one["value"][1].as_str().and_then(|s| s.parse().ok())),
            _ => Ok(None),
        }
    }
}

/// reqwest's `query`/`form` helpers sit behind features the crate does not enable.
fn encode(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

async fn poll_until<F, Fut>(what: &str, mut check: F) -> R
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<(), String>, Box<dyn std::error::Error>>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = check().await?;
        match last {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{what}: not reached before deadline; last: {e}").into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_gets_a_tenth_of_traffic_and_bad_version_fails_a_fifth() -> R {
    let sim = start().await?;
    poll_until("stable ≈ 9 × canary and canary error ratio ≈ 0.2", || async {
        let stable = sim
            .value(r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="stable"}[3s]))"#)
            .await?;
        let canary = sim
            .value(r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary"}[3s]))"#)
            .await?;
        let ratio = sim
            .value(r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary",code=~"5.."}[3s])) / sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary"}[3s]))"#)
            .await?;
        let (Some(s), Some(c), Some(r)) = (stable, canary, ratio) else {
            return Ok(Err(format!("no data yet: {stable:?} {canary:?} {ratio:?}")));
        };
        let ok = (s / c - 9.0).abs() < 1.35 && (r - 0.2).abs() < 0.05 && (s + c - 2000.0).abs() < 300.0;
        Ok(if ok { Ok(()) } else { Err(format!("stable {s}, canary {c}, error ratio {r}")) })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_latency_and_cpu_queries_answer_over_http() -> R {
    let sim = start().await?;
    poll_until("p95 latency and CPU saturation available", || async {
        let p95 = sim
            .value(r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",service="checkout",track="stable"}[3s])))"#)
            .await?;
        let cpu = sim
            .value(r#"sum(rate(container_cpu_usage_seconds_total{namespace="shop",track="canary"}[3s])) / sum(kube_pod_container_resource_limits{namespace="shop",track="canary",resource="cpu"})"#)
            .await?;
        let (Some(p), Some(c)) = (p95, cpu) else {
            return Ok(Err(format!("no data yet: {p95:?} {cpu:?}")));
        };
        // Canary pod serves 200 req/s: (0.05 + 0.004 × 200) / 0.5 = 1.7.
        let ok = (0.1..0.3).contains(&p) && (c - 1.7).abs() < 0.3;
        Ok(if ok { Ok(()) } else { Err(format!("p95 {p}, cpu {c}")) })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_have_prometheus_json_shape() -> R {
    let sim = start().await?;
    poll_until("a vector result", || async {
        Ok(match sim.value("sum(up)").await? {
            Some(_) => Ok(()),
            None => Err("no up yet".into()),
        })
    })
    .await?;
    let (status, body) = sim
        .get(
            "/api/v1/query",
            &[("query", "up"), ("time", "2030-01-01T00:00:00Z")],
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let t = format!("{now:.3}");
    let (_, body) = sim
        .get(
            "/api/v1/query",
            &[("query", "up{pod=\"checkout-c-1\"}"), ("time", &t)],
        )
        .await?;
    let sample = &body["data"]["result"][0];
    assert_eq!(sample["metric"]["job"], "warroom-sim");
    assert_eq!(sample["metric"]["__name__"], "up");
    assert!(sample["value"][0].is_number(), "{sample}");
    assert_eq!(sample["value"][1], "1");

    let (_, body) = sim
        .get("/api/v1/query", &[("query", "1 / 0"), ("time", "100")])
        .await?;
    assert_eq!(
        body["data"],
        serde_json::json!({"resultType": "scalar", "result": [100, "+Inf"]})
    );

    let start = format!("{:.3}", now - 2.0);
    let end = format!("{now:.3}");
    let (status, body) = sim
        .get(
            "/api/v1/query_range",
            &[
                ("query", "sum(up)"),
                ("start", &start),
                ("end", &end),
                ("step", "1s"),
            ],
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let values = body["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!values.is_empty());
    assert!(
        values.iter().all(|p| p[0].is_number() && p[1].is_string()),
        "{values:?}"
    );

    let form = sim
        .client
        .post(format!("{}/api/v1/query", sim.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("query", "vector(2) * 3"), ("time", "10")]))
        .send()
        .await?;
    assert_eq!(form.status().as_u16(), 200);
    let body: Json = form.json().await?;
    assert_eq!(
        body["data"]["result"][0]["value"],
        serde_json::json!([10, "6"])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_rejected_with_prometheus_error_types() -> R {
    let sim = start().await?;
    let (status, body) = sim
        .get("/api/v1/query", &[("query", "sum(rate(x[5m])")])
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    // Word for word what Prometheus answers, position included.
    assert_eq!(
        body["error"],
        "invalid parameter \"query\": 1:16: parse error: unclosed left parenthesis"
    );

    let (status, body) = sim
        .get("/api/v1/query", &[("query", "up"), ("time", "soon")])
        .await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data"))
    );

    let (status, body) = sim
        .get("/api/v1/query", &[("query", "mad_over_time(up[5m])")])
        .await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (422, Some("execution"))
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("not supported"),
        "{body}"
    );

    let (status, body) = sim
        .get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "10"),
                ("end", "0"),
                ("step", "1"),
            ],
        )
        .await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_switch_makes_every_endpoint_unavailable() -> R {
    let sim = start().await?;
    sim.faults.set_outage(true);
    for path in [
        "/api/v1/query?query=up",
        "/-/ready",
        "/-/healthy",
        "/api/v1/status/buildinfo",
    ] {
        let resp = sim.client.get(format!("{}{path}", sim.base)).send().await?;
        assert_eq!(resp.status().as_u16(), 503, "{path}");
    }
    sim.faults.set_outage(false);
    let resp = sim
        .client
        .get(format!("{}/-/ready", sim.base))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let (status, body) = sim.get("/api/v1/status/buildinfo", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_fault_holds_back_responses() -> R {
    let sim = start().await?;
    sim.faults.set_delay(Duration::from_millis(300));
    let began = Instant::now();
    let (status, _) = sim.get("/api/v1/query", &[("query", "1")]).await?;
    assert_eq!(status, 200);
    assert!(began.elapsed() >= Duration::from_millis(300));
    sim.faults.set_delay(Duration::ZERO);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_endpoints_list_series_labels_and_values() -> R {
    let sim = start().await?;
    poll_until("canary pod series exist", || async {
        let (_, body) = sim
            .get("/api/v1/series", &[("match[]", r#"up{track="canary"}"#)])
            .await?;
        let data = body["data"].as_array().cloned().unwrap_or_default();
        Ok(match data.as_slice() {
            [one] if one["pod"] == "checkout-c-1" && one["__name__"] == "up" => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let (status, body) = sim.get("/api/v1/label/track/values", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::json!(["canary", "stable"]));
    let (_, body) = sim.get("/api/v1/labels", &[("match[]", "up")]).await?;
    assert_eq!(
        body["data"],
        serde_json::json!(["__name__", "job", "namespace", "pod", "service", "track"])
    );
    let (status, body) = sim.get("/api/v1/series", &[]).await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data"))
    );
    let (status, _) = sim
        .get("/api/v1/series", &[("match[]", "rate(up[1m])")])
        .await?;
    assert_eq!(status, 400);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_exposes_series_in_text_format() -> R {
    let sim = start().await?;
    poll_until("/metrics lists the generated series", || async {
        let text = sim
            .client
            .get(format!("{}/metrics", sim.base))
            .send()
            .await?
            .text()
            .await?;
        let ok = text.contains("# TYPE http_requests_total counter")
            && text.contains("# TYPE http_request_duration_seconds histogram")
            && text.contains("le=\"+Inf\"")
            && text
                .lines()
                .any(|l| l.starts_with("up{") && l.contains("job=\"warroom-sim\""));
        Ok(if ok {
            Ok(())
        } else {
            Err(text.chars().take(400).collect())
        })
    })
    .await
}

const STABLE_ERROR_RATIO: &str = r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="stable",code=~"5.."}[1s])) / sum(rate(http_requests_total{namespace="shop",service="checkout",track="stable"}[1s]))"#;
const CANARY_ERROR_RATIO: &str = r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary",code=~"5.."}[1s])) / sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary"}[1s]))"#;
const STABLE_P95: &str = r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",service="checkout",track="stable"}[1s])))"#;

/// Polls `query` until `accept` holds for its value; returns the value and when it was seen.
async fn wait_for_value(
    sim: &Sim,
    query: &str,
    what: &str,
    accept: impl Fn(f64) -> bool,
) -> Result<(f64, Instant), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    loop {
        last = sim.value(query).await?.or(last);
        if let Some(v) = last
            && accept(v)
        {
            return Ok((v, Instant::now()));
        }
        if Instant::now() >= deadline {
            return Err(format!("{what}: not reached before deadline; last value {last:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_raises_one_tracks_error_ratio_for_its_window_then_falls_back() -> R {
    let sim = start().await?;
    wait_for_value(&sim, STABLE_ERROR_RATIO, "stable serves normally", |r| {
        r < 0.05
    })
    .await?;
    let spike = Duration::from_secs(4);
    let until = Instant::now() + spike;
    sim.traffic
        .set_error_ratio("shop", "checkout", "stable", 0.5, until);
    let (risen, seen) = wait_for_value(
        &sim,
        STABLE_ERROR_RATIO,
        "stable error ratio near 0.5",
        |r| (r - 0.5).abs() < 0.1,
    )
    .await?;
    assert!(
        seen < until,
        "the spike showed only after its window: {risen}"
    );
    // The other track keeps its own profile (the canary runs a `bad` version: 0.2).
    let canary = sim.value(CANARY_ERROR_RATIO).await?.unwrap_or(f64::NAN);
    assert!((canary - 0.2).abs() < 0.1, "canary error ratio {canary}");
    let (fallen, seen) = wait_for_value(&sim, STABLE_ERROR_RATIO, "stable back to normal", |r| {
        r < 0.05
    })
    .await?;
    assert!(seen >= until, "the spike ended early: {fallen}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_spike_multiplies_one_tracks_latency_for_its_window_then_falls_back() -> R {
    let sim = start().await?;
    // Normal p95 is 150 ms, which bucket interpolation reports as about 0.2 s.
    wait_for_value(&sim, STABLE_P95, "stable p95 normal", |p| p < 0.3).await?;
    let until = Instant::now() + Duration::from_secs(4);
    sim.traffic
        .set_latency_multiplier("shop", "checkout", "stable", 10.0, until);
    let (risen, seen) =
        wait_for_value(&sim, STABLE_P95, "stable p95 about 1.5 s", |p| p > 1.0).await?;
    assert!(
        seen < until,
        "the spike showed only after its window: {risen}"
    );
    let (fallen, seen) =
        wait_for_value(&sim, STABLE_P95, "stable p95 back to normal", |p| p < 0.3).await?;
    assert!(seen >= until, "the spike ended early: {fallen}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleared_drill_ends_before_its_deadline() -> R {
    let sim = start().await?;
    wait_for_value(&sim, STABLE_ERROR_RATIO, "stable serves normally", |r| {
        r < 0.05
    })
    .await?;
    let until = Instant::now() + Duration::from_secs(60);
    sim.traffic
        .set_error_ratio("shop", "checkout", "stable", 1.0, until);
    wait_for_value(&sim, STABLE_ERROR_RATIO, "every request fails", |r| {
        r > 0.95
    })
    .await?;
    sim.traffic.clear("shop", "checkout", "stable");
    wait_for_value(&sim, STABLE_ERROR_RATIO, "stable back to normal", |r| {
        r < 0.05
    })
    .await?;
    assert!(Instant::now() < until);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_answers_503_in_prometheus_shape_then_recovers_with_data() -> R {
    let sim = start().await?;
    wait_for_value(&sim, "sum(up)", "data before the outage", |v| v > 0.0).await?;
    sim.faults.set_outage(true);
    let (status, body) = sim.get("/api/v1/query", &[("query", "sum(up)")]).await?;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "unavailable");
    let (status, _) = sim
        .get(
            "/api/v1/query_range",
            &[("query", "up"), ("start", "0"), ("end", "1"), ("step", "1")],
        )
        .await?;
    assert_eq!(status, 503);
    sim.faults.set_outage(false);
    // Samples kept flowing during the outage, so the first answer after it is current.
    let (v, _) = wait_for_value(&sim, "sum(up)", "data after the outage", |v| v > 0.0).await?;
    assert_eq!(v, 4.0, "four pods report up");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_prometheus_outage_ends_by_itself() -> R {
    let sim = start().await?;
    let outage = Duration::from_secs(1);
    // The `prometheus_outage` drill as /sim/faults starts it: the outage ends on its own timer.
    let drills = Faults::new(KubeSim::new(), sim.faults.clone(), sim.traffic.clone());
    let request = faults::parse(br#"{"kind":"prometheus_outage","for":"1s"}"#)?;
    let began = Instant::now();
    drills.start(request);
    let (status, body) = sim.get("/api/v1/query", &[("query", "1")]).await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (503, Some("unavailable"))
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, _) = sim.get("/api/v1/query", &[("query", "1")]).await?;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "outage did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(began.elapsed() >= outage, "outage ended early");
    Ok(())
}

/// Differential check against a real Prometheus engine: writes a `promtool test rules` file whose
/// expected values are this simulator's answers, then lets promtool evaluate the same queries on
/// the same samples. Needs `promtool` (Debian package `prometheus`): without it the test fails
/// when `CI` is set and is skipped, loudly, otherwise.
/// Samples sit at 10 s steps and queries at odd times, so no sample lies on a range boundary
/// (Prometheus 2.x ranges are closed, 3.x left-open).
#[test]
fn evaluator_agrees_with_promtool() -> R {
    if std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var_os("CI").is_some() {
            return Err(
                "promtool is not on PATH and CI is set: install the Debian package `prometheus`"
                    .into(),
            );
        }
        eprintln!(
            "\n*** SKIPPED evaluator_agrees_with_promtool: no `promtool` on PATH (install the Debian package `prometheus`) ***\n"
        );
        return Ok(());
    }
    use warroom::sim::promql::{Value, instant_query};
    use warroom::sim::tsdb::Labels;

    let db = Tsdb::default();
    let mut series_yaml = String::new();
    let mut seed: u64 = 12345;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut add = |labels: &[(&str, &str)], values: Vec<f64>| -> R {
        let l: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (i, v) in values.iter().enumerate() {
            db.append(l.clone(), i as i64 * 10_000, *v)?;
        }
        let name = l.get("__name__").cloned().unwrap_or_default();
        let inner: Vec<String> = l
            .iter()
            .filter(|(k, _)| k.as_str() != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let vals: Vec<String> = values
            .iter()
            .map(|v| {
                if warroom::sim::tsdb::is_stale(*v) {
                    "stale".to_string()
                } else {
                    format!("{v}")
                }
            })
            .collect();
        series_yaml.push_str(&format!(
            "      - series: '{name}{{{}}}'\n        values: '{}'\n",
            inner.join(","),
            vals.join(" ")
        ));
        Ok(())
    };
    let n = 120;
    for (track, pod, version, rps, err) in [
        ("stable", "s1", "1.0", 30.0, 0.01),
        ("stable", "s2", "1.0", 28.0, 0.02),
        ("canary", "c1", "2.0-bad", 6.0, 0.2),
    ] {
        let (mut ok, mut bad, mut cpu) = (1000.0f64, 50.0f64, 10.0f64);
        let (mut oks, mut bads, mut cpus) = (vec![], vec![], vec![]);
        let mut buckets = vec![vec![]; 5];
        let mut cum = [0.0f64; 5];
        for i in 0..n {
            let reqs = (rps * 10.0 * (0.8 + 0.4 * next())).round();
            let errs = (reqs * err * (0.5 + next())).round();
            ok += reqs - errs;
            bad += errs;
            // A restart of c1 mid-way exercises counter-reset handling.
            if pod == "c1" && i == 70 {
                ok = reqs;
                bad = errs;
            }
            cpu += 10.0 * (0.05 + 0.004 * rps) * (0.9 + 0.2 * next());
            oks.push(ok);
            bads.push(bad);
            cpus.push(cpu);
            let shares = [0.3, 0.3, 0.25, 0.1, 0.05];
            let mut running = 0.0;
            for (b, share) in shares.iter().enumerate() {
                running += (reqs * share * (0.8 + 0.4 * next())).round();
                cum[b] += running;
                buckets[b].push(cum[b]);
            }
        }
        let base = [
            ("namespace", "shop"),
            ("service", "checkout"),
            ("track", track),
            ("pod", pod),
            ("version", version),
        ];
        let with = |extra: &[(&'static str, &'static str)], name: &'static str| {
            let mut v: Vec<(&str, &str)> = base.to_vec();
            v.push(("__name__", name));
            v.extend_from_slice(extra);
            v
        };
        add(&with(&[("code", "200")], "http_requests_total"), oks)?;
        add(&with(&[("code", "500")], "http_requests_total"), bads)?;
        add(
            &with(
                &[("container", "checkout")],
                "container_cpu_usage_seconds_total",
            ),
            cpus,
        )?;
        add(
            &with(&[("resource", "cpu")], "kube_pod_container_resource_limits"),
            vec![0.5; n],
        )?;
        for (b, le) in ["0.05", "0.1", "0.25", "1", "+Inf"].iter().enumerate() {
            add(
                &with(&[("le", le)], "http_request_duration_seconds_bucket"),
                buckets[b].clone(),
            )?;
        }
    }
    add(
        &[
            ("__name__", "deploy_info"),
            ("track", "stable"),
            ("owner", "team-a"),
        ],
        vec![1.0; n],
    )?;
    add(
        &[
            ("__name__", "deploy_info"),
            ("track", "canary"),
            ("owner", "team-b"),
        ],
        vec![1.0; n],
    )?;
    add(
        &[("__name__", "temperature"), ("room", "a")],
        (0..n)
            .map(|i| 20.0 + (i % 7) as f64 - 3.0 * next())
            .collect(),
    )?;

    // A pod that went away at 600 s: its series ends with a staleness marker.
    let gone: Vec<f64> = (0..n)
        .map(|i| match i {
            0..60 => 100.0 + 7.0 * i as f64,
            60 => warroom::sim::tsdb::stale_nan(),
            _ => f64::NAN,
        })
        .take_while(|v| !v.is_nan() || warroom::sim::tsdb::is_stale(*v))
        .collect();
    add(
        &[
            ("__name__", "http_requests_total"),
            ("pod", "gone"),
            ("code", "200"),
        ],
        gone,
    )?;

    let queries = [
        r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary",code=~"5.."}[30s])) / sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary"}[30s]))"#,
        r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",service="checkout",track="stable"}[30s])))"#,
        r#"sum(rate(container_cpu_usage_seconds_total{namespace="shop",track="canary"}[30s])) / sum(kube_pod_container_resource_limits{namespace="shop",track="canary",resource="cpu"})"#,
        "rate(http_requests_total[1m])",
        "irate(http_requests_total[1m])",
        "increase(http_requests_total[5m])",
        "delta(temperature[2m])",
        "idelta(temperature[2m])",
        "resets(http_requests_total[20m])",
        "changes(temperature[5m])",
        "avg_over_time(temperature[3m])",
        "sum_over_time(temperature[3m])",
        "min_over_time(temperature[3m])",
        "max_over_time(temperature[3m])",
        "count_over_time(temperature[3m])",
        "last_over_time(temperature[3m])",
        "sum by (track, code) (rate(http_requests_total[2m]))",
        "sum without (pod, version) (rate(http_requests_total[2m]))",
        "avg by (track) (rate(http_requests_total[2m]))",
        "max by (code) (rate(http_requests_total[2m]))",
        "min(rate(http_requests_total[2m]))",
        "count by (track) (http_requests_total)",
        "stddev(rate(http_requests_total[2m]))",
        "stdvar by (code) (rate(http_requests_total[2m]))",
        "topk(2, rate(http_requests_total[2m]))",
        "bottomk(1, rate(http_requests_total[2m]))",
        "quantile(0.3, rate(http_requests_total[2m]))",
        "group by (track) (http_requests_total)",
        "histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[1m]))",
        "histogram_quantile(0.99, sum by (le, track) (rate(http_request_duration_seconds_bucket[1m])))",
        "histogram_quantile(0.01, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
        r#"rate(http_requests_total{code="500"}[1m]) / ignoring(code) rate(http_requests_total{code="200"}[1m])"#,
        r#"rate(http_requests_total{code="500"}[1m]) / on(pod) rate(http_requests_total{code="200"}[1m])"#,
        "sum by (track) (rate(http_requests_total[1m])) * on(track) group_left(owner) deploy_info",
        "deploy_info * on(track) group_right(owner) sum by (track, code) (rate(http_requests_total[1m]))",
        "rate(http_requests_total[1m]) > 5",
        "rate(http_requests_total[1m]) > bool 5",
        "3 < rate(http_requests_total[1m])",
        r#"rate(http_requests_total[1m]) > on(pod, code) rate(http_requests_total[1m] offset 1m)"#,
        "http_requests_total and on(track) deploy_info",
        r#"http_requests_total{code="200"} or http_requests_total{track="canary"}"#,
        r#"http_requests_total unless http_requests_total{code="500"}"#,
        "http_requests_total offset 2m",
        "-temperature",
        "temperature % 3",
        "temperature ^ 2",
        "2 ^ temperature / 1000",
        "abs(20 - temperature)",
        "clamp_max(temperature, 21)",
        "clamp_min(temperature, 21)",
        "scalar(temperature) * 2",
        "vector(1) + 1",
        "time()",
        "sum(http_requests_total) - sum(http_requests_total offset 1m)",
        r#"count({__name__=~"http_.*", code="500"})"#,
        "kube_pod_container_resource_limits == 0.5",
        r#"http_requests_total{pod="gone"}"#,
        r#"rate(http_requests_total{pod="gone"}[10m])"#,
        r#"count_over_time(http_requests_total{pod="gone"}[20m])"#,
        "max_over_time(rate(http_requests_total[55s])[5m:30s])",
        "avg_over_time(sum by (track) (rate(http_requests_total[55s]))[3m:20s])",
        "rate(http_requests_total[5m:20s])",
        "count_over_time(temperature[2m:30s] offset 1m)",
        "sum_over_time(temperature[2m:30s] offset 1m)",
        "quantile_over_time(0.9, temperature[5m])",
        "stddev_over_time(temperature[5m])",
        "stdvar_over_time(temperature[5m])",
        "present_over_time(temperature[5m])",
        "deriv(temperature[5m])",
        "predict_linear(temperature[5m], 300)",
        "deriv(http_requests_total[3m])",
        r#"absent(nope{job="x", env=~"p.*"})"#,
        r#"absent(http_requests_total{code="200"})"#,
        r#"absent_over_time(nope{job="y"}[5m])"#,
        "sort(rate(http_requests_total[1m]))",
        "sort_desc(rate(http_requests_total[1m]))",
        r#"label_replace(http_requests_total, "short", "$1", "pod", "(.).*")"#,
        r#"label_replace(rate(http_requests_total[1m]), "code_class", "${1}xx", "code", "(\\d).*")"#,
        r#"label_join(deploy_info, "id", "/", "track", "owner")"#,
        r#"count_values("limit", kube_pod_container_resource_limits)"#,
        r#"count_values by (track) ("owner_count", deploy_info)"#,
        "round(temperature, 0.5)",
        "ceil(temperature) - floor(temperature)",
        "sqrt(temperature) + ln(temperature) + log2(temperature) + log10(temperature)",
        "exp(temperature / 10)",
        "sgn(temperature - 21)",
        "clamp(temperature, 19, 22)",
        "timestamp(temperature)",
        "timestamp(rate(http_requests_total[1m]))",
        "hour(temperature * 3600) + minute(temperature * 60) + day_of_week(temperature * 86400)",
        "day_of_month(temperature * 86400 * 3) + day_of_year(temperature * 86400 * 7) + month(temperature * 86400 * 10)",
        "days_in_month(temperature * 86400 * 11) + year(temperature * 86400 * 365)",
        "minute() + hour() + year()",
        "sin(temperature) + cos(temperature) + tan(temperature) + atan(temperature) + sinh(temperature / 10)",
        "asin(temperature / 100) + acos(temperature / 100) + cosh(temperature / 10) + tanh(temperature / 10)",
        "asinh(temperature) + acosh(temperature) + atanh(temperature / 100) + deg(temperature) + rad(temperature)",
        "pi() * 2",
        // Prometheus 3 drops the name after atan2, 2.x keeps it; adding 0 hides the difference.
        "(temperature atan2 10) + 0",
    ];
    let times: [i64; 3] = [303_000, 777_000, 1_183_000];
    let mut tests_yaml = String::new();
    for q in queries {
        for t in times {
            let samples: Vec<(Labels, f64)> = match instant_query(&db, q, t)? {
                Value::Vector(v) => v.into_iter().map(|e| (e.labels, e.value)).collect(),
                Value::Scalar(s) => vec![(Labels::new(), s)],
                other => return Err(format!("{q}: unexpected {other:?}").into()),
            };
            tests_yaml.push_str(&format!(
                "      - expr: '{}'\n        eval_time: {}ms\n        exp_samples:\n",
                q.replace('\'', "''"),
                t
            ));
            for (labels, v) in samples {
                let inner: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                let value = if v.is_nan() {
                    ".nan".to_string()
                } else if v.is_infinite() {
                    if v > 0.0 {
                        ".inf".into()
                    } else {
                        "-.inf".into()
                    }
                } else {
                    format!("{v:e}")
                };
                tests_yaml.push_str(&format!(
                    "          - labels: '{{{}}}'\n            value: {value}\n",
                    inner.join(",")
                ));
            }
        }
    }
    // promtool only loads samples up to the last evaluation-interval boundary before the
    // latest eval_time; a trailing query past the data makes it load every sample.
    tests_yaml.push_str(
        "      - expr: 'vector(1)'\n        eval_time: 30m\n        exp_samples:\n          - labels: '{}'\n            value: 1\n",
    );
    let yaml = format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 10s\n    input_series:\n{series_yaml}    promql_expr_test:\n{tests_yaml}"
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("diff.yml");
    std::fs::write(&path, yaml)?;
    if let Ok(keep) = std::env::var("KEEP_PROMTOOL_FILE") {
        std::fs::copy(&path, keep)?;
    }
    let out = std::process::Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(&path)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        return Ok(());
    }
    // promtool demands bit-exact floats; Prometheus 3 sums with Kahan compensation and older
    // promtools do not, so last-digit differences are tolerated and everything else fails.
    let sample = regex::Regex::new(r"(\{[^}]*\}) ([^ ,]+)")?;
    let parse = |line: &str| -> Vec<(String, f64)> {
        sample
            .captures_iter(line)
            .map(|c| (c[1].to_string(), c[2].parse().unwrap_or(f64::NAN)))
            .collect()
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut compared = 0;
    for pair in lines.windows(2) {
        let (Some(exp), Some(got)) = (pair[0].strip_prefix("exp:"), pair[1].strip_prefix("got:"))
        else {
            continue;
        };
        let (exp, got) = (parse(exp), parse(got));
        let same = exp.len() == got.len()
            && exp.iter().zip(&got).all(|((el, ev), (gl, gv))| {
                el == gl
                    && ((ev - gv).abs() <= 1e-9 * ev.abs().max(gv.abs())
                        || (ev.is_nan() && gv.is_nan()))
            });
        assert!(
            same,
            "promtool disagrees:\n{}\n{}\n\nfull output:\n{text}",
            pair[0], pair[1]
        );
        compared += 1;
    }
    assert!(
        compared > 0,
        "promtool failed without a comparison:\n{text}"
    );
    Ok(())
}
