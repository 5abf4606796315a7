//! De/Para contract tests: one suite, run on SQLite (a temporary file) and on PostgreSQL (a
//! fresh schema per run) when `EAIBUS_TEST_POSTGRES` holds a URL. Without it the PostgreSQL run
//! is skipped with a note, except under `CI=true`, where it fails.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use eaibus::adapter::depara::{Lookup, SeedError, event_from_text, load_seeds};
use eaibus::adapter::{
    AdapterTable, CompanyMapping, DePara, DeParaKey, DeParaPair, DeParaQuery, DeParaStore,
    MappingError, MappingMode, PageRequest, PostgresDePara, ProtheusBranch, SqliteDePara,
    apply_mappings, learn_from_response,
};
use eaibus::message::{Event, Field, Header, Message, ResponseView};
use eaibus::schema::SchemaRegistry;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs every part of the contract on `store`.
async fn contract<S: DeParaStore>(store: &S) {
    pairs(store).await;
    lookups(store).await;
    listing(store).await;
    learning(store).await;
    seeds(store).await;
    companies(store).await;
    mappings(store).await;
}

async fn pairs<S: DeParaStore>(store: &S) {
    let pair = DeParaPair::new(
        "omni-pairs",
        "sa1",
        "a1_cod",
        "C-1",
        "T1|D MG 01|000001|01|C",
    );
    store.upsert(&pair).await.expect("upsert");
    store.upsert(&pair).await.expect("the same upsert again");
    let all = store
        .search(
            &DeParaQuery {
                reference: Some("OMNI-PAIRS".into()),
                ..Default::default()
            },
            PageRequest::default(),
        )
        .await
        .expect("search");
    assert_eq!(all.total, 1, "an upsert twice is one pair");
    assert_eq!(all.items, vec![pair.clone()]);

    assert_eq!(
        store
            .internal("OMNI-PAIRS", "SA1", "A1_COD", "C-1")
            .await
            .expect("internal")
            .as_deref(),
        Some("T1|D MG 01|000001|01|C")
    );
    assert_eq!(
        store
            .internal("omni-pairs", "sa1", "a1_cod", "C-1  ")
            .await
            .expect("any case, padded")
            .as_deref(),
        Some("T1|D MG 01|000001|01|C")
    );
    assert_eq!(
        store
            .internal("OMNI-PAIRS", "SA1", "A1_COD", "c-1")
            .await
            .expect("values are exact"),
        None
    );
    assert_eq!(
        store
            .external("OMNI-PAIRS", "SA1", "A1_COD", "T1|D MG 01|000001|01|C")
            .await
            .expect("external")
            .as_deref(),
        Some("C-1")
    );

    // A new internal value replaces the old one.
    let moved = DeParaPair::new(
        "OMNI-PAIRS",
        "SA1",
        "A1_COD",
        "C-1",
        "T1|D MG 01|000002|01|C",
    );
    store.upsert(&moved).await.expect("update");
    assert_eq!(
        store
            .internal("OMNI-PAIRS", "SA1", "A1_COD", "C-1")
            .await
            .expect("internal")
            .as_deref(),
        Some("T1|D MG 01|000002|01|C")
    );
    assert_eq!(
        store
            .external("OMNI-PAIRS", "SA1", "A1_COD", "T1|D MG 01|000001|01|C")
            .await
            .expect("old"),
        None
    );

    // Internal values keep their padding (reservation ids, protocol §6.3).
    let reserve = DeParaPair::new(
        "OMNI-PAIRS",
        "SC0",
        "C0_DOCRES",
        "R-9",
        "T1|D MG 01|000009|LJ",
    );
    store.upsert(&reserve).await.expect("upsert");
    assert_eq!(
        store
            .internal("OMNI-PAIRS", "SC0", "C0_DOCRES", "R-9")
            .await
            .expect("internal")
            .as_deref(),
        Some("T1|D MG 01|000009|LJ")
    );

    assert!(
        store
            .remove(&DeParaKey::new("omni-pairs", "sc0", "c0_docres", "R-9"))
            .await
            .expect("remove")
    );
    assert!(
        !store.remove(&reserve.key()).await.expect("remove again"),
        "already gone"
    );
    assert_eq!(
        store
            .internal("OMNI-PAIRS", "SC0", "C0_DOCRES", "R-9")
            .await
            .expect("internal"),
        None
    );

    let empty = DeParaPair::new("OMNI-PAIRS", "SA1", "A1_COD", "C-2", " ");
    let error = store
        .upsert(&empty)
        .await
        .expect_err("an empty internal value");
    assert!(!error.is_retryable(), "{error}");
}

