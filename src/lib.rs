//! eaibus: an integration bus between systems that speak the TOTVS standard message (EAI
//! "Mensagem Única") and Kafka. The library holds every part; the `eaibus` binary is its command
//! line.

pub mod adapter;
pub mod bus;
pub mod config;
pub mod delivery;
pub mod ingest;
pub mod log;
pub mod message;
pub mod monitor;
pub mod ops;
pub mod order;
pub mod schema;
pub mod simulator;
pub mod telemetry;
pub mod transport;
pub mod web;
