//! PromQL result values and the query error type, plus Prometheus's number formatting.
//! Pure data: no evaluation, no storage access, no HTTP.

use crate::sim::tsdb::{Labels, METRIC_NAME};

/// One element of an instant vector. Its timestamp is the evaluation time, so it is not stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range vector (matrix): points are `(timestamp_ms, value)` in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// The value of a PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Element>),
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The type name Prometheus uses in `resultType` and in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Why a query failed. The HTTP layer maps each kind to Prometheus's `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse; Prometheus answers 400 `bad_data`. The text is Prometheus's:
    /// `1:16: parse error: unclosed left parenthesis` (the position when it is known).
    #[error("{0}")]
    Parse(String),
    /// Parameters are invalid (range too fine, end before start); 400 `bad_data`.
    #[error("{0}")]
    BadData(String),
    /// The query parsed but failed while evaluating; 422 `execution`.
    #[error("{0}")]
    Execution(String),
    /// Valid PromQL the simulator does not implement. Refusing beats answering a wrong number.
    #[error("not supported by the warroom simulator: {0}")]
    Unsupported(String),
}

/// Formats a sample value the way Prometheus's JSON API does (Go `FormatFloat(v, 'f', -1, 64)`):
/// shortest round-tripping digits, never an exponent, and `NaN`/`+Inf`/`-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's Display for f64 prints the shortest round-trip digits without an exponent,
        // which is exactly Go's 'f' format with precision -1.
        format!("{v}")
    }
}

/// Formats a millisecond timestamp as Prometheus's JSON does: seconds, up to three decimals,
/// no trailing zeros (`1700000000`, `1700000000.5`). Done on integers so no float noise appears.
pub fn format_timestamp(ts_ms: i64) -> String {
    let sign = if ts_ms < 0 { "-" } else { "" };
    let abs = ts_ms.unsigned_abs();
    let secs = abs / 1000;
    let millis = abs % 1000;
    if millis == 0 {
        format!("{sign}{secs}")
    } else {
        let frac = format!("{millis:03}");
        format!("{sign}{secs}.{}", frac.trim_end_matches('0'))
    }
}

/// Removes the metric name, as Prometheus does for most derived values.
pub fn drop_name(mut labels: Labels) -> Labels {
    labels.remove(METRIC_NAME);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_go_strconv() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(-2.5), "-2.5");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1.0 / 3.0), "0.3333333333333333");
    }

    #[test]
    fn timestamps_format_as_seconds_without_trailing_zeros() {
        assert_eq!(format_timestamp(1_700_000_000_000), "1700000000");
        assert_eq!(format_timestamp(1_700_000_000_500), "1700000000.5");
        assert_eq!(format_timestamp(1_700_000_000_123), "1700000000.123");
        assert_eq!(format_timestamp(1_700_000_000_020), "1700000000.02");
        assert_eq!(format_timestamp(-1_500), "-1.5");
    }
}
