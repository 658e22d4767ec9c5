//! The fault endpoint `{kubernetes}/sim/faults`: parses drills, switches them on and off (by
//! itself after `for`) through the handles the simulator holds. It owns no simulation state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::kube::{CrashRule, DenyRule, KubeSim};
use super::prom_api::{self, PromFaults};
use super::traffic::TrafficControl;

/// Each kind `POST /sim/faults` accepts, with the fields it takes besides `kind` and `for`.
/// [`parse`] builds every kind listed here; a test checks that each one round-trips through
/// [`Fault::kind`].
const KIND_FIELDS: [(&str, &[&str]); 7] = [
    ("error_spike", &["namespace", "service", "track", "ratio"]),
    (
        "latency_spike",
        &["namespace", "service", "track", "factor"],
    ),
    (
        "crashloop",
        &["namespace", "deployment", "service", "track"],
    ),
    ("api_outage", &[]),
    ("prometheus_outage", &[]),
    ("watch_expiry", &[]),
    ("forbidden", &["verb", "resource", "namespace"]),
];

/// The kinds `POST /sim/faults` accepts.
pub const KINDS: [&str; KIND_FIELDS.len()] = {
    let mut kinds = [""; KIND_FIELDS.len()];
    let mut i = 0;
    while i < kinds.len() {
        kinds[i] = KIND_FIELDS[i].0;
        i += 1;
    }
    kinds
};

/// How often an open-ended `watch_expiry` with a duration expires watches again.
const EXPIRY_REPEAT: Duration = Duration::from_secs(1);

/// A drill, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// A share of a track's requests fail with 500.
    ErrorSpike { target: Track, ratio: f64 },
    /// A track's latencies are multiplied by `factor`.
    LatencySpike { target: Track, factor: f64 },
    /// Pods' containers exit after each start (CrashLoopBackOff).
    Crashloop(CrashRule),
    /// The Kubernetes API answers 503 (except `/sim/…`).
    ApiOutage,
    /// The Prometheus API answers 503.
    PrometheusOutage,
    /// Open watches end with `410 Gone` (and, with a duration, every watch opened meanwhile).
    WatchExpiry,
    /// RBAC refuses the requests the rule covers with `403 Forbidden`.
    Forbidden(DenyRule),
}

/// One service's track, as the request generator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub namespace: String,
    pub service: String,
    pub track: String,
}

/// A drill as posted: what, and for how long (`None`: until cleared).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRequest {
    pub fault: Fault,
    pub duration: Option<Duration>,
}

impl Fault {
    fn kind(&self) -> &'static str {
        match self {
            Fault::ErrorSpike { .. } => "error_spike",
            Fault::LatencySpike { .. } => "latency_spike",
            Fault::Crashloop(_) => "crashloop",
            Fault::ApiOutage => "api_outage",
            Fault::PrometheusOutage => "prometheus_outage",
            Fault::WatchExpiry => "watch_expiry",
            Fault::Forbidden(_) => "forbidden",
        }
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), json!(self.kind()));
        let mut track = |t: &Track| {
            m.insert("namespace".into(), json!(t.namespace));
            m.insert("service".into(), json!(t.service));
            m.insert("track".into(), json!(t.track));
        };
        match self {
            Fault::ErrorSpike { target, ratio } => {
                track(target);
                m.insert("ratio".into(), json!(ratio));
            }
            Fault::LatencySpike { target, factor } => {
                track(target);
                m.insert("factor".into(), json!(factor));
            }
            Fault::Crashloop(CrashRule::Deployment {
                namespace,
                deployment,
            }) => {
                m.insert("namespace".into(), json!(namespace));
                m.insert("deployment".into(), json!(deployment));
            }
            Fault::Crashloop(CrashRule::Track {
                namespace,
                service,
                track,
            }) => {
                m.insert("namespace".into(), json!(namespace));
                if let Some(s) = service {
                    m.insert("service".into(), json!(s));
                }
                m.insert("track".into(), json!(track));
            }
            Fault::Forbidden(rule) => {
                for (key, value) in [
                    ("verb", &rule.verb),
                    ("resource", &rule.resource),
                    ("namespace", &rule.namespace),
                ] {
                    if let Some(v) = value {
                        m.insert(key.into(), json!(v));
                    }
                }
            }
            Fault::ApiOutage | Fault::PrometheusOutage | Fault::WatchExpiry => {}
        }
        m
    }
}

