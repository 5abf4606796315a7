//! The De/Para page: list and search for everyone signed in; add, edit and delete for admins;
//! the latest changes (who changed what) below.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{page, render};
use super::messages::encode;
use crate::adapter::{DeParaPair, DeParaQuery, DeParaStore, PageRequest};
use crate::monitor::time::format_brasilia;
use crate::web::actions::{self, DeParaInput};
use crate::web::caller::Caller;
use crate::web::listing::MAX_FILTER_LEN;
use crate::web::{Role, Shared, WebError, WebState};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeParaSearch {
    pub reference: Option<String>,
    pub alias: Option<String>,
    pub field: Option<String>,
    /// Part of either value, any case.
    pub text: Option<String>,
    pub offset: Option<u64>,
    pub limit: Option<u64>,
    pub lang: Option<String>,
}

/// A pair as the page and the API show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeParaRow {
    pub reference: String,
    pub alias: String,
    pub field: String,
    pub external: String,
    pub internal: String,
}

impl From<DeParaPair> for DeParaRow {
    fn from(p: DeParaPair) -> Self {
        DeParaRow {
            reference: p.reference,
            alias: p.alias,
            field: p.field,
            external: p.external,
            internal: p.internal,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeParaList {
    pub items: Vec<DeParaRow>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

fn bounded(name: &str, v: &Option<String>) -> Result<Option<String>, WebError> {
    match v.as_deref().map(str::trim) {
        Some(x) if x.len() > MAX_FILTER_LEN => Err(WebError::BadRequest(format!(
            "{name} is longer than {MAX_FILTER_LEN} characters"
        ))),
        Some("") | None => Ok(None),
        Some(x) => Ok(Some(x.to_owned())),
    }
}

pub async fn search(state: &WebState, q: &DeParaSearch) -> Result<DeParaList, WebError> {
    let query = DeParaQuery {
        reference: bounded("reference", &q.reference)?,
        alias: bounded("alias", &q.alias)?,
        field: bounded("field", &q.field)?,
        text: bounded("text", &q.text)?,
    };
    bounded("lang", &q.lang)?;
    let page = state
        .bus
        .depara
        .search(
            &query,
            PageRequest::new(q.offset.unwrap_or(0), q.limit.unwrap_or(100)),
        )
        .await?;
    Ok(DeParaList {
        items: page.items.into_iter().map(DeParaRow::from).collect(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    })
}

pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<DeParaSearch>,
) -> Response {
    let result = async {
        caller.require(Role::Viewer)?;
        let list = search(&state, &q).await?;
        let changes = state.db().await?.audit_entries(Some("depara."), 20, 0).await?;
        let lang = caller.lang;
        let admin = caller.role() == Some(Role::Admin);
        let csrf = caller.session_csrf.clone().unwrap_or_default();
        let v = |x: &Option<String>| x.clone().unwrap_or_default();
        let content = html! {
            form #depara-search method="get" action="/depara" {
                input name="reference" placeholder=(lang.t("reference")) maxlength="200" value=(v(&q.reference));
                input name="alias" placeholder=(lang.t("alias")) maxlength="200" value=(v(&q.alias));
                input name="field" placeholder=(lang.t("field")) maxlength="200" value=(v(&q.field));
                input name="text" placeholder="…" maxlength="200" value=(v(&q.text));
                button type="submit" { (lang.t("filter")) }
            }
            table #depara {
                thead { tr { th { (lang.t("reference")) } th { (lang.t("alias")) } th { (lang.t("field")) }
                    th { (lang.t("external")) } th { (lang.t("internal")) } @if admin { th { (lang.t("actions")) } } } }
                tbody { @for p in &list.items { tr {
                    td { (p.reference) } td { (p.alias) } td { (p.field) } td { (p.external) }
                    @if admin {
                        td { form.inline method="post" action="/depara" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="reference" value=(p.reference);
                            input type="hidden" name="alias" value=(p.alias);
                            input type="hidden" name="field" value=(p.field);
                            input type="hidden" name="external" value=(p.external);
                            input name="internal" maxlength="200" value=(p.internal);
                            button type="submit" { (lang.t("edit")) }
                        } }
                        td { form.inline method="post" action="/depara/delete"
                            onsubmit="return confirm(this.dataset.confirm)" data-confirm=(lang.t("confirm_delete")) {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="reference" value=(p.reference);
                            input type="hidden" name="alias" value=(p.alias);
                            input type="hidden" name="field" value=(p.field);
                            input type="hidden" name="external" value=(p.external);
                            button type="submit" { (lang.t("delete")) }
                        } }
                    } @else { td { (p.internal) } }
                } } }
            }
            p { (lang.t("total")) ": " (list.total) }
            @if admin {
                h2 { "+" }
                form #depara-add method="post" action="/depara" {
                    input type="hidden" name="csrf" value=(csrf);
                    input name="reference" placeholder=(lang.t("reference")) maxlength="200" required;
                    input name="alias" placeholder=(lang.t("alias")) maxlength="200" required;
                    input name="field" placeholder=(lang.t("field")) maxlength="200" required;
                    input name="external" placeholder=(lang.t("external")) maxlength="200" required;
                    input name="internal" placeholder=(lang.t("internal")) maxlength="200" required;
                    button type="submit" { (lang.t("save")) }
                }
            }
            h2 { (lang.t("changes")) }
            table #depara-changes {
                thead { tr { th { (lang.t("when")) } th { (lang.t("who")) } th { (lang.t("what")) } th { (lang.t("target")) } th { (lang.t("detail")) } } }
                tbody { @for c in &changes { tr {
                    td { (format_brasilia(c.at)) } td { (c.actor) } td { (c.action) } td { (c.target) } td { (c.detail) }
                } } }
            }
        };
        Ok(page(&caller, lang.t("depara"), content))
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, Deserialize)]
pub struct DeParaForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    pair: DeParaInput,
}

fn back(pair: &DeParaInput) -> Response {
    Redirect::to(&format!(
        "/depara?reference={}&alias={}",
        encode(&pair.reference),
        encode(&pair.alias)
    ))
    .into_response()
}

pub async fn upsert(
    State(state): State<Shared>,
    caller: Caller,
    Form(input): Form<DeParaForm>,
) -> Response {
    let result = async {
        let user = caller.require_form(Role::Admin, &input.csrf)?;
        actions::depara_upsert(&state, user, &input.pair).await?;
        Ok(back(&input.pair))
    }
    .await;
    render(&caller, result)
}

pub async fn delete(
    State(state): State<Shared>,
    caller: Caller,
    Form(input): Form<DeParaForm>,
) -> Response {
    let result = async {
        let user = caller.require_form(Role::Admin, &input.csrf)?;
        actions::depara_delete(&state, user, &input.pair).await?;
        Ok(back(&input.pair))
    }
    .await;
    render(&caller, result)
}
