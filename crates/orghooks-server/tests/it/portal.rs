//! Portal links (`POST /v1/portal/sessions`) and the dashboard's other
//! edges: a link opens the dashboard once, before it expires, for its
//! organization only; read-only links change nothing; failed sign-ins are
//! rate limited; cookies are `Secure` behind TLS; framing follows
//! `http.frame_ancestors`.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::dashboard::{page, plain, session};
use crate::helpers::{TestApp, assert_error, spawn_app, spawn_with};

/// Asks for a portal link; answers status and body.
async fn portal_link(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post("/v1/portal/sessions", token, body).await
}

/// The link's one-time token (the URL's fragment).
fn link_token(body: &Value) -> String {
    let url = body["response"]["url"].as_str().unwrap();
    url.split_once('#').unwrap().1.to_owned()
}

/// Opens a link over HTTP as the portal page's script does: the session
/// cookie, or the refusal's status.
async fn open(app: &TestApp, link: &str) -> Result<String, StatusCode> {
    let resp = plain()
        .post(format!("{}/dashboard/portal", app.base))
        .form(&[("link", link)])
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::SEE_OTHER {
        return Err(resp.status());
    }
    assert_eq!(resp.headers()[LOCATION], "/dashboard/webhooks");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    Ok(set.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn a_portal_link_opens_its_orgs_dashboard_once_and_expires() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let hook = app
        .add_webhook(
            &t.token,
            "https://receiver.example.com/mine",
            &["book.verified"],
        )
        .await;
    let foreign = app
        .add_webhook(
            &other.token,
            "https://receiver.example.com/theirs",
            &["book.verified"],
        )
        .await;
    let p = app.publisher_token().await;

    let (status, body) = portal_link(&app, &p, json!({"org_uuid": t.org, "ttl_secs": 600})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["response"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/dashboard/portal#ohl_", app.base)),
        "{url}"
    );
    assert_eq!(body["response"]["read_only"], false);
    let link = link_token(&body);

    if let Some(browser) = Browser::start("portal", 1280).await {
        browser.goto(url).await;
        browser.expect_path("/dashboard/webhooks").await;
        let text = browser.text().await;
        assert!(text.contains("receiver.example.com/mine"), "{text}");
        assert!(!text.contains("receiver.example.com/theirs"), "{text}");
        assert!(text.contains("portal"), "{text}");
        browser.shot("portal").await;
        browser.goto(url).await; // the same link again
        assert_eq!(
            browser.text_of("#portal-error").await,
            "This portal link was already used or has expired. Ask for a new one."
        );
        browser.shot("portal-used").await;
        browser.close().await;
    } else {
        open(&app, &link).await.unwrap();
    }
    assert_eq!(
        open(&app, &link).await,
        Err(StatusCode::FORBIDDEN),
        "used once"
    );
    assert_eq!(open(&app, "ohl_made-up").await, Err(StatusCode::FORBIDDEN));

    // A fresh link: its session sees this org only, can change it, and ends.
    let (_, body) = portal_link(&app, &p, json!({"org_uuid": t.org, "ttl_secs": 60})).await;
    let cookie = open(&app, &link_token(&body)).await.unwrap();
    let (status, html) = page(&app, &cookie, "/dashboard/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Add webhook"), "a portal session may change");
    let (status, _) = page(&app, &cookie, &format!("/dashboard/webhooks/{hook}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = page(&app, &cookie, &format!("/dashboard/webhooks/{foreign}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another org's webhook");
    app.clock.advance_ms(61_000);
    let resp = plain()
        .get(format!("{}/dashboard/webhooks", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "the session ended");

    // A link not opened in time does not open.
    let (_, body) = portal_link(&app, &p, json!({"org_uuid": t.org, "ttl_secs": 60})).await;
    app.clock.advance_ms(60_000);
    assert_eq!(
        open(&app, &link_token(&body)).await,
        Err(StatusCode::FORBIDDEN)
    );
}

#[tokio::test]
async fn a_read_only_portal_session_changes_nothing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let hook = app
        .add_webhook(
            &t.token,
            "https://receiver.example.com/h",
            &["book.verified"],
        )
        .await;
    let p = app.publisher_token().await;
    let (_, body) = portal_link(&app, &p, json!({"org_uuid": t.org, "read_only": true})).await;
    assert_eq!(body["response"]["read_only"], true);
    let cookie = open(&app, &link_token(&body)).await.unwrap();
    let (_, html) = page(&app, &cookie, &format!("/dashboard/webhooks/{hook}")).await;
    assert!(html.contains("portal · read-only"), "{html}");
    assert!(!html.contains("Add webhook") && !html.contains("Delete…"));
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let resp = plain()
        .post(format!("{}/dashboard/webhooks/{hook}/delete", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, _) = app
        .get(&format!("/v1/account/settings/webhook/{hook}"), &t.token)
        .await;
    assert_eq!(status, StatusCode::OK, "still there");
}

#[tokio::test]
async fn portal_link_requests_are_checked_field_by_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let got = portal_link(&app, &p, json!({"org_uuid": t.org, "ttl_secs": 10})).await;
    assert_error(
        &got,
        400,
        1003,
        "Request validation failure; check parameter values and types: \
         ttl_secs: 10 is not a number of seconds from 60 to 86400",
    );
    let got = portal_link(&app, &p, json!({"ttl_secs": 100})).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    assert!(
        got.1["message"].as_str().unwrap().contains("org_uuid"),
        "{}",
        got.1
    );
    let got = portal_link(&app, &p, json!({"org_uuid": t.org, "colour": "red"})).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST);
    assert!(
        got.1["message"].as_str().unwrap().contains("colour"),
        "{}",
        got.1
    );
    let nobody = uuid::Uuid::new_v4();
    let got = portal_link(&app, &p, json!({"org_uuid": nobody})).await;
    assert_error(
        &got,
        404,
        4004,
        &format!("Organization with uuid {nobody} not found"),
    );
    let (status, _) = portal_link(&app, &t.token, json!({"org_uuid": t.org})).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "an account token cannot make portal links: {status}"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_like_the_api() {
    let app = spawn_with(|c| {
        c.auth.rate_limit_burst = 2;
        c.auth.rate_limit_per_minute = 1;
    })
    .await;
    let t = app.tenant().await;
    let other = app.account(t.org, orghooks_store::Role::Manager).await;
    let sign_in = |secret: &str| {
        plain()
            .post(format!("{}/dashboard/login", app.base))
            .form(&[
                ("client_id", t.client_id.as_str()),
                ("client_secret", secret),
            ])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            sign_in("wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = sign_in(&t.client_secret).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "60");
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins with this client ID; try again in 60 s.")
    );
    let token = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .json(&json!({"grant_type": "client_credentials", "client_id": t.client_id, "client_secret": t.client_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        token.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the API counts them too"
    );
    // Another client id is not held back; time refills the allowance.
    session(&app, &other).await;
    app.clock.advance_ms(60_000);
    assert_eq!(
        sign_in(&t.client_secret).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_tls_and_framing_follows_the_config() {
    let app = spawn_with(|c| c.http.frame_ancestors = vec!["https://app.example.com".into()]).await;
    let t = app.tenant().await;
    let login = |proto: Option<&str>| {
        let mut request = plain()
            .post(format!("{}/dashboard/login", app.base))
            .form(&[
                ("client_id", &t.client_id),
                ("client_secret", &t.client_secret),
            ]);
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        request.send()
    };
    let cookie = |resp: &reqwest::Response| resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let tls = login(Some("https")).await.unwrap();
    assert!(cookie(&tls).contains("; Secure"), "{}", cookie(&tls));
    let plain_http = login(None).await.unwrap();
    assert!(
        !cookie(&plain_http).contains("Secure"),
        "{}",
        cookie(&plain_http)
    );

    let p = app.publisher_token().await;
    let (_, body) = portal_link(&app, &p, json!({"org_uuid": t.org})).await;
    let resp = plain()
        .post(format!("{}/dashboard/portal", app.base))
        .header("x-forwarded-proto", "https")
        .form(&[("link", link_token(&body))])
        .send()
        .await
        .unwrap();
    let set = cookie(&resp);
    assert!(
        set.contains("SameSite=None") && set.contains("Secure") && set.contains("Partitioned"),
        "a framed portal session is a cross-site cookie: {set}"
    );

    let resp = plain()
        .get(format!("{}/dashboard/login", app.base))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors https://app.example.com;"),
        "{csp}"
    );
    assert!(resp.headers().get("x-frame-options").is_none());
}

#[tokio::test]
async fn a_dashboard_sign_in_ends_after_dashboard_session_ttl_secs() {
    let app = spawn_with(|c| c.dashboard.session_ttl_secs = 60).await;
    let t = app.tenant().await;
    let resp = plain()
        .post(format!("{}/dashboard/login", app.base))
        .form(&[
            ("client_id", &t.client_id),
            ("client_secret", &t.client_secret),
        ])
        .send()
        .await
        .unwrap();
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.contains("Max-Age=60"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let (status, _) = page(&app, &cookie, "/dashboard/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance_ms(60_000);
    let resp = plain()
        .get(format!("{}/dashboard/webhooks", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/dashboard/login");
}
