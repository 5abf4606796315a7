//! End to end, OMNI ↔ eaibus ↔ (fake) Protheus, on the embedded log and on Kafka
//! (`EAIBUS_TEST_KAFKA`; skipped with a note when unset, failing under `CI=true`):
//!
//! - OMNI → Protheus over REST: CustomerVendor and ItemReserve (sync, their Responses teach the
//!   De/Para), RetailSales (async: 202, then Protheus' Response POSTed back and correlated), then
//!   RetailSalesCancellation; in order, in the shapes Protheus reads.
//! - The same over SOAP: RECEIVEMESSAGE with CDATA in, Response / Receipt in
//!   RECEIVEMESSAGERESULT out, and eaibus → Protheus over SOAP.
//! - Protheus → OMNI: a DocumentTraceabilityOrder lands on the Kafka route's topic, its
//!   Protheus ids turned back into OMNI's.

mod support;

use std::time::{Duration, Instant};

use eaibus::monitor::{LearnedDePara, Situation};
use serde_json::Value;
use support::*;

fn learned(alias: &str, field: &str, external: &str, internal: &str) -> LearnedDePara {
    LearnedDePara {
        alias: alias.into(),
        field: field.into(),
        external: external.into(),
        internal: internal.into(),
    }
}

fn is_wrapper_of(value: Option<&Value>, item: &str) -> usize {
    match value {
        Some(Value::Object(map)) if map.len() == 1 => match map.get(item) {
            Some(Value::Array(items)) => items.len(),
            other => panic!("expected {{\"{item}\": [...]}}, found {other:?}"),
        },
        other => panic!("expected a wrapper object {{\"{item}\": [...]}}, found {other:?}"),
    }
}

/// What is wrong with a sync answer that should carry Protheus' Response (Status OK, the
/// message's UUID, one pair `origin → destination`), if anything.
fn sync_answer_problem(
    body: &Value,
    uuid: &str,
    origin: &str,
    destination: &str,
) -> Option<String> {
    let ok = text_ci(body, &["Header", "Type"]).as_deref() == Some("Response")
        && text_ci(body, &["Content", "ProcessingInformation", "Status"])
            .is_some_and(|s| s.eq_ignore_ascii_case("ok"))
        && text_ci(body, &["Content", "ReceivedMessage", "UUID"]).as_deref() == Some(uuid);
    let ids = internal_ids(body);
    let pair = ids.first().map(|(_, o, d)| (o.as_str(), d.as_str()));
    (!ok || ids.len() != 1 || pair != Some((origin, destination))).then(|| {
        format!("the sync answer to {uuid} is not Protheus' Response with {origin} → {destination}: {body}")
    })
}

