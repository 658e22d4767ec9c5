//! Evaluator tests against hand-computed values from Prometheus's documented algorithms.
//! They build a Tsdb with known samples and never depend on wall-clock time.

use super::*;
use crate::sim::tsdb::{Labels, TsdbError, labels};

type R = Result<(), Box<dyn std::error::Error>>;

const S: i64 = 1000;

fn put(db: &Tsdb, l: &[(&str, &str)], points: &[(i64, f64)]) -> Result<(), TsdbError> {
    for &(t, v) in points {
        db.append(labels(l.iter().copied()), t, v)?;
    }
    Ok(())
}

fn vector(db: &Tsdb, q: &str, t: i64) -> Result<Vec<Element>, QueryError> {
    match instant_query(db, q, t)? {
        Value::Vector(mut v) => {
            v.sort_by(|a, b| a.labels.cmp(&b.labels));
            Ok(v)
        }
        other => Err(QueryError::Execution(format!("got {other:?}"))),
    }
}

fn one(db: &Tsdb, q: &str, t: i64) -> Result<f64, QueryError> {
    match instant_query(db, q, t)? {
        Value::Scalar(v) => Ok(v),
        Value::Vector(v) if v.len() == 1 => Ok(v[0].value),
        other => Err(QueryError::Execution(format!(
            "expected one value, got {other:?}"
        ))),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

macro_rules! assert_close {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        assert!(close(a, b), "{a} != {b}");
    }};
}

fn every_10s(values: &[f64]) -> Vec<(i64, f64)> {
    // Samples at 45 s, 55 s, …; queried at 100 s with [60s] the window is (40 s, 100 s].
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| ((45 + 10 * i as i64) * S, v))
        .collect()
}

#[test]
fn rate_extrapolates_to_range_boundaries() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "c")],
        &every_10s(&[10., 20., 30., 40., 50., 60.]),
    )?;
    // Increase 50 over 50 s of samples, extrapolated 5 s at each end: 50 * 60/50 = 60.
    assert_close!(one(&db, "increase(c[60s])", 100 * S)?, 60.0);
    assert_close!(one(&db, "rate(c[60s])", 100 * S)?, 1.0);
    Ok(())
}

#[test]
fn rate_does_not_extrapolate_counters_below_zero() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "c")],
        &every_10s(&[1., 11., 21., 31., 41., 51.]),
    )?;
    // The counter would hit zero 1 s before the first sample, nearer than the 5 s gap.
    assert_close!(one(&db, "increase(c[60s])", 100 * S)?, 50.0 * 56.0 / 50.0);
    Ok(())
}

#[test]
fn rate_extrapolates_only_half_an_interval_when_series_starts_inside_range() -> R {
    let db = Tsdb::default();
    let pts = vec![(75 * S, 10.), (85 * S, 20.), (95 * S, 30.)];
    put(&db, &[("__name__", "c")], &pts)?;
    // 35 s to the start exceeds 1.1 × 10 s, so only 5 s is added there: 20 * 30/20 = 30.
    assert_close!(one(&db, "increase(c[60s])", 100 * S)?, 30.0);
    assert_close!(one(&db, "rate(c[60s])", 100 * S)?, 0.5);
    Ok(())
}

#[test]
fn rate_adds_back_counter_resets() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "c")],
        &every_10s(&[10., 20., 5., 15., 25., 35.]),
    )?;
    // 35 - 10 + 20 (the reset) = 45, extrapolated by 60/50.
    assert_close!(one(&db, "increase(c[60s])", 100 * S)?, 54.0);
    Ok(())
}

#[test]
fn delta_extrapolates_gauges_without_zero_clamp() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "g")],
        &every_10s(&[10., 5., 0., -5., -10., -15.]),
    )?;
    assert_close!(one(&db, "delta(g[60s])", 100 * S)?, -30.0);
    Ok(())
}

#[test]
fn rate_needs_two_samples() -> R {
    let db = Tsdb::default();
    put(&db, &[("__name__", "c")], &[(95 * S, 3.0)])?;
    assert!(vector(&db, "rate(c[60s])", 100 * S)?.is_empty());
    Ok(())
}

#[test]
fn irate_uses_last_two_samples_and_handles_resets() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "a")],
        &every_10s(&[10., 20., 30., 40., 50., 60.]),
    )?;
    put(
        &db,
        &[("__name__", "b")],
        &every_10s(&[10., 20., 30., 40., 50., 3.]),
    )?;
    assert_close!(one(&db, "irate(a[60s])", 100 * S)?, 1.0);
    assert_close!(one(&db, "irate(b[60s])", 100 * S)?, 0.3);
    Ok(())
}

