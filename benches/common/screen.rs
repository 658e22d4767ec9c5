//! A screen model just good enough for what ratatui's crossterm backend writes: cursor moves
//! (`CSI row;col H`), clears, SGR (ignored) and text. ratatui writes only the cells that
//! changed, so a pod's name is not always contiguous in the byte stream (a new name over an
//! old one with a common prefix writes only the differing tail); replaying the bytes onto a
//! grid tells when the whole name is on screen.

pub struct Screen {
    cols: usize,
    rows: usize,
    cells: Vec<Vec<char>>,
    x: usize,
    y: usize,
    state: State,
    /// A UTF-8 sequence cut by a read boundary.
    partial: Vec<u8>,
}

enum State {
    Ground,
    Esc,
    Csi(Vec<u8>),
    /// OSC and other strings: skipped up to BEL or ESC \.
    Str {
        esc: bool,
    },
}

impl Screen {
    pub fn new(cols: u16, rows: u16) -> Screen {
        let (cols, rows) = (usize::from(cols), usize::from(rows));
        Screen {
            cols,
            rows,
            cells: vec![vec![' '; cols]; rows],
            x: 0,
            y: 0,
            state: State::Ground,
            partial: Vec::new(),
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(bytes);
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            // Control bytes and escape sequences are ASCII; text may be multi-byte.
            if b >= 0x80 && matches!(self.state, State::Ground) {
                let len = match b {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf7 => 4,
                    _ => 1,
                };
                if i + len > buf.len() {
                    self.partial = buf[i..].to_vec();
                    return;
                }
                let c = std::str::from_utf8(&buf[i..i + len])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?');
                self.put(c);
                i += len;
                continue;
            }
            self.byte(b);
            i += 1;
        }
    }

    fn byte(&mut self, b: u8) {
        match &mut self.state {
            State::Ground => match b {
                0x1b => self.state = State::Esc,
                b'\r' => self.x = 0,
                b'\n' => self.y = (self.y + 1).min(self.rows - 1),
                0x08 => self.x = self.x.saturating_sub(1),
                0x00..=0x1f | 0x7f => {}
                _ => self.put(char::from(b)),
            },
            State::Esc => {
                self.state = match b {
                    b'[' => State::Csi(Vec::new()),
                    b']' | b'P' | b'_' | b'^' => State::Str { esc: false },
                    _ => State::Ground,
                }
            }
            State::Csi(params) => {
                if (0x40..=0x7e).contains(&b) {
                    let params = std::mem::take(params);
                    self.state = State::Ground;
                    self.csi(&params, b);
                } else {
                    params.push(b);
                }
            }
            State::Str { esc } => {
                if b == 0x07 || (*esc && b == b'\\') {
                    self.state = State::Ground;
                } else {
                    *esc = b == 0x1b;
                }
            }
        }
    }

    fn csi(&mut self, params: &[u8], final_byte: u8) {
        let text = String::from_utf8_lossy(params);
        if text.starts_with('?') || text.starts_with('>') {
            // The alternate screen starts blank (and the main one is not kept); other private
            // modes (cursor visibility, …) do not touch the grid.
            if matches!(&*text, "?1049" | "?47" | "?1047") {
                self.cells.iter_mut().for_each(|r| r.fill(' '));
            }
            return;
        }
        let nums: Vec<usize> = text.split(';').map(|n| n.parse().unwrap_or(0)).collect();
        let n = |i: usize| nums.get(i).copied().unwrap_or(0);
        let count = n(0).max(1);
        match final_byte {
            b'H' | b'f' => {
                self.y = n(0).max(1).min(self.rows) - 1;
                self.x = n(1).max(1).min(self.cols) - 1;
            }
            b'A' => self.y = self.y.saturating_sub(count),
            b'B' => self.y = (self.y + count).min(self.rows - 1),
            b'C' => self.x = (self.x + count).min(self.cols - 1),
            b'D' => self.x = self.x.saturating_sub(count),
            b'G' => self.x = count.min(self.cols) - 1,
            b'J' => match n(0) {
                2 | 3 => self.cells.iter_mut().for_each(|r| r.fill(' ')),
                0 => {
                    self.cells[self.y][self.x..].fill(' ');
                    self.cells[self.y + 1..]
                        .iter_mut()
                        .for_each(|r| r.fill(' '));
                }
                _ => {}
            },
            b'K' => match n(0) {
                0 => self.cells[self.y][self.x..].fill(' '),
                2 => self.cells[self.y].fill(' '),
                _ => {}
            },
            _ => {}
        }
    }

    /// Every character takes one column: ratatui moves the cursor explicitly after a wide one.
    fn put(&mut self, c: char) {
        if self.x < self.cols {
            self.cells[self.y][self.x] = c;
        }
        self.x = (self.x + 1).min(self.cols);
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.cells
            .iter()
            .any(|row| row.iter().collect::<String>().contains(needle))
    }

    pub fn text(&self) -> String {
        self.cells
            .iter()
            .map(|row| row.iter().collect::<String>().trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