async fn omni_to_protheus_over_rest(log: LogKind) {
    let e = Eaibus::start("flow", Options::on(log)).await;
    let c = credentials();
    let t = tag();
    let customer_id = format!("OMNI-CLI-{t}");
    let reserve_id = format!("OMNI-RES-{t}");
    let sale_id = format!("OMNI-PED-{t}");
    let cancel_id = format!("OMNI-CANC-{t}");
    // Checks that fail today for known library bugs are reported at the end, so the rest of the
    // flow is still checked on every run.
    let mut deferred: Vec<String> = Vec::new();

    // 1. CustomerVendor, sync: the answer is Protheus' Response, and the pair is learned.
    let cv = fresh_uuid();
    let (status, body) = e.post_json(&customer_vendor(&cv, &customer_id)).await;
    assert_eq!(status, 200, "{body}");
    deferred.extend(sync_answer_problem(
        &body,
        &cv,
        &customer_id,
        CUSTOMER_DESTINATION,
    ));
    e.wait_situation(&cv, Situation::Finalizada).await;
    assert_eq!(
        e.bus.monitor.learned_depara(&cv).await.unwrap(),
        vec![learned("SA1", "A1_COD", &customer_id, CUSTOMER_DESTINATION)]
    );
    assert_eq!(
        e.depara_internal("SA1", "A1_COD", &customer_id)
            .await
            .as_deref(),
        Some(CUSTOMER_DESTINATION)
    );

    // 2. ItemReserve, sync.
    let ir = fresh_uuid();
    let (status, body) = e
        .post_json(&item_reserve(&ir, &reserve_id, &PRODUCTS))
        .await;
    assert_eq!(status, 200, "{body}");
    deferred.extend(sync_answer_problem(
        &body,
        &ir,
        &reserve_id,
        RESERVE_DESTINATION,
    ));
    e.wait_situation(&ir, Situation::Finalizada).await;
    assert_eq!(
        e.bus.monitor.learned_depara(&ir).await.unwrap(),
        vec![learned(
            "SC0",
            "C0_DOCRES",
            &reserve_id,
            RESERVE_DESTINATION
        )]
    );

    // 3. RetailSales, async: 202 now; Protheus answers 202 too and POSTs its Response later,
    //    which eaibus correlates with the sale.
    let rs = fresh_uuid();
    let (status, body) = e
        .post_json(&retail_sale(
            &rs,
            &sale_id,
            &customer_id,
            &reserve_id,
            &PRODUCTS,
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(text_ci(&body, &["UUID"]).as_deref(), Some(rs.as_str()));
    let callbacks = e.fake.wait_callbacks(&rs, 1, PATIENCE).await;
    assert!(
        (200..300).contains(&callbacks[0].status),
        "eaibus refused Protheus' async Response: {} {}",
        callbacks[0].status,
        callbacks[0].body
    );
    assert_eq!(
        e.wait_depara("SL1", "L1_DOC", &sale_id).await,
        SALE_DESTINATION
    );
    e.wait_situation(&rs, Situation::Finalizada).await;
    assert_eq!(
        e.bus.monitor.learned_depara(&rs).await.unwrap(),
        vec![learned("SL1", "L1_DOC", &sale_id, SALE_DESTINATION)]
    );

    // 4. Protheus → OMNI: the order generated from the sale is invoiced.
    let dto = fresh_uuid();
    let (status, body) = e
        .post_json_as(
            &trace_order(&dto, "000123", SALE_DESTINATION, CUSTOMER_DESTINATION),
            Some((&c.user, &c.password)),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // Ingest mapped the ids back to OMNI's before appending to the log (the source of truth)…
    let logged = e
        .wait_on_topic(&e.topic("DocumentTraceabilityOrder"), &dto)
        .await;
    let logged: Value = serde_json::from_slice(&logged.payload).expect("JSON on the log");
    assert_eq!(
        text_ci(&logged, &["Content", "RetailSalesInternalId"]).as_deref(),
        Some(sale_id.as_str()),
        "{logged}"
    );
    // …and what OMNI reads on the route's topic is that message.
    let record = e.wait_on_topic(&e.omni_topic, &dto).await;
    let published: Value = serde_json::from_slice(&record.payload).expect("JSON on the topic");
    assert_eq!(record.key_str(), Some("T1|D MG 01|000123|2"));
    // OMNI reads its own ids: the Protheus sale and customer ids were turned back.
    for (field, omni_id) in [
        ("RetailSalesInternalId", &sale_id),
        ("CustomerVendorInternalId", &customer_id),
    ] {
        let got = text_ci(&published, &["Content", field]);
        if got.as_deref() != Some(omni_id.as_str()) {
            deferred.push(format!(
                "OMNI read {field} {got:?} on {}, not its own id {omni_id} (the log has it mapped)",
                e.omni_topic
            ));
        }
    }
    e.wait_situation(&dto, Situation::Finalizada).await;

    // 5. RetailSalesCancellation, async; Protheus answers at once with the object shape.
    let canc = fresh_uuid();
    let (status, body) = e
        .post_json(&cancellation(&canc, &cancel_id, &sale_id))
        .await;
    assert_eq!(status, 202, "{body}");
    e.wait_situation(&canc, Situation::Finalizada).await;
    assert_eq!(
        e.depara_internal("SLX", "LX_CUPOM", &cancel_id)
            .await
            .as_deref(),
        Some(CANCELLATION_DESTINATION)
    );

    // Protheus got the four, in order, authenticated, in the JSON shapes its adapters read.
    let requests = e.fake.requests();
    let order: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.transaction.as_str(), r.uuid.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("CUSTOMERVENDOR", cv.as_str()),
            ("ITEMRESERVE", ir.as_str()),
            ("RETAILSALES", rs.as_str()),
            ("RETAILSALESCANCELLATION", canc.as_str()),
        ]
    );
    let authorization = basic_authorization(&c.user, &c.password);
    for r in &requests {
        assert_eq!(r.transport, Transport::Rest);
        assert_eq!(r.authorization.as_deref(), Some(authorization.as_str()));
        assert!(
            r.content_type
                .as_deref()
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{:?}",
            r.content_type
        );
    }
    let customer = &requests[0].message;
    assert!(
        get_ci(customer, &["Content", "GovernmentalInformation"]).is_some_and(Value::is_array),
        "MATI030O reads GovernmentalInformation as a plain array: {customer}"
    );
    assert_eq!(
        text_ci(customer, &["Content", "InternalId"]).as_deref(),
        Some(customer_id.as_str())
    );

    let reserve = &requests[1].message;
    assert_eq!(
        is_wrapper_of(get_ci(reserve, &["Content", "ReserveItemType"]), "Item"),
        2,
        "{reserve}"
    );
    assert!(
        get_ci(
            reserve,
            &["Content", "ReserveItemType", "Item", "0", "Quantity"]
        )
        .is_some_and(Value::is_number),
        "LOJI704O takes only a JSON number for Quantity: {reserve}"
    );
    assert_eq!(
        text_ci(reserve, &["Content", "Event"]).as_deref(),
        Some("upsert"),
        "LOJI704O reads Event from Content: {reserve}"
    );

    let sale = &requests[2].message;
    assert_eq!(
        is_wrapper_of(get_ci(sale, &["Content", "ListOfSaleItem"]), "SaleItem"),
        2,
        "{sale}"
    );
    assert_eq!(
        is_wrapper_of(
            get_ci(sale, &["Content", "ListOfSaleCondition"]),
            "SaleCondition"
        ),
        3
    );
    assert_eq!(
        is_wrapper_of(
            get_ci(
                sale,
                &["Content", "ListOfSaleItem", "SaleItem", "0", "ListOfTaxes"]
            ),
            "Tax"
        ),
        3
    );
    assert_eq!(
        text_ci(sale, &["Content", "Event"]).as_deref(),
        Some("upsert")
    );
    assert_eq!(
        text_ci(sale, &["Header", "Event"]).as_deref(),
        Some("upsert")
    );
    assert_eq!(
        text_ci(
            sale,
            &[
                "Content",
                "ListOfSaleItem",
                "SaleItem",
                "1",
                "ItemReserveInternalId"
            ]
        )
        .as_deref(),
        Some(reserve_id.as_str())
    );
    assert!(
        get_ci(sale, &["Content", "TotalPrice"]).is_some_and(Value::is_number),
        "{sale}"
    );
    assert!(
        get_ci(sale, &["Content", "DocumentCode"]).is_none_or(Value::is_string),
        "text fields stay strings: {sale}"
    );

    let cancel = &requests[3].message;
    assert_eq!(
        text_ci(cancel, &["Content", "RetailSalesInternalId"]).as_deref(),
        Some(sale_id.as_str())
    );

    // Every message is accounted for: nothing refused, nothing dead-lettered.
    let counts = e.bus.monitor.counts().await.unwrap();
    assert_eq!(counts.refused, 0, "{counts:?}");
    assert!(e.dead_letters().await.is_empty());
    e.stop().await;
    assert!(deferred.is_empty(), "{}", deferred.join("\n"));
}

async fn omni_to_protheus_over_soap(log: LogKind) {
    // CustomerVendor goes to Protheus' SOAP endpoint, as an XML adapter row would send it.
    let e = Eaibus::start(
        "soap",
        Options::on(log)
            .edit(
                "customer_vendor.toml",
                "route = \"protheus\"",
                "route = \"protheus-soap\"",
            )
            .edit(
                "customer_vendor.toml",
                "format = \"json\"",
                "format = \"xml\"",
            ),
    )
    .await;
    let c = credentials();
    let customer_id = format!("OMNI|CLI|{}", tag());

    // OMNI → eaibus: RECEIVEMESSAGE with the TOTVSMessage in CDATA; sync, so the answer is
    // Protheus' ResponseMessage inside RECEIVEMESSAGERESULT.
    let cv = fresh_uuid();
    let xml = xml_fixture(
        "CustomerVendor_2_005.xml",
        &cv,
        &[("OMNI|CLI|5530018", &customer_id)],
    );
    let (status, envelope, result) = e.post_soap(&soap_request_cdata(&xml), None).await;
    assert_eq!(status, 200, "{envelope}");
    assert!(result.contains("<ResponseMessage>"), "{result}");
    assert_eq!(
        xml_element_text(&result, "Status").as_deref(),
        Some("OK"),
        "{result}"
    );
    let received = xml_element_text(&result, "ReceivedMessage").unwrap_or_default();
    assert_eq!(
        xml_element_text(&received, "UUID").as_deref(),
        Some(cv.as_str()),
        "{result}"
    );
    let mut deferred = Vec::new();
    let pair = (
        xml_element_text(&result, "Origin"),
        xml_element_text(&result, "Destination"),
    );
    if pair
        != (
            Some(customer_id.clone()),
            Some(CUSTOMER_DESTINATION.to_owned()),
        )
    {
        deferred.push(format!(
            "the SOAP sync answer lacks Protheus' pair {customer_id} → {CUSTOMER_DESTINATION}: {result}"
        ));
    }

    // eaibus → Protheus over SOAP: RECEIVEMESSAGE carrying the XML form, authenticated.
    let calls = e.fake.wait_requests("CUSTOMERVENDOR", 1, PATIENCE).await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.transport, Transport::Soap);
    assert_eq!(call.uuid, cv);
    assert_eq!(call.internal_id, customer_id);
    assert!(call.inner_xml.contains("<TOTVSMessage"), "{}", call.body);
    assert!(call.body.contains("RECEIVEMESSAGE"), "{}", call.body);
    assert_eq!(
        call.authorization.as_deref(),
        Some(basic_authorization(&c.user, &c.password).as_str())
    );
    assert_eq!(
        e.wait_depara("SA1", "A1_COD", &customer_id).await,
        CUSTOMER_DESTINATION
    );
    e.wait_situation(&cv, Situation::Finalizada).await;

    // Protheus → eaibus over SOAP (escaped INMSG): async, so a ReceiptMessage comes back, and
    // the order status lands on the Kafka route's topic.
    let dto = fresh_uuid();
    let xml = xml_fixture(
        "DocumentTraceabilityOrder_1_001.xml",
        &dto,
        &[("000232", "000777")],
    );
    let (status, envelope, result) = e.post_soap(&soap_request_escaped(&xml), None).await;
    assert_eq!(status, 200, "{envelope}");
    assert!(result.contains("<ReceiptMessage>"), "{result}");
    let received = xml_element_text(&result, "ReceivedMessage").unwrap_or_default();
    assert_eq!(
        xml_element_text(&received, "UUID").as_deref(),
        Some(dto.as_str()),
        "{result}"
    );
    let record = e.wait_on_topic(&e.omni_topic, &dto).await;
    assert_eq!(record.key_str(), Some("T1|D MG 01|000777|2"));
    let published: Value = serde_json::from_slice(&record.payload).unwrap();
    assert_eq!(
        text_ci(&published, &["Content", "Status"]).as_deref(),
        Some("Empacotado")
    );
    assert_eq!(
        get_ci(
            &published,
            // The canonical form on Kafka: plain lists (the Protheus wrappers are read, not kept).
            &[
                "Content",
                "ReturnTraceability",
                "ListOfTraceability",
                "0",
                "Number"
            ]
        )
        .and_then(Value::as_str),
        Some("000004571"),
        "{published}"
    );
    e.wait_situation(&dto, Situation::Finalizada).await;
    let stored = e.record(&dto).await;
    assert_eq!(stored.format, eaibus::monitor::Format::Xml);
    assert_eq!(
        stored.raw_payload,
        xml.as_bytes(),
        "the raw payload is kept as received"
    );
    e.stop().await;
    assert!(deferred.is_empty(), "{}", deferred.join("\n"));
}

