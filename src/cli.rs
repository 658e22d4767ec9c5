//! The command line: clap definitions and one runner per subcommand.
//! Runners wire things together and map outcomes to exit codes; they decide nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app::console::{self, Link, ResumeFrom, RunSetup};
use crate::app::model::Mode;
use crate::engine::AutoApprove;
use crate::engine::RunStatus;
use crate::journal::record::EnvironmentRecord;
use crate::journal::session::{self, PlanSource};
use crate::journal::{Journal, Record};
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
    /// Stopped before completion: quit, interrupted, or (headless) waiting for a person.
    pub const STOPPED: u8 = 4;
}

/// A terminal console for running Kubernetes deployments live.
#[derive(Debug, Parser)]
#[command(name = "warroom", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How much goes to the log file, $XDG_STATE_HOME/warroom/warroom.log
    /// (~/.local/state/warroom/warroom.log): never over the screen. RUST_LOG, when set, wins.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console on the embedded simulator: no cluster needed.
    ///
    /// Starts a simulated Kubernetes API and Prometheus on loopback, writes a kubeconfig for
    /// them (shown on screen, so kubectl in another pane sees the same cluster) and opens the
    /// console on the demo plan.
    Demo(DemoArgs),
    /// Carry out PLAN against real clusters: the console, or `--headless` without one.
    ///
    /// Every environment the plan's phases use is connected through the kubeconfig
    /// (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) with the environment's
    /// `context` (else the current one), and checked before anything changes: the context, the
    /// API server, the permissions every step and rollback action needs
    /// (SelfSubjectAccessReview), the workload, canary, traffic object and ConfigMaps, and every
    /// metric query. Any failure: exit 2, nothing changed.
    ///
    /// Exit codes: 0 plan complete; 1 runtime failure (including ROLLBACK FAILED); 2 bad input
    /// or preflight failure; 3 rolled back (every action of the tier succeeded); 4 stopped
    /// before completion (quit, interrupted, or headless and waiting for a person).
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
    /// Print a deployment report computed from a run's JOURNAL: summary, timeline, who did what,
    /// time per phase, breaches, rollbacks and the plan's success targets (met, missed, unknown
    /// or n/a, each with its figure and how it was computed).
    ///
    /// Reads the journal only: no cluster or Prometheus is needed, so it works any time after
    /// the run, and on a run that was stopped without finishing. A torn last line (the process
    /// was killed while writing it) is skipped with a warning. `docs/report.md` describes every
    /// figure and the JSON shape.
    ///
    /// Exit codes: 0 report printed (whatever the run's outcome); 2 the journal cannot be read
    /// or is not a valid journal (the message names the file and line).
    Report(ReportArgs),
    /// Follow a run from its journal, read-only: the same console, for a second engineer or
    /// stakeholders.
    ///
    /// The run's state is rebuilt from JOURNAL as `--resume` would rebuild it, then kept up with
    /// the lines the run appends (checked every 200 ms). Nothing is changed and nothing is
    /// written: n, p, +, -, !, x and : only say what they would do; q quits, ? shows help. The
    /// header says OBSERVER and who is at the run's keys.
    ///
    /// Pods are watched live when the cluster can be reached: the context of the environment on
    /// screen, as the journal names it, through `--kubeconfig` (else `$KUBECONFIG`, else
    /// `~/.kube/config`), with list and watch only. Without a connection the watcher still
    /// follows the journal. Weights and metrics always come from the journal.
    ///
    /// Exit codes: 0 quit; 1 no terminal (stdin and stdout must be a tty); 2 the journal cannot
    /// be read or is not a valid journal (the message names the file and line).
    Watch(WatchArgs),
    /// Prove PLAN and every rollback tier on the embedded simulator, before the window.
    ///
    /// Every environment the plan uses gets a simulator of its own, seeded from the plan
    /// (namespace, both Deployments — the stable with a revision history, so `undo` has
    /// somewhere to go —, traffic object, ConfigMaps, an hour of metrics). The plan's contexts
    /// and Prometheus are replaced by the simulators': warroom contacts nothing the plan names,
    /// whatever it says. Each scenario runs on fresh simulators, headless, approvals and pauses passed:
    ///
    /// - straight: the plan to its end; the cluster as its steps say.
    ///
    /// - breach-PHASE: an error spike during the phase's first hold: the plan's on_breach, and
    ///   the hold does not pass.
    ///
    /// - no-data-PHASE: Prometheus down during that hold: the plan's no_data; no pass.
    ///
    /// - tier-NAME: the tier run after the last weight step: every action succeeds, weight 0,
    ///   flags and ConfigMaps back, the undo done.
    ///
    /// - api-outage: a 20 s API outage in the middle of a paced weight step (else just before
    ///   a hold ends): ridden out.
    ///
    /// Holds, paced weights and countdowns are capped at --max-hold, and the report says so.
    /// `run` steps are printed, not run, unless the step says `rehearse: true` (then they run
    /// with KUBECONFIG pointing at the simulator, but this machine's network and credentials);
    /// webhooks are printed, not sent.
    ///
    /// Before a window: `warroom validate plan.yaml && warroom rehearse plan.yaml`.
    ///
    /// Exit codes: 0 every scenario passed; 1 a scenario failed (the first is named on
    /// stderr); 2 bad input (plan, flags, an unknown scenario).
    Rehearse(RehearseArgs),
}

