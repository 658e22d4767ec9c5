//! Analysis: each round of samples judged per metric and track against the plan's thresholds,
//! and the streaks of breaches and missing data that decide when the engine acts. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::metrics::Sample;
use crate::metrics::units::value as show;
use crate::plan::{Metrics, Threshold, TrackName};

/// A metric of one track.
pub type Key = (String, TrackName);

/// What the latest sample of one metric and track says.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Healthy(f64),
    /// Outside its threshold: the text gives the numbers (`7.20% > 5.00%`).
    Breach(String),
    /// Empty, NaN, a query error or Prometheus unreachable.
    NoData(String),
}

/// A streak long enough for the plan's rule to act.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub metric: String,
    pub track: TrackName,
    pub kind: VerdictKind,
    /// `error_rate canary 7.20% > 5.00%`
    pub text: String,
    /// Consecutive samples so far, and how many the rule wants.
    pub count: u32,
    pub after: u32,
}

/// Which rule a verdict comes under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    Breach,
    NoData,
}

/// A round of samples: every query for every track, or nothing because Prometheus did not answer.
#[derive(Debug, Clone, Copy)]
pub enum Round<'a> {
    Samples(&'a [Sample]),
    Unanswered { error: &'a str },
}

/// Streaks and the latest findings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    breaches: BTreeMap<Key, u32>,
    missing: BTreeMap<Key, u32>,
    /// Metrics whose rollback countdown an operator cancelled: no new countdown for them until
    /// they have recovered.
    acknowledged: BTreeSet<String>,
    /// The latest finding of each judged metric and track.
    pub latest: BTreeMap<Key, Finding>,
    /// When the latest round was judged.
    pub judged_at: Option<SystemTime>,
    /// When a round last had a breach or missing data: a hold counts clean time from there.
    pub unclean_at: Option<SystemTime>,
}

impl Analysis {
    /// Judges one round for `tracks` (the tracks serving traffic). Returns the streaks that have
    /// reached their rule's `after`, breaches first. Missing data of a track in `starting` (it
    /// began to serve less than a rate window ago, so its rates cannot exist yet) is shown and
    /// keeps the round from being clean, but does not count toward `no_data.after`.
    pub fn judge(
        &mut self,
        metrics: &Metrics,
        round: Round<'_>,
        tracks: &[TrackName],
        starting: &[TrackName],
        at: SystemTime,
    ) -> Vec<Verdict> {
        self.judged_at = Some(at);
        self.latest.clear();
        // An unreachable Prometheus is missing data whoever is starting.
        let starting = match round {
            Round::Unanswered { .. } => &[][..],
            Round::Samples(_) => starting,
        };
        // Streaks of a track that no longer serves traffic end: its silence is expected.
        self.breaches.retain(|(_, t), _| tracks.contains(t));
        self.missing.retain(|(_, t), _| tracks.contains(t));
        let value_of = |metric: &str, track: TrackName| -> Result<f64, String> {
            match round {
                Round::Unanswered { error } => Err(format!("no answer from Prometheus: {error}")),
                Round::Samples(samples) => samples
                    .iter()
                    .find(|s| s.metric == metric && s.track == track)
                    .and_then(|s| s.point.value)
                    .ok_or_else(|| "no data".to_string()),
            }
        };
        let mut verdicts = Vec::new();
        let mut no_data = Vec::new();
        for (metric, threshold) in &metrics.thresholds {
            if !metrics.queries.contains_key(metric) {
                continue;
            }
            let mut healthy_tracks = 0;
            for &track in tracks {
                let key = (metric.clone(), track);
                let finding = match value_of(metric, track) {
                    Err(why) => Finding::NoData(why),
                    Ok(v) => match breach_text(metric, threshold, v, track, &value_of) {
                        Some(text) => Finding::Breach(text),
                        None => Finding::Healthy(v),
                    },
                };
                match &finding {
                    Finding::Healthy(_) => {
                        healthy_tracks += 1;
                        self.breaches.remove(&key);
                        self.missing.remove(&key);
                    }
                    Finding::Breach(text) => {
                        self.missing.remove(&key);
                        let text = format!("{metric} {} {text}", track.as_str());
                        verdicts.extend(streak(
                            &mut self.breaches,
                            &key,
                            VerdictKind::Breach,
                            text,
                            metrics.on_breach.after,
                        ));
                    }
                    Finding::NoData(_) if starting.contains(&track) => {}
                    Finding::NoData(why) => {
                        // Missing data neither continues nor ends a breach streak.
                        let text = format!("{metric} {}: {why}", track.as_str());
                        no_data.extend(streak(
                            &mut self.missing,
                            &key,
                            VerdictKind::NoData,
                            text,
                            metrics.no_data.after,
                        ));
                    }
                }
                self.latest.insert(key, finding);
            }
            if healthy_tracks == tracks.len() {
                self.acknowledged.remove(metric);
            }
        }
        verdicts.extend(no_data);
        if !self.clean() {
            self.unclean_at = Some(at);
        }
        verdicts
    }

