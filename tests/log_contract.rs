//! One contract for every `EventLog` backend: each test is written once against `&dyn EventLog`
//! and run against the embedded SQLite log and against Kafka.
//!
//! Kafka tests use the broker at `EAIBUS_TEST_KAFKA` (`deploy/local/test.sh` starts one); when
//! it is unset they are skipped with a note, except under `CI=true`, where they fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eaibus::log::embedded::EmbeddedLog;
use eaibus::log::kafka::{KafkaConfig, KafkaLog};
use eaibus::log::partitioner::partition_for_key;
use eaibus::log::{Consumer, EventLog, NewRecord, Position, Record};

/// How long a test waits for records or a rebalance before failing. Kafka group joins take a
/// few seconds; the embedded log answers at once.
const PATIENCE: Duration = Duration::from_secs(30);

/// Opens a backend, as often as a test needs (a restart opens it twice).
enum Backend {
    Embedded {
        _dir: tempfile::TempDir,
        file: PathBuf,
    },
    Kafka {
        brokers: String,
    },
}

impl Backend {
    fn embedded() -> Backend {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("log.sqlite");
        Backend::Embedded { _dir: dir, file }
    }

    /// The broker from EAIBUS_TEST_KAFKA; None (skip) when unset, a failure under CI=true.
    fn kafka(test: &str) -> Option<Backend> {
        match std::env::var("EAIBUS_TEST_KAFKA") {
            Ok(brokers) if !brokers.is_empty() => Some(Backend::Kafka { brokers }),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!(
                    "EAIBUS_TEST_KAFKA is not set under CI=true; start the broker (deploy/local/broker.sh start)"
                )
            }
            _ => {
                eprintln!(
                    "note: skipping kafka::{test}: EAIBUS_TEST_KAFKA is not set (deploy/local/test.sh sets it)"
                );
                None
            }
        }
    }

    async fn open(&self) -> Box<dyn EventLog> {
        match self {
            Backend::Embedded { file, .. } => Box::new(
                EmbeddedLog::open(file)
                    .await
                    .expect("the embedded log opens"),
            ),
            Backend::Kafka { brokers } => {
                // tansu answers a fetch only when its wait time is over, and group members
                // notice a rebalance at their next heartbeat: short ones keep the tests fast.
                let mut config = KafkaConfig::new(brokers);
                for (name, value) in [
                    ("fetch.wait.max.ms", "50"),
                    ("heartbeat.interval.ms", "250"),
                ] {
                    config.consumer_properties.insert(name.into(), value.into());
                }
                Box::new(KafkaLog::connect_with(config).expect("the Kafka clients are created"))
            }
        }
    }
}

/// A topic or group name no other run uses.
fn unique(what: &str) -> String {
    format!("contract.{what}.{}", uuid::Uuid::new_v4().simple())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}

fn keyed(topic: &str, key: &str, seq: usize) -> NewRecord {
    NewRecord::new(topic, Some(key), format!("{key}:{seq}")).header("seq", seq.to_string())
}

