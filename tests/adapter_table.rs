//! Black-box tests of the adapter table: the shipped configuration, load errors with their
//! positions, refusals, send conditions and WhoIs.

use std::path::{Path, PathBuf};

use eaibus::adapter::{
    AdapterTable, ConditionError, LoadErrorKind, LoadErrors, Method, Refusal, RouteKind, WhoIsMode,
};
use eaibus::message::{Field, Header, Message};
use eaibus::schema::SchemaRegistry;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn registry() -> SchemaRegistry {
    SchemaRegistry::embedded().expect("the shipped schemas load")
}

fn shipped() -> AdapterTable {
    match AdapterTable::load(
        &root().join("adapters"),
        &root().join("config/routes.toml"),
        &registry(),
    ) {
        Ok(table) => table,
        Err(errors) => panic!("the shipped adapter table does not load:\n{errors}"),
    }
}

fn header(transaction: &str, version: &str, event: Option<&str>) -> Header {
    let mut header = Header::default();
    header.set(Field::Uuid, "6f1c2c1e-0000-4000-8000-000000000001");
    header.set(Field::Type, "BusinessMessage");
    header.set(
        Field::SubType,
        if event.is_some() { "event" } else { "request" },
    );
    if let Some(event) = event {
        header.set(Field::Event, event);
    }
    header.set(Field::Transaction, transaction);
    header.set(Field::Version, version);
    header.set(Field::SourceApplication, "OMNI");
    header.set(Field::ProductName, "OMNI");
    header
}

#[test]
fn the_shipped_table_loads_with_the_omni_flow() {
    let table = shipped();
    let names: Vec<&str> = table
        .adapters()
        .iter()
        .map(|a| a.message.as_str())
        .collect();
    for message in [
        "CustomerVendor",
        "ItemReserve",
        "RetailSales",
        "RetailSalesCancellation",
        "DocumentTraceabilityOrder",
        "DocumentTraceAbilityOrderRetail",
    ] {
        assert!(
            names.contains(&message),
            "{message} is missing from {names:?}"
        );
    }

    let sale = table
        .receiver(&header("RETAILSALES", "2.009", Some("upsert")))
        .expect("OMNI's RetailSales 2.009 is received");
    assert_eq!(sale.routine, "LOJA701");
    assert_eq!(sale.method, Method::Async);
    assert_eq!(
        (sale.alias.as_str(), sale.depara_field.as_str()),
        ("SL1", "L1_DOC")
    );
    let route = table.route_of(sale).expect("the sale's route exists");
    assert_eq!(route.kind, RouteKind::EaiRest);
    assert_eq!(route.user_env.as_deref(), Some("EAIBUS_PROTHEUS_USER"));

    for sync in ["CustomerVendor", "ItemReserve"] {
        let senders = table.senders(sync);
        assert_eq!(senders.len(), 1, "{sync}");
        assert_eq!(
            senders[0].method,
            Method::Sync,
            "{sync} needs its Response before the sale"
        );
    }
    let trace = table.senders("documenttraceabilityorder");
    assert_eq!(trace.len(), 1);
    let omni = table.route_of(trace[0]).expect("route omni");
    assert_eq!(omni.topic(), Some("omni.order-trace"));
    assert!(table.routes().get("protheus-soap").is_some());
}

#[test]
fn whois_lists_every_enabled_version_with_its_mode() {
    let whois = shipped().whois();
    assert_eq!(whois.len(), 6 + 4 + 3 + 4 + 2 + 2, "{whois:#?}");
    let sale = whois
        .iter()
        .find(|e| e.transaction == "RetailSales" && e.version == "2.009")
        .expect("RetailSales 2.009");
    assert_eq!(sale.mode, WhoIsMode::BothEnabled);
    assert_eq!(sale.mode.to_string(), "BOTH_ENABLED");
    assert!(
        !whois
            .iter()
            .any(|e| e.transaction == "RetailSales" && e.version == "2.007")
    );
}

const ROUTES: &str = r#"
[[route]]
name = "protheus"
product = "PROTHEUS"
application = "PROTHEUS"
kind = "eai-rest"
target = "http://127.0.0.1:8081/totvseai/standardmessage/v1/transactions"

[[route]]
name = "omni"
product = "OMNI"
application = "OMNI"
kind = "kafka"
target = "omni.order-trace"
"#;

/// A valid adapter, one key a line (line numbers matter to the tests below).
const ADAPTER: &str = r#"routine = "LOJA701"
message = "RetailSales"
send = true
receive = true
method = "async"
versions = ["2.009", "2.010"]
alias = "SL1"
depara_field = "L1_DOC"
route = "protheus"
format = "json"
"#;

