//! The health panel: per metric, a legend (name, threshold, the chart's top value) and a
//! two-row chart per track with the threshold drawn across it as a line; the latest value and
//! the engine's verdict in words beside it. The engine's verdict (`analysis.latest`), never the panel's own reading of a threshold,
//! decides what is red. A breach turns the panel red; a rollback countdown shows its seconds in
//! big digits. On a short screen, one line per metric with a small gauge. Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use super::format;
use crate::app::App;
use crate::app::model::Mode;
use crate::engine::{Countdown, Finding};
use crate::plan::{Threshold, TrackName};

use super::big;

// Every style of the panel, in one place for the theme that will replace them.

fn title_style() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}
fn breach_style(app: &App) -> Style {
    app.theme.breach
}
fn ok_style(app: &App) -> Style {
    app.theme.ok
}
fn no_data_style(app: &App) -> Style {
    app.theme.warn
}
fn muted_style(app: &App) -> Style {
    app.theme.muted
}
fn threshold_style(app: &App) -> Style {
    app.theme.threshold
}
/// The unfilled part of a compact gauge (the weight gauge's empty colour, so `NO_COLOR` keeps
/// it plain rather than reversed).
fn gauge_style(app: &App) -> Style {
    app.theme.gauge_empty
}
fn track_style(app: &App, track: TrackName) -> Style {
    match track {
        TrackName::Stable => app.theme.stable,
        TrackName::Canary => app.theme.canary,
    }
}
/// Everything drawn from data that is no longer live.
fn dimmed(style: Style, stale: bool) -> Style {
    if stale {
        style.add_modifier(Modifier::DIM)
    } else {
        style
    }
}

/// Rows of each track's chart in the full layout: two, so the threshold line has a row above
/// a healthy line (eight levels a row).
const CHART_ROWS: u16 = 2;
/// The chart's top is at least the threshold times this, so the threshold sits inside the chart
/// with room above it for what breaches.
const HEADROOM: f64 = 1.25;
/// Rows of a metric's legend (name, threshold, scale) and the columns it may take.
const LEGEND_ROWS: u16 = 3;
const LEGEND_MIN_COLS: usize = 15;
const LEGEND_MAX_COLS: usize = 18;
/// Columns left of a chart (the track's name) and right of it (value and verdict).
const LABEL_COLS: u16 = 7;
const VALUE_COLS: u16 = 11;
/// Columns around the charts: a legend of the narrowest kind and a gap, track names, values.
const CHART_FRAME_COLS: u16 = LEGEND_MIN_COLS as u16 + 1 + LABEL_COLS + VALUE_COLS;
/// The narrowest chart worth drawing beside a countdown.
const MIN_CHART_COLS: u16 = 24;
/// Widths of the countdown column beside the charts: narrow wraps its text, wide does not.
const SIDE_NARROW: u16 = 28;
const SIDE_WIDE: u16 = 44;
/// Rows of the countdown's big digits.
const BIG_ROWS: u16 = big::HEIGHT as u16;
/// The widest compact gauge.
const MAX_GAUGE: u16 = 16;

const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const HBARS: [char; 9] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
const THRESHOLD_LINE: char = '┄';
const THRESHOLD_MARK: char = '│';
const MISSING: char = '·';

/// Rows the panel needs with a chart per track, borders included.
pub fn full_height(app: &App) -> u16 {
    let n = u16::try_from(app.plan.metrics.queries.len()).unwrap_or(u16::MAX);
    let each = rows_per_metric(app.plan.tracks().len());
    n.max(1).saturating_mul(each).saturating_add(2)
}

/// Rows the panel needs with one line per metric, borders included, and a line for a running
/// rollback countdown.
pub fn compact_height(app: &App) -> u16 {
    let n = u16::try_from(app.plan.metrics.queries.len()).unwrap_or(u16::MAX);
    let countdown = u16::from(app.deployment.countdown.is_some());
    n.max(1).saturating_add(2).saturating_add(countdown)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let stale = !app.metrics.health.is_live();
    let metrics: Vec<&str> = app
        .plan
        .metrics
        .queries
        .keys()
        .map(String::as_str)
        .collect();
    let tracks = app.plan.tracks();
    let breach = app.deployment.countdown.is_some()
        || metrics.iter().any(|m| {
            tracks
                .iter()
                .any(|t| verdict(app, m, *t) == Verdict::Breach)
        });

    let mut title = vec![Span::raw(" Health ")];
    if breach {
        title.push(Span::styled("— ✗ BREACH ", breach_style(app)));
    }
    if stale {
        title.push(Span::raw("— stale "));
    }
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(title));
    if breach {
        block = block
            .border_type(BorderType::Thick)
            .border_style(breach_style(app));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if metrics.is_empty() {
        frame.render_widget(Paragraph::new("no metrics.queries in the plan"), inner);
        return;
    }
    // Every metric gets all its rows or none: a squeezed layout would put one metric's value
    // under another's heading.
    let full = area.height >= full_height(app);
    let n = u16::try_from(metrics.len()).unwrap_or(u16::MAX);
    match &app.deployment.countdown {
        None if full => render_charts(app, frame, inner, &metrics, stale),
        None => render_compact(app, frame, inner, &metrics, stale),
        Some(c) if full && inner.width >= SIDE_NARROW + CHART_FRAME_COLS + MIN_CHART_COLS => {
            let side = if inner.width >= SIDE_WIDE + CHART_FRAME_COLS + 2 * MIN_CHART_COLS {
                SIDE_WIDE
            } else {
                SIDE_NARROW
            };
            let [charts, side] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(side)]).areas(inner);
            render_charts(app, frame, charts, &metrics, stale);
            let side_block = Block::default()
                .borders(Borders::LEFT)
                .border_type(BorderType::Thick)
                .border_style(breach_style(app));
            let side_inner = side_block.inner(side);
            frame.render_widget(side_block, side);
            render_countdown(app, c, frame, side_inner);
        }
        // Too narrow to put the digits beside the charts: above the one-line form, if tall
        // enough.
        Some(c) if full && inner.height > n.saturating_add(BIG_ROWS) => {
            let [top, rest] = Layout::vertical([
                Constraint::Length(inner.height.saturating_sub(n)),
                Constraint::Min(0),
            ])
            .areas(inner);
            render_countdown(app, c, frame, top);
            render_compact(app, frame, rest, &metrics, stale);
        }
        Some(c) => {
            let [line, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
            frame.render_widget(
                Paragraph::new(Span::styled(
                    countdown_text(app, c, line.width),
                    breach_style(app),
                )),
                line,
            );
            render_compact(app, frame, rest, &metrics, stale);
        }
    }
}

