//! The order read model on an SQLite file (the default): WAL journal, writes serialised by
//! `BEGIN IMMEDIATE`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Transaction};

use super::StoreError;

pub(super) type Db = sqlx::Sqlite;

/// The binary column type.
pub(super) const BLOB: &str = "BLOB";

/// The placeholder of the `n`th parameter (from 1) of a generated statement. Anonymous `?`:
/// with numbered ones, binding asks SQLite each parameter's name, a linear search, which makes
/// a 5,000-parameter bulk insert quadratic.
pub(super) fn placeholder(_n: usize) -> String {
    "?".to_owned()
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn begin(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// `BEGIN IMMEDIATE` already holds the write lock.
pub(super) async fn lock_migrations(_tx: &mut Transaction<'static, Db>) -> Result<(), sqlx::Error> {
    Ok(())
}

pub(super) async fn open(path: &Path) -> Result<Pool<Db>, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // Rows are a few KiB (history and facts): larger pages mean fewer overflow pages and
        // fewer writes for a rebuild. Takes effect when the file is created.
        .page_size(16_384)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    Ok(pool)
}

// The SQL shared with PostgreSQL, compiled here for SQLite.
#[allow(clippy::duplicate_mod)]
#[path = "backend.rs"]
mod backend;
pub(super) use backend::*;
