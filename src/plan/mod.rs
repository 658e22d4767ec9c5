//! The plan format: typed model, loading with located diagnostics, validation, JSON Schema.
//! No IO beyond reading the plan file; nothing here talks to a cluster.

pub mod duration;
pub mod load;
pub mod locate;
pub mod model;
pub mod schema;
pub mod shape;
pub mod suggest;
pub mod template;
pub mod time;
pub mod validate;

pub use duration::{PlanDuration, Weight};
pub use load::{Checked, Diagnostic, LoadError, Severity, check, check_file, load_file, parse};
pub use model::*;
