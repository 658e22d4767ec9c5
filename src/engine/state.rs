//! The plan's progress as a pure state machine: phases → slots (steps and approval gates),
//! analysis that acts on samples, and rollbacks as states of their own.
//! No IO and no clocks: time and results come in as arguments, work goes out as [`Command`]s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::analysis::{Analysis, Key, Round, Verdict, VerdictKind};
use super::window;
use super::work::{Gate, Level, Note, StepWork, Work, describe, next_weight};
use crate::plan::duration::format_duration;
use crate::plan::{BreachAction, Plan, Step, TierName, TrackName, Weight, WeightStep};

/// Identifies one slot of the plan: phase index and slot index within it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct StepRef {
    pub phase: usize,
    pub slot: usize,
}

/// Where a slot (or a rollback action) is.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    Pending,
    /// Started at `since`: an effect in flight, a hold counting, weights being paced.
    Running {
        since: SystemTime,
    },
    /// Waiting for a person.
    Waiting,
    /// Waiting for the phase's deployment window.
    Blocked(String),
    Done,
    Failed(String),
}

/// One step (or approval gate) of a phase, as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub label: String,
    pub work: StepWork,
    pub state: StepState,
}

/// One phase's slots.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseState {
    pub name: String,
    pub environment: String,
    pub slots: Vec<Slot>,
}

impl PhaseState {
    /// Finished slots, for the progress gauge.
    pub fn done(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == StepState::Done)
            .count()
    }
}

/// Where the deployment as a whole is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Loaded, nothing run yet; `n` starts.
    Ready,
    Running,
    /// Nothing advances until `p`.
    Paused,
    /// A step failed; `n` retries it.
    Failed,
    /// A rollback tier's actions are being carried out.
    RollingBack,
    /// Every action of the rollback tier succeeded.
    RolledBack,
    /// At least one action of the rollback tier failed; `n` retries those.
    RollbackFailed,
    Complete,
}

impl RunStatus {
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Ready => "READY",
            RunStatus::Running => "RUNNING",
            RunStatus::Paused => "PAUSED",
            RunStatus::Failed => "STEP FAILED",
            RunStatus::RollingBack => "ROLLING BACK",
            RunStatus::RolledBack => "ROLLED BACK",
            RunStatus::RollbackFailed => "ROLLBACK FAILED",
            RunStatus::Complete => "COMPLETE",
        }
    }
}

/// Where a piece of work came from, so its result finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Step(StepRef),
    /// Action `action` of rollback run `run` (runs are numbered so results of a pre-empted run
    /// are recognised and ignored).
    Rollback {
        run: u32,
        action: usize,
    },
}

/// Work the engine asks for, in one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub origin: Origin,
    pub environment: String,
    pub work: Work,
}

/// What an engine call decided.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub commands: Vec<Command>,
    pub notes: Vec<Note>,
    /// Step work still in flight (a command, a rollout wait) should be stopped: a rollback took
    /// over.
    pub cancel_steps: bool,
    /// Work of a rollback that another one pre-empted should be stopped.
    pub cancel_rollback: bool,
}

impl Outcome {
    fn note(&mut self, level: Level, text: impl Into<String>) {
        self.notes.push(Note {
            level,
            text: text.into(),
        });
    }
}

/// What a person at the keys (or `--auto-approve`) passes without being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoApprove {
    #[default]
    Nothing,
    /// `check`, `approve` and phase `approval` gates.
    Gates,
    /// Gates and `pause` steps.
    All,
}

impl AutoApprove {
    /// As journaled: `nothing`, `gates`, `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoApprove::Nothing => "nothing",
            AutoApprove::Gates => "gates",
            AutoApprove::All => "all",
        }
    }

    /// From its journaled name; anything else passes nothing.
    pub fn from_name(name: &str) -> AutoApprove {
        match name {
            "gates" => AutoApprove::Gates,
            "all" => AutoApprove::All,
            _ => AutoApprove::Nothing,
        }
    }
}

/// An automatic rollback waiting for its countdown, which `x` cancels.
#[derive(Debug, Clone, PartialEq)]
pub struct Countdown {
    pub tier: TierName,
    pub metric: String,
    /// The verdict that started it.
    pub reason: String,
    pub ends: SystemTime,
    /// Where the breach was seen: the rollback acts there.
    pub environment: String,
}

/// One action of a rollback tier: shown and tracked like a step.
pub type RollbackAction = Slot;

/// A rollback tier being (or having been) carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackRun {
    pub tier: TierName,
    pub run: u32,
    pub environment: String,
    pub started: SystemTime,
    pub target: Option<Duration>,
    pub actions: Vec<RollbackAction>,
    overrun_logged: bool,
}

impl RollbackRun {
    /// Actions finished (done or failed).
    pub fn settled(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a.state, StepState::Done | StepState::Failed(_)))
            .count()
    }

    /// The first failed action and why.
    pub fn first_failure(&self) -> Option<(&str, &str)> {
        self.actions.iter().find_map(|a| match &a.state {
            StepState::Failed(why) => Some((a.label.as_str(), why.as_str())),
            _ => None,
        })
    }
}

/// How long a paced weight step waits for the traffic router to read the weight it paces from.
const WEIGHT_READ_WAIT: Duration = Duration::from_secs(30);

/// Paced weight writes of the running step or rollback action.
#[derive(Debug, Clone, PartialEq)]
struct Pacing {
    to: Weight,
    step: Option<Weight>,
    every: Duration,
    /// A write is on its way.
    writing: Option<Weight>,
    /// When the next write may go.
    next_at: SystemTime,
    /// Since when it has waited for a weight reading (from the start or the last resume).
    waiting_since: SystemTime,
}

impl Pacing {
    /// The next write when one is due, going from `from`; marked as on its way.
    fn due(&mut self, from: Weight, now: SystemTime) -> Option<Weight> {
        if self.writing.is_some() || now < self.next_at {
            return None;
        }
        let next = next_weight(from, self.to, self.step);
        self.writing = Some(next);
        Some(next)
    }
}

/// The deployment's progress through its plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    plan: Arc<Plan>,
    pub phases: Vec<PhaseState>,
    /// The current slot; `None` once past the last one.
    pub cursor: Option<StepRef>,
    pub status: RunStatus,
    /// Why the plan is paused, and since when (a hold's clock stops there).
    pub paused: Option<(String, SystemTime)>,
    pub analysis: Analysis,
    pub countdown: Option<Countdown>,
    pub rollback: Option<RollbackRun>,
    /// The canary weight as last read or written in the current environment.
    pub weight: Option<Weight>,
    /// The latest alert or breach verdict, for a banner; cleared when analysis is clean.
    pub banner: Option<String>,
    pub auto_approve: AutoApprove,
    pacing: Option<Pacing>,
    /// Verdicts already reported in their current streak, so each is logged once.
    reported: BTreeSet<(Key, bool)>,
    overridden_windows: BTreeSet<usize>,
    runs: u32,
    /// The environment of the last step that did something there (a write, a hold, a command):
    /// where a rollback acts even when the cursor already waits at the next phase's gate.
    active_environment: Option<String>,
    /// When each track serving traffic began to, as first seen by a round of samples.
    serving_since: std::collections::BTreeMap<TrackName, SystemTime>,
}

