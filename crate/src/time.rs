//! Timestamps: the host's clock reading in, RFC 3339 for MAS, readable text for people.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

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
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
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
    fn display_is_minute_precision() {
        let now = from_millis(1_764_878_824_000).expect("in range");
        assert_eq!(to_display(now), "2025-12-04 20:07 UTC");
    }
}
