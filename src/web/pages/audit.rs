//! The audit page (admins): every action, newest first.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{page, render};
use crate::monitor::time::format_brasilia;
use crate::web::caller::Caller;
use crate::web::{Role, Shared, WebError};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only actions starting with this (`depara.`, `message.`, `login`…).
    pub action: Option<String>,
    pub offset: Option<i64>,
    /// At most 500.
    pub limit: Option<i64>,
    pub lang: Option<String>,
}

impl AuditQuery {
    pub fn checked(&self) -> Result<(Option<&str>, i64, i64), WebError> {
        let action = self.action.as_deref().filter(|a| !a.is_empty());
        if action.is_some_and(|a| a.len() > 100) {
            return Err(WebError::BadRequest(
                "action is at most 100 characters".into(),
            ));
        }
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        if !(1..=500).contains(&limit) || offset < 0 {
            return Err(WebError::BadRequest(
                "limit is 1 to 500 and offset ≥ 0".into(),
            ));
        }
        Ok((action, limit, offset))
    }
}

pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Response {
    let result = async {
        caller.require(Role::Admin)?;
        let (action, limit, offset) = q.checked()?;
        let entries = state.db().await?.audit_entries(action, limit, offset).await?;
        let lang = caller.lang;
        let content = html! {
            table #audit {
                thead { tr { th { (lang.t("when")) } th { (lang.t("who")) } th { "Role" } th { (lang.t("what")) } th { (lang.t("target")) } th { (lang.t("detail")) } } }
                tbody { @for e in &entries { tr {
                    td { (format_brasilia(e.at)) } td { (e.actor) } td { (e.role) } td { (e.action) } td { (e.target) } td { (e.detail) }
                } } }
            }
        };
        Ok(page(&caller, lang.t("audit"), content))
    }
    .await;
    render(&caller, result)
}
