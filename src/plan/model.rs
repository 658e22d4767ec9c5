//! The plan as typed Rust: what an on-call engineer writes before the deploy window.
//! Plain data with serde; loading, diagnostics and template expansion live beside it.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::Deserialize;

use super::duration::{PlanDuration, Weight};

/// A whole deployment plan (format version 1).
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    #[serde(default)]
    pub risk: Risk,
    #[serde(default, rename = "type")]
    pub kind: DeploymentType,
    #[serde(default)]
    pub downtime: Downtime,
    #[serde(default)]
    pub rollback_complexity: RollbackComplexity,
    pub strategy: Strategy,
    /// Where phases run, by name.
    pub environments: BTreeMap<String, Environment>,
    pub workload: Workload,
    #[serde(default)]
    pub traffic: Option<Traffic>,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub success: Option<Success>,
    pub phases: Vec<Phase>,
    #[serde(default)]
    pub rollback: Rollback,
    #[serde(default)]
    pub notify: Option<Notify>,
}

/// Risk level of the change (template: Scope Assessment).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

/// What is being deployed.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentType {
    Infrastructure,
    #[default]
    App,
    Both,
}

/// Expected downtime.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Downtime {
    #[default]
    None,
    Seconds,
    Minutes,
    Hours,
}

/// How hard the way back is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RollbackComplexity {
    #[default]
    Simple,
    Moderate,
    Complex,
}

/// Environment strategy.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Canary,
    BlueGreen,
    Rolling,
    Recreate,
}

/// A cluster and Prometheus a phase runs against.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// kubeconfig context; the current context when absent.
    #[serde(default)]
    pub context: Option<String>,
    pub namespace: String,
    /// Prometheus base URL (`http://prometheus:9090`, or a Mimir/Thanos prefix).
    #[serde(default)]
    pub prometheus: Option<String>,
    /// Extra HTTP headers for Prometheus (e.g. `X-Scope-OrgID`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    #[serde(default)]
    pub basic_auth_file: Option<String>,
}

/// The Deployments the plan changes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    pub router: Router,
    /// The traffic object: HTTPRoute, VirtualService, canary Ingress or TrafficSplit.
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub stable_backend: Option<String>,
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
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    Replicas,
    GatewayApi,
    Istio,
    Nginx,
    Smi,
}

/// What is sampled from Prometheus and what counts as healthy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
    #[serde(default)]
    pub on_breach: OnBreach,
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
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub min: Option<f64>,
}

impl Threshold {
    /// True when `value` is outside the bounds.
    pub fn breached_by(&self, value: f64) -> bool {
        self.max.is_some_and(|m| value > m) || self.min.is_some_and(|m| value < m)
    }
}

/// What a threshold breach does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnBreach {
    #[serde(default = "default_breach_action")]
    pub action: BreachAction,
    #[serde(default = "default_tier")]
    pub tier: String,
    /// Consecutive breaching samples before acting.
    #[serde(default = "default_after")]
    pub after: u32,
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
fn default_tier() -> String {
    "immediate".to_string()
}
fn default_after() -> u32 {
    2
}
fn default_countdown() -> PlanDuration {
    PlanDuration(std::time::Duration::from_secs(10))
}

/// Breach actions.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BreachAction {
    Alert,
    Pause,
    Rollback,
}

/// What missing data does: it never counts as a pass.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NoData {
    #[serde(default = "default_no_data_after")]
    pub after: u32,
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
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Success {
    #[serde(default)]
    pub max_deploy_time: Option<PlanDuration>,
    #[serde(default)]
    pub max_downtime: Option<PlanDuration>,
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    #[serde(default)]
    pub max_recovery_time: Option<PlanDuration>,
}

/// One phase: an environment and the steps run there.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub environment: String,
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub rollback_window: Option<PlanDuration>,
    #[serde(default)]
    pub team: Vec<String>,
    /// People who must approve before the phase starts.
    #[serde(default)]
    pub approval: Vec<String>,
    pub steps: Vec<Step>,
}

/// A deployment window.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub tz: Option<String>,
}

/// One step of a phase. Short forms (`- weight: 10`) and long forms with options.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// A manual checklist item, ticked by an operator.
    Check(String),
    /// A shell command.
    Run(RunStep),
    /// Set `workload.image` on a track.
    Image(TrackName),
    /// Wait for a condition (`ready`: rollout complete).
    Wait(String),
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

/// `stable` or `canary`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TrackName {
    Stable,
    Canary,
}

impl TrackName {
    pub const BOTH: [TrackName; 2] = [TrackName::Stable, TrackName::Canary];

    pub fn as_str(self) -> &'static str {
        match self {
            TrackName::Stable => "stable",
            TrackName::Canary => "canary",
        }
    }
}

/// A command to run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RunStep {
    Short(String),
    Long {
        cmd: String,
        #[serde(default)]
        timeout: Option<PlanDuration>,
    },
}

/// A weight step: `- weight: 10` or `- weight: { to: 0, step: 10, every: 1m }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum WeightStep {
    To(Weight),
    Gradual {
        to: Weight,
        #[serde(default)]
        step: Option<Weight>,
        #[serde(default)]
        every: Option<PlanDuration>,
        #[serde(default)]
        comment: Option<String>,
    },
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

/// Approvers of a gate.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ApproveStep {
    One(String),
    Many(Vec<String>),
}

/// Options of `promote`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PromoteStep {}

/// A feature flag in a ConfigMap.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlagStep {
    pub configmap: String,
    pub key: String,
    pub value: String,
}

/// Scale a track.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleStep {
    pub track: TrackName,
    pub replicas: u32,
}

/// ConfigMap snapshot/restore.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConfigOp {
    Snapshot,
    Restore,
}

/// The three rollback tiers of the template.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[serde(default)]
    pub immediate: Option<RollbackTier>,
    #[serde(default)]
    pub gradual: Option<RollbackTier>,
    #[serde(default)]
    pub full: Option<RollbackTier>,
}

/// One rollback tier: a time target and the actions that make it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RollbackTier {
    #[serde(default)]
    pub target: Option<PlanDuration>,
    pub actions: Vec<Step>,
}

/// Where notifications go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub webhook: String,
    #[serde(default)]
    pub on: Vec<String>,
}
