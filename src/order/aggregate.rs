//! One order (one OMNI sale) as an aggregate: `handle(command) -> changes` decides, `apply(change)`
//! changes state, as cqrs-es does.
//!
//! The state is the set of facts (order events) recorded for the order plus the status of each
//! part as last announced. Everything else — the status of each part, the canonical history,
//! invoices, ids — is [`Derived`] from the facts by one deterministic fold:
//!
//! 1. facts are taken in the order of their time (`OrderEvent::at`, then event id);
//! 2. each fact gives observations: SaleReceived → Recebido on every part, SaleIntegrated →
//!    Integrado on every part (and Entregue on a Retira part: the goods left with the customer),
//!    StatusReported → its status on the part of its message, CancellationConfirmed → Cancelado
//!    on every part;
//! 3. a part keeps the highest observation by (rank in its flow, time, fixed order): a duplicate
//!    or late report never moves it backwards, Cancelado after invoicing is refused, and an
//!    unknown text shows as `UnknownStatus` while it is newer than the known status.
//!
//! Step 3 is a join (commutative, associative, idempotent), so the status depends on the set of
//! facts only: any interleaving or duplication of an order's events ends in the same state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::events::{Invoice, Kind, OrderEvent, OrderFacts};
use super::status::{Flow, Status};

/// The one command: record a fact the bus derived about this order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Record(OrderEvent),
}

/// What handling a command decided.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderChange {
    /// A new fact joins the order's facts.
    FactRecorded(Box<OrderEvent>),
    /// The status of a part changed (`from` is `None` for a new part).
    StatusChanged {
        flow: Flow,
        from: Option<Status>,
        to: Status,
        /// Time of the fact that decided the new status.
        at: i64,
        /// The fact being recorded.
        event_id: String,
    },
    /// A cancellation reached a part that is already invoiced: it stays as it is (§8.6).
    CancellationRefused {
        flow: Flow,
        status: Status,
        event_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// An event with no kind (written by a newer version this one does not understand): skip it.
    #[error("order event {event_id} has no kind this version understands")]
    UnknownKind { event_id: String },
}

/// One order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Order {
    pub id: String,
    /// Sorted by [`fact_order`]; event ids are unique.
    facts: Vec<OrderEvent>,
    /// The status of each part as last announced by `StatusChanged`.
    current: BTreeMap<Flow, Status>,
    /// Facts a rebuild recorded ([`Order::add_fact`]) and [`Order::unpack`] has not decoded
    /// yet: `OrderFacts`, in the order they came. Encoded, a fact takes a third of the memory
    /// it takes decoded, and a rebuild holds every fact of the log at once.
    recorded: Vec<u8>,
}

impl Order {
    pub fn new(id: impl Into<String>) -> Order {
        Order {
            id: id.into(),
            ..Order::default()
        }
    }

    /// An order from stored facts and statuses (see [`Order::current`]).
    pub fn restore(
        id: impl Into<String>,
        mut facts: Vec<OrderEvent>,
        current: BTreeMap<Flow, Status>,
    ) -> Order {
        facts.sort_by(fact_order);
        facts.dedup_by(|a, b| a.event_id == b.event_id);
        Order {
            id: id.into(),
            facts,
            current,
            recorded: Vec::new(),
        }
    }

    pub fn facts(&self) -> &[OrderEvent] {
        &self.facts
    }

    pub fn current(&self) -> &BTreeMap<Flow, Status> {
        &self.current
    }

    pub fn knows(&self, event_id: &str) -> bool {
        self.facts.iter().any(|f| f.event_id == event_id)
    }

