//! The Kafka event log (rdkafka / librdkafka), for any Kafka-protocol broker.
//!
//! - Append: a `FutureProducer` with `acks=all`, answered when every record is acknowledged.
//!   No transactions and no idempotent producer (tansu 0.6 has neither EndTxn nor a usable
//!   InitProducerId), so `max.in.flight.requests.per.connection=1` keeps a key's records in order
//!   when the client retries; a failed `append` may still have written some of its records, and
//!   a retry duplicates them (at-least-once; readers dedupe by message UUID).
//! - Partitions: `partitioner=murmur2_random`, Kafka's Java default, so a key lands on the same
//!   partition as in the embedded log and in Java clients (librdkafka's own default is CRC32).
//! - Consumers: one `StreamConsumer` per member, `enable.auto.commit=false`, synchronous commits
//!   of explicit offsets, `auto.offset.reset=earliest` (a group without commits starts at 0).
//! - Replay reads (`read`) assign a partition to a group-less consumer; it also answers
//!   watermark, time and metadata look-ups.
//!
//! Gaps of the test broker, tansu 0.6.0 (SQLite storage), found by trying them, and how this
//! file lives with them:
//! - No topic auto-creation: producing to a missing topic times out (`MessageTimedOut`).
//!   `ensure_topic` creates topics explicitly through the admin API (CreateTopics works,
//!   including replication factor -1 and TopicAlreadyExists).
//! - No CreatePartitions (`UnsupportedFeature`): a topic keeps the partition count it was
//!   created with; `ensure_topic` never grows a topic (it warns when the counts differ).
//! - ListOffsets by time answers offset 0 instead of -1 when no record is at or after the time.
//!   `offset_for_time` reads the record found and answers the end offset when that record is
//!   older than the time asked for.
//! - Fetch is answered only when `fetch.wait.max.ms` is over, even when records are there
//!   (Kafka answers as soon as `fetch.min.bytes` are available). The replay reader uses a 10 ms
//!   wait; group consumers keep librdkafka's default (500 ms) unless `consumer_properties`
//!   lowers it, so on tansu end-to-end latency is up to that wait.
//! - Right after a DeleteTopics, a new group member got `UnknownTopicOrPartition` and no
//!   assignment; one librdkafka crash (SIGSEGV) was seen once in a probe that deleted topics and
//!   tried CreatePartitions, and did not repeat. eaibus never deletes topics.
//! - Transactions (EndTxn) are missing; nothing here uses them. InitProducerId does answer in
//!   0.6.0 (an idempotent producer works), but this file does not rely on it.
//! - Working as in Kafka: Metadata, Produce with acks=all, headers and CreateTime timestamps,
//!   gzip/snappy/lz4, consumer groups (range, roundrobin, cooperative-sticky; leaving on close),
//!   OffsetCommit/OffsetFetch, watermarks (ListOffsets earliest/latest), ListOffsets by time when
//!   a record matches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use super::{Consumer, EventLog, LogError, NewRecord, Position, Record};

/// The settings of the Kafka log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// librdkafka properties for every client (security, client.id, ...); they override the
    /// defaults above.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    #[serde(default)]
    pub producer_properties: BTreeMap<String, String>,
    /// librdkafka properties for group consumers only.
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, String>,
    /// Replication factor of topics created by `ensure_topic`.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// How long a metadata, offset or commit request may take before it fails (retryable).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// The most records one `poll` returns.
    #[serde(default = "default_max_poll_records")]
    pub max_poll_records: usize,
}

