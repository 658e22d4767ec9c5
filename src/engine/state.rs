//! The plan's progress as a pure state machine: phases → slots (steps and approval gates).
//! No IO and no clocks: time comes in as arguments, work goes out as [`Command`]s.

use std::time::{Duration, SystemTime};

use crate::plan::{self, Plan, Step, Weight};

/// Identifies one slot of the plan: phase index and slot index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepRef {
    pub phase: usize,
    pub slot: usize,
}

/// What a slot asks for when it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotKind {
    /// Set the canary weight; done when the router has stored it.
    SetWeight(Weight),
    /// Wait this long; done by the clock. Thresholds are shown meanwhile, not enforced.
    Hold(Duration),
    /// A person must press `n` (checklist item, pause, approval).
    Gate,
    /// Tell people something; done at once.
    Notify(String),
    /// A step this version cannot carry out itself: an operator does it and presses `n`.
    Manual,
}

/// Where a slot is.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    Pending,
    Running {
        since: SystemTime,
    },
    /// Waiting for a person.
    Waiting,
    Done,
    Failed(String),
}

/// One step (or approval gate) of a phase, as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub label: String,
    pub kind: SlotKind,
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
    /// Auto-advance and holds are stopped; `p` resumes.
    Paused,
    /// A step failed; `n` retries it.
    Failed,
    RolledBack,
    Complete,
}

impl RunStatus {
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Ready => "READY",
            RunStatus::Running => "RUNNING",
            RunStatus::Paused => "PAUSED",
            RunStatus::Failed => "STEP FAILED",
            RunStatus::RolledBack => "ROLLED BACK",
            RunStatus::Complete => "COMPLETE",
        }
    }
}

/// Work the engine asks for, tied to the slot that asked (none for rollbacks).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub origin: StepRef,
    pub kind: CommandKind,
}

/// The kinds of work the engine can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandKind {
    SetWeight(Weight),
}

/// What an engine call decided: work to start and lines for the log.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub commands: Vec<Command>,
    pub log: Vec<String>,
}

impl Outcome {
    fn log(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
    }
}

/// The deployment's progress through its plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub phases: Vec<PhaseState>,
    /// The current slot; `None` once past the last one.
    pub cursor: Option<StepRef>,
    pub status: RunStatus,
}