/// Many lookups in one round trip answer each as the single lookups do, in the order asked.
async fn lookups<S: DeParaStore>(store: &S) {
    let pairs = [
        DeParaPair::new("OMNI-LOOKUP", "SA1", "A1_COD", "C-1", "T1|01|000001"),
        DeParaPair::new("OMNI-LOOKUP", "SA1", "A1_COD", "C-2", "T1|01|000002"),
        DeParaPair::new("OMNI-LOOKUP", "SL1", "L1_DOC", "S-1", "T1|01|A|000010|001"),
        DeParaPair::new("OTHER-LOOKUP", "SA1", "A1_COD", "C-1", "T9|01|000001"),
    ];
    store.upsert_all(&pairs).await.expect("upsert");
    let lookup =
        |to_internal: bool, reference: &str, alias: &str, field: &str, value: &str| Lookup {
            to_internal,
            reference: reference.into(),
            alias: alias.into(),
            field: field.into(),
            value: value.into(),
        };
    let asked = vec![
        lookup(true, "omni-lookup", "sa1", "a1_cod", "C-2  "),
        lookup(false, "OMNI-LOOKUP", "SL1", "L1_DOC", "T1|01|A|000010|001"),
        lookup(true, "OMNI-LOOKUP", "SA1", "A1_COD", "C-404"),
        lookup(false, "OMNI-LOOKUP", "SA1", "A1_COD", "T9|01|000001"),
        lookup(true, "OTHER-LOOKUP", "SA1", "A1_COD", "C-1"),
        lookup(true, "OMNI-LOOKUP", "SA1", "A1_COD", "C-1"),
        lookup(true, "OMNI-LOOKUP", "SA1", "A1_COD", "C-1"),
    ];
    let mut one_by_one = Vec::new();
    for l in &asked {
        one_by_one.push(
            if l.to_internal {
                store
                    .internal(&l.reference, &l.alias, &l.field, &l.value)
                    .await
            } else {
                store
                    .external(&l.reference, &l.alias, &l.field, &l.value)
                    .await
            }
            .expect("single lookup"),
        );
    }
    let together = store.lookup_all(&asked).await.expect("lookups");
    assert_eq!(together, one_by_one);
    assert_eq!(
        together,
        vec![
            Some("T1|01|000002".to_owned()),
            Some("S-1".to_owned()),
            None,
            None,
            Some("T9|01|000001".to_owned()),
            Some("T1|01|000001".to_owned()),
            Some("T1|01|000001".to_owned()),
        ]
    );
    assert!(store.lookup_all(&[]).await.expect("none").is_empty());

    // Callers at the same time (grouped into shared statements) each get their own answers.
    let callers = (0..40).map(|i| {
        let mine: Vec<Lookup> = asked
            .iter()
            .cycle()
            .skip(i)
            .take(1 + i % 3)
            .cloned()
            .collect();
        async move { (store.lookup_all(&mine).await.expect("concurrent"), mine) }
    });
    for (answers, mine) in futures_util::future::join_all(callers).await {
        let expected: Vec<Option<String>> = mine
            .iter()
            .map(|l| one_by_one[asked.iter().position(|a| a == l).unwrap()].clone())
            .collect();
        assert_eq!(answers, expected);
    }

    // Values travel inside a JSON array: quotes, backslashes and accents come back as stored.
    let odd = "C-\"quoted\" \\ São Paulo ' ; --";
    let odd_internal = "T1|01|\"ç\"\\";
    store
        .upsert(&DeParaPair::new(
            "OMNI-LOOKUP",
            "SA1",
            "A1_COD",
            odd,
            odd_internal,
        ))
        .await
        .expect("upsert an odd pair");
    let asked_odd = [
        lookup(true, "OMNI-LOOKUP", "SA1", "A1_COD", odd),
        lookup(false, "OMNI-LOOKUP", "SA1", "A1_COD", odd_internal),
    ];
    assert_eq!(
        store.lookup_all(&asked_odd).await.expect("odd lookups"),
        vec![Some(odd_internal.to_owned()), Some(odd.to_owned())]
    );

    // A sale of 300 items with two mapped fields each: more terms than one compound SELECT
    // may hold (500 in SQLite).
    let many: Vec<Lookup> = (0..600).map(|i| asked[i % asked.len()].clone()).collect();
    let answers = store.lookup_all(&many).await.expect("600 lookups");
    let expected: Vec<Option<String>> = (0..600)
        .map(|i| one_by_one[i % asked.len()].clone())
        .collect();
    assert_eq!(answers, expected);
}

