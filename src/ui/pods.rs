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
    let rows = pods.iter().map(|p| {
        let status_style = match p.status.as_str() {
            "Running" if p.ready_containers == p.total_containers => Style::new().fg(Color::Green),
            "Running" | "Pending" | "ContainerCreating" | "Terminating" => {
                Style::new().fg(Color::Yellow)
            }
            _ => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        let track = p.track.map_or("-", TrackName::as_str);
        let mut row = Row::new(vec![
            Cell::from(p.name.clone()),
            Cell::from(track).style(Style::new().fg(p.track.map_or(Color::Gray, track_color))),
            Cell::from(format!("{}/{}", p.ready_containers, p.total_containers)),
            Cell::from(p.status.clone()).style(status_style),
            Cell::from(p.restarts.to_string()),
            Cell::from(format::age(p.created, app.now)),
            Cell::from(p.version.clone()),
        ]);
        if dim {
            row = row.style(Style::new().add_modifier(Modifier::DIM));
        }
        row
    });
    let header = Row::new([
        "NAME", "TRACK", "READY", "STATUS", "RESTARTS", "AGE", "VERSION",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let title = if dim {
        format!(" Pods ({}) — stale ", pods.len())
    } else {
        format!(" Pods ({}) ", pods.len())
    };
    let table = Table::new(
        rows,
        [
            Constraint::Min(30),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}
