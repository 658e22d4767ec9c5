//! `warroom watch JOURNAL`: the console of a run that goes on elsewhere, for a second engineer or
//! stakeholders. The state is rebuilt from the journal exactly as `--resume` rebuilds it
//! ([`resume::replay`]) and kept up with the lines the run appends. Read-only: nothing is
//! carried out and nothing is journaled; keys that would change the run only say so (`update`
//! in [`Mode::Observer`]). Pods are watched live when the cluster can be reached.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

use super::action::{Action, Effect};
use super::event_loop::{self, Screen};
use super::model::{App, Level, Mode, Target};
use super::{resume, update};
use crate::cluster::client::connect;
use crate::cluster::watch::{self, Workloads};
use crate::health::Health;
use crate::journal::read::{self, Read, ReadError};
use crate::journal::record::EnvironmentRecord;
use crate::journal::{Line, Record, VERSION};
use crate::plan::Plan;

/// How often the journal is looked at for new lines.
pub const POLL: Duration = Duration::from_millis(200);

/// What `warroom watch` was asked to follow.
#[derive(Debug, Clone)]
pub struct WatchSetup {
    pub journal: PathBuf,
    /// kubeconfig for the live pod watch (default: `$KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The config file and `--theme`: theme, keys, and their warnings for the log.
    pub settings: crate::config::Settings,
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{0}")]
    Read(#[from] ReadError),
    #[error("{path}: the plan in its start line cannot be read:\n{why}")]
    Plan { path: String, why: String },
    #[error(
        "warroom watch needs a terminal: stdin and stdout must be a tty (run it in a terminal or a tmux pane)"
    )]
    NoTerminal,
    #[error("cannot take the terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("warroom panicked while watching: {0}")]
    Panicked(String),
}

impl WatchError {
    /// The journal is at fault (exit 2), not the terminal (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, WatchError::Read(_) | WatchError::Plan { .. })
    }
}

/// Bytes appended to the journal → whole lines. A partial last line (the run is writing it,
/// or was killed while writing it) is held until its newline arrives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// The whole lines `appended` completes, without their newlines; the held partial line goes
    /// in front of the first, and what follows the last newline is held.
    pub fn push(&mut self, appended: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut rest = appended;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(end);
            let mut whole = std::mem::take(&mut self.partial);
            whole.extend_from_slice(line);
            lines.push(whole);
            rest = after.get(1..).unwrap_or_default();
        }
        self.partial.extend_from_slice(rest);
        lines
    }

    /// Bytes held: a line without its newline yet.
    pub fn held(&self) -> usize {
        self.partial.len()
    }

    /// Whether `bytes`, read from where the held line begins, still begin with it. A resume cuts
    /// a torn last line and writes on from there, which can leave the file longer than before
    /// and yet not a continuation of what was read.
    pub fn continued_by(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(&self.partial)
    }
}

/// What one look at the journal file found.
#[derive(Debug, PartialEq)]
pub enum Polled {
    /// Whole new lines (often none).
    Lines(Vec<Vec<u8>>),
    /// The file no longer continues what was read (a resume cut a torn last line): it is read
    /// again from the start.
    Rewritten,
}

/// The journal file as followed: where its last whole line read ends, and the partial line
/// after it.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    committed: u64,
    buffer: LineBuffer,
}

impl Tail {
    /// Follows `path` from byte `committed`, the end of the last whole line already read.
    pub fn new(path: &Path, committed: u64) -> Tail {
        Tail {
            path: path.to_path_buf(),
            committed,
            buffer: LineBuffer::default(),
        }
    }

    /// Reads what was appended since the last look.
    pub fn poll(&mut self) -> std::io::Result<Polled> {
        let len = std::fs::metadata(&self.path)?.len();
        let held = self.buffer.held();
        let end = self.committed + held as u64;
        if len < end {
            return Ok(Polled::Rewritten);
        }
        if len == end {
            return Ok(Polled::Lines(Vec::new()));
        }
        // From the held line's start, so a cut-and-continued file is told from an appended one.
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.committed))?;
        let mut bytes = Vec::new();
        file.take(len - self.committed).read_to_end(&mut bytes)?;
        if !self.buffer.continued_by(&bytes) {
            return Ok(Polled::Rewritten);
        }
        let lines = self.buffer.push(bytes.get(held..).unwrap_or_default());
        self.committed += lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>();
        Ok(Polled::Lines(lines))
    }
}

