//! `spawn_app()`: a real server on port 0 with a fresh data folder and a
//! hand-driven clock, plus one small client used by every test.

use std::sync::Arc;

use orghooks_core::ManualClock;
use orghooks_server::admin::Admin;
use orghooks_server::{App, Config};
use orghooks_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub admin: Admin,
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
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    adjust(&mut config);
    start(config, dir, ManualClock::starting_now()).await
}

async fn start(config: Config, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> TestApp {
    let app = App::build(config.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let admin = Admin::open(&config, Arc::new(clock.clone())).unwrap();
    TestApp {
        base,
        client: reqwest::Client::new(),
        clock,
        admin,
        config,
        dir,
        shutdown,
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server (waiting for it to let go of the data folder) and
    /// starts a new one on the same data.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown.cancel();
        self.server.take().unwrap().await.unwrap().unwrap();
        let (config, dir, clock) = (self.config.clone(), self.dir.clone(), self.clock.clone());
        drop(self);
        start(config, dir, clock).await
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