/// What the engine made of the latest sample of one metric and track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Breach,
    NoData,
    /// Not judged: the track serves no traffic, or no round has come in.
    Unjudged,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "✓ ok",
            Verdict::Breach => "✗ BREACH",
            Verdict::NoData => "? no data",
            Verdict::Unjudged => "",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Verdict::Ok => "✓",
            Verdict::Breach => "✗",
            Verdict::NoData => "?",
            Verdict::Unjudged => " ",
        }
    }

    fn style(self, app: &App) -> Style {
        match self {
            Verdict::Ok => ok_style(app),
            Verdict::Breach => breach_style(app),
            Verdict::NoData => no_data_style(app),
            Verdict::Unjudged => muted_style(app),
        }
    }
}

/// The engine's verdict, not the panel's own reading of the threshold.
fn verdict(app: &App, metric: &str, track: TrackName) -> Verdict {
    match app
        .deployment
        .analysis
        .latest
        .get(&(metric.to_string(), track))
    {
        Some(Finding::Breach(_)) => Verdict::Breach,
        Some(Finding::Healthy(_)) => Verdict::Ok,
        Some(Finding::NoData(_)) => Verdict::NoData,
        None => Verdict::Unjudged,
    }
}

/// A value fit to draw: NaN and ±∞ are no data, as the series means them to be.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

fn latest(app: &App, metric: &str, track: TrackName) -> Option<f64> {
    finite(
        app.metrics
            .series
            .get(&(metric.to_string(), track))
            .and_then(|s| s.latest())
            .and_then(|p| p.value),
    )
}

/// A value with its unit, as the rest of the console writes it; one too large (or odd) for
/// that form in scientific notation, so it cannot push the rest of a line away.
fn shown(metric: &str, v: Option<f64>) -> String {
    let text = format::value(metric, v);
    match v {
        Some(v) if text.chars().count() > 9 || !text.contains(|c: char| c.is_ascii_digit()) => {
            format!("{v:.1e}")
        }
        _ => text,
    }
}

/// The newest `width` samples of one metric and track, oldest first.
fn recent(app: &App, metric: &str, track: TrackName, width: usize) -> Vec<Option<f64>> {
    app.metrics
        .series
        .get(&(metric.to_string(), track))
        .map(|s| {
            let skip = s.len().saturating_sub(width);
            s.points().skip(skip).map(|p| finite(p.value)).collect()
        })
        .unwrap_or_default()
}

/// The thresholds drawn as lines: `max` and `min`, where given and drawable.
fn lines_of(threshold: Option<&Threshold>) -> Vec<f64> {
    threshold
        .into_iter()
        .flat_map(|t| [t.max, t.min])
        .flatten()
        .filter(|v| v.is_finite())
        .collect()
}

/// The threshold in words — `max 5.00%`, `min 50.000`, `vs stable ×1.5 and +1.00%` — or,
/// `short`, in symbols: `≤5.00%`, `≥50.000`.
fn threshold_text(metric: &str, threshold: Option<&Threshold>, short: bool) -> String {
    let Some(t) = threshold else {
        return "no threshold".to_string();
    };
    let (min_word, max_word) = if short {
        ("≥", "≤")
    } else {
        ("min ", "max ")
    };
    let mut parts = Vec::new();
    if let Some(min) = t.min {
        parts.push(format!("{min_word}{}", shown(metric, Some(min))));
    }
    if let Some(max) = t.max {
        parts.push(format!("{max_word}{}", shown(metric, Some(max))));
    }
    if let Some(vs) = t.vs_stable {
        let mut bounds = Vec::new();
        if let Some(r) = vs.ratio {
            bounds.push(format!("×{r}"));
        }
        if let Some(d) = vs.delta {
            bounds.push(format!("+{}", shown(metric, Some(d))));
        }
        parts.push(format!("vs stable {}", bounds.join(" and ")));
    }
    if parts.is_empty() {
        "no threshold".to_string()
    } else {
        parts.join(if short { " " } else { "  " })
    }
}