    /// Decides what recording a fact changes. A fact already recorded changes nothing.
    pub fn handle(&self, command: OrderCommand) -> Result<Vec<OrderChange>, OrderError> {
        let OrderCommand::Record(event) = command;
        if event.kind.is_none() {
            return Err(OrderError::UnknownKind {
                event_id: event.event_id,
            });
        }
        if self.knows(&event.event_id) {
            return Ok(Vec::new());
        }
        let mut facts: Vec<&OrderEvent> = Vec::with_capacity(self.facts.len() + 1);
        facts.extend(self.facts.iter());
        facts.push(&event);
        let (derived, refused) = Derived::fold(&self.id, facts, false, Some(&event.event_id));
        let mut changes = Vec::new();
        for (flow, part) in &derived.parts {
            let before = self.current.get(flow);
            if before != Some(&part.status) {
                changes.push(OrderChange::StatusChanged {
                    flow: *flow,
                    from: before.cloned(),
                    to: part.status.clone(),
                    at: part.since,
                    event_id: event.event_id.clone(),
                });
            }
        }
        for flow in refused {
            if let Some(part) = derived.parts.get(&flow) {
                changes.push(OrderChange::CancellationRefused {
                    flow,
                    status: part.status.clone(),
                    event_id: event.event_id.clone(),
                });
            }
        }
        changes.insert(0, OrderChange::FactRecorded(Box::new(event)));
        Ok(changes)
    }

    /// Applies a change: pure state change, no decision.
    pub fn apply(&mut self, change: OrderChange) {
        match change {
            OrderChange::FactRecorded(event) => {
                let event = *event;
                if !self.knows(&event.event_id) {
                    let at = self
                        .facts
                        .partition_point(|f| fact_order(f, &event).is_lt());
                    self.facts.insert(at, event);
                }
            }
            OrderChange::StatusChanged { flow, to, .. } => {
                self.current.insert(flow, to);
            }
            OrderChange::CancellationRefused { .. } => {}
        }
    }

    /// Handles and applies. Returns whether the fact was new, and the changes other than the
    /// recorded fact itself (status changes, refused cancellations).
    pub fn record(&mut self, event: OrderEvent) -> Result<(bool, Vec<OrderChange>), OrderError> {
        let changes = self.handle(OrderCommand::Record(event))?;
        let mut recorded = false;
        let mut others = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                OrderChange::FactRecorded(_) => {
                    recorded = true;
                    self.apply(change);
                }
                other => {
                    self.apply(other.clone());
                    others.push(other);
                }
            }
        }
        Ok((recorded, others))
    }

    /// Records a fact without deciding anything (a rebuild, which announces nothing). It is
    /// kept encoded until [`Order::unpack`]; [`Order::settle`] then sets the statuses from
    /// everything recorded.
    pub fn add_fact(&mut self, event: &OrderEvent) {
        if event.kind.is_some() {
            prost::encoding::message::encode(1, event, &mut self.recorded);
        }
    }

    /// Decodes the facts [`Order::add_fact`] recorded and keeps them as recording them one by
    /// one does (the first of each event id, in fact order). Returns their stored form
    /// (`OrderFacts`) when it is the recorded bytes as they are — the facts came in fact order,
    /// once each, as they mostly do — which spares encoding them again.
    pub fn unpack(&mut self) -> Result<Option<Vec<u8>>, prost::DecodeError> {
        use prost::Message as _;
        let recorded = std::mem::take(&mut self.recorded);
        if recorded.is_empty() {
            return Ok(None);
        }
        let mut in_order = self.facts.is_empty();
        for event in OrderFacts::decode(recorded.as_slice())?.facts {
            let appended = self
                .facts
                .last()
                .is_none_or(|last| fact_order(last, &event).is_lt());
            in_order &= appended && !self.knows(&event.event_id);
            self.apply(OrderChange::FactRecorded(Box::new(event)));
        }
        Ok(in_order.then_some(recorded))
    }

    /// Sets the announced statuses to those `derived` (from [`Order::derive`]) has: what
    /// recording the same facts one by one leaves, since a part, once it has a status, keeps one.
    pub fn settle(&mut self, derived: &Derived) {
        self.current = derived
            .parts
            .iter()
            .map(|(flow, part)| (*flow, part.status.clone()))
            .collect();
    }

    /// Everything derived from the facts (those a rebuild recorded count once unpacked).
    pub fn derive(&self) -> Derived {
        debug_assert!(self.recorded.is_empty(), "unpack the recorded facts first");
        Derived::from_facts(&self.id, self.facts.iter().collect())
    }
}

/// Facts in time order. Sources stamp whole seconds (`GeneratedOn`), so reports of one second
/// tie often; they keep the order eaibus derived them in (arrival), then the event id — still a
/// total order on the set, so the fold does not depend on the order facts are fed in.
fn fact_order(a: &OrderEvent, b: &OrderEvent) -> std::cmp::Ordering {
    a.at()
        .cmp(&b.at())
        .then_with(|| a.recorded_at_ms.cmp(&b.recorded_at_ms))
        .then_with(|| a.event_id.cmp(&b.event_id))
}

