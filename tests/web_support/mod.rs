//! Shared helpers of the web tests (`tests/web_*.rs`): an in-process eaibus HTTP server (the
//! router `eaibus serve` uses, on 127.0.0.1:0) over a temporary store, the first admin from
//! `EAIBUS_ADMIN_USER` / `EAIBUS_ADMIN_PASSWORD`, users and tokens of every role, and monitor
//! records in chosen situations. No deliverer runs: a reprocessed message stays "Aguardando
//! execução", which is what the tests look for.

#![allow(dead_code)]

#[path = "../order_support/mod.rs"]
pub mod order_support;

use std::path::Path;
use std::sync::OnceLock;

use eaibus::bus::Bus;
use eaibus::config::Config;
use eaibus::monitor::{DeliveryOutcome, DeliveryStart, NewMessage, Stage};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

pub const ADMIN: &str = "web-admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "password-of-a-user";

/// Sets the first admin's environment once, before any server starts.
fn admin_env() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: set once, before the first server of this test binary reads it; the tests
        // read no other environment variable concurrently.
        unsafe {
            std::env::set_var("EAIBUS_ADMIN_USER", ADMIN);
            std::env::set_var("EAIBUS_ADMIN_PASSWORD", ADMIN_PASSWORD);
            // Lets a test sign in "from" an address of its choosing (X-Forwarded-For); requests
            // without the header keep the TCP peer.
            std::env::set_var("EAIBUS_TRUST_PROXY", "true");
        }
        eaibus::transport::install_crypto();
    });
}

pub struct Web {
    pub dir: tempfile::TempDir,
    pub bus: Bus,
    pub url: String,
    /// Does not follow redirects, keeps no cookies.
    pub http: reqwest::Client,
}

/// A payload with personal data (and markup) in it.
pub fn payload(uuid: &str, key: &str) -> String {
    json!({
        "Header": {"UUID": uuid, "Transaction": "RetailSales", "Version": "1.000",
                   "SourceApplication": "OMNI", "ProductName": "OMNI"},
        "Content": {"InternalId": key, "CustomerName": "Maria da Silva",
                    "Email": "maria@example.com", "CustomerGovernmentalInformation": "123.456.789-09",
                    "Note": "<script>alert('payload')</script>"}
    })
    .to_string()
}

impl Web {
    pub async fn start() -> Web {
        Web::start_on(None).await
    }

