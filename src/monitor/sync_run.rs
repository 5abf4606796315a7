//! Sync logs: one record per delivery run, reprocess, redrive or replay — how many messages it
//! took, how many succeeded, failed or were skipped, how it ended, how long it took, and what
//! started it. The recorder is small: [`MonitorStore::start_sync_run`] opens a run, the
//! [`SyncRecorder`] counts outcomes (in memory, written on [`SyncRecorder::flush`]) and
//! [`SyncRecorder::finish`] closes it with its final status.

use serde::Serialize;

use super::{Backend, MonitorError, MonitorStore, postgres, sqlite, time};

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// A route worker delivering what came in (or came due).
    Delivery,
    /// Messages sent back to their route workers by hand (bulk reprocess).
    Reprocess,
    /// Dead letters sent back to where they failed.
    Redrive,
    /// A window of a topic delivered again.
    Replay,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartedBy {
    /// Retries coming due, or work whose source cannot be told.
    Schedule,
    /// Someone: a page, the API or a command.
    Manual,
    /// Messages that came in over REST or SOAP.
    Webhook,
    /// Messages read from a Kafka topic.
    Kafka,
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Running,
    /// Nothing failed.
    Success,
    /// Some succeeded, some failed.
    Partial,
    /// Everything it tried failed, or the run itself could not go on.
    Error,
}

macro_rules! codes {
    ($type:ident { $($variant:ident = $code:literal),* $(,)? }) => {
        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),*];

            /// The stable storage code.
            pub fn code(self) -> &'static str {
                match self { $($type::$variant => $code),* }
            }

            pub fn from_code(code: &str) -> Option<$type> {
                match code { $($code => Some($type::$variant),)* _ => None }
            }
        }
    };
}

codes!(SyncKind { Delivery = "delivery", Reprocess = "reprocess", Redrive = "redrive", Replay = "replay" });
codes!(StartedBy { Schedule = "schedule", Manual = "manual", Webhook = "webhook", Kafka = "kafka" });
codes!(SyncStatus { Running = "running", Success = "success", Partial = "partial", Error = "error" });

impl StartedBy {
    /// What brought a message in, from the origin ingest recorded: `rest:` and `soap:` are the
    /// HTTP endpoints (webhook), `topic/partition/offset` a Kafka topic; anything else (a
    /// replay, nothing recorded) is the schedule.
    pub fn of_origin(origin: &str) -> StartedBy {
        if origin.starts_with("rest:") || origin.starts_with("soap:") {
            StartedBy::Webhook
        } else if !origin.contains(':') && origin.split('/').count() >= 3 {
            StartedBy::Kafka
        } else {
            StartedBy::Schedule
        }
    }
}

/// A run about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSyncRun {
    pub kind: SyncKind,
    pub started_by: StartedBy,
    /// Who started a manual run.
    pub actor: Option<String>,
    /// What it works on: a route, `topic → route`, a DLQ selection…
    pub scope: String,
}

/// Outcomes counted, added to a run's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl SyncCounts {
    pub fn is_empty(&self) -> bool {
        self.succeeded == 0 && self.failed == 0 && self.skipped == 0
    }

    pub fn total(&self) -> i64 {
        self.succeeded + self.failed + self.skipped
    }

    pub fn add(&mut self, outcome: SyncOutcome) {
        match outcome {
            SyncOutcome::Succeeded => self.succeeded += 1,
            SyncOutcome::Failed => self.failed += 1,
            SyncOutcome::Skipped => self.skipped += 1,
        }
    }
}

/// How one item of a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded,
    Failed,
    Skipped,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRun {
    pub id: i64,
    pub kind: SyncKind,
    pub started_by: StartedBy,
    pub actor: Option<String>,
    pub scope: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    pub status: SyncStatus,
    /// Why a run ended in error as a whole, or a note.
    pub detail: Option<String>,
}

impl SyncRun {
    /// How long it took, or has been running at `now`.
    pub fn duration_ms(&self, now: i64) -> i64 {
        self.finished_at
            .unwrap_or(now)
            .saturating_sub(self.started_at)
            .max(0)
    }
}

/// Which runs to list. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRunFilter {
    pub kind: Option<SyncKind>,
    pub started_by: Option<StartedBy>,
    pub status: Option<SyncStatus>,
    /// 1-based; 0 is read as 1.
    pub page: u32,
    /// 0 means 50; at most 500.
    pub page_size: u32,
}

impl SyncRunFilter {
    pub fn effective_page(&self) -> u32 {
        self.page.max(1)
    }

