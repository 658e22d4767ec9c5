//! PromQL function calls: rate-like extrapolation, `*_over_time`, `histogram_quantile` and the
//! simple instant-vector math. Unknown functions are refused by name, never approximated.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};

use super::aggregate::{quantile, variance};
use super::eval::{Evaluator, ensure_unique};
use super::value::{Element, QueryError, RangeSeries, Value, drop_name};
use crate::sim::tsdb::Labels;

pub fn call(ev: &Evaluator<'_>, c: &Call, t: i64) -> Result<Value, QueryError> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
    match name {
        "rate" => range_fn(ev, &args, t, true, |s, w| {
            extrapolated_rate(s, w, true, true)
        }),
        "increase" => range_fn(ev, &args, t, true, |s, w| {
            extrapolated_rate(s, w, true, false)
        }),
        "delta" => range_fn(ev, &args, t, true, |s, w| {
            extrapolated_rate(s, w, false, false)
        }),
        "irate" => range_fn(ev, &args, t, true, |s, _| instant_rate(s, true)),
        "idelta" => range_fn(ev, &args, t, true, |s, _| instant_rate(s, false)),
        "avg_over_time" => range_fn(ev, &args, t, true, |s, _| Some(mean(s))),
        "sum_over_time" => range_fn(ev, &args, t, true, |s, _| {
            Some(kahan_sum(s.iter().map(|p| p.1)))
        }),
        "count_over_time" => range_fn(ev, &args, t, true, |s, _| Some(s.len() as f64)),
        "max_over_time" => range_fn(ev, &args, t, true, |s, _| {
            Some(fold_nan_aware(s, |acc, v| v > acc))
        }),
        "min_over_time" => range_fn(ev, &args, t, true, |s, _| {
            Some(fold_nan_aware(s, |acc, v| v < acc))
        }),
        // last_over_time acts like an offset, so Prometheus keeps the metric name.
        "last_over_time" => range_fn(ev, &args, t, false, |s, _| s.last().map(|p| p.1)),
        "changes" => range_fn(ev, &args, t, true, |s, _| {
            Some(
                s.windows(2)
                    .filter(|w| w[0].1 != w[1].1 && !(w[0].1.is_nan() && w[1].1.is_nan()))
                    .count() as f64,
            )
        }),
        "resets" => range_fn(ev, &args, t, true, |s, _| {
            Some(s.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64)
        }),
        "histogram_quantile" => {
            let q = ev.eval_scalar(arg(&args, 0, name)?, t)?;
            let v = ev.eval_vector(arg(&args, 1, name)?, t)?;
            Ok(Value::Vector(histogram_quantile(q, v)?))
        }
        "vector" => {
            let v = ev.eval_scalar(arg(&args, 0, name)?, t)?;
            Ok(Value::Vector(vec![Element {
                labels: Labels::new(),
                value: v,
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            Ok(Value::Scalar(match v.as_slice() {
                [only] => only.value,
                _ => f64::NAN,
            }))
        }
        "time" => Ok(Value::Scalar(t as f64 / 1000.0)),
        "clamp_min" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let lo = ev.eval_scalar(arg(&args, 1, name)?, t)?;
            map_values(v, |x| go_max(lo, x))
        }
        "clamp_max" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let hi = ev.eval_scalar(arg(&args, 1, name)?, t)?;
            map_values(v, |x| go_min(hi, x))
        }
        "clamp" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let lo = ev.eval_scalar(arg(&args, 1, name)?, t)?;
            let hi = ev.eval_scalar(arg(&args, 2, name)?, t)?;
            if hi < lo {
                // Prometheus returns an empty vector when the bounds are inverted.
                return Ok(Value::Vector(Vec::new()));
            }
            map_values(v, |x| go_max(lo, go_min(hi, x)))
        }
        "abs" => simple(ev, &args, t, name, f64::abs),
        "ceil" => simple(ev, &args, t, name, f64::ceil),
        "floor" => simple(ev, &args, t, name, f64::floor),
        "exp" => simple(ev, &args, t, name, f64::exp),
        "sqrt" => simple(ev, &args, t, name, f64::sqrt),
        "ln" => simple(ev, &args, t, name, f64::ln),
        "log2" => simple(ev, &args, t, name, f64::log2),
        "log10" => simple(ev, &args, t, name, f64::log10),
        "sgn" => simple(ev, &args, t, name, |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }),
        "round" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let to_nearest = match args.get(1) {
                Some(e) => ev.eval_scalar(e, t)?,
                None => 1.0,
            };
            // Prometheus rounds half up via floor(x*inv + 0.5)/inv, not half away from zero.
            let inv = 1.0 / to_nearest;
            map_values(v, |x| (x * inv + 0.5).floor() / inv)
        }
        "quantile_over_time" => {
            let q = ev.eval_scalar(arg(&args, 0, name)?, t)?;
            range_fn_at(ev, &args, 1, t, true, |s, _| {
                Some(quantile(q, s.iter().map(|p| p.1).collect()))
            })
        }
        "stddev_over_time" => range_fn(ev, &args, t, true, |s, _| {
            Some(variance(&s.iter().map(|p| p.1).collect::<Vec<_>>()).sqrt())
        }),
        "stdvar_over_time" => range_fn(ev, &args, t, true, |s, _| {
            Some(variance(&s.iter().map(|p| p.1).collect::<Vec<_>>()))
        }),
        "present_over_time" => range_fn(ev, &args, t, true, |_, _| Some(1.0)),
        "deriv" => range_fn(ev, &args, t, true, |s, _| {
            if s.len() < 2 {
                return None;
            }
            Some(linear_regression(s, s.first().map_or(0, |p| p.0)).0)
        }),
        "predict_linear" => {
            let horizon = ev.eval_scalar(arg(&args, 1, name)?, t)?;
            range_fn(ev, &args, t, true, |s, _| {
                if s.len() < 2 {
                    return None;
                }
                // Prometheus anchors the regression at the evaluation time, not the window end.
                let (slope, intercept) = linear_regression(s, t);
                Some(slope * horizon + intercept)
            })
        }
        "absent" => {
            let e = arg(&args, 0, name)?;
            let v = ev.eval_vector(e, t)?;
            Ok(Value::Vector(absent(v.is_empty(), e)))
        }
        "absent_over_time" => {
            let e = arg(&args, 0, name)?;
            let m = ev.matrix_arg(e, t)?;
            let empty = m.series.iter().all(|s| s.points.is_empty());
            Ok(Value::Vector(absent(empty, e)))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let desc = name == "sort_desc";
            // NaN sorts last either way, as in Prometheus.
            v.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.value.total_cmp(&a.value),
                _ => a.value.total_cmp(&b.value),
            });
            Ok(Value::Vector(v))
        }
        "label_replace" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let dst = string_arg(ev, &args, 1, name, t)?;
            let replacement = string_arg(ev, &args, 2, name, t)?;
            let src = string_arg(ev, &args, 3, name, t)?;
            let pattern = string_arg(ev, &args, 4, name, t)?;
            label_replace(v, &dst, &replacement, &src, &pattern).map(Value::Vector)
        }
        "label_join" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, t)?;
            let dst = string_arg(ev, &args, 1, name, t)?;
            let sep = string_arg(ev, &args, 2, name, t)?;
            let mut srcs = Vec::new();
            for i in 3..args.len() {
                srcs.push(string_arg(ev, &args, i, name, t)?);
            }
            label_join(v, &dst, &sep, &srcs).map(Value::Vector)
        }
        "sin" => simple(ev, &args, t, name, f64::sin),
        "cos" => simple(ev, &args, t, name, f64::cos),
        "tan" => simple(ev, &args, t, name, f64::tan),
        "asin" => simple(ev, &args, t, name, f64::asin),
        "acos" => simple(ev, &args, t, name, f64::acos),
        "atan" => simple(ev, &args, t, name, f64::atan),
        "sinh" => simple(ev, &args, t, name, f64::sinh),
        "cosh" => simple(ev, &args, t, name, f64::cosh),
        "tanh" => simple(ev, &args, t, name, f64::tanh),
        "asinh" => simple(ev, &args, t, name, f64::asinh),
        "acosh" => simple(ev, &args, t, name, f64::acosh),
        "atanh" => simple(ev, &args, t, name, f64::atanh),
        "deg" => simple(ev, &args, t, name, f64::to_degrees),
        "rad" => simple(ev, &args, t, name, f64::to_radians),
        "pi" => Ok(Value::Scalar(std::f64::consts::PI)),
        "timestamp" => {
            let e = arg(&args, 0, name)?;
            let out: Vec<Element> = match unparen(e) {
                // A plain selector reports when its samples were taken; anything computed is
                // stamped with the evaluation time.
                Expr::VectorSelector(vs) => ev
                    .instant_selector_with_times(vs, t)?
                    .into_iter()
                    .map(|(el, ts)| Element {
                        labels: drop_name(el.labels),
                        value: ts as f64 / 1000.0,
                    })
                    .collect(),
                _ => ev
                    .eval_vector(e, t)?
                    .into_iter()
                    .map(|el| Element {
                        labels: drop_name(el.labels),
                        value: t as f64 / 1000.0,
                    })
                    .collect(),
            };
            ensure_unique(&out)?;
            Ok(Value::Vector(out))
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let v = match args.first() {
                Some(e) => ev.eval_vector(e, t)?,
                // Without an argument these read the evaluation time, like vector(time()).
                None => vec![Element {
                    labels: Labels::new(),
                    value: t as f64 / 1000.0,
                }],
            };
            map_values(v, |secs| date_part(name, secs))
        }
        other => Err(QueryError::Unsupported(format!("function {other}()"))),
    }
}

