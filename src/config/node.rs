//! A YAML document read as a tree whose every node knows its line, so a warning about a
//! settings file (the config file, a theme) can name the line and the key it is about.
//! Nothing here fails on bad input: a document that does not parse is one warning.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A warning about a settings file: where it is and what is wrong. Shown as
/// `FILE line 7, key ok.fg: "grene" is not a colour`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file (or built-in name) the warning is about.
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The dotted key (`ok.fg`, `keys.advance`), when the warning is about one.
    pub key: Option<String>,
    pub message: String,
}

impl Warning {
    pub fn new(origin: &str, line: Option<u64>, key: Option<String>, message: String) -> Warning {
        Warning {
            origin: origin.to_string(),
            line: line.filter(|l| *l > 0),
            key,
            message,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(
                f,
                "{} key {key}",
                if self.line.is_some() { "," } else { "" }
            )?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl Node {
    /// A scalar as text (a key, a name); `None` for a map or a list.
    pub fn scalar(&self) -> Option<String> {
        match self {
            Node::Null => Some(String::new()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(n) => Some(n.to_string()),
            Node::Float(x) => Some(x.to_string()),
            Node::Str(s) => Some(s.clone()),
            Node::Seq(_) | Node::Map(_) => None,
        }
    }

    /// What kind of node it is, for a message.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "nothing",
            Node::Bool(_) => "true/false",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "text",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a map",
        }
    }
}

/// The line a node starts on (1-based; 0 when unknown).
pub fn line<T>(node: &Spanned<T>) -> u64 {
    node.referenced.line()
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(i128::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Spanned<Node>, Spanned<Node>>()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

/// Keeps the first of each repeated key in every map below `node`, and says where the others
/// were.
fn drop_duplicates(
    doc: &Doc,
    node: &mut Spanned<Node>,
    path: &str,
    origin: &str,
    warnings: &mut Vec<Warning>,
) {
    match &mut node.value {
        Node::Map(entries) => {
            let mut seen: Vec<String> = Vec::new();
            let mut kept = Vec::with_capacity(entries.len());
            for (key, mut value) in std::mem::take(entries) {
                let name = doc.text_of(&key).unwrap_or_default();
                let full = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if seen.contains(&name) {
                    warnings.push(Warning::new(
                        origin,
                        Some(line(&key)),
                        Some(full),
                        "given twice; the first stands, this one is ignored".to_string(),
                    ));
                    continue;
                }
                drop_duplicates(doc, &mut value, &full, origin, warnings);
                seen.push(name);
                kept.push((key, value));
            }
            *entries = kept;
        }
        Node::Seq(items) => {
            for item in items {
                drop_duplicates(doc, item, path, origin, warnings);
            }
        }
        _ => {}
    }
}

/// How deep a settings file may nest (a theme needs 2, the config file 3).
const MAX_DEPTH: usize = 16;

/// A YAML document and its text: plain scalars such as `n`, `y` or `on` read as booleans in
/// YAML, and a key or a key name must stay the text that was written.
#[derive(Debug, Clone)]
pub struct Doc {
    pub text: String,
    pub root: Spanned<Node>,
    /// A key given twice in one map: the first stands, each later one is a warning here.
    pub duplicates: Vec<Warning>,
}

impl Doc {
    /// Reads `text` as one YAML document; a syntax error is a warning naming `origin` and the
    /// line.
    pub fn parse(text: &str, origin: &str) -> Result<Doc, Warning> {
        // Settings files are shallow: a small depth keeps a hostile one off the stack.
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_depth: MAX_DEPTH,
                flow_nesting_limit: MAX_DEPTH,
            },
            // Repeated keys reach the tree, where the first stands and the rest are warnings
            // naming their line: one slip does not throw the whole file away.
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        };
        match serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options) {
            Ok(mut root) => {
                let mut doc = Doc {
                    text: text.to_string(),
                    root: Spanned::new(Node::Null, root.referenced, root.defined),
                    duplicates: Vec::new(),
                };
                let mut duplicates = Vec::new();
                drop_duplicates(&doc, &mut root, "", origin, &mut duplicates);
                doc.root = root;
                doc.duplicates = duplicates;
                Ok(doc)
            }
            Err(e) => {
                let line = e.location().map(|l| l.line());
                let message = e.without_snippet().to_string();
                let mut message = message
                    .lines()
                    .next()
                    .unwrap_or("not YAML")
                    .trim()
                    .to_string();
                // `fg: #ff8800` unquoted: YAML reads `#` after a space as a comment.
                let at = line.and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
                if text
                    .lines()
                    .nth(at.saturating_sub(1))
                    .is_some_and(|l| l.contains(": #"))
                {
                    message.push_str(" (a #rrggbb colour must be quoted: \"#ff8800\")");
                }
                Err(Warning::new(
                    origin,
                    line,
                    None,
                    format!("not read: {message}"),
                ))
            }
        }
    }

    /// A scalar as written: `n` stays `n`, not `false`; `None` for a map, a list or nothing.
    pub fn text_of(&self, node: &Spanned<Node>) -> Option<String> {
        match &node.value {
            Node::Str(s) => Some(s.clone()),
            Node::Bool(_) | Node::Int(_) | Node::Float(_) => {
                let span = node.referenced.span();
                let raw = span
                    .byte_offset()
                    .zip(span.byte_len())
                    .and_then(|(at, len)| {
                        let at = usize::try_from(at).ok()?;
                        let end = at.checked_add(usize::try_from(len).ok()?)?;
                        self.text.get(at..end)
                    });
                // An alias (`*x`) or an unknown span: the value as YAML read it.
                match raw.map(str::trim) {
                    Some(raw) if !raw.is_empty() && !raw.starts_with('*') => Some(raw.to_string()),
                    _ => node.value.scalar(),
                }
            }
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_know_their_lines() {
        let doc = Doc::parse("# c\nok: {fg: green}\nbad:\n  fg: red\n  bold: true\n", "t")
            .expect("parses");
        let Node::Map(entries) = &doc.root.value else {
            panic!("map")
        };
        assert_eq!(line(&entries[0].0), 2);
        assert_eq!(line(&entries[1].0), 3);
        let Node::Map(inner) = &entries[1].1.value else {
            panic!("map")
        };
        assert_eq!(line(&inner[0].0), 4);
        assert_eq!(line(&inner[1].1), 5);
    }

    #[test]
    fn plain_scalars_keep_their_text() {
        let doc = Doc::parse("y: n\non: [N, 0x1f, 'q']\n", "t").expect("parses");
        let Node::Map(entries) = &doc.root.value else {
            panic!("map")
        };
        assert_eq!(doc.text_of(&entries[0].0).as_deref(), Some("y"));
        assert_eq!(doc.text_of(&entries[0].1).as_deref(), Some("n"));
        assert_eq!(doc.text_of(&entries[1].0).as_deref(), Some("on"));
        let Node::Seq(items) = &entries[1].1.value else {
            panic!("seq")
        };
        let texts: Vec<_> = items.iter().filter_map(|i| doc.text_of(i)).collect();
        assert_eq!(texts, ["N", "0x1f", "q"]);
    }

    #[test]
    fn a_key_given_twice_keeps_the_first_and_names_the_line_of_the_second() {
        let doc =
            Doc::parse("theme: light\nkeys: {advance: N, advance: M}\n", "c.yaml").expect("parses");
        let Node::Map(entries) = &doc.root.value else {
            panic!("map")
        };
        let Node::Map(keys) = &entries[1].1.value else {
            panic!("map")
        };
        assert_eq!(keys.len(), 1);
        assert_eq!(doc.text_of(&keys[0].1).as_deref(), Some("N"));
        assert_eq!(doc.duplicates.len(), 1);
        let w = doc.duplicates[0].to_string();
        assert!(w.contains("line 2") && w.contains("keys.advance"), "{w}");
    }

    #[test]
    fn a_syntax_error_is_a_warning_with_its_line() {
        let w = Doc::parse("ok: {fg: green}\nbad: [1, 2\n", "x.yaml").expect_err("bad YAML");
        assert_eq!(w.origin, "x.yaml");
        assert!(w.line.is_some(), "{w}");
        assert!(w.to_string().starts_with("x.yaml line "), "{w}");
    }
}
