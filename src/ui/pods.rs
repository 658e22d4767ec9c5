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

/// A pod's AGE column.
pub fn age(pod: &PodView, now: std::time::SystemTime) -> String {
    format::age(pod.created, now)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let mut pods: Vec<&PodView> = app.cluster.pods.values().collect();
    pods.sort_by(|a, b| {
        let rank = |p: &PodView| match p.track {
            Some(TrackName::Canary) => 0,
            Some(TrackName::Stable) => 1,
            None => 2,
        };
        rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
    });
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
        format!(" Pods ({}) — stale ", pods.len())
    } else {
        format!(" Pods ({}) ", pods.len())
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
