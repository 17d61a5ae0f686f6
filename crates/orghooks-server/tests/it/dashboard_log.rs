//! The dashboard's delivery pages in a real browser against a delivering
//! server and real receivers on 127.0.0.1: each webhook's health and
//! circuit, a test with the request and the answer shown, and the delivery
//! log with its filters, pages, redelivery and recovery. Each wait is on
//! the committed state the API shows; then the page must show the same.

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::dashboard::sign_in;
use crate::helpers::{TestApp, spawn_delivering};
use crate::receiver::{Behavior, TestReceiver};

const GOOD_BOOK: &str = "0f6ba4f3-7e0b-4a7e-9a8e-0b1c2d3e4f50";
const BAD_BOOK: &str = "5e1d0c9b-8a7f-4e6d-9c5b-4a3f2e1d0c9b";

fn book_event(account: uuid::Uuid, book: &str) -> Value {
    json!({"account_uuid": account, "payload":
        {"event_name": "book.verified", "book_uuid": book, "uploaded_docs": []}})
}

/// Waits until the webhook has `n` deliveries in `status` (API view).
async fn wait_for_status(app: &TestApp, token: &str, webhook: &str, status: &str, n: usize) {
    app.wait_until(
        &format!("/v1/account/settings/webhook/{webhook}/deliveries?status={status}&limit=100"),
        token,
        |b| b["response"]["deliveries"].as_array().map(Vec::len) == Some(n),
    )
    .await;
}

fn card(webhook: &str, part: &str) -> String {
    format!("li[data-webhook='{webhook}'] {part}")
}

#[tokio::test]
async fn the_webhooks_page_shows_each_webhooks_health_and_circuit() {
    // Four failed tries in a row open a circuit: the bad receiver's one
    // delivery opens it with its last try, so the end state is fixed.
    let app = spawn_delivering(|c| c.delivery.circuit_failure_threshold = 4).await;
    let t = app.tenant().await;
    let other = app.account(t.org, orghooks_store::Role::Member).await;
    let p = app.publisher_token().await;
    let good = TestReceiver::start(Behavior::Status(200)).await;
    let bad = TestReceiver::start(Behavior::Status(500)).await;
    let good_id = app
        .add_webhook(&t.token, &good.url("/ok"), &["book.verified"])
        .await;
    let bad_id = app
        .add_webhook_with(
            &t.token,
            json!({"url": bad.url("/down"), "account_uuids": [other.account]}),
            &["book.verified"],
        )
        .await;
    for _ in 0..3 {
        app.publish(&p, book_event(t.account, GOOD_BOOK)).await;
    }
    app.publish(&p, book_event(other.account, GOOD_BOOK)).await;
    wait_for_status(&app, &t.token, &good_id, "succeeded", 4).await;
    wait_for_status(&app, &t.token, &bad_id, "failed", 1).await;
    app.wait_metric("orghooks_circuits_open", 1.0).await;

    let Some(browser) = Browser::start("health", 1280).await else {
        return;
    };
    sign_in(&browser, &app, &t).await;
    assert_eq!(
        browser.text_of(&card(&good_id, "[data-health]")).await,
        "4 deliveries in 24 h, 100.0 % of finished ones succeeded"
    );
    assert_eq!(
        browser.text_of(&card(&good_id, "[data-circuit]")).await,
        "Circuit closed: deliveries flow"
    );
    assert_eq!(
        browser.text_of(&card(&bad_id, "[data-health]")).await,
        "1 delivery in 24 h, 0.0 % of finished ones succeeded"
    );
    let circuit = browser.text_of(&card(&bad_id, "[data-circuit]")).await;
    assert!(
        circuit.starts_with("Circuit open since ") && circuit.contains(" after 4 failed attempts"),
        "{circuit}"
    );
    assert!(browser.has(&card(&good_id, "svg.chart rect.ok")).await);
    assert!(browser.has(&card(&bad_id, "svg.chart rect.bad")).await);
    browser.shot("webhooks-health").await;
    browser.close().await;
}

