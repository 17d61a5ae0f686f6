//! How deliveries leave: straight to the receiver, or through an HTTP
//! CONNECT proxy (`delivery.proxy_url`) so that every request comes from
//! the proxy's fixed addresses, for receivers that allow-list source IPs.
//!
//! Either way the address policy applies to the receiver: its host is
//! resolved and checked here, and the proxy is asked to connect to the
//! checked address itself (`CONNECT 203.0.113.7:443`), never to the name,
//! so neither the proxy's resolver nor a DNS change can take a delivery
//! somewhere the policy refuses. TLS then runs through the tunnel with the
//! receiver's name. The proxy's own address is the operator's choice and is
//! not checked.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::resolver::{BoxFuture, Checked, PolicyResolver, blocked_error};

/// Longest CONNECT answer read (its headers).
const MAX_PROXY_ANSWER: usize = 8 * 1024;

#[derive(Clone)]
pub enum Egress {
    Direct(HttpConnector<PolicyResolver>),
    Proxy {
        /// `host:port` of the proxy.
        proxy: String,
        resolver: PolicyResolver,
        timeout: Duration,
    },
}

impl Egress {
    /// Through `proxy_url` (`http://host:port`) when given, else direct.
    pub fn new(resolver: PolicyResolver, proxy_url: &str, timeout: Duration) -> io::Result<Self> {
        if proxy_url.is_empty() {
            let mut http = HttpConnector::new_with_resolver(resolver);
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(timeout));
            return Ok(Self::Direct(http));
        }
        Ok(Self::Proxy {
            proxy: proxy_authority(proxy_url)?,
            resolver,
            timeout,
        })
    }
}

/// `host:port` of an `http://host:port` proxy URL.
pub fn proxy_authority(url: &str) -> io::Result<String> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("delivery.proxy_url {url:?}: give http://host:port"),
        )
    };
    let uri: Uri = url.parse().map_err(|_| invalid())?;
    match (uri.scheme_str(), uri.host(), uri.port_u16()) {
        (Some("http"), Some(host), Some(port)) if uri.path() == "/" || uri.path().is_empty() => {
            Ok(format!("{host}:{port}"))
        }
        _ => Err(invalid()),
    }
}

impl tower::Service<Uri> for Egress {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = BoxFuture<io::Result<Self::Response>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Direct(http) => http.poll_ready(cx).map_err(io::Error::other),
            Self::Proxy { .. } => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Self::Direct(http) => {
                let connecting = http.call(dst);
                Box::pin(async move { connecting.await.map_err(io::Error::other) })
            }
            Self::Proxy {
                proxy,
                resolver,
                timeout,
            } => {
                let (proxy, resolver, timeout) = (proxy.clone(), resolver.clone(), *timeout);
                Box::pin(async move {
                    tokio::time::timeout(timeout, tunnel(&proxy, &resolver, &dst))
                        .await
                        .map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("the proxy {proxy} did not open a tunnel in time"),
                            )
                        })?
                })
            }
        }
    }
}

/// A TCP stream through `proxy` to the checked address of `dst`.
async fn tunnel(
    proxy: &str,
    resolver: &PolicyResolver,
    dst: &Uri,
) -> io::Result<TokioIo<TcpStream>> {
    let host = dst
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = dst
        .port_u16()
        .unwrap_or(if dst.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let ip = match resolver.check(bare).await? {
        Checked::Allowed(ips) => ips[0],
        Checked::Blocked(ip, range) => return Err(blocked_error(bare, ip, range)),
    };
    let target = SocketAddr::new(ip, port);
    let mut stream = TcpStream::connect(proxy)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot reach the proxy {proxy}: {e}")))?;
    stream.set_nodelay(true)?;
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await?;
    // Byte by byte: nothing past the answer's headers may be taken from
    // the tunnel (a new connection's cost only; connections are pooled).
    let mut answer = Vec::with_capacity(128);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_PROXY_ANSWER {
            return Err(io::Error::other(format!(
                "the proxy {proxy} answered CONNECT with over {MAX_PROXY_ANSWER} bytes of headers"
            )));
        }
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the proxy {proxy} closed the connection before answering CONNECT"),
            ));
        }
        answer.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') || status.len() != 3 {
        return Err(io::Error::other(format!(
            "the proxy {proxy} refused CONNECT {target}: {status_line}"
        )));
    }
    Ok(TokioIo::new(stream))
}
