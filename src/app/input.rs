//! What a key does: the emergency rollback first, whatever is open; then the modal on top (help,
//! a question, a menu, a text field); then the main screen's command. A command that would change
//! the cluster in a high-risk phase or a production environment becomes a question first; a key
//! that would do nothing says why in the key bar. Pure, like `update`, which calls it.

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::to_input_request;

use super::action::Effect;
use super::keymap::Command;
use super::modal::{
    Basis, Confirm, DRILL_DURATIONS, DRILLS, DrillMenu, Focus, LINE_COMMANDS, LineEdit, Modal,
    tiers,
};
use super::model::{App, Level};
use super::update::{apply, refuse_unrecorded_start};
use crate::engine::{Gate, RunStatus, StepState, StepWork};
use crate::journal::{OperatorCommand, Record};
use crate::plan::{Router, TierName, Weight};

/// How many history lines the command line keeps.
const HISTORY: usize = 100;

/// Handles one key press.
pub(crate) fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    if app.keymap.is_emergency(&key) {
        // Whatever was open is moot now; the screen behind shows the rollback.
        app.modals.clear();
        return command(
            app,
            OperatorCommand::Rollback {
                tier: TierName::Immediate,
            },
        );
    }
    // The key with a deadline passes through every modal but the command line (where it is a
    // letter): a countdown must never run out behind help or a menu.
    if app.deployment.countdown.is_some()
        && app.keymap.command_for(&key) == Some(Command::CancelCountdown)
        && !matches!(app.modal(), Some(Modal::CommandLine(_)))
    {
        return command(app, OperatorCommand::CancelCountdown);
    }
    match app.modals.pop() {
        None => match app.keymap.command_for(&key) {
            Some(c) => on_command(app, c),
            None => Vec::new(),
        },
        Some(Modal::Help) => {
            match app.keymap.command_for(&key) {
                _ if matches!(key.code, KeyCode::Esc) || is_ctrl_c(&key) => {}
                Some(Command::ToggleHelp | Command::Quit) => {}
                _ => {
                    app.modals.push(Modal::Help);
                    app.notice("help is open: Esc or ? closes it (! still rolls back)");
                }
            }
            Vec::new()
        }
        Some(Modal::Confirm(question)) => on_confirm_key(app, key, question),
        Some(Modal::Withdrawn(_)) => Vec::new(),
        Some(Modal::RollbackMenu { selected }) => on_rollback_menu_key(app, key, selected),
        Some(Modal::SetWeight(input)) => on_weight_key(app, key, input),
        Some(Modal::CommandLine(line)) => on_line_key(app, key, line),
        Some(Modal::Drills(menu)) => on_drills_key(app, key, menu),
    }
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

/// A journaled command by the operator at the keys.
fn command(app: &mut App, command: OperatorCommand) -> Vec<Effect> {
    let now = app.now;
    let operator = app.operator.clone();
    apply(app, now, Record::Command { operator, command })
}

fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let key = app.keymap.key_of(c);
    match c {
        Command::EmergencyRollback => command(
            app,
            OperatorCommand::Rollback {
                tier: TierName::Immediate,
            },
        ),
        Command::CancelCountdown => {
            if app.deployment.countdown.is_none() {
                app.notice(format!("{key}: no rollback countdown to cancel"));
                return Vec::new();
            }
            command(app, OperatorCommand::CancelCountdown)
        }
        Command::Advance => advance(app, &key),
        Command::TickItem => tick_item(app, &key),
        Command::TogglePause => match app.deployment.pause_preview() {
            Err(why) => {
                app.notice(format!("{key}: {why}"));
                Vec::new()
            }
            Ok(what) if app.deployment.status == RunStatus::Paused => {
                ask_or_do(app, what, OperatorCommand::Pause)
            }
            Ok(_) => command(app, OperatorCommand::Pause),
        },
        Command::WeightUp | Command::WeightDown => {
            let step = app.plan.traffic.as_ref().map_or(10, |t| t.step.percent());
            let direction = if c == Command::WeightUp { 1 } else { -1 };
            match weight_base(app) {
                Err(why) => {
                    app.notice(format!("{key}: {why}"));
                    Vec::new()
                }
                Ok(base) => {
                    let target = base.shifted(direction * i64::from(step));
                    if target == base {
                        app.notice(format!("{key}: the canary weight is already {base}"));
                        return Vec::new();
                    }
                    request_weight(app, base, target)
                }
            }
        }
        Command::SetWeight => match weight_base(app) {
            Err(why) => {
                app.notice(format!("{key}: {why}"));
                Vec::new()
            }
            Ok(_) => {
                app.modals.push(Modal::SetWeight(Input::default()));
                Vec::new()
            }
        },
        Command::RollbackMenu => {
            app.modals.push(Modal::RollbackMenu { selected: 0 });
            Vec::new()
        }
        Command::OpenCommandLine => {
            app.modals.push(Modal::CommandLine(LineEdit::default()));
            Vec::new()
        }
        Command::Drills => {
            if app.drills.is_none() {
                app.notice(format!(
                    "{key}: drills inject faults into the demo's simulator (warroom demo), never a real cluster"
                ));
            } else {
                app.modals.push(Modal::Drills(DrillMenu::default()));
            }
            Vec::new()
        }
        Command::ToggleHelp => {
            app.modals.push(Modal::Help);
            Vec::new()
        }
        Command::Quit => {
            quit(app);
            Vec::new()
        }
        _ => {
            navigate(app, c);
            Vec::new()
        }
    }
}

