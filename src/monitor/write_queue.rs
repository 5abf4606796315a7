//! Group commit for the monitor store's hot writes.
//!
//! Every message costs ingest a write (received, with its steps; others follow when it is not
//! settled at once), and its delivery one or two more (a route consumer's record of its batch,
//! or a claim and an outcome). One transaction each would make the database's single writer the
//! bottleneck: SQLite commits one transaction at a time and sqlx hands every statement to the
//! connection's thread. So callers queue their write and wait; whoever finds the queue idle
//! starts a drain task that takes everything queued, writes it in ONE transaction with
//! multi-row statements (`write_batch_sql.rs`), answers each caller and goes on until the
//! queue is empty. A lone write is a batch of one, so nothing waits for a timer.
//!
//! If the batch's transaction fails as a whole, each write is tried again alone, so one bad
//! write cannot fail its neighbours. The drain is a task of its own, not the first caller's
//! future: a caller that goes away (an HTTP client hanging up) cannot abandon the others.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::error::MonitorError;
use super::model::{DeliveryOutcome, DeliveryStart, NewMessage, Progress, Received};
use super::{Backend, postgres, sqlite};

/// Most writes of one kind in one transaction; more wait for the next one.
const MAX_BATCH: usize = 256;

pub(super) type Reply<T> = oneshot::Sender<Result<T, MonitorError>>;

/// Ingest recorded a message (the idempotency insert), with the steps taken before.
pub(crate) struct ReceivedWrite {
    pub message: NewMessage,
    pub progress: Progress,
    pub reply: Reply<Received>,
}

/// Ingest's steps and outcome for a message.
pub(crate) struct ProgressWrite {
    pub uuid: String,
    pub progress: Progress,
    pub reply: Reply<()>,
}

/// A worker claims the next attempt of a delivery.
pub(crate) struct StartWrite {
    pub uuid: String,
    pub route: String,
    pub lease_ms: i64,
    pub reply: Reply<DeliveryStart>,
}

/// How an attempt ended.
pub(crate) struct AttemptWrite {
    pub uuid: String,
    pub route: String,
    pub outcome: DeliveryOutcome,
    /// False for an attempt made without a claim (see `MonitorStore::settle_attempt`): it
    /// counts only if the delivery could have been started now.
    pub claimed: bool,
    /// The delivery's attempt count, or `None` when an unclaimed attempt did not count.
    pub reply: Reply<Option<i64>>,
}

/// A route consumer's own deliveries of a polled batch (see `MonitorStore::record_delivered`).
pub(crate) struct DeliveredWrite {
    pub route: String,
    /// (UUID, response) each.
    pub delivered: Vec<(String, String)>,
    /// The UUIDs recorded.
    pub reply: Reply<Vec<String>>,
}

/// What one transaction writes, by kind, in the order they are applied.
#[derive(Default)]
pub(crate) struct Batch {
    pub received: Vec<ReceivedWrite>,
    pub progress: Vec<ProgressWrite>,
    pub starts: Vec<StartWrite>,
    pub attempts: Vec<AttemptWrite>,
    pub delivered: Vec<DeliveredWrite>,
}

impl Batch {
    fn len(&self) -> usize {
        self.received.len()
            + self.progress.len()
            + self.starts.len()
            + self.attempts.len()
            + self.delivered.len()
    }

    /// Moves up to [`MAX_BATCH`] writes of each kind out of `queued`.
    fn take_from(queued: &mut Batch) -> Batch {
        fn take<T>(from: &mut Vec<T>) -> Vec<T> {
            let n = from.len().min(MAX_BATCH);
            from.drain(..n).collect()
        }
        Batch {
            received: take(&mut queued.received),
            progress: take(&mut queued.progress),
            starts: take(&mut queued.starts),
            attempts: take(&mut queued.attempts),
            delivered: take(&mut queued.delivered),
        }
    }
}

/// One write as queued.
pub(crate) enum Write {
    Received(ReceivedWrite),
    Progress(ProgressWrite),
    Start(StartWrite),
    Attempt(AttemptWrite),
    Delivered(DeliveredWrite),
}

#[derive(Default)]
struct Queue {
    queued: Batch,
    /// A drain task is running and will see what is queued.
    draining: bool,
}

/// The queue of one store (shared by its clones).
#[derive(Default)]
pub(super) struct WriteQueue {
    state: Mutex<Queue>,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("WriteQueue")
            .field("queued", &state.queued.len())
            .field("draining", &state.draining)
            .finish()
    }
}

impl WriteQueue {
    /// Queues `write` and waits for its result.
    pub(super) async fn submit<T>(
        self: &Arc<Self>,
        backend: &Backend,
        write: impl FnOnce(Reply<T>) -> Write,
    ) -> Result<T, MonitorError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            match write(reply) {
                Write::Received(w) => queue.queued.received.push(w),
                Write::Progress(w) => queue.queued.progress.push(w),
                Write::Start(w) => queue.queued.starts.push(w),
                Write::Attempt(w) => queue.queued.attempts.push(w),
                Write::Delivered(w) => queue.queued.delivered.push(w),
            }
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            // The guard is made here and moved into the task: if the task is dropped before it
            // runs (its runtime shutting down), the guard still clears `draining`.
            let guard = Draining {
                queue: self.clone(),
                finished: false,
            };
            tokio::spawn(drain(guard, backend.clone()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(MonitorError::Unavailable(
                "the monitor store's writer stopped before answering".into(),
            ))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Clears `draining` if the drain ends early (a panic, a runtime shutting down), so that the
/// next caller starts one.
struct Draining {
    queue: Arc<WriteQueue>,
    finished: bool,
}

impl Drop for Draining {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.queue.lock();
            state.draining = false;
            // Their callers are told the writer stopped rather than left waiting.
            state.queued = Batch::default();
        }
    }
}

async fn drain(mut guard: Draining, backend: Backend) {
    loop {
        let batch = {
            let mut state = guard.queue.lock();
            if state.queued.len() == 0 {
                // Cleared under the lock: a write queued after this sees no drain and starts one.
                state.draining = false;
                drop(state);
                guard.finished = true;
                return;
            }
            Batch::take_from(&mut state.queued)
        };
        let now = super::time::now_millis();
        let (size, started) = (batch.len(), std::time::Instant::now());
        match &backend {
            Backend::Sqlite { writer, .. } => sqlite::write_batch(writer, batch, now).await,
            Backend::Postgres(pool) => postgres::write_batch(pool, batch, now).await,
        }
        tracing::trace!(
            writes = size,
            elapsed_us = started.elapsed().as_micros() as u64,
            "The monitor store wrote a group."
        );
    }
}
