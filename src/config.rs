//! `config/eaibus.toml`: where eaibus listens, which log and store it uses, how it delivers.
//! Every field has a default, so eaibus runs with no file at all on the embedded log and store
//! under `./data`. Unknown keys are errors, reported with file and line at start-up.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub log: Log,
    pub store: Store,
    pub delivery: Delivery,
    pub ingest: Ingest,
    pub identity: Identity,
    pub paths: Paths,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address of the HTTP server (EAI REST and SOAP endpoints, API, monitor).
    pub listen: String,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogBackend {
    Embedded,
    Kafka,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub backend: LogBackend,
    /// SQLite file of the embedded log.
    pub path: PathBuf,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Prefix of every topic eaibus writes (`eai.` gives `eai.retailsales`).
    pub topic_prefix: String,
    /// Partitions of the topics eaibus creates.
    pub partitions: i32,
    /// Extra librdkafka properties of the Kafka backend (`"fetch.wait.max.ms" = "50"`, SASL, TLS).
    pub kafka_properties: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// `sqlite://FILE` or `postgres://...`: the monitor store.
    pub url: String,
    /// `sqlite://FILE` or `postgres://...`: De/Para (may be the same PostgreSQL database).
    pub depara_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Automatic attempts before a message is Bloqueado (Protheus uses 4).
    pub max_attempts: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Timeout of one call to an EAI endpoint.
    pub timeout_ms: u64,
    /// How long a started attempt belongs to its worker: an async delivery waits this long for
    /// its Response, and an attempt of a worker that died is taken up again after it.
    pub lease_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// Kafka topics eaibus consumes standard messages from (an ERP publishing there).
    pub kafka_topics: Vec<String>,
    /// How long a UUID is remembered to answer a repeat the same way.
    pub idempotency_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// SourceApplication of the messages eaibus writes (responses, receipts).
    pub application: String,
    /// ProductName of the messages eaibus writes.
    pub product: String,
    pub product_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub adapters: PathBuf,
    pub routes: PathBuf,
    pub depara: PathBuf,
    pub data: PathBuf,
    /// Schemas directory; none means the set built into the binary.
    pub schemas: Option<PathBuf>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            max_message_bytes: crate::message::Limits::default().max_bytes,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            backend: LogBackend::Embedded,
            path: PathBuf::from("data/log.db"),
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "eai.".into(),
            partitions: 3,
            kafka_properties: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Store {
            url: "sqlite://data/eaibus.db".into(),
            depara_url: "sqlite://data/depara.db".into(),
        }
    }
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            max_attempts: 4,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
            timeout_ms: 30_000,
            lease_ms: 5 * 60_000,
        }
    }
}

impl Default for Ingest {
    fn default() -> Self {
        Ingest {
            kafka_topics: Vec::new(),
            idempotency_hours: 7 * 24,
        }
    }
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            application: "EAIBUS".into(),
            product: "EAIBUS".into(),
            product_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            adapters: PathBuf::from("adapters"),
            routes: PathBuf::from("config/routes.toml"),
            depara: PathBuf::from("config/depara"),
            data: PathBuf::from("data"),
            schemas: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
}

impl Config {
    /// Reads the file if it exists; a missing file means every default.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                reason: e.message().to_owned(),
            }
        })
    }

    /// The topic of a transaction: `eai.retailsales`.
    pub fn topic(&self, transaction: &str) -> String {
        format!(
            "{}{}",
            self.log.topic_prefix,
            transaction.to_ascii_lowercase()
        )
    }

    pub fn dlq_topic(&self) -> String {
        format!("{}dlq", self.log.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_the_embedded_defaults() {
        let config = Config::load(Path::new("/nonexistent/eaibus.toml")).unwrap();
        assert_eq!(config.log.backend, LogBackend::Embedded);
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.topic("RETAILSALES"), "eai.retailsales");
        assert_eq!(config.dlq_topic(), "eai.dlq");
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let text =
            "[server]\nlisten = \"0.0.0.0:1\"\n\n[log]\nbackend = \"kafka\"\nbrokerz = \"x\"\n";
        match Config::parse(Path::new("eaibus.toml"), text) {
            Err(ConfigError::Invalid { line, reason, .. }) => {
                assert_eq!(line, 6, "{reason}");
                assert!(reason.contains("brokerz"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
