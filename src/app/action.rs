//! Everything that can happen to the console, as plain data, and the effects `update` asks for.
//! Sources (input, cluster, metrics, effect tasks, clock) only ever send these.

use std::time::SystemTime;

use ratatui::crossterm::event::KeyEvent;

use crate::cluster::model::ClusterEvent;
use crate::metrics::MetricsEvent;
use crate::plan::Weight;
use crate::traffic::TrafficEvent;

/// Identifies one effect so its result finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EffectId(pub u64);

/// One thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Key(KeyEvent),
    /// The wall clock, about once a second.
    Tick(SystemTime),
    /// The terminal changed size; only a redraw is needed.
    Resize,
    Cluster(ClusterEvent),
    Traffic(TrafficEvent),
    Metrics(MetricsEvent),
    /// An effect finished: `Ok` carries a short success note for the log.
    EffectDone {
        id: EffectId,
        result: Result<String, String>,
    },
    /// An effect is still at it (a rollback write retrying): a note for the log.
    EffectProgress {
        id: EffectId,
        note: String,
    },
    /// The terminal went away (EOF, EIO, SIGHUP): leave cleanly.
    InputClosed(String),
}

/// Work for the effect runner. Each carries its id; the result comes back as
/// [`Action::EffectDone`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Set the canary weight. `emergency` writes jump the queue: weight changes still waiting
    /// are dropped, so nothing queued before a rollback can undo it.
    SetWeight {
        id: EffectId,
        weight: Weight,
        emergency: bool,
    },
}

impl Effect {
    pub fn id(&self) -> EffectId {
        match self {
            Effect::SetWeight { id, .. } => *id,
        }
    }
}
