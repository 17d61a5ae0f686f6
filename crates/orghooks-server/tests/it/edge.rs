//! The HTTP edge against hostile clients, on loopback only: idle and
//! half-sent connections, bodies announced too large or trickled, the
//! connection cap, and metrics that no request can grow.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_with};

const DEADLINE: Duration = Duration::from_secs(30);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// A connection that sent part of a request's headers and nothing more.
async fn half_sent(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    stream
}

/// Sends `request` on a new connection and reads until the server closes
/// it (or the deadline passes): what a client would see.
async fn exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    match tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => {}
        // A reset after the answer is still a closed connection.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("reading the answer: {e}"),
        Err(_) => panic!(
            "no answer within {DEADLINE:?}: {}",
            String::from_utf8_lossy(&out)
        ),
    }
    String::from_utf8_lossy(&out).into_owned()
}

const LIVE: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// A gauge read over a connection of its own, closed after.
async fn open_connections(addr: &str) -> f64 {
    let answer = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    answer
        .lines()
        .find_map(|l| l.strip_prefix("orghooks_http_connections "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn health_answers_at_once_while_two_thousand_half_sent_connections_are_held() {
    // A long header timeout: the connections stay, so what keeps health
    // up is capacity, not their being dropped.
    let app = spawn_with(|c| c.http.header_read_timeout_ms = 120_000).await;
    let addr = addr(&app);
    let mut held = Vec::with_capacity(2000);
    for _ in 0..2000 {
        held.push(half_sent(&addr).await);
    }
    let until = Instant::now() + DEADLINE;
    while open_connections(&addr).await < 2000.0 {
        assert!(
            Instant::now() < until,
            "the server never took the 2,000 connections"
        );
    }
    for _ in 0..3 {
        let started = Instant::now();
        let answer = exchange(&addr, LIVE).await;
        let took = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            took < Duration::from_millis(100),
            "/health/live took {took:?} with 2,000 connections held"
        );
    }
    drop(held);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_with(|c| c.http.header_read_timeout_ms = 200).await;
    let mut stream = half_sent(&addr(&app)).await;
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let app = spawn_with(|c| {
        c.http.max_connections = 4;
        c.http.header_read_timeout_ms = 120_000;
    })
    .await;
    let addr = addr(&app);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(half_sent(&addr).await);
    }
    let waiting = tokio::spawn({
        let addr = addr.clone();
        async move { exchange(&addr, LIVE).await }
    });
    // Not answered while the four hold every slot (if the cap did not
    // hold, it would be answered in about a millisecond).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a fifth connection was served");
    drop(held.pop());
    let answer = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_announced_larger_than_the_route_allows_is_refused_at_once() {
    let app = spawn_with(|_| {}).await;
    let token = app.publisher_token().await;
    let addr = addr(&app);
    for (path, limit) in [("/v1/events", 1_048_576), ("/v1/events/batch", 8_388_608)] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 68719476736\r\n\r\n"
        );
        let answer = exchange(&addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains(&format!(
                r#""code":4007,"message":"body: larger than {limit} bytes""#
            )),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_trickled_body_is_answered_408() {
    let app = spawn_with(|c| c.http.body_read_timeout_ms = 200).await;
    let token = app.publisher_token().await;
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"account"
    );
    let answer = exchange(&addr(&app), request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#""code":4008,"message":"body: not received within 200 ms""#),
        "{answer}"
    );
}

#[tokio::test]
async fn metrics_stay_small_after_twenty_thousand_made_up_requests() {
    use futures::StreamExt;
    let app = spawn_with(|_| {}).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261129);
    let word = |rng: &mut rand::rngs::StdRng, len: usize| -> String {
        (0..len)
            .map(|_| (b'A' + rng.gen_range(0..26)) as char)
            .collect()
    };
    let requests: Vec<(String, String)> = (0..20_000)
        .map(|_| {
            let method = match rng.gen_range(0..4) {
                0 => "GET".to_owned(),
                1 => "POST".to_owned(),
                _ => word(&mut rng, 8),
            };
            let path = format!(
                "/{}/{}?q={}",
                word(&mut rng, 6).to_lowercase(),
                rng.r#gen::<u64>(),
                rng.r#gen::<u32>()
            );
            (method, path)
        })
        .collect();
    let answered: Vec<u16> = futures::stream::iter(requests)
        .map(|(method, path)| {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let request = app.client.request(method, format!("{}{path}", app.base));
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(answered.iter().all(|s| *s == 404 || *s == 405));
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(
        text.contains(
            r#"orghooks_http_requests_total{method="other",route="unmatched",status="404"}"#
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE orghooks_http_requests counter"));
}
