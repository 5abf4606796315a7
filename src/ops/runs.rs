//! The operations of the command line as sync runs: a DLQ redrive and a replay each leave one
//! manual run in the monitor's sync logs, with their outcomes counted. Dry runs change nothing
//! and leave none. The operations themselves (`ops::dlq`, `order::replay`) know nothing of runs:
//! these wrappers are what the commands call.

use super::OpsError;
use super::dlq::{self, Decision, Outcome, Redriven, Selection};
use crate::bus::Bus;
use crate::monitor::{NewSyncRun, StartedBy, SyncCounts, SyncKind, SyncOutcome};
use crate::order::replay::{self, ReplayError, ReplayRequest, ReplaySummary};

/// Who runs the command, as the system knows them.
fn operator() -> Option<String> {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| format!("cli:{}", u.trim()))
        .or_else(|| Some("cli".to_owned()))
}

fn manual(kind: SyncKind, scope: String) -> NewSyncRun {
    NewSyncRun {
        kind,
        started_by: StartedBy::Manual,
        actor: operator(),
        scope,
    }
}

/// How one redriven chain counts: taken back is a success; left alone because it was resolved
/// or is waiting already is skipped; anything else (refused again, guarded, impossible) failed.
pub fn redrive_outcome(redriven: &Redriven) -> SyncOutcome {
    if redriven.outcome.succeeded() {
        SyncOutcome::Succeeded
    } else if redriven.outcome == Outcome::NotRedriven
        && matches!(
            redriven.candidate.decision,
            Decision::Resolved(_) | Decision::Waiting(_)
        )
    {
        SyncOutcome::Skipped
    } else {
        SyncOutcome::Failed
    }
}

fn selection_text(selection: &Selection) -> String {
    let mut parts = vec!["DLQ".to_owned()];
    if !selection.uuids.is_empty() {
        parts.push(format!("{} UUID(s)", selection.uuids.len()));
    }
    if let Some(reason) = &selection.reason_contains {
        parts.push(format!("reason ~ {reason}"));
    }
    if let Some(since) = selection.since_ms {
        parts.push(format!(
            "since {}",
            crate::monitor::time::format_brasilia(since)
        ));
    }
    parts.join(", ")
}

/// [`dlq::redrive`], recorded as a manual run of kind redrive.
pub async fn redrive(bus: &Bus, selection: &Selection) -> Result<Vec<Redriven>, OpsError> {
    let mut run = bus
        .monitor
        .start_sync_run(&manual(SyncKind::Redrive, selection_text(selection)))
        .await?;
    match dlq::redrive(bus, selection).await {
        Ok(results) => {
            for result in &results {
                run.count(redrive_outcome(result));
            }
            run.finish().await?;
            Ok(results)
        }
        Err(e) => {
            let _ = run.abort(&e.to_string()).await;
            Err(e)
        }
    }
}

/// What a replay counts: a route replay succeeded for what it planned, reset or sends again,
/// skipped what was waiting, not for the route or not a business message, failed its errors; a
/// group replay moved the group back over every record of the window.
pub fn replay_counts(summary: &ReplaySummary) -> SyncCounts {
    let records = i64::try_from(summary.records).unwrap_or(i64::MAX);
    if !summary.target.starts_with("route") {
        return SyncCounts {
            succeeded: records,
            ..SyncCounts::default()
        };
    }
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    SyncCounts {
        succeeded: n(summary.planned) + n(summary.reset) + n(summary.resent),
        failed: i64::try_from(summary.errors.len()).unwrap_or(i64::MAX),
        skipped: n(summary.already_waiting) + n(summary.not_for_route) + n(summary.skipped),
    }
}

/// [`replay::replay`], recorded as a manual run of kind replay (dry runs are not recorded).
/// Whoever replays from elsewhere records the same way: start a run, count the summary, finish.
pub async fn replay(
    bus: &Bus,
    request: ReplayRequest,
    progress: bool,
) -> Result<ReplaySummary, ReplayError> {
    if request.dry_run {
        return replay::replay(bus, request, progress).await;
    }
    let scope = format!("{} → {}", request.topic, request.target);
    let mut run = bus
        .monitor
        .start_sync_run(&manual(SyncKind::Replay, scope))
        .await?;
    match replay::replay(bus, request, progress).await {
        Ok(summary) => {
            run.count_all(replay_counts(&summary));
            run.finish().await?;
            Ok(summary)
        }
        Err(e) => {
            let _ = run.abort(&e.to_string()).await;
            Err(e)
        }
    }
}
