//! Load generators: as fast as `concurrency` callers can go, or at a fixed
//! rate. Every run is bounded in count and time; 503 answers are counted
//! and retried after a pause, as a well-behaved publisher would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;

use crate::receiver::now_us;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// Where and how to publish.
#[derive(Clone)]
pub struct Target {
    pub client: HttpClient,
    pub url: String,
    pub token: Option<String>,
}

/// Makes the body of call number `n` (with the send time in it).
pub type MakeBody = Arc<dyn Fn(u64, u64) -> String + Send + Sync>;

#[derive(Debug, Default)]
pub struct LoadResult {
    pub refused_503: u64,
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
}

async fn call(target: &Target, body: String) -> anyhow::Result<u16> {
    let mut req = Request::post(&target.url).header("content-type", "application/json");
    if let Some(token) = &target.token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = target
        .client
        .request(req.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// Sends `calls` calls with `concurrency` in flight, each retried on 503
/// until accepted (or `deadline`).
pub async fn saturate(
    target: Target,
    concurrency: usize,
    calls: u64,
    make: MakeBody,
    deadline: Duration,
) -> LoadResult {
    let next = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(calls as usize)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, next, refused, make) =
            (target.clone(), next.clone(), refused.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= calls {
                    break;
                }
                loop {
                    if started.elapsed() > deadline {
                        return mine;
                    }
                    let t = Instant::now();
                    match call(&target, make(n, now_us())).await {
                        Ok(202) | Ok(200) => {
                            mine.push(t.elapsed().as_micros() as u32);
                            break;
                        }
                        Ok(503) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Ok(other) => panic!("publish answered {other}"),
                        Err(e) => panic!("publish failed: {e}"),
                    }
                }
            }
            mine
        }));
    }
    for t in tasks {
        let mine = t.await.expect("a load task");
        latencies.lock().await.extend(mine);
    }
    let latencies_us = std::mem::take(&mut *latencies.lock().await);
    LoadResult {
        refused_503: refused.load(Ordering::Relaxed),
        latencies_us,
        elapsed: started.elapsed(),
    }
}

/// Sends `rate` calls per second for `duration`, whatever the answers take.
pub async fn steady(target: Target, rate: u64, duration: Duration, make: MakeBody) -> LoadResult {
    let started = Instant::now();
    let total = rate * duration.as_secs();
    let sent = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let refused = Arc::new(AtomicU64::new(0));
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0u64;
    let mut inflight = tokio::task::JoinSet::new();
    while n < total {
        ticker.tick().await;
        // How many should have gone by now.
        let due = ((started.elapsed().as_micros() as u64) * rate / 1_000_000).min(total);
        while n < due {
            let (target, make, latencies, refused, sent) = (
                target.clone(),
                make.clone(),
                latencies.clone(),
                refused.clone(),
                sent.clone(),
            );
            let seq = n;
            inflight.spawn(async move {
                let t = Instant::now();
                match call(&target, make(seq, now_us())).await {
                    Ok(202) | Ok(200) => {
                        latencies
                            .lock()
                            .expect("lock")
                            .push(t.elapsed().as_micros() as u32);
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(503) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(other) => panic!("publish answered {other}"),
                    Err(e) => panic!("publish failed: {e}"),
                }
            });
            n += 1;
        }
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    let latencies_us = std::mem::take(&mut *latencies.lock().expect("lock"));
    LoadResult {
        refused_503: refused.load(Ordering::Relaxed),
        latencies_us,
        elapsed: started.elapsed(),
    }
}

/// Percentile `p` (0–100) of `values`, in milliseconds.
pub fn percentile_ms(values: &mut [u32], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let i = ((values.len() - 1) as f64 * p / 100.0).round() as usize;
    f64::from(values[i]) / 1000.0
}
