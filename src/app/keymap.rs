//! Keys → commands, and the table the key bar and `?` help are drawn from. The bindings can be
//! remapped (the config file's `keys:`); `?` help and the key bar show the keys as bound.
//! Pure: no state changes here. What a key does inside a dialog, menu or text field is decided
//! by `modal`, which sees the key first; only the emergency rollback passes through them all.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the operator asked for, with the main screen in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    EmergencyRollback,
    CancelCountdown,
    Advance,
    TogglePause,
    WeightUp,
    WeightDown,
    SetWeight,
    RollbackMenu,
    TickItem,
    OpenCommandLine,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Sort,
    Drills,
    ToggleHelp,
    Quit,
}

/// Every command, in the order help lists them.
pub const COMMANDS: [Command; 22] = [
    Command::EmergencyRollback,
    Command::CancelCountdown,
    Command::Advance,
    Command::TogglePause,
    Command::WeightUp,
    Command::WeightDown,
    Command::SetWeight,
    Command::RollbackMenu,
    Command::TickItem,
    Command::OpenCommandLine,
    Command::FocusNext,
    Command::FocusPrev,
    Command::Up,
    Command::Down,
    Command::Top,
    Command::Bottom,
    Command::PageUp,
    Command::PageDown,
    Command::Sort,
    Command::Drills,
    Command::ToggleHelp,
    Command::Quit,
];

impl Command {
    /// Its name in the config file's `keys:` map.
    pub fn name(self) -> &'static str {
        match self {
            Command::EmergencyRollback => "rollback_now",
            Command::CancelCountdown => "cancel_countdown",
            Command::Advance => "advance",
            Command::TogglePause => "pause",
            Command::WeightUp => "weight_up",
            Command::WeightDown => "weight_down",
            Command::SetWeight => "set_weight",
            Command::RollbackMenu => "rollback_menu",
            Command::TickItem => "tick",
            Command::OpenCommandLine => "command_line",
            Command::FocusNext => "focus_next",
            Command::FocusPrev => "focus_prev",
            Command::Up => "up",
            Command::Down => "down",
            Command::Top => "top",
            Command::Bottom => "bottom",
            Command::PageUp => "page_up",
            Command::PageDown => "page_down",
            Command::Sort => "sort",
            Command::Drills => "drills",
            Command::ToggleHelp => "help",
            Command::Quit => "quit",
        }
    }

    /// The command a config name stands for.
    pub fn from_name(name: &str) -> Option<Command> {
        COMMANDS.into_iter().find(|c| c.name() == name)
    }

    /// What it does, for `?` help (at most 46 columns).
    pub fn describe(self) -> &'static str {
        match self {
            Command::EmergencyRollback => "IMMEDIATE ROLLBACK: no dialog, from anywhere",
            Command::CancelCountdown => "cancel an auto-rollback countdown (pauses)",
            Command::Advance => "advance: start, pass a gate, retry",
            Command::TogglePause => "pause / resume (n never resumes)",
            Command::WeightUp => "canary weight up by the plan's step",
            Command::WeightDown => "canary weight down by the plan's step",
            Command::SetWeight => "set the canary weight to a number",
            Command::RollbackMenu => "rollback menu: every tier, each asks y",
            Command::TickItem => "tick the selected checklist item",
            Command::OpenCommandLine => "command line (Tab completes, ↑ history)",
            Command::FocusNext => "next panel",
            Command::FocusPrev => "previous panel",
            Command::Up => "select up / log back",
            Command::Down => "select down / log on",
            Command::Top => "first row / oldest line",
            Command::Bottom => "last row / follow the log",
            Command::PageUp => "page up",
            Command::PageDown => "page down",
            Command::Sort => "sort pods: name/status/restarts/age",
            Command::Drills => "drills: inject a simulator fault",
            Command::ToggleHelp => "this help",
            Command::Quit => "quit (warroom run --resume continues)",
        }
    }

    /// What the command would do to a run, for an observer's "read-only" answer; `None` for the
    /// commands that only change the screen.
    pub fn would(self) -> Option<&'static str> {
        match self {
            Command::Advance | Command::TickItem => Some("advance the plan"),
            Command::TogglePause => Some("pause or resume the plan"),
            Command::WeightUp => Some("raise the canary weight"),
            Command::WeightDown => Some("lower the canary weight"),
            Command::SetWeight => Some("set the canary weight"),
            Command::RollbackMenu => Some("open the rollback menu"),
            Command::EmergencyRollback => Some("roll back at once"),
            Command::CancelCountdown => Some("cancel an automatic rollback"),
            Command::OpenCommandLine => Some("open the command line"),
            Command::Drills => Some("inject a drill"),
            // Help, quit and the navigation keys change only the screen.
            _ => None,
        }
    }

    /// Focus, selection, scrolling and sorting: the screen's own keys.
    pub fn is_navigation(self) -> bool {
        matches!(
            self,
            Command::FocusNext
                | Command::FocusPrev
                | Command::Up
                | Command::Down
                | Command::Top
                | Command::Bottom
                | Command::PageUp
                | Command::PageDown
                | Command::Sort
        )
    }
}

