//! The sync runs of the route workers. A route's consecutive deliveries make one run: it opens
//! when outcomes come in while none is open (the worker picked up work after being idle), takes
//! the outcomes as the executor's passes end, and closes when a pass finds nothing to do (the
//! route drained) or after [`RUN_SPAN`], so a route that never idles still shows runs. What
//! started it is told by the first message of the run: a retry that came due is the schedule;
//! otherwise where the message came in (REST/SOAP: webhook; a topic: kafka).
//!
//! Outcomes are counted in memory and written once per pass, so delivering costs no extra write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::monitor::{
    DeliveryOutcome, MonitorStore, NewSyncRun, StartedBy, SyncCounts, SyncKind, SyncOutcome,
};

/// The longest a delivery run stays open.
pub(crate) const RUN_SPAN: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
struct RouteRun {
    /// The open run: its id and when it opened.
    open: Option<(i64, Instant)>,
    /// Outcomes not written yet.
    pending: SyncCounts,
    /// The first outcome counted while no run was open: (uuid, attempt).
    first: Option<(String, i64)>,
}

/// The runs of every route of this process.
#[derive(Debug)]
pub(crate) struct RouteRuns {
    monitor: MonitorStore,
    routes: Mutex<HashMap<String, RouteRun>>,
}

fn outcome_of(outcome: &DeliveryOutcome) -> SyncOutcome {
    match outcome {
        DeliveryOutcome::Delivered { .. } => SyncOutcome::Succeeded,
        _ => SyncOutcome::Failed,
    }
}

