//! The monitor store's batched writes (see `write_queue.rs`): many messages' writes in one
//! transaction, each kind in a few multi-row statements. Compiled once per database, like
//! `backend.rs`, whose single-write functions give the meaning these must keep: a batch leaves
//! the store as the same writes one after another would.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Pool, QueryBuilder, Row, Transaction};

use super::backend::{
    self, append_duplicate, opt_text, shorten, situation_of, stage_of, text, unknown,
};
use super::{Db, LOCK_MESSAGES, WRITER_HOLDS_FILE, begin};
use crate::monitor::error::MonitorError;
use crate::monitor::model::{
    DeliveryOutcome, DeliveryStart, NewMessage, Progress, Received, Situation, Stage,
    aggregate_situation,
};
use crate::monitor::write_queue::{
    AttemptWrite, Batch, DeliveredWrite, ProgressWrite, ReceivedWrite, StartWrite,
};

type Tx = Transaction<'static, Db>;

/// Rows per multi-row statement: well under SQLite's 32,766 bound values at 15 per row.
const ROWS_PER_STATEMENT: usize = 500;

/// Writes `batch` in one transaction and answers each write. If that transaction fails, each
/// write runs alone; writes that repeat an earlier one of the batch (same message, same
/// delivery) always run alone, after it.
pub(crate) async fn write_batch(pool: &Pool<Db>, batch: Batch, now: i64) {
    let Batch {
        received,
        progress,
        starts,
        attempts,
        delivered,
    } = batch;
    let (received, received_again) = split_repeats(received, |w| w.message.uuid.clone());
    let (progress, progress_again) = split_repeats(progress, |w| w.uuid.clone());
    let (starts, starts_again) = split_repeats(starts, |w| (w.uuid.clone(), w.route.clone()));
    let (attempts, attempts_again) = split_repeats(attempts, |w| (w.uuid.clone(), w.route.clone()));

    let writes = Writes {
        received: &received,
        progress: &progress,
        starts: &starts,
        attempts: &attempts,
        delivered: &delivered,
    };
    match apply(pool, writes, now).await {
        Ok(results) => {
            for (write, result) in received.into_iter().zip(results.received) {
                let _ = write.reply.send(result);
            }
            for (write, result) in progress.into_iter().zip(results.progress) {
                let _ = write.reply.send(result);
            }
            for (write, result) in starts.into_iter().zip(results.starts) {
                let _ = write.reply.send(result);
            }
            for (write, result) in attempts.into_iter().zip(results.attempts) {
                let _ = write.reply.send(result);
            }
            for (write, result) in delivered.into_iter().zip(results.delivered) {
                let _ = write.reply.send(Ok(result));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "A group of monitor writes failed; each is tried alone.");
            alone(pool, received, progress, starts, attempts, now).await;
            for w in delivered {
                let result = record_delivered(pool, &w.route, &w.delivered, now).await;
                let _ = w.reply.send(result);
            }
        }
    }
    alone(
        pool,
        received_again,
        progress_again,
        starts_again,
        attempts_again,
        now,
    )
    .await;
}

/// Keeps the first write of each key in order; the others come back apart.
fn split_repeats<W, K: std::hash::Hash + Eq>(
    writes: Vec<W>,
    key: impl Fn(&W) -> K,
) -> (Vec<W>, Vec<W>) {
    let mut seen = HashSet::with_capacity(writes.len());
    writes.into_iter().partition(|w| seen.insert(key(w)))
}

