//! Starting a run against a cluster: one connection set per environment, the source tasks of
//! the environment on screen, the effect runner, and the loop — with the terminal or, headless,
//! a line printer. The one place that wires clients to the app.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

use super::action::{Action, Effect};
use super::carry::Snapshots;
use super::effects::{EffectRunner, EnvClients};
use super::event_loop::{self, LinePrinter, Shell};
use super::model::{App, Level, Mode, Target};
use super::resume;
use super::update;
use crate::cluster::client::Connection;
use crate::cluster::watch::{self, Workloads};
use crate::engine::{AutoApprove, RunStatus};
use crate::journal::record::{OperatorCommand, Resume};
use crate::journal::{Journal, Line, Record};
use crate::metrics::prometheus::PromClient;
use crate::metrics::sampler;
use crate::plan::{Plan, Router};
use crate::traffic::TrafficRouter;
use crate::traffic::gateway_api::GatewayApiRouter;
use crate::traffic::istio::IstioRouter;
use crate::traffic::nginx::NginxRouter;
use crate::traffic::replicas::ReplicasRouter;
use crate::traffic::smi::SmiRouter;

/// One environment, connected.
pub struct Link {
    pub name: String,
    pub context: String,
    pub namespace: String,
    pub connection: Connection,
    pub prom: PromClient,
    /// A kubeconfig reaching only this environment, for `run` steps.
    pub kubeconfig: Option<PathBuf>,
}

/// Everything a run needs to start.
pub struct RunSetup {
    pub plan: Arc<Plan>,
    /// `run` steps start here.
    pub plan_dir: PathBuf,
    /// Every environment the plan uses, connected and checked.
    pub links: Vec<Link>,
    pub operator: String,
    pub kubeconfig_hint: Option<String>,
    /// The demo simulator's fault endpoint (`{kubernetes}/sim/faults`): `D` injects drills.
    pub drills: Option<String>,
    pub mode: Mode,
    pub auto_approve: AutoApprove,
    /// Headless: JSON lines instead of text lines.
    pub json: bool,
    /// ConfigMaps as they were when the run started.
    pub snapshots: Snapshots,
    /// `--override-window REASON`.
    pub override_window: Option<String>,
    /// The journal being written (its `start` line already is).
    pub journal: Option<Journal>,
    /// A run continued from its journal.
    pub resume: Option<ResumeFrom>,
    /// Problems renewing the plan's leases (taken and renewed by the caller).
    pub lease_problems: Option<tokio::sync::mpsc::UnboundedReceiver<crate::lease::LeaseError>>,
    /// The config file and `--theme`: theme, keys, and their warnings for the log.
    pub settings: crate::config::Settings,
    /// `warroom rehearse`: headless, driven by this instead of printing lines; `run` steps
    /// without `rehearse: true` and webhooks are printed to the log, not carried out.
    pub rehearsal: Option<Box<dyn Driver>>,
}

/// What drives a rehearsal: it sees the state after every change, as a screen would, and
/// answers with the actions to take (a fault noted, a rollback tier, the end).
pub trait Driver: Send {
    fn observe(&mut self, app: &App) -> Vec<Action>;
}

/// A headless run's screen under a [`Driver`]: nothing printed, the driver's actions sent.
struct Driven {
    driver: Box<dyn Driver>,
    tx: UnboundedSender<Action>,
}

impl Driven {
    fn drive(&mut self, app: &App) {
        for action in self.driver.observe(app) {
            // The loop has ended when nobody receives: nothing is left to drive.
            let _ = self.tx.send(action);
        }
    }
}

impl event_loop::Screen for Driven {
    fn show(&mut self, app: &App) -> std::io::Result<()> {
        self.drive(app);
        Ok(())
    }

    fn changed(&mut self, app: &App) {
        self.drive(app);
    }
}