/// One key as the config file and help write it: `n`, `!`, `space`, `tab`, `ctrl-c`, `pgup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub const fn char(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: false,
        }
    }

    const fn code(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }

    /// The key of an event, as bindings compare it (Shift is in the character itself).
    pub fn of(event: &KeyEvent) -> Key {
        let code = match event.code {
            KeyCode::Char(c) if event.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Key {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
        }
    }

    /// Reads `n`, `!`, `space`, `tab`, `backtab`, `enter`, `esc`, `up`, `down`, `left`,
    /// `right`, `home`, `end`, `pgup`, `pgdn`, `f1`…`f12`, and `ctrl-X`.
    pub fn parse(text: &str) -> Result<Key, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("ctrl-").or(text.strip_prefix("C-")) {
            let mut chars = rest.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => Ok(Key {
                    code: KeyCode::Char(c.to_ascii_lowercase()),
                    ctrl: true,
                }),
                _ => Err(format!("{text:?}: ctrl- goes with one letter (ctrl-c)")),
            };
        }
        let code = match text.to_ascii_lowercase().as_str() {
            "space" => KeyCode::Char(' '),
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "enter" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "backspace" => KeyCode::Backspace,
            lower => {
                if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    if (1..=12).contains(&n) {
                        return Ok(Key::code(KeyCode::F(n)));
                    }
                }
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_control() => KeyCode::Char(c),
                    _ => {
                        return Err(format!(
                            "{text:?} is not a key (one character, space, tab, enter, esc, arrows, home, end, pgup, pgdn, f1-f12, ctrl-X)"
                        ));
                    }
                }
            }
        };
        Ok(Key::code(code))
    }

    /// As help shows it.
    pub fn label(self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Tab => "tab".into(),
            KeyCode::BackTab => "S-tab".into(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::PageUp => "pgup".into(),
            KeyCode::PageDown => "pgdn".into(),
            KeyCode::Backspace => "bksp".into(),
            KeyCode::F(n) => format!("f{n}"),
            other => other.to_string(),
        };
        if self.ctrl {
            format!("ctrl-{base}")
        } else {
            base
        }
    }
}

