//! The modals over the main screen: the question before a change, the rollback and drill menus,
//! the weight field and the command line. Draws from `&App` only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use tui_input::Input;

use super::help::centred;
use crate::app::App;
use crate::app::input::{line_hint, parse_weight, traffic_object, weight_change};
use crate::app::modal::{Confirm, DRILL_DURATIONS, DRILLS, DrillMenu, LineEdit, Modal, tiers};

/// Draws the modal on top (help is drawn by `help`). `body` is the area above the key bar.
pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    match app.modal() {
        Some(Modal::Confirm(c)) => confirm(app, frame, body, c),
        Some(Modal::RollbackMenu { selected }) => rollback_menu(app, frame, body, *selected),
        Some(Modal::Drills(menu)) => drills(app, frame, body, *menu),
        Some(Modal::SetWeight(input)) => weight(app, frame, body, input),
        Some(Modal::CommandLine(line)) => command_line(app, frame, body, line),
        Some(Modal::Help) => super::help::render_help(app, frame, body),
        Some(Modal::Withdrawn(question)) => withdrawn(app, frame, body, question),
        None => {}
    }
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// Secondary text.
fn dim(app: &App) -> Style {
    app.theme.muted
}

/// A box with a heavy border: what is asked is in front of everything.
fn popup<'a>(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    title: &'a str,
    lines: Vec<Line<'a>>,
    danger: bool,
) {
    let border = if danger {
        app.theme.modal_border_danger
    } else {
        app.theme.modal_border
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Thick)
                .border_style(border)
                .title(Span::styled(title, bold())),
        ),
        area,
    );
}

/// Rows `lines` take wrapped in `width` columns (inside the border).
fn rows(lines: &[Line], width: u16) -> u16 {
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let n: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    u16::try_from(n).unwrap_or(u16::MAX).saturating_add(2)
}

fn confirm(app: &App, frame: &mut Frame, body: Rect, c: &Confirm) {
    let width = 76.min(body.width);
    let lines = vec![
        Line::from(Span::styled(c.question.clone(), bold())),
        Line::from(""),
        Line::from(vec![
            Span::styled(" y ", app.theme.key_yes),
            Span::raw(" yes, do it    "),
            Span::styled(" n ", app.theme.key),
            Span::raw(" / "),
            Span::styled(" esc ", app.theme.key),
            Span::raw(" no"),
        ]),
        Line::from(Span::styled(
            format!("asked because: {} · ! rolls back without asking", c.why),
            dim(app),
        )),
    ];
    let area = centred(body, width, rows(&lines, width));
    popup(
        app,
        frame,
        area,
        " Confirm ",
        lines,
        c.why == "rollback tier",
    );
}

fn withdrawn(app: &App, frame: &mut Frame, body: Rect, question: &str) {
    let width = 76.min(body.width);
    let lines = vec![
        Line::from(Span::styled(
            "The question was withdrawn: the run moved on before the answer.",
            bold(),
        )),
        Line::from(Span::styled(format!("It was: {question}"), dim(app))),
        Line::from(""),
        Line::from("Nothing was done. Any key closes this; look at the screen, then ask again."),
    ];
    let area = centred(body, width, rows(&lines, width));
    popup(app, frame, area, " Withdrawn ", lines, false);
}

fn rollback_menu(app: &App, frame: &mut Frame, body: Rect, selected: usize) {
    let width = 84.min(body.width);
    let mut lines = Vec::new();
    for (i, tier) in tiers(&app.plan).into_iter().enumerate() {
        let target = crate::app::modal::tier_target(&app.plan, tier)
            .map(|t| format!("target {t}"))
            .unwrap_or_else(|| "no target".into());
        let chosen = i == selected;
        let marker = if chosen { "▶" } else { " " };
        let style = if chosen {
            bold().patch(app.theme.selected)
        } else {
            bold()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!("{marker} {} {} ", i + 1, tier.as_str().to_uppercase()),
                style,
            ),
            Span::styled(format!("  {target}"), dim(app)),
        ]));
        let detail = match app.deployment.rollback_preview(tier) {
            Ok(actions) => Span::raw(format!("     {}", actions.join(" → "))),
            Err(why) => Span::styled(format!("     not now: {why}"), dim(app)),
        };
        lines.push(Line::from(detail));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!(
            "acts in {} · each tier asks y · ! is the immediate tier, no question",
            crate::app::input::rollback_where(app)
        ),
        dim(app),
    )));
    let area = centred(body, width, rows(&lines, width));
    popup(app, frame, area, " Rollback ", lines, true);
}

