//! The login page, login and logout. The login form carries a CSRF token matched against a
//! short-lived cookie (there is no session yet); every attempt is audited. Repeated failures are
//! throttled (see `web::throttle` for the policy).

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{html_response, page, render};
use crate::monitor::time::{format_brasilia, now_millis};
use crate::web::caller::Caller;
use crate::web::session::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_MS, cookie, same_secret, set_cookie,
};
use crate::web::throttle;
use crate::web::users::random_token;
use crate::web::{Shared, WebError};

/// The login form, with why the last attempt failed (and the status to answer with).
fn form(caller: &Caller, problem: Option<(StatusCode, String)>) -> Response {
    let lang = caller.lang;
    let token = random_token();
    let content = html! {
        @if let Some((_, text)) = &problem { p.error #login-error { (text) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            p { label { (lang.t("username")) br; input #username type="text" name="username" maxlength="64" required autofocus; } }
            p { label { (lang.t("password")) br; input #password type="password" name="password" maxlength="1024" required; } }
            button #login type="submit" { (lang.t("login")) }
        }
    };
    let mut response = page(caller, lang.t("login"), content);
    if let Some((status, _)) = problem {
        *response.status_mut() = status;
    }
    let c = set_cookie(LOGIN_CSRF_COOKIE, &token, 600, caller.secure, true);
    if let Ok(v) = HeaderValue::from_str(&c) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

pub async fn show(caller: Caller) -> Response {
    if caller.user.is_some() {
        return Redirect::to("/").into_response();
    }
    form(&caller, None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn submit(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    Form(input): Form<LoginForm>,
) -> Response {
    let result = async {
        let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
        if !same_secret(&input.csrf, &expected) {
            return Err(WebError::Csrf);
        }
        let db = state.db().await?;
        let username = input.username.trim();
        // Failures are counted under the name as typed (cut to the longest valid name).
        let shown: String = username.chars().take(64).collect();
        let address = caller.address.as_str();
        let now = now_millis();
        let failures = db.login_failures(&shown, address, now).await?;
        if let Some(until) = throttle::locked_until(now, &failures) {
            let detail = format!("from {address} until {}", format_brasilia(until));
            db.audit(None, &shown, "login.throttled", &shown, &detail)
                .await?;
            let text = caller
                .lang
                .t("login_throttled")
                .replace("{}", &throttle::minutes_left(now, until).to_string());
            return Ok(form(&caller, Some((StatusCode::TOO_MANY_REQUESTS, text))));
        }
        let Some(user) = db.check_login(username, &input.password).await? else {
            db.record_login_failure(&shown, address, now).await?;
            db.audit(
                None,
                &shown,
                "login.failed",
                &shown,
                &format!("from {address}"),
            )
            .await?;
            let after = db.login_failures(&shown, address, now).await?;
            if let Some(until) = throttle::locked_until(now, &after) {
                let detail = format!("from {address} until {}", format_brasilia(until));
                db.audit(None, &shown, "login.locked", &shown, &detail)
                    .await?;
            }
            let text = caller.lang.t("login_failed").to_owned();
            return Ok(form(&caller, Some((StatusCode::UNAUTHORIZED, text))));
        };
        db.record_login_success(&user.username, address, now)
            .await?;
        let (id, _csrf) = db.create_session(&user).await?;
        db.audit(Some(&user), "", "login", &user.username, "")
            .await?;
        let mut response = Redirect::to("/").into_response();
        let session = set_cookie(SESSION_COOKIE, &id, SESSION_MS / 1000, caller.secure, true);
        let clear = set_cookie(LOGIN_CSRF_COOKIE, "", 0, caller.secure, true);
        for c in [session, clear] {
            if let Ok(v) = HeaderValue::from_str(&c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        Ok(response)
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<Shared>,
    caller: Caller,
    Form(input): Form<CsrfForm>,
) -> Response {
    let result = async {
        let user = caller
            .require_form(crate::web::Role::Viewer, &input.csrf)?
            .clone();
        let db = state.db().await?;
        if let Some(id) = &caller.session_id {
            db.end_session(id).await?;
        }
        db.audit(Some(&user), "", "logout", &user.username, "")
            .await?;
        let mut response = Redirect::to("/login").into_response();
        if let Ok(v) =
            HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", 0, caller.secure, true))
        {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(response)
    }
    .await;
    render(&caller, result)
}

/// A tiny page for 404s under the monitor.
pub async fn not_found(caller: Caller) -> Response {
    html_response(&caller, StatusCode::NOT_FOUND, "<h1>404</h1>".into())
}