#[test]
fn over_time_functions_use_left_open_window() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "g")],
        &every_10s(&[1., 2., 3., 4., 5., 6.]),
    )?;
    // (45 s, 95 s] with t = 95 s and [50s] excludes the sample at 45 s.
    assert_close!(one(&db, "count_over_time(g[50s])", 95 * S)?, 5.0);
    assert_close!(one(&db, "sum_over_time(g[50s])", 95 * S)?, 20.0);
    assert_close!(one(&db, "avg_over_time(g[50s])", 95 * S)?, 4.0);
    assert_close!(one(&db, "max_over_time(g[50s])", 95 * S)?, 6.0);
    assert_close!(one(&db, "min_over_time(g[50s])", 95 * S)?, 2.0);
    let last = vector(&db, "last_over_time(g[50s])", 95 * S)?;
    assert_eq!(
        last[0].labels.get("__name__").map(String::as_str),
        Some("g")
    );
    let avg = vector(&db, "avg_over_time(g[50s])", 95 * S)?;
    assert!(avg[0].labels.is_empty(), "name must be dropped");
    Ok(())
}

#[test]
fn instant_selector_looks_back_five_minutes_and_honours_offset() -> R {
    let db = Tsdb::default();
    put(&db, &[("__name__", "g")], &[(100 * S, 1.0), (200 * S, 2.0)])?;
    assert_close!(one(&db, "g", 250 * S)?, 2.0);
    assert_close!(one(&db, "g", 500 * S - 1)?, 2.0);
    assert!(
        vector(&db, "g", 500 * S)?.is_empty(),
        "lookback is left-open"
    );
    assert_close!(one(&db, "g offset 100s", 250 * S)?, 1.0);
    assert!(vector(&db, "g", 99 * S)?.is_empty());
    assert_close!(one(&db, "g @ 150", 1000 * S)?, 1.0);
    Ok(())
}

fn bucket_db() -> Result<Tsdb, TsdbError> {
    let db = Tsdb::default();
    // Two pods whose cumulative buckets sum to le=0.1:10, 0.5:60, 1:90, +Inf:100.
    for (pod, counts) in [("a", [4., 30., 45., 50.]), ("b", [6., 30., 45., 50.])] {
        for (le, c) in ["0.1", "0.5", "1", "+Inf"].iter().zip(counts) {
            put(
                &db,
                &[("__name__", "h_bucket"), ("pod", pod), ("le", le)],
                &[(10 * S, c)],
            )?;
        }
    }
    Ok(db)
}

#[test]
fn histogram_quantile_interpolates_within_bucket() -> R {
    let db = bucket_db()?;
    let q = |phi: &str| {
        one(
            &db,
            &format!("histogram_quantile({phi}, sum by (le) (h_bucket))"),
            10 * S,
        )
    };
    // Rank 50 falls in (0.1, 0.5] holding 50 of which 40 are needed: 0.1 + 0.4 * 40/50.
    assert_close!(q("0.5")?, 0.42);
    assert_close!(q("0.05")?, 0.05);
    // Rank 95 lies in the +Inf bucket: the highest finite bound is returned.
    assert_close!(q("0.95")?, 1.0);
    assert_eq!(q("1.5")?, f64::INFINITY);
    assert_eq!(q("-1")?, f64::NEG_INFINITY);
    Ok(())
}

#[test]
fn histogram_quantile_groups_by_labels_other_than_le() -> R {
    let db = bucket_db()?;
    let v = vector(&db, "histogram_quantile(0.5, h_bucket)", 10 * S)?;
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].labels, labels([("pod", "a")]));
    // Pod a: rank 25 in (0.1, 0.5] with 26 observations there, 21 needed.
    assert_close!(v[0].value, 0.1 + 0.4 * 21.0 / 26.0);
    Ok(())
}

#[test]
fn histogram_quantile_is_nan_without_inf_bucket_or_observations() {
    assert!(bucket_quantile(0.5, vec![(0.1, 1.0), (1.0, 2.0)]).is_nan());
    assert!(bucket_quantile(0.5, vec![(0.1, 0.0), (f64::INFINITY, 0.0)]).is_nan());
    assert!(bucket_quantile(f64::NAN, vec![(0.1, 1.0), (f64::INFINITY, 2.0)]).is_nan());
    // Non-monotonic counts are forced monotonic before interpolation.
    let q = bucket_quantile(0.5, vec![(1.0, 10.0), (2.0, 8.0), (f64::INFINITY, 20.0)]);
    assert_close!(q, 1.0);
}

fn http_db() -> Result<Tsdb, TsdbError> {
    let db = Tsdb::default();
    // Counters sampled every second from 1 s to 100 s with constant per-second increments.
    let series: [(&str, &str, &str, f64); 6] = [
        ("canary", "c1", "200", 9.0),
        ("canary", "c1", "500", 1.0),
        ("canary", "c2", "200", 8.0),
        ("canary", "c2", "503", 2.0),
        ("stable", "s1", "200", 50.0),
        ("stable", "s1", "500", 0.0),
    ];
    for (track, pod, code, per_sec) in series {
        let pts: Vec<(i64, f64)> = (1..=100)
            .map(|s| (s * S, 1000.0 + per_sec * s as f64))
            .collect();
        put(
            &db,
            &[
                ("__name__", "http_requests_total"),
                ("namespace", "shop"),
                ("service", "checkout"),
                ("track", track),
                ("pod", pod),
                ("code", code),
            ],
            &pts,
        )?;
    }
    for (track, pod, cpu_per_sec, limit) in
        [("canary", "c1", 0.25, 0.5), ("canary", "c2", 0.5, 0.5)]
    {
        let pts: Vec<(i64, f64)> = (1..=100).map(|s| (s * S, cpu_per_sec * s as f64)).collect();
        let l = [
            ("__name__", "container_cpu_usage_seconds_total"),
            ("namespace", "shop"),
            ("track", track),
            ("pod", pod),
            ("container", "checkout"),
        ];
        put(&db, &l, &pts)?;
        let l = [
            ("__name__", "kube_pod_container_resource_limits"),
            ("namespace", "shop"),
            ("track", track),
            ("pod", pod),
            ("resource", "cpu"),
            ("unit", "core"),
        ];
        put(&db, &l, &[(100 * S, limit)])?;
    }
    Ok(db)
}

