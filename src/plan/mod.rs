//! The plan format: typed model, loading with located diagnostics, validation, JSON Schema.
//! No IO beyond reading the plan file; nothing here talks to a cluster.

// Every public item of the plan format is documented: the docs and the schema read from them.
#![warn(missing_docs)]

pub mod duration;
pub mod load;
pub mod locate;
pub mod model;
pub mod recover;
pub mod schema;
pub mod shape;
pub mod suggest;
pub mod template;
pub mod time;
pub mod validate;

pub use duration::{PlanDuration, Weight};
pub use load::{Checked, Diagnostic, LoadError, Severity, check, check_file, load_file, parse};
pub use model::*;