fn with(replacements: &[(&str, &str)]) -> String {
    replacements
        .iter()
        .fold(ADAPTER.to_owned(), |text, (from, to)| {
            text.replacen(from, to, 1)
        })
}

fn table(adapters: &[(&str, String)]) -> Result<AdapterTable, LoadErrors> {
    let files: Vec<(String, String)> = adapters
        .iter()
        .map(|(name, text)| ((*name).to_owned(), text.clone()))
        .collect();
    AdapterTable::from_sources(("routes.toml", ROUTES), &files, &registry())
}

#[test]
fn a_route_asking_for_order_trace_needs_adapters_that_send_it() {
    let shipped_routes =
        std::fs::read_to_string(root().join("config/routes.toml")).expect("the shipped routes");
    let omni = shipped()
        .routes()
        .get("omni")
        .cloned()
        .expect("the OMNI route");
    assert_eq!(omni.order_trace.as_deref(), Some("1.001"));

    // Only the sales-order adapter sends along the route: the pickup-later one is missing.
    let trace = std::fs::read_to_string(root().join("adapters/document_traceability_order.toml"))
        .expect("the shipped adapter");
    let files = vec![("document_traceability_order.toml".to_owned(), trace)];
    let errors = AdapterTable::from_sources(("routes.toml", &shipped_routes), &files, &registry())
        .expect_err("the pickup-later traceability has no adapter");
    assert_eq!(errors.0.len(), 1, "{errors}");
    let line = shipped_routes
        .lines()
        .position(|l| l.starts_with("order_trace"))
        .expect("order_trace in the shipped routes")
        + 1;
    assert_eq!(errors.0[0].location.line, line, "{errors}");
    let text = errors.0[0].to_string();
    assert!(
        text.contains("route \"omni\"")
            && text.contains("order_trace")
            && text.contains("DocumentTraceAbilityOrderRetail 1.001"),
        "{text}"
    );
}

#[test]
fn every_load_error_is_reported_with_its_file_line_and_column() {
    let config = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<(&str, String)> = vec![
        ("a_first.toml", ADAPTER.to_owned()),
        ("b_syntax.toml", with(&[("alias = \"SL1\"", "alias = ")])),
        (
            "c_unknown_key.toml",
            format!("{ADAPTER}colour = \"red\"\nsize = 3\n"),
        ),
        (
            "d_unknown_route.toml",
            with(&[
                ("route = \"protheus\"", "route = \"nowhere\""),
                ("receive = true", "receive = false"),
            ]),
        ),
        (
            "e_unknown_message.toml",
            with(&[(
                "message = \"RetailSales\"",
                "message = \"NoSuchTransaction\"",
            )]),
        ),
        (
            "f_unknown_version.toml",
            with(&[
                ("\"2.010\"]", "\"9.999\"]"),
                ("send = true", "send = false"),
                ("receive = true", "receive = false"),
            ]),
        ),
        (
            "g_condition.toml",
            format!(
                "{}condition = 'content.SaleType == '\n",
                with(&[
                    ("send = true", "send = false"),
                    ("receive = true", "receive = false")
                ])
            ),
        ),
        ("h_duplicate.toml", with(&[("send = true", "send = false")])),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).expect("write adapter");
    }
    let routes = config.path().join("routes.toml");
    std::fs::write(&routes, ROUTES).expect("write routes");
    let errors = AdapterTable::load(dir.path(), &routes, &registry())
        .expect_err("the broken files are refused");
    let at = |file: &str| dir.path().join(file).display().to_string();

    let found: Vec<(String, usize, usize)> = errors
        .iter()
        .map(|e| (e.location.file.clone(), e.location.line, e.location.column))
        .collect();
    assert_eq!(
        found,
        vec![
            (at("b_syntax.toml"), 7, 9),
            (at("c_unknown_key.toml"), 11, 1),
            (at("c_unknown_key.toml"), 12, 1),
            (at("d_unknown_route.toml"), 9, 9),
            (at("e_unknown_message.toml"), 2, 11),
            (at("f_unknown_version.toml"), 6, 22),
            (at("g_condition.toml"), 11, 13),
            (at("h_duplicate.toml"), 2, 11),
        ],
        "{errors}"
    );
    let kinds: Vec<&LoadErrorKind> = errors.iter().map(|e| &e.kind).collect();
    assert!(matches!(kinds[0], LoadErrorKind::Syntax(_)));
    assert!(matches!(kinds[1], LoadErrorKind::UnknownKey { key, .. } if key == "colour"));
    assert!(
        matches!(kinds[3], LoadErrorKind::UnknownRoute { route, known } if route == "nowhere" && known.len() == 2)
    );
    assert!(matches!(kinds[4], LoadErrorKind::UnknownTransaction { .. }));
    assert!(
        matches!(kinds[5], LoadErrorKind::UnknownVersion { version, known, .. }
        if version == "9.999" && known.iter().any(|v| v == "2.009"))
    );
    assert!(matches!(
        kinds[6],
        LoadErrorKind::Condition(ConditionError::Compile { .. })
    ));
    assert!(matches!(
        kinds[7],
        LoadErrorKind::DuplicateAdapter {
            direction: "receives",
            ..
        }
    ));

    // Each line reads FILE:LINE:COLUMN: sentence.
    let text = errors.to_string();
    assert_eq!(text.lines().count(), 8, "{text}");
    assert!(
        text.contains(&format!("{}:2:11: a second adapter receives RetailSales for every company; the first one is at {}:2:11", at("h_duplicate.toml"), at("a_first.toml"))),
        "{text}"
    );
}

