//! The receiver guide's Python, run against real deliveries: each
//! ```python block of docs/receiving.md must accept the request orghooks
//! sent in its scheme and refuse it once its timestamp is old.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::helpers::{book_event, spawn_delivering};
use crate::receiver::{Behavior, TestReceiver};

/// The test virtualenv's Python (scripts/test makes it, with
/// standardwebhooks), or `None` (skip) without one.
fn python() -> Option<PathBuf> {
    let bin =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis-venv/bin/python");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("ORGHOOKS_REQUIRE_SCHEMATHESIS").is_err(),
        "{} is missing: scripts/test installs it",
        bin.display()
    );
    eprintln!("SKIPPED: no test virtualenv; scripts/test installs it");
    None
}

fn python_blocks() -> Vec<String> {
    let guide = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/receiving.md"),
    )
    .expect("docs/receiving.md");
    guide
        .split("```python\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

/// Calls the snippet's `verify` on the request as received, then with its
/// timestamp ten minutes old.
const HARNESS: &str = r#"
import json, sys, time
headers = json.load(open("headers.json"))
body = open("body", "rb").read()
verify(sys.argv[1], headers, body)
print("accepted")
old = dict(headers)
for name in list(old):
    if name.lower() == "webhook-timestamp":
        old[name] = str(int(time.time()) - 600)
try:
    verify(sys.argv[1], old, body)
    print("an old timestamp was accepted")
except Exception as e:
    print("refused:", e)
"#;

/// Runs `snippet`'s `verify` on what was received, then on the same
/// request with a timestamp ten minutes old; answers what it printed.
fn run(python: &PathBuf, snippet: &str, secret: &str, headers: &Value, body: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("headers.json"), headers.to_string()).unwrap();
    std::fs::write(dir.path().join("body"), body).unwrap();
    let harness = format!("{snippet}\n{HARNESS}");
    std::fs::write(dir.path().join("check.py"), harness).unwrap();
    let out = Command::new(python)
        .arg("check.py")
        .arg(secret)
        .current_dir(dir.path())
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_receiver_guides_python_verifies_real_deliveries_and_refuses_old_ones() {
    let Some(python) = python() else {
        return;
    };
    let blocks = python_blocks();
    assert_eq!(blocks.len(), 2, "plain hmac (ocrolus), standardwebhooks");
    let app = spawn_delivering(|_| {}).await;
    let t = app.tenant().await;
    let to_ocrolus = TestReceiver::start(Behavior::Status(200)).await;
    let to_standard = TestReceiver::start(Behavior::Status(200)).await;
    let ocrolus = app
        .add_webhook(&t.token, &to_ocrolus.url("/"), &["book.verified"])
        .await;
    let standard = app
        .add_webhook(&t.token, &to_standard.url("/"), &["book.verified"])
        .await;
    let ocrolus_secret = "a-guide-secret-of-some-length";
    app.set_secret(&t.token, &ocrolus, ocrolus_secret).await;
    let (status, body) = app
        .post(
            &format!("/v1/account/settings/webhook/{standard}/rotate-secret"),
            &t.token,
            json!({"signature_scheme": "standard-webhooks"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let standard_secret = body["response"]["secret_key"].as_str().unwrap().to_owned();
    let p = app.publisher_token().await;
    app.publish(&p, book_event(t.account)).await;
    for (block, receiver, secret) in [
        (&blocks[0], &to_ocrolus, ocrolus_secret),
        (&blocks[1], &to_standard, standard_secret.as_str()),
    ] {
        let request = &receiver.wait_for(1, Duration::from_secs(30)).await[0];
        let path = receiver.url("/");
        let headers: Map<String, Value> = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap())))
            .collect();
        let said = run(
            &python,
            block,
            secret,
            &Value::Object(headers),
            &request.body,
        );
        assert!(said.starts_with("accepted\n"), "{path}: {said}");
        let refusal = said.lines().nth(1).unwrap_or("");
        assert!(
            refusal.starts_with("refused:")
                && (refusal.contains("stale") || refusal.contains("too old")),
            "{path}: {said}"
        );
    }
}
