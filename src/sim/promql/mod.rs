//! PromQL evaluation over the simulator's [`Tsdb`](crate::sim::tsdb::Tsdb), with Prometheus's semantics.
//! Parsing is promql-parser's job; this module never talks HTTP and never writes samples.

mod aggregate;
mod eval;
mod functions;
mod value;

#[cfg(test)]
mod tests;

use promql_parser::parser::{Expr, value::ValueType};

pub use eval::LOOKBACK_MS;
pub use functions::bucket_quantile;
pub use value::{Element, QueryError, RangeSeries, Value, format_timestamp, format_value};

use crate::sim::tsdb::{Labels, Tsdb};
use eval::Evaluator;

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Deepest expression nesting accepted; guards the recursive evaluator against stack overflow.
const MAX_DEPTH: usize = 200;

/// Parses a query with promql-parser, turning its errors (and, defensively, any panic inside it)
/// into [`QueryError::Parse`].
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    // Deeply nested input could exhaust the stack inside the parser itself; refuse it up front.
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    for c in query.chars() {
        match c {
            '(' | '{' | '[' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max_depth > MAX_DEPTH {
        return Err(QueryError::Parse(format!(
            "expression nests deeper than {MAX_DEPTH} levels"
        )));
    }
    match std::panic::catch_unwind(|| promql_parser::parser::parse(query)) {
        Ok(Ok(expr)) => Ok(expr),
        Ok(Err(msg)) => Err(QueryError::Parse(msg)),
        Err(_) => Err(QueryError::Parse("the parser failed on this input".into())),
    }
}

/// Evaluates `query` at one instant (`t_ms`). The result may be any value type.
pub fn instant_query(tsdb: &Tsdb, query: &str, t_ms: i64) -> Result<Value, QueryError> {
    let expr = parse(query)?;
    let ev = Evaluator {
        tsdb,
        start_ms: t_ms,
        end_ms: t_ms,
        lookback_ms: LOOKBACK_MS,
    };
    ev.eval(&expr, t_ms)
}

/// Evaluates `query` at `start_ms, start_ms + step_ms, …, ≤ end_ms` and returns one series per
/// label set. Only scalar and instant-vector expressions are allowed, as in Prometheus.
pub fn range_query(
    tsdb: &Tsdb,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Vec<RangeSeries>, QueryError> {
    if end_ms < start_ms {
        return Err(QueryError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    if step_ms <= 0 {
        return Err(QueryError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if (end_ms - start_ms) / step_ms > MAX_POINTS_PER_SERIES {
        return Err(QueryError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let expr = parse(query)?;
    match expr.value_type() {
        ValueType::Scalar | ValueType::Vector => {}
        ValueType::Matrix => {
            return Err(QueryError::BadData(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
            ));
        }
        ValueType::String => {
            return Err(QueryError::BadData(
                "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
            ));
        }
    }
    let ev = Evaluator {
        tsdb,
        start_ms,
        end_ms,
        lookback_ms: LOOKBACK_MS,
    };
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut series: Vec<RangeSeries> = Vec::new();
    let mut push = |labels: Labels, t: i64, v: f64| match index.get(&labels) {
        Some(&i) => series[i].points.push((t, v)),
        None => {
            index.insert(labels.clone(), series.len());
            series.push(RangeSeries {
                labels,
                points: vec![(t, v)],
            });
        }
    };
    let mut t = start_ms;
    while t <= end_ms {
        match ev.eval(&expr, t)? {
            Value::Scalar(v) => push(Labels::new(), t, v),
            Value::Vector(v) => {
                for e in v {
                    push(e.labels, t, e.value);
                }
            }
            other => {
                return Err(QueryError::Execution(format!(
                    "range query step produced a {}",
                    other.type_name()
                )));
            }
        }
        t = match t.checked_add(step_ms) {
            Some(next) => next,
            None => break,
        };
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series)
}
