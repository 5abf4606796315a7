//! Order projection: rebuild rate over 1,000,000 order events on the embedded log, and the
//! latency of an order query by each kind of id.
//!
//! Run: cargo bench --bench order
//!
//! The log is generated once into `target/order-bench/events-1m-v1.db` and reused (delete the
//! file to generate it again). `ORDER_BENCH_EVENTS` sets another size (its own file).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eaibus::log::EventLog;
use eaibus::log::embedded::EmbeddedLog;
use eaibus::log::kafka::{KafkaConfig, KafkaLog};
use eaibus::order::events::{
    self, CustomerLinked, DeliveryType, InternalIdMapped, Invoice, Kind, OrderEvent,
    ReservationMade, SaleIntegrated, SaleItem, SaleReceived, StatusReported, TraceSource,
};
use eaibus::order::rebuild::{RebuildOptions, rebuild_into};
use eaibus::order::store::OrderStore;
use eaibus::order::{query, rebuild};

/// The allocator of the `eaibus` binary, so the bench measures what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOPIC: &str = "eai.order-events";
const PARTITIONS: i32 = 3;
const T0: i64 = 1_714_600_000_000;

fn target_events() -> u64 {
    // `cargo test --all-targets` runs benches once without `--bench`, as a smoke test: a small
    // log keeps that quick; `cargo bench` measures the full million.
    let measuring = std::env::args().any(|a| a == "--bench");
    std::env::var("ORDER_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1_000_000 } else { 2_000 })
}

fn log_path(events: u64) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let name = if events == 1_000_000 {
        "events-1m-v1.db".to_owned()
    } else {
        format!("events-{events}-v1.db")
    };
    target.join("order-bench").join(name)
}

fn event(id: String, key: &str, at: i64, source: &str, kind: Kind) -> OrderEvent {
    OrderEvent {
        event_id: id,
        order_key: key.to_owned(),
        source_uuid: source.to_owned(),
        source_transaction: String::new(),
        answers_uuid: String::new(),
        occurred_at_ms: at,
        recorded_at_ms: at,
        kind: Some(kind),
    }
}

/// One order's events, as ingest and delivery publish them: 9 for a delivery (Entrega), 8 for a
/// pickup-later, 4 for a take-now sale. One in five deliveries has its first report published
/// before the Response that maps its sale (it waits, then applies).
fn order_events(n: u64) -> Vec<OrderEvent> {
    let id = format!("OMNI-{n:08}");
    let sale_id = format!("T1|01|1|{n:09}|001");
    let at = T0 + i64::try_from(n).unwrap_or(0) * 1_000;
    let kind_of = n % 10;
    let (code, retail) = match kind_of {
        0 => ("2", false),
        1 | 2 => ("1", true),
        _ => ("3", false),
    };
    let uuid = format!("u-{n}");
    let mut out = Vec::with_capacity(9);
    out.push(event(
        format!("{uuid}/SaleReceived/0"),
        &id,
        at,
        &uuid,
        Kind::SaleReceived(SaleReceived {
            sale_id: id.clone(),
            company_id: "T1".into(),
            branch_id: "01".into(),
            customer_id: format!("CLI-{}", n % 5000),
            total_price: 199.9,
            items: vec![SaleItem {
                item_order: "01".into(),
                item_id: "SKU-1".into(),
                quantity: 1.0,
                delivery_type: events::delivery_type(code) as i32,
                delivery_type_code: code.into(),
                reservation_id: if code == "3" {
                    format!("RES-{n}")
                } else {
                    String::new()
                },
                delivery_date: String::new(),
            }],
            ..SaleReceived::default()
        }),
    ));
    out.push(event(
        format!("{uuid}/CustomerLinked/0"),
        &id,
        at,
        &uuid,
        Kind::CustomerLinked(CustomerLinked {
            sale_id: id.clone(),
            customer_id: format!("CLI-{}", n % 5000),
        }),
    ));
    if code == "3" {
        out.push(event(
            format!("{uuid}/ReservationMade/0"),
            &id,
            at,
            &uuid,
            Kind::ReservationMade(ReservationMade {
                sale_id: id.clone(),
                reservation_ids: vec![format!("RES-{n}")],
            }),
        ));
    }
    let report = |k: usize, text: &str, minutes: i64, key: &str| {
        let order_id = if retail {
            format!("T1|01|L{n:06}|2")
        } else {
            format!("T1|01|C{n:06}|2")
        };
        let invoices = if text.eq_ignore_ascii_case("faturado") || text == "Empacotado" {
            vec![Invoice {
                internal_id: format!("T1|01|{n:09}|1|C|01"),
                number: format!("{n:09}"),
                series: "1".into(),
                status_text: if text == "Empacotado" {
                    "Transmitida".into()
                } else {
                    "Não Transmitida".into()
                },
                access_key: if text == "Empacotado" {
                    format!("3124051774561300015065001{n:019}")
                } else {
                    String::new()
                },
                issue_date: "2024-05-02".into(),
                value: 199.9,
                parent_internal_id: order_id.clone(),
            }]
        } else {
            Vec::new()
        };
        let duuid = format!("d-{n}-{k}");
        event(
            format!("{duuid}/StatusReported/0"),
            key,
            at + minutes * 60_000,
            &duuid,
            Kind::StatusReported(StatusReported {
                source: if retail {
                    TraceSource::PickupOrcamento
                } else {
                    TraceSource::SalesOrder
                } as i32,
                order_internal_id: order_id,
                order_number: format!("{n:06}"),
                sale_ref: key.to_owned(),
                status_text: text.to_owned(),
                invoices,
                ..StatusReported::default()
            }),
        )
    };
    let early = code == "3" && n % 5 == 3;
    if early {
        out.push(report(0, "Pedido liberado", 5, &sale_id));
    }
    let ruuid = format!("r-{n}");
    out.push(event(
        format!("{uuid}/response/SaleIntegrated/0"),
        &id,
        at + 60_000,
        &ruuid,
        Kind::SaleIntegrated(SaleIntegrated {
            sale_id: id.clone(),
            protheus_sale_id: sale_id.clone(),
        }),
    ));
    out.push(event(
        format!("{uuid}/response/InternalIdMapped/0"),
        &id,
        at + 60_000,
        &ruuid,
        Kind::InternalIdMapped(InternalIdMapped {
            name: "RETAILSALES".into(),
            origin: id.clone(),
            destination: sale_id.clone(),
            transaction: "RETAILSALES".into(),
        }),
    ));
    match code {
        "3" => {
            if !early {
                out.push(report(0, "Pedido liberado", 5, &id));
            }
            out.push(report(1, "FATURADO", 600, &id));
            out.push(report(2, "Empacotado", 900, &id));
            out.push(report(2, "Empacotado", 900, &id));
        }
        "1" => {
            out.push(report(0, "Aberto", 5, &id));
            out.push(report(1, "Empacotado", 600, &id));
            out.push(report(2, "Entregue", 900, &id));
            out.push(report(2, "Entregue", 900, &id));
        }
        _ => {}
    }
    let _ = DeliveryType::Entrega;
    out
}

