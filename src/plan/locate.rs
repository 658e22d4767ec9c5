//! Where things are in a plan's source: a light YAML tree with the line and column of every key
//! and value, so diagnostics can point at the exact place. Reads text only; knows no plan types.

use std::collections::BTreeSet;

use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span};

/// A 1-based line and column, and the byte offset they stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Byte offset into the source, when known.
    pub byte: Option<usize>,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
            byte: span.start.byte_offset(),
        }
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (for quoted scalars: the opening quote).
    pub pos: Pos,
    /// What it holds.
    pub kind: NodeKind,
}

/// The shapes a YAML node can take.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar and whether it was written plain (unquoted, not a block scalar).
    Scalar {
        /// The scalar's text after escapes.
        text: String,
        /// Unquoted, on one line.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
    /// An alias (`*name`); its target is not followed.
    Alias,
}

/// One key of a mapping and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key's text (empty for a non-scalar key).
    pub key: String,
    /// Where the key starts.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

/// One step of a path into the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

impl<'a> From<&'a str> for Seg<'a> {
    fn from(key: &'a str) -> Self {
        Seg::Key(key)
    }
}

impl<'a> From<&'a String> for Seg<'a> {
    fn from(key: &'a String) -> Self {
        Seg::Key(key.as_str())
    }
}

impl From<usize> for Seg<'_> {
    fn from(index: usize) -> Self {
        Seg::Index(index)
    }
}

/// Builds a `[Seg]` path: `path!["phases", 2, "steps"]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => {
        [$($crate::plan::locate::Seg::from($seg)),*]
    };
}

/// A parsed plan source: its tree and the lines that carry a comment.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// The document's root, `None` for an empty document.
    pub root: Option<Node>,
    comment_lines: BTreeSet<usize>,
    line_starts: Vec<usize>,
    text: String,
}

/// YAML that does not even parse as YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser gave up.
    pub pos: Pos,
    /// What it said.
    pub message: String,
}

enum Open {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<Entry>, Option<(String, Pos)>),
}

