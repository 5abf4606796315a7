//! The order read model: orders, their parts, status history, invoices, id aliases, pending
//! reports, the projection's checkpoint and its outbox — on SQLite (a file, the default) or
//! PostgreSQL, with the SQL written once (`backend.rs`, compiled for each database as the
//! monitor store does).
//!
//! A batch of events is projected in ONE transaction that also moves the checkpoint (compare
//! and set) and records the outputs to send (outbox): each event takes effect once even when the
//! log delivers it twice, and no status change is lost between the commit and its publication.

mod digest;
mod line;
mod postgres;
mod sqlite;

pub use digest::{DigestBuilder, Dump};
pub use line::OrderLine;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::SqlitePool;

use super::aggregate::{Cancellation, Derived, Effect, Order};
use super::events::OrderEvent;
use super::model::Announcement;
use super::status::{Flow, Status};
use crate::config::Config;
use crate::log::Record;

/// What went wrong in the order store, by how to handle it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or is busy: try again.
    #[error("the order store is unavailable: {0}")]
    Unavailable(String),
    /// Another writer moved the checkpoint or an order first (a rebuild swapped in, or another
    /// instance): reload and project again.
    #[error("the order store changed under this batch: {0}")]
    Conflict(String),
    /// The database refused the statement or holds something unreadable.
    #[error("the order store failed: {0}")]
    Database(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        let retryable = match &error {
            sqlx::Error::Database(e) => {
                let code = e.code();
                let code = code.as_deref().unwrap_or("");
                let sqlite_busy = code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
                sqlite_busy || matches!(code, "40001" | "40P01" | "53300" | "57P01" | "57P03")
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            _ => false,
        };
        if retryable {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Database(error.to_string())
        }
    }
}

impl From<prost::DecodeError> for StoreError {
    fn from(error: prost::DecodeError) -> StoreError {
        StoreError::Database(format!("stored order facts do not decode: {error}"))
    }
}

/// One output waiting to be sent: an order-status record or a traceability message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Deterministic: the same status change gives the same id (and the same output UUID).
    pub id: String,
    /// `status`, or `trace:<route>`.
    pub kind: String,
    pub key: String,
    pub payload: String,
    pub created_at: i64,
}

/// What a projected batch did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchResult {
    /// Events projected (records at or past the checkpoint).
    pub projected: usize,
    /// Records before the checkpoint: already applied, skipped.
    pub already_applied: usize,
    /// Records that are not order events (bad payload): skipped, counted.
    pub unreadable: usize,
    pub announcements: Vec<Announcement>,
    /// The checkpoint after the batch, per (topic, partition): the next offset to read.
    pub checkpoints: BTreeMap<(String, i32), i64>,
}

/// Builds the outputs of status changes (see `order::output`).
pub trait OutputBuilder: Sync {
    fn outputs(&self, announcement: &Announcement, order: &Derived) -> Vec<OutboxRow>;
}

/// No outputs (rebuild, tests).
pub struct NoOutputs;

impl OutputBuilder for NoOutputs {
    fn outputs(&self, _: &Announcement, _: &Derived) -> Vec<OutboxRow> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Rows

/// `order_orders`: one row per order; its parts, status history and invoices are JSON arrays
/// in the same row (one write per order, read in one go).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub order_id: String,
    pub status: String,
    pub status_text: String,
    pub customer_id: String,
    pub ecommerce_order: String,
    pub company_id: String,
    pub branch_id: String,
    /// JSON of [`Cancellation`], or empty.
    pub cancellation: String,
    /// JSON array of reservation ids.
    pub reservations: String,
    pub updated_at: i64,
}

/// One part of an order (`order_orders.parts`, JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartRow {
    pub order_id: String,
    pub flow: String,
    pub status: String,
    pub status_text: String,
    pub since: i64,
    /// Protheus order ids, as a JSON array.
    pub order_ids: String,
    pub order_numbers: String,
}

