//! The embedded event log: one SQLite file, the default backend, needing no server.
//!
//! - Durability: WAL journal with `synchronous=FULL`, so every COMMIT fsyncs the WAL before it
//!   returns; `append` answers only after the COMMIT of the transaction holding its records.
//!   (`NORMAL` would only sync at checkpoints and can lose the last commits on power loss.)
//! - Group commit: every write (append, topic creation, offset commit) goes through one writer
//!   task ([`writer`]) that takes whatever is queued and writes it in one transaction, so one
//!   fsync serves many concurrent appends.
//! - Partitions: a keyed record goes to Kafka's murmur2 partition of its key
//!   ([`super::partitioner`]), the same as the Kafka backend; keyless records go round-robin.
//!   Offsets count from 0 per partition; timestamps never go backwards within a partition (a
//!   clock step back reuses the last timestamp) so a time lookup is a simple index search.
//! - Consumer groups are coordinated in this process ([`group`]): open one `EmbeddedLog` per
//!   file and clone it; two `EmbeddedLog`s on one file do not share group membership.

mod group;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Consumer, EventLog, LogError, NewRecord, Position, Record};
use group::{Coordinator, EmbeddedConsumer};
use writer::WriteRequest;

/// The settings of the embedded log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The SQLite file; created with its directory when missing.
    pub path: PathBuf,
    /// The most records one `poll` returns.
    #[serde(default = "default_max_poll_records")]
    pub max_poll_records: usize,
    /// How long a write waits for a lock held by another process before it fails (retryable).
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

fn default_max_poll_records() -> usize {
    500
}

fn default_busy_timeout_ms() -> u64 {
    5_000
}

impl EmbeddedConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            path: path.into(),
            max_poll_records: default_max_poll_records(),
            busy_timeout_ms: default_busy_timeout_ms(),
        }
    }
}

const CREATE_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS log_topics (
        name TEXT PRIMARY KEY,
        partitions INTEGER NOT NULL CHECK (partitions > 0)
    )",
    // A rowid table (not WITHOUT ROWID): payloads are whole messages, often several KiB.
    "CREATE TABLE IF NOT EXISTS log_records (
        topic TEXT NOT NULL,
        partition_no INTEGER NOT NULL,
        record_offset INTEGER NOT NULL,
        record_key BLOB,
        headers BLOB NOT NULL,
        payload BLOB NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        PRIMARY KEY (topic, partition_no, record_offset)
    )",
    "CREATE INDEX IF NOT EXISTS log_records_by_time
        ON log_records (topic, partition_no, timestamp_ms, record_offset)",
    "CREATE TABLE IF NOT EXISTS log_group_offsets (
        group_name TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition_no INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (group_name, topic, partition_no)
    )",
];

/// The lowest possible end (next offset) of each partition, from commits and reads. An end only
/// grows, so merging by maximum is right whatever order the writer and readers report in.
#[derive(Default)]
pub(crate) struct EndOffsets {
    ends: std::sync::Mutex<HashMap<(String, i32), i64>>,
}

impl EndOffsets {
    pub(crate) fn advance(&self, topic: &str, partition: i32, end: i64) {
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        match ends.get_mut(&(topic.to_owned(), partition)) {
            Some(known) => *known = (*known).max(end),
            None => {
                ends.insert((topic.to_owned(), partition), end);
            }
        }
    }

    /// True when nothing at or after `offset` can be there (the end is known and not beyond).
    pub(crate) fn nothing_from(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        ends.get(&(topic.to_owned(), partition))
            .is_some_and(|end| *end <= offset)
    }
}

/// The embedded log. Cheap to clone; clones share the file, the writer and the consumer groups.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Readers; the writer task has its own connection.
    pool: SqlitePool,
    writes: mpsc::Sender<WriteRequest>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Bumped after every transaction that appended records; consumers wait on it.
    appended: watch::Sender<u64>,
    /// What is known of each partition's end, so that a woken consumer reads only the
    /// partitions that grew instead of querying every one of them.
    ends: Arc<EndOffsets>,
    groups: Coordinator,
    max_poll_records: usize,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Rows a reading connection may hand over ahead of the reader.
