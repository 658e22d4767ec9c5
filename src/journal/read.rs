//! Reading a journal back: every whole line, and a torn last one (the process died mid-write)
//! left out with a warning. A bad line anywhere else is an error naming it.

use std::path::Path;

use super::Record;
use super::record::{Line, Start, VERSION};

/// A journal as read.
#[derive(Debug, Clone)]
pub struct Read {
    pub lines: Vec<Line>,
    /// Why the last line was left out, if it was.
    pub torn: Option<String>,
    /// Bytes up to the end of the last whole line: where a resumed run appends.
    pub length: u64,
}

impl Read {
    /// The `start` line.
    pub fn start(&self) -> Option<&Start> {
        match self.lines.first().map(|l| &l.record) {
            Some(Record::Start(start)) => Some(start),
            _ => None,
        }
    }

    /// The number the next line gets.
    pub fn next_seq(&self) -> u64 {
        self.lines.last().map_or(0, |l| l.seq + 1)
    }
}

/// Why a journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a journal line: {why}")]
    BadLine {
        path: String,
        line: usize,
        why: String,
    },
    #[error("{path}: journal format version {found}; this warroom reads version {VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path}: empty, or its first line is not the run's start")]
    NoStart { path: String },
}

/// Reads `path` whole.
pub fn read(path: &Path) -> Result<Read, ReadError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: name.clone(),
        source,
    })?;
    parse(&name, &bytes)
}

/// A journal's bytes cut into lines as the writer wrote them: every line that ends with its
/// newline (numbered from 1, with the offset just past it), and a last line without one — what
/// a process killed mid-write leaves — apart. `--resume`, `watch` and `report` all read
/// journals through this, so they agree on what is torn.
pub struct Split<'a> {
    pub whole: Vec<(usize, &'a [u8], usize)>,
    /// The torn last line's number and length in bytes.
    pub torn: Option<(usize, usize)>,
}

pub fn split(bytes: &[u8]) -> Split<'_> {
    let mut whole = Vec::new();
    let mut torn = None;
    let mut offset = 0usize;
    let mut number = 0usize;
    while offset < bytes.len() {
        number += 1;
        let rest = &bytes[offset..];
        match rest.iter().position(|b| *b == b'\n') {
            Some(end) => {
                whole.push((number, &rest[..end], offset + end + 1));
                offset += end + 1;
            }
            None => {
                torn = Some((number, rest.len()));
                offset = bytes.len();
            }
        }
    }
    Split { whole, torn }
}

/// Parses a journal's bytes; `name` is for messages.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Read, ReadError> {
    let split = split(bytes);
    let mut lines = Vec::with_capacity(split.whole.len());
    let mut length = 0u64;
    for (number, text, end) in split.whole {
        let parsed = std::str::from_utf8(text)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Line>(t).map_err(|e| e.to_string()));
        // A whole line that does not read is damage (or a newer warroom's line): never cut off
        // as if it were torn.
        let line = parsed.map_err(|why| ReadError::BadLine {
            path: name.to_string(),
            line: number,
            why,
        })?;
        if line.v != VERSION {
            return Err(ReadError::Version {
                path: name.to_string(),
                found: line.v,
            });
        }
        lines.push(line);
        length = end as u64;
    }
    let torn = split.torn.map(|(number, _)| {
        format!(
            "{name}:{number}: the last line is incomplete (the process stopped while writing it); it was left out"
        )
    });
    if !matches!(lines.first().map(|l| &l.record), Some(Record::Start(_))) {
        return Err(ReadError::NoStart {
            path: name.to_string(),
        });
    }
    Ok(Read {
        lines,
        torn,
        length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"v":1,"seq":0,"at":"2026-12-02T10:00:00Z","type":"start","run_id":"r1","warroom":"0.1.0","plan":{"path":"p.yaml","name":"p","sha256":"00","text":""},"environments":[],"operator":"alice","host":"h","mode":"headless","auto_approve":"nothing"}"#;
    const TICK: &str = r#"{"v":1,"seq":1,"at":"2026-12-02T10:00:01Z","type":"tick"}"#;

    #[test]
    fn a_torn_last_line_is_left_out_with_a_warning_and_the_length_ends_before_it() {
        let text = format!("{START}\n{TICK}\n{{\"v\":1,\"seq\":2,\"at\"");
        let read = parse("j.jsonl", text.as_bytes()).expect("reads");
        assert_eq!(read.lines.len(), 2);
        assert_eq!(read.length as usize, START.len() + TICK.len() + 2);
        assert!(
            read.torn
                .as_deref()
                .is_some_and(|t| t.contains("j.jsonl:3"))
        );
        assert_eq!(read.next_seq(), 2);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let text = format!("{START}\nnot json\n{TICK}\n");
        let err = parse("j.jsonl", text.as_bytes()).expect_err("refused");
        assert!(err.to_string().starts_with("j.jsonl:2: "), "{err}");
    }

    #[test]
    fn a_journal_must_begin_with_its_start() {
        let err = parse("j.jsonl", format!("{TICK}\n").as_bytes()).expect_err("refused");
        assert!(matches!(err, ReadError::NoStart { .. }));
    }
}
