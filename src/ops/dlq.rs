//! The dead-letter queue as an operator sees it: read the letters of `eai.dlq`, show one, count
//! them by reason, and redrive them to where they came from with a loop guard.
//!
//! - A letter refused at ingest (origin `rest:…`, `soap:…`, or an inbound `topic/partition/offset`)
//!   goes through the ingest pipeline again, on the channel of its origin, as if its sender had
//!   sent it once more. The stored refusal is withdrawn first, or ingest would answer the repeated
//!   UUID with it.
//! - A letter of the deliver stage (origin `route:NAME`) is planned for delivery again along its
//!   route ([`MonitorStore::reset_for_reprocess`](crate::monitor::MonitorStore::reset_for_reprocess));
//!   the route worker of the running bus sends it.
//!
//! The DLQ is a log: a letter stays when its message is redriven, and a redrive that fails again
//! writes a new letter. The letters of one message from one origin form a *chain*; the newest is
//! the one that counts. The replay count of a chain is the larger of the newest letter's
//! `replays` header and the number of letters before it: ingest carries the count into the new
//! letter of a redriven message, but a route's dead letter starts again at `replays = 0`, and the
//! guard must hold for both. A chain at `max_replays` is refused.

use std::collections::{BTreeMap, HashMap};

use crate::adapter::Route;
use crate::bus::Bus;
use crate::ingest::answer::Answer;
use crate::ingest::dlq::DeadLetter;
use crate::ingest::{self, Channel, Inbound};
use crate::log::{Position, Record};
use crate::message::Field;
use crate::monitor::{MonitorError, Situation, Stage};

use super::OpsError;

/// How many records one read of the log asks for.
const READ_BATCH: usize = 500;

/// A dead letter as read from the DLQ topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLetter {
    pub position: Position,
    /// When it was appended to the DLQ, in milliseconds since the Unix epoch.
    pub appended_ms: i64,
    /// Every header of the record, as text.
    pub headers: Vec<(String, String)>,
    pub letter: DeadLetter,
}

/// Where a letter goes back to when it is redriven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Refused at ingest: through the ingest pipeline again, on this channel.
    Ingest(Channel),
    /// Failed for good on delivery: planned again along this route.
    Route(String),
}

impl Destination {
    /// `route:NAME` is a delivery; `rest:` and `soap:` are the HTTP endpoints; anything else is
    /// an inbound topic position.
    pub fn of(origin: &str) -> Destination {
        if let Some(route) = origin.strip_prefix("route:") {
            Destination::Route(route.to_owned())
        } else if origin.starts_with("rest:") {
            Destination::Ingest(Channel::Rest)
        } else if origin.starts_with("soap:") {
            Destination::Ingest(Channel::Soap)
        } else {
            Destination::Ingest(Channel::Kafka)
        }
    }
}

impl StoredLetter {
    fn from_record(record: &Record) -> StoredLetter {
        StoredLetter {
            position: Position {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
            },
            appended_ms: record.timestamp_ms,
            headers: record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            letter: DeadLetter::from_record(record),
        }
    }

    pub fn destination(&self) -> Destination {
        Destination::of(&self.letter.origin)
    }

    /// What ties the letters of one message from one origin together across redrives: its UUID,
    /// or, for letters refused before a UUID could be read, a digest of the payload.
    pub fn chain(&self) -> String {
        let subject = if self.letter.stage == "decode" || self.letter.uuid.trim().is_empty() {
            format!("payload:{:016x}", fnv1a(&self.letter.payload))
        } else {
            self.letter.uuid.clone()
        };
        format!("{subject} {}", self.letter.origin)
    }
}

/// FNV-1a, 64 bits: a stable digest (the standard library's hasher is seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every letter of the DLQ appended at or after `since_ms` (all with `None`), oldest first.
pub async fn read_letters(bus: &Bus, since_ms: Option<i64>) -> Result<Vec<StoredLetter>, OpsError> {
    let topic = bus.config.dlq_topic();
    let mut letters = Vec::new();
    for partition in bus.log.partitions(&topic).await? {
        let end = bus.log.end_offset(&topic, partition).await?;
        // The first offset still in the log (Kafka may have deleted older ones), or the first at
        // or after `since`.
        let mut offset = bus
            .log
            .offset_for_time(&topic, partition, since_ms.unwrap_or(0))
            .await?;
        while offset < end {
            let records = bus.log.read(&topic, partition, offset, READ_BATCH).await?;
            let Some(last) = records.last() else {
                break;
            };
            offset = last.offset + 1;
            letters.extend(
                records
                    .iter()
                    .filter(|r| since_ms.is_none_or(|since| r.timestamp_ms >= since))
                    .map(StoredLetter::from_record),
            );
        }
    }
    letters.sort_by(|a, b| {
        (a.appended_ms, a.position.partition, a.position.offset).cmp(&(
            b.appended_ms,
            b.position.partition,
            b.position.offset,
        ))
    });
    Ok(letters)
}

