//! Group commit for PostgreSQL appends: concurrent publishes are merged
//! into one transaction of multi-row inserts, as SQLite's single writer
//! does, so that one commit (and one fsync) serves many callers. Each
//! caller still gets its own events' results, only after that commit.

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{append, pg, pool_error};
use crate::StoreError;
use crate::model::*;

/// Most events merged into one transaction.
const MAX_EVENTS: usize = 2000;

type Answer = Result<Vec<Result<Appended, AppendError>>, StoreError>;

pub(super) struct Request {
    pub events: Vec<NewEvent>,
    pub now: i64,
    pub lease: Option<Lease>,
    pub reply: oneshot::Sender<Answer>,
}

/// Starts the batching task; it ends when every sender is dropped.
pub(super) fn start(pool: Pool, capacity: usize) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel(capacity);
    tokio::spawn(run(pool, rx));
    tx
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Request>) {
    let mut routing = append::Routing::default();
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut count = group[0].events.len();
        let mut held_back = None;
        while count < MAX_EVENTS {
            match rx.try_recv() {
                // One lease per transaction: a request leased differently
                // (or not at all) starts the next group.
                Ok(req) if same_owner(&req.lease, &group[0].lease) => {
                    count += req.events.len();
                    group.push(req);
                }
                Ok(req) => {
                    held_back = Some(req);
                    break;
                }
                Err(_) => break,
            }
        }
        commit(&pool, group, &mut routing).await;
        if let Some(req) = held_back {
            commit(&pool, vec![req], &mut routing).await;
        }
    }
}

fn same_owner(a: &Option<Lease>, b: &Option<Lease>) -> bool {
    a.as_ref().map(|l| &l.owner) == b.as_ref().map(|l| &l.owner)
}

async fn commit(pool: &Pool, group: Vec<Request>, routing: &mut append::Routing) {
    let now = group.iter().map(|r| r.now).max().unwrap_or_default();
    // The latest expiry among the group: leases of one owner only grow.
    let lease = group
        .iter()
        .filter_map(|r| r.lease.clone())
        .max_by_key(|l| l.until);
    let sizes: Vec<usize> = group.iter().map(|r| r.events.len()).collect();
    let events: Vec<NewEvent> = group
        .iter()
        .flat_map(|r| r.events.iter().cloned())
        .collect();
    let result = async {
        let mut client = pool.get().await.map_err(pool_error)?;
        let out = append::append_events(&mut client, &events, now, lease.as_ref(), routing).await?;
        if lease.is_none() && out.iter().any(|o| o.is_ok()) {
            // Due for the workers, and committed: wake them.
            client
                .batch_execute(&format!("NOTIFY {}", super::wakeup::CHANNEL))
                .await
                .map_err(pg)?;
        }
        Ok::<_, StoreError>(out)
    }
    .await;
    match result {
        Ok(mut out) => {
            for (req, size) in group.into_iter().zip(sizes) {
                let rest = out.split_off(size);
                let _ = req.reply.send(Ok(out));
                out = rest;
            }
        }
        Err(e) => {
            for req in group {
                let _ = req.reply.send(Err(e.clone()));
            }
        }
    }
}
