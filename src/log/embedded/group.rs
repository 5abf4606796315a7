//! Consumer groups of the embedded log, coordinated in this process: the partitions of each
//! topic are spread round-robin over the live members subscribed to it, and recomputed when a
//! member joins or is dropped. A member keeps its read position for partitions it keeps and
//! starts a newly assigned partition at the group's committed offset (or 0), as a Kafka
//! consumer does after a cooperative rebalance.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::EmbeddedLog;
use crate::log::{Consumer, EventLog, LogError, Position, Record};

/// How stale the known partition ends may get before a fetch reads every partition anyway.
const FOREIGN_APPENDS_SEEN_WITHIN: Duration = Duration::from_millis(250);

type TopicPartition = (String, i32);

/// The groups of one `EmbeddedLog`.
#[derive(Default)]
pub(super) struct Coordinator {
    groups: Mutex<HashMap<String, Arc<Group>>>,
}

impl Coordinator {
    fn group(&self, name: &str) -> Arc<Group> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Group {
                    name: name.to_owned(),
                    state: Mutex::new(GroupState::default()),
                    rebalanced: watch::channel(0).0,
                })
            })
            .clone()
    }
}

struct Group {
    name: String,
    state: Mutex<GroupState>,
    /// The generation, bumped on every rebalance; members wait on it while polling.
    rebalanced: watch::Sender<u64>,
}

#[derive(Default)]
struct GroupState {
    generation: u64,
    next_member: u64,
    members: BTreeMap<u64, Member>,
}

struct Member {
    /// Subscribed topics with their partition counts.
    topics: Vec<(String, i32)>,
    assignment: Vec<TopicPartition>,
}

impl Group {
    // A panic while holding the lock leaves consistent state (assignments are recomputed
    // whole), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn join(&self, topics: Vec<(String, i32)>) -> u64 {
        let mut state = self.lock();
        let id = state.next_member;
        state.next_member += 1;
        state.members.insert(
            id,
            Member {
                topics,
                assignment: Vec::new(),
            },
        );
        self.rebalance(&mut state);
        id
    }

    fn leave(&self, member: u64) {
        let mut state = self.lock();
        if state.members.remove(&member).is_some() {
            self.rebalance(&mut state);
        }
    }

    fn assignment(&self, member: u64) -> (u64, Vec<TopicPartition>) {
        let state = self.lock();
        let assignment = state
            .members
            .get(&member)
            .map(|m| m.assignment.clone())
            .unwrap_or_default();
        (state.generation, assignment)
    }

    fn rebalance(&self, state: &mut GroupState) {
        let mut topics: BTreeMap<&str, (i32, Vec<u64>)> = BTreeMap::new();
        for (id, member) in &state.members {
            for (topic, partitions) in &member.topics {
                topics
                    .entry(topic.as_str())
                    .or_insert((*partitions, Vec::new()))
                    .1
                    .push(*id);
            }
        }
        let mut assignments: HashMap<u64, Vec<TopicPartition>> = HashMap::new();
        for (topic, (partitions, members)) in topics {
            for partition in 0..partitions {
                let member = members[partition as usize % members.len()];
                assignments
                    .entry(member)
                    .or_default()
                    .push((topic.to_owned(), partition));
            }
        }
        for (id, member) in state.members.iter_mut() {
            member.assignment = assignments.remove(id).unwrap_or_default();
        }
        state.generation += 1;
        self.rebalanced.send_replace(state.generation);
        tracing::debug!(group = %self.name, generation = state.generation, members = state.members.len(), "Rebalanced a consumer group of the embedded log.");
    }
}

/// One member of a consumer group of the embedded log; dropping it leaves the group.
pub(super) struct EmbeddedConsumer {
    log: EmbeddedLog,
    group: Arc<Group>,
    member: u64,
    /// The group generation `positions` reflects.
    generation: Option<u64>,
    /// The next offset to read of each assigned partition.
    positions: BTreeMap<TopicPartition, i64>,
    appended: watch::Receiver<u64>,
    rebalanced: watch::Receiver<u64>,
    /// Which partition a poll reads first, rotated so a busy partition cannot starve the rest.
    first: usize,
    /// When every partition was last read regardless of the known ends: another process (the
    /// command line redriving a letter) may append to the file without this one hearing of it.
    full_read_at: Instant,
}

impl EmbeddedConsumer {
    pub(super) fn join(
        log: EmbeddedLog,
        group: &str,
        topics: Vec<(String, i32)>,
    ) -> EmbeddedConsumer {
        let group = log.inner.groups.group(group);
        let appended = log.inner.appended.subscribe();
        let rebalanced = group.rebalanced.subscribe();
        let member = group.join(topics);
        tracing::info!(group = %group.name, member, "A consumer joined a group of the embedded log.");
        EmbeddedConsumer {
            log,
            group,
            member,
            generation: None,
            positions: BTreeMap::new(),
            full_read_at: Instant::now(),
            appended,
            rebalanced,
            first: 0,
        }
    }

