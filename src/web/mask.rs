//! LGPD: personal data in payloads (CPF/CNPJ, names, e-mails, phones, addresses) is masked in
//! pages and API answers; an admin may reveal a payload, which is audited. Masking works on the
//! field names of the standard message (JSON keys, XML element names) and on the shape of values
//! (CPF, CNPJ, e-mail and phone patterns anywhere in the text).

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

pub const MASK: &str = "***";

/// Field names (lower case, without separators) whose values are personal data, and parts of
/// names that mark one.
const SENSITIVE_PARTS: &[&str] = &[
    "cpf",
    "cnpj",
    "email",
    "mail",
    "phone",
    "telefone",
    "celular",
    "cellular",
    "fax",
    "address",
    "endereco",
    "street",
    "logradouro",
    "zipcode",
    "cep",
    "neighborhood",
    "bairro",
    "complement",
    "birth",
    "nascimento",
    "governmentalinformation",
    "federalid",
    "rg",
    "inscricao",
    "contact",
    "nome",
];

/// "Name" fields that are not people's: kept.
const NOT_PERSONAL_NAMES: &[&str] = &[
    "transactionname",
    "productname",
    "itemname",
    "companyname",
    "branchname",
    "storename",
    "paymentmethodname",
    "carriername",
    "routename",
    "messagename",
    "sourceapplication",
];

pub fn is_sensitive_field(name: &str) -> bool {
    let key: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if NOT_PERSONAL_NAMES.contains(&key.as_str()) {
        return false;
    }
    if key == "rg" {
        return true;
    }
    key.ends_with("name")
        || key == "name"
        || SENSITIVE_PARTS
            .iter()
            .filter(|p| **p != "rg")
            .any(|part| key.contains(part))
}

fn patterns() -> &'static [Regex] {
    static PATTERNS: OnceLock<Vec<Regex>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // CNPJ 12.345.678/0001-90 or 14 digits
            r"\b\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}\b",
            // CPF 123.456.789-09 or 11 digits
            r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b",
            // e-mail
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
            // phone (11) 98765-4321, +55 11 98765-4321
            r"(\+55\s?)?\(?\b\d{2}\)?\s?9?\d{4}-\d{4}\b",
        ]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect()
    })
}

/// Masks personal-data patterns found anywhere in `text`.
pub fn mask_text(text: &str) -> String {
    let mut out = text.to_owned();
    for pattern in patterns() {
        out = pattern.replace_all(&out, MASK).into_owned();
    }
    out
}

/// Masks a JSON value in place: values under sensitive keys whole, other strings by pattern.
pub fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if is_sensitive_field(key) {
                    mask_all(child);
                } else {
                    mask_json(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::String(s) => *s = mask_text(s),
        _ => {}
    }
}

fn mask_all(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(mask_all),
        Value::Array(items) => items.iter_mut().for_each(mask_all),
        Value::Null => {}
        other => *other = Value::String(MASK.into()),
    }
}

/// Masks an XML text: the content of sensitive elements, then patterns everywhere.
pub fn mask_xml(text: &str) -> String {
    static ELEMENT: OnceLock<Option<Regex>> = OnceLock::new();
    let element = ELEMENT.get_or_init(|| {
        Regex::new(r"<([A-Za-z_][\w.:-]*)(\s[^>]*)?>([^<]*)</([A-Za-z_][\w.:-]*)>").ok()
    });
    let masked = match element {
        Some(re) => re
            .replace_all(text, |c: &regex::Captures<'_>| {
                let open = &c[1];
                let local = open.rsplit(':').next().unwrap_or(open);
                if open == &c[4] && is_sensitive_field(local) && !c[3].trim().is_empty() {
                    format!(
                        "<{open}{}>{MASK}</{open}>",
                        c.get(2).map_or("", |m| m.as_str())
                    )
                } else {
                    c[0].to_owned()
                }
            })
            .into_owned(),
        None => text.to_owned(),
    };
    mask_text(&masked)
}

/// Masks a payload in whatever form it is: JSON, else XML, else plain text.
pub fn mask_payload(text: &str) -> String {
    if let Ok(mut value) = serde_json::from_str::<Value>(text) {
        mask_json(&mut value);
        return serde_json::to_string(&value).unwrap_or_default();
    }
    if text.trim_start().starts_with('<') {
        return mask_xml(text);
    }
    mask_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_personal_data() {
        let mut v: Value = serde_json::json!({
            "Header": {"Transaction": "CustomerVendor", "ProductName": "PROTHEUS"},
            "Content": {"Name": "Maria Silva", "Email": "maria@example.com",
                "GovernmentalInformation": [{"Id": "123.456.789-09", "Name": "CPF"}],
                "Note": "call (11) 98765-4321 or 12345678909", "Code": "C0001",
                "Address": {"Address": "Rua A, 1", "ZIPCode": "01001-000"}}
        });
        mask_json(&mut v);
        let text = v.to_string();
        for secret in [
            "Maria",
            "maria@",
            "123.456",
            "98765",
            "12345678909",
            "Rua A",
            "01001",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("C0001") && text.contains("PROTHEUS"));
        let xml = mask_xml(
            "<Customer><Name>Maria</Name><Code>C1</Code><CPF>12345678909</CPF></Customer>",
        );
        assert_eq!(
            xml,
            "<Customer><Name>***</Name><Code>C1</Code><CPF>***</CPF></Customer>"
        );
    }
}