impl Doc {
    /// Parses `text` into a located tree (first document only).
    pub fn parse(text: &str) -> Result<Doc, SyntaxError> {
        let mut options = Options::default();
        options.set_emit_comments(true);
        let parser = Parser::new_from_str_with_options(text, options);
        let mut stack: Vec<Open> = Vec::new();
        let mut root: Option<Node> = None;
        let mut comment_lines = BTreeSet::new();
        for item in parser {
            let (event, span) = item.map_err(|e| SyntaxError {
                pos: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    byte: e.marker().byte_offset(),
                },
                message: e.info().to_string(),
            })?;
            let pos = Pos::from_span(&span);
            let finished = match event {
                Event::Comment(..) => {
                    comment_lines.insert(pos.line);
                    None
                }
                Event::Scalar(value, style, ..) => Some(Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text: value.into_owned(),
                        plain: matches!(style, ScalarStyle::Plain)
                            && span.start.line() == span.end.line(),
                    },
                }),
                Event::Alias(_) | Event::UnresolvedAlias(_) => Some(Node {
                    pos,
                    kind: NodeKind::Alias,
                }),
                Event::SequenceStart(..) => {
                    stack.push(Open::Seq(pos, Vec::new()));
                    None
                }
                Event::MappingStart(..) => {
                    stack.push(Open::Map(pos, Vec::new(), None));
                    None
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(Open::Seq(p, items)) => Some(Node {
                        pos: p,
                        kind: NodeKind::Seq(items),
                    }),
                    Some(Open::Map(p, entries, _)) => Some(Node {
                        pos: p,
                        kind: NodeKind::Map(entries),
                    }),
                    None => None,
                },
                Event::DocumentEnd if root.is_some() => break,
                _ => None,
            };
            if let Some(node) = finished {
                match stack.last_mut() {
                    None => {
                        if root.is_none() {
                            root = Some(node);
                        }
                    }
                    Some(Open::Seq(_, items)) => items.push(node),
                    Some(Open::Map(_, entries, pending)) => match pending.take() {
                        None => {
                            let key = match node.kind {
                                NodeKind::Scalar { text, .. } => text,
                                _ => String::new(),
                            };
                            *pending = Some((key, node.pos));
                        }
                        Some((key, key_pos)) => entries.push(Entry {
                            key,
                            key_pos,
                            value: node,
                        }),
                    },
                }
            }
        }
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Ok(Doc {
            root,
            comment_lines,
            line_starts,
            text: text.to_string(),
        })
    }

    /// The node at `path`, if the source has it.
    pub fn node(&self, path: &[Seg<'_>]) -> Option<&Node> {
        let mut node = self.root.as_ref()?;
        for seg in path {
            node = match (seg, &node.kind) {
                (Seg::Key(k), NodeKind::Map(entries)) => {
                    &entries.iter().find(|e| e.key == *k)?.value
                }
                (Seg::Index(i), NodeKind::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Where the value at `path` starts; the nearest located ancestor when it is absent.
    pub fn value(&self, path: &[Seg<'_>]) -> Pos {
        (0..=path.len())
            .rev()
            .find_map(|n| self.node(&path[..n]).map(|node| node.pos))
            .unwrap_or(Pos {
                line: 1,
                column: 1,
                byte: Some(0),
            })
    }

    /// Where the key that ends `path` starts; falls back like [`Doc::value`].
    pub fn key(&self, path: &[Seg<'_>]) -> Pos {
        let found = match path.split_last() {
            Some((Seg::Key(k), parent)) => match self.node(parent) {
                Some(Node {
                    kind: NodeKind::Map(entries),
                    ..
                }) => entries.iter().find(|e| e.key == *k).map(|e| e.key_pos),
                _ => None,
            },
            _ => None,
        };
        found.unwrap_or_else(|| self.value(path))
    }

    /// True when the given line carries a `#` comment.
    pub fn has_comment_on(&self, line: usize) -> bool {
        self.comment_lines.contains(&line)
    }

    /// The position of the first `needle` at or after `from` on the same line, else `from`.
    pub fn find_on_line(&self, from: Pos, needle: &str) -> Pos {
        let Some(start) = from.byte else { return from };
        let end = self
            .line_starts
            .get(from.line)
            .copied()
            .unwrap_or(self.text.len());
        let Some(slice) = self.text.get(start..end) else {
            return from;
        };
        match slice.find(needle) {
            Some(offset) => Pos {
                line: from.line,
                column: from.column + slice[..offset].chars().count(),
                byte: Some(start + offset),
            },
            None => from,
        }
    }
}

/// Where a tab stands in the indentation of a line: the first tab in the leading whitespace of
/// every line YAML reads as structure. Lines inside block scalars, multi-line quoted scalars and
/// flow collections are skipped (tabs there can be content or separation), as are blank and
/// comment-only lines. A heuristic line scanner, not a YAML parser: callers use it to explain a
/// syntax error, because the parser itself blames the line above ("while scanning a plain
/// scalar") or the column after the tab.
pub fn indentation_tabs(text: &str) -> Vec<Pos> {
    let mut found = Vec::new();
    let mut scan = LineScan::default();
    let mut byte = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = byte;
        byte += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        let spaces = line.chars().take_while(|&c| c == ' ').count();
        if let Some(parent) = scan.block {
            if line.trim().is_empty() || spaces > parent {
                continue;
            }
            scan.block = None;
        }
        let rest = line.trim_start_matches([' ', '\t']);
        let leading = &line[..line.len() - rest.len()];
        let structural = scan.quote.is_none() && scan.flow == 0;
        if structural
            && !rest.is_empty()
            && !rest.starts_with('#')
            && let Some(at) = leading.find('\t')
        {
            found.push(Pos {
                line: i + 1,
                column: leading[..at].chars().count() + 1,
                byte: Some(start + at),
            });
        }
        scan.line(line, spaces);
    }
    found
}

/// What a line leaves open for the next: a quoted scalar, flow brackets, a block scalar.
#[derive(Default)]
struct LineScan {
    quote: Option<char>,
    flow: usize,
    /// Inside a block scalar: lines indented more than this column belong to it.
    block: Option<usize>,
}

impl LineScan {
    fn line(&mut self, line: &str, spaces: usize) {
        let chars: Vec<char> = line.chars().collect();
        // A quote or bracket opens a scalar or collection only where a value may start; in
        // `it's` or `a[0]` it is just a character of a plain scalar.
        let mut value_start = true;
        let mut token_col = spaces;
        let mut parent = spaces;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let blank_next = next.is_none_or(|n| n == ' ' || n == '\t');
            if let Some(q) = self.quote {
                // `\"` in double quotes and `''` in single quotes do not close the scalar.
                let escaped = (q == '"' && c == '\\') || (q == '\'' && c == q && next == Some(q));
                if escaped {
                    i += 1;
                } else if c == q {
                    self.quote = None;
                    value_start = false;
                }
                i += 1;
                continue;
            }
            match c {
                ' ' | '\t' => {}
                '#' if i == 0 || matches!(chars[i - 1], ' ' | '\t') => return,
                '"' | '\'' if value_start => {
                    self.quote = Some(c);
                    token_col = i;
                }
                '[' | '{' if value_start || self.flow > 0 => {
                    self.flow += 1;
                    value_start = true;
                }
                ']' | '}' if self.flow > 0 => {
                    self.flow -= 1;
                    value_start = false;
                }
                ',' if self.flow > 0 => value_start = true,
                ':' if self.flow > 0 || blank_next => {
                    if self.flow == 0 {
                        parent = token_col;
                    }
                    value_start = true;
                }
                '-' | '?' if value_start && blank_next => {
                    parent = i;
                    value_start = true;
                }
                '|' | '>' if value_start && self.flow == 0 => {
                    let tail: String = chars[i + 1..].iter().collect();
                    let tail = tail.split(" #").next().unwrap_or_default().trim_end();
                    if tail
                        .chars()
                        .all(|t| t == '-' || t == '+' || t.is_ascii_digit())
                    {
                        self.block = Some(parent);
                        return;
                    }
                    value_start = false;
                }
                _ => {
                    if value_start {
                        token_col = i;
                    }
                    value_start = false;
                }
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a: 1\nlist:\n  - x: { y: \"two\" }   # note\n  - 3\n";

    #[test]
    fn keys_and_values_are_located() {
        let doc = Doc::parse(TEXT).expect("parses");
        let p = doc.value(&path!["list", 0usize, "x", "y"]);
        assert_eq!((p.line, p.column), (3, 13));
        let k = doc.key(&path!["list", 0usize, "x"]);
        assert_eq!((k.line, k.column), (3, 5));
        let v = doc.value(&path!["list", 1usize]);
        assert_eq!((v.line, v.column), (4, 5));
        assert!(doc.has_comment_on(3));
        assert!(!doc.has_comment_on(4));
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let doc = Doc::parse(TEXT).expect("parses");
        let p = doc.value(&path!["list", 0usize, "nope"]);
        assert_eq!((p.line, p.column), (3, 5));
    }

    #[test]
    fn broken_yaml_is_a_located_syntax_error() {
        let err = Doc::parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert!(err.pos.line >= 1, "{err:?}");
    }

    fn tab_lines(text: &str) -> Vec<(usize, usize)> {
        indentation_tabs(text)
            .iter()
            .map(|p| (p.line, p.column))
            .collect()
    }

    #[test]
    fn a_tab_in_indentation_is_found_at_its_own_column() {
        assert_eq!(tab_lines("a: 1\n\tb: 2\n"), vec![(2, 1)]);
        assert_eq!(tab_lines("a:\n  b: 1\n  \tc: 2\n"), vec![(3, 3)]);
        assert_eq!(tab_lines("a:\n  - x\n\t- y\n"), vec![(3, 1)]);
    }

    #[test]
    fn tabs_inside_scalars_flows_and_comments_are_not_indentation() {
        assert_eq!(
            tab_lines("a: |\n  line\n  \tindented content\nb: 1\n"),
            vec![]
        );
        assert_eq!(tab_lines("- run: >-\n    x\n    \ty\n"), vec![]);
        assert_eq!(tab_lines("a: \"x\n\ty\"\nb: 'it''s\n\tz'\n"), vec![]);
        assert_eq!(tab_lines("a: {x: 1,\n\ty: 2}\nb: [1,\n\t2]\n"), vec![]);
        assert_eq!(tab_lines("a: 1\n\t# note\n\t\nb: 2\n"), vec![]);
        assert_eq!(tab_lines("a: it's [x] {y}\n\tb: 1\n"), vec![(2, 1)]);
    }

    #[test]
    fn a_block_scalar_ends_where_its_indentation_does() {
        assert_eq!(tab_lines("a: |\n  foo\n\tbar: 1\n"), vec![(3, 1)]);
        assert_eq!(
            tab_lines("- key: |  # c\n    x\n  \tother: 1\n"),
            vec![(3, 3)]
        );
    }

    #[test]
    fn needle_is_found_on_the_value_line() {
        let doc = Doc::parse("q: rate(x[{{rte}}])\n").expect("parses");
        let p = doc.find_on_line(doc.value(&path!["q"]), "{{rte");
        assert_eq!((p.line, p.column), (1, 11));
    }
}
