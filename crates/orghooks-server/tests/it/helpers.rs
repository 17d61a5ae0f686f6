//! `spawn_app()`: a real server on port 0 with a fresh data folder and a
//! hand-driven clock, plus one small client used by every test.

use std::sync::Arc;

use orghooks_core::sealing::Keyring;
use orghooks_core::{Clock, ManualClock, SystemClock};
use orghooks_server::admin::Admin;
use orghooks_server::delivery::resolver::{BoxFuture, Resolve};
use orghooks_server::{App, Config, Deps};
use orghooks_store::Role;
use orghooks_store::postgres::scratch::ScratchDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    /// The PostgreSQL database of this app, when the suite runs on it.
    pub database: Option<Arc<ScratchDatabase>>,
    pub base: String,
    pub client: reqwest::Client,
    /// Moves time for apps started with a manual clock (not delivering ones).
    pub clock: ManualClock,
    pub resolver: TestResolver,
    deps: Deps,
    pub admin: Admin,
    store: Arc<dyn orghooks_store::Store>,
    pub config: Config,
    pub dir: Arc<tempfile::TempDir>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// An organization with a manager account and its token.
pub struct Tenant {
    pub org: Uuid,
    pub token: String,
    pub client_id: String,
    pub client_secret: String,
    pub account: Uuid,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = dir.to_owned();
    // Tests poll the API; the rate limit has its own test.
    config.auth.rate_limit_burst = 1_000_000;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// An app on a hand-driven clock: for the API, where time is a value.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let clock = ManualClock::starting_now();
    spawn_on(adjust, Arc::new(clock.clone()), clock).await
}

/// An app on the wall clock that delivers to receivers on 127.0.0.1, with
/// a short retry schedule: for delivery, where time must pass.
pub async fn spawn_delivering(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(
        |c| {
            delivering(c);
            adjust(c);
        },
        Arc::new(SystemClock),
        ManualClock::starting_now(),
    )
    .await
}

fn delivering(c: &mut Config) {
    c.security.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    c.delivery.retry_gaps_ms = vec![20, 40, 60];
    c.delivery.retry_jitter = 0.0;
    c.delivery.claim_interval_ms = 10;
    c.delivery.webhook_cache_ms = 10;
    c.delivery.timeout_ms = 2000;
    c.delivery.lease_ms = 10_000;
}

/// A delivering app on storage the test brings: SQLite in the folder
/// `adjust` sets, or the PostgreSQL server of its `storage.database_url`.
pub async fn spawn_own_storage(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_backend(
        |c| {
            delivering(c);
            adjust(c);
            if c.storage.is_postgres() {
                c.security.encryption_keys = vec![Keyring::generate_spec("k1")];
            }
        },
        Arc::new(SystemClock),
        ManualClock::starting_now(),
        false,
    )
    .await
}

/// The backend this run of the suite uses: `ORGHOOKS_TEST_BACKEND=postgres`
/// runs every test on its own fresh PostgreSQL database.
pub fn on_postgres() -> bool {
    std::env::var("ORGHOOKS_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// An app on PostgreSQL whatever the suite's backend: for what only
/// several nodes have (node roles).
pub async fn spawn_postgres_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let clock = ManualClock::starting_now();
    spawn_backend(adjust, Arc::new(clock.clone()), clock, true).await
}

/// A delivering app (wall clock, receivers on 127.0.0.1) on PostgreSQL
/// whatever the suite's backend.
pub async fn spawn_delivering_on_postgres(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_backend(
        |c| {
            delivering(c);
            adjust(c);
        },
        Arc::new(SystemClock),
        ManualClock::starting_now(),
        true,
    )
    .await
}

/// An app on SQLite whatever the suite's backend: for what only SQLite has.
pub async fn spawn_sqlite_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let clock = ManualClock::starting_now();
    spawn_backend(adjust, Arc::new(clock.clone()), clock, false).await
}

