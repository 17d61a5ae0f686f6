//! One HTTP attempt of one delivery (SPEC §4): the request with its
//! headers and signature, sent over a pooled connection to an address the
//! policy allowed, within the timeout, without following redirects; and
//! what the receiver answered, as the attempt log keeps it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use hyper::http::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use orghooks_core::attempt::{AttemptError, Ending};
use orghooks_core::signing;
use orghooks_core::url_policy::AddressPolicy;
use orghooks_core::webhook::SignatureScheme;
use orghooks_store::DeliveryJob;
use uuid::Uuid;

use super::egress::Egress;
use super::resolver::{PolicyResolver, blocked_error, is_refused};
use super::targets::Target;

/// Response bodies kept for non-2xx answers, at most (SPEC §1).
pub const MAX_KEPT_BODY: usize = 16 * 1024;
/// A 2xx body is read (and discarded) up to this size so the connection can
/// be reused; a larger one costs the connection instead.
const MAX_DRAINED_BODY: usize = 64 * 1024;

pub const USER_AGENT_VALUE: &str = concat!("orghooks/", env!("CARGO_PKG_VERSION"));

type Connector = hyper_rustls::HttpsConnector<Egress>;

/// The outbound HTTP client, shared by every delivery.
#[derive(Clone)]
pub struct Sender {
    client: Client<Connector, Full<Bytes>>,
    policy: AddressPolicy,
    timeout: Duration,
}

/// What an attempt came to.
#[derive(Debug)]
pub struct Attempt {
    pub request_id: Uuid,
    /// The request's headers as sent, with Basic auth masked.
    pub request_headers: Option<String>,
    pub started_at_ms: i64,
    pub duration: Duration,
    /// The answer's status, or why there was none.
    pub ending: Ending,
    /// The answer's headers, for non-2xx answers only.
    pub headers: Option<String>,
    /// The body, for non-2xx answers only.
    pub body: Option<String>,
}

impl Attempt {
    pub fn status(&self) -> Option<u16> {
        match self.ending {
            Ending::Answered { status, .. } => Some(status),
            Ending::Failed(_) => None,
        }
    }

    pub fn error(&self) -> Option<&AttemptError> {
        match &self.ending {
            Ending::Answered { .. } => None,
            Ending::Failed(e) => Some(e),
        }
    }
}