/// Each write in its own transaction, through the single-write functions.
async fn alone(
    pool: &Pool<Db>,
    received: Vec<ReceivedWrite>,
    progress: Vec<ProgressWrite>,
    starts: Vec<StartWrite>,
    attempts: Vec<AttemptWrite>,
    now: i64,
) {
    for w in received {
        let mut result = backend::record_received(pool, &w.message, now).await;
        if matches!(result, Ok(Received::New)) && !w.progress.is_empty() {
            let progress = backend::record_progress(pool, &w.message.uuid, &w.progress, now).await;
            result = progress.map(|()| Received::New);
        }
        let _ = w.reply.send(result);
    }
    for w in progress {
        let _ = w
            .reply
            .send(backend::record_progress(pool, &w.uuid, &w.progress, now).await);
    }
    for w in starts {
        let lease_until = now.saturating_add(w.lease_ms);
        let result = backend::start_delivery(pool, &w.uuid, &w.route, now, lease_until).await;
        let _ = w.reply.send(result);
    }
    for w in attempts {
        let result = if w.claimed {
            backend::record_attempt(pool, &w.uuid, &w.route, &w.outcome, now)
                .await
                .map(Some)
        } else {
            // The conditional upsert has no single-write twin: a group of one.
            let writes = Writes {
                attempts: std::slice::from_ref(&w),
                ..Writes::default()
            };
            match apply(pool, writes, now).await {
                Ok(mut results) => results.attempts.pop().unwrap_or(Ok(None)),
                Err(e) => Err(e),
            }
        };
        let _ = w.reply.send(result);
    }
}

/// The writes of one transaction.
#[derive(Default)]
struct Writes<'w> {
    received: &'w [ReceivedWrite],
    progress: &'w [ProgressWrite],
    starts: &'w [StartWrite],
    attempts: &'w [AttemptWrite],
    delivered: &'w [DeliveredWrite],
}

struct Results {
    received: Vec<Result<Received, MonitorError>>,
    progress: Vec<Result<(), MonitorError>>,
    starts: Vec<Result<DeliveryStart, MonitorError>>,
    attempts: Vec<Result<Option<i64>, MonitorError>>,
    delivered: Vec<Vec<String>>,
}

async fn apply(pool: &Pool<Db>, writes: Writes<'_>, now: i64) -> Result<Results, MonitorError> {
    let Writes {
        received,
        progress,
        starts,
        attempts,
        delivered,
    } = writes;
    let mut tx = begin(pool).await?;
    let mut named: Vec<&str> = progress
        .iter()
        .map(|w| w.uuid.as_str())
        .chain(starts.iter().map(|w| w.uuid.as_str()))
        .chain(attempts.iter().map(|w| w.uuid.as_str()))
        .chain(
            delivered
                .iter()
                .flat_map(|w| w.delivered.iter().map(|(u, _)| u.as_str())),
        )
        .collect();
    named.sort_unstable();
    named.dedup();
    let known = lock_messages(&mut tx, &named).await?;
    let mut timeline = Vec::new();
    // The messages whose situation their deliveries may decide, with the error to keep.
    let mut touched: BTreeMap<&str, Option<&str>> = BTreeMap::new();

    let received = insert_received(&mut tx, received, now, &mut timeline).await?;

    let mut progress_results = Vec::with_capacity(progress.len());
    let mut updates = Vec::new();
    for w in progress {
        if !known.contains(w.uuid.as_str()) {
            progress_results.push(Err(unknown(&w.uuid)));
            continue;
        }
        progress_results.push(Ok(()));
        updates.push((w.uuid.as_str(), &w.progress));
        timeline.extend(step_rows(&w.uuid, &w.progress));
        if w.progress.outcome.is_some() {
            touched.insert(&w.uuid, None);
        }
    }
    update_progress(&mut tx, &updates, now).await?;

    let starts = claim(&mut tx, starts, &known, now, &mut timeline).await?;
    for (w, result) in starts.iter().map(|(w, r)| (*w, r)) {
        if matches!(result, Ok(DeliveryStart::Started { .. })) {
            touched.entry(&w.uuid).or_insert(None);
        }
    }
    let attempts_done = record_outcomes(&mut tx, attempts, &known, now, &mut timeline).await?;
    for (w, result) in attempts.iter().zip(&attempts_done) {
        if matches!(result, Ok(Some(_))) {
            let error = touched.entry(&w.uuid).or_insert(None);
            if let Some(e) = w.outcome.error() {
                *error = Some(e);
            }
        }
    }

    let mut delivered_done = Vec::with_capacity(delivered.len());
    for w in delivered {
        let items = delivered_items(&w.delivered);
        let done = insert_deliveries(&mut tx, &w.route, &items, &known, now, now).await?;
        for &(uuid, response) in &done {
            touched.entry(uuid).or_insert(None);
            timeline.push(new_delivery_row(uuid, &w.route, response, now));
        }
        delivered_done.push(done.into_iter().map(|(u, _)| u.to_owned()).collect());
    }

    insert_timeline(&mut tx, &timeline).await?;
    refresh_aggregates(&mut tx, &touched, now).await?;
    tx.commit().await?;
    Ok(Results {
        received,
        progress: progress_results,
        starts: starts.into_iter().map(|(_, r)| r).collect(),
        attempts: attempts_done,
        delivered: delivered_done,
    })
}

