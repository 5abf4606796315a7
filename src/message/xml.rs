//! The XML form `TOTVSMessage` (SOAP binding, protocol §2), mapped to and from the canonical JSON
//! form by the schema: which elements are lists, numbers, booleans, attributes or text.

use std::fmt::Write;

use serde_json::map::Entry;
use serde_json::{Map, Value};

use super::error::DecodeError;
use super::header::{Field, Header, MessageType};
use super::json::complete_header;
use super::xml_tree::{self, Element};
use super::{Codec, Message};
use crate::schema::shape::{ArrayShape, ObjectShape, Shape, XmlRole};

/// Key of an attribute the schema does not name, kept on its object so nothing is lost.
pub(super) const ATTRIBUTE_PREFIX: char = '@';
/// Key of the text of an element the schema does not describe, when it also has attributes.
pub(super) const TEXT_KEY: &str = "#text";
/// Element used for a JSON key that is not a valid XML name; the key goes in its `name`.
pub(super) const ODD_KEY_ELEMENT: &str = "eai-field";
pub(super) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

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
                header.set(Field::Entity, e.text.to_string());
            }
            if let Some(e) = event.child("Event") {
                header.set(Field::Event, e.text.to_string());
            }
            if let Some(identification) = event.child("Identification") {
                for key in &identification.children {
                    let name = key.attribute("name").unwrap_or_default();
                    keys.push((name.to_owned(), key.text.to_string()));
                }
            }
        } else if let Some(request) = body.child("BusinessRequest") {
            header.set(Field::SubType, "request");
            if let Some(op) = request.child("Operation") {
                header.set(Field::Operation, op.text.to_string());
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
            Some(field) if child.is_leaf() => header.set(field, child.text.to_string()),
            _ => {
                let value = element_value(child, &Shape::Any);
                header.extra.insert(child.name.to_string(), value);
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
pub(super) fn implied_keys(codec: &Codec<'_>, message: &Message) -> Vec<(String, String)> {
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
                map.insert(TEXT_KEY.into(), Value::String(el.text.to_string()));
            }
            Value::Object(map)
        }
        leaf => leaf.normalize(Value::String(el.text.to_string())),
    }
}

fn object_value(el: &Element, object: Option<&ObjectShape>) -> Map<String, Value> {
    let mut map = Map::with_capacity(el.attributes.len() + el.children.len() + 1);
    for (name, value) in &el.attributes {
        // `nil` is xsi:nil; an eai-field's `name` is its key, not a value.
        if name == "nil" || (el.name == ODD_KEY_ELEMENT && name == "name") {
            continue;
        }
        match object.and_then(|o| o.attribute_property(name)) {
            Some(p) => {
                map.insert(
                    p.name.clone(),
                    p.shape.normalize(Value::String(value.to_string())),
                );
            }
            None => {
                map.insert(
                    format!("{ATTRIBUTE_PREFIX}{name}"),
                    Value::String(value.to_string()),
                );
            }
        }
    }
    if let Some(p) = object.and_then(ObjectShape::text_property)
        && !(el.self_closing && el.text.is_empty())
    {
        map.insert(
            p.name.clone(),
            p.shape.normalize(Value::String(el.text.to_string())),
        );
    }
    for child in &el.children {
        let name: &str = if child.name == ODD_KEY_ELEMENT {
            child.attribute("name").unwrap_or_default()
        } else {
            &child.name
        };
        let property = object.and_then(|o| o.find(name));
        match property {
            Some(p) => match &p.shape {
                Shape::Array(array) => {
                    let items = if array.xml_item.is_some() {
                        array_items(child, array)
                    } else {
                        vec![element_value(child, &array.item)]
                    };
                    match map.entry(p.name.clone()) {
                        Entry::Occupied(mut entry) => match entry.get_mut() {
                            Value::Array(existing) => existing.extend(items),
                            other => *other = Value::Array(items),
                        },
                        Entry::Vacant(entry) => {
                            entry.insert(Value::Array(items));
                        }
                    }
                }
                shape => insert_repeated(&mut map, p.name.clone(), element_value(child, shape)),
            },
            None => insert_repeated(&mut map, name.to_owned(), element_value(child, &Shape::Any)),
        }
    }
    map
}

/// An element repeated where the schema expects one becomes a list, so nothing is dropped.
fn insert_repeated(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.entry(key) {
        Entry::Vacant(entry) => {
            entry.insert(value);
        }
        Entry::Occupied(mut entry) => match entry.get_mut() {
            Value::Array(items) => items.push(value),
            existing => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        },
    }
}

/// An object item whose XML element carries nothing of its own (no text field).
pub(super) fn is_bare_item(item: &Shape) -> bool {
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
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TOTVSMessage>");
    match header.version() {
        Some(v) => {
            out.push_str("<MessageInformation version=\"");
            push_attr(&mut out, v);
            out.push_str("\">");
        }
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
                out.push_str("<Product name=\"");
                push_attr(&mut out, value);
                out.push('"');
                if let Some(v) = header.get(Field::ProductVersion) {
                    out.push_str(" version=\"");
                    push_attr(&mut out, v);
                    out.push('"');
                }
                out.push_str("/>");
            }
            _ => leaf(&mut out, field.name(), value),
        }
    }
    if header.get(Field::ProductName).is_none()
        && let Some(v) = header.get(Field::ProductVersion)
    {
        out.push_str("<Product version=\"");
        push_attr(&mut out, v);
        out.push_str("\"/>");
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
                        out.push_str("<key name=\"");
                        push_attr(&mut out, &name);
                        out.push_str("\">");
                        push_text(&mut out, &value);
                        out.push_str("</key>");
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
    write!(out, "<{name}>").unwrap();
    push_text(out, value);
    write!(out, "</{name}>").unwrap();
}

