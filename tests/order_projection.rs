//! The order projection on the embedded log: standard messages → order events → read model,
//! effects once when events come twice, outputs, queries by every id, rebuild equal to live,
//! the read model on PostgreSQL, and replays to a route or a consumer group.

mod order_support;

use std::time::{Duration, Instant};

use eaibus::bus::Bus;
use eaibus::config::Config;
use eaibus::log::{NewRecord, Position};
use eaibus::message::Message;
use eaibus::order::{self, events, projection, query, rebuild, replay, store::OrderStore};
use serde_json::json;

struct Setup {
    _dir: tempfile::TempDir,
    bus: Bus,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = Config::default();
    config.log.path = dir.path().join("log.db");
    config.store.url = format!("sqlite://{}", dir.path().join("eaibus.db").display());
    config.store.depara_url = format!("sqlite://{}", dir.path().join("depara.db").display());
    config.paths.depara = dir.path().join("no-seeds");
    config.paths.data = dir.path().to_path_buf();
    let bus = Bus::open(config).await.expect("the bus opens");
    order::ensure_topics(&bus).await.expect("order topics");
    Setup { _dir: dir, bus }
}

fn message(bus: &Bus, value: serde_json::Value) -> Message {
    bus.codec()
        .decode_json(value.to_string().as_bytes())
        .expect("a valid message")
}

fn header(uuid: &str, transaction: &str, version: &str, at: &str) -> serde_json::Value {
    json!({"UUID": uuid, "Type": "BusinessMessage", "SubType": "event", "Event": "upsert",
        "Transaction": transaction, "Version": version, "SourceApplication": "P12",
        "ProductName": "PROTHEUS", "GeneratedOn": at})
}

const OMNI: &str = "OMNI-100";
const SALE: &str = "T1|01|1|000123|001";
const ORDER: &str = "T1|01|000456|2";
const PICKUP: &str = "T1|01|000789|2";

fn sale(bus: &Bus) -> Message {
    message(
        bus,
        json!({"Header": header("u-sale", "RETAILSALES", "2.009", "2024-05-02T10:00:00Z"),
            "Content": {"InternalId": OMNI, "CustomerVendorInternalId": "CLI-1",
                "ListOfSaleItem": [
                    {"ItemInternalId": "SKU-1", "Quantity": 1, "ItemDeliveryType": "3",
                     "ItemReserveInternalId": "RES-1"},
                    {"ItemInternalId": "SKU-2", "Quantity": 1, "ItemDeliveryType": "1"}]}}),
    )
}

fn response(bus: &Bus) -> Message {
    message(
        bus,
        json!({"Header": {"UUID": "u-resp", "Type": "Response", "Transaction": "RETAILSALES",
                "Version": "2.009", "SourceApplication": "P12", "ProductName": "PROTHEUS",
                "GeneratedOn": "2024-05-02T10:01:00Z"},
            "Content": {"ReceivedMessage": {"UUID": "u-sale"},
                "ProcessingInformation": {"Status": "OK"},
                "ReturnContent": {"ListOfInternalId": [
                    {"Name": "RETAILSALES", "Origin": OMNI, "Destination": SALE}]}}}),
    )
}

fn dto(bus: &Bus, uuid: &str, status: &str, at: &str, key: &str) -> Message {
    message(
        bus,
        json!({"Header": header(uuid, "DOCUMENTTRACEABILITYORDER", "1.001", at),
            "Content": {"InternalId": ORDER, "Number": "000456", "Status": status,
                "RetailSalesInternalId": SALE, "Type": "001",
                "ReturnTraceability": {"ListOfTraceability": if key.is_empty() { json!([]) } else { json!([
                    {"InternalId": "T1|01|000777|1|C01|01", "Number": "000777", "Serie": "1",
                     "Status": "Transmitida", "ElectronicAccessKey": key,
                     "ListOfParentInternalId": {"ParentInternalId": {"InternalId": ORDER, "TypeCode": "004"}}}]) }}}}),
    )
}

fn dto_retail(bus: &Bus, uuid: &str, status: &str, at: &str) -> Message {
    message(
        bus,
        json!({"Header": header(uuid, "DOCUMENTTRACEABILITYORDERRETAIL", "1.001", at),
            "Content": {"InternalId": PICKUP, "Number": "000789", "Status": status,
                "RetailSalesInternalId": SALE}}),
    )
}

