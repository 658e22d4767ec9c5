//! `warroom report`: what a run did and whether it met the plan's `success` targets, computed
//! from its journal alone (no cluster, no Prometheus), so it can be produced any time later and
//! pasted into a ticket. `docs/report.md` documents every section, figure and JSON field.
//!
//! Reading is tolerant where a crash leaves marks (a torn last line) and where a newer writer
//! adds record types, and strict elsewhere: a broken line in the middle means the journal is not
//! what the run wrote, and a report computed from it would mislead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::engine::Level;
use crate::journal::record::{self, EnvironmentRecord, Line, OperatorCommand, Record, Start};
use crate::plan::{Plan, TierName, TrackName};

/// The version of the report's JSON shape; bumped when a field changes meaning or goes away.
pub const FORMAT: u32 = 1;

/// Why a journal could not be reported on.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line before the last is not a journal line: the file is damaged or not a journal.
    #[error("{}: line {line}: {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Nothing to report on.
    #[error("the journal has no lines")]
    Empty,
    /// Every run's journal starts with `start`; without it nothing is known about the run.
    #[error(
        "the first line is a `{found}` line, not `start`: not a warroom journal, or its beginning is missing"
    )]
    NoStart { found: String },
}

/// The lines of a journal file and what reading them had to leave out.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    pub path: PathBuf,
    pub lines: Vec<Line>,
    /// Lines skipped (a torn last line, unknown record types), for the report's warnings.
    pub warnings: Vec<String>,
}

impl Journal {
    /// The report, with what reading skipped listed among its warnings.
    pub fn report(&self) -> Result<Report, ReportError> {
        let mut report = build(&self.lines)?;
        let mut warnings = self.warnings.clone();
        warnings.append(&mut report.warnings);
        report.warnings = warnings;
        Ok(report)
    }
}

/// Every `type` this build knows; any other is a newer writer's and is skipped, not an error.
const KNOWN_TYPES: &[&str] = &[
    "start",
    "resume",
    "command",
    "begin",
    "tick",
    "samples",
    "unanswered",
    "weight",
    "workload",
    "intent",
    "result",
    "step",
    "rollback_step",
    "status",
    "log",
    "snapshot",
    "notify",
    "lease",
    "end",
];

/// Reads a journal file; see [`parse`] for what is tolerated.
pub fn read(path: &Path) -> Result<Journal, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses journal bytes (`path` only names the file in messages). A torn last line — the process
/// was killed while writing it — is skipped with a warning, as are lines of unknown types; any
/// other line that does not read is an error naming its line number. The first line must be
/// `start`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Journal, ReportError> {
    let split = crate::journal::read::split(bytes);
    let texts: Vec<(usize, String)> = split
        .whole
        .iter()
        .map(|(n, raw, _)| (*n, String::from_utf8_lossy(raw).trim().to_string()))
        .filter(|(_, text)| !text.is_empty())
        .collect();
    let bad = |line: usize, message: String| ReportError::BadLine {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = Vec::with_capacity(texts.len());
    let mut warnings = Vec::new();
    for (number, text) in &texts {
        let number = *number;
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Err(bad(number, format!("not a JSON line: {e}"))),
        };
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_string);
        match serde_json::from_value::<Line>(value) {
            Ok(line) => lines.push(line),
            Err(e) => match kind {
                Some(kind) if !KNOWN_TYPES.contains(&kind.as_str()) => {
                    warnings.push(format!(
                        "line {number}: unknown record type `{kind}` ignored (written by a newer warroom?)"
                    ));
                }
                Some(kind) => {
                    return Err(bad(
                        number,
                        format!("a `{kind}` line that does not read: {e}"),
                    ));
                }
                None => return Err(bad(number, format!("not a journal line: {e}"))),
            },
        }
    }
    // Torn as `--resume` reads it: a last line without its newline, whether or not it parses.
    if let Some((number, length)) = split.torn {
        warnings.push(format!(
            "line {number} is torn ({length} bytes without their newline) and was skipped: the process was stopped while writing it"
        ));
    }
    match lines.first() {
        None => Err(ReportError::BadLine {
            path: path.to_path_buf(),
            line: 1,
            message: "the journal has no complete line".to_string(),
        }),
        Some(first) if !matches!(first.record, Record::Start(_)) => Err(bad(
            texts.first().map(|(n, _)| *n).unwrap_or(1),
            ReportError::NoStart {
                found: type_name(&first.record).to_string(),
            }
            .to_string(),
        )),
        Some(_) => Ok(Journal {
            path: path.to_path_buf(),
            lines,
            warnings,
        }),
    }
}

/// A moment, written as RFC 3339 (UTC, milliseconds) in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub SystemTime);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = jiff::Timestamp::try_from(self.0)
            .map(|t| t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string())
            .unwrap_or_else(|_| record::rfc3339::format(self.0));
        s.serialize_str(&text)
    }
}

impl Time {
    fn stamp(self, format: &str) -> String {
        jiff::Timestamp::try_from(self.0)
            .map(|t| t.strftime(format).to_string())
            .unwrap_or_else(|_| "?".to_string())
    }

    /// `HH:MM:SS`, UTC.
    pub fn clock(self) -> String {
        self.stamp("%H:%M:%S")
    }

    /// `YYYY-MM-DD`, UTC.
    pub fn date(self) -> String {
        self.stamp("%Y-%m-%d")
    }

    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn full(self) -> String {
        self.stamp("%Y-%m-%d %H:%M:%S UTC")
    }

    fn since(self, earlier: Time) -> Duration {
        self.0.duration_since(earlier.0).unwrap_or_default()
    }
}

/// The report: everything below serializes as documented in `docs/report.md`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: u32,
    pub summary: Summary,
    pub timeline: Vec<Event>,
    pub operators: Vec<OperatorActivity>,
    pub phases: Vec<PhaseTime>,
    pub verdicts: Vec<Alert>,
    pub rollbacks: Vec<RollbackReport>,
    pub downtime: Vec<EnvironmentDowntime>,
    /// Absent when there was no error metric or no sample after the last step.
    pub error_rate: Option<ErrorRate>,
    pub success: SuccessReport,
    pub warnings: Vec<String>,
}

/// Who ran what, where, when, and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub plan: String,
    pub plan_path: String,
    pub plan_sha256: String,
    pub journal_version: u32,
    pub run_id: String,
    pub warroom: String,
    pub host: String,
    pub mode: String,
    pub auto_approve: String,
    pub override_window: Option<String>,
    /// Who started the run.
    pub operator: String,
    /// Everyone who started, resumed or commanded the run, in order of first appearance.
    pub operators: Vec<String>,
    pub environments: Vec<EnvironmentRecord>,
    pub started: Time,
    /// The `end` line's time; absent when the process was stopped without finishing.
    pub ended: Option<Time>,
    pub last_line: Time,
    /// Started → ended, or → the last line when there is no end.
    pub duration_ms: u64,
    pub finished: bool,
    /// The end's status, else the last `status` line's.
    pub status: String,
    pub exit: Option<i32>,
    pub end_reason: Option<String>,
    /// For a run without an end: what that means and how to continue it.
    pub note: Option<String>,
    pub resumes: Vec<ResumeReport>,
}

/// One `resume` line.
#[derive(Debug, Clone, Serialize)]
pub struct ResumeReport {
    pub at: Time,
    pub operator: String,
    pub host: String,
    pub forced: bool,
    pub changes: Vec<String>,
    pub torn_line: bool,
}

/// What kind of timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Start,
    Resume,
    Step,
    Status,
    Command,
    Alert,
    Rollback,
    End,
}

/// One notable event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: Time,
    pub kind: EventKind,
    pub operator: Option<String>,
    pub environment: Option<String>,
    pub text: String,
}

/// One operator's part.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorActivity {
    pub name: String,
    pub started_run: bool,
    pub resumes: usize,
    pub count: usize,
    pub commands: Vec<CommandEntry>,
}

/// One command an operator gave.
#[derive(Debug, Clone, Serialize)]
pub struct CommandEntry {
    pub at: Time,
    /// The journal's name for it: `advance`, `rollback`, `skip`, … (`begin` for a headless start).
    pub command: String,
    pub text: String,
}

/// How long a phase took.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub index: usize,
    pub name: String,
    pub environment: Option<String>,
    /// Slots the phase has (steps, plus the approval gate), when the plan is known.
    pub slots: Option<usize>,
    pub started: Option<Time>,
    pub finished: Option<Time>,
    pub duration_ms: Option<u64>,
    /// `finished`, `not finished` or `not started`.
    pub state: String,
}

/// A warn- or error-level log line: a breach, an alert, a countdown, a rollback note.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub at: Time,
    pub level: Level,
    pub environment: String,
    pub text: String,
}

/// How a rollback run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackOutcome {
    RolledBack,
    RollbackFailed,
    /// Another rollback run took over before it settled.
    PreEmpted,
    NotFinished,
}

impl RollbackOutcome {
    fn label(self) -> &'static str {
        match self {
            RollbackOutcome::RolledBack => "ROLLED BACK",
            RollbackOutcome::RollbackFailed => "ROLLBACK FAILED",
            RollbackOutcome::PreEmpted => "pre-empted",
            RollbackOutcome::NotFinished => "not finished",
        }
    }
}

/// One action of a rollback run, as last seen.
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    pub action: usize,
    pub label: String,
    pub state: String,
    pub detail: Option<String>,
}

/// One rollback run (a tier started, or a retry of its failed actions).
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub run: u32,
    pub tier: TierName,
    pub environment: String,
    pub started: Time,
    pub finished: Option<Time>,
    pub duration_ms: Option<u64>,
    pub target_ms: Option<u64>,
    /// Absent without a target or a finish; false for a failed run.
    pub target_met: Option<bool>,
    pub outcome: RollbackOutcome,
    pub preempted_by: Option<u32>,
    /// The failed actions and why.
    pub failed: Vec<ActionReport>,
    pub actions: Vec<ActionReport>,
}

/// A stretch with no ready pod in an environment.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub from: Time,
    pub to: Time,
    pub duration_ms: u64,
    /// Still at zero when the environment stopped being watched (or the journal ended).
    pub open: bool,
}

