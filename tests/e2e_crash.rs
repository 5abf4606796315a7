//! Crash test: the real `eaibus serve` binary on the embedded log, with a Kafka route (so
//! delivery stays local), under a load of async messages from a few concurrent HTTP clients,
//! killed with SIGKILL half-way and restarted on the same data directory. Once the clients have
//! sent everything and deliveries settle, every message answered 202 must be on the route's
//! topic at least once and have exactly one row in the monitor store.
//!
//! `EAIBUS_CRASH_MESSAGES` sets the load (default 5000), `EAIBUS_CRASH_CLIENTS` the clients
//! (default 4).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eaibus::log::EventLog;
use eaibus::log::embedded::EmbeddedLog;
use eaibus::monitor::{MessageFilter, MonitorStore, Situation};
use support::*;

const ROUTE_TOPIC: &str = "omni.order-trace";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    let adapters = dir.join("adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/document_traceability_order.toml"),
        adapters.join("document_traceability_order.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("routes.toml"),
        format!(
            "[[route]]\nname = \"omni\"\nproduct = \"OMNI\"\napplication = \"OMNI\"\nkind = \"kafka\"\ntarget = \"{ROUTE_TOPIC}\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("depara")).unwrap();
    let d = dir.display();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[log]
backend = "embedded"
path = "{d}/data/log.db"
topic_prefix = "eai."
partitions = 3

[store]
url = "sqlite://{d}/data/eaibus.db"
depara_url = "sqlite://{d}/data/depara.db"

[delivery]
max_attempts = 4
backoff_initial_ms = 50
backoff_max_ms = 500
timeout_ms = 5000
# A killed worker's attempt is taken up again after the lease.
lease_ms = 3000

[paths]
adapters = "{d}/adapters"
routes = "{d}/routes.toml"
depara = "{d}/depara"
data = "{d}/data"
"#
    );
    let path = dir.join("eaibus.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn spawn_server(config: &Path, dir: &Path, run: usize) -> Child {
    let out = std::fs::File::create(dir.join(format!("serve-{run}.log"))).unwrap();
    let err = out.try_clone().unwrap();
    Command::new(env!("CARGO_BIN_EXE_eaibus"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("eaibus serve starts")
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped yet.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

fn server_log(dir: &Path) -> String {
    let mut text = String::new();
    for run in 0..2 {
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("serve-{run}.log"))) {
            let tail: Vec<&str> = t.lines().rev().take(15).collect();
            text.push_str(&format!(
                "--- serve-{run}.log (last lines) ---\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    }
    text
}

async fn wait_healthy(http: &reqwest::Client, base: &str, dir: &Path) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "eaibus did not come up\n{}",
            server_log(dir)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_survives_a_sigkill() {
    credentials();
    let total = env_number("EAIBUS_CRASH_MESSAGES", 5_000);
    let clients = env_number("EAIBUS_CRASH_CLIENTS", 4);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write_config(dir.path(), port);

    // The route's topic exists before eaibus starts (eaibus does not create a Kafka route's
    // target topic; see e2e_delivery::a_kafka_route_topic_is_created_by_eaibus).
    {
        let log = EmbeddedLog::open(dir.path().join("data/log.db"))
            .await
            .unwrap();
        log.ensure_topic(ROUTE_TOPIC, 3).await.unwrap();
        log.close().await;
    }

    let uuids: Vec<String> = (0..total).map(|_| fresh_uuid()).collect();
    let bodies: Arc<Vec<String>> = Arc::new(
        uuids
            .iter()
            .enumerate()
            .map(|(i, u)| small_trace_order(u, &format!("C{i:07}")).to_string())
            .collect(),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();

    let mut server = spawn_server(&config, dir.path(), 0);
    wait_healthy(&http, &base, dir.path()).await;

    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let transport_errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    let url = format!("{base}/totvseai/standardmessage/v1/transactions");
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, url, bodies) = (http.clone(), url.clone(), bodies.clone());
        let (next, answered, errors) = (next.clone(), answered.clone(), transport_errors.clone());
        senders.spawn(async move {
            let mut statuses: HashMap<usize, u16> = HashMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= bodies.len() {
                    return statuses;
                }
                // Send until answered (the same UUID again after a crash: "finish sending").
                loop {
                    let reply = http
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(bodies[i].clone())
                        .send()
                        .await;
                    match reply {
                        Ok(r) if r.status().as_u16() == 202 => {
                            statuses.insert(i, 202);
                            answered.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Ok(r) => {
                            let status = r.status().as_u16();
                            assert!(
                                status >= 500,
                                "message {i} was refused: {status} {}",
                                r.text().await.unwrap_or_default()
                            );
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    assert!(
                        Instant::now() < deadline,
                        "message {i} was never answered 202"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }

    // SIGKILL half-way, then restart on the same data directory.
    while answered.load(Ordering::SeqCst) < total / 2 {
        assert!(
            Instant::now() < deadline,
            "the load stalled before the crash"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let answered_at_kill = answered.load(Ordering::SeqCst);
    let first_half = started.elapsed();
    signal(&server, libc::SIGKILL);
    let _ = server.wait();
    let killed_at = Instant::now();
    server = spawn_server(&config, dir.path(), 1);
    wait_healthy(&http, &base, dir.path()).await;
    let restart = killed_at.elapsed();

    let mut accepted = HashSet::new();
    while let Some(result) = senders.join_next().await {
        let statuses = result.expect("a sender panicked");
        accepted.extend(statuses.into_keys());
    }
    let sending = started.elapsed();
    assert_eq!(
        accepted.len(),
        total,
        "every message was answered 202 in the end"
    );

    // Wait until every delivery settled.
    let monitor = MonitorStore::open(&format!(
        "sqlite://{}",
        dir.path().join("data/eaibus.db").display()
    ))
    .await
    .unwrap();
    let settle_started = Instant::now();
    // Deliveries keep pace with ingest: once the last message is answered, what is left settles
    // in well under a second; 20 s leaves room for a loaded machine.
    let settle_deadline = settle_started + Duration::from_secs(20);
    let counts = loop {
        let counts = monitor.counts().await.unwrap();
        let finished = counts.situation(Situation::Finalizada);
        if finished as usize >= total || Instant::now() > settle_deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let settle = settle_started.elapsed();
    eprintln!(
        "crash test: {total} messages, {clients} clients; {answered_at_kill} answered when killed after {first_half:?}; \
         restart (kill → healthy) {restart:?}; all answered after {sending:?}; {} transport errors; \
         deliveries settled {settle:?} later; monitor {counts:?}",
        transport_errors.load(Ordering::SeqCst)
    );
    let unsettled = if (counts.situation(Situation::Finalizada) as usize) < total {
        let page = monitor
            .list(&MessageFilter {
                situation: Some(Situation::Executando),
                page_size: 5,
                ..MessageFilter::default()
            })
            .await
            .unwrap();
        let mut sample = Vec::new();
        for m in page.messages.iter().take(3) {
            sample.push(monitor.deliveries(&m.uuid).await.unwrap());
        }
        format!(
            "{} messages are not Finalizada 20 s after the load ({:?}); {} are Executando, e.g. {sample:#?}",
            total as i64 - counts.situation(Situation::Finalizada),
            counts.by_situation,
            page.total
        )
    } else {
        String::new()
    };

    signal(&server, libc::SIGTERM);
    let _ = server.wait();
    monitor.close().await;

    // Every accepted UUID is on the route's topic at least once…
    let log = EmbeddedLog::open(dir.path().join("data/log.db"))
        .await
        .unwrap();
    let records = read_topic(&log, ROUTE_TOPIC).await;
    let mut published: HashMap<String, usize> = HashMap::new();
    for r in &records {
        *published
            .entry(r.header("uuid").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let appended = read_topic(&log, "eai.documenttraceabilityorder")
        .await
        .len();
    log.close().await;
    let missing: Vec<&String> = accepted
        .iter()
        .map(|i| &uuids[*i])
        .filter(|u| !published.contains_key(*u))
        .collect();
    let twice = published.values().filter(|n| **n > 1).count();
    eprintln!(
        "crash test: {} records on {ROUTE_TOPIC} ({twice} UUIDs published more than once), {appended} on eai.documenttraceabilityorder",
        records.len()
    );
    // …and has exactly one row in the monitor store.
    let monitor = MonitorStore::open(&format!(
        "sqlite://{}",
        dir.path().join("data/eaibus.db").display()
    ))
    .await
    .unwrap();
    let counts = monitor.counts().await.unwrap();
    let mut absent = 0;
    for uuid in &uuids {
        if monitor.get(uuid).await.unwrap().is_none() {
            absent += 1;
        }
    }
    monitor.close().await;
    assert!(
        missing.is_empty(),
        "{} of {total} accepted messages never reached {ROUTE_TOPIC} (e.g. {:?}).\n{unsettled}\n{}",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        server_log(dir.path())
    );
    assert_eq!(absent, 0, "accepted messages without a monitor row");
    assert_eq!(
        (counts.received, counts.refused),
        (total as i64, 0),
        "one monitor row per UUID, none refused: {counts:?}"
    );
    assert!(unsettled.is_empty(), "{unsettled}");
}
