//! The config file.
pub mod node;