/// Downtime of one environment, from its `workload` lines.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentDowntime {
    pub environment: String,
    /// False when the journal has no `workload` line for it.
    pub measured: bool,
    pub zero_ready_ms: Option<u64>,
    pub watched_from: Option<Time>,
    pub watched_to: Option<Time>,
    pub gaps: Vec<Gap>,
}

/// The error metric after the last step.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRate {
    pub metric: String,
    /// When the run reached COMPLETE.
    pub from: Time,
    /// The last sample round used.
    pub to: Time,
    pub window_ms: u64,
    /// Values used (both tracks).
    pub samples: usize,
    /// Empty answers left out.
    pub empty: usize,
    pub mean: f64,
    pub max: f64,
}

/// A target's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetVerdict {
    #[serde(rename = "met")]
    Met,
    #[serde(rename = "missed")]
    Missed,
    #[serde(rename = "unknown")]
    Unknown,
    /// The target does not apply to this run (recovery time without a rollback).
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl TargetVerdict {
    fn label(self) -> &'static str {
        match self {
            TargetVerdict::Met => "met",
            TargetVerdict::Missed => "missed",
            TargetVerdict::Unknown => "unknown",
            TargetVerdict::NotApplicable => "n/a",
        }
    }
}

/// One of the plan's `success` targets, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The plan's key: `max_deploy_time`, `max_downtime`, `max_error_rate`, `max_recovery_time`.
    pub name: String,
    /// As a person reads it: `15m`, `0.1 %`.
    pub target: String,
    /// Milliseconds for times, a ratio for the error rate.
    pub target_value: f64,
    /// `ms` or `ratio`.
    pub unit: String,
    pub verdict: TargetVerdict,
    /// The figure behind the verdict, in `unit`; absent when unknown or not applicable.
    pub value: Option<f64>,
    /// The figure as a person reads it, or why there is none.
    pub figure: String,
    /// How it was computed.
    pub how: String,
}

/// The plan's `success` section, judged.
#[derive(Debug, Clone, Serialize)]
pub struct SuccessReport {
    /// Whether the plan has a `success` section.
    pub defined: bool,
    pub targets: Vec<Target>,
    /// For people to judge; never checked by the report.
    pub criteria: Vec<String>,
}

/// Computes the report from a journal's lines (the first must be `start`). Pure.
pub fn build(lines: &[Line]) -> Result<Report, ReportError> {
    let first = lines.first().ok_or(ReportError::Empty)?;
    let Record::Start(start) = &first.record else {
        return Err(ReportError::NoStart {
            found: type_name(&first.record).to_string(),
        });
    };
    let mut warnings = Vec::new();
    if first.v > record::VERSION {
        warnings.push(format!(
            "journal format version {} is newer than this warroom reads ({}); figures may be incomplete",
            first.v,
            record::VERSION
        ));
    }
    if lines
        .iter()
        .skip(1)
        .any(|l| matches!(l.record, Record::Start(_)))
    {
        warnings.push("more than one `start` line; the first one describes the run".to_string());
    }
    let plan = match crate::plan::parse(Path::new(&start.plan.path), &start.plan.text) {
        Ok(plan) => Some(plan),
        Err(e) => {
            let why = e
                .diagnostics
                .first()
                .map(|d| format!("line {}: {}", d.line, d.message))
                .unwrap_or_default();
            warnings.push(format!(
                "the plan text in the journal does not parse ({why}); success targets, phase sizes and metric names are unknown"
            ));
            None
        }
    };
    let summary = summary(lines, first, start);
    let phases = phases(lines, plan.as_ref());
    let (rollbacks, episodes) = rollbacks(lines, plan.as_ref());
    let downtime = downtime(lines, start);
    let error = error_rate(lines, plan.as_ref());
    let success = success(
        plan.as_ref(),
        &Facts {
            lines,
            summary: &summary,
            episodes: &episodes,
            downtime: &downtime,
            error: &error,
        },
    );
    Ok(Report {
        format: FORMAT,
        timeline: timeline(lines),
        operators: operators(lines),
        verdicts: verdicts(lines),
        summary,
        phases,
        rollbacks,
        downtime,
        error_rate: error.ok(),
        success,
        warnings,
    })
}

/// The journal's name for a record's type.
fn type_name(record: &Record) -> &'static str {
    match record {
        Record::Start(_) => "start",
        Record::Resume(_) => "resume",
        Record::Command { .. } => "command",
        Record::Begin { .. } => "begin",
        Record::Tick => "tick",
        Record::Samples { .. } => "samples",
        Record::Unanswered { .. } => "unanswered",
        Record::Weight { .. } => "weight",
        Record::Workload { .. } => "workload",
        Record::Intent(_) => "intent",
        Record::Result { .. } => "result",
        Record::Step { .. } => "step",
        Record::RollbackStep { .. } => "rollback_step",
        Record::Status { .. } => "status",
        Record::Log { .. } => "log",
        Record::Snapshot { .. } => "snapshot",
        Record::Notify { .. } => "notify",
        Record::Lease { .. } => "lease",
        Record::End { .. } => "end",
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `end` that closes the run: the last one, unless a resume came after it.
fn final_end(lines: &[Line]) -> Option<&Line> {
    let last_end = lines
        .iter()
        .rposition(|l| matches!(l.record, Record::End { .. }))?;
    let last_resume = lines
        .iter()
        .rposition(|l| matches!(l.record, Record::Resume(_)));
    if last_resume.is_some_and(|r| r > last_end) {
        return None;
    }
    lines.get(last_end)
}

fn summary(lines: &[Line], first: &Line, start: &Start) -> Summary {
    let started = Time(first.at);
    let last_line = Time(lines.last().map_or(first.at, |l| l.at));
    let end = final_end(lines);
    let last_status = lines.iter().rev().find_map(|l| match &l.record {
        Record::Status { status } => Some(status.clone()),
        _ => None,
    });
    let (ended, status, exit, end_reason) = match end {
        Some(Line {
            at,
            record:
                Record::End {
                    exit,
                    status,
                    reason,
                },
            ..
        }) => (Some(Time(*at)), status.clone(), Some(*exit), reason.clone()),
        _ => (
            None,
            last_status.unwrap_or_else(|| "READY".to_string()),
            None,
            None,
        ),
    };
    let note = ended.is_none().then(|| {
        format!(
            "no end line: the process was stopped without finishing; `warroom run {} --resume` continues it",
            start.plan.path
        )
    });
    let resumes = lines
        .iter()
        .filter_map(|l| match &l.record {
            Record::Resume(r) => Some(ResumeReport {
                at: Time(l.at),
                operator: r.operator.clone(),
                host: r.host.clone(),
                forced: r.forced,
                changes: r.changes.clone(),
                torn_line: r.torn_line,
            }),
            _ => None,
        })
        .collect();
    let mut operators = vec![start.operator.clone()];
    for line in lines {
        let name = match &line.record {
            Record::Resume(r) => &r.operator,
            Record::Command { operator, .. } | Record::Begin { operator } => operator,
            _ => continue,
        };
        if !operators.contains(name) {
            operators.push(name.clone());
        }
    }
    Summary {
        plan: start.plan.name.clone(),
        plan_path: start.plan.path.clone(),
        plan_sha256: start.plan.sha256.clone(),
        journal_version: first.v,
        run_id: start.run_id.clone(),
        warroom: start.warroom.clone(),
        host: start.host.clone(),
        mode: start.mode.clone(),
        auto_approve: start.auto_approve.clone(),
        override_window: start.override_window.clone(),
        operator: start.operator.clone(),
        operators,
        environments: start.environments.clone(),
        started,
        ended,
        last_line,
        duration_ms: ms(ended.unwrap_or(last_line).since(started)),
        finished: ended.is_some(),
        status,
        exit,
        end_reason,
        note,
        resumes,
    }
}

/// The journal's name for a command.
fn command_name(command: &OperatorCommand) -> &'static str {
    match command {
        OperatorCommand::Advance => "advance",
        OperatorCommand::Pause => "pause",
        OperatorCommand::CancelCountdown => "cancel_countdown",
        OperatorCommand::WeightUp => "weight_up",
        OperatorCommand::WeightDown => "weight_down",
        OperatorCommand::SetWeight { .. } => "set_weight",
        OperatorCommand::Rollback { .. } => "rollback",
        OperatorCommand::Skip { .. } => "skip",
        OperatorCommand::WindowOverride { .. } => "window_override",
        OperatorCommand::OverrideAllWindows { .. } => "override_all_windows",
        OperatorCommand::Note { .. } => "note",
        OperatorCommand::Op { .. } => "op",
    }
}

/// A command as a person reads it, with its key.
fn describe_command(command: &OperatorCommand) -> String {
    match command {
        OperatorCommand::Advance => "advance (n)".to_string(),
        OperatorCommand::Pause => "pause/resume (p)".to_string(),
        OperatorCommand::CancelCountdown => "cancel the rollback countdown (x)".to_string(),
        OperatorCommand::WeightUp => "canary weight up (+)".to_string(),
        OperatorCommand::WeightDown => "canary weight down (-)".to_string(),
        OperatorCommand::SetWeight { percent } => format!("canary weight to {percent}%"),
        OperatorCommand::Rollback { tier } => format!("rollback {}", tier.as_str()),
        OperatorCommand::Skip { reason } => format!("skip: {reason}"),
        OperatorCommand::WindowOverride { reason } => format!("override the window: {reason}"),
        OperatorCommand::OverrideAllWindows { reason } => {
            format!("override every phase's window: {reason}")
        }
        OperatorCommand::Note { text } => format!("note: {text}"),
        OperatorCommand::Op { name } => format!("hand the keys to {name} (:op)"),
    }
}

fn with_detail(text: String, detail: &Option<String>) -> String {
    match detail {
        Some(d) if !d.is_empty() => format!("{text} ({d})"),
        _ => text,
    }
}

/// Step states worth a timeline entry.
const NOTABLE_STEP_STATES: &[&str] = &["running", "waiting", "blocked", "done", "failed"];

