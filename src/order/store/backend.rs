//! The order store's SQL, written once and compiled once per database (see the monitor store's
//! `backend.rs` for the pattern): `$n` parameters, `INSERT … ON CONFLICT`, integer milliseconds.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Pool, Row, Transaction};

use super::{BLOB, Db, begin, lock_migrations, placeholder};
use crate::log::Record;
use crate::order::aggregate::{Derived, Order};
use crate::order::events::OrderEvent;
use crate::order::model::{Loader, Model};
use crate::order::store::{
    BatchResult, Dump, OrderLine, OrderRow, OrderRows, OutboxRow, OutputBuilder, RebuiltOrder,
    SCHEMA, StoreCounts, StoreError, current_json, facts_blob, restore_order,
};

type Tx = Transaction<'static, Db>;

pub(crate) async fn migrate(pool: &Pool<Db>) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    lock_migrations(&mut tx).await?;
    let sql = SCHEMA.replace("{blob}", BLOB);
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Projection

/// Reads what a batch needs inside its transaction, and remembers the versions it read.
struct TxLoader<'t> {
    tx: &'t mut Tx,
    versions: HashMap<String, i64>,
}

#[async_trait]
impl Loader for TxLoader<'_> {
    async fn order(&mut self, id: &str) -> Result<Option<Order>, StoreError> {
        let row = sqlx::query(
            "SELECT facts, current_status, version FROM order_orders WHERE order_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **self.tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let facts: Vec<u8> = row.try_get(0)?;
        let current: String = row.try_get(1)?;
        let version: i64 = row.try_get(2)?;
        self.versions.insert(id.to_owned(), version);
        restore_order(id, &facts, &current).map(Some)
    }

    async fn alias(&mut self, alias: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT order_id FROM order_aliases WHERE alias = $1")
                .bind(alias)
                .fetch_optional(&mut **self.tx)
                .await?,
        )
    }

    async fn pending(&mut self, reference: &str) -> Result<Vec<OrderEvent>, StoreError> {
        let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM order_pending WHERE reference = $1 ORDER BY event_id",
        )
        .bind(reference)
        .fetch_all(&mut **self.tx)
        .await?;
        payloads
            .iter()
            .map(|p| OrderEvent::from_bytes(p).map_err(StoreError::from))
            .collect()
    }
}

