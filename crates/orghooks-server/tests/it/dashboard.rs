//! The dashboard in a real browser (headless Chromium over WebDriver)
//! against the real server, asserting what a person sees; and its security
//! rules over plain HTTP: sessions, CSRF, roles, tenancy, secrets.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{Tenant, TestApp, book_event, spawn_app};

/// Signs in through the form in the browser.
pub async fn sign_in(browser: &Browser, app: &TestApp, t: &Tenant) {
    browser.goto(&format!("{}/dashboard/login", app.base)).await;
    browser.fill("#client_id", &t.client_id).await;
    browser.fill("#client_secret", &t.client_secret).await;
    browser.click("button[type=submit]").await;
    browser.expect_path("/dashboard/webhooks").await;
}

#[tokio::test]
async fn an_admin_signs_in_adds_a_webhook_sees_errors_by_their_field_and_signs_out() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let Some(browser) = Browser::start("admin", 1280).await else {
        return;
    };
    browser.goto(&format!("{}/dashboard", app.base)).await;
    browser.expect_path("/dashboard/login").await; // signed out: sign in first
    browser.shot("login").await;

    browser.fill("#client_id", &t.client_id).await;
    browser.fill("#client_secret", "not-the-secret").await;
    browser.click("button[type=submit]").await;
    assert!(
        browser
            .text_of("#login-error")
            .await
            .starts_with("Sign-in failed"),
        "{}",
        browser.text().await
    );
    browser.shot("login-failed").await;

    sign_in(&browser, &app, &t).await;
    assert_eq!(browser.text_of("#limit").await, "0 of 5 webhooks");
    assert!(browser.text().await.contains("No webhooks yet."));
    browser.shot("webhooks-empty").await;

    browser.click("a.button").await;
    browser.expect_path("/dashboard/webhooks/new").await;
    browser.shot("add").await;
    // No event chosen: the API's message, next to the events.
    browser
        .fill("#url", "https://receiver.example.com/hooks")
        .await;
    browser.fill("#description", "ab").await;
    browser.click("form.card button[type=submit]").await;
    assert_eq!(
        browser.text_of("#description-error").await,
        "description: length of value must be at least 3"
    );
    assert_eq!(
        browser
            .source()
            .await
            .matches("https://receiver.example.com/hooks")
            .count(),
        1,
        "what was typed is kept"
    );
    browser.shot("add-error").await;
    browser.fill("#description", "Main receiver").await;
    browser.click("form.card button[type=submit]").await;
    assert_eq!(
        browser.text_of("#event_names-error").await,
        "event_names: at least one event name is required"
    );
    browser.click("#event-book\\.verified").await;
    browser.click("form.card button[type=submit]").await;
    browser.text_of("dl.details").await; // the new webhook's page
    let page = browser.text().await;
    assert!(
        page.contains("https://receiver.example.com/hooks"),
        "{page}"
    );
    assert!(page.contains("Events: book.verified"), "{page}");
    assert!(page.contains("Active"), "{page}");
    browser.shot("webhook").await;

    browser
        .goto(&format!("{}/dashboard/webhooks", app.base))
        .await;
    assert_eq!(browser.text_of("#limit").await, "1 of 5 webhooks");
    assert!(browser.text().await.contains("Main receiver"));
    browser.shot("webhooks").await;

    browser.click("button.link").await; // Sign out
    browser.expect_path("/dashboard/login").await;
    browser
        .goto(&format!("{}/dashboard/webhooks", app.base))
        .await;
    browser.expect_path("/dashboard/login").await; // the session is over
    browser.close().await;
}