fn timeline(lines: &[Line]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut step_states: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let mut action_states: BTreeMap<(u32, usize), String> = BTreeMap::new();
    let mut status_now: Option<String> = None;
    for line in lines {
        let at = Time(line.at);
        let mut push = |kind, operator: Option<&str>, environment: Option<&str>, text: String| {
            events.push(Event {
                at,
                kind,
                operator: operator.map(str::to_string),
                environment: environment.map(str::to_string),
                text,
            })
        };
        match &line.record {
            Record::Start(s) => push(
                EventKind::Start,
                Some(&s.operator),
                None,
                format!(
                    "run of {} started by {} on {} ({}, auto-approve {})",
                    s.plan.name, s.operator, s.host, s.mode, s.auto_approve
                ),
            ),
            Record::Resume(r) => {
                let mut text = format!("run resumed by {} on {}", r.operator, r.host);
                if r.forced {
                    text.push_str(&format!(
                        " with --force on a changed plan ({})",
                        r.changes.join("; ")
                    ));
                }
                if r.torn_line {
                    text.push_str("; a torn last line was left out");
                }
                push(EventKind::Resume, Some(&r.operator), None, text)
            }
            Record::Command { operator, command } => push(
                EventKind::Command,
                Some(operator),
                None,
                format!("{operator}: {}", describe_command(command)),
            ),
            Record::Begin { operator } => push(
                EventKind::Command,
                Some(operator),
                None,
                format!("{operator}: headless run begun"),
            ),
            Record::Step {
                phase,
                phase_name,
                slot,
                label,
                state,
                detail,
            } => {
                let before = step_states.insert((*phase, *slot), state.clone());
                if before.as_deref() != Some(state.as_str())
                    && NOTABLE_STEP_STATES.contains(&state.as_str())
                {
                    push(
                        EventKind::Step,
                        None,
                        None,
                        with_detail(format!("{phase_name} · {label}: {state}"), detail),
                    )
                }
            }
            Record::RollbackStep {
                run,
                tier,
                environment,
                action,
                label,
                state,
                detail,
                ..
            } => {
                let before = action_states.insert((*run, *action), state.clone());
                if before.as_deref() != Some(state.as_str())
                    && matches!(state.as_str(), "running" | "done" | "failed")
                {
                    push(
                        EventKind::Rollback,
                        None,
                        Some(environment),
                        with_detail(
                            format!("rollback run {run} ({}) · {label}: {state}", tier.as_str()),
                            detail,
                        ),
                    )
                }
            }
            Record::Status { status } if status_now.as_deref() != Some(status.as_str()) => {
                status_now = Some(status.clone());
                push(EventKind::Status, None, None, format!("status → {status}"))
            }
            Record::Log {
                level: level @ (Level::Warn | Level::Error),
                environment,
                text,
            } => {
                let mark = if *level == Level::Error {
                    "error"
                } else {
                    "warn"
                };
                push(
                    EventKind::Alert,
                    None,
                    Some(environment),
                    format!("{mark}: {text}"),
                )
            }
            Record::End {
                exit,
                status,
                reason,
            } => push(
                EventKind::End,
                None,
                None,
                with_detail(format!("end: {status}, exit {exit}"), reason),
            ),
            _ => {}
        }
    }
    events
}

fn operators(lines: &[Line]) -> Vec<OperatorActivity> {
    let mut out: Vec<OperatorActivity> = Vec::new();
    fn entry<'a>(out: &'a mut Vec<OperatorActivity>, name: &str) -> &'a mut OperatorActivity {
        let i = match out.iter().position(|o| o.name == name) {
            Some(i) => i,
            None => {
                out.push(OperatorActivity {
                    name: name.to_string(),
                    started_run: false,
                    resumes: 0,
                    count: 0,
                    commands: Vec::new(),
                });
                out.len() - 1
            }
        };
        &mut out[i]
    }
    for line in lines {
        let at = Time(line.at);
        match &line.record {
            Record::Start(s) => entry(&mut out, &s.operator).started_run = true,
            Record::Resume(r) => entry(&mut out, &r.operator).resumes += 1,
            Record::Command { operator, command } => {
                entry(&mut out, operator).commands.push(CommandEntry {
                    at,
                    command: command_name(command).to_string(),
                    text: describe_command(command),
                })
            }
            Record::Begin { operator } => entry(&mut out, operator).commands.push(CommandEntry {
                at,
                command: "begin".to_string(),
                text: "headless run begun".to_string(),
            }),
            _ => {}
        }
    }
    for o in &mut out {
        o.count = o.commands.len();
    }
    out
}

fn phases(lines: &[Line], plan: Option<&Plan>) -> Vec<PhaseTime> {
    #[derive(Default)]
    struct Acc {
        name: String,
        environment: Option<String>,
        slots: Option<usize>,
        started: Option<SystemTime>,
        first_waiting: Option<SystemTime>,
        states: BTreeMap<usize, String>,
        finished: Option<SystemTime>,
        last_done: Option<SystemTime>,
    }
    // Keyed by index: a phase the plan does not list (the plan did not parse) is known by its
    // lines only, and an absurd index from a damaged line adds one entry, not a million.
    let mut acc: BTreeMap<usize, Acc> = plan
        .map(|p| {
            p.phases
                .iter()
                .enumerate()
                .map(|(i, ph)| {
                    let acc = Acc {
                        name: ph.name.clone(),
                        environment: Some(ph.environment.clone()),
                        slots: Some(ph.steps.len() + usize::from(!ph.approval.is_empty())),
                        ..Acc::default()
                    };
                    (i, acc)
                })
                .collect()
        })
        .unwrap_or_default();
    for line in lines {
        let Record::Step {
            phase,
            phase_name,
            slot,
            state,
            ..
        } = &line.record
        else {
            continue;
        };
        let a = acc.entry(*phase).or_default();
        if a.name.is_empty() {
            a.name = phase_name.clone();
        }
        match state.as_str() {
            "running" if a.started.is_none() => a.started = Some(line.at),
            "waiting" if a.first_waiting.is_none() => a.first_waiting = Some(line.at),
            _ => {}
        }
        a.states.insert(*slot, state.clone());
        let done = a.states.values().filter(|s| *s == "done").count();
        if state == "done" {
            a.last_done = Some(line.at);
        }
        a.finished = match a.slots {
            Some(n) if done >= n && n > 0 => a.finished.or(Some(line.at)),
            _ => None,
        };
    }
    // Without the plan, a phase whose every seen slot is done counts as finished once a later
    // phase has begun.
    let began: Vec<usize> = acc
        .iter()
        .filter(|(_, a)| !a.states.is_empty())
        .map(|(i, _)| *i)
        .collect();
    acc.into_iter()
        .map(|(index, a)| {
            let later_began = began.iter().any(|i| *i > index);
            let finished = match a.slots {
                Some(_) => a.finished,
                None if later_began && a.states.values().all(|s| s == "done") => a.last_done,
                None => None,
            };
            let started = a.started.or(a.first_waiting);
            let state = match (started, finished) {
                (_, Some(_)) => "finished",
                (Some(_), None) => "not finished",
                (None, None) if !a.states.is_empty() => "not finished",
                (None, None) => "not started",
            };
            PhaseTime {
                index,
                name: a.name,
                environment: a.environment,
                slots: a.slots,
                started: started.map(Time),
                finished: finished.map(Time),
                duration_ms: match (started, finished) {
                    (Some(s), Some(f)) => Some(ms(Time(f).since(Time(s)))),
                    _ => None,
                },
                state: state.to_string(),
            }
        })
        .collect()
}

