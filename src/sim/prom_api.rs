//! The simulated Prometheus HTTP API: query, query_range, series/label metadata, health, buildinfo.
//! It only reads the Tsdb through the PromQL evaluator and must not write samples.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::sim::promql::{self, QueryError, RangeSeries, Value, format_timestamp, format_value};
use crate::sim::tsdb::{LabelMatcher, Labels, Tsdb};

/// Fault switches for drills. Cloning shares the switches. A timed outage (the
/// `prometheus_outage` drill's `for`) is [`crate::sim::faults::Faults`] switching the outage
/// on and, when its timer fires, off again.
#[derive(Clone, Debug, Default)]
pub struct PromFaults {
    outage: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

impl PromFaults {
    pub fn new() -> Self {
        Self::default()
    }

    /// While set, every endpoint answers 503, like a Prometheus that is down behind a proxy.
    pub fn set_outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    pub fn outage(&self) -> bool {
        self.outage.load(Ordering::SeqCst)
    }

    /// Every response is held back this long (zero turns it off): a slow or overloaded Prometheus.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))
    }
}

#[derive(Clone)]
struct ApiState {
    tsdb: Tsdb,
}

/// The API router with its own (never tripped) fault switches.
pub fn router(tsdb: Tsdb) -> Router {
    router_with_faults(tsdb, PromFaults::new())
}

/// The API router; `faults` lets a drill take it down and bring it back.
pub fn router_with_faults(tsdb: Tsdb, faults: PromFaults) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(label_names).post(label_names))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route(
            "/-/ready",
            get(|| async { "Prometheus Server is Ready.\n" }),
        )
        .route(
            "/-/healthy",
            get(|| async { "Prometheus Server is Healthy.\n" }),
        )
        .with_state(ApiState { tsdb })
        .layer(middleware::from_fn_with_state(faults, outage_gate))
}

async fn outage_gate(State(faults): State<PromFaults>, req: Request, next: Next) -> Response {
    let delay = faults.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if faults.outage() {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "simulated Prometheus outage",
        );
    }
    next.run(req).await
}

/// An error answer in Prometheus's shape.
fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "status": "error",
        "errorType": error_type,
        "error": message,
    });
    json_response(status, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn query_error(e: &QueryError) -> Response {
    match e {
        QueryError::Parse(m) => api_error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            &format!("invalid parameter \"query\": {m}"),
        ),
        QueryError::BadData(m) => api_error(StatusCode::BAD_REQUEST, "bad_data", m),
        QueryError::Execution(_) | QueryError::Unsupported(_) => api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            &e.to_string(),
        ),
    }
}

fn bad_param(name: &str, msg: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "bad_data",
        &format!("invalid parameter \"{name}\": {msg}"),
    )
}

/// Form values from the URL query and, for POST, the urlencoded body; like Go's
/// `r.FormValue`, a body value wins over a URL value of the same name.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(raw_query: Option<String>, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        if let Some(q) = raw_query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(pairs)
    }

    fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses a timestamp as Prometheus does: unix seconds (fractions allowed) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        // 2^53 ms is far beyond any real date and keeps the i64 conversion exact.
        if !f.is_finite() || f.abs() > 9.0e12 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let secs = f.trunc();
        let frac_ms = ((f - secs) * 1000.0).round();
        return Ok(secs as i64 * 1000 + frac_ms as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses a duration as Prometheus does: seconds as a float, or a duration like `5s`, `1m30s`.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > 9.0e12 {
            return Err(format!("cannot parse {s:?} to a valid duration"));
        }
        return Ok((f * 1000.0).round() as i64);
    }
    // Guarded: promql-parser's helper was written for trusted input.
    let parsed = crate::panics::caught(|| promql_parser::util::parse_duration(s))
        .unwrap_or_else(|_| Err("unparsable duration".into()));
    match parsed {
        Ok(d) => i64::try_from(d.as_millis())
            .map_err(|_| format!("cannot parse {s:?} to a valid duration")),
        Err(_) => Err(format!("cannot parse {s:?} to a valid duration")),
    }
}

