//! The message list's WHERE clause, built from fixed fragments: input only ever travels as bind
//! parameters (`$n`, which both SQLite and PostgreSQL read as positional).

use std::fmt::Write;

use super::model::MessageFilter;

/// A bind value for a built query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The list query for `filter`: a WHERE clause over `monitor_messages m` (empty when nothing
/// filters) and its arguments, numbered from `$1`.
#[derive(Debug, Default)]
pub(crate) struct WhereClause {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl WhereClause {
    /// The next parameter's placeholder after pushing `arg`.
    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn and(&mut self, condition: &str) {
        self.sql.push_str(if self.sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        self.sql.push_str(condition);
    }

    pub fn for_filter(filter: &MessageFilter) -> WhereClause {
        let mut clause = WhereClause::default();
        if let Some(situation) = filter.situation {
            let p = clause.bind(Arg::Text(situation.code().to_owned()));
            clause.and(&format!("m.situation = {p}"));
        }
        if let Some(transaction) = non_empty(&filter.transaction) {
            let p = clause.bind(Arg::Text(transaction.to_owned()));
            clause.and(&format!("m.transaction_name = {p}"));
        }
        if let Some(direction) = filter.direction {
            let p = clause.bind(Arg::Text(direction.code().to_owned()));
            clause.and(&format!("m.direction = {p}"));
        }
        if let Some(from) = filter.from {
            let p = clause.bind(Arg::Int(from));
            clause.and(&format!("m.received_at >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = clause.bind(Arg::Int(to));
            clause.and(&format!("m.received_at < {p}"));
        }
        if let Some(route) = non_empty(&filter.route) {
            let p = clause.bind(Arg::Text(route.to_owned()));
            clause.and(&format!(
                "EXISTS (SELECT 1 FROM monitor_deliveries d \
                 WHERE d.message_uuid = m.uuid AND d.route = {p})"
            ));
        }
        if let Some(resolved) = filter.resolved {
            // A resolution holds until the message is reprocessed (see `resolution.rs`).
            let holds = "EXISTS (SELECT 1 FROM monitor_resolutions r WHERE r.message_uuid = m.uuid \
                         AND r.repeated_failures = m.repeated_failures)";
            if resolved {
                clause.and(holds);
            } else {
                clause.and(&format!("NOT {holds}"));
            }
        }
        let terms: Vec<&str> = filter
            .search
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if !terms.is_empty() {
            let mut any = String::from("(");
            for (i, term) in terms.into_iter().enumerate() {
                // A prefix test by substr/length needs no LIKE escaping. UUIDs are hex, so their
                // case is ignored (lower() folds ASCII alike on both databases); business keys
                // match with their case, since the databases fold other letters differently.
                let uuid = clause.bind(Arg::Text(term.to_ascii_lowercase()));
                let key = clause.bind(Arg::Text(term.to_owned()));
                if i > 0 {
                    any.push_str(" OR ");
                }
                let _ = write!(
                    any,
                    "lower(substr(m.uuid, 1, length({uuid}))) = {uuid} \
                     OR substr(m.business_key, 1, length({key})) = {key}"
                );
            }
            any.push(')');
            clause.and(&any);
        }
        clause
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::model::Situation;

    #[test]
    fn input_goes_to_parameters_only() {
        let filter = MessageFilter {
            situation: Some(Situation::Falhou),
            transaction: Some("'; DROP TABLE monitor_messages; --".into()),
            search: vec!["ABC".into(), "  ".into(), "x%_".into()],
            ..MessageFilter::default()
        };
        let clause = WhereClause::for_filter(&filter);
        assert!(!clause.sql.contains("DROP"));
        assert!(!clause.sql.contains("abc"));
        assert_eq!(clause.args.len(), 6);
        assert_eq!(clause.args[2], Arg::Text("abc".into()));
        assert_eq!(clause.args[3], Arg::Text("ABC".into()));
        assert!(clause.sql.starts_with(" WHERE m.situation = $1 AND"));
        assert!(
            WhereClause::for_filter(&MessageFilter::default())
                .sql
                .is_empty()
        );
    }
}
