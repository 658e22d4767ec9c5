//! Opening a run's journal: a new one with its `start` line, or an existing one to resume,
//! checked against the plan as it is now.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::read::{self, Read};
use super::record::{EnvironmentRecord, PlanRecord, Resume, Start, mask_plan_text};
use super::{Journal, Record};
use crate::cluster::actions::ConfigMapSnapshot;
use crate::plan::Plan;

/// The plan as loaded for a run, with what the journal keeps of it.
pub struct PlanSource<'a> {
    pub plan: &'a Plan,
    pub path: &'a Path,
    pub text: &'a str,
}

impl PlanSource<'_> {
    /// The plan's text with its secrets masked.
    pub fn masked(&self) -> String {
        let secrets: Vec<&str> = self
            .plan
            .notify
            .as_ref()
            .map(|n| n.webhook.as_str())
            .into_iter()
            .collect();
        mask_plan_text(self.text, &secrets)
    }

    pub fn sha256(&self) -> String {
        super::sha256(self.text.as_bytes())
    }

    /// The `plan` of a `start` line.
    pub fn record(&self) -> PlanRecord {
        PlanRecord {
            path: self.path.display().to_string(),
            name: self.plan.name.clone(),
            sha256: self.sha256(),
            text: self.masked(),
        }
    }
}

/// Why a journal cannot be opened; the run does not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Read(#[from] read::ReadError),
    #[error(
        "journal {0} already exists: `--resume --journal {0}` continues that run, or give another file"
    )]
    Exists(String),
    #[error("cannot create journal {path}: {source}; the run was not started")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("no journal of plan `{plan}` in {dir}: give the journal with --journal FILE")]
    NoneToResume { plan: String, dir: String },
    #[error(
        "no journal directory: set XDG_STATE_HOME or HOME, or give the journal with --journal FILE"
    )]
    NoDir,
    #[error("{path} is a journal of plan `{found}`, not of `{plan}`")]
    OtherPlan {
        path: String,
        found: String,
        plan: String,
    },
    #[error(
        "the plan changed since {path} was started (SHA-256 {was} → {now}); refusing to resume. What changed:\n{changes}\n`--resume --force` resumes anyway, and the journal says so"
    )]
    Changed {
        path: String,
        was: String,
        now: String,
        changes: String,
    },
    #[error("{path}: that run is complete (exit 0 at {at}); there is nothing to resume")]
    Complete { path: String, at: String },
}

/// Where a new journal goes: `--journal FILE`, else the default directory.
pub fn new_path(
    given: Option<&Path>,
    plan_name: &str,
    now: SystemTime,
) -> Result<PathBuf, OpenError> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(super::default_path(
            &super::default_dir().ok_or(OpenError::NoDir)?,
            plan_name,
            now,
        )),
    }
}

/// Creates the journal file: an existing one is never overwritten.
pub fn create(path: &Path) -> Result<std::fs::File, OpenError> {
    if path.exists() {
        return Err(OpenError::Exists(path.display().to_string()));
    }
    super::writer::create(path).map_err(|source| OpenError::Create {
        path: path.display().to_string(),
        source,
    })
}

/// The `start` line of a new run.
pub fn start_record(
    run_id: String,
    source: &PlanSource<'_>,
    environments: Vec<EnvironmentRecord>,
    operator: &str,
    mode: &str,
    auto_approve: &str,
    override_window: Option<String>,
) -> Start {
    Start {
        run_id,
        warroom: env!("CARGO_PKG_VERSION").to_string(),
        plan: source.record(),
        environments,
        operator: operator.to_string(),
        host: crate::lease::hostname(),
        mode: mode.to_string(),
        auto_approve: auto_approve.to_string(),
        override_window,
    }
}

/// A new run's id: the journal's, and the lease's, so a resume knows its own lease.
pub fn run_id() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")
}

/// The journal to resume: `--journal FILE`, else the newest of the plan.
pub fn resume_path(given: Option<&Path>, plan_name: &str) -> Result<PathBuf, OpenError> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let dir = super::default_dir().ok_or(OpenError::NoDir)?;
    super::newest(&dir, plan_name).ok_or_else(|| OpenError::NoneToResume {
        plan: plan_name.to_string(),
        dir: dir.display().to_string(),
    })
}

