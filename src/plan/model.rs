//! The plan as typed Rust: what an on-call engineer writes before the deploy window.
//! Plain data with serde; loading, diagnostics and template expansion live beside it.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::duration::{PlanDuration, Weight};
use super::time::{ClockTime, ZoneName};

/// A whole deployment plan (format version 1).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Format version; only 1 exists.
    pub version: u32,
    /// Human title, shown in the header (`checkout 2.4.0`).
    pub name: String,
    /// Service name; the `{{service}}` of metric queries.
    pub service: String,
    /// One line on what changes.
    #[serde(default)]
    pub change: Option<String>,
    /// Risk of the whole change; a phase may say otherwise.
    #[serde(default)]
    pub risk: Risk,
    /// What is deployed: infrastructure, app or both.
    #[serde(default, rename = "type")]
    pub kind: DeploymentType,
    /// Downtime the change is expected to cause.
    #[serde(default)]
    pub downtime: Downtime,
    /// How hard the way back is.
    #[serde(default)]
    pub rollback_complexity: RollbackComplexity,
    /// How the new version reaches users.
    pub strategy: Strategy,
    /// Where phases run, by name.
    pub environments: BTreeMap<String, Environment>,
    /// The Deployments the plan changes.
    pub workload: Workload,
    /// Traffic splitting; required for canary and blue-green.
    #[serde(default)]
    pub traffic: Option<Traffic>,
    /// Prometheus queries, thresholds and what a breach does.
    #[serde(default)]
    pub metrics: Metrics,
    /// Targets checked in the final report.
    #[serde(default)]
    pub success: Option<Success>,
    /// Known risks and how they are mitigated.
    #[serde(default)]
    pub risks: Vec<RiskItem>,
    /// Phases, run in order.
    pub phases: Vec<Phase>,
    /// The three rollback tiers.
    #[serde(default)]
    pub rollback: Rollback,
    /// Where notifications go.
    #[serde(default)]
    pub notify: Option<Notify>,
}

impl Plan {
    /// The tracks the plan deploys: both when it has a canary Deployment, else stable only.
    pub fn tracks(&self) -> &'static [TrackName] {
        if self.workload.canary.is_some() {
            &TrackName::BOTH
        } else {
            &[TrackName::Stable]
        }
    }
}

/// One known risk of the change and its mitigation (template: Risk Assessment).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RiskItem {
    /// What could go wrong.
    pub risk: String,
    /// Who or what is hurt when it does.
    #[serde(default)]
    pub impact: Option<String>,
    /// How likely and how bad.
    #[serde(default)]
    pub level: Option<Risk>,
    /// What reduces it.
    #[serde(default)]
    pub mitigation: Option<String>,
}

/// Risk level of the change (template: Scope Assessment).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Routine change.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Production-like: phases want an approval gate.
    High,
    /// Production-like: phases want an approval gate.
    Critical,
}

impl Risk {
    /// High and critical changes want a person to approve each phase.
    pub fn wants_approval(self) -> bool {
        matches!(self, Risk::High | Risk::Critical)
    }
}

/// What is being deployed.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentType {
    /// Terraform, Helm, Ansible: the platform itself.
    Infrastructure,
    /// An application (the default).
    #[default]
    App,
    /// Infrastructure and application together.
    Both,
}

/// Expected downtime.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Downtime {
    /// No downtime (the default).
    #[default]
    None,
    /// Seconds of downtime.
    Seconds,
    /// Minutes of downtime.
    Minutes,
    /// Hours of downtime.
    Hours,
}

/// How hard the way back is.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RollbackComplexity {
    /// Undo the rollout (the default).
    #[default]
    Simple,
    /// Several coordinated actions.
    Moderate,
    /// Data restores or external coordination.
    Complex,
}

/// Environment strategy.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Gradual rollout by traffic weight; needs a router.
    Canary,
    /// Switch all traffic from blue to green at once; needs a router.
    BlueGreen,
    /// Rolling update, for backward-compatible changes.
    Rolling,
    /// Stop the old, start the new, for breaking changes.
    Recreate,
}

impl Strategy {
    /// As written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Canary => "canary",
            Strategy::BlueGreen => "blue-green",
            Strategy::Rolling => "rolling",
            Strategy::Recreate => "recreate",
        }
    }

    /// Canary and blue-green move traffic, so they need `traffic.router`.
    pub fn needs_router(self) -> bool {
        matches!(self, Strategy::Canary | Strategy::BlueGreen)
    }
}