/// The order events of the whole story, in the order they are published: the first report
/// comes before the Response that maps its sale.
fn story(bus: &Bus) -> Vec<events::OrderEvent> {
    let sale = sale(bus);
    let mut all = events::from_accepted_at(&sale, 1);
    all.extend(events::from_accepted_at(
        &dto(bus, "u-d1", "Pedido Liberado", "2024-05-02T10:05:00Z", ""),
        2,
    ));
    all.extend(events::from_response_at(&sale, &response(bus), 3));
    all.extend(events::from_accepted_at(
        &dto(bus, "u-d2", "FATURADO", "2024-05-03T09:00:00Z", ""),
        4,
    ));
    all.extend(events::from_accepted_at(
        &dto_retail(bus, "u-r1", "Aberto", "2024-05-03T09:30:00Z"),
        5,
    ));
    let packed = dto(
        bus,
        "u-d3",
        "Empacotado ",
        "2024-05-03T12:00:00Z",
        "31240517745613000150650010000124101201241070",
    );
    all.extend(events::from_accepted_at(&packed, 6));
    // The same message again (a repeat by Protheus): the same event ids.
    all.extend(events::from_accepted_at(&packed, 7));
    all
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn caught_up(bus: &Bus, store: &OrderStore) -> bool {
    let topic = order::events_topic(&bus.config);
    let checkpoints = store.checkpoints().await.unwrap_or_default();
    for partition in bus.log.partitions(&topic).await.expect("partitions") {
        let end = bus.log.end_offset(&topic, partition).await.expect("end");
        if end > 0 && checkpoints.get(&(topic.clone(), partition)).copied() != Some(end) {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn messages_become_an_order_that_rebuilds_to_the_same_digest() {
    let Setup { _dir, bus } = setup().await;
    let store = OrderStore::open_for(&bus.config).await.expect("store");
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let live = tokio::spawn(projection::run_with(
        bus.clone(),
        store.clone(),
        projection::ProjectionOptions::default(),
        shutdown,
    ));

    let all = story(&bus);
    events::publish(bus.log.as_ref(), &bus.config, &all)
        .await
        .expect("published");
    wait_for("the projection", || caught_up(&bus, &store)).await;

    // Found by every id, with its history and invoice.
    let view = query::find(&store, OMNI)
        .await
        .expect("query")
        .expect("the order");
    assert_eq!(view.status, "EMPACOTADO", "{view}");
    let parts: Vec<_> = view
        .parts
        .iter()
        .map(|p| (p.delivery.as_str(), p.status.as_str()))
        .collect();
    assert_eq!(
        parts,
        [("ENTREGA", "EMPACOTADO"), ("RETIRA_POSTERIOR", "ABERTO")]
    );
    assert_eq!(view.invoices.len(), 1);
    assert_eq!(view.invoices[0].access_key.len(), 44);
    for id in [SALE, ORDER, PICKUP] {
        let by = query::find(&store, id)
            .await
            .expect("query")
            .expect("found");
        assert_eq!(by.order_id, OMNI);
        assert_eq!(by.found_by.as_deref(), Some(id));
    }
    assert!(
        query::find(&store, "nobody")
            .await
            .expect("query")
            .is_none()
    );
    let texts: Vec<_> = view
        .history
        .iter()
        .filter(|h| h.delivery.as_deref() == Some("ENTREGA"))
        .map(|h| (h.text.trim().to_owned(), h.effect.clone()))
        .collect();
    assert_eq!(
        texts,
        [
            ("Recebido".to_owned(), "APPLIED".to_owned()),
            ("Integrado".into(), "APPLIED".into()),
            // Reported at 10:05, integrated at 10:01: in time order, after Integrado.
            ("Pedido Liberado".into(), "APPLIED".into()),
            ("FATURADO".into(), "APPLIED".into()),
            ("Empacotado".into(), "APPLIED".into()),
        ]
    );
    let json = serde_json::to_value(&view).expect("serialisable");
    assert_eq!(json["order_id"], OMNI);

    // Status changes went out on eai.order-status, keyed by the order.
    let status_topic = order::status_topic(&bus.config);
    wait_for("the order-status records", || async {
        let mut n = 0;
        for p in bus.log.partitions(&status_topic).await.unwrap_or_default() {
            n += bus.log.end_offset(&status_topic, p).await.unwrap_or(0);
        }
        n >= 6
    })
    .await;
    let mut statuses = Vec::new();
    for p in bus.log.partitions(&status_topic).await.expect("partitions") {
        for r in bus.log.read(&status_topic, p, 0, 100).await.expect("read") {
            assert_eq!(r.key_str(), Some(OMNI));
            let event: order::output::OrderStatusEvent =
                serde_json::from_slice(&r.payload).expect("order-status JSON");
            statuses.push((event.delivery, event.status, event.previous_status));
        }
    }
    assert!(statuses.contains(&(
        "ENTREGA".into(),
        "FATURADO".into(),
        Some("PEDIDO_LIBERADO".into())
    )));

    // Every event published a second time (at-least-once): nothing changes.
    let before = store.digest().await.expect("digest");
    events::publish(bus.log.as_ref(), &bus.config, &all)
        .await
        .expect("published again");
    wait_for("the projection", || caught_up(&bus, &store)).await;
    assert_eq!(store.digest().await.expect("digest"), before);

    stop.send(true).expect("stop");
    live.await.expect("joined").expect("the projection ran");

    // Rebuild from offset 0: the same digest as the live read model, swapped in, and the same
    // aggregate state (facts and announced statuses) for the projection to go on from.
    let aggregate = store.order(OMNI).await.expect("read").expect("the order");
    let report = rebuild::rebuild(&bus, false).await.expect("rebuilt");
    assert_eq!(report.equals_live(), Some(true), "{report}");
    assert!(report.swapped);
    assert_eq!(report.orders, 1);
    assert_eq!(store.digest().await.expect("digest"), report.digest);
    assert_eq!(
        store.order(OMNI).await.expect("read"),
        Some(aggregate),
        "the rebuilt aggregate state"
    );
    assert_eq!(
        query::find(&store, ORDER)
            .await
            .expect("query")
            .expect("found")
            .status,
        "EMPACOTADO"
    );
}

#[tokio::test]
async fn a_batch_delivered_twice_takes_effect_once() {
    let Setup { _dir, bus } = setup().await;
    let store = OrderStore::open_for(&bus.config).await.expect("store");
    let positions = events::publish(bus.log.as_ref(), &bus.config, &story(&bus))
        .await
        .expect("published");
    let topic = order::events_topic(&bus.config);
    let mut records = Vec::new();
    for p in bus.log.partitions(&topic).await.expect("partitions") {
        records.extend(bus.log.read(&topic, p, 0, 1000).await.expect("read"));
    }
    assert_eq!(records.len(), positions.len());
    let first = store
        .project(&records, &order::store::NoOutputs)
        .await
        .expect("projected");
    assert_eq!(first.projected, records.len());
    let digest = store.digest().await.expect("digest");
    let again = store
        .project(&records, &order::store::NoOutputs)
        .await
        .expect("projected again");
    assert_eq!(again.projected, 0);
    assert_eq!(again.already_applied, records.len());
    assert!(again.announcements.is_empty());
    assert_eq!(store.digest().await.expect("digest"), digest);
    // And a rebuild of the same log gives that digest.
    let report = rebuild::rebuild_into(
        bus.log.as_ref(),
        &topic,
        &store,
        rebuild::RebuildOptions {
            swap: false,
            ..Default::default()
        },
        false,
    )
    .await
    .expect("rebuilt");
    assert_eq!(report.digest, digest);
}

#[tokio::test]
async fn routes_that_ask_get_a_validated_traceability_message() {
    let Setup { _dir, bus } = setup().await;
    let store = OrderStore::open_for(&bus.config).await.expect("store");
    let targets = projection::trace_targets([
        ("omni", Some("1.001")),
        ("protheus", None),
        ("legacy", Some("1.000")),
    ]);
    assert_eq!(targets.len(), 2);
    let outputs = order::output::Outputs::for_bus(&bus, targets);
    events::publish(bus.log.as_ref(), &bus.config, &story(&bus))
        .await
        .expect("published");
    let topic = order::events_topic(&bus.config);
    let mut records = Vec::new();
    for p in bus.log.partitions(&topic).await.expect("partitions") {
        records.extend(bus.log.read(&topic, p, 0, 1000).await.expect("read"));
    }
    store.project(&records, &outputs).await.expect("projected");
    let outbox = store.outbox(100).await.expect("outbox");
    let traces: Vec<_> = outbox.iter().filter(|r| r.kind == "trace:omni").collect();
    assert!(!traces.is_empty(), "{outbox:#?}");
    let legacy: Vec<_> = outbox.iter().filter(|r| r.kind == "trace:legacy").collect();
    assert_eq!(legacy.len(), traces.len(), "{outbox:#?}");
    for row in &legacy {
        let message = bus
            .codec()
            .decode_json(row.payload.as_bytes())
            .expect("a message");
        assert_eq!(message.header.version(), Some("1.000"));
        bus.registry
            .validate(&message)
            .expect("valid against the 1.000 schema");
    }
    for row in &traces {
        let message = bus
            .codec()
            .decode_json(row.payload.as_bytes())
            .expect("a message");
        bus.registry
            .validate(&message)
            .expect("valid against our schema");
        assert_eq!(message.header.version(), Some("1.001"));
        assert_eq!(
            message.content["RetailSalesInternalId"], OMNI,
            "OMNI knows its own sale id"
        );
    }
    let sent = order::output::drain(&bus, &store).await.expect("drained");
    assert_eq!(sent, outbox.len());
    assert!(store.outbox(10).await.expect("outbox").is_empty());
    // Each traceability message is recorded and planned on its route only.
    let uuid = bus
        .codec()
        .decode_json(traces[0].payload.as_bytes())
        .expect("message")
        .uuid()
        .to_owned();
    let deliveries = bus.monitor.deliveries(&uuid).await.expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].route, "omni");
}

#[tokio::test]
async fn the_read_model_works_on_postgres() {
    let Ok(url) = std::env::var("EAIBUS_TEST_POSTGRES") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but EAIBUS_TEST_POSTGRES is not set");
        }
        eprintln!("note: EAIBUS_TEST_POSTGRES is not set; skipping the PostgreSQL order store");
        return;
    };
    use std::str::FromStr;
    let schema = format!(
        "eaibus_test_orders_{}_{}",
        std::process::id(),
        eaibus::monitor::time::now_millis()
    );
    let admin = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("schema");
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .expect("url")
        .options([("search_path", schema.as_str())]);
    let store = OrderStore::connect_postgres_with(options)
        .await
        .expect("the store on PostgreSQL");
    let Setup { _dir, bus } = setup().await;
    events::publish(bus.log.as_ref(), &bus.config, &story(&bus))
        .await
        .expect("published");
    let topic = order::events_topic(&bus.config);
    let mut records = Vec::new();
    for p in bus.log.partitions(&topic).await.expect("partitions") {
        records.extend(bus.log.read(&topic, p, 0, 1000).await.expect("read"));
    }
    store
        .project(&records, &order::store::NoOutputs)
        .await
        .expect("projected");
    let view = query::find(&store, SALE)
        .await
        .expect("query")
        .expect("found");
    assert_eq!(view.status, "EMPACOTADO");
    let again = store
        .project(&records, &order::store::NoOutputs)
        .await
        .expect("again");
    assert_eq!(again.already_applied, records.len());
    let report = rebuild::rebuild_into(
        bus.log.as_ref(),
        &topic,
        &store,
        rebuild::RebuildOptions::default(),
        false,
    )
    .await
    .expect("rebuilt");
    assert_eq!(report.equals_live(), Some(true), "{report}");
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .expect("drop");
}

