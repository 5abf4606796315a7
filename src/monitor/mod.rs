//! The monitor store: a record of every message eaibus received or refused and of its
//! lifecycle — situation in the Protheus EAI queue vocabulary (eai-protocol.md §5.6), stage,
//! attempts, errors, the raw payload as received, the canonical JSON, the answer sent, one
//! delivery per route, an append-only timeline and the De/Para pairs learned. Ingest uses it for
//! idempotency by UUID and to answer duplicates the same way; delivery for attempts and retries;
//! the monitor pages for lists, details and counts.
//!
//! SQLite (a file, WAL) by default; PostgreSQL when several instances share the work. One API,
//! [`MonitorStore`], over both.
//!
//! Why not `sqlx::Any`: it needs a feature and runtime driver registration, maps every value
//! through its own narrow type set, and is configured by URL only, which leaves out what this
//! store needs per database (WAL, busy timeout and `BEGIN IMMEDIATE` on SQLite, a schema on
//! PostgreSQL). Why not code generic over `sqlx::Database`: every function would carry a long
//! list of higher-ranked bounds. Instead the SQL is written once, in portable SQL, in
//! `backend.rs`, and compiled twice with concrete types — as a module of `sqlite.rs` and of
//! `postgres.rs`, which add only their DDL and how a transaction begins.

mod checkpoint;
mod error;
mod filter;
mod model;
mod postgres;
mod sqlite;
pub mod time;
mod write_queue;

use write_queue::Write;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::SqlitePool;

pub use error::MonitorError;
pub use model::DeliveryReplay;
pub use model::{
    DEFAULT_PAGE_SIZE, DeliveryGate, DeliveryOutcome, DeliveryRecord, DeliveryStart, Direction,
    Format, LearnedDePara, MAX_PAGE_SIZE, MessageFilter, MessagePage, MessageRecord,
    MessageSummary, MonitorCounts, NewMessage, PendingDelivery, Progress, Received, Situation,
    Stage, Step, TimelineEntry, TransactionRouteCounts, aggregate_situation,
};

/// How long a started delivery attempt belongs to its worker before the retry scheduler may
/// hand it to another (the worker crashed or lost its connection).
pub const DEFAULT_DELIVERY_LEASE: Duration = Duration::from_secs(5 * 60);

/// SQLite has one write lock per database: writers that contend for it sleep in its busy
/// handler (1, 2, 5 … 100 ms). One writer connection makes them queue on the pool instead, in
/// order and without sleeping; reads use their own connections and never wait for writes (WAL).
#[derive(Debug, Clone)]
enum Backend {
    Sqlite {
        reader: SqlitePool,
        writer: SqlitePool,
        /// Checkpoints the WAL beside the writer (a store on a file it opened itself).
        checkpoints: Option<std::sync::Arc<checkpoint::Checkpointer>>,
    },
    Postgres(PgPool),
}

/// Runs the same backend function on whichever database the store has, on the connection
/// that may write. The default, so that a new operation is never sent to a read-only pool.
macro_rules! on_backend {
    ($store:expr, $function:ident ( $($arg:expr),* $(,)? )) => {
        match &$store.backend {
            Backend::Sqlite { writer, .. } => sqlite::$function(writer, $($arg),*).await,
            Backend::Postgres(pool) => postgres::$function(pool, $($arg),*).await,
        }
    };
}

/// [`on_backend`] for an operation that only reads.
macro_rules! on_reader {
    ($store:expr, $function:ident ( $($arg:expr),* $(,)? )) => {
        match &$store.backend {
            Backend::Sqlite { reader, .. } => sqlite::$function(reader, $($arg),*).await,
            Backend::Postgres(pool) => postgres::$function(pool, $($arg),*).await,
        }
    };
}

// After the macro, which they use.
pub mod resolution;
pub mod sync_run;

pub use resolution::{MAX_RESOLUTION_NOTE, Resolution, ResolveOutcome};
pub use sync_run::{
    NewSyncRun, StartedBy, SyncCounts, SyncKind, SyncOutcome, SyncRecorder, SyncRun, SyncRunFilter,
    SyncRunPage, SyncStatus,
};

