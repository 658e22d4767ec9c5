//! Themes: one style per role (`ok`, `bad`, `badge_running`, `key`, …), read from a small YAML
//! file. The four built-in themes (`themes/*.yaml`) are compiled in. A theme that names
//! `extends` starts from that theme; without it, from `default`. A role the file does not name
//! keeps the style it started with, and so does a role whose style has a mistake in it: every
//! problem is a [`Warning`] naming the file, the line and the key, never a failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ratatui::style::{Color, Modifier, Style};
use serde_saphyr::Spanned;

use crate::config::node::{Doc, Node, Warning, line};

/// The built-in themes by name, as `--theme NAME` and the config file's `theme:` name them.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("colorblind", include_str!("../../themes/colorblind.yaml")),
];

/// How many `extends` deep a theme may go (a loop stops here).
const MAX_DEPTH: usize = 8;

macro_rules! roles {
    ($( $(#[doc = $doc:literal])+ $name:ident, )*) => {
        /// One style per role; `ui` draws with `app.theme.<role>`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            $( $(#[doc = $doc])+ pub $name: Style, )*
        }

        /// Every role's name, in the order `themes/default.yaml` lists them.
        pub const ROLES: &[&str] = &[$(stringify!($name)),*];

        impl Theme {
            /// Every role unstyled: what `default.yaml` is read over.
            const fn bare() -> Theme {
                Theme { $( $name: Style::new(), )* }
            }

            /// The style of the role called `name`.
            pub fn role(&self, name: &str) -> Option<Style> {
                match name {
                    $( stringify!($name) => Some(self.$name), )*
                    _ => None,
                }
            }

            fn role_mut(&mut self, name: &str) -> Option<&mut Style> {
                match name {
                    $( stringify!($name) => Some(&mut self.$name), )*
                    _ => None,
                }
            }
        }
    };
}

roles! {
    /// Good: a step done (✓), a pod running and ready, a source live, all replicas ready, the
    /// answer a dialog accepts.
    ok,
    /// Needs a look: a pod starting, replicas not all ready, old pods, a source connecting, a
    /// warning in the log, the answer a dialog refuses.
    warn,
    /// Wrong: a step or pod failed (✗), a source down or forbidden, an error in the log, the
    /// rollback's heading, a breached value.
    bad,
    /// A step waiting for a person (⏸).
    waiting,
    /// What is happening now: the current phase (▶) and the step running.
    accent,
    /// Operator lines in the log, the kubeconfig hint, what a key does now in help.
    info,
    /// Steps and phases not reached yet (·), a pod of no track.
    pending,
    /// Secondary text: log times, help's footer, a dialog's explanation, a key's "why not".
    muted,
    /// The key bar's answer to a key that did nothing (»).
    notice,
    /// Added to data that may be out of date (its source is not live).
    stale,
    /// Added to the selected row: pod, step, menu entry.
    selected,
    /// The stable track, wherever it is named.
    stable,
    /// The canary track, wherever it is named.
    canary,
    /// ` WARROOM ` at the top left.
    title,
    /// ` OBSERVER ` in `warroom watch`.
    observer,
    /// The status badge while running.
    badge_running,
    /// The status badge when ready, or paused.
    badge_paused,
    /// The status badge when complete.
    badge_complete,
    /// The status badge when failed, rolling back, rolled back, or the rollback failed.
    badge_failed,
    /// The automatic-rollback countdown.
    alarm,
    /// A banner (⚠) in the header.
    banner,
    /// The demo's active drills.
    drill,
    /// ` JOURNAL NOT WRITTEN `.
    journal_error,
    /// A key in the key bar that does something now; `n` and `esc` in a dialog.
    key,
    /// A key that matters most now (`!`, `x` during a countdown).
    key_urgent,
    /// A key that does nothing now.
    key_unavailable,
    /// `y` in a dialog.
    key_yes,
    /// A dialog's border.
    modal_border,
    /// The border of a dialog that rolls back.
    modal_border_danger,
    /// A panel's border.
    border,
    /// The focused panel's border (it is double as well).
    border_focus,
    /// The done part of a phase's progress bar (█).
    progress_done,
    /// The rest of a phase's progress bar (░).
    progress_todo,
    /// The canary weight gauge's filled part: its foreground.
    gauge_fill,
    /// The weight gauge's empty part: its background.
    gauge_empty,
    /// The text on the weight gauge.
    gauge_label,
    /// A breached value, `✗ BREACH`, the Health panel's border in a breach and its countdown.
    breach,
    /// A metric's threshold in the Health panel: the `┄` line and its legend.
    threshold,
}

impl Default for Theme {
    /// `themes/default.yaml`.
    fn default() -> Theme {
        Theme::shared_default().as_ref().clone()
    }
}

impl Theme {
    /// The default theme, read once and shared.
    pub fn shared_default() -> Arc<Theme> {
        static DEFAULT: OnceLock<Arc<Theme>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let mut warnings = Vec::new();
                let theme = match Doc::parse(BUILT_IN[0].1, "themes/default.yaml") {
                    Ok(doc) => apply(&doc, "themes/default.yaml", Theme::bare(), &mut warnings),
                    Err(_) => Theme::bare(),
                };
                Arc::new(theme)
            })
            .clone()
    }

    /// A built-in theme by name: `default`, `light`, `high-contrast`, `colorblind`.
    pub fn named(name: &str) -> Option<Theme> {
        if name == "default" {
            return Some(Theme::default());
        }
        let (name, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Some(parse_in(text, &format!("themes/{name}.yaml"), None, 0).0)
    }

    /// Reads a theme file; a file that cannot be read is a warning and the default theme.
    pub fn load(path: &Path) -> (Theme, Vec<Warning>) {
        load_in(path, 0)
    }

    /// Reads theme text; `origin` names it in warnings. An `extends` path is taken relative to
    /// the current directory (`load` takes it relative to the file).
    pub fn parse(text: &str, origin: &str) -> (Theme, Vec<Warning>) {
        parse_in(text, origin, None, 0)
    }

    /// Theme text read from `path`, which names it in warnings; an `extends` file is taken
    /// relative to it.
    pub fn parse_file(text: &str, path: &Path) -> (Theme, Vec<Warning>) {
        parse_in(text, &path.display().to_string(), path.parent(), 0)
    }

    /// `--theme` and the config file's `theme:`: a built-in name, else a file (a relative one
    /// relative to `dir` when given).
    pub fn choose(value: &str, dir: Option<&Path>) -> (Theme, Vec<Warning>) {
        match Theme::named(value) {
            Some(theme) => (theme, Vec::new()),
            None => load_in(&resolve(value, dir), 0),
        }
    }

    /// The weight gauge's style: the fill's colour as foreground, the empty part's as
    /// background (either role may give its colour as `fg` or `bg`), the fill's modifiers.
    pub fn gauge(&self) -> Style {
        let fill = self.gauge_fill.fg.or(self.gauge_fill.bg);
        let empty = self.gauge_empty.bg.or(self.gauge_empty.fg);
        let mut style = Style::new()
            .add_modifier(self.gauge_fill.add_modifier)
            .remove_modifier(self.gauge_fill.sub_modifier);
        if let Some(c) = fill {
            style = style.fg(c);
        }
        if let Some(c) = empty {
            style = style.bg(c);
        }
        style
    }

    /// The gauge's empty colour: under `NO_COLOR` it is a fill, not a badge to reverse.
    pub fn gauge_empty_colour(&self) -> Color {
        self.gauge().bg.unwrap_or(Color::Reset)
    }
}