#[tokio::test]
async fn a_phone_width_page_keeps_a_long_url_and_description_inside_it() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let long_url = format!("https://receiver.example.com/{}", "a".repeat(1950));
    app.post(
        "/v1/account/settings/webhook",
        &t.token,
        json!({"webhook": {"url": long_url, "description": "d".repeat(255)}, "event_names": ["book.verified"]}),
    )
    .await;
    let Some(browser) = Browser::start("phone", 390).await else {
        return;
    };
    sign_in(&browser, &app, &t).await;
    assert!(
        !browser.overflows().await,
        "nothing is wider than the phone's screen"
    );
    browser.shot("webhooks-phone").await;
    let (_, list) = app.get("/v1/account/settings/webhooks", &t.token).await;
    let webhook = list["response"]["webhooks"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    browser
        .goto(&format!(
            "{}/dashboard/webhooks/{webhook}/deliveries",
            app.base
        ))
        .await;
    browser.text_of("form.filters").await;
    assert!(
        !browser.overflows().await,
        "the delivery log fits the phone too"
    );
    browser.shot("deliveries-phone").await;
    browser.close().await;
}

#[tokio::test]
async fn another_orgs_webhook_is_not_found_and_members_cannot_add() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let stranger = app.tenant().await;
    let theirs = app
        .add_webhook(
            &stranger.token,
            "https://their.example.com/",
            &["book.verified"],
        )
        .await;
    let member = app.account(t.org, orghooks_store::Role::Member).await;
    let Some(browser) = Browser::start("member", 1280).await else {
        return;
    };
    sign_in(&browser, &app, &member).await;
    assert!(browser.text().await.contains("member (read-only)"));
    assert!(
        !browser.has("a.button").await,
        "no Add webhook for a member"
    );
    browser
        .goto(&format!("{}/dashboard/webhooks/{theirs}", app.base))
        .await;
    assert!(
        browser
            .text()
            .await
            .contains("No such webhook in your organization.")
    );
    assert!(!browser.text().await.contains("their.example.com"));
    browser.shot("not-found").await;
    browser
        .goto(&format!("{}/dashboard/webhooks/new", app.base))
        .await;
    assert!(
        browser
            .text()
            .await
            .contains("it may look, not add webhooks")
    );
    browser.shot("member-refused").await;
    browser.close().await;
}

