//! The projection's working set: orders, id aliases and pending reports, and how an event finds
//! its order.
//!
//! - Sale facts (SaleReceived, SaleIntegrated, cancellations, ...) name their order (the OMNI sale
//!   id) and go to it.
//! - A StatusReported names the order by Protheus ids: `sale_ref` (RetailSalesInternalId) and the
//!   order's InternalId. Each is tried as an order id, then as an alias. Resolved, the report's
//!   ids become aliases of the order; unresolved, it waits in the pending reports, under both ids.
//! - Aliases are learned from SaleIntegrated (Protheus sale id → order), from InternalIdMapped of
//!   a RETAILSALES Response (Destination → Origin) and from resolved reports. Learning an alias,
//!   or creating an order, releases the reports pending under that id — which may teach more.
//!
//! The same code serves the live projection (a [`Loader`] reads what the batch needs from the
//! read model, inside the batch's transaction) and the rebuild (everything is in memory: the
//! [`Complete`] loader knows nothing beyond it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::HashMap;

use async_trait::async_trait;

use super::aggregate::{Order, OrderChange, OrderError};
use super::events::{Kind, OrderEvent};
use super::status::{Flow, Status};
use super::store::StoreError;

/// Reads what the working set does not hold yet.
#[async_trait]
pub trait Loader: Send {
    async fn order(&mut self, id: &str) -> Result<Option<Order>, StoreError>;
    async fn alias(&mut self, alias: &str) -> Result<Option<String>, StoreError>;
    /// The reports pending under `reference`.
    async fn pending(&mut self, reference: &str) -> Result<Vec<OrderEvent>, StoreError>;
}

/// The loader of a working set that already holds everything (rebuild).
pub struct Complete;

#[async_trait]
impl Loader for Complete {
    async fn order(&mut self, _id: &str) -> Result<Option<Order>, StoreError> {
        Ok(None)
    }
    async fn alias(&mut self, _alias: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    async fn pending(&mut self, _reference: &str) -> Result<Vec<OrderEvent>, StoreError> {
        Ok(Vec::new())
    }
}

/// A status change to announce (order-status output, traceability message).
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    pub order_id: String,
    pub flow: Flow,
    pub from: Option<Status>,
    pub to: Status,
    pub at: i64,
    /// The event that caused it.
    pub event_id: String,
}

/// Orders, aliases and pending reports, loaded on demand, with what changed.
#[derive(Default)]
pub struct Model {
    orders: HashMap<String, Option<Order>>,
    aliases: HashMap<String, Option<String>>,
    /// Pending reports by event id, and the references loaded.
    pending: BTreeMap<String, OrderEvent>,
    pending_by_ref: HashMap<String, BTreeSet<String>>,
    pending_loaded: BTreeSet<String>,
    /// Changes since the last [`Model::take_changes`].
    dirty_orders: BTreeSet<String>,
    new_aliases: BTreeMap<String, String>,
    added_pending: BTreeSet<String>,
    removed_pending: BTreeSet<String>,
    /// Events skipped (no kind this version understands).
    pub skipped: u64,
    /// Everything is in memory: what is not held does not exist (rebuild).
    complete: bool,
}

/// What a batch changed, for the store to write.
#[derive(Debug, Default)]
pub struct Changes {
    pub orders: Vec<Order>,
    pub aliases: Vec<(String, String)>,
    /// (reference, event) rows to add.
    pub added_pending: Vec<(String, OrderEvent)>,
    pub removed_pending: Vec<String>,
}

impl Model {
    /// A working set that loads what it misses (live projection).
    pub fn new() -> Model {
        Model::default()
    }

    /// A working set that holds everything (rebuild): nothing is loaded, misses are not
    /// remembered, and facts are recorded without status decisions (no announcements; see
    /// `Order::settle`).
    pub fn in_memory() -> Model {
        Model {
            complete: true,
            ..Model::default()
        }
    }

    /// Projects one event; returns the status changes it caused (possibly on several orders,
    /// when it released pending reports).
    pub async fn project(
        &mut self,
        loader: &mut dyn Loader,
        event: OrderEvent,
    ) -> Result<Vec<Announcement>, StoreError> {
        // Most events release nothing: the queue allocates only when one does.
        let mut queue = VecDeque::new();
        let mut next = Some(event);
        let mut announcements = Vec::new();
        while let Some(event) = next.take().or_else(|| queue.pop_front()) {
            match &event.kind {
                None => self.skipped += 1,
                Some(Kind::InternalIdMapped(pair)) => {
                    if pair.name.eq_ignore_ascii_case("RETAILSALES")
                        || pair.transaction.eq_ignore_ascii_case("RETAILSALES")
                    {
                        let (alias, order) = (pair.destination.clone(), pair.origin.clone());
                        self.learn_alias(loader, &alias, &order, &mut queue).await?;
                    }
                }
                Some(Kind::StatusReported(_)) => {
                    let refs = report_refs(&event);
                    match self.resolve(loader, refs.as_slice()).await? {
                        Some(order) => {
                            self.record(loader, &order, event, &mut queue, &mut announcements)
                                .await?;
                        }
                        None => self.park(loader, event).await?,
                    }
                }
                Some(_) => {
                    let order = sale_of(&event);
                    if order.is_empty() {
                        self.skipped += 1;
                        continue;
                    }
                    self.record(loader, &order, event, &mut queue, &mut announcements)
                        .await?;
                }
            }
        }
        Ok(announcements)
    }

