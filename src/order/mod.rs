//! Orders: the status of every OMNI sale as Protheus reports it, rebuilt from the log.
//!
//! ```text
//!  ingest ── events::from_accepted ──┐                     ┌─► eai.order-status (JSON, key = order)
//!  delivery ─ events::from_response ─┴► eai.order-events ──► projection ──► read model + checkpoint
//!                                       (protobuf, key =     (aggregate    (one transaction)
//!                                        the order)           per order)  └─► DocumentTraceabilityOrder
//!                                                                              (routes that ask for it)
//! ```
//!
//! - [`events`]: the domain events (`schemas/proto/order_events.proto`), derived from the standard
//!   messages ingest accepts and from the Responses delivery receives, and appended to
//!   `eai.order-events` keyed by the order.
//! - [`status`]: the status texts Protheus writes, normalised; the flows per delivery type.
//! - [`aggregate`]: one order — `handle(command) -> changes`, `apply(change)`.
//! - [`model`]: the orders, id aliases and pending reports a projection works on, and how an
//!   event finds its order.
//! - [`store`]: the read model and its checkpoint on SQLite or PostgreSQL.
//! - [`projection`]: the consumer of `eai.order-events` that keeps the read model.
//! - [`output`] and [`trace`]: what a status change sends out.
//! - [`query`]: one order by any of its ids.
//! - [`replay`] and [`rebuild`]: re-deliver a window of a topic; rebuild the read model.

pub mod aggregate;
pub mod events;
pub mod model;
pub mod output;
pub mod projection;
pub mod query;
pub mod rebuild;
pub mod replay;
pub mod status;
pub mod store;
pub mod trace;

use crate::config::Config;

/// `eai.order-events`: the domain events, protobuf, keyed by the order.
pub fn events_topic(config: &Config) -> String {
    format!("{}order-events", config.log.topic_prefix)
}

/// `eai.order-status`: one JSON record per status change, keyed by the order.
pub fn status_topic(config: &Config) -> String {
    format!("{}order-status", config.log.topic_prefix)
}

/// The consumer group of the order projection.
pub const PROJECTION_GROUP: &str = "eaibus.projection.orders";

/// Creates `eai.order-events` and `eai.order-status` if they do not exist (call at start-up,
/// beside `Bus::ensure_topics`).
pub async fn ensure_topics(bus: &crate::bus::Bus) -> Result<(), crate::log::LogError> {
    let partitions = bus.config.log.partitions;
    bus.log
        .ensure_topic(&events_topic(&bus.config), partitions)
        .await?;
    bus.log
        .ensure_topic(&status_topic(&bus.config), partitions)
        .await
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