/// The record of every message and its lifecycle. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct MonitorStore {
    backend: Backend,
    delivery_lease_ms: i64,
    /// The hot writes, committed in groups (see `write_queue.rs`).
    writes: std::sync::Arc<write_queue::WriteQueue>,
}

impl MonitorStore {
    /// Opens (or creates) the store in the SQLite file at `path`; creates missing tables.
    pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<MonitorStore, MonitorError> {
        let (reader, writer, checkpoints) = sqlite::open(path.as_ref()).await?;
        sqlite::migrate(&writer, time::now_millis()).await?;
        Ok(MonitorStore::with_backend(Backend::Sqlite {
            reader,
            writer,
            checkpoints: Some(checkpoint::Checkpointer::start(checkpoints)),
        }))
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`); creates missing tables.
    pub async fn connect_postgres(url: &str) -> Result<MonitorStore, MonitorError> {
        let options = PgConnectOptions::from_str(url)?;
        MonitorStore::connect_postgres_with(options).await
    }

    /// Connects with explicit options (for example a schema through
    /// `options([("search_path", "eaibus")])`); creates missing tables.
    pub async fn connect_postgres_with(
        options: PgConnectOptions,
    ) -> Result<MonitorStore, MonitorError> {
        let pool = postgres::connect(options).await?;
        MonitorStore::from_postgres_pool(pool).await
    }

    /// `postgres://…` or `postgresql://…` connects to PostgreSQL; anything else is an SQLite
    /// file path, with or without a `sqlite://` or `sqlite:` prefix.
    pub async fn open(location: &str) -> Result<MonitorStore, MonitorError> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return MonitorStore::connect_postgres(location).await;
        }
        let path = location
            .strip_prefix("sqlite://")
            .or_else(|| location.strip_prefix("sqlite:"))
            .unwrap_or(location);
        MonitorStore::open_sqlite(path).await
    }

    /// Uses an existing SQLite pool for reads and writes; runs the migrations.
    pub async fn from_sqlite_pool(pool: SqlitePool) -> Result<MonitorStore, MonitorError> {
        sqlite::migrate(&pool, time::now_millis()).await?;
        Ok(MonitorStore::with_backend(Backend::Sqlite {
            reader: pool.clone(),
            writer: pool,
            checkpoints: None,
        }))
    }

    /// Uses an existing PostgreSQL pool; runs the migrations.
    pub async fn from_postgres_pool(pool: PgPool) -> Result<MonitorStore, MonitorError> {
        postgres::migrate(&pool, time::now_millis()).await?;
        Ok(MonitorStore::with_backend(Backend::Postgres(pool)))
    }

    fn with_backend(backend: Backend) -> MonitorStore {
        MonitorStore {
            backend,
            delivery_lease_ms: duration_ms(DEFAULT_DELIVERY_LEASE),
            writes: Default::default(),
        }
    }

    /// Sets how long a started attempt is its worker's (default [`DEFAULT_DELIVERY_LEASE`]).
    pub fn with_delivery_lease(mut self, lease: Duration) -> MonitorStore {
        self.delivery_lease_ms = duration_ms(lease);
        self
    }

    /// "sqlite" or "postgres".
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the connections; clones of this store stop working.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite {
                reader,
                writer,
                checkpoints,
            } => {
                reader.close().await;
                writer.close().await;
                if let Some(checkpoints) = checkpoints {
                    checkpoints.close().await;
                }
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    // -- messages ---------------------------------------------------------------------------

    /// Records a decoded message unless its UUID is already known — the idempotency check. The
    /// insert is atomic: of any number of concurrent calls with one UUID exactly one gets
    /// [`Received::New`]; the others get [`Received::Duplicate`] with the record as stored
    /// (its `answer` is what to send back) and count as a duplicate arrival.
    pub async fn record_received(&self, message: &NewMessage) -> Result<Received, MonitorError> {
        self.record_received_with(message, Progress::default())
            .await
    }

    /// [`MonitorStore::record_received`] with the steps ingest took before recording the
    /// message: a new message is written with them at once (its timeline, the situation and
    /// stage of their outcome, the answer to keep), as if `record_progress` had followed in the
    /// same transaction. A duplicate is left as it was.
    pub async fn record_received_with(
        &self,
        message: &NewMessage,
        progress: Progress,
    ) -> Result<Received, MonitorError> {
        let message = message.clone();
        self.writes
            .submit(&self.backend, |reply| {
                Write::Received(write_queue::ReceivedWrite {
                    message,
                    progress,
                    reply,
                })
            })
            .await
    }

    /// Records a message refused before it could be accepted (undecodable, no UUID, schema), in
    /// situation Recusada at `stage`, so that received = accepted + refused. Without a UUID (an
    /// empty `message.uuid`), or when its UUID is already recorded, it is kept under a synthetic
    /// id `refused-<uuid v4>`. Returns the id it was recorded under.
    pub async fn record_refused(
        &self,
        message: &NewMessage,
        reason: &str,
        stage: Stage,
    ) -> Result<String, MonitorError> {
        let now = time::now_millis();
        on_backend!(self, record_refused(message, reason, stage, now))
    }

    /// Moves a message to `situation` at `stage` (ingest steps: validated, routed, logged,
    /// refused…) and appends it to the timeline; `error` becomes its last error. Once the
    /// message has deliveries, they decide its situation.
    pub async fn set_situation(
        &self,
        uuid: &str,
        situation: Situation,
        stage: Stage,
        error: Option<&str>,
    ) -> Result<(), MonitorError> {
        let now = time::now_millis();
        on_backend!(self, set_situation(uuid, situation, stage, error, now))
    }

    /// Keeps the answer sent to the sender, to answer a duplicate UUID the same way.
    /// Replaces the canonical form, e.g. after De/Para mapped values at ingest: deliveries send
    /// what is stored here.
    pub async fn set_canonical_json(&self, uuid: &str, json: &str) -> Result<(), MonitorError> {
        on_backend!(self, set_canonical_json(uuid, json))
    }

    pub async fn set_answer(&self, uuid: &str, answer: &str) -> Result<(), MonitorError> {
        on_backend!(self, set_answer(uuid, answer))
    }

    /// Appends a free entry to the message's timeline.
    pub async fn add_timeline(
        &self,
        uuid: &str,
        route: Option<&str>,
        stage: Stage,
        situation: Situation,
        detail: &str,
    ) -> Result<(), MonitorError> {
        let now = time::now_millis();
        on_backend!(
            self,
            add_timeline(uuid, route, stage, situation, detail, now)
        )
    }

    /// Writes what ingest did with a message in one transaction (see [`Progress`]).
    pub async fn record_progress(
        &self,
        uuid: &str,
        progress: &Progress,
    ) -> Result<(), MonitorError> {
        if progress.is_empty() {
            return Ok(());
        }
        let (uuid, progress) = (uuid.to_owned(), progress.clone());
        self.writes
            .submit(&self.backend, |reply| {
                Write::Progress(write_queue::ProgressWrite {
                    uuid,
                    progress,
                    reply,
                })
            })
            .await
    }

    /// Keeps the De/Para pairs learned while processing the message (upserts).
    pub async fn record_learned_depara(
        &self,
        uuid: &str,
        pairs: &[LearnedDePara],
    ) -> Result<(), MonitorError> {
        let now = time::now_millis();
        on_backend!(self, record_learned_depara(uuid, pairs, now))
    }

    // -- deliveries -------------------------------------------------------------------------

    /// Registers a delivery along `route` waiting to be sent at `due_at` (Aguardando execução)
    /// unless the route already has one; true when it was registered.
    pub async fn plan_delivery(
        &self,
        uuid: &str,
        route: &str,
        due_at: i64,
    ) -> Result<bool, MonitorError> {
        let now = time::now_millis();
        on_backend!(self, plan_delivery(uuid, route, due_at, now))
    }

    /// [`MonitorStore::plan_delivery`] for many messages in one transaction; messages the
    /// store does not know are left out. Returns the UUIDs that were planned.
    pub async fn plan_deliveries(
        &self,
        route: &str,
        uuids: &[String],
        due_at: i64,
    ) -> Result<Vec<String>, MonitorError> {
        if uuids.is_empty() {
            return Ok(Vec::new());
        }
        let now = time::now_millis();
        on_backend!(self, plan_deliveries(route, uuids, due_at, now))
    }

    /// Records deliveries along `route` that succeeded at their first attempt without being
    /// planned (a route consumer appended them to the route's topic itself): (UUID, response)
    /// each. Messages the store does not know, and those that have a delivery along `route`
    /// already, are left out. Returns the UUIDs recorded.
    pub async fn record_delivered(
        &self,
        route: &str,
        delivered: &[(String, String)],
    ) -> Result<Vec<String>, MonitorError> {
        if delivered.is_empty() {
            return Ok(Vec::new());
        }
        let (route, delivered) = (route.to_owned(), delivered.to_vec());
        self.writes
            .submit(&self.backend, |reply| {
                Write::Delivered(write_queue::DeliveredWrite {
                    route,
                    delivered,
                    reply,
                })
            })
            .await
    }

    /// What a route consumer reads before it delivers messages itself: see [`DeliveryGate`].
    pub async fn delivery_gate(
        &self,
        route: &str,
        uuids: &[&str],
        keys: &[&str],
    ) -> Result<DeliveryGate, MonitorError> {
        on_reader!(self, delivery_gate(route, uuids, keys))
    }

    /// Claims the next attempt along `route` (Executando), creating the delivery if needed.
    /// Only one caller gets [`DeliveryStart::Started`]: the delivery must be waiting, or failed
    /// / not delivered with its retry due, or running with its lease run out. The lease (see
    /// [`MonitorStore::with_delivery_lease`]) makes a crashed worker's attempt due again.
    pub async fn start_delivery(
        &self,
        uuid: &str,
        route: &str,
    ) -> Result<DeliveryStart, MonitorError> {
        let (uuid, route, lease_ms) = (uuid.to_owned(), route.to_owned(), self.delivery_lease_ms);
        self.writes
            .submit(&self.backend, |reply| {
                Write::Start(write_queue::StartWrite {
                    uuid,
                    route,
                    lease_ms,
                    reply,
                })
            })
            .await
    }

    /// Records how an attempt along `route` ended and returns the delivery's attempt count. The
    /// message's situation follows its deliveries: Finalizada once every route delivered;
    /// otherwise the most urgent route's (Bloqueado, dead-lettered Falhou, Não entregue, Falhou
    /// while retrying, Executando, Aguardando execução).
    pub async fn record_attempt(
        &self,
        uuid: &str,
        route: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<i64, MonitorError> {
        self.write_attempt(uuid, route, outcome, true)
            .await
            .map(Option::unwrap_or_default)
    }

    /// Records the outcome of an attempt made without [`MonitorStore::start_delivery`] first:
    /// a Kafka route's append, where the target's at-least-once lets two workers that race
    /// both append (consumers dedupe by UUID) and a claim would cost a write of its own. It
    /// counts only if the delivery could have been started now (the condition of
    /// `start_delivery`), and is then recorded as [`MonitorStore::record_attempt`] records it;
    /// returns the attempt count, or `None` when another worker had taken or settled it.
    pub async fn settle_attempt(
        &self,
        uuid: &str,
        route: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<Option<i64>, MonitorError> {
        self.write_attempt(uuid, route, outcome, false).await
    }

    async fn write_attempt(
        &self,
        uuid: &str,
        route: &str,
        outcome: &DeliveryOutcome,
        claimed: bool,
    ) -> Result<Option<i64>, MonitorError> {
        let (uuid, route, outcome) = (uuid.to_owned(), route.to_owned(), outcome.clone());
        self.writes
            .submit(&self.backend, |reply| {
                Write::Attempt(write_queue::AttemptWrite {
                    uuid,
                    route,
                    outcome,
                    claimed,
                    reply,
                })
            })
            .await
    }

    /// Manual "tentar novamente": a delivery in Falhou, Bloqueado or Não entregue goes back to
    /// Aguardando execução, due now, with its attempts at 0; the message's repeated failures
    /// count goes up by one. Any other situation is [`MonitorError::NotAllowed`].
    pub async fn reset_for_reprocess(&self, uuid: &str, route: &str) -> Result<(), MonitorError> {
        let now = time::now_millis();
        on_backend!(self, reset_for_reprocess(uuid, route, now))
    }

    /// Replay: a settled delivery (Finalizada, Falhou, Bloqueado, Não entregue) starts a new
    /// cycle of attempts — Aguardando execução, due now, attempts at 0 — so that a delivered
    /// message is sent again. Its history stays: the timeline gains an entry, the last response
    /// stays until a new one replaces it, and the replay is recorded with the state it left
    /// (see [`MonitorStore::delivery_replays`]). Returns how many times the delivery has been
    /// replayed. A delivery waiting or running, or none, is [`MonitorError::NotAllowed`].
    pub async fn replay_delivery(
        &self,
        uuid: &str,
        route: &str,
        reason: &str,
    ) -> Result<i64, MonitorError> {
        let now = time::now_millis();
        on_backend!(self, replay_delivery(uuid, route, reason, now))
    }

    /// The replays of the message's delivery along `route`, oldest first.
    pub async fn delivery_replays(
        &self,
        uuid: &str,
        route: &str,
    ) -> Result<Vec<DeliveryReplay>, MonitorError> {
        on_backend!(self, delivery_replays(uuid, route))
    }

    // -- queries ----------------------------------------------------------------------------

    pub async fn get(&self, uuid: &str) -> Result<Option<MessageRecord>, MonitorError> {
        on_reader!(self, get(uuid))
    }

    /// The message's history, oldest first.
    pub async fn timeline(&self, uuid: &str) -> Result<Vec<TimelineEntry>, MonitorError> {
        on_reader!(self, timeline(uuid))
    }

    /// The message's deliveries, by route.
    pub async fn deliveries(&self, uuid: &str) -> Result<Vec<DeliveryRecord>, MonitorError> {
        on_reader!(self, deliveries(uuid))
    }

    pub async fn delivery(
        &self,
        uuid: &str,
        route: &str,
    ) -> Result<Option<DeliveryRecord>, MonitorError> {
        on_reader!(self, delivery(uuid, route))
    }

    /// The deliveries along `route` that will be attempted, now or later (waiting, running,
    /// or failed / not delivered with a retry planned), oldest message first, with the
    /// message's business key and canonical JSON — a route worker's queue, to keep one key's
    /// deliveries in order.
    pub async fn pending_deliveries(
        &self,
        route: &str,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, MonitorError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_reader!(self, pending_deliveries(route, limit))
    }

    pub async fn learned_depara(&self, uuid: &str) -> Result<Vec<LearnedDePara>, MonitorError> {
        on_reader!(self, learned_depara(uuid))
    }

    /// One page of the messages matching `filter`, newest first, with the total count.
    pub async fn list(&self, filter: &MessageFilter) -> Result<MessagePage, MonitorError> {
        on_reader!(self, list(filter))
    }

    /// Received, accepted, refused, duplicates and one count per situation.
    pub async fn counts(&self) -> Result<MonitorCounts, MonitorError> {
        on_reader!(self, counts())
    }

    /// The dashboard: per transaction and route, how many messages wait, were delivered,
    /// failed, are parked or were refused.
    pub async fn counts_by_transaction_and_route(
        &self,
    ) -> Result<Vec<TransactionRouteCounts>, MonitorError> {
        on_reader!(self, counts_by_transaction_and_route())
    }

    /// Deliveries whose next attempt is due at `now` (waiting, failed, not delivered, or
    /// running past their lease), oldest due first — the retry scheduler's work list.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, MonitorError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_reader!(self, due_deliveries(now, limit))
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
