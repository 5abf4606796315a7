//! Bytes → log: decode, authenticate, remember the UUID, validate, route by the adapter table,
//! map De/Para, append the canonical JSON to `eai.<transaction>`, and answer. Whatever is refused
//! is recorded in the monitor store as Recusada and sent to the DLQ with its reason.

pub mod answer;
pub mod appended;
pub mod dlq;
pub mod topics;

use serde_json::Value;
use tracing::{info, warn};

use crate::adapter::Refusal;
use crate::bus::Bus;
use crate::log::NewRecord;
use crate::message::{
    DecodeError, Field, Format, Header, Message, MessageType, ResponseView, response::Outcome,
};
use crate::monitor::{self, NewMessage, Progress, Received, Situation, Stage};
use crate::transport::auth;
use answer::{Answer, Problem};
use dlq::DeadLetter;

/// How a message reached eaibus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Rest,
    Soap,
    Kafka,
}

/// One message as it arrives.
pub struct Inbound<'a> {
    pub bytes: &'a [u8],
    pub channel: Channel,
    /// `rest:/totvseai/standardmessage/v1/transactions`, `topic/partition/offset`, ...
    pub origin: String,
    /// `Authorization` credentials, for HTTP callers.
    pub credentials: Option<(String, String)>,
    /// How many times it was redriven from the DLQ (0 for a first arrival): a new dead letter
    /// carries it, so the redrive loop guard sees the whole chain.
    pub replays: u32,
}

/// How long a repeat waits for the first copy's answer before it is told to send again later.
const IN_PROGRESS_WAIT_MS: u64 = 10_000;

/// A repeat of a UUID this process is still ingesting: the first copy's answer, once stored.
async fn wait_for_first_copy(bus: &Bus, header: &Header, uuid: &str) -> Answer {
    for _ in 0..(IN_PROGRESS_WAIT_MS / 20) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // Looked at before the store: the first copy writes its answer, then lets go.
        let first_done = bus.in_flight.lock().is_ok_and(|set| !set.contains(uuid));
        if let Ok(Some(first)) = bus.monitor.get(uuid).await {
            // Once the first copy is done, what it kept is its answer (a failed append withdrew
            // the Receipt it had kept); before, only a final one is.
            let kept = first.answer.as_deref().and_then(Answer::from_stored);
            if first_done && let Some(answer) = kept {
                return answer;
            }
            if let Some(answer) = final_answer(bus, &first).await {
                return answer;
            }
        }
        if first_done {
            break;
        }
    }
    let problems = [Problem::new(
        "IN_PROGRESS",
        "a message with this UUID is being processed; send it again later",
        "/Header/UUID",
    )];
    answer::refusal(header, &bus.config.identity, 409, &problems)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Receives one message and says what to answer. Never fails: every problem is an answer.
