//! The order domain events (protobuf, `schemas/proto/order_events.proto`) and how they are
//! derived from the standard messages eaibus carries:
//!
//! | message | when | events |
//! |---|---|---|
//! | RetailSales (OMNI → Protheus) | accepted by ingest | SaleReceived, CustomerLinked, ReservationMade |
//! | RetailSalesCancellation | accepted by ingest | CancellationRequested |
//! | DocumentTraceabilityOrder(+Retail) | accepted by ingest | StatusReported |
//! | Response to RetailSales | OK, or "já integrado" with an id | SaleIntegrated |
//! | Response to RetailSalesCancellation | OK / ERROR | CancellationConfirmed / CancellationRefused |
//! | any Response with ListOfInternalId | | InternalIdMapped per pair |
//!
//! Every event is keyed by its order (the OMNI sale InternalId), so one order's events share a
//! partition of `eai.order-events` in order. A traceability message names the order by Protheus
//! ids; it is keyed by `RetailSalesInternalId` as carried (the OMNI id when the adapter's De/Para
//! mapping translated it at ingest, else the Protheus sale id), and the projection resolves it.

use prost::Message as _;
use serde_json::Value;

use super::status::Status;
use crate::config::Config;
use crate::log::{EventLog, LogError, NewRecord, Position};
use crate::message::{Field, Message, MessageType, ResponseView};

/// The types generated from `order_events.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/eaibus.order.v1.rs"));
}

pub use pb::order_event::Kind;
pub use pb::{
    CancellationConfirmed, CancellationRefused, CancellationRequested, CustomerLinked,
    DeliveryType, InternalIdMapped, Invoice, OrderEvent, OrderFacts, OrderStatus, ReservationMade,
    SaleIntegrated, SaleItem, SaleReceived, StatusReported, TraceSource,
};

/// Header of every record on `eai.order-events`: the fully qualified protobuf type.
pub const SCHEMA_HEADER: &str = "schema";
pub const SCHEMA_NAME: &str = "eaibus.order.v1.OrderEvent";

impl OrderEvent {
    /// The moment that orders this event among an order's facts: when it happened at the source,
    /// or, when the source did not say, when eaibus derived it.
    pub fn at(&self) -> i64 {
        if self.occurred_at_ms > 0 {
            self.occurred_at_ms
        } else {
            self.recorded_at_ms
        }
    }

    /// A short name of the kind (`SaleReceived`, ...), for headers and logs.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Some(Kind::SaleReceived(_)) => "SaleReceived",
            Some(Kind::CustomerLinked(_)) => "CustomerLinked",
            Some(Kind::ReservationMade(_)) => "ReservationMade",
            Some(Kind::SaleIntegrated(_)) => "SaleIntegrated",
            Some(Kind::StatusReported(_)) => "StatusReported",
            Some(Kind::CancellationRequested(_)) => "CancellationRequested",
            Some(Kind::CancellationConfirmed(_)) => "CancellationConfirmed",
            Some(Kind::CancellationRefused(_)) => "CancellationRefused",
            Some(Kind::InternalIdMapped(_)) => "InternalIdMapped",
            None => "Unknown",
        }
    }

    /// The protobuf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<OrderEvent, prost::DecodeError> {
        OrderEvent::decode(bytes)
    }
}

/// The events of a message ingest accepted (the canonical message as appended to the log).
/// Messages of other transactions, Responses and Receipts give none.
pub fn from_accepted(message: &Message) -> Vec<OrderEvent> {
    from_accepted_at(message, super::now_ms())
}

