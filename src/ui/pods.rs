//! The pod table: both tracks' pods as `kubectl get pods` shows them, canary first.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::format;
use super::traffic::track_color;
use crate::app::App;
use crate::cluster::model::PodView;
use crate::plan::TrackName;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let total = app.cluster.pods.len();
    // Canary first, then by name; the map's order breaks ties, as a stable sort of it would.
    let mut pods: Vec<(usize, &PodView)> = app.cluster.pods.values().enumerate().collect();
    let order = |(i, a): &(usize, &PodView), (j, b): &(usize, &PodView)| {
        let rank = |p: &PodView| match p.track {
            Some(TrackName::Canary) => 0,
            Some(TrackName::Stable) => 1,
            None => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.name.cmp(&b.name))
            .then(i.cmp(j))
    };
    // The table never shows more rows than the area is high (less borders and header): only
    // those are picked, ordered and turned into rows. With 1,000 pods, building every row made
    // up most of a frame.
    let shown = usize::from(area.height);
    if pods.len() > shown {
        if shown == 0 {
            pods.clear();
        } else {
            pods.select_nth_unstable_by(shown - 1, order);
            pods.truncate(shown);
        }
    }
    pods.sort_unstable_by(order);
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
    let rows = pods.iter().map(|(_, p)| {
        let status_style = match p.status.as_str() {
            "Running" if p.ready_containers == p.total_containers => Style::new().fg(Color::Green),
            "Running" | "Pending" | "ContainerCreating" | "Terminating" => {
                Style::new().fg(Color::Yellow)
            }
            _ => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        let track = p.track.map_or("-", TrackName::as_str);
        let track_style = Style::new().fg(p.track.map_or(Color::Gray, track_color));
        let name = Cell::from(format::cut_keeping_tail(&p.name, name_width));
        let ready = Cell::from(format!("{}/{}", p.ready_containers, p.total_containers));
        let status = Cell::from(p.status.clone()).style(status_style);
        let restarts = Cell::from(p.restarts.to_string());
        let age = Cell::from(format::age(p.created, app.now));
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
            row = row.style(Style::new().add_modifier(Modifier::DIM));
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
    let title = if dim {
        format!(" Pods ({total}) — stale ")
    } else {
        format!(" Pods ({total}) ")
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
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::model::Target;

    fn app(pods: usize) -> App {
        let plan = crate::plan::parse(std::path::Path::new("demo.yaml"), crate::cli::DEMO_PLAN)
            .expect("demo plan parses");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut app = App::new(
            Arc::new(plan),
            Target {
                environment: "development".into(),
                namespace: "shop".into(),
                context: "sim".into(),
                kubeconfig_hint: None,
            },
            "t".into(),
            now,
        );
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
