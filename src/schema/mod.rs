//! Versioned schemas of the standard messages: loaded once, compiled once, looked up by
//! transaction (any case) and version, reporting every failing field as a JSON pointer.

mod registry;
pub mod shape;

pub use registry::{FieldError, SchemaError, SchemaRegistry, TransactionSchema};
pub use shape::Shape;