/// [`from_accepted`] with the derivation time given (tests, replays).
pub fn from_accepted_at(message: &Message, recorded_at_ms: i64) -> Vec<OrderEvent> {
    if message.header.message_type() != MessageType::BusinessMessage {
        return Vec::new();
    }
    let content = &message.content;
    let base = Base {
        source_uuid: message.uuid().to_owned(),
        transaction: message.transaction().to_owned(),
        answers_uuid: String::new(),
        occurred_at_ms: generated_on(message),
        recorded_at_ms,
        prefix: message.uuid().to_owned(),
    };
    match message.transaction() {
        "RETAILSALES" => sale_events(&base, message, content),
        "RETAILSALESCANCELLATION" => {
            let sale_id = text(content, "RetailSalesInternalId");
            if sale_id.is_empty() {
                return Vec::new();
            }
            vec![base.event(
                &sale_id,
                0,
                Kind::CancellationRequested(CancellationRequested {
                    sale_id: sale_id.clone(),
                    cancellation_id: text(content, "InternalId"),
                    cancel_date: text(content, "CancelDate"),
                }),
            )]
        }
        "DOCUMENTTRACEABILITYORDER" => status_event(&base, content, TraceSource::SalesOrder),
        "DOCUMENTTRACEABILITYORDERRETAIL" => {
            status_event(&base, content, TraceSource::PickupOrcamento)
        }
        _ => Vec::new(),
    }
}

fn sale_events(base: &Base, message: &Message, content: &Value) -> Vec<OrderEvent> {
    let sale_id = text(content, "InternalId");
    if sale_id.is_empty() {
        return Vec::new();
    }
    // Protheus refuses a RetailSales delete (cancellations have their own transaction, §8.1).
    let event = message
        .header
        .get(Field::Event)
        .map(str::to_owned)
        .unwrap_or_else(|| text(content, "Event"));
    if event.trim().eq_ignore_ascii_case("delete") {
        return Vec::new();
    }
    let items: Vec<SaleItem> = list(content, "ListOfSaleItem")
        .into_iter()
        .map(|item| {
            let code = text(item, "ItemDeliveryType");
            let reservation = [
                text(item, "ItemReserveInternalId"),
                text(item, "ItemReserveCode"),
            ]
            .into_iter()
            .find(|r| !r.is_empty())
            .unwrap_or_default();
            SaleItem {
                item_order: text(item, "ItemOrder"),
                item_id: [text(item, "ItemInternalId"), text(item, "ItemCode")]
                    .into_iter()
                    .find(|r| !r.is_empty())
                    .unwrap_or_default(),
                quantity: number(item, "Quantity"),
                delivery_type: delivery_type(&code) as i32,
                delivery_type_code: code,
                reservation_id: reservation,
                delivery_date: text(item, "ItemDeliveryDate"),
            }
        })
        .collect();
    let customer = text(content, "CustomerVendorInternalId");
    let mut reservations: Vec<String> = items
        .iter()
        .map(|i| i.reservation_id.clone())
        .filter(|r| !r.is_empty())
        .collect();
    reservations.sort();
    reservations.dedup();
    let mut events = vec![base.event(
        &sale_id,
        0,
        Kind::SaleReceived(SaleReceived {
            sale_id: sale_id.clone(),
            company_id: text(content, "CompanyId"),
            branch_id: text(content, "BranchId"),
            ecommerce_order: text(content, "ECommerceOrder"),
            customer_id: customer.clone(),
            issue_date: text(content, "IssueDateDocument"),
            total_price: number(content, "TotalPrice"),
            items,
            canceled: get(content, "IsCanceled").and_then(Value::as_bool) == Some(true),
            document_code: text(content, "DocumentCode"),
            serie_code: text(content, "SerieCode"),
        }),
    )];
    if !customer.is_empty() {
        events.push(base.event(
            &sale_id,
            0,
            Kind::CustomerLinked(CustomerLinked {
                sale_id: sale_id.clone(),
                customer_id: customer,
            }),
        ));
    }
    if !reservations.is_empty() {
        events.push(base.event(
            &sale_id,
            0,
            Kind::ReservationMade(ReservationMade {
                sale_id: sale_id.clone(),
                reservation_ids: reservations,
            }),
        ));
    }
    events
}

