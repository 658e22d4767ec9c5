//! The rehearsal's report: per scenario what was expected and what was seen, the time each
//! tier took to safety, and the template's figure at the top. Markdown and JSON, as for
//! `warroom report`.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::plan::duration::format_duration;
use crate::report::cell;

/// The whole rehearsal. `docs/rehearse.md` describes the JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub format: u32,
    pub plan: String,
    pub plan_path: String,
    pub warroom: String,
    /// Every scenario passed.
    pub passed: bool,
    /// `Rollback success: 3 of 3 tiers rehearsed and passed`.
    pub rollback_success: String,
    pub tiers_defined: usize,
    pub tiers_rehearsed: usize,
    pub tiers_passed: usize,
    /// Tiers with `run` actions a rehearsal only prints: not counted as passed.
    pub tiers_printed_only: Vec<String>,
    /// The plan has `run` steps with `rehearse: true`: they ran on this machine.
    pub rehearsed_commands: bool,
    pub max_hold_ms: u64,
    /// What was shortened or passed automatically, so the figures are read for what they are.
    pub caps: Vec<String>,
    pub scenarios: Vec<ScenarioReport>,
}

/// One scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub passed: bool,
    pub expected: String,
    pub observed: String,
    /// Why it failed, naming the step or action.
    pub reason: Option<String>,
    /// What to change in the plan, when the cause is the plan.
    pub fix: Option<String>,
    pub duration_ms: u64,
    /// A rollback the scenario ran or caused.
    pub tier: Option<TierTiming>,
    /// What the cluster was checked for afterwards.
    pub checks: Vec<CheckReport>,
    /// The run's last log lines, for a failure.
    pub log: Vec<String>,
}

/// One check of the simulated cluster.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub what: String,
    pub ok: bool,
    pub found: Option<String>,
}

/// How fast a tier made things safe, against its target.
#[derive(Debug, Clone, Serialize)]
pub struct TierTiming {
    pub tier: String,
    pub outcome: String,
    /// From the tier's start to its `weight: 0` done.
    pub weight_zero_ms: Option<u64>,
    /// From the tier's start to its last action done.
    pub done_ms: Option<u64>,
    pub target_ms: Option<u64>,
    pub target_met: Option<bool>,
}

impl TierTiming {
    /// `immediate: weight 0 in 0.4 s, tier done in 2.1 s of 5m`.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ms) = self.weight_zero_ms {
            parts.push(format!("weight 0 in {}", seconds(ms)));
        }
        match (self.done_ms, self.target_ms) {
            (Some(d), Some(t)) => parts.push(format!(
                "tier done in {} of {}",
                seconds(d),
                format_duration(Duration::from_millis(t))
            )),
            (Some(d), None) => parts.push(format!("tier done in {} (no target)", seconds(d))),
            (None, _) => parts.push(format!("tier {}", self.outcome.to_lowercase())),
        }
        format!("{}: {}", self.tier, parts.join(", "))
    }
}

/// `13 ms`, `2.1 s`, `2m 5s`.
pub fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        crate::report::human_duration(Duration::from_millis(ms))
    }
}

/// The first failed scenario and why: the line `rehearse` ends with.
pub fn first_failure(r: &Rehearsal) -> Option<String> {
    r.scenarios.iter().find(|s| !s.passed).map(|s| {
        format!(
            "{}: {}",
            s.name,
            s.reason.clone().unwrap_or_else(|| s.observed.clone())
        )
    })
}

/// Pretty JSON.
pub fn json(r: &Rehearsal) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("the rehearsal does not serialize: {e}") }).to_string()
    })
}

/// Markdown, to paste in the change ticket.
pub fn markdown(r: &Rehearsal) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Rehearsal: {}\n", r.plan);
    let _ = writeln!(out, "**{}**\n", r.rollback_success);
    let passed = r.scenarios.iter().filter(|s| s.passed).count();
    match first_failure(r) {
        None => {
            let _ = writeln!(
                out,
                "Result: **PASSED**, {passed} of {} scenarios.\n",
                r.scenarios.len()
            );
        }
        Some(first) => {
            let _ = writeln!(
                out,
                "Result: **FAILED**, {passed} of {} scenarios passed. First failure: {first}\n",
                r.scenarios.len()
            );
        }
    }
    let _ = writeln!(
        out,
        "Plan `{}`, warroom {}. Every environment ran on a simulator of its own, fresh for each scenario; warroom contacted nothing the plan names{}.\n",
        r.plan_path,
        r.warroom,
        if r.rehearsed_commands {
            " (the plan's `rehearse: true` commands ran on this machine, with KUBECONFIG at the simulator but its own network and credentials)"
        } else {
            ""
        }
    );
    if !r.caps.is_empty() {
        let _ = writeln!(out, "To keep it short:");
        for c in &r.caps {
            let _ = writeln!(out, "- {c}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "| scenario | result | expected | observed | time |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for s in &r.scenarios {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&s.name),
            if s.passed { "✓ pass" } else { "✗ FAIL" },
            cell(&s.expected),
            cell(&s.observed),
            seconds(s.duration_ms)
        );
    }
    let timings: Vec<&ScenarioReport> = r.scenarios.iter().filter(|s| s.tier.is_some()).collect();
    if !timings.is_empty() {
        let _ = writeln!(out, "\n## Time to safety\n");
        let _ = writeln!(
            out,
            "On the simulator, with the waits above capped: they show that each tier's actions work and in what order, not how long production will take.\n"
        );
        for s in timings {
            if let Some(t) = &s.tier {
                let met = match t.target_met {
                    Some(true) => " ✓",
                    Some(false) => " ✗ over target",
                    None => "",
                };
                let _ = writeln!(out, "- {} ({}){met}", t.line(), s.name);
            }
        }
    }
    let failed: Vec<&ScenarioReport> = r.scenarios.iter().filter(|s| !s.passed).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\n## Failures");
        for s in failed {
            let _ = writeln!(out, "\n### {}\n", s.name);
            if let Some(reason) = &s.reason {
                let _ = writeln!(out, "- Why: {reason}");
            }
            if let Some(fix) = &s.fix {
                let _ = writeln!(out, "- Change in the plan: {fix}");
            }
            for c in s.checks.iter().filter(|c| !c.ok) {
                let _ = writeln!(
                    out,
                    "- Expected {}, found {}",
                    c.what,
                    c.found.as_deref().unwrap_or("something else")
                );
            }
            if !s.log.is_empty() {
                let _ = writeln!(out, "\nLast log lines:\n\n```");
                for l in &s.log {
                    let _ = writeln!(out, "{l}");
                }
                let _ = writeln!(out, "```");
            }
        }
    }
    out
}
