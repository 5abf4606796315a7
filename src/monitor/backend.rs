//! The monitor store's SQL, written once and compiled once per database.
//!
//! `sqlite.rs` and `postgres.rs` each include this file as their `backend` module, beside a `Db`
//! type (`sqlx::Sqlite` or `sqlx::Postgres`), a `begin` function and their migrations. Every
//! statement here is plain SQL both databases read the same way: `$n` parameters (SQLite takes
//! them as positional), `INSERT … ON CONFLICT … RETURNING`, `COUNT(CASE …)`, integer
//! milliseconds for times. The dialects differ only in their DDL (migrations) and in how a
//! writing transaction starts.

use std::borrow::Cow;

use sqlx::{AssertSqlSafe, Pool, Row, Transaction};

use super::{Db, MIGRATIONS, begin, lock_migrations};
use crate::monitor::error::MonitorError;
use crate::monitor::filter::{Arg, WhereClause};
use crate::monitor::model::{
    DeliveryOutcome, DeliveryRecord, DeliveryReplay, DeliveryStart, Direction, Format,
    LearnedDePara, MessageFilter, MessagePage, MessageRecord, MessageSummary, MonitorCounts,
    NewMessage, PendingDelivery, Progress, Received, Situation, Stage, TimelineEntry,
    TransactionRouteCounts, aggregate_situation,
};

type Tx = Transaction<'static, Db>;
type DbRow = <Db as sqlx::Database>::Row;

/// Longest response text copied into a timeline entry (the delivery keeps all of it).
const TIMELINE_RESPONSE_CHARS: usize = 1000;

macro_rules! summary_columns {
    () => {
        "id, uuid, transaction_name, version, direction, source_application, format, origin, \
         business_key, situation, stage, received_at, processed_at, attempts, last_error, \
         repeated_failures, duplicates"
    };
}

macro_rules! delivery_columns {
    () => {
        "message_uuid, route, situation, stage, attempts, last_error, next_attempt_at, \
         delivered_at, response, created_at, updated_at"
    };
}

/// PostgreSQL refuses NUL in text; both stores replace it so that they store the same thing.
pub(super) fn text(value: &str) -> String {
    if value.contains('\0') {
        value.replace('\0', "\u{FFFD}")
    } else {
        value.to_owned()
    }
}

pub(super) fn opt_text(value: Option<&str>) -> Option<String> {
    value.map(text)
}