pub async fn receive(bus: &Bus, inbound: Inbound<'_>) -> Answer {
    let received = std::time::Instant::now();
    let identity = &bus.config.identity;
    let codec = bus.codec();
    let (mut message, format) = match codec.decode(inbound.bytes) {
        Ok(decoded) => decoded,
        Err(e) => return refuse_undecodable(bus, &inbound, &e).await,
    };

    if let Some(answer) = authenticate(bus, &inbound, &message.header) {
        return answer;
    }

    let schema = bus.registry.for_header(&message.header).cloned();
    let business_key = business_key(bus, &message, schema.as_deref()).await;
    let mut record = NewMessage {
        uuid: message.uuid().to_owned(),
        transaction: schema
            .as_ref()
            .map_or_else(|| message.transaction().to_owned(), |s| s.name.clone()),
        version: message.header.version().unwrap_or_default().to_owned(),
        direction: monitor::Direction::Inbound,
        source_application: message
            .header
            .get(Field::SourceApplication)
            .unwrap_or_default()
            .to_owned(),
        format: match format {
            Format::Json => monitor::Format::Json,
            Format::Xml => monitor::Format::Xml,
        },
        origin: inbound.origin.clone(),
        business_key: Some(business_key.clone()),
        received_at: None,
        raw_payload: inbound.bytes.to_vec(),
        canonical_json: Some(message.canonical_json()),
    };
    if message.uuid().trim().is_empty() {
        let problems = [Problem::new(
            "INVALID",
            "the UUID is missing",
            "/Header/UUID",
        )];
        let answer = answer::refusal(&message.header, identity, 400, &problems);
        return refuse_recorded(bus, &inbound, record, Stage::Refused, answer).await;
    }
    // Held until this function returns: a repeat arriving meanwhile waits for our answer.
    let _claim = match bus.claim(&record.uuid) {
        Some(claim) => claim,
        None => return wait_for_first_copy(bus, &message.header, &record.uuid).await,
    };

    // The checks below only read. Their steps are written with the message when it is first
    // recorded (`record_first`), in one write; a repeat of a known UUID is told apart there.
    let mut progress = Progress::default();
    if let Err(errors) = bus.registry.validate(&message) {
        let problems: Vec<Problem> = errors
            .iter()
            .map(|e| Problem::new("INVALID", e.reason.clone(), e.pointer.clone()))
            .collect();
        let answer = answer::refusal(&message.header, identity, 400, &problems);
        let stage = Stage::Validated;
        return refuse_known(bus, &inbound, &record, stage, "validate", answer, progress).await;
    }
    progress.step(
        Stage::Validated,
        Situation::AguardandoExecucao,
        "Valid against its schema.",
    );

    match message.header.message_type() {
        MessageType::Response | MessageType::Receipt => {
            let target = Accepted {
                record: &record,
                message: &message,
                key: &business_key,
                adapter: None,
                received,
            };
            let answer = accept(bus, &inbound, target, progress).await;
            if answer.is_accepted()
                && let Some(delivery) = &bus.delivery
            {
                delivery.correlate(&message).await;
            }
            return answer;
        }
        MessageType::BusinessMessage | MessageType::Unknown(_) => {}
    }

    if message.transaction().eq_ignore_ascii_case("WHOIS") {
        let answer = whois_answer(bus, &message.header);
        progress.step(
            Stage::Delivered,
            Situation::Finalizada,
            "Answered with the transactions this bus enables.",
        );
        progress.outcome = Some((Situation::Finalizada, Stage::Delivered, None));
        progress.answer = Some(answer.to_stored());
        return settle_first(bus, &message.header, &record, &progress, answer).await;
    }

    let table = bus.adapter_table();
    let adapter = match table.receiver(&message.header) {
        Ok(a) => a.clone(),
        Err(refusal) => {
            let status = match refusal {
                Refusal::NoTransaction
                | Refusal::VersionNotEnabled { .. }
                | Refusal::OperationNotEnabled { .. } => 400,
                Refusal::NoAdapter { .. }
                | Refusal::NotForCompany { .. }
                | Refusal::ReceiveDisabled { .. } => 404,
            };
            let problems = [Problem::new(
                "NO_ADAPTER",
                refusal.to_string(),
                "/Header/Transaction",
            )];
            let answer = answer::refusal(&message.header, identity, status, &problems);
            let stage = Stage::Routed;
            return refuse_known(bus, &inbound, &record, stage, "route", answer, progress).await;
        }
    };
    progress.step(
        Stage::Routed,
        Situation::AguardandoExecucao,
        format!(
            "Received by adapter {} ({}); for {}, key {business_key}.",
            adapter.name,
            adapter.routine,
            bus.config.topic(message.transaction())
        ),
    );

    if !adapter.mappings.is_empty() {
        match table
            .apply_mappings(&adapter, &mut message, &bus.depara)
            .await
        {
            Ok(mapped) => {
                // Deliveries send the stored canonical form, so it must carry mapped values.
                // It is written before the append, so no delivery can read the old form.
                if mapped
                    .iter()
                    .any(|m| m.mapped.as_ref().is_some_and(|v| *v != m.value))
                {
                    record.canonical_json = Some(message.canonical_json());
                }
            }
            Err(e) if e.is_retryable() => {
                // Something it depends on is not integrated yet: the sender sends it again later
                // (same UUID), so this answer is not kept and nothing goes to the DLQ.
                let problems = [Problem::new("NOT_INTEGRATED", e.to_string(), "")];
                let answer = answer::refusal(&message.header, identity, 424, &problems);
                progress.step(Stage::Mapped, Situation::Falhou, answer.reason.clone());
                progress.outcome = Some((
                    Situation::Falhou,
                    Stage::Mapped,
                    Some(answer.reason.clone()),
                ));
                return settle_first(bus, &message.header, &record, &progress, answer).await;
            }
            Err(e) => {
                let problems = [Problem::new("NOT_INTEGRATED", e.to_string(), "")];
                let answer = answer::refusal(&message.header, identity, 400, &problems);
                let stage = Stage::Mapped;
                return refuse_known(bus, &inbound, &record, stage, "map", answer, progress).await;
            }
        }
    }
    let target = Accepted {
        record: &record,
        message: &message,
        key: &business_key,
        adapter: Some(&adapter),
        received,
    };
    accept(bus, &inbound, target, progress).await
}

