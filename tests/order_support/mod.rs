//! Builders of order events for the order tests: one order's facts in a few words.
#![allow(dead_code)]

use eaibus::order::events::{
    CancellationConfirmed, CancellationRefused, CancellationRequested, DeliveryType,
    InternalIdMapped, Invoice, Kind, OrderEvent, SaleIntegrated, SaleItem, SaleReceived,
    StatusReported, TraceSource,
};

/// A minute, in ms: test times are `T0 + n * MIN`.
pub const MIN: i64 = 60_000;
pub const T0: i64 = 1_714_600_000_000;

pub fn event(id: &str, key: &str, at: i64, kind: Kind) -> OrderEvent {
    OrderEvent {
        event_id: id.to_owned(),
        order_key: key.to_owned(),
        source_uuid: format!("uuid-{id}"),
        source_transaction: String::new(),
        answers_uuid: String::new(),
        occurred_at_ms: at,
        recorded_at_ms: at,
        kind: Some(kind),
    }
}

/// A sale with one item per delivery type code ("1".."5").
pub fn sale(order: &str, types: &[&str], at: i64) -> OrderEvent {
    let items = types
        .iter()
        .enumerate()
        .map(|(n, code)| SaleItem {
            item_order: format!("{:02}", n + 1),
            item_id: format!("SKU-{n}"),
            quantity: 1.0,
            delivery_type: eaibus::order::events::delivery_type(code) as i32,
            delivery_type_code: (*code).to_owned(),
            reservation_id: if *code == "3" {
                format!("RES-{order}")
            } else {
                String::new()
            },
            delivery_date: String::new(),
        })
        .collect();
    event(
        &format!("{order}/sale"),
        order,
        at,
        Kind::SaleReceived(SaleReceived {
            sale_id: order.to_owned(),
            customer_id: format!("CLI-{order}"),
            items,
            ..SaleReceived::default()
        }),
    )
}

pub fn protheus_sale_id(order: &str) -> String {
    format!("T1|01|1|{order}|001")
}

pub fn protheus_order_id(order: &str, retail: bool) -> String {
    if retail {
        format!("T1|01|L{order}|2")
    } else {
        format!("T1|01|C{order}|2")
    }
}

pub fn integrated(order: &str, at: i64) -> OrderEvent {
    event(
        &format!("{order}/integrated"),
        order,
        at,
        Kind::SaleIntegrated(SaleIntegrated {
            sale_id: order.to_owned(),
            protheus_sale_id: protheus_sale_id(order),
        }),
    )
}

pub fn mapped(order: &str, at: i64) -> OrderEvent {
    event(
        &format!("{order}/mapped"),
        order,
        at,
        Kind::InternalIdMapped(InternalIdMapped {
            name: "RETAILSALES".into(),
            origin: order.to_owned(),
            destination: protheus_sale_id(order),
            transaction: "RETAILSALES".into(),
        }),
    )
}

/// A traceability report as Protheus sends it: keyed and referenced by Protheus ids.
pub fn report(order: &str, retail: bool, text: &str, n: usize, at: i64) -> OrderEvent {
    report_with(order, retail, text, n, at, Vec::new())
}

pub fn report_with(
    order: &str,
    retail: bool,
    text: &str,
    n: usize,
    at: i64,
    invoices: Vec<Invoice>,
) -> OrderEvent {
    let sale_ref = protheus_sale_id(order);
    event(
        &format!("{order}/report/{n}"),
        &sale_ref.clone(),
        at,
        Kind::StatusReported(StatusReported {
            source: if retail {
                TraceSource::PickupOrcamento
            } else {
                TraceSource::SalesOrder
            } as i32,
            order_internal_id: protheus_order_id(order, retail),
            order_number: if retail {
                format!("L{order}")
            } else {
                format!("C{order}")
            },
            sale_ref,
            status_text: text.to_owned(),
            invoices,
            ..StatusReported::default()
        }),
    )
}

pub fn invoice(order: &str, key: &str) -> Invoice {
    Invoice {
        internal_id: format!("T1|01|NF{order}|1|C|01"),
        number: format!("NF{order}"),
        series: "1".into(),
        status_text: if key.is_empty() {
            "Não Transmitida".into()
        } else {
            "Transmitida".into()
        },
        access_key: key.to_owned(),
        issue_date: "2024-05-02".into(),
        value: 100.0,
        parent_internal_id: protheus_order_id(order, false),
    }
}

pub fn cancel_requested(order: &str, at: i64) -> OrderEvent {
    event(
        &format!("{order}/cancel"),
        order,
        at,
        Kind::CancellationRequested(CancellationRequested {
            sale_id: order.to_owned(),
            cancellation_id: format!("CANC-{order}"),
            cancel_date: String::new(),
        }),
    )
}

pub fn cancel_confirmed(order: &str, at: i64) -> OrderEvent {
    event(
        &format!("{order}/cancel/confirmed"),
        order,
        at,
        Kind::CancellationConfirmed(CancellationConfirmed {
            sale_id: order.to_owned(),
            cancellation_id: format!("CANC-{order}"),
            protheus_cancellation_id: format!("T1|01|1|C{order}|001"),
        }),
    )
}

pub fn cancel_refused(order: &str, at: i64) -> OrderEvent {
    event(
        &format!("{order}/cancel/refused"),
        order,
        at,
        Kind::CancellationRefused(CancellationRefused {
            sale_id: order.to_owned(),
            cancellation_id: format!("CANC-{order}"),
            reason:
                "Pedido já foi faturado, deve ser feito processo de devolução manual pelo Protheus."
                    .into(),
        }),
    )
}

pub fn delivery(code: &str) -> DeliveryType {
    eaibus::order::events::delivery_type(code)
}