fn arg<'e>(args: &[&'e Expr], i: usize, name: &str) -> Result<&'e Expr, QueryError> {
    args.get(i).copied().ok_or_else(|| {
        QueryError::BadData(format!("missing argument {} of function {name}()", i + 1))
    })
}

fn simple(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    t: i64,
    name: &str,
    f: impl Fn(f64) -> f64,
) -> Result<Value, QueryError> {
    let v = ev.eval_vector(arg(args, 0, name)?, t)?;
    map_values(v, f)
}

fn map_values(v: Vec<Element>, f: impl Fn(f64) -> f64) -> Result<Value, QueryError> {
    let out: Vec<Element> = v
        .into_iter()
        .map(|e| Element {
            labels: drop_name(e.labels),
            value: f(e.value),
        })
        .collect();
    ensure_unique(&out)?;
    Ok(Value::Vector(out))
}

// Go's math.Max/Min propagate NaN; Rust's f64::max/min ignore it. Prometheus uses Go's.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// The window a range function sees: its boundaries in ms and its length in seconds.
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
    pub range_secs: f64,
}

/// Applies `f` to every series of the range-vector argument at `args[idx]`; `None` drops it.
fn range_fn_at(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    idx: usize,
    t: i64,
    drop_metric_name: bool,
    f: impl Fn(&[(i64, f64)], &Window) -> Option<f64>,
) -> Result<Value, QueryError> {
    let m = ev.matrix_arg(arg(args, idx, "range function")?, t)?;
    let window = Window {
        start_ms: m.start_ms,
        end_ms: m.end_ms,
        range_secs: m.range_ms as f64 / 1000.0,
    };
    let mut out = Vec::with_capacity(m.series.len());
    for RangeSeries { labels, points } in m.series {
        if points.is_empty() {
            continue;
        }
        if let Some(value) = f(&points, &window) {
            let labels = if drop_metric_name {
                drop_name(labels)
            } else {
                labels
            };
            out.push(Element { labels, value });
        }
    }
    ensure_unique(&out)?;
    Ok(Value::Vector(out))
}

