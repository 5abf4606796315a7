//! The message header: `MessageInformation` in XML, `Header` in JSON (protocol §2.2, §3.1).

use serde_json::{Map, Value};

/// The header fields of the standard, in the order Protheus writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Uuid,
    Type,
    SubType,
    Event,
    Transaction,
    Version,
    StandardVersion,
    SourceApplication,
    CompanyId,
    BranchId,
    UserId,
    Enterprise,
    BusinessUnit,
    CompanySharingMode,
    BusinessUnitSharingMode,
    BranchSharingMode,
    ProductName,
    ProductVersion,
    GeneratedOn,
    ContextName,
    DeliveryType,
    /// XML `BusinessEvent/Entity`, kept only when it differs from the transaction.
    Entity,
    /// XML `BusinessRequest/Operation`, the routine that asked (e.g. `MATI410B`).
    Operation,
}

impl Field {
    pub const ALL: [Field; 23] = [
        Field::Uuid,
        Field::Type,
        Field::SubType,
        Field::Event,
        Field::Transaction,
        Field::Version,
        Field::StandardVersion,
        Field::SourceApplication,
        Field::CompanyId,
        Field::BranchId,
        Field::UserId,
        Field::Enterprise,
        Field::BusinessUnit,
        Field::CompanySharingMode,
        Field::BusinessUnitSharingMode,
        Field::BranchSharingMode,
        Field::ProductName,
        Field::ProductVersion,
        Field::GeneratedOn,
        Field::ContextName,
        Field::DeliveryType,
        Field::Entity,
        Field::Operation,
    ];

