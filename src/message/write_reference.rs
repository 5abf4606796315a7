//! The XML and Protheus JSON writers as first written, building strings and trees as they go:
//! kept as the reference the faster writers are checked against, byte for byte.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::header::{Field, MessageType};
use super::xml::{ATTRIBUTE_PREFIX, ODD_KEY_ELEMENT, TEXT_KEY, XSI, implied_keys, is_bare_item};
use super::{Codec, JsonStyle, Message};
use crate::schema::SchemaRegistry;
use crate::schema::shape::{Shape, XmlRole};

pub(super) fn encode(codec: &Codec<'_>, message: &Message) -> String {
    let header = &message.header;
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TOTVSMessage>");
    match header.version() {
        Some(v) => write!(out, "<MessageInformation version=\"{}\">", attr(v)).unwrap(),
        None => out.push_str("<MessageInformation>"),
    }
    for (field, value) in header.fields() {
        match field {
            Field::Version
            | Field::SubType
            | Field::Event
            | Field::Entity
            | Field::Operation
            | Field::ProductVersion => {}
            Field::ProductName => {
                write!(out, "<Product name=\"{}\"", attr(value)).unwrap();
                if let Some(v) = header.get(Field::ProductVersion) {
                    write!(out, " version=\"{}\"", attr(v)).unwrap();
                }
                out.push_str("/>");
            }
            _ => leaf(&mut out, field.name(), value),
        }
    }
    if header.get(Field::ProductName).is_none()
        && let Some(v) = header.get(Field::ProductVersion)
    {
        write!(out, "<Product version=\"{}\"/>", attr(v)).unwrap();
    }
    for (key, value) in &header.extra {
        write_value(&mut out, key, value, &Shape::Any);
    }
    out.push_str("</MessageInformation>");

    let shape = codec.registry.content_shape(header);
    match header.message_type() {
        MessageType::Response => write_value(&mut out, "ResponseMessage", &message.content, &shape),
        MessageType::Receipt => write_value(&mut out, "ReceiptMessage", &message.content, &shape),
        MessageType::BusinessMessage | MessageType::Unknown(_) => {
            out.push_str("<BusinessMessage>");
            if header.is_request() {
                out.push_str("<BusinessRequest>");
                if let Some(op) = header.get(Field::Operation) {
                    leaf(&mut out, "Operation", op);
                }
                out.push_str("</BusinessRequest>");
            } else {
                out.push_str("<BusinessEvent>");
                let entity = header.get(Field::Entity).unwrap_or(header.transaction());
                leaf(&mut out, "Entity", entity);
                if let Some(event) = header.get(Field::Event) {
                    leaf(&mut out, "Event", event);
                }
                let keys = if header.identification.is_empty() {
                    implied_keys(codec, message)
                } else {
                    header.identification.clone()
                };
                if !keys.is_empty() {
                    out.push_str("<Identification>");
                    for (name, value) in keys {
                        write!(out, "<key name=\"{}\">{}</key>", attr(&name), text(&value))
                            .unwrap();
                    }
                    out.push_str("</Identification>");
                }
                out.push_str("</BusinessEvent>");
            }
            write_value(&mut out, "BusinessContent", &message.content, &shape);
            out.push_str("</BusinessMessage>");
        }
    }
    out.push_str("</TOTVSMessage>");
    out
}

fn leaf(out: &mut String, name: &str, value: &str) {
    write!(out, "<{name}>{}</{name}>", text(value)).unwrap();
}

