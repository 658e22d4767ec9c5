//! What a rehearsal runs: the plan with its waits capped and every environment pointed at a
//! simulator of its own, and the scenarios the plan calls for. Plain data; nothing here runs.

use std::time::Duration;

use crate::plan::duration::format_duration;
use crate::plan::{BreachAction, Plan, PlanDuration, Step, TierName, TrackName, WeightStep};

/// The plan as rehearsed, and what was changed to make it quick, for the report.
pub struct Capped {
    pub plan: Plan,
    /// One line per kind of change: `4 holds capped at 10s (the longest was 30m)`.
    pub notes: Vec<String>,
}

/// Caps every hold, paced weight interval and rollback countdown at `max_hold`, so a
/// rehearsal of a plan whose holds last hours takes minutes. Metrics are sampled as the plan
/// says: `after: 2` means two samples `interval` apart, as in the real run, and a rehearsal
/// that sampled faster would judge a canary on the few requests it has just after a weight
/// step. Approvals, pauses and windows are passed by the run itself (`--auto-approve=all`,
/// every window overridden).
pub fn cap(plan: &Plan, max_hold: Duration) -> Capped {
    let mut plan = plan.clone();
    let hold_cap = max_hold.max(plan.metrics.interval.get() * 2);
    let mut holds = Capping::default();
    let mut paces = Capping::default();
    let tiers = [
        &mut plan.rollback.immediate,
        &mut plan.rollback.gradual,
        &mut plan.rollback.full,
    ];
    let steps = plan
        .phases
        .iter_mut()
        .flat_map(|p| p.steps.iter_mut())
        .chain(
            tiers
                .into_iter()
                .flatten()
                .flat_map(|t| t.actions.iter_mut()),
        );
    for step in steps {
        match step {
            Step::Hold(d) => holds.cap(d, hold_cap),
            Step::Weight(WeightStep::Gradual {
                every: Some(every), ..
            }) => paces.cap(every, max_hold),
            _ => {}
        }
    }
    let mut notes = Vec::new();
    notes.extend(holds.note("hold", hold_cap));
    if hold_cap > max_hold && holds.count > 0 {
        notes.push(format!(
            "holds are kept at twice the metrics' {} interval at least: a hold needs a sample, and a headless run stops a hold that has none in twice its time",
            format_duration(plan.metrics.interval.get())
        ));
    }
    notes.extend(paces.note("paced weight step's `every`", max_hold));
    let countdown = plan.metrics.on_breach.countdown.get();
    if countdown > max_hold {
        plan.metrics.on_breach.countdown = PlanDuration(max_hold);
        notes.push(format!(
            "the rollback countdown capped at {} (the plan says {})",
            format_duration(max_hold),
            format_duration(countdown)
        ));
    }
    Capped { plan, notes }
}

/// How many durations of one kind were capped, and the longest before.
#[derive(Default)]
struct Capping {
    count: usize,
    longest: Duration,
}

impl Capping {
    fn cap(&mut self, d: &mut PlanDuration, max: Duration) {
        if d.get() > max {
            self.count += 1;
            self.longest = self.longest.max(d.get());
            *d = PlanDuration(max);
        }
    }

    fn note(&self, what: &str, max: Duration) -> Option<String> {
        (self.count > 0).then(|| {
            format!(
                "{} {what}{} capped at {} (the longest was {})",
                self.count,
                if self.count == 1 { "" } else { "s" },
                format_duration(max),
                format_duration(self.longest)
            )
        })
    }
}

/// How long the hold a breach or no-data scenario aims at is kept, at least (never longer than
/// the plan's own): long enough for the fault to show in the plan's rate window and for
/// `after` samples (and two more) to judge it. Capped shorter, the hold would pass before any
/// breach could be seen, and the scenario would prove nothing.
pub fn hold_floor(plan: &Plan, max_hold: Duration) -> Duration {
    let after = plan
        .metrics
        .on_breach
        .after
        .max(plan.metrics.no_data.after)
        .saturating_add(2);
    let judging = plan.metrics.rate.get() + plan.metrics.interval.get() * after;
    judging.max(max_hold)
}