    async fn record(
        &mut self,
        loader: &mut dyn Loader,
        order_id: &str,
        event: OrderEvent,
        queue: &mut VecDeque<OrderEvent>,
        announcements: &mut Vec<Announcement>,
    ) -> Result<(), StoreError> {
        let learned = aliases_of(&event, order_id);
        let created = self.order(loader, order_id).await?.is_none();
        if created {
            self.orders
                .insert(order_id.to_owned(), Some(Order::new(order_id)));
        }
        let Some(Some(order)) = self.orders.get_mut(order_id) else {
            return Ok(());
        };
        if self.complete {
            // A rebuild: the facts are all it keeps and it announces nothing; the statuses follow
            // from the facts at the end (`Order::settle`), so deciding each step is not needed.
            order.add_fact(&event);
        } else {
            match order.record(event) {
                Ok((recorded, changes)) => {
                    if recorded {
                        self.dirty_orders.insert(order_id.to_owned());
                    }
                    announcements.extend(changes.into_iter().filter_map(|change| match change {
                        OrderChange::StatusChanged {
                            flow,
                            from,
                            to,
                            at,
                            event_id,
                        } => Some(Announcement {
                            order_id: order_id.to_owned(),
                            flow,
                            from,
                            to,
                            at,
                            event_id,
                        }),
                        _ => None,
                    }));
                }
                Err(OrderError::UnknownKind { .. }) => self.skipped += 1,
            }
        }
        if created {
            self.release(loader, order_id, queue).await?;
        }
        for alias in learned {
            self.learn_alias(loader, &alias, order_id, queue).await?;
        }
        Ok(())
    }

    async fn order(
        &mut self,
        loader: &mut dyn Loader,
        id: &str,
    ) -> Result<Option<&Order>, StoreError> {
        if !self.complete && !self.orders.contains_key(id) {
            let loaded = loader.order(id).await?;
            self.orders.insert(id.to_owned(), loaded);
        }
        Ok(self.orders.get(id).and_then(Option::as_ref))
    }

    async fn alias(
        &mut self,
        loader: &mut dyn Loader,
        alias: &str,
    ) -> Result<Option<String>, StoreError> {
        if !self.complete && !self.aliases.contains_key(alias) {
            let loaded = loader.alias(alias).await?;
            self.aliases.insert(alias.to_owned(), loaded);
        }
        Ok(self.aliases.get(alias).cloned().flatten())
    }

    /// The order a report's references name: an order id first, then an alias.
    async fn resolve(
        &mut self,
        loader: &mut dyn Loader,
        refs: &[&str],
    ) -> Result<Option<String>, StoreError> {
        for reference in refs.iter().copied() {
            if self.order(loader, reference).await?.is_some() {
                return Ok(Some(reference.to_owned()));
            }
            if let Some(order) = self.alias(loader, reference).await? {
                return Ok(Some(order));
            }
        }
        Ok(None)
    }

    async fn learn_alias(
        &mut self,
        loader: &mut dyn Loader,
        alias: &str,
        order_id: &str,
        queue: &mut VecDeque<OrderEvent>,
    ) -> Result<(), StoreError> {
        if alias.is_empty() || alias == order_id {
            return Ok(());
        }
        match self.alias(loader, alias).await? {
            Some(existing) if existing == order_id => return Ok(()),
            Some(existing) => {
                tracing::warn!(
                    alias,
                    order = existing,
                    other = order_id,
                    "An id already names another order; the first mapping is kept."
                );
                return Ok(());
            }
            None => {}
        }
        self.aliases
            .insert(alias.to_owned(), Some(order_id.to_owned()));
        self.new_aliases
            .insert(alias.to_owned(), order_id.to_owned());
        self.release(loader, alias, queue).await
    }

    /// Queues the reports pending under `reference`, and forgets them as pending.
    async fn release(
        &mut self,
        loader: &mut dyn Loader,
        reference: &str,
        queue: &mut VecDeque<OrderEvent>,
    ) -> Result<(), StoreError> {
        self.load_pending(loader, reference).await?;
        let released = self.pending_by_ref.remove(reference).unwrap_or_default();
        for id in released {
            if let Some(event) = self.pending.remove(&id) {
                for other in report_refs(&event).as_slice() {
                    if let Some(ids) = self.pending_by_ref.get_mut(*other) {
                        ids.remove(&id);
                    }
                }
                if !self.added_pending.remove(&id) {
                    self.removed_pending.insert(id);
                }
                queue.push_back(event);
            }
        }
        Ok(())
    }

    async fn load_pending(
        &mut self,
        loader: &mut dyn Loader,
        reference: &str,
    ) -> Result<(), StoreError> {
        if !self.complete && self.pending_loaded.insert(reference.to_owned()) {
            for event in loader.pending(reference).await? {
                if !self.removed_pending.contains(&event.event_id) {
                    self.hold(event);
                }
            }
        }
        Ok(())
    }

