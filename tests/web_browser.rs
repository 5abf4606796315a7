//! The monitor in a real browser: headless Chromium driven through chromedriver (started here
//! on a free port) with fantoccini. Log in, filter the list, open a failed message, reprocess
//! it, see its situation change; mark another resolved with a note and find it with the
//! "resolved" filter; look an order up on the orders page; read the sync logs. Screenshots go
//! to `target/web-browser/`.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian `chromium chromium-driver`).
//! Without them the test is skipped with a note — except under `CI=true`, where it fails.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use web_support::{ADMIN, ADMIN_PASSWORD, Web};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser is installed; `false` means skip (a failure under `CI=true`).
fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{CHROMIUM} or {CHROMEDRIVER} is missing under CI=true (apt-get install chromium chromium-driver)"
            );
        }
        eprintln!(
            "note: skipping the browser test: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
    }
    present
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-browser");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

async fn shot(client: &fantoccini::Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png)
        .expect("the screenshot is saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_reprocesses_a_failed_message_in_the_browser() {
    if !browser_available() {
        return;
    }
    let web = Web::start().await;
    web.seed("11111111-aaaa-4000-8000-000000000001", "SALE-0001", None)
        .await;
    web.seed(
        "22222222-bbbb-4000-8000-000000000002",
        "SALE-0002",
        Web::parked("Protheus answered 500"),
    )
    .await;
    web.seed_order("OMNI-BROWSER-1").await;
    // A DLQ redrive from the command line leaves a run in the sync logs.
    eaibus::ops::runs::redrive(&web.bus, &eaibus::ops::dlq::Selection::default())
        .await
        .expect("a redrive of the empty DLQ");

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1000",
                     format!("--user-data-dir={}", profile.path().display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session");

    let result = async {
        // Log in.
        client.goto(&web.at("/login")).await?;
        client
            .find(Locator::Id("username"))
            .await?
            .send_keys(ADMIN)
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(ADMIN_PASSWORD)
            .await?;
        shot(&client, "1-login").await;
        client.find(Locator::Id("login")).await?.click().await?;
        client.wait().for_element(Locator::Id("messages")).await?;
        let who = client.find(Locator::Id("who")).await?.text().await?;
        assert!(who.contains(ADMIN), "signed in as {who}");

        // Filter: the parked (Bloqueado) messages only.
        client
            .find(Locator::Css("#situation option[value='4']"))
            .await?
            .click()
            .await?;
        client.find(Locator::Id("apply")).await?.click().await?;
        client
            .wait()
            .for_element(Locator::Css("#situation option[value='4'][selected]"))
            .await?;
        let rows = client.find_all(Locator::Css("tr.message")).await?;
        assert_eq!(rows.len(), 1, "one parked message");
        shot(&client, "2-filtered").await;

        // Open it.
        client
            .find(Locator::Css("tr.message a.view"))
            .await?
            .click()
            .await?;
        client.wait().for_element(Locator::Id("timeline")).await?;
        let situation = client.find(Locator::Id("situation")).await?.text().await?;
        assert_eq!(situation, "Bloqueado");
        shot(&client, "3-detail").await;

        // Reprocess it (confirming), and see the situation change.
        client
            .find(Locator::Css("form.reprocess button"))
            .await?
            .click()
            .await?;
        client.accept_alert().await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = client
                .wait()
                .for_element(Locator::Id("situation"))
                .await?
                .text()
                .await?;
            if now == "Aguardando execução" {
                break;
            }
            assert!(Instant::now() < deadline, "the situation stayed {now}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let repeated = client.find(Locator::Id("repeated")).await?.text().await?;
        assert_eq!(repeated, "1");
        shot(&client, "4-reprocessed").await;

        // Mark the waiting message resolved, with a note; the detail shows who and when.
        client
            .goto(&web.at("/messages/11111111-aaaa-4000-8000-000000000001"))
            .await?;
        client
            .find(Locator::Css("form.resolve input.note"))
            .await?
            .send_keys("Conferido com a loja")
            .await?;
        client
            .find(Locator::Css("form.resolve button"))
            .await?
            .click()
            .await?;
        client.accept_alert().await?;
        let by = client
            .wait()
            .for_element(Locator::Id("resolved-by"))
            .await?
            .text()
            .await?;
        assert!(by.contains(ADMIN), "resolved by {by}");
        let note = client
            .find(Locator::Id("resolution-note"))
            .await?
            .text()
            .await?;
        assert_eq!(note, "Conferido com a loja");
        shot(&client, "5-resolved").await;

        // The list's "resolved" filter finds it alone.
        client.goto(&web.at("/")).await?;
        client
            .find(Locator::Css("#resolved option[value='1']"))
            .await?
            .click()
            .await?;
        client.find(Locator::Id("apply")).await?.click().await?;
        client
            .wait()
            .for_element(Locator::Css("#resolved option[value='1'][selected]"))
            .await?;
        let rows = client.find_all(Locator::Css("tr.message")).await?;
        assert_eq!(rows.len(), 1, "one resolved message");
        let uuid = rows[0].attr("data-uuid").await?;
        assert_eq!(
            uuid.as_deref(),
            Some("11111111-aaaa-4000-8000-000000000001")
        );
        shot(&client, "6-resolved-filter").await;

        // The orders page: find the order by its Protheus sale id.
        client
            .find(Locator::Css("nav a[href='/orders']"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .for_element(Locator::Id("order-id-input"))
            .await?
            .send_keys(&web_support::order_support::protheus_sale_id(
                "OMNI-BROWSER-1",
            ))
            .await?;
        client.find(Locator::Id("search")).await?.click().await?;
        let found = client
            .wait()
            .for_element(Locator::Id("order-id"))
            .await?
            .text()
            .await?;
        assert_eq!(found, "OMNI-BROWSER-1");
        let invoices = client.find_all(Locator::Css("tr.invoice")).await?;
        assert_eq!(invoices.len(), 1, "one invoice");
        shot(&client, "7-order").await;

        // The sync logs: the redrive run is there.
        client
            .find(Locator::Css("nav a[href='/sync-logs']"))
            .await?
            .click()
            .await?;
        client.wait().for_element(Locator::Id("sync-runs")).await?;
        let runs = client.find_all(Locator::Css("tr.sync-run")).await?;
        assert_eq!(runs.len(), 1, "one run");
        let text = runs[0].text().await?;
        assert!(
            text.contains("Reenvio da DLQ") && text.contains("Manual"),
            "{text}"
        );
        shot(&client, "8-sync-logs").await;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        shot(&client, "failed").await;
    }
    let _ = client.close().await;
    result.expect("the browser steps");
    let record = web
        .bus
        .monitor
        .get("22222222-bbbb-4000-8000-000000000002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.situation,
        eaibus::monitor::Situation::AguardandoExecucao
    );
    let resolution = web
        .bus
        .monitor
        .resolution("11111111-aaaa-4000-8000-000000000001")
        .await
        .unwrap()
        .expect("resolved in the store");
    assert_eq!(resolution.note.as_deref(), Some("Conferido com a loja"));
}