#[test]
fn demo_error_ratio_query_divides_summed_rates() -> R {
    let db = http_db()?;
    let q = r#"sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary",code=~"5.."}[30s])) / sum(rate(http_requests_total{namespace="shop",service="checkout",track="canary"}[30s]))"#;
    // (1 + 2) errors per second out of 20 requests per second.
    assert_close!(one(&db, q, 100 * S)?, 0.15);
    Ok(())
}

#[test]
fn demo_cpu_saturation_query_divides_usage_by_limits() -> R {
    let db = http_db()?;
    let q = r#"sum(rate(container_cpu_usage_seconds_total{namespace="shop",track="canary"}[30s])) / sum(kube_pod_container_resource_limits{namespace="shop",track="canary",resource="cpu"})"#;
    assert_close!(one(&db, q, 100 * S)?, 0.75);
    Ok(())
}

#[test]
fn demo_latency_query_takes_quantile_of_bucket_rates() -> R {
    let db = Tsdb::default();
    for (le, per_sec) in [
        ("0.05", 10.0),
        ("0.1", 30.0),
        ("0.25", 38.0),
        ("+Inf", 40.0),
    ] {
        let pts: Vec<(i64, f64)> = (1..=100).map(|s| (s * S, per_sec * s as f64)).collect();
        put(
            &db,
            &[
                ("__name__", "http_request_duration_seconds_bucket"),
                ("namespace", "shop"),
                ("service", "checkout"),
                ("track", "stable"),
                ("pod", "s1"),
                ("le", le),
            ],
            &pts,
        )?;
    }
    let q = r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",service="checkout",track="stable"}[30s])))"#;
    // Rank 38 of 40 sits exactly at the top of the 0.25 bucket.
    assert_close!(one(&db, q, 100 * S)?, 0.25);
    Ok(())
}

fn ab_db() -> Result<Tsdb, TsdbError> {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "a"), ("pod", "p1"), ("track", "x")],
        &[(S, 10.0)],
    )?;
    put(
        &db,
        &[("__name__", "a"), ("pod", "p2"), ("track", "x")],
        &[(S, 20.0)],
    )?;
    put(
        &db,
        &[("__name__", "a"), ("pod", "p3"), ("track", "y")],
        &[(S, 30.0)],
    )?;
    put(
        &db,
        &[("__name__", "b"), ("pod", "p1"), ("track", "x")],
        &[(S, 2.0)],
    )?;
    put(
        &db,
        &[("__name__", "b"), ("pod", "p2"), ("track", "x")],
        &[(S, 4.0)],
    )?;
    put(
        &db,
        &[("__name__", "info"), ("track", "x"), ("version", "1.0")],
        &[(S, 1.0)],
    )?;
    Ok(db)
}

#[test]
fn one_to_one_matching_drops_name_and_unmatched() -> R {
    let db = ab_db()?;
    let v = vector(&db, "a / b", S)?;
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].labels, labels([("pod", "p1"), ("track", "x")]));
    assert_close!(v[0].value, 5.0);
    assert_close!(v[1].value, 5.0);
    let on = vector(&db, "a - on(pod) b", S)?;
    assert_eq!(on[0].labels, labels([("pod", "p1")]));
    assert_close!(on[0].value, 8.0);
    let ign = vector(&db, "a * ignoring(track) b", S)?;
    assert_eq!(ign[1].labels, labels([("pod", "p2")]));
    assert_close!(ign[1].value, 80.0);
    Ok(())
}

#[test]
fn many_to_one_needs_group_left_and_copies_labels() -> R {
    let db = ab_db()?;
    let err = instant_query(&db, "a * on(track) info", S);
    assert!(
        matches!(err, Err(QueryError::Execution(ref m)) if m.contains("many-to-one")),
        "{err:?}"
    );
    let v = vector(&db, "a * on(track) group_left(version) info", S)?;
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].labels,
        labels([("pod", "p1"), ("track", "x"), ("version", "1.0")])
    );
    let r = vector(&db, "info * on(track) group_right(version) a", S)?;
    assert_eq!(r.len(), 2);
    assert_close!(r[1].value, 20.0);
    let dup = instant_query(&db, "info * on(track) a", S);
    assert!(
        matches!(dup, Err(QueryError::Execution(ref m)) if m.contains("duplicate series")),
        "{dup:?}"
    );
    Ok(())
}

