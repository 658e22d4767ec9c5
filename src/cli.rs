//! The command line: clap definitions and one runner per subcommand.
//! Runners wire things together and map outcomes to exit codes; they decide nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app::console::{self, ConsoleSetup};
use crate::engine::RunStatus;
use crate::plan::{self, Plan};
use crate::sim::Simulator;

/// The demo plan, built in so `warroom demo` works from any directory.
pub const DEMO_PLAN: &str = include_str!("../plans/demo.yaml");

/// Exit codes, a contract for scripts.
pub mod exit {
    /// Plan complete / valid.
    pub const OK: u8 = 0;
    /// Runtime failure.
    pub const FAILURE: u8 = 1;
    /// Bad input: plan, flags, kubeconfig.
    pub const BAD_INPUT: u8 = 2;
    /// The deployment was rolled back.
    pub const ROLLED_BACK: u8 = 3;
    /// Stopped before completion (quit, paused, interrupted).
    pub const STOPPED: u8 = 4;
}

/// A terminal console for running Kubernetes deployments live.
#[derive(Debug, Parser)]
#[command(name = "warroom", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console on the embedded simulator: no cluster needed.
    ///
    /// Starts a simulated Kubernetes API and Prometheus on loopback, writes a kubeconfig for
    /// them (shown on screen, so kubectl in another pane sees the same cluster) and opens the
    /// console on the demo plan.
    Demo(DemoArgs),
    /// Run the console for PLAN against a real cluster and Prometheus.
    ///
    /// The cluster is the kubeconfig's (`--kubeconfig`, else `$KUBECONFIG`, else
    /// `~/.kube/config`) context named by `--context`, else by the plan environment's `context`,
    /// else the current one. The API server is contacted before the console opens: a bad
    /// context or an unreachable server is reported with both names, exit 2.
    Run(RunArgs),
    /// Run the simulator alone, for kubectl and for rehearsing plans; stops on Ctrl-C.
    Sim(SimArgs),
    /// Check plans: every error and warning of every file, to stderr.
    ///
    /// Each diagnostic reads `path:line:col: error|warning: message`, then the source line and a
    /// caret. Exit 0 when no file has an error, 2 otherwise.
    Validate(ValidateArgs),
    /// Print the JSON Schema (draft 2020-12) of the plan format.
    Schema,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Plan files to check.
    #[arg(value_name = "PLAN", required = true)]
    pub plans: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Plan to run instead of the built-in demo plan.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Make pod start-up and rollouts N times faster.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub speed: f64,
    /// Name shown as the operator at the keys.
    #[arg(long, value_name = "NAME", env = "USER", default_value = "operator")]
    pub operator: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan to run.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: the environment's `context`, then the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Plan environment to watch (default: the first phase's).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Prometheus base URL (default: the environment's `prometheus`).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Name shown as the operator at the keys.
    #[arg(long, value_name = "NAME", env = "USER", default_value = "operator")]
    pub operator: String,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Plan whose environments and objects to seed (default: the built-in demo plan).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Address of the Kubernetes API (the Prometheus API takes the next free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Where to write the kubeconfig.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Make pod start-up and rollouts N times faster.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub speed: f64,
}

/// Loads and checks `path`, or the built-in demo plan; diagnostics go to stderr, and any error
/// refuses the plan.
fn load_plan(path: Option<&Path>) -> Result<Plan, u8> {
    let checked = match path {
        Some(p) => plan::check_file(p),
        None => plan::check(Path::new("plans/demo.yaml"), DEMO_PLAN),
    };
    if !checked.diagnostics.is_empty() {
        eprintln!("{}", checked.render());
    }
    checked.into_result().map_err(|_| exit::BAD_INPUT)
}

/// `warroom validate`: all diagnostics of all files, then a one-line summary.
pub fn validate(args: ValidateArgs) -> u8 {
    let (mut errors, mut warnings) = (0usize, 0usize);
    for path in &args.plans {
        let checked = plan::check_file(path);
        for d in &checked.diagnostics {
            eprintln!("{}", d.render(&checked.source_text));
            match d.severity {
                plan::Severity::Error => errors += 1,
                plan::Severity::Warning => warnings += 1,
            }
        }
    }
    eprintln!(
        "warroom: {} plan(s) checked: {errors} error(s), {warnings} warning(s)",
        args.plans.len()
    );
    if errors == 0 {
        exit::OK
    } else {
        exit::BAD_INPUT
    }
}

/// `warroom schema`: the plan format's JSON Schema on stdout.
pub fn schema() -> u8 {
    print!("{}", plan::schema::schema_text());
    exit::OK
}

fn check_speed(speed: f64) -> Result<(), u8> {
    if speed.is_finite() && speed > 0.0 {
        Ok(())
    } else {
        eprintln!("warroom: --speed must be a positive number, got {speed}");
        Err(exit::BAD_INPUT)
    }
}

/// `warroom demo`.
pub async fn demo(args: DemoArgs) -> u8 {
    match demo_inner(args).await {
        Ok(code) | Err(code) => code,
    }
}

async fn demo_inner(args: DemoArgs) -> Result<u8, u8> {
    check_speed(args.speed)?;
    let plan = Arc::new(load_plan(args.plan.as_deref())?);
    let sim = Simulator::start(
        &plan,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
        args.speed,
    )
    .await
    .map_err(|e| {
        eprintln!("warroom: cannot start the simulator: {e}");
        exit::FAILURE
    })?;
    let (first_env, env) = choose_environment(&plan, None).map_err(|why| {
        eprintln!("warroom: {why}");
        exit::BAD_INPUT
    })?;
    let context = crate::sim::kubeconfig::context_name(&first_env, env);
    let connection = crate::cluster::client::connect(Some(&sim.kubeconfig), Some(&context))
        .await
        .map_err(|e| {
            eprintln!("warroom: {e}");
            exit::FAILURE
        })?;
    let setup = ConsoleSetup {
        plan: plan.clone(),
        environment: first_env,
        connection,
        prometheus: sim.prometheus.clone(),
        operator: operator_name(args.operator),
        kubeconfig_hint: Some(sim.kubeconfig.display().to_string()),
    };
    let app = console::run(setup).await.map_err(|e| {
        eprintln!("warroom: {e}");
        exit::FAILURE
    })?;
    sim.shutdown();
    Ok(report_end(&app))
}

/// The environment to watch: `requested`, else the first phase's; with its definition.
fn choose_environment(
    plan: &Plan,
    requested: Option<String>,
) -> Result<(String, &plan::Environment), String> {
    let name = match requested {
        Some(e) => e,
        None => plan
            .phases
            .first()
            .map(|p| p.environment.clone())
            .ok_or("the plan has no phases")?,
    };
    match plan.environments.get(&name) {
        Some(env) => Ok((name, env)),
        None => {
            let known: Vec<&str> = plan.environments.keys().map(String::as_str).collect();
            Err(format!(
                "environment `{name}` is not in the plan; it has: {}",
                known.join(", ")
            ))
        }
    }
}

/// `USER` can be set and empty (containers, some CI); a blank name would log as "by ".
fn operator_name(given: String) -> String {
    if given.trim().is_empty() {
        "operator".to_string()
    } else {
        given
    }
}

/// How long `run` waits for the API server before calling it unreachable.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `warroom run`.
pub async fn run(args: RunArgs) -> u8 {
    match run_inner(args).await {
        Ok(code) | Err(code) => code,
    }
}

async fn run_inner(args: RunArgs) -> Result<u8, u8> {
    let plan = Arc::new(load_plan(Some(&args.plan))?);
    let bad_input = |message: String| {
        eprintln!("warroom: {message}");
        exit::BAD_INPUT
    };
    let (env_name, env) = choose_environment(&plan, args.env).map_err(bad_input)?;
    let context = args.context.clone().or_else(|| env.context.clone());
    let connection =
        crate::cluster::client::connect(args.kubeconfig.as_deref(), context.as_deref())
            .await
            .map_err(|e| bad_input(e.to_string()))?;
    let context_label = if connection.context.is_empty() {
        "(current)".to_string()
    } else {
        connection.context.clone()
    };
    match tokio::time::timeout(REACH_TIMEOUT, connection.client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(bad_input(format!(
                "cannot reach the Kubernetes API server {} (context {context_label}): {}",
                connection.server,
                crate::cluster::client::explain(&e, "get", "/version")
            )));
        }
        Err(_) => {
            return Err(bad_input(format!(
                "the Kubernetes API server {} (context {context_label}) did not answer within {} s",
                connection.server,
                REACH_TIMEOUT.as_secs()
            )));
        }
    }
    let prometheus = args
        .prometheus
        .clone()
        .or_else(|| env.prometheus.clone())
        .ok_or_else(|| {
            bad_input(format!(
                "no Prometheus for environment `{env_name}`: set environments.{env_name}.prometheus in the plan or pass --prometheus URL"
            ))
        })?;
    let setup = ConsoleSetup {
        plan: plan.clone(),
        environment: env_name,
        connection,
        prometheus,
        operator: operator_name(args.operator),
        kubeconfig_hint: None,
    };
    let app = console::run(setup).await.map_err(|e| {
        eprintln!("warroom: {e}");
        exit::FAILURE
    })?;
    Ok(report_end(&app))
}

