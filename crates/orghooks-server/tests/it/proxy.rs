//! `delivery.proxy_url`: deliveries leave through an HTTP CONNECT proxy (a
//! small one on loopback, here), which is asked for the checked address,
//! never the name; a destination the policy refuses is refused before the
//! proxy is asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{book_event, spawn_delivering};
use crate::receiver::{Behavior, TestReceiver};

/// A CONNECT proxy on 127.0.0.1 that tunnels only to loopback and keeps
/// each CONNECT target.
async fn proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let kept = asked.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut request = String::new();
                client.read_line(&mut request).await.unwrap();
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.unwrap();
                    if header == "\r\n" || header.is_empty() {
                        break;
                    }
                }
                let target = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                kept.lock().unwrap().push(target.clone());
                let allowed = target
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|a| a.ip().is_loopback());
                let mut client = client.into_inner();
                if !allowed {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                }
                let mut upstream = TcpStream::connect(&target).await.unwrap();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (url, asked)
}

#[tokio::test]
async fn deliveries_leave_through_the_proxy_for_the_checked_address_only() {
    let (proxy_url, asked) = proxy().await;
    let app = spawn_delivering(|c| c.delivery.proxy_url = proxy_url.clone()).await;
    let t = app.tenant().await;
    let receiver = TestReceiver::start(Behavior::Status(200)).await;
    let port = receiver
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    // Names, resolved by orghooks: the proxy is asked for the address.
    app.resolver.set("receiver.example.com", &["127.0.0.1"]);
    app.resolver.set("moved.example.com", &["127.0.0.1"]);
    let url = |host: &str| format!("http://{host}:{port}/hooks");
    app.add_webhook(&t.token, &url("receiver.example.com"), &["book.verified"])
        .await;
    let moved = app
        .add_webhook(&t.token, &url("moved.example.com"), &["book.verified"])
        .await;
    // This one's name now points where the policy refuses: refused here,
    // and the proxy is never asked for it (nothing dials it).
    app.resolver.set("moved.example.com", &["10.0.0.5"]);
    let p = app.publisher_token().await;
    app.publish(&p, book_event(t.account)).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].json()["event_name"], "book.verified");
    assert_eq!(
        got[0].header("host"),
        format!("receiver.example.com:{port}")
    );
    let detail = app.first_attempted(&t.token, &moved).await;
    let error = detail["response"]["attempt_log"][0]["error"]
        .as_str()
        .unwrap_or("");
    assert!(
        error.contains("10.0.0.5") && error.contains("private"),
        "{detail}"
    );
    assert_eq!(
        *asked.lock().unwrap(),
        vec![format!("127.0.0.1:{port}")],
        "only the allowed address, by its number"
    );
}
