//! Every validation rule of add and update, with status, code and message.

use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_with};

const ADD: &str = "/v1/account/settings/webhook";

fn add(webhook: Value, events: Value) -> Value {
    json!({"webhook": webhook, "event_names": events})
}

#[tokio::test]
async fn add_rules() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let ok_events = json!(["book.verified"]);
    let u = |url: &str| json!({"url": url});
    let cases: Vec<(Value, u32, &str)> = vec![
        (
            add(u("example.com/hook"), ok_events.clone()),
            2000,
            "url: invalid or missing URL scheme",
        ),
        (
            add(u("ftp://example.com/"), ok_events.clone()),
            2000,
            "url: invalid or missing URL scheme",
        ),
        (
            add(u("https://localhostname/hook"), ok_events.clone()),
            2001,
            "url: URL host invalid, top level domain required",
        ),
        (
            add(u("https://localhost/hook"), ok_events.clone()),
            2004,
            "url: address 127.0.0.1 is loopback and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs",
        ),
        (
            add(u("https://bob@example.com/"), ok_events.clone()),
            2002,
            "You need to pass both username and password",
        ),
        (
            add(
                u(&format!("https://example.com/{}", "a".repeat(2048))),
                ok_events.clone(),
            ),
            2003,
            "url: must be at most 2048 characters",
        ),
        (
            add(u("http://127.0.0.1/hook"), ok_events.clone()),
            2004,
            "url: address 127.0.0.1 is loopback and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs",
        ),
        (
            add(u("http://169.254.169.254/latest"), ok_events.clone()),
            2004,
            "url: address 169.254.169.254 is link-local and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs",
        ),
        (
            add(u("http://10.0.0.8/"), ok_events.clone()),
            2004,
            "url: address 10.0.0.8 is private and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs",
        ),
        (
            add(u("http://[::1]/"), ok_events.clone()),
            2004,
            "url: address ::1 is loopback and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs",
        ),
        (
            add(u("http://[::ffff:192.168.0.1]/"), ok_events.clone()),
            2004,
            "url: address ::ffff:192.168.0.1 is private and not allowed as a webhook destination; the operator can allow it with security.allow_cidrs",
        ),
        (
            add(
                json!({"url": "https://example.com/", "description": "ab"}),
                ok_events.clone(),
            ),
            2010,
            "description: length of value must be at least 3",
        ),
        (
            add(
                json!({"url": "https://example.com/", "description": "x".repeat(256)}),
                ok_events.clone(),
            ),
            2011,
            "description: length of value must be at most 255",
        ),
        (
            add(u("https://example.com/"), json!([])),
            2020,
            "event_names: at least one event name is required",
        ),
        (
            add(
                u("https://example.com/"),
                json!(["book.verified", "book.verified"]),
            ),
            2021,
            "event_names: book.verified is listed more than once",
        ),
        (
            add(
                u("https://example.com/"),
                json!(["book.verified", "no.such", "nor.this"]),
            ),
            2022,
            "Event(s) with name no.such, nor.this doesnt exist",
        ),
        (
            add(
                json!({"url": "https://example.com/", "max_in_flight": 0}),
                ok_events.clone(),
            ),
            2040,
            "max_in_flight: must be between 1 and 256",
        ),
        (
            add(
                json!({"url": "https://example.com/", "uuid": "x"}),
                ok_events.clone(),
            ),
            4011,
            "webhook.uuid: is read-only",
        ),
        (
            add(
                json!({"url": "https://example.com/", "created_on": "x"}),
                ok_events.clone(),
            ),
            4011,
            "webhook.created_on: is read-only",
        ),
        (
            add(
                json!({"url": "https://example.com/", "disabled_at": null}),
                ok_events.clone(),
            ),
            4011,
            "webhook.disabled_at: is read-only",
        ),
        (
            add(
                json!({"url": "https://example.com/", "colour": "red"}),
                ok_events.clone(),
            ),
            4010,
            "webhook.colour: unknown field",
        ),
        (
            json!({"webhook": {"url": "https://example.com/"}, "event_names": ["book.verified"], "extra": 1}),
            4010,
            "extra: unknown field",
        ),
        (
            json!({"event_names": ["book.verified"]}),
            1103,
            "Required parameter not found: webhook",
        ),
        (
            json!({"webhook": {"url": "https://example.com/"}}),
            1103,
            "Required parameter not found: event_names",
        ),
        (
            add(json!({"description": "abc"}), ok_events.clone()),
            1103,
            "Required parameter not found: webhook.url",
        ),
        (
            add(
                json!({"url": "https://example.com/", "is_active": "yes"}),
                ok_events.clone(),
            ),
            1003,
            "Request validation failure; check parameter values and types: webhook.is_active: invalid type: string \"yes\", expected a boolean",
        ),
        (
            add(
                json!({"url": "https://example.com/", "ordering": "random"}),
                ok_events.clone(),
            ),
            1003,
            "Request validation failure; check parameter values and types: webhook.ordering: unknown variant `random`, expected `none` or `per_book`",
        ),
        (
            add(json!({"url": 5}), ok_events.clone()),
            1003,
            "Request validation failure; check parameter values and types: webhook.url: invalid type: integer `5`, expected a string",
        ),
        (
            add(u("https://example.com/"), json!("book.verified")),
            1003,
            "Request validation failure; check parameter values and types: event_names: invalid type: string \"book.verified\", expected a sequence",
        ),
    ];
    for (body, code, message) in cases {
        let got = app.post(ADD, &t.token, body.clone()).await;
        assert_eq!(got.1["code"], code, "{body} → {}", got.1);
        assert_error(&got, 400, code, message);
    }
    let (_, list) = app.get("/v1/account/settings/webhooks", &t.token).await;
    assert_eq!(
        list["response"]["webhooks"],
        json!([]),
        "no refused add left a trace"
    );
}

