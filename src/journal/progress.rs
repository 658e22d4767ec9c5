//! Step, rollback and status changes as journal records: what the engine's state moved to
//! after each input, for people and `warroom report` (replay does not need them).

use crate::engine::{Deployment, RunStatus, StepState};

use super::Record;

/// The engine's progress as last journaled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    slots: Vec<Vec<StepState>>,
    rollback: Option<(u32, Vec<StepState>)>,
    status: Option<RunStatus>,
}

/// `pending`, `running`, … and the reason, as journaled.
pub fn state_name(state: &StepState) -> (&'static str, Option<String>) {
    match state {
        StepState::Pending => ("pending", None),
        StepState::Running { .. } => ("running", None),
        StepState::Waiting => ("waiting", None),
        StepState::Blocked(why) => ("blocked", Some(why.clone())),
        StepState::Done => ("done", None),
        StepState::Failed(why) => ("failed", Some(why.clone())),
    }
}

impl Progress {
    /// The records that take the journal from `self` to `deployment`'s state; `self` becomes it.
    pub fn advance(&mut self, deployment: &Deployment) -> Vec<Record> {
        let mut out = Vec::new();
        for (p, phase) in deployment.phases.iter().enumerate() {
            if self.slots.len() <= p {
                self.slots.push(vec![StepState::Pending; phase.slots.len()]);
            }
            for (s, slot) in phase.slots.iter().enumerate() {
                let Some(known) = self.slots[p].get_mut(s) else {
                    continue;
                };
                if same(known, &slot.state) {
                    continue;
                }
                *known = slot.state.clone();
                let (state, detail) = state_name(&slot.state);
                out.push(Record::Step {
                    phase: p,
                    phase_name: phase.name.clone(),
                    slot: s,
                    label: slot.label.clone(),
                    state: state.to_string(),
                    detail,
                });
            }
        }
        if let Some(run) = &deployment.rollback {
            let fresh = self.rollback.as_ref().is_none_or(|(n, _)| *n != run.run);
            if fresh {
                self.rollback = Some((run.run, vec![StepState::Pending; run.actions.len()]));
            }
            if let Some((_, known)) = &mut self.rollback {
                for (a, action) in run.actions.iter().enumerate() {
                    let Some(k) = known.get_mut(a) else { continue };
                    if same(k, &action.state) && !(fresh && a == 0) {
                        continue;
                    }
                    *k = action.state.clone();
                    let (state, detail) = state_name(&action.state);
                    out.push(Record::RollbackStep {
                        run: run.run,
                        tier: run.tier,
                        environment: run.environment.clone(),
                        action: a,
                        label: action.label.clone(),
                        state: state.to_string(),
                        detail,
                        target_ms: run.target,
                    });
                }
            }
        }
        if self.status != Some(deployment.status) {
            self.status = Some(deployment.status);
            out.push(Record::Status {
                status: deployment.status.label().to_string(),
            });
        }
        out
    }
}

/// The same state for the journal: a running step's start time moving (a resume) is not news.
fn same(a: &StepState, b: &StepState) -> bool {
    match (a, b) {
        (StepState::Running { .. }, StepState::Running { .. }) => true,
        _ => a == b,
    }
}
