//! Who is asking: a bearer token (API clients) or a session cookie (browsers), with the language
//! of the pages. Checks roles, and CSRF tokens for writes made with a session.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::i18n::Lang;
use super::session::{LANG_COOKIE, SESSION_COOKIE, behind_tls, cookie, same_secret};
use super::users::{Role, User};
use super::{Shared, WebError};

/// The CSRF header cookie-authenticated API writes carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Option<User>,
    /// The CSRF token of its session when the caller came with a session cookie.
    pub session_csrf: Option<String>,
    /// Its session id, for logout.
    pub session_id: Option<String>,
    /// The `X-CSRF-Token` header, if sent.
    csrf_header: Option<String>,
    pub lang: Lang,
    /// Whether `?lang=` chose the language (the pages then remember it in a cookie).
    pub lang_from_query: bool,
    pub secure: bool,
    /// The client's address (see `throttle` for how it is told), or `unknown`.
    pub address: String,
}

impl Caller {
    /// The user when signed in with at least `role`.
    pub fn require(&self, role: Role) -> Result<&User, WebError> {
        match &self.user {
            None => Err(WebError::Unauthorized),
            Some(user) if user.role < role => Err(WebError::Forbidden),
            Some(user) => Ok(user),
        }
    }

    /// For API writes: the role, and the CSRF header when authenticated by a session cookie.
    pub fn require_api_write(&self, role: Role) -> Result<&User, WebError> {
        let user = self.require(role)?;
        if let Some(expected) = &self.session_csrf
            && !same_secret(self.csrf_header.as_deref().unwrap_or(""), expected)
        {
            return Err(WebError::Csrf);
        }
        Ok(user)
    }

    /// For form posts: the role and the form's CSRF field.
    pub fn require_form(&self, role: Role, csrf: &str) -> Result<&User, WebError> {
        let user = self.require(role)?;
        match &self.session_csrf {
            Some(expected) if same_secret(csrf, expected) => Ok(user),
            _ => Err(WebError::Csrf),
        }
    }

    pub fn role(&self) -> Option<Role> {
        self.user.as_ref().map(|u| u.role)
    }
}

/// The TCP peer, or behind a trusted proxy (`EAIBUS_TRUST_PROXY=true`) the last address of
/// `X-Forwarded-For` (the one that proxy saw).
fn client_address(parts: &Parts) -> String {
    if std::env::var("EAIBUS_TRUST_PROXY").as_deref() == Ok("true")
        && let Some(forwarded) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 64)
    {
        return forwarded.to_owned();
    }
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Caller, WebError> {
        let headers = &parts.headers;
        let query_lang = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .and_then(|(_, v)| Lang::from_code(v))
        });
        let lang = query_lang
            .or_else(|| cookie(headers, LANG_COOKIE).and_then(|v| Lang::from_code(&v)))
            .unwrap_or_default();
        let mut caller = Caller {
            user: None,
            session_csrf: None,
            session_id: None,
            csrf_header: headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            lang,
            lang_from_query: query_lang.is_some(),
            secure: behind_tls(headers),
            address: client_address(parts),
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        if let Some(token) = bearer {
            let db = state.db().await?;
            // A wrong token is refused outright rather than read as anonymous.
            caller.user = Some(db.check_token(token).await?.ok_or(WebError::Unauthorized)?);
            return Ok(caller);
        }
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            let db = state.db().await?;
            if let Some(session) = db.session(&id).await? {
                caller.user = Some(session.user);
                caller.session_csrf = Some(session.csrf);
                caller.session_id = Some(id);
            }
        }
        Ok(caller)
    }
}
