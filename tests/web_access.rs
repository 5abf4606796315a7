//! Access control: every API route against every role and anonymous, with the expected status;
//! sessions, CSRF on cookie writes, the audit trail and LGPD masking per role.

mod web_support;

use reqwest::Method;
use reqwest::header::COOKIE;
use serde_json::{Value, json};
use web_support::{ADMIN, ADMIN_PASSWORD, FormExt, Web};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Viewer,
    Operator,
    Admin,
}

/// Who may call the route at least (`Anonymous` = public) and what it answers when allowed.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    least: Who,
    ok: u16,
}

fn case(method: Method, path: &str, body: Option<Value>, least: Who, ok: u16) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body,
        least,
        ok,
    }
}

fn cases(who: Who) -> Vec<Case> {
    // Each role reprocesses and resolves its own message, so a later role does not find the
    // work done already.
    let own = match who {
        Who::Anonymous => "msg-anonymous",
        Who::Viewer => "msg-viewer",
        Who::Operator => "msg-operator",
        Who::Admin => "msg-admin",
    };
    let depara = json!({"reference": "OMNI", "alias": "SA1", "field": "A1_COD",
                        "external": format!("EXT-{own}"), "internal": "000001"});
    vec![
        case(
            Method::GET,
            "/api/v1/openapi.json",
            None,
            Who::Anonymous,
            200,
        ),
        case(Method::GET, "/metrics", None, Who::Anonymous, 200),
        case(Method::GET, "/healthz", None, Who::Anonymous, 200),
        case(Method::GET, "/api/v1/session", None, Who::Viewer, 200),
        case(Method::GET, "/api/v1/messages", None, Who::Viewer, 200),
        case(
            Method::GET,
            "/api/v1/messages?situation=4&q=msg-",
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::GET,
            &format!("/api/v1/messages/{own}"),
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::GET,
            &format!("/api/v1/messages/{own}?reveal=1"),
            None,
            Who::Admin,
            200,
        ),
        case(
            Method::GET,
            &format!("/api/v1/messages/{own}/payload"),
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::GET,
            &format!("/api/v1/messages/{own}/payload?reveal=1&form=canonical"),
            None,
            Who::Admin,
            200,
        ),
        case(
            Method::POST,
            &format!("/api/v1/messages/{own}/reprocess"),
            None,
            Who::Operator,
            200,
        ),
        case(
            Method::POST,
            "/api/v1/messages/reprocess",
            Some(json!({"uuids": [format!("{own}-bulk")]})),
            Who::Operator,
            200,
        ),
        case(
            Method::POST,
            &format!("/api/v1/messages/{own}/resolve"),
            None,
            Who::Operator,
            204,
        ),
        case(Method::GET, "/api/v1/dashboard", None, Who::Viewer, 200),
        case(
            Method::GET,
            "/api/v1/depara?reference=OMNI",
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::PUT,
            "/api/v1/depara",
            Some(depara.clone()),
            Who::Admin,
            204,
        ),
        case(
            Method::DELETE,
            "/api/v1/depara",
            Some(depara),
            Who::Admin,
            204,
        ),
        case(Method::GET, "/api/v1/audit", None, Who::Admin, 200),
        case(Method::POST, "/api/v1/admin/reload", None, Who::Admin, 200),
        case(Method::GET, "/api/v1/users", None, Who::Admin, 200),
        case(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": format!("new-{own}"), "password": "a-long-password", "role": "viewer"}),
            ),
            Who::Admin,
            204,
        ),
        case(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"username": ADMIN, "name": "matrix"})),
            Who::Admin,
            201,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_every_role_as_expected() {
    let web = Web::start().await;
    for own in ["msg-anonymous", "msg-viewer", "msg-operator", "msg-admin"] {
        web.seed(own, &format!("KEY-{own}"), Web::parked("target down"))
            .await;
        web.seed(
            &format!("{own}-bulk"),
            "KEY-bulk",
            Web::parked("target down"),
        )
        .await;
    }
    let admin = web.admin_token().await;
    let viewer = web.user_with_token(&admin, "v1", "viewer").await;
    let operator = web.user_with_token(&admin, "o1", "operator").await;
    let tokens = [
        (Who::Anonymous, None),
        (Who::Viewer, Some(viewer)),
        (Who::Operator, Some(operator)),
        (Who::Admin, Some(admin)),
    ];
    let mut failures = Vec::new();
    for (who, token) in &tokens {
        for c in cases(*who) {
            let mut request = web.http.request(c.method.clone(), web.at(&c.path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &c.body {
                request = request.json(body);
            }
            let status = request.send().await.expect("an answer").status().as_u16();
            let expected = if *who >= c.least {
                c.ok
            } else if *who == Who::Anonymous {
                401
            } else {
                403
            };
            if status != expected {
                failures.push(format!(
                    "{who:?} {} {} → {status}, expected {expected}",
                    c.method, c.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A wrong bearer token is refused, not treated as anonymous.
    let bad = web
        .http
        .get(web.at("/api/v1/messages"))
        .bearer_auth("eaib_0123456789abcdef_nope")
        .send()
        .await
        .expect("an answer");
    assert_eq!(bad.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_writes_need_the_csrf_token() {
    let web = Web::start().await;
    web.seed("page-msg", "KEY-1", Web::parked("down")).await;
    for path in ["/", "/dashboard", "/depara", "/audit", "/messages/page-msg"] {
        let r = web.http.get(web.at(path)).send().await.expect("an answer");
        assert_eq!(
            r.status(),
            303,
            "{path} sends anonymous callers to the login page"
        );
        assert_eq!(r.headers()["location"], "/login");
    }
    assert!(web.login(ADMIN, "wrong-password").await.is_none());
    let session = web
        .login(ADMIN, ADMIN_PASSWORD)
        .await
        .expect("the admin logs in");
    let page = web
        .http
        .get(web.at("/"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("the list");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Identificador") && html.contains("Situação") && html.contains("Recebido em")
    );

    // A form post without the CSRF token, or with a wrong one, is refused.
    for csrf in ["", "0000"] {
        let r = web
            .http
            .post(web.at("/messages/page-msg/reprocess"))
            .header(COOKIE, &session)
            .form_pairs(&[("csrf", csrf)])
            .send()
            .await
            .expect("an answer");
        assert_eq!(r.status(), 403);
    }
    // An API write with a session cookie needs the X-CSRF-Token header.
    let r = web
        .http
        .post(web.at("/api/v1/messages/page-msg/resolve"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 403);
    let csrf = web.csrf(&session).await;
    let r = web
        .http
        .post(web.at("/messages/page-msg/reprocess"))
        .header(COOKIE, &session)
        .form_pairs(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 303);
    let record = web.bus.monitor.get("page-msg").await.unwrap().unwrap();
    assert_eq!(
        record.situation,
        eaibus::monitor::Situation::AguardandoExecucao
    );
    assert_eq!(record.repeated_failures, 1);

    // English on request, remembered in a cookie.
    let en = web
        .http
        .get(web.at("/?lang=en"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("english");
    assert!(
        web_support::cookies(&en)
            .iter()
            .any(|c| c == "eaibus_lang=en")
    );
    let html = en.text().await.unwrap();
    assert!(html.contains("Identifier") && html.contains("Received at"));

    // Login, reprocess and the rejected CSRF attempts are in the audit trail.
    let audit: Value = web
        .http
        .get(web.at("/api/v1/audit"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in ["login", "login.failed", "message.reprocess"] {
        assert!(
            actions.contains(&wanted),
            "{wanted} is not audited: {actions:?}"
        );
    }
    let cookie_flags = web
        .http
        .get(web.at("/login"))
        .send()
        .await
        .unwrap()
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie_flags.contains("HttpOnly") && cookie_flags.contains("SameSite=Strict"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_masked_unless_an_admin_reveals_it() {
    let web = Web::start().await;
    web.seed(
        "lgpd-msg",
        "KEY-L",
        Web::parked("customer maria@example.com refused"),
    )
    .await;
    let admin = web.admin_token().await;
    let viewer = web.user_with_token(&admin, "lgpd-viewer", "viewer").await;
    for token in [&viewer, &admin] {
        let body = web
            .http
            .get(web.at("/api/v1/messages/lgpd-msg"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for secret in ["Maria da Silva", "maria@example.com", "123.456.789-09"] {
            assert!(
                !body.contains(secret),
                "{secret} shown masked-by-default: {body}"
            );
        }
        let export = web
            .http
            .get(web.at("/api/v1/messages/lgpd-msg/payload"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!export.contains("maria@example.com"));
    }
    let denied = web
        .http
        .get(web.at("/api/v1/messages/lgpd-msg?reveal=1"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let revealed = web
        .http
        .get(web.at("/api/v1/messages/lgpd-msg?reveal=1"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(revealed.contains("Maria da Silva"));
    let audit: Value = web
        .http
        .get(web.at("/api/v1/audit?action=message.reveal"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["target"], "lgpd-msg");
    assert_eq!(audit[0]["actor"], ADMIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_refuses_an_invalid_table_and_keeps_the_running_one() {
    // The bus reads the adapters from its configured directory: point it at a copy, break it.
    let web = Web::start().await;
    let admin = web.admin_token().await;
    let ok = web
        .http
        .post(web.at("/api/v1/admin/reload"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let count = body["adapters"].as_u64().unwrap();
    assert!(count > 0);
    std::fs::write(
        web.dir.path().join("adapters/broken.toml"),
        "message = \"RetailSales\"\nnot_a_field = 1\n",
    )
    .unwrap();
    let refused = web
        .http
        .post(web.at("/api/v1/admin/reload"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let reason: Value = refused.json().await.unwrap();
    assert!(
        reason["error"]
            .as_str()
            .unwrap()
            .contains("running one stays"),
        "{reason}"
    );
    assert_eq!(web.bus.adapter_table().adapters().len() as u64, count);
    let metrics = web
        .http
        .get(web.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("# TYPE eaibus_messages_received_total counter"));
    assert!(metrics.contains("# TYPE eaibus_delivery_latency_seconds histogram"));
    let openapi: Value = web
        .http
        .get(web.at("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/messages",
        "/api/v1/messages/{uuid}/reprocess",
        "/api/v1/depara",
        "/api/v1/admin/reload",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} is missing from the OpenAPI document"
        );
    }
}
