//! Differential test: a real Prometheus scrapes the simulator's `/metrics`, then it and the
//! simulator's own Prometheus API must give the same answers to the plans' queries and more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use tokio::time::Instant;

use warroom::plan::duration::format_duration;
use warroom::plan::template::expand;
use warroom::sim::server::Simulator;

type Error = Box<dyn std::error::Error>;

/// Longest the whole setup may take before the test gives up (start-up plus data collection).
const DEADLINE: Duration = Duration::from_secs(120);

/// Relative difference allowed between the two answers for one series.
const TOLERANCE: f64 = 0.05;

/// Malformed queries: both must refuse them with the same status, errorType and message
/// (Prometheus's `line:col: parse error: …`). Lexer, syntax and type errors.
const BAD_QUERIES: &[&str] = &[
    "sum(rate(x[5m])",
    "up $ 1",
    "up{a=\"b\"",
    "up +",
    "foo bar",
    "sum(up) sum(up)",
    "up by (a)",
    "up == == up",
    "rate(foo bar)",
    "up offset 5m 1",
    "rate(up)",
    "sum(up[5m])",
    "sum by (a) (up[5m])",
    "topk(up, 3)",
    "histogram_quantile(0.9, up[5m])",
    "sum(x) by (a) + rate(y)",
    "avg_over_time(rate(x[5m]))",
    "up[5m] + 1",
    "up == bool up[1m]",
    "-x[1m]",
    "abs(1, 2)",
];

/// Queries beyond the plans', each with a 30 s window (30 scrape intervals, the demo's `{{rate}}`)
/// where it has one, covering the PromQL the simulator promises. `up` is filtered by the
/// simulator's job because the real Prometheus adds its own `up` per scrape job.
const EXTRA_QUERIES: &[&str] = &[
    // Instant selectors with each matcher.
    r#"http_requests_total{namespace="shop",service="checkout",code="200"}"#,
    r#"http_requests_total{namespace="shop",code!="200"}"#,
    r#"http_requests_total{service=~"check.*",code=~"5.."}"#,
    r#"http_requests_total{namespace="shop",track!~"canary|preview"}"#,
    r#"up{job="warroom-sim"}"#,
    // Range functions.
    r#"rate(http_requests_total{namespace="shop"}[30s])"#,
    r#"irate(http_requests_total{namespace="shop"}[30s])"#,
    r#"increase(http_requests_total{namespace="shop",code="200"}[30s])"#,
    r#"delta(http_request_duration_seconds_sum[30s])"#,
    r#"avg_over_time(http_request_duration_seconds_count[30s])"#,
    r#"max_over_time(container_cpu_usage_seconds_total[30s])"#,
    r#"count_over_time(http_requests_total[30s])"#,
    // Aggregations.
    r#"sum by (track, code) (rate(http_requests_total[30s]))"#,
    r#"sum without (pod, version) (rate(http_requests_total[30s]))"#,
    r#"avg by (track) (rate(container_cpu_usage_seconds_total[30s]))"#,
    r#"min by (track) (rate(container_cpu_usage_seconds_total[30s]))"#,
    r#"max without (pod) (rate(http_requests_total[30s]))"#,
    r#"count by (track) (up{job="warroom-sim"})"#,
    // Histograms.
    r#"histogram_quantile(0.9, sum by (le, track) (rate(http_request_duration_seconds_bucket[30s])))"#,
    r#"histogram_quantile(0.5, rate(http_request_duration_seconds_bucket{namespace="shop"}[30s]))"#,
    r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{track="stable"}[30s])))"#,
    // Arithmetic and comparison with vector matching.
    r#"rate(http_requests_total{code="500"}[30s]) / ignoring(code) rate(http_requests_total{code="200"}[30s])"#,
    r#"sum by (pod) (rate(container_cpu_usage_seconds_total[30s])) / on(pod) sum by (pod) (kube_pod_container_resource_limits{resource="cpu"})"#,
    r#"rate(http_requests_total[30s]) * on(pod) group_left(resource) kube_pod_container_resource_limits"#,
    r#"kube_pod_container_resource_limits * on(pod) group_right rate(http_requests_total[30s])"#,
    r#"2 * rate(http_requests_total[30s]) + 1"#,
    r#"1 - sum(rate(http_requests_total{code="200"}[30s])) / sum(rate(http_requests_total[30s]))"#,
    r#"rate(http_requests_total[30s]) > 1"#,
    r#"rate(http_requests_total[30s]) > bool 1"#,
    r#"up{job="warroom-sim"} == 1"#,
    r#"0.25 < kube_pod_container_resource_limits"#,
    // Set operators.
    r#"http_requests_total{code="500"} or http_requests_total{code="200"}"#,
    r#"http_requests_total and on(pod) up{track="stable"}"#,
    r#"http_requests_total unless http_requests_total{code="500"}"#,
    // Functions.
    r#"vector(1)"#,
    r#"scalar(sum(up{job="warroom-sim"}))"#,
    r#"sum(rate(http_requests_total[30s])) / scalar(count(up{job="warroom-sim"}))"#,
    r#"clamp_min(rate(http_requests_total[30s]), 5)"#,
    r#"clamp_max(rate(http_requests_total[30s]), 5)"#,
    r#"abs(delta(http_request_duration_seconds_sum[30s]) - 1)"#,
];

