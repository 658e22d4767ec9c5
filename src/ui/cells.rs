//! Writing cells straight into the buffer, for what is drawn with many cells every frame (the
//! Health panel's charts, the pod table). A `Paragraph` or `Table` costs, per cell, a grapheme
//! segmentation, a width lookup, a bounds-checked index and a style merge, a table several
//! times over; these find a row's cells once and write each cell once. What they write is what
//! those widgets would: they clip to the buffer the same way, and text that is not plain ASCII
//! goes through ratatui's own `Text`.

use ratatui::buffer::{Buffer, Cell, CellWidth};
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Paragraph, Widget};

/// The cells of row `row` (0 is the top) of `area`, clipped to the buffer as ratatui's widgets
/// clip: to `area ∩ buffer`, counted from its top left. Empty when that row is not inside it.
pub(super) fn row_mut(buf: &mut Buffer, area: Rect, row: u16) -> &mut [Cell] {
    let area = area.intersection(buf.area);
    if row >= area.height || area.width == 0 {
        return &mut [];
    }
    let width = usize::from(buf.area.width);
    let start = usize::from(area.y + row - buf.area.y) * width + usize::from(area.x - buf.area.x);
    let end = start + usize::from(area.width);
    buf.content.get_mut(start..end).unwrap_or(&mut [])
}

/// Patches `style` onto every cell, as `Buffer::set_style` does, skipping the no-op default.
pub(super) fn set_style(cells: &mut [Cell], style: Style) {
    if style == Style::new() {
        return;
    }
    for cell in cells {
        cell.set_style(style);
    }
}