/// The value at the chart's full height: the thresholds with [`HEADROOM`], or the largest
/// value when that is higher, so the threshold is always inside the chart and a healthy line
/// sits visibly below it. Never zero, negative or infinite (1 when nothing says otherwise).
pub(crate) fn scale_top(thresholds: &[f64], values: impl IntoIterator<Item = f64>) -> f64 {
    let top = thresholds
        .iter()
        .map(|t| t * HEADROOM)
        .chain(values)
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(0.0_f64, f64::max);
    if top > 0.0 { top } else { 1.0 }
}

/// The row (0 is the top) of a `rows`-high chart from 0 to `top` whose middle is nearest
/// `threshold`: where its line is drawn. `None` when it is off the chart or not a number.
pub(crate) fn threshold_row(threshold: f64, top: f64, rows: u16) -> Option<u16> {
    if rows == 0 || !(top.is_finite() && top > 0.0) || !(0.0..=top).contains(&threshold) {
        return None;
    }
    let height = threshold / top * f64::from(rows);
    // Finite and within 0..=rows, so the cast does not truncate.
    let from_bottom = (height.floor() as u16).min(rows - 1);
    Some(rows - 1 - from_bottom)
}

/// How many eighths of `cells` cells `v` fills on a scale to `top`: zero for zero, at least one
/// for any other value (a small value is never drawn as nothing), all of them at or above top.
pub(crate) fn eighths(v: f64, top: f64, cells: u16) -> u32 {
    let full = u32::from(cells) * 8;
    if v == 0.0 || full == 0 {
        return 0;
    }
    if v.is_nan() || v < 0.0 {
        // Negative (or not a number, which callers do not pass): the lowest mark.
        return 1;
    }
    if !(top.is_finite() && top > 0.0) {
        return full;
    }
    // Clamped before the cast, so it neither truncates nor wraps.
    (v / top * f64::from(full))
        .round()
        .clamp(1.0, f64::from(full)) as u32
}

/// One cell of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Bar(char),
    Line,
    Missing,
    Blank,
}

/// A `rows`-high chart of `values` (oldest first), top row first, `width` columns with the
/// newest value at the right edge; a threshold line across `lines` (rows from the top) where no
/// bar covers it. Before the first sample is blank; a missing sample is a dot on the floor.
fn chart_cells(
    values: &[Option<f64>],
    width: usize,
    rows: u16,
    top: f64,
    lines: &[u16],
) -> Vec<Vec<Cell>> {
    let skip = values.len().saturating_sub(width);
    let pad = width.saturating_sub(values.len());
    let columns: Vec<Option<Option<f64>>> = std::iter::repeat_n(None, pad)
        .chain(values.iter().skip(skip).map(|v| Some(finite(*v))))
        .collect();
    (0..rows)
        .map(|row| {
            let from_bottom = u32::from(rows - 1 - row);
            let line = lines.contains(&row);
            let empty = if line { Cell::Line } else { Cell::Blank };
            columns
                .iter()
                .map(|column| match column {
                    None => empty,
                    Some(None) if from_bottom == 0 => Cell::Missing,
                    Some(None) => empty,
                    Some(Some(v)) => {
                        let fill = eighths(*v, top, rows)
                            .saturating_sub(from_bottom * 8)
                            .min(8);
                        match BARS.get(fill as usize) {
                            Some(c) if fill > 0 => Cell::Bar(*c),
                            _ => empty,
                        }
                    }
                })
                .collect()
        })
        .collect()
}

/// One cell of a compact gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GaugeCell {
    Fill(char),
    Empty,
    Mark,
    Missing,
}

/// A one-line gauge of `value` on a scale to `top` in `width` cells, and a `│` column between
/// cells where each threshold falls. A value past a threshold always shows past its mark, one
/// within it never does, so the mark reads right even in a few cells.
fn gauge_cells(value: Option<f64>, top: f64, width: u16, thresholds: &[f64]) -> Vec<GaugeCell> {
    let marks: Vec<(f64, u16)> = thresholds
        .iter()
        .filter(|t| (0.0..=top).contains(*t))
        .map(|t| {
            // Within 0..=width, so the cast does not truncate.
            let at = (t / top * f64::from(width))
                .round()
                .clamp(0.0, f64::from(width)) as u16;
            (*t, at)
        })
        .collect();
    let mut cells = Vec::new();
    let mut fill = value.map(|v| {
        let mut e = eighths(v, top, width);
        for (t, at) in &marks {
            let edge = u32::from(*at) * 8;
            if v > *t && e <= edge {
                e = edge + 1;
            } else if v <= *t && e > edge {
                e = edge;
            }
        }
        if v != 0.0 { e.max(1) } else { e }.min(u32::from(width) * 8)
    });
    for i in 0..=width {
        if marks.iter().any(|(_, at)| *at == i) {
            cells.push(GaugeCell::Mark);
        }
        if i == width {
            break;
        }
        cells.push(match &mut fill {
            None if i == 0 => GaugeCell::Missing,
            None => GaugeCell::Empty,
            Some(e) => {
                let here = (*e).min(8);
                *e -= here;
                match HBARS.get(here as usize) {
                    Some(c) if here > 0 => GaugeCell::Fill(*c),
                    _ => GaugeCell::Empty,
                }
            }
        });
    }
    cells
}

