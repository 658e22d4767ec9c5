//! Text formatting shared by the panels: ages, clock times, metric values.
//! Pure functions of their inputs.

use std::time::{Duration, SystemTime};

/// kubectl's AGE column: `45s`, `3m12s`, `42m`, `5h`, `3d`.
pub fn age(since: Option<SystemTime>, now: SystemTime) -> String {
    let Some(since) = since else {
        return "<unknown>".to_string();
    };
    let secs = now
        .duration_since(since)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// `HH:MM:SS` in the given zone.
pub fn clock(at: SystemTime, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| t.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string())
        .unwrap_or_else(|_| "--:--:--".to_string())
}

/// How a metric's values read best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A ratio shown in percent (error rate, CPU of limit).
    Ratio,
    /// Seconds shown in milliseconds.
    Seconds,
    Plain,
}

/// Guesses the unit from the metric's name, as the plan's examples name them.
pub fn unit_of(metric: &str) -> Unit {
    let m = metric.to_lowercase();
    if m.contains("latency") || m.contains("duration") || m.ends_with("_seconds") {
        Unit::Seconds
    } else if m.contains("rate") || m.contains("ratio") || m.contains("cpu") || m.contains("error")
    {
        Unit::Ratio
    } else {
        Unit::Plain
    }
}

/// A value with its unit; "no data" for `None`.
pub fn value(metric: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "no data".to_string();
    };
    match unit_of(metric) {
        Unit::Ratio => {
            let p = v * 100.0;
            if p != 0.0 && p.abs() < 0.1 {
                format!("{p:.3}%")
            } else {
                format!("{p:.2}%")
            }
        }
        Unit::Seconds => format!("{:.0}ms", v * 1000.0),
        Unit::Plain => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(Some(t(0)), t(45)), "45s");
        assert_eq!(age(Some(t(0)), t(192)), "3m12s");
        assert_eq!(age(Some(t(0)), t(42 * 60)), "42m");
        assert_eq!(age(Some(t(0)), t(5 * 3600)), "5h");
        assert_eq!(age(Some(t(10)), t(0)), "0s");
        assert_eq!(age(None, t(0)), "<unknown>");
    }

    #[test]
    fn metric_values_carry_their_unit() {
        assert_eq!(value("error_rate", Some(0.0123)), "1.23%");
        assert_eq!(value("error_rate", Some(0.0002)), "0.020%");
        assert_eq!(value("latency_p95", Some(0.2346)), "235ms");
        assert_eq!(value("cpu", None), "no data");
    }
}
