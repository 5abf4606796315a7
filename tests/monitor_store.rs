//! Contract tests for the monitor store: one suite, run on SQLite (a temporary file) and on
//! PostgreSQL when `EAIBUS_TEST_POSTGRES` holds a URL (each test in a fresh schema). Without the
//! variable the PostgreSQL runs print a skip note, and fail under `CI=true`.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use eaibus::monitor::time::now_millis;
use eaibus::monitor::{
    DeliveryOutcome, DeliveryStart, Direction, Format, LearnedDePara, MessageFilter, MonitorError,
    MonitorStore, NewMessage, NewSyncRun, Progress, Received, ResolveOutcome, Situation, Stage,
    StartedBy, SyncCounts, SyncKind, SyncOutcome, SyncRunFilter, SyncStatus,
};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

// ---------------------------------------------------------------------------------------------
// Harness

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(MonitorStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = MonitorStore::open_sqlite(dir.path().join("monitor.db"))
        .await
        .expect("the SQLite store opens");
    test(store.clone()).await;
    store.close().await;
}

fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("EAIBUS_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "EAIBUS_TEST_POSTGRES is not set: the PostgreSQL monitor tests must run in CI"
                );
            }
            eprintln!(
                "skipping the PostgreSQL run of {test}: set EAIBUS_TEST_POSTGRES \
                 (e.g. postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            None
        }
    }
}

/// Options for a fresh schema of its own, created here.
async fn fresh_schema(url: &str) -> (PgConnectOptions, String) {
    let schema = format!("monitor_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(url)
        .await
        .expect("PostgreSQL at EAIBUS_TEST_POSTGRES answers");
    // The name is generated here (hex digits), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create the test schema");
    admin.close().await.ok();
    let options = PgConnectOptions::from_str(url)
        .expect("a PostgreSQL URL")
        .options([("search_path", schema.as_str())]);
    (options, schema)
}

async fn drop_schema(url: &str, schema: &str) {
    let mut admin = PgConnection::connect(url).await.expect("reconnect");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop the test schema");
    admin.close().await.ok();
}

async fn with_postgres<F, Fut>(name: &str, test: F)
where
    F: FnOnce(MonitorStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(url) = postgres_url(name) else {
        return;
    };
    let (options, schema) = fresh_schema(&url).await;
    let store = MonitorStore::connect_postgres_with(options)
        .await
        .expect("the PostgreSQL store connects");
    test(store.clone()).await;
    store.close().await;
    drop_schema(&url, &schema).await;
}

/// Each contract test once per database.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::with_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::with_postgres(stringify!($name), super::$name).await;
                }
            )*
        }
    };
}

contract!(
    record_received_is_idempotent,
    a_message_is_recorded_with_the_steps_taken_before,
    concurrent_receipts_of_one_uuid_yield_one_new,
    refused_messages_keep_the_accounting,
    deliveries_drive_the_message_situation,
    only_one_worker_starts_an_attempt,
    reprocess_puts_a_delivery_back_in_the_queue,
    list_filters_pages_and_searches,
    counts_for_the_dashboard,
    timeline_keeps_the_order_of_events,
    payload_bytes_round_trip,
    hostile_strings_are_stored_unchanged,
    unknown_messages_are_reported,
    learned_depara_is_kept_per_message,
    pending_deliveries_come_oldest_message_first,
    a_batch_of_plans_is_stored_at_once,
    a_route_consumers_own_deliveries_are_gated_and_recorded,
    concurrent_writes_of_many_messages_are_grouped_faithfully,
    an_unclaimed_attempt_counts_only_when_it_could_have_started,
    resolutions_hold_until_a_reprocess,
    sync_runs_count_outcomes_and_end_with_a_status,
    replay_starts_a_new_cycle_for_a_settled_delivery,
);

/// On PostgreSQL, payloads large enough to be compressed are compressed with lz4 (migration 6)
/// and read back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_payloads_are_compressed_with_lz4_on_postgresql() {
    let Some(url) = postgres_url("large_payloads_are_compressed_with_lz4_on_postgresql") else {
        return;
    };
    let (options, schema) = fresh_schema(&url).await;
    let store = MonitorStore::connect_postgres_with(options.clone())
        .await
        .expect("the PostgreSQL store connects");
    let items: String = (0..400)
        .map(|i| format!("{{\"ItemCode\":\"SKU-{i:05}\",\"Quantity\":1}},"))
        .collect();
    let canonical = format!("{{\"Items\":[{}]}}", items.trim_end_matches(','));
    assert!(canonical.len() > 10_000, "large enough to be compressed");
    let m = NewMessage {
        raw_payload: canonical.clone().into_bytes(),
        canonical_json: Some(canonical.clone()),
        ..message("lz4-1", "RetailSales")
    };
    store.record_received(&m).await.unwrap();
    let record = store.get("lz4-1").await.unwrap().unwrap();
    assert_eq!(record.raw_payload, canonical.as_bytes());
    assert_eq!(record.canonical_json.as_deref(), Some(canonical.as_str()));

    let mut connection = PgConnection::connect_with(&options).await.expect("connect");
    let (raw, json): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT pg_column_compression(raw_payload), pg_column_compression(canonical_json) \
         FROM monitor_payloads WHERE message_uuid = $1",
    )
    .bind("lz4-1")
    .fetch_one(&mut connection)
    .await
    .expect("the payload row");
    assert_eq!(raw.as_deref(), Some("lz4"));
    assert_eq!(json.as_deref(), Some("lz4"));
    connection.close().await.ok();
    store.close().await;
    drop_schema(&url, &schema).await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn message(uuid: &str, transaction: &str) -> NewMessage {
    NewMessage {
        version: "2.009".into(),
        source_application: "OMNI".into(),
        origin: "POST /totvseai/standardmessage/v1/transactions".into(),
        business_key: Some(format!("KEY-{uuid}")),
        raw_payload: format!("{{\"Header\":{{\"UUID\":\"{uuid}\"}}}}").into_bytes(),
        canonical_json: Some(format!("{{\"Header\":{{\"UUID\":\"{uuid}\"}}}}")),
        ..NewMessage::new(uuid, transaction)
    }
}

async fn situation(store: &MonitorStore, uuid: &str) -> (Situation, Stage) {
    let record = store
        .get(uuid)
        .await
        .unwrap()
        .expect("the message is recorded");
    (record.situation, record.stage)
}

// ---------------------------------------------------------------------------------------------
// The contract

