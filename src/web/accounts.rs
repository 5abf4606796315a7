//! Users and API tokens as admins manage them (the users page and the API alike): list, create,
//! change a role, disable and enable users; issue, list and revoke tokens. Every change is
//! checked and audited. The monitor always keeps one active admin: the last one cannot be
//! demoted or disabled, and no admin disables themself.

use serde::Serialize;
use sqlx::Row;

use super::db::{WebDb, with_pool};
use super::users::{Role, User, UserError, check_password, check_username};
use super::{WebError, WebState};
use crate::monitor::time::now_millis;

/// A user as the users page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    /// ms since the Unix epoch.
    pub created_at: i64,
}

/// An API token without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The public part of the token (`eaib_<id>_…`).
    pub id: String,
    /// The user it acts as.
    pub username: String,
    /// What it is for.
    pub name: String,
    /// ms since the Unix epoch.
    pub created_at: i64,
}

impl WebDb {
    /// Every user with its role and whether it is disabled, by name.
    pub async fn user_list(&self) -> Result<Vec<UserInfo>, UserError> {
        let rows: Vec<(String, String, i64, bool)> = with_pool!(self, pool => sqlx::query(
            "SELECT u.username, u.role, u.created_at, \
             CASE WHEN d.username IS NULL THEN 0 ELSE 1 END \
             FROM web_users u LEFT JOIN web_disabled_users d ON d.username = u.username \
             ORDER BY u.username",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<i64, _>(2), r.get::<i32, _>(3) == 1))
        .collect());
        Ok(rows
            .into_iter()
            .filter_map(|(username, role, created_at, disabled)| {
                Role::from_code(&role).map(|role| UserInfo {
                    username,
                    role,
                    disabled,
                    created_at,
                })
            })
            .collect())
    }

    /// Creates a user; a name taken already is a conflict (the API's `POST /users` replaces).
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(), UserError> {
        check_username(username)?;
        check_password(password)?;
        if self.user(username).await?.is_some() {
            return Err(UserError::Conflict(format!(
                "user {username:?} exists already"
            )));
        }
        self.upsert_user(username, password, role).await
    }

    pub async fn is_disabled(&self, username: &str) -> Result<bool, UserError> {
        let found = with_pool!(self, pool => sqlx::query(
            "SELECT 1 FROM web_disabled_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?
        .is_some());
        Ok(found)
    }

    /// Active admins other than `except`.
    async fn other_active_admins(&self, except: &str) -> Result<i64, UserError> {
        let n = with_pool!(self, pool => sqlx::query(
            "SELECT COUNT(*) FROM web_users u WHERE u.role = 'admin' AND u.username <> $1 \
             AND NOT EXISTS (SELECT 1 FROM web_disabled_users d WHERE d.username = u.username)",
        )
        .bind(except)
        .fetch_one(pool)
        .await?
        .get::<i64, _>(0));
        Ok(n)
    }

    /// Forgets the verified tokens, so that a role change, a disabled user or a revoked token
    /// takes effect at once in this process.
    fn forget_tokens(&self) {
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.clear();
        }
    }

    /// Changes a user's role; the last active admin keeps theirs.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<Role, UserError> {
        let Some(user) = self.user(username).await? else {
            return Err(UserError::UnknownUser(username.to_owned()));
        };
        if user.role == Role::Admin
            && role != Role::Admin
            && !self.is_disabled(username).await?
            && self.other_active_admins(username).await? == 0
        {
            return Err(UserError::Conflict(
                "the last active admin keeps the admin role".into(),
            ));
        }
        with_pool!(self, pool => sqlx::query(
            "UPDATE web_users SET role = $2, updated_at = $3 WHERE username = $1",
        )
        .bind(username)
        .bind(role.code())
        .bind(now_millis())
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        self.forget_tokens();
        Ok(user.role)
    }

    /// Disables the user (`by`: who) or, with `None`, enables it. Disabling ends its sessions;
    /// its tokens stop working. The last active admin is not disabled.
    pub async fn set_disabled(&self, username: &str, by: Option<&str>) -> Result<(), UserError> {
        let Some(user) = self.user(username).await? else {
            return Err(UserError::UnknownUser(username.to_owned()));
        };
        match by {
            Some(by) => {
                if user.role == Role::Admin && self.other_active_admins(username).await? == 0 {
                    return Err(UserError::Conflict(
                        "the last active admin cannot be disabled".into(),
                    ));
                }
                with_pool!(self, pool => sqlx::query(
                    "INSERT INTO web_disabled_users (username, disabled_at, disabled_by) \
                     VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING",
                )
                .bind(username)
                .bind(now_millis())
                .bind(by)
                .execute(pool)
                .await.map(|r| r.rows_affected()))?;
                with_pool!(self, pool => sqlx::query("DELETE FROM web_sessions WHERE username = $1")
                    .bind(username)
                    .execute(pool)
                    .await.map(|r| r.rows_affected()))?;
            }
            None => {
                with_pool!(self, pool => sqlx::query("DELETE FROM web_disabled_users WHERE username = $1")
                    .bind(username)
                    .execute(pool)
                    .await.map(|r| r.rows_affected()))?;
            }
        }
        self.forget_tokens();
        Ok(())
    }

    /// Every API token, newest first (never their secrets: only hashes are stored).
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, UserError> {
        let tokens = with_pool!(self, pool => sqlx::query(
            "SELECT id, username, name, created_at FROM web_tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| TokenInfo {
            id: r.get(0),
            username: r.get(1),
            name: r.get(2),
            created_at: r.get(3),
        })
        .collect());
        Ok(tokens)
    }

    /// Revokes a token; returns whom it acted as.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, UserError> {
        let Some(token) = self.tokens().await?.into_iter().find(|t| t.id == id) else {
            return Err(UserError::UnknownToken(id.to_owned()));
        };
        with_pool!(self, pool => sqlx::query("DELETE FROM web_tokens WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        self.forget_tokens();
        Ok(token)
    }
}