/// A cluster and Prometheus a phase runs against.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// kubeconfig context; the current context when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// Namespace of the workload.
    pub namespace: String,
    /// Prometheus base URL (`http://prometheus:9090`, or a Mimir/Thanos prefix).
    #[serde(default)]
    pub prometheus: Option<String>,
    /// Extra HTTP headers for Prometheus (e.g. `X-Scope-OrgID`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// File holding a bearer token for Prometheus.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// File holding `user:password` for Prometheus basic auth.
    #[serde(default)]
    pub basic_auth_file: Option<String>,
    /// PEM file of the CA(s) that signed Prometheus's certificate; replaces the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// The Deployments the plan changes.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Kind of the workload; only `Deployment` today.
    #[serde(default = "default_workload_kind")]
    pub kind: String,
    /// The stable Deployment.
    pub name: String,
    /// The canary (or green) Deployment.
    #[serde(default)]
    pub canary: Option<String>,
    /// Container whose image `image` steps set; the first container when absent.
    #[serde(default)]
    pub container: Option<String>,
    /// The new image.
    #[serde(default)]
    pub image: Option<String>,
}

fn default_workload_kind() -> String {
    "Deployment".to_string()
}

/// How traffic is split between stable and canary.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Which API splits the traffic.
    pub router: Router,
    /// The traffic object: HTTPRoute, VirtualService, canary Ingress or TrafficSplit.
    #[serde(default)]
    pub route: Option<String>,
    /// Backend (Service) of the stable track; `workload.name` when absent.
    #[serde(default)]
    pub stable_backend: Option<String>,
    /// Backend (Service) of the canary track; `workload.canary` when absent.
    #[serde(default)]
    pub canary_backend: Option<String>,
    /// What `+` and `-` move, in percent.
    #[serde(default = "default_step")]
    pub step: Weight,
}

fn default_step() -> Weight {
    Weight::clamped(10)
}

/// Traffic router kinds.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    /// Weight by replica counts, no traffic object.
    Replicas,
    /// Gateway API HTTPRoute backend weights.
    GatewayApi,
    /// Istio VirtualService route weights.
    Istio,
    /// ingress-nginx canary Ingress annotations.
    Nginx,
    /// SMI TrafficSplit.
    Smi,
}

impl Router {
    /// As written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Router::Replicas => "replicas",
            Router::GatewayApi => "gateway-api",
            Router::Istio => "istio",
            Router::Nginx => "nginx",
            Router::Smi => "smi",
        }
    }
}

/// What is sampled from Prometheus and what counts as healthy.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Sampling interval.
    #[serde(default = "default_interval")]
    pub interval: PlanDuration,
    /// Sparkline span.
    #[serde(default = "default_history")]
    pub history: PlanDuration,
    /// The `{{rate}}` of queries: the range of rate() windows.
    #[serde(default = "default_rate")]
    pub rate: PlanDuration,
    /// PromQL by metric name; `{{namespace}}`, `{{service}}`, `{{track}}`, `{{rate}}` expand.
    #[serde(default)]
    pub queries: IndexMap<String, String>,
    /// Healthy bounds by metric name (names must be queries).
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
    /// What a breach does.
    #[serde(default)]
    pub on_breach: OnBreach,
    /// What missing data does.
    #[serde(default)]
    pub no_data: NoData,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            interval: default_interval(),
            history: default_history(),
            rate: default_rate(),
            queries: IndexMap::new(),
            thresholds: BTreeMap::new(),
            on_breach: OnBreach::default(),
            no_data: NoData::default(),
        }
    }
}

fn default_interval() -> PlanDuration {
    PlanDuration(std::time::Duration::from_secs(5))
}
fn default_history() -> PlanDuration {
    PlanDuration(std::time::Duration::from_secs(15 * 60))
}
fn default_rate() -> PlanDuration {
    PlanDuration(std::time::Duration::from_secs(60))
}

/// Healthy bounds of one metric.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Breached above this value.
    #[serde(default)]
    pub max: Option<f64>,
    /// Breached below this value.
    #[serde(default)]
    pub min: Option<f64>,
    /// Breached when the canary is worse than the stable track by more than every bound given;
    /// needs `workload.canary`.
    #[serde(default)]
    pub vs_stable: Option<VsStable>,
}

