//! The deployment engine: where the plan is, what the next step needs, what a rollback does.
//! Pure decisions only; effects are carried out by the app's effect runner.

pub mod state;

pub use state::{
    Command, CommandKind, Deployment, Outcome, RunStatus, Slot, SlotKind, StepRef, StepState,
};
