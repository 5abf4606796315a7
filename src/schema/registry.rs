use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

use super::shape::{ObjectShape, Property, Shape, XmlRole};
use crate::message::{Header, Message, MessageType};

/// The schemas compiled into the binary, so that it runs from any directory.
const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_schemas.rs"));

/// One failing field: where (a JSON pointer into the canonical message) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pointer, self.reason)
    }
}

/// A schema file that cannot be used. Raised at load, never at first use.
#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: not valid JSON: {reason}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// One transaction at one version: its compiled validator and the shapes the codecs follow.
pub struct TransactionSchema {
    /// The name as the contract spells it (`RetailSales`).
    pub name: String,
    pub version: String,
    /// `event` or `request`.
    pub sub_type: String,
    /// JSON pointer into Content of the value that keys the message on the log.
    pub business_key: String,
    /// Content fields the XML `Identification` carries as `<key name="...">`.
    pub identification: Vec<String>,
    pub file: String,
    pub content: Shape,
    /// The whole Content of a response to this transaction, `ReturnContent` included.
    pub response: Shape,
    validator: jsonschema::Validator,
    return_validator: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for TransactionSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TransactionSchema({} {})", self.name, self.version)
    }
}

struct EnvelopeSchema {
    shape: Shape,
    validator: jsonschema::Validator,
}

/// All schemas, by upper-case transaction name and version.
pub struct SchemaRegistry {
    /// By transaction name in upper case, then version.
    transactions: foldhash::HashMap<String, BTreeMap<String, Arc<TransactionSchema>>>,
    header: EnvelopeSchema,
    response: EnvelopeSchema,
    receipt: EnvelopeSchema,
    response_object: Value,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("transactions", &self.transactions.len())
            .finish()
    }
}

impl SchemaRegistry {
    /// The schemas shipped in `schemas/`, compiled into the binary.
    pub fn embedded() -> Result<Self, SchemaError> {
        Self::from_sources(
            EMBEDDED
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        )
    }

    /// Every `*.json` file of `dir` and of `dir/envelope`.
    pub fn load_dir(dir: &Path) -> Result<Self, SchemaError> {
        let mut sources = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("envelope")] {
            let entries = std::fs::read_dir(&sub).map_err(|source| SchemaError::Io {
                path: sub.clone(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).map_err(|source| SchemaError::Io {
                    path: path.clone(),
                    source,
                })?;
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                sources.push((name, text));
            }
        }
        Self::from_sources(sources)
    }

    /// Builds the registry from `(file name, text)` pairs; envelope files live under `envelope/`.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SchemaError> {
        let mut envelope: HashMap<String, (String, Value)> = HashMap::new();
        let mut transaction_files = Vec::new();
        for (file, text) in sources {
            let value = parse(&file, &text)?;
            let base = Path::new(&file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if file.starts_with("envelope") {
                envelope.insert(base, (file, value));
            } else {
                transaction_files.push((file, value));
            }
        }
        let mut take = |name: &str| {
            envelope.remove(name).ok_or_else(|| SchemaError::Invalid {
                file: format!("envelope/{name}.json"),
                reason: "the envelope schema is missing".into(),
            })
        };
        let header = envelope_schema(take("Header_1_000")?)?;
        let (response_file, response_value) = take("Response_1_000")?;
        let response = envelope_schema((response_file, response_value.clone()))?;
        let receipt = envelope_schema(take("Receipt_1_000")?)?;

        let mut registry = SchemaRegistry {
            transactions: foldhash::HashMap::default(),
            header,
            response,
            receipt,
            response_object: response_value,
        };
        for (file, value) in transaction_files {
            let schema = registry.compile_transaction(file, value)?;
            let versions = registry
                .transactions
                .entry(schema.name.to_ascii_uppercase())
                .or_default();
            if let Some(existing) = versions.get(&schema.version) {
                return Err(SchemaError::Invalid {
                    file: schema.file.clone(),
                    reason: format!(
                        "{} {} is already defined by {}",
                        schema.name, schema.version, existing.file
                    ),
                });
            }
            versions.insert(schema.version.clone(), Arc::new(schema));
        }
        Ok(registry)
    }