impl Threshold {
    /// True when `value` is outside the bounds.
    pub fn breached_by(&self, value: f64) -> bool {
        self.max.is_some_and(|m| value > m) || self.min.is_some_and(|m| value < m)
    }
}

/// The canary judged against the stable track: it breaches when it is worse than stable by more
/// than every bound given. Worse means higher, as for error rates, latencies and CPU; a metric
/// where lower is worse cannot use it.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VsStable {
    /// Breached only when canary > stable × ratio (finite, ≥ 1).
    #[serde(default)]
    pub ratio: Option<f64>,
    /// Breached only when canary − stable > delta, in the metric's unit (finite, ≥ 0).
    #[serde(default)]
    pub delta: Option<f64>,
}

impl VsStable {
    /// True when `canary` is worse (higher) than `stable` by more than both the ratio and the
    /// delta, where given; never with neither (validation refuses that).
    pub fn breached_by(&self, canary: f64, stable: f64) -> bool {
        if self.ratio.is_none() && self.delta.is_none() {
            return false;
        }
        self.ratio.is_none_or(|r| canary > stable * r)
            && self.delta.is_none_or(|d| canary - stable > d)
    }
}

/// What a threshold breach does.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnBreach {
    /// Alert, pause or roll back.
    #[serde(default = "default_breach_action")]
    pub action: BreachAction,
    /// The rollback tier a `rollback` action runs; it must exist under `rollback`.
    #[serde(default = "default_tier")]
    pub tier: TierName,
    /// Consecutive breaching samples before acting.
    #[serde(default = "default_after")]
    pub after: u32,
    /// Time an operator has to cancel an automatic rollback.
    #[serde(default = "default_countdown")]
    pub countdown: PlanDuration,
}

impl Default for OnBreach {
    fn default() -> Self {
        OnBreach {
            action: default_breach_action(),
            tier: default_tier(),
            after: default_after(),
            countdown: default_countdown(),
        }
    }
}

fn default_breach_action() -> BreachAction {
    BreachAction::Pause
}
fn default_tier() -> TierName {
    TierName::Immediate
}
fn default_after() -> u32 {
    2
}
fn default_countdown() -> PlanDuration {
    PlanDuration(std::time::Duration::from_secs(10))
}

/// Breach actions.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BreachAction {
    /// Log and notify only.
    Alert,
    /// Stop advancing until an operator resumes.
    Pause,
    /// Start the `tier` rollback after a countdown.
    Rollback,
}

/// What missing data does: it never counts as a pass.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NoData {
    /// Consecutive empty samples before acting.
    #[serde(default = "default_no_data_after")]
    pub after: u32,
    /// What to do then.
    #[serde(default = "default_breach_action")]
    pub action: BreachAction,
}

impl Default for NoData {
    fn default() -> Self {
        NoData {
            after: default_no_data_after(),
            action: BreachAction::Pause,
        }
    }
}

fn default_no_data_after() -> u32 {
    3
}

/// Success metrics, checked in the final report.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Success {
    /// Longest acceptable time from first step to done.
    #[serde(default)]
    pub max_deploy_time: Option<PlanDuration>,
    /// Longest acceptable downtime.
    #[serde(default)]
    pub max_downtime: Option<PlanDuration>,
    /// Highest acceptable error ratio after the deployment (0.001 = 0.1 %).
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    /// Longest acceptable time to recover by rollback.
    #[serde(default)]
    pub max_recovery_time: Option<PlanDuration>,
    /// Targets a person judges in the report (coverage, automation, business value).
    #[serde(default)]
    pub criteria: Vec<String>,
}

/// One phase: an environment and the steps run there.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Unique phase name.
    pub name: String,
    /// Key of `environments`.
    pub environment: String,
    /// Risk of this phase; the plan's `risk` when absent.
    #[serde(default)]
    pub risk: Option<Risk>,
    /// When the phase may start.
    #[serde(default)]
    pub window: Option<Window>,
    /// How long after the phase a rollback is still planned for.
    #[serde(default)]
    pub rollback_window: Option<PlanDuration>,
    /// People on the phase.
    #[serde(default)]
    pub team: Vec<String>,
    /// People who must approve before the phase starts.
    #[serde(default)]
    pub approval: Vec<String>,
    /// Steps, run in order.
    pub steps: Vec<Step>,
}