/// One line of an order's status history (`order_orders.history`, JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryRow {
    pub order_id: String,
    pub seq: i64,
    pub at_ms: i64,
    pub flow: String,
    pub status: String,
    pub text: String,
    pub previous: String,
    pub effect: String,
    pub event_id: String,
    pub source_uuid: String,
    pub note: String,
}

/// One invoice of an order (`order_orders.invoices`, JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceRow {
    pub order_id: String,
    pub series: String,
    pub number: String,
    pub flow: String,
    pub internal_id: String,
    pub status_text: String,
    pub access_key: String,
    pub issue_date: String,
    pub value: f64,
    pub order_ref: String,
    pub reported_at: i64,
}

/// Every row of one order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRows {
    pub order: OrderRow,
    pub parts: Vec<PartRow>,
    pub history: Vec<HistoryRow>,
    pub invoices: Vec<InvoiceRow>,
}

pub(crate) fn status_cols(status: Option<&Status>) -> (String, String) {
    match status {
        Some(s) => (s.code().to_owned(), s.text().to_owned()),
        None => (String::new(), String::new()),
    }
}

fn json_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>()).unwrap_or_default()
}

impl OrderRows {
    pub fn of(derived: &Derived) -> OrderRows {
        let id = &derived.order_id;
        let (status, status_text) = status_cols(derived.status.as_ref());
        let order = OrderRow {
            order_id: id.clone(),
            status,
            status_text,
            customer_id: derived.customer_id.clone(),
            ecommerce_order: derived.ecommerce_order.clone(),
            company_id: derived.company_id.clone(),
            branch_id: derived.branch_id.clone(),
            cancellation: derived
                .cancellation
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default())
                .unwrap_or_default(),
            reservations: json_list(&derived.reservations),
            updated_at: derived.updated_at,
        };
        let parts = derived
            .parts
            .values()
            .map(|p| PartRow {
                order_id: id.clone(),
                flow: p.flow.code().to_owned(),
                status: p.status.code().to_owned(),
                status_text: p.status.text().to_owned(),
                since: p.since,
                order_ids: json_list(&p.order_ids),
                order_numbers: json_list(&p.order_numbers),
            })
            .collect();
        let history = derived
            .history
            .iter()
            .enumerate()
            .map(|(n, h)| HistoryRow {
                order_id: id.clone(),
                seq: n as i64,
                at_ms: h.at,
                flow: h.flow.map(Flow::code).unwrap_or_default().to_owned(),
                status: h
                    .status
                    .as_ref()
                    .map(Status::code)
                    .unwrap_or_default()
                    .to_owned(),
                text: h.text.clone(),
                previous: status_cols(h.previous.as_ref()).0,
                effect: h.effect.code().to_owned(),
                event_id: h.event_id.clone(),
                source_uuid: h.source_uuid.clone(),
                note: h.note.clone(),
            })
            .collect();
        let invoices = derived
            .invoices
            .iter()
            .map(|i| InvoiceRow {
                order_id: id.clone(),
                series: i.series.clone(),
                number: i.number.clone(),
                flow: i.flow.code().to_owned(),
                internal_id: i.internal_id.clone(),
                status_text: i.status_text.clone(),
                access_key: i.access_key.clone(),
                issue_date: i.issue_date.clone(),
                value: i.value,
                order_ref: i.order_id.clone(),
                reported_at: i.reported_at,
            })
            .collect();
        OrderRows {
            order,
            parts,
            history,
            invoices,
        }
    }
}

/// One order of a rebuilt read model, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuiltOrder {
    pub line: OrderLine,
    /// The aggregate state: [`facts_blob`] and [`current_json`].
    pub facts: Vec<u8>,
    pub current: String,
}

/// The stored form of an order's aggregate state.
pub(crate) fn facts_blob(order: &Order) -> Vec<u8> {
    // `OrderFacts { repeated OrderEvent facts = 1 }`, written without copying the facts.
    let len: usize = order
        .facts()
        .iter()
        .map(|f| prost::encoding::message::encoded_len(1, f))
        .sum();
    let mut buf = Vec::with_capacity(len);
    for fact in order.facts() {
        prost::encoding::message::encode(1, fact, &mut buf);
    }
    debug_assert_eq!(buf.len(), len);
    buf
}