/// `plan` with the first hold of `phase` back at [`hold_floor`] (or the plan's own, when
/// shorter); a note saying so.
pub fn keep_hold(
    rehearsed: &Plan,
    original: &Plan,
    phase: usize,
    max_hold: Duration,
) -> (Plan, Option<String>) {
    let mut plan = rehearsed.clone();
    let first_hold = |p: &Plan| {
        p.phases
            .get(phase)
            .and_then(|ph| ph.steps.iter().position(|s| matches!(s, Step::Hold(_))))
    };
    let Some(at) = first_hold(original) else {
        return (plan, None);
    };
    let own = match original.phases[phase].steps.get(at) {
        Some(Step::Hold(d)) => d.get(),
        _ => return (plan, None),
    };
    let kept = hold_floor(original, max_hold).min(own);
    if let Some(Step::Hold(d)) = plan.phases[phase].steps.get_mut(at) {
        if d.get() >= kept {
            return (plan, None);
        }
        *d = PlanDuration(kept);
    }
    let length = if kept == own {
        format!("at the plan's {}", format_duration(own))
    } else {
        format!(
            "at {} (of the plan's {})",
            format_duration(kept),
            format_duration(own)
        )
    };
    let note = format!(
        "the hold under test kept {length}: the metrics' {} rate window and {} samples {} apart must be able to see the fault",
        format_duration(original.metrics.rate.get()),
        original
            .metrics
            .on_breach
            .after
            .max(original.metrics.no_data.after),
        format_duration(original.metrics.interval.get()),
    );
    (plan, Some(note))
}

/// One scenario of a rehearsal, each on fresh simulators.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// The plan to its end.
    Straight,
    /// An error spike during the first hold of phase `phase`.
    Breach { phase: usize },
    /// A Prometheus outage during the first hold of phase `phase`.
    NoData { phase: usize },
    /// The tier run by hand after the plan's last change of traffic or workload.
    Tier(TierName),
    /// A 20 s API outage in the middle of a paced weight step (or, without one, from the first
    /// hold after a weight step).
    ApiOutage,
}

/// How long the API outage of [`Scenario::ApiOutage`] lasts.
pub const API_OUTAGE: Duration = Duration::from_secs(20);

impl Scenario {
    /// Its name on the command line and in the report: `breach-production`.
    pub fn name(&self, plan: &Plan) -> String {
        let phase = |i: usize| {
            plan.phases
                .get(i)
                .map(|p| slug(&p.name))
                .unwrap_or_default()
        };
        match self {
            Scenario::Straight => "straight".into(),
            Scenario::Breach { phase: i } => format!("breach-{}", phase(*i)),
            Scenario::NoData { phase: i } => format!("no-data-{}", phase(*i)),
            Scenario::Tier(t) => format!("tier-{}", t.as_str()),
            Scenario::ApiOutage => "api-outage".into(),
        }
    }

    /// What should happen, for the report.
    pub fn expected(&self, plan: &Plan) -> String {
        let phase = |i: usize| {
            plan.phases
                .get(i)
                .map(|p| p.name.clone())
                .unwrap_or_default()
        };
        match self {
            Scenario::Straight => "the plan completes; the cluster ends as its steps say".into(),
            Scenario::Breach { phase: i } => format!(
                "an error spike on the {} during {}'s first hold: {}; the hold does not pass",
                fault_track(plan).as_str(),
                phase(*i),
                action_words(plan, plan.metrics.on_breach.action)
            ),
            Scenario::NoData { phase: i } => format!(
                "Prometheus down during {}'s first hold: {} after {} empty samples; the hold does not pass",
                phase(*i),
                action_words(plan, plan.metrics.no_data.action),
                plan.metrics.no_data.after
            ),
            Scenario::Tier(t) => format!(
                "rollback.{} run after the last change: every action succeeds, ROLLED BACK, and the cluster is what the tier promises",
                t.as_str()
            ),
            Scenario::ApiOutage => {
                let at = match api_outage_step(plan) {
                    Some(at) if at.paced => "in the middle of a paced weight step".to_string(),
                    Some(at) => format!(
                        "from just before the end of a hold in {} (the plan has no paced weight step), so the steps after it meet the outage",
                        phase(at.phase)
                    ),
                    None => "during the run".to_string(),
                };
                format!(
                    "the Kubernetes API down for {} {at}: the run rides it out and completes",
                    format_duration(API_OUTAGE)
                )
            }
        }
    }
}

/// What a breach or no-data action does, in words.
fn action_words(plan: &Plan, action: BreachAction) -> String {
    match action {
        BreachAction::Alert => "an alert, and the plan goes no further while it lasts".into(),
        BreachAction::Pause => "the run pauses".into(),
        BreachAction::Rollback => format!(
            "rollback.{} after the countdown, to ROLLED BACK",
            plan.metrics.on_breach.tier.as_str()
        ),
    }
}

/// The track a breach is injected on: the canary when the plan has one.
pub fn fault_track(plan: &Plan) -> TrackName {
    if plan.tracks().contains(&TrackName::Canary) {
        TrackName::Canary
    } else {
        TrackName::Stable
    }
}