#[test]
fn comparisons_filter_or_return_bool() -> R {
    let db = ab_db()?;
    let f = vector(&db, "a > 15", S)?;
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].labels.get("__name__").map(String::as_str), Some("a"));
    assert_close!(f[0].value, 20.0);
    let b = vector(&db, "a > bool 15", S)?;
    assert_eq!(
        b.iter().map(|e| e.value).collect::<Vec<_>>(),
        vec![0.0, 1.0, 1.0]
    );
    assert!(!b[0].labels.contains_key("__name__"));
    let left = vector(&db, "15 < a", S)?;
    assert_close!(left[0].value, 20.0);
    let vv = vector(&db, "a > on(pod) b * 3 + 4", S)?;
    assert_eq!(vv.len(), 1);
    assert_eq!(vv[0].labels, labels([("pod", "p2")]));
    assert_close!(vv[0].value, 20.0);
    assert_close!(one(&db, "2 > bool 1", S)?, 1.0);
    Ok(())
}

#[test]
fn set_operators_match_on_label_sets() -> R {
    let db = ab_db()?;
    let and = vector(&db, "a and b", S)?;
    assert_eq!(and.len(), 2);
    assert_eq!(and[0].labels.get("__name__").map(String::as_str), Some("a"));
    let unless = vector(&db, "a unless b", S)?;
    assert_eq!(unless.len(), 1);
    assert_close!(unless[0].value, 30.0);
    let or = vector(&db, "b or a", S)?;
    assert_eq!(or.len(), 3);
    let on = vector(&db, "a and on(track) info", S)?;
    assert_eq!(on.len(), 2);
    Ok(())
}

#[test]
fn aggregations_group_by_and_without() -> R {
    let db = ab_db()?;
    let by = vector(&db, "sum by (track) (a)", S)?;
    assert_eq!(by[0].labels, labels([("track", "x")]));
    assert_close!(by[0].value, 30.0);
    assert_close!(by[1].value, 30.0);
    let without = vector(&db, "max without (pod) (a)", S)?;
    assert_eq!(without[0].labels, labels([("track", "x")]));
    assert_close!(without[0].value, 20.0);
    assert_close!(one(&db, "avg(a)", S)?, 20.0);
    assert_close!(one(&db, "count(a)", S)?, 3.0);
    assert_close!(one(&db, "min(a)", S)?, 10.0);
    assert_close!(one(&db, "stddev(a)", S)?, (200.0f64 / 3.0).sqrt());
    assert_close!(one(&db, "quantile(0.5, a)", S)?, 20.0);
    // Averaging values near f64::MAX must not overflow to +Inf.
    assert_close!(
        one(
            &db,
            "avg(vector(1.5e308) or label_replace(vector(1.7e308), \"x\", \"y\", \"\", \"\"))",
            S
        )?,
        1.6e308
    );
    // Prometheus 3 (unlike 2.x) answers NaN for the spread of a lone infinity.
    assert!(one(&db, "stddev(vector(1) / 0)", S)?.is_nan());
    let nan_k = instant_query(&db, "topk(scalar(missing), missing)", S);
    assert!(matches!(nan_k, Err(QueryError::Execution(_))), "{nan_k:?}");
    let top = vector(&db, "topk(1, a)", S)?;
    assert_eq!(top[0].labels.get("pod").map(String::as_str), Some("p3"));
    Ok(())
}

#[test]
fn scalar_functions_and_literals() -> R {
    let db = ab_db()?;
    assert_close!(one(&db, "2 ^ 3 + 1", S)?, 9.0);
    assert_close!(one(&db, "-(2 * 3)", S)?, -6.0);
    assert_close!(one(&db, "7 % 4", S)?, 3.0);
    assert_close!(one(&db, "scalar(sum(b))", S)?, 6.0);
    assert!(one(&db, "scalar(a)", S)?.is_nan());
    let v = vector(&db, "vector(3)", S)?;
    assert_eq!(v[0].labels, Labels::new());
    let clamped = vector(&db, "clamp_max(a, 15)", S)?;
    assert_eq!(
        clamped.iter().map(|e| e.value).collect::<Vec<_>>(),
        vec![10.0, 15.0, 15.0]
    );
    let clamped = vector(&db, "clamp_min(-a, -15)", S)?;
    assert_eq!(
        clamped.iter().map(|e| e.value).collect::<Vec<_>>(),
        vec![-10.0, -15.0, -15.0]
    );
    assert_close!(one(&db, "abs(-sum(b))", S)?, 6.0);
    assert_eq!(instant_query(&db, "\"hi\"", S)?, Value::String("hi".into()));
    Ok(())
}

#[test]
fn unsupported_features_are_refused_not_guessed() -> R {
    let db = ab_db()?;
    for q in ["mad_over_time(a[5m])", "histogram_count(a)", "limitk(1, a)"] {
        let r = instant_query(&db, q, S);
        assert!(matches!(r, Err(QueryError::Unsupported(_))), "{q}: {r:?}");
    }
    Ok(())
}