fn range_fn(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    t: i64,
    drop_metric_name: bool,
    f: impl Fn(&[(i64, f64)], &Window) -> Option<f64>,
) -> Result<Value, QueryError> {
    range_fn_at(ev, args, 0, t, drop_metric_name, f)
}

/// Prometheus's `extrapolatedRate`, behind rate, increase and delta.
///
/// The raw increase between the first and last sample is extrapolated towards the window's
/// edges, but only as far as the samples suggest the series really extends: an edge further
/// than 1.1 average intervals away gets only half an interval. Counters also never extrapolate
/// below zero.
pub fn extrapolated_rate(
    s: &[(i64, f64)],
    w: &Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = match s {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let mut result = last.1 - first.1;
    if is_counter {
        // A drop means the counter restarted from zero; add back what it had reached.
        for pair in s.windows(2) {
            if pair[1].1 < pair[0].1 {
                result += pair[0].1;
            }
        }
    }
    // Float arithmetic: window edges may be saturated to i64::MIN by absurd ranges.
    let mut to_start = (first.0 as f64 - w.start_ms as f64) / 1000.0;
    let mut to_end = (w.end_ms as f64 - last.0 as f64) / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_interval = sampled / (s.len() - 1) as f64;
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_interval / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range_secs;
    }
    Some(result * factor)
}

