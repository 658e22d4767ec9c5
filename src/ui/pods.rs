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
    let pods: Vec<&PodView> = app.sorted_pods();
    let selected = app
        .view
        .pod_selected
        .as_ref()
        .and_then(|name| pods.iter().position(|p| &p.name == name));
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
        format!(" Pods ({}) {sort}— stale ", pods.len())
    } else {
        format!(" Pods ({}) {sort}", pods.len())
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
