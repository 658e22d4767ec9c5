//! Keys → commands, per mode, and the tables the key bar and `?` help are drawn from (a test
//! checks every key they show maps to a command). Pure: no state changes here.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Advance,
    TogglePause,
    WeightUp,
    WeightDown,
    EmergencyRollback,
    CancelCountdown,
    ToggleHelp,
    OpenCommandLine,
    CloseModal,
    Quit,
}

/// Key and description, in the order help shows them; `+ -` is two keys.
pub const KEYS: &[(&str, &str)] = &[
    (
        "n",
        "advance: start, pass a gate or approval, retry a failed step or rollback action",
    ),
    ("p", "pause / resume the plan (n never resumes)"),
    ("+ -", "canary weight up / down by the plan's step"),
    (
        "!",
        "IMMEDIATE ROLLBACK: canary weight 0 at once, then the rest of the immediate tier; no dialog",
    ),
    (
        "x",
        "cancel an automatic rollback countdown (the plan pauses)",
    ),
    (
        ":",
        "command line: skip REASON cuts a running hold short; window override REASON starts a phase outside its window",
    ),
    ("?", "this help"),
    (
        "q",
        "quit (the cluster keeps its state; the plan's progress is not kept yet)",
    ),
];

/// The key bar's short form.
pub const KEY_BAR: &[(&str, &str)] = &[
    ("n", "next"),
    ("p", "pause"),
    ("+/-", "weight"),
    ("!", "ROLLBACK"),
    ("x", "CANCEL AUTO-ROLLBACK"),
    ("?", "help"),
    ("q", "quit"),
];

/// An observer's keys (`warroom watch`), for its key bar and help: the only ones that do
/// anything there.
/// The key bar shows each description's first word.
pub const OBSERVER_KEYS: &[(&str, &str)] = &[
    ("q", "quit watching (the run goes on)"),
    ("?", "help: this help"),
];

impl Command {
    /// What the command would do to a run, for an observer's "read-only" answer; `None` for the
    /// commands that only change the screen.
    pub fn would(self) -> Option<&'static str> {
        match self {
            Command::Advance => Some("advance the plan"),
            Command::TogglePause => Some("pause or resume the plan"),
            Command::WeightUp => Some("raise the canary weight"),
            Command::WeightDown => Some("lower the canary weight"),
            Command::EmergencyRollback => Some("roll back at once"),
            Command::CancelCountdown => Some("cancel an automatic rollback"),
            Command::OpenCommandLine => {
                Some("open the command line (skip, window override, note, op)")
            }
            Command::ToggleHelp | Command::CloseModal | Command::Quit => None,
        }
    }
}

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
        KeyCode::Char('x') => Some(Command::CancelCountdown),
        KeyCode::Char('+') | KeyCode::Char('=') => Some(Command::WeightUp),
        KeyCode::Char('-') | KeyCode::Char('_') => Some(Command::WeightDown),
        KeyCode::Char('?') => Some(Command::ToggleHelp),
        KeyCode::Char(':') => Some(Command::OpenCommandLine),
        KeyCode::Char('q') => Some(Command::Quit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the help and the key bar show does something (`+/-` and `+ -` are two keys).
    #[test]
    fn every_key_shown_maps_to_a_command() {
        let shown = KEYS.iter().chain(KEY_BAR).flat_map(|(keys, _)| {
            keys.split([' ', '/'])
                .filter(|k| !k.is_empty())
                .collect::<Vec<_>>()
        });
        for key in shown {
            let mut chars = key.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                panic!("{key:?} is not one key");
            };
            let event = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            assert!(command_for(&event, false).is_some(), "{key} does nothing");
        }
    }

    /// An observer's keys only change the screen; every other command says what it would do.
    #[test]
    fn observer_keys_change_only_the_screen_and_the_rest_say_what_they_would_do() {
        for (key, _) in OBSERVER_KEYS {
            let c = key.chars().next().expect("one key");
            let event = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            let command = command_for(&event, false).expect("maps to a command");
            assert_eq!(command.would(), None, "{key} would change the run");
        }
        for key in ['n', 'p', '+', '-', '!', 'x', ':'] {
            let event = KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE);
            let command = command_for(&event, false).expect("maps to a command");
            assert!(command.would().is_some(), "{key} has no description");
        }
    }
}
