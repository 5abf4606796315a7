//! The stored description of an order: the `order_orders` columns a reader sees, its parts,
//! history and invoices as JSON arrays. Written the same way by the live projection and by a
//! rebuild, so the two can be compared column by column (the digest hashes these texts).

use serde::Serialize;

use super::status_cols;
use crate::order::aggregate::Derived;
use crate::order::status::{Flow, Status};

/// The columns of `order_orders` other than the aggregate state (`facts`, `current_status`,
/// `version`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub order_id: String,
    pub status: String,
    pub status_text: String,
    pub customer_id: String,
    pub ecommerce_order: String,
    pub company_id: String,
    pub branch_id: String,
    /// JSON of the cancellation, or empty.
    pub cancellation: String,
    /// JSON array of reservation ids.
    pub reservations: String,
    pub updated_at: i64,
    /// JSON arrays of [`super::PartRow`], [`super::HistoryRow`] and [`super::InvoiceRow`].
    pub parts: String,
    pub history: String,
    pub invoices: String,
}

// The JSON rows, borrowed from the derived state: the same fields, in the same order, as
// `PartRow`, `HistoryRow` and `InvoiceRow` (which read them back), without copying every text
// first.

#[derive(Serialize)]
struct PartJson<'a> {
    order_id: &'a str,
    flow: &'a str,
    status: &'a str,
    status_text: &'a str,
    since: i64,
    order_ids: String,
    order_numbers: String,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    order_id: &'a str,
    seq: i64,
    at_ms: i64,
    flow: &'a str,
    status: &'a str,
    text: &'a str,
    previous: &'a str,
    effect: &'a str,
    event_id: &'a str,
    source_uuid: &'a str,
    note: &'a str,
}

#[derive(Serialize)]
struct InvoiceJson<'a> {
    order_id: &'a str,
    series: &'a str,
    number: &'a str,
    flow: &'a str,
    internal_id: &'a str,
    status_text: &'a str,
    access_key: &'a str,
    issue_date: &'a str,
    value: f64,
    order_ref: &'a str,
    reported_at: i64,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

impl OrderLine {
    pub fn of(derived: &Derived) -> OrderLine {
        let id = derived.order_id.as_str();
        let (status, status_text) = status_cols(derived.status.as_ref());
        let parts: Vec<PartJson<'_>> = derived
            .parts
            .values()
            .map(|p| PartJson {
                order_id: id,
                flow: p.flow.code(),
                status: p.status.code(),
                status_text: p.status.text(),
                since: p.since,
                order_ids: json(&p.order_ids),
                order_numbers: json(&p.order_numbers),
            })
            .collect();
        let history: Vec<HistoryJson<'_>> = derived
            .history
            .iter()
            .enumerate()
            .map(|(n, h)| HistoryJson {
                order_id: id,
                seq: n as i64,
                at_ms: h.at,
                flow: h.flow.map(Flow::code).unwrap_or_default(),
                status: h.status.as_ref().map(Status::code).unwrap_or_default(),
                text: &h.text,
                previous: h.previous.as_ref().map(Status::code).unwrap_or_default(),
                effect: h.effect.code(),
                event_id: &h.event_id,
                source_uuid: &h.source_uuid,
                note: &h.note,
            })
            .collect();
        let invoices: Vec<InvoiceJson<'_>> = derived
            .invoices
            .iter()
            .map(|i| InvoiceJson {
                order_id: id,
                series: &i.series,
                number: &i.number,
                flow: i.flow.code(),
                internal_id: &i.internal_id,
                status_text: &i.status_text,
                access_key: &i.access_key,
                issue_date: &i.issue_date,
                value: i.value,
                order_ref: &i.order_id,
                reported_at: i.reported_at,
            })
            .collect();
        OrderLine {
            order_id: id.to_owned(),
            status,
            status_text,
            customer_id: derived.customer_id.clone(),
            ecommerce_order: derived.ecommerce_order.clone(),
            company_id: derived.company_id.clone(),
            branch_id: derived.branch_id.clone(),
            cancellation: derived
                .cancellation
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default())
                .unwrap_or_default(),
            reservations: json(&derived.reservations),
            updated_at: derived.updated_at,
            parts: json(&parts),
            history: json(&history),
            invoices: json(&invoices),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::order::aggregate::{Cancellation, Effect, HistoryEntry, InvoiceView, Part};
    use crate::order::store::OrderRows;

    /// The stored JSON is read back as `PartRow`, `HistoryRow` and `InvoiceRow`: the borrowed
    /// writers must write exactly what serialising those rows writes.
    #[test]
    fn writes_what_the_row_types_read() {
        let part = Part {
            flow: Flow::Entrega,
            status: Status::Unknown("Status indefinido: 42".into()),
            since: 1_714_600_000_000,
            order_ids: BTreeSet::from(["T1|01|000456|2".to_owned()]),
            order_numbers: BTreeSet::from(["000456".to_owned()]),
        };
        let derived = Derived {
            order_id: "OMNI-\"1\"".into(),
            status: Some(Status::Faturado),
            parts: BTreeMap::from([(Flow::Entrega, part)]),
            history: vec![
                HistoryEntry {
                    at: 1,
                    flow: Some(Flow::Entrega),
                    status: Some(Status::Faturado),
                    text: "FATURADO \u{1f} ç".into(),
                    previous: Some(Status::Integrado),
                    effect: Effect::Applied,
                    event_id: "e/1".into(),
                    source_uuid: "u".into(),
                    note: String::new(),
                },
                HistoryEntry {
                    at: 2,
                    flow: None,
                    status: None,
                    text: "Cancelamento solicitado".into(),
                    previous: None,
                    effect: Effect::Note,
                    event_id: "e/2".into(),
                    source_uuid: "u2".into(),
                    note: "C-1".into(),
                },
            ],
            invoices: vec![InvoiceView {
                flow: Flow::Entrega,
                number: "000001".into(),
                series: "1".into(),
                internal_id: "T1|01|000001|1".into(),
                status_text: "Transmitida".into(),
                access_key: "3".repeat(44),
                issue_date: "2024-05-02".into(),
                value: 199.9,
                order_id: "T1|01|000456|2".into(),
                reported_at: 3,
            }],
            sale_ids: BTreeSet::new(),
            sale_refs: BTreeSet::new(),
            customer_id: "CLI-1".into(),
            ecommerce_order: "VTX-1".into(),
            company_id: "T1".into(),
            branch_id: "01".into(),
            reservations: BTreeSet::from(["RES-1".to_owned(), "RES-2".to_owned()]),
            cancellation: Some(Cancellation::Requested {
                cancellation_id: "C-1".into(),
            }),
            updated_at: 3,
        };
        let line = OrderLine::of(&derived);
        let rows = OrderRows::of(&derived);
        assert_eq!(line.parts, serde_json::to_string(&rows.parts).unwrap());
        assert_eq!(line.history, serde_json::to_string(&rows.history).unwrap());
        assert_eq!(
            line.invoices,
            serde_json::to_string(&rows.invoices).unwrap()
        );
        let o = &rows.order;
        assert_eq!(
            (
                &line.order_id,
                &line.status,
                &line.status_text,
                &line.customer_id,
                &line.ecommerce_order,
                &line.company_id,
                &line.branch_id,
                &line.cancellation,
                &line.reservations,
                line.updated_at
            ),
            (
                &o.order_id,
                &o.status,
                &o.status_text,
                &o.customer_id,
                &o.ecommerce_order,
                &o.company_id,
                &o.branch_id,
                &o.cancellation,
                &o.reservations,
                o.updated_at
            )
        );
    }
}
