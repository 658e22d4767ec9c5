//! The key bar and the `?` help, both drawn from the keymap as bound and from what each key does
//! now (`app::hints`). Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::app::App;
use crate::app::hints::{self, HintState};
use crate::app::keymap::{COMMANDS, Command};
use crate::app::model::Mode;

/// The longest text one key gets in the bar, so the keys after it still fit.
const HINT_WIDTH: usize = 34;

/// The key bar: what each key does now, `!` first; a key that does nothing says why, dimmed;
/// a fresh notice (the answer to a key that did nothing) follows the urgent keys. Hints that do
/// not fit a row go to the next one, if the bar has one; the rest are in `?` help.
pub fn render_key_bar(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let bar = hints::key_bar(app);
    // The notice goes after `!` and an urgent `x`; an observer has neither.
    let urgent = if app.mode == Mode::Observer {
        0
    } else {
        1 + bar
            .iter()
            .skip(1)
            .take_while(|h| h.state == HintState::Urgent)
            .count()
    };
    let mut items: Vec<Vec<Span>> = Vec::new();
    for (i, h) in bar.iter().enumerate() {
        if i == urgent {
            if let Some(text) = hints::notice(app) {
                items.push(vec![Span::styled(
                    format!("» {} ", super::format::cut_end(text, 72)),
                    theme.notice,
                )]);
            }
        }
        let (key_style, text_style) = match h.state {
            HintState::Urgent => (theme.key_urgent, Style::new().add_modifier(Modifier::BOLD)),
            HintState::Ready => (theme.key, Style::new()),
            HintState::Unavailable => (theme.key_unavailable, theme.muted),
        };
        let mut item = Vec::new();
        if !h.key.is_empty() {
            item.push(Span::styled(format!(" {} ", h.key), key_style));
            item.push(Span::raw(" "));
        }
        let width = if h.key.is_empty() { 72 } else { HINT_WIDTH };
        item.push(Span::styled(
            super::format::cut_end(&h.text, width),
            text_style,
        ));
        items.push(item);
    }
    let width = usize::from(area.width);
    let rows = usize::from(area.height.max(1));
    let mut lines: Vec<Vec<Span>> = vec![Vec::new()];
    let mut used = 0;
    for item in items {
        let len: usize = item.iter().map(|s| s.width()).sum::<usize>() + 2;
        if used > 0 && used + len > width && lines.len() < rows {
            lines.push(Vec::new());
            used = 0;
        }
        let line = lines.last_mut().expect("one line at least");
        line.extend(item);
        line.push(Span::raw("  "));
        used += len;
    }
    let lines: Vec<Line> = lines.into_iter().map(Line::from).collect();
    super::cells::paragraph(frame.buffer_mut(), area, &lines);
}

/// The help overlay: every key as bound and what it is for; for the keys that change the run,
/// what each does now.
pub fn render_help(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let observer = app.mode == Mode::Observer;
    let width = 100.min(area.width);
    let inner = usize::from(width.saturating_sub(2));
    let keys_of = |command: Command| {
        app.keymap
            .keys_of(command)
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let heading = |text: &'static str| {
        Line::from(Span::styled(
            text,
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        ))
    };
    let mut lines: Vec<Line> = Vec::new();
    let (run, screen): (Vec<Command>, Vec<Command>) = COMMANDS
        .into_iter()
        .filter(|c| *c != Command::Drills || app.drills.is_some())
        .partition(|c| c.would().is_some());
    if !observer {
        lines.push(heading(" the run"));
        for command in run {
            let keys = keys_of(command);
            let mut spans = vec![
                Span::styled(
                    format!(" {keys:<9} "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("{:<47}", command.describe())),
            ];
            if let Some(now) = hints::now_for(app, command) {
                let room = inner.saturating_sub(58);
                spans.push(Span::styled(super::format::cut_end(&now, room), theme.info));
            }
            lines.push(Line::from(spans));
        }
    }
    lines.push(heading(" the screen"));
    for pair in screen.chunks(2) {
        let mut spans = Vec::new();
        for command in pair {
            let keys = keys_of(*command);
            spans.push(Span::styled(
                format!(" {keys:<12}"),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!("{:<37}", command.describe())));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    let footer = if observer {
        " read-only: the keys that change a run only say what they would do here"
    } else {
        " a change asks y in a high-risk phase or a production environment; ! never asks"
    };
    lines.push(Line::from(Span::styled(footer, theme.muted)));
    lines.push(Line::from(Span::styled(
        if observer {
            " Esc or ? closes this help"
        } else {
            " Esc or ? closes this help; ! and x work here too"
        },
        theme.muted,
    )));
    if let Some(log) = crate::logging::path() {
        lines.push(Line::from(Span::styled(
            format!(" log file: {}", log.display()),
            theme.muted,
        )));
    }
    let height = (u16::try_from(lines.len()).unwrap_or(u16::MAX))
        .saturating_add(2)
        .min(area.height);
    let popup = centred(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(" Keys "),
        ),
        popup,
    );
}

/// A `width`×`height` box in the middle of `area`.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let [popup] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(popup);
    popup
}
