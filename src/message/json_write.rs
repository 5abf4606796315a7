//! Writes the JSON form straight from a message, without first copying it into a
//! `serde_json::Value`: the same text `Message::to_json().to_string()` gives, byte for byte.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::header::{Field, Header};
use super::{Codec, Message};
use crate::schema::Shape;

/// `{"Header": ..., "Content": ...}` in canonical form.
pub(super) fn canonical(message: &Message) -> String {
    let envelope = Envelope {
        header: &message.header,
        content: Laid {
            value: &message.content,
            shape: &ANY,
            event: None,
        },
    };
    serde_json::to_string(&envelope).expect("a message always serialises")
}

/// The layout a Protheus adapter reads (see `JsonStyle::Protheus`): no XML-only header fields,
/// wrapper objects for the lists it reads that way, `Event` repeated inside Content.
pub(super) fn protheus(codec: &Codec<'_>, message: &Message) -> String {
    let mut header = message.header.clone();
    header.remove(Field::Entity);
    header.remove(Field::Operation);
    header.identification.clear();
    let shape = codec.registry.content_shape(&message.header);
    let event = match (
        header.get(Field::Event),
        shape.as_object(),
        &message.content,
    ) {
        (Some(event), Some(object), Value::Object(map)) => object
            .find("Event")
            .filter(|_| !map.keys().any(|k| k.eq_ignore_ascii_case("Event")))
            .map(|property| (property.name.as_str(), event)),
        _ => None,
    };
    let envelope = Envelope {
        header: &header,
        content: Laid {
            value: &message.content,
            shape: &shape,
            event,
        },
    };
    serde_json::to_string(&envelope).expect("a message always serialises")
}

/// A property without a schema: written as it is.
static ANY: Shape = Shape::Any;

struct Envelope<'a> {
    header: &'a Header,
    content: Laid<'a>,
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        if writes_plainly(self.header) {
            map.serialize_entry("Header", &HeaderFields(self.header))?;
        } else {
            map.serialize_entry("Header", &self.header.to_json())?;
        }
        map.serialize_entry("Content", &self.content)?;
        map.end()
    }
}

/// Whether the header's members are all distinct as written, so that writing them one after the
/// other gives what `Header::to_json` gives. A field the standard does not name but spelled like
/// one (`"UUID": {...}` next to `"uuid": "x"`), or an Identification key given twice, replaces a
/// member there: such a header goes through `Header::to_json`.
fn writes_plainly(header: &Header) -> bool {
    let extra_collides = header.extra.keys().any(|k| {
        k == "Identification"
            || Field::ALL
                .iter()
                .any(|f| f.name() == k && header.get(*f).is_some())
    });
    let keys = &header.identification;
    let keys_repeat = keys
        .iter()
        .enumerate()
        .any(|(i, (name, _))| keys[..i].iter().any(|(other, _)| other == name));
    !extra_collides && !keys_repeat
}

/// The header as `Header::to_json` lays it out.
struct HeaderFields<'a>(&'a Header);

impl Serialize for HeaderFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let header = self.0;
        let mut map = serializer.serialize_map(None)?;
        for (field, value) in header.fields() {
            map.serialize_entry(field.name(), value)?;
        }
        if !header.identification.is_empty() {
            map.serialize_entry("Identification", &Identification(&header.identification))?;
        }
        for (key, value) in &header.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

struct Identification<'a>(&'a [(String, String)]);

impl Serialize for Identification<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A value laid out by its shape: lists the shape marks `x-eai-wrapper` inside their wrapper
/// object, and `event` appended to the top-level object. With `Shape::Any` it is the value as is.
struct Laid<'a> {
    value: &'a Value,
    shape: &'a Shape,
    event: Option<(&'a str, &'a str)>,
}

impl Serialize for Laid<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.shape, self.value) {
            (Shape::Object(object), Value::Object(members)) => {
                let mut map = serializer.serialize_map(None)?;
                for (key, value) in members {
                    let shape = object.find(key).map_or(&ANY, |p| &p.shape);
                    map.serialize_entry(
                        key,
                        &Laid {
                            value,
                            shape,
                            event: None,
                        },
                    )?;
                }
                if let Some((name, event)) = self.event {
                    map.serialize_entry(name, event)?;
                }
                map.end()
            }
            (Shape::Array(array), Value::Array(items)) => {
                let list = Items {
                    items,
                    shape: &array.item,
                };
                match (&array.xml_item, array.wrapper) {
                    (Some(item), true) => {
                        let mut map = serializer.serialize_map(Some(1))?;
                        map.serialize_entry(item, &list)?;
                        map.end()
                    }
                    _ => list.serialize(serializer),
                }
            }
            (_, value) => value.serialize(serializer),
        }
    }
}

struct Items<'a> {
    items: &'a [Value],
    shape: &'a Shape,
}

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(|value| Laid {
            value,
            shape: self.shape,
            event: None,
        }))
    }
}