impl Deployment {
    /// Lays out the plan's phases; an approval list becomes a gate before the phase's steps.
    pub fn new(plan: Arc<Plan>) -> Deployment {
        let phases: Vec<PhaseState> = plan
            .phases
            .iter()
            .map(|phase| {
                let mut slots = Vec::with_capacity(phase.steps.len() + 1);
                if !phase.approval.is_empty() {
                    slots.push(Slot {
                        label: format!("approval: {}", phase.approval.join(", ")),
                        work: StepWork::Gate(Gate::Approval(phase.approval.clone())),
                        state: StepState::Pending,
                    });
                }
                slots.extend(phase.steps.iter().map(|step| {
                    let (label, work) = describe(step, &plan.workload);
                    Slot {
                        label,
                        work,
                        state: StepState::Pending,
                    }
                }));
                PhaseState {
                    name: phase.name.clone(),
                    environment: phase.environment.clone(),
                    slots,
                }
            })
            .collect();
        let mut phases = phases;
        for phase in &mut phases {
            retarget_waits(
                phase.slots.iter_mut().map(|s| &mut s.work),
                plan.workload.canary.is_some(),
            );
        }
        let cursor = first_slot(&phases, 0);
        Deployment {
            plan,
            phases,
            cursor,
            status: RunStatus::Ready,
            paused: None,
            analysis: Analysis::default(),
            countdown: None,
            rollback: None,
            weight: None,
            banner: None,
            auto_approve: AutoApprove::Nothing,
            pacing: None,
            reported: BTreeSet::new(),
            overridden_windows: BTreeSet::new(),
            runs: 0,
            active_environment: None,
            serving_since: std::collections::BTreeMap::new(),
        }
    }

    /// The plan being carried out.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The slot at `at`, if it exists.
    pub fn slot(&self, at: StepRef) -> Option<&Slot> {
        self.phases.get(at.phase)?.slots.get(at.slot)
    }

    fn slot_mut(&mut self, at: StepRef) -> Option<&mut Slot> {
        self.phases.get_mut(at.phase)?.slots.get_mut(at.slot)
    }

    /// The current slot.
    pub fn current(&self) -> Option<&Slot> {
        self.cursor.and_then(|c| self.slot(c))
    }

    /// The phase whose environment is current: the cursor's, else the last one.
    pub fn phase_index(&self) -> usize {
        self.cursor
            .map(|c| c.phase)
            .unwrap_or_else(|| self.phases.len().saturating_sub(1))
    }

    /// The environment the engine acts on now: a rollback's, else the current phase's.
    pub fn environment(&self) -> &str {
        if let Some(r) = &self.rollback {
            return &r.environment;
        }
        self.phases
            .get(self.phase_index())
            .map_or("", |p| p.environment.as_str())
    }

    /// Where the canary is live: the environment of the last step that acted, else the
    /// current phase's.
    pub fn active_environment(&self) -> &str {
        match &self.active_environment {
            Some(e) => e,
            None => self
                .phases
                .get(self.phase_index())
                .map_or("", |p| p.environment.as_str()),
        }
    }

    /// Where a rollback started now would act: where an earlier rollback did, else where a
    /// countdown's breach was seen, else where the canary is live.
    pub fn rollback_environment(&self) -> &str {
        match (&self.rollback, self.status, &self.countdown) {
            (
                Some(r),
                RunStatus::RollingBack | RunStatus::RolledBack | RunStatus::RollbackFailed,
                _,
            ) => &r.environment,
            (_, _, Some(c)) => &c.environment,
            _ => self.active_environment(),
        }
    }

