//! How events find their order: reports named by Protheus ids wait until the mapping arrives,
//! and the order's state does not depend on the order its events arrive in (proptest).
//!
//! Where the spec makes order matter, and what eaibus does (documented in `order::status` and
//! `order::aggregate`):
//! - two statuses of one rank (Pedido liberado / Pedido bloqueado): the later report (by its
//!   GeneratedOn) wins; at the very same instant a fixed order decides (liberado after bloqueado);
//! - a Faturado after a confirmed cancellation contradicts §8.6 (Protheus refuses to cancel an
//!   invoiced order): the invoice wins, the cancellation shows as refused in the history;
//! - one Protheus id mapped to two different OMNI orders: the first mapping is kept (logged).
//!
//! The property below avoids those (distinct times, consistent ids) and checks that everything
//! else — status, history, invoices, ids — is the same for every interleaving and duplication.

mod order_support;

use eaibus::order::aggregate::Derived;
use eaibus::order::events::OrderEvent;
use eaibus::order::model::{Complete, Model};
use eaibus::order::status::{Flow, Status};
use order_support::*;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

/// Projects events in the given order; returns the model.
fn project(events: &[OrderEvent]) -> Model {
    runtime().block_on(async {
        let mut model = Model::new();
        for event in events {
            model
                .project(&mut Complete, event.clone())
                .await
                .expect("in memory");
        }
        model
    })
}

fn derived(model: Model, order: &str) -> Option<Derived> {
    model
        .into_contents()
        .orders
        .into_iter()
        .find(|o| o.id == order)
        .map(|o| o.derive())
}

fn t(n: i64) -> i64 {
    T0 + n * MIN
}

#[test]
fn a_report_before_its_mapping_waits_and_then_applies() {
    let id = "OMNI-7";
    let mut events = vec![
        report(id, false, "Faturado", 1, t(3)),
        sale(id, &["3"], t(0)),
    ];
    let model = project(&events);
    assert_eq!(model.pending_count(), 1, "no mapping yet: the report waits");
    let d = derived(model, id).expect("the sale");
    assert_eq!(d.parts[&Flow::Entrega].status, Status::Recebido);

    events.push(integrated(id, t(1)));
    let model = project(&events);
    assert_eq!(model.pending_count(), 0);
    let d = derived(model, id).expect("the sale");
    assert_eq!(d.parts[&Flow::Entrega].status, Status::Faturado);
    assert!(d.ids().contains(&protheus_order_id(id, false)));
}

#[test]
fn a_mapping_from_the_response_pairs_releases_reports_too() {
    let id = "OMNI-8";
    let events = vec![
        report(id, true, "Aberto", 1, t(2)),
        sale(id, &["1"], t(0)),
        mapped(id, t(1)),
    ];
    let d = derived(project(&events), id).expect("the sale");
    assert_eq!(d.parts[&Flow::RetiraPosterior].status, Status::Aberto);
}

#[test]
fn a_report_naming_only_the_order_id_follows_an_earlier_report() {
    let id = "OMNI-9";
    let mut only_order = report(id, false, "Empacotado", 2, t(4));
    if let Some(eaibus::order::events::Kind::StatusReported(r)) = &mut only_order.kind {
        r.sale_ref.clear();
    }
    only_order.order_key = protheus_order_id(id, false);
    let events = vec![
        only_order,
        sale(id, &["3"], t(0)),
        report(id, false, "Faturado", 1, t(3)),
        integrated(id, t(1)),
    ];
    let d = derived(project(&events), id).expect("the sale");
    assert_eq!(d.parts[&Flow::Entrega].status, Status::Empacotado);
}

#[test]
fn a_report_keyed_by_the_omni_id_applies_at_once() {
    // The adapter's De/Para mapping turned RetailSalesInternalId into the OMNI id at ingest.
    let id = "OMNI-10";
    let mut r = report(id, false, "Pedido liberado", 1, t(2));
    if let Some(eaibus::order::events::Kind::StatusReported(s)) = &mut r.kind {
        s.sale_ref = id.to_owned();
    }
    r.order_key = id.to_owned();
    let model = project(&[sale(id, &["3"], t(0)), r]);
    assert_eq!(model.pending_count(), 0);
    let d = derived(model, id).expect("the sale");
    assert_eq!(d.parts[&Flow::Entrega].status, Status::PedidoLiberado);
}

