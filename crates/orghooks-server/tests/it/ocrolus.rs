//! Coming from Ocrolus: the documented request and response examples of
//! Ocrolus's auth, org-level and account-level webhook specs
//! (`tests/ocrolus/examples.json`), replayed against orghooks and compared
//! field by field; the account-level API end to end with a real receiver;
//! and the beta event types Ocrolus documents beyond the seed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Tenant, assert_error, spawn_app, spawn_delivering};
use crate::receiver::{Behavior, TestReceiver};

const WAIT: Duration = Duration::from_secs(30);
const SETTINGS: &str = "/v1/account/settings";
const BOOK: &str = "1e03d9cd-7d84-4672-bc3d-c19cd19c500b";

/// Whether `got` has every field of `want`, equal, or matching a
/// placeholder (`{uuid}`, `{string}`, `{starts:…}`); answers the first
/// difference's path.
fn differs(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::String(w), _) if w == "{uuid}" => got
            .as_str()
            .filter(|s| uuid::Uuid::parse_str(s).is_ok())
            .is_none()
            .then(|| format!("{path}: {got} is not a uuid")),
        (Value::String(w), _) if w == "{string}" => {
            (!got.is_string()).then(|| format!("{path}: {got} is not a string"))
        }
        (Value::String(w), _) if w.starts_with("{starts:") => {
            let prefix = &w["{starts:".len()..w.len() - 1];
            (!got.as_str().is_some_and(|s| s.starts_with(prefix)))
                .then(|| format!("{path}: {got} does not start with {prefix:?}"))
        }
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, v)| match g.get(k) {
            Some(gv) => differs(v, gv, &format!("{path}.{k}")),
            None => Some(format!("{path}.{k}: missing")),
        }),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (wv, gv))| differs(wv, gv, &format!("{path}[{i}]"))),
        _ => (want != got).then(|| format!("{path}: want {want}, got {got}")),
    }
}

fn examples() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocrolus/examples.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["examples"]
        .as_array()
        .unwrap()
        .clone()
}

/// Fills `{client_id}` and `{client_secret}` in a token request.
fn with_credentials(request: &Value, t: &Tenant) -> Value {
    let mut request = request.clone();
    for (key, value) in [
        ("client_id", &t.client_id),
        ("client_secret", &t.client_secret),
    ] {
        if request[key] == format!("{{{key}}}") {
            request[key] = value.as_str().into();
        }
    }
    request
}

#[tokio::test]
async fn every_documented_example_replays_field_by_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut webhook = String::new();
    let mut checked = 0;
    for example in examples() {
        let source = example["source"].as_str().unwrap();
        let request = &example["request"];
        let hook = |suffix: &str| format!("{SETTINGS}/webhook/{webhook}{suffix}");
        let got = match example["op"].as_str().unwrap() {
            "token" => {
                app.call(
                    Method::POST,
                    "/oauth/token",
                    None,
                    Some(with_credentials(request, &t)),
                )
                .await
            }
            "add" => {
                app.post(&format!("{SETTINGS}/webhook"), &t.token, request.clone())
                    .await
            }
            "add_twice" => {
                app.post(&format!("{SETTINGS}/webhook"), &t.token, request.clone())
                    .await;
                app.post(&format!("{SETTINGS}/webhook"), &t.token, request.clone())
                    .await
            }
            "list" => app.get(&format!("{SETTINGS}/webhooks"), &t.token).await,
            "get" => app.get(&hook(""), &t.token).await,
            "get_missing" => {
                let missing = uuid::Uuid::new_v4();
                app.get(&format!("{SETTINGS}/webhook/{missing}"), &t.token)
                    .await
            }
            "events" => app.get(&hook("/events"), &t.token).await,
            "test" => {
                let event_uuid = app.get(&hook("/events"), &t.token).await.1["response"]["events"]
                    [0]["uuid"]
                    .clone();
                app.post(&hook("/test"), &t.token, json!({"event_uuid": event_uuid}))
                    .await
            }
            "rotate" => {
                app.post(&hook("/rotate-secret"), &t.token, request.clone())
                    .await
            }
            "update" => app.post(&hook("/update"), &t.token, request.clone()).await,
            "delete" => {
                app.call(Method::DELETE, &hook("/delete"), Some(&t.token), None)
                    .await
            }
            "configure" => {
                app.post(
                    &format!("{SETTINGS}/update/webhook_endpoint"),
                    &t.token,
                    request.clone(),
                )
                .await
            }
            "details" => {
                app.get(&format!("{SETTINGS}/webhook_details"), &t.token)
                    .await
            }
            "account_rotate" => {
                app.post(
                    &format!("{SETTINGS}/webhook/rotate-secret"),
                    &t.token,
                    request.clone(),
                )
                .await
            }
            other => panic!("{source}: no op {other}"),
        };
        assert_eq!(
            got.0.as_u16(),
            example["status"].as_u64().unwrap() as u16,
            "{source}: {}",
            got.1
        );
        if let Some(difference) = differs(&example["response"], &got.1, "") {
            panic!("{source}: {difference}\nfull answer: {}", got.1);
        }
        if example["op"] == "add" && got.0 == StatusCode::OK {
            webhook = got.1["response"]["uuid"].as_str().unwrap().to_owned();
        }
        checked += 1;
    }
    assert_eq!(checked, 22, "every example in the file was replayed");
}

