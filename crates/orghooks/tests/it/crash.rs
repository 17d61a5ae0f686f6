//! At least once across `kill -9`: every event answered 202 reaches every
//! webhook it fanned out to, whatever happened to the process in between;
//! and only what the dead run had leased may arrive twice, as the new run
//! says in its log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{access_token, admin_json, serve_with_env};
use crate::receiver::Counter;

const EVENTS: u64 = 2000;
const ALLOW_LOOPBACK: (&str, &str) = ("ORGHOOKS_SECURITY__ALLOW_CIDRS", "[\"127.0.0.0/8\"]");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_survives_kill_dash_9() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let mut server = serve_with_env(dir, &[ALLOW_LOOPBACK]);
    let org = admin_json(dir, &["org", "create", "--name", "Crash Test"]);
    let org = org["org"]["uuid"].as_str().unwrap().to_owned();
    let account = admin_json(
        dir,
        &["account", "create", "--org", &org, "--role", "manager"],
    );
    let account = &account["account"];
    let publisher = admin_json(dir, &["publisher-token", "create", "--name", "e2e"]);
    let publisher = publisher["publisher_token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let token = &access_token(&server.base, account).await;
    // Slow receivers with few slots, so the kill lands mid-way.
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let r = Counter::start(Duration::from_millis(5)).await;
        let resp = client
            .post(format!("{}/v1/account/settings/webhook", server.base))
            .bearer_auth(token)
            .json(&json!({"webhook": {"url": r.url, "max_in_flight": 4}, "event_names": ["book.verified"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        receivers.push(r);
    }
    let account_uuid = account["uuid"].as_str().unwrap();
    for chunk in 0..(EVENTS / 100) {
        let events: Vec<Value> = (chunk * 100..(chunk + 1) * 100)
            .map(|seq| {
                json!({"account_uuid": account_uuid, "payload": {
                    "event_name": "book.verified", "book_uuid": uuid::Uuid::new_v4(),
                    "uploaded_docs": [], "seq": seq}})
            })
            .collect();
        let resp: Value = client
            .post(format!("{}/v1/events/batch", server.base))
            .bearer_auth(&publisher)
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(resp["response"]["accepted"], 100, "{resp}");
    }
    // Kill -9 once about a third of the 6,000 deliveries have arrived.
    let total = |rs: &[Counter]| rs.iter().map(Counter::distinct_deliveries).sum::<usize>();
    wait(
        || total(&receivers) >= (EVENTS as usize * 3) / 3,
        "a third delivered",
    )
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let at_kill = total(&receivers);
    assert!(
        at_kill < EVENTS as usize * 3,
        "the kill landed before the end ({at_kill})"
    );

    let restarted = serve_with_env(dir, &[ALLOW_LOOPBACK]);
    let resumed = restarted
        .logged("resuming deliveries the last run left leased")
        .expect("the new run says it resumes the dead run's deliveries");
    let resumed = resumed["deliveries"].as_u64().unwrap() as usize;
    wait(
        || {
            receivers
                .iter()
                .all(|r| r.distinct_events() == EVENTS as usize)
        },
        "every event at every receiver",
    )
    .await;
    for r in &receivers {
        assert_eq!(
            r.distinct_deliveries(),
            EVENTS as usize,
            "one delivery per event per webhook"
        );
        assert!(r.requests() >= EVENTS as usize);
    }
    let repeats: usize = receivers
        .iter()
        .map(|r| r.requests() - r.distinct_deliveries())
        .sum();
    assert!(
        repeats <= resumed,
        "{repeats} deliveries arrived twice, but the log named only {resumed} as possibly sent"
    );
}

async fn wait(done: impl Fn() -> bool, what: &str) {
    let until = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
