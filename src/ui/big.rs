//! A big block font for the rollback countdown: digits 0–9 and `s`, five rows high, drawn with
//! `█`, `▀` and `▄` so strokes are about as thick across as down. Pure text, no styling.

/// Rows of every glyph.
pub const HEIGHT: usize = 5;

/// Digits are seven-segment shapes, four columns wide (a `1` has its flag and foot, so it does
/// not read as a bar).
const DIGITS: [[&str; HEIGHT]; 10] = [
    ["█▀▀█", "█  █", "█  █", "█  █", "█▄▄█"],
    [" ▄█ ", "  █ ", "  █ ", "  █ ", " ▄█▄"],
    ["▀▀▀█", "   █", "█▀▀▀", "█   ", "█▄▄▄"],
    ["▀▀▀█", "   █", "▀▀▀█", "   █", "▄▄▄█"],
    ["█  █", "█  █", "▀▀▀█", "   █", "   █"],
    ["█▀▀▀", "█   ", "▀▀▀█", "   █", "▄▄▄█"],
    ["█▀▀▀", "█   ", "█▀▀█", "█  █", "█▄▄█"],
    ["▀▀▀█", "   █", "   █", "   █", "   █"],
    ["█▀▀█", "█  █", "█▀▀█", "█  █", "█▄▄█"],
    ["█▀▀█", "█  █", "▀▀▀█", "   █", "▄▄▄█"],
];

/// A lower-case `s`: three rows high, sitting on the baseline, so `75s` does not read `755`.
const S: [&str; HEIGHT] = ["   ", "   ", "█▀▀", "▀▀█", "▄▄█"];

fn glyph(c: char) -> Option<&'static [&'static str; HEIGHT]> {
    match c {
        's' => Some(&S),
        _ => c
            .to_digit(10)
            .and_then(|d| DIGITS.get(usize::try_from(d).ok()?)),
    }
}

/// `text` in the big font, one string per row, glyphs one column apart. Characters the font
/// does not have are left out.
pub fn render(text: &str) -> [String; HEIGHT] {
    let mut rows: [String; HEIGHT] = Default::default();
    for (i, g) in text.chars().filter_map(glyph).enumerate() {
        for (row, part) in rows.iter_mut().zip(g.iter()) {
            if i > 0 {
                row.push(' ');
            }
            row.push_str(part);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glyph_is_a_block_of_equal_rows_made_of_block_characters() {
        for g in DIGITS.iter().chain(std::iter::once(&S)) {
            let w = g[0].chars().count();
            for row in g {
                assert_eq!(row.chars().count(), w, "{g:?}");
                assert!(
                    row.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄')),
                    "{g:?}"
                );
            }
        }
    }

    #[test]
    fn a_countdown_renders_as_five_rows_of_one_width() {
        let rows = render("10s");
        assert_eq!(
            rows,
            [
                " ▄█  █▀▀█    ",
                "  █  █  █    ",
                "  █  █  █ █▀▀",
                "  █  █  █ ▀▀█",
                " ▄█▄ █▄▄█ ▄▄█",
            ]
            .map(String::from)
        );
        assert!(rows.iter().all(|r| r.chars().count() == 13));
        assert!(render("7s").iter().all(|r| r.chars().count() == 8));
    }

    #[test]
    fn unknown_characters_are_left_out() {
        assert_eq!(render("7-s"), render("7s"));
        assert!(render("").iter().all(String::is_empty));
    }
}
