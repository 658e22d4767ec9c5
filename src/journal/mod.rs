//! The journal: an append-only record of a run, one JSON line per event. It is what `--resume`
//! continues from, what `warroom report` reads and what `warroom watch` follows.

pub mod record;

pub use record::{Line, OperatorCommand, Record, VERSION};
