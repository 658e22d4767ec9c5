//! Everything that can happen to the console, as plain data, and the effects `update` asks for.
//! Sources (input, cluster, metrics, effect tasks, clock) only ever send these.

use std::time::SystemTime;

use ratatui::crossterm::event::KeyEvent;

use crate::cluster::model::ClusterEvent;
use crate::engine::Work;
use crate::metrics::MetricsEvent;
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
    /// The wall clock as an effect's result arrives: moves `now` on and nothing else, so a
    /// rollback's duration is measured to the result, not to the last tick.
    Clock(SystemTime),
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
    /// A line of a `run` step's output.
    EffectOutput {
        id: EffectId,
        line: String,
    },
    /// A headless run begins: the plan starts as if `n` had been pressed.
    Begin,
    /// A command given by the program rather than a key (a rehearsal's driver), as the
    /// operator; journaled like a key's.
    Operator(crate::journal::record::OperatorCommand),
    /// SIGINT or SIGTERM: stop cleanly, after a rollback under way has finished.
    Interrupted(String),
    /// `config: snapshot` read these ConfigMaps: for the journal (a resume restores them).
    Snapshotted {
        environment: String,
        configmaps: Vec<crate::cluster::actions::ConfigMapState>,
    },
    /// One attempt to deliver a webhook notification.
    Notified(crate::notify::Attempt),
    /// The plan's lease could not be renewed (yet).
    LeaseProblem(String),
    /// Another process took the plan's lease, or it was deleted: this run no longer keeps a
    /// second one out, so it stops advancing.
    LeaseLost(String),
    /// The journal could not be written: shown at once, and kept on screen.
    JournalFailed(String),
    /// The terminal went away (EOF, EIO, SIGHUP): leave cleanly.
    InputClosed(String),
    /// A drill was sent to the simulator: the faults then active, or why it failed.
    DrillDone {
        label: String,
        result: Result<Option<Vec<super::modal::ActiveDrill>>, String>,
    },
    /// The simulator's active faults changed (the demo polls them).
    DrillsActive(Vec<super::modal::ActiveDrill>),
    /// An action from a source task of one environment; dropped if the console has moved on to
    /// another environment since (`epoch` says which watch it came from).
    Sourced {
        epoch: u64,
        action: Box<Action>,
    },
}

/// What a piece of work is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A plan step: stopped when a rollback takes over.
    Step,
    /// A rollback action: stopped only when another rollback pre-empts it.
    Rollback,
    /// An operator's own change (`+`/`-`): never stopped.
    Operator,
}

/// Work for the shell: the effect runner and the source tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Carry out `work` in `environment`; the result comes back as [`Action::EffectDone`].
    Work {
        id: EffectId,
        environment: String,
        /// The phase it belongs to (for a `run` step's `WARROOM_PHASE`).
        phase: String,
        /// What it is for, which decides what may stop it.
        purpose: Purpose,
        work: Work,
    },
    /// Stop step work still in flight: a rollback took over.
    CancelSteps,
    /// Stop the work of a rollback that another (immediate) one pre-empted.
    CancelRollback,
    /// Show and watch `environment`: the source tasks restart there.
    Watch { environment: String },
    /// Demo drills: `POST endpoint` with `body` (a fault), or with `None` clear every fault.
    Drill {
        endpoint: String,
        body: Option<serde_json::Value>,
        label: String,
    },
}

impl Effect {
    /// The id whose result will come back, if any.
    pub fn id(&self) -> Option<EffectId> {
        match self {
            Effect::Work { id, .. } => Some(*id),
            Effect::CancelSteps
            | Effect::CancelRollback
            | Effect::Watch { .. }
            | Effect::Drill { .. } => None,
        }
    }
}
