//! `/openapi.json` tells the truth: schemathesis (from PyPI, installed by
//! `scripts/test` into `target/schemathesis-venv`) runs every check it has
//! against a live server, for the management, log and publish routes, and
//! finds nothing. The server resolves no name (the test resolver) and
//! delivers only to a receiver on 127.0.0.1, so fuzzing never leaves the
//! machine.
//!
//! Where a request can match the schema and still be refused because of
//! data the schema cannot know (an account that exists, a URL's host, a
//! secret that fits the webhook's scheme, a recovery window, a cursor this
//! API issued), `tests/schemathesis.toml` lets 400 count as an expected
//! answer to schema-valid data for that operation only; everything else is
//! checked as schemathesis ships it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::helpers::spawn_with;
use crate::receiver::{Behavior, TestReceiver};

fn schemathesis() -> Option<PathBuf> {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/schemathesis-venv/bin/schemathesis");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("ORGHOOKS_REQUIRE_SCHEMATHESIS").is_err(),
        "{} is missing: scripts/test installs it",
        bin.display()
    );
    eprintln!(
        "SKIPPED: no schemathesis at {}; scripts/test installs it",
        bin.display()
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_with_every_check() {
    let Some(bin) = schemathesis() else {
        return;
    };
    let app = spawn_with(|c| {
        c.security.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        c.auth.rate_limit_burst = u32::MAX;
        c.auth.rate_limit_per_minute = u32::MAX;
    })
    .await;
    let t = app.tenant().await;
    let publisher = app.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let webhook = app
        .add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    let doomed = app
        .add_webhook(&t.token, &receiver.url("/doomed"), &["book.verified"])
        .await;
    // The account-level API's test and rotate-secret need a registration.
    let (status, body) = app
        .post(
            "/v1/account/settings/update/webhook_endpoint",
            &t.token,
            json!({"webhook_endpoint": receiver.url("/account"), "event": ["book.verified"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .publish(
            &publisher,
            json!({"account_uuid": t.account, "payload": {"event_name": "book.verified",
                   "book_uuid": "1e03d9cd-7d84-4672-bc3d-c19cd19c500b", "uploaded_docs": []}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (_, page) = app
        .get(
            &format!("/v1/account/settings/webhook/{webhook}/deliveries"),
            &t.token,
        )
        .await;
    let delivery = page["response"]["deliveries"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../schemathesis.toml");
    let config = shipped
        .replace("@MANAGER_TOKEN@", &t.token)
        .replace("@PUBLISHER_TOKEN@", &publisher)
        .replace("@WEBHOOK_UUID@", &webhook)
        .replace("@DOOMED_UUID@", &doomed)
        .replace("@DELIVERY_UUID@", &delivery);
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config).unwrap();
    let report = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        // In the temporary folder: schemathesis keeps a cache where it runs.
        Command::new(bin)
            .current_dir(dir.path())
            .arg("--config-file")
            .arg(&config_path)
            .args(["run", &format!("{base}/openapi.json"), "--checks", "all"])
            .args(["--no-color", "--report", "junit", "--report-dir"])
            .arg(&report)
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "schemathesis found failures (see above)"
    );
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains("generated"))
        .unwrap_or("");
    assert!(
        summary.contains("0 found") || !summary.contains("found"),
        "{summary}"
    );
}