const READ_ROW_BUFFER: usize = 1024;

impl EmbeddedLog {
    /// Opens (or creates) the log in the SQLite file at `path` with default settings.
    pub async fn open(path: impl AsRef<Path>) -> Result<EmbeddedLog, LogError> {
        EmbeddedLog::open_with(EmbeddedConfig::new(path.as_ref())).await
    }

    /// Opens (or creates) the log described by `config`.
    pub async fn open_with(config: EmbeddedConfig) -> Result<EmbeddedLog, LogError> {
        let path = config.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                LogError::Unavailable(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| db_error("configure the log file", e))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_millis(config.busy_timeout_ms));
        let mut writer_connection = options
            .connect()
            .await
            .map_err(|e| db_error(&format!("open the log file {}", path.display()), e))?;
        for statement in CREATE_TABLES {
            sqlx::query(*statement)
                .execute(&mut writer_connection)
                .await
                .map_err(|e| db_error("create the log tables", e))?;
        }
        // Readers map the file instead of copying each page through `pread`: a consumer or a
        // rebuild reads the log end to end. The database thread hands a reader its rows through
        // a channel; a deeper one lets it run ahead instead of waiting for the reader every 50.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                options
                    .pragma("mmap_size", "1073741824")
                    .row_buffer_size(READ_ROW_BUFFER),
            )
            .await
            .map_err(|e| db_error("open the log file", e))?;

        let (writes, queue) = mpsc::channel(writer::QUEUE_CAPACITY);
        let (appended, _) = watch::channel(0);
        let ends = Arc::new(EndOffsets::default());
        let task = tokio::spawn(writer::run(
            writer_connection,
            queue,
            appended.clone(),
            ends.clone(),
        ));
        tracing::info!(path = %path.display(), "Opened the embedded event log.");
        Ok(EmbeddedLog {
            inner: Arc::new(Inner {
                path,
                pool,
                writes,
                writer: Mutex::new(Some(task)),
                appended,
                ends,
                groups: Coordinator::default(),
                max_poll_records: config.max_poll_records.max(1),
            }),
        })
    }

    /// The file this log lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Finishes the queued writes and closes the file. Later calls on any clone fail as
    /// `Unavailable`. Dropping every clone also stops the writer, without waiting for it.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .writes
            .send(WriteRequest::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        let task = self
            .inner
            .writer
            .lock()
            .map(|mut t| t.take())
            .ok()
            .flatten();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.pool.close().await;
    }

    async fn write<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, LogError>>) -> WriteRequest,
    ) -> Result<T, LogError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writes
            .send(request(reply))
            .await
            .map_err(|_| LogError::Unavailable("the embedded log is closed".into()))?;
        answer.await.map_err(|_| {
            LogError::Unavailable("the embedded log writer stopped before answering".into())
        })?
    }

    /// Stores a group's next offset for each partition (durable when it returns): queued
    /// together, so the writer stores them in one transaction.
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Vec<Result<(), LogError>> {
        let mut answers = Vec::with_capacity(offsets.len());
        for (topic, partition, next_offset) in offsets {
            let (reply, answer) = oneshot::channel();
            let request = WriteRequest::Commit {
                group: group.to_owned(),
                topic: topic.clone(),
                partition: *partition,
                next_offset: *next_offset,
                reply,
            };
            let sent = self.inner.writes.send(request).await;
            answers.push(sent.map(|()| answer));
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            let closed = || LogError::Unavailable("the embedded log is closed".into());
            results.push(match answer {
                Ok(answer) => answer.await.unwrap_or_else(|_| Err(closed())),
                Err(_) => Err(closed()),
            });
        }
        results
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        let row = sqlx::query("SELECT partitions FROM log_topics WHERE name = ?")
            .bind(topic)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| db_error("read a topic", e))?;
        match row {
            Some(row) => row
                .try_get::<i32, _>(0)
                .map_err(|e| db_error("read a topic", e)),
            None => Err(unknown_topic(topic)),
        }
    }

    async fn check_partition(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let count = self.partition_count(topic).await?;
        if (0..count).contains(&partition) {
            Ok(())
        } else {
            Err(LogError::Refused(format!(
                "topic {topic} has no partition {partition} (it has {count})"
            )))
        }
    }

    async fn next_offset(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT record_offset FROM log_records WHERE topic = ? AND partition_no = ?
             ORDER BY record_offset DESC LIMIT 1",
        )
        .bind(topic)
        .bind(partition)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| db_error("read the end offset", e))?;
        Ok(last.map_or(0, |o| o + 1))
    }

    async fn read_unchecked(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let rows = sqlx::query(
            "SELECT record_offset, record_key, headers, payload, timestamp_ms FROM log_records
             WHERE topic = ? AND partition_no = ? AND record_offset >= ?
             ORDER BY record_offset LIMIT ?",
        )
        .bind(topic)
        .bind(partition)
        .bind(offset)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| db_error("read records", e))?;
        // An empty read says the end was at `offset` when it ran; a full one, past its last.
        let seen_end = match rows.last() {
            Some(row) => row.try_get::<i64, _>(0).map_or(offset, |last| last + 1),
            None => offset,
        };
        self.inner.ends.advance(topic, partition, seen_end);
        rows.iter()
            .map(|row| {
                let headers: Vec<u8> = row.try_get(2).map_err(|e| db_error("read records", e))?;
                Ok(Record {
                    topic: topic.to_owned(),
                    partition,
                    offset: row.try_get(0).map_err(|e| db_error("read records", e))?,
                    key: row.try_get(1).map_err(|e| db_error("read records", e))?,
                    headers: decode_headers(&headers)?,
                    payload: row.try_get(3).map_err(|e| db_error("read records", e))?,
                    timestamp_ms: row.try_get(4).map_err(|e| db_error("read records", e))?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError> {
        if topic.is_empty() || partitions < 1 {
            return Err(LogError::Refused(format!(
                "a topic needs a name and at least one partition (got {topic:?}, {partitions})"
            )));
        }
        self.write(|reply| WriteRequest::EnsureTopic {
            topic: topic.to_owned(),
            partitions,
            reply,
        })
        .await
    }

    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|reply| WriteRequest::Append { records, reply })
            .await
    }

    async fn partitions(&self, topic: &str) -> Result<Vec<i32>, LogError> {
        Ok((0..self.partition_count(topic).await?).collect())
    }

    async fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        self.check_partition(topic, partition).await?;
        self.next_offset(topic, partition).await
    }

    async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, LogError> {
        self.check_partition(topic, partition).await?;
        // Timestamps are non-decreasing within a partition, so the first by time is the first
        // by offset.
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT record_offset FROM log_records
             WHERE topic = ? AND partition_no = ? AND timestamp_ms >= ?
             ORDER BY timestamp_ms, record_offset LIMIT 1",
        )
        .bind(topic)
        .bind(partition)
        .bind(timestamp_ms)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| db_error("look up an offset by time", e))?;
        match found {
            Some(offset) => Ok(offset),
            None => self.next_offset(topic, partition).await,
        }
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        self.check_partition(topic, partition).await?;
        self.read_unchecked(topic, partition, offset, max).await
    }

    async fn read_payloads(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, LogError> {
        self.check_partition(topic, partition).await?;
        let rows = sqlx::query(
            "SELECT record_offset, payload FROM log_records
             WHERE topic = ? AND partition_no = ? AND record_offset >= ?
             ORDER BY record_offset LIMIT ?",
        )
        .bind(topic)
        .bind(partition)
        .bind(offset)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| db_error("read records", e))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(|e| db_error("read records", e))?,
                    row.try_get(1).map_err(|e| db_error("read records", e))?,
                ))
            })
            .collect()
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, LogError> {
        if topics.is_empty() {
            return Err(LogError::Refused(
                "a consumer needs at least one topic".into(),
            ));
        }
        let mut subscribed: Vec<(String, i32)> = Vec::with_capacity(topics.len());
        for topic in topics {
            if !subscribed.iter().any(|(t, _)| t == topic) {
                subscribed.push((topic.clone(), self.partition_count(topic).await?));
            }
        }
        let consumer = EmbeddedConsumer::join(self.clone(), group, subscribed);
        Ok(Box::new(consumer))
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, LogError> {
        sqlx::query_scalar(
            "SELECT next_offset FROM log_group_offsets
             WHERE group_name = ? AND topic = ? AND partition_no = ?",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| db_error("read a committed offset", e))
    }
}

fn unknown_topic(topic: &str) -> LogError {
    LogError::Refused(format!("the topic {topic} does not exist"))
}

/// Constraint violations and corrupt files will fail again; everything else (busy, I/O, a
/// closed pool) may pass on a retry.
fn db_error(operation: &str, error: sqlx::Error) -> LogError {
    let permanent = match &error {
        sqlx::Error::Database(e) => !matches!(e.kind(), sqlx::error::ErrorKind::Other),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    };
    let message = format!("cannot {operation} in the embedded log: {error}");
    if permanent {
        LogError::Refused(message)
    } else {
        LogError::Unavailable(message)
    }
}

/// Headers as one blob: a u32 count, then per header a u32 length and the name, a u32 length
/// and the value (little endian). A separate table would cost a row per header per record.
fn encode_headers(headers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size = 4 + headers
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn decode_headers(mut bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, LogError> {
    fn corrupt() -> LogError {
        LogError::Refused("the embedded log holds corrupt record headers".into())
    }
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], LogError> {
        if bytes.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn length(bytes: &mut &[u8]) -> Result<usize, LogError> {
        let raw = take(bytes, 4)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    }
    let count = length(&mut bytes)?;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = length(&mut bytes)?;
        let name = String::from_utf8(take(&mut bytes, n)?.to_vec()).map_err(|_| corrupt())?;
        let n = length(&mut bytes)?;
        headers.push((name, take(&mut bytes, n)?.to_vec()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let headers = vec![
            ("uuid".to_owned(), b"1234".to_vec()),
            ("empty".to_owned(), Vec::new()),
            ("bin".to_owned(), vec![0, 255, 7]),
        ];
        assert_eq!(decode_headers(&encode_headers(&headers)).unwrap(), headers);
        assert_eq!(decode_headers(&encode_headers(&[])).unwrap(), vec![]);
        assert!(decode_headers(&[1, 0, 0, 0, 9]).is_err());
    }

    /// Group commit: concurrent single-record appends share transactions (and fsyncs).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_batched() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path().join("log.sqlite"))
            .await
            .unwrap();
        log.ensure_topic("t", 4).await.unwrap();
        let started = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..100 {
            let log = log.clone();
            tasks.spawn(async move {
                for i in 0..40 {
                    let key = format!("k{task}");
                    let record = NewRecord::new("t", Some(key.as_str()), format!("{i}"));
                    log.append(vec![record]).await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let elapsed = started.elapsed();
        let mut total = 0;
        for p in 0..4 {
            total += log.end_offset("t", p).await.unwrap();
        }
        assert_eq!(total, 4_000);
        eprintln!(
            "4000 durable single-record appends from 100 tasks in {elapsed:?} ({:.0}/s)",
            4_000.0 / elapsed.as_secs_f64()
        );
        log.close().await;
        assert!(
            log.append(vec![NewRecord::new("t", None, "late")])
                .await
                .is_err()
        );
    }
}