impl RouteRuns {
    pub(crate) fn new(monitor: MonitorStore) -> RouteRuns {
        RouteRuns {
            monitor,
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// Counts how attempt `attempt` of `uuid` along `route` ended.
    pub(crate) fn count(&self, route: &str, uuid: &str, attempt: i64, outcome: &DeliveryOutcome) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        let run = routes.entry(route.to_owned()).or_default();
        run.pending.add(outcome_of(outcome));
        if run.open.is_none() && run.first.is_none() {
            run.first = Some((uuid.to_owned(), attempt));
        }
    }

    /// After a pass of the route's executor (`worked`: it started deliveries): opens, writes to
    /// and closes the route's run as the module notes say.
    pub(crate) async fn after_pass(&self, route: &str, worked: bool) {
        let (pending, open, first) = {
            let Ok(mut routes) = self.routes.lock() else {
                return;
            };
            let Some(run) = routes.get_mut(route) else {
                return;
            };
            let first = if run.open.is_none() {
                run.first.take()
            } else {
                None
            };
            (std::mem::take(&mut run.pending), run.open, first)
        };
        if pending.is_empty() && open.is_none() {
            return;
        }
        let (id, opened) = match open {
            Some(open) => open,
            None => match self.open(route, first.as_ref()).await {
                Some(id) => (id, Instant::now()),
                None => {
                    self.put_back(route, pending, first);
                    return;
                }
            },
        };
        if let Err(e) = self.monitor.add_sync_counts(id, &pending).await {
            warn!(route, error = %e, "The outcomes of a delivery run could not be written.");
            self.put_back(route, pending, None);
        }
        let drained = !worked && pending.is_empty();
        let close = drained || opened.elapsed() >= RUN_SPAN;
        if close && let Err(e) = self.monitor.finish_sync_run(id, None).await {
            warn!(route, error = %e, "A delivery run could not be closed.");
            return;
        }
        if let Ok(mut routes) = self.routes.lock()
            && let Some(run) = routes.get_mut(route)
        {
            run.open = if close { None } else { Some((id, opened)) };
        }
    }

    async fn open(&self, route: &str, first: Option<&(String, i64)>) -> Option<i64> {
        let started_by = match first {
            Some((_, attempt)) if *attempt > 1 => StartedBy::Schedule,
            Some((uuid, _)) => match self.monitor.get(uuid).await {
                Ok(Some(record)) => StartedBy::of_origin(&record.origin),
                _ => StartedBy::Schedule,
            },
            None => StartedBy::Schedule,
        };
        // A live run closes within RUN_SPAN; one open for twice that long belonged to a process
        // that stopped (crashed, killed) before closing it.
        let stale = crate::monitor::time::now_millis() - 2 * RUN_SPAN.as_millis() as i64;
        if let Err(e) = self
            .monitor
            .close_abandoned_sync_runs(SyncKind::Delivery, stale)
            .await
        {
            warn!(route, error = %e, "Abandoned delivery runs could not be closed.");
        }
        let run = NewSyncRun {
            kind: SyncKind::Delivery,
            started_by,
            actor: None,
            scope: route.to_owned(),
        };
        match self.monitor.start_sync_run(&run).await {
            Ok(recorder) => Some(recorder.id()),
            Err(e) => {
                warn!(route, error = %e, "A delivery run could not be opened.");
                None
            }
        }
    }

    fn put_back(&self, route: &str, counts: SyncCounts, first: Option<(String, i64)>) {
        if let Ok(mut routes) = self.routes.lock() {
            let run = routes.entry(route.to_owned()).or_default();
            run.pending.succeeded += counts.succeeded;
            run.pending.failed += counts.failed;
            run.pending.skipped += counts.skipped;
            if run.first.is_none() {
                run.first = first;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{NewMessage, SyncRunFilter, SyncStatus};

    async fn store() -> (tempfile::TempDir, MonitorStore) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = MonitorStore::open_sqlite(dir.path().join("monitor.db"))
            .await
            .expect("the store opens");
        (dir, store)
    }

    async fn runs(store: &MonitorStore) -> Vec<crate::monitor::SyncRun> {
        store
            .sync_runs(&SyncRunFilter::default())
            .await
            .expect("runs")
            .runs
    }

    fn delivered() -> DeliveryOutcome {
        DeliveryOutcome::Delivered {
            response: "ok".into(),
        }
    }

    #[tokio::test]
    async fn consecutive_deliveries_make_one_run_until_the_route_drains() {
        let (_dir, store) = store().await;
        let mut m = NewMessage::new("run-1", "RetailSales");
        m.origin = "rest:/totvseai/standardmessage/v1/transactions".into();
        store.record_received(&m).await.unwrap();
        let tracker = RouteRuns::new(store.clone());

        // Idle passes record nothing.
        tracker.after_pass("protheus", false).await;
        assert!(runs(&store).await.is_empty());

        // Work: a run opens (webhook: the first message came over REST) and stays open.
        tracker.count("protheus", "run-1", 1, &delivered());
        tracker.count(
            "protheus",
            "run-2",
            1,
            &DeliveryOutcome::Parked {
                error: "down".into(),
            },
        );
        tracker.after_pass("protheus", true).await;
        let open = runs(&store).await;
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, SyncStatus::Running);
        assert_eq!(open[0].started_by, StartedBy::Webhook);
        assert_eq!(open[0].scope, "protheus");
        assert_eq!((open[0].succeeded, open[0].failed), (1, 1));

        // More work in the same run, then a pass with nothing to do closes it.
        tracker.count("protheus", "run-3", 1, &delivered());
        tracker.after_pass("protheus", true).await;
        tracker.after_pass("protheus", false).await;
        let closed = runs(&store).await;
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].status, SyncStatus::Partial);
        assert_eq!((closed[0].total, closed[0].succeeded), (3, 2));

        // A retry coming due opens the next run, started by the schedule.
        tracker.count("protheus", "run-2", 2, &delivered());
        tracker.after_pass("protheus", true).await;
        tracker.after_pass("protheus", false).await;
        let all = runs(&store).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].started_by, StartedBy::Schedule);
        assert_eq!(all[0].status, SyncStatus::Success);
    }
}