impl Deployment {
    /// Lays out the plan's phases; an approval list becomes a gate before the phase's steps.
    pub fn new(plan: &Plan) -> Deployment {
        let phases: Vec<PhaseState> = plan
            .phases
            .iter()
            .map(|phase| {
                let mut slots = Vec::with_capacity(phase.steps.len() + 1);
                if !phase.approval.is_empty() {
                    slots.push(Slot {
                        label: format!("approval: {}", phase.approval.join(", ")),
                        kind: SlotKind::Gate,
                        state: StepState::Pending,
                    });
                }
                slots.extend(phase.steps.iter().map(slot_for));
                PhaseState {
                    name: phase.name.clone(),
                    environment: phase.environment.clone(),
                    slots,
                }
            })
            .collect();
        let cursor = first_slot(&phases, 0);
        Deployment {
            phases,
            cursor,
            status: RunStatus::Ready,
        }
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

    /// True when the deployment can no longer move forward.
    pub fn is_finished(&self) -> bool {
        matches!(self.status, RunStatus::RolledBack | RunStatus::Complete)
    }

    /// The operator pressed `n`: start, pass a gate, cut a hold short, or retry a failed step.
    pub fn advance(&mut self, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        if self.is_finished() {
            out.log(format!(
                "deployment is {}; nothing to advance",
                self.status.label().to_lowercase()
            ));
            return out;
        }
        let Some(at) = self.cursor else {
            return out;
        };
        let Some(slot) = self.slot(at).cloned() else {
            return out;
        };
        match (&slot.state, &slot.kind) {
            (StepState::Pending, _) | (StepState::Failed(_), _) => {
                self.status = RunStatus::Running;
                self.start(at, now, &mut out);
            }
            (StepState::Waiting, _) => {
                out.log(format!("✓ {} (by operator)", slot.label));
                self.status = RunStatus::Running;
                self.finish(at, now, &mut out);
            }
            (StepState::Running { since }, SlotKind::Hold(d)) => {
                let held = now.duration_since(*since).unwrap_or_default();
                out.log(format!(
                    "hold of {} cut short by operator after {}",
                    plan::duration::format_duration(*d),
                    plan::duration::format_duration(Duration::from_secs(held.as_secs()))
                ));
                self.status = RunStatus::Running;
                self.finish(at, now, &mut out);
            }
            (StepState::Running { .. }, _) => {
                out.log(format!("{} is still running", slot.label));
            }
            (StepState::Done, _) => {}
        }
        out
    }

    /// `p`: stop or resume auto-advance. A hold paused and resumed starts over: the operator
    /// asked for that much uninterrupted time.
    pub fn toggle_pause(&mut self, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        match self.status {
            RunStatus::Running => {
                self.status = RunStatus::Paused;
                out.log("paused: no step will start until resumed (p)");
            }
            RunStatus::Paused => {
                self.status = RunStatus::Running;
                out.log("resumed");
                if let Some(at) = self.cursor {
                    match self.slot(at).map(|s| (&s.state, &s.kind)) {
                        Some((StepState::Running { .. }, SlotKind::Hold(_))) => {
                            if let Some(slot) = self.slot_mut(at) {
                                slot.state = StepState::Running { since: now };
                            }
                            out.log("hold restarted");
                        }
                        Some((StepState::Pending, _)) => self.start(at, now, &mut out),
                        _ => {}
                    }
                }
            }
            other => out.log(format!(
                "cannot pause: deployment is {}",
                other.label().to_lowercase()
            )),
        }
        out
    }

    /// The clock moved: finish holds whose time is up.
    pub fn tick(&mut self, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        if self.status != RunStatus::Running {
            return out;
        }
        let Some(at) = self.cursor else {
            return out;
        };
        if let Some(Slot {
            kind: SlotKind::Hold(d),
            state: StepState::Running { since },
            label,
        }) = self.slot(at)
        {
            if now.duration_since(*since).unwrap_or_default() >= *d {
                out.log(format!("✓ {label}"));
                self.finish(at, now, &mut out);
            }
        }
        out
    }

    /// A command for `at` finished.
    pub fn command_done(
        &mut self,
        at: StepRef,
        result: Result<(), String>,
        now: SystemTime,
    ) -> Outcome {
        let mut out = Outcome::default();
        let Some(slot) = self.slot(at) else {
            return out;
        };
        if !matches!(slot.state, StepState::Running { .. }) {
            return out;
        }
        let label = slot.label.clone();
        match result {
            Ok(()) => {
                out.log(format!("✓ {label}"));
                self.finish(at, now, &mut out);
            }
            Err(e) => {
                out.log(format!("✗ {label}: {e} — n retries"));
                if let Some(slot) = self.slot_mut(at) {
                    slot.state = StepState::Failed(e);
                }
                if !self.is_finished() {
                    self.status = RunStatus::Failed;
                }
            }
        }
        out
    }

    /// Marks the deployment rolled back; the caller runs the tier's actions.
    pub fn rolled_back(&mut self) {
        self.status = RunStatus::RolledBack;
        if let Some(at) = self.cursor {
            if let Some(slot) = self.slot_mut(at) {
                if matches!(slot.state, StepState::Running { .. } | StepState::Waiting) {
                    slot.state = StepState::Failed("rolled back".to_string());
                }
            }
        }
    }

    fn finish(&mut self, at: StepRef, now: SystemTime, out: &mut Outcome) {
        if let Some(slot) = self.slot_mut(at) {
            slot.state = StepState::Done;
        }
        self.cursor = next_slot(&self.phases, at);
        match self.cursor {
            None => {
                self.status = RunStatus::Complete;
                out.log("plan complete");
            }
            Some(next) => {
                if next.phase != at.phase {
                    if let Some(p) = self.phases.get(next.phase) {
                        out.log(format!("phase {} ({})", p.name, p.environment));
                    }
                }
                if self.status == RunStatus::Running {
                    self.start(next, now, out);
                }
            }
        }
    }

    fn start(&mut self, at: StepRef, now: SystemTime, out: &mut Outcome) {
        let Some(slot) = self.slot_mut(at) else {
            return;
        };
        match slot.kind.clone() {
            SlotKind::SetWeight(w) => {
                slot.state = StepState::Running { since: now };
                out.log(format!("▶ {}", slot.label));
                out.commands.push(Command {
                    origin: at,
                    kind: CommandKind::SetWeight(w),
                });
            }
            SlotKind::Hold(_) => {
                slot.state = StepState::Running { since: now };
                out.log(format!("▶ {}", slot.label));
            }
            SlotKind::Gate => {
                slot.state = StepState::Waiting;
                out.log(format!("⏸ {} — n to continue", slot.label));
            }
            SlotKind::Manual => {
                slot.state = StepState::Waiting;
                out.log(format!(
                    "⏸ {} — not automated yet: do it by hand, then n",
                    slot.label
                ));
            }
            SlotKind::Notify(text) => {
                out.log(format!("notify: {text}"));
                self.finish(at, now, out);
            }
        }
    }
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

fn slot_for(step: &Step) -> Slot {
    let (label, kind) = describe(step);
    Slot {
        label,
        kind,
        state: StepState::Pending,
    }
}

/// A step's label as the console shows it, and what running it takes.
pub fn describe(step: &Step) -> (String, SlotKind) {
    match step {
        Step::Weight(w) => (
            format!("weight → {}", w.target()),
            SlotKind::SetWeight(w.target()),
        ),
        Step::Hold(d) => (format!("hold {d}"), SlotKind::Hold(d.get())),
        Step::Check(text) => (format!("check: {text}"), SlotKind::Gate),
        Step::Pause(text) => (format!("pause: {text}"), SlotKind::Gate),
        Step::Approve(who) => {
            let names = match who {
                plan::ApproveStep::One(n) => n.clone(),
                plan::ApproveStep::Many(ns) => ns.join(", "),
            };
            (format!("approval: {names}"), SlotKind::Gate)
        }
        Step::Notify(text) => (format!("notify: {text}"), SlotKind::Notify(text.clone())),
        Step::Run(run) => {
            let cmd = match run {
                plan::RunStep::Short(c) => c,
                plan::RunStep::Long { cmd, .. } => cmd,
            };
            (format!("run: {cmd}"), SlotKind::Manual)
        }
        Step::Image(track) => (format!("image: {}", track.as_str()), SlotKind::Manual),
        Step::Wait(what) => (
            format!("wait: {}", what.condition().as_str()),
            SlotKind::Manual,
        ),
        Step::Promote(_) => ("promote".to_string(), SlotKind::Manual),
        Step::Flag(f) => (
            format!("flag: {}/{} = {}", f.configmap, f.key, f.value),
            SlotKind::Manual,
        ),
        Step::Scale(s) => (
            format!("scale: {} → {}", s.track.as_str(), s.replicas),
            SlotKind::Manual,
        ),
        Step::Undo(track) => (format!("undo: {}", track.as_str()), SlotKind::Manual),
        Step::Config(op) => (
            format!(
                "config: {}",
                match op {
                    plan::ConfigOp::Snapshot => "snapshot",
                    plan::ConfigOp::Restore => "restore",
                }
            ),
            SlotKind::Manual,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PLAN: &str = r#"version: 1
name: t
service: checkout
strategy: canary
environments: { dev: { namespace: shop }, prod: { namespace: shop } }
workload: { name: checkout, canary: checkout-canary }
traffic: { router: gateway-api, route: checkout }
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 10
      - hold: 1m
      - pause: look
  - name: Prod
    environment: prod
    approval: [carol]
    steps:
      - weight: 100
      - notify: live
"#;

    fn deployment() -> Deployment {
        let plan = plan::parse(Path::new("t.yaml"), PLAN).expect("test plan parses");
        Deployment::new(&plan)
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn at(phase: usize, slot: usize) -> StepRef {
        StepRef { phase, slot }
    }

    #[test]
    fn approval_becomes_a_gate_before_the_phase() {
        let d = deployment();
        assert_eq!(d.phases[1].slots[0].label, "approval: carol");
        assert_eq!(d.phases[1].slots[0].kind, SlotKind::Gate);
        assert_eq!(d.status, RunStatus::Ready);
        assert_eq!(d.cursor, Some(at(0, 0)));
    }

    #[test]
    fn first_advance_starts_the_weight_step() {
        let mut d = deployment();
        let out = d.advance(t(0));
        assert_eq!(
            out.commands,
            vec![Command {
                origin: at(0, 0),
                kind: CommandKind::SetWeight(Weight::clamped(10))
            }]
        );
        assert_eq!(d.status, RunStatus::Running);
    }

    #[test]
    fn weight_done_chains_into_hold_which_ends_by_the_clock() {
        let mut d = deployment();
        d.advance(t(0));
        d.command_done(at(0, 0), Ok(()), t(1));
        assert_eq!(d.cursor, Some(at(0, 1)));
        assert!(matches!(
            d.current().map(|s| &s.state),
            Some(StepState::Running { .. })
        ));
        assert!(d.tick(t(30)).log.is_empty());
        assert_eq!(d.cursor, Some(at(0, 1)));
        d.tick(t(61));
        assert_eq!(d.cursor, Some(at(0, 2)));
        assert_eq!(d.current().map(|s| &s.state), Some(&StepState::Waiting));
    }

    #[test]
    fn gate_waits_for_operator_then_next_phase_waits_for_approval() {
        let mut d = deployment();
        d.advance(t(0));
        d.command_done(at(0, 0), Ok(()), t(1));
        d.tick(t(100));
        let out = d.advance(t(101));
        assert!(out.log.iter().any(|l| l.contains("phase Prod")), "{out:?}");
        assert_eq!(d.cursor, Some(at(1, 0)));
        assert_eq!(d.current().map(|s| &s.state), Some(&StepState::Waiting));
        let out = d.advance(t(102));
        assert_eq!(out.commands.len(), 1);
    }

    #[test]
    fn failed_step_stops_and_n_retries_it() {
        let mut d = deployment();
        d.advance(t(0));
        d.command_done(at(0, 0), Err("forbidden".into()), t(1));
        assert_eq!(d.status, RunStatus::Failed);
        assert_eq!(d.cursor, Some(at(0, 0)));
        let out = d.advance(t(2));
        assert_eq!(out.commands.len(), 1, "retry sends the weight again");
    }

    #[test]
    fn pause_stops_auto_advance_and_resume_restarts_the_hold() {
        let mut d = deployment();
        d.advance(t(0));
        d.toggle_pause(t(0));
        assert_eq!(d.status, RunStatus::Paused);
        d.command_done(at(0, 0), Ok(()), t(1));
        assert_eq!(d.cursor, Some(at(0, 1)));
        assert_eq!(
            d.current().map(|s| &s.state),
            Some(&StepState::Pending),
            "paused: the hold does not start"
        );
        d.toggle_pause(t(10));
        assert!(matches!(
            d.current().map(|s| &s.state),
            Some(StepState::Running { since }) if *since == t(10)
        ));
        assert!(d.tick(t(69)).log.is_empty(), "hold counts from resume");
        d.tick(t(70));
        assert_eq!(d.cursor, Some(at(0, 2)));
    }

    #[test]
    fn n_cuts_a_hold_short_and_says_so() {
        let mut d = deployment();
        d.advance(t(0));
        d.command_done(at(0, 0), Ok(()), t(1));
        let out = d.advance(t(21));
        assert!(out.log[0].contains("cut short"), "{out:?}");
        assert_eq!(d.cursor, Some(at(0, 2)));
    }

    #[test]
    fn plan_completes_after_the_last_slot() {
        let mut d = deployment();
        d.advance(t(0));
        d.command_done(at(0, 0), Ok(()), t(1));
        d.tick(t(70));
        d.advance(t(71)); // pause
        d.advance(t(72)); // approval
        let out = d.command_done(at(1, 1), Ok(()), t(73));
        assert_eq!(d.status, RunStatus::Complete);
        assert!(out.log.iter().any(|l| l == "notify: live"));
        assert!(d.advance(t(74)).commands.is_empty());
    }

    #[test]
    fn rolled_back_deployment_does_not_advance() {
        let mut d = deployment();
        d.advance(t(0));
        d.rolled_back();
        assert_eq!(d.status, RunStatus::RolledBack);
        let out = d.advance(t(1));
        assert!(out.commands.is_empty());
        assert!(d.command_done(at(0, 0), Ok(()), t(2)).log.is_empty());
    }
}