/// Ocrolus's account-level test sends `{"status":"VERIFICATION_COMPLETE",
/// "uploaded_doc_pk":0,"book_pk":0}` and tells what the endpoint answered.
#[tokio::test]
async fn the_account_level_api_registers_tests_and_delivers_only_its_accounts_events() {
    let app = spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let colleague = app.account(t.org, orghooks_store::Role::Manager).await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let theirs = TestReceiver::start(Behavior::Status(200)).await;
    let configure = format!("{SETTINGS}/update/webhook_endpoint");

    // Multipart, as Ocrolus documents the call, with the event field repeated.
    let form = reqwest::multipart::Form::new()
        .text("webhook_endpoint", receiver.url("/mine"))
        .text("event", "BOOK_VERIFIED")
        .text("event", "document.upload_failed");
    let resp = app
        .client
        .post(format!("{}{configure}", app.base))
        .bearer_auth(&t.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["response"],
        json!({"webhook_endpoint": receiver.url("/mine"), "events": ["book.verified", "document.upload_failed"]})
    );
    // A colleague's own registration, to the same receiver, as a URL-encoded form.
    let resp = app
        .client
        .post(format!("{}{configure}", app.base))
        .bearer_auth(&colleague.token)
        .form(&[
            ("webhook_endpoint", theirs.url("/")),
            ("event", "book.verified".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The org admin sees it among the org's webhooks, and cannot widen it.
    let (_, list) = app.get(&format!("{SETTINGS}/webhooks"), &t.token).await;
    let id = list["response"]["webhooks"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, shown) = app.get(&format!("{SETTINGS}/webhook/{id}"), &t.token).await;
    assert_eq!(shown["response"]["owner_account_uuid"], json!(t.account));
    assert_eq!(shown["response"]["account_uuids"], json!([t.account]));
    let widen = app
        .post(
            &format!("{SETTINGS}/webhook/{id}/update"),
            &t.token,
            json!({"webhook": {"account_uuids": []}}),
        )
        .await;
    assert_error(
        &widen,
        400,
        2060,
        "webhook.account_uuids: an account-level webhook hears only the account that registered it",
    );
    // Five org-level webhooks still fit beside them.
    for i in 0..5 {
        app.add_webhook(
            &t.token,
            &format!("https://example.com/{i}"),
            &["book.classified"],
        )
        .await;
    }

    let (status, test) = app
        .get(&format!("{SETTINGS}/test_webhook_endpoint"), &t.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(test["response"]["resp_code"], 200);
    assert_eq!(
        test["response"]["message"],
        "Success calling webhook endpoint"
    );
    let sent = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        sent[0].json(),
        json!({"status": "VERIFICATION_COMPLETE", "uploaded_doc_pk": 0, "book_pk": 0})
    );

    // Each account's webhook hears only that account's books.
    for account in [t.account, colleague.account] {
        let event = json!({"account_uuid": account, "payload": {"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": []}});
        assert_eq!(app.publish(&p, event).await.0, StatusCode::ACCEPTED);
    }
    receiver.wait_for(2, WAIT).await;
    theirs.wait_for(1, WAIT).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        3.0,
    )
    .await;
    assert_eq!(
        (receiver.count(), theirs.count()),
        (2, 1),
        "each account's webhook got its own account's event, once"
    );

    // A failing endpoint is reported as Ocrolus words it.
    receiver.set(Behavior::Status(401));
    let (_, failed) = app
        .get(&format!("{SETTINGS}/test_webhook_endpoint"), &t.token)
        .await;
    assert_eq!(failed["response"]["resp_code"], 401);
    assert!(
        failed["response"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Error: Failed to invoke webhook end point 401 for url: "),
        "{failed}"
    );

    // An empty event list removes the registration.
    let (status, removed) = app
        .post(
            &configure,
            &t.token,
            json!({"webhook_endpoint": receiver.url("/mine"), "event": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let (_, details) = app
        .get(&format!("{SETTINGS}/webhook_details"), &t.token)
        .await;
    assert_eq!(
        details["response"],
        json!({"webhook_endpoint": null, "events": []})
    );
    let missing = app
        .get(&format!("{SETTINGS}/test_webhook_endpoint"), &t.token)
        .await;
    assert_error(&missing, 404, 4004, "Webhook not found");
    let rotate = app
        .post(
            &format!("{SETTINGS}/webhook/rotate-secret"),
            &t.token,
            json!({"secret_key": "sample_secret_1230ab"}),
        )
        .await;
    assert_error(&rotate, 404, 4004, "Webhook not found");
}

#[tokio::test]
async fn account_level_input_errors_name_the_field_and_members_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let member = app.account(t.org, orghooks_store::Role::Member).await;
    let configure = format!("{SETTINGS}/update/webhook_endpoint");
    let cases = [
        (
            json!({"event": ["book.verified"]}),
            "One of the input is invalid: webhook_endpoint: is required",
        ),
        (
            json!({"webhook_endpoint": "ftp://example.com/", "event": ["book.verified"]}),
            "One of the input is invalid: webhook_endpoint: invalid or missing URL scheme",
        ),
        (
            json!({"webhook_endpoint": "https://example.com/", "event": ["NOPE"]}),
            "One of the input is invalid: event: no event named NOPE",
        ),
        (
            json!({"webhook_endpoint": "https://example.com/", "event": ["book.verified"], "upload": "x"}),
            "One of the input is invalid: upload: unknown field",
        ),
        (
            json!({"webhook_endpoint": "https://example.com/", "event": [1]}),
            "One of the input is invalid: event: must hold strings",
        ),
    ];
    for (body, message) in cases {
        let got = app.post(&configure, &t.token, body).await;
        assert_error(&got, 400, 1806, message);
    }
    let refused = app
        .post(
            &configure,
            &member.token,
            json!({"webhook_endpoint": "https://example.com/", "event": ["book.verified"]}),
        )
        .await;
    assert_error(
        &refused,
        403,
        1316,
        "Account does not have required manager permissions",
    );
    let (_, details) = app
        .get(&format!("{SETTINGS}/webhook_details"), &t.token)
        .await;
    assert_eq!(
        details["response"]["webhook_endpoint"],
        Value::Null,
        "nothing was registered"
    );
}

/// With `webhooks.account_level_counts`, account-level webhooks take
/// places of the org's five.
#[tokio::test]
async fn account_level_webhooks_may_count_toward_the_limit() {
    let app = crate::helpers::spawn_with(|c| {
        c.webhooks.max_per_org = 1;
        c.webhooks.account_level_counts = true;
    })
    .await;
    let t = app.tenant().await;
    let (status, _) = app
        .post(
            &format!("{SETTINGS}/update/webhook_endpoint"),
            &t.token,
            json!({"webhook_endpoint": "https://example.com/a", "event": ["book.verified"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let full = app
        .post(
            &format!("{SETTINGS}/webhook"),
            &t.token,
            json!({"webhook": {"url": "https://example.com/b"}, "event_names": ["book.verified"]}),
        )
        .await;
    assert_error(
        &full,
        400,
        2030,
        "An organization can have at most 1 webhooks",
    );
}

/// Documented Ocrolus events outside the seed: beta, the common fields
/// required, any other field free.
#[tokio::test]
async fn beta_event_types_take_subscriptions_and_free_extra_fields() {
    let app = spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let beta = [
        "book.completed",
        "book.income.generated",
        "book.income.updated",
        "mixed_document.rejected",
    ];
    app.add_webhook(&t.token, &receiver.url("/"), &beta).await;
    let (_, catalog) = app
        .get(&format!("{SETTINGS}/webhook_events"), &t.token)
        .await;
    for name in beta {
        let entry = catalog["response"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in the catalog"));
        assert_eq!(entry["beta"], true, "{name}");
    }
    let income = json!({"event_name": "book.income.generated", "book_uuid": BOOK, "income": {"monthly": 4200.5}, "book_pk": "not a number here"});
    let (status, body) = app
        .publish(&p, json!({"account_uuid": t.account, "payload": income}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let missing = app
        .publish(
            &p,
            json!({"account_uuid": t.account, "payload": {"event_name": "book.completed"}}),
        )
        .await;
    assert_error(&missing, 400, 3002, "payload.book_uuid: is required");
    let got = receiver.wait_for(1, WAIT).await;
    let delivered = got[0].json();
    assert_eq!(
        delivered["income"],
        json!({"monthly": 4200.5}),
        "extra fields arrive as sent"
    );
    assert_eq!(
        delivered["severity"], "MODERATE",
        "common fields filled from the catalog"
    );
    assert_eq!(delivered["notification_type"], "STATUS");
}
