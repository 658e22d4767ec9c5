//! The hands of a rehearsal: it watches the headless run as a screen would, injects the
//! scenario's fault when the run reaches the step it is for, runs a rollback tier by hand, and
//! keeps what it saw for the verdict. It decides nothing about pass or fail.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::plan::{API_OUTAGE, Scenario, api_outage_step, fault_track, tier_point};
use crate::app::console::Driver;
use crate::app::{Action, App};
use crate::engine::{RollbackRun, Slot, StepRef, StepState, StepWork};
use crate::journal::record::OperatorCommand;
use crate::plan::{Plan, Weight};
use crate::sim::faults::{Fault, FaultRequest, Faults, Track};

/// Log lines kept for the report of a failed scenario.
const LOG_TAIL: usize = 12;

/// How long after the scenario's limit a run that has not left is told again, at once.
const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// How long before a hold ends an API outage starts when there is no paced weight step: the
/// clock the driver sees moves once a second, so the outage is sure to outlast the hold.
const OUTAGE_LEAD: Duration = Duration::from_secs(3);

/// What the driver saw, shared with the rehearsal that reads it once the run has ended.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The run's status label (`COMPLETE`, `ROLLED BACK`, `PAUSED`…) when last seen.
    pub status: String,
    /// Where the plan stood: `Production: hold 10s`.
    pub at: Option<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// The fault injected, where and when.
    pub fault: Option<Injected>,
    /// The step the fault was aimed at finished while the fault lasted.
    pub passed_under_fault: Option<String>,
    /// The reason of the first rollback countdown seen.
    pub countdown: Option<String>,
    /// Why the run was paused, when it was.
    pub paused: Option<String>,
    /// The tier run by hand, and when it was asked for.
    pub tier_asked: Option<SystemTime>,
    /// The last rollback run seen.
    pub rollback: Option<RollbackRun>,
    /// The last log lines.
    pub log: Vec<String>,
    /// The run was stopped by the rehearsal's deadline.
    pub timed_out: bool,
    /// After the fault, a request of the run failed and was tried again (`attempt N failed`):
    /// the fault met the run.
    pub outage_felt: bool,
    /// After the fault, analysis raised an alert (`⚠ … → alert`).
    pub alerted: bool,
}

/// One injected fault.
#[derive(Debug, Clone)]
pub struct Injected {
    pub what: String,
    pub environment: String,
    /// The step it was aimed at, as the plan panel shows it.
    pub during: String,
    pub at: SystemTime,
}

/// Drives one scenario.
pub struct Script {
    scenario: Scenario,
    plan: Arc<Plan>,
    /// Each environment's simulator faults, and its namespace.
    faults: BTreeMap<String, (Faults, String)>,
    seen: Arc<Mutex<Observed>>,
    /// When the run began, for the deadline.
    started: Option<SystemTime>,
    deadline: Duration,
    /// The slot the fault is aimed at, once found.
    target: Option<StepRef>,
    /// The weight when the target step started (an outage waits for the first paced move).
    weight_at_target: Option<Option<Weight>>,
    injected: bool,
    ended: bool,
    /// `app.log_total` when the log was last read.
    log_read: u64,
    /// The second interrupt was sent.
    forced: bool,
}

impl Script {
    pub fn new(
        scenario: Scenario,
        plan: Arc<Plan>,
        faults: BTreeMap<String, (Faults, String)>,
        deadline: Duration,
    ) -> (Script, Arc<Mutex<Observed>>) {
        let seen = Arc::new(Mutex::new(Observed::default()));
        let script = Script {
            scenario,
            plan,
            faults,
            seen: seen.clone(),
            started: None,
            deadline,
            target: None,
            weight_at_target: None,
            injected: false,
            ended: false,
            log_read: 0,
            forced: false,
        };
        (script, seen)
    }

    /// The slot of step `step` of phase `phase` (a phase approval is slot 0 when present).
    fn slot_of(&self, phase: usize, step: usize) -> Option<StepRef> {
        let offset = usize::from(!self.plan.phases.get(phase)?.approval.is_empty());
        Some(StepRef {
            phase,
            slot: step + offset,
        })
    }

