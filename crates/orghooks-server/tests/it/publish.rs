//! The publish API: token kinds, validation with codes, idempotency,
//! batches and back-pressure.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_with};

const BOOK: &str = "1e03d9cd-7d84-4672-bc3d-c19cd19c500b";

fn verified(account: &str) -> Value {
    json!({"account_uuid": account, "payload": {"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": []}})
}

#[tokio::test]
async fn tokens_of_each_kind_open_only_their_api() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let publisher = app.publisher_token().await;
    let account = t.account.to_string();
    let none = app
        .call(Method::POST, "/v1/events", None, Some(verified(&account)))
        .await;
    assert_error(
        &none,
        401,
        1200,
        "Authentication failed: Authorization: a Bearer token is required",
    );
    let unknown = app.publish("ohp_nope", verified(&account)).await;
    assert_error(
        &unknown,
        401,
        1200,
        "Authentication failed: Authorization: unknown publisher token",
    );
    let wrong = app.publish(&t.token, verified(&account)).await;
    assert_error(
        &wrong,
        403,
        4003,
        "Authorization: an account token cannot publish events; use a publisher token",
    );
    let wrong = app.get("/v1/account/settings/webhooks", &publisher).await;
    assert_error(
        &wrong,
        403,
        4003,
        "Authorization: a publisher token cannot use the management API; use an account's access token",
    );
    let (status, body) = app.publish(&publisher, verified(&account)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], 202);
    assert_eq!(body["message"], "Accepted");
    assert_eq!(body["response"]["deliveries"], 0);
    uuid::Uuid::parse_str(body["response"]["event_uuid"].as_str().unwrap()).unwrap();

    let tokens = app.admin.list_publisher_tokens().await.unwrap();
    app.admin
        .revoke_publisher_token(&tokens[0].uuid.to_string())
        .await
        .unwrap();
    // A revocation reaches every node within a second (checks are cached
    // for half of that).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let revoked = loop {
        let got = app.publish(&publisher, verified(&account)).await;
        if got.0 == StatusCode::UNAUTHORIZED || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::task::yield_now().await;
    };
    assert_error(
        &revoked,
        401,
        1200,
        "Authentication failed: Authorization: this publisher token was revoked",
    );
}

#[tokio::test]
async fn every_publish_validation_error_names_its_field() {
    let app = spawn_with(|c| c.publish.max_payload_bytes = 2048).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let a = t.account.to_string();
    let stranger = uuid::Uuid::new_v4().to_string();
    let event = |payload: Value| json!({"account_uuid": a, "payload": payload});
    let cases: Vec<(Value, u16, u32, String)> = vec![
        (
            json!({"account_uuid": stranger, "payload": {"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": []}}),
            400,
            3000,
            format!("account_uuid: no API account {stranger}"),
        ),
        (
            event(json!({"event_name": "book.exploded", "book_uuid": BOOK})),
            400,
            3003,
            "payload.event_name: no event type named book.exploded".into(),
        ),
        (
            event(json!({"book_uuid": BOOK})),
            400,
            3002,
            "payload.event_name: is required and must be a string".into(),
        ),
        (
            event(json!({"event_name": "book.verified", "uploaded_docs": []})),
            400,
            3002,
            "payload.book_uuid: is required".into(),
        ),
        (
            event(json!({"event_name": "book.verified", "book_uuid": BOOK})),
            400,
            3002,
            "payload.uploaded_docs: is required".into(),
        ),
        (
            event(json!({"event_name": "book.verified", "book_uuid": 12, "uploaded_docs": []})),
            400,
            3002,
            "payload.book_uuid: 12 is not of types \"null\", \"string\"".into(),
        ),
        (
            event(
                json!({"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": [], "severity": "URGENT"}),
            ),
            400,
            3002,
            "payload.severity: \"URGENT\" is not one of [\"LOW\",\"MODERATE\",\"HIGH\"]".into(),
        ),
        (
            event(
                json!({"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": [], "book_pk": 1.5}),
            ),
            400,
            3002,
            "payload.book_pk: 1.5 is not of type \"integer\"".into(),
        ),
        (
            event(
                json!({"event_name": "document.verification_failed", "book_uuid": BOOK, "doc_uuid": BOOK,
                      "uploaded_doc_uuid": "61d93bbd-8412-4b0b-9e98-693d0b1236d3"}),
            ),
            400,
            3005,
            "payload.doc_uuid: must equal payload.uploaded_doc_uuid when both are given".into(),
        ),
        (
            event(json!({"event_name": "document.verification_failed", "book_uuid": BOOK})),
            400,
            3002,
            "payload.doc_uuid: is required (or uploaded_doc_uuid)".into(),
        ),
        (
            event(
                json!({"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": [], "notes": "x".repeat(3000)}),
            ),
            413,
            4007,
            "payload: larger than 2048 bytes".into(),
        ),
        (
            json!({"account_uuid": a}),
            400,
            1103,
            "Required parameter not found: payload".into(),
        ),
        (
            json!({"payload": {}}),
            400,
            1103,
            "Required parameter not found: account_uuid".into(),
        ),
        (
            json!({"account_uuid": "nope", "payload": {}}),
            400,
            1003,
            "Request validation failure; check parameter values and types: account_uuid: UUID parsing failed: invalid character: found `n` at 0".into(),
        ),
        (
            json!({"account_uuid": a, "occurred_at": "yesterday", "payload": {"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": []}}),
            400,
            1003,
            "Request validation failure; check parameter values and types: occurred_at: \"yesterday\" is not an RFC 3339 timestamp".into(),
        ),
        (
            json!({"account_uuid": a, "payload": {}, "org_uuid": a}),
            400,
            4010,
            "org_uuid: unknown field".into(),
        ),
    ];
    for (body, status, code, message) in cases {
        let got = app.publish(&p, body.clone()).await;
        assert_eq!(got.1["code"], code, "{body} → {}", got.1);
        assert_error(&got, status, code, &message);
    }
}