async fn spawn_on(
    adjust: impl FnOnce(&mut Config),
    clock: Arc<dyn Clock>,
    manual: ManualClock,
) -> TestApp {
    spawn_backend(adjust, clock, manual, on_postgres()).await
}

async fn spawn_backend(
    adjust: impl FnOnce(&mut Config),
    clock: Arc<dyn Clock>,
    manual: ManualClock,
    postgres: bool,
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    let database = if postgres {
        let db = ScratchDatabase::create().await;
        config.storage.database_url = db.url.clone();
        config.security.encryption_keys = vec![Keyring::generate_spec("k1")];
        Some(Arc::new(db))
    } else {
        None
    };
    adjust(&mut config);
    let resolver = TestResolver::default();
    let deps = Deps {
        clock,
        resolver: Arc::new(resolver.clone()),
    };
    start(config, dir, deps, manual, resolver, database).await
}

async fn start(
    config: Config,
    dir: Arc<tempfile::TempDir>,
    deps: Deps,
    clock: ManualClock,
    resolver: TestResolver,
    database: Option<Arc<ScratchDatabase>>,
) -> TestApp {
    let app = App::build(config.clone(), deps.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let store = app.state().store_handle();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let admin = Admin::open(&config, deps.clock.clone()).await.unwrap();
    TestApp {
        store,
        database,
        base,
        client: test_client(),
        clock,
        resolver,
        deps,
        admin,
        config,
        dir,
        shutdown,
        server: Some(server),
    }
}

impl TestApp {
    /// The app's store, to look at what it holds.
    pub fn admin_store(&self) -> &dyn orghooks_store::Store {
        &*self.store
    }

    /// Stops the server (waiting for it to let go of the data folder) and
    /// starts a new one on the same data.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown.cancel();
        self.server.take().unwrap().await.unwrap().unwrap();
        let (config, dir, clock) = (self.config.clone(), self.dir.clone(), self.clock.clone());
        let (deps, resolver) = (self.deps.clone(), self.resolver.clone());
        let database = self.database.clone();
        drop(self);
        start(config, dir, deps, clock, resolver, database).await
    }

    /// One request; answers the status and the JSON body (Null if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn token(&self, client_id: &str, client_secret: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/oauth/token",
                None,
                Some(json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn account(&self, org: Uuid, role: Role) -> Tenant {
        let created = self.admin.create_account(org, "test", role).await.unwrap();
        let token = self
            .token(&created.account.client_id, &created.client_secret)
            .await;
        Tenant {
            org,
            token,
            client_id: created.account.client_id,
            client_secret: created.client_secret,
            account: created.account.uuid,
        }
    }

    /// A fresh organization with one manager.
    pub async fn tenant(&self) -> Tenant {
        let org = self.admin.create_org("Test Org").await.unwrap();
        self.account(org.uuid, Role::Manager).await
    }

    /// Adds a webhook and answers its uuid, asserting success.
    pub async fn add_webhook(&self, token: &str, url: &str, events: &[&str]) -> String {
        let (status, body) = self
            .post(
                "/v1/account/settings/webhook",
                token,
                json!({"webhook": {"url": url, "description": "test hook"}, "event_names": events}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["response"]["uuid"].as_str().unwrap().to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The tests' HTTP client. The server closes a keep-alive connection that
/// sends nothing for `http.header_read_timeout_ms` (5 s); a client that
/// reuses one at that moment sees the request fail (IncompleteMessage), as
/// any HTTP client may. Dropping idle connections well before the server
/// does keeps the tests clear of that race under load.
pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap()
}

/// Asserts an error envelope: status, code, message, and the meta copy.
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: u32, message: &str) {
    let (s, body) = got;
    assert_eq!(s.as_u16(), status, "{body}");
    assert_eq!(
        body,
        &json!({"status": status, "code": code, "message": message, "response": null,
                "meta": {"status": status, "msg": message, "code": code}}),
    );
}

/// A resolver whose answers tests set; unknown names do not resolve, and
/// nothing ever reaches real DNS.
#[derive(Clone, Default)]
pub struct TestResolver(Arc<std::sync::Mutex<std::collections::HashMap<String, Answer>>>);

#[derive(Clone)]
enum Answer {
    Ips(Vec<std::net::IpAddr>),
    /// Never answers, like an unreachable DNS server.
    Hang,
}

impl TestResolver {
    pub fn set(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        self.0
            .lock()
            .unwrap()
            .insert(host.to_owned(), Answer::Ips(ips));
    }

    pub fn hang(&self, host: &str) {
        self.0.lock().unwrap().insert(host.to_owned(), Answer::Hang);
    }
}

impl Resolve for TestResolver {
    fn resolve(&self, host: &str) -> BoxFuture<std::io::Result<Vec<std::net::IpAddr>>> {
        let answer = self.0.lock().unwrap().get(host).cloned();
        let host = host.to_owned();
        Box::pin(async move {
            match answer {
                Some(Answer::Ips(ips)) => Ok(ips),
                Some(Answer::Hang) => std::future::pending().await,
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} does not resolve"),
                )),
            }
        })
    }
}

