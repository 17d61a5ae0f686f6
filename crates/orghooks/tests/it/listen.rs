//! `orghooks listen` against `orghooks serve`, both the real binary: it
//! verifies what serve signs, says why when it cannot, answers the status
//! asked, and forwards to a local app unchanged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::process::{BIN, access_token, admin_json, serve_with_env};

const SECRET: &str = "a-listen-secret-of-some-length";
const BOOK: &str = "1e03d9cd-7d84-4672-bc3d-c19cd19c500b";

/// A running `orghooks listen` and what it printed so far.
struct Listener {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    async fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["listen", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("orghooks listen starts");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let mut listener = Self {
            child,
            url: String::new(),
            lines,
        };
        let first = listener.wait_for("listening on ").await;
        listener.url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        listener
    }

    /// The first line containing `text`, waiting up to 30 s for it.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "listen never printed {text:?}; it printed {:?}",
                self.lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn printed(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local app that answers 201 with a body and keeps what it got.
async fn app() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/app/hooks", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let kept = kept.clone();
        async move {
            kept.lock().unwrap().push((headers, body));
            (axum::http::StatusCode::CREATED, r#"{"app":"ok"}"#)
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn listen_verifies_prints_answers_and_forwards_what_serve_sends() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_env(
        dir.path(),
        &[("ORGHOOKS_SECURITY__ALLOW_CIDRS", "[\"127.0.0.0/8\"]")],
    );
    let good = Listener::start(&["--secret", SECRET, "--verbose"]).await;
    let wrong = Listener::start(&["--secret", "not-the-secret-at-all", "--status", "500"]).await;
    let (app_url, app_got) = app().await;
    let forwarding = Listener::start(&["--forward-to", &app_url]).await;

    let org = admin_json(dir.path(), &["org", "create", "--name", "Acme"]);
    let org = org["org"]["uuid"].as_str().unwrap().to_owned();
    let account = admin_json(
        dir.path(),
        &["account", "create", "--org", &org, "--role", "manager"],
    )["account"]
        .clone();
    let publisher = admin_json(dir.path(), &["publisher-token", "create", "--name", "p"]);
    let publisher = publisher["publisher_token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = access_token(&server.base, &account).await;
    let client = reqwest::Client::new();
    let post = |path: String, bearer: String, body: Value| {
        let client = client.clone();
        let url = format!("{}{path}", server.base);
        async move {
            let resp = client
                .post(url)
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let mut hooks = Vec::new();
    for listener in [&good, &wrong, &forwarding] {
        let (status, body) = post(
            "/v1/account/settings/webhook".into(),
            token.clone(),
            json!({"webhook": {"url": listener.url}, "event_names": ["book.verified"]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let hook = body["response"]["uuid"].as_str().unwrap().to_owned();
        let (status, body) = post(
            format!("/v1/account/settings/webhook/{hook}/rotate-secret"),
            token.clone(),
            json!({"secret_key": SECRET}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        hooks.push(hook);
    }
    let (status, body) = post(
        "/v1/events".into(),
        publisher,
        json!({"account_uuid": account["uuid"], "payload":
            {"event_name": "book.verified", "book_uuid": BOOK, "uploaded_docs": []}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    let line = good.wait_for("book.verified").await;
    assert!(
        line.contains(&format!("book {BOOK}")) && line.ends_with("  verified"),
        "{line}"
    );
    good.wait_for("\"event_name\": \"book.verified\"").await; // --verbose
    let line = wrong.wait_for("book.verified").await;
    assert!(
        line.ends_with(
            "NOT VERIFIED: signature does not match (wrong secret, or not the ocrolus scheme)"
        ),
        "{line}"
    );
    let answered = forwarding.wait_for("answered 201").await;
    assert!(answered.contains(&app_url), "{answered}");
    assert!(forwarding.printed().contains("unverified (no --secret)"));
    let (headers, body) = app_got.lock().unwrap()[0].clone();
    assert!(body.contains("book.verified"), "{body}");
    assert!(
        headers.contains_key("webhook-signature"),
        "forwarded unchanged"
    );
    assert!(headers.contains_key("webhook-id"));

    // What serve recorded: the wrong listener answered 500 as asked (the
    // outcome is written within delivery.outcome_linger_ms of the answer).
    let get = |path: String| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            client
                .get(path)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let log = get(format!(
            "{}/v1/account/settings/webhook/{}/deliveries",
            server.base, hooks[1]
        ))
        .await;
        if let Some(delivery) = log["response"]["deliveries"][0]["uuid"].as_str() {
            let detail = get(format!(
                "{}/v1/account/settings/webhook/{}/delivery/{delivery}",
                server.base, hooks[1]
            ))
            .await;
            if !detail["response"]["attempt_log"][0].is_null() || Instant::now() > deadline {
                break detail;
            }
        }
        assert!(Instant::now() < deadline, "no delivery in the log: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        detail["response"]["attempt_log"][0]["response_status"], 500,
        "{detail}"
    );
}
