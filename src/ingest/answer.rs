//! What eaibus answers a sender: a Receipt (async, HTTP 202), a Response (sync, HTTP 200), or a
//! Response with Status ERROR naming what is wrong (HTTP 4xx/5xx).

use serde_json::{Value, json};

use crate::config::Identity;
use crate::message::response::{Outcome, respond};
use crate::message::{Field, Header, Message};

/// An answer, with the HTTP status the REST binding gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub message: Message,
    /// Why it was refused, in one sentence (empty when accepted).
    pub reason: String,
}

impl Answer {
    pub fn is_accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Stored with the message so that a repeated UUID gets the same answer.
    pub fn to_stored(&self) -> String {
        json!({"status": self.status, "reason": self.reason, "message": self.message.to_json()})
            .to_string()
    }

    pub fn from_stored(text: &str) -> Option<Answer> {
        let value: Value = serde_json::from_str(text).ok()?;
        let status = u16::try_from(value.get("status")?.as_u64()?).ok()?;
        let message = value.get("message")?;
        let header = Header::from_json(message.get("Header")?.as_object()?.clone());
        Some(Answer {
            status,
            reason: value
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            message: Message {
                header,
                content: message.get("Content").cloned().unwrap_or(Value::Null),
            },
        })
    }
}

/// One problem reported to the sender: a code, a message and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub detail: String,
}

impl Problem {
    pub fn new(code: &str, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            code: code.to_owned(),
            message: message.into(),
            detail: detail.into(),
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn responder(identity: &Identity) -> Header {
    let mut h = Header::default();
    h.set(Field::SourceApplication, identity.application.clone());
    h.set(Field::ProductName, identity.product.clone());
    h.set(Field::ProductVersion, identity.product_version.clone());
    h.set(Field::StandardVersion, "1.000");
    h
}

/// HTTP 202 and, for SOAP, a ReceiptMessage.
pub fn receipt(received: &Header, identity: &Identity) -> Answer {
    let mut header = responder(identity);
    header.set(Field::Uuid, uuid::Uuid::new_v4().to_string());
    header.set(Field::Type, "Receipt");
    header.set(Field::Transaction, received.transaction());
    if let Some(v) = received.version() {
        header.set(Field::Version, v);
    }
    header.set(Field::GeneratedOn, now());
    let mut received_message = serde_json::Map::new();
    if let Some(p) = received.product_name() {
        received_message.insert("SentBy".into(), json!(p));
    }
    received_message.insert("UUID".into(), json!(received.uuid()));
    Answer {
        status: 202,
        reason: String::new(),
        message: Message {
            header,
            content: json!({"ReceivedMessage": received_message, "ReceiptData": {"ReceivedOn": now()}}),
        },
    }
}

/// A Response with Status OK.
pub fn ok(received: &Header, identity: &Identity, outcome: Outcome) -> Answer {
    let message = respond(
        received,
        &responder(identity),
        &uuid::Uuid::new_v4().to_string(),
        &now(),
        Outcome {
            ok: true,
            ..outcome
        },
    );
    Answer {
        status: 200,
        reason: String::new(),
        message,
    }
}

/// A Response with Status ERROR and `Details` (the REST form; SOAP shows them as ListOfMessages).
pub fn refusal(
    received: &Header,
    identity: &Identity,
    status: u16,
    problems: &[Problem],
) -> Answer {
    let mut message = respond(
        received,
        &responder(identity),
        &uuid::Uuid::new_v4().to_string(),
        &now(),
        Outcome::default(),
    );
    let details: Vec<Value> = problems
        .iter()
        .map(|p| json!({"Code": p.code, "Message": p.message, "DetailedMessage": p.detail}))
        .collect();
    if let Some(processing) = message.content.get_mut("ProcessingInformation") {
        processing["Details"] = Value::Array(details);
    }
    let reason = problems
        .iter()
        .map(|p| {
            if p.detail.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.detail, p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Answer {
        status,
        reason,
        message,
    }
}

/// The same answer with `Details` also written as `ListOfMessages`, as SOAP callers read them.
pub fn for_soap(answer: &Answer) -> Message {
    let mut message = answer.message.clone();
    if let Some(processing) = message.content.get_mut("ProcessingInformation")
        && let Some(Value::Array(details)) = processing.get("Details").cloned()
        && processing.get("ListOfMessages").is_none()
    {
        let list: Vec<Value> = details
            .iter()
            .map(|d| {
                let text = match (d.get("DetailedMessage").and_then(Value::as_str), d.get("Message").and_then(Value::as_str)) {
                    (Some(at), Some(m)) if !at.is_empty() => format!("{at}: {m}"),
                    (_, Some(m)) => m.to_owned(),
                    _ => String::new(),
                };
                json!({"Type": "ERROR", "Code": d.get("Code").cloned().unwrap_or(json!("")), "Message": text})
            })
            .collect();
        processing["ListOfMessages"] = Value::Array(list);
        if let Some(map) = processing.as_object_mut() {
            map.remove("Details");
        }
    }
    message
}
