//! Delivery end to end with real receivers on 127.0.0.1: bodies,
//! signatures in both schemes, fan-out, retries, Retry-After, circuits,
//! 410, held deliveries, isolation from a hanging receiver, SSRF refusals
//! and test deliveries.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, assert_error, spawn_delivering};
use crate::receiver::{Behavior, Recorded, TestReceiver};

const WAIT: Duration = Duration::from_secs(30);
const HOOKS: &str = "/v1/account/settings/webhook";
const BOOK: &str = "1e03d9cd-7d84-4672-bc3d-c19cd19c500b";

/// The repo's own copy of the seed catalog (the embedded one).
fn seed() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../orghooks-core/catalog")
}

fn seed_catalog() -> Vec<Value> {
    let text = std::fs::read_to_string(seed().join("catalog.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn all_event_names() -> Vec<String> {
    seed_catalog()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

pub fn verify_ocrolus(r: &Recorded, secret: &str) {
    let message = format!(
        "{}.{}.{}",
        r.header("Webhook-Timestamp"),
        r.header("Webhook-Request-Id"),
        String::from_utf8_lossy(&r.body)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    assert_eq!(
        r.header("Webhook-Signature"),
        hex::encode(mac.finalize().into_bytes())
    );
}

fn verify_standard(r: &Recorded, secret: &str) {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, r.header(name).parse().unwrap());
    }
    wh.verify(&r.body, &headers)
        .expect("a standard-webhooks verifier accepts the signature");
}

/// The body equals the published payload plus only what SPEC §3 allows:
/// the catalog's severity/type/reason when missing, and twins.
fn assert_completed(published: &Value, received: &Value, entry: &Value) {
    let published = published.as_object().unwrap();
    let received = received.as_object().unwrap();
    for (k, v) in published {
        assert_eq!(received.get(k), Some(v), "{k} kept as published");
    }
    let twins: Vec<(String, String)> = entry["twins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (k, v) in received {
        if published.contains_key(k) {
            continue;
        }
        let expected = match k.as_str() {
            "severity" => entry["severity"].clone(),
            "notification_type" => entry["type"].clone(),
            "notification_reason" => entry["reason"].clone(),
            _ => {
                let twin = twins
                    .iter()
                    .find_map(|(a, b)| (a == k).then_some(b).or((b == k).then_some(a)))
                    .unwrap_or_else(|| panic!("{k} was added but is neither a default nor a twin"));
                published[twin].clone()
            }
        };
        assert_eq!(v, &expected, "{k}");
    }
}

async fn setup(app: &TestApp) -> (crate::helpers::Tenant, String) {
    (app.tenant().await, app.publisher_token().await)
}

fn event(account: uuid::Uuid, payload: Value) -> Value {
    json!({"account_uuid": account, "payload": payload})
}

fn book_event(account: uuid::Uuid) -> Value {
    event(
        account,
        json!({"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": []}),
    )
}

#[tokio::test]
async fn every_seed_example_arrives_complete_and_signed_in_both_schemes() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let ocrolus = TestReceiver::start(Behavior::Status(200)).await;
    let standard = TestReceiver::start(Behavior::Status(200)).await;
    let names = all_event_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let o = app
        .add_webhook_with(
            &t.token,
            json!({"url": ocrolus.url("/o"), "description": "ocrolus"}),
            &names,
        )
        .await;
    let s = app
        .add_webhook_with(
            &t.token,
            json!({"url": standard.url("/s"), "signature_scheme": "standard-webhooks"}),
            &names,
        )
        .await;
    let o_secret = "an-ocrolus-secret-value";
    let (status, _) = app
        .post(
            &format!("{HOOKS}/{o}/rotate-secret"),
            &t.token,
            json!({"secret_key": o_secret}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, rotated) = app
        .post(&format!("{HOOKS}/{s}/rotate-secret"), &t.token, json!({}))
        .await;
    let s_secret = rotated["response"]["secret_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let catalog = seed_catalog();
    let mut published = HashMap::new();
    for entry in &catalog {
        let path = seed().join(entry["example"].as_str().unwrap());
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (status, body) = app.publish(&p, event(t.account, payload.clone())).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["response"]["deliveries"], 2);
        published.insert(
            entry["name"].as_str().unwrap().to_owned(),
            (payload, entry.clone()),
        );
    }
    for (receiver, scheme) in [(&ocrolus, "ocrolus"), (&standard, "standard")] {
        let got = receiver.wait_for(catalog.len(), WAIT).await;
        assert_eq!(got.len(), catalog.len());
        for r in &got {
            assert_eq!(r.header("content-type"), "application/json");
            assert!(r.header("user-agent").starts_with("orghooks/"));
            uuid::Uuid::parse_str(r.webhook_id()).unwrap();
            uuid::Uuid::parse_str(r.header("Webhook-Request-Id")).unwrap();
            r.header("Webhook-Timestamp").parse::<i64>().unwrap();
            let body = r.json();
            let (payload, entry) = &published[body["event_name"].as_str().unwrap()];
            assert_completed(payload, &body, entry);
            match scheme {
                "ocrolus" => verify_ocrolus(r, o_secret),
                _ => verify_standard(r, &s_secret),
            }
        }
    }
}

/// Numbers reach the receiver as they were written: integers past 64 bits,
/// `-0`, long decimals, exponents; in a batch too. A number no float can
/// hold is refused.
#[tokio::test]
async fn numbers_arrive_exactly_as_published() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    app.add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    let numbers = r#""book_pk":18446744073709551616,"neg_zero":-0,"below_i64":-9223372036854775809,"amount":1234567890.123456789012345,"exp":1E+2"#;
    let body = format!(
        r#"{{"account_uuid":"{}","payload":{{"event_name":"book.verified","book_uuid":"{BOOK}","uploaded_docs":[],{numbers}}}}}"#,
        t.account
    );
    let send = |body: String| {
        app.client
            .post(format!("{}/v1/events", app.base))
            .bearer_auth(&p)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = send(body).await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "{}",
        resp.text().await.unwrap()
    );
    let batch = format!(
        r#"{{"events":[{{"account_uuid":"{}","payload":{{"event_name":"book.verified","book_uuid":"{BOOK}","uploaded_docs":[],{numbers}}}}}]}}"#,
        t.account
    );
    let resp = app
        .client
        .post(format!("{}/v1/events/batch", app.base))
        .bearer_auth(&p)
        .header("content-type", "application/json")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for got in receiver.wait_for(2, WAIT).await {
        let text = String::from_utf8(got.body.to_vec()).unwrap();
        assert!(text.contains(numbers), "{text}");
    }

    let huge = format!(
        r#"{{"account_uuid":"{}","payload":{{"event_name":"book.verified","book_uuid":"{BOOK}","book_pk":1e400}}}}"#,
        t.account
    );
    let resp = send(huge).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 1002);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not decode JSON string: body: number out of range"),
        "{body}"
    );
}