/// A run as an observer sees it: the app rebuilt from the journal, kept up with its new lines.
#[derive(Debug)]
pub struct Watched {
    pub app: App,
    /// The engine's clock as the journal last moved it. Between lines the screen's clock runs on
    /// with the wall clock; each line is applied from this one, so the observer's engine sees
    /// the times the run's engine saw and ends a hold on the same tick.
    engine_now: SystemTime,
    /// The journal's name, for messages.
    name: String,
    /// 1-based number of the next line, for messages about a bad one.
    next_number: usize,
}

impl Watched {
    /// Rebuilds the run from a journal as read: its plan from the start line, every input
    /// replayed. `name` names the journal in messages.
    pub fn from_read(name: &str, read: &Read) -> Result<Watched, WatchError> {
        let (Some(first), Some(start)) = (read.lines.first(), read.start()) else {
            return Err(WatchError::Read(ReadError::NoStart {
                path: name.to_string(),
            }));
        };
        let plan =
            crate::plan::parse(Path::new(&start.plan.path), &start.plan.text).map_err(|e| {
                WatchError::Plan {
                    path: name.to_string(),
                    why: e.to_string(),
                }
            })?;
        let plan = Arc::new(plan);
        let mut targets: BTreeMap<String, Target> = start
            .environments
            .iter()
            .map(|e| {
                let target = Target {
                    environment: e.name.clone(),
                    namespace: e.namespace.clone(),
                    context: e.context.clone(),
                    kubeconfig_hint: None,
                };
                (e.name.clone(), target)
            })
            .collect();
        let environment = plan
            .phases
            .first()
            .map(|p| p.environment.clone())
            .unwrap_or_default();
        let target = targets
            .entry(environment.clone())
            .or_insert_with(|| Target {
                namespace: plan
                    .environments
                    .get(&environment)
                    .map(|e| e.namespace.clone())
                    .unwrap_or_default(),
                environment,
                context: "(not in the journal)".to_string(),
                kubeconfig_hint: None,
            })
            .clone();
        let mut app = App::new(plan, target, start.operator.clone(), first.at);
        app.targets = targets;
        app.mode = Mode::Observer;
        resume::replay(&mut app, &read.lines);
        // A watcher journals nothing: what replay applied is the run's, already written.
        app.recorded.clear();
        app.push_log(
            Level::Info,
            format!(
                "watching {name} read-only: {} lines replayed; the run is changed only at its own console",
                read.lines.len()
            ),
        );
        let mut watched = Watched {
            engine_now: app.now,
            app,
            name: name.to_string(),
            next_number: read.lines.len() + 1,
        };
        // A run that ended, and was not resumed since, says how.
        let ended = read.lines.iter().rev().find_map(|l| match &l.record {
            Record::End { .. } => Some(Some(l.record.clone())),
            Record::Resume(_) => Some(None),
            _ => None,
        });
        if let Some(Some(end)) = ended {
            watched.record(end);
        }
        Ok(watched)
    }

