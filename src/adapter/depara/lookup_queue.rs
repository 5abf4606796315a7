//! The De/Para lookups of concurrent messages in one statement.
//!
//! Ingest looks up each message's mapped values before it answers, one round trip to the store
//! per message: under load that is a hand-off to a database connection (its own thread for
//! SQLite, the network for PostgreSQL) for every request. So callers queue their lookups;
//! whoever finds the queue idle starts a drain task that takes everything queued, runs it as one
//! statement, hands each caller its answers and goes on until the queue is empty. A lone lookup
//! is a group of one, so nothing waits for a timer. If a group's statement fails, each caller's
//! lookups run alone, so each gets its own error.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{DeParaError, Lookup};

/// Most lookups in one group; a caller with more runs alone.
pub(super) const MAX_GROUP: usize = 200;

pub(super) type Answers = Result<Vec<Option<String>>, DeParaError>;

/// Runs lookups against the store, answers in the order asked.
pub(super) type Run =
    Arc<dyn Fn(Vec<Lookup>) -> Pin<Box<dyn Future<Output = Answers> + Send>> + Send + Sync>;

struct Request {
    lookups: Vec<Lookup>,
    reply: oneshot::Sender<Answers>,
}

#[derive(Default)]
struct Queue {
    queued: VecDeque<Request>,
    /// A drain task is running and will see what is queued.
    draining: bool,
}

/// The lookup queue of one store, shared by its clones.
#[derive(Clone)]
pub(super) struct LookupQueue {
    state: Arc<Mutex<Queue>>,
    run: Run,
}

impl std::fmt::Debug for LookupQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("LookupQueue")
            .field("queued", &state.queued.len())
            .field("draining", &state.draining)
            .finish()
    }
}

impl LookupQueue {
    pub(super) fn new(run: Run) -> LookupQueue {
        LookupQueue {
            state: Arc::default(),
            run,
        }
    }

    /// Looks `lookups` up, in one statement with those of other callers waiting meanwhile.
    pub(super) async fn lookup_all(&self, lookups: &[Lookup]) -> Answers {
        if lookups.is_empty() {
            return Ok(Vec::new());
        }
        if lookups.len() > MAX_GROUP {
            return (self.run)(lookups.to_vec()).await;
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.state);
            queue.queued.push_back(Request {
                lookups: lookups.to_vec(),
                reply,
            });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            // Made here and moved into the task: should the task be dropped before it runs (its
            // runtime shutting down), the guard still clears `draining`.
            let guard = Draining {
                state: self.state.clone(),
                finished: false,
            };
            tokio::spawn(drain(guard, self.run.clone()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(DeParaError::Unavailable(
                "the De/Para lookups stopped before answering".into(),
            ))
        })
    }
}

fn lock(state: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    // A panic while holding the lock leaves a consistent queue: keep using it.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Clears `draining` if the drain ends early, so that the next caller starts one.
struct Draining {
    state: Arc<Mutex<Queue>>,
    finished: bool,
}

impl Drop for Draining {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = lock(&self.state);
            state.draining = false;
            // Their callers are told the lookups stopped rather than left waiting.
            state.queued.clear();
        }
    }
}

/// Takes queued requests from the front while their lookups fit in one group.
fn take_group(queued: &mut VecDeque<Request>) -> Vec<Request> {
    let mut group = Vec::new();
    let mut size = 0;
    while let Some(next) = queued.front() {
        if !group.is_empty() && size + next.lookups.len() > MAX_GROUP {
            break;
        }
        size += next.lookups.len();
        group.extend(queued.pop_front());
    }
    group
}

async fn drain(mut guard: Draining, run: Run) {
    loop {
        let group = {
            let mut state = lock(&guard.state);
            if state.queued.is_empty() {
                // Cleared under the lock: a request queued after this starts a drain of its own.
                state.draining = false;
                drop(state);
                guard.finished = true;
                return;
            }
            take_group(&mut state.queued)
        };
        answer_group(group, &run).await;
    }
}