#[tokio::test]
async fn duplicates_and_the_limit() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let first = app
        .add_webhook(&t.token, "https://Example.com:443/a", &["book.verified"])
        .await;
    let dup = app
        .post(
            ADD,
            &t.token,
            add(
                json!({"url": "https://example.com/a"}),
                json!(["book.verified"]),
            ),
        )
        .await;
    assert_error(
        &dup,
        400,
        2005,
        "Webhook with url https://example.com/a already exists",
    );
    for i in 1..5 {
        app.add_webhook(
            &t.token,
            &format!("https://example.com/{i}"),
            &["book.verified"],
        )
        .await;
    }
    let sixth = app
        .post(
            ADD,
            &t.token,
            add(
                json!({"url": "https://example.com/6"}),
                json!(["book.verified"]),
            ),
        )
        .await;
    assert_error(
        &sixth,
        400,
        2030,
        "An organization can have at most 5 webhooks",
    );
    // A deleted webhook counts for neither rule.
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{ADD}/{first}/delete"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    app.add_webhook(&t.token, "https://example.com/a", &["book.verified"])
        .await;
}

#[tokio::test]
async fn update_rules() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = app
        .add_webhook(&t.token, "https://example.com/a", &["book.verified"])
        .await;
    app.add_webhook(&t.token, "https://example.com/b", &["book.verified"])
        .await;
    let path = format!("{ADD}/{id}/update");
    let cases: Vec<(Value, u32, &str)> = vec![
        (json!({}), 4012, "body: give webhook, event_names, or both"),
        (
            json!({"webhook": {"url": "https://example.com/b"}}),
            2005,
            "Webhook with url https://example.com/b already exists",
        ),
        (
            json!({"webhook": {"url": "mailto:x@example.com"}}),
            2000,
            "url: invalid or missing URL scheme",
        ),
        (
            json!({"webhook": {"description": "no"}}),
            2010,
            "description: length of value must be at least 3",
        ),
        (
            json!({"event_names": []}),
            2020,
            "event_names: at least one event name is required",
        ),
        (
            json!({"event_names": ["nope"]}),
            2022,
            "Event(s) with name nope doesnt exist",
        ),
        (
            json!({"webhook": {"uuid": id}}),
            4011,
            "webhook.uuid: is read-only",
        ),
        (
            json!({"webhook": {"last_modified_date": "2024-01-01T00:00:00.000Z"}}),
            4011,
            "webhook.last_modified_date: is read-only",
        ),
        (
            json!({"webhook": {"disabled_reason": "x"}}),
            4011,
            "webhook.disabled_reason: is read-only",
        ),
        (
            json!({"webhook": {"secret": "x"}}),
            4010,
            "webhook.secret: unknown field",
        ),
        (json!({"name": "x"}), 4010, "name: unknown field"),
        (
            json!({"webhook": {"max_in_flight": 1000}}),
            2040,
            "max_in_flight: must be between 1 and 256",
        ),
    ];
    for (body, code, message) in cases {
        let got = app.post(&path, &t.token, body.clone()).await;
        assert_eq!(got.1["code"], code, "{body} → {}", got.1);
        assert_error(&got, 400, code, message);
    }
    let (_, got) = app.get(&format!("{ADD}/{id}"), &t.token).await;
    assert_eq!(
        got["response"]["url"], "https://example.com/a",
        "refused updates change nothing"
    );
}