/// Polls until `count` records arrived (or fails after PATIENCE).
async fn poll_at_least(consumer: &mut dyn Consumer, count: usize) -> Vec<Record> {
    let deadline = Instant::now() + PATIENCE;
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived",
            records.len()
        );
        records.extend(
            consumer
                .poll(Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    records
}

/// Polls (discarding records) until the consumer has partitions.
async fn wait_for_assignment(consumer: &mut dyn Consumer) -> Vec<Record> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while consumer.assignment().is_empty() {
        assert!(Instant::now() < deadline, "no partitions were assigned");
        seen.extend(
            consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll"),
        );
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// The contract.

async fn append_returns_increasing_positions(log: &dyn EventLog) {
    let topic = unique("positions");
    log.ensure_topic(&topic, 3).await.expect("ensure_topic");
    log.ensure_topic(&topic, 3)
        .await
        .expect("ensure_topic is idempotent");
    assert_eq!(log.partitions(&topic).await.unwrap(), vec![0, 1, 2]);
    for p in 0..3 {
        assert_eq!(log.end_offset(&topic, p).await.unwrap(), 0);
    }

    let mut last: HashMap<i32, i64> = HashMap::new();
    for round in 0..3 {
        let batch: Vec<NewRecord> = (0..10)
            .map(|i| keyed(&topic, &format!("order-{}", i % 5), round * 10 + i))
            .collect();
        let keys: Vec<String> = batch.iter().map(|r| r.payload_key()).collect();
        let positions = log.append(batch).await.expect("append");
        assert_eq!(positions.len(), 10);
        for (position, key) in positions.iter().zip(&keys) {
            assert_eq!(position.topic, topic);
            // The same partitioner as Kafka's Java clients, in both backends.
            assert_eq!(position.partition, partition_for_key(key.as_bytes(), 3));
            let previous = last.insert(position.partition, position.offset);
            assert_eq!(position.offset, previous.map_or(0, |o| o + 1));
        }
    }
    for (partition, offset) in &last {
        assert_eq!(
            log.end_offset(&topic, *partition).await.unwrap(),
            offset + 1
        );
    }

    let keyless = log
        .append(vec![NewRecord::new(&topic, None, "no key")])
        .await
        .expect("append without a key");
    assert!((0..3).contains(&keyless[0].partition));
}

trait PayloadKey {
    fn payload_key(&self) -> String;
}

impl PayloadKey for NewRecord {
    fn payload_key(&self) -> String {
        String::from_utf8(self.key.clone().unwrap_or_default()).unwrap()
    }
}

async fn per_key_order_within_a_partition(log: &dyn EventLog) {
    let topic = unique("order");
    log.ensure_topic(&topic, 3).await.unwrap();
    let keys: Vec<String> = (0..6).map(|i| format!("order-{i}")).collect();
    // Interleaved keys, over several appends, some of them concurrent for different keys.
    for chunk in 0..4 {
        let batch: Vec<NewRecord> = (0..5)
            .flat_map(|seq| {
                keys.iter()
                    .map(move |key| (key.clone(), chunk * 5 + seq))
                    .collect::<Vec<_>>()
            })
            .map(|(key, seq)| keyed(&topic, &key, seq))
            .collect();
        log.append(batch).await.unwrap();
    }
    let mut by_key: BTreeMap<String, Vec<(i32, usize)>> = BTreeMap::new();
    for partition in log.partitions(&topic).await.unwrap() {
        let records = log.read(&topic, partition, 0, 1000).await.unwrap();
        for record in records {
            let seq: usize = record.header("seq").unwrap().parse().unwrap();
            assert_eq!(
                record.payload,
                format!("{}:{seq}", record.key_str().unwrap()).into_bytes()
            );
            by_key
                .entry(record.key_str().unwrap().to_owned())
                .or_default()
                .push((record.partition, seq));
        }
    }
    assert_eq!(by_key.len(), keys.len());
    for (key, seen) in by_key {
        let partitions: BTreeSet<i32> = seen.iter().map(|(p, _)| *p).collect();
        assert_eq!(partitions.len(), 1, "{key} is on one partition");
        let seqs: Vec<usize> = seen.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, (0..20).collect::<Vec<_>>(), "{key} is in order");
    }
}

async fn concurrent_appends_get_distinct_offsets(log: &dyn EventLog) {
    let topic = unique("concurrent");
    log.ensure_topic(&topic, 1).await.unwrap();
    let appends = (0..50).map(|task| {
        let topic = topic.clone();
        async move {
            let mut positions = Vec::new();
            for i in 0..4 {
                let record = NewRecord::new(&topic, Some("same-key"), format!("{task}-{i}"));
                positions.extend(log.append(vec![record]).await.expect("append"));
            }
            positions
        }
    });
    let positions: Vec<Position> = futures_join_all(appends).await.concat();
    let offsets: BTreeSet<i64> = positions.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, (0..200).collect::<BTreeSet<i64>>());
    assert_eq!(log.end_offset(&topic, 0).await.unwrap(), 200);
}

