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

/// The innermost cause of an error ("Connection refused"), which says more to the person at
/// the keys than the wrappers around it.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl Health {
    /// True when data from this source can be trusted as current.
    pub fn is_live(&self) -> bool {
        matches!(self, Health::Live)
    }

    /// The state after `next` is reported: a failure that goes on keeps the time it began, so
    /// "reconnecting since" does not reset with every retry.
    pub fn then(&self, next: Health) -> Health {
        match (self, next) {
            (Health::Degraded { since, .. }, Health::Degraded { error, .. }) => Health::Degraded {
                since: *since,
                error,
            },
            (_, next) => next,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::Health;

    #[test]
    fn a_failure_that_goes_on_keeps_its_start_and_takes_the_newest_error() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let t1 = t0 + Duration::from_secs(30);
        let first = Health::Live.then(Health::Degraded {
            since: t0,
            error: "refused".into(),
        });
        let later = first.then(Health::Degraded {
            since: t1,
            error: "timed out".into(),
        });
        assert_eq!(
            later,
            Health::Degraded {
                since: t0,
                error: "timed out".into()
            }
        );
        assert_eq!(later.then(Health::Live), Health::Live);
        let again = Health::Live.then(Health::Degraded {
            since: t1,
            error: "refused".into(),
        });
        assert!(matches!(again, Health::Degraded { since, .. } if since == t1));
    }
}