/// What a resumed run continues from.
pub struct ResumeFrom {
    /// The journal's lines as read.
    pub lines: Vec<Line>,
    /// The `resume` line this run adds.
    pub resume: Resume,
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("plan environment `{0}` is not defined under environments")]
    UnknownEnvironment(String),
    #[error("the plan has no traffic section; the console needs a router to shift weight")]
    NoTraffic,
    #[error("traffic.{key} is required for the {router} traffic router")]
    MissingTrafficKey {
        key: &'static str,
        router: &'static str,
    },
    #[error(
        "{stable_key} and {canary_key} are both `{name}`; the {router} traffic router needs the stable and the canary backend to differ"
    )]
    SameBackend {
        stable_key: &'static str,
        canary_key: &'static str,
        name: String,
        router: &'static str,
    },
    #[error("workload.canary is required for the replicas router")]
    MissingWorkloadCanary,
    #[error("{0}")]
    Metrics(String),
    #[error("cannot take the terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error(
        "the console needs a terminal: stdin and stdout must be a tty (run it in a terminal or a tmux pane)"
    )]
    NoTerminal,
    #[error("an observer carries out no plan: `warroom watch JOURNAL` follows a run")]
    Observer,
}

/// The traffic router the plan names.
pub fn router_for(
    plan: &Plan,
    connection: &Connection,
    namespace: &str,
) -> Result<Arc<dyn TrafficRouter>, SetupError> {
    let traffic = plan.traffic.as_ref().ok_or(SetupError::NoTraffic)?;
    let client = connection.client.clone();
    let name = traffic.router.as_str();
    let missing = |key| SetupError::MissingTrafficKey { key, router: name };
    let route = || traffic.route.as_deref().ok_or(missing("route"));
    // The documented defaults: workload.name and workload.canary. Each comes with the plan key
    // it was read from, for the message refusing a plan where they are the same.
    let stable = match (traffic.router, traffic.stable_backend.as_deref()) {
        (Router::Replicas, _) | (_, None) => (plan.workload.name.as_str(), "workload.name"),
        (_, Some(s)) => (s, "traffic.stable_backend"),
    };
    let canary = match (traffic.router, traffic.canary_backend.as_deref()) {
        (Router::Replicas, _) => plan
            .workload
            .canary
            .as_deref()
            .map(|c| (c, "workload.canary"))
            .ok_or(SetupError::MissingWorkloadCanary)?,
        (_, Some(c)) => (c, "traffic.canary_backend"),
        (_, None) => plan
            .workload
            .canary
            .as_deref()
            .map(|c| (c, "workload.canary"))
            .ok_or(missing("canary_backend"))?,
    };
    if stable.0 == canary.0 {
        return Err(SetupError::SameBackend {
            stable_key: stable.1,
            canary_key: canary.1,
            name: stable.0.to_string(),
            router: name,
        });
    }
    let (stable, canary) = (stable.0, canary.0);
    Ok(match traffic.router {
        Router::GatewayApi => Arc::new(GatewayApiRouter::new(
            client,
            namespace,
            route()?,
            stable,
            canary,
        )),
        Router::Istio => Arc::new(IstioRouter::new(
            client,
            namespace,
            route()?,
            stable,
            canary,
        )),
        Router::Nginx => Arc::new(NginxRouter::new(client, namespace, route()?, canary)),
        Router::Smi => Arc::new(SmiRouter::new(client, namespace, route()?, stable, canary)),
        Router::Replicas => Arc::new(ReplicasRouter::new(client, namespace, stable, canary)),
    })
}

/// The traffic router of `link`'s environment, or `None` for plans without one.
fn router_of(plan: &Plan, link: &Link) -> Result<Option<Arc<dyn TrafficRouter>>, SetupError> {
    if plan.traffic.is_none() {
        return Ok(None);
    }
    router_for(plan, &link.connection, &link.namespace).map(Some)
}

