//! The live order projection: consumes `eai.order-events` in consumer group
//! [`super::PROJECTION_GROUP`], projects each batch into the read model in one transaction with
//! its checkpoint and outbox, then sends the outbox.
//!
//! The read model's checkpoint, not the group's committed offset, decides what was applied: a
//! partition's first records after an assignment are read from the checkpoint on (a seek), a
//! record before it is skipped, and a batch that would leave a hole (records after the
//! checkpoint while earlier ones were never applied — e.g. after a rebuild swapped in an older
//! checkpoint) seeks back instead. The group's offsets are committed after each batch for lag
//! monitoring only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::output::{self, Outputs};
use super::store::{BatchResult, OrderStore, StoreError};
use super::trace::TraceTarget;
use crate::bus::Bus;
use crate::log::{Consumer, LogError, Position, Record};

/// How the projection runs.
#[derive(Debug, Clone)]
pub struct ProjectionOptions {
    pub group: String,
    /// Routes that receive a traceability message on each status change.
    pub trace: Vec<TraceTarget>,
    pub poll_timeout: Duration,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        ProjectionOptions {
            group: super::PROJECTION_GROUP.to_owned(),
            trace: Vec::new(),
            poll_timeout: Duration::from_millis(200),
        }
    }
}

/// The routes that ask for traceability messages, from (route name, `order_trace` version)
/// pairs — the optional route setting `order_trace = "1.001"` (see the module `trace`).
pub fn trace_targets<'a>(
    routes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<TraceTarget> {
    routes
        .into_iter()
        .filter_map(|(route, version)| {
            version.map(|v| TraceTarget {
                route: route.to_owned(),
                version: if v.trim().is_empty() {
                    super::trace::VERSION.to_owned()
                } else {
                    v.trim().to_owned()
                },
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The traceability targets of the bus's routes (those with `order_trace`).
pub fn trace_targets_of(bus: &Bus) -> Vec<TraceTarget> {
    let table = bus.adapter_table();
    trace_targets(
        table
            .routes()
            .iter()
            .map(|r| (r.name.as_str(), r.order_trace.as_deref())),
    )
}

/// Runs the projection for `serve` until `shutdown` fires, with the read model of the bus's
/// configuration ([`super::store::location_for`]) and the routes that set `order_trace` (as
/// loaded at start: a reload that changes them takes effect at the next start); see
/// [`run_with`].
pub async fn run(bus: Bus, shutdown: watch::Receiver<bool>) -> Result<(), ProjectionError> {
    let store = OrderStore::open_for(&bus.config).await?;
    let options = ProjectionOptions {
        trace: trace_targets_of(&bus),
        ..ProjectionOptions::default()
    };
    if !options.trace.is_empty() {
        let routes: Vec<&str> = options.trace.iter().map(|t| t.route.as_str()).collect();
        info!(routes = ?routes, "Order status changes send traceability messages along these routes.");
    }
    run_with(bus, store, options, shutdown).await
}

/// Runs the projection until `shutdown` fires. Transient failures (log, store) are retried;
/// only opening fails.
pub async fn run_with(
    bus: Bus,
    store: OrderStore,
    options: ProjectionOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    super::ensure_topics(&bus).await?;
    let outputs = Outputs::for_bus(&bus, options.trace.clone());
    send_outbox(&bus, &store).await;
    let topic = super::events_topic(&bus.config);
    let mut consumer = loop {
        match bus
            .log
            .subscribe(&options.group, std::slice::from_ref(&topic))
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                warn!(error = %e, "The order projection cannot join its consumer group yet.");
                tokio::select! {
                    _ = shutdown.changed() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    info!(topic = %topic, group = %options.group, store = store.backend_name(), "The order projection starts.");
    let mut projector = Projector::new(store, outputs);
    loop {
        let records = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            r = consumer.poll(options.poll_timeout) => r,
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "The order projection cannot read its topic.");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        projector.step(consumer.as_mut(), records).await;
        send_outbox(&bus, &projector.store).await;
    }
}

async fn send_outbox(bus: &Bus, store: &OrderStore) {
    if let Err(e) = output::drain(bus, store).await {
        warn!(error = %e, "Order outputs could not be sent yet; they stay in the outbox.");
    }
}

/// One consumer's projection state: which partitions read from the checkpoint on.
pub struct Projector {
    pub store: OrderStore,
    outputs: Outputs,
    /// Partitions whose read position was set from the checkpoint.
    synced: BTreeSet<(String, i32)>,
    /// Partitions where the log itself has a hole at the checkpoint: accepted once.
    accept_gap: BTreeSet<(String, i32)>,
}

impl Projector {
    pub fn new(store: OrderStore, outputs: Outputs) -> Projector {
        Projector {
            store,
            outputs,
            synced: BTreeSet::new(),
            accept_gap: BTreeSet::new(),
        }
    }

    /// Projects one polled batch; on a conflict or failure, moves the consumer back to the
    /// checkpoint so that nothing is skipped. Returns the batch result when it was applied.
    pub async fn step(
        &mut self,
        consumer: &mut dyn Consumer,
        records: Vec<Record>,
    ) -> Option<BatchResult> {
        let checkpoints = match self.store.checkpoints().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "The order store cannot be read; the batch is read again.");
                self.resync(consumer, &records).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                return None;
            }
        };
        // Partitions seen for the first time are read from the checkpoint on.
        let mut fresh = BTreeSet::new();
        for record in &records {
            let key = (record.topic.clone(), record.partition);
            if !self.synced.contains(&key) {
                fresh.insert(key);
            }
        }
        for key in &fresh {
            let next = checkpoints.get(key).copied().unwrap_or(0);
            if let Err(e) = consumer.seek(&key.0, key.1, next).await {
                warn!(topic = %key.0, partition = key.1, error = %e, "The order projection cannot seek to its checkpoint.");
                continue;
            }
            self.synced.insert(key.clone());
        }
        let batch: Vec<Record> = records
            .into_iter()
            .filter(|r| !fresh.contains(&(r.topic.clone(), r.partition)))
            .collect();
        if batch.is_empty() {
            return None;
        }
        // A hole between the checkpoint and the batch: read again from the checkpoint.
        let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for r in &batch {
            first
                .entry((r.topic.clone(), r.partition))
                .and_modify(|o| *o = (*o).min(r.offset))
                .or_insert(r.offset);
        }
        let mut holes = Vec::new();
        for (key, offset) in &first {
            let next = checkpoints.get(key).copied().unwrap_or(0);
            if *offset > next && !self.accept_gap.remove(key) {
                holes.push((key.clone(), next));
            }
        }
        if !holes.is_empty() {
            for ((topic, partition), next) in holes {
                warn!(topic = %topic, partition, next, "The order events after the checkpoint were not read; reading again from it.");
                let _ = consumer.seek(&topic, partition, next).await;
                self.accept_gap.insert((topic, partition));
            }
            return None;
        }
        match self.store.project(&batch, &self.outputs).await {
            Ok(result) => {
                for ((topic, partition), next) in &result.checkpoints {
                    let position = Position {
                        topic: topic.clone(),
                        partition: *partition,
                        offset: next - 1,
                    };
                    if let Err(e) = consumer.commit(&position).await {
                        warn!(error = %e, "The order projection's group offset was not committed (the read model's checkpoint holds).");
                    }
                }
                Some(result)
            }
            Err(e) => {
                warn!(error = %e, "An order events batch was not projected; it is read again from the checkpoint.");
                self.synced.clear();
                if !matches!(e, StoreError::Conflict(_)) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None
            }
        }
    }

    async fn resync(&mut self, consumer: &mut dyn Consumer, records: &[Record]) {
        let mut partitions = BTreeMap::new();
        for r in records {
            partitions
                .entry((r.topic.clone(), r.partition))
                .and_modify(|o: &mut i64| *o = (*o).min(r.offset))
                .or_insert(r.offset);
        }
        for ((topic, partition), offset) in partitions {
            let _ = consumer.seek(&topic, partition, offset).await;
        }
    }
}
