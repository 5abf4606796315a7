//! The commands behind `eaibus`. Each returns its exit code; `anyhow` carries unexpected failures.

pub mod adapters;
pub mod convert;
pub mod dlq;
pub mod order;
pub mod send;
pub mod serve;
pub mod simulate;
pub mod validate;

use std::path::Path;

use anyhow::Context;
use eaibus::schema::SchemaRegistry;

pub fn load_registry(dir: Option<&Path>) -> anyhow::Result<SchemaRegistry> {
    match dir {
        Some(dir) => SchemaRegistry::load_dir(dir)
            .with_context(|| format!("cannot load the schemas of {}", dir.display())),
        None => SchemaRegistry::embedded().context("the built-in schemas do not load"),
    }
}
