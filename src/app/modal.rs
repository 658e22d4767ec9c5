//! What sits in front of the main screen: help, the command line, the weight field, the rollback
//! and drill menus, and the y/n question before a change. They are a stack; the top one takes
//! every key first, and only the emergency rollback passes through them all. Plain data: `input`
//! decides what a key does to them, `ui::modal` draws them.

use std::time::{Duration, SystemTime};

use tui_input::Input;

use crate::engine::{RunStatus, StepState};
use crate::journal::OperatorCommand;
use crate::plan::{TierName, Weight};

/// One modal.
#[derive(Debug, Clone)]
pub enum Modal {
    Help,
    /// `:`, with the history position while Up/Down walk it.
    CommandLine(LineEdit),
    /// `w`: the weight to set, checked as it is typed.
    SetWeight(Input),
    /// `r`: the plan's tiers; Enter asks to confirm the selected one.
    RollbackMenu {
        selected: usize,
    },
    /// A change waiting for `y`.
    Confirm(Confirm),
    /// `D` (demo): a fault to inject into the simulator, and for how long.
    Drills(DrillMenu),
    /// A question withdrawn because the run moved on: the next key only closes it.
    Withdrawn(String),
}

impl Modal {
    /// Its name in the key bar: what Esc closes.
    pub fn name(&self) -> &'static str {
        match self {
            Modal::Help => "help",
            Modal::CommandLine(_) => "command line",
            Modal::SetWeight(_) => "weight",
            Modal::RollbackMenu { .. } => "rollback menu",
            Modal::Confirm(_) => "question",
            Modal::Drills(_) => "drills",
            Modal::Withdrawn(_) => "withdrawn question",
        }
    }
}

/// The command line's text and where in the history Up/Down are.
#[derive(Debug, Clone, Default)]
pub struct LineEdit {
    pub input: Input,
    /// Index into the history while walking it; `None` on the line being typed.
    pub history_at: Option<usize>,
    /// The line being typed, kept while the history is shown.
    pub draft: String,
}

/// A question before a change: what exactly will change, and the state it was asked in. When
/// that state moves on before the answer (a step finished, the weight moved, a rollback began),
/// the question is withdrawn: a `y` must never approve something other than what was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// `set canary weight 25 % → 35 % on HTTPRoute shop/checkout (production)?`
    pub question: String,
    /// Why it is asked: `risk high`, `production environment`, `rollback tier`.
    pub why: String,
    pub command: OperatorCommand,
    pub basis: Basis,
}

/// What a question's answer depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    pub status: RunStatus,
    pub environment: String,
    pub slot: Option<(usize, usize, StepStateKind)>,
    pub weight: Option<Weight>,
    pub rollback_run: Option<u32>,
    /// A rollback countdown began (or ended) since: a different situation.
    pub countdown: bool,
}

/// A slot's state without its times and texts: a hold counting down is the same state each
/// second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStateKind {
    Pending,
    Running,
    Waiting,
    Blocked,
    Done,
    Failed,
}

impl From<&StepState> for StepStateKind {
    fn from(state: &StepState) -> StepStateKind {
        match state {
            StepState::Pending => StepStateKind::Pending,
            StepState::Running { .. } => StepStateKind::Running,
            StepState::Waiting => StepStateKind::Waiting,
            StepState::Blocked(_) => StepStateKind::Blocked,
            StepState::Done => StepStateKind::Done,
            StepState::Failed(_) => StepStateKind::Failed,
        }
    }
}

/// The drill menu's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrillMenu {
    pub selected: usize,
    /// Index into [`DRILL_DURATIONS`].
    pub duration: usize,
}

/// How long a drill lasts, as the menu offers it.
pub const DRILL_DURATIONS: [Duration; 4] = [
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
];

/// One fault the drill menu injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drill {
    /// The simulator's fault kind.
    pub kind: &'static str,
    pub label: &'static str,
    /// What the team should see happen.
    pub expect: &'static str,
}