/// The letters of the message `uuid`, oldest first; when none has that UUID, those whose UUID
/// starts with it (`eaibus dlq show 3d37c6b3`).
pub async fn find(bus: &Bus, uuid: &str) -> Result<Vec<StoredLetter>, OpsError> {
    let uuid = uuid.trim();
    let letters = read_letters(bus, None).await?;
    let exact: Vec<StoredLetter> = letters
        .iter()
        .filter(|l| l.letter.uuid == uuid)
        .cloned()
        .collect();
    if !exact.is_empty() || uuid.is_empty() {
        return Ok(exact);
    }
    Ok(letters
        .into_iter()
        .filter(|l| l.letter.uuid.starts_with(uuid))
        .collect())
}

/// A reason with what differs from message to message taken out — UUIDs, quoted values,
/// numbers — so that letters refused for one cause count together.
pub fn normalise_reason(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && chars[i - 1].is_ascii_alphanumeric();
        if !after_word && is_uuid_at(&chars[i..]) {
            out.push_str("<uuid>");
            i += 36;
        } else if c == '"' {
            match chars[i + 1..].iter().position(|&q| q == '"' || q == '\n') {
                Some(len) if chars[i + 1 + len] == '"' => {
                    out.push_str("\"…\"");
                    i += len + 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() && !after_word {
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            out.push_str("<n>");
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.trim().to_owned()
}

fn is_uuid_at(chars: &[char]) -> bool {
    chars.len() >= 36
        && chars[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == '-',
            _ => c.is_ascii_hexdigit(),
        })
        && chars.get(36).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// How many letters there are per normalised reason, most first (then by reason).
pub fn histogram<'a>(letters: impl IntoIterator<Item = &'a StoredLetter>) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for letter in letters {
        *counts
            .entry(normalise_reason(&letter.letter.reason))
            .or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// Which letters to redrive. Empty filters select every chain.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Only the messages with these UUIDs.
    pub uuids: Vec<String>,
    /// Only letters whose reason contains this text (any case).
    pub reason_contains: Option<String>,
    /// Only chains whose newest letter was appended at or after this time.
    pub since_ms: Option<i64>,
    /// The loop guard: a chain redriven this many times already is refused.
    pub max_replays: u32,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            uuids: Vec::new(),
            reason_contains: None,
            since_ms: None,
            max_replays: 3,
        }
    }
}

impl Selection {
    fn matches(&self, letter: &StoredLetter) -> bool {
        let uuid_ok = self.uuids.is_empty() || self.uuids.contains(&letter.letter.uuid);
        let reason_ok = self.reason_contains.as_ref().is_none_or(|text| {
            letter
                .letter
                .reason
                .to_lowercase()
                .contains(&text.to_lowercase())
        });
        let since_ok = self.since_ms.is_none_or(|s| letter.appended_ms >= s);
        uuid_ok && reason_ok && since_ok
    }
}

/// What a redrive does with a chain, decided before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It is sent back to its origin.
    Redrive,
    /// Nothing to do: the message was accepted or delivered since.
    Resolved(String),
    /// Nothing to do: its delivery is already waiting or running.
    Waiting(String),
    /// The loop guard: it was redriven `replays` times already, the most allowed.
    Guarded { replays: u32, max: u32 },
    /// It cannot be redriven from here, for the reason given.
    Impossible(String),
}

impl Decision {
    /// A decision that leaves something for the operator to look at.
    pub fn needs_attention(&self) -> bool {
        matches!(self, Decision::Guarded { .. } | Decision::Impossible(_))
    }
}

