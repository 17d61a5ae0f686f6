//! A webhook's own delivery settings (extension fields): custom headers,
//! sent with every delivery, sealed at rest and masked in answers; a retry
//! schedule and a timeout within the operator's bounds.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, book_event, spawn_delivering};
use crate::receiver::{Behavior, TestReceiver};

const ADD: &str = "/v1/account/settings/webhook";

/// The refusal's message, after Ocrolus's opening words.
async fn refused(app: &TestApp, t: &Tenant, path: &str, body: Value) -> String {
    let (status, answer) = app.post(path, &t.token, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], 1003, "{answer}");
    let message = answer["message"].as_str().unwrap();
    message
        .split_once(": ")
        .map_or(message, |(_, rest)| rest)
        .to_owned()
}

#[tokio::test]
async fn custom_headers_go_with_every_delivery_and_their_values_stay_secret() {
    let app = spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let (status, body) = app
        .post(
            ADD,
            &t.token,
            json!({"webhook": {"url": receiver.url("/h"), "headers":
                {"X-Api-Key": "key-123-secret", "Authorization": "Bearer token-456"}},
                "event_names": ["book.verified"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hook = body["response"]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        body["response"]["headers"],
        json!({"Authorization": "****", "X-Api-Key": "****"})
    );
    let stored = app
        .admin_store()
        .get_webhook(t.org, hook.parse().unwrap())
        .await
        .unwrap();
    let sealed = stored.options.headers_sealed.unwrap();
    assert!(
        !sealed.contains("key-123") && !sealed.contains("token-456"),
        "sealed at rest"
    );

    app.publish(&p, book_event(t.account)).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].header("x-api-key"), "key-123-secret");
    assert_eq!(got[0].header("authorization"), "Bearer token-456");

    // `****` keeps a stored value; a header left out is gone.
    let update = format!("/v1/account/settings/webhook/{hook}/update");
    let (status, body) = app
        .post(
            &update,
            &t.token,
            json!({"webhook": {"headers": {"X-Api-Key": "****", "X-Tenant": "acme"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.publish(&p, book_event(t.account)).await;
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(got[1].header("x-api-key"), "key-123-secret");
    assert_eq!(got[1].header("x-tenant"), "acme");
    assert_eq!(got[1].header("authorization"), "");
    let (_, shown) = app
        .get(&format!("/v1/account/settings/webhook/{hook}"), &t.token)
        .await;
    assert_eq!(
        shown["response"]["headers"],
        json!({"X-Api-Key": "****", "X-Tenant": "****"})
    );
    assert!(!shown.to_string().contains("key-123"));

    let add = |headers: Value| {
        json!({"webhook": {"url": "https://receiver.example.com/x", "headers": headers},
               "event_names": ["book.verified"]})
    };
    app.resolver.set("receiver.example.com", &["203.0.113.7"]);
    assert_eq!(
        refused(&app, &t, ADD, add(json!({"Webhook-Signature": "x"}))).await,
        "webhook.headers.Webhook-Signature: orghooks sets this header itself"
    );
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    assert_eq!(
        refused(&app, &t, ADD, add(Value::Object(eleven))).await,
        "webhook.headers: at most 10 headers"
    );
    assert_eq!(
        refused(&app, &t, ADD, add(json!({"X-New": "****"}))).await,
        "webhook.headers.X-New: give its value (**** keeps a value already stored)"
    );
    assert_eq!(
        refused(&app, &t, ADD, add(json!({"Bad Name": "v"}))).await,
        "webhook.headers.Bad Name: not a valid header name"
    );
    assert_eq!(
        refused(&app, &t, ADD, add(json!({"X-A": "line\nbreak"}))).await,
        "webhook.headers.X-A: the value must be visible ASCII text of at most 1024 characters"
    );
    let with_password = json!({"webhook": {"url": "https://u:pw@receiver.example.com/y",
        "headers": {"authorization": "Bearer x"}}, "event_names": ["book.verified"]});
    assert!(
        refused(&app, &t, ADD, with_password)
            .await
            .starts_with("webhook.headers.Authorization: the URL's user:password already sets")
    );
}

#[tokio::test]
async fn retry_gaps_and_timeout_are_the_webhooks_own_within_the_operators_bounds() {
    let app = spawn_delivering(|c| {
        c.webhooks.min_retry_gap_ms = 10;
        c.webhooks.max_retries = 3;
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let failing = TestReceiver::start(Behavior::Status(500)).await;
    let slow = TestReceiver::start(Behavior::Slow {
        status: 200,
        pause: Duration::from_millis(1_500),
    })
    .await;
    let (_, body) = app
        .post(
            ADD,
            &t.token,
            json!({"webhook": {"url": failing.url("/f"), "retry_gaps_ms": [10]},
                   "event_names": ["book.verified"]}),
        )
        .await;
    let once_more = body["response"]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(body["response"]["retry_gaps_ms"], json!([10]));
    assert_eq!(body["response"]["timeout_ms"], 2000, "the node's");
    let (_, body) = app
        .post(
            ADD,
            &t.token,
            json!({"webhook": {"url": slow.url("/s"), "timeout_ms": 1000},
                   "event_names": ["book.verified"]}),
        )
        .await;
    let impatient = body["response"]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        body["response"]["retry_gaps_ms"],
        json!([20, 40, 60]),
        "the node's"
    );

    app.publish(&p, book_event(t.account)).await;
    let log = |hook: &str| format!("/v1/account/settings/webhook/{hook}/deliveries");
    let failed = app
        .wait_until(&log(&once_more), &t.token, |b| {
            b["response"]["deliveries"][0]["status"] == "failed"
        })
        .await;
    assert_eq!(
        failed["response"]["deliveries"][0]["attempts"], 2,
        "two attempts: one gap"
    );
    assert_eq!(failing.count(), 2);
    let detail = app.first_attempted(&t.token, &impatient).await;
    assert_eq!(
        detail["response"]["attempt_log"][0]["error"], "timed out after 1 s",
        "its own 1 s, not the node's 2 s"
    );

    // null: back to the node's; out of bounds: refused, naming the field.
    let update = format!("/v1/account/settings/webhook/{once_more}/update");
    let (status, body) = app
        .post(
            &update,
            &t.token,
            json!({"webhook": {"retry_gaps_ms": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, shown) = app
        .get(
            &format!("/v1/account/settings/webhook/{once_more}"),
            &t.token,
        )
        .await;
    assert_eq!(shown["response"]["retry_gaps_ms"], json!([20, 40, 60]));
    for (change, message) in [
        (
            json!({"retry_gaps_ms": [5]}),
            "webhook.retry_gaps_ms: 5 is not from 10 to 86400000 ms",
        ),
        (
            json!({"retry_gaps_ms": [10, 10, 10, 10]}),
            "webhook.retry_gaps_ms: at most 3 retries",
        ),
        (
            json!({"timeout_ms": 999}),
            "webhook.timeout_ms: 999 is not from 1000 to 30000 ms",
        ),
        (
            json!({"timeout_ms": 30001}),
            "webhook.timeout_ms: 30001 is not from 1000 to 30000 ms",
        ),
    ] {
        assert_eq!(
            refused(&app, &t, &update, json!({"webhook": change})).await,
            message
        );
    }
}