/// Lower case, runs of anything but letters and digits as one `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Every scenario the plan calls for, in the order they are reported.
pub fn scenarios(plan: &Plan) -> Vec<Scenario> {
    let with_hold: Vec<usize> = plan
        .phases
        .iter()
        .enumerate()
        .filter(|(_, p)| p.steps.iter().any(|s| matches!(s, Step::Hold(_))))
        .map(|(i, _)| i)
        .collect();
    let mut out = vec![Scenario::Straight];
    out.extend(with_hold.iter().map(|&phase| Scenario::Breach { phase }));
    out.extend(with_hold.iter().map(|&phase| Scenario::NoData { phase }));
    for tier in [TierName::Immediate, TierName::Gradual, TierName::Full] {
        if plan.rollback.tier(tier).is_some() {
            out.push(Scenario::Tier(tier));
        }
    }
    if api_outage_step(plan).is_some() {
        out.push(Scenario::ApiOutage);
    }
    out
}

/// Where the API outage goes: (phase, step) of the first paced weight step, where it starts
/// after the first move; else, since a single weight write takes milliseconds, of the first
/// hold that a step talking to the API follows in the same phase, where it starts just before
/// the hold ends and so meets that step. None when the plan has neither: an outage would meet
/// nothing, and the scenario is left out.
pub fn api_outage_step(plan: &Plan) -> Option<OutageAt> {
    let steps = || {
        plan.phases.iter().enumerate().flat_map(|(p, phase)| {
            phase
                .steps
                .iter()
                .enumerate()
                .map(move |(s, st)| (p, s, st))
        })
    };
    let paced = steps().find(|(_, _, st)| {
        matches!(
            st,
            Step::Weight(WeightStep::Gradual {
                every: Some(_),
                step: Some(_),
                ..
            })
        )
    });
    if let Some((phase, step, _)) = paced {
        return Some(OutageAt {
            phase,
            step,
            paced: true,
        });
    }
    // A hold followed, in its own phase (so in the same cluster), by a step that writes to or
    // waits on the API: the outage started just before the hold ends meets that step.
    let talks_to_api = |st: &Step| {
        matches!(
            st,
            Step::Weight(_)
                | Step::Image(_)
                | Step::Wait(_)
                | Step::Scale(_)
                | Step::Flag(_)
                | Step::Promote(_)
                | Step::Undo(_)
                | Step::Config(_)
        )
    };
    plan.phases.iter().enumerate().find_map(|(phase, ph)| {
        ph.steps.iter().enumerate().find_map(|(step, st)| {
            let then = ph.steps.get(step + 1..).unwrap_or_default();
            (matches!(st, Step::Hold(_)) && then.iter().any(talks_to_api)).then_some(OutageAt {
                phase,
                step,
                paced: false,
            })
        })
    })
}

/// Where [`Scenario::ApiOutage`] starts its outage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageAt {
    pub phase: usize,
    pub step: usize,
    /// In a paced weight step (after its first move), rather than at a hold's start.
    pub paced: bool,
}

/// The step after which `tier-*` scenarios roll back: the plan's last weight step, else its
/// last step that changes or waits for the workload (image, scale, flag, wait, run). None for
/// a plan with neither. The rehearsal puts a hold right after it, so the tier starts before
/// anything that follows (a `promote`, the plan's end).
pub fn tier_point(plan: &Plan) -> Option<(usize, usize)> {
    let all: Vec<(usize, usize, &Step)> = plan
        .phases
        .iter()
        .enumerate()
        .flat_map(|(p, phase)| {
            phase
                .steps
                .iter()
                .enumerate()
                .map(move |(s, step)| (p, s, step))
        })
        .collect();
    let last = |f: fn(&Step) -> bool| all.iter().rev().find(|(_, _, s)| f(s));
    last(|s| matches!(s, Step::Weight(_)))
        .or_else(|| {
            last(|s| {
                matches!(
                    s,
                    Step::Image(_) | Step::Scale(_) | Step::Flag(_) | Step::Wait(_) | Step::Run(_)
                )
            })
        })
        .map(|(p, s, _)| (*p, *s))
}

/// The environment a tier scenario rolls back in: the tier point's phase's, else the last
/// phase's.
pub fn tier_environment(plan: &Plan) -> String {
    tier_point(plan)
        .and_then(|(p, _)| plan.phases.get(p))
        .or_else(|| plan.phases.last())
        .map(|p| p.environment.clone())
        .unwrap_or_default()
}

