//! Order statuses: the texts Protheus writes, normalised (eai-protocol.md §8.4, §8.5, §9), and the
//! flow each delivery type follows.
//!
//! | flow | ItemDeliveryType | sequence |
//! |---|---|---|
//! | Entrega | 3, 4, 5 | Recebido → Integrado → Pedido liberado \| Pedido bloqueado → Faturado → Empacotado → (Enviado →) Entregue |
//! | Retira posterior | 1 | Recebido → Integrado → Aberto → Empacotado → Entregue |
//! | Retira | 2 | Recebido → Integrado → Entregue |
//!
//! Cancelado is reachable from every state before invoicing (Faturado for Entrega, Entregue —
//! the fiscal document — for Retira posterior); a cancellation after that is refused (§8.6).
//! A Retira sale is invoiced at once and Protheus itself decides whether its fiscal document may
//! still be cancelled, so a confirmed cancellation wins there. Devolvido (C5_STATUS 91) follows
//! invoicing.
//!
//! Each flow ranks its statuses; a report moves an order only forward in rank, and between two
//! statuses of one rank (Pedido liberado / Pedido bloqueado) the later report wins. That makes
//! the status of an order a function of the *set* of its reports, whatever order they arrive in.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::events::{DeliveryType, OrderStatus, TraceSource};

/// A normalised status. `Unknown` keeps the text as reported.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    Recebido,
    Integrado,
    PedidoLiberado,
    PedidoBloqueado,
    Aberto,
    Faturado,
    Empacotado,
    Enviado,
    Entregue,
    Cancelado,
    Devolvido,
    /// A text the alias table does not know (or an empty one), kept as sent.
    Unknown(String),
}

/// Normalised text (lower case, no accents, single spaces) → status.
const ALIASES: &[(&str, Status)] = &[
    ("recebido", Status::Recebido),
    ("pedido recebido", Status::Recebido),
    ("integrado", Status::Integrado),
    ("venda integrada", Status::Integrado),
    // C5_STATUS 00: the order was generated from the sale (§8.4).
    ("gerado", Status::Integrado),
    ("pedido gerado", Status::Integrado),
    ("pedido liberado", Status::PedidoLiberado),
    ("liberado", Status::PedidoLiberado),
    ("pedido bloqueado", Status::PedidoBloqueado),
    ("bloqueado", Status::PedidoBloqueado),
    ("pedido bloqueado por regra", Status::PedidoBloqueado),
    ("pedido bloqueado por verba", Status::PedidoBloqueado),
    ("pedido bloqueado por credito", Status::PedidoBloqueado),
    ("bloqueado por credito", Status::PedidoBloqueado),
    ("aberto", Status::Aberto),
    ("em aberto", Status::Aberto),
    ("pedido em aberto", Status::Aberto),
    ("faturado", Status::Faturado),
    ("pedido faturado", Status::Faturado),
    ("empacotado", Status::Empacotado),
    ("pedido empacotado", Status::Empacotado),
    // C5_STATUS 15 is set when the NF-e is transmitted (§8.4, MATI461EAI).
    ("nota transmitida", Status::Empacotado),
    ("nf-e transmitida", Status::Empacotado),
    ("enviado", Status::Enviado),
    ("pedido enviado", Status::Enviado),
    ("entregue", Status::Entregue),
    ("pedido entregue", Status::Entregue),
    ("cancelado", Status::Cancelado),
    ("cancelada", Status::Cancelado),
    ("pedido cancelado", Status::Cancelado),
    ("venda cancelada", Status::Cancelado),
    ("devolvido", Status::Devolvido),
    ("pedido devolvido", Status::Devolvido),
];

/// C5_STATUS codes (§8.4), for a sender that writes the code instead of its text.
const CODES: &[(&str, Status)] = &[
    ("00", Status::Integrado),
    ("01", Status::PedidoLiberado),
    ("09", Status::PedidoBloqueado),
    ("11", Status::Faturado),
    ("15", Status::Empacotado),
    ("30", Status::Enviado),
    ("31", Status::Entregue),
    ("90", Status::Cancelado),
    ("91", Status::Devolvido),
];

impl Status {
    /// The status a reported text means: case, accents, surrounding and repeated spaces and a
    /// final period do not matter; C5_STATUS codes are understood; anything else is `Unknown`
    /// with the text as sent (trimmed).
    pub fn normalise(text: &str) -> Status {
        let folded = fold(text);
        if let Some((_, s)) = ALIASES.iter().find(|(alias, _)| *alias == folded) {
            return s.clone();
        }
        if let Some((_, s)) = CODES.iter().find(|(code, _)| *code == folded) {
            return s.clone();
        }
        Status::Unknown(text.trim().to_owned())
    }

