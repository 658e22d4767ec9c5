//! Wall-clock values of deployment windows: `HH:MM` times and IANA time zone names.
//! Parsing and checking only; deciding whether a window is open belongs to the engine.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// A time of day written `HH:MM` (24-hour clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime {
    hour: u8,
    minute: u8,
}

impl ClockTime {
    /// `None` outside 00:00–23:59.
    pub fn new(hour: u8, minute: u8) -> Option<ClockTime> {
        (hour < 24 && minute < 60).then_some(ClockTime { hour, minute })
    }

    /// Hour, 0–23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// Minute, 0–59.
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// Parses `HH:MM`.
    pub fn parse(text: &str) -> Option<ClockTime> {
        let (h, m) = text.trim().split_once(':')?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return None;
        }
        if !h.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        ClockTime::new(h.parse().ok()?, m.parse().ok()?)
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ClockTime::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a time of day; write HH:MM, e.g. \"09:00\""
            ))
        })
    }
}

impl JsonSchema for ClockTime {
    fn schema_name() -> Cow<'static, str> {
        "ClockTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Time of day, HH:MM (24-hour clock).",
            "type": "string",
            "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
        })
    }
}

/// An IANA time zone name (`Europe/Berlin`) that the time zone database knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZoneName(String);

impl ZoneName {
    /// Checks `name` against the time zone database.
    pub fn new(name: &str) -> Result<ZoneName, String> {
        match jiff::tz::TimeZone::get(name) {
            Ok(_) => Ok(ZoneName(name.to_string())),
            Err(_) => {
                let hint = closest_zone(name)
                    .map(|z| format!("; did you mean `{z}`?"))
                    .unwrap_or_else(|| "; use an IANA name such as Europe/Berlin".to_string());
                Err(format!("unknown time zone `{name}`{hint}"))
            }
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn closest_zone(name: &str) -> Option<String> {
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    super::suggest::closest(name, names.iter().map(String::as_str)).map(str::to_string)
}

impl<'de> Deserialize<'de> for ZoneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ZoneName::new(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ZoneName {
    fn schema_name() -> Cow<'static, str> {
        "ZoneName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "IANA time zone name, e.g. Europe/Berlin or UTC.",
            "type": "string",
            "minLength": 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_parse_only_real_times() {
        assert_eq!(ClockTime::parse("09:00"), ClockTime::new(9, 0));
        assert_eq!(ClockTime::parse("9:30"), ClockTime::new(9, 30));
        assert_eq!(ClockTime::parse("24:00"), None);
        assert_eq!(ClockTime::parse("12:60"), None);
        assert_eq!(ClockTime::parse("noon"), None);
        assert_eq!(ClockTime::parse("+1:00"), None);
    }

    #[test]
    fn unknown_zone_suggests_a_known_one() {
        assert!(ZoneName::new("Europe/Berlin").is_ok());
        let err = ZoneName::new("Europe/Berln").expect_err("typo refused");
        assert!(err.contains("did you mean `Europe/Berlin`"), "{err}");
    }
}