/// A message that passed every check, and where it goes.
struct Accepted<'m> {
    record: &'m NewMessage,
    message: &'m Message,
    /// Its key on the log.
    key: &'m str,
    /// The adapter that received it (none for a Response or Receipt).
    adapter: Option<&'m crate::adapter::Adapter>,
    /// When it arrived, for the ingest latency.
    received: std::time::Instant,
}

/// Writes the steps of a message; a failure is logged (the log, not the monitor, is the record
/// of what was accepted).
async fn write_progress(bus: &Bus, uuid: &str, progress: &Progress) {
    if let Err(e) = bus.monitor.record_progress(uuid, progress).await {
        warn!(uuid, error = %e, "The monitor store could not record a message's steps.");
    }
}

/// How recording a message at its first write went.
enum Recorded {
    /// Its first arrival: recorded with the steps so far.
    New,
    /// Known already, without a final answer (eaibus stopped half-way, or the answer was not
    /// final): it is processed again and its steps are written to the existing record.
    /// Appending twice is harmless: the log is at-least-once and consumers dedupe by UUID.
    Again,
}

/// Records the message with the steps taken so far, in one write. `Err` is the answer to send
/// instead of going on: the first arrival's, or 503 while the monitor store is unavailable.
async fn record_first(
    bus: &Bus,
    header: &Header,
    record: &NewMessage,
    progress: &Progress,
) -> Result<Recorded, Answer> {
    match bus
        .monitor
        .record_received_with(record, progress.clone())
        .await
    {
        Ok(Received::New) => Ok(Recorded::New),
        Ok(Received::Duplicate(existing)) => match final_answer(bus, &existing).await {
            Some(answer) => {
                info!(uuid = %record.uuid, "A repeated message gets the answer of its first arrival.");
                Err(answer)
            }
            None => Ok(Recorded::Again),
        },
        Err(e) => {
            warn!(uuid = %record.uuid, error = %e, "The monitor store is unavailable.");
            let problems = [Problem::new(
                "UNAVAILABLE",
                "the monitor store is unavailable; send again later",
                "",
            )];
            Err(answer::refusal(
                header,
                &bus.config.identity,
                503,
                &problems,
            ))
        }
    }
}

/// Records a message that ends here, with all its steps, and says `answer` — or the first
/// arrival's answer when the UUID is known.
async fn settle_first(
    bus: &Bus,
    header: &Header,
    record: &NewMessage,
    progress: &Progress,
    answer: Answer,
) -> Answer {
    match record_first(bus, header, record, progress).await {
        Ok(Recorded::New) => answer,
        Ok(Recorded::Again) => {
            write_progress(bus, &record.uuid, progress).await;
            answer
        }
        Err(first) => first,
    }
}