    /// True when the latest round had data for every judged metric and track and nothing is
    /// breaching or missing: what a hold needs to pass.
    pub fn clean(&self) -> bool {
        self.breaches.is_empty()
            && self.missing.is_empty()
            && self
                .latest
                .values()
                .all(|f| matches!(f, Finding::Healthy(_)))
    }

    /// Why the latest round is not clean, for the screen: the first problem.
    pub fn unclean_reason(&self) -> Option<String> {
        self.latest.iter().find_map(|((metric, track), f)| match f {
            Finding::Healthy(_) => None,
            Finding::Breach(text) => Some(format!("{metric} {} {text}", track.as_str())),
            Finding::NoData(why) => Some(format!("{metric} {}: {why}", track.as_str())),
        })
    }

    /// An operator cancelled the countdown for `metric`.
    pub fn acknowledge(&mut self, metric: &str) {
        self.acknowledged.insert(metric.to_string());
    }

    pub fn is_acknowledged(&self, metric: &str) -> bool {
        self.acknowledged.contains(metric)
    }

    /// Forgets everything (a new environment): data of another environment says nothing about
    /// this one, and an acknowledgement given there does not hold here.
    pub fn reset_streaks(&mut self) {
        *self = Analysis::default();
    }
}

/// One more sample in `key`'s streak; a verdict once the streak has reached `after`.
fn streak(
    map: &mut BTreeMap<Key, u32>,
    key: &Key,
    kind: VerdictKind,
    text: String,
    after: u32,
) -> Option<Verdict> {
    let n = map.entry(key.clone()).or_insert(0);
    *n = n.saturating_add(1);
    (*n >= after).then(|| Verdict {
        metric: key.0.clone(),
        track: key.1,
        kind,
        text,
        count: *n,
        after,
    })
}

