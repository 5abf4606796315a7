//! `eaibus adapters` and `eaibus whois`.

use std::path::Path;
use std::process::ExitCode;

use eaibus::adapter::AdapterTable;
use eaibus::message::{Codec, Field, Header, JsonStyle, response};
use eaibus::schema::SchemaRegistry;
use serde_json::{Map, Value, json};

fn load(
    registry: &SchemaRegistry,
    adapters: &Path,
    routes: &Path,
) -> Result<AdapterTable, ExitCode> {
    AdapterTable::load(adapters, routes, registry).map_err(|errors| {
        for e in errors.iter() {
            eprintln!("{e}");
        }
        eprintln!("{} error(s) in the adapter table", errors.len());
        ExitCode::from(1)
    })
}

pub fn run(
    registry: &SchemaRegistry,
    adapters: &Path,
    routes: &Path,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let table = match load(registry, adapters, routes) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    if check {
        println!(
            "ok: {} adapters, {} routes",
            table.adapters().len(),
            table.routes().len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<34} {:<9} {:<6} {:<7} {:<6} {:<7} {:<20} {:<5} {:<13} CONDITION",
        "MESSAGE", "ROUTINE", "SEND", "RECEIVE", "METHOD", "OPER.", "VERSIONS", "FMT", "ROUTE"
    );
    for a in table.adapters() {
        let route = table
            .route_of(a)
            .map(|r| format!("{} ({})", r.name, r.kind.as_str()))
            .unwrap_or_default();
        println!(
            "{:<34} {:<9} {:<6} {:<7} {:<6} {:<7} {:<20} {:<5} {:<13} {}",
            a.message,
            a.routine,
            if a.send { "sim" } else { "não" },
            if a.receive { "sim" } else { "não" },
            format!("{:?}", a.method).to_lowercase(),
            a.operation.as_str(),
            a.versions.join(","),
            a.format.as_str(),
            route,
            a.condition.as_ref().map(|c| c.source()).unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The WhoIs answer as a standard JSON Response: `ReturnContent.EnabledTransactions`.
pub fn whois(
    registry: &SchemaRegistry,
    adapters: &Path,
    routes: &Path,
    application: &str,
) -> anyhow::Result<ExitCode> {
    let table = match load(registry, adapters, routes) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let entries: Vec<Value> = table
        .whois()
        .into_iter()
        .map(|e| json!({"Name": e.transaction, "Version": e.version, "Mode": e.mode.as_str()}))
        .collect();
    let mut request = Header::default();
    request.set(Field::Uuid, "");
    request.set(Field::Type, "BusinessMessage");
    request.set(Field::SubType, "request");
    request.set(Field::Transaction, "WHOIS");
    request.set(Field::Version, "1.000");
    let mut responder = Header::default();
    responder.set(Field::SourceApplication, application);
    responder.set(Field::ProductName, application);
    responder.set(Field::ProductVersion, env!("CARGO_PKG_VERSION"));
    responder.set(Field::StandardVersion, "1.000");
    let mut return_content = Map::new();
    return_content.insert("EnabledTransactions".into(), Value::Array(entries));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let answer = response::respond(
        &request,
        &responder,
        &uuid::Uuid::new_v4().to_string(),
        &now,
        response::Outcome {
            ok: true,
            return_content,
            ..Default::default()
        },
    );
    let text = Codec::new(registry).to_json(&answer, JsonStyle::Protheus);
    let value: Value = serde_json::from_str(&text)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}