/// The answer kept for a message, if it is final. An async message is recorded with its
/// Receipt before the append; that Receipt counts once the message is known to be in the log:
/// this process appended it, a route has taken it, or its situation moved on.
async fn final_answer(bus: &Bus, existing: &monitor::MessageRecord) -> Option<Answer> {
    let answer = existing.answer.as_deref().and_then(Answer::from_stored)?;
    if existing.situation != Situation::AguardandoExecucao || bus.appended.contains(&existing.uuid)
    {
        return Some(answer);
    }
    let deliveries = bus.monitor.deliveries(&existing.uuid).await.ok()?;
    (!deliveries.is_empty()).then_some(answer)
}

/// Appends the message to its topic and answers: a Receipt for async, a Response for sync.
///
/// An async message that routes will deliver costs the monitor store one write: it is recorded
/// with its steps and its Receipt before the append, and its deliveries say the rest. Others
/// are recorded before the append and settled after it.
async fn accept(
    bus: &Bus,
    inbound: &Inbound<'_>,
    accepted: Accepted<'_>,
    mut progress: Progress,
) -> Answer {
    let Accepted {
        record,
        message,
        key,
        adapter,
        received,
    } = accepted;
    let identity = &bus.config.identity;
    let topic = bus.config.topic(message.transaction());
    let business = message.header.message_type() == MessageType::BusinessMessage;
    let waiting = business && !bus.adapter_table().senders_for(&message.header).is_empty();
    let sync = business
        && match adapter {
            Some(a) => crate::delivery::is_sync(a, &message.header),
            None => message.header.delivery_type() == Some(crate::message::DeliveryType::Sync),
        };
    let receipt = (waiting && !sync).then(|| answer::receipt(&message.header, identity));
    let last = progress.steps.last().map_or(Stage::Received, |s| s.stage);
    progress.outcome = Some((Situation::AguardandoExecucao, last, None));
    progress.answer = receipt.as_ref().map(Answer::to_stored);
    let recorded = match record_first(bus, &message.header, record, &progress).await {
        Ok(recorded) => recorded,
        Err(first) => return first,
    };
    if let Recorded::Again = recorded {
        write_progress(bus, &record.uuid, &progress).await;
    }
    let mut progress = Progress::default();

    let canonical = record
        .canonical_json
        .clone()
        .unwrap_or_else(|| message.canonical_json());
    let append = NewRecord::new(&topic, Some(key), canonical)
        .header("uuid", message.uuid())
        .header("transaction", message.transaction())
        .header("version", message.header.version().unwrap_or_default())
        .header(
            "type",
            message.header.get(Field::Type).unwrap_or("BusinessMessage"),
        )
        .header(
            "source",
            message
                .header
                .get(Field::SourceApplication)
                .unwrap_or_default(),
        )
        .header("format", record.format.code())
        .header("origin", &inbound.origin)
        .header("received-at", now_ms().to_string());
    // The order's domain events go in the same append (one durable write instead of two);
    // they are derived again from the log on a rebuild, so when they alone are refused (their
    // topic is missing, say) the message is appended without them and the failure is logged.
    let events = if business {
        crate::order::events::from_accepted(message)
    } else {
        Vec::new()
    };
    let appended = if events.is_empty() {
        bus.log.append(vec![append]).await
    } else {
        let events_topic = crate::order::events_topic(&bus.config);
        let mut records = vec![append.clone()];
        records.extend(
            events
                .iter()
                .map(|e| crate::order::events::record(&events_topic, e)),
        );
        match bus.log.append(records).await {
            Ok(positions) => Ok(positions),
            Err(_) => {
                let alone = bus.log.append(vec![append]).await;
                if alone.is_ok()
                    && let Err(e) =
                        crate::order::events::publish(bus.log.as_ref(), &bus.config, &events).await
                {
                    warn!(uuid = %record.uuid, error = %e, "The order events of a message could not be published.");
                }
                alone
            }
        }
    };
    if let Err(e) = appended {
        warn!(uuid = %record.uuid, error = %e, "The event log refused the append.");
        let error = e.to_string();
        progress.step(
            Stage::Received,
            Situation::AguardandoExecucao,
            error.clone(),
        );
        progress.outcome = Some((Situation::AguardandoExecucao, Stage::Received, Some(error)));
        // Not in the log: the Receipt kept with the message is no answer.
        progress.retract_answer = receipt.is_some();
        write_progress(bus, &record.uuid, &progress).await;
        let problems = [Problem::new(
            "UNAVAILABLE",
            format!("{e}; send again later"),
            "",
        )];
        return answer::refusal(&message.header, identity, 503, &problems);
    }
    bus.appended.note(message.uuid());
    let adapter_name = adapter.map_or("-", |a| a.name.as_str());
    crate::telemetry::global().ingest_accepted(adapter_name, message.uuid(), received.elapsed());
    if let (Some(receipt), Recorded::New) = (&receipt, &recorded) {
        // Its routes' deliveries record the rest.
        return receipt.clone();
    }
    let situation = if waiting {
        Situation::AguardandoExecucao
    } else {
        Situation::Finalizada
    };
    progress.step(
        Stage::Logged,
        situation,
        format!("Appended to {topic}, key {key}."),
    );
    progress.outcome = Some((situation, Stage::Logged, None));

    let answer = match (sync, receipt) {
        (_, Some(receipt)) => receipt,
        (true, None) => match (&bus.delivery, waiting) {
            (Some(delivery), true) => {
                // The attempt records itself; the steps before it come first.
                write_progress(bus, &record.uuid, &std::mem::take(&mut progress)).await;
                match delivery.deliver_now(message, key).await {
                    Ok(response) => Answer {
                        status: 200,
                        reason: String::new(),
                        message: response,
                    },
                    Err(e) => {
                        let problems = [Problem::new("DELIVERY", e, "")];
                        answer::refusal(&message.header, identity, 502, &problems)
                    }
                }
            }
            _ => answer::ok(&message.header, identity, Outcome::default()),
        },
        (false, None) => answer::receipt(&message.header, identity),
    };
    // A failed sync delivery may succeed when the sender tries again: keep only final answers.
    if answer.status < 500 {
        progress.answer = Some(answer.to_stored());
    }
    write_progress(bus, &record.uuid, &progress).await;
    answer
}

