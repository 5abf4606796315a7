//! Delivery end to end against the fake Protheus (embedded log): dependency errors retried with
//! backoff, parking after the last automatic attempt (Bloqueado), permanent errors to the DLQ,
//! one order's messages kept in order while one is retried, "já integrado" taken as success,
//! timeouts (Não entregue) retried, sync answers under concurrency, and what reaches a Kafka
//! route.

mod support;

use std::time::{Duration, Instant};

use eaibus::monitor::{Situation, Stage};
use serde_json::Value;
use support::*;

/// Seeds with the customer and reservation of a sale already integrated.
fn sale_seeds(customer_id: &str, reserve_id: &str) -> Vec<[String; 4]> {
    let mut seeds = default_seeds();
    seeds.push(seed("SA1", "A1_COD", customer_id, CUSTOMER_DESTINATION));
    seeds.push(seed("SC0", "C0_DOCRES", reserve_id, RESERVE_DESTINATION));
    seeds
}

struct Sale {
    uuid: String,
    id: String,
    message: Value,
}

fn a_sale(customer_id: &str, reserve_id: &str) -> Sale {
    let uuid = fresh_uuid();
    let id = format!("OMNI-PED-{}", tag());
    let message = retail_sale(&uuid, &id, customer_id, reserve_id, &PRODUCTS);
    Sale { uuid, id, message }
}

fn gaps_ms(calls: &[Recorded]) -> Vec<u128> {
    calls
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_millis())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependency_errors_are_retried_with_backoff_until_they_succeed() {
    let e = Eaibus::start(
        "retry",
        Options {
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            ..Options::default()
        },
    )
    .await;
    e.fake.script(
        "CUSTOMERVENDOR",
        [Behavior::NotIntegrated, Behavior::NotIntegrated],
    );
    let customer_id = format!("OMNI-CLI-{}", tag());
    let uuid = fresh_uuid();
    let (status, body) = e.post_json(&customer_vendor(&uuid, &customer_id)).await;
    // The sync caller hears of the first failure, with Protheus' reason.
    assert!(status >= 400, "{status} {body}");
    assert!(
        body.to_string().contains("nao integrado"),
        "the answer names the problem: {body}"
    );

    let calls = e.fake.wait_requests("CUSTOMERVENDOR", 3, PATIENCE).await;
    e.wait_situation(&uuid, Situation::Finalizada).await;
    assert_eq!(
        e.depara_internal("SA1", "A1_COD", &customer_id)
            .await
            .as_deref(),
        Some(CUSTOMER_DESTINATION)
    );
    let gaps = gaps_ms(&calls);
    assert!(
        gaps[0] >= 100 && gaps[1] >= 200,
        "retries wait the backoff (100 ms, then 200 ms): {gaps:?}"
    );
    let delivery = e
        .wait_delivery(&uuid, &e.routes.protheus, Situation::Finalizada)
        .await;
    assert_eq!(delivery.attempts, 3);
    let failed = e
        .timeline(&uuid)
        .await
        .into_iter()
        .filter(|(_, s, _, _)| *s == Situation::Falhou)
        .count();
    assert_eq!(failed, 2, "two failed attempts on the timeline");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.fake.requests_for("CUSTOMERVENDOR").len(), 3);
    assert!(e.dead_letters().await.is_empty());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dependency_errors_are_retried_until_the_sale_is_integrated() {
    let customer_id = format!("OMNI-CLI-{}", tag());
    let reserve_id = format!("OMNI-RES-{}", tag());
    let e = Eaibus::start(
        "asyncretry",
        Options {
            seeds: sale_seeds(&customer_id, &reserve_id),
            ..Options::default()
        },
    )
    .await;
    // Protheus takes the sale (202) and answers later "Cliente ... nao integrado", twice.
    e.fake.script(
        "RETAILSALES",
        [Behavior::NotIntegrated, Behavior::NotIntegrated],
    );
    let sale = a_sale(&customer_id, &reserve_id);
    let (status, body) = e.post_json(&sale.message).await;
    assert_eq!(status, 202, "{body}");
    e.fake.wait_requests("RETAILSALES", 3, PATIENCE).await;
    assert_eq!(
        e.wait_depara("SL1", "L1_DOC", &sale.id).await,
        SALE_DESTINATION
    );
    e.wait_situation(&sale.uuid, Situation::Finalizada).await;
    let callbacks = e.fake.wait_callbacks(&sale.uuid, 3, PATIENCE).await;
    assert!(
        callbacks.iter().all(|c| (200..300).contains(&c.status)),
        "eaibus takes every async Response: {callbacks:?}"
    );
    assert!(e.dead_letters().await.is_empty());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_parked_after_its_last_automatic_attempt() {
    let e = Eaibus::start(
        "park",
        Options {
            max_attempts: 3,
            ..Options::default()
        },
    )
    .await;
    e.fake.always("CUSTOMERVENDOR", Behavior::NotIntegrated);
    let uuid = fresh_uuid();
    let customer_id = format!("OMNI-CLI-{}", tag());
    let _ = e.post_json(&customer_vendor(&uuid, &customer_id)).await;
    let delivery = e
        .wait_delivery(&uuid, &e.routes.protheus, Situation::Bloqueado)
        .await;
    assert_eq!(delivery.attempts, 3);
    assert_eq!(
        delivery.next_attempt_at, None,
        "no automatic retry is planned"
    );
    assert!(
        delivery
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("nao integrado")),
        "{delivery:?}"
    );
    let record = e.wait_situation(&uuid, Situation::Bloqueado).await;
    assert_eq!(record.stage, Stage::Parked);
    // Nothing more is sent without a manual reprocess, and a parked message is not a dead letter.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(e.fake.requests_for("CUSTOMERVENDOR").len(), 3);
    assert!(e.dead_letters().await.is_empty());

    // "Tentar novamente" sends it again; Protheus has the customer's dependency now.
    e.fake.always("CUSTOMERVENDOR", Behavior::Normal);
    e.bus
        .monitor
        .reset_for_reprocess(&uuid, &e.routes.protheus)
        .await
        .expect("a parked delivery can be reprocessed");
    e.wait_situation(&uuid, Situation::Finalizada).await;
    assert_eq!(e.fake.requests_for("CUSTOMERVENDOR").len(), 4);
    e.stop().await;
}