/// The messages of `uuids` that exist. On PostgreSQL it locks their rows too, in UUID order,
/// so that two instances' batches take them in the same order (and one message's deliveries
/// update its aggregate one after another); SQLite's write transaction holds the whole file.
pub(super) async fn lock_messages<'u>(
    tx: &mut Tx,
    uuids: &[&'u str],
) -> Result<HashSet<&'u str>, MonitorError> {
    let mut known = HashSet::with_capacity(uuids.len());
    for chunk in uuids.chunks(ROWS_PER_STATEMENT) {
        if WRITER_HOLDS_FILE {
            // Usually every one exists: one number instead of a row each.
            let mut count =
                QueryBuilder::<Db>::new("SELECT COUNT(*) FROM monitor_messages WHERE uuid IN (");
            let mut list = count.separated(", ");
            for uuid in chunk {
                list.push_bind(text(uuid));
            }
            count.push(")");
            let found: i64 = count.build_query_scalar().fetch_one(&mut **tx).await?;
            if usize::try_from(found).is_ok_and(|n| n == chunk.len()) {
                known.extend(chunk.iter().copied());
                continue;
            }
        }
        let mut query =
            QueryBuilder::<Db>::new("SELECT uuid FROM monitor_messages WHERE uuid IN (");
        let mut list = query.separated(", ");
        for uuid in chunk {
            list.push_bind(text(uuid));
        }
        query.push(")").push(LOCK_MESSAGES);
        let found: HashSet<String> = query
            .build()
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        known.extend(chunk.iter().copied().filter(|u| found.contains(&text(u))));
    }
    Ok(known)
}

/// Runs `insert`, a multi-row `INSERT … ON CONFLICT DO NOTHING` into `table` of rows keyed
/// `keys` (distinct, and all of `route` when it is given), and gives the keys it inserted in
/// `text` form. Where the writer holds the file, a count of the keys already there comes first:
/// when none is (the usual case), every row was inserted and none has to come back.
async fn inserted_keys<'k>(
    tx: &mut Tx,
    mut insert: QueryBuilder<Db>,
    table: &str,
    key_column: &str,
    route: Option<&str>,
    keys: impl Iterator<Item = &'k str> + Clone,
) -> Result<HashSet<String>, MonitorError> {
    if WRITER_HOLDS_FILE {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM ");
        count.push(table).push(" WHERE ");
        if let Some(route) = route {
            count.push("route = ").push_bind(text(route)).push(" AND ");
        }
        count.push(key_column).push(" IN (");
        let mut list = count.separated(", ");
        for key in keys.clone() {
            list.push_bind(text(key));
        }
        count.push(")");
        let existing: i64 = count.build_query_scalar().fetch_one(&mut **tx).await?;
        if existing == 0 {
            insert.build().execute(&mut **tx).await?;
            return Ok(keys.map(text).collect());
        }
    }
    insert.push(" RETURNING ").push(key_column);
    let rows = insert.build().fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String, _>(0)?))
        .collect()
}

/// One timeline entry to write.
struct TimelineRow<'a> {
    uuid: &'a str,
    route: Option<&'a str>,
    at: i64,
    stage: Stage,
    situation: Situation,
    attempt: Option<i64>,
    detail: Option<Cow<'a, str>>,
}

/// The timeline rows of ingest's steps.
fn step_rows<'a>(uuid: &'a str, progress: &'a Progress) -> impl Iterator<Item = TimelineRow<'a>> {
    progress.steps.iter().map(move |step| TimelineRow {
        uuid,
        route: step.route.as_deref(),
        at: step.at,
        stage: step.stage,
        situation: step.situation,
        attempt: None,
        detail: Some(Cow::Borrowed(&step.detail)),
    })
}

