//! Scale harness for the simulated API server (`cargo bench --bench sim_scale`): 10,000 pods in
//! one namespace listed by kubectl, and 20 watchers fed 1,000 events/s. Prints figures only.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warroom::sim::kube::{KubeSim, serve_loopback, spawn_controllers};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Serves `sim` on an ephemeral loopback port; returns its URL.
async fn serve(sim: KubeSim, cancel: CancellationToken) -> Res<String> {
    Ok(format!("http://{}", serve_loopback(sim, cancel).await?))
}

async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> Res<Value> {
    let resp = http.request(method, url).json(body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {v}").into());
    }
    Ok(v)
}

/// Part 1: a Deployment of `pods` replicas in namespace `scale`, run to Ready by the
/// controllers; then `kubectl get pods` of all of them, `runs` times.
async fn many_pods(pods: usize, runs: usize) -> Res<()> {
    let cancel = CancellationToken::new();
    let sim = KubeSim::new();
    spawn_controllers(sim.clone(), 100.0, cancel.clone());
    let url = serve(sim, cancel.clone()).await?;
    let http = reqwest::Client::new();
    send_json(
        &http,
        reqwest::Method::POST,
        &format!("{url}/api/v1/namespaces"),
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scale"}}),
    )
    .await?;
    // The simulator caps a workload at 1,000 replicas: ten Deployments share the namespace.
    let per = pods.clamp(1, 1_000);
    let workloads = pods.div_ceil(per);
    let started = Instant::now();
    for w in 0..workloads {
        let replicas = per.min(pods - w * per);
        let labels = json!({"app": format!("bulk-{w}")});
        send_json(
            &http,
            reqwest::Method::POST,
            &format!("{url}/apis/apps/v1/namespaces/scale/deployments"),
            &json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("bulk-{w}"), "labels": labels},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                        {"name": "app", "image": "registry.example.com/bulk:1.0.0"}
                    ]}},
                },
            }),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let list = http
            .get(format!("{url}/apis/apps/v1/namespaces/scale/deployments"))
            .send()
            .await?
            .json::<Value>()
            .await?;
        let ready: u64 = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d["status"]["readyReplicas"].as_u64().unwrap_or(0))
            .sum();
        if ready as usize >= pods {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {ready} of {pods} pods ready after 15 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "pods: {pods} pods ({workloads} Deployments) Ready in namespace scale after {:.1} s (controllers at speed 100)",
        started.elapsed().as_secs_f64()
    );

    // The raw list, as a client library sees it.
    let mut raw = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let body = http
            .get(format!("{url}/api/v1/namespaces/scale/pods"))
            .send()
            .await?
            .bytes()
            .await?;
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
        if runs == 1 {
            println!("pods: list body {} bytes", body.len());
        }
    }
    println!(
        "pods: GET /api/v1/namespaces/scale/pods (JSON): median {:.0} ms over {runs} runs",
        median(raw)
    );

    let kubectl_ok = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl_ok {
        println!("pods: kubectl not found on PATH; skipped `kubectl get pods`");
        cancel.cancel();
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {url}\nusers:\n- name: sim\n  user: {{}}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\n    namespace: scale\ncurrent-context: sim\n"
        ),
    )?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let kubeconfig = kubeconfig.clone();
        let home = dir.path().to_path_buf();
        let (elapsed, out) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let out = std::process::Command::new("kubectl")
                .args(["get", "pods"])
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .output();
            (t.elapsed(), out)
        })
        .await?;
        let out = out?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
        if lines != pods + 1 {
            return Err(format!("kubectl printed {lines} lines for {pods} pods").into());
        }
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    println!(
        "pods: `kubectl get pods` of {pods} pods (Table, {} lines): median {:.0} ms over {runs} runs (all: {})",
        pods + 1,
        median(times.clone()),
        times
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    cancel.cancel();
    Ok(())
}

/// What one watcher got.
#[derive(Default)]
struct Received {
    names: Vec<u64>,
    lags_ms: Vec<f64>,
    errors: usize,
}