pub(super) fn unknown(uuid: &str) -> MonitorError {
    MonitorError::UnknownMessage {
        uuid: uuid.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Migrations

pub(crate) async fn migrate(pool: &Pool<Db>, now: i64) -> Result<(), MonitorError> {
    let mut tx = begin(pool).await?;
    lock_migrations(&mut tx).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS monitor_schema_version (\
         version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM monitor_schema_version")
            .fetch_one(&mut *tx)
            .await?;
    for (version, sql) in MIGRATIONS {
        if *version <= current.unwrap_or(0) {
            continue;
        }
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO monitor_schema_version (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "Applied a monitor store migration.");
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Messages

/// Inserts the message unless its UUID is known; true when it was inserted.
async fn insert_message(
    tx: &mut Tx,
    message: &NewMessage,
    uuid: &str,
    received_at: i64,
    outcome: (Situation, Stage),
    refusal: Option<(&str, i64)>,
) -> Result<bool, MonitorError> {
    let (situation, stage) = outcome;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO monitor_messages (uuid, transaction_name, version, direction, \
         source_application, format, origin, business_key, situation, stage, received_at, \
         processed_at, attempts, last_error, answer, repeated_failures, duplicates) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, NULL, 0, 0) \
         ON CONFLICT (uuid) DO NOTHING RETURNING id",
    )
    .bind(text(uuid))
    .bind(text(&message.transaction))
    .bind(text(&message.version))
    .bind(message.direction.code())
    .bind(text(&message.source_application))
    .bind(message.format.code())
    .bind(text(&message.origin))
    .bind(opt_text(message.business_key.as_deref()))
    .bind(situation.code())
    .bind(stage.code())
    .bind(received_at)
    .bind(refusal.map(|(_, at)| at))
    .bind(refusal.map(|(reason, _)| text(reason)))
    .fetch_optional(&mut **tx)
    .await?;
    if inserted.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO monitor_payloads (message_uuid, raw_payload, canonical_json) \
         VALUES ($1, $2, $3)",
    )
    .bind(text(uuid))
    .bind(message.raw_payload.as_slice())
    .bind(opt_text(message.canonical_json.as_deref()))
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn append_timeline(
    tx: &mut Tx,
    uuid: &str,
    route: Option<&str>,
    at: i64,
    stage: Stage,
    situation: Situation,
    attempt: Option<i64>,
    detail: Option<&str>,
) -> Result<(), MonitorError> {
    sqlx::query(
        "INSERT INTO monitor_timeline (message_uuid, route, at, stage, situation, attempt, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(text(uuid))
    .bind(opt_text(route))
    .bind(at)
    .bind(stage.code())
    .bind(situation.code())
    .bind(attempt)
    .bind(opt_text(detail))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn record_received(
    pool: &Pool<Db>,
    message: &NewMessage,
    now: i64,
) -> Result<Received, MonitorError> {
    let received_at = message.received_at.unwrap_or(now);
    let mut tx = begin(pool).await?;
    let initial = (Situation::AguardandoExecucao, Stage::Received);
    if insert_message(&mut tx, message, &message.uuid, received_at, initial, None).await? {
        let origin = (!message.origin.is_empty()).then_some(message.origin.as_str());
        append_timeline(
            &mut tx,
            &message.uuid,
            None,
            received_at,
            initial.1,
            initial.0,
            None,
            origin,
        )
        .await?;
        tx.commit().await?;
        return Ok(Received::New);
    }
    let duplicate = append_duplicate(&mut tx, message, now).await?;
    tx.commit().await?;
    Ok(duplicate)
}

/// Counts another arrival of a known UUID and notes it in the timeline.
pub(super) async fn append_duplicate(
    tx: &mut Tx,
    message: &NewMessage,
    now: i64,
) -> Result<Received, MonitorError> {
    sqlx::query("UPDATE monitor_messages SET duplicates = duplicates + 1 WHERE uuid = $1")
        .bind(text(&message.uuid))
        .execute(&mut **tx)
        .await?;
    let record = fetch_message(tx, &message.uuid)
        .await?
        .ok_or_else(|| unknown(&message.uuid))?;
    let detail = format!("UUID repetido recebido de {}", message.origin);
    append_timeline(
        tx,
        &message.uuid,
        None,
        now,
        Stage::Received,
        record.situation,
        None,
        Some(&detail),
    )
    .await?;
    Ok(Received::Duplicate(Box::new(record)))
}

pub(crate) async fn record_refused(
    pool: &Pool<Db>,
    message: &NewMessage,
    reason: &str,
    stage: Stage,
    now: i64,
) -> Result<String, MonitorError> {
    let received_at = message.received_at.unwrap_or(now);
    let outcome = (Situation::Recusada, stage);
    let mut tx = begin(pool).await?;
    let claimed = message.uuid.trim();
    let mut uuid = if claimed.is_empty() {
        synthetic_id()
    } else {
        message.uuid.clone()
    };
    let mut detail = reason.to_owned();
    if !insert_message(
        &mut tx,
        message,
        &uuid,
        received_at,
        outcome,
        Some((reason, now)),
    )
    .await?
    {
        // The UUID is already recorded (for another message): keep this one under its own id
        // so that it is still counted.
        detail = format!("{reason} (UUID {uuid} já registrado para outra mensagem)");
        uuid = synthetic_id();
        let inserted = insert_message(
            &mut tx,
            message,
            &uuid,
            received_at,
            outcome,
            Some((reason, now)),
        )
        .await?;
        if !inserted {
            return Err(MonitorError::Database(format!(
                "the synthetic id {uuid} collided"
            )));
        }
    }
    append_timeline(
        &mut tx,
        &uuid,
        None,
        now,
        stage,
        Situation::Recusada,
        None,
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(text(&uuid))
}

fn synthetic_id() -> String {
    format!("refused-{}", uuid::Uuid::new_v4())
}

pub(crate) async fn set_situation(
    pool: &Pool<Db>,
    uuid: &str,
    situation: Situation,
    stage: Stage,
    error: Option<&str>,
    now: i64,
) -> Result<(), MonitorError> {
    let mut tx = begin(pool).await?;
    let updated = sqlx::query(
        "UPDATE monitor_messages SET situation = $2, stage = $3, \
         last_error = COALESCE($4, last_error), processed_at = COALESCE($5, processed_at) \
         WHERE uuid = $1",
    )
    .bind(text(uuid))
    .bind(situation.code())
    .bind(stage.code())
    .bind(opt_text(error))
    .bind(situation.is_settled().then_some(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(unknown(uuid));
    }
    append_timeline(&mut tx, uuid, None, now, stage, situation, None, error).await?;
    // Once a message has deliveries, they decide its situation (a late ingest step must not
    // hide a delivery that already happened).
    refresh_aggregate(&mut tx, uuid, now, None).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn set_canonical_json(
    pool: &Pool<Db>,
    uuid: &str,
    json: &str,
) -> Result<(), MonitorError> {
    let mut tx = begin(pool).await?;
    replace_canonical_json(&mut tx, uuid, json).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn set_answer(
    pool: &Pool<Db>,
    uuid: &str,
    answer: &str,
) -> Result<(), MonitorError> {
    let updated = sqlx::query("UPDATE monitor_messages SET answer = $2 WHERE uuid = $1")
        .bind(text(uuid))
        .bind(text(answer))
        .execute(pool)
        .await?
        .rows_affected();
    if updated == 0 {
        return Err(unknown(uuid));
    }
    Ok(())
}

pub(crate) async fn add_timeline(
    pool: &Pool<Db>,
    uuid: &str,
    route: Option<&str>,
    stage: Stage,
    situation: Situation,
    detail: &str,
    now: i64,
) -> Result<(), MonitorError> {
    let inserted = sqlx::query(
        "INSERT INTO monitor_timeline (message_uuid, route, at, stage, situation, attempt, detail) \
         SELECT uuid, $2, $3, $4, $5, NULL, $6 FROM monitor_messages WHERE uuid = $1",
    )
    .bind(text(uuid))
    .bind(opt_text(route))
    .bind(now)
    .bind(stage.code())
    .bind(situation.code())
    .bind(text(detail))
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(unknown(uuid));
    }
    Ok(())
}

/// The canonical form after De/Para: deliveries send what is stored.
pub(super) async fn replace_canonical_json(
    tx: &mut Tx,
    uuid: &str,
    json: &str,
) -> Result<(), MonitorError> {
    let updated =
        sqlx::query("UPDATE monitor_payloads SET canonical_json = $2 WHERE message_uuid = $1")
            .bind(text(uuid))
            .bind(text(json))
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if updated == 0 {
        return Err(unknown(uuid));
    }
    Ok(())
}

pub(crate) async fn record_progress(
    pool: &Pool<Db>,
    uuid: &str,
    progress: &Progress,
    now: i64,
) -> Result<(), MonitorError> {
    let mut tx = begin(pool).await?;
    let (situation, stage, error) = match &progress.outcome {
        Some((situation, stage, error)) => {
            (Some(situation.code()), Some(stage.code()), error.as_deref())
        }
        None => (None, None, None),
    };
    let settled = progress.outcome.as_ref().is_some_and(|o| o.0.is_settled());
    let updated = sqlx::query(
        "UPDATE monitor_messages SET situation = COALESCE($2, situation), \
         stage = COALESCE($3, stage), last_error = COALESCE($4, last_error), \
         processed_at = COALESCE($5, processed_at), \
         answer = CASE WHEN $7 THEN NULL ELSE COALESCE($6, answer) END \
         WHERE uuid = $1",
    )
    .bind(text(uuid))
    .bind(situation)
    .bind(stage)
    .bind(opt_text(error))
    .bind(settled.then_some(now))
    .bind(opt_text(progress.answer.as_deref()))
    .bind(progress.retract_answer)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(unknown(uuid));
    }
    if let Some(json) = &progress.canonical_json {
        replace_canonical_json(&mut tx, uuid, json).await?;
    }
    if !progress.steps.is_empty() {
        // One statement for all the steps: each statement is a round trip to the database.
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO monitor_timeline (message_uuid, route, at, stage, situation, attempt, detail) ",
        );
        insert.push_values(&progress.steps, |mut row, step| {
            row.push_bind(text(uuid))
                .push_bind(opt_text(step.route.as_deref()))
                .push_bind(step.at)
                .push_bind(step.stage.code())
                .push_bind(step.situation.code())
                .push_bind(None::<i64>)
                .push_bind(text(&step.detail));
        });
        insert.build().execute(&mut *tx).await?;
    }
    if progress.outcome.is_some() {
        // As in `set_situation`: once the message has deliveries, they decide.
        refresh_aggregate(&mut tx, uuid, now, None).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn record_learned_depara(
    pool: &Pool<Db>,
    uuid: &str,
    pairs: &[LearnedDePara],
    now: i64,
) -> Result<(), MonitorError> {
    let mut tx = begin(pool).await?;
    touch_message(&mut tx, uuid).await?;
    for pair in pairs {
        sqlx::query(
            "INSERT INTO monitor_learned_depara \
             (message_uuid, alias, field, external_value, internal_value, learned_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (message_uuid, alias, field, external_value) \
             DO UPDATE SET internal_value = excluded.internal_value, learned_at = excluded.learned_at",
        )
        .bind(text(uuid))
        .bind(text(&pair.alias))
        .bind(text(&pair.field))
        .bind(text(&pair.external))
        .bind(text(&pair.internal))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Deliveries

/// Takes the message's row lock (PostgreSQL; SQLite holds the database's write lock already),
/// so that one message's deliveries update its aggregate one after another.
async fn touch_message(tx: &mut Tx, uuid: &str) -> Result<(), MonitorError> {
    let found = sqlx::query("UPDATE monitor_messages SET attempts = attempts WHERE uuid = $1")
        .bind(text(uuid))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if found == 0 {
        return Err(unknown(uuid));
    }
    Ok(())
}

/// Sets the message's situation, stage and attempts from its deliveries, if it has any.
async fn refresh_aggregate(
    tx: &mut Tx,
    uuid: &str,
    now: i64,
    error: Option<&str>,
) -> Result<(), MonitorError> {
    let rows = sqlx::query(
        "SELECT situation, stage, attempts FROM monitor_deliveries WHERE message_uuid = $1",
    )
    .bind(text(uuid))
    .fetch_all(&mut **tx)
    .await?;
    let mut states = Vec::with_capacity(rows.len());
    let mut attempts = 0_i64;
    for row in &rows {
        states.push((situation_of(row, "situation")?, stage_of(row, "stage")?));
        attempts = attempts.max(row.try_get("attempts")?);
    }
    let Some((situation, stage)) = aggregate_situation(&states) else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE monitor_messages SET situation = $2, stage = $3, attempts = $4, \
         last_error = COALESCE($5, last_error), processed_at = COALESCE($6, processed_at) \
         WHERE uuid = $1",
    )
    .bind(text(uuid))
    .bind(situation.code())
    .bind(stage.code())
    .bind(attempts)
    .bind(opt_text(error))
    .bind(situation.is_settled().then_some(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn plan_delivery(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
    due_at: i64,
    now: i64,
) -> Result<bool, MonitorError> {
    let mut tx = begin(pool).await?;
    touch_message(&mut tx, uuid).await?;
    let planned = plan_in(&mut tx, uuid, route, due_at, now).await?;
    tx.commit().await?;
    Ok(planned)
}

/// Registers a waiting delivery of a known message unless the route has one; true when it did.
async fn plan_in(
    tx: &mut Tx,
    uuid: &str,
    route: &str,
    due_at: i64,
    now: i64,
) -> Result<bool, MonitorError> {
    let planned = sqlx::query(
        "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
         next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $6) \
         ON CONFLICT (message_uuid, route) DO NOTHING",
    )
    .bind(text(uuid))
    .bind(text(route))
    .bind(Situation::AguardandoExecucao.code())
    .bind(Stage::Routed.code())
    .bind(due_at)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0;
    if planned {
        append_timeline(
            tx,
            uuid,
            Some(route),
            now,
            Stage::Routed,
            Situation::AguardandoExecucao,
            None,
            None,
        )
        .await?;
        refresh_aggregate(tx, uuid, now, None).await?;
    }
    Ok(planned)
}

pub(crate) async fn start_delivery(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
    now: i64,
    lease_until: i64,
) -> Result<DeliveryStart, MonitorError> {
    let mut tx = begin(pool).await?;
    touch_message(&mut tx, uuid).await?;
    // Startable: waiting; or failed / not delivered / running with its retry or lease due.
    let started: Option<i64> = sqlx::query_scalar(
        "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
         next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, '1', 'delivering', 0, $3, $4, $4) \
         ON CONFLICT (message_uuid, route) DO UPDATE SET situation = '1', stage = 'delivering', \
         next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at \
         WHERE monitor_deliveries.situation = '0' \
         OR (monitor_deliveries.situation IN ('1', '3', '5') \
             AND monitor_deliveries.next_attempt_at IS NOT NULL \
             AND monitor_deliveries.next_attempt_at <= $4) \
         RETURNING attempts",
    )
    .bind(text(uuid))
    .bind(text(route))
    .bind(lease_until)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(done) = started else {
        let situation = delivery_situation(&mut tx, uuid, route).await?;
        tx.commit().await?;
        return Ok(DeliveryStart::NotStarted {
            situation: situation.unwrap_or(Situation::AguardandoExecucao),
        });
    };
    let attempt = done + 1;
    append_timeline(
        &mut tx,
        uuid,
        Some(route),
        now,
        Stage::Delivering,
        Situation::Executando,
        Some(attempt),
        None,
    )
    .await?;
    refresh_aggregate(&mut tx, uuid, now, None).await?;
    tx.commit().await?;
    Ok(DeliveryStart::Started { attempt })
}

async fn delivery_situation(
    tx: &mut Tx,
    uuid: &str,
    route: &str,
) -> Result<Option<Situation>, MonitorError> {
    let code: Option<String> = sqlx::query_scalar(
        "SELECT situation FROM monitor_deliveries WHERE message_uuid = $1 AND route = $2",
    )
    .bind(text(uuid))
    .bind(text(route))
    .fetch_optional(&mut **tx)
    .await?;
    code.map(|c| Situation::from_code(&c).ok_or_else(|| MonitorError::corrupt("situation", &c)))
        .transpose()
}

pub(crate) async fn record_attempt(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
    outcome: &DeliveryOutcome,
    now: i64,
) -> Result<i64, MonitorError> {
    let (response, delivered_at) = match outcome {
        DeliveryOutcome::Delivered { response } => (Some(text(response)), Some(now)),
        _ => (None, None),
    };
    let situation = outcome.situation();
    let stage = outcome.stage();
    let error = outcome.error();
    let mut tx = begin(pool).await?;
    touch_message(&mut tx, uuid).await?;
    let attempts: i64 = sqlx::query_scalar(
        "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
         last_error, next_attempt_at, delivered_at, response, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $9) \
         ON CONFLICT (message_uuid, route) DO UPDATE SET situation = excluded.situation, \
         stage = excluded.stage, attempts = monitor_deliveries.attempts + 1, \
         last_error = COALESCE(excluded.last_error, monitor_deliveries.last_error), \
         next_attempt_at = excluded.next_attempt_at, \
         delivered_at = COALESCE(excluded.delivered_at, monitor_deliveries.delivered_at), \
         response = COALESCE(excluded.response, monitor_deliveries.response), \
         updated_at = excluded.updated_at \
         RETURNING attempts",
    )
    .bind(text(uuid))
    .bind(text(route))
    .bind(situation.code())
    .bind(stage.code())
    .bind(opt_text(error))
    .bind(outcome.retry_at())
    .bind(delivered_at)
    .bind(response.clone())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let detail: Option<Cow<'_, str>> = match (error, response.as_deref()) {
        (Some(error), _) => Some(Cow::Borrowed(error)),
        (None, Some(response)) if !response.is_empty() => Some(shorten(response)),
        _ => None,
    };
    append_timeline(
        &mut tx,
        uuid,
        Some(route),
        now,
        stage,
        situation,
        Some(attempts),
        detail.as_deref(),
    )
    .await?;
    refresh_aggregate(&mut tx, uuid, now, error).await?;
    tx.commit().await?;
    Ok(attempts)
}

pub(super) fn shorten(response: &str) -> Cow<'_, str> {
    match response.char_indices().nth(TIMELINE_RESPONSE_CHARS) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &response[..cut])),
        None => Cow::Borrowed(response),
    }
}

pub(crate) async fn reset_for_reprocess(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
    now: i64,
) -> Result<(), MonitorError> {
    let mut tx = begin(pool).await?;
    touch_message(&mut tx, uuid).await?;
    // Protheus allows "tentar novamente" for Falhou and Bloqueado; eaibus also for Não entregue.
    let reset = sqlx::query(
        "UPDATE monitor_deliveries SET situation = $3, stage = $4, attempts = 0, \
         next_attempt_at = $5, updated_at = $5 \
         WHERE message_uuid = $1 AND route = $2 AND situation IN ('3', '4', '5')",
    )
    .bind(text(uuid))
    .bind(text(route))
    .bind(Situation::AguardandoExecucao.code())
    .bind(Stage::Routed.code())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if reset == 0 {
        let situation = delivery_situation(&mut tx, uuid, route).await?;
        return Err(MonitorError::NotAllowed {
            uuid: uuid.to_owned(),
            route: route.to_owned(),
            situation,
            operation: "reprocessed",
        });
    }
    sqlx::query(
        "UPDATE monitor_messages SET repeated_failures = repeated_failures + 1 WHERE uuid = $1",
    )
    .bind(text(uuid))
    .execute(&mut *tx)
    .await?;
    append_timeline(
        &mut tx,
        uuid,
        Some(route),
        now,
        Stage::Routed,
        Situation::AguardandoExecucao,
        None,
        Some("Reprocessamento manual solicitado"),
    )
    .await?;
    refresh_aggregate(&mut tx, uuid, now, None).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn replay_delivery(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
    reason: &str,
    now: i64,
) -> Result<i64, MonitorError> {
    let mut tx = begin(pool).await?;
    touch_message(&mut tx, uuid).await?;
    let not_allowed = |situation| MonitorError::NotAllowed {
        uuid: uuid.to_owned(),
        route: route.to_owned(),
        situation,
        operation: "replayed",
    };
    let before = sqlx::query(
        "SELECT situation, attempts, delivered_at FROM monitor_deliveries \
         WHERE message_uuid = $1 AND route = $2",
    )
    .bind(text(uuid))
    .bind(text(route))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(before) = before else {
        return Err(not_allowed(None));
    };
    let situation = situation_of(&before, "situation")?;
    let attempts: i64 = before.try_get("attempts")?;
    let delivered_at: Option<i64> = before.try_get("delivered_at")?;
    // Settled only: a waiting or running delivery is sent anyway.
    let replanned = sqlx::query(
        "UPDATE monitor_deliveries SET situation = $3, stage = $4, attempts = 0, \
         next_attempt_at = $5, updated_at = $5 \
         WHERE message_uuid = $1 AND route = $2 AND situation IN ('2', '3', '4', '5')",
    )
    .bind(text(uuid))
    .bind(text(route))
    .bind(Situation::AguardandoExecucao.code())
    .bind(Stage::Routed.code())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if replanned == 0 {
        return Err(not_allowed(Some(situation)));
    }
    sqlx::query(
        "INSERT INTO monitor_delivery_replays (message_uuid, route, at, previous_situation, \
         previous_attempts, previous_delivered_at, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(text(uuid))
    .bind(text(route))
    .bind(now)
    .bind(situation.code())
    .bind(attempts)
    .bind(delivered_at)
    .bind(text(reason))
    .execute(&mut *tx)
    .await?;
    let replays: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM monitor_delivery_replays WHERE message_uuid = $1 AND route = $2",
    )
    .bind(text(uuid))
    .bind(text(route))
    .fetch_one(&mut *tx)
    .await?;
    let detail = format!(
        "Reenvio {replays} ({reason}); a entrega estava {} após {attempts} tentativa(s)",
        situation.label()
    );
    append_timeline(
        &mut tx,
        uuid,
        Some(route),
        now,
        Stage::Routed,
        Situation::AguardandoExecucao,
        None,
        Some(&detail),
    )
    .await?;
    refresh_aggregate(&mut tx, uuid, now, None).await?;
    tx.commit().await?;
    Ok(replays)
}

pub(crate) async fn delivery_replays(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
) -> Result<Vec<DeliveryReplay>, MonitorError> {
    let rows = sqlx::query(
        "SELECT at, previous_situation, previous_attempts, previous_delivered_at, reason \
         FROM monitor_delivery_replays WHERE message_uuid = $1 AND route = $2 ORDER BY id",
    )
    .bind(text(uuid))
    .bind(text(route))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryReplay {
                at: row.try_get("at")?,
                previous_situation: situation_of(row, "previous_situation")?,
                previous_attempts: row.try_get("previous_attempts")?,
                previous_delivered_at: row.try_get("previous_delivered_at")?,
                reason: row.try_get("reason")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Queries

pub(super) fn situation_of(row: &DbRow, column: &str) -> Result<Situation, MonitorError> {
    let code: String = row.try_get(column)?;
    Situation::from_code(&code).ok_or_else(|| MonitorError::corrupt("situation", &code))
}

pub(super) fn stage_of(row: &DbRow, column: &str) -> Result<Stage, MonitorError> {
    let code: String = row.try_get(column)?;
    Stage::from_code(&code).ok_or_else(|| MonitorError::corrupt("stage", &code))
}

fn direction_of(row: &DbRow) -> Result<Direction, MonitorError> {
    let code: String = row.try_get("direction")?;
    Direction::from_code(&code).ok_or_else(|| MonitorError::corrupt("direction", &code))
}

fn format_of(row: &DbRow) -> Result<Format, MonitorError> {
    let code: String = row.try_get("format")?;
    Format::from_code(&code).ok_or_else(|| MonitorError::corrupt("format", &code))
}

fn summary_from(row: &DbRow) -> Result<MessageSummary, MonitorError> {
    Ok(MessageSummary {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        transaction: row.try_get("transaction_name")?,
        version: row.try_get("version")?,
        direction: direction_of(row)?,
        source_application: row.try_get("source_application")?,
        format: format_of(row)?,
        origin: row.try_get("origin")?,
        business_key: row.try_get("business_key")?,
        situation: situation_of(row, "situation")?,
        stage: stage_of(row, "stage")?,
        received_at: row.try_get("received_at")?,
        processed_at: row.try_get("processed_at")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        repeated_failures: row.try_get("repeated_failures")?,
        duplicates: row.try_get("duplicates")?,
    })
}

fn record_from(row: &DbRow) -> Result<MessageRecord, MonitorError> {
    let s = summary_from(row)?;
    Ok(MessageRecord {
        id: s.id,
        uuid: s.uuid,
        transaction: s.transaction,
        version: s.version,
        direction: s.direction,
        source_application: s.source_application,
        format: s.format,
        origin: s.origin,
        business_key: s.business_key,
        situation: s.situation,
        stage: s.stage,
        received_at: s.received_at,
        processed_at: s.processed_at,
        attempts: s.attempts,
        last_error: s.last_error,
        raw_payload: row.try_get("raw_payload")?,
        canonical_json: row.try_get("canonical_json")?,
        answer: row.try_get("answer")?,
        repeated_failures: s.repeated_failures,
        duplicates: s.duplicates,
    })
}

fn delivery_from(row: &DbRow) -> Result<DeliveryRecord, MonitorError> {
    Ok(DeliveryRecord {
        uuid: row.try_get("message_uuid")?,
        route: row.try_get("route")?,
        situation: situation_of(row, "situation")?,
        stage: stage_of(row, "stage")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
        response: row.try_get("response")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const SELECT_MESSAGE: &str = concat!(
    "SELECT ",
    summary_columns!(),
    ", raw_payload, canonical_json, answer FROM monitor_messages \
     JOIN monitor_payloads ON message_uuid = uuid WHERE uuid = $1"
);

async fn fetch_message(tx: &mut Tx, uuid: &str) -> Result<Option<MessageRecord>, MonitorError> {
    let row = sqlx::query(SELECT_MESSAGE)
        .bind(text(uuid))
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(record_from).transpose()
}

pub(crate) async fn get(
    pool: &Pool<Db>,
    uuid: &str,
) -> Result<Option<MessageRecord>, MonitorError> {
    let row = sqlx::query(SELECT_MESSAGE)
        .bind(text(uuid))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(record_from).transpose()
}

pub(crate) async fn timeline(
    pool: &Pool<Db>,
    uuid: &str,
) -> Result<Vec<TimelineEntry>, MonitorError> {
    let rows = sqlx::query(
        "SELECT id, message_uuid, route, at, stage, situation, attempt, detail \
         FROM monitor_timeline WHERE message_uuid = $1 ORDER BY id",
    )
    .bind(text(uuid))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TimelineEntry {
                id: row.try_get("id")?,
                uuid: row.try_get("message_uuid")?,
                route: row.try_get("route")?,
                at: row.try_get("at")?,
                stage: stage_of(row, "stage")?,
                situation: situation_of(row, "situation")?,
                attempt: row.try_get("attempt")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}

pub(crate) async fn deliveries(
    pool: &Pool<Db>,
    uuid: &str,
) -> Result<Vec<DeliveryRecord>, MonitorError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM monitor_deliveries WHERE message_uuid = $1 ORDER BY route"
    ))
    .bind(text(uuid))
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from).collect()
}

pub(crate) async fn delivery(
    pool: &Pool<Db>,
    uuid: &str,
    route: &str,
) -> Result<Option<DeliveryRecord>, MonitorError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM monitor_deliveries WHERE message_uuid = $1 AND route = $2"
    ))
    .bind(text(uuid))
    .bind(text(route))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(delivery_from).transpose()
}

pub(crate) async fn due_deliveries(
    pool: &Pool<Db>,
    now: i64,
    limit: i64,
) -> Result<Vec<DeliveryRecord>, MonitorError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM monitor_deliveries \
         WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1 \
         AND situation IN ('0', '1', '3', '5') \
         ORDER BY next_attempt_at, message_uuid, route LIMIT $2"
    ))
    .bind(now)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from).collect()
}

