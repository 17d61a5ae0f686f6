//! The delivery log, redelivery and recovery, per-book ordering,
//! auto-disable and retention, through the API a user sees.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, assert_error, spawn_delivering};
use crate::receiver::{Behavior, Plan, TestReceiver};

const WAIT: Duration = Duration::from_secs(20);
const HOOKS: &str = "/v1/account/settings/webhook";
const BOOK_A: &str = "1e03d9cd-7d84-4672-bc3d-c19cd19c500b";
const BOOK_B: &str = "8ef7a1e1-fc97-42f9-81ea-ef357b333117";

fn verified(t: &Tenant, book: &str, status: &str) -> Value {
    json!({"account_uuid": t.account, "payload": {"event_name": "book.verified", "book_uuid": book,
           "uploaded_docs": [], "status": status}})
}

fn upload_failed(t: &Tenant, book: &str) -> Value {
    json!({"account_uuid": t.account, "payload": {"event_name": "document.upload_failed",
           "book_uuid": book, "file_name": "a.pdf"}})
}

fn uuids(page: &Value) -> Vec<String> {
    page["response"]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uuid"].as_str().unwrap().to_owned())
        .collect()
}

async fn all_pages(app: &TestApp, token: &str, base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if base.contains('?') { '&' } else { '?' };
        let path = match &cursor {
            Some(c) => format!("{base}{sep}limit=4&cursor={c}"),
            None => format!("{base}{sep}limit=4"),
        };
        let (status, page) = app.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(
            page["response"]["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match page["response"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn filters_and_pages_are_exact_while_new_deliveries_arrive() {
    let app = spawn_delivering(|c| c.delivery.retry_gaps_ms = vec![]).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::FailWhenBodyHas("\"BAD\"".into())).await;
    let id = app
        .add_webhook(
            &t.token,
            &receiver.url("/"),
            &["book.verified", "document.upload_failed"],
        )
        .await;
    for i in 0..10 {
        app.publish(
            &p,
            verified(&t, BOOK_A, if i % 2 == 0 { "BAD" } else { "OK" }),
        )
        .await;
        app.publish(&p, upload_failed(&t, BOOK_B)).await;
    }
    let settled = r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#;
    app.wait_metric(settled, 15.0).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="failed"}"#,
        5.0,
    )
    .await;
    let log = format!("{HOOKS}/{id}/deliveries");

    // Page through 4 at a time while three more events arrive after page one.
    let (_, first) = app.get(&format!("{log}?limit=4"), &t.token).await;
    let mut seen = uuids(&first);
    for _ in 0..3 {
        app.publish(&p, upload_failed(&t, BOOK_B)).await;
    }
    let mut cursor = first["response"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let (_, page) = app
            .get(&format!("{log}?limit=4&cursor={cursor}"), &t.token)
            .await;
        seen.extend(uuids(&page));
        match page["response"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        20,
        "exactly the deliveries that existed, none twice"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 20);

    let everything = all_pages(&app, &t.token, &log).await;
    assert_eq!(everything.len(), 23);
    let created: Vec<&str> = everything
        .iter()
        .map(|d| d["created_on"].as_str().unwrap())
        .collect();
    let mut sorted = created.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(created, sorted, "newest first");
    let d = &everything[22];
    assert_eq!(d["event_name"], "book.verified");
    assert_eq!(d["book_uuid"], BOOK_A);
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["is_test"], false);

    let pick = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        everything
            .iter()
            .filter(|d| pred(d))
            .map(|d| d["uuid"].as_str().unwrap().to_owned())
            .collect()
    };
    let filtered = |q: String| {
        let app = &app;
        let token = t.token.clone();
        let log = log.clone();
        async move {
            all_pages(app, &token, &format!("{log}?{q}"))
                .await
                .iter()
                .map(|d| d["uuid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        filtered("status=failed".into()).await,
        pick(&|d| d["status"] == "failed")
    );
    assert_eq!(filtered("status=failed".into()).await.len(), 5);
    assert_eq!(
        filtered("event_name=document.upload_failed".into()).await,
        pick(&|d| d["event_name"] == "document.upload_failed")
    );
    assert_eq!(
        filtered(format!("book_uuid={BOOK_A}")).await,
        pick(&|d| d["book_uuid"] == BOOK_A)
    );
    let mid = everything[10]["created_on"].as_str().unwrap().to_owned();
    assert_eq!(
        filtered(format!("since={mid}")).await,
        pick(&|d| d["created_on"].as_str().unwrap() >= mid.as_str())
    );
    assert_eq!(
        filtered(format!("until={mid}")).await,
        pick(&|d| d["created_on"].as_str().unwrap() < mid.as_str())
    );
    assert_eq!(
        filtered(format!("status=succeeded&book_uuid={BOOK_A}")).await,
        pick(&|d| d["status"] == "succeeded" && d["book_uuid"] == BOOK_A)
    );

    let bad = [
        (
            "status=nope",
            1003,
            "Request validation failure; check parameter values and types: status: \"nope\" is not one of pending, delivering, succeeded, failed, held, cancelled",
        ),
        (
            "limit=0",
            1003,
            "Request validation failure; check parameter values and types: limit: \"0\" is not a number from 1 to 100",
        ),
        (
            "limit=101",
            1003,
            "Request validation failure; check parameter values and types: limit: \"101\" is not a number from 1 to 100",
        ),
        (
            "cursor=zzz",
            1003,
            "Request validation failure; check parameter values and types: cursor: not a cursor this API returned",
        ),
        (
            "book_uuid=x",
            1003,
            "Request validation failure; check parameter values and types: book_uuid: \"x\" is not a valid uuid",
        ),
        (
            "since=yesterday",
            1003,
            "Request validation failure; check parameter values and types: since: \"yesterday\" is not an RFC 3339 timestamp",
        ),
        (
            "event_name=no.such",
            1003,
            "Request validation failure; check parameter values and types: event_name: no event type named no.such",
        ),
        ("colour=red", 4010, "colour: unknown query parameter"),
    ];
    for (q, code, message) in bad {
        assert_error(
            &app.get(&format!("{log}?{q}"), &t.token).await,
            400,
            code,
            message,
        );
    }
}

#[tokio::test]
async fn a_delivery_shows_every_attempt_as_the_receiver_answered() {
    let app = spawn_delivering(|c| c.delivery.retry_gaps_ms = vec![10]).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::FailWhenBodyHas("\"BAD\"".into())).await;
    let id = app
        .add_webhook(
            &t.token,
            &format!("http://u:s3cret@{}/in", receiver.addr),
            &["book.verified"],
        )
        .await;
    app.publish(&p, verified(&t, BOOK_A, "BAD")).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="failed"}"#,
        1.0,
    )
    .await;
    let (_, page) = app.get(&format!("{HOOKS}/{id}/deliveries"), &t.token).await;
    let delivery = page["response"]["deliveries"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .get(&format!("{HOOKS}/{id}/delivery/{delivery}"), &t.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = &body["response"];
    assert_eq!(d["uuid"], delivery.as_str());
    assert_eq!(d["status"], "failed");
    assert_eq!(d["payload"]["status"], "BAD");
    let attempts = d["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    for a in attempts {
        assert_eq!(a["response_status"], 500);
        assert_eq!(a["response_body"], "refused");
        assert_eq!(a["response_headers"]["x-receiver"], "test");
        assert_eq!(a["request_headers"]["webhook-id"], delivery.as_str());
        assert_eq!(a["request_headers"]["webhook-request-id"], a["uuid"]);
        assert_eq!(a["request_headers"]["authorization"], "Basic ****");
        assert_eq!(a["error"], Value::Null);
        assert!(a["duration_ms"].as_i64().unwrap() >= 0);
    }
    assert!(!body.to_string().contains("s3cret"));

    // A receiver that is not there: the attempt says why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gone = app
        .add_webhook(
            &t.token,
            &format!("http://127.0.0.1:{port}/"),
            &["book.verified"],
        )
        .await;
    app.publish(&p, verified(&t, BOOK_A, "OK")).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="failed"}"#,
        2.0,
    )
    .await;
    let (_, page) = app
        .get(&format!("{HOOKS}/{gone}/deliveries"), &t.token)
        .await;
    let delivery = page["response"]["deliveries"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = app
        .get(&format!("{HOOKS}/{gone}/delivery/{delivery}"), &t.token)
        .await;
    let error = body["response"]["attempt_log"][0]["error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(error.contains("connection refused"), "{error}");
    assert_eq!(
        body["response"]["attempt_log"][0]["response_status"],
        Value::Null
    );
}

#[tokio::test]
async fn redeliver_and_recover_resend_with_the_same_id_and_a_fresh_signature() {
    let app = spawn_delivering(|c| c.delivery.retry_gaps_ms = vec![]).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(500)).await;
    let id = app
        .add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    let secret = "0123456789abcdef-secret";
    app.post(
        &format!("{HOOKS}/{id}/rotate-secret"),
        &t.token,
        json!({"secret_key": secret}),
    )
    .await;
    for _ in 0..3 {
        app.publish(&p, verified(&t, BOOK_A, "OK")).await;
    }
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="failed"}"#,
        3.0,
    )
    .await;
    let (_, page) = app.get(&format!("{HOOKS}/{id}/deliveries"), &t.token).await;
    let ids = uuids(&page);

    // Redeliver one: the receiver is slow, so a second request while the
    // first is in flight changes nothing.
    receiver.set(Behavior::Slow {
        status: 200,
        pause: Duration::from_millis(300),
    });
    let path = format!("{HOOKS}/{id}/delivery/{}/redeliver", ids[0]);
    let (status, body) = app.call(Method::POST, &path, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["response"],
        json!({"uuid": ids[0], "status": "delivering"})
    );
    let (_, again) = app.call(Method::POST, &path, Some(&t.token), None).await;
    assert_eq!(
        again["response"]["status"], "delivering",
        "idempotent while pending"
    );
    let got = receiver.wait_for(4, WAIT).await;
    let resent = &got[3];
    assert_eq!(resent.webhook_id(), ids[0]);
    crate::delivery::verify_ocrolus(resent, secret);
    assert_ne!(
        resent.header("Webhook-Request-Id"),
        got[0].header("Webhook-Request-Id")
    );
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        1.0,
    )
    .await;
    assert_eq!(receiver.count(), 4);

    // Recover the other two.
    receiver.set(Behavior::Status(200));
    let week_ago = "2000-01-01T00:00:00Z";
    let refused = app
        .post(
            &format!("{HOOKS}/{id}/recover"),
            &t.token,
            json!({"since": week_ago}),
        )
        .await;
    assert_error(
        &refused,
        400,
        3020,
        "since: the window must end after it starts and span at most 14 days",
    );
    let since = orghooks_core::clock::format_ms(chrono_now() - 3_600_000);
    let (status, body) = app
        .post(
            &format!("{HOOKS}/{id}/recover"),
            &t.token,
            json!({"since": since}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], json!({"recovered": 2}));
    let got = receiver.wait_for(6, WAIT).await;
    let recovered: HashSet<&str> = got[4..].iter().map(|r| r.webhook_id()).collect();
    assert_eq!(recovered, ids[1..].iter().map(String::as_str).collect());
    for r in &got[4..] {
        crate::delivery::verify_ocrolus(r, secret);
    }
}

