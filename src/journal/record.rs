//! The journal's lines. One JSON object per line: `v` (format version), `seq`, `at` (RFC 3339,
//! UTC) and a `type` that says what the rest is. `docs/journal.md` documents every type.
//!
//! Two kinds of lines:
//! - **inputs** (`command`, `begin`, `tick`, `samples`, `unanswered`, `weight`, `workload`,
//!   `result`, `resume`): what `update` was given. Replaying them, in order, through the same
//!   transitions rebuilds the run's state; resuming and watching do exactly that.
//! - **records** (`start`, `intent`, `step`, `status`, `log`, `snapshot`, `notify`, `lease`,
//!   `end`): what happened, for people, `warroom report` and resume's checks. Replay does not
//!   need them to rebuild the state, only to know which effects were started.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cluster::actions::ConfigMapState;
use crate::engine::{Origin, Work};
use crate::plan::{TierName, TrackName};

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Format version.
    pub v: u32,
    /// 0, 1, 2, … in file order; a resumed run continues the numbering.
    pub seq: u64,
    /// When it was written (for inputs: the engine's clock as it applied them).
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    #[serde(flatten)]
    pub record: Record,
}

/// What one line says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The first line of every journal.
    Start(Start),
    /// A run continued from this journal (an input: replay applies it as the gap it was).
    Resume(Resume),
    /// An operator's command (an input).
    Command {
        operator: String,
        #[serde(flatten)]
        command: OperatorCommand,
    },
    /// A headless run begins as if `n` had been pressed (an input).
    Begin { operator: String },
    /// The clock, about once a second (an input).
    Tick,
    /// One round of samples (an input).
    Samples { samples: Vec<SampleRecord> },
    /// A round Prometheus did not answer (an input).
    Unanswered {
        #[serde(with = "rfc3339")]
        time: SystemTime,
        error: String,
    },
    /// The canary weight as read from the traffic router, when it changed (an input).
    Weight { percent: u8 },
    /// A Deployment of the environment on screen, when its counts changed (an input; the
    /// report's downtime comes from these).
    Workload {
        environment: String,
        track: TrackName,
        name: String,
        desired: u32,
        ready: u32,
        updated: u32,
        available: u32,
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
    },
    /// An effect is about to be carried out; written and fsync'd before it starts.
    Intent(Intent),
    /// An effect's result (an input).
    Result {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<String>,
    },
    /// A step (or approval gate) of the plan changed state.
    Step {
        phase: usize,
        phase_name: String,
        slot: usize,
        label: String,
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// An action of a rollback tier changed state.
    RollbackStep {
        run: u32,
        tier: TierName,
        environment: String,
        action: usize,
        label: String,
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
        target_ms: Option<Duration>,
    },
    /// The run as a whole changed state (`RUNNING`, `ROLLING BACK`, `COMPLETE`, …).
    Status { status: String },
    /// A line of the log, as the console showed it.
    Log {
        level: crate::engine::Level,
        environment: String,
        text: String,
    },
    /// The ConfigMaps a `config: restore` puts back, per environment.
    Snapshot {
        environment: String,
        configmaps: Vec<ConfigMapState>,
    },
    /// One attempt to deliver a webhook notification.
    Notify {
        message: u64,
        attempt: u32,
        event: String,
        outcome: String,
    },
    /// The lease that keeps a second run of the plan out.
    Lease {
        environment: String,
        event: String,
        detail: String,
    },
    /// The last line of a run that ended (a killed run has none).
    End {
        exit: i32,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Record {
    /// Whether replay applies this line.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Record::Resume(_)
                | Record::Command { .. }
                | Record::Begin { .. }
                | Record::Tick
                | Record::Samples { .. }
                | Record::Unanswered { .. }
                | Record::Weight { .. }
                | Record::Workload { .. }
                | Record::Result { .. }
        )
    }
}

/// Who started the run, with what, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// Identifies the run across resumes; the lease carries it.
    pub run_id: String,
    /// The warroom version that wrote the journal.
    pub warroom: String,
    pub plan: PlanRecord,
    pub environments: Vec<EnvironmentRecord>,
    pub operator: String,
    pub host: String,
    /// `console` or `headless`.
    pub mode: String,
    /// `nothing`, `gates` or `all`.
    pub auto_approve: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_window: Option<String>,
}

