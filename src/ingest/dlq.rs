//! The dead-letter queue `eai.dlq`: every refused or permanently failed message, with why, where
//! and when, so nothing is dropped silently and an operator can redrive it.

use crate::log::{EventLog, LogError, NewRecord, Position};

/// Where a dead letter came from: the endpoint it was posted to, or a log position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub uuid: String,
    pub transaction: String,
    pub key: Option<String>,
    pub reason: String,
    /// The stage that refused it: decode, validate, route, map, deliver.
    pub stage: String,
    /// `rest:/totvseai/...`, `soap:/EAISERVICE.apw`, or `topic/partition/offset`.
    pub origin: String,
    pub attempts: u32,
    /// Milliseconds since the Unix epoch.
    pub first_seen_ms: i64,
    /// How many times it has been redriven already.
    pub replays: u32,
    /// The payload as received (or as last delivered).
    pub payload: Vec<u8>,
}

impl DeadLetter {
    pub fn to_record(&self, topic: &str) -> NewRecord {
        NewRecord {
            topic: topic.to_owned(),
            key: self.key.as_ref().map(|k| k.as_bytes().to_vec()),
            headers: Vec::new(),
            payload: self.payload.clone(),
        }
        .header("uuid", &self.uuid)
        .header("transaction", &self.transaction)
        .header("reason", &self.reason)
        .header("stage", &self.stage)
        .header("origin", &self.origin)
        .header("attempts", self.attempts.to_string())
        .header("first-seen", self.first_seen_ms.to_string())
        .header("replays", self.replays.to_string())
    }

    pub fn from_record(record: &crate::log::Record) -> DeadLetter {
        let text = |name: &str| record.header(name).unwrap_or_default().to_owned();
        DeadLetter {
            uuid: text("uuid"),
            transaction: text("transaction"),
            key: record.key_str().map(str::to_owned),
            reason: text("reason"),
            stage: text("stage"),
            origin: text("origin"),
            attempts: text("attempts").parse().unwrap_or(0),
            first_seen_ms: text("first-seen").parse().unwrap_or(record.timestamp_ms),
            replays: text("replays").parse().unwrap_or(0),
            payload: record.payload.clone(),
        }
    }
}

pub async fn send(
    log: &dyn EventLog,
    topic: &str,
    letter: &DeadLetter,
) -> Result<Position, LogError> {
    let mut positions = log.append(vec![letter.to_record(topic)]).await?;
    positions
        .pop()
        .ok_or_else(|| LogError::Unavailable("the log returned no position".into()))
}