/// Parses a `POST /sim/faults` body; the error is the message for a 400.
pub fn parse(body: &[u8]) -> Result<FaultRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not JSON ({e}); send e.g. {{\"kind\":\"api_outage\",\"for\":\"30s\"}}")
    })?;
    let Some(obj) = v.as_object() else {
        return Err("the body must be a JSON object with a \"kind\"".into());
    };
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err("\"kind\" must be a string".into()),
        None => {
            return Err(format!("missing \"kind\"; one of: {}", KINDS.join(", ")));
        }
    };
    let unknown = || format!("unknown fault kind {kind:?}; one of: {}", KINDS.join(", "));
    let Some(&(_, allowed)) = KIND_FIELDS.iter().find(|(k, _)| *k == kind) else {
        return Err(unknown());
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| *k != "kind" && *k != "for" && !allowed.contains(&k.as_str()))
    {
        return Err(if allowed.is_empty() {
            format!("unknown field {extra:?} for {kind} (it takes only \"for\")")
        } else {
            format!(
                "unknown field {extra:?} for {kind}; it takes {} and \"for\"",
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    let text = |field: &str| -> Result<Option<String>, String> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{field}\" must be a non-empty string")),
        }
    };
    let required = |field: &str| -> Result<String, String> {
        text(field)?.ok_or_else(|| format!("{kind} needs \"{field}\""))
    };
    let number = |field: &str| -> Result<f64, String> {
        match obj.get(field) {
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| format!("\"{field}\" must be a number")),
            Some(_) => Err(format!("\"{field}\" must be a number")),
            None => Err(format!("{kind} needs \"{field}\"")),
        }
    };
    let track = || -> Result<Track, String> {
        Ok(Track {
            namespace: required("namespace")?,
            service: required("service")?,
            track: text("track")?.unwrap_or_else(|| "canary".into()),
        })
    };
    let fault = match kind {
        "error_spike" => {
            let target = track()?;
            let ratio = number("ratio")?;
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("\"ratio\" must be between 0 and 1, got {ratio}"));
            }
            Fault::ErrorSpike { target, ratio }
        }
        "latency_spike" => {
            let target = track()?;
            let factor = number("factor")?;
            if !(factor.is_finite() && factor > 0.0) {
                return Err(format!(
                    "\"factor\" must be a positive number, got {factor}"
                ));
            }
            Fault::LatencySpike { target, factor }
        }
        "crashloop" => {
            let namespace = required("namespace")?;
            match (text("deployment")?, text("track")?) {
                (Some(deployment), None) => {
                    if obj.contains_key("service") {
                        return Err(
                            "crashloop takes \"deployment\" or \"service\"/\"track\", not both"
                                .into(),
                        );
                    }
                    Fault::Crashloop(CrashRule::Deployment {
                        namespace,
                        deployment,
                    })
                }
                (None, Some(track)) => Fault::Crashloop(CrashRule::Track {
                    namespace,
                    service: text("service")?,
                    track,
                }),
                (Some(_), Some(_)) => {
                    return Err("crashloop takes \"deployment\" or \"track\", not both".into());
                }
                (None, None) => {
                    return Err("crashloop needs \"deployment\" or \"track\"".into());
                }
            }
        }
        "api_outage" => Fault::ApiOutage,
        "prometheus_outage" => Fault::PrometheusOutage,
        "forbidden" => Fault::Forbidden(DenyRule {
            verb: text("verb")?,
            resource: text("resource")?,
            namespace: text("namespace")?,
        }),
        "watch_expiry" => Fault::WatchExpiry,
        // Listed in KIND_FIELDS but not built here: the round-trip test catches this.
        _ => return Err(unknown()),
    };
    let duration = match obj.get("for") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_for(s)?),
        Some(Value::Number(n)) => Some(parse_for(&n.to_string())?),
        Some(_) => return Err("\"for\" must be a duration such as \"60s\" or \"2m\"".into()),
    };
    Ok(FaultRequest { fault, duration })
}

