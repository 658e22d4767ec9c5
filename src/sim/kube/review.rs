//! SelfSubjectAccessReview: tells a client whether the active denials would refuse a request,
//! by the same matching as the requests themselves (`rbac`). Answers only; stores nothing.

use serde_json::{Value, json};

use super::KubeSim;
use super::error::ApiError;
use super::rbac::{Attributes, Denials};

pub const GROUP: &str = "authorization.k8s.io";
pub const VERSION: &str = "v1";
pub const PLURAL: &str = "selfsubjectaccessreviews";
pub const KIND: &str = "SelfSubjectAccessReview";

/// The `authorization.k8s.io/v1` discovery document: reviews can only be created.
pub fn api_resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [{
            "name": PLURAL,
            "singularName": "selfsubjectaccessreview",
            "namespaced": false,
            "kind": KIND,
            "verbs": ["create"],
        }],
    })
}

/// Answers a review posted as `body` (JSON): the object back with `status.allowed`, and the
/// API server's denial wording as `status.reason` when a rule covers it. Not-resource requests
/// (`/healthz` and the like) are never denied: the `forbidden` fault covers resources only.
pub fn create(sim: &KubeSim, body: &[u8]) -> Result<Value, ApiError> {
    let mut review: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })?;
    let Some(obj) = review.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the body of the request must be a SelfSubjectAccessReview object".into(),
        ));
    };
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != KIND
    {
        return Err(ApiError::BadRequest(format!(
            "the kind of the object ({kind}) does not match the resource ({KIND})"
        )));
    }
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let status = match (resource, non_resource) {
        (Some(attrs), None) => decide(sim, attrs),
        (None, Some(_)) => json!({"allowed": true}),
        _ => {
            return Err(ApiError::Invalid(format!(
                "{KIND}.{GROUP} \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
            )));
        }
    };
    obj.insert("apiVersion".into(), json!(format!("{GROUP}/{VERSION}")));
    obj.insert("kind".into(), json!(KIND));
    // A real server echoes metadata with a null creationTimestamp; typed clients need the key.
    obj.entry("metadata")
        .or_insert_with(|| json!({"creationTimestamp": null}));
    obj.insert("status".into(), status);
    Ok(review)
}

fn decide(sim: &KubeSim, attrs: &Value) -> Value {
    let field = |key: &str| attrs.get(key).and_then(Value::as_str).unwrap_or_default();
    let non_empty = |s: &'static str| Some(field(s)).filter(|v| !v.is_empty());
    let verb = field("verb");
    let namespace = non_empty("namespace");
    let subresource = non_empty("subresource");
    let attributes = Attributes {
        verb,
        group: field("group"),
        resource: field("resource"),
        subresource,
        namespace,
    };
    if sim.denials().denies(&attributes) {
        json!({"allowed": false, "reason": Denials::denial_reason(&attributes)})
    } else {
        json!({"allowed": true})
    }
}