/// The newest letter of a chain, with what the redrive will do with it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub letter: StoredLetter,
    /// How many letters the chain has.
    pub letters: usize,
    /// How many times the chain was redriven already (see the module notes).
    pub replays: u32,
    pub decision: Decision,
}

/// What a redrive would do, without doing it: the selected chains and their reasons counted.
#[derive(Debug, Clone)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    /// One count per normalised reason, over the selected chains (each counted once).
    pub histogram: Vec<(String, usize)>,
}

/// How one redriven letter fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not sent: see the candidate's [`Decision`].
    NotRedriven,
    /// Ingest took it this time.
    Accepted { status: u16 },
    /// Ingest refused it again: a new letter with one replay more is in the DLQ.
    RefusedAgain { status: u16, reason: String },
    /// Ingest did not take it and wrote no letter: a dependency is not integrated yet (424, the
    /// message waits for its sender's retry), a store is down (503) or the credentials (401).
    NotAccepted { status: u16, reason: String },
    /// The delivery waits for the route worker again.
    Replanned { route: String },
    /// The store refused or failed the operation.
    Failed(String),
}

impl Outcome {
    /// Whether the letter went back to its origin and was taken.
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Accepted { .. } | Outcome::Replanned { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Redriven {
    pub candidate: Candidate,
    pub outcome: Outcome,
}

/// Groups the letters into chains and decides, for each selected chain, what a redrive does.
/// Changes nothing.
pub async fn plan(bus: &Bus, selection: &Selection) -> Result<Plan, OpsError> {
    // The whole DLQ, even with `since`: the older letters of a chain count its replays.
    let letters = read_letters(bus, None).await?;
    let mut chains: HashMap<String, Vec<StoredLetter>> = HashMap::new();
    for letter in letters {
        chains.entry(letter.chain()).or_default().push(letter);
    }
    let mut newest: Vec<(StoredLetter, usize)> = chains
        .into_values()
        .filter_map(|mut chain| {
            let count = chain.len();
            chain.pop().map(|last| (last, count))
        })
        .filter(|(last, _)| selection.matches(last))
        .collect();
    newest.sort_by(|a, b| {
        (a.0.appended_ms, a.0.position.partition, a.0.position.offset).cmp(&(
            b.0.appended_ms,
            b.0.position.partition,
            b.0.position.offset,
        ))
    });
    let histogram = histogram(newest.iter().map(|(l, _)| l));
    let mut candidates = Vec::with_capacity(newest.len());
    for (letter, count) in newest {
        let before = u32::try_from(count.saturating_sub(1)).unwrap_or(u32::MAX);
        let replays = letter.letter.replays.max(before);
        let decision = decide(bus, &letter, replays, selection.max_replays).await?;
        candidates.push(Candidate {
            letter,
            letters: count,
            replays,
            decision,
        });
    }
    Ok(Plan {
        candidates,
        histogram,
    })
}

/// Plans as [`plan`] does, then sends every chain decided [`Decision::Redrive`] back to its
/// origin, one at a time. A failure of one letter is its outcome, not the end of the run.
pub async fn redrive(bus: &Bus, selection: &Selection) -> Result<Vec<Redriven>, OpsError> {
    let plan = plan(bus, selection).await?;
    let mut results = Vec::with_capacity(plan.candidates.len());
    for candidate in plan.candidates {
        let outcome = if candidate.decision == Decision::Redrive {
            match candidate.letter.destination() {
                Destination::Ingest(channel) => to_ingest(bus, &candidate, channel).await,
                Destination::Route(route) => to_route(bus, &candidate, &route).await,
            }
        } else {
            Outcome::NotRedriven
        };
        results.push(Redriven { candidate, outcome });
    }
    Ok(results)
}

/// The UUID the monitor knows the letter's message by: its own, or for a letter refused before
/// the UUID was read, the one its payload has now (a more lenient reader may read it today).
fn message_uuid(bus: &Bus, letter: &StoredLetter) -> Option<String> {
    if letter.letter.stage != "decode" && !letter.letter.uuid.trim().is_empty() {
        return Some(letter.letter.uuid.clone());
    }
    let payload = ingest_payload(letter);
    let (message, _) = bus.codec().decode(&payload).ok()?;
    let uuid = message.uuid().trim();
    (!uuid.is_empty()).then(|| uuid.to_owned())
}

/// What goes into ingest: the payload, unwrapped from its SOAP envelope when the letter kept
/// the envelope (refused before the TOTVSMessage was taken out of it).
fn ingest_payload(letter: &StoredLetter) -> Vec<u8> {
    let payload = &letter.letter.payload;
    if letter.destination() == Destination::Ingest(Channel::Soap)
        && let Ok(inner) = crate::transport::soap::inbound_message(payload, 64)
    {
        return inner.into_bytes();
    }
    payload.clone()
}

async fn decide(
    bus: &Bus,
    letter: &StoredLetter,
    replays: u32,
    max: u32,
) -> Result<Decision, OpsError> {
    let guard = Decision::Guarded { replays, max };
    match letter.destination() {
        Destination::Route(route) => {
            let uuid = &letter.letter.uuid;
            let Some(delivery) = bus.monitor.delivery(uuid, &route).await? else {
                return Ok(Decision::Impossible(format!(
                    "the monitor has no delivery of {uuid} along route {route}"
                )));
            };
            Ok(match delivery.situation {
                Situation::Finalizada => Decision::Resolved(format!("delivered along {route}")),
                Situation::AguardandoExecucao | Situation::Executando => {
                    Decision::Waiting(format!("{} along {route}", delivery.situation.label()))
                }
                _ if replays >= max => guard,
                _ => Decision::Redrive,
            })
        }
        Destination::Ingest(channel) => {
            if let Some(uuid) = message_uuid(bus, letter)
                && let Some(record) = bus.monitor.get(&uuid).await?
                && let Some(answer) = record.answer.as_deref().and_then(Answer::from_stored)
                && answer.is_accepted()
            {
                return Ok(Decision::Resolved(format!(
                    "accepted since (HTTP {})",
                    answer.status
                )));
            }
            if replays >= max {
                return Ok(guard);
            }
            if let Err(e) = credentials(bus, letter, channel) {
                return Ok(Decision::Impossible(e));
            }
            Ok(Decision::Redrive)
        }
    }
}

/// The credentials ingest will ask of this message's sender (its application's route), read
/// from this process' environment; `Err` says which variable is missing.
fn credentials(
    bus: &Bus,
    letter: &StoredLetter,
    channel: Channel,
) -> Result<Option<(String, String)>, String> {
    if channel == Channel::Kafka {
        return Ok(None);
    }
    let Ok((message, _)) = bus.codec().decode(&ingest_payload(letter)) else {
        return Ok(None);
    };
    let application = message
        .header
        .get(Field::SourceApplication)
        .unwrap_or_default()
        .to_owned();
    let table = bus.adapter_table();
    let Some(route) = table
        .routes()
        .iter()
        .find(|r| r.application.eq_ignore_ascii_case(&application) && r.user_env.is_some())
    else {
        return Ok(None);
    };
    read_credentials(route).map_err(|e| {
        format!("application {application} must authenticate and its credentials are not in this environment: {e}")
    })
}

fn read_credentials(route: &Route) -> Result<Option<(String, String)>, String> {
    match route.credentials() {
        Ok(Some(c)) => Ok(Some((c.user.clone(), c.password().to_owned()))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

async fn to_ingest(bus: &Bus, candidate: &Candidate, channel: Channel) -> Outcome {
    let letter = &candidate.letter;
    let credentials = match credentials(bus, letter, channel) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    // Ingest answers a known UUID with its stored answer: withdraw the refusal so the message
    // goes through the pipeline again (ingest treats a message without an answer as one it never
    // finished).
    let uuid = message_uuid(bus, letter);
    let mut withdrawn = None;
    if let Some(uuid) = &uuid {
        match bus.monitor.get(uuid).await {
            Ok(Some(record)) => {
                let note = format!(
                    "Redriven from the DLQ by an operator (replay {}): the stored refusal is \
                     withdrawn and the message goes through ingest again.",
                    candidate.replays + 1
                );
                let _ = bus
                    .monitor
                    .add_timeline(uuid, None, Stage::Received, record.situation, &note)
                    .await;
                if let Some(answer) = record.answer.filter(|a| !a.is_empty()) {
                    if let Err(e) = bus.monitor.set_answer(uuid, "").await {
                        return Outcome::Failed(format!(
                            "the stored answer of {uuid} could not be withdrawn: {e}"
                        ));
                    }
                    withdrawn = Some(answer);
                }
            }
            Ok(None) => {}
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
    let payload = ingest_payload(letter);
    let answer = ingest::receive(
        bus,
        Inbound {
            bytes: &payload,
            channel,
            origin: letter.letter.origin.clone(),
            credentials,
            replays: candidate.replays + 1,
        },
    )
    .await;
    let status = answer.status;
    if answer.is_accepted() {
        return Outcome::Accepted { status };
    }
    match status {
        401 | 424 | 503 => {
            // Refused before ingest recorded anything (401), or not kept (424, 503): put the
            // first refusal back for a 401, so the sender still gets it for a repeat.
            if status == 401
                && let (Some(uuid), Some(previous)) = (&uuid, &withdrawn)
            {
                let _ = bus.monitor.set_answer(uuid, previous).await;
            }
            Outcome::NotAccepted {
                status,
                reason: answer.reason,
            }
        }
        _ => Outcome::RefusedAgain {
            status,
            reason: answer.reason,
        },
    }
}

async fn to_route(bus: &Bus, candidate: &Candidate, route: &str) -> Outcome {
    let uuid = &candidate.letter.letter.uuid;
    match bus.monitor.reset_for_reprocess(uuid, route).await {
        Ok(()) => Outcome::Replanned {
            route: route.to_owned(),
        },
        Err(e @ MonitorError::NotAllowed { .. }) => Outcome::Failed(e.to_string()),
        Err(e) => Outcome::Failed(format!("the monitor store failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_what_differs_between_messages() {
        assert_eq!(
            normalise_reason(
                "/Header/Version: version 1.001 of DOCUMENTTRACEABILITYORDER is not enabled"
            ),
            "/Header/Version: version <n> of DOCUMENTTRACEABILITYORDER is not enabled"
        );
        assert_eq!(
            normalise_reason(
                "\"T1|D MG 01|000232\" at /ListOfSaleItem/3/ItemInternalId has no De/Para"
            ),
            "\"…\" at /ListOfSaleItem/<n>/ItemInternalId has no De/Para"
        );
        assert_eq!(
            normalise_reason("UUID 3d37c6b3-a6db-59fd-a9b3-c028fdb66fab  repeated\n twice"),
            "UUID <uuid> repeated twice"
        );
        assert_eq!(
            normalise_reason("refused-3d37c6b3-a6db-59fd-a9b3-c028fdb66fab"),
            "refused-<uuid>"
        );
        // Digits inside words (SA1, A1_COD, C5_NUM) are names, not numbers.
        assert_eq!(normalise_reason("SA1/A1_COD 42"), "SA1/A1_COD <n>");
        assert_eq!(normalise_reason("an \"open quote"), "an \"open quote");
    }

    #[test]
    fn origins_say_where_a_letter_goes_back() {
        assert_eq!(
            Destination::of("rest:/totvseai/standardmessage/v1/transactions"),
            Destination::Ingest(Channel::Rest)
        );
        assert_eq!(
            Destination::of("soap:/EAISERVICE.apw"),
            Destination::Ingest(Channel::Soap)
        );
        assert_eq!(
            Destination::of("erp.inbound/2/17"),
            Destination::Ingest(Channel::Kafka)
        );
        assert_eq!(
            Destination::of("route:protheus"),
            Destination::Route("protheus".into())
        );
    }

    #[test]
    fn the_histogram_counts_most_first() {
        let letter = |reason: &str, offset| StoredLetter {
            position: Position {
                topic: "eai.dlq".into(),
                partition: 0,
                offset,
            },
            appended_ms: offset,
            headers: Vec::new(),
            letter: DeadLetter {
                uuid: format!("u{offset}"),
                transaction: "RETAILSALES".into(),
                key: None,
                reason: reason.into(),
                stage: "route".into(),
                origin: "rest:/x".into(),
                attempts: 0,
                first_seen_ms: offset,
                replays: 0,
                payload: Vec::new(),
            },
        };
        let letters = [
            letter("version 2.011 is not enabled", 1),
            letter("no adapter receives X", 2),
            letter("version 2.012 is not enabled", 3),
        ];
        assert_eq!(
            histogram(&letters),
            vec![
                ("version <n> is not enabled".to_owned(), 2),
                ("no adapter receives X".to_owned(), 1)
            ]
        );
    }
}