fn default_replication_factor() -> i32 {
    1
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

fn default_max_poll_records() -> usize {
    500
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
            consumer_properties: BTreeMap::new(),
            replication_factor: default_replication_factor(),
            request_timeout_ms: default_request_timeout_ms(),
            max_poll_records: default_max_poll_records(),
        }
    }

    /// Adds a librdkafka property for every client.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    fn client(&self, defaults: &[(&str, &str)], extra: &BTreeMap<String, String>) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (name, value) in defaults {
            config.set(*name, *value);
        }
        for (name, value) in self.properties.iter().chain(extra) {
            config.set(name, value);
        }
        config
    }

    fn producer(&self) -> ClientConfig {
        let timeout = (self.request_timeout_ms * 3).to_string();
        let mut config = self.client(
            &[
                ("acks", "all"),
                ("enable.idempotence", "false"),
                ("max.in.flight.requests.per.connection", "1"),
                ("partitioner", "murmur2_random"),
                ("linger.ms", "5"),
            ],
            &self.producer_properties,
        );
        if !self.producer_properties.contains_key("message.timeout.ms")
            && !self.properties.contains_key("message.timeout.ms")
        {
            config.set("message.timeout.ms", timeout);
        }
        config
    }

    /// A consumer outside any group: replay reads and look-ups. librdkafka refuses `assign`
    /// without a `group.id` ("Unknown group"), so it gets a private one it never joins or
    /// commits to.
    fn reader(&self) -> ClientConfig {
        let mut config = self.client(
            &[
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
                ("fetch.wait.max.ms", "10"),
            ],
            &self.consumer_properties,
        );
        config.set(
            "group.id",
            format!("eaibus-reader-{}", uuid::Uuid::new_v4().simple()),
        );
        config
    }

    fn member(&self, group: &str) -> ClientConfig {
        let mut config = self.client(
            &[
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
                ("auto.offset.reset", "earliest"),
            ],
            &self.consumer_properties,
        );
        config.set("group.id", group);
        config
    }
}

/// The Kafka log. Cheap to clone; clones share the producer and the reader.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    reader: Arc<BaseConsumer>,
    /// `read` assigns the reader; one read at a time.
    reading: Arc<Mutex<()>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the brokers at `bootstrap_servers` with default settings.
    pub fn connect(bootstrap_servers: &str) -> Result<KafkaLog, LogError> {
        KafkaLog::connect_with(KafkaConfig::new(bootstrap_servers))
    }

    /// Creates the clients described by `config`. librdkafka connects lazily, so an unreachable
    /// broker shows up at the first call (as `Unavailable`), not here.
    pub fn connect_with(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        let producer: FutureProducer = config.producer().create().map_err(kafka_error)?;
        let admin: AdminClient<DefaultClientContext> = config
            .client(&[], &BTreeMap::new())
            .create()
            .map_err(kafka_error)?;
        let reader: BaseConsumer = config.reader().create().map_err(kafka_error)?;
        tracing::info!(bootstrap_servers = %config.bootstrap_servers, "Created the Kafka event log clients.");
        Ok(KafkaLog {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                reader: Arc::new(reader),
                reading: Arc::new(Mutex::new(())),
            }),
        })
    }

    fn timeout(&self) -> Duration {
        self.inner.config.timeout()
    }

    /// Runs a blocking librdkafka call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&BaseConsumer, Duration) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let reader = self.inner.reader.clone();
        let timeout = self.timeout();
        tokio::task::spawn_blocking(move || call(&reader, timeout))
            .await
            .map_err(|e| LogError::Unavailable(format!("a Kafka call did not finish: {e}")))?
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        let topic = topic.to_owned();
        self.blocking(move |reader, timeout| partition_count(reader, &topic, timeout))
            .await
    }
}

fn partition_count(reader: &BaseConsumer, topic: &str, timeout: Duration) -> Result<i32, LogError> {
    let metadata = reader
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka_error)?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(unknown_topic(topic));
    };
    if let Some(code) = found.error() {
        let code = RDKafkaErrorCode::from(code);
        return Err(match code {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                unknown_topic(topic)
            }
            other => code_error(other, &format!("read the metadata of {topic}")),
        });
    }
    if found.partitions().is_empty() {
        return Err(unknown_topic(topic));
    }
    Ok(found.partitions().len() as i32)
}

