//! The pod table: both tracks' pods as `kubectl get pods` shows them, canary first.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Cell, Row, Table, TableState};

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
    // Only the rows that fit (less borders and header) are turned into rows, scrolled so the
    // selected pod is among them: with 1,000 pods, building every row made up most of a frame.
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
    let rows = pods.iter().map(|p| {
        let status_style = match p.status.as_str() {
            "Running" if p.ready_containers == p.total_containers => theme.ok,
            "Running" | "Pending" | "ContainerCreating" | "Terminating" => theme.warn,
            _ => theme.bad,
        };
        let track = p.track.map_or("-", TrackName::as_str);
        let track_style = match p.track {
            Some(TrackName::Stable) => theme.stable,
            Some(TrackName::Canary) => theme.canary,
            None => theme.pending,
        };
        let name = Cell::from(format::cut_keeping_tail(&p.name, name_width));
        let ready = Cell::from(format!("{}/{}", p.ready_containers, p.total_containers));
        let status = Cell::from(p.status.clone()).style(status_style);
        let restarts = Cell::from(p.restarts.to_string());
        let age = Cell::from(age(p, app.now));
        let mut row = if wide {
            Row::new(vec![
                name,
                Cell::from(track).style(track_style),
                ready,
                status,
                restarts,
                age,
                Cell::from(p.version.clone()),
            ])
        } else {
            Row::new(vec![name.style(track_style), ready, status, restarts, age])
        };
        if dim {
            row = row.style(theme.stale);
        }
        row
    });
    let header_cells: &[&str] = if wide {
        &[
            "NAME", "TRACK", "READY", "STATUS", "RESTARTS", "AGE", "VERSION",
        ]
    } else {
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    };
    let header = Row::new(header_cells.to_vec()).style(Style::new().add_modifier(Modifier::BOLD));
    let sort = match app.view.pod_sort {
        crate::app::modal::PodSort::Name => String::new(),
        other => format!("· by {} ", other.name()),
    };
    let title = if dim {
        format!(" Pods ({total}) {sort}— stale ")
    } else {
        format!(" Pods ({total}) {sort}")
    };
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Min(30),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(7),
        ]
    } else {
        vec![
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Length(5),
        ]
    };
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(theme.selected)
        .block(super::panel(app, crate::app::modal::Focus::Pods, title));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
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
