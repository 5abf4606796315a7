//! The web monitor and its JSON API: server-rendered pages for support staff (`/`), the API
//! under `/api/v1` with its OpenAPI document, Prometheus metrics at `/metrics`, users with roles,
//! sessions and API tokens, the audit trail and LGPD masking.
//!
//! Layout — one job per module:
//! - `db`: the web's own tables in the monitor database (SQLite or PostgreSQL);
//! - `users`, `session`, `caller`: who is asking (passwords, tokens, cookies, CSRF, roles);
//! - `audit`: the trail of every action;
//! - `queries`: reads the monitor store does not offer yet (KPIs, latency, resolutions);
//! - `listing`: the message list and detail as the pages and the API show them;
//! - `actions`: reprocess, resolve, De/Para changes, reload — checked and audited;
//! - `mask`: LGPD masking; `i18n`: pt-BR and English words;
//! - `pages`: HTML; `api`: JSON and OpenAPI; `metrics`: Prometheus text.
//!
//! The first admin: set `EAIBUS_ADMIN_USER` and `EAIBUS_ADMIN_PASSWORD` (8+ characters) in the
//! environment of `eaibus serve`; at start that user is created, or its password and role reset.

pub mod actions;
pub mod api;
pub mod audit;
pub mod caller;
pub mod db;
pub mod i18n;
pub mod listing;
pub mod mask;
pub mod metrics;
pub mod pages;
pub mod queries;
pub mod session;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::bus::Bus;
pub use db::WebDb;
pub use users::{Role, User};

/// What every web handler shares: the bus and the web tables (opened on first use, and eagerly
/// at start when a runtime is running).
pub struct WebState {
    pub bus: Bus,
    db: OnceCell<WebDb>,
    /// The order read model of this bus, opened on first use.
    orders: OnceCell<crate::order::store::OrderStore>,
}

pub type Shared = Arc<WebState>;

impl WebState {
    pub fn new(bus: Bus) -> WebState {
        WebState {
            bus,
            db: OnceCell::new(),
            orders: OnceCell::new(),
        }
    }

    /// The order read model of this bus's configuration, opened on first use.
    pub async fn orders(&self) -> Result<&crate::order::store::OrderStore, WebError> {
        self.orders
            .get_or_try_init(|| crate::order::store::OrderStore::open_for(&self.bus.config))
            .await
            .map_err(|e| WebError::Unavailable(format!("the order read model: {e}")))
    }

    /// The web tables, created (and the first admin set up) on first use.
    pub async fn db(&self) -> Result<&WebDb, WebError> {
        self.db
            .get_or_try_init(|| async {
                let db = WebDb::open(&self.bus.config.store.url)
                    .await
                    .map_err(|e| WebError::Unavailable(format!("the web tables: {e}")))?;
                match users::bootstrap_admin(&db).await {
                    Ok(Some(user)) => {
                        tracing::info!(user = %user, "The admin from EAIBUS_ADMIN_USER is ready.");
                        let _ = db
                            .audit(None, "EAIBUS_ADMIN_USER", "user.bootstrap", &user, "admin")
                            .await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "The admin from EAIBUS_ADMIN_USER could not be set up.")
                    }
                }
                Ok(db)
            })
            .await
    }
}

/// The monitor pages, the JSON API and the metrics, ready to merge into the server's router.
pub fn router(bus: Bus) -> Router {
    let state: Shared = Arc::new(WebState::new(bus));
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let eager = state.clone();
        handle.spawn(async move {
            if let Err(e) = eager.db().await {
                tracing::error!(error = %e, "The web tables could not be opened.");
            }
        });
    }
    Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .merge(metrics::routes())
        .with_state(state)
}

/// Why a web request failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("authentication required")]
    Unauthorized,
    #[error("your role may not do this")]
    Forbidden,
    #[error("the CSRF token is missing or wrong")]
    Csrf,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        WebError::Unavailable(e.to_string())
    }
}

impl From<users::UserError> for WebError {
    fn from(e: users::UserError) -> Self {
        match e {
            users::UserError::Invalid(reason) => WebError::BadRequest(reason),
            other => WebError::Unavailable(other.to_string()),
        }
    }
}

impl From<crate::monitor::MonitorError> for WebError {
    fn from(e: crate::monitor::MonitorError) -> Self {
        use crate::monitor::MonitorError as M;
        match e {
            M::UnknownMessage { uuid } => WebError::NotFound(format!("message {uuid}")),
            e @ M::NotAllowed { .. } => WebError::Conflict(e.to_string()),
            other => WebError::Unavailable(other.to_string()),
        }
    }
}

impl From<crate::adapter::DeParaError> for WebError {
    fn from(e: crate::adapter::DeParaError) -> Self {
        match e {
            crate::adapter::DeParaError::Invalid(reason) => WebError::BadRequest(reason),
            other => WebError::Unavailable(other.to_string()),
        }
    }
}

/// API answers: `{"error": "..."}` with the status.
impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Input may be quoted in the reason: keep markup out of the body even as JSON.
        let body = json!({"error": self.to_string()})
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e");
        let mut response = (
            status,
            [
                (axum::http::header::CONTENT_TYPE, "application/json"),
                (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"eaibus\""),
            );
        }
        response
    }
}
