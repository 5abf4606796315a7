//! Message builders: the fixtures of `tests/fixtures/valid/*_wrapper.json` with fresh UUIDs and
//! ids that agree across one flow (customer → reservation → sale → cancellation), plus
//! case-insensitive JSON helpers (the fixtures spell some keys in lower case, as Protheus may).

use serde_json::{Value, json};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/valid");

/// The Protheus ids the fake Protheus hands out (protocol §6.3 formats).
pub const CUSTOMER_DESTINATION: &str = "T1|D MG 01|C00001|01|C";
pub const RESERVE_DESTINATION: &str = "T1|D MG 01|000123|LJ";
pub const SALE_DESTINATION: &str = "T1|D MG 01|1|000123|001";
pub const CANCELLATION_DESTINATION: &str = "T1|D MG 01|1|000123|001";

/// The De/Para seeds every test gets (reference OMNI): products and warehouses the messages
/// below name. Customer, reservation and sale pairs are learned from Responses.
pub const PRODUCTS: [&str; 2] = ["SKU-E2E-1001", "SKU-E2E-1002"];
pub const WAREHOUSE: &str = "CD-E2E-CONTAGEM";

pub fn default_seeds() -> Vec<[String; 4]> {
    vec![
        seed("SB1", "B1_COD", PRODUCTS[0], "T1||PA1001"),
        seed("SB1", "B1_COD", PRODUCTS[1], "T1||PA1002"),
        seed("NNR", "NNR_CODIGO", WAREHOUSE, "T1|D MG 01|01"),
    ]
}

pub fn seed(alias: &str, field: &str, external: &str, internal: &str) -> [String; 4] {
    [
        alias.to_owned(),
        field.to_owned(),
        external.to_owned(),
        internal.to_owned(),
    ]
}

pub fn fresh_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A short random tag for ids and topic names.
pub fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn fixture_text(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sets `key` in an object, replacing a member spelled in any case.
pub fn set_ci(object: &mut Value, key: &str, value: Value) {
    let map = object.as_object_mut().expect("an object");
    let same: Vec<String> = map
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .collect();
    for k in same {
        map.remove(&k);
    }
    map.insert(key.to_owned(), value);
}

/// The value at `path`, each key matched in any case; a number segment indexes an array.
pub fn get_ci<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get(*key).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        }),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