/// Reads the journal at `path` and checks it may be resumed with the plan as it is now.
/// Returns it with the `resume` line this run adds.
pub fn check_resume(
    path: &Path,
    source: &PlanSource<'_>,
    force: bool,
    operator: &str,
    auto_approve: &str,
) -> Result<(Read, Resume), OpenError> {
    let read = read::read(path)?;
    let name = path.display().to_string();
    let Some(start) = read.start() else {
        return Err(OpenError::Read(read::ReadError::NoStart { path: name }));
    };
    if start.plan.name != source.plan.name {
        return Err(OpenError::OtherPlan {
            path: name,
            found: start.plan.name.clone(),
            plan: source.plan.name.clone(),
        });
    }
    if let Some(line) = read
        .lines
        .iter()
        .rev()
        .find(|l| matches!(l.record, Record::End { .. }))
    {
        if let Record::End { exit: 0, .. } = line.record {
            return Err(OpenError::Complete {
                path: name,
                at: super::record::rfc3339::format(line.at),
            });
        }
    }
    let now = source.sha256();
    let mut changes = Vec::new();
    if start.plan.sha256 != now {
        changes = plan_changes(&start.plan.text, &source.masked());
        if !force {
            return Err(OpenError::Changed {
                path: name,
                was: short(&start.plan.sha256),
                now: short(&now),
                changes: changes
                    .iter()
                    .map(|c| format!("  {c}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
    }
    let resume = Resume {
        operator: operator.to_string(),
        host: crate::lease::hostname(),
        warroom: env!("CARGO_PKG_VERSION").to_string(),
        plan_sha256: now,
        forced: !changes.is_empty(),
        changes,
        torn_line: read.torn.is_some(),
        auto_approve: auto_approve.to_string(),
    };
    Ok((read, resume))
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// The ConfigMaps as the run last snapshotted them, per environment, from its `snapshot` lines.
pub fn snapshots(
    read: &Read,
    namespaces: &BTreeMap<String, String>,
) -> BTreeMap<String, ConfigMapSnapshot> {
    let mut out = BTreeMap::new();
    for line in &read.lines {
        if let Record::Snapshot {
            environment,
            configmaps,
        } = &line.record
        {
            let namespace = namespaces.get(environment).cloned().unwrap_or_default();
            out.insert(
                environment.clone(),
                ConfigMapSnapshot {
                    namespace,
                    items: configmaps.clone(),
                },
            );
        }
    }
    out
}

/// Opens the journal at `path` to append to it, cut back to its last whole line.
pub fn reopen(path: &Path, read: &Read) -> Result<Journal, OpenError> {
    let file = super::writer::reopen(path, read.length).map_err(|source| OpenError::Create {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Journal::start(file, path, read.next_seq()))
}

/// What changed between two plan texts, line by line: `- old` and `+ new`, with line numbers,
/// at most 20 lines.
pub fn plan_changes(was: &str, now: &str) -> Vec<String> {
    let a: Vec<&str> = was.lines().collect();
    let b: Vec<&str> = now.lines().collect();
    // Longest common subsequence table; plans are a few hundred lines at most.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("line {}: - {}", i + 1, a[i].trim_end()));
            i += 1;
        } else {
            out.push(format!("line {}: + {}", j + 1, b[j].trim_end()));
            j += 1;
        }
    }
    if out.len() > 20 {
        let more = out.len() - 20;
        out.truncate(20);
        out.push(format!("… and {more} more changed line(s)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_changes_name_the_lines() {
        let was = "a: 1\nsteps:\n  - weight: 10\n  - hold: 5m\n";
        let now = "a: 1\nsteps:\n  - weight: 20\n  - hold: 5m\n";
        assert_eq!(
            plan_changes(was, now),
            vec!["line 3: -   - weight: 10", "line 3: +   - weight: 20"]
        );
    }
}

#[cfg(test)]
mod masking {
    use std::path::Path;

    use super::PlanSource;

    #[test]
    fn a_masked_plan_still_parses_and_hides_the_webhook() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/checkout-canary.yaml");
        let text = std::fs::read_to_string(&path).expect("plan");
        let plan = crate::plan::parse(&path, &text).expect("plan parses");
        let webhook = plan.notify.as_ref().expect("a webhook").webhook.clone();
        let source = PlanSource {
            plan: &plan,
            path: &path,
            text: &text,
        };
        let masked = source.masked();
        let host_end = webhook.find("://").map_or(0, |i| i + 3);
        assert!(!masked.contains(&webhook[host_end..]), "{masked}");
        let again = crate::plan::parse(&path, &masked).expect("the masked text parses");
        assert_eq!(again.phases.len(), plan.phases.len());
    }
}
