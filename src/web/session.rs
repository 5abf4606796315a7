//! Browser sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure behind TLS),
//! stored as its SHA-256 (the id is 256 random bits, so a fast hash suffices), with a CSRF token
//! that every form and every cookie-authenticated API write must carry.

use axum::http::HeaderMap;
use axum::http::header;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::db::{WebDb, with_pool};
use super::users::{Role, User, UserError, random_token};
use crate::monitor::time::now_millis;

pub const SESSION_COOKIE: &str = "eaibus_session";
/// The CSRF token of the login form, before there is a session (double-submit cookie).
pub const LOGIN_CSRF_COOKIE: &str = "eaibus_login_csrf";
pub const LANG_COOKIE: &str = "eaibus_lang";
/// Sessions last a working day.
pub const SESSION_MS: i64 = 8 * 60 * 60 * 1000;

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

fn digest(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Whether the request came over TLS (directly configured, or through a proxy that says so).
pub fn behind_tls(headers: &HeaderMap) -> bool {
    std::env::var("EAIBUS_COOKIE_SECURE").as_deref() == Ok("true")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age` 0 removes the cookie.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_s: i64,
    secure: bool,
    http_only: bool,
) -> String {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age_s}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Compares two secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl WebDb {
    /// Starts a session; returns its id (for the cookie) and CSRF token.
    pub async fn create_session(&self, user: &User) -> Result<(String, String), UserError> {
        let id = random_token();
        let csrf = random_token();
        let now = now_millis();
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO web_sessions (id_hash, username, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(&id))
        .bind(&user.username)
        .bind(&csrf)
        .bind(now)
        .bind(now + SESSION_MS)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        // Expired sessions go away as new ones come.
        with_pool!(self, pool => sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok((id, csrf))
    }

    /// The live session with this id, with its user's current role.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, UserError> {
        if id.len() != 64 {
            return Ok(None);
        }
        let row: Option<(String, String, String)> = with_pool!(self, pool => sqlx::query(
            "SELECT s.csrf, u.username, u.role FROM web_sessions s \
             JOIN web_users u ON u.username = s.username WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(digest(id))
        .bind(now_millis())
        .fetch_optional(pool)
        .await?
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2))));
        Ok(row.and_then(|(csrf, username, role)| {
            Role::from_code(&role).map(|role| Session {
                user: User { username, role },
                csrf,
            })
        }))
    }

    pub async fn end_session(&self, id: &str) -> Result<(), UserError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(digest(id))
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
