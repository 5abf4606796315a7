//! The JSON API under `/api/v1`: what the pages do, for scripts and other tools, with bearer
//! tokens (or the browser's session plus an `X-CSRF-Token` header for writes). The OpenAPI
//! document at `/api/v1/openapi.json` is generated from these handlers (utoipa).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use super::actions::{self, DeParaInput, ReprocessOutcome};
use super::audit::AuditEntry;
use super::caller::Caller;
use super::listing::{self, ListQuery, MessageDetail, RowPage};
use super::pages::audit::AuditQuery;
use super::pages::dashboard::{self, Dashboard};
use super::pages::depara::{self, DeParaList, DeParaSearch};
use super::pages::detail::{DetailQuery, export_payload, wants_reveal};
use super::users::Role;
use super::{Shared, WebError};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/session", get(session))
        .route("/api/v1/messages", get(messages))
        .route("/api/v1/messages/reprocess", post(reprocess_many))
        .route("/api/v1/messages/{uuid}", get(message))
        .route("/api/v1/messages/{uuid}/payload", get(payload))
        .route("/api/v1/messages/{uuid}/reprocess", post(reprocess))
        .route("/api/v1/messages/{uuid}/resolve", post(resolve))
        .route("/api/v1/dashboard", get(dashboard_counts))
        .route("/api/v1/orders/{id}", get(order))
        .route(
            "/api/v1/depara",
            get(depara_list).put(depara_put).delete(depara_delete),
        )
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/admin/reload", post(reload))
        .route("/api/v1/users", get(users).post(user_put))
        .route("/api/v1/tokens", post(token_create))
}

type ApiResult<T> = Result<Json<T>, WebError>;

#[derive(OpenApi)]
#[openapi(
    info(title = "eaibus monitor API", version = "1"),
    paths(
        session, messages, message, payload, reprocess, reprocess_many, resolve,
        dashboard_counts, depara_list, depara_put, depara_delete, audit, reload, users,
        user_put, token_create
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document (public).
async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
        Err(e) => WebError::Unavailable(e.to_string()).into_response(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub username: String,
    pub role: Role,
    /// The token to send as `X-CSRF-Token` with writes made with a session cookie.
    pub csrf: Option<String>,
}

/// Who is calling.
#[utoipa::path(get, path = "/api/v1/session", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401)))]
async fn session(caller: Caller) -> ApiResult<SessionInfo> {
    let user = caller.require(Role::Viewer)?;
    Ok(Json(SessionInfo {
        username: user.username.clone(),
        role: user.role,
        csrf: caller.session_csrf.clone(),
    }))
}

/// The message list, newest first.
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", params(ListQuery),
    responses((status = 200, body = RowPage), (status = 400), (status = 401)))]
async fn messages(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<RowPage> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        listing::list(&state, &q.to_filter()?, caller.lang).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevealQuery {
    /// `1`: personal data unmasked (admins only; audited).
    pub reveal: Option<String>,
}

/// One message: timeline, deliveries, payloads (masked unless revealed), De/Para created.
#[utoipa::path(get, path = "/api/v1/messages/{uuid}", tag = "messages",
    params(("uuid" = String, Path), RevealQuery),
    responses((status = 200, body = MessageDetail), (status = 401), (status = 403), (status = 404)))]
