//! Kafka ingest: standard messages an ERP publishes on the inbound topics go through the same
//! pipeline as HTTP ones. The offset is committed once the message is accounted for (accepted
//! into the log, or refused into the monitor store and the DLQ).

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::{Channel, Inbound, receive};
use crate::bus::Bus;
use crate::log::Position;

pub const GROUP: &str = "eaibus.ingest";

pub async fn consume(bus: Bus, topics: Vec<String>, mut shutdown: watch::Receiver<bool>) {
    if topics.is_empty() {
        return;
    }
    for topic in &topics {
        if let Err(e) = bus.log.ensure_topic(topic, bus.config.log.partitions).await {
            warn!(topic, error = %e, "An inbound topic could not be created.");
        }
    }
    let mut consumer = loop {
        match bus.log.subscribe(GROUP, &topics).await {
            Ok(c) => break c,
            Err(e) => {
                warn!(error = %e, "Kafka ingest cannot join its consumer group yet.");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    info!(topics = ?topics, "Kafka ingest consumes its inbound topics.");
    loop {
        let records = tokio::select! {
            _ = shutdown.changed() => return,
            r = consumer.poll(Duration::from_millis(200)) => r,
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "Kafka ingest cannot read its topics.");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for record in records {
            let inbound = Inbound {
                bytes: &record.payload,
                channel: Channel::Kafka,
                origin: format!("{}/{}/{}", record.topic, record.partition, record.offset),
                credentials: None,
                replays: 0,
            };
            let answer = receive(&bus, inbound).await;
            if answer.status == 503 {
                // Not accounted for yet (log or store down): leave the offset, read it again.
                warn!(topic = %record.topic, offset = record.offset, "An inbound record waits for the log or store.");
                let _ = consumer
                    .seek(&record.topic, record.partition, record.offset)
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
            let position = Position {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
            };
            if let Err(e) = consumer.commit(&position).await {
                warn!(error = %e, "An inbound offset could not be committed.");
            }
        }
    }
}