/// Appends RetailSales messages to their topic and records them in the monitor, as ingest does.
async fn accepted_sales(bus: &Bus, n: usize) -> Vec<String> {
    let topic = bus.config.topic("RETAILSALES");
    let mut uuids = Vec::new();
    for i in 0..n {
        let uuid = format!("u-sale-{i}");
        let m = message(
            bus,
            json!({"Header": {"UUID": uuid, "Type": "BusinessMessage", "SubType": "event",
                    "Event": "upsert", "Transaction": "RETAILSALES", "Version": "2.009",
                    "SourceApplication": "OMNI", "ProductName": "OMNI"},
                "Content": {"InternalId": format!("OMNI-{i}"), "SaleType": "V"}}),
        );
        let json = m.to_json().to_string();
        let mut record = eaibus::monitor::NewMessage::new(&uuid, "RetailSales");
        record.canonical_json = Some(json.clone());
        record.business_key = Some(format!("OMNI-{i}"));
        bus.monitor
            .record_received(&record)
            .await
            .expect("recorded");
        bus.log
            .append(vec![
                NewRecord::new(&topic, Some(&format!("OMNI-{i}")), json)
                    .header("uuid", &uuid)
                    .header("type", "BusinessMessage"),
            ])
            .await
            .expect("appended");
        uuids.push(uuid);
    }
    uuids
}