/// A real Prometheus process in its own temporary directory; killed when dropped.
struct RealPrometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl RealPrometheus {
    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Some(version)` when a `prometheus` binary is on PATH.
fn prometheus_version() -> Option<(u32, u32)> {
    let out = Command::new("prometheus").arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let version = text.split("version ").nth(1)?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Starts Prometheus scraping `metrics_url` every second.
///
/// Two scrape jobs read the same target: each scrape loop has its own phase, so a simulator tick
/// that one loop misses because both run at the same instant is caught by the other. After
/// relabelling their series are identical and Prometheus ignores the duplicate samples. The
/// simulator's samples carry timestamps, so both loops store exactly the simulator's samples.
/// The target labels (`job`, `instance`) are removed; the simulator's own `job` on `up` stays.
fn start_prometheus(metrics_url: &str, version: (u32, u32)) -> Result<RealPrometheus, Error> {
    let target = metrics_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| format!("unexpected metrics URL {metrics_url}"))?;
    let (address, path) = (target.0, format!("/{}", target.1));
    // Prometheus 2.48 added the switch; older versions refuse unknown keys.
    let staleness = if version >= (2, 48) {
        "    track_timestamps_staleness: true\n"
    } else {
        ""
    };
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for job in ["promdiff-a", "promdiff-b"] {
        config.push_str(&format!(
            "  - job_name: {job}\n    honor_labels: true\n{staleness}    metrics_path: {path}\n    static_configs:\n      - targets: ['{address}']\n    metric_relabel_configs:\n      - source_labels: [job]\n        regex: 'promdiff-.*'\n        target_label: job\n        replacement: ''\n      - regex: instance\n        action: labeldrop\n"
        ));
    }
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(RealPrometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    })
}

fn encode(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn seconds(t_ms: i64) -> String {
    format!("{}.{:03}", t_ms.div_euclid(1000), t_ms.rem_euclid(1000))
}

/// One query's answer, as series label set → value. A scalar is one series with no labels.
type Answer = BTreeMap<BTreeMap<String, String>, f64>;

async fn query(
    client: &reqwest::Client,
    base: &str,
    promql: &str,
    t_ms: i64,
) -> Result<Answer, String> {
    let url = format!(
        "{base}/api/v1/query?{}",
        encode(&[("query", promql), ("time", &seconds(t_ms))])
    );
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Json = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() || body["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    let number = |v: &Json| -> Result<f64, String> {
        v[1].as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| format!("bad value {v}"))
    };
    let data = &body["data"];
    let mut out = Answer::new();
    match data["resultType"].as_str() {
        Some("scalar") => {
            out.insert(BTreeMap::new(), number(&data["result"])?);
        }
        Some("vector") => {
            for sample in data["result"].as_array().into_iter().flatten() {
                let labels = sample["metric"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), canonical(k, v.as_str().unwrap_or(""))))
                    .collect();
                out.insert(labels, number(&sample["value"])?);
            }
        }
        other => return Err(format!("unexpected result type {other:?}: {body}")),
    }
    Ok(out)
}

/// A range query's answer flattened to one [`Answer`] per step, keyed by step timestamp.
async fn query_range(
    client: &reqwest::Client,
    base: &str,
    promql: &str,
    (start_ms, end_ms, step_ms): (i64, i64, i64),
) -> Result<BTreeMap<i64, Answer>, String> {
    let url = format!(
        "{base}/api/v1/query_range?{}",
        encode(&[
            ("query", promql),
            ("start", &seconds(start_ms)),
            ("end", &seconds(end_ms)),
            ("step", &seconds(step_ms)),
        ])
    );
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Json = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() || body["data"]["resultType"] != "matrix" {
        return Err(format!("{status}: {body}"));
    }
    // Every step gets an entry, so a step where one side has no series still compares.
    let mut out: BTreeMap<i64, Answer> = (0..)
        .map(|i| start_ms + i * step_ms)
        .take_while(|t| *t <= end_ms)
        .map(|t| (t, Answer::new()))
        .collect();
    for series in body["data"]["result"].as_array().into_iter().flatten() {
        let labels: BTreeMap<String, String> = series["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), canonical(k, v.as_str().unwrap_or(""))))
            .collect();
        for point in series["values"].as_array().into_iter().flatten() {
            let t = point[0]
                .as_f64()
                .map(|t| (t * 1000.0).round() as i64)
                .ok_or_else(|| format!("bad timestamp in {point}"))?;
            let v = point[1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| format!("bad value in {point}"))?;
            out.entry(t).or_default().insert(labels.clone(), v);
        }
    }
    Ok(out)
}

/// Prometheus 3 rewrites `le="1"` to `le="1.0"` on ingestion; compare bucket bounds as numbers.
fn canonical(name: &str, value: &str) -> String {
    match value.parse::<f64>() {
        Ok(f) if name == "le" => format!("{f}"),
        _ => value.to_string(),
    }
}

/// Largest relative difference between matching series, or why the answers disagree.
fn compare(sim: &Answer, real: &Answer) -> Result<f64, String> {
    if sim.keys().ne(real.keys()) {
        return Err("different series".into());
    }
    let mut worst: f64 = 0.0;
    for (labels, a) in sim {
        let b = real.get(labels).copied().unwrap_or(f64::NAN);
        if a.is_nan() && b.is_nan() {
            continue;
        }
        let diff = if *a == b {
            0.0
        } else {
            (a - b).abs() / a.abs().max(b.abs())
        };
        if diff.is_nan() || diff > TOLERANCE {
            return Err(format!("{labels:?}: {a} vs {b}"));
        }
        worst = worst.max(diff);
    }
    Ok(worst)
}

/// Longest `{{rate}}` window the comparison uses. Plans ask for up to 2m; both engines evaluate
/// a 30s window exactly as they evaluate a 2m one, and waiting for minutes of history would make
/// this the slowest test in the suite.
const MAX_RATE: Duration = Duration::from_secs(30);

/// Every `metrics.queries` template of every plan in `dir`, expanded for both tracks. The
/// simulator runs the demo's workload (`namespace`, `service`), so every plan's templates are
/// expanded against it: what is compared is how each engine evaluates the query's shape on the
/// same data. Returns the queries and the longest rate window used.
fn plan_queries(
    dir: &Path,
    namespace: &str,
    service: &str,
) -> Result<(Vec<String>, Duration), Error> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    let mut longest = Duration::ZERO;
    for path in paths {
        let plan =
            warroom::plan::load_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rate = plan.metrics.rate.get().min(MAX_RATE);
        longest = longest.max(rate);
        let rate = format_duration(rate);
        for (metric, template) in &plan.metrics.queries {
            for track in ["stable", "canary"] {
                let vars = [
                    ("namespace", namespace),
                    ("service", service),
                    ("track", track),
                    ("rate", rate.as_str()),
                ];
                let q = expand(template, &vars)
                    .map_err(|e| format!("{}: {metric}: {e}", path.display()))?;
                out.push(q);
            }
        }
    }
    Ok((out, longest))
}

/// Timestamps (ms) of the given query's raw samples in the last `range` before `t_ms`.
async fn sample_times(
    client: &reqwest::Client,
    base: &str,
    selector: &str,
    range: &str,
    t_ms: i64,
) -> Result<Vec<i64>, String> {
    let url = format!(
        "{base}/api/v1/query?{}",
        encode(&[
            ("query", &format!("{selector}[{range}]")),
            ("time", &seconds(t_ms))
        ])
    );
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let body: Json = resp.json().await.map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for series in body["data"]["result"].as_array().into_iter().flatten() {
        for point in series["values"].as_array().into_iter().flatten() {
            if let Some(t) = point[0].as_f64() {
                times.push((t * 1000.0).round() as i64);
            }
        }
    }
    times.sort_unstable();
    Ok(times)
}

/// Gives the canary `percent` of the demo's traffic through its HTTPRoute, as a rollout step
/// would, so the canary's queries have numbers to compare rather than 0/0.
async fn send_canary_share(
    client: &reqwest::Client,
    kubernetes: &str,
    percent: u64,
) -> Result<(), Error> {
    let url = format!(
        "{kubernetes}/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/checkout"
    );
    let mut route: Json = client
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let refs = route["spec"]["rules"][0]["backendRefs"]
        .as_array_mut()
        .ok_or("the demo's HTTPRoute has no backendRefs")?;
    for backend in refs.iter_mut() {
        let canary = backend["name"] == "checkout-canary";
        backend["weight"] = Json::from(if canary { percent } else { 100 - percent });
    }
    client
        .put(&url)
        .json(&route)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn sleep_briefly() {
    tokio::time::sleep(Duration::from_millis(250)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_and_real_prometheus_agree_on_plan_and_promql_queries() -> Result<(), Error> {
    let Some(version) = prometheus_version() else {
        if std::env::var_os("CI").is_some() {
            return Err(
                "prometheus is not on PATH and CI is set: install the Debian package `prometheus`"
                    .into(),
            );
        }
        eprintln!(
            "\n*** SKIPPED simulator_and_real_prometheus_agree_on_plan_and_promql_queries: no `prometheus` on PATH (install the Debian package `prometheus`) ***\n"
        );
        return Ok(());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan =
        warroom::plan::load_file(&root.join("plans/demo.yaml")).map_err(|e| e.to_string())?;
    let namespace = plan
        .phases
        .first()
        .and_then(|p| plan.environments.get(&p.environment))
        .map(|e| e.namespace.clone())
        .ok_or("demo plan: first phase has no environment")?;
    let (mut queries, longest_rate) = plan_queries(&root.join("plans"), &namespace, &plan.service)?;
    let plan_count = queries.len();
    queries.extend(EXTRA_QUERIES.iter().map(|q| q.to_string()));

    let kube_dir = tempfile::tempdir()?;
    let sim = Simulator::start(
        &plan,
        "127.0.0.1:0".parse()?,
        Some(&kube_dir.path().join("kubeconfig")),
        50.0,
    )
    .await?;
    let client = reqwest::Client::new();
    send_canary_share(&client, &sim.kubernetes, 20).await?;
    let prom = start_prometheus(&sim.metrics, version)?;
    let deadline = Instant::now() + DEADLINE;

    // Windows need this much history in the real Prometheus, plus two evaluation times.
    let needed_ms = longest_rate.max(Duration::from_secs(30)).as_millis() as i64 + 4_000;
    let probe = r#"up{job="warroom-sim"}"#;
    let (first_ms, times) = loop {
        let now = now_ms();
        let real = sample_times(&client, &prom.base, probe, "5m", now).await;
        let sim_times = sample_times(&client, &sim.prometheus, probe, "5m", now).await;
        if let (Ok(real), Ok(sim_times)) = (real, sim_times)
            && let (Some(&first), Some(&latest)) = (real.first(), sim_times.last())
        {
            // Midway between simulator ticks, two ticks back: no sample sits on a window
            // boundary and both sides have stored the samples before it.
            let t = latest - 2_500;
            if t - first >= needed_ms {
                break (first, [t, t - 3_000]);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the real Prometheus did not collect enough samples in time; its log ends:\n{}",
                prom.log_tail()
            )
            .into());
        }
        sleep_briefly().await;
    };

    // Both must hold the same raw samples, or the comparison below compares different data.
    let range = format!("{}ms", needed_ms);
    let real = sample_times(&client, &prom.base, probe, &range, times[0]).await?;
    let mine = sample_times(&client, &sim.prometheus, probe, &range, times[0]).await?;
    let mine: Vec<i64> = mine.into_iter().filter(|&t| t >= first_ms).collect();
    assert_eq!(
        real.len(),
        mine.len(),
        "the real Prometheus missed simulator samples: {real:?} vs {mine:?}"
    );

    let mut failures = Vec::new();
    let mut worst: (f64, String) = (0.0, String::new());
    let mut compared = 0;
    // Agreement on nothing proves nothing: every query must have a number somewhere.
    let mut vacuous = Vec::new();
    for q in &queries {
        let mut has_number = false;
        for &t in &times {
            let mine = query(&client, &sim.prometheus, q, t).await;
            let real = query(&client, &prom.base, q, t).await;
            match (mine, real) {
                (Ok(a), Ok(b)) => match compare(&a, &b) {
                    Ok(d) => {
                        has_number |= a.values().any(|v| !v.is_nan());
                        compared += 1;
                        if d >= worst.0 {
                            worst = (d, q.clone());
                        }
                    }
                    Err(why) => failures.push(format!(
                        "{q} at {}: {why}\n  simulator: {a:?}\n  prometheus: {b:?}",
                        seconds(t)
                    )),
                },
                (a, b) => failures.push(format!(
                    "{q} at {}: simulator {a:?}, prometheus {b:?}",
                    seconds(t)
                )),
            }
        }
        // The same query as a range over both instants at 1 s steps (every step midway between
        // simulator ticks): checks query_range and its matrix JSON too.
        let range = (times[1], times[0], 1_000);
        let mine = query_range(&client, &sim.prometheus, q, range).await;
        let real = query_range(&client, &prom.base, q, range).await;
        match (mine, real) {
            (Ok(a), Ok(b)) if a.keys().eq(b.keys()) => {
                for ((t, a), b) in a.iter().zip(b.values()) {
                    match compare(a, b) {
                        Ok(d) => {
                            compared += 1;
                            if d >= worst.0 {
                                worst = (d, q.clone());
                            }
                        }
                        Err(why) => failures.push(format!(
                            "range {q} at {}: {why}\n  simulator: {a:?}\n  prometheus: {b:?}",
                            seconds(*t)
                        )),
                    }
                }
            }
            (a, b) => failures.push(format!("range {q}: simulator {a:?}, prometheus {b:?}")),
        }
        if !has_number {
            vacuous.push(q.as_str());
        }
    }
    eprintln!(
        "compared {} queries ({plan_count} from plans) at {} instants and as a range over them: {compared} answers agreed, largest relative difference {:.3e} ({})",
        queries.len(),
        times.len(),
        worst.0,
        worst.1
    );
    assert!(
        failures.is_empty(),
        "{} comparisons disagree ({compared} agree):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        vacuous.is_empty(),
        "these queries had no number in either answer, so their agreement proves nothing:\n{}",
        vacuous.join("\n")
    );
    let mut refusals = Vec::new();
    for q in BAD_QUERIES {
        let mine = refusal(&client, &sim.prometheus, q, times[0]).await?;
        let real = refusal(&client, &prom.base, q, times[0]).await?;
        if mine != real {
            refusals.push(format!(
                "{q}\n  simulator:  {mine:?}\n  prometheus: {real:?}"
            ));
        }
    }
    assert!(
        refusals.is_empty(),
        "malformed queries refused differently:\n{}",
        refusals.join("\n")
    );
    drop(prom);
    drop(sim);
    Ok(())
}

/// How a server refuses a query: HTTP status, `errorType` and `error`.
async fn refusal(
    client: &reqwest::Client,
    base: &str,
    promql: &str,
    t_ms: i64,
) -> Result<(u16, String, String), Error> {
    let url = format!(
        "{base}/api/v1/query?{}",
        encode(&[("query", promql), ("time", &seconds(t_ms))])
    );
    let resp = client.get(url).send().await?;
    let status = resp.status().as_u16();
    let body: Json = resp.json().await?;
    let field = |k: &str| body[k].as_str().unwrap_or("").to_string();
    Ok((status, field("errorType"), field("error")))
}
