//! `eaibus serve`: the HTTP endpoints, Kafka ingest and the route workers, until Ctrl-C/SIGTERM.
//! SIGHUP reloads the adapter table; an invalid one is refused and the running one stays.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use eaibus::bus::Bus;
use eaibus::config::Config;
use eaibus::delivery::Deliverer;
use eaibus::transport::server;
use tracing::{error, info};

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    eaibus::transport::install_crypto();
    let listen = config.server.listen.clone();
    let kafka_topics = config.ingest.kafka_topics.clone();
    let mut bus = Bus::open(config).await?;
    // The deliverer works on the bus without the hook; ingest gets the hook to reach it.
    let deliverer = Deliverer::new(bus.clone());
    bus.delivery = Some(deliverer.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    eaibus::order::ensure_topics(&bus).await?;
    let mut tasks = deliverer.spawn(stopped.clone());
    {
        let (bus, stopped) = (bus.clone(), stopped.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = eaibus::order::projection::run(bus, stopped).await {
                error!(error = %e, "The order projection could not start.");
            }
        }));
    }
    tasks.push(tokio::spawn(eaibus::ingest::topics::consume(
        bus.clone(),
        kafka_topics,
        stopped.clone(),
    )));
    tasks.push(tokio::spawn(reload_on_hangup(bus.clone())));

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    info!(address = %listen, log = ?bus.config.log.backend, "eaibus is listening.");
    println!("eaibus listening on http://{listen}");
    // The peer address reaches the monitor, which throttles failed sign-ins per client.
    let app =
        server::router(bus.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let mut stop_signal = stopped.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_signal.changed().await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    info!("eaibus is stopping.");
    let _ = stop.send(true);
    let _ = server.await;
    for task in tasks {
        task.abort();
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

async fn reload_on_hangup(bus: Bus) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    while hangup.recv().await.is_some() {
        match bus.reload_adapters() {
            Ok(()) => info!("The adapter table was reloaded."),
            Err(e) => {
                error!(error = %e, "The new adapter table is invalid; the running one stays.")
            }
        }
    }
}