    /// Brings `positions` in line with the group's current assignment.
    async fn sync(&mut self) -> Result<(), LogError> {
        let (generation, assignment) = self.group.assignment(self.member);
        if self.generation == Some(generation) {
            return Ok(());
        }
        self.positions.retain(|tp, _| assignment.contains(tp));
        for tp in &assignment {
            if !self.positions.contains_key(tp) {
                let committed = self.log.committed(&self.group.name, &tp.0, tp.1).await?;
                self.positions.insert(tp.clone(), committed.unwrap_or(0));
            }
        }
        self.generation = Some(generation);
        tracing::info!(group = %self.group.name, member = self.member, generation, partitions = ?assignment, "A consumer of the embedded log got its partitions.");
        Ok(())
    }

    async fn fetch(&mut self) -> Result<Vec<Record>, LogError> {
        let max = self.log.inner.max_poll_records;
        let partitions: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let start = self.first % partitions.len();
        self.first = start + 1;
        let trust_ends = self.full_read_at.elapsed() < FOREIGN_APPENDS_SEEN_WITHIN;
        if !trust_ends {
            self.full_read_at = Instant::now();
        }
        let mut records = Vec::new();
        for i in 0..partitions.len() {
            let tp = &partitions[(start + i) % partitions.len()];
            let Some(offset) = self.positions.get(tp).copied() else {
                continue;
            };
            if trust_ends && self.log.inner.ends.nothing_from(&tp.0, tp.1, offset) {
                continue;
            }
            let batch = self
                .log
                .read_unchecked(&tp.0, tp.1, offset, max - records.len())
                .await?;
            if let Some(last) = batch.last() {
                self.positions.insert(tp.clone(), last.offset + 1);
            }
            records.extend(batch);
            if records.len() >= max {
                break;
            }
        }
        Ok(records)
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.group.leave(self.member);
        tracing::info!(group = %self.group.name, member = self.member, "A consumer left a group of the embedded log.");
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Vec<Record>, LogError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Mark both signals seen before looking, so a change after the look wakes us.
            self.appended.borrow_and_update();
            self.rebalanced.borrow_and_update();
            self.sync().await?;
            let records = self.fetch().await?;
            if !records.is_empty() {
                return Ok(records);
            }
            // A closed signal (the log is closing) only means no more wake-ups.
            let appended = async {
                if self.appended.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let rebalanced = async {
                if self.rebalanced.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = appended => {}
                _ = rebalanced => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    async fn commit(&mut self, position: &Position) -> Result<(), LogError> {
        self.commit_all(std::slice::from_ref(position))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    async fn commit_all(&mut self, positions: &[Position]) -> Vec<Result<(), LogError>> {
        let (_, assignment) = self.group.assignment(self.member);
        let mut results: Vec<Option<Result<(), LogError>>> = Vec::with_capacity(positions.len());
        let mut offsets = Vec::new();
        for position in positions {
            if assignment
                .iter()
                .any(|(t, p)| *t == position.topic && *p == position.partition)
            {
                offsets.push((
                    position.topic.clone(),
                    position.partition,
                    position.offset + 1,
                ));
                results.push(None);
            } else {
                // Its new owner resumes from the last commit, so the work is redone, not lost.
                results.push(Some(Err(LogError::Refused(format!(
                    "partition {} of {} is no longer assigned to this consumer",
                    position.partition, position.topic
                )))));
            }
        }
        let mut written = self
            .log
            .commit_offsets(&self.group.name, &offsets)
            .await
            .into_iter();
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| written.next().unwrap_or(Ok(()))))
            .collect()
    }

    async fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), LogError> {
        self.sync().await?;
        match self.positions.get_mut(&(topic.to_owned(), partition)) {
            Some(position) => {
                *position = offset.max(0);
                Ok(())
            }
            None => Err(LogError::Refused(format!(
                "partition {partition} of {topic} is not assigned to this consumer"
            ))),
        }
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.group.assignment(self.member).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_spread_over_members_and_rebalanced() {
        let coordinator = Coordinator::default();
        let group = coordinator.group("g");
        let a = group.join(vec![("t".into(), 4)]);
        assert_eq!(group.assignment(a).1.len(), 4);
        let b = group.join(vec![("t".into(), 4), ("u".into(), 1)]);
        let (_, for_a) = group.assignment(a);
        let (_, for_b) = group.assignment(b);
        assert_eq!(for_a.len(), 2);
        assert_eq!(for_b.len(), 3);
        assert!(for_a.iter().all(|tp| !for_b.contains(tp)));
        group.leave(a);
        assert_eq!(group.assignment(b).1.len(), 5);
    }
}