#[test]
fn a_report_no_mapping_ever_names_stays_pending() {
    let model = project(&[report("GHOST", false, "Faturado", 1, t(1))]);
    assert_eq!(model.pending_count(), 1);
    assert_eq!(model.order_count(), 0);
}

/// One order's events, as a test case: the ordered sequence (by time) of a random story.
#[derive(Debug, Clone)]
struct Story {
    events: Vec<OrderEvent>,
}

fn story() -> impl Strategy<Value = Story> {
    (
        0usize..3,
        0usize..6,
        proptest::option::of(0usize..6),
        proptest::option::of(0usize..6),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 6),
    )
        .prop_map(
            |(flow, reports, unknown_at, cancel_at, with_integrated, with_mapped, order_only)| {
                let id = "OMNI-P";
                let (types, retail, chain): (&[&str], bool, &[&str]) = match flow {
                    0 => (
                        &["3"],
                        false,
                        &[
                            "Pedido bloqueado",
                            "Pedido liberado",
                            "Faturado",
                            "Empacotado",
                            "Enviado",
                            "Entregue",
                        ],
                    ),
                    1 => (&["1"], true, &["Aberto", "Empacotado", "Entregue"]),
                    _ => (
                        &["2", "3"],
                        false,
                        &["Pedido liberado", "Faturado", "Entregue"],
                    ),
                };
                let mut events = vec![sale(id, types, t(0))];
                if with_integrated || !with_mapped {
                    events.push(integrated(id, t(1)));
                }
                if with_mapped {
                    events.push(mapped(id, t(1) + 1));
                }
                let n = reports.min(chain.len());
                for (i, text) in chain.iter().take(n).enumerate() {
                    let mut r = report(id, retail, text, i, t(10 * (i as i64 + 1)));
                    // Some reports name only the order id (after the first, which links both).
                    if i > 0 && order_only[i] {
                        if let Some(eaibus::order::events::Kind::StatusReported(s)) = &mut r.kind {
                            s.sale_ref.clear();
                        }
                        r.order_key = protheus_order_id(id, retail);
                    }
                    if *text == "Faturado" {
                        r = {
                            let mut with = report_with(
                                id,
                                retail,
                                text,
                                i,
                                r.occurred_at_ms,
                                vec![invoice(id, "")],
                            );
                            with.order_key = r.order_key.clone();
                            with.kind = match (with.kind, &r.kind) {
                                (
                                    Some(eaibus::order::events::Kind::StatusReported(mut w)),
                                    Some(eaibus::order::events::Kind::StatusReported(o)),
                                ) => {
                                    w.sale_ref = o.sale_ref.clone();
                                    Some(eaibus::order::events::Kind::StatusReported(w))
                                }
                                (k, _) => k,
                            };
                            with
                        };
                    }
                    events.push(r);
                }
                if let Some(at) = unknown_at {
                    events.push(report(
                        id,
                        retail,
                        "Em separação",
                        90,
                        t(10 * at as i64 + 5),
                    ));
                }
                if let Some(at) = cancel_at {
                    events.push(cancel_requested(id, t(10 * at as i64 + 6)));
                    events.push(cancel_confirmed(id, t(10 * at as i64 + 7)));
                }
                events.sort_by_key(|e| (e.at(), e.event_id.clone()));
                Story { events }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any interleaving and duplication of one order's events, with the mappings they need,
    /// ends in the same state as the ordered sequence.
    #[test]
    fn any_interleaving_and_duplication_ends_in_the_same_state(
        (story, shuffled) in story().prop_flat_map(|s| {
            let events = s.events.clone();
            let len = events.len();
            (
                Just(s),
                (Just(events).prop_shuffle(), proptest::collection::vec(0..len, 0..len))
                    .prop_map(|(mut e, dups)| {
                        let copies: Vec<OrderEvent> = dups.iter().map(|i| e[*i].clone()).collect();
                        e.extend(copies);
                        e
                    })
                    .prop_shuffle(),
            )
        })
    ) {
        let ordered = project(&story.events);
        prop_assert_eq!(ordered.pending_count(), 0);
        let expected = derived(ordered, "OMNI-P").expect("the order");
        let model = project(&shuffled);
        prop_assert_eq!(model.pending_count(), 0, "every report found its order");
        let got = derived(model, "OMNI-P").expect("the order");
        prop_assert_eq!(&got.status, &expected.status);
        prop_assert_eq!(&got.parts, &expected.parts);
        prop_assert_eq!(got, expected);
    }
}