    pub fn effective_page_size(&self) -> u32 {
        match self.page_size {
            0 => 50,
            n => n.min(500),
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRunPage {
    pub runs: Vec<SyncRun>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

/// The status a finished run gets from its counts.
pub fn final_status(counts: &SyncCounts, aborted: bool) -> SyncStatus {
    if aborted || (counts.failed > 0 && counts.succeeded == 0) {
        SyncStatus::Error
    } else if counts.failed > 0 {
        SyncStatus::Partial
    } else {
        SyncStatus::Success
    }
}

impl MonitorStore {
    /// Opens a run (status running) and returns its recorder.
    pub async fn start_sync_run(&self, run: &NewSyncRun) -> Result<SyncRecorder, MonitorError> {
        let now = time::now_millis();
        let id = on_backend!(self, insert_sync_run(run, now))?;
        Ok(SyncRecorder {
            store: self.clone(),
            id,
            pending: SyncCounts::default(),
        })
    }

    /// Adds outcomes to a running run's counts.
    pub async fn add_sync_counts(&self, id: i64, counts: &SyncCounts) -> Result<(), MonitorError> {
        if counts.is_empty() {
            return Ok(());
        }
        on_backend!(self, add_sync_counts(id, counts))
    }

    /// Closes a run: success, partial or error from its counts; error when `error` says why it
    /// stopped. A run closed already stays as it was.
    pub async fn finish_sync_run(
        &self,
        id: i64,
        error: Option<&str>,
    ) -> Result<Option<SyncRun>, MonitorError> {
        let now = time::now_millis();
        on_backend!(self, finish_sync_run(id, error, now))
    }

    /// Closes, in error, the runs of `kind` still running that started before `before` (ms):
    /// their process stopped before it could close them. Returns how many it closed.
    pub async fn close_abandoned_sync_runs(
        &self,
        kind: SyncKind,
        before: i64,
    ) -> Result<u64, MonitorError> {
        let now = time::now_millis();
        on_backend!(self, close_abandoned_sync_runs(kind, before, now))
    }

    pub async fn sync_run(&self, id: i64) -> Result<Option<SyncRun>, MonitorError> {
        on_backend!(self, sync_run(id))
    }

    /// One page of runs matching `filter`, newest first, with the total count.
    pub async fn sync_runs(&self, filter: &SyncRunFilter) -> Result<SyncRunPage, MonitorError> {
        on_backend!(self, sync_runs(filter))
    }
}

/// Counts the outcomes of one run and closes it.
#[derive(Debug)]
pub struct SyncRecorder {
    store: MonitorStore,
    id: i64,
    pending: SyncCounts,
}

impl SyncRecorder {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Counts one outcome (kept in memory until [`SyncRecorder::flush`] or the finish).
    pub fn count(&mut self, outcome: SyncOutcome) {
        self.pending.add(outcome);
    }

    /// Counts several outcomes at once.
    pub fn count_all(&mut self, counts: SyncCounts) {
        self.pending.succeeded += counts.succeeded;
        self.pending.failed += counts.failed;
        self.pending.skipped += counts.skipped;
    }

    /// Writes the outcomes counted since the last flush.
    pub async fn flush(&mut self) -> Result<(), MonitorError> {
        let counts = std::mem::take(&mut self.pending);
        if let Err(e) = self.store.add_sync_counts(self.id, &counts).await {
            self.count_all(counts);
            return Err(e);
        }
        Ok(())
    }

    /// Writes what is counted and closes the run with the status its counts give.
    pub async fn finish(mut self) -> Result<Option<SyncRun>, MonitorError> {
        self.flush().await?;
        self.store.finish_sync_run(self.id, None).await
    }

    /// Writes what is counted and closes the run in error, saying why it stopped.
    pub async fn abort(mut self, error: &str) -> Result<Option<SyncRun>, MonitorError> {
        self.flush().await?;
        self.store.finish_sync_run(self.id, Some(error)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_tell_what_started_the_work() {
        assert_eq!(
            StartedBy::of_origin("rest:/totvseai/standardmessage/v1/transactions"),
            StartedBy::Webhook
        );
        assert_eq!(
            StartedBy::of_origin("soap:/EAISERVICE.apw"),
            StartedBy::Webhook
        );
        assert_eq!(StartedBy::of_origin("erp.sales/0/42"), StartedBy::Kafka);
        assert_eq!(
            StartedBy::of_origin("replay:eai.retailsales/0/1"),
            StartedBy::Schedule
        );
        assert_eq!(StartedBy::of_origin(""), StartedBy::Schedule);
    }

    #[test]
    fn the_counts_decide_the_final_status() {
        let counts = |succeeded, failed| SyncCounts {
            succeeded,
            failed,
            skipped: 1,
        };
        assert_eq!(final_status(&counts(3, 0), false), SyncStatus::Success);
        assert_eq!(final_status(&counts(0, 0), false), SyncStatus::Success);
        assert_eq!(final_status(&counts(2, 1), false), SyncStatus::Partial);
        assert_eq!(final_status(&counts(0, 2), false), SyncStatus::Error);
        assert_eq!(final_status(&counts(5, 0), true), SyncStatus::Error);
        for s in SyncStatus::ALL {
            assert_eq!(SyncStatus::from_code(s.code()), Some(*s));
        }
    }
}
