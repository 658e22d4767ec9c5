//! The simulator's in-memory time-series store: series keyed by label set, float samples, retention.
//! It knows nothing of PromQL, HTTP or traffic; those layers read and write through this API only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Label name that carries the metric name, as in Prometheus.
pub const METRIC_NAME: &str = "__name__";

/// A label set. A `BTreeMap` keeps labels sorted, so equal sets compare, hash and print equally.
pub type Labels = BTreeMap<String, String>;

/// One float sample: milliseconds since the Unix epoch and a value.
pub type Sample = (i64, f64);

/// Bit pattern of Prometheus's staleness marker: a NaN no arithmetic produces.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker. Appending it ends a series *now* instead of letting instant selectors
/// see its last value for the whole lookback window, which is what Prometheus does when a scrape
/// target or one of its series disappears.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Builds a label set from pairs; handy in tests and in the request generator.
pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TsdbError {
    #[error("series has no {METRIC_NAME} label")]
    MissingMetricName,
    #[error("out-of-order sample at {ts_ms} ms: series already has a sample at {last_ms} ms")]
    OutOfOrder { ts_ms: i64, last_ms: i64 },
}

/// How a [`LabelMatcher`] compares a label value.
#[derive(Debug, Clone)]
pub enum MatchKind {
    Equal(String),
    NotEqual(String),
    /// Fully anchored, like every Prometheus regex matcher.
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

/// One label matcher. A label that is absent matches as the empty string, as in Prometheus.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub kind: MatchKind,
}

impl LabelMatcher {
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: MatchKind::Equal(value.to_string()),
        }
    }

    pub fn matches_value(&self, value: &str) -> bool {
        match &self.kind {
            MatchKind::Equal(v) => v == value,
            MatchKind::NotEqual(v) => v != value,
            MatchKind::Regex(r) => r.is_match(value),
            MatchKind::NotRegex(r) => !r.is_match(value),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map(String::as_str).unwrap_or(""))
    }
}

/// The samples of one series that fell inside a requested time range.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Store configuration.
#[derive(Debug, Clone)]
pub struct TsdbConfig {
    /// Samples older than the newest sample of their series minus this are dropped.
    pub retention: Duration,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(3600),
        }
    }
}

/// Shared, thread-safe in-memory time-series store. Cloning shares the same data.
#[derive(Clone, Debug)]
pub struct Tsdb {
    inner: Arc<RwLock<Inner>>,
    retention_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Series grouped by metric name, because nearly every selector names its metric and this
    /// turns a scan of every series into a scan of one family.
    by_name: HashMap<String, HashMap<Labels, VecDeque<Sample>>>,
}

impl Default for Tsdb {
    fn default() -> Self {
        Self::new(TsdbConfig::default())
    }
}