async fn query(State(st): State<ApiState>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let params = Params::new(raw, &body);
    let q = params.get("query").unwrap_or("").to_string();
    let t = match params.get("time") {
        None | Some("") => now_ms(),
        Some(s) => match parse_time(s) {
            Ok(t) => t,
            Err(m) => return bad_param("time", &m),
        },
    };
    let tsdb = st.tsdb.clone();
    // An evaluation that panics is this query's 500, not the end of the process.
    let result = tokio::task::spawn_blocking(move || {
        crate::panics::caught(std::panic::AssertUnwindSafe(|| {
            promql::instant_query(&tsdb, &q, t)
        }))
    })
    .await;
    match result {
        Ok(Ok(Ok(v))) => json_response(StatusCode::OK, success(&render_instant(&v, t))),
        Ok(Ok(Err(e))) => query_error(&e),
        Ok(Err(_)) | Err(_) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "query evaluation failed",
        ),
    }
}

async fn query_range(State(st): State<ApiState>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let params = Params::new(raw, &body);
    let q = params.get("query").unwrap_or("").to_string();
    let start = match params.get("start").map(parse_time) {
        Some(Ok(t)) => t,
        Some(Err(m)) => return bad_param("start", &m),
        None => return bad_param("start", "cannot parse \"\" to a valid timestamp"),
    };
    let end = match params.get("end").map(parse_time) {
        Some(Ok(t)) => t,
        Some(Err(m)) => return bad_param("end", &m),
        None => return bad_param("end", "cannot parse \"\" to a valid timestamp"),
    };
    let step = match params.get("step").map(parse_duration_ms) {
        Some(Ok(d)) => d,
        Some(Err(m)) => return bad_param("step", &m),
        None => return bad_param("step", "cannot parse \"\" to a valid duration"),
    };
    let tsdb = st.tsdb.clone();
    let result = tokio::task::spawn_blocking(move || {
        crate::panics::caught(std::panic::AssertUnwindSafe(|| {
            promql::range_query(&tsdb, &q, start, end, step)
        }))
    })
    .await;
    match result {
        Ok(Ok(Ok(m))) => json_response(StatusCode::OK, success(&render_matrix(&m))),
        Ok(Ok(Err(e))) => query_error(&e),
        Ok(Err(_)) | Err(_) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "query evaluation failed",
        ),
    }
}

/// The `match[]`, `start` and `end` parameters shared by the metadata endpoints. Without
/// `match[]`, every series matches; without a time range, all retained samples count.
struct SeriesFilter {
    groups: Vec<Vec<LabelMatcher>>,
    start: i64,
    end: i64,
}

/// Errors are the full `bad_data` message.
fn series_filter(params: &Params, require_match: bool) -> Result<SeriesFilter, String> {
    let invalid = |name: &str, msg: &str| format!("invalid parameter \"{name}\": {msg}");
    let mut groups = Vec::new();
    for m in params.get_all("match[]") {
        match promql::parse_selector(m) {
            Ok(g) => groups.extend(g),
            Err(e) => return Err(invalid("match[]", &e.to_string())),
        }
    }
    if groups.is_empty() {
        if require_match {
            return Err("no match[] parameter provided".into());
        }
        groups.push(Vec::new());
    }
    let start = match params.get("start") {
        None | Some("") => i64::MIN,
        Some(s) => parse_time(s).map_err(|m| invalid("start", &m))?,
    };
    let end = match params.get("end") {
        None | Some("") => i64::MAX,
        Some(s) => parse_time(s).map_err(|m| invalid("end", &m))?,
    };
    Ok(SeriesFilter { groups, start, end })
}

fn bad_data(msg: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

fn matching_series(tsdb: &Tsdb, f: &SeriesFilter) -> BTreeSet<Labels> {
    f.groups
        .iter()
        .flat_map(|g| tsdb.series(g, f.start, f.end))
        .collect()
}

async fn series(State(st): State<ApiState>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let params = Params::new(raw, &body);
    let filter = match series_filter(&params, true) {
        Ok(f) => f,
        Err(msg) => return bad_data(&msg),
    };
    let mut out = String::from("[");
    for (i, labels) in matching_series(&st.tsdb, &filter).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        render_labels(&mut out, labels);
    }
    out.push(']');
    json_response(StatusCode::OK, success(&out))
}

