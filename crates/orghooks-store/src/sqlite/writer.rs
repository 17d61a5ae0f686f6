//! The one SQLite writer: a dedicated OS thread that owns the write
//! connection and commits whatever jobs are queued in one
//! `BEGIN IMMEDIATE … COMMIT` (group commit). Each caller is answered only
//! after the commit that holds its write is durable.
//!
//! Jobs come in two kinds. An *isolated* job runs in its own savepoint, so
//! its failure undoes only its own writes (management operations, whose
//! refusals are expected). A *hot* job (publishing, outcomes, claims) skips
//! the savepoint, which costs a statement journal per page: it must refuse
//! before writing anything, and if it fails anyway (an I/O error) the
//! whole batch is rolled back and every caller in it gets the error.
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
    /// Runs the job; `Err` from a hot job means the batch must roll back.
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError>;
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Job<F, R> {
    work: Option<F>,
    isolated: bool,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteJob for Job<F, R>
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let Some(work) = self.work.take() else {
            return Ok(());
        };
        if self.isolated {
            self.result = Some(in_savepoint(conn, work));
            return Ok(());
        }
        let result = work(conn);
        let failed = result.as_ref().err().cloned();
        self.result = Some(result);
        failed.map_or(Ok(()), Err)
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
    exec(conn, "SAVEPOINT job")?;
    let result = work(conn);
    if result.is_err() {
        exec(conn, "ROLLBACK TO job")?;
    }
    exec(conn, "RELEASE job")?;
    result
}

/// Runs a cached statement that returns no rows.
fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(backend)
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

    /// Queues an isolated job, waiting for room, and answers after its commit.
    pub(crate) async fn submit<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = job(work, true);
        self.queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a hot job (see the module docs), waiting for room.
    pub(crate) async fn submit_hot<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = job(work, false);
        self.queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a hot job only if there is room now (`Busy` otherwise).
    pub(crate) async fn try_submit_hot<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = job(work, false);
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

type Answer<R> = oneshot::Receiver<Result<R, StoreError>>;

fn job<F, R>(work: F, isolated: bool) -> (Box<dyn WriteJob>, Answer<R>)
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job = Job {
        work: Some(work),
        isolated,
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
    exec(conn, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        if let Err(e) = job.run(conn) {
            let _ = exec(conn, "ROLLBACK");
            return Err(e);
        }
    }
    if let Err(e) = exec(conn, "COMMIT") {
        let _ = exec(conn, "ROLLBACK");
        return Err(e);
    }
    Ok(())
}
