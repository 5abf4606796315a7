//! The UUIDs this process appended to the log lately.
//!
//! Ingest records an async message, with the Receipt it will answer, in one write before the
//! append. Until a route has taken the message, that Receipt is only a promise: the append may
//! still fail (the Receipt is then withdrawn) or the process may stop in between. A repeat of
//! the UUID gets the kept Receipt only when the message is known to be in the log; this set
//! says so for what this process appended, so a repeat that follows at once is not appended
//! again. It forgets the oldest UUIDs first; by then a route has taken them.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How many UUIDs are remembered (about 2 MiB): seconds of ingest at full load, far longer than
/// a route takes to pick a message up, and hours at a store's usual rate.
const CAPACITY: usize = 16_384;

#[derive(Debug, Default)]
pub struct Appended {
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Appended {
    /// Notes that `uuid` is in the log.
    pub fn note(&self, uuid: &str) {
        self.note_within(uuid, CAPACITY);
    }

    fn note_within(&self, uuid: &str, capacity: usize) {
        let mut ring = self.lock();
        if !ring.set.insert(uuid.to_owned()) {
            return;
        }
        ring.order.push_back(uuid.to_owned());
        while ring.order.len() > capacity {
            if let Some(oldest) = ring.order.pop_front() {
                ring.set.remove(&oldest);
            }
        }
    }

    pub fn contains(&self, uuid: &str) -> bool {
        self.lock().set.contains(uuid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves a consistent ring: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_uuids_and_forgets_the_oldest() {
        let appended = Appended::default();
        for uuid in ["a", "b", "a", "c"] {
            appended.note_within(uuid, 2);
        }
        assert!(!appended.contains("a"), "the oldest goes first");
        assert!(appended.contains("b") && appended.contains("c"));
        assert!(!appended.contains("d"));
        appended.note_within("d", 2);
        assert!(!appended.contains("b") && appended.contains("c") && appended.contains("d"));
    }
}
