//! One full frame of the console at 200×60 (`cargo bench --bench frame`): an `App` built from
//! `plans/demo.yaml` through `update` (as `tests/dashboard_snapshot.rs` builds one) holding
//! 1,000 pods and three metrics × two tracks of 720 points each, drawn with `ui::render` into a
//! `TestBackend` terminal. `terminal.draw` is timed: the render, ratatui's buffer diff and the
//! backend's write. Prints median, p99 and max of the wall clock, and the median and p99 of the
//! thread's CPU time (which leaves out time other processes had the core); the target is
//! median < 0.5 ms (wall clock).
//!
//! Two cases: the same state drawn again (what the loop costs when nothing on screen changed),
//! and the clock moved by one second before each draw (every pod's AGE and the header clock
//! change, so the diff has cells to write, as at each 1 Hz tick). The `update` of the tick is
//! not timed.
//!
//! `FRAME_ITERS` (default 2,000) sets the timed draws per case, after 200 warm-up draws.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use warroom::app::model::Target;
use warroom::app::{Action, App, update};
use warroom::cluster::model::{ClusterEvent, PodView, ReplicaSetView, WorkloadView};
use warroom::health::Health;
use warroom::metrics::series::Point;
use warroom::metrics::{MetricsEvent, Sample};
use warroom::plan::{TrackName, Weight};
use warroom::traffic::TrafficEvent;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
const PODS: usize = 1_000;
const POINTS: usize = 720;
const TARGET_MEDIAN_MS: f64 = 0.5;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The demo plan with `history` long enough for 720 samples at its 2 s interval.
fn plan() -> Res<warroom::plan::Plan> {
    let text = warroom::cli::DEMO_PLAN.replace("history: 5m", "history: 24m");
    if text == warroom::cli::DEMO_PLAN {
        return Err("plans/demo.yaml no longer says `history: 5m`".into());
    }
    Ok(warroom::plan::parse(
        std::path::Path::new("plans/demo.yaml"),
        &text,
    )?)
}

fn pod(i: usize) -> PodView {
    // 1 in 10 on the canary, a few not ready, as in a rollout under way.
    let canary = i % 10 == 0;
    let (track, rs, version) = if canary {
        (TrackName::Canary, "checkout-canary-5c6d7e8f9", "2.4.0")
    } else {
        (TrackName::Stable, "checkout-7d9f8b6c5", "2.3.0")
    };
    let ready = i % 37 != 0;
    PodView {
        name: format!("{rs}-{:05x}", i * 7919 % 0xfffff),
        track: Some(track),
        ready_containers: u32::from(ready),
        total_containers: 1,
        status: if ready {
            "Running"
        } else {
            "ContainerCreating"
        }
        .into(),
        restarts: u32::try_from(i % 3).unwrap_or(0),
        created: Some(at((i % 600) as u64)),
        version: version.into(),
    }
}

fn app() -> Res<App> {
    let mut app = App::new(
        Arc::new(plan()?),
        Target {
            environment: "development".into(),
            namespace: "shop".into(),
            context: "sim-development".into(),
            kubeconfig_hint: Some("/tmp/warroom-demo/kubeconfig".into()),
        },
        "bench".into(),
        at(0),
    );
    if app.series_capacity() != POINTS {
        return Err(format!("series hold {} points, not {POINTS}", app.series_capacity()).into());
    }
    app.tz = jiff::tz::TimeZone::UTC;
    let mut feed = |a: Action| {
        update(&mut app, a);
    };
    feed(Action::Cluster(ClusterEvent::Health(Health::Live)));
    feed(Action::Traffic(TrafficEvent::Health(Health::Live)));
    feed(Action::Traffic(TrafficEvent::Weight(Weight::ZERO)));
    feed(Action::Metrics(MetricsEvent::Health(Health::Live)));
    feed(Action::Cluster(ClusterEvent::PodsRelisted(
        (0..PODS).map(pod).collect(),
    )));
    let canary = PODS / 10;
    for (track, name, desired, image, revision) in [
        (
            TrackName::Stable,
            "checkout",
            PODS - canary,
            "registry.example.com/shop/checkout:2.3.0",
            7,
        ),
        (
            TrackName::Canary,
            "checkout-canary",
            canary,
            "registry.example.com/shop/checkout:2.4.0",
            2,
        ),
    ] {
        let desired = u32::try_from(desired)?;
        feed(Action::Cluster(ClusterEvent::Workload(
            track,
            WorkloadView {
                name: name.into(),
                desired,
                ready: desired,
                updated: desired,
                available: desired,
                image: image.into(),
                revision: Some(revision),
            },
        )));
    }
    feed(Action::Cluster(ClusterEvent::ReplicaSetsRelisted(vec![
        ReplicaSetView {
            name: "checkout-7d9f8b6c5".into(),
            track: TrackName::Stable,
            revision: Some(7),
            desired: u32::try_from(PODS - canary)?,
            ready: u32::try_from(PODS - canary)?,
        },
        ReplicaSetView {
            name: "checkout-canary-5c6d7e8f9".into(),
            track: TrackName::Canary,
            revision: Some(2),
            desired: u32::try_from(canary)?,
            ready: u32::try_from(canary)?,
        },
    ])));
    for i in 0..POINTS as u64 {
        let wave = (i % 7) as f64;
        let samples = [
            ("error_rate", TrackName::Stable, 0.002 + wave * 0.0002),
            ("error_rate", TrackName::Canary, 0.003 + wave * 0.0003),
            ("latency_p95", TrackName::Stable, 0.140 + wave * 0.004),
            ("latency_p95", TrackName::Canary, 0.150 + wave * 0.005),
            ("cpu", TrackName::Stable, 0.30 + wave * 0.01),
            ("cpu", TrackName::Canary, 0.32 + wave * 0.01),
        ]
        .into_iter()
        .map(|(metric, track, v)| Sample {
            metric: metric.into(),
            track,
            point: Point {
                at: at(i * 2),
                value: Some(v),
            },
        })
        .collect();
        feed(Action::Metrics(MetricsEvent::Samples(samples)));
    }
    feed(Action::Tick(at(POINTS as u64 * 2)));
    // Start the plan, so the plan panel and header show a run under way.
    feed(Action::Key(KeyEvent::new(
        KeyCode::Char('n'),
        KeyModifiers::NONE,
    )));
    if app.cluster.pods.len() != PODS {
        return Err(format!("app holds {} pods, not {PODS}", app.cluster.pods.len()).into());
    }
    let full = app
        .metrics
        .series
        .values()
        .filter(|s| s.len() == POINTS)
        .count();
    if full != 6 {
        return Err(format!("{full} of 6 series hold {POINTS} points").into());
    }
    Ok(app)
}

