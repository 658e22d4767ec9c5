//! PromQL evaluation over the simulator's `Tsdb`, with Prometheus 3 semantics.
//! Parsing is promql-parser's job; this module never talks HTTP and never writes samples.

mod aggregate;
mod eval;
mod functions;
mod position;
mod value;

#[cfg(test)]
mod tests;

use promql_parser::parser::{Expr, value::ValueType};

pub use eval::LOOKBACK_MS;
pub use functions::bucket_quantile;
pub use value::{Element, QueryError, RangeSeries, Value, format_timestamp, format_value};

use crate::sim::tsdb::{Labels, Tsdb};
use eval::Evaluator;
use position::parse_error;

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Deepest expression tree accepted. The evaluator recurses once per level, so this bounds its
/// stack use well inside a 2 MiB thread stack (tokio's default) even in debug builds.
pub const MAX_DEPTH: usize = 128;

/// Longest query accepted. promql-parser builds and drops its tree recursively; beyond roughly
/// 20 000 nested terms it overflows the stack, so input is capped well below that.
pub const MAX_QUERY_BYTES: usize = 8192;

/// Parses a query with promql-parser, turning its errors (and, defensively, any panic inside it)
/// into [`QueryError::Parse`]. Queries too long or too deeply nested for the evaluator are refused.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError::Parse(format!(
            "parse error: query is longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    let expr = match crate::panics::caught(|| promql_parser::parser::parse(query)) {
        Ok(Ok(expr)) => expr,
        Ok(Err(msg)) => return Err(parse_error(query, &msg)),
        Err(_) => {
            return Err(QueryError::Parse(
                "parse error: the parser failed on this input".into(),
            ));
        }
    };
    if depth(&expr) > MAX_DEPTH {
        return Err(QueryError::Parse(format!(
            "parse error: expression nests deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(expr)
}

/// Depth of the expression tree, measured without recursion so it cannot itself overflow.
fn depth(root: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d + 1));
                if let Some(p) = &a.param {
                    stack.push((p, d + 1));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d + 1)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d + 1));
                stack.push((&b.rhs, d + 1));
            }
            Expr::Paren(p) => stack.push((&p.expr, d + 1)),
            Expr::Subquery(s) => stack.push((&s.expr, d + 1)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1))),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
    max
}

/// Parses a series selector such as `up{job="x"}` (the `match[]` parameter of the metadata
/// endpoints) into alternative conjunctions of matchers.
pub fn parse_selector(
    selector: &str,
) -> Result<Vec<Vec<crate::sim::tsdb::LabelMatcher>>, QueryError> {
    match parse(selector)? {
        Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => {
            eval::matcher_groups(&vs)
        }
        _ => Err(QueryError::BadData(format!(
            "invalid series selector {selector:?}: expected a plain vector selector"
        ))),
    }
}

/// Evaluates `query` at one instant (`t_ms`). The result may be any value type.
///
/// Valid PromQL the simulator does not implement (native-histogram functions, experimental
/// functions such as `limitk` or `mad_over_time`) fails with [`QueryError::Unsupported`]
/// rather than producing a number Prometheus would not.
pub fn instant_query(tsdb: &Tsdb, query: &str, t_ms: i64) -> Result<Value, QueryError> {
    let expr = parse(query)?;
    let ev = Evaluator {
        tsdb,
        start_ms: t_ms,
        end_ms: t_ms,
        lookback_ms: LOOKBACK_MS,
        subquery_steps: std::cell::Cell::new(0),
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
        subquery_steps: std::cell::Cell::new(0),
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
