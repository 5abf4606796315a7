//! The monitor store on an SQLite file (the default): WAL journal, writes serialised by
//! `BEGIN IMMEDIATE` so that a transaction never has to upgrade a read lock (which SQLite
//! answers with SQLITE_BUSY instead of waiting).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Transaction};

use super::error::MonitorError;

pub(super) type Db = sqlx::Sqlite;

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite_0001_monitor.sql")),
    (
        2,
        include_str!("migrations/sqlite_0002_resolutions_sync_runs.sql"),
    ),
    (
        3,
        include_str!("migrations/sqlite_0003_pending_deliveries.sql"),
    ),
    (
        4,
        include_str!("migrations/sqlite_0004_delivery_replays.sql"),
    ),
    (5, include_str!("migrations/sqlite_0005_payloads.sql")),
];

/// How long a writer waits for another one before giving up with a retryable error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn begin(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// `BEGIN IMMEDIATE` already holds the database's write lock.
pub(super) async fn lock_migrations(_tx: &mut Transaction<'static, Db>) -> Result<(), sqlx::Error> {
    Ok(())
}

/// Opens the file twice: a pool of readers and a pool of one writer (see `Backend`).
/// The store's reading connections, its one writing connection and the connection that
/// checkpoints its WAL (`checkpoint.rs`).
pub(super) async fn open(path: &Path) -> Result<(Pool<Db>, Pool<Db>, Pool<Db>), MonitorError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            MonitorError::Unavailable(format!(
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
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    // A message's row is written several times within a second (received, deliveries): a
    // larger WAL between checkpoints copies each page back once, not once per change (32 MiB
    // of 4 KiB pages; the default is 1,000 pages). The checkpointing connection copies most
    // of it back before the writer's own checkpoint comes due (`checkpoint.rs`).
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone().pragma("wal_autocheckpoint", "8192"))
        .await?;
    let checkpoints = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    Ok((reader, writer, checkpoints))
}

/// The write transaction already holds the whole file: reading the rows is enough.
pub(super) const LOCK_MESSAGES: &str = "";

/// The write transaction holds the whole file, so a count taken in it tells which rows exist
/// and whether an insert will meet any. Rows asked back cost: SQLite builds `RETURNING` rows in
/// a table of their own and sqlx hands each one over from its thread, which for a group of 100
/// deliveries was most of the statement's time.
pub(super) const WRITER_HOLDS_FILE: bool = true;

// The SQL shared with PostgreSQL, compiled here for SQLite (see backend.rs).
#[allow(clippy::duplicate_mod)]
#[path = "backend.rs"]
mod backend;
pub(super) use backend::*;

// Resolutions and sync runs: their SQL, shared with PostgreSQL like backend.rs, kept apart from
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

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::MIGRATIONS;
    use crate::monitor::MonitorStore;

    /// A store written before the payloads had a table of their own keeps them on upgrade.
    #[tokio::test]
    async fn payloads_move_to_their_own_table_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut old = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE monitor_schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut old)
        .await
        .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 5) {
            sqlx::raw_sql(*sql).execute(&mut old).await.unwrap();
            sqlx::query("INSERT INTO monitor_schema_version VALUES ($1, 0)")
                .bind(*version)
                .execute(&mut old)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO monitor_messages (uuid, transaction_name, version, direction, \
             source_application, format, origin, situation, stage, received_at, raw_payload, \
             canonical_json, answer) \
             VALUES ('old-1', 'RETAILSALES', '2.009', 'inbound', 'OMNI', 'json', 'rest', '0', \
             'logged', 1, x'00ff7b7d', '{\"Header\":{}}', 'the answer')",
        )
        .execute(&mut old)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO monitor_deliveries (message_uuid, route, situation, stage, attempts, \
             created_at, updated_at) VALUES ('old-1', 'omni', '0', 'routed', 0, 1, 1)",
        )
        .execute(&mut old)
        .await
        .unwrap();
        old.close().await.unwrap();

        let store = MonitorStore::open_sqlite(&path).await.unwrap();
        let record = store.get("old-1").await.unwrap().expect("kept");
        assert_eq!(record.raw_payload, vec![0x00, 0xff, 0x7b, 0x7d]);
        assert_eq!(record.canonical_json.as_deref(), Some("{\"Header\":{}}"));
        assert_eq!(record.answer.as_deref(), Some("the answer"));
        let pending = store.pending_deliveries("omni", 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].canonical_json.as_deref(),
            Some("{\"Header\":{}}")
        );
        store.close().await;
    }
}