/// This thread's CPU time: unlike the wall clock, it leaves out time the thread was not
/// running (on a busy 2-core machine, other processes' turns).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Wall-clock and thread-CPU microseconds per draw, each sorted.
struct Timings {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

/// Times `iters` draws after `warmup` untimed ones; `between` runs before each draw, untimed.
fn measure(
    app: &mut App,
    warmup: usize,
    iters: usize,
    mut between: impl FnMut(&mut App),
    draw: impl Fn(&App, &mut ratatui::Frame),
) -> Res<Timings> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    let mut wall = Vec::with_capacity(iters);
    let mut cpu = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        between(app);
        let (started, cpu_started) = (Instant::now(), thread_cpu());
        terminal.draw(|frame| draw(app, frame))?;
        let (took, cpu_took) = (started.elapsed(), thread_cpu() - cpu_started);
        if i >= warmup {
            wall.push(took.as_secs_f64() * 1e6);
            cpu.push(cpu_took.as_secs_f64() * 1e6);
        }
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Ok(Timings { wall, cpu })
}

fn report(what: &str, t: &Timings, target: bool) {
    let ms = |xs: &[f64], p| percentile(xs, p) / 1000.0;
    let median_ms = ms(&t.wall, 0.5);
    let verdict = if !target {
        String::new()
    } else if median_ms < TARGET_MEDIAN_MS {
        format!("; target median < {TARGET_MEDIAN_MS} ms: met")
    } else {
        format!("; target median < {TARGET_MEDIAN_MS} ms: MISSED")
    };
    println!(
        "{what}, {} draws: median {median_ms:.3} ms, p99 {:.3} ms, max {:.3} ms (thread CPU: median {:.3} ms, p99 {:.3} ms){verdict}",
        t.wall.len(),
        ms(&t.wall, 0.99),
        ms(&t.wall, 1.0),
        ms(&t.cpu, 0.5),
        ms(&t.cpu, 0.99),
    );
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; filters are not supported, everything runs.
    let iters: usize = std::env::var("FRAME_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let mut app = app()?;
    let render = |app: &App, frame: &mut ratatui::Frame| warroom::ui::render(app, frame);
    let what = format!("frame 200x60, {PODS} pods, 6 series x {POINTS} points");
    let same = measure(&mut app, 200, iters, |_| {}, render)?;
    report(&format!("{what}, same state each draw"), &same, true);
    let mut now = app.now;
    let ticking = measure(
        &mut app,
        200,
        iters,
        |app| {
            now += Duration::from_secs(1);
            update(app, Action::Tick(now));
        },
        render,
    )?;
    report(
        &format!("{what}, clock +1 s before each draw"),
        &ticking,
        true,
    );
    // What ratatui itself costs at this size: an empty frame (buffer reset and diff).
    let empty = measure(&mut app, 200, iters, |_| {}, |_, _| {})?;
    report("empty frame 200x60 (ratatui's own share)", &empty, false);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    terminal.draw(|frame| warroom::ui::render(&app, frame))?;
    let screen = terminal.backend().to_string();
    if !screen.contains(&format!("Pods ({PODS})")) {
        return Err(format!("the frame does not show `Pods ({PODS})`:\n{screen}").into());
    }
    Ok(())
}