/// An async send is one attempt: the 202 and the Response that comes later are two halves of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_send_and_its_response_count_as_one_attempt() {
    let customer_id = format!("OMNI-CLI-{}", tag());
    let reserve_id = format!("OMNI-RES-{}", tag());
    let e = Eaibus::start(
        "asyncpark",
        Options {
            max_attempts: 3,
            seeds: sale_seeds(&customer_id, &reserve_id),
            ..Options::default()
        },
    )
    .await;
    e.fake.always("RETAILSALES", Behavior::NotIntegrated);
    let sale = a_sale(&customer_id, &reserve_id);
    let (status, _) = e.post_json(&sale.message).await;
    assert_eq!(status, 202);
    e.wait_delivery(&sale.uuid, &e.routes.protheus, Situation::Bloqueado)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = e.fake.requests_for("RETAILSALES").len();
    assert_eq!(
        sends, 3,
        "max_attempts = 3 should send the sale to Protheus 3 times before Bloqueado, it was sent {sends} times"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_goes_to_the_dlq_with_its_reason() {
    let e = Eaibus::start(
        "dlq",
        Options {
            backoff_initial_ms: 300,
            ..Options::default()
        },
    )
    .await;
    let reason = "Evento incorreto, para exclusao utilize a integracao de Cancelamento de Venda";
    e.fake.script(
        "CUSTOMERVENDOR",
        [
            Behavior::NotIntegrated,
            Behavior::Permanent(reason.to_owned()),
        ],
    );
    let uuid = fresh_uuid();
    let customer_id = format!("OMNI-CLI-{}", tag());
    let _ = e.post_json(&customer_vendor(&uuid, &customer_id)).await;
    let letters = eventually("a dead letter", || async {
        let letters = e.dead_letters().await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.uuid, uuid);
    assert_eq!(letter.transaction, "CUSTOMERVENDOR");
    assert!(letter.reason.contains("Evento incorreto"), "{letter:?}");
    assert_eq!(letter.stage, "deliver");
    assert_eq!(letter.origin, format!("route:{}", e.routes.protheus));
    assert_eq!(letter.attempts, 2);
    let payload: Value = serde_json::from_slice(&letter.payload).expect("the message as JSON");
    assert_eq!(
        text_ci(&payload, &["Header", "UUID"]).as_deref(),
        Some(uuid.as_str())
    );
    // The raw headers are there under the names operators read.
    let dlq = e.topic_records(&e.bus.config.dlq_topic()).await;
    for name in ["reason", "stage", "origin", "attempts", "first-seen"] {
        assert!(dlq[0].header(name).is_some(), "header {name} is missing");
    }
    let record = e.wait_situation(&uuid, Situation::Falhou).await;
    assert_eq!(record.stage, Stage::Dlq);
    let delivery = e
        .bus
        .monitor
        .delivery(&uuid, &e.routes.protheus)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivery.next_attempt_at, None,
        "a dead letter is not retried"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(e.fake.requests_for("CUSTOMERVENDOR").len(), 2);
    // first-seen is when eaibus first saw the message, not when it gave up on it.
    assert!(
        letter.first_seen_ms <= record.received_at + 100,
        "first-seen {} is {} ms after the message was received ({})",
        letter.first_seen_ms,
        letter.first_seen_ms - record.received_at,
        record.received_at
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_cancellation_waits_while_the_sale_is_retried() {
    let customer_id = format!("OMNI-CLI-{}", tag());
    let reserve_id = format!("OMNI-RES-{}", tag());
    let sale = a_sale(&customer_id, &reserve_id);
    // The cancellation passes ingest only when the sale's pair is known (a sale integrated
    // before, sent again): seed it.
    let mut seeds = sale_seeds(&customer_id, &reserve_id);
    seeds.push(seed("SL1", "L1_DOC", &sale.id, SALE_DESTINATION));
    let e = Eaibus::start(
        "order",
        Options {
            seeds,
            backoff_initial_ms: 150,
            ..Options::default()
        },
    )
    .await;
    e.fake
        .script("RETAILSALES", [Behavior::Http500, Behavior::Http500]);
    let (status, _) = e.post_json(&sale.message).await;
    assert_eq!(status, 202);
    e.fake.wait_requests("RETAILSALES", 1, PATIENCE).await;

    let canc = fresh_uuid();
    let (status, body) = e
        .post_json(&cancellation(
            &canc,
            &format!("OMNI-CANC-{}", tag()),
            &sale.id,
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    e.wait_situation(&canc, Situation::Finalizada).await;
    e.wait_situation(&sale.uuid, Situation::Finalizada).await;
    let order: Vec<String> = e
        .fake
        .requests()
        .iter()
        .map(|r| r.transaction.clone())
        .collect();
    assert_eq!(
        order,
        [
            "RETAILSALES",
            "RETAILSALES",
            "RETAILSALES",
            "RETAILSALESCANCELLATION"
        ],
        "one order's messages reach Protheus in order"
    );
    e.stop().await;
}

/// Protocol §5.5: send cancellations only after the sale's Response. An async sale answered 202
/// is not done until its Response says so; if that Response is "não integrado", the sale is sent
/// again, and the cancellation must still come after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_waits_for_the_sales_async_response() {
    let customer_id = format!("OMNI-CLI-{}", tag());
    let reserve_id = format!("OMNI-RES-{}", tag());
    let sale = a_sale(&customer_id, &reserve_id);
    let mut seeds = sale_seeds(&customer_id, &reserve_id);
    seeds.push(seed("SL1", "L1_DOC", &sale.id, SALE_DESTINATION));
    let e = Eaibus::start(
        "orderasync",
        Options {
            seeds,
            ..Options::default()
        },
    )
    .await;
    e.fake.set_async_delay(Duration::from_millis(400));
    e.fake.script("RETAILSALES", [Behavior::NotIntegrated]);
    let (status, _) = e.post_json(&sale.message).await;
    assert_eq!(status, 202);
    e.fake.wait_requests("RETAILSALES", 1, PATIENCE).await;
    let canc = fresh_uuid();
    let (status, _) = e
        .post_json(&cancellation(
            &canc,
            &format!("OMNI-CANC-{}", tag()),
            &sale.id,
        ))
        .await;
    assert_eq!(status, 202);
    e.wait_situation(&sale.uuid, Situation::Finalizada).await;
    e.wait_situation(&canc, Situation::Finalizada).await;
    let order: Vec<String> = e
        .fake
        .requests()
        .iter()
        .map(|r| r.transaction.clone())
        .collect();
    assert_eq!(
        order,
        ["RETAILSALES", "RETAILSALES", "RETAILSALESCANCELLATION"],
        "the cancellation went to Protheus before the sale was integrated"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ja_integrado_with_the_protheus_id_counts_as_success() {
    let customer_id = format!("OMNI-CLI-{}", tag());
    let reserve_id = format!("OMNI-RES-{}", tag());
    let e = Eaibus::start(
        "already",
        Options {
            seeds: sale_seeds(&customer_id, &reserve_id),
            ..Options::default()
        },
    )
    .await;
    let protheus_id = "T1|D MG 01|1|000777|001";
    e.fake.script(
        "RETAILSALES",
        [Behavior::AlreadyIntegrated(protheus_id.to_owned())],
    );
    let sale = a_sale(&customer_id, &reserve_id);
    let (status, _) = e.post_json(&sale.message).await;
    assert_eq!(status, 202);
    assert_eq!(e.wait_depara("SL1", "L1_DOC", &sale.id).await, protheus_id);
    e.wait_situation(&sale.uuid, Situation::Finalizada).await;
    let learned = e.bus.monitor.learned_depara(&sale.uuid).await.unwrap();
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0].internal, protheus_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        e.fake.requests_for("RETAILSALES").len(),
        1,
        "not sent again"
    );
    assert!(e.dead_letters().await.is_empty());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_nao_entregue_and_is_retried() {
    let e = Eaibus::start(
        "timeout",
        Options {
            timeout_ms: 300,
            ..Options::default()
        },
    )
    .await;
    e.fake.script(
        "CUSTOMERVENDOR",
        [Behavior::Delay(Duration::from_millis(1_500))],
    );
    let uuid = fresh_uuid();
    let customer_id = format!("OMNI-CLI-{}", tag());
    let started = Instant::now();
    let (status, body) = e.post_json(&customer_vendor(&uuid, &customer_id)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "the sync caller is answered at the route timeout, not when Protheus finally answers"
    );
    assert!(status >= 500, "{status} {body}");
    e.wait_situation(&uuid, Situation::Finalizada).await;
    let calls = e.fake.requests_for("CUSTOMERVENDOR");
    assert_eq!(calls.len(), 2);
    let timeline = e.timeline(&uuid).await;
    assert!(
        timeline
            .iter()
            .any(|(route, s, _, _)| *s == Situation::NaoEntregue
                && route.as_deref() == Some(e.routes.protheus.as_str())),
        "a Não entregue attempt is on the timeline: {timeline:#?}"
    );
    assert_eq!(
        e.depara_internal("SA1", "A1_COD", &customer_id)
            .await
            .as_deref(),
        Some(CUSTOMER_DESTINATION)
    );
    e.stop().await;
}

/// Every sync caller gets Protheus' own Response, whoever runs the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sync_callers_each_get_protheus_response() {
    let e = Eaibus::start("syncrace", Options::default()).await;
    // Three waves of 32 concurrent callers: the race is narrow, so give it room to show.
    let mut synthesized = Vec::new();
    for _ in 0..3 {
        let mut posts = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let uuid = fresh_uuid();
            let message = customer_vendor(&uuid, &format!("OMNI-CLI-{}", tag()));
            let (http, url) = (e.http.clone(), e.rest_url());
            posts.spawn(async move { (uuid, post_json_to(&http, &url, &message).await) });
        }
        for (uuid, (status, body)) in posts.join_all().await {
            assert_eq!(status, 200, "{body}");
            if text_ci(&body, &["Header", "SourceApplication"]).as_deref() != Some("PROTHEUS")
                || internal_ids(&body).is_empty()
            {
                synthesized.push(uuid);
            }
        }
    }
    assert!(
        synthesized.is_empty(),
        "{} of 96 sync callers got an OK Response made up by eaibus (no ListOfInternalId) instead of Protheus' own",
        synthesized.len()
    );
    assert_eq!(e.fake.requests_for("CUSTOMERVENDOR").len(), 96);
    e.stop().await;
}

/// A sync message whose first attempt failed for a passing reason, and which eaibus then
/// delivered on retry, is answered with Protheus' Response when the sender repeats it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_sync_message_is_not_answered_with_a_stale_failure() {
    let e = Eaibus::start("stale", Options::default()).await;
    e.fake.script("CUSTOMERVENDOR", [Behavior::NotIntegrated]);
    let uuid = fresh_uuid();
    let customer_id = format!("OMNI-CLI-{}", tag());
    let message = customer_vendor(&uuid, &customer_id);
    let (first, _) = e.post_json(&message).await;
    assert!(first >= 400);
    e.wait_situation(&uuid, Situation::Finalizada).await;
    let (again, body) = e.post_json(&message).await;
    assert_eq!(
        again, 200,
        "the message was delivered, yet its repeat is answered {again}: {body}"
    );
    assert_eq!(internal_ids(&body).len(), 1, "{body}");
    e.stop().await;
}

/// The Kafka route's topic (`omni.order-trace`) is eaibus' to create, like its other topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_route_topic_is_created_by_eaibus() {
    let e = Eaibus::start(
        "routetopic",
        Options {
            create_route_topic: false,
            ..Options::default()
        },
    )
    .await;
    let uuid = fresh_uuid();
    let (status, _) = e.post_json(&small_trace_order(&uuid, "000901")).await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(5);
    let delivery = loop {
        let d = e.bus.monitor.delivery(&uuid, &e.routes.omni).await.unwrap();
        if d.as_ref()
            .is_some_and(|d| d.situation == Situation::Finalizada)
            || Instant::now() > deadline
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery = delivery.expect("a delivery was planned");
    assert_eq!(
        delivery.situation,
        Situation::Finalizada,
        "the trace order was not published to {} after {} attempts: {:?}",
        e.omni_topic,
        delivery.attempts,
        delivery.last_error
    );
    e.stop().await;
}

/// A Kafka route that keeps failing (its broker is down) is parked after max_attempts, like an
/// EAI route, with growing backoff in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_kafka_route_is_parked_after_max_attempts() {
    let e = Eaibus::start(
        "routepark",
        Options {
            route_topic_down: true,
            max_attempts: 2,
            backoff_initial_ms: 50,
            backoff_max_ms: 400,
            ..Options::default()
        },
    )
    .await;
    let uuid = fresh_uuid();
    let (status, _) = e.post_json(&small_trace_order(&uuid, "000903")).await;
    assert_eq!(status, 202);
    // Two attempts 50 ms apart are over well within 1.5 s.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let delivery = e
        .bus
        .monitor
        .delivery(&uuid, &e.routes.omni)
        .await
        .unwrap()
        .expect("a delivery was planned");
    assert!(
        delivery.situation == Situation::Bloqueado && delivery.attempts == 2,
        "max_attempts = 2, yet after 1.5 s the delivery is {} with {} attempts and another planned at {:?}: {:?}",
        delivery.situation,
        delivery.attempts,
        delivery.next_attempt_at,
        delivery.last_error
    );
    // Every try counts, the route consumer's own first one too.
    assert_eq!(
        e.route_topic_refusals
            .load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the route's topic was tried more often than the attempts recorded"
    );
    e.stop().await;
}

/// A Kafka route's topic that refuses a message for good: the route consumer's own append was
/// its one attempt, and the message goes to the DLQ without a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_route_topic_refuses_goes_to_the_dlq_after_one_attempt() {
    let e = Eaibus::start(
        "routerefuse",
        Options {
            route_topic_down: true,
            route_topic_refuses: true,
            backoff_initial_ms: 50,
            backoff_max_ms: 50,
            ..Options::default()
        },
    )
    .await;
    let uuid = fresh_uuid();
    let (status, _) = e.post_json(&small_trace_order(&uuid, "000904")).await;
    assert_eq!(status, 202);
    let letters = eventually("a dead letter", || async {
        let letters = e.dead_letters().await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].uuid, uuid);
    assert!(letters[0].reason.contains("refuses"), "{:?}", letters[0]);
    assert_eq!(letters[0].attempts, 1);
    let delivery = e
        .wait_delivery(&uuid, &e.routes.omni, Situation::Falhou)
        .await;
    assert_eq!(delivery.attempts, 1);
    assert_eq!(
        delivery.next_attempt_at, None,
        "no retry after a permanent refusal"
    );
    // Long past the backoff: it was tried once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        e.route_topic_refusals
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    e.stop().await;
}

/// A Kafka route's consumer appends what it polls itself, except a message whose order has an
/// earlier message still waiting for a retry along the route: that one waits behind it, while
/// other orders' messages go at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_route_keeps_an_orders_messages_in_order_around_a_retry() {
    let e = Eaibus::start(
        "routeorder",
        Options {
            route_topic_down: true,
            backoff_initial_ms: 1_500,
            backoff_max_ms: 1_500,
            ..Options::default()
        },
    )
    .await;
    let first = fresh_uuid();
    let (status, _) = e.post_json(&small_trace_order(&first, "000920")).await;
    assert_eq!(status, 202);
    e.wait_delivery(&first, &e.routes.omni, Situation::Falhou)
        .await;
    e.route_topic_down
        .store(false, std::sync::atomic::Ordering::SeqCst);

    let (later, other) = (fresh_uuid(), fresh_uuid());
    for (uuid, order) in [(&later, "000920"), (&other, "000921")] {
        let (status, _) = e.post_json(&small_trace_order(uuid, order)).await;
        assert_eq!(status, 202);
    }
    assert_eq!(
        e.record(&later).await.business_key,
        e.record(&first).await.business_key
    );
    e.wait_on_topic(&e.omni_topic, &other).await;
    e.wait_on_topic(&e.omni_topic, &later).await;
    let records = e.topic_records(&e.omni_topic).await;
    let at = |uuid: &str| {
        records
            .iter()
            .find(|r| r.header("uuid") == Some(uuid))
            .map(|r| (r.partition, r.offset))
            .unwrap_or_else(|| {
                panic!("the order's later message reached the topic before {uuid}, its retry")
            })
    };
    let (first_at, later_at) = (at(&first), at(&later));
    assert_eq!(first_at.0, later_at.0, "one order, one partition");
    assert!(
        first_at.1 < later_at.1,
        "the later message of the order went before the retried one: {first_at:?} {later_at:?}"
    );
    let mut attempts = Vec::new();
    for uuid in [&first, &later, &other] {
        let delivery = e
            .wait_delivery(uuid, &e.routes.omni, Situation::Finalizada)
            .await;
        attempts.push(delivery.attempts);
    }
    assert_eq!(attempts, [2, 1, 1]);
    e.stop().await;
}