/// The plan as it was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub path: String,
    pub name: String,
    /// SHA-256 of the plan file's bytes, hex.
    pub sha256: String,
    /// The plan's text with its secrets (the webhook URL) masked.
    pub text: String,
}

/// One environment the run connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    pub name: String,
    pub context: String,
    pub namespace: String,
}

/// A run continued from the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    pub operator: String,
    pub host: String,
    pub warroom: String,
    /// The plan's SHA-256 now; differs from the start's only with `--force`.
    pub plan_sha256: String,
    /// `--force` let a changed plan resume.
    #[serde(default)]
    pub forced: bool,
    /// What changed in the plan, when forced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// A torn last line was left out.
    #[serde(default)]
    pub torn_line: bool,
    /// `nothing`, `gates` or `all`, from here on.
    #[serde(default = "nothing")]
    pub auto_approve: String,
}

fn nothing() -> String {
    "nothing".to_string()
}

/// An operator's command, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OperatorCommand {
    /// `n`: start, approve, tick, retry.
    Advance,
    /// `p`.
    Pause,
    /// `x`.
    CancelCountdown,
    /// `+`.
    WeightUp,
    /// `-`.
    WeightDown,
    /// `w`, `:weight N`, and `+`/`-` once confirmed: the canary weight to this.
    SetWeight { percent: u8 },
    /// `!` (immediate) or a tier from the rollback menu.
    Rollback { tier: TierName },
    /// `:skip REASON`.
    Skip { reason: String },
    /// `:window override REASON`.
    WindowOverride { reason: String },
    /// `--override-window REASON`: every phase's window.
    OverrideAllWindows { reason: String },
    /// `:note TEXT`.
    Note { text: String },
    /// `:op NAME`: the keys are handed over.
    Op { name: String },
}

/// One sample of one metric for one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub metric: String,
    pub track: TrackName,
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// `null`: the query answered with no data.
    pub value: Option<f64>,
}

/// An effect about to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The effect's id; its `result` line carries the same one.
    pub id: u64,
    pub environment: String,
    pub phase: String,
    /// `step`, `rollback` or `operator`.
    pub purpose: String,
    /// Which step or rollback action it carries out (none for an operator's `+`/`-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// What it does, for people.
    pub label: String,
    pub work: Work,
}

/// RFC 3339 times in UTC, to the nanosecond the clock gave: a replay compares them with
/// deadlines exactly as the run did.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(at: SystemTime) -> String {
        jiff::Timestamp::try_from(at)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
    }

    pub fn serialize<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        let t: jiff::Timestamp = text.parse().map_err(serde::de::Error::custom)?;
        Ok(SystemTime::from(t))
    }
}

/// Optional durations as whole milliseconds.
pub mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Durations as whole milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Masks every value that is a secret in `text` (a plan): the webhook URL keeps its scheme
/// and host only, wherever it stands as written, and so does the value of any `webhook:` key
/// (which may be quoted or escaped in the YAML). Only the value is replaced, by a quoted
/// string, so the text stays the same YAML: `watch` and `report` parse it.
pub fn mask_plan_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, &crate::notify::mask_url(secret));
    }
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("webhook:") {
        let after = at + "webhook:".len();
        masked.push_str(&rest[..after]);
        let tail = &rest[after..];
        let start = tail.len() - tail.trim_start_matches([' ', '\t']).len();
        let value = &tail[start..];
        let length = scalar_length(value);
        if length == 0 {
            rest = tail;
            continue;
        }
        let url = value[..length].trim_matches(|c| c == '"' || c == '\'');
        masked.push_str(&tail[..start]);
        masked.push_str(&format!("\"{}\"", crate::notify::mask_url(url)));
        rest = &value[length..];
    }
    masked.push_str(rest);
    masked
}

