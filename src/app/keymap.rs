//! Keys → commands, per mode. The one table the key bar and `?` help are drawn from.
//! Pure: no state changes here.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Advance,
    TogglePause,
    WeightUp,
    WeightDown,
    EmergencyRollback,
    ToggleHelp,
    CloseModal,
    Quit,
}

/// Key, command and description, in the order help shows them.
pub const KEYS: &[(&str, &str)] = &[
    (
        "n",
        "advance: start, pass a gate or approval, cut a hold short",
    ),
    ("p", "pause / resume the plan"),
    ("+ -", "canary weight up / down by the plan's step"),
    (
        "!",
        "IMMEDIATE ROLLBACK: canary weight 0 at once, no dialog",
    ),
    ("?", "this help"),
    ("q", "quit (the cluster keeps its state)"),
];

/// The key bar's short form.
pub const KEY_BAR: &[(&str, &str)] = &[
    ("n", "next"),
    ("p", "pause"),
    ("+/-", "weight"),
    ("!", "ROLLBACK"),
    ("?", "help"),
    ("q", "quit"),
];

/// Maps a key to a command. `help_open` changes only Esc/q/? (they close help); every other
/// key, `!` above all, does the same thing whatever is on screen.
pub fn command_for(key: &KeyEvent, help_open: bool) -> Option<Command> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Command::Quit),
            _ => None,
        };
    }
    match key.code {
        KeyCode::Char('!') => Some(Command::EmergencyRollback),
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') if help_open => {
            Some(Command::CloseModal)
        }
        KeyCode::Char('n') => Some(Command::Advance),
        KeyCode::Char('p') => Some(Command::TogglePause),
        KeyCode::Char('+') | KeyCode::Char('=') => Some(Command::WeightUp),
        KeyCode::Char('-') | KeyCode::Char('_') => Some(Command::WeightDown),
        KeyCode::Char('?') => Some(Command::ToggleHelp),
        KeyCode::Char('q') => Some(Command::Quit),
        _ => None,
    }
}
