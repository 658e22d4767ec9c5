//! The deployment engine: where the plan is, what the next step needs, what analysis decides,
//! what a rollback does. Pure decisions only; effects are carried out by the app's effect runner.

pub mod analysis;
pub mod state;
#[cfg(test)]
mod tests;
pub mod window;
pub mod work;

pub use analysis::{Analysis, Finding, Round};
pub use state::{
    AutoApprove, Command, Countdown, Deployment, Origin, Outcome, RollbackRun, RunStatus, Slot,
    StepRef, StepState,
};
pub use work::{Gate, Level, Note, StepWork, Work};