/// A path as given, or relative to `dir`.
fn resolve(value: &str, dir: Option<&Path>) -> PathBuf {
    let path = PathBuf::from(value);
    match dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

fn load_in(path: &Path, depth: usize) -> (Theme, Vec<Warning>) {
    let origin = path.display().to_string();
    match crate::config::read_file(path) {
        Ok(text) => parse_in(&text, &origin, path.parent(), depth),
        Err(e) => (
            Theme::default(),
            vec![Warning::new(
                &origin,
                None,
                None,
                format!("cannot read the theme ({e}); the default theme is used"),
            )],
        ),
    }
}

fn parse_in(text: &str, origin: &str, dir: Option<&Path>, depth: usize) -> (Theme, Vec<Warning>) {
    let mut warnings = Vec::new();
    let doc = match Doc::parse(text, origin) {
        Ok(doc) => doc,
        Err(mut w) => {
            w.message.push_str("; the default theme is used");
            return (Theme::default(), vec![w]);
        }
    };
    warnings.extend(doc.duplicates.iter().cloned());
    let base = base_of(&doc, origin, dir, depth, &mut warnings);
    let theme = apply(&doc, origin, base, &mut warnings);
    (theme, warnings)
}

/// The theme `extends` names (default without one).
fn base_of(
    doc: &Doc,
    origin: &str,
    dir: Option<&Path>,
    depth: usize,
    warnings: &mut Vec<Warning>,
) -> Theme {
    let Node::Map(entries) = &doc.root.value else {
        return Theme::default();
    };
    let Some((key, value)) = entries
        .iter()
        .find(|(k, _)| doc.text_of(k).as_deref() == Some("extends"))
    else {
        return Theme::default();
    };
    let warn = |message: String| {
        Warning::new(
            origin,
            Some(line(key)),
            Some("extends".into()),
            format!("{message}; extends default"),
        )
    };
    let Some(name) = doc.text_of(value).filter(|n| !n.trim().is_empty()) else {
        warnings.push(warn(format!(
            "names a theme (default, light, high-contrast, colorblind, or a file), not {}",
            value.value.kind()
        )));
        return Theme::default();
    };
    if depth + 1 >= MAX_DEPTH {
        warnings.push(warn(format!(
            "themes extend each other {MAX_DEPTH} deep (a loop?)"
        )));
        return Theme::default();
    }
    if let Some((built_in, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
        return parse_in(text, &format!("themes/{built_in}.yaml"), None, depth + 1).0;
    }
    let path = resolve(&name, dir);
    match crate::config::read_file(&path) {
        Ok(text) => {
            let (theme, more) =
                parse_in(&text, &path.display().to_string(), path.parent(), depth + 1);
            warnings.extend(more);
            theme
        }
        Err(e) => {
            warnings.push(warn(format!(
                "{:?} is not a built-in theme and cannot be read as a file ({e})",
                name
            )));
            Theme::default()
        }
    }
}

/// The roles `doc` names, over `base`.
fn apply(doc: &Doc, origin: &str, base: Theme, warnings: &mut Vec<Warning>) -> Theme {
    let mut theme = base;
    let entries = match &doc.root.value {
        Node::Map(entries) => entries,
        Node::Null => return theme,
        other => {
            warnings.push(Warning::new(
                origin,
                Some(line(&doc.root)),
                None,
                format!(
                    "a theme is a map of roles to styles, such as `ok: {{fg: green}}`, not {}; the default theme is used",
                    other.kind()
                ),
            ));
            return Theme::default();
        }
    };
    for (key, value) in entries {
        let Some(name) = doc.text_of(key) else {
            warnings.push(Warning::new(
                origin,
                Some(line(key)),
                None,
                format!("a role is a name, not {}", key.value.kind()),
            ));
            continue;
        };
        if name == "extends" {
            continue;
        }
        let Some(slot) = theme.role_mut(&name) else {
            warnings.push(Warning::new(
                origin,
                Some(line(key)),
                None,
                format!("role {name:?} is not a role ({})", known(&name, ROLES)),
            ));
            continue;
        };
        match style_of(doc, value, origin, &name) {
            Ok(style) => *slot = style,
            Err(mut problems) => warnings.append(&mut problems),
        }
    }
    theme
}

/// `did you mean ok? known: ok, warn, …`
pub(crate) fn known(given: &str, names: &[&str]) -> String {
    let near = names
        .iter()
        .map(|n| (distance(given, n), *n))
        .min()
        .filter(|(d, n)| *d <= 2.max(n.len() / 4));
    let list = names.join(", ");
    match near {
        Some((_, n)) => format!("did you mean {n}? known: {list}"),
        None => format!("known: {list}"),
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// The keys a style map takes.
const STYLE_KEYS: [&str; 7] = [
    "fg",
    "bg",
    "bold",
    "dim",
    "italic",
    "underlined",
    "reversed",
];

/// One role's style: a map (`{fg: white, bg: red, bold: true}`) or a colour (the foreground).
/// Any mistake leaves the whole role as it was, with a warning for each.
fn style_of(
    doc: &Doc,
    value: &Spanned<Node>,
    origin: &str,
    role: &str,
) -> Result<Style, Vec<Warning>> {
    let at = |node: &Spanned<Node>, key: String, message: String| {
        Warning::new(
            origin,
            Some(line(node)),
            Some(key),
            format!("{message}; {role} keeps its default"),
        )
    };
    let entries = match &value.value {
        Node::Map(entries) => entries,
        Node::Str(_) | Node::Int(_) => {
            return colour_of(doc, value)
                .map(|c| Style::new().fg(c))
                .map_err(|m| vec![at(value, role.to_string(), m)]);
        }
        other => {
            return Err(vec![at(
                value,
                role.to_string(),
                format!(
                    "a style is a map such as {{fg: green, bold: true}} or a colour, not {}",
                    other.kind()
                ),
            )]);
        }
    };
    let mut style = Style::new();
    let mut problems = Vec::new();
    for (key, v) in entries {
        let name = doc.text_of(key).unwrap_or_default();
        let dotted = format!("{role}.{name}");
        let modifier = match name.as_str() {
            "fg" | "bg" => {
                match colour_of(doc, v) {
                    Ok(c) if name == "fg" => style = style.fg(c),
                    Ok(c) => style = style.bg(c),
                    Err(m) => problems.push(at(v, dotted, m)),
                }
                continue;
            }
            "bold" => Modifier::BOLD,
            "dim" => Modifier::DIM,
            "italic" => Modifier::ITALIC,
            "underlined" | "underline" => Modifier::UNDERLINED,
            "reversed" | "reverse" => Modifier::REVERSED,
            _ => {
                problems.push(at(
                    key,
                    dotted,
                    format!(
                        "{name:?} is not a style key ({})",
                        known(&name, &STYLE_KEYS)
                    ),
                ));
                continue;
            }
        };
        match &v.value {
            Node::Bool(true) => style = style.add_modifier(modifier),
            Node::Bool(false) => {}
            other => problems.push(at(
                v,
                dotted,
                format!("is true or false, not {}", other.kind()),
            )),
        }
    }
    if problems.is_empty() {
        Ok(style)
    } else {
        Err(problems)
    }
}

/// A colour as a theme writes it: a name, `"#rrggbb"`, or 0–255.
fn colour_of(doc: &Doc, node: &Spanned<Node>) -> Result<Color, String> {
    match &node.value {
        Node::Int(n) => u8::try_from(*n)
            .map(Color::Indexed)
            .map_err(|_| format!("{n} is not a colour: indexes go from 0 to 255")),
        Node::Null => Err(
            "has no colour (a #rrggbb colour must be quoted: \"#ff8800\"; YAML reads an unquoted # as a comment)"
                .into(),
        ),
        Node::Seq(_) | Node::Map(_) => Err(format!("is one colour, not {}", node.value.kind())),
        Node::Str(_) | Node::Bool(_) | Node::Float(_) => {
            let text = doc.text_of(node).unwrap_or_default();
            parse_colour(&text).ok_or_else(|| {
                format!(
                    "{text:?} is not a colour (black, red, green, yellow, blue, magenta, cyan, gray, dark_gray, light_red, light_green, light_yellow, light_blue, light_magenta, light_cyan, white, reset, \"#rrggbb\" or 0-255)"
                )
            })
        }
    }
}

/// `green`, `dark_gray` (also `darkgray`, `dark-grey`), `light_red`, `reset`, `#rrggbb`, `208`.
pub fn parse_colour(text: &str) -> Option<Color> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix('#') {
        if hex.len() != 6 || !hex.is_ascii() {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return Some(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    if let Ok(n) = text.parse::<u8>() {
        return Some(Color::Indexed(n));
    }
    let name: String = text
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .collect::<String>()
        .to_ascii_lowercase()
        .replace("grey", "gray")
        .replace("bright", "light");
    Some(match name.as_str() {
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" => Color::Gray,
        "darkgray" | "lightblack" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        "reset" | "default" => Color::Reset,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Theme, Vec<Warning>) {
        Theme::parse(text, "themes/x.yaml")
    }

    #[test]
    fn every_built_in_theme_parses_without_a_warning() {
        for (name, text) in BUILT_IN {
            let (theme, warnings) = Theme::parse(text, name);
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(Theme::named(name).as_ref(), Some(&theme), "{name}");
        }
        assert!(Theme::named("solarized").is_none());
    }

    /// default.yaml names every role, so no role is left unstyled by accident.
    #[test]
    fn default_yaml_names_every_role_once() {
        let doc = Doc::parse(BUILT_IN[0].1, "default").expect("parses");
        let Node::Map(entries) = &doc.root.value else {
            panic!("a map")
        };
        let names: Vec<String> = entries.iter().filter_map(|(k, _)| doc.text_of(k)).collect();
        assert_eq!(
            names, ROLES,
            "default.yaml lists every role, in ROLES' order"
        );
    }

    /// docs/themes.md describes every role.
    #[test]
    fn the_docs_describe_every_role() {
        let docs = include_str!("../../docs/themes.md");
        for role in ROLES {
            assert!(
                docs.contains(&format!("| `{role}` |")),
                "docs/themes.md lacks {role}"
            );
        }
    }

    /// The colours warroom drew before themes, role by role.
    #[test]
    fn the_default_theme_is_the_colours_as_they_were() {
        let t = Theme::default();
        assert_eq!(t.ok, Style::new().fg(Color::Green));
        assert_eq!(
            t.bad,
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            t.badge_failed,
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(t.key, Style::new().fg(Color::Black).bg(Color::Gray));
        assert_eq!(
            t.gauge(),
            Style::new().fg(Color::Magenta).bg(Color::DarkGray)
        );
        assert_eq!(t.gauge_empty_colour(), Color::DarkGray);
        assert_eq!(t.border, Style::new());
        assert_eq!(t.stale, Style::new().add_modifier(Modifier::DIM));
    }

    #[test]
    fn a_good_file_sets_its_roles_and_keeps_the_rest() {
        let (t, warnings) = parse(
            "# mine\nok: {fg: \"#00ff00\", bold: true}\nbad:\n  fg: 196\n  bg: black\n  underlined: true\nwarn: light_yellow\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            t.ok,
            Style::new()
                .fg(Color::Rgb(0, 255, 0))
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            t.bad,
            Style::new()
                .fg(Color::Indexed(196))
                .bg(Color::Black)
                .add_modifier(Modifier::UNDERLINED)
        );
        assert_eq!(t.warn, Style::new().fg(Color::LightYellow));
        assert_eq!(t.key, Theme::default().key);
    }

    #[test]
    fn an_unknown_role_is_a_warning_with_its_line() {
        let (t, warnings) = parse("ok: {fg: blue}\n\n\n\n\n\noks: {fg: green}\n");
        assert_eq!(t.ok, Style::new().fg(Color::Blue));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let text = warnings[0].to_string();
        assert!(
            text.starts_with("themes/x.yaml line 7: role \"oks\" is not a role (did you mean ok?"),
            "{text}"
        );
        assert!(text.contains("known: ok, warn, bad,"), "{text}");
    }

    #[test]
    fn a_bad_colour_is_a_warning_with_line_and_key_and_the_role_keeps_its_default() {
        let (t, warnings) = parse("bad: {fg: red}\n\nok:\n  fg: grene\n  bold: true\n");
        assert_eq!(t.ok, Theme::default().ok);
        assert_eq!(t.bad, Style::new().fg(Color::Red));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert_eq!((w.line, w.key.as_deref()), (Some(4), Some("ok.fg")));
        assert!(
            w.to_string()
                .starts_with("themes/x.yaml line 4, key ok.fg: \"grene\" is not a colour"),
            "{w}"
        );
    }

    #[test]
    fn other_mistakes_say_where_they_are() {
        let (t, warnings) = parse(
            "ok: {fg: green, blod: true}\nwarn: {bold: yes please}\nbad: [red]\nkey: {fg: 300}\nmuted:\n  fg: #778899\n",
        );
        assert_eq!(t, Theme::default());
        let texts: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 5, "{texts:#?}");
        assert!(
            texts[0]
                .contains("line 1, key ok.blod: \"blod\" is not a style key (did you mean bold?")
        );
        assert!(texts[1].contains("line 2, key warn.bold: is true or false, not text"));
        assert!(texts[2].contains("line 3, key bad: a style is a map"));
        assert!(texts[3].contains("line 4, key key.fg: 300 is not a colour"));
        assert!(
            texts[4]
                .contains("line 6, key muted.fg: has no colour (a #rrggbb colour must be quoted")
        );
    }

    #[test]
    fn a_file_that_does_not_parse_is_the_default_theme_and_one_warning() {
        let (t, warnings) = parse("ok: {fg: green\nbad: red\n");
        assert_eq!(t, Theme::default());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].line.is_some(), "{:?}", warnings[0]);
        assert!(warnings[0].message.ends_with("the default theme is used"));
        let (t, warnings) = parse("- ok\n- bad\n");
        assert_eq!(t, Theme::default());
        assert!(
            warnings[0].message.contains("a theme is a map"),
            "{warnings:?}"
        );
        // An unquoted #rrggbb in a flow map breaks the YAML itself: the warning says why.
        let (_, warnings) = parse("ok: {fg: #00ff00}\n");
        assert!(
            warnings[0].message.contains("must be quoted"),
            "{warnings:?}"
        );
    }

    #[test]
    fn extends_starts_from_the_named_theme() {
        let light = Theme::named("light").expect("built in");
        let (t, warnings) = parse("extends: light\nok: {fg: blue}\n");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(t.ok, Style::new().fg(Color::Blue));
        assert_eq!(t.bad, light.bad);
        assert_ne!(t.bad, Theme::default().bad);
        // A file, relative to the theme that extends it.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("base.yaml"),
            "extends: high-contrast\nwarn: 130\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("mine.yaml"), "extends: base.yaml\nok: 28\n")
            .expect("write");
        let (t, warnings) = Theme::load(&dir.path().join("mine.yaml"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(t.ok, Style::new().fg(Color::Indexed(28)));
        assert_eq!(t.warn, Style::new().fg(Color::Indexed(130)));
        assert_eq!(t.bad, Theme::named("high-contrast").expect("built in").bad);
        // A loop ends with a warning, not a stack overflow.
        std::fs::write(dir.path().join("loop.yaml"), "extends: loop.yaml\n").expect("write");
        let (_, warnings) = Theme::load(&dir.path().join("loop.yaml"));
        assert!(
            warnings.iter().any(|w| w.message.contains("a loop?")),
            "{warnings:?}"
        );
        let (t, warnings) = parse("extends: nowhere.yaml\nok: blue\n");
        assert_eq!(t.ok, Style::new().fg(Color::Blue));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].key.as_deref(), Some("extends"));
    }

    #[test]
    fn choose_takes_a_built_in_name_or_a_file() {
        assert_eq!(
            Theme::choose("colorblind", None).0,
            Theme::named("colorblind").expect("built in")
        );
        let (t, warnings) = Theme::choose("no/such/theme.yaml", None);
        assert_eq!(t, Theme::default());
        assert!(
            warnings[0]
                .to_string()
                .starts_with("no/such/theme.yaml: cannot read the theme"),
            "{warnings:?}"
        );
    }

    #[test]
    fn colours_read_every_way_the_docs_say() {
        for (text, colour) in [
            ("dark_gray", Color::DarkGray),
            ("darkgray", Color::DarkGray),
            ("Dark-Grey", Color::DarkGray),
            ("light_red", Color::LightRed),
            ("bright_cyan", Color::LightCyan),
            ("gray", Color::Gray),
            ("#0a0B0c", Color::Rgb(10, 11, 12)),
            ("208", Color::Indexed(208)),
            ("reset", Color::Reset),
        ] {
            assert_eq!(parse_colour(text), Some(colour), "{text}");
        }
        for bad in ["", "#12345", "#ggggg0", "256", "orange", "#ééé"] {
            assert_eq!(parse_colour(bad), None, "{bad}");
        }
    }

    /// Where a role sets both colours they differ, and the roles that carry text on a
    /// background set both.
    #[test]
    fn every_built_in_theme_has_visible_contrast() {
        let on_background = [
            "title",
            "badge_running",
            "badge_paused",
            "badge_complete",
            "badge_failed",
            "alarm",
            "banner",
            "drill",
            "journal_error",
            "key",
            "key_urgent",
            "key_yes",
        ];
        for (name, _) in BUILT_IN {
            let theme = Theme::named(name).expect("built in");
            for role in ROLES {
                let style = theme.role(role).expect("a role");
                if let (Some(fg), Some(bg)) = (style.fg, style.bg) {
                    assert_ne!(fg, bg, "{name}: {role} is {fg:?} on {bg:?}");
                }
            }
            for role in on_background {
                let style = theme.role(role).expect("a role");
                assert!(
                    style.fg.is_some() && style.bg.is_some(),
                    "{name}: {role} sets fg and bg: {style:?}"
                );
            }
            let gauge = theme.gauge();
            assert_ne!(gauge.fg, gauge.bg, "{name}: the gauge");
            assert_ne!(theme.gauge_label.fg, gauge.bg, "{name}: the gauge's label");
        }
    }

    /// Light: no white or yellow text straight on the (light) page.
    #[test]
    fn the_light_theme_has_no_pale_text_on_the_page() {
        let light = Theme::named("light").expect("built in");
        let pale = [
            Color::White,
            Color::Yellow,
            Color::LightYellow,
            Color::Gray,
            Color::LightCyan,
            Color::LightGreen,
        ];
        for role in ROLES {
            let style = light.role(role).expect("a role");
            if style.bg.is_none() && !style.add_modifier.contains(Modifier::REVERSED) {
                assert!(
                    !style.fg.is_some_and(|c| pale.contains(&c)),
                    "light: {role} is {style:?}"
                );
            }
        }
    }

    /// High contrast: no dark grey or dimmed text.
    #[test]
    fn the_high_contrast_theme_has_no_dark_grey_text() {
        let hc = Theme::named("high-contrast").expect("built in");
        for role in ROLES {
            let style = hc.role(role).expect("a role");
            assert_ne!(style.fg, Some(Color::DarkGray), "high-contrast: {role}");
            assert!(
                !style.add_modifier.contains(Modifier::DIM),
                "high-contrast: {role}"
            );
        }
    }

    /// Colour-blind: no red and no green anywhere, so no red/green pair can carry meaning.
    #[test]
    fn the_colorblind_theme_uses_neither_red_nor_green() {
        let cb = Theme::named("colorblind").expect("built in");
        let red_or_green = |c: Color| {
            matches!(
                c,
                Color::Red
                    | Color::Green
                    | Color::LightRed
                    | Color::LightGreen
                    | Color::Indexed(1 | 2 | 9 | 10)
            )
        };
        for role in ROLES {
            let style = cb.role(role).expect("a role");
            for c in [style.fg, style.bg].into_iter().flatten() {
                assert!(!red_or_green(c), "colorblind: {role} uses {c:?}");
            }
        }
    }

    /// Garbage never panics: it is the default theme and warnings.
    #[test]
    fn garbage_never_panics() {
        let samples = [
            "",
            "\0\u{1}\u{2}",
            "{{{{",
            "ok: {fg: [1, {2: 3}]}",
            "ok: &a {fg: *a}",
            "? [a, b]\n: c",
            "ok: {fg: 99999999999999999999999999999}",
            "ok: {fg: -1}",
            "ok: {fg: 1.5}",
            "extends: [default]\n",
            "extends: \"\"\n",
            "extends: /\n",
            "ok: {fg: \"#\"}\n",
            "ok: !!binary aGVsbG8=\n",
            "---\n---\n",
            "ok:\n\t fg: red\n",
            &"[".repeat(10_000),
            &"a:\n ".repeat(2_000),
        ];
        for text in samples {
            let (_, _) = parse(text);
        }
        // And bytes from a fixed pseudo-random walk over characters YAML cares about.
        let alphabet: Vec<char> = "ok:{}[]#\"'-,\n\t &*!|>?%@`fgbd0123456789red"
            .chars()
            .collect();
        let mut seed: u64 = 0x5eed;
        for _ in 0..300 {
            let text: String = (0..64)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()]
                })
                .collect();
            let (_, _) = parse(&text);
        }
    }
}
