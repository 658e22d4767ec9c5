//! Deployment windows: whether a phase may start now, and if not, when its window opens.
//! Pure calendar arithmetic on the plan's window; the clock comes in as an argument.

use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::civil::Weekday as CivilDay;
use jiff::tz::TimeZone;

use crate::plan::{Weekday, Window};

/// Why a phase must wait for its window.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    /// When the window next opens.
    pub opens: SystemTime,
    /// `window opens Tue 10:00 Europe/Berlin, in 3h12m`
    pub text: String,
}

/// `Ok` when `window` is open at `now`; else when it opens next. A time zone that cannot be
/// loaded counts as closed forever, with the reason, rather than guessed.
pub fn check(window: &Window, now: SystemTime) -> Result<(), Closed> {
    let (tz, tz_name) = match &window.tz {
        Some(name) => match TimeZone::get(name.as_str()) {
            Ok(tz) => (tz, name.as_str().to_string()),
            Err(e) => {
                return Err(Closed {
                    opens: now + Duration::from_secs(365 * 86400),
                    text: format!("window time zone {}: {e}", name.as_str()),
                });
            }
        },
        None => (TimeZone::system(), "local time".to_string()),
    };
    let Ok(now_ts) = Timestamp::try_from(now) else {
        return Ok(());
    };
    let zoned = now_ts.to_zoned(tz.clone());
    let today = zoned.date();
    let day_allowed =
        |d: CivilDay| window.days.is_empty() || window.days.iter().any(|w| same(*w, d));
    let minute = |h: u8, m: u8| i32::from(h) * 60 + i32::from(m);
    let now_min = minute(
        u8::try_from(zoned.hour()).unwrap_or(0),
        u8::try_from(zoned.minute()).unwrap_or(0),
    );
    let from_min = minute(window.from.hour(), window.from.minute());
    let to_min = minute(window.to.hour(), window.to.minute());
    if day_allowed(today.weekday()) && now_min >= from_min && now_min < to_min {
        return Ok(());
    }
    // The next opening: today if still ahead, else the next allowed day, within a week.
    for offset in 0..=7i64 {
        let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else {
            break;
        };
        if !day_allowed(date.weekday()) || (offset == 0 && now_min >= from_min) {
            continue;
        }
        let opens = date
            .at(
                i8::try_from(window.from.hour()).unwrap_or(0),
                i8::try_from(window.from.minute()).unwrap_or(0),
                0,
                0,
            )
            .to_zoned(tz.clone());
        let Ok(opens) = opens else { continue };
        let at = SystemTime::from(opens.timestamp());
        let wait = at.duration_since(now).unwrap_or_default();
        return Err(Closed {
            opens: at,
            text: format!(
                "window opens {} {tz_name}, in {}",
                opens.strftime("%a %H:%M"),
                short(wait)
            ),
        });
    }
    Err(Closed {
        opens: now + Duration::from_secs(365 * 86400),
        text: "the window has no day it opens".to_string(),
    })
}

fn same(w: Weekday, d: CivilDay) -> bool {
    matches!(
        (w, d),
        (Weekday::Mon, CivilDay::Monday)
            | (Weekday::Tue, CivilDay::Tuesday)
            | (Weekday::Wed, CivilDay::Wednesday)
            | (Weekday::Thu, CivilDay::Thursday)
            | (Weekday::Fri, CivilDay::Friday)
            | (Weekday::Sat, CivilDay::Saturday)
            | (Weekday::Sun, CivilDay::Sunday)
    )
}

/// `3h12m`, `45m`, `2d3h`.
fn short(d: Duration) -> String {
    let mins = d.as_secs().div_ceil(60);
    match mins {
        m if m < 60 => format!("{m}m"),
        m if m < 48 * 60 => format!("{}h{:02}m", m / 60, m % 60),
        m => format!("{}d{}h", m / 1440, (m % 1440) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::time::{ClockTime, ZoneName};

    fn window(days: Vec<Weekday>) -> Window {
        Window {
            days,
            from: ClockTime::new(10, 0).expect("valid"),
            to: ClockTime::new(16, 0).expect("valid"),
            tz: Some(ZoneName::new("Europe/Berlin").expect("known zone")),
        }
    }

    fn at(text: &str) -> SystemTime {
        SystemTime::from(text.parse::<Timestamp>().expect("timestamp"))
    }

    #[test]
    fn open_inside_the_hours_on_an_allowed_day() {
        // Tuesday 2026-12-01 11:00 in Berlin is 10:00 UTC.
        assert!(check(&window(vec![Weekday::Tue]), at("2026-12-01T10:00:00Z")).is_ok());
    }

    #[test]
    fn closed_says_when_it_opens_in_the_windows_zone() {
        // Tuesday 2026-12-01 06:48 UTC is 07:48 in Berlin: opens at 10:00, in 2h12m.
        let closed = check(&window(vec![Weekday::Tue]), at("2026-12-01T06:48:00Z"))
            .expect_err("closed before 10:00");
        assert_eq!(
            closed.text,
            "window opens Tue 10:00 Europe/Berlin, in 2h12m"
        );
    }

    #[test]
    fn after_hours_it_opens_on_the_next_allowed_day() {
        // Tuesday 17:00 Berlin; next allowed day is Thursday.
        let closed = check(
            &window(vec![Weekday::Tue, Weekday::Thu]),
            at("2026-12-01T16:00:00Z"),
        )
        .expect_err("closed after 16:00");
        assert!(
            closed.text.starts_with("window opens Thu 10:00"),
            "{}",
            closed.text
        );
    }
}
