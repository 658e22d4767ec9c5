//! Prometheus HTTP API client (reqwest): instant queries, auth headers, error wording.
//! Returns numbers or "no data"; what they mean is decided elsewhere.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// Why a query gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    #[error("prometheus {url} unreachable: {why}")]
    Unreachable { url: String, why: String },
    /// A 502/503/504: Prometheus (or the proxy in front of it) is up but not answering queries.
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

/// A Prometheus-compatible endpoint (Prometheus, Thanos, Mimir with a path prefix).
#[derive(Debug, Clone)]
pub struct PromClient {
    http: reqwest::Client,
    base: String,
    headers: Vec<(String, String)>,
    bearer: Option<String>,
}

impl PromClient {
    /// `base` is everything before `/api/v1/…`. `headers` are sent with every request.
    pub fn new(
        base: &str,
        headers: Vec<(String, String)>,
        bearer: Option<String>,
        timeout: Duration,
    ) -> Result<PromClient, PromError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| PromError::Unreachable {
                url: base.to_string(),
                why: e.to_string(),
            })?;
        Ok(PromClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            headers,
            bearer,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Evaluates `promql` at `at` (now when `None`).
    pub async fn query(
        &self,
        promql: &str,
        at: Option<SystemTime>,
    ) -> Result<Vec<InstantSample>, PromError> {
        let url = format!("{}/api/v1/query", self.base);
        let mut form = vec![("query".to_string(), promql.to_string())];
        if let Some(t) = at {
            let secs = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            form.push(("time".to_string(), format!("{secs:.3}")));
        }
        let mut request = self.http.post(&url).form(&form);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| PromError::Unreachable {
            url: self.base.clone(),
            why: root_cause(&e),
        })?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(PromError::Forbidden { status });
        }
        let body = response.text().await.map_err(|e| PromError::Unreachable {
            url: self.base.clone(),
            why: root_cause(&e),
        })?;
        if matches!(status, 502..=504) {
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
        parse_response(status, &body)
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

fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() {
        "timed out".to_string()
    } else {
        source.to_string()
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
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Parses a Prometheus API answer. Scalars become one unlabelled sample.
pub fn parse_response(status: u16, body: &str) -> Result<Vec<InstantSample>, PromError> {
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
    match envelope.data {
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
    fn html_from_a_proxy_is_a_protocol_error() {
        let err = parse_response(502, "<html>Bad Gateway</html>").expect_err("not the API");
        assert!(matches!(err, PromError::Protocol { status: 502, .. }));
    }
}