/// What an observation did to its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    /// The part moved to this status.
    Applied,
    /// The part already had this status (a duplicate or a repeated report).
    Repeated,
    /// Older or behind the part's status: kept in the history, no move backwards.
    Late,
    /// A cancellation after invoicing (§8.6).
    Refused,
    /// A status the part's flow does not have.
    OutOfFlow,
    /// Not a status: a cancellation request or refusal.
    Note,
}

impl Effect {
    pub fn code(self) -> &'static str {
        match self {
            Effect::Applied => "APPLIED",
            Effect::Repeated => "REPEATED",
            Effect::Late => "LATE",
            Effect::Refused => "REFUSED",
            Effect::OutOfFlow => "OUT_OF_FLOW",
            Effect::Note => "NOTE",
        }
    }

    pub fn from_code(code: &str) -> Effect {
        match code {
            "APPLIED" => Effect::Applied,
            "REPEATED" => Effect::Repeated,
            "LATE" => Effect::Late,
            "REFUSED" => Effect::Refused,
            "OUT_OF_FLOW" => Effect::OutOfFlow,
            _ => Effect::Note,
        }
    }
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Time of the fact (ms since the epoch).
    pub at: i64,
    pub flow: Option<Flow>,
    pub status: Option<Status>,
    /// The text as reported (or the canonical text of a derived status).
    pub text: String,
    /// The part's status before, when this line moved it.
    pub previous: Option<Status>,
    pub effect: Effect,
    pub event_id: String,
    pub source_uuid: String,
    pub note: String,
}

/// The status of one part of the sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub flow: Flow,
    pub status: Status,
    /// Time of the observation that gave the status.
    pub since: i64,
    /// Protheus order ids of this part (EMP|FIL|C5_NUM|2 or EMP|FIL|L1_NUM|2).
    pub order_ids: BTreeSet<String>,
    pub order_numbers: BTreeSet<String>,
}

/// An invoice as last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub flow: Flow,
    pub number: String,
    pub series: String,
    pub internal_id: String,
    pub status_text: String,
    pub access_key: String,
    pub issue_date: String,
    pub value: f64,
    pub order_id: String,
    /// When it was last reported.
    pub reported_at: i64,
}

/// Where the cancellation of the sale stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cancellation {
    Requested {
        cancellation_id: String,
    },
    Confirmed {
        cancellation_id: String,
        protheus_id: String,
    },
    Refused {
        cancellation_id: String,
        reason: String,
    },
}

/// Everything the facts of an order say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    pub order_id: String,
    /// The overall status: the first unfinished part (Entrega, Retira posterior, Retira), else
    /// the first part.
    pub status: Option<Status>,
    pub parts: BTreeMap<Flow, Part>,
    pub history: Vec<HistoryEntry>,
    pub invoices: Vec<InvoiceView>,
    /// Protheus sale ids (EMP|FIL|SERIE|DOC|PDV).
    pub sale_ids: BTreeSet<String>,
    /// `RetailSalesInternalId` values reports carried.
    pub sale_refs: BTreeSet<String>,
    pub customer_id: String,
    pub ecommerce_order: String,
    pub company_id: String,
    pub branch_id: String,
    pub reservations: BTreeSet<String>,
    pub cancellation: Option<Cancellation>,
    /// Time of the latest fact.
    pub updated_at: i64,
}

/// The best known observation of a part: compared by (rank, time, fixed order).
#[derive(Debug, Clone)]
struct Best {
    rank: u8,
    at: i64,
    ordinal: u8,
    status: Status,
}

impl Best {
    fn key(&self) -> (u8, i64, u8) {
        (self.rank, self.at, self.ordinal)
    }
}

#[derive(Debug, Clone, Default)]
struct PartFold {
    best: Option<Best>,
    /// The newest unknown text: (time, text).
    unknown: Option<(i64, String)>,
}

