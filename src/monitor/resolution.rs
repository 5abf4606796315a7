//! "Marcar como resolvido": support staff settle a message by hand — who, when, an optional
//! note. The mark is kept beside the message (table `monitor_resolutions`), shown in the list and
//! the detail, and filterable. It holds until the message is reprocessed: the mark remembers the
//! message's repeated-failures count, which every reprocess raises, so any reprocess (page, API,
//! replay, DLQ redrive) lifts it without the write path knowing about resolutions.

use serde::Serialize;

use super::{Backend, MonitorError, MonitorStore, Situation, postgres, sqlite, time};

/// Longest note kept with a resolution.
pub const MAX_RESOLUTION_NOTE: usize = 1000;

/// Who resolved a message, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub uuid: String,
    pub resolved_by: String,
    /// Milliseconds since the Unix epoch.
    pub resolved_at: i64,
    pub note: Option<String>,
}

/// What [`MonitorStore::resolve`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveOutcome {
    Resolved(Resolution),
    /// It was resolved already (and not reprocessed since): nothing changed.
    AlreadyResolved(Resolution),
    /// A finished (delivered) message needs no resolution: nothing changed.
    Finished,
}

impl MonitorStore {
    /// Marks the message resolved by `by` with an optional `note` (at most
    /// [`MAX_RESOLUTION_NOTE`] characters, cut beyond), and notes it in its timeline.
    pub async fn resolve(
        &self,
        uuid: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<ResolveOutcome, MonitorError> {
        let now = time::now_millis();
        let note: Option<String> = note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.chars().take(MAX_RESOLUTION_NOTE).collect());
        on_backend!(self, resolve(uuid, by, note.as_deref(), now))
    }

    /// The message's resolution while it holds (`None` when never resolved, or reprocessed since).
    pub async fn resolution(&self, uuid: &str) -> Result<Option<Resolution>, MonitorError> {
        on_backend!(self, resolution(uuid))
    }
}

/// The detail a resolution leaves in the message's timeline.
pub(crate) fn timeline_detail(by: &str, note: Option<&str>) -> String {
    match note {
        Some(note) => format!("Marcado como resolvido por {by}: {note}"),
        None => format!("Marcado como resolvido por {by}"),
    }
}

/// Whether a message in `situation` can be resolved.
pub(crate) fn resolvable(situation: Situation) -> bool {
    situation != Situation::Finalizada
}