    /// True when the deployment can no longer move forward.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status,
            RunStatus::RolledBack | RunStatus::Complete | RunStatus::RollbackFailed
        )
    }

    /// The header's status: `ROLLING BACK (immediate, 2 of 3, 0:14 of 5m)`.
    pub fn headline(&self, now: SystemTime) -> String {
        match (self.status, &self.rollback) {
            (RunStatus::RollingBack, Some(r)) => {
                let elapsed = now.duration_since(r.started).unwrap_or_default();
                let of = r
                    .target
                    .map(|t| format!(" of {}", format_duration(t)))
                    .unwrap_or_default();
                format!(
                    "ROLLING BACK ({}, {} of {}, {}{of})",
                    r.tier.as_str(),
                    (r.settled() + 1).min(r.actions.len()),
                    r.actions.len(),
                    clock(elapsed)
                )
            }
            (RunStatus::RollbackFailed, Some(r)) => match r.first_failure() {
                Some((label, _)) => format!("ROLLBACK FAILED ({}: {label})", r.tier.as_str()),
                None => "ROLLBACK FAILED".to_string(),
            },
            (RunStatus::RolledBack, Some(r)) => format!("ROLLED BACK ({})", r.tier.as_str()),
            (status, _) => status.label().to_string(),
        }
    }

    /// What a person must do before the run can go on, if anything; `None` while the engine is
    /// working by itself (a step in flight, a hold counting, a countdown running).
    pub fn waiting_for_person(&self) -> Option<String> {
        // An automatic rollback is counting down: the engine acts by itself.
        if self.countdown.is_some() {
            return None;
        }
        match self.status {
            RunStatus::Ready => return Some("the plan has not been started".into()),
            RunStatus::Paused => {
                let why = self.paused.as_ref().map_or("paused", |(w, _)| w.as_str());
                return Some(format!("{why}; p resumes"));
            }
            RunStatus::Failed => {
                let failed = self.current().and_then(|s| match &s.state {
                    StepState::Failed(why) => Some(format!("{}: {why}", s.label)),
                    _ => None,
                });
                return Some(format!(
                    "step failed: {}; n retries",
                    failed.unwrap_or_default()
                ));
            }
            RunStatus::RollbackFailed => {
                let (label, why) = self
                    .rollback
                    .as_ref()
                    .and_then(|r| r.first_failure())
                    .unwrap_or(("?", "?"));
                return Some(format!("rollback action failed: {label}: {why}; n retries"));
            }
            RunStatus::Running => {}
            RunStatus::RollingBack | RunStatus::RolledBack | RunStatus::Complete => return None,
        }
        let slot = self.current()?;
        match (&slot.state, &slot.work) {
            (StepState::Waiting, StepWork::Gate(Gate::Approval(who))) => {
                Some(format!("waiting for {}", approvers(who)))
            }
            (StepState::Waiting, _) => Some(format!("{} — n to continue", slot.label)),
            // A closed window opens by itself; the engine waits for the clock, not a person.
            _ => None,
        }
    }

    /// Tracks serving traffic, the ones whose data analysis judges.
    pub fn serving_tracks(&self) -> Vec<TrackName> {
        let tracks = self.plan.tracks();
        if tracks.len() < 2 {
            return tracks.to_vec();
        }
        match self.weight.map(Weight::percent) {
            Some(0) => vec![TrackName::Stable],
            Some(100) => vec![TrackName::Canary],
            _ => tracks.to_vec(),
        }
    }

    /// The traffic router read the canary weight.
    pub fn observe_weight(&mut self, weight: Weight) {
        self.weight = Some(weight);
    }

    /// The console switched its view to the current environment: data of the previous one says
    /// nothing about this one.
    pub fn environment_switched(&mut self) {
        self.weight = None;
        self.serving_since.clear();
        self.analysis.reset_streaks();
        self.reported.clear();
        self.banner = None;
    }

    /// The run continues after a gap (a resume): nothing was watched meanwhile, so a running
    /// hold starts its time again, paced weights wait a full `every` at the weight they reached,
    /// and analysis wants fresh samples. A countdown keeps its end: the plan said when to act.
    pub fn resumed(&mut self, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        self.serving_since.clear();
        self.reported.clear();
        self.analysis.reset_streaks();
        self.analysis.judged_at = None;
        self.analysis.unclean_at = Some(now);
        // The last reading is from before the gap; a fresh one comes from the router.
        self.weight = None;
        if let Some(p) = &mut self.pacing {
            p.next_at = now + p.every;
            p.waiting_since = now;
        }
        if let Some(at) = self.cursor {
            if let Some(slot) = self.slot_mut(at) {
                if let (StepState::Running { since }, StepWork::Hold(d)) = (&slot.state, &slot.work)
                {
                    let ran = now.duration_since(*since).unwrap_or_default();
                    out.note(
                        Level::Warn,
                        format!(
                            "{}: its time starts again ({} had passed; nothing was watched while warroom was stopped)",
                            slot.label,
                            format_duration(Duration::from_secs(ran.as_secs().min(d.as_secs())))
                        ),
                    );
                    slot.state = StepState::Running { since: now };
                }
            }
        }
        out
    }

    /// `n`: start, pass a gate, retry a failed step or failed rollback actions.
    pub fn advance(&mut self, now: SystemTime, operator: &str) -> Outcome {
        let mut out = Outcome::default();
        match self.status {
            RunStatus::Ready => {
                out.note(
                    Level::Operator,
                    format!("{operator} started the plan {}", self.plan.name),
                );
                self.status = RunStatus::Running;
                if let Some(at) = self.cursor {
                    self.start(at, now, &mut out);
                }
                return out;
            }
            RunStatus::Paused => {
                out.note(Level::Warn, "the plan is paused; p resumes it (n does not)");
                return out;
            }
            RunStatus::RollbackFailed => {
                self.retry_rollback(now, operator, &mut out);
                return out;
            }
            RunStatus::RollingBack => {
                out.note(Level::Warn, "a rollback is under way; n waits for it");
                return out;
            }
            RunStatus::RolledBack | RunStatus::Complete => {
                out.note(
                    Level::Info,
                    format!(
                        "the deployment is {}; nothing to advance",
                        self.status.label().to_lowercase()
                    ),
                );
                return out;
            }
            RunStatus::Running | RunStatus::Failed => {}
        }
        let Some(at) = self.cursor else {
            return out;
        };
        let Some(slot) = self.slot(at).cloned() else {
            return out;
        };
        match (&slot.state, &slot.work) {
            (StepState::Failed(_), _) => {
                out.note(
                    Level::Operator,
                    format!("{operator} retries {}", slot.label),
                );
                self.status = RunStatus::Running;
                self.start(at, now, &mut out);
            }
            (StepState::Pending, _) => self.start(at, now, &mut out),
            (StepState::Waiting, StepWork::Gate(Gate::Approval(who))) => {
                if who.iter().any(|w| w == operator) {
                    out.note(
                        Level::Operator,
                        format!("✓ {} — approved by {operator}", slot.label),
                    );
                    self.finish(at, now, &mut out);
                } else {
                    out.note(
                        Level::Warn,
                        format!(
                            "waiting for {}; {operator} cannot approve this gate (the operator at the keys is named with --operator)",
                            approvers(who)
                        ),
                    );
                }
            }
            (StepState::Waiting, _) => {
                out.note(Level::Operator, format!("✓ {} — by {operator}", slot.label));
                self.finish(at, now, &mut out);
            }
            (StepState::Running { since }, StepWork::Hold(d)) => {
                let held = now.duration_since(*since).unwrap_or_default();
                out.note(
                    Level::Info,
                    format!(
                        "hold {} of {} — n does not cut a hold short; :skip REASON does",
                        clock(held),
                        format_duration(*d)
                    ),
                );
            }
            (StepState::Blocked(why), _) => {
                out.note(
                    Level::Info,
                    format!("{why}; :window override REASON starts it now"),
                );
            }
            (StepState::Running { .. }, _) => {
                out.note(Level::Info, format!("{} is still running", slot.label));
            }
            (StepState::Done, _) => {}
        }
        out
    }

    /// What `n` would do now, without doing it: `Ok` says what it starts or passes, `Err` why
    /// it would do nothing. The key bar shows it; a test holds it to [`Deployment::advance`].
    pub fn advance_preview(&self, operator: &str) -> Result<String, String> {
        match self.status {
            RunStatus::Ready => {
                return Ok(match self.current() {
                    Some(slot) => format!("start the plan: {}", slot.label),
                    None => "start the plan".into(),
                });
            }
            RunStatus::Paused => return Err("paused — p resumes".into()),
            RunStatus::RollbackFailed => {
                let (label, _) = self
                    .rollback
                    .as_ref()
                    .and_then(|r| r.first_failure())
                    .unwrap_or(("the failed actions", ""));
                return Ok(format!("retry rollback: {label}"));
            }
            RunStatus::RollingBack => return Err("a rollback is under way".into()),
            RunStatus::RolledBack | RunStatus::Complete => {
                return Err(format!("{} — nothing to advance", self.status.label()));
            }
            RunStatus::Running | RunStatus::Failed => {}
        }
        let Some(slot) = self.current() else {
            return Err("nothing to advance".into());
        };
        match (&slot.state, &slot.work) {
            (StepState::Failed(_), _) => Ok(format!("retry {}", slot.label)),
            (StepState::Pending, _) => Ok(format!("start {}", slot.label)),
            (StepState::Waiting, StepWork::Gate(Gate::Approval(who))) => {
                if who.iter().any(|w| w == operator) {
                    Ok(format!("approve — {}", slot.label))
                } else {
                    Err(format!("waiting for {}", approvers(who)))
                }
            }
            (StepState::Waiting, _) => Ok(format!("pass {}", slot.label)),
            (StepState::Running { .. }, StepWork::Hold(_)) => {
                Err("holding — :skip REASON cuts it short".into())
            }
            (StepState::Blocked(why), _) => Err(format!("{why} — :window override REASON")),
            (StepState::Running { .. }, _) => Err(format!("{} running", slot.label)),
            (StepState::Done, _) => Err("nothing to advance".into()),
        }
    }

    /// What `p` would do now: `Ok("pause")`, `Ok("resume …")`, or why it does nothing.
    pub fn pause_preview(&self) -> Result<String, String> {
        match self.status {
            RunStatus::Running => Ok("pause".into()),
            RunStatus::Paused => Ok(match self.current() {
                Some(slot) => format!("resume: {}", slot.label),
                None => "resume".into(),
            }),
            RunStatus::Ready => Err("not started — n starts".into()),
            other => Err(format!("{} — nothing to pause", other.label())),
        }
    }

    /// What a rollback of `tier` would do now: its actions' labels, or why it would not start.
    pub fn rollback_preview(&self, tier: TierName) -> Result<Vec<String>, String> {
        if let (RunStatus::RollingBack, Some(r)) = (self.status, &self.rollback) {
            if r.tier == tier {
                return Err(format!("the {} rollback is under way", tier.as_str()));
            }
            if tier != TierName::Immediate {
                return Err(format!(
                    "the {} rollback is under way; only ! pre-empts it",
                    r.tier.as_str()
                ));
            }
        }
        if tier != TierName::Immediate && self.plan.rollback.tier(tier).is_none() {
            return Err(format!("the plan has no rollback.{}", tier.as_str()));
        }
        let actions = rollback_actions(&self.plan, tier);
        if actions.is_empty() {
            return Err(format!("rollback.{} has no actions", tier.as_str()));
        }
        Ok(actions.into_iter().map(|a| a.label).collect())
    }

    /// `p`: stop or resume. Nothing advances while paused; a hold paused and resumed starts
    /// over (the operator asked for that much uninterrupted time).
    pub fn toggle_pause(&mut self, now: SystemTime, operator: &str) -> Outcome {
        let mut out = Outcome::default();
        match self.status {
            RunStatus::Running => {
                self.pause(now, format!("paused by {operator}"), &mut out);
            }
            RunStatus::Paused => {
                self.status = RunStatus::Running;
                self.paused = None;
                out.note(Level::Operator, format!("resumed by {operator}"));
                if let Some(p) = &mut self.pacing {
                    p.next_at = p.next_at.max(now);
                    p.waiting_since = now;
                }
                if let Some(at) = self.cursor {
                    match self.slot(at).map(|s| (&s.state, &s.work)) {
                        Some((StepState::Running { .. }, StepWork::Hold(_))) => {
                            if let Some(slot) = self.slot_mut(at) {
                                slot.state = StepState::Running { since: now };
                            }
                            out.note(Level::Info, "hold restarted from the beginning");
                        }
                        Some((StepState::Pending | StepState::Blocked(_), _)) => {
                            self.start(at, now, &mut out)
                        }
                        _ => {}
                    }
                }
                self.pace(now, &mut out);
            }
            RunStatus::Ready => out.note(Level::Info, "not started yet; n starts the plan"),
            other => out.note(
                Level::Warn,
                format!(
                    "cannot pause: the deployment is {}",
                    other.label().to_lowercase()
                ),
            ),
        }
        out
    }

    fn pause(&mut self, now: SystemTime, why: String, out: &mut Outcome) {
        out.note(Level::Warn, format!("{why}: nothing advances until p"));
        self.status = RunStatus::Paused;
        self.paused = Some((why, now));
    }

    /// Cuts a running hold short: a named, logged command.
    pub fn skip_hold(&mut self, now: SystemTime, operator: &str, reason: &str) -> Outcome {
        let mut out = Outcome::default();
        let running = self.cursor.and_then(|at| {
            let slot = self.slot(at)?;
            match (&slot.state, &slot.work) {
                (StepState::Running { since }, StepWork::Hold(_)) => {
                    Some((at, *since, slot.label.clone()))
                }
                _ => None,
            }
        });
        let Some((at, since, label)) = running else {
            out.note(Level::Warn, "no hold is running; nothing to skip");
            return out;
        };
        if self.status != RunStatus::Running {
            out.note(Level::Warn, "the plan is paused; p resumes it first");
            return out;
        }
        if self.countdown.is_some() {
            out.note(
                Level::Warn,
                "a rollback countdown is running: the hold cannot be skipped (x cancels the countdown, ! rolls back now)",
            );
            return out;
        }
        let held = now.duration_since(since).unwrap_or_default();
        out.note(
            Level::Operator,
            format!(
                "{label} cut short by {operator} after {}: {reason}",
                clock(held)
            ),
        );
        self.finish(at, now, &mut out);
        out
    }

    /// Starts a phase outside its window: a named, logged command.
    pub fn override_window(&mut self, now: SystemTime, operator: &str, reason: &str) -> Outcome {
        let mut out = Outcome::default();
        let blocked = self.cursor.filter(|at| {
            matches!(
                self.slot(*at).map(|s| &s.state),
                Some(StepState::Blocked(_))
            )
        });
        let Some(at) = blocked else {
            out.note(
                Level::Warn,
                "no phase is waiting for its window; nothing to override",
            );
            return out;
        };
        self.overridden_windows.insert(at.phase);
        out.note(
            Level::Operator,
            format!(
                "window of phase {} overridden by {operator}: {reason}",
                self.phase_name(at)
            ),
        );
        if self.status == RunStatus::Running {
            self.start(at, now, &mut out);
        } else {
            out.note(Level::Info, "the phase starts when the plan is resumed (p)");
        }
        out
    }

    /// Lets every phase start outside its window (`--override-window REASON`): logged once,
    /// with the operator and the reason.
    pub fn override_all_windows(&mut self, operator: &str, reason: &str) -> Outcome {
        let mut out = Outcome::default();
        let windowed: Vec<usize> = (0..self.plan.phases.len())
            .filter(|i| self.plan.phases.get(*i).is_some_and(|p| p.window.is_some()))
            .collect();
        if windowed.is_empty() {
            return out;
        }
        self.overridden_windows.extend(windowed);
        out.note(
            Level::Operator,
            format!("deployment windows overridden for this run by {operator}: {reason}"),
        );
        out
    }

    /// The clock moved: holds, paced weights, countdowns, windows, rollback targets.
    pub fn tick(&mut self, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        if let Some(c) = &self.countdown {
            if now >= c.ends {
                let (tier, reason) = (c.tier, c.reason.clone());
                // start_rollback reads where the breach was, then clears the countdown.
                self.start_rollback(tier, now, &format!("analysis ({reason})"), &mut out);
                return out;
            }
        }
        if self.status == RunStatus::RollingBack {
            self.tick_rollback(now, &mut out);
            return out;
        }
        if self.status != RunStatus::Running {
            return out;
        }
        if let Some(at) = self.cursor {
            match self.slot(at).map(|s| (&s.state, &s.work)) {
                Some((StepState::Running { .. }, StepWork::Hold(_))) => {
                    self.try_pass_hold(at, now, &mut out)
                }
                Some((StepState::Blocked(_), _)) => self.start(at, now, &mut out),
                _ => {}
            }
        }
        self.pace(now, &mut out);
        out
    }

    /// A round of samples came in (or Prometheus did not answer).
    pub fn samples(&mut self, round: Round<'_>, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        let tracks = self.serving_tracks();
        for t in &tracks {
            self.serving_since.entry(*t).or_insert(now);
        }
        self.serving_since.retain(|t, _| tracks.contains(t));
        let window = self.plan.metrics.rate.get();
        let starting: Vec<TrackName> = self
            .serving_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since).unwrap_or_default() < window)
            .map(|(t, _)| *t)
            .collect();
        // An Arc, not a copy of the metrics section, on every round.
        let plan = self.plan.clone();
        let verdicts = self
            .analysis
            .judge(&plan.metrics, round, &tracks, &starting, now);
        // A streak that ended may be reported again when it comes back.
        let latest = self.analysis.latest.clone();
        self.reported
            .retain(|(key, is_breach)| match latest.get(key) {
                Some(super::analysis::Finding::Breach(_)) => *is_breach,
                Some(super::analysis::Finding::NoData(_)) => !*is_breach,
                _ => false,
            });
        if self.analysis.clean() {
            self.banner = None;
        }
        let judging = self.is_judging();
        for verdict in verdicts {
            self.act_on(verdict, judging, now, &mut out);
        }
        if self.status == RunStatus::Running {
            if let Some(at) = self.cursor {
                if matches!(
                    self.slot(at).map(|s| (&s.state, &s.work)),
                    Some((StepState::Running { .. }, StepWork::Hold(_)))
                ) {
                    self.try_pass_hold(at, now, &mut out);
                }
            }
        }
        out
    }

    /// True while the current step is one analysis acts on: a hold or paced weights.
    fn is_judging(&self) -> bool {
        if !matches!(self.status, RunStatus::Running | RunStatus::Paused) {
            return false;
        }
        let Some(slot) = self.current() else {
            return false;
        };
        matches!(slot.state, StepState::Running { .. })
            && matches!(
                slot.work,
                StepWork::Hold(_) | StepWork::Weight { every: Some(_), .. }
            )
    }

    fn act_on(&mut self, v: Verdict, judging: bool, now: SystemTime, out: &mut Outcome) {
        let key = ((v.metric.clone(), v.track), v.kind == VerdictKind::Breach);
        let first = self.reported.insert(key);
        let action = match v.kind {
            VerdictKind::Breach => self.plan.metrics.on_breach.action,
            VerdictKind::NoData => self.plan.metrics.no_data.action,
        };
        let counted = format!("{} ({} of {})", v.text, v.count.min(v.after), v.after);
        self.banner = Some(counted.clone());
        if !judging || action == BreachAction::Alert {
            if first {
                out.note(Level::Warn, format!("⚠ {counted} → alert"));
            }
            return;
        }
        match action {
            BreachAction::Alert => {}
            BreachAction::Pause => {
                if self.status == RunStatus::Running {
                    out.note(Level::Error, format!("{counted} → pause"));
                    self.pause(now, format!("paused by analysis: {}", v.text), out);
                }
            }
            BreachAction::Rollback => {
                if self.countdown.is_some() {
                    return;
                }
                if self.analysis.is_acknowledged(&v.metric) {
                    if first {
                        out.note(
                            Level::Warn,
                            format!("{counted} — acknowledged by an operator; no new countdown until it recovers"),
                        );
                    }
                    return;
                }
                let tier = self.plan.metrics.on_breach.tier;
                let wait = self.plan.metrics.on_breach.countdown.get();
                if wait.is_zero() {
                    out.note(
                        Level::Error,
                        format!("{counted} → rollback {} now", tier.as_str()),
                    );
                    self.start_rollback(tier, now, &format!("analysis ({})", v.text), out);
                    return;
                }
                out.note(
                    Level::Error,
                    format!(
                        "{counted} → rollback {} in {} (x to cancel)",
                        tier.as_str(),
                        format_duration(wait)
                    ),
                );
                self.countdown = Some(Countdown {
                    tier,
                    metric: v.metric.clone(),
                    reason: v.text.clone(),
                    ends: now + wait,
                    environment: self.active_environment().to_string(),
                });
            }
        }
    }

    /// `x`: the countdown stops, the plan pauses, the breach stays acknowledged by `operator`.
    pub fn cancel_countdown(&mut self, now: SystemTime, operator: &str) -> Outcome {
        let mut out = Outcome::default();
        let Some(c) = self.countdown.take() else {
            out.note(Level::Info, "no rollback countdown is running");
            return out;
        };
        self.analysis.acknowledge(&c.metric);
        out.note(
            Level::Operator,
            format!(
                "{operator} cancelled the automatic rollback ({}: {}); breach acknowledged, no new countdown for {} until it recovers; ! still rolls back",
                c.tier.as_str(),
                c.reason,
                c.metric
            ),
        );
        if self.status == RunStatus::Running {
            self.pause(
                now,
                format!("paused: {operator} cancelled the rollback countdown"),
                &mut out,
            );
        }
        out
    }

    /// A command finished.
    pub fn command_done(
        &mut self,
        origin: Origin,
        result: Result<String, String>,
        now: SystemTime,
    ) -> Outcome {
        let mut out = Outcome::default();
        match origin {
            Origin::Step(at) => self.step_done(at, result, now, &mut out),
            Origin::Rollback { run, action } => {
                self.rollback_action_done(run, action, result, now, &mut out)
            }
        }
        out
    }

    fn step_done(
        &mut self,
        at: StepRef,
        result: Result<String, String>,
        now: SystemTime,
        out: &mut Outcome,
    ) {
        let Some(slot) = self.slot(at) else { return };
        // A result for a step that no longer runs (a rollback took over) changes nothing.
        if !matches!(slot.state, StepState::Running { .. }) || self.cursor != Some(at) {
            if let Err(e) = result {
                out.note(
                    Level::Warn,
                    format!("{} (after it was stopped): {e}", slot.label),
                );
            }
            return;
        }
        let label = slot.label.clone();
        let paced = matches!(slot.work, StepWork::Weight { .. });
        match result {
            Ok(note) => {
                if paced {
                    // Not finished while a rollback counts down: the step stays judged.
                    if !self.weight_landed(now) || self.countdown.is_some() {
                        if !note.is_empty() {
                            out.note(Level::Info, note);
                        }
                        return;
                    }
                    self.pacing = None;
                }
                if !note.is_empty() {
                    out.note(Level::Info, note);
                }
                out.note(Level::Info, format!("✓ {label}"));
                self.finish(at, now, out);
            }
            Err(e) => {
                self.pacing = None;
                self.fail_step(at, e, out);
            }
        }
    }

    /// A paced (or single) weight write came back stored: the weight is known now, and the
    /// next write is due an `every` from now. True when the pacing's target is reached (or no
    /// write was on its way).
    fn weight_landed(&mut self, now: SystemTime) -> bool {
        let written = self.pacing.as_mut().and_then(|p| p.writing.take());
        if let Some(w) = written {
            self.weight = Some(w);
        }
        let Some(p) = &mut self.pacing else {
            return true;
        };
        p.next_at = now + p.every;
        written.is_none_or(|w| w == p.to)
    }

    fn fail_step(&mut self, at: StepRef, why: String, out: &mut Outcome) {
        let label = self.slot(at).map(|s| s.label.clone()).unwrap_or_default();
        out.note(Level::Error, format!("✗ {label}: {why} — n retries"));
        if let Some(slot) = self.slot_mut(at) {
            slot.state = StepState::Failed(why);
        }
        if matches!(self.status, RunStatus::Running | RunStatus::Paused) {
            self.status = RunStatus::Failed;
            self.paused = None;
        }
    }

    fn try_pass_hold(&mut self, at: StepRef, now: SystemTime, out: &mut Outcome) {
        let Some(Slot {
            work: StepWork::Hold(d),
            state: StepState::Running { since },
            label,
        }) = self.slot(at).cloned()
        else {
            return;
        };
        if now.duration_since(since).unwrap_or_default() < d {
            return;
        }
        // The whole duration clean: a breaching or missing sample during the hold starts its
        // time again from that sample.
        let clean_since = self.hold_clean_since().unwrap_or(since);
        if now.duration_since(clean_since).unwrap_or_default() < d {
            return;
        }
        let judged = self.plan.metrics.thresholds.is_empty()
            || (self.analysis.judged_at.is_some_and(|t| t >= since) && self.analysis.clean());
        if judged && self.countdown.is_none() {
            out.note(Level::Info, format!("✓ {label} with data and no breach"));
            self.finish(at, now, out);
        }
    }

    /// Since when the running hold has been clean (its start, or the last breaching or missing
    /// sample after it): the hold passes its duration after this.
    pub fn hold_clean_since(&self) -> Option<SystemTime> {
        let slot = self.current()?;
        let (StepState::Running { since }, StepWork::Hold(_)) = (&slot.state, &slot.work) else {
            return None;
        };
        Some(self.analysis.unclean_at.map_or(*since, |u| u.max(*since)))
    }

    /// A hold that has run twice its duration without a clean stretch long enough: a person
    /// must decide (`:skip`, `!`). Headless runs stop on it rather than wait for ever.
    pub fn hold_overdue(&self, now: SystemTime) -> Option<String> {
        let slot = self.current()?;
        let (StepState::Running { since }, StepWork::Hold(d)) = (&slot.state, &slot.work) else {
            return None;
        };
        if self.status != RunStatus::Running || self.countdown.is_some() {
            return None;
        }
        let ran = now.duration_since(*since).unwrap_or_default();
        (ran >= *d * 2).then(|| {
            format!(
                "{} has not had a clean {} in {}: {}",
                slot.label,
                format_duration(*d),
                format_duration(Duration::from_secs(ran.as_secs())),
                self.hold_waiting_for().unwrap_or_default()
            )
        })
    }

    /// Why a hold whose time is up has not passed, for the screen.
    pub fn hold_waiting_for(&self) -> Option<String> {
        let slot = self.current()?;
        let (StepState::Running { since }, StepWork::Hold(_)) = (&slot.state, &slot.work) else {
            return None;
        };
        if self.analysis.judged_at.is_none_or(|t| t < *since) {
            return Some("waiting for a sample".into());
        }
        if let Some(c) = &self.countdown {
            return Some(format!("rollback countdown: {}", c.reason));
        }
        if let Some(reason) = self.analysis.unclean_reason() {
            return Some(reason);
        }
        let clean_since = self.hold_clean_since()?;
        let at = jiff::Timestamp::try_from(clean_since)
            .map(|t| t.strftime("%H:%M:%S UTC").to_string())
            .unwrap_or_default();
        Some(format!("clean since {at}; its time counts from there"))
    }

    fn finish(&mut self, at: StepRef, now: SystemTime, out: &mut Outcome) {
        if let Some(slot) = self.slot_mut(at) {
            slot.state = StepState::Done;
        }
        self.cursor = next_slot(&self.phases, at);
        match self.cursor {
            None => {
                self.status = RunStatus::Complete;
                out.note(Level::Info, "plan complete");
            }
            Some(next) => {
                if next.phase != at.phase {
                    let before = self.phases.get(at.phase).map(|p| p.environment.clone());
                    if before.as_deref()
                        != self.phases.get(next.phase).map(|p| p.environment.as_str())
                    {
                        self.environment_switched();
                    }
                    if let Some(p) = self.phases.get(next.phase) {
                        out.note(
                            Level::Info,
                            format!("phase {} (environment {})", p.name, p.environment),
                        );
                    }
                }
                if self.status == RunStatus::Running {
                    self.start(next, now, out);
                }
            }
        }
    }

    fn phase_name(&self, at: StepRef) -> String {
        self.phases
            .get(at.phase)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    fn start(&mut self, at: StepRef, now: SystemTime, out: &mut Outcome) {
        // A phase's first step waits for its window.
        if at.slot == 0 && !self.overridden_windows.contains(&at.phase) {
            if let Some(w) = self
                .plan
                .phases
                .get(at.phase)
                .and_then(|p| p.window.as_ref())
            {
                if let Err(closed) = window::check(w, now) {
                    let was_blocked =
                        matches!(self.slot(at).map(|s| &s.state), Some(StepState::Blocked(_)));
                    if !was_blocked {
                        out.note(
                            Level::Warn,
                            format!("phase {}: {}", self.phase_name(at), closed.text),
                        );
                    }
                    if let Some(slot) = self.slot_mut(at) {
                        slot.state = StepState::Blocked(closed.text);
                    }
                    return;
                }
            }
        }
        let environment = self
            .phases
            .get(at.phase)
            .map(|p| p.environment.clone())
            .unwrap_or_default();
        let auto = self.auto_approve;
        let no_router = self.plan.traffic.is_none();
        if self
            .slot(at)
            .is_some_and(|s| !matches!(s.work, StepWork::Gate(_)))
        {
            self.active_environment = Some(environment.clone());
        }
        let Some(slot) = self.slot_mut(at) else {
            return;
        };
        let label = slot.label.clone();
        match slot.work.clone() {
            StepWork::Weight { .. } if no_router => {
                let why = "the plan has no traffic router to set a weight on".to_string();
                out.note(Level::Error, format!("✗ {label}: {why} — n retries"));
                slot.state = StepState::Failed(why);
                self.status = RunStatus::Failed;
            }
            StepWork::Weight { to, step, every } => {
                slot.state = StepState::Running { since: now };
                out.note(Level::Info, format!("▶ {label}"));
                match every {
                    Some(every) => {
                        // Paced from the weight read in this environment; until the router
                        // has answered, `pace` waits.
                        self.pacing = Some(Pacing {
                            to,
                            step,
                            every,
                            writing: None,
                            next_at: now,
                            waiting_since: now,
                        });
                        self.pace(now, out);
                    }
                    None => {
                        self.pacing = Some(Pacing {
                            to,
                            step: None,
                            every: Duration::ZERO,
                            writing: Some(to),
                            next_at: now,
                            waiting_since: now,
                        });
                        out.commands.push(Command {
                            origin: Origin::Step(at),
                            environment,
                            work: Work::SetWeight {
                                weight: to,
                                emergency: false,
                            },
                        });
                    }
                }
            }
            StepWork::Hold(_) => {
                slot.state = StepState::Running { since: now };
                out.note(Level::Info, format!("▶ {label}"));
            }
            StepWork::Gate(gate) => {
                let by_auto = !matches!(
                    (&gate, auto),
                    (_, AutoApprove::Nothing) | (Gate::Pause, AutoApprove::Gates)
                );
                if by_auto {
                    slot.state = StepState::Waiting;
                    out.note(
                        Level::Operator,
                        format!("✓ {label} — passed through --auto-approve"),
                    );
                    self.finish(at, now, out);
                } else {
                    slot.state = StepState::Waiting;
                    let what = match &gate {
                        Gate::Approval(who) => format!("waiting for {}", approvers(who)),
                        _ => "n to continue".to_string(),
                    };
                    out.note(Level::Info, format!("⏸ {label} — {what}"));
                }
            }
            StepWork::Effect(work) => {
                slot.state = StepState::Running { since: now };
                out.note(Level::Info, format!("▶ {label}"));
                out.commands.push(Command {
                    origin: Origin::Step(at),
                    environment,
                    work,
                });
            }
        }
    }

    /// Sends the next paced weight write when it is due.
    fn pace(&mut self, now: SystemTime, out: &mut Outcome) {
        // A rollback countdown holds every write: nothing moves toward more traffic meanwhile.
        if self.status != RunStatus::Running || self.countdown.is_some() {
            return;
        }
        let Some(at) = self.cursor else { return };
        let environment = self.environment().to_string();
        let Some(p) = &mut self.pacing else { return };
        let Some(from) = self.weight else {
            if p.writing.is_some() || now < p.next_at {
                return;
            }
            let waited = now.duration_since(p.waiting_since).unwrap_or_default();
            if waited >= WEIGHT_READ_WAIT {
                self.pacing = None;
                let why = format!(
                    "the canary weight could not be read for {}; check the traffic router's health",
                    format_duration(WEIGHT_READ_WAIT)
                );
                self.fail_step(at, why, out);
            }
            return;
        };
        let Some(next) = p.due(from, now) else {
            return;
        };
        out.note(
            Level::Info,
            format!("canary weight {from} → {next} (paced, to {})", p.to),
        );
        out.commands.push(Command {
            origin: Origin::Step(at),
            environment,
            work: Work::SetWeight {
                weight: next,
                emergency: false,
            },
        });
    }

    /// `!` (immediate) or a chosen tier: carries out the plan's rollback tier. An immediate
    /// rollback pre-empts a gradual or full one under way; asking for the tier already under
    /// way is refused.
    pub fn rollback(&mut self, tier: TierName, now: SystemTime, operator: &str) -> Outcome {
        let mut out = Outcome::default();
        if let (RunStatus::RollingBack, Some(r)) = (self.status, &self.rollback) {
            if r.tier == tier {
                out.note(
                    Level::Warn,
                    format!("the {} rollback is already under way", tier.as_str()),
                );
                return out;
            }
            if tier != TierName::Immediate {
                out.note(
                    Level::Warn,
                    format!(
                        "the {} rollback is under way; only an immediate rollback (!) pre-empts it",
                        r.tier.as_str()
                    ),
                );
                return out;
            }
        }
        if rollback_actions(&self.plan, tier).is_empty() {
            out.note(
                Level::Warn,
                format!(
                    "nothing to roll back: the plan has no rollback.{} actions{}",
                    tier.as_str(),
                    if self.plan.traffic.is_none() {
                        " and no traffic router to set to 0"
                    } else {
                        ""
                    }
                ),
            );
            return out;
        }
        if tier != TierName::Immediate && self.plan.rollback.tier(tier).is_none() {
            out.note(
                Level::Warn,
                format!("the plan has no rollback.{}", tier.as_str()),
            );
            return out;
        }
        self.start_rollback(tier, now, operator, &mut out);
        out
    }

    fn start_rollback(&mut self, tier: TierName, now: SystemTime, by: &str, out: &mut Outcome) {
        self.runs += 1;
        let run = self.runs;
        // A rollback after a rollback acts where the first one did.
        let environment = self.rollback_environment().to_string();
        let plan = self.plan.clone();
        let plan_tier = plan.rollback.tier(tier);
        let actions = rollback_actions(&plan, tier);
        // What was running stops: its results no longer count.
        if let Some(at) = self.cursor {
            if let Some(slot) = self.slot_mut(at) {
                if matches!(
                    slot.state,
                    StepState::Running { .. } | StepState::Waiting | StepState::Blocked(_)
                ) {
                    slot.state =
                        StepState::Failed(format!("stopped by the {} rollback", tier.as_str()));
                }
            }
        }
        self.pacing = None;
        self.countdown = None;
        self.paused = None;
        out.cancel_steps = true;
        // A pre-empted tier's work still in flight (a command, an undo) stops too.
        out.cancel_rollback = self.status == RunStatus::RollingBack;
        let target = plan_tier.and_then(|t| t.target).map(|t| t.get());
        out.note(
            Level::Error,
            format!(
                "ROLLBACK ({}) by {by} in {environment}: {}",
                tier.as_str(),
                actions
                    .iter()
                    .map(|a| a.label.as_str())
                    .collect::<Vec<_>>()
                    .join(" · ")
            ),
        );
        self.rollback = Some(RollbackRun {
            tier,
            run,
            environment,
            started: now,
            target,
            actions,
            overrun_logged: false,
        });
        self.status = RunStatus::RollingBack;
        self.next_rollback_action(now, out);
    }

    fn retry_rollback(&mut self, now: SystemTime, operator: &str, out: &mut Outcome) {
        self.runs += 1;
        let run = self.runs;
        let Some(r) = &mut self.rollback else { return };
        let mut retried = Vec::new();
        for a in &mut r.actions {
            if matches!(a.state, StepState::Failed(_)) {
                a.state = StepState::Pending;
                retried.push(a.label.clone());
            }
        }
        r.run = run;
        out.note(
            Level::Operator,
            format!(
                "{operator} retries the failed rollback actions: {}",
                retried.join(" · ")
            ),
        );
        self.status = RunStatus::RollingBack;
        self.next_rollback_action(now, out);
    }

    /// Starts the next pending rollback action, or settles the rollback when none is left.
    fn next_rollback_action(&mut self, now: SystemTime, out: &mut Outcome) {
        loop {
            let weight_now = self.weight;
            let Some(r) = &mut self.rollback else { return };
            if r.actions
                .iter()
                .any(|a| matches!(a.state, StepState::Running { .. }))
            {
                return;
            }
            let Some(index) = r.actions.iter().position(|a| a.state == StepState::Pending) else {
                self.settle_rollback(now, out);
                return;
            };
            let origin = Origin::Rollback {
                run: r.run,
                action: index,
            };
            let environment = r.environment.clone();
            let action = &mut r.actions[index];
            let label = action.label.clone();
            match action.work.clone() {
                StepWork::Weight { to, step, every } => {
                    action.state = StepState::Running { since: now };
                    let paced = every.filter(|_| weight_now.is_some_and(|w| w != to));
                    let first = match paced {
                        Some(_) => next_weight(weight_now.unwrap_or(to), to, step),
                        None => to,
                    };
                    self.pacing = Some(Pacing {
                        to,
                        step,
                        every: paced.unwrap_or(Duration::ZERO),
                        writing: Some(first),
                        next_at: now,
                        waiting_since: now,
                    });
                    out.commands.push(Command {
                        origin,
                        environment,
                        work: Work::SetWeight {
                            weight: first,
                            emergency: true,
                        },
                    });
                    return;
                }
                StepWork::Effect(work) => {
                    action.state = StepState::Running { since: now };
                    out.commands.push(Command {
                        origin,
                        environment,
                        work,
                    });
                    return;
                }
                StepWork::Hold(_) => {
                    action.state = StepState::Running { since: now };
                    out.note(Level::Info, format!("rollback: {label}"));
                    return;
                }
                StepWork::Gate(_) => {
                    // A rollback never waits for a person; the item is said, not ticked.
                    action.state = StepState::Done;
                    out.note(
                        Level::Warn,
                        format!("rollback reminder, not waited for: {label}"),
                    );
                }
            }
        }
    }

    fn rollback_action_done(
        &mut self,
        run: u32,
        index: usize,
        result: Result<String, String>,
        now: SystemTime,
        out: &mut Outcome,
    ) {
        let Some(r) = &mut self.rollback else { return };
        if r.run != run {
            return;
        }
        let Some(action) = r.actions.get_mut(index) else {
            return;
        };
        if !matches!(action.state, StepState::Running { .. }) {
            return;
        }
        let label = action.label.clone();
        match result {
            Ok(note) => {
                if let StepWork::Weight { .. } = action.work {
                    if !self.weight_landed(now) {
                        out.note(Level::Info, note);
                        return;
                    }
                    self.pacing = None;
                }
                let Some(r) = &mut self.rollback else { return };
                if let Some(a) = r.actions.get_mut(index) {
                    a.state = StepState::Done;
                }
                if !note.is_empty() {
                    out.note(Level::Info, note);
                }
                out.note(Level::Info, format!("✓ rollback: {label}"));
            }
            Err(e) => {
                self.pacing = None;
                let Some(r) = &mut self.rollback else { return };
                if let Some(a) = r.actions.get_mut(index) {
                    a.state = StepState::Failed(e.clone());
                }
                out.note(Level::Error, format!("✗ rollback: {label}: {e}"));
            }
        }
        self.next_rollback_action(now, out);
    }

    fn tick_rollback(&mut self, now: SystemTime, out: &mut Outcome) {
        let Some(r) = &mut self.rollback else { return };
        if let Some(target) = r.target {
            if !r.overrun_logged && now.duration_since(r.started).unwrap_or_default() > target {
                r.overrun_logged = true;
                out.note(
                    Level::Error,
                    format!(
                        "the {} rollback has overrun its target of {}",
                        r.tier.as_str(),
                        format_duration(target)
                    ),
                );
            }
        }
        // A timed wait in a tier.
        let mut finished_wait = None;
        for (i, a) in r.actions.iter_mut().enumerate() {
            if let (StepState::Running { since }, StepWork::Hold(d)) = (&a.state, &a.work) {
                if now.duration_since(*since).unwrap_or_default() >= *d {
                    a.state = StepState::Done;
                    finished_wait = Some(i);
                }
            }
        }
        if finished_wait.is_some() {
            self.next_rollback_action(now, out);
            return;
        }
        // The next paced write of a gradual rollback.
        let run = r.run;
        let environment = r.environment.clone();
        let running = r
            .actions
            .iter()
            .position(|a| matches!(a.state, StepState::Running { .. }));
        let (Some(index), Some(p), Some(from)) = (running, &mut self.pacing, self.weight) else {
            return;
        };
        let Some(next) = p.due(from, now) else {
            return;
        };
        out.note(
            Level::Info,
            format!(
                "rollback: canary weight {from} → {next} (paced, to {})",
                p.to
            ),
        );
        out.commands.push(Command {
            origin: Origin::Rollback { run, action: index },
            environment,
            work: Work::SetWeight {
                weight: next,
                emergency: true,
            },
        });
    }

    fn settle_rollback(&mut self, now: SystemTime, out: &mut Outcome) {
        let Some(r) = &mut self.rollback else { return };
        let took = now.duration_since(r.started).unwrap_or_default();
        let target = r
            .target
            .map(|t| format!(" (target {})", format_duration(t)))
            .unwrap_or_default();
        let failed: Vec<String> = r
            .actions
            .iter()
            .filter_map(|a| match &a.state {
                StepState::Failed(why) => Some(format!("{}: {why}", a.label)),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            self.status = RunStatus::RolledBack;
            out.note(
                Level::Error,
                format!(
                    "ROLLED BACK ({}): every action succeeded in {}{target}",
                    r.tier.as_str(),
                    seconds(took)
                ),
            );
        } else {
            self.status = RunStatus::RollbackFailed;
            out.note(
                Level::Error,
                format!(
                    "ROLLBACK FAILED ({}) after {}: {} — n retries the failed actions, ! runs the immediate tier again",
                    r.tier.as_str(),
                    seconds(took),
                    failed.join("; ")
                ),
            );
        }
    }
}

/// The actions a rollback of `tier` carries out, in order. The immediate tier always starts
/// with weight 0, whatever it lists (its own `weight: 0` is not repeated); plans without a
/// traffic router have no weight to write.
pub fn rollback_actions(plan: &Plan, tier: TierName) -> Vec<RollbackAction> {
    let mut actions = Vec::new();
    if tier == TierName::Immediate {
        actions.push(RollbackAction {
            label: "weight → 0%".into(),
            work: StepWork::Weight {
                to: Weight::ZERO,
                step: None,
                every: None,
            },
            state: StepState::Pending,
        });
    }
    let listed = plan
        .rollback
        .tier(tier)
        .map(|t| t.actions.as_slice())
        .unwrap_or_default();
    for step in listed {
        if tier == TierName::Immediate
            && matches!(step, Step::Weight(WeightStep::To(w)) if *w == Weight::ZERO)
        {
            continue;
        }
        let (label, work) = describe(step, &plan.workload);
        actions.push(RollbackAction {
            label,
            work,
            state: StepState::Pending,
        });
    }
    if plan.traffic.is_none() {
        actions.retain(|a| !matches!(a.work, StepWork::Weight { .. }));
    }
    retarget_waits(
        actions.iter_mut().map(|a| &mut a.work),
        plan.workload.canary.is_some(),
    );
    actions
}

/// A `wait` follows the Deployment its phase last changed (`image`, `scale`, `undo`); with none
/// before it, the canary's (the stable's when there is no canary).
fn retarget_waits<'a>(works: impl Iterator<Item = &'a mut StepWork>, has_canary: bool) {
    let mut last = if has_canary {
        TrackName::Canary
    } else {
        TrackName::Stable
    };
    for work in works {
        match work {
            StepWork::Effect(
                Work::SetImage { track, .. } | Work::Scale { track, .. } | Work::Undo { track },
            ) => last = *track,
            StepWork::Effect(Work::WaitRollout { track, .. }) => *track = last,
            _ => {}
        }
    }
}

/// `carol's approval`, `approval by one of a, b`.
pub fn approvers(who: &[String]) -> String {
    match who {
        [one] => format!("{one}'s approval"),
        many => format!("approval by one of {}", many.join(", ")),
    }
}

/// `m:ss`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn first_slot(phases: &[PhaseState], from_phase: usize) -> Option<StepRef> {
    phases
        .iter()
        .enumerate()
        .skip(from_phase)
        .find(|(_, p)| !p.slots.is_empty())
        .map(|(phase, _)| StepRef { phase, slot: 0 })
}

fn next_slot(phases: &[PhaseState], at: StepRef) -> Option<StepRef> {
    let in_phase = phases.get(at.phase).map_or(0, |p| p.slots.len());
    if at.slot + 1 < in_phase {
        Some(StepRef {
            phase: at.phase,
            slot: at.slot + 1,
        })
    } else {
        first_slot(phases, at.phase + 1)
    }
}
