//! The De/Para in PostgreSQL: shared by every eaibus instance of a consumer group.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

use super::sql::{self, depara_store};
use super::{DeParaError, redact};

/// A key for `pg_advisory_xact_lock`, so that instances starting together create the tables
/// one after the other.
const MIGRATION_LOCK: i64 = 0x6561_6962_7573_0001;

/// A De/Para kept in PostgreSQL, in the connection's schema or in a named one.
#[derive(Debug, Clone)]
pub struct PostgresDePara {
    pool: PgPool,
    /// Concurrent lookups, grouped into one statement.
    lookups: super::lookup_queue::LookupQueue,
}

impl PostgresDePara {
    /// Connects to `url` and creates the tables when missing, in the default schema.
    pub async fn connect(url: &str) -> Result<PostgresDePara, DeParaError> {
        Self::open(url, None).await
    }

    /// Connects to `url` with `search_path` set to `schema`, creating the schema and the
    /// tables when missing. Several stores (tests, tenants) can share one database this way.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<PostgresDePara, DeParaError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(DeParaError::SchemaName(schema.to_owned()));
        }
        Self::open(url, Some(schema)).await
    }

    async fn open(url: &str, schema: Option<&str>) -> Result<PostgresDePara, DeParaError> {
        let open = |source| DeParaError::Open {
            location: redact(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(open)?;
        if let Some(schema) = schema {
            options = options.options([("search_path", schema)]);
        }
        // One direct connection first: an unreachable server or a bad password is reported at
        // once with its cause, where a pool would retry until its timeout and say only that.
        let probe = options.connect().await.map_err(open)?;
        probe.close().await.map_err(open)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let failed = |source| DeParaError::Query {
            operation: "create the De/Para tables",
            source,
        };
        let mut tx = pool.begin().await.map_err(failed)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        if let Some(schema) = schema {
            // The name was checked to be a plain lower-case identifier.
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        for statement in sql::CREATE_TABLES {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        Ok(PostgresDePara {
            lookups: Self::lookup_queue(&pool),
            pool,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the connections (waits for running queries).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The lookups of [`sql::lookups_json`] in one statement, numbered from 0 as asked.
const LOOKUPS: &str = "SELECT (l.n - 1)::bigint, CASE WHEN l.v ->> 0 = 'i'
    THEN (SELECT internal_value FROM eaibus_depara WHERE reference = l.v ->> 1
          AND alias = l.v ->> 2 AND field = l.v ->> 3 AND external_value = l.v ->> 4)
    ELSE (SELECT external_value FROM eaibus_depara WHERE reference = l.v ->> 1
          AND alias = l.v ->> 2 AND field = l.v ->> 3 AND internal_value = l.v ->> 4
          ORDER BY external_value LIMIT 1) END
    FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS l(v, n)";

depara_store!(PostgresDePara, sqlx::PgPool, LOOKUPS);
