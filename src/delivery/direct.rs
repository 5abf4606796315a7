//! The route consumer's own delivery of a polled batch along a Kafka route that takes the
//! stored canonical JSON. Planning each message, reading it back in the executor, appending it
//! and settling the attempt costs the monitor store two writes and a read per message; here the
//! batch is appended to the route's topic in one append and recorded as delivered in one write.
//!
//! Only what the executor would have delivered at once goes this way. A message whose key has
//! an earlier delivery still pending along the route (waiting, running or due for a retry) is
//! planned, and so is every later one of that key in the batch, so each key's messages reach
//! the topic in order. A message that already has a delivery along the route (a batch polled
//! again after a crash) is not sent again. If the append fails, that was each message's first
//! attempt: it is recorded as the executor records its own, whose retries and DLQ take over.

use std::collections::HashSet;

use tokio::sync::watch;
use tracing::warn;

use super::Deliverer;
use super::attempt::{Sent, appended_at, route_record};
use super::executor::until_stored;
use crate::adapter::Route;
use crate::monitor::DeliveryOutcome;

/// A record of the batch that a route's adapter sends, in the order polled.
pub(crate) struct Item<'r> {
    pub uuid: String,
    /// The record's key on the log (the message's business key).
    pub key: String,
    /// The route's adapter takes the canonical JSON as it is, so the consumer may send it.
    pub direct: bool,
    pub transaction: String,
    pub version: String,
    pub payload: &'r [u8],
}

/// Delivers what it may of `items` along `route`; returns the UUIDs left for the executor, in
/// order, or `None` if shut down while the monitor store was unavailable.
pub(crate) async fn deliver(
    deliverer: &Deliverer,
    route_name: &str,
    items: Vec<Item<'_>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Vec<String>> {
    let bus = &deliverer.bus;
    let route = match bus.adapter_table().routes().get(route_name) {
        Some(route) if items.iter().any(|i| i.direct) => route.clone(),
        _ => return Some(items.into_iter().map(|i| i.uuid).collect()),
    };
    let uuids: Vec<&str> = items.iter().map(|i| i.uuid.as_str()).collect();
    let keys: Vec<&str> = {
        let mut keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    let gate = match bus.monitor.delivery_gate(route_name, &uuids, &keys).await {
        Ok(gate) => gate,
        Err(e) => {
            warn!(route = route_name, error = %e, "The route cannot read its deliveries; the batch is planned.");
            return Some(items.into_iter().map(|i| i.uuid).collect());
        }
    };
    let mut busy: HashSet<String> = gate.busy_keys;
    let mut seen = HashSet::with_capacity(items.len());
    let (mut direct, mut to_plan) = (Vec::new(), Vec::new());
    for item in items {
        let first = seen.insert(item.uuid.clone());
        if first
            && item.direct
            && gate.known.contains(&item.uuid)
            && !gate.has_delivery.contains(&item.uuid)
            && !busy.contains(&item.key)
        {
            direct.push(item);
        } else {
            busy.insert(item.key.clone());
            to_plan.push(item.uuid);
        }
    }
    if direct.is_empty() {
        return Some(to_plan);
    }
    let records = direct
        .iter()
        .map(|i| {
            let identity = (i.uuid.as_str(), i.transaction.as_str(), i.version.as_str());
            route_record(&route, &i.key, i.payload, identity, "json")
        })
        .collect();
    let positions = match bus.log.append(records).await {
        Ok(positions) => positions,
        Err(e) => {
            warn!(route = route_name, error = %e, "A batch could not be appended to the route's topic; the executor tries again.");
            let error = format!("the topic {} refused the message: {e}", route.target);
            for item in direct {
                if !settle_first_attempt(deliverer, &route, &item, &error, e.is_retryable()).await {
                    to_plan.push(item.uuid);
                }
            }
            return Some(to_plan);
        }
    };
    // The append answers one position per record, in order.
    let delivered: Vec<(String, String)> = direct
        .iter()
        .enumerate()
        .map(|(n, i)| (i.uuid.clone(), appended_at(positions.get(n))))
        .collect();
    // Recorded before the batch's offsets are committed, however long the store takes.
    let monitor = &bus.monitor;
    let recorded = until_stored(route_name, shutdown, || {
        monitor.record_delivered(route_name, &delivered)
    })
    .await?;
    let recorded: HashSet<&str> = recorded.iter().map(String::as_str).collect();
    for (item, (uuid, response)) in direct.iter().zip(&delivered) {
        if !recorded.contains(uuid.as_str()) {
            continue;
        }
        let sent = Sent {
            uuid,
            transaction: &item.transaction,
            canonical: &String::new,
        };
        let outcome = DeliveryOutcome::Delivered {
            response: response.clone(),
        };
        deliverer.announce(sent, &route, 1, &outcome).await;
    }
    Some(to_plan)
}

/// Records a failed append as the message's first attempt, as the executor records its own (a
/// retry due after the backoff, or parked, or dead-lettered), so that the route's attempts
/// count it. False if the store did not take it: the message is then planned instead.
async fn settle_first_attempt(
    deliverer: &Deliverer,
    route: &Route,
    item: &Item<'_>,
    error: &str,
    retryable: bool,
) -> bool {
    let outcome = if retryable {
        deliverer.retry_or_park(error.to_owned(), 1)
    } else {
        DeliveryOutcome::DeadLettered {
            error: error.to_owned(),
        }
    };
    let monitor = &deliverer.bus.monitor;
    match monitor
        .settle_attempt(&item.uuid, &route.name, &outcome)
        .await
    {
        Ok(Some(attempt)) => {
            let canonical = || String::from_utf8_lossy(item.payload).into_owned();
            let sent = Sent {
                uuid: &item.uuid,
                transaction: &item.transaction,
                canonical: &canonical,
            };
            deliverer.announce(sent, route, attempt, &outcome).await;
            true
        }
        // Another worker had taken or settled it.
        Ok(None) => true,
        Err(e) => {
            warn!(uuid = %item.uuid, error = %e, "A failed delivery could not be recorded; it is planned.");
            false
        }
    }
}