pub(crate) async fn pending_deliveries(
    pool: &Pool<Db>,
    route: &str,
    limit: i64,
) -> Result<Vec<PendingDelivery>, MonitorError> {
    // Pending: waiting or running, or failed / not delivered with a retry planned. The first
    // IN is the condition of the partial index `monitor_deliveries_pending`, written out so
    // that SQLite sees it applies.
    let rows = sqlx::query(
        "SELECT d.message_uuid AS message_uuid, d.route AS route, d.situation AS situation, \
         d.stage AS stage, d.attempts AS attempts, d.last_error AS last_error, \
         d.next_attempt_at AS next_attempt_at, d.delivered_at AS delivered_at, \
         d.response AS response, d.created_at AS created_at, d.updated_at AS updated_at, \
         m.transaction_name AS transaction_name, m.business_key AS business_key, \
         m.received_at AS received_at, p.canonical_json AS canonical_json \
         FROM monitor_deliveries d JOIN monitor_messages m ON m.uuid = d.message_uuid \
         JOIN monitor_payloads p ON p.message_uuid = d.message_uuid \
         WHERE d.route = $1 AND d.situation IN ('0', '1', '3', '5') \
         AND (d.situation IN ('0', '1') OR d.next_attempt_at IS NOT NULL) \
         ORDER BY m.received_at, m.id LIMIT $2",
    )
    .bind(text(route))
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingDelivery {
                delivery: delivery_from(row)?,
                transaction: row.try_get("transaction_name")?,
                business_key: row.try_get("business_key")?,
                received_at: row.try_get("received_at")?,
                canonical_json: row.try_get("canonical_json")?,
            })
        })
        .collect()
}

