//! One delivery attempt: render the message for the route, send it, and judge what came back.

use tracing::{info, warn};

use super::{Deliverer, now_ms, route_timeout};
use crate::adapter::{Adapter, Route, RouteKind, learn_from_response};
use crate::ingest::dlq::{self, DeadLetter};
use crate::log::NewRecord;
use crate::message::{Format, Header, JsonStyle, Message, MessageType, ResponseView};
use crate::monitor::{DeliveryOutcome, DeliveryStart, LearnedDePara};
use crate::transport::client::ClientError;

/// What an attempt came to, for a caller waiting on it (the sync path).
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The target answered with this Response.
    Answered(Box<Message>),
    /// The target took it (Kafka append, HTTP 202, Receipt) or it was delivered before.
    Accepted,
    Failed(String),
}

/// Words of Protheus errors that mean "something this depends on is not there yet": retry later.
const DEPENDENCY_ERRORS: [&str; 4] = [
    "nao integrad",
    "não integrad",
    "nao encontrad",
    "não encontrad",
];

impl Deliverer {
    /// Runs one attempt of `message` along `route` if the monitor store lets this caller start it.
    pub(crate) async fn attempt(
        &self,
        message: &Message,
        key: &str,
        adapter: &Adapter,
        route: &Route,
    ) -> Verdict {
        let uuid = message.uuid();
        let attempt = match self.bus.monitor.start_delivery(uuid, &route.name).await {
            Ok(DeliveryStart::Started { attempt }) => attempt,
            Ok(DeliveryStart::NotStarted { .. }) => {
                return self.earlier_verdict(uuid, &route.name).await;
            }
            Err(e) => return Verdict::Failed(format!("the monitor store is unavailable: {e}")),
        };
        let (outcome, verdict) = match route.kind {
            RouteKind::Kafka => self.to_topic(message, key, adapter, route, attempt).await,
            RouteKind::EaiRest | RouteKind::EaiSoap => {
                self.to_endpoint(message, adapter, route, attempt).await
            }
        };
        match outcome {
            Some(outcome) => self.record(message, route, attempt, outcome).await,
            None => {
                // Received (202 / Receipt): the attempt stays Executando, holding back the key's
                // later messages, until its Response arrives or the lease runs out and it is sent
                // again (Não entregue).
                let _ = self
                    .bus
                    .monitor
                    .add_timeline(
                        uuid,
                        Some(&route.name),
                        crate::monitor::Stage::Delivering,
                        crate::monitor::Situation::Executando,
                        "Received by the target; waiting for its Response.",
                    )
                    .await;
            }
        }
        verdict
    }

    /// What an earlier attempt of this delivery came to (a sync caller repeating a UUID).
    async fn earlier_verdict(&self, uuid: &str, route: &str) -> Verdict {
        let Ok(Some(delivery)) = self.bus.monitor.delivery(uuid, route).await else {
            return Verdict::Accepted;
        };
        let answered = delivery
            .response
            .as_deref()
            .and_then(|r| self.bus.codec().decode_json(r.as_bytes()).ok())
            .filter(|m| m.header.message_type() == MessageType::Response);
        match (delivery.situation, answered) {
            (crate::monitor::Situation::Finalizada, Some(response)) => {
                Verdict::Answered(Box::new(response))
            }
            (crate::monitor::Situation::Finalizada, None) => Verdict::Accepted,
            (situation, _) => Verdict::Failed(format!(
                "the delivery is {}: {}",
                situation.label(),
                delivery.last_error.unwrap_or_default()
            )),
        }
    }

    async fn to_topic(
        &self,
        message: &Message,
        key: &str,
        adapter: &Adapter,
        route: &Route,
        attempt: i64,
    ) -> (Option<DeliveryOutcome>, Verdict) {
        let codec = self.bus.codec();
        let (payload, format) = match adapter.format {
            Format::Xml => (codec.to_xml(message), "xml"),
            Format::Json => (codec.to_json(message, JsonStyle::Canonical), "json"),
        };
        self.append_to_topic(&message.header, payload, format, key, route, attempt)
            .await
    }

