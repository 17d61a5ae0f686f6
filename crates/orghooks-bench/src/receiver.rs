//! The receiving end: a lean HTTP/1 server on 127.0.0.1 that answers as
//! told (at once, slowly, never, or 500) and records, per delivery, that it
//! arrived (by `webhook-id`) and how long after its publish it arrived (the
//! payload's `sent_us`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How a receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Fast,
    /// 200 after a pause.
    Slow(Duration),
    /// 500 at once.
    Failing,
    /// Never answers (the sender's timeout ends the request).
    Dead,
}

#[derive(Default)]
pub struct Stats {
    pub received: AtomicUsize,
    pub ids: Mutex<HashSet<u128>>,
    pub latencies_us: Mutex<Vec<u32>>,
    /// Mode switch: 0 = the start mode, 1 = fast.
    pub fast_now: AtomicU64,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

impl Receiver {
    pub async fn start(mode: Mode) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let shared = stats.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let stats = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, stats.clone(), mode));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, stats })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Distinct deliveries received.
    pub fn distinct(&self) -> usize {
        self.stats.ids.lock().expect("stats lock").len()
    }

    /// From now on, answer at once.
    pub fn speed_up(&self) {
        self.stats.fast_now.store(1, Ordering::SeqCst);
    }
}

async fn handle(
    req: Request<Incoming>,
    stats: Arc<Stats>,
    mode: Mode,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .map(|u| u.as_u128());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let fast = stats.fast_now.load(Ordering::Relaxed) == 1;
    match (mode, fast) {
        (Mode::Dead, false) => std::future::pending::<()>().await,
        (Mode::Slow(pause), false) => tokio::time::sleep(pause).await,
        _ => {}
    }
    if matches!(mode, Mode::Failing) && !fast {
        return Ok(Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Full::new(Bytes::new()))
            .expect("a response"));
    }
    if let Some(sent) = sent_us(&body) {
        let latency = now_us().saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
        stats.latencies_us.lock().expect("stats lock").push(latency);
    }
    if let Some(id) = id {
        stats.ids.lock().expect("stats lock").insert(id);
    }
    stats.received.fetch_add(1, Ordering::Relaxed);
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// The `"sent_us":<n>` field, found without parsing the whole payload.
fn sent_us(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"sent_us\":")? + "\"sent_us\":".len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}