    /// Like [`Web::start`], with the monitor (and web) tables at `store_url` when given.
    pub async fn start_on(store_url: Option<String>) -> Web {
        admin_env();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::default();
        config.log.path = dir.path().join("log.db");
        config.store.url = store_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("eaibus.db").display()));
        config.store.depara_url = format!("sqlite://{}", dir.path().join("depara.db").display());
        // A copy of the shipped adapters, so a test may break one.
        let adapters = dir.path().join("adapters");
        std::fs::create_dir_all(&adapters).expect("adapters dir");
        for entry in std::fs::read_dir(root.join("adapters")).expect("the shipped adapters") {
            let path = entry.expect("an entry").path();
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, adapters.join(name)).expect("an adapter copy");
            }
        }
        config.paths.adapters = adapters;
        config.paths.routes = root.join("config/routes.toml");
        config.paths.depara = dir.path().join("no-seeds");
        config.paths.data = dir.path().to_owned();
        let bus = Bus::open(config).await.expect("the bus opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let app = eaibus::transport::server::router(bus.clone());
        tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        Web {
            dir,
            bus,
            url,
            http,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Records a message and takes its delivery along `route` to the outcome's situation
    /// (`None` leaves it received, without deliveries).
    pub async fn seed(&self, uuid: &str, key: &str, outcome: Option<DeliveryOutcome>) {
        let monitor = &self.bus.monitor;
        let mut m = NewMessage::new(uuid, "RetailSales");
        m.version = "1.000".into();
        m.source_application = "OMNI".into();
        m.business_key = Some(key.into());
        m.raw_payload = payload(uuid, key).into_bytes();
        m.canonical_json = Some(payload(uuid, key));
        monitor.record_received(&m).await.expect("recorded");
        monitor
            .set_situation(
                uuid,
                eaibus::monitor::Situation::AguardandoExecucao,
                Stage::Logged,
                None,
            )
            .await
            .expect("logged");
        let Some(outcome) = outcome else { return };
        monitor
            .plan_delivery(uuid, "protheus", 0)
            .await
            .expect("planned");
        match monitor
            .start_delivery(uuid, "protheus")
            .await
            .expect("started")
        {
            DeliveryStart::Started { .. } => {}
            other => panic!("the delivery did not start: {other:?}"),
        }
        monitor
            .record_attempt(uuid, "protheus", &outcome)
            .await
            .expect("attempt recorded");
    }

    /// Projects an order `order` into the read model: a sale with one home delivery, integrated
    /// in Protheus, released, then invoiced (with one invoice).
    pub async fn seed_order(&self, order: &str) {
        use order_support::{MIN, T0, integrated, invoice, report, report_with, sale};
        eaibus::order::ensure_topics(&self.bus)
            .await
            .expect("order topics");
        let events = vec![
            sale(order, &["3"], T0),
            integrated(order, T0 + MIN),
            report(order, false, "Pedido liberado", 1, T0 + 2 * MIN),
            report_with(
                order,
                false,
                "FATURADO",
                2,
                T0 + 3 * MIN,
                vec![invoice(
                    order,
                    "31240517745613000150650010000124101201241070",
                )],
            ),
        ];
        eaibus::order::events::publish(self.bus.log.as_ref(), &self.bus.config, &events)
            .await
            .expect("published");
        let topic = eaibus::order::events_topic(&self.bus.config);
        let mut records = Vec::new();
        for p in self.bus.log.partitions(&topic).await.expect("partitions") {
            records.extend(self.bus.log.read(&topic, p, 0, 1000).await.expect("read"));
        }
        let store = eaibus::order::store::OrderStore::open_for(&self.bus.config)
            .await
            .expect("the order store");
        store
            .project(&records, &eaibus::order::store::NoOutputs)
            .await
            .expect("projected");
        store.close().await;
    }

    pub fn parked(error: &str) -> Option<DeliveryOutcome> {
        Some(DeliveryOutcome::Parked {
            error: error.into(),
        })
    }

    /// Logs in through the login form; returns its session cookie (`name=value`).
    pub async fn login(&self, user: &str, password: &str) -> Option<String> {
        let page = self
            .http
            .get(self.at("/login"))
            .send()
            .await
            .expect("login page");
        let csrf_cookie = cookies(&page)
            .into_iter()
            .find(|c| c.starts_with("eaibus_login_csrf="))
            .expect("a login CSRF cookie");
        let html = page.text().await.expect("html");
        let csrf = hidden_value(&html, "csrf").expect("a csrf field");
        let answer = self
            .http
            .post(self.at("/login"))
            .header(COOKIE, csrf_cookie)
            .form_pairs(&[("username", user), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .expect("login answer");
        cookies(&answer)
            .into_iter()
            .find(|c| c.starts_with("eaibus_session=") && c.len() > "eaibus_session=".len())
    }

    /// Signs in through the form as if from `address`: the status, the login cookie when
    /// it worked, and the page.
    pub async fn login_from(
        &self,
        user: &str,
        password: &str,
        address: &str,
    ) -> (u16, Option<String>, String) {
        let page = self
            .http
            .get(self.at("/login"))
            .send()
            .await
            .expect("login page");
        let csrf_cookie = cookies(&page)
            .into_iter()
            .find(|c| c.starts_with("eaibus_login_csrf="))
            .expect("a login CSRF cookie");
        let html = page.text().await.expect("html");
        let csrf = hidden_value(&html, "csrf").expect("a csrf field");
        let answer = self
            .http
            .post(self.at("/login"))
            .header(COOKIE, csrf_cookie)
            .header("x-forwarded-for", address)
            .form_pairs(&[("username", user), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .expect("login answer");
        let status = answer.status().as_u16();
        let session = cookies(&answer)
            .into_iter()
            .find(|c| c.starts_with("eaibus_session=") && c.len() > "eaibus_session=".len());
        (status, session, answer.text().await.expect("a body"))
    }

    /// The CSRF token of this login.
    pub async fn csrf(&self, session: &str) -> String {
        let info: Value = self
            .http
            .get(self.at("/api/v1/session"))
            .header(COOKIE, session)
            .send()
            .await
            .expect("session info")
            .json()
            .await
            .expect("json");
        info["csrf"].as_str().expect("a csrf token").to_owned()
    }

    /// A bearer token for the admin, through the admin's session.
    pub async fn admin_token(&self) -> String {
        let session = self
            .login(ADMIN, ADMIN_PASSWORD)
            .await
            .expect("the admin logs in");
        let csrf = self.csrf(&session).await;
        let answer = self
            .http
            .post(self.at("/api/v1/tokens"))
            .header(COOKIE, &session)
            .header("x-csrf-token", csrf)
            .json(&json!({"username": ADMIN, "name": "tests"}))
            .send()
            .await
            .expect("token answer");
        assert_eq!(answer.status(), 201);
        let body: Value = answer.json().await.expect("json");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Creates `username` with `role` and returns a bearer token for it.
    pub async fn user_with_token(&self, admin_token: &str, username: &str, role: &str) -> String {
        let created = self
            .http
            .post(self.at("/api/v1/users"))
            .bearer_auth(admin_token)
            .json(&json!({"username": username, "password": PASSWORD, "role": role}))
            .send()
            .await
            .expect("user answer");
        assert_eq!(created.status(), 204, "creating {username}");
        let answer = self
            .http
            .post(self.at("/api/v1/tokens"))
            .bearer_auth(admin_token)
            .json(&json!({"username": username, "name": "tests"}))
            .send()
            .await
            .expect("token answer");
        assert_eq!(answer.status(), 201);
        let body: Value = answer.json().await.expect("json");
        body["token"].as_str().expect("a token").to_owned()
    }
}

/// The `name=value` part of every Set-Cookie.
pub fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect()
}

/// The value of the first hidden input named `name` in the page.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Percent-encodes a form or query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` bodies (this reqwest is built without its `form`
/// feature).
pub trait FormExt {
    fn form_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref())))
            .collect::<Vec<_>>()
            .join("&");
        self.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
    }
}