/// Consecutive cells of one style as one span each.
fn spans_of<T: Copy>(cells: &[T], draw: impl Fn(T) -> (char, Style)) -> Vec<Span<'static>> {
    let mut spans: Vec<Span> = Vec::new();
    let mut text = String::new();
    let mut style = None;
    for cell in cells {
        let (c, s) = draw(*cell);
        if style.is_some_and(|prev| prev != s) {
            spans.push(Span::styled(
                std::mem::take(&mut text),
                style.unwrap_or_default(),
            ));
        }
        style = Some(s);
        text.push(c);
    }
    if !text.is_empty() {
        spans.push(Span::styled(text, style.unwrap_or_default()));
    }
    spans
}

/// Draws chart rows (top first) into `area`, each cell straight into the buffer: the cells
/// are one column wide each (bars, `┄`, `·`, space), so this draws what a `Paragraph` of them
/// would — cut at the area's edges, each cell's style patched on — at a fraction of the cost
/// (a chart is most of the panel's cells, drawn every frame).
fn draw_chart(
    buf: &mut ratatui::buffer::Buffer,
    area: Rect,
    rows: &[Vec<Cell>],
    draw: impl Fn(Cell) -> (char, Style),
) {
    for (y, row) in (0..=u16::MAX).zip(rows) {
        for (cell, chart_cell) in super::cells::row_mut(buf, area, y).iter_mut().zip(row) {
            let (c, style) = draw(*chart_cell);
            cell.set_char(c).set_style(style);
        }
    }
}

/// The full layout: per metric a heading, then per track a chart, its value and verdict.
fn render_charts(app: &App, frame: &mut Frame, area: Rect, metrics: &[&str], stale: bool) {
    let tracks = app.plan.tracks();
    let rows_each = rows_per_metric(tracks.len());
    // One legend column for every metric, wide enough for the longest name or threshold and
    // a scale such as `scale 0–100.00%`.
    let legend_cols = metrics
        .iter()
        .flat_map(|m| {
            [
                m.chars().count(),
                legend_threshold(m, app.plan.metrics.thresholds.get(*m), usize::MAX, true)
                    .chars()
                    .count(),
            ]
        })
        .max()
        .unwrap_or(0)
        .clamp(LEGEND_MIN_COLS, LEGEND_MAX_COLS);
    let areas = Layout::vertical(
        metrics
            .iter()
            .map(|_| Constraint::Length(rows_each))
            .collect::<Vec<_>>(),
    )
    .split(area);
    for (metric, area) in metrics.iter().zip(areas.iter()) {
        render_metric(app, frame, *area, metric, legend_cols, stale);
    }
}

/// Rows each metric takes in the full layout: a chart per track, and at least the three lines
/// of its legend.
fn rows_per_metric(tracks: usize) -> u16 {
    u16::try_from(tracks)
        .unwrap_or(1)
        .saturating_mul(CHART_ROWS)
        .max(LEGEND_ROWS)
}

/// `┄ max 5.00%` in at most `width` columns (the `┄` only when a line is `drawn`): in symbols
/// (`┄ ≤5.00%`) where words do not fit, cut with `…` where neither does.
fn legend_threshold(
    metric: &str,
    threshold: Option<&Threshold>,
    width: usize,
    drawn: bool,
) -> String {
    let legend = if drawn {
        format!("{THRESHOLD_LINE} ")
    } else {
        String::new()
    };
    let words = format!("{legend}{}", threshold_text(metric, threshold, false));
    if words.chars().count() <= width {
        return words;
    }
    let symbols = format!("{legend}{}", threshold_text(metric, threshold, true));
    if symbols.chars().count() <= width {
        return symbols;
    }
    let mut cut: String = symbols.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One metric: on the left its name, threshold and scale; per track a chart with the
/// threshold's line, and the latest value and the engine's verdict.
fn render_metric(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    metric: &str,
    legend_cols: usize,
    stale: bool,
) {
    let tracks = app.plan.tracks();
    let threshold = app.plan.metrics.thresholds.get(metric);
    let lines = lines_of(threshold);
    let legend_width = u16::try_from(legend_cols).unwrap_or(u16::MAX);
    let [legend_area, _, tracks_area] = Layout::horizontal([
        Constraint::Length(legend_width),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    let width = usize::from(tracks_area.width.saturating_sub(LABEL_COLS + VALUE_COLS));
    let values: Vec<Vec<Option<f64>>> = tracks
        .iter()
        .map(|t| recent(app, metric, *t, width))
        .collect();
    // One scale for every track, so they compare by eye.
    let top = scale_top(&lines, values.iter().flatten().filter_map(|v| *v));
    let line_rows: Vec<u16> = lines
        .iter()
        .filter_map(|t| threshold_row(*t, top, CHART_ROWS))
        .collect();
    let breached = tracks
        .iter()
        .any(|t| verdict(app, metric, *t) == Verdict::Breach);

    let name: String = metric.chars().take(legend_cols).collect();
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled(
                name,
                if breached {
                    breach_style(app)
                } else {
                    title_style()
                },
            ),
            Line::styled(
                legend_threshold(metric, threshold, legend_cols, !line_rows.is_empty()),
                dimmed(threshold_style(app), stale),
            ),
            Line::styled(
                format!("scale 0–{}", shown(metric, Some(top))),
                muted_style(app),
            ),
        ]),
        legend_area,
    );

    let charts = Layout::vertical(
        tracks
            .iter()
            .map(|_| Constraint::Length(CHART_ROWS))
            .collect::<Vec<_>>(),
    )
    .split(tracks_area);
    for ((track, values), area) in tracks.iter().zip(&values).zip(charts.iter()) {
        let verdict = verdict(app, metric, *track);
        let [label_area, chart_area, value_area] = Layout::horizontal([
            Constraint::Length(LABEL_COLS),
            Constraint::Min(0),
            Constraint::Length(VALUE_COLS),
        ])
        .areas(*area);
        frame.render_widget(
            Paragraph::new(Span::styled(
                track.as_str(),
                dimmed(track_style(app, *track).add_modifier(Modifier::BOLD), stale),
            )),
            label_area,
        );
        let bar_style = dimmed(
            if verdict == Verdict::Breach {
                breach_style(app)
            } else {
                track_style(app, *track)
            },
            stale,
        );
        let cells = chart_cells(
            values,
            usize::from(chart_area.width),
            CHART_ROWS,
            top,
            &line_rows,
        );
        let line_style = dimmed(threshold_style(app), stale);
        draw_chart(frame.buffer_mut(), chart_area, &cells, |cell| match cell {
            Cell::Bar(c) => (c, bar_style),
            Cell::Line => (THRESHOLD_LINE, line_style),
            Cell::Missing => (MISSING, muted_style(app)),
            Cell::Blank => (' ', Style::new()),
        });

        let value = latest(app, metric, *track);
        let value_style = match value {
            _ if verdict == Verdict::Breach => breach_style(app),
            None => muted_style(app),
            Some(_) => Style::new(),
        };
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(Span::styled(
                    shown(metric, value),
                    dimmed(value_style, stale),
                )),
                Line::from(Span::styled(
                    verdict.word(),
                    dimmed(verdict.style(app), stale),
                )),
            ])
            .alignment(Alignment::Right),
            value_area,
        );
    }
}

