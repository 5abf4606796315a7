//! The message list and detail as the pages and the API show them: filters read from the query
//! string (checked: bounded lengths, known situations, real dates), rows with the integration
//! ("RetailSales – OMNI > PROTHEUS"), times in Brasília, payloads masked unless revealed.

use chrono::{NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};

use super::i18n::Lang;
use super::mask;
use super::{WebError, WebState};
use crate::monitor::time::{BRASILIA_OFFSET_MINUTES, format_brasilia};
use crate::monitor::{MAX_PAGE_SIZE, MessageFilter, MessageSummary, Situation};

/// Longest accepted filter value, and longest search box.
pub const MAX_FILTER_LEN: usize = 200;
pub const MAX_SEARCH_LEN: usize = 8000;
pub const MAX_SEARCH_TERMS: usize = 200;

/// The list's query string (pages and API alike).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A situation code ("0"–"6") or name (`falhou`, `bloqueado`…).
    pub situation: Option<String>,
    pub transaction: Option<String>,
    pub route: Option<String>,
    /// First day, `YYYY-MM-DD`, Brasília time.
    pub from: Option<String>,
    /// Last day (inclusive), `YYYY-MM-DD`, Brasília time.
    pub to: Option<String>,
    /// One or several UUIDs or InternalIds (business keys), separated by spaces, commas or lines.
    pub q: Option<String>,
    /// `1`: only messages resolved by hand; `0`: only those not resolved.
    pub resolved: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    /// `pt` (default) or `en`.
    pub lang: Option<String>,
}

fn bounded<'a>(name: &str, value: &'a Option<String>) -> Result<Option<&'a str>, WebError> {
    match value.as_deref().map(str::trim) {
        Some(v) if v.len() > MAX_FILTER_LEN => Err(WebError::BadRequest(format!(
            "{name} is longer than {MAX_FILTER_LEN} characters"
        ))),
        Some("") | None => Ok(None),
        Some(v) => Ok(Some(v)),
    }
}

pub fn parse_situation(text: &str) -> Option<Situation> {
    Situation::from_code(text).or_else(|| {
        let wanted = text.to_ascii_lowercase();
        Situation::ALL.into_iter().find(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(|n| n == wanted))
                .unwrap_or(false)
        })
    })
}

fn day_start(name: &str, text: &str) -> Result<i64, WebError> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| WebError::BadRequest(format!("{name} is not a date YYYY-MM-DD")))?;
    let offset = chrono::FixedOffset::east_opt(BRASILIA_OFFSET_MINUTES * 60)
        .ok_or_else(|| WebError::BadRequest("bad offset".into()))?;
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .and_then(|t| offset.from_local_datetime(&t).single())
        .ok_or_else(|| WebError::BadRequest(format!("{name} is out of range")))?;
    Ok(midnight.timestamp_millis())
}

/// The search box split into terms.
pub fn search_terms(text: &str) -> Result<Vec<String>, WebError> {
    if text.len() > MAX_SEARCH_LEN {
        return Err(WebError::BadRequest(format!(
            "the search is longer than {MAX_SEARCH_LEN} characters"
        )));
    }
    let terms: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if terms.len() > MAX_SEARCH_TERMS {
        return Err(WebError::BadRequest(format!(
            "search for at most {MAX_SEARCH_TERMS} ids at once"
        )));
    }
    if terms.iter().any(|t| t.len() > MAX_FILTER_LEN) {
        return Err(WebError::BadRequest(format!(
            "a search term is longer than {MAX_FILTER_LEN} characters"
        )));
    }
    Ok(terms)
}

impl ListQuery {
    pub fn to_filter(&self) -> Result<MessageFilter, WebError> {
        let situation = match bounded("situation", &self.situation)? {
            Some(s) => Some(
                parse_situation(s)
                    .ok_or_else(|| WebError::BadRequest(format!("unknown situation {s:?}")))?,
            ),
            None => None,
        };
        let from = bounded("from", &self.from)?
            .map(|d| day_start("from", d))
            .transpose()?;
        let to = bounded("to", &self.to)?
            .map(|d| day_start("to", d).map(|t| t + 24 * 3600 * 1000))
            .transpose()?;
        let page_size = self.page_size.unwrap_or(0);
        if page_size > MAX_PAGE_SIZE {
            return Err(WebError::BadRequest(format!(
                "page_size is at most {MAX_PAGE_SIZE}"
            )));
        }
        bounded("lang", &self.lang)?;
        let resolved = match bounded("resolved", &self.resolved)? {
            None => None,
            Some("1" | "true" | "sim" | "yes") => Some(true),
            Some("0" | "false" | "nao" | "não" | "no") => Some(false),
            Some(_) => return Err(WebError::BadRequest("resolved is 1 or 0".into())),
        };
        Ok(MessageFilter {
            situation,
            transaction: bounded("transaction", &self.transaction)?.map(str::to_owned),
            route: bounded("route", &self.route)?.map(str::to_owned),
            direction: None,
            from,
            to,
            search: search_terms(self.q.as_deref().unwrap_or(""))?,
            resolved,
            page: self.page.unwrap_or(1).min(1_000_000),
            page_size,
        })
    }
}