/// Runs the plan until it ends (headless) or the operator quits (console); returns the final
/// state.
pub async fn run(setup: RunSetup) -> Result<App, SetupError> {
    use std::io::IsTerminal;
    if setup.mode == Mode::Observer {
        return Err(SetupError::Observer);
    }
    if setup.mode == Mode::Console
        && (!std::io::stdin().is_terminal() || !std::io::stdout().is_terminal())
    {
        return Err(SetupError::NoTerminal);
    }
    let plan = setup.plan.clone();
    let first = plan
        .phases
        .first()
        .map(|p| p.environment.clone())
        .ok_or_else(|| SetupError::UnknownEnvironment("(the plan has no phases)".into()))?;
    let mut targets = BTreeMap::new();
    let mut envs = Vec::new();
    let mut sources = BTreeMap::new();
    for link in &setup.links {
        let router = router_of(&plan, link)?;
        let probes = sampler::probes(
            &plan.metrics.queries,
            &link.namespace,
            &plan.service,
            plan.metrics.rate.get(),
            plan.tracks(),
        )
        .map_err(SetupError::Metrics)?;
        targets.insert(
            link.name.clone(),
            Target {
                environment: link.name.clone(),
                namespace: link.namespace.clone(),
                context: link.context.clone(),
                kubeconfig_hint: setup.kubeconfig_hint.clone(),
            },
        );
        envs.push(EnvClients {
            name: link.name.clone(),
            namespace: link.namespace.clone(),
            context: link.context.clone(),
            client: link.connection.client.clone(),
            router: router.clone(),
            kubeconfig: link.kubeconfig.clone(),
        });
        sources.insert(
            link.name.clone(),
            SourceSet {
                client: link.connection.client.clone(),
                namespace: link.namespace.clone(),
                router,
                prom: link.prom.clone(),
                probes,
            },
        );
    }
    let target = targets
        .get(&first)
        .cloned()
        .ok_or_else(|| SetupError::UnknownEnvironment(first.clone()))?;
    // A replay starts at the journal's first moment and moves the clock on as its lines did.
    let start_at = setup
        .resume
        .as_ref()
        .and_then(|r| r.lines.first())
        .map_or_else(SystemTime::now, |l| l.at);
    let mut app = App::new(plan.clone(), target, setup.operator.clone(), start_at);
    app.theme = setup.settings.theme.clone();
    app.keymap = setup.settings.keymap.clone();
    app.targets = targets;
    app.mode = setup.mode;
    app.deployment.auto_approve = setup.auto_approve;

    let cancel = CancellationToken::new();
    let (tx, rx) = unbounded_channel::<Action>();
    let env_map: BTreeMap<String, EnvClients> =
        envs.iter().map(|e| (e.name.clone(), e.clone())).collect();
    let runner = EffectRunner::start(
        plan.clone(),
        setup.plan_dir.clone(),
        envs,
        setup.snapshots.clone(),
        tx.clone(),
    );
    if let Some(journal) = &setup.journal {
        let carry = runner.clone();
        let errors = tx.clone();
        journal.attach(
            Box::new(move |effect| carry.run(effect)),
            Box::new(move |why| {
                let _ = errors.send(Action::JournalFailed(why));
            }),
        );
    }
    let sources = Sources {
        sets: sources,
        plan: plan.clone(),
        tx: tx.clone(),
        current: cancel.child_token(),
        root: cancel.clone(),
        epoch: 0,
    };
    if setup.rehearsal.is_some() {
        runner.set_rehearsal();
    }
    let notifier = match &setup.rehearsal {
        Some(_) => {
            // The URL is not logged: a Slack webhook's URL is its secret.
            if plan.notify.is_some() {
                app.push_log(
                    Level::Info,
                    "rehearsal: the plan's webhook gets nothing; notify steps are printed here"
                        .to_string(),
                );
            }
            Ok(None)
        }
        None => start_notifier(&plan, &tx, setup.journal.clone()),
    };
    let notifier = match notifier {
        Ok(n) => n,
        Err(e) => {
            app.push_log(
                Level::Error,
                format!("webhook: {e}; no notification will be sent"),
            );
            None
        }
    };
    if let Some(n) = &notifier {
        runner.set_notifier(n.clone());
    }
    // A rehearsal's scenario ends with its simulators: work still retrying then must stop, not
    // press on against a port a later scenario's simulator may have taken.
    let stopper = setup.rehearsal.is_some().then(|| runner.clone());
    let mut shell = Shell::new(runner, sources, setup.journal.clone());
    shell.notifier = notifier.clone();
    let mut printer = LinePrinter::new(setup.json);
    // The terminal is taken before anything is replayed or sent: a console that cannot start
    // must not have changed the cluster.
    let mut terminal = match setup.mode {
        Mode::Headless => None,
        Mode::Console | Mode::Observer => {
            Some(super::terminal::Console::new(super::terminal::take()?))
        }
    };
    match setup.resume {
        None => {
            shell.journal_changes(&mut app);
            shell.sources.watch(&first);
        }
        Some(from) => {
            let replayed = resume::replay(&mut app, &from.lines);
            shell.caught_up(&mut app);
            printer.skip_to(app.log_total);
            app.operator = setup.operator.clone();
            app.deployment.auto_approve = setup.auto_approve;
            // The clock jumps over the gap; the `resume` input applied next says what the gap
            // means (a hold starts again), before anything judges the time that passed.
            app.now = app.now.max(SystemTime::now());
            apply_live(&mut app, &mut shell, Record::Resume(from.resume));
            shell.sources.watch(&app.target.environment.clone());
            // The replayed state on screen while the cluster is checked.
            if let Some(t) = terminal.as_mut() {
                let _ = event_loop::Screen::show(t, &app);
            }
            resume::continue_in_flight(&mut app, &mut shell, &replayed, &env_map).await;
        }
    }
    if let Some(reason) = &setup.override_window {
        let operator = app.operator.clone();
        apply_live(
            &mut app,
            &mut shell,
            Record::Command {
                operator,
                command: OperatorCommand::OverrideAllWindows {
                    reason: reason.clone(),
                },
            },
        );
    }
    if plan.traffic.is_none() {
        app.push_log(
            Level::Info,
            format!(
                "{} plan without a traffic router: the traffic panel shows the replica split",
                plan.strategy.as_str()
            ),
        );
    }
    event_loop::spawn_clock(tx.clone(), cancel.clone());
    if let Some(mut problems) = setup.lease_problems {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = problems.recv().await {
                let action = if e.is_lost() {
                    Action::LeaseLost(e.to_string())
                } else {
                    Action::LeaseProblem(e.to_string())
                };
                if tx.send(action).is_err() {
                    return;
                }
            }
        });
    }

    let result = match setup.mode {
        Mode::Headless => {
            event_loop::spawn_signals(tx.clone(), cancel.clone(), true);
            if app.deployment.status == RunStatus::Ready {
                let _ = tx.send(Action::Begin);
            }
            match setup.rehearsal {
                Some(driver) => {
                    let mut driven = Driven {
                        driver,
                        tx: tx.clone(),
                    };
                    event_loop::run(app, &mut driven, rx, shell).await
                }
                None => event_loop::run(app, &mut printer, rx, shell).await,
            }
        }
        // Refused above; a console would be the nearest thing.
        Mode::Console | Mode::Observer => {
            for w in &setup.settings.warnings {
                app.push_log(Level::Warn, w.to_string());
            }
            if app.deployment.status == RunStatus::Ready {
                app.push_log(
                    Level::Info,
                    format!(
                        "plan {} loaded: {} phases; press n to start, ? for keys",
                        plan.name,
                        plan.phases.len()
                    ),
                );
            }
            let Some(mut terminal) = terminal else {
                return Err(SetupError::NoTerminal);
            };
            event_loop::spawn_input(tx.clone(), cancel.clone());
            if let Some(endpoint) = &setup.drills {
                app.drills = Some(super::modal::Drills {
                    endpoint: endpoint.clone(),
                    active: Vec::new(),
                });
                super::drills::spawn_poll(endpoint.clone(), tx.clone(), cancel.clone());
            }
            event_loop::spawn_signals(tx.clone(), cancel.clone(), false);
            if let Some(how) = std::env::var_os("WARROOM_TEST_PANIC_TASK") {
                test_panic_on_sigusr1(how);
            }
            let result = event_loop::run(app, &mut terminal, rx, shell).await;
            super::terminal::give_back();
            tracing::debug!(frames = ?terminal.frames(), "console frames drawn");
            result
        }
    };
    if let Some(runner) = stopper {
        runner.run(Effect::CancelSteps);
        runner.run(Effect::CancelRollback);
    }
    // The last messages (`done`, a rollback) are worth a short wait; never a long one.
    if let Some(n) = &notifier {
        n.flush(Duration::from_secs(5)).await;
    }
    cancel.cancel();
    Ok(result?)
}