/// `plan` with a hold of `wait` right after the tier point, so that the tier is asked for while
/// it holds, not after the plan has gone on (a `promote` would change what an `undo` finds) or
/// ended.
pub fn hold_after_tier_point(plan: &Plan, wait: Duration) -> Plan {
    let mut plan = plan.clone();
    if let Some((p, s)) = tier_point(&plan) {
        if let Some(phase) = plan.phases.get_mut(p) {
            phase.steps.insert(s + 1, Step::Hold(PlanDuration(wait)));
        }
    }
    plan
}

/// The `run` actions of `tier` that a rehearsal only prints (no `rehearse: true`).
pub fn printed_actions(plan: &Plan, tier: TierName) -> Vec<String> {
    plan.rollback
        .tier(tier)
        .map(|t| {
            t.actions
                .iter()
                .filter_map(|a| match a {
                    Step::Run(r) if !r.rehearses() => Some(r.cmd().to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(name);
        let text = std::fs::read_to_string(&path).expect("plan file");
        crate::plan::parse(&path, &text).expect("valid plan")
    }

    #[test]
    fn holds_paces_countdowns_and_the_interval_are_capped_and_said() {
        let original = plan("checkout-canary.yaml");
        let capped = cap(&original, Duration::from_secs(10));
        let holds: Vec<Duration> = capped
            .plan
            .phases
            .iter()
            .flat_map(|p| p.steps.iter())
            .filter_map(|s| match s {
                Step::Hold(d) => Some(d.get()),
                _ => None,
            })
            .collect();
        assert!(!holds.is_empty());
        // At least twice the 10s sampling interval.
        assert!(
            holds.iter().all(|d| *d <= Duration::from_secs(20)),
            "{holds:?}"
        );
        assert_eq!(
            capped.plan.metrics.on_breach.countdown.get(),
            Duration::from_secs(10)
        );
        // Sampled as the plan says.
        assert_eq!(capped.plan.metrics.interval.get(), Duration::from_secs(10));
        let notes = capped.notes.join("\n");
        assert!(
            notes.contains("holds capped at 20s (the longest was 10m)"),
            "{notes}"
        );
        assert!(
            notes.contains("countdown capped at 10s (the plan says 15s)"),
            "{notes}"
        );
        assert!(
            notes.contains("at twice the metrics' 10s interval"),
            "{notes}"
        );
        assert!(
            notes.contains("1 paced weight step's `every` capped at 10s (the longest was 1m)"),
            "{notes}"
        );
        // The original is untouched.
        assert!(
            original
                .phases
                .iter()
                .flat_map(|p| p.steps.iter())
                .any(|s| matches!(s, Step::Hold(d) if d.get() == Duration::from_secs(600)))
        );
    }

    #[test]
    fn every_phase_with_a_hold_gets_a_breach_and_a_no_data_scenario() {
        let p = plan("checkout-canary.yaml");
        let names: Vec<String> = scenarios(&p).iter().map(|s| s.name(&p)).collect();
        assert_eq!(
            names,
            [
                "straight",
                "breach-development",
                "breach-staging",
                "breach-production",
                "no-data-development",
                "no-data-staging",
                "no-data-production",
                "tier-immediate",
                "tier-gradual",
                "tier-full",
                "api-outage"
            ]
        );
    }

    #[test]
    fn the_tier_point_is_the_plans_last_weight_step_and_a_hold_follows_it() {
        for name in ["checkout-canary.yaml", "payments-blue-green.yaml"] {
            let p = plan(name);
            let (phase, step) = tier_point(&p).expect("a point");
            assert_eq!(p.phases[phase].name, "Production", "{name}");
            assert!(matches!(
                p.phases[phase].steps[step],
                Step::Weight(WeightStep::To(w)) if w.percent() == 100
            ));
            let held = hold_after_tier_point(&p, Duration::from_secs(3));
            assert_eq!(
                held.phases[phase].steps[step + 1],
                Step::Hold(PlanDuration(Duration::from_secs(3)))
            );
        }
        // Without a weight step: the last wait.
        let infra = plan("platform-infra.yaml");
        let (phase, step) = tier_point(&infra).expect("a point");
        assert!(matches!(infra.phases[phase].steps[step], Step::Wait(_)));
        assert_eq!(printed_actions(&infra, TierName::Gradual).len(), 2);
        assert!(printed_actions(&infra, TierName::Immediate).is_empty());
    }

    #[test]
    fn slugs_are_lower_case_and_dashed() {
        assert_eq!(slug("Production (EU)"), "production-eu");
        assert_eq!(slug("  Staging 2 "), "staging-2");
    }
}
