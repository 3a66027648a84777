//! Timestamps: the host's clock reading in, RFC 3339 for MAS, readable text
//! for people, and the expiries users type.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, Timelike, Utc};
use chrono_humanize::{Accuracy, HumanTime, Tense};

use crate::protocol::UnixMillis;

pub type Timestamp = DateTime<Utc>;

/// Converts the host's clock reading. `None` when it is outside chrono's range.
pub fn from_millis(millis: UnixMillis) -> Option<Timestamp> {
    DateTime::from_timestamp_millis(millis)
}

/// Adds whole seconds, or returns `None` past chrono's range.
pub fn add_seconds(time: Timestamp, seconds: u64) -> Option<Timestamp> {
    let seconds = i64::try_from(seconds).ok()?;
    time.checked_add_signed(TimeDelta::try_seconds(seconds)?)
}

/// Formats for MAS: RFC 3339 in UTC with a `Z`, with a fraction only when it is not zero.
pub fn to_rfc3339(time: Timestamp) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Formats for people, to the minute, e.g. `2026-12-11 20:07 UTC`.
pub fn to_display(time: Timestamp) -> String {
    // Plain fields instead of chrono's strftime, whose format-string
    // machinery adds about 10 KB to the module.
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute()
    )
}

/// Describes how far `time` is from `now` in words: `in 6 days`, `3 hours ago`, `now`.
pub fn relative(time: Timestamp, now: Timestamp) -> String {
    let delta = time.signed_duration_since(now);
    // chrono-humanize writes "now" below about ten seconds and would add a
    // tense to it ("in now"), so short spans are "now" here.
    if delta.num_seconds().abs() < NOW_SECONDS {
        return "now".to_owned();
    }

    // Round to whole minutes: chrono-humanize truncates, so an expiry set to
    // three days a moment ago would read "in 2 days".
    let seconds = delta.num_seconds();
    let minutes = (seconds + if seconds >= 0 { 30 } else { -30 }) / 60;
    let rounded = TimeDelta::try_minutes(minutes).unwrap_or(delta);
    let tense = if delta > TimeDelta::zero() { Tense::Future } else { Tense::Past };
    HumanTime::from(rounded).to_text_en(Accuracy::Rough, tense)
}

/// Spans shorter than this many seconds read as "now".
const NOW_SECONDS: i64 = 45;

/// Absolute and relative, e.g. `2026-12-11 20:07 UTC (in 7 days)`.
pub fn to_display_relative(time: Timestamp, now: Timestamp) -> String {
    format!("{} ({})", to_display(time), relative(time, now))
}

/// An expiry as a user types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Seconds from the time the command runs.
    After(u64),
    At(Timestamp),
    Never,
}

/// Largest expiry accepted: 100 years, in seconds.
pub const MAX_EXPIRY_SECONDS: u64 = 100 * 366 * 24 * 60 * 60;

impl Expiry {
    /// Parses `never`, whole seconds (`86400`), a duration (`30m`, `12h`,
    /// `7d`, `2w`, `1d12h`), a date (`2027-01-31`, midnight UTC), or a date
    /// and time (`2027-01-31T12:00`, UTC unless an offset is given, as in
    /// `2027-01-31T12:00:00+02:00`).
    pub fn parse(text: &str) -> Result<Expiry, String> {
        if text.eq_ignore_ascii_case("never") {
            return Ok(Expiry::Never);
        }
        if let Some(time) = parse_date_time(text) {
            return Ok(Expiry::At(time));
        }

        let seconds = if text.bytes().all(|byte| byte.is_ascii_digit()) {
            text.parse::<u64>().ok()
        } else if text.starts_with(|c: char| c.is_ascii_digit()) {
            humantime::parse_duration(text).ok().map(|duration| duration.as_secs())
        } else {
            None
        };
        match seconds {
            Some(seconds) if seconds > 0 && seconds <= MAX_EXPIRY_SECONDS => Ok(Expiry::After(seconds)),
            _ => Err(format!(
                "`expiry` must be seconds greater than 0, a duration such as `12h`, `7d` or `1d12h`, a date or date-time such as `2027-01-31` or `2027-01-31T12:00` (UTC unless an offset follows), or `never`; not `{}`.",
                crate::reply::echo(text)
            )),
        }
    }

    /// Returns the expiry time for a command run at `now`, or `None` for never.
    /// Fails when the time is out of range or not in the future.
    pub fn resolve(self, now: Timestamp) -> Result<Option<Timestamp>, String> {
        let at = match self {
            Expiry::Never => return Ok(None),
            Expiry::After(seconds) => add_seconds(now, seconds)
                .ok_or_else(|| "That expiry is too far in the future.".to_owned())?,
            Expiry::At(at) => at,
        };
        if at <= now {
            return Err(format!("The expiry {} is in the past.", to_display(at)));
        }
        Ok(Some(at))
    }
}

