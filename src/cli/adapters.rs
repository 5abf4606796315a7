//! `eaibus adapters` and `eaibus whois`.

use std::path::Path;
use std::process::ExitCode;

use eaibus::schema::SchemaRegistry;

pub fn run(
    _registry: &SchemaRegistry,
    _adapters: &Path,
    _routes: &Path,
    _check: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the adapter table is not available yet")
}

pub fn whois(
    _registry: &SchemaRegistry,
    _adapters: &Path,
    _routes: &Path,
    _application: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the adapter table is not available yet")
}