async fn trace_order_reaches_the_omni_topic(log: LogKind) {
    let e = Eaibus::start("trace", Options::on(log)).await;
    let c = credentials();
    // An order that did not come from OMNI: its Protheus ids have no OMNI id and stay.
    let dto = fresh_uuid();
    let message = trace_order(&dto, "000555", "T1|D MG 01|1|000999|001", "T1|D MG|C9|01|C");
    let (status, body) = e.post_json_as(&message, Some((&c.user, &c.password))).await;
    assert_eq!(status, 202, "{body}");
    let record = e.wait_on_topic(&e.omni_topic, &dto).await;
    assert_eq!(
        record.header("transaction"),
        Some("DOCUMENTTRACEABILITYORDER")
    );
    assert_eq!(record.header("route"), Some(e.routes.omni.as_str()));
    let published: Value = serde_json::from_slice(&record.payload).unwrap();
    assert_eq!(
        text_ci(&published, &["Content", "RetailSalesInternalId"]).as_deref(),
        Some("T1|D MG 01|1|000999|001")
    );
    assert_eq!(
        text_ci(&published, &["Content", "Number"]).as_deref(),
        Some("000555")
    );
    // It is on the transaction's topic too, once.
    let logged: Vec<_> = e
        .topic_records(&e.topic("DocumentTraceabilityOrder"))
        .await
        .into_iter()
        .filter(|r| r.header("uuid") == Some(dto.as_str()))
        .collect();
    assert_eq!(logged.len(), 1);
    e.wait_situation(&dto, Situation::Finalizada).await;
    assert_eq!(
        e.delivery_situation(&dto, &e.routes.omni).await,
        Some(Situation::Finalizada)
    );
    // The route's consumer group commits what it delivered once the route is quiet.
    let group = eaibus::delivery::group_of(&e.routes.omni);
    let (topic, partition) = (&logged[0].topic, logged[0].partition);
    let resume_at = logged[0].offset + 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let committed = e.bus.log.committed(&group, topic, partition).await.unwrap();
        if committed.is_some_and(|c| c >= resume_at) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{group} committed {committed:?} of {topic}/{partition}, not past {resume_at}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing went to Protheus.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(e.fake.requests().is_empty());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_omni_to_protheus_over_rest() {
    omni_to_protheus_over_rest(LogKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_omni_to_protheus_over_rest() {
    if let Some(brokers) = kafka_brokers("kafka_omni_to_protheus_over_rest") {
        omni_to_protheus_over_rest(LogKind::Kafka(brokers)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_omni_to_protheus_over_soap() {
    omni_to_protheus_over_soap(LogKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_omni_to_protheus_over_soap() {
    if let Some(brokers) = kafka_brokers("kafka_omni_to_protheus_over_soap") {
        omni_to_protheus_over_soap(LogKind::Kafka(brokers)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_trace_order_reaches_the_omni_topic() {
    trace_order_reaches_the_omni_topic(LogKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_trace_order_reaches_the_omni_topic() {
    if let Some(brokers) = kafka_brokers("kafka_trace_order_reaches_the_omni_topic") {
        trace_order_reaches_the_omni_topic(LogKind::Kafka(brokers)).await;
    }
}