fn check_partition(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<(), LogError> {
    let count = partition_count(reader, topic, timeout)?;
    if (0..count).contains(&partition) {
        Ok(())
    } else {
        Err(LogError::Refused(format!(
            "topic {topic} has no partition {partition} (it has {count})"
        )))
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError> {
        if topic.is_empty() || partitions < 1 {
            return Err(LogError::Refused(format!(
                "a topic needs a name and at least one partition (got {topic:?}, {partitions})"
            )));
        }
        let new_topic = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(self.inner.config.replication_factor),
        );
        let options = AdminOptions::new().operation_timeout(Some(self.timeout()));
        let results = self
            .inner
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(kafka_error)?;
        for result in results {
            match result {
                Ok(_) => tracing::info!(topic, partitions, "Created a Kafka topic."),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(code_error(code, &format!("create topic {topic}"))),
            }
        }
        // Metadata reaches every broker a little after creation; wait so the next call sees it.
        let deadline = Instant::now() + self.timeout();
        loop {
            match self.partition_count(topic).await {
                Ok(existing) => {
                    if existing != partitions {
                        tracing::warn!(
                            topic,
                            existing,
                            requested = partitions,
                            "The topic already exists with another partition count; keeping it."
                        );
                    }
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_slice()),
                });
            }
            let mut message = FutureRecord::<[u8], [u8]>::to(&record.topic)
                .payload(record.payload.as_slice())
                .headers(headers);
            if let Some(key) = &record.key {
                message = message.key(key.as_slice());
            }
            // A full local queue drains as the broker acknowledges; wait for room.
            let delivery = loop {
                match self.inner.producer.send_result(message) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        message = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(kafka_error(e)),
                }
            };
            deliveries.push((record.topic.clone(), delivery));
        }
        let mut positions = Vec::with_capacity(deliveries.len());
        for (topic, delivery) in deliveries {
            match delivery.await {
                Ok(Ok(delivered)) => positions.push(Position {
                    topic,
                    partition: delivered.partition,
                    offset: delivered.offset,
                }),
                Ok(Err((e, _))) => return Err(kafka_error(e)),
                Err(_) => {
                    return Err(LogError::Unavailable(
                        "the Kafka producer was dropped before the broker answered".into(),
                    ));
                }
            }
        }
        Ok(positions)
    }

    async fn partitions(&self, topic: &str) -> Result<Vec<i32>, LogError> {
        Ok((0..self.partition_count(topic).await?).collect())
    }

    async fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        let topic = topic.to_owned();
        self.blocking(move |reader, timeout| {
            check_partition(reader, &topic, partition, timeout)?;
            let (_, high) = reader
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(kafka_error)?;
            Ok(high)
        })
        .await
    }

    async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, LogError> {
        let topic = topic.to_owned();
        let reading = self.inner.reading.clone();
        self.blocking(move |reader, timeout| {
            check_partition(reader, &topic, partition, timeout)?;
            let mut query = TopicPartitionList::new();
            query
                .add_partition_offset(&topic, partition, Offset::Offset(timestamp_ms))
                .map_err(kafka_error)?;
            let answer = reader
                .offsets_for_times(query, timeout)
                .map_err(kafka_error)?;
            let element = answer
                .find_partition(&topic, partition)
                .ok_or_else(|| LogError::Unavailable("the broker skipped a partition".into()))?;
            element.error().map_err(kafka_error)?;
            let (_, high) = reader
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(kafka_error)?;
            let Offset::Offset(found) = element.offset() else {
                // No record at or after the time: the end.
                return Ok(high);
            };
            if found >= high {
                return Ok(high);
            }
            // tansu 0.6 answers "none" with an offset of an older record instead of -1; the
            // record found must be at or after the time, else there is none.
            let _one_at_a_time = reading.lock().unwrap_or_else(|p| p.into_inner());
            let record = read_partition(reader, &topic, partition, found, 1, timeout)?;
            match record.first() {
                Some(r) if r.timestamp_ms < timestamp_ms => Ok(high),
                _ => Ok(found),
            }
        })
        .await
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let topic = topic.to_owned();
        let reading = self.inner.reading.clone();
        self.blocking(move |reader, timeout| {
            let _one_at_a_time = reading.lock().unwrap_or_else(|p| p.into_inner());
            check_partition(reader, &topic, partition, timeout)?;
            read_partition(reader, &topic, partition, offset, max, timeout)
        })
        .await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, LogError> {
        if topics.is_empty() {
            return Err(LogError::Refused(
                "a consumer needs at least one topic".into(),
            ));
        }
        // Refuse unknown topics as the embedded log does, instead of waiting for them forever.
        for topic in topics {
            self.partition_count(topic).await?;
        }
        let consumer: StreamConsumer = self
            .inner
            .config
            .member(group)
            .create()
            .map_err(kafka_error)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(kafka_error)?;
        tracing::info!(group, topics = ?topics, "A Kafka consumer joined a group.");
        Ok(Box::new(KafkaConsumer {
            consumer: Arc::new(consumer),
            group: group.to_owned(),
            timeout: self.timeout(),
            max_poll_records: self.inner.config.max_poll_records.max(1),
        }))
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, LogError> {
        // Committed offsets are fetched through a consumer of the group; this one never joins.
        let consumer: BaseConsumer = self
            .inner
            .config
            .member(group)
            .create()
            .map_err(kafka_error)?;
        let topic = topic.to_owned();
        self.blocking(move |_, timeout| {
            let mut query = TopicPartitionList::new();
            query.add_partition(&topic, partition);
            let answer = consumer
                .committed_offsets(query, timeout)
                .map_err(kafka_error)?;
            let element = answer
                .find_partition(&topic, partition)
                .ok_or_else(|| LogError::Unavailable("the broker skipped a partition".into()))?;
            element.error().map_err(kafka_error)?;
            Ok(match element.offset() {
                Offset::Offset(offset) if offset >= 0 => Some(offset),
                _ => None,
            })
        })
        .await
    }
}

/// Reads up to `max` records from `offset` on, stopping at the high watermark.
fn read_partition(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
    max: usize,
    timeout: Duration,
) -> Result<Vec<Record>, LogError> {
    let (low, high) = reader
        .fetch_watermarks(topic, partition, timeout)
        .map_err(kafka_error)?;
    let start = offset.max(low);
    if start >= high || max == 0 {
        return Ok(Vec::new());
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(kafka_error)?;
    reader.assign(&assignment).map_err(kafka_error)?;
    let mut records = Vec::new();
    let mut next = start;
    let deadline = Instant::now() + timeout;
    let outcome = loop {
        if records.len() >= max || next >= high {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Fewer than asked is an answer (the caller reads on from the last offset); a slow
            // broker must not turn a long read into a failure.
            if !records.is_empty() {
                break Ok(());
            }
            break Err(LogError::Unavailable(format!(
                "timed out reading partition {partition} of {topic} at offset {next}"
            )));
        }
        match reader.poll(left.min(Duration::from_millis(200))) {
            Some(Err(e)) => break Err(kafka_error(e)),
            // Stale fetches of an earlier assignment are skipped.
            Some(Ok(message))
                if message.topic() == topic
                    && message.partition() == partition
                    && message.offset() >= next =>
            {
                next = message.offset() + 1;
                records.push(to_record(&message));
            }
            _ => {}
        }
    };
    let _ = reader.unassign();
    outcome.map(|()| records)
}

fn to_record(message: &BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        headers,
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
    }
}

impl KafkaConsumer {
    async fn commit_many(&self, positions: &[Position]) -> Result<(), LogError> {
        let mut offsets = TopicPartitionList::new();
        for position in positions {
            offsets
                .add_partition_offset(
                    &position.topic,
                    position.partition,
                    Offset::Offset(position.offset + 1),
                )
                .map_err(kafka_error)?;
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
            .await
            .map_err(|e| LogError::Unavailable(format!("a Kafka commit did not finish: {e}")))?
            .map_err(kafka_error)
    }
}

/// One member of a Kafka consumer group; dropping it closes the consumer and leaves the group.
struct KafkaConsumer {
    consumer: Arc<StreamConsumer>,
    group: String,
    timeout: Duration,
    max_poll_records: usize,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Vec<Record>, LogError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut records = Vec::new();
        // Wait for the first record; then take what is already fetched without waiting
        // (`recv` is cancellation safe, so a timeout loses nothing).
        while records.len() < self.max_poll_records {
            let wait = if records.is_empty() {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            } else {
                Duration::ZERO
            };
            match tokio::time::timeout(wait, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Ok(message)) => records.push(to_record(&message)),
                Ok(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    return Err(LogError::Refused(format!("Kafka consumer failed: {code}")));
                }
                // librdkafka recovers from the others by itself (as Java's poll does, they are
                // reported, not thrown).
                Ok(Err(e)) => {
                    tracing::warn!(group = %self.group, error = %e, "The Kafka consumer reported an error; it keeps trying.");
                    if !records.is_empty() {
                        break;
                    }
                }
            }
        }
        Ok(records)
    }

    async fn commit(&mut self, position: &Position) -> Result<(), LogError> {
        self.commit_many(std::slice::from_ref(position)).await
    }

    /// One OffsetCommit request for every partition: one answer for them all.
    async fn commit_all(&mut self, positions: &[Position]) -> Vec<Result<(), LogError>> {
        let result = self.commit_many(positions).await;
        positions.iter().map(|_| result.clone()).collect()
    }

    async fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), LogError> {
        let consumer = self.consumer.clone();
        let topic = topic.to_owned();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            consumer.seek(&topic, partition, Offset::Offset(offset.max(0)), timeout)
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("a Kafka seek did not finish: {e}")))?
        .map_err(kafka_error)
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        match self.consumer.assignment() {
            Ok(list) => list
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn unknown_topic(topic: &str) -> LogError {
    LogError::Refused(format!("the topic {topic} does not exist"))
}

fn kafka_error(error: KafkaError) -> LogError {
    match &error {
        KafkaError::ClientConfig(..)
        | KafkaError::ClientCreation(_)
        | KafkaError::AdminOpCreation(_)
        | KafkaError::Nul(_)
        | KafkaError::Subscription(_) => LogError::Refused(format!("Kafka: {error}")),
        KafkaError::AdminOp(code) => code_error(*code, "run an admin operation"),
        KafkaError::Seek(_) => LogError::Refused(format!("Kafka: {error}")),
        _ => match error.rdkafka_error_code() {
            Some(code) => code_error(code, &error.to_string()),
            None => LogError::Unavailable(format!("Kafka: {error}")),
        },
    }
}

/// Errors that will fail the same way again; everything else (timeouts, transport, leader
/// elections, rebalances in progress, full queues) is worth retrying.
fn code_error(code: RDKafkaErrorCode, context: &str) -> LogError {
    use RDKafkaErrorCode as C;
    let permanent = matches!(
        code,
        C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::InvalidTopic
            | C::InvalidPartitions
            | C::InvalidReplicationFactor
            | C::InvalidConfig
            | C::InvalidRequest
            | C::InvalidArgument
            | C::InvalidRecord
            | C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::UnsupportedVersion
            | C::UnsupportedCompressionType
            | C::PolicyViolation
            | C::IllegalGeneration
            | C::UnknownMemberId
            | C::Fatal
    );
    let message = format!("Kafka: {context}: {code}");
    if permanent {
        LogError::Refused(message)
    } else {
        LogError::Unavailable(message)
    }
}