    async fn park(&mut self, loader: &mut dyn Loader, event: OrderEvent) -> Result<(), StoreError> {
        for reference in report_refs(&event).as_slice() {
            self.load_pending(loader, reference).await?;
        }
        if self.pending.contains_key(&event.event_id) {
            return Ok(());
        }
        self.removed_pending.remove(&event.event_id);
        self.added_pending.insert(event.event_id.clone());
        self.hold(event);
        Ok(())
    }

    fn hold(&mut self, event: OrderEvent) {
        if self.pending.contains_key(&event.event_id) {
            return;
        }
        for reference in report_refs(&event).as_slice() {
            self.pending_by_ref
                .entry((*reference).to_owned())
                .or_default()
                .insert(event.event_id.clone());
        }
        self.pending.insert(event.event_id.clone(), event);
    }

    /// What changed since the last call, and forgets it (the working set stays).
    pub fn take_changes(&mut self) -> Changes {
        let orders = std::mem::take(&mut self.dirty_orders)
            .into_iter()
            .filter_map(|id| self.orders.get(&id).cloned().flatten())
            .collect();
        let aliases = std::mem::take(&mut self.new_aliases).into_iter().collect();
        let added_pending = std::mem::take(&mut self.added_pending)
            .into_iter()
            .filter_map(|id| self.pending.get(&id).cloned())
            .flat_map(|event| {
                references(&event)
                    .into_iter()
                    .map(move |r| (r, event.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let removed_pending = std::mem::take(&mut self.removed_pending)
            .into_iter()
            .collect();
        Changes {
            orders,
            aliases,
            added_pending,
            removed_pending,
        }
    }

    /// Everything held, sorted: the whole read model after a rebuild (whose orders keep their
    /// facts encoded until `Order::unpack`).
    pub fn into_contents(self) -> Contents {
        let mut orders: Vec<Order> = self.orders.into_values().flatten().collect();
        orders.sort_by(|a, b| a.id.cmp(&b.id));
        let mut aliases: Vec<(String, String)> = self
            .aliases
            .into_iter()
            .filter_map(|(a, o)| o.map(|o| (a, o)))
            .collect();
        aliases.sort();
        let pending = self
            .pending
            .into_values()
            .flat_map(|event| {
                references(&event)
                    .into_iter()
                    .map(move |r| (r, event.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        Contents {
            orders,
            aliases,
            pending,
        }
    }

    pub fn order_count(&self) -> usize {
        self.orders.values().filter(|o| o.is_some()).count()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

/// A whole read model in memory.
#[derive(Debug, Default)]
pub struct Contents {
    pub orders: Vec<Order>,
    pub aliases: Vec<(String, String)>,
    pub pending: Vec<(String, OrderEvent)>,
}

/// The order a sale fact names.
fn sale_of(event: &OrderEvent) -> String {
    let id = match &event.kind {
        Some(Kind::SaleReceived(e)) => &e.sale_id,
        Some(Kind::CustomerLinked(e)) => &e.sale_id,
        Some(Kind::ReservationMade(e)) => &e.sale_id,
        Some(Kind::SaleIntegrated(e)) => &e.sale_id,
        Some(Kind::CancellationRequested(e)) => &e.sale_id,
        Some(Kind::CancellationConfirmed(e)) => &e.sale_id,
        Some(Kind::CancellationRefused(e)) => &e.sale_id,
        _ => &event.order_key,
    };
    if id.is_empty() {
        event.order_key.clone()
    } else {
        id.clone()
    }
}

/// The ids a report names its order by: the sale reference, then the order's InternalId.
pub fn references(event: &OrderEvent) -> Vec<String> {
    report_refs(event)
        .as_slice()
        .iter()
        .map(|r| (*r).to_owned())
        .collect()
}

/// [`references`], borrowed from the event (at most two, without allocating).
#[derive(Clone, Copy, Default)]
struct Refs<'a> {
    ids: [&'a str; 2],
    len: usize,
}

impl<'a> Refs<'a> {
    fn as_slice(&self) -> &[&'a str] {
        &self.ids[..self.len]
    }
}

fn report_refs(event: &OrderEvent) -> Refs<'_> {
    let mut refs = Refs::default();
    if let Some(Kind::StatusReported(report)) = &event.kind {
        for r in [&report.sale_ref, &report.order_internal_id] {
            let r = r.trim();
            if !r.is_empty() && !refs.as_slice().contains(&r) {
                refs.ids[refs.len] = r;
                refs.len += 1;
            }
        }
    }
    refs
}

/// The ids an event teaches for its order.
fn aliases_of(event: &OrderEvent, order_id: &str) -> Vec<String> {
    let ids = match &event.kind {
        Some(Kind::SaleIntegrated(e)) => Refs {
            ids: [&e.protheus_sale_id, ""],
            len: 1,
        },
        _ => report_refs(event),
    };
    ids.as_slice()
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty() && *i != order_id)
        .map(str::to_owned)
        .collect()
}