fn status_event(base: &Base, content: &Value, source: TraceSource) -> Vec<OrderEvent> {
    let order_internal_id = text(content, "InternalId");
    let sale_ref = text(content, "RetailSalesInternalId");
    let key = if sale_ref.is_empty() {
        order_internal_id.clone()
    } else {
        sale_ref.clone()
    };
    if key.is_empty() {
        return Vec::new();
    }
    let status_text = get(content, "Status")
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    let invoices = get(content, "ReturnTraceability")
        .map(|r| list(r, "ListOfTraceability"))
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !text(i, "Number").is_empty() || !text(i, "InternalId").is_empty())
        .map(|i| Invoice {
            internal_id: text(i, "InternalId"),
            number: text(i, "Number"),
            series: text(i, "Serie"),
            status_text: text(i, "Status"),
            access_key: text(i, "ElectronicAccessKey"),
            issue_date: text(i, "IssueDate"),
            value: number(i, "Value"),
            parent_internal_id: get(i, "ListOfParentInternalId")
                .and_then(|l| get(l, "ParentInternalId"))
                .map(|p| {
                    let id = text(p, "InternalId");
                    if id.is_empty() {
                        text(p, "InternaldId")
                    } else {
                        id
                    }
                })
                .unwrap_or_default(),
        })
        .collect();
    let status: OrderStatus = Status::normalise(&status_text).to_proto();
    vec![base.event(
        &key,
        0,
        Kind::StatusReported(StatusReported {
            source: source as i32,
            order_internal_id,
            order_number: text(content, "Number"),
            sale_ref,
            status: status as i32,
            status_text,
            invoices,
            company_id: text(content, "CompanyId"),
            branch_id: text(content, "BranchId"),
            register_date: text(content, "RegisterDate"),
            delivery_date: text(content, "DeliveryDate"),
            customer_id: text(content, "CustomerVendorInternalId"),
            traceability_code: text(content, "TraceabilityCode"),
        }),
    )]
}

/// The events of a Response to a message eaibus delivered: `original` as it is on the log (its
/// canonical JSON), `response` as received (or as built for a Kafka route).
pub fn from_response(original: &Message, response: &Message) -> Vec<OrderEvent> {
    from_response_at(original, response, super::now_ms())
}

/// [`from_response`] with the derivation time given.
pub fn from_response_at(
    original: &Message,
    response: &Message,
    recorded_at_ms: i64,
) -> Vec<OrderEvent> {
    let view = ResponseView::new(&response.content);
    let occurred = {
        let at = generated_on(response);
        if at > 0 {
            at
        } else {
            view_processed_on(&response.content)
        }
    };
    let base = Base {
        source_uuid: response.uuid().to_owned(),
        transaction: original.transaction().to_owned(),
        answers_uuid: original.uuid().to_owned(),
        occurred_at_ms: occurred,
        recorded_at_ms,
        prefix: format!("{}/response", original.uuid()),
    };
    let pairs = view.internal_ids();
    let mut events = Vec::new();
    match original.transaction() {
        "RETAILSALES" => {
            let sale_id = text(&original.content, "InternalId");
            if !sale_id.is_empty() {
                let protheus = if view.is_ok() {
                    pairs
                        .iter()
                        .find(|p| p.origin.trim() == sale_id && !p.destination.trim().is_empty())
                        .or_else(|| {
                            pairs.iter().find(|p| {
                                p.name.eq_ignore_ascii_case("RETAILSALES")
                                    && !p.destination.trim().is_empty()
                            })
                        })
                        .map(|p| p.destination.trim().to_owned())
                } else {
                    view.already_integrated_id().map(|id| id.trim().to_owned())
                };
                if let Some(protheus_sale_id) = protheus {
                    events.push(base.event(
                        &sale_id,
                        0,
                        Kind::SaleIntegrated(SaleIntegrated {
                            sale_id: sale_id.clone(),
                            protheus_sale_id,
                        }),
                    ));
                }
            }
        }
        "RETAILSALESCANCELLATION" => {
            let sale_id = text(&original.content, "RetailSalesInternalId");
            let cancellation_id = text(&original.content, "InternalId");
            if !sale_id.is_empty() {
                let kind = if view.is_ok() {
                    Kind::CancellationConfirmed(CancellationConfirmed {
                        sale_id: sale_id.clone(),
                        cancellation_id,
                        protheus_cancellation_id: pairs
                            .first()
                            .map(|p| p.destination.trim().to_owned())
                            .unwrap_or_default(),
                    })
                } else {
                    Kind::CancellationRefused(CancellationRefused {
                        sale_id: sale_id.clone(),
                        cancellation_id,
                        reason: view.messages().join("; "),
                    })
                };
                events.push(base.event(&sale_id, 0, kind));
            }
        }
        _ => {}
    }
    // Only a success's pairs are mappings; an error's ListOfInternalId (rare) is not trusted.
    if view.is_ok() {
        for (n, pair) in pairs.iter().enumerate() {
            if pair.origin.trim().is_empty() {
                continue;
            }
            events.push(base.event(
                pair.origin.trim(),
                n,
                Kind::InternalIdMapped(InternalIdMapped {
                    name: pair.name.clone(),
                    origin: pair.origin.trim().to_owned(),
                    destination: pair.destination.trim().to_owned(),
                    transaction: original.transaction().to_owned(),
                }),
            ));
        }
    }
    events
}

