//! The work the engine asks for (one [`Work`] per effect), where it came from, and the log lines
//! it produces. Plain data: carrying work out belongs to the app's effect runner.

use std::time::Duration;

use crate::plan::{self, Step, TrackName, Weight, WeightStep};

/// How long a `wait` (and the rollout an `image` step starts) may take when the plan gives no
/// `timeout`: the Deployment controller's own default progress deadline.
pub const DEFAULT_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(600);

/// One piece of work against one environment. Journaled as the `work` of an `intent` line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Set the canary weight. `emergency` writes jump the queue (a rollback's weight 0).
    SetWeight { weight: Weight, emergency: bool },
    /// Set `workload.image` on the track's container, then follow its rollout to completion.
    SetImage {
        track: TrackName,
        #[serde(with = "crate::journal::record::millis", rename = "timeout_ms")]
        timeout: Duration,
    },
    /// `kubectl rollout status` until complete; a timeout or ProgressDeadlineExceeded fails.
    WaitRollout {
        track: TrackName,
        #[serde(with = "crate::journal::record::millis", rename = "timeout_ms")]
        timeout: Duration,
    },
    /// `kubectl scale`.
    Scale { track: TrackName, replicas: u32 },
    /// `kubectl rollout undo`.
    Undo { track: TrackName },
    /// Set one key of a ConfigMap.
    SetFlag {
        configmap: String,
        key: String,
        value: String,
    },
    /// Snapshot the plan's ConfigMaps (replacing the one taken at start).
    SnapshotConfig,
    /// Put the plan's ConfigMaps back as last snapshotted.
    RestoreConfig,
    /// Stable gets the new image and becomes ready, then the canary's weight goes to 0, then the
    /// canary is scaled to 0.
    Promote {
        #[serde(with = "crate::journal::record::millis", rename = "timeout_ms")]
        timeout: Duration,
    },
    /// `sh -c` in the plan's directory, output to the log.
    Run {
        cmd: String,
        #[serde(
            default,
            with = "crate::journal::record::opt_millis",
            rename = "timeout_ms"
        )]
        timeout: Option<Duration>,
        /// `rehearse: true`: `warroom rehearse` runs it on the simulator instead of printing it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rehearse: bool,
    },
    /// Tell people.
    Notify { text: String },
}

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    /// Something an operator did.
    Operator,
    Warn,
    Error,
}

/// A line for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub level: Level,
    pub text: String,
}

/// A step kind the engine carries out, resolved from the plan's step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepWork {
    /// One write, or paced writes of `step` percent every `every`.
    Weight {
        to: Weight,
        step: Option<Weight>,
        every: Option<Duration>,
    },
    /// Thresholds must hold this long with data.
    Hold(Duration),
    /// A person must act.
    Gate(Gate),
    /// One effect; done when it reports success.
    Effect(Work),
}

/// What a gate waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// A checklist item any operator ticks.
    Check,
    /// A manual pause any operator passes.
    Pause,
    /// Only a listed operator may pass it.
    Approval(Vec<String>),
}