/// One line of the message list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageRow {
    pub uuid: String,
    /// The first 8 characters of the UUID.
    pub short_uuid: String,
    pub transaction: String,
    pub business_key: Option<String>,
    /// "RetailSales – OMNI > PROTHEUS".
    pub integration: String,
    pub routes: Vec<String>,
    /// The situation code, "0"–"6".
    pub situation: String,
    pub situation_label: String,
    pub stage: String,
    pub stage_label: String,
    /// ms since the Unix epoch.
    pub received_at: i64,
    /// `dd/mm/yyyy hh:mm:ss`, America/Sao_Paulo.
    pub received_at_local: String,
    pub attempts: i64,
    pub repeated_failures: i64,
    pub last_error: Option<String>,
    /// Who marked it resolved, while the mark holds (a reprocess lifts it).
    pub resolved_by: Option<String>,
    /// ms since the Unix epoch.
    pub resolved_at: Option<i64>,
    pub resolved_at_local: Option<String>,
    /// The note left with the resolution (personal-data patterns masked).
    pub resolution_note: Option<String>,
    /// Whether an operator may reprocess it now.
    pub reprocessable: bool,
}

pub fn reprocessable(situation: Situation) -> bool {
    matches!(
        situation,
        Situation::Falhou | Situation::Bloqueado | Situation::NaoEntregue
    )
}

/// The product at the end of each route ("PROTHEUS", "OMNI"), or the route's name.
fn route_product(state: &WebState, route: &str) -> String {
    let table = state.bus.adapter_table();
    table
        .routes()
        .get(route)
        .map(|r| r.product.clone())
        .unwrap_or_else(|| route.to_owned())
}

pub async fn row(state: &WebState, m: &MessageSummary, lang: Lang) -> Result<MessageRow, WebError> {
    let deliveries = state.bus.monitor.deliveries(&m.uuid).await?;
    let routes: Vec<String> = deliveries.iter().map(|d| d.route.clone()).collect();
    let targets: Vec<String> = routes.iter().map(|r| route_product(state, r)).collect();
    let source = if m.source_application.is_empty() {
        "?".to_owned()
    } else {
        m.source_application.clone()
    };
    let integration = if targets.is_empty() {
        format!("{} – {source}", m.transaction)
    } else {
        format!("{} – {source} > {}", m.transaction, targets.join(", "))
    };
    let resolution = state.bus.monitor.resolution(&m.uuid).await?;
    Ok(MessageRow {
        short_uuid: m.uuid.chars().take(8).collect(),
        uuid: m.uuid.clone(),
        transaction: m.transaction.clone(),
        business_key: m.business_key.clone(),
        integration,
        routes,
        situation: m.situation.code().to_owned(),
        situation_label: lang.situation(m.situation).to_owned(),
        stage: m.stage.code().to_owned(),
        stage_label: lang.stage(m.stage).to_owned(),
        received_at: m.received_at,
        received_at_local: format_brasilia(m.received_at),
        attempts: m.attempts,
        repeated_failures: m.repeated_failures,
        last_error: m.last_error.as_deref().map(mask::mask_text),
        resolved_by: resolution.as_ref().map(|r| r.resolved_by.clone()),
        resolved_at: resolution.as_ref().map(|r| r.resolved_at),
        resolved_at_local: resolution.as_ref().map(|r| format_brasilia(r.resolved_at)),
        resolution_note: resolution.and_then(|r| r.note).map(|n| mask::mask_text(&n)),
        reprocessable: reprocessable(m.situation),
    })
}

/// One page of rows, with the total count.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowPage {
    pub messages: Vec<MessageRow>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

