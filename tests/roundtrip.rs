//! Property tests: any message the schemas describe survives JSON → XML → JSON and
//! XML → JSON → XML unchanged, for every transaction and version.

use eaibus::message::{Codec, Field, Header, JsonStyle, Message};
use eaibus::schema::shape::Shape;
use eaibus::schema::{SchemaRegistry, TransactionSchema};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

fn text() -> BoxedStrategy<String> {
    // Letters, digits, Portuguese accents, the pipe of InternalIds, markup characters and line
    // breaks: everything a field may carry that XML must escape or keep.
    "[a-zA-Z0-9 àáâãçéêíóôõúÀÇÉÕ|&<>\"'.,;:/_\\-\n\r\t]{0,16}".boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        (-1.0e12f64..1.0e12).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u32..100_000).prop_map(|c| Number::from_f64(f64::from(c) / 100.0).map_or(Value::Null, Value::Number)),
    ]
    .boxed()
}

fn value(shape: &Shape, depth: usize) -> BoxedStrategy<Value> {
    match shape {
        Shape::Any | Shape::Text => text().prop_map(Value::String).boxed(),
        Shape::Number => number(),
        Shape::Integer => any::<i32>().prop_map(|i| Value::Number(i.into())).boxed(),
        Shape::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
        Shape::Array(array) => {
            if depth > 6 {
                return Just(Value::Array(Vec::new())).boxed();
            }
            // A list XML repeats without a wrapper cannot say "empty", so it has one item at least.
            let min = usize::from(array.xml_item.is_none());
            prop::collection::vec(value(&array.item, depth + 1), min..3)
                .prop_map(Value::Array)
                .boxed()
        }
        Shape::Object(object) => {
            if depth > 6 {
                return Just(Value::Object(Map::new())).boxed();
            }
            let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = object
                .properties
                .iter()
                .map(|p| {
                    let name = p.name.clone();
                    prop::option::weighted(0.4, value(&p.shape, depth + 1))
                        .prop_map(move |v| v.map(|v| (name.clone(), v)))
                        .boxed()
                })
                .collect();
            fields
                .prop_map(|pairs| Value::Object(pairs.into_iter().flatten().collect()))
                .boxed()
        }
    }
}

fn header(schema: &TransactionSchema) -> BoxedStrategy<Header> {
    let name = schema.name.to_ascii_uppercase();
    let version = schema.version.clone();
    let request = schema.sub_type == "request";
    (
        "[a-f0-9]{8}-[a-f0-9]{4}",
        prop::option::of("[A-Z0-9 ]{1,8}"),
        prop_oneof![Just("upsert"), Just("delete")],
        prop::option::of(prop_oneof![Just("Sync"), Just("Async")]),
    )
        .prop_map(move |(uuid, branch, event, delivery)| {
            let mut h = Header::default();
            h.set(Field::Uuid, uuid);
            h.set(Field::Type, "BusinessMessage");
            if request {
                h.set(Field::SubType, "request");
            } else {
                h.set(Field::SubType, "event");
                h.set(Field::Event, event);
            }
            h.set(Field::Transaction, name.clone());
            h.set(Field::Version, version.clone());
            h.set(Field::StandardVersion, "1.000");
            h.set(Field::SourceApplication, "OMNI");
            if let Some(b) = branch {
                h.set(Field::BranchId, b);
            }
            h.set(Field::ProductName, "OMNI");
            h.set(Field::ProductVersion, "1.0");
            if let Some(d) = delivery {
                h.set(Field::DeliveryType, d);
            }
            h
        })
        .boxed()
}

fn messages(registry: &SchemaRegistry) -> BoxedStrategy<Message> {
    let per_schema: Vec<BoxedStrategy<Message>> = registry
        .all()
        .into_iter()
        .map(|schema| {
            (header(schema), value(&schema.content, 0))
                .prop_map(|(header, content)| Message { header, content })
                .boxed()
        })
        .collect();
    prop::strategy::Union::new(per_schema).boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn json_to_xml_to_json_is_lossless(message in messages(&SchemaRegistry::embedded().unwrap())) {
        let registry = SchemaRegistry::embedded().unwrap();
        let codec = Codec::new(&registry);
        let json = codec.to_json(&message, JsonStyle::Canonical);
        let a = codec.decode_json(json.as_bytes()).unwrap();
        prop_assert_eq!(&a, &message);
        let xml = codec.to_xml(&a);
        let b = codec.decode_xml(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(&b, &a, "through {}", xml);
        let again = codec.decode_json(codec.to_json(&b, JsonStyle::Canonical).as_bytes()).unwrap();
        prop_assert_eq!(&again, &a);
        // And from the XML side: XML → JSON → XML writes the same document.
        prop_assert_eq!(codec.to_xml(&again), xml);
    }

    #[test]
    fn protheus_layout_reads_back_to_the_same_lists(message in messages(&SchemaRegistry::embedded().unwrap())) {
        let registry = SchemaRegistry::embedded().unwrap();
        let codec = Codec::new(&registry);
        let text = codec.to_json(&message, JsonStyle::Protheus);
        let back = codec.decode_json(text.as_bytes()).unwrap();
        let (Value::Object(original), Value::Object(read)) = (&message.content, &back.content) else {
            return Ok(());
        };
        for (key, value) in original {
            prop_assert_eq!(Some(value), read.get(key), "field {}", key);
        }
    }
}