fn verdicts(lines: &[Line]) -> Vec<Alert> {
    lines
        .iter()
        .filter_map(|l| match &l.record {
            Record::Log {
                level: level @ (Level::Warn | Level::Error),
                environment,
                text,
            } => Some(Alert {
                at: Time(l.at),
                level: *level,
                environment: environment.clone(),
                text: text.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// From a rollback's start to the run's recovery (ROLLED BACK), across retries and tiers that
/// pre-empt one another.
#[derive(Debug, Clone)]
struct Episode {
    started: Time,
    /// ROLLED BACK at.
    recovered: Option<Time>,
    /// The last settle was ROLLBACK FAILED, with nothing after it.
    failed: bool,
    runs: Vec<u32>,
}

fn rollbacks(lines: &[Line], plan: Option<&Plan>) -> (Vec<RollbackReport>, Vec<Episode>) {
    struct Run {
        report: RollbackReport,
        last_settle: Option<SystemTime>,
        actions: BTreeMap<usize, ActionReport>,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut open: Option<usize> = None;
    let mut pending_start: Option<SystemTime> = None;
    let mut episodes: Vec<Episode> = Vec::new();
    let mut episode_open = false;
    let settle = |run: &mut Run, at: SystemTime, outcome: RollbackOutcome| {
        let r = &mut run.report;
        r.finished = Some(Time(at));
        r.duration_ms = Some(ms(Time(at).since(r.started)));
        r.outcome = outcome;
    };
    for line in lines {
        match &line.record {
            Record::Status { status } if status == "ROLLING BACK" => {
                let belongs_to_open = open
                    .and_then(|i| runs.get(i))
                    .is_some_and(|r| r.report.finished.is_none() && r.report.started.0 == line.at);
                if !belongs_to_open {
                    pending_start = Some(line.at);
                }
            }
            Record::Status { status } if status == "ROLLED BACK" || status == "ROLLBACK FAILED" => {
                let outcome = if status == "ROLLED BACK" {
                    RollbackOutcome::RolledBack
                } else {
                    RollbackOutcome::RollbackFailed
                };
                if let Some(run) = open.take().and_then(|i| runs.get_mut(i)) {
                    settle(run, line.at, outcome);
                }
                pending_start = None;
                if let Some(e) = episodes.last_mut().filter(|_| episode_open) {
                    if outcome == RollbackOutcome::RolledBack {
                        e.recovered = Some(Time(line.at));
                        e.failed = false;
                        episode_open = false;
                    } else {
                        e.failed = true;
                    }
                }
            }
            Record::RollbackStep {
                run,
                tier,
                environment,
                action,
                label,
                state,
                detail,
                target_ms,
            } => {
                let index = match runs.iter().position(|r| r.report.run == *run) {
                    Some(i) => i,
                    None => {
                        let at = line.at;
                        let started = pending_start.take().map_or(at, |p| p.min(at));
                        if let Some(previous) = open.and_then(|i| runs.get_mut(i)) {
                            if previous.report.finished.is_none() {
                                settle(previous, at, RollbackOutcome::PreEmpted);
                                previous.report.preempted_by = Some(*run);
                            }
                        }
                        if !episode_open {
                            episodes.push(Episode {
                                started: Time(started),
                                recovered: None,
                                failed: false,
                                runs: Vec::new(),
                            });
                            episode_open = true;
                        }
                        if let Some(e) = episodes.last_mut() {
                            e.runs.push(*run);
                            e.failed = false;
                        }
                        runs.push(Run {
                            report: RollbackReport {
                                run: *run,
                                tier: *tier,
                                environment: environment.clone(),
                                started: Time(started),
                                finished: None,
                                duration_ms: None,
                                target_ms: target_ms.map(ms),
                                target_met: None,
                                outcome: RollbackOutcome::NotFinished,
                                preempted_by: None,
                                failed: Vec::new(),
                                actions: Vec::new(),
                            },
                            last_settle: None,
                            actions: BTreeMap::new(),
                        });
                        open = Some(runs.len() - 1);
                        runs.len() - 1
                    }
                };
                if let Some(r) = runs.get_mut(index) {
                    if r.report.target_ms.is_none() {
                        r.report.target_ms = target_ms.map(ms);
                    }
                    if matches!(state.as_str(), "done" | "failed") {
                        r.last_settle = Some(line.at);
                    }
                    r.actions.insert(
                        *action,
                        ActionReport {
                            action: *action,
                            label: label.clone(),
                            state: state.clone(),
                            detail: detail.clone(),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    // No settling status line: a run whose every action (as many as the plan's tier has) is
    // done or failed settled when its last action did.
    for r in &mut runs {
        let expected = plan.map(|p| crate::engine::state::rollback_actions(p, r.report.tier).len());
        let all_settled = !r.actions.is_empty()
            && r.actions
                .values()
                .all(|a| matches!(a.state.as_str(), "done" | "failed"));
        if r.report.finished.is_none()
            && all_settled
            && expected.is_some_and(|n| r.actions.len() >= n)
        {
            if let Some(at) = r.last_settle {
                let failed = r.actions.values().any(|a| a.state == "failed");
                let outcome = if failed {
                    RollbackOutcome::RollbackFailed
                } else {
                    RollbackOutcome::RolledBack
                };
                settle(r, at, outcome);
                if let Some(e) = episodes.iter_mut().find(|e| e.runs.contains(&r.report.run)) {
                    if e.recovered.is_none() {
                        if failed {
                            e.failed = true;
                        } else {
                            e.recovered = Some(Time(at));
                        }
                    }
                }
            }
        }
    }
    let reports = runs
        .into_iter()
        .map(|r| {
            let mut report = r.report;
            report.actions = r.actions.into_values().collect();
            report.failed = report
                .actions
                .iter()
                .filter(|a| a.state == "failed")
                .cloned()
                .collect();
            report.target_met = match (report.outcome, report.target_ms, report.duration_ms) {
                (RollbackOutcome::RollbackFailed, Some(_), _) => Some(false),
                (RollbackOutcome::RolledBack, Some(target), Some(took)) => Some(took <= target),
                _ => None,
            };
            report
        })
        .collect();
    (reports, episodes)
}

fn downtime(lines: &[Line], start: &Start) -> Vec<EnvironmentDowntime> {
    struct Acc {
        ready: BTreeMap<TrackName, u32>,
        zero_since: Option<SystemTime>,
        gaps: Vec<Gap>,
        from: Option<SystemTime>,
        to: Option<SystemTime>,
    }
    let mut order: Vec<String> = start.environments.iter().map(|e| e.name.clone()).collect();
    let mut envs: BTreeMap<String, Acc> = BTreeMap::new();
    let close = |acc: &mut Acc, at: SystemTime, open: bool| {
        if let Some(from) = acc.zero_since.take() {
            acc.gaps.push(Gap {
                from: Time(from),
                to: Time(at),
                duration_ms: ms(Time(at).since(Time(from))),
                open,
            });
        }
        acc.to = Some(at);
    };
    let mut watched: Option<String> = None;
    let mut previous_at = lines.first().map(|l| l.at);
    for line in lines {
        let before = previous_at.replace(line.at);
        // While warroom was stopped nothing was watched: a stretch open at the stop ends at
        // the last line before it, and counting starts again with the resumed run's lines.
        if matches!(line.record, Record::Resume(_)) {
            if let (Some(acc), Some(before)) =
                (watched.take().and_then(|w| envs.get_mut(&w)), before)
            {
                close(acc, before, true);
                acc.ready.clear();
            }
            continue;
        }
        let Record::Workload {
            environment,
            track,
            ready,
            ..
        } = &line.record
        else {
            continue;
        };
        // Only the environment on screen is watched: another one's last counts go stale.
        if watched.as_deref() != Some(environment.as_str()) {
            if let Some(previous) = watched.take().and_then(|w| envs.get_mut(&w)) {
                close(previous, line.at, true);
            }
            watched = Some(environment.clone());
        }
        if !order.contains(environment) {
            order.push(environment.clone());
        }
        let acc = envs.entry(environment.clone()).or_insert_with(|| Acc {
            ready: BTreeMap::new(),
            zero_since: None,
            gaps: Vec::new(),
            from: Some(line.at),
            to: None,
        });
        acc.to = Some(line.at);
        acc.ready.insert(*track, *ready);
        let total: u64 = acc.ready.values().map(|r| u64::from(*r)).sum();
        if total == 0 && acc.zero_since.is_none() {
            acc.zero_since = Some(line.at);
        } else if total > 0 && acc.zero_since.is_some() {
            close(acc, line.at, false);
        }
    }
    if let (Some(w), Some(last)) = (watched, lines.last()) {
        if let Some(acc) = envs.get_mut(&w) {
            close(acc, last.at, true);
        }
    }
    order
        .into_iter()
        .map(|name| match envs.remove(&name) {
            Some(acc) => EnvironmentDowntime {
                environment: name,
                measured: true,
                zero_ready_ms: Some(acc.gaps.iter().map(|g| g.duration_ms).sum()),
                watched_from: acc.from.map(Time),
                watched_to: acc.to.map(Time),
                gaps: acc.gaps,
            },
            None => EnvironmentDowntime {
                environment: name,
                measured: false,
                zero_ready_ms: None,
                watched_from: None,
                watched_to: None,
                gaps: Vec::new(),
            },
        })
        .collect()
}

/// The plan's error metric: the first query whose name contains "error".
fn error_metric(plan: &Plan) -> Option<&str> {
    plan.metrics
        .queries
        .keys()
        .find(|k| k.to_lowercase().contains("error"))
        .map(String::as_str)
}

/// The last COMPLETE status line's position and time.
fn complete_at(lines: &[Line]) -> Option<(usize, SystemTime)> {
    lines
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| match &l.record {
            Record::Status { status } if status == "COMPLETE" => Some((i, l.at)),
            _ => None,
        })
}

/// The error metric after the last step, or why it cannot be computed.
fn error_rate(lines: &[Line], plan: Option<&Plan>) -> Result<ErrorRate, String> {
    let plan = plan.ok_or("the plan in the journal does not parse")?;
    let metric = error_metric(plan)
        .ok_or("the plan has no metric query whose name contains \"error\"")?
        .to_string();
    let Some((index, complete)) = complete_at(lines) else {
        return Err("the run never reached COMPLETE, so there is no after".to_string());
    };
    let (mut values, mut empty, mut to) = (Vec::new(), 0usize, None);
    for line in lines.iter().skip(index + 1) {
        let Record::Samples { samples } = &line.record else {
            continue;
        };
        let mut used = false;
        for s in samples.iter().filter(|s| s.metric == metric) {
            match s.value {
                Some(v) if v.is_finite() => {
                    values.push(v);
                    used = true;
                }
                _ => empty += 1,
            }
        }
        if used {
            to = Some(line.at);
        }
    }
    let Some(to) = to else {
        return Err(format!(
            "no {metric} samples after the last step (COMPLETE at {})",
            Time(complete).clock()
        ));
    };
    let sum: f64 = values.iter().sum();
    let count = values.len();
    Ok(ErrorRate {
        metric,
        from: Time(complete),
        to: Time(to),
        window_ms: ms(Time(to).since(Time(complete))),
        samples: count,
        empty,
        mean: sum / count as f64,
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// What the success targets are judged from.
struct Facts<'a> {
    lines: &'a [Line],
    summary: &'a Summary,
    episodes: &'a [Episode],
    downtime: &'a [EnvironmentDowntime],
    error: &'a Result<ErrorRate, String>,
}

fn duration_target(
    name: &str,
    target: Duration,
    figure: Result<(Duration, String), (TargetVerdict, String, String)>,
) -> Target {
    let (verdict, value, figure, how) = match figure {
        Ok((took, how)) => (
            if took <= target {
                TargetVerdict::Met
            } else {
                TargetVerdict::Missed
            },
            Some(ms(took) as f64),
            human_duration(took),
            how,
        ),
        Err((verdict, figure, how)) => (verdict, None, figure, how),
    };
    Target {
        name: name.to_string(),
        target: human_duration(target),
        target_value: ms(target) as f64,
        unit: "ms".to_string(),
        verdict,
        value,
        figure,
        how,
    }
}

fn success(plan: Option<&Plan>, facts: &Facts) -> SuccessReport {
    let Some(success) = plan.and_then(|p| p.success.as_ref()) else {
        return SuccessReport {
            defined: false,
            targets: Vec::new(),
            criteria: Vec::new(),
        };
    };
    let mut targets = Vec::new();
    if let Some(target) = success.max_deploy_time {
        targets.push(duration_target(
            "max_deploy_time",
            target.get(),
            deploy_time(facts),
        ));
    }
    if let Some(target) = success.max_downtime {
        targets.push(downtime_target(target.get(), facts.downtime));
    }
    if let Some(max) = success.max_error_rate {
        targets.push(error_target(max, facts.error));
    }
    if let Some(target) = success.max_recovery_time {
        targets.push(duration_target(
            "max_recovery_time",
            target.get(),
            recovery_time(facts.episodes, facts.lines),
        ));
    }
    SuccessReport {
        defined: true,
        targets,
        criteria: success.criteria.clone(),
    }
}

type Figure = Result<(Duration, String), (TargetVerdict, String, String)>;

fn deploy_time(facts: &Facts) -> Figure {
    let first_running = facts.lines.iter().find_map(|l| match &l.record {
        Record::Step { state, .. } if state == "running" => Some(l.at),
        _ => None,
    });
    let Some(first) = first_running else {
        return Err((
            TargetVerdict::Unknown,
            "no step ran".to_string(),
            "no step ever ran".to_string(),
        ));
    };
    let Some((_, complete)) = complete_at(facts.lines) else {
        let why = if facts.summary.finished {
            format!(
                "the run did not complete: it ended {}",
                facts.summary.status
            )
        } else {
            format!(
                "the run did not complete: it was stopped ({}) without an end line",
                facts.summary.status
            )
        };
        return Err((TargetVerdict::Unknown, "not complete".to_string(), why));
    };
    let took = Time(complete).since(Time(first));
    let mut how = format!(
        "first step running at {} → COMPLETE at {}",
        Time(first).clock(),
        Time(complete).clock()
    );
    if !facts.summary.resumes.is_empty() {
        how.push_str(", wall clock including the time the run was stopped before its resumes");
    }
    Ok((took, how))
}

fn downtime_target(target: Duration, downtime: &[EnvironmentDowntime]) -> Target {
    let measured: Vec<&EnvironmentDowntime> = downtime.iter().filter(|d| d.measured).collect();
    let unmeasured: Vec<&str> = downtime
        .iter()
        .filter(|d| !d.measured)
        .map(|d| d.environment.as_str())
        .collect();
    let worst = measured
        .iter()
        .max_by_key(|d| d.zero_ready_ms.unwrap_or(0))
        .copied();
    let parts: Vec<String> = measured
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d.environment,
                human_duration(Duration::from_millis(d.zero_ready_ms.unwrap_or(0)))
            )
        })
        .collect();
    let mut how = "time with zero ready pods (stable and canary summed) per environment, from workload lines, measured only while the environment was watched".to_string();
    if !parts.is_empty() {
        how.push_str(&format!(": {}", parts.join(", ")));
    }
    if !unmeasured.is_empty() {
        how.push_str(&format!(
            "; no workload lines for {}: never watched",
            unmeasured.join(", ")
        ));
    }
    let figure: Figure = match worst {
        None => Err((
            TargetVerdict::Unknown,
            "not measured".to_string(),
            how.clone(),
        )),
        Some(w) => {
            let took = Duration::from_millis(w.zero_ready_ms.unwrap_or(0));
            if took > target || unmeasured.is_empty() {
                Ok((took, format!("{how} (worst: {})", w.environment)))
            } else {
                Err((
                    TargetVerdict::Unknown,
                    format!("{} so far", human_duration(took)),
                    how.clone(),
                ))
            }
        }
    };
    duration_target("max_downtime", target, figure)
}

fn error_target(max: f64, error: &Result<ErrorRate, String>) -> Target {
    let (verdict, value, figure, how) = match error {
        Ok(e) => (
            if e.mean <= max {
                TargetVerdict::Met
            } else {
                TargetVerdict::Missed
            },
            Some(e.mean),
            percent(e.mean),
            format!(
                "{} over both tracks, over {} after the last step, {} samples{}: mean {}, max {} (judged on the mean)",
                e.metric,
                human_duration(Duration::from_millis(e.window_ms)),
                e.samples,
                if e.empty > 0 {
                    format!(" ({} empty answers left out)", e.empty)
                } else {
                    String::new()
                },
                percent(e.mean),
                percent(e.max)
            ),
        ),
        Err(why) => (
            TargetVerdict::Unknown,
            None,
            "no samples".to_string(),
            why.clone(),
        ),
    };
    Target {
        name: "max_error_rate".to_string(),
        target: percent(max),
        target_value: max,
        unit: "ratio".to_string(),
        verdict,
        value,
        figure,
        how,
    }
}

fn recovery_time(episodes: &[Episode], lines: &[Line]) -> Figure {
    if episodes.is_empty() {
        return Err((
            TargetVerdict::NotApplicable,
            "no rollback".to_string(),
            "no rollback ran, so there was nothing to recover from".to_string(),
        ));
    }
    let runs = |e: &Episode| {
        e.runs
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(e) = episodes.iter().find(|e| e.failed) {
        return Err((
            TargetVerdict::Missed,
            "not recovered".to_string(),
            format!(
                "the rollback started at {} (run {}) ended ROLLBACK FAILED and never reached ROLLED BACK",
                e.started.clock(),
                runs(e)
            ),
        ));
    }
    if let Some(e) = episodes.iter().find(|e| e.recovered.is_none()) {
        let last = lines.last().map_or(e.started, |l| Time(l.at));
        return Err((
            TargetVerdict::Unknown,
            format!("over {} unfinished", human_duration(last.since(e.started))),
            format!(
                "the rollback started at {} (run {}) had not settled by the last line",
                e.started.clock(),
                runs(e)
            ),
        ));
    }
    let longest = episodes
        .iter()
        .filter_map(|e| Some((e, e.recovered?.since(e.started))))
        .max_by_key(|(_, d)| *d);
    match longest {
        Some((e, took)) => Ok((
            took,
            format!(
                "rollback start at {} → ROLLED BACK at {} (run {}){}",
                e.started.clock(),
                e.recovered.map(|t| t.clock()).unwrap_or_default(),
                runs(e),
                if episodes.len() > 1 {
                    format!("; the longest of {} rollbacks", episodes.len())
                } else {
                    String::new()
                }
            ),
        )),
        None => Err((
            TargetVerdict::Unknown,
            "unknown".to_string(),
            "no rollback settled".to_string(),
        )),
    }
}

/// `4m 10s`, `30s`, `1h 5m`, `250ms`: whole seconds above one second.
pub fn human_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let secs = (millis + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 || (h > 0 && s > 0) {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// A ratio as a percentage: 0.0012 → `0.12 %`.
pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".to_string();
    }
    let p = ratio * 100.0;
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let text = if p == 0.0 {
        "0".to_string()
    } else if p.abs() >= 0.01 {
        trim(format!("{p:.2}"))
    } else {
        let small = trim(format!("{p:.4}"));
        if small == "0" || small == "-0" {
            format!("{p:.1e}")
        } else {
            small
        }
    };
    format!("{text} %")
}

/// Pretty JSON of the report (shape in `docs/report.md`).
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("the report does not serialize: {e}") }).to_string()
    })
}

/// A table cell: pipes and line breaks would break the table.
pub(crate) fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A time for a table: `HH:MM:SS`, with the date when it is not the run's first day.
fn when(t: Time, first_day: &str) -> String {
    if t.date() == first_day {
        t.clock()
    } else {
        format!("{} {}", t.date(), t.clock())
    }
}

fn opt_duration(d: Option<u64>) -> String {
    d.map(|d| human_duration(Duration::from_millis(d)))
        .unwrap_or_else(|| "—".to_string())
}

/// The report as Markdown, to read on its own in a ticket.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let day = s.started.date();
    let at = |t: Time| when(t, &day);
    let _ = writeln!(out, "# Deployment report: {}\n", s.plan);

    // Summary.
    let _ = writeln!(out, "| | |\n|---|---|");
    let sha: String = s.plan_sha256.chars().take(12).collect();
    let row = |out: &mut String, key: &str, value: String| {
        let _ = writeln!(out, "| {key} | {} |", cell(&value));
    };
    row(
        &mut out,
        "Plan",
        format!("{} (`{}`, sha256 `{sha}…`)", s.plan, s.plan_path),
    );
    row(
        &mut out,
        "Run",
        format!(
            "`{}` · journal v{} · warroom {} on {}",
            s.run_id, s.journal_version, s.warroom, s.host
        ),
    );
    let mut mode = format!("{} · auto-approve {}", s.mode, s.auto_approve);
    if let Some(w) = &s.override_window {
        mode.push_str(&format!(" · windows overridden: {w}"));
    }
    row(&mut out, "Mode", mode);
    let others: Vec<&str> = s
        .operators
        .iter()
        .filter(|o| **o != s.operator)
        .map(String::as_str)
        .collect();
    let mut operators = format!("{} (started the run)", s.operator);
    if !others.is_empty() {
        operators.push_str(&format!(", {}", others.join(", ")));
    }
    row(&mut out, "Operators", operators);
    let envs: Vec<String> = s
        .environments
        .iter()
        .map(|e| format!("{} ({} @ {})", e.name, e.namespace, e.context))
        .collect();
    row(
        &mut out,
        "Environments",
        if envs.is_empty() {
            "—".to_string()
        } else {
            envs.join(", ")
        },
    );
    row(&mut out, "Started", s.started.full());
    match s.ended {
        Some(ended) => row(
            &mut out,
            "Ended",
            format!(
                "{} (after {})",
                ended.full(),
                human_duration(Duration::from_millis(s.duration_ms))
            ),
        ),
        None => row(
            &mut out,
            "Ended",
            format!(
                "— {} (last line at {})",
                s.note.as_deref().unwrap_or("no end line"),
                s.last_line.full()
            ),
        ),
    }
    let mut status = format!("**{}**", s.status);
    if let Some(exit) = s.exit {
        status.push_str(&format!(" · exit {exit}"));
    }
    if let Some(reason) = &s.end_reason {
        status.push_str(&format!(" · {reason}"));
    }
    row(&mut out, "Final status", status);
    let resumes: Vec<String> = s
        .resumes
        .iter()
        .map(|r| {
            let mut text = format!("{} by {}", r.at.full(), r.operator);
            if r.forced {
                text.push_str(&format!(
                    ", forced on a changed plan ({})",
                    r.changes.join("; ")
                ));
            }
            if r.torn_line {
                text.push_str(", a torn last line left out");
            }
            text
        })
        .collect();
    row(
        &mut out,
        "Resumes",
        if resumes.is_empty() {
            "none".to_string()
        } else {
            resumes.join("; ")
        },
    );
    if report.success.defined {
        let count = |v: TargetVerdict| {
            report
                .success
                .targets
                .iter()
                .filter(|t| t.verdict == v)
                .count()
        };
        let parts: Vec<String> = [
            TargetVerdict::Met,
            TargetVerdict::Missed,
            TargetVerdict::Unknown,
            TargetVerdict::NotApplicable,
        ]
        .into_iter()
        .filter(|v| count(*v) > 0)
        .map(|v| format!("{} {}", count(v), v.label()))
        .collect();
        if !parts.is_empty() {
            row(&mut out, "Success targets", parts.join(", "));
        }
    }
    if !report.warnings.is_empty() {
        row(
            &mut out,
            "Warnings",
            format!("{} (see below)", report.warnings.len()),
        );
    }

    // Timeline.
    let _ = writeln!(out, "\n## Timeline (UTC)\n");
    if report.timeline.is_empty() {
        let _ = writeln!(out, "Nothing happened.");
    } else {
        let _ = writeln!(out, "| Time | Event |\n|---|---|");
        for e in &report.timeline {
            let text = match &e.environment {
                Some(env) if e.kind == EventKind::Alert => format!("[{env}] {}", e.text),
                _ => e.text.clone(),
            };
            let text = match e.kind {
                EventKind::Status | EventKind::End | EventKind::Start | EventKind::Resume => {
                    format!("**{text}**")
                }
                _ => text,
            };
            let _ = writeln!(out, "| {} | {} |", at(e.at), cell(&text));
        }
    }

    // Who did what.
    let _ = writeln!(out, "\n## Who did what\n");
    for o in &report.operators {
        let mut roles = Vec::new();
        if o.started_run {
            roles.push("started the run".to_string());
        }
        if o.resumes > 0 {
            roles.push(format!("resumed it {}×", o.resumes));
        }
        let roles = if roles.is_empty() {
            String::new()
        } else {
            format!(" ({})", roles.join(", "))
        };
        let _ = writeln!(
            out,
            "- **{}**{roles}: {} command{}",
            o.name,
            o.count,
            if o.count == 1 { "" } else { "s" }
        );
        for c in &o.commands {
            let _ = writeln!(out, "  - {} {}", at(c.at), c.text.replace('\n', " "));
        }
    }

    // Time per phase.
    let _ = writeln!(out, "\n## Time per phase\n");
    if report.phases.is_empty() {
        let _ = writeln!(out, "No phase is known.");
    } else {
        let _ = writeln!(
            out,
            "| Phase | Environment | Started | Finished | Duration |\n|---|---|---|---|---|"
        );
        for p in &report.phases {
            let finished = match p.finished {
                Some(t) => at(t),
                None => p.state.clone(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&p.name),
                cell(p.environment.as_deref().unwrap_or("—")),
                p.started.map(at).unwrap_or_else(|| "—".to_string()),
                finished,
                opt_duration(p.duration_ms)
            );
        }
        let _ = writeln!(
            out,
            "\nFrom the first step running in the phase to its last step done."
        );
    }

    // Breaches and verdicts.
    let _ = writeln!(out, "\n## Breaches, alerts and verdicts\n");
    if report.verdicts.is_empty() {
        let _ = writeln!(out, "None: no warning or error was logged.");
    } else {
        let _ = writeln!(
            out,
            "| Time | Level | Environment | Text |\n|---|---|---|---|"
        );
        for v in &report.verdicts {
            let level = if v.level == Level::Error {
                "error"
            } else {
                "warn"
            };
            let _ = writeln!(
                out,
                "| {} | {level} | {} | {} |",
                at(v.at),
                cell(&v.environment),
                cell(&v.text)
            );
        }
    }

    // Rollbacks.
    let _ = writeln!(out, "\n## Rollbacks\n");
    if report.rollbacks.is_empty() {
        let _ = writeln!(out, "No rollback ran.");
    } else {
        let _ = writeln!(
            out,
            "| Run | Tier | Environment | Started | Finished | Duration | Target | Outcome |\n|---|---|---|---|---|---|---|---|"
        );
        for r in &report.rollbacks {
            let target = match (r.target_ms, r.target_met) {
                (Some(t), Some(true)) => format!("{}: met", opt_duration(Some(t))),
                (Some(t), Some(false)) => format!("{}: **missed**", opt_duration(Some(t))),
                (Some(t), None) => opt_duration(Some(t)),
                (None, _) => "none".to_string(),
            };
            let mut outcome = match r.outcome {
                RollbackOutcome::RolledBack | RollbackOutcome::RollbackFailed => {
                    format!("**{}**", r.outcome.label())
                }
                _ => r.outcome.label().to_string(),
            };
            if let Some(by) = r.preempted_by {
                outcome.push_str(&format!(" by run {by}"));
            }
            let failed: Vec<String> = r
                .failed
                .iter()
                .map(|a| with_detail(a.label.clone(), &a.detail))
                .collect();
            if !failed.is_empty() {
                outcome.push_str(&format!(": failed {}", failed.join("; ")));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.run,
                r.tier.as_str(),
                cell(&r.environment),
                at(r.started),
                r.finished.map(at).unwrap_or_else(|| "—".to_string()),
                opt_duration(r.duration_ms),
                target,
                cell(&outcome)
            );
        }
    }

    // Success targets.
    let _ = writeln!(out, "\n## Success targets\n");
    if !report.success.defined {
        let _ = writeln!(out, "The plan sets no success targets.");
    } else {
        if report.success.targets.is_empty() {
            let _ = writeln!(out, "The plan sets no measurable target.");
        } else {
            let _ = writeln!(
                out,
                "| Target | Plan | Result | Figure | How |\n|---|---|---|---|---|"
            );
            for t in &report.success.targets {
                let verdict = match t.verdict {
                    TargetVerdict::Met => "✅ met".to_string(),
                    TargetVerdict::Missed => "❌ **missed**".to_string(),
                    other => other.label().to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {verdict} | {} | {} |",
                    target_title(&t.name),
                    cell(&t.target),
                    cell(&t.figure),
                    cell(&t.how)
                );
            }
        }
        if !report.success.criteria.is_empty() {
            let _ = writeln!(out, "\nFor people to judge:\n");
            for c in &report.success.criteria {
                let _ = writeln!(out, "- [ ] {}", c.replace('\n', " "));
            }
        }
    }

    if !report.warnings.is_empty() {
        let _ = writeln!(out, "\n## Warnings\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- {}", w.replace('\n', " "));
        }
    }
    out
}

fn target_title(name: &str) -> &str {
    match name {
        "max_deploy_time" => "Deploy time",
        "max_downtime" => "Downtime",
        "max_error_rate" => "Error rate after deploy",
        "max_recovery_time" => "Recovery time",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{PlanRecord, Resume, SampleRecord};

    /// A plan as the writer stores it: the webhook already masked, and a marker that must never
    /// reach the report.
    fn plan_text(max_deploy_time: &str) -> String {
        format!(
            r#"# plan-text-marker-9f2c
version: 1
name: checkout 2.4.0
service: checkout
strategy: canary
environments:
  staging: {{ namespace: shop }}
  production: {{ namespace: shop }}
workload: {{ name: checkout, canary: checkout-canary }}
traffic: {{ router: gateway-api, route: checkout }}
metrics:
  queries:
    latency_p95: histogram_quantile(0.95, x)
    error_rate: sum(rate(errors[1m]))
  thresholds:
    error_rate: {{ max: 0.01 }}
success:
  max_deploy_time: {max_deploy_time}
  max_downtime: 10s
  max_error_rate: 0.001
  max_recovery_time: 5m
  criteria:
    - Checkout conversion unchanged after a day
phases:
  - name: Staging
    environment: staging
    steps:
      - weight: 50
      - hold: 1m
  - name: Production
    environment: production
    approval: [carol]
    steps:
      - weight: 100
      - promote: {{}}
rollback:
  immediate:
    target: 5m
    actions:
      - weight: 0
notify:
  webhook: https://hooks.slack.com/…
"#
        )
    }

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    /// Journal lines from records, each at `T0 + secs`; independent of the writer.
    fn lines(records: Vec<(u64, Record)>) -> Vec<Line> {
        records
            .into_iter()
            .enumerate()
            .map(|(i, (secs, record))| Line {
                v: record::VERSION,
                seq: i as u64,
                at: at(secs),
                record,
            })
            .collect()
    }

    /// The journal file's text for `lines`.
    fn text(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| serde_json::to_string(l).expect("serializes") + "\n")
            .collect()
    }

    fn start(max_deploy_time: &str) -> Record {
        Record::Start(Start {
            run_id: "run-7".into(),
            warroom: "0.1.0".into(),
            plan: PlanRecord {
                path: "plans/checkout.yaml".into(),
                name: "checkout 2.4.0".into(),
                sha256: "ab".repeat(32),
                text: plan_text(max_deploy_time),
            },
            environments: vec![
                EnvironmentRecord {
                    name: "staging".into(),
                    context: "stg".into(),
                    namespace: "shop".into(),
                },
                EnvironmentRecord {
                    name: "production".into(),
                    context: "prod".into(),
                    namespace: "shop".into(),
                },
            ],
            operator: "alice".into(),
            host: "laptop".into(),
            mode: "console".into(),
            auto_approve: "nothing".into(),
            override_window: None,
        })
    }

    fn step(phase: usize, slot: usize, state: &str) -> Record {
        let (phase_name, label) = match (phase, slot) {
            (0, 0) => ("Staging", "weight → 50%"),
            (0, _) => ("Staging", "hold 1m"),
            (1, 0) => ("Production", "approval: carol"),
            (1, 1) => ("Production", "weight → 100%"),
            _ => ("Production", "promote"),
        };
        Record::Step {
            phase,
            phase_name: phase_name.into(),
            slot,
            label: label.into(),
            state: state.into(),
            detail: None,
        }
    }

    fn status(s: &str) -> Record {
        Record::Status { status: s.into() }
    }

    fn command(operator: &str, command: OperatorCommand) -> Record {
        Record::Command {
            operator: operator.into(),
            command,
        }
    }

    fn workload(environment: &str, track: TrackName, ready: u32) -> Record {
        Record::Workload {
            environment: environment.into(),
            track,
            name: "checkout".into(),
            desired: 3,
            ready,
            updated: ready,
            available: ready,
            image: "checkout:2.4.0".into(),
            revision: None,
        }
    }

    fn samples(error: f64) -> Record {
        Record::Samples {
            samples: TrackName::BOTH
                .iter()
                .flat_map(|track| {
                    [
                        SampleRecord {
                            metric: "error_rate".into(),
                            track: *track,
                            time: at(0),
                            value: Some(error),
                        },
                        SampleRecord {
                            metric: "latency_p95".into(),
                            track: *track,
                            time: at(0),
                            value: Some(0.2),
                        },
                    ]
                })
                .collect(),
        }
    }

    fn log(level: Level, environment: &str, text: &str) -> Record {
        Record::Log {
            level,
            environment: environment.into(),
            text: text.into(),
        }
    }

    /// A canary through two phases in 10 minutes, then 4m 10s of samples at 0.05 %; production
    /// has no ready pod for 30 s during the promote.
    fn complete_run(max_deploy_time: &str) -> Vec<Line> {
        let mut records = vec![
            (0, start(max_deploy_time)),
            (1, status("READY")),
            (5, command("alice", OperatorCommand::Advance)),
            (5, status("RUNNING")),
            (5, step(0, 0, "running")),
            (6, workload("staging", TrackName::Stable, 3)),
            (6, workload("staging", TrackName::Canary, 1)),
            (10, step(0, 0, "done")),
            (10, step(0, 1, "running")),
            (30, samples(0.004)),
            (
                40,
                log(
                    Level::Warn,
                    "staging",
                    "⚠ latency_p95 canary 0.61 > 0.5 (1 of 2) → alert",
                ),
            ),
            (70, step(0, 1, "done")),
            (71, step(1, 0, "waiting")),
            (120, command("carol", OperatorCommand::Advance)),
            (120, step(1, 0, "done")),
            (120, step(1, 1, "running")),
            (121, workload("production", TrackName::Stable, 3)),
            (130, step(1, 1, "done")),
            (130, step(1, 2, "running")),
            (140, workload("production", TrackName::Stable, 0)),
            (170, workload("production", TrackName::Stable, 3)),
            (605, step(1, 2, "done")),
            (605, status("COMPLETE")),
        ];
        // 25 rounds every 10 s after COMPLETE: the last at 605 + 250 = 4m 10s later.
        for i in 1..=25 {
            records.push((605 + i * 10, samples(0.0005)));
        }
        records.push((
            856,
            Record::End {
                exit: 0,
                status: "COMPLETE".into(),
                reason: None,
            },
        ));
        lines(records)
    }

    fn target<'a>(report: &'a Report, name: &str) -> &'a Target {
        report
            .success
            .targets
            .iter()
            .find(|t| t.name == name)
            .expect("target listed")
    }

    #[test]
    fn a_complete_run_meets_its_deploy_time_and_states_how() {
        let report = build(&complete_run("15m")).expect("report");
        let deploy = target(&report, "max_deploy_time");
        assert_eq!(deploy.verdict, TargetVerdict::Met);
        assert_eq!(deploy.value, Some(600_000.0));
        assert_eq!(deploy.figure, "10m");
        assert!(deploy.how.contains("COMPLETE at"), "{}", deploy.how);
        assert_eq!(report.summary.status, "COMPLETE");
        assert_eq!(report.summary.exit, Some(0));
        assert!(report.summary.finished);
        assert_eq!(report.summary.operators, ["alice", "carol"]);
        assert!(report.rollbacks.is_empty());
        let recovery = target(&report, "max_recovery_time");
        assert_eq!(recovery.verdict, TargetVerdict::NotApplicable);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn a_slow_run_misses_its_deploy_time() {
        let report = build(&complete_run("5m")).expect("report");
        let deploy = target(&report, "max_deploy_time");
        assert_eq!(deploy.verdict, TargetVerdict::Missed);
        assert_eq!(deploy.target, "5m");
        assert!(markdown(&report).contains("❌ **missed**"));
    }

    #[test]
    fn the_error_rate_comes_from_samples_after_complete_with_its_window() {
        let report = build(&complete_run("15m")).expect("report");
        let e = report.error_rate.as_ref().expect("computed");
        assert_eq!(e.metric, "error_rate");
        assert_eq!(
            e.samples, 50,
            "25 rounds × 2 tracks; the 0.4 % before COMPLETE is left out"
        );
        assert_eq!(e.window_ms, 250_000);
        assert!((e.mean - 0.0005).abs() < 1e-12);
        let t = target(&report, "max_error_rate");
        assert_eq!(t.verdict, TargetVerdict::Met);
        assert_eq!(t.target, "0.1 %");
        assert_eq!(t.figure, "0.05 %");
        assert!(
            t.how
                .contains("over 4m 10s after the last step, 50 samples"),
            "{}",
            t.how
        );
    }

    #[test]
    fn no_samples_after_the_last_step_leave_the_error_rate_unknown() {
        let mut run = complete_run("15m");
        run.retain(|l| !matches!(l.record, Record::Samples { .. }) || l.at < at(605));
        let report = build(&run).expect("report");
        let t = target(&report, "max_error_rate");
        assert_eq!(t.verdict, TargetVerdict::Unknown);
        assert!(
            t.how.contains("no error_rate samples after the last step"),
            "{}",
            t.how
        );
        assert!(report.error_rate.is_none());
    }

    #[test]
    fn downtime_stops_counting_while_warroom_was_stopped() {
        let resume = Record::Resume(record::Resume {
            operator: "bob".into(),
            host: "h".into(),
            warroom: "0.1.0".into(),
            plan_sha256: "ab".into(),
            forced: false,
            changes: Vec::new(),
            torn_line: false,
            auto_approve: "nothing".into(),
        });
        let journal = lines(vec![
            (0, start("15m")),
            (10, workload("staging", TrackName::Stable, 0)),
            (10, workload("staging", TrackName::Canary, 0)),
            (15, Record::Tick),
            // Killed at 15 s, resumed ten minutes later.
            (615, resume),
            (616, workload("staging", TrackName::Stable, 4)),
        ]);
        let report = build(&journal).expect("report");
        let staging = &report.downtime[0];
        assert_eq!(staging.zero_ready_ms, Some(5_000), "{staging:?}");
    }

    #[test]
    fn downtime_is_the_time_with_zero_ready_pods_per_environment() {
        let report = build(&complete_run("15m")).expect("report");
        let production = report
            .downtime
            .iter()
            .find(|d| d.environment == "production")
            .expect("listed");
        assert_eq!(production.zero_ready_ms, Some(30_000));
        assert_eq!(production.gaps.len(), 1);
        assert!(!production.gaps[0].open);
        let staging = &report.downtime[0];
        assert_eq!(
            (staging.environment.as_str(), staging.zero_ready_ms),
            ("staging", Some(0))
        );
        let t = target(&report, "max_downtime");
        assert_eq!(t.verdict, TargetVerdict::Missed, "30 s > 10 s");
        assert_eq!(t.figure, "30s");
        assert!(t.how.contains("production 30s"), "{}", t.how);
        assert!(
            t.how.contains("while the environment was watched"),
            "{}",
            t.how
        );
    }

    #[test]
    fn an_environment_without_workload_lines_leaves_downtime_unknown() {
        let mut run = complete_run("15m");
        run.retain(|l| {
            !matches!(&l.record, Record::Workload { environment, .. } if environment == "production")
        });
        let report = build(&run).expect("report");
        let t = target(&report, "max_downtime");
        assert_eq!(t.verdict, TargetVerdict::Unknown);
        assert!(
            t.how.contains("no workload lines for production"),
            "{}",
            t.how
        );
    }

    #[test]
    fn phases_take_from_first_running_to_last_done() {
        let report = build(&complete_run("15m")).expect("report");
        let staging = &report.phases[0];
        assert_eq!(staging.duration_ms, Some(65_000));
        assert_eq!(staging.state, "finished");
        let production = &report.phases[1];
        assert_eq!(production.slots, Some(3));
        // The approval gate waited from 71 s; the first step ran at 120 s.
        assert_eq!(production.started, Some(Time(at(120))));
        assert_eq!(production.duration_ms, Some(485_000));
    }

    #[test]
    fn the_timeline_keeps_notable_events_and_commands_name_their_operator() {
        let report = build(&complete_run("15m")).expect("report");
        let texts: Vec<&str> = report.timeline.iter().map(|e| e.text.as_str()).collect();
        assert!(texts.contains(&"carol: advance (n)"), "{texts:?}");
        assert!(texts.contains(&"status → COMPLETE"), "{texts:?}");
        assert!(
            texts.contains(&"Production · approval: carol: waiting"),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("latency_p95 canary 0.61 > 0.5"))
        );
        assert!(texts.contains(&"end: COMPLETE, exit 0"), "{texts:?}");
        assert!(!report.timeline.iter().any(|e| e.text.contains("samples")));
        let carol = report
            .operators
            .iter()
            .find(|o| o.name == "carol")
            .expect("carol");
        assert_eq!(carol.count, 1);
        assert_eq!(carol.commands[0].command, "advance");
        assert_eq!(report.verdicts.len(), 1);
    }

    /// A breach at 60 s, the countdown, then the immediate tier: weight 0 and done in 2 s.
    fn rolled_back_run() -> Vec<Line> {
        let rollback_step = |action: usize, label: &str, state: &str| Record::RollbackStep {
            run: 1,
            tier: TierName::Immediate,
            environment: "staging".into(),
            action,
            label: label.into(),
            state: state.into(),
            detail: None,
            target_ms: Some(Duration::from_secs(300)),
        };
        lines(vec![
            (0, start("15m")),
            (5, command("alice", OperatorCommand::Advance)),
            (5, status("RUNNING")),
            (5, step(0, 0, "running")),
            (10, step(0, 0, "done")),
            (10, step(0, 1, "running")),
            (
                60,
                log(
                    Level::Error,
                    "staging",
                    "error_rate canary 2.1% > 1% (2 of 2) → rollback immediate in 10s (x to cancel)",
                ),
            ),
            (
                70,
                log(
                    Level::Error,
                    "staging",
                    "ROLLBACK (immediate) by analysis in staging: weight → 0%",
                ),
            ),
            (70, step(0, 1, "failed")),
            (70, status("ROLLING BACK")),
            (70, rollback_step(0, "weight → 0%", "running")),
            (72, rollback_step(0, "weight → 0%", "done")),
            (72, status("ROLLED BACK")),
            (
                73,
                Record::End {
                    exit: 3,
                    status: "ROLLED BACK".into(),
                    reason: Some("rolled back".into()),
                },
            ),
        ])
    }

    #[test]
    fn an_immediate_rollback_reports_its_recovery_time_against_the_target() {
        let report = build(&rolled_back_run()).expect("report");
        let r = &report.rollbacks[0];
        assert_eq!(r.tier, TierName::Immediate);
        assert_eq!(r.outcome, RollbackOutcome::RolledBack);
        assert_eq!(r.duration_ms, Some(2_000));
        assert_eq!(r.target_ms, Some(300_000));
        assert_eq!(r.target_met, Some(true));
        let t = target(&report, "max_recovery_time");
        assert_eq!(t.verdict, TargetVerdict::Met);
        assert_eq!(t.value, Some(2_000.0));
        let deploy = target(&report, "max_deploy_time");
        assert_eq!(deploy.verdict, TargetVerdict::Unknown);
        assert!(deploy.how.contains("ended ROLLED BACK"), "{}", deploy.how);
        assert_eq!(report.summary.exit, Some(3));
        let md = markdown(&report);
        assert!(
            md.contains(
                "| 1 | immediate | staging | 08:01:10 | 08:01:12 | 2s | 5m: met | **ROLLED BACK** |"
            ),
            "{md}"
        );
        assert!(md.contains("error_rate canary 2.1% > 1%"), "{md}");
    }

    #[test]
    fn a_failed_rollback_names_the_action_and_misses_recovery() {
        let mut run = rolled_back_run();
        run.truncate(11); // up to the weight action running
        run.extend(lines(vec![
            (
                75,
                Record::RollbackStep {
                    run: 1,
                    tier: TierName::Immediate,
                    environment: "staging".into(),
                    action: 0,
                    label: "weight → 0%".into(),
                    state: "failed".into(),
                    detail: Some("HTTPRoute checkout: forbidden".into()),
                    target_ms: Some(Duration::from_secs(300)),
                },
            ),
            (75, status("ROLLBACK FAILED")),
        ]));
        let report = build(&run).expect("report");
        let r = &report.rollbacks[0];
        assert_eq!(r.outcome, RollbackOutcome::RollbackFailed);
        assert_eq!(r.target_met, Some(false));
        assert_eq!(
            r.failed[0].detail.as_deref(),
            Some("HTTPRoute checkout: forbidden")
        );
        assert_eq!(
            target(&report, "max_recovery_time").verdict,
            TargetVerdict::Missed
        );
        let md = markdown(&report);
        assert!(
            md.contains("failed weight → 0% (HTTPRoute checkout: forbidden)"),
            "{md}"
        );
    }

    #[test]
    fn a_killed_run_says_there_is_no_end_and_how_to_continue() {
        let mut run = complete_run("15m");
        run.truncate(15); // mid-production, no end line
        let report = build(&run).expect("report");
        assert!(!report.summary.finished);
        assert_eq!(report.summary.ended, None);
        assert_eq!(report.summary.status, "RUNNING");
        let note = report.summary.note.as_deref().expect("note");
        assert!(
            note.contains("no end line: the process was stopped without finishing; `warroom run plans/checkout.yaml --resume` continues it"),
            "{note}"
        );
        assert_eq!(
            target(&report, "max_deploy_time").verdict,
            TargetVerdict::Unknown
        );
        assert_eq!(report.phases[1].state, "not finished");
        assert!(markdown(&report).contains("no end line"));
    }

    #[test]
    fn resumes_are_listed_with_who_and_forced_changes() {
        let mut run = complete_run("15m");
        run.insert(
            10,
            lines(vec![(
                35,
                Record::Resume(Resume {
                    operator: "bob".into(),
                    host: "jump".into(),
                    warroom: "0.1.0".into(),
                    plan_sha256: "cd".repeat(32),
                    forced: true,
                    changes: vec!["hold 1m → 2m".into()],
                    torn_line: true,
                    auto_approve: "nothing".into(),
                }),
            )])
            .remove(0),
        );
        let report = build(&run).expect("report");
        let r = &report.summary.resumes[0];
        assert_eq!(
            (r.operator.as_str(), r.forced, r.torn_line),
            ("bob", true, true)
        );
        assert!(report.summary.operators.contains(&"bob".to_string()));
        assert!(markdown(&report).contains("forced on a changed plan (hold 1m → 2m)"));
    }

    #[test]
    fn a_torn_last_line_is_skipped_with_a_warning() {
        let mut journal = text(&complete_run("15m"));
        journal.push_str(r#"{"v":1,"seq":99,"at":"2027-01-15T08:1"#);
        let j = parse(Path::new("run.journal"), journal.as_bytes()).expect("tolerated");
        assert_eq!(j.lines.len(), complete_run("15m").len());
        let report = j.report().expect("report");
        assert!(
            report.warnings[0].contains("is torn"),
            "{:?}",
            report.warnings
        );
        assert!(markdown(&report).contains("## Warnings"));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let journal = text(&complete_run("15m"));
        let mut parts: Vec<&str> = journal.lines().collect();
        parts.insert(3, "{\"v\":1,\"seq\":");
        let damaged = parts.join("\n");
        let err = parse(Path::new("run.journal"), damaged.as_bytes()).expect_err("refused");
        assert!(matches!(err, ReportError::BadLine { line: 4, .. }), "{err}");
        assert!(err.to_string().starts_with("run.journal: line 4:"), "{err}");
        // A known type that does not read is refused too.
        parts[3] = r#"{"v":1,"seq":3,"at":"2027-01-15T08:00:00Z","type":"status"}"#;
        let err =
            parse(Path::new("run.journal"), parts.join("\n").as_bytes()).expect_err("refused");
        assert!(err.to_string().contains("line 4: a `status` line"), "{err}");
    }

    #[test]
    fn unknown_record_types_are_skipped_with_a_warning() {
        let journal = text(&complete_run("15m"));
        let mut parts: Vec<&str> = journal.lines().collect();
        parts.insert(
            2,
            r#"{"v":1,"seq":2,"at":"2027-01-15T08:00:02Z","type":"hologram","x":1}"#,
        );
        let j = parse(Path::new("j"), parts.join("\n").as_bytes()).expect("lenient");
        assert!(j.warnings[0].contains("line 3: unknown record type `hologram`"));
    }

    #[test]
    fn a_journal_not_starting_with_start_is_refused() {
        let run = complete_run("15m");
        let err = parse(Path::new("j"), text(&run[1..]).as_bytes()).expect_err("refused");
        assert!(err.to_string().contains("not `start`"), "{err}");
        assert!(matches!(build(&[]), Err(ReportError::Empty)));
    }

    #[test]
    fn the_plan_text_and_webhook_never_reach_the_report() {
        for run in [complete_run("15m"), rolled_back_run()] {
            let report = build(&run).expect("report");
            for out in [markdown(&report), json(&report)] {
                assert!(!out.contains("plan-text-marker-9f2c"), "{out}");
                assert!(!out.contains("hooks.slack.com"), "{out}");
                assert!(!out.contains("sum(rate(errors"), "{out}");
            }
        }
    }

    #[test]
    fn markdown_reads_on_its_own() {
        let report = build(&complete_run("15m")).expect("report");
        let md = markdown(&report);
        if std::env::var_os("SHOW_REPORT").is_some() {
            println!(
                "{md}\n{}",
                markdown(&build(&rolled_back_run()).expect("report"))
            );
        }
        assert!(
            md.starts_with("# Deployment report: checkout 2.4.0\n"),
            "{md}"
        );
        for heading in [
            "## Timeline (UTC)",
            "## Who did what",
            "## Time per phase",
            "## Breaches, alerts and verdicts",
            "## Rollbacks",
            "## Success targets",
        ] {
            assert!(md.contains(heading), "{heading}\n{md}");
        }
        assert!(
            md.contains("| Final status | **COMPLETE** · exit 0 |"),
            "{md}"
        );
        assert!(
            md.contains("- [ ] Checkout conversion unchanged after a day"),
            "{md}"
        );
        assert!(
            md.contains("| Staging | staging | 08:00:05 | 08:01:10 | 1m 5s |"),
            "{md}"
        );
        assert!(md.contains("No rollback ran."));
    }

    #[test]
    fn json_parses_back_with_the_documented_fields() {
        let report = build(&rolled_back_run()).expect("report");
        let value: serde_json::Value = serde_json::from_str(&json(&report)).expect("JSON");
        for key in [
            "format",
            "summary",
            "timeline",
            "operators",
            "phases",
            "verdicts",
            "rollbacks",
            "downtime",
            "error_rate",
            "success",
            "warnings",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["summary"]["started"], "2027-01-15T08:00:00Z");
        assert_eq!(value["summary"]["exit"], 3);
        assert_eq!(value["rollbacks"][0]["tier"], "immediate");
        assert_eq!(value["rollbacks"][0]["outcome"], "rolled_back");
        assert_eq!(value["rollbacks"][0]["target_met"], true);
        assert_eq!(value["success"]["targets"][0]["name"], "max_deploy_time");
        assert_eq!(value["success"]["targets"][0]["verdict"], "unknown");
        assert_eq!(value["success"]["targets"][3]["verdict"], "met");
        assert_eq!(value["timeline"][0]["kind"], "start");
        assert_eq!(value["verdicts"][0]["level"], "error");
        let no_rollback = build(&complete_run("15m")).expect("report");
        let value: serde_json::Value = serde_json::from_str(&json(&no_rollback)).expect("JSON");
        assert_eq!(value["success"]["targets"][3]["verdict"], "n/a");
        assert_eq!(value["error_rate"]["window_ms"], 250_000);
    }

    #[test]
    fn reordered_cut_or_odd_journals_never_panic() {
        let mut runs = vec![complete_run("15m"), rolled_back_run()];
        let full = complete_run("15m");
        for cut in 1..full.len() {
            runs.push(full[..cut].to_vec());
        }
        let mut reversed = full.clone();
        reversed[1..].reverse();
        runs.push(reversed);
        runs.push(lines(vec![
            (0, start("not a duration")),
            (5, step(usize::MAX, usize::MAX, "done")),
            (9, Record::Samples { samples: vec![] }),
            (3, status("ROLLED BACK")),
        ]));
        for run in runs {
            let report = build(&run).expect("report");
            assert!(!markdown(&report).is_empty());
            assert!(!json(&report).is_empty());
        }
    }

    #[test]
    fn durations_and_ratios_read_as_people_write_them() {
        assert_eq!(human_duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(human_duration(Duration::from_secs(30)), "30s");
        assert_eq!(human_duration(Duration::ZERO), "0s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_secs(3605)), "1h 0m 5s");
        assert_eq!(percent(0.0012), "0.12 %");
        assert_eq!(percent(0.05), "5 %");
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(f64::NAN), "n/a");
    }
}
