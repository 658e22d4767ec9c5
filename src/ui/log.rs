//! The event/audit log: newest at the bottom, coloured by level.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::format;
use crate::app::App;
use crate::app::model::Level;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let rows = usize::from(area.height.saturating_sub(2));
    let back = app.view.log_back.min(app.log.len().saturating_sub(1));
    let end = app.log.len() - back;
    let skip = end.saturating_sub(rows);
    let lines: Vec<Line> = app
        .log
        .iter()
        .take(end)
        .skip(skip)
        .map(|l| {
            let theme = &app.theme;
            // Warnings and errors are marked by a symbol too, not by colour alone (unless the
            // line starts with one of its own, as `✗ step: why` does).
            let (mark, style) = match l.level {
                Level::Info => ("", Style::new()),
                Level::Operator => ("", theme.info),
                Level::Warn => ("⚠ ", theme.warn),
                Level::Error => ("✗ ", theme.bad),
            };
            let mark = if l.text.starts_with(|c: char| c.is_ascii()) {
                mark
            } else {
                ""
            };
            Line::from(vec![
                Span::styled(format::clock(l.at, &app.tz), theme.muted),
                Span::raw(" "),
                Span::styled(format!("{mark}{}", l.text), style),
            ])
        })
        .collect();
    let title = if back > 0 {
        format!(" Log — {back} line(s) back, End follows ")
    } else {
        " Log ".to_string()
    };
    let block = super::panel(app, crate::app::modal::Focus::Log, title);
    super::cells::paragraph_in(frame.buffer_mut(), area, block, &lines);
}
