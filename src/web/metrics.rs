//! Prometheus metrics at `/metrics` (text format 0.0.4). From the monitor store at scrape time:
//! per transaction and route, received, sent (delivered), errors (failed or not delivered),
//! parked and dropped (refused); per situation; and the end-to-end latency of delivered
//! deliveries (received → delivered) per route. From the instruments of this process
//! (`crate::telemetry`): ingest latency (received → accepted) per adapter and delivery latency
//! (accepted → delivered) per route. From the log at scrape time: the consumer lag of every
//! route's group (and of Kafka ingest's), end offsets minus committed offsets. Public, like most
//! scrape targets: it carries no personal data.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Shared, WebError};

pub fn routes() -> Router<Shared> {
    Router::new().route("/metrics", get(scrape))
}

/// A label value escaped as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn scrape(State(state): State<Shared>) -> Response {
    match render(&state).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Reads one count off a dashboard line.
type CountOf = fn(&crate::monitor::TransactionRouteCounts) -> i64;

pub async fn render(state: &Shared) -> Result<String, WebError> {
    let mut out = String::new();
    let lines = state.bus.monitor.counts_by_transaction_and_route().await?;
    let families: [(&str, &str, CountOf); 5] = [
        (
            "eaibus_messages_received_total",
            "Messages received, per transaction and route.",
            |c| c.received,
        ),
        (
            "eaibus_messages_sent_total",
            "Messages delivered along the route.",
            |c| c.delivered,
        ),
        (
            "eaibus_messages_errors_total",
            "Messages whose delivery failed or timed out.",
            |c| c.failed,
        ),
        (
            "eaibus_messages_parked_total",
            "Messages parked after their attempts ran out.",
            |c| c.parked,
        ),
        (
            "eaibus_messages_dropped_total",
            "Messages refused at the door.",
            |c| c.refused,
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for c in &lines {
            let _ = writeln!(
                out,
                "{name}{{transaction=\"{}\",route=\"{}\"}} {}",
                label(&c.transaction),
                label(c.route.as_deref().unwrap_or("")),
                value(c)
            );
        }
    }
    let counts = state.bus.monitor.counts().await?;
    let _ = writeln!(
        out,
        "# HELP eaibus_messages Messages per situation.\n# TYPE eaibus_messages gauge"
    );
    for (situation, n) in &counts.by_situation {
        let _ = writeln!(
            out,
            "eaibus_messages{{situation=\"{}\"}} {n}",
            label(situation.label())
        );
    }
    let _ = writeln!(
        out,
        "# HELP eaibus_duplicates_total Repeated arrivals of known UUIDs.\n# TYPE eaibus_duplicates_total counter\neaibus_duplicates_total {}",
        counts.duplicates
    );
    let name = "eaibus_end_to_end_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} From receipt to delivery, delivered deliveries (from the monitor store).\n# TYPE {name} histogram"
    );
    for h in state.db().await?.latency().await? {
        let route = label(&h.route);
        for (bound, n) in &h.buckets {
            let le = bound.map_or("+Inf".to_owned(), |ms| format!("{}", ms as f64 / 1000.0));
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_sum{{route=\"{route}\"}} {}",
            h.sum_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", h.count);
    }
    crate::telemetry::global().render(&mut out);
    consumer_lag(state, &mut out).await;
    Ok(out)
}

/// The topics each consumer group reads: every route's group (the topics of the adapters that
/// send along it, as the route workers subscribe) and Kafka ingest's group.
fn groups(state: &Shared) -> Vec<(String, String, Vec<String>)> {
    let bus = &state.bus;
    let table = bus.adapter_table();
    let mut groups = Vec::new();
    for route in table.routes().iter() {
        let mut topics: Vec<String> = table
            .adapters()
            .iter()
            .filter(|a| a.send && a.route == route.name)
            .map(|a| bus.config.topic(&a.message))
            .collect();
        topics.sort();
        topics.dedup();
        if !topics.is_empty() {
            groups.push((
                route.name.clone(),
                crate::delivery::group_of(&route.name),
                topics,
            ));
        }
    }
    if !bus.config.ingest.kafka_topics.is_empty() {
        groups.push((
            String::new(),
            crate::ingest::topics::GROUP.to_owned(),
            bus.config.ingest.kafka_topics.clone(),
        ));
    }
    groups
}

/// Records not yet committed by each group, per topic: the sum over partitions of the end offset
/// minus the committed offset (0 before the first commit). A topic that does not exist yet has
/// no line; a log that does not answer leaves the family empty rather than failing the scrape.
async fn consumer_lag(state: &Shared, out: &mut String) {
    let name = "eaibus_consumer_lag";
    let _ = writeln!(
        out,
        "# HELP {name} Records appended but not yet committed by the consumer group.\n# TYPE {name} gauge"
    );
    let log = &state.bus.log;
    for (route, group, topics) in groups(state) {
        for topic in topics {
            let Ok(partitions) = log.partitions(&topic).await else {
                continue;
            };
            let mut lag = 0_i64;
            for partition in partitions {
                let (Ok(end), Ok(committed)) = (
                    log.end_offset(&topic, partition).await,
                    log.committed(&group, &topic, partition).await,
                ) else {
                    continue;
                };
                lag += end.saturating_sub(committed.unwrap_or(0)).max(0);
            }
            let _ = writeln!(
                out,
                "{name}{{route=\"{}\",group=\"{}\",topic=\"{}\"}} {lag}",
                label(&route),
                label(&group),
                label(&topic)
            );
        }
    }
}
