//! A stand-in for Protheus' EAI endpoints, for trying the bus (or a route) without an ERP:
//! `eaibus simulate-protheus`. It answers every business message at once with a Response OK
//! whose `ListOfInternalId` pairs the sender's `InternalId` with a new Protheus-style id
//! (`company|branch|number`), as a Protheus adapter does once it has integrated a record; the
//! bus then learns that pair into De/Para. REST (JSON) and SOAP (`RECEIVEMESSAGE`) are both
//! served, with HTTP Basic authentication when credentials are given.
//!
//! It does not check business rules: a message that decodes is integrated. What it cannot read
//! gets a Response with Status ERROR naming the problem, so a route sees a permanent error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tracing::info;

use crate::adapter::Credentials;
use crate::message::response::{InternalIdPair, Outcome, respond};
use crate::message::{Codec, Field, Header, Message, MessageType};
use crate::schema::SchemaRegistry;
use crate::transport::{auth, soap};

/// The REST path of the EAI standard message service.
pub const REST_PATH: &str = "/totvseai/standardmessage/v1/transactions";
/// The classic SOAP service.
pub const SOAP_PATH: &str = "/EAISERVICE.apw";

/// The simulated ERP: its identity and what it has integrated so far.
pub struct Simulator {
    registry: Arc<SchemaRegistry>,
    credentials: Option<Credentials>,
    /// The last number handed out, as Protheus numbers its records.
    sequence: AtomicU64,
    /// How many business messages it integrated.
    integrated: AtomicU64,
}

impl Simulator {
    pub fn new(registry: Arc<SchemaRegistry>, credentials: Option<Credentials>) -> Arc<Simulator> {
        Arc::new(Simulator {
            registry,
            credentials,
            sequence: AtomicU64::new(0),
            integrated: AtomicU64::new(0),
        })
    }

    /// How many business messages it answered with Status OK.
    pub fn integrated(&self) -> u64 {
        self.integrated.load(Ordering::Relaxed)
    }

    /// The REST and SOAP endpoints.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(REST_PATH, post(rest))
            .route(SOAP_PATH, post(soap_receive))
            .with_state(self.clone())
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.credentials else {
            return true;
        };
        let given = auth::basic_credentials(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        auth::matches(given.as_ref(), &expected.user, expected.password())
    }

    /// The Response to `bytes` (a TOTVSMessage in JSON or XML).
    fn answer(&self, bytes: &[u8]) -> Message {
        let codec = Codec::new(&self.registry);
        let message = match codec.decode(bytes) {
            Ok((message, _)) => message,
            Err(e) => {
                return self.response(
                    &Header::default(),
                    Outcome {
                        ok: false,
                        messages: vec![("ERROR".into(), format!("{}: {e}", e.location()))],
                        ..Outcome::default()
                    },
                );
            }
        };
        if message.header.message_type() != MessageType::BusinessMessage {
            // Receipts and Responses sent to an ERP are acknowledged and not processed.
            return self.response(
                &message.header,
                Outcome {
                    ok: true,
                    ..Outcome::default()
                },
            );
        }
        let internal_ids = self.integrate(&message);
        info!(
            transaction = message.transaction(),
            uuid = message.uuid(),
            ids = ?internal_ids.iter().map(|p| format!("{} → {}", p.origin, p.destination)).collect::<Vec<_>>(),
            "The simulated Protheus integrated a message."
        );
        self.integrated.fetch_add(1, Ordering::Relaxed);
        self.response(
            &message.header,
            Outcome {
                ok: true,
                internal_ids,
                ..Outcome::default()
            },
        )
    }

    /// Gives the message's record a Protheus id: `CompanyId|BranchId|number`.
    fn integrate(&self, message: &Message) -> Vec<InternalIdPair> {
        let Some(origin) = message
            .content_text("/InternalId")
            .filter(|id| !id.trim().is_empty())
        else {
            return Vec::new();
        };
        let number = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let company = message.header.get(Field::CompanyId).unwrap_or("T1");
        let branch = message.header.get(Field::BranchId).unwrap_or("01");
        vec![InternalIdPair {
            name: message.transaction().to_owned(),
            origin,
            destination: format!("{company}|{branch}|{number:06}"),
        }]
    }

    fn response(&self, received: &Header, outcome: Outcome) -> Message {
        let mut responder = Header::default();
        responder.set(Field::SourceApplication, "PROTHEUS");
        responder.set(Field::ProductName, "PROTHEUS");
        responder.set(Field::ProductVersion, "12.1.2410");
        responder.set(Field::StandardVersion, "1.000");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        respond(
            received,
            &responder,
            &uuid::Uuid::new_v4().to_string(),
            &now,
            outcome,
        )
    }
}

type Shared = State<Arc<Simulator>>;

async fn rest(State(simulator): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !simulator.authorised(&headers) {
        return unauthorised();
    }
    let answer = simulator.answer(&body);
    let status = if ok(&answer) {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, axum::Json(answer.to_json())).into_response()
}

async fn soap_receive(State(simulator): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !simulator.authorised(&headers) {
        return unauthorised();
    }
    let answer = match soap::inbound_message(&body, 64) {
        Ok(inner) => simulator.answer(inner.as_bytes()),
        Err(e) => {
            let xml = soap::fault(true, &format!("{}: {e}", e.location()));
            return (StatusCode::INTERNAL_SERVER_ERROR, xml_type(), xml).into_response();
        }
    };
    let codec = Codec::new(&simulator.registry);
    let xml = soap::response(&codec.to_xml(&answer));
    (StatusCode::OK, xml_type(), xml).into_response()
}

fn ok(answer: &Message) -> bool {
    crate::message::ResponseView::new(&answer.content).is_ok()
}

fn xml_type() -> [(header::HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "text/xml; charset=utf-8")]
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"EAI\"")],
        axum::Json(json!({"error": "the credentials are missing or wrong"})),
    )
        .into_response()
}

/// Serves the simulator on `address` until the process ends.
pub async fn serve(simulator: Arc<Simulator>, address: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    info!(address = %listener.local_addr()?, "The simulated Protheus listens.");
    axum::serve(listener, simulator.router()).await
}