impl Phase {
    /// The phase's own risk, else the plan's.
    pub fn effective_risk(&self, plan_risk: Risk) -> Risk {
        self.risk.unwrap_or(plan_risk)
    }

    /// True when a person must approve before or during the phase.
    pub fn has_approval_gate(&self) -> bool {
        !self.approval.is_empty() || self.steps.iter().any(|s| matches!(s, Step::Approve(_)))
    }
}

/// A deployment window.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Weekdays the window is open; every day when empty.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM`.
    pub from: ClockTime,
    /// Closing time, `HH:MM`; must be after `from`.
    pub to: ClockTime,
    /// IANA time zone of `from` and `to`; the local zone when absent.
    #[serde(default)]
    pub tz: Option<ZoneName>,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// One step of a phase. Short forms (`- weight: 10`) and long forms with options.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// A manual checklist item, ticked by an operator.
    Check(String),
    /// A shell command.
    Run(RunStep),
    /// Set `workload.image` on a track.
    Image(TrackName),
    /// Wait for a condition (`ready`: rollout complete).
    Wait(WaitStep),
    /// Set the canary weight.
    Weight(WeightStep),
    /// Thresholds must hold for this long.
    Hold(PlanDuration),
    /// A manual gate: an operator advances.
    Pause(String),
    /// Named approvers must approve.
    Approve(ApproveStep),
    /// Stable gets the new image, weight to 0, canary to 0 replicas.
    Promote(PromoteStep),
    /// Send a notification.
    Notify(String),
    /// Set a feature flag in a ConfigMap.
    Flag(FlagStep),
    /// Scale a track.
    Scale(ScaleStep),
    /// Roll a track back (kubectl rollout undo).
    Undo(TrackName),
    /// Snapshot or restore the plan's ConfigMaps.
    Config(ConfigOp),
}

/// `- wait: ready` or `- wait: { for: ready, timeout: 10m }`.
#[derive(Debug, Clone, JsonSchema, PartialEq)]
#[serde(untagged, deny_unknown_fields)]
pub enum WaitStep {
    /// The condition alone.
    Short(WaitFor),
    /// The condition with a timeout.
    Long {
        /// The condition.
        #[serde(rename = "for")]
        condition: WaitFor,
        /// Give up after this long.
        #[serde(default)]
        timeout: Option<PlanDuration>,
    },
}

impl WaitStep {
    /// What is waited for.
    pub fn condition(&self) -> WaitFor {
        match self {
            WaitStep::Short(c) | WaitStep::Long { condition: c, .. } => *c,
        }
    }
}

/// Conditions a `wait` step can wait for.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    /// The rollout is complete (kubectl rollout status logic).
    Ready,
}

impl WaitFor {
    /// As written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Ready => "ready",
        }
    }
}

/// `stable` or `canary`.
#[derive(
    Debug,
    Clone,
    Copy,
    Deserialize,
    serde::Serialize,
    JsonSchema,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum TrackName {
    /// The stable (or blue) Deployment.
    Stable,
    /// The canary (or green) Deployment.
    Canary,
}

impl TrackName {
    /// Both tracks, stable first.
    pub const BOTH: [TrackName; 2] = [TrackName::Stable, TrackName::Canary];

    /// As written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackName::Stable => "stable",
            TrackName::Canary => "canary",
        }
    }
}

/// A command to run: `- run: ./migrate.sh` or `- run: { cmd: …, timeout: 5m }`.
#[derive(Debug, Clone, JsonSchema, PartialEq)]
#[serde(untagged, deny_unknown_fields)]
pub enum RunStep {
    /// The command alone.
    Short(String),
    /// The command with options.
    Long {
        /// Shell command line.
        cmd: String,
        /// Kill it after this long.
        #[serde(default)]
        timeout: Option<PlanDuration>,
        /// Run it in `warroom rehearse` too, with `KUBECONFIG` pointing at the simulator (a
        /// rehearsal only prints other `run` steps). For commands that are safe there and whose
        /// failure should fail the rehearsal: a migration's dry run, a smoke test.
        #[serde(default)]
        rehearse: bool,
    },
}

