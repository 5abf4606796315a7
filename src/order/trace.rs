//! The standard traceability message eaibus writes on a status change, for the routes that ask
//! for it: DocumentTraceabilityOrder (a sales order, Entrega flow, §8.4) or
//! DocumentTraceAbilityOrderRetail (a pickup-later orçamento, §8.5), content as Protheus writes
//! it, version 1.001, validated against our schema before it leaves.
//!
//! The order is named the way OMNI knows it: `RetailSalesInternalId` is the OMNI sale id and
//! `CustomerVendorInternalId` the OMNI customer id (what the traceability adapters' De/Para
//! mappings produce for Protheus' own messages); `InternalId` and `Number` are Protheus'.

use serde_json::{Map, Value, json};

use super::aggregate::Derived;
use super::model::Announcement;
use super::status::Flow;
use crate::config::Identity;
use crate::message::{Field, Header, Message};
use crate::schema::{FieldError, SchemaRegistry};

/// A route that receives traceability messages, and the version it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceTarget {
    pub route: String,
    pub version: String,
}

/// The default version.
pub const VERSION: &str = "1.001";

/// The versions a route may ask for (`order_trace`): the JSON adapters' 1.000 and 1.001 differ
/// only by `DocumentContent` (§8.4), which eaibus does not write, so one content serves both.
pub const VERSIONS: &[&str] = &["1.000", "1.001"];

/// The transactions written: a sales order's and a pickup-later orçamento's.
pub const MESSAGES: [&str; 2] = [
    "DocumentTraceabilityOrder",
    "DocumentTraceAbilityOrderRetail",
];

/// Why no traceability message was written for a change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TraceError {
    /// Retira sales have no traceability message (§9).
    #[error("the {0} flow has no traceability message")]
    NoMessage(Flow),
    /// Protheus has not reported its order yet, so there is no order id or number to send.
    #[error("order {0} has no Protheus order id for the {1} flow yet")]
    NoProtheusOrder(String, Flow),
    #[error("the traceability message does not match its schema: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

/// Builds the traceability message of a status change and validates it.
pub fn build(
    announcement: &Announcement,
    order: &Derived,
    version: &str,
    identity: &Identity,
    registry: &SchemaRegistry,
    uuid: &str,
) -> Result<Message, TraceError> {
    let flow = announcement.flow;
    let transaction = match flow {
        Flow::Entrega => "DOCUMENTTRACEABILITYORDER",
        Flow::RetiraPosterior => "DOCUMENTTRACEABILITYORDERRETAIL",
        Flow::Retira => return Err(TraceError::NoMessage(flow)),
    };
    let part = order.parts.get(&flow);
    let (Some(internal_id), Some(number)) = (
        part.and_then(|p| p.order_ids.iter().next_back()),
        part.and_then(|p| p.order_numbers.iter().next_back()),
    ) else {
        return Err(TraceError::NoProtheusOrder(order.order_id.clone(), flow));
    };
    let segments: Vec<&str> = internal_id.split('|').collect();
    let company = segments.first().copied().unwrap_or_default();
    let branch = segments.get(1).copied().unwrap_or_default();

    let mut content = Map::new();
    content.insert("InternalId".into(), json!(internal_id));
    content.insert(
        "CompanyInternalId".into(),
        json!(format!("{company}|{branch}")),
    );
    content.insert("CompanyId".into(), json!(company));
    content.insert("BranchId".into(), json!(branch));
    content.insert("Number".into(), json!(number));
    content.insert("Status".into(), json!(announcement.to.text()));
    if !order.customer_id.is_empty() {
        content.insert("CustomerVendorInternalId".into(), json!(order.customer_id));
    }
    content.insert("Type".into(), json!("001"));
    content.insert("RetailSalesInternalId".into(), json!(order.order_id));
    let invoices: Vec<Value> = order
        .invoices
        .iter()
        .filter(|i| i.flow == flow)
        .map(|i| {
            let mut invoice = Map::new();
            if !i.internal_id.is_empty() {
                invoice.insert("InternalId".into(), json!(i.internal_id));
            }
            invoice.insert(
                "CompanyInternalId".into(),
                json!(format!("{company}|{branch}")),
            );
            invoice.insert("CompanyId".into(), json!(company));
            invoice.insert("BranchId".into(), json!(branch));
            invoice.insert("Number".into(), json!(i.number));
            invoice.insert("Serie".into(), json!(i.series));
            if !i.status_text.is_empty() {
                invoice.insert("Status".into(), json!(i.status_text));
            }
            if !i.issue_date.is_empty() {
                invoice.insert("IssueDate".into(), json!(i.issue_date));
            }
            if i.value != 0.0 {
                invoice.insert("Value".into(), json!(i.value));
            }
            invoice.insert("TypeOfDocument".into(), json!("N"));
            invoice.insert("ElectronicAccessKey".into(), json!(i.access_key));
            invoice.insert(
                "ListOfParentInternalId".into(),
                json!({"ParentInternalId": {"InternalId": i.order_id, "TypeCode": "004"}}),
            );
            Value::Object(invoice)
        })
        .collect();
    content.insert(
        "ReturnTraceability".into(),
        json!({"ListOfTraceability": invoices}),
    );

    let mut header = Header::default();
    header.set(Field::Uuid, uuid);
    header.set(Field::Type, "BusinessMessage");
    header.set(Field::SubType, "event");
    header.set(Field::Event, "upsert");
    header.set(Field::Transaction, transaction);
    header.set(Field::Version, version);
    header.set(Field::StandardVersion, "1.000");
    header.set(Field::SourceApplication, &identity.application);
    header.set(Field::CompanyId, company);
    header.set(Field::BranchId, branch);
    header.set(Field::ProductName, &identity.product);
    header.set(Field::ProductVersion, &identity.product_version);
    header.set(Field::GeneratedOn, rfc3339(announcement.at));
    header.set(Field::DeliveryType, "Async");
    let message = Message {
        header,
        content: Value::Object(content),
    };
    registry.validate(&message).map_err(TraceError::Invalid)?;
    Ok(message)
}

pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