impl PartFold {
    fn effective(&self) -> Option<(Status, i64)> {
        if let Some((at, text)) = &self.unknown
            && self.best.as_ref().is_none_or(|b| *at > b.at)
        {
            return Some((Status::Unknown(text.clone()), *at));
        }
        self.best.as_ref().map(|b| (b.status.clone(), b.at))
    }
}

struct Observation<'a> {
    flow: Flow,
    status: Status,
    text: &'a str,
    fact: &'a OrderEvent,
    note: &'static str,
}

/// What one observation did to its part.
struct Seen {
    effect: Effect,
    previous: Option<Status>,
    note: Option<String>,
}

impl Derived {
    /// Folds facts (any order, duplicates allowed) into the order's derived state.
    pub fn from_facts(order_id: &str, facts: Vec<&OrderEvent>) -> Derived {
        Derived::fold(order_id, facts, true, None).0
    }

    /// The fold; without `detail` only the parts and their statuses (no history, invoices or
    /// ids), plus the flows where the fact `target` is a refused cancellation.
    fn fold(
        order_id: &str,
        mut facts: Vec<&OrderEvent>,
        detail: bool,
        target: Option<&str>,
    ) -> (Derived, Vec<Flow>) {
        let mut refused_flows = Vec::new();
        facts.sort_by(|a, b| fact_order(a, b));
        facts.dedup_by(|a, b| a.event_id == b.event_id);

        let mut derived = Derived {
            order_id: order_id.to_owned(),
            status: None,
            parts: BTreeMap::new(),
            history: Vec::new(),
            invoices: Vec::new(),
            sale_ids: BTreeSet::new(),
            sale_refs: BTreeSet::new(),
            customer_id: String::new(),
            ecommerce_order: String::new(),
            company_id: String::new(),
            branch_id: String::new(),
            reservations: BTreeSet::new(),
            cancellation: None,
            updated_at: facts.last().map_or(0, |f| f.at()),
        };

        // Pass 1: which parts the sale has, and the facts that are not statuses.
        let mut flows: BTreeSet<Flow> = BTreeSet::new();
        let mut invoices: BTreeMap<(String, String), InvoiceView> = BTreeMap::new();
        let mut confirmed: Option<Cancellation> = None;
        let mut refused: Option<Cancellation> = None;
        let mut requested: Option<Cancellation> = None;
        for fact in &facts {
            if !detail {
                match &fact.kind {
                    Some(Kind::SaleReceived(sale)) => {
                        if sale.items.is_empty() {
                            flows.insert(Flow::Retira);
                        }
                        for item in &sale.items {
                            flows.insert(Flow::of_delivery_type(item.delivery_type()));
                        }
                    }
                    Some(Kind::StatusReported(report)) => {
                        flows.insert(Flow::of_source(report.source()));
                    }
                    _ => {}
                }
                continue;
            }
            match &fact.kind {
                Some(Kind::SaleReceived(sale)) => {
                    if sale.items.is_empty() {
                        flows.insert(Flow::Retira);
                    }
                    for item in &sale.items {
                        flows.insert(Flow::of_delivery_type(item.delivery_type()));
                    }
                    set_if(&mut derived.customer_id, &sale.customer_id);
                    set_if(&mut derived.ecommerce_order, &sale.ecommerce_order);
                    set_if(&mut derived.company_id, &sale.company_id);
                    set_if(&mut derived.branch_id, &sale.branch_id);
                    derived.reservations.extend(
                        sale.items
                            .iter()
                            .filter(|i| !i.reservation_id.is_empty())
                            .map(|i| i.reservation_id.clone()),
                    );
                }
                Some(Kind::CustomerLinked(link)) => {
                    set_if(&mut derived.customer_id, &link.customer_id)
                }
                Some(Kind::ReservationMade(made)) => {
                    derived
                        .reservations
                        .extend(made.reservation_ids.iter().cloned());
                }
                Some(Kind::SaleIntegrated(integrated)) => {
                    if !integrated.protheus_sale_id.is_empty() {
                        derived.sale_ids.insert(integrated.protheus_sale_id.clone());
                    }
                }
                Some(Kind::StatusReported(report)) => {
                    let flow = Flow::of_source(report.source());
                    flows.insert(flow);
                    if !report.sale_ref.is_empty() && report.sale_ref != order_id {
                        derived.sale_refs.insert(report.sale_ref.clone());
                    }
                    for invoice in &report.invoices {
                        merge_invoice(&mut invoices, flow, report, invoice, fact.at());
                    }
                }
                Some(Kind::CancellationRequested(c)) => {
                    requested = Some(Cancellation::Requested {
                        cancellation_id: c.cancellation_id.clone(),
                    });
                }
                Some(Kind::CancellationConfirmed(c)) => {
                    confirmed = Some(Cancellation::Confirmed {
                        cancellation_id: c.cancellation_id.clone(),
                        protheus_id: c.protheus_cancellation_id.clone(),
                    });
                }
                Some(Kind::CancellationRefused(c)) => {
                    refused = Some(Cancellation::Refused {
                        cancellation_id: c.cancellation_id.clone(),
                        reason: c.reason.clone(),
                    });
                }
                Some(Kind::InternalIdMapped(_)) | None => {}
            }
        }
        derived.cancellation = confirmed.or(refused).or(requested);
        derived.invoices = invoices.into_values().collect();
        if flows.is_empty() {
            // Known from its Response only: the general order flow until a report says more.
            flows.insert(Flow::Entrega);
        }

        // Pass 2: the status fold, fact by fact in time order.
        let mut folds: BTreeMap<Flow, PartFold> =
            flows.iter().map(|f| (*f, PartFold::default())).collect();
        let mut order_ids: BTreeMap<Flow, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for fact in &facts {
            let mut observations: Vec<Observation<'_>> = Vec::new();
            let every = |status: Status, note: &'static str| -> Vec<Observation<'_>> {
                flows
                    .iter()
                    .map(|flow| Observation {
                        flow: *flow,
                        text: status.known_text(),
                        status: status.clone(),
                        fact,
                        note,
                    })
                    .collect()
            };
            match &fact.kind {
                Some(Kind::SaleReceived(_)) => observations = every(Status::Recebido, ""),
                Some(Kind::SaleIntegrated(_)) => {
                    observations = every(Status::Integrado, "");
                    if flows.contains(&Flow::Retira) {
                        observations.push(Observation {
                            flow: Flow::Retira,
                            status: Status::Entregue,
                            text: Status::Entregue.known_text(),
                            fact,
                            note: "retirada pelo cliente na venda",
                        });
                    }
                }
                Some(Kind::StatusReported(report)) => {
                    let flow = Flow::of_source(report.source());
                    if detail {
                        let ids = order_ids.entry(flow).or_default();
                        if !report.order_internal_id.is_empty() {
                            ids.0.insert(report.order_internal_id.clone());
                        }
                        if !report.order_number.is_empty() {
                            ids.1.insert(report.order_number.clone());
                        }
                    }
                    observations.push(Observation {
                        flow,
                        status: Status::normalise(&report.status_text),
                        text: &report.status_text,
                        fact,
                        note: "",
                    });
                }
                Some(Kind::CancellationConfirmed(_)) => {
                    observations = every(Status::Cancelado, "cancelamento confirmado")
                }
                Some(Kind::CancellationRequested(c)) if detail => {
                    derived
                        .history
                        .push(note(fact, "Cancelamento solicitado", &c.cancellation_id));
                }
                Some(Kind::CancellationRefused(c)) if detail => {
                    derived.history.push(note(
                        fact,
                        "Cancelamento recusado pelo Protheus",
                        &c.reason,
                    ));
                }
                _ => {}
            }
            for observation in observations {
                let Some(fold) = folds.get_mut(&observation.flow) else {
                    continue;
                };
                let seen = observe(fold, &observation);
                if seen.effect == Effect::Refused && target == Some(fact.event_id.as_str()) {
                    refused_flows.push(observation.flow);
                }
                if detail {
                    derived.history.push(HistoryEntry {
                        at: fact.at(),
                        flow: Some(observation.flow),
                        status: Some(observation.status),
                        text: observation.text.to_owned(),
                        previous: seen.previous,
                        effect: seen.effect,
                        event_id: fact.event_id.clone(),
                        source_uuid: fact.source_uuid.clone(),
                        note: seen.note.unwrap_or_else(|| observation.note.to_owned()),
                    });
                }
            }
        }
        for (flow, fold) in folds {
            let Some((status, since)) = fold.effective() else {
                continue;
            };
            let (ids, numbers) = order_ids.remove(&flow).unwrap_or_default();
            derived.parts.insert(
                flow,
                Part {
                    flow,
                    status,
                    since,
                    order_ids: ids,
                    order_numbers: numbers,
                },
            );
        }
        derived.status = Flow::ALL
            .iter()
            .filter_map(|f| derived.parts.get(f))
            .find(|p| !p.flow.is_final(&p.status))
            .or_else(|| Flow::ALL.iter().find_map(|f| derived.parts.get(f)))
            .map(|p| p.status.clone());
        (derived, refused_flows)
    }