#[tokio::test]
async fn one_delivery_per_webhook_per_event_whatever_account_published() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let second = app.account(t.org, orghooks_store::Role::Member).await;
    let subscribed = TestReceiver::start(Behavior::Status(200)).await;
    let unsubscribed = TestReceiver::start(Behavior::Status(200)).await;
    let inactive = TestReceiver::start(Behavior::Status(200)).await;
    app.add_webhook(&t.token, &subscribed.url("/a"), &["book.verified"])
        .await;
    app.add_webhook(
        &t.token,
        &unsubscribed.url("/b"),
        &["document.upload_failed"],
    )
    .await;
    app.add_webhook_with(
        &t.token,
        json!({"url": inactive.url("/c"), "is_active": false}),
        &["book.verified"],
    )
    .await;
    // Another org's webhook on the same event never sees this org's events.
    let other = app.tenant().await;
    let foreign = TestReceiver::start(Behavior::Status(200)).await;
    app.add_webhook(&other.token, &foreign.url("/d"), &["book.verified"])
        .await;
    for account in [t.account, second.account, t.account] {
        let (status, body) = app.publish(&p, book_event(account)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            body["response"]["deliveries"], 1,
            "only the subscribed, active webhook"
        );
    }
    let got = subscribed.wait_for(3, WAIT).await;
    let ids: HashSet<&str> = got.iter().map(Recorded::webhook_id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        (unsubscribed.count(), inactive.count(), foreign.count()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn retries_follow_the_schedule_then_fail_for_good() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let flaky = TestReceiver::start(Behavior::FailFirst {
        n: 2,
        status: 500,
        retry_after: None,
    })
    .await;
    app.add_webhook(&t.token, &flaky.url("/"), &["book.verified"])
        .await;
    app.publish(&p, book_event(t.account)).await;
    let got = flaky.wait_for(3, WAIT).await;
    let ids: HashSet<&str> = got.iter().map(Recorded::webhook_id).collect();
    assert_eq!(ids.len(), 1, "retries keep the webhook-id");
    let requests: HashSet<&str> = got.iter().map(|r| r.header("Webhook-Request-Id")).collect();
    assert_eq!(requests.len(), 3, "each attempt has its own request id");
    // Gaps of 20 and 40 ms, without jitter: never sooner.
    assert!(got[1].at - got[0].at >= Duration::from_millis(20));
    assert!(got[2].at - got[1].at >= Duration::from_millis(40));
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        1.0,
    )
    .await;

    // Four attempts in all (1 + 3 gaps), then the delivery fails for good.
    flaky.set(Behavior::Status(500));
    app.publish(&p, book_event(t.account)).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="failed"}"#,
        1.0,
    )
    .await;
    assert_eq!(flaky.count(), 3 + 4);
}

