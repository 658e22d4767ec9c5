//! The config file: `$XDG_CONFIG_HOME/warroom/config.yaml` (`~/.config/warroom/config.yaml`
//! when `XDG_CONFIG_HOME` is unset), or `--config FILE`. Three keys, all optional:
//!
//! ```yaml
//! theme: light                 # a built-in theme, or a theme file (relative to this file)
//! operator: alice              # when --operator is not given
//! keys:                        # command name → a key or a list of keys
//!   advance: N
//!   rollback_menu: [R, f2]
//! ```
//!
//! Nothing in it can stop warroom from starting: each mistake is a [`Warning`] naming the file,
//! the line and the key, the default stands for what was wrong, and the rest applies. A missing
//! file at the default place is no warning; a missing `--config FILE` is one.

pub mod node;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::app::keymap::{COMMANDS, Command, Key, Keymap};
use crate::ui::theme::{self, Theme};
pub use node::Warning;
use node::{Doc, Node, line};

/// The config file's keys.
const KEYS: [&str; 3] = ["theme", "operator", "keys"];

/// What the config file and `--theme` settle: the console's theme and keys, and the operator
/// the config names; with a warning for each thing that was wrong.
#[derive(Debug, Clone)]
pub struct Settings {
    pub theme: Arc<Theme>,
    pub keymap: Arc<Keymap>,
    /// `operator:`, for when `--operator` is not given.
    pub operator: Option<String>,
    /// The config file read, if one was.
    pub file: Option<PathBuf>,
    pub warnings: Vec<Warning>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            theme: Theme::shared_default(),
            keymap: Arc::new(Keymap::default()),
            operator: None,
            file: None,
            warnings: Vec::new(),
        }
    }
}

/// `$XDG_CONFIG_HOME/warroom/config.yaml`, else `~/.config/warroom/config.yaml`.
pub fn default_path() -> Option<PathBuf> {
    Some(xdg_dir("XDG_CONFIG_HOME", ".config")?.join("config.yaml"))
}

/// warroom's directory under an XDG base directory: `$VAR/warroom` when `VAR` is an absolute
/// path (the spec says to ignore a relative one), else `~/HOME_DEFAULT/warroom`.
pub fn xdg_dir(var: &str, home_default: &str) -> Option<PathBuf> {
    let base = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(home_default))
        })?;
    Some(base.join("warroom"))
}

/// The most a config or theme file may hold.
const MAX_FILE: u64 = 1024 * 1024;

/// Reads a config or theme file: a regular file of at most 1 MiB. A FIFO, a device or
/// `/dev/zero` is refused before it is opened, so a mistaken path cannot hang the start.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    Ok(text)
}

impl Settings {
    /// Reads `config` (`--config`), else the file at [`default_path`], and applies `--theme`
    /// over the file's `theme:`.
    pub fn load(config: Option<&Path>, theme_flag: Option<&str>) -> Settings {
        let Some(path) = config.map(Path::to_path_buf).or_else(default_path) else {
            return Settings::without_file(theme_flag);
        };
        match read_file(&path) {
            Ok(text) => Settings::parse(&text, &path, theme_flag),
            Err(e) => {
                let mut settings = Settings::without_file(theme_flag);
                if config.is_some() || e.kind() != std::io::ErrorKind::NotFound {
                    settings.warnings.insert(
                        0,
                        Warning::new(
                            &path.display().to_string(),
                            None,
                            None,
                            format!("cannot read the config file ({e}); the defaults are used"),
                        ),
                    );
                }
                settings
            }
        }
    }

    /// No config file: the defaults, and `--theme`.
    fn without_file(theme_flag: Option<&str>) -> Settings {
        let mut settings = Settings::parse("", Path::new("config.yaml"), theme_flag);
        settings.file = None;
        settings
    }