/// A `book.verified` event for `account`, as the publish API takes it.
pub fn book_event(account: Uuid) -> Value {
    json!({"account_uuid": account, "payload": {"event_name": "book.verified",
           "book_uuid": "1e03d9cd-7d84-4672-bc3d-c19cd19c500b", "uploaded_docs": []}})
}

impl TestApp {
    /// Sets a webhook's signing secret through the API.
    pub async fn set_secret(&self, token: &str, webhook: &str, secret: &str) {
        let (status, body) = self
            .post(
                &format!("/v1/account/settings/webhook/{webhook}/rotate-secret"),
                token,
                json!({"secret_key": secret}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The newest delivery of `webhook` with every attempt (the API's
    /// view), once it has had at least one attempt.
    pub async fn first_attempted(&self, token: &str, webhook: &str) -> Value {
        let log = self
            .wait_until(
                &format!("/v1/account/settings/webhook/{webhook}/deliveries"),
                token,
                |b| b["response"]["deliveries"][0]["attempts"].as_u64() >= Some(1),
            )
            .await;
        let delivery = log["response"]["deliveries"][0]["uuid"].as_str().unwrap();
        self.get(
            &format!("/v1/account/settings/webhook/{webhook}/delivery/{delivery}"),
            token,
        )
        .await
        .1
    }

    /// A publisher token made through the admin operations.
    pub async fn publisher_token(&self) -> String {
        self.admin.create_publisher_token("tests").await.unwrap().1
    }

    /// Publishes one event; answers status and body.
    pub async fn publish(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/v1/events", Some(token), Some(body))
            .await
    }

    /// Adds a webhook with extra `webhook` fields; answers its uuid.
    pub async fn add_webhook_with(&self, token: &str, webhook: Value, events: &[&str]) -> String {
        let (status, body) = self
            .post(
                "/v1/account/settings/webhook",
                token,
                json!({"webhook": webhook, "event_names": events}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["response"]["uuid"].as_str().unwrap().to_owned()
    }
}

impl TestApp {
    /// The value of one metric series (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }

    /// Waits until `series` reaches at least `value`, or panics after 30 s.
    pub async fn wait_metric(&self, series: &str, value: f64) {
        self.wait_metric_within(series, value, std::time::Duration::from_secs(30))
            .await
    }

    /// Waits until `series` reaches at least `value`, or panics after `deadline`.
    pub async fn wait_metric_within(
        &self,
        series: &str,
        value: f64,
        deadline: std::time::Duration,
    ) {
        let until = std::time::Instant::now() + deadline;
        loop {
            let got = self.metric(series).await;
            if got >= value {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "{series} stayed at {got}, wanted {value}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits until `GET path` answers a body for which `done` holds.
    pub async fn wait_until(
        &self,
        path: &str,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (_, body) = self.get(path, token).await;
            if done(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < until,
                "{path} never matched: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