/// A client that keeps no cookies and follows no redirects: what each
/// answer really is.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A dashboard page fetched with a session cookie: its status and HTML.
pub async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let resp = plain()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Signs in over HTTP; answers the session cookie and the page's CSRF token.
pub async fn session(app: &TestApp, t: &Tenant) -> (String, String) {
    let client = plain();
    let resp = client
        .post(format!("{}/dashboard/login", app.base))
        .form(&[
            ("client_id", &t.client_id),
            ("client_secret", &t.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{}/dashboard/webhooks", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_the_manager_role() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let member = app.account(t.org, orghooks_store::Role::Member).await;
    let client = plain();
    let add = |cookie: String, csrf: Option<String>| {
        let client = client.clone();
        let url = format!("{}/dashboard/webhooks/new", app.base);
        async move {
            let mut form = vec![
                ("url", "https://receiver.example.com/csrf".to_owned()),
                ("event_names", "book.verified".to_owned()),
                ("signature_scheme", "ocrolus".to_owned()),
                ("ordering", "none".to_owned()),
            ];
            if let Some(csrf) = csrf {
                form.push(("csrf", csrf));
            }
            let resp = client
                .post(url)
                .header(COOKIE, cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (cookie, csrf) = session(&app, &t).await;
    let (status, page) = add(cookie.clone(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("CSRF check failed"), "{page}");
    let (status, _) = add(cookie.clone(), Some("0".repeat(32))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong token is no token");
    let (member_cookie, member_csrf) = session(&app, &member).await;
    let (status, page) = add(member_cookie, Some(member_csrf)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("member role"), "{page}");
    let (_, list) = app.get("/v1/account/settings/webhooks", &t.token).await;
    assert_eq!(list["response"]["webhooks"], json!([]), "nothing was added");
    let (status, _) = add(cookie.clone(), Some(csrf.clone())).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "with its token the same form works"
    );

    // Signing out ends the token itself: a copied cookie is worthless.
    let out = client
        .post(format!("{}/dashboard/logout", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = client
        .get(format!("{}/dashboard/webhooks", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[LOCATION], "/dashboard/login");
}

#[tokio::test]
async fn no_password_or_secret_is_ever_rendered() {
    let app = crate::helpers::spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let receiver =
        crate::receiver::TestReceiver::start(crate::receiver::Behavior::Status(500)).await;
    let url = receiver
        .url("/")
        .replace("http://", "http://user:hunter2-password@");
    let id = app.add_webhook(&t.token, &url, &["book.verified"]).await;
    let secret = "a-signing-secret-of-32-characters";
    app.set_secret(&t.token, &id, secret).await;
    // A failed attempt keeps its request headers: Basic auth among them.
    let p = app.publisher_token().await;
    app.publish(&p, book_event(t.account)).await;
    let attempted = app.first_attempted(&t.token, &id).await;
    let delivery = attempted["response"]["uuid"].as_str().unwrap();
    let basic = receiver.requests()[0].header("authorization").to_owned();
    assert!(basic.starts_with("Basic "), "{basic}");
    let (cookie, _) = session(&app, &t).await;
    for path in [
        "/dashboard/webhooks".to_owned(),
        format!("/dashboard/webhooks/{id}"),
        format!("/dashboard/webhooks/{id}/edit"),
        format!("/dashboard/webhooks/{id}/test"),
        format!("/dashboard/webhooks/{id}/deliveries"),
        format!("/dashboard/webhooks/{id}/deliveries/{delivery}"),
    ] {
        let (_, html) = page(&app, &cookie, &path).await;
        let shown = if path.ends_with(delivery) {
            "Basic ****" // the attempt's request headers
        } else {
            "user:****@127.0.0.1"
        };
        assert!(html.contains(shown), "{path}: {html}");
        assert!(!html.contains("hunter2"), "{path}");
        assert!(!html.contains(&basic["Basic ".len()..]), "{path}");
        assert!(!html.contains(secret), "{path}");
        assert!(!html.contains(&t.client_secret), "{path}");
    }
}

#[tokio::test]
async fn pages_forbid_framing_and_foreign_scripts() {
    let app = spawn_app().await;
    let resp = plain()
        .get(format!("{}/dashboard/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn an_admin_edits_turns_off_and_on_sets_a_secret_and_deletes() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = app
        .add_webhook(
            &t.token,
            "https://user:pw-secret@receiver.example.com/",
            &["book.verified"],
        )
        .await;
    let Some(browser) = Browser::start("manage", 1280).await else {
        return;
    };
    sign_in(&browser, &app, &t).await;
    let page = format!("{}/dashboard/webhooks/{id}", app.base);
    browser.goto(&page).await;

    // Edit: the masked URL stays as it is; the description and events change.
    browser.click("a.button[href$='/edit']").await;
    browser.text_of("h1").await;
    browser.fill("#description", "Renamed receiver").await;
    browser.click("#event-document\\.upload_failed").await;
    browser.fill("#headers", "X-Api-Key: key-abc-secret").await;
    browser.fill("#retry_gaps_ms", "1000, 5000").await;
    browser.fill("#timeout_ms", "3000").await;
    browser.shot("edit").await;
    browser.click("form.card button[type=submit]").await;
    browser
        .expect_path(&format!("/dashboard/webhooks/{id}"))
        .await;
    assert_eq!(browser.text_of("#headers-shown").await, "X-Api-Key: ****");
    assert_eq!(browser.text_of("#retry-shown").await, "1000, 5000 ms");
    let (_, got) = app
        .get(&format!("/v1/account/settings/webhook/{id}"), &t.token)
        .await;
    assert_eq!(got["response"]["description"], "Renamed receiver");
    assert_eq!(got["response"]["headers"], json!({"X-Api-Key": "****"}));
    assert_eq!(got["response"]["retry_gaps_ms"], json!([1000, 5000]));
    assert_eq!(got["response"]["timeout_ms"], 3000);
    // The edit form shows the header masked; saving it keeps the value.
    browser.click("a.button[href$='/edit']").await;
    browser
        .expect_path(&format!("/dashboard/webhooks/{id}/edit"))
        .await;
    assert!(!browser.source().await.contains("key-abc-secret"));
    browser.click("form.card button[type=submit]").await;
    browser
        .expect_path(&format!("/dashboard/webhooks/{id}"))
        .await;
    assert_eq!(browser.text_of("#headers-shown").await, "X-Api-Key: ****");
    assert_eq!(
        got["response"]["url"],
        "https://user:****@receiver.example.com/"
    );
    let (_, events) = app
        .get(
            &format!("/v1/account/settings/webhook/{id}/events"),
            &t.token,
        )
        .await;
    assert_eq!(events["response"]["events"].as_array().unwrap().len(), 2);

    // Turn it off and on.
    browser.click("#toggle").await;
    browser.expect_text("#toggle", "Activate").await;
    assert!(browser.text().await.contains("Inactive"));
    browser.shot("inactive").await;
    browser.click("#toggle").await;
    browser.expect_text("#toggle", "Deactivate").await;

    // A generated standard-webhooks secret is shown once, then never.
    browser
        .client
        .find(fantoccini::Locator::Css("#secret_scheme"))
        .await
        .unwrap()
        .select_by_value("standard-webhooks")
        .await
        .unwrap();
    browser.click("form.card button[type=submit]").await;
    let secret = browser.text_of("#new-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.shot("secret-shown-once").await;
    browser.goto(&page).await;
    assert!(!browser.source().await.contains(&secret), "shown once only");
    assert!(browser.text().await.contains("standard-webhooks"));
    // A secret that does not fit the scheme: the API's message by the field.
    browser.fill("#secret_key", "too-short").await;
    browser.click("form.card button[type=submit]").await;
    assert!(
        browser
            .text_of("#secret_key-error")
            .await
            .starts_with("secret_key:"),
        "{}",
        browser.text().await
    );

    // Delete, after confirming.
    browser.goto(&page).await;
    browser.click("a.danger").await;
    browser.text_of("#confirm-delete").await;
    browser.shot("delete-confirm").await;
    browser.click("#confirm-delete").await;
    browser.expect_path("/dashboard/webhooks").await;
    assert_eq!(browser.text_of("#limit").await, "0 of 5 webhooks");
    browser.close().await;
}

#[tokio::test]
async fn delivery_pages_are_the_orgs_own_and_read_only_for_members() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let stranger = app.tenant().await;
    let p = app.publisher_token().await;
    let mine = app
        .add_webhook(&t.token, "https://mine.example.com/", &["book.verified"])
        .await;
    let theirs = app
        .add_webhook(
            &stranger.token,
            "https://their.example.com/",
            &["book.verified"],
        )
        .await;
    for tenant in [&t, &stranger] {
        let (status, _) = app.publish(&p, book_event(tenant.account)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let first = |tenant: &Tenant, webhook: &str| {
        let path = format!("/v1/account/settings/webhook/{webhook}/deliveries");
        let token = tenant.token.clone();
        let app = &app;
        async move {
            let (_, page) = app.get(&path, &token).await;
            page["response"]["deliveries"][0]["uuid"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let my_delivery = first(&t, &mine).await;
    let their_delivery = first(&stranger, &theirs).await;

    let member = app.account(t.org, orghooks_store::Role::Member).await;
    let (cookie, csrf) = session(&app, &member).await;
    let base = format!("/dashboard/webhooks/{mine}");
    let (status, html) = page(&app, &cookie, &format!("{base}/deliveries")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&my_delivery), "a member reads the log");
    assert!(
        !html.contains("Recover failed deliveries"),
        "but recovers nothing"
    );
    let (status, html) = page(&app, &cookie, &format!("{base}/deliveries/{my_delivery}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Send again"));
    let (status, _) = page(&app, &cookie, &format!("{base}/test")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let resp = plain()
        .post(format!(
            "{}{base}/deliveries/{my_delivery}/redeliver",
            app.base
        ))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a member cannot resend"
    );

    for path in [
        format!("/dashboard/webhooks/{theirs}/deliveries"),
        format!("/dashboard/webhooks/{theirs}/deliveries/{their_delivery}"),
        format!("{base}/deliveries/{their_delivery}"),
        format!("/dashboard/webhooks/{theirs}/test"),
    ] {
        let (status, html) = page(&app, &cookie, &path).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{path}: {status}"
        );
        assert!(!html.contains("their.example.com"), "{path}");
    }
}