fn parse_for(s: &str) -> Result<Duration, String> {
    let ms = prom_api::parse_duration_ms(s.trim())
        .map_err(|_| format!("\"for\" must be a duration such as \"60s\" or \"2m\", got {s:?}"))?;
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 && ms <= 30 * 24 * 3600 * 1000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "\"for\" must be more than 0 and at most 30 days, got {s:?}"
        )),
    }
}

/// One switched-on drill.
struct Active {
    id: u64,
    request: FaultRequest,
    started: String,
    ends: Option<(Instant, String)>,
    /// Crash-loop rule id in the Kubernetes simulator.
    crash_rule: Option<u64>,
    /// RBAC denial id in the Kubernetes simulator.
    deny_rule: Option<u64>,
    cancel: CancellationToken,
}

impl Active {
    fn to_json(&self) -> Value {
        let mut m = self.request.fault.to_json();
        m.insert("id".into(), json!(self.id));
        m.insert("started".into(), json!(self.started));
        match &self.ends {
            Some((at, text)) => {
                let left = at.saturating_duration_since(Instant::now());
                m.insert("ends".into(), json!(text));
                m.insert("remaining_seconds".into(), json!(left.as_secs()));
            }
            None => {
                m.insert("ends".into(), Value::Null);
            }
        }
        Value::Object(m)
    }
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    active: Vec<Active>,
}

/// The fault switchboard. Cheap to clone; clones share the active faults.
#[derive(Clone)]
pub struct Faults {
    registry: Arc<Mutex<Registry>>,
    kube: KubeSim,
    prom: PromFaults,
    traffic: TrafficControl,
}

