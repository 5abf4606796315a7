//! The shape of a message's content, read from its JSON Schema: which fields are numbers, booleans,
//! lists or objects, how each is spelled, and how it is laid out in XML. Readers use it to turn
//! what senders really send into the canonical form; writers use it to lay out XML and the JSON
//! that Protheus adapters expect.

use std::sync::Arc;

use foldhash::HashMap;

use serde_json::{Map, Number, Value};

/// How one value is typed and laid out.
#[derive(Debug, Clone, Default)]
pub enum Shape {
    /// Unknown or mixed type: kept as it comes.
    #[default]
    Any,
    Text,
    Number,
    Integer,
    Boolean,
    Object(Arc<ObjectShape>),
    Array(Arc<ArrayShape>),
}

/// An object's properties in schema order, found by exact or case-insensitive name.
#[derive(Debug, Default)]
pub struct ObjectShape {
    pub properties: Vec<Property>,
    exact: HashMap<String, usize>,
    folded: HashMap<String, usize>,
    has_attributes: bool,
}

#[derive(Debug)]
pub struct Property {
    pub name: String,
    pub shape: Shape,
    pub xml: XmlRole,
}

/// Where a property sits in the XML form of its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlRole {
    Element,
    Attribute(String),
    Text,
}

#[derive(Debug)]
pub struct ArrayShape {
    pub item: Shape,
    /// Name of the repeated child element inside the wrapper element, when XML wraps the list.
    pub xml_item: Option<String>,
    /// Protheus JSON adapters read and write this list as `{xml_item: [...]}`.
    pub wrapper: bool,
}

impl ObjectShape {
    pub fn new(properties: Vec<Property>) -> Self {
        let mut exact = HashMap::with_capacity_and_hasher(properties.len(), Default::default());
        let mut folded = HashMap::with_capacity_and_hasher(properties.len(), Default::default());
        for (i, p) in properties.iter().enumerate() {
            exact.insert(p.name.clone(), i);
            folded.entry(p.name.to_lowercase()).or_insert(i);
        }
        let has_attributes = properties
            .iter()
            .any(|p| matches!(p.xml, XmlRole::Attribute(_)));
        ObjectShape {
            properties,
            exact,
            folded,
            has_attributes,
        }
    }

    /// The property a key names, in any case.
    pub fn find(&self, key: &str) -> Option<&Property> {
        let index = match self.exact.get(key) {
            Some(i) => Some(*i),
            None => self.find_folded(key),
        };
        index.map(|i| &self.properties[i])
    }

    /// Case-insensitive lookup; an ASCII key is folded on the stack, as almost all keys are.
    fn find_folded(&self, key: &str) -> Option<usize> {
        const SHORT: usize = 64;
        if key.is_ascii() && key.len() <= SHORT {
            let mut buffer = [0u8; SHORT];
            let folded = &mut buffer[..key.len()];
            folded.copy_from_slice(key.as_bytes());
            folded.make_ascii_lowercase();
            let folded = std::str::from_utf8(folded).ok()?;
            return self.folded.get(folded).copied();
        }
        self.folded.get(&key.to_lowercase()).copied()
    }

    /// How many members to make room for when reading an object of this shape: senders fill
    /// only some of the properties of the larger schemas.
    pub fn expected_members(&self) -> usize {
        self.properties.len().min(32)
    }

    pub fn text_property(&self) -> Option<&Property> {
        self.properties.iter().find(|p| p.xml == XmlRole::Text)
    }

    /// Whether any property is carried as an XML attribute.
    pub fn has_attributes(&self) -> bool {
        self.has_attributes
    }

    pub fn attribute_property(&self, attribute: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| matches!(&p.xml, XmlRole::Attribute(a) if a.eq_ignore_ascii_case(attribute)))
    }
}

/// Nested `$ref`s deeper than this are treated as `Any` (a recursive schema would never end).
const MAX_REF_DEPTH: usize = 24;

impl Shape {
    /// Reads the shape of `schema`, resolving `#/$defs/...` and `#/definitions/...` in `root`.
    pub fn from_schema(schema: &Value, root: &Value) -> Shape {
        build(schema, root, 0)
    }

