//! `eaibus validate`: one line per file, every failing field, exit 0/1/2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use eaibus::message::Codec;
use eaibus::schema::{FieldError, SchemaRegistry};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    file: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    errors: Vec<FieldError>,
}

pub fn run(registry: &SchemaRegistry, files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let codec = Codec::new(registry);
    let reports: Vec<Report> = files.iter().map(|f| check(&codec, f)).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print_text(r);
        }
    }
    let code = if reports.iter().any(|r| r.status == "unreadable") {
        2
    } else if reports.iter().any(|r| r.status != "ok") {
        1
    } else {
        0
    };
    Ok(ExitCode::from(code))
}

fn print_text(r: &Report) {
    match r.status {
        "ok" => println!(
            "{}: ok {} {}",
            r.file,
            r.transaction.as_deref().unwrap_or("?"),
            r.version.as_deref().unwrap_or("?")
        ),
        _ => {
            for e in &r.errors {
                println!("{}: {}: {}: {}", r.file, r.status, e.pointer, e.reason);
            }
        }
    }
}

fn check(codec: &Codec<'_>, path: &Path) -> Report {
    let file = path.display().to_string();
    let mut report = Report {
        file,
        status: "ok",
        format: None,
        transaction: None,
        version: None,
        errors: Vec::new(),
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.status = "unreadable";
            report.errors.push(FieldError::new("", e.to_string()));
            return report;
        }
    };
    let (message, format) = match codec.decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            report.status = "invalid";
            report
                .errors
                .push(FieldError::new(e.location(), e.to_string()));
            return report;
        }
    };
    report.format = Some(format.as_str());
    match codec.registry.for_header(&message.header) {
        Some(schema) => {
            report.transaction = Some(schema.name.clone());
            report.version = Some(schema.version.clone());
        }
        None => {
            report.transaction = Some(message.transaction().to_owned());
            report.version = message.header.version().map(str::to_owned);
        }
    }
    if let Err(errors) = codec.registry.validate(&message) {
        report.status = "invalid";
        report.errors = errors;
    }
    report
}
