//! DLQ operations on the embedded log: list and show, redrive after the cause is fixed, the
//! replay counter and its guard, a dry run that changes nothing, and the redrive of a delivery
//! that failed for good. Each test has its own directory; HTTP binds 127.0.0.1:0.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eaibus::bus::Bus;
use eaibus::config::Config;
use eaibus::delivery::Deliverer;
use eaibus::ingest::{self, Channel, Inbound};
use eaibus::monitor::Situation;
use eaibus::ops::dlq::{self, Decision, Destination, Outcome, Selection};
use serde_json::Value;
use tempfile::TempDir;

const REST_ORIGIN: &str = "rest:/totvseai/standardmessage/v1/transactions";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The DocumentTraceabilityOrder 1.001 fixture with its own UUID.
fn trace_order(uuid: &str) -> Vec<u8> {
    let path = manifest().join("tests/fixtures/valid/DocumentTraceabilityOrder_1_001_array.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    value["Header"]["UUID"] = Value::String(uuid.to_owned());
    serde_json::to_vec(&value).unwrap()
}

fn retail_sale(uuid: &str) -> Vec<u8> {
    let path = manifest().join("tests/fixtures/valid/RetailSales_2_009_array.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    value["Header"]["UUID"] = Value::String(uuid.to_owned());
    serde_json::to_vec(&value).unwrap()
}

/// The DocumentTraceabilityOrder adapter, receiving `versions`, sending along `route`.
fn trace_adapter(versions: &[&str], route: &str) -> String {
    let versions: Vec<String> = versions.iter().map(|v| format!("{v:?}")).collect();
    format!(
        r#"routine = "MATA410B"
message = "DocumentTraceabilityOrder"
description = "Rastreabilidade do pedido (test)"
send = true
receive = true
method = "async"
operation = "all"
channel = "eai"
versions = [{}]
alias = "SC5"
depara_field = "C5_NUM"
route = "{route}"
format = "json"
"#,
        versions.join(", ")
    )
}

const KAFKA_ROUTE: &str = r#"[[route]]
name = "omni"
product = "OMNI"
application = "OMNI"
kind = "kafka"
target = "omni.order-trace"
"#;

/// A directory with eaibus.toml, an adapter table and routes, all of eaibus' files inside it.
struct Site {
    dir: TempDir,
}

impl Site {
    fn new(adapter: &str, routes: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("adapters")).unwrap();
        std::fs::write(root.join("adapters/trace.toml"), adapter).unwrap();
        std::fs::write(root.join("routes.toml"), routes).unwrap();
        let config = format!(
            r#"[log]
backend = "embedded"
path = "{root}/data/log.db"
partitions = 2

[store]
url = "sqlite://{root}/data/eaibus.db"
depara_url = "sqlite://{root}/data/depara.db"

[delivery]
max_attempts = 2
backoff_initial_ms = 50
backoff_max_ms = 100
timeout_ms = 5000

[paths]
adapters = "{root}/adapters"
routes = "{root}/routes.toml"
depara = "{root}/depara"
data = "{root}/data"
"#,
            root = root.display()
        );
        std::fs::write(root.join("eaibus.toml"), config).unwrap();
        Site { dir }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("eaibus.toml")
    }

    fn config(&self) -> Config {
        Config::load(&self.config_path()).unwrap()
    }

    fn set_adapter(&self, adapter: &str) {
        std::fs::write(self.dir.path().join("adapters/trace.toml"), adapter).unwrap();
    }

    async fn bus(&self) -> Bus {
        Bus::open(self.config()).await.unwrap()
    }

    /// Runs `eaibus --config FILE dlq ARGS...` and returns its exit code and standard output.
    fn cli(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_eaibus"))
            .arg("dlq")
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env("EAIBUS_LOG", "warn")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked"),
            "eaibus dlq {args:?} panicked:\n{stderr}"
        );
        (output.status.code().unwrap_or(-1), stdout)
    }
}

async fn post(bus: &Bus, bytes: &[u8]) -> u16 {
    ingest::receive(
        bus,
        Inbound {
            bytes,
            channel: Channel::Rest,
            origin: REST_ORIGIN.into(),
            credentials: None,
            replays: 0,
        },
    )
    .await
    .status
}

async fn dlq_size(bus: &Bus) -> i64 {
    offsets(bus, &bus.config.dlq_topic()).await.iter().sum()
}

