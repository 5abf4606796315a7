//! The monitor store on PostgreSQL, for several eaibus instances sharing the work.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Transaction};

use super::error::MonitorError;

pub(super) type Db = sqlx::Postgres;

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres_0001_monitor.sql")),
    (
        2,
        include_str!("migrations/postgres_0002_resolutions_sync_runs.sql"),
    ),
    (
        3,
        include_str!("migrations/postgres_0003_pending_deliveries.sql"),
    ),
    (
        4,
        include_str!("migrations/postgres_0004_delivery_replays.sql"),
    ),
    (5, include_str!("migrations/postgres_0005_payloads.sql")),
    (
        6,
        include_str!("migrations/postgres_0006_payload_compression.sql"),
    ),
];

/// Advisory lock key that serialises migrations between instances starting together.
const MIGRATION_LOCK: i64 = 0x6561_6962_7573_6d6f; // "eaibusmo"

pub(super) async fn begin(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

pub(super) async fn lock_migrations(tx: &mut Transaction<'static, Db>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn connect(options: PgConnectOptions) -> Result<Pool<Db>, MonitorError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Row locks in one order (UUID), so that concurrent batches cannot deadlock.
pub(super) const LOCK_MESSAGES: &str = " ORDER BY uuid FOR UPDATE";

/// Other instances write at the same time: which rows exist or were inserted is asked of the
/// rows themselves (`FOR UPDATE`, `RETURNING`), which travel back in one response.
pub(super) const WRITER_HOLDS_FILE: bool = false;

// The SQL shared with SQLite, compiled here for PostgreSQL (see backend.rs).
#[allow(clippy::duplicate_mod)]
#[path = "backend.rs"]
mod backend;
pub(super) use backend::*;

// Resolutions and sync runs: their SQL, shared with SQLite like backend.rs, kept apart from
// the message write path.
#[allow(clippy::duplicate_mod)]
#[path = "resolution_sql.rs"]
mod resolution_sql;
pub(super) use resolution_sql::*;
#[allow(clippy::duplicate_mod)]
#[path = "sync_run_sql.rs"]
mod sync_run_sql;
pub(super) use sync_run_sql::*;
#[allow(clippy::duplicate_mod)]
#[path = "delivery_gate_sql.rs"]
mod delivery_gate_sql;
pub(super) use delivery_gate_sql::*;
#[allow(clippy::duplicate_mod)]
#[path = "write_batch_sql.rs"]
mod write_batch_sql;
pub(super) use write_batch_sql::*;
