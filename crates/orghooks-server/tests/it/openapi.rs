//! The OpenAPI document covers every route the router serves, and the
//! operator endpoints answer.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

/// Every route of SPEC §2 and the operator endpoints.
const EXPECTED: &[(&str, &str)] = &[
    ("POST", "/oauth/token"),
    ("POST", "/v1/account/settings/webhook"),
    ("GET", "/v1/account/settings/webhooks"),
    ("GET", "/v1/account/settings/webhook/{webhook_uuid}"),
    ("POST", "/v1/account/settings/webhook/{webhook_uuid}/update"),
    (
        "DELETE",
        "/v1/account/settings/webhook/{webhook_uuid}/delete",
    ),
    ("GET", "/v1/account/settings/webhook/{webhook_uuid}/events"),
    (
        "POST",
        "/v1/account/settings/webhook/{webhook_uuid}/rotate-secret",
    ),
    ("POST", "/v1/account/settings/webhook/{webhook_uuid}/test"),
    (
        "GET",
        "/v1/account/settings/webhook/{webhook_uuid}/deliveries",
    ),
    (
        "GET",
        "/v1/account/settings/webhook/{webhook_uuid}/delivery/{delivery_uuid}",
    ),
    (
        "POST",
        "/v1/account/settings/webhook/{webhook_uuid}/delivery/{delivery_uuid}/redeliver",
    ),
    (
        "POST",
        "/v1/account/settings/webhook/{webhook_uuid}/recover",
    ),
    ("GET", "/v1/account/settings/webhook_events"),
    ("POST", "/v1/account/settings/update/webhook_endpoint"),
    ("GET", "/v1/account/settings/webhook_details"),
    ("GET", "/v1/account/settings/test_webhook_endpoint"),
    ("POST", "/v1/account/settings/webhook/rotate-secret"),
    ("POST", "/v1/events"),
    ("POST", "/v1/events/batch"),
    ("POST", "/v1/portal/sessions"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test]
async fn every_served_route_is_documented_and_only_those() {
    let app = spawn_app().await;
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let documented = documented(&doc);
    let expected: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    // Each documented route is really served: never the router's own 404/405.
    for (method, path) in &documented {
        let path = path
            .replace("{webhook_uuid}", &uuid::Uuid::new_v4().to_string())
            .replace("{delivery_uuid}", &uuid::Uuid::new_v4().to_string());
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (_, body) = app.call(method.clone(), &path, None, None).await;
        assert!(
            body["code"] != 1101 && body["code"] != 4005,
            "{method} {path} is documented but not served: {body}"
        );
    }
    // Undocumented routes are not served.
    let (status, body) = app
        .call(Method::GET, "/v1/account/settings/secret-admin", None, None)
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &Value::from(1101))
    );
    // Every error code is documented on the error envelope.
    let codes = &doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["code"]["enum"];
    let expected: Vec<u32> = orghooks_server::http::error::ErrorCode::ALL
        .iter()
        .map(|c| c.code())
        .collect();
    assert_eq!(codes, &serde_json::json!(expected));
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app().await;
    let (status, body) = app.call(Method::GET, "/health/live", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = app.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
    let _ = app
        .call(Method::GET, "/v1/account/settings/webhooks", None, None)
        .await;
    let (status, Value::String(text)) = app.call(Method::GET, "/metrics", None, None).await else {
        panic!("metrics are text")
    };
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"orghooks_http_requests_total{method="GET",route="/v1/account/settings/webhooks",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("orghooks_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

/// A worker only delivers: it serves health, metrics and the document, and
/// the document lists only those. An api node serves every route.
#[tokio::test]
async fn each_role_serves_only_its_routes() {
    use orghooks_server::config::NodeRole;
    let worker = crate::helpers::spawn_postgres_with(|c| c.node.role = NodeRole::Worker).await;
    let (status, body) = worker
        .call(
            Method::GET,
            "/v1/account/settings/webhooks",
            Some("x"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], 1101);
    let (status, _) = worker
        .call(
            Method::POST,
            "/v1/events",
            Some("x"),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let (status, _) = worker.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (_, doc) = worker.call(Method::GET, "/openapi.json", None, None).await;
    let served: BTreeSet<String> = documented(&doc).into_iter().map(|(_, p)| p).collect();
    let operations: BTreeSet<String> =
        ["/health/live", "/health/ready", "/metrics", "/openapi.json"]
            .map(str::to_owned)
            .into();
    assert_eq!(served, operations);

    let api = crate::helpers::spawn_postgres_with(|c| c.node.role = NodeRole::Api).await;
    let t = api.tenant().await;
    let (status, body) = api.get("/v1/account/settings/webhooks", &t.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, doc) = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(documented(&doc).len(), EXPECTED.len());
    let names = &doc["paths"]["/v1/account/settings/webhook/{webhook_uuid}/deliveries"]["get"]
        ["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "event_name")
        .unwrap()["schema"]["enum"];
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "book.verified"),
        "{names}"
    );
}