    /// Applies one whole line's bytes as read from the file; a line that is not a journal line
    /// is named in the log and left out. Returns the environment the screen moved to, if it did.
    pub fn bytes(&mut self, bytes: &[u8]) -> Option<String> {
        let number = self.next_number;
        self.next_number += 1;
        let parsed = std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Line>(t).map_err(|e| e.to_string()));
        match parsed {
            Ok(line) if line.v == VERSION => self.line(line),
            Ok(line) => {
                self.app.push_log(
                    Level::Warn,
                    format!(
                        "{}:{number}: journal format version {}, not {VERSION}: left out",
                        self.name, line.v
                    ),
                );
                None
            }
            Err(why) => {
                self.app.push_log(
                    Level::Warn,
                    format!(
                        "{}:{number}: not a journal line ({why}): left out, still following",
                        self.name
                    ),
                );
                None
            }
        }
    }

    /// Applies one journal line: inputs as the run applied them (their effects are the run's to
    /// carry out, and are dropped), the end of the run as a log line. Returns the environment
    /// the screen moved to, if it did.
    pub fn line(&mut self, line: Line) -> Option<String> {
        if !line.record.is_input() {
            self.record(line.record);
            return None;
        }
        // The run's Prometheus as the journal shows it: answered rounds are live data, not stale.
        match &line.record {
            Record::Samples { .. } => self.app.metrics.health = Health::Live,
            Record::Unanswered { time, error } => {
                self.app.metrics.health = self.app.metrics.health.then(Health::Degraded {
                    since: *time,
                    error: error.clone(),
                })
            }
            _ => {}
        }
        let shown = self.app.now;
        self.app.now = self.engine_now;
        let mut effects = update::apply(&mut self.app, line.at, line.record);
        effects.extend(update::follow(&mut self.app));
        self.app.recorded.clear();
        self.engine_now = self.app.now;
        self.app.now = self.app.now.max(shown);
        effects.into_iter().rev().find_map(|e| match e {
            Effect::Watch { environment } => Some(environment),
            _ => None,
        })
    }

    /// A line that is not an input: only the end of the run (and a start that does not belong
    /// here) is worth a log line; the others are what the replay already shows.
    fn record(&mut self, record: Record) {
        match record {
            Record::End {
                exit,
                status,
                reason,
            } => {
                let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                let level = if exit == 0 { Level::Info } else { Level::Warn };
                self.app
                    .push_log(level, format!("the run ended: {status} (exit {exit}){why}"));
            }
            Record::Start(start) => self.app.push_log(
                Level::Warn,
                format!(
                    "{}: a second start line (run {}) is left out: a journal holds one run",
                    self.name, start.run_id
                ),
            ),
            _ => {}
        }
    }

    /// The wall clock, for the screen only (see `engine_now`).
    pub fn clock(&mut self, wall: SystemTime) {
        self.app.now = self.app.now.max(wall);
    }
}

/// The live pod watch of the environment on screen: list and watch only, restarted when the
/// engine moves to another environment. Samples and weights come from the journal instead.
struct PodWatch {
    kubeconfig: Option<PathBuf>,
    environments: BTreeMap<String, EnvironmentRecord>,
    plan: Arc<Plan>,
    tx: UnboundedSender<Action>,
    root: CancellationToken,
    current: CancellationToken,
    /// Which watch the current task belongs to; events of earlier ones are dropped.
    epoch: u64,
}

impl PodWatch {
    /// Stops the current watch and starts one on the environment on screen.
    async fn watch(&mut self, app: &mut App) {
        self.current.cancel();
        self.current = self.root.child_token();
        self.epoch += 1;
        app.cluster_off = None;
        let environment = app.target.environment.clone();
        let Some(env) = self.environments.get(&environment) else {
            no_cluster(
                app,
                format!("environment {environment} is not in the journal's start line"),
            );
            return;
        };
        let context = Some(env.context.as_str()).filter(|c| !c.is_empty());
        let connection = match connect(self.kubeconfig.as_deref(), context).await {
            Ok(c) => c,
            Err(e) => {
                no_cluster(app, e.to_string());
                return;
            }
        };
        let workloads = Workloads {
            namespace: env.namespace.clone(),
            stable: self.plan.workload.name.clone(),
            canary: self.plan.workload.canary.clone(),
        };
        let (tx, epoch) = (self.tx.clone(), self.epoch);
        tokio::spawn(watch::run(
            connection.client,
            workloads,
            move |event| {
                let _ = tx.send(Action::Sourced {
                    epoch,
                    action: Box::new(Action::Cluster(event)),
                });
            },
            self.current.clone(),
        ));
    }
}

fn no_cluster(app: &mut App, why: String) {
    app.push_log(
        Level::Warn,
        format!("no cluster connection ({why}): pods are not shown live"),
    );
    app.cluster_off = Some(why);
}