/// For tests only (`WARROOM_TEST_PANIC_TASK`, read once as the console starts): on SIGUSR1, a
/// spawned task panics — or, with `thread`, a plain thread — to show the console ends.
fn test_panic_on_sigusr1(how: std::ffi::OsString) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            return;
        };
        usr1.recv().await;
        if how == "thread" {
            let _ = std::thread::Builder::new()
                .name("test-panic".into())
                .spawn(|| panic!("WARROOM_TEST_PANIC_TASK: a test panic in a thread"));
        } else {
            panic!("WARROOM_TEST_PANIC_TASK: a test panic in a spawned task");
        }
    });
}

/// The webhook notifier when the plan has one; its attempts come back as actions to journal.
fn start_notifier(
    plan: &Plan,
    tx: &UnboundedSender<Action>,
    journal: Option<Journal>,
) -> Result<Option<crate::notify::Notifier>, String> {
    let Some(config) = plan.notify.as_ref() else {
        return Ok(None);
    };
    let client = crate::notify::webhook_client().map_err(|e| e.to_string())?;
    let attempts = tx.clone();
    Ok(Some(crate::notify::Notifier::start(
        Some(config),
        client,
        move |attempt| {
            // Journaled here: the last attempts may come after the event loop has ended.
            if let Some(journal) = &journal {
                journal.record(attempt.at, event_loop::notify_record(&attempt));
            }
            let _ = attempts.send(Action::Notified(attempt));
        },
    )))
}

