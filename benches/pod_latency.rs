//! A pod change in the API → on screen (`cargo bench --bench pod_latency`), side by side with
//! `kubectl get pods -w`. The simulator runs in this process, seeded from the demo plan; the
//! real console (`warroom run demo.yaml`, the release build under `cargo bench`) runs under a
//! 200×60 pty this process owns, and `kubectl get pods -w -n shop` at the same time with its
//! stdout piped. N times, a pod with a unique name and the labels of the plan's canary
//! (`app=checkout,track=canary`, which the console's pod watch selects) is created through the
//! API; T0 is taken just before the request. Timed until the whole name is (a) on the console's
//! screen — its pty output replayed onto a grid, since ratatui writes only changed cells — and
//! (b) in a line kubectl printed. Names count down (`aa-lat-9999`, `aa-lat-9998`, …) so each
//! new pod sorts to the top of the pod table.
//!
//! `POD_LATENCY_ROUNDS` / `--rounds N` (default 200). Targets: console p99 < 100 ms and ≤ 1.2×
//! kubectl's p99. Exits non-zero only when the harness itself fails.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pty::Sightings;
use common::{NS, Res, SimSetup, arg, percentile};
use rand::Rng;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn line(what: &str, millis: &[f64]) -> String {
    format!(
        "{what}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(millis, 0.5),
        percentile(millis, 0.9),
        percentile(millis, 0.99),
        percentile(millis, 1.0),
    )
}

fn main() -> Res<()> {
    let rounds: usize = arg("rounds", "POD_LATENCY_ROUNDS", 200);
    let warmup = 5;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let setup = rt.block_on(SimSetup::start(1.0))?;
    let console = setup.console(200, 60)?;
    console.wait_for("Pods (6)", Duration::from_secs(120))?;

    // kubectl watching the same namespace, its stdout drained by a thread of its own.
    let mut kubectl = Command::new("kubectl")
        .args([
            "get",
            "pods",
            "-w",
            "-n",
            NS,
            "--context",
            "sim-development",
        ])
        .arg("--kubeconfig")
        .arg(setup.kubeconfig())
        .env("HOME", setup.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("kubectl: {e} (is it on PATH?)"))?;
    let kubectl_seen = Arc::new(Sightings::default());
    let stdout = kubectl.stdout.take().ok_or("kubectl stdout")?;
    let reader = {
        let seen = kubectl_seen.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut buf = String::new();
            loop {
                buf.clear();
                match lines.read_line(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let at = Instant::now();
                seen.check(at, |name| buf.contains(name));
            }
        })
    };
    kubectl_seen.want("checkout-canary");
    kubectl_seen
        .wait("checkout-canary", Duration::from_secs(30))
        .ok_or("kubectl printed no canary pod")?;

    let mut rng = rand::rng();
    let mut console_ms = Vec::new();
    let mut kubectl_ms = Vec::new();
    let mut missed = (0, 0);
    for i in 0..warmup + rounds {
        let name = format!("aa-lat-{:04}", 9999 - i);
        console.sightings.want(&name);
        kubectl_seen.want(&name);
        let body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": "checkout", "track": "canary"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/checkout:2.4.0"}]},
        });
        let t0 = Instant::now();
        rt.block_on(setup.send(
            reqwest::Method::POST,
            &format!("/api/v1/namespaces/{NS}/pods"),
            &body,
        ))?;
        let on_screen = console.sightings.wait(&name, WAIT);
        let in_kubectl = kubectl_seen.wait(&name, WAIT);
        console.sightings.forget(&name);
        kubectl_seen.forget(&name);
        if i >= warmup {
            let ms = |at: Option<Instant>, missed: &mut usize| {
                at.map(|at| at.duration_since(t0).as_secs_f64() * 1000.0)
                    .unwrap_or_else(|| {
                        *missed += 1;
                        WAIT.as_secs_f64() * 1000.0
                    })
            };
            console_ms.push(ms(on_screen, &mut missed.0));
            kubectl_ms.push(ms(in_kubectl, &mut missed.1));
        }
        // Rounds start at random moments relative to the console's frames and the kubelet's
        // progress on earlier pods.
        std::thread::sleep(Duration::from_millis(rng.random_range(100..400)));
    }
    console_ms.sort_by(f64::total_cmp);
    kubectl_ms.sort_by(f64::total_cmp);

    println!(
        "pod created via the API → name visible, {rounds} rounds (after {warmup} warm-up), console 200x60 under a pty, simulator at speed 1 in the bench's process:"
    );
    println!("  {}", line("warroom console screen ", &console_ms));
    println!("  {}", line("kubectl get pods -w     ", &kubectl_ms));
    if missed != (0, 0) {
        println!(
            "  not seen within {} s (counted as {} s): console {}, kubectl {}",
            WAIT.as_secs(),
            WAIT.as_secs(),
            missed.0,
            missed.1
        );
    }
    let (w50, w99) = (percentile(&console_ms, 0.5), percentile(&console_ms, 0.99));
    let (k50, k99) = (percentile(&kubectl_ms, 0.5), percentile(&kubectl_ms, 0.99));
    let ratio = w99 / k99;
    println!(
        "  ratio console/kubectl: p50 {:.2}x, p99 {ratio:.2}x",
        w50 / k50
    );
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!(
        "  target console p99 < 100 ms: {}; target console p99 <= 1.2x kubectl p99: {}",
        verdict(w99 < 100.0),
        verdict(ratio <= 1.2)
    );

    let _ = kubectl.kill();
    let _ = kubectl.wait();
    let _ = reader.join();
    console.quit()?;
    drop(setup);
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}
