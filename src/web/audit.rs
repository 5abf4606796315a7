//! The audit trail: who did what, when, to what (reprocess, resolve, De/Para changes, config
//! reload, logins, payload reveals, users and tokens). Append-only; admins read it.

use serde::Serialize;
use sqlx::Row;

use super::db::{WebDb, with_pool};
use super::users::User;
use crate::monitor::time::now_millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Longest text kept per field, so a hostile value cannot grow the trail without bound.
const MAX_FIELD: usize = 2000;

fn clip(text: &str) -> String {
    text.chars().take(MAX_FIELD).collect()
}

impl WebDb {
    /// Appends an entry. `user` is `None` for anonymous attempts (a failed login).
    pub async fn audit(
        &self,
        user: Option<&User>,
        actor_fallback: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        let (actor, role) = match user {
            Some(u) => (u.username.as_str(), u.role.code()),
            None => (actor_fallback, "-"),
        };
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO web_audit (at, actor, role, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now_millis())
        .bind(clip(actor))
        .bind(role)
        .bind(action)
        .bind(clip(target))
        .bind(clip(detail))
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The newest entries first; `action_prefix` keeps only actions starting with it.
    pub async fn audit_entries(
        &self,
        action_prefix: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let prefix = action_prefix.unwrap_or("");
        with_pool!(self, pool => Ok(sqlx::query(
            "SELECT id, at, actor, role, action, target, detail FROM web_audit \
             WHERE substr(action, 1, length($1)) = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(prefix)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            role: r.get(3),
            action: r.get(4),
            target: r.get(5),
            detail: r.get(6),
        })
        .collect()))
    }
}