pub(crate) async fn learned_depara(
    pool: &Pool<Db>,
    uuid: &str,
) -> Result<Vec<LearnedDePara>, MonitorError> {
    let rows = sqlx::query(
        "SELECT alias, field, external_value, internal_value FROM monitor_learned_depara \
         WHERE message_uuid = $1 ORDER BY alias, field, external_value",
    )
    .bind(text(uuid))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LearnedDePara {
                alias: row.try_get("alias")?,
                field: row.try_get("field")?,
                external: row.try_get("external_value")?,
                internal: row.try_get("internal_value")?,
            })
        })
        .collect()
}

pub(crate) async fn list(
    pool: &Pool<Db>,
    filter: &MessageFilter,
) -> Result<MessagePage, MonitorError> {
    let page = filter.effective_page();
    let page_size = filter.effective_page_size();
    let clause = WhereClause::for_filter(filter);

    // The SQL is fixed fragments (WhereClause); every value is a bind parameter.
    let count_sql = format!("SELECT COUNT(*) FROM monitor_messages m{}", clause.sql);
    let mut count = sqlx::query_scalar::<Db, i64>(AssertSqlSafe(count_sql));
    for arg in &clause.args {
        count = match arg {
            Arg::Text(value) => count.bind(value.clone()),
            Arg::Int(value) => count.bind(*value),
        };
    }
    let total = count.fetch_one(pool).await?;

    let n = clause.args.len();
    let list_sql = format!(
        "SELECT {} FROM monitor_messages m{} ORDER BY m.received_at DESC, m.id DESC \
         LIMIT ${} OFFSET ${}",
        summary_columns!(),
        clause.sql,
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(AssertSqlSafe(list_sql));
    for arg in &clause.args {
        query = match arg {
            Arg::Text(value) => query.bind(value.clone()),
            Arg::Int(value) => query.bind(*value),
        };
    }
    let offset = i64::from(page - 1) * i64::from(page_size);
    let rows = query
        .bind(i64::from(page_size))
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let messages = rows
        .iter()
        .map(summary_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MessagePage {
        messages,
        total,
        page,
        page_size,
    })
}

pub(crate) async fn counts(pool: &Pool<Db>) -> Result<MonitorCounts, MonitorError> {
    let rows = sqlx::query(
        "SELECT situation, COUNT(*) AS messages, \
         CAST(COALESCE(SUM(duplicates), 0) AS BIGINT) AS duplicates \
         FROM monitor_messages GROUP BY situation",
    )
    .fetch_all(pool)
    .await?;
    let mut by_situation: Vec<(Situation, i64)> = Situation::ALL.iter().map(|s| (*s, 0)).collect();
    let (mut received, mut duplicates) = (0, 0);
    for row in &rows {
        let situation = situation_of(row, "situation")?;
        let messages: i64 = row.try_get("messages")?;
        received += messages;
        duplicates += row.try_get::<i64, _>("duplicates")?;
        if let Some(entry) = by_situation.iter_mut().find(|(s, _)| *s == situation) {
            entry.1 += messages;
        }
    }
    let refused = by_situation
        .iter()
        .find(|(s, _)| *s == Situation::Recusada)
        .map_or(0, |(_, n)| *n);
    Ok(MonitorCounts {
        received,
        accepted: received - refused,
        refused,
        duplicates,
        by_situation,
    })
}

pub(crate) async fn counts_by_transaction_and_route(
    pool: &Pool<Db>,
) -> Result<Vec<TransactionRouteCounts>, MonitorError> {
    let rows = sqlx::query(
        "SELECT m.transaction_name AS transaction_name, d.route AS route, \
         COUNT(*) AS received, \
         COUNT(CASE WHEN COALESCE(d.situation, m.situation) IN ('0', '1') THEN 1 END) AS waiting, \
         COUNT(CASE WHEN COALESCE(d.situation, m.situation) = '2' THEN 1 END) AS delivered, \
         COUNT(CASE WHEN COALESCE(d.situation, m.situation) IN ('3', '5') THEN 1 END) AS failed, \
         COUNT(CASE WHEN COALESCE(d.situation, m.situation) = '4' THEN 1 END) AS parked, \
         COUNT(CASE WHEN COALESCE(d.situation, m.situation) = '6' THEN 1 END) AS refused \
         FROM monitor_messages m LEFT JOIN monitor_deliveries d ON d.message_uuid = m.uuid \
         GROUP BY m.transaction_name, d.route",
    )
    .fetch_all(pool)
    .await?;
    let mut lines = rows
        .iter()
        .map(|row| {
            Ok(TransactionRouteCounts {
                transaction: row.try_get("transaction_name")?,
                route: row.try_get("route")?,
                received: row.try_get("received")?,
                waiting: row.try_get("waiting")?,
                delivered: row.try_get("delivered")?,
                failed: row.try_get("failed")?,
                parked: row.try_get("parked")?,
                refused: row.try_get("refused")?,
            })
        })
        .collect::<Result<Vec<_>, MonitorError>>()?;
    // The databases sort NULL differently: sort here, messages without a route last.
    lines.sort_by(|a, b| {
        (&a.transaction, a.route.is_none(), &a.route).cmp(&(
            &b.transaction,
            b.route.is_none(),
            &b.route,
        ))
    });
    Ok(lines)
}