/// Follows the run until the observer quits or the terminal goes away; returns the final state.
pub async fn run(setup: WatchSetup) -> Result<App, WatchError> {
    use std::io::IsTerminal;
    crate::panics::loop_started();
    let name = setup.journal.display().to_string();
    let read = read::read(&setup.journal)?;
    let mut watched = Watched::from_read(&name, &read)?;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(WatchError::NoTerminal);
    }
    watched.app.theme = setup.settings.theme.clone();
    watched.app.keymap = setup.settings.keymap.clone();
    for w in &setup.settings.warnings {
        watched.app.push_log(Level::Warn, w.to_string());
    }
    let environments = read
        .start()
        .map(|s| {
            s.environments
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect()
        })
        .unwrap_or_default();
    let cancel = CancellationToken::new();
    let (tx, rx) = unbounded_channel::<Action>();
    let mut pods = PodWatch {
        kubeconfig: setup.kubeconfig.clone(),
        environments,
        plan: watched.app.plan.clone(),
        tx: tx.clone(),
        root: cancel.clone(),
        current: cancel.child_token(),
        epoch: 0,
    };
    let mut tail = Tail::new(&setup.journal, read.length);
    watched.clock(SystemTime::now());
    let mut terminal = super::terminal::Console::new(super::terminal::take()?);
    event_loop::spawn_input(tx.clone(), cancel.clone());
    event_loop::spawn_signals(tx, cancel.clone(), false);
    pods.watch(&mut watched.app).await;
    let followed = follow(
        &mut watched,
        &mut terminal,
        rx,
        &mut tail,
        &mut pods,
        &setup,
    )
    .await;
    super::terminal::give_back();
    cancel.cancel();
    if let Some(why) = crate::panics::message() {
        return Err(WatchError::Panicked(why.to_string()));
    }
    followed?;
    Ok(watched.app)
}

/// The loop: the journal every [`POLL`], keys, signals and pod events as they come; a frame
/// when something changed (in full) or the clock's second moved (only what the clock moves,
/// see `terminal::Console`).
async fn follow(
    watched: &mut Watched,
    screen: &mut impl Screen,
    mut actions: UnboundedReceiver<Action>,
    tail: &mut Tail,
    pods: &mut PodWatch,
    setup: &WatchSetup,
) -> std::io::Result<()> {
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last error reading the file, so a file gone for a while is one log line.
    let mut failing: Option<String> = None;
    let mut following = true;
    let mut dirty = true;
    loop {
        if dirty {
            screen.show(&watched.app)?;
            dirty = false;
        }
        tokio::select! {
            () = crate::panics::panicked() => {
                return Err(std::io::Error::other(format!(
                    "panicked: {}",
                    crate::panics::message().unwrap_or_default()
                )));
            }
            _ = poll.tick() => {
                if following {
                    let looked = look(watched, tail, setup, &mut failing);
                    if !matches!(looked, Looked::Nothing) {
                        watched.app.touch();
                        dirty = true;
                    }
                    match looked {
                        Looked::Moved => pods.watch(&mut watched.app).await,
                        Looked::Stop => following = false,
                        Looked::Same | Looked::Nothing => {}
                    }
                }
                // The clock's second moved: the screen draws what the clock moves.
                let second = |t: SystemTime| {
                    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
                };
                let before = second(watched.app.now);
                watched.clock(SystemTime::now());
                dirty |= second(watched.app.now) != before;
            }
            action = actions.recv() => {
                let Some(action) = action else { return Ok(()) };
                dirty |= take(watched, screen, pods.epoch, action)?;
                // A burst of pod events costs one frame.
                while let Ok(action) = actions.try_recv() {
                    dirty |= take(watched, screen, pods.epoch, action)?;
                }
            }
        }
        if watched.app.should_quit {
            return Ok(());
        }
    }
}

/// What a look at the journal did to the screen.
#[derive(Debug)]
enum Looked {
    /// Nothing new: no line, or the same read error as last time.
    Nothing,
    /// The environment on screen changed: the pod watch follows.
    Moved,
    Same,
    /// The journal cannot be replayed any more: the screen stays as it is.
    Stop,
}

/// Applies what was appended to the journal, or rebuilds the run when the file was rewritten.
fn look(
    watched: &mut Watched,
    tail: &mut Tail,
    setup: &WatchSetup,
    failing: &mut Option<String>,
) -> Looked {
    let name = setup.journal.display().to_string();
    match tail.poll() {
        Ok(Polled::Lines(lines)) if lines.is_empty() && failing.is_none() => Looked::Nothing,
        Ok(Polled::Lines(lines)) => {
            *failing = None;
            let mut moved = false;
            for line in lines {
                moved |= watched.bytes(&line).is_some();
            }
            if moved { Looked::Moved } else { Looked::Same }
        }
        Ok(Polled::Rewritten) => match rebuild(watched, &setup.journal, &name) {
            Ok((fresh, moved)) => {
                *tail = fresh;
                if moved { Looked::Moved } else { Looked::Same }
            }
            Err(why) => {
                watched.app.push_log(
                    Level::Error,
                    format!(
                        "cannot replay {name} again ({why}): the screen shows the run as it was; no longer following"
                    ),
                );
                Looked::Stop
            }
        },
        Err(e) => {
            let why = e.to_string();
            if failing.as_ref() == Some(&why) {
                return Looked::Nothing;
            }
            watched.app.push_log(
                Level::Error,
                format!("cannot read {name}: {why}; trying again"),
            );
            *failing = Some(why);
            Looked::Same
        }
    }
}