/// `q`: leaves at once, except while a rollback is under way (then once it has finished).
fn quit(app: &mut App) {
    if app.deployment.status == RunStatus::RollingBack && app.interrupted.is_none() {
        app.push_log(
            Level::Warn,
            "a rollback is under way: leaving once it has finished (q again leaves now, and the rest of the tier would not run)",
        );
        app.interrupted = Some(format!("quit by {}", app.operator));
    } else {
        app.should_quit = true;
    }
}

fn advance(app: &mut App, key: &str) -> Vec<Effect> {
    if app.journal_error.is_some() && app.deployment.status == RunStatus::Ready {
        refuse_unrecorded_start(app);
        app.notice(format!(
            "{key}: not started — the journal cannot be written"
        ));
        return Vec::new();
    }
    match app.deployment.advance_preview(&app.operator) {
        Err(why) => {
            app.notice(format!("{key}: {why}"));
            Vec::new()
        }
        Ok(what) => ask_or_do(app, what, OperatorCommand::Advance),
    }
}

/// `space`: the selected checklist item, when it is the one the plan waits on.
fn tick_item(app: &mut App, key: &str) -> Vec<Effect> {
    let d = &app.deployment;
    let Some(cursor) = d.cursor else {
        app.notice(format!("{key}: no checklist item is waiting"));
        return Vec::new();
    };
    let selected = match app.view.plan_selected {
        Some(at) if at.phase == cursor.phase => at.slot,
        _ => cursor.slot,
    };
    let Some(slot) = d
        .phases
        .get(cursor.phase)
        .and_then(|p| p.slots.get(selected))
    else {
        app.notice(format!("{key}: no checklist item is selected"));
        return Vec::new();
    };
    let is_item = matches!(
        slot.work,
        StepWork::Gate(Gate::Check) | StepWork::Gate(Gate::Pause)
    );
    if !is_item {
        app.notice(format!(
            "{key}: {} is not a checklist item (n acts on the plan)",
            slot.label
        ));
        return Vec::new();
    }
    if selected != cursor.slot || slot.state != crate::engine::StepState::Waiting {
        app.notice(format!(
            "{key}: {} is not the item the plan waits on; items are ticked in order",
            slot.label
        ));
        return Vec::new();
    }
    advance(app, key)
}

/// Asks first where a change needs a `y`; otherwise does it.
fn ask_or_do(app: &mut App, what: String, c: OperatorCommand) -> Vec<Effect> {
    match confirm_reason_for(app, &c) {
        Some(why) => {
            let question = format!("{what}{} — {}?", consequence(app, &c), where_(app));
            ask(app, question, why, c);
            Vec::new()
        }
        None => command(app, c),
    }
}

/// What a command starts elsewhere, for its question: `, then weight → 50% starts in production`.
fn consequence(app: &App, c: &OperatorCommand) -> String {
    let Ok((after, out)) = try_command(app, c) else {
        return String::new();
    };
    let elsewhere = out
        .commands
        .iter()
        .find(|command| command.environment != app.target.environment);
    match (elsewhere, after.current()) {
        (Some(command), Some(slot)) => {
            format!(", then {} starts in {}", slot.label, command.environment)
        }
        (Some(command), None) => format!(", then work starts in {}", command.environment),
        (None, _) => String::new(),
    }
}

fn ask(app: &mut App, question: String, why: String, c: OperatorCommand) {
    let basis = basis(app);
    app.modals.push(Modal::Confirm(Confirm {
        question,
        why,
        command: c,
        basis,
    }));
}

