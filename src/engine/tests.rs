//! The engine's rules, driven by calls alone: no terminal, no cluster, time as arguments.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::analysis::Round;
use super::state::*;
use super::work::{Level, Work};
use crate::metrics::Sample;
use crate::metrics::series::Point;
use crate::plan::{self, TierName, TrackName, Weight};

const PLAN: &str = r#"version: 1
name: t
service: checkout
strategy: canary
environments: { dev: { namespace: dev }, prod: { namespace: prod } }
workload: { name: checkout, canary: checkout-canary, container: app, image: "r/checkout:2" }
traffic: { router: gateway-api, route: checkout }
metrics:
  interval: 5s
  queries: { error_rate: "up" }
  thresholds: { error_rate: { max: 0.05 } }
  on_breach: { action: rollback, tier: immediate, after: 2, countdown: 10s }
  no_data: { after: 2, action: pause }
phases:
  - name: Dev
    environment: dev
    steps:
      - image: canary
      - weight: 10
      - hold: 1m
      - pause: look
  - name: Prod
    environment: prod
    approval: [carol]
    steps:
      - weight: { to: 50, step: 20, every: 1m }
      - run: ./smoke.sh
      - notify: live
rollback:
  immediate:
    target: 5m
    actions:
      - weight: 0
      - flag: { configmap: flags, key: new, value: "false" }
      - config: restore
  full:
    actions:
      - undo: stable
"#;

fn deployment() -> Deployment {
    Deployment::new(Arc::new(parse(PLAN)))
}

fn parse(text: &str) -> plan::Plan {
    plan::parse(Path::new("t.yaml"), text).expect("test plan parses")
}

/// The test plan with Dev's window open on Mondays 10:00–10:01 UTC only, and a Tuesday noon
/// (2027-01-12) when it is closed.
fn windowed() -> (Deployment, SystemTime) {
    let text = PLAN.replace(
        "  - name: Dev\n    environment: dev\n",
        "  - name: Dev\n    environment: dev\n    window: { days: [mon], from: \"10:00\", to: \"10:01\", tz: UTC }\n",
    );
    let tuesday = "2027-01-12T12:00:00Z"
        .parse::<jiff::Timestamp>()
        .expect("timestamp");
    (
        Deployment::new(Arc::new(parse(&text))),
        SystemTime::from(tuesday),
    )
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn at(phase: usize, slot: usize) -> StepRef {
    StepRef { phase, slot }
}

fn ok() -> Result<String, String> {
    Ok(String::new())
}

fn samples(canary: Option<f64>) -> Vec<Sample> {
    [
        (TrackName::Stable, Some(0.001)),
        (TrackName::Canary, canary),
    ]
    .into_iter()
    .map(|(track, value)| Sample {
        metric: "error_rate".into(),
        track,
        point: Point { at: t(0), value },
    })
    .collect()
}

fn texts(out: &Outcome) -> Vec<&str> {
    out.notes.iter().map(|n| n.text.as_str()).collect()
}

/// Runs Dev up to its hold: image done, weight 10 stored.
fn into_the_hold(d: &mut Deployment) {
    let out = d.advance(t(0), "alice");
    assert_eq!(
        out.commands[0].work,
        Work::SetImage {
            track: TrackName::Canary,
            timeout: Duration::from_secs(600)
        }
    );
    assert_eq!(out.commands[0].environment, "dev");
    let out = d.command_done(Origin::Step(at(0, 0)), ok(), t(1));
    assert_eq!(
        out.commands[0].work,
        Work::SetWeight {
            weight: Weight::clamped(10),
            emergency: false
        }
    );
    d.command_done(Origin::Step(at(0, 1)), ok(), t(2));
    assert_eq!(d.cursor, Some(at(0, 2)));
    assert_eq!(d.weight, Some(Weight::clamped(10)));
}

#[test]
fn every_effect_step_sends_its_work_to_its_phases_environment() {
    let mut d = deployment();
    into_the_hold(&mut d);
    assert_eq!(d.environment(), "dev");
}

#[test]
fn a_hold_passes_only_with_data_and_no_breach() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.tick(t(70));
    assert_eq!(
        d.cursor,
        Some(at(0, 2)),
        "a minute without a sample does not pass"
    );
    assert_eq!(
        d.hold_waiting_for().as_deref(),
        Some("waiting for a sample")
    );
    d.samples(Round::Samples(&samples(Some(0.01))), t(71));
    assert_eq!(
        d.cursor,
        Some(at(0, 3)),
        "time up and a clean sample: passed"
    );
}

