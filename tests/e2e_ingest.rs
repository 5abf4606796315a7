//! Ingest end to end over HTTP (embedded log): idempotency by UUID, hostile input at every
//! endpoint (REST, SOAP, batches), batches, and authentication. Every refused message must be
//! accounted for: a Recusada row in the monitor store and a record on the DLQ, with the server
//! still healthy.

mod support;

use std::time::Duration;

use eaibus::monitor::{MessageFilter, NewMessage, Progress, Situation, Stage};
use serde_json::{Value, json};
use support::*;

/// Records on `topic` whose `uuid` header is `uuid`.
async fn on_topic(e: &Eaibus, topic: &str, uuid: &str) -> usize {
    e.topic_records(topic)
        .await
        .iter()
        .filter(|r| r.header("uuid") == Some(uuid))
        .count()
}

// -- idempotency ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_message_sent_twice_is_answered_alike_and_appended_once() {
    let customer_id = format!("OMNI-CLI-{}", tag());
    let reserve_id = format!("OMNI-RES-{}", tag());
    let mut seeds = default_seeds();
    seeds.push(seed("SA1", "A1_COD", &customer_id, CUSTOMER_DESTINATION));
    seeds.push(seed("SC0", "C0_DOCRES", &reserve_id, RESERVE_DESTINATION));
    let e = Eaibus::start(
        "idem",
        Options {
            seeds,
            ..Options::default()
        },
    )
    .await;
    let uuid = fresh_uuid();
    let sale_id = format!("OMNI-PED-{}", tag());
    let sale = retail_sale(&uuid, &sale_id, &customer_id, &reserve_id, &PRODUCTS);
    let first = e.post_json(&sale).await;
    assert_eq!(first.0, 202, "{}", first.1);
    e.wait_situation(&uuid, Situation::Finalizada).await;
    let second = e.post_json(&sale).await;
    assert_eq!(second, first, "the repeat gets the first answer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(on_topic(&e, &e.topic("RetailSales"), &uuid).await, 1);
    assert_eq!(e.fake.requests_for("RETAILSALES").len(), 1);
    let record = e.record(&uuid).await;
    assert_eq!(record.duplicates, 1);
    let counts = e.bus.monitor.counts().await.unwrap();
    assert_eq!(counts.duplicates, 1);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_message_sent_twice_gets_the_same_response_and_protheus_sees_it_once() {
    let e = Eaibus::start("idemsync", Options::default()).await;
    let uuid = fresh_uuid();
    let message = customer_vendor(&uuid, &format!("OMNI-CLI-{}", tag()));
    let first = e.post_json(&message).await;
    assert_eq!(first.0, 200, "{}", first.1);
    let second = e.post_json(&message).await;
    assert_eq!(second, first);
    // Over SOAP too (the same UUID in XML form): the stored answer again.
    assert_eq!(on_topic(&e, &e.topic("CustomerVendor"), &uuid).await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.fake.requests_for("CUSTOMERVENDOR").len(), 1);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soap_message_sent_twice_gets_the_same_receipt() {
    let e = Eaibus::start("idemsoap", Options::default()).await;
    let uuid = fresh_uuid();
    let xml = xml_fixture(
        "DocumentTraceabilityOrder_1_001.xml",
        &uuid,
        &[("000232", "000811")],
    );
    let envelope = soap_request_escaped(&xml);
    let (s1, _, r1) = e.post_soap(&envelope, None).await;
    let (s2, _, r2) = e.post_soap(&envelope, None).await;
    assert_eq!((s1, s2), (200, 200));
    assert!(r1.contains("<ReceiptMessage>"), "{r1}");
    assert_eq!(r1, r2);
    e.wait_on_topic(&e.omni_topic, &uuid).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        on_topic(&e, &e.topic("DocumentTraceabilityOrder"), &uuid).await,
        1
    );
    assert_eq!(on_topic(&e, &e.omni_topic, &uuid).await, 1);
    e.stop().await;
}

/// An async message is recorded with its Receipt just before the append. If eaibus stopped
/// in between, the Receipt was never sent and the message is not in the log: its repeat must
/// be appended and delivered, not answered with that Receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_of_a_message_recorded_but_never_appended_is_appended() {
    let e = Eaibus::start("idemstop", Options::default()).await;
    let first = fresh_uuid();
    let (status, receipt) = e.post_json(&small_trace_order(&first, "000813")).await;
    assert_eq!(status, 202, "{receipt}");
    let kept = e.record(&first).await.answer.expect("a Receipt is kept");

    // What the store holds when eaibus stopped between the record and the append.
    let uuid = fresh_uuid();
    let mut progress = Progress::default();
    progress.step(Stage::Routed, Situation::AguardandoExecucao, "Adapter.");
    progress.outcome = Some((Situation::AguardandoExecucao, Stage::Routed, None));
    progress.answer = Some(kept);
    let stopped = NewMessage {
        business_key: Some("000814".into()),
        ..NewMessage::new(&uuid, "DocumentTraceabilityOrder")
    };
    e.bus
        .monitor
        .record_received_with(&stopped, progress)
        .await
        .unwrap();

    let (status, body) = e.post_json(&small_trace_order(&uuid, "000814")).await;
    assert_eq!(status, 202, "{body}");
    e.wait_on_topic(&e.omni_topic, &uuid).await;
    assert_eq!(
        on_topic(&e, &e.topic("DocumentTraceabilityOrder"), &uuid).await,
        1
    );
    // Appended and answered now: a further repeat gets that answer and appends nothing.
    let again = e.post_json(&small_trace_order(&uuid, "000814")).await;
    assert_eq!(again, (status, body));
    assert_eq!(
        on_topic(&e, &e.topic("DocumentTraceabilityOrder"), &uuid).await,
        1
    );
    e.stop().await;
}