/// irate/idelta: the last two samples only.
fn instant_rate(s: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let (prev, last) = match s {
        [.., prev, last] => (*prev, *last),
        _ => return None,
    };
    let mut result = if is_rate && last.1 < prev.1 {
        // Counter reset: the counter counted up from zero to its last value.
        last.1
    } else {
        last.1 - prev.1
    };
    let interval_ms = last.0 - prev.0;
    if interval_ms == 0 {
        return None;
    }
    if is_rate {
        result /= interval_ms as f64 / 1000.0;
    }
    Some(result)
}

/// Neumaier-compensated sum, the same idea Prometheus uses so long sums do not drift.
pub fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        (sum, c) = kahan_inc(v, sum, c);
    }
    sum + c
}

fn kahan_inc(v: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + v;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= v.abs() {
        c + ((sum - t) + v)
    } else {
        c + ((v - t) + sum)
    };
    (t, c)
}

/// Mean as Prometheus computes it for `avg` and `avg_over_time`: a compensated sum divided by the
/// count, switching to an incremental mean only if the sum would overflow, so that averaging
/// values near f64::MAX still gives a finite answer.
pub fn prom_mean(values: &[f64]) -> f64 {
    let Some((&first, rest)) = values.split_first() else {
        return f64::NAN;
    };
    let (mut sum, mut c, mut mean) = (first, 0.0, 0.0);
    let mut incremental = false;
    let mut count = 1.0;
    for &v in rest {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn mean(s: &[(i64, f64)]) -> f64 {
    prom_mean(&s.iter().map(|p| p.1).collect::<Vec<_>>())
}

/// min/max where a NaN accumulator is always replaced, so NaN only survives if all are NaN.
fn fold_nan_aware(s: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut acc = f64::NAN;
    for &(_, v) in s {
        if acc.is_nan() || better(acc, v) {
            acc = v;
        }
    }
    acc
}

/// Classic-bucket `histogram_quantile`: groups by all labels except `le` (and the name), then
/// interpolates linearly inside the bucket holding the requested rank.
pub fn histogram_quantile(q: f64, v: Vec<Element>) -> Result<Vec<Element>, QueryError> {
    let mut groups: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
    let mut order: Vec<Labels> = Vec::new();
    for e in v {
        let Some(le) = e.labels.get("le") else {
            continue;
        };
        // Series whose `le` does not parse are ignored, as in Prometheus.
        let Some(upper) = parse_le(le) else {
            continue;
        };
        let mut key = drop_name(e.labels);
        key.remove("le");
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        entry.push((upper, e.value));
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        if let Some(buckets) = groups.remove(&key) {
            out.push(Element {
                labels: key,
                value: bucket_quantile(q, buckets),
            });
        }
    }
    Ok(out)
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse::<f64>().ok(),
    }
}

/// Quantile of classic buckets `(upper_bound, cumulative_count)`, following Prometheus's
/// `bucketQuantile` rules for NaN, out-of-range q, missing +Inf and non-monotonic counts.
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some(&(ub, _)) if ub == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Buckets with the same bound (e.g. `le="1"` and `le="1.0"`) are one bucket.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (ub, c) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let mut buckets = merged;
    // Rate of cumulative counts can wobble; force counts to be monotonic, and treat tiny
    // differences as equal, like Prometheus does.
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) || curr < prev {
            b.1 = prev;
            continue;
        }
        prev = curr;
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let n = buckets.len();
    let observations = buckets[n - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1]
        .iter()
        .position(|&(_, c)| c >= rank)
        .unwrap_or(n - 1);
    if b == n - 1 {
        return buckets[n - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

fn string_arg(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    name: &str,
    t: i64,
) -> Result<String, QueryError> {
    match ev.eval(arg(args, i, name)?, t)? {
        Value::String(s) => Ok(s),
        other => Err(QueryError::Execution(format!(
            "argument {} of {name}() must be a string, got {}",
            i + 1,
            other.type_name()
        ))),
    }
}

/// Least-squares slope and intercept of `s`, with time measured in seconds from `intercept_ms`.
fn linear_regression(s: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let Some(&(_, first)) = s.first() else {
        return (f64::NAN, f64::NAN);
    };
    if s.iter().all(|p| p.1 == first) {
        // A flat series has slope zero exactly; the general formula would add rounding noise.
        return if first.is_infinite() {
            (f64::NAN, f64::NAN)
        } else {
            (0.0, first)
        };
    }
    let n = s.len() as f64;
    let x = |p: &(i64, f64)| (p.0 - intercept_ms) as f64 / 1000.0;
    let sum_x = kahan_sum(s.iter().map(x));
    let sum_y = kahan_sum(s.iter().map(|p| p.1));
    let sum_xy = kahan_sum(s.iter().map(|p| x(p) * p.1));
    let sum_x2 = kahan_sum(s.iter().map(|p| x(p) * x(p)));
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// The single element `absent()` returns for an empty input: value 1, labelled with the
/// selector's equality matchers (a label matched more than once, or not by `=`, is left out).
fn absent(input_empty: bool, e: &Expr) -> Vec<Element> {
    if !input_empty {
        return Vec::new();
    }
    let matchers = match e {
        Expr::VectorSelector(vs) => Some(&vs.matchers),
        Expr::MatrixSelector(ms) => Some(&ms.vs.matchers),
        _ => None,
    };
    let mut labels = Labels::new();
    if let Some(m) = matchers {
        let mut seen = std::collections::HashSet::new();
        for matcher in &m.matchers {
            if matcher.name == crate::sim::tsdb::METRIC_NAME {
                continue;
            }
            let first = seen.insert(matcher.name.clone());
            if first && matches!(matcher.op, promql_parser::label::MatchOp::Equal) {
                labels.insert(matcher.name.clone(), matcher.value.clone());
            } else {
                labels.remove(&matcher.name);
            }
        }
    }
    vec![Element { labels, value: 1.0 }]
}

/// Prometheus 3 accepts any non-empty UTF-8 label name.
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

fn set_label(labels: &mut Labels, name: &str, value: String) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name.to_string(), value);
    }
}

