//! Rebuild: the read model again from offset 0 of `eai.order-events`.
//!
//! 1. The end offset of every partition is taken; the rebuild reads up to there.
//! 2. Every event is folded into a fresh, in-memory read model (the same [`Model`] code the live
//!    projection runs, with nothing to load).
//! 3. Its digest — SHA-256 over a canonical dump of orders, parts, history, invoices, aliases and
//!    pending reports ([`Dump::digest`]) — is computed, and the live read model's digest beside
//!    it: when the live projection has caught up with the same offsets, they are equal.
//! 4. The rebuilt model and its checkpoint replace the live ones in ONE transaction (readers see
//!    the old or the new, never a mix); the stored result is read back and must give the same
//!    digest. A live projection that had gone further notices the checkpoint moved (its next
//!    batch conflicts) and reads again from the rebuilt checkpoint.
//!
//! Memory: the whole model is held while it is built (about 2–3 KiB per order with its facts).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::events::OrderEvent;
use super::model::{Complete, Model};
use super::store::{Dump, OrderRows, OrderStore, StoreError};
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
    let mut model = Model::in_memory();
    let mut events = 0u64;
    let mut unreadable = 0u64;
    for ((topic, partition), end) in &ends {
        let mut offset = 0;
        while offset < *end {
            let max = usize::try_from((*end - offset).min(10_000)).unwrap_or(10_000);
            let records = log.read(topic, *partition, offset, max).await?;
            if records.is_empty() {
                break;
            }
            for record in records {
                if record.offset >= *end {
                    offset = *end;
                    break;
                }
                offset = record.offset + 1;
                match OrderEvent::from_bytes(&record.payload) {
                    Ok(event) => {
                        model.project(&mut Complete, event).await?;
                        events += 1;
                    }
                    Err(_) => unreadable += 1,
                }
            }
            reading.set_position(u64::try_from(offset).unwrap_or(0));
            reading.inc(0);
        }
    }
    reading.finish_and_clear();
    let read_and_fold = started.elapsed();

    let contents = model.into_contents();
    let rows: Vec<OrderRows> = contents
        .orders
        .iter()
        .map(|o| OrderRows::of(&o.derive()))
        .collect();
    let history = rows.iter().map(|r| r.history.len()).sum();
    let (live_digest, live_checkpoints) = if options.compare_live {
        (Some(store.digest().await?), store.checkpoints().await?)
    } else {
        (None, BTreeMap::new())
    };
    let writing = Instant::now();
    if options.swap {
        let written = bar(progress, contents.orders.len() as u64, "writing");
        let on_progress = |n: u64| written.set_position(n);
        store
            .replace_all(&contents, &rows, &ends, &on_progress)
            .await?;
        written.finish_and_clear();
    }
    let write = writing.elapsed();
    let digest = Dump::of_contents(&contents, rows).digest();
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
        orders: contents.orders.len(),
        pending: contents
            .pending
            .iter()
            .map(|(_, e)| &e.event_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
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