async fn listing<S: DeParaStore>(store: &S) {
    let batch: Vec<DeParaPair> = (0..25)
        .map(|i| {
            DeParaPair::new(
                "OMNI-LIST",
                "SB1",
                "B1_COD",
                &format!("SKU-{i:03}"),
                &format!("T1||PA{i:013}"),
            )
        })
        .chain([DeParaPair::new(
            "OMNI-LIST",
            "NNR",
            "NNR_CODIGO",
            "CD_50%",
            "T1|D MG 01|01",
        )])
        .collect();
    store.upsert_all(&batch).await.expect("upsert_all");
    store.upsert_all(&batch).await.expect("upsert_all again");

    let products = DeParaQuery {
        reference: Some("omni-list".into()),
        alias: Some("sb1".into()),
        ..Default::default()
    };
    let first = store
        .search(&products, PageRequest::new(0, 10))
        .await
        .expect("page 1");
    assert_eq!((first.total, first.items.len()), (25, 10));
    assert_eq!(first.items[0].external, "SKU-000");
    let last = store
        .search(&products, PageRequest::new(20, 10))
        .await
        .expect("page 3");
    assert_eq!(last.items.len(), 5);
    assert_eq!(last.items[4].external, "SKU-024");

    let text = |t: &str| DeParaQuery {
        reference: Some("OMNI-LIST".into()),
        text: Some(t.into()),
        ..Default::default()
    };
    let found = store
        .search(&text("sku-01"), PageRequest::default())
        .await
        .expect("text");
    assert_eq!(found.total, 10, "SKU-010 to SKU-019, in any case");
    let found = store
        .search(&text("pa0000000000024"), PageRequest::default())
        .await
        .expect("internal text");
    assert_eq!(found.items[0].external, "SKU-024");
    // LIKE wildcards in the text are literal.
    let found = store
        .search(&text("_50%"), PageRequest::default())
        .await
        .expect("wildcards");
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].alias, "NNR");
}

fn response(content: Value) -> Vec<eaibus::message::InternalIdPair> {
    ResponseView::new(&content).internal_ids()
}