/// A sender retrying on its own timeout sends the same UUID again while the first is still being
/// processed: still one append, and every caller hears the same thing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_one_uuid_are_appended_once() {
    let e = Eaibus::start("idemrace", Options::default()).await;
    let uuid = fresh_uuid();
    let message = small_trace_order(&uuid, "000812");
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url, m) = (e.http.clone(), e.rest_url(), message.clone());
        posts.spawn(async move { post_json_to(&http, &url, &m).await });
    }
    let answers = posts.join_all().await;
    assert!(answers.iter().all(|(s, _)| *s == 202), "{answers:?}");
    e.wait_on_topic(&e.omni_topic, &uuid).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let appended = on_topic(&e, &e.topic("DocumentTraceabilityOrder"), &uuid).await;
    let published = on_topic(&e, &e.omni_topic, &uuid).await;
    assert_eq!(
        (appended, published),
        (1, 1),
        "8 concurrent posts of one UUID: appended {appended} times to the log, published {published} times"
    );
    e.stop().await;
}

// -- hostile input -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Rest,
    Soap,
    SimpleBatch,
    BusinessTransaction,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::Rest,
        Endpoint::Soap,
        Endpoint::SimpleBatch,
        Endpoint::BusinessTransaction,
    ];

    fn path(self) -> String {
        let batch = |t: &str| {
            format!(
                "/totvseai/standardmessage/v1/transactions?batchType={t}&batchUUID={}",
                fresh_uuid()
            )
        };
        match self {
            Endpoint::Rest => "/totvseai/standardmessage/v1/transactions".into(),
            Endpoint::Soap => "/EAISERVICE.apw".into(),
            Endpoint::SimpleBatch => batch("simpleBatch"),
            Endpoint::BusinessTransaction => batch("businessTransaction"),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Endpoint::Soap => "text/xml; charset=utf-8",
            _ => "application/json",
        }
    }

    /// The endpoint's envelope around one message's bytes.
    fn wrap(self, message: &[u8]) -> Vec<u8> {
        match self {
            Endpoint::Rest => message.to_vec(),
            Endpoint::Soap => {
                let mut out = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><RECEIVEMESSAGE xmlns=\"http://webservices.microsiga.com.br/fweai.apw\"><INMSG><![CDATA[".to_vec();
                out.extend_from_slice(message);
                out.extend_from_slice(
                    b"]]></INMSG></RECEIVEMESSAGE></soapenv:Body></soapenv:Envelope>",
                );
                out
            }
            Endpoint::SimpleBatch | Endpoint::BusinessTransaction => {
                let mut out = b"{\"Items\":[".to_vec();
                out.extend_from_slice(message);
                out.extend_from_slice(b"]}");
                out
            }
        }
    }
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<TOTVSMessage><MessageInformation version="1.000"><UUID>&lol9;</UUID></MessageInformation></TOTVSMessage>"#;

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE TOTVSMessage [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<TOTVSMessage><MessageInformation version="1.000"><UUID>&xxe;</UUID></MessageInformation></TOTVSMessage>"#;

/// One hostile body, the envelope it is put in, and words one of which its answer must use.
struct Hostile {
    name: &'static str,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    /// Put the body in the endpoint's envelope (else sent as is).
    wrap: bool,
    words: &'static [&'static str],
}