/// Applies one input now, journals it and hands its effects on: for what happens before the
/// event loop takes over (a resume, `--override-window`).
fn apply_live(app: &mut App, shell: &mut Shell, record: Record) {
    let now = app.now;
    let mut effects = update::apply(app, now, record);
    effects.extend(update::follow(app));
    shell.journal_changes(app);
    for effect in effects {
        shell.dispatch(app, effect);
    }
}

/// What the source tasks of one environment need.
struct SourceSet {
    client: kube::Client,
    namespace: String,
    router: Option<Arc<dyn TrafficRouter>>,
    prom: PromClient,
    probes: Vec<sampler::Probe>,
}

/// The source tasks of the environment on screen; replaced when the screen follows the engine
/// to another environment.
pub struct Sources {
    sets: BTreeMap<String, SourceSet>,
    plan: Arc<Plan>,
    tx: UnboundedSender<Action>,
    current: CancellationToken,
    root: CancellationToken,
    /// Which watch the current tasks belong to; actions of earlier ones are dropped.
    pub epoch: u64,
}

impl Sources {
    /// Sources that follow nothing: for tests of the loop.
    #[cfg(test)]
    pub(crate) fn idle(plan: Arc<Plan>, tx: UnboundedSender<Action>) -> Sources {
        let root = CancellationToken::new();
        Sources {
            sets: BTreeMap::new(),
            plan,
            tx,
            current: root.child_token(),
            root,
            epoch: 0,
        }
    }

    /// Stops the current environment's tasks and starts `environment`'s.
    pub fn watch(&mut self, environment: &str) {
        self.current.cancel();
        self.current = self.root.child_token();
        self.epoch += 1;
        let Some(set) = self.sets.get(environment) else {
            return;
        };
        let epoch = self.epoch;
        let sender = |tx: &UnboundedSender<Action>| {
            let tx = tx.clone();
            move |action: Action| {
                let _ = tx.send(Action::Sourced {
                    epoch,
                    action: Box::new(action),
                });
            }
        };
        let workloads = Workloads {
            namespace: set.namespace.clone(),
            stable: self.plan.workload.name.clone(),
            canary: self.plan.workload.canary.clone(),
        };
        let send = sender(&self.tx);
        tokio::spawn(watch::run(
            set.client.clone(),
            workloads,
            move |event| send(Action::Cluster(event)),
            self.current.clone(),
        ));
        if let Some(router) = &set.router {
            let send = sender(&self.tx);
            tokio::spawn(crate::traffic::follow::follow(
                router.clone(),
                move |event| send(Action::Traffic(event)),
                self.current.clone(),
            ));
        }
        let send = sender(&self.tx);
        tokio::spawn(sampler::run(
            set.prom.clone(),
            set.probes.clone(),
            self.plan
                .metrics
                .interval
                .get()
                .max(Duration::from_millis(100)),
            move |event| send(Action::Metrics(event)),
            self.current.clone(),
        ));
    }
}

/// One environment's clients for the effect runner, from a connection: what tests, benches and
/// single-environment tools need without a preflight.
pub fn env_clients(
    plan: &Plan,
    name: &str,
    namespace: &str,
    connection: &Connection,
) -> Result<EnvClients, SetupError> {
    let router = if plan.traffic.is_none() {
        None
    } else {
        Some(router_for(plan, connection, namespace)?)
    };
    Ok(EnvClients {
        name: name.to_string(),
        namespace: namespace.to_string(),
        context: connection.context.clone(),
        client: connection.client.clone(),
        router,
        kubeconfig: None,
    })
}
