//! Writing cells straight into the buffer, for what is drawn with many cells every frame (the
//! Health panel's charts, the pod table). A `Paragraph` or `Table` costs, per cell, a grapheme
//! segmentation, a width lookup, a bounds-checked index and a style merge, a table several
//! times over; these find a row's cells once and write each cell once. What they write is what
//! those widgets would: they clip to the buffer the same way, and text that is not plain ASCII
//! goes through ratatui's own `Text`.

use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Text;
use ratatui::widgets::Widget;

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