/// `phase Production, env production (shop @ sim-production)`.
fn where_(app: &App) -> String {
    let phase = app
        .deployment
        .phases
        .get(app.deployment.phase_index())
        .map(|p| p.name.as_str())
        .unwrap_or("");
    format!(
        "phase {phase}, {} ({} @ {})",
        app.target.environment, app.target.namespace, app.target.context
    )
}

/// Where a rollback would act: `production (shop @ sim-production)`.
pub fn rollback_where(app: &App) -> String {
    let environment = app.deployment.rollback_environment();
    match app.targets.get(environment) {
        Some(t) => format!("{environment} ({} @ {})", t.namespace, t.context),
        None => environment.to_string(),
    }
}

/// Why a change must be confirmed here, if it must: the current phase's risk is high or
/// critical, or the environment on screen is a production one.
pub fn confirm_reason(app: &App) -> Option<String> {
    environment_reason(app, &app.target.environment)
        .or_else(|| phase_reason(app, app.deployment.phase_index()))
}

/// Why changes in `environment` are confirmed, if they are: its name or context says
/// production.
fn environment_reason(app: &App, environment: &str) -> Option<String> {
    let context = app
        .targets
        .get(environment)
        .map_or("", |t| t.context.as_str());
    (is_production(environment) || is_production(context))
        .then(|| format!("production environment ({environment})"))
}

/// Why changes in phase `index` are confirmed, if they are: its risk is high or critical.
fn phase_reason(app: &App, index: usize) -> Option<String> {
    let phase = app.plan.phases.get(index)?;
    let risk = phase.effective_risk(app.plan.risk);
    risk.wants_approval().then(|| {
        format!(
            "risk {} (phase {})",
            format!("{risk:?}").to_lowercase(),
            phase.name
        )
    })
}

/// What a plan command would do, tried on a copy of the engine: the copy and what it asked
/// for, or — when it would change nothing — the engine's own answer why.
pub fn try_command(
    app: &App,
    c: &OperatorCommand,
) -> Result<(crate::engine::Deployment, crate::engine::Outcome), String> {
    let mut d = app.deployment.clone();
    let (now, op) = (app.now, app.operator.as_str());
    let out = match c {
        OperatorCommand::Advance => d.advance(now, op),
        OperatorCommand::Pause => d.toggle_pause(now, op),
        OperatorCommand::Skip { reason } => d.skip_hold(now, op, reason),
        OperatorCommand::WindowOverride { reason } => d.override_window(now, op, reason),
        OperatorCommand::Rollback { tier } => d.rollback(*tier, now, op),
        _ => return Err("not a plan command".into()),
    };
    if out.commands.is_empty() && d == app.deployment {
        let why = out
            .notes
            .first()
            .map_or_else(|| "nothing would change".to_string(), |n| n.text.clone());
        return Err(why);
    }
    Ok((d, out))
}

/// Why a plan command must be confirmed, if it must: here, or where what it starts would act —
/// passing the last gate of a phase starts the next phase's first step, maybe in production.
pub fn confirm_reason_for(app: &App, c: &OperatorCommand) -> Option<String> {
    if let Some(why) = confirm_reason(app) {
        return Some(why);
    }
    let (after, out) = try_command(app, c).ok()?;
    out.commands
        .iter()
        .find_map(|command| environment_reason(app, &command.environment))
        .or_else(|| {
            let phase = after.phase_index();
            (phase != app.deployment.phase_index())
                .then(|| phase_reason(app, phase))
                .flatten()
        })
        .or_else(|| {
            (!out.commands.is_empty())
                .then(|| phase_reason(app, after.phase_index()))
                .flatten()
        })
}

/// `prod`, `production`, `production1`, `prd`, `prd1`, `prod-eu1`, `eu1-production`, `live` —
/// one word of the name; `product…` is not production.
pub fn is_production(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            word == "live"
                || word.starts_with("prd")
                || word.starts_with("production")
                || (word.starts_with("prod") && !word.starts_with("product"))
        })
}

/// What a question's answer depends on, now.
pub fn basis(app: &App) -> Basis {
    let d = &app.deployment;
    Basis {
        status: d.status,
        environment: app.target.environment.clone(),
        slot: d
            .cursor
            .and_then(|c| d.slot(c).map(|s| (c.phase, c.slot, (&s.state).into()))),
        weight: app.weight_base(),
        rollback_run: d.rollback.as_ref().map(|r| r.run),
        countdown: d.countdown.is_some(),
    }
}

