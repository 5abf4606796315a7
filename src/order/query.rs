//! One order by any of its ids — the OMNI sale id, a Protheus order id (EMP|FIL|C5_NUM|2,
//! EMP|FIL|L1_NUM|2) or the Protheus sale id (EMP|FIL|SERIE|DOC|PDV) — with its status, history
//! and invoices: what `GET /api/v1/orders/{id}` and `eaibus order show ID` answer.

use serde::Serialize;

use super::aggregate::Cancellation;
use super::store::{OrderStore, StoreError, cancellation_of, effect_of, status_of};
use super::trace::rfc3339;

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The OMNI sale id.
    pub order_id: String,
    /// The id that was asked for, when it is not the OMNI id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_by: Option<String>,
    /// Overall status code (`FATURADO`, `UNKNOWN_STATUS`, ...) and text.
    pub status: String,
    pub status_text: String,
    pub customer_id: String,
    pub ecommerce_order: String,
    pub company_id: String,
    pub branch_id: String,
    /// Every other id of the order (Protheus sale and order ids).
    pub ids: Vec<String>,
    pub reservations: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub cancellation: Option<Cancellation>,
    pub parts: Vec<PartView>,
    pub history: Vec<HistoryView>,
    pub invoices: Vec<InvoiceView>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PartView {
    /// ENTREGA, RETIRA_POSTERIOR, RETIRA.
    pub delivery: String,
    pub status: String,
    pub status_text: String,
    pub since: String,
    pub protheus_order_ids: Vec<String>,
    pub protheus_order_numbers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    pub at: String,
    pub delivery: Option<String>,
    pub status: Option<String>,
    /// The text as reported.
    pub text: String,
    pub previous_status: Option<String>,
    /// APPLIED, REPEATED, LATE, REFUSED, OUT_OF_FLOW, NOTE.
    pub effect: String,
    pub note: String,
    pub source_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InvoiceView {
    pub delivery: String,
    pub number: String,
    pub series: String,
    pub internal_id: String,
    pub status_text: String,
    pub access_key: String,
    pub issue_date: String,
    pub value: f64,
    pub protheus_order_id: String,
}

fn opt(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The order `id` names, or `None` when no order has that id.
pub async fn find(store: &OrderStore, id: &str) -> Result<Option<OrderView>, StoreError> {
    let id = id.trim();
    let Some(order_id) = store.resolve(id).await? else {
        return Ok(None);
    };
    let Some(rows) = store.rows(&order_id).await? else {
        return Ok(None);
    };
    let ids = store.aliases_of(&order_id).await?;
    let o = rows.order;
    let status = status_of(&o.status, &o.status_text);
    Ok(Some(OrderView {
        found_by: (id != order_id).then(|| id.to_owned()),
        order_id,
        status: status
            .as_ref()
            .map(|s| s.code())
            .unwrap_or_default()
            .to_owned(),
        status_text: o.status_text,
        customer_id: o.customer_id,
        ecommerce_order: o.ecommerce_order,
        company_id: o.company_id,
        branch_id: o.branch_id,
        ids,
        reservations: list(&o.reservations),
        cancellation: cancellation_of(&o.cancellation),
        parts: rows
            .parts
            .into_iter()
            .map(|p| PartView {
                delivery: p.flow,
                status: p.status,
                status_text: p.status_text,
                since: rfc3339(p.since),
                protheus_order_ids: list(&p.order_ids),
                protheus_order_numbers: list(&p.order_numbers),
            })
            .collect(),
        history: rows
            .history
            .into_iter()
            .map(|h| HistoryView {
                at: rfc3339(h.at_ms),
                delivery: opt(h.flow),
                status: opt(h.status),
                text: h.text,
                previous_status: opt(h.previous),
                effect: effect_of(&h.effect).code().to_owned(),
                note: h.note,
                source_uuid: h.source_uuid,
            })
            .collect(),
        invoices: rows
            .invoices
            .into_iter()
            .map(|i| InvoiceView {
                delivery: i.flow,
                number: i.number,
                series: i.series,
                internal_id: i.internal_id,
                status_text: i.status_text,
                access_key: i.access_key,
                issue_date: i.issue_date,
                value: i.value,
                protheus_order_id: i.order_ref,
            })
            .collect(),
        updated_at: rfc3339(o.updated_at),
    }))
}

impl std::fmt::Display for OrderView {
    /// The text `eaibus order show` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Order {}: {}", self.order_id, self.status_text)?;
        if !self.ids.is_empty() {
            writeln!(f, "  ids: {}", self.ids.join(", "))?;
        }
        if !self.customer_id.is_empty() {
            writeln!(f, "  customer: {}", self.customer_id)?;
        }
        for part in &self.parts {
            writeln!(
                f,
                "  {}: {} since {}{}",
                part.delivery,
                part.status_text,
                part.since,
                if part.protheus_order_ids.is_empty() {
                    String::new()
                } else {
                    format!(" (order {})", part.protheus_order_ids.join(", "))
                }
            )?;
        }
        if let Some(c) = &self.cancellation {
            writeln!(f, "  cancellation: {c:?}")?;
        }
        writeln!(f, "  history:")?;
        for h in &self.history {
            writeln!(
                f,
                "    {}  {:<16} {:<24} {:<11} {}",
                h.at,
                h.delivery.as_deref().unwrap_or("-"),
                h.text,
                h.effect,
                h.note
            )?;
        }
        if !self.invoices.is_empty() {
            writeln!(f, "  invoices:")?;
            for i in &self.invoices {
                writeln!(
                    f,
                    "    {}/{} {} key {}",
                    i.number, i.series, i.status_text, i.access_key
                )?;
            }
        }
        Ok(())
    }
}