#[tokio::test]
async fn replay_to_a_route_plans_that_route_only() {
    let Setup { _dir, bus } = setup().await;
    let uuids = accepted_sales(&bus, 5).await;
    let request = replay::ReplayRequest {
        topic: "RetailSales".into(),
        from: replay::ReplayFrom::parse("1h").expect("since"),
        until: None,
        target: replay::ReplayTarget::Route("protheus".into()),
        dry_run: true,
    };
    let dry = replay::replay(&bus, request.clone(), false)
        .await
        .expect("dry run");
    assert_eq!(dry.records, 5);
    assert_eq!(dry.planned, 5, "{dry}");
    assert!(
        bus.monitor
            .deliveries(&uuids[0])
            .await
            .expect("read")
            .is_empty()
    );

    let done = replay::replay(
        &bus,
        replay::ReplayRequest {
            dry_run: false,
            ..request.clone()
        },
        false,
    )
    .await
    .expect("replayed");
    assert_eq!(done.planned, 5, "{done}");
    for uuid in &uuids {
        let deliveries = bus.monitor.deliveries(uuid).await.expect("read");
        let routes: Vec<_> = deliveries.iter().map(|d| d.route.as_str()).collect();
        assert_eq!(routes, ["protheus"]);
    }
    let again = replay::replay(
        &bus,
        replay::ReplayRequest {
            dry_run: false,
            ..request.clone()
        },
        false,
    )
    .await
    .expect("replayed again");
    assert_eq!((again.planned, again.already_waiting), (0, 5));
    // A window that ends before the records has nothing in it.
    let empty = replay::replay(
        &bus,
        replay::ReplayRequest {
            from: replay::ReplayFrom::Offset(0),
            until: Some(replay::ReplayUntil::Offset(0)),
            ..request.clone()
        },
        false,
    )
    .await
    .expect("empty window");
    assert_eq!(empty.records, 0);
    // The route must exist; a group replay takes no end.
    assert!(matches!(
        replay::replay(
            &bus,
            replay::ReplayRequest {
                target: replay::ReplayTarget::Route("nowhere".into()),
                ..request.clone()
            },
            false
        )
        .await,
        Err(replay::ReplayError::UnknownRoute(_))
    ));
    assert!(matches!(
        replay::replay(
            &bus,
            replay::ReplayRequest {
                target: replay::ReplayTarget::Group("g".into()),
                until: Some(replay::ReplayUntil::Offset(1)),
                ..request
            },
            false
        )
        .await,
        Err(replay::ReplayError::UntilForGroup)
    ));
}