impl Sender {
    /// Sends directly, or through the HTTP CONNECT proxy at `proxy_url`
    /// when it is not empty (`delivery.proxy_url`).
    pub fn new(
        resolver: PolicyResolver,
        policy: AddressPolicy,
        timeout: Duration,
        proxy_url: &str,
    ) -> std::io::Result<Self> {
        let egress = Egress::new(resolver, proxy_url, timeout)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(egress);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Self {
            client,
            policy,
            timeout,
        })
    }

    /// Sends one attempt; never fails, the outcome is in the answer.
    pub async fn send(&self, target: &Target, job: &DeliveryJob, now_ms: i64) -> Attempt {
        let request_id = Uuid::new_v4();
        let started = Instant::now();
        let mut request_headers = None;
        let result = match self.request(target, job, request_id, now_ms) {
            Ok(req) => {
                request_headers = Some(req.headers().clone());
                let timeout = target.timeout.unwrap_or(self.timeout);
                tokio::time::timeout(timeout, self.exchange(req, job.is_test))
                    .await
                    .unwrap_or(Err(AttemptError::Timeout(timeout)))
            }
            Err(e) => Err(e),
        };
        let duration = started.elapsed();
        match result {
            // Headers are kept where they explain something: failed attempts,
            // and tests, which show the whole exchange.
            Ok(answer) => Attempt {
                request_id,
                request_headers: request_headers
                    .filter(|_| job.is_test || !(200..300).contains(&answer.status))
                    .map(|h| masked_headers(&h)),
                started_at_ms: now_ms,
                duration,
                ending: Ending::Answered {
                    status: answer.status,
                    retry_after: answer.retry_after,
                },
                headers: answer.headers,
                body: answer.body,
            },
            Err(error) => Attempt {
                request_id,
                request_headers: request_headers.map(|h| masked_headers(&h)),
                started_at_ms: now_ms,
                duration,
                ending: Ending::Failed(error),
                headers: None,
                body: None,
            },
        }
    }

    fn request(
        &self,
        target: &Target,
        job: &DeliveryJob,
        request_id: Uuid,
        now_ms: i64,
    ) -> Result<Request<Full<Bytes>>, AttemptError> {
        // IP literals skip the resolver, so the policy is applied here.
        if let Some(host) = target.uri.host() {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<std::net::IpAddr>()
                && let Err(range) = self.policy.check(ip)
            {
                return Err(AttemptError::Blocked(
                    blocked_error(host, ip, range).to_string(),
                ));
            }
        }
        let timestamp = now_ms.div_euclid(1000);
        let body = Bytes::copy_from_slice(job.payload.as_bytes());
        let webhook_id = job.uuid.to_string();
        let request_id = request_id.to_string();
        let mut req = Request::post(target.uri.clone());
        // The webhook's own headers first: none of them is one of ours.
        for (name, value) in &target.headers {
            req = req.header(name, value);
        }
        req = req
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header("webhook-id", &webhook_id)
            .header("Webhook-Request-Id", &request_id)
            .header("Webhook-Timestamp", timestamp);
        if let Some(authority) = target.uri.authority() {
            req = req.header(HOST, authority.as_str());
        }
        if let Some(auth) = &target.basic_auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        if !target.secrets.is_empty() {
            let signature = match target.scheme {
                SignatureScheme::Ocrolus => {
                    signing::ocrolus(&target.secrets[0], timestamp, &request_id, &body)
                }
                SignatureScheme::StandardWebhooks => {
                    let keys: Vec<_> = target.secrets.iter().collect();
                    signing::standard(&keys, &webhook_id, timestamp, &body)
                }
            };
            let name = match target.scheme {
                SignatureScheme::Ocrolus => "Webhook-Signature",
                SignatureScheme::StandardWebhooks => "webhook-signature",
            };
            req = req.header(name, signature);
        }
        req.body(Full::new(body))
            .map_err(|e| AttemptError::Network(format!("cannot build the request: {e}")))
    }

    /// Sends the request and reads the answer; its headers and body are
    /// kept for a failure, or always with `keep`.
    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        keep: bool,
    ) -> Result<Answer, AttemptError> {
        let response = self.client.request(req).await.map_err(|e| {
            if is_refused(&e) {
                AttemptError::Blocked(error_chain(&e))
            } else {
                AttemptError::Network(error_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        let success = (200..300).contains(&status);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(parse_retry_after);
        let keep = keep || !success;
        let headers = keep.then(|| headers_json(response.headers()));
        let limit = if keep {
            MAX_KEPT_BODY
        } else {
            MAX_DRAINED_BODY
        };
        let collected = Limited::new(response.into_body(), limit).collect().await;
        let body = match (keep, collected) {
            (false, _) => None,
            (true, Ok(c)) => Some(String::from_utf8_lossy(&c.to_bytes()).into_owned()),
            // Larger than we keep: say so rather than keep a truncated guess.
            (true, Err(_)) => Some(format!(
                "(response body larger than {MAX_KEPT_BODY} bytes, not kept)"
            )),
        };
        Ok(Answer {
            status,
            headers,
            body,
            retry_after,
        })
    }
}

struct Answer {
    status: u16,
    /// Kept for non-2xx answers and tests only.
    headers: Option<String>,
    body: Option<String>,
    retry_after: Option<Duration>,
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured).
fn parse_retry_after(v: &HeaderValue) -> Option<Duration> {
    v.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The request headers for the attempt log: Basic auth carries the URL's
/// password, so it is masked; signatures are not secret.
fn masked_headers(headers: &hyper::HeaderMap) -> String {
    let mut shown = headers.clone();
    if shown.contains_key(AUTHORIZATION) {
        shown.insert(AUTHORIZATION, HeaderValue::from_static("Basic ****"));
    }
    headers_json(&shown)
}

fn headers_json(headers: &hyper::HeaderMap) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into(),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// An error with its causes, deepest last ("client error (Connect): tcp
/// connect error: Connection refused (os error 111)").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