/// How long the YAML scalar at the start of `text` is: a quoted one to its closing quote, a
/// plain one to the end of the line, a flow separator or a comment.
fn scalar_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, '"')) => {
            let mut escaped = false;
            for (i, c) in chars {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return i + 1,
                    '\n' => return i,
                    _ => escaped = false,
                }
            }
            text.len()
        }
        Some((_, '\'')) => {
            let bytes = text.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => return i + 1,
                    b'\n' => return i,
                    _ => i += 1,
                }
            }
            text.len()
        }
        Some(_) => text
            .char_indices()
            .find(|&(i, c)| {
                matches!(c, '\n' | '\r' | ',' | '}' | ']')
                    || (c == '#' && text[..i].ends_with([' ', '\t']))
            })
            .map_or(text.len(), |(i, _)| i)
            .min(text.trim_end().len()),
        None => 0,
    }
}

/// Figures keyed by name, as a report lists them.
pub type Figures = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Weight;

    fn line(record: Record) -> Line {
        Line {
            v: VERSION,
            seq: 3,
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_123),
            record,
        }
    }

    #[test]
    fn every_kind_of_line_reads_back_as_written() {
        let records = vec![
            Record::Tick,
            Record::Command {
                operator: "alice".into(),
                command: OperatorCommand::Rollback {
                    tier: TierName::Immediate,
                },
            },
            Record::Command {
                operator: "bob".into(),
                command: OperatorCommand::Skip {
                    reason: "seen enough".into(),
                },
            },
            Record::Samples {
                samples: vec![SampleRecord {
                    metric: "error_rate".into(),
                    track: TrackName::Canary,
                    time: SystemTime::UNIX_EPOCH + Duration::from_secs(5),
                    value: None,
                }],
            },
            Record::Intent(Intent {
                id: 7,
                environment: "staging".into(),
                phase: "canary".into(),
                purpose: "step".into(),
                origin: Some(Origin::Rollback { run: 1, action: 0 }),
                label: "weight 0%".into(),
                work: Work::SetWeight {
                    weight: Weight::ZERO,
                    emergency: true,
                },
            }),
            Record::Result {
                id: 7,
                ok: Some("stored".into()),
                err: None,
            },
        ];
        for record in records {
            let written = line(record);
            let text = serde_json::to_string(&written).expect("serializes");
            let read: Line = serde_json::from_str(&text).expect("reads back");
            assert_eq!(read, written, "{text}");
        }
    }

    #[test]
    fn a_line_is_flat_and_typed() {
        let text = serde_json::to_string(&line(Record::Weight { percent: 30 })).expect("json");
        assert_eq!(
            text,
            r#"{"v":1,"seq":3,"at":"2027-01-15T08:00:00.123Z","type":"weight","percent":30}"#
        );
    }

    #[test]
    fn urls_keep_only_scheme_and_host() {
        use crate::notify::mask_url;
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/XYZ"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("https://u:pw@h.example:8443/x?y"),
            "https://h.example:8443/…"
        );
        assert_eq!(mask_url("not a url"), "(invalid URL)");
        let plan = "notify:\n  webhook: https://hooks.slack.com/services/T0/B0/XYZ\n";
        let masked = mask_plan_text(plan, &["https://hooks.slack.com/services/T0/B0/XYZ"]);
        assert!(!masked.contains("XYZ"), "{masked}");
        assert_eq!(
            masked,
            "notify:\n  webhook: \"https://hooks.slack.com/…\"\n"
        );
        // Quoted, with an escape the parsed URL does not show, in a flow mapping: masked all
        // the same, and the rest of the line kept.
        let quoted = "notify: { webhook: \"https://h.example/a\\u0042c\", on: [done] }\n";
        let masked = mask_plan_text(quoted, &["https://h.example/aBc"]);
        assert_eq!(
            masked,
            "notify: { webhook: \"https://h.example/…\", on: [done] }\n"
        );
        let single = "notify: { webhook: 'https://h.example/it''s', on: [done] }";
        assert_eq!(
            mask_plan_text(single, &[]),
            "notify: { webhook: \"https://h.example/…\", on: [done] }"
        );
        let plain = "notify: { webhook: https://h.example/x?y=1, on: [done] } # hook\n";
        assert_eq!(
            mask_plan_text(plain, &[]),
            "notify: { webhook: \"https://h.example/…\", on: [done] } # hook\n"
        );
    }
}
