//! A small pool of read-only connections. Reads run on tokio's blocking
//! threads; in WAL mode they never wait for the writer and always see the
//! last commit.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::StoreError;

#[derive(Clone)]
pub(crate) struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(conns: Vec<Connection>) -> Self {
        let permits = Arc::new(Semaphore::new(conns.len()));
        Self {
            idle: Arc::new(Mutex::new(conns)),
            permits,
        }
    }

    pub(crate) async fn read<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let conn = idle
                .lock()
                .expect("reader pool lock")
                .pop()
                .expect("a permit guarantees an idle connection");
            let result = work(&conn);
            idle.lock().expect("reader pool lock").push(conn);
            drop(permit);
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}