/// A token id as issued: 16 hex digits.
fn check_token_id(id: &str) -> Result<(), WebError> {
    if id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(WebError::BadRequest("a token id is 16 hex digits".into()))
    }
}

fn role_of(text: &str) -> Result<Role, WebError> {
    Role::from_code(text)
        .ok_or_else(|| WebError::BadRequest("role is viewer, operator or admin".into()))
}

/// Creates a user (refused when the name is taken).
pub async fn create_user(
    state: &WebState,
    admin: &User,
    username: &str,
    password: &str,
    role: &str,
) -> Result<(), WebError> {
    let role = role_of(role)?;
    let db = state.db().await?;
    db.create_user(username.trim(), password, role).await?;
    db.audit(Some(admin), "", "user.create", username.trim(), role.code())
        .await?;
    Ok(())
}

pub async fn change_role(
    state: &WebState,
    admin: &User,
    username: &str,
    role: &str,
) -> Result<(), WebError> {
    check_username(username)?;
    let role = role_of(role)?;
    let db = state.db().await?;
    match db.set_role(username, role).await {
        Ok(old) => {
            let detail = format!("{} → {}", old.code(), role.code());
            db.audit(Some(admin), "", "user.role", username, &detail)
                .await?;
            Ok(())
        }
        Err(e) => {
            db.audit(
                Some(admin),
                "",
                "user.role.refused",
                username,
                &e.to_string(),
            )
            .await?;
            Err(e.into())
        }
    }
}

/// Disables (`disable`) or enables a user. Nobody disables themself.
pub async fn set_disabled(
    state: &WebState,
    admin: &User,
    username: &str,
    disable: bool,
) -> Result<(), WebError> {
    check_username(username)?;
    let db = state.db().await?;
    let action = if disable {
        "user.disable"
    } else {
        "user.enable"
    };
    let result = if disable && username == admin.username {
        Err(UserError::Conflict("you cannot disable yourself".into()))
    } else {
        db.set_disabled(username, disable.then_some(admin.username.as_str()))
            .await
    };
    match result {
        Ok(()) => {
            db.audit(Some(admin), "", action, username, "").await?;
            Ok(())
        }
        Err(e) => {
            db.audit(
                Some(admin),
                "",
                &format!("{action}.refused"),
                username,
                &e.to_string(),
            )
            .await?;
            Err(e.into())
        }
    }
}

/// Issues a token for `username`; the returned text is shown once.
pub async fn create_token(
    state: &WebState,
    admin: &User,
    username: &str,
    name: &str,
) -> Result<String, WebError> {
    check_username(username.trim())?;
    let db = state.db().await?;
    let token = db.create_token(username.trim(), name.trim()).await?;
    db.audit(
        Some(admin),
        "",
        "token.create",
        username.trim(),
        name.trim(),
    )
    .await?;
    Ok(token)
}

pub async fn revoke_token(state: &WebState, admin: &User, id: &str) -> Result<(), WebError> {
    check_token_id(id)?;
    let db = state.db().await?;
    let token = db.revoke_token(id).await?;
    db.audit(
        Some(admin),
        "",
        "token.revoke",
        &token.username,
        &format!("{} ({})", token.id, token.name),
    )
    .await?;
    Ok(())
}