    async fn append_to_topic(
        &self,
        header: &Header,
        payload: String,
        format: &str,
        key: &str,
        route: &Route,
        attempt: i64,
    ) -> (Option<DeliveryOutcome>, Verdict) {
        let identity = (
            header.uuid(),
            header.transaction(),
            header.version().unwrap_or_default(),
        );
        let record = route_record(route, key, payload, identity, format);
        match self.bus.log.append(vec![record]).await {
            Ok(positions) => (
                Some(DeliveryOutcome::Delivered {
                    response: appended_at(positions.first()),
                }),
                Verdict::Accepted,
            ),
            Err(e) => {
                let error = format!("the topic {} refused the message: {e}", route.target);
                let outcome = if e.is_retryable() {
                    self.retry_or_park(error.clone(), attempt)
                } else {
                    DeliveryOutcome::DeadLettered {
                        error: error.clone(),
                    }
                };
                (Some(outcome), Verdict::Failed(error))
            }
        }
    }

    /// An attempt along a Kafka route that takes canonical JSON: the text stored at ingest is
    /// what the route gets (writing the decoded message again gives the same bytes), so the
    /// message is not decoded; its header says where and how. The append is not claimed
    /// first: the outcome is settled after it, in one write (`MonitorStore::settle_attempt`);
    /// `attempt` is the number this attempt would get (the delivery's count plus one).
    pub(crate) async fn attempt_stored(
        &self,
        header: &Header,
        canonical: &str,
        key: &str,
        route: &Route,
        attempt: i64,
    ) {
        let uuid = header.uuid();
        let (outcome, _) = self
            .append_to_topic(header, canonical.to_owned(), "json", key, route, attempt)
            .await;
        let Some(outcome) = outcome else {
            return;
        };
        match self
            .bus
            .monitor
            .settle_attempt(uuid, &route.name, &outcome)
            .await
        {
            Ok(Some(attempt)) => {
                let sent = Sent {
                    uuid,
                    transaction: header.transaction(),
                    canonical: &|| canonical.to_owned(),
                };
                self.announce(sent, route, attempt, &outcome).await;
            }
            Ok(None) => {
                info!(uuid, route = %route.name, "Another worker had taken this delivery; this copy on the topic is a duplicate.")
            }
            Err(e) => {
                warn!(uuid, error = %e, "A delivery outcome could not be recorded.")
            }
        }
    }