/// Withdraws a question whose state has moved on: its `y` would approve something else.
pub(crate) fn withdraw_stale_questions(app: &mut App) {
    let now = basis(app);
    let stale: Vec<String> = app
        .modals
        .iter()
        .filter_map(|m| match m {
            Modal::Confirm(c) if c.basis != now => Some(c.question.clone()),
            _ => None,
        })
        .collect();
    if stale.is_empty() {
        return;
    }
    app.modals
        .retain(|m| !matches!(m, Modal::Confirm(c) if c.basis != now));
    for question in &stale {
        app.push_log(
            Level::Warn,
            format!("question withdrawn, the run moved on before an answer: {question}"),
        );
    }
    // In its place a box that the next key only closes: a `y` or `n` meant for the question
    // must not reach the screen behind it as a command.
    app.modals.push(Modal::Withdrawn(stale.join(" · ")));
}

fn on_confirm_key(app: &mut App, key: KeyEvent, question: Confirm) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => {
            if question.basis != basis(app) {
                app.notice("the run moved on; not done — ask again");
                return Vec::new();
            }
            command(app, question.command)
        }
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
            app.notice(format!("not done: {}", question.question));
            Vec::new()
        }
        _ if is_ctrl_c(&key) => Vec::new(),
        _ => {
            app.modals.push(Modal::Confirm(question));
            app.notice("y does it, n or Esc does not (! still rolls back)");
            Vec::new()
        }
    }
}

fn on_rollback_menu_key(app: &mut App, key: KeyEvent, selected: usize) -> Vec<Effect> {
    let offered = tiers(&app.plan);
    let last = offered.len().saturating_sub(1);
    let choose = |app: &mut App, index: usize| {
        let Some(tier) = offered.get(index).copied() else {
            return;
        };
        match app.deployment.rollback_preview(tier) {
            Err(why) => {
                app.modals.push(Modal::RollbackMenu { selected: index });
                app.notice(format!("{} rollback: {why}", tier.as_str()));
            }
            Ok(actions) => {
                let target = super::modal::tier_target(&app.plan, tier)
                    .map(|t| format!(", target {t}"))
                    .unwrap_or_default();
                let question = format!(
                    "run the {} rollback — {}{target} — in {}?",
                    tier.as_str(),
                    actions.join(", "),
                    rollback_where(app)
                );
                ask(
                    app,
                    question,
                    "rollback tier".into(),
                    OperatorCommand::Rollback { tier },
                );
            }
        }
    };
    match key.code {
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('r') => {}
        _ if is_ctrl_c(&key) => {}
        KeyCode::Up | KeyCode::Char('k') => app.modals.push(Modal::RollbackMenu {
            selected: selected.saturating_sub(1),
        }),
        KeyCode::Down | KeyCode::Char('j') => app.modals.push(Modal::RollbackMenu {
            selected: (selected + 1).min(last),
        }),
        KeyCode::Enter => choose(app, selected),
        KeyCode::Char(c @ '1'..='9') => {
            let index = usize::from(c as u8 - b'1');
            if index <= last {
                choose(app, index);
            } else {
                app.modals.push(Modal::RollbackMenu { selected });
                app.notice(format!("the plan has {} tier(s)", offered.len()));
            }
        }
        _ => {
            app.modals.push(Modal::RollbackMenu { selected });
            app.notice("↑↓ choose a tier, Enter asks to confirm it, Esc closes");
        }
    }
    Vec::new()
}

/// The weight `+`, `-` and `w` start from, or why the weight cannot be changed now.
pub fn weight_base(app: &App) -> Result<Weight, String> {
    if app.plan.traffic.is_none() {
        return Err("the plan has no traffic router; there is no weight to set".into());
    }
    if matches!(
        app.deployment.status,
        RunStatus::RollingBack | RunStatus::RolledBack | RunStatus::RollbackFailed
    ) {
        return Err("a rollback is under way or has run; a weight change would undo it".into());
    }
    app.weight_base()
        .ok_or_else(|| "the canary weight has not been read yet (see the traffic health)".into())
}

/// `HTTPRoute shop/checkout`, for questions about the weight.
pub fn traffic_object(app: &App) -> String {
    let Some(traffic) = &app.plan.traffic else {
        return "no traffic router".into();
    };
    let ns = &app.target.namespace;
    let route = traffic.route.as_deref().unwrap_or("?");
    match traffic.router {
        Router::GatewayApi => format!("HTTPRoute {ns}/{route}"),
        Router::Istio => format!("VirtualService {ns}/{route}"),
        Router::Nginx => format!("Ingress {ns}/{route}"),
        Router::Smi => format!("TrafficSplit {ns}/{route}"),
        Router::Replicas => format!(
            "replicas of {ns}/{} and {}",
            app.plan.workload.name,
            app.plan.workload.canary.as_deref().unwrap_or("?")
        ),
    }
}

