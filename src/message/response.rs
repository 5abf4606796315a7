//! Reading and building Responses (protocol §2.4, §3.3): status, error texts and the InternalId
//! pairs the receiver returns, in every shape Protheus writes them.

use serde_json::{Map, Value, json};

use super::Message;
use super::header::{Field, Header};

/// An InternalId pair of a Response: the sender's id (`Origin`) and the receiver's (`Destination`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InternalIdPair {
    pub name: String,
    pub origin: String,
    pub destination: String,
}

/// A read-only view of a Response's Content.
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    content: &'a Value,
}

impl<'a> ResponseView<'a> {
    pub fn new(content: &'a Value) -> Self {
        ResponseView { content }
    }

    fn get(&self, path: &[&str]) -> Option<&'a Value> {
        path.iter().try_fold(self.content, |v, key| find(v, key))
    }

    /// True when `ProcessingInformation.Status` is OK (any case).
    pub fn is_ok(&self) -> bool {
        self.get(&["ProcessingInformation", "Status"])
            .and_then(Value::as_str)
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("ok"))
    }

    /// The UUID of the message this answers.
    pub fn received_uuid(&self) -> Option<&'a str> {
        self.get(&["ReceivedMessage", "UUID"])
            .and_then(Value::as_str)
    }

    pub fn received_event(&self) -> Option<&'a str> {
        self.get(&["ReceivedMessage", "Event"])
            .and_then(Value::as_str)
    }

    /// Every error text: `ListOfMessages`, `Details` and `ReturnContent.Error`.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for list in ["ListOfMessages", "Details"] {
            for item in items(self.get(&["ProcessingInformation", list])) {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        if let Some(text) = find(other, "Message").and_then(Value::as_str) {
                            out.push(text.to_owned());
                        }
                    }
                }
            }
        }
        if let Some(Value::String(error)) = self.get(&["ReturnContent", "Error"]) {
            out.push(error.clone());
        }
        out
    }

    /// The InternalId pairs of `ReturnContent.ListOfInternalId`, whether it is a list, a wrapper
    /// `{"InternalId": [...]}` or a single object (RetailSalesCancellation writes that).
    pub fn internal_ids(&self) -> Vec<InternalIdPair> {
        items(self.get(&["ReturnContent", "ListOfInternalId"]))
            .into_iter()
            .filter_map(|item| {
                let text = |k: &str| find(item, k).and_then(Value::as_str).map(str::to_owned);
                Some(InternalIdPair {
                    name: text("Name").unwrap_or_default(),
                    origin: text("Origin")?,
                    destination: text("Destination").unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The receiver's id carried by a RetailSales "já integrado" error, whose `ReturnContent.Error`
    /// is a JSON text `{"InternalId": ..., "ExternalId": ..., "Message": ...}` (protocol §5.4).
    /// That text is built without escaping, so it is read leniently.
    pub fn already_integrated_id(&self) -> Option<String> {
        let error = self.get(&["ReturnContent", "Error"])?.as_str()?;
        let folded = error.to_lowercase();
        if !(folded.contains("ja integrad") || folded.contains("já integrad")) {
            return None;
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(error) {
            let id = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("InternalId"))
                .and_then(|(_, v)| v.as_str())?;
            return (!id.trim().is_empty()).then(|| id.to_owned());
        }
        let at = folded.find("\"internalid\"")?;
        let rest = &error[at + "\"internalid\"".len()..];
        let rest = rest
            .trim_start()
            .strip_prefix(':')?
            .trim_start()
            .strip_prefix('"')?;
        let id = &rest[..rest.find('"')?];
        (!id.trim().is_empty()).then(|| id.to_owned())
    }
}

/// The items of a list in any of its shapes.
fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(map))
            if map.len() == 1 && !map.keys().any(|k| k.eq_ignore_ascii_case("Origin")) =>
        {
            match map.values().next() {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(inner) => vec![inner],
                None => Vec::new(),
            }
        }
        Some(other) => vec![other],
    }
}

fn find<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// What a receiver says about a message it processed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: bool,
    pub messages: Vec<(String, String)>,
    pub internal_ids: Vec<InternalIdPair>,
    pub return_content: Map<String, Value>,
}

