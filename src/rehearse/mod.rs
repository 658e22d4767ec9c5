//! `warroom rehearse`: the plan and every rollback tier carried out on the embedded simulator
//! before the window, one scenario at a time on fresh simulators, with a report that says for
//! each what was expected and what happened.
//!
//! Each environment the plan uses gets a simulator of its own, seeded from the plan (namespace,
//! both Deployments — the stable with a revision history —, traffic object, ConfigMaps, an
//! hour of metrics). The plan is pointed at them: its contexts at a kubeconfig of our own, its
//! Prometheus at the simulators', so nothing real is ever contacted. It runs as
//! `warroom run --headless --auto-approve=all` runs, with its waits capped (`plan::cap`),
//! `run` steps printed unless they say `rehearse: true`, and webhooks printed, not sent.

pub mod driver;
pub mod plan;
pub mod report;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use self::driver::{Observed, Script};
use self::plan::Scenario;
use self::report::{CheckReport, Rehearsal, ScenarioReport, TierTiming};
use self::verify::{Check, Env, Seeded};
use crate::cli::Scratch;
use crate::cluster::actions::ConfigMapState;
use crate::engine::{Origin, StepState, Work};
use crate::journal::Record;
use crate::plan::{BreachAction, Plan, Step, TierName, TrackName};
use crate::sim::Simulator;
use crate::sim::server::SimOptions;

/// How fast the simulated pods start and roll out: ten times real speed.
const SIM_SPEED: f64 = 10.0;

/// The metrics each simulator holds from the start, so rate windows have data at once.
const METRIC_HISTORY: Duration = Duration::from_secs(3600);

/// What `warroom rehearse` was asked.
pub struct Options {
    /// The plan file, as given.
    pub plan_path: PathBuf,
    /// The plan's text as read.
    pub plan_text: String,
    /// Scenario names to run; all when empty.
    pub scenarios: Vec<String>,
    pub max_hold: Duration,
    /// Scenarios at once.
    pub jobs: usize,
    /// The longest one scenario may run before it is stopped and failed.
    pub deadline: Duration,
}

/// Why a rehearsal could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error("no scenario called {wanted}; this plan has: {have}")]
    UnknownScenario { wanted: String, have: String },
    #[error("cannot make a directory for the rehearsal: {0}")]
    Scratch(std::io::Error),
}

impl RehearseError {
    /// A mistake on the command line rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, RehearseError::UnknownScenario { .. })
    }
}

