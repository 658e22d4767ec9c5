//! Starting the console against a cluster: spawns the source tasks, takes the terminal, runs the
//! loop, gives the terminal back. The one place that wires clients to the app.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::unbounded_channel;
use tokio_util::sync::CancellationToken;

use super::action::Action;
use super::effects::EffectRunner;
use super::event_loop;
use super::model::{App, Target};
use crate::cluster::client::Connection;
use crate::cluster::watch::{self, Workloads};
use crate::metrics::prometheus::{PromClient, PromConfig};
use crate::metrics::sampler;
use crate::plan::{Plan, Router};
use crate::traffic::TrafficRouter;
use crate::traffic::gateway_api::GatewayApiRouter;
use crate::traffic::istio::IstioRouter;
use crate::traffic::nginx::NginxRouter;
use crate::traffic::replicas::ReplicasRouter;
use crate::traffic::smi::SmiRouter;

/// Everything the console needs to start.
pub struct ConsoleSetup {
    pub plan: Arc<Plan>,
    pub environment: String,
    pub connection: Connection,
    pub prometheus: String,
    pub operator: String,
    pub kubeconfig_hint: Option<String>,
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

/// Runs the console in the terminal until the operator quits; returns the final state.
pub async fn run(setup: ConsoleSetup) -> Result<App, SetupError> {
    let plan = setup.plan.clone();
    let env = plan
        .environments
        .get(&setup.environment)
        .ok_or_else(|| SetupError::UnknownEnvironment(setup.environment.clone()))?;
    let namespace = env.namespace.clone();
    let router = router_for(&plan, &setup.connection, &namespace)?;
    let probes = sampler::probes(
        &plan.metrics.queries,
        &namespace,
        &plan.service,
        plan.metrics.rate.get(),
        plan.tracks(),
    )
    .map_err(SetupError::Metrics)?;
    let prom_config = PromConfig::for_environment(&setup.prometheus, env, Duration::from_secs(10))
        .map_err(|e| SetupError::Metrics(e.to_string()))?;
    let prom = PromClient::new(prom_config).map_err(|e| SetupError::Metrics(e.to_string()))?;

    let cancel = CancellationToken::new();
    let (tx, rx) = unbounded_channel::<Action>();
    let mut app = App::new(
        plan.clone(),
        Target {
            environment: setup.environment.clone(),
            namespace: namespace.clone(),
            context: setup.connection.context.clone(),
            kubeconfig_hint: setup.kubeconfig_hint.clone(),
        },
        setup.operator.clone(),
        SystemTime::now(),
    );
    app.push_log(
        crate::app::model::Level::Info,
        format!(
            "plan {} loaded: {} phases; press n to start, ? for keys",
            plan.name,
            plan.phases.len()
        ),
    );

    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(SetupError::NoTerminal);
    }
    // Taken before any task starts, so a failure leaves nothing running.
    let mut terminal = ratatui::try_init()?;
    let runner = EffectRunner::start(router.clone(), tx.clone());
    spawn_sources(
        &setup, &plan, &namespace, router, prom, probes, &tx, &cancel,
    );
    event_loop::spawn_input_sources(tx.clone(), cancel.clone());

    let result = event_loop::run(app, &mut terminal, rx, runner).await;
    ratatui::restore();
    cancel.cancel();
    Ok(result?)
}

#[allow(clippy::too_many_arguments)]
fn spawn_sources(
    setup: &ConsoleSetup,
    plan: &Plan,
    namespace: &str,
    router: Arc<dyn TrafficRouter>,
    prom: PromClient,
    probes: Vec<sampler::Probe>,
    tx: &tokio::sync::mpsc::UnboundedSender<Action>,
    cancel: &CancellationToken,
) {
    let workloads = Workloads {
        namespace: namespace.to_string(),
        stable: plan.workload.name.clone(),
        canary: plan.workload.canary.clone(),
    };
    let cluster_tx = tx.clone();
    tokio::spawn(watch::run(
        setup.connection.client.clone(),
        workloads,
        move |event| {
            let _ = cluster_tx.send(Action::Cluster(event));
        },
        cancel.child_token(),
    ));

    let traffic_tx = tx.clone();
    tokio::spawn(crate::traffic::follow::follow(
        router,
        move |event| {
            let _ = traffic_tx.send(Action::Traffic(event));
        },
        cancel.child_token(),
    ));

    let metrics_tx = tx.clone();
    tokio::spawn(sampler::run(
        prom,
        probes,
        plan.metrics.interval.get(),
        move |event| {
            let _ = metrics_tx.send(Action::Metrics(event));
        },
        cancel.child_token(),
    ));
}