/// Builds the Response to `received`, from `responder` (its SourceApplication and ProductName).
pub fn respond(
    received: &Header,
    responder: &Header,
    uuid: &str,
    processed_on: &str,
    outcome: Outcome,
) -> Message {
    let mut header = Header::default();
    header.set(Field::Uuid, uuid);
    header.set(Field::Type, "Response");
    if let Some(sub) = received.get(Field::SubType) {
        header.set(Field::SubType, sub);
    }
    if let Some(event) = received.get(Field::Event) {
        header.set(Field::Event, event);
    }
    header.set(Field::Transaction, received.transaction());
    if let Some(v) = received.version() {
        header.set(Field::Version, v);
    }
    for field in [
        Field::StandardVersion,
        Field::SourceApplication,
        Field::CompanyId,
        Field::BranchId,
        Field::ProductName,
        Field::ProductVersion,
    ] {
        if let Some(v) = responder.get(field).or_else(|| received.get(field)) {
            header.set(field, v);
        }
    }
    header.set(Field::GeneratedOn, processed_on);
    if let Some(d) = received.get(Field::DeliveryType) {
        header.set(Field::DeliveryType, d);
    }

    let mut received_message = Map::new();
    received_message.insert("UUID".into(), json!(received.uuid()));
    if let Some(sent_by) = received.product_name() {
        received_message.insert("SentBy".into(), json!(sent_by));
    }
    if let Some(event) = received.get(Field::Event) {
        received_message.insert("Event".into(), json!(event));
    }
    let mut processing = Map::new();
    processing.insert("ProcessedOn".into(), json!(processed_on));
    processing.insert(
        "Status".into(),
        json!(if outcome.ok { "OK" } else { "ERROR" }),
    );
    if !outcome.messages.is_empty() {
        let list: Vec<Value> = outcome
            .messages
            .iter()
            .map(|(code, text)| json!({"Type": "ERROR", "Code": code, "Message": text}))
            .collect();
        processing.insert("ListOfMessages".into(), Value::Array(list));
    }
    let mut return_content = outcome.return_content;
    if !outcome.internal_ids.is_empty() {
        let ids: Vec<Value> = outcome
            .internal_ids
            .iter()
            .map(|p| json!({"Name": p.name, "Origin": p.origin, "Destination": p.destination}))
            .collect();
        return_content.insert("ListOfInternalId".into(), Value::Array(ids));
    }
    let mut content = Map::new();
    content.insert("ReceivedMessage".into(), Value::Object(received_message));
    content.insert("ProcessingInformation".into(), Value::Object(processing));
    if !return_content.is_empty() {
        content.insert("ReturnContent".into(), Value::Object(return_content));
    }
    Message {
        header,
        content: Value::Object(content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_internal_ids_in_every_shape() {
        let list = json!({"ReturnContent": {"ListOfInternalId": [
            {"Name": "RETAILSALES", "Origin": "A", "Destination": "T1|01|1|2|001"}]}});
        let object = json!({"ReturnContent": {"ListOfInternalID": {"InternalID":
            {"Name": "RETAILSALESCANCELLATION", "Origin": "C", "Destination": "D"}}}});
        let wrapper = json!({"returncontent": {"listofinternalid": {"InternalId": [
            {"name": "x", "origin": "E", "destination": "F"}]}}});
        assert_eq!(
            ResponseView::new(&list).internal_ids()[0].destination,
            "T1|01|1|2|001"
        );
        assert_eq!(ResponseView::new(&object).internal_ids()[0].origin, "C");
        assert_eq!(
            ResponseView::new(&wrapper).internal_ids()[0].destination,
            "F"
        );
    }

    #[test]
    fn recovers_the_id_of_an_already_integrated_sale_even_from_broken_json() {
        let ok = json!({"ReturnContent": {"Error":
            "{\"InternalId\":\"T1|01|1|000123|001\",\"ExternalId\":\"OMNI-1\",\"Message\":\"Cupom: 000123 ja integrado no Protheus\"}"}});
        assert_eq!(
            ResponseView::new(&ok).already_integrated_id().as_deref(),
            Some("T1|01|1|000123|001")
        );
        let broken = json!({"ReturnContent": {"Error":
            "{\"InternalId\":\"T1|01|1|9|001\",\"ExternalId\":\"X\",\"Message\":\"Cupom \"9\" ja integrado\nlog\"}"}});
        assert_eq!(
            ResponseView::new(&broken)
                .already_integrated_id()
                .as_deref(),
            Some("T1|01|1|9|001")
        );
        let empty = json!({"ReturnContent": {"Error": "{\"InternalId\":\"\",\"Message\":\"ja integrado\"}"}});
        assert_eq!(ResponseView::new(&empty).already_integrated_id(), None);
    }

    #[test]
    fn collects_status_and_messages() {
        let c = json!({"ProcessingInformation": {"Status": "Error",
            "ListOfMessages": [{"Type": "ERROR", "Code": "1", "Message": "a"}],
            "Details": [{"Code": "2", "Message": "b"}]},
            "ReturnContent": {"Error": "c"}});
        let view = ResponseView::new(&c);
        assert!(!view.is_ok());
        assert_eq!(view.messages(), vec!["a", "b", "c"]);
    }
}
