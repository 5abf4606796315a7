//! Decode + validate and conversion of a RetailSales 2.009 with 20 items and 3 payments, and the
//! steps of the bus's hot path on their own: canonical JSON read and written (the form kept on the
//! log and read again by the route workers), XML written, validation.
//! Run: cargo bench --bench codec

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eaibus::message::{Codec, JsonStyle};
use eaibus::schema::SchemaRegistry;

const SALE_JSON: &str = include_str!("../tests/fixtures/valid/RetailSales_2_009_array.json");

fn codec_benches(c: &mut Criterion) {
    let registry = SchemaRegistry::embedded().expect("schemas load");
    let codec = Codec::new(&registry);
    let (sale, _) = codec
        .decode(SALE_JSON.as_bytes())
        .expect("the fixture decodes");
    registry.validate(&sale).expect("the fixture is valid");
    assert_eq!(
        sale.content["ListOfSaleItem"].as_array().map(Vec::len),
        Some(20)
    );
    assert_eq!(
        sale.content["ListOfSaleCondition"].as_array().map(Vec::len),
        Some(3)
    );
    let protheus_json = codec.to_json(&sale, JsonStyle::Protheus);
    let canonical_json = codec.to_json(&sale, JsonStyle::Canonical);
    let xml = codec.to_xml(&sale);

    let mut group = c.benchmark_group("retail_sales_2_009");
    group.throughput(Throughput::Elements(1));
    group.bench_function("json_decode_validate", |b| {
        b.iter(|| {
            let (m, _) = codec.decode(black_box(protheus_json.as_bytes())).unwrap();
            registry.validate(&m).unwrap();
            m
        })
    });
    group.bench_function("xml_decode_validate", |b| {
        b.iter(|| {
            let (m, _) = codec.decode(black_box(xml.as_bytes())).unwrap();
            registry.validate(&m).unwrap();
            m
        })
    });
    group.bench_function("xml_to_json", |b| {
        b.iter(|| {
            let m = codec.decode_xml(black_box(xml.as_bytes())).unwrap();
            codec.to_json(&m, JsonStyle::Canonical)
        })
    });
    group.bench_function("json_to_xml", |b| {
        b.iter(|| {
            let m = codec
                .decode_json(black_box(protheus_json.as_bytes()))
                .unwrap();
            codec.to_xml(&m)
        })
    });
    group.bench_function("canonical_json_decode", |b| {
        b.iter(|| {
            codec
                .decode_json(black_box(canonical_json.as_bytes()))
                .unwrap()
        })
    });
    group.bench_function("canonical_json_encode", |b| {
        b.iter(|| codec.to_json(black_box(&sale), JsonStyle::Canonical))
    });
    group.bench_function("xml_encode", |b| b.iter(|| codec.to_xml(black_box(&sale))));
    group.bench_function("validate", |b| {
        b.iter(|| registry.validate(black_box(&sale)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
