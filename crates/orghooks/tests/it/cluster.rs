//! Three real nodes on one PostgreSQL database: events published through
//! all of them reach every webhook once, and when one node is killed with
//! `kill -9` the others finish its leased work once the lease expires.

use std::time::{Duration, Instant};

use orghooks_core::sealing::Keyring;
use orghooks_store::postgres::scratch::ScratchDatabase;
use serde_json::{Value, json};

use crate::process::{Server, access_token, run_with_env, serve_with_env};
use crate::receiver::Counter;

const EVENTS: u64 = 3000;
const LEASE_MS: u64 = 3000;
const CLAIM_MS: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_losing_one() {
    let db = ScratchDatabase::create().await;
    let key = Keyring::generate_spec("k1");
    let keys = format!("[\"{key}\"]");
    let lease = LEASE_MS.to_string();
    let claim = CLAIM_MS.to_string();
    let env: Vec<(&str, &str)> = vec![
        ("ORGHOOKS_STORAGE__DATABASE_URL", &db.url),
        ("ORGHOOKS_SECURITY__ENCRYPTION_KEYS", &keys),
        ("ORGHOOKS_SECURITY__ALLOW_CIDRS", "[\"127.0.0.0/8\"]"),
        ("ORGHOOKS_DELIVERY__LEASE_MS", &lease),
        ("ORGHOOKS_DELIVERY__TIMEOUT_MS", "1000"),
        // A lease must outlast the longest attempt a webhook may ask for.
        ("ORGHOOKS_WEBHOOKS__MAX_TIMEOUT_MS", "1000"),
        ("ORGHOOKS_DELIVERY__CLAIM_INTERVAL_MS", &claim),
        ("ORGHOOKS_DELIVERY__WEBHOOK_CACHE_MS", "100"),
    ];
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Option<Server>> = dirs
        .iter()
        .map(|d| Some(serve_with_env(d.path(), &env)))
        .collect();
    let bases: Vec<String> = nodes
        .iter()
        .map(|n| n.as_ref().unwrap().base.clone())
        .collect();

    let admin = |args: &[&str]| -> Value {
        let out = run_with_env(dirs[0].path(), args, &env);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let org = admin(&["admin", "org", "create", "--name", "Cluster", "--json"]);
    let org = org["org"]["uuid"].as_str().unwrap().to_owned();
    let account = admin(&[
        "admin", "account", "create", "--org", &org, "--role", "manager", "--json",
    ]);
    let account = account["account"].clone();
    let publisher = admin(&[
        "admin",
        "publisher-token",
        "create",
        "--name",
        "e2e",
        "--json",
    ]);
    let publisher = publisher["publisher_token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let client = reqwest::Client::new();
    let token = access_token(&bases[1], &account).await;
    let receivers = [
        Counter::start(Duration::ZERO).await,
        Counter::start(Duration::ZERO).await,
    ];
    for r in &receivers {
        let resp = client
            .post(format!("{}/v1/account/settings/webhook", bases[0]))
            .bearer_auth(&token)
            .json(&json!({"webhook": {"url": r.url}, "event_names": ["book.verified"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    // Publish in batches of 100, round robin over the live nodes; node 2
    // dies after about a third of the events.
    let account_uuid = account["uuid"].as_str().unwrap().to_owned();
    let mut accepted = 0u64;
    let mut killed_at = None;
    let mut duplicates_before_kill = None;
    for batch in 0..(EVENTS / 100) {
        let live: Vec<&String> = bases
            .iter()
            .zip(&nodes)
            .filter(|(_, n)| n.is_some())
            .map(|(b, _)| b)
            .collect();
        let base = live[batch as usize % live.len()];
        let events: Vec<Value> = (batch * 100..(batch + 1) * 100)
            .map(|seq| {
                json!({"account_uuid": account_uuid, "payload": {"event_name": "book.verified",
                       "book_uuid": uuid::Uuid::new_v4(), "uploaded_docs": [], "seq": seq}})
            })
            .collect();
        let resp: Value = client
            .post(format!("{base}/v1/events/batch"))
            .bearer_auth(&publisher)
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        accepted += resp["response"]["accepted"].as_u64().unwrap();
        // Batch 10 went to node 2 (10 % 3 == 1): kill it while that
        // batch's deliveries, leased to it, are still in flight.
        if batch == 10 {
            let mut victim = nodes[1].take().unwrap();
            victim.child.kill().unwrap();
            victim.child.wait().unwrap();
            killed_at = Some(Instant::now());
            eprintln!(
                "at the kill: {:?} of {} delivered",
                receivers
                    .iter()
                    .map(Counter::distinct_events)
                    .collect::<Vec<_>>(),
                accepted
            );
            duplicates_before_kill = Some(
                receivers
                    .iter()
                    .map(|r| r.requests() - r.distinct_deliveries())
                    .sum::<usize>(),
            );
        }
    }
    assert_eq!(accepted, EVENTS);
    assert_eq!(
        duplicates_before_kill,
        Some(0),
        "no webhook-id arrived twice before the kill"
    );

    // Everything arrives; the dead node's leases expire and are claimed.
    let deadline =
        killed_at.unwrap() + Duration::from_millis(LEASE_MS + CLAIM_MS) + Duration::from_secs(2);
    while !receivers
        .iter()
        .all(|r| r.distinct_events() == EVENTS as usize)
    {
        assert!(
            Instant::now() < deadline,
            "not all delivered within the lease plus a claim interval: {:?}",
            receivers
                .iter()
                .map(Counter::distinct_events)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "all delivered {:?} after the kill",
        killed_at.unwrap().elapsed()
    );
    for r in &receivers {
        assert_eq!(r.distinct_deliveries(), EVENTS as usize);
    }
    drop(nodes);
}
