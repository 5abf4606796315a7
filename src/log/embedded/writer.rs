//! The one writer of the embedded log: group commit. It takes every request queued while the
//! previous transaction was being synced and writes them all in one transaction, so one fsync
//! serves many appends; each caller is answered only after that COMMIT.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot, watch};

use super::{EndOffsets, db_error, encode_headers, unknown_topic};
use crate::log::partitioner::partition_for_key;
use crate::log::{LogError, NewRecord, Position};

/// Requests waiting for the writer; a full queue makes callers wait (back-pressure).
pub(super) const QUEUE_CAPACITY: usize = 4_096;
/// Bounds on one transaction, so one huge batch does not delay everyone's answer.
const MAX_BATCH_REQUESTS: usize = 2_048;
const MAX_BATCH_RECORDS: usize = 20_000;

type Reply<T> = oneshot::Sender<Result<T, LogError>>;

pub(super) enum WriteRequest {
    EnsureTopic {
        topic: String,
        partitions: i32,
        reply: Reply<()>,
    },
    Append {
        records: Vec<NewRecord>,
        reply: Reply<Vec<Position>>,
    },
    Commit {
        group: String,
        topic: String,
        partition: i32,
        next_offset: i64,
        reply: Reply<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

impl WriteRequest {
    fn records(&self) -> usize {
        match self {
            WriteRequest::Append { records, .. } => records.len(),
            _ => 1,
        }
    }
}

/// What a request produced, held until the transaction commits.
enum Outcome {
    Done,
    Appended(Vec<Position>),
    Failed(LogError),
}

#[derive(Default)]
struct WriterState {
    /// Partition counts of known topics. Topics are never deleted and never change their
    /// partition count, so the cache only needs filling on a miss.
    topics: HashMap<String, i32>,
    /// Next partition for keyless records, per topic.
    round_robin: HashMap<String, i32>,
    /// The tail of each partition written to, kept between transactions: this task is the
    /// process's only writer. Cleared when a transaction fails or another process wrote.
    tails: HashMap<(String, i32), Tail>,
    /// SQLite's `data_version` when the tails were last right: it changes when another
    /// connection (the command line redriving a letter, say) commits to the file.
    data_version: Option<i64>,
}

/// The tail of one partition as seen inside the current transaction.
struct Tail {
    next_offset: i64,
    last_timestamp_ms: i64,
}

pub(super) async fn run(
    mut connection: SqliteConnection,
    mut queue: mpsc::Receiver<WriteRequest>,
    appended: watch::Sender<u64>,
    ends: Arc<EndOffsets>,
) {
    let mut state = WriterState::default();
    while let Some(first) = queue.recv().await {
        let mut records = first.records();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_REQUESTS && records < MAX_BATCH_RECORDS {
            match queue.try_recv() {
                Ok(request) => {
                    records += request.records();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        let mut shutdown = None;
        let mut writes = Vec::with_capacity(batch.len());
        for request in batch {
            match request {
                WriteRequest::Shutdown { reply } => shutdown = Some(reply),
                write => writes.push(write),
            }
        }
        tracing::trace!(
            requests = writes.len(),
            records,
            "The embedded log writes a batch."
        );
        if !writes.is_empty() {
            write_batch(&mut connection, &mut state, writes, &appended, &ends).await;
        }
        if let Some(reply) = shutdown {
            queue.close();
            // Answer whatever slipped in before the queue closed.
            while let Ok(request) = queue.try_recv() {
                fail(request, || {
                    LogError::Unavailable("the embedded log is closed".into())
                });
            }
            let _ = connection.close().await;
            let _ = reply.send(());
            tracing::info!("Closed the embedded event log.");
            return;
        }
    }
    let _ = connection.close().await;
}

async fn write_batch(
    connection: &mut SqliteConnection,
    state: &mut WriterState,
    batch: Vec<WriteRequest>,
    appended: &watch::Sender<u64>,
    ends: &EndOffsets,
) {
    match try_write_batch(connection, state, &batch).await {
        Ok(outcomes) => {
            let mut any_appended = false;
            for (request, outcome) in batch.into_iter().zip(outcomes) {
                if let Outcome::Appended(positions) = &outcome {
                    any_appended = true;
                    for p in positions {
                        ends.advance(&p.topic, p.partition, p.offset + 1);
                    }
                }
                answer(request, outcome);
            }
            if any_appended {
                appended.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
        Err(error) => {
            // The transaction rolled back: the caches may name topics that were not created
            // and tails that were not written.
            state.topics.clear();
            state.tails.clear();
            tracing::error!(error = %error, requests = batch.len(), "The embedded log could not write a batch.");
            for request in batch {
                fail(request, || copy_error(&error));
            }
        }
    }
}

async fn try_write_batch(
    connection: &mut SqliteConnection,
    state: &mut WriterState,
    batch: &[WriteRequest],
) -> Result<Vec<Outcome>, LogError> {
    // IMMEDIATE takes the write lock up front, so the tails read below cannot change under us
    // even if another process writes to the same file.
    let mut tx = connection
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| db_error("start a write", e))?;
    let version: i64 = sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("read the file's version", e))?;
    if state.data_version != Some(version) {
        state.tails.clear();
        state.topics.clear();
        state.data_version = Some(version);
    }
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    // The batch's records, written together at the end: one statement for many records
    // instead of one each (each statement is a round trip to the connection's thread).
    let mut rows = Vec::new();
    for request in batch {
        let outcome = match request {
            WriteRequest::EnsureTopic {
                topic, partitions, ..
            } => ensure_topic(&mut tx, state, topic, *partitions).await?,
            WriteRequest::Append { records, .. } => {
                append(&mut tx, state, records, now, &mut rows).await?
            }
            WriteRequest::Commit {
                group,
                topic,
                partition,
                next_offset,
                ..
            } => commit(&mut tx, state, group, topic, *partition, *next_offset).await?,
            WriteRequest::Shutdown { .. } => Outcome::Done,
        };
        outcomes.push(outcome);
    }
    insert_rows(&mut tx, &rows).await?;
    tx.commit()
        .await
        .map_err(|e| db_error("commit a write", e))?;
    Ok(outcomes)
}

/// A record placed in its partition, waiting for the batch's insert.
struct PlacedRecord<'a> {
    record: &'a NewRecord,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
}

/// Records per INSERT: 7 values each, well under SQLite's 32,766 bound values.
const RECORDS_PER_INSERT: usize = 2_000;

async fn insert_rows(tx: &mut SqliteConnection, rows: &[PlacedRecord<'_>]) -> Result<(), LogError> {
    for chunk in rows.chunks(RECORDS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO log_records
             (topic, partition_no, record_offset, record_key, headers, payload, timestamp_ms) ",
        );
        insert.push_values(chunk, |mut row, placed| {
            row.push_bind(placed.record.topic.as_str())
                .push_bind(placed.partition)
                .push_bind(placed.offset)
                .push_bind(placed.record.key.as_deref())
                .push_bind(encode_headers(&placed.record.headers))
                .push_bind(placed.record.payload.as_slice())
                .push_bind(placed.timestamp_ms);
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error("append records", e))?;
    }
    Ok(())
}

async fn topic_partitions(
    tx: &mut SqliteConnection,
    state: &mut WriterState,
    topic: &str,
) -> Result<Option<i32>, LogError> {
    if let Some(count) = state.topics.get(topic) {
        return Ok(Some(*count));
    }
    let count: Option<i32> = sqlx::query_scalar("SELECT partitions FROM log_topics WHERE name = ?")
        .bind(topic)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_error("read a topic", e))?;
    if let Some(count) = count {
        state.topics.insert(topic.to_owned(), count);
    }
    Ok(count)
}

async fn ensure_topic(
    tx: &mut SqliteConnection,
    state: &mut WriterState,
    topic: &str,
    partitions: i32,
) -> Result<Outcome, LogError> {
    if let Some(existing) = topic_partitions(tx, state, topic).await? {
        if existing != partitions {
            tracing::warn!(
                topic,
                existing,
                requested = partitions,
                "The topic already exists with another partition count; keeping it."
            );
        }
        return Ok(Outcome::Done);
    }
    sqlx::query("INSERT INTO log_topics (name, partitions) VALUES (?, ?)")
        .bind(topic)
        .bind(partitions)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error("create a topic", e))?;
    state.topics.insert(topic.to_owned(), partitions);
    tracing::info!(topic, partitions, "Created a topic in the embedded log.");
    Ok(Outcome::Done)
}

async fn append<'a>(
    tx: &mut SqliteConnection,
    state: &mut WriterState,
    records: &'a [NewRecord],
    now: i64,
    rows: &mut Vec<PlacedRecord<'a>>,
) -> Result<Outcome, LogError> {
    // Choose every partition first, so a request with an unknown topic writes nothing.
    let mut targets = Vec::with_capacity(records.len());
    for record in records {
        let Some(count) = topic_partitions(tx, state, &record.topic).await? else {
            return Ok(Outcome::Failed(unknown_topic(&record.topic)));
        };
        let partition = match &record.key {
            Some(key) => partition_for_key(key, count),
            None => {
                let next = state.round_robin.entry(record.topic.clone()).or_insert(0);
                let partition = *next % count;
                *next = (partition + 1) % count;
                partition
            }
        };
        targets.push(partition);
    }
    let mut positions = Vec::with_capacity(records.len());
    for (record, partition) in records.iter().zip(targets) {
        let tail_key = (record.topic.clone(), partition);
        if !state.tails.contains_key(&tail_key) {
            // Not cached means nothing of this partition is waiting in `rows` either.
            let tail = read_tail(tx, &record.topic, partition).await?;
            state.tails.insert(tail_key.clone(), tail);
        }
        let Some(tail) = state.tails.get_mut(&tail_key) else {
            continue; // inserted just above
        };
        let offset = tail.next_offset;
        let timestamp_ms = now.max(tail.last_timestamp_ms);
        rows.push(PlacedRecord {
            record,
            partition,
            offset,
            timestamp_ms,
        });
        tail.next_offset += 1;
        tail.last_timestamp_ms = timestamp_ms;
        positions.push(Position {
            topic: record.topic.clone(),
            partition,
            offset,
        });
    }
    Ok(Outcome::Appended(positions))
}

async fn read_tail(
    tx: &mut SqliteConnection,
    topic: &str,
    partition: i32,
) -> Result<Tail, LogError> {
    let last: Option<(i64, i64)> = sqlx::query_as(
        "SELECT record_offset, timestamp_ms FROM log_records
         WHERE topic = ? AND partition_no = ? ORDER BY record_offset DESC LIMIT 1",
    )
    .bind(topic)
    .bind(partition)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db_error("read the end of a partition", e))?;
    Ok(match last {
        Some((offset, timestamp_ms)) => Tail {
            next_offset: offset + 1,
            last_timestamp_ms: timestamp_ms,
        },
        None => Tail {
            next_offset: 0,
            last_timestamp_ms: i64::MIN,
        },
    })
}

async fn commit(
    tx: &mut SqliteConnection,
    state: &mut WriterState,
    group: &str,
    topic: &str,
    partition: i32,
    next_offset: i64,
) -> Result<Outcome, LogError> {
    match topic_partitions(tx, state, topic).await? {
        None => return Ok(Outcome::Failed(unknown_topic(topic))),
        Some(count) if !(0..count).contains(&partition) => {
            return Ok(Outcome::Failed(LogError::Refused(format!(
                "topic {topic} has no partition {partition}"
            ))));
        }
        Some(_) => {}
    }
    sqlx::query(
        "INSERT INTO log_group_offsets (group_name, topic, partition_no, next_offset)
         VALUES (?, ?, ?, ?)
         ON CONFLICT (group_name, topic, partition_no) DO UPDATE SET next_offset = excluded.next_offset",
    )
    .bind(group)
    .bind(topic)
    .bind(partition)
    .bind(next_offset)
    .execute(&mut *tx)
    .await
    .map_err(|e| db_error("commit an offset", e))?;
    Ok(Outcome::Done)
}

fn answer(request: WriteRequest, outcome: Outcome) {
    match (request, outcome) {
        (WriteRequest::Append { reply, .. }, Outcome::Appended(positions)) => {
            let _ = reply.send(Ok(positions));
        }
        (request, Outcome::Failed(error)) => {
            let mut error = Some(error);
            fail(request, || {
                error
                    .take()
                    .unwrap_or_else(|| LogError::Unavailable("the write failed".into()))
            });
        }
        (WriteRequest::EnsureTopic { reply, .. } | WriteRequest::Commit { reply, .. }, _) => {
            let _ = reply.send(Ok(()));
        }
        (WriteRequest::Append { reply, .. }, Outcome::Done) => {
            let _ = reply.send(Ok(Vec::new()));
        }
        (WriteRequest::Shutdown { .. }, _) => {}
    }
}

fn fail(request: WriteRequest, mut error: impl FnMut() -> LogError) {
    match request {
        WriteRequest::EnsureTopic { reply, .. } | WriteRequest::Commit { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        WriteRequest::Append { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        WriteRequest::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}

/// `LogError` is not `Clone`; a batch failure reaches every caller of the batch with the same
/// kind and text.
fn copy_error(error: &LogError) -> LogError {
    match error {
        LogError::Unavailable(m) => LogError::Unavailable(m.clone()),
        LogError::Refused(m) => LogError::Refused(m.clone()),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