#[derive(Debug, Args)]
pub struct RehearseArgs {
    /// The plan to rehearse.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// Run only this scenario (repeat for more): straight, breach-PHASE, no-data-PHASE,
    /// tier-NAME, api-outage. All by default.
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Cap every hold, paced weight interval and rollback countdown at this.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_plan_duration)]
    pub max_hold: std::time::Duration,
    /// Write the report here instead of to stdout.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// `md`: Markdown for the change ticket; `json`: the same for scripts.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Scenarios run at once, each on its own simulators.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Stop and fail a scenario that runs longer than this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_plan_duration)]
    pub scenario_limit: std::time::Duration,
}

/// A duration as plans write them (`10s`, `1m30s`), for flags.
fn parse_plan_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = plan::duration::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than 0s".into());
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The run's journal (JSON lines), as `warroom run` writes it.
    #[arg(value_name = "JOURNAL")]
    pub journal: PathBuf,
    /// kubeconfig for the live pod watch (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub look: LookArgs,
}

/// The console's looks and keys: `--theme` and `--config` (docs/themes.md).
#[derive(Debug, Clone, Default, Args)]
pub struct LookArgs {
    /// Colours: a built-in theme (default, light, high-contrast, colorblind) or a theme file.
    /// Beats the config file's `theme:`.
    #[arg(long, value_name = "NAME|FILE")]
    pub theme: Option<String>,
    /// The config file: theme, operator, keys (default: $XDG_CONFIG_HOME/warroom/config.yaml,
    /// else ~/.config/warroom/config.yaml). Its mistakes are warnings, never a refusal to start.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl LookArgs {
    /// The config file and `--theme`, read; each warning goes to stderr now (and to the
    /// console's log when it starts).
    pub fn settings(&self) -> crate::config::Settings {
        let settings = crate::config::Settings::load(self.config.as_deref(), self.theme.as_deref());
        for w in &settings.warnings {
            eprintln!("warroom: warning: {w}");
        }
        settings
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's journal (JSON lines).
    #[arg(value_name = "JOURNAL")]
    pub journal: PathBuf,
    /// `md`: Markdown to paste in a ticket; `json`: the same figures for scripts.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
}

/// Output formats of `warroom report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// Pretty JSON.
    Json,
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
    /// Name shown as the operator at the keys (default: the config file's `operator:`, then
    /// $USER, then `operator`).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    #[command(flatten)]
    pub look: LookArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan to run.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context, for plans with one environment only (each environment of a larger
    /// plan names its own `context`).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Prometheus base URL for every environment (default: each environment's `prometheus`).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Name of the operator at the keys: approvals pass only for listed names (default: the
    /// config file's `operator:`, then $USER, then `operator`).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// No console: one line per event on stdout. Whatever would wait for a person ends the
    /// run with exit 4; automatic rollbacks run (exit 3).
    #[arg(long)]
    pub headless: bool,
    /// With --headless: JSON lines instead of text.
    #[arg(long, requires = "headless")]
    pub json: bool,
    /// Pass `check`, `approve` and phase `approval` gates as the operator; `=all` passes
    /// `pause` steps too. Each is logged.
    #[arg(long, value_name = "WHAT", num_args = 0..=1, require_equals = true, default_missing_value = "gates", value_parser = ["gates", "all"])]
    pub auto_approve: Option<String>,
    /// Run the preflight and print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start phases outside their deployment `window`; the reason is logged with the operator.
    #[arg(long, value_name = "REASON")]
    pub override_window: Option<String>,
    /// The run's journal (default: $XDG_STATE_HOME/warroom/<plan>-<UTC start>.jsonl). With
    /// --resume: the journal to continue (default: the plan's newest).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Continue a run that was quit, killed or crashed, from its journal: steps done are not
    /// repeated, approvals stand, work without a recorded result is checked against the
    /// cluster first, and a rollback under way is finished first.
    #[arg(long, conflicts_with = "dry_run")]
    pub resume: bool,
    /// With --resume: continue even though the plan changed since the journal began (the
    /// changes are journaled).
    #[arg(long, requires = "resume")]
    pub force: bool,
    #[command(flatten)]
    pub look: LookArgs,
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
    load_plan_source(path).map(|(plan, _)| plan)
}

/// The plan and its text as read (the journal keeps the text and its SHA-256).
fn load_plan_source(path: Option<&Path>) -> Result<(Plan, String), u8> {
    let checked = match path {
        Some(p) => plan::check_file(p),
        None => plan::check(Path::new("plans/demo.yaml"), DEMO_PLAN),
    };
    if !checked.diagnostics.is_empty() {
        eprintln!("{}", checked.render());
    }
    let text = checked.source_text.clone();
    checked
        .into_result()
        .map(|plan| (plan, text))
        .map_err(|_| exit::BAD_INPUT)
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

/// `warroom report`: the report on stdout; any reading problem names the file and exits 2.
pub fn report(args: ReportArgs) -> u8 {
    let built = crate::report::read(&args.journal).and_then(|journal| journal.report());
    match built {
        Ok(report) => {
            match args.format {
                ReportFormat::Md => print!("{}", crate::report::markdown(&report)),
                ReportFormat::Json => println!("{}", crate::report::json(&report)),
            }
            exit::OK
        }
        Err(
            e @ (crate::report::ReportError::Read { .. }
            | crate::report::ReportError::BadLine { .. }),
        ) => {
            eprintln!("warroom: {e}");
            exit::BAD_INPUT
        }
        Err(e) => {
            eprintln!("warroom: {}: {e}", args.journal.display());
            exit::BAD_INPUT
        }
    }
}

/// `warroom watch`: the observer console until `q`; a journal that cannot be followed exits 2.
pub async fn watch(args: WatchArgs) -> u8 {
    let setup = crate::app::watch::WatchSetup {
        journal: args.journal,
        kubeconfig: args.kubeconfig,
        settings: args.look.settings(),
    };
    match crate::app::watch::run(setup).await {
        Ok(_) if crate::panics::message().is_some() => exit::FAILURE,
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("warroom: {e}");
            if e.is_bad_input() {
                exit::BAD_INPUT
            } else {
                exit::FAILURE
            }
        }
    }
}

/// `warroom rehearse`: the report on stdout (or `--report FILE`), progress on stderr.
pub async fn rehearse(args: RehearseArgs) -> u8 {
    let (plan, text) = match load_plan_source(Some(&args.plan)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let options = crate::rehearse::Options {
        plan_path: args.plan.clone(),
        plan_text: text,
        scenarios: args.scenarios,
        max_hold: args.max_hold,
        jobs: usize::from(args.jobs),
        deadline: args.scenario_limit,
    };
    let count = match crate::rehearse::choose(&plan, &options.scenarios) {
        Ok(chosen) => chosen.len(),
        Err(e) => {
            eprintln!("warroom: {e}");
            return exit::BAD_INPUT;
        }
    };
    eprintln!(
        "warroom: rehearsing {} on the simulator ({count} scenario(s), holds capped at {})",
        plan.name,
        plan::duration::format_duration(options.max_hold)
    );
    let done = crate::rehearse::rehearse(&plan, &options, |s| {
        let mark = if s.passed { "✓ pass" } else { "✗ FAIL" };
        let why = s
            .reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default();
        eprintln!(
            "  {mark}  {} ({}){why}",
            s.name,
            crate::rehearse::report::seconds(s.duration_ms)
        );
    })
    .await;
    let rehearsal = match done {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warroom: {e}");
            return if e.is_bad_input() {
                exit::BAD_INPUT
            } else {
                exit::FAILURE
            };
        }
    };
    let text = match args.format {
        ReportFormat::Md => crate::rehearse::report::markdown(&rehearsal),
        ReportFormat::Json => format!("{}\n", crate::rehearse::report::json(&rehearsal)),
    };
    match &args.report {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("warroom: cannot write {}: {e}", path.display());
                print!("{text}");
                return exit::FAILURE;
            }
            eprintln!("warroom: report {}", path.display());
        }
        None => print!("{text}"),
    }
    eprintln!("warroom: {}", rehearsal.rollback_success);
    match crate::rehearse::report::first_failure(&rehearsal) {
        None => exit::OK,
        Some(first) => {
            eprintln!("warroom: rehearsal failed: {first}");
            exit::FAILURE
        }
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
    let settings = args.look.settings();
    let (mut plan, text) = load_plan_source(args.plan.as_deref())?;
    let source_path = args
        .plan
        .clone()
        .unwrap_or_else(|| PathBuf::from("plans/demo.yaml"));
    // Every environment reaches the simulator through its own context, named as the
    // simulator's kubeconfig names it.
    for (name, env) in plan.environments.iter_mut() {
        env.context = Some(crate::sim::kubeconfig::context_name(name, env));
    }
    let plan = Arc::new(plan);
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
    let plan_dir = match &args.plan {
        Some(p) => plan_dir_of(p),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let options = crate::preflight::Options {
        kubeconfig: Some(sim.kubeconfig.clone()),
        context: None,
        prometheus: Some(sim.prometheus.clone()),
        timeout: REACH_TIMEOUT,
    };
    let code = start_run(
        plan,
        (source_path, text),
        plan_dir,
        options,
        Mode::Console,
        RunFlags {
            operator: operator_name(args.operator, settings.operator.clone(), user()),
            auto_approve: AutoApprove::Nothing,
            json: false,
            dry_run: false,
            kubeconfig_hint: Some(sim.kubeconfig.display().to_string()),
            drills: Some(format!("{}/sim/faults", sim.kubernetes)),
            quiet_preflight: true,
            override_window: None,
            journal: None,
            resume: false,
            force: false,
            settings,
            rehearsal: None,
        },
    )
    .await;
    sim.shutdown();
    code
}

/// The directory `run` steps start in: the plan file's.
fn plan_dir_of(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Who is at the keys: `--operator`, else the config file's `operator:`, else `$USER`, else
/// `operator`. A blank name is passed over: `USER` can be set and empty (containers, some CI),
/// and a blank name would log as "by ".
fn operator_name(flag: Option<String>, config: Option<String>, user: Option<String>) -> String {
    [flag, config, user]
        .into_iter()
        .flatten()
        .find(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "operator".to_string())
}

/// `$USER`, the default operator name.
fn user() -> Option<String> {
    std::env::var("USER").ok()
}

/// How long the preflight waits for an API server or Prometheus before calling it unreachable.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The same for a rehearsal's run: its simulators are this process's own, so one slow to answer
/// is starved by the other scenarios starting (each writes an hour of metrics first), not
/// unreachable.
const REHEARSAL_REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `warroom run`.
pub async fn run(args: RunArgs) -> u8 {
    match run_inner(args).await {
        Ok(code) | Err(code) => code,
    }
}

/// How a run is presented and who is at the keys.
struct RunFlags {
    operator: String,
    auto_approve: AutoApprove,
    json: bool,
    dry_run: bool,
    kubeconfig_hint: Option<String>,
    /// The demo simulator's fault endpoint, for `D`.
    drills: Option<String>,
    /// Print the preflight checklist only when something failed (the demo).
    quiet_preflight: bool,
    override_window: Option<String>,
    /// `--journal`.
    journal: Option<PathBuf>,
    resume: bool,
    force: bool,
    /// The config file and `--theme`: the console's theme and keys.
    settings: crate::config::Settings,
    /// `warroom rehearse`: what drives the headless run.
    rehearsal: Option<Box<dyn console::Driver>>,
}

async fn run_inner(args: RunArgs) -> Result<u8, u8> {
    let settings = args.look.settings();
    let (plan, text) = load_plan_source(Some(&args.plan))?;
    let plan = Arc::new(plan);
    let used = crate::preflight::environments_used(&plan);
    if args.context.is_some() && used.len() > 1 {
        eprintln!(
            "warroom: --context applies only to plans with one environment; this plan's phases use {}: set `context` under each of environments.{{{}}} in the plan instead",
            used.len(),
            used.join(",")
        );
        return Err(exit::BAD_INPUT);
    }
    let options = crate::preflight::Options {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        prometheus: args.prometheus.clone(),
        timeout: REACH_TIMEOUT,
    };
    let mode = if args.headless {
        Mode::Headless
    } else {
        Mode::Console
    };
    let auto_approve = match args.auto_approve.as_deref() {
        None => AutoApprove::Nothing,
        Some("all") => AutoApprove::All,
        Some(_) => AutoApprove::Gates,
    };
    start_run(
        plan,
        (args.plan.clone(), text),
        plan_dir_of(&args.plan),
        options,
        mode,
        RunFlags {
            operator: operator_name(args.operator, settings.operator.clone(), user()),
            auto_approve,
            json: args.json,
            dry_run: args.dry_run,
            kubeconfig_hint: None,
            drills: None,
            quiet_preflight: false,
            override_window: args.override_window,
            journal: args.journal,
            resume: args.resume,
            force: args.force,
            settings,
            rehearsal: None,
        },
    )
    .await
}

/// One scenario of `warroom rehearse`: `plan`, already pointed at its simulators (each
/// environment's `context` in `kubeconfig`, its `prometheus` the simulator's), carried out as
/// `warroom run PLAN --headless --auto-approve=all --override-window` would carry it out —
/// preflight, leases, snapshots, journal to `journal` — but driven by `driver` and printing
/// nothing but a failed preflight. The exit code is `run`'s.
pub(crate) async fn rehearsal_run(
    plan: Arc<Plan>,
    source: (PathBuf, String),
    kubeconfig: PathBuf,
    journal: PathBuf,
    driver: Box<dyn console::Driver>,
) -> u8 {
    let plan_dir = plan_dir_of(&source.0);
    let options = crate::preflight::Options {
        kubeconfig: Some(kubeconfig),
        context: None,
        prometheus: None,
        timeout: REHEARSAL_REACH_TIMEOUT,
    };
    let flags = RunFlags {
        operator: "rehearsal".to_string(),
        auto_approve: AutoApprove::All,
        json: false,
        dry_run: false,
        kubeconfig_hint: None,
        drills: None,
        quiet_preflight: true,
        override_window: Some("a rehearsal on the simulator".to_string()),
        journal: Some(journal),
        resume: false,
        force: false,
        settings: crate::config::Settings::default(),
        rehearsal: Some(driver),
    };
    match start_run(plan, source, plan_dir, options, Mode::Headless, flags).await {
        Ok(code) | Err(code) => code,
    }
}

/// Preflight, then (unless a dry run) the ConfigMap snapshots and the run itself.
async fn start_run(
    plan: Arc<Plan>,
    (plan_path, plan_text): (PathBuf, String),
    plan_dir: PathBuf,
    options: crate::preflight::Options,
    mode: Mode,
    flags: RunFlags,
) -> Result<u8, u8> {
    // A rehearsal reports for itself: the run prints nothing of its own.
    let quiet = flags.rehearsal.is_some();
    let source = PlanSource {
        plan: &plan,
        path: &plan_path,
        text: &plan_text,
    };
    let resuming = if flags.resume {
        let path = session::resume_path(flags.journal.as_deref(), &plan.name).map_err(|e| {
            eprintln!("warroom: {e}");
            exit::BAD_INPUT
        })?;
        let (read, resume) = session::check_resume(
            &path,
            &source,
            flags.force,
            &flags.operator,
            flags.auto_approve.as_str(),
        )
        .map_err(|e| {
            eprintln!("warroom: {e}");
            exit::BAD_INPUT
        })?;
        if let Some(torn) = &read.torn {
            eprintln!("warroom: warning: {torn}");
        }
        if resume.forced {
            eprintln!(
                "warroom: warning: the plan changed since the journal began; resuming anyway (--force), and the journal says so"
            );
        }
        Some((path, read, resume))
    } else {
        None
    };
    let checked = crate::preflight::run(&plan, &options).await;
    if !flags.quiet_preflight || !checked.passed() {
        eprintln!("preflight:");
        for line in &checked.lines {
            let mark = match line.status {
                crate::preflight::CheckStatus::Pass => "✓",
                crate::preflight::CheckStatus::Warn => "!",
                crate::preflight::CheckStatus::Fail => "✗",
            };
            eprintln!("  {mark} {}: {}", line.environment, line.text);
        }
    }
    if !checked.passed() {
        let failures: Vec<String> = checked
            .failures()
            .map(|l| format!("{}: {}", l.environment, l.text))
            .collect();
        eprintln!(
            "warroom: preflight failed ({} problem(s)); nothing was changed:",
            failures.len()
        );
        for f in failures {
            eprintln!("  {f}");
        }
        return Err(exit::BAD_INPUT);
    }
    if flags.dry_run {
        print!("{}", dry_run_listing(&plan, &checked));
        eprintln!("warroom: dry run: preflight passed; nothing was changed");
        return Ok(exit::OK);
    }
    // Before the lease and the journal: a console that cannot start leaves nothing behind.
    if mode == Mode::Console {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            eprintln!("warroom: {}", console::SetupError::NoTerminal);
            return Err(exit::FAILURE);
        }
    }
    let scratch = Scratch::new("warroom").map_err(|e| {
        eprintln!("warroom: cannot create a directory for run steps' kubeconfigs: {e}");
        exit::FAILURE
    })?;
    let mut links = Vec::new();
    for env in checked.envs {
        let kubeconfig = crate::exec::write_phase_kubeconfig(
            options.kubeconfig.as_deref(),
            &env.context,
            &env.namespace,
            &scratch.0,
        )
        .map_err(|e| {
            eprintln!(
                "warroom: cannot write the kubeconfig for {}'s run steps: {e}",
                env.name
            );
            exit::FAILURE
        })?;
        links.push(Link {
            name: env.name,
            context: env.context,
            namespace: env.namespace,
            connection: env.connection,
            prom: env.prom,
            kubeconfig: Some(kubeconfig),
        });
    }
    let environments: Vec<EnvironmentRecord> = links
        .iter()
        .map(|l| EnvironmentRecord {
            name: l.name.clone(),
            context: l.context.clone(),
            namespace: l.namespace.clone(),
        })
        .collect();
    let run_id = match &resuming {
        Some((_, read, _)) => read.start().map(|s| s.run_id.clone()).unwrap_or_default(),
        None => session::run_id(),
    };
    let holder = crate::lease::Holder {
        identity: crate::lease::default_identity(&flags.operator),
        run_id: run_id.clone(),
    };
    let leases = take_leases(&plan, &links, &holder, flags.resume).await?;
    // Renewed from now on: a slow snapshot or resume check must not let it expire.
    let (lease_tx, lease_problems) = tokio::sync::mpsc::unbounded_channel();
    for (_, guard, _) in &leases.held {
        let tx = lease_tx.clone();
        guard.clone().spawn_renewal(
            crate::lease::LEASE_DURATION / 3,
            move |e| {
                let _ = tx.send(e);
            },
            leases.renewal.clone(),
        );
    }
    let (journal, snapshots, resume) = match open_journal(
        resuming,
        &plan,
        &links,
        &source,
        &flags,
        mode,
        run_id,
        &environments,
    )
    .await
    {
        Ok(opened) => opened,
        Err(code) => {
            leases.release().await;
            return Err(code);
        }
    };
    for (environment, guard, taken) in &leases.held {
        let detail = match taken {
            crate::lease::Taken::Fresh => format!("taken as {}", guard.holder().identity),
            crate::lease::Taken::Resumed => "taken over by this resume of the same run".to_string(),
            crate::lease::Taken::Expired { previous } => {
                format!("taken over from {previous}, whose lease had expired")
            }
        };
        journal.record(
            std::time::SystemTime::now(),
            Record::Lease {
                environment: environment.clone(),
                event: "acquired".into(),
                detail: format!("{}/{}: {detail}", guard.namespace(), guard.name()),
            },
        );
    }
    if !quiet {
        eprintln!("warroom: journal {}", journal.path().display());
    }
    tracing::info!(
        plan = %plan.name,
        journal = %journal.path().display(),
        resume = flags.resume,
        "run starts"
    );
    let setup = RunSetup {
        plan: plan.clone(),
        plan_dir,
        links,
        operator: flags.operator,
        kubeconfig_hint: flags.kubeconfig_hint,
        drills: flags.drills,
        mode,
        auto_approve: flags.auto_approve,
        json: flags.json,
        snapshots,
        override_window: flags.override_window,
        journal: Some(journal.clone()),
        resume,
        lease_problems: Some(lease_problems),
        settings: flags.settings,
        rehearsal: flags.rehearsal,
    };
    let result = console::run(setup).await;
    let app = match result {
        Ok(app) => app,
        Err(e) => {
            eprintln!("warroom: {e}");
            journal.record(
                std::time::SystemTime::now(),
                Record::End {
                    exit: i32::from(exit::FAILURE),
                    status: "NOT STARTED".into(),
                    reason: Some(e.to_string()),
                },
            );
            journal.close().await;
            leases.release().await;
            return Err(exit::FAILURE);
        }
    };
    drop(scratch);
    let code = report_end(&app, quiet);
    journal.record(
        std::time::SystemTime::now(),
        Record::End {
            exit: i32::from(code),
            status: app.deployment.status.label().to_string(),
            reason: app.stopped.clone(),
        },
    );
    journal.close().await;
    tracing::info!(plan = %plan.name, exit = code, status = app.deployment.status.label(), "run ends");
    // The record is complete before the lease is given back: a kill while releasing leaves a
    // finished run, not one that looks killed.
    leases.release().await;
    if !quiet {
        eprintln!("warroom: journal {}", journal.path().display());
        write_report(journal.path());
    }
    Ok(code)
}

/// The run's journal: a new one with its `start` and `snapshot` lines, or the one being
/// resumed, reopened; with the ConfigMap snapshots, and the lines a resume replays.
#[allow(clippy::too_many_arguments)]
async fn open_journal(
    resuming: Option<(
        PathBuf,
        crate::journal::read::Read,
        crate::journal::record::Resume,
    )>,
    plan: &Plan,
    links: &[Link],
    source: &PlanSource<'_>,
    flags: &RunFlags,
    mode: Mode,
    run_id: String,
    environments: &[EnvironmentRecord],
) -> Result<(Journal, crate::app::carry::Snapshots, Option<ResumeFrom>), u8> {
    Ok(match resuming {
        Some((path, read, resume)) => {
            let namespaces = links
                .iter()
                .map(|l| (l.name.clone(), l.namespace.clone()))
                .collect();
            let snapshots = session::snapshots(&read, &namespaces);
            let journal = session::reopen(&path, &read).map_err(|e| {
                eprintln!("warroom: {e}");
                exit::BAD_INPUT
            })?;
            let resume = ResumeFrom {
                lines: read.lines,
                resume,
            };
            (
                journal,
                Arc::new(std::sync::Mutex::new(snapshots)),
                Some(resume),
            )
        }
        None => {
            // Snapshots first: a run that cannot take them leaves no journal behind to be
            // mistaken for the plan's newest.
            let snapshots = crate::app::carry::snapshot_all(plan, links)
                .await
                .map_err(|e| {
                    eprintln!("warroom: {e}; nothing was changed");
                    exit::FAILURE
                })?;
            let now = std::time::SystemTime::now();
            let path = session::new_path(flags.journal.as_deref(), &plan.name, now)
                .and_then(|p| session::create(&p).map(|file| (p, file)));
            let (path, file) = path.map_err(|e| {
                eprintln!("warroom: {e}");
                exit::BAD_INPUT
            })?;
            let journal = Journal::start(file, &path, 0);
            let mode_name = match mode {
                Mode::Headless => "headless",
                Mode::Console => "console",
                Mode::Observer => "observer",
            };
            let start = session::start_record(
                run_id,
                source,
                environments.to_vec(),
                &flags.operator,
                mode_name,
                flags.auto_approve.as_str(),
                flags.override_window.clone(),
            );
            journal.record(now, Record::Start(start));
            let taken = snapshots.lock().map(|s| s.clone()).unwrap_or_default();
            for (environment, snap) in taken {
                journal.record(
                    now,
                    Record::Snapshot {
                        environment,
                        configmaps: snap.items,
                    },
                );
            }
            (journal, snapshots, None)
        }
    })
}

/// The plan's leases this run holds, and what renews them.
struct Leases {
    held: Vec<(String, Arc<crate::lease::LeaseGuard>, crate::lease::Taken)>,
    renewal: tokio_util::sync::CancellationToken,
}

impl Leases {
    /// Stops renewing and gives the leases back, so the next run need not wait for them to
    /// expire; an API server that does not answer is given 5 s per lease.
    async fn release(&self) {
        self.renewal.cancel();
        for (environment, guard, _) in &self.held {
            match tokio::time::timeout(std::time::Duration::from_secs(5), guard.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("warroom: warning: {environment}: {e}"),
                Err(_) => eprintln!(
                    "warroom: warning: {environment}: lease {}/{} not released in 5 s; it expires by itself",
                    guard.namespace(),
                    guard.name()
                ),
            }
        }
    }
}

/// Takes the plan's lease in every environment; a live lease of another run refuses the run
/// (exit 2) naming its holder, and the leases already taken are given back. A resume waits for
/// its own run's lease to expire (at most its duration) when the process it belonged to may
/// still be running.
async fn take_leases(
    plan: &Plan,
    links: &[Link],
    holder: &crate::lease::Holder,
    resume: bool,
) -> Result<Leases, u8> {
    use crate::lease::LeaseError;
    let mut leases = Leases {
        held: Vec::new(),
        renewal: tokio_util::sync::CancellationToken::new(),
    };
    let wait_until = std::time::Instant::now()
        + crate::lease::LEASE_DURATION
        + std::time::Duration::from_secs(5);
    for link in links {
        let mut told = false;
        let got = loop {
            let got = crate::lease::acquire(
                link.connection.client.clone(),
                &link.namespace,
                &plan.name,
                holder,
                std::time::SystemTime::now(),
            )
            .await;
            let Err(LeaseError::StillRunning { uid, .. }) = &got else {
                break Some(got);
            };
            // Environments in one namespace of one cluster share the plan's Lease: this run
            // already holds it.
            let mut shared = false;
            for (_, guard, _) in &leases.held {
                shared |= uid.is_some() && guard.lease().await.metadata.uid == *uid;
            }
            if shared {
                break None;
            }
            if !resume || std::time::Instant::now() >= wait_until {
                break Some(got);
            }
            if !told {
                eprintln!(
                    "warroom: {}: this run's lease is still being renewed; waiting up to {} s for it to expire (a killed process stops renewing it)",
                    link.name,
                    crate::lease::LEASE_DURATION.as_secs() + 5
                );
                told = true;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        let Some(got) = got else { continue };
        match got {
            Ok((guard, how)) => leases.held.push((link.name.clone(), Arc::new(guard), how)),
            Err(e) => {
                leases.release().await;
                let code = if matches!(e, LeaseError::Held { .. } | LeaseError::StillRunning { .. })
                {
                    eprintln!("warroom: {e}; nothing was changed");
                    exit::BAD_INPUT
                } else {
                    eprintln!("warroom: {}: {e}; nothing was changed", link.name);
                    exit::FAILURE
                };
                return Err(code);
            }
        }
    }
    Ok(leases)
}

/// Writes the run's report next to its journal (`<journal>.report.md`); a failure is a warning:
/// `warroom report JOURNAL` makes it again.
fn write_report(journal: &Path) {
    let target = journal.with_extension("report.md");
    let made = crate::report::read(journal)
        .and_then(|j| j.report())
        .map(|r| crate::report::markdown(&r));
    match made.map(|text| std::fs::write(&target, text)) {
        Ok(Ok(())) => eprintln!("warroom: report {}", target.display()),
        Ok(Err(e)) => eprintln!("warroom: warning: cannot write {}: {e}", target.display()),
        Err(e) => eprintln!("warroom: warning: no report: {e}"),
    }
}

/// A private directory (owner only) for a run's or a rehearsal's own files, removed at the end.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    /// `$TMPDIR/<prefix>-<pid>-<nanoseconds>-<n>`: unique even for runs started in the same
    /// nanosecond by one process (a rehearsal's scenarios).
    pub(crate) fn new(prefix: &str) -> std::io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{stamp}-{n}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run would do, phase by phase, and each rollback tier: `--dry-run`'s listing.
fn dry_run_listing(plan: &Plan, checked: &crate::preflight::Preflight) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "plan {} ({}):", plan.name, plan.strategy.as_str());
    let deployment = crate::engine::Deployment::new(Arc::new(plan.clone()));
    for phase in &deployment.phases {
        let at = checked
            .env(&phase.environment)
            .map(|e| format!("{} @ {}", e.namespace, e.context))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "phase {} — environment {} ({at})",
            phase.name, phase.environment
        );
        for (i, slot) in phase.slots.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:>2}. {}",
                i + 1,
                describe_effect(&slot.label, &slot.work)
            );
        }
    }
    for tier in [
        crate::plan::TierName::Immediate,
        crate::plan::TierName::Gradual,
        crate::plan::TierName::Full,
    ] {
        let Some(t) = plan.rollback.tier(tier) else {
            continue;
        };
        let target = t
            .target
            .map(|d| format!(" (target {d})"))
            .unwrap_or_default();
        let _ = writeln!(out, "rollback {}{target}:", tier.as_str());
        for action in crate::engine::state::rollback_actions(plan, tier) {
            let _ = writeln!(out, "   - {}", describe_effect(&action.label, &action.work));
        }
    }
    out
}

