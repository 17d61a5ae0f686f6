//! Failure notices: a webhook disabled by a 410, a circuit opening and
//! closing, a delivery exhausting its schedule each reach the org's webhook
//! that subscribes to those types, and the operator's URL, once each;
//! platforms cannot publish them.

use std::collections::BTreeMap;
use std::time::Duration;

use orghooks_core::notices::NAMES as NOTICES;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{book_event, spawn_delivering};
use crate::receiver::{Behavior, Recorded, TestReceiver};

/// The notices a receiver got, by event name.
fn by_name(got: &[Recorded]) -> BTreeMap<String, Value> {
    got.iter()
        .map(|r| {
            let body = r.json();
            (body["event_name"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

#[tokio::test]
async fn failures_are_told_to_subscribed_webhooks_and_the_operator_once_each() {
    let operator = TestReceiver::start(Behavior::Status(200)).await;
    let operator_url = operator.url("/alerts");
    let app = spawn_delivering(|c| {
        c.delivery.circuit_failure_threshold = 2;
        c.notices.operator_url = operator_url.clone();
        c.notices.operator_secret = "an-operator-secret-value".into();
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let watcher = TestReceiver::start(Behavior::Status(200)).await;
    let failing = TestReceiver::start(Behavior::Status(500)).await;
    let gone = TestReceiver::start(Behavior::Status(410)).await;
    app.add_webhook(&t.token, &watcher.url("/watch"), &NOTICES)
        .await;
    let failing_id = app
        .add_webhook(&t.token, &failing.url("/f"), &["book.verified"])
        .await;
    let gone_id = app
        .add_webhook(&t.token, &gone.url("/g"), &["book.verified"])
        .await;
    let event = book_event(t.account);
    app.publish(&p, event.clone()).await;

    // 410: disabled; two failures: the circuit opens; four: exhausted.
    let got = watcher.wait_for(3, Duration::from_secs(30)).await;
    let notices = by_name(&got);
    assert_eq!(notices["webhook.disabled"]["webhook_uuid"], gone_id);
    assert_eq!(
        notices["webhook.disabled"]["reason"],
        "the receiver answered 410 Gone"
    );
    assert_eq!(
        notices["webhook.circuit_opened"]["webhook_uuid"],
        failing_id
    );
    assert_eq!(notices["webhook.circuit_opened"]["consecutive_failures"], 2);
    let exhausted = &notices["delivery.exhausted"];
    assert_eq!(exhausted["webhook_uuid"], failing_id);
    assert_eq!(exhausted["event_type"], "book.verified");
    assert_eq!(exhausted["attempts"], 4);
    assert_eq!(exhausted["last_error"], "HTTP 500");
    assert_eq!(exhausted["severity"], "HIGH");
    assert!(got.iter().all(|r| !r.header("webhook-id").is_empty()));

    // The receiver answers again: the circuit closes at its next delivery.
    failing.set(Behavior::Status(200));
    app.publish(&p, event).await;
    let got = watcher.wait_for(4, Duration::from_secs(30)).await;
    let notices = by_name(&got);
    assert_eq!(
        notices["webhook.circuit_closed"]["webhook_uuid"],
        failing_id
    );
    assert_eq!(
        notices["webhook.circuit_closed"]["opened_at"],
        notices["webhook.circuit_opened"]["occurred_at"]
    );

    // The operator's URL heard the same four, signed.
    let told = operator.wait_for(4, Duration::from_secs(30)).await;
    let told_names: Vec<String> = by_name(&told).into_keys().collect();
    let mut all: Vec<String> = NOTICES.iter().map(|n| (*n).to_owned()).collect();
    all.sort();
    assert_eq!(told_names, all);
    assert!(
        told.iter()
            .all(|r| !r.header("webhook-signature").is_empty())
    );
    for name in NOTICES {
        assert_eq!(
            app.metric(&format!("orghooks_notices_total{{event_name=\"{name}\"}}"))
                .await,
            1.0,
            "{name} counted once"
        );
    }
    assert_eq!(watcher.count(), 4, "once each");

    // Only orghooks sends them.
    let (status, body) = app
        .publish(
            &p,
            json!({"account_uuid": t.account, "payload": {"event_name": "webhook.disabled",
                   "webhook_uuid": failing_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "payload.event_name: webhook.disabled is one of orghooks' own notices; only orghooks sends it"
    );
}
