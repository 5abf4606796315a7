//! What support staff do, the same for pages and API: each action checks its input, acts
//! through the bus, and leaves an audit entry (who, what, when, target).

use serde::{Deserialize, Serialize};

use super::listing::{MAX_FILTER_LEN, reprocessable};
use super::users::User;
use super::{WebError, WebState};
use crate::adapter::{DeParaKey, DeParaPair, DeParaStore};
use crate::monitor::time::format_brasilia;
use crate::monitor::{
    MAX_RESOLUTION_NOTE, NewSyncRun, Resolution, ResolveOutcome, StartedBy, SyncKind, SyncOutcome,
};

/// The most messages one bulk reprocess takes.
pub const MAX_BULK: usize = 500;

/// How a reprocess of one message went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReprocessOutcome {
    pub uuid: String,
    /// The routes sent back to "Aguardando execução".
    pub routes: Vec<String>,
    /// Why nothing was reprocessed, if nothing was.
    pub error: Option<String>,
}

fn check_uuid(uuid: &str) -> Result<(), WebError> {
    if uuid.is_empty() || uuid.len() > MAX_FILTER_LEN {
        return Err(WebError::BadRequest(
            "a UUID has 1 to 200 characters".into(),
        ));
    }
    Ok(())
}

/// Sends every failed, parked or undelivered route of the message back to its route worker.
pub async fn reprocess(state: &WebState, user: &User, uuid: &str) -> Result<Vec<String>, WebError> {
    check_uuid(uuid)?;
    let monitor = &state.bus.monitor;
    if monitor.get(uuid).await?.is_none() {
        return Err(WebError::NotFound(format!("message {uuid}")));
    }
    // A reprocess lifts a resolution; the audit says so.
    let lifted = monitor.resolution(uuid).await?;
    let mut routes = Vec::new();
    for delivery in monitor.deliveries(uuid).await? {
        if reprocessable(delivery.situation) {
            monitor.reset_for_reprocess(uuid, &delivery.route).await?;
            routes.push(delivery.route);
        }
    }
    let db = state.db().await?;
    if routes.is_empty() {
        db.audit(
            Some(user),
            "",
            "message.reprocess.refused",
            uuid,
            "nothing to reprocess",
        )
        .await?;
        return Err(WebError::Conflict(format!(
            "message {uuid} has no failed, blocked or undelivered route to reprocess"
        )));
    }
    let mut detail = routes.join(",");
    if let Some(r) = lifted {
        detail.push_str(&format!(" (lifts the resolution by {})", r.resolved_by));
    }
    db.audit(Some(user), "", "message.reprocess", uuid, &detail)
        .await?;
    Ok(routes)
}

/// Reprocesses each message, recorded as one manual sync run (kind reprocess): a message sent
/// back counts as a success, one with nothing to reprocess as skipped, an unknown one as failed.
pub async fn reprocess_many(
    state: &WebState,
    user: &User,
    uuids: &[String],
) -> Result<Vec<ReprocessOutcome>, WebError> {
    if uuids.is_empty() || uuids.len() > MAX_BULK {
        return Err(WebError::BadRequest(format!(
            "select 1 to {MAX_BULK} messages"
        )));
    }
    let mut run = state
        .bus
        .monitor
        .start_sync_run(&NewSyncRun {
            kind: SyncKind::Reprocess,
            started_by: StartedBy::Manual,
            actor: Some(user.username.clone()),
            scope: format!("{} message(s)", uuids.len()),
        })
        .await?;
    let mut outcomes = Vec::with_capacity(uuids.len());
    for uuid in uuids {
        match reprocess(state, user, uuid).await {
            Ok(routes) => {
                run.count(SyncOutcome::Succeeded);
                outcomes.push(ReprocessOutcome {
                    uuid: uuid.clone(),
                    routes,
                    error: None,
                })
            }
            Err(e @ (WebError::Unavailable(_) | WebError::BadRequest(_))) => {
                let _ = run.abort(&e.to_string()).await;
                return Err(e);
            }
            Err(e) => {
                run.count(if matches!(e, WebError::Conflict(_)) {
                    SyncOutcome::Skipped
                } else {
                    SyncOutcome::Failed
                });
                outcomes.push(ReprocessOutcome {
                    uuid: uuid.clone(),
                    routes: Vec::new(),
                    error: Some(e.to_string()),
                })
            }
        }
    }
    run.finish().await?;
    Ok(outcomes)
}

/// Checks a resolution note: optional, at most [`MAX_RESOLUTION_NOTE`] characters, no control
/// characters but line breaks and tabs.
fn check_note(note: Option<&str>) -> Result<Option<&str>, WebError> {
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_RESOLUTION_NOTE {
        return Err(WebError::BadRequest(format!(
            "a note has at most {MAX_RESOLUTION_NOTE} characters"
        )));
    }
    if note
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(WebError::BadRequest(
            "a note may not hold control characters".into(),
        ));
    }
    Ok(Some(note))
}

