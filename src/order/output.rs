//! What a status change sends out, recorded in the projection's outbox in the same transaction
//! as the change and sent after the commit (at least once; ids are deterministic, so a consumer
//! can drop repeats):
//!
//! - an order-status record on `eai.order-status`, keyed by the order (JSON, [`OrderStatusEvent`]);
//! - for each route that asks for it, the traceability message ([`super::trace`]): recorded in
//!   the monitor store as an outbound message and planned for delivery along that route, where
//!   the route's worker sends it like any other message (retries, parking, DLQ).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::aggregate::Derived;
use super::model::Announcement;
use super::store::{OrderStore, OutboxRow, OutputBuilder, StoreError};
use super::trace::{self, TraceTarget};
use crate::bus::Bus;
use crate::config::Identity;
use crate::log::NewRecord;
use crate::monitor::{Direction, Format, NewMessage};
use crate::schema::SchemaRegistry;

/// The record of a status change on `eai.order-status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderStatusEvent {
    /// Deterministic id of this change (drop repeats by it).
    pub id: String,
    /// The OMNI sale id.
    pub order_id: String,
    /// Protheus sale ids (EMP|FIL|SERIE|DOC|PDV).
    pub sale_ids: Vec<String>,
    /// Protheus order ids of this part (EMP|FIL|C5_NUM|2 or EMP|FIL|L1_NUM|2).
    pub protheus_order_ids: Vec<String>,
    /// ENTREGA, RETIRA_POSTERIOR or RETIRA.
    pub delivery: String,
    /// Status code (FATURADO, UNKNOWN_STATUS, ...) and text (the raw text for an unknown one).
    pub status: String,
    pub status_text: String,
    pub previous_status: Option<String>,
    pub previous_status_text: Option<String>,
    /// The overall status of the order.
    pub order_status: Option<String>,
    /// When the change happened (RFC 3339) and in ms since the epoch.
    pub at: String,
    pub at_ms: i64,
    /// The latest invoice of this part, if any.
    pub invoice: Option<InvoiceRef>,
    /// The event that caused the change.
    pub event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRef {
    pub number: String,
    pub series: String,
    pub access_key: String,
    pub status_text: String,
    pub issue_date: String,
}

/// Builds the outputs of status changes.
pub struct Outputs {
    pub identity: Identity,
    pub registry: Option<Arc<SchemaRegistry>>,
    pub trace: Vec<TraceTarget>,
}

impl Outputs {
    pub fn for_bus(bus: &Bus, trace: Vec<TraceTarget>) -> Outputs {
        Outputs {
            identity: bus.config.identity.clone(),
            registry: Some(bus.registry.clone()),
            trace,
        }
    }
}

pub fn status_event(announcement: &Announcement, order: &Derived) -> OrderStatusEvent {
    let flow = announcement.flow;
    let part = order.parts.get(&flow);
    let invoice = order
        .invoices
        .iter()
        .filter(|i| i.flow == flow)
        .max_by(|a, b| (a.reported_at, &a.number).cmp(&(b.reported_at, &b.number)))
        .map(|i| InvoiceRef {
            number: i.number.clone(),
            series: i.series.clone(),
            access_key: i.access_key.clone(),
            status_text: i.status_text.clone(),
            issue_date: i.issue_date.clone(),
        });
    OrderStatusEvent {
        id: change_id(announcement),
        order_id: order.order_id.clone(),
        sale_ids: order.sale_ids.iter().cloned().collect(),
        protheus_order_ids: part
            .map(|p| p.order_ids.iter().cloned().collect())
            .unwrap_or_default(),
        delivery: flow.code().to_owned(),
        status: announcement.to.code().to_owned(),
        status_text: announcement.to.text().to_owned(),
        previous_status: announcement.from.as_ref().map(|s| s.code().to_owned()),
        previous_status_text: announcement.from.as_ref().map(|s| s.text().to_owned()),
        order_status: order.status.as_ref().map(|s| s.code().to_owned()),
        at: trace::rfc3339(announcement.at),
        at_ms: announcement.at,
        invoice,
        event_id: announcement.event_id.clone(),
    }
}

