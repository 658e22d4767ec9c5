//! Plan durations (`30s`, `5m`, `1h30m`) and weights (0–100), the two value types every plan uses.
//! Pure parsing; knows nothing of the plan's structure.

use std::fmt;
use std::time::Duration;

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// A duration written as `90s`, `5m`, `1h30m`, `250ms`. Zero is allowed here; where zero makes
/// no sense the validator says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PlanDuration(pub Duration);

impl PlanDuration {
    /// The wrapped standard duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration; write e.g. 30s, 5m or 1h30m")]
    Empty,
    /// Not numbers with units.
    #[error("`{0}` is not a duration; write e.g. 30s, 5m or 1h30m")]
    Malformed(String),
    /// A unit other than ms, s, m, h, d.
    #[error("unknown unit `{unit}` in `{input}`; use ms, s, m or h")]
    UnknownUnit {
        /// The whole duration as written.
        input: String,
        /// The unit that is not one.
        unit: String,
    },
    /// More milliseconds than fit in 64 bits.
    #[error("duration `{0}` is too large")]
    Overflow(String),
}

/// Parses `1h30m`, `45s`, `250ms`. Units: ms, s, m, h, d.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(DurationError::Malformed(s.to_string()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow(s.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(DurationError::Malformed(s.to_string())),
            other => {
                return Err(DurationError::UnknownUnit {
                    input: s.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        let part = number
            .checked_mul(factor)
            .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
        total_ms = total_ms
            .checked_add(part)
            .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way plans write it: `1h30m`, `45s`, `250ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

impl fmt::Display for PlanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for PlanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(PlanDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for PlanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Duration: numbers with units ms, s, m, h, d, e.g. 30s, 5m, 1h30m.",
            "type": "string",
            "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
        })
    }
}

/// A traffic weight in percent, 0–100 inclusive; the type makes 101 unrepresentable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(u8);

impl Weight {
    /// No traffic.
    pub const ZERO: Weight = Weight(0);
    /// All traffic.
    pub const FULL: Weight = Weight(100);

    /// `None` above 100.
    pub fn new(percent: u32) -> Option<Weight> {
        u8::try_from(percent).ok().filter(|p| *p <= 100).map(Weight)
    }

    /// Clamps into 0–100.
    pub fn clamped(percent: i64) -> Weight {
        // Clamped into 0..=100 first, so the cast cannot truncate.
        Weight(percent.clamp(0, 100) as u8)
    }

    /// The weight in percent.
    pub fn percent(self) -> u8 {
        self.0
    }

    /// This weight moved by `delta` percent, clamped into 0–100.
    pub fn shifted(self, delta: i64) -> Weight {
        Weight::clamped(i64::from(self.0) + delta)
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl serde::Serialize for Weight {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(deserializer)?;
        u32::try_from(n)
            .ok()
            .and_then(Weight::new)
            .ok_or_else(|| serde::de::Error::custom(format!("weight {n} is outside 0–100")))
    }
}

impl JsonSchema for Weight {
    fn schema_name() -> Cow<'static, str> {
        "Weight".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Traffic weight in percent, 0–100.",
            "type": "integer",
            "minimum": 0,
            "maximum": 100
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_durations_add_up() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_durations_are_refused_with_a_hint() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("5"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("m5"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("5y"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn durations_format_as_plans_write_them() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn weight_never_leaves_0_to_100() {
        assert_eq!(Weight::new(101), None);
        assert_eq!(Weight::clamped(-5), Weight::ZERO);
        assert_eq!(Weight::FULL.shifted(10), Weight::FULL);
        assert_eq!(Weight::ZERO.shifted(-10), Weight::ZERO);
        assert_eq!(Weight::clamped(30).shifted(-10).percent(), 20);
    }
}