    /// The canonical pt-BR text, as Protheus writes it.
    pub fn text(&self) -> &str {
        match self {
            Status::Unknown(text) => text,
            known => known.known_text(),
        }
    }

    /// The canonical text of a known status; empty for `Unknown`.
    pub fn known_text(&self) -> &'static str {
        match self {
            Status::Unknown(_) => "",
            Status::Recebido => "Recebido",
            Status::Integrado => "Integrado",
            Status::PedidoLiberado => "Pedido liberado",
            Status::PedidoBloqueado => "Pedido bloqueado",
            Status::Aberto => "Aberto",
            Status::Faturado => "Faturado",
            Status::Empacotado => "Empacotado",
            Status::Enviado => "Enviado",
            Status::Entregue => "Entregue",
            Status::Cancelado => "Cancelado",
            Status::Devolvido => "Devolvido",
        }
    }

    /// A stable code for storage and APIs (`FATURADO`, `UNKNOWN_STATUS`).
    pub fn code(&self) -> &'static str {
        match self {
            Status::Recebido => "RECEBIDO",
            Status::Integrado => "INTEGRADO",
            Status::PedidoLiberado => "PEDIDO_LIBERADO",
            Status::PedidoBloqueado => "PEDIDO_BLOQUEADO",
            Status::Aberto => "ABERTO",
            Status::Faturado => "FATURADO",
            Status::Empacotado => "EMPACOTADO",
            Status::Enviado => "ENVIADO",
            Status::Entregue => "ENTREGUE",
            Status::Cancelado => "CANCELADO",
            Status::Devolvido => "DEVOLVIDO",
            Status::Unknown(_) => "UNKNOWN_STATUS",
        }
    }

    /// The inverse of [`Status::code`] (+ the text for `UNKNOWN_STATUS`).
    pub fn from_code(code: &str, text: &str) -> Status {
        match code {
            "RECEBIDO" => Status::Recebido,
            "INTEGRADO" => Status::Integrado,
            "PEDIDO_LIBERADO" => Status::PedidoLiberado,
            "PEDIDO_BLOQUEADO" => Status::PedidoBloqueado,
            "ABERTO" => Status::Aberto,
            "FATURADO" => Status::Faturado,
            "EMPACOTADO" => Status::Empacotado,
            "ENVIADO" => Status::Enviado,
            "ENTREGUE" => Status::Entregue,
            "CANCELADO" => Status::Cancelado,
            "DEVOLVIDO" => Status::Devolvido,
            _ => Status::Unknown(text.to_owned()),
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Status::Unknown(_))
    }

    pub fn to_proto(&self) -> OrderStatus {
        match self {
            Status::Recebido => OrderStatus::Recebido,
            Status::Integrado => OrderStatus::Integrado,
            Status::PedidoLiberado => OrderStatus::PedidoLiberado,
            Status::PedidoBloqueado => OrderStatus::PedidoBloqueado,
            Status::Aberto => OrderStatus::Aberto,
            Status::Faturado => OrderStatus::Faturado,
            Status::Empacotado => OrderStatus::Empacotado,
            Status::Enviado => OrderStatus::Enviado,
            Status::Entregue => OrderStatus::Entregue,
            Status::Cancelado => OrderStatus::Cancelado,
            Status::Devolvido => OrderStatus::Devolvido,
            Status::Unknown(_) => OrderStatus::UnknownStatus,
        }
    }

    /// A fixed order of the known statuses, the last tie-break between two reports of one rank
    /// and one instant.
    pub(crate) fn ordinal(&self) -> u8 {
        match self {
            Status::Recebido => 0,
            Status::Integrado => 1,
            Status::PedidoBloqueado => 2,
            Status::PedidoLiberado => 3,
            Status::Aberto => 4,
            Status::Faturado => 5,
            Status::Empacotado => 6,
            Status::Enviado => 7,
            Status::Entregue => 8,
            Status::Cancelado => 9,
            Status::Devolvido => 10,
            Status::Unknown(_) => 11,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Unknown(text) => write!(f, "UnknownStatus({text:?})"),
            known => f.write_str(known.text()),
        }
    }
}

/// Lower case, accents removed, runs of white space as one space, no surrounding space or final
/// period.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.trim().trim_end_matches('.').trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        for lower in c.to_lowercase() {
            out.push(match lower {
                'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                other => other,
            });
        }
    }
    out
}

/// The fulfilment flow of a part of a sale: one per family of delivery types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Flow {
    /// ItemDeliveryType 3, 4, 5: a sales order (SC5), DocumentTraceabilityOrder.
    Entrega,
    /// ItemDeliveryType 1: a pickup-later orçamento, DocumentTraceAbilityOrderRetail.
    RetiraPosterior,
    /// ItemDeliveryType 2: taken at once.
    Retira,
}