/// The id of a status change: the event, the order, the part and the new status.
pub fn change_id(a: &Announcement) -> String {
    format!(
        "{}|{}|{}|{}",
        a.event_id,
        a.order_id,
        a.flow.code(),
        a.to.code()
    )
}

/// A UUID derived from a text (so a re-sent output carries the same UUID).
pub fn uuid_of(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl OutputBuilder for Outputs {
    fn outputs(&self, announcement: &Announcement, order: &Derived) -> Vec<OutboxRow> {
        let event = status_event(announcement, order);
        let created_at = super::now_ms();
        let mut rows = vec![OutboxRow {
            id: event.id.clone(),
            kind: "status".into(),
            key: order.order_id.clone(),
            payload: serde_json::to_string(&event).unwrap_or_default(),
            created_at,
        }];
        let Some(registry) = &self.registry else {
            return rows;
        };
        for target in &self.trace {
            let id = format!("{}|trace:{}", event.id, target.route);
            match trace::build(
                announcement,
                order,
                &target.version,
                &self.identity,
                registry,
                &uuid_of(&id),
            ) {
                Ok(message) => rows.push(OutboxRow {
                    id,
                    kind: format!("trace:{}", target.route),
                    key: order.order_id.clone(),
                    payload: message.canonical_json(),
                    created_at,
                }),
                Err(trace::TraceError::NoMessage(_) | trace::TraceError::NoProtheusOrder(..)) => {}
                Err(e) => {
                    warn!(order = %order.order_id, route = %target.route, error = %e, "A traceability message could not be built; the route does not get this change.");
                }
            }
        }
        rows
    }
}

/// Sends what the outbox holds: order-status records to `eai.order-status`, traceability
/// messages to the monitor store and their route. Returns how many were sent.
pub async fn drain(bus: &Bus, store: &OrderStore) -> Result<usize, OutputError> {
    let mut sent = 0;
    loop {
        let rows = store.outbox(500).await?;
        if rows.is_empty() {
            return Ok(sent);
        }
        let topic = super::status_topic(&bus.config);
        let mut records = Vec::new();
        let mut done = Vec::new();
        for row in &rows {
            if row.kind == "status" {
                records.push(
                    NewRecord::new(&topic, Some(&row.key), row.payload.clone())
                        .header("content-type", "application/json")
                        .header("change-id", &row.id),
                );
                done.push(row.id.clone());
            } else if let Some(route) = row.kind.strip_prefix("trace:") {
                send_trace(bus, route, row).await?;
                done.push(row.id.clone());
            } else {
                warn!(id = %row.id, kind = %row.kind, "An outbox row of an unknown kind is dropped.");
                done.push(row.id.clone());
            }
        }
        if !records.is_empty() {
            match bus.log.append(records.clone()).await {
                Err(crate::log::LogError::Refused(reason)) if reason.contains("does not exist") => {
                    bus.log
                        .ensure_topic(&topic, bus.config.log.partitions)
                        .await?;
                    bus.log.append(records).await?;
                }
                other => {
                    other?;
                }
            }
        }
        store.outbox_sent(&done).await?;
        sent += done.len();
    }
}

async fn send_trace(bus: &Bus, route: &str, row: &OutboxRow) -> Result<(), OutputError> {
    let message = bus
        .codec()
        .decode_json(row.payload.as_bytes())
        .map_err(|e| OutputError::Message(e.to_string()))?;
    let uuid = message.uuid().to_owned();
    let record = NewMessage {
        uuid: uuid.clone(),
        transaction: message.transaction().to_owned(),
        version: message.header.version().unwrap_or_default().to_owned(),
        direction: Direction::Outbound,
        source_application: bus.config.identity.application.clone(),
        format: Format::Json,
        origin: "order-projection".into(),
        business_key: Some(row.key.clone()),
        received_at: None,
        raw_payload: row.payload.clone().into_bytes(),
        canonical_json: Some(row.payload.clone()),
    };
    bus.monitor.record_received(&record).await?;
    bus.monitor
        .plan_delivery(&uuid, route, super::now_ms())
        .await?;
    info!(uuid = %uuid, route, order = %row.key, "A traceability message was planned for delivery.");
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorError),
    #[error("an outbox message cannot be read: {0}")]
    Message(String),
}
