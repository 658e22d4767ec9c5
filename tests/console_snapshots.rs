//! The console's states at the three sizes it must work at (80×24, 120×40, 200×60), checked by
//! insta: a healthy canary, a breach with its countdown, a rollback under way, a failed
//! rollback, help, the rollback menu, a question before a change, the command line, and the
//! whole screen without colour. Each snapshot is the text; the one for NO_COLOR also marks
//! bold and reverse cells, which is what carries the state there.

mod common;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Modifier;

use warroom::app::App;

use common::screens::{breach_app, draw, healthy_app, key, rollback_failed_app, rolling_back_app};

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

fn check(name: &str, app: &App, must: &[&str]) {
    for (w, h) in SIZES {
        let screen = draw(app, w, h);
        for text in must {
            assert!(
                screen.contains(text),
                "{name} {w}x{h} lacks {text:?}:\n{screen}"
            );
        }
        // `!` and the state never leave the screen, whatever its size.
        assert!(
            screen.contains("!  "),
            "{name} {w}x{h}: no ! key:\n{screen}"
        );
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen);
    }
}

#[test]
fn healthy_canary() {
    check("healthy", &healthy_app(), &["RUNNING", "canary 0%"]);
}

#[test]
fn breach_with_countdown() {
    check(
        "breach",
        &breach_app(),
        &["ROLLBACK IMMEDIATE IN", "CANCEL AUTO-ROLLBACK"],
    );
}

#[test]
fn rollback_in_progress() {
    check("rolling_back", &rolling_back_app(), &["ROLLING BACK"]);
}

#[test]
fn rollback_failed() {
    check(
        "rollback_failed",
        &rollback_failed_app(),
        &["ROLLBACK FAILED"],
    );
}

#[test]
fn help_screen() {
    let mut app = healthy_app();
    key(&mut app, KeyCode::Char('?'));
    check("help", &app, &["Keys", "IMMEDIATE ROLLBACK"]);
}

#[test]
fn rollback_menu() {
    let mut app = healthy_app();
    key(&mut app, KeyCode::Char('r'));
    check("rollback_menu", &app, &["Rollback", "IMMEDIATE"]);
}

#[test]
fn confirm_dialog() {
    let mut app = healthy_app();
    key(&mut app, KeyCode::Char('r'));
    key(&mut app, KeyCode::Enter);
    check("confirm", &app, &["Confirm", "run the immediate rollback"]);
}

#[test]
fn command_line() {
    let mut app = healthy_app();
    key(&mut app, KeyCode::Char(':'));
    for c in "weight 35".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    check(
        "command_line",
        &app,
        &[":weight 35", "set canary weight 0% → 35%"],
    );
}

/// Under NO_COLOR: the text, with `[` `]` around the runs of bold-and-reversed cells, so the
/// snapshot shows what stands out without colour.
#[test]
fn no_color() {
    let app = rolling_back_app();
    for (w, h) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        terminal
            .draw(|frame| warroom::ui::render_with(&app, frame, true))
            .expect("draws");
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..h {
            let mut marked = false;
            for x in 0..w {
                let cell = &buffer[(x, y)];
                let strong = cell.modifier.contains(Modifier::REVERSED);
                if strong != marked {
                    text.push(if strong { '[' } else { ']' });
                    marked = strong;
                }
                text.push_str(cell.symbol());
            }
            if marked {
                text.push(']');
            }
            text.push('\n');
        }
        assert!(text.contains("] [ ROLLING BACK"), "{text}");
        insta::assert_snapshot!(format!("no_color_{w}x{h}"), text);
    }
}