async fn learning<S: DeParaStore>(store: &S) {
    // A list, as CustomerVendor, ItemReserve and RetailSales answer.
    let list = response(json!({
        "ReceivedMessage": {"UUID": "u-1", "Event": "upsert"},
        "ProcessingInformation": {"Status": "OK"},
        "ReturnContent": {"ListOfInternalID": [
            {"Name": "RETAILSALES", "Origin": "OMNI-ORDER-1", "Destination": "T1|D MG 01|1|000123|001"},
            {"Name": "RETAILSALES", "Origin": "", "Destination": "ignored"}
        ]}
    }));
    let learned = learn_from_response(
        store,
        "OMNI-LEARN",
        "SL1",
        "L1_DOC",
        Some(Event::Upsert),
        &list,
    )
    .await
    .expect("learn");
    assert_eq!((learned.upserted, learned.skipped), (1, 1));
    assert_eq!(
        store
            .internal("OMNI-LEARN", "SL1", "L1_DOC", "OMNI-ORDER-1")
            .await
            .expect("learned")
            .as_deref(),
        Some("T1|D MG 01|1|000123|001")
    );
    // Learning the same Response again changes nothing.
    learn_from_response(
        store,
        "OMNI-LEARN",
        "SL1",
        "L1_DOC",
        Some(Event::Upsert),
        &list,
    )
    .await
    .expect("learn again");
    let all = store
        .search(
            &DeParaQuery {
                reference: Some("OMNI-LEARN".into()),
                ..Default::default()
            },
            PageRequest::default(),
        )
        .await
        .expect("search");
    assert_eq!(all.total, 1);

    // An object, as RetailSalesCancellation answers; a request is learned like an upsert.
    let object = response(json!({
        "ReturnContent": {"ListOfInternalID": {"InternalID":
            {"Name": "RETAILSALESCANCELLATION", "Origin": "OMNI-CANCEL-1", "Destination": "T1|D MG 01|1|000123|001"}}}
    }));
    let learned = learn_from_response(store, "OMNI-LEARN", "SLX", "LX_CUPOM", None, &object)
        .await
        .expect("learn object");
    assert_eq!(learned.upserted, 1);
    assert!(
        store
            .internal("OMNI-LEARN", "SLX", "LX_CUPOM", "OMNI-CANCEL-1")
            .await
            .expect("l")
            .is_some()
    );

    // A delete Response removes what its Origins mapped.
    let delete = response(json!({
        "ReceivedMessage": {"UUID": "u-2", "Event": "DELETE"},
        "ReturnContent": {"ListOfInternalId": [{"Name": "RETAILSALES", "Origin": "OMNI-ORDER-1", "Destination": ""}]}
    }));
    let event = event_from_text(Some("DELETE"));
    let learned = learn_from_response(store, "OMNI-LEARN", "SL1", "L1_DOC", event, &delete)
        .await
        .expect("learn delete");
    assert_eq!(learned.removed, 1);
    assert_eq!(
        store
            .internal("OMNI-LEARN", "SL1", "L1_DOC", "OMNI-ORDER-1")
            .await
            .expect("gone"),
        None
    );
}

async fn seeds<S: DeParaStore>(store: &S) {
    let dir = root().join("config/depara");
    let report = load_seeds(store, &dir)
        .await
        .expect("the shipped seeds load");
    assert!(report.pairs >= 10 && report.companies >= 2, "{report:?}");
    let again = load_seeds(store, &dir).await.expect("seeds load twice");
    assert_eq!(again, report);
    let products = store
        .search(
            &DeParaQuery {
                reference: Some("OMNI".into()),
                alias: Some("SB1".into()),
                ..Default::default()
            },
            PageRequest::default(),
        )
        .await
        .expect("seeded products");
    assert!(products.total >= 3);
    assert_eq!(
        store
            .internal("OMNI", "NNR", "NNR_CODIGO", "CD-CONTAGEM")
            .await
            .expect("warehouse")
            .as_deref(),
        Some("T1|D MG 01|01")
    );
    assert_eq!(
        store.company("OMNI", "01", "0001").await.expect("company"),
        Some(ProtheusBranch {
            company: "T1".into(),
            branch: "D MG 01".into()
        })
    );

    // A malformed row is named by file and line, and nothing of that directory is written.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("pairs.csv"),
        "reference,alias,field,external,internal\nSEED-BAD,SB1,B1_COD,A,T1||A\nSEED-BAD,SB1,B1_COD,B\n",
    )
    .expect("write");
    let error = load_seeds(store, bad.path())
        .await
        .expect_err("a short row");
    let SeedError::Rows(rows) = &error else {
        panic!("{error}")
    };
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].line, 3);
    assert!(error.to_string().contains("pairs.csv:3: "), "{error}");
    assert_eq!(
        store
            .internal("SEED-BAD", "SB1", "B1_COD", "A")
            .await
            .expect("lookup"),
        None
    );
}

