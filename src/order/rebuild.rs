//! Rebuild: the read model again from offset 0 of `eai.order-events`.
//!
//! 1. The end offset of every partition is taken; the rebuild reads up to there.
//! 2. Every event is folded into a fresh, in-memory read model (the same [`Model`] code the live
//!    projection runs, with nothing to load; facts are only recorded, since a rebuild announces
//!    nothing; they are kept encoded). The next chunk of the log is read and decoded while one
//!    is folded.
//! 3. Each order's state is derived once, its statuses settled, its row serialised and hashed
//!    for the digest ([`DigestBuilder`]: the stored columns themselves, so the live model's
//!    digest is computed from what it stores without parsing it), on one core, while the
//!    database writes the previous orders on the other. The live read model's digest is taken
//!    before: when the live projection has caught up with the same offsets, they are equal.
//! 4. The rebuilt model and its checkpoint replace the live ones in ONE transaction (readers see
//!    the old or the new, never a mix); the stored result is read back and must give the same
//!    digest. A live projection that had gone further notices the checkpoint moved (its next
//!    batch conflicts) and reads again from the rebuilt checkpoint.
//!
//! Memory: the facts of every order are held, encoded, while they are read (about 1–2 KiB per
//! order); each order is freed once written.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use tokio::sync::mpsc;

use super::aggregate::Order;
use super::events::OrderEvent;
use super::model::{Complete, Contents, Model};
use super::store::{
    DigestBuilder, OrderLine, OrderStore, RebuiltOrder, StoreError, current_json, facts_blob,
};
use crate::bus::Bus;
use crate::log::{EventLog, LogError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildOptions {
    /// Compute the live read model's digest before the swap.
    pub compare_live: bool,
    /// Replace the live read model (false: a dry run that only prints digests).
    pub swap: bool,
    /// Read the stored model back after the swap and check its digest.
    pub verify: bool,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        RebuildOptions {
            compare_live: true,
            swap: true,
            verify: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored read model's digest {stored} differs from the rebuilt one {rebuilt}")]
    Verify { rebuilt: String, stored: String },
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub topic: String,
    pub events: u64,
    /// Records that are not order events (skipped).
    pub unreadable: u64,
    pub orders: usize,
    pub pending: usize,
    pub history: usize,
    /// Digest of the rebuilt read model.
    pub digest: String,
    /// Digest of the live read model before the swap, and its checkpoint.
    pub live_digest: Option<String>,
    pub live_checkpoints: BTreeMap<(String, i32), i64>,
    /// Where the rebuild stopped reading (its checkpoint).
    pub checkpoints: BTreeMap<(String, i32), i64>,
    pub swapped: bool,
    pub read_and_fold: Duration,
    pub write: Duration,
    pub total: Duration,
}

impl RebuildReport {
    /// Events per second over the whole rebuild.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.total.as_secs_f64().max(1e-9)
    }

    /// True when the live read model was compared and is the same.
    pub fn equals_live(&self) -> Option<bool> {
        self.live_digest.as_ref().map(|d| *d == self.digest)
    }
}

impl std::fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Rebuilt the order read model from {} events of {} in {:.2?} ({:.0} events/s): {} orders, {} history lines, {} pending reports.",
            self.events,
            self.topic,
            self.total,
            self.rate(),
            self.orders,
            self.history,
            self.pending
        )?;
        writeln!(f, "  rebuilt digest: {}", self.digest)?;
        if let Some(live) = &self.live_digest {
            let same = if *live == self.digest {
                "equal".to_owned()
            } else if self.live_checkpoints != self.checkpoints {
                format!(
                    "different; the live model was at {:?}, the rebuild read to {:?}",
                    self.live_checkpoints, self.checkpoints
                )
            } else {
                "DIFFERENT at the same offsets".to_owned()
            };
            writeln!(f, "  live digest:    {live} ({same})")?;
        }
        if self.unreadable > 0 {
            writeln!(
                f,
                "  skipped {} records that are not order events",
                self.unreadable
            )?;
        }
        writeln!(
            f,
            "  {}",
            if self.swapped {
                "swapped in: the live read model is the rebuilt one"
            } else {
                "not swapped (dry run)"
            }
        )
    }
}

