//! eaibus-bench: end-to-end load of eaibus on this machine, over loopback only.
//!
//! For each backend (embedded SQLite log, Kafka) and each repetition it starts eaibus in this
//! process — `Bus::open`, the route workers of `Deliverer`, the HTTP router on 127.0.0.1:0 — with
//! the shipped DocumentTraceabilityOrder adapter sending along a Kafka-kind route to a fresh
//! topic. It fires N messages at the REST endpoint with a bounded number in flight and times each
//! from the start of its request to the moment it is visible on the route topic (a consumer of
//! that topic matches the `uuid` header). Then it measures the ceiling of the same log: the same
//! bytes appended directly (the project's `KafkaLog` / `EmbeddedLog`, so the same acks and
//! producer settings) with the same number in flight. Medians over the repetitions are printed.
//!
//! Everything is bounded: N messages per run, a time limit per run; it stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use eaibus::bus::Bus;
use eaibus::config::{Config, LogBackend};
use eaibus::delivery::Deliverer;
use eaibus::log::{EventLog, NewRecord, Record};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::sync::watch;

/// The allocator the `eaibus` binary ships with, so the bus runs here as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIXTURE: &str =
    include_str!("../../../tests/fixtures/valid/DocumentTraceabilityOrder_1_001_array.json");
const ADAPTER: &str = include_str!("../../../adapters/document_traceability_order.toml");
const REST_PATH: &str = "/totvseai/standardmessage/v1/transactions";

#[derive(Parser)]
#[command(
    name = "eaibus-bench",
    about = "End-to-end load of eaibus: REST ingest → log → delivery to a Kafka route, \
             against the raw append ceiling of the same log"
)]
struct Args {
    /// Messages per timed run.
    #[arg(long, default_value_t = 5_000)]
    messages: usize,
    /// Requests (and, for the ceiling, appends) in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Timed runs per backend; the medians are reported.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Messages sent before each timed run, not counted (joins consumer groups, warms caches).
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// Kafka bootstrap servers on this machine (default: $EAIBUS_TEST_KAFKA).
    #[arg(long, value_name = "HOST:PORT")]
    brokers: Option<String>,
    /// An extra librdkafka property of the bus' Kafka log (repeatable), as `log.kafka_properties`
    /// in eaibus.toml: `--kafka-property fetch.wait.max.ms=500`.
    #[arg(long = "kafka-property", value_name = "NAME=VALUE", value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
    /// Partitions of every topic the runs create.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Offer this many messages per second (open loop) instead of as many as the requests in
    /// flight allow: latency at a load the bus sustains, rather than with a growing backlog.
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<f64>,
    /// Where each run keeps its files (embedded log, monitor and De/Para stores); default: the
    /// system's temporary directory. A tmpfs (/dev/shm) shows what the disk's fsyncs cost.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The longest one timed run may take; a run still going then is cut and reported so.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Keep the monitor and De/Para stores on this PostgreSQL server instead of SQLite files:
    /// each end-to-end run creates a database of its own there and drops it afterwards
    /// (`postgres://postgres@127.0.0.1:5432/test`; the user needs CREATEDB).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backends {
    Embedded,
    Kafka,
    Both,
}

#[derive(Clone, Debug)]
enum Backend {
    Embedded,
    Kafka { brokers: String },
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Kafka { .. } => "kafka",
        }
    }
}

