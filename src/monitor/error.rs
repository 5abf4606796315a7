use thiserror::Error;

use super::model::Situation;

/// What went wrong in the monitor store, by how to handle it.
#[derive(Debug, Error)]
pub enum MonitorError {
    /// The database could not be reached, is busy, or a transaction lost a race: try again.
    #[error("the monitor store is unavailable: {0}")]
    Unavailable(String),
    /// No message with this UUID is recorded.
    #[error("no message with UUID {uuid} is recorded in the monitor")]
    UnknownMessage { uuid: String },
    /// The operation does not fit the delivery's situation (conflict: look, then decide).
    #[error(
        "the delivery of {uuid} along route {route} is {situation} and cannot be {operation}",
        situation = situation.map_or("not recorded", Situation::label)
    )]
    NotAllowed {
        uuid: String,
        route: String,
        situation: Option<Situation>,
        operation: &'static str,
    },
    /// The database refused the statement or holds a value the store does not know: retrying
    /// will not help.
    #[error("the monitor store failed: {0}")]
    Database(String),
}

impl MonitorError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, MonitorError::Unavailable(_))
    }

    pub(crate) fn corrupt(column: &str, value: &str) -> MonitorError {
        MonitorError::Database(format!(
            "the stored {column} {value:?} is not one the monitor knows"
        ))
    }
}

impl From<sqlx::Error> for MonitorError {
    fn from(error: sqlx::Error) -> MonitorError {
        let retryable = match &error {
            sqlx::Error::Database(e) => {
                let code = e.code();
                let code = code.as_deref().unwrap_or("");
                // SQLite: 5 busy, 6 locked (and their extended codes, which end in them mod 256);
                // PostgreSQL: serialization failure, deadlock, too many connections, shutdown.
                let sqlite_busy = code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
                sqlite_busy || matches!(code, "40001" | "40P01" | "53300" | "57P01" | "57P03")
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            _ => false,
        };
        if retryable {
            MonitorError::Unavailable(error.to_string())
        } else {
            MonitorError::Database(error.to_string())
        }
    }
}
