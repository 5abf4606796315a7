//! Operations on the log: redrive the dead-letter queue with a loop guard (replay of a window and
//! the projection rebuild come here too); `runs` records them in the sync logs.

pub mod dlq;
pub mod runs;

use thiserror::Error;

use crate::log::LogError;
use crate::monitor::MonitorError;

/// Why an operation could not run. Per-message outcomes (a letter refused again, a delivery that
/// may not be reprocessed) are not errors: they are reported in the operation's result.
#[derive(Debug, Error)]
pub enum OpsError {
    /// The event log could not be read or written: retryable when the log says so.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The monitor store could not be read or written.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// A `--since` the operator wrote that is neither a duration nor a time.
    #[error(
        "{0:?} is not a time: write a duration back from now (90s, 30m, 24h, 7d), a date \
         (2024-05-07) or an RFC 3339 time (2024-05-07T09:00:00Z)"
    )]
    Since(String),
}

impl OpsError {
    pub fn is_retryable(&self) -> bool {
        match self {
            OpsError::Log(e) => e.is_retryable(),
            OpsError::Monitor(e) => e.is_retryable(),
            OpsError::Since(_) => false,
        }
    }
}

/// Reads a `--since`: a duration back from `now_ms` (`90s`, `30m`, `24h`, `7d`), a date
/// (`2024-05-07`, midnight UTC), an RFC 3339 time, or milliseconds since the Unix epoch.
/// Returns milliseconds since the Unix epoch.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, OpsError> {
    let text = text.trim();
    let invalid = || OpsError::Since(text.to_owned());
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic) {
        let number = &text[..text.len() - unit.len_utf8()];
        if let Ok(amount) = number.trim().parse::<i64>() {
            let unit_ms: i64 = match unit.to_ascii_lowercase() {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => return Err(invalid()),
            };
            if amount < 0 {
                return Err(invalid());
            }
            return Ok(now_ms.saturating_sub(amount.saturating_mul(unit_ms)));
        }
    }
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(invalid);
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_dates_and_times() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_since("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_since("30m", now).unwrap(), now - 1_800_000);
        assert_eq!(parse_since("90s", now).unwrap(), now - 90_000);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(
            parse_since("2024-05-07", now).unwrap(),
            parse_since("2024-05-07T00:00:00Z", now).unwrap()
        );
        assert_eq!(
            parse_since("2024-05-07T09:00:00-03:00", now).unwrap(),
            parse_since("2024-05-07T12:00:00Z", now).unwrap()
        );
        assert_eq!(parse_since("1700000000000", now).unwrap(), now);
        for bad in ["", "yesterday", "5w", "-3h", "2024-13-01"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
