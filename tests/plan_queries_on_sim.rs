//! Every example plan's metric queries are PromQL the simulator evaluates for both tracks, with
//! numbers for the stable track once it serves traffic (the canary has none at weight 0).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use warroom::metrics::prometheus::{PromClient, PromConfig};
use warroom::metrics::sampler;
use warroom::plan::{self, TrackName};
use warroom::sim::server::Simulator;

const DEADLINE: Duration = Duration::from_secs(60);

fn plan_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("plans/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_answers_every_query_of_every_example_plan() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for file in plan_files() {
        let plan = plan::check_file(&file)
            .into_result()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let first = plan.phases.first().expect("a phase");
        let namespace = plan.environments[&first.environment].namespace.clone();
        let sim = Simulator::start(&plan, "127.0.0.1:0".parse().expect("addr"), None, 20.0)
            .await
            .expect("simulator starts");
        let probes = sampler::probes(
            &plan.metrics.queries,
            &namespace,
            &plan.service,
            plan.metrics.rate.get(),
            &TrackName::BOTH,
        )
        .expect("queries expand");
        let client = PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_secs(5)))
            .expect("client");
        let started = Instant::now();
        let mut pending = probes;
        while !pending.is_empty() {
            let mut still = Vec::new();
            for p in pending {
                match client
                    .query_scalar(&p.promql, Some(SystemTime::now()))
                    .await
                {
                    Ok(Some(v)) if v.is_finite() => {}
                    // Weight 0: no canary requests, so ratios over them are empty, not errors.
                    Ok(_) if p.track == TrackName::Canary => {}
                    Ok(_) => still.push(p),
                    Err(e) => panic!("{}: {} ({}): {e}", file.display(), p.metric, p.promql),
                }
            }
            pending = still;
            if !pending.is_empty() {
                assert!(
                    started.elapsed() < DEADLINE,
                    "{}: no numbers yet for {:?}",
                    file.display(),
                    pending
                        .iter()
                        .map(|p| (&p.metric, p.track))
                        .collect::<Vec<_>>()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        sim.shutdown();
    }
}
