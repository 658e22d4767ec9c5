//! PromQL aggregation operators (`sum`, `avg`, `min`, `max`, `count`, … with `by`/`without`).
//! Reads evaluated vectors only; selection and functions belong to `eval` and `functions`.

use std::cmp::Ordering;
use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::eval::Evaluator;
use super::functions::{kahan_sum, prom_mean};
use super::value::{Element, QueryError, Value};
use crate::sim::tsdb::{Labels, METRIC_NAME};

pub fn eval(ev: &Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Value, QueryError> {
    let op = a.op.id();
    if op == T_COUNT_VALUES {
        return count_values(ev, a, t);
    }
    let param = match &a.param {
        Some(p) if matches!(op, T_TOPK | T_BOTTOMK | T_QUANTILE) => Some(ev.eval_scalar(p, t)?),
        Some(_) => {
            return Err(QueryError::Unsupported(format!("aggregation {}", a.op)));
        }
        None => None,
    };
    if let (Some(k), T_TOPK | T_BOTTOMK) = (param, op) {
        // Checked before looking at the input: Prometheus rejects the parameter even when the
        // vector is empty.
        check_k(k)?;
    }
    let input = ev.eval_vector(&a.expr, t)?;
    let grouped = group(input, a.modifier.as_ref());
    let mut out = Vec::new();
    for (key, members) in grouped {
        match op {
            T_TOPK | T_BOTTOMK => {
                out.extend(top_k(param.unwrap_or(f64::NAN), members, op == T_TOPK)?);
            }
            _ => {
                let values: Vec<f64> = members.iter().map(|e| e.value).collect();
                let value = match op {
                    T_SUM => kahan_sum(values.iter().copied()),
                    T_AVG => prom_mean(&values),
                    T_COUNT => values.len() as f64,
                    T_GROUP => 1.0,
                    T_MIN => extreme(&values, |acc, v| v < acc),
                    T_MAX => extreme(&values, |acc, v| v > acc),
                    T_STDVAR => variance(&values),
                    T_STDDEV => variance(&values).sqrt(),
                    T_QUANTILE => quantile(param.unwrap_or(f64::NAN), values),
                    _ => return Err(QueryError::Unsupported(format!("aggregation {}", a.op))),
                };
                out.push(Element { labels: key, value });
            }
        }
    }
    Ok(Value::Vector(out))
}

/// `count_values("label", v)`: how many elements share each value, the value becoming a label.
fn count_values(ev: &Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Value, QueryError> {
    let label = match a.param.as_deref().map(|p| ev.eval(p, t)).transpose()? {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(s)) => {
            return Err(QueryError::Execution(format!("invalid label name {s:?}")));
        }
        _ => {
            return Err(QueryError::Execution(
                "count_values needs a string parameter".into(),
            ));
        }
    };
    // The new label joins the grouping: added to `by`, and never dropped by `without`.
    let modifier = match &a.modifier {
        None => LabelModifier::Include(promql_parser::label::Labels::new(vec![label.as_str()])),
        Some(LabelModifier::Include(by)) => {
            LabelModifier::Include(by.clone().append(label.clone()))
        }
        Some(LabelModifier::Exclude(without)) => {
            LabelModifier::Exclude(promql_parser::label::Labels {
                labels: without
                    .labels
                    .iter()
                    .filter(|l| **l != label)
                    .cloned()
                    .collect(),
            })
        }
    };
    let input: Vec<Element> = ev
        .eval_vector(&a.expr, t)?
        .into_iter()
        .map(|mut e| {
            e.labels
                .insert(label.clone(), super::value::format_value(e.value));
            e
        })
        .collect();
    let out = group(input, Some(&modifier))
        .into_iter()
        .map(|(labels, members)| Element {
            labels,
            value: members.len() as f64,
        })
        .collect();
    Ok(Value::Vector(out))
}

/// Groups elements by their output label set, keeping first-seen order of groups.
fn group(input: Vec<Element>, modifier: Option<&LabelModifier>) -> Vec<(Labels, Vec<Element>)> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<Element>)> = Vec::new();
    for e in input {
        let key = output_labels(&e.labels, modifier);
        match index.get(&key) {
            Some(&i) => groups[i].1.push(e),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![e]));
            }
        }
    }
    groups
}

fn output_labels(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::new(),
        Some(LabelModifier::Include(by)) => labels
            .iter()
            .filter(|(k, _)| by.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(without)) => labels
            .iter()
            .filter(|(k, _)| k.as_str() != METRIC_NAME && !without.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// min/max where NaN loses to any number, so NaN only results if every input is NaN.
fn extreme(values: &[f64], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut acc = f64::NAN;
    for &v in values {
        if acc.is_nan() || better(acc, v) {
            acc = v;
        }
    }
    acc
}

/// Population variance via Welford's running update, as Prometheus computes it. Starting from
/// zero makes a non-finite first value yield NaN, which is what Prometheus 3 returns.
pub fn variance(values: &[f64]) -> f64 {
    let mut mean = 0.0;
    let mut m2 = 0.0;
    for (i, &v) in values.iter().enumerate() {
        let n = (i + 1) as f64;
        let delta = v - mean;
        mean += delta / n;
        m2 += delta * (v - mean);
    }
    m2 / values.len() as f64
}

/// The φ-quantile of plain values, interpolating between the two nearest ranks.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// topk/bottomk keep whole elements (labels untouched), largest (smallest) first; NaN ranks last.
/// k must convert to an int64 exactly as Go would, else Prometheus refuses it.
fn check_k(k: f64) -> Result<i64, QueryError> {
    // The largest f64 below 2^63 and -2^63 itself: the bounds Prometheus uses.
    const MAX: f64 = 9_223_372_036_854_774_784.0;
    const MIN: f64 = -9_223_372_036_854_775_808.0;
    if k.is_nan() || !(MIN..=MAX).contains(&k) {
        return Err(QueryError::Execution(format!(
            "Scalar value {} overflows int64",
            super::value::format_value(k)
        )));
    }
    Ok(k as i64)
}

fn top_k(k: f64, mut members: Vec<Element>, largest: bool) -> Result<Vec<Element>, QueryError> {
    let k = check_k(k)?;
    if k < 1 {
        return Ok(Vec::new());
    }
    members.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if largest => b.value.partial_cmp(&a.value).unwrap_or(Ordering::Equal),
        _ => a.value.partial_cmp(&b.value).unwrap_or(Ordering::Equal),
    });
    members.truncate(usize::try_from(k).unwrap_or(usize::MAX));
    Ok(members)
}
