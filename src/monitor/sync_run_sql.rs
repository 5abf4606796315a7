//! The SQL of sync runs, written once and compiled once per database like `backend.rs`.

use std::fmt::Write;

use sqlx::{AssertSqlSafe, Pool, Row};

use super::{Db, begin};
use crate::monitor::error::MonitorError;
use crate::monitor::sync_run::{
    NewSyncRun, StartedBy, SyncCounts, SyncKind, SyncRun, SyncRunFilter, SyncRunPage, SyncStatus,
    final_status,
};

/// Longest detail kept with a run.
const MAX_DETAIL: usize = 2000;

fn clean(value: &str) -> String {
    value
        .replace('\0', "\u{FFFD}")
        .chars()
        .take(MAX_DETAIL)
        .collect()
}

const COLUMNS: &str = "id, kind, started_by, actor, scope, started_at, finished_at, total, \
     succeeded, failed, skipped, status, detail";

fn run_from(row: &<Db as sqlx::Database>::Row) -> Result<SyncRun, MonitorError> {
    let code = |column: &str| -> Result<String, MonitorError> { Ok(row.try_get(column)?) };
    let kind = code("kind")?;
    let started_by = code("started_by")?;
    let status = code("status")?;
    Ok(SyncRun {
        id: row.try_get("id")?,
        kind: SyncKind::from_code(&kind).ok_or_else(|| MonitorError::corrupt("run kind", &kind))?,
        started_by: StartedBy::from_code(&started_by)
            .ok_or_else(|| MonitorError::corrupt("run starter", &started_by))?,
        actor: row.try_get("actor")?,
        scope: row.try_get("scope")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        total: row.try_get("total")?,
        succeeded: row.try_get("succeeded")?,
        failed: row.try_get("failed")?,
        skipped: row.try_get("skipped")?,
        status: SyncStatus::from_code(&status)
            .ok_or_else(|| MonitorError::corrupt("run status", &status))?,
        detail: row.try_get("detail")?,
    })
}

pub(crate) async fn insert_sync_run(
    pool: &Pool<Db>,
    run: &NewSyncRun,
    now: i64,
) -> Result<i64, MonitorError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO monitor_sync_runs (kind, started_by, actor, scope, started_at, status) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(run.kind.code())
    .bind(run.started_by.code())
    .bind(run.actor.as_deref().map(clean))
    .bind(clean(&run.scope))
    .bind(now)
    .bind(SyncStatus::Running.code())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub(crate) async fn add_sync_counts(
    pool: &Pool<Db>,
    id: i64,
    counts: &SyncCounts,
) -> Result<(), MonitorError> {
    sqlx::query(
        "UPDATE monitor_sync_runs SET total = total + $2, succeeded = succeeded + $3, \
         failed = failed + $4, skipped = skipped + $5 WHERE id = $1",
    )
    .bind(id)
    .bind(counts.total())
    .bind(counts.succeeded)
    .bind(counts.failed)
    .bind(counts.skipped)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn finish_sync_run(
    pool: &Pool<Db>,
    id: i64,
    error: Option<&str>,
    now: i64,
) -> Result<Option<SyncRun>, MonitorError> {
    let mut tx = begin(pool).await?;
    let select = format!("SELECT {COLUMNS} FROM monitor_sync_runs WHERE id = $1");
    let Some(row) = sqlx::query(AssertSqlSafe(select.clone()))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let run = run_from(&row)?;
    if run.finished_at.is_some() {
        return Ok(Some(run));
    }
    let counts = SyncCounts {
        succeeded: run.succeeded,
        failed: run.failed,
        skipped: run.skipped,
    };
    let status = final_status(&counts, error.is_some());
    sqlx::query(
        "UPDATE monitor_sync_runs SET finished_at = $2, status = $3, \
         detail = COALESCE($4, detail) WHERE id = $1 AND finished_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(status.code())
    .bind(error.map(clean))
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(AssertSqlSafe(select))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(run_from(&row)?))
}

pub(crate) async fn close_abandoned_sync_runs(
    pool: &Pool<Db>,
    kind: SyncKind,
    before: i64,
    now: i64,
) -> Result<u64, MonitorError> {
    let closed = sqlx::query(
        "UPDATE monitor_sync_runs SET finished_at = $3, status = $4, detail = $5 \
         WHERE kind = $1 AND finished_at IS NULL AND started_at < $2",
    )
    .bind(kind.code())
    .bind(before)
    .bind(now)
    .bind(SyncStatus::Error.code())
    .bind("abandoned: the process stopped before closing the run")
    .execute(pool)
    .await?
    .rows_affected();
    Ok(closed)
}

pub(crate) async fn sync_run(pool: &Pool<Db>, id: i64) -> Result<Option<SyncRun>, MonitorError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitor_sync_runs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(run_from).transpose()
}

pub(crate) async fn sync_runs(
    pool: &Pool<Db>,
    filter: &SyncRunFilter,
) -> Result<SyncRunPage, MonitorError> {
    // Fixed fragments; every value travels as a bind parameter.
    let mut clause = String::new();
    let mut args: Vec<&'static str> = Vec::new();
    for (column, code) in [
        ("kind", filter.kind.map(SyncKind::code)),
        ("started_by", filter.started_by.map(StartedBy::code)),
        ("status", filter.status.map(SyncStatus::code)),
    ] {
        if let Some(code) = code {
            args.push(code);
            clause.push_str(if clause.is_empty() {
                " WHERE "
            } else {
                " AND "
            });
            let _ = write!(clause, "{column} = ${}", args.len());
        }
    }
    let mut count = sqlx::query_scalar::<Db, i64>(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM monitor_sync_runs{clause}"
    )));
    for arg in &args {
        count = count.bind(*arg);
    }
    let total = count.fetch_one(pool).await?;
    let page = filter.effective_page();
    let page_size = filter.effective_page_size();
    let n = args.len();
    let mut query = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitor_sync_runs{clause} ORDER BY started_at DESC, id DESC \
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    )));
    for arg in &args {
        query = query.bind(*arg);
    }
    let rows = query
        .bind(i64::from(page_size))
        .bind(i64::from(page - 1) * i64::from(page_size))
        .fetch_all(pool)
        .await?;
    Ok(SyncRunPage {
        runs: rows.iter().map(run_from).collect::<Result<_, _>>()?,
        total,
        page,
        page_size,
    })
}