#[tokio::test]
async fn replay_to_a_group_moves_its_offsets_back_to_the_window() {
    let Setup { _dir, bus } = setup().await;
    accepted_sales(&bus, 6).await;
    let topic = bus.config.topic("RETAILSALES");
    let group = "test.consumer";
    {
        let mut consumer = bus
            .log
            .subscribe(group, std::slice::from_ref(&topic))
            .await
            .expect("subscribed");
        for p in bus.log.partitions(&topic).await.expect("partitions") {
            let end = bus.log.end_offset(&topic, p).await.expect("end");
            if end > 0 {
                consumer
                    .commit(&Position {
                        topic: topic.clone(),
                        partition: p,
                        offset: end - 1,
                    })
                    .await
                    .expect("committed");
            }
        }
    }
    let request = replay::ReplayRequest {
        topic: topic.clone(),
        from: replay::ReplayFrom::Offset(0),
        until: None,
        target: replay::ReplayTarget::Group(group.into()),
        dry_run: true,
    };
    let dry = replay::replay(&bus, request.clone(), false)
        .await
        .expect("dry");
    assert_eq!(dry.records, 6);
    let summary = replay::replay(
        &bus,
        replay::ReplayRequest {
            dry_run: false,
            ..request
        },
        false,
    )
    .await
    .expect("replayed");
    for w in &summary.windows {
        let committed = bus
            .log
            .committed(group, &topic, w.partition)
            .await
            .expect("committed");
        if w.end > 0 {
            assert_eq!(w.committed_before, Some(w.end), "{summary}");
        }
        assert_eq!(committed.unwrap_or(0), 0, "{summary}");
    }
    // Another group is untouched.
    assert_eq!(
        bus.log
            .committed("another", &topic, 0)
            .await
            .expect("committed"),
        None
    );
}