#[test]
fn missing_data_never_passes_a_hold_and_pauses_after_its_count() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Unanswered { error: "refused" }, t(61));
    d.tick(t(62));
    assert_eq!(d.cursor, Some(at(0, 2)));
    let out = d.samples(Round::Unanswered { error: "refused" }, t(66));
    assert_eq!(d.status, RunStatus::Paused);
    assert!(texts(&out).iter().any(|l| l.contains("→ pause")), "{out:?}");
    assert!(
        d.waiting_for_person()
            .is_some_and(|w| w.contains("paused by analysis"))
    );
}

#[test]
fn breach_twice_starts_a_countdown_that_rolls_back_when_it_ends() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.072))), t(5));
    assert!(d.countdown.is_none(), "1 of 2");
    let out = d.samples(Round::Samples(&samples(Some(0.072))), t(10));
    let line = texts(&out).join("\n");
    assert!(
        line.contains(
            "error_rate canary 7.20% > 5.00% (2 of 2) → rollback immediate in 10s (x to cancel)"
        ),
        "{line}"
    );
    assert!(d.tick(t(19)).commands.is_empty());
    let out = d.tick(t(20));
    assert_eq!(d.status, RunStatus::RollingBack);
    assert_eq!(
        out.commands[0].work,
        Work::SetWeight {
            weight: Weight::ZERO,
            emergency: true
        },
        "weight 0 first"
    );
    assert!(out.cancel_steps);
}

#[test]
fn x_cancels_the_countdown_pauses_and_no_new_one_starts_until_recovery() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.2))), t(5));
    d.samples(Round::Samples(&samples(Some(0.2))), t(10));
    let out = d.cancel_countdown(t(12), "bob");
    assert!(
        out.notes
            .iter()
            .any(|n| n.level == Level::Operator && n.text.starts_with("bob cancelled"))
    );
    assert_eq!(d.status, RunStatus::Paused);
    d.samples(Round::Samples(&samples(Some(0.2))), t(15));
    assert!(d.countdown.is_none(), "acknowledged: no new countdown");
    d.samples(Round::Samples(&samples(Some(0.01))), t(20));
    d.samples(Round::Samples(&samples(Some(0.2))), t(25));
    d.samples(Round::Samples(&samples(Some(0.2))), t(30));
    assert!(d.countdown.is_some(), "recovered, then breached again");
}

#[test]
fn immediate_rollback_writes_weight_zero_first_then_the_rest_and_finishes_only_when_all_succeeded()
{
    let mut d = deployment();
    into_the_hold(&mut d);
    let out = d.rollback(TierName::Immediate, t(30), "alice");
    assert_eq!(out.commands.len(), 1);
    assert_eq!(
        out.commands[0].work,
        Work::SetWeight {
            weight: Weight::ZERO,
            emergency: true
        }
    );
    assert_eq!(
        d.headline(t(44)),
        "ROLLING BACK (immediate, 1 of 3, 0:14 of 5m)"
    );
    let run = match out.commands[0].origin {
        Origin::Rollback { run, .. } => run,
        other => panic!("{other:?}"),
    };
    let out = d.command_done(Origin::Rollback { run, action: 0 }, ok(), t(31));
    assert!(matches!(out.commands[0].work, Work::SetFlag { .. }));
    let out = d.command_done(Origin::Rollback { run, action: 1 }, ok(), t(32));
    assert_eq!(out.commands[0].work, Work::RestoreConfig);
    assert_eq!(
        d.status,
        RunStatus::RollingBack,
        "not rolled back before the last action"
    );
    d.command_done(Origin::Rollback { run, action: 2 }, ok(), t(33));
    assert_eq!(d.status, RunStatus::RolledBack);
    assert_eq!(d.headline(t(34)), "ROLLED BACK (immediate)");
}