    fn compile_transaction(
        &self,
        file: String,
        value: Value,
    ) -> Result<TransactionSchema, SchemaError> {
        let invalid = |reason: String| SchemaError::Invalid {
            file: file.clone(),
            reason,
        };
        let meta = value
            .get("x-eai")
            .ok_or_else(|| invalid("the root has no \"x-eai\" object".into()))?;
        let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_owned);
        let name =
            text("transaction").ok_or_else(|| invalid("x-eai.transaction is missing".into()))?;
        let version = text("version").ok_or_else(|| invalid("x-eai.version is missing".into()))?;
        if !is_version(&version) {
            return Err(invalid(format!("x-eai.version {version:?} is not M.mmm")));
        }
        let validator = compile(&file, &value)?;
        let return_schema = value.pointer("/$defs/ReturnContent").map(|r| {
            // A sub-schema keeps its $defs reachable by carrying the root's.
            let mut r = r.clone();
            if let (Value::Object(map), Some(defs)) = (&mut r, value.get("$defs")) {
                map.insert("$defs".into(), defs.clone());
                map.insert(
                    "$schema".into(),
                    Value::String("https://json-schema.org/draft/2020-12/schema".into()),
                );
            }
            r
        });
        let return_validator = match &return_schema {
            Some(r) => Some(compile(&file, r)?),
            None => None,
        };
        let return_shape = return_schema.as_ref().map(|r| Shape::from_schema(r, r));
        Ok(TransactionSchema {
            sub_type: text("subType").unwrap_or_else(|| "event".into()),
            business_key: text("businessKey").unwrap_or_default(),
            identification: meta
                .get("identification")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            content: Shape::from_schema(&value, &value),
            response: self.response_shape(return_shape),
            file,
            name,
            version,
            validator,
            return_validator,
        })
    }

    /// The envelope's response shape with the transaction's own `ReturnContent` in place.
    fn response_shape(&self, return_content: Option<Shape>) -> Shape {
        let base = Shape::from_schema(&self.response_object, &self.response_object);
        let (Some(ret), Some(object)) = (return_content, base.as_object()) else {
            return base;
        };
        let properties = object
            .properties
            .iter()
            .map(|p| Property {
                name: p.name.clone(),
                shape: if p.name == "ReturnContent" {
                    merge(&ret, &p.shape)
                } else {
                    p.shape.clone()
                },
                xml: p.xml.clone(),
            })
            .collect();
        Shape::Object(Arc::new(ObjectShape::new(properties)))
    }

    /// The schema of a transaction at a version; the transaction in any case.
    pub fn get(&self, transaction: &str, version: &str) -> Option<&Arc<TransactionSchema>> {
        self.versions_of(transaction)?.get(version)
    }

    /// The versions known for a transaction, oldest first.
    pub fn versions(&self, transaction: &str) -> Vec<&str> {
        self.versions_of(transaction)
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn versions_of(&self, transaction: &str) -> Option<&BTreeMap<String, Arc<TransactionSchema>>> {
        // Headers carry the name in upper case already: no copy then.
        if transaction.bytes().any(|b| b.is_ascii_lowercase()) {
            self.transactions.get(&transaction.to_ascii_uppercase())
        } else {
            self.transactions.get(transaction)
        }
    }

    /// Every transaction schema, by name then version.
    pub fn all(&self) -> Vec<&Arc<TransactionSchema>> {
        let mut all: Vec<_> = self
            .transactions
            .values()
            .flat_map(|v| v.values())
            .collect();
        all.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        all
    }

    /// The schema a header points at, if there is one.
    pub fn for_header(&self, header: &Header) -> Option<&Arc<TransactionSchema>> {
        self.get(header.transaction(), header.version()?)
    }

    /// The shape a message's Content follows, by its type, transaction and version.
    pub fn content_shape(&self, header: &Header) -> Shape {
        let schema = self.for_header(header);
        match header.message_type() {
            MessageType::BusinessMessage => schema.map_or(Shape::Any, |s| s.content.clone()),
            MessageType::Response => {
                schema.map_or_else(|| self.response.shape.clone(), |s| s.response.clone())
            }
            MessageType::Receipt => self.receipt.shape.clone(),
            MessageType::Unknown(_) => Shape::Any,
        }
    }

    /// Checks a decoded message: its header against the envelope schema, its Content against the
    /// schema of its transaction and version. Returns every failing field.
    pub fn validate(&self, message: &Message) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let header_json = message.header.to_json();
        collect(&self.header.validator, &header_json, "/Header", &mut errors);
        let header = &message.header;
        match header.message_type() {
            MessageType::BusinessMessage => match self.lookup(header) {
                Ok(schema) => collect(&schema.validator, &message.content, "/Content", &mut errors),
                Err(e) => errors.push(e),
            },
            MessageType::Response => {
                collect(
                    &self.response.validator,
                    &message.content,
                    "/Content",
                    &mut errors,
                );
                if let (Ok(schema), Some(ret)) =
                    (self.lookup(header), message.content.get("ReturnContent"))
                    && let Some(v) = &schema.return_validator
                {
                    collect(v, ret, "/Content/ReturnContent", &mut errors);
                }
            }
            MessageType::Receipt => collect(
                &self.receipt.validator,
                &message.content,
                "/Content",
                &mut errors,
            ),
            MessageType::Unknown(t) => errors.push(FieldError::new(
                "/Header/Type",
                format!(
                    "unknown message type {t:?}; expected BusinessMessage, Response or Receipt"
                ),
            )),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The schema for a header, or the field error that says why there is none.
    pub fn lookup(&self, header: &Header) -> Result<&Arc<TransactionSchema>, FieldError> {
        let transaction = header.transaction();
        if transaction.is_empty() {
            return Err(FieldError::new(
                "/Header/Transaction",
                "the transaction is missing",
            ));
        }
        if let Some(schema) = header.version().and_then(|v| self.get(transaction, v)) {
            return Ok(schema);
        }
        let versions = self.versions(transaction);
        if versions.is_empty() {
            return Err(FieldError::new(
                "/Header/Transaction",
                format!("unknown transaction {transaction:?}"),
            ));
        }
        let Some(version) = header.version() else {
            return Err(FieldError::new(
                "/Header/Version",
                format!("the version is missing (known: {})", versions.join(", ")),
            ));
        };
        self.get(transaction, version).ok_or_else(|| {
            FieldError::new(
                "/Header/Version",
                format!(
                    "{transaction} has no version {version:?} (known: {})",
                    versions.join(", ")
                ),
            )
        })
    }
}

fn is_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 5
        && b[1] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 1 || c.is_ascii_digit())
}