/// Why the canary weight may only go down now, if it may: a rollback countdown is running, or
/// the phase whose environment is on screen waits at its approval gate (raising the weight there
/// would start that phase's traffic before anyone approved it; lowering it is always allowed).
pub fn weight_only_down(app: &App) -> Option<String> {
    if app.deployment.countdown.is_some() {
        return Some(format!(
            "a rollback countdown is running: the weight only goes down now ({} cancels it first)",
            app.keymap.key_of(Command::CancelCountdown)
        ));
    }
    // The phase whose environment the screen follows, with an approval gate not yet passed:
    // waiting for it, or before it (the plan paused, the phase's window closed, not started).
    let phase = app.deployment.phases.get(app.deployment.phase_index())?;
    if phase.environment != app.target.environment {
        return None;
    }
    phase
        .slots
        .iter()
        .find_map(|slot| match (&slot.state, &slot.work) {
            (StepState::Done, _) => None,
            (_, StepWork::Gate(Gate::Approval(who))) => Some(format!(
                "{} needs {}: the weight in {} only goes down until then",
                phase.name,
                crate::engine::state::approvers(who),
                phase.environment
            )),
            _ => None,
        })
}

/// What setting the canary weight to `target` would start from, or why it would not: the
/// weight's base (see [`weight_base`]) and the rule of [`weight_only_down`].
pub fn weight_change(app: &App, target: Weight) -> Result<Weight, String> {
    let base = weight_base(app)?;
    if target == base {
        return Err(format!("already {base}"));
    }
    if target > base {
        if let Some(why) = weight_only_down(app) {
            return Err(why);
        }
    }
    Ok(base)
}

/// Sets the canary weight from `base` to `target`, asking first where that needs a `y`.
fn request_weight(app: &mut App, base: Weight, target: Weight) -> Vec<Effect> {
    if target > base {
        if let Some(why) = weight_only_down(app) {
            app.notice(why);
            return Vec::new();
        }
    }
    let c = OperatorCommand::SetWeight {
        percent: target.percent(),
    };
    match confirm_reason(app) {
        Some(why) => {
            let question = format!(
                "set canary weight {base} → {target} on {} ({})?",
                traffic_object(app),
                app.target.environment
            );
            ask(app, question, why, c);
            Vec::new()
        }
        None => command(app, c),
    }
}

/// What the weight field's text would do: the weight, or why it is not one.
pub fn parse_weight(text: &str) -> Result<Weight, String> {
    let text = text.trim().trim_end_matches('%').trim();
    if text.is_empty() {
        return Err("type a weight, 0 to 100".into());
    }
    match text.parse::<u16>() {
        Ok(n) if n <= 100 => Ok(Weight::clamped(i64::from(n))),
        Ok(n) => Err(format!("{n} is over 100")),
        Err(_) => Err(format!("{text:?} is not a whole number from 0 to 100")),
    }
}

fn on_weight_key(app: &mut App, key: KeyEvent, mut input: Input) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => Vec::new(),
        _ if is_ctrl_c(&key) => Vec::new(),
        KeyCode::Enter => {
            let parsed = parse_weight(input.value());
            match (parsed, weight_base(app)) {
                (Err(why), _) => {
                    app.modals.push(Modal::SetWeight(input));
                    app.notice(why);
                    Vec::new()
                }
                (Ok(_), Err(why)) => {
                    app.notice(why);
                    Vec::new()
                }
                (Ok(target), Ok(base)) if target == base => {
                    app.notice(format!("the canary weight is already {base}"));
                    Vec::new()
                }
                (Ok(target), Ok(base)) => request_weight(app, base, target),
            }
        }
        _ => {
            // Digits and editing keys only: a letter typed here is a slip, not a weight.
            let accept = match key.code {
                KeyCode::Char(c) => c.is_ascii_digit() || c == '%',
                _ => true,
            };
            if accept {
                if let Some(request) = to_input_request(&Event::Key(key)) {
                    input.handle(request);
                }
            } else {
                app.notice("digits only: the weight in percent, 0 to 100");
            }
            app.modals.push(Modal::SetWeight(input));
            Vec::new()
        }
    }
}

