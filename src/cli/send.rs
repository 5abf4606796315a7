//! `eaibus send FILE --to URL [--soap]`: a client of EAI endpoints, REST or SOAP.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use eaibus::adapter::Credentials;
use eaibus::message::{Codec, JsonStyle};
use eaibus::schema::SchemaRegistry;
use eaibus::transport::client::EaiClient;

pub struct SendOptions<'a> {
    pub file: &'a Path,
    pub url: &'a str,
    pub soap: bool,
    pub user: Option<String>,
    pub password_env: Option<String>,
    pub timeout: Duration,
}

pub fn run(registry: &SchemaRegistry, options: SendOptions<'_>) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(options.file)
        .with_context(|| format!("cannot read {}", options.file.display()))?;
    let codec = Codec::new(registry);
    let (message, _) = match codec.decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: invalid: {}: {e}", options.file.display(), e.location());
            return Ok(ExitCode::from(1));
        }
    };
    let credentials = match (&options.user, &options.password_env) {
        (Some(user), Some(variable)) => {
            let password = std::env::var(variable).with_context(|| {
                format!("the environment variable {variable} holds no password")
            })?;
            Some(Credentials::new(user.clone(), password))
        }
        (Some(_), None) => {
            anyhow::bail!("--user needs --password-env naming the variable that holds the password")
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = EaiClient::new();
    let reply = runtime.block_on(async {
        if options.soap {
            client
                .send_soap(
                    options.url,
                    &codec.to_xml(&message),
                    credentials.as_ref(),
                    options.timeout,
                )
                .await
        } else {
            client
                .send_rest(
                    options.url,
                    codec.to_json(&message, JsonStyle::Canonical),
                    credentials.as_ref(),
                    options.timeout,
                )
                .await
        }
    });
    match reply {
        Ok(reply) => {
            println!("HTTP {}", reply.status);
            if !reply.body.is_empty() {
                println!("{}", reply.body);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("eaibus send: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
