//! What every request handler shares: the store, the catalog, the keyring,
//! the clock, the address policy and resolver, limits, metrics and the
//! delivery engine. Built once at start; cheap to clone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orghooks_core::credentials;
use orghooks_core::sealing::Keyring;
use orghooks_core::url_policy::AddressPolicy;
use orghooks_core::{Catalog, Clock};
use orghooks_store::{PublisherToken, Store, StoreError};
use uuid::Uuid;

use crate::config::Config;
use crate::delivery::Outbox;
use crate::delivery::resolver::PolicyResolver;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    policy: AddressPolicy,
    config: Config,
    metrics: Metrics,
    outbox: Outbox,
    resolver: PolicyResolver,
    publishers: PublisherCache,
    buckets: Mutex<HashMap<Allowance, Bucket>>,
}

/// Whose calls a bucket counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Allowance {
    /// An account's management calls.
    Calls(Uuid),
    /// Failed sign-ins with one client id (by its hash, so that a long
    /// made-up id costs no more memory than a real one).
    FailedSignIns(Vec<u8>),
}

/// Most buckets kept; past it, the fullest are forgotten.
const MAX_BUCKETS: usize = 100_000;

/// A token bucket: what one account may still call now.
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// How long a publisher token's check is reused. Revocations must reach
/// every node within 1 s (SPEC §2); half of that leaves room.
const PUBLISHER_CACHE: Duration = Duration::from_millis(500);

/// Recent publisher token checks, so that publishing at full rate does not
/// read the token table on every request.
type PublisherCache = Mutex<HashMap<Vec<u8>, (Instant, Option<PublisherToken>)>>;

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        config: Config,
        metrics: Metrics,
        outbox: Outbox,
        resolver: PolicyResolver,
    ) -> Self {
        let policy = AddressPolicy::new(config.security.allow_cidrs.clone());
        Self(Arc::new(Inner {
            outbox,
            resolver,
            publishers: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            store,
            catalog,
            keyring,
            clock,
            policy,
            config,
            metrics,
        }))
    }

    pub fn store(&self) -> &dyn Store {
        &*self.0.store
    }

    /// A shared handle on the store, for tasks that outlive a request.
    pub fn store_handle(&self) -> Arc<dyn Store> {
        self.0.store.clone()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    pub fn keyring(&self) -> &Keyring {
        &self.0.keyring
    }

    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.0.policy
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn max_body_bytes(&self) -> usize {
        self.0.config.http.max_body_bytes
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Every write that changes what or how something is delivered.
    pub fn outbox(&self) -> &Outbox {
        &self.0.outbox
    }

    /// The publisher token with this hash, checked at most
    /// `PUBLISHER_CACHE` ago.
    pub async fn publisher_token(
        &self,
        hash: Vec<u8>,
    ) -> Result<Option<PublisherToken>, StoreError> {
        if let Some((at, token)) = self.0.publishers.lock().expect("cache lock").get(&hash)
            && at.elapsed() < PUBLISHER_CACHE
        {
            return Ok(token.clone());
        }
        let token = self.store().publisher_token(hash.clone()).await?;
        let mut cache = self.0.publishers.lock().expect("cache lock");
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < PUBLISHER_CACHE);
        }
        cache.insert(hash, (Instant::now(), token.clone()));
        Ok(token)
    }

    /// Takes one management call from the account's allowance (SPEC §6);
    /// `Err(seconds)` to wait when it is used up.
    pub fn take_call(&self, account: Uuid) -> Result<(), u64> {
        self.allowance(Allowance::Calls(account), 1.0)
    }

    /// Whether sign-ins with this client id (the token endpoint and the
    /// dashboard) must wait, after failing as often as the API allows
    /// calls; `Err(seconds)` to wait.
    pub fn sign_in_wait(&self, client_id: &str) -> Result<(), u64> {
        self.allowance(Allowance::FailedSignIns(credentials::hash(client_id)), 0.0)
    }

    /// Counts a failed sign-in with this client id.
    pub fn sign_in_failed(&self, client_id: &str) {
        let _ = self.allowance(Allowance::FailedSignIns(credentials::hash(client_id)), 1.0);
    }

    /// Takes `cost` from a token bucket of `auth.rate_limit_burst` that
    /// refills at `auth.rate_limit_per_minute`; `Err(seconds)` when less
    /// than one is left.
    fn allowance(&self, key: Allowance, cost: f64) -> Result<(), u64> {
        let auth = &self.0.config.auth;
        let burst = f64::from(auth.rate_limit_burst);
        let per_ms = f64::from(auth.rate_limit_per_minute) / 60_000.0;
        let now = self.now_ms();
        let mut buckets = self.0.buckets.lock().expect("buckets lock");
        if buckets.len() > MAX_BUCKETS {
            // Forget buckets that have refilled anyway; failed sign-ins
            // with made-up ids must not grow the map without end.
            buckets.retain(|_, b| (now - b.at_ms) as f64 * per_ms < burst);
            if buckets.len() > MAX_BUCKETS {
                buckets.retain(|k, _| matches!(k, Allowance::Calls(_)));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at_ms: now,
        });
        bucket.tokens = (bucket.tokens + (now - bucket.at_ms).max(0) as f64 * per_ms).min(burst);
        bucket.at_ms = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= cost;
            Ok(())
        } else {
            Err((((1.0 - bucket.tokens) / per_ms) / 1000.0).ceil().max(1.0) as u64)
        }
    }

    /// Resolves webhook hosts with the address policy applied.
    pub fn resolver(&self) -> &PolicyResolver {
        &self.0.resolver
    }
}