async fn insert_timeline(tx: &mut Tx, rows: &[TimelineRow<'_>]) -> Result<(), MonitorError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO monitor_timeline (message_uuid, route, at, stage, situation, attempt, detail) ",
        );
        insert.push_values(chunk, |mut row, entry| {
            row.push_bind(text(entry.uuid))
                .push_bind(opt_text(entry.route))
                .push_bind(entry.at)
                .push_bind(entry.stage.code())
                .push_bind(entry.situation.code())
                .push_bind(entry.attempt)
                .push_bind(opt_text(entry.detail.as_deref()));
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The idempotency insert of many messages; a UUID already known is a duplicate arrival.
async fn insert_received<'w>(
    tx: &mut Tx,
    writes: &'w [ReceivedWrite],
    now: i64,
    timeline: &mut Vec<TimelineRow<'w>>,
) -> Result<Vec<Result<Received, MonitorError>>, MonitorError> {
    let initial = (Situation::AguardandoExecucao, Stage::Received);
    let mut inserted = HashSet::with_capacity(writes.len());
    for chunk in writes.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO monitor_messages (uuid, transaction_name, version, direction, \
             source_application, format, origin, business_key, situation, stage, received_at, \
             processed_at, attempts, last_error, answer, repeated_failures, duplicates) ",
        );
        insert.push_values(chunk, |mut row, w| {
            let m: &NewMessage = &w.message;
            // The steps taken before recording end where their outcome says.
            let (situation, stage, error) = match &w.progress.outcome {
                Some((situation, stage, error)) => (*situation, *stage, error.as_deref()),
                None => (initial.0, initial.1, None),
            };
            let answer = w
                .progress
                .answer
                .as_deref()
                .filter(|_| !w.progress.retract_answer);
            row.push_bind(text(&m.uuid))
                .push_bind(text(&m.transaction))
                .push_bind(text(&m.version))
                .push_bind(m.direction.code())
                .push_bind(text(&m.source_application))
                .push_bind(m.format.code())
                .push_bind(text(&m.origin))
                .push_bind(opt_text(m.business_key.as_deref()))
                .push_bind(situation.code())
                .push_bind(stage.code())
                .push_bind(m.received_at.unwrap_or(now))
                .push_bind(situation.is_settled().then_some(now))
                .push("0")
                .push_bind(opt_text(error))
                .push_bind(opt_text(answer))
                .push("0, 0");
        });
        insert.push(" ON CONFLICT (uuid) DO NOTHING");
        let keys = chunk.iter().map(|w| w.message.uuid.as_str());
        let table = "monitor_messages";
        inserted.extend(inserted_keys(tx, insert, table, "uuid", None, keys).await?);
    }
    let new: Vec<&ReceivedWrite> = writes
        .iter()
        .filter(|w| inserted.contains(&text(&w.message.uuid)))
        .collect();
    for chunk in new.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO monitor_payloads (message_uuid, raw_payload, canonical_json) ",
        );
        insert.push_values(chunk, |mut row, w| {
            let canonical = w
                .progress
                .canonical_json
                .as_deref()
                .or(w.message.canonical_json.as_deref());
            row.push_bind(text(&w.message.uuid))
                .push_bind(w.message.raw_payload.as_slice())
                .push_bind(opt_text(canonical));
        });
        insert.build().execute(&mut **tx).await?;
    }
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        let m = &w.message;
        if inserted.contains(&text(&m.uuid)) {
            timeline.push(TimelineRow {
                uuid: &m.uuid,
                route: None,
                at: m.received_at.unwrap_or(now),
                stage: initial.1,
                situation: initial.0,
                attempt: None,
                detail: (!m.origin.is_empty()).then_some(Cow::Borrowed(m.origin.as_str())),
            });
            timeline.extend(step_rows(&m.uuid, &w.progress));
            results.push(Ok(Received::New));
        } else {
            results.push(append_duplicate(tx, m, now).await);
        }
    }
    Ok(results)
}

