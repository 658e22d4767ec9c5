//! Unknown keys and unknown enum values, found by walking the located YAML tree against the
//! plan's JSON Schema: every one of them, each with its position and a "did you mean". No types.

use serde_json::Value;

use super::locate::{Doc, Node, NodeKind, Pos};
use super::suggest;

/// A shape problem: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    /// Where the key or value starts.
    pub pos: Pos,
    /// What is wrong, with a hint.
    pub message: String,
    /// What kind of problem, for callers that set the offending part aside.
    pub kind: ShapeKind,
}

/// The kinds of shape problem.
#[derive(Debug, Clone, PartialEq)]
pub enum ShapeKind {
    /// A key the schema does not know.
    UnknownKey {
        /// Known keys of that mapping it might misspell: looser than the "did you mean" hint,
        /// so that a caller dropping the key can tell when it may stand for one of them.
        near: Vec<String>,
    },
    /// A missing key, an unknown value, a scalar where a mapping belongs.
    Other,
}

/// All unknown keys and values of `doc` measured against `schema`.
pub fn check(doc: &Doc, schema: &Value) -> Vec<ShapeError> {
    let mut out = Vec::new();
    if let Some(root) = &doc.root {
        walk(root, schema, schema, "", &mut out);
    }
    out
}

const MAX_REF_HOPS: usize = 32;

fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_HOPS {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name));
        match target {
            Some(t) => schema = t,
            None => break,
        }
    }
    schema
}

/// The alternatives a schema allows, with `$ref`s followed and `oneOf`/`anyOf` flattened.
fn branches<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut todo = vec![(schema, 0usize)];
    while let Some((s, depth)) = todo.pop() {
        let s = resolve(root, s);
        let alternatives = ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| s.get(*k).and_then(Value::as_array))
            .flatten()
            .collect::<Vec<_>>();
        if alternatives.is_empty() || depth > 4 {
            out.push(s);
        } else {
            // Reversed so the branches come out in schema order.
            todo.extend(alternatives.into_iter().rev().map(|a| (a, depth + 1)));
        }
    }
    out
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_object(schema: &Value) -> bool {
    types(schema).contains(&"object")
        || schema.get("properties").is_some()
        || schema.get("additionalProperties").is_some()
}

fn join(label: &str, key: &str) -> String {
    if label.is_empty() {
        key.to_string()
    } else {
        format!("{label}.{key}")
    }
}

