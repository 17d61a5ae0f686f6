//! Every webhook operation's success body, field by field, and tenancy.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_with};

const HOOKS: &str = "/v1/account/settings/webhook";

fn is_iso_ms(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 24 && s.ends_with('Z') && chrono_like(s)
}

fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[19] == b'.'
}

#[tokio::test]
async fn add_retrieve_list_update_delete() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let (status, body) = app
        .post(
            HOOKS,
            &t.token,
            json!({"webhook": {"url": "https://bob:s3cret@Example.com/hooks#x", "description": "Main receiver"},
                   "event_names": ["book.verified", "document.upload_failed"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(body["message"], "OK");
    let w = &body["response"];
    let id = w["uuid"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(w["url"], "https://bob:****@example.com/hooks");
    assert_eq!(w["description"], "Main receiver");
    assert_eq!(w["is_active"], true);
    assert!(is_iso_ms(&w["created_on"]), "{w}");
    assert_eq!(w["created_on"], w["last_modified_date"]);
    assert_eq!(w["signature_scheme"], "ocrolus");
    assert_eq!(w["ordering"], "none");
    assert_eq!(w["max_in_flight"], 16);
    assert_eq!(w["account_uuids"], json!([]), "every account of the org");
    assert_eq!(w["headers"], json!({}));
    assert_eq!(
        w["retry_gaps_ms"],
        json!([
            5000, 180000, 600000, 1800000, 7200000, 21600000, 43200000, 86400000
        ]),
        "the node's schedule"
    );
    assert_eq!(w["timeout_ms"], 5000, "the node's timeout");
    assert_eq!(w["disabled_reason"], Value::Null);
    assert_eq!(w["disabled_at"], Value::Null);
    let keys: Vec<&String> = w.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 15, "{keys:?}");
    assert!(!body.to_string().contains("s3cret"));

    let (status, got) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, body, "retrieve shows what add returned");

    let (status, list) = app.get("/v1/account/settings/webhooks", &t.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!({"status": 200, "message": "OK", "response": {"webhooks": [
            {"uuid": id, "description": "Main receiver", "is_active": true, "url": "https://bob:****@example.com/hooks"}
        ]}})
    );

    let (status, events) = app.get(&format!("{HOOKS}/{id}/events"), &t.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        events["response"]["events"],
        json!([
            {"uuid": "2e94ede0-1c04-5f05-a639-f800e25850ca", "name": "book.verified",
             "description": "Indicates that all documents within a book have been verified or rejected. This event corresponds to the BOOK_COMPLETE status returned by the Book status. To learn more about various book statuses, see Book Status endpoint.",
             "severity": "MODERATE", "type": "STATUS", "is_active": true, "reason": "Book is verified"},
            {"uuid": events["response"]["events"][1]["uuid"], "name": "document.upload_failed",
             "description": "This event indicates that the upload of a document has failed.",
             "severity": "MODERATE", "type": "ISSUE", "is_active": true, "reason": "Document upload failed"},
        ])
    );

    app.clock.advance_ms(1500);
    let update = json!({"webhook": {"url": "https://example.com/v2", "description": "Renamed", "is_active": false,
                                    "ordering": "per_book", "max_in_flight": 4, "signature_scheme": "standard-webhooks"},
                        "event_names": ["plaid.upload_failed"]});
    let (status, body) = app
        .post(&format!("{HOOKS}/{id}/update"), &t.token, update)
        .await;
    assert_eq!(
        (status, &body),
        (
            StatusCode::OK,
            &json!({"status": 200, "message": "OK", "response": {}})
        )
    );
    let (_, got) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    let w = &got["response"];
    assert_eq!(w["url"], "https://example.com/v2");
    assert_eq!(w["description"], "Renamed");
    assert_eq!(w["is_active"], false);
    assert_eq!(w["ordering"], "per_book");
    assert_eq!(w["max_in_flight"], 4);
    assert_eq!(w["signature_scheme"], "standard-webhooks");
    assert_ne!(w["last_modified_date"], w["created_on"]);
    let (_, events) = app.get(&format!("{HOOKS}/{id}/events"), &t.token).await;
    let names: Vec<&str> = events["response"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["plaid.upload_failed"],
        "event_names replaces the subscriptions"
    );

    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("{HOOKS}/{id}/delete"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(
        (status, &body),
        (
            StatusCode::OK,
            &json!({"status": 200, "message": "OK", "response": {}})
        )
    );
    let gone = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_error(
        &gone,
        404,
        4004,
        &format!("Webhook with uuid {id} not found"),
    );
    let (_, list) = app.get("/v1/account/settings/webhooks", &t.token).await;
    assert_eq!(list["response"]["webhooks"], json!([]));
}

#[tokio::test]
async fn rotate_secret_per_scheme_and_never_shown() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = app
        .add_webhook(&t.token, "https://example.com/a", &["book.verified"])
        .await;
    let path = format!("{HOOKS}/{id}/rotate-secret");
    let (status, body) = app
        .post(
            &path,
            &t.token,
            json!({"secret_key": "a-secret-of-20-chars"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "status": 200,
            "message": "Webhook secret rotated successfully",
            "response": {"status": "success", "message": "Webhook secret rotated successfully"}
        }),
        "both readings Ocrolus documents"
    );
    let (_, got) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert!(!got.to_string().contains("a-secret-of-20-chars"));

    let short = app
        .post(&path, &t.token, json!({"secret_key": "short"}))
        .await;
    assert_error(
        &short,
        400,
        2050,
        "secret_key: must be between 16 and 128 characters for the ocrolus signature scheme",
    );
    let missing = app.post(&path, &t.token, json!({})).await;
    assert_error(
        &missing,
        400,
        2051,
        "secret_key: is required for the ocrolus signature scheme",
    );

    // Switching to standard-webhooks with the ocrolus secret still set is
    // refused by update, and done atomically by rotate-secret.
    let switch = app
        .post(
            &format!("{HOOKS}/{id}/update"),
            &t.token,
            json!({"webhook": {"signature_scheme": "standard-webhooks"}}),
        )
        .await;
    assert_eq!(switch.1["code"], 2052, "{}", switch.1);
    let (status, body) = app
        .post(
            &path,
            &t.token,
            json!({"signature_scheme": "standard-webhooks"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let generated = body["response"]["secret_key"].as_str().unwrap();
    assert!(generated.starts_with("whsec_"));
    let (_, got) = app.get(&format!("{HOOKS}/{id}"), &t.token).await;
    assert_eq!(got["response"]["signature_scheme"], "standard-webhooks");
    assert!(!got.to_string().contains(generated));
}

#[tokio::test]
async fn catalog_lists_every_type_with_schema_and_example() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let member = app.account(t.org, orghooks_store::Role::Member).await;
    let (status, body) = app
        .get("/v1/account/settings/webhook_events", &member.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = body["response"]["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        31,
        "the 23 seed types, the 4 beta and the 4 operational ones"
    );
    assert!(
        events[27..]
            .iter()
            .all(|e| e["operational"] == true && e["beta"] == false)
    );
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../orghooks-core/catalog");
    let catalog: Value =
        serde_json::from_str(&std::fs::read_to_string(seed.join("catalog.json")).unwrap()).unwrap();
    for (got, want) in events.iter().zip(catalog.as_array().unwrap()) {
        for key in [
            "uuid",
            "name",
            "description",
            "severity",
            "type",
            "reason",
            "is_active",
            "beta",
            "required",
            "twins",
        ] {
            assert_eq!(got[key], want[key], "{}: {key}", want["name"]);
        }
        let example: Value = serde_json::from_str(
            &std::fs::read_to_string(seed.join(want["example"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(got["example"], example);
        assert_eq!(got["schema"]["type"], "object");
    }
}

#[tokio::test]
async fn orgs_cannot_see_or_touch_each_others_webhooks() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let id = app
        .add_webhook(&a.token, "https://example.com/a", &["book.verified"])
        .await;
    let not_found = format!("Webhook with uuid {id} not found");
    assert_error(
        &app.get(&format!("{HOOKS}/{id}"), &b.token).await,
        404,
        4004,
        &not_found,
    );
    assert_error(
        &app.get(&format!("{HOOKS}/{id}/events"), &b.token).await,
        404,
        4004,
        &not_found,
    );
    let update = app
        .post(
            &format!("{HOOKS}/{id}/update"),
            &b.token,
            json!({"webhook": {"description": "mine now"}}),
        )
        .await;
    assert_error(&update, 404, 4004, &not_found);
    let rotate = app
        .post(
            &format!("{HOOKS}/{id}/rotate-secret"),
            &b.token,
            json!({"secret_key": "0123456789abcdef"}),
        )
        .await;
    assert_error(&rotate, 404, 4004, &not_found);
    let delete = app
        .call(
            Method::DELETE,
            &format!("{HOOKS}/{id}/delete"),
            Some(&b.token),
            None,
        )
        .await;
    assert_error(&delete, 404, 4004, &not_found);
    let (_, list) = app.get("/v1/account/settings/webhooks", &b.token).await;
    assert_eq!(list["response"]["webhooks"], json!([]));
    // The same URL is free in another org; a's webhook is untouched.
    app.add_webhook(&b.token, "https://example.com/a", &["book.verified"])
        .await;
    let (status, got) = app.get(&format!("{HOOKS}/{id}"), &a.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["response"]["description"], "test hook");
}

#[tokio::test]
async fn members_may_read_the_catalog_but_not_manage_webhooks() {
    let app = spawn_app().await;
    let manager = app.tenant().await;
    let member = app.account(manager.org, orghooks_store::Role::Member).await;
    let id = app
        .add_webhook(&manager.token, "https://example.com/a", &["book.verified"])
        .await;
    let forbidden = "Account does not have required manager permissions";
    let m = &member.token;
    let body =
        json!({"webhook": {"url": "https://example.com/b"}, "event_names": ["book.verified"]});
    assert_error(&app.post(HOOKS, m, body).await, 403, 1316, forbidden);
    assert_error(
        &app.get("/v1/account/settings/webhooks", m).await,
        403,
        1316,
        forbidden,
    );
    assert_error(
        &app.get(&format!("{HOOKS}/{id}"), m).await,
        403,
        1316,
        forbidden,
    );
    assert_error(
        &app.get(&format!("{HOOKS}/{id}/events"), m).await,
        403,
        1316,
        forbidden,
    );
    let update = app
        .post(
            &format!("{HOOKS}/{id}/update"),
            m,
            json!({"event_names": ["book.verified"]}),
        )
        .await;
    assert_error(&update, 403, 1316, forbidden);
    let rotate = app
        .post(
            &format!("{HOOKS}/{id}/rotate-secret"),
            m,
            json!({"secret_key": "0123456789abcdef"}),
        )
        .await;
    assert_error(&rotate, 403, 1316, forbidden);
    let delete = app
        .call(
            Method::DELETE,
            &format!("{HOOKS}/{id}/delete"),
            Some(m),
            None,
        )
        .await;
    assert_error(&delete, 403, 1316, forbidden);
    let (status, _) = app.get("/v1/account/settings/webhook_events", m).await;
    assert_eq!(status, StatusCode::OK);
}

/// Lenient where Ocrolus is: a JSON body is taken whatever its
/// `Content-Type` (or none), and one trailing slash is ignored.
#[tokio::test]
async fn json_without_its_content_type_and_a_trailing_slash_are_accepted() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let body = json!({"webhook": {"url": "https://example.com/lenient"}, "event_names": ["book.verified"]});
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .client
            .post(format!("{}/v1/account/settings/webhook/", app.base))
            .bearer_auth(&t.token)
            .body(body.to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap();
        if content_type.is_none() {
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["response"]["url"], "https://example.com/lenient");
        } else {
            // The same URL again: parsed and judged, not refused for its type.
            assert_eq!(answer["code"], 2005, "{content_type:?}: {answer}");
        }
    }
    let (status, list) = app.get("/v1/account/settings/webhooks/", &t.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["response"]["webhooks"].as_array().unwrap().len(), 1);
    let (status, _) = app.get("/v1/account/settings/webhooks//", &t.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only one slash is forgiven");
}

#[tokio::test]
async fn ocrolus_error_status_answers_errors_with_200_on_ocrolus_routes_only() {
    let app =
        spawn_with(|c| c.http.error_status = orghooks_server::config::ErrorStatus::Ocrolus).await;
    let t = app.tenant().await;
    let missing = uuid::Uuid::new_v4();
    let got = app.get(&format!("{HOOKS}/{missing}"), &t.token).await;
    assert_eq!(got.0, StatusCode::OK, "HTTP 200, as Ocrolus answers");
    assert_eq!(got.1["status"], 404, "the real status is in the body");
    assert_eq!(got.1["code"], 4004);
    assert_eq!(
        got.1["message"],
        format!("Webhook with uuid {missing} not found")
    );
    let bad = app
        .post(
            HOOKS,
            &t.token,
            json!({"webhook": {"url": "ftp://x.example"}, "event_names": ["book.verified"]}),
        )
        .await;
    assert_eq!(bad.0, StatusCode::OK);
    assert_eq!(
        (bad.1["status"].clone(), bad.1["code"].clone()),
        (json!(400), json!(2000))
    );
    // The publish API is orghooks's own: its errors keep their status.
    let publisher = app.publisher_token().await;
    let refused = app.publish(&publisher, json!({"payload": {}})).await;
    assert_eq!(refused.0, StatusCode::BAD_REQUEST, "{}", refused.1);
    // By default errors answer their own status.
    let app = spawn_app().await;
    let t = app.tenant().await;
    let got = app.get(&format!("{HOOKS}/{missing}"), &t.token).await;
    assert_error(
        &got,
        404,
        4004,
        &format!("Webhook with uuid {missing} not found"),
    );
}
