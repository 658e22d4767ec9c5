//! The traffic panel: the canary weight gauge and the replica summary of both tracks.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge};

use crate::app::App;
use crate::plan::TrackName;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(" Traffic ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [gauge_area, rest] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);

    let stale = !app.traffic.health.is_live();
    let split = replica_split(app);
    let (ratio, label) = match app.traffic.observed {
        _ if app.plan.traffic.is_none() => split,
        Some(w) => {
            let mut label = format!("canary {w} · stable {}%", 100 - w.percent());
            if let Some((_, target)) = app.traffic.requested {
                if target != w {
                    label.push_str(&format!("  → {target}"));
                }
            }
            (f64::from(w.percent()) / 100.0, label)
        }
        None => (0.0, "canary weight unknown".to_string()),
    };
    let mut gauge_style = theme.gauge();
    if stale {
        gauge_style = gauge_style.patch(theme.stale);
    }
    frame.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(Span::styled(label, theme.gauge_label))
            .gauge_style(gauge_style)
            .use_unicode(true),
        gauge_area,
    );

    let mut lines = Vec::new();
    for track in TrackName::BOTH {
        let Some(w) = app.cluster.workloads.get(&track) else {
            continue;
        };
        let tag = crate::cluster::watch::image_tag(&w.image);
        let healthy = w.ready >= w.desired;
        let mut spans = vec![
            Span::styled(
                format!("{:<7}", track.as_str()),
                track_style(app, track).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{:<18} ", w.name)),
            Span::styled(
                format!("{}/{} ready", w.ready, w.desired),
                if healthy { theme.ok } else { theme.warn },
            ),
            // The version before the counts: on a narrow screen the end of the line is cut.
            Span::raw(format!("  image {tag}  {} updated", w.updated)),
        ];
        if let Some(rev) = w.revision {
            spans.push(Span::raw(format!("  rev {rev}")));
        }
        let old = app.cluster.old_pods(track);
        if old > 0 {
            spans.push(Span::styled(
                format!("  {old} old pod{}", if old == 1 { "" } else { "s" }),
                theme.warn,
            ));
        }
        lines.push(Line::from(spans));
    }
    super::cells::paragraph(frame.buffer_mut(), rest, &lines);
}

/// Plans without a traffic router: the share of ready replicas per track stands in for weight.
fn replica_split(app: &App) -> (f64, String) {
    let ready = |t| app.cluster.workloads.get(&t).map_or(0, |w| w.ready);
    let (stable, canary) = (ready(TrackName::Stable), ready(TrackName::Canary));
    let total = stable + canary;
    let ratio = if total == 0 {
        0.0
    } else {
        f64::from(canary) / f64::from(total)
    };
    (
        ratio,
        format!(
            "no traffic router ({}): ready replicas stable {stable} · canary {canary}",
            app.plan.strategy.as_str()
        ),
    )
}

/// The style a track is named in everywhere: the theme's `stable` or `canary`.
pub fn track_style(app: &App, track: TrackName) -> Style {
    match track {
        TrackName::Stable => app.theme.stable,
        TrackName::Canary => app.theme.canary,
    }
}