/// Loopback only (brokers, the PostgreSQL server): the load goes nowhere else.
fn check_loopback(brokers: &str) -> anyhow::Result<()> {
    for broker in brokers.split(',') {
        let host = broker
            .trim()
            .rsplit_once(':')
            .map_or(broker.trim(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!("{broker} is not on this machine; the load tool sends to loopback only");
        }
    }
    Ok(())
}

/// The messages of one run: the fixture with its own UUID and business key per message.
struct Messages {
    /// `xxxxxxxx-0000-4000-8000-` + a 12-digit index.
    prefix: String,
    bodies: Vec<Vec<u8>>,
    keys: Vec<String>,
}

impl Messages {
    fn new(salt: u32, count: usize) -> anyhow::Result<Messages> {
        let mut value: Value = serde_json::from_str(FIXTURE)?;
        value["Header"]["UUID"] = Value::String("@UUID@".into());
        value["Content"]["InternalId"] = Value::String("@KEY@".into());
        let template = serde_json::to_string(&value)?;
        let prefix = format!("{salt:08x}-0000-4000-8000-");
        let mut bodies = Vec::with_capacity(count);
        let mut keys = Vec::with_capacity(count);
        for index in 0..count {
            // Every message is another order: one key's messages are delivered one at a time.
            let key = format!("T1|D MG 01|{salt:08x}{index:08}|2");
            bodies.push(
                template
                    .replace("@UUID@", &format!("{prefix}{index:012}"))
                    .replace("@KEY@", &key)
                    .into_bytes(),
            );
            keys.push(key);
        }
        Ok(Messages {
            prefix,
            bodies,
            keys,
        })
    }

    fn index_of(&self, uuid: &str) -> Option<usize> {
        uuid.strip_prefix(&self.prefix)?.parse().ok()
    }
}

/// When each message was sent, accepted (HTTP 202) and seen on the route topic, in nanoseconds
/// after `base` (0: not yet).
struct Tracker {
    base: Instant,
    timed: usize,
    sent: Vec<AtomicU64>,
    accepted: Vec<AtomicU64>,
    seen: Vec<AtomicU64>,
    seen_timed: AtomicUsize,
    seen_warmup: AtomicUsize,
    repeated: AtomicUsize,
    errors: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tracker {
    fn new(timed: usize, total: usize) -> Tracker {
        let zeros = || (0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Tracker {
            base: Instant::now(),
            timed,
            sent: zeros(),
            accepted: zeros(),
            seen: zeros(),
            seen_timed: AtomicUsize::new(0),
            seen_warmup: AtomicUsize::new(0),
            repeated: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            first_error: std::sync::Mutex::new(None),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn error(&self, text: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(text);
    }

    fn observe(&self, messages: &Messages, record: &Record) {
        let Some(index) = record.header("uuid").and_then(|u| messages.index_of(u)) else {
            return;
        };
        let Some(slot) = self.seen.get(index) else {
            return;
        };
        if slot
            .compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if index < self.timed {
                self.seen_timed.fetch_add(1, Ordering::Relaxed);
            } else {
                self.seen_warmup.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.repeated.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends messages `range` to the REST endpoint, `concurrency` at a time.
async fn fire(
    client: reqwest::Client,
    url: String,
    messages: Arc<Messages>,
    tracker: Arc<Tracker>,
    range: std::ops::Range<usize>,
    concurrency: usize,
    rate: Option<f64>,
) {
    let next = Arc::new(AtomicUsize::new(range.start));
    let begun = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, messages, tracker, next) = (
            client.clone(),
            url.clone(),
            messages.clone(),
            tracker.clone(),
            next.clone(),
        );
        let range = range.clone();
        let end = range.end;
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= end {
                    break;
                }
                if let Some(rate) = rate {
                    // Open loop: message k of the range is due k / rate seconds after the start.
                    let due = (index - range.start) as f64 / rate;
                    tokio::time::sleep_until(begun + Duration::from_secs_f64(due)).await;
                }
                tracker.sent[index].store(tracker.now(), Ordering::Relaxed);
                let reply = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(messages.bodies[index].clone())
                    .send()
                    .await;
                match reply {
                    Ok(r) if r.status().as_u16() == 202 => {
                        tracker.accepted[index].store(tracker.now(), Ordering::Relaxed);
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        tracker.error(format!("HTTP {status}: {}", truncate(&body, 300)));
                    }
                    Err(e) => tracker.error(format!("request failed: {e}")),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

fn truncate(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

fn progress(len: usize, prefix: String) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:<28} [{bar:32}] {pos:>6}/{len:6} {per_sec:>12} {elapsed:>4}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Percentile of sorted values (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(values, 50.0)
}

/// Throughput and latency of one timed run.
#[derive(Debug, Clone, Default)]
struct Figures {
    count: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn figures(count: usize, elapsed_ns: u64, mut latencies_ms: Vec<f64>) -> Figures {
    latencies_ms.sort_by(f64::total_cmp);
    Figures {
        count,
        per_second: count as f64 / (elapsed_ns.max(1) as f64 / 1e9),
        p50_ms: percentile(&latencies_ms, 50.0),
        p99_ms: percentile(&latencies_ms, 99.0),
        max_ms: latencies_ms.last().copied().unwrap_or(f64::NAN),
    }
}

#[derive(Debug, Clone, Default)]
struct PipelineRun {
    /// Request start → visible on the route topic.
    delivered: Figures,
    /// Request start → HTTP 202 (durable in the log).
    accepted: Figures,
    errors: usize,
    first_error: Option<String>,
    repeated: usize,
    cut: bool,
    /// What the whole process (bus and load tool) spent during the timed run.
    usage: Usage,
}

/// CPU time and context switches of this process, all threads (`getrusage`). On a virtual
/// machine whose speed drifts with its neighbours they vary less than messages per second.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_us: f64,
    switches: f64,
}

impl Usage {
    fn now() -> Usage {
        // SAFETY: getrusage only writes the struct it is given.
        let mut raw: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut raw) } != 0 {
            return Usage::default();
        }
        let micros = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
        Usage {
            cpu_us: micros(raw.ru_utime) + micros(raw.ru_stime),
            switches: (raw.ru_nvcsw + raw.ru_nivcsw) as f64,
        }
    }

    fn since(self, start: Usage) -> Usage {
        Usage {
            cpu_us: self.cpu_us - start.cpu_us,
            switches: self.switches - start.switches,
        }
    }
}

impl PipelineRun {
    /// CPU milliseconds per delivered message.
    fn cpu_ms_per_message(&self) -> f64 {
        self.usage.cpu_us / 1e3 / self.delivered.count.max(1) as f64
    }

    fn switches_per_message(&self) -> f64 {
        self.usage.switches / self.delivered.count.max(1) as f64
    }
}

/// The stores of one run: SQLite files in the run's directory, or a PostgreSQL database.
fn config_for(
    args: &Args,
    backend: &Backend,
    dir: &std::path::Path,
    salt: u32,
    database: Option<&RunDatabase>,
) -> Config {
    let partitions = args.partitions;
    let mut config = Config::default();
    config
        .log
        .kafka_properties
        .extend(args.kafka_properties.iter().cloned());
    config.server.listen = "127.0.0.1:0".into();
    config.log.partitions = partitions;
    match backend {
        Backend::Embedded => {
            config.log.backend = LogBackend::Embedded;
            config.log.path = dir.join("log.db");
        }
        Backend::Kafka { brokers } => {
            config.log.backend = LogBackend::Kafka;
            config.log.brokers = brokers.clone();
            // Fresh topics per run: no backlog, no committed offsets from an earlier run.
            config.log.topic_prefix = format!("bench{salt:08x}.");
        }
    }
    match database {
        Some(database) => {
            config.store.url = database.url.clone();
            config.store.depara_url = database.url.clone();
        }
        None => {
            config.store.url = format!("sqlite://{}", dir.join("eaibus.db").display());
            config.store.depara_url = format!("sqlite://{}", dir.join("depara.db").display());
        }
    }
    config.paths.adapters = dir.join("adapters");
    config.paths.routes = dir.join("routes.toml");
    config.paths.depara = dir.join("no-seeds");
    config.paths.data = dir.to_owned();
    config
}

async fn wait_until(
    deadline: Instant,
    bar: Option<&ProgressBar>,
    done: impl Fn() -> (usize, bool),
) -> bool {
    loop {
        let (position, finished) = done();
        if let Some(bar) = bar {
            bar.set_position(position as u64);
        }
        if finished {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn run_dir(args: &Args) -> std::io::Result<tempfile::TempDir> {
    match &args.data_dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
}

/// A database of one run's own on the PostgreSQL server of `--postgres`.
struct RunDatabase {
    /// Where `CREATE DATABASE` and `DROP DATABASE` are sent.
    admin: String,
    name: String,
    url: String,
}

impl RunDatabase {
    async fn create(admin: &str, salt: u32) -> anyhow::Result<RunDatabase> {
        use sqlx::Connection;
        let name = format!("eaibus_bench_{salt:08x}");
        let mut url = reqwest::Url::parse(admin).context("--postgres is not a URL")?;
        url.set_path(&name);
        let mut connection = sqlx::PgConnection::connect(admin)
            .await
            .context("the PostgreSQL server of --postgres does not answer")?;
        // The name is made here of hex digits only.
        let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
        sqlx::raw_sql(create)
            .execute(&mut connection)
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
        Ok(RunDatabase {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    async fn drop_now(self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&self.admin).await?;
        // FORCE: the bus' pools may still hold connections while they shut down.
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&mut connection)
            .await?;
        Ok(())
    }
}

async fn pipeline_run(args: &Args, backend: &Backend, label: &str) -> anyhow::Result<PipelineRun> {
    let salt = uuid::Uuid::new_v4().as_u128() as u32;
    let database = match &args.postgres {
        Some(admin) => Some(RunDatabase::create(admin, salt).await?),
        None => None,
    };
    let run = pipeline_run_with(args, backend, label, salt, database.as_ref()).await;
    if let Some(database) = database {
        let name = database.name.clone();
        if let Err(e) = database.drop_now().await {
            eprintln!("note: the database {name} was not dropped: {e:#}");
        }
    }
    run
}

async fn pipeline_run_with(
    args: &Args,
    backend: &Backend,
    label: &str,
    salt: u32,
    database: Option<&RunDatabase>,
) -> anyhow::Result<PipelineRun> {
    let dir = run_dir(args)?;
    let route = format!("bench{salt:08x}");
    let route_topic = format!("bench.{salt:08x}.order-trace");
    std::fs::create_dir_all(dir.path().join("adapters"))?;
    // The shipped adapter, sending along this run's route.
    let adapter = ADAPTER.replace("route = \"omni\"", &format!("route = \"{route}\""));
    anyhow::ensure!(
        adapter != ADAPTER,
        "the shipped adapter no longer sends along omni"
    );
    std::fs::write(
        dir.path().join("adapters/document_traceability_order.toml"),
        adapter,
    )?;
    std::fs::write(
        dir.path().join("routes.toml"),
        format!(
            "[[route]]\nname = \"{route}\"\nproduct = \"OMNI\"\napplication = \"OMNI\"\n\
             kind = \"kafka\"\ntarget = \"{route_topic}\"\n"
        ),
    )?;
    let config = config_for(args, backend, dir.path(), salt, database);
    let mut bus = Bus::open(config).await.context("the bus does not open")?;
    // The observer subscribes to the route topic before the first delivery creates anything.
    bus.log
        .ensure_topic(&route_topic, args.partitions)
        .await
        .context("the route topic cannot be created")?;
    let deliverer = Deliverer::new(bus.clone());
    bus.delivery = Some(deliverer.clone());
    let (stop, stopped) = watch::channel(false);
    let workers = deliverer.spawn(stopped.clone());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{REST_PATH}", listener.local_addr()?);
    let app = eaibus::transport::server::router(bus.clone());
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.changed().await;
            })
            .await
    });

    let total = args.messages + args.warmup;
    let messages = Arc::new(Messages::new(salt, total)?);
    let tracker = Arc::new(Tracker::new(args.messages, total));
    let mut consumer = bus
        .log
        .subscribe(
            &format!("eaibus-bench-{salt:08x}"),
            std::slice::from_ref(&route_topic),
        )
        .await
        .context("the observer cannot read the route topic")?;
    let observer = {
        let (messages, tracker, mut stopped) = (messages.clone(), tracker.clone(), stopped.clone());
        tokio::spawn(async move {
            loop {
                let records = tokio::select! {
                    _ = stopped.changed() => break,
                    r = consumer.poll(Duration::from_millis(100)) => r,
                };
                match records {
                    Ok(records) => records.iter().for_each(|r| tracker.observe(&messages, r)),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    // Warm-up: until every warm-up message is on the route topic, the groups have joined.
    let warm = args.messages..total;
    fire(
        client.clone(),
        url.clone(),
        messages.clone(),
        tracker.clone(),
        warm,
        args.concurrency,
        None,
    )
    .await;
    let warmed = wait_until(Instant::now() + Duration::from_secs(120), None, || {
        let seen = tracker.seen_warmup.load(Ordering::Relaxed);
        (seen, seen >= args.warmup)
    })
    .await;
    if !warmed {
        let _ = stop.send(true);
        bail!(
            "{label}: only {} of {} warm-up messages reached the route topic in 120 s ({} errors, first: {:?})",
            tracker.seen_warmup.load(Ordering::Relaxed),
            args.warmup,
            tracker.errors.load(Ordering::Relaxed),
            tracker.first_error.lock().ok().and_then(|e| e.clone())
        );
    }
    let warm_errors = tracker.errors.swap(0, Ordering::Relaxed);

    // The timed run.
    let bar = progress(args.messages, label.to_owned());
    let usage_at_start = Usage::now();
    let started = tracker.now();
    let sender = tokio::spawn(fire(
        client,
        url,
        messages.clone(),
        tracker.clone(),
        0..args.messages,
        args.concurrency,
        args.rate,
    ));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let finished = wait_until(deadline, Some(&bar), || {
        let seen = tracker.seen_timed.load(Ordering::Relaxed);
        let errors = tracker.errors.load(Ordering::Relaxed);
        (seen, seen + errors >= args.messages)
    })
    .await;
    let usage = Usage::now().since(usage_at_start);
    bar.finish_and_clear();
    let _ = stop.send(true);
    sender.abort();
    observer.abort();
    for worker in workers {
        worker.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;

    let mut delivered_latencies = Vec::new();
    let mut accepted_latencies = Vec::new();
    let (mut last_seen, mut last_accepted) = (started, started);
    for index in 0..args.messages {
        let sent = tracker.sent[index].load(Ordering::Relaxed);
        let accepted = tracker.accepted[index].load(Ordering::Relaxed);
        let seen = tracker.seen[index].load(Ordering::Relaxed);
        if sent == 0 {
            continue;
        }
        if accepted != 0 {
            accepted_latencies.push((accepted - sent) as f64 / 1e6);
            last_accepted = last_accepted.max(accepted);
        }
        if seen != 0 {
            delivered_latencies.push(seen.saturating_sub(sent) as f64 / 1e6);
            last_seen = last_seen.max(seen);
        }
    }
    let errors = tracker.errors.load(Ordering::Relaxed) + warm_errors;
    let run = PipelineRun {
        delivered: figures(
            delivered_latencies.len(),
            last_seen - started,
            delivered_latencies,
        ),
        accepted: figures(
            accepted_latencies.len(),
            last_accepted - started,
            accepted_latencies,
        ),
        errors,
        first_error: tracker.first_error.lock().ok().and_then(|e| e.clone()),
        repeated: tracker.repeated.load(Ordering::Relaxed),
        cut: !finished,
        usage,
    };
    drop(bus);
    Ok(run)
}

/// The same bytes appended straight to the log, `concurrency` appends in flight.
async fn raw_run(args: &Args, backend: &Backend, label: &str) -> anyhow::Result<Figures> {
    let dir = run_dir(args)?;
    let salt = uuid::Uuid::new_v4().as_u128() as u32;
    let log: Arc<dyn EventLog> = match backend {
        Backend::Embedded => {
            Arc::new(eaibus::log::embedded::EmbeddedLog::open(dir.path().join("raw.db")).await?)
        }
        Backend::Kafka { brokers } => Arc::new(eaibus::log::kafka::KafkaLog::connect(brokers)?),
    };
    let topic = format!("bench.{salt:08x}.raw");
    log.ensure_topic(&topic, args.partitions).await?;
    let total = args.messages + args.warmup;
    let messages = Arc::new(Messages::new(salt, total)?);
    // The record ingest appends: the message, its business key and its headers.
    let record = |index: usize| {
        NewRecord::new(
            &topic,
            Some(&messages.keys[index]),
            messages.bodies[index].clone(),
        )
        .header("uuid", format!("{}{index:012}", messages.prefix))
        .header("transaction", "DocumentTraceabilityOrder")
        .header("version", "1.001")
        .header("type", "BusinessMessage")
        .header("source", "P12")
        .header("format", "json")
        .header("origin", format!("rest:{REST_PATH}"))
        .header("received-at", "1715074286000")
    };
    let records: Arc<Vec<NewRecord>> = Arc::new((0..total).map(record).collect());
    let latencies = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    let done = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let append_all = |range: std::ops::Range<usize>| {
        let next = Arc::new(AtomicUsize::new(range.start));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.concurrency.max(1) {
            let (log, records, latencies, done, errors, next) = (
                log.clone(),
                records.clone(),
                latencies.clone(),
                done.clone(),
                errors.clone(),
                next.clone(),
            );
            let end = range.end;
            tasks.spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= end {
                        break;
                    }
                    let start = Instant::now();
                    match log.append(vec![records[index].clone()]).await {
                        Ok(_) => {
                            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            latencies[index].store(ns.max(1), Ordering::Relaxed);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        tasks
    };
    let mut warm = append_all(args.messages..total);
    while warm.join_next().await.is_some() {}
    done.store(0, Ordering::Relaxed);

    let bar = progress(args.messages, label.to_owned());
    let started = Instant::now();
    let mut timed = append_all(0..args.messages);
    let deadline = started + Duration::from_secs(args.max_seconds);
    let finished = wait_until(deadline, Some(&bar), || {
        let d = done.load(Ordering::Relaxed);
        (d, d + errors.load(Ordering::Relaxed) >= args.messages)
    })
    .await;
    let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    bar.finish_and_clear();
    timed.abort_all();
    if !finished {
        eprintln!("{label}: cut after {} s", args.max_seconds);
    }
    let errors = errors.load(Ordering::Relaxed);
    if errors > 0 {
        eprintln!("{label}: {errors} appends failed");
    }
    let latencies_ms: Vec<f64> = latencies[..args.messages]
        .iter()
        .map(|l| l.load(Ordering::Relaxed))
        .filter(|l| *l != 0)
        .map(|l| l as f64 / 1e6)
        .collect();
    Ok(figures(done.load(Ordering::Relaxed), elapsed, latencies_ms))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {kernel}")
}

struct Summary {
    backend: Backend,
    runs: Vec<PipelineRun>,
    raw: Vec<Figures>,
}

fn med(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    median(&mut values)
}

fn row(name: &str, what: &str, per_second: f64, p50: f64, p99: f64) {
    println!("{name:<9} {what:<36} {per_second:>9.0} {p50:>9.1} {p99:>9.1}");
}

fn report(args: &Args, summaries: &[Summary]) {
    println!();
    println!(
        "eaibus-bench: {} messages x {} repetitions per backend, {} in flight, {} partitions",
        args.messages, args.repetitions, args.concurrency, args.partitions
    );
    println!(
        "message: DocumentTraceabilityOrder 1.001 ({} bytes), shipped adapter, Kafka-kind route",
        Messages::new(0, 1).map_or(0, |m| m.bodies[0].len())
    );
    println!("machine: {}", machine());
    for (name, value) in &args.kafka_properties {
        println!("kafka property of the bus: {name} = {value}");
    }
    if let Some(rate) = args.rate {
        println!(
            "offered load: {rate} messages/s (open loop, at most {} in flight)",
            args.concurrency
        );
    }
    if let Some(url) = args
        .postgres
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
    {
        // Host and port only: the URL may hold a password.
        println!(
            "monitor and De/Para stores: PostgreSQL at {}:{}, a database per run",
            url.host_str().unwrap_or_default(),
            url.port().unwrap_or(5432)
        );
    }
    println!(
        "run files in: {}",
        args.data_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .display()
    );
    println!();
    println!("each run (msg/s, p50 ms, p99 ms, max ms):");
    for summary in summaries {
        let name = summary.backend.name();
        for (i, (run, raw)) in summary.runs.iter().zip(&summary.raw).enumerate() {
            println!(
                "  {name:<9} #{}  delivered {:>7.0} {:>7.1} {:>7.1} {:>8.1}   accepted {:>7.0} {:>7.1} {:>7.1}   raw append {:>7.0} {:>7.1} {:>7.1}   CPU {:.3} ms, {:.1} switches per message{}{}{}",
                i + 1,
                run.delivered.per_second,
                run.delivered.p50_ms,
                run.delivered.p99_ms,
                run.delivered.max_ms,
                run.accepted.per_second,
                run.accepted.p50_ms,
                run.accepted.p99_ms,
                raw.per_second,
                raw.p50_ms,
                raw.p99_ms,
                run.cpu_ms_per_message(),
                run.switches_per_message(),
                if run.cut {
                    format!(
                        "   CUT at {} s: {} of {} delivered",
                        args.max_seconds, run.delivered.count, args.messages
                    )
                } else {
                    String::new()
                },
                if run.errors > 0 {
                    format!(
                        "   {} errors, first: {}",
                        run.errors,
                        run.first_error.as_deref().unwrap_or("")
                    )
                } else {
                    String::new()
                },
                if run.repeated > 0 {
                    format!("   {} seen twice on the route topic", run.repeated)
                } else {
                    String::new()
                },
            );
        }
    }
    println!();
    println!("medians over the repetitions:");
    println!(
        "{:<9} {:<36} {:>9} {:>9} {:>9}",
        "backend", "path", "msg/s", "p50 ms", "p99 ms"
    );
    for summary in summaries {
        let name = summary.backend.name();
        let runs = &summary.runs;
        row(
            name,
            "REST → log → route topic (end to end)",
            med(runs.iter().map(|r| r.delivered.per_second)),
            med(runs.iter().map(|r| r.delivered.p50_ms)),
            med(runs.iter().map(|r| r.delivered.p99_ms)),
        );
        row(
            name,
            "REST → HTTP 202 (ingest only)",
            med(runs.iter().map(|r| r.accepted.per_second)),
            med(runs.iter().map(|r| r.accepted.p50_ms)),
            med(runs.iter().map(|r| r.accepted.p99_ms)),
        );
        row(
            name,
            "raw append, same bytes (ceiling)",
            med(summary.raw.iter().map(|r| r.per_second)),
            med(summary.raw.iter().map(|r| r.p50_ms)),
            med(summary.raw.iter().map(|r| r.p99_ms)),
        );
    }
    println!();
    println!("process CPU time and context switches per message (bus and load tool, medians):");
    for summary in summaries {
        println!(
            "{:<9} {:.3} ms CPU, {:.1} context switches",
            summary.backend.name(),
            med(summary.runs.iter().map(PipelineRun::cpu_ms_per_message)),
            med(summary.runs.iter().map(PipelineRun::switches_per_message)),
        );
    }
    println!();
    for summary in summaries {
        let path = med(summary.runs.iter().map(|r| r.delivered.per_second));
        let p99 = med(summary.runs.iter().map(|r| r.delivered.p99_ms));
        let ceiling = med(summary.raw.iter().map(|r| r.per_second));
        let ratio = path / ceiling;
        match summary.backend {
            Backend::Embedded => println!(
                "embedded: {path:.0} msg/s (target ≥ 5,000: {}), p99 {p99:.1} ms (target < 50 ms: {}); path ÷ raw append = {ratio:.2}",
                verdict(path >= 5_000.0, path / 5_000.0),
                verdict(p99 < 50.0, 50.0 / p99),
            ),
            Backend::Kafka { .. } => println!(
                "kafka: path ÷ raw producer ceiling = {path:.0} ÷ {ceiling:.0} = {ratio:.2} (target ≥ 0.60: {})",
                verdict(ratio >= 0.6, ratio / 0.6),
            ),
        }
    }
}

fn verdict(met: bool, fraction: f64) -> String {
    if met {
        "met".into()
    } else {
        format!("MISSED, at {:.0}% of it", fraction * 100.0)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("EAIBUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    eaibus::transport::install_crypto();
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    anyhow::ensure!(
        args.rate.is_none_or(|r| r > 0.0 && r.is_finite()),
        "--rate must be a positive number of messages per second"
    );

    let mut backends = Vec::new();
    if args.backend != Backends::Kafka {
        backends.push(Backend::Embedded);
    }
    if let Some(url) = &args.postgres {
        let url = reqwest::Url::parse(url).context("--postgres is not a URL")?;
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            bail!(
                "--postgres names no host: give a loopback one (postgres://USER@127.0.0.1:5432/DB)"
            );
        };
        check_loopback(&format!("{host}:{}", url.port().unwrap_or(5432)))?;
    }
    if args.backend != Backends::Embedded {
        match args
            .brokers
            .clone()
            .or_else(|| std::env::var("EAIBUS_TEST_KAFKA").ok())
            .filter(|b| !b.trim().is_empty())
        {
            Some(brokers) => {
                check_loopback(&brokers)?;
                backends.push(Backend::Kafka { brokers });
            }
            None if args.backend == Backends::Kafka => {
                bail!(
                    "no broker: pass --brokers or set EAIBUS_TEST_KAFKA (deploy/local/broker.sh start)"
                )
            }
            None => eprintln!(
                "note: no broker (--brokers or EAIBUS_TEST_KAFKA); the Kafka backend is skipped"
            ),
        }
    }

    let mut summaries = Vec::new();
    for backend in backends {
        let mut summary = Summary {
            backend: backend.clone(),
            runs: Vec::new(),
            raw: Vec::new(),
        };
        for repetition in 1..=args.repetitions {
            let name = backend.name();
            let n = args.repetitions;
            let run = pipeline_run(
                &args,
                &backend,
                &format!("{name} {repetition}/{n} end to end"),
            )
            .await?;
            eprintln!(
                "{name} {repetition}/{n}: end to end {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms; ingest {:.0} msg/s",
                run.delivered.per_second,
                run.delivered.p50_ms,
                run.delivered.p99_ms,
                run.accepted.per_second
            );
            summary.runs.push(run);
            let raw = raw_run(
                &args,
                &backend,
                &format!("{name} {repetition}/{n} raw append"),
            )
            .await?;
            eprintln!(
                "{name} {repetition}/{n}: raw append {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms",
                raw.per_second, raw.p50_ms, raw.p99_ms
            );
            summary.raw.push(raw);
        }
        summaries.push(summary);
    }
    report(&args, &summaries);
    let cut = summaries.iter().flat_map(|s| &s.runs).any(|r| r.cut);
    if cut {
        bail!("a run did not finish within --max-seconds; its figures are partial");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn messages_carry_their_index_in_the_uuid() {
        let messages = Messages::new(0xabcdef01, 3).unwrap();
        let body: Value = serde_json::from_slice(&messages.bodies[2]).unwrap();
        let uuid = body["Header"]["UUID"].as_str().unwrap();
        assert_eq!(uuid, "abcdef01-0000-4000-8000-000000000002");
        assert_eq!(messages.index_of(uuid), Some(2));
        assert_eq!(body["Content"]["InternalId"], messages.keys[2].as_str());
        assert_ne!(messages.keys[0], messages.keys[1]);
    }

    #[test]
    fn only_loopback_brokers_are_accepted() {
        assert!(check_loopback("127.0.0.1:9092").is_ok());
        assert!(check_loopback("localhost:9092,[::1]:9093").is_ok());
        assert!(check_loopback("10.0.0.5:9092").is_err());
        assert!(check_loopback("kafka:9092").is_err());
    }
}
