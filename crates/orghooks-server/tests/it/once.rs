//! A healthy receiver never gets the same delivery twice: bursts far
//! larger than one lease can cover, on PostgreSQL, with leases short
//! enough to lapse while the node still holds the deliveries (a node never
//! claims its own lapsed leases back).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::spawn_delivering_on_postgres;

const BURSTS: usize = 5;
const PER_BURST: usize = 20_000;

/// Counts requests and distinct `webhook-id`s; answers 200 at once.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<(usize, HashSet<String>)>>);

impl Seen {
    async fn start(&self) -> String {
        let seen = self.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let mut s = seen.0.lock().unwrap();
                s.0 += 1;
                s.1.insert(id);
                "ok"
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn counts(&self) -> (usize, usize) {
        let s = self.0.lock().unwrap();
        (s.0, s.1.len())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bursts_longer_than_a_lease_reach_a_healthy_receiver_once() {
    let app = spawn_delivering_on_postgres(|c| {
        // Leases far shorter than a burst takes to send, so that under
        // load they lapse while this node still holds the deliveries.
        c.delivery.lease_ms = 400;
        c.delivery.timeout_ms = 300;
        c.webhooks.max_timeout_ms = 300;
    })
    .await;
    let t = app.tenant().await;
    let p = app.publisher_token().await;
    let seen = Seen::default();
    let url = seen.start().await;
    app.add_webhook_with(
        &t.token,
        json!({"url": url, "max_in_flight": 64}),
        &["book.verified"],
    )
    .await;
    let event = json!({"account_uuid": t.account, "payload": {"event_name": "book.verified",
        "book_uuid": "1e03d9cd-7d84-4672-bc3d-c19cd19c500b", "uploaded_docs": []}});
    for burst in 1..=BURSTS {
        let accepted = futures::stream::iter(0..PER_BURST)
            .map(|_| {
                let request = app
                    .client
                    .post(format!("{}/v1/events", app.base))
                    .bearer_auth(&p)
                    .json(&event)
                    .send();
                async move { request.await.unwrap().status() == 202 }
            })
            .buffer_unordered(64)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        assert_eq!(accepted, PER_BURST, "burst {burst}: every publish accepted");
        let total = burst * PER_BURST;
        app.wait_metric_within(
            r#"orghooks_deliveries_settled_total{outcome="succeeded"}"#,
            total as f64,
            Duration::from_secs(180),
        )
        .await;
        assert_eq!(
            seen.counts(),
            (total, total),
            "burst {burst}: each delivery reached the receiver once"
        );
    }
    assert_eq!(
        app.metric("orghooks_delivery_outcomes_lost_total").await,
        0.0
    );
    // Every delivery has exactly one attempt row.
    let (db, connection) =
        tokio_postgres::connect(&app.config.storage.database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) as usize }
    };
    let total = BURSTS * PER_BURST;
    assert_eq!(count("SELECT count(*) FROM attempts").await, total);
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE status = 'succeeded' AND attempts = 1").await,
        total
    );
}
