//! The HTTP server: the EAI REST endpoint (single messages and batches), the SOAP endpoint and
//! its WSDL, and health checks.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{auth, soap};
use crate::bus::Bus;
use crate::ingest::{self, Channel, Inbound, answer};
use crate::message::{DecodeError, JsonStyle};

pub const REST_PATH: &str = "/totvseai/standardmessage/v1/transactions";
pub const SOAP_PATH: &str = "/EAISERVICE.apw";

pub fn router(bus: Bus) -> Router {
    // Batches carry many messages; a single message is bounded again by the codec.
    let body_limit = bus.config.server.max_message_bytes.saturating_mul(4);
    let web = crate::web::router(bus.clone());
    Router::new()
        .route(REST_PATH, post(rest))
        .route(SOAP_PATH, post(soap_receive).get(wsdl))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(Arc::new(bus))
        .merge(web)
}

type Shared = State<Arc<Bus>>;

async fn ready(State(bus): Shared) -> Response {
    match bus.monitor.counts().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchQuery {
    batch_type: Option<String>,
    #[serde(rename = "batchUUID")]
    batch_uuid: Option<String>,
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    auth::basic_credentials(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn rest_answer(bus: &Bus, a: &answer::Answer) -> Response {
    if a.status == 202 {
        // JSON has no Receipt: 202 says "received"; the body names what was received.
        let body = json!({"UUID": a.message.content.pointer("/ReceivedMessage/UUID"), "Status": "Accepted"});
        return json_response(202, body.to_string());
    }
    json_response(
        a.status,
        bus.codec().to_json(&a.message, JsonStyle::Canonical),
    )
}

async fn rest(
    State(bus): Shared,
    Query(query): Query<BatchQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = format!("rest:{REST_PATH}");
    if let Some(ct) = content_type(&headers)
        && !(ct.contains("json") || ct == "text/plain")
    {
        let error = DecodeError::NotStandardMessage {
            pointer: String::new(),
            reason: format!(
                "the REST endpoint takes application/json, not {ct}; XML goes to {SOAP_PATH}"
            ),
        };
        let inbound = Inbound {
            bytes: &body,
            channel: Channel::Rest,
            origin,
            credentials: credentials(&headers),
            replays: 0,
        };
        let mut a = ingest::refuse_undecodable(&bus, &inbound, &error).await;
        a.status = 415;
        return rest_answer(&bus, &a);
    }
    if let Some(batch_type) = query.batch_type {
        return batch(&bus, &batch_type, query.batch_uuid, &headers, &body).await;
    }
    let inbound = Inbound {
        bytes: &body,
        channel: Channel::Rest,
        origin,
        credentials: credentials(&headers),
        replays: 0,
    };
    let a = ingest::receive(&bus, inbound).await;
    rest_answer(&bus, &a)
}

/// `?batchType=simpleBatch|businessTransaction` (protocol §1.2): batches are async only, so a
/// sync item refuses the whole batch; a businessTransaction is all-or-nothing.
async fn batch(
    bus: &Bus,
    batch_type: &str,
    batch_uuid: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let all_or_nothing = match batch_type {
        t if t.eq_ignore_ascii_case("simpleBatch") => false,
        t if t.eq_ignore_ascii_case("businessTransaction") => true,
        other => {
            return json_response(
                400,
                json!({"Error": format!("batchType {other:?} is not simpleBatch or businessTransaction")}).to_string(),
            );
        }
    };
    let origin = format!("rest:{REST_PATH}?batchType={batch_type}");
    let refuse_whole = |reason: String| {
        json_response(
            400,
            json!({"BatchUUID": batch_uuid, "Error": reason}).to_string(),
        )
    };
    let items: Vec<Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => match map
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Items"))
        {
            Some((_, Value::Array(items))) if !items.is_empty() => items,
            _ => {
                return refuse_whole(
                    "a batch is {\"Items\": [...]} with at least one message".into(),
                );
            }
        },
        Ok(_) => return refuse_whole("a batch is {\"Items\": [...]}".into()),
        Err(e) => {
            let inbound = Inbound {
                bytes: body,
                channel: Channel::Rest,
                origin,
                credentials: credentials(headers),
                replays: 0,
            };
            let error = DecodeError::Syntax {
                format: "JSON",
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            };
            let a = ingest::refuse_undecodable(bus, &inbound, &error).await;
            return rest_answer(bus, &a);
        }
    };
    let payloads: Vec<Vec<u8>> = items.iter().map(|i| i.to_string().into_bytes()).collect();

    // Batches are async only; and a businessTransaction is checked whole before any item is kept.
    let codec = bus.codec();
    let mut problems = Vec::new();
    for (index, payload) in payloads.iter().enumerate() {
        match codec.decode(payload) {
            Ok((m, _)) => {
                if m.header.delivery_type() == Some(crate::message::DeliveryType::Sync) {
                    problems.push(
                        json!({"Item": index, "Error": "a batch may not carry a sync message"}),
                    );
                } else if all_or_nothing {
                    if let Err(errors) = bus.registry.validate(&m) {
                        let detail: Vec<String> = errors.iter().map(ToString::to_string).collect();
                        problems.push(
                            json!({"Item": index, "UUID": m.uuid(), "Error": detail.join("; ")}),
                        );
                    } else if let Err(refusal) = bus.adapter_table().receiver(&m.header) {
                        problems.push(
                            json!({"Item": index, "UUID": m.uuid(), "Error": refusal.to_string()}),
                        );
                    }
                }
            }
            Err(e) if all_or_nothing => {
                problems.push(json!({"Item": index, "Error": format!("{}: {e}", e.location())}))
            }
            Err(_) => {}
        }
    }
    let has_sync = problems
        .iter()
        .any(|p| p["Error"] == "a batch may not carry a sync message");
    if has_sync || (all_or_nothing && !problems.is_empty()) {
        // Refused whole: each item is still accounted for, as refused, with the batch's reason.
        let reason = format!(
            "batch {} refused: {}",
            batch_uuid.as_deref().unwrap_or("-"),
            Value::Array(problems.clone())
        );
        for payload in &payloads {
            let inbound = Inbound {
                bytes: payload,
                channel: Channel::Rest,
                origin: origin.clone(),
                credentials: None,
                replays: 0,
            };
            ingest::refuse_with_reason(bus, &inbound, &reason, 400).await;
        }
        return json_response(
            400,
            json!({"BatchUUID": batch_uuid, "Accepted": false, "Problems": problems}).to_string(),
        );
    }

    let mut results = Vec::with_capacity(payloads.len());
    let mut all_accepted = true;
    for payload in &payloads {
        let inbound = Inbound {
            bytes: payload,
            channel: Channel::Rest,
            origin: origin.clone(),
            credentials: credentials(headers),
            replays: 0,
        };
        let a = ingest::receive(bus, inbound).await;
        all_accepted &= a.is_accepted();
        let uuid = a
            .message
            .content
            .pointer("/ReceivedMessage/UUID")
            .cloned()
            .unwrap_or(Value::Null);
        let mut result = json!({"UUID": uuid, "Status": a.status});
        if !a.is_accepted() {
            result["Response"] = a.message.to_json();
        }
        results.push(result);
    }
    let status = if all_accepted { 202 } else { 207 };
    json_response(
        status,
        json!({"BatchUUID": batch_uuid, "Accepted": all_accepted, "Items": results}).to_string(),
    )
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn soap_receive(State(bus): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let origin = format!("soap:{SOAP_PATH}");
    if let Some(ct) = content_type(&headers)
        && !(ct.contains("xml") || ct == "text/plain")
    {
        let error = DecodeError::NotStandardMessage {
            pointer: String::new(),
            reason: format!("the SOAP endpoint takes text/xml, not {ct}; JSON goes to {REST_PATH}"),
        };
        let inbound = Inbound {
            bytes: &body,
            channel: Channel::Soap,
            origin,
            credentials: credentials(&headers),
            replays: 0,
        };
        let a = ingest::refuse_undecodable(&bus, &inbound, &error).await;
        return xml_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            soap::fault(true, &a.reason),
        );
    }
    let inner = match soap::inbound_message(&body, 64) {
        Ok(inner) => inner,
        Err(e) => {
            let inbound = Inbound {
                bytes: &body,
                channel: Channel::Soap,
                origin,
                credentials: credentials(&headers),
                replays: 0,
            };
            let a = ingest::refuse_undecodable(&bus, &inbound, &e).await;
            return xml_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                soap::fault(true, &a.reason),
            );
        }
    };
    let inbound = Inbound {
        bytes: inner.as_bytes(),
        channel: Channel::Soap,
        origin,
        credentials: credentials(&headers),
        replays: 0,
    };
    let a = ingest::receive(&bus, inbound).await;
    if a.status == 401 {
        return xml_response(StatusCode::UNAUTHORIZED, soap::fault(true, &a.reason));
    }
    let message = answer::for_soap(&a);
    xml_response(
        StatusCode::OK,
        soap::response(&bus.codec().to_xml(&message)),
    )
}

#[derive(Deserialize)]
struct WsdlQuery {
    wsdl: Option<String>,
}

async fn wsdl(State(bus): Shared, Query(q): Query<WsdlQuery>, headers: HeaderMap) -> Response {
    let _ = q.wsdl;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| bus.config.server.listen.clone());
    xml_response(
        StatusCode::OK,
        soap::wsdl(&format!("http://{host}{SOAP_PATH}")),
    )
}
