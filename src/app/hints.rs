//! What each key does now, for the key bar and help: `n  start weight 50%`, `n  waiting for
//! carol's approval`. Drawn from the same previews the keys act on, so the bar cannot promise
//! what the key will not do. Pure.

use super::input::{confirm_reason, confirm_reason_for, weight_base, weight_only_down};
use super::keymap::Command;
use super::modal::{Modal, NOTICE_FOR};
use super::model::{App, Mode};
use crate::engine::RunStatus;
use crate::journal::OperatorCommand;
use crate::plan::TierName;

/// What `n` does now: the engine's preview, except that a plan is not started without its
/// journal.
fn advance_preview(app: &App) -> Result<String, String> {
    if app.journal_error.is_some() && app.deployment.status == RunStatus::Ready {
        return Err("not started: the journal cannot be written".into());
    }
    app.deployment.advance_preview(&app.operator)
}

/// One key in the bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub key: String,
    pub text: String,
    pub state: HintState,
}

/// How a hint is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintState {
    /// `!` and `x`: red, always first.
    Urgent,
    /// Does what it says.
    Ready,
    /// Does nothing now; the text says why.
    Unavailable,
}

fn hint(key: impl Into<String>, text: impl Into<String>, state: HintState) -> Hint {
    Hint {
        key: key.into(),
        text: text.into(),
        state,
    }
}

fn either(key: String, preview: Result<String, String>) -> Hint {
    match preview {
        Ok(text) => hint(key, text, HintState::Ready),
        Err(why) => hint(key, why, HintState::Unavailable),
    }
}

/// The notice to show, while it is fresh.
pub fn notice(app: &App) -> Option<&str> {
    app.notice
        .as_ref()
        .filter(|n| {
            app.now
                .duration_since(n.at)
                .is_ok_and(|age| age < NOTICE_FOR)
        })
        .map(|n| n.text.as_str())
}

/// What `!` does now.
fn emergency(app: &App) -> Hint {
    let key = app.keymap.key_of(Command::EmergencyRollback);
    match app.deployment.rollback_preview(TierName::Immediate) {
        Ok(_) => hint(key, "ROLLBACK", HintState::Urgent),
        Err(why) => hint(key, why, HintState::Unavailable),
    }
}

/// The key bar, most important first: the emergency rollback and a countdown's cancel, then
/// what the plan's keys do now.
pub fn key_bar(app: &App) -> Vec<Hint> {
    let keys = &app.keymap;
    let k = |c: Command| keys.key_of(c);
    let bang = emergency(app);
    if app.mode == Mode::Observer {
        return vec![
            hint(k(Command::Quit), "quit watching", HintState::Ready),
            hint(k(Command::ToggleHelp), "help", HintState::Ready),
            hint(
                "",
                "read-only: the run is changed only at its own console",
                HintState::Unavailable,
            ),
        ];
    }
    let ready = |key: String, text: &str| hint(key, text, HintState::Ready);
    // The countdown's cancel key passes through every modal but the command line.
    let cancel = app.deployment.countdown.as_ref().map(|c| {
        let left = c.ends.duration_since(app.now).unwrap_or_default();
        hint(
            k(Command::CancelCountdown),
            format!("CANCEL AUTO-ROLLBACK ({}s)", left.as_secs()),
            HintState::Urgent,
        )
    });
    let urgent = |rest: Vec<Hint>| {
        let mut bar = vec![bang.clone()];
        bar.extend(cancel.clone());
        bar.extend(rest);
        bar
    };
    match app.modal() {
        Some(Modal::Help) => {
            return urgent(vec![ready("esc".into(), "close help")]);
        }
        Some(Modal::Withdrawn(_)) => {
            return urgent(vec![ready("any key".into(), "close, then look again")]);
        }
        Some(Modal::Confirm(_)) => {
            return urgent(vec![
                ready("y".into(), "yes, do it"),
                ready("n".into(), "no"),
                ready("esc".into(), "no"),
            ]);
        }
        Some(Modal::RollbackMenu { .. }) => {
            return urgent(vec![
                ready("↑↓".into(), "choose a tier"),
                ready("enter".into(), "ask to run it (y confirms)"),
                ready("esc".into(), "close"),
            ]);
        }
        Some(Modal::SetWeight(_)) => {
            return urgent(vec![
                ready("enter".into(), "set it"),
                ready("esc".into(), "cancel"),
            ]);
        }
        Some(Modal::CommandLine(_)) => {
            return vec![
                bang,
                ready("enter".into(), "run"),
                ready("tab".into(), "complete"),
                ready("↑↓".into(), "history"),
                ready("esc".into(), "close"),
            ];
        }
        Some(Modal::Drills(_)) => {
            return urgent(vec![
                ready("↑↓".into(), "drill"),
                ready("←→".into(), "how long"),
                ready("enter".into(), "inject"),
                ready("c".into(), "clear all"),
                ready("esc".into(), "close"),
            ]);
        }
        None => {}
    }
    let mut bar = urgent(Vec::new());
    // `(y?)`: the key asks first, here or where what it starts would act.
    let ask = |mut h: Hint, asks: bool| {
        if asks && h.state == HintState::Ready {
            h.text.push_str(" (y?)");
        }
        h
    };
    bar.push(ask(
        either(k(Command::Advance), advance_preview(app)),
        confirm_reason_for(app, &OperatorCommand::Advance).is_some(),
    ));
    bar.push(ready(k(Command::ToggleHelp), "help"));
    let pause = either(k(Command::TogglePause), app.deployment.pause_preview());
    let resumes = app.deployment.status == RunStatus::Paused
        && confirm_reason_for(app, &OperatorCommand::Pause).is_some();
    bar.push(ask(pause, resumes));
    bar.push(ask(weight_keys(app), confirm_reason(app).is_some()));
    if weight_base(app).is_ok() {
        bar.push(ready(k(Command::SetWeight), "set weight"));
    }
    bar.push(ready(k(Command::RollbackMenu), "rollback tiers"));
    bar.push(ready(k(Command::OpenCommandLine), "command"));
    if app.drills.is_some() {
        bar.push(ready(k(Command::Drills), "drills"));
    }
    let quit = if app.deployment.status == RunStatus::RollingBack {
        "quit once rolled back"
    } else {
        "quit"
    };
    bar.push(ready(k(Command::Quit), quit));
    bar
}