async fn message(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    Query(q): Query<RevealQuery>,
) -> ApiResult<MessageDetail> {
    caller.require(Role::Viewer)?;
    let reveal = wants_reveal(&state, &caller, &uuid, q.reveal.as_deref(), "api").await?;
    Ok(Json(
        listing::detail(&state, &uuid, caller.lang, reveal).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayloadQuery {
    /// `raw` (as received, default) or `canonical`.
    pub form: Option<String>,
    /// `1`: unmasked (admins only; audited).
    pub reveal: Option<String>,
}

/// The payload as a download.
#[utoipa::path(get, path = "/api/v1/messages/{uuid}/payload", tag = "messages",
    params(("uuid" = String, Path), PayloadQuery),
    responses((status = 200, description = "the payload"), (status = 401), (status = 404)))]
async fn payload(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    Query(q): Query<PayloadQuery>,
) -> Result<Response, WebError> {
    let q = DetailQuery {
        reveal: q.reveal,
        form: q.form,
        lang: None,
    };
    export_payload(&state, &caller, &uuid, &q).await
}

/// Sends the message's failed, blocked or undelivered routes again (operator).
#[utoipa::path(post, path = "/api/v1/messages/{uuid}/reprocess", tag = "messages",
    params(("uuid" = String, Path)),
    responses((status = 200, body = ReprocessOutcome), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn reprocess(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
) -> ApiResult<ReprocessOutcome> {
    let user = caller.require_api_write(Role::Operator)?;
    let routes = actions::reprocess(&state, user, &uuid).await?;
    Ok(Json(ReprocessOutcome {
        uuid,
        routes,
        error: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BulkReprocess {
    pub uuids: Vec<String>,
}

/// Reprocesses several messages; each gets its own outcome (operator).
#[utoipa::path(post, path = "/api/v1/messages/reprocess", tag = "messages",
    request_body = BulkReprocess,
    responses((status = 200, body = [ReprocessOutcome]), (status = 400), (status = 401), (status = 403)))]
async fn reprocess_many(
    State(state): State<Shared>,
    caller: Caller,
    Json(body): Json<BulkReprocess>,
) -> ApiResult<Vec<ReprocessOutcome>> {
    let user = caller.require_api_write(Role::Operator)?;
    Ok(Json(
        actions::reprocess_many(&state, user, &body.uuids).await?,
    ))
}

/// Marks the message as resolved by hand (operator).
#[utoipa::path(post, path = "/api/v1/messages/{uuid}/resolve", tag = "messages",
    params(("uuid" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn resolve(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
) -> Result<StatusCode, WebError> {
    let user = caller.require_api_write(Role::Operator)?;
    actions::resolve(&state, user, &uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// KPIs and counts per transaction and route.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard",
    responses((status = 200, body = Dashboard), (status = 401)))]
async fn dashboard_counts(State(state): State<Shared>, caller: Caller) -> ApiResult<Dashboard> {
    caller.require(Role::Viewer)?;
    Ok(Json(dashboard::dashboard(&state).await?))
}

/// One order by its OMNI id, Protheus order id or sale id: status, history, invoices.
async fn order(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::order::query::OrderView>, WebError> {
    caller.require(Role::Viewer)?;
    if id.len() > 200 {
        return Err(WebError::BadRequest("the id is too long".into()));
    }
    // Per bus, not per process: two buses in one process keep their own read models.
    let store = state.orders().await?;
    match crate::order::query::find(store, &id).await {
        Ok(Some(view)) => Ok(Json(view)),
        Ok(None) => Err(WebError::NotFound(format!("no order is known by {id}"))),
        Err(e) => Err(WebError::Unavailable(e.to_string())),
    }
}

/// De/Para pairs.
#[utoipa::path(get, path = "/api/v1/depara", tag = "depara", params(DeParaSearch),
    responses((status = 200, body = DeParaList), (status = 400), (status = 401)))]
async fn depara_list(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<DeParaSearch>,
) -> ApiResult<DeParaList> {
    caller.require(Role::Viewer)?;
    Ok(Json(depara::search(&state, &q).await?))
}

/// Adds a pair or changes its internal value (admin; audited).
#[utoipa::path(put, path = "/api/v1/depara", tag = "depara", request_body = DeParaInput,
    responses((status = 204), (status = 400), (status = 401), (status = 403)))]
async fn depara_put(
    State(state): State<Shared>,
    caller: Caller,
    Json(body): Json<DeParaInput>,
) -> Result<StatusCode, WebError> {
    let user = caller.require_api_write(Role::Admin)?;
    actions::depara_upsert(&state, user, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a pair (admin; audited). `internal` is ignored.
#[utoipa::path(delete, path = "/api/v1/depara", tag = "depara", request_body = DeParaInput,
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn depara_delete(
    State(state): State<Shared>,
    caller: Caller,
    Json(body): Json<DeParaInput>,
) -> Result<StatusCode, WebError> {
    let user = caller.require_api_write(Role::Admin)?;
    actions::depara_delete(&state, user, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit trail, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), (status = 401), (status = 403)))]
async fn audit(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Vec<AuditEntry>> {
    caller.require(Role::Admin)?;
    let (action, limit, offset) = q.checked()?;
    Ok(Json(
        state
            .db()
            .await?
            .audit_entries(action, limit, offset)
            .await?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub adapters: usize,
}

/// Loads the adapter table again (admin). An invalid table is refused with the reason (422)
/// and the running one stays.
#[utoipa::path(post, path = "/api/v1/admin/reload", tag = "admin",
    responses((status = 200, body = Reloaded), (status = 401), (status = 403), (status = 422)))]
async fn reload(State(state): State<Shared>, caller: Caller) -> ApiResult<Reloaded> {
    let user = caller.require_api_write(Role::Admin)?;
    Ok(Json(Reloaded {
        adapters: actions::reload(&state, user).await?,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
}

/// The users (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "admin",
    responses((status = 200, body = [UserInfo]), (status = 401), (status = 403)))]
async fn users(State(state): State<Shared>, caller: Caller) -> ApiResult<Vec<UserInfo>> {
    caller.require(Role::Admin)?;
    let users = state.db().await?.users().await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserInfo {
                username: u.username,
                role: u.role,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    pub username: String,
    /// 8 to 1024 characters; stored as an argon2id hash.
    pub password: String,
    pub role: Role,
}

/// Creates a user, or sets its password and role (admin; audited).
#[utoipa::path(post, path = "/api/v1/users", tag = "admin", request_body = NewUser,
    responses((status = 204), (status = 400), (status = 401), (status = 403)))]
async fn user_put(
    State(state): State<Shared>,
    caller: Caller,
    Json(body): Json<NewUser>,
) -> Result<StatusCode, WebError> {
    let user = caller.require_api_write(Role::Admin)?;
    let db = state.db().await?;
    db.upsert_user(&body.username, &body.password, body.role)
        .await?;
    db.audit(
        Some(user),
        "",
        "user.upsert",
        &body.username,
        body.role.code(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// The user the token acts as (its role is the user's).
    pub username: String,
    /// What the token is for.
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Shown once; send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// Issues an API token for a user (admin; audited).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = 400), (status = 401), (status = 403)))]
async fn token_create(
    State(state): State<Shared>,
    caller: Caller,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), WebError> {
    let user = caller.require_api_write(Role::Admin)?;
    let db = state.db().await?;
    let token = db.create_token(&body.username, &body.name).await?;
    db.audit(Some(user), "", "token.create", &body.username, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(IssuedToken { token })))
}