    pub fn as_object(&self) -> Option<&ObjectShape> {
        match self {
            Shape::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Turns a value as a lenient reader finds it into its canonical form: keys spelled as in the
    /// schema, lists as arrays, numbers and booleans typed. Values that cannot be converted are
    /// left alone so that validation reports them with their pointer.
    pub fn normalize(&self, value: Value) -> Value {
        match (self, value) {
            (Shape::Any, v) => v,
            (Shape::Text, Value::Number(n)) => Value::String(n.to_string()),
            (Shape::Text, Value::Bool(b)) => Value::String(b.to_string()),
            (Shape::Number, Value::String(s)) => match parse_number(&s) {
                Some(n) => Value::Number(n),
                None => Value::String(s),
            },
            (Shape::Integer, Value::String(s)) => match parse_number(&s) {
                Some(n) if n.is_i64() || n.is_u64() => Value::Number(n),
                _ => Value::String(s),
            },
            (Shape::Boolean, Value::String(s)) => match parse_bool(&s) {
                Some(b) => Value::Bool(b),
                None => Value::String(s),
            },
            (Shape::Object(o), Value::Object(map)) => Value::Object(o.normalize_map(map)),
            (Shape::Array(a), v) => a.normalize(v),
            (_, v) => v,
        }
    }
}

impl ObjectShape {
    /// Normalises the values in place; the map is rebuilt only when a key must be respelled,
    /// which keeps the common case (keys already canonical) to one pass without rehashing.
    pub fn normalize_map(&self, mut map: Map<String, Value>) -> Map<String, Value> {
        let mut respell = false;
        for (key, value) in map.iter_mut() {
            let Some(p) = self.find(key) else {
                continue;
            };
            respell |= p.name != *key;
            *value = p.shape.normalize(std::mem::take(value));
        }
        if !respell {
            return map;
        }
        map.into_iter()
            .map(|(key, value)| match self.find(&key) {
                Some(p) => (p.name.clone(), value),
                None => (key, value),
            })
            .collect()
    }
}

impl ArrayShape {
    /// A list in any of the forms senders write it (see `Shape::normalize`) as a plain array.
    pub(crate) fn normalize(&self, value: Value) -> Value {
        let items = match value {
            Value::Array(items) => items,
            // Protheus writes an empty list as an empty wrapper: `"ListOfApportionCost": {}`.
            Value::Object(map) if map.is_empty() => Vec::new(),
            Value::Object(map) => match self.unwrap(map) {
                Ok(inner) => return self.normalize(inner),
                Err(map) => vec![Value::Object(map)],
            },
            Value::Null => return Value::Null,
            Value::String(s) if s.trim().is_empty() && !matches!(self.item, Shape::Text) => {
                Vec::new()
            }
            // A lone value is a one-item list only where items are values, not objects.
            other if !matches!(self.item, Shape::Object(_) | Shape::Array(_)) => vec![other],
            other => return other,
        };
        Value::Array(items.into_iter().map(|v| self.item.normalize(v)).collect())
    }

    /// A wrapper object `{"SaleItem": [...]}` holds the list under one key: the XML item name,
    /// in any case, or any single key whose value is itself a list.
    fn unwrap(&self, mut map: Map<String, Value>) -> Result<Value, Map<String, Value>> {
        if map.len() != 1 {
            return Err(map);
        }
        let key = map.keys().next().cloned().unwrap_or_default();
        let names_item = self
            .xml_item
            .as_deref()
            .is_some_and(|item| item.eq_ignore_ascii_case(&key));
        let names_property = match &self.item {
            Shape::Object(o) => o.find(&key).is_some(),
            _ => false,
        };
        let inner = map.get(&key);
        let holds_list = matches!(inner, Some(Value::Array(_)));
        let holds_items = matches!(inner, Some(Value::Array(_) | Value::Object(_)));
        if (names_item && holds_items) || (holds_list && !names_property) {
            Ok(map.remove(&key).unwrap_or(Value::Null))
        } else {
            Err(map)
        }
    }
}

/// A number as senders write it: a JSON number's text, or a numeric string with a decimal comma.
pub fn parse_number(text: &str) -> Option<Number> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    let owned;
    let t = if t.contains(',') {
        if t.contains('.') || t.matches(',').count() > 1 {
            return None;
        }
        owned = t.replace(',', ".");
        owned.as_str()
    } else {
        t
    };
    let t = t.strip_prefix('+').unwrap_or(t);
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || b"-.eE+".contains(&b))
    {
        return None;
    }
    if !t.contains(['.', 'e', 'E']) {
        if let Ok(i) = t.parse::<i64>() {
            return Some(Number::from(i));
        }
        if let Ok(u) = t.parse::<u64>() {
            return Some(Number::from(u));
        }
    }
    t.parse::<f64>().ok().and_then(Number::from_f64)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | ".t." => Some(true),
        "false" | ".f." => Some(false),
        _ => None,
    }
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> Option<&'a Value> {
    let reference = schema.get("$ref")?.as_str()?;
    let path = reference.strip_prefix('#')?;
    root.pointer(path)
}

fn build(schema: &Value, root: &Value, depth: usize) -> Shape {
    if depth > MAX_REF_DEPTH {
        return Shape::Any;
    }
    if let Some(target) = resolve(schema, root) {
        return build(target, root, depth + 1);
    }
    let declared = schema.get("type").and_then(Value::as_str);
    match declared {
        Some("string") => Shape::Text,
        Some("number") => Shape::Number,
        Some("integer") => Shape::Integer,
        Some("boolean") => Shape::Boolean,
        Some("array") => build_array(schema, root, depth),
        Some("object") => build_object(schema, root, depth),
        Some(_) => Shape::Any,
        None if schema.get("properties").is_some() => build_object(schema, root, depth),
        None if schema.get("items").is_some() => build_array(schema, root, depth),
        None => Shape::Any,
    }
}

