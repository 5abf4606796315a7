//! The XML form `TOTVSMessage` (SOAP binding, protocol §2), mapped to and from the canonical JSON
//! form by the schema: which elements are lists, numbers, booleans, attributes or text.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::error::DecodeError;
use super::header::{Field, Header, MessageType};
use super::json::complete_header;
use super::xml_tree::{self, Element};
use super::{Codec, Message};
use crate::schema::shape::{ArrayShape, ObjectShape, Shape, XmlRole};

/// Key of an attribute the schema does not name, kept on its object so nothing is lost.
const ATTRIBUTE_PREFIX: char = '@';
/// Key of the text of an element the schema does not describe, when it also has attributes.
const TEXT_KEY: &str = "#text";
/// Element used for a JSON key that is not a valid XML name; the key goes in its `name`.
const ODD_KEY_ELEMENT: &str = "eai-field";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

pub(super) fn decode(codec: &Codec<'_>, bytes: &[u8]) -> Result<Message, DecodeError> {
    let text = xml_tree::decode_text(bytes)?;
    let root = xml_tree::parse(&text, codec.limits.max_depth)?;
    if !root.name.eq_ignore_ascii_case("TOTVSMessage") {
        return Err(DecodeError::structure(
            format!("/{}", root.name),
            "the root element must be TOTVSMessage",
        ));
    }
    let info = root.child("MessageInformation").ok_or_else(|| {
        DecodeError::structure(
            "/TOTVSMessage/MessageInformation",
            "MessageInformation is missing",
        )
    })?;
    let mut header = read_information(info);

    let body = root
        .children
        .iter()
        .find(|c| !c.name.eq_ignore_ascii_case("MessageInformation"))
        .ok_or_else(|| {
            DecodeError::structure(
                "/TOTVSMessage",
                "expected BusinessMessage, ResponseMessage or ReceiptMessage after MessageInformation",
            )
        })?;
    let body_name = body.name.to_ascii_lowercase();
    let implied_type = match body_name.as_str() {
        "businessmessage" => "BusinessMessage",
        "responsemessage" => "Response",
        "receiptmessage" => "Receipt",
        _ => {
            return Err(DecodeError::structure(
                format!("/TOTVSMessage/{}", body.name),
                "expected BusinessMessage, ResponseMessage or ReceiptMessage",
            ));
        }
    };
    if header.get(Field::Type).is_none() {
        header.set(Field::Type, implied_type);
    }

    let mut keys = Vec::new();
    let content_element = if body_name == "businessmessage" {
        if let Some(event) = body.child("BusinessEvent") {
            header.set(Field::SubType, "event");
            if let Some(e) = event.child("Entity") {
                header.set(Field::Entity, e.text.clone());
            }
            if let Some(e) = event.child("Event") {
                header.set(Field::Event, e.text.clone());
            }
            if let Some(identification) = event.child("Identification") {
                for key in &identification.children {
                    let name = key.attribute("name").unwrap_or_default();
                    keys.push((name.to_owned(), key.text.clone()));
                }
            }
        } else if let Some(request) = body.child("BusinessRequest") {
            header.set(Field::SubType, "request");
            if let Some(op) = request.child("Operation") {
                header.set(Field::Operation, op.text.clone());
            }
        }
        Some(body.child("BusinessContent").ok_or_else(|| {
            DecodeError::structure(
                "/TOTVSMessage/BusinessMessage/BusinessContent",
                "BusinessContent is missing",
            )
        })?)
    } else {
        Some(body)
    };

    let header = complete_header(codec, header);
    let shape = codec.registry.content_shape(&header);
    let content = match content_element {
        Some(el) => element_value(el, &shape),
        None => Value::Null,
    };
    let mut message = Message { header, content };
    settle_implied_fields(codec, &mut message, keys);
    Ok(message)
}

fn read_information(info: &Element) -> Header {
    let mut header = Header::default();
    if let Some(version) = info.attribute("version") {
        header.set(Field::Version, version);
    }
    for child in &info.children {
        if child.name.eq_ignore_ascii_case("Product") {
            if let Some(name) = child.attribute("name") {
                header.set(Field::ProductName, name);
            }
            if let Some(version) = child.attribute("version") {
                header.set(Field::ProductVersion, version);
            }
            continue;
        }
        match Field::from_name(&child.name) {
            Some(field) if child.is_leaf() => header.set(field, child.text.clone()),
            _ => {
                let value = element_value(child, &Shape::Any);
                header.extra.insert(child.name.clone(), value);
            }
        }
    }
    header
}