fn on_line_key(app: &mut App, key: KeyEvent, mut line: LineEdit) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => Vec::new(),
        _ if is_ctrl_c(&key) => Vec::new(),
        KeyCode::Backspace if line.input.value().is_empty() => Vec::new(),
        KeyCode::Enter => {
            let text = line.input.value().trim().to_string();
            if !text.is_empty() && app.history.last() != Some(&text) {
                app.history.push(text.clone());
                if app.history.len() > HISTORY {
                    app.history.remove(0);
                }
            }
            run_line(app, &text)
        }
        KeyCode::Tab => {
            match complete(line.input.value()) {
                Ok(done) => line.input = Input::new(done),
                Err(choices) => app.notice(choices),
            }
            app.modals.push(Modal::CommandLine(line));
            Vec::new()
        }
        KeyCode::Up | KeyCode::Down => {
            walk_history(&app.history, &mut line, key.code == KeyCode::Up);
            app.modals.push(Modal::CommandLine(line));
            Vec::new()
        }
        _ => {
            if let Some(request) = to_input_request(&Event::Key(key)) {
                line.input.handle(request);
                line.history_at = None;
            }
            app.modals.push(Modal::CommandLine(line));
            Vec::new()
        }
    }
}

fn walk_history(history: &[String], line: &mut LineEdit, back: bool) {
    if history.is_empty() {
        return;
    }
    let at = match (line.history_at, back) {
        (None, true) => {
            line.draft = line.input.value().to_string();
            Some(history.len() - 1)
        }
        (None, false) => None,
        (Some(i), true) => Some(i.saturating_sub(1)),
        (Some(i), false) if i + 1 < history.len() => Some(i + 1),
        (Some(_), false) => None,
    };
    line.history_at = at;
    let text = match at {
        Some(i) => history[i].clone(),
        None => line.draft.clone(),
    };
    line.input = Input::new(text);
}

/// Completes the command's name: `Ok` with the completed text, or `Err` listing the choices.
pub fn complete(text: &str) -> Result<String, String> {
    if text.contains(' ') {
        return Err("Tab completes the command's name; the rest is yours".into());
    }
    let matches: Vec<&str> = LINE_COMMANDS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.starts_with(text))
        .collect();
    match matches.as_slice() {
        [one] if *one == "window" => Ok("window override ".into()),
        [one] => Ok(format!("{one} ")),
        [] => Err(format!(
            "no command starts with {text:?}; commands: {}",
            LINE_COMMANDS.map(|(n, _)| n).join(", ")
        )),
        many => Err(many.join(" · ")),
    }
}

/// What a command line would do, for the line's own hint as it is typed: `Ok` with what runs,
/// `Err` with what is missing or wrong.
pub fn line_hint(app: &App, text: &str) -> Result<String, String> {
    let (word, rest) = text
        .trim_start()
        .split_once(' ')
        .unwrap_or((text.trim(), ""));
    let rest = rest.trim();
    let usage = |name: &str| {
        LINE_COMMANDS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(String::new(), |(_, u)| (*u).to_string())
    };
    match word {
        "" => Err(format!(
            "commands: {} · Tab completes · ↑ history",
            LINE_COMMANDS.map(|(n, _)| n).join(", ")
        )),
        "weight" => {
            let target = parse_weight(rest)?;
            let base = weight_change(app, target)?;
            Ok(format!(
                "set canary weight {base} → {target} on {}",
                traffic_object(app)
            ))
        }
        "note" | "skip" if rest.is_empty() => Err(usage(word)),
        "skip" => try_command(
            app,
            &OperatorCommand::Skip {
                reason: rest.to_string(),
            },
        )
        .map(|_| format!("cut the running hold short: {rest}")),
        "op" if rest.is_empty() || rest.contains(char::is_whitespace) => Err(usage(word)),
        "window" => match rest.split_once(' ') {
            Some(("override", reason)) if !reason.trim().is_empty() => try_command(
                app,
                &OperatorCommand::WindowOverride {
                    reason: reason.trim().to_string(),
                },
            )
            .map(|_| format!("start the phase outside its window: {}", reason.trim())),
            _ => Err(usage(word)),
        },
        "approve" => approval_waiting(app).map(|label| format!("approve {label}")),
        w if LINE_COMMANDS.iter().any(|(n, _)| *n == w) => Ok(usage(w)),
        other => Err(format!(
            "unknown command {other:?}; Tab completes: {}",
            LINE_COMMANDS.map(|(n, _)| n).join(", ")
        )),
    }
}

/// The approval gate waiting for the operator at the keys, or why there is none.
fn approval_waiting(app: &App) -> Result<String, String> {
    let d = &app.deployment;
    match d.current() {
        Some(slot)
            if slot.state == crate::engine::StepState::Waiting
                && matches!(slot.work, StepWork::Gate(Gate::Approval(_)))
                && d.status == RunStatus::Running =>
        {
            d.advance_preview(&app.operator)
        }
        _ => Err("no approval gate is waiting".into()),
    }
}

