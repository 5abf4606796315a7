//! The monitor's vocabulary: situations (the Protheus EAI queue states), stages of the pipeline,
//! and the records the store keeps and returns.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a message (or one of its deliveries) stands, in the words of the Protheus EAI monitor
/// (eai-protocol.md §5.6). Codes "0" to "4" are the Protheus `TRANS_*` constants; Protheus has no
/// known code for "Não entregue" and "Recusada", so eaibus gives them "5" and "6". Codes are what
/// the store writes: never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Situation {
    /// Queued, waiting to be processed or sent (`TRANS_INQUEUE` "0").
    AguardandoExecucao,
    /// Being processed or sent right now (`TRANS_EXECUTING` "1").
    Executando,
    /// Processed or delivered (`TRANS_FINISHED` "2").
    Finalizada,
    /// Failed; retried while attempts remain, or dead-lettered (`TRANS_FAILED` "3").
    Falhou,
    /// Attempts exhausted: only a manual reprocess sends it again (`TRANS_BLOCKED` "4").
    Bloqueado,
    /// Sent, but a timeout left the outcome unknown ("5", eaibus).
    NaoEntregue,
    /// Refused at the door: could not be decoded or diverges from its schema ("6", eaibus).
    Recusada,
}

impl Situation {
    /// Every situation, in code order.
    pub const ALL: [Situation; 7] = [
        Situation::AguardandoExecucao,
        Situation::Executando,
        Situation::Finalizada,
        Situation::Falhou,
        Situation::Bloqueado,
        Situation::NaoEntregue,
        Situation::Recusada,
    ];

    /// The stable storage code.
    pub fn code(self) -> &'static str {
        match self {
            Situation::AguardandoExecucao => "0",
            Situation::Executando => "1",
            Situation::Finalizada => "2",
            Situation::Falhou => "3",
            Situation::Bloqueado => "4",
            Situation::NaoEntregue => "5",
            Situation::Recusada => "6",
        }
    }

    pub fn from_code(code: &str) -> Option<Situation> {
        Situation::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The label the Protheus EAI monitor shows (pt-BR).
    pub fn label(self) -> &'static str {
        match self {
            Situation::AguardandoExecucao => "Aguardando execução",
            Situation::Executando => "Executando",
            Situation::Finalizada => "Finalizada",
            Situation::Falhou => "Falhou",
            Situation::Bloqueado => "Bloqueado",
            Situation::NaoEntregue => "Não entregue",
            Situation::Recusada => "Recusada",
        }
    }

    /// Whether processing has come to a stop here (for now): everything but waiting and running.
    pub fn is_settled(self) -> bool {
        !matches!(self, Situation::AguardandoExecucao | Situation::Executando)
    }
}