impl Tsdb {
    pub fn new(config: TsdbConfig) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner::default())),
            retention_ms: i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Appends one sample. Timestamps must increase per series; a repeat of the last timestamp
    /// is ignored (Prometheus treats a same-timestamp duplicate the same way). Labels with
    /// empty values are dropped.
    pub fn append(&self, mut labels: Labels, ts_ms: i64, value: f64) -> Result<(), TsdbError> {
        // An empty label value means "no such label" in Prometheus; storing it would split one
        // series into two that print identically.
        labels.retain(|_, v| !v.is_empty());
        let name = labels
            .get(METRIC_NAME)
            .filter(|n| !n.is_empty())
            .cloned()
            .ok_or(TsdbError::MissingMetricName)?;
        let mut inner = self.write();
        let series = inner
            .by_name
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default();
        if let Some(&(last_ms, _)) = series.back() {
            if ts_ms == last_ms {
                return Ok(());
            }
            if ts_ms < last_ms {
                return Err(TsdbError::OutOfOrder { ts_ms, last_ms });
            }
        }
        series.push_back((ts_ms, value));
        let oldest_kept = ts_ms.saturating_sub(self.retention_ms);
        while series.front().is_some_and(|&(t, _)| t < oldest_kept) {
            series.pop_front();
        }
        Ok(())
    }

    /// Drops samples older than `now_ms - retention` everywhere, and series left empty.
    /// `append` trims only the series it touches; this catches series that stopped.
    pub fn trim(&self, now_ms: i64) {
        let oldest_kept = now_ms.saturating_sub(self.retention_ms);
        let mut inner = self.write();
        for family in inner.by_name.values_mut() {
            for series in family.values_mut() {
                while series.front().is_some_and(|&(t, _)| t < oldest_kept) {
                    series.pop_front();
                }
            }
            family.retain(|_, s| !s.is_empty());
        }
        inner.by_name.retain(|_, f| !f.is_empty());
    }

    /// Series matching all `matchers`, with their samples in `(start_ms, end_ms]`. Staleness
    /// markers are not samples and are left out, as are series with no sample in the range.
    /// Output is sorted by label set.
    pub fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<SeriesSamples> {
        let mut out = Vec::new();
        self.for_each_match(matchers, |labels, series| {
            let lo = series.partition_point(|&(t, _)| t <= start_ms);
            let hi = series.partition_point(|&(t, _)| t <= end_ms);
            let samples: Vec<Sample> = series
                .range(lo..hi)
                .copied()
                .filter(|&(_, v)| !is_stale(v))
                .collect();
            if !samples.is_empty() {
                out.push(SeriesSamples {
                    labels: labels.clone(),
                    samples,
                });
            }
        });
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Like [`select`](Self::select) but only the newest sample in `(start_ms, end_ms]` of each
    /// series: what an instant selector needs, without copying five minutes of samples. A series
    /// whose newest sample is a staleness marker has ended and is left out.
    pub fn select_last(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Sample)> {
        let mut out = Vec::new();
        self.for_each_match(matchers, |labels, series| {
            let hi = series.partition_point(|&(t, _)| t <= end_ms);
            if let Some(&(t, v)) = hi.checked_sub(1).and_then(|i| series.get(i))
                && t > start_ms
                && !is_stale(v)
            {
                out.push((labels.clone(), (t, v)));
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Label sets of the series matching `matchers` that have a sample in `(start_ms, end_ms]`.
    pub fn series(&self, matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> Vec<Labels> {
        let mut out = Vec::new();
        self.for_each_match(matchers, |labels, series| {
            let lo = series.partition_point(|&(t, _)| t <= start_ms);
            if series.get(lo).is_some_and(|&(t, _)| t <= end_ms) {
                out.push(labels.clone());
            }
        });
        out.sort();
        out
    }

    fn for_each_match(
        &self,
        matchers: &[LabelMatcher],
        mut f: impl FnMut(&Labels, &VecDeque<Sample>),
    ) {
        let inner = self.read();
        let name = matchers.iter().find_map(|m| match &m.kind {
            MatchKind::Equal(v) if m.name == METRIC_NAME => Some(v.as_str()),
            _ => None,
        });
        let families: Vec<&HashMap<Labels, VecDeque<Sample>>> = match name {
            Some(n) => inner.by_name.get(n).into_iter().collect(),
            None => inner.by_name.values().collect(),
        };
        for family in families {
            for (labels, series) in family {
                if matchers.iter().all(|m| m.matches(labels)) {
                    f(labels, series);
                }
            }
        }
    }

    /// The newest sample of every series that has not been marked stale, sorted by label set.
    pub fn latest(&self) -> Vec<(Labels, Sample)> {
        let inner = self.read();
        let mut out: Vec<(Labels, Sample)> = inner
            .by_name
            .values()
            .flat_map(|family| {
                family
                    .iter()
                    .filter_map(|(l, s)| s.back().map(|&smp| (l.clone(), smp)))
                    .filter(|(_, (_, v))| !is_stale(*v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of series and of samples held; for tests and memory checks.
    pub fn stats(&self) -> (usize, usize) {
        let inner = self.read();
        let series = inner.by_name.values().map(HashMap::len).sum();
        let samples = inner
            .by_name
            .values()
            .flat_map(|f| f.values())
            .map(VecDeque::len)
            .sum();
        (series, samples)
    }

    // A panic while holding the lock cannot leave a series half-written (every mutation is a
    // single push/pop), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Tsdb {
        Tsdb::default()
    }

    #[test]
    fn select_returns_samples_in_left_open_range() -> Result<(), TsdbError> {
        let db = db();
        let l = labels([("__name__", "m"), ("a", "1")]);
        for t in [1000, 2000, 3000, 4000] {
            db.append(l.clone(), t, t as f64)?;
        }
        let got = db.select(&[LabelMatcher::equal("__name__", "m")], 1000, 3000);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![(2000, 2000.0), (3000, 3000.0)]);
        let last = db.select_last(&[LabelMatcher::equal("__name__", "m")], 1000, 3500);
        assert_eq!(last, vec![(l.clone(), (3000, 3000.0))]);
        assert!(
            db.select_last(&[LabelMatcher::equal("a", "1")], 4000, 9000)
                .is_empty()
        );
        Ok(())
    }

    /// The matchers of a one-group series selector, built as the query API builds them.
    fn selector(s: &str) -> Result<Vec<LabelMatcher>, Box<dyn std::error::Error>> {
        let mut groups = crate::sim::promql::parse_selector(s)?;
        match (groups.pop(), groups.is_empty()) {
            (Some(group), true) => Ok(group),
            _ => Err(format!("{s:?} is not a single matcher group").into()),
        }
    }

    #[test]
    fn matchers_treat_missing_labels_as_empty_and_anchor_regexes()
    -> Result<(), Box<dyn std::error::Error>> {
        let db = db();
        db.append(labels([("__name__", "m"), ("code", "500")]), 1, 1.0)?;
        db.append(labels([("__name__", "m"), ("code", "200")]), 1, 1.0)?;
        db.append(labels([("__name__", "m")]), 1, 1.0)?;
        // Every series is named `m`, so the name matcher leaves the label matcher to decide.
        let five = db.select(&selector(r#"m{code=~"5.."}"#)?, 0, 10);
        assert_eq!(five.len(), 1);
        let partial = db.select(&selector(r#"m{code=~"5"}"#)?, 0, 10);
        assert!(partial.is_empty(), "regex must be anchored");
        let no_code = db.select(&selector(r#"m{code=""}"#)?, 0, 10);
        assert_eq!(no_code.len(), 1);
        let not_200 = db.select(&selector(r#"m{code!="200"}"#)?, 0, 10);
        assert_eq!(not_200.len(), 2);
        let not_re = db.select(&selector(r#"m{code!~"[25]00"}"#)?, 0, 10);
        assert_eq!(not_re.len(), 1);
        Ok(())
    }

    #[test]
    fn staleness_marker_ends_a_series() -> Result<(), TsdbError> {
        let db = db();
        let l = labels([("__name__", "m")]);
        db.append(l.clone(), 1000, 1.0)?;
        db.append(l.clone(), 2000, 2.0)?;
        db.append(l.clone(), 3000, stale_nan())?;
        let m = [LabelMatcher::equal("__name__", "m")];
        assert!(db.select_last(&m, 0, 5000).is_empty());
        assert_eq!(db.select_last(&m, 0, 2500).len(), 1);
        assert_eq!(
            db.select(&m, 0, 5000)[0].samples,
            vec![(1000, 1.0), (2000, 2.0)]
        );
        assert!(db.latest().is_empty());
        assert!(!is_stale(f64::NAN));
        Ok(())
    }

    #[test]
    fn append_rejects_out_of_order_and_ignores_duplicates() -> Result<(), TsdbError> {
        let db = db();
        let l = labels([("__name__", "m")]);
        db.append(l.clone(), 10, 1.0)?;
        db.append(l.clone(), 10, 2.0)?;
        assert!(matches!(
            db.append(l.clone(), 5, 1.0),
            Err(TsdbError::OutOfOrder { .. })
        ));
        assert_eq!(db.stats(), (1, 1));
        db.append(labels([("__name__", "m"), ("empty", "")]), 11, 3.0)?;
        assert_eq!(db.stats(), (1, 2), "an empty label is no label");
        assert_eq!(
            db.append(labels([("a", "b")]), 1, 1.0),
            Err(TsdbError::MissingMetricName)
        );
        Ok(())
    }

    #[test]
    fn retention_drops_old_samples_and_dead_series() -> Result<(), TsdbError> {
        let db = Tsdb::new(TsdbConfig {
            retention: Duration::from_secs(10),
        });
        let l = labels([("__name__", "m")]);
        let dead = labels([("__name__", "dead")]);
        db.append(dead, 0, 1.0)?;
        for s in 0..=20 {
            db.append(l.clone(), s * 1000, s as f64)?;
        }
        assert_eq!(db.stats(), (2, 12));
        db.trim(20_000);
        assert_eq!(db.stats(), (1, 11));
        Ok(())
    }
}
