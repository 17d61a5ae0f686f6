//! Where and how to send a webhook's deliveries: its URL, Basic auth and
//! signing keys, decrypted once and cached for a short time. Changes made
//! through this node invalidate the entry at once; changes made elsewhere
//! (another node, the CLI) are seen within the cache lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::Uri;
use hyper::http::{HeaderName, HeaderValue};
use orghooks_core::Clock;
use orghooks_core::sealing::{Keyring, SecretString};
use orghooks_core::webhook::SignatureScheme;
use orghooks_store::{StoreError, Webhook, Webhooks};
use uuid::Uuid;

/// A webhook as the sender needs it.
pub struct Target {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub uri: Uri,
    /// The URL with its password masked, for logs.
    pub shown_url: String,
    pub basic_auth: Option<HeaderValue>,
    pub scheme: SignatureScheme,
    /// Signing keys, newest first (two during a standard-webhooks overlap).
    pub secrets: Vec<SecretString>,
    pub is_active: bool,
    /// `None`: the node's default.
    pub max_in_flight: Option<u32>,
    /// The webhook's custom headers, opened.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The webhook's own retry gaps (`None`: the node's schedule).
    pub retry_gaps: Option<Arc<[Duration]>>,
    /// The webhook's own timeout (`None`: the node's).
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("uuid", &self.uuid)
            .field("url", &self.shown_url)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// When an entry was loaded, and the webhook (`None`: deleted).
type Entry = (Instant, Option<Arc<Target>>);

pub struct Targets {
    store: Arc<dyn Webhooks>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cache: Mutex<HashMap<Uuid, Entry>>,
}

impl Targets {
    pub fn new(
        store: Arc<dyn Webhooks>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            keyring,
            clock,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The webhook's target, or `None` when it was deleted.
    pub async fn get(&self, webhook: Uuid) -> Result<Option<Arc<Target>>, StoreError> {
        if let Some((at, target)) = self.cache.lock().expect("targets lock").get(&webhook)
            && at.elapsed() < self.ttl
        {
            return Ok(target.clone());
        }
        let target = match self.store.webhook_by_uuid(webhook).await? {
            Some(w) => Some(Arc::new(self.build(&w)?)),
            None => None,
        };
        self.cache
            .lock()
            .expect("targets lock")
            .insert(webhook, (Instant::now(), target.clone()));
        Ok(target)
    }

    /// Forgets a webhook's entry after a change made through this node.
    pub fn invalidate(&self, webhook: Uuid) {
        self.cache.lock().expect("targets lock").remove(&webhook);
    }

    fn build(&self, w: &Webhook) -> Result<Target, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("webhook {}: {what}", w.uuid));
        let open = |sealed: &str| {
            self.keyring
                .open(sealed)
                .map_err(|e| corrupt(&format!("cannot open a sealed secret: {e}")))
        };
        let url = url::Url::parse(&w.url).map_err(|_| corrupt("stored URL does not parse"))?;
        let password = w.url_password_sealed.as_deref().map(open).transpose()?;
        let basic_auth = match &password {
            Some(p) => {
                let user = percent_decode(url.username());
                let token = B64.encode(format!("{user}:{}", p.expose()));
                Some(
                    HeaderValue::from_str(&format!("Basic {token}"))
                        .map_err(|_| corrupt("Basic auth header"))?,
                )
            }
            None => None,
        };
        let mut bare = url.clone();
        let _ = bare.set_username("");
        let uri: Uri = bare
            .as_str()
            .parse()
            .map_err(|_| corrupt("stored URL is not a valid URI"))?;
        let mut secrets = Vec::new();
        if let Some(s) = &w.secret_sealed {
            secrets.push(open(s)?);
        }
        if let (Some(s), Some(until)) = (&w.previous_secret_sealed, w.previous_secret_until)
            && until > self.clock.now_ms()
            && w.signature_scheme == SignatureScheme::StandardWebhooks
        {
            secrets.push(open(s)?);
        }
        let shown_url = crate::http::views::masked_url(w);
        let headers = crate::http::options::open_headers(&self.keyring, &w.options)
            .map_err(|e| corrupt(&format!("cannot open its headers: {e}")))?
            .into_iter()
            .map(|(n, v)| {
                Ok((
                    HeaderName::from_bytes(n.as_bytes()).map_err(|_| corrupt("header name"))?,
                    HeaderValue::from_str(&v).map_err(|_| corrupt("header value"))?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let o = &w.options;
        Ok(Target {
            org_uuid: w.org_uuid,
            headers,
            retry_gaps: o
                .retry_gaps_ms
                .as_ref()
                .map(|g| g.iter().map(|ms| Duration::from_millis(*ms)).collect()),
            timeout: o.timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
            uuid: w.uuid,
            uri,
            shown_url,
            basic_auth,
            scheme: w.signature_scheme,
            secrets,
            is_active: w.is_active,
            max_in_flight: w.max_in_flight,
        })
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