/// What a route delivers is what ingest appended to the log, De/Para applied: OMNI reads its
/// own sale id in a DocumentTraceabilityOrder, not Protheus'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_delivers_the_message_as_mapped_at_ingest() {
    let sale_id = format!("OMNI-PED-{}", tag());
    let mut seeds = default_seeds();
    seeds.push(seed("SL1", "L1_DOC", &sale_id, SALE_DESTINATION));
    let e = Eaibus::start(
        "mapped",
        Options {
            seeds,
            ..Options::default()
        },
    )
    .await;
    let uuid = fresh_uuid();
    let mut message = small_trace_order(&uuid, "000902");
    set_ci(
        message.get_mut("Content").unwrap(),
        "RetailSalesInternalId",
        Value::String(SALE_DESTINATION.into()),
    );
    let (status, _) = e.post_json(&message).await;
    assert_eq!(status, 202);
    let logged = e
        .wait_on_topic(&e.topic("DocumentTraceabilityOrder"), &uuid)
        .await;
    let logged: Value = serde_json::from_slice(&logged.payload).unwrap();
    assert_eq!(
        text_ci(&logged, &["Content", "RetailSalesInternalId"]).as_deref(),
        Some(sale_id.as_str()),
        "ingest maps the Protheus id to OMNI's before appending"
    );
    let published = e.wait_on_topic(&e.omni_topic, &uuid).await;
    let published: Value = serde_json::from_slice(&published.payload).unwrap();
    assert_eq!(
        text_ci(&published, &["Content", "RetailSalesInternalId"]).as_deref(),
        Some(sale_id.as_str()),
        "the route published the message as it was before De/Para"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_workers_deliveries_are_recorded_as_a_sync_run() {
    let sale_id = format!("OMNI-PED-{}", tag());
    let mut seeds = default_seeds();
    seeds.push(seed("SL1", "L1_DOC", &sale_id, SALE_DESTINATION));
    let e = Eaibus::start(
        "sync-run",
        Options {
            seeds,
            ..Options::default()
        },
    )
    .await;
    let uuid = fresh_uuid();
    let mut message = small_trace_order(&uuid, "000903");
    set_ci(
        message.get_mut("Content").unwrap(),
        "RetailSalesInternalId",
        Value::String(SALE_DESTINATION.into()),
    );
    let (status, _) = e.post_json(&message).await;
    assert_eq!(status, 202);
    e.wait_on_topic(&e.omni_topic, &uuid).await;
    // The route consumer records the delivery just after the append the topic shows.
    let route = e.routes.omni.clone();
    e.wait_delivery(&uuid, &route, Situation::Finalizada).await;
    // The run closes once the route has nothing more to do.
    let deadline = Instant::now() + PATIENCE;
    let run = loop {
        let runs = e
            .bus
            .monitor
            .sync_runs(&eaibus::monitor::SyncRunFilter {
                kind: Some(eaibus::monitor::SyncKind::Delivery),
                ..Default::default()
            })
            .await
            .unwrap()
            .runs;
        if let Some(run) = runs
            .into_iter()
            .find(|r| r.scope == route && r.finished_at.is_some())
        {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "no finished delivery run of {route}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        run.started_by,
        eaibus::monitor::StartedBy::Webhook,
        "it came over REST"
    );
    assert_eq!((run.succeeded, run.failed), (1, 0));
    assert_eq!(run.status, eaibus::monitor::SyncStatus::Success);
    // The delivery's latency (appended → delivered) was observed for the route.
    let observed = eaibus::telemetry::global()
        .delivery_histogram(&route)
        .map_or(0, |h| h.count());
    assert!(observed >= 1, "no delivery latency observed for {route}");
    e.stop().await;
}