/// A step's label as the console shows it, and what carrying it out takes.
pub fn describe(step: &Step, workload: &plan::Workload) -> (String, StepWork) {
    match step {
        Step::Weight(w) => (weight_label(w), weight_work(w)),
        Step::Hold(d) => (format!("hold {d}"), StepWork::Hold(d.get())),
        Step::Check(text) => (format!("check: {text}"), StepWork::Gate(Gate::Check)),
        Step::Pause(text) => (format!("pause: {text}"), StepWork::Gate(Gate::Pause)),
        Step::Approve(who) => {
            let names = match who {
                plan::ApproveStep::One(n) => vec![n.clone()],
                plan::ApproveStep::Many(ns) => ns.clone(),
            };
            (
                format!("approval: {}", names.join(", ")),
                StepWork::Gate(Gate::Approval(names)),
            )
        }
        Step::Notify(text) => (
            format!("notify: {text}"),
            StepWork::Effect(Work::Notify { text: text.clone() }),
        ),
        Step::Run(run) => {
            let timeout = match run {
                plan::RunStep::Short(_) => None,
                plan::RunStep::Long { timeout, .. } => timeout.map(|t| t.get()),
            };
            let cmd = run.cmd().to_string();
            (
                format!("run: {cmd}"),
                StepWork::Effect(Work::Run {
                    cmd,
                    timeout,
                    rehearse: run.rehearses(),
                }),
            )
        }
        Step::Image(track) => (
            format!(
                "image: {} → {}",
                track.as_str(),
                workload
                    .image
                    .as_deref()
                    .map_or("?", crate::cluster::watch::image_tag)
            ),
            StepWork::Effect(Work::SetImage {
                track: *track,
                timeout: DEFAULT_ROLLOUT_TIMEOUT,
            }),
        ),
        Step::Wait(what) => {
            let timeout = match what {
                plan::WaitStep::Long {
                    timeout: Some(t), ..
                } => t.get(),
                _ => DEFAULT_ROLLOUT_TIMEOUT,
            };
            (
                format!("wait: {}", what.condition().as_str()),
                StepWork::Effect(Work::WaitRollout {
                    track: if workload.canary.is_some() {
                        TrackName::Canary
                    } else {
                        TrackName::Stable
                    },
                    timeout,
                }),
            )
        }
        Step::Promote(_) => (
            "promote".to_string(),
            StepWork::Effect(Work::Promote {
                timeout: DEFAULT_ROLLOUT_TIMEOUT,
            }),
        ),
        Step::Flag(f) => (
            format!("flag: {}/{} = {}", f.configmap, f.key, f.value),
            StepWork::Effect(Work::SetFlag {
                configmap: f.configmap.clone(),
                key: f.key.clone(),
                value: f.value.clone(),
            }),
        ),
        Step::Scale(s) => (
            format!("scale: {} → {}", s.track.as_str(), s.replicas),
            StepWork::Effect(Work::Scale {
                track: s.track,
                replicas: s.replicas,
            }),
        ),
        Step::Undo(track) => (
            format!("undo: {}", track.as_str()),
            StepWork::Effect(Work::Undo { track: *track }),
        ),
        Step::Config(op) => match op {
            plan::ConfigOp::Snapshot => (
                "config: snapshot".to_string(),
                StepWork::Effect(Work::SnapshotConfig),
            ),
            plan::ConfigOp::Restore => (
                "config: restore".to_string(),
                StepWork::Effect(Work::RestoreConfig),
            ),
        },
    }
}

fn weight_label(w: &WeightStep) -> String {
    match w {
        WeightStep::To(to) => format!("weight → {to}"),
        WeightStep::Gradual {
            to,
            step: Some(step),
            every: Some(every),
            ..
        } => format!("weight → {to} ({step} every {every})"),
        WeightStep::Gradual { to, .. } => format!("weight → {to}"),
    }
}

fn weight_work(w: &WeightStep) -> StepWork {
    match w {
        WeightStep::To(to) => StepWork::Weight {
            to: *to,
            step: None,
            every: None,
        },
        WeightStep::Gradual {
            to, step, every, ..
        } => StepWork::Weight {
            to: *to,
            // A step of 0 would never arrive; validation refuses it, this keeps it harmless.
            step: step.filter(|s| s.percent() > 0),
            every: every.map(|e| e.get()),
        },
    }
}

/// The next weight of a paced move from `from` toward `to` by `step`.
pub fn next_weight(from: Weight, to: Weight, step: Option<Weight>) -> Weight {
    let Some(step) = step else {
        return to;
    };
    let (f, t, s) = (
        i64::from(from.percent()),
        i64::from(to.percent()),
        i64::from(step.percent()),
    );
    if f < t {
        Weight::clamped((f + s).min(t))
    } else {
        Weight::clamped((f - s).max(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_weight_moves_by_step_and_stops_at_the_target() {
        let w = Weight::clamped;
        assert_eq!(next_weight(w(0), w(25), Some(w(10))), w(10));
        assert_eq!(next_weight(w(20), w(25), Some(w(10))), w(25));
        assert_eq!(next_weight(w(50), w(0), Some(w(20))), w(30));
        assert_eq!(next_weight(w(10), w(0), Some(w(20))), w(0));
        assert_eq!(next_weight(w(10), w(40), None), w(40));
    }
}
