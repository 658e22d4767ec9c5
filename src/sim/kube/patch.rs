//! The three patch flavours `kubectl` and kube-rs send: JSON merge, JSON patch and strategic merge.
//! Pure functions from (object, patch) to object; it must not touch the store.

use serde_json::{Map, Value};

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    /// Server-side apply, approximated as a merge (see `api::patch_object`).
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        match media {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

/// Applies a patch. `strategic_lists` says whether lists of the built-in types merge by key
/// (strategic merge, server-side apply on built-ins) or are replaced whole (custom resources).
pub fn apply(
    kind: PatchKind,
    doc: &Value,
    body: &[u8],
    strategic_lists: bool,
) -> Result<Value, ApiError> {
    let mut out = doc.clone();
    match kind {
        PatchKind::Merge => {
            let patch: Value = parse(body)?;
            json_patch::merge(&mut out, &patch);
        }
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &patch.0).map_err(|e| {
                ApiError::Invalid(format!("the JSON patch could not be applied: {e}"))
            })?;
        }
        PatchKind::Apply => {
            let patch = parse_apply(body)?;
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "an apply patch must be an object".into(),
                ));
            }
            if strategic_lists {
                strategic_merge(&mut out, &patch, "");
            } else {
                json_patch::merge(&mut out, &patch);
            }
        }
        PatchKind::Strategic => {
            let patch: Value = parse(body)?;
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(&mut out, &patch, "");
        }
    }
    Ok(out)
}

/// An apply patch is YAML (kube-rs sends JSON, which YAML readers accept too).
pub fn parse_apply(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the apply patch is not UTF-8".into()))?;
    serde_saphyr::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("invalid YAML in apply patch: {e}")))
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON in patch: {e}")))
}

/// Merge key of a list field, by field name, as the built-in types' `patchMergeKey` tags say.
/// Lists not named here are replaced whole, as the strategic merge of an untagged list is.
fn merge_key(field: &str, parent: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        // Container ports merge on containerPort; Service ports on port.
        "ports" if parent == "containers" => Some("containerPort"),
        "ports" => Some("port"),
        "volumeMounts" => Some("mountPath"),
        "conditions" => Some("type"),
        "tolerations" => None,
        "hostAliases" => Some("ip"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

fn strategic_merge(doc: &mut Value, patch: &Value, parent: &str) {
    let Some(patch_map) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        *doc = Value::Object(replaced);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(doc_map) = doc.as_object_mut() else {
        return;
    };
    for (k, pv) in patch_map {
        if k.starts_with('$') {
            continue;
        }
        match pv {
            Value::Null => {
                doc_map.remove(k);
            }
            Value::Object(_) => {
                let slot = doc_map.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(slot, pv, k);
            }
            Value::Array(items) => match merge_key(k, parent) {
                Some(mk) => {
                    let slot = doc_map.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                    merge_list(slot, items, mk, k);
                }
                None => {
                    doc_map.insert(k.clone(), pv.clone());
                }
            },
            _ => {
                doc_map.insert(k.clone(), pv.clone());
            }
        }
    }
}

fn merge_list(doc: &mut Value, items: &[Value], mk: &str, field: &str) {
    if !doc.is_array() {
        *doc = Value::Array(Vec::new());
    }
    let Some(list) = doc.as_array_mut() else {
        return;
    };
    for item in items {
        let Some(key) = item.get(mk) else {
            // An element without its merge key cannot be matched; keep it as the user wrote it.
            list.push(item.clone());
            continue;
        };
        let pos = list.iter().position(|e| e.get(mk) == Some(key));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], item, field),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item, field);
                list.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"replicas": 4, "template": {"spec": {"containers": [
            {"name": "app", "image": "r/app:1", "ports": [{"containerPort": 8080, "name": "http"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "r/side:1"}]}}}})
    }

    #[test]
    fn strategic_merge_sets_one_containers_image_and_keeps_the_others() {
        let patch = br#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"r/app:2","env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]}]}}}}"#;
        let out = apply(PatchKind::Strategic, &deployment(), patch, true).unwrap_or_default();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["image"], "r/app:2");
        assert_eq!(cs[0]["ports"][0]["containerPort"], 8080);
        assert_eq!(
            cs[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
        );
        assert_eq!(cs[1]["image"], "r/side:1");
    }

    #[test]
    fn strategic_merge_deletes_list_elements_by_key() {
        let patch = br#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
        let out = apply(PatchKind::Strategic, &deployment(), patch, true).unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_null_removes() {
        let patch =
            br#"{"spec":{"replicas":null,"template":{"spec":{"containers":[{"name":"x"}]}}}}"#;
        let out = apply(PatchKind::Merge, &deployment(), patch, true).unwrap_or_default();
        assert!(out["spec"].get("replicas").is_none());
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "x"}])
        );
    }

    #[test]
    fn json_patch_failures_and_garbage_are_errors_not_panics() {
        let bad_path = br#"[{"op":"replace","path":"/nope/deeper","value":1}]"#;
        assert!(apply(PatchKind::Json, &deployment(), bad_path, true).is_err());
        assert!(apply(PatchKind::Json, &deployment(), b"{not json", true).is_err());
        assert!(apply(PatchKind::Strategic, &deployment(), b"[1]", true).is_err());
        let ok = br#"[{"op":"replace","path":"/spec/replicas","value":2}]"#;
        assert_eq!(
            apply(PatchKind::Json, &deployment(), ok, true).unwrap_or_default()["spec"]["replicas"],
            2
        );
    }
}