/// Lists of a response's `ReturnContent` from the transaction, the rest from the envelope.
fn merge(primary: &Shape, fallback: &Shape) -> Shape {
    let (Some(p), Some(f)) = (primary.as_object(), fallback.as_object()) else {
        return primary.clone();
    };
    let mut properties: Vec<Property> = p
        .properties
        .iter()
        .map(|x| Property {
            name: x.name.clone(),
            shape: x.shape.clone(),
            xml: x.xml.clone(),
        })
        .collect();
    for x in &f.properties {
        if p.find(&x.name).is_none() {
            properties.push(Property {
                name: x.name.clone(),
                shape: x.shape.clone(),
                xml: XmlRole::Element,
            });
        }
    }
    Shape::Object(Arc::new(ObjectShape::new(properties)))
}

fn parse(file: &str, text: &str) -> Result<Value, SchemaError> {
    serde_json::from_str(text).map_err(|e| SchemaError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })
}

fn compile(file: &str, schema: &Value) -> Result<jsonschema::Validator, SchemaError> {
    jsonschema::validator_for(schema).map_err(|e| SchemaError::Invalid {
        file: file.to_owned(),
        reason: format!("does not compile: {e}"),
    })
}

fn envelope_schema((file, value): (String, Value)) -> Result<EnvelopeSchema, SchemaError> {
    Ok(EnvelopeSchema {
        validator: compile(&file, &value)?,
        shape: Shape::from_schema(&value, &value),
    })
}

/// Longest reason kept: a failing value is described, never echoed whole.
const MAX_REASON: usize = 240;

fn collect(
    validator: &jsonschema::Validator,
    instance: &Value,
    prefix: &str,
    out: &mut Vec<FieldError>,
) {
    // Valid messages are the rule: the quick yes/no first, the detailed walk only for a no.
    if validator.is_valid(instance) {
        return;
    }
    for error in validator.iter_errors(instance) {
        let mut reason = error.masked().to_string();
        if reason.len() > MAX_REASON {
            let cut = (0..=MAX_REASON)
                .rev()
                .find(|i| reason.is_char_boundary(*i))
                .unwrap_or(0);
            reason.truncate(cut);
            reason.push('…');
        }
        out.push(FieldError::new(
            format!("{prefix}{}", error.instance_path()),
            reason,
        ));
    }
}
