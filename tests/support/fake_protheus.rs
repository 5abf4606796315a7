//! A fake Protheus: the REST (`/totvseai/standardmessage/v1/transactions`) and SOAP
//! (`/EAISERVICE.apw`, `RECEIVEMESSAGE`) EAI endpoints, answering the OMNI transactions as the
//! Protheus adapters do (protocol §3.3, §8):
//!
//! - CustomerVendor (MATI030O): sync Response OK, `ListOfInternalID` list, Destination
//!   `T1|D MG 01|C00001|01|C`;
//! - ItemReserve (LOJI704O): sync Response OK, Destination `T1|D MG 01|000123|LJ`;
//! - RetailSales (LOJI701O): HTTP 202 (SOAP: a ReceiptMessage), then, asynchronously, a
//!   Response POSTed to eaibus' REST endpoint naming the sale's UUID, with
//!   `{Name: RETAILSALES, Origin: <sale InternalId>, Destination: T1|D MG 01|1|000123|001}` — or,
//!   for a scripted failure, the error JSON text LOJI701O writes in `ReturnContent.Error`;
//! - RetailSalesCancellation (LOJI140O): sync Response OK in the object shape
//!   `{"ListOfInternalID": {"InternalID": {...}}}`.
//!
//! Failures are scripted per transaction ([`Behavior`]): "não integrado" errors, HTTP 500, a
//! delay longer than the route timeout, "já integrado" with the Protheus id, a permanent error.
//! Every request is recorded in arrival order with its body and `Authorization`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::messages::{self, get_ci, text_ci};

pub const REST_PATH: &str = "/totvseai/standardmessage/v1/transactions";
pub const SOAP_PATH: &str = "/EAISERVICE.apw";

/// How the fake answers one call of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// As Protheus does when all is well.
    Normal,
    /// Status ERROR "... nao integrado ao Protheus" (a dependency is missing: retry later).
    NotIntegrated,
    /// HTTP 500 with a text body.
    Http500,
    /// Answers normally after this delay (longer than the route timeout: a timeout).
    Delay(Duration),
    /// RetailSales "Cupom ... ja integrado": Status ERROR whose Error JSON text carries this id.
    AlreadyIntegrated(String),
    /// Status ERROR with this text (e.g. "Evento incorreto ..."): not worth retrying.
    Permanent(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Rest,
    Soap,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub seq: usize,
    pub transport: Transport,
    pub transaction: String,
    pub uuid: String,
    /// `Content.InternalId` (or `BusinessContent/InternalId`).
    pub internal_id: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// The JSON message (REST) or `Value::Null` (SOAP: see `inner_xml`).
    pub message: Value,
    /// The TOTVSMessage taken out of `INMSG` (SOAP).
    pub inner_xml: String,
    pub behavior: Behavior,
    pub at: Instant,
}

/// A Response the fake POSTed back to eaibus for an async message.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The UUID of the message it answers.
    pub answers: String,
    pub status: u16,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
struct Script {
    queued: HashMap<String, VecDeque<Behavior>>,
    always: HashMap<String, Behavior>,
}

struct FakeState {
    requests: Mutex<Vec<Recorded>>,
    callbacks: Mutex<Vec<Callback>>,
    script: Mutex<Script>,
    /// Where async Responses go (eaibus' REST endpoint) and with which credentials.
    eaibus: String,
    credentials: Option<(String, String)>,
    async_delay: Mutex<Duration>,
    http: reqwest::Client,
    started: Instant,
}