    async fn to_endpoint(
        &self,
        message: &Message,
        adapter: &Adapter,
        route: &Route,
        attempt: i64,
    ) -> (Option<DeliveryOutcome>, Verdict) {
        let credentials = match route.credentials() {
            Ok(c) => c,
            Err(e) => {
                let error = e.to_string();
                return (
                    Some(self.retry_or_park(error.clone(), attempt)),
                    Verdict::Failed(error),
                );
            }
        };
        let codec = self.bus.codec();
        let timeout = route_timeout(&self.bus, route);
        let reply = match route.kind {
            RouteKind::EaiSoap => {
                self.client
                    .send_soap(
                        &route.target,
                        &codec.to_xml(message),
                        credentials.as_ref(),
                        timeout,
                    )
                    .await
            }
            _ => {
                let body = match adapter.format {
                    Format::Xml => codec.to_xml(message),
                    Format::Json => codec.to_json(message, JsonStyle::Protheus),
                };
                self.client
                    .send_rest(&route.target, body, credentials.as_ref(), timeout)
                    .await
            }
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                let error = e.to_string();
                let outcome = if e.is_timeout() {
                    DeliveryOutcome::TimedOut {
                        error: error.clone(),
                        retry_at: self.next_retry(attempt),
                    }
                } else if e.is_retryable() {
                    self.retry_or_park(error.clone(), attempt)
                } else {
                    permanent(&e)
                };
                return (Some(outcome), Verdict::Failed(error));
            }
        };
        if reply.is_accepted() || reply.body.trim().is_empty() {
            return (None, Verdict::Accepted);
        }
        let answer = match codec.decode(reply.body.as_bytes()) {
            Ok((m, _)) => m,
            Err(e) => {
                let error = format!(
                    "the answer of {} is not a standard message: {e}",
                    route.name
                );
                return (
                    Some(DeliveryOutcome::DeadLettered {
                        error: error.clone(),
                    }),
                    Verdict::Failed(error),
                );
            }
        };
        match answer.header.message_type() {
            MessageType::Receipt => (None, Verdict::Accepted),
            _ => {
                let outcome = self
                    .judge_response(message, adapter, route, &answer, attempt)
                    .await;
                let verdict = match &outcome {
                    DeliveryOutcome::Delivered { .. } => Verdict::Answered(Box::new(answer)),
                    other => Verdict::Failed(other.error().unwrap_or_default().to_owned()),
                };
                (Some(outcome), verdict)
            }
        }
    }

    /// Reads a Response to `original`: learns De/Para from a success (or from a "já integrado"
    /// error that carries the receiver's id), retries dependency errors, dead-letters the rest.
    pub(crate) async fn judge_response(
        &self,
        original: &Message,
        adapter: &Adapter,
        route: &Route,
        response: &Message,
        attempt: i64,
    ) -> DeliveryOutcome {
        if let Err(e) = crate::order::events::on_response(&self.bus, original, response).await {
            warn!(uuid = original.uuid(), error = %e, "The order events of a Response could not be published.");
        }
        let view = ResponseView::new(&response.content);
        let text = response.canonical_json();
        let reference = original
            .header
            .product_name()
            .unwrap_or_default()
            .to_owned();
        if view.is_ok() {
            self.learn(original, adapter, &reference, &view.internal_ids())
                .await;
            return DeliveryOutcome::Delivered { response: text };
        }
        if let Some(destination) = view.already_integrated_id() {
            let origin = original
                .content_text("/InternalId")
                .unwrap_or_else(|| original.uuid().to_owned());
            let pair = crate::message::InternalIdPair {
                name: adapter.message.to_ascii_uppercase(),
                origin,
                destination,
            };
            info!(uuid = original.uuid(), route = %route.name, "The target already had this message; its id is kept.");
            self.learn(original, adapter, &reference, &[pair]).await;
            return DeliveryOutcome::Delivered { response: text };
        }
        let messages = view.messages();
        let error = if messages.is_empty() {
            "the target answered Status ERROR without a message".to_owned()
        } else {
            messages.join(" | ")
        };
        let folded = error.to_lowercase();
        if DEPENDENCY_ERRORS.iter().any(|w| folded.contains(w)) {
            self.retry_or_park(error, attempt)
        } else {
            DeliveryOutcome::DeadLettered { error }
        }
    }

    async fn learn(
        &self,
        original: &Message,
        adapter: &Adapter,
        reference: &str,
        pairs: &[crate::message::InternalIdPair],
    ) {
        if pairs.is_empty() || adapter.alias.is_empty() {
            return;
        }
        let event = original.header.event();
        match learn_from_response(
            &self.bus.depara,
            reference,
            &adapter.alias,
            &adapter.depara_field,
            event,
            pairs,
        )
        .await
        {
            Ok(_) => {
                let learned: Vec<LearnedDePara> = pairs
                    .iter()
                    .map(|p| LearnedDePara {
                        alias: adapter.alias.clone(),
                        field: adapter.depara_field.clone(),
                        external: p.origin.clone(),
                        internal: p.destination.clone(),
                    })
                    .collect();
                let _ = self
                    .bus
                    .monitor
                    .record_learned_depara(original.uuid(), &learned)
                    .await;
            }
            Err(e) => {
                warn!(uuid = original.uuid(), error = %e, "De/Para pairs of a Response could not be stored.")
            }
        }
    }

    fn next_retry(&self, attempt: i64) -> Option<i64> {
        (attempt < self.max_attempts()).then(|| self.retry_at(attempt))
    }

    /// A retryable failure: try again later, or park once the automatic attempts are spent.
    pub(super) fn retry_or_park(&self, error: String, attempt: i64) -> DeliveryOutcome {
        match self.next_retry(attempt) {
            Some(retry_at) => DeliveryOutcome::Failed { error, retry_at },
            None => DeliveryOutcome::Parked { error },
        }
    }

    /// Stores the outcome; a dead letter also goes to the DLQ.
    pub(crate) async fn record(
        &self,
        message: &Message,
        route: &Route,
        attempt: i64,
        outcome: DeliveryOutcome,
    ) {
        let sent = Sent {
            uuid: message.uuid(),
            transaction: message.transaction(),
            canonical: &|| message.canonical_json(),
        };
        self.record_sent(sent, route, attempt, outcome).await;
    }

    async fn record_sent(
        &self,
        sent: Sent<'_>,
        route: &Route,
        attempt: i64,
        outcome: DeliveryOutcome,
    ) {
        let uuid = sent.uuid;
        self.announce(sent, route, attempt, &outcome).await;
        if let Err(e) = self
            .bus
            .monitor
            .record_attempt(uuid, &route.name, &outcome)
            .await
        {
            warn!(uuid, error = %e, "A delivery outcome could not be recorded.");
        }
    }

    /// What follows an outcome besides the monitor store: a dead letter to the DLQ, the log
    /// line, the route's sync run and the latency figures.
    pub(super) async fn announce(
        &self,
        sent: Sent<'_>,
        route: &Route,
        attempt: i64,
        outcome: &DeliveryOutcome,
    ) {
        let uuid = sent.uuid;
        if let DeliveryOutcome::DeadLettered { error } = outcome {
            let stored = self.bus.monitor.get(uuid).await.ok().flatten();
            let letter = DeadLetter {
                uuid: uuid.to_owned(),
                transaction: sent.transaction.to_owned(),
                key: stored.as_ref().and_then(|r| r.business_key.clone()),
                reason: error.clone(),
                stage: "deliver".into(),
                origin: format!("route:{}", route.name),
                attempts: u32::try_from(attempt).unwrap_or(0),
                first_seen_ms: stored.as_ref().map_or_else(now_ms, |r| r.received_at),
                replays: 0,
                payload: (sent.canonical)().into_bytes(),
            };
            if let Err(e) =
                dlq::send(self.bus.log.as_ref(), &self.bus.config.dlq_topic(), &letter).await
            {
                warn!(uuid, error = %e, "A dead letter could not be written to the DLQ.");
            }
        }
        match outcome {
            DeliveryOutcome::Delivered { .. } => {
                info!(uuid, route = %route.name, attempt, "A message was delivered.")
            }
            other => {
                warn!(uuid, route = %route.name, attempt, error = other.error().unwrap_or_default(), "A delivery attempt failed.")
            }
        }
        self.runs.count(&route.name, uuid, attempt, outcome);
        if let DeliveryOutcome::Delivered { .. } = outcome {
            crate::telemetry::global().delivered(&route.name, uuid);
        }
    }
}

