//! The console at rest (`cargo bench --bench idle`): CPU while nothing happens, and memory with
//! many pods watched. The simulator runs in this process, seeded from the demo plan, with its
//! namespace filled to N pods (all Ready, then nothing changes but the clock, the traffic the
//! simulator generates and the metric polls; no fault, the plan not started). The real console
//! (`warroom run demo.yaml`, the release build under `cargo bench`) runs under a 200×60 pty
//! this process owns and drains.
//!
//! For each N: once `Pods (N)` is on screen, `VmRSS` and `VmHWM` of the console's process
//! (`/proc/PID/status`); then, after 5 s to settle, its utime + stime over `--seconds S`
//! (`/proc/PID/stat`, default 60) as a share of one core, and what it wrote to the terminal.
//!
//! With 1,000 pods and more, after the idle window (1,000) or the memory figures (10,000), churn:
//! `--churn R` (or `IDLE_CHURN`, default 25; 0 for none)
//! pods deleted a second, picked at random among all but the canary's, for `--seconds S`;
//! each comes back through its ReplicaSet as a new pod going Pending → Running, so the console's
//! watch sees about four changes a deletion (the deletion, the new pod, its start, Ready):
//! about 100 pod changes a second at the default. Its CPU over that window, as a share of a core.
//!
//! `--pods 6,1000,10000` (or `IDLE_PODS`) picks the cases; `--seconds S` (or `IDLE_SECONDS`)
//! shortens the windows while developing. Targets: idle < 1 % of a core (6 and 1,000 pods),
//! RSS < 50 MB with 1,000 pods and < 200 MB with 10,000, < 5 % of a core under churn. The
//! deletions go as fast as the simulator answers, up to R a second: the line says how many it
//! managed. Exits non-zero only when the harness itself fails.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Res, SimSetup, arg, cpu_ticks, status_kb, ticks_per_second};

fn mb(kb: u64) -> String {
    format!(
        "{:.1} MB ({:.1} MiB)",
        kb as f64 * 1024.0 / 1e6,
        kb as f64 / 1024.0
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// RSS targets in MB (10^6 bytes) by pod count.
fn rss_target(pods: usize) -> Option<f64> {
    match pods {
        1_000 => Some(50.0),
        10_000 => Some(200.0),
        _ => None,
    }
}

/// The console's share of one core while `during` runs (what it wrote to its terminal too).
fn cpu_while(
    console: &common::pty::Console,
    during: impl FnOnce() -> Res<()>,
) -> Res<(f64, f64, f64)> {
    let pid = console.pid();
    let (t0, b0, at0) = (
        cpu_ticks(pid)?,
        console.bytes.load(Ordering::Relaxed),
        Instant::now(),
    );
    during()?;
    let (t1, b1, elapsed) = (
        cpu_ticks(pid)?,
        console.bytes.load(Ordering::Relaxed),
        at0.elapsed().as_secs_f64(),
    );
    let busy = (t1 - t0) as f64 / ticks_per_second();
    Ok((busy, elapsed, (b1 - b0) as f64 / elapsed))
}

/// Deletes `rate` pods a second (not the canary's) for `seconds`; how many it deleted.
async fn churn(setup: &SimSetup, rate: u32, seconds: u64) -> Res<usize> {
    use rand::seq::IndexedRandom;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut names: Vec<String> = Vec::new();
    let mut deleted = 0;
    while Instant::now() < end {
        tick.tick().await;
        if names.is_empty() {
            names = setup.replaceable_pods().await?;
        }
        let Some(name) = names.choose(&mut rand::rng()).cloned() else {
            return Err("no pods to delete".into());
        };
        names.retain(|n| *n != name);
        // A pod already gone (picked from an older list) is no error: its replacement is there.
        let _ = setup
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/namespaces/{}/pods/{name}", common::NS),
                &serde_json::json!({}),
            )
            .await;
        deleted += 1;
        if deleted % 500 == 0 {
            names.clear();
        }
    }
    Ok(deleted)
}

fn case(rt: &tokio::runtime::Runtime, pods: usize, seconds: u64, churn_rate: u32) -> Res<()> {
    let setup = rt.block_on(SimSetup::start(20.0))?;
    if pods != 6 {
        let took = rt.block_on(setup.populate(pods))?;
        println!(
            "{pods} pods: namespace filled and every pod Ready in {:.1} s",
            took.as_secs_f64()
        );
    }
    let started = Instant::now();
    let console = setup.console(200, 60)?;
    let pid = console.pid();
    let title = format!("Pods ({pods})");
    let shown = console.wait_for(&title, Duration::from_secs(600))?;
    let (rss, hwm) = (status_kb(pid, "VmRSS")?, status_kb(pid, "VmHWM")?);
    let target = rss_target(pods);
    println!(
        "{pods} pods: `{title}` on screen {:.2} s after start; VmRSS {}, VmHWM {}{}",
        shown.duration_since(started).as_secs_f64(),
        mb(rss),
        mb(hwm),
        target.map_or(String::new(), |t| format!(
            "; target RSS < {t:.0} MB: {}",
            verdict((rss as f64 * 1024.0 / 1e6) < t)
        )),
    );

    if seconds > 0 && pods <= 1_000 {
        std::thread::sleep(Duration::from_secs(5));
        let (busy, elapsed, bytes) = cpu_while(&console, || {
            std::thread::sleep(Duration::from_secs(seconds));
            Ok(())
        })?;
        let pct = busy / elapsed * 100.0;
        println!(
            "{pods} pods: idle over {elapsed:.0} s: {busy:.2} s of CPU = {pct:.2} % of one core; {bytes:.0} bytes/s to the terminal; target < 1 %: {}",
            verdict(pct < 1.0)
        );
        let (rss, hwm) = (status_kb(pid, "VmRSS")?, status_kb(pid, "VmHWM")?);
        println!(
            "{pods} pods: after the idle window VmRSS {}, VmHWM {}",
            mb(rss),
            mb(hwm)
        );
    }
    if seconds > 0 && churn_rate > 0 {
        std::thread::sleep(Duration::from_secs(5));
        let mut deleted = 0;
        let (busy, elapsed, bytes) = cpu_while(&console, || {
            deleted = rt.block_on(churn(&setup, churn_rate, seconds))?;
            Ok(())
        })?;
        let pct = busy / elapsed * 100.0;
        println!(
            "{pods} pods: {deleted} pods deleted over {elapsed:.0} s ({:.0}/s, each replaced: ~4 pod changes each): {busy:.2} s of CPU = {pct:.2} % of one core; {bytes:.0} bytes/s to the terminal; target < 5 %: {}",
            deleted as f64 / elapsed,
            verdict(pct < 5.0)
        );
    }
    // Under churn the count moves while replacements start; at rest it must not.
    let title = if churn_rate > 0 {
        "Pods (".to_string()
    } else {
        title
    };
    if !console.screen_text().contains(&title) {
        return Err(format!("`{title}` left the screen:\n{}", console.screen_text()).into());
    }
    console.quit()?;
    drop(setup);
    Ok(())
}

fn main() -> Res<()> {
    let seconds: u64 = arg("seconds", "IDLE_SECONDS", 60);
    let pods: String = arg("pods", "IDLE_PODS", "6,1000,10000".to_string());
    let churn_rate: u32 = arg("churn", "IDLE_CHURN", 25);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for n in pods.split(',') {
        let n: usize = n.trim().parse()?;
        // Idle with up to 1,000 pods; churn too with 1,000 or more.
        let rate = if n < 1_000 { 0 } else { churn_rate };
        case(&rt, n, seconds, rate)?;
    }
    Ok(())
}