#[test]
fn a_failed_rollback_action_does_not_stop_the_others_and_n_retries_it() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.rollback(TierName::Immediate, t(30), "alice");
    d.command_done(Origin::Rollback { run: 1, action: 0 }, ok(), t(31));
    let out = d.command_done(
        Origin::Rollback { run: 1, action: 1 },
        Err("forbidden".into()),
        t(32),
    );
    assert_eq!(
        out.commands[0].work,
        Work::RestoreConfig,
        "the next still runs"
    );
    let out = d.command_done(Origin::Rollback { run: 1, action: 2 }, ok(), t(33));
    assert_eq!(d.status, RunStatus::RollbackFailed);
    assert!(
        texts(&out)
            .iter()
            .any(|l| l.contains("flag: flags/new = false: forbidden"))
    );
    assert_eq!(
        d.headline(t(34)),
        "ROLLBACK FAILED (immediate: flag: flags/new = false)"
    );
    let out = d.advance(t(40), "alice");
    assert_eq!(out.commands.len(), 1, "only the failed action again");
    assert!(matches!(out.commands[0].work, Work::SetFlag { .. }));
    d.command_done(Origin::Rollback { run: 2, action: 1 }, ok(), t(41));
    assert_eq!(d.status, RunStatus::RolledBack);
}

#[test]
fn immediate_pre_empts_a_full_rollback_and_the_same_tier_is_refused() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.rollback(TierName::Full, t(30), "alice");
    let out = d.rollback(TierName::Full, t(31), "alice");
    assert!(out.commands.is_empty());
    assert!(texts(&out)[0].contains("already under way"));
    let out = d.rollback(TierName::Immediate, t(32), "alice");
    assert_eq!(out.commands.len(), 1);
    assert!(
        out.cancel_rollback,
        "the full tier's undo still in flight is stopped"
    );
    // The undo's late result belongs to a run that no longer counts.
    d.command_done(Origin::Rollback { run: 1, action: 0 }, ok(), t(33));
    assert_eq!(
        d.rollback.as_ref().map(|r| r.tier),
        Some(TierName::Immediate)
    );
}

#[test]
fn approval_passes_only_for_a_listed_operator() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    d.advance(t(63), "alice"); // the pause step
    assert_eq!(d.cursor, Some(at(1, 0)));
    assert_eq!(d.environment(), "prod");
    let out = d.advance(t(64), "alice");
    assert!(texts(&out)[0].contains("waiting for carol's approval"));
    assert_eq!(d.cursor, Some(at(1, 0)));
    let out = d.advance(t(65), "carol");
    assert!(texts(&out)[0].contains("approved by carol"));
    assert_eq!(d.cursor, Some(at(1, 1)));
}

#[test]
fn n_never_resumes_a_pause_and_does_not_cut_a_hold_short() {
    let mut d = deployment();
    into_the_hold(&mut d);
    let out = d.advance(t(10), "alice");
    assert!(texts(&out)[0].contains("does not cut a hold short"));
    assert_eq!(d.cursor, Some(at(0, 2)));
    d.toggle_pause(t(11), "alice");
    d.advance(t(12), "alice");
    assert_eq!(d.status, RunStatus::Paused);
    let out = d.skip_hold(t(13), "alice", "seen enough");
    assert!(texts(&out)[0].contains("paused"));
    d.toggle_pause(t(14), "alice");
    let out = d.skip_hold(t(15), "alice", "seen enough");
    assert!(
        texts(&out)[0].contains("cut short by alice after 0:01: seen enough"),
        "{out:?}"
    );
    assert_eq!(d.cursor, Some(at(0, 3)));
}

#[test]
fn paced_weights_write_one_step_per_interval_and_pausing_stops_them() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    d.advance(t(63), "alice");
    assert_eq!(d.weight, None, "dev's weight says nothing about prod");
    let out = d.advance(t(64), "carol");
    assert!(
        out.commands.is_empty(),
        "paced from a weight not read yet: waits"
    );
    d.observe_weight(Weight::ZERO);
    let out = d.tick(t(64));
    assert_eq!(
        out.commands[0].work,
        Work::SetWeight {
            weight: Weight::clamped(20),
            emergency: false
        }
    );
    assert_eq!(out.commands[0].environment, "prod");
    d.command_done(Origin::Step(at(1, 1)), ok(), t(65));
    assert!(d.tick(t(100)).commands.is_empty(), "not before a minute");
    d.toggle_pause(t(120), "alice");
    assert!(d.tick(t(130)).commands.is_empty(), "paused: no write");
    d.toggle_pause(t(140), "alice");
    let out = d.tick(t(141));
    assert!(out.commands.is_empty(), "the resume already sent it");
    d.command_done(Origin::Step(at(1, 1)), ok(), t(142));
    let out = d.tick(t(202));
    assert_eq!(
        out.commands[0].work,
        Work::SetWeight {
            weight: Weight::clamped(50),
            emergency: false
        }
    );
    let out = d.command_done(Origin::Step(at(1, 1)), ok(), t(203));
    assert!(
        matches!(out.commands[0].work, Work::Run { .. }),
        "then the run step"
    );
}

