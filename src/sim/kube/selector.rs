//! Label and field selectors as `?labelSelector=` / `?fieldSelector=` spell them, and matching.
//! Pure parsing and matching over JSON objects; it must not touch the store.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas outside parentheses, so `env in (a,b),tier` is two requirements.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unable to parse requirement: found '{whole}', expected: '('"
            ))
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_requirement(raw: &str) -> Result<Requirement, ApiError> {
    let r = raw.trim();
    if let Some(key) = r.strip_prefix('!') {
        let key = key.trim();
        if !valid_key(key) {
            return Err(ApiError::BadRequest(format!("invalid label key {key:?}")));
        }
        return Ok(Requirement::NotExists(key.to_string()));
    }
    let equality = r
        .split_once("!=")
        .map(|(k, v)| (k, v, false))
        .or_else(|| r.split_once("==").map(|(k, v)| (k, v, true)))
        .or_else(|| r.split_once('=').map(|(k, v)| (k, v, true)));
    if let Some((k, v, equal)) = equality {
        let (k, v) = (k.trim(), v.trim());
        if !valid_key(k) {
            return Err(ApiError::BadRequest(format!("invalid label key {k:?}")));
        }
        return Ok(if equal {
            Requirement::Equals(k.into(), v.into())
        } else {
            Requirement::NotEquals(k.into(), v.into())
        });
    }
    let mut words = r.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    let rest = words.next().unwrap_or_default().trim_start();
    if !valid_key(key) {
        return Err(ApiError::BadRequest(format!(
            "unable to parse requirement: invalid label key {key:?}"
        )));
    }
    if rest.is_empty() {
        return Ok(Requirement::Exists(key.to_string()));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(key.into(), parse_set(set, r)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok(Requirement::In(key.into(), parse_set(set, r)?));
    }
    Err(ApiError::BadRequest(format!(
        "unable to parse requirement: {r:?}"
    )))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            if part.trim().is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.is_empty() || self.matches_labels(&labels_of(obj))
    }
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `spec.selector.matchLabels` style map selects `labels` (every pair present).
pub fn map_selects(
    selector: &serde_json::Map<String, Value>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty()
        && selector.iter().all(|(k, v)| {
            v.as_str()
                .is_some_and(|v| labels.get(k).map(String::as_str) == Some(v))
        })
}

/// A parsed field selector: `a.b=v`, `a.b==v`, `a.b!=v`, comma-joined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            reqs.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    /// Fields are looked up by their dotted JSON path, which covers `metadata.name`,
    /// `metadata.namespace`, `status.phase`, `spec.nodeName` and `involvedObject.*` alike;
    /// a missing field compares as the empty string, as the real server's field sets do.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn set_based_requirements_split_on_top_level_commas_only() {
        let sel = LabelSelector::parse("app in (checkout, cart),track notin (canary),tier,!legacy")
            .unwrap_or_default();
        assert!(sel.matches(&pod(
            json!({"app": "cart", "track": "stable", "tier": "web"})
        )));
        assert!(!sel.matches(&pod(
            json!({"app": "cart", "track": "canary", "tier": "web"})
        )));
        assert!(!sel.matches(&pod(json!({"app": "cart", "tier": "web", "legacy": "y"}))));
        assert!(!sel.matches(&pod(json!({"app": "cart"}))));
    }

    #[test]
    fn equality_and_inequality_requirements_match_as_kubectl_means_them() {
        let sel = LabelSelector::parse("app=checkout,track!=canary").unwrap_or_default();
        assert!(sel.matches(&pod(json!({"app": "checkout", "track": "stable"}))));
        assert!(sel.matches(&pod(json!({"app": "checkout"}))));
        assert!(!sel.matches(&pod(json!({"app": "checkout", "track": "canary"}))));
    }

    #[test]
    fn malformed_selectors_are_bad_requests_not_panics() {
        for s in ["app in", "app in x", "(", "a b c", "!", "=x"] {
            let parsed = LabelSelector::parse(s);
            assert!(parsed.is_err(), "{s} parsed as {parsed:?}");
        }
        assert!(FieldSelector::parse("status.phase").is_err());
    }

    #[test]
    fn field_selectors_compare_dotted_paths() {
        let fs = FieldSelector::parse("status.phase=Running,metadata.name!=q").unwrap_or_default();
        assert!(fs.matches(&pod(json!({}))));
        let fs = FieldSelector::parse("metadata.namespace==other").unwrap_or_default();
        assert!(!fs.matches(&pod(json!({}))));
    }
}
