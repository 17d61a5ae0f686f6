//! `POST /oauth/token` in its three forms, and what a token stops working for.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_with};

async fn token_call(
    app: &crate::helpers::TestApp,
    req: reqwest::RequestBuilder,
) -> (StatusCode, Value) {
    let _ = app;
    let resp = req.send().await.unwrap();
    let status = resp.status();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn client_credentials_as_json_form_or_basic() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let url = format!("{}/oauth/token", app.base);
    let forms = [
        app.client.post(&url).json(&json!({
            "grant_type": "client_credentials", "client_id": t.client_id,
            "client_secret": t.client_secret, "audience": "https://api.ocrolus.com/", "scope": "x"})),
        app.client.post(&url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &t.client_id),
            ("client_secret", &t.client_secret),
        ]),
        app.client
            .post(&url)
            .basic_auth(&t.client_id, Some(&t.client_secret))
            .form(&[("grant_type", "client_credentials")]),
        // Ocrolus clients send Basic credentials and no body at all.
        app.client
            .post(&url)
            .basic_auth(&t.client_id, Some(&t.client_secret)),
    ];
    for req in forms {
        let (status, body) = token_call(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 86_400, "Ocrolus's documented lifetime");
        let token = body["access_token"].as_str().unwrap();
        let (status, _) = app.get("/v1/account/settings/webhooks", token).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn token_errors_follow_rfc_6749() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let url = format!("{}/oauth/token", app.base);
    let cases = [
        (
            json!({"grant_type": "client_credentials", "client_id": t.client_id, "client_secret": "wrong"}),
            401,
            "invalid_client",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}),
            401,
            "invalid_client",
        ),
        (
            json!({"grant_type": "password", "client_id": t.client_id, "client_secret": t.client_secret}),
            400,
            "unsupported_grant_type",
        ),
        (
            json!({"client_id": t.client_id, "client_secret": t.client_secret}),
            400,
            "invalid_request",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": t.client_id}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, error) in cases {
        let (got, answer) = token_call(&app, app.client.post(&url).json(&body)).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(answer["error"], error, "{body}");
    }
}

#[tokio::test]
async fn missing_malformed_unknown_and_expired_tokens() {
    let app = spawn_with(|c| c.auth.token_ttl_secs = 60).await;
    let t = app.tenant().await;
    let path = "/v1/account/settings/webhooks";
    let none = app.call(reqwest::Method::GET, path, None, None).await;
    assert_error(
        &none,
        401,
        1200,
        "Authentication failed: Authorization: a Bearer token is required",
    );
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .header("authorization", "Token abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Authentication failed: Authorization: expected \"Bearer <access token>\""
    );
    let unknown = app.get(path, "oht_not-a-real-token").await;
    assert_error(
        &unknown,
        401,
        1200,
        "Authentication failed: Authorization: unknown access token",
    );

    // The clock moves to one millisecond before expiry, then past it.
    app.clock.advance_ms(60_000 - 1);
    assert_eq!(app.get(path, &t.token).await.0, StatusCode::OK);
    app.clock.advance_ms(1);
    let expired = app.get(path, &t.token).await;
    assert_error(
        &expired,
        401,
        4002,
        "Authorization: access token expired; request a new one",
    );
    let fresh = app.token(&t.client_id, &t.client_secret).await;
    assert_eq!(app.get(path, &fresh).await.0, StatusCode::OK);
}

#[tokio::test]
async fn disabling_an_account_stops_its_tokens_at_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = "/v1/account/settings/webhooks";
    assert_eq!(app.get(path, &t.token).await.0, StatusCode::OK);
    app.admin.set_disabled(t.account, true).await.unwrap();
    let refused = app.get(path, &t.token).await;
    assert_error(&refused, 401, 1307, "Account is not active");
    let url = format!("{}/oauth/token", app.base);
    let req = app.client.post(&url).json(&json!({
        "grant_type": "client_credentials", "client_id": t.client_id, "client_secret": t.client_secret}));
    let (status, body) = token_call(&app, req).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    app.admin.set_disabled(t.account, false).await.unwrap();
    assert_eq!(app.get(path, &t.token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn each_account_has_its_own_allowance_of_management_calls() {
    let app = spawn_with(|c| {
        c.auth.rate_limit_burst = 3;
        c.auth.rate_limit_per_minute = 60;
    })
    .await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let path = "/v1/account/settings/webhooks";
    for _ in 0..3 {
        assert_eq!(app.get(path, &t.token).await.0, StatusCode::OK);
    }
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 1005);
    assert_eq!(
        body["message"],
        "Request verification rate limit exceeded: Authorization: too many calls from this API account; retry in 1 s"
    );
    assert_eq!(
        app.get(path, &other.token).await.0,
        StatusCode::OK,
        "other accounts are not held up"
    );
    // One call a second comes back as the clock moves.
    app.clock.advance_ms(1000);
    assert_eq!(app.get(path, &t.token).await.0, StatusCode::OK);
    assert_eq!(
        app.get(path, &t.token).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}
