//! `/metrics` in the Prometheus text exposition format (0.0.4): the newest sample of every series.
//! Read-only view of the Tsdb, so a real Prometheus can scrape the simulator for differential tests.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::sim::promql::{LOOKBACK_MS, format_value};
use crate::sim::tsdb::{Labels, METRIC_NAME, Tsdb};

/// Router serving `GET /metrics`.
pub fn metrics_router(tsdb: Tsdb) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(tsdb)
}

async fn metrics(State(tsdb): State<Tsdb>) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let body = render(&tsdb, now);
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Renders every series updated within the lookback window before `now_ms`. Series that stopped
/// (pods that went away) drop out, as they would from a real target. Samples carry their
/// timestamps so a scraper stores exactly what the simulator's own API answers from.
pub fn render(tsdb: &Tsdb, now_ms: i64) -> String {
    let cutoff = now_ms.saturating_sub(LOOKBACK_MS);
    let latest: Vec<(Labels, (i64, f64))> = tsdb
        .latest()
        .into_iter()
        .filter(|(_, (t, _))| *t > cutoff)
        .collect();
    let histogram_bases: std::collections::HashSet<String> = latest
        .iter()
        .filter(|(l, _)| l.contains_key("le"))
        .filter_map(|(l, _)| {
            l.get(METRIC_NAME)?
                .strip_suffix("_bucket")
                .map(str::to_string)
        })
        .collect();
    // family name -> (type, lines); BTreeMap keeps families contiguous and ordered.
    let mut families: BTreeMap<String, (&'static str, Vec<String>)> = BTreeMap::new();
    for (labels, (t, v)) in &latest {
        let Some(name) = labels.get(METRIC_NAME) else {
            continue;
        };
        let (family, kind) = classify(name, &histogram_bases);
        let entry = families.entry(family).or_insert((kind, Vec::new()));
        entry.1.push(sample_line(name, labels, *t, *v));
    }
    let mut out = String::new();
    for (family, (kind, lines)) in families {
        out.push_str(&format!("# TYPE {family} {kind}\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

fn classify(
    name: &str,
    histogram_bases: &std::collections::HashSet<String>,
) -> (String, &'static str) {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && histogram_bases.contains(base)
        {
            return (base.to_string(), "histogram");
        }
    }
    if name.ends_with("_total") {
        (name.to_string(), "counter")
    } else {
        (name.to_string(), "gauge")
    }
}

fn sample_line(name: &str, labels: &Labels, t: i64, v: f64) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != METRIC_NAME)
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    let value = format_value(v);
    if pairs.is_empty() {
        format!("{name} {value} {t}")
    } else {
        format!("{name}{{{}}} {value} {t}", pairs.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tsdb::{TsdbError, labels};

    #[test]
    fn exposition_groups_families_with_type_lines() -> Result<(), TsdbError> {
        let db = Tsdb::default();
        let now = 1_000_000;
        db.append(
            labels([("__name__", "req_total"), ("code", "200")]),
            now,
            5.0,
        )?;
        db.append(
            labels([("__name__", "lat_bucket"), ("le", "0.1")]),
            now,
            1.0,
        )?;
        db.append(
            labels([("__name__", "lat_bucket"), ("le", "+Inf")]),
            now,
            2.0,
        )?;
        db.append(labels([("__name__", "lat_sum")]), now, 0.3)?;
        db.append(labels([("__name__", "lat_count")]), now, 2.0)?;
        db.append(
            labels([("__name__", "up"), ("msg", "a\"b\\c\nd")]),
            now,
            1.0,
        )?;
        db.append(labels([("__name__", "gone")]), now - LOOKBACK_MS, 1.0)?;
        let text = render(&db, now);
        let expected = "\
# TYPE lat histogram
lat_bucket{le=\"+Inf\"} 2 1000000
lat_bucket{le=\"0.1\"} 1 1000000
lat_count 2 1000000
lat_sum 0.3 1000000
# TYPE req_total counter
req_total{code=\"200\"} 5 1000000
# TYPE up gauge
up{msg=\"a\\\"b\\\\c\\nd\"} 1 1000000
";
        assert_eq!(text, expected);
        Ok(())
    }
}
