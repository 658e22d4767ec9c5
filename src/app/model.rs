//! The console's whole state: plan progress, cluster view, traffic, metrics, log, modals.
//! Changed only by `update`; drawn by `ui::render` through `&App`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use crate::cluster::model::{PodView, ReplicaSetView, WorkloadView};
use crate::engine::Deployment;
use crate::health::Health;
use crate::metrics::series::Series;
use crate::plan::{Plan, TrackName, Weight};

use super::action::EffectId;

/// How many log lines are kept.
pub const LOG_CAPACITY: usize = 500;

/// Where the console runs, for the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The plan environment's name.
    pub environment: String,
    pub namespace: String,
    /// kubeconfig context, or a description such as `simulator`.
    pub context: String,
    /// Shown so a second pane can point kubectl at the same cluster (demo).
    pub kubeconfig_hint: Option<String>,
}

/// The canary weight as read from, and requested of, the traffic router.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficView {
    /// Last weight read from the traffic object.
    pub observed: Option<Weight>,
    /// A weight asked for and not yet confirmed.
    pub requested: Option<(EffectId, Weight)>,
    pub health: Health,
}

/// Pods and Deployments of both tracks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    pub pods: BTreeMap<String, PodView>,
    pub workloads: BTreeMap<TrackName, WorkloadView>,
    /// ReplicaSets of the plan's Deployments by name: revisions and the pods each still runs.
    pub replica_sets: BTreeMap<String, ReplicaSetView>,
    pub health: Health,
}

impl ClusterView {
    /// Pods (desired) still kept by a track's ReplicaSets of revisions other than the one its
    /// Deployment is rolling out: non-zero while a rollout or undo is under way.
    pub fn old_pods(&self, track: TrackName) -> u32 {
        let current = self.workloads.get(&track).and_then(|w| w.revision);
        self.replica_sets
            .values()
            .filter(|r| r.track == track && current.is_some() && r.revision != current)
            .map(|r| r.desired.max(r.ready))
            .sum()
    }
}

/// Sampled series by metric name and track.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsView {
    pub series: BTreeMap<(String, TrackName), Series>,
    pub health: Health,
}

pub use crate::engine::Level;

/// One line of the event/audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: SystemTime,
    pub level: Level,
    pub text: String,
    /// The environment on screen when it was written.
    pub environment: String,
}

/// Why an effect was started, so its result updates the right thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The engine asked for it (a step or a rollback action).
    Engine(crate::engine::Origin),
    /// `+`/`-`.
    ManualWeight,
}

/// How the run is presented: what ends it differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The full-screen console: the operator quits.
    #[default]
    Console,
    /// One line per event: the run ends when the plan is finished or would wait for a person.
    Headless,
    /// `warroom watch`: the console of a run that goes on elsewhere, rebuilt from its journal.
    /// Read-only: keys that would change the run only say so (see `update`).
    Observer,
}

/// The console's state.
#[derive(Debug, Clone)]
pub struct App {
    pub plan: Arc<Plan>,
    /// The environment shown and acted on now.
    pub target: Target,
    /// Every environment the plan uses, by name; the current phase's becomes `target`.
    pub targets: BTreeMap<String, Target>,
    pub mode: Mode,
    /// Why a headless run stopped before its end, for the last line and the exit code.
    pub stopped: Option<String>,
    /// SIGINT/SIGTERM arrived: stop once a rollback under way has finished.
    pub interrupted: Option<String>,
    /// Log lines pushed since start (the log keeps the newest [`LOG_CAPACITY`]).
    pub log_total: u64,
    pub operator: String,
    pub deployment: Deployment,
    pub cluster: ClusterView,
    pub traffic: TrafficView,
    pub metrics: MetricsView,
    pub log: VecDeque<LogLine>,
    /// Wall clock as of the last tick.
    pub now: SystemTime,
    /// Help, dialogs, the command line and menus, top last: the top one takes keys first.
    pub modals: Vec<super::modal::Modal>,
    /// Focus, selections and scroll: the screen's own state.
    pub view: super::modal::View,
    /// The key bar's answer to a key that did nothing.
    pub notice: Option<super::modal::Notice>,
    /// Command lines run, oldest first (Up walks back).
    pub history: Vec<String>,
    /// Which key runs which command.
    pub keymap: Arc<super::keymap::Keymap>,
    /// The colours and styles the screen is drawn in (`--theme`, the config file's `theme:`).
    pub theme: Arc<crate::ui::theme::Theme>,
    /// The demo's simulator faults (`D`); `None` outside the demo.
    pub drills: Option<super::modal::Drills>,
    pub should_quit: bool,
    /// Effects started and not yet reported back.
    pub in_flight: BTreeMap<EffectId, Origin>,
    /// Clock times are shown in this zone.
    pub tz: jiff::tz::TimeZone,
    /// Inputs applied since the event loop last took them, for the journal.
    pub recorded: Vec<(SystemTime, crate::journal::Record)>,
    /// Why the journal cannot be written, once it could not.
    pub journal_error: Option<String>,
    /// An observer without a cluster connection for the environment on screen, and why: the
    /// header says so rather than "connecting" for ever.
    pub cluster_off: Option<String>,
    next_effect: u64,
    /// Moves on with every change but the clock's (`touch`): the event loop draws a full frame
    /// only when it has moved, and otherwise only what the clock moves.
    pub generation: u64,
}