/// Runs futures concurrently on this task (no extra dependency for join_all).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut results: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in set.iter_mut().enumerate() {
            if results[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => results[i] = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future finished"))
        .collect()
}

async fn read_by_offset(log: &dyn EventLog) {
    let topic = unique("read");
    log.ensure_topic(&topic, 1).await.unwrap();
    let before = now_ms();
    let records: Vec<NewRecord> = (0..5)
        .map(|i| {
            NewRecord::new(&topic, Some("k"), format!("payload-{i}"))
                .header("uuid", format!("u{i}"))
        })
        .collect();
    log.append(records).await.unwrap();

    let read = log.read(&topic, 0, 2, 2).await.unwrap();
    assert_eq!(
        read.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(read[0].payload, b"payload-2");
    assert_eq!(read[0].key_str(), Some("k"));
    assert_eq!(read[0].header("uuid"), Some("u2"));
    assert_eq!(read[0].topic, topic);
    assert_eq!(read[0].partition, 0);
    assert!(
        read[0].timestamp_ms >= before - 1_000,
        "timestamp {}",
        read[0].timestamp_ms
    );

    assert_eq!(log.read(&topic, 0, 0, 100).await.unwrap().len(), 5);
    assert!(log.read(&topic, 0, 5, 10).await.unwrap().is_empty());
    assert!(log.read(&topic, 0, 0, 0).await.unwrap().is_empty());
    let missing = log.read(&topic, 7, 0, 10).await.unwrap_err();
    assert!(!missing.is_retryable(), "{missing}");

    // Offsets and payloads only: the same window.
    assert_eq!(
        log.read_payloads(&topic, 0, 2, 2).await.unwrap(),
        vec![(2, b"payload-2".to_vec()), (3, b"payload-3".to_vec())]
    );
    assert!(
        log.read_payloads(&topic, 0, 5, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(log.read_payloads(&topic, 7, 0, 10).await.is_err());
}

async fn uncommitted_records_are_redelivered(log: &dyn EventLog) {
    let topic = unique("redelivery");
    let group = unique("group");
    log.ensure_topic(&topic, 1).await.unwrap();
    let records = (0..10).map(|i| keyed(&topic, "k", i)).collect();
    log.append(records).await.unwrap();

    let mut first = log
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let seen = poll_at_least(first.as_mut(), 10).await;
    assert_eq!(
        seen.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    // Only the first five are done; the member goes away before finishing the rest.
    first.commit(&position(&seen[4])).await.unwrap();
    assert_eq!(log.committed(&group, &topic, 0).await.unwrap(), Some(5));
    drop(first);

    let mut second = log
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let again = poll_at_least(second.as_mut(), 5).await;
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (5..10).collect::<Vec<_>>()
    );
    second.commit(&position(&again[4])).await.unwrap();
    assert_eq!(log.committed(&group, &topic, 0).await.unwrap(), Some(10));
    assert_eq!(
        log.committed(&unique("other"), &topic, 0).await.unwrap(),
        None
    );
}

/// A consumer commits every partition of a polled batch at once; each partition resumes where
/// its own position said.
async fn partitions_are_committed_together(log: &dyn EventLog) {
    let topic = unique("commit-all");
    let group = unique("group");
    log.ensure_topic(&topic, 3).await.unwrap();
    let records = (0..30)
        .map(|i| keyed(&topic, &format!("k{i}"), i))
        .collect();
    log.append(records).await.unwrap();

    let mut first = log
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let seen = poll_at_least(first.as_mut(), 30).await;
    // Each partition's first record is done.
    let mut done: Vec<Position> = Vec::new();
    for record in &seen {
        if !done.iter().any(|p| p.partition == record.partition) {
            done.push(position(record));
        }
    }
    assert!(done.len() > 1, "30 keys land on more than one partition");
    let results = first.commit_all(&done).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for p in &done {
        assert_eq!(
            log.committed(&group, &topic, p.partition).await.unwrap(),
            Some(p.offset + 1)
        );
    }
    drop(first);

    let mut second = log
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let again = poll_at_least(second.as_mut(), 30 - done.len()).await;
    assert_eq!(again.len(), 30 - done.len());
    assert!(again.iter().all(|r| !done.contains(&position(r))));
}

async fn restart_resumes_at_the_committed_offset(backend: &Backend) {
    let topic = unique("restart");
    let group = unique("group");
    {
        let log = backend.open().await;
        log.ensure_topic(&topic, 1).await.unwrap();
        log.append((0..6).map(|i| keyed(&topic, "k", i)).collect())
            .await
            .unwrap();
        let mut consumer = log
            .subscribe(&group, std::slice::from_ref(&topic))
            .await
            .unwrap();
        let seen = poll_at_least(consumer.as_mut(), 6).await;
        consumer.commit(&position(&seen[2])).await.unwrap();
        // Everything (consumer, producer, file handles) goes away here.
    }
    let log = backend.open().await;
    assert_eq!(log.end_offset(&topic, 0).await.unwrap(), 6);
    assert_eq!(log.committed(&group, &topic, 0).await.unwrap(), Some(3));
    let mut consumer = log
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let resumed = poll_at_least(consumer.as_mut(), 3).await;
    assert_eq!(
        resumed.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let next = log.append(vec![keyed(&topic, "k", 6)]).await.unwrap();
    assert_eq!(next[0].offset, 6);
}

/// Two writers on one log (a `serve` and a command line redriving into the same file): each
/// one's appends reach the other's consumers, and neither reuses an offset the other took.
async fn appends_from_another_writer_are_seen(backend: &Backend) {
    let topic = unique("two-writers");
    let group = unique("group");
    let serving = backend.open().await;
    serving.ensure_topic(&topic, 1).await.unwrap();
    serving.append(vec![keyed(&topic, "k", 0)]).await.unwrap();
    let mut consumer = serving
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(poll_at_least(consumer.as_mut(), 1).await.len(), 1);

    let other = backend.open().await;
    let theirs = other.append(vec![keyed(&topic, "k", 1)]).await.unwrap();
    assert_eq!(theirs[0].offset, 1);
    let seen = poll_at_least(consumer.as_mut(), 1).await;
    assert_eq!(
        seen[0].offset, 1,
        "the other writer's record reaches the consumer"
    );

    let ours = serving.append(vec![keyed(&topic, "k", 2)]).await.unwrap();
    assert_eq!(ours[0].offset, 2, "no offset is taken twice");
    let theirs = other.append(vec![keyed(&topic, "k", 3)]).await.unwrap();
    assert_eq!(theirs[0].offset, 3);
    let seen = poll_at_least(consumer.as_mut(), 2).await;
    assert_eq!(
        seen.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

async fn seek_by_timestamp(log: &dyn EventLog) {
    let topic = unique("time");
    let group = unique("group");
    log.ensure_topic(&topic, 1).await.unwrap();
    log.append((0..3).map(|i| keyed(&topic, "k", i)).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let cut = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    log.append((3..6).map(|i| keyed(&topic, "k", i)).collect())
        .await
        .unwrap();

    assert_eq!(log.offset_for_time(&topic, 0, 0).await.unwrap(), 0);
    assert_eq!(log.offset_for_time(&topic, 0, cut).await.unwrap(), 3);
    assert_eq!(
        log.offset_for_time(&topic, 0, now_ms() + 3_600_000)
            .await
            .unwrap(),
        6
    );
    let all = log.read(&topic, 0, 0, 10).await.unwrap();
    assert!(all[2].timestamp_ms < cut && all[3].timestamp_ms >= cut);

    // "Reprocess since": a member seeks to the offset found by time.
    let mut consumer = log
        .subscribe(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let mut early = wait_for_assignment(consumer.as_mut()).await;
    let target = log.offset_for_time(&topic, 0, cut).await.unwrap();
    if early.len() < 6 {
        // Drain what was already fetched so the seek below decides what comes next.
        early.extend(poll_at_least(consumer.as_mut(), 6 - early.len()).await);
    }
    consumer.seek(&topic, 0, target).await.unwrap();
    let replayed = poll_at_least(consumer.as_mut(), 3).await;
    assert_eq!(
        replayed.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
}

async fn group_members_share_partitions(log: &dyn EventLog) {
    let topic = unique("shared");
    let group = unique("group");
    log.ensure_topic(&topic, 4).await.unwrap();
    let topics = [topic.clone()];
    let mut a = log.subscribe(&group, &topics).await.unwrap();
    let mut b = log.subscribe(&group, &topics).await.unwrap();

    // Both members poll until the group settles: disjoint assignments covering every partition.
    let deadline = Instant::now() + PATIENCE;
    loop {
        a.poll(Duration::from_millis(100)).await.unwrap();
        b.poll(Duration::from_millis(100)).await.unwrap();
        let (of_a, of_b) = (a.assignment(), b.assignment());
        let union: BTreeSet<_> = of_a.iter().chain(&of_b).collect();
        if !of_a.is_empty() && !of_b.is_empty() && union.len() == 4 && of_a.len() + of_b.len() == 4
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not settle: {of_a:?} / {of_b:?}"
        );
    }

    let records: Vec<NewRecord> = (0..40)
        .map(|i| keyed(&topic, &format!("order-{i}"), i))
        .collect();
    log.append(records).await.unwrap();

    let mut seen: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < 40 {
        assert!(
            Instant::now() < deadline,
            "only {} of 40 records arrived",
            seen.len()
        );
        for (name, member) in [("a", &mut a), ("b", &mut b)] {
            let records = member.poll(Duration::from_millis(100)).await.unwrap();
            let mine = member.assignment();
            for record in &records {
                assert!(
                    mine.contains(&(record.topic.clone(), record.partition)),
                    "{name} got a partition it does not own"
                );
                let earlier = seen.insert((record.partition, record.offset), name);
                assert!(
                    earlier.is_none(),
                    "{name} saw {}/{} again",
                    record.partition,
                    record.offset
                );
            }
            if let Some(last) = records.last() {
                member.commit(&position(last)).await.unwrap();
            }
        }
    }
    let by: BTreeSet<&str> = seen.values().copied().collect();
    assert_eq!(by.len(), 2, "both members got records");
}

fn position(record: &Record) -> Position {
    Position {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
    }
}

// ---------------------------------------------------------------------------------------------
// Instantiation per backend.

macro_rules! contract {
    (logs: [$($log_test:ident),* $(,)?], backends: [$($backend_test:ident),* $(,)?]) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $log_test() {
                    let backend = super::Backend::embedded();
                    let log = backend.open().await;
                    super::$log_test(log.as_ref()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $backend_test() {
                    super::$backend_test(&super::Backend::embedded()).await;
                }
            )*
        }

        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $log_test() {
                    let Some(backend) = super::Backend::kafka(stringify!($log_test)) else { return };
                    let log = backend.open().await;
                    super::$log_test(log.as_ref()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $backend_test() {
                    let Some(backend) = super::Backend::kafka(stringify!($backend_test)) else { return };
                    super::$backend_test(&backend).await;
                }
            )*
        }
    };
}

contract! {
    logs: [
        append_returns_increasing_positions,
        per_key_order_within_a_partition,
        concurrent_appends_get_distinct_offsets,
        read_by_offset,
        uncommitted_records_are_redelivered,
        partitions_are_committed_together,
        seek_by_timestamp,
        group_members_share_partitions,
    ],
    backends: [restart_resumes_at_the_committed_offset, appends_from_another_writer_are_seen]
}
