//! Delivery: route workers take what ingest appended to `eai.<transaction>` and deliver it along
//! the routes of the adapters that send it — a Kafka topic, an EAI REST or an EAI SOAP endpoint —
//! with the Receipt/Response semantics of the protocol, retries with backoff, parking after the
//! last automatic attempt, and the DLQ for permanent failures.
//!
//! The monitor store's deliveries table is the work queue: a route consumer plans one delivery per
//! (message, route) and commits its offset; the route's executor runs what is due, oldest first,
//! never starting a message while an earlier one with the same key is still unsettled, so each
//! order's messages reach the target in order. A Kafka route that takes the stored canonical
//! JSON is spared the queue when it can be: its consumer appends a polled batch itself and
//! records it as delivered (`direct.rs`), planning only what must wait behind a pending delivery
//! of its key or failed to append.

mod attempt;
mod direct;
mod executor;
mod runs;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tracing::info;

use crate::adapter::Route;
use crate::bus::{Bus, Delivery};
use crate::message::{Message, MessageType, ResponseView};
use crate::transport::client::EaiClient;

pub use attempt::Verdict;

/// Whether a message is delivered while its sender waits (sync adapter or header), in which
/// case ingest delivers it itself and route consumers leave it alone.
pub fn is_sync(adapter: &crate::adapter::Adapter, header: &crate::message::Header) -> bool {
    adapter.method == crate::adapter::Method::Sync
        || header.delivery_type() == Some(crate::message::DeliveryType::Sync)
}

/// The consumer group of a route's workers.
pub fn group_of(route: &str) -> String {
    format!("eaibus.route.{route}")
}

/// Delivers along every route of the adapter table; shared by the workers, the sync path of
/// ingest and the correlation of async Responses.
pub struct Deliverer {
    pub(crate) bus: Bus,
    pub(crate) client: EaiClient,
    /// Wakes the executors when a delivery is planned or released.
    pub(crate) wake: Arc<Notify>,
    /// The routes' sync runs (see `runs.rs`).
    pub(crate) runs: runs::RouteRuns,
}

impl Deliverer {
    pub fn new(bus: Bus) -> Arc<Deliverer> {
        Arc::new(Deliverer {
            runs: runs::RouteRuns::new(bus.monitor.clone()),
            bus,
            client: EaiClient::new(),
            wake: Arc::new(Notify::new()),
        })
    }

    fn max_attempts(&self) -> i64 {
        i64::from(self.bus.config.delivery.max_attempts.max(1))
    }

    /// When the next attempt after `attempt` failures should run.
    pub(crate) fn retry_at(&self, attempt: i64) -> i64 {
        let config = &self.bus.config.delivery;
        let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let delay = config
            .backoff_initial_ms
            .saturating_mul(1u64 << exponent)
            .min(config.backoff_max_ms);
        now_ms().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
    }

    /// Starts one consumer and one executor per route, until `shutdown` fires.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let table = self.bus.adapter_table();
        let mut handles = Vec::new();
        for route in table.routes().iter() {
            let topics: Vec<String> = {
                let mut t: Vec<String> = table
                    .adapters()
                    .iter()
                    .filter(|a| a.send && a.route == route.name)
                    .map(|a| self.bus.config.topic(&a.message))
                    .collect();
                t.sort();
                t.dedup();
                t
            };
            if topics.is_empty() {
                continue;
            }
            info!(route = %route.name, topics = ?topics, "A route worker starts.");
            handles.push(tokio::spawn(executor::consume(
                self.clone(),
                route.name.clone(),
                topics,
                shutdown.clone(),
            )));
            handles.push(tokio::spawn(executor::execute(
                self.clone(),
                route.name.clone(),
                shutdown.clone(),
            )));
        }
        handles
    }

    /// Delivers a sync message now along each of its routes and returns the first route's
    /// Response (or an OK Response for a Kafka route).
    async fn deliver_sync(&self, message: &Message, key: &str) -> Result<Message, String> {
        let table = self.bus.adapter_table();
        let senders: Vec<_> = table
            .senders_for(&message.header)
            .into_iter()
            .filter(|a| a.should_send(message).unwrap_or(false))
            .cloned()
            .collect();
        let mut first = None;
        for adapter in &senders {
            let Some(route) = table.route_of(adapter).cloned() else {
                continue;
            };
            // Claimed directly (not planned first), so no route executor can take it meanwhile;
            // a failed attempt leaves a planned retry that the executor does take.
            let verdict = self.attempt(message, key, adapter, &route).await;
            if first.is_none() {
                first = Some(verdict);
            }
        }
        match first {
            Some(Verdict::Answered(response)) => Ok(*response),
            Some(Verdict::Accepted) | None => Ok(crate::ingest::answer::ok(
                &message.header,
                &self.bus.config.identity,
                Default::default(),
            )
            .message),
            Some(Verdict::Failed(e)) => Err(e),
        }
    }

    /// A Response that arrived at our endpoints for a message delivered asynchronously.
    async fn correlate_response(&self, response: &Message) {
        let view = ResponseView::new(&response.content);
        let Some(uuid) = view.received_uuid() else {
            return;
        };
        let Ok(Some(record)) = self.bus.monitor.get(uuid).await else {
            info!(
                uuid,
                "A Response names a message this bus did not send; it is kept in the log only."
            );
            return;
        };
        let Some(original) = record
            .canonical_json
            .as_deref()
            .and_then(|json| self.bus.codec().decode_json(json.as_bytes()).ok())
        else {
            return;
        };
        let deliveries = self.bus.monitor.deliveries(uuid).await.unwrap_or_default();
        let table = self.bus.adapter_table();
        for delivery in deliveries {
            let Some(route) = table.routes().get(&delivery.route).cloned() else {
                continue;
            };
            if !route.kind.is_eai() {
                continue;
            }
            let Some(adapter) = table
                .senders_for(&original.header)
                .into_iter()
                .find(|a| a.route == route.name)
                .cloned()
            else {
                continue;
            };
            // The attempt that was sent and is waiting for this Response (not yet counted).
            let attempt = delivery.attempts + 1;
            let outcome = self
                .judge_response(&original, &adapter, &route, response, attempt)
                .await;
            self.record(&original, &route, attempt, outcome).await;
        }
        self.wake.notify_waiters();
    }
}

#[async_trait]
impl Delivery for Deliverer {
    async fn deliver_now(&self, message: &Message, key: &str) -> Result<Message, String> {
        self.deliver_sync(message, key).await
    }

    async fn correlate(&self, response: &Message) {
        if response.header.message_type() == MessageType::Response {
            self.correlate_response(response).await;
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn route_timeout(bus: &Bus, route: &Route) -> Duration {
    route
        .timeout
        .unwrap_or_else(|| Duration::from_millis(bus.config.delivery.timeout_ms))
}