/// A message as a route's topic gets it: keyed like the log, with its identity (UUID,
/// transaction, version), its format and the route in the headers.
pub(super) fn route_record(
    route: &Route,
    key: &str,
    payload: impl Into<Vec<u8>>,
    (uuid, transaction, version): (&str, &str, &str),
    format: &str,
) -> NewRecord {
    NewRecord::new(&route.target, Some(key), payload)
        .header("uuid", uuid)
        .header("transaction", transaction)
        .header("version", version)
        .header("format", format)
        .header("route", &route.name)
}

/// The response kept for an append to a route's topic: where it landed.
pub(super) fn appended_at(position: Option<&crate::log::Position>) -> String {
    let at = position
        .map(|p| format!("{}/{}/{}", p.topic, p.partition, p.offset))
        .unwrap_or_default();
    format!("appended at {at}")
}

/// What an outcome is recorded about: the message's identity, and its canonical JSON for a
/// dead letter (written only then).
pub(super) struct Sent<'a> {
    pub uuid: &'a str,
    pub transaction: &'a str,
    pub canonical: &'a (dyn Fn() -> String + Sync),
}

fn permanent(e: &ClientError) -> DeliveryOutcome {
    DeliveryOutcome::DeadLettered {
        error: e.to_string(),
    }
}