/// The key of a message on the log: its business key, so that everything about one order shares
/// one partition. A Response takes the key of the message it answers.
async fn business_key(
    bus: &Bus,
    message: &Message,
    schema: Option<&crate::schema::TransactionSchema>,
) -> String {
    if message.header.message_type() == MessageType::Response
        && let Some(received) = ResponseView::new(&message.content).received_uuid()
        && let Ok(Some(original)) = bus.monitor.get(received).await
        && let Some(key) = original.business_key
    {
        return key;
    }
    schema
        .filter(|s| !s.business_key.is_empty())
        .and_then(|s| message.content_text(&s.business_key))
        .filter(|k| !k.trim().is_empty())
        .unwrap_or_else(|| message.uuid().to_owned())
}

/// Checks the caller against the credentials of the route of its application, if that route
/// has any. Returns the answer to send when the check fails.
fn authenticate(bus: &Bus, inbound: &Inbound<'_>, header: &Header) -> Option<Answer> {
    if inbound.channel == Channel::Kafka {
        return None;
    }
    let application = header.get(Field::SourceApplication).unwrap_or_default();
    let table = bus.adapter_table();
    let route = table
        .routes()
        .iter()
        .find(|r| r.application.eq_ignore_ascii_case(application) && r.user_env.is_some())?;
    let problem = match route.credentials() {
        Ok(Some(expected))
            if auth::matches(
                inbound.credentials.as_ref(),
                &expected.user,
                expected.password(),
            ) =>
        {
            return None;
        }
        Ok(_) => Problem::new(
            "UNAUTHORIZED",
            format!("the credentials of application {application} are missing or wrong"),
            "",
        ),
        Err(e) => {
            warn!(route = %route.name, error = %e, "Inbound credentials are not configured.");
            Problem::new(
                "UNAUTHORIZED",
                "the credentials of this application are not configured on the bus",
                "",
            )
        }
    };
    warn!(application, origin = %inbound.origin, "A caller failed authentication.");
    Some(answer::refusal(
        header,
        &bus.config.identity,
        401,
        &[problem],
    ))
}

