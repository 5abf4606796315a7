//! Shared helpers of the end-to-end tests (`tests/e2e_*.rs`): a fake Protheus, an in-process
//! eaibus (the same parts `eaibus serve` assembles) bound on 127.0.0.1:0 with its own temporary
//! adapters, routes, De/Para seeds, data files and topic prefix, and message builders.
//!
//! Kafka: a test asks [`kafka_brokers`] for the broker of `EAIBUS_TEST_KAFKA`; unset, the test is
//! skipped with a note, except under `CI=true`, where it fails.

#![allow(dead_code, unused_imports)]

pub mod fake_protheus;
pub mod messages;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use eaibus::adapter::DeParaStore;
use eaibus::bus::Bus;
use eaibus::config::{Config, LogBackend};
use eaibus::delivery::Deliverer;
use eaibus::ingest::dlq::DeadLetter;
use eaibus::log::{Consumer, EventLog, LogError, NewRecord, Position, Record};
use eaibus::monitor::{MessageRecord, Situation};
use serde_json::Value;
use tokio::sync::watch;

pub use fake_protheus::{Behavior, FakeProtheus, Recorded, Transport};
pub use messages::*;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The credentials of the Protheus routes (both ways: eaibus → Protheus and Protheus → eaibus).
/// Names unique to this test binary, values unique to this run; set once, before any test
/// starts a runtime, since the environment is process-wide.
pub struct RouteCredentials {
    pub user_env: String,
    pub password_env: String,
    pub user: String,
    pub password: String,
}

pub fn credentials() -> &'static RouteCredentials {
    static CREDENTIALS: OnceLock<RouteCredentials> = OnceLock::new();
    CREDENTIALS.get_or_init(|| {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default()
            .split('-')
            .next()
            .unwrap_or("e2e")
            .to_ascii_uppercase();
        let c = RouteCredentials {
            user_env: format!("EAIBUS_{binary}_PROTHEUS_USER"),
            password_env: format!("EAIBUS_{binary}_PROTHEUS_PASSWORD"),
            user: format!("omni-{}", tag()),
            password: format!("s3cr:{}", tag()),
        };
        // SAFETY: runs once per process, first thing in a test (`Eaibus::start`); every other
        // test of the binary that gets here meanwhile waits in `get_or_init`. No other thread of
        // these tests reads the environment at that point (runtime workers are still idle).
        unsafe {
            std::env::set_var(&c.user_env, &c.user);
            std::env::set_var(&c.password_env, &c.password);
        }
        eaibus::transport::install_crypto();
        c
    })
}

pub fn basic_authorization(user: &str, password: &str) -> String {
    eaibus::transport::auth::basic_header(user, password)
}

/// Which event log the bus runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogKind {
    Embedded,
    Kafka(String),
}

/// The broker of `EAIBUS_TEST_KAFKA`; `None` (skip, with a note) when unset, a failure under
/// `CI=true`.
pub fn kafka_brokers(test: &str) -> Option<String> {
    match std::env::var("EAIBUS_TEST_KAFKA") {
        Ok(brokers) if !brokers.trim().is_empty() => Some(brokers),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "EAIBUS_TEST_KAFKA is not set under CI=true; start the broker (deploy/local/test.sh)"
        ),
        _ => {
            eprintln!(
                "note: skipping {test} on Kafka: EAIBUS_TEST_KAFKA is not set (deploy/local/test.sh sets it)"
            );
            None
        }
    }
}

