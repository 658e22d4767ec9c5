//! A plan that failed to parse into types, with the parts that did not set aside, so that the
//! cross-field checks still run on the rest and a file gets all its findings in one run.
//! Works on the located tree and re-parses it; no IO.
//!
//! Only what cannot cause follow-on findings is set aside: a step that does not parse becomes a
//! placeholder (its index, and so every position, stays) and validation is told to draw no
//! conclusion from it; an unknown key outside steps is dropped, unless it looks like a
//! misspelling of a key the mapping lacks, since checks would then miss what it meant to say.
//! Anything else (a missing key, an unknown value outside steps) gives up: no plan, no checks.

use std::collections::HashSet;

use super::locate::{Doc, Entry, Node, NodeKind, Pos};
use super::model::{Plan, Step};
use super::shape::{ShapeError, ShapeKind};

/// Steps of phases that did not parse and stand as placeholders: `(phase, step)` indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipped {
    steps: HashSet<(usize, usize)>,
}

impl Skipped {
    /// True when step `step` of phase `phase` did not parse.
    pub fn step(&self, phase: usize, step: usize) -> bool {
        self.steps.contains(&(phase, step))
    }

    /// True when any step of phase `phase` did not parse.
    pub fn any_in_phase(&self, phase: usize) -> bool {
        self.steps.iter().any(|(p, _)| *p == phase)
    }
}

/// Plan nesting is a handful of levels; deeper trees are not plans worth recovering.
const MAX_DEPTH: usize = 32;

/// The plan with unparsable steps replaced and harmless unknown keys dropped, and which steps
/// were replaced; `None` when something else keeps it from parsing.
pub fn recover(doc: &Doc, shape: &[ShapeError]) -> Option<(Plan, Skipped)> {
    let mut root = doc.root.clone()?;
    if !plain_tree(&root, 0) {
        return None;
    }
    let mut skipped = Skipped::default();
    if let Some(NodeKind::Seq(phases)) = child_mut(&mut root, "phases").map(|n| &mut n.kind) {
        for (i, phase) in phases.iter_mut().enumerate() {
            if let Some(NodeKind::Seq(steps)) = child_mut(phase, "steps").map(|n| &mut n.kind) {
                for (j, step) in steps.iter_mut().enumerate() {
                    if set_aside(step) {
                        skipped.steps.insert((i, j));
                    }
                }
            }
        }
    }
    if let Some(NodeKind::Map(tiers)) = child_mut(&mut root, "rollback").map(|n| &mut n.kind) {
        for tier in tiers.iter_mut() {
            if let Some(NodeKind::Seq(actions)) =
                child_mut(&mut tier.value, "actions").map(|n| &mut n.kind)
            {
                for action in actions.iter_mut() {
                    set_aside(action);
                }
            }
        }
    }
    let unknown: Vec<(Pos, &[String])> = shape
        .iter()
        .filter_map(|e| match &e.kind {
            ShapeKind::UnknownKey { near } => Some((e.pos, near.as_slice())),
            ShapeKind::Other => None,
        })
        .collect();
    drop_unknown(&mut root, &unknown)?;
    serde_saphyr::from_str::<Plan>(&emit(&root))
        .ok()
        .map(|plan| (plan, skipped))
}

/// Replaces a step that does not parse with a checklist item, which no check looks at.
fn set_aside(step: &mut Node) -> bool {
    if serde_saphyr::from_str::<Step>(&emit(step)).is_ok() {
        return false;
    }
    *step = Node {
        pos: step.pos,
        kind: NodeKind::Map(vec![Entry {
            key: "check".to_string(),
            // Nowhere in the source, so no shape error about the old step's key matches it.
            key_pos: Pos::default(),
            value: Node {
                pos: step.pos,
                kind: NodeKind::Scalar {
                    text: "step that did not parse".to_string(),
                    plain: false,
                },
            },
        }]),
    };
    true
}

/// Drops the unknown keys at the given positions; `None` when one of them may misspell a key
/// its mapping lacks.
fn drop_unknown(node: &mut Node, unknown: &[(Pos, &[String])]) -> Option<()> {
    match &mut node.kind {
        NodeKind::Map(entries) => {
            let present: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
            let mut keep = Vec::with_capacity(entries.len());
            for mut entry in std::mem::take(entries) {
                match unknown.iter().find(|(pos, _)| *pos == entry.key_pos) {
                    Some((_, near)) if near.iter().any(|n| !present.contains(n)) => return None,
                    Some(_) => {}
                    None => {
                        drop_unknown(&mut entry.value, unknown)?;
                        keep.push(entry);
                    }
                }
            }
            *entries = keep;
        }
        NodeKind::Seq(items) => {
            for item in items {
                drop_unknown(item, unknown)?;
            }
        }
        NodeKind::Scalar { .. } | NodeKind::Alias => {}
    }
    Some(())
}

fn child_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.kind {
        NodeKind::Map(entries) => entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value),
        _ => None,
    }
}

/// No aliases or merge keys (re-emitting would lose what they point at) and not absurdly deep.
fn plain_tree(node: &Node, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .all(|e| e.key != "<<" && plain_tree(&e.value, depth + 1)),
        NodeKind::Seq(items) => items.iter().all(|i| plain_tree(i, depth + 1)),
        NodeKind::Scalar { .. } => true,
        NodeKind::Alias => false,
    }
}

/// The tree as block YAML that parses to the same values: plain scalars stay plain (so `10` is
/// still a number and `5m` a duration), everything else is double-quoted.
fn emit(node: &Node) -> String {
    let mut out = String::new();
    match inline(node) {
        Some(text) => out.push_str(&text),
        None => block(node, 0, &mut out),
    }
    out.push('\n');
    out
}

fn inline(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, plain: true } => Some(text.clone()),
        NodeKind::Scalar { text, .. } => Some(quoted(text)),
        NodeKind::Map(entries) if entries.is_empty() => Some("{}".to_string()),
        NodeKind::Seq(items) if items.is_empty() => Some("[]".to_string()),
        // Never reached after `plain_tree`; a null keeps the output well-formed regardless.
        NodeKind::Alias => Some("~".to_string()),
        _ => None,
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

fn block(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let item = |prefix: String, value: &Node, out: &mut String| match inline(value) {
        Some(text) => out.push_str(&format!("{prefix} {text}\n")),
        None => {
            out.push_str(&prefix);
            out.push('\n');
            block(value, indent + 2, out);
        }
    };
    match &node.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                item(format!("{pad}{}:", quoted(&e.key)), &e.value, out);
            }
        }
        NodeKind::Seq(items) => {
            for i in items {
                item(format!("{pad}-"), i, out);
            }
        }
        NodeKind::Scalar { .. } | NodeKind::Alias => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_tree_parses_to_the_same_values() {
        let text = "a: 10\nb: \"10\"\nc: [x, { d: 5m, e: [] }]\nf: {}\ng:\n  - - 1\n    - 2\nh:\n";
        let doc = Doc::parse(text).expect("parses");
        let root = doc.root.as_ref().expect("root");
        let want: serde_json::Value = serde_saphyr::from_str(text).expect("original");
        let got: serde_json::Value = serde_saphyr::from_str(&emit(root)).expect("emitted");
        assert_eq!(got, want, "{}", emit(root));
    }
}
