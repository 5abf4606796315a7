//! The users and tokens page (admins): users with their roles, create a user, change a role,
//! disable or enable; API tokens, create one (its secret shown once) and revoke. Every form
//! carries the CSRF token; every change is audited (see `accounts`).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{page, render};
use super::messages::encode;
use crate::monitor::time::format_brasilia;
use crate::web::accounts;
use crate::web::caller::Caller;
use crate::web::i18n::Lang;
use crate::web::{Role, Shared, WebError, WebState};

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

async fn listing(state: &WebState, caller: &Caller, lang: Lang) -> Result<Markup, WebError> {
    let db = state.db().await?;
    let users = db.user_list().await?;
    let tokens = db.tokens().await?;
    let csrf = caller.session_csrf.clone().unwrap_or_default();
    Ok(html! {
        table #users {
            thead { tr { th { (lang.t("username")) } th { (lang.t("role")) } th { (lang.t("status")) }
                th { (lang.t("created_at")) } th { (lang.t("actions")) } } }
            tbody { @for u in &users {
                @let base = format!("/users/{}", encode(&u.username));
                tr.user data-username=(u.username) {
                    td { (u.username) }
                    td { form.inline.role method="post" action={ (base) "/role" } {
                        input type="hidden" name="csrf" value=(csrf);
                        select name="role" { @for r in ROLES {
                            option value=(r.code()) selected[u.role == r] { (r.code()) }
                        } }
                        button type="submit" { (lang.t("change_role")) }
                    } }
                    td.state { @if u.disabled { (lang.t("disabled")) } @else { (lang.t("active")) } }
                    td { (format_brasilia(u.created_at)) }
                    td { @if u.disabled {
                        form.inline.enable method="post" action={ (base) "/enable" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { (lang.t("enable")) }
                        }
                    } @else {
                        form.inline.disable method="post" action={ (base) "/disable" }
                            onsubmit="return confirm(this.dataset.confirm)" data-confirm=(lang.t("confirm_disable")) {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { (lang.t("disable")) }
                        }
                    } }
                }
            } }
        }
        h2 { (lang.t("create_user")) }
        form #user-create method="post" action="/users" {
            input type="hidden" name="csrf" value=(csrf);
            input #new-username name="username" placeholder=(lang.t("username")) maxlength="64" required;
            input #new-password name="password" type="password" placeholder=(lang.t("password")) minlength="8" maxlength="1024" required;
            select #new-role name="role" { @for r in ROLES { option value=(r.code()) { (r.code()) } } }
            button type="submit" { (lang.t("save")) }
        }
        h2 { (lang.t("tokens")) }
        table #tokens {
            thead { tr { th { "Id" } th { (lang.t("username")) } th { (lang.t("token_name")) }
                th { (lang.t("created_at")) } th { (lang.t("actions")) } } }
            tbody {
                @if tokens.is_empty() { tr { td colspan="5" { (lang.t("none")) } } }
                @for t in &tokens { tr.token data-id=(t.id) {
                    td { code { "eaib_" (t.id) "_…" } } td { (t.username) } td { (t.name) }
                    td { (format_brasilia(t.created_at)) }
                    td { form.inline.revoke method="post" action={ "/tokens/" (t.id) "/revoke" }
                        onsubmit="return confirm(this.dataset.confirm)" data-confirm=(lang.t("confirm_revoke")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (lang.t("revoke")) }
                    } }
                } }
            }
        }
        h2 { (lang.t("create_token")) }
        form #token-create method="post" action="/tokens" {
            input type="hidden" name="csrf" value=(csrf);
            select #token-user name="username" { @for u in users.iter().filter(|u| !u.disabled) {
                option value=(u.username) { (u.username) " (" (u.role.code()) ")" }
            } }
            input #token-name name="name" placeholder=(lang.t("token_name")) maxlength="200" required;
            button type="submit" { (lang.t("save")) }
        }
    })
}

pub async fn show(State(state): State<Shared>, caller: Caller) -> Response {
    let result = async {
        caller.require(Role::Admin)?;
        let lang = caller.lang;
        let content = listing(&state, &caller, lang).await?;
        Ok(page(&caller, lang.t("users"), content))
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

fn back() -> Response {
    Redirect::to("/users").into_response()
}

pub async fn create(
    State(state): State<Shared>,
    caller: Caller,
    Form(input): Form<NewUserForm>,
) -> Response {
    let result = async {
        let admin = caller.require_form(Role::Admin, &input.csrf)?;
        accounts::create_user(&state, admin, &input.username, &input.password, &input.role).await?;
        Ok(back())
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

pub async fn role(
    State(state): State<Shared>,
    caller: Caller,
    Path(username): Path<String>,
    Form(input): Form<RoleForm>,
) -> Response {
    let result = async {
        let admin = caller.require_form(Role::Admin, &input.csrf)?;
        accounts::change_role(&state, admin, &username, &input.role).await?;
        Ok(back())
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn disable(
    State(state): State<Shared>,
    caller: Caller,
    Path(username): Path<String>,
    Form(input): Form<CsrfForm>,
) -> Response {
    let result = async {
        let admin = caller.require_form(Role::Admin, &input.csrf)?;
        accounts::set_disabled(&state, admin, &username, true).await?;
        Ok(back())
    }
    .await;
    render(&caller, result)
}

pub async fn enable(
    State(state): State<Shared>,
    caller: Caller,
    Path(username): Path<String>,
    Form(input): Form<CsrfForm>,
) -> Response {
    let result = async {
        let admin = caller.require_form(Role::Admin, &input.csrf)?;
        accounts::set_disabled(&state, admin, &username, false).await?;
        Ok(back())
    }
    .await;
    render(&caller, result)
}

#[derive(Debug, Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
}

/// Issues a token and shows it once; it is not kept anywhere in clear.
pub async fn create_token(
    State(state): State<Shared>,
    caller: Caller,
    Form(input): Form<NewTokenForm>,
) -> Response {
    let result = async {
        let admin = caller.require_form(Role::Admin, &input.csrf)?;
        let token = accounts::create_token(&state, admin, &input.username, &input.name).await?;
        let lang = caller.lang;
        let content = html! {
            p.flash { (lang.t("token_once")) }
            pre #new-token { (token) }
            p { a href="/users" { (lang.t("users")) } }
        };
        let mut response = page(&caller, lang.t("create_token"), content);
        response.headers_mut().insert(
            axum::http::header::REFERRER_POLICY,
            axum::http::HeaderValue::from_static("no-referrer"),
        );
        Ok(response)
    }
    .await;
    render(&caller, result)
}

pub async fn revoke_token(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Form(input): Form<CsrfForm>,
) -> Response {
    let result = async {
        let admin = caller.require_form(Role::Admin, &input.csrf)?;
        accounts::revoke_token(&state, admin, &id).await?;
        Ok(back())
    }
    .await;
    render(&caller, result)
}
