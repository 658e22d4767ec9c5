//! The HTTP face of the simulated API server: path routing, verbs, content negotiation, bodies.
//! Translates requests into store operations; watches live in `watches`, controllers elsewhere.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::KubeSim;
use super::defaults;
use super::error::ApiError;
use super::patch::{self, PatchKind};
use super::resources::{self, ResourceDef};
use super::review;
use super::selector::{FieldSelector, LabelSelector};
use super::table::{self, IncludeObject};
use super::util::{self, obj_at, str_at};

/// The whole API server; every path goes through one dispatcher so unknown paths still get a
/// Status body, as `kubectl` expects.
pub fn router(sim: KubeSim) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

/// The query string as a map; a repeated key keeps its last value.
fn parse_query(raw: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn truthy(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | ""))
}

/// How the client asked to see objects (Accept header).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Rendering {
    Full,
    Table(IncludeObject),
    Metadata,
}

fn rendering(headers: &HeaderMap, q: &HashMap<String, String>) -> Rendering {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The first acceptable media type wins, as in the real server's negotiation.
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if has("as=Table") {
            let include = match q.get("includeObject").map(String::as_str) {
                Some("None") => IncludeObject::None,
                Some("Object") => IncludeObject::Object,
                _ => IncludeObject::Metadata,
            };
            return Rendering::Table(include);
        }
        if has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList") {
            return Rendering::Metadata;
        }
        if params
            .first()
            .is_some_and(|m| matches!(*m, "application/json" | "*/*" | "application/yaml" | ""))
        {
            return Rendering::Full;
        }
    }
    Rendering::Full
}

pub(super) fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

