//! The dashboard: headline KPIs and, per transaction and route, received / delivered / failed /
//! parked counts; admins can reload the adapter table from here.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use serde::Serialize;

use super::layout::{page, render};
use crate::monitor::TransactionRouteCounts;
use crate::monitor::time::{BRASILIA_OFFSET_MINUTES, format_brasilia, now_millis};
use crate::web::caller::Caller;
use crate::web::queries::Kpis;
use crate::web::{Role, Shared, WebError, WebState, actions};

/// One dashboard line.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteLine {
    pub transaction: String,
    pub route: Option<String>,
    pub received: i64,
    pub waiting: i64,
    pub delivered: i64,
    pub failed: i64,
    pub parked: i64,
    pub refused: i64,
}

impl From<TransactionRouteCounts> for RouteLine {
    fn from(c: TransactionRouteCounts) -> Self {
        RouteLine {
            transaction: c.transaction,
            route: c.route,
            received: c.received,
            waiting: c.waiting,
            delivered: c.delivered,
            failed: c.failed,
            parked: c.parked,
            refused: c.refused,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    pub kpis: Kpis,
    pub routes: Vec<RouteLine>,
}

/// The first of this month, 00:00 Brasília time, in ms.
fn month_start(now: i64) -> i64 {
    use chrono::{Datelike, TimeZone};
    let offset = chrono::FixedOffset::east_opt(BRASILIA_OFFSET_MINUTES * 60);
    let (Some(offset), Some(t)) = (offset, chrono::DateTime::from_timestamp_millis(now)) else {
        return 0;
    };
    let local = t.with_timezone(&offset);
    offset
        .with_ymd_and_hms(local.year(), local.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |t| t.timestamp_millis())
}

pub async fn dashboard(state: &WebState) -> Result<Dashboard, WebError> {
    let now = now_millis();
    let mut kpis = state.db().await?.kpis(now, month_start(now)).await?;
    kpis.active_integrations = state
        .bus
        .adapter_table()
        .adapters()
        .iter()
        .filter(|a| a.send || a.receive)
        .count() as i64;
    let routes = state
        .bus
        .monitor
        .counts_by_transaction_and_route()
        .await?
        .into_iter()
        .map(RouteLine::from)
        .collect();
    Ok(Dashboard { kpis, routes })
}

pub async fn show(State(state): State<Shared>, caller: Caller) -> Response {
    let result = async {
        caller.require(Role::Viewer)?;
        let d = dashboard(&state).await?;
        let lang = caller.lang;
        let csrf = caller.session_csrf.clone().unwrap_or_default();
        let content = html! {
            div.kpis {
                div.kpi #kpi-active { (lang.t("active_integrations")) b { (d.kpis.active_integrations) } }
                div.kpi #kpi-last { (lang.t("last_sync")) b { (d.kpis.last_successful_sync.map(format_brasilia).unwrap_or_else(|| "—".into())) } }
                div.kpi #kpi-errors { (lang.t("errors_24h")) b { (d.kpis.errors_last_24h) } }
                div.kpi #kpi-month { (lang.t("synced_month")) b { (d.kpis.synced_this_month) } }
            }
            h2 { (lang.t("integration")) }
            table #routes {
                thead { tr { th { (lang.t("transaction")) } th { (lang.t("route")) } th { (lang.t("received")) }
                    th { (lang.t("waiting")) } th { (lang.t("delivered")) } th { (lang.t("failed")) }
                    th { (lang.t("parked")) } th { (lang.t("refused")) } } }
                tbody { @for r in &d.routes { tr {
                    td { (r.transaction) } td { (r.route.clone().unwrap_or_else(|| "—".into())) }
                    td { (r.received) } td { (r.waiting) } td { (r.delivered) } td { (r.failed) }
                    td { (r.parked) } td { (r.refused) }
                } } }
            }
            @if caller.role() == Some(Role::Admin) {
                form #reload method="post" action="/admin/reload" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (lang.t("reload")) }
                }
            }
        };
        Ok(page(&caller, lang.t("dashboard"), content))
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn reload(
    State(state): State<Shared>,
    caller: Caller,
    Form(input): Form<CsrfForm>,
) -> Response {
    let result = async {
        let user = caller.require_form(Role::Admin, &input.csrf)?;
        let count = actions::reload(&state, user).await?;
        let lang = caller.lang;
        let content = html! {
            p.flash { (lang.t("done")) ": " (count) " adapters" }
            p { a href="/dashboard" { (lang.t("dashboard")) } }
        };
        Ok(page(&caller, lang.t("reload"), content))
    }
    .await;
    render(&caller, result)
}
