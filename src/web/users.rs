//! Users and API tokens with their roles. Passwords and token secrets are stored as argon2id
//! PHC strings; a token reads `eaib_<id>_<secret>` and only its id is stored in clear.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::db::{WebDb, with_pool};
use crate::monitor::time::now_millis;

/// What a user may do: viewers read; operators also reprocess and resolve; admins also edit
/// De/Para and configuration, manage users, read the audit and reveal payloads.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn from_code(code: &str) -> Option<Role> {
        match code.trim() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Someone authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the user store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("there is no user {0:?}")]
    UnknownUser(String),
    #[error("there is no API token {0:?}")]
    UnknownToken(String),
    /// The change would leave the monitor without an active admin, or is refused for another
    /// reason given.
    #[error("{0}")]
    Conflict(String),
    #[error("cannot hash the secret: {0}")]
    Hash(String),
}

/// How long a verified API token is trusted without checking its hash again.
pub const TOKEN_CACHE_MS: i64 = 60_000;

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // getrandom fails only when the OS has no entropy source at all; a fixed buffer then would
    // be a security hole, so fall back to two v4 UUIDs (also OS randomness, another path).
    if getrandom::fill(&mut buffer).is_err() {
        let backup = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        return backup.chars().take(bytes * 2).collect();
    }
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random value of 32 bytes, hex (session ids, CSRF tokens).
pub fn random_token() -> String {
    random_hex(32)
}

pub fn hash_secret(secret: &str) -> Result<String, UserError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_secret(&random_token()).unwrap_or_default())
}

pub fn verify_secret(secret: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Usernames: 1–64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_username(username: &str) -> Result<(), UserError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(
            "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
        ))
    }
}

pub fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(UserError::Invalid(
            "a password has 8 to 1024 characters".into(),
        ));
    }
    Ok(())
}

impl WebDb {
    /// Creates the user or replaces its password and role.
    pub async fn upsert_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(), UserError> {
        check_username(username)?;
        check_password(password)?;
        let hash = hash_secret(password)?;
        let now = now_millis();
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO web_users (username, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (username) DO UPDATE SET \
             password_hash = excluded.password_hash, role = excluded.role, updated_at = excluded.updated_at",
        )
        .bind(username)
        .bind(&hash)
        .bind(role.code())
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The user when the password is theirs.
    pub async fn check_login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, UserError> {
        if check_username(username).is_err() || password.len() > 1024 {
            return Ok(None);
        }
        let row: Option<(String, String)> = with_pool!(self, pool => sqlx::query(
            "SELECT password_hash, role FROM web_users u WHERE username = $1 AND NOT EXISTS \
             (SELECT 1 FROM web_disabled_users d WHERE d.username = u.username)",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))));
        let Some((hash, role)) = row else {
            // Same work as a wrong password, so timing does not tell which users exist.
            let _ = verify_secret(password, dummy_hash());
            return Ok(None);
        };
        if !verify_secret(password, &hash) {
            return Ok(None);
        }
        Ok(Role::from_code(&role).map(|role| User {
            username: username.to_owned(),
            role,
        }))
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>, UserError> {
        let row = with_pool!(self, pool => sqlx::query("SELECT role FROM web_users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?
            .map(|r| r.get::<String, _>(0)));
        Ok(row.and_then(|role| {
            Role::from_code(&role).map(|role| User {
                username: username.to_owned(),
                role,
            })
        }))
    }

    pub async fn users(&self) -> Result<Vec<User>, UserError> {
        let rows: Vec<(String, String)> = with_pool!(self, pool => sqlx::query(
            "SELECT username, role FROM web_users ORDER BY username",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect());
        Ok(rows
            .into_iter()
            .filter_map(|(username, role)| {
                Role::from_code(&role).map(|role| User { username, role })
            })
            .collect())
    }

    /// Issues an API token for `username`; the returned text is shown once and never stored.
    pub async fn create_token(&self, username: &str, name: &str) -> Result<String, UserError> {
        if self.user(username).await?.is_none() {
            return Err(UserError::Invalid(format!("there is no user {username:?}")));
        }
        if self.is_disabled(username).await? {
            return Err(UserError::Conflict(format!(
                "user {username:?} is disabled: enable it before issuing it a token"
            )));
        }
        if name.len() > 200 || name.chars().any(char::is_control) {
            return Err(UserError::Invalid(
                "a token name has at most 200 characters, none of them control characters".into(),
            ));
        }
        let id = random_hex(8);
        let secret = random_hex(32);
        let hash = hash_secret(&secret)?;
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO web_tokens (id, username, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(username)
        .bind(name)
        .bind(&hash)
        .bind(now_millis())
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(format!("eaib_{id}_{secret}"))
    }

    /// The token's user, when the token is valid. A verified token is remembered for
    /// [`TOKEN_CACHE_MS`] (by its SHA-256), so a role change reaches tokens within that time.
    pub async fn check_token(&self, token: &str) -> Result<Option<User>, UserError> {
        use sha2::{Digest, Sha256};
        let digest: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let now = now_millis();
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.retain(|_, (_, until)| *until > now);
            if let Some((user, _)) = cache.get(&digest) {
                return Ok(Some(user.clone()));
            }
        }
        let user = self.verify_token(token).await?;
        if let (Some(user), Ok(mut cache)) = (&user, self.token_cache.lock()) {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(digest, (user.clone(), now + TOKEN_CACHE_MS));
        }
        Ok(user)
    }

    async fn verify_token(&self, token: &str) -> Result<Option<User>, UserError> {
        let Some((id, secret)) = token
            .strip_prefix("eaib_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if id.len() != 16 || secret.len() != 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row: Option<(String, String, String)> = with_pool!(self, pool => sqlx::query(
            "SELECT t.secret_hash, u.username, u.role FROM web_tokens t \
             JOIN web_users u ON u.username = t.username WHERE t.id = $1 AND NOT EXISTS \
             (SELECT 1 FROM web_disabled_users d WHERE d.username = u.username)",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2))));
        let Some((hash, username, role)) = row else {
            return Ok(None);
        };
        if !verify_secret(secret, &hash) {
            return Ok(None);
        }
        Ok(Role::from_code(&role).map(|role| User { username, role }))
    }
}

/// `EAIBUS_ADMIN_USER` / `EAIBUS_ADMIN_PASSWORD`, read at start: creates that admin, or sets its
/// password and role when it exists. Returns the user name when both were set.
pub async fn bootstrap_admin(db: &WebDb) -> Result<Option<String>, UserError> {
    let user = std::env::var("EAIBUS_ADMIN_USER").unwrap_or_default();
    let password = std::env::var("EAIBUS_ADMIN_PASSWORD").unwrap_or_default();
    if user.trim().is_empty() || password.is_empty() {
        return Ok(None);
    }
    db.upsert_user(user.trim(), &password, Role::Admin).await?;
    // The way back in for an admin disabled by mistake: restart with these variables.
    db.set_disabled(user.trim(), None).await?;
    db.clear_login_failures(user.trim()).await?;
    Ok(Some(user.trim().to_owned()))
}