#[tokio::test]
async fn publishing_is_idempotent_by_event_uuid() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    app.add_webhook(&t.token, "https://example.com/a", &["book.verified"])
        .await;
    let id = uuid::Uuid::new_v4().to_string();
    let mut body = verified(&t.account.to_string());
    body["event_uuid"] = json!(id);
    let first = app.publish(&p, body.clone()).await;
    assert_eq!(first.0, StatusCode::ACCEPTED);
    assert_eq!(
        first.1["response"],
        json!({"event_uuid": id, "deliveries": 1})
    );
    let again = app.publish(&p, body.clone()).await;
    assert_eq!(
        again, first,
        "the same uuid and payload answer the first answer again"
    );
    body["payload"]["status"] = json!("CHANGED");
    let conflict = app.publish(&p, body).await;
    assert_error(
        &conflict,
        409,
        3001,
        &format!("event_uuid: {id} was already published with a different payload"),
    );
    // Another org may use the same event uuid.
    let other = app.tenant().await;
    let mut theirs = verified(&other.account.to_string());
    theirs["event_uuid"] = json!(id);
    assert_eq!(app.publish(&p, theirs).await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn batches_judge_each_event_on_its_own() {
    let app = spawn_with(|c| c.publish.max_batch_events = 3).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    app.add_webhook(&t.token, "https://example.com/a", &["book.verified"])
        .await;
    let a = t.account.to_string();
    let good = verified(&a);
    let bad = json!({"account_uuid": a, "payload": {"event_name": "book.verified"}});
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/events/batch",
            Some(&p),
            Some(json!({"events": [good, bad, 7]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &body["response"];
    assert_eq!(
        (r["accepted"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(r["results"][0]["status"], 202);
    assert_eq!(r["results"][0]["deliveries"], 1);
    assert_eq!(
        r["results"][1],
        json!({"status": 400, "code": 3002, "message": "payload.book_uuid: is required"})
    );
    assert_eq!(
        r["results"][2],
        json!({"status": 400, "code": 1002, "message": "Could not decode JSON string: events[2]: must be a JSON object"})
    );
    let four = json!({"events": [verified(&a), verified(&a), verified(&a), verified(&a)]});
    let too_many = app
        .call(Method::POST, "/v1/events/batch", Some(&p), Some(four))
        .await;
    assert_error(
        &too_many,
        400,
        3006,
        "events: at most 3 events per batch, got 4",
    );
}

#[tokio::test]
async fn batch_bodies_may_exceed_the_general_limit() {
    let app = spawn_with(|c| c.http.max_body_bytes = 4096).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let events: Vec<Value> = (0..40).map(|_| verified(&t.account.to_string())).collect();
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/events/batch",
            Some(&p),
            Some(json!({"events": events})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["accepted"], 40);
}

/// While another process holds the database's write lock, a full write
/// queue answers 503 with Retry-After instead of buffering (SQLite's
/// single writer; PostgreSQL has no such queue).
#[tokio::test]
async fn a_full_write_queue_pushes_back() {
    let app = crate::helpers::spawn_sqlite_with(|c| c.storage.write_queue = 1).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let blocker = rusqlite::Connection::open(app.dir.path().join("orghooks.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let a = t.account.to_string();
    let mut calls: futures::stream::FuturesUnordered<_> = (0..16)
        .map(|_| {
            let req = app
                .client
                .post(format!("{}/v1/events", app.base))
                .bearer_auth(&p)
                .json(&verified(&a));
            async move { req.send().await.unwrap() }
        })
        .collect();
    // The blocked writer holds the jobs it took and the queue one more: of
    // sixteen publishes, some are refused at once while the lock is held.
    let busy = futures::StreamExt::next(&mut calls).await.unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["code"], 4001);
    drop(blocker);
    // Once the lock is released, the queued publishes are accepted; the
    // others were refused, never buffered.
    let mut accepted = 0;
    while let Some(resp) = futures::StreamExt::next(&mut calls).await {
        match resp.status().as_u16() {
            202 => accepted += 1,
            503 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(accepted >= 1);
    assert_eq!(app.publish(&p, verified(&a)).await.0, StatusCode::ACCEPTED);
}