pub(crate) fn current_json(order: &Order) -> String {
    serde_json::to_string(order.current()).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn restore_order(id: &str, facts: &[u8], current: &str) -> Result<Order, StoreError> {
    use prost::Message as _;
    let facts = super::events::OrderFacts::decode(facts)?.facts;
    let current: BTreeMap<Flow, Status> = serde_json::from_str(current).unwrap_or_default();
    Ok(Order::restore(id, facts, current))
}

pub(crate) fn status_of(code: &str, text: &str) -> Option<Status> {
    (!code.is_empty()).then(|| Status::from_code(code, text))
}

pub(crate) fn cancellation_of(json: &str) -> Option<Cancellation> {
    serde_json::from_str(json).ok()
}

pub(crate) fn effect_of(code: &str) -> Effect {
    Effect::from_code(code)
}

// ---------------------------------------------------------------------------------------------
// The store

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! on_backend {
    ($store:expr, $function:ident ( $($arg:expr),* $(,)? )) => {
        match &$store.backend {
            Backend::Sqlite(pool) => sqlite::$function(pool, $($arg),*).await,
            Backend::Postgres(pool) => postgres::$function(pool, $($arg),*).await,
        }
    };
}

/// The order read model. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct OrderStore {
    backend: Backend,
}

/// Where the read model lives for a configuration: the monitor's PostgreSQL database when the
/// monitor store is on PostgreSQL (tables `order_*`), else `orders.db` beside the monitor's
/// SQLite file (`data/orders.db` by default).
pub fn location_for(config: &Config) -> String {
    let monitor = &config.store.url;
    if monitor.starts_with("postgres://") || monitor.starts_with("postgresql://") {
        return monitor.clone();
    }
    let path = monitor
        .strip_prefix("sqlite://")
        .or_else(|| monitor.strip_prefix("sqlite:"))
        .unwrap_or(monitor);
    let dir = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| config.paths.data.clone(), Path::to_path_buf);
    format!("sqlite://{}", dir.join("orders.db").display())
}