fn whois_answer(bus: &Bus, header: &Header) -> Answer {
    let entries: Vec<Value> = bus
        .adapter_table()
        .whois()
        .into_iter()
        .map(|e| serde_json::json!({"Name": e.transaction, "Version": e.version, "Mode": e.mode.as_str()}))
        .collect();
    let mut return_content = serde_json::Map::new();
    return_content.insert("EnabledTransactions".into(), Value::Array(entries));
    answer::ok(
        header,
        &bus.config.identity,
        Outcome {
            return_content,
            ..Outcome::default()
        },
    )
}

/// Refuses a message for a reason outside it (its batch was refused): recorded under its own UUID
/// when it can be read, so it is found by that UUID, and sent to the DLQ.
pub async fn refuse_with_reason(
    bus: &Bus,
    inbound: &Inbound<'_>,
    reason: &str,
    status: u16,
) -> Answer {
    let identity = &bus.config.identity;
    let Ok((message, format)) = bus.codec().decode(inbound.bytes) else {
        let error = DecodeError::NotStandardMessage {
            pointer: String::new(),
            reason: reason.to_owned(),
        };
        return refuse_undecodable(bus, inbound, &error).await;
    };
    let problems = [Problem::new("REFUSED", reason, "")];
    let answer = answer::refusal(&message.header, identity, status, &problems);
    let record = NewMessage {
        uuid: message.uuid().to_owned(),
        transaction: message.transaction().to_owned(),
        version: message.header.version().unwrap_or_default().to_owned(),
        direction: monitor::Direction::Inbound,
        source_application: message
            .header
            .get(Field::SourceApplication)
            .unwrap_or_default()
            .to_owned(),
        format: match format {
            Format::Json => monitor::Format::Json,
            Format::Xml => monitor::Format::Xml,
        },
        origin: inbound.origin.clone(),
        business_key: None,
        received_at: None,
        raw_payload: inbound.bytes.to_vec(),
        canonical_json: Some(message.canonical_json()),
    };
    if record.uuid.trim().is_empty() {
        return refuse_recorded(bus, inbound, record, Stage::Refused, answer).await;
    }
    // Not kept as the message's answer: the sender fixes the batch and sends the good items
    // again.
    let progress = refused(Progress::default(), &answer, Stage::Refused, false);
    match bus.monitor.record_received_with(&record, progress).await {
        Ok(Received::New) => {
            dead_letter(bus, inbound, &record, "batch", &answer.reason).await;
            info!(uuid = %record.uuid, reason = %answer.reason, "A message was refused.");
            answer
        }
        // Already known under this UUID: record this copy as refused, apart from it.
        _ => refuse_recorded(bus, inbound, record, Stage::Refused, answer).await,
    }
}