/// Asking for a redelivery while an attempt is in flight is not lost: when
/// that attempt fails, the delivery goes again at once.
#[tokio::test]
async fn a_redelivery_asked_for_during_a_failing_attempt_follows_it() {
    let app = spawn_delivering(|c| {
        c.delivery.retry_gaps_ms = vec![];
        c.delivery.timeout_ms = 300;
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Hang).await;
    let id = app
        .add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    app.publish(&p, verified(&t, BOOK_A, "OK")).await;
    let first = receiver.wait_for(1, WAIT).await;
    let delivery = first[0].webhook_id().to_owned();
    receiver.set(Behavior::Status(200));
    let path = format!("{HOOKS}/{id}/delivery/{delivery}/redeliver");
    let (status, body) = app.call(Method::POST, &path, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["response"],
        json!({"uuid": delivery, "status": "delivering"})
    );
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].webhook_id(), delivery);
    let detail = app
        .wait_until(
            &format!("{HOOKS}/{id}/delivery/{delivery}"),
            &t.token,
            |b| b["response"]["status"] == "succeeded",
        )
        .await;
    let attempts = detail["response"]["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[1]["response_status"], 200);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn per_book_ordering_holds_under_seeded_failures_while_unordered_stays_parallel() {
    let app = spawn_delivering(|c| {
        c.delivery.retry_gaps_ms = vec![5, 5, 5, 5, 5, 5];
        c.delivery.circuit_failure_threshold = 10_000;
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let plan = Plan {
        seed: 20261126,
        fail_percent: 30,
        max_failures: 3,
        max_pause: Duration::from_millis(3),
    };
    let ordered = TestReceiver::start(Behavior::Planned(plan.clone())).await;
    let unordered = TestReceiver::start(Behavior::Planned(plan)).await;
    app.add_webhook_with(
        &t.token,
        json!({"url": ordered.url("/"), "ordering": "per_book"}),
        &["book.verified"],
    )
    .await;
    app.add_webhook(&t.token, &unordered.url("/"), &["book.verified"])
        .await;
    let books: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let events: Vec<Value> = (0..20)
        .flat_map(|seq| {
            books.iter().map(move |book| {
                json!({"account_uuid": t.account, "payload": {"event_name": "book.verified",
                       "book_uuid": book, "uploaded_docs": [], "seq": seq}})
            })
        })
        .collect();
    for chunk in events.chunks(100) {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/events/batch",
                Some(&p),
                Some(json!({"events": chunk})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"]["accepted"], 100);
    }
    // Each book's twenty deliveries go one after another, through seeded
    // failures and retries: on a busy machine that takes a while.
    app.wait_metric_within(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        2000.0,
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(
        app.metric(r#"orghooks_deliveries_settled_total{outcome="failed"}"#)
            .await,
        0.0
    );
    // Per book, requests follow publish order: a later event is never sent
    // before an earlier one has succeeded (retries repeat the same seq).
    let mut last_seen: HashMap<String, u64> = HashMap::new();
    for r in ordered.requests() {
        let body = r.json();
        let book = body["book_uuid"].as_str().unwrap().to_owned();
        let seq = body["seq"].as_u64().unwrap();
        let prev = last_seen.insert(book.clone(), seq);
        if let Some(prev) = prev {
            assert!(
                seq == prev || seq == prev + 1,
                "book {book}: {seq} arrived after {prev}"
            );
        } else {
            assert_eq!(seq, 0, "book {book} started with {seq}");
        }
    }
    assert_eq!(last_seen.len(), 50);
    assert!(last_seen.values().all(|&s| s == 19));
    assert!(
        unordered.max_in_flight() > 1,
        "the unordered webhook kept its parallelism"
    );
}

#[tokio::test]
async fn a_circuit_open_too_long_disables_and_reactivation_releases_what_was_held() {
    let app = spawn_delivering(|c| {
        c.delivery.circuit_failure_threshold = 2;
        c.delivery.circuit_disable_after_secs = 0;
        c.delivery.retry_gaps_ms = vec![10; 8];
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(500)).await;
    let id = app
        .add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    // One batch: all four deliveries exist before the first attempt, so
    // none can be published after the webhook is disabled.
    let events: Vec<Value> = (0..4).map(|_| verified(&t, BOOK_A, "OK")).collect();
    let (status, body) = app
        .post("/v1/events/batch", &p, json!({ "events": events }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["accepted"], 4, "{body}");
    let body = app
        .wait_until(&format!("{HOOKS}/{id}"), &t.token, |b| {
            b["response"]["is_active"] == false
        })
        .await;
    let reason = body["response"]["disabled_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the receiver kept failing: its circuit was open from "),
        "{reason}"
    );
    assert!(body["response"]["disabled_at"].is_string());
    let held = app
        .wait_until(
            &format!("{HOOKS}/{id}/deliveries?status=held"),
            &t.token,
            |b| b["response"]["deliveries"].as_array().unwrap().len() == 4,
        )
        .await;
    let held: HashSet<String> = uuids(&held).into_iter().collect();
    receiver.set(Behavior::Status(200));
    let (status, _) = app
        .post(
            &format!("{HOOKS}/{id}/update"),
            &t.token,
            json!({"webhook": {"is_active": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        4.0,
    )
    .await;
    let (_, body) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(body["response"]["disabled_reason"], Value::Null);
    assert_eq!(body["response"]["disabled_at"], Value::Null);
    let delivered: HashSet<String> = receiver
        .requests()
        .iter()
        .rev()
        .take(4)
        .map(|r| r.webhook_id().to_owned())
        .collect();
    assert_eq!(delivered, held);
}

#[tokio::test]
async fn new_routes_keep_tenants_apart() {
    let app = spawn_delivering(|_| {}).await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let hook = app
        .add_webhook(&a.token, &receiver.url("/a"), &["book.verified"])
        .await;
    let other_hook = app
        .add_webhook(&a.token, &receiver.url("/b"), &["document.upload_failed"])
        .await;
    app.publish(&p, verified(&a, BOOK_A, "OK")).await;
    receiver.wait_for(1, WAIT).await;
    let (_, page) = app
        .get(&format!("{HOOKS}/{hook}/deliveries"), &a.token)
        .await;
    let d = uuids(&page)[0].clone();
    let no_hook = format!("Webhook with uuid {hook} not found");
    assert_error(
        &app.get(&format!("{HOOKS}/{hook}/deliveries"), &b.token)
            .await,
        404,
        4004,
        &no_hook,
    );
    assert_error(
        &app.get(&format!("{HOOKS}/{hook}/delivery/{d}"), &b.token)
            .await,
        404,
        4004,
        &no_hook,
    );
    let redeliver = format!("{HOOKS}/{hook}/delivery/{d}/redeliver");
    assert_error(
        &app.call(Method::POST, &redeliver, Some(&b.token), None)
            .await,
        404,
        4004,
        &no_hook,
    );
    let recover = app
        .post(
            &format!("{HOOKS}/{hook}/recover"),
            &b.token,
            json!({"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}),
        )
        .await;
    assert_error(&recover, 404, 4004, &no_hook);
    // The same org, through another of its webhooks: still not found.
    let wrong = app
        .get(&format!("{HOOKS}/{other_hook}/delivery/{d}"), &a.token)
        .await;
    assert_error(
        &wrong,
        404,
        4004,
        &format!("Delivery with uuid {d} not found"),
    );
}

#[tokio::test]
async fn retention_purges_only_what_is_old_and_finished() {
    let app = crate::helpers::spawn_with(|c| {
        c.security.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        c.retention.period_secs = 30 * 24 * 3600;
        c.retention.purge_interval_ms = 5;
        // The failing delivery's retry stays due after the clock moves.
        c.delivery.retry_gaps_ms = vec![60 * 24 * 3600 * 1000];
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let ok = TestReceiver::start(Behavior::Status(200)).await;
    let failing = TestReceiver::start(Behavior::Status(500)).await;
    let done = app
        .add_webhook(&t.token, &ok.url("/"), &["book.verified"])
        .await;
    let waiting = app
        .add_webhook(&t.token, &failing.url("/"), &["document.upload_failed"])
        .await;
    let (_, old) = app.publish(&p, verified(&t, BOOK_A, "OLD")).await;
    let (_, old_pending) = app.publish(&p, upload_failed(&t, BOOK_B)).await;
    ok.wait_for(1, WAIT).await;
    failing.wait_for(1, WAIT).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        1.0,
    )
    .await;
    app.clock.advance_ms(31 * 24 * 3600 * 1000);
    let token = app.token(&t.client_id, &t.client_secret).await;
    app.publish(&p, verified(&t, BOOK_A, "NEW")).await;
    ok.wait_for(2, WAIT).await;
    // The old event's finished delivery goes; the new one stays.
    let page = app
        .wait_until(&format!("{HOOKS}/{done}/deliveries"), &token, |b| {
            b["response"]["deliveries"].as_array().unwrap().len() == 1
        })
        .await;
    assert_ne!(
        page["response"]["deliveries"][0]["event_uuid"],
        old["response"]["event_uuid"]
    );
    // An old event whose other delivery still waits for a retry is kept.
    let (_, pending) = app
        .get(
            &format!("{HOOKS}/{waiting}/deliveries?status=pending"),
            &token,
        )
        .await;
    let kept: Vec<&Value> = pending["response"]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(
        kept.iter()
            .any(|d| d["event_uuid"] == old_pending["response"]["event_uuid"])
    );
}
