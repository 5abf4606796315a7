//! Applying an adapter's `[[mapping]]` De/Para lookups to a message.

use std::fmt;

use serde_json::Value;

use super::depara::{DeParaError, DeParaStore, Lookup};
use super::table::{Adapter, MappingMode};
use crate::message::Message;

/// One value a mapping found, and what it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedValue {
    /// The concrete JSON pointer into Content (`/ListOfSaleItem/0/ItemInternalId`).
    pub pointer: String,
    pub alias: String,
    pub field: String,
    pub mode: MappingMode,
    /// The value as it was in the message.
    pub value: String,
    /// The value it maps to; `None` when the De/Para has no pair (an optional mapping).
    pub mapped: Option<String>,
}

/// A required pair the De/Para does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPair {
    pub pointer: String,
    pub reference: String,
    pub alias: String,
    pub field: String,
    pub value: String,
}

impl fmt::Display for MissingPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at {} has no De/Para {} {}/{}",
            self.value, self.pointer, self.reference, self.alias, self.field
        )
    }
}

/// Why the mappings could not be applied. Both kinds are retryable: a missing pair is a
/// dependency not integrated yet ("não integrado", protocol §5.5) that a later Response may
/// bring; a store failure may pass.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(
        "not integrated (não integrado): {}",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NotIntegrated { missing: Vec<MissingPair> },
    #[error(transparent)]
    Store(#[from] DeParaError),
}

impl MappingError {
    pub fn is_retryable(&self) -> bool {
        match self {
            MappingError::NotIntegrated { .. } => true,
            MappingError::Store(e) => e.is_retryable(),
        }
    }
}

/// Applies every `[[mapping]]` of `adapter` to `message`, with the De/Para of `reference` (the
/// counterpart's marca). Absent or empty values are skipped. When a required pair is missing,
/// nothing is changed and every missing pair is reported.
///
/// [`AdapterTable::apply_mappings`](super::AdapterTable::apply_mappings) picks the reference
/// itself (the sender's `ProductName`, or the route's product for `to-external` mappings).
pub async fn apply_mappings<S: DeParaStore>(
    adapter: &Adapter,
    reference: &str,
    message: &mut Message,
    store: &S,
) -> Result<Vec<MappedValue>, MappingError> {
    apply(adapter, reference, reference, message, store).await
}

/// As [`apply_mappings`], with `to_internal` as the reference of `to-internal` and `check`
/// mappings and `to_external` as that of `to-external` ones.
pub(crate) async fn apply<S: DeParaStore>(
    adapter: &Adapter,
    to_internal: &str,
    to_external: &str,
    message: &mut Message,
    store: &S,
) -> Result<Vec<MappedValue>, MappingError> {
    // Every value to look up first, then one round trip to the store for all of them.
    let mut wanted = Vec::new();
    let mut lookups = Vec::new();
    for mapping in &adapter.mappings {
        let reference = match mapping.mode {
            MappingMode::ToInternal | MappingMode::Check => to_internal,
            MappingMode::ToExternal => to_external,
        };
        for (pointer, value) in expand(&message.content, &mapping.path) {
            lookups.push(Lookup {
                to_internal: mapping.mode != MappingMode::ToExternal,
                reference: reference.to_owned(),
                alias: mapping.alias.clone(),
                field: mapping.field.clone(),
                value: value.clone(),
            });
            wanted.push((mapping, reference, pointer, value));
        }
    }
    let answers = store.lookup_all(&lookups).await?;
    let mut found = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for ((mapping, reference, pointer, value), mapped) in wanted.into_iter().zip(answers) {
        if mapped.is_none() && mapping.required {
            missing.push(MissingPair {
                pointer: pointer.clone(),
                reference: reference.trim().to_ascii_uppercase(),
                alias: mapping.alias.clone(),
                field: mapping.field.clone(),
                value: value.clone(),
            });
        }
        found.push(MappedValue {
            pointer,
            alias: mapping.alias.clone(),
            field: mapping.field.clone(),
            mode: mapping.mode,
            value,
            mapped,
        });
    }
    if !missing.is_empty() {
        return Err(MappingError::NotIntegrated { missing });
    }
    for value in &found {
        if value.mode == MappingMode::Check {
            continue;
        }
        if let (Some(mapped), Some(slot)) =
            (&value.mapped, message.content.pointer_mut(&value.pointer))
        {
            *slot = Value::String(mapped.clone());
        }
    }
    Ok(found)
}

/// The text values at `path` (a JSON pointer whose `*` segments stand for every item of a list
/// or every member of an object), with the concrete pointer of each. Keys match exactly, or
/// else in any case.
fn expand(content: &Value, path: &str) -> Vec<(String, String)> {
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut out = Vec::new();
    walk(content, &segments, String::new(), &mut out);
    out
}

fn walk(value: &Value, segments: &[String], pointer: String, out: &mut Vec<(String, String)>) {
    let Some((segment, rest)) = segments.split_first() else {
        let text = match value {
            Value::String(s) => s.trim_end().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if !text.trim().is_empty() {
            out.push((pointer, text));
        }
        return;
    };
    match value {
        Value::Array(items) if segment == "*" => {
            for (i, item) in items.iter().enumerate() {
                walk(item, rest, format!("{pointer}/{i}"), out);
            }
        }
        Value::Array(items) => {
            if let Some(item) = segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                walk(item, rest, format!("{pointer}/{segment}"), out);
            }
        }
        Value::Object(map) if segment == "*" => {
            for (key, item) in map {
                walk(item, rest, format!("{pointer}/{}", escape(key)), out);
            }
        }
        Value::Object(map) => {
            let entry = map
                .get_key_value(segment.as_str())
                .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(segment)));
            if let Some((key, item)) = entry {
                walk(item, rest, format!("{pointer}/{}", escape(key)), out);
            }
        }
        _ => {}
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expands_stars_and_matches_keys_in_any_case() {
        let content = json!({
            "ListOfSaleItem": [
                {"ItemInternalId": "P-1", "WarehouseInternalid": "W-1"},
                {"ItemInternalId": "  ", "Quantity": 1},
                {"ItemInternalId": 42}
            ],
            "a/b": {"x": "y"}
        });
        assert_eq!(
            expand(&content, "/ListOfSaleItem/*/ItemInternalId"),
            vec![
                (
                    "/ListOfSaleItem/0/ItemInternalId".to_owned(),
                    "P-1".to_owned()
                ),
                (
                    "/ListOfSaleItem/2/ItemInternalId".to_owned(),
                    "42".to_owned()
                ),
            ]
        );
        assert_eq!(
            expand(&content, "/ListOfSaleItem/*/WarehouseInternalId")[0].0,
            "/ListOfSaleItem/0/WarehouseInternalid"
        );
        assert_eq!(expand(&content, "/a~1b/x")[0].0, "/a~1b/x");
        assert!(expand(&content, "/Missing/*/X").is_empty());
    }
}
