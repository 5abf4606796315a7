//! The order aggregate, given/when/then: given the facts recorded, when one more arrives, then
//! these changes — for every transition of every flow, duplicates, late reports, cancellations
//! before and after invoicing, and unknown status texts.

mod order_support;

use eaibus::order::aggregate::{Effect, Order, OrderChange, OrderCommand};
use eaibus::order::events::OrderEvent;
use eaibus::order::status::{Flow, Status};
use order_support::*;

const ID: &str = "OMNI-1";

struct Given(Order);

fn given(facts: impl IntoIterator<Item = OrderEvent>) -> Given {
    let mut order = Order::new(ID);
    for fact in facts {
        order.record(fact).expect("a given fact is recorded");
    }
    Given(order)
}

struct Then {
    order: Order,
    changes: Vec<OrderChange>,
}

impl Given {
    fn when(mut self, fact: OrderEvent) -> Then {
        let changes = self
            .0
            .handle(OrderCommand::Record(fact))
            .expect("the fact is handled");
        for change in &changes {
            self.0.apply(change.clone());
        }
        Then {
            order: self.0,
            changes,
        }
    }
}

impl Then {
    /// The status changes, as (flow, from, to).
    fn moves(&self) -> Vec<(Flow, Option<Status>, Status)> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                OrderChange::StatusChanged { flow, from, to, .. } => {
                    Some((*flow, from.clone(), to.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn then_moves(self, flow: Flow, from: Status, to: Status) -> Then {
        assert_eq!(
            self.moves(),
            vec![(flow, Some(from), to.clone())],
            "{:#?}",
            self.changes
        );
        assert_eq!(self.order.derive().parts[&flow].status, to);
        self
    }

    fn then_stays(self, flow: Flow, status: Status) -> Then {
        assert!(self.moves().is_empty(), "{:#?}", self.changes);
        assert_eq!(self.order.current()[&flow], status);
        assert_eq!(self.order.derive().parts[&flow].status, status);
        self
    }

    /// The effect of the last history line of the newest fact.
    fn then_history_says(self, effect: Effect) -> Then {
        let derived = self.order.derive();
        let id = match &self.changes.first() {
            Some(OrderChange::FactRecorded(e)) => e.event_id.clone(),
            other => panic!("no fact recorded: {other:?}"),
        };
        let line = derived
            .history
            .iter()
            .rev()
            .find(|h| h.event_id == id)
            .expect("a history line for the fact");
        assert_eq!(line.effect, effect, "{line:#?}");
        self
    }
}

fn t(n: i64) -> i64 {
    T0 + n * MIN
}

// -- Entrega (3, 4, 5) ---------------------------------------------------------------------

#[test]
fn a_sale_is_received_in_every_part_it_has() {
    let then = given([]).when(sale(ID, &["3", "1", "2"], t(0)));
    let mut moves = then.moves();
    moves.sort_by_key(|m| m.0);
    assert_eq!(
        moves,
        vec![
            (Flow::Entrega, None, Status::Recebido),
            (Flow::RetiraPosterior, None, Status::Recebido),
            (Flow::Retira, None, Status::Recebido),
        ]
    );
}

#[test]
fn entrega_integrado() {
    given([sale(ID, &["3"], t(0))])
        .when(integrated(ID, t(1)))
        .then_moves(Flow::Entrega, Status::Recebido, Status::Integrado);
}

#[test]
fn delivery_types_4_and_5_follow_entrega() {
    for code in ["4", "5"] {
        let then = given([sale(ID, &[code], t(0))]).when(integrated(ID, t(1)));
        assert_eq!(
            then.moves(),
            vec![(Flow::Entrega, Some(Status::Recebido), Status::Integrado)]
        );
    }
}

#[test]
fn entrega_pedido_liberado() {
    given([sale(ID, &["3"], t(0)), integrated(ID, t(1))])
        .when(report(ID, false, "Pedido Liberado", 1, t(2)))
        .then_moves(Flow::Entrega, Status::Integrado, Status::PedidoLiberado)
        .then_history_says(Effect::Applied);
}

#[test]
fn entrega_pedido_bloqueado_then_released() {
    let blocked = given([sale(ID, &["3"], t(0)), integrated(ID, t(1))])
        .when(report(ID, false, "Pedido bloqueado", 1, t(2)))
        .then_moves(Flow::Entrega, Status::Integrado, Status::PedidoBloqueado);
    Given(blocked.order)
        .when(report(ID, false, "Pedido liberado", 2, t(3)))
        .then_moves(
            Flow::Entrega,
            Status::PedidoBloqueado,
            Status::PedidoLiberado,
        );
}

#[test]
fn entrega_faturado_empacotado_enviado_entregue() {
    let base = [
        sale(ID, &["3"], t(0)),
        integrated(ID, t(1)),
        report(ID, false, "Pedido liberado", 1, t(2)),
    ];
    let then = given(base.clone())
        .when(report_with(
            ID,
            false,
            "FATURADO",
            2,
            t(3),
            vec![invoice(ID, "")],
        ))
        .then_moves(Flow::Entrega, Status::PedidoLiberado, Status::Faturado);
    let then = Given(then.order)
        .when(report_with(
            ID,
            false,
            "Empacotado ",
            3,
            t(4),
            vec![invoice(ID, "31240517745613000150650010000124101201241070")],
        ))
        .then_moves(Flow::Entrega, Status::Faturado, Status::Empacotado);
    let invoices = then.order.derive().invoices;
    assert_eq!(invoices.len(), 1, "one invoice, updated");
    assert_eq!(invoices[0].status_text, "Transmitida");
    assert_eq!(invoices[0].access_key.len(), 44);
    let then = Given(then.order)
        .when(report(ID, false, "Enviado", 4, t(5)))
        .then_moves(Flow::Entrega, Status::Empacotado, Status::Enviado);
    Given(then.order)
        .when(report(ID, false, "Entregue", 5, t(6)))
        .then_moves(Flow::Entrega, Status::Enviado, Status::Entregue);
}

#[test]
fn nota_transmitida_means_empacotado() {
    given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Faturado", 1, t(1)),
    ])
    .when(report(ID, false, "Nota Transmitida", 2, t(2)))
    .then_moves(Flow::Entrega, Status::Faturado, Status::Empacotado);
}

// -- Retira posterior (1) ------------------------------------------------------------------

#[test]
fn retira_posterior_aberto_empacotado_entregue() {
    let then = given([sale(ID, &["1"], t(0)), integrated(ID, t(1))])
        .when(report(ID, true, "Aberto", 1, t(2)))
        .then_moves(Flow::RetiraPosterior, Status::Integrado, Status::Aberto);
    let then = Given(then.order)
        .when(report(ID, true, "Empacotado", 2, t(3)))
        .then_moves(Flow::RetiraPosterior, Status::Aberto, Status::Empacotado);
    Given(then.order)
        .when(report(ID, true, "Entregue", 3, t(4)))
        .then_moves(Flow::RetiraPosterior, Status::Empacotado, Status::Entregue);
}

#[test]
fn retira_posterior_has_no_faturado() {
    given([sale(ID, &["1"], t(0)), integrated(ID, t(1))])
        .when(report(ID, true, "Faturado", 1, t(2)))
        .then_stays(Flow::RetiraPosterior, Status::Integrado)
        .then_history_says(Effect::OutOfFlow);
}

// -- Retira (2) ----------------------------------------------------------------------------

#[test]
fn retira_is_delivered_when_integrated() {
    let then = given([sale(ID, &["2"], t(0))]).when(integrated(ID, t(1)));
    assert_eq!(
        then.moves(),
        vec![(Flow::Retira, Some(Status::Recebido), Status::Entregue)]
    );
    let history: Vec<_> = then
        .order
        .derive()
        .history
        .iter()
        .map(|h| (h.status.clone(), h.effect))
        .collect();
    assert_eq!(
        history,
        vec![
            (Some(Status::Recebido), Effect::Applied),
            (Some(Status::Integrado), Effect::Applied),
            (Some(Status::Entregue), Effect::Applied),
        ]
    );
}

#[test]
fn a_sale_without_delivery_type_is_retira() {
    let then = given([]).when(sale(ID, &[""], t(0)));
    assert_eq!(then.moves(), vec![(Flow::Retira, None, Status::Recebido)]);
}

// -- Cancellation --------------------------------------------------------------------------

#[test]
fn cancellation_request_changes_no_status() {
    let then = given([sale(ID, &["3"], t(0)), integrated(ID, t(1))])
        .when(cancel_requested(ID, t(2)))
        .then_stays(Flow::Entrega, Status::Integrado)
        .then_history_says(Effect::Note);
    assert!(matches!(
        then.order.derive().cancellation,
        Some(eaibus::order::aggregate::Cancellation::Requested { .. })
    ));
}

#[test]
fn cancelled_before_invoicing_from_every_state() {
    for (flow, types, retail, texts) in [
        (
            Flow::Entrega,
            ["3"],
            false,
            vec!["Pedido liberado", "Pedido bloqueado"],
        ),
        (
            Flow::RetiraPosterior,
            ["1"],
            true,
            vec!["Aberto", "Empacotado"],
        ),
    ] {
        // From Recebido and Integrado.
        given([sale(ID, &types, t(0))])
            .when(cancel_confirmed(ID, t(1)))
            .then_moves(flow, Status::Recebido, Status::Cancelado);
        given([sale(ID, &types, t(0)), integrated(ID, t(1))])
            .when(cancel_confirmed(ID, t(2)))
            .then_moves(flow, Status::Integrado, Status::Cancelado);
        for text in texts {
            let status = Status::normalise(text);
            given([
                sale(ID, &types, t(0)),
                integrated(ID, t(1)),
                report(ID, retail, text, 1, t(2)),
                cancel_requested(ID, t(3)),
            ])
            .when(cancel_confirmed(ID, t(4)))
            .then_moves(flow, status, Status::Cancelado);
        }
    }
}

#[test]
fn a_cancellation_after_faturado_is_refused() {
    let then = given([
        sale(ID, &["3"], t(0)),
        integrated(ID, t(1)),
        report(ID, false, "Faturado", 1, t(2)),
    ])
    .when(cancel_confirmed(ID, t(3)))
    .then_stays(Flow::Entrega, Status::Faturado)
    .then_history_says(Effect::Refused);
    assert!(then.changes.iter().any(|c| matches!(
        c,
        OrderChange::CancellationRefused {
            flow: Flow::Entrega,
            status: Status::Faturado,
            ..
        }
    )));
    // The same for a report saying Cancelado, and after Empacotado.
    given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Faturado", 1, t(1)),
        report(ID, false, "Empacotado", 2, t(2)),
    ])
    .when(report(ID, false, "Cancelado", 3, t(3)))
    .then_stays(Flow::Entrega, Status::Empacotado)
    .then_history_says(Effect::Refused);
}

