//! Drawing: `render(&App, &mut Frame)` and one file per panel. Plan on the left; traffic,
//! health and pods stacked on the right, so the pod table gets the width it needs.
//! Pure: reads the app, never changes it, does no IO.

mod big;
mod cells;
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
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders, Clear};

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
        take_colour_out(app, frame.buffer_mut());
    }
}

/// Draws again, over `last`, only what the clock moves: the frame `render_with` would draw for
/// `app`, when `last` is the frame drawn for the same app (nothing but `app.now` changed since)
/// at the same size. The header (clock, status, countdown), the plan (a hold's time left), the
/// Health panel (the countdown's digits) and the key bar (`x`'s seconds, a notice that expires)
/// are drawn anew; the pod table only when `ages_changed`, its AGE column being the one thing
/// in it the clock moves; the modals again on top. Traffic and log are kept as they were: they
/// never read the clock (a test below holds them to that).
pub fn render_clock(
    app: &App,
    frame: &mut Frame,
    monochrome: bool,
    last: &Buffer,
    ages_changed: bool,
) {
    let buffer = frame.buffer_mut();
    if buffer.area != last.area {
        // Not the frame it was meant to patch: draw it all.
        render_with(app, frame, monochrome);
        return;
    }
    buffer.clone_from(last);
    let areas = Areas::of(app, frame.area());
    // A widget draws over what is there; each panel starts from blank cells, as in a full frame.
    frame.render_widget(Clear, areas.header);
    header::render(app, frame, areas.header);
    frame.render_widget(Clear, areas.plan);
    plan::render(app, frame, areas.plan);
    frame.render_widget(Clear, areas.metrics);
    metrics::render(app, frame, areas.metrics);
    if ages_changed {
        frame.render_widget(Clear, areas.pods);
        pods::render(app, frame, areas.pods);
    }
    frame.render_widget(Clear, areas.keys);
    help::render_key_bar(app, frame, areas.keys);
    modal::render(app, frame, areas.above_keys);
    if monochrome {
        // Cells kept from `last` already are; taking colour out twice changes nothing.
        take_colour_out(app, frame.buffer_mut());
    }
}

/// What the pod table shows that the clock moves: each pod's age, as its AGE column says it.
pub fn pod_ages(app: &App) -> Vec<String> {
    app.cluster
        .pods
        .values()
        .map(|p| pods::age(p, app.now))
        .collect()
}

fn take_colour_out(app: &App, buffer: &mut Buffer) {
    use ratatui::layout::Position;
    use ratatui::style::{Color, Modifier};
    // The gauges' empty part (the weight gauge in the traffic panel, a metric's gauge in the
    // Health panel) is a fill, not a badge: reversing it would draw the gauge backwards. It is
    // told by its colour *and* its place, so a badge that happens to share the colour (in a
    // custom theme) still turns to reverse video.
    let fill = app.theme.gauge_empty_colour();
    let areas = Areas::of(app, buffer.area);
    let width = usize::from(buffer.area.width.max(1));
    let origin = (buffer.area.x, buffer.area.y);
    for (i, cell) in buffer.content.iter_mut().enumerate() {
        let at = Position {
            x: origin.0 + u16::try_from(i % width).unwrap_or(u16::MAX),
            y: origin.1 + u16::try_from(i / width).unwrap_or(u16::MAX),
        };
        let gauge = cell.bg == fill && (areas.traffic.contains(at) || areas.metrics.contains(at));
        if cell.bg != Color::Reset && !gauge {
            cell.modifier |= Modifier::REVERSED;
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

/// Where each panel goes. Narrow terminals drop the side columns to rows.
struct Areas {
    header: Rect,
    plan: Rect,
    traffic: Rect,
    metrics: Rect,
    pods: Rect,
    log: Rect,
    keys: Rect,
    /// Everything but the key bar: where modals go.
    above_keys: Rect,
}

impl Areas {
    fn of(app: &App, area: Rect) -> Areas {
        let log_rows = match area.height {
            36.. => 8,
            28..=35 => 6,
            _ => 5,
        };
        let key_rows = if area.height >= 30 { 2 } else { 1 };
        let [header, body, log, keys] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Min(8),
            Constraint::Length(log_rows),
            Constraint::Length(key_rows),
        ])
        .areas(area);
        let above_keys = Rect {
            height: area.height.saturating_sub(key_rows),
            ..area
        };
        let plan_width = if area.width >= 110 { 32 } else { 26 };
        let [plan, centre] =
            Layout::horizontal([Constraint::Length(plan_width), Constraint::Min(30)]).areas(body);
        let full = metrics::full_height(app);
        let metric_rows = if body.height >= TRAFFIC_ROWS + full + MIN_POD_ROWS {
            full
        } else {
            metrics::compact_height(app)
        };
        let [traffic, metrics, pods] = Layout::vertical([
            Constraint::Length(TRAFFIC_ROWS),
            Constraint::Length(metric_rows),
            Constraint::Min(3),
        ])
        .areas(centre);
        Areas {
            header,
            plan,
            traffic,
            metrics,
            pods,
            log,
            keys,
            above_keys,
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

fn draw(app: &App, frame: &mut Frame) {
    let areas = Areas::of(app, frame.area());
    header::render(app, frame, areas.header);
    plan::render(app, frame, areas.plan);
    traffic::render(app, frame, areas.traffic);
    metrics::render(app, frame, areas.metrics);
    pods::render(app, frame, areas.pods);
    log::render(app, frame, areas.log);
    help::render_key_bar(app, frame, areas.keys);
    modal::render(app, frame, areas.above_keys);
}

#[cfg(test)]
mod tests {
    /// `render_clock` draws the traffic panel and the log again only with the rest: they
    /// must not read the clock, or a clock-only frame would show it stale.
    #[test]
    fn panels_kept_on_a_clock_only_frame_never_read_the_clock() {
        for (file, source) in [
            ("traffic.rs", include_str!("traffic.rs")),
            ("log.rs", include_str!("log.rs")),
        ] {
            for clock in [".now", "::now", "SystemTime", "Instant", "headline("] {
                assert!(
                    !source.contains(clock),
                    "ui/{file} uses {clock}: draw it again in ui::render_clock"
                );
            }
        }
    }
}