#[tokio::test]
async fn an_admin_tests_a_webhook_and_reads_filters_and_resends_from_its_log() {
    let app = spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Reply {
        status: 200,
        body: r#"{"received":true}"#,
    })
    .await;
    let id = app
        .add_webhook(&t.token, &receiver.url("/hooks"), &["book.verified"])
        .await;
    app.set_secret(&t.token, &id, "a-sixteen-plus-character-secret")
        .await;
    let Some(browser) = Browser::start("log", 1280).await else {
        return;
    };
    let base = format!("{}/dashboard/webhooks/{id}", app.base);
    sign_in(&browser, &app, &t).await;

    // Test: the request as sent and the receiver's answer.
    browser.goto(&base).await;
    browser.click("#test-link").await;
    browser
        .expect_path(&format!("/dashboard/webhooks/{id}/test"))
        .await;
    browser.shot("test").await;
    browser.click("#send-test").await;
    let first = browser.text_of("#attempt-1 h3").await;
    assert!(first.contains("HTTP 200"), "{first}");
    let page = browser.text().await;
    for shown in [
        "webhook-signature",
        "webhook-timestamp",
        "x-receiver",
        "\"received\": true",
        "\"event_name\": \"book.verified\"",
    ] {
        assert!(page.to_lowercase().contains(shown), "{shown} in {page}");
    }
    assert_eq!(receiver.count(), 1);
    browser.shot("test-result").await;

    // Thirty events: the bad book's three fail every try.
    receiver.set(Behavior::FailWhenBodyHas(BAD_BOOK.into()));
    for n in 0..30 {
        let book = if n % 10 == 0 { BAD_BOOK } else { GOOD_BOOK };
        app.publish(&p, book_event(t.account, book)).await;
    }
    wait_for_status(&app, &t.token, &id, "failed", 3).await;
    wait_for_status(&app, &t.token, &id, "succeeded", 28).await;

    browser.goto(&format!("{base}/deliveries")).await;
    let rows = "#deliveries tbody tr";
    assert_eq!(count(&browser, rows).await, 25, "one page");
    browser.shot("deliveries").await;
    browser.click("#older").await;
    browser
        .expect_text(
            "#deliveries tbody tr:last-child td:nth-child(2)",
            "book.verified test",
        )
        .await;
    assert_eq!(count(&browser, rows).await, 6, "31 in all");
    assert!(!browser.has("#older").await);

    browser.goto(&format!("{base}/deliveries")).await;
    select(&browser, "#f-status", "failed").await;
    browser.fill("#f-book", BAD_BOOK).await;
    browser.click(".filters button[type=submit]").await;
    browser
        .expect_text("#deliveries tbody tr:first-child td:nth-child(4)", "failed")
        .await;
    assert_eq!(count(&browser, rows).await, 3);
    browser.shot("deliveries-failed").await;
    browser.fill("#f-book", "not-a-book").await;
    browser.click(".filters button[type=submit]").await;
    let error = browser.text_of("#filter-error").await;
    assert!(
        error.ends_with("book_uuid: \"not-a-book\" is not a valid uuid"),
        "{error}"
    );

    // One failed delivery: every try's answer, then sent again.
    browser
        .goto(&format!("{base}/deliveries?status=failed"))
        .await;
    browser.click("#deliveries tbody tr:first-child a").await;
    browser.text_of("#attempt-4").await;
    let page = browser.text().await;
    assert!(
        page.contains("HTTP 500") && page.contains("refused"),
        "{page}"
    );
    browser.shot("delivery-failed").await;
    let delivery = browser.path().await;
    receiver.set(Behavior::Status(200));
    browser.click("#redeliver").await;
    wait_for_status(&app, &t.token, &id, "failed", 2).await;
    browser.goto(&format!("{}{delivery}", app.base)).await;
    assert_eq!(browser.text_of("#status").await, "succeeded");
    assert!(browser.has("#attempt-5").await);

    // Recover the last hour's failures.
    browser.goto(&format!("{base}/deliveries")).await;
    let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    browser
        .client
        .execute(
            "document.getElementById('r-since').value = arguments[0];",
            vec![json!(an_hour_ago)],
        )
        .await
        .unwrap();
    browser.click("#recover").await;
    assert_eq!(
        browser.text_of("#notice").await,
        "2 failed deliveries queued again."
    );
    browser.shot("deliveries-recovered").await;
    wait_for_status(&app, &t.token, &id, "succeeded", 31).await;
    browser.close().await;
}

async fn count(browser: &Browser, css: &str) -> usize {
    browser
        .client
        .find_all(fantoccini::Locator::Css(css))
        .await
        .unwrap()
        .len()
}

async fn select(browser: &Browser, css: &str, value: &str) {
    browser
        .client
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}
