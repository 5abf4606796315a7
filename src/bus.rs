//! The running bus: configuration, schemas, adapter table, event log and stores, opened once and
//! shared by ingest, delivery and the HTTP server.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;

use crate::adapter::{AdapterTable, DePara};
use crate::config::Config;
use crate::log::EventLog;
use crate::message::{Codec, Limits, Message};
use crate::monitor::MonitorStore;
use crate::schema::SchemaRegistry;

/// What ingest asks of delivery (implemented by `delivery::Deliverer`).
#[async_trait]
pub trait Delivery: Send + Sync {
    /// Delivers a sync message at once and returns the target's Response.
    async fn deliver_now(&self, message: &Message, key: &str) -> Result<Message, String>;
    /// Hands over a Response that arrived for a message delivered asynchronously.
    async fn correlate(&self, response: &Message);
}

#[derive(Clone)]
pub struct Bus {
    pub config: Arc<Config>,
    pub registry: Arc<SchemaRegistry>,
    /// Swapped whole on reload, so a request sees one consistent table.
    pub adapters: Arc<ArcSwap<AdapterTable>>,
    pub log: Arc<dyn EventLog>,
    pub monitor: MonitorStore,
    pub depara: DePara,
    pub delivery: Option<Arc<dyn Delivery>>,
    /// UUIDs this process is ingesting right now: a repeat that arrives meanwhile waits for the
    /// first copy's answer instead of being appended twice.
    pub in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// UUIDs this process appended lately (see `ingest/appended.rs`).
    pub appended: Arc<crate::ingest::appended::Appended>,
}

/// Holds a UUID in [`Bus::in_flight`] until dropped.
pub struct InFlight {
    set: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    uuid: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.uuid);
        }
    }
}

impl Bus {
    pub fn codec(&self) -> Codec<'_> {
        Codec {
            registry: &self.registry,
            limits: Limits {
                max_bytes: self.config.server.max_message_bytes,
                ..Limits::default()
            },
        }
    }

    pub fn adapter_table(&self) -> Arc<AdapterTable> {
        self.adapters.load_full()
    }

    /// Claims a UUID for ingest in this process; `None` when another copy holds it.
    pub fn claim(&self, uuid: &str) -> Option<InFlight> {
        let mut set = self.in_flight.lock().ok()?;
        set.insert(uuid.to_owned()).then(|| InFlight {
            set: self.in_flight.clone(),
            uuid: uuid.to_owned(),
        })
    }
}

/// Why the bus could not start. Every variant names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the schemas do not load: {0}")]
    Schemas(#[from] crate::schema::SchemaError),
    #[error("the adapter table does not load:\n{0}")]
    Adapters(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the event log cannot be opened: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("the monitor store cannot be opened: {0}")]
    Monitor(#[from] crate::monitor::MonitorError),
    #[error("the De/Para store cannot be opened: {0}")]
    DePara(#[from] crate::adapter::DeParaError),
    #[error("the De/Para seeds do not load: {0}")]
    Seeds(String),
}

/// Loads the schemas and the adapter table, reporting every adapter error.
pub fn load_tables(config: &Config) -> Result<(SchemaRegistry, AdapterTable), StartError> {
    let registry = match &config.paths.schemas {
        Some(dir) => SchemaRegistry::load_dir(dir)?,
        None => SchemaRegistry::embedded()?,
    };
    let table = AdapterTable::load(&config.paths.adapters, &config.paths.routes, &registry)
        .map_err(|errors| StartError::Adapters(errors.to_string()))?;
    Ok((registry, table))
}

fn sqlite_parent(location: &str) -> Option<std::path::PathBuf> {
    if location.starts_with("postgres") {
        return None;
    }
    let path = location
        .strip_prefix("sqlite://")
        .or_else(|| location.strip_prefix("sqlite:"))
        .unwrap_or(location);
    std::path::Path::new(path)
        .parent()
        .map(std::path::Path::to_path_buf)
}

fn create_dir(path: &std::path::Path) -> Result<(), StartError> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(|source| StartError::DataDir {
        path: path.to_owned(),
        source,
    })
}

impl Bus {
    /// Opens everything the configuration names: schemas, adapter table, log, stores, seeds.
    pub async fn open(config: Config) -> Result<Bus, StartError> {
        let (registry, table) = load_tables(&config)?;
        for location in [&config.store.url, &config.store.depara_url] {
            if let Some(dir) = sqlite_parent(location) {
                create_dir(&dir)?;
            }
        }
        let log: Arc<dyn EventLog> = match config.log.backend {
            crate::config::LogBackend::Embedded => {
                if let Some(dir) = config.log.path.parent() {
                    create_dir(dir)?;
                }
                Arc::new(crate::log::embedded::EmbeddedLog::open(&config.log.path).await?)
            }
            crate::config::LogBackend::Kafka => {
                // Route workers wait on fetches: a short fetch wait keeps delivery latency low
                // (brokers that answer only when the wait is over would otherwise add 500 ms).
                let mut kafka = crate::log::kafka::KafkaConfig::new(config.log.brokers.clone())
                    .property("fetch.wait.max.ms", "20");
                for (name, value) in &config.log.kafka_properties {
                    kafka = kafka.property(name.clone(), value.clone());
                }
                Arc::new(crate::log::kafka::KafkaLog::connect_with(kafka)?)
            }
        };
        let monitor = MonitorStore::open(&config.store.url)
            .await?
            .with_delivery_lease(std::time::Duration::from_millis(
                config.delivery.lease_ms.max(1),
            ));
        let depara = DePara::open(&config.store.depara_url).await?;
        if config.paths.depara.is_dir() {
            crate::adapter::depara::load_seeds(&depara, &config.paths.depara)
                .await
                .map_err(|e| StartError::Seeds(e.to_string()))?;
        }
        let bus = Bus {
            config: Arc::new(config),
            registry: Arc::new(registry),
            adapters: Arc::new(ArcSwap::from_pointee(table)),
            log,
            monitor,
            depara,
            delivery: None,
            in_flight: Arc::default(),
            appended: Arc::default(),
        };
        bus.ensure_topics().await?;
        crate::order::ensure_topics(&bus).await?;
        Ok(bus)
    }

    /// Creates the topics of every transaction with a schema, and the DLQ.
    pub async fn ensure_topics(&self) -> Result<(), crate::log::LogError> {
        let partitions = self.config.log.partitions;
        let mut names: Vec<String> = self
            .registry
            .all()
            .iter()
            .map(|s| self.config.topic(&s.name))
            .collect();
        names.sort();
        names.dedup();
        names.push(self.config.dlq_topic());
        // Kafka routes deliver to topics of their own, which must exist before the first send.
        let table = self.adapter_table();
        for route in table.routes().iter() {
            if let Some(topic) = route.topic() {
                names.push(topic.to_owned());
            }
        }
        for topic in names {
            self.log.ensure_topic(&topic, partitions).await?;
        }
        Ok(())
    }

    /// Loads the adapter table again; an invalid one is refused and the running one stays.
    pub fn reload_adapters(&self) -> Result<(), StartError> {
        let (_, table) = load_tables(&self.config)?;
        let new_topics: Vec<String> = table
            .routes()
            .iter()
            .filter_map(|r| r.topic().map(str::to_owned))
            .collect();
        self.adapters.store(Arc::new(table));
        // Topics of routes added by the reload are created in the background.
        let log = self.log.clone();
        let partitions = self.config.log.partitions;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for topic in new_topics {
                    let _ = log.ensure_topic(&topic, partitions).await;
                }
            });
        }
        Ok(())
    }
}