fn hostile_inputs() -> Vec<Hostile> {
    let valid = small_trace_order(&fresh_uuid(), "000999").to_string();
    let truncated_json = valid.as_bytes()[..valid.len() / 2].to_vec();
    let valid_xml = xml_fixture("DocumentTraceabilityOrder_1_000.xml", &fresh_uuid(), &[]);
    let truncated_xml = valid_xml.as_bytes()[..valid_xml.len() / 2].to_vec();
    let mut ten_mb = small_trace_order(&fresh_uuid(), "000998");
    set_ci(
        ten_mb.get_mut("Content").unwrap(),
        "TraceabilityCode",
        json!("A".repeat(10 * 1024 * 1024)),
    );
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let deep_xml = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000)).into_bytes();
    let mut invalid_utf8 = valid.as_bytes().to_vec();
    let at = valid.find("Empacotado").unwrap();
    invalid_utf8[at] = 0xff;
    invalid_utf8[at + 1] = 0xfe;
    vec![
        Hostile {
            name: "garbage",
            body: b"\x00\x01\x02 GARBAGE %%% \x7f not a message".to_vec(),
            content_type: None,
            wrap: false,
            words: &["expected", "syntax", "byte"],
        },
        Hostile {
            name: "empty body",
            body: Vec::new(),
            content_type: None,
            wrap: false,
            words: &["empty", "EOF", "ends too early", "syntax"],
        },
        Hostile {
            name: "10 MB message",
            body: ten_mb.to_string().into_bytes(),
            content_type: None,
            wrap: true,
            words: &["limit", "large", "length"],
        },
        Hostile {
            name: "billion laughs",
            body: BILLION_LAUGHS.as_bytes().to_vec(),
            content_type: None,
            wrap: false,
            words: &["DOCTYPE", "entity", "syntax", "expected"],
        },
        Hostile {
            name: "XXE",
            body: XXE.as_bytes().to_vec(),
            content_type: None,
            wrap: false,
            words: &["DOCTYPE", "entity", "syntax", "expected"],
        },
        Hostile {
            name: "wrong content type",
            body: valid.as_bytes().to_vec(),
            content_type: Some("image/png"),
            wrap: true,
            words: &["image/png", "content type", "application/json", "expected"],
        },
        Hostile {
            name: "truncated JSON",
            body: truncated_json,
            content_type: None,
            wrap: false,
            words: &["truncated", "too early", "EOF", "syntax", "expected"],
        },
        Hostile {
            name: "truncated XML",
            body: truncated_xml,
            content_type: None,
            wrap: false,
            words: &["syntax", "expected", "end", "truncated"],
        },
        Hostile {
            name: "deep JSON nesting",
            body: deep_json,
            content_type: None,
            wrap: false,
            // SOAP reads it as (not) XML: a syntax error.
            words: &["nesting", "deeper", "recursion", "expected", "syntax"],
        },
        Hostile {
            name: "deep XML nesting",
            body: deep_xml,
            content_type: None,
            wrap: false,
            words: &["nesting", "deeper", "expected", "syntax", "Envelope"],
        },
        Hostile {
            name: "invalid UTF-8",
            body: invalid_utf8,
            content_type: None,
            wrap: true,
            words: &["UTF-8", "utf-8", "encoding", "invalid"],
        },
    ]
}

