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

    #[test]
    fn needle_is_found_on_the_value_line() {
        let doc = Doc::parse("q: rate(x[{{rte}}])\n").expect("parses");
        let p = doc.find_on_line(doc.value(&path!["q"]), "{{rte");
        assert_eq!((p.line, p.column), (1, 11));
    }
}