/// Writes `value` as element `name` following `shape`.
fn write_value(out: &mut String, name: &str, value: &Value, shape: &Shape) {
    let (open, close) = tag(name);
    match (value, shape) {
        (Value::Null, _) => write!(out, "<{open} xmlns:xsi=\"{XSI}\" xsi:nil=\"true\"/>").unwrap(),
        (Value::Array(items), Shape::Array(array)) => match &array.xml_item {
            Some(item) => {
                if items.is_empty() {
                    write!(out, "<{open}/>").unwrap();
                } else {
                    write!(out, "<{open}>").unwrap();
                    for v in items {
                        if v.as_object().is_some_and(Map::is_empty) && is_bare_item(&array.item) {
                            // An empty item is written open, so that it reads back as an item.
                            write!(out, "<{item}></{item}>").unwrap();
                        } else {
                            write_value(out, item, v, &array.item);
                        }
                    }
                    write!(out, "</{close}>").unwrap();
                }
            }
            None => {
                for v in items {
                    write_value(out, name, v, &array.item);
                }
            }
        },
        (Value::Array(items), _) => {
            for v in items {
                write_value(out, name, v, &Shape::Any);
            }
        }
        (Value::Object(map), shape) => {
            let object = shape.as_object();
            let mut head = format!("<{open}");
            // Attribute names already written: a repeated one would make the XML malformed, so a
            // colliding key is written as an element instead.
            let mut written: Vec<String> = Vec::new();
            if open.starts_with(ODD_KEY_ELEMENT) {
                written.push("name".into());
            }
            let mut body = String::new();
            let mut has_text = false;
            for (key, v) in map {
                let property = object.and_then(|o| o.find(key));
                let attribute =
                    match (property.map(|p| &p.xml), key.strip_prefix(ATTRIBUTE_PREFIX)) {
                        (Some(XmlRole::Attribute(a)), _) => Some(a.as_str()),
                        (None, Some(a)) if is_xml_name(a) => Some(a),
                        _ => None,
                    }
                    .filter(|_| v.is_string() || v.is_number() || v.is_boolean());
                match (attribute, property.map(|p| &p.xml)) {
                    (Some(a), _) if !written.iter().any(|w| w == a) => {
                        written.push(a.to_owned());
                        write!(head, " {a}=\"{}\"", attr(&scalar_text(v))).unwrap()
                    }
                    (_, Some(XmlRole::Text)) => {
                        has_text = true;
                        body.push_str(&text(&scalar_text(v)))
                    }
                    (_, None) if key == TEXT_KEY => {
                        has_text = true;
                        body.push_str(&text(&scalar_text(v)))
                    }
                    _ => {
                        let inner = property.map_or(Shape::Any, |p| p.shape.clone());
                        write_value(&mut body, key, v, &inner);
                    }
                }
            }
            if body.is_empty() && !has_text {
                write!(out, "{head}/>").unwrap();
            } else {
                write!(out, "{head}>{body}</{close}>").unwrap();
            }
        }
        (scalar, _) => {
            write!(out, "<{open}>{}</{close}>", text(&scalar_text(scalar))).unwrap();
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Opening and closing tag names; a key that is not an XML name travels in an attribute.
fn tag(name: &str) -> (String, String) {
    if is_xml_name(name) {
        (name.to_owned(), name.to_owned())
    } else {
        (
            format!("{ODD_KEY_ELEMENT} name=\"{}\"", attr(name)),
            ODD_KEY_ELEMENT.to_owned(),
        )
    }
}

fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}

/// Escapes element text. Carriage returns go as references, which parsers do not normalise;
/// characters XML 1.0 cannot carry at all become U+FFFD.
fn text(value: &str) -> String {
    escape(value, false)
}

fn attr(value: &str) -> String {
    escape(value, true)
}

fn escape(value: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn protheus_json(codec: &Codec<'_>, message: &Message) -> Value {
    let mut header = message.header.clone();
    header.remove(Field::Entity);
    header.remove(Field::Operation);
    header.identification.clear();
    let shape = codec.registry.content_shape(&message.header);
    let mut content = wrap_lists(&message.content, &shape);
    if let (Some(event), Some(object), Value::Object(map)) =
        (header.get(Field::Event), shape.as_object(), &mut content)
        && let Some(property) = object.find("Event")
        && !map.keys().any(|k| k.eq_ignore_ascii_case("Event"))
    {
        map.insert(property.name.clone(), Value::String(event.to_owned()));
    }
    let mut map = Map::with_capacity(2);
    map.insert("Header".into(), header.to_json());
    map.insert("Content".into(), content);
    Value::Object(map)
}

fn wrap_lists(value: &Value, shape: &Shape) -> Value {
    match (shape, value) {
        (Shape::Object(object), Value::Object(map)) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let inner = object.find(k).map_or(Shape::Any, |p| p.shape.clone());
                    (k.clone(), wrap_lists(v, &inner))
                })
                .collect(),
        ),
        (Shape::Array(array), Value::Array(items)) => {
            let items: Vec<Value> = items.iter().map(|v| wrap_lists(v, &array.item)).collect();
            match (&array.xml_item, array.wrapper) {
                (Some(item), true) => {
                    let mut wrapper = Map::with_capacity(1);
                    wrapper.insert(item.clone(), Value::Array(items));
                    Value::Object(wrapper)
                }
                _ => Value::Array(items),
            }
        }
        (_, v) => v.clone(),
    }
}

/// Every message the fixtures and fuzz seeds decode to, and each read back from its own writes.
fn messages(codec: &Codec<'_>) -> Vec<Message> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut messages = Vec::new();
    for dir in [
        "tests/fixtures/valid",
        "tests/fixtures/invalid",
        "fuzz/corpus/decode_json",
        "fuzz/corpus/decode_xml",
        "fuzz/corpus/decode_any",
        "fuzz/corpus/round_trip",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok((message, _)) = codec.decode(&bytes) {
                messages.push(message);
            }
        }
    }
    let mut odd = messages[0].clone();
    odd.header
        .extra
        .insert("UUID".into(), Value::Object(Map::new()));
    odd.header.identification = vec![("K".into(), "1".into()), ("K".into(), "2".into())];
    odd.header
        .extra
        .insert("Identification".into(), Value::Bool(true));
    messages.push(odd);
    messages
}

#[test]
fn the_writers_write_what_the_reference_writes() {
    let registry = SchemaRegistry::embedded().unwrap();
    let codec = Codec::new(&registry);
    let messages = messages(&codec);
    assert!(messages.len() > 50);
    for message in &messages {
        assert_eq!(codec.to_xml(message), encode(&codec, message));
        assert_eq!(message.canonical_json(), message.to_json().to_string());
        assert_eq!(
            codec.to_json(message, JsonStyle::Canonical),
            message.to_json().to_string()
        );
        assert_eq!(
            codec.to_json(message, JsonStyle::Protheus),
            protheus_json(&codec, message).to_string()
        );
    }
}