/// Prints where the deployment ended, with the last log lines, and picks the exit code.
fn report_end(app: &crate::app::App) -> u8 {
    let status = app.deployment.status;
    let (code, what) = match status {
        RunStatus::Complete => (exit::OK, "plan complete".to_string()),
        RunStatus::RolledBack => (exit::ROLLED_BACK, "rolled back".to_string()),
        _ => {
            let at = app
                .deployment
                .cursor
                .and_then(|c| Some((app.deployment.phases.get(c.phase)?, app.deployment.slot(c)?)))
                .map(|(phase, slot)| format!(" at {}: {}", phase.name, slot.label))
                .unwrap_or_default();
            (
                exit::STOPPED,
                format!(
                    "stopped before completion ({}){at}",
                    status.label().to_lowercase()
                ),
            )
        }
    };
    eprintln!("warroom: {} — {what} (exit {code})", app.plan.name);
    if !app.in_flight.is_empty() {
        eprintln!(
            "warroom: {} change(s) sent to the cluster had not been confirmed at exit; check the traffic object",
            app.in_flight.len()
        );
    }
    eprintln!("last log lines:");
    let skip = app.log.len().saturating_sub(5);
    for line in app.log.iter().skip(skip) {
        eprintln!("  {}", line.text);
    }
    code
}

/// `warroom sim`.
pub async fn sim(args: SimArgs) -> u8 {
    if let Err(code) = check_speed(args.speed) {
        return code;
    }
    let plan = match load_plan(args.plan.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let sim = match Simulator::start(
        &plan,
        args.listen,
        args.kubeconfig_out.as_deref(),
        args.speed,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warroom: cannot start the simulator: {e}");
            return exit::FAILURE;
        }
    };
    // Listen before printing: a script may signal as soon as it has read the lines.
    let shutdown = shutdown_signals();
    println!("kubernetes: {}", sim.kubernetes);
    println!("prometheus: {}", sim.prometheus);
    println!("metrics: {}", sim.metrics);
    println!("kubeconfig: {}", sim.kubeconfig.display());
    shutdown.await;
    sim.shutdown();
    exit::OK
}

/// Registers SIGINT and SIGTERM handlers now; the returned future ends on either.
fn shutdown_signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            (Err(_), Err(_)) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
