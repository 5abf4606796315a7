//! The standard message ("Mensagem Única"): header and content, read leniently from JSON or XML,
//! written exactly in either.

mod error;
mod header;
mod json;
mod json_content;
mod json_write;
pub mod response;
#[cfg(test)]
mod write_reference;
mod xml;
pub(crate) mod xml_tree;

pub use error::DecodeError;
pub use header::{DeliveryType, Event, Field, Header, MessageType};
pub use json::JsonStyle;
pub use response::{InternalIdPair, ResponseView};

use serde_json::Value;

use crate::schema::SchemaRegistry;

/// A standard message in canonical form: what eaibus keeps on its log.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: Header,
    pub content: Value,
}

impl Message {
    pub fn uuid(&self) -> &str {
        self.header.uuid()
    }

    pub fn transaction(&self) -> &str {
        self.header.transaction()
    }

    /// `{"Header": ..., "Content": ...}` in canonical form, as text: `to_json().to_string()`
    /// without copying the content first.
    pub fn canonical_json(&self) -> String {
        json_write::canonical(self)
    }

    /// `{"Header": ..., "Content": ...}` in canonical form.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::with_capacity(2);
        map.insert("Header".into(), self.header.to_json());
        map.insert("Content".into(), self.content.clone());
        Value::Object(map)
    }

    /// The value at a JSON pointer into Content, as text (numbers included).
    pub fn content_text(&self, pointer: &str) -> Option<String> {
        match self.content.pointer(pointer)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// The two wire forms of a standard message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }
}

/// Bounds on what a reader accepts, so that hostile input costs bounded memory and time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Protheus lets AppServer strings grow to about 30 MB; real messages stay far below 8 MiB
        // (an NF-e XML in base64 is tens of kilobytes).
        Limits {
            max_bytes: 8 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Reads and writes messages, guided by the schemas.
#[derive(Debug, Clone, Copy)]
pub struct Codec<'a> {
    pub registry: &'a SchemaRegistry,
    pub limits: Limits,
}

impl<'a> Codec<'a> {
    pub fn new(registry: &'a SchemaRegistry) -> Self {
        Codec {
            registry,
            limits: Limits::default(),
        }
    }

    /// Which form a payload is in, from its first significant byte.
    pub fn detect(&self, bytes: &[u8]) -> Result<Format, DecodeError> {
        let bytes = strip_bom(bytes);
        match bytes.iter().position(|b| !b.is_ascii_whitespace()) {
            None => Err(DecodeError::Empty),
            Some(i) => match bytes[i] {
                b'{' => Ok(Format::Json),
                b'<' => Ok(Format::Xml),
                other => Err(DecodeError::structure(
                    "",
                    format!(
                        "expected a JSON object ('{{') or an XML TOTVSMessage ('<') at byte {i}, found {}",
                        describe_byte(other)
                    ),
                )),
            },
        }
    }

    /// Reads a message in either form.
    pub fn decode(&self, bytes: &[u8]) -> Result<(Message, Format), DecodeError> {
        self.check_size(bytes)?;
        match self.detect(bytes)? {
            Format::Json => self.decode_json(bytes).map(|m| (m, Format::Json)),
            Format::Xml => self.decode_xml(bytes).map(|m| (m, Format::Xml)),
        }
    }

    pub fn decode_json(&self, bytes: &[u8]) -> Result<Message, DecodeError> {
        self.check_size(bytes)?;
        json::decode(self, strip_bom(bytes))
    }

    /// The header of a message in canonical JSON form (see `json::decode_header`).
    pub fn decode_json_header(&self, bytes: &[u8]) -> Result<Header, DecodeError> {
        self.check_size(bytes)?;
        let text = std::str::from_utf8(strip_bom(bytes)).map_err(|e| DecodeError::Encoding {
            encoding: "UTF-8".into(),
            offset: e.valid_up_to(),
            reason: "JSON messages must be UTF-8".into(),
        })?;
        json::decode_header(self, text)
    }

    pub fn decode_xml(&self, bytes: &[u8]) -> Result<Message, DecodeError> {
        self.check_size(bytes)?;
        xml::decode(self, strip_bom(bytes))
    }

    pub fn encode(&self, message: &Message, format: Format) -> Vec<u8> {
        match format {
            Format::Json => self.to_json(message, JsonStyle::Canonical).into_bytes(),
            Format::Xml => self.to_xml(message).into_bytes(),
        }
    }

    pub fn to_json(&self, message: &Message, style: JsonStyle) -> String {
        json::encode(self, message, style)
    }

    pub fn to_xml(&self, message: &Message) -> String {
        xml::encode(self, message)
    }

    fn check_size(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        if bytes.len() > self.limits.max_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_bytes,
            });
        }
        if strip_bom(bytes).iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::Empty);
        }
        Ok(())
    }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}