#[tokio::test]
async fn allow_listed_ranges_may_be_used() {
    let app = spawn_with(|c| c.security.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let t = app.tenant().await;
    app.add_webhook(&t.token, "http://127.0.0.1:9/hook", &["book.verified"])
        .await;
    let refused = app
        .post(
            ADD,
            &t.token,
            add(json!({"url": "http://10.0.0.1/"}), json!(["book.verified"])),
        )
        .await;
    assert_eq!(refused.1["code"], 2004);
}

#[tokio::test]
async fn configured_limit_applies() {
    let app = spawn_with(|c| c.webhooks.max_per_org = 1).await;
    let t = app.tenant().await;
    app.add_webhook(&t.token, "https://example.com/1", &["book.verified"])
        .await;
    let second = app
        .post(
            ADD,
            &t.token,
            add(
                json!({"url": "https://example.com/2"}),
                json!(["book.verified"]),
            ),
        )
        .await;
    assert_error(
        &second,
        400,
        2030,
        "An organization can have at most 1 webhooks",
    );
}

/// An operator catalog (data, no release) replaces the built-in one; an
/// inactive type may not be subscribed to.
#[tokio::test]
async fn operator_catalog_and_inactive_types() {
    let catalog = tempfile::tempdir().unwrap();
    std::fs::write(
        catalog.path().join("catalog.json"),
        r#"[{"name": "loan.funded", "description": "A loan was funded", "severity": "HIGH",
             "type": "STATUS", "reason": "Loan funded", "required": ["event_name", "loan_uuid"],
             "example": "loan.funded.json"},
            {"name": "loan.retired", "description": "Old", "severity": "LOW", "type": "STATUS",
             "is_active": false, "example": "loan.retired.json"}]"#,
    )
    .unwrap();
    std::fs::write(
        catalog.path().join("loan.funded.json"),
        r#"{"event_name": "loan.funded", "loan_uuid": "61d93bbd-8412-4b0b-9e98-693d0b1236d3"}"#,
    )
    .unwrap();
    std::fs::write(
        catalog.path().join("loan.retired.json"),
        r#"{"event_name": "loan.retired"}"#,
    )
    .unwrap();
    let path = catalog.path().to_str().unwrap().to_owned();
    let app = spawn_with(|c| c.catalog.path = path).await;
    let t = app.tenant().await;
    app.add_webhook(&t.token, "https://example.com/a", &["loan.funded"])
        .await;
    let inactive = app
        .post(
            ADD,
            &t.token,
            add(
                json!({"url": "https://example.com/b"}),
                json!(["loan.retired"]),
            ),
        )
        .await;
    assert_error(
        &inactive,
        400,
        2023,
        "event_names: event type loan.retired is not active",
    );
    let seed_type = app
        .post(
            ADD,
            &t.token,
            add(
                json!({"url": "https://example.com/c"}),
                json!(["book.verified"]),
            ),
        )
        .await;
    assert_error(
        &seed_type,
        400,
        2022,
        "Event(s) with name book.verified doesnt exist",
    );
    let (_, listed) = app
        .get("/v1/account/settings/webhook_events", &t.token)
        .await;
    let names: Vec<&str> = listed["response"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "loan.funded",
            "loan.retired",
            "webhook.disabled",
            "webhook.circuit_opened",
            "webhook.circuit_closed",
            "delivery.exhausted"
        ],
        "the operator's types, then orghooks' own notices"
    );
    assert_eq!(
        listed["response"]["events"][0]["uuid"],
        uuid::Uuid::new_v5(
            &orghooks_core::catalog::EVENT_TYPE_NAMESPACE,
            b"loan.funded"
        )
        .to_string()
    );
}