#[test]
fn a_pickup_cancellation_after_entregue_is_refused() {
    given([
        sale(ID, &["1"], t(0)),
        report(ID, true, "Entregue", 1, t(1)),
    ])
    .when(report(ID, true, "Cancelado", 2, t(2)))
    .then_stays(Flow::RetiraPosterior, Status::Entregue)
    .then_history_says(Effect::Refused);
}

#[test]
fn protheus_refusing_a_cancellation_is_a_note() {
    let then = given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Faturado", 1, t(1)),
        cancel_requested(ID, t(2)),
    ])
    .when(cancel_refused(ID, t(3)))
    .then_stays(Flow::Entrega, Status::Faturado)
    .then_history_says(Effect::Note);
    assert!(matches!(
        then.order.derive().cancellation,
        Some(eaibus::order::aggregate::Cancellation::Refused { ref reason, .. }) if reason.contains("faturado")
    ));
}

#[test]
fn a_retira_sale_can_be_cancelled_after_delivery() {
    given([sale(ID, &["2"], t(0)), integrated(ID, t(1))])
        .when(cancel_confirmed(ID, t(2)))
        .then_moves(Flow::Retira, Status::Entregue, Status::Cancelado);
}

// -- Duplicates, late reports, unknown texts ------------------------------------------------

