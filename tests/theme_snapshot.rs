//! The healthy dashboard at 120×40 in each built-in theme, and under NO_COLOR, checked by insta
//! with the styles of every styled run of cells (text alone would be the same in every theme).
//! And the config file's keys on the key bar and in `?` help.

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier, Style};

use warroom::app::{Action, App, update};
use warroom::ui::theme::{BUILT_IN, Theme};

use common::screens::healthy_app;

fn buffer(app: &App, monochrome: bool) -> Buffer {
    buffer_at(app, monochrome, 120, 40)
}

fn buffer_at(app: &App, monochrome: bool, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| warroom::ui::render_with(app, frame, monochrome))
        .expect("draws");
    terminal.backend().buffer().clone()
}

fn colour(c: Color) -> String {
    match c {
        Color::Indexed(n) => format!("#{n}"),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        other => format!("{other:?}"),
    }
}

fn describe(style: Style) -> String {
    let mut out = String::new();
    if let Some(fg) = style.fg.filter(|c| *c != Color::Reset) {
        out.push_str(&colour(fg));
    }
    if let Some(bg) = style.bg.filter(|c| *c != Color::Reset) {
        let _ = write!(out, " on {}", colour(bg));
    }
    for (m, name) in [
        (Modifier::BOLD, "bold"),
        (Modifier::DIM, "dim"),
        (Modifier::ITALIC, "italic"),
        (Modifier::UNDERLINED, "underlined"),
        (Modifier::REVERSED, "reversed"),
    ] {
        if style.add_modifier.contains(m) {
            let _ = write!(out, " {name}");
        }
    }
    out.trim().to_string()
}

/// Every row's text, and under it each run of cells with one style other than the plain one:
/// `  12..21 Black on Green bold " RUNNING "`. The health panel's sparklines (not themed yet)
/// are left out, so the snapshot is about what the theme draws.
fn styled(buffer: &Buffer) -> String {
    let mut out = String::new();
    let area = buffer.area;
    for y in 0..area.height {
        let cells: Vec<_> = (0..area.width).map(|x| &buffer[(x, y)]).collect();
        let text: String = cells.iter().map(|c| c.symbol()).collect();
        let _ = writeln!(out, "{y:02} {text}");
        let mut x = 0;
        while x < cells.len() {
            let style = cells[x].style();
            let start = x;
            while x < cells.len() && cells[x].style() == style {
                x += 1;
            }
            let run: String = cells[start..x].iter().map(|c| c.symbol()).collect();
            let sparkline = run.chars().any(|c| ('▁'..='█').contains(&c) && c != '█');
            let described = describe(style);
            if !described.is_empty() && !sparkline {
                let _ = writeln!(out, "     {start}..{x} {described} {run:?}");
            }
        }
    }
    out
}

#[test]
fn healthy_dashboard_in_every_theme() {
    let mut seen = Vec::new();
    for (name, _) in BUILT_IN {
        let mut app = healthy_app();
        app.theme = Arc::new(Theme::named(name).expect("built in"));
        let screen = styled(&buffer(&app, false));
        insta::assert_snapshot!(format!("healthy_120x40_{name}"), screen);
        assert!(!seen.contains(&screen), "{name} draws like another theme");
        seen.push(screen);
        // The smallest and the largest screens the console is made for, in every theme too.
        for (w, h) in [(80, 24), (200, 60)] {
            let screen = styled(&buffer_at(&app, false, w, h));
            insta::assert_snapshot!(format!("healthy_{w}x{h}_{name}"), screen);
        }
    }
}

/// The default theme is the colours as they were: the status badge, the live dots, the key bar.
#[test]
fn default_theme_keeps_the_colours_as_they_were() {
    let b = buffer(&healthy_app(), false);
    let header: String = (0..120).map(|x| b[(x, 0)].symbol().to_string()).collect();
    let x = header.find(" RUNNING ").expect("status badge") as u16;
    assert_eq!((b[(x, 0)].fg, b[(x, 0)].bg), (Color::Black, Color::Green));
    assert_eq!((b[(1, 0)].fg, b[(1, 0)].bg), (Color::Black, Color::White));
    let sources: String = (0..120).map(|x| b[(x, 1)].symbol().to_string()).collect();
    let dot = sources.find("●").expect("a dot");
    let dot = sources[..dot].chars().count() as u16;
    assert_eq!(b[(dot, 1)].fg, Color::Green);
}

#[test]
fn no_color_in_every_theme_is_bold_and_reverse_only() {
    let mut screens = Vec::new();
    for (name, _) in BUILT_IN {
        let mut app = healthy_app();
        app.theme = Arc::new(Theme::named(name).expect("built in"));
        let b = buffer(&app, true);
        assert!(
            b.content
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "{name}: no colour anywhere"
        );
        // The gauge's empty part stays a blank row, not a reversed bar, whatever its colour.
        let gauge = &b[(60, 3)];
        assert!(
            !gauge.modifier.contains(Modifier::REVERSED),
            "{name}: the gauge is not reversed: {gauge:?}"
        );
        // The status badge still stands out.
        let header: String = (0..120).map(|x| b[(x, 0)].symbol().to_string()).collect();
        let x = header.find(" RUNNING ").expect("status badge") as u16;
        assert!(
            b[(x + 1, 0)].modifier.contains(Modifier::REVERSED),
            "{name}: the badge is reversed"
        );
        screens.push((name, styled(&b)));
    }
    let (_, default) = &screens[0];
    insta::assert_snapshot!("healthy_120x40_no_color", default);
}

/// The config file's `keys:` reach the key bar and `?` help.
#[test]
fn remapped_keys_show_on_the_key_bar_and_in_help() {
    let settings = warroom::config::Settings::parse(
        "keys:\n  advance: N\n  rollback_menu: [R, f2]\n  help: h\n",
        std::path::Path::new("config.yaml"),
        None,
    );
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
    let mut app = healthy_app();
    app.keymap = settings.keymap.clone();
    let text = |b: &Buffer| -> String {
        (0..b.area.height)
            .map(|y| {
                (0..b.area.width)
                    .map(|x| b[(x, y)].symbol().to_string())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    };
    let screen = text(&buffer(&app, false));
    let bar: String = screen.lines().skip(38).collect::<Vec<_>>().join("\n");
    assert!(bar.contains(" N  pass check"), "{bar}");
    assert!(bar.contains(" h  help"), "{bar}");
    assert!(bar.contains(" R  rollback tiers"), "{bar}");
    assert!(!bar.contains(" n  "), "{bar}");
    // `h` opens help now, and help lists the keys as bound.
    update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('h'), KeyModifiers::NONE)),
    );
    let screen = text(&buffer(&app, false));
    assert!(screen.contains(" N         advance"), "{screen}");
    assert!(screen.contains(" R f2      rollback menu"), "{screen}");
}
