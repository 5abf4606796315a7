//! What the pages need that the monitor store does not answer yet, read with SQL from the
//! monitor's tables in the same database (read-only).
//! Each function here is a candidate to move into `monitor::MonitorStore`.

use sqlx::Row;

use super::db::{WebDb, with_pool};
use crate::monitor::Situation;

/// The dashboard's headline numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Kpis {
    /// Adapters in the table (send or receive enabled).
    pub active_integrations: i64,
    /// When a delivery last succeeded (ms since epoch).
    pub last_successful_sync: Option<i64>,
    /// Messages received in the last 24 hours that are now failed, parked, not delivered or
    /// refused, and not resolved by hand.
    pub errors_last_24h: i64,
    /// Deliveries that succeeded since the first of this month (Brasília time).
    pub synced_this_month: i64,
}

/// The latency histogram of delivered deliveries (received → delivered) along one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub route: String,
    /// Cumulative counts per bucket bound in milliseconds (the last is +Inf).
    pub buckets: Vec<(Option<i64>, i64)>,
    pub sum_ms: i64,
    pub count: i64,
}

pub const LATENCY_BOUNDS_MS: [i64; 9] = [10, 50, 100, 250, 500, 1000, 5000, 30_000, 300_000];

impl WebDb {
    pub async fn kpis(&self, now: i64, month_start: i64) -> Result<Kpis, sqlx::Error> {
        let failing = [
            Situation::Falhou,
            Situation::Bloqueado,
            Situation::NaoEntregue,
            Situation::Recusada,
        ];
        let last: Option<i64> = with_pool!(self, pool => sqlx::query(
            "SELECT MAX(delivered_at) FROM monitor_deliveries WHERE situation = $1",
        )
        .bind(Situation::Finalizada.code())
        .fetch_one(pool)
        .await?
        .try_get::<Option<i64>, _>(0)?);
        let errors: i64 = with_pool!(self, pool => sqlx::query(
            "SELECT COUNT(*) FROM monitor_messages m WHERE received_at >= $1 \
             AND situation IN ($2, $3, $4, $5) AND NOT EXISTS (SELECT 1 FROM monitor_resolutions r \
             WHERE r.message_uuid = m.uuid AND r.repeated_failures = m.repeated_failures)",
        )
        .bind(now - 24 * 3600 * 1000)
        .bind(failing[0].code())
        .bind(failing[1].code())
        .bind(failing[2].code())
        .bind(failing[3].code())
        .fetch_one(pool)
        .await?
        .try_get::<i64, _>(0)?);
        let month: i64 = with_pool!(self, pool => sqlx::query(
            "SELECT COUNT(*) FROM monitor_deliveries WHERE situation = $1 AND delivered_at >= $2",
        )
        .bind(Situation::Finalizada.code())
        .bind(month_start)
        .fetch_one(pool)
        .await?
        .try_get::<i64, _>(0)?);
        Ok(Kpis {
            active_integrations: 0,
            last_successful_sync: last,
            errors_last_24h: errors,
            synced_this_month: month,
        })
    }

    /// One histogram per route, from the delivered deliveries.
    pub async fn latency(&self) -> Result<Vec<LatencyHistogram>, sqlx::Error> {
        let mut columns = String::new();
        for bound in LATENCY_BOUNDS_MS {
            columns.push_str(&format!(
                ", CAST(SUM(CASE WHEN d.delivered_at - m.received_at <= {bound} THEN 1 ELSE 0 END) AS BIGINT)"
            ));
        }
        let sql = format!(
            "SELECT d.route, COUNT(*), CAST(COALESCE(SUM(d.delivered_at - m.received_at), 0) AS BIGINT){columns} \
             FROM monitor_deliveries d JOIN monitor_messages m ON m.uuid = d.message_uuid \
             WHERE d.situation = $1 AND d.delivered_at IS NOT NULL GROUP BY d.route ORDER BY d.route"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(Situation::Finalizada.code())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let count: i64 = r.try_get(1)?;
                let mut buckets = Vec::new();
                for (i, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
                    // SUM of BIGINT is NUMERIC on PostgreSQL: the query casts it back.
                    let n: i64 = r.try_get::<Option<i64>, _>(3 + i)?.unwrap_or(0);
                    buckets.push((Some(*bound), n));
                }
                buckets.push((None, count));
                let sum_ms: i64 = r.try_get(2)?;
                out.push(LatencyHistogram {
                    route: r.try_get(0)?,
                    buckets,
                    sum_ms,
                    count,
                });
            }
            Ok(out)
        })
    }
}