/// `+/-  weight 25% → 35%/15%`, or why the weight cannot move.
fn weight_keys(app: &App) -> Hint {
    let keys = format!(
        "{}/{}",
        app.keymap.key_of(Command::WeightUp),
        app.keymap.key_of(Command::WeightDown)
    );
    match weight_base(app) {
        Err(why) => hint(
            keys,
            if app.plan.traffic.is_none() {
                "no traffic router".to_string()
            } else {
                short_weight_reason(&why)
            },
            HintState::Unavailable,
        ),
        Ok(base) => {
            let step = app.plan.traffic.as_ref().map_or(10, |t| t.step.percent());
            let only_down = weight_only_down(app);
            let up = if only_down.is_some() {
                base
            } else {
                base.shifted(i64::from(step))
            };
            let down = base.shifted(-i64::from(step));
            let to = match (up == base, down == base) {
                (false, false) => format!("{up} or {down}"),
                (false, true) => up.to_string(),
                (true, false) => down.to_string(),
                (true, true) => {
                    let why = match only_down {
                        Some(why) if why.starts_with("a rollback countdown") => "countdown running",
                        Some(_) => "up after approval",
                        None => "nowhere to go",
                    };
                    return hint(
                        keys,
                        format!("weight {base}: {why}"),
                        HintState::Unavailable,
                    );
                }
            };
            hint(keys, format!("weight {base} → {to}"), HintState::Ready)
        }
    }
}

fn short_weight_reason(why: &str) -> String {
    if why.starts_with("a rollback") {
        "weight: rollback has it".into()
    } else if why.contains("not been read") {
        "weight not read yet".into()
    } else {
        why.to_string()
    }
}

/// What each main-screen command does now, for help's "now" column.
pub fn now_for(app: &App, command: Command) -> Option<String> {
    let text = |r: Result<String, String>| match r {
        Ok(t) => t,
        Err(why) => format!("does nothing now: {why}"),
    };
    Some(match command {
        Command::EmergencyRollback => emergency(app).text,
        Command::CancelCountdown => match &app.deployment.countdown {
            Some(c) => format!("cancel the {} rollback countdown", c.tier.as_str()),
            None => "does nothing now: no countdown".into(),
        },
        Command::Advance | Command::TickItem => text(app.deployment.advance_preview(&app.operator)),
        Command::TogglePause => text(app.deployment.pause_preview()),
        Command::WeightUp | Command::WeightDown | Command::SetWeight => match weight_base(app) {
            Err(why) => format!("does nothing now: {}", short_weight_reason(&why)),
            Ok(base) => {
                let step = i64::from(app.plan.traffic.as_ref().map_or(10, |t| t.step.percent()));
                let to = match command {
                    Command::WeightUp => {
                        if let Some(why) = weight_only_down(app) {
                            return Some(format!("does nothing now: {why}"));
                        }
                        base.shifted(step)
                    }
                    Command::WeightDown => base.shifted(-step),
                    _ => return Some(format!("from {base}")),
                };
                if to == base {
                    format!("does nothing now: already {base}")
                } else {
                    format!("{base} → {to}")
                }
            }
        },
        Command::Drills if app.drills.is_none() => "demo only".into(),
        _ => return None,
    })
}
