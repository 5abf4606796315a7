//! One message: summary, actions, timeline, deliveries (with responses), payloads (as received
//! and canonical, pretty-printed, masked unless an admin reveals them) and the De/Para pairs it
//! created. Also the payload export.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{page, render};
use super::messages::{actions_cell, encode};
use crate::web::caller::Caller;
use crate::web::listing;
use crate::web::{Role, Shared, WebError, actions};

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// `1` (admins only): show personal data; audited.
    pub reveal: Option<String>,
    /// Export: `raw` (default) or `canonical`.
    pub form: Option<String>,
    pub lang: Option<String>,
}

/// Whether the caller asked to reveal, refusing non-admins, and auditing admins.
pub async fn wants_reveal(
    state: &Shared,
    caller: &Caller,
    uuid: &str,
    reveal: Option<&str>,
    how: &str,
) -> Result<bool, WebError> {
    match reveal {
        Some("1") | Some("true") => {
            let user = caller.require(Role::Admin)?;
            actions::reveal(state, user, uuid, how).await?;
            Ok(true)
        }
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some(_) => Err(WebError::BadRequest("reveal is 1 or 0".into())),
    }
}

pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let result = async {
        caller.require(Role::Viewer)?;
        let reveal = wants_reveal(&state, &caller, &uuid, q.reveal.as_deref(), "page").await?;
        let d = listing::detail(&state, &uuid, caller.lang, reveal).await?;
        let lang = caller.lang;
        let operator = caller.role() >= Some(Role::Operator);
        let base = format!("/messages/{}", encode(&uuid));
        let m = &d.summary;
        let content = html! {
            table #summary {
                tr { th { (lang.t("identifier")) } td #uuid { code { (m.uuid) } } }
                tr { th { (lang.t("integration")) } td { (m.integration) } }
                tr { th { "InternalId" } td { (m.business_key.clone().unwrap_or_default()) } }
                tr { th { (lang.t("situation")) } td { span #situation class={ "s" (m.situation) } { (m.situation_label) }
                    @if m.resolved_by.is_some() { " · " span #resolution { (lang.t("resolved")) } } } }
                @if let Some(by) = &m.resolved_by {
                    tr { th { (lang.t("resolved_by")) } td #resolved-by { (by) " · " (m.resolved_at_local.clone().unwrap_or_default()) } }
                    tr { th { (lang.t("note")) } td #resolution-note { (m.resolution_note.clone().unwrap_or_default()) } }
                }
                tr { th { (lang.t("component")) } td { (m.stage_label) } }
                tr { th { (lang.t("received_at")) } td { (m.received_at_local) } }
                tr { th { (lang.t("attempt")) } td { (m.attempts) } }
                tr { th { (lang.t("repeated_failures")) } td #repeated { (m.repeated_failures) } }
                tr { th { (lang.t("error")) } td { (m.last_error.clone().unwrap_or_default()) } }
                tr { th { (lang.t("actions")) } td { (actions_cell(&caller, lang, &m.uuid, m.reprocessable, operator, m.resolved_by.is_none())) } }
            }
            h2 { (lang.t("timeline")) }
            table #timeline {
                thead { tr { th { (lang.t("when")) } th { (lang.t("route")) } th { (lang.t("component")) }
                    th { (lang.t("situation")) } th { (lang.t("attempt")) } th { (lang.t("detail")) } } }
                tbody { @for t in &d.timeline { tr {
                    td { (t.at_local) } td { (t.route.clone().unwrap_or_default()) } td { (t.stage_label) }
                    td { (t.situation_label) } td { (t.attempt.map(|a| a.to_string()).unwrap_or_default()) }
                    td { (t.detail.clone().unwrap_or_default()) }
                } } }
            }
            h2 { (lang.t("deliveries")) }
            table #deliveries {
                thead { tr { th { (lang.t("route")) } th { (lang.t("situation")) } th { (lang.t("attempt")) }
                    th { (lang.t("error")) } th { (lang.t("response")) } } }
                tbody { @for x in &d.deliveries { tr {
                    td { (x.route) } td { (x.situation_label) } td { (x.attempts) }
                    td { (x.last_error.clone().unwrap_or_default()) }
                    td { @if let Some(r) = &x.response { pre { (r) } } }
                } } }
            }
            @if d.masked {
                p.note { (lang.t("masked_note")) " "
                    @if caller.role() == Some(Role::Admin) { a #reveal href={ (base) "?reveal=1" } { (lang.t("reveal")) } } }
            }
            h2 { (lang.t("payload_received")) " (" (d.format) ")" }
            pre #payload { (d.payload) }
            h2 { (lang.t("payload_canonical")) }
            pre #canonical { (d.canonical_json.clone().unwrap_or_default()) }
            @if let Some(answer) = &d.answer { h2 { (lang.t("answer")) } pre { (answer) } }
            h2 { (lang.t("learned")) }
            table #learned {
                thead { tr { th { (lang.t("alias")) } th { (lang.t("field")) } th { (lang.t("external")) } th { (lang.t("internal")) } } }
                tbody { @for l in &d.learned_depara { tr { td { (l.alias) } td { (l.field) } td { (l.external) } td { (l.internal) } } } }
            }
        };
        Ok(page(&caller, &format!("{} {}", lang.t("identifier"), m.short_uuid), content))
    }
    .await;
    render(&caller, result)
}

/// The payload as a download: as received (`form=raw`) or canonical JSON; masked unless an
/// admin reveals it.
pub async fn export(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let result = export_payload(&state, &caller, &uuid, &q).await;
    render(&caller, result)
}

pub async fn export_payload(
    state: &Shared,
    caller: &Caller,
    uuid: &str,
    q: &DetailQuery,
) -> Result<Response, WebError> {
    caller.require(Role::Viewer)?;
    let canonical = match q.form.as_deref() {
        None | Some("") | Some("raw") => false,
        Some("canonical") => true,
        Some(_) => return Err(WebError::BadRequest("form is raw or canonical".into())),
    };
    let reveal = wants_reveal(state, caller, uuid, q.reveal.as_deref(), "export").await?;
    let d = listing::detail(state, uuid, caller.lang, reveal).await?;
    let (body, extension, mime) = if canonical {
        (
            d.canonical_json.unwrap_or_default(),
            "json",
            "application/json",
        )
    } else if d.format == "xml" {
        (d.payload, "xml", "application/xml")
    } else {
        (d.payload, "json", "application/json")
    };
    let safe: String = uuid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"eaibus-{safe}.{extension}\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