    /// The first hold of `phase`.
    fn first_hold(&self, phase: usize) -> Option<StepRef> {
        let step = self
            .plan
            .phases
            .get(phase)?
            .steps
            .iter()
            .position(|s| matches!(s, crate::plan::Step::Hold(_)))?;
        self.slot_of(phase, step)
    }

    /// Starts `fault` in the simulator of `environment`; a note of it for the report.
    fn inject(&mut self, app: &App, at: StepRef, fault: Fault, duration: Option<Duration>) {
        let environment = app
            .deployment
            .phases
            .get(at.phase)
            .map(|p| p.environment.clone())
            .unwrap_or_default();
        let during = step_name(app, at);
        let what = fault_words(&fault, duration);
        if let Some((faults, _)) = self.faults.get(&environment) {
            faults.start(FaultRequest { fault, duration });
        }
        self.injected = true;
        if let Ok(mut seen) = self.seen.lock() {
            seen.fault = Some(Injected {
                what,
                environment,
                during,
                at: app.now,
            });
        }
    }

    fn track(&self, environment: &str) -> Track {
        let namespace = self
            .faults
            .get(environment)
            .map(|(_, ns)| ns.clone())
            .unwrap_or_default();
        Track {
            namespace,
            service: self.plan.service.clone(),
            track: fault_track(&self.plan).as_str().to_string(),
        }
    }

    /// The fault of a breach or no-data scenario, once the phase's first hold runs.
    fn at_hold(&mut self, app: &App, phase: usize, breach: bool) {
        let Some(hold) = self.first_hold(phase) else {
            return;
        };
        self.target = Some(hold);
        if !self.injected && is_running(app, hold) {
            let fault = if breach {
                let environment = app
                    .deployment
                    .phases
                    .get(phase)
                    .map(|p| p.environment.clone())
                    .unwrap_or_default();
                Fault::ErrorSpike {
                    target: self.track(&environment),
                    ratio: 1.0,
                }
            } else {
                Fault::PrometheusOutage
            };
            self.inject(app, hold, fault, None);
        }
    }

    /// The API outage: after a paced weight step's first move, or shortly before the hold
    /// ends, so that it outlasts the hold and the steps after it meet it.
    fn api_outage(&mut self, app: &App) {
        let Some(spot) = api_outage_step(&self.plan) else {
            return;
        };
        let Some(at) = self.slot_of(spot.phase, spot.step) else {
            return;
        };
        self.target = Some(at);
        if self.injected || !is_running(app, at) {
            return;
        }
        let due = if spot.paced {
            let before = *self.weight_at_target.get_or_insert(app.deployment.weight);
            app.deployment.weight != before
        } else {
            match app.deployment.slot(at) {
                Some(Slot {
                    work: StepWork::Hold(d),
                    state: StepState::Running { since },
                    ..
                }) => {
                    let ran = app.now.duration_since(*since).unwrap_or_default();
                    ran + OUTAGE_LEAD >= *d
                }
                _ => false,
            }
        };
        if due {
            self.inject(app, at, Fault::ApiOutage, Some(API_OUTAGE));
        }
    }

    /// The tier, asked for once the plan's last change has finished.
    fn tier(&mut self, app: &App, tier: crate::plan::TierName) -> Vec<Action> {
        if self.injected {
            return Vec::new();
        }
        let Some(at) = tier_point(&self.plan).and_then(|(p, s)| self.slot_of(p, s)) else {
            return Vec::new();
        };
        self.target = Some(at);
        let done = matches!(
            app.deployment.slot(at).map(|s| &s.state),
            Some(StepState::Done)
        );
        if !done || app.deployment.is_finished() {
            return Vec::new();
        }
        self.injected = true;
        if let Ok(mut seen) = self.seen.lock() {
            seen.tier_asked = Some(app.now);
        }
        vec![Action::Operator(OperatorCommand::Rollback { tier })]
    }