/// The embedded log with `events` order events: built once, then reused.
fn prepare_log(rt: &tokio::runtime::Runtime, events: u64) -> PathBuf {
    let path = log_path(events);
    if path.exists() {
        return path;
    }
    let dir = path.parent().expect("a directory").to_path_buf();
    std::fs::create_dir_all(&dir).expect("the bench directory");
    let building = dir.join(format!(
        "{}.building",
        path.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&building);
    let started = Instant::now();
    rt.block_on(async {
        let log = EmbeddedLog::open(&building).await.expect("the log opens");
        log.ensure_topic(TOPIC, PARTITIONS).await.expect("topic");
        let mut written = 0u64;
        let mut n = 0u64;
        let mut batch = Vec::with_capacity(10_000);
        while written < events {
            for e in order_events(n) {
                if written >= events {
                    break;
                }
                batch.push(events::record(TOPIC, &e));
                written += 1;
            }
            n += 1;
            if batch.len() >= 10_000 {
                log.append(std::mem::take(&mut batch))
                    .await
                    .expect("appended");
            }
        }
        if !batch.is_empty() {
            log.append(batch).await.expect("appended");
        }
        // Closing checkpoints the WAL into the main file, so the file alone is the log.
        log.close().await;
    });
    // Whatever SQLite still keeps beside the file travels with it.
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", building.display()));
        if from.exists() {
            std::fs::rename(&from, format!("{}{suffix}", path.display())).expect("the log is kept");
        }
    }
    std::fs::rename(&building, &path).expect("the log is kept");
    eprintln!(
        "order bench: generated {events} events into {} in {:.1?}",
        path.display(),
        started.elapsed()
    );
    path
}

