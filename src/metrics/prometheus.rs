//! Prometheus HTTP API client (reqwest): instant queries, auth headers, error wording.
//! Returns numbers or "no data"; what they mean is decided elsewhere.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::plan::Environment;

/// Why a query gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    #[error("prometheus {url} unreachable: {why}")]
    Unreachable { url: String, why: String },
    /// A 429 or 5xx: Prometheus (or the proxy in front of it) is up but not answering queries.
    #[error("prometheus {url} unavailable (HTTP {status}){}", detail_suffix(.detail))]
    Unavailable {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("prometheus refused the request ({status}): check the token or headers")]
    Forbidden { status: u16 },
    #[error("prometheus {error_type}: {message}")]
    Query { error_type: String, message: String },
    #[error("prometheus answered HTTP {status} with a body that is not its API: {snippet}")]
    Protocol { status: u16, snippet: String },
    #[error("query returned {0} series; aggregate it to one (e.g. wrap it in sum(...))")]
    TooManySeries(usize),
    /// The plan's Prometheus settings cannot be used (a file, a header, the CA).
    #[error("prometheus settings: {0}")]
    Config(String),
}

impl PromError {
    /// True when no answer came at all, or only "unavailable": keep the last data, dimmed.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            PromError::Unreachable { .. } | PromError::Unavailable { .. }
        )
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// One series of an instant-vector answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: BTreeMap<String, String>,
    /// `None` for NaN and ±Inf: no usable number, never zero.
    pub value: Option<f64>,
}

/// Credentials sent to Prometheus with every request.
#[derive(Clone, Default, PartialEq)]
pub enum PromAuth {
    #[default]
    None,
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
}

// Secrets never reach logs or panics through Debug.
impl std::fmt::Debug for PromAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromAuth::None => f.write_str("None"),
            PromAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            PromAuth::Basic { user, .. } => write!(f, "Basic({user}:<redacted>)"),
        }
    }
}

/// Everything needed to reach one Prometheus-compatible endpoint.
#[derive(Clone)]
pub struct PromConfig {
    /// Everything before `/api/v1/…` (a Mimir or Thanos prefix included).
    pub base: String,
    /// Sent with every request, e.g. `X-Scope-OrgID`.
    pub headers: Vec<(String, String)>,
    pub auth: PromAuth,
    /// PEM certificates that replace the system roots, as Prometheus's `tls_config.ca_file`
    /// and kubectl's `certificate-authority` do.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

// Header values may be API keys: Debug names the headers only.
impl std::fmt::Debug for PromConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("PromConfig")
            .field("base", &self.base)
            .field("headers", &headers)
            .field("auth", &self.auth)
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PromConfig {
    /// Plain access to `base`: no headers, no credentials, the system's CAs.
    pub fn new(base: &str, timeout: Duration) -> PromConfig {
        PromConfig {
            base: base.to_string(),
            headers: Vec::new(),
            auth: PromAuth::None,
            ca_pem: None,
            timeout,
        }
    }

    /// Access as a plan environment describes it. The token, basic-auth and CA files are read
    /// now, so a wrong path stops the console before it opens, naming the file.
    pub fn for_environment(
        base: &str,
        env: &Environment,
        timeout: Duration,
    ) -> Result<PromConfig, PromError> {
        let read = |key: &str, path: &str| {
            std::fs::read(path).map_err(|e| PromError::Config(format!("{key} {path}: {e}")))
        };
        let text = |key: &str, path: &str| -> Result<String, PromError> {
            let bytes = read(key, path)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| PromError::Config(format!("{key} {path}: not UTF-8 text")))?;
            let text = text.trim().to_string();
            if text.is_empty() {
                return Err(PromError::Config(format!(
                    "{key} {path}: the file is empty"
                )));
            }
            Ok(text)
        };
        let auth = match (&env.bearer_token_file, &env.basic_auth_file) {
            (Some(path), _) => PromAuth::Bearer(text("bearer_token_file", path)?),
            (None, Some(path)) => {
                let pair = text("basic_auth_file", path)?;
                let (user, password) = pair.split_once(':').ok_or_else(|| {
                    PromError::Config(format!(
                        "basic_auth_file {path}: expected one line `user:password`"
                    ))
                })?;
                PromAuth::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                }
            }
            (None, None) => PromAuth::None,
        };
        let ca_pem = match &env.ca_file {
            Some(path) => Some(read("ca_file", path)?),
            None => None,
        };
        Ok(PromConfig {
            base: base.to_string(),
            headers: env.headers.clone().into_iter().collect(),
            auth,
            ca_pem,
            timeout,
        })
    }
}

/// A Prometheus-compatible endpoint (Prometheus, Thanos, Mimir with a path prefix).
#[derive(Clone)]
pub struct PromClient {
    http: reqwest::Client,
    base: String,
    auth: PromAuth,
}

