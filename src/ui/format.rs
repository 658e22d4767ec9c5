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

pub use crate::metrics::units::value;

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

/// `text` in at most `width` columns. A pod name cut keeps its end — the ReplicaSet hash and
/// the pod's own suffix, what tells pods apart — and a little of its start:
/// `checkout-canary-8b8f4b4c8-npv6r` in 13 columns is `chec…c8-npv6r`.
pub fn cut_keeping_tail(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        return text.to_string();
    }
    if width < 2 {
        return chars.iter().take(width).collect();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// `text` in at most `max` columns, the cut marked with an ellipsis at the end.
pub fn cut_end(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod cut_tests {
    use super::cut_keeping_tail;

    #[test]
    fn a_cut_pod_name_keeps_what_tells_pods_apart() {
        let a = "checkout-canary-8b8f4b4c8-npv6r";
        let b = "checkout-canary-8b8f4b4c8-rrnsp";
        assert_eq!(cut_keeping_tail(a, 13), "chec…c8-npv6r");
        assert_ne!(cut_keeping_tail(a, 13), cut_keeping_tail(b, 13));
        assert_eq!(cut_keeping_tail(a, 13).chars().count(), 13);
        assert_eq!(cut_keeping_tail(a, 40), a, "fits: unchanged");
        assert_eq!(cut_keeping_tail(a, 1), "c");
        assert_eq!(cut_keeping_tail(a, 0), "");
    }
}