/// Ingest's outcome and changes of many messages, in one statement per chunk.
async fn update_progress(
    tx: &mut Tx,
    updates: &[(&str, &Progress)],
    now: i64,
) -> Result<(), MonitorError> {
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        let mut update = QueryBuilder::<Db>::new(
            "WITH v (uuid, situation, stage, last_error, processed_at, answer, retract) AS (",
        );
        update.push_values(chunk, |mut row, (uuid, progress)| {
            let (situation, stage, error) = match &progress.outcome {
                Some((situation, stage, error)) => {
                    (Some(situation.code()), Some(stage.code()), error.as_deref())
                }
                None => (None, None, None),
            };
            let settled = progress.outcome.as_ref().is_some_and(|o| o.0.is_settled());
            row.push_bind(text(uuid))
                .push_bind(situation)
                .push_bind(stage)
                .push_bind(opt_text(error))
                .push_bind(settled.then_some(now))
                .push_bind(opt_text(progress.answer.as_deref()))
                .push_bind(progress.retract_answer);
        });
        update.push(
            ") UPDATE monitor_messages SET \
             situation = COALESCE(v.situation, monitor_messages.situation), \
             stage = COALESCE(v.stage, monitor_messages.stage), \
             last_error = COALESCE(v.last_error, monitor_messages.last_error), \
             processed_at = COALESCE(v.processed_at, monitor_messages.processed_at), \
             answer = CASE WHEN v.retract THEN NULL \
             ELSE COALESCE(v.answer, monitor_messages.answer) END \
             FROM v WHERE monitor_messages.uuid = v.uuid",
        );
        update.build().execute(&mut **tx).await?;
    }
    // Rare (De/Para changed a value): one statement each.
    for (uuid, progress) in updates {
        if let Some(json) = &progress.canonical_json {
            backend::replace_canonical_json(tx, uuid, json).await?;
        }
    }
    Ok(())
}

/// The condition on an existing delivery for an attempt to start: waiting; or failed, not
/// delivered or running with its retry or lease due by the time bound after it (closed by the
/// caller with ")").
const STARTABLE_BY: &str = " WHERE monitor_deliveries.situation = '0' \
     OR (monitor_deliveries.situation IN ('1', '3', '5') \
         AND monitor_deliveries.next_attempt_at IS NOT NULL \
         AND monitor_deliveries.next_attempt_at <= ";

type Claimed<'w> = Vec<(&'w StartWrite, Result<DeliveryStart, MonitorError>)>;

/// Claims the next attempt of many deliveries (see `backend::start_delivery`).
async fn claim<'w>(
    tx: &mut Tx,
    writes: &'w [StartWrite],
    known: &HashSet<&str>,
    now: i64,
    timeline: &mut Vec<TimelineRow<'w>>,
) -> Result<Claimed<'w>, MonitorError> {
    let claimable: Vec<&StartWrite> = writes
        .iter()
        .filter(|w| known.contains(w.uuid.as_str()))
        .collect();
    let mut started: HashMap<(String, String), i64> = HashMap::new();
    for chunk in claimable.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
             next_attempt_at, created_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, w| {
            row.push_bind(text(&w.uuid))
                .push_bind(text(&w.route))
                .push("'1', 'delivering', 0")
                .push_bind(now.saturating_add(w.lease_ms))
                .push_bind(now)
                .push_bind(now);
        });
        insert.push(
            " ON CONFLICT (message_uuid, route) DO UPDATE SET situation = '1', \
             stage = 'delivering', next_attempt_at = excluded.next_attempt_at, \
             updated_at = excluded.updated_at",
        );
        insert.push(STARTABLE_BY).push_bind(now);
        insert.push(") RETURNING message_uuid, route, attempts");
        for row in insert.build().fetch_all(&mut **tx).await? {
            started.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
        }
    }
    let not_started: Vec<&str> = claimable
        .iter()
        .filter(|w| !started.contains_key(&(text(&w.uuid), text(&w.route))))
        .map(|w| w.uuid.as_str())
        .collect();
    let situations = delivery_situations(tx, &not_started).await?;
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        if !known.contains(w.uuid.as_str()) {
            results.push((w, Err(unknown(&w.uuid))));
            continue;
        }
        let key = (text(&w.uuid), text(&w.route));
        let result = match started.get(&key) {
            Some(done) => {
                let attempt = done + 1;
                timeline.push(TimelineRow {
                    uuid: &w.uuid,
                    route: Some(&w.route),
                    at: now,
                    stage: Stage::Delivering,
                    situation: Situation::Executando,
                    attempt: Some(attempt),
                    detail: None,
                });
                DeliveryStart::Started { attempt }
            }
            None => DeliveryStart::NotStarted {
                situation: situations
                    .get(&key)
                    .copied()
                    .unwrap_or(Situation::AguardandoExecucao),
            },
        };
        results.push((w, Ok(result)));
    }
    Ok(results)
}