/// Part 2: `watchers` raw watches on ConfigMaps; a writer creates `events` ConfigMaps at
/// `rate` per second; every watcher must see every one exactly once, in order.
async fn many_watchers(watchers: usize, rate: usize, events: usize) -> Res<()> {
    let cancel = CancellationToken::new();
    let sim = KubeSim::new();
    let url = serve(sim.clone(), cancel.clone()).await?;
    let http = reqwest::Client::new();
    send_json(
        &http,
        reqwest::Method::POST,
        &format!("{url}/api/v1/namespaces"),
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}}),
    )
    .await?;
    let rv = sim.resource_version();
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    for _ in 0..watchers {
        let http = http.clone();
        let watch_url =
            format!("{url}/api/v1/namespaces/load/configmaps?watch=1&resourceVersion={rv}");
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Received::default();
            let Ok(mut resp) = http.get(&watch_url).send().await else {
                got.errors += 1;
                return got;
            };
            let _ = ready.send(()).await;
            let mut buf: Vec<u8> = Vec::new();
            while got.names.len() + got.errors < events {
                let Ok(Some(chunk)) = resp.chunk().await else {
                    got.errors += 1;
                    break;
                };
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                        got.errors += 1;
                        continue;
                    };
                    if ev["type"] != "ADDED" {
                        got.errors += 1;
                        continue;
                    }
                    let obj = &ev["object"];
                    let n = obj["metadata"]["name"]
                        .as_str()
                        .and_then(|s| s.strip_prefix("cm-"))
                        .and_then(|s| s.parse::<u64>().ok());
                    let sent = obj["data"]["sent_us"]
                        .as_str()
                        .and_then(|s| s.parse::<f64>().ok());
                    match (n, sent) {
                        (Some(n), Some(sent)) => {
                            got.names.push(n);
                            let now = epoch.elapsed().as_secs_f64() * 1e6;
                            got.lags_ms.push((now - sent) / 1000.0);
                        }
                        _ => got.errors += 1,
                    }
                }
            }
            got
        }));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await;
    }

    // The writer: `rate` creates per second, in batches every 10 ms, a few in flight at once.
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let write_start = Instant::now();
    let mut sent = 0usize;
    let create_url = format!("{url}/api/v1/namespaces/load/configmaps");
    while sent < events {
        tick.tick().await;
        let batch: Vec<usize> = (sent..(sent + per_tick).min(events)).collect();
        sent += batch.len();
        // In order: each create completes before the next, so names follow resourceVersions.
        for i in batch {
            let body = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}")},
                "data": {"sent_us": format!("{:.0}", epoch.elapsed().as_secs_f64() * 1e6)},
            });
            send_json(&http, reqwest::Method::POST, &create_url, &body).await?;
        }
    }
    let write_secs = write_start.elapsed().as_secs_f64();

    let mut all_lags = Vec::new();
    let mut complete = 0;
    let mut lost_total = 0;
    let mut dup_or_disorder = 0;
    for t in tasks {
        let got = tokio::time::timeout(Duration::from_secs(60), t).await??;
        let in_order = got.names.windows(2).all(|w| w[0] < w[1]);
        let expected: Vec<u64> = (0..events as u64).collect();
        if got.names == expected && got.errors == 0 {
            complete += 1;
        }
        if !in_order {
            dup_or_disorder += 1;
        }
        lost_total += events.saturating_sub(got.names.len());
        all_lags.extend(got.lags_ms);
    }
    all_lags.sort_by(f64::total_cmp);
    println!(
        "watch: {events} events written in {write_secs:.1} s ({:.0} events/s); {complete}/{watchers} watchers got all {events} exactly once and in order; lost {lost_total}; out of order/duplicated in {dup_or_disorder} watchers",
        events as f64 / write_secs
    );
    println!(
        "watch: delivery lag write -> watcher: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        median(all_lags.clone()),
        percentile(&all_lags, 0.99),
        all_lags.last().copied().unwrap_or(f64::NAN)
    );
    cancel.cancel();
    if complete != watchers {
        return Err("some watchers lost events".into());
    }
    Ok(())
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; filters are not supported, everything runs.
    // reqwest is built without a TLS provider of its own; the binary uses ring, as warroom does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pods = env_usize("SIM_SCALE_PODS", 10_000);
    let runs = env_usize("SIM_SCALE_RUNS", 5);
    let watchers = env_usize("SIM_SCALE_WATCHERS", 20);
    let rate = env_usize("SIM_SCALE_RATE", 1_000);
    let events = env_usize("SIM_SCALE_EVENTS", 10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        many_watchers(watchers, rate, events).await?;
        many_pods(pods, runs).await
    })
}