/// The drills, in menu order.
pub const DRILLS: [Drill; 7] = [
    Drill {
        kind: "error_spike",
        label: "error spike on the canary (50 % 5xx)",
        expect: "error rate breaches; the countdown starts; x cancels, ! rolls back",
    },
    Drill {
        kind: "latency_spike",
        label: "latency spike on the canary (×5)",
        expect: "p95 latency breaches",
    },
    Drill {
        kind: "crashloop",
        label: "canary pods crash-loop",
        expect: "canary pods restart; CrashLoopBackOff in the pod table",
    },
    Drill {
        kind: "api_outage",
        label: "Kubernetes API outage",
        expect: "kube reconnecting; the last data stays on screen",
    },
    Drill {
        kind: "prometheus_outage",
        label: "Prometheus outage",
        expect: "prometheus reconnecting; the plan's no_data action",
    },
    Drill {
        kind: "watch_expiry",
        label: "watches expire (410 Gone)",
        expect: "pods are listed again; nothing is lost",
    },
    Drill {
        kind: "forbidden",
        label: "RBAC forbids patching the traffic object",
        expect: "a weight write fails with 403 and says so",
    },
];

/// Drills live in the simulator: the demo's, whose fault endpoint this is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Drills {
    /// `{kubernetes}/sim/faults`.
    pub endpoint: String,
    /// Active drills as the simulator last listed them.
    pub active: Vec<ActiveDrill>,
}

/// A fault the simulator has switched on.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveDrill {
    pub id: String,
    pub kind: String,
    /// When it ends by itself, if it does.
    pub ends: Option<SystemTime>,
}

/// Which panel the arrow and vim keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Plan,
    Pods,
    Log,
}

impl Focus {
    pub fn next(self) -> Focus {
        match self {
            Focus::Plan => Focus::Pods,
            Focus::Pods => Focus::Log,
            Focus::Log => Focus::Plan,
        }
    }

    pub fn prev(self) -> Focus {
        match self {
            Focus::Plan => Focus::Log,
            Focus::Pods => Focus::Plan,
            Focus::Log => Focus::Pods,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Focus::Plan => "plan",
            Focus::Pods => "pods",
            Focus::Log => "log",
        }
    }
}

/// How the pod table is sorted (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodSort {
    /// Canary first, then by name, as `kubectl get pods` per track.
    #[default]
    Name,
    /// Not running first: the pods that need looking at.
    Status,
    /// Most restarts first.
    Restarts,
    /// Youngest first.
    Age,
}

impl PodSort {
    pub fn next(self) -> PodSort {
        match self {
            PodSort::Name => PodSort::Status,
            PodSort::Status => PodSort::Restarts,
            PodSort::Restarts => PodSort::Age,
            PodSort::Age => PodSort::Name,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PodSort::Name => "name",
            PodSort::Status => "status",
            PodSort::Restarts => "restarts",
            PodSort::Age => "age",
        }
    }
}

/// The screen's own state: focus, selections, scroll. Changes nothing in the run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    pub focus: Focus,
    /// The selected slot; `None`, or a slot of another phase than the cursor's, follows the
    /// plan's cursor.
    pub plan_selected: Option<crate::engine::StepRef>,
    /// The selected pod, by name, so it stays selected as pods come and go.
    pub pod_selected: Option<String>,
    pub pod_sort: PodSort,
    /// Lines scrolled back from the newest; 0 follows the log.
    pub log_back: usize,
}

/// A short answer in the key bar to a key that did nothing, and when it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub at: SystemTime,
}

/// How long a notice stays in the key bar.
pub const NOTICE_FOR: Duration = Duration::from_secs(6);

/// The command line's commands, for completion and the unknown-command answer.
pub const LINE_COMMANDS: [(&str, &str); 6] = [
    ("weight", "weight N — set the canary weight to N %"),
    ("note", "note TEXT — to the log and the journal"),
    ("op", "op NAME — hand the keys to NAME"),
    (
        "approve",
        "approve — pass the approval gate waiting for you",
    ),
    ("skip", "skip REASON — cut a running hold short"),
    (
        "window",
        "window override REASON — start a phase outside its window",
    ),
];

/// The rollback tiers a plan offers, in menu order (the immediate tier always: `!` is one).
pub fn tiers(plan: &crate::plan::Plan) -> Vec<TierName> {
    [TierName::Immediate, TierName::Gradual, TierName::Full]
        .into_iter()
        .filter(|t| *t == TierName::Immediate || plan.rollback.tier(*t).is_some())
        .collect()
}

/// A tier's time target as the plan writes it (`5m`), if it has one.
pub fn tier_target(plan: &crate::plan::Plan, tier: TierName) -> Option<String> {
    plan.rollback
        .tier(tier)
        .and_then(|t| t.target)
        .map(|t| t.to_string())
}