fn parse_date_time(text: &str) -> Option<Timestamp> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    // A trailing Z is UTC; chrono's %z wants a numeric offset.
    let text_with_offset = match text.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => text.to_owned(),
    };
    for format in ["%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z", "%Y-%m-%dT%H:%M:%S%#z"] {
        if let Ok(time) = DateTime::parse_from_str(&text_with_offset, format) {
            return Some(time.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn one_day_later_in_rfc3339() {
        let now = from_millis(1_764_878_824_000).expect("in range");
        let later = add_seconds(now, 86_400).expect("in range");
        assert_eq!(to_rfc3339(now), "2025-12-04T20:07:04Z");
        assert_eq!(to_rfc3339(later), "2025-12-05T20:07:04Z");
    }

    #[test]
    fn milliseconds_are_kept() {
        let now = from_millis(1_764_878_824_250).expect("in range");
        assert_eq!(to_rfc3339(now), "2025-12-04T20:07:04.250Z");
    }

    #[test]
    fn out_of_range_is_none() {
        let now = from_millis(1_764_878_824_000).expect("in range");
        assert_eq!(add_seconds(now, u64::MAX), None);
        assert_eq!(from_millis(i64::MAX), None);
    }

    #[test]
    fn expiry_forms() {
        let cases = [
            ("never", Expiry::Never),
            ("86400", Expiry::After(86_400)),
            ("30m", Expiry::After(1_800)),
            ("12h", Expiry::After(43_200)),
            ("7d", Expiry::After(604_800)),
            ("2w", Expiry::After(1_209_600)),
            ("1d12h", Expiry::After(129_600)),
        ];
        for (text, expected) in cases {
            assert_eq!(Expiry::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn expiry_dates_are_utc_unless_offset() {
        let at = |text: &str| match Expiry::parse(text) {
            Ok(Expiry::At(time)) => to_rfc3339(time),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(at("2027-01-31"), "2027-01-31T00:00:00Z");
        assert_eq!(at("2027-01-31T12:30"), "2027-01-31T12:30:00Z");
        assert_eq!(at("2027-01-31 12:30:15"), "2027-01-31T12:30:15Z");
        assert_eq!(at("2027-01-31T12:00:00+02:00"), "2027-01-31T10:00:00Z");
        assert_eq!(at("2027-01-31T12:00+02:00"), "2027-01-31T10:00:00Z");
        assert_eq!(at("2027-01-31T12:00+0200"), "2027-01-31T10:00:00Z");
        assert_eq!(at("2027-01-31T12:00Z"), "2027-01-31T12:00:00Z");
    }

    #[test]
    fn expiry_rejects_garbage() {
        for text in ["0", "0s", "-60", "soon", "7x", "", "d7", "2027-13-01", "99999999999999999999"] {
            assert!(Expiry::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn expiry_in_the_past_is_rejected() {
        let now = from_millis(1_796_414_400_000).expect("in range");
        assert!(Expiry::parse("2020-01-01").expect("date").resolve(now).is_err());
        assert_eq!(Expiry::Never.resolve(now), Ok(None));
        let later = Expiry::After(60).resolve(now).expect("future").expect("some");
        assert_eq!(to_rfc3339(later), "2026-12-04T20:01:00Z");
    }

    #[test]
    fn relative_times_in_words() {
        let now = from_millis(1_796_414_400_000).expect("in range");
        let later = add_seconds(now, 6 * 86_400).expect("in range");
        assert_eq!(relative(later, now), "in 6 days");
        assert_eq!(relative(now, later), "6 days ago");
        assert_eq!(relative(now, now), "now");
        assert_eq!(relative(add_seconds(now, 5).expect("in range"), now), "now");
    }

    #[test]
    fn relative_times_round_to_the_nearest_unit() {
        let now = from_millis(1_796_414_400_000).expect("in range");
        let cases = [(3 * 86_400 - 2, "in 3 days"), (12 * 3_600 - 1, "in 12 hours"), (30 * 60 - 3, "in 30 minutes")];
        for (seconds, expected) in cases {
            assert_eq!(relative(add_seconds(now, seconds).expect("in range"), now), expected, "{seconds}");
        }
    }

    #[test]
    fn display_is_minute_precision() {
        let now = from_millis(1_764_878_824_000).expect("in range");
        assert_eq!(to_display(now), "2025-12-04 20:07 UTC");
    }
}