impl App {
    pub fn new(plan: Arc<Plan>, target: Target, operator: String, now: SystemTime) -> App {
        let deployment = Deployment::new(plan.clone());
        let mut targets = BTreeMap::new();
        targets.insert(target.environment.clone(), target.clone());
        App {
            plan,
            target,
            targets,
            mode: Mode::Console,
            stopped: None,
            interrupted: None,
            log_total: 0,
            operator,
            deployment,
            cluster: ClusterView::default(),
            traffic: TrafficView::default(),
            metrics: MetricsView::default(),
            log: VecDeque::new(),
            now,
            modals: Vec::new(),
            view: super::modal::View::default(),
            notice: None,
            history: Vec::new(),
            keymap: Arc::new(super::keymap::Keymap::default()),
            theme: crate::ui::theme::Theme::shared_default(),
            drills: None,
            should_quit: false,
            in_flight: BTreeMap::new(),
            tz: jiff::tz::TimeZone::system(),
            recorded: Vec::new(),
            journal_error: None,
            cluster_off: None,
            next_effect: 1,
            generation: 0,
        }
    }

    /// Something but the clock changed: the next frame is drawn in full.
    pub fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    pub(crate) fn next_effect_id(&mut self) -> EffectId {
        let id = EffectId(self.next_effect);
        self.next_effect += 1;
        id
    }

    pub(crate) fn push_log(&mut self, level: Level, text: impl Into<String>) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log_total += 1;
        let environment = self.target.environment.clone();
        self.log.push_back(LogLine {
            environment,
            at: self.now,
            level,
            text: text.into(),
        });
    }

    /// The modal on top, which takes keys first.
    pub fn modal(&self) -> Option<&super::modal::Modal> {
        self.modals.last()
    }

    /// Whether help is open (on top or under another modal).
    pub fn help_open(&self) -> bool {
        self.modals
            .iter()
            .any(|m| matches!(m, super::modal::Modal::Help))
    }

    /// Answers a key that did nothing, in the key bar (and nowhere else: the log is for what
    /// happened).
    pub(crate) fn notice(&mut self, text: impl Into<String>) {
        self.notice = Some(super::modal::Notice {
            text: text.into(),
            at: self.now,
        });
    }

    /// The pods in the pod table's order (`s` cycles it): by name with the canary first; by
    /// status with those not running and ready first; by restarts, most first; by age,
    /// youngest first. Ties go by name.
    pub fn sorted_pods(&self) -> Vec<&PodView> {
        use super::modal::PodSort;
        let mut pods: Vec<&PodView> = self.cluster.pods.values().collect();
        let track_rank = |p: &PodView| match p.track {
            Some(TrackName::Canary) => 0,
            Some(TrackName::Stable) => 1,
            None => 2,
        };
        let healthy =
            |p: &PodView| p.status == "Running" && p.ready_containers == p.total_containers;
        match self.view.pod_sort {
            PodSort::Name => pods.sort_by(|a, b| {
                track_rank(a)
                    .cmp(&track_rank(b))
                    .then_with(|| a.name.cmp(&b.name))
            }),
            PodSort::Status => pods.sort_by(|a, b| {
                healthy(a)
                    .cmp(&healthy(b))
                    .then_with(|| a.status.cmp(&b.status))
                    .then_with(|| a.name.cmp(&b.name))
            }),
            PodSort::Restarts => pods.sort_by(|a, b| {
                b.restarts
                    .cmp(&a.restarts)
                    .then_with(|| a.name.cmp(&b.name))
            }),
            PodSort::Age => {
                pods.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)))
            }
        }
        pods
    }

    /// How many samples a series keeps: `history / interval`.
    pub fn series_capacity(&self) -> usize {
        let interval = self.plan.metrics.interval.get().as_millis().max(1);
        let history = self.plan.metrics.history.get().as_millis();
        usize::try_from(history / interval)
            .unwrap_or(usize::MAX)
            .max(2)
    }

    /// The weight `+`/`-` start from: a pending request if there is one, else what was read.
    pub fn weight_base(&self) -> Option<Weight> {
        self.traffic
            .requested
            .map(|(_, w)| w)
            .or(self.traffic.observed)
    }
}
