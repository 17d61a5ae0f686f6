//! A counting receiver for end-to-end runs: answers 200 after a short
//! pause and records which deliveries (by `webhook-id`) and events (by the
//! payload's `seq`) arrived.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;

#[derive(Default)]
struct Seen {
    requests: usize,
    webhook_ids: HashSet<String>,
    seqs: HashSet<u64>,
}

#[derive(Clone)]
pub struct Counter {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Counter {
    pub async fn start(pause: Duration) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(move |state, headers, body| record(state, headers, body, pause))
            .with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, seen }
    }

    /// Requests received, duplicates included.
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().requests
    }

    pub fn distinct_deliveries(&self) -> usize {
        self.seen.lock().unwrap().webhook_ids.len()
    }

    pub fn distinct_events(&self) -> usize {
        self.seen.lock().unwrap().seqs.len()
    }
}

async fn record(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
    pause: Duration,
) -> &'static str {
    tokio::time::sleep(pause).await;
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut seen = seen.lock().unwrap();
    seen.requests += 1;
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    seen.webhook_ids.insert(id);
    seen.seqs.insert(payload["seq"].as_u64().unwrap());
    "ok"
}