#[tokio::test]
async fn retry_after_is_honoured_within_twice_the_gap() {
    let app = spawn_delivering(|c| c.delivery.retry_gaps_ms = vec![300]).await;
    let (t, p) = setup(&app).await;
    let busy = TestReceiver::start(Behavior::FailFirst {
        n: 1,
        status: 503,
        retry_after: Some(60),
    })
    .await;
    app.add_webhook(&t.token, &busy.url("/"), &["book.verified"])
        .await;
    app.publish(&p, book_event(t.account)).await;
    let got = busy.wait_for(2, WAIT).await;
    // Retry-After: 60 s is clamped to twice the 300 ms gap.
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(600), "{gap:?}");
}

#[tokio::test]
async fn an_open_circuit_sends_one_probe_at_a_time_then_releases_the_backlog() {
    let app = spawn_delivering(|c| {
        c.delivery.circuit_failure_threshold = 3;
        c.delivery.retry_gaps_ms = vec![30, 30, 30, 30, 30, 30, 30, 30];
    })
    .await;
    let (t, p) = setup(&app).await;
    let down = TestReceiver::start(Behavior::Slow {
        status: 500,
        pause: Duration::from_millis(5),
    })
    .await;
    app.add_webhook(&t.token, &down.url("/"), &["book.verified"])
        .await;
    for _ in 0..3 {
        app.publish(&p, book_event(t.account)).await;
    }
    app.wait_metric("orghooks_circuits_open", 1.0).await;
    down.reset_max_in_flight();
    let before = down.count();
    for _ in 0..20 {
        app.publish(&p, book_event(t.account)).await;
    }
    // Probes go out one at a time while the backlog waits.
    down.wait_for(before + 5, WAIT).await;
    assert_eq!(down.max_in_flight(), 1, "one probe at a time");
    down.set(Behavior::Status(200));
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        23.0,
    )
    .await;
    assert_eq!(app.metric("orghooks_circuits_open").await, 0.0);
    assert_eq!(
        app.metric(r#"orghooks_deliveries_settled_total{outcome="failed"}"#)
            .await,
        0.0,
        "waiting behind the circuit spent no retry budget"
    );
}