async fn handle(
    State(sim): State<KubeSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if sim.is_api_outage() && !path.starts_with("/sim/") {
        return ApiError::Unavailable.into_response();
    }
    let q = parse_query(uri.query());
    let body = match normalize_body(&method, &headers, body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match route(&sim, &method, &path, &q, &headers, &body) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// Bodies of creates and updates are JSON, YAML, or (from typed clients such as
/// `kubectl create deployment`) protobuf for the kinds `proto` knows; all become JSON here.
/// Anything else (CBOR, protobuf of other kinds) gets 415.
fn normalize_body(method: &Method, headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    if !matches!(*method, Method::POST | Method::PUT) || body.is_empty() {
        return Ok(body);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" | "*/*" => Ok(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::BadRequest("the YAML body is not UTF-8".into()))?;
            let v: Value = serde_saphyr::from_str(text).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the body of the request could not be decoded as YAML: {e}"
                ))
            })?;
            Ok(Bytes::from(v.to_string()))
        }
        "application/vnd.kubernetes.protobuf" => {
            Ok(Bytes::from(super::proto::decode(&body)?.to_string()))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other:?})"
        ))),
    }
}

fn route(
    sim: &KubeSim,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |v: Value| -> Result<Response, ApiError> {
        if method == Method::GET {
            Ok(ok(&v))
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    match segs.as_slice() {
        ["version"] => get_only(resources::version_info()),
        ["healthz" | "readyz" | "livez"] => Ok((StatusCode::OK, "ok").into_response()),
        // An empty protobuf OpenAPI v2 document: kubectl's client-side validation then knows
        // no schemas and leaves validation to the server (`fieldValidation`).
        ["openapi", "v2"] if method == Method::GET => Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            )],
            Vec::<u8>::new(),
        )
            .into_response()),
        ["api"] => get_only(resources::api_versions(&host(headers))),
        ["apis"] => get_only(resources::api_group_list()),
        ["api", version] => {
            get_only(resources::api_resource_list("", version).ok_or(ApiError::NoRoute)?)
        }
        ["apis", group] => get_only(resources::api_group(group).ok_or(ApiError::NoRoute)?),
        // Reviews are answered, never stored, and never denied: a real cluster lets everyone
        // ask what they may do.
        ["apis", review::GROUP, review::VERSION, review::PLURAL] => match *method {
            Method::POST => Ok(json_response(
                StatusCode::CREATED,
                &review::create(sim, body)?,
            )),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["apis", group, version] => {
            get_only(resources::api_resource_list(group, version).ok_or(ApiError::NoRoute)?)
        }
        ["api", version, rest @ ..] => {
            resource_request(sim, method, "", version, rest, q, headers, body)
        }
        ["apis", group, version, rest @ ..] => {
            resource_request(sim, method, group, version, rest, q, headers, body)
        }
        _ => Err(ApiError::NoRoute),
    }
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string()
}

/// A request's object address after path parsing.
pub(super) struct Target {
    pub(super) def: &'static ResourceDef,
    /// Namespace from the path; `None` for cluster-scoped types and all-namespace lists.
    pub(super) namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let find = |plural: &str| resources::lookup(group, version, plural).ok_or(ApiError::NoRoute);
    let target = |def, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        def,
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
    };
    let t = match rest {
        [plural] => target(find(plural)?, None, None, None),
        ["namespaces", ns, plural] => match resources::lookup(group, version, plural) {
            Some(def) if def.namespaced => target(def, Some(ns), None, None),
            // `/api/v1/namespaces/x/status` addresses the namespace's own subresource.
            _ if group.is_empty() && !plural.is_empty() => {
                target(&resources::NAMESPACES, None, Some(ns), Some(plural))
            }
            _ => return Err(ApiError::NoRoute),
        },
        ["namespaces", ns, plural, name] => target(find(plural)?, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => {
            target(find(plural)?, Some(ns), Some(name), Some(sub))
        }
        [plural, name] => target(find(plural)?, None, Some(name), None),
        [plural, name, sub] => target(find(plural)?, None, Some(name), Some(sub)),
        _ => return Err(ApiError::NoRoute),
    };
    // A namespaced type addressed without a namespace is only valid as an all-namespace list;
    // a cluster-scoped type is never addressed inside a namespace.
    if t.def.namespaced && t.namespace.is_none() && t.name.is_some() {
        return Err(ApiError::NoRoute);
    }
    if !t.def.namespaced && t.namespace.is_some() {
        return Err(ApiError::NoRoute);
    }
    if let Some(sub) = &t.sub
        && !t.def.has_subresource(sub)
    {
        return Err(ApiError::NoRoute);
    }
    Ok(t)
}

#[allow(clippy::too_many_arguments)]
fn resource_request(
    sim: &KubeSim,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let t = parse_target(group, version, rest)?;
    sim.denials().check(&super::rbac::Request {
        method,
        watch: truthy(q, "watch"),
        def: t.def,
        namespace: t.namespace.as_deref(),
        name: t.name.as_deref(),
        sub: t.sub.as_deref(),
    })?;
    let ns = t.namespace.clone().unwrap_or_default();
    let render = rendering(headers, q);
    let req = Req {
        sim,
        def: t.def,
        ns: &ns,
        q,
        headers,
        body,
        dry_run: dry_run(q)?,
    };
    match (&t.name, t.sub.as_deref()) {
        (None, _) => match *method {
            Method::GET if truthy(q, "watch") => super::watches::watch(sim, &t, q, render),
            Method::GET => list(sim, &t, q, render),
            Method::POST => {
                if t.def.namespaced && t.namespace.is_none() {
                    return Err(ApiError::MethodNotAllowed);
                }
                let created = create_object(sim, t.def, &ns, parse_body(body)?, req.dry_run)?;
                Ok(json_response(StatusCode::CREATED, &created))
            }
            Method::DELETE => delete_collection(sim, &t, q),
            _ => Err(ApiError::MethodNotAllowed),
        },
        (Some(name), None) => match *method {
            Method::GET => {
                let obj = sim.store().get(t.def, &ns, name)?;
                Ok(render_one(t.def, &obj, render))
            }
            Method::PUT => Ok(ok(&update(&req, name, Part::Main)?)),
            Method::PATCH => patch_object(&req, name, Part::Main),
            Method::DELETE => Ok(ok(&delete(sim, t.def, &ns, name, q, body)?)),
            _ => Err(ApiError::MethodNotAllowed),
        },
        (Some(name), Some("status")) => match *method {
            Method::GET => Ok(ok(&sim.store().get(t.def, &ns, name)?)),
            Method::PUT => Ok(ok(&update(&req, name, Part::Status)?)),
            Method::PATCH => patch_object(&req, name, Part::Status),
            _ => Err(ApiError::MethodNotAllowed),
        },
        (Some(name), Some("log")) if *method == Method::GET => {
            super::logs::pod_log(sim, &sim.store().get(t.def, &ns, name)?, q)
        }
        (Some(name), Some("scale")) => match *method {
            Method::GET => Ok(ok(&scale_of(&sim.store().get(t.def, &ns, name)?))),
            Method::PUT | Method::PATCH => Ok(ok(&write_scale(&req, name, method)?)),
            _ => Err(ApiError::MethodNotAllowed),
        },
        _ => Err(ApiError::NoRoute),
    }
}

/// What a write request carries besides the object's name.
struct Req<'a> {
    sim: &'a KubeSim,
    def: &'static ResourceDef,
    ns: &'a str,
    q: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a [u8],
    dry_run: bool,
}

impl Req<'_> {
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// `?dryRun=All` runs a write through defaulting and validation without storing it.
fn dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "Invalid dry run value: {other}"
        ))),
    }
}

fn render_one(def: &'static ResourceDef, obj: &Value, render: Rendering) -> Response {
    match render {
        Rendering::Full => ok(obj),
        Rendering::Metadata => ok(&partial_metadata(obj)),
        Rendering::Table(include) => {
            let rv = str_at(obj, "/metadata/resourceVersion")
                .unwrap_or_default()
                .to_string();
            ok(&table::render(
                def,
                std::slice::from_ref(obj),
                &rv,
                include,
                true,
            ))
        }
    }
}

pub(super) fn selectors(
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    Ok((labels, fields))
}

fn list(
    sim: &KubeSim,
    t: &Target,
    q: &HashMap<String, String>,
    render: Rendering,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(q)?;
    let (items, rv) = sim.store().list(t.def, t.namespace.as_deref());
    let items: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let rv = rv.to_string();
    Ok(match render {
        Rendering::Table(include) => ok(&table::render(t.def, &items, &rv, include, true)),
        Rendering::Metadata => ok(&json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
        })),
        Rendering::Full => ok(&json!({
            "kind": t.def.list_kind(),
            "apiVersion": t.def.api_version(),
            "metadata": {"resourceVersion": rv},
            "items": items,
        })),
    })
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(v)
}

/// Drops null-valued fields, as decoding into the real server's typed structs does; otherwise
/// `creationTimestamp: null` in a template sent by kubectl would make it differ from the same
/// template stored without it (and `rollout undo` would start a new ReplicaSet).
fn prune_nulls(v: &mut Value) {
    // Empty label and annotation maps vanish the same way (`omitempty`).
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match meta.get(field) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if empty {
                meta.remove(field);
            }
        }
    }
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// The body's kind/apiVersion, when given, must name the type of the URL.
fn check_type(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    if let Some(kind) = str_at(obj, "/kind")
        && !kind.is_empty()
        && kind != def.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            format_args!(
                "{}, Kind={kind}",
                str_at(obj, "/apiVersion").unwrap_or_default()
            ),
            format_args!("{}, Kind={}", def.api_version(), def.kind),
        )));
    }
    if let Some(av) = str_at(obj, "/apiVersion")
        && !av.is_empty()
        && av != def.api_version()
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    Ok(())
}

fn check_namespace(def: &ResourceDef, ns: &str, obj: &Value) -> Result<(), ApiError> {
    if def.namespaced
        && let Some(given) = str_at(obj, "/metadata/namespace")
        && !given.is_empty()
        && given != ns
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    Ok(())
}

/// Create as a client would (defaults, validation, status dropped), for the API and seeding.
pub(super) fn create_object(
    sim: &KubeSim,
    def: &'static ResourceDef,
    ns: &str,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    prune_nulls(&mut obj);
    check_type(def, &obj)?;
    check_namespace(def, ns, &obj)?;
    if def.namespaced && !sim.store().name_taken(&resources::NAMESPACES, "", ns) {
        return Err(ApiError::not_found(&resources::NAMESPACES, ns));
    }
    if def.has_status
        && let Some(o) = obj.as_object_mut()
    {
        // Status is written by controllers through the status subresource, never on create.
        o.remove("status");
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("uid");
    }
    defaults::apply(def, &mut obj);
    validate(def, &obj)?;
    sim.store().create_maybe_dry(def, ns, obj, dry_run)
}

/// Every replica is a simulated pod in memory; a real cluster's int32 limit would let one
/// request exhaust the process.
const MAX_REPLICAS: i64 = 1000;
const REPLICAS_TOO_MANY: &str =
    "Invalid value: the simulated cluster runs at most 1000 replicas per workload";

/// The few validations whose absence would let a client build objects controllers choke on.
fn validate(def: &'static ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let name = str_at(obj, "/metadata/name").unwrap_or_default();
    let invalid = |field: &str, why: &str| {
        ApiError::Invalid(format!(
            "{} \"{name}\" is invalid: {field}: {why}",
            def.kind
        ))
    };
    if !name.is_empty()
        && (name.len() > 253
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return Err(invalid(
            "metadata.name",
            "Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        ));
    }
    if def == &resources::DEPLOYMENTS || def == &resources::REPLICASETS {
        let selector = obj
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object);
        let template_labels = obj
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object);
        let Some(selector) = selector.filter(|s| !s.is_empty()) else {
            return Err(invalid("spec.selector", "Required value"));
        };
        let labels = template_labels
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        if !super::selector::map_selects(selector, &labels) {
            return Err(invalid(
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            ));
        }
        let containers = obj
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array);
        if containers.is_none_or(Vec::is_empty) {
            return Err(invalid("spec.template.spec.containers", "Required value"));
        }
        if obj
            .pointer("/spec/replicas")
            .is_some_and(|r| r.as_i64().is_none_or(|r| r < 0))
        {
            return Err(invalid(
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0",
            ));
        }
        if obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .is_some_and(|r| r > MAX_REPLICAS)
        {
            return Err(invalid("spec.replicas", REPLICAS_TOO_MANY));
        }
    }
    if def == &resources::LEASES {
        validate_lease(obj, &invalid)?;
    }
    if def == &resources::PODS {
        let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
        if containers.is_none_or(Vec::is_empty) {
            return Err(invalid("spec.containers", "Required value"));
        }
    }
    Ok(())
}

/// The real server's Lease validation (duration above 0, transitions not negative); a time it
/// cannot read fails decoding there, so it is a 400 here too.
fn validate_lease(obj: &Value, invalid: &dyn Fn(&str, &str) -> ApiError) -> Result<(), ApiError> {
    for field in ["acquireTime", "renewTime"] {
        if let Some(t) = obj.pointer(&format!("/spec/{field}"))
            && t.as_str().is_none_or(|s| util::parse_time(s).is_none())
        {
            return Err(ApiError::BadRequest(format!(
                "Lease in version \"v1\" cannot be handled as a Lease: spec.{field}: cannot parse {t} as a time (RFC 3339)"
            )));
        }
    }
    let int_field = |field: &str| obj.pointer(&format!("/spec/{field}"));
    if let Some(d) = int_field("leaseDurationSeconds")
        && d.as_i64().is_none_or(|d| d <= 0)
    {
        return Err(invalid(
            "spec.leaseDurationSeconds",
            &format!("Invalid value: {d}: must be greater than 0"),
        ));
    }
    if let Some(n) = int_field("leaseTransitions")
        && n.as_i64().is_none_or(|n| n < 0)
    {
        return Err(invalid(
            "spec.leaseTransitions",
            &format!("Invalid value: {n}: must be greater than or equal to 0"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Main,
    Status,
}

/// Carries the half of the object the request may not change over from the stored object:
/// the main resource cannot change `status`, the status subresource can change only `status`.
fn keep_other_part(def: &ResourceDef, part: Part, current: &Value, next: &mut Value) {
    match part {
        Part::Main if def.has_status => {
            if let Some(o) = next.as_object_mut() {
                match current.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
        }
        Part::Main => {}
        Part::Status => {
            let status = next.get("status").cloned();
            *next = current.clone();
            if let Some(o) = next.as_object_mut() {
                match status {
                    Some(s) => o.insert("status".into(), s),
                    None => o.remove("status"),
                };
            }
        }
    }
}

fn update(req: &Req<'_>, name: &str, part: Part) -> Result<Value, ApiError> {
    let def = req.def;
    let mut obj = parse_body(req.body)?;
    prune_nulls(&mut obj);
    check_type(def, &obj)?;
    check_namespace(def, req.ns, &obj)?;
    let expected = match str_at(&obj, "/metadata/resourceVersion").filter(|s| !s.is_empty()) {
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
        ),
        None => None,
    };
    req.sim.store().modify(
        def,
        req.ns,
        name,
        |current| {
            if let Some(expected) = expected
                && super::store::object_rv(current) != Some(expected)
            {
                return Err(ApiError::conflict(def, name));
            }
            keep_other_part(def, part, current, &mut obj);
            if part == Part::Main {
                defaults::apply(def, &mut obj);
                validate(def, &obj)?;
            }
            *current = obj;
            Ok(())
        },
        req.dry_run,
    )
}

/// PATCH in all its forms. Server-side apply (`application/apply-patch+yaml`) is approximated:
/// it creates a missing object and otherwise merges like a strategic merge patch (JSON merge
/// for custom resources such as HTTPRoute, whose lists are atomic); field ownership and
/// conflicts are not tracked.
fn patch_object(req: &Req<'_>, name: &str, part: Part) -> Result<Response, ApiError> {
    let def = req.def;
    let kind = PatchKind::from_content_type(req.content_type())?;
    if kind == PatchKind::Strategic && resources::is_custom(def) {
        return Err(ApiError::UnsupportedMediaType(
            "strategic merge patch is not supported for custom resources (use a JSON merge patch)"
                .into(),
        ));
    }
    if kind == PatchKind::Apply {
        if req.q.get("fieldManager").is_none_or(String::is_empty) {
            return Err(ApiError::Invalid(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            ));
        }
        if part == Part::Main && !req.sim.store().name_taken(def, req.ns, name) {
            let mut obj = patch::parse_apply(req.body)?;
            if !obj.is_object() {
                return Err(ApiError::BadRequest(
                    "an apply patch must be an object".into(),
                ));
            }
            obj_at(&mut obj, &["metadata"])
                .entry("name")
                .or_insert(json!(name));
            if str_at(&obj, "/metadata/name") != Some(name) {
                return Err(ApiError::BadRequest(
                    "the name of the object does not match the name on the URL".into(),
                ));
            }
            let created = create_object(req.sim, def, req.ns, obj, req.dry_run)?;
            return Ok(json_response(StatusCode::CREATED, &created));
        }
    }
    let strategic_lists = !resources::is_custom(def);
    let patched = req.sim.store().modify(
        def,
        req.ns,
        name,
        |current| {
            let mut next = patch::apply(kind, current, req.body, strategic_lists)?;
            prune_nulls(&mut next);
            // A patch that carries a resourceVersion is a precondition, as for PUT.
            let patched_rv = str_at(&next, "/metadata/resourceVersion").map(str::to_string);
            let current_rv = str_at(current, "/metadata/resourceVersion").map(str::to_string);
            if patched_rv.is_some() && patched_rv != current_rv {
                return Err(ApiError::conflict(def, name));
            }
            check_type(def, &next)?;
            keep_other_part(def, part, current, &mut next);
            if part == Part::Main {
                defaults::apply(def, &mut next);
                validate(def, &next)?;
            }
            *current = next;
            Ok(())
        },
        req.dry_run,
    )?;
    Ok(ok(&patched))
}

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn write_scale(req: &Req<'_>, name: &str, method: &Method) -> Result<Value, ApiError> {
    let def = req.def;
    let updated = req.sim.store().modify(
        def,
        req.ns,
        name,
        |current| {
            let scale = scale_of(current);
            let next_scale = if method == Method::PATCH {
                let kind = PatchKind::from_content_type(req.content_type())?;
                patch::apply(kind, &scale, req.body, true)?
            } else {
                parse_body(req.body)?
            };
            let given_rv =
                str_at(&next_scale, "/metadata/resourceVersion").filter(|s| !s.is_empty());
            if given_rv.is_some() && given_rv != str_at(&scale, "/metadata/resourceVersion") {
                return Err(ApiError::conflict(def, name));
            }
            let replicas = next_scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .filter(|r| (0..=MAX_REPLICAS).contains(r))
                .ok_or_else(|| {
                    ApiError::Invalid(format!(
                        "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: must be between 0 and {MAX_REPLICAS}"
                    ))
                })?;
            util::set_at(current, &["spec", "replicas"], json!(replicas));
            Ok(())
        },
        req.dry_run,
    )?;
    Ok(scale_of(&updated))
}

/// `gracePeriodSeconds` from the query or the DeleteOptions body.
fn grace_period(q: &HashMap<String, String>, body: &[u8]) -> Option<i64> {
    if let Some(g) = q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        return Some(g);
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("gracePeriodSeconds").and_then(Value::as_i64))
}

pub(super) fn delete(
    sim: &KubeSim,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Result<Value, ApiError> {
    // DeleteOptions in the body may ask for a dry run too (kube-rs and kubectl send it there).
    let body_dry_run = serde_json::from_slice::<Value>(body).ok().is_some_and(|v| {
        v.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "All"))
    });
    if dry_run(q)? || body_dry_run {
        return sim.store().get(def, ns, name);
    }
    if def == &resources::PODS {
        // Pods terminate gracefully: the kubelet (controller) removes them once marked.
        let grace = grace_period(q, body);
        if grace != Some(0) {
            let current = sim.store().get(def, ns, name)?;
            let scheduled = current.pointer("/spec/nodeName").is_some();
            if scheduled {
                let grace = grace
                    .or_else(|| util::i64_at(&current, "/spec/terminationGracePeriodSeconds"))
                    .unwrap_or(30)
                    .max(1);
                return sim.store().update_with(def, ns, name, |pod| {
                    if pod.pointer("/metadata/deletionTimestamp").is_none() {
                        let meta = obj_at(pod, &["metadata"]);
                        meta.insert("deletionTimestamp".into(), json!(util::now_rfc3339()));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                    }
                    Ok(())
                });
            }
        }
    }
    if def == &resources::NAMESPACES {
        sim.store().get(def, ns, name)?;
        sim.store().delete_namespace_contents(name);
    }
    sim.store().delete(def, ns, name)
}

fn delete_collection(
    sim: &KubeSim,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(q)?;
    let (items, rv) = sim.store().list(t.def, t.namespace.as_deref());
    let mut deleted = Vec::new();
    for item in items
        .iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
    {
        if let Ok(d) = delete(
            sim,
            t.def,
            util::namespace_of(item),
            util::name_of(item),
            q,
            &[],
        ) {
            deleted.push(d);
        }
    }
    Ok(ok(&json!({
        "kind": t.def.list_kind(),
        "apiVersion": t.def.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": deleted,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_selectors() {
        let q = parse_query(Some(
            "labelSelector=app%3Dcheckout%2Ctrack+in+(a%2Cb)&watch=1&x=%zz",
        ));
        assert_eq!(
            q.get("labelSelector").map(String::as_str),
            Some("app=checkout,track in (a,b)")
        );
        assert!(truthy(&q, "watch"));
        assert_eq!(q.get("x").map(String::as_str), Some("%zz"));
        let repeated = parse_query(Some("limit=1&limit=2&flag"));
        assert_eq!(repeated.get("limit").map(String::as_str), Some("2"));
        assert_eq!(repeated.get("flag").map(String::as_str), Some(""));
    }

    #[test]
    fn paths_resolve_to_targets_or_no_route() {
        assert!(parse_target("", "v1", &["pods"]).is_ok());
        assert!(parse_target("", "v1", &["namespaces", "shop", "pods", "p"]).is_ok());
        assert!(parse_target("", "v1", &["namespaces", "shop"]).is_ok());
        assert!(parse_target("", "v1", &["pods", "p"]).is_err());
        assert!(
            parse_target(
                "apps",
                "v1",
                &["namespaces", "shop", "deployments", "d", "scale"]
            )
            .is_ok()
        );
        assert!(
            parse_target(
                "apps",
                "v1",
                &["namespaces", "shop", "deployments", "d", "exec"]
            )
            .is_err()
        );
        assert!(
            parse_target(
                "",
                "v1",
                &["namespaces", "shop", "configmaps", "c", "status"]
            )
            .is_err()
        );
    }
}