/// One line per metric: `error_rate  s ▏  │ 0.24%✓ c ███│█ 7.20%✗ ≤5.00%` — per track its
/// gauge with the threshold's mark, value and verdict; then the threshold in words. Track names
/// are written out where the width allows.
fn render_compact(app: &App, frame: &mut Frame, area: Rect, metrics: &[&str], stale: bool) {
    let tracks = app.plan.tracks();
    let n_tracks = u16::try_from(tracks.len()).unwrap_or(1).max(1);
    let name_cols = metrics
        .iter()
        .map(|m| m.chars().count())
        .max()
        .unwrap_or(0)
        .min(14);
    let value_cols = metrics
        .iter()
        .flat_map(|m| {
            tracks
                .iter()
                .map(|t| shown(m, latest(app, m, *t)).chars().count())
        })
        .max()
        .unwrap_or(0);
    let marks = metrics
        .iter()
        .map(|m| lines_of(app.plan.metrics.thresholds.get(*m)).len())
        .max()
        .unwrap_or(0);
    let thresholds = |short: bool| -> Vec<String> {
        metrics
            .iter()
            .map(|m| threshold_text(m, app.plan.metrics.thresholds.get(*m), short))
            .collect()
    };
    // Columns left for each track's gauge with labels `label` wide and these threshold texts:
    // per track the label, gauge and marks, a space, value, verdict mark and a space.
    let room = |label: usize, thresholds: &[String]| {
        let threshold_cols = thresholds
            .iter()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(0);
        let fixed = name_cols
            + 2
            + usize::from(n_tracks) * (label + marks + 1 + value_cols + 2)
            + threshold_cols;
        usize::from(area.width).saturating_sub(fixed) / usize::from(n_tracks)
    };
    // Track names and the threshold in words where the gauges still get room; else the
    // tracks' initials, then the threshold in symbols (`≤5.00%`).
    let (words, short) = (thresholds(false), thresholds(true));
    let (full_names, gauge, thresholds) = if room(7, &words) >= 6 {
        (true, room(7, &words), words)
    } else if room(2, &words) >= 4 {
        (false, room(2, &words), words)
    } else {
        (false, room(2, &short), short)
    };
    let gauge = u16::try_from(gauge).unwrap_or(MAX_GAUGE).min(MAX_GAUGE);
    // Too narrow for a gauge worth reading: values and threshold only.
    let gauge = if gauge < 2 { 0 } else { gauge };

    let lines: Vec<Line> = metrics
        .iter()
        .zip(&thresholds)
        .map(|(metric, threshold_words)| {
            let lines = lines_of(app.plan.metrics.thresholds.get(*metric));
            let values: Vec<Option<f64>> = tracks.iter().map(|t| latest(app, metric, *t)).collect();
            let top = scale_top(&lines, values.iter().filter_map(|v| *v));
            let breached = tracks
                .iter()
                .any(|t| verdict(app, metric, *t) == Verdict::Breach);
            let name: String = metric.chars().take(name_cols).collect();
            let mut spans = vec![Span::styled(
                format!("{name:<name_cols$}  "),
                dimmed(
                    if breached {
                        breach_style(app)
                    } else {
                        title_style()
                    },
                    stale,
                ),
            )];
            for (track, value) in tracks.iter().zip(&values) {
                let verdict = verdict(app, metric, *track);
                let label = if full_names {
                    format!("{} ", track.as_str())
                } else {
                    format!("{} ", track.as_str().chars().next().unwrap_or(' '))
                };
                spans.push(Span::styled(
                    label,
                    dimmed(track_style(app, *track).add_modifier(Modifier::BOLD), stale),
                ));
                let fill = dimmed(
                    if verdict == Verdict::Breach {
                        breach_style(app)
                    } else {
                        track_style(app, *track)
                    },
                    stale,
                );
                let cells = if gauge == 0 {
                    Vec::new()
                } else {
                    gauge_cells(*value, top, gauge, &lines)
                };
                // Metrics with fewer threshold marks than others keep the columns aligned.
                let pad = (usize::from(gauge) + marks).saturating_sub(cells.len());
                spans.extend(spans_of(&cells, |cell| match cell {
                    GaugeCell::Fill(c) => (c, fill.patch(gauge_style(app))),
                    GaugeCell::Empty => (' ', gauge_style(app)),
                    GaugeCell::Mark => (
                        THRESHOLD_MARK,
                        dimmed(threshold_style(app), stale).patch(gauge_style(app)),
                    ),
                    GaugeCell::Missing => (MISSING, muted_style(app).patch(gauge_style(app))),
                }));
                let value_style = match value {
                    _ if verdict == Verdict::Breach => breach_style(app),
                    None => muted_style(app),
                    Some(_) => Style::new(),
                };
                spans.push(Span::raw(" ".repeat(pad + 1)));
                spans.push(Span::styled(
                    format!("{:>value_cols$}", shown(metric, *value)),
                    dimmed(value_style, stale),
                ));
                spans.push(Span::styled(
                    verdict.mark(),
                    dimmed(verdict.style(app), stale),
                ));
                spans.push(Span::raw(" "));
            }
            spans.push(Span::styled(
                threshold_words.clone(),
                dimmed(threshold_style(app), stale),
            ));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// Seconds left of a countdown, as the header counts them.
fn seconds_left(app: &App, c: &Countdown) -> u64 {
    c.ends.duration_since(app.now).unwrap_or_default().as_secs()
}

/// The keys that act on a countdown, or where they are for an observer.
fn countdown_keys(app: &App) -> &'static str {
    if app.mode == Mode::Observer {
        "x at the run's console cancels"
    } else {
        "x cancels · ! now"
    }
}

/// The countdown on one line of `width` columns: `ROLLBACK IMMEDIATE IN 7s — x cancels · ! now`,
/// shorter forms where that does not fit.
fn countdown_text(app: &App, c: &Countdown, width: u16) -> String {
    let secs = seconds_left(app, c);
    let tier = c.tier.as_str().to_uppercase();
    let keys = countdown_keys(app);
    let cancels = keys.split(" · ").next().unwrap_or(keys);
    [
        format!("ROLLBACK {tier} IN {secs}s — {keys}"),
        format!("ROLLBACK {tier} IN {secs}s — {cancels}"),
        format!("ROLLBACK IN {secs}s — {cancels}"),
        format!("ROLLBACK IN {secs}s"),
    ]
    .into_iter()
    .find(|t| t.chars().count() <= usize::from(width))
    .unwrap_or_else(|| format!("ROLLBACK {secs}s"))
}

/// `text` broken at spaces into lines of at most `width` columns (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` wrapped into as few lines as [`wrap`] makes at `width`, of lengths as even as may be
/// (`error_rate canary` / `7.20% > 5.00%`, not `error_rate canary 7.20% >` / `5.00%`).
fn wrap_even(text: &str, width: usize) -> Vec<String> {
    let lines = wrap(text, width);
    // Never narrower than the longest word, which would cut it.
    let longest = text
        .split_whitespace()
        .map(|w| w.chars().count())
        .max()
        .unwrap_or(0);
    (longest.max(1)..width)
        .rev()
        .map(|w| wrap(text, w))
        .take_while(|l| l.len() == lines.len())
        .last()
        .unwrap_or(lines)
}

/// The countdown's lines for `width` columns, each with whether it may be left out for lack of
/// rows: the seconds in big digits, what rolls back, the keys, why.
fn countdown_lines(app: &App, c: &Countdown, width: u16) -> Vec<(Line<'static>, bool)> {
    let secs = format!("{}s", seconds_left(app, c));
    let tier = c.tier.as_str().to_uppercase();
    let keys = countdown_keys(app);
    let width = usize::from(width);
    let one_line = format!("ROLLBACK {tier} — {keys}");
    let big_lines = big::render(&secs).map(|row| (Line::styled(row, breach_style(app)), false));
    let blank = || (Line::raw(""), true);
    let reason = wrap_even(&c.reason, width)
        .into_iter()
        .map(|l| (Line::styled(l, muted_style(app)), true));
    let mut lines = Vec::new();
    if one_line.chars().count() <= width {
        lines.extend(big_lines);
        lines.push(blank());
        lines.push((Line::styled(one_line, breach_style(app)), false));
    } else {
        lines.extend(
            wrap_even(&format!("ROLLBACK {tier} IN"), width)
                .into_iter()
                .map(|l| (Line::styled(l, breach_style(app)), false)),
        );
        lines.push(blank());
        lines.extend(big_lines);
        lines.push(blank());
        lines.extend(
            wrap_even(keys, width)
                .into_iter()
                .map(|l| (Line::styled(l, title_style()), false)),
        );
    }
    lines.extend(reason);
    lines
}

/// The countdown centred in `area`: big digits where they fit, one bold line where not.
fn render_countdown(app: &App, c: &Countdown, frame: &mut Frame, area: Rect) {
    let rows = usize::from(area.height);
    let mut lines = countdown_lines(app, c, area.width);
    // Leave out what may go, last first, until the rest fits.
    while lines.len() > rows {
        match lines.iter().rposition(|(_, optional)| *optional) {
            Some(i) => {
                lines.remove(i);
            }
            None => break,
        }
    }
    let lines: Vec<Line> = if lines.len() > rows {
        wrap(&countdown_text(app, c, u16::MAX), usize::from(area.width))
            .into_iter()
            .map(|l| Line::styled(l, breach_style(app)))
            .collect()
    } else {
        lines.into_iter().map(|(l, _)| l).collect()
    };
    let used = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let [_, middle] = Layout::vertical([
        Constraint::Length(area.height.saturating_sub(used) / 2),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center), middle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_holds_the_threshold_with_headroom_or_the_data_when_higher() {
        assert_eq!(scale_top(&[0.05], [0.002, 0.004]), 0.05 * HEADROOM);
        assert_eq!(scale_top(&[0.05], [0.002, 0.072]), 0.072);
        // A minimum (throughput that must stay above 50) and data well above it.
        assert_eq!(scale_top(&[50.0], [400.0, 380.0]), 400.0);
        // Both bounds: the higher one decides.
        assert_eq!(scale_top(&[0.1, 0.8], []), 0.8 * HEADROOM);
        // No threshold: the data alone.
        assert_eq!(scale_top(&[], [3.0, 7.0]), 7.0);
    }

    #[test]
    fn the_scale_is_never_zero_negative_or_infinite() {
        assert_eq!(scale_top(&[], []), 1.0);
        assert_eq!(scale_top(&[0.0], [0.0, 0.0]), 1.0);
        assert_eq!(scale_top(&[-5.0], [-1.0]), 1.0);
        assert_eq!(scale_top(&[f64::NAN], [f64::NAN, f64::INFINITY]), 1.0);
        assert_eq!(scale_top(&[f64::MAX], [2.0]), 2.0, "MAX × 1.25 overflows");
        assert_eq!(scale_top(&[0.05], [f64::MAX]), f64::MAX);
    }

    #[test]
    fn the_threshold_row_is_the_row_whose_middle_is_nearest() {
        // At 80% of two rows (1.6 rows up): the top row, above a healthy line.
        assert_eq!(threshold_row(0.05, 0.0625, 2), Some(0));
        // A spike raised the top: 5% of 7.2% is 1.39 rows up, still the top row.
        assert_eq!(threshold_row(0.05, 0.072, 2), Some(0));
        // A minimum low on a throughput chart: the bottom row.
        assert_eq!(threshold_row(50.0, 400.0, 2), Some(1));
        assert_eq!(threshold_row(0.0, 1.0, 2), Some(1), "zero: the floor");
        assert_eq!(threshold_row(1.0, 1.0, 2), Some(0), "at the top");
        assert_eq!(threshold_row(0.5, 1.0, 4), Some(1));
        assert_eq!(threshold_row(0.8, 1.0, 3), Some(0));
    }

    #[test]
    fn a_threshold_off_the_chart_or_not_a_number_has_no_row() {
        assert_eq!(threshold_row(2.0, 1.0, 2), None);
        assert_eq!(threshold_row(-0.1, 1.0, 2), None);
        assert_eq!(threshold_row(f64::NAN, 1.0, 2), None);
        assert_eq!(threshold_row(0.5, f64::INFINITY, 2), None);
        assert_eq!(threshold_row(0.5, 0.0, 2), None);
        assert_eq!(threshold_row(0.5, 1.0, 0), None);
    }

    #[test]
    fn a_small_value_is_never_drawn_as_nothing() {
        assert_eq!(eighths(0.0, 1.0, 2), 0);
        assert_eq!(eighths(1e-12, 1.0, 2), 1);
        assert_eq!(eighths(-3.0, 1.0, 2), 1);
        assert_eq!(eighths(0.5, 1.0, 2), 8);
        assert_eq!(eighths(1.0, 1.0, 2), 16);
        assert_eq!(eighths(1e300, 1.0, 2), 16);
        assert_eq!(eighths(f64::MAX, f64::MIN_POSITIVE, 2), 16);
        assert_eq!(eighths(1.0, 1.0, 0), 0);
    }

    fn text(cells: &[Vec<Cell>]) -> Vec<String> {
        cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| match c {
                        Cell::Bar(c) => *c,
                        Cell::Line => THRESHOLD_LINE,
                        Cell::Missing => MISSING,
                        Cell::Blank => ' ',
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_threshold_line_runs_across_the_chart_under_what_breaches() {
        let top = scale_top(&[0.05], [0.003, 0.061, 0.072]);
        let rows = threshold_row(0.05, top, 2).into_iter().collect::<Vec<_>>();
        let values = [Some(0.003), None, Some(0.0), Some(0.061), Some(0.072)];
        assert_eq!(
            text(&chart_cells(&values, 7, 2, top, &rows)),
            ["┄┄┄┄┄▆█", "  ▁· ██"],
        );
        // Fewer columns than samples: the newest are kept.
        assert_eq!(text(&chart_cells(&values, 2, 2, top, &rows)), ["▆█", "██"]);
    }

    #[test]
    fn odd_values_draw_as_no_data_or_the_lowest_bar_and_never_panic() {
        let values = [
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(-1.0),
            Some(f64::MAX),
        ];
        let top = scale_top(&[0.0], values.iter().flatten().copied());
        assert_eq!(top, f64::MAX);
        assert_eq!(
            text(&chart_cells(&values, 5, 2, top, &[1])),
            ["    █", "···▁█"]
        );
        assert!(
            chart_cells(&values, 0, 2, top, &[])
                .iter()
                .all(Vec::is_empty)
        );
    }

    fn gauge(cells: &[GaugeCell]) -> String {
        cells
            .iter()
            .map(|c| match c {
                GaugeCell::Fill(c) => *c,
                GaugeCell::Empty => ' ',
                GaugeCell::Mark => THRESHOLD_MARK,
                GaugeCell::Missing => MISSING,
            })
            .collect()
    }

    #[test]
    fn the_compact_gauge_marks_the_threshold_and_puts_a_breach_past_it() {
        let top = 0.0625;
        assert_eq!(gauge(&gauge_cells(Some(0.002), top, 5, &[0.05])), "▏   │ ");
        assert_eq!(gauge(&gauge_cells(Some(0.049), top, 5, &[0.05])), "███▉│ ");
        assert_eq!(gauge(&gauge_cells(Some(0.051), top, 5, &[0.05])), "████│▏");
        assert_eq!(gauge(&gauge_cells(Some(0.0625), top, 5, &[0.05])), "████│█");
        assert_eq!(gauge(&gauge_cells(None, top, 5, &[0.05])), "·   │ ");
        assert_eq!(gauge(&gauge_cells(Some(0.0), top, 3, &[])), "   ");
        // A minimum: below it sits before the mark.
        assert_eq!(gauge(&gauge_cells(Some(40.0), 400.0, 4, &[50.0])), "▍│   ");
        assert_eq!(gauge(&gauge_cells(Some(45.0), 400.0, 4, &[50.0])), "▌│   ");
        assert_eq!(gauge(&gauge_cells(Some(60.0), 400.0, 4, &[50.0])), "█│▏  ");
    }

    #[test]
    fn the_compact_gauge_survives_odd_input() {
        assert_eq!(gauge(&gauge_cells(Some(-1.0), 1.0, 3, &[0.0])), "│▏  ");
        assert_eq!(
            gauge(&gauge_cells(Some(f64::MAX), 1.0, 2, &[f64::NAN])),
            "██"
        );
        assert_eq!(gauge(&gauge_cells(Some(1.0), 1.0, 0, &[0.5])), "│");
    }

    #[test]
    fn thresholds_read_in_words_or_symbols() {
        let t = |max, min| Threshold {
            max,
            min,
            vs_stable: None,
        };
        assert_eq!(
            threshold_text("error_rate", Some(&t(Some(0.05), None)), false),
            "max 5.00%"
        );
        assert_eq!(
            threshold_text("error_rate", Some(&t(Some(0.05), None)), true),
            "≤5.00%"
        );
        assert_eq!(
            threshold_text("requests", Some(&t(None, Some(50.0))), false),
            "min 50.000"
        );
        assert_eq!(
            threshold_text("requests", Some(&t(Some(900.0), Some(50.0))), true),
            "≥50.000 ≤900.000"
        );
        assert_eq!(
            threshold_text("requests", Some(&t(Some(f64::NAN), None)), true),
            "≤NaN"
        );
        let vs = Threshold {
            vs_stable: Some(crate::plan::VsStable {
                ratio: Some(1.5),
                delta: Some(0.01),
            }),
            ..Threshold::default()
        };
        assert_eq!(
            threshold_text("error_rate", Some(&vs), false),
            "vs stable ×1.5 and +1.00%"
        );
        assert_eq!(threshold_text("cpu", None, false), "no threshold");
        assert_eq!(
            threshold_text("cpu", Some(&Threshold::default()), false),
            "no threshold"
        );
    }

    #[test]
    fn words_wrap_at_spaces_and_long_words_are_cut() {
        assert_eq!(
            wrap("error_rate canary 7.20% > 5.00%", 20),
            ["error_rate canary", "7.20% > 5.00%"]
        );
        assert_eq!(
            wrap_even("error_rate canary 7.20% > 5.00%", 26),
            ["error_rate canary", "7.20% > 5.00%"]
        );
        assert_eq!(wrap_even("a b", 1), ["a", "b"]);
        assert_eq!(wrap_even("abcdef gh", 8), ["abcdef", "gh"], "no word cut");
        assert!(wrap_even("a b", 0).is_empty());
        assert_eq!(wrap("abcdef", 3), ["abc"]);
        assert!(wrap("", 3).is_empty());
    }
}