fn drills(app: &App, frame: &mut Frame, body: Rect, menu: DrillMenu) {
    let width = 84.min(body.width);
    let duration = DRILL_DURATIONS[menu.duration.min(DRILL_DURATIONS.len() - 1)];
    let mut lines = vec![Line::from(vec![
        Span::raw("for "),
        Span::styled(
            format!("◀ {} s ▶", duration.as_secs()),
            bold().patch(app.theme.selected),
        ),
        Span::styled(
            format!(
                "   in {} (simulator) — never a real cluster",
                app.target.environment
            ),
            dim(app),
        ),
    ])];
    for (i, drill) in DRILLS.iter().enumerate() {
        let chosen = i == menu.selected;
        let style = if chosen {
            bold().patch(app.theme.selected)
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(
            format!("{} {}", if chosen { "▶" } else { " " }, drill.label),
            style,
        )));
        if chosen {
            lines.push(Line::from(Span::styled(
                format!("    expect: {}", drill.expect),
                dim(app),
            )));
        }
    }
    let area = centred(body, width, rows(&lines, width));
    popup(app, frame, area, " Drills ", lines, false);
}

/// `text` with a block cursor at the input's cursor.
fn with_cursor(input: &Input) -> Vec<Span<'static>> {
    let value: Vec<char> = input.value().chars().collect();
    let at = input.cursor().min(value.len());
    let before: String = value[..at].iter().collect();
    let under: String = value.get(at).map_or(" ".into(), |c| c.to_string());
    let after: String = value
        .get(at + 1..)
        .map_or(String::new(), |r| r.iter().collect());
    vec![
        Span::styled(before, bold()),
        Span::styled(under, bold().add_modifier(Modifier::REVERSED)),
        Span::styled(after, bold()),
    ]
}

fn answer(app: &App, result: Result<String, String>) -> Line<'static> {
    match result {
        Ok(text) => Line::from(Span::styled(format!("→ {text}"), app.theme.ok)),
        Err(why) => Line::from(Span::styled(format!("✗ {why}"), app.theme.warn)),
    }
}

/// A two-line box at the bottom of the body, over the log.
fn bottom_box(body: Rect) -> Rect {
    let height = 4.min(body.height);
    Rect {
        x: body.x,
        y: body.y + body.height.saturating_sub(height),
        width: body.width,
        height,
    }
}

fn weight(app: &App, frame: &mut Frame, body: Rect, input: &Input) {
    let check = match parse_weight(input.value()).and_then(|t| Ok((t, weight_change(app, t)?))) {
        Err(why) => Err(why),
        Ok((target, base)) => Ok(format!(
            "set canary weight {base} → {target} on {}{}",
            traffic_object(app),
            if crate::app::input::confirm_reason(app).is_some() {
                " (asks y)"
            } else {
                ""
            }
        )),
    };
    let mut first = vec![Span::styled("canary weight % ", bold())];
    first.extend(with_cursor(input));
    let lines = vec![Line::from(first), answer(app, check)];
    popup(app, frame, bottom_box(body), " Set weight ", lines, false);
}

fn command_line(app: &App, frame: &mut Frame, body: Rect, line: &LineEdit) {
    let mut first = vec![Span::styled(":", bold())];
    first.extend(with_cursor(&line.input));
    let lines = vec![
        Line::from(first),
        answer(app, line_hint(app, line.input.value())),
    ];
    popup(app, frame, bottom_box(body), " Command ", lines, false);
}
