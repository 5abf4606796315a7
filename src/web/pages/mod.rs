//! The server-rendered monitor pages (maud templates, no front-end build step).

pub mod audit;
pub mod dashboard;
pub mod depara;
pub mod detail;
pub mod layout;
pub mod login;
pub mod messages;
pub mod orders;
pub mod sync_logs;
pub mod users;

use axum::Router;
use axum::routing::{get, post};

use super::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(messages::list))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/dashboard", get(dashboard::show))
        .route("/admin/reload", post(dashboard::reload))
        .route("/messages/reprocess", post(messages::reprocess_bulk))
        .route("/messages/{uuid}", get(detail::show))
        .route("/messages/{uuid}/payload", get(detail::export))
        .route("/messages/{uuid}/reprocess", post(messages::reprocess_one))
        .route("/messages/{uuid}/resolve", post(messages::resolve_one))
        .route("/depara", get(depara::show).post(depara::upsert))
        .route("/depara/delete", post(depara::delete))
        .route("/audit", get(audit::show))
        .route("/sync-logs", get(sync_logs::show))
        .route("/orders", get(orders::show))
        .route("/users", get(users::show).post(users::create))
        .route("/users/{username}/role", post(users::role))
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/enable", post(users::enable))
        .route("/tokens", post(users::create_token))
        .route("/tokens/{id}/revoke", post(users::revoke_token))
}