    /// Copies what the verdict needs out of `app`.
    fn record(&mut self, app: &App) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let d = &app.deployment;
        seen.status = d.status.label().to_string();
        seen.at = d.cursor.map(|c| step_name(app, c));
        seen.stopped = app.stopped.clone();
        if seen.countdown.is_none() {
            seen.countdown = d.countdown.as_ref().map(|c| c.reason.clone());
        }
        if let Some((why, _)) = &d.paused {
            seen.paused = Some(why.clone());
        }
        if d.rollback.is_some() {
            seen.rollback = d.rollback.clone();
        }
        if self.injected && seen.passed_under_fault.is_none() && !self.is_tier() {
            if let Some(at) = self.target {
                let passed = matches!(d.slot(at).map(|s| &s.state), Some(StepState::Done));
                // The API outage is meant to be ridden out; only holds under a metric fault
                // must not pass.
                if passed && !matches!(self.scenario, Scenario::ApiOutage) {
                    seen.passed_under_fault = Some(step_name(app, at));
                }
            }
        }
        // Lines written since the last look (those still kept).
        let new =
            usize::try_from(app.log_total.saturating_sub(self.log_read)).unwrap_or(usize::MAX);
        if self.injected {
            for line in app.log.iter().skip(app.log.len().saturating_sub(new)) {
                let text = line.text.as_str();
                if text.contains("attempt ") && text.contains(" failed: ") {
                    seen.outage_felt = true;
                }
                if text.starts_with('⚠') && text.ends_with("→ alert") {
                    seen.alerted = true;
                }
            }
        }
        let skip = app.log.len().saturating_sub(LOG_TAIL);
        seen.log = app.log.iter().skip(skip).map(|l| l.text.clone()).collect();
        drop(seen);
        self.log_read = app.log_total;
    }

    fn is_tier(&self) -> bool {
        matches!(self.scenario, Scenario::Tier(_))
    }
}

impl Driver for Script {
    fn observe(&mut self, app: &App) -> Vec<Action> {
        let started = *self.started.get_or_insert(app.now);
        let mut actions = match self.scenario.clone() {
            Scenario::Straight => Vec::new(),
            Scenario::Breach { phase } => {
                self.at_hold(app, phase, true);
                Vec::new()
            }
            Scenario::NoData { phase } => {
                self.at_hold(app, phase, false);
                Vec::new()
            }
            Scenario::ApiOutage => {
                self.api_outage(app);
                Vec::new()
            }
            Scenario::Tier(tier) => self.tier(app, tier),
        };
        self.record(app);
        let ran = app.now.duration_since(started).unwrap_or_default();
        // A run stopped during a rollback finishes the rollback first; a second interrupt
        // (a minute on) leaves at once.
        if self.ended && !self.forced && ran > self.deadline + DEADLINE_GRACE {
            self.forced = true;
            actions.push(Action::Interrupted(
                "the rehearsal's limit for one scenario, again".to_string(),
            ));
        }
        if !self.ended && ran > self.deadline && !app.deployment.is_finished() {
            self.ended = true;
            if let Ok(mut seen) = self.seen.lock() {
                seen.timed_out = true;
            }
            actions.push(Action::Interrupted(format!(
                "the rehearsal's limit of {} for one scenario",
                crate::plan::duration::format_duration(self.deadline)
            )));
        }
        actions
    }
}

fn is_running(app: &App, at: StepRef) -> bool {
    app.deployment.cursor == Some(at)
        && matches!(
            app.deployment.slot(at).map(|s| &s.state),
            Some(StepState::Running { .. })
        )
}

/// `Production: hold 10s`.
fn step_name(app: &App, at: StepRef) -> String {
    let phase = app.deployment.phases.get(at.phase);
    match (phase, app.deployment.slot(at)) {
        (Some(p), Some(s)) => format!("{}: {}", p.name, s.label),
        (Some(p), None) => p.name.clone(),
        _ => String::new(),
    }
}

fn fault_words(fault: &Fault, duration: Option<Duration>) -> String {
    let what = match fault {
        Fault::ErrorSpike { target, ratio } => format!(
            "error spike ({:.0} % of {} requests fail)",
            ratio * 100.0,
            target.track
        ),
        Fault::PrometheusOutage => "Prometheus outage".into(),
        Fault::ApiOutage => "Kubernetes API outage".into(),
        other => format!("{other:?}"),
    };
    match duration {
        Some(d) => format!("{what} for {}", crate::plan::duration::format_duration(d)),
        None => what,
    }
}