/// Rebuilds the read model of the bus's configuration from `eai.order-events`, compares it with
/// the live one, swaps it in and checks the stored result.
pub async fn rebuild(bus: &Bus, progress: bool) -> Result<RebuildReport, RebuildError> {
    let store = OrderStore::open_for(&bus.config).await?;
    let topic = super::events_topic(&bus.config);
    bus.log
        .ensure_topic(&topic, bus.config.log.partitions)
        .await?;
    rebuild_into(
        bus.log.as_ref(),
        &topic,
        &store,
        RebuildOptions::default(),
        progress,
    )
    .await
}

fn bar(show: bool, len: u64, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// Folds `topic` from offset 0 into a fresh model and, per `options`, swaps it into `store`.
pub async fn rebuild_into(
    log: &dyn EventLog,
    topic: &str,
    store: &OrderStore,
    options: RebuildOptions,
    progress: bool,
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let mut ends = BTreeMap::new();
    for partition in log.partitions(topic).await? {
        ends.insert(
            (topic.to_owned(), partition),
            log.end_offset(topic, partition).await?,
        );
    }
    let total: i64 = ends.values().sum();
    let reading = bar(progress, u64::try_from(total).unwrap_or(0), "events");

    // Three stages at once: the log reads chunks (its own thread for the embedded log), the
    // caller decodes them (the payloads are freed by the thread that copied them), and one
    // thread folds them.
    let (chunks, received) = mpsc::channel::<Chunk>(2);
    // The fold hands the emptied lists back: reused, they are not freed and mapped again.
    let (spare, spares) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Handle::current();
    let folder =
        tokio::task::spawn_blocking(move || runtime.block_on(fold_chunks(received, &spare)));
    let read = read_chunks(log, &ends, &chunks, &spares, &reading).await;
    drop(chunks);
    let folded = match folder.await {
        Ok(folded) => folded,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let (model, events, unreadable) = folded?;
    read?;
    reading.finish_and_clear();
    let read_and_fold = started.elapsed();

    let Contents {
        orders,
        aliases,
        pending,
    } = model.into_contents();
    let order_count = orders.len();
    let (live_digest, live_checkpoints) = if options.compare_live {
        (Some(store.digest().await?), store.checkpoints().await?)
    } else {
        (None, BTreeMap::new())
    };

    // One core derives, serialises and hashes the orders (freeing each as it goes) while the
    // database writes the previous ones.
    let writing = Instant::now();
    let (made, to_write) = mpsc::channel(4);
    let maker = tokio::task::spawn_blocking(move || make_orders(orders, &made));
    let written = if options.swap {
        let bar = bar(progress, order_count as u64, "writing");
        let on_progress = |n: u64| bar.set_position(n);
        let written = store
            .replace_all(to_write, &aliases, &pending, &ends, &on_progress)
            .await;
        bar.finish_and_clear();
        Some(written)
    } else {
        let mut to_write = to_write;
        while to_write.recv().await.is_some() {}
        None
    };
    let (mut digest, history) = match maker.await {
        Ok(made) => made,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    if let Some(written) = written {
        written?;
    }
    let write = writing.elapsed();

    for (alias, order) in &aliases {
        digest.alias(alias, order);
    }
    let mut pending_lines: Vec<(&str, &str)> = pending
        .iter()
        .map(|(r, e)| (r.as_str(), e.event_id.as_str()))
        .collect();
    pending_lines.sort_unstable();
    for (reference, event) in &pending_lines {
        digest.pending(reference, event);
    }
    let digest = digest.finish();
    let pending_reports = pending_lines
        .iter()
        .map(|(_, e)| *e)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    drop(pending_lines);
    // What is left of the model is freed off the critical path.
    std::thread::spawn(move || drop((aliases, pending)));

    if options.swap && options.verify {
        let stored = store.digest().await?;
        if stored != digest {
            return Err(RebuildError::Verify {
                rebuilt: digest,
                stored,
            });
        }
    }
    let report = RebuildReport {
        topic: topic.to_owned(),
        events,
        unreadable,
        orders: order_count,
        pending: pending_reports,
        history,
        digest,
        live_digest,
        live_checkpoints,
        checkpoints: ends,
        swapped: options.swap,
        read_and_fold,
        write,
        total: started.elapsed(),
    };
    tracing::info!(events = report.events, orders = report.orders, digest = %report.digest, "The order read model was rebuilt.");
    Ok(report)
}

/// Records read from the log, decoded.
struct Chunk {
    events: Vec<OrderEvent>,
    unreadable: u64,
}

/// Reads every partition up to its end offset, in chunks, and decodes them.
async fn read_chunks(
    log: &dyn EventLog,
    ends: &BTreeMap<(String, i32), i64>,
    chunks: &mpsc::Sender<Chunk>,
    spares: &std::sync::mpsc::Receiver<Vec<OrderEvent>>,
    reading: &ProgressBar,
) -> Result<(), RebuildError> {
    let mut read = 0;
    for ((topic, partition), end) in ends {
        let mut offset = 0;
        while offset < *end {
            let max = usize::try_from((*end - offset).min(READ_CHUNK)).unwrap_or(10_000);
            let mut records = log.read_payloads(topic, *partition, offset, max).await?;
            records.retain(|(at, _)| at < end);
            let Some((last, _)) = records.last() else {
                break;
            };
            offset = last + 1;
            read += records.len() as u64;
            let events = spares.try_recv().unwrap_or_default();
            if chunks.send(decode(&records, events)).await.is_err() {
                // The fold stopped (it failed); it reports why.
                return Ok(());
            }
            reading.set_position(read);
        }
    }
    Ok(())
}

fn decode(records: &[(i64, Vec<u8>)], mut events: Vec<OrderEvent>) -> Chunk {
    events.reserve(records.len());
    let mut chunk = Chunk {
        events,
        unreadable: 0,
    };
    for (_, payload) in records {
        match OrderEvent::from_bytes(payload) {
            Ok(event) => chunk.events.push(event),
            Err(_) => chunk.unreadable += 1,
        }
    }
    chunk
}

/// Folds the chunks into a fresh, in-memory model (a blocking thread of its own: nothing in
/// it waits but the next chunk).
async fn fold_chunks(
    mut chunks: mpsc::Receiver<Chunk>,
    spare: &std::sync::mpsc::Sender<Vec<OrderEvent>>,
) -> Result<(Model, u64, u64), RebuildError> {
    let mut model = Model::in_memory();
    let (mut events, mut unreadable) = (0u64, 0u64);
    while let Some(mut chunk) = chunks.recv().await {
        unreadable += chunk.unreadable;
        for event in chunk.events.drain(..) {
            model.project(&mut Complete, event).await?;
            events += 1;
        }
        let _ = spare.send(chunk.events);
    }
    Ok((model, events, unreadable))
}

/// Records read per call.
const READ_CHUNK: i64 = 10_000;
/// Orders handed to the writer at a time.
const WRITE_BATCH: usize = 500;

/// Derives each order, settles its statuses, serialises it and hashes its line, in order-id
/// order; the orders are consumed (freed) on the way. Returns the digest so far and the
/// history lines made.
fn make_orders(
    orders: Vec<Order>,
    made: &mpsc::Sender<Vec<RebuiltOrder>>,
) -> (DigestBuilder, usize) {
    let mut digest = DigestBuilder::default();
    let mut history = 0;
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    for mut order in orders {
        // The model encoded these facts itself: they decode.
        let stored = order.unpack().expect("the recorded facts decode");
        let derived = order.derive();
        order.settle(&derived);
        history += derived.history.len();
        let line = OrderLine::of(&derived);
        digest.order(&line);
        batch.push(RebuiltOrder {
            line,
            facts: stored.unwrap_or_else(|| facts_blob(&order)),
            current: current_json(&order),
        });
        if batch.len() == WRITE_BATCH
            && made
                .blocking_send(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(WRITE_BATCH),
                ))
                .is_err()
        {
            // The writer stopped (it failed); it reports why.
            return (digest, history);
        }
    }
    if !batch.is_empty() {
        let _ = made.blocking_send(batch);
    }
    (digest, history)
}