/// Reads the journal again from the start into a fresh app (a resume cut its torn last line).
/// The observer's own screen state (help, live pods of the same environment) is kept. Returns
/// the new tail, and whether the environment on screen changed.
fn rebuild(watched: &mut Watched, path: &Path, name: &str) -> Result<(Tail, bool), String> {
    let read = read::read(path).map_err(|e| e.to_string())?;
    let mut fresh = Watched::from_read(name, &read).map_err(|e| e.to_string())?;
    fresh.app.modals = std::mem::take(&mut watched.app.modals);
    fresh.app.view = std::mem::take(&mut watched.app.view);
    fresh.app.tz = watched.app.tz.clone();
    fresh.app.theme = watched.app.theme.clone();
    fresh.app.keymap = watched.app.keymap.clone();
    let moved = fresh.app.target.environment != watched.app.target.environment;
    if !moved {
        fresh.app.cluster = std::mem::take(&mut watched.app.cluster);
        fresh.app.cluster_off = watched.app.cluster_off.take();
    }
    fresh.app.push_log(
        Level::Warn,
        "the journal was cut back (a resume leaves out a torn last line): replayed again from the start",
    );
    fresh.clock(SystemTime::now());
    // A frame in full follows: the fresh app's changes count on from the old one's.
    fresh.app.generation = watched.app.generation;
    *watched = fresh;
    Ok((Tail::new(path, read.length), moved))
}