pub async fn list(
    state: &WebState,
    filter: &MessageFilter,
    lang: Lang,
) -> Result<RowPage, WebError> {
    let page = state.bus.monitor.list(filter).await?;
    let mut messages = Vec::with_capacity(page.messages.len());
    for m in &page.messages {
        messages.push(row(state, m, lang).await?);
    }
    Ok(RowPage {
        messages,
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineRow {
    pub at: i64,
    pub at_local: String,
    pub route: Option<String>,
    pub stage_label: String,
    pub situation_label: String,
    pub attempt: Option<i64>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub route: String,
    pub situation: String,
    pub situation_label: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub response: Option<String>,
    pub delivered_at_local: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LearnedRow {
    pub alias: String,
    pub field: String,
    pub external: String,
    pub internal: String,
}

/// Everything the detail page shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageDetail {
    pub summary: MessageRow,
    pub version: String,
    pub format: String,
    pub origin: String,
    pub duplicates: i64,
    /// The payload as received, pretty-printed; masked unless revealed.
    pub payload: String,
    pub canonical_json: Option<String>,
    pub answer: Option<String>,
    pub masked: bool,
    pub timeline: Vec<TimelineRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub learned_depara: Vec<LearnedRow>,
}

/// Pretty JSON, or indented XML as received (kept as is), or the text.
pub fn pretty(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_owned()),
        Err(_) => text.to_owned(),
    }
}

fn shown(text: &str, reveal: bool) -> String {
    if reveal {
        pretty(text)
    } else {
        pretty(&mask::mask_payload(text))
    }
}

pub async fn detail(
    state: &WebState,
    uuid: &str,
    lang: Lang,
    reveal: bool,
) -> Result<MessageDetail, WebError> {
    if uuid.len() > MAX_FILTER_LEN {
        return Err(WebError::BadRequest("the UUID is too long".into()));
    }
    let record = state
        .bus
        .monitor
        .get(uuid)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("message {uuid}")))?;
    let summary = MessageSummary {
        id: record.id,
        uuid: record.uuid.clone(),
        transaction: record.transaction.clone(),
        version: record.version.clone(),
        direction: record.direction,
        source_application: record.source_application.clone(),
        format: record.format,
        origin: record.origin.clone(),
        business_key: record.business_key.clone(),
        situation: record.situation,
        stage: record.stage,
        received_at: record.received_at,
        processed_at: record.processed_at,
        attempts: record.attempts,
        last_error: record.last_error.clone(),
        repeated_failures: record.repeated_failures,
        duplicates: record.duplicates,
    };
    let mut summary = row(state, &summary, lang).await?;
    if reveal {
        summary.last_error = record.last_error.clone();
        if let Some(r) = state.bus.monitor.resolution(uuid).await? {
            summary.resolution_note = r.note;
        }
    }
    let timeline = state
        .bus
        .monitor
        .timeline(uuid)
        .await?
        .into_iter()
        .map(|t| TimelineRow {
            at: t.at,
            at_local: format_brasilia(t.at),
            route: t.route,
            stage_label: lang.stage(t.stage).to_owned(),
            situation_label: lang.situation(t.situation).to_owned(),
            attempt: t.attempt,
            detail: t
                .detail
                .map(|d| if reveal { d } else { mask::mask_text(&d) }),
        })
        .collect();
    let deliveries = state
        .bus
        .monitor
        .deliveries(uuid)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            route: d.route,
            situation: d.situation.code().to_owned(),
            situation_label: lang.situation(d.situation).to_owned(),
            attempts: d.attempts,
            last_error: d
                .last_error
                .map(|e| if reveal { e } else { mask::mask_text(&e) }),
            response: d.response.map(|r| shown(&r, reveal)),
            delivered_at_local: d.delivered_at.map(format_brasilia),
        })
        .collect();
    let learned_depara = state
        .bus
        .monitor
        .learned_depara(uuid)
        .await?
        .into_iter()
        .map(|l| LearnedRow {
            alias: l.alias,
            field: l.field,
            external: l.external,
            internal: l.internal,
        })
        .collect();
    let raw = String::from_utf8_lossy(&record.raw_payload).into_owned();
    Ok(MessageDetail {
        summary,
        version: record.version,
        format: record.format.code().to_owned(),
        origin: record.origin,
        duplicates: record.duplicates,
        payload: shown(&raw, reveal),
        canonical_json: record.canonical_json.as_deref().map(|c| shown(c, reveal)),
        answer: record.answer.as_deref().map(|a| shown(a, reveal)),
        masked: !reveal,
        timeline,
        deliveries,
        learned_depara,
    })
}