// The HTTP client's Debug would print the default headers, which may hold API keys.
impl std::fmt::Debug for PromClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromClient")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl PromClient {
    /// A client for `config`. Fails on a header that HTTP cannot carry or a CA file without a
    /// certificate; does not contact the server.
    pub fn new(config: PromConfig) -> Result<PromClient, PromError> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                PromError::Config(format!("header name {name:?} is not valid HTTP"))
            })?;
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                PromError::Config(format!("header {name}: value is not valid HTTP"))
            })?;
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers);
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| PromError::Config(format!("ca_file: {e}")))?;
            if certs.is_empty() {
                return Err(PromError::Config(
                    "ca_file: no PEM certificate in the file".to_string(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| PromError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(PromClient {
            http,
            base: config.base.trim_end_matches('/').to_string(),
            auth: config.auth,
        })
    }

    fn post(&self, path: &str, form: &[(&str, String)]) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        match &self.auth {
            PromAuth::None => request,
            PromAuth::Bearer(token) => request.bearer_auth(token),
            PromAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
        }
    }

    /// Evaluates `promql` at `at` (now when `None`).
    pub async fn query(
        &self,
        promql: &str,
        at: Option<SystemTime>,
    ) -> Result<Vec<InstantSample>, PromError> {
        let mut form = vec![("query", promql.to_string())];
        if let Some(t) = at {
            form.push(("time", unix_seconds(t)));
        }
        let (status, body) = self.send("/api/v1/query", &form).await?;
        parse_response(status, &body)
    }

    /// Evaluates `promql` at every `step` from `start` to `end`, as Prometheus's
    /// `/api/v1/query_range` does.
    pub async fn query_range(
        &self,
        promql: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<Vec<RangeSeries>, PromError> {
        let form = [
            ("query", promql.to_string()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        let (status, body) = self.send("/api/v1/query_range", &form).await?;
        parse_range_response(status, &body)
    }

    /// Sends one API request. Transport failures, refusals (401/403), rate limiting (429) and
    /// 5xx become errors here; every other answer is returned for the caller to parse.
    async fn send(&self, path: &str, form: &[(&str, String)]) -> Result<(u16, String), PromError> {
        let unreachable = |e: reqwest::Error| PromError::Unreachable {
            url: self.base.clone(),
            why: transport_cause(&e),
        };
        let response = self.post(path, form).send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(PromError::Forbidden { status });
        }
        let body = response.text().await.map_err(unreachable)?;
        // Rate limiting (Mimir, Thanos) and server errors say nothing about the metric: the
        // last good data stays on screen, dimmed, as for an unreachable server.
        if status == 429 || (500..=599).contains(&status) {
            // Prometheus's own error text when it sent one, else the start of the body.
            let detail = match parse_response(status, &body) {
                Err(PromError::Query { message, .. }) => message,
                _ => body
                    .chars()
                    .take(120)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            };
            return Err(PromError::Unavailable {
                url: self.base.clone(),
                status,
                detail,
            });
        }
        Ok((status, body))
    }

    /// One number from a query meant to return one series: `None` for an empty result, NaN or
    /// ±Inf.
    pub async fn query_scalar(
        &self,
        promql: &str,
        at: Option<SystemTime>,
    ) -> Result<Option<f64>, PromError> {
        let samples = self.query(promql, at).await?;
        match samples.as_slice() {
            [] => Ok(None),
            [one] => Ok(one.value),
            many => Err(PromError::TooManySeries(many.len())),
        }
    }
}

/// Prometheus's time parameter: Unix seconds with milliseconds.
fn unix_seconds(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    format!("{secs:.3}")
}

/// Why a request got no answer: "timed out", or the innermost cause.
fn transport_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else {
        crate::health::root_cause(e)
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorItem>),
    Scalar((f64, String)),
    Matrix(Vec<MatrixItem>),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// One series of a range answer, oldest point first.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    /// Evaluation time and value; `None` for NaN and ±Inf.
    pub points: Vec<(SystemTime, Option<f64>)>,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// The `data` of a successful answer, or the error Prometheus gave.
fn envelope_data(status: u16, body: &str) -> Result<Option<Data>, PromError> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|_| PromError::Protocol {
        status,
        snippet: body.chars().take(120).collect(),
    })?;
    if envelope.status != "success" {
        return Err(PromError::Query {
            error_type: envelope.error_type.unwrap_or_else(|| "error".to_string()),
            message: envelope.error.unwrap_or_default(),
        });
    }
    Ok(envelope.data)
}

/// Parses an instant query's answer. Scalars become one unlabelled sample.
pub fn parse_response(status: u16, body: &str) -> Result<Vec<InstantSample>, PromError> {
    match envelope_data(status, body)? {
        Some(Data::Vector(items)) => Ok(items
            .into_iter()
            .map(|i| InstantSample {
                labels: i.metric,
                value: parse_value(&i.value.1),
            })
            .collect()),
        Some(Data::Scalar((_, v))) => Ok(vec![InstantSample {
            labels: BTreeMap::new(),
            value: parse_value(&v),
        }]),
        Some(Data::Matrix(_)) | Some(Data::String(_)) | None => Err(PromError::Query {
            error_type: "bad_data".to_string(),
            message: "expected an instant vector or scalar; drop the range selector".to_string(),
        }),
    }
}

/// Parses a range query's answer (a matrix).
pub fn parse_range_response(status: u16, body: &str) -> Result<Vec<RangeSeries>, PromError> {
    let at = |secs: f64| {
        Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
    };
    match envelope_data(status, body)? {
        Some(Data::Matrix(items)) => Ok(items
            .into_iter()
            .map(|i| RangeSeries {
                labels: i.metric,
                points: i
                    .values
                    .into_iter()
                    .filter_map(|(t, v)| Some((at(t)?, parse_value(&v))))
                    .collect(),
            })
            .collect()),
        _ => Err(PromError::Query {
            error_type: "bad_data".to_string(),
            message: "a range query answered without a matrix".to_string(),
        }),
    }
}

/// Prometheus sample values are strings; NaN and ±Inf are "no data" for a health judgement.
pub fn parse_value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_values_parse_and_nan_is_no_data() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"track":"canary"},"value":[1700000000.1,"0.25"]},
            {"metric":{"track":"stable"},"value":[1700000000.1,"NaN"]}]}}"#;
        let s = parse_response(200, body).expect("parses");
        assert_eq!(s[0].value, Some(0.25));
        assert_eq!(s[0].labels.get("track").map(String::as_str), Some("canary"));
        assert_eq!(s[1].value, None);
    }

    #[test]
    fn infinities_are_no_data() {
        assert_eq!(parse_value("+Inf"), None);
        assert_eq!(parse_value("-Inf"), None);
        assert_eq!(parse_value("1e-3"), Some(0.001));
    }

    #[test]
    fn errors_keep_their_type_and_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_response(400, body),
            Err(PromError::Query {
                error_type: "bad_data".into(),
                message: "parse error at char 5".into()
            })
        );
    }

    #[test]
    fn range_answers_keep_every_point_and_nan_is_no_data() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"track":"canary"},"values":[[1700000000,"0.5"],[1700000005.5,"NaN"]]}]}}"#;
        let series = parse_range_response(200, body).expect("parses");
        assert_eq!(series.len(), 1);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            series[0].points,
            vec![(t0, Some(0.5)), (t0 + Duration::from_millis(5_500), None)]
        );
        let instant = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(
            parse_range_response(200, instant),
            Err(PromError::Query { .. })
        ));
    }

    fn environment(yaml: &str) -> Environment {
        serde_saphyr::from_str(yaml).expect("environment")
    }

    #[test]
    fn environment_files_are_read_and_bad_ones_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let token = file("token", "s3cret\n");
        let basic = file("basic", "alice:pa:ss\n");
        let no_colon = file("bad", "alice\n");
        let base = "https://prom:9090";
        let t = Duration::from_secs(1);

        let env = environment(&format!(
            "namespace: shop\nbearer_token_file: {token}\nheaders: {{X-Scope-OrgID: shop}}\n"
        ));
        let c = PromConfig::for_environment(base, &env, t).expect("config");
        assert_eq!(c.auth, PromAuth::Bearer("s3cret".into()));
        assert_eq!(c.headers, vec![("X-Scope-OrgID".into(), "shop".into())]);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );

        let env = environment(&format!("namespace: shop\nbasic_auth_file: {basic}\n"));
        let c = PromConfig::for_environment(base, &env, t).expect("config");
        assert_eq!(
            c.auth,
            PromAuth::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            }
        );

        let env = environment(&format!("namespace: shop\nbasic_auth_file: {no_colon}\n"));
        let err = PromConfig::for_environment(base, &env, t).expect_err("no colon");
        assert!(err.to_string().contains("user:password"), "{err}");

        let env = environment("namespace: shop\nca_file: /nonexistent/ca.pem\n");
        let err = PromConfig::for_environment(base, &env, t).expect_err("missing CA");
        assert!(
            err.to_string().contains("ca_file /nonexistent/ca.pem"),
            "{err}"
        );

        let not_pem = file("ca.pem", "hello\n");
        let env = environment(&format!("namespace: shop\nca_file: {not_pem}\n"));
        let config = PromConfig::for_environment(base, &env, t).expect("file read");
        let err = PromClient::new(config).expect_err("no certificate in it");
        assert!(err.to_string().contains("ca_file"), "{err}");

        let mut config = PromConfig::new(base, t);
        config.headers = vec![("bad header".into(), "x".into())];
        assert!(PromClient::new(config).is_err());
    }

    #[test]
    fn html_from_a_proxy_is_a_protocol_error() {
        // A proxy's login page answered with 200: what `send` passes on to be parsed.
        let err = parse_response(200, "<html>Sign in</html>").expect_err("not the API");
        assert!(matches!(err, PromError::Protocol { status: 200, .. }));
    }
}
