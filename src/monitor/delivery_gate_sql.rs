//! The read a route consumer makes before it delivers a polled batch itself (see
//! `delivery/direct.rs`). Compiled once per database, like `backend.rs`.

use sqlx::{Pool, QueryBuilder, Row};

use super::Db;
use super::backend::text;
use crate::monitor::error::MonitorError;
use crate::monitor::model::DeliveryGate;

/// UUIDs or keys per statement: well under either database's bound on parameters.
const PER_STATEMENT: usize = 500;

/// Which of `uuids` the store knows and which of them have a delivery along `route`; which of
/// `keys` have a delivery along `route` that the executor would still run (the condition of
/// `backend::pending_deliveries`).
pub(crate) async fn delivery_gate(
    pool: &Pool<Db>,
    route: &str,
    uuids: &[&str],
    keys: &[&str],
) -> Result<DeliveryGate, MonitorError> {
    let mut gate = DeliveryGate::default();
    for chunk in uuids.chunks(PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "SELECT m.uuid, d.route FROM monitor_messages m \
             LEFT JOIN monitor_deliveries d ON d.message_uuid = m.uuid AND d.route = ",
        );
        query.push_bind(text(route)).push(" WHERE m.uuid IN (");
        let mut list = query.separated(", ");
        for uuid in chunk {
            list.push_bind(text(uuid));
        }
        query.push(")");
        for row in query.build().fetch_all(pool).await? {
            let uuid: String = row.try_get(0)?;
            if row.try_get::<Option<String>, _>(1)?.is_some() {
                gate.has_delivery.insert(uuid.clone());
            }
            gate.known.insert(uuid);
        }
    }
    for chunk in keys.chunks(PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "SELECT DISTINCT m.business_key FROM monitor_messages m \
             JOIN monitor_deliveries d ON d.message_uuid = m.uuid \
             WHERE d.situation IN ('0', '1', '3', '5') \
             AND (d.situation IN ('0', '1') OR d.next_attempt_at IS NOT NULL) AND d.route = ",
        );
        query
            .push_bind(text(route))
            .push(" AND m.business_key IN (");
        let mut list = query.separated(", ");
        for key in chunk {
            list.push_bind(text(key));
        }
        query.push(")");
        for row in query.build().fetch_all(pool).await? {
            if let Some(key) = row.try_get::<Option<String>, _>(0)? {
                gate.busy_keys.insert(key);
            }
        }
    }
    Ok(gate)
}
