//! The JSON form `{"Header": {...}, "Content": {...}}` (REST binding, protocol §3).

use serde_json::{Map, Value};

use super::error::DecodeError;
use super::header::{Field, Header, MessageType};
use super::{Codec, Message, json_write};

/// How to write JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// Plain arrays, typed numbers: the form kept on the log.
    Canonical,
    /// The shape the Protheus adapter of the transaction reads (protocol §3.4, §10.4): wrapper
    /// objects for the lists it reads that way, `Event` repeated inside Content where the
    /// transaction has that field, and no XML-only header fields.
    Protheus,
}

pub(super) fn decode(codec: &Codec<'_>, bytes: &[u8]) -> Result<Message, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Encoding {
        encoding: "UTF-8".into(),
        offset: e.valid_up_to(),
        reason: "JSON messages must be UTF-8".into(),
    })?;
    if let Some(message) = super::json_content::read(codec, text) {
        return Ok(message);
    }
    decode_plain(codec, text)
}

/// Parses, then normalises: the definition of what the JSON reader accepts and how it reads it.
/// `json_content::read` gives the same result in one pass for the inputs it settles.
pub(super) fn decode_plain(codec: &Codec<'_>, text: &str) -> Result<Message, DecodeError> {
    check_depth(text, codec.limits.max_depth)?;
    let value: Value = serde_json::from_str(text).map_err(syntax_error)?;
    let Value::Object(top) = value else {
        return Err(DecodeError::structure(
            "",
            "expected a JSON object with Header and Content",
        ));
    };
    from_top_level(codec, top)
}

/// Builds a message from an already parsed `{Header, Content}` object (batch items, Kafka).
pub(crate) fn from_top_level(
    codec: &Codec<'_>,
    top: Map<String, Value>,
) -> Result<Message, DecodeError> {
    let mut header = None;
    let mut content = None;
    for (key, value) in top {
        if key.eq_ignore_ascii_case("Header") {
            if header.replace(value).is_some() {
                return Err(DecodeError::structure(
                    format!("/{}", escape_pointer(&key)),
                    "Header is given twice",
                ));
            }
        } else if key.eq_ignore_ascii_case("Content") {
            if content.replace(value).is_some() {
                return Err(DecodeError::structure(
                    format!("/{}", escape_pointer(&key)),
                    "Content is given twice",
                ));
            }
        } else if key.eq_ignore_ascii_case("Items") {
            return Err(DecodeError::structure(
                "/Items",
                "this is a batch; post it with ?batchType= to the transactions endpoint",
            ));
        } else {
            return Err(DecodeError::structure(
                format!("/{}", escape_pointer(&key)),
                "unexpected member: a standard message has only Header and Content",
            ));
        }
    }
    let header = match header {
        Some(Value::Object(map)) => Header::from_json(map),
        Some(_) => {
            return Err(DecodeError::structure(
                "/Header",
                "Header must be an object",
            ));
        }
        None => return Err(DecodeError::structure("/Header", "Header is missing")),
    };
    let Some(content) = content else {
        return Err(DecodeError::structure("/Content", "Content is missing"));
    };
    let header = complete_header(codec, header);
    let content = codec.registry.content_shape(&header).normalize(content);
    Ok(Message { header, content })
}

/// The header of a message in canonical form (as eaibus writes it to its log), without
/// building its content: the content is only checked to be well-formed JSON. Route workers
/// decide from the header alone whether, and along which adapter, a record goes.
pub(super) fn decode_header(codec: &Codec<'_>, text: &str) -> Result<Header, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "Header")]
        header: Map<String, Value>,
        #[serde(rename = "Content")]
        _content: serde::de::IgnoredAny,
    }
    let envelope: Envelope = serde_json::from_str(text).map_err(syntax_error)?;
    Ok(complete_header(codec, Header::from_json(envelope.header)))
}

/// Fills what the structure implies, so that JSON and XML readers agree on one canonical header:
/// a missing Type is a BusinessMessage, and a business message is an event unless it is a request.
pub(super) fn complete_header(codec: &Codec<'_>, mut header: Header) -> Header {
    if header.get(Field::Type).is_none() {
        header.set(Field::Type, "BusinessMessage");
    }
    if header.message_type() == MessageType::BusinessMessage && header.get(Field::SubType).is_none()
    {
        let sub_type = match (header.get(Field::Event), codec.registry.for_header(&header)) {
            (Some(_), _) => "event".to_owned(),
            (None, Some(schema)) => schema.sub_type.clone(),
            (None, None) => "event".to_owned(),
        };
        header.set(Field::SubType, sub_type);
    }
    header
}

pub(super) fn encode(codec: &Codec<'_>, message: &Message, style: JsonStyle) -> String {
    match style {
        JsonStyle::Canonical => json_write::canonical(message),
        JsonStyle::Protheus => json_write::protheus(codec, message),
    }
}

/// Refuses nesting deeper than `limit` before parsing, with the position where it happens, so
/// the JSON and XML readers accept the same depth.
fn check_depth(text: &str, limit: usize) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, byte) in text.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    let (line, column) = super::error::line_column(text, offset);
                    return Err(DecodeError::TooDeep {
                        limit,
                        line,
                        column,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn syntax_error(e: serde_json::Error) -> DecodeError {
    let reason = e.to_string();
    if reason.contains("recursion limit") {
        return DecodeError::TooDeep {
            limit: 128,
            line: e.line(),
            column: e.column(),
        };
    }
    let reason = match e.classify() {
        serde_json::error::Category::Eof => "the message ends too early (truncated?)".to_owned(),
        _ => strip_position(&reason),
    };
    DecodeError::Syntax {
        format: "JSON",
        line: e.line(),
        // serde_json says column 0 for "before the first character of the line".
        column: e.column().max(1),
        reason,
    }
}

/// serde_json appends " at line L column C"; the error carries those separately.
fn strip_position(reason: &str) -> String {
    match reason.rfind(" at line ") {
        Some(i) => reason[..i].to_owned(),
        None => reason.to_owned(),
    }
}

pub(crate) fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
