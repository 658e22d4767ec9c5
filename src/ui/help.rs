//! The `?` help overlay and the key bar, both drawn from the keymap's one table.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::app::keymap::{KEY_BAR, KEYS, OBSERVER_KEYS};

/// The key bar; `x` is shown only while a rollback countdown runs, when it is the key that
/// matters most after `!`.
pub fn render_key_bar(frame: &mut Frame, area: Rect, countdown: bool) {
    let mut spans = Vec::new();
    for (key, what) in KEY_BAR.iter().filter(|(k, _)| countdown || *k != "x") {
        let key_style = if *key == "!" || *key == "x" {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Black).bg(Color::Gray)
        };
        spans.push(Span::styled(format!(" {key} "), key_style));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// An observer's key bar: its only keys, and why the others are missing.
pub fn render_observer_key_bar(frame: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for (key, what) in OBSERVER_KEYS {
        let what = what.split([' ', ':']).next().unwrap_or(what);
        spans.push(Span::styled(
            format!(" {key} "),
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    spans.push(Span::styled(
        " read-only: the run is changed only at its own console",
        Style::new().add_modifier(Modifier::BOLD),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The open `:` command line, in place of the key bar.
pub fn render_command_line(frame: &mut Frame, area: Rect, line: &str) {
    let spans = vec![
        Span::styled(
            format!(":{line}█"),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "   Enter runs · Esc closes · skip REASON · window override REASON · ! still rolls back",
            Style::new().fg(Color::Gray),
        ),
    ];
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The help overlay; an observer's lists its own keys and says the rest are read-only.
pub fn render_help(frame: &mut Frame, area: Rect, observer: bool) {
    let (keys, footer) = if observer {
        (
            OBSERVER_KEYS,
            " read-only: n p + - ! x : only say what they would do here",
        )
    } else {
        (KEYS, " ? or Esc closes this help; ! works here too")
    };
    let width = 72.min(area.width);
    let log_line = u16::from(crate::logging::path().is_some());
    let height = (keys.len() as u16 + 4 + log_line).min(area.height);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(popup);
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {key:<5}"),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        footer,
        Style::new().fg(Color::DarkGray),
    )));
    if let Some(log) = crate::logging::path() {
        lines.push(Line::from(Span::styled(
            format!(" log file: {}", log.display()),
            Style::new().fg(Color::DarkGray),
        )));
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys ")),
        popup,
    );
}