    /// Config text read from `path` (which names it in warnings and anchors a relative theme
    /// file), with `--theme` over its `theme:`.
    pub fn parse(text: &str, path: &Path, theme_flag: Option<&str>) -> Settings {
        let origin = path.display().to_string();
        let dir = path.parent();
        let mut settings = Settings {
            file: Some(path.to_path_buf()),
            ..Settings::default()
        };
        let mut warnings = Vec::new();
        let mut theme_entry: Option<(String, u64)> = None;
        match Doc::parse(text, &origin) {
            Err(mut w) => {
                w.message.push_str("; the defaults are used");
                warnings.push(w);
            }
            Ok(doc) => {
                warnings.extend(doc.duplicates.iter().cloned());
                match &doc.root.value {
                Node::Null => {}
                Node::Map(entries) => {
                    for (key, value) in entries {
                        let name = doc.text_of(key).unwrap_or_default();
                        let at = |message: String| {
                            Warning::new(&origin, Some(line(key)), Some(name.clone()), message)
                        };
                        match name.as_str() {
                            "theme" => match doc.text_of(value).filter(|t| !t.trim().is_empty()) {
                                Some(t) => theme_entry = Some((t, line(key))),
                                None => warnings.push(at(format!(
                                    "names a theme (default, light, high-contrast, colorblind, or a file), not {}; the default theme is used",
                                    value.value.kind()
                                ))),
                            },
                            "operator" => match doc.text_of(value).filter(|t| !t.trim().is_empty())
                            {
                                Some(op) => settings.operator = Some(op.trim().to_string()),
                                None => warnings.push(at(format!(
                                    "is a name, not {}; --operator or $USER is used",
                                    value.value.kind()
                                ))),
                            },
                            "keys" => {
                                let keymap = keys(&doc, value, &origin, &mut warnings);
                                settings.keymap = Arc::new(keymap);
                            }
                            _ => warnings.push(Warning::new(
                                &origin,
                                Some(line(key)),
                                None,
                                format!(
                                    "{name:?} is not a config key ({}); it is ignored",
                                    theme::known(&name, &KEYS)
                                ),
                            )),
                        }
                    }
                }
                other => warnings.push(Warning::new(
                    &origin,
                    Some(line(&doc.root)),
                    None,
                    format!(
                        "the config is a map (theme:, operator:, keys:), not {}; the defaults are used",
                        other.kind()
                    ),
                )),
                }
            }
        }
        // --theme beats the config's theme:, which is then not even read.
        let chosen = match (theme_flag, theme_entry) {
            (Some(flag), _) => Some(pick_theme(flag, None, "--theme", None, None)),
            (None, Some((value, at))) => Some(pick_theme(
                &value,
                dir,
                &origin,
                Some(at),
                Some("theme".to_string()),
            )),
            (None, None) => None,
        };
        if let Some((theme, more)) = chosen {
            settings.theme = Arc::new(theme);
            warnings.extend(more);
        }
        settings.warnings = warnings;
        settings
    }
}

/// A built-in theme by name, else a theme file; a file that cannot be read is a warning where
/// it was named, and the default theme.
fn pick_theme(
    value: &str,
    dir: Option<&Path>,
    origin: &str,
    at: Option<u64>,
    key: Option<String>,
) -> (Theme, Vec<Warning>) {
    if let Some(theme) = Theme::named(value) {
        return (theme, Vec::new());
    }
    let path = match dir {
        Some(dir) if Path::new(value).is_relative() => dir.join(value),
        _ => PathBuf::from(value),
    };
    match read_file(&path) {
        Ok(text) => Theme::parse_file(&text, &path),
        Err(e) => (
            Theme::default(),
            vec![Warning::new(
                origin,
                at,
                key,
                format!(
                    "{value:?} is not a built-in theme ({}) and {} cannot be read ({e}); the default theme is used",
                    theme::BUILT_IN.map(|(n, _)| n).join(", "),
                    path.display()
                ),
            )],
        ),
    }
}