/// Whether every byte of `text` is printable ASCII: then each byte is one grapheme one column
/// wide, and writing a byte a cell draws what a `Span` of it would.
fn plain_ascii(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Draws `text` unstyled and left-aligned in `area`, as the `Text` a table cell made from a
/// string draws (each line cut at the area's width); printable ASCII written directly.
pub(super) fn text(buf: &mut Buffer, area: Rect, text: &str) {
    if !plain_ascii(text) {
        Text::raw(text).render(area, buf);
        return;
    }
    let cells = row_mut(buf, area, 0);
    for (cell, i) in cells.iter_mut().zip(0..text.len()) {
        // Printable ASCII: every index is a char boundary.
        cell.set_symbol(text.get(i..=i).unwrap_or(" "));
    }
}

/// Draws `lines` as `Paragraph::new(lines)` draws them in `area` (no wrapping, no scrolling,
/// default style: its passes over the area change no cell and are left out). A left-aligned line
/// is drawn here, a line aligned otherwise by a `Paragraph` of its own row.
pub(super) fn paragraph(buf: &mut Buffer, area: Rect, lines: &[Line]) {
    let area = area.intersection(buf.area);
    for (y, line) in (0..area.height).zip(lines) {
        if matches!(line.alignment, None | Some(Alignment::Left)) {
            line_mut(row_mut(buf, area, y), line);
        } else {
            let row = Rect {
                y: area.y + y,
                height: 1,
                ..area
            };
            Paragraph::new(line.clone()).render(row, buf);
        }
    }
}

/// `Paragraph::new(lines).block(block)` in `area`: the block, then the lines inside it.
pub(super) fn paragraph_in(buf: &mut Buffer, area: Rect, block: Block, lines: &[Line]) {
    let area = area.intersection(buf.area);
    let inner = block.inner(area);
    block.render(area, buf);
    paragraph(buf, inner, lines);
}

/// One left-aligned line into a row's `cells`, as a `Paragraph` draws it: each grapheme with the
/// line's style patched by its span's, control characters and zero-width graphemes left out, a
/// grapheme wider than the row skipped, and the line cut before the first that does not fit.
/// Plain ASCII spans are written a byte a cell, which is the same.
fn line_mut(cells: &mut [Cell], line: &Line) {
    let width = cells.len();
    let mut x = 0;
    for span in &line.spans {
        if plain_ascii(&span.content) {
            let style = line.style.patch(span.style);
            for i in 0..span.content.len() {
                let Some(cell) = cells.get_mut(x) else {
                    return;
                };
                cell.set_symbol(span.content.get(i..=i).unwrap_or(" "))
                    .set_style(style);
                x += 1;
            }
            continue;
        }
        for grapheme in span.styled_graphemes(line.style) {
            let w = usize::from(grapheme.symbol.cell_width());
            if w > width {
                continue;
            }
            if x + w > width {
                return;
            }
            if let Some(cell) = cells.get_mut(x).filter(|_| w > 0) {
                cell.set_symbol(grapheme.symbol).set_style(grapheme.style);
                x += w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::{Color, Modifier};
    use ratatui::text::Span;
    use ratatui::widgets::Borders;

    use super::*;

    /// Odd text: wide, zero-width and combining graphemes, control characters, an emoji with
    /// VS16, styled spans and lines, lines aligned otherwise, empty ones.
    fn odd_lines() -> Vec<Line<'static>> {
        vec![
            Line::from(vec![
                Span::styled("ab", Style::new().fg(Color::Red)),
                Span::raw(" ✓ ok "),
                Span::styled("界界x", Style::new().add_modifier(Modifier::BOLD)),
            ]),
            Line::from("e\u{301}\u{200b}z\tq\r\nw").style(Style::new().bg(Color::Blue)),
            Line::from(vec![
                Span::raw("❤\u{fe0f}🚀"),
                Span::styled("plain ascii that runs long", Style::new().fg(Color::Cyan)),
            ]),
            Line::from("right").alignment(Alignment::Right),
            Line::from("centred ·").alignment(Alignment::Center),
            Line::default(),
            Line::from(vec![
                Span::raw(""),
                Span::styled("── end", Style::new().add_modifier(Modifier::DIM)),
            ]),
        ]
    }

    /// A buffer already drawn on, so styles are seen to be patched, not set.
    fn drawn_on() -> Buffer {
        let mut cell = Cell::EMPTY;
        cell.set_symbol("x").set_fg(Color::Green);
        Buffer::filled(Rect::new(0, 0, 16, 10), cell)
    }

    /// Areas of every small size, inside the buffer and hanging off its edges.
    fn areas() -> impl Iterator<Item = Rect> {
        (0..14)
            .flat_map(|w| (0..9).flat_map(move |h| [Rect::new(1, 1, w, h), Rect::new(10, 6, w, h)]))
    }

    #[test]
    fn paragraph_draws_what_a_ratatui_paragraph_draws() {
        let lines = odd_lines();
        for area in areas() {
            let (mut ours, mut theirs) = (drawn_on(), drawn_on());
            paragraph(&mut ours, area, &lines);
            Paragraph::new(lines.clone()).render(area, &mut theirs);
            assert_eq!(ours, theirs, "{area:?}");

            let block = Block::default().borders(Borders::ALL).title(" t ");
            let (mut ours, mut theirs) = (drawn_on(), drawn_on());
            paragraph_in(&mut ours, area, block.clone(), &lines);
            Paragraph::new(lines.clone())
                .block(block)
                .render(area, &mut theirs);
            assert_eq!(ours, theirs, "{area:?} in a block");
        }
    }

    #[test]
    fn text_draws_what_a_ratatui_text_draws() {
        for s in [
            "NAME",
            "checkout-7d9f8b6c5-0a1b2",
            "",
            "ünï界🚀e\u{301}",
            "Crash\nLoop",
            "v\t2",
        ] {
            for area in areas() {
                let (mut ours, mut theirs) = (drawn_on(), drawn_on());
                text(&mut ours, area, s);
                Text::raw(s).render(area, &mut theirs);
                assert_eq!(ours, theirs, "{s:?} in {area:?}");
            }
        }
    }

    #[test]
    fn rows_are_clipped_to_the_buffer() {
        let mut buf = drawn_on();
        assert_eq!(row_mut(&mut buf, Rect::new(10, 6, 20, 20), 0).len(), 6);
        assert_eq!(row_mut(&mut buf, Rect::new(10, 6, 20, 20), 3).len(), 6);
        assert!(row_mut(&mut buf, Rect::new(10, 6, 20, 20), 4).is_empty());
        assert!(row_mut(&mut buf, Rect::new(20, 0, 5, 5), 0).is_empty());
        assert!(row_mut(&mut buf, Rect::new(0, 0, 0, 5), 0).is_empty());
    }
}