pub(crate) async fn project(
    pool: &Pool<Db>,
    records: &[Record],
    outputs: &dyn OutputBuilder,
) -> Result<BatchResult, StoreError> {
    let mut tx = begin(pool).await?;
    let mut stored: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
    for record in records {
        let key = (record.topic.clone(), record.partition);
        if stored.contains_key(&key) {
            continue;
        }
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT next_offset FROM order_checkpoints WHERE topic = $1 AND partition_no = $2",
        )
        .bind(&record.topic)
        .bind(i64::from(record.partition))
        .fetch_optional(&mut *tx)
        .await?;
        stored.insert(key, next);
    }
    let mut result = BatchResult::default();
    let mut model = Model::new();
    let versions = {
        let mut loader = TxLoader {
            tx: &mut tx,
            versions: HashMap::new(),
        };
        for record in records {
            let key = (record.topic.clone(), record.partition);
            let next = stored.get(&key).copied().flatten().unwrap_or(0);
            if record.offset < next {
                result.already_applied += 1;
                continue;
            }
            match OrderEvent::from_bytes(&record.payload) {
                Ok(event) => {
                    let announced = model.project(&mut loader, event).await?;
                    result.announcements.extend(announced);
                    result.projected += 1;
                }
                Err(e) => {
                    tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "A record of the order events is not an order event; it is skipped.");
                    result.unreadable += 1;
                }
            }
            let entry = result.checkpoints.entry(key).or_insert(0);
            *entry = (*entry).max(record.offset + 1);
        }
        loader.versions
    };
    let changes = model.take_changes();
    let mut derived: HashMap<String, Derived> = HashMap::new();
    for order in &changes.orders {
        let view = order.derive();
        write_order(&mut tx, order, &view, versions.get(&order.id).copied()).await?;
        derived.insert(order.id.clone(), view);
    }
    for (alias, order) in &changes.aliases {
        sqlx::query(
            "INSERT INTO order_aliases (alias, order_id) VALUES ($1, $2) \
             ON CONFLICT (alias) DO NOTHING",
        )
        .bind(alias)
        .bind(order)
        .execute(&mut *tx)
        .await?;
    }
    for event_id in &changes.removed_pending {
        sqlx::query("DELETE FROM order_pending WHERE event_id = $1")
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
    }
    for (reference, event) in &changes.added_pending {
        sqlx::query(
            "INSERT INTO order_pending (reference, event_id, payload, at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (reference, event_id) DO NOTHING",
        )
        .bind(reference)
        .bind(&event.event_id)
        .bind(event.to_bytes())
        .bind(event.at())
        .execute(&mut *tx)
        .await?;
    }
    for ((topic, partition), next) in &result.checkpoints {
        let moved = match stored.get(&(topic.clone(), *partition)).copied().flatten() {
            Some(before) => sqlx::query(
                "UPDATE order_checkpoints SET next_offset = $3 \
                 WHERE topic = $1 AND partition_no = $2 AND next_offset = $4",
            )
            .bind(topic)
            .bind(i64::from(*partition))
            .bind(*next)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "INSERT INTO order_checkpoints (topic, partition_no, next_offset) \
                 VALUES ($1, $2, $3) ON CONFLICT (topic, partition_no) DO NOTHING",
            )
            .bind(topic)
            .bind(i64::from(*partition))
            .bind(*next)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if moved != 1 {
            return Err(StoreError::Conflict(format!(
                "the checkpoint of {topic}/{partition} moved"
            )));
        }
    }
    for announcement in &result.announcements {
        let Some(view) = derived.get(&announcement.order_id) else {
            continue;
        };
        for row in outputs.outputs(announcement, view) {
            sqlx::query(
                "INSERT INTO order_outbox (id, kind, record_key, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&row.id)
            .bind(&row.kind)
            .bind(&row.key)
            .bind(&row.payload)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(result)
}

/// Writes an order's row; `version` is the one read (None: the order is new). A version that
/// changed meanwhile is a conflict.
async fn write_order(
    tx: &mut Tx,
    order: &Order,
    view: &Derived,
    version: Option<i64>,
) -> Result<(), StoreError> {
    let o = OrderLine::of(view);
    let facts = facts_blob(order);
    let current = current_json(order);
    let written = match version {
        Some(version) => sqlx::query(
            "UPDATE order_orders SET status = $2, status_text = $3, customer_id = $4, \
             ecommerce_order = $5, company_id = $6, branch_id = $7, cancellation = $8, \
             reservations = $9, updated_at = $10, parts = $11, history = $12, invoices = $13, \
             version = $14, facts = $15, current_status = $16 \
             WHERE order_id = $1 AND version = $17",
        )
        .bind(&o.order_id)
        .bind(&o.status)
        .bind(&o.status_text)
        .bind(&o.customer_id)
        .bind(&o.ecommerce_order)
        .bind(&o.company_id)
        .bind(&o.branch_id)
        .bind(&o.cancellation)
        .bind(&o.reservations)
        .bind(o.updated_at)
        .bind(&o.parts)
        .bind(&o.history)
        .bind(&o.invoices)
        .bind(version + 1)
        .bind(facts)
        .bind(current)
        .bind(version)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        None => sqlx::query(
            "INSERT INTO order_orders (order_id, status, status_text, customer_id, \
             ecommerce_order, company_id, branch_id, cancellation, reservations, updated_at, \
             parts, history, invoices, version, facts, current_status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $15) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&o.order_id)
        .bind(&o.status)
        .bind(&o.status_text)
        .bind(&o.customer_id)
        .bind(&o.ecommerce_order)
        .bind(&o.company_id)
        .bind(&o.branch_id)
        .bind(&o.cancellation)
        .bind(&o.reservations)
        .bind(o.updated_at)
        .bind(&o.parts)
        .bind(&o.history)
        .bind(&o.invoices)
        .bind(facts)
        .bind(current)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
    };
    if written != 1 {
        return Err(StoreError::Conflict(format!(
            "order {} was changed by another writer",
            o.order_id
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bulk inserts

enum Val {
    T(String),
    I(i64),
    B(Vec<u8>),
}

/// Rows of one table, written many per statement.
struct Inserter {
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Val>>,
    per_statement: usize,
    written: u64,
}

impl Inserter {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Inserter {
        Inserter {
            table,
            columns,
            rows: Vec::new(),
            // SQLite takes up to 32766 parameters in a statement, PostgreSQL 65535.
            per_statement: (30_000 / columns.len()).min(500),
            written: 0,
        }
    }

    async fn push(&mut self, tx: &mut Tx, row: Vec<Val>) -> Result<(), StoreError> {
        self.rows.push(row);
        if self.rows.len() >= self.per_statement {
            self.flush(tx).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.columns.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table,
            self.columns.join(", ")
        );
        for r in 0..self.rows.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..n {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&placeholder(r * n + c + 1));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in self.rows.drain(..) {
            for value in row {
                query = match value {
                    Val::T(v) => query.bind(v),
                    Val::I(v) => query.bind(v),
                    Val::B(v) => query.bind(v),
                };
            }
        }
        let done = query.execute(&mut **tx).await?.rows_affected();
        self.written += done;
        Ok(())
    }
}

pub(crate) async fn replace_all(
    pool: &Pool<Db>,
    mut orders: tokio::sync::mpsc::Receiver<Vec<RebuiltOrder>>,
    aliases: &[(String, String)],
    pending: &[(String, OrderEvent)],
    checkpoints: &BTreeMap<(String, i32), i64>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, StoreError> {
    let mut tx = begin(pool).await?;
    for table in [
        "order_orders",
        "order_aliases",
        "order_pending",
        "order_checkpoints",
    ] {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    let mut inserter = Inserter::new(
        "order_orders",
        &[
            "order_id",
            "status",
            "status_text",
            "customer_id",
            "ecommerce_order",
            "company_id",
            "branch_id",
            "cancellation",
            "reservations",
            "updated_at",
            "parts",
            "history",
            "invoices",
            "version",
            "facts",
            "current_status",
        ],
    );
    let mut written = 0u64;
    while let Some(batch) = orders.recv().await {
        for order in batch {
            let o = order.line;
            inserter
                .push(
                    &mut tx,
                    vec![
                        Val::T(o.order_id),
                        Val::T(o.status),
                        Val::T(o.status_text),
                        Val::T(o.customer_id),
                        Val::T(o.ecommerce_order),
                        Val::T(o.company_id),
                        Val::T(o.branch_id),
                        Val::T(o.cancellation),
                        Val::T(o.reservations),
                        Val::I(o.updated_at),
                        Val::T(o.parts),
                        Val::T(o.history),
                        Val::T(o.invoices),
                        Val::I(1),
                        Val::B(order.facts),
                        Val::T(order.current),
                    ],
                )
                .await?;
            written += 1;
            if written.is_multiple_of(1024) {
                progress(written);
            }
        }
    }
    inserter.flush(&mut tx).await?;
    let mut inserter = Inserter::new("order_aliases", &["alias", "order_id"]);
    for (alias, order) in aliases {
        inserter
            .push(&mut tx, vec![Val::T(alias.clone()), Val::T(order.clone())])
            .await?;
    }
    inserter.flush(&mut tx).await?;
    let mut inserter = Inserter::new(
        "order_pending",
        &["reference", "event_id", "payload", "at_ms"],
    );
    for (reference, event) in pending {
        inserter
            .push(
                &mut tx,
                vec![
                    Val::T(reference.clone()),
                    Val::T(event.event_id.clone()),
                    Val::B(event.to_bytes()),
                    Val::I(event.at()),
                ],
            )
            .await?;
    }
    inserter.flush(&mut tx).await?;
    for ((topic, partition), next) in checkpoints {
        sqlx::query(
            "INSERT INTO order_checkpoints (topic, partition_no, next_offset) VALUES ($1, $2, $3)",
        )
        .bind(topic)
        .bind(i64::from(*partition))
        .bind(*next)
        .execute(&mut *tx)
        .await?;
    }
    progress(written);
    tx.commit().await?;
    Ok(written)
}

// ---------------------------------------------------------------------------------------------
// Reads

pub(crate) async fn checkpoints(
    pool: &Pool<Db>,
) -> Result<BTreeMap<(String, i32), i64>, StoreError> {
    let rows = sqlx::query("SELECT topic, partition_no, next_offset FROM order_checkpoints")
        .fetch_all(pool)
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let partition: i64 = row.try_get(1)?;
        out.insert(
            (row.try_get(0)?, i32::try_from(partition).unwrap_or(0)),
            row.try_get(2)?,
        );
    }
    Ok(out)
}

pub(crate) async fn outbox(pool: &Pool<Db>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, kind, record_key, payload, created_at FROM order_outbox \
         ORDER BY created_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OutboxRow {
                id: row.try_get(0)?,
                kind: row.try_get(1)?,
                key: row.try_get(2)?,
                payload: row.try_get(3)?,
                created_at: row.try_get(4)?,
            })
        })
        .collect()
}

pub(crate) async fn outbox_sent(pool: &Pool<Db>, ids: &[String]) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    for id in ids {
        sqlx::query("DELETE FROM order_outbox WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn resolve(pool: &Pool<Db>, id: &str) -> Result<Option<String>, StoreError> {
    let direct: Option<String> =
        sqlx::query_scalar("SELECT order_id FROM order_orders WHERE order_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    if direct.is_some() {
        return Ok(direct);
    }
    Ok(
        sqlx::query_scalar("SELECT order_id FROM order_aliases WHERE alias = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub(crate) async fn load_order(pool: &Pool<Db>, id: &str) -> Result<Option<Order>, StoreError> {
    let row = sqlx::query("SELECT facts, current_status FROM order_orders WHERE order_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let facts: Vec<u8> = row.try_get(0)?;
            let current: String = row.try_get(1)?;
            restore_order(id, &facts, &current).map(Some)
        }
    }
}

pub(crate) async fn aliases_of(pool: &Pool<Db>, id: &str) -> Result<Vec<String>, StoreError> {
    let mut aliases: Vec<String> =
        sqlx::query_scalar("SELECT alias FROM order_aliases WHERE order_id = $1")
            .bind(id)
            .fetch_all(pool)
            .await?;
    aliases.sort();
    Ok(aliases)
}

const ORDER_COLUMNS: &str = "order_id, status, status_text, customer_id, ecommerce_order, \
    company_id, branch_id, cancellation, reservations, updated_at, parts, history, invoices";

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Database(format!("a stored order row does not decode: {e}")))
}

fn order_rows(row: &<Db as sqlx::Database>::Row) -> Result<OrderRows, StoreError> {
    let order = OrderRow {
        order_id: row.try_get(0)?,
        status: row.try_get(1)?,
        status_text: row.try_get(2)?,
        customer_id: row.try_get(3)?,
        ecommerce_order: row.try_get(4)?,
        company_id: row.try_get(5)?,
        branch_id: row.try_get(6)?,
        cancellation: row.try_get(7)?,
        reservations: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    };
    let parts: String = row.try_get(10)?;
    let history: String = row.try_get(11)?;
    let invoices: String = row.try_get(12)?;
    Ok(OrderRows {
        order,
        parts: decode(&parts)?,
        history: decode(&history)?,
        invoices: decode(&invoices)?,
    })
}

pub(crate) async fn rows(pool: &Pool<Db>, id: &str) -> Result<Option<OrderRows>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM order_orders WHERE order_id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(order_rows).transpose()
}

pub(crate) async fn all_pending(pool: &Pool<Db>) -> Result<Vec<(String, OrderEvent)>, StoreError> {
    let rows = sqlx::query("SELECT reference, payload FROM order_pending")
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: Vec<u8> = row.try_get(1)?;
        out.push((row.try_get(0)?, OrderEvent::from_bytes(&payload)?));
    }
    out.sort_by(|a, b| (&a.0, &a.1.event_id).cmp(&(&b.0, &b.1.event_id)));
    Ok(out)
}

pub(crate) async fn dump(pool: &Pool<Db>) -> Result<Dump, StoreError> {
    let mut dump = Dump::default();
    for row in sqlx::query(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM order_orders"
    )))
    .fetch_all(pool)
    .await?
    {
        dump.orders.push(OrderLine {
            order_id: row.try_get(0)?,
            status: row.try_get(1)?,
            status_text: row.try_get(2)?,
            customer_id: row.try_get(3)?,
            ecommerce_order: row.try_get(4)?,
            company_id: row.try_get(5)?,
            branch_id: row.try_get(6)?,
            cancellation: row.try_get(7)?,
            reservations: row.try_get(8)?,
            updated_at: row.try_get(9)?,
            parts: row.try_get(10)?,
            history: row.try_get(11)?,
            invoices: row.try_get(12)?,
        });
    }
    for row in sqlx::query("SELECT alias, order_id FROM order_aliases")
        .fetch_all(pool)
        .await?
    {
        dump.aliases.push((row.try_get(0)?, row.try_get(1)?));
    }
    for row in sqlx::query("SELECT reference, event_id FROM order_pending")
        .fetch_all(pool)
        .await?
    {
        dump.pending.push((row.try_get(0)?, row.try_get(1)?));
    }
    Ok(dump)
}

pub(crate) async fn counts(pool: &Pool<Db>) -> Result<StoreCounts, StoreError> {
    Ok(StoreCounts {
        orders: sqlx::query_scalar("SELECT COUNT(*) FROM order_orders")
            .fetch_one(pool)
            .await?,
        aliases: sqlx::query_scalar("SELECT COUNT(*) FROM order_aliases")
            .fetch_one(pool)
            .await?,
        pending: sqlx::query_scalar("SELECT COUNT(DISTINCT event_id) FROM order_pending")
            .fetch_one(pool)
            .await?,
    })
}