/// `keys:`: each command to a key or a list of keys, applied together over the default keys.
fn keys(doc: &Doc, value: &Spanned<Node>, origin: &str, warnings: &mut Vec<Warning>) -> Keymap {
    let mut keymap = Keymap::default();
    let entries = match &value.value {
        Node::Map(entries) => entries,
        Node::Null => return keymap,
        other => {
            warnings.push(Warning::new(
                origin,
                Some(line(value)),
                Some("keys".into()),
                format!(
                    "is a map of commands to keys, such as {{advance: N, rollback_menu: [R, f2]}}, not {}; the default keys are used",
                    other.kind()
                ),
            ));
            return keymap;
        }
    };
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name()).collect();
    let mut wanted: Vec<(Command, Vec<Key>)> = Vec::new();
    let mut places: Vec<(u64, String)> = Vec::new();
    for (key, value) in entries {
        let name = doc.text_of(key).unwrap_or_default();
        let dotted = format!("keys.{name}");
        let Some(command) = Command::from_name(&name) else {
            warnings.push(Warning::new(
                origin,
                Some(line(key)),
                Some(dotted),
                format!(
                    "{name:?} is not a command ({})",
                    theme::known(&name, &names)
                ),
            ));
            continue;
        };
        let items: Vec<&Spanned<Node>> = match &value.value {
            Node::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        let mut bound = Vec::new();
        let mut bad = false;
        for item in items {
            let parsed = match doc.text_of(item) {
                Some(text) => Key::parse(&text),
                None => Err(format!(
                    "a key is a name such as N or f2, not {}",
                    item.value.kind()
                )),
            };
            match parsed {
                Ok(k) => bound.push(k),
                Err(why) => {
                    bad = true;
                    warnings.push(Warning::new(
                        origin,
                        Some(line(item)),
                        Some(dotted.clone()),
                        format!("{why}; {name} keeps its default keys"),
                    ));
                }
            }
        }
        if !bad {
            wanted.push((command, bound));
            places.push((line(key), dotted));
        }
    }
    for (i, why) in keymap.remap_all(&wanted) {
        if let Some((at, dotted)) = places.get(i) {
            warnings.push(Warning::new(
                origin,
                Some(*at),
                Some(dotted.clone()),
                format!("{why}; {} keeps its default keys", wanted[i].0.name()),
            ));
        }
    }
    keymap
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::style::{Color, Style};

    use super::*;

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn parse(text: &str, flag: Option<&str>) -> Settings {
        Settings::parse(text, Path::new("/home/a/.config/warroom/config.yaml"), flag)
    }

    #[test]
    fn a_key_given_twice_is_one_warning_and_the_rest_applies() {
        let s = parse("operator: carol\nkeys: {advance: N, advance: M}\n", None);
        assert_eq!(s.operator.as_deref(), Some("carol"));
        assert_eq!(s.keymap.command_for(&press('N')), Some(Command::Advance));
        assert_eq!(s.keymap.command_for(&press('M')), None);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].to_string().contains("keys.advance"));
    }

    #[test]
    fn a_fifo_or_a_device_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("config.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let s = Settings::load(Some(&fifo), None);
            assert!(
                s.warnings[0].to_string().contains("not a regular file"),
                "{:?}",
                s.warnings
            );
        }
        let s = Settings::load(None, Some("/dev/zero"));
        assert!(
            s.warnings
                .iter()
                .any(|w| w.to_string().contains("not a regular file")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn a_good_config_sets_theme_operator_and_keys() {
        let s = parse(
            "theme: light\noperator: carol\nkeys:\n  advance: N\n  rollback_menu: [R, f2]\n",
            None,
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(*s.theme, Theme::named("light").expect("built in"));
        assert_eq!(s.operator.as_deref(), Some("carol"));
        assert_eq!(s.keymap.command_for(&press('N')), Some(Command::Advance));
        assert_eq!(s.keymap.command_for(&press('n')), None);
        assert_eq!(
            s.keymap.command_for(&press('R')),
            Some(Command::RollbackMenu)
        );
        assert_eq!(
            s.keymap
                .command_for(&KeyEvent::new(KeyCode::F(2), KeyModifiers::NONE)),
            Some(Command::RollbackMenu)
        );
        assert_eq!(s.keymap.key_of(Command::Advance), "N");
    }

    /// `n`, `y`, `on` and `1` are booleans and numbers in YAML; as keys they stay keys.
    #[test]
    fn keys_yaml_would_read_as_booleans_stay_keys() {
        let s = parse(
            "keys:\n  tick: y\n  advance: [n, 1]\n  pause: \"P\"\n",
            None,
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.keymap.command_for(&press('y')), Some(Command::TickItem));
        assert_eq!(s.keymap.command_for(&press('1')), Some(Command::Advance));
        assert_eq!(
            s.keymap.command_for(&press('P')),
            Some(Command::TogglePause)
        );
    }

    #[test]
    fn a_refused_remap_is_a_warning_with_line_and_key_and_the_rest_applies() {
        let s = parse(
            "operator: dana\nkeys:\n  sort: S\n  advance: \"!\"\n  pause: [p, ctrl-]\n  advnce: N\n",
            None,
        );
        assert_eq!(s.operator.as_deref(), Some("dana"));
        assert_eq!(s.keymap.command_for(&press('S')), Some(Command::Sort));
        assert!(s.keymap.is_emergency(&press('!')));
        assert_eq!(s.keymap.command_for(&press('n')), Some(Command::Advance));
        let texts: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 3, "{texts:#?}");
        assert!(
            texts[0].starts_with(
                "/home/a/.config/warroom/config.yaml line 5, key keys.pause: \"ctrl-\": ctrl- goes with one letter"
            ),
            "{texts:#?}"
        );
        assert!(
            texts[1].starts_with(
                "/home/a/.config/warroom/config.yaml line 6, key keys.advnce: \"advnce\" is not a command (did you mean advance?"
            ),
            "{texts:#?}"
        );
        assert!(
            texts[2].starts_with(
                "/home/a/.config/warroom/config.yaml line 4, key keys.advance: ! would leave rollback_now without a key"
            ),
            "{texts:#?}"
        );
        assert!(
            texts[2].ends_with("advance keeps its default keys"),
            "{texts:#?}"
        );
    }

    #[test]
    fn two_commands_can_swap_keys() {
        let s = parse("keys: {advance: p, pause: n}\n", None);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.keymap.command_for(&press('p')), Some(Command::Advance));
        assert_eq!(
            s.keymap.command_for(&press('n')),
            Some(Command::TogglePause)
        );
    }

    /// --theme beats the config's theme:, which beats the default.
    #[test]
    fn theme_precedence_is_flag_then_config_then_default() {
        let config = "theme: high-contrast\n";
        assert_eq!(
            *parse(config, Some("colorblind")).theme,
            Theme::named("colorblind").expect("built in")
        );
        assert_eq!(
            *parse(config, None).theme,
            Theme::named("high-contrast").expect("built in")
        );
        assert_eq!(*parse("", None).theme, Theme::default());
        assert_eq!(
            *parse("", Some("light")).theme,
            Theme::named("light").expect("built in")
        );
    }

    #[test]
    fn a_theme_file_is_found_next_to_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/mine.yaml"),
            "extends: light\nok: {fg: \"#00aa00\"}\n\nbad: {fg: crimson}\n",
        )
        .expect("write");
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "theme: themes/mine.yaml\n").expect("write");
        let s = Settings::load(Some(&config), None);
        assert_eq!(s.theme.ok, Style::new().fg(Color::Rgb(0, 0xaa, 0)));
        assert_eq!(s.theme.warn, Theme::named("light").expect("built in").warn);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        let w = s.warnings[0].to_string();
        assert!(
            w.contains("themes/mine.yaml line 4, key bad.fg: \"crimson\" is not a colour"),
            "{w}"
        );

        std::fs::write(&config, "\ntheme: themes/gone.yaml\n").expect("write");
        let s = Settings::load(Some(&config), None);
        assert_eq!(*s.theme, Theme::default());
        let w = s.warnings[0].to_string();
        assert!(
            w.contains(
                "config.yaml line 2, key theme: \"themes/gone.yaml\" is not a built-in theme"
            ),
            "{w}"
        );
    }

    #[test]
    fn bad_configs_are_warnings_and_the_defaults() {
        let s = parse("theme: light\nkeys: [a]\ncolour: red\n", None);
        assert_eq!(*s.theme, Theme::named("light").expect("built in"));
        assert_eq!(*s.keymap, Keymap::default());
        let texts: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 2, "{texts:#?}");
        assert!(
            texts[0].contains("line 2, key keys: is a map of commands"),
            "{texts:#?}"
        );
        assert!(
            texts[1].contains("line 3: \"colour\" is not a config key"),
            "{texts:#?}"
        );

        let s = parse("theme: [light\n", None);
        assert_eq!(*s.theme, Theme::default());
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].line.is_some(), "{:?}", s.warnings);

        let s = parse("operator:\n", Some("light"));
        assert_eq!(s.operator, None);
        assert!(
            s.warnings[0]
                .to_string()
                .contains("line 1, key operator: is a name")
        );
    }

    #[test]
    fn a_missing_config_is_silent_unless_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("config.yaml");
        let s = Settings::load(Some(&gone), Some("light"));
        assert_eq!(*s.theme, Theme::named("light").expect("built in"));
        assert_eq!(
            s.warnings.len(),
            1,
            "--config names a file: {:?}",
            s.warnings
        );
        // default_path's file: read from the environment, so only its shape is checked here.
        if let Some(p) = default_path() {
            assert!(p.ends_with("warroom/config.yaml"), "{}", p.display());
        }
    }

    /// docs/themes.md names every command the config file's `keys:` takes.
    #[test]
    fn the_docs_name_every_command() {
        let docs = include_str!("../../docs/themes.md");
        for command in COMMANDS {
            assert!(
                docs.contains(&format!("`{}`", command.name())),
                "docs/themes.md lacks {}",
                command.name()
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "\0",
            "keys: {advance: [[[]]]}",
            "keys: {advance: {a: b}}",
            "keys: {: x}",
            "keys:\n  ? [a]\n  : b\n",
            "theme: {a: 1}",
            "theme: \"\"",
            "theme: /",
            "operator: [a]",
            "keys: {quit: []}",
            "keys: {quit: ~}",
            &"keys: {".repeat(5_000),
        ] {
            let _ = parse(text, None);
        }
    }
}