/// Why `key` may not run `command`, if it may not.
/// - The immediate rollback's key passes through every dialog and text field, so it must be one
///   nobody types by accident there: `!` or a function key — never a letter, a digit, Enter,
///   Esc, Tab, an arrow or space.
/// - The countdown's cancel key passes through help, questions and menus, so it must not be a
///   key they read (y, n, Esc, Enter, arrows, j k h l, digits, c, q, r, D, ?, space).
/// - Ctrl-C stays the way out (it closes a dialog, and quits).
fn unsafe_binding(command: Command, key: Key) -> Option<String> {
    let label = key.label();
    if key.ctrl && key.code == KeyCode::Char('c') && command != Command::Quit {
        return Some(format!(
            "{label} stays quit's key (it also closes every dialog)"
        ));
    }
    match command {
        Command::EmergencyRollback => {
            let safe = matches!(key.code, KeyCode::Char('!') | KeyCode::F(_)) && !key.ctrl;
            (!safe).then(|| {
                format!(
                    "{label} cannot be rollback_now's key: that key works inside every dialog and text field, so typing it there would roll back; use ! or f1-f12"
                )
            })
        }
        Command::CancelCountdown => {
            let read_by_dialogs = match key.code {
                KeyCode::Char(c) => key.ctrl || c.is_ascii_digit() || "yYnNjkhlcqrD? %".contains(c),
                KeyCode::F(_) => false,
                _ => true,
            };
            read_by_dialogs.then(|| {
                format!(
                    "{label} cannot be cancel_countdown's key: it works inside help, questions and menus, which read {label} themselves"
                )
            })
        }
        _ => None,
    }
}

/// Which key runs which command on the main screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    bindings: Vec<(Key, Command)>,
}

impl Default for Keymap {
    /// The keys as documented; vim's j/k/g/G where k9s users expect them.
    fn default() -> Keymap {
        use Command::*;
        let c = Key::char;
        let k = Key::code;
        Keymap {
            bindings: vec![
                (c('!'), EmergencyRollback),
                (c('x'), CancelCountdown),
                (c('n'), Advance),
                (c('p'), TogglePause),
                (c('+'), WeightUp),
                (c('='), WeightUp),
                (c('-'), WeightDown),
                (c('_'), WeightDown),
                (c('w'), SetWeight),
                (c('r'), RollbackMenu),
                (c(' '), TickItem),
                (c(':'), OpenCommandLine),
                (k(KeyCode::Tab), FocusNext),
                (k(KeyCode::BackTab), FocusPrev),
                (k(KeyCode::Right), FocusNext),
                (k(KeyCode::Left), FocusPrev),
                (k(KeyCode::Up), Up),
                (c('k'), Up),
                (k(KeyCode::Down), Down),
                (c('j'), Down),
                (k(KeyCode::Home), Top),
                (c('g'), Top),
                (k(KeyCode::End), Bottom),
                (c('G'), Bottom),
                (k(KeyCode::PageUp), PageUp),
                (
                    Key {
                        code: KeyCode::Char('u'),
                        ctrl: true,
                    },
                    PageUp,
                ),
                (k(KeyCode::PageDown), PageDown),
                (
                    Key {
                        code: KeyCode::Char('d'),
                        ctrl: true,
                    },
                    PageDown,
                ),
                (c('s'), Sort),
                (c('D'), Drills),
                (c('?'), ToggleHelp),
                (c('q'), Quit),
                (
                    Key {
                        code: KeyCode::Char('c'),
                        ctrl: true,
                    },
                    Quit,
                ),
            ],
        }
    }
}