#[test]
fn subqueries_evaluate_at_aligned_steps() -> R {
    let db = Tsdb::default();
    let pts: Vec<(i64, f64)> = (0..=60).map(|i| (i * 10 * S, (i * 10) as f64)).collect();
    put(&db, &[("__name__", "c")], &pts)?;
    // Steps inside (245 s, 305 s] aligned to 20 s: 260, 280, 300 → c = 260, 280, 300.
    match instant_query(&db, "c[60s:20s]", 305 * S)? {
        Value::Matrix(m) => assert_eq!(
            m[0].points,
            vec![(260 * S, 260.0), (280 * S, 280.0), (300 * S, 300.0)]
        ),
        other => panic!("{other:?}"),
    }
    assert_close!(one(&db, "max_over_time(c[60s:20s])", 305 * S)?, 300.0);
    // rate over the subquery extrapolates like over raw samples: slope 1/s.
    assert_close!(one(&db, "rate(c[60s:20s])", 300 * S)?, 1.0);
    assert_close!(
        one(&db, "max_over_time(rate(c[30s])[2m:30s])", 300 * S)?,
        1.0
    );
    let r = instant_query(&db, "c[1000d:1ms]", 305 * S);
    assert!(matches!(r, Err(QueryError::Execution(_))), "{r:?}");
    Ok(())
}