async fn record_received_is_idempotent(store: MonitorStore) {
    let m = message("6f1c1c0e-0000-4000-8000-000000000001", "RetailSales");
    assert_eq!(store.record_received(&m).await.unwrap(), Received::New);

    let stored = store.get(&m.uuid).await.unwrap().unwrap();
    assert_eq!(stored.transaction, "RetailSales");
    assert_eq!(stored.version, "2.009");
    assert_eq!(stored.direction, Direction::Inbound);
    assert_eq!(stored.format, Format::Json);
    assert_eq!(stored.situation, Situation::AguardandoExecucao);
    assert_eq!(stored.stage, Stage::Received);
    assert_eq!(stored.answer, None);
    assert_eq!(stored.duplicates, 0);
    assert!(stored.received_at > 0);

    store
        .set_answer(&m.uuid, r#"{"Status":"OK"}"#)
        .await
        .unwrap();
    let again = NewMessage {
        origin: "kafka eai.inbound/0/42".into(),
        ..m.clone()
    };
    match store.record_received(&again).await.unwrap() {
        Received::Duplicate(record) => {
            assert_eq!(record.uuid, m.uuid);
            assert_eq!(record.answer.as_deref(), Some(r#"{"Status":"OK"}"#));
            assert_eq!(record.duplicates, 1);
            // The first arrival stays: origin and payload are not overwritten.
            assert_eq!(record.origin, m.origin);
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert!(matches!(
        store.record_received(&m).await.unwrap(),
        Received::Duplicate(_)
    ));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.received, 1);
    assert_eq!(counts.duplicates, 2);
    let timeline = store.timeline(&m.uuid).await.unwrap();
    assert_eq!(timeline.len(), 3, "received + two duplicate arrivals");
    assert!(
        timeline[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("eai.inbound/0/42")
    );
}

/// Ingest records a message once its checks are done, with their steps, its situation, its
/// canonical form after De/Para and the answer to keep, in one write; a duplicate is left as it
/// was. A kept answer can be withdrawn later (the append it was kept ahead of failed).
async fn a_message_is_recorded_with_the_steps_taken_before(store: MonitorStore) {
    // Concurrent, so that the store's group commit writes them together.
    let uuids: Vec<String> = (0..12).map(|n| format!("steps-{n}")).collect();
    let mut writes = tokio::task::JoinSet::new();
    for uuid in &uuids {
        let (store, uuid) = (store.clone(), uuid.clone());
        writes.spawn(async move {
            let mut progress = Progress::default();
            progress.step(Stage::Validated, Situation::AguardandoExecucao, "Valid.");
            progress.step(Stage::Routed, Situation::AguardandoExecucao, "Adapter X.");
            progress.outcome = Some((Situation::AguardandoExecucao, Stage::Routed, None));
            progress.answer = Some(format!("receipt of {uuid}"));
            progress.canonical_json = Some(format!("{{\"mapped\":\"{uuid}\"}}"));
            store
                .record_received_with(&message(&uuid, "DocumentTraceabilityOrder"), progress)
                .await
        });
    }
    for result in writes.join_all().await {
        assert!(matches!(result.unwrap(), Received::New));
    }
    for uuid in &uuids {
        let record = store.get(uuid).await.unwrap().unwrap();
        assert_eq!(
            (record.situation, record.stage),
            (Situation::AguardandoExecucao, Stage::Routed)
        );
        assert_eq!(record.answer, Some(format!("receipt of {uuid}")));
        assert_eq!(
            record.canonical_json,
            Some(format!("{{\"mapped\":\"{uuid}\"}}"))
        );
        assert_eq!(record.processed_at, None);
        let stages: Vec<Stage> = store
            .timeline(uuid)
            .await
            .unwrap()
            .iter()
            .map(|t| t.stage)
            .collect();
        assert_eq!(stages, [Stage::Received, Stage::Validated, Stage::Routed]);
    }

    // A refusal recorded at once is settled, with its error.
    let mut refusal = Progress::default();
    refusal.step(Stage::Refused, Situation::Recusada, "/Content/x is missing");
    refusal.outcome = Some((
        Situation::Recusada,
        Stage::Validated,
        Some("/Content/x is missing".into()),
    ));
    let refused = message("steps-refused", "RetailSales");
    store
        .record_received_with(&refused, refusal.clone())
        .await
        .unwrap();
    let record = store.get("steps-refused").await.unwrap().unwrap();
    assert_eq!(record.situation, Situation::Recusada);
    assert_eq!(record.last_error.as_deref(), Some("/Content/x is missing"));
    assert!(record.processed_at.is_some());

    // A duplicate keeps the first record as it was.
    match store
        .record_received_with(&message(&uuids[0], "DocumentTraceabilityOrder"), refusal)
        .await
        .unwrap()
    {
        Received::Duplicate(existing) => {
            assert_eq!(existing.situation, Situation::AguardandoExecucao);
            assert_eq!(existing.answer, Some(format!("receipt of {}", uuids[0])));
        }
        Received::New => panic!("a known UUID is a duplicate"),
    }
    assert_eq!(store.timeline(&uuids[0]).await.unwrap().len(), 4);

    // Known and new UUIDs written together: each is told apart, the new ones fully recorded.
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..16 {
        let uuid = if n % 2 == 0 {
            uuids[n / 2].clone()
        } else {
            format!("steps-mixed-{n}")
        };
        let store = store.clone();
        writes.spawn(async move {
            let progress = Progress {
                canonical_json: Some(format!("{{\"again\":\"{uuid}\"}}")),
                ..Progress::default()
            };
            let result = store
                .record_received_with(&message(&uuid, "DocumentTraceabilityOrder"), progress)
                .await;
            (uuid, result)
        });
    }
    for (uuid, result) in writes.join_all().await {
        let new = uuid.starts_with("steps-mixed-");
        assert_eq!(
            matches!(result.unwrap(), Received::New),
            new,
            "{uuid} recorded as new: {new}"
        );
        let record = store.get(&uuid).await.unwrap().unwrap();
        let canonical = record.canonical_json.unwrap();
        assert_eq!(canonical.contains("again"), new, "{uuid}: {canonical}");
        let entries = store.timeline(&uuid).await.unwrap().len();
        // A known one gains a "duplicate" entry (the first had one already).
        let expected = match (new, uuid == uuids[0]) {
            (true, _) => 1,
            (false, false) => 4,
            (false, true) => 5,
        };
        assert_eq!(entries, expected, "{uuid}");
    }

    // Withdrawn: the answer goes, the rest stays.
    let failed = Progress {
        retract_answer: true,
        ..Progress::default()
    };
    store.record_progress(&uuids[1], &failed).await.unwrap();
    let record = store.get(&uuids[1]).await.unwrap().unwrap();
    assert_eq!(record.answer, None);
    assert_eq!(record.stage, Stage::Routed);
    // Concurrent withdrawals go through the group commit.
    let mut writes = tokio::task::JoinSet::new();
    for uuid in &uuids[2..] {
        let (store, uuid, failed) = (store.clone(), uuid.clone(), failed.clone());
        writes.spawn(async move { store.record_progress(&uuid, &failed).await });
    }
    for result in writes.join_all().await {
        result.unwrap();
    }
    for uuid in &uuids[2..] {
        assert_eq!(store.get(uuid).await.unwrap().unwrap().answer, None);
    }
    assert!(
        store
            .get(&uuids[0])
            .await
            .unwrap()
            .unwrap()
            .answer
            .is_some()
    );
}

async fn concurrent_receipts_of_one_uuid_yield_one_new(store: MonitorStore) {
    let m = Arc::new(message(
        "7a7a7a7a-0000-4000-8000-000000000020",
        "ItemReserve",
    ));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let m = Arc::clone(&m);
        tasks.push(tokio::spawn(async move { store.record_received(&m).await }));
    }
    let mut new = 0;
    let mut duplicates = 0;
    for task in tasks {
        match task
            .await
            .unwrap()
            .expect("no store error under contention")
        {
            Received::New => new += 1,
            Received::Duplicate(_) => duplicates += 1,
        }
    }
    assert_eq!((new, duplicates), (1, 19));
    let record = store.get(&m.uuid).await.unwrap().unwrap();
    assert_eq!(record.duplicates, 19);
    assert_eq!(store.counts().await.unwrap().received, 1);
}

async fn refused_messages_keep_the_accounting(store: MonitorStore) {
    for i in 0..3 {
        let m = message(&format!("acc-{i}"), "RetailSales");
        assert_eq!(store.record_received(&m).await.unwrap(), Received::New);
    }
    // Undecodable: no UUID at all.
    let garbage = NewMessage {
        raw_payload: b"<TOTVSMessage><broken".to_vec(),
        format: Format::Xml,
        canonical_json: None,
        business_key: None,
        ..NewMessage::new("", "")
    };
    let id1 = store
        .record_refused(&garbage, "XML malformado na linha 1", Stage::Received)
        .await
        .unwrap();
    assert!(id1.starts_with("refused-"), "{id1}");
    // A UUID read, but the schema refuses the content.
    let invalid = message("bad-schema-1", "RetailSales");
    let id2 = store
        .record_refused(&invalid, "/Content/Amount: not a number", Stage::Validated)
        .await
        .unwrap();
    assert_eq!(id2, "bad-schema-1");
    // A refused message claiming a UUID that is already recorded keeps its own row.
    let id3 = store
        .record_refused(&message("acc-0", "RetailSales"), "schema", Stage::Validated)
        .await
        .unwrap();
    assert!(id3.starts_with("refused-"), "{id3}");
    // Refused after it was received (validation after the idempotency check).
    store
        .set_situation(
            "acc-2",
            Situation::Recusada,
            Stage::Refused,
            Some("no adapter"),
        )
        .await
        .unwrap();

    let refused = store.get(&id1).await.unwrap().unwrap();
    assert_eq!(refused.situation, Situation::Recusada);
    assert_eq!(refused.stage, Stage::Received);
    assert_eq!(refused.canonical_json, None);
    assert_eq!(refused.raw_payload, b"<TOTVSMessage><broken");
    assert_eq!(refused.format, Format::Xml);
    assert_eq!(
        refused.last_error.as_deref(),
        Some("XML malformado na linha 1")
    );
    assert!(refused.processed_at.is_some());
    assert_eq!(
        situation(&store, "bad-schema-1").await,
        (Situation::Recusada, Stage::Validated)
    );
    let acc0 = store.get("acc-0").await.unwrap().unwrap();
    assert_eq!(
        acc0.situation,
        Situation::AguardandoExecucao,
        "the accepted one is untouched"
    );

    let counts = store.counts().await.unwrap();
    assert_eq!(counts.received, 6);
    assert_eq!(counts.refused, 4);
    assert_eq!(counts.accepted, 2);
    assert_eq!(counts.received, counts.accepted + counts.refused);
    assert_eq!(counts.situation(Situation::Recusada), 4);
    assert_eq!(counts.situation(Situation::AguardandoExecucao), 2);
    assert_eq!(counts.by_situation.len(), 7);
    assert_eq!(
        counts.by_situation.iter().map(|(_, n)| n).sum::<i64>(),
        counts.received
    );
}

async fn deliveries_drive_the_message_situation(store: MonitorStore) {
    let uuid = "d0000000-0000-4000-8000-000000000001";
    store
        .record_received(&message(uuid, "RetailSales"))
        .await
        .unwrap();
    store
        .set_situation(uuid, Situation::AguardandoExecucao, Stage::Logged, None)
        .await
        .unwrap();
    let now = now_millis();
    assert!(store.plan_delivery(uuid, "protheus", now).await.unwrap());
    assert!(store.plan_delivery(uuid, "omni", now).await.unwrap());
    assert!(
        !store.plan_delivery(uuid, "omni", now).await.unwrap(),
        "already planned"
    );
    assert_eq!(
        situation(&store, uuid).await,
        (Situation::AguardandoExecucao, Stage::Routed)
    );

    // First attempt to Protheus fails; retry in the past so that it is due right away.
    assert_eq!(
        store.start_delivery(uuid, "protheus").await.unwrap(),
        DeliveryStart::Started { attempt: 1 }
    );
    assert_eq!(
        situation(&store, uuid).await,
        (Situation::Executando, Stage::Delivering)
    );
    let retry_at = now_millis() - 1;
    let attempts = store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Failed {
                error: "HTTP 503".into(),
                retry_at,
            },
        )
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    let record = store.get(uuid).await.unwrap().unwrap();
    assert_eq!(
        (record.situation, record.stage),
        (Situation::Falhou, Stage::Failed)
    );
    assert_eq!(record.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(record.attempts, 1);

    // Due for the retry scheduler (OMNI waits too, planned for now).
    let due = store.due_deliveries(now_millis(), 10).await.unwrap();
    let routes: Vec<&str> = due.iter().map(|d| d.route.as_str()).collect();
    assert!(
        routes.contains(&"protheus") && routes.contains(&"omni"),
        "{routes:?}"
    );
    assert!(
        store
            .due_deliveries(now - 10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.due_deliveries(now_millis(), 1).await.unwrap().len(),
        1
    );

    // OMNI delivered; Protheus still failing → the message stays Falhou.
    assert_eq!(
        store
            .record_attempt(
                uuid,
                "omni",
                &DeliveryOutcome::Delivered {
                    response: "202".into()
                }
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        situation(&store, uuid).await,
        (Situation::Falhou, Stage::Failed)
    );

    // Second attempt to Protheus delivers → Finalizada.
    assert_eq!(
        store.start_delivery(uuid, "protheus").await.unwrap(),
        DeliveryStart::Started { attempt: 2 }
    );
    let attempts = store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Delivered {
                response: r#"{"Status":"OK"}"#.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    let record = store.get(uuid).await.unwrap().unwrap();
    assert_eq!(
        (record.situation, record.stage),
        (Situation::Finalizada, Stage::Delivered)
    );
    assert_eq!(record.attempts, 2);
    assert!(record.processed_at.is_some());
    let deliveries = store.deliveries(uuid).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].route, "omni");
    let protheus = &deliveries[1];
    assert_eq!(protheus.situation, Situation::Finalizada);
    assert_eq!(protheus.attempts, 2);
    assert_eq!(protheus.response.as_deref(), Some(r#"{"Status":"OK"}"#));
    assert_eq!(protheus.last_error.as_deref(), Some("HTTP 503"));
    assert!(protheus.delivered_at.is_some());
    assert_eq!(protheus.next_attempt_at, None);
    assert!(
        store
            .due_deliveries(now_millis(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A delivered route is not started again.
    assert_eq!(
        store.start_delivery(uuid, "protheus").await.unwrap(),
        DeliveryStart::NotStarted {
            situation: Situation::Finalizada
        }
    );
    // A late ingest step does not hide the deliveries.
    store
        .set_situation(uuid, Situation::AguardandoExecucao, Stage::Logged, None)
        .await
        .unwrap();
    assert_eq!(
        situation(&store, uuid).await,
        (Situation::Finalizada, Stage::Delivered)
    );

    // Parked, timed out, dead-lettered.
    let parked = "d0000000-0000-4000-8000-000000000002";
    store
        .record_received(&message(parked, "RetailSales"))
        .await
        .unwrap();
    store
        .record_attempt(
            parked,
            "protheus",
            &DeliveryOutcome::Parked {
                error: "4 tentativas".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        situation(&store, parked).await,
        (Situation::Bloqueado, Stage::Parked)
    );
    assert_eq!(
        store.start_delivery(parked, "protheus").await.unwrap(),
        DeliveryStart::NotStarted {
            situation: Situation::Bloqueado
        }
    );

    let timed_out = "d0000000-0000-4000-8000-000000000003";
    store
        .record_received(&message(timed_out, "RetailSales"))
        .await
        .unwrap();
    store
        .record_attempt(
            timed_out,
            "protheus",
            &DeliveryOutcome::TimedOut {
                error: "timeout after 30 s".into(),
                retry_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        situation(&store, timed_out).await,
        (Situation::NaoEntregue, Stage::Failed)
    );

    let dead = "d0000000-0000-4000-8000-000000000004";
    store
        .record_received(&message(dead, "RetailSales"))
        .await
        .unwrap();
    store
        .record_attempt(
            dead,
            "omni",
            &DeliveryOutcome::Delivered {
                response: String::new(),
            },
        )
        .await
        .unwrap();
    store
        .record_attempt(
            dead,
            "protheus",
            &DeliveryOutcome::DeadLettered {
                error: "Cliente nao integrado".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        situation(&store, dead).await,
        (Situation::Falhou, Stage::Dlq)
    );
    assert!(
        store
            .due_deliveries(now_millis(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let counts = store.counts().await.unwrap();
    assert_eq!(counts.situation(Situation::Finalizada), 1);
    assert_eq!(counts.situation(Situation::Bloqueado), 1);
    assert_eq!(counts.situation(Situation::NaoEntregue), 1);
    assert_eq!(counts.situation(Situation::Falhou), 1);
}

async fn only_one_worker_starts_an_attempt(store: MonitorStore) {
    let uuid = "e0000000-0000-4000-8000-000000000001";
    store
        .record_received(&message(uuid, "CustomerVendor"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.start_delivery(uuid, "protheus").await
        }));
    }
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            DeliveryStart::Started { attempt } => {
                assert_eq!(attempt, 1);
                started += 1;
            }
            DeliveryStart::NotStarted { situation } => {
                assert_eq!(situation, Situation::Executando)
            }
        }
    }
    assert_eq!(started, 1);
    // Not due while its lease runs...
    assert!(
        store
            .due_deliveries(now_millis(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // ...and due again once it ran out (the worker died before recording its attempt).
    let impatient = store.clone().with_delivery_lease(Duration::ZERO);
    assert_eq!(
        impatient.start_delivery(uuid, "omni").await.unwrap(),
        DeliveryStart::Started { attempt: 1 }
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let due = store.due_deliveries(now_millis(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].route.as_str(), due[0].situation),
        ("omni", Situation::Executando)
    );
    assert_eq!(
        store.start_delivery(uuid, "omni").await.unwrap(),
        DeliveryStart::Started { attempt: 1 }
    );
    assert!(matches!(
        store.start_delivery(uuid, "omni").await.unwrap(),
        DeliveryStart::NotStarted {
            situation: Situation::Executando
        }
    ));
}

async fn reprocess_puts_a_delivery_back_in_the_queue(store: MonitorStore) {
    let uuid = "f0000000-0000-4000-8000-000000000001";
    store
        .record_received(&message(uuid, "RetailSales"))
        .await
        .unwrap();
    for attempt in 1..=4 {
        store.start_delivery(uuid, "protheus").await.unwrap();
        let outcome = if attempt < 4 {
            DeliveryOutcome::Failed {
                error: format!("falha {attempt}"),
                retry_at: now_millis() - 1,
            }
        } else {
            DeliveryOutcome::Parked {
                error: "falha 4".into(),
            }
        };
        assert_eq!(
            store
                .record_attempt(uuid, "protheus", &outcome)
                .await
                .unwrap(),
            attempt
        );
    }
    assert_eq!(
        situation(&store, uuid).await,
        (Situation::Bloqueado, Stage::Parked)
    );
    assert_eq!(store.get(uuid).await.unwrap().unwrap().attempts, 4);

    store.reset_for_reprocess(uuid, "protheus").await.unwrap();
    let delivery = store.delivery(uuid, "protheus").await.unwrap().unwrap();
    assert_eq!(delivery.situation, Situation::AguardandoExecucao);
    assert_eq!(delivery.attempts, 0);
    assert!(delivery.next_attempt_at.is_some());
    let record = store.get(uuid).await.unwrap().unwrap();
    assert_eq!(record.situation, Situation::AguardandoExecucao);
    assert_eq!(record.repeated_failures, 1);
    assert_eq!(record.attempts, 0);
    assert_eq!(
        store
            .due_deliveries(now_millis() + 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Waiting is not reprocessable; neither is a route it never had.
    match store.reset_for_reprocess(uuid, "protheus").await {
        Err(MonitorError::NotAllowed { situation, .. }) => {
            assert_eq!(situation, Some(Situation::AguardandoExecucao))
        }
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    assert!(matches!(
        store.reset_for_reprocess(uuid, "nowhere").await,
        Err(MonitorError::NotAllowed {
            situation: None,
            ..
        })
    ));

    assert_eq!(
        store.start_delivery(uuid, "protheus").await.unwrap(),
        DeliveryStart::Started { attempt: 1 }
    );
    store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::DeadLettered { error: "x".into() },
        )
        .await
        .unwrap();
    store.reset_for_reprocess(uuid, "protheus").await.unwrap();
    assert_eq!(store.get(uuid).await.unwrap().unwrap().repeated_failures, 2);
    let error = store
        .reset_for_reprocess("no-such-uuid", "protheus")
        .await
        .unwrap_err();
    assert!(
        matches!(error, MonitorError::UnknownMessage { .. }),
        "{error}"
    );
    assert!(!error.is_retryable());
}

async fn replay_starts_a_new_cycle_for_a_settled_delivery(store: MonitorStore) {
    let uuid = "f0000000-0000-4000-8000-0000000000a1";
    store
        .record_received(&message(uuid, "RetailSales"))
        .await
        .unwrap();
    // Delivered along two routes.
    for route in ["protheus", "omni"] {
        store.start_delivery(uuid, route).await.unwrap();
        store
            .record_attempt(
                uuid,
                route,
                &DeliveryOutcome::Delivered {
                    response: format!("ok from {route}"),
                },
            )
            .await
            .unwrap();
    }
    let omni_before = store.delivery(uuid, "omni").await.unwrap().unwrap();
    let delivered_at = store
        .delivery(uuid, "protheus")
        .await
        .unwrap()
        .unwrap()
        .delivered_at;
    let timeline_before = store.timeline(uuid).await.unwrap().len();
    assert_eq!(
        situation(&store, uuid).await,
        (Situation::Finalizada, Stage::Delivered)
    );

    assert_eq!(
        store
            .replay_delivery(uuid, "protheus", "replay of the last day")
            .await
            .unwrap(),
        1
    );
    let delivery = store.delivery(uuid, "protheus").await.unwrap().unwrap();
    assert_eq!(delivery.situation, Situation::AguardandoExecucao);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.response.as_deref(), Some("ok from protheus"));
    assert!(delivery.next_attempt_at.is_some());
    // The message waits again; the other route's delivery is as it was.
    assert_eq!(
        situation(&store, uuid).await.0,
        Situation::AguardandoExecucao
    );
    assert_eq!(
        store.delivery(uuid, "omni").await.unwrap().unwrap(),
        omni_before
    );
    let pending = store.pending_deliveries("protheus", 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    // History: nothing removed, one entry added that says what happened.
    let timeline = store.timeline(uuid).await.unwrap();
    assert_eq!(timeline.len(), timeline_before + 1);
    let last = timeline.last().unwrap();
    assert_eq!(last.route.as_deref(), Some("protheus"));
    assert_eq!(last.situation, Situation::AguardandoExecucao);
    let detail = last.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("replay of the last day") && detail.contains("Finalizada"),
        "{detail}"
    );
    // Waiting is not replayable (it is going to be sent anyway), nor is a route never planned.
    for route in ["protheus", "nowhere"] {
        assert!(
            matches!(
                store.replay_delivery(uuid, route, "again").await,
                Err(MonitorError::NotAllowed { .. })
            ),
            "{route}"
        );
    }
    assert!(matches!(
        store.replay_delivery("no-such-uuid", "protheus", "x").await,
        Err(MonitorError::UnknownMessage { .. })
    ));

    // The new cycle runs as the first did, and the replays are counted.
    assert_eq!(
        store.start_delivery(uuid, "protheus").await.unwrap(),
        DeliveryStart::Started { attempt: 1 }
    );
    store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Parked {
                error: "down".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .replay_delivery(uuid, "protheus", "second")
            .await
            .unwrap(),
        2
    );
    let replays = store.delivery_replays(uuid, "protheus").await.unwrap();
    let summary: Vec<_> = replays
        .iter()
        .map(|r| (r.previous_situation, r.previous_attempts, r.reason.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (Situation::Finalizada, 1, "replay of the last day"),
            (Situation::Bloqueado, 1, "second"),
        ]
    );
    assert_eq!(replays[0].previous_delivered_at, delivered_at);
    assert!(
        store
            .delivery_replays(uuid, "omni")
            .await
            .unwrap()
            .is_empty()
    );
    // Replays are not failures.
    assert_eq!(store.get(uuid).await.unwrap().unwrap().repeated_failures, 0);
}

async fn list_filters_pages_and_searches(store: MonitorStore) {
    let base = 1_700_000_000_000_i64;
    for i in 0..25_i64 {
        let uuid = format!("{:08x}-list-4000-8000-{:012}", 0xa000 + i, i);
        let m = NewMessage {
            direction: if i % 5 == 0 {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            received_at: Some(base + i * 1000),
            business_key: Some(format!("PED{i:04}")),
            ..message(
                &uuid,
                if i % 2 == 0 {
                    "RetailSales"
                } else {
                    "ItemReserve"
                },
            )
        };
        store.record_received(&m).await.unwrap();
        if i % 3 == 0 {
            store
                .record_attempt(
                    &uuid,
                    "omni",
                    &DeliveryOutcome::Delivered {
                        response: "ok".into(),
                    },
                )
                .await
                .unwrap();
        }
    }

    let all = store.list(&MessageFilter::default()).await.unwrap();
    assert_eq!(all.total, 25);
    assert_eq!(all.messages.len(), 25);
    assert_eq!(all.page, 1);
    assert_eq!(
        all.messages[0].business_key.as_deref(),
        Some("PED0024"),
        "newest first"
    );
    assert!(
        all.messages
            .windows(2)
            .all(|w| w[0].received_at >= w[1].received_at)
    );

    let page2 = store
        .list(&MessageFilter {
            page: 2,
            page_size: 10,
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.total, 25);
    let keys: Vec<_> = page2
        .messages
        .iter()
        .map(|m| m.business_key.clone().unwrap())
        .collect();
    assert_eq!(keys.first().map(String::as_str), Some("PED0014"));
    assert_eq!(keys.last().map(String::as_str), Some("PED0005"));
    let page3 = store
        .list(&MessageFilter {
            page: 3,
            page_size: 10,
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page3.messages.len(), 5);
    let beyond = store
        .list(&MessageFilter {
            page: 9,
            page_size: 10,
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert!(beyond.messages.is_empty());
    assert_eq!(beyond.total, 25);

    let retail = store
        .list(&MessageFilter {
            transaction: Some("RetailSales".into()),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(retail.total, 13);
    assert!(
        retail
            .messages
            .iter()
            .all(|m| m.transaction == "RetailSales")
    );

    let outbound = store
        .list(&MessageFilter {
            direction: Some(Direction::Outbound),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(outbound.total, 5);

    let delivered = store
        .list(&MessageFilter {
            situation: Some(Situation::Finalizada),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.total, 9);
    let by_route = store
        .list(&MessageFilter {
            route: Some("omni".into()),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_route.total, 9);
    let no_route = store
        .list(&MessageFilter {
            route: Some("nowhere".into()),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(no_route.total, 0);

    // [from, to): messages 10..=19.
    let window = store
        .list(&MessageFilter {
            from: Some(base + 10_000),
            to: Some(base + 20_000),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(window.total, 10);

    // Several ids at once: a UUID prefix in upper case, a whole UUID, a business key prefix.
    let search = store
        .list(&MessageFilter {
            search: vec![
                "0000A001".into(),
                format!("{:08x}-list-4000-8000-{:012}", 0xa000 + 7, 7),
                "PED002".into(),
                "   ".into(),
            ],
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    let mut found: Vec<_> = search
        .messages
        .iter()
        .map(|m| m.business_key.clone().unwrap())
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "PED0001", "PED0007", "PED0020", "PED0021", "PED0022", "PED0023", "PED0024"
        ]
    );
    assert_eq!(search.total, 7);

    // LIKE wildcards are plain characters.
    for wildcard in ["%", "_", "PED%", "0000a0_"] {
        let none = store
            .list(&MessageFilter {
                search: vec![wildcard.into()],
                ..MessageFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(none.total, 0, "{wildcard} matched");
    }

    // Filters combine.
    let combined = store
        .list(&MessageFilter {
            transaction: Some("RetailSales".into()),
            route: Some("omni".into()),
            from: Some(base + 6_000),
            page_size: 2,
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    // Even i ≥ 6 and i % 3 == 0: 6, 12, 18, 24.
    assert_eq!(combined.total, 4);
    assert_eq!(combined.messages.len(), 2);
    assert_eq!(
        combined.messages[0].business_key.as_deref(),
        Some("PED0024")
    );
}

async fn counts_for_the_dashboard(store: MonitorStore) {
    let empty = store.counts().await.unwrap();
    assert_eq!((empty.received, empty.accepted, empty.refused), (0, 0, 0));
    assert!(
        store
            .counts_by_transaction_and_route()
            .await
            .unwrap()
            .is_empty()
    );

    for (uuid, transaction) in [
        ("c1", "RetailSales"),
        ("c2", "RetailSales"),
        ("c3", "ItemReserve"),
    ] {
        store
            .record_received(&message(uuid, transaction))
            .await
            .unwrap();
    }
    store
        .record_attempt(
            "c1",
            "protheus",
            &DeliveryOutcome::Delivered {
                response: "ok".into(),
            },
        )
        .await
        .unwrap();
    store
        .record_attempt("c1", "omni", &DeliveryOutcome::Parked { error: "x".into() })
        .await
        .unwrap();
    store
        .record_attempt(
            "c2",
            "protheus",
            &DeliveryOutcome::Failed {
                error: "503".into(),
                retry_at: now_millis() + 60_000,
            },
        )
        .await
        .unwrap();
    store
        .record_refused(&NewMessage::new("", "RetailSales"), "bad", Stage::Received)
        .await
        .unwrap();

    let lines = store.counts_by_transaction_and_route().await.unwrap();
    let line = |t: &str, r: Option<&str>| {
        lines
            .iter()
            .find(|l| l.transaction == t && l.route.as_deref() == r)
            .unwrap_or_else(|| panic!("no line for {t} {r:?} in {lines:?}"))
            .clone()
    };
    let rp = line("RetailSales", Some("protheus"));
    assert_eq!(
        (rp.received, rp.delivered, rp.failed, rp.parked),
        (2, 1, 1, 0)
    );
    let ro = line("RetailSales", Some("omni"));
    assert_eq!((ro.received, ro.parked), (1, 1));
    let rn = line("RetailSales", None);
    assert_eq!((rn.received, rn.refused), (1, 1));
    let ir = line("ItemReserve", None);
    assert_eq!((ir.received, ir.waiting), (1, 1));
    assert_eq!(lines.len(), 4);
    // Sorted: by transaction, routes by name, no route last.
    let order: Vec<_> = lines
        .iter()
        .map(|l| (l.transaction.as_str(), l.route.as_deref()))
        .collect();
    assert_eq!(
        order,
        [
            ("ItemReserve", None),
            ("RetailSales", Some("omni")),
            ("RetailSales", Some("protheus")),
            ("RetailSales", None)
        ]
    );

    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.received, counts.accepted, counts.refused),
        (4, 3, 1)
    );
    assert_eq!(counts.situation(Situation::Bloqueado), 1);
    assert_eq!(counts.situation(Situation::Falhou), 1);
    assert_eq!(counts.situation(Situation::AguardandoExecucao), 1);
}

async fn timeline_keeps_the_order_of_events(store: MonitorStore) {
    let uuid = "t0000000-0000-4000-8000-000000000001";
    store
        .record_received(&message(uuid, "RetailSales"))
        .await
        .unwrap();
    store
        .set_situation(uuid, Situation::AguardandoExecucao, Stage::Validated, None)
        .await
        .unwrap();
    store
        .set_situation(uuid, Situation::AguardandoExecucao, Stage::Routed, None)
        .await
        .unwrap();
    store
        .add_timeline(
            uuid,
            None,
            Stage::Mapped,
            Situation::AguardandoExecucao,
            "De/Para: SA1 000001",
        )
        .await
        .unwrap();
    store.start_delivery(uuid, "protheus").await.unwrap();
    store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Failed {
                error: "HTTP 500".into(),
                retry_at: now_millis() - 1,
            },
        )
        .await
        .unwrap();
    store.start_delivery(uuid, "protheus").await.unwrap();
    store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Delivered {
                response: "OK".into(),
            },
        )
        .await
        .unwrap();

    let timeline = store.timeline(uuid).await.unwrap();
    let steps: Vec<_> = timeline
        .iter()
        .map(|e| (e.stage, e.situation, e.attempt))
        .collect();
    assert_eq!(
        steps,
        [
            (Stage::Received, Situation::AguardandoExecucao, None),
            (Stage::Validated, Situation::AguardandoExecucao, None),
            (Stage::Routed, Situation::AguardandoExecucao, None),
            (Stage::Mapped, Situation::AguardandoExecucao, None),
            (Stage::Delivering, Situation::Executando, Some(1)),
            (Stage::Failed, Situation::Falhou, Some(1)),
            (Stage::Delivering, Situation::Executando, Some(2)),
            (Stage::Delivered, Situation::Finalizada, Some(2)),
        ]
    );
    assert!(
        timeline
            .windows(2)
            .all(|w| w[0].at <= w[1].at && w[0].id < w[1].id)
    );
    assert_eq!(timeline[3].detail.as_deref(), Some("De/Para: SA1 000001"));
    assert_eq!(timeline[5].detail.as_deref(), Some("HTTP 500"));
    assert_eq!(timeline[5].route.as_deref(), Some("protheus"));
    assert_eq!(timeline[7].detail.as_deref(), Some("OK"));
    assert!(timeline.iter().all(|e| e.uuid == uuid));
    assert!(store.timeline("nobody").await.unwrap().is_empty());
}

async fn payload_bytes_round_trip(store: MonitorStore) {
    let every_byte: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00, 0xc3, 0x28]).collect();
    assert!(std::str::from_utf8(&every_byte).is_err());
    let latin1 = b"<Name>Jos\xe9 Concei\xe7\xe3o</Name>".to_vec();
    let cases = [
        ("bytes-1", every_byte, Some("{\"ok\":true}".to_owned())),
        ("bytes-2", latin1, None),
        ("bytes-3", Vec::new(), Some("{}".to_owned())),
        (
            "bytes-4",
            "{\"Name\":\"João Ação ✓ 日本\"}".as_bytes().to_vec(),
            Some("{\"Name\":\"João Ação ✓ 日本\",\"Nul\":\"\\u0000\"}".to_owned()),
        ),
    ];
    for (uuid, payload, canonical) in &cases {
        let m = NewMessage {
            raw_payload: payload.clone(),
            canonical_json: canonical.clone(),
            format: Format::Xml,
            ..message(uuid, "RetailSales")
        };
        store.record_received(&m).await.unwrap();
    }
    for (uuid, payload, canonical) in &cases {
        let record = store.get(uuid).await.unwrap().unwrap();
        assert_eq!(&record.raw_payload, payload, "{uuid}");
        assert_eq!(&record.canonical_json, canonical, "{uuid}");
    }
}

async fn hostile_strings_are_stored_unchanged(store: MonitorStore) {
    let hostile = [
        "O'Brien \"quoted\" `tick`",
        "'; DROP TABLE monitor_messages; --",
        "\\ backslash \\' $1 ? :name @p %_ *",
        "Ação – “aspas” ✓ 🚀",
    ];
    let big: String = "x'\"\\".repeat(256 * 1024); // 1 MiB
    for (i, text) in hostile.iter().enumerate() {
        let uuid = format!("{text}-{i}");
        let m = NewMessage {
            transaction: (*text).to_owned(),
            version: (*text).to_owned(),
            source_application: (*text).to_owned(),
            origin: (*text).to_owned(),
            business_key: Some((*text).to_owned()),
            canonical_json: Some(big.clone()),
            ..message(&uuid, text)
        };
        assert_eq!(store.record_received(&m).await.unwrap(), Received::New);
        store.set_answer(&uuid, &big).await.unwrap();
        store.set_canonical_json(&uuid, text).await.unwrap();
        assert_eq!(
            store
                .get(&uuid)
                .await
                .unwrap()
                .unwrap()
                .canonical_json
                .as_deref(),
            Some(text.replace('\0', "\u{FFFD}").as_str())
        );
        store.set_canonical_json(&uuid, &big).await.unwrap();
        store
            .set_situation(&uuid, Situation::Falhou, Stage::Validated, Some(&big))
            .await
            .unwrap();
        store
            .add_timeline(&uuid, Some(text), Stage::Mapped, Situation::Falhou, text)
            .await
            .unwrap();
        store
            .record_attempt(
                &uuid,
                text,
                &DeliveryOutcome::Delivered {
                    response: big.clone(),
                },
            )
            .await
            .unwrap();
        store
            .record_learned_depara(
                &uuid,
                &[LearnedDePara {
                    alias: (*text).to_owned(),
                    field: (*text).to_owned(),
                    external: (*text).to_owned(),
                    internal: big.clone(),
                }],
            )
            .await
            .unwrap();

        let record = store.get(&uuid).await.unwrap().unwrap();
        assert_eq!(record.uuid, uuid);
        assert_eq!(record.transaction, *text);
        assert_eq!(record.version, *text);
        assert_eq!(record.source_application, *text);
        assert_eq!(record.origin, *text);
        assert_eq!(record.business_key.as_deref(), Some(*text));
        assert_eq!(record.canonical_json.as_deref(), Some(big.as_str()));
        assert_eq!(record.answer.as_deref(), Some(big.as_str()));
        assert_eq!(record.last_error.as_deref(), Some(big.as_str()));
        let delivery = store.delivery(&uuid, text).await.unwrap().unwrap();
        assert_eq!(delivery.response.as_deref(), Some(big.as_str()));
        let timeline = store.timeline(&uuid).await.unwrap();
        assert!(timeline.iter().any(|e| e.detail.as_deref() == Some(*text)));
        assert_eq!(store.learned_depara(&uuid).await.unwrap()[0].internal, big);

        // As filters they match exactly themselves.
        let by_transaction = store
            .list(&MessageFilter {
                transaction: Some((*text).to_owned()),
                ..MessageFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(by_transaction.total, 1, "{text}");
        let by_route = store
            .list(&MessageFilter {
                route: Some((*text).to_owned()),
                ..MessageFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(by_route.total, 1, "{text}");
        let by_key = store
            .list(&MessageFilter {
                search: vec![(*text).to_owned()],
                ..MessageFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(by_key.total, 1, "{text}");
    }
    // Still all there: nothing was dropped.
    assert_eq!(store.counts().await.unwrap().received, hostile.len() as i64);

    // NUL cannot live in PostgreSQL text; both stores keep U+FFFD in its place.
    let nul = "a\0b";
    store.record_received(&message("nul-1", nul)).await.unwrap();
    assert_eq!(
        store.get("nul-1").await.unwrap().unwrap().transaction,
        "a\u{FFFD}b"
    );
}

async fn unknown_messages_are_reported(store: MonitorStore) {
    assert_eq!(store.get("missing").await.unwrap(), None);
    assert!(store.deliveries("missing").await.unwrap().is_empty());
    let is_unknown = |r: Result<(), MonitorError>| matches!(r, Err(MonitorError::UnknownMessage { ref uuid }) if uuid == "missing");
    assert!(is_unknown(
        store
            .set_situation("missing", Situation::Falhou, Stage::Validated, None)
            .await
    ));
    assert!(is_unknown(store.set_answer("missing", "x").await));
    assert!(is_unknown(store.set_canonical_json("missing", "{}").await));
    assert!(is_unknown(
        store
            .add_timeline("missing", None, Stage::Mapped, Situation::Falhou, "x")
            .await
    ));
    assert!(is_unknown(
        store.start_delivery("missing", "r").await.map(|_| ())
    ));
    assert!(is_unknown(
        store
            .record_attempt(
                "missing",
                "r",
                &DeliveryOutcome::Parked { error: "x".into() }
            )
            .await
            .map(|_| ())
    ));
    assert!(is_unknown(
        store.plan_delivery("missing", "r", 0).await.map(|_| ())
    ));
    assert!(is_unknown(
        store.record_learned_depara("missing", &[]).await
    ));
    assert_eq!(store.counts().await.unwrap().received, 0);
}

async fn learned_depara_is_kept_per_message(store: MonitorStore) {
    store
        .record_received(&message("dp-1", "CustomerVendor"))
        .await
        .unwrap();
    let pair = |field: &str, external: &str, internal: &str| LearnedDePara {
        alias: "SA1".into(),
        field: field.into(),
        external: external.into(),
        internal: internal.into(),
    };
    store
        .record_learned_depara(
            "dp-1",
            &[
                pair("A1_COD", "OMNI-9", "T1|D MG 01|000001|01"),
                pair("A1_LOJA", "1", "01"),
            ],
        )
        .await
        .unwrap();
    // Learning the same pair again updates it.
    store
        .record_learned_depara("dp-1", &[pair("A1_COD", "OMNI-9", "T1|D MG 01|000002|01")])
        .await
        .unwrap();
    let learned = store.learned_depara("dp-1").await.unwrap();
    assert_eq!(
        learned,
        [
            pair("A1_COD", "OMNI-9", "T1|D MG 01|000002|01"),
            pair("A1_LOJA", "1", "01")
        ]
    );
    assert!(store.learned_depara("other").await.unwrap().is_empty());
}

/// A route consumer plans a whole polled batch at once: known messages get one waiting
/// delivery each, unknown ones are left out, and planning again changes nothing.
async fn a_batch_of_plans_is_stored_at_once(store: MonitorStore) {
    for uuid in ["batch-1", "batch-2"] {
        store
            .record_received(&message(uuid, "DocumentTraceabilityOrder"))
            .await
            .unwrap();
    }
    let uuids: Vec<String> = ["batch-1", "batch-unknown", "batch-2"]
        .iter()
        .map(|u| (*u).to_owned())
        .collect();
    let planned = store.plan_deliveries("omni", &uuids, 1).await.unwrap();
    assert_eq!(planned, vec!["batch-1".to_owned(), "batch-2".to_owned()]);
    for uuid in ["batch-1", "batch-2"] {
        let delivery = store
            .delivery(uuid, "omni")
            .await
            .unwrap()
            .expect("planned");
        assert_eq!(delivery.situation, Situation::AguardandoExecucao);
        assert_eq!(delivery.attempts, 0);
    }
    assert!(store.get("batch-unknown").await.unwrap().is_none());
    let again = store.plan_deliveries("omni", &uuids, 1).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(store.pending_deliveries("omni", 10).await.unwrap().len(), 2);
}

/// A route consumer that appends a batch itself first asks which messages the store knows,
/// which have a delivery along the route already, and which keys still have one pending there
/// (their later messages must wait); then it records what it delivered in one write.
async fn a_route_consumers_own_deliveries_are_gated_and_recorded(store: MonitorStore) {
    for uuid in [
        "own-1",
        "own-2",
        "own-waiting",
        "own-retry",
        "own-parked",
        "own-done",
    ] {
        store
            .record_received(&message(uuid, "DocumentTraceabilityOrder"))
            .await
            .unwrap();
    }
    // own-waiting: planned; own-retry: failed with a retry planned; own-parked: Bloqueado;
    // own-done: delivered. Only the first two hold their key back.
    store.plan_delivery("own-waiting", "omni", 0).await.unwrap();
    for (uuid, outcome) in [
        (
            "own-retry",
            DeliveryOutcome::Failed {
                error: "the topic refused it".into(),
                retry_at: now_millis() + 60_000,
            },
        ),
        (
            "own-parked",
            DeliveryOutcome::Parked {
                error: "the topic refused it four times".into(),
            },
        ),
        (
            "own-done",
            DeliveryOutcome::Delivered {
                response: "appended at t/0/0".into(),
            },
        ),
    ] {
        store.plan_delivery(uuid, "omni", 0).await.unwrap();
        assert!(matches!(
            store.start_delivery(uuid, "omni").await.unwrap(),
            DeliveryStart::Started { .. }
        ));
        store.record_attempt(uuid, "omni", &outcome).await.unwrap();
    }
    let uuids = ["own-1", "own-unknown", "own-done", "own-waiting"];
    let keys: Vec<String> = [
        "own-1",
        "own-waiting",
        "own-retry",
        "own-parked",
        "own-done",
    ]
    .iter()
    .map(|u| format!("KEY-{u}"))
    .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let gate = store.delivery_gate("omni", &uuids, &keys).await.unwrap();
    let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(gate.known, set(&["own-1", "own-done", "own-waiting"]));
    assert_eq!(gate.has_delivery, set(&["own-done", "own-waiting"]));
    assert_eq!(gate.busy_keys, set(&["KEY-own-waiting", "KEY-own-retry"]));
    // Another route sees none of them.
    let elsewhere = store
        .delivery_gate("protheus", &uuids, &keys)
        .await
        .unwrap();
    assert!(elsewhere.has_delivery.is_empty() && elsewhere.busy_keys.is_empty());

    let delivered: Vec<(String, String)> = ["own-1", "own-unknown", "own-2", "own-done"]
        .iter()
        .map(|u| ((*u).to_owned(), format!("appended at t/0/{u}")))
        .collect();
    let recorded = store.record_delivered("omni", &delivered).await.unwrap();
    assert_eq!(recorded, vec!["own-1".to_owned(), "own-2".to_owned()]);
    for uuid in ["own-1", "own-2"] {
        let delivery = store.delivery(uuid, "omni").await.unwrap().unwrap();
        assert_eq!(
            (delivery.situation, delivery.attempts),
            (Situation::Finalizada, 1)
        );
        assert_eq!(
            delivery.response.as_deref(),
            Some(format!("appended at t/0/{uuid}").as_str())
        );
        assert_eq!(
            situation(&store, uuid).await,
            (Situation::Finalizada, Stage::Delivered)
        );
        let last = store.timeline(uuid).await.unwrap().pop().unwrap();
        assert_eq!(
            (last.situation, last.attempt, last.route.as_deref()),
            (Situation::Finalizada, Some(1), Some("omni"))
        );
    }
    // own-done keeps its own delivery; nothing was made up for the unknown message.
    let done = store.delivery("own-done", "omni").await.unwrap().unwrap();
    assert_eq!(done.response.as_deref(), Some("appended at t/0/0"));
    assert!(store.get("own-unknown").await.unwrap().is_none());
    assert!(
        store
            .pending_deliveries("omni", 10)
            .await
            .unwrap()
            .iter()
            .all(|p| { !["own-1", "own-2"].contains(&p.delivery.uuid.as_str()) })
    );
    let again = store.record_delivered("omni", &delivered).await.unwrap();
    assert!(again.is_empty(), "{again:?}");

    // Records of several routes, written together with ingest's writes, answer each their own.
    let mut writes = tokio::task::JoinSet::new();
    for route in ["route-a", "route-b", "route-c"] {
        let store = store.clone();
        writes.spawn(async move {
            let batch = vec![
                ("own-1".to_owned(), format!("appended at {route}/0/1")),
                ("own-2".to_owned(), format!("appended at {route}/0/2")),
            ];
            (route, store.record_delivered(route, &batch).await)
        });
    }
    let ingest = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .record_received(&message("own-3", "DocumentTraceabilityOrder"))
                .await
        })
    };
    for (route, recorded) in writes.join_all().await {
        assert_eq!(
            recorded.unwrap(),
            vec!["own-1".to_owned(), "own-2".to_owned()],
            "{route}"
        );
        let delivery = store.delivery("own-2", route).await.unwrap().unwrap();
        assert_eq!(delivery.response, Some(format!("appended at {route}/0/2")));
    }
    assert!(matches!(ingest.await.unwrap().unwrap(), Received::New));
    assert_eq!(store.deliveries("own-1").await.unwrap().len(), 4);
}

/// Writes arriving together are committed together (ingest's received and progress, delivery
/// claims and outcomes); the store must end as if they had been written one by one, and one
/// write that cannot apply (an unknown UUID, a claim that loses) must not fail its neighbours.
async fn concurrent_writes_of_many_messages_are_grouped_faithfully(store: MonitorStore) {
    const N: usize = 40;
    let uuids: Vec<String> = (0..N).map(|i| format!("group-{i:02}")).collect();

    // Received, all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for uuid in &uuids {
        let (store, uuid) = (store.clone(), uuid.clone());
        tasks.spawn(async move { store.record_received(&message(&uuid, "RetailSales")).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(matches!(result.unwrap(), Ok(Received::New)));
    }

    // Ingest's progress, with one write for a message nobody recorded.
    let mut tasks = tokio::task::JoinSet::new();
    for uuid in uuids.iter().cloned().chain(["group-unknown".to_owned()]) {
        let store = store.clone();
        tasks.spawn(async move {
            let mut progress = Progress::default();
            progress.step(Stage::Validated, Situation::AguardandoExecucao, "valid");
            progress.step(Stage::Logged, Situation::AguardandoExecucao, "appended");
            progress.outcome = Some((Situation::AguardandoExecucao, Stage::Logged, None));
            progress.answer = Some(format!("answer of {uuid}"));
            (uuid.clone(), store.record_progress(&uuid, &progress).await)
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (uuid, result) = result.unwrap();
        if uuid == "group-unknown" {
            assert!(
                matches!(result, Err(MonitorError::UnknownMessage { .. })),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    for route in ["r1", "r2"] {
        let planned = store.plan_deliveries(route, &uuids, 0).await.unwrap();
        assert_eq!(planned, uuids);
    }

    // Every delivery along r1 claimed at once, the first message's twice: one claim wins.
    let mut tasks = tokio::task::JoinSet::new();
    for uuid in uuids.iter().chain([&uuids[0]]) {
        let (store, uuid) = (store.clone(), uuid.clone());
        tasks.spawn(async move { (uuid.clone(), store.start_delivery(&uuid, "r1").await) });
    }
    let mut started = std::collections::BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (uuid, result) = result.unwrap();
        if let DeliveryStart::Started { attempt } = result.unwrap() {
            assert_eq!(attempt, 1);
            *started.entry(uuid).or_insert(0) += 1;
        }
    }
    assert_eq!(started.len(), N);
    assert!(started.values().all(|n| *n == 1), "{started:?}");

    // Outcomes at once: even messages delivered, odd ones failed with a retry planned.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, uuid) in uuids.iter().enumerate() {
        let (store, uuid) = (store.clone(), uuid.clone());
        tasks.spawn(async move {
            let outcome = if i % 2 == 0 {
                DeliveryOutcome::Delivered {
                    response: format!("appended {i}"),
                }
            } else {
                DeliveryOutcome::Failed {
                    error: format!("refused {i}"),
                    retry_at: now_millis() + 60_000,
                }
            };
            store.record_attempt(&uuid, "r1", &outcome).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), 1);
    }

    for (i, uuid) in uuids.iter().enumerate() {
        let record = store.get(uuid).await.unwrap().unwrap();
        assert_eq!(
            record.answer.as_deref(),
            Some(format!("answer of {uuid}").as_str())
        );
        assert_eq!(record.attempts, 1);
        let r1 = store.delivery(uuid, "r1").await.unwrap().unwrap();
        let r2 = store.delivery(uuid, "r2").await.unwrap().unwrap();
        assert_eq!(r2.situation, Situation::AguardandoExecucao);
        if i % 2 == 0 {
            assert_eq!(r1.situation, Situation::Finalizada);
            assert_eq!(
                r1.response.as_deref(),
                Some(format!("appended {i}").as_str())
            );
            // r2 still waits, so the message does.
            assert_eq!(record.situation, Situation::AguardandoExecucao);
        } else {
            assert_eq!(r1.situation, Situation::Falhou);
            assert_eq!(record.situation, Situation::Falhou);
            assert_eq!(
                record.last_error.as_deref(),
                Some(format!("refused {i}").as_str())
            );
        }
        // received, two steps, two plans, the claim and the outcome.
        let timeline = store.timeline(uuid).await.unwrap();
        assert_eq!(timeline.len(), 7, "{uuid}: {timeline:?}");
        let attempts: Vec<Option<i64>> = timeline.iter().map(|e| e.attempt).collect();
        assert_eq!(attempts.iter().flatten().count(), 2, "{attempts:?}");
    }

    // The even ones delivered along r2 too: now they are finished.
    for uuid in uuids.iter().step_by(2) {
        assert!(matches!(
            store.start_delivery(uuid, "r2").await.unwrap(),
            DeliveryStart::Started { attempt: 1 }
        ));
        let outcome = DeliveryOutcome::Delivered {
            response: "ok".into(),
        };
        store.record_attempt(uuid, "r2", &outcome).await.unwrap();
        let record = store.get(uuid).await.unwrap().unwrap();
        assert_eq!(
            (record.situation, record.stage),
            (Situation::Finalizada, Stage::Delivered)
        );
        assert!(record.processed_at.is_some());
    }
}

/// A Kafka route appends first and settles after (no claim): the outcome counts only if the
/// delivery could have been started then; otherwise another worker had it and nothing changes.
async fn an_unclaimed_attempt_counts_only_when_it_could_have_started(store: MonitorStore) {
    let delivered = DeliveryOutcome::Delivered {
        response: "appended at t/0/1".into(),
    };
    for uuid in ["settle-1", "settle-2", "settle-3"] {
        store
            .record_received(&message(uuid, "DocumentTraceabilityOrder"))
            .await
            .unwrap();
        store.plan_delivery(uuid, "omni", 0).await.unwrap();
    }

    // Waiting: it counts, as a claim and its outcome would.
    assert_eq!(settled(&store, "settle-1", &delivered).await, Some(1));
    let record = store.get("settle-1").await.unwrap().unwrap();
    assert_eq!(
        (record.situation, record.stage),
        (Situation::Finalizada, Stage::Delivered)
    );
    let last = store.timeline("settle-1").await.unwrap().pop().unwrap();
    assert_eq!(
        (last.situation, last.attempt),
        (Situation::Finalizada, Some(1))
    );
    // Settled already: a second copy does not count.
    assert_eq!(settled(&store, "settle-1", &delivered).await, None);
    assert_eq!(
        store
            .delivery("settle-1", "omni")
            .await
            .unwrap()
            .unwrap()
            .attempts,
        1
    );

    // Claimed by a worker whose lease runs: not this caller's.
    assert!(matches!(
        store.start_delivery("settle-2", "omni").await.unwrap(),
        DeliveryStart::Started { attempt: 1 }
    ));
    assert_eq!(settled(&store, "settle-2", &delivered).await, None);
    let delivery = store.delivery("settle-2", "omni").await.unwrap().unwrap();
    assert_eq!(
        (delivery.situation, delivery.attempts),
        (Situation::Executando, 0)
    );

    // Failed with its retry not due: no; due: yes, as the second attempt.
    let later = DeliveryOutcome::Failed {
        error: "the topic refused it".into(),
        retry_at: now_millis() + 60_000,
    };
    assert_eq!(settled(&store, "settle-3", &later).await, Some(1));
    assert_eq!(settled(&store, "settle-3", &delivered).await, None);
    let due = DeliveryOutcome::Failed {
        error: "the topic refused it again".into(),
        retry_at: now_millis() - 1,
    };
    // A reprocess puts it back in the queue (attempts at 0); a failure whose retry is
    // already due leaves it startable, so the next copy counts.
    store.reset_for_reprocess("settle-3", "omni").await.unwrap();
    assert_eq!(settled(&store, "settle-3", &due).await, Some(1));
    assert_eq!(settled(&store, "settle-3", &delivered).await, Some(2));
    let record = store.get("settle-3").await.unwrap().unwrap();
    assert_eq!(record.situation, Situation::Finalizada);

    assert!(matches!(
        store
            .settle_attempt("settle-unknown", "omni", &delivered)
            .await,
        Err(MonitorError::UnknownMessage { .. })
    ));
}

/// `settle_attempt` along the route "omni", which must not fail.
async fn settled(store: &MonitorStore, uuid: &str, outcome: &DeliveryOutcome) -> Option<i64> {
    store.settle_attempt(uuid, "omni", outcome).await.unwrap()
}

async fn pending_deliveries_come_oldest_message_first(store: MonitorStore) {
    let base = 1_700_000_000_000_i64;
    let outcomes = [
        ("p-waiting", None),
        (
            "p-retrying",
            Some(DeliveryOutcome::Failed {
                error: "503".into(),
                retry_at: base,
            }),
        ),
        (
            "p-delivered",
            Some(DeliveryOutcome::Delivered {
                response: "ok".into(),
            }),
        ),
        (
            "p-parked",
            Some(DeliveryOutcome::Parked { error: "x".into() }),
        ),
        (
            "p-dead",
            Some(DeliveryOutcome::DeadLettered { error: "x".into() }),
        ),
        (
            "p-unknown",
            Some(DeliveryOutcome::TimedOut {
                error: "timeout".into(),
                retry_at: None,
            }),
        ),
        (
            "p-unknown-retry",
            Some(DeliveryOutcome::TimedOut {
                error: "timeout".into(),
                retry_at: Some(base),
            }),
        ),
    ];
    // Received newest first, so that the order below comes from received_at, not insertion.
    for (i, (uuid, outcome)) in outcomes.iter().enumerate().rev() {
        let m = NewMessage {
            received_at: Some(base + i as i64),
            business_key: Some("PEDIDO-1".into()),
            ..message(uuid, "RetailSales")
        };
        store.record_received(&m).await.unwrap();
        store.plan_delivery(uuid, "protheus", base).await.unwrap();
        store.plan_delivery(uuid, "omni", base).await.unwrap();
        if let Some(outcome) = outcome {
            store
                .record_attempt(uuid, "protheus", outcome)
                .await
                .unwrap();
        }
    }
    store.start_delivery("p-waiting", "protheus").await.unwrap();

    let pending = store.pending_deliveries("protheus", 100).await.unwrap();
    let uuids: Vec<_> = pending.iter().map(|p| p.delivery.uuid.as_str()).collect();
    assert_eq!(uuids, ["p-waiting", "p-retrying", "p-unknown-retry"]);
    assert_eq!(pending[0].delivery.situation, Situation::Executando);
    assert_eq!(pending[0].business_key.as_deref(), Some("PEDIDO-1"));
    assert_eq!(pending[0].transaction, "RetailSales");
    assert_eq!(pending[0].received_at, base);
    assert_eq!(
        pending[0].canonical_json.as_deref(),
        Some("{\"Header\":{\"UUID\":\"p-waiting\"}}")
    );
    assert_eq!(
        store.pending_deliveries("protheus", 2).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.pending_deliveries("omni", 100).await.unwrap().len(),
        7
    );
    assert!(
        store
            .pending_deliveries("nowhere", 100)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Per database

async fn resolutions_hold_until_a_reprocess(store: MonitorStore) {
    let uuid = "e0000000-0000-4000-8000-00000000000r";
    let delivered = "e0000000-0000-4000-8000-00000000000d";
    for u in [uuid, delivered] {
        store
            .record_received(&message(u, "RetailSales"))
            .await
            .unwrap();
        store.start_delivery(u, "protheus").await.unwrap();
    }
    store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Parked {
                error: "down".into(),
            },
        )
        .await
        .unwrap();
    store
        .record_attempt(
            delivered,
            "protheus",
            &DeliveryOutcome::Delivered {
                response: "ok".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.resolution(uuid).await.unwrap(), None);
    let resolved = |filter: Option<bool>| MessageFilter {
        resolved: filter,
        search: vec!["e0000000".into()],
        ..MessageFilter::default()
    };

    // Resolved with a note (NUL kept out, as text elsewhere), shown in the timeline, filterable.
    let outcome = store
        .resolve(uuid, "op1", Some("  combinado com o cliente\0 "))
        .await
        .unwrap();
    let ResolveOutcome::Resolved(first) = outcome else {
        panic!("not resolved: {outcome:?}");
    };
    assert_eq!(first.resolved_by, "op1");
    assert_eq!(
        first.note.as_deref(),
        Some("combinado com o cliente\u{FFFD}")
    );
    assert_eq!(store.resolution(uuid).await.unwrap(), Some(first.clone()));
    let timeline = store.timeline(uuid).await.unwrap();
    let last = timeline.last().unwrap();
    assert!(
        last.detail
            .as_deref()
            .unwrap()
            .contains("resolvido por op1"),
        "{last:?}"
    );
    assert_eq!(
        last.situation,
        Situation::Bloqueado,
        "the situation does not change"
    );
    let only = store.list(&resolved(Some(true))).await.unwrap();
    assert_eq!(only.total, 1);
    assert_eq!(only.messages[0].uuid, uuid);
    let others = store.list(&resolved(Some(false))).await.unwrap();
    assert_eq!(others.total, 1);
    assert_eq!(others.messages[0].uuid, delivered);
    assert_eq!(store.list(&resolved(None)).await.unwrap().total, 2);

    // Twice: the first stands. A delivered message needs none. An unknown one is reported.
    assert_eq!(
        store.resolve(uuid, "op2", None).await.unwrap(),
        ResolveOutcome::AlreadyResolved(first)
    );
    assert_eq!(
        store.resolve(delivered, "op2", None).await.unwrap(),
        ResolveOutcome::Finished
    );
    assert!(matches!(
        store.resolve("nope", "op2", None).await,
        Err(MonitorError::UnknownMessage { .. })
    ));

    // A reprocess lifts it; it can be resolved again afterwards.
    store.reset_for_reprocess(uuid, "protheus").await.unwrap();
    assert_eq!(store.resolution(uuid).await.unwrap(), None);
    assert_eq!(store.list(&resolved(Some(true))).await.unwrap().total, 0);
    store.start_delivery(uuid, "protheus").await.unwrap();
    store
        .record_attempt(
            uuid,
            "protheus",
            &DeliveryOutcome::Parked {
                error: "down again".into(),
            },
        )
        .await
        .unwrap();
    let again = store.resolve(uuid, "op2", None).await.unwrap();
    assert!(
        matches!(&again, ResolveOutcome::Resolved(r) if r.resolved_by == "op2" && r.note.is_none()),
        "{again:?}"
    );
}

async fn sync_runs_count_outcomes_and_end_with_a_status(store: MonitorStore) {
    let run = |kind, started_by: StartedBy| NewSyncRun {
        kind,
        started_by,
        actor: Some("op1".into()),
        scope: "protheus <b>".into(),
    };
    // Partial: some succeeded, some failed; counted in two flushes.
    let mut partial = store
        .start_sync_run(&run(SyncKind::Delivery, StartedBy::Webhook))
        .await
        .unwrap();
    partial.count(SyncOutcome::Succeeded);
    partial.count(SyncOutcome::Succeeded);
    partial.flush().await.unwrap();
    let running = store.sync_run(partial.id()).await.unwrap().unwrap();
    assert_eq!(running.status, SyncStatus::Running);
    assert_eq!((running.total, running.succeeded), (2, 2));
    assert_eq!(running.finished_at, None);
    partial.count(SyncOutcome::Failed);
    partial.count(SyncOutcome::Skipped);
    let done = partial.finish().await.unwrap().unwrap();
    assert_eq!(done.status, SyncStatus::Partial);
    assert_eq!(
        (done.total, done.succeeded, done.failed, done.skipped),
        (4, 2, 1, 1)
    );
    assert!(done.finished_at.is_some());
    assert_eq!(done.scope, "protheus <b>");
    assert_eq!(done.actor.as_deref(), Some("op1"));

    // Success (skips do not fail a run), error (all failed), aborted (error with the reason).
    let mut success = store
        .start_sync_run(&run(SyncKind::Reprocess, StartedBy::Manual))
        .await
        .unwrap();
    success.count_all(SyncCounts {
        succeeded: 3,
        failed: 0,
        skipped: 2,
    });
    assert_eq!(
        success.finish().await.unwrap().unwrap().status,
        SyncStatus::Success
    );
    let mut error = store
        .start_sync_run(&run(SyncKind::Redrive, StartedBy::Manual))
        .await
        .unwrap();
    error.count(SyncOutcome::Failed);
    assert_eq!(
        error.finish().await.unwrap().unwrap().status,
        SyncStatus::Error
    );
    let aborted = store
        .start_sync_run(&run(SyncKind::Replay, StartedBy::Kafka))
        .await
        .unwrap();
    let aborted_id = aborted.id();
    let stopped = aborted
        .abort("the log is unavailable")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.status, SyncStatus::Error);
    assert_eq!(stopped.detail.as_deref(), Some("the log is unavailable"));
    // A closed run stays as it was.
    let again = store
        .finish_sync_run(aborted_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, stopped);
    let still_running = store
        .start_sync_run(&run(SyncKind::Delivery, StartedBy::Schedule))
        .await
        .unwrap();

    // Listed newest first, filtered, paged.
    let all = store.sync_runs(&SyncRunFilter::default()).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(all.runs[0].id, still_running.id());
    assert_eq!(all.runs[0].status, SyncStatus::Running);
    let deliveries = store
        .sync_runs(&SyncRunFilter {
            kind: Some(SyncKind::Delivery),
            ..SyncRunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.total, 2);
    let manual_errors = store
        .sync_runs(&SyncRunFilter {
            started_by: Some(StartedBy::Manual),
            status: Some(SyncStatus::Error),
            ..SyncRunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(manual_errors.total, 1);
    assert_eq!(manual_errors.runs[0].kind, SyncKind::Redrive);
    let page2 = store
        .sync_runs(&SyncRunFilter {
            page: 2,
            page_size: 2,
            ..SyncRunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.runs.len(), 2);
    assert_eq!(page2.total, 5);
    assert!(store.sync_run(999_999).await.unwrap().is_none());

    // A delivery run left running by a stopped process is closed in error; others stay.
    let closed = store
        .close_abandoned_sync_runs(SyncKind::Delivery, now_millis() + 1)
        .await
        .unwrap();
    assert_eq!(closed, 1);
    let abandoned = store.sync_run(still_running.id()).await.unwrap().unwrap();
    assert_eq!(abandoned.status, SyncStatus::Error);
    assert!(abandoned.detail.unwrap().starts_with("abandoned"));
    assert_eq!(
        store
            .close_abandoned_sync_runs(SyncKind::Delivery, now_millis() + 1)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn sqlite_file_uses_wal_and_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("monitor.db");
    let store = MonitorStore::open_sqlite(&path).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    store
        .record_received(&message("keep-1", "RetailSales"))
        .await
        .unwrap();
    store.close().await;

    let reopened = MonitorStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(matches!(
        reopened
            .record_received(&message("keep-1", "RetailSales"))
            .await
            .unwrap(),
        Received::Duplicate(_)
    ));
    reopened.close().await;

    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM monitor_schema_version")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(versions, 5, "each migration runs once");
}

#[tokio::test]
async fn postgres_reconnects_to_its_schema() {
    let Some(url) = postgres_url("postgres_reconnects_to_its_schema") else {
        return;
    };
    let (options, schema) = fresh_schema(&url).await;
    let store = MonitorStore::connect_postgres_with(options.clone())
        .await
        .unwrap();
    assert_eq!(store.backend_name(), "postgres");
    store
        .record_received(&message("keep-1", "RetailSales"))
        .await
        .unwrap();
    store.close().await;
    let again = MonitorStore::connect_postgres_with(options).await.unwrap();
    assert!(matches!(
        again
            .record_received(&message("keep-1", "RetailSales"))
            .await
            .unwrap(),
        Received::Duplicate(_)
    ));
    again.close().await;
    drop_schema(&url, &schema).await;
}
