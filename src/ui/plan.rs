//! The plan panel: phases with progress, and the current phase's steps with their state.
//! Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::App;
use crate::engine::StepState;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let d = &app.deployment;
    let theme = &app.theme;
    let current_phase = d.cursor.map(|c| c.phase);
    let bar_width = usize::from(area.width.saturating_sub(4)).clamp(4, 14);
    let mut lines = Vec::new();
    for (i, phase) in d.phases.iter().enumerate() {
        let total = phase.slots.len().max(1);
        let done = phase.done();
        let filled = done * bar_width / total;
        let is_current = current_phase == Some(i);
        let complete = done == phase.slots.len();
        let (marker, name_style) = if is_current {
            ("▶ ", theme.accent)
        } else if complete {
            // A word or symbol for every state colour marks: a phase done has its tick.
            ("✓ ", theme.ok)
        } else {
            ("  ", theme.pending)
        };
        lines.push(Line::from(vec![
            Span::styled(marker, name_style),
            Span::styled(phase.name.clone(), name_style),
        ]));
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled("█".repeat(filled), theme.progress_done),
            Span::styled("░".repeat(bar_width - filled), theme.progress_todo),
            Span::raw(format!(" {done}/{}", phase.slots.len())),
        ]));
        if is_current {
            for (j, slot) in phase.slots.iter().enumerate() {
                let (icon, style) = match &slot.state {
                    StepState::Done => ("✓", theme.ok),
                    StepState::Running { .. } => ("▶", theme.accent),
                    StepState::Waiting | StepState::Blocked(_) => ("⏸", theme.waiting),
                    StepState::Failed(_) => ("✗", theme.bad),
                    StepState::Pending => ("·", theme.pending),
                };
                let mut text = slot.label.clone();
                if let (StepState::Running { since }, crate::engine::StepWork::Hold(total)) =
                    (&slot.state, &slot.work)
                {
                    // A paused hold's clock stops where it was paused; a breaching or missing
                    // sample starts its clean time again.
                    let upto = d.paused.as_ref().map_or(app.now, |(_, at)| *at);
                    let from = d.hold_clean_since().unwrap_or(*since);
                    let held = upto.duration_since(from).unwrap_or_default();
                    match total.checked_sub(held) {
                        Some(left) if !left.is_zero() => {
                            text.push_str(&format!(" ({}s left)", left.as_secs()))
                        }
                        _ => {
                            let why = d.hold_waiting_for().unwrap_or_default();
                            text.push_str(&format!(" (time up; {why})"));
                        }
                    }
                }
                if let StepState::Blocked(why) = &slot.state {
                    text.push_str(&format!(" — {why}"));
                }
                let cursor = d.cursor.is_some_and(|c| c.slot == j);
                let room = usize::from(area.width.saturating_sub(8));
                let selected = app.view.focus == crate::app::modal::Focus::Plan
                    && app.view.plan_selected == Some(crate::engine::StepRef { phase: i, slot: j });
                let style = if selected {
                    style.patch(theme.selected)
                } else {
                    style
                };
                lines.push(Line::from(vec![
                    Span::raw(if cursor { "  › " } else { "    " }),
                    Span::styled(
                        format!("{icon} {}", super::format::cut_end(&text, room)),
                        style,
                    ),
                ]));
            }
        }
    }
    if let Some(r) = &d.rollback {
        lines.push(Line::from(Span::styled(
            format!("Rollback ({})", r.tier.as_str()),
            theme.bad,
        )));
        let room = usize::from(area.width.saturating_sub(6));
        for a in &r.actions {
            let (icon, style) = match &a.state {
                StepState::Done => ("✓", theme.ok),
                StepState::Failed(_) => ("✗", theme.bad),
                StepState::Running { .. } => ("▶", theme.accent),
                _ => ("·", theme.pending),
            };
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(
                    format!("{icon} {}", super::format::cut_end(&a.label, room)),
                    style,
                ),
            ]));
        }
    }
    let block = super::panel(app, crate::app::modal::Focus::Plan, " Plan ".into());
    super::cells::paragraph_in(frame.buffer_mut(), area, block, &lines);
}