/// What an in-process eaibus is started with.
#[derive(Debug, Clone)]
pub struct Options {
    pub log: LogKind,
    pub max_attempts: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// `delivery.timeout_ms` and the Protheus routes' `timeout_ms`.
    pub timeout_ms: u64,
    /// Routes to Protheus carry credentials (env variables) both ways.
    pub credentials: bool,
    /// De/Para pairs of reference OMNI: alias, field, external, internal.
    pub seeds: Vec<[String; 4]>,
    /// Text replacements in the copied adapter files: (file name, from, to).
    pub adapter_edits: Vec<(String, String, String)>,
    /// Create the Kafka route's target topic before starting (eaibus does not create it).
    pub create_route_topic: bool,
    /// Appends to the Kafka route's topic fail as with a broker down (retryable).
    pub route_topic_down: bool,
    /// With `route_topic_down`: the topic refuses the messages for good instead (permanent).
    pub route_topic_refuses: bool,
    pub partitions: i32,
    /// `order_trace` of the OMNI route (the traceability version it receives).
    pub order_trace: Option<String>,
    /// Run the order projection as `serve` does (in its own consumer group).
    pub projection: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log: LogKind::Embedded,
            max_attempts: 4,
            backoff_initial_ms: 50,
            backoff_max_ms: 400,
            timeout_ms: 5_000,
            credentials: true,
            seeds: default_seeds(),
            adapter_edits: Vec::new(),
            create_route_topic: true,
            route_topic_down: false,
            route_topic_refuses: false,
            partitions: 3,
            order_trace: None,
            projection: false,
        }
    }
}

impl Options {
    pub fn on(log: LogKind) -> Options {
        Options {
            log,
            ..Options::default()
        }
    }

    pub fn edit(mut self, file: &str, from: &str, to: &str) -> Options {
        self.adapter_edits
            .push((file.to_owned(), from.to_owned(), to.to_owned()));
        self
    }
}

/// The names of the routes of one eaibus (suffixed on Kafka, where consumer groups are shared).
#[derive(Debug, Clone)]
pub struct Routes {
    pub protheus: String,
    pub protheus_soap: String,
    pub omni: String,
}