#[derive(Clone)]
pub struct FakeProtheus {
    pub url: String,
    state: Arc<FakeState>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

impl FakeProtheus {
    /// Starts on 127.0.0.1:0; async Responses are POSTed to `eaibus_url` + the REST path.
    pub async fn start(eaibus_url: &str, credentials: Option<(String, String)>) -> FakeProtheus {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fake Protheus binds");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let state = Arc::new(FakeState {
            requests: Mutex::new(Vec::new()),
            callbacks: Mutex::new(Vec::new()),
            script: Mutex::new(Script::default()),
            eaibus: format!("{eaibus_url}{REST_PATH}"),
            credentials,
            async_delay: Mutex::new(Duration::from_millis(20)),
            http: reqwest::Client::new(),
            started: Instant::now(),
        });
        let app = Router::new()
            .route(REST_PATH, post(rest))
            .route(SOAP_PATH, post(soap))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProtheus {
            url,
            state,
            _server: Arc::new(server),
        }
    }

    /// The next calls of `transaction` behave as given, one each, then [`Behavior::Normal`]
    /// (or what [`FakeProtheus::always`] set).
    pub fn script(&self, transaction: &str, behaviors: impl IntoIterator<Item = Behavior>) {
        let mut script = self.state.script.lock().unwrap();
        script
            .queued
            .entry(transaction.to_ascii_uppercase())
            .or_default()
            .extend(behaviors);
    }

    /// Every call of `transaction` behaves so once its script is used up.
    pub fn always(&self, transaction: &str, behavior: Behavior) {
        let mut script = self.state.script.lock().unwrap();
        script
            .always
            .insert(transaction.to_ascii_uppercase(), behavior);
    }

    /// How long after the 202 the async Response of a sale is POSTed.
    pub fn set_async_delay(&self, delay: Duration) {
        *self.state.async_delay.lock().unwrap() = delay;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn requests_for(&self, transaction: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.transaction.eq_ignore_ascii_case(transaction))
            .collect()
    }

    pub fn callbacks(&self) -> Vec<Callback> {
        self.state.callbacks.lock().unwrap().clone()
    }

    /// Waits until `transaction` was received at least `n` times.
    pub async fn wait_requests(
        &self,
        transaction: &str,
        n: usize,
        patience: Duration,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + patience;
        loop {
            let got = self.requests_for(transaction);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the fake Protheus got {} {transaction} requests in {patience:?}, expected {n}; all requests: {:?}",
                got.len(),
                self.requests()
                    .iter()
                    .map(|r| (&r.transaction, &r.behavior))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the async Response for `uuid` was POSTed `n` times and eaibus answered.
    pub async fn wait_callbacks(&self, uuid: &str, n: usize, patience: Duration) -> Vec<Callback> {
        let deadline = Instant::now() + patience;
        loop {
            let got: Vec<Callback> = self
                .callbacks()
                .into_iter()
                .filter(|c| c.answers == uuid)
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the fake Protheus POSTed {} Responses for {uuid} in {patience:?}, expected {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn elapsed_ms(&self, at: Instant) -> u128 {
        at.duration_since(self.state.started).as_millis()
    }
}

impl FakeState {
    fn next_behavior(&self, transaction: &str) -> Behavior {
        let mut script = self.script.lock().unwrap();
        let key = transaction.to_ascii_uppercase();
        if let Some(b) = script.queued.get_mut(&key).and_then(VecDeque::pop_front) {
            return b;
        }
        script.always.get(&key).cloned().unwrap_or(Behavior::Normal)
    }

    fn record(&self, mut recorded: Recorded) -> usize {
        let mut requests = self.requests.lock().unwrap();
        recorded.seq = requests.len();
        requests.push(recorded);
        requests.len() - 1
    }
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// What Protheus says about one message: Status OK with its ids, or ERROR with a text.
struct Outcome {
    ok: bool,
    return_content: Value,
}

fn success(transaction: &str, origin: &str) -> Outcome {
    let pair = |name: &str, destination: &str| json!({"Name": name, "Origin": origin, "Destination": destination});
    let return_content = match transaction {
        "CUSTOMERVENDOR" => {
            json!({"ListOfInternalID": [pair("CUSTOMERVENDOR", messages::CUSTOMER_DESTINATION)]})
        }
        "ITEMRESERVE" => {
            json!({"ListOfInternalID": [pair("ITEMRESERVE", messages::RESERVE_DESTINATION)]})
        }
        "RETAILSALES" => {
            json!({"ListOfInternalID": [pair("RETAILSALES", messages::SALE_DESTINATION)]})
        }
        // LOJI140O builds an object, not a list, with the key spelled InternalID (§8.6).
        "RETAILSALESCANCELLATION" => json!({"ListOfInternalID": {"InternalID":
            pair("RETAILSALESCANCELLATION", messages::CANCELLATION_DESTINATION)}}),
        _ => json!({}),
    };
    Outcome {
        ok: true,
        return_content,
    }
}

fn failure(transaction: &str, origin: &str, behavior: &Behavior) -> Outcome {
    let (protheus_id, text) = match behavior {
        Behavior::NotIntegrated => (
            String::new(),
            format!("Cliente: {origin} nao integrado ao Protheus, verifique o De/Para"),
        ),
        Behavior::AlreadyIntegrated(id) => {
            (id.clone(), "Cupom: 000123 ja integrado no Protheus".into())
        }
        Behavior::Permanent(text) => (String::new(), text.clone()),
        _ => (String::new(), "erro".into()),
    };
    let error = if transaction == "RETAILSALES" {
        // LOJI701O concatenates this JSON text without escaping (§8.1).
        format!(r#"{{"InternalId":"{protheus_id}","ExternalId":"{origin}","Message":"{text}"}}"#)
    } else {
        text
    };
    Outcome {
        ok: false,
        return_content: json!({ "Error": error }),
    }
}

fn outcome_of(transaction: &str, origin: &str, behavior: &Behavior) -> Outcome {
    match behavior {
        Behavior::NotIntegrated | Behavior::AlreadyIntegrated(_) | Behavior::Permanent(_) => {
            failure(transaction, origin, behavior)
        }
        _ => success(transaction, origin),
    }
}

/// The JSON Response Protheus' REST binding writes for `received`.
fn json_response(received: &Value, outcome: &Outcome) -> Value {
    let h = |k: &str| text_ci(received, &["Header", k]).unwrap_or_default();
    let event = h("Event");
    let mut header = json!({
        "UUID": messages::fresh_uuid(),
        "Type": "Response",
        "Transaction": h("Transaction"),
        "Version": h("Version"),
        "StandardVersion": "1.000",
        "SourceApplication": "PROTHEUS",
        "CompanyId": "T1",
        "BranchId": "D MG 01",
        "ProductName": "PROTHEUS",
        "ProductVersion": "12.1.2410",
        "GeneratedOn": now_text(),
        "DeliveryType": h("DeliveryType"),
    });
    if !h("SubType").is_empty() {
        header["SubType"] = json!(h("SubType"));
    }
    if !event.is_empty() {
        header["Event"] = json!(event);
    }
    let mut received_message = json!({"UUID": h("UUID"), "SentBy": h("ProductName")});
    if !event.is_empty() {
        received_message["Event"] = json!(event);
    }
    json!({
        "Header": header,
        "Content": {
            "ReceivedMessage": received_message,
            "ProcessingInformation": {
                "ProcessedOn": now_text(),
                "Status": if outcome.ok { "OK" } else { "ERROR" },
                "Details": []
            },
            "ReturnContent": outcome.return_content,
        }
    })
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn is_async(transaction: &str) -> bool {
    transaction == "RETAILSALES"
}

async fn rest(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let transaction = text_ci(&message, &["Header", "Transaction"])
        .unwrap_or_default()
        .to_ascii_uppercase();
    let uuid = text_ci(&message, &["Header", "UUID"]).unwrap_or_default();
    let origin = text_ci(&message, &["Content", "InternalId"]).unwrap_or_default();
    let behavior = state.next_behavior(&transaction);
    state.record(Recorded {
        seq: 0,
        transport: Transport::Rest,
        transaction: transaction.clone(),
        uuid: uuid.clone(),
        internal_id: origin.clone(),
        authorization: authorization(&headers),
        content_type: content_type(&headers),
        body: text,
        message: message.clone(),
        inner_xml: String::new(),
        behavior: behavior.clone(),
        at: Instant::now(),
    });
    match &behavior {
        Behavior::Http500 => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Behavior::Delay(d) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let outcome = outcome_of(&transaction, &origin, &behavior);
    if is_async(&transaction) {
        // Protheus queues it (XX3), answers 202, and sends the Response later (FWEAIRECE).
        let response = json_response(&message, &outcome);
        spawn_callback(state.clone(), uuid, response);
        return (StatusCode::ACCEPTED, "").into_response();
    }
    let response = json_response(&message, &outcome);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        response.to_string(),
    )
        .into_response()
}

fn spawn_callback(state: Arc<FakeState>, answers: String, response: Value) {
    tokio::spawn(async move {
        let delay = *state.async_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let mut request = state
            .http
            .post(&state.eaibus)
            .header("Content-Type", "application/json")
            .body(response.to_string());
        if let Some((user, password)) = &state.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let (status, body) = match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        };
        state.callbacks.lock().unwrap().push(Callback {
            answers,
            status,
            body,
            at: Instant::now(),
        });
    });
}

/// The SOAP binding: `RECEIVEMESSAGE(INMSG)` answered with `RECEIVEMESSAGERESULT`.
async fn soap(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let inner = messages::xml_element_text(&text, "INMSG").unwrap_or_default();
    let transaction = messages::xml_element_text(&inner, "Transaction")
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let uuid = messages::xml_element_text(&inner, "UUID")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let version = inner
        .find("version=\"")
        .map(|at| {
            let rest = &inner[at + 9..];
            rest[..rest.find('"').unwrap_or(0)].to_owned()
        })
        .unwrap_or_default();
    let business = messages::xml_element_text(&inner, "BusinessContent").unwrap_or_default();
    let origin = messages::xml_element_text(&business, "InternalId")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let behavior = state.next_behavior(&transaction);
    state.record(Recorded {
        seq: 0,
        transport: Transport::Soap,
        transaction: transaction.clone(),
        uuid: uuid.clone(),
        internal_id: origin.clone(),
        authorization: authorization(&headers),
        content_type: content_type(&headers),
        body: text,
        message: Value::Null,
        inner_xml: inner.clone(),
        behavior: behavior.clone(),
        at: Instant::now(),
    });
    match &behavior {
        Behavior::Http500 => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Behavior::Delay(d) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let outcome = outcome_of(&transaction, &origin, &behavior);
    let information = format!(
        "<MessageInformation version=\"{version}\"><UUID>{}</UUID><Type>{{TYPE}}</Type>\
<Transaction>{transaction}</Transaction><StandardVersion>1.000</StandardVersion>\
<SourceApplication>PROTHEUS</SourceApplication><CompanyId>T1</CompanyId><BranchId>D MG 01</BranchId>\
<Product name=\"PROTHEUS\" version=\"12.1.2410\"/><GeneratedOn>{}</GeneratedOn></MessageInformation>",
        messages::fresh_uuid(),
        now_text()
    );
    let answer = if is_async(&transaction) {
        let received: Value = json!({"Header": {"UUID": uuid, "Transaction": transaction,
            "Version": version, "ProductName": "OMNI", "Event": "upsert", "DeliveryType": "Async"}});
        spawn_callback(
            state.clone(),
            uuid.clone(),
            json_response(&received, &outcome),
        );
        format!(
            "<TOTVSMessage>{}<ReceiptMessage><ReceivedMessage><SentBy>OMNI</SentBy><UUID>{uuid}</UUID>\
</ReceivedMessage><ReceiptData><ReceivedOn>{}</ReceivedOn></ReceiptData></ReceiptMessage></TOTVSMessage>",
            information.replace("{TYPE}", "Receipt"),
            now_text()
        )
    } else {
        let status = if outcome.ok { "OK" } else { "ERROR" };
        let mut processing = format!(
            "<ProcessedOn>{}</ProcessedOn><Status>{status}</Status>",
            now_text()
        );
        let mut return_content = String::new();
        if let Some(error) = get_ci(&outcome.return_content, &["Error"]).and_then(Value::as_str) {
            processing.push_str(&format!(
                "<ListOfMessages><Message type=\"ERROR\" code=\"1\">{}</Message></ListOfMessages>",
                messages::xml_escape(error)
            ));
        } else if outcome.ok {
            let name = format!("{transaction}INTERNALID");
            let destination = match transaction.as_str() {
                "CUSTOMERVENDOR" => messages::CUSTOMER_DESTINATION,
                "ITEMRESERVE" => messages::RESERVE_DESTINATION,
                _ => messages::CANCELLATION_DESTINATION,
            };
            return_content = format!(
                "<ReturnContent><ListOfInternalId><InternalId><Name>{name}</Name><Origin>{}</Origin>\
<Destination>{destination}</Destination></InternalId></ListOfInternalId></ReturnContent>",
                messages::xml_escape(&origin)
            );
        }
        format!(
            "<TOTVSMessage>{}<ResponseMessage><ReceivedMessage><SentBy>OMNI</SentBy><UUID>{uuid}</UUID>\
</ReceivedMessage><ProcessingInformation>{processing}</ProcessingInformation>{return_content}\
</ResponseMessage></TOTVSMessage>",
            information.replace("{TYPE}", "Response")
        )
    };
    let envelope = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<soap:Body><RECEIVEMESSAGERESPONSE xmlns=\"http://webservices.microsiga.com.br/fweai.apw\">\
<RECEIVEMESSAGERESULT>{}</RECEIVEMESSAGERESULT></RECEIVEMESSAGERESPONSE></soap:Body></soap:Envelope>",
        messages::xml_escape(&answer)
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        envelope,
    )
        .into_response()
}