async fn companies<S: DeParaStore>(store: &S) {
    let mapping = CompanyMapping::new("omni-co", " 01", "0003 ", "T1", "D MG 03 ");
    store
        .upsert_company(&mapping)
        .await
        .expect("upsert company");
    store
        .upsert_company(&mapping)
        .await
        .expect("upsert company again");
    let expected = ProtheusBranch {
        company: "T1".into(),
        branch: "D MG 03".into(),
    };
    assert_eq!(
        store
            .company("OMNI-CO", "01", "0003")
            .await
            .expect("company"),
        Some(expected.clone())
    );
    assert_eq!(
        store
            .company("OMNI-CO", "01 ", " 0003")
            .await
            .expect("trimmed"),
        Some(expected)
    );
    assert_eq!(
        store
            .company("OMNI-CO", "01", "0004")
            .await
            .expect("unknown"),
        None
    );

    store
        .upsert_company(&CompanyMapping::new(
            "OMNI-CO", "01", "0003", "T2", "D SP 01",
        ))
        .await
        .expect("remap");
    assert_eq!(
        store
            .company("OMNI-CO", "01", "0003")
            .await
            .expect("company")
            .map(|p| p.company),
        Some("T2".to_owned())
    );
    store
        .upsert_companies(&[CompanyMapping::new("OMNI-CO", "02", "", "T3", "")])
        .await
        .expect("company without branch");
    let page = store
        .companies(Some("omni-co"), PageRequest::new(0, 1))
        .await
        .expect("list");
    assert_eq!((page.total, page.items.len()), (2, 1));
    assert_eq!(page.items[0].company, "01");
    assert!(
        store
            .remove_company("OMNI-CO", "01", "0003")
            .await
            .expect("remove")
    );
    assert_eq!(
        store.company("OMNI-CO", "01", "0003").await.expect("gone"),
        None
    );
}

fn registry() -> SchemaRegistry {
    SchemaRegistry::embedded().expect("schemas")
}

fn sale(content: Value) -> Message {
    let mut header = Header::default();
    header.set(Field::Transaction, "RETAILSALES");
    header.set(Field::Version, "2.009");
    header.set(Field::Event, "upsert");
    header.set(Field::ProductName, "OMNI");
    Message { header, content }
}