impl fmt::Display for Situation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A step of the pipeline a message has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Received,
    Validated,
    Routed,
    Mapped,
    Logged,
    Delivering,
    Delivered,
    Failed,
    Refused,
    Parked,
    Dlq,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Received,
        Stage::Validated,
        Stage::Routed,
        Stage::Mapped,
        Stage::Logged,
        Stage::Delivering,
        Stage::Delivered,
        Stage::Failed,
        Stage::Refused,
        Stage::Parked,
        Stage::Dlq,
    ];

    /// The stable storage code (the English name).
    pub fn code(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::Validated => "validated",
            Stage::Routed => "routed",
            Stage::Mapped => "mapped",
            Stage::Logged => "logged",
            Stage::Delivering => "delivering",
            Stage::Delivered => "delivered",
            Stage::Failed => "failed",
            Stage::Refused => "refused",
            Stage::Parked => "parked",
            Stage::Dlq => "dlq",
        }
    }

    pub fn from_code(code: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The label the monitor pages show (pt-BR).
    pub fn label(self) -> &'static str {
        match self {
            Stage::Received => "Recebida",
            Stage::Validated => "Validada",
            Stage::Routed => "Roteada",
            Stage::Mapped => "De/Para aplicado",
            Stage::Logged => "Gravada no log",
            Stage::Delivering => "Em entrega",
            Stage::Delivered => "Entregue",
            Stage::Failed => "Falha na entrega",
            Stage::Refused => "Recusada",
            Stage::Parked => "Bloqueada",
            Stage::Dlq => "Enviada à fila de erros (DLQ)",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether eaibus received the message from a sender or sends it to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn code(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn from_code(code: &str) -> Option<Direction> {
        match code {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Direction::Inbound => "Entrada",
            Direction::Outbound => "Saída",
        }
    }
}

/// The wire format the message arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn code(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }

    pub fn from_code(code: &str) -> Option<Format> {
        match code {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// A message as ingest saw it arrive, before the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The header UUID. For [`MonitorStore::record_refused`](super::MonitorStore::record_refused)
    /// an empty string means "none could be read".
    pub uuid: String,
    pub transaction: String,
    pub version: String,
    pub direction: Direction,
    pub source_application: String,
    pub format: Format,
    /// The endpoint it came in on, or `topic/partition/offset`.
    pub origin: String,
    pub business_key: Option<String>,
    /// Milliseconds since the Unix epoch; `None` stamps the store's clock.
    pub received_at: Option<i64>,
    /// The bytes exactly as received.
    pub raw_payload: Vec<u8>,
    /// The canonical JSON form; `None` when the payload could not be decoded.
    pub canonical_json: Option<String>,
}

impl NewMessage {
    /// An inbound JSON message with the given UUID and transaction; fill the rest as needed.
    pub fn new(uuid: impl Into<String>, transaction: impl Into<String>) -> NewMessage {
        NewMessage {
            uuid: uuid.into(),
            transaction: transaction.into(),
            version: String::new(),
            direction: Direction::Inbound,
            source_application: String::new(),
            format: Format::Json,
            origin: String::new(),
            business_key: None,
            received_at: None,
            raw_payload: Vec::new(),
            canonical_json: None,
        }
    }
}

/// What [`MonitorStore::record_received`](super::MonitorStore::record_received) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// First time this UUID is seen: process it.
    New,
    /// The UUID is known: do not process again; answer with `record.answer` if there is one.
    Duplicate(Box<MessageRecord>),
}

/// Everything the store knows about one message (the detail page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRecord {
    pub id: i64,
    pub uuid: String,
    pub transaction: String,
    pub version: String,
    pub direction: Direction,
    pub source_application: String,
    pub format: Format,
    pub origin: String,
    pub business_key: Option<String>,
    pub situation: Situation,
    pub stage: Stage,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    /// The most attempts any of its deliveries has made.
    pub attempts: i64,
    pub last_error: Option<String>,
    pub raw_payload: Vec<u8>,
    pub canonical_json: Option<String>,
    /// The answer sent to the sender, replayed for a duplicate UUID.
    pub answer: Option<String>,
    /// How many times an operator sent it again after a failure.
    pub repeated_failures: i64,
    /// How many times the same UUID arrived again.
    pub duplicates: i64,
}

/// One line of the message list: the record without its payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    pub id: i64,
    pub uuid: String,
    pub transaction: String,
    pub version: String,
    pub direction: Direction,
    pub source_application: String,
    pub format: Format,
    pub origin: String,
    pub business_key: Option<String>,
    pub situation: Situation,
    pub stage: Stage,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub repeated_failures: i64,
    pub duplicates: i64,
}

/// One message's delivery along one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub uuid: String,
    pub route: String,
    pub situation: Situation,
    pub stage: Stage,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When the retry scheduler should try again (or, while running, when the attempt's lease
    /// runs out); `None` when nothing is planned.
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub response: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One replay of a settled delivery: when, why, and the state it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReplay {
    pub at: i64,
    pub previous_situation: Situation,
    pub previous_attempts: i64,
    pub previous_delivered_at: Option<i64>,
    pub reason: String,
}

/// A delivery that will be attempted (now or later) with what its worker needs of the message:
/// its business key (one key's deliveries go in order) and its canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingDelivery {
    pub delivery: DeliveryRecord,
    pub transaction: String,
    pub business_key: Option<String>,
    /// When the message was received: pending deliveries come oldest message first.
    pub received_at: i64,
    pub canonical_json: Option<String>,
}

/// What a route consumer needs to know before it delivers a polled batch itself (see
/// `delivery/direct.rs`): which messages the store knows, which of them already have a delivery
/// along the route, and which business keys have an earlier delivery still pending there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryGate {
    pub known: std::collections::HashSet<String>,
    pub has_delivery: std::collections::HashSet<String>,
    pub busy_keys: std::collections::HashSet<String>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The target accepted it → Finalizada.
    Delivered { response: String },
    /// It failed and will be tried again at `retry_at` → Falhou.
    Failed { error: String, retry_at: i64 },
    /// A timeout left the outcome unknown → Não entregue; `retry_at` if it should be sent again.
    TimedOut {
        error: String,
        retry_at: Option<i64>,
    },
    /// Attempts exhausted: waits for a manual reprocess → Bloqueado.
    Parked { error: String },
    /// A permanent failure sent to the DLQ → Falhou (stage dlq), no retry.
    DeadLettered { error: String },
}

