//! `eaibus simulate-protheus`: a stand-in Protheus EAI endpoint (see `eaibus::simulator`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use eaibus::adapter::Credentials;
use eaibus::schema::SchemaRegistry;
use eaibus::simulator::{self, Simulator};

pub fn run(
    registry: SchemaRegistry,
    listen: SocketAddr,
    user_env: &str,
    password_env: &str,
) -> anyhow::Result<ExitCode> {
    let credentials = match (std::env::var(user_env), std::env::var(password_env)) {
        (Ok(user), Ok(password)) => Some(Credentials::new(user, password)),
        _ => {
            eprintln!(
                "eaibus: {user_env} or {password_env} is not set; the simulated Protheus asks for no credentials"
            );
            None
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let simulator = Simulator::new(Arc::new(registry), credentials);
    eprintln!(
        "eaibus: a simulated Protheus answers on http://{listen}{} and http://{listen}{}",
        simulator::REST_PATH,
        simulator::SOAP_PATH
    );
    runtime
        .block_on(simulator::serve(simulator, listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}