impl OrderStore {
    /// `postgres://…` connects to PostgreSQL; anything else is an SQLite file path, with or
    /// without a `sqlite://` prefix. Creates missing tables.
    pub async fn open(location: &str) -> Result<OrderStore, StoreError> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(location)?;
            return OrderStore::connect_postgres_with(options).await;
        }
        let path = location
            .strip_prefix("sqlite://")
            .or_else(|| location.strip_prefix("sqlite:"))
            .unwrap_or(location);
        let pool = sqlite::open(Path::new(path)).await?;
        sqlite::migrate(&pool).await?;
        Ok(OrderStore {
            backend: Backend::Sqlite(pool),
        })
    }

    /// The store of a configuration ([`location_for`]).
    pub async fn open_for(config: &Config) -> Result<OrderStore, StoreError> {
        OrderStore::open(&location_for(config)).await
    }

    pub async fn connect_postgres_with(
        options: PgConnectOptions,
    ) -> Result<OrderStore, StoreError> {
        let pool = postgres::connect(options).await?;
        postgres::migrate(&pool).await?;
        Ok(OrderStore {
            backend: Backend::Postgres(pool),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Projects a batch of `eai.order-events` records in one transaction: records before the
    /// stored checkpoint are skipped, the read model, the checkpoint and the outbox are written
    /// together. [`StoreError::Conflict`] when another writer moved the checkpoint or an order
    /// meanwhile: nothing was written; reload the checkpoint and project again.
    pub async fn project(
        &self,
        records: &[Record],
        outputs: &dyn OutputBuilder,
    ) -> Result<BatchResult, StoreError> {
        on_backend!(self, project(records, outputs))
    }

    /// The checkpoint: the next offset to read per (topic, partition).
    pub async fn checkpoints(&self) -> Result<BTreeMap<(String, i32), i64>, StoreError> {
        on_backend!(self, checkpoints())
    }

    /// Outputs recorded and not yet sent, oldest first.
    pub async fn outbox(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_backend!(self, outbox(limit))
    }

    /// Forgets outputs that were sent.
    pub async fn outbox_sent(&self, ids: &[String]) -> Result<(), StoreError> {
        on_backend!(self, outbox_sent(ids))
    }

    /// The order an id names: the OMNI id, or an alias (Protheus sale id, order InternalId).
    pub async fn resolve(&self, id: &str) -> Result<Option<String>, StoreError> {
        on_backend!(self, resolve(id))
    }

    /// The stored rows of one order, by its OMNI id.
    pub async fn rows(&self, order_id: &str) -> Result<Option<OrderRows>, StoreError> {
        on_backend!(self, rows(order_id))
    }

    /// The ids that name an order (aliases).
    pub async fn aliases_of(&self, order_id: &str) -> Result<Vec<String>, StoreError> {
        on_backend!(self, aliases_of(order_id))
    }

    /// The aggregate state of one order.
    pub async fn order(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        on_backend!(self, load_order(order_id))
    }

    /// Reports waiting for the mapping of their order.
    pub async fn pending(&self) -> Result<Vec<(String, OrderEvent)>, StoreError> {
        on_backend!(self, all_pending())
    }

    /// Every row, for the digest.
    pub async fn dump(&self) -> Result<Dump, StoreError> {
        on_backend!(self, dump())
    }

    /// The digest of the stored read model (see [`Dump::digest`]).
    pub async fn digest(&self) -> Result<String, StoreError> {
        Ok(self.dump().await?.digest())
    }

    /// Replaces the whole read model and checkpoint in one transaction: the rebuild's swap. The
    /// orders come from `orders` as they are made (so making them and writing them overlap),
    /// then the aliases, pending reports and checkpoint are written. The outbox is kept.
    /// `progress` is called with the orders written. Returns how many orders were written.
    pub async fn replace_all(
        &self,
        orders: tokio::sync::mpsc::Receiver<Vec<RebuiltOrder>>,
        aliases: &[(String, String)],
        pending: &[(String, OrderEvent)],
        checkpoints: &BTreeMap<(String, i32), i64>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, StoreError> {
        on_backend!(
            self,
            replace_all(orders, aliases, pending, checkpoints, progress)
        )
    }

    /// Counts: orders, aliases, pending reports.
    pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
        on_backend!(self, counts())
    }
}

/// Sizes of the read model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreCounts {
    pub orders: i64,
    pub aliases: i64,
    /// Reports waiting for their order's mapping.
    pub pending: i64,
}

/// The table definitions; `{blob}` is the binary type of the database.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS order_orders (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    status_text TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    ecommerce_order TEXT NOT NULL,
    company_id TEXT NOT NULL,
    branch_id TEXT NOT NULL,
    cancellation TEXT NOT NULL,
    reservations TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    parts TEXT NOT NULL,
    history TEXT NOT NULL,
    invoices TEXT NOT NULL,
    version BIGINT NOT NULL,
    facts {blob} NOT NULL,
    current_status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_orders_by_status ON order_orders (status, updated_at);
CREATE TABLE IF NOT EXISTS order_aliases (
    alias TEXT PRIMARY KEY,
    order_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_aliases_by_order ON order_aliases (order_id);
CREATE TABLE IF NOT EXISTS order_pending (
    reference TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload {blob} NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (reference, event_id)
);
CREATE INDEX IF NOT EXISTS order_pending_by_event ON order_pending (event_id);
CREATE TABLE IF NOT EXISTS order_checkpoints (
    topic TEXT NOT NULL,
    partition_no BIGINT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition_no)
);
CREATE TABLE IF NOT EXISTS order_outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    record_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
";