impl DeliveryOutcome {
    pub fn situation(&self) -> Situation {
        match self {
            DeliveryOutcome::Delivered { .. } => Situation::Finalizada,
            DeliveryOutcome::Failed { .. } | DeliveryOutcome::DeadLettered { .. } => {
                Situation::Falhou
            }
            DeliveryOutcome::TimedOut { .. } => Situation::NaoEntregue,
            DeliveryOutcome::Parked { .. } => Situation::Bloqueado,
        }
    }

    pub fn stage(&self) -> Stage {
        match self {
            DeliveryOutcome::Delivered { .. } => Stage::Delivered,
            DeliveryOutcome::Failed { .. } | DeliveryOutcome::TimedOut { .. } => Stage::Failed,
            DeliveryOutcome::Parked { .. } => Stage::Parked,
            DeliveryOutcome::DeadLettered { .. } => Stage::Dlq,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            DeliveryOutcome::Delivered { .. } => None,
            DeliveryOutcome::Failed { error, .. }
            | DeliveryOutcome::TimedOut { error, .. }
            | DeliveryOutcome::Parked { error }
            | DeliveryOutcome::DeadLettered { error } => Some(error),
        }
    }

    pub fn retry_at(&self) -> Option<i64> {
        match self {
            DeliveryOutcome::Failed { retry_at, .. } => Some(*retry_at),
            DeliveryOutcome::TimedOut { retry_at, .. } => *retry_at,
            _ => None,
        }
    }
}

/// What [`MonitorStore::start_delivery`](super::MonitorStore::start_delivery) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStart {
    /// This caller owns the attempt; `attempt` is its number (1 for the first).
    Started { attempt: i64 },
    /// Not startable now: already running elsewhere, delivered, parked, dead-lettered, or its
    /// retry is not due yet. The delivery's current situation is given.
    NotStarted { situation: Situation },
}

/// What ingest did with a message after recording it, written in one transaction: the steps
/// it went through (each a timeline entry with its own time), where it ended, and the changes
/// to keep (the canonical form after De/Para, the answer for a repeated UUID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub steps: Vec<Step>,
    /// The situation and stage the message ends in, with its error if it failed.
    pub outcome: Option<(Situation, Stage, Option<String>)>,
    pub canonical_json: Option<String>,
    pub answer: Option<String>,
    /// Clears the answer kept so far: it was kept with the message ahead of a step that then
    /// failed (see `MonitorStore::record_received_with`).
    pub retract_answer: bool,
}

/// One step of [`Progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at: i64,
    pub route: Option<String>,
    pub stage: Stage,
    pub situation: Situation,
    pub detail: String,
}

impl Progress {
    /// Notes a step taken now.
    pub fn step(&mut self, stage: Stage, situation: Situation, detail: impl Into<String>) {
        self.steps.push(Step {
            at: super::time::now_millis(),
            route: None,
            stage,
            situation,
            detail: detail.into(),
        });
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
            && self.outcome.is_none()
            && self.canonical_json.is_none()
            && self.answer.is_none()
            && !self.retract_answer
    }
}

/// One entry of a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub id: i64,
    pub uuid: String,
    pub route: Option<String>,
    pub at: i64,
    pub stage: Stage,
    pub situation: Situation,
    /// The delivery attempt this entry reports, if it reports one.
    pub attempt: Option<i64>,
    pub detail: Option<String>,
}

/// A De/Para pair learned while processing a message (alias = the adapter's table alias, field =
/// the mapped field, external = the sender's value, internal = ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedDePara {
    pub alias: String,
    pub field: String,
    pub external: String,
    pub internal: String,
}

/// What the message list shows. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub situation: Option<Situation>,
    pub transaction: Option<String>,
    /// Only messages with a delivery along this route.
    pub route: Option<String>,
    pub direction: Option<Direction>,
    /// Received at or after (ms since epoch).
    pub from: Option<i64>,
    /// Received before (ms since epoch).
    pub to: Option<i64>,
    /// Any of these, matched as a prefix of the UUID (ASCII case ignored) or of the business key.
    pub search: Vec<String>,
    /// Only messages resolved by hand (`Some(true)`) or not resolved (`Some(false)`).
    pub resolved: Option<bool>,
    /// 1-based; 0 is read as 1.
    pub page: u32,
    /// 0 means [`DEFAULT_PAGE_SIZE`]; at most [`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

