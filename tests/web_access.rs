//! Access control: every API route against every role and anonymous, with the expected status;
//! sessions, CSRF on cookie writes, the audit trail and LGPD masking per role.

mod web_support;

use reqwest::Method;
use reqwest::header::COOKIE;
use serde_json::{Value, json};
use web_support::{ADMIN, ADMIN_PASSWORD, FormExt, Web};

/// The order every role looks up.
const ORDER: &str = "OMNI-MATRIX-1";

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

/// `revoked`: the id of a token only the admin's turn revokes (the others are refused first).
fn cases(who: Who, revoked: &str) -> Vec<Case> {
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
            Some(json!({"note": format!("resolved by {own}")})),
            Who::Operator,
            200,
        ),
        case(Method::GET, "/api/v1/dashboard", None, Who::Viewer, 200),
        case(Method::GET, "/api/v1/sync-runs", None, Who::Viewer, 200),
        case(
            Method::GET,
            "/api/v1/sync-runs?kind=reprocess&started_by=manual&status=success",
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::GET,
            &format!("/api/v1/orders/{ORDER}"),
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::GET,
            &format!(
                "/api/v1/orders/{}",
                web_support::order_support::protheus_sale_id(ORDER)
            ),
            None,
            Who::Viewer,
            200,
        ),
        case(
            Method::GET,
            "/api/v1/orders/NO-SUCH-ORDER",
            None,
            Who::Viewer,
            404,
        ),
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
        case(Method::GET, "/api/v1/tokens", None, Who::Admin, 200),
        case(
            Method::PUT,
            "/api/v1/users/matrix-target/role",
            Some(json!({"role": "operator"})),
            Who::Admin,
            204,
        ),
        case(
            Method::POST,
            "/api/v1/users/matrix-target/disable",
            None,
            Who::Admin,
            204,
        ),
        case(
            Method::POST,
            "/api/v1/users/matrix-target/enable",
            None,
            Who::Admin,
            204,
        ),
        case(
            Method::DELETE,
            &format!("/api/v1/tokens/{revoked}"),
            None,
            Who::Admin,
            204,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_every_role_as_expected() {
    let web = Web::start().await;
    web.seed_order(ORDER).await;
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
    let target = web.user_with_token(&admin, "matrix-target", "viewer").await;
    let revoked = target
        .strip_prefix("eaib_")
        .and_then(|rest| rest.split('_').next())
        .expect("a token id")
        .to_owned();
    let tokens = [
        (Who::Anonymous, None),
        (Who::Viewer, Some(viewer)),
        (Who::Operator, Some(operator)),
        (Who::Admin, Some(admin)),
    ];
    let mut failures = Vec::new();
    for (who, token) in &tokens {
        for c in cases(*who, &revoked) {
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
    for path in [
        "/",
        "/dashboard",
        "/depara",
        "/audit",
        "/messages/page-msg",
        "/sync-logs",
        "/orders",
        "/orders?id=x",
        "/users",
    ] {
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
    for family in [
        "# TYPE eaibus_delivery_latency_seconds histogram",
        "# TYPE eaibus_ingest_latency_seconds histogram",
        "# TYPE eaibus_end_to_end_latency_seconds histogram",
        "# TYPE eaibus_consumer_lag gauge",
    ] {
        assert!(metrics.contains(family), "{family} is missing");
    }
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
        "/api/v1/orders/{id}",
        "/api/v1/sync-runs",
        "/api/v1/messages/{uuid}/resolve",
        "/api/v1/users/{username}/role",
        "/api/v1/tokens/{id}",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} is missing from the OpenAPI document"
        );
    }
    for schema in [
        "OrderView",
        "SyncRunList",
        "ResolutionView",
        "UserInfo",
        "TokenInfo",
    ] {
        assert!(
            openapi["components"]["schemas"].get(schema).is_some(),
            "the {schema} schema is missing from the OpenAPI document"
        );
    }
}

async fn api_json(web: &Web, token: &str, path: &str) -> Value {
    web.http
        .get(web.at(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_is_kept_shown_filtered_audited_and_lifted_by_a_reprocess() {
    let web = Web::start().await;
    web.seed("resolve-me", "KEY-R1", Web::parked("target down"))
        .await;
    web.seed("resolve-other", "KEY-R2", Web::parked("target down"))
        .await;
    let admin = web.admin_token().await;
    let operator = web.user_with_token(&admin, "res-op", "operator").await;
    let viewer = web.user_with_token(&admin, "res-viewer", "viewer").await;
    let resolve = |token: &str, body: Value| {
        web.http
            .post(web.at("/api/v1/messages/resolve-me/resolve"))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    assert_eq!(
        resolve(&viewer, json!({})).await.unwrap().status(),
        403,
        "viewers do not resolve"
    );
    let refused = resolve(&operator, json!({"note": "a\u{7}b"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "control characters are refused");
    let errors = |d: Value| d["kpis"]["errors_last_24h"].as_i64().unwrap();
    assert_eq!(
        errors(api_json(&web, &viewer, "/api/v1/dashboard").await),
        2
    );
    let done = resolve(
        &operator,
        json!({"note": "combinado com a loja; maria@example.com"}),
    )
    .await
    .unwrap();
    assert_eq!(done.status(), 200);
    let body: Value = done.json().await.unwrap();
    assert_eq!(body["resolved_by"], "res-op");
    assert_eq!(
        errors(api_json(&web, &viewer, "/api/v1/dashboard").await),
        1,
        "a resolved message no longer counts as an error"
    );
    let again = resolve(&operator, json!({})).await.unwrap();
    assert_eq!(again.status(), 409, "resolved once");
    assert!(again.text().await.unwrap().contains("res-op"));

    // In the store, in the list (filterable, note masked for viewers), in the detail.
    let stored = web
        .bus
        .monitor
        .resolution("resolve-me")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.resolved_by, "res-op");
    let only: Value = api_json(&web, &viewer, "/api/v1/messages?q=resolve-&resolved=1").await;
    assert_eq!(only["total"], 1);
    let row = &only["messages"][0];
    assert_eq!(row["uuid"], "resolve-me");
    assert_eq!(row["resolved_by"], "res-op");
    let note = row["resolution_note"].as_str().unwrap();
    assert!(
        note.contains("combinado") && !note.contains("maria@example.com"),
        "{note}"
    );
    let rest: Value = api_json(&web, &viewer, "/api/v1/messages?q=resolve-&resolved=0").await;
    assert_eq!(rest["total"], 1);
    assert_eq!(rest["messages"][0]["uuid"], "resolve-other");
    let bad = web
        .http
        .get(web.at("/api/v1/messages?resolved=maybe"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let html = web
        .http
        .get(web.at("/messages/resolve-me"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"resolved-by\"") && html.contains("res-op"));
    assert!(
        !html.contains("class=\"inline resolve\""),
        "no resolve button on a resolved message"
    );

    // Audited with the note; the reprocess lifts it and says so.
    let audit = api_json(&web, &admin, "/api/v1/audit?action=message.resolve").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"message.resolve"), "{actions:?}");
    assert!(actions.contains(&"message.resolve.refused"), "{actions:?}");
    let r = web
        .http
        .post(web.at("/api/v1/messages/resolve-me/reprocess"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        web.bus
            .monitor
            .resolution("resolve-me")
            .await
            .unwrap()
            .is_none()
    );
    let none: Value = api_json(&web, &viewer, "/api/v1/messages?q=resolve-&resolved=1").await;
    assert_eq!(none["total"], 0);
    let audit = api_json(&web, &admin, "/api/v1/audit?action=message.reprocess").await;
    assert!(
        audit[0]["detail"]
            .as_str()
            .unwrap()
            .contains("lifts the resolution by res-op"),
        "{audit}"
    );
    // A form post resolves too (with the CSRF token).
    let csrf = web.csrf(&session).await;
    let r = web
        .http
        .post(web.at("/messages/resolve-other/resolve"))
        .header(COOKIE, &session)
        .form_pairs(&[("csrf", csrf.as_str()), ("note", "<b>ok</b>")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = web
        .http
        .get(web.at("/?resolved=1"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("resolve-other") && !html.contains("<b>ok</b>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_reprocess_redrive_and_replay_leave_sync_runs() {
    let web = Web::start().await;
    web.seed("bulk-1", "KEY-B1", Web::parked("down")).await;
    web.seed("bulk-2", "KEY-B2", Web::parked("down")).await;
    web.seed("bulk-3", "KEY-B3", None).await;
    let admin = web.admin_token().await;
    let operator = web.user_with_token(&admin, "bulk-op", "operator").await;
    let r = web
        .http
        .post(web.at("/api/v1/messages/reprocess"))
        .bearer_auth(&operator)
        .json(&json!({"uuids": ["bulk-1", "bulk-2", "bulk-3", "bulk-unknown"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let runs = api_json(&web, &operator, "/api/v1/sync-runs?kind=reprocess").await;
    assert_eq!(runs["total"], 1);
    let run = &runs["runs"][0];
    assert_eq!(run["started_by"], "manual");
    assert_eq!(run["actor"], "bulk-op");
    assert_eq!(run["status"], "partial");
    assert_eq!(
        (
            &run["total"],
            &run["succeeded"],
            &run["failed"],
            &run["skipped"]
        ),
        (&json!(4), &json!(2), &json!(1), &json!(1))
    );
    assert!(run["finished_at"].is_i64());

    // The command line's redrive and replay, through the recorder they use.
    let redriven = eaibus::ops::runs::redrive(&web.bus, &eaibus::ops::dlq::Selection::default())
        .await
        .expect("a redrive of an empty DLQ");
    assert!(redriven.is_empty());
    let route = web
        .bus
        .adapter_table()
        .routes()
        .iter()
        .next()
        .map(|r| r.name.clone())
        .expect("a route");
    let topic = web.bus.config.topic("RetailSales");
    web.bus.log.ensure_topic(&topic, 1).await.unwrap();
    let summary = eaibus::ops::runs::replay(
        &web.bus,
        eaibus::order::replay::ReplayRequest {
            topic: topic.clone(),
            from: eaibus::order::replay::ReplayFrom::Offset(0),
            until: None,
            target: eaibus::order::replay::ReplayTarget::Route(route.clone()),
            dry_run: false,
        },
        false,
    )
    .await
    .expect("a replay");
    assert_eq!(summary.records, 0);
    let manual = api_json(&web, &operator, "/api/v1/sync-runs?started_by=manual").await;
    let kinds: Vec<&str> = manual["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["replay", "redrive", "reprocess"], "newest first");
    assert_eq!(
        manual["runs"][0]["scope"],
        format!("{topic} → route {route}")
    );
    assert_eq!(manual["runs"][0]["status"], "success");
    assert!(
        manual["runs"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("cli")
    );

    // The page lists them, in English on request; bad filters are refused.
    let session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let html = web
        .http
        .get(web.at("/sync-logs?lang=en"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("class=\"sync-run\"").count(), 3, "{html}");
    assert!(html.contains("DLQ redrive") && html.contains("Partial"));
    let html = web
        .http
        .get(web.at("/sync-logs?status=partial"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("class=\"sync-run\"").count(), 1);
    assert!(html.contains("Reprocessamento") && html.contains("Parcial"));
    let bad = web
        .http
        .get(web.at("/api/v1/sync-runs?status=done"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_page_finds_an_order_by_any_id() {
    let web = Web::start().await;
    let order = "OMNI-PAGE-1";
    web.seed_order(order).await;
    let session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let get = |path: String| web.http.get(web.at(&path)).header(COOKIE, &session).send();
    let empty = get("/orders".into()).await.unwrap();
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap().contains("id=\"order-search\""));
    for id in [
        order.to_owned(),
        web_support::order_support::protheus_sale_id(order),
        web_support::order_support::protheus_order_id(order, false),
    ] {
        let page = get(format!("/orders?id={}", web_support::encode(&id)))
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "found by {id}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("<code>{order}</code>")),
            "{id}: {html}"
        );
        assert!(html.contains("Pedidos") && html.contains("Situação por fluxo"));
        assert!(html.contains("class=\"flow\""), "a flow line");
        assert!(
            html.contains("class=\"invoice\"")
                && html.contains("31240517745613000150650010000124101201241070")
        );
        assert!(html.contains("id=\"order-history\""));
    }
    let missing = get("/orders?id=NOPE".into()).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("Nenhum pedido com este id.")
    );
    let api: Value = api_json(
        &web,
        &web.admin_token().await,
        &format!("/api/v1/orders/{order}"),
    )
    .await;
    assert_eq!(api["order_id"], order);
    assert_eq!(api["invoices"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_consumer_lag_per_route_group() {
    let web = Web::start().await;
    // The first route with a sending adapter, and one of its topics.
    let table = web.bus.adapter_table();
    let (route, topic) = table
        .routes()
        .iter()
        .find_map(|r| {
            table
                .adapters()
                .iter()
                .find(|a| a.send && a.route == r.name)
                .map(|a| (r.name.clone(), web.bus.config.topic(&a.message)))
        })
        .expect("a route with a sending adapter");
    web.bus.log.ensure_topic(&topic, 1).await.unwrap();
    let records = (0..3)
        .map(|i| eaibus::log::NewRecord::new(&topic, Some("k"), format!("{{\"n\":{i}}}")))
        .collect();
    web.bus.log.append(records).await.unwrap();
    eaibus::telemetry::global().ingest_accepted(
        "metrics-test-adapter",
        "metrics-test-uuid",
        std::time::Duration::from_millis(20),
    );
    let metrics = web
        .http
        .get(web.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let group = eaibus::delivery::group_of(&route);
    let line =
        format!("eaibus_consumer_lag{{route=\"{route}\",group=\"{group}\",topic=\"{topic}\"}} 3");
    assert!(metrics.contains(&line), "{line} missing in\n{metrics}");
    assert!(metrics.contains(
        "eaibus_ingest_latency_seconds_bucket{adapter=\"metrics-test-adapter\",le=\"0.025\"} 1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_tokens_on_the_page_and_the_api() {
    let web = Web::start().await;
    let admin = web.admin_token().await;
    let session = web.login(ADMIN, ADMIN_PASSWORD).await.expect("login");
    let csrf = web.csrf(&session).await;
    let post = |path: &str, pairs: Vec<(&str, String)>| {
        web.http
            .post(web.at(path))
            .header(COOKIE, session.clone())
            .form_pairs(&pairs)
            .send()
    };

    // Create on the page; a taken name, a bad name, a missing CSRF token are refused.
    let new_user = |name: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("username", name.to_owned()),
            ("password", "a-long-password".to_owned()),
            ("role", "viewer".to_owned()),
        ]
    };
    assert_eq!(post("/users", new_user("ana")).await.unwrap().status(), 303);
    assert_eq!(post("/users", new_user("ana")).await.unwrap().status(), 409);
    assert_eq!(post("/users", new_user("a b")).await.unwrap().status(), 400);
    let mut no_csrf = new_user("bia");
    no_csrf[0].1 = String::new();
    assert_eq!(post("/users", no_csrf).await.unwrap().status(), 403);
    let mut bad_role = new_user("bia");
    bad_role[3].1 = "root".into();
    assert_eq!(post("/users", bad_role).await.unwrap().status(), 400);

    // Change the role on the page; a token for her, shown once.
    let r = post(
        "/users/ana/role",
        vec![("csrf", csrf.clone()), ("role", "operator".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let r = post(
        "/tokens",
        vec![
            ("csrf", csrf.clone()),
            ("username", "ana".into()),
            ("name", "painel".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let start = html
        .find("<pre id=\"new-token\">")
        .expect("the token shown")
        + 20;
    let token = html[start..start + html[start..].find('<').unwrap()].to_owned();
    assert!(token.starts_with("eaib_"), "{token}");
    let who: Value = api_json(&web, &token, "/api/v1/session").await;
    assert_eq!(who["role"], "operator");
    let page = web
        .http
        .get(web.at("/users"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-username=\"ana\"") && page.contains("painel"));
    assert!(!page.contains(&token), "the secret is never listed");

    // The API: list, change a role, disable (token refused at once), enable.
    let users = api_json(&web, &admin, "/api/v1/users").await;
    let ana = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ana")
        .unwrap()
        .clone();
    assert_eq!(
        (ana["role"].as_str(), ana["disabled"].as_bool()),
        (Some("operator"), Some(false))
    );
    let put_role = |user: &str, role: &str| {
        web.http
            .put(web.at(&format!("/api/v1/users/{user}/role")))
            .bearer_auth(&admin)
            .json(&json!({ "role": role }))
            .send()
    };
    assert_eq!(put_role("ana", "viewer").await.unwrap().status(), 204);
    assert_eq!(put_role("nobody", "viewer").await.unwrap().status(), 404);
    assert_eq!(
        put_role(ADMIN, "viewer").await.unwrap().status(),
        409,
        "the last admin keeps the role"
    );
    let act = |user: &str, what: &str| {
        web.http
            .post(web.at(&format!("/api/v1/users/{user}/{what}")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(
        act(ADMIN, "disable").await.unwrap().status(),
        409,
        "not yourself"
    );
    assert_eq!(act("ana", "disable").await.unwrap().status(), 204);
    let refused = web
        .http
        .get(web.at("/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "a disabled user's token stops at once"
    );
    assert!(web.login("ana", "a-long-password").await.is_none());
    let listed = api_json(&web, &admin, "/api/v1/users").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "ana" && u["disabled"] == true)
    );
    assert_eq!(act("ana", "enable").await.unwrap().status(), 204);
    assert!(web.login("ana", "a-long-password").await.is_some());

    // Tokens: listed without secrets, revoked on the page, then refused; bad ids refused.
    let tokens = api_json(&web, &admin, "/api/v1/tokens").await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["username"] == "ana")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .expect("ana's token");
    assert!(token.contains(&id) && !tokens.to_string().contains(&token));
    let r = post(
        &format!("/tokens/{id}/revoke"),
        vec![("csrf", csrf.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let refused = web
        .http
        .get(web.at("/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    for (id, status) in [(id.as_str(), 404), ("not-hex", 400)] {
        let r = web
            .http
            .delete(web.at(&format!("/api/v1/tokens/{id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "revoke {id}");
    }

    // Everything is in the audit.
    let audit = api_json(&web, &admin, "/api/v1/audit?limit=500").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "user.create",
        "user.role",
        "user.role.refused",
        "user.disable",
        "user.disable.refused",
        "user.enable",
        "token.create",
        "token.revoke",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} is not audited: {actions:?}"
        );
    }
    let role_change = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.role" && e["detail"] == "operator → viewer");
    assert!(
        role_change.is_some(),
        "the role change says from what to what"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_a_name_or_an_address_but_not_an_admin_out_of_their_own_place() {
    let web = Web::start().await;
    let admin = web.admin_token().await;
    let created = web
        .http
        .post(web.at("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "carla", "password": "right-password", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 204);

    // Five wrong passwords for a name lock it, even with the right one then, with a clear
    // message; nothing is checked while locked.
    for _ in 0..5 {
        let (status, session, _) = web.login_from("carla", "wrong", "10.0.0.5").await;
        assert_eq!((status, session), (401, None));
    }
    let (status, session, page) = web.login_from("carla", "right-password", "10.0.0.6").await;
    assert_eq!((status, session.is_some()), (429, false));
    assert!(
        page.contains("Muitas tentativas de login malsucedidas"),
        "{page}"
    );
    assert!(page.contains("minuto(s)"), "{page}");
    // Other names from that address still get in.
    let (status, session, _) = web.login_from(ADMIN, ADMIN_PASSWORD, "10.0.0.5").await;
    assert_eq!((status, session.is_some()), (303, true));

    // The admin signed in from 10.0.0.1; an attacker elsewhere fails five times with the
    // admin's name: locked for unknown places, not for the admin's.
    let (status, _, _) = web.login_from(ADMIN, ADMIN_PASSWORD, "10.0.0.1").await;
    assert_eq!(status, 303);
    for _ in 0..5 {
        let (status, _, _) = web.login_from(ADMIN, "guess", "10.6.6.6").await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = web.login_from(ADMIN, ADMIN_PASSWORD, "10.6.6.7").await;
    assert_eq!(status, 429);
    let (status, session, _) = web.login_from(ADMIN, ADMIN_PASSWORD, "10.0.0.1").await;
    assert_eq!(
        (status, session.is_some()),
        (303, true),
        "the admin still gets in"
    );

    // Twenty failures from one address lock the address, whatever the names.
    for i in 0..20 {
        let (status, _, _) = web
            .login_from(&format!("someone-{i}"), "x", "10.9.9.9")
            .await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let (status, _, _) = web.login_from(ADMIN, ADMIN_PASSWORD, "10.9.9.9").await;
    assert_eq!(status, 429);

    let audit = api_json(&web, &admin, "/api/v1/audit?action=login.&limit=500").await;
    let entries = audit.as_array().unwrap();
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("login.throttled"), 3);
    assert!(count("login.locked") >= 3, "{audit}");
    assert!(
        entries.iter().any(|e| e["action"] == "login.throttled"
            && e["target"] == "carla"
            && e["detail"].as_str().unwrap().contains("10.0.0.6")),
        "{audit}"
    );
}