async fn mappings<S: DeParaStore>(store: &S) {
    let table = match AdapterTable::load(
        &root().join("adapters"),
        &root().join("config/routes.toml"),
        &registry(),
    ) {
        Ok(table) => table,
        Err(errors) => panic!("{errors}"),
    };
    // The shipped RetailSales adapter checks its dependencies and leaves the ids as sent.
    let retail = table.senders("RetailSales")[0];
    store
        .upsert_all(&[
            DeParaPair::new("OMNI", "SA1", "A1_COD", "CUST-1", "T1|D MG 01|000001|01|C"),
            DeParaPair::new("OMNI", "SC0", "C0_DOCRES", "RES-1", "T1|D MG 01|000001|LJ"),
        ])
        .await
        .expect("dependencies");
    let content = json!({
        "InternalId": "OMNI-ORDER-7", "CustomerVendorInternalId": "CUST-1", "SaleType": "V",
        "ListOfSaleItem": [
            {"ItemInternalId": "SKU-7891000100103", "WarehouseInternalId": "CD-CONTAGEM", "ItemReserveInternalId": "RES-1"},
            {"ItemInternalId": "SKU-7891000315507", "Quantity": 1}
        ]
    });
    let mut message = sale(content.clone());
    let found = table
        .apply_mappings(retail, &mut message, store)
        .await
        .expect("all integrated");
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|m| m.mode == MappingMode::Check && m.mapped.is_some())
    );
    assert_eq!(message.content, content, "check mappings change nothing");

    // Missing dependencies: every one is named, nothing is changed, and it is retryable.
    let mut unknown = sale(json!({
        "CustomerVendorInternalId": "CUST-404",
        "ListOfSaleItem": [{"ItemInternalId": "SKU-7891000100103"}, {"ItemInternalId": "SKU-404", "ItemReserveInternalId": "RES-404"}]
    }));
    let before = unknown.content.clone();
    let error = apply_mappings(retail, "OMNI", &mut unknown, store)
        .await
        .expect_err("not integrated");
    assert!(error.is_retryable());
    let MappingError::NotIntegrated { missing } = &error else {
        panic!("{error}")
    };
    let pointers: Vec<&str> = missing.iter().map(|m| m.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        vec![
            "/CustomerVendorInternalId",
            "/ListOfSaleItem/1/ItemInternalId",
            "/ListOfSaleItem/1/ItemReserveInternalId"
        ]
    );
    let text = error.to_string();
    assert!(
        text.contains(
            "\"SKU-404\" at /ListOfSaleItem/1/ItemInternalId has no De/Para OMNI SB1/B1_COD"
        ),
        "{text}"
    );
    assert_eq!(unknown.content, before);

    // A to-internal mapping replaces the counterpart's id with Protheus'; optional ones stay.
    // Without the OMNI route's order_trace, which needs the traceability adapters this table
    // leaves out.
    let routes = std::fs::read_to_string(root().join("config/routes.toml"))
        .expect("routes")
        .replace("order_trace = \"1.001\"\n", "");
    let adapter = r#"routine = "LOJA701"
message = "RetailSales"
send = true
receive = true
method = "async"
versions = ["2.009"]
alias = "SL1"
depara_field = "L1_DOC"
route = "protheus"
format = "json"

[[mapping]]
path = "/ListOfSaleItem/*/WarehouseInternalId"
alias = "NNR"
field = "NNR_CODIGO"
required = true

[[mapping]]
path = "/ListOfSaleCondition/*/PaymentMethodInternalId"
alias = "SX5"
field = "X5_CHAVE"
"#;
    let translate = match AdapterTable::from_sources(
        ("routes.toml", &routes),
        &[("translate.toml".to_owned(), adapter.to_owned())],
        &registry(),
    ) {
        Ok(table) => table,
        Err(errors) => panic!("{errors}"),
    };
    let mut message = sale(json!({
        "ListOfSaleItem": [{"WarehouseInternalId": "LOJA-SAVASSI"}, {"WarehouseInternalId": "CD-CONTAGEM"}],
        "ListOfSaleCondition": [{"PaymentMethodInternalId": "credit_card"}, {"PaymentMethodInternalId": "crypto"}]
    }));
    let found = apply_mappings(&translate.adapters()[0], "omni", &mut message, store)
        .await
        .expect("mapped");
    assert_eq!(found.len(), 4);
    assert_eq!(
        message.content,
        json!({
            "ListOfSaleItem": [{"WarehouseInternalId": "T1|D MG 01|02"}, {"WarehouseInternalId": "T1|D MG 01|01"}],
            "ListOfSaleCondition": [{"PaymentMethodInternalId": "T1|D MG 01|CC"}, {"PaymentMethodInternalId": "crypto"}]
        })
    );
    assert_eq!(
        found[3].mapped, None,
        "an optional mapping without a pair keeps the value"
    );

    // A to-external mapping gives OMNI its own ids back in Protheus' traceability.
    store
        .upsert(&DeParaPair::new(
            "OMNI",
            "SL1",
            "L1_DOC",
            "OMNI-ORDER-7",
            "T1|D MG 01|1|000777|001",
        ))
        .await
        .expect("sale learned");
    let trace = table.senders("DocumentTraceabilityOrder")[0];
    let mut message = sale(json!({
        "InternalId": "T1|D MG 01|000321|2", "Status": "Faturado",
        "RetailSalesInternalId": "T1|D MG 01|1|000777|001",
        "CustomerVendorInternalId": "T1|D MG 01|000001|01|C"
    }));
    // Protheus sends it; the reference of a to-external mapping is the route's product (OMNI).
    message.header.set(Field::ProductName, "PROTHEUS");
    table
        .apply_mappings(trace, &mut message, store)
        .await
        .expect("trace");
    assert_eq!(message.content["RetailSalesInternalId"], "OMNI-ORDER-7");
    assert_eq!(message.content["CustomerVendorInternalId"], "CUST-1");
    assert_eq!(message.content["InternalId"], "T1|D MG 01|000321|2");
}

