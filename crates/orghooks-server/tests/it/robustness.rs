//! Hostile or careless input gets the envelope; races and restarts keep
//! the rules.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_sqlite_with, spawn_with};
use crate::receiver::{Behavior, TestReceiver};

const ADD: &str = "/v1/account/settings/webhook";

#[tokio::test]
async fn twenty_concurrent_adds_never_make_a_sixth() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let calls = (0..20).map(|i| {
        app.post(
            ADD,
            &t.token,
            json!({"webhook": {"url": format!("https://example.com/{i}")}, "event_names": ["book.verified"]}),
        )
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let limited = results.iter().filter(|(_, b)| b["code"] == 2030).count();
    assert_eq!((ok, limited), (5, 15));
    let (_, list) = app.get("/v1/account/settings/webhooks", &t.token).await;
    assert_eq!(list["response"]["webhooks"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn malformed_bodies_and_paths_get_the_envelope() {
    let app = spawn_with(|c| c.http.max_body_bytes = 4096).await;
    let t = app.tenant().await;
    let url = format!("{}{ADD}", app.base);
    let token = t.token.clone();
    let send = |req: reqwest::RequestBuilder| {
        let req = req.bearer_auth(&token);
        async move {
            let resp = req.send().await.unwrap();
            (
                resp.status(),
                resp.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let bad_json = send(
        app.client
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"webhook\":"),
    )
    .await;
    assert_eq!(bad_json.1["code"], 1002);
    assert_eq!(bad_json.0, 400);
    assert!(
        bad_json.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not decode JSON string: body: ")
    );
    let not_object = send(app.client.post(&url).json(&json!([1, 2]))).await;
    assert_error(
        &not_object,
        400,
        1002,
        "Could not decode JSON string: body: must be a JSON object",
    );
    // Not JSON and not labelled JSON: told what to send.
    let text = send(
        app.client
            .post(&url)
            .header("content-type", "text/plain")
            .body("url=https://example.com/"),
    )
    .await;
    assert_error(&text, 415, 4006, "Content-Type: expected application/json");
    let no_type = send(app.client.post(&url).body("url=https://example.com/")).await;
    assert_error(
        &no_type,
        415,
        4006,
        "Content-Type: expected application/json",
    );
    let big = json!({"webhook": {"url": "https://example.com/", "description": "x".repeat(5000)}, "event_names": ["book.verified"]});
    let too_large = send(app.client.post(&url).json(&big)).await;
    assert_error(&too_large, 413, 4007, "body: larger than 4096 bytes");
    let bad_uuid = app.get(&format!("{ADD}/not-a-uuid"), &t.token).await;
    assert_error(
        &bad_uuid,
        400,
        4009,
        "webhook_uuid: \"not-a-uuid\" is not a valid uuid",
    );
    let bad_uuid = app
        .post(&format!("{ADD}/1234/update"), &t.token, json!({}))
        .await;
    assert_eq!(bad_uuid.1["code"], 4009);
    let unknown = app
        .get(&format!("{ADD}/{}", uuid::Uuid::new_v4()), &t.token)
        .await;
    assert_eq!(
        (unknown.0.as_u16(), &unknown.1["code"]),
        (404, &json!(4004))
    );
}

#[tokio::test]
async fn data_survives_a_restart() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = app
        .add_webhook(&t.token, "https://u:p4ss@example.com/a", &["book.verified"])
        .await;
    let (_, before) = app.get(&format!("{ADD}/{id}"), &t.token).await;
    let app = app.restart().await;
    let (status, after) = app.get(&format!("{ADD}/{id}"), &t.token).await;
    assert_eq!(status, StatusCode::OK, "the token and the webhook survive");
    assert_eq!(after, before);
    // What the store holds is sealed, whatever the backend…
    let (org, hook) = (t.org, uuid::Uuid::parse_str(&id).unwrap());
    let stored = app.admin_store().get_webhook(org, hook).await.unwrap();
    let sealed = stored.url_password_sealed.unwrap();
    assert!(
        sealed.starts_with("k1:") && !sealed.contains("p4ss"),
        "{sealed}"
    );
    // …and with SQLite, no file of the data folder holds the password.
    for file in ["orghooks.db", "orghooks.db-wal"] {
        let bytes = std::fs::read(app.dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(4).any(|w| w == b"p4ss"),
            "{file} leaks the password"
        );
    }
}

#[tokio::test]
async fn a_second_server_on_the_same_data_folder_is_refused() {
    let app = spawn_sqlite_with(|_| {}).await;
    let err = orghooks_server::App::build(app.config.clone(), orghooks_server::Deps::default())
        .await
        .err()
        .expect("the data folder is locked");
    assert!(
        err.to_string()
            .contains("another `orghooks serve` is already using the data folder"),
        "{err}"
    );
}

/// Clean restarts while events keep coming: every accepted event arrives,
/// and no delivery reaches the healthy receiver twice (a new process must
/// not take its own fresh leases for a dead run's).
#[tokio::test]
async fn clean_restarts_under_load_send_nothing_twice() {
    use std::sync::{Arc, Mutex};
    let mut app = crate::helpers::spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    app.add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    let base = Arc::new(Mutex::new(app.base.clone()));
    let stop = tokio_util::sync::CancellationToken::new();
    let publisher = tokio::spawn({
        let (base, stop, client) = (base.clone(), stop.clone(), app.client.clone());
        let event = json!({"account_uuid": t.account, "payload": {"event_name": "book.verified",
            "book_uuid": "1e03d9cd-7d84-4672-bc3d-c19cd19c500b", "uploaded_docs": []}});
        async move {
            let mut accepted = 0usize;
            while !stop.is_cancelled() {
                let url = format!("{}/v1/events", base.lock().unwrap());
                let sent = client.post(url).bearer_auth(&p).json(&event).send().await;
                if sent.is_ok_and(|r| r.status() == StatusCode::ACCEPTED) {
                    accepted += 1;
                }
            }
            accepted
        }
    });
    for _ in 0..3 {
        let before = receiver.count();
        receiver
            .wait_for(before + 20, Duration::from_secs(60))
            .await;
        app = app.restart().await;
        *base.lock().unwrap() = app.base.clone();
    }
    let at_last_start = receiver.count();
    receiver
        .wait_for(at_last_start + 20, Duration::from_secs(60))
        .await;
    stop.cancel();
    let accepted = publisher.await.unwrap();
    let got = receiver.wait_for(accepted, Duration::from_secs(60)).await;
    let ids: HashSet<&str> = got.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(ids.len(), accepted, "every accepted event arrived");
    assert_eq!(got.len(), accepted, "no delivery arrived twice");
}
