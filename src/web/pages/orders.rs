//! The orders page ("Pedidos"): find an order by any of its ids — the OMNI order id, a Protheus
//! order id or the Protheus sale id — and see its status per flow, its history and invoices,
//! from the order read model (`order::query`). Everyone signed in reads it.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{page, render};
use crate::order::aggregate::Cancellation;
use crate::order::query::{self, OrderView};
use crate::web::caller::Caller;
use crate::web::i18n::Lang;
use crate::web::listing::MAX_FILTER_LEN;
use crate::web::{Role, Shared, WebError, WebState};

#[derive(Debug, Default, Deserialize)]
pub struct OrderSearch {
    /// Any id of the order.
    pub id: Option<String>,
    pub lang: Option<String>,
}

/// Checks an order id: 1 to 200 characters, no control characters.
pub fn check_id(id: &str) -> Result<&str, WebError> {
    let id = id.trim();
    if id.is_empty() || id.len() > MAX_FILTER_LEN {
        return Err(WebError::BadRequest(format!(
            "an order id has 1 to {MAX_FILTER_LEN} characters"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(WebError::BadRequest(
            "an order id may not hold control characters".into(),
        ));
    }
    Ok(id)
}

/// The order `id` names, if any.
pub async fn find(state: &WebState, id: &str) -> Result<Option<OrderView>, WebError> {
    let id = check_id(id)?;
    query::find(state.orders().await?, id)
        .await
        .map_err(|e| WebError::Unavailable(e.to_string()))
}

fn cancellation_text(c: &Cancellation) -> String {
    match c {
        Cancellation::Requested { cancellation_id } => format!("requested ({cancellation_id})"),
        Cancellation::Confirmed {
            cancellation_id,
            protheus_id,
        } => format!("confirmed ({cancellation_id}, Protheus {protheus_id})"),
        Cancellation::Refused {
            cancellation_id,
            reason,
        } => format!("refused ({cancellation_id}): {reason}"),
    }
}

fn order_markup(o: &OrderView, lang: Lang) -> Markup {
    html! {
        table #order {
            tr { th { (lang.t("order")) } td #order-id { code { (o.order_id) } } }
            tr { th { (lang.t("status")) } td #order-status { (o.status_text) " " small { "(" (o.status) ")" } } }
            tr { th { (lang.t("customer")) } td { (o.customer_id) } }
            tr { th { (lang.t("ecommerce_order")) } td { (o.ecommerce_order) } }
            tr { th { (lang.t("company_branch")) } td { (o.company_id) " / " (o.branch_id) } }
            tr { th { (lang.t("other_ids")) } td #order-ids { (o.ids.join(", ")) } }
            tr { th { (lang.t("reservations")) } td { (o.reservations.join(", ")) } }
            @if let Some(c) = &o.cancellation {
                tr { th { (lang.t("cancellation")) } td { (cancellation_text(c)) } }
            }
            tr { th { (lang.t("updated_at")) } td { (o.updated_at) } }
        }
        h2 { (lang.t("flows")) }
        table #order-flows {
            thead { tr { th { (lang.t("flow")) } th { (lang.t("status")) } th { (lang.t("since")) } th { (lang.t("protheus_orders")) } } }
            tbody {
                @if o.parts.is_empty() { tr { td colspan="4" { (lang.t("none")) } } }
                @for p in &o.parts { tr.flow {
                    td { (p.delivery) } td { (p.status_text) " " small { "(" (p.status) ")" } } td { (p.since) }
                    td { (p.protheus_order_ids.join(", ")) @if !p.protheus_order_numbers.is_empty() { br; small { (p.protheus_order_numbers.join(", ")) } } }
                } }
            }
        }
        h2 { (lang.t("history")) }
        table #order-history {
            thead { tr { th { (lang.t("when")) } th { (lang.t("flow")) } th { (lang.t("status")) } th { (lang.t("previous_status")) }
                th { (lang.t("effect")) } th { (lang.t("note")) } th { (lang.t("source")) } } }
            tbody {
                @if o.history.is_empty() { tr { td colspan="7" { (lang.t("none")) } } }
                @for h in &o.history { tr {
                    td { (h.at) } td { (h.delivery.clone().unwrap_or_default()) } td { (h.text) }
                    td { (h.previous_status.clone().unwrap_or_default()) } td { (h.effect) } td { (h.note) }
                    td { @if !h.source_uuid.is_empty() { a href={ "/messages/" (super::messages::encode(&h.source_uuid)) } { code { (h.source_uuid.chars().take(8).collect::<String>()) } } } }
                } }
            }
        }
        h2 { (lang.t("invoices")) }
        table #order-invoices {
            thead { tr { th { (lang.t("flow")) } th { (lang.t("number")) } th { (lang.t("series")) } th { (lang.t("status")) }
                th { (lang.t("access_key")) } th { (lang.t("issue_date")) } th { (lang.t("value")) } th { (lang.t("protheus_orders")) } } }
            tbody {
                @if o.invoices.is_empty() { tr { td colspan="8" { (lang.t("none")) } } }
                @for i in &o.invoices { tr.invoice {
                    td { (i.delivery) } td { (i.number) } td { (i.series) } td { (i.status_text) }
                    td { code { (i.access_key) } } td { (i.issue_date) } td { (format!("{:.2}", i.value)) } td { (i.protheus_order_id) }
                } }
            }
        }
    }
}

pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<OrderSearch>,
) -> Response {
    let result = async {
        caller.require(Role::Viewer)?;
        let lang = caller.lang;
        if q.lang.as_deref().is_some_and(|l| l.len() > 20) {
            return Err(WebError::BadRequest("lang is pt or en".into()));
        }
        let wanted = q.id.as_deref().map(str::trim).filter(|id| !id.is_empty());
        let found = match wanted {
            Some(id) => Some(find(&state, id).await?),
            None => None,
        };
        let content = html! {
            form.filters #order-search method="get" action="/orders" {
                label { (lang.t("order_search")) " "
                    input #order-id-input type="text" name="id" maxlength="200" size="40" value=(wanted.unwrap_or("")) required;
                }
                button #search type="submit" { (lang.t("search_button")) }
            }
            @match &found {
                Some(Some(order)) => { (order_markup(order, lang)) }
                Some(None) => { p.error #order-not-found { (lang.t("order_not_found")) } }
                None => {}
            }
        };
        let mut response = page(&caller, lang.t("orders"), content);
        if matches!(found, Some(None)) {
            *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
        }
        Ok(response)
    }
    .await;
    render(&caller, result)
}
