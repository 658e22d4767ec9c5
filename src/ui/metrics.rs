//! The health panel: one sparkline per metric and track, the latest value and the threshold.
//! A breached threshold turns the metric red. Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar};

use super::format;
use super::traffic::track_color;
use crate::app::App;
use crate::plan::TrackName;

/// Sparklines draw integers; values are scaled by this before rounding.
const SCALE: f64 = 1_000_000.0;

/// Rows the panel needs with a sparkline per track, borders included.
pub fn full_height(app: &App) -> u16 {
    let n = u16::try_from(app.plan.metrics.queries.len()).unwrap_or(u16::MAX);
    let each = 1 + app.plan.tracks().len() as u16;
    n.saturating_mul(each).saturating_add(2)
}

/// Rows the panel needs with one line per metric, borders included.
pub fn compact_height(app: &App) -> u16 {
    let n = u16::try_from(app.plan.metrics.queries.len()).unwrap_or(u16::MAX);
    n.max(1).saturating_add(2)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let stale = !app.metrics.health.is_live();
    let title = if stale {
        " Health — stale "
    } else {
        " Health "
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let metrics: Vec<&String> = app.plan.metrics.queries.keys().collect();
    if metrics.is_empty() {
        frame.render_widget(Paragraph::new("no metrics.queries in the plan"), inner);
        return;
    }
    let tracks = app.plan.tracks();
    // Every metric gets all its rows or none: a squeezed layout would put one metric's value
    // under another's heading.
    if area.height >= full_height(app) {
        let rows_each = 1 + tracks.len() as u16;
        let areas = Layout::vertical(
            metrics
                .iter()
                .map(|_| Constraint::Length(rows_each))
                .collect::<Vec<_>>(),
        )
        .split(inner);
        for (metric, area) in metrics.iter().zip(areas.iter()) {
            render_metric(app, frame, *area, metric, tracks, stale);
        }
    } else {
        let lines: Vec<Line> = metrics
            .iter()
            .map(|m| compact_line(app, m, tracks, stale))
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// `error_rate  stable 0.26%  canary 0.39%  max 5.00%` on one line.
fn compact_line<'a>(app: &App, metric: &str, tracks: &[TrackName], stale: bool) -> Line<'a> {
    let threshold = app.plan.metrics.thresholds.get(metric).copied();
    let mut spans = vec![Span::styled(
        format!("{metric:<12}"),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for track in tracks {
        let value = latest(app, metric, *track);
        let mut style = match value {
            Some(_) if is_breach(app, metric, *track) => {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            }
            None => Style::new().fg(Color::DarkGray),
            _ => Style::new(),
        };
        if stale {
            style = style.add_modifier(Modifier::DIM);
        }
        spans.push(Span::styled(
            format!(" {} ", track.as_str()),
            Style::new().fg(track_color(*track)),
        ));
        spans.push(Span::styled(format::value(metric, value), style));
    }
    if let Some(max) = threshold.and_then(|t| t.max) {
        spans.push(Span::raw(format!(
            "  max {}",
            format::value(metric, Some(max))
        )));
    }
    Line::from(spans)
}

/// The engine's verdict, not the panel's own reading of the threshold.
fn is_breach(app: &App, metric: &str, track: TrackName) -> bool {
    matches!(
        app.deployment
            .analysis
            .latest
            .get(&(metric.to_string(), track)),
        Some(crate::engine::Finding::Breach(_))
    )
}

fn latest(app: &App, metric: &str, track: TrackName) -> Option<f64> {
    app.metrics
        .series
        .get(&(metric.to_string(), track))
        .and_then(|s| s.latest())
        .and_then(|p| p.value)
}

fn render_metric(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    metric: &str,
    tracks: &[TrackName],
    stale: bool,
) {
    let threshold = app.plan.metrics.thresholds.get(metric).copied();
    let latest = |track: TrackName| latest(app, metric, track);
    let breached = tracks.iter().any(|track| is_breach(app, metric, *track));
    let mut title = vec![Span::styled(
        metric.to_string(),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if let Some(t) = threshold {
        if let Some(max) = t.max {
            title.push(Span::raw(format!(
                "  max {}",
                format::value(metric, Some(max))
            )));
        }
        if let Some(min) = t.min {
            title.push(Span::raw(format!(
                "  min {}",
                format::value(metric, Some(min))
            )));
        }
    }
    if breached {
        title.push(Span::styled(
            "  BREACH",
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let mut rows = vec![Constraint::Length(1)];
    rows.extend(tracks.iter().map(|_| Constraint::Length(1)));
    let lines = Layout::vertical(rows).split(area);
    frame.render_widget(Paragraph::new(Line::from(title)), lines[0]);

    // One scale for both tracks, so the lines compare by eye; the threshold is shown as a
    // number, since scaling to it would flatten every healthy line to the floor.
    let top = tracks
        .iter()
        .filter_map(|t| app.metrics.series.get(&(metric.to_string(), *t)))
        .filter_map(|s| s.max())
        .fold(0.0_f64, f64::max);
    let max = ((top * SCALE).ceil() as u64).max(1);

    for (track, line) in tracks.iter().zip(lines.iter().skip(1)) {
        let value = latest(*track);
        let value_text = format!("{:>9}", format::value(metric, value));
        let [label_area, spark_area, value_area] = Layout::horizontal([
            Constraint::Length(7),
            Constraint::Min(4),
            Constraint::Length(10),
        ])
        .areas(*line);
        let mut style = Style::new().fg(track_color(*track));
        if stale {
            style = style.add_modifier(Modifier::DIM);
        }
        frame.render_widget(
            Paragraph::new(Span::styled(track.as_str(), style)),
            label_area,
        );
        let width = usize::from(spark_area.width);
        let bars: Vec<SparklineBar> =
            app.metrics
                .series
                .get(&(metric.to_string(), *track))
                .map(|s| {
                    let skip = s.len().saturating_sub(width);
                    // Newest sample at the right edge; the empty start is blank, while a real gap
                    // in the data is drawn as a dot.
                    let pad = width.saturating_sub(s.len());
                    std::iter::repeat_n(SparklineBar::from(Some(0)), pad)
                        .chain(s.points().skip(skip).map(|p| {
                            SparklineBar::from(p.value.map(|v| (v.max(0.0) * SCALE) as u64))
                        }))
                        .collect()
                })
                .unwrap_or_default();
        frame.render_widget(
            Sparkline::default()
                .data(bars)
                .max(max)
                .style(style)
                .absent_value_symbol("·"),
            spark_area,
        );
        let value_style = match value {
            Some(_) if is_breach(app, metric, *track) => {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            }
            None => Style::new().fg(Color::DarkGray),
            _ => Style::new(),
        };
        frame.render_widget(
            Paragraph::new(Span::styled(value_text, value_style)),
            value_area,
        );
    }
}
