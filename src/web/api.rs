//! The JSON API under `/api/v1`: what the pages do, for scripts and other tools, with bearer
//! tokens (or the browser's session plus an `X-CSRF-Token` header for writes). The OpenAPI
//! document at `/api/v1/openapi.json` is generated from these handlers (utoipa).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use super::accounts::{self, TokenInfo, UserInfo};
use super::actions::{self, DeParaInput, ReprocessOutcome};
use super::audit::AuditEntry;
use super::caller::Caller;
use super::listing::{self, ListQuery, MessageDetail, RowPage};
use super::pages::audit::AuditQuery;
use super::pages::dashboard::{self, Dashboard};
use super::pages::depara::{self, DeParaList, DeParaSearch};
use super::pages::detail::{DetailQuery, export_payload, wants_reveal};
use super::pages::orders;
use super::pages::sync_logs::{self, SyncLogQuery, SyncRunList};
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
        .route("/api/v1/sync-runs", get(sync_runs))
        .route("/api/v1/orders/{id}", get(order))
        .route(
            "/api/v1/depara",
            get(depara_list).put(depara_put).delete(depara_delete),
        )
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/admin/reload", post(reload))
        .route("/api/v1/users", get(users).post(user_put))
        .route("/api/v1/users/{username}/role", put(user_role))
        .route("/api/v1/users/{username}/disable", post(user_disable))
        .route("/api/v1/users/{username}/enable", post(user_enable))
        .route("/api/v1/tokens", get(tokens).post(token_create))
        .route("/api/v1/tokens/{id}", delete(token_revoke))
}

type ApiResult<T> = Result<Json<T>, WebError>;

#[derive(OpenApi)]
#[openapi(
    info(title = "eaibus monitor API", version = "1"),
    paths(
        session, messages, message, payload, reprocess, reprocess_many, resolve,
        dashboard_counts, sync_runs, order, depara_list, depara_put, depara_delete, audit, reload, users,
        user_put, user_role, user_disable, user_enable, tokens, token_create, token_revoke
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

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Why it needs nothing more (at most 1000 characters).
    pub note: Option<String>,
}

/// A message's resolution by hand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResolutionView {
    pub uuid: String,
    pub resolved_by: String,
    /// ms since the Unix epoch.
    pub resolved_at: i64,
    pub note: Option<String>,
}

/// Marks the message as resolved by hand, with an optional note (operator; audited). The mark
/// holds until the message is reprocessed. 409 when it is resolved already or was delivered.
#[utoipa::path(post, path = "/api/v1/messages/{uuid}/resolve", tag = "messages",
    params(("uuid" = String, Path)), request_body(content = Option<ResolveBody>),
    responses((status = 200, body = ResolutionView), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409)))]
async fn resolve(
    State(state): State<Shared>,
    caller: Caller,
    Path(uuid): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<ResolutionView> {
    let user = caller.require_api_write(Role::Operator)?;
    // The body is optional: none, or `{"note": "…"}`.
    let body: ResolveBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResolveBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| WebError::BadRequest(format!("the body is not a resolution: {e}")))?
    };
    let r = actions::resolve(&state, user, &uuid, body.note.as_deref()).await?;
    Ok(Json(ResolutionView {
        uuid: r.uuid,
        resolved_by: r.resolved_by,
        resolved_at: r.resolved_at,
        note: r.note,
    }))
}

/// KPIs and counts per transaction and route.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard",
    responses((status = 200, body = Dashboard), (status = 401)))]
async fn dashboard_counts(State(state): State<Shared>, caller: Caller) -> ApiResult<Dashboard> {
    caller.require(Role::Viewer)?;
    Ok(Json(dashboard::dashboard(&state).await?))
}

/// The sync logs: delivery runs, bulk reprocesses, DLQ redrives and replays, newest first.
#[utoipa::path(get, path = "/api/v1/sync-runs", tag = "sync", params(SyncLogQuery),
    responses((status = 200, body = SyncRunList), (status = 400), (status = 401)))]
async fn sync_runs(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<SyncLogQuery>,
) -> ApiResult<SyncRunList> {
    caller.require(Role::Viewer)?;
    Ok(Json(sync_logs::list(&state, &q, caller.lang).await?))
}

/// One order by its OMNI id, Protheus order id or sale id: status per flow, history, invoices.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "OMNI order id, Protheus order id or sale id")),
    responses((status = 200, body = crate::order::query::OrderView), (status = 400), (status = 401),
        (status = 404)))]
async fn order(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::order::query::OrderView>, WebError> {
    caller.require(Role::Viewer)?;
    match orders::find(&state, &id).await? {
        Some(view) => Ok(Json(view)),
        None => Err(WebError::NotFound(format!(
            "no order is known by {}",
            id.trim()
        ))),
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

/// The users, with their roles and whether they are disabled (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "admin",
    responses((status = 200, body = [UserInfo]), (status = 401), (status = 403)))]
async fn users(State(state): State<Shared>, caller: Caller) -> ApiResult<Vec<UserInfo>> {
    caller.require(Role::Admin)?;
    Ok(Json(state.db().await?.user_list().await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
}

/// Changes a user's role (admin; audited). 409 for the last active admin.
#[utoipa::path(put, path = "/api/v1/users/{username}/role", tag = "admin",
    params(("username" = String, Path)), request_body = RoleChange,
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409)))]
async fn user_role(
    State(state): State<Shared>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<RoleChange>,
) -> Result<StatusCode, WebError> {
    let admin = caller.require_api_write(Role::Admin)?;
    accounts::change_role(&state, admin, &username, body.role.code()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a user: no sign-in, no token, its sessions end (admin; audited). 409 for the last
/// active admin and for yourself.
#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "admin",
    params(("username" = String, Path)),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409)))]
async fn user_disable(
    State(state): State<Shared>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, WebError> {
    let admin = caller.require_api_write(Role::Admin)?;
    accounts::set_disabled(&state, admin, &username, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled user again (admin; audited).
#[utoipa::path(post, path = "/api/v1/users/{username}/enable", tag = "admin",
    params(("username" = String, Path)),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn user_enable(
    State(state): State<Shared>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, WebError> {
    let admin = caller.require_api_write(Role::Admin)?;
    accounts::set_disabled(&state, admin, &username, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The API tokens, newest first, without their secrets (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin",
    responses((status = 200, body = [TokenInfo]), (status = 401), (status = 403)))]
async fn tokens(State(state): State<Shared>, caller: Caller) -> ApiResult<Vec<TokenInfo>> {
    caller.require(Role::Admin)?;
    Ok(Json(state.db().await?.tokens().await?))
}

/// Revokes an API token by its id (admin; audited).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "the 16 hex digits after `eaib_`")),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn token_revoke(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, WebError> {
    let admin = caller.require_api_write(Role::Admin)?;
    accounts::revoke_token(&state, admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let admin = caller.require_api_write(Role::Admin)?;
    let token = accounts::create_token(&state, admin, &body.username, &body.name).await?;
    Ok((StatusCode::CREATED, Json(IssuedToken { token })))
}
