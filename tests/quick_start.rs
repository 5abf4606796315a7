//! The README's quick start, as a newcomer runs it: the shipped configuration, adapters and
//! example sale, `eaibus serve` on the embedded defaults and `eaibus simulate-protheus` at the
//! address of the shipped Protheus route. The sale must be answered 202, land in the log and be
//! delivered to the simulated Protheus, whose Response teaches the bus the sale's Protheus id.
//! Also the simulator on its own: REST, SOAP and its Basic authentication.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eaibus::adapter::Credentials;
use eaibus::log::EventLog;
use eaibus::log::embedded::EmbeddedLog;
use eaibus::monitor::{MonitorStore, Situation};
use eaibus::simulator::{self, Simulator};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A working directory laid out like the repository, with the shipped files; only the two
/// ports change, so that the test runs beside anything else on the machine.
fn newcomer_checkout(dir: &Path, bus_port: u16, protheus_port: u16) {
    for sub in ["adapters", "config", "examples"] {
        copy_dir(&root().join(sub), &dir.join(sub));
    }
    let replace = |file: &str, from: &str, to: &str| {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} no longer contains {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    replace(
        "config/eaibus.toml",
        "127.0.0.1:8080",
        &format!("127.0.0.1:{bus_port}"),
    );
    replace(
        "config/routes.toml",
        "127.0.0.1:8081",
        &format!("127.0.0.1:{protheus_port}"),
    );
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, args: &[&str], log: &str) -> Running {
    let out = std::fs::File::create(dir.join(log)).unwrap();
    let err = out.try_clone().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_eaibus"))
        .args(args)
        .current_dir(dir)
        .env("EAIBUS_PROTHEUS_USER", "omni")
        .env("EAIBUS_PROTHEUS_PASSWORD", "quick-start-secret")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("eaibus starts");
    Running(child)
}

fn logs(dir: &Path) -> String {
    ["serve.log", "protheus.log"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            format!(
                "--- {f} ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn wait_for_http(http: &reqwest::Client, url: &str, dir: &Path) {
    let start = Instant::now();
    while http.get(url).send().await.is_err() {
        assert!(
            start.elapsed() < PATIENCE,
            "{url} never answered\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sale_reaches_the_simulated_protheus() {
    let dir = tempfile::tempdir().unwrap();
    let dir: PathBuf = dir.path().to_owned();
    let (bus_port, protheus_port) = (free_port(), free_port());
    newcomer_checkout(&dir, bus_port, protheus_port);
    let protheus_address = format!("127.0.0.1:{protheus_port}");
    let _protheus = spawn(
        &dir,
        &["simulate-protheus", "--listen", &protheus_address],
        "protheus.log",
    );
    let _bus = spawn(&dir, &["serve"], "serve.log");
    eaibus::transport::install_crypto();
    let http = reqwest::Client::new();
    wait_for_http(&http, &format!("http://127.0.0.1:{bus_port}/healthz"), &dir).await;

    let sale = std::fs::read(dir.join("examples/messages/retail-sale.json")).unwrap();
    let uuid = serde_json::from_slice::<Value>(&sale).unwrap()["Header"]["UUID"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = http
        .post(format!(
            "http://127.0.0.1:{bus_port}/totvseai/standardmessage/v1/transactions"
        ))
        .header("Content-Type", "application/json")
        .body(sale)
        .send()
        .await
        .expect("the bus answers");
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap();
    assert_eq!(status, 202, "{body}\n{}", logs(&dir));

    // The delivery to the simulated Protheus settles as Finalizada with its Response.
    let store = MonitorStore::open(&format!("sqlite://{}/data/eaibus.db", dir.display()))
        .await
        .unwrap();
    let start = Instant::now();
    let delivery = loop {
        if let Some(d) = store.delivery(&uuid, "protheus").await.unwrap()
            && d.situation == Situation::Finalizada
        {
            break d;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the sale was not delivered: {:?}\n{}",
            store.delivery(&uuid, "protheus").await,
            logs(&dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let response = delivery.response.expect("the Response is kept");
    assert!(response.contains("ListOfInternalId"), "{response}");
    assert!(!store.learned_depara(&uuid).await.unwrap().is_empty());

    // And the sale is on its topic in the embedded log.
    store.close().await;
    let log = EmbeddedLog::open(dir.join("data/log.db")).await.unwrap();
    let mut found = false;
    for partition in 0..3 {
        let records = log
            .read("eai.retailsales", partition, 0, 100)
            .await
            .unwrap();
        found |= records
            .iter()
            .any(|r| r.header("uuid") == Some(uuid.as_str()));
    }
    assert!(found, "the sale is not in eai.retailsales");
}

async fn serve_simulator(credentials: Option<Credentials>) -> (String, Arc<Simulator>) {
    let registry = Arc::new(eaibus::schema::SchemaRegistry::embedded().unwrap());
    let simulator = Simulator::new(registry, credentials);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = simulator.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, simulator)
}

#[tokio::test]
async fn the_simulator_integrates_over_rest_and_soap_and_checks_credentials() {
    let (base, simulator) = serve_simulator(Some(Credentials::new("omni", "s3cret"))).await;
    eaibus::transport::install_crypto();
    let http = reqwest::Client::new();
    let sale = std::fs::read_to_string(root().join("examples/messages/retail-sale.json")).unwrap();
    // The example spells it `internalid`, as OMNI does; the codec reads it leniently.
    let sale_id = serde_json::from_str::<Value>(&sale).unwrap()["Content"]["internalid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = format!("{base}{}", simulator::REST_PATH);

    let refused = http.post(&rest).body(sale.clone()).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);

    let answered = http
        .post(&rest)
        .basic_auth("omni", Some("s3cret"))
        .body(sale)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status().as_u16(), 200);
    let response: Value = answered.json().await.unwrap();
    let view = eaibus::message::ResponseView::new(&response["Content"]);
    assert!(view.is_ok(), "{response}");
    let ids = view.internal_ids();
    assert_eq!(ids.len(), 1, "{response}");
    assert_eq!(ids[0].origin, sale_id);
    assert!(ids[0].destination.ends_with("|000001"), "{:?}", ids[0]);

    let xml = std::fs::read_to_string(root().join("examples/messages/retail-sale.xml")).unwrap();
    let soap = http
        .post(format!("{base}{}", simulator::SOAP_PATH))
        .basic_auth("omni", Some("s3cret"))
        .header("Content-Type", "text/xml")
        .body(eaibus::transport::soap::request(&xml))
        .send()
        .await
        .unwrap();
    assert_eq!(soap.status().as_u16(), 200);
    let body = soap.text().await.unwrap();
    let inner = eaibus::transport::soap::response_message(body.as_bytes(), 64).unwrap();
    assert!(inner.contains("<Status>OK</Status>"), "{inner}");
    assert!(inner.contains("|000002"), "{inner}");

    let garbage = http
        .post(&rest)
        .basic_auth("omni", Some("s3cret"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    let text = garbage.text().await.unwrap();
    assert!(text.contains("line 1"), "the error says where: {text}");
    assert_eq!(simulator.integrated(), 2);
}