impl Flow {
    pub const ALL: [Flow; 3] = [Flow::Entrega, Flow::RetiraPosterior, Flow::Retira];

    pub fn of_delivery_type(delivery: DeliveryType) -> Flow {
        match delivery {
            DeliveryType::Entrega
            | DeliveryType::RetiraPosteriorComPedido
            | DeliveryType::PedidoSemReserva => Flow::Entrega,
            DeliveryType::RetiraPosterior => Flow::RetiraPosterior,
            DeliveryType::Retira | DeliveryType::Unspecified => Flow::Retira,
        }
    }

    /// The flow a traceability message reports on.
    pub fn of_source(source: TraceSource) -> Flow {
        match source {
            TraceSource::PickupOrcamento => Flow::RetiraPosterior,
            TraceSource::SalesOrder | TraceSource::Unspecified => Flow::Entrega,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Flow::Entrega => "ENTREGA",
            Flow::RetiraPosterior => "RETIRA_POSTERIOR",
            Flow::Retira => "RETIRA",
        }
    }

    pub fn from_code(code: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The rank of a known status in this flow; `None` when the flow has no such status.
    pub fn rank(self, status: &Status) -> Option<u8> {
        use Status::*;
        match (self, status) {
            (_, Recebido) => Some(0),
            (_, Integrado) => Some(1),
            (Flow::Entrega, PedidoLiberado | PedidoBloqueado | Aberto) => Some(2),
            (Flow::Entrega, Cancelado) => Some(3),
            (Flow::Entrega, Faturado) => Some(4),
            (Flow::Entrega, Empacotado) => Some(5),
            (Flow::Entrega, Enviado) => Some(6),
            (Flow::Entrega, Entregue) => Some(7),
            (Flow::Entrega, Devolvido) => Some(8),
            (Flow::RetiraPosterior, Aberto) => Some(2),
            (Flow::RetiraPosterior, Empacotado) => Some(3),
            (Flow::RetiraPosterior, Cancelado) => Some(4),
            (Flow::RetiraPosterior, Entregue) => Some(5),
            (Flow::RetiraPosterior, Devolvido) => Some(6),
            (Flow::Retira, Entregue) => Some(2),
            (Flow::Retira, Cancelado) => Some(3),
            (Flow::Retira, Devolvido) => Some(4),
            _ => None,
        }
    }

    /// True when a part at `status` has been invoiced, so a cancellation is refused (§8.6).
    pub fn is_invoiced(self, status: &Status) -> bool {
        let threshold = match self {
            Flow::Entrega => 4,
            Flow::RetiraPosterior => 5,
            Flow::Retira => return false,
        };
        self.rank(status)
            .is_some_and(|r| r >= threshold && *status != Status::Cancelado)
    }

    /// True when nothing more is expected of a part at `status`.
    pub fn is_final(self, status: &Status) -> bool {
        matches!(
            status,
            Status::Entregue | Status::Cancelado | Status::Devolvido
        )
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flow::Entrega => "Entrega",
            Flow::RetiraPosterior => "Retira posterior",
            Flow::Retira => "Retira",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_normalised() {
        for (text, status) in [
            ("Pedido Liberado", Status::PedidoLiberado),
            ("FATURADO", Status::Faturado),
            ("Empacotado ", Status::Empacotado),
            ("Nota Transmitida", Status::Empacotado),
            ("  pedido   bloqueado ", Status::PedidoBloqueado),
            ("Pedido bloqueado por crédito", Status::PedidoBloqueado),
            ("ENTREGUE.", Status::Entregue),
            ("Gerado", Status::Integrado),
            ("11", Status::Faturado),
            ("Cancelado", Status::Cancelado),
        ] {
            assert_eq!(Status::normalise(text), status, "{text:?}");
        }
        assert_eq!(
            Status::normalise(" Status indefinido: 42 "),
            Status::Unknown("Status indefinido: 42".into())
        );
    }

    #[test]
    fn cancellation_is_refused_once_invoiced() {
        assert!(!Flow::Entrega.is_invoiced(&Status::PedidoLiberado));
        assert!(Flow::Entrega.is_invoiced(&Status::Faturado));
        assert!(!Flow::RetiraPosterior.is_invoiced(&Status::Empacotado));
        assert!(Flow::RetiraPosterior.is_invoiced(&Status::Entregue));
        assert!(!Flow::Retira.is_invoiced(&Status::Entregue));
        assert_eq!(Flow::RetiraPosterior.rank(&Status::Faturado), None);
    }
}