impl RunStep {
    /// The command line.
    pub fn cmd(&self) -> &str {
        match self {
            RunStep::Short(cmd) | RunStep::Long { cmd, .. } => cmd,
        }
    }

    /// Whether `warroom rehearse` runs it (`rehearse: true`) rather than printing it.
    pub fn rehearses(&self) -> bool {
        matches!(self, RunStep::Long { rehearse: true, .. })
    }
}

/// A weight step: `- weight: 10` or `- weight: { to: 0, step: 10, every: 1m }`.
///
/// Deserialized by hand (not `untagged`) so that `weight: 110` says what is wrong instead of
/// "did not match any variant".
#[derive(Debug, Clone, JsonSchema, PartialEq)]
#[serde(untagged, deny_unknown_fields)]
pub enum WeightStep {
    /// Straight to this weight.
    To(Weight),
    /// To a weight, optionally in steps, with a reason.
    Gradual {
        /// Final weight.
        to: Weight,
        /// Move this many percent at a time.
        #[serde(default)]
        step: Option<Weight>,
        /// Wait this long between moves.
        #[serde(default)]
        every: Option<PlanDuration>,
        /// Why; a weight that goes down wants one.
        #[serde(default)]
        comment: Option<String>,
    },
}

// The short/long step forms are deserialised by hand rather than `untagged`: an untagged enum
// answers every mistake with "did not match any variant", which tells an operator nothing.

/// The long form of a run step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongRun {
    cmd: String,
    #[serde(default)]
    timeout: Option<PlanDuration>,
    #[serde(default)]
    rehearse: bool,
}

impl<'de> Deserialize<'de> for RunStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RunStep;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a command line or { cmd, timeout, rehearse }")
            }

            fn visit_str<E: serde::de::Error>(self, cmd: &str) -> Result<RunStep, E> {
                Ok(RunStep::Short(cmd.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RunStep, A::Error> {
                let long = LongRun::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RunStep::Long {
                    cmd: long.cmd,
                    timeout: long.timeout,
                    rehearse: long.rehearse,
                })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// The long form of a wait step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongWait {
    #[serde(rename = "for")]
    condition: WaitFor,
    #[serde(default)]
    timeout: Option<PlanDuration>,
}

impl<'de> Deserialize<'de> for WaitStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = WaitStep;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a condition (ready) or { for, timeout }")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<WaitStep, E> {
                WaitFor::deserialize(serde::de::value::StrDeserializer::<E>::new(text))
                    .map(WaitStep::Short)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<WaitStep, A::Error> {
                let long =
                    LongWait::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(WaitStep::Long {
                    condition: long.condition,
                    timeout: long.timeout,
                })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl<'de> Deserialize<'de> for ApproveStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ApproveStep;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an approver's name or a list of names")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<ApproveStep, E> {
                Ok(ApproveStep::One(name.to_string()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<ApproveStep, A::Error> {
                Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(ApproveStep::Many)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// The long form of a weight step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GradualWeight {
    to: Weight,
    #[serde(default)]
    step: Option<Weight>,
    #[serde(default)]
    every: Option<PlanDuration>,
    #[serde(default)]
    comment: Option<String>,
}

impl<'de> Deserialize<'de> for WeightStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = WeightStep;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a weight 0–100 or { to, step, every, comment }")
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<WeightStep, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("weight {n} is outside 0–100"))),
                }
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<WeightStep, E> {
                u32::try_from(n)
                    .ok()
                    .and_then(Weight::new)
                    .map(WeightStep::To)
                    .ok_or_else(|| E::custom(format!("weight {n} is outside 0–100")))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<WeightStep, A::Error> {
                let g =
                    GradualWeight::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(WeightStep::Gradual {
                    to: g.to,
                    step: g.step,
                    every: g.every,
                    comment: g.comment,
                })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl WeightStep {
    /// The weight this step ends at.
    pub fn target(&self) -> Weight {
        match self {
            WeightStep::To(w) => *w,
            WeightStep::Gradual { to, .. } => *to,
        }
    }
}

/// Approvers of a gate: `- approve: carol` or `- approve: [carol, dave]`.
#[derive(Debug, Clone, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum ApproveStep {
    /// One approver.
    One(String),
    /// Several approvers.
    Many(Vec<String>),
}

/// Options of `promote` (none yet: `- promote: {}`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PromoteStep {}

/// A feature flag in a ConfigMap.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlagStep {
    /// ConfigMap holding the flag; snapshotted at start.
    pub configmap: String,
    /// Key in the ConfigMap.
    pub key: String,
    /// Value to write (always a string).
    pub value: String,
}

/// Scale a track.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleStep {
    /// Which Deployment.
    pub track: TrackName,
    /// Replica count.
    pub replicas: u32,
}

/// ConfigMap snapshot/restore.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConfigOp {
    /// Save the plan's ConfigMaps.
    Snapshot,
    /// Put the saved ConfigMaps back.
    Restore,
}

