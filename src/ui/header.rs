//! The header: what is being deployed where, by whom, how the sources are doing, the clock.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::format;
use crate::app::App;
use crate::app::model::Mode;
use crate::engine::RunStatus;
use crate::health::Health;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let plan = &app.plan;
    let status = app.deployment.status;
    let theme = &app.theme;
    let status_style = match status {
        RunStatus::Running => theme.badge_running,
        RunStatus::Complete => theme.badge_complete,
        RunStatus::Paused | RunStatus::Ready => theme.badge_paused,
        RunStatus::Failed
        | RunStatus::RollingBack
        | RunStatus::RolledBack
        | RunStatus::RollbackFailed => theme.badge_failed,
    };
    let observer = app.mode == Mode::Observer;
    let mut line1 = vec![Span::styled(" WARROOM ", theme.title)];
    // An observer's screen looks like the run's console; this says whose keys are not these.
    if observer {
        line1.push(Span::raw(" "));
        line1.push(Span::styled(" OBSERVER ", theme.observer));
    }
    // The state's own badge, apart from the name's: without colour both are reverse video.
    // On a narrow terminal a long state (a failed action's label) is cut so the clock stays.
    let headline = app.deployment.headline(app.now);
    let room = usize::from(area.width / 2).max(24);
    line1.extend([
        Span::raw(" "),
        // Status and clock first: they must survive the narrowest terminal.
        Span::styled(
            format!(" {} ", super::format::cut_end(&headline, room)),
            status_style,
        ),
        Span::raw(format!(" {} ", format::clock(app.now, &app.tz))),
        Span::styled(plan.name.clone(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            " · {} · risk {} · env {} · {} @ {}",
            plan.strategy.as_str(),
            format!("{:?}", plan.risk).to_uppercase(),
            app.target.environment,
            app.target.namespace,
            app.target.context,
        )),
        // An observer's second line says who is at the keys, where it has room.
        Span::raw(if observer {
            String::new()
        } else {
            format!(" · op {}", app.operator)
        }),
    ]);
    let line1 = Line::from(line1);
    let mut line2 = vec![Span::raw(" ")];
    // The countdown first: it is the one thing on screen with a deadline.
    if let Some(c) = &app.deployment.countdown {
        let left = c.ends.duration_since(app.now).unwrap_or_default();
        line2.push(Span::styled(
            format!(
                " ROLLBACK {} IN {}s — {} · {} ",
                c.tier.as_str().to_uppercase(),
                left.as_secs(),
                if observer {
                    "x at the run's console cancels".to_string()
                } else {
                    // The key as bound: the config file may have moved it.
                    format!(
                        "{} cancels",
                        app.keymap
                            .key_of(crate::app::keymap::Command::CancelCountdown)
                    )
                },
                c.reason
            ),
            theme.alarm,
        ));
        line2.push(Span::raw("  "));
    } else if let Some(banner) = &app.deployment.banner {
        line2.push(Span::styled(format!(" ⚠ {banner} "), theme.banner));
        line2.push(Span::raw("  "));
    }
    // Drills are the simulator's faults, not the system's: named as such, and first after the
    // countdown, so nobody mistakes a rehearsal for an incident (or the other way round).
    if let Some(drills) = app.drills.as_ref().filter(|d| !d.active.is_empty()) {
        let list: Vec<String> = drills
            .active
            .iter()
            .map(|d| match d.ends {
                Some(ends) => format!(
                    "{} {}s",
                    d.kind,
                    ends.duration_since(app.now).unwrap_or_default().as_secs()
                ),
                None => d.kind.clone(),
            })
            .collect();
        line2.push(Span::styled(
            format!(" DRILL: {} ", list.join(", ")),
            theme.drill,
        ));
        line2.push(Span::raw("  "));
    }
    if observer {
        line2.push(Span::styled(
            format!("at the keys: {}", app.operator),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        line2.push(Span::raw("   "));
    }
    // An observer watches pods only; weight and samples are the run's, from its journal.
    let sources: &[(&str, &Health)] = if observer {
        &[("kube", &app.cluster.health)]
    } else {
        &[
            ("kube", &app.cluster.health),
            ("traffic", &app.traffic.health),
            ("prometheus", &app.metrics.health),
        ]
    };
    for (name, health) in sources {
        let (dot, style, word) = match &app.cluster_off {
            Some(_) if observer => ("○", theme.muted, "not connected".into()),
            _ => health_badge(health, app),
        };
        line2.push(Span::raw(format!("{name} ")));
        line2.push(Span::styled(format!("{dot} {word}"), style));
        line2.push(Span::raw("   "));
    }
    // Without a journal the run cannot be resumed or reported: it stays on screen.
    if app.journal_error.is_some() {
        line2.push(Span::styled(" JOURNAL NOT WRITTEN ", theme.journal_error));
        line2.push(Span::raw("   "));
    }
    if observer {
        line2.push(Span::styled(
            "weight and metrics from the journal   ",
            theme.muted,
        ));
    }
    if let Some(hint) = &app.target.kubeconfig_hint {
        line2.push(Span::styled(format!("kubeconfig: {hint}"), theme.info));
    }
    super::cells::paragraph(frame.buffer_mut(), area, &[line1, Line::from(line2)]);
}

/// A source's dot and word; a failing source says since when, so a pair at the console can tell
/// a blip from an outage.
fn health_badge(h: &Health, app: &App) -> (&'static str, Style, String) {
    let theme = &app.theme;
    match h {
        Health::Connecting => ("○", theme.warn, "connecting".into()),
        Health::Live => ("●", theme.ok, "live".into()),
        Health::Degraded { since, .. } => (
            "●",
            theme.bad,
            format!("reconnecting since {}", format::clock(*since, &app.tz)),
        ),
        Health::Forbidden(_) => ("●", theme.bad, "FORBIDDEN".into()),
    }
}