/// How long an open-ended traffic override lasts: for ever, in practice.
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl Faults {
    pub fn new(kube: KubeSim, prom: PromFaults, traffic: TrafficControl) -> Self {
        Faults {
            registry: Arc::default(),
            kube,
            prom,
            traffic,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches `request` on; it ends after its duration, or on [`Faults::clear`]. Returns the
    /// fault as listed. Needs a Tokio runtime (the end is a timer task).
    pub fn start(&self, request: FaultRequest) -> Value {
        let now = Instant::now();
        let ends = request.duration.map(|d| {
            let wall = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_millis(
                    i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                ))
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            (now + d, wall)
        });
        let until = ends.as_ref().map(|(at, _)| *at).unwrap_or(now + FOREVER);
        let mut crash_rule = None;
        let mut deny_rule = None;
        match &request.fault {
            Fault::ErrorSpike { target, ratio } => self.traffic.set_error_ratio(
                &target.namespace,
                &target.service,
                &target.track,
                *ratio,
                until,
            ),
            Fault::LatencySpike { target, factor } => self.traffic.set_latency_multiplier(
                &target.namespace,
                &target.service,
                &target.track,
                *factor,
                until,
            ),
            Fault::Crashloop(rule) => crash_rule = Some(self.kube.start_crashloop(rule.clone())),
            Fault::ApiOutage => self.kube.api_outage(true),
            Fault::PrometheusOutage => self.prom.set_outage(true),
            Fault::WatchExpiry => self.kube.watch_expiry(),
            Fault::Forbidden(rule) => deny_rule = Some(self.kube.deny(rule.clone())),
        }
        let cancel = CancellationToken::new();
        let active = {
            let mut reg = self.lock();
            reg.next_id += 1;
            let active = Active {
                id: reg.next_id,
                request: request.clone(),
                started: jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
                ends: ends.clone(),
                crash_rule,
                deny_rule,
                cancel: cancel.clone(),
            };
            let shown = active.to_json();
            // A watch expiry without a duration is over as soon as it fired.
            let lasting = !(request.fault == Fault::WatchExpiry && request.duration.is_none());
            let id = active.id;
            if lasting {
                reg.active.push(active);
            }
            (shown, id, lasting)
        };
        let (shown, id, lasting) = active;
        if lasting {
            let faults = self.clone();
            let repeat_expiry = request.fault == Fault::WatchExpiry;
            let deadline = ends.map(|(at, _)| at);
            tokio::spawn(async move {
                let end = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::pin!(end);
                let mut tick = tokio::time::interval(EXPIRY_REPEAT);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = &mut end => break,
                        _ = tick.tick(), if repeat_expiry => faults.kube.watch_expiry(),
                    }
                }
                faults.end(id);
            });
        }
        shown
    }

    /// The active faults, oldest first.
    pub fn list(&self) -> Vec<Value> {
        self.lock().active.iter().map(Active::to_json).collect()
    }

    /// Ends one fault; false when no such fault is active.
    pub fn end(&self, id: u64) -> bool {
        let ended = {
            let mut reg = self.lock();
            let Some(i) = reg.active.iter().position(|a| a.id == id) else {
                return false;
            };
            reg.active.remove(i)
        };
        self.revert(&ended);
        true
    }

    /// Ends every fault; returns how many were active.
    pub fn clear(&self) -> usize {
        let ended = std::mem::take(&mut self.lock().active);
        for a in &ended {
            self.revert(a);
        }
        ended.len()
    }

    /// Undoes one fault, keeping what other active faults still switch on.
    fn revert(&self, ended: &Active) {
        ended.cancel.cancel();
        let still: Vec<(FaultRequest, Option<Instant>)> = self
            .lock()
            .active
            .iter()
            .map(|a| (a.request.clone(), a.ends.as_ref().map(|(at, _)| *at)))
            .collect();
        let any = |f: &dyn Fn(&Fault) -> bool| still.iter().any(|(r, _)| f(&r.fault));
        match &ended.request.fault {
            Fault::ErrorSpike { target, .. } | Fault::LatencySpike { target, .. } => {
                self.traffic
                    .clear(&target.namespace, &target.service, &target.track);
                // Put back the other drills on the same track.
                for (r, at) in &still {
                    let until = at.unwrap_or_else(|| Instant::now() + FOREVER);
                    match &r.fault {
                        Fault::ErrorSpike { target: t, ratio } if t == target => self
                            .traffic
                            .set_error_ratio(&t.namespace, &t.service, &t.track, *ratio, until),
                        Fault::LatencySpike { target: t, factor } if t == target => {
                            self.traffic.set_latency_multiplier(
                                &t.namespace,
                                &t.service,
                                &t.track,
                                *factor,
                                until,
                            )
                        }
                        _ => {}
                    }
                }
            }
            Fault::Crashloop(_) => {
                if let Some(rule) = ended.crash_rule {
                    self.kube.stop_crashloop(rule);
                }
            }
            Fault::ApiOutage => {
                if !any(&|f| *f == Fault::ApiOutage) {
                    self.kube.api_outage(false);
                }
            }
            Fault::PrometheusOutage => {
                if !any(&|f| *f == Fault::PrometheusOutage) {
                    self.prom.set_outage(false);
                }
            }
            Fault::Forbidden(_) => {
                if let Some(rule) = ended.deny_rule {
                    self.kube.allow(rule);
                }
            }
            Fault::WatchExpiry => {}
        }
    }
}

/// `/faults` and `/faults/{id}`, to be nested under `/sim` of the Kubernetes API's router.
pub fn router(faults: Faults) -> Router {
    Router::new()
        .route("/faults", get(list).post(post).delete(clear))
        .route("/faults/{id}", delete(end_one))
        .with_state(faults)
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}

async fn list(State(faults): State<Faults>) -> Response {
    json_response(StatusCode::OK, &json!({"faults": faults.list()}))
}

async fn post(State(faults): State<Faults>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(request) => json_response(StatusCode::CREATED, &faults.start(request)),
        Err(message) => json_response(StatusCode::BAD_REQUEST, &json!({"error": message})),
    }
}

async fn clear(State(faults): State<Faults>) -> Response {
    json_response(StatusCode::OK, &json!({"cleared": faults.clear()}))
}

