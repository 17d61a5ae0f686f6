//! `orghooks listen`: a receiver for a developer's laptop, like `stripe
//! listen` or `svix listen`. It answers every request on 127.0.0.1, checks
//! its signature and timestamp when given the secret, prints one line per
//! notification (and the body with `--verbose`), and answers the chosen
//! status, or forwards the request unchanged to a local URL and passes its
//! answer back.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orghooks_core::clock::format_ms;
use orghooks_core::sealing::SecretString;
use orghooks_core::signing::{self, Received};
use orghooks_core::webhook::SignatureScheme;
use tokio_util::sync::CancellationToken;

/// Largest body taken (a notification is at most 256 KiB).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a forwarded request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// What `orghooks listen` was asked to do.
#[derive(Debug, Clone)]
pub struct Listen {
    /// 0: any free port (printed at start).
    pub port: u16,
    pub secret: Option<SecretString>,
    /// `None`: judged from the signature's form (`v1,…` is standard-webhooks).
    pub scheme: Option<SignatureScheme>,
    pub status: StatusCode,
    pub forward_to: Option<Uri>,
    pub tolerance_secs: u64,
    pub verbose: bool,
}

#[derive(Clone)]
struct Shared {
    options: Listen,
    client: Client<HttpConnector, Body>,
}

/// Receives until `shutdown`; prints to stdout.
pub async fn run(options: Listen, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", options.port))?;
    let addr = listener.local_addr()?;
    let verifying = match (&options.secret, options.scheme) {
        (None, _) => "not verifying signatures (give --secret)".to_owned(),
        (Some(_), None) => format!(
            "verifying signatures (scheme from each signature) within {} s",
            options.tolerance_secs
        ),
        (Some(_), Some(s)) => format!(
            "verifying {} signatures within {} s",
            s.as_str(),
            options.tolerance_secs
        ),
    };
    let answering = match &options.forward_to {
        Some(to) => format!("forwarding to {to}"),
        None => format!("answering {}", options.status.as_u16()),
    };
    say(&format!(
        "listening on http://{addr}/ — {verifying}; {answering}. Ctrl-C stops."
    ));
    let shared = Shared {
        client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        options,
    };
    let app = axum::Router::new().fallback(receive).with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving")
}

/// One line on stdout, flushed (a pipe sees it at once).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn receive(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            say(&format!("{}  a body we could not read: {e}", now()));
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let o = &shared.options;
    let verdict = match &o.secret {
        None => "unverified (no --secret)".to_owned(),
        Some(secret) => {
            let got = Received {
                timestamp: header(&parts.headers, "webhook-timestamp"),
                request_id: header(&parts.headers, "webhook-request-id"),
                webhook_id: header(&parts.headers, "webhook-id"),
                signature: header(&parts.headers, "webhook-signature"),
                body: &body,
            };
            let scheme = o.scheme.unwrap_or(if got.signature.starts_with("v1,") {
                SignatureScheme::StandardWebhooks
            } else {
                SignatureScheme::Ocrolus
            });
            let now = chrono::Utc::now().timestamp();
            match signing::verify(scheme, secret, got, now, o.tolerance_secs) {
                Ok(()) => "verified".to_owned(),
                Err(why) => format!("NOT VERIFIED: {why}"),
            }
        }
    };
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_owned()
    };
    say(&format!(
        "{}  {}  book {}  webhook-id {}  {verdict}",
        now(),
        field("event_name"),
        field("book_uuid"),
        match header(&parts.headers, "webhook-id") {
            "" => "-",
            id => id,
        },
    ));
    if o.verbose {
        let pretty = json
            .as_ref()
            .and_then(|j| serde_json::to_string_pretty(j).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        say(&pretty);
    }
    match &o.forward_to {
        None => o.status.into_response(),
        Some(to) => forward(&shared, to, parts.headers, body).await,
    }
}

/// Sends the request on unchanged (its headers and body) and answers what
/// the local URL answered; 502 when it could not be reached.
async fn forward(shared: &Shared, to: &Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut request = axum::http::Request::post(to.clone())
        .body(Body::from(body))
        .expect("a POST with a parsed URI builds");
    *request.headers_mut() = headers;
    if let Some(authority) = to.authority()
        && let Ok(host) = authority.as_str().parse()
    {
        request.headers_mut().insert(axum::http::header::HOST, host);
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(FORWARD_TIMEOUT, async {
        let response = shared.client.request(request).await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts, bytes))
    })
    .await;
    match answer {
        Ok(Ok((mut parts, bytes))) => {
            // The body is whole now: hop-by-hop framing does not carry over.
            for hop in ["transfer-encoding", "connection", "keep-alive"] {
                parts.headers.remove(hop);
            }
            say(&format!(
                "  → {to} answered {} in {} ms",
                parts.status.as_u16(),
                started.elapsed().as_millis()
            ));
            Response::from_parts(parts, Body::from(bytes))
        }
        Ok(Err(e)) => {
            say(&format!("  → {to} could not be reached: {e}"));
            StatusCode::BAD_GATEWAY.into_response()
        }
        Err(_) => {
            say(&format!(
                "  → {to} did not answer within {} s",
                FORWARD_TIMEOUT.as_secs()
            ));
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

fn now() -> String {
    format_ms(chrono::Utc::now().timestamp_millis())
}