    /// Every id the order is known by: the OMNI id, Protheus sale ids, order ids, report refs.
    pub fn ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        ids.insert(self.order_id.clone());
        ids.extend(self.sale_ids.iter().cloned());
        ids.extend(self.sale_refs.iter().cloned());
        for part in self.parts.values() {
            ids.extend(part.order_ids.iter().cloned());
        }
        ids
    }
}

fn observe(fold: &mut PartFold, observation: &Observation<'_>) -> Seen {
    let at = observation.fact.at();
    let before = fold.effective().map(|(s, _)| s);
    let flow = observation.flow;
    match &observation.status {
        Status::Unknown(text) => {
            if fold
                .unknown
                .as_ref()
                .is_none_or(|(t, x)| (at, text) > (*t, x))
            {
                fold.unknown = Some((at, text.clone()));
            }
        }
        status => {
            let Some(rank) = flow.rank(status) else {
                return Seen {
                    effect: Effect::OutOfFlow,
                    previous: None,
                    note: Some(format!("{status} não faz parte do fluxo {flow}")),
                };
            };
            if *status == Status::Cancelado
                && fold
                    .best
                    .as_ref()
                    .is_some_and(|b| flow.is_invoiced(&b.status))
            {
                return Seen {
                    effect: Effect::Refused,
                    previous: None,
                    note: Some("cancelamento recusado: pedido já faturado".into()),
                };
            }
            let candidate = Best {
                rank,
                at,
                ordinal: status.ordinal(),
                status: status.clone(),
            };
            if fold.best.as_ref().is_none_or(|b| candidate.key() > b.key()) {
                fold.best = Some(candidate);
            }
        }
    }
    let after = fold.effective().map(|(s, _)| s);
    if after != before {
        Seen {
            effect: Effect::Applied,
            previous: before,
            note: None,
        }
    } else {
        Seen {
            effect: if after.as_ref() == Some(&observation.status) {
                Effect::Repeated
            } else {
                Effect::Late
            },
            previous: None,
            note: None,
        }
    }
}