/// One eaibus running in this process, with its fake Protheus.
pub struct Eaibus {
    pub dir: tempfile::TempDir,
    pub bus: Bus,
    pub url: String,
    pub http: reqwest::Client,
    pub fake: FakeProtheus,
    pub prefix: String,
    pub routes: Routes,
    /// The Kafka route's topic (OMNI reads order traceability there).
    pub omni_topic: String,
    /// With `route_topic_down`: while true, appends to the route's topic fail; a test may
    /// bring the topic back.
    pub route_topic_down: Arc<AtomicBool>,
    /// With `route_topic_down`: the messages refused so far, each time it was tried.
    pub route_topic_refusals: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn copy_adapters(to: &Path, routes: &Routes, edits: &[(String, String, String)]) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::create_dir_all(to).expect("adapters dir");
    for entry in std::fs::read_dir(&from).expect("the shipped adapters") {
        let path = entry.expect("an entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let mut text = std::fs::read_to_string(&path).expect("an adapter file");
        // Edits first (they name the shipped route names), then the per-test route names.
        for (file, a, b) in edits {
            if *file == name {
                assert!(text.contains(a.as_str()), "{name} has no {a:?} to edit");
                text = text.replace(a.as_str(), b);
            }
        }
        text = text
            .replace(
                "route = \"protheus\"",
                &format!("route = \"{}\"", routes.protheus),
            )
            .replace(
                "route = \"protheus-soap\"",
                &format!("route = \"{}\"", routes.protheus_soap),
            )
            .replace("route = \"omni\"", &format!("route = \"{}\"", routes.omni));
        std::fs::write(to.join(&name), text).expect("an adapter copy");
    }
}

fn routes_toml(routes: &Routes, fake: &str, omni_topic: &str, options: &Options) -> String {
    let c = credentials();
    let auth = if options.credentials {
        format!(
            "user_env = \"{}\"\npassword_env = \"{}\"\n",
            c.user_env, c.password_env
        )
    } else {
        String::new()
    };
    let order_trace = options
        .order_trace
        .as_ref()
        .map(|v| format!("order_trace = \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        r#"[[route]]
name = "{protheus}"
product = "PROTHEUS"
application = "PROTHEUS"
kind = "eai-rest"
target = "{fake}/totvseai/standardmessage/v1/transactions"
{auth}timeout_ms = {timeout}

[[route]]
name = "{soap}"
product = "PROTHEUS"
application = "PROTHEUS"
kind = "eai-soap"
target = "{fake}/EAISERVICE.apw"
{auth}timeout_ms = {timeout}

[[route]]
name = "{omni}"
product = "OMNI"
application = "OMNI"
kind = "kafka"
target = "{omni_topic}"
{order_trace}"#,
        protheus = routes.protheus,
        soap = routes.protheus_soap,
        omni = routes.omni,
        timeout = options.timeout_ms,
    )
}

fn seeds_csv(seeds: &[[String; 4]]) -> String {
    let mut text = String::from("reference,alias,field,external,internal\n");
    for [alias, field, external, internal] in seeds {
        text.push_str(&format!("OMNI,{alias},{field},{external},{internal}\n"));
    }
    text
}

fn sqlite_url(path: PathBuf) -> String {
    format!("sqlite://{}", path.display())
}

impl Eaibus {
    /// Starts a fake Protheus and an eaibus wired to it.
    pub async fn start(test: &str, options: Options) -> Eaibus {
        let c = credentials();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let t = tag();
        let prefix = format!("e2e-{test}-{t}.");
        let routes = match options.log {
            LogKind::Embedded => Routes {
                protheus: "protheus".into(),
                protheus_soap: "protheus-soap".into(),
                omni: "omni".into(),
            },
            LogKind::Kafka(_) => Routes {
                protheus: format!("protheus-{t}"),
                protheus_soap: format!("protheus-soap-{t}"),
                omni: format!("omni-{t}"),
            },
        };
        let omni_topic = format!("{prefix}omni.order-trace");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("eaibus binds");
        let address = listener.local_addr().expect("an address");
        let url = format!("http://{address}");
        let fake = FakeProtheus::start(
            &url,
            options
                .credentials
                .then(|| (c.user.clone(), c.password.clone())),
        )
        .await;

        copy_adapters(
            &dir.path().join("adapters"),
            &routes,
            &options.adapter_edits,
        );
        std::fs::write(
            dir.path().join("routes.toml"),
            routes_toml(&routes, &fake.url, &omni_topic, &options),
        )
        .expect("routes.toml");
        std::fs::create_dir_all(dir.path().join("depara")).expect("depara dir");
        std::fs::write(
            dir.path().join("depara/pairs.csv"),
            seeds_csv(&options.seeds),
        )
        .expect("seeds");

        let mut config = Config::default();
        config.server.listen = address.to_string();
        config.log.path = dir.path().join("data/log.db");
        config.log.topic_prefix = prefix.clone();
        config.log.partitions = options.partitions;
        if let LogKind::Kafka(brokers) = &options.log {
            config.log.backend = LogBackend::Kafka;
            config.log.brokers = brokers.clone();
        }
        config.store.url = sqlite_url(dir.path().join("data/eaibus.db"));
        config.store.depara_url = sqlite_url(dir.path().join("data/depara.db"));
        config.delivery.max_attempts = options.max_attempts;
        config.delivery.backoff_initial_ms = options.backoff_initial_ms;
        config.delivery.backoff_max_ms = options.backoff_max_ms;
        config.delivery.timeout_ms = options.timeout_ms;
        config.paths.adapters = dir.path().join("adapters");
        config.paths.routes = dir.path().join("routes.toml");
        config.paths.depara = dir.path().join("depara");
        config.paths.data = dir.path().join("data");

        let mut bus = Bus::open(config).await.expect("the bus opens");
        if options.create_route_topic {
            bus.log
                .ensure_topic(&omni_topic, options.partitions)
                .await
                .expect("the route topic");
        }
        let route_topic_down = Arc::new(AtomicBool::new(options.route_topic_down));
        let route_topic_refusals = Arc::new(AtomicUsize::new(0));
        if options.route_topic_down {
            bus.log = Arc::new(TopicDown {
                inner: bus.log.clone(),
                topic: omni_topic.clone(),
                down: route_topic_down.clone(),
                permanent: options.route_topic_refuses,
                refused: route_topic_refusals.clone(),
            });
        }
        let deliverer = Deliverer::new(bus.clone());
        bus.delivery = Some(deliverer.clone());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = deliverer.spawn(stopped.clone());
        if options.projection {
            let (bus, stopped) = (bus.clone(), stopped.clone());
            // `serve`'s projection (eaibus::order::projection::run), in a consumer group of its
            // own: on a shared broker, groups are shared between runs.
            let options = eaibus::order::projection::ProjectionOptions {
                group: format!("{}.{t}", eaibus::order::PROJECTION_GROUP),
                trace: eaibus::order::projection::trace_targets_of(&bus),
                poll_timeout: Duration::from_millis(100),
            };
            tasks.push(tokio::spawn(async move {
                let store = eaibus::order::store::OrderStore::open_for(&bus.config)
                    .await
                    .expect("the order read model opens");
                eaibus::order::projection::run_with(bus, store, options, stopped)
                    .await
                    .expect("the order projection runs");
            }));
        }
        let app = eaibus::transport::server::router(bus.clone());
        let mut stop_signal = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_signal.changed().await;
                })
                .await;
        }));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Eaibus {
            dir,
            bus,
            url,
            http,
            fake,
            prefix,
            routes,
            omni_topic,
            route_topic_down,
            route_topic_refusals,
            stop,
            tasks,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }

    pub fn rest_url(&self) -> String {
        format!("{}{}", self.url, fake_protheus::REST_PATH)
    }

    pub fn soap_url(&self) -> String {
        format!("{}{}", self.url, fake_protheus::SOAP_PATH)
    }

    pub fn topic(&self, transaction: &str) -> String {
        self.bus.config.topic(transaction)
    }

    /// POSTs a JSON message to the REST endpoint as OMNI; the status and the body (JSON, or
    /// `Value::String` when it is not JSON).
    pub async fn post_json(&self, message: &Value) -> (u16, Value) {
        self.post_json_as(message, None).await
    }

    /// As [`Eaibus::post_json`], with Basic credentials (Protheus posting to eaibus).
    pub async fn post_json_as(
        &self,
        message: &Value,
        credentials: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.rest_url())
            .header("Content-Type", "application/json")
            .body(message.to_string());
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.expect("eaibus answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// POSTs bytes to a path (with query) of eaibus; the status and the body text.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = self.http.post(format!("{}{path}", self.url)).body(body);
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let response = request.send().await.expect("eaibus answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// POSTs a SOAP envelope; the status, the envelope and the TOTVSMessage in
    /// `RECEIVEMESSAGERESULT` (empty for a fault).
    pub async fn post_soap(
        &self,
        envelope: &str,
        credentials: Option<(&str, &str)>,
    ) -> (u16, String, String) {
        let mut request = self
            .http
            .post(self.soap_url())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header(
                "SOAPAction",
                "http://webservices.microsiga.com.br/fweai.apw/RECEIVEMESSAGE",
            )
            .body(envelope.to_owned());
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.expect("eaibus answers");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let inner = xml_element_text(&body, "RECEIVEMESSAGERESULT").unwrap_or_default();
        (status, body, inner)
    }

    pub async fn healthy(&self) -> bool {
        match self.http.get(format!("{}/healthz", self.url)).send().await {
            Ok(r) => r.status().is_success() && r.text().await.unwrap_or_default() == "ok",
            Err(_) => false,
        }
    }

    pub async fn record(&self, uuid: &str) -> MessageRecord {
        self.bus
            .monitor
            .get(uuid)
            .await
            .expect("the monitor answers")
            .unwrap_or_else(|| panic!("the monitor has no message {uuid}"))
    }

    /// Waits until the message is in `situation`.
    pub async fn wait_situation(&self, uuid: &str, situation: Situation) -> MessageRecord {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let record = self
                .bus
                .monitor
                .get(uuid)
                .await
                .expect("the monitor answers");
            if let Some(r) = &record
                && r.situation == situation
            {
                return r.clone();
            }
            if Instant::now() > deadline {
                let timeline = self.bus.monitor.timeline(uuid).await.unwrap_or_default();
                panic!(
                    "{uuid} did not reach {situation} in {PATIENCE:?}: {:?}\ntimeline: {:#?}",
                    record.map(|r| (r.situation, r.stage, r.last_error)),
                    timeline
                        .iter()
                        .map(|t| (
                            t.route.clone(),
                            t.situation,
                            t.stage,
                            t.attempt,
                            t.detail.clone()
                        ))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the message's delivery along `route` is in `situation`.
    pub async fn wait_delivery(
        &self,
        uuid: &str,
        route: &str,
        situation: Situation,
    ) -> eaibus::monitor::DeliveryRecord {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let delivery = self
                .bus
                .monitor
                .delivery(uuid, route)
                .await
                .expect("the monitor answers");
            if let Some(d) = &delivery
                && d.situation == situation
            {
                return d.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the delivery of {uuid} along {route} did not reach {situation}: {delivery:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// (route, situation, attempt, detail) of each timeline entry.
    pub async fn timeline(
        &self,
        uuid: &str,
    ) -> Vec<(Option<String>, Situation, Option<i64>, Option<String>)> {
        self.bus
            .monitor
            .timeline(uuid)
            .await
            .expect("the monitor answers")
            .into_iter()
            .map(|t| (t.route, t.situation, t.attempt, t.detail))
            .collect()
    }

    /// The situation of the message's delivery along `route`.
    pub async fn delivery_situation(&self, uuid: &str, route: &str) -> Option<Situation> {
        self.bus
            .monitor
            .delivery(uuid, route)
            .await
            .expect("the monitor answers")
            .map(|d| d.situation)
    }

    pub async fn depara_internal(
        &self,
        alias: &str,
        field: &str,
        external: &str,
    ) -> Option<String> {
        self.bus
            .depara
            .internal("OMNI", alias, field, external)
            .await
            .expect("the De/Para answers")
    }

    /// Waits until the De/Para has the pair.
    pub async fn wait_depara(&self, alias: &str, field: &str, external: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(internal) = self.depara_internal(alias, field, external).await {
                return internal;
            }
            assert!(
                Instant::now() < deadline,
                "the De/Para did not learn OMNI/{alias}/{field}/{external}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn topic_records(&self, topic: &str) -> Vec<Record> {
        read_topic(self.bus.log.as_ref(), topic).await
    }

    /// Waits until `topic` holds a record whose `uuid` header is `uuid`.
    pub async fn wait_on_topic(&self, topic: &str, uuid: &str) -> Record {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(r) = self
                .topic_records(topic)
                .await
                .into_iter()
                .find(|r| r.header("uuid") == Some(uuid))
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{uuid} did not reach the topic {topic} in {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        self.topic_records(&self.bus.config.dlq_topic())
            .await
            .iter()
            .map(DeadLetter::from_record)
            .collect()
    }
}

/// POSTs a JSON message with a given client (for tasks that outlive a borrow of [`Eaibus`]).
pub async fn post_json_to(http: &reqwest::Client, url: &str, message: &Value) -> (u16, Value) {
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .expect("eaibus answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every record of every partition of `topic`.
pub async fn read_topic(log: &dyn EventLog, topic: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for partition in log.partitions(topic).await.expect("the topic's partitions") {
        let end = log
            .end_offset(topic, partition)
            .await
            .expect("an end offset");
        let mut offset = 0;
        while offset < end {
            let batch = log
                .read(topic, partition, offset, 1000)
                .await
                .expect("records");
            let Some(last) = batch.last() else { break };
            offset = last.offset + 1;
            out.extend(batch);
        }
    }
    out
}

/// Polls `check` until it gives a value, failing with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An event log whose appends to one topic fail as when the broker is down.
struct TopicDown {
    inner: Arc<dyn EventLog>,
    topic: String,
    down: Arc<AtomicBool>,
    permanent: bool,
    refused: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl EventLog for TopicDown {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError> {
        self.inner.ensure_topic(topic, partitions).await
    }

    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError> {
        let for_topic = records.iter().filter(|r| r.topic == self.topic).count();
        if self.down.load(Ordering::SeqCst) && for_topic > 0 {
            self.refused.fetch_add(for_topic, Ordering::SeqCst);
            if self.permanent {
                return Err(LogError::Refused(format!(
                    "test: {} refuses these messages",
                    self.topic
                )));
            }
            return Err(LogError::Unavailable(format!(
                "test: the broker of {} is down",
                self.topic
            )));
        }
        self.inner.append(records).await
    }

    async fn partitions(&self, topic: &str) -> Result<Vec<i32>, LogError> {
        self.inner.partitions(topic).await
    }

    async fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        self.inner.end_offset(topic, partition).await
    }

    async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, LogError> {
        self.inner
            .offset_for_time(topic, partition, timestamp_ms)
            .await
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        self.inner.read(topic, partition, offset, max).await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, LogError> {
        self.inner.subscribe(group, topics).await
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, LogError> {
        self.inner.committed(group, topic, partition).await
    }
}
