//! The plan format: typed model, loading with located diagnostics, query templates.
//! No IO beyond reading the plan file; nothing here talks to a cluster.

pub mod duration;
pub mod load;
pub mod model;
pub mod template;

pub use duration::{PlanDuration, Weight};
pub use load::{Diagnostic, LoadError, Severity, load_file, parse};
pub use model::*;