/// The situation of every delivery of the messages `uuids`, by (message, route).
async fn delivery_situations(
    tx: &mut Tx,
    uuids: &[&str],
) -> Result<HashMap<(String, String), Situation>, MonitorError> {
    let mut situations = HashMap::new();
    for chunk in uuids.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "SELECT message_uuid, route, situation FROM monitor_deliveries WHERE message_uuid IN (",
        );
        let mut list = query.separated(", ");
        for uuid in chunk {
            list.push_bind(text(uuid));
        }
        query.push(")");
        for row in query.build().fetch_all(&mut **tx).await? {
            situations.insert(
                (row.try_get(0)?, row.try_get(1)?),
                situation_of(&row, "situation")?,
            );
        }
    }
    Ok(situations)
}

/// How many attempts ended (see `backend::record_attempt`); the delivery's attempt count each,
/// or `None` for an unclaimed attempt that did not count.
async fn record_outcomes<'w>(
    tx: &mut Tx,
    writes: &'w [AttemptWrite],
    known: &HashSet<&str>,
    now: i64,
    timeline: &mut Vec<TimelineRow<'w>>,
) -> Result<Vec<Result<Option<i64>, MonitorError>>, MonitorError> {
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    for claimed in [true, false] {
        let recordable: Vec<&AttemptWrite> = writes
            .iter()
            .filter(|w| w.claimed == claimed && known.contains(w.uuid.as_str()))
            .collect();
        upsert_outcomes(tx, &recordable, claimed, now, &mut counts).await?;
    }
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        let Some(&attempts) = counts.get(&(text(&w.uuid), text(&w.route))) else {
            results.push(match (known.contains(w.uuid.as_str()), w.claimed) {
                (true, false) => Ok(None),
                _ => Err(unknown(&w.uuid)),
            });
            continue;
        };
        let (response, _) = delivered(&w.outcome, now);
        let detail = match (w.outcome.error(), response) {
            (Some(error), _) => Some(Cow::Borrowed(error)),
            (None, Some(response)) if !response.is_empty() => Some(shorten(response)),
            _ => None,
        };
        timeline.push(TimelineRow {
            uuid: &w.uuid,
            route: Some(&w.route),
            at: now,
            stage: w.outcome.stage(),
            situation: w.outcome.situation(),
            attempt: Some(attempts),
            detail,
        });
        results.push(Ok(Some(attempts)));
    }
    Ok(results)
}

/// The upsert of [`record_outcomes`]; an unclaimed outcome changes an existing delivery only
/// if it could have been started now (the condition of `backend::start_delivery`).
async fn upsert_outcomes(
    tx: &mut Tx,
    recordable: &[&AttemptWrite],
    claimed: bool,
    now: i64,
    counts: &mut HashMap<(String, String), i64>,
) -> Result<(), MonitorError> {
    for chunk in recordable.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Db>::new(
            "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
             last_error, next_attempt_at, delivered_at, response, created_at, updated_at) ",
        );
        upsert.push_values(chunk, |mut row, w| {
            let (response, delivered_at) = delivered(&w.outcome, now);
            row.push_bind(text(&w.uuid))
                .push_bind(text(&w.route))
                .push_bind(w.outcome.situation().code())
                .push_bind(w.outcome.stage().code())
                .push("1")
                .push_bind(opt_text(w.outcome.error()))
                .push_bind(w.outcome.retry_at())
                .push_bind(delivered_at)
                .push_bind(response.map(text))
                .push_bind(now)
                .push_bind(now);
        });
        upsert.push(
            " ON CONFLICT (message_uuid, route) DO UPDATE SET situation = excluded.situation, \
             stage = excluded.stage, attempts = monitor_deliveries.attempts + 1, \
             last_error = COALESCE(excluded.last_error, monitor_deliveries.last_error), \
             next_attempt_at = excluded.next_attempt_at, \
             delivered_at = COALESCE(excluded.delivered_at, monitor_deliveries.delivered_at), \
             response = COALESCE(excluded.response, monitor_deliveries.response), \
             updated_at = excluded.updated_at",
        );
        if !claimed {
            upsert.push(STARTABLE_BY).push_bind(now).push(")");
        }
        upsert.push(" RETURNING message_uuid, route, attempts");
        for row in upsert.build().fetch_all(&mut **tx).await? {
            counts.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
        }
    }
    Ok(())
}

