//! The one SQLite writer: a dedicated OS thread that owns the write
//! connection and commits whatever jobs are queued in one
//! `BEGIN IMMEDIATE … COMMIT` (group commit). Each job runs inside its own
//! savepoint, so one job's failure does not undo the others, and each caller
//! is answered only after the commit that holds its write is durable.
//!
//! The queue is bounded: [`Writer::try_submit`] fails with `Busy` instead of
//! buffering without limit, for callers that must push back.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::backend;
use crate::StoreError;

/// Most jobs committed together; beyond this a commit's latency grows
/// without improving throughput (PERFORMANCE.md: batches of ~1,000).
const MAX_BATCH: usize = 1024;

/// A queued write: run it in a transaction, then learn whether it committed.
trait WriteJob: Send {
    fn run(&mut self, conn: &Connection);
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Job<F, R> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteJob for Job<F, R>
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) {
        let Some(work) = self.work.take() else { return };
        let result = in_savepoint(conn, work);
        self.result = Some(result);
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (committed, self.result) {
            (Err(e), _) => Err(e.clone()),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Closed),
        };
        let _ = self.reply.send(answer);
    }
}

fn in_savepoint<R>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.execute_batch("SAVEPOINT job").map_err(backend)?;
    let result = work(conn);
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end).map_err(backend)?;
    result
}

/// The handle callers submit writes through.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn WriteJob>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it stops when every handle is dropped.
    pub(crate) fn start(conn: Connection, capacity: usize) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel(capacity);
        std::thread::Builder::new()
            .name("orghooks-sqlite-writer".into())
            .spawn(move || run(conn, jobs))?;
        Ok(Self { queue })
    }

    /// Queues `work`, waiting for room, and answers after its commit.
    pub(crate) async fn submit<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = job(work);
        self.queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `work` only if there is room now (`Busy` otherwise).
    pub(crate) async fn try_submit<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = job(work);
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

type Answer<R> = oneshot::Receiver<Result<R, StoreError>>;

fn job<F, R>(work: F) -> (Box<dyn WriteJob>, Answer<R>)
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job = Job {
        work: Some(work),
        result: None,
        reply,
    };
    (Box::new(job), answer)
}

fn run(conn: Connection, mut jobs: mpsc::Receiver<Box<dyn WriteJob>>) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(&conn, &mut batch);
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.len(), "sqlite group commit failed");
        }
        for job in batch.drain(..) {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
    for job in batch.iter_mut() {
        job.run(conn);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(backend(e));
    }
    Ok(())
}
