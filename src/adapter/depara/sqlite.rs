//! The De/Para in one SQLite file: the default, for one eaibus instance.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::{self, depara_store};
use super::{DeParaError, redact};

/// A De/Para kept in a SQLite file (WAL mode).
#[derive(Debug, Clone)]
pub struct SqliteDePara {
    pool: SqlitePool,
    /// Concurrent lookups, grouped into one statement.
    lookups: super::lookup_queue::LookupQueue,
}

impl SqliteDePara {
    /// Opens the file at `path`, creating it, its directory and its tables when missing.
    pub async fn open(path: &Path) -> Result<SqliteDePara, DeParaError> {
        let location = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DeParaError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let open = |source| DeParaError::Open {
            location: redact(&location),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open)?;
        for statement in sql::CREATE_TABLES {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(|source| DeParaError::Query {
                    operation: "create the De/Para tables",
                    source,
                })?;
        }
        Ok(SqliteDePara {
            lookups: Self::lookup_queue(&pool),
            pool,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the connections (waits for running queries).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The lookups of [`sql::lookups_json`] in one statement, numbered from 0 as asked.
const LOOKUPS: &str = "SELECT j.key, CASE WHEN j.value ->> 0 = 'i'
    THEN (SELECT internal_value FROM eaibus_depara WHERE reference = j.value ->> 1
          AND alias = j.value ->> 2 AND field = j.value ->> 3 AND external_value = j.value ->> 4)
    ELSE (SELECT external_value FROM eaibus_depara WHERE reference = j.value ->> 1
          AND alias = j.value ->> 2 AND field = j.value ->> 3 AND internal_value = j.value ->> 4
          ORDER BY external_value LIMIT 1) END
    FROM json_each($1) AS j";

depara_store!(SqliteDePara, sqlx::SqlitePool, LOOKUPS);