/// A property without a schema: written as it comes.
static ANY: Shape = Shape::Any;

/// Writes `value` as element `name` following `shape`, straight into `out`.
fn write_value(out: &mut String, name: &str, value: &Value, shape: &Shape) {
    let odd = !is_xml_name(name);
    match (value, shape) {
        (Value::Null, _) => {
            open_tag(out, name, odd);
            write!(out, " xmlns:xsi=\"{XSI}\" xsi:nil=\"true\"/>").unwrap();
        }
        (Value::Array(items), Shape::Array(array)) => match &array.xml_item {
            Some(item) => {
                open_tag(out, name, odd);
                if items.is_empty() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    for v in items {
                        if v.as_object().is_some_and(Map::is_empty) && is_bare_item(&array.item) {
                            // An empty item is written open, so that it reads back as an item.
                            write!(out, "<{item}></{item}>").unwrap();
                        } else {
                            write_value(out, item, v, &array.item);
                        }
                    }
                    close_tag(out, name, odd);
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
                write_value(out, name, v, &ANY);
            }
        }
        (Value::Object(map), shape) => write_object(out, name, odd, map, shape.as_object()),
        (scalar, _) => {
            open_tag(out, name, odd);
            out.push('>');
            push_scalar(out, scalar, false);
            close_tag(out, name, odd);
        }
    }
}

/// An object as one element: attributes first, in the order of their keys, then its text and
/// child elements in the order of theirs.
fn write_object(
    out: &mut String,
    name: &str,
    odd: bool,
    map: &Map<String, Value>,
    object: Option<&ObjectShape>,
) {
    open_tag(out, name, odd);
    // Attribute names already written: a repeated one would make the XML malformed, so a
    // colliding key is written as an element instead. An `eai-field` carries its key in `name`.
    let mut written: Vec<&str> = Vec::new();
    if odd || name.starts_with(ODD_KEY_ELEMENT) {
        written.push("name");
    }
    let mut attribute_entries: Vec<usize> = Vec::new();
    let attributes_possible = object.is_some_and(ObjectShape::has_attributes);
    for (index, (key, v)) in map.iter().enumerate() {
        if !(attributes_possible || key.starts_with(ATTRIBUTE_PREFIX)) {
            continue;
        }
        let property = object.and_then(|o| o.find(key));
        let attribute = match (property.map(|p| &p.xml), key.strip_prefix(ATTRIBUTE_PREFIX)) {
            (Some(XmlRole::Attribute(a)), _) => Some(a.as_str()),
            (None, Some(a)) if is_xml_name(a) => Some(a),
            _ => None,
        }
        .filter(|_| v.is_string() || v.is_number() || v.is_boolean());
        if let Some(a) = attribute
            && !written.contains(&a)
        {
            written.push(a);
            attribute_entries.push(index);
            write!(out, " {a}=\"").unwrap();
            push_scalar(out, v, true);
            out.push('"');
        }
    }
    out.push('>');
    let body_start = out.len();
    let mut has_text = false;
    for (index, (key, v)) in map.iter().enumerate() {
        if attribute_entries.contains(&index) {
            continue;
        }
        let property = object.and_then(|o| o.find(key));
        match property.map(|p| &p.xml) {
            Some(XmlRole::Text) => {
                has_text = true;
                push_scalar(out, v, false);
            }
            None if key == TEXT_KEY => {
                has_text = true;
                push_scalar(out, v, false);
            }
            _ => write_value(out, key, v, property.map_or(&ANY, |p| &p.shape)),
        }
    }
    if out.len() == body_start && !has_text {
        out.truncate(body_start - 1);
        out.push_str("/>");
    } else {
        close_tag(out, name, odd);
    }
}

/// `<name` or, for a key that is not an XML name, `<eai-field name="key"`.
fn open_tag(out: &mut String, name: &str, odd: bool) {
    out.push('<');
    if odd {
        out.push_str(ODD_KEY_ELEMENT);
        out.push_str(" name=\"");
        push_attr(out, name);
        out.push('"');
    } else {
        out.push_str(name);
    }
}

fn close_tag(out: &mut String, name: &str, odd: bool) {
    out.push_str("</");
    out.push_str(if odd { ODD_KEY_ELEMENT } else { name });
    out.push('>');
}

/// A scalar's text, escaped: strings as they are, numbers and booleans as JSON writes them, null
/// as nothing.
fn push_scalar(out: &mut String, value: &Value, attribute: bool) {
    match value {
        Value::String(s) => escape_into(out, s, attribute),
        Value::Null => {}
        // Number and boolean text never needs escaping.
        Value::Number(n) => write!(out, "{n}").unwrap(),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        other => escape_into(out, &other.to_string(), attribute),
    }
}

fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name
            .get(..3)
            .is_some_and(|head| head.eq_ignore_ascii_case("xml"))
}

fn push_text(out: &mut String, value: &str) {
    escape_into(out, value, false)
}

fn push_attr(out: &mut String, value: &str) {
    escape_into(out, value, true)
}

/// Escapes element text or an attribute value. Carriage returns go as references, which parsers
/// do not normalise; characters XML 1.0 cannot carry at all become U+FFFD.
fn escape_into(out: &mut String, value: &str, attribute: bool) {
    // Most values need nothing: no markup, no control character, no U+FFFE/U+FFFF (0xEF lead).
    if value
        .bytes()
        .all(|b| b >= 0x20 && !matches!(b, b'<' | b'>' | b'&' | b'"' | 0xEF))
    {
        out.push_str(value);
        return;
    }
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
}