pub fn text_ci(value: &Value, path: &[&str]) -> Option<String> {
    match get_ci(value, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn content(message: &mut Value) -> &mut Value {
    message.get_mut("Content").expect("Content")
}

fn header(message: &mut Value) -> &mut Value {
    message.get_mut("Header").expect("Header")
}

fn renew(mut message: Value, uuid: &str) -> Value {
    set_ci(header(&mut message), "UUID", json!(uuid));
    set_ci(
        header(&mut message),
        "GeneratedOn",
        json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    message
}

/// CustomerVendor 2.005 (sync: its Response teaches the SA1 pair).
pub fn customer_vendor(uuid: &str, customer_id: &str) -> Value {
    let mut m = renew(fixture("CustomerVendor_2_005_wrapper.json"), uuid);
    set_ci(header(&mut m), "DeliveryType", json!("Sync"));
    set_ci(content(&mut m), "InternalId", json!(customer_id));
    m
}

/// ItemReserve 1.002 reserving one unit of each product in the seeded warehouse.
pub fn item_reserve(uuid: &str, reserve_id: &str, products: &[&str]) -> Value {
    let mut m = renew(fixture("ItemReserve_1_002_wrapper.json"), uuid);
    set_ci(header(&mut m), "DeliveryType", json!("Sync"));
    let c = content(&mut m);
    set_ci(c, "InternalId", json!(reserve_id));
    let template = get_ci(c, &["ReserveItemType", "Item", "0"])
        .cloned()
        .expect("a fixture item");
    let items: Vec<Value> = products
        .iter()
        .map(|product| {
            let mut item = template.clone();
            set_ci(&mut item, "ItemInternalId", json!(product));
            set_ci(&mut item, "WarehouseInternalId", json!(WAREHOUSE));
            set_ci(&mut item, "Quantity", json!("1"));
            item
        })
        .collect();
    set_ci(c, "ReserveItemType", json!({ "Item": items }));
    m
}

/// RetailSales 2.009 of one unit of each product, delivered (type 3) from the reservation.
pub fn retail_sale(
    uuid: &str,
    sale_id: &str,
    customer_id: &str,
    reserve_id: &str,
    products: &[&str],
) -> Value {
    let mut m = renew(fixture("RetailSales_2_009_wrapper.json"), uuid);
    let c = content(&mut m);
    set_ci(c, "InternalId", json!(sale_id));
    set_ci(c, "CustomerVendorInternalId", json!(customer_id));
    set_ci(c, "ECommerceOrder", json!(format!("VTX-{sale_id}")));
    let template = get_ci(c, &["ListOfSaleItem", "SaleItem", "0"])
        .cloned()
        .expect("a fixture item");
    let items: Vec<Value> = products
        .iter()
        .enumerate()
        .map(|(i, product)| {
            let mut item = template.clone();
            set_ci(
                &mut item,
                "InternalId",
                json!(format!("{sale_id}-{:02}", i + 1)),
            );
            set_ci(&mut item, "ItemOrder", json!(format!("{:02}", i + 1)));
            set_ci(&mut item, "ItemInternalId", json!(product));
            set_ci(&mut item, "WarehouseInternalId", json!(WAREHOUSE));
            set_ci(&mut item, "ItemReserveInternalId", json!(reserve_id));
            item
        })
        .collect();
    set_ci(c, "ListOfSaleItem", json!({ "SaleItem": items }));
    m
}

/// RetailSalesCancellation 1.002 of a sale (its business key is the sale's id).
pub fn cancellation(uuid: &str, cancel_id: &str, sale_id: &str) -> Value {
    let mut m = renew(fixture("RetailSalesCancellation_1_002_wrapper.json"), uuid);
    let c = content(&mut m);
    set_ci(c, "InternalId", json!(cancel_id));
    set_ci(c, "RetailSalesInternalId", json!(sale_id));
    m
}

/// DocumentTraceabilityOrder 1.001 as Protheus pushes it (SourceApplication PROTHEUS).
pub fn trace_order(
    uuid: &str,
    order_number: &str,
    retail_sales_internal_id: &str,
    customer_internal_id: &str,
) -> Value {
    let mut m = renew(
        fixture("DocumentTraceabilityOrder_1_001_wrapper.json"),
        uuid,
    );
    set_ci(header(&mut m), "SourceApplication", json!("PROTHEUS"));
    let c = content(&mut m);
    set_ci(
        c,
        "InternalId",
        json!(format!("T1|D MG 01|{order_number}|2")),
    );
    set_ci(c, "Number", json!(order_number));
    set_ci(c, "RetailSalesInternalId", json!(retail_sales_internal_id));
    set_ci(c, "CustomerVendorInternalId", json!(customer_internal_id));
    m
}

/// DocumentTraceAbilityOrderRetail 1.001 of a pickup-later orçamento as Protheus pushes it.
pub fn trace_order_retail(
    uuid: &str,
    orcamento_number: &str,
    status: &str,
    retail_sales_internal_id: &str,
) -> Value {
    let mut m = renew(
        fixture("DocumentTraceAbilityOrderRetail_1_001_wrapper.json"),
        uuid,
    );
    set_ci(header(&mut m), "SourceApplication", json!("PROTHEUS"));
    let c = content(&mut m);
    set_ci(
        c,
        "InternalId",
        json!(format!("T1|D MG 01|{orcamento_number}|2")),
    );
    set_ci(c, "Number", json!(orcamento_number));
    set_ci(c, "Status", json!(status));
    set_ci(c, "RetailSalesInternalId", json!(retail_sales_internal_id));
    m
}

/// A small DocumentTraceabilityOrder (no invoice), for load.
pub fn small_trace_order(uuid: &str, order_number: &str) -> Value {
    let mut m = trace_order(uuid, order_number, "T1|D MG 01|1|9|001", "T1|D MG|C1|01|C");
    set_ci(header(&mut m), "SourceApplication", json!("P12"));
    let c = content(&mut m);
    c.as_object_mut()
        .expect("Content")
        .retain(|k, _| !k.eq_ignore_ascii_case("ReturnTraceability"));
    m
}

/// The TOTVSMessage XML of a fixture with its UUID and one id replaced.
pub fn xml_fixture(name: &str, uuid: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = fixture_text(name);
    let start = text.find("<UUID>").expect("a UUID") + "<UUID>".len();
    let end = start + text[start..].find("</UUID>").expect("</UUID>");
    text.replace_range(start..end, uuid);
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    text
}

/// `RECEIVEMESSAGE` with the message in CDATA, as Protheus' SOAP callers send it (a `]]>` of
/// the message's own CDATA sections is split across two sections, as XML requires).
pub fn soap_request_cdata(totvs_message: &str) -> String {
    let totvs_message = totvs_message.replace("]]>", "]]]]><![CDATA[>");
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
<RECEIVEMESSAGE xmlns=\"http://webservices.microsiga.com.br/fweai.apw\"><INMSG><![CDATA[{totvs_message}]]></INMSG>\
</RECEIVEMESSAGE></soapenv:Body></soapenv:Envelope>"
    )
}

/// `RECEIVEMESSAGE` with the message as escaped text.
pub fn soap_request_escaped(totvs_message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
<RECEIVEMESSAGE xmlns=\"http://webservices.microsiga.com.br/fweai.apw\"><INMSG>{}</INMSG>\
</RECEIVEMESSAGE></soapenv:Body></soapenv:Envelope>",
        xml_escape(totvs_message)
    )
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first element named `name` (any namespace prefix, any case), CDATA or
/// escaped text unwrapped. Enough for the envelopes the tests read (no nesting of one name).
pub fn xml_element_text(xml: &str, name: &str) -> Option<String> {
    let lower = xml.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let local = |tag: &str| -> String {
        let first = tag.split_whitespace().next().unwrap_or("");
        first
            .rsplit(':')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned()
    };
    let mut from = 0;
    let (open_end, self_closing) = loop {
        let at = from + lower[from..].find('<')?;
        let tag_end = at + lower[at..].find('>')?;
        let tag = &lower[at + 1..tag_end];
        if !tag.starts_with('/')
            && !tag.starts_with('!')
            && !tag.starts_with('?')
            && local(tag) == name
        {
            break (tag_end + 1, tag.ends_with('/'));
        }
        from = at + 1;
    };
    if self_closing {
        return Some(String::new());
    }
    let mut from = open_end;
    let close = loop {
        let at = from + lower[from..].find("</")?;
        let tag_end = at + lower[at..].find('>')?;
        if local(&lower[at + 2..tag_end]) == name {
            break at;
        }
        from = at + 2;
    };
    let inner = xml[open_end..close].trim();
    if let Some(cdata) = inner
        .strip_prefix("<![CDATA[")
        .and_then(|s| s.strip_suffix("]]>"))
    {
        return Some(cdata.to_owned());
    }
    Some(xml_unescape(inner))
}

/// The `{Name, Origin, Destination}` pairs of a Response's `ReturnContent.ListOfInternalId`, in
/// any of its shapes (list, `{"InternalId": [...]}` wrapper, single object).
pub fn internal_ids(response: &Value) -> Vec<(String, String, String)> {
    let list = get_ci(response, &["Content", "ReturnContent", "ListOfInternalId"]);
    let items: Vec<&Value> = match list {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(map))
            if map.len() == 1 && get_ci(list.unwrap(), &["Origin"]).is_none() =>
        {
            match map.values().next() {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(one) => vec![one],
                None => Vec::new(),
            }
        }
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(|i| {
            (
                text_ci(i, &["Name"]).unwrap_or_default(),
                text_ci(i, &["Origin"]).unwrap_or_default(),
                text_ci(i, &["Destination"]).unwrap_or_default(),
            )
        })
        .collect()
}
