//! Send conditions: the SIGACFG "Condição de envio" (protocol §7.1) written in CEL instead of
//! ADVPL. A condition sees two variables, `header` (the canonical header JSON) and `content`
//! (the canonical Content), and must give `true` or `false`, e.g.
//! `content.SaleType == "V" || content.SaleType == "S"`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cel_interpreter::objects::{Key, Value as CelValue};
use cel_interpreter::{Context, Program};
use serde_json::Value;

use crate::message::Message;

/// The variables a condition may name.
const VARIABLES: [&str; 2] = ["header", "content"];

/// Why a send condition cannot be used or could not decide. Compile errors are found at load;
/// evaluation errors are permanent for the message (the same message fails the same way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("the send condition `{expression}` does not compile: {reason}")]
    Compile { expression: String, reason: String },
    #[error(
        "the send condition `{expression}` names `{name}`, which is not a variable; \
         a condition sees only `header` and `content`"
    )]
    UnknownVariable { expression: String, name: String },
    #[error("the send condition `{expression}` failed: {reason}")]
    Evaluation { expression: String, reason: String },
    #[error("the send condition `{expression}` gave {got}, not true or false")]
    NotBoolean { expression: String, got: String },
}

/// A compiled CEL send condition. Compiled once (at load); cheap to clone and safe to share
/// between threads.
#[derive(Clone)]
pub struct SendCondition {
    source: String,
    program: Arc<Program>,
}

// The table is shared between worker threads, so the compiled program must be too.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<SendCondition>();
};

impl SendCondition {
    /// Compiles `source`, rejecting syntax errors and names other than `header` and `content`.
    pub fn compile(source: &str) -> Result<Self, ConditionError> {
        let expression = source.trim();
        // The CEL parser of cel-interpreter 0.10 panics on some incomplete expressions
        // (`a == `) instead of returning an error; a bad file must not bring eaibus down.
        let compiled = std::panic::catch_unwind(|| Program::compile(expression));
        let program = match compiled {
            Ok(Ok(program)) => program,
            Ok(Err(e)) => {
                return Err(ConditionError::Compile {
                    expression: expression.to_owned(),
                    reason: one_line(&e.to_string()),
                });
            }
            Err(_) => {
                return Err(ConditionError::Compile {
                    expression: expression.to_owned(),
                    reason: "the expression is incomplete or malformed".to_owned(),
                });
            }
        };
        let references = program.references();
        let mut unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|name| !VARIABLES.contains(name) && !bound_by_macro(expression, name))
            .collect();
        unknown.sort_unstable();
        if let Some(name) = unknown.first() {
            return Err(ConditionError::UnknownVariable {
                expression: expression.to_owned(),
                name: (*name).to_owned(),
            });
        }
        Ok(SendCondition {
            source: expression.to_owned(),
            program: Arc::new(program),
        })
    }

    /// The expression as written (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Decides whether `message` is sent.
    pub fn evaluate(&self, message: &Message) -> Result<bool, ConditionError> {
        self.evaluate_json(&message.header.to_json(), &message.content)
    }

    /// Decides on a canonical header and Content given as JSON.
    pub fn evaluate_json(&self, header: &Value, content: &Value) -> Result<bool, ConditionError> {
        let mut context = Context::default();
        context.add_variable_from_value("header", to_cel(header));
        context.add_variable_from_value("content", to_cel(content));
        let program = &self.program;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(&context)));
        match result {
            Ok(Ok(CelValue::Bool(b))) => Ok(b),
            Ok(Ok(other)) => Err(ConditionError::NotBoolean {
                expression: self.source.clone(),
                got: describe(&other),
            }),
            Ok(Err(e)) => Err(ConditionError::Evaluation {
                expression: self.source.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(ConditionError::Evaluation {
                expression: self.source.clone(),
                reason: "the CEL interpreter failed on this message".to_owned(),
            }),
        }
    }
}

impl fmt::Debug for SendCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SendCondition").field(&self.source).finish()
    }
}

impl PartialEq for SendCondition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// True when `name` is the variable of a comprehension macro (`list.exists(x, ...)`,
/// `all`, `exists_one`, `map`, `filter`), which CEL reports as a reference too.
fn bound_by_macro(expression: &str, name: &str) -> bool {
    ["exists", "all", "exists_one", "map", "filter"]
        .iter()
        .any(|m| {
            expression.match_indices(&format!("{m}(")).any(|(at, _)| {
                let rest = &expression[at + m.len() + 1..];
                rest.split(',').next().is_some_and(|arg| arg.trim() == name)
            })
        })
}

/// JSON as CEL values: integers as `int`, other numbers as `double`.
fn to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let entries: HashMap<Key, CelValue> = map
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            CelValue::from(entries)
        }
    }
}

fn describe(value: &CelValue) -> String {
    match value {
        CelValue::String(s) => format!("the string {:?}", s.as_str()),
        CelValue::Int(i) => format!("the number {i}"),
        CelValue::UInt(u) => format!("the number {u}"),
        CelValue::Float(f) => format!("the number {f}"),
        CelValue::Null => "null".to_owned(),
        CelValue::List(_) => "a list".to_owned(),
        CelValue::Map(_) => "a map".to_owned(),
        other => format!("{other:?}"),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(source: &str, content: Value) -> Result<bool, ConditionError> {
        let header =
            json!({"Transaction": "RETAILSALES", "Version": "2.009", "ProductName": "OMNI"});
        SendCondition::compile(source)?.evaluate_json(&header, &content)
    }

    #[test]
    fn decides_on_content_and_header() {
        let sale =
            json!({"SaleType": "V", "TotalPrice": 100.5, "ListOfSaleItem": [{"Quantity": 2}]});
        assert_eq!(eval(r#"content.SaleType == "V""#, sale.clone()), Ok(true));
        assert_eq!(eval(r#"content.SaleType == "D""#, sale.clone()), Ok(false));
        assert_eq!(
            eval(r#"header.ProductName == "OMNI""#, sale.clone()),
            Ok(true)
        );
        assert_eq!(eval("content.TotalPrice > 100.0", sale.clone()), Ok(true));
        assert_eq!(
            eval("content.ListOfSaleItem[0].Quantity == 2", sale.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(
                "content.ListOfSaleItem.exists(i, i.Quantity > 1)",
                sale.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                r#"!has(content.SaleType) || content.SaleType in ["V", "S"]"#,
                json!({})
            ),
            Ok(true)
        );
    }

    #[test]
    fn a_missing_field_or_a_non_boolean_is_an_error_naming_the_expression() {
        let missing = eval(r#"content.SaleType == "V""#, json!({})).unwrap_err();
        assert!(matches!(missing, ConditionError::Evaluation { .. }));
        assert!(
            missing.to_string().contains(r#"content.SaleType == "V""#),
            "{missing}"
        );
        let text = eval("content.SaleType", json!({"SaleType": "V"})).unwrap_err();
        assert!(matches!(text, ConditionError::NotBoolean { .. }), "{text}");
        assert!(text.to_string().contains("\"V\""), "{text}");
    }

    #[test]
    fn rejects_bad_syntax_and_unknown_variables_at_compile() {
        assert!(matches!(
            SendCondition::compile("content.SaleType == "),
            Err(ConditionError::Compile { .. })
        ));
        let typo = SendCondition::compile(r#"contnet.SaleType == "V""#).unwrap_err();
        assert!(matches!(&typo, ConditionError::UnknownVariable { name, .. } if name == "contnet"));
    }
}