#[test]
fn a_failed_step_stops_the_plan_and_n_retries_it() {
    let mut d = deployment();
    d.advance(t(0), "alice");
    d.command_done(Origin::Step(at(0, 0)), Err("image pull".into()), t(1));
    assert_eq!(d.status, RunStatus::Failed);
    assert!(
        d.waiting_for_person()
            .is_some_and(|w| w.contains("image pull"))
    );
    let out = d.advance(t(2), "alice");
    assert!(matches!(out.commands[0].work, Work::SetImage { .. }));
}

#[test]
fn auto_approve_passes_gates_but_not_pauses_unless_all() {
    let mut d = deployment();
    d.auto_approve = AutoApprove::Gates;
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    assert!(
        d.waiting_for_person()
            .is_some_and(|w| w.contains("pause: look"))
    );
    let mut d = deployment();
    d.auto_approve = AutoApprove::All;
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    let out = d.tick(t(62));
    assert_eq!(d.cursor, Some(at(1, 1)), "pause and approval passed");
    assert!(texts(&out).iter().any(|l| l.contains("--auto-approve")));
}

#[test]
fn breaches_outside_a_judged_step_only_alert() {
    let mut d = deployment();
    d.advance(t(0), "alice");
    d.samples(Round::Samples(&samples(Some(0.3))), t(5));
    let out = d.samples(Round::Samples(&samples(Some(0.3))), t(10));
    assert!(d.countdown.is_none());
    assert!(
        texts(&out).iter().any(|l| l.ends_with("→ alert")),
        "{out:?}"
    );
    let out = d.samples(Round::Samples(&samples(Some(0.3))), t(15));
    assert!(out.notes.is_empty(), "reported once per streak");
}

#[test]
fn the_plan_completes_after_the_last_slot() {
    let mut d = deployment();
    d.auto_approve = AutoApprove::All;
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    d.observe_weight(Weight::clamped(40));
    let out = d.tick(t(63));
    assert_eq!(
        out.commands[0].work,
        Work::SetWeight {
            weight: Weight::clamped(50),
            emergency: false
        }
    );
    d.command_done(Origin::Step(at(1, 1)), ok(), t(63));
    d.command_done(Origin::Step(at(1, 2)), ok(), t(64));
    d.command_done(Origin::Step(at(1, 3)), ok(), t(65));
    assert_eq!(d.status, RunStatus::Complete);
    assert!(d.is_finished());
}

#[test]
fn a_countdown_holds_paced_writes_and_keeps_the_step_from_finishing() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    d.advance(t(63), "alice");
    d.advance(t(64), "carol");
    d.observe_weight(Weight::clamped(10));
    let out = d.tick(t(65));
    assert_eq!(out.commands.len(), 1, "30% first");
    d.command_done(Origin::Step(at(1, 1)), ok(), t(66));
    d.samples(Round::Samples(&samples(Some(0.3))), t(120));
    d.samples(Round::Samples(&samples(Some(0.3))), t(121));
    assert!(d.countdown.is_some());
    assert!(
        d.tick(t(127)).commands.is_empty(),
        "the next write was due at 2:06; none toward more traffic during the countdown"
    );
    assert_eq!(d.cursor, Some(at(1, 1)), "the step is still judged");
    assert_eq!(d.waiting_for_person(), None, "the engine acts by itself");
    let out = d.tick(t(200));
    assert_eq!(out.commands[0].environment, "prod");
    assert_eq!(d.status, RunStatus::RollingBack);
}

#[test]
fn a_track_that_stops_serving_leaves_no_streak_behind_to_block_a_hold() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.weight = None; // as after an environment switch: both tracks judged
    d.samples(Round::Samples(&samples(None)), t(30));
    d.observe_weight(Weight::ZERO);
    d.samples(Round::Samples(&samples(None)), t(31));
    assert!(
        d.analysis.clean(),
        "the canary serves nothing: its silence is expected"
    );
}