fn walk(node: &Node, root: &Value, schema: &Value, label: &str, out: &mut Vec<ShapeError>) {
    let alternatives = branches(root, schema);
    match &node.kind {
        NodeKind::Map(entries) => {
            let objects: Vec<&Value> = alternatives.into_iter().filter(|b| is_object(b)).collect();
            if objects.is_empty() {
                return; // a type mismatch: the typed parse reports it
            }
            let step_like = is_step_like(&objects);
            let merges = entries.iter().any(|e| e.key == "<<");
            if let (false, [only]) = (merges, objects.as_slice()) {
                let required = only
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                    .unwrap_or_default();
                for name in required {
                    if !entries.iter().any(|e| e.key == name) {
                        out.push(ShapeError {
                            pos: node.pos,
                            message: format!("missing key `{name}` in {}", where_(label)),
                            kind: ShapeKind::Other,
                        });
                    }
                }
            }
            for entry in entries {
                if entry.key == "<<" {
                    continue; // merge key: the merged mapping is checked where it is defined
                }
                let known = objects
                    .iter()
                    .find_map(|o| o.get("properties").and_then(|p| p.get(entry.key.as_str())));
                let open = objects.iter().find_map(|o| {
                    o.get("additionalProperties")
                        .filter(|a| a.is_object())
                        .or_else(|| {
                            (o.get("properties").is_none()
                                && o.get("additionalProperties").is_none())
                            .then_some(&Value::Bool(true))
                        })
                });
                match (known, open) {
                    (Some(sub), _) => walk(&entry.value, root, sub, &join(label, &entry.key), out),
                    (None, Some(sub)) if sub.is_object() => {
                        walk(&entry.value, root, sub, &join(label, &entry.key), out)
                    }
                    (None, Some(_)) => {}
                    (None, None) => {
                        let names: Vec<&str> = objects
                            .iter()
                            .filter_map(|o| o.get("properties").and_then(Value::as_object))
                            .flat_map(|p| p.keys().map(String::as_str))
                            .collect();
                        let hint = suggest::hint(&entry.key, names.iter().copied());
                        let loose = (entry.key.chars().count() / 2).max(2);
                        let near = names
                            .iter()
                            .filter(|n| suggest::distance(&entry.key, n) <= loose)
                            .map(|n| n.to_string())
                            .collect();
                        let message = if step_like {
                            format!("unknown step `{}` in {}{hint}", entry.key, where_(label))
                        } else {
                            format!("unknown key `{}` in {}{hint}", entry.key, where_(label))
                        };
                        out.push(ShapeError {
                            pos: entry.key_pos,
                            message,
                            kind: ShapeKind::UnknownKey { near },
                        });
                    }
                }
            }
        }
        NodeKind::Seq(items) => {
            let Some(item_schema) = alternatives
                .iter()
                .find(|b| types(b).contains(&"array"))
                .and_then(|b| b.get("items"))
            else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                walk(item, root, item_schema, &format!("{label}[{i}]"), out);
            }
        }
        NodeKind::Scalar { text, .. } => {
            let objects: Vec<&Value> = alternatives
                .iter()
                .copied()
                .filter(|b| is_object(b))
                .collect();
            let scalars: Vec<&Value> = alternatives
                .into_iter()
                .filter(|b| !is_object(b) && !types(b).contains(&"array"))
                .collect();
            if scalars.is_empty() {
                if is_step_like(&objects) {
                    out.push(ShapeError {
                        pos: node.pos,
                        message: format!(
                            "a step is a one-key mapping, got `{text}` in {}; write `- {text}: …` (`- promote: {{}}` takes no options)",
                            where_(label)
                        ),
                        kind: ShapeKind::Other,
                    });
                } else if !objects.is_empty() {
                    out.push(ShapeError {
                        pos: node.pos,
                        message: format!(
                            "{} must be a mapping (`key: value` lines or `{{ … }}`), got `{text}`",
                            where_(label)
                        ),
                        kind: ShapeKind::Other,
                    });
                }
                return;
            }
            let mut allowed: Vec<&str> = Vec::new();
            for b in &scalars {
                let consts: Vec<&str> = b
                    .get("enum")
                    .and_then(Value::as_array)
                    .map(|e| e.iter().filter_map(Value::as_str).collect())
                    .or_else(|| b.get("const").and_then(Value::as_str).map(|c| vec![c]))
                    .unwrap_or_default();
                if consts.is_empty() {
                    return; // this alternative takes free text or numbers
                }
                allowed.extend(consts);
            }
            if allowed.is_empty() || allowed.contains(&text.as_str()) {
                return;
            }
            let hint = suggest::hint(text, allowed.iter().copied());
            out.push(ShapeError {
                pos: node.pos,
                message: format!(
                    "unknown value `{text}` for {}; expected one of {}{hint}",
                    where_(label),
                    allowed.join(", ")
                ),
                kind: ShapeKind::Other,
            });
        }
        NodeKind::Alias => {}
    }
}

/// The step enum: many object alternatives of one key each.
fn is_step_like(objects: &[&Value]) -> bool {
    objects.len() > 2
        && objects.iter().all(|o| {
            o.get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| p.len() == 1)
        })
}

fn where_(label: &str) -> String {
    if label.is_empty() {
        "the plan".to_string()
    } else {
        format!("`{label}`")
    }
}
