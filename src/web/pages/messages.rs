//! The message list (filters, pagination, newest first, bulk reprocess) and the per-message
//! actions posted from it and from the detail page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{page, render};
use crate::monitor::Situation;
use crate::web::caller::Caller;
use crate::web::i18n::Lang;
use crate::web::listing::{self, ListQuery, RowPage};
use crate::web::{Role, Shared, actions};

pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Response {
    let result = async {
        caller.require(Role::Viewer)?;
        let filter = query.to_filter()?;
        let rows = listing::list(&state, &filter, caller.lang).await?;
        let content = html! {
            (filters(&caller, &query))
            (table(&caller, &rows, &query))
        };
        Ok(page(&caller, caller.lang.t("messages"), content))
    }
    .await;
    render(&caller, result)
}

fn filters(caller: &Caller, q: &ListQuery) -> Markup {
    let lang = caller.lang;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let chosen = q.situation.as_deref().and_then(listing::parse_situation);
    let resolved = q.resolved.as_deref();
    html! {
        form.filters #filters method="get" action="/" {
            label { (lang.t("situation")) " "
                select #situation name="situation" {
                    option value="" { (lang.t("all")) }
                    @for s in Situation::ALL {
                        option value=(s.code()) selected[chosen == Some(s)] { (lang.situation(s)) }
                    }
                }
            }
            label { (lang.t("transaction")) " " input #transaction type="text" name="transaction" maxlength="200" value=(value(&q.transaction)); }
            label { (lang.t("route")) " " input #route type="text" name="route" maxlength="200" value=(value(&q.route)); }
            label { (lang.t("from")) " " input #from type="date" name="from" value=(value(&q.from)); }
            label { (lang.t("to")) " " input #to type="date" name="to" value=(value(&q.to)); }
            label { (lang.t("resolved_filter")) " "
                select #resolved name="resolved" {
                    option value="" { (lang.t("all")) }
                    option value="1" selected[resolved == Some("1")] { (lang.t("yes")) }
                    option value="0" selected[resolved == Some("0")] { (lang.t("no")) }
                }
            }
            br;
            label { (lang.t("search")) " " textarea #q name="q" rows="1" cols="60" maxlength="8000" { (value(&q.q)) } }
            button #apply type="submit" { (lang.t("filter")) }
        }
    }
}

/// The query string of the list with another page number.
fn page_link(q: &ListQuery, page: u32) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("situation", &q.situation),
        ("transaction", &q.transaction),
        ("route", &q.route),
        ("from", &q.from),
        ("to", &q.to),
        ("q", &q.q),
        ("resolved", &q.resolved),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", encode(v)));
        }
    }
    if let Some(size) = q.page_size {
        parts.push(format!("page_size={size}"));
    }
    parts.push(format!("page={page}"));
    format!("/?{}", parts.join("&"))
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn table(caller: &Caller, rows: &RowPage, q: &ListQuery) -> Markup {
    let lang = caller.lang;
    let operator = caller.role() >= Some(Role::Operator);
    let csrf = caller.session_csrf.clone().unwrap_or_default();
    let pages = ((rows.total.max(0) as u64).div_ceil(u64::from(rows.page_size.max(1)))).max(1);
    html! {
        form #bulk method="post" action="/messages/reprocess"
            onsubmit="return confirm(this.dataset.confirm)" data-confirm=(lang.t("confirm_reprocess")) {
            input type="hidden" name="csrf" value=(csrf);
        }
        table #messages {
            thead { tr {
                @if operator { th {} }
                th { (lang.t("identifier")) } th { (lang.t("integration")) } th { (lang.t("situation")) }
                th { (lang.t("component")) } th { (lang.t("received_at")) } th { (lang.t("actions")) }
            } }
            tbody {
                @if rows.messages.is_empty() { tr { td colspan="7" { (lang.t("none")) } } }
                @for m in &rows.messages {
                    tr.message data-uuid=(m.uuid) {
                        @if operator { td { @if m.reprocessable {
                            input type="checkbox" form="bulk" name="uuid" value=(m.uuid);
                        } } }
                        td { a href={ "/messages/" (encode(&m.uuid)) } title=(m.uuid) { code { (m.short_uuid) } }
                            @if let Some(key) = &m.business_key { br; small { (key) } } }
                        td { (m.integration) }
                        td { span class={ "situation s" (m.situation) } title=(m.last_error.clone().unwrap_or_default()) { (m.situation_label) }
                            @if m.repeated_failures > 0 { " " small title=(lang.t("repeated_failures")) { "×" (m.repeated_failures) } }
                            @if let Some(by) = &m.resolved_by {
                                br; small.resolved title=(m.resolution_note.clone().unwrap_or_default()) {
                                    (lang.t("resolved")) " · " (by) " · " (m.resolved_at_local.clone().unwrap_or_default())
                                }
                            } }
                        td { (m.stage_label) }
                        td { (m.received_at_local) }
                        td { (actions_cell(caller, lang, &m.uuid, m.reprocessable, operator, m.resolved_by.is_none())) }
                    }
                }
            }
        }
        p {
            (lang.t("total")) ": " span #total { (rows.total) } " · " (lang.t("page")) " " (rows.page) " " (lang.t("of")) " " (pages) " "
            @if rows.page > 1 { a #prev href=(page_link(q, rows.page - 1)) { (lang.t("previous")) } " " }
            @if u64::from(rows.page) < pages { a #next href=(page_link(q, rows.page + 1)) { (lang.t("next")) } }
        }
        @if operator { button #reprocess-selected type="submit" form="bulk" { (lang.t("reprocess_selected")) } }
    }
}

pub fn actions_cell(
    caller: &Caller,
    lang: Lang,
    uuid: &str,
    reprocessable: bool,
    operator: bool,
    resolvable: bool,
) -> Markup {
    let csrf = caller.session_csrf.clone().unwrap_or_default();
    let base = format!("/messages/{}", encode(uuid));
    html! {
        a.view href=(base) { (lang.t("view")) } " · "
        a.export href={ (base) "/payload" } { (lang.t("export")) }
        @if operator {
            @if reprocessable {
                " · "
                form.inline.reprocess method="post" action={ (base) "/reprocess" }
                    onsubmit="return confirm(this.dataset.confirm)" data-confirm=(lang.t("confirm_one")) {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (lang.t("reprocess")) }
                }
            }
            @if resolvable {
                " · "
                form.inline.resolve method="post" action={ (base) "/resolve" }
                    onsubmit="return confirm(this.dataset.confirm)" data-confirm=(lang.t("confirm_resolve")) {
                    input type="hidden" name="csrf" value=(csrf);
                    input.note type="text" name="note" maxlength="1000" placeholder=(lang.t("note_optional"));
                    button type="submit" { (lang.t("resolve")) }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn back_to(uuid: &str) -> Response {
    Redirect::to(&format!("/messages/{}", encode(uuid))).into_response()
}

pub async fn reprocess_one(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    Form(input): Form<CsrfForm>,
) -> Response {
    let result = async {
        let user = caller.require_form(Role::Operator, &input.csrf)?;
        actions::reprocess(&state, user, &uuid).await?;
        Ok(back_to(&uuid))
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, serde::Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn resolve_one(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    Form(input): Form<ResolveForm>,
) -> Response {
    let result = async {
        let user = caller.require_form(Role::Operator, &input.csrf)?;
        actions::resolve(&state, user, &uuid, input.note.as_deref()).await?;
        Ok(back_to(&uuid))
    }
    .await;
    render(&caller, result)
}

/// Bulk reprocess: `csrf` and any number of `uuid` fields.
pub async fn reprocess_bulk(
    State(state): State<Shared>,
    caller: Caller,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let csrf = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let user = caller.require_form(Role::Operator, csrf)?;
        let uuids: Vec<String> = fields
            .iter()
            .filter(|(k, _)| k == "uuid")
            .map(|(_, v)| v.clone())
            .collect();
        let outcomes = actions::reprocess_many(&state, user, &uuids).await?;
        let lang = caller.lang;
        let content = html! {
            table #outcomes {
                thead { tr { th { (lang.t("identifier")) } th { (lang.t("route")) } th { (lang.t("error")) } } }
                tbody { @for o in &outcomes { tr {
                    td { a href={ "/messages/" (encode(&o.uuid)) } { (o.uuid) } }
                    td { (o.routes.join(", ")) }
                    td { (o.error.clone().unwrap_or_default()) }
                } } }
            }
            p { a href="/" { (lang.t("messages")) } " · " a href="/sync-logs?kind=reprocess" { (lang.t("sync_logs")) } }
        };
        Ok(page(&caller, lang.t("reprocess_selected"), content))
    }
    .await;
    render(&caller, result)
}
