//! The digest of a read model: SHA-256 (hex) over a canonical text of it — one line per order
//! with its stored columns (the JSON columns as stored, so nothing is parsed or rebuilt to hash
//! it), then one per alias and one per pending report, each kind sorted by its key in byte
//! order, fields separated by a unit separator. A rebuild hashes the lines as it writes them;
//! the store hashes what it reads back.

use sha2::{Digest as _, Sha256};

use super::line::OrderLine;

/// Hashes the lines of a read model fed in canonical order: orders by id, then aliases, then
/// pending reports, each sorted.
pub struct DigestBuilder(Sha256);

impl Default for DigestBuilder {
    fn default() -> Self {
        DigestBuilder(Sha256::new())
    }
}

impl DigestBuilder {
    fn line(&mut self, table: &str, fields: &[&[u8]]) {
        self.0.update(table.as_bytes());
        for field in fields {
            self.0.update(b"\x1f");
            self.0.update(field);
        }
        self.0.update(b"\n");
    }

    pub fn order(&mut self, o: &OrderLine) {
        let updated_at = o.updated_at.to_string();
        self.line(
            "order",
            &[
                o.order_id.as_bytes(),
                o.status.as_bytes(),
                o.status_text.as_bytes(),
                o.customer_id.as_bytes(),
                o.ecommerce_order.as_bytes(),
                o.company_id.as_bytes(),
                o.branch_id.as_bytes(),
                o.cancellation.as_bytes(),
                o.reservations.as_bytes(),
                updated_at.as_bytes(),
                o.parts.as_bytes(),
                o.history.as_bytes(),
                o.invoices.as_bytes(),
            ],
        );
    }

    pub fn alias(&mut self, alias: &str, order_id: &str) {
        self.line("alias", &[alias.as_bytes(), order_id.as_bytes()]);
    }

    pub fn pending(&mut self, reference: &str, event_id: &str) {
        self.line("pending", &[reference.as_bytes(), event_id.as_bytes()]);
    }

    pub fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Every line of a read model, in any order, for its digest.
#[derive(Debug, Default)]
pub struct Dump {
    pub orders: Vec<OrderLine>,
    pub aliases: Vec<(String, String)>,
    /// (reference, event id)
    pub pending: Vec<(String, String)>,
}

impl Dump {
    /// Sorts the lines and hashes them (see the module notes).
    pub fn digest(mut self) -> String {
        self.orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        self.aliases.sort();
        self.pending.sort();
        let mut digest = DigestBuilder::default();
        for order in &self.orders {
            digest.order(order);
        }
        for (alias, order) in &self.aliases {
            digest.alias(alias, order);
        }
        for (reference, event) in &self.pending {
            digest.pending(reference, event);
        }
        digest.finish()
    }
}
