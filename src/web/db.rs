//! The web module's own tables (users, API tokens, sessions, audit, sign-in throttling) in the monitor
//! database named by `store.url`: SQLite by default, PostgreSQL when the URL says so. The SQL is
//! portable (`$n` parameters, BIGINT times in ms); only the DDL differs. Created at start.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Runs `$body` with `$pool` bound to whichever pool the database has (the body is compiled
/// once per backend, so rows keep their concrete types).
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            $crate::web::db::Pool::Sqlite($pool) => $body,
            $crate::web::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection pool to the web tables.
#[derive(Debug, Clone)]
pub struct WebDb {
    pub(crate) pool: Pool,
    /// Tokens verified lately (by SHA-256 of the token), so that an API client does not pay an
    /// argon2 verification on every call; see `users::TOKEN_CACHE_MS`.
    pub(crate) token_cache: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (super::users::User, i64)>>,
    >,
}

const SQLITE_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS web_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at BIGINT NOT NULL, \
     actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)",
];
const POSTGRES_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS web_audit (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
     at BIGINT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, \
     target TEXT NOT NULL, detail TEXT NOT NULL)",
];
const COMMON_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS web_users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, \
     role TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_tokens (id TEXT PRIMARY KEY, username TEXT NOT NULL, \
     name TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, \
     csrf TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_audit_by_at ON web_audit (at)",
    // A disabled user keeps its row (and its place in the audit) but cannot sign in.
    "CREATE TABLE IF NOT EXISTS web_disabled_users (username TEXT PRIMARY KEY, \
     disabled_at BIGINT NOT NULL, disabled_by TEXT NOT NULL)",
    // Failed sign-ins, for throttling (see `throttle.rs`); old rows are pruned as new ones come.
    "CREATE TABLE IF NOT EXISTS web_login_failures (username TEXT NOT NULL, address TEXT NOT NULL, \
     at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_login_failures_by_user ON web_login_failures (username, at)",
    "CREATE INDEX IF NOT EXISTS web_login_failures_by_address ON web_login_failures (address, at)",
    // Where each user signed in successfully lately: the user's lock does not apply there.
    "CREATE TABLE IF NOT EXISTS web_login_known (username TEXT NOT NULL, address TEXT NOT NULL, \
     last_at BIGINT NOT NULL, PRIMARY KEY (username, address))",
];

impl WebDb {
    /// Opens the database at `location` (as `MonitorStore::open` reads it) and creates the tables.
    pub async fn open(location: &str) -> Result<WebDb, sqlx::Error> {
        let pool = if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(location)?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?,
            )
        } else {
            let path = location
                .strip_prefix("sqlite://")
                .or_else(|| location.strip_prefix("sqlite:"))
                .unwrap_or(location);
            let options = SqliteConnectOptions::from_str("sqlite://")?
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30));
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?,
            )
        };
        let db = WebDb {
            pool,
            token_cache: Default::default(),
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let dialect = match self.pool {
            Pool::Sqlite(_) => SQLITE_DDL,
            Pool::Postgres(_) => POSTGRES_DDL,
        };
        for statement in dialect.iter().chain(COMMON_DDL) {
            with_pool!(self, pool => sqlx::query(*statement).execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }
}