/// The breach of `v` against `threshold`, worded with its numbers; `None` when healthy.
fn breach_text(
    metric: &str,
    threshold: &Threshold,
    v: f64,
    track: TrackName,
    value_of: &impl Fn(&str, TrackName) -> Result<f64, String>,
) -> Option<String> {
    let shown = show(metric, Some(v));
    if let Some(max) = threshold.max.filter(|m| v > *m) {
        return Some(format!("{shown} > {}", show(metric, Some(max))));
    }
    if let Some(min) = threshold.min.filter(|m| v < *m) {
        return Some(format!("{shown} < {}", show(metric, Some(min))));
    }
    if track == TrackName::Canary {
        if let (Some(vs), Ok(stable)) = (threshold.vs_stable, value_of(metric, TrackName::Stable)) {
            if vs.breached_by(v, stable) {
                let mut bounds = Vec::new();
                if let Some(r) = vs.ratio {
                    bounds.push(format!("{r}×"));
                }
                if let Some(d) = vs.delta {
                    bounds.push(format!("+{}", show(metric, Some(d))));
                }
                return Some(format!(
                    "{shown} vs stable {} (worse by more than {})",
                    show(metric, Some(stable)),
                    bounds.join(" and ")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::series::Point;
    use crate::plan::VsStable;
    use std::time::Duration;

    fn metrics() -> Metrics {
        let text = crate::cli::DEMO_PLAN;
        crate::plan::parse(std::path::Path::new("demo.yaml"), text)
            .expect("demo plan")
            .metrics
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    fn round(values: &[(&str, TrackName, Option<f64>)]) -> Vec<Sample> {
        values
            .iter()
            .map(|(m, t, v)| Sample {
                metric: m.to_string(),
                track: *t,
                point: Point {
                    at: at(0),
                    value: *v,
                },
            })
            .collect()
    }

    fn healthy_except(metric: &str, track: TrackName, v: Option<f64>) -> Vec<Sample> {
        let mut out = Vec::new();
        for m in ["error_rate", "latency_p95", "cpu"] {
            for t in TrackName::BOTH {
                let value = if m == metric && t == track {
                    v
                } else {
                    Some(0.01)
                };
                out.extend(round(&[(m, t, value)]));
            }
        }
        out
    }

    #[test]
    fn breach_acts_only_after_the_plans_count_of_consecutive_samples() {
        let m = metrics();
        let mut a = Analysis::default();
        let bad = healthy_except("error_rate", TrackName::Canary, Some(0.072));
        let v = a.judge(&m, Round::Samples(&bad), &TrackName::BOTH, &[], at(1));
        assert!(v.is_empty(), "1 of 2");
        assert!(!a.clean());
        let v = a.judge(&m, Round::Samples(&bad), &TrackName::BOTH, &[], at(2));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].text, "error_rate canary 7.20% > 5.00%");
        assert_eq!((v[0].count, v[0].after), (2, 2));
    }

    #[test]
    fn a_healthy_sample_ends_the_streak() {
        let m = metrics();
        let mut a = Analysis::default();
        let bad = healthy_except("error_rate", TrackName::Canary, Some(0.2));
        let good = healthy_except("error_rate", TrackName::Canary, Some(0.01));
        a.judge(&m, Round::Samples(&bad), &TrackName::BOTH, &[], at(1));
        a.judge(&m, Round::Samples(&good), &TrackName::BOTH, &[], at(2));
        assert!(a.clean());
        let v = a.judge(&m, Round::Samples(&bad), &TrackName::BOTH, &[], at(3));
        assert!(v.is_empty(), "the streak started over");
    }

    #[test]
    fn missing_data_is_never_clean_and_acts_after_its_count() {
        let m = metrics();
        let mut a = Analysis::default();
        for i in 1..=2 {
            let v = a.judge(
                &m,
                Round::Unanswered {
                    error: "connection refused",
                },
                &TrackName::BOTH,
                &[],
                at(i),
            );
            assert!(v.is_empty());
            assert!(!a.clean());
        }
        let v = a.judge(
            &m,
            Round::Unanswered {
                error: "connection refused",
            },
            &TrackName::BOTH,
            &[],
            at(3),
        );
        assert!(v.iter().all(|v| v.kind == VerdictKind::NoData));
        assert_eq!(v.len(), 6, "every metric of both tracks");
        assert!(v[0].text.contains("connection refused"), "{v:?}");
    }

    #[test]
    fn one_failing_query_marks_only_its_own_data_missing() {
        let m = metrics();
        let mut a = Analysis::default();
        let s = healthy_except("cpu", TrackName::Canary, None);
        a.judge(&m, Round::Samples(&s), &TrackName::BOTH, &[], at(1));
        let missing: Vec<&Key> = a
            .latest
            .iter()
            .filter(|(_, f)| matches!(f, Finding::NoData(_)))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(missing, [&("cpu".to_string(), TrackName::Canary)]);
    }

    #[test]
    fn only_the_tracks_serving_traffic_are_judged() {
        let m = metrics();
        let mut a = Analysis::default();
        let s = healthy_except("error_rate", TrackName::Canary, None);
        a.judge(&m, Round::Samples(&s), &[TrackName::Stable], &[], at(1));
        assert!(
            a.clean(),
            "the canary serves nothing: its NaN is not missing data"
        );
    }

    #[test]
    fn vs_stable_breaches_only_when_worse_by_more_than_both_bounds() {
        let mut m = metrics();
        if let Some(t) = m.thresholds.get_mut("error_rate") {
            t.vs_stable = Some(VsStable {
                ratio: Some(2.0),
                delta: Some(0.005),
            });
        }
        let with = |canary: f64, stable: f64| {
            let mut s = healthy_except("error_rate", TrackName::Canary, Some(canary));
            for x in &mut s {
                if x.metric == "error_rate" && x.track == TrackName::Stable {
                    x.point.value = Some(stable);
                }
            }
            s
        };
        let mut a = Analysis::default();
        a.judge(
            &m,
            Round::Samples(&with(0.012, 0.004)),
            &TrackName::BOTH,
            &[],
            at(1),
        );
        assert!(!a.clean(), "3× and +0.8 pp: breach");
        let text = a.unclean_reason().expect("a reason");
        assert!(text.contains("1.20% vs stable 0.40%"), "{text}");
        let mut a = Analysis::default();
        a.judge(
            &m,
            Round::Samples(&with(0.003, 0.001)),
            &TrackName::BOTH,
            &[],
            at(1),
        );
        assert!(a.clean(), "3× but only +0.2 pp: no breach");
    }

    #[test]
    fn acknowledgement_lasts_until_the_metric_recovers() {
        let m = metrics();
        let mut a = Analysis::default();
        a.acknowledge("error_rate");
        let bad = healthy_except("error_rate", TrackName::Canary, Some(0.2));
        a.judge(&m, Round::Samples(&bad), &TrackName::BOTH, &[], at(1));
        assert!(a.is_acknowledged("error_rate"));
        let good = healthy_except("error_rate", TrackName::Canary, Some(0.01));
        a.judge(&m, Round::Samples(&good), &TrackName::BOTH, &[], at(2));
        assert!(!a.is_acknowledged("error_rate"));
    }
}