impl MessageFilter {
    pub fn effective_page(&self) -> u32 {
        self.page.max(1)
    }

    pub fn effective_page_size(&self) -> u32 {
        match self.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        }
    }
}

/// One page of the message list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessagePage {
    pub messages: Vec<MessageSummary>,
    /// How many messages match the filter, over all pages.
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

/// The monitor's totals: received = accepted + refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorCounts {
    /// Distinct messages (UUIDs) recorded, refused ones included.
    pub received: i64,
    pub accepted: i64,
    pub refused: i64,
    /// Repeated arrivals of known UUIDs (not counted in `received`).
    pub duplicates: i64,
    /// Every situation with its count, zeros included, in code order.
    pub by_situation: Vec<(Situation, i64)>,
}

impl MonitorCounts {
    pub fn situation(&self, situation: Situation) -> i64 {
        self.by_situation
            .iter()
            .find(|(s, _)| *s == situation)
            .map_or(0, |(_, n)| *n)
    }
}

/// Dashboard line: one transaction along one route. `route` is `None` for the messages that have
/// no delivery (refused, or not routed yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionRouteCounts {
    pub transaction: String,
    pub route: Option<String>,
    /// Messages of this transaction sent along this route (or without a route).
    pub received: i64,
    /// Aguardando execução or Executando.
    pub waiting: i64,
    pub delivered: i64,
    /// Falhou or Não entregue.
    pub failed: i64,
    pub parked: i64,
    pub refused: i64,
}

/// The message's situation and stage as its deliveries make them: the most urgent delivery
/// decides (Recusada, Bloqueado, dead-lettered, Não entregue, failing, running, waiting), and the
/// message is Finalizada only when every route delivered. `None` without deliveries.
pub fn aggregate_situation(deliveries: &[(Situation, Stage)]) -> Option<(Situation, Stage)> {
    fn urgency(situation: Situation, stage: Stage) -> u8 {
        match (situation, stage) {
            (Situation::Recusada, _) => 0,
            (Situation::Bloqueado, _) => 1,
            (Situation::Falhou, Stage::Dlq) => 2,
            (Situation::NaoEntregue, _) => 3,
            (Situation::Falhou, _) => 4,
            (Situation::Executando, _) => 5,
            (Situation::AguardandoExecucao, _) => 6,
            (Situation::Finalizada, _) => 7,
        }
    }
    let (situation, stage) = deliveries
        .iter()
        .copied()
        .min_by_key(|(situation, stage)| urgency(*situation, *stage))?;
    if situation == Situation::Finalizada {
        Some((Situation::Finalizada, Stage::Delivered))
    } else {
        Some((situation, stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_round_trip() {
        let codes: Vec<&str> = Situation::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, ["0", "1", "2", "3", "4", "5", "6"]);
        for s in Situation::ALL {
            assert_eq!(Situation::from_code(s.code()), Some(s));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::from_code(s.code()), Some(s));
        }
        assert_eq!(Situation::from_code("9"), None);
        assert_eq!(Situation::NaoEntregue.label(), "Não entregue");
        assert_eq!(
            Situation::AguardandoExecucao.to_string(),
            "Aguardando execução"
        );
    }

    #[test]
    fn the_most_urgent_delivery_decides() {
        use Situation::*;
        assert_eq!(aggregate_situation(&[]), None);
        assert_eq!(
            aggregate_situation(&[
                (Finalizada, Stage::Delivered),
                (Finalizada, Stage::Delivered)
            ]),
            Some((Finalizada, Stage::Delivered))
        );
        assert_eq!(
            aggregate_situation(&[
                (Finalizada, Stage::Delivered),
                (Executando, Stage::Delivering)
            ]),
            Some((Executando, Stage::Delivering))
        );
        assert_eq!(
            aggregate_situation(&[(Falhou, Stage::Failed), (Executando, Stage::Delivering)]),
            Some((Falhou, Stage::Failed))
        );
        assert_eq!(
            aggregate_situation(&[(Falhou, Stage::Failed), (Falhou, Stage::Dlq)]),
            Some((Falhou, Stage::Dlq))
        );
        assert_eq!(
            aggregate_situation(&[(NaoEntregue, Stage::Failed), (Bloqueado, Stage::Parked)]),
            Some((Bloqueado, Stage::Parked))
        );
    }
}