fn build_array(schema: &Value, root: &Value, depth: usize) -> Shape {
    let item = schema
        .get("items")
        .map_or(Shape::Any, |items| build(items, root, depth + 1));
    Shape::Array(Arc::new(ArrayShape {
        item,
        xml_item: schema
            .get("x-eai-item")
            .and_then(Value::as_str)
            .map(str::to_owned),
        wrapper: schema
            .get("x-eai-wrapper")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }))
}

fn build_object(schema: &Value, root: &Value, depth: usize) -> Shape {
    let mut properties: Vec<Property> = Vec::new();
    let mut add = |name: &str, spec: &Value| {
        if properties.iter().any(|p| p.name == name) {
            return;
        }
        let target = resolve(spec, root).unwrap_or(spec);
        let xml = match target.get("x-eai-xml").or_else(|| spec.get("x-eai-xml")) {
            Some(Value::String(s)) if s == "text" => XmlRole::Text,
            Some(Value::Object(o)) => match o.get("attribute").and_then(Value::as_str) {
                Some(a) => XmlRole::Attribute(a.to_owned()),
                None => XmlRole::Element,
            },
            _ => XmlRole::Element,
        };
        properties.push(Property {
            name: name.to_owned(),
            shape: build(spec, root, depth + 1),
            xml,
        });
    };
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, spec) in props {
            add(name, spec);
        }
    }
    // Properties declared inside allOf/anyOf/oneOf branches belong to the same object.
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(combinator) {
            for branch in branches {
                let branch = resolve(branch, root).unwrap_or(branch);
                if let Some(Value::Object(props)) = branch.get("properties") {
                    for (name, spec) in props {
                        add(name, spec);
                    }
                }
            }
        }
    }
    Shape::Object(Arc::new(ObjectShape::new(properties)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sale_shape() -> Shape {
        let schema = json!({
            "type": "object",
            "properties": {
                "InternalId": {"type": "string"},
                "TotalPrice": {"type": "number"},
                "IsCanceled": {"type": "boolean"},
                "ListOfSaleItem": {
                    "type": "array", "x-eai-item": "SaleItem", "x-eai-wrapper": true,
                    "items": {"$ref": "#/$defs/SaleItem"}
                }
            },
            "$defs": {"SaleItem": {"type": "object", "properties": {
                "ItemCode": {"type": "string"}, "Quantity": {"type": "number"}
            }}}
        });
        Shape::from_schema(&schema, &schema)
    }

    #[test]
    fn normalizes_case_wrappers_and_numeric_strings() {
        let input = json!({
            "internalid": 123,
            "TOTALPRICE": "10,5",
            "isCanceled": "false",
            "listofsaleitem": {"saleitem": [{"itemcode": "P1", "quantity": "2"}]},
            "Extra": "kept"
        });
        let out = sale_shape().normalize(input);
        assert_eq!(
            out,
            json!({
                "InternalId": "123",
                "TotalPrice": 10.5,
                "IsCanceled": false,
                "ListOfSaleItem": [{"ItemCode": "P1", "Quantity": 2}],
                "Extra": "kept"
            })
        );
    }

    #[test]
    fn a_single_object_where_a_list_is_expected_becomes_a_list() {
        let out =
            sale_shape().normalize(json!({"ListOfSaleItem": {"SaleItem": {"ItemCode": "P1"}}}));
        assert_eq!(out, json!({"ListOfSaleItem": [{"ItemCode": "P1"}]}));
        let out = sale_shape().normalize(json!({"ListOfSaleItem": {"ItemCode": "P1"}}));
        assert_eq!(out, json!({"ListOfSaleItem": [{"ItemCode": "P1"}]}));
    }

    #[test]
    fn values_that_do_not_convert_are_left_for_validation() {
        let out = sale_shape().normalize(json!({"TotalPrice": "abc", "IsCanceled": "maybe"}));
        assert_eq!(out, json!({"TotalPrice": "abc", "IsCanceled": "maybe"}));
    }

    #[test]
    fn parses_numbers_as_senders_write_them() {
        assert_eq!(parse_number("199.90"), Number::from_f64(199.9));
        assert_eq!(parse_number(" 10,5 "), Number::from_f64(10.5));
        assert_eq!(parse_number("7"), Some(Number::from(7)));
        assert_eq!(parse_number("1.234,5"), None);
        assert_eq!(parse_number("12abc"), None);
        assert_eq!(parse_number(""), None);
    }
}