impl Keymap {
    /// The command `key` runs on the main screen.
    pub fn command_for(&self, event: &KeyEvent) -> Option<Command> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::of(event);
        self.bindings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, command)| *command)
    }

    /// Whether `event` is the emergency rollback's key: checked before every dialog.
    pub fn is_emergency(&self, event: &KeyEvent) -> bool {
        self.command_for(event) == Some(Command::EmergencyRollback)
    }

    /// The keys bound to `command`, as help shows them (`+ =`).
    pub fn keys_of(&self, command: Command) -> Vec<Key> {
        self.bindings
            .iter()
            .filter(|(_, c)| *c == command)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The first key of `command`, for the key bar; `-` when a remap left it without one.
    pub fn key_of(&self, command: Command) -> String {
        self.keys_of(command)
            .first()
            .map_or_else(|| "-".into(), |k| k.label())
    }

    /// Binds `key` to `command` instead of its default keys (the config file's `keys:` map).
    /// Refused when the key already runs another command that keeps no other key — two
    /// commands on one key would make one of them unreachable — or when `!` would lose its
    /// only key.
    pub fn remap(&mut self, command: Command, keys: &[Key]) -> Result<(), String> {
        if keys.is_empty() {
            return Err(format!("{} needs at least one key", command.name()));
        }
        if let Some(why) = keys.iter().find_map(|k| unsafe_binding(command, *k)) {
            return Err(why);
        }
        let mut next: Vec<(Key, Command)> = self
            .bindings
            .iter()
            .filter(|(k, c)| *c != command && !keys.contains(k))
            .copied()
            .collect();
        for (key, taken) in &self.bindings {
            if keys.contains(key) && *taken != command && !next.iter().any(|(_, c)| c == taken) {
                return Err(format!(
                    "{} is {}'s only key; give {} another key first",
                    key.label(),
                    taken.name(),
                    taken.name()
                ));
            }
        }
        next.extend(keys.iter().map(|k| (*k, command)));
        self.bindings = next;
        Ok(())
    }

    /// Binds every command in `wanted` to its keys at once (the config file's `keys:`), so two
    /// commands can swap keys. The same rule as [`Keymap::remap`]: an entry that would leave a
    /// command not in `wanted` without a key is refused, as is one asking for a key an earlier
    /// entry took, or no key; the others apply. Returns the refused entries by index, with why.
    pub fn remap_all(&mut self, wanted: &[(Command, Vec<Key>)]) -> Vec<(usize, String)> {
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut taken: Vec<(Key, Command)> = Vec::new();
        for (i, (command, keys)) in wanted.iter().enumerate() {
            if keys.is_empty() {
                refused.push((i, format!("{} needs at least one key", command.name())));
            } else if let Some(why) = keys.iter().find_map(|k| unsafe_binding(*command, *k)) {
                refused.push((i, why));
            } else if wanted[..i].iter().any(|(c, _)| c == command) {
                refused.push((i, format!("{} is given keys twice", command.name())));
            } else if let Some((key, other)) = keys
                .iter()
                .find_map(|k| taken.iter().find(|(t, _)| t == k).copied())
            {
                refused.push((
                    i,
                    format!(
                        "{} is given to {} too; one key runs one command",
                        key.label(),
                        other.name()
                    ),
                ));
            } else {
                taken.extend(keys.iter().map(|k| (*k, *command)));
            }
        }
        loop {
            let active: Vec<usize> = (0..wanted.len())
                .filter(|i| !refused.iter().any(|(r, _)| r == i))
                .collect();
            let moved = |c: &Command| active.iter().any(|i| wanted[*i].0 == *c);
            let claimed = |k: &Key| active.iter().any(|i| wanted[*i].1.contains(k));
            let mut next: Vec<(Key, Command)> = self
                .bindings
                .iter()
                .filter(|(k, c)| !moved(c) && !claimed(k))
                .copied()
                .collect();
            // A command that loses every key to the entries: those entries are refused.
            let mut orphans = Vec::new();
            for (key, command) in &self.bindings {
                if !moved(command) && !next.iter().any(|(_, c)| c == command) {
                    orphans.push((*key, *command));
                }
            }
            if orphans.is_empty() {
                for i in active {
                    let (command, keys) = &wanted[i];
                    next.extend(keys.iter().map(|k| (*k, *command)));
                }
                self.bindings = next;
                refused.sort_by_key(|(i, _)| *i);
                return refused;
            }
            for i in active {
                if let Some((key, command)) = orphans.iter().find(|(k, _)| wanted[i].1.contains(k))
                {
                    refused.push((
                        i,
                        format!(
                            "{} would leave {} without a key; give {} another key first",
                            key.label(),
                            command.name(),
                            command.name()
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    /// Every command has a key and a name that reads back.
    #[test]
    fn every_command_has_a_key_and_a_name() {
        let keymap = Keymap::default();
        for command in COMMANDS {
            assert!(
                !keymap.keys_of(command).is_empty(),
                "{command:?} has no key"
            );
            assert_eq!(Command::from_name(command.name()), Some(command));
            for key in keymap.keys_of(command) {
                let event = KeyEvent::new(
                    key.code,
                    if key.ctrl {
                        KeyModifiers::CONTROL
                    } else {
                        KeyModifiers::NONE
                    },
                );
                assert_eq!(keymap.command_for(&event), Some(command), "{key:?}");
            }
        }
    }

    #[test]
    fn keys_parse_and_label() {
        for (text, label) in [
            ("n", "n"),
            ("space", "space"),
            ("ctrl-c", "ctrl-c"),
            ("pgup", "pgup"),
            ("tab", "tab"),
            ("F5", "f5"),
            ("!", "!"),
        ] {
            assert_eq!(Key::parse(text).map(Key::label), Ok(label.to_string()));
        }
        assert!(Key::parse("nn").is_err());
        assert!(Key::parse("ctrl-").is_err());
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn a_remap_moves_a_command_and_refuses_to_orphan_another() {
        let mut keymap = Keymap::default();
        keymap
            .remap(Command::Advance, &[Key::char('N')])
            .expect("N is free");
        assert_eq!(keymap.command_for(&press('N')), Some(Command::Advance));
        assert_eq!(keymap.command_for(&press('n')), None);
        assert_eq!(keymap.key_of(Command::Advance), "N");
        let err = keymap
            .remap(Command::Advance, &[Key::char('!')])
            .expect_err("! is the rollback's only key");
        assert!(err.contains("rollback_now"), "{err}");
        assert!(keymap.is_emergency(&press('!')));
        for key in ["R", "enter", "y", "1", "space", "ctrl-r"] {
            let key = Key::parse(key).expect("a key");
            let err = keymap
                .remap(Command::EmergencyRollback, &[key])
                .expect_err("typed in a text field");
            assert!(err.contains("rollback_now"), "{err}");
        }
        keymap
            .remap(
                Command::EmergencyRollback,
                &[Key::char('!'), Key::parse("f12").expect("f12")],
            )
            .expect("! and a function key are safe");
        // + has = too, so taking + leaves weight_up reachable.
        keymap
            .remap(Command::Sort, &[Key::char('+')])
            .expect("= still raises the weight");
        assert_eq!(keymap.command_for(&press('=')), Some(Command::WeightUp));
    }

    #[test]
    fn remap_all_swaps_keys_and_refuses_only_what_would_orphan_a_command() {
        let mut keymap = Keymap::default();
        let refused = keymap.remap_all(&[
            (Command::Advance, vec![Key::char('p')]),
            (
                Command::TogglePause,
                vec![Key::char('n'), Key::parse("f2").expect("key")],
            ),
            (Command::Sort, vec![Key::char('!')]),
            (Command::Drills, vec![Key::char('p')]),
            (Command::Quit, vec![]),
        ]);
        assert_eq!(keymap.command_for(&press('p')), Some(Command::Advance));
        assert_eq!(keymap.command_for(&press('n')), Some(Command::TogglePause));
        assert_eq!(keymap.key_of(Command::TogglePause), "n");
        assert!(keymap.is_emergency(&press('!')));
        assert_eq!(keymap.command_for(&press('D')), Some(Command::Drills));
        assert_eq!(keymap.command_for(&press('q')), Some(Command::Quit));
        let refused: Vec<(usize, &str)> = refused.iter().map(|(i, w)| (*i, w.as_str())).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert_eq!(refused[0].0, 2);
        assert!(refused[0].1.contains("without a key"), "{refused:?}");
        assert!(refused[0].1.contains("rollback_now"), "{refused:?}");
        assert_eq!(refused[1].0, 3);
        assert!(refused[1].1.contains("given to advance too"), "{refused:?}");
        assert_eq!(refused[2], (4, "quit needs at least one key"));
        for command in COMMANDS {
            assert!(
                !keymap.keys_of(command).is_empty(),
                "{command:?} has no key"
            );
        }
    }

    /// An observer's screen keys change nothing; every other command says what it would do.
    #[test]
    fn commands_that_change_a_run_say_what_they_would_do() {
        for command in COMMANDS {
            let screen_only =
                command.is_navigation() || matches!(command, Command::ToggleHelp | Command::Quit);
            assert_eq!(command.would().is_none(), screen_only, "{command:?}");
        }
    }
}