async fn offsets(bus: &Bus, topic: &str) -> Vec<i64> {
    let mut ends = Vec::new();
    for partition in bus.log.partitions(topic).await.unwrap() {
        ends.push(bus.log.end_offset(topic, partition).await.unwrap());
    }
    ends
}

fn only(uuid: &str, max_replays: u32) -> Selection {
    Selection {
        uuids: vec![uuid.to_owned()],
        max_replays,
        ..Selection::default()
    }
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_show_the_letters() {
    let site = Site::new(&trace_adapter(&["1.000"], "omni"), KAFKA_ROUTE);
    let bus = site.bus().await;
    let uuid = "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e01";
    assert_eq!(post(&bus, &trace_order(uuid)).await, 400);
    // Letters are listed by the time they were written (milliseconds): keep these two apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(post(&bus, b"{\"Header\": not json").await, 400);

    let letters = dlq::read_letters(&bus, None).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:#?}");
    let refused = &letters[0].letter;
    assert_eq!(refused.uuid, uuid);
    assert_eq!(refused.transaction, "DocumentTraceabilityOrder");
    assert_eq!(refused.stage, "route");
    assert_eq!(refused.origin, REST_ORIGIN);
    assert!(refused.reason.contains("1.001"), "{}", refused.reason);
    assert_eq!(letters[0].destination(), Destination::Ingest(Channel::Rest));
    assert_eq!(letters[1].letter.stage, "decode");
    let future = eaibus::monitor::time::now_millis() + 60_000;
    assert!(
        dlq::read_letters(&bus, Some(future))
            .await
            .unwrap()
            .is_empty()
    );
    let found = dlq::find(&bus, &uuid[..8]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].letter.uuid, uuid);

    let (code, out) = site.cli(&["list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(uuid), "{out}");
    assert!(out.contains("DocumentTraceabilityOrder"), "{out}");
    assert!(out.contains("2 of 2 dead letter(s) shown."), "{out}");
    // Newest first: the undecodable one (no UUID) comes before the refused order.
    let decode_line = out.lines().position(|l| l.contains("decode")).unwrap();
    let order_line = out.lines().position(|l| l.contains(uuid)).unwrap();
    assert!(decode_line < order_line, "{out}");
    let (_, out) = site.cli(&["list", "--limit", "1"]);
    assert!(out.contains("1 of 2 dead letter(s) shown."), "{out}");
    let (_, out) = site.cli(&["list", "--since", "1h"]);
    assert!(out.contains("2 of 2"), "{out}");

    let (code, out) = site.cli(&["show", uuid]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Headers:"), "{out}");
    assert!(out.contains("  stage: route"), "{out}");
    assert!(out.contains(&format!("  origin: {REST_ORIGIN}")), "{out}");
    assert!(out.contains("Monitor      Recusada"), "{out}");
    // The payload is indented JSON.
    assert!(
        out.contains("    \"Transaction\": \"DOCUMENTTRACEABILITYORDER\","),
        "{out}"
    );
    let (code, _) = site.cli(&["show", "00000000-0000-0000-0000-000000000000"]);
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_accepted_when_redriven_after_the_fix() {
    let site = Site::new(&trace_adapter(&["1.000"], "omni"), KAFKA_ROUTE);
    let bus = site.bus().await;
    let uuid = "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e02";
    // Version 1.001 is not enabled in the adapter table: refused, dead-lettered.
    assert_eq!(post(&bus, &trace_order(uuid)).await, 400);
    // A repeat gets the stored refusal, as the sender would.
    assert_eq!(post(&bus, &trace_order(uuid)).await, 400);
    assert_eq!(dlq_size(&bus).await, 1);
    let topic = bus.config.topic("DocumentTraceabilityOrder");
    assert_eq!(offsets(&bus, &topic).await.iter().sum::<i64>(), 0);

    // The cause is fixed: the adapter receives 1.001 now.
    site.set_adapter(&trace_adapter(&["1.000", "1.001"], "omni"));
    bus.reload_adapters().unwrap();

    let results = dlq::redrive(&bus, &only(uuid, 3)).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].candidate.decision, Decision::Redrive);
    assert_eq!(results[0].outcome, Outcome::Accepted { status: 202 });

    // Accepted into the log, no new letter, and the monitor follows.
    assert_eq!(offsets(&bus, &topic).await.iter().sum::<i64>(), 1);
    assert_eq!(dlq_size(&bus).await, 1);
    let record = bus.monitor.get(uuid).await.unwrap().unwrap();
    assert_ne!(record.situation, Situation::Recusada, "{record:?}");
    let timeline = bus.monitor.timeline(uuid).await.unwrap();
    assert!(
        timeline.iter().any(|t| t
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("Redriven from the DLQ")),
        "{timeline:#?}"
    );
    // A repeat of the sender now gets the new answer.
    assert_eq!(post(&bus, &trace_order(uuid)).await, 202);

    // Redriving again finds it resolved and sends nothing.
    let again = dlq::redrive(&bus, &only(uuid, 3)).await.unwrap();
    assert!(
        matches!(again[0].candidate.decision, Decision::Resolved(_)),
        "{again:#?}"
    );
    assert_eq!(again[0].outcome, Outcome::NotRedriven);
    assert_eq!(offsets(&bus, &topic).await.iter().sum::<i64>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_redrive_counts_a_replay_and_the_guard_stops_the_loop() {
    let site = Site::new(&trace_adapter(&["1.000"], "omni"), KAFKA_ROUTE);
    let bus = site.bus().await;
    let uuid = "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e03";
    assert_eq!(post(&bus, &trace_order(uuid)).await, 400);

    // Not fixed: every redrive is refused again and leaves a new letter, one replay more.
    for replay in 0..2u32 {
        let results = dlq::redrive(&bus, &only(uuid, 2)).await.unwrap();
        assert_eq!(results.len(), 1, "one chain per message: {results:#?}");
        assert_eq!(results[0].candidate.replays, replay);
        assert!(
            matches!(
                &results[0].outcome,
                Outcome::RefusedAgain { status: 400, reason } if reason.contains("1.001")
            ),
            "{results:#?}"
        );
        assert_eq!(dlq_size(&bus).await, i64::from(replay) + 2);
    }
    let plan = dlq::plan(&bus, &only(uuid, 2)).await.unwrap();
    assert_eq!(plan.candidates[0].replays, 2);
    assert_eq!(plan.candidates[0].letters, 3);

    // At the limit: refused by the guard, reported, nothing sent, no new letter.
    let results = dlq::redrive(&bus, &only(uuid, 2)).await.unwrap();
    assert_eq!(
        results[0].candidate.decision,
        Decision::Guarded { replays: 2, max: 2 }
    );
    assert_eq!(results[0].outcome, Outcome::NotRedriven);
    assert_eq!(dlq_size(&bus).await, 3);
    let (code, out) = site.cli(&["redrive", "--uuid", uuid, "--max-replays", "2"]);
    assert_eq!(code, 1, "the guard needs attention: {out}");
    assert!(out.contains("refused by the loop guard"), "{out}");
    assert_eq!(dlq_size(&bus).await, 3);

    // A higher limit lets the operator try once more.
    let results = dlq::redrive(&bus, &only(uuid, 3)).await.unwrap();
    assert!(matches!(results[0].outcome, Outcome::RefusedAgain { .. }));
    assert_eq!(dlq_size(&bus).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_letter_carries_the_replay_count_in_its_header() {
    let site = Site::new(&trace_adapter(&["1.000"], "omni"), KAFKA_ROUTE);
    let bus = site.bus().await;
    let uuid = "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e04";
    assert_eq!(post(&bus, &trace_order(uuid)).await, 400);
    dlq::redrive(&bus, &only(uuid, 3)).await.unwrap();
    let letters = dlq::find(&bus, uuid).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].letter.replays, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_reasons_and_changes_nothing() {
    let site = Site::new(&trace_adapter(&["1.000"], "omni"), KAFKA_ROUTE);
    let bus = site.bus().await;
    let orders = [
        "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e05",
        "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e06",
        "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e07",
    ];
    for uuid in orders {
        assert_eq!(post(&bus, &trace_order(uuid)).await, 400);
    }
    let sale = "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e08";
    assert_eq!(post(&bus, &retail_sale(sale)).await, 404);
    assert_eq!(post(&bus, b"<TOTVSMessage><Unclosed>").await, 400);

    let dlq_before = offsets(&bus, &bus.config.dlq_topic()).await;
    let mut monitor_before = Vec::new();
    for uuid in orders.iter().chain([&sale]) {
        monitor_before.push(bus.monitor.get(uuid).await.unwrap().unwrap());
    }
    let counts_before = bus.monitor.counts().await.unwrap();

    let plan = dlq::plan(&bus, &Selection::default()).await.unwrap();
    assert_eq!(plan.candidates.len(), 5);
    let counts: Vec<usize> = plan.histogram.iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, vec![3, 1, 1], "{:#?}", plan.histogram);
    assert!(plan.histogram[0].0.contains("<n>"), "{:#?}", plan.histogram);
    assert!(
        plan.candidates
            .iter()
            .all(|c| c.decision == Decision::Redrive),
        "{:#?}",
        plan.candidates
    );
    let narrowed = dlq::plan(
        &bus,
        &Selection {
            reason_contains: Some("RETAILSALES".into()),
            ..Selection::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(narrowed.candidates.len(), 1);
    assert_eq!(narrowed.candidates[0].letter.letter.uuid, sale);

    let (code, out) = site.cli(&["redrive", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Reasons (5 message(s) selected):"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("3  ") && l.contains("<n>")),
        "{out}"
    );
    assert!(out.contains("Would redrive 5 of 5:"), "{out}");
    assert!(out.contains("Dry run: nothing was changed."), "{out}");

    assert_eq!(offsets(&bus, &bus.config.dlq_topic()).await, dlq_before);
    for before in monitor_before {
        let after = bus.monitor.get(&before.uuid).await.unwrap().unwrap();
        assert_eq!(after, before);
    }
    assert_eq!(bus.monitor.counts().await.unwrap(), counts_before);
    let topic = bus.config.topic("DocumentTraceabilityOrder");
    assert_eq!(offsets(&bus, &topic).await.iter().sum::<i64>(), 0);
}

/// An EAI REST endpoint that refuses the first message for good (HTTP 400) and answers the
/// next ones at once with a Response with Status OK (a sync target).
async fn stub_endpoint(hits: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/totvseai/standardmessage/v1/transactions",
        axum::routing::post(move |body: axum::body::Bytes| {
            let hits = hits.clone();
            async move {
                if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (
                        axum::http::StatusCode::BAD_REQUEST,
                        "refused by the stub".into(),
                    );
                }
                let received: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let header = received["Header"].as_object().cloned().unwrap_or_default();
                let answer = eaibus::ingest::answer::ok(
                    &eaibus::message::Header::from_json(header),
                    &eaibus::config::Identity::default(),
                    eaibus::message::response::Outcome::default(),
                );
                (
                    axum::http::StatusCode::OK,
                    answer.message.to_json().to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/totvseai/standardmessage/v1/transactions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_planned_again_along_its_route() {
    let hits = Arc::new(AtomicUsize::new(0));
    let url = stub_endpoint(hits.clone()).await;
    let routes = format!(
        "[[route]]\nname = \"stub\"\nproduct = \"PROTHEUS\"\napplication = \"STUB\"\n\
         kind = \"eai-rest\"\ntarget = \"{url}\"\n"
    );
    let site = Site::new(&trace_adapter(&["1.000", "1.001"], "stub"), &routes);
    let bus = site.bus().await;
    let deliverer = Deliverer::new(bus.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = deliverer.spawn(stopped);

    let uuid = "6f1c1a52-0d7e-4f4b-9a57-3f2d8c4b1e09";
    assert_eq!(post(&bus, &trace_order(uuid)).await, 202);
    // The dead letter is written before the outcome is recorded: wait for both.
    wait_for("the delivery to fail for good", async || {
        let failed = bus
            .monitor
            .delivery(uuid, "stub")
            .await
            .unwrap()
            .is_some_and(|d| d.situation == Situation::Falhou);
        failed && dlq_size(&bus).await == 1
    })
    .await;
    let letter = &dlq::find(&bus, uuid).await.unwrap()[0];
    assert_eq!(letter.letter.stage, "deliver");
    assert_eq!(letter.destination(), Destination::Route("stub".into()));

    let results = dlq::redrive(&bus, &only(uuid, 3)).await.unwrap();
    assert_eq!(
        results[0].outcome,
        Outcome::Replanned {
            route: "stub".into()
        }
    );
    wait_for("the redriven delivery", async || {
        bus.monitor
            .delivery(uuid, "stub")
            .await
            .unwrap()
            .is_some_and(|d| d.situation == Situation::Finalizada)
    })
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let record = bus.monitor.get(uuid).await.unwrap().unwrap();
    assert_eq!(record.repeated_failures, 1);

    let again = dlq::redrive(&bus, &only(uuid, 3)).await.unwrap();
    assert!(
        matches!(again[0].candidate.decision, Decision::Resolved(_)),
        "{again:#?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let _ = stop.send(true);
    for worker in workers {
        worker.abort();
    }
}