/// Runs a command line: `weight N`, `note TEXT`, `op NAME`, `approve`, `skip REASON`,
/// `window override REASON`. Each is journaled with the operator's name.
fn run_line(app: &mut App, text: &str) -> Vec<Effect> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    if word.is_empty() {
        return Vec::new();
    }
    if let Err(why) = line_hint(app, text) {
        app.push_log(Level::Warn, format!(":{text} — {why}"));
        app.notice(why);
        return Vec::new();
    }
    match word {
        "weight" => match (parse_weight(rest), weight_base(app)) {
            (Ok(target), Ok(base)) if target != base => request_weight(app, base, target),
            (Ok(_), Ok(base)) => {
                app.notice(format!("the canary weight is already {base}"));
                Vec::new()
            }
            _ => Vec::new(),
        },
        "approve" => {
            let what = approval_waiting(app).unwrap_or_default();
            ask_or_do(app, what, OperatorCommand::Advance)
        }
        "skip" => {
            let what = format!("cut the hold short ({rest})");
            ask_or_do(
                app,
                what,
                OperatorCommand::Skip {
                    reason: rest.to_string(),
                },
            )
        }
        "window" => {
            let reason = rest
                .split_once(' ')
                .map_or("", |(_, r)| r.trim())
                .to_string();
            let what = format!("start outside the deployment window ({reason})");
            ask_or_do(app, what, OperatorCommand::WindowOverride { reason })
        }
        "note" => command(
            app,
            OperatorCommand::Note {
                text: rest.to_string(),
            },
        ),
        "op" => command(
            app,
            OperatorCommand::Op {
                name: rest.to_string(),
            },
        ),
        _ => Vec::new(),
    }
}

fn on_drills_key(app: &mut App, key: KeyEvent, mut menu: DrillMenu) -> Vec<Effect> {
    let last = DRILLS.len() - 1;
    match key.code {
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('D') => return Vec::new(),
        _ if is_ctrl_c(&key) => return Vec::new(),
        KeyCode::Up | KeyCode::Char('k') => menu.selected = menu.selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => menu.selected = (menu.selected + 1).min(last),
        KeyCode::Left | KeyCode::Char('h') => menu.duration = menu.duration.saturating_sub(1),
        KeyCode::Right | KeyCode::Char('l') => {
            menu.duration = (menu.duration + 1).min(DRILL_DURATIONS.len() - 1)
        }
        KeyCode::Char('c') => {
            let Some(endpoint) = app.drills.as_ref().map(|d| d.endpoint.clone()) else {
                return Vec::new();
            };
            app.push_log(
                Level::Operator,
                format!(
                    "{}: drills: asking the simulator to clear every fault",
                    app.operator
                ),
            );
            return vec![Effect::Drill {
                endpoint,
                body: None,
                label: "clear every fault".into(),
            }];
        }
        KeyCode::Enter => {
            let Some(endpoint) = app.drills.as_ref().map(|d| d.endpoint.clone()) else {
                return Vec::new();
            };
            let drill = DRILLS[menu.selected.min(last)];
            let duration = DRILL_DURATIONS[menu.duration.min(DRILL_DURATIONS.len() - 1)];
            let body = drill_body(app, drill.kind, duration);
            let label = format!("{} for {} s", drill.label, duration.as_secs());
            app.push_log(
                Level::Operator,
                format!(
                    "{}: drill: {label} — expect: {}",
                    app.operator, drill.expect
                ),
            );
            return vec![Effect::Drill {
                endpoint,
                body: Some(body),
                label,
            }];
        }
        _ => app.notice("↑↓ choose, ←→ how long, Enter injects, c clears all, Esc closes"),
    }
    app.modals.push(Modal::Drills(menu));
    Vec::new()
}

/// The simulator's fault for `kind`, aimed at the environment on screen.
fn drill_body(app: &App, kind: &str, duration: std::time::Duration) -> serde_json::Value {
    let ns = app.target.namespace.clone();
    let service = app.plan.service.clone();
    let canary = app
        .plan
        .workload
        .canary
        .clone()
        .unwrap_or_else(|| app.plan.workload.name.clone());
    let for_ = format!("{}s", duration.as_secs());
    let mut body = match kind {
        "error_spike" => serde_json::json!({
            "namespace": ns, "service": service, "track": "canary", "ratio": 0.5,
        }),
        "latency_spike" => serde_json::json!({
            "namespace": ns, "service": service, "track": "canary", "factor": 5.0,
        }),
        "crashloop" => serde_json::json!({ "namespace": ns, "deployment": canary }),
        "forbidden" => {
            let resource = match app.plan.traffic.as_ref().map(|t| t.router) {
                Some(Router::GatewayApi) => "httproutes",
                Some(Router::Istio) => "virtualservices",
                Some(Router::Nginx) => "ingresses",
                Some(Router::Smi) => "trafficsplits",
                Some(Router::Replicas) | None => "deployments",
            };
            serde_json::json!({ "verb": "patch", "resource": resource, "namespace": ns })
        }
        _ => serde_json::json!({}),
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert("kind".into(), kind.into());
        obj.insert("for".into(), for_.into());
    }
    body
}