/// The response kept and the delivery time, for a delivered outcome.
fn delivered(outcome: &DeliveryOutcome, now: i64) -> (Option<&str>, Option<i64>) {
    match outcome {
        DeliveryOutcome::Delivered { response } => (Some(response.as_str()), Some(now)),
        _ => (None, None),
    }
}

/// `backend::refresh_aggregate` for many messages: one read of their deliveries, one update of
/// those that have any.
pub(super) async fn refresh_aggregates(
    tx: &mut Tx,
    touched: &BTreeMap<&str, Option<&str>>,
    now: i64,
) -> Result<(), MonitorError> {
    let uuids: Vec<&str> = touched.keys().copied().collect();
    for chunk in uuids.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "SELECT message_uuid, situation, stage, attempts FROM monitor_deliveries \
             WHERE message_uuid IN (",
        );
        let mut list = query.separated(", ");
        for uuid in chunk {
            list.push_bind(text(uuid));
        }
        query.push(")");
        let mut states: BTreeMap<String, (Vec<(Situation, Stage)>, i64)> = BTreeMap::new();
        for row in query.build().fetch_all(&mut **tx).await? {
            let entry = states.entry(row.try_get(0)?).or_default();
            entry
                .0
                .push((situation_of(&row, "situation")?, stage_of(&row, "stage")?));
            entry.1 = entry.1.max(row.try_get("attempts")?);
        }
        let rows: Vec<(&str, Situation, Stage, i64)> = chunk
            .iter()
            .filter_map(|uuid| {
                let (deliveries, attempts) = states.get(&text(uuid))?;
                let (situation, stage) = aggregate_situation(deliveries)?;
                Some((*uuid, situation, stage, *attempts))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let mut update = QueryBuilder::<Db>::new(
            "WITH v (uuid, situation, stage, attempts, last_error, processed_at) AS (",
        );
        update.push_values(&rows, |mut row, (uuid, situation, stage, attempts)| {
            row.push_bind(text(uuid))
                .push_bind(situation.code())
                .push_bind(stage.code())
                .push_bind(*attempts)
                .push_bind(opt_text(touched.get(uuid).copied().flatten()))
                .push_bind(situation.is_settled().then_some(now));
        });
        update.push(
            ") UPDATE monitor_messages SET situation = v.situation, stage = v.stage, \
             attempts = v.attempts, \
             last_error = COALESCE(v.last_error, monitor_messages.last_error), \
             processed_at = COALESCE(v.processed_at, monitor_messages.processed_at) \
             FROM v WHERE monitor_messages.uuid = v.uuid",
        );
        update.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Plans a delivery along `route` for each known message that has none there yet (see
/// `MonitorStore::plan_deliveries`); returns the UUIDs planned, in the order given.
pub(crate) async fn plan_deliveries(
    pool: &Pool<Db>,
    route: &str,
    uuids: &[String],
    due_at: i64,
    now: i64,
) -> Result<Vec<String>, MonitorError> {
    let items: Vec<(&str, Option<&str>)> = uuids.iter().map(|u| (u.as_str(), None)).collect();
    new_deliveries(pool, route, &items, due_at, now).await
}

/// Records deliveries along `route` that a route consumer made itself, in a transaction of
/// their own (see `MonitorStore::record_delivered`, which groups them with other writes).
pub(crate) async fn record_delivered(
    pool: &Pool<Db>,
    route: &str,
    delivered: &[(String, String)],
    now: i64,
) -> Result<Vec<String>, MonitorError> {
    new_deliveries(pool, route, &delivered_items(delivered), now, now).await
}

fn delivered_items(delivered: &[(String, String)]) -> Vec<(&str, Option<&str>)> {
    delivered
        .iter()
        .map(|(uuid, response)| (uuid.as_str(), Some(response.as_str())))
        .collect()
}

/// [`insert_deliveries`] in a transaction of its own, with their timeline and aggregates.
async fn new_deliveries(
    pool: &Pool<Db>,
    route: &str,
    items: &[(&str, Option<&str>)],
    due_at: i64,
    now: i64,
) -> Result<Vec<String>, MonitorError> {
    let mut tx = begin(pool).await?;
    let mut named: Vec<&str> = items.iter().map(|(uuid, _)| *uuid).collect();
    named.sort_unstable();
    named.dedup();
    let known = lock_messages(&mut tx, &named).await?;
    let done = insert_deliveries(&mut tx, route, items, &known, due_at, now).await?;
    let timeline: Vec<TimelineRow<'_>> = done
        .iter()
        .map(|&(uuid, response)| new_delivery_row(uuid, route, response, now))
        .collect();
    insert_timeline(&mut tx, &timeline).await?;
    let touched: BTreeMap<&str, Option<&str>> = done.iter().map(|(u, _)| (*u, None)).collect();
    refresh_aggregates(&mut tx, &touched, now).await?;
    tx.commit().await?;
    Ok(done.into_iter().map(|(uuid, _)| uuid.to_owned()).collect())
}

/// Inserts a delivery along `route` for each message of `items` in `known` that has none there
/// yet: waiting and due at `due_at` when it comes without a response, delivered by its first
/// attempt when it comes with one. Returns those inserted, in the order given.
async fn insert_deliveries<'i>(
    tx: &mut Tx,
    route: &str,
    items: &[(&'i str, Option<&'i str>)],
    known: &HashSet<&str>,
    due_at: i64,
    now: i64,
) -> Result<Vec<(&'i str, Option<&'i str>)>, MonitorError> {
    let mut to_insert: Vec<(&str, Option<&str>)> = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    for &(uuid, response) in items {
        if known.contains(uuid) && seen.insert(uuid) {
            to_insert.push((uuid, response));
        }
    }
    let mut inserted = HashSet::new();
    for chunk in to_insert.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
             next_attempt_at, delivered_at, response, created_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, (uuid, response)| {
            let (situation, stage) = initial_state(response.is_some());
            row.push_bind(text(uuid))
                .push_bind(text(route))
                .push_bind(situation.code())
                .push_bind(stage.code())
                .push_bind(i64::from(response.is_some()))
                .push_bind(response.is_none().then_some(due_at))
                .push_bind(response.is_some().then_some(now))
                .push_bind(response.map(text))
                .push_bind(now)
                .push_bind(now);
        });
        insert.push(" ON CONFLICT (message_uuid, route) DO NOTHING");
        let keys = chunk.iter().map(|(uuid, _)| *uuid);
        let (table, route) = ("monitor_deliveries", Some(route));
        inserted.extend(inserted_keys(tx, insert, table, "message_uuid", route, keys).await?);
    }
    Ok(to_insert
        .into_iter()
        .filter(|(uuid, _)| inserted.contains(&text(uuid)))
        .collect())
}

/// The timeline row of a new delivery (see [`insert_deliveries`]).
fn new_delivery_row<'a>(
    uuid: &'a str,
    route: &'a str,
    response: Option<&'a str>,
    now: i64,
) -> TimelineRow<'a> {
    let (situation, stage) = initial_state(response.is_some());
    TimelineRow {
        uuid,
        route: Some(route),
        at: now,
        stage,
        situation,
        attempt: response.is_some().then_some(1),
        detail: response.filter(|r| !r.is_empty()).map(shorten),
    }
}

/// A new delivery's situation and stage: waiting for the executor, or delivered already.
fn initial_state(delivered: bool) -> (Situation, Stage) {
    if delivered {
        (Situation::Finalizada, Stage::Delivered)
    } else {
        (Situation::AguardandoExecucao, Stage::Routed)
    }
}