#[test]
fn the_same_event_twice_changes_nothing() {
    let fact = report(ID, false, "Faturado", 1, t(2));
    let then = given([sale(ID, &["3"], t(0)), fact.clone()]).when(fact);
    assert!(then.changes.is_empty());
    assert_eq!(then.order.facts().len(), 2);
}

#[test]
fn a_repeated_report_is_kept_in_history_without_a_move() {
    given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Faturado", 1, t(2)),
    ])
    .when(report(ID, false, "faturado", 2, t(3)))
    .then_stays(Flow::Entrega, Status::Faturado)
    .then_history_says(Effect::Repeated);
}

#[test]
fn a_late_report_never_moves_back() {
    let then = given([
        sale(ID, &["3"], t(0)),
        integrated(ID, t(1)),
        report(ID, false, "Faturado", 2, t(3)),
    ])
    .when(report(ID, false, "Pedido liberado", 1, t(2)))
    .then_stays(Flow::Entrega, Status::Faturado)
    // It happened before Faturado: the history shows it where it happened.
    .then_history_says(Effect::Applied);
    // The full history is kept, in the order things happened.
    let texts: Vec<_> = then
        .order
        .derive()
        .history
        .iter()
        .map(|h| h.text.clone())
        .collect();
    assert_eq!(
        texts,
        ["Recebido", "Integrado", "Pedido liberado", "Faturado"]
    );
    // A lower status reported later than the current one is late too.
    given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Empacotado", 1, t(3)),
    ])
    .when(report(ID, false, "Faturado", 2, t(4)))
    .then_stays(Flow::Entrega, Status::Empacotado)
    .then_history_says(Effect::Late);
}