/// With `ORDER_BENCH_KAFKA=<brokers>`: `ORDER_BENCH_KAFKA_EVENTS` (default 100,000) of the same
/// events published to a fresh topic of that broker, then one rebuild from it, printed.
fn kafka_rebuild(rt: &tokio::runtime::Runtime, brokers: &str, work: &std::path::Path) {
    let events: u64 = std::env::var("ORDER_BENCH_KAFKA_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let topic = format!("bench.order-events.{nanos}");
    rt.block_on(async {
        // As the Kafka tests configure it for the local broker.
        let mut config = KafkaConfig::new(brokers);
        for (name, value) in [
            ("fetch.wait.max.ms", "50"),
            ("heartbeat.interval.ms", "250"),
        ] {
            config.properties.insert(name.to_owned(), value.to_owned());
        }
        let log = KafkaLog::connect_with(config).expect("the broker");
        log.ensure_topic(&topic, PARTITIONS).await.expect("topic");
        let started = Instant::now();
        let (mut written, mut n) = (0u64, 0u64);
        let mut batch = Vec::with_capacity(5_000);
        while written < events {
            for e in order_events(n) {
                if written < events {
                    batch.push(events::record(&topic, &e));
                    written += 1;
                }
            }
            n += 1;
            if batch.len() >= 5_000 || written >= events {
                log.append(std::mem::take(&mut batch))
                    .await
                    .expect("appended");
            }
        }
        eprintln!(
            "order bench: published {events} events to {topic} in {:.1?}",
            started.elapsed()
        );
        let location = format!("sqlite://{}", work.join("orders-kafka.db").display());
        let store = OrderStore::open(&location).await.expect("a store");
        let options = RebuildOptions {
            compare_live: false,
            swap: true,
            verify: false,
        };
        let report = rebuild_into(&log, &topic, &store, options, false)
            .await
            .expect("rebuilt from Kafka");
        assert_eq!(report.events, events);
        eprintln!(
            "order bench: Kafka rebuild of {} events: {:.0} events/s total ({:.2?}: read+fold {:.2?}, write {:.2?}); {} orders",
            report.events,
            report.rate(),
            report.total,
            report.read_and_fold,
            report.write,
            report.orders
        );
    });
}

fn order_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let events = target_events();
    let path = prepare_log(&rt, events);
    let log = rt
        .block_on(EmbeddedLog::open(&path))
        .expect("the log opens");

    let work = tempfile::tempdir().expect("a temp dir");
    if let Ok(brokers) = std::env::var("ORDER_BENCH_KAFKA") {
        kafka_rebuild(&rt, &brokers, work.path());
    }
    let fresh_store = |n: usize| {
        let location = format!(
            "sqlite://{}",
            work.path().join(format!("orders-{n}.db")).display()
        );
        rt.block_on(OrderStore::open(&location)).expect("a store")
    };
    let options = RebuildOptions {
        compare_live: false,
        swap: true,
        verify: false,
    };

    // One rebuild outside criterion, for the phase times.
    let store = fresh_store(0);
    let report: rebuild::RebuildReport = rt
        .block_on(rebuild_into(&log, TOPIC, &store, options, false))
        .expect("rebuilt");
    eprintln!(
        "order bench: rebuild of {} events: {:.0} events/s total ({:.2?}: read+fold {:.2?}, write {:.2?}); {} orders, {} history lines, {} pending",
        report.events,
        report.rate(),
        report.total,
        report.read_and_fold,
        report.write,
        report.orders,
        report.history,
        report.pending
    );
    assert_eq!(report.events, events);

    let mut group = c.benchmark_group("order_rebuild");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(events));
    let mut n = 1;
    group.bench_function(format!("rebuild_{events}_events_embedded_sqlite"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let store = fresh_store(n);
                n += 1;
                let started = Instant::now();
                rt.block_on(rebuild_into(&log, TOPIC, &store, options, false))
                    .expect("rebuilt");
                total += started.elapsed();
                rt.block_on(store.close());
            }
            total
        });
    });
    group.finish();

    let mut group = c.benchmark_group("order_query");
    group.throughput(Throughput::Elements(1));
    // The log ends inside the last order (its events are cut at the count), so that one may
    // not have all its ids yet: query the complete ones.
    let orders = u64::try_from(report.orders)
        .unwrap_or(1)
        .saturating_sub(1)
        .max(1);
    let mut k = 0u64;
    let mut next = move || {
        k = (k + 7919) % orders;
        k
    };
    group.bench_function("find_by_omni_id", |b| {
        b.iter(|| {
            let id = format!("OMNI-{:08}", next());
            rt.block_on(query::find(&store, &id))
                .expect("query")
                .expect("found")
        })
    });
    group.bench_function("find_by_protheus_sale_id", |b| {
        b.iter(|| {
            let id = format!("T1|01|1|{:09}|001", next());
            rt.block_on(query::find(&store, &id))
                .expect("query")
                .expect("found")
        })
    });
    group.bench_function("find_by_protheus_order_id", |b| {
        b.iter(|| {
            let n = next();
            let id = if matches!(n % 10, 1 | 2) {
                format!("T1|01|L{n:06}|2")
            } else if n % 10 == 0 {
                format!("OMNI-{n:08}")
            } else {
                format!("T1|01|C{n:06}|2")
            };
            rt.block_on(query::find(&store, &id))
                .expect("query")
                .expect("found")
        })
    });
    group.finish();
}

criterion_group!(benches, order_benches);
criterion_main!(benches);
