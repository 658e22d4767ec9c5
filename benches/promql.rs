//! Benchmark (`cargo bench --bench promql`, plain harness): median query_range time over 15 min
//! at 5 s steps for the demo's queries, and the Tsdb's heap for one hour of the demo's series.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use tokio::time::Instant;

use warroom::plan::duration::format_duration;
use warroom::plan::template::expand;
use warroom::sim::model::{ServiceTraffic, TrackTraffic, TrafficSnapshot};
use warroom::sim::promql::range_query;
use warroom::sim::traffic::{Generator, TrafficConfig};
use warroom::sim::tsdb::Tsdb;

/// Counts live heap bytes, so the Tsdb's footprint can be measured without guessing.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The demo mid-rollout: four stable pods, two canary pods, 10 % to the canary.
fn demo_snapshot() -> TrafficSnapshot {
    let pods = |prefix: &str, n: usize| (1..=n).map(|i| format!("{prefix}-{i}")).collect();
    TrafficSnapshot {
        services: vec![ServiceTraffic {
            namespace: "shop".into(),
            service: "checkout".into(),
            tracks: vec![
                TrackTraffic {
                    track: "stable".into(),
                    version: "2.3.0".into(),
                    weight: 90,
                    ready_pods: pods("checkout-7d9f8b6c5", 4),
                    cpu_limit_cores: 0.5,
                },
                TrackTraffic {
                    track: "canary".into(),
                    version: "2.4.0".into(),
                    weight: 10,
                    ready_pods: pods("checkout-canary-5c6d7e8f9", 2),
                    cpu_limit_cores: 0.5,
                },
            ],
        }],
    }
}

/// The demo plan's queries, expanded for both tracks as the console does.
fn demo_queries() -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/demo.yaml");
    let plan = warroom::plan::load_file(&path).map_err(|e| e.to_string())?;
    let namespace = plan
        .phases
        .first()
        .and_then(|p| plan.environments.get(&p.environment))
        .map(|e| e.namespace.clone())
        .ok_or("demo plan has no first environment")?;
    let rate = format_duration(plan.metrics.rate.get());
    let mut out = Vec::new();
    for (metric, template) in &plan.metrics.queries {
        for track in ["stable", "canary"] {
            let vars = [
                ("namespace", namespace.as_str()),
                ("service", plan.service.as_str()),
                ("track", track),
                ("rate", rate.as_str()),
            ];
            out.push((format!("{metric}/{track}"), expand(template, &vars)?));
        }
    }
    Ok(out)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One hour of samples at the generator's default 1 s tick, ending at a fixed instant.
    let end_ms: i64 = 1_800_000_000_000;
    let hour_ms: i64 = 3_600_000;
    let before = LIVE.load(Ordering::Relaxed);
    let tsdb = Tsdb::default();
    {
        let mut generator = Generator::new(TrafficConfig {
            seed: Some(1),
            ..TrafficConfig::default()
        });
        let snapshot = demo_snapshot();
        let now = Instant::now();
        let mut t = end_ms - hour_ms + 1000;
        while t <= end_ms {
            generator.tick(&tsdb, &snapshot, t, now);
            t += 1000;
        }
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let (series, samples) = tsdb.stats();
    println!(
        "tsdb, one hour of the demo's series: {series} series, {samples} samples, {:.1} MiB live heap ({:.1} bytes/sample)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / samples.max(1) as f64
    );

    let queries = demo_queries()?;
    let start_ms = end_ms - 15 * 60 * 1000;
    let step_ms = 5_000;
    let rounds = 21;
    let mut totals = Vec::with_capacity(rounds);
    let mut per_query: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); queries.len()];
    for _ in 0..rounds {
        let round = StdInstant::now();
        for (i, (_, q)) in queries.iter().enumerate() {
            let began = StdInstant::now();
            let result = range_query(&tsdb, q, start_ms, end_ms, step_ms)?;
            per_query[i].push(began.elapsed());
            std::hint::black_box(result);
        }
        totals.push(round.elapsed());
    }
    println!("query_range, 15 min at 5 s steps (181 points), median of {rounds} runs:");
    for ((name, _), times) in queries.iter().zip(per_query) {
        println!("  {name:<20} {:>9.3} ms", median(times).as_secs_f64() * 1e3);
    }
    println!(
        "  all {} demo queries {:>9.3} ms",
        queries.len(),
        median(totals).as_secs_f64() * 1e3
    );
    Ok(())
}
