//! The running service: [`App::build`] turns a [`Config`] into a bound
//! listener with everything wired, [`App::run`] serves until the
//! cancellation token fires, then drains in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use orghooks_core::{Catalog, Clock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::data_dir::{self, DirLock};
use crate::metrics::Metrics;
use crate::state::AppState;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    _lock: DirLock,
}

/// Loads the configured catalog: the built-in one, or the operator's folder.
pub fn load_catalog(config: &Config) -> anyhow::Result<Catalog> {
    if config.catalog.path.is_empty() {
        return Catalog::embedded().context("the built-in catalog");
    }
    let dir = std::path::PathBuf::from(&config.catalog.path);
    let text = std::fs::read_to_string(dir.join("catalog.json"))
        .with_context(|| format!("catalog.path: cannot read {}/catalog.json", dir.display()))?;
    Catalog::from_files(&text, |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    })
    .with_context(|| format!("catalog.path {}", dir.display()))
}

impl App {
    /// Locks the data folder, opens the store, binds the listener (port 0
    /// picks a free port). Every failure is returned, never a panic.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let lock = data_dir::lock(&config.storage.data_dir)?;
        if !config.storage.sqlite_synchronous_full {
            tracing::warn!(
                "storage.sqlite_synchronous_full = false: commits may be lost on power failure or OS crash"
            );
        }
        let keyring = data_dir::keyring(&config)?;
        let catalog = load_catalog(&config)?;
        let store = data_dir::open_store(&config)?;
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.listen))?;
        let state = AppState::new(
            store,
            Arc::new(catalog),
            Arc::new(keyring),
            clock,
            config,
            Metrics::new(),
        );
        let router = crate::http::router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            _lock: lock,
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

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "orghooks listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("HTTP server failed")?;
        tracing::info!("orghooks stopped");
        Ok(())
    }
}