/// Appends the events to `eai.order-events`, keyed by their order, in one append (durable when
/// it returns). Creates the topic when the log does not know it yet.
pub async fn publish(
    log: &dyn EventLog,
    config: &Config,
    events: &[OrderEvent],
) -> Result<Vec<Position>, LogError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let topic = super::events_topic(config);
    let records: Vec<NewRecord> = events.iter().map(|e| record(&topic, e)).collect();
    match log.append(records.clone()).await {
        Err(LogError::Refused(reason)) if reason.contains("does not exist") => {
            log.ensure_topic(&topic, config.log.partitions).await?;
            log.append(records).await
        }
        other => other,
    }
}

/// The log record of an event.
pub fn record(topic: &str, event: &OrderEvent) -> NewRecord {
    NewRecord::new(topic, Some(&event.order_key), event.to_bytes())
        .header(SCHEMA_HEADER, SCHEMA_NAME)
        .header("event", event.kind_name())
}

/// Derives the events of a Response and publishes them: what delivery calls once a Response to
/// `original` is judged.
pub async fn on_response(
    bus: &crate::bus::Bus,
    original: &Message,
    response: &Message,
) -> Result<usize, LogError> {
    let events = from_response(original, response);
    publish(bus.log.as_ref(), &bus.config, &events).await?;
    Ok(events.len())
}

/// What every event of one message shares.
struct Base {
    source_uuid: String,
    transaction: String,
    answers_uuid: String,
    occurred_at_ms: i64,
    recorded_at_ms: i64,
    /// Start of the event ids: the message UUID, or `<answered UUID>/response`.
    prefix: String,
}

impl Base {
    fn event(&self, order_key: &str, n: usize, kind: Kind) -> OrderEvent {
        let mut event = OrderEvent {
            event_id: String::new(),
            order_key: order_key.trim().to_owned(),
            source_uuid: self.source_uuid.clone(),
            source_transaction: self.transaction.clone(),
            answers_uuid: self.answers_uuid.clone(),
            occurred_at_ms: self.occurred_at_ms,
            recorded_at_ms: self.recorded_at_ms,
            kind: Some(kind),
        };
        event.event_id = format!("{}/{}/{n}", self.prefix, event.kind_name());
        event
    }
}