/// The scenarios `wanted` names (all when empty), or which name is not one of the plan's.
pub fn choose(plan: &Plan, wanted: &[String]) -> Result<Vec<Scenario>, RehearseError> {
    let all = plan::scenarios(plan);
    if wanted.is_empty() {
        return Ok(all);
    }
    wanted
        .iter()
        .map(|w| {
            all.iter()
                .find(|s| &s.name(plan) == w)
                .cloned()
                .ok_or_else(|| RehearseError::UnknownScenario {
                    wanted: w.clone(),
                    have: all
                        .iter()
                        .map(|s| s.name(plan))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

/// Runs the chosen scenarios of `plan` (checked already) and reports; `progress` hears of
/// each scenario as it ends.
pub async fn rehearse(
    plan: &Plan,
    options: &Options,
    mut progress: impl FnMut(&ScenarioReport),
) -> Result<Rehearsal, RehearseError> {
    let chosen = choose(plan, &options.scenarios)?;
    let capped = plan::cap(plan, options.max_hold);
    let scratch = Scratch::new("warroom-rehearse").map_err(RehearseError::Scratch)?;
    let rehearsed = Arc::new(capped.plan);
    let mut reports = Vec::new();
    let mut runs = futures::stream::iter(chosen.into_iter().enumerate())
        .map(|(i, scenario)| {
            let dir = scratch.0.join(format!("{i:02}-{}", scenario.name(plan)));
            let rehearsed = rehearsed.clone();
            async move { run_scenario(plan, rehearsed, scenario, dir, options).await }
        })
        .buffered(options.jobs.max(1));
    while let Some(report) = runs.next().await {
        progress(&report);
        reports.push(report);
    }
    let mut caps = capped.notes;
    caps.push(
        "approvals, checks and pauses passed automatically; deployment windows overridden".into(),
    );
    caps.push("`run` steps printed, not run, unless they say `rehearse: true`; webhooks printed, not sent".into());
    caps.push(format!(
        "simulated pods start and roll out {SIM_SPEED}× faster than real ones; healthy tracks fail no requests (the faults are the scenarios')"
    ));
    let tiers_defined = [TierName::Immediate, TierName::Gradual, TierName::Full]
        .into_iter()
        .filter(|t| plan.rollback.tier(*t).is_some())
        .count();
    let tier_reports: Vec<&ScenarioReport> = reports
        .iter()
        .filter(|r| r.name.starts_with("tier-"))
        .collect();
    let tiers_rehearsed = tier_reports.len();
    // A tier whose `run` actions were only printed was not rehearsed in full: it does not
    // count as passed, whatever its scenario says.
    let printed_only: Vec<&str> = [TierName::Immediate, TierName::Gradual, TierName::Full]
        .into_iter()
        .filter(|t| !plan::printed_actions(plan, *t).is_empty())
        .filter(|t| {
            tier_reports
                .iter()
                .any(|r| r.name == format!("tier-{}", t.as_str()))
        })
        .map(|t| t.as_str())
        .collect();
    let tiers_passed = tier_reports
        .iter()
        .filter(|r| r.passed && !printed_only.iter().any(|t| r.name == format!("tier-{t}")))
        .count();
    Ok(Rehearsal {
        format: 1,
        plan: plan.name.clone(),
        plan_path: options.plan_path.display().to_string(),
        warroom: env!("CARGO_PKG_VERSION").to_string(),
        passed: reports.iter().all(|r| r.passed),
        rollback_success: match printed_only.as_slice() {
            [] => format!(
                "Rollback success: {tiers_passed} of {tiers_defined} tiers rehearsed and passed"
            ),
            printed => format!(
                "Rollback success: {tiers_passed} of {tiers_defined} tiers rehearsed and passed ({} only in part: their `run` actions were printed, not run)",
                printed.join(", ")
            ),
        },
        tiers_printed_only: printed_only.iter().map(|t| t.to_string()).collect(),
        rehearsed_commands: rehearses_commands(plan),
        tiers_defined,
        tiers_rehearsed,
        tiers_passed,
        max_hold_ms: u64::try_from(options.max_hold.as_millis()).unwrap_or(u64::MAX),
        caps,
        scenarios: reports,
    })
}

/// Whether any `run` step of the plan (phases or tiers) says `rehearse: true`.
fn rehearses_commands(plan: &Plan) -> bool {
    let tiers = [
        &plan.rollback.immediate,
        &plan.rollback.gradual,
        &plan.rollback.full,
    ];
    plan.phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .chain(tiers.into_iter().flatten().flat_map(|t| t.actions.iter()))
        .any(|s| matches!(s, Step::Run(r) if r.rehearses()))
}

/// The simulators of one scenario, one per environment, and what they were seeded with.
struct Cluster {
    sims: BTreeMap<String, Simulator>,
    seeded: Seeded,
    kubeconfig: PathBuf,
}

/// The context a rehearsal gives environment `name` in its own kubeconfig.
fn context_of(name: &str) -> String {
    format!("rehearsal-{name}")
}

/// Starts a simulator for each environment the plan uses and points `rehearsed` at them.
async fn start_cluster(
    plan: &Plan,
    rehearsed: &Plan,
    dir: &Path,
) -> Result<(Cluster, Plan), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let mut wanted = Vec::new();
    for name in crate::preflight::environments_used(plan) {
        let Some(env) = plan.environments.get(&name) else {
            return Err(format!("phase environment {name} is not defined"));
        };
        let mut own = plan.clone();
        own.environments = [(name.clone(), env.clone())].into_iter().collect();
        wanted.push((name, env.namespace.clone(), own));
    }
    // Started side by side: each waits for its pods before writing its metric history.
    let started = futures::future::join_all(wanted.into_iter().map(|(name, namespace, own)| {
        let kubeconfig = dir.join(format!("sim-{name}.kubeconfig"));
        async move {
            let sim = Simulator::start_with(
                &own,
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                Some(&kubeconfig),
                SimOptions {
                    speed: SIM_SPEED,
                    backfill: Some(METRIC_HISTORY),
                    stable_history: true,
                    healthy_error_ratio: Some(0.0),
                },
            )
            .await
            .map_err(|e| format!("cannot start the simulator for {name}: {e}"));
            (name, namespace, sim)
        }
    }))
    .await;
    let mut sims = BTreeMap::new();
    let mut contexts = Vec::new();
    let mut pointed = rehearsed.clone();
    for (name, namespace, sim) in started {
        let sim = sim?;
        contexts.push((context_of(&name), namespace, sim.kubernetes.clone()));
        if let Some(e) = pointed.environments.get_mut(&name) {
            e.context = Some(context_of(&name));
            e.prometheus = Some(sim.prometheus.clone());
            e.headers.clear();
            e.bearer_token_file = None;
            e.basic_auth_file = None;
            e.ca_file = None;
        }
        sims.insert(name, sim);
    }
    let kubeconfig = dir.join("kubeconfig");
    crate::sim::kubeconfig::write(&kubeconfig, &crate::sim::kubeconfig::render_each(&contexts))
        .map_err(|e| format!("cannot write {}: {e}", kubeconfig.display()))?;
    let seed = crate::sim::server::seeds_with(plan, true);
    let seeded = Seeded {
        stable_image: seed
            .first()
            .map(|s| s.stable_image.clone())
            .unwrap_or_default(),
        stable_previous: seed.first().and_then(|s| s.stable_history.last().cloned()),
    };
    Ok((
        Cluster {
            sims,
            seeded,
            kubeconfig,
        },
        pointed,
    ))
}

/// One scenario, start to verdict.
async fn run_scenario(
    plan: &Plan,
    rehearsed: Arc<Plan>,
    scenario: Scenario,
    dir: PathBuf,
    options: &Options,
) -> ScenarioReport {
    let started = Instant::now();
    let name = scenario.name(plan);
    let mut expected = scenario.expected(plan);
    let rehearsed = match scenario {
        Scenario::Breach { phase } | Scenario::NoData { phase } => {
            let (kept, note) = plan::keep_hold(&rehearsed, plan, phase, options.max_hold);
            if let Some(note) = note {
                expected.push_str(&format!(" ({note})"));
            }
            Arc::new(kept)
        }
        Scenario::Tier(_) => Arc::new(plan::hold_after_tier_point(&rehearsed, options.max_hold)),
        _ => rehearsed,
    };
    let mut report = ScenarioReport {
        name,
        passed: false,
        expected,
        observed: String::new(),
        reason: None,
        fix: None,
        duration_ms: 0,
        tier: None,
        checks: Vec::new(),
        log: Vec::new(),
    };
    // A tier whose mistake needs no cluster to see fails without one.
    if let Scenario::Tier(tier) = scenario {
        let environment = plan::tier_environment(plan);
        if let Some(m) = verify::tier_mistakes(plan, tier, &environment).first() {
            report.observed = "not run: the tier cannot do what it says".into();
            report.reason = Some(format!(
                "{} {}",
                m.what,
                m.wrong.clone().unwrap_or_default()
            ));
            report.fix = m.fix.clone();
            report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            return report;
        }
    }
    let (cluster, pointed) = match start_cluster(plan, &rehearsed, &dir).await {
        Ok(c) => c,
        Err(e) => {
            report.observed = "the simulators did not start".into();
            report.reason = Some(e);
            return report;
        }
    };
    let pointed = Arc::new(pointed);
    let mut connections = BTreeMap::new();
    let mut before: BTreeMap<String, Vec<ConfigMapState>> = BTreeMap::new();
    for (name, env) in &pointed.environments {
        if !cluster.sims.contains_key(name) {
            continue;
        }
        let connected =
            crate::cluster::client::connect(Some(&cluster.kubeconfig), Some(&context_of(name)))
                .await;
        let connection = match connected {
            Ok(c) => c,
            Err(e) => {
                report.observed = "no connection to the simulator".into();
                report.reason = Some(e.to_string());
                return report;
            }
        };
        let names = crate::preflight::configmaps_named(&pointed, name);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let items = match crate::cluster::actions::configmap::snapshot(
            &connection.client,
            &env.namespace,
            &refs,
        )
        .await
        {
            Ok(s) => s.items,
            Err(e) => {
                // Without them, a `config: restore` could not be checked: fail, never pass.
                report.observed = "the simulator's ConfigMaps could not be read".into();
                report.reason = Some(format!("{name}: {e}"));
                return report;
            }
        };
        before.insert(name.clone(), items);
        connections.insert(name.clone(), connection);
    }
    let faults = cluster
        .sims
        .iter()
        .filter_map(|(name, sim)| {
            let ns = pointed.environments.get(name)?.namespace.clone();
            Some((name.clone(), (sim.faults.clone(), ns)))
        })
        .collect();
    let (script, seen) = Script::new(scenario.clone(), pointed.clone(), faults, options.deadline);
    let journal = dir.join("journal.jsonl");
    let code = crate::cli::rehearsal_run(
        pointed.clone(),
        (options.plan_path.clone(), options.plan_text.clone()),
        cluster.kubeconfig.clone(),
        journal.clone(),
        Box::new(script),
    )
    .await;
    let observed = seen.lock().map(|s| s.clone()).unwrap_or_default();
    report.log = observed.log.clone();
    report.tier = tier_timing(&journal);
    let judged = judge(
        plan,
        &pointed,
        &scenario,
        &observed,
        code,
        &cluster,
        &connections,
        &before,
    )
    .await;
    report.passed = judged.reason.is_none();
    report.observed = judged.observed;
    if let Scenario::Tier(tier) = scenario {
        let printed = plan::printed_actions(plan, tier);
        if !printed.is_empty() {
            report.observed.push_str(&format!(
                "; printed, not run: {}",
                printed
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !judged.checks.is_empty() {
        let good = judged.checks.iter().filter(|c| c.wrong.is_none()).count();
        report.observed.push_str(&format!(
            "; cluster: {good} of {} checks as expected",
            judged.checks.len()
        ));
    }
    report.reason = judged.reason;
    report.fix = judged.fix;
    report.checks = judged
        .checks
        .iter()
        .map(|c| CheckReport {
            what: c.what.clone(),
            ok: c.wrong.is_none(),
            found: c.wrong.clone(),
        })
        .collect();
    if report.passed {
        report.log.clear();
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    drop(cluster);
    report
}

/// A scenario's verdict.
struct Judged {
    observed: String,
    /// None: passed.
    reason: Option<String>,
    fix: Option<String>,
    checks: Vec<Check>,
}

#[allow(clippy::too_many_arguments)]
async fn judge(
    plan: &Plan,
    pointed: &Plan,
    scenario: &Scenario,
    seen: &Observed,
    code: u8,
    cluster: &Cluster,
    connections: &BTreeMap<String, crate::cluster::client::Connection>,
    before: &BTreeMap<String, Vec<ConfigMapState>>,
) -> Judged {
    let status = seen.status.as_str();
    let mut judged = Judged {
        observed: observed_words(seen, code),
        reason: None,
        fix: None,
        checks: Vec::new(),
    };
    if code == crate::cli::exit::BAD_INPUT && status.is_empty() {
        judged.reason =
            Some("the preflight against the simulator failed (its lines are on stderr)".into());
        return judged;
    }
    if seen.timed_out {
        judged.reason = Some(format!(
            "it ran over the rehearsal's limit for one scenario, {}",
            seen.at.clone().unwrap_or_default()
        ));
        return judged;
    }
    let env = |name: &str| -> Option<Env<'_>> {
        let (key, connection) = connections.get_key_value(name)?;
        Some(Env {
            name: key,
            namespace: pointed.environments.get(name)?.namespace.as_str(),
            connection,
            configmaps_before: before.get(name).map(Vec::as_slice).unwrap_or(&[]),
        })
    };
    match scenario {
        Scenario::Straight => {
            if status != "COMPLETE" {
                judged.reason = Some(stopped_words(seen));
                judged.fix = step_fix(seen);
                return judged;
            }
            for name in crate::preflight::environments_used(plan) {
                if let Some(e) = env(&name) {
                    let checks = verify::after_plan(pointed, &e, &cluster.seeded).await;
                    judged.checks.extend(named(&name, checks));
                }
            }
        }
        Scenario::ApiOutage => {
            if seen.fault.is_none() {
                judged.reason = Some(format!(
                    "the outage was never injected: {}",
                    stopped_words(seen)
                ));
            } else if !seen.outage_felt {
                judged.reason = Some(
                    "the outage ended before the run asked anything of the API server: nothing was ridden out".into(),
                );
            } else if status != "COMPLETE" {
                judged.reason = Some(format!(
                    "it did not ride the outage out: {}",
                    stopped_words(seen)
                ));
            }
            return judged;
        }
        Scenario::Breach { .. } | Scenario::NoData { .. } => {
            let Some(fault) = &seen.fault else {
                judged.reason = Some(format!(
                    "the run never reached the hold: {}",
                    stopped_words(seen)
                ));
                return judged;
            };
            if let Some(step) = &seen.passed_under_fault {
                judged.reason = Some(format!(
                    "{step} passed during the {} ({})",
                    fault.what, fault.environment
                ));
                judged.fix = Some(
                    "make the hold longer than the metrics' rate window plus `after` samples, so a breach is seen before it passes".into(),
                );
                return judged;
            }
            let breach = matches!(scenario, Scenario::Breach { .. });
            let action = if breach {
                plan.metrics.on_breach.action
            } else {
                plan.metrics.no_data.action
            };
            match action {
                BreachAction::Rollback => {
                    let tier = plan.metrics.on_breach.tier;
                    if breach && seen.countdown.is_none() {
                        judged.reason = Some(format!(
                            "no rollback countdown started: {}",
                            stopped_words(seen)
                        ));
                        return judged;
                    }
                    if let Some(why) = rollback_problem(seen, tier) {
                        judged.reason = Some(why);
                        judged.fix = action_fix(plan, seen);
                        return judged;
                    }
                    if let Some(e) = env(&fault.environment) {
                        let phase = match scenario {
                            Scenario::Breach { phase } | Scenario::NoData { phase } => *phase,
                            _ => 0,
                        };
                        let hold = plan
                            .phases
                            .get(phase)
                            .and_then(|p| p.steps.iter().position(|s| matches!(s, Step::Hold(_))));
                        let changed = stable_changed_before(
                            plan,
                            &fault.environment,
                            hold.map(|h| (phase, h)),
                        );
                        let checks =
                            verify::after_tier(pointed, tier, &e, &cluster.seeded, changed).await;
                        judged.checks.extend(checks);
                    }
                }
                BreachAction::Pause => {
                    if seen.paused.is_none() || status == "COMPLETE" {
                        judged.reason =
                            Some(format!("the run did not pause: {}", stopped_words(seen)));
                        return judged;
                    }
                }
                BreachAction::Alert => {
                    if status == "COMPLETE" {
                        judged.reason = Some("the run completed through it".into());
                        return judged;
                    }
                    if !seen.alerted {
                        judged.reason =
                            Some(format!("no alert was raised: {}", stopped_words(seen)));
                        return judged;
                    }
                }
            }
        }
        Scenario::Tier(tier) => {
            let environment = seen
                .rollback
                .as_ref()
                .map(|r| r.environment.clone())
                .unwrap_or_else(|| plan::tier_environment(plan));
            if seen.tier_asked.is_none() {
                judged.reason = Some(format!(
                    "the run never reached the point to roll back from: {}",
                    stopped_words(seen)
                ));
                return judged;
            }
            if let Some(why) = rollback_problem(seen, *tier) {
                judged.reason = Some(why);
                judged.fix = action_fix(plan, seen);
                return judged;
            }
            if let Some(e) = env(&environment) {
                let changed = stable_changed_before(plan, &environment, plan::tier_point(plan));
                judged.checks =
                    verify::after_tier(pointed, *tier, &e, &cluster.seeded, changed).await;
            }
        }
    }
    if let Some(bad) = judged.checks.iter().find(|c| c.wrong.is_some()) {
        judged.reason = Some(format!(
            "expected {}, found {}",
            bad.what,
            bad.wrong.clone().unwrap_or_default()
        ));
        judged.fix = bad.fix.clone();
    }
    judged
}

/// Prefixes each check with its environment.
fn named(environment: &str, checks: Vec<Check>) -> Vec<Check> {
    checks
        .into_iter()
        .map(|mut c| {
            c.what = format!("{environment}: {}", c.what);
            c
        })
        .collect()
}

/// What the run did, in one line: `ROLLED BACK — rollback.immediate done (3 actions)`.
fn observed_words(seen: &Observed, code: u8) -> String {
    let mut parts = vec![if seen.status.is_empty() {
        format!("the run did not start (exit {code})")
    } else {
        seen.status.clone()
    }];
    if let Some(f) = &seen.fault {
        parts.push(format!("{} injected at {}", f.what, f.during));
    }
    if seen.outage_felt {
        parts.push("requests of the run failed and were tried again".into());
    }
    if let Some(c) = &seen.countdown {
        parts.push(format!("countdown: {c}"));
    }
    if let Some(p) = &seen.paused {
        parts.push(format!("paused: {p}"));
    }
    if let Some(r) = &seen.rollback {
        parts.push(format!(
            "rollback.{}: {} of {} actions settled",
            r.tier.as_str(),
            r.settled(),
            r.actions.len()
        ));
    }
    parts.join("; ")
}

/// Where and why the run stopped.
fn stopped_words(seen: &Observed) -> String {
    let mut out = if seen.status.is_empty() {
        "it did not start".to_string()
    } else {
        seen.status.clone()
    };
    if let Some(at) = &seen.at {
        out.push_str(&format!(" at {at}"));
    }
    if let Some(why) = &seen.stopped {
        out.push_str(&format!(" ({why})"));
    }
    if let Some(last) = seen.log.iter().rev().find(|l| l.starts_with('✗')) {
        out.push_str(&format!(": {last}"));
    }
    out
}

/// Why the rollback of `tier` did not end ROLLED BACK, naming the action.
fn rollback_problem(seen: &Observed, tier: TierName) -> Option<String> {
    let Some(run) = &seen.rollback else {
        return Some(format!(
            "rollback.{} never started: {}",
            tier.as_str(),
            stopped_words(seen)
        ));
    };
    if run.tier != tier {
        return Some(format!(
            "rollback.{} ran instead of rollback.{}",
            run.tier.as_str(),
            tier.as_str()
        ));
    }
    if let Some((label, why)) = run.first_failure() {
        return Some(format!(
            "rollback.{}: action `{label}` failed: {why}",
            tier.as_str()
        ));
    }
    if seen.status != "ROLLED BACK" {
        let pending = run
            .actions
            .iter()
            .find(|a| !matches!(a.state, StepState::Done))
            .map(|a| format!(" (`{}` not done)", a.label))
            .unwrap_or_default();
        return Some(format!(
            "the header would say {}, not ROLLED BACK{pending}",
            seen.status
        ));
    }
    None
}

/// What to change in the plan for a failed rollback action, when the plan is the cause.
fn action_fix(plan: &Plan, seen: &Observed) -> Option<String> {
    let run = seen.rollback.as_ref()?;
    let (label, _) = run.first_failure()?;
    let tier = plan.rollback.tier(run.tier)?;
    let index = run.actions.iter().position(|a| a.label == label)?;
    match tier.actions.get(index)? {
        Step::Undo(TrackName::Canary) => Some(format!(
            "the canary Deployment has no earlier revision to undo to: in rollback.{} take the canary out with `- weight: 0` and `- scale: {{ track: canary, replicas: 0 }}`, and undo the stable only",
            run.tier.as_str()
        )),
        Step::Run(r) if r.rehearses() => Some(
            "the command failed against the simulator: fix it, or drop `rehearse: true` if it cannot run there".into(),
        ),
        _ => None,
    }
}

/// A fix for a straight run that stopped at a failed step, when the step says what to change.
fn step_fix(seen: &Observed) -> Option<String> {
    let at = seen.at.as_deref()?;
    at.contains(": run: ").then(|| {
        "a `run` step with `rehearse: true` failed against the simulator: fix the command, or drop `rehearse: true` if it cannot run there".into()
    })
}

/// Whether the run changed the stable Deployment's template in `environment` up to and with
/// step `upto` (phase, step): an `undo` there then goes back to the seeded image rather than
/// the revision before it. Other environments are other clusters (simulators) and do not count.
fn stable_changed_before(plan: &Plan, environment: &str, upto: Option<(usize, usize)>) -> bool {
    let Some((phase, step)) = upto else {
        return false;
    };
    let steps = plan
        .phases
        .iter()
        .enumerate()
        .filter(|(_, ph)| ph.environment == environment)
        .flat_map(|(p, ph)| {
            ph.steps
                .iter()
                .enumerate()
                .filter(move |(s, _)| p < phase || (p == phase && *s <= step))
                .map(|(_, st)| st)
        });
    verify::changes_stable(steps)
}

/// The time to safety of the scenario's last rollback, from its journal.
fn tier_timing(journal: &Path) -> Option<TierTiming> {
    let read = crate::report::read(journal).ok()?;
    let built = read.report().ok()?;
    let last = built.rollbacks.last()?;
    let run = last.run;
    let mut weight_intent = None;
    let mut weight_done = None;
    for line in &read.lines {
        match &line.record {
            Record::Intent(intent) => {
                let ours =
                    matches!(intent.origin, Some(Origin::Rollback { run: r, .. }) if r == run);
                let zero =
                    matches!(&intent.work, Work::SetWeight { weight, .. } if weight.percent() == 0);
                if ours && zero && weight_intent.is_none() {
                    weight_intent = Some(intent.id);
                }
            }
            Record::Result {
                id, ok: Some(_), ..
            } if Some(*id) == weight_intent => {
                weight_done.get_or_insert(line.at);
            }
            _ => {}
        }
    }
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let weight_zero_ms = weight_done
        .and_then(|at| at.duration_since(last.started.0).ok())
        .map(ms);
    let outcome = serde_json::to_value(last.outcome)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ").to_uppercase()))
        .unwrap_or_default();
    Some(TierTiming {
        tier: last.tier.as_str().to_string(),
        outcome,
        weight_zero_ms,
        done_ms: last.duration_ms,
        target_ms: last.target_ms,
        target_met: last.target_met,
    })
}
