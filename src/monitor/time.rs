//! Times are stored as integer milliseconds since the Unix epoch (one type on both databases, no
//! time zone in the data); these helpers make them and show them.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Utc};

/// Brasília time (UTC−03:00; Brazil has had no daylight saving time since 2019).
pub const BRASILIA_OFFSET_MINUTES: i32 = -180;

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2024-05-01T12:00:00.123Z`.
pub fn format_utc(millis: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(millis) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => millis.to_string(),
    }
}

/// `01/05/2024 09:00:00` at the given offset from UTC, the way the Protheus monitor shows dates.
pub fn format_local(millis: i64, offset_minutes: i32) -> String {
    let offset = FixedOffset::east_opt(offset_minutes.saturating_mul(60))
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC is a valid offset"));
    match DateTime::<Utc>::from_timestamp_millis(millis) {
        Some(t) => t
            .with_timezone(&offset)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string(),
        None => millis.to_string(),
    }
}

/// [`format_local`] in Brasília time.
pub fn format_brasilia(millis: i64) -> String {
    format_local(millis, BRASILIA_OFFSET_MINUTES)
}

/// Parses an RFC 3339 time (`2024-05-01T09:00:00-03:00`) into milliseconds, for filters.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = parse_rfc3339("2024-05-01T09:00:00.250-03:00").unwrap();
        assert_eq!(format_utc(t), "2024-05-01T12:00:00.250Z");
        assert_eq!(format_brasilia(t), "01/05/2024 09:00:00");
        assert_eq!(format_local(t, 0), "01/05/2024 12:00:00");
        assert!(now_millis() > t);
    }
}