/// The value of `key` in an object, in any letter case.
pub(crate) fn get<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A text field, trimmed; numbers as their text; absent or another type is empty.
pub(crate) fn text(value: &Value, key: &str) -> String {
    match get(value, key) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn number(value: &Value, key: &str) -> f64 {
    match get(value, key) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().replace(',', ".").parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The items of a list field in any shape: an array, a wrapper `{"Item": [...]}` or `{"Item":
/// {...}}`, or a single object.
pub(crate) fn list<'v>(value: &'v Value, key: &str) -> Vec<&'v Value> {
    match get(value, key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(map)) if map.len() == 1 => match map.values().next() {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(inner @ Value::Object(_)) => vec![inner],
            _ => Vec::new(),
        },
        Some(Value::Object(map)) if map.is_empty() => Vec::new(),
        Some(other @ Value::Object(_)) => vec![other],
        Some(_) => Vec::new(),
    }
}

/// `ItemDeliveryType`: absent or empty means `2` (Retira, §8.1).
pub fn delivery_type(code: &str) -> DeliveryType {
    match code.trim() {
        "" | "2" => DeliveryType::Retira,
        "1" => DeliveryType::RetiraPosterior,
        "3" => DeliveryType::Entrega,
        "4" => DeliveryType::RetiraPosteriorComPedido,
        "5" => DeliveryType::PedidoSemReserva,
        _ => DeliveryType::Unspecified,
    }
}

/// The header `GeneratedOn` in milliseconds since the epoch; 0 when absent or unreadable.
fn generated_on(message: &Message) -> i64 {
    message
        .header
        .get(Field::GeneratedOn)
        .map_or(0, |t| parse_time(t).unwrap_or(0))
}

fn view_processed_on(content: &Value) -> i64 {
    get(content, "ProcessingInformation")
        .and_then(|p| get(p, "ProcessedOn"))
        .and_then(Value::as_str)
        .and_then(parse_time)
        .unwrap_or(0)
}