async fn label_names(State(st): State<ApiState>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let params = Params::new(raw, &body);
    let filter = match series_filter(&params, false) {
        Ok(f) => f,
        Err(msg) => return bad_data(&msg),
    };
    let names: BTreeSet<String> = matching_series(&st.tsdb, &filter)
        .into_iter()
        .flat_map(|l| l.into_keys())
        .collect();
    json_response(StatusCode::OK, success(&json_list(names)))
}

async fn label_values(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = Params::new(raw, &[]);
    let filter = match series_filter(&params, false) {
        Ok(f) => f,
        Err(msg) => return bad_data(&msg),
    };
    let values: BTreeSet<String> = matching_series(&st.tsdb, &filter)
        .into_iter()
        .filter_map(|mut l| l.remove(&name))
        .collect();
    json_response(StatusCode::OK, success(&json_list(values)))
}

fn json_list(items: BTreeSet<String>) -> String {
    serde_json::Value::from(items.into_iter().collect::<Vec<_>>()).to_string()
}

async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "status": "success",
        "data": {
            "version": "3.0.0-warroom-sim",
            "revision": "warroom-simulator",
            "branch": "sim",
            "buildUser": "warroom",
            "buildDate": "20260101-00:00:00",
            "goVersion": "none",
        }
    });
    json_response(StatusCode::OK, body.to_string())
}

fn success(data: &str) -> String {
    format!("{{\"status\":\"success\",\"data\":{data}}}")
}

// JSON is assembled by hand because Prometheus prints timestamps as bare numbers without a
// trailing ".0" and values as strings in Go's float format; serde_json would print 1.0 as "1.0".

fn render_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(k));
        out.push(':');
        out.push_str(&json_string(v));
    }
    out.push('}');
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn render_point(out: &mut String, t: i64, v: &str) {
    out.push('[');
    out.push_str(&format_timestamp(t));
    out.push(',');
    out.push_str(v);
    out.push(']');
}

fn render_instant(v: &Value, t: i64) -> String {
    let mut out = String::new();
    match v {
        Value::Scalar(x) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            render_point(&mut out, t, &json_string(&format_value(*x)));
        }
        Value::String(s) => {
            out.push_str("{\"resultType\":\"string\",\"result\":");
            render_point(&mut out, t, &json_string(s));
        }
        Value::Vector(elems) => {
            // Order is the evaluator's (label order for selectors), so sort() and topk() show.
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                render_labels(&mut out, &e.labels);
                out.push_str(",\"value\":");
                render_point(&mut out, t, &json_string(&format_value(e.value)));
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            return render_matrix(series);
        }
    }
    out.push('}');
    out
}

fn render_matrix(series: &[RangeSeries]) -> String {
    let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        render_labels(&mut out, &s.labels);
        out.push_str(",\"values\":[");
        for (j, &(t, v)) in s.points.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            render_point(&mut out, t, &json_string(&format_value(v)));
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.25"), Ok(1_700_000_000_250));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("1e300").is_err());
    }

    #[test]
    fn durations_parse_as_seconds_or_units() {
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("-5"), Ok(-5_000));
        assert!(parse_duration_ms("5 parsecs").is_err());
        assert!(parse_duration_ms("inf").is_err());
    }

    #[test]
    fn instant_vector_renders_values_as_strings_and_bare_timestamps() {
        let v = Value::Vector(vec![promql::Element {
            labels: crate::sim::tsdb::labels([("a", "x\"y")]),
            value: 1.0,
        }]);
        assert_eq!(
            render_instant(&v, 1_700_000_000_500),
            r#"{"resultType":"vector","result":[{"metric":{"a":"x\"y"},"value":[1700000000.5,"1"]}]}"#
        );
        assert_eq!(
            render_instant(&Value::Scalar(f64::NAN), 1000),
            r#"{"resultType":"scalar","result":[1,"NaN"]}"#
        );
    }
}