#[test]
fn label_functions_rewrite_labels() -> R {
    let db = ab_db()?;
    let v = vector(&db, r#"label_replace(a, "short", "$1", "pod", "p(.*)")"#, S)?;
    assert_eq!(v[0].labels.get("short").map(String::as_str), Some("1"));
    assert_eq!(v[0].labels.get("__name__").map(String::as_str), Some("a"));
    let unchanged = vector(&db, r#"label_replace(a, "short", "$1", "pod", "x(.*)")"#, S)?;
    assert!(!unchanged[0].labels.contains_key("short"));
    let j = vector(&db, r#"label_join(a, "id", "/", "track", "pod")"#, S)?;
    assert_eq!(j[2].labels.get("id").map(String::as_str), Some("y/p3"));
    let dup = instant_query(&db, r#"label_replace(a, "pod", "", "pod", ".*")"#, S);
    assert!(matches!(dup, Err(QueryError::Execution(_))), "{dup:?}");
    Ok(())
}

#[test]
fn absent_reports_missing_series_with_equality_labels() -> R {
    let db = ab_db()?;
    assert!(vector(&db, "absent(a)", S)?.is_empty());
    let v = vector(&db, r#"absent(nope{job="x", pod=~"p.*"})"#, S)?;
    assert_eq!(v[0].labels, labels([("job", "x")]));
    assert_close!(v[0].value, 1.0);
    let o = vector(&db, r#"absent_over_time(nope{job="x"}[5m])"#, S)?;
    assert_eq!(o[0].labels, labels([("job", "x")]));
    Ok(())
}

#[test]
fn sort_orders_by_value_and_count_values_groups_by_value() -> R {
    let db = ab_db()?;
    let sorted = match instant_query(&db, "sort_desc(a)", S)? {
        Value::Vector(v) => v.iter().map(|e| e.value).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sorted, vec![30.0, 20.0, 10.0]);
    let cv = vector(&db, r#"count_values("v", b * 0 + 1)"#, S)?;
    assert_eq!(
        cv,
        vec![Element {
            labels: labels([("v", "1")]),
            value: 2.0
        }]
    );
    let by = vector(&db, r#"count_values by (track) ("v", a)"#, S)?;
    assert_eq!(by.len(), 3);
    Ok(())
}

#[test]
fn timestamp_and_date_functions_read_sample_or_evaluation_time() -> R {
    let db = Tsdb::default();
    // 2024-02-29T13:45:30Z, a Thursday in a leap year.
    let leap = 1_709_214_330;
    put(&db, &[("__name__", "g")], &[(leap * S, leap as f64)])?;
    let t = (leap + 60) * S;
    assert_close!(one(&db, "timestamp(g)", t)?, leap as f64);
    assert_close!(one(&db, "timestamp(g * 1)", t)?, (leap + 60) as f64);
    assert_close!(one(&db, "hour(g)", t)?, 13.0);
    assert_close!(one(&db, "minute(g)", t)?, 45.0);
    assert_close!(one(&db, "day_of_week(g)", t)?, 4.0);
    assert_close!(one(&db, "day_of_month(g)", t)?, 29.0);
    assert_close!(one(&db, "day_of_year(g)", t)?, 60.0);
    assert_close!(one(&db, "days_in_month(g)", t)?, 29.0);
    assert_close!(one(&db, "month(g)", t)?, 2.0);
    assert_close!(one(&db, "year(g)", t)?, 2024.0);
    assert_close!(one(&db, "minute()", t)?, 46.0);
    assert_close!(one(&db, "deg(vector(pi()))", t)?, 180.0);
    Ok(())
}

#[test]
fn deriv_and_predict_linear_fit_a_line() -> R {
    let db = Tsdb::default();
    put(
        &db,
        &[("__name__", "g")],
        &every_10s(&[10., 12., 14., 16., 18., 20.]),
    )?;
    assert_close!(one(&db, "deriv(g[60s])", 100 * S)?, 0.2);
    // At t = 100 s the fitted line is at 21; 50 s later 31.
    assert_close!(one(&db, "predict_linear(g[60s], 50)", 100 * S)?, 31.0);
    assert_close!(one(&db, "quantile_over_time(0.5, g[60s])", 100 * S)?, 15.0);
    assert_close!(one(&db, "stdvar_over_time(g[60s])", 100 * S)?, 70.0 / 6.0);
    Ok(())
}

#[test]
fn bad_queries_are_parse_errors() {
    let db = Tsdb::default();
    let long_chain = vec!["1"; 3000].join("+");
    let nested = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    let huge = "1+".repeat(MAX_QUERY_BYTES);
    for q in [
        "sum(rate(x[5m]",
        "a +",
        "",
        "{a=~\".*\"}",
        "rate(a)",
        &"(".repeat(5000),
        &long_chain,
        &nested,
        &huge,
    ] {
        let r = instant_query(&db, q, S);
        assert!(matches!(r, Err(QueryError::Parse(_))), "{q}: {r:?}");
    }
}

#[test]
fn range_query_steps_and_merges_series() -> R {
    let db = ab_db()?;
    put(&db, &[("__name__", "g")], &[(10 * S, 1.0), (20 * S, 2.0)])?;
    let m = range_query(&db, "g", 10 * S, 30 * S, 5 * S)?;
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].points,
        vec![
            (10 * S, 1.0),
            (15 * S, 1.0),
            (20 * S, 2.0),
            (25 * S, 2.0),
            (30 * S, 2.0)
        ]
    );
    let s = range_query(&db, "1", 0, 2 * S, S)?;
    assert_eq!(s[0].labels, Labels::new());
    assert_eq!(s[0].points.len(), 3);
    assert!(matches!(
        range_query(&db, "g[1m]", 0, S, S),
        Err(QueryError::BadData(_))
    ));
    assert!(matches!(
        range_query(&db, "g", 0, 100_000 * S, S),
        Err(QueryError::BadData(_))
    ));
    assert!(matches!(
        range_query(&db, "g", S, 0, S),
        Err(QueryError::BadData(_))
    ));
    Ok(())
}

#[test]
fn duplicate_labelsets_after_dropping_names_are_an_error() -> R {
    let db = Tsdb::default();
    put(&db, &[("__name__", "x"), ("a", "1")], &[(S, 1.0)])?;
    put(&db, &[("__name__", "y"), ("a", "1")], &[(S, 1.0)])?;
    let r = instant_query(&db, "{a=\"1\"} * 2", S);
    assert!(
        matches!(r, Err(QueryError::Execution(ref m)) if m.contains("same labelset")),
        "{r:?}"
    );
    Ok(())
}

/// Random token soup must never panic, only succeed or fail with an error.
#[test]
fn random_queries_never_panic() -> R {
    use rand::{Rng, SeedableRng};
    let db = ab_db()?;
    put(&db, &[("__name__", "h_bucket"), ("le", "0.1")], &[(S, 1.0)])?;
    put(
        &db,
        &[("__name__", "h_bucket"), ("le", "+Inf")],
        &[(S, 2.0)],
    )?;
    let tokens = [
        "a",
        "b",
        "info",
        "h_bucket",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "5m",
        "1s",
        ":",
        "0s",
        ",",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "==",
        "!=",
        ">",
        "<",
        ">=",
        "<=",
        "and",
        "or",
        "unless",
        "bool",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "by",
        "without",
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "stddev",
        "rate",
        "irate",
        "increase",
        "delta",
        "histogram_quantile",
        "label_replace",
        "label_join",
        "absent",
        "scalar",
        "vector",
        "time",
        "timestamp",
        "clamp",
        "round",
        "sort",
        "offset",
        "@",
        "start()",
        "end()",
        "pod=\"p1\"",
        "le",
        "pod",
        "\"x\"",
        "\"$1\"",
        "\"(.*)\"",
        "0",
        "1",
        "-1",
        "0.5",
        "NaN",
        "Inf",
        "1e308",
        "9e18",
        "predict_linear",
        "deriv",
        "quantile_over_time",
        "day_of_week",
        "max_over_time",
        "count_over_time",
        "[1m:10s]",
        "[5m:]",
        "[1y:1ms]",
        "offset -5m",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for _ in 0..5000 {
        let n = rng.random_range(1..14);
        let q: Vec<&str> = (0..n)
            .map(|_| tokens[rng.random_range(0..tokens.len())])
            .collect();
        let q = q.join(" ");
        let _ = instant_query(&db, &q, 100 * S);
        let _ = range_query(&db, &q, 0, 100 * S, 10 * S);
    }
    Ok(())
}

struct Gen(rand::rngs::StdRng);

impl Gen {
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        use rand::Rng;
        xs[self.0.random_range(0..xs.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        use rand::Rng;
        self.0.random::<f64>() < p
    }

    fn selector(&mut self) -> String {
        let name = self.pick(&["a", "b", "info", "h_bucket", "missing"]);
        let m = self.pick(&[
            "",
            "{pod=\"p1\"}",
            "{track=~\"x|y\"}",
            "{pod!=\"p2\"}",
            "{le!~\"0.*\"}",
        ]);
        let off = self.pick(&["", "", " offset 30s", " offset -1m", " @ 50"]);
        format!("{name}{m}{off}")
    }

    fn range(&mut self, depth: u32) -> String {
        let d = self.pick(&["10s", "1m", "5m", "2h"]);
        if depth > 0 && self.chance(0.3) {
            let step = self.pick(&["", "10s", "7s"]);
            format!("({})[{d}:{step}]", self.vector(depth - 1))
        } else {
            let s = self.selector();
            match s.find(" offset").or_else(|| s.find(" @")) {
                Some(i) => format!("{}[{d}]{}", &s[..i], &s[i..]),
                None => format!("{s}[{d}]"),
            }
        }
    }

    fn scalar(&mut self, depth: u32) -> String {
        if depth == 0 || self.chance(0.5) {
            return self
                .pick(&["0", "1", "0.5", "-2", "NaN", "Inf", "1e300"])
                .to_string();
        }
        match self.pick(&["scalar", "time", "op"]) {
            "scalar" => format!("scalar({})", self.vector(depth - 1)),
            "time" => "time()".into(),
            _ => {
                let op = self.pick(&["+", "-", "*", "/", "%", "^", "== bool", "> bool"]);
                format!(
                    "({} {op} {})",
                    self.scalar(depth - 1),
                    self.scalar(depth - 1)
                )
            }
        }
    }

    fn vector(&mut self, depth: u32) -> String {
        if depth == 0 || self.chance(0.25) {
            return self.selector();
        }
        let d = depth - 1;
        let grouping = self.pick(&["", " by (pod)", " without (pod)", " by (le)", " by ()"]);
        match self.pick(&[
            "fn",
            "agg",
            "param_agg",
            "binop",
            "scalar_op",
            "set",
            "hq",
            "label",
            "misc",
        ]) {
            "fn" => {
                let f = self.pick(&[
                    "rate",
                    "irate",
                    "increase",
                    "delta",
                    "idelta",
                    "deriv",
                    "resets",
                    "changes",
                    "avg_over_time",
                    "max_over_time",
                    "stddev_over_time",
                    "last_over_time",
                    "present_over_time",
                    "absent_over_time",
                ]);
                format!("{f}({})", self.range(d))
            }
            "agg" => {
                let a = self.pick(&["sum", "avg", "min", "max", "count", "group", "stddev"]);
                format!("{a}{grouping} ({})", self.vector(d))
            }
            "param_agg" => {
                let a = self.pick(&["topk", "bottomk", "quantile"]);
                format!("{a}{grouping} ({}, {})", self.scalar(d), self.vector(d))
            }
            "binop" => {
                let op = self.pick(&["+", "/", "*", ">", "< bool", "!=", "%"]);
                let m = self.pick(&[
                    "",
                    " on(pod)",
                    " ignoring(track)",
                    " on(track) group_left(pod)",
                    " on(track) group_right",
                ]);
                format!("({} {op}{m} {})", self.vector(d), self.vector(d))
            }
            "scalar_op" => {
                let op = self.pick(&["+", "-", "*", "/", "^", ">", "<=", "== bool"]);
                if self.chance(0.5) {
                    format!("({} {op} {})", self.vector(d), self.scalar(d))
                } else {
                    format!("({} {op} {})", self.scalar(d), self.vector(d))
                }
            }
            "set" => {
                let op = self.pick(&["and", "or", "unless", "and on(track)"]);
                format!("({} {op} {})", self.vector(d), self.vector(d))
            }
            "hq" => format!(
                "histogram_quantile({}, sum by (le) (rate({})))",
                self.scalar(d),
                self.range(d)
            ),
            "label" => format!(
                "label_replace({}, \"{}\", \"$1\", \"pod\", \"{}\")",
                self.vector(d),
                self.pick(&["x", "pod", "__name__", "le"]),
                self.pick(&["p(.*)", "(", ".*", "x"])
            ),
            _ => {
                let f = self.pick(&[
                    "abs",
                    "ceil",
                    "sqrt",
                    "ln",
                    "sort",
                    "sort_desc",
                    "timestamp",
                    "hour",
                    "absent",
                    "-",
                ]);
                format!("{f}({})", self.vector(d))
            }
        }
    }
}

/// Generated, mostly well-formed queries exercise the evaluator itself: none may panic, and
/// most must evaluate.
#[test]
fn generated_queries_never_panic() -> R {
    use rand::SeedableRng;
    let db = ab_db()?;
    put(
        &db,
        &[("__name__", "h_bucket"), ("le", "0.1")],
        &[(S, 1.0), (50 * S, 3.0)],
    )?;
    put(
        &db,
        &[("__name__", "h_bucket"), ("le", "+Inf")],
        &[(S, 2.0), (50 * S, 9.0)],
    )?;
    put(
        &db,
        &[("__name__", "a"), ("pod", "p1"), ("track", "x")],
        &[(60 * S, 12.0)],
    )?;
    let mut g = Gen(rand::rngs::StdRng::seed_from_u64(7));
    let mut ok = 0;
    // More with WARROOM_FUZZ_QUERIES=n when hunting panics; the default keeps the suite quick.
    let total: usize = std::env::var("WARROOM_FUZZ_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for _ in 0..total {
        let q = g.vector(4);
        if instant_query(&db, &q, 70 * S).is_ok() {
            ok += 1;
        }
        let _ = range_query(&db, &q, 0, 70 * S, 7 * S);
    }
    eprintln!("{ok} of {total} generated queries evaluated");
    assert!(
        ok > total / 3,
        "only {ok} of {total} generated queries evaluated"
    );
    Ok(())
}

#[test]
fn lexer_errors_carry_prometheus_line_and_column() {
    // Positions as a real Prometheus (2.42) reports them for the same queries.
    for (q, expected) in [
        (
            "sum(rate(x[5m])",
            "1:16: parse error: unclosed left parenthesis",
        ),
        ("up $ 1", "1:4: parse error: unexpected character: '$'"),
        (
            "\nup{a~\"x\"}",
            "2:5: parse error: unexpected character inside braces: '~'",
        ),
        (
            "up{a=\"b\"",
            "1:9: parse error: unexpected end of input inside braces",
        ),
    ] {
        match crate::sim::promql::parse(q) {
            Err(QueryError::Parse(m)) => assert_eq!(m, expected, "{q:?}"),
            other => panic!("{q:?}: {other:?}"),
        }
    }
    // Prometheus says "unexpected character: '}'"; promql-parser words it differently, but the
    // position is the same.
    match crate::sim::promql::parse("foo{a=\"b\"} }") {
        Err(QueryError::Parse(m)) => assert!(m.starts_with("1:12: parse error: "), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn grammar_and_type_errors_carry_prometheus_position_and_wording() {
    // Every expected string is what a real Prometheus (2.42) answered for the same query.
    for (q, expected) in [
        (
            "rate(up)",
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
        ),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        ("up +", "1:5: parse error: unexpected end of input"),
        (
            "sum(up[5m])",
            "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
        ),
        (
            "up[5m] + 1",
            "1:1: parse error: binary expression must contain only scalar and instant vector types",
        ),
        (
            "histogram_quantile(0.9, up[5m])",
            "1:25: parse error: expected type instant vector in call to function \"histogram_quantile\", got range vector",
        ),
        (
            "rate(x[5m]) / on() sum(y[1m])",
            "1:24: parse error: expected type instant vector in aggregation expression, got range vector",
        ),
        (
            "sum by (a) (up[5m])",
            "1:13: parse error: expected type instant vector in aggregation expression, got range vector",
        ),
        (
            "max_over_time(up)",
            "1:15: parse error: expected type range vector in call to function \"max_over_time\", got instant vector",
        ),
        (
            "clamp_min(up[1m], 0)",
            "1:11: parse error: expected type instant vector in call to function \"clamp_min\", got range vector",
        ),
        (
            "topk(up, 3)",
            "1:10: parse error: expected type instant vector in aggregation expression, got scalar",
        ),
        (
            "scalar(up[5m])",
            "1:8: parse error: expected type instant vector in call to function \"scalar\", got range vector",
        ),
        (
            "vector(up)",
            "1:8: parse error: expected type scalar in call to function \"vector\", got instant vector",
        ),
        (
            "sum(x) by (a) + rate(y)",
            "1:22: parse error: expected type range vector in call to function \"rate\", got instant vector",
        ),
        (
            "avg_over_time(rate(x[5m]))",
            "1:15: parse error: expected type range vector in call to function \"avg_over_time\", got instant vector",
        ),
        (
            "up == bool up[1m]",
            "1:12: parse error: binary expression must contain only scalar and instant vector types",
        ),
        (
            "sum without(a) (x[1m])",
            "1:17: parse error: expected type instant vector in aggregation expression, got range vector",
        ),
        (
            "-x[1m]",
            "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
        ),
        (
            "x[1m] offset 5m + 1",
            "1:1: parse error: binary expression must contain only scalar and instant vector types",
        ),
        (
            "abs(1, 2)",
            "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2",
        ),
        (
            "time(1)",
            "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1",
        ),
        (
            "rate(up[5m]) +",
            "1:15: parse error: unexpected end of input",
        ),
    ] {
        match crate::sim::promql::parse(q) {
            Err(QueryError::Parse(m)) => assert_eq!(m, expected, "{q:?}"),
            other => panic!("{q:?}: {other:?}"),
        }
    }
}
