//! Drawing: `render(&App, &mut Frame)` and one file per panel. Plan on the left; traffic,
//! health and pods stacked on the right, so the pod table gets the width it needs.
//! Pure: reads the app, never changes it, does no IO.

mod format;
mod header;
mod help;
mod log;
mod metrics;
mod modal;
mod plan;
mod pods;
pub mod theme;
mod traffic;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders};

use crate::app::App;

const TRAFFIC_ROWS: u16 = 5;
/// The pod table keeps at least a header and three pods before charts get their full size.
const MIN_POD_ROWS: u16 = 6;

/// Whether colour is off (`NO_COLOR` set and not empty, as no-color.org says).
pub fn no_color() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()))
}

/// Draws the whole console, without colour under `NO_COLOR`.
pub fn render(app: &App, frame: &mut Frame) {
    render_with(app, frame, no_color());
}

/// Draws the whole console; `monochrome` takes every colour out and keeps bold, reverse and
/// the rest. A cell on a coloured background — a badge such as ` ROLLED BACK ` — becomes
/// reverse video, so what colour marked still stands out; the gauge keeps its blocks.
pub fn render_with(app: &App, frame: &mut Frame, monochrome: bool) {
    draw(app, frame);
    if monochrome {
        use ratatui::style::{Color, Modifier};
        // The gauge's empty colour (dark grey in the default theme) is a fill, not a badge:
        // reversing it would draw the gauge backwards.
        let fill = app.theme.gauge_empty_colour();
        for cell in frame.buffer_mut().content.iter_mut() {
            if cell.bg != Color::Reset && cell.bg != fill {
                cell.modifier |= Modifier::REVERSED;
            }
            cell.fg = Color::Reset;
            cell.bg = Color::Reset;
        }
    }
}

/// A panel's box; the focused one (where the arrow and vim keys act) has a double border and
/// says so in its title.
pub(crate) fn panel<'a>(app: &App, focus: crate::app::modal::Focus, title: String) -> Block<'a> {
    let focused = app.view.focus == focus && app.mode != crate::app::model::Mode::Headless;
    let block = Block::default().borders(Borders::ALL);
    if focused {
        block
            .border_type(BorderType::Double)
            .border_style(app.theme.border_focus)
            .title(Span::styled(
                format!("{title}◂ "),
                Style::new().add_modifier(Modifier::BOLD),
            ))
    } else {
        block.border_style(app.theme.border).title(title)
    }
}

/// Narrow terminals drop the side columns to rows.
fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let log_rows = if area.height >= 36 { 8 } else { 6 };
    let key_rows = if area.height >= 30 { 2 } else { 1 };
    let [header, body, log_area, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(8),
        Constraint::Length(log_rows),
        Constraint::Length(key_rows),
    ])
    .areas(area);
    header::render(app, frame, header);

    let plan_width = if area.width >= 110 { 32 } else { 26 };
    let [left, centre] =
        Layout::horizontal([Constraint::Length(plan_width), Constraint::Min(30)]).areas(body);
    plan::render(app, frame, left);
    let full = metrics::full_height(app);
    let metric_rows = if body.height >= TRAFFIC_ROWS + full + MIN_POD_ROWS {
        full
    } else {
        metrics::compact_height(app)
    };
    let [traffic_area, metrics_area, pods_area] = Layout::vertical([
        Constraint::Length(TRAFFIC_ROWS),
        Constraint::Length(metric_rows),
        Constraint::Min(3),
    ])
    .areas(centre);
    traffic::render(app, frame, traffic_area);
    metrics::render(app, frame, metrics_area);
    pods::render(app, frame, pods_area);
    log::render(app, frame, log_area);
    help::render_key_bar(app, frame, keys);
    let above_keys = Rect {
        height: area.height.saturating_sub(key_rows),
        ..area
    };
    modal::render(app, frame, above_keys);
}
