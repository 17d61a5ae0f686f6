//! The running service: [`App::build`] turns a [`Config`] into a bound
//! listener with everything wired (store, API, delivery engine),
//! [`App::run`] serves and delivers until the cancellation token fires, then
//! drains what is in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orghooks_core::{Catalog, Clock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::data_dir::{self, DirLock};
use crate::delivery::resolver::{PolicyResolver, Resolve, SystemResolver};
use crate::delivery::sender::Sender;
use crate::delivery::targets::Targets;
use crate::delivery::{Engine, Outbox};
use crate::http::serve::ConnectionLimits;
use crate::metrics::Metrics;
use crate::state::AppState;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    engine: Engine,
    /// Held for SQLite (released on drop): one `serve` per data folder.
    _lock: Option<DirLock>,
    limits: ConnectionLimits,
}

/// What the app reads the world through; tests replace both.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub resolver: Arc<dyn Resolve>,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            clock: Arc::new(orghooks_core::SystemClock),
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// Loads the configured catalog: the built-in one, or the operator's folder.
pub fn load_catalog(config: &Config) -> anyhow::Result<Catalog> {
    if config.catalog.path.is_empty() {
        return Catalog::embedded().context("the built-in catalog");
    }
    let dir = std::path::PathBuf::from(&config.catalog.path);
    let text = std::fs::read_to_string(dir.join("catalog.json"))
        .with_context(|| format!("catalog.path: cannot read {}/catalog.json", dir.display()))?;
    // Like the built-in folder, an operator's may keep extra types in beta.json.
    let beta = match std::fs::read_to_string(dir.join("beta.json")) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("catalog.path: cannot read {}/beta.json", dir.display()));
        }
    };
    let lists: Vec<&str> = std::iter::once(text.as_str())
        .chain(beta.as_deref())
        .collect();
    Catalog::from_files(&lists, |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    })
    .with_context(|| format!("catalog.path {}", dir.display()))
}

impl App {
    /// Locks the data folder, opens the store, binds the listener (port 0
    /// picks a free port). Every failure is returned, never a panic.
    pub async fn build(config: Config, deps: Deps) -> anyhow::Result<Self> {
        let clock = deps.clock;
        let lock = if config.storage.is_postgres() {
            None
        } else {
            Some(data_dir::lock(&config.storage.data_dir)?)
        };
        if !config.storage.sqlite_synchronous_full {
            tracing::warn!(
                "storage.sqlite_synchronous_full = false: commits may be lost on power failure or OS crash"
            );
        }
        let keyring = data_dir::keyring(&config)?;
        let catalog = load_catalog(&config)?;
        let store = data_dir::open_store(&config).await?;
        let keyring = Arc::new(keyring);
        let metrics = Metrics::new();
        let policy =
            orghooks_core::url_policy::AddressPolicy::new(config.security.allow_cidrs.clone());
        let d = &config.delivery;
        let resolver = PolicyResolver::new(
            deps.resolver,
            policy.clone(),
            Duration::from_millis(d.resolver_timeout_ms),
        );
        let sender = Sender::new(
            resolver.clone(),
            policy,
            Duration::from_millis(d.timeout_ms),
            &d.proxy_url,
        )?;
        let targets = Targets::new(
            store.clone(),
            keyring.clone(),
            clock.clone(),
            Duration::from_millis(d.webhook_cache_ms),
        );
        let engine = Engine::new(
            store.clone(),
            clock.clone(),
            targets,
            sender,
            &config,
            metrics.clone(),
        );
        let outbox = Outbox::new(
            store.clone(),
            engine.clone(),
            clock.clone(),
            metrics.clone(),
        );
        if lock.is_some() {
            // The data folder's lock says no other process sends from this
            // database, so every lease left is a dead (or stopped) run's:
            // resume them now, before this process serves or leases
            // anything itself.
            if let Err(e) = outbox.resume_leases().await {
                tracing::warn!(error = %e, "cannot resume the last run's deliveries now; they wait for their leases to expire");
            }
        }
        // Raises the open-file limit before the listener takes connections.
        let limits = ConnectionLimits::from_config(&config);
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.listen))?;
        let state = AppState::new(
            store,
            Arc::new(catalog),
            keyring,
            clock,
            config,
            metrics,
            outbox,
            resolver,
        );
        let router = crate::http::router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            engine,
            _lock: lock,
            limits,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and delivers until `shutdown` is cancelled, then lets
    /// in-flight requests and deliveries finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Leases a dead SQLite run left were resumed in `build`; nodes
        // sharing PostgreSQL wait for leases to expire.
        let addr = self.local_addr();
        let engine = tokio::spawn(self.engine.run(shutdown.clone()));
        let role = self.state.config().node.role;
        let storage = self.state.config().storage.describe();
        tracing::info!(addr = %addr, role = ?role, storage = %storage, "orghooks listening");
        crate::http::serve::serve(
            self.listener,
            self.router,
            self.limits,
            self.state.metrics().http_connections.clone(),
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        let _ = engine.await;
        tracing::info!("orghooks stopped");
        Ok(())
    }
}