/// One action of the observer's own: keys, signals, live pods of the current watch. Whether
/// it calls for a frame: a resize as the screen says, a key that is no command never, anything
/// else always (then in full).
fn take(
    watched: &mut Watched,
    screen: &mut impl Screen,
    epoch: u64,
    action: Action,
) -> std::io::Result<bool> {
    let action = match action {
        Action::Sourced { epoch: e, action } if e == epoch => *action,
        // From the pod watch of an environment no longer on screen.
        Action::Sourced { .. } => return Ok(false),
        Action::Resize => return screen.resized(),
        other => other,
    };
    let nothing = event_loop::changes_nothing(&watched.app, &action);
    // An observer's `update` carries nothing out: it returns no effects.
    let _ = update::update(&mut watched.app, action);
    if !nothing {
        watched.app.touch();
    }
    Ok(!nothing)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::engine::{RunStatus, StepState, Work};
    use crate::journal::record::{Intent, PlanRecord, Start};

    const PLAN: &str = r#"version: 1
name: watch test
service: checkout
risk: low
strategy: canary
workload:
  name: checkout
  canary: checkout-canary
  container: app
  image: registry.example.com/shop/checkout:2.4.0
traffic: { router: gateway-api, route: checkout, stable_backend: checkout, canary_backend: checkout-canary }
environments:
  dev: { context: sim-dev, namespace: shop }
metrics:
  interval: 1s
  history: 2m
  queries:
    error_rate: sum(rate(http_requests_total{track="{{track}}"}[1m]))
  thresholds:
    error_rate: { max: 0.05 }
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 20
      - hold: 5s
      - weight: 50
rollback:
  immediate:
    actions:
      - weight: 0
"#;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn start() -> Record {
        start_of(PLAN)
    }

    fn start_of(text: &str) -> Record {
        Record::Start(Start {
            run_id: "r1".into(),
            warroom: "test".into(),
            plan: PlanRecord {
                path: "plan.yaml".into(),
                name: "watch test".into(),
                sha256: "00".into(),
                text: text.into(),
            },
            environments: vec![EnvironmentRecord {
                name: "dev".into(),
                context: "sim-dev".into(),
                namespace: "shop".into(),
            }],
            operator: "alice".into(),
            host: "h".into(),
            mode: "headless".into(),
            auto_approve: "nothing".into(),
            override_window: None,
        })
    }

    fn line(seq: u64, at: SystemTime, record: Record) -> Line {
        Line {
            v: VERSION,
            seq,
            at,
            record,
        }
    }

    fn bytes(lines: &[Line]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            out.extend(serde_json::to_vec(l).expect("serializes"));
            out.push(b'\n');
        }
        out
    }

    /// The run as `warroom run` carries it out live, with what it would journal: its inputs as
    /// `update` recorded them, and an intent line before each piece of work.
    fn live_run() -> (App, Vec<Line>) {
        let plan = Arc::new(crate::plan::parse(Path::new("plan.yaml"), PLAN).expect("plan"));
        let target = Target {
            environment: "dev".into(),
            namespace: "shop".into(),
            context: "sim-dev".into(),
            kubeconfig_hint: None,
        };
        let mut app = App::new(plan, target, "alice".into(), at(0));
        let mut lines = vec![line(0, at(0), start())];
        let journal = |app: &mut App, effects: &[Effect], lines: &mut Vec<Line>| {
            for (when, record) in std::mem::take(&mut app.recorded) {
                lines.push(line(lines.len() as u64, when, record));
            }
            for effect in effects {
                if let Effect::Work {
                    id,
                    environment,
                    work,
                    ..
                } = effect
                {
                    let intent = Intent {
                        id: id.0,
                        environment: environment.clone(),
                        phase: "Dev".into(),
                        purpose: "step".into(),
                        origin: None,
                        label: "w".into(),
                        work: work.clone(),
                    };
                    lines.push(line(lines.len() as u64, app.now, Record::Intent(intent)));
                }
            }
        };
        let mut pending = update::update(&mut app, Action::Begin);
        journal(&mut app, &pending, &mut lines);
        for secs in 1..=12 {
            let mut effects = update::update(&mut app, Action::Tick(at(secs)));
            effects.extend(update::update(&mut app, clean_round(at(secs))));
            for effect in std::mem::take(&mut pending) {
                if let Some(id) = effect.id() {
                    effects.extend(update::update(
                        &mut app,
                        Action::EffectDone {
                            id,
                            result: Ok("stored".into()),
                        },
                    ));
                }
            }
            journal(&mut app, &effects, &mut lines);
            pending = effects;
        }
        (app, lines)
    }

    fn clean_round(when: SystemTime) -> Action {
        let samples = crate::plan::TrackName::BOTH
            .into_iter()
            .map(|track| crate::metrics::Sample {
                metric: "error_rate".into(),
                track,
                point: crate::metrics::series::Point {
                    at: when,
                    value: Some(0.01),
                },
            })
            .collect();
        Action::Metrics(crate::metrics::MetricsEvent::Samples(samples))
    }

    fn states(app: &App) -> Vec<StepState> {
        app.deployment
            .phases
            .iter()
            .flat_map(|p| p.slots.iter().map(|s| s.state.clone()))
            .collect()
    }

    #[test]
    fn replaying_the_journal_and_following_it_line_by_line_give_the_live_state() {
        let (live, lines) = live_run();
        assert_eq!(live.deployment.status, RunStatus::Complete, "{lines:#?}");
        assert!(lines.iter().any(|l| matches!(
            l.record,
            Record::Intent(Intent {
                work: Work::SetWeight { .. },
                ..
            })
        )));
        let all = read::parse("j.jsonl", &bytes(&lines)).expect("reads");
        let replayed = Watched::from_read("j.jsonl", &all).expect("watched");
        assert_eq!(states(&replayed.app), states(&live));
        assert_eq!(replayed.app.deployment.status, RunStatus::Complete);
        assert!(
            replayed.app.recorded.is_empty(),
            "a watcher journals nothing"
        );

        // Only the start line, then every line as it is appended, half a line at a time.
        let first = read::parse("j.jsonl", &bytes(&lines[..1])).expect("reads");
        let mut followed = Watched::from_read("j.jsonl", &first).expect("watched");
        assert_eq!(followed.app.deployment.status, RunStatus::Ready);
        let mut buffer = LineBuffer::default();
        let rest = bytes(&lines[1..]);
        for chunk in rest.chunks(37) {
            for whole in buffer.push(chunk) {
                followed.bytes(&whole);
            }
        }
        assert_eq!(buffer.held(), 0);
        assert_eq!(states(&followed.app), states(&live));
        assert_eq!(followed.app.deployment.cursor, live.deployment.cursor);
        assert_eq!(followed.app.in_flight, live.in_flight);
        assert!(followed.app.recorded.is_empty());
    }

    /// The observer's own clock runs ahead of the journal's between lines; the engine still
    /// sees the run's times, so a hold does not end early on the observer's screen.
    #[test]
    fn the_screen_clock_does_not_move_the_engine() {
        let (_, lines) = live_run();
        // Up to the hold: start, begin, the weight step's intent and result.
        let upto = lines
            .iter()
            .position(|l| matches!(l.record, Record::Result { .. }))
            .expect("a result");
        let read = read::parse("j.jsonl", &bytes(&lines[..=upto])).expect("reads");
        let mut watched = Watched::from_read("j.jsonl", &read).expect("watched");
        let hold = |w: &Watched| w.app.deployment.phases[0].slots[1].state.clone();
        assert!(matches!(hold(&watched), StepState::Running { .. }));
        watched.clock(at(3600));
        let Action::Metrics(crate::metrics::MetricsEvent::Samples(round)) = clean_round(at(2))
        else {
            unreachable!("a round of samples")
        };
        let samples = Record::Samples {
            samples: round
                .iter()
                .map(|s| crate::journal::record::SampleRecord {
                    metric: s.metric.clone(),
                    track: s.track,
                    time: s.point.at,
                    value: s.point.value,
                })
                .collect(),
        };
        watched.line(line(98, at(2), samples));
        watched.line(line(99, at(2), Record::Tick));
        assert!(
            matches!(hold(&watched), StepState::Running { .. }),
            "the run's tick at 0:02 does not end a 5s hold"
        );
        assert_eq!(watched.app.now, at(3600), "the screen keeps the wall clock");
    }

    #[test]
    fn a_garbage_line_is_named_and_following_goes_on() {
        let (live, lines) = live_run();
        let first = read::parse("j.jsonl", &bytes(&lines[..1])).expect("reads");
        let mut watched = Watched::from_read("j.jsonl", &first).expect("watched");
        watched.bytes(b"{\"not\": \"a journal line\"");
        watched.bytes(&[0xff, 0xfe]);
        let texts: Vec<&str> = watched.app.log.iter().map(|l| l.text.as_str()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("j.jsonl:2: not a journal line")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("j.jsonl:3: not a journal line"))
        );
        for l in &lines[1..] {
            watched.line(l.clone());
        }
        assert_eq!(states(&watched.app), states(&live));
    }

    #[test]
    fn the_end_of_the_run_is_told() {
        let (_, mut lines) = live_run();
        let end = Record::End {
            exit: 0,
            status: "COMPLETE".into(),
            reason: None,
        };
        lines.push(line(lines.len() as u64, at(20), end.clone()));
        let read = read::parse("j.jsonl", &bytes(&lines)).expect("reads");
        let watched = Watched::from_read("j.jsonl", &read).expect("watched");
        assert!(
            watched
                .app
                .log
                .iter()
                .any(|l| l.text == "the run ended: COMPLETE (exit 0)")
        );
        let first = read::parse("j.jsonl", &bytes(&lines[..1])).expect("reads");
        let mut followed = Watched::from_read("j.jsonl", &first).expect("watched");
        followed.line(line(1, at(20), end));
        assert!(
            followed
                .app
                .log
                .back()
                .is_some_and(|l| l.text == "the run ended: COMPLETE (exit 0)")
        );
    }

    /// The run moving to its next environment moves the screen, and the pod watch with it.
    #[test]
    fn the_next_environment_is_told_to_the_pod_watch() {
        let text = PLAN
            .replace(
                "  dev: { context: sim-dev, namespace: shop }",
                "  dev: { context: sim-dev, namespace: shop }\n  staging: { context: sim-staging, namespace: shop-staging }",
            )
            .replace(
                "rollback:",
                "  - name: Staging\n    environment: staging\n    steps:\n      - weight: 20\nrollback:",
            )
            .replace("      - hold: 5s\n      - weight: 50\n", "");
        let Record::Start(mut start) = start_of(&text) else {
            unreachable!("a start line")
        };
        start.environments.push(EnvironmentRecord {
            name: "staging".into(),
            context: "kind-staging".into(),
            namespace: "shop-staging".into(),
        });
        let lines = [
            line(0, at(0), Record::Start(start)),
            line(
                1,
                at(1),
                Record::Begin {
                    operator: "alice".into(),
                },
            ),
        ];
        let read = read::parse("j.jsonl", &bytes(&lines)).expect("reads");
        let mut watched = Watched::from_read("j.jsonl", &read).expect("watched");
        assert_eq!(watched.app.target.environment, "dev");
        let result = Record::Result {
            id: 1,
            ok: Some("stored".into()),
            err: None,
        };
        assert_eq!(
            watched.line(line(2, at(2), result)).as_deref(),
            Some("staging")
        );
        assert_eq!(watched.app.target.environment, "staging");
        assert_eq!(
            watched.app.target.context, "kind-staging",
            "as the journal's start says"
        );
    }

    /// A resume cuts the torn line the watcher holds and writes on: the watcher replays the
    /// journal again and goes on following it.
    #[test]
    fn a_journal_cut_back_by_a_resume_is_replayed_again() {
        use std::io::Write as _;
        let (live, lines) = live_run();
        let upto = lines
            .iter()
            .position(|l| matches!(l.record, Record::Result { .. }))
            .expect("a result");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j.jsonl");
        let whole = bytes(&lines[..upto]);
        let mut torn = whole.clone();
        // What the killed run was writing; the resumed run writes another line there.
        torn.extend_from_slice(b"{\"v\":1,\"seq\":99");
        std::fs::write(&path, &torn).expect("write");
        let setup = WatchSetup {
            journal: path.clone(),
            kubeconfig: None,
            settings: Default::default(),
        };
        let read = read::read(&path).expect("reads");
        let mut watched = Watched::from_read("j.jsonl", &read).expect("watched");
        let mut tail = Tail::new(&path, read.length);
        let mut failing = None;
        assert!(matches!(
            look(&mut watched, &mut tail, &setup, &mut failing),
            Looked::Nothing
        ));
        assert_eq!(
            tail.buffer.held(),
            torn.len() - whole.len(),
            "the torn line is held"
        );
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.set_len(whole.len() as u64).expect("cut");
        (&file).write_all(&bytes(&lines[upto..])).expect("append");
        assert!(matches!(
            look(&mut watched, &mut tail, &setup, &mut failing),
            Looked::Same
        ));
        assert!(
            watched
                .app
                .log
                .iter()
                .any(|l| l.text.starts_with("the journal was cut back")),
            "{:?}",
            watched.app.log
        );
        assert_eq!(states(&watched.app), states(&live));
        assert_eq!(watched.app.mode, Mode::Observer);
        assert!(matches!(
            look(&mut watched, &mut tail, &setup, &mut failing),
            Looked::Nothing
        ));
        assert_eq!(states(&watched.app), states(&live), "nothing applied twice");
    }

    #[test]
    fn a_partial_line_is_held_until_its_newline() {
        let mut buffer = LineBuffer::default();
        assert!(buffer.push(b"{\"a\":").is_empty());
        assert_eq!(buffer.held(), 5);
        assert!(buffer.push(b"1}").is_empty());
        assert_eq!(
            buffer.push(b"\n{\"b\":2}\n{\"c\""),
            vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
        );
        assert!(buffer.continued_by(b"{\"c\":3}\n"));
        assert!(!buffer.continued_by(b"{\"d\":4}\n"), "cut and written on");
        assert_eq!(buffer.push(b":3}\n"), vec![b"{\"c\":3}".to_vec()]);
        assert_eq!(buffer.held(), 0);
        assert_eq!(buffer.push(b"\n"), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn the_tail_reads_appended_lines_and_sees_a_cut() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "one\n").expect("write");
        let append = |text: &str| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            f.write_all(text.as_bytes()).expect("append");
        };
        let mut tail = Tail::new(&path, 4);
        assert_eq!(tail.poll().expect("poll"), Polled::Lines(vec![]));
        append("two\nthr");
        assert_eq!(
            tail.poll().expect("poll"),
            Polled::Lines(vec![b"two".to_vec()])
        );
        append("ee\n");
        assert_eq!(
            tail.poll().expect("poll"),
            Polled::Lines(vec![b"three".to_vec()])
        );
        append("torn");
        assert_eq!(tail.poll().expect("poll"), Polled::Lines(vec![]));
        // A resume cuts the torn line and writes on from there, past where it ended.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(14).expect("cut");
        append("resumed line\n");
        assert_eq!(tail.poll().expect("poll"), Polled::Rewritten);
        let mut tail = Tail::new(&path, 14);
        assert_eq!(
            tail.poll().expect("poll"),
            Polled::Lines(vec![b"resumed line".to_vec()])
        );
        file.set_len(4).expect("cut");
        assert_eq!(tail.poll().expect("poll"), Polled::Rewritten);
    }
}
