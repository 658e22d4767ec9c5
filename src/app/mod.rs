//! The console's state, the actions that change it, and the event loop that runs it.
//! `update` decides; the loop and effect runner do IO and report back as actions.

pub mod action;
pub mod carry;
pub mod console;
pub mod drills;
pub mod effects;
pub mod event_loop;
pub mod hints;
pub mod input;
pub mod keymap;
pub mod modal;
pub mod model;
pub mod resume;
#[cfg(test)]
pub(crate) mod scenario;
pub mod terminal;
pub mod update;
pub mod watch;

pub use action::{Action, Effect, EffectId};
pub use model::App;
pub use update::update;
