//! Several nodes on PostgreSQL: a worker takes what an `api` node accepted
//! as soon as it is committed (the commit's `NOTIFY` wakes its claimer),
//! not at its claim interval, which here is ten minutes.

use std::time::Duration;

use orghooks_server::config::NodeRole;

use crate::helpers::{book_event, spawn_delivering_on_postgres, spawn_own_storage};
use crate::receiver::{Behavior, TestReceiver};

#[tokio::test]
async fn a_worker_takes_an_api_nodes_deliveries_at_once() {
    let api = spawn_delivering_on_postgres(|c| c.node.role = NodeRole::Api).await;
    let url = api.config.storage.database_url.clone();
    let _worker = spawn_own_storage(|c| {
        c.storage.database_url = url;
        c.node.role = NodeRole::Worker;
        c.delivery.claim_interval_ms = 600_000;
    })
    .await;
    let t = api.tenant().await;
    let p = api.publisher_token().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    api.add_webhook(&t.token, &receiver.url("/"), &["book.verified"])
        .await;
    for n in 1..=3 {
        let (status, body) = api.publish(&p, book_event(t.account)).await;
        assert_eq!(status, 202, "{body}");
        // Well inside the ten-minute interval: only the notification can
        // have woken the worker.
        receiver.wait_for(n, Duration::from_secs(30)).await;
    }
}
