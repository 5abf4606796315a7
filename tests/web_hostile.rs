//! Hostile input on every form and query parameter: script injection is escaped, SQL
//! metacharacters are plain data, huge or malformed values are refused with 400 — never a 500,
//! never reflected markup.

mod web_support;

use reqwest::header::COOKIE;
use web_support::{ADMIN, ADMIN_PASSWORD, FormExt, Web};

const SCRIPT: &str = "<script>alert(1)</script>";
/// Markup stored in a message's error (data, not a parameter).
const STORED: &str = "<script>alert(2)</script>";
const SQL: &str = "' OR 1=1; DROP TABLE monitor_messages; --";

fn huge() -> String {
    "x".repeat(100_000)
}

/// Huge for a URL (the HTTP stack refuses URIs over 64 KiB before eaibus sees them).
fn huge_url() -> String {
    "x".repeat(20_000)
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameters_are_escaped_or_refused() {
    let web = Web::start().await;
    web.seed("hostile-1", "KEY-H", Web::parked(STORED)).await;
    let session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let params = [
        "situation",
        "transaction",
        "route",
        "from",
        "to",
        "q",
        "page",
        "page_size",
        "lang",
        "resolved",
    ];
    for base in ["/", "/api/v1/messages"] {
        for param in params {
            for (value, kind) in [
                (SCRIPT.to_owned(), "script"),
                (SQL.to_owned(), "sql"),
                (huge_url(), "huge"),
                ("-1".to_owned(), "negative"),
            ] {
                let url = web.at(&format!("{base}?{param}={}", enc(&value)));
                let r = web
                    .http
                    .get(&url)
                    .header(COOKIE, &session)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                assert!(
                    status == 200 || status == 400,
                    "{base} {param}={kind} → {status}"
                );
                assert!(
                    !body.contains("<script>alert(1)"),
                    "{base} {param}={kind} reflected markup"
                );
                if kind == "huge" && !matches!(param, "lang") {
                    assert_eq!(status, 400, "{base} {param}=huge must be refused");
                }
            }
        }
    }
    // The table is still there and the message still listed.
    let r = web
        .http
        .get(web.at("/api/v1/messages?q=hostile"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["total"], 1);
    // Its error (markup) is escaped in the list and the detail page.
    for path in ["/", "/messages/hostile-1"] {
        let html = web
            .http
            .get(web.at(path))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains("<script>alert(2)"),
            "{path} shows raw markup"
        );
        assert!(
            html.contains("&lt;script&gt;alert(2)"),
            "{path} does not show the escaped text"
        );
    }
    // Paths: markup, SQL and huge ids.
    for id in [SCRIPT.to_owned(), SQL.to_owned(), huge_url()] {
        for prefix in ["/messages/", "/api/v1/messages/"] {
            let r = web
                .http
                .get(web.at(&format!("{prefix}{}", enc(&id))))
                .header(COOKIE, &session)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(
                status == 404 || status == 400 || status == 414,
                "{prefix}… → {status}"
            );
            assert!(!body.contains("<script>alert(1)"));
        }
    }
    // The orders page's id and the sync logs' filters.
    for (path, params) in [
        ("/orders", &["id", "lang"][..]),
        (
            "/sync-logs",
            &["kind", "started_by", "status", "page", "page_size", "lang"][..],
        ),
        (
            "/api/v1/sync-runs",
            &["kind", "started_by", "status", "page", "page_size"][..],
        ),
    ] {
        for param in params {
            for (value, kind) in [
                (SCRIPT.to_owned(), "script"),
                (SQL.to_owned(), "sql"),
                (huge_url(), "huge"),
                ("-1".to_owned(), "negative"),
                ("a\u{1}b".to_owned(), "control"),
            ] {
                let r = web
                    .http
                    .get(web.at(&format!("{path}?{param}={}", enc(&value))))
                    .header(COOKIE, &session)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                assert!(
                    matches!(status, 200 | 400 | 404),
                    "{path} {param}={kind} → {status}"
                );
                assert!(
                    !body.contains("<script>alert(1)"),
                    "{path} {param}={kind} reflected markup"
                );
                if kind == "huge" && *param != "lang" {
                    assert_eq!(status, 400, "{path} {param}=huge must be refused");
                }
            }
        }
    }
    // An order id with markup is looked up as text and not found; one with control characters
    // is refused; the API path alike.
    let r = web
        .http
        .get(web.at(&format!("/orders?id={}", enc(SCRIPT))))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the id is shown escaped"
    );
    for (id, expected) in [
        (SQL.to_owned(), 404),
        (huge_url(), 400),
        ("a\u{1}b".to_owned(), 400),
    ] {
        let r = web
            .http
            .get(web.at(&format!("/api/v1/orders/{}", enc(&id))))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expected, "GET /api/v1/orders/…");
        assert!(!r.text().await.unwrap().contains("<script>alert(1)"));
    }
    // De/Para and audit queries.
    for path in ["/depara", "/api/v1/depara", "/audit", "/api/v1/audit"] {
        for param in [
            "reference",
            "alias",
            "field",
            "text",
            "action",
            "offset",
            "limit",
        ] {
            for value in [SCRIPT.to_owned(), SQL.to_owned(), huge_url()] {
                let r = web
                    .http
                    .get(web.at(&format!("{path}?{param}={}", enc(&value))))
                    .header(COOKIE, &session)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                assert!(status == 200 || status == 400, "{path} {param} → {status}");
                assert!(
                    !body.contains("<script>alert(1)"),
                    "{path} {param} reflected markup"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_escape_or_refuse_hostile_values() {
    let web = Web::start().await;
    let session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let csrf = web.csrf(&session).await;
    // Stored as data, shown escaped.
    let r = web
        .http
        .post(web.at("/depara"))
        .header(COOKIE, &session)
        .form_pairs(&[
            ("csrf", csrf.as_str()),
            ("reference", "OMNI"),
            ("alias", "SA1"),
            ("field", "A1_COD"),
            ("external", SCRIPT),
            ("internal", SQL),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = web
        .http
        .get(web.at("/depara?reference=OMNI"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("DROP TABLE"), "SQL text is kept as data");
    // Huge, empty or control characters: refused.
    for (field, value) in [
        ("external", huge()),
        ("internal", huge()),
        ("alias", String::new()),
        ("external", "a\u{0}b".to_owned()),
    ] {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("reference", "OMNI".into()),
            ("alias", "SA1".into()),
            ("field", "A1_COD".into()),
            ("external", "E1".into()),
            ("internal", "I1".into()),
        ];
        for pair in form.iter_mut() {
            if pair.0 == field {
                pair.1 = value.clone();
            }
        }
        let r = web
            .http
            .post(web.at("/depara"))
            .header(COOKIE, &session)
            .form_pairs(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{field} of {} bytes", value.len());
    }
    // Login with hostile values: refused as a wrong login, never a server error.
    for (user, password) in [
        (SCRIPT.to_owned(), SQL.to_owned()),
        (huge(), huge()),
        (SQL.to_owned(), "x".to_owned()),
    ] {
        let page = web.http.get(web.at("/login")).send().await.unwrap();
        let cookie = web_support::cookies(&page)
            .into_iter()
            .find(|c| c.starts_with("eaibus_login_csrf="))
            .unwrap();
        let html = page.text().await.unwrap();
        let token = web_support::hidden_value(&html, "csrf").unwrap();
        let r = web
            .http
            .post(web.at("/login"))
            .header(COOKIE, cookie)
            .form_pairs(&[
                ("username", user.as_str()),
                ("password", password.as_str()),
                ("csrf", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(status == 401 || status == 413, "hostile login → {status}");
        assert!(!body.contains("<script>alert(1)"));
    }
    // Bulk reprocess with hostile ids: answered per id, escaped.
    let r = web
        .http
        .post(web.at("/messages/reprocess"))
        .header(COOKIE, &session)
        .form_pairs(&[("csrf", csrf.as_str()), ("uuid", SCRIPT), ("uuid", SQL)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"));
    // Resolution notes: markup is kept as data and shown escaped; huge or control characters
    // are refused.
    web.seed("hostile-note", "KEY-N", Web::parked("down")).await;
    for (note, expected) in [
        (huge(), 400),
        ("a\u{0}b".to_owned(), 400),
        (SCRIPT.to_owned(), 303),
    ] {
        let r = web
            .http
            .post(web.at("/messages/hostile-note/resolve"))
            .header(COOKIE, &session)
            .form_pairs(&[("csrf", csrf.as_str()), ("note", note.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            expected,
            "a note of {} bytes",
            note.len()
        );
    }
    let admin_session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let html = web
        .http
        .get(web.at("/messages/hostile-note?reveal=1"))
        .header(COOKIE, &admin_session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The users page: hostile names, roles, token names and ids are refused, never echoed raw.
    for (path, pairs) in [
        (
            "/users".to_owned(),
            vec![
                ("username", SCRIPT.to_owned()),
                ("password", "long-enough-1".into()),
                ("role", "viewer".into()),
            ],
        ),
        (
            "/users".to_owned(),
            vec![
                ("username", "ok-name".into()),
                ("password", "long-enough-1".into()),
                ("role", SQL.to_owned()),
            ],
        ),
        (
            "/users".to_owned(),
            vec![
                ("username", "ok-name".into()),
                ("password", huge()),
                ("role", "viewer".into()),
            ],
        ),
        (
            format!("/users/{}/role", enc(SCRIPT)),
            vec![("role", "viewer".into())],
        ),
        (format!("/users/{}/disable", enc(SQL)), vec![]),
        (format!("/users/{}/enable", enc(&huge_url())), vec![]),
        (
            "/tokens".to_owned(),
            vec![("username", ADMIN.into()), ("name", "a\u{1}b".into())],
        ),
        (
            "/tokens".to_owned(),
            vec![("username", SCRIPT.into()), ("name", "x".into())],
        ),
        (format!("/tokens/{}/revoke", enc(SQL)), vec![]),
    ] {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(pairs);
        let r = web
            .http
            .post(web.at(&path))
            .header(COOKIE, &session)
            .form_pairs(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(
            matches!(status, 400 | 404),
            "POST {} → {status}",
            &path[..path.len().min(60)]
        );
        assert!(!body.contains("<script>alert(1)"));
    }
    // JSON API bodies: wrong types, huge values.
    let admin = web.admin_token().await;
    for body in [
        serde_json::json!({"uuids": "not-a-list"}),
        serde_json::json!({"uuids": vec!["x"; 1000]}),
    ] {
        let r = web
            .http
            .post(web.at("/api/v1/messages/reprocess"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 422),
            "bulk body → {}",
            r.status()
        );
    }
    for body in [
        serde_json::json!({"note": 5}),
        serde_json::json!({"note": "x".repeat(5000)}),
        serde_json::json!({"other": "field"}),
    ] {
        let r = web
            .http
            .post(web.at("/api/v1/messages/hostile-note/resolve"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "resolve body {body}");
    }
    let r = web
        .http
        .post(web.at("/api/v1/users"))
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"username": SCRIPT, "password": "long-enough-1", "role": "admin"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = web
        .http
        .post(web.at("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"username": "ok-user", "password": "long-enough-1", "role": "root"}))
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 422));
}