/// The three rollback tiers of the template.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// 0–5 minutes: `!` runs it at once, no dialog.
    #[serde(default)]
    pub immediate: Option<RollbackTier>,
    /// 5–30 minutes: traffic back step by step, migrations reverted.
    #[serde(default)]
    pub gradual: Option<RollbackTier>,
    /// 30 minutes and more: infrastructure and data restored.
    #[serde(default)]
    pub full: Option<RollbackTier>,
}

impl Rollback {
    /// The tier of that name, if the plan defines it.
    pub fn tier(&self, name: TierName) -> Option<&RollbackTier> {
        match name {
            TierName::Immediate => self.immediate.as_ref(),
            TierName::Gradual => self.gradual.as_ref(),
            TierName::Full => self.full.as_ref(),
        }
    }
}

/// Names of the rollback tiers.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TierName {
    /// 0–5 minutes.
    Immediate,
    /// 5–30 minutes.
    Gradual,
    /// 30+ minutes.
    Full,
}

impl TierName {
    /// As written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            TierName::Immediate => "immediate",
            TierName::Gradual => "gradual",
            TierName::Full => "full",
        }
    }
}

/// One rollback tier: a time target and the actions that make it.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RollbackTier {
    /// Time target: the tier should be done within it (template: 5m, 30m, 30m+).
    #[serde(default)]
    pub target: Option<PlanDuration>,
    /// Steps run in order when the tier starts.
    pub actions: Vec<Step>,
}

/// Where notifications go.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Slack-compatible webhook; https (http only to loopback).
    pub webhook: String,
    /// Events that notify; every event when empty.
    #[serde(default)]
    pub on: Vec<NotifyEvent>,
}

/// Events a notification can be sent on.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// A phase starts or ends.
    Phase,
    /// A threshold is breached.
    Breach,
    /// A rollback starts or ends.
    Rollback,
    /// The plan completes.
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: VsStable = VsStable {
        ratio: Some(2.0),
        delta: Some(0.005),
    };

    #[test]
    fn vs_stable_breaches_only_when_worse_by_more_than_both_bounds() {
        assert!(BOTH.breached_by(0.03, 0.01)); // 3× and +0.02
        assert!(!BOTH.breached_by(0.003, 0.001)); // 3×, but only +0.002
        assert!(!BOTH.breached_by(0.015, 0.01)); // +0.005 is not more than 0.005, and 1.5×
        assert!(!BOTH.breached_by(0.02, 0.01)); // exactly 2× is not more
        assert!(!BOTH.breached_by(0.001, 0.03)); // better than stable
    }

    #[test]
    fn vs_stable_with_one_bound_uses_that_bound_alone() {
        let ratio = VsStable {
            ratio: Some(1.5),
            delta: None,
        };
        assert!(ratio.breached_by(0.16, 0.1));
        assert!(!ratio.breached_by(0.15, 0.1));
        let delta = VsStable {
            ratio: None,
            delta: Some(0.1),
        };
        assert!(delta.breached_by(0.35, 0.2));
        assert!(!delta.breached_by(0.3, 0.2));
    }

    #[test]
    fn vs_stable_without_bounds_never_breaches() {
        assert!(!VsStable::default().breached_by(100.0, 0.0));
    }

    #[test]
    fn vs_stable_with_a_quiet_stable_track_breaches_on_the_delta() {
        // Stable at 0 makes every ratio true; the delta keeps a single error from breaching.
        assert!(!BOTH.breached_by(0.004, 0.0));
        assert!(BOTH.breached_by(0.006, 0.0));
    }
}
