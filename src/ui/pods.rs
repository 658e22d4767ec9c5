//! The pod table: both tracks' pods as `kubectl get pods` shows them, canary first.
//! Draws from `&App` only.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};

use super::format;
use crate::app::App;
use crate::cluster::model::PodView;
use crate::plan::TrackName;

/// A pod's AGE column.
pub fn age(pod: &PodView, now: std::time::SystemTime) -> String {
    format::age(pod.created, now)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let all: Vec<&PodView> = app.sorted_pods();
    let total = all.len();
    let selected = app
        .view
        .pod_selected
        .as_ref()
        .and_then(|name| all.iter().position(|p| &p.name == name));
    // Only the rows that fit (less borders and header) are drawn, scrolled so the selected pod
    // is among them: with 1,000 pods, building every row made up most of a frame.
    let fit = usize::from(area.height.saturating_sub(3)).max(1);
    let first = match selected {
        Some(i) if i >= fit => i + 1 - fit,
        _ => 0,
    };
    let pods = &all[first.min(total)..(first + fit).min(total)];
    let selected = selected.map(|i| i - first);
    let dim = !app.cluster.health.is_live();
    // Narrow terminals drop TRACK and VERSION; the name keeps its track colour.
    let wide = area.width >= 86;
    // What the name column gets: the inside of the box less the other columns and the gaps.
    let others: u16 = if wide {
        6 + 5 + 17 + 8 + 5 + 7 + 6
    } else {
        5 + 17 + 8 + 5 + 4
    };
    let name_width = usize::from(area.width.saturating_sub(2).saturating_sub(others));
    let header_cells: &[&str] = if wide {
        &[
            "NAME", "TRACK", "READY", "STATUS", "RESTARTS", "AGE", "VERSION",
        ]
    } else {
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    };
    let sort = match app.view.pod_sort {
        crate::app::modal::PodSort::Name => String::new(),
        other => format!("· by {} ", other.name()),
    };
    let title = if dim {
        format!(" Pods ({total}) {sort}— stale ")
    } else {
        format!(" Pods ({total}) {sort}")
    };
    let widths: &[Constraint] = if wide {
        &[
            Constraint::Min(30),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(7),
        ]
    } else {
        &[
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Length(5),
        ]
    };
    let block = super::panel(app, crate::app::modal::Focus::Pods, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }
    let buf = frame.buffer_mut();
    let columns = column_areas(inner, widths);
    let header = Rect { height: 1, ..inner };
    super::cells::set_style(
        super::cells::row_mut(buf, header, 0),
        Style::new().add_modifier(Modifier::BOLD),
    );
    for (column, text) in columns.iter().zip(header_cells) {
        super::cells::text(buf, *column, text);
    }
    let mut scratch = String::new();
    // One row a pod below the header, as many as fit: `pods` was cut to fit already.
    for (i, (y, p)) in (inner.y.saturating_add(1)..inner.bottom())
        .zip(pods)
        .enumerate()
    {
        let status_style = match p.status.as_str() {
            "Running" if p.ready_containers == p.total_containers => theme.ok,
            "Running" | "Pending" | "ContainerCreating" | "Terminating" => theme.warn,
            _ => theme.bad,
        };
        let track_style = match p.track {
            Some(TrackName::Stable) => theme.stable,
            Some(TrackName::Canary) => theme.canary,
            None => theme.pending,
        };
        let row = Rect {
            y,
            height: 1,
            ..inner
        };
        if dim {
            super::cells::set_style(super::cells::row_mut(buf, row, 0), theme.stale);
        }
        let name = cut_name(&p.name, name_width);
        // READY and RESTARTS written one after the other into one reused string (writing to
        // a String cannot fail), then split where READY ends: no allocation per row.
        scratch.clear();
        let _ = write!(scratch, "{}/{}", p.ready_containers, p.total_containers);
        let ready_end = scratch.len();
        let _ = write!(scratch, "{}", p.restarts);
        let (ready, restarts) = scratch.split_at(ready_end);
        let age = age(p, app.now);
        let cells: &[(&str, Style)] = if wide {
            &[
                (&name, Style::new()),
                (p.track.map_or("-", TrackName::as_str), track_style),
                (ready, Style::new()),
                (&p.status, status_style),
                (restarts, Style::new()),
                (&age, Style::new()),
                (&p.version, Style::new()),
            ]
        } else {
            &[
                (&name, track_style),
                (ready, Style::new()),
                (&p.status, status_style),
                (restarts, Style::new()),
                (&age, Style::new()),
            ]
        };
        for (column, (text, style)) in columns.iter().zip(cells) {
            let cell = Rect { y, ..*column };
            super::cells::set_style(super::cells::row_mut(buf, cell, 0), *style);
            super::cells::text(buf, cell, text);
        }
        if selected == Some(i) {
            super::cells::set_style(super::cells::row_mut(buf, row, 0), theme.selected);
        }
    }
}