/// Reads the times the standard writes: RFC 3339 with an offset, a local date-time without one
/// (taken as UTC), or a date.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Header;
    use serde_json::json;

    fn message(transaction: &str, uuid: &str, content: Value) -> Message {
        let mut header = Header::default();
        header.set(Field::Uuid, uuid);
        header.set(Field::Type, "BusinessMessage");
        header.set(Field::Transaction, transaction);
        header.set(Field::GeneratedOn, "2024-05-02T14:05:50-03:00");
        Message { header, content }
    }

    #[test]
    fn a_sale_gives_received_customer_and_reservations_with_delivery_types() {
        let sale = message(
            "RETAILSALES",
            "u-1",
            json!({"InternalId": "OMNI-1", "CustomerVendorInternalId": "CLI-9",
                "ListOfSaleItem": {"SaleItem": [
                    {"ItemInternalId": "SKU-1", "Quantity": "2", "ItemDeliveryType": "3",
                     "ItemReserveInternalId": "RES-1"},
                    {"ItemCode": "SKU-2", "Quantity": 1}]}}),
        );
        let events = from_accepted_at(&sale, 7);
        let kinds: Vec<_> = events.iter().map(OrderEvent::kind_name).collect();
        assert_eq!(kinds, ["SaleReceived", "CustomerLinked", "ReservationMade"]);
        assert!(events.iter().all(|e| e.order_key == "OMNI-1"));
        assert_eq!(events[0].event_id, "u-1/SaleReceived/0");
        assert_eq!(events[0].occurred_at_ms, 1_714_669_550_000);
        let Some(Kind::SaleReceived(received)) = &events[0].kind else {
            panic!()
        };
        assert_eq!(received.items[0].delivery_type(), DeliveryType::Entrega);
        assert_eq!(received.items[1].delivery_type(), DeliveryType::Retira);
        assert_eq!(received.items[0].quantity, 2.0);
    }

    #[test]
    fn a_traceability_message_is_keyed_by_its_sale_and_keeps_invoices() {
        let dto = message(
            "DOCUMENTTRACEABILITYORDER",
            "u-2",
            json!({"InternalId": "T1|01|000123|2", "Number": "000123", "Status": "FATURADO ",
                "RetailSalesInternalId": "T1|01|1|000045|001",
                "ReturnTraceability": {"ListOfTraceability": {"Invoice": [
                    {"Number": "000045", "Serie": "1", "ElectronicAccessKey": "3124",
                     "ListOfParentInternalId": {"ParentInternalId": {"InternalId": "T1|01|000123|2"}}}]}}}),
        );
        let events = from_accepted(&dto);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].order_key, "T1|01|1|000045|001");
        let Some(Kind::StatusReported(report)) = &events[0].kind else {
            panic!()
        };
        assert_eq!(report.status(), OrderStatus::Faturado);
        assert_eq!(report.status_text, "FATURADO ");
        assert_eq!(report.invoices[0].access_key, "3124");
        assert_eq!(report.invoices[0].parent_internal_id, "T1|01|000123|2");
    }

    #[test]
    fn responses_give_integration_cancellation_and_mappings() {
        let sale = message("RETAILSALES", "s-1", json!({"InternalId": "OMNI-1"}));
        let ok = message(
            "RETAILSALES",
            "r-1",
            json!({"ProcessingInformation": {"Status": "OK"},
                "ReturnContent": {"ListOfInternalId": [
                    {"Name": "RETAILSALES", "Origin": "OMNI-1", "Destination": "T1|01|1|45|001"}]}}),
        );
        let events = from_response_at(&sale, &ok, 1);
        let kinds: Vec<_> = events.iter().map(OrderEvent::kind_name).collect();
        assert_eq!(kinds, ["SaleIntegrated", "InternalIdMapped"]);
        assert_eq!(events[0].event_id, "s-1/response/SaleIntegrated/0");
        assert_eq!(events[0].answers_uuid, "s-1");

        let already = message(
            "RETAILSALES",
            "r-2",
            json!({"ProcessingInformation": {"Status": "ERROR"}, "ReturnContent": {"Error":
                "{\"InternalId\":\"T1|01|1|45|001\",\"Message\":\"Cupom ja integrado\"}"}}),
        );
        let Some(Kind::SaleIntegrated(i)) = &from_response(&sale, &already)[0].kind else {
            panic!()
        };
        assert_eq!(i.protheus_sale_id, "T1|01|1|45|001");

        let cancel = message(
            "RETAILSALESCANCELLATION",
            "c-1",
            json!({"InternalId": "CANC-1", "RetailSalesInternalId": "OMNI-1"}),
        );
        let refused = message(
            "RETAILSALESCANCELLATION",
            "r-3",
            json!({"ProcessingInformation": {"Status": "ERROR"}, "ReturnContent": {"Error":
                "Pedido já foi faturado, deve ser feito processo de devolução manual pelo Protheus."}}),
        );
        let events = from_response(&cancel, &refused);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].order_key, "OMNI-1");
        assert!(
            matches!(&events[0].kind, Some(Kind::CancellationRefused(r)) if r.reason.contains("faturado"))
        );
        let confirmed = message(
            "RETAILSALESCANCELLATION",
            "r-4",
            json!({"ProcessingInformation": {"Status": "OK"}, "ReturnContent": {"ListOfInternalID":
                {"InternalID": {"Name": "RETAILSALESCANCELLATION", "Origin": "CANC-1", "Destination": "T1|01|1|45|001"}}}}),
        );
        let kinds: Vec<_> = from_response(&cancel, &confirmed)
            .iter()
            .map(OrderEvent::kind_name)
            .collect();
        assert_eq!(kinds, ["CancellationConfirmed", "InternalIdMapped"]);
    }

    #[test]
    fn events_survive_protobuf() {
        let sale = message("RETAILSALES", "u-1", json!({"InternalId": "OMNI-1"}));
        let event = from_accepted(&sale).remove(0);
        assert_eq!(OrderEvent::from_bytes(&event.to_bytes()).unwrap(), event);
    }
}
