//! `eaibus convert`: a message in the other form.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use eaibus::message::{Codec, Format, JsonStyle};
use eaibus::schema::SchemaRegistry;

pub fn run(
    registry: &SchemaRegistry,
    file: &Path,
    to: Format,
    protheus_layout: bool,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let codec = Codec::new(registry);
    let (message, _) = match codec.decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: invalid: {}: {e}", file.display(), e.location());
            return Ok(ExitCode::from(1));
        }
    };
    let out = match to {
        Format::Xml => codec.to_xml(&message),
        Format::Json => {
            let style = if protheus_layout {
                JsonStyle::Protheus
            } else {
                JsonStyle::Canonical
            };
            let compact = codec.to_json(&message, style);
            let value: serde_json::Value = serde_json::from_str(&compact)?;
            serde_json::to_string_pretty(&value)?
        }
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