#[test]
fn an_acknowledgement_does_not_follow_the_plan_into_the_next_environment() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.3))), t(5));
    d.samples(Round::Samples(&samples(Some(0.3))), t(10));
    d.cancel_countdown(t(11), "bob");
    assert!(d.analysis.is_acknowledged("error_rate"));
    d.environment_switched();
    assert!(!d.analysis.is_acknowledged("error_rate"));
}

#[test]
fn a_hold_needs_its_whole_duration_clean() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Unanswered { error: "refused" }, t(50));
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    assert_eq!(
        d.cursor,
        Some(at(0, 2)),
        "missing data at 0:50 restarts the clean time"
    );
    d.samples(Round::Samples(&samples(Some(0.01))), t(111));
    assert_eq!(d.cursor, Some(at(0, 3)), "a minute clean since then");
}

#[test]
fn a_closed_window_waits_for_the_clock_not_a_person() {
    let (mut d, tuesday) = windowed();
    let out = d.advance(tuesday, "alice");
    assert!(out.commands.is_empty());
    assert!(
        texts(&out)
            .iter()
            .any(|l| l.contains("window opens Mon 10:00 UTC, in 5d22h")),
        "{out:?}"
    );
    assert_eq!(d.waiting_for_person(), None);
    let out = d.override_window(tuesday, "alice", "hotfix approved by carol");
    assert!(texts(&out)[0].contains("overridden by alice: hotfix approved by carol"));
    assert!(matches!(out.commands[0].work, Work::SetImage { .. }));
}

#[test]
fn bang_at_the_next_phases_gate_rolls_back_where_the_canary_is_live() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.01))), t(61));
    d.tick(t(62));
    d.advance(t(63), "alice"); // the pause: now at prod's approval gate
    assert_eq!(d.cursor, Some(at(1, 0)));
    let out = d.rollback(TierName::Immediate, t(64), "alice");
    assert_eq!(out.commands[0].environment, "dev");
}

#[test]
fn wait_follows_the_deployment_its_phase_last_changed() {
    let text = PLAN.replace(
        "      - image: canary\n",
        "      - scale: { track: stable, replicas: 5 }\n      - wait: ready\n      - image: canary\n      - wait: ready\n",
    );
    let d = Deployment::new(Arc::new(parse(&text)));
    let waits: Vec<TrackName> = d.phases[0]
        .slots
        .iter()
        .filter_map(|s| match &s.work {
            super::work::StepWork::Effect(Work::WaitRollout { track, .. }) => Some(*track),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [TrackName::Stable, TrackName::Canary]);
}

#[test]
fn a_plan_with_nothing_to_roll_back_says_so_instead_of_rolled_back() {
    let text = PLAN
        .replace("traffic: { router: gateway-api, route: checkout }\n", "")
        .replace("strategy: canary", "strategy: rolling")
        .replace("      - weight: 10\n", "")
        .replace("      - weight: { to: 50, step: 20, every: 1m }\n", "");
    let text = text[..text.find("rollback:").expect("rollback")].to_string();
    let mut d = Deployment::new(Arc::new(parse(&text)));
    d.advance(t(0), "alice");
    let out = d.rollback(TierName::Immediate, t(1), "alice");
    assert!(out.commands.is_empty());
    assert!(
        texts(&out)[0].starts_with("nothing to roll back"),
        "{out:?}"
    );
    assert_eq!(d.status, RunStatus::Running);
}

#[test]
fn a_track_that_begins_to_serve_gets_one_rate_window_before_its_missing_data_counts() {
    let mut d = deployment();
    into_the_hold(&mut d);
    for s in [5, 10, 15] {
        d.samples(Round::Samples(&samples(None)), t(s));
    }
    assert_eq!(d.status, RunStatus::Running, "its rates cannot exist yet");
    assert!(!d.analysis.clean(), "and the hold cannot pass on them");
    d.samples(Round::Samples(&samples(None)), t(70));
    d.samples(Round::Samples(&samples(None)), t(75));
    assert_eq!(
        d.status,
        RunStatus::Paused,
        "a rate window (1m) later it counts"
    );
}

#[test]
fn a_hold_cannot_be_skipped_while_a_rollback_counts_down() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Samples(&samples(Some(0.3))), t(5));
    d.samples(Round::Samples(&samples(Some(0.3))), t(10));
    let out = d.skip_hold(t(11), "alice", "looks fine");
    assert!(texts(&out)[0].contains("cannot be skipped"), "{out:?}");
    assert_eq!(d.cursor, Some(at(0, 2)));
}