fn label_replace(
    v: Vec<Element>,
    dst: &str,
    replacement: &str,
    src: &str,
    pattern: &str,
) -> Result<Vec<Element>, QueryError> {
    let re = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
        QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {pattern}: {e}"
        ))
    })?;
    if !valid_label_name(dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let src_value = e.labels.get(src).cloned().unwrap_or_default();
        if let Some(caps) = re.captures(&src_value) {
            let mut value = String::new();
            caps.expand(replacement, &mut value);
            set_label(&mut e.labels, dst, value);
        }
        out.push(e);
    }
    ensure_unique(&out)?;
    Ok(out)
}

fn label_join(
    v: Vec<Element>,
    dst: &str,
    sep: &str,
    srcs: &[String],
) -> Result<Vec<Element>, QueryError> {
    if !valid_label_name(dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    if let Some(bad) = srcs.iter().find(|s| !valid_label_name(s)) {
        return Err(QueryError::Execution(format!(
            "invalid source label name in label_join(): {bad}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let joined: Vec<String> = srcs
            .iter()
            .map(|s| e.labels.get(s).cloned().unwrap_or_default())
            .collect();
        set_label(&mut e.labels, dst, joined.join(sep));
        out.push(e);
    }
    ensure_unique(&out)?;
    Ok(out)
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// One calendar field (UTC) of a Unix time in seconds.
fn date_part(part: &str, secs: f64) -> f64 {
    use chrono::{Datelike, Timelike};
    if !secs.is_finite() {
        return f64::NAN;
    }
    // Whole seconds, as Prometheus truncates the value to an integer Unix time.
    let Some(dt) = chrono::DateTime::from_timestamp(secs.trunc() as i64, 0) else {
        return f64::NAN;
    };
    let v = match part {
        "minute" => dt.minute(),
        "hour" => dt.hour(),
        "day_of_week" => dt.weekday().num_days_from_sunday(),
        "day_of_month" => dt.day(),
        "day_of_year" => dt.ordinal(),
        "month" => dt.month(),
        "year" => return f64::from(dt.year()),
        "days_in_month" => {
            let (y, m) = (dt.year(), dt.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
            let next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1);
            return match (first, next) {
                (Some(a), Some(b)) => (b - a).num_days() as f64,
                _ => f64::NAN,
            };
        }
        _ => return f64::NAN,
    };
    f64::from(v)
}