fn note(fact: &OrderEvent, text: &str, detail: &str) -> HistoryEntry {
    HistoryEntry {
        at: fact.at(),
        flow: None,
        status: None,
        text: text.to_owned(),
        previous: None,
        effect: Effect::Note,
        event_id: fact.event_id.clone(),
        source_uuid: fact.source_uuid.clone(),
        note: detail.to_owned(),
    }
}

fn set_if(target: &mut String, value: &str) {
    if !value.is_empty() {
        value.clone_into(target);
    }
}

fn merge_invoice(
    invoices: &mut BTreeMap<(String, String), InvoiceView>,
    flow: Flow,
    report: &super::events::StatusReported,
    invoice: &Invoice,
    at: i64,
) {
    let key = (invoice.series.clone(), invoice.number.clone());
    let view = invoices.entry(key).or_insert_with(|| InvoiceView {
        flow,
        number: invoice.number.clone(),
        series: invoice.series.clone(),
        internal_id: String::new(),
        status_text: String::new(),
        access_key: String::new(),
        issue_date: String::new(),
        value: 0.0,
        order_id: report.order_internal_id.clone(),
        reported_at: at,
    });
    // Facts come in time order: later non-empty values win.
    set_if(&mut view.internal_id, &invoice.internal_id);
    set_if(&mut view.status_text, &invoice.status_text);
    set_if(&mut view.access_key, &invoice.access_key);
    set_if(&mut view.issue_date, &invoice.issue_date);
    set_if(&mut view.order_id, &report.order_internal_id);
    if invoice.value != 0.0 {
        view.value = invoice.value;
    }
    view.flow = flow;
    view.reported_at = at;
}
