//! Sync logs ("Logs de sincronização"): one line per delivery run, bulk reprocess, DLQ redrive
//! or replay — total, successes, errors, skipped, final status, duration and what started it —
//! newest first, filtered by kind, starter and status. Everyone signed in reads it.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::{Deserialize, Serialize};

use super::layout::{page, render};
use super::messages::encode;
use crate::monitor::time::{format_brasilia, now_millis};
use crate::monitor::{StartedBy, SyncKind, SyncRun, SyncRunFilter, SyncStatus};
use crate::web::caller::Caller;
use crate::web::i18n::Lang;
use crate::web::{Role, Shared, WebError, WebState};

/// The query string of the page and of `GET /api/v1/sync-runs`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncLogQuery {
    /// `delivery`, `reprocess`, `redrive` or `replay`.
    pub kind: Option<String>,
    /// `schedule`, `manual`, `webhook` or `kafka`.
    pub started_by: Option<String>,
    /// `running`, `success`, `partial` or `error`.
    pub status: Option<String>,
    pub page: Option<u32>,
    /// At most 500.
    pub page_size: Option<u32>,
    /// `pt` (default) or `en`.
    pub lang: Option<String>,
}

/// Reads one code parameter, refusing anything it does not know.
fn code<T: Copy>(
    name: &str,
    value: &Option<String>,
    known: &[T],
    parse: fn(&str) -> Option<T>,
    show: fn(T) -> &'static str,
) -> Result<Option<T>, WebError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            let choices: Vec<&str> = known.iter().map(|k| show(*k)).collect();
            WebError::BadRequest(format!("{name} is one of {}", choices.join(", ")))
        }),
    }
}

impl SyncLogQuery {
    pub fn to_filter(&self) -> Result<SyncRunFilter, WebError> {
        let page_size = self.page_size.unwrap_or(0);
        if page_size > 500 {
            return Err(WebError::BadRequest("page_size is at most 500".into()));
        }
        if self.lang.as_deref().is_some_and(|l| l.len() > 20) {
            return Err(WebError::BadRequest("lang is pt or en".into()));
        }
        Ok(SyncRunFilter {
            kind: code(
                "kind",
                &self.kind,
                SyncKind::ALL,
                SyncKind::from_code,
                SyncKind::code,
            )?,
            started_by: code(
                "started_by",
                &self.started_by,
                StartedBy::ALL,
                StartedBy::from_code,
                StartedBy::code,
            )?,
            status: code(
                "status",
                &self.status,
                SyncStatus::ALL,
                SyncStatus::from_code,
                SyncStatus::code,
            )?,
            page: self.page.unwrap_or(1).min(1_000_000),
            page_size,
        })
    }
}

/// A run as the page and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncRunView {
    pub id: i64,
    /// `delivery`, `reprocess`, `redrive` or `replay`.
    pub kind: String,
    pub kind_label: String,
    /// `schedule`, `manual`, `webhook` or `kafka`.
    pub started_by: String,
    pub started_by_label: String,
    /// Who started a manual run.
    pub actor: Option<String>,
    /// A route, `topic → route`, a selection…
    pub scope: String,
    /// ms since the Unix epoch.
    pub started_at: i64,
    /// `dd/mm/yyyy hh:mm:ss`, America/Sao_Paulo.
    pub started_at_local: String,
    pub finished_at: Option<i64>,
    /// So far, while running.
    pub duration_ms: i64,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    /// `running`, `success`, `partial` or `error`.
    pub status: String,
    pub status_label: String,
    pub detail: Option<String>,
}

impl SyncRunView {
    pub fn of(run: SyncRun, lang: Lang, now: i64) -> SyncRunView {
        SyncRunView {
            id: run.id,
            kind: run.kind.code().to_owned(),
            kind_label: lang.code_word("kind", run.kind.code()).to_owned(),
            started_by: run.started_by.code().to_owned(),
            started_by_label: lang.code_word("by", run.started_by.code()).to_owned(),
            duration_ms: run.duration_ms(now),
            actor: run.actor,
            scope: run.scope,
            started_at: run.started_at,
            started_at_local: format_brasilia(run.started_at),
            finished_at: run.finished_at,
            total: run.total,
            succeeded: run.succeeded,
            failed: run.failed,
            skipped: run.skipped,
            status: run.status.code().to_owned(),
            status_label: lang.code_word("status", run.status.code()).to_owned(),
            detail: run.detail,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncRunList {
    pub runs: Vec<SyncRunView>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

pub async fn list(state: &WebState, q: &SyncLogQuery, lang: Lang) -> Result<SyncRunList, WebError> {
    let page = state.bus.monitor.sync_runs(&q.to_filter()?).await?;
    let now = now_millis();
    Ok(SyncRunList {
        runs: page
            .runs
            .into_iter()
            .map(|r| SyncRunView::of(r, lang, now))
            .collect(),
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    })
}

/// `1,2 s`, `3 min 05 s`, `2 h 07 min`.
pub fn duration_text(ms: i64) -> String {
    let seconds = ms / 1000;
    if seconds < 60 {
        format!("{},{} s", seconds, (ms % 1000) / 100)
    } else if seconds < 3600 {
        format!("{} min {:02} s", seconds / 60, seconds % 60)
    } else {
        format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60)
    }
}

fn link(q: &SyncLogQuery, page: u32) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("kind", &q.kind),
        ("started_by", &q.started_by),
        ("status", &q.status),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", encode(v)));
        }
    }
    parts.push(format!("page={page}"));
    format!("/sync-logs?{}", parts.join("&"))
}

pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<SyncLogQuery>,
) -> Response {
    let result = async {
        caller.require(Role::Viewer)?;
        let lang = caller.lang;
        let runs = list(&state, &q, lang).await?;
        let chosen = q.to_filter()?;
        let pages = (runs.total.max(0) as u64)
            .div_ceil(u64::from(runs.page_size.max(1)))
            .max(1);
        let content = html! {
            form.filters #sync-filters method="get" action="/sync-logs" {
                label { (lang.t("kind")) " "
                    select #kind name="kind" {
                        option value="" { (lang.t("all")) }
                        @for k in SyncKind::ALL {
                            option value=(k.code()) selected[chosen.kind == Some(*k)] { (lang.code_word("kind", k.code())) }
                        }
                    }
                }
                label { (lang.t("started_by")) " "
                    select #started_by name="started_by" {
                        option value="" { (lang.t("all")) }
                        @for b in StartedBy::ALL {
                            option value=(b.code()) selected[chosen.started_by == Some(*b)] { (lang.code_word("by", b.code())) }
                        }
                    }
                }
                label { (lang.t("status")) " "
                    select #status name="status" {
                        option value="" { (lang.t("all")) }
                        @for s in SyncStatus::ALL {
                            option value=(s.code()) selected[chosen.status == Some(*s)] { (lang.code_word("status", s.code())) }
                        }
                    }
                }
                button #apply type="submit" { (lang.t("filter")) }
            }
            table #sync-runs {
                thead { tr {
                    th { (lang.t("started_at")) } th { (lang.t("kind")) } th { (lang.t("scope")) }
                    th { (lang.t("started_by")) } th { (lang.t("total")) } th { (lang.t("succeeded")) }
                    th { (lang.t("errors")) } th { (lang.t("skipped")) } th { (lang.t("status")) }
                    th { (lang.t("duration")) } th { (lang.t("detail")) }
                } }
                tbody {
                    @if runs.runs.is_empty() { tr { td colspan="11" { (lang.t("none")) } } }
                    @for r in &runs.runs {
                        tr.sync-run data-kind=(r.kind) data-status=(r.status) {
                            td { (r.started_at_local) }
                            td { (r.kind_label) }
                            td { (r.scope) }
                            td { (r.started_by_label) @if let Some(actor) = &r.actor { br; small { (actor) } } }
                            td.total { (r.total) }
                            td.succeeded { (r.succeeded) }
                            td.failed { (r.failed) }
                            td.skipped { (r.skipped) }
                            td { span class={ "run " (r.status) } { (r.status_label) } }
                            td { (duration_text(r.duration_ms)) }
                            td { (r.detail.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
            p {
                (lang.t("total")) ": " span #total { (runs.total) } " · " (lang.t("page")) " " (runs.page) " " (lang.t("of")) " " (pages) " "
                @if runs.page > 1 { a #prev href=(link(&q, runs.page - 1)) { (lang.t("previous")) } " " }
                @if u64::from(runs.page) < pages { a #next href=(link(&q, runs.page + 1)) { (lang.t("next")) } }
            }
        };
        Ok(page(&caller, lang.t("sync_logs"), content))
    }
    .await;
    render(&caller, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(1234), "1,2 s");
        assert_eq!(duration_text(185_000), "3 min 05 s");
        assert_eq!(duration_text(7_620_000), "2 h 07 min");
    }

    #[test]
    fn unknown_codes_are_refused() {
        let q = SyncLogQuery {
            kind: Some("<script>".into()),
            ..SyncLogQuery::default()
        };
        assert!(matches!(q.to_filter(), Err(WebError::BadRequest(_))));
        let q = SyncLogQuery {
            kind: Some("replay".into()),
            status: Some("partial".into()),
            ..SyncLogQuery::default()
        };
        let f = q.to_filter().unwrap();
        assert_eq!(f.kind, Some(SyncKind::Replay));
        assert_eq!(f.status, Some(SyncStatus::Partial));
    }
}
