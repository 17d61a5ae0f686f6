//! `TestReceiver`: a real HTTP receiver on 127.0.0.1 that records every
//! request and answers as told (succeed, fail, fail the first n tries of
//! each delivery, hang, answer 410…). Tests wait on its count with a
//! deadline, never on the clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answer this status to everything.
    Status(u16),
    /// Fail the first `n` tries of each delivery (by webhook-id) with
    /// `status` (and `Retry-After: retry_after` seconds), then answer 200.
    FailFirst {
        n: usize,
        status: u16,
        retry_after: Option<u64>,
    },
    /// Never answer (until the receiver is dropped).
    Hang,
    /// Answer 500 ("refused") to bodies containing this text, 200 to others.
    FailWhenBodyHas(String),
    /// Per book (payload `book_uuid`): fail or delay each try as `plan`
    /// says, from the try number and a seed; see `Plan`.
    Planned(Plan),
    /// Answer 307 pointing at this URL.
    Redirect(String),
    /// Answer this status after a pause.
    Slow { status: u16, pause: Duration },
    /// Answer this status with this body and the header `x-receiver: test`.
    Reply { status: u16, body: &'static str },
}

struct Inner {
    requests: Mutex<Vec<Recorded>>,
    tries: Mutex<HashMap<String, usize>>,
    behavior: Mutex<Behavior>,
    arrived: Notify,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stop: CancellationToken,
}

pub struct TestReceiver {
    pub addr: std::net::SocketAddr,
    inner: Arc<Inner>,
}

impl TestReceiver {
    pub async fn start(behavior: Behavior) -> Self {
        let inner = Arc::new(Inner {
            requests: Mutex::new(Vec::new()),
            tries: Mutex::new(HashMap::new()),
            behavior: Mutex::new(behavior),
            arrived: Notify::new(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let stop = inner.stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, behavior: Behavior) {
        *self.inner.behavior.lock().unwrap() = behavior;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    /// Forgets the highest concurrency seen so far.
    pub fn reset_max_in_flight(&self) {
        self.inner.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests this receiver was ever handling at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived, or panics at the deadline.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Recorded> {
        let until = Instant::now() + deadline;
        loop {
            let notified = self.inner.arrived.notified();
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "waited {deadline:?} for {n} requests, got {}",
                got.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let id_for_plan = id.clone();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let tries = {
        let mut tries = inner.tries.lock().unwrap();
        let t = tries.entry(id).or_default();
        *t += 1;
        *t
    };
    inner.requests.lock().unwrap().push(Recorded {
        headers,
        body,
        at: Instant::now(),
    });
    inner.arrived.notify_waiters();
    let behavior = inner.behavior.lock().unwrap().clone();
    let response = match behavior {
        Behavior::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Behavior::FailFirst {
            n,
            status,
            retry_after,
        } if tries <= n => {
            let mut r = (StatusCode::from_u16(status).unwrap(), "not yet").into_response();
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            r
        }
        Behavior::FailFirst { .. } => StatusCode::OK.into_response(),
        Behavior::FailWhenBodyHas(text) => {
            if body_text.contains(&text) {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [("x-receiver", "test")],
                    "refused",
                )
                    .into_response()
            } else {
                StatusCode::OK.into_response()
            }
        }
        Behavior::Planned(plan) => {
            let (fail, pause) = plan.decide(&id_for_plan, tries);
            tokio::time::sleep(pause).await;
            if fail {
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            } else {
                StatusCode::OK.into_response()
            }
        }
        Behavior::Redirect(to) => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
        }
        Behavior::Slow { status, pause } => {
            tokio::time::sleep(pause).await;
            StatusCode::from_u16(status).unwrap().into_response()
        }
        Behavior::Reply { status, body } => (
            StatusCode::from_u16(status).unwrap(),
            [("x-receiver", "test")],
            body,
        )
            .into_response(),
        Behavior::Hang => {
            inner.stop.cancelled().await;
            StatusCode::OK.into_response()
        }
    };
    inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

/// A seeded, reproducible schedule of failures and delays: each try of
/// each delivery fails with probability `fail_percent` (never more than
/// `max_failures` times per delivery) and pauses up to `max_pause`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub fail_percent: u64,
    pub max_failures: usize,
    pub max_pause: Duration,
}

impl Plan {
    fn decide(&self, webhook_id: &str, tries: usize) -> (bool, Duration) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.seed, webhook_id, tries).hash(&mut h);
        let n = h.finish();
        let fail = tries <= self.max_failures && n % 100 < self.fail_percent;
        let pause_us = (n >> 8) % (self.max_pause.as_micros() as u64 + 1);
        (fail, Duration::from_micros(pause_us))
    }
}