/// A step's label with what carrying it out means, for the dry run.
fn describe_effect(label: &str, work: &crate::engine::StepWork) -> String {
    use crate::engine::{StepWork, Work};
    match work {
        StepWork::Effect(Work::Run { cmd, timeout, .. }) => format!(
            "run `sh -c {cmd:?}` in the plan's directory{}",
            timeout
                .map(|t| format!(", timeout {}", crate::plan::duration::format_duration(t)))
                .unwrap_or_default()
        ),
        StepWork::Gate(_) => format!("{label} (waits for an operator)"),
        StepWork::Hold(_) => format!("{label} (thresholds judged on every sample)"),
        _ => label.to_string(),
    }
}

/// Prints where the deployment ended, with the last log lines, and picks the exit code.
fn report_end(app: &crate::app::App, quiet: bool) -> u8 {
    let status = app.deployment.status;
    let (code, what) = match status {
        // Whatever state the run was left in, a panic is warroom's failure.
        _ if crate::panics::message().is_some() => (
            exit::FAILURE,
            format!("ended by a panic (the run was {})", status.label()),
        ),
        RunStatus::Complete => (exit::OK, "plan complete".to_string()),
        RunStatus::RolledBack => (
            exit::ROLLED_BACK,
            app.deployment.headline(app.now).to_lowercase(),
        ),
        RunStatus::RollbackFailed => (exit::FAILURE, app.deployment.headline(app.now)),
        _ => {
            let at = app
                .deployment
                .cursor
                .and_then(|c| Some((app.deployment.phases.get(c.phase)?, app.deployment.slot(c)?)))
                .map(|(phase, slot)| format!(" at {}: {}", phase.name, slot.label))
                .unwrap_or_default();
            let why = app
                .stopped
                .clone()
                .unwrap_or_else(|| status.label().to_lowercase());
            (
                exit::STOPPED,
                format!("stopped before completion ({why}){at}"),
            )
        }
    };
    if quiet {
        return code;
    }
    eprintln!("warroom: {} — {what} (exit {code})", app.plan.name);
    if !app.in_flight.is_empty() {
        eprintln!(
            "warroom: {} change(s) sent to the cluster had not been confirmed at exit; check the cluster",
            app.in_flight.len()
        );
    }
    if app.mode == Mode::Console {
        eprintln!("last log lines:");
        let skip = app.log.len().saturating_sub(5);
        for line in app.log.iter().skip(skip) {
            eprintln!("  {}", line.text);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `--operator` beats the config file's `operator:`, which beats `$USER`; blanks are passed
    /// over.
    #[test]
    fn operator_precedence_is_flag_then_config_then_user() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(operator_name(s("ann"), s("bob"), s("cid")), "ann");
        assert_eq!(operator_name(None, s("bob"), s("cid")), "bob");
        assert_eq!(operator_name(None, None, s("cid")), "cid");
        assert_eq!(operator_name(s(" "), s(""), s("cid")), "cid");
        assert_eq!(operator_name(None, None, s("")), "operator");
        assert_eq!(operator_name(None, None, None), "operator");
    }

    /// `--theme` and `--config` on demo, run and watch, and the config's operator in between.
    #[test]
    fn theme_and_config_flags_parse_on_every_console_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "theme: light\noperator: carol\n").expect("write");
        let config = config.display().to_string();
        for args in [
            vec![
                "warroom",
                "demo",
                "--theme",
                "colorblind",
                "--config",
                &config,
            ],
            vec![
                "warroom",
                "run",
                "p.yaml",
                "--theme",
                "colorblind",
                "--config",
                &config,
            ],
            vec![
                "warroom",
                "watch",
                "j.jsonl",
                "--theme",
                "colorblind",
                "--config",
                &config,
            ],
        ] {
            let cli = Cli::try_parse_from(&args).expect("parses");
            let (look, operator) = match cli.command {
                Command::Demo(a) => (a.look, a.operator),
                Command::Run(a) => (a.look, a.operator),
                Command::Watch(a) => (a.look, None),
                _ => panic!("{args:?}"),
            };
            let settings = look.settings();
            assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
            assert_eq!(
                *settings.theme,
                crate::ui::theme::Theme::named("colorblind").expect("built in"),
                "--theme beats the config's theme: ({args:?})"
            );
            assert_eq!(
                operator_name(operator, settings.operator, Some("root".into())),
                "carol"
            );
        }
        let cli =
            Cli::try_parse_from(["warroom", "demo", "--operator", "dave", "--config", &config])
                .expect("parses");
        let Command::Demo(a) = cli.command else {
            panic!("demo")
        };
        let settings = a.look.settings();
        assert_eq!(
            *settings.theme,
            crate::ui::theme::Theme::named("light").expect("built in")
        );
        assert_eq!(operator_name(a.operator, settings.operator, None), "dave");
    }
}