#[test]
fn semantic_problems_of_one_file_are_all_reported() {
    let text = with(&[
        ("format = \"json\"", "format = \"xml\""),
        (
            "versions = [\"2.009\", \"2.010\"]",
            "versions = [\"2.9\", \"2.009\", \"2.009\"]",
        ),
    ]) + "password = \"x\"\n";
    let errors = table(&[("sale.toml", text)]).expect_err("refused");
    // The secret is refused before anything else is read.
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(
        matches!(&errors.0[0].kind, LoadErrorKind::Secret { key, instead } if key == "password" && *instead == "password_env")
    );

    let text = with(&[
        ("format = \"json\"", "format = \"xml\""),
        (
            "versions = [\"2.009\", \"2.010\"]",
            "versions = [\"2.9\", \"2.009\", \"2.009\"]",
        ),
        ("method = \"async\"", "method = \"sync\""),
        ("route = \"protheus\"", "route = \"omni\""),
    ]) + "[[mapping]]\npath = \"ListOfSaleItem/*/ItemInternalId\"\nalias = \"SB1\"\nfield = \"B1_COD\"\n";
    let errors = table(&[("sale.toml", text)]).expect_err("refused");
    let lines: Vec<usize> = errors.iter().map(|e| e.location.line).collect();
    // 2.9 is no version, 2.009 is listed twice, sync cannot go to a topic, the path is no pointer.
    assert_eq!(lines, vec![6, 6, 9, 12], "{errors}");
    assert!(
        errors
            .to_string()
            .contains("method sync needs a route that answers"),
        "{errors}"
    );
}

#[test]
fn the_receiver_refuses_with_a_clear_sentence() {
    let table = shipped();
    let refusal = table
        .receiver(&header("SalesOrder", "1.000", Some("upsert")))
        .expect_err("no adapter");
    assert_eq!(
        refusal,
        Refusal::NoAdapter {
            transaction: "SALESORDER".into()
        }
    );
    assert_eq!(refusal.to_string(), "No adapter receives SALESORDER.");

    let refusal = table
        .receiver(&header("retailsales", "2.007", Some("upsert")))
        .expect_err("version");
    assert_eq!(
        refusal.to_string(),
        "RetailSales version 2.007 is not enabled; the enabled versions are 2.008, 2.009, 2.010."
    );

    let mut no_transaction = header("", "1.000", None);
    no_transaction.remove(Field::Transaction);
    assert_eq!(table.receiver(&no_transaction), Err(Refusal::NoTransaction));

    let scoped =
        |extra: &str| with(&[("format = \"json\"", &format!("format = \"json\"\n{extra}"))]);
    let custom = table_of(&[
        ("upserts.toml", scoped("operation = \"upsert\"")),
        (
            "cancel.toml",
            with(&[
                (
                    "message = \"RetailSales\"",
                    "message = \"RetailSalesCancellation\"",
                ),
                (
                    "versions = [\"2.009\", \"2.010\"]",
                    "versions = [\"2.000\"]",
                ),
                ("receive = true", "receive = false"),
            ]),
        ),
        (
            "trace.toml",
            with(&[
                (
                    "message = \"RetailSales\"",
                    "message = \"DocumentTraceabilityOrder\"",
                ),
                (
                    "versions = [\"2.009\", \"2.010\"]",
                    "versions = [\"1.000\"]",
                ),
                ("route = \"protheus\"", "route = \"omni\""),
            ])
            .replace(
                "format = \"json\"",
                "format = \"json\"\ncompany = \"T1\"\nbranch = \"D MG 01\"",
            ),
        ),
    ]);
    let refusal = custom
        .receiver(&header("RETAILSALES", "2.009", Some("delete")))
        .expect_err("operation");
    assert!(matches!(refusal, Refusal::OperationNotEnabled { .. }));
    assert_eq!(
        refusal.to_string(),
        "The operation delete is not enabled for RetailSales: the adapter upserts handles only operation upsert."
    );
    assert!(
        custom
            .receiver(&header("RETAILSALES", "2.009", None))
            .is_ok(),
        "a request is no delete"
    );

    let refusal = custom
        .receiver(&header("RetailSalesCancellation", "2.000", Some("upsert")))
        .expect_err("receive disabled");
    assert_eq!(
        refusal.to_string(),
        "The adapter cancel (LOJA701) has receive disabled for RetailSalesCancellation."
    );

    let mut other_branch = header("DocumentTraceabilityOrder", "1.000", Some("upsert"));
    other_branch.set(Field::CompanyId, "T1");
    other_branch.set(Field::BranchId, "D MG 02");
    let refusal = custom.receiver(&other_branch).expect_err("branch");
    assert_eq!(
        refusal.to_string(),
        "No adapter receives DOCUMENTTRACEABILITYORDER for company \"T1\" branch \"D MG 02\"."
    );
    let mut padded = other_branch.clone();
    padded.set(Field::BranchId, "D MG 01 ");
    assert!(
        custom.receiver(&padded).is_ok(),
        "Protheus pads branch codes"
    );
}