/// Refuses what could not be decoded: no UUID to remember, but the bytes are kept in the monitor
/// store and the DLQ.
pub async fn refuse_undecodable(bus: &Bus, inbound: &Inbound<'_>, error: &DecodeError) -> Answer {
    let status = match error {
        DecodeError::TooLarge { .. } => 413,
        _ => 400,
    };
    let mut header = Header::default();
    header.set(Field::Transaction, "UNKNOWN");
    let problems = [Problem::new(
        "MALFORMED",
        error.to_string(),
        error.location(),
    )];
    let answer = answer::refusal(&header, &bus.config.identity, status, &problems);
    // A payload over the limit is not stored whole: its size and first bytes say enough.
    let kept = match error {
        DecodeError::TooLarge { .. } => inbound.bytes[..inbound.bytes.len().min(4096)].to_vec(),
        _ => inbound.bytes.to_vec(),
    };
    let record = NewMessage {
        uuid: String::new(),
        transaction: String::new(),
        version: String::new(),
        direction: monitor::Direction::Inbound,
        source_application: String::new(),
        format: if inbound.bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            monitor::Format::Xml
        } else {
            monitor::Format::Json
        },
        origin: inbound.origin.clone(),
        business_key: None,
        received_at: None,
        raw_payload: kept,
        canonical_json: None,
    };
    refuse_recorded(bus, inbound, record, Stage::Refused, answer).await
}

async fn refuse_recorded(
    bus: &Bus,
    inbound: &Inbound<'_>,
    mut record: NewMessage,
    stage: Stage,
    answer: Answer,
) -> Answer {
    match bus
        .monitor
        .record_refused(&record, &answer.reason, stage)
        .await
    {
        Ok(id) => record.uuid = id,
        Err(e) => {
            warn!(error = %e, "A refused message could not be recorded in the monitor store.")
        }
    }
    dead_letter(bus, inbound, &record, "decode", &answer.reason).await;
    answer
}

/// The steps of a refusal at `stage`; `keep` keeps the answer for repeats of the UUID.
fn refused(mut progress: Progress, answer: &Answer, stage: Stage, keep: bool) -> Progress {
    progress.step(Stage::Refused, Situation::Recusada, answer.reason.clone());
    progress.outcome = Some((Situation::Recusada, stage, Some(answer.reason.clone())));
    if keep {
        progress.answer = Some(answer.to_stored());
    }
    progress
}

/// Refuses a message for its own content (schema, adapter, De/Para): recorded with its steps in
/// one write, and sent to the DLQ. A known UUID gets its first arrival's answer, if final.
async fn refuse_known(
    bus: &Bus,
    inbound: &Inbound<'_>,
    record: &NewMessage,
    stage: Stage,
    stage_name: &str,
    answer: Answer,
    progress: Progress,
) -> Answer {
    let progress = refused(progress, &answer, stage, true);
    match bus
        .monitor
        .record_received_with(record, progress.clone())
        .await
    {
        Ok(Received::New) => {}
        Ok(Received::Duplicate(existing)) => {
            if let Some(first) = final_answer(bus, &existing).await {
                return first;
            }
            write_progress(bus, &record.uuid, &progress).await;
        }
        // The DLQ still has it.
        Err(e) => {
            warn!(uuid = %record.uuid, error = %e, "A refused message could not be recorded in the monitor store.")
        }
    }
    dead_letter(bus, inbound, record, stage_name, &answer.reason).await;
    info!(uuid = %record.uuid, reason = %answer.reason, "A message was refused.");
    answer
}

async fn dead_letter(
    bus: &Bus,
    inbound: &Inbound<'_>,
    record: &NewMessage,
    stage: &str,
    reason: &str,
) {
    let letter = DeadLetter {
        uuid: record.uuid.clone(),
        transaction: record.transaction.clone(),
        key: record.business_key.clone(),
        reason: reason.to_owned(),
        stage: stage.to_owned(),
        origin: inbound.origin.clone(),
        attempts: 0,
        first_seen_ms: now_ms(),
        replays: inbound.replays,
        payload: record.raw_payload.clone(),
    };
    if let Err(e) = dlq::send(bus.log.as_ref(), &bus.config.dlq_topic(), &letter).await {
        warn!(uuid = %record.uuid, error = %e, "A refused message could not be written to the DLQ.");
    }
}