/// Entity and Identification are kept only where they say more than the content does.
fn settle_implied_fields(codec: &Codec<'_>, message: &mut Message, keys: Vec<(String, String)>) {
    if message
        .header
        .get(Field::Entity)
        .is_some_and(|e| e.eq_ignore_ascii_case(message.header.transaction()))
    {
        message.header.remove(Field::Entity);
    }
    if !keys.is_empty() && keys != implied_keys(codec, message) {
        message.header.identification = keys;
    }
}

/// The Identification keys the content implies, from the schema's `identification` list.
fn implied_keys(codec: &Codec<'_>, message: &Message) -> Vec<(String, String)> {
    let Some(schema) = codec.registry.for_header(&message.header) else {
        return Vec::new();
    };
    schema
        .identification
        .iter()
        .filter_map(|name| {
            let value = message.content_text(&format!("/{name}"))?;
            Some((name.clone(), value))
        })
        .collect()
}

/// An element as a JSON value of the given shape.
fn element_value(el: &Element, shape: &Shape) -> Value {
    if el.attribute("nil").is_some_and(|v| v == "true") && el.is_leaf() && el.text.is_empty() {
        return Value::Null;
    }
    match shape {
        Shape::Object(object) => Value::Object(object_value(el, Some(object))),
        Shape::Array(array) => Value::Array(array_items(el, array)),
        Shape::Any if !el.is_leaf() || !el.attributes.is_empty() => {
            let mut map = object_value(el, None);
            if el.is_leaf() && !el.text.is_empty() {
                map.insert(TEXT_KEY.into(), Value::String(el.text.clone()));
            }
            Value::Object(map)
        }
        leaf => leaf.normalize(Value::String(el.text.clone())),
    }
}

fn object_value(el: &Element, object: Option<&ObjectShape>) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in &el.attributes {
        // `nil` is xsi:nil; an eai-field's `name` is its key, not a value.
        if name == "nil" || (el.name == ODD_KEY_ELEMENT && name == "name") {
            continue;
        }
        match object.and_then(|o| o.attribute_property(name)) {
            Some(p) => {
                map.insert(
                    p.name.clone(),
                    p.shape.normalize(Value::String(value.clone())),
                );
            }
            None => {
                map.insert(
                    format!("{ATTRIBUTE_PREFIX}{name}"),
                    Value::String(value.clone()),
                );
            }
        }
    }
    if let Some(p) = object.and_then(ObjectShape::text_property)
        && !(el.self_closing && el.text.is_empty())
    {
        map.insert(
            p.name.clone(),
            p.shape.normalize(Value::String(el.text.clone())),
        );
    }
    for child in &el.children {
        let name = if child.name == ODD_KEY_ELEMENT {
            child.attribute("name").unwrap_or_default().to_owned()
        } else {
            child.name.clone()
        };
        let property = object.and_then(|o| o.find(&name));
        match property {
            Some(p) => match &p.shape {
                Shape::Array(array) => {
                    let items = if array.xml_item.is_some() {
                        array_items(child, array)
                    } else {
                        vec![element_value(child, &array.item)]
                    };
                    match map.get_mut(&p.name) {
                        Some(Value::Array(existing)) => existing.extend(items),
                        _ => {
                            map.insert(p.name.clone(), Value::Array(items));
                        }
                    }
                }
                shape => insert_repeated(&mut map, p.name.clone(), element_value(child, shape)),
            },
            None => insert_repeated(&mut map, name, element_value(child, &Shape::Any)),
        }
    }
    map
}

/// An element repeated where the schema expects one becomes a list, so nothing is dropped.
fn insert_repeated(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

/// An object item whose XML element carries nothing of its own (no text field).
fn is_bare_item(item: &Shape) -> bool {
    item.as_object()
        .is_some_and(|o| o.text_property().is_none())
}

/// The items of a wrapper element. MATI410B writes `<ListOfTraceability><Invoice/></ListOfTraceability>`
/// for "no invoice yet", so a bare self-closing item of an object list is no item.
fn array_items(wrapper: &Element, array: &ArrayShape) -> Vec<Value> {
    wrapper
        .children
        .iter()
        .filter(|child| {
            !(is_bare_item(&array.item) && child.self_closing && child.attributes.is_empty())
        })
        .map(|child| element_value(child, &array.item))
        .collect()
}

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
