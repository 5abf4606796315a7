//! The SQL of resolutions, written once and compiled once per database like `backend.rs`.

use sqlx::{Pool, Row};

use super::{Db, begin};
use crate::monitor::error::MonitorError;
use crate::monitor::model::Situation;
use crate::monitor::resolution::{Resolution, ResolveOutcome, resolvable, timeline_detail};

/// PostgreSQL refuses NUL in text; the stores keep the same text on both databases.
fn clean(value: &str) -> String {
    value.replace('\0', "\u{FFFD}")
}

/// A resolution that still holds: the message was not reprocessed after it.
const HOLDING: &str = "SELECT r.message_uuid, r.resolved_by, r.resolved_at, r.note \
     FROM monitor_resolutions r JOIN monitor_messages m \
     ON m.uuid = r.message_uuid AND m.repeated_failures = r.repeated_failures \
     WHERE r.message_uuid = $1";

fn resolution_from(row: &<Db as sqlx::Database>::Row) -> Result<Resolution, MonitorError> {
    Ok(Resolution {
        uuid: row.try_get(0)?,
        resolved_by: row.try_get(1)?,
        resolved_at: row.try_get(2)?,
        note: row.try_get(3)?,
    })
}

pub(crate) async fn resolve(
    pool: &Pool<Db>,
    uuid: &str,
    by: &str,
    note: Option<&str>,
    now: i64,
) -> Result<ResolveOutcome, MonitorError> {
    let uuid = clean(uuid);
    let mut tx = begin(pool).await?;
    // Takes the message's row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE holds the write lock),
    // so that a reprocess and a resolution of one message do not interleave.
    let found = sqlx::query("UPDATE monitor_messages SET attempts = attempts WHERE uuid = $1")
        .bind(&uuid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if found == 0 {
        return Err(MonitorError::UnknownMessage { uuid });
    }
    if let Some(row) = sqlx::query(HOLDING)
        .bind(&uuid)
        .fetch_optional(&mut *tx)
        .await?
    {
        return Ok(ResolveOutcome::AlreadyResolved(resolution_from(&row)?));
    }
    let row =
        sqlx::query("SELECT situation, repeated_failures FROM monitor_messages WHERE uuid = $1")
            .bind(&uuid)
            .fetch_one(&mut *tx)
            .await?;
    let code: String = row.try_get(0)?;
    let situation =
        Situation::from_code(&code).ok_or_else(|| MonitorError::corrupt("situation", &code))?;
    if !resolvable(situation) {
        return Ok(ResolveOutcome::Finished);
    }
    let repeated_failures: i64 = row.try_get(1)?;
    let by = clean(by);
    let note = note.map(clean);
    sqlx::query(
        "INSERT INTO monitor_resolutions \
         (message_uuid, resolved_by, resolved_at, note, repeated_failures) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_uuid) DO UPDATE SET \
         resolved_by = excluded.resolved_by, resolved_at = excluded.resolved_at, \
         note = excluded.note, repeated_failures = excluded.repeated_failures",
    )
    .bind(&uuid)
    .bind(&by)
    .bind(now)
    .bind(note.as_deref())
    .bind(repeated_failures)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO monitor_timeline (message_uuid, route, at, stage, situation, attempt, detail) \
         SELECT uuid, NULL, $2, stage, situation, NULL, $3 FROM monitor_messages WHERE uuid = $1",
    )
    .bind(&uuid)
    .bind(now)
    .bind(timeline_detail(&by, note.as_deref()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ResolveOutcome::Resolved(Resolution {
        uuid,
        resolved_by: by,
        resolved_at: now,
        note,
    }))
}

pub(crate) async fn resolution(
    pool: &Pool<Db>,
    uuid: &str,
) -> Result<Option<Resolution>, MonitorError> {
    let row = sqlx::query(HOLDING)
        .bind(clean(uuid))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(resolution_from).transpose()
}