#[tokio::test]
async fn gone_disables_the_webhook_and_reactivation_resumes_held_deliveries() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let gone = TestReceiver::start(Behavior::Status(410)).await;
    let id = app
        .add_webhook(&t.token, &gone.url("/"), &["book.verified"])
        .await;
    app.publish(&p, book_event(t.account)).await;
    let body = app
        .wait_until(&format!("{HOOKS}/{id}"), &t.token, |b| {
            b["response"]["is_active"] == false
        })
        .await;
    assert_eq!(
        body["response"]["disabled_reason"],
        "the receiver answered 410 Gone"
    );
    assert!(body["response"]["disabled_at"].is_string());
    assert_eq!(gone.count(), 1);
    gone.set(Behavior::Status(200));
    let (status, _) = app
        .post(
            &format!("{HOOKS}/{id}/update"),
            &t.token,
            json!({"webhook": {"is_active": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = gone.wait_for(2, WAIT).await;
    assert_eq!(
        got[0].webhook_id(),
        got[1].webhook_id(),
        "the held delivery resumed"
    );
    let (_, after) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(after["response"]["disabled_reason"], Value::Null);
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let app = spawn_delivering(|c| c.delivery.timeout_ms = 30_000).await;
    let (t, p) = setup(&app).await;
    let hanging = TestReceiver::start(Behavior::Hang).await;
    let healthy = TestReceiver::start(Behavior::Status(200)).await;
    app.add_webhook_with(
        &t.token,
        json!({"url": hanging.url("/"), "max_in_flight": 4}),
        &["book.verified"],
    )
    .await;
    app.add_webhook(&t.token, &healthy.url("/"), &["book.verified"])
        .await;
    for _ in 0..40 {
        app.publish(&p, book_event(t.account)).await;
    }
    healthy.wait_for(40, WAIT).await;
    // All of that while the hanging receiver still holds its 4 requests.
    assert_eq!(hanging.in_flight(), 4);
    assert_eq!(hanging.count(), 4, "max_in_flight caps the hanging webhook");
}

/// A webhook that sets no cap of its own gets the node's
/// `delivery.default_max_in_flight`, and shows it.
#[tokio::test]
async fn the_default_cap_applies_to_webhooks_without_their_own() {
    let app = spawn_delivering(|c| {
        c.delivery.timeout_ms = 30_000;
        c.delivery.default_max_in_flight = 3;
    })
    .await;
    let (t, p) = setup(&app).await;
    let hanging = TestReceiver::start(Behavior::Hang).await;
    let healthy = TestReceiver::start(Behavior::Status(200)).await;
    let id = app
        .add_webhook(&t.token, &hanging.url("/"), &["book.verified"])
        .await;
    app.add_webhook(&t.token, &healthy.url("/"), &["book.verified"])
        .await;
    let (_, shown) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(shown["response"]["max_in_flight"], 3);
    for _ in 0..20 {
        app.publish(&p, book_event(t.account)).await;
    }
    healthy.wait_for(20, WAIT).await;
    assert_eq!(hanging.in_flight(), 3);
    assert_eq!(hanging.count(), 3, "the default caps the hanging webhook");
}

/// A loopback listener that only counts the connections it accepts:
/// answers its port and the count.
async fn accept_counter() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let counter = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = counter.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        while counter.accept().await.is_ok() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// A host that resolved to a public address when added and to a blocked
/// one at delivery (DNS rebinding) is refused before any connection.
#[tokio::test]
async fn deliveries_never_reach_blocked_addresses() {
    let app = spawn_delivering(|c| c.security.allow_cidrs = vec![]).await;
    let (t, p) = setup(&app).await;
    let (port, accepted) = accept_counter().await;
    app.resolver.set("internal.test", &["10.0.0.5"]);
    let refused = app
        .post(
            HOOKS,
            &t.token,
            json!({"webhook": {"url": "http://internal.test/"}, "event_names": ["book.verified"]}),
        )
        .await;
    assert_error(
        &refused,
        400,
        2004,
        "url: host internal.test resolves only to addresses that are not allowed (10.0.0.5 is private)",
    );
    app.resolver.set("rebind.test", &["93.184.216.34"]);
    app.add_webhook(
        &t.token,
        &format!("http://rebind.test:{port}/"),
        &["book.verified"],
    )
    .await;
    let blocked = [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fd00::1",
        "fe80::1",
        "100.64.0.1",
        "0.0.0.0",
        // IPv6 forms that embed a blocked IPv4 address, and tunnels
        "::ffff:0:7f00:1",
        "::7f00:1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::7f00:1",
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ];
    for (i, ip) in blocked.iter().enumerate() {
        app.resolver.set("rebind.test", &[ip]);
        app.publish(&p, book_event(t.account)).await;
        app.wait_metric(
            r#"orghooks_delivery_attempts_total{outcome="refused"}"#,
            (i + 1) as f64,
        )
        .await;
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was dialled"
    );
}

/// IP-literal URLs in the IPv6 forms that embed a loopback IPv4 address
/// (and the tunnels whose target cannot be read) are refused on add and on
/// update; nothing reaches the loopback listener they point at.
#[tokio::test]
async fn ipv6_forms_of_blocked_ipv4_are_refused_on_add_and_update() {
    let app = spawn_delivering(|c| c.security.allow_cidrs = vec![]).await;
    let (t, _) = setup(&app).await;
    let (port, accepted) = accept_counter().await;
    app.resolver.set("public.test", &["93.184.216.34"]);
    let id = app
        .add_webhook(&t.token, "https://public.test/", &["book.verified"])
        .await;
    let forms = [
        ("::ffff:0:7f00:1", "loopback"),
        ("::7f00:1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b:1::7f00:1", "an IPv4 tunnel or translator"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::", "link-local"),
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "an IPv4 tunnel or translator",
        ),
    ];
    for (ip, range) in forms {
        let url = format!("http://[{ip}]:{port}/");
        let shown: std::net::Ipv6Addr = ip.parse().unwrap();
        let message = format!(
            "url: address {shown} is {range} and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs"
        );
        let added = app
            .post(
                HOOKS,
                &t.token,
                json!({"webhook": {"url": url}, "event_names": ["book.verified"]}),
            )
            .await;
        assert_error(&added, 400, 2004, &message);
        let updated = app
            .post(
                &format!("{HOOKS}/{id}/update"),
                &t.token,
                json!({"webhook": {"url": url}}),
            )
            .await;
        assert_error(&updated, 400, 2004, &message);
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn test_deliveries_send_the_example_to_one_webhook() {
    let app = spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let id = app
        .add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    let path = format!("{HOOKS}/{id}/test");
    let verified = uuid::Uuid::new_v5(
        &orghooks_core::catalog::EVENT_TYPE_NAMESPACE,
        b"book.verified",
    );
    let (status, body) = app
        .post(&path, &t.token, json!({"event_uuid": verified}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delivery = body["response"]["uuid"].as_str().unwrap();
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].webhook_id(), delivery);
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(seed().join("events/book.verified.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(got[0].json(), example);

    let unknown = uuid::Uuid::new_v4();
    let not_a_type = app
        .post(&path, &t.token, json!({"event_uuid": unknown}))
        .await;
    assert_error(
        &not_a_type,
        400,
        3010,
        &format!("event_uuid: no event type {unknown}"),
    );
    let failed = uuid::Uuid::new_v5(
        &orghooks_core::catalog::EVENT_TYPE_NAMESPACE,
        b"document.upload_failed",
    );
    let unsubscribed = app
        .post(&path, &t.token, json!({"event_uuid": failed}))
        .await;
    assert_error(
        &unsubscribed,
        400,
        3011,
        &format!("event_uuid: webhook {id} does not subscribe to document.upload_failed"),
    );
    app.post(
        &format!("{HOOKS}/{id}/update"),
        &t.token,
        json!({"webhook": {"is_active": false}}),
    )
    .await;
    let inactive = app
        .post(&path, &t.token, json!({"event_uuid": verified}))
        .await;
    assert_error(
        &inactive,
        400,
        3012,
        &format!("webhook_uuid: webhook {id} is not active"),
    );
    let other = app.tenant().await;
    let foreign = app
        .post(&path, &other.token, json!({"event_uuid": verified}))
        .await;
    assert_error(
        &foreign,
        404,
        4004,
        &format!("Webhook with uuid {id} not found"),
    );
}

#[tokio::test]
async fn deleting_a_webhook_cancels_its_pending_deliveries() {
    let app = spawn_delivering(|c| c.delivery.retry_gaps_ms = vec![200, 200, 200]).await;
    let (t, p) = setup(&app).await;
    let failing = TestReceiver::start(Behavior::Status(500)).await;
    let id = app
        .add_webhook(&t.token, &failing.url("/"), &["book.verified"])
        .await;
    app.publish(&p, book_event(t.account)).await;
    failing.wait_for(1, WAIT).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{HOOKS}/{id}/delete"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="cancelled"}"#,
        1.0,
    )
    .await;
}

#[tokio::test]
async fn basic_auth_comes_from_the_url() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let url = format!("http://hook%20user:p%40ss@{}/in", receiver.addr);
    app.add_webhook(&t.token, &url, &["book.verified"]).await;
    app.publish(&p, book_event(t.account)).await;
    let got = receiver.wait_for(1, WAIT).await;
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode("hook user:p@ss");
    assert_eq!(got[0].header("authorization"), format!("Basic {expected}"));
}

#[tokio::test]
async fn a_standard_webhooks_rotation_signs_with_both_keys_during_the_overlap() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let id = app
        .add_webhook_with(
            &t.token,
            json!({"url": receiver.url("/"), "signature_scheme": "standard-webhooks"}),
            &["book.verified"],
        )
        .await;
    let rotate = format!("{HOOKS}/{id}/rotate-secret");
    let (_, first) = app.post(&rotate, &t.token, json!({})).await;
    let old = first["response"]["secret_key"].as_str().unwrap().to_owned();
    let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, second) = app
        .post(&rotate, &t.token, json!({"secret_key": new}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        second["response"].get("secret_key"),
        None,
        "a given secret is not echoed"
    );
    app.publish(&p, book_event(t.account)).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify_standard(&got[0], new);
    verify_standard(&got[0], &old);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_delivering(|c| c.delivery.retry_gaps_ms = vec![]).await;
    let (t, p) = setup(&app).await;
    let target = TestReceiver::start(Behavior::Status(200)).await;
    let redirecting = TestReceiver::start(Behavior::Redirect(target.url("/"))).await;
    app.add_webhook(&t.token, &redirecting.url("/"), &["book.verified"])
        .await;
    app.publish(&p, book_event(t.account)).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="failed"}"#,
        1.0,
    )
    .await;
    assert_eq!(redirecting.count(), 1);
    assert_eq!(target.count(), 0);
}

#[tokio::test]
async fn an_unresponsive_resolver_does_not_stall_adding_a_webhook() {
    let app = spawn_delivering(|c| c.delivery.resolver_timeout_ms = 50).await;
    let t = app.tenant().await;
    app.resolver.hang("slow-dns.test");
    app.add_webhook(&t.token, "https://slow-dns.test/hook", &["book.verified"])
        .await;
}

/// Deliveries that wait in a slow lane longer than their lease are not sent
/// twice to a healthy receiver: the node keeps the leases of what it holds,
/// so its claimer never takes them back from under it.
#[tokio::test]
async fn deliveries_queued_past_their_lease_reach_a_healthy_receiver_once() {
    let app = spawn_delivering(|c| {
        c.delivery.lease_ms = 1000;
        c.delivery.timeout_ms = 500;
        c.delivery.claim_interval_ms = 10;
    })
    .await;
    let (t, p) = setup(&app).await;
    let receiver = TestReceiver::start(Behavior::Slow {
        status: 200,
        pause: Duration::from_millis(15),
    })
    .await;
    let id = app
        .add_webhook_with(
            &t.token,
            json!({"url": receiver.url("/"), "max_in_flight": 1}),
            &["book.verified"],
        )
        .await;
    let events: Vec<Value> = (0..300).map(|_| book_event(t.account)).collect();
    let (status, body) = app
        .post("/v1/events/batch", &p, json!({ "events": events }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = receiver.wait_for(300, Duration::from_secs(60)).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        300.0,
    )
    .await;
    let (_, pending) = app
        .get(
            &format!("{HOOKS}/{id}/deliveries?status=delivering"),
            &t.token,
        )
        .await;
    assert_eq!(pending["response"]["deliveries"], json!([]), "all settled");
    let ids: HashSet<&str> = got.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(ids.len(), 300);
    assert_eq!(
        receiver.count(),
        300,
        "a healthy receiver got a delivery twice"
    );
    assert_eq!(
        app.metric("orghooks_delivery_outcomes_lost_total").await,
        0.0
    );
}

/// A webhook scoped to some accounts of its org gets only their events;
/// an unknown or another org's account is refused naming the field, and an
/// empty scope means every account again.
#[tokio::test]
async fn a_webhook_scoped_to_accounts_hears_only_them() {
    let app = spawn_delivering(|_| {}).await;
    let (t, p) = setup(&app).await;
    let other = app.account(t.org, orghooks_store::Role::Member).await;
    let stranger = app.tenant().await;
    let scoped = TestReceiver::start(Behavior::Status(200)).await;
    let everyone = TestReceiver::start(Behavior::Status(200)).await;
    let id = app
        .add_webhook_with(
            &t.token,
            json!({"url": scoped.url("/"), "account_uuids": [t.account]}),
            &["book.verified"],
        )
        .await;
    app.add_webhook(&t.token, &everyone.url("/"), &["book.verified"])
        .await;
    let (_, shown) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(shown["response"]["account_uuids"], json!([t.account]));

    app.publish(&p, book_event(other.account)).await;
    app.publish(&p, book_event(t.account)).await;
    everyone.wait_for(2, WAIT).await;
    scoped.wait_for(1, WAIT).await;
    app.wait_metric(
        r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
        3.0,
    )
    .await;
    assert_eq!(scoped.count(), 1, "the other account's event stayed out");

    let update = |accounts: Value| {
        let app = &app;
        let token = t.token.clone();
        let id = id.clone();
        async move {
            app.post(
                &format!("{HOOKS}/{id}/update"),
                &token,
                json!({"webhook": {"account_uuids": accounts}}),
            )
            .await
        }
    };
    let foreign = update(json!([stranger.account])).await;
    assert_error(
        &foreign,
        400,
        2060,
        &format!(
            "webhook.account_uuids: {} is not an account of your organization",
            stranger.account
        ),
    );
    let bad = update(json!(["nope"])).await;
    assert_error(
        &bad,
        400,
        2060,
        "webhook.account_uuids: \"nope\" is not a valid uuid",
    );
    let (status, body) = update(json!([])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, shown) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(shown["response"]["account_uuids"], json!([]));
    app.publish(&p, book_event(other.account)).await;
    scoped.wait_for(2, WAIT).await;
}