/// Focus, selection, scrolling and sorting: the screen only.
pub(crate) fn navigate(app: &mut App, c: Command) {
    let page = 10;
    match (c, app.view.focus) {
        (Command::FocusNext, focus) => app.view.focus = focus.next(),
        (Command::FocusPrev, focus) => app.view.focus = focus.prev(),
        (Command::Sort, _) => {
            app.view.pod_sort = app.view.pod_sort.next();
            app.notice(format!("pods sorted by {}", app.view.pod_sort.name()));
        }
        (_, Focus::Plan) => {
            let Some(cursor) = app.deployment.cursor else {
                return;
            };
            let count = app
                .deployment
                .phases
                .get(cursor.phase)
                .map_or(0, |p| p.slots.len());
            let at = match app.view.plan_selected {
                Some(at) if at.phase == cursor.phase => at.slot,
                _ => cursor.slot,
            };
            // Back on the plan's own cursor: follow it again.
            app.view.plan_selected = moved(at, count, c, page)
                .filter(|slot| *slot != cursor.slot)
                .map(|slot| crate::engine::StepRef {
                    phase: cursor.phase,
                    slot,
                });
        }
        (_, Focus::Pods) => {
            let names: Vec<String> = app.sorted_pods().iter().map(|p| p.name.clone()).collect();
            let at = app
                .view
                .pod_selected
                .as_ref()
                .and_then(|n| names.iter().position(|m| m == n))
                .unwrap_or(0);
            app.view.pod_selected = moved(at, names.len(), c, page)
                .and_then(|i| names.get(i).cloned())
                .or_else(|| names.first().cloned());
        }
        (_, Focus::Log) => {
            let max = app.log.len().saturating_sub(1);
            let back = app.view.log_back;
            app.view.log_back = match c {
                Command::Up => (back + 1).min(max),
                Command::Down => back.saturating_sub(1),
                Command::PageUp => (back + page).min(max),
                Command::PageDown => back.saturating_sub(page),
                Command::Top => max,
                _ => 0,
            };
        }
    }
}

/// A selection moved by `c` in a list of `count`.
fn moved(at: usize, count: usize, c: Command, page: usize) -> Option<usize> {
    let last = count.checked_sub(1)?;
    Some(match c {
        Command::Up => at.saturating_sub(1),
        Command::Down => (at + 1).min(last),
        Command::PageUp => at.saturating_sub(page),
        Command::PageDown => (at + page).min(last),
        Command::Top => 0,
        _ => last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_names_are_recognised_and_others_not() {
        for name in [
            "prod",
            "production",
            "prod-eu1",
            "eu1-prod",
            "PRD",
            "live",
            "sim-production",
            "production1",
            "productioneu",
            "eu-production01",
            "prd1",
        ] {
            assert!(is_production(name), "{name}");
        }
        for name in [
            "staging",
            "dev",
            "product-catalog",
            "preprod-x",
            "sim-staging",
        ] {
            assert!(!is_production(name), "{name}");
        }
    }

    #[test]
    fn weights_parse_as_typed() {
        assert_eq!(parse_weight("35"), Ok(Weight::clamped(35)));
        assert_eq!(parse_weight(" 35 % "), Ok(Weight::clamped(35)));
        assert_eq!(parse_weight("0"), Ok(Weight::ZERO));
        assert!(parse_weight("101").is_err_and(|e| e.contains("over 100")));
        assert!(parse_weight("3a").is_err());
        assert!(parse_weight("").is_err());
        assert!(parse_weight("-5").is_err());
    }

    #[test]
    fn completion_finishes_a_unique_name_and_lists_the_rest() {
        assert_eq!(complete("we"), Ok("weight ".into()));
        assert_eq!(complete("wi"), Ok("window override ".into()));
        assert_eq!(complete("a"), Ok("approve ".into()));
        assert!(complete("w").is_err_and(|e| e.contains("weight") && e.contains("window")));
        assert!(complete("zz").is_err_and(|e| e.contains("no command")));
    }
}