    /// The JSON attribute name (UpperCamelCase, as the REST binding spells it).
    pub fn name(self) -> &'static str {
        match self {
            Field::Uuid => "UUID",
            Field::Type => "Type",
            Field::SubType => "SubType",
            Field::Event => "Event",
            Field::Transaction => "Transaction",
            Field::Version => "Version",
            Field::StandardVersion => "StandardVersion",
            Field::SourceApplication => "SourceApplication",
            Field::CompanyId => "CompanyId",
            Field::BranchId => "BranchId",
            Field::UserId => "UserId",
            Field::Enterprise => "Enterprise",
            Field::BusinessUnit => "BusinessUnit",
            Field::CompanySharingMode => "CompanySharingMode",
            Field::BusinessUnitSharingMode => "BusinessUnitSharingMode",
            Field::BranchSharingMode => "BranchSharingMode",
            Field::ProductName => "ProductName",
            Field::ProductVersion => "ProductVersion",
            Field::GeneratedOn => "GeneratedOn",
            Field::ContextName => "ContextName",
            Field::DeliveryType => "DeliveryType",
            Field::Entity => "Entity",
            Field::Operation => "Operation",
        }
    }

    /// The field a JSON attribute or XML element names, in any case. Protheus' own sample spells
    /// `BusinessUnitySharingMode`.
    pub fn from_name(name: &str) -> Option<Field> {
        if name.eq_ignore_ascii_case("BusinessUnitySharingMode") {
            return Some(Field::BusinessUnitSharingMode);
        }
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What kind of message this is (header `Type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageType {
    BusinessMessage,
    Response,
    Receipt,
    /// A type the standard does not name, kept as sent.
    Unknown(String),
}

/// `upsert` or `delete` for events; requests carry none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Upsert,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryType {
    Sync,
    Async,
}

/// A message header. Known fields are kept in canonical spelling; fields the standard does not
/// name are kept too, in `extra`, so nothing a sender wrote is lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    values: [Option<String>; 23],
    /// XML `Identification` keys that cannot be derived from the content (`name`, `value`).
    pub identification: Vec<(String, String)>,
    pub extra: Map<String, Value>,
}

impl Header {
    pub fn get(&self, field: Field) -> Option<&str> {
        self.values[field.index()].as_deref()
    }

    /// Sets a field, writing its value in canonical form (`Event` in lower case, `Transaction` in
    /// upper case, ...). An empty value is kept: an empty `BranchId` is a value.
    pub fn set(&mut self, field: Field, value: impl Into<String>) {
        self.values[field.index()] = Some(canonical_value(field, value.into()));
    }

    pub fn remove(&mut self, field: Field) -> Option<String> {
        self.values[field.index()].take()
    }

    pub fn fields(&self) -> impl Iterator<Item = (Field, &str)> {
        Field::ALL
            .into_iter()
            .filter_map(|f| self.get(f).map(|v| (f, v)))
    }

    pub fn uuid(&self) -> &str {
        self.get(Field::Uuid).unwrap_or("")
    }

    pub fn transaction(&self) -> &str {
        self.get(Field::Transaction).unwrap_or("")
    }

    pub fn version(&self) -> Option<&str> {
        self.get(Field::Version)
    }

    pub fn product_name(&self) -> Option<&str> {
        self.get(Field::ProductName)
    }

    pub fn message_type(&self) -> MessageType {
        match self.get(Field::Type) {
            None | Some("BusinessMessage") => MessageType::BusinessMessage,
            Some("Response") => MessageType::Response,
            Some("Receipt") => MessageType::Receipt,
            Some(other) => MessageType::Unknown(other.to_owned()),
        }
    }

    pub fn event(&self) -> Option<Event> {
        match self.get(Field::Event) {
            Some("upsert") => Some(Event::Upsert),
            Some("delete") => Some(Event::Delete),
            _ => None,
        }
    }

    pub fn is_request(&self) -> bool {
        self.get(Field::SubType) == Some("request")
    }

    pub fn delivery_type(&self) -> Option<DeliveryType> {
        match self.get(Field::DeliveryType) {
            Some("Sync") => Some(DeliveryType::Sync),
            Some("Async") => Some(DeliveryType::Async),
            _ => None,
        }
    }

    /// The header as canonical JSON: known fields in standard order, then `Identification`
    /// when it has keys, then the fields the standard does not name.
    pub fn to_json(&self) -> Value {
        let mut map = Map::with_capacity(24 + self.extra.len());
        for (field, value) in self.fields() {
            map.insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
        if !self.identification.is_empty() {
            let keys = self
                .identification
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            map.insert("Identification".into(), Value::Object(keys));
        }
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }

    /// Reads a JSON header leniently: attribute names in any case, numbers or booleans where text
    /// is expected, `Identification` as an object or as a list of `{name, value}`.
    pub fn from_json(map: Map<String, Value>) -> Header {
        let mut header = Header::default();
        for (key, value) in map {
            if key.eq_ignore_ascii_case("Identification") {
                header.identification = read_identification(&value);
                if header.identification.is_empty() && !is_empty_value(&value) {
                    header.extra.insert(key, value);
                }
                continue;
            }
            match (Field::from_name(&key), value) {
                (Some(_), Value::Null) => {}
                (Some(field), Value::String(s)) => header.set(field, s),
                (Some(Field::Version), Value::Number(n)) => {
                    let text = n
                        .as_f64()
                        .map_or_else(|| n.to_string(), |f| format!("{f:.3}"));
                    header.set(Field::Version, text);
                }
                (Some(field), Value::Number(n)) => header.set(field, n.to_string()),
                (Some(field), Value::Bool(b)) => header.set(field, b.to_string()),
                (_, value) => {
                    header.extra.insert(key, value);
                }
            }
        }
        header
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn read_identification(value: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let name = item.get("name").or_else(|| item.get("Name"))?.as_str()?;
                let value = text(item.get("value").or_else(|| item.get("Value"))?)?;
                Some((name.to_owned(), value))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The canonical spelling of a header value: case-insensitive vocabularies in one case.
fn canonical_value(field: Field, value: String) -> String {
    let trimmed = value.trim();
    let is = |word: &str| trimmed.eq_ignore_ascii_case(word);
    match field {
        Field::Type if is("businessmessage") => "BusinessMessage".into(),
        Field::Type if is("response") || is("responsemessage") => "Response".into(),
        Field::Type if is("receipt") || is("receiptmessage") => "Receipt".into(),
        Field::SubType | Field::Event => match ["event", "request", "upsert", "delete"]
            .into_iter()
            .find(|word| is(word))
        {
            // Already canonical: kept without a copy.
            Some(word) if value == word => value,
            Some(word) => word.into(),
            None => value,
        },
        Field::DeliveryType if is("sync") => "Sync".into(),
        Field::DeliveryType if is("async") => "Async".into(),
        Field::Transaction
            if trimmed.len() == value.len() && !value.bytes().any(|b| b.is_ascii_lowercase()) =>
        {
            value
        }
        Field::Transaction => trimmed.to_ascii_uppercase(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_fields_in_any_case_and_keeps_unknown_ones() {
        let Value::Object(map) = json!({
            "uuid": "u-1", "TYPE": "businessmessage", "subType": "Event", "event": "UPSERT",
            "transaction": "RetailSales", "Version": 2.01, "DeliveryType": "async",
            "BusinessUnitySharingMode": "E", "Custom": {"a": 1}
        }) else {
            unreachable!()
        };
        let header = Header::from_json(map);
        assert_eq!(header.uuid(), "u-1");
        assert_eq!(header.message_type(), MessageType::BusinessMessage);
        assert_eq!(header.event(), Some(Event::Upsert));
        assert_eq!(header.transaction(), "RETAILSALES");
        assert_eq!(header.version(), Some("2.010"));
        assert_eq!(header.delivery_type(), Some(DeliveryType::Async));
        assert_eq!(header.get(Field::BusinessUnitSharingMode), Some("E"));
        assert_eq!(header.extra.get("Custom"), Some(&json!({"a": 1})));
    }

    #[test]
    fn writes_canonical_json_in_standard_order() {
        let mut header = Header::default();
        header.set(Field::Transaction, "itemreserve");
        header.set(Field::Uuid, "x");
        header
            .identification
            .push(("Number".into(), "000123".into()));
        assert_eq!(
            header.to_json().to_string(),
            r#"{"UUID":"x","Transaction":"ITEMRESERVE","Identification":{"Number":"000123"}}"#
        );
    }

    #[test]
    fn keeps_significant_spaces() {
        let mut header = Header::default();
        header.set(Field::BranchId, "D MG 01 ");
        assert_eq!(header.get(Field::BranchId), Some("D MG 01 "));
    }
}