async fn refused_and_dead_letters(e: &Eaibus) -> (i64, i64, usize) {
    let counts = e.bus.monitor.counts().await.unwrap();
    assert_eq!(
        counts.received,
        counts.accepted + counts.refused,
        "received = accepted + refused: {counts:?}"
    );
    let listed = e
        .bus
        .monitor
        .list(&MessageFilter {
            situation: Some(Situation::Recusada),
            ..MessageFilter::default()
        })
        .await
        .unwrap()
        .total;
    (counts.refused, listed, e.dead_letters().await.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_clearly_and_accounted_for_at_every_endpoint() {
    let e = Eaibus::start("hostile", Options::default()).await;
    let mut failures = Vec::new();
    for endpoint in Endpoint::ALL {
        for case in hostile_inputs() {
            let before = refused_and_dead_letters(&e).await;
            let body = if case.wrap {
                endpoint.wrap(&case.body)
            } else {
                case.body.clone()
            };
            let content_type = case.content_type.unwrap_or(endpoint.content_type());
            let (status, text) = e.post_raw(&endpoint.path(), Some(content_type), body).await;
            let what = format!("{endpoint:?} / {}", case.name);
            eprintln!(
                "{what}: HTTP {status} {}",
                text.chars()
                    .take(400)
                    .collect::<String>()
                    .replace('\n', " ")
            );
            assert!(e.healthy().await, "{what}: /healthz fails afterwards");
            // A clear error: an error status (SOAP: a fault, or a Response with Status ERROR
            // inside RECEIVEMESSAGERESULT), and a body that names the problem.
            let refused_status = match endpoint {
                Endpoint::Soap => {
                    status >= 400
                        || (status == 200
                            && xml_element_text(&text, "RECEIVEMESSAGERESULT")
                                .and_then(|r| xml_element_text(&r, "Status"))
                                .is_some_and(|s| s.eq_ignore_ascii_case("error")))
                }
                Endpoint::SimpleBatch => status >= 400 || status == 207,
                _ => status >= 400,
            };
            let names_it = case
                .words
                .iter()
                .any(|w| text.to_lowercase().contains(&w.to_lowercase()));
            if !refused_status || !names_it {
                failures.push(format!(
                    "{what}: HTTP {status}, body {:?}",
                    text.chars().take(300).collect::<String>()
                ));
            }
            if text.contains("root:") {
                failures.push(format!("{what}: the answer leaks /etc/passwd"));
            }
            let after = refused_and_dead_letters(&e).await;
            if after.0 != before.0 + 1 || after.1 != before.1 + 1 || after.2 != before.2 + 1 {
                failures.push(format!(
                    "{what}: (refused, listed Recusada, DLQ) went from {before:?} to {after:?}, expected each +1"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Nothing hostile reached the log's transaction topics or Protheus.
    assert!(e.fake.requests().is_empty());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_the_routes_credentials_is_refused() {
    let e = Eaibus::start("auth", Options::default()).await;
    let c = credentials();
    let uuid = fresh_uuid();
    // A Protheus message (SourceApplication PROTHEUS: the route with credentials).
    let message = trace_order(&uuid, "000813", "T1|D MG 01|1|9|001", "T1|D MG|C1|01|C");
    let (status, body) = e.post_json(&message).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("credentials"), "{body}");
    let (status, _) = e
        .post_json_as(&message, Some((&c.user, "wrong password")))
        .await;
    assert_eq!(status, 401);
    let (status, result, _) = e
        .post_soap(
            &soap_request_escaped(&xml_fixture(
                "DocumentTraceabilityOrder_1_000.xml",
                &fresh_uuid(),
                &[("<SourceApplication>P12<", "<SourceApplication>PROTHEUS<")],
            )),
            None,
        )
        .await;
    assert_eq!(status, 401, "{result}");
    assert_eq!(
        on_topic(&e, &e.topic("DocumentTraceabilityOrder"), &uuid).await,
        0
    );
    let (status, body) = e.post_json_as(&message, Some((&c.user, &c.password))).await;
    assert_eq!(status, 202, "{body}");
    e.stop().await;
}

// -- batches -------------------------------------------------------------------------------

fn invalid_trace_order(uuid: &str) -> Value {
    let mut m = small_trace_order(uuid, "000820");
    m.get_mut("Content")
        .unwrap()
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !k.eq_ignore_ascii_case("Status"));
    m
}

async fn post_batch(
    e: &Eaibus,
    batch_type: &str,
    batch_uuid: &str,
    items: &[Value],
) -> (u16, Value) {
    let (status, text) = e
        .post_raw(
            &format!(
                "/totvseai/standardmessage/v1/transactions?batchType={batch_type}&batchUUID={batch_uuid}"
            ),
            Some("application/json"),
            json!({ "Items": items }).to_string().into_bytes(),
        )
        .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simple_batch_keeps_its_good_items_and_refuses_the_bad_one() {
    let e = Eaibus::start("simplebatch", Options::default()).await;
    let uuids: Vec<String> = (0..3).map(|_| fresh_uuid()).collect();
    let items = vec![
        small_trace_order(&uuids[0], "000821"),
        invalid_trace_order(&uuids[1]),
        small_trace_order(&uuids[2], "000822"),
    ];
    let batch_uuid = fresh_uuid();
    let (status, body) = post_batch(&e, "simpleBatch", &batch_uuid, &items).await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["BatchUUID"], json!(batch_uuid));
    assert_eq!(body["Accepted"], json!(false));
    let statuses: Vec<u64> = body["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![202, 400, 202], "{body}");
    assert!(
        body["Items"][1]["Response"].to_string().contains("Status"),
        "the bad item's answer says why: {body}"
    );
    for good in [&uuids[0], &uuids[2]] {
        e.wait_on_topic(&e.omni_topic, good).await;
        e.wait_situation(good, Situation::Finalizada).await;
    }
    let bad = e.record(&uuids[1]).await;
    assert_eq!(bad.situation, Situation::Recusada);
    assert_eq!(
        on_topic(&e, &e.topic("DocumentTraceabilityOrder"), &uuids[1]).await,
        0
    );
    let letters = e.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].uuid, uuids[1]);
    assert_eq!(letters[0].stage, "validate");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_transaction_with_a_bad_item_appends_nothing() {
    let e = Eaibus::start("txbatch", Options::default()).await;
    let uuids: Vec<String> = (0..3).map(|_| fresh_uuid()).collect();
    let items = vec![
        small_trace_order(&uuids[0], "000831"),
        small_trace_order(&uuids[1], "000832"),
        invalid_trace_order(&uuids[2]),
    ];
    let batch_uuid = fresh_uuid();
    let (status, body) = post_batch(&e, "businessTransaction", &batch_uuid, &items).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["BatchUUID"], json!(batch_uuid));
    assert_eq!(body["Accepted"], json!(false));
    let problems = body["Problems"].as_array().expect("Problems");
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(problems[0]["Item"], json!(2));
    assert_eq!(problems[0]["UUID"], json!(uuids[2]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for uuid in &uuids {
        assert_eq!(
            on_topic(&e, &e.topic("DocumentTraceabilityOrder"), uuid).await,
            0
        );
        assert_eq!(on_topic(&e, &e.omni_topic, uuid).await, 0);
    }
    // Every item is accounted for as refused, with the batch's reason…
    let counts = e.bus.monitor.counts().await.unwrap();
    assert_eq!((counts.received, counts.refused), (3, 3), "{counts:?}");
    assert_eq!(e.dead_letters().await.len(), 3);
    // …and the good items can be sent again once the batch is fixed.
    let (status, body) = post_batch(&e, "businessTransaction", &fresh_uuid(), &items[..2]).await;
    assert_eq!(status, 202, "{body}");
    for uuid in &uuids[..2] {
        e.wait_on_topic(&e.omni_topic, uuid).await;
    }
    e.stop().await;
}

/// Each refused batch item stays findable by its own UUID (the monitor accounts for every UUID
/// it refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batch_items_are_found_by_their_uuid() {
    let e = Eaibus::start("txbatchuuid", Options::default()).await;
    let good = fresh_uuid();
    let items = vec![
        small_trace_order(&good, "000833"),
        invalid_trace_order(&fresh_uuid()),
    ];
    let (status, _) = post_batch(&e, "businessTransaction", &fresh_uuid(), &items).await;
    assert_eq!(status, 400);
    let letters = e.dead_letters().await;
    assert!(
        letters.iter().any(|l| l.uuid == good),
        "the DLQ letters of the refused batch carry ids {:?}, not the item UUID {good}",
        letters.iter().map(|l| l.uuid.clone()).collect::<Vec<_>>()
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_sync_item_is_refused_whole() {
    let e = Eaibus::start("syncbatch", Options::default()).await;
    let uuids: Vec<String> = (0..3).map(|_| fresh_uuid()).collect();
    let mut sync_item = small_trace_order(&uuids[1], "000842");
    set_ci(
        sync_item.get_mut("Header").unwrap(),
        "DeliveryType",
        json!("Sync"),
    );
    let items = vec![
        small_trace_order(&uuids[0], "000841"),
        sync_item,
        small_trace_order(&uuids[2], "000843"),
    ];
    for batch_type in ["simpleBatch", "businessTransaction"] {
        let (status, body) = post_batch(&e, batch_type, &fresh_uuid(), &items).await;
        assert_eq!(status, 400, "{batch_type}: {body}");
        assert!(
            body.to_string().to_lowercase().contains("sync"),
            "{batch_type}: the answer names the sync item: {body}"
        );
        assert_eq!(body["Problems"][0]["Item"], json!(1), "{body}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for uuid in &uuids {
        assert_eq!(
            on_topic(&e, &e.topic("DocumentTraceabilityOrder"), uuid).await,
            0
        );
    }
    assert_eq!(e.bus.monitor.counts().await.unwrap().refused, 6);
    assert!(e.healthy().await);
    e.stop().await;
}
