//! The event log: topics of keyed records with offsets, consumer groups with committed offsets,
//! seek by offset or time. Two backends implement it and pass one contract suite: an embedded
//! SQLite file (the default, no server) and Kafka (rdkafka, any Kafka-protocol broker).

pub mod embedded;
pub mod kafka;
pub mod partitioner;

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

/// A record to append. The key decides the partition, so one key's records stay in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl NewRecord {
    pub fn new(topic: impl Into<String>, key: Option<&str>, payload: impl Into<Vec<u8>>) -> Self {
        NewRecord {
            topic: topic.into(),
            key: key.map(|k| k.as_bytes().to_vec()),
            headers: Vec::new(),
            payload: payload.into(),
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub payload: Vec<u8>,
    /// Milliseconds since the Unix epoch, set when the record was appended.
    pub timestamp_ms: i64,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }
}

/// Where a record is: topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Error)]
pub enum LogError {
    /// The broker or file could not be reached or answered with a transient error: try again.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// A request the log refuses (unknown topic, bad partition, record too large): do not retry.
    #[error("the event log refused the request: {0}")]
    Refused(String),
}

impl LogError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable(_))
    }
}

/// An append-only, partitioned log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Creates a topic with `partitions` partitions if it does not exist.
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError>;

    /// Appends records; when it returns Ok they are durable (fsynced file, or acknowledged by all
    /// in-sync replicas), and the positions are returned in the same order.
    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError>;

    /// The partitions of a topic.
    async fn partitions(&self, topic: &str) -> Result<Vec<i32>, LogError>;

    /// The offset the next appended record of a partition will get.
    async fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, LogError>;

    /// The first offset whose record was appended at or after `timestamp_ms`, or the end offset.
    async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, LogError>;

    /// Reads up to `max` records of one partition from `offset` on, without a consumer group.
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>, LogError>;

    /// As [`EventLog::read`], the offsets and payloads only: for a reader that needs nothing
    /// else (a rebuild reads millions), so a log can skip keys and headers.
    async fn read_payloads(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, LogError> {
        Ok(self
            .read(topic, partition, offset, max)
            .await?
            .into_iter()
            .map(|r| (r.offset, r.payload))
            .collect())
    }

    /// Joins consumer group `group` on `topics`. Members of one group share the partitions; a new
    /// member starts at the group's committed offsets (or the earliest offset when none).
    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, LogError>;

    /// The committed offset of a group for a partition, if any.
    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, LogError>;
}

/// One member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// The next records of the partitions assigned to this member, waiting up to `timeout`.
    async fn poll(&mut self, timeout: Duration) -> Result<Vec<Record>, LogError>;

    /// Commits: the group will resume after `position` (at `position.offset + 1`).
    async fn commit(&mut self, position: &Position) -> Result<(), LogError>;

    /// [`Consumer::commit`] of several partitions (one position each), written together where
    /// the log can; a result per position, in order.
    async fn commit_all(&mut self, positions: &[Position]) -> Vec<Result<(), LogError>> {
        let mut results = Vec::with_capacity(positions.len());
        for position in positions {
            results.push(self.commit(position).await);
        }
        results
    }

    /// Moves this member's read position (not the committed offset) of one partition.
    async fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), LogError>;

    /// The partitions currently assigned to this member.
    fn assignment(&self) -> Vec<(String, i32)>;
}