/// Marks a message as resolved by hand (kept in the monitor store until it is reprocessed).
pub async fn resolve(
    state: &WebState,
    user: &User,
    uuid: &str,
    note: Option<&str>,
) -> Result<Resolution, WebError> {
    check_uuid(uuid)?;
    let note = check_note(note)?;
    let db = state.db().await?;
    let refused = match state
        .bus
        .monitor
        .resolve(uuid, &user.username, note)
        .await?
    {
        ResolveOutcome::Resolved(resolution) => {
            db.audit(Some(user), "", "message.resolve", uuid, note.unwrap_or(""))
                .await?;
            return Ok(resolution);
        }
        ResolveOutcome::AlreadyResolved(r) => format!(
            "message {uuid} was resolved already by {} at {}",
            r.resolved_by,
            format_brasilia(r.resolved_at)
        ),
        ResolveOutcome::Finished => {
            format!("message {uuid} was delivered; there is nothing to resolve")
        }
    };
    db.audit(Some(user), "", "message.resolve.refused", uuid, &refused)
        .await?;
    Err(WebError::Conflict(refused))
}

/// Records that an admin saw a message's personal data.
pub async fn reveal(state: &WebState, user: &User, uuid: &str, how: &str) -> Result<(), WebError> {
    state
        .db()
        .await?
        .audit(Some(user), "", "message.reveal", uuid, how)
        .await?;
    Ok(())
}

/// A De/Para pair as forms and the API send it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeParaInput {
    pub reference: String,
    pub alias: String,
    pub field: String,
    pub external: String,
    #[serde(default)]
    pub internal: String,
}

impl DeParaInput {
    fn check(&self, with_internal: bool) -> Result<(), WebError> {
        let mut fields = vec![
            ("reference", &self.reference),
            ("alias", &self.alias),
            ("field", &self.field),
            ("external", &self.external),
        ];
        if with_internal {
            fields.push(("internal", &self.internal));
        }
        for (name, value) in fields {
            if value.trim().is_empty() || value.len() > MAX_FILTER_LEN {
                return Err(WebError::BadRequest(format!(
                    "{name} must have 1 to {MAX_FILTER_LEN} characters"
                )));
            }
            if value.chars().any(char::is_control) {
                return Err(WebError::BadRequest(format!(
                    "{name} may not hold control characters"
                )));
            }
        }
        Ok(())
    }

    fn key(&self) -> DeParaKey {
        DeParaKey::new(&self.reference, &self.alias, &self.field, &self.external)
    }
}

/// Adds a pair or changes its internal value; the audit keeps the old value.
pub async fn depara_upsert(
    state: &WebState,
    user: &User,
    input: &DeParaInput,
) -> Result<(), WebError> {
    input.check(true)?;
    let key = input.key();
    let old = state
        .bus
        .depara
        .internal(&key.reference, &key.alias, &key.field, &key.external)
        .await?;
    let pair = DeParaPair::new(
        &input.reference,
        &input.alias,
        &input.field,
        &input.external,
        &input.internal,
    );
    state.bus.depara.upsert(&pair).await?;
    let detail = match old {
        Some(old) => format!("{old} → {}", pair.internal),
        None => format!("(new) → {}", pair.internal),
    };
    state
        .db()
        .await?
        .audit(Some(user), "", "depara.upsert", &key_text(&key), &detail)
        .await?;
    Ok(())
}

pub async fn depara_delete(
    state: &WebState,
    user: &User,
    input: &DeParaInput,
) -> Result<(), WebError> {
    input.check(false)?;
    let key = input.key();
    let old = state
        .bus
        .depara
        .internal(&key.reference, &key.alias, &key.field, &key.external)
        .await?;
    if !state.bus.depara.remove(&key).await? {
        return Err(WebError::NotFound("De/Para pair".into()));
    }
    state
        .db()
        .await?
        .audit(
            Some(user),
            "",
            "depara.delete",
            &key_text(&key),
            &format!("{} → (deleted)", old.unwrap_or_default()),
        )
        .await?;
    Ok(())
}

pub fn key_text(key: &DeParaKey) -> String {
    format!(
        "{}/{}/{}/{}",
        key.reference, key.alias, key.field, key.external
    )
}

/// Loads the adapter table again; an invalid one is refused (with the reason) and the running
/// one stays.
pub async fn reload(state: &WebState, user: &User) -> Result<usize, WebError> {
    let db = state.db().await?;
    match state.bus.reload_adapters() {
        Ok(()) => {
            let count = state.bus.adapter_table().adapters().len();
            db.audit(
                Some(user),
                "",
                "config.reload",
                "adapters",
                &format!("{count} adapters"),
            )
            .await?;
            Ok(count)
        }
        Err(e) => {
            db.audit(
                Some(user),
                "",
                "config.reload.refused",
                "adapters",
                &e.to_string(),
            )
            .await?;
            Err(WebError::Unprocessable(format!(
                "the new adapter table is invalid; the running one stays: {e}"
            )))
        }
    }
}
