//! The frame of every page: head, navigation, language switch, logout, security headers; and
//! how errors show (anonymous → the login page).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::web::WebError;
use crate::web::caller::Caller;
use crate::web::i18n::Lang;
use crate::web::session::{LANG_COOKIE, set_cookie};
use crate::web::users::Role;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#1d3557;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center}\
nav a,nav button{color:#fff;text-decoration:none;background:none;border:0;cursor:pointer;font:inherit}\
nav .right{margin-left:auto;display:flex;gap:1em;align-items:center;color:#ddd}\
main{padding:1em}table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#f1f1f1}pre{background:#f7f7f7;padding:.5em;overflow:auto;max-height:30em}\
.s3,.s4,.s5,.s6{color:#b00020;font-weight:bold}.s2{color:#2a7d2a}.s0,.s1{color:#996c00}\
.kpis{display:flex;gap:1em}.kpi{border:1px solid #ccc;padding:1em;min-width:12em}\
.kpi b{display:block;font-size:1.6em}form.inline{display:inline}\
.filters input,.filters select{margin-right:.5em}.run.error{color:#b00020;font-weight:bold}\
.run.partial{color:#996c00;font-weight:bold}.run.success{color:#2a7d2a}.run.running{color:#1d3557}.note{color:#555}.flash{background:#e8f4e8;padding:.5em}";

/// A full page.
pub fn page(caller: &Caller, title: &str, content: Markup) -> Response {
    let lang = caller.lang;
    let other = match lang {
        Lang::Pt => ("en", "English"),
        Lang::En => ("pt", "Português"),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · eaibus" }
                style { (PreEscaped(CSS)) }
            }
            body {
                nav {
                    strong { "eaibus" }
                    @if caller.user.is_some() {
                        a href="/" { (lang.t("messages")) }
                        a href="/dashboard" { (lang.t("dashboard")) }
                        a href="/orders" { (lang.t("orders")) }
                        a href="/sync-logs" { (lang.t("sync_logs")) }
                        a href="/depara" { (lang.t("depara")) }
                        @if caller.role() == Some(Role::Admin) {
                            a href="/users" { (lang.t("users")) }
                            a href="/audit" { (lang.t("audit")) }
                        }
                    }
                    span.right {
                        a href={ "?lang=" (other.0) } { (other.1) }
                        @if let Some(user) = &caller.user {
                            span #who { (user.username) " (" (user.role.code()) ")" }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(caller.session_csrf.clone().unwrap_or_default());
                                button type="submit" { (lang.t("logout")) }
                            }
                        }
                    }
                }
                main { h1 { (title) } (content) }
            }
        }
    };
    html_response(caller, StatusCode::OK, markup.into_string())
}

/// An HTML answer with the security headers (and the language cookie when `?lang=` chose it).
pub fn html_response(caller: &Caller, status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if caller.lang_from_query {
        let cookie = set_cookie(
            LANG_COOKIE,
            if caller.lang == Lang::En { "en" } else { "pt" },
            365 * 24 * 3600,
            caller.secure,
            false,
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// How a failed page shows: anonymous callers go to the login page; others see the reason.
pub fn error_page(caller: &Caller, error: WebError) -> Response {
    if matches!(error, WebError::Unauthorized) {
        return Redirect::to("/login").into_response();
    }
    let status = error.status();
    let body = html! {
        (DOCTYPE)
        html lang=(caller.lang.code()) {
            head { meta charset="utf-8"; title { (status.as_u16()) " · eaibus" } }
            body {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error { (error.to_string()) }
                p { a href="/" { (caller.lang.t("messages")) } }
            }
        }
    };
    html_response(caller, status, body.into_string())
}

/// Runs a page body, turning its error into an error page.
pub fn render(caller: &Caller, result: Result<Response, WebError>) -> Response {
    result.unwrap_or_else(|e| error_page(caller, e))
}