#[test]
fn an_unknown_text_is_an_explicit_state_and_a_known_one_ends_it() {
    let text = "Em separação no CD";
    let then = given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Faturado", 1, t(1)),
    ])
    .when(report(ID, false, text, 2, t(2)))
    .then_moves(
        Flow::Entrega,
        Status::Faturado,
        Status::Unknown(text.into()),
    );
    assert_eq!(
        then.order.derive().parts[&Flow::Entrega].status.text(),
        text
    );
    Given(then.order)
        .when(report(ID, false, "Empacotado", 3, t(3)))
        .then_moves(
            Flow::Entrega,
            Status::Unknown(text.into()),
            Status::Empacotado,
        );
}

#[test]
fn an_unknown_text_older_than_the_status_is_only_history() {
    // Arriving late, it takes its place in the history, and the status stays.
    given([
        sale(ID, &["3"], t(0)),
        report(ID, false, "Faturado", 1, t(5)),
    ])
    .when(report(ID, false, "Status indefinido: 42", 2, t(2)))
    .then_stays(Flow::Entrega, Status::Faturado)
    .then_history_says(Effect::Applied);
}

#[test]
fn an_order_known_only_by_its_response_follows_entrega() {
    let then = given([]).when(integrated(ID, t(1)));
    assert_eq!(then.moves(), vec![(Flow::Entrega, None, Status::Integrado)]);
    // A pickup report then places it in the pickup flow.
    let then = Given(then.order).when(report(ID, true, "Aberto", 1, t(2)));
    assert_eq!(
        then.moves(),
        vec![(Flow::RetiraPosterior, None, Status::Aberto)]
    );
}

// -- Facts recorded by a rebuild ------------------------------------------------------------

/// A rebuild records facts encoded and unpacks them once: the order holds what recording them
/// one by one holds, and the stored form is the recorded bytes only when they are that already.
#[test]
fn facts_recorded_by_a_rebuild_unpack_to_what_recording_them_gives() {
    use prost::Message as _;
    let in_order = [
        sale(ID, &["3"], t(0)),
        integrated(ID, t(1)),
        report(ID, false, "Faturado", 1, t(2)),
    ];
    let stored = |order: &Order| {
        eaibus::order::events::OrderFacts {
            facts: order.facts().to_vec(),
        }
        .encode_to_vec()
    };

    let mut rebuilt = Order::new(ID);
    for fact in &in_order {
        rebuilt.add_fact(fact);
    }
    let bytes = rebuilt.unpack().expect("decodes");
    assert_eq!(rebuilt.facts(), given(in_order.clone()).0.facts());
    assert_eq!(bytes, Some(stored(&rebuilt)));

    // Out of order and twice: the same facts, and the stored form is made again.
    let mixed = [
        in_order[2].clone(),
        in_order[0].clone(),
        in_order[2].clone(),
        in_order[1].clone(),
    ];
    let mut rebuilt = Order::new(ID);
    for fact in &mixed {
        rebuilt.add_fact(fact);
    }
    assert_eq!(rebuilt.unpack().expect("decodes"), None);
    assert_eq!(rebuilt.facts(), given(mixed).0.facts());
}