fn table_of(adapters: &[(&str, String)]) -> AdapterTable {
    match table(adapters) {
        Ok(table) => table,
        Err(errors) => panic!("{errors}"),
    }
}

#[test]
fn the_most_specific_company_scope_decides() {
    let general = ADAPTER.to_owned();
    let for_t1 = with(&[(
        "versions = [\"2.009\", \"2.010\"]",
        "versions = [\"2.010\"]",
    )])
    .replace("format = \"json\"", "format = \"json\"\ncompany = \"T1\"");
    let table = table_of(&[("general.toml", general), ("t1.toml", for_t1)]);
    let mut h = header("RetailSales", "2.009", Some("upsert"));
    assert_eq!(table.receiver(&h).map(|a| a.name.as_str()), Ok("general"));
    h.set(Field::CompanyId, "t1");
    let refusal = table.receiver(&h).expect_err("T1 enables 2.010 only");
    assert!(
        matches!(&refusal, Refusal::VersionNotEnabled { enabled, .. } if enabled == &["2.010"])
    );
    h.set(Field::Version, "2.010");
    assert_eq!(table.receiver(&h).map(|a| a.name.as_str()), Ok("t1"));
    assert_eq!(table.senders_for(&h).len(), 2);
}

fn sale(content: Value) -> Message {
    Message {
        header: header("RETAILSALES", "2.009", Some("upsert")),
        content,
    }
}

#[test]
fn send_conditions_decide_or_fail_naming_the_expression() {
    let table = shipped();
    let adapter = table.senders("RetailSales")[0];
    assert_eq!(
        adapter.should_send(&sale(json!({"SaleType": "V"}))),
        Ok(true)
    );
    assert_eq!(
        adapter.should_send(&sale(json!({"SaleType": "S"}))),
        Ok(true)
    );
    assert_eq!(
        adapter.should_send(&sale(json!({"SaleType": "D"}))),
        Ok(false)
    );
    assert_eq!(
        adapter.should_send(&sale(json!({}))),
        Ok(true),
        "absent means V"
    );

    let strict = table_of(&[(
        "strict.toml",
        format!(
            "{ADAPTER}condition = 'content.SaleType == \"V\" && header.ProductName == \"OMNI\"'\n"
        ),
    )]);
    let adapter = &strict.adapters()[0];
    assert_eq!(
        adapter.should_send(&sale(json!({"SaleType": "V"}))),
        Ok(true)
    );
    let error = adapter
        .should_send(&sale(json!({"TotalPrice": 10})))
        .expect_err("no SaleType");
    assert!(matches!(error, ConditionError::Evaluation { .. }));
    assert!(
        error
            .to_string()
            .contains(r#"content.SaleType == "V" && header.ProductName == "OMNI""#),
        "{error}"
    );

    let not_bool = table_of(&[(
        "text.toml",
        format!("{ADAPTER}condition = 'content.SaleType'\n"),
    )]);
    let error = not_bool.adapters()[0]
        .should_send(&sale(json!({"SaleType": "V"})))
        .expect_err("not a boolean");
    assert!(
        matches!(error, ConditionError::NotBoolean { .. }),
        "{error}"
    );
}

#[test]
fn a_missing_directory_or_routes_file_is_reported() {
    let errors = AdapterTable::load(
        Path::new("/nonexistent/adapters"),
        Path::new("/nonexistent/routes.toml"),
        &registry(),
    )
    .expect_err("nothing to read");
    assert_eq!(errors.len(), 2, "{errors}");
    assert!(
        errors
            .iter()
            .all(|e| matches!(e.kind, LoadErrorKind::Io(_)))
    );
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/routes.toml: cannot read the file"),
        "{errors}"
    );
}
