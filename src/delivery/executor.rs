//! The two loops of a route: the consumer that plans deliveries from the log, and the executor
//! that runs them in key order.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::warn;

use super::{Deliverer, direct, group_of, now_ms};
use crate::adapter::RouteKind;
use crate::log::Record;
use crate::message::{Format, MessageType};
use crate::monitor::{Situation, Stage};

/// Deliveries run at once on one route, each for a different key: an EAI endpoint (Protheus)
/// is spared more than a few dozen requests at a time; appends to a Kafka topic are grouped by
/// the log and their monitor writes by the store, so more at once is cheaper per message.
const ENDPOINT_CONCURRENCY: usize = 32;
const TOPIC_CONCURRENCY: usize = 256;
/// How often an idle executor looks for due retries.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long a route consumer holds the offsets of batches it has finished before committing
/// them. Each commit is a durable write of the log (an fsync on the embedded log, a request to
/// the broker on Kafka) that the next batch would wait for; a crash in between only polls those
/// batches again, which the direct delivery's gate and the idempotent plans make harmless.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// Reads the route's topics and plans one delivery per message the route's adapters send.
/// Offsets are committed only after their batch's plans are stored, so a crash replans
/// (idempotently); a quiet poll, `COMMIT_INTERVAL` or shutting down commits them.
pub(crate) async fn consume(
    deliverer: Arc<Deliverer>,
    route: String,
    topics: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let bus = &deliverer.bus;
    let mut consumer = loop {
        match bus.log.subscribe(&group_of(&route), &topics).await {
            Ok(c) => break c,
            Err(e) => {
                warn!(route = %route, error = %e, "The route cannot join its consumer group yet.");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    // Finished batches' offsets not yet committed, and when they were last.
    let mut finished: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut committed_at = tokio::time::Instant::now();
    loop {
        let wait = if finished.is_empty() {
            Duration::from_millis(200)
        } else {
            COMMIT_INTERVAL.saturating_sub(committed_at.elapsed())
        };
        let records = tokio::select! {
            _ = shutdown.changed() => {
                commit(consumer.as_mut(), &route, &mut finished).await;
                return;
            }
            r = consumer.poll(wait) => r,
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                warn!(route = %route, error = %e, "The route cannot read its topics.");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // What the consumer may deliver itself goes now (direct.rs); one plan for the rest of
        // the batch, then the partitions' offsets committed together.
        let mut to_send = Vec::new();
        let mut last: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for record in &records {
            crate::telemetry::global()
                .log_accepted(record.header("uuid").unwrap_or(""), record.timestamp_ms);
            let is_business = record.header("type").is_none_or(|t| t == "BusinessMessage");
            if is_business && let Some(item) = plan_record(&deliverer, &route, record).await {
                to_send.push(item);
            }
            let at = last
                .entry((record.topic.clone(), record.partition))
                .or_insert(record.offset);
            *at = (*at).max(record.offset);
        }
        // Shut down before this batch was stored: the batches before it were.
        let Some(to_plan) = direct::deliver(&deliverer, &route, to_send, &mut shutdown).await
        else {
            commit(consumer.as_mut(), &route, &mut finished).await;
            return;
        };
        if !store_plans(&deliverer, &route, &to_plan, &mut shutdown).await {
            commit(consumer.as_mut(), &route, &mut finished).await;
            return;
        }
        if !to_plan.is_empty() {
            deliverer.wake.notify_waiters();
        }
        for (partition, offset) in last {
            let at = finished.entry(partition).or_insert(offset);
            *at = (*at).max(offset);
        }
        if records.is_empty() || committed_at.elapsed() >= COMMIT_INTERVAL {
            commit(consumer.as_mut(), &route, &mut finished).await;
            committed_at = tokio::time::Instant::now();
        }
    }
}

/// Commits the offsets of the finished batches.
async fn commit(
    consumer: &mut dyn crate::log::Consumer,
    route: &str,
    finished: &mut BTreeMap<(String, i32), i64>,
) {
    if finished.is_empty() {
        return;
    }
    let positions: Vec<crate::log::Position> = std::mem::take(finished)
        .into_iter()
        .map(|((topic, partition), offset)| crate::log::Position {
            topic,
            partition,
            offset,
        })
        .collect();
    for e in consumer
        .commit_all(&positions)
        .await
        .into_iter()
        .flat_map(Result::err)
    {
        warn!(route, error = %e, "An offset could not be committed; the records will be planned again.");
    }
}

/// Stores the deliveries planned from one batch: the batch's offsets are committed only after.
/// False when shut down first.
async fn store_plans(
    deliverer: &Deliverer,
    route: &str,
    uuids: &[String],
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let monitor = &deliverer.bus.monitor;
    until_stored(route, shutdown, || {
        monitor.plan_deliveries(route, uuids, now_ms())
    })
    .await
    .is_some()
}

/// Runs `write` until the monitor store takes it, waiting longer after each failure; `None`
/// when shut down first.
pub(super) async fn until_stored<T, F, W>(
    route: &str,
    shutdown: &mut watch::Receiver<bool>,
    mut write: W,
) -> Option<T>
where
    W: FnMut() -> F,
    F: std::future::Future<Output = Result<T, crate::monitor::MonitorError>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match write().await {
            Ok(done) => return Some(done),
            Err(e) => {
                warn!(route, error = %e, "The monitor store did not take a route's batch; trying again.");
                tokio::select! {
                    _ = shutdown.changed() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Reads one record of the route's topics: the message to deliver along `route`, if an adapter
/// of the route sends it and its send condition holds. The header decides; the content is read
/// only for a send condition.
async fn plan_record<'r>(
    deliverer: &Deliverer,
    route: &str,
    record: &'r Record,
) -> Option<direct::Item<'r>> {
    let payload = record.payload.as_slice();
    let bus = &deliverer.bus;
    let codec = bus.codec();
    let header = match codec.decode_json_header(payload) {
        Ok(h) if h.message_type() == MessageType::BusinessMessage => h,
        Ok(_) => return None,
        Err(e) => {
            warn!(route, error = %e, "A record of the log is not a standard message; it is skipped.");
            return None;
        }
    };
    let table = bus.adapter_table();
    let to_topic = table.routes().get(route).map(|r| r.kind) == Some(RouteKind::Kafka);
    let mut message = None;
    // Whether to send it, and whether the route takes the stored text as it is.
    let mut plan: Option<bool> = None;
    for adapter in table
        .senders_for(&header)
        .into_iter()
        .filter(|a| a.route == route)
    {
        if super::is_sync(adapter, &header) {
            // Ingest delivers sync messages while the sender waits, and plans their retries.
            continue;
        }
        let verdict = if adapter.condition.is_none() {
            Ok(true)
        } else {
            if message.is_none() {
                match codec.decode_json(payload) {
                    Ok(m) => message = Some(m),
                    Err(e) => {
                        warn!(route, error = %e, "A record of the log is not a standard message; it is skipped.");
                        return None;
                    }
                }
            }
            adapter.should_send(message.as_ref()?)
        };
        let uuid = header.uuid();
        match verdict {
            Ok(true) => {
                let as_stored = to_topic && adapter.format == Format::Json;
                plan = Some(plan.unwrap_or(true) && as_stored);
            }
            Ok(false) => {
                let detail = format!(
                    "The send condition of adapter {} is false; not sent to {route}.",
                    adapter.name
                );
                let _ = bus
                    .monitor
                    .add_timeline(
                        uuid,
                        Some(route),
                        Stage::Routed,
                        Situation::Finalizada,
                        &detail,
                    )
                    .await;
                let _ = bus
                    .monitor
                    .set_situation(uuid, Situation::Finalizada, Stage::Routed, None)
                    .await;
            }
            Err(e) => {
                let detail = format!("The send condition of adapter {} failed: {e}", adapter.name);
                let _ = bus
                    .monitor
                    .add_timeline(uuid, Some(route), Stage::Failed, Situation::Falhou, &detail)
                    .await;
                let _ = bus
                    .monitor
                    .set_situation(uuid, Situation::Falhou, Stage::Failed, Some(&detail))
                    .await;
            }
        }
    }
    let direct = plan?;
    let uuid = header.uuid().to_owned();
    let key = record
        .key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok())
        .map_or_else(|| uuid.clone(), str::to_owned);
    Some(direct::Item {
        uuid,
        key,
        direct,
        transaction: header.transaction().to_owned(),
        version: header.version().unwrap_or_default().to_owned(),
        payload,
    })
}

/// Runs the route's due deliveries, oldest first, one at a time per key.
pub(crate) async fn execute(
    deliverer: Arc<Deliverer>,
    route: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut did_work = false;
    loop {
        if !did_work {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = deliverer.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        } else if *shutdown.borrow() {
            return;
        }
        did_work = run_pass(&deliverer, &route).await;
        deliverer.runs.after_pass(&route, did_work).await;
    }
}

async fn run_pass(deliverer: &Arc<Deliverer>, route: &str) -> bool {
    let bus = &deliverer.bus;
    let pending = match bus.monitor.pending_deliveries(route, 1000).await {
        Ok(p) => p,
        Err(e) => {
            warn!(route, error = %e, "The route cannot read its pending deliveries.");
            tokio::time::sleep(Duration::from_millis(500)).await;
            return false;
        }
    };
    let concurrency = match bus.adapter_table().routes().get(route).map(|r| r.kind) {
        Some(RouteKind::Kafka) => TOPIC_CONCURRENCY,
        _ => ENDPOINT_CONCURRENCY,
    };
    let now = now_ms();
    let mut seen_keys = HashSet::new();
    let mut tasks = JoinSet::new();
    let mut started = 0;
    for item in pending {
        let key = item
            .business_key
            .clone()
            .unwrap_or_else(|| item.delivery.uuid.clone());
        // The oldest unsettled delivery of a key goes first; later ones of that key wait.
        if !seen_keys.insert(key.clone()) {
            continue;
        }
        let due = item.delivery.next_attempt_at.is_none_or(|at| at <= now);
        let running = item.delivery.situation == Situation::Executando && !due;
        if !due || running {
            continue;
        }
        if tasks.len() >= concurrency {
            tasks.join_next().await;
        }
        started += 1;
        let deliverer = deliverer.clone();
        let route = route.to_owned();
        tasks.spawn(async move {
            let delivery = &item.delivery;
            let done = delivery.attempts;
            deliver_one(
                &deliverer,
                &route,
                &key,
                (delivery.uuid.as_str(), done),
                item.canonical_json.as_deref(),
            )
            .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    started > 0
}

/// One delivery of the queue: `planned` is its message's UUID and the attempts it had.
async fn deliver_one(
    deliverer: &Deliverer,
    route_name: &str,
    key: &str,
    planned: (&str, i64),
    canonical: Option<&str>,
) {
    let (uuid, attempts) = planned;
    let bus = &deliverer.bus;
    let codec = bus.codec();
    let Some((canonical, header)) =
        canonical.and_then(|json| Some((json, codec.decode_json_header(json.as_bytes()).ok()?)))
    else {
        warn!(
            uuid,
            route = route_name,
            "A planned delivery has no readable message; it is dead-lettered."
        );
        let outcome = crate::monitor::DeliveryOutcome::DeadLettered {
            error: "the stored message cannot be read".into(),
        };
        let _ = bus.monitor.record_attempt(uuid, route_name, &outcome).await;
        return;
    };
    let table = bus.adapter_table();
    let Some(route) = table.routes().get(route_name).cloned() else {
        return;
    };
    let Some(adapter) = table
        .senders_for(&header)
        .into_iter()
        .find(|a| a.route == route_name)
        .cloned()
    else {
        let outcome = crate::monitor::DeliveryOutcome::Parked {
            error: format!(
                "no adapter sends {} along {route_name} any more",
                header.transaction()
            ),
        };
        let _ = bus.monitor.record_attempt(uuid, route_name, &outcome).await;
        return;
    };
    if route.kind == RouteKind::Kafka && adapter.format == Format::Json {
        deliverer
            .attempt_stored(&header, canonical, key, &route, attempts + 1)
            .await;
        return;
    }
    let Ok(message) = codec.decode_json(canonical.as_bytes()) else {
        let outcome = crate::monitor::DeliveryOutcome::DeadLettered {
            error: "the stored message cannot be read".into(),
        };
        let _ = bus.monitor.record_attempt(uuid, route_name, &outcome).await;
        return;
    };
    deliverer.attempt(&message, key, &adapter, &route).await;
}