async fn answer_group(group: Vec<Request>, run: &Run) {
    if let [_] = group.as_slice() {
        for request in group {
            let answers = run(request.lookups).await;
            let _ = request.reply.send(answers);
        }
        return;
    }
    let all: Vec<Lookup> = group
        .iter()
        .flat_map(|r| r.lookups.iter().cloned())
        .collect();
    let total = all.len();
    match run(all).await {
        Ok(answers) if answers.len() == total => {
            let mut answers = answers.into_iter();
            for request in group {
                let mine = answers.by_ref().take(request.lookups.len()).collect();
                let _ = request.reply.send(Ok(mine));
            }
        }
        outcome => {
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "A group of De/Para lookups failed; each is tried alone.");
            }
            for request in group {
                let answers = run(request.lookups).await;
                let _ = request.reply.send(answers);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn lookup(value: &str) -> Lookup {
        Lookup {
            to_internal: true,
            reference: "OMNI".into(),
            alias: "SA1".into(),
            field: "A1_COD".into(),
            value: value.into(),
        }
    }

    /// A store that answers `value` reversed, unless it is "bad", and counts its statements;
    /// each statement waits a little, so that callers queue up behind it.
    fn reversing(statements: Arc<AtomicUsize>) -> Run {
        Arc::new(move |lookups: Vec<Lookup>| {
            let statements = statements.clone();
            Box::pin(async move {
                statements.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if lookups.iter().any(|l| l.value == "bad") {
                    return Err(DeParaError::Invalid("a bad value".into()));
                }
                Ok(lookups
                    .iter()
                    .map(|l| Some(l.value.chars().rev().collect()))
                    .collect())
            })
        })
    }

    #[tokio::test]
    async fn concurrent_callers_share_a_statement_and_get_their_own_answers() {
        let statements = Arc::new(AtomicUsize::new(0));
        let queue = LookupQueue::new(reversing(statements.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let queue = queue.clone();
            tasks.spawn(async move {
                let asked = [lookup(&format!("a{i}")), lookup(&format!("b{i}"))];
                (i, queue.lookup_all(&asked).await)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, answers) = done.unwrap();
            let reversed = |s: String| Some(s.chars().rev().collect::<String>());
            let expected = vec![reversed(format!("a{i}")), reversed(format!("b{i}"))];
            assert_eq!(answers.unwrap(), expected);
        }
        // The first caller's statement runs alone; the other 49 queue behind it.
        let ran = statements.load(Ordering::SeqCst);
        assert!(ran < 10, "{ran} statements for 50 callers");
    }

    #[tokio::test]
    async fn a_failing_caller_does_not_fail_the_others_of_its_group() {
        let statements = Arc::new(AtomicUsize::new(0));
        let queue = LookupQueue::new(reversing(statements.clone()));
        let first = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.lookup_all(&[lookup("x")]).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (ok, bad) = ([lookup("ok")], [lookup("bad")]);
        let (good, bad) = tokio::join!(queue.lookup_all(&ok), queue.lookup_all(&bad));
        assert_eq!(first.await.unwrap().unwrap(), vec![Some("x".into())]);
        assert_eq!(good.unwrap(), vec![Some("ko".into())]);
        assert!(matches!(bad, Err(DeParaError::Invalid(_))));
        // "x" alone, then "ok" and "bad" together, then each of them again alone.
        assert_eq!(statements.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_group_stops_before_it_would_grow_past_the_limit() {
        let request = |n: usize| Request {
            lookups: vec![lookup("v"); n],
            reply: oneshot::channel().0,
        };
        let mut queued: VecDeque<Request> =
            [request(150), request(40), request(20), request(300)].into();
        let sizes = |g: &[Request]| g.iter().map(|r| r.lookups.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&take_group(&mut queued)), vec![150, 40]);
        assert_eq!(sizes(&take_group(&mut queued)), vec![20]);
        // One caller over the limit is a group of its own.
        assert_eq!(sizes(&take_group(&mut queued)), vec![300]);
        assert!(queued.is_empty());
    }
}