#[tokio::test]
async fn sqlite_store_passes_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data/depara.db");
    let store = DePara::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    assert!(matches!(store, DePara::Sqlite(_)));
    contract(&store).await;

    // The file keeps what was written, and reopening it is harmless.
    let reopened = SqliteDePara::open(&path).await.expect("reopen");
    assert_eq!(
        reopened
            .internal("OMNI", "NNR", "NNR_CODIGO", "CD-CONTAGEM")
            .await
            .expect("persisted")
            .as_deref(),
        Some("T1|D MG 01|01")
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(reopened.pool())
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
}

/// The PostgreSQL URL to test against, or `None` (with a note) when there is none.
fn postgres_url() -> Option<String> {
    match std::env::var("EAIBUS_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but EAIBUS_TEST_POSTGRES is not set: the PostgreSQL De/Para contract cannot run"
            )
        }
        _ => {
            println!(
                "note: EAIBUS_TEST_POSTGRES is not set; skipping the PostgreSQL De/Para contract"
            );
            None
        }
    }
}

fn unique_schema(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("eaibus_test_{label}_{}_{nanos}", std::process::id())
}

#[tokio::test]
async fn postgres_store_passes_the_contract() {
    let Some(url) = postgres_url() else { return };
    let schema = unique_schema("depara");
    let store = PostgresDePara::connect_in_schema(&url, &schema)
        .await
        .expect("connect");
    contract(&store).await;

    // A second store in the same schema sees the same data; creating the tables is idempotent.
    let again = PostgresDePara::connect_in_schema(&url, &schema)
        .await
        .expect("connect again");
    assert_eq!(
        again
            .internal("OMNI", "NNR", "NNR_CODIGO", "CD-CONTAGEM")
            .await
            .expect("shared")
            .as_deref(),
        Some("T1|D MG 01|01")
    );
    again.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await
        .expect("drop the test schema");
    store.close().await;
}

#[tokio::test]
async fn postgres_locations_open_the_postgres_store() {
    let Some(url) = postgres_url() else { return };
    // A schema of its own, named in the URL, so the test leaves nothing in `public`.
    let schema = unique_schema("open");
    let owner = PostgresDePara::connect_in_schema(&url, &schema)
        .await
        .expect("create the schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let located = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let store = DePara::open(&located).await.expect("open by URL");
    assert!(matches!(store, DePara::Postgres(_)));
    store
        .upsert(&DeParaPair::new(
            "OMNI", "SB1", "B1_COD", "SKU-1", "T1||PA1",
        ))
        .await
        .expect("upsert");
    assert_eq!(
        owner
            .internal("OMNI", "SB1", "B1_COD", "SKU-1")
            .await
            .expect("same schema")
            .as_deref(),
        Some("T1||PA1")
    );
    assert!(matches!(
        PostgresDePara::connect_in_schema(&url, "Robert'); DROP TABLE x;--").await,
        Err(eaibus::adapter::DeParaError::SchemaName(_))
    ));
    if let DePara::Postgres(store) = store {
        store.close().await;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(owner.pool())
        .await
        .expect("drop the test schema");
    owner.close().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_retryable_error_without_the_password() {
    let error = PostgresDePara::connect("postgres://eai:hunter2@127.0.0.1:1/none")
        .await
        .expect_err("nothing listens on port 1");
    assert!(error.is_retryable(), "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