/// Where each column goes in the table's first row, laid out as ratatui's `Table` lays out its
/// columns (no selection column: the table has no highlight symbol), a column apart.
fn column_areas(inner: Rect, widths: &[Constraint]) -> Vec<Rect> {
    let [_selection, columns] = Layout::horizontal([Constraint::Length(0), Constraint::Fill(0)])
        .areas(Rect::new(0, 0, inner.width, 1));
    Layout::horizontal(widths.iter().copied())
        .flex(Flex::Start)
        .spacing(1)
        .split(columns)
        .iter()
        .map(|c| Rect::new(inner.x + c.x, inner.y, c.width, 1))
        .collect()
}

/// A pod's name in at most `width` columns: as it is where it fits (no copy), else cut as
/// [`format::cut_keeping_tail`] cuts it.
fn cut_name(name: &str, width: usize) -> std::borrow::Cow<'_, str> {
    // Bytes bound chars from above: a name this short fits.
    if name.len() <= width {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format::cut_keeping_tail(name, width))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn app(pods: usize) -> App {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut app = crate::app::scenario::bare(now);
        for i in 0..pods {
            let track = match i % 7 {
                0 => Some(TrackName::Canary),
                6 => None,
                _ => Some(TrackName::Stable),
            };
            // Names out of insertion order, some sharing long prefixes.
            let name = format!("checkout-{:x}-{:05}", i % 3, (i * 7919) % 10_007);
            app.cluster.pods.insert(
                name.clone(),
                PodView {
                    name,
                    track,
                    ready_containers: u32::from(i % 5 != 0),
                    total_containers: 1,
                    status: if i % 11 == 0 {
                        "CrashLoopBackOff"
                    } else {
                        "Running"
                    }
                    .into(),
                    restarts: u32::try_from(i % 4).unwrap_or(0),
                    created: Some(now - Duration::from_secs(i as u64)),
                    version: "2.4.0".into(),
                },
            );
        }
        app
    }

    fn lines(app: &App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal
            .draw(|frame| render(app, frame, frame.area()))
            .expect("draws");
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect()
    }

    /// Only the rows that fit are built: what shows must be the top of the whole table.
    #[test]
    fn a_short_table_shows_the_top_of_the_whole_table() {
        let app = app(1_000);
        for width in [200, 80] {
            let all = lines(&app, width, 1_010);
            assert!(all[0].contains("Pods (1000)"), "{}", all[0]);
            // Border, header, then every pod: the last on row 1,001.
            assert!(all[1_001].contains("checkout-"), "every pod fits");
            assert!(!all[1_002].contains("checkout-"));
            for height in [0, 1, 2, 3, 4, 10, 37, 60] {
                let short = lines(&app, width, height);
                let rows = usize::from(height);
                // Everything but the bottom border is the same as in the full table.
                for y in 0..rows.saturating_sub(1) {
                    assert_eq!(short[y], all[y], "{width}x{height}, row {y}");
                }
            }
        }
    }
}