async fn end_one(State(faults): State<Faults>, Path(id): Path<String>) -> Response {
    match id.parse::<u64>() {
        Ok(id) if faults.end(id) => json_response(StatusCode::OK, &json!({"cleared": 1})),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no active fault with id {id:?}")}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        parse(body.as_bytes()).err().unwrap_or_default()
    }

    #[test]
    fn error_spike_parses_with_its_duration_and_default_track() {
        let r = parse(br#"{"kind":"error_spike","namespace":"shop","service":"checkout","ratio":0.2,"for":"1m30s"}"#);
        assert_eq!(
            r,
            Ok(FaultRequest {
                fault: Fault::ErrorSpike {
                    target: Track {
                        namespace: "shop".into(),
                        service: "checkout".into(),
                        track: "canary".into()
                    },
                    ratio: 0.2
                },
                duration: Some(Duration::from_secs(90)),
            })
        );
    }

    #[test]
    fn forbidden_takes_an_optional_verb_resource_and_namespace() {
        let f =
            parse(br#"{"kind":"forbidden","verb":"patch","resource":"httproutes","for":"10s"}"#);
        assert_eq!(
            f,
            Ok(FaultRequest {
                fault: Fault::Forbidden(DenyRule {
                    verb: Some("patch".into()),
                    resource: Some("httproutes".into()),
                    namespace: None,
                }),
                duration: Some(Duration::from_secs(10)),
            })
        );
        let err = parse(br#"{"kind":"forbidden","user":"bob"}"#).expect_err("unknown field");
        assert!(
            err.contains("\"verb\", \"resource\", \"namespace\""),
            "{err}"
        );
    }

    #[test]
    fn crashloop_targets_a_deployment_or_a_track() {
        let d = parse(br#"{"kind":"crashloop","namespace":"shop","deployment":"checkout"}"#);
        assert!(matches!(
            d,
            Ok(FaultRequest {
                fault: Fault::Crashloop(CrashRule::Deployment { .. }),
                duration: None
            })
        ));
        let t = parse(br#"{"kind":"crashloop","namespace":"shop","track":"canary","for":30}"#);
        assert!(matches!(
            t,
            Ok(FaultRequest {
                fault: Fault::Crashloop(CrashRule::Track { .. }),
                duration: Some(_)
            })
        ));
    }

    #[test]
    fn bad_bodies_get_messages_that_say_what_to_fix() {
        assert!(err("nope").contains("not JSON"));
        assert!(err("[1]").contains("JSON object"));
        assert!(err("{}").contains("missing \"kind\""));
        assert!(err(r#"{"kind":"meteor"}"#).contains("unknown fault kind \"meteor\""));
        assert!(
            err(r#"{"kind":"error_spike","namespace":"shop","ratio":0.1}"#)
                .contains("error_spike needs \"service\"")
        );
        assert!(
            err(r#"{"kind":"error_spike","namespace":"a","service":"b","ratio":2}"#)
                .contains("between 0 and 1")
        );
        assert!(
            err(r#"{"kind":"latency_spike","namespace":"a","service":"b","factor":-1}"#)
                .contains("positive")
        );
        assert!(err(r#"{"kind":"api_outage","for":"soon"}"#).contains("\"for\" must be"));
        assert!(err(r#"{"kind":"api_outage","ratio":1}"#).contains("unknown field \"ratio\""));
        assert!(err(r#"{"kind":"crashloop","namespace":"a"}"#).contains("\"deployment\" or"));
    }

    #[test]
    fn every_listed_kind_parses_to_a_fault_of_that_kind() {
        for (kind, fields) in KIND_FIELDS {
            let mut body = serde_json::json!({ "kind": kind });
            for field in fields {
                let value = match *field {
                    "ratio" => serde_json::json!(0.5),
                    "factor" => serde_json::json!(2.0),
                    // crashloop takes a deployment or a service/track, not both.
                    "deployment" => continue,
                    other => serde_json::json!(other),
                };
                body[*field] = value;
            }
            let parsed = parse(body.to_string().as_bytes());
            assert_eq!(parsed.as_ref().map(|r| r.fault.kind()), Ok(kind), "{body}");
        }
    }
}
