//! Checkpoints of the SQLite monitor store's WAL, made beside the writer instead of by it.
//!
//! SQLite checkpoints automatically inside the COMMIT that makes the WAL long enough: that
//! COMMIT copies every page written since the last checkpoint back into the database and syncs
//! it, tens of milliseconds during which the store's single writer, and every request waiting
//! on it, stands still. A connection of its own copies the pages back every
//! [`INTERVAL`] instead (a PASSIVE checkpoint, which never waits for the writer or readers), so
//! when the writer's own checkpoint comes due there is little left for it to do.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::SqlitePool;

/// How often the pages written meanwhile are copied back.
const INTERVAL: Duration = Duration::from_millis(50);

/// The checkpointing connection of one store; the loop stops when the store is dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    pool: SqlitePool,
}

impl Checkpointer {
    /// Starts checkpointing the database that `pool` (one connection) opens.
    pub(super) fn start(pool: SqlitePool) -> Arc<Checkpointer> {
        let checkpointer = Arc::new(Checkpointer { pool });
        tokio::spawn(run(Arc::downgrade(&checkpointer)));
        checkpointer
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

async fn run(checkpointer: Weak<Checkpointer>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(checkpointer) = checkpointer.upgrade() else {
            return;
        };
        if checkpointer.pool.is_closed() {
            return;
        }
        // Busy (another checkpoint running) or failed: the next tick, or the writer's own
        // automatic checkpoint, does it.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&checkpointer.pool)
            .await
        {
            tracing::debug!(error = %e, "A checkpoint of the monitor store did not run.");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::monitor::{MonitorStore, NewMessage};

    /// Pages stay in the WAL until a checkpoint copies them into the database file; far fewer
    /// are written here than make the writer checkpoint by itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn written_pages_reach_the_database_file_without_the_writer() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("monitor.db");
        let store = MonitorStore::open_sqlite(&path)
            .await
            .expect("the store opens");
        tokio::time::sleep(super::INTERVAL * 4).await;
        let before = std::fs::metadata(&path).expect("the file").len();
        for n in 0..200 {
            let message = NewMessage {
                raw_payload: vec![b'x'; 4_000],
                ..NewMessage::new(format!("checkpoint-{n}"), "RetailSales")
            };
            store.record_received(&message).await.expect("recorded");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = std::fs::metadata(&path).expect("the file").len();
            // 200 payloads of 4,000 bytes: at least 800 KB more in the file.
            if now >= before + 800_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {now} bytes (from {before}): nothing was checkpointed"
            );
            tokio::time::sleep(super::INTERVAL).await;
        }
        store.close().await;
    }
}
