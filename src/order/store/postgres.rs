//! The order read model on PostgreSQL (tables `order_*` in the monitor's database).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Transaction};

use super::StoreError;

pub(super) type Db = sqlx::Postgres;

/// The binary column type.
pub(super) const BLOB: &str = "BYTEA";

/// The placeholder of the `n`th parameter (from 1) of a generated statement.
pub(super) fn placeholder(n: usize) -> String {
    format!("${n}")
}

/// Advisory lock key that serialises migrations between instances starting together.
const MIGRATION_LOCK: i64 = 0x6561_6962_7573_6f72; // "eaibusor"

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

pub(super) async fn connect(options: PgConnectOptions) -> Result<Pool<Db>, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    Ok(pool)
}

// The SQL shared with SQLite, compiled here for PostgreSQL.
#[allow(clippy::duplicate_mod)]
#[path = "backend.rs"]
mod backend;
pub(super) use backend::*;