#[test]
fn a_hold_long_past_its_duration_without_passing_is_left_to_a_person() {
    let mut d = deployment();
    into_the_hold(&mut d);
    d.samples(Round::Unanswered { error: "refused" }, t(50));
    assert_eq!(d.hold_overdue(t(100)), None);
    assert_eq!(
        d.hold_clean_since(),
        Some(t(50)),
        "the clean time counts from the missing sample"
    );
    let overdue = d
        .hold_overdue(t(125))
        .expect("two minutes for a one-minute hold");
    assert!(
        overdue.starts_with("hold 1m has not had a clean 1m in 2m"),
        "{overdue}"
    );
}

#[test]
fn wait_in_a_rollback_tier_follows_the_deployment_the_tier_changed() {
    let text = PLAN.replace(
        "  full:\n    actions:\n      - undo: stable\n",
        "  full:\n    actions:\n      - undo: stable\n      - wait: ready\n",
    );
    let actions = rollback_actions(&parse(&text), TierName::Full);
    assert!(matches!(
        actions[1].work,
        super::work::StepWork::Effect(Work::WaitRollout {
            track: TrackName::Stable,
            ..
        })
    ));
}

#[test]
fn a_window_override_while_paused_waits_for_resume() {
    let (mut d, tuesday) = windowed();
    d.advance(tuesday, "alice");
    d.toggle_pause(tuesday, "alice");
    let out = d.override_window(tuesday, "alice", "hotfix");
    assert!(out.commands.is_empty(), "paused: nothing starts");
    let out = d.toggle_pause(tuesday, "alice");
    assert_eq!(out.commands.len(), 1, "resumed: the phase starts");
}

#[test]
fn override_window_flag_lets_every_windowed_phase_start_and_is_logged_once() {
    let (mut d, tuesday) = windowed();
    let out = d.override_all_windows("alice", "rehearsal");
    assert_eq!(
        texts(&out),
        ["deployment windows overridden for this run by alice: rehearsal"]
    );
    let out = d.advance(tuesday, "alice");
    assert!(matches!(out.commands[0].work, Work::SetImage { .. }));
    assert!(
        deployment()
            .override_all_windows("alice", "x")
            .notes
            .is_empty(),
        "no windows: nothing to log"
    );
}

/// The key bar's `n` says what `n` does: whenever the preview says it acts, `advance` changes
/// the run, and whenever it says why not, `advance` changes nothing.
#[test]
fn the_advance_preview_agrees_with_advance_in_every_state_of_a_run() {
    let check = |d: &Deployment, who: &str, when: &str| {
        let preview = d.advance_preview(who);
        let mut after = d.clone();
        let out = after.advance(t(500), who);
        let acted = !out.commands.is_empty()
            || after.status != d.status
            || after.cursor != d.cursor
            || after.phases != d.phases
            || after.rollback != d.rollback;
        assert_eq!(preview.is_ok(), acted, "{when}: {preview:?} but {out:?}");
    };
    let mut d = deployment();
    check(&d, "alice", "ready");
    d.advance(t(0), "alice");
    check(&d, "alice", "image in flight");
    d.command_done(Origin::Step(at(0, 0)), Err("boom".into()), t(1));
    check(&d, "alice", "image failed");
    d.advance(t(2), "alice");
    d.command_done(Origin::Step(at(0, 0)), ok(), t(3));
    d.command_done(Origin::Step(at(0, 1)), ok(), t(4));
    check(&d, "alice", "holding");
    d.toggle_pause(t(5), "alice");
    check(&d, "alice", "paused");
    d.toggle_pause(t(6), "alice");
    d.samples(Round::Samples(&samples(Some(0.01))), t(70));
    d.tick(t(71));
    check(&d, "alice", "at the pause step");
    d.advance(t(72), "alice");
    check(&d, "alice", "approval, not an approver");
    check(&d, "carol", "approval, the approver");
    d.rollback(TierName::Immediate, t(80), "alice");
    check(&d, "alice", "rolling back");
    d.command_done(Origin::Rollback { run: 1, action: 0 }, ok(), t(81));
    d.command_done(
        Origin::Rollback { run: 1, action: 1 },
        Err("403".into()),
        t(82),
    );
    d.command_done(Origin::Rollback { run: 1, action: 2 }, ok(), t(83));
    assert_eq!(d.status, RunStatus::RollbackFailed);
    check(&d, "alice", "rollback failed");
}
