//! Connection health of one outside source (Kubernetes API, Prometheus), as the header shows it.
//! Plain data, set by the tasks that own the clients.

use std::time::SystemTime;

/// How a data source is doing.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Health {
    /// No answer yet.
    #[default]
    Connecting,
    /// Answering.
    Live,
    /// Failing since `since`; the last good data stays on screen, dimmed.
    Degraded { since: SystemTime, error: String },
    /// The server refused us (401/403): retrying will not help until someone fixes access.
    Forbidden(String),
}

impl Health {
    /// True when data from this source can be trusted as current.
    pub fn is_live(&self) -> bool {
        matches!(self, Health::Live)
    }

    /// A failure, keeping the first failure time across repeated errors.
    pub fn failed(&self, now: SystemTime, error: String) -> Health {
        match self {
            Health::Degraded { since, .. } => Health::Degraded {
                since: *since,
                error,
            },
            _ => Health::Degraded { since: now, error },
        }
    }
}
