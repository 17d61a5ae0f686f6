//! The delivery engine (SPEC §5): sends every delivery, signed, at least
//! once, retrying on its schedule, with a circuit per webhook.
//!
//! The hot path: [`Outbox::publish`] leases the new deliveries to this node
//! in the commit that accepts the event and hands them to the engine, which
//! sends them at once, with no polling between the 202 and the first
//! attempt. The outbox is the only way in: leasing and submitting are
//! private to this module. The
//! database is the queue for everything else: the claimer picks up due
//! retries and expired leases, the completer writes outcomes back in
//! batches. No transaction is held across an HTTP request; a crash is
//! recovered through leases.

mod dispatch;
mod egress;
mod notices;
mod outbox;
pub mod resolver;
pub mod sender;
pub mod targets;

use std::sync::Arc;
use std::time::Duration;

use orghooks_core::Clock;
use orghooks_core::retry::Schedule;
use orghooks_store::{DeliveryJob, Lease, Outcome, Store};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{Config, DeliveryConfig, RetentionConfig};
use crate::metrics::Metrics;
use dispatch::{Dispatcher, Sent};
pub use egress::proxy_authority;
pub use outbox::Outbox;
use sender::Sender;
use targets::Targets;

/// Most outcomes written back in one commit.
const COMPLETE_BATCH: usize = 1024;
/// Most deliveries claimed at once.
const CLAIM_BATCH: usize = 1024;

pub(crate) enum Msg {
    Jobs(Vec<DeliveryJob>),
    /// A webhook changed through the API: reset its circuit.
    Changed(Uuid),
    Done {
        job: DeliveryJob,
        probe: bool,
        sent: Box<Sent>,
    },
}

/// A webhook's open circuit: its receiver failed
/// `delivery.circuit_failure_threshold` times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenCircuit {
    pub opened_at: i64,
    /// Failed attempts in a row so far.
    pub failures: u32,
    /// When the next probe may go.
    pub probe_at: i64,
}

/// What a node knows of a webhook's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitView {
    Closed,
    Open(OpenCircuit),
    /// This node does not deliver (role `api`): the workers know.
    Unknown,
}

/// What the engine's tasks share.
pub(crate) struct Shared {
    pub node_id: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub targets: Targets,
    pub sender: Sender,
    pub schedule: Schedule,
    pub config: DeliveryConfig,
    pub retention: RetentionConfig,
    pub metrics: Metrics,
    notices: notices::Notices,
    claim_wake: Notify,
    /// Webhooks this node does not take deliveries of for now, and until
    /// when (`None`: until the dispatcher says so): lanes that are full, and
    /// open circuits until their next probe. Their deliveries wait in the
    /// database instead of being taken and written back.
    pub held_back: std::sync::Mutex<std::collections::HashMap<Uuid, Option<i64>>>,
    /// The open circuits of this node's lanes, for the dashboard.
    pub open_circuits: std::sync::Mutex<std::collections::HashMap<Uuid, OpenCircuit>>,
    /// The deliveries leased to this node that it has in memory, from their
    /// lease (a publish here, or a claim) until their outcome is committed:
    /// in the dispatcher's channel, queued, in flight or being written
    /// back. Their leases are renewed; no claim of this node takes them
    /// again, and none of another node may while the renewals keep up.
    holding: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// A lease renewal is running.
    renewing: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The webhooks held back now.
    fn held_back_now(&self) -> Vec<Uuid> {
        let now = self.clock.now_ms();
        self.held_back
            .lock()
            .expect("held back lock")
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now))
            .map(|(w, _)| *w)
            .collect()
    }
}

impl Shared {
    fn circuit_policy(&self) -> orghooks_core::circuit::CircuitPolicy {
        orghooks_core::circuit::CircuitPolicy {
            failure_threshold: self.config.circuit_failure_threshold,
            disable_after_ms: self.config.circuit_disable_after_secs as i64 * 1000,
        }
    }

    /// Loads the webhook and, if it is active, sends one attempt.
    async fn attempt(&self, job: &DeliveryJob) -> Sent {
        let target = match self.targets.get(job.webhook_uuid).await {
            Ok(Some(t)) => t,
            Ok(None) => return Sent::Cancelled,
            Err(e) => return Sent::Unavailable(e.to_string()),
        };
        if !target.is_active {
            return Sent::Held;
        }
        let attempt = self.sender.send(&target, job, self.clock.now_ms()).await;
        Sent::Attempted {
            attempt,
            max_in_flight: target.max_in_flight,
            retry_gaps: target.retry_gaps.clone(),
        }
    }

    /// Notes leased deliveries as held here; answers those that were not
    /// already (a delivery is never taken into memory twice).
    fn hold(&self, jobs: Vec<DeliveryJob>) -> Vec<DeliveryJob> {
        let mut holding = self.holding.lock().expect("holding lock");
        jobs.into_iter().filter(|j| holding.insert(j.id)).collect()
    }

    fn holding_now(&self) -> Vec<i64> {
        let holding = self.holding.lock().expect("holding lock");
        holding.iter().copied().collect()
    }

    /// Their outcomes are committed: the deliveries are no longer held.
    fn outcomes_written(&self, batch: &[Outcome]) {
        let mut holding = self.holding.lock().expect("holding lock");
        for outcome in batch {
            holding.remove(&outcome.delivery_id);
        }
    }

    fn wake_claimer(&self) {
        self.claim_wake.notify_one();
    }

    /// Holds a webhook's new and due deliveries back in the database.
    fn hold_back(&self, webhook: Uuid, until: Option<i64>) {
        self.held_back
            .lock()
            .expect("held back lock")
            .insert(webhook, until);
    }

    /// Notes the webhook's circuit open (or still open after a probe).
    fn circuit_open(&self, webhook: Uuid, now: i64, failures: u32, probe_at: i64) {
        self.open_circuits
            .lock()
            .expect("circuits lock")
            .entry(webhook)
            .and_modify(|c| {
                c.failures = failures;
                c.probe_at = probe_at;
            })
            .or_insert(OpenCircuit {
                opened_at: now,
                failures,
                probe_at,
            });
    }

    /// Forgets the webhook's open circuit; answers when it had opened.
    fn circuit_closed(&self, webhook: Uuid) -> Option<i64> {
        self.open_circuits
            .lock()
            .expect("circuits lock")
            .remove(&webhook)
            .map(|c| c.opened_at)
    }

    /// Takes a webhook's deliveries again, and looks for them now.
    fn release(&self, webhook: Uuid) {
        if self
            .held_back
            .lock()
            .expect("held back lock")
            .remove(&webhook)
            .is_some()
        {
            self.wake_claimer();
        }
    }
}

/// The handle the API uses; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// Whether this node sends deliveries (roles `worker` and `all`).
    delivers: bool,
    tx: mpsc::UnboundedSender<Msg>,
    rx: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<Msg>>>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        targets: Targets,
        sender: Sender,
        config: &Config,
        metrics: Metrics,
    ) -> Self {
        let delivers = config.node.role.delivers();
        let retention = config.retention.clone();
        let notices = notices::Notices::new(&config.notices);
        let config = config.delivery.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let node_id = format!("node-{}", Uuid::new_v4().simple());
        let shared = Arc::new(Shared {
            node_id,
            store,
            clock,
            targets,
            sender,
            schedule: config.schedule(),
            config,
            retention,
            metrics,
            notices,
            claim_wake: Notify::new(),
            held_back: std::sync::Mutex::new(std::collections::HashMap::new()),
            open_circuits: std::sync::Mutex::new(std::collections::HashMap::new()),
            holding: std::sync::Mutex::new(std::collections::HashSet::new()),
            renewing: std::sync::atomic::AtomicBool::new(false),
        });
        Self {
            shared,
            delivers,
            tx,
            rx: Arc::new(std::sync::Mutex::new(Some(rx))),
        }
    }

    /// The lease for deliveries this node creates now; `None` on a node
    /// that does not deliver (role `api`), whose deliveries the workers claim.
    fn lease(&self) -> Option<Lease> {
        self.delivers.then(|| Lease {
            owner: self.shared.node_id.clone(),
            until: self.shared.clock.now_ms() + self.shared.config.lease_ms as i64,
            except: self.shared.held_back_now(),
        })
    }

    /// Hands freshly accepted (and leased) deliveries to the dispatcher.
    fn submit(&self, jobs: Vec<DeliveryJob>) {
        let jobs = self.shared.hold(jobs);
        if !jobs.is_empty() {
            let _ = self.tx.send(Msg::Jobs(jobs));
        }
    }

    /// A webhook changed through this node: forget its cached settings and
    /// look for deliveries it released (re-activation).
    fn webhook_changed(&self, webhook: Uuid) {
        self.shared.targets.invalidate(webhook);
        let _ = self.tx.send(Msg::Changed(webhook));
        self.shared.wake_claimer();
    }

    /// The webhook's circuit on this node.
    pub fn circuit(&self, webhook: Uuid) -> CircuitView {
        if !self.delivers {
            return CircuitView::Unknown;
        }
        match self
            .shared
            .open_circuits
            .lock()
            .expect("circuits lock")
            .get(&webhook)
        {
            Some(open) => CircuitView::Open(*open),
            None => CircuitView::Closed,
        }
    }

    /// Looks for due deliveries now rather than at the next interval.
    fn wake(&self) {
        self.shared.wake_claimer();
    }

    /// Runs the dispatcher, the claimer and the completer until `shutdown`;
    /// then lets requests in flight finish and writes their outcomes.
    pub async fn run(self, shutdown: CancellationToken) {
        if !self.delivers {
            return;
        }
        let Some(mut rx) = self.rx.lock().expect("engine lock").take() else {
            return;
        };
        let shared = self.shared.clone();
        let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
        let completer = tokio::spawn(complete(shared.clone(), outcomes_rx));
        let load = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let claimer = tokio::spawn(claim(
            shared.clone(),
            self.tx.clone(),
            load.clone(),
            shutdown.clone(),
        ));
        let purger = tokio::spawn(purge(shared.clone(), shutdown.clone()));
        if let Some(due) = shared.store.due_signal() {
            // Another node announced due deliveries: claim now.
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = due.notified() => shared.wake_claimer(),
                        () = shutdown.cancelled() => return,
                    }
                }
            });
        }
        let mut dispatcher = Dispatcher::new(shared.clone(), self.tx.clone(), outcomes_tx);
        // Leases are renewed three times per lease period, so a delivery
        // that waits in a slow lane is never claimed back from this node
        // (which would send it twice).
        let lease = Duration::from_millis(shared.config.lease_ms);
        let mut renew = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Jobs(jobs)) => dispatcher.enqueue(jobs),
                    Some(Msg::Done { job, probe, sent }) => dispatcher.done(job, probe, *sent),
                    Some(Msg::Changed(webhook)) => dispatcher.reset(webhook),
                    None => break,
                },
                _ = renew.tick() => renew_leases(&shared),
                _ = shutdown.cancelled() => break,
            }
            load.store(dispatcher.load(), std::sync::atomic::Ordering::Relaxed);
        }
        dispatcher.stop();
        let _ = claimer.await;
        let _ = purger.await;
        // Requests in flight end within the timeout; wait for their outcomes.
        while dispatcher.in_flight() > 0 {
            match rx.recv().await {
                Some(Msg::Done { job, probe, sent }) => dispatcher.done(job, probe, *sent),
                Some(Msg::Jobs(jobs)) => dispatcher.enqueue(jobs),
                Some(Msg::Changed(_)) => {}
                None => break,
            }
        }
        drop(dispatcher);
        let _ = completer.await;
    }
}

/// Writes outcomes back, as many per commit as arrive within
/// `outcome_linger_ms` of the first (the leases cover the wait). Only
/// successes wait: any other outcome (a retry, a failure, a delivery held
/// by a webhook just turned off) goes with the next commit, as the changes
/// it follows (turning the webhook off, say) are already visible.
async fn complete(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Outcome>) {
    let linger = Duration::from_millis(shared.config.outcome_linger_ms);
    let mut batch: Vec<Outcome> = Vec::with_capacity(COMPLETE_BATCH);
    let succeeded = |o: &Outcome| o.settle == orghooks_store::Settle::Succeeded;
    while let Some(first) = rx.recv().await {
        let mut may_wait = !linger.is_zero() && succeeded(&first);
        batch.push(first);
        let until = tokio::time::Instant::now() + linger;
        while batch.len() < COMPLETE_BATCH {
            let next = match rx.try_recv() {
                Ok(o) => o,
                Err(_) if !may_wait => break,
                Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(o)) => o,
                    // Time is up, or the engine is stopping.
                    Ok(None) | Err(_) => break,
                },
            };
            may_wait &= succeeded(&next);
            batch.push(next);
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match shared
                .store
                .complete(shared.node_id.clone(), batch.clone(), shared.clock.now_ms())
                .await
            {
                Ok(lost) => {
                    shared.outcomes_written(&batch);
                    count_settled(&shared.metrics, &batch);
                    if !lost.is_empty() {
                        // Never silence: these deliveries were taken by
                        // another claim after their lease lapsed, so they
                        // may reach their receiver twice.
                        shared.metrics.outcomes_lost.inc_by(lost.len() as u64);
                        tracing::warn!(
                            deliveries = lost.len(),
                            delivery_ids = ?lost.iter().take(10).collect::<Vec<_>>(),
                            "outcomes found their deliveries no longer leased to this node; they may be sent again"
                        );
                    }
                    break;
                }
                Err(e) => {
                    // Leases keep the deliveries safe meanwhile: worst case
                    // they are sent again after the lease expires.
                    tracing::error!(error = %e, outcomes = batch.len(), "cannot write delivery outcomes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        batch.clear();
    }
}

/// Extends the leases of every delivery held here, in the background; one
/// renewal at a time, so that a slow database is not handed a pile of
/// overlapping updates of the same rows.
fn renew_leases(shared: &Arc<Shared>) {
    use std::sync::atomic::Ordering::AcqRel;
    let held = shared.holding_now();
    if held.is_empty() || shared.renewing.swap(true, AcqRel) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let until = shared.clock.now_ms() + shared.config.lease_ms as i64;
        let (owner, count) = (shared.node_id.clone(), held.len());
        if let Err(e) = shared.store.renew_leases(owner, held, until).await {
            tracing::warn!(error = %e, deliveries = count, "cannot renew leases; deliveries held here may be claimed again");
        }
        shared
            .renewing
            .store(false, std::sync::atomic::Ordering::Release);
    });
}

/// Counts the deliveries that reached an end, once that end is committed:
/// what the metric says, the delivery log already shows.
fn count_settled(metrics: &crate::metrics::Metrics, batch: &[Outcome]) {
    for outcome in batch {
        let label = match outcome.settle {
            orghooks_store::Settle::Succeeded => "succeeded",
            orghooks_store::Settle::Failed => "failed",
            orghooks_store::Settle::Cancelled => "cancelled",
            _ => continue,
        };
        metrics
            .deliveries_settled
            .get_or_create(&crate::metrics::OutcomeLabels { outcome: label })
            .inc();
    }
}

/// Claims due retries and other nodes' expired leases, as much as memory
/// allows; once a lease period, frees this node's own lapsed leases on
/// deliveries it does not hold (see [`free_forgotten_leases`]).
async fn claim(
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    load: Arc<std::sync::atomic::AtomicUsize>,
    shutdown: CancellationToken,
) {
    let interval = Duration::from_millis(shared.config.claim_interval_ms);
    let lease = Duration::from_millis(shared.config.lease_ms);
    let mut freed_at = tokio::time::Instant::now();
    loop {
        if freed_at.elapsed() >= lease {
            free_forgotten_leases(&shared).await;
            freed_at = tokio::time::Instant::now();
        }
        loop {
            let used = load.load(std::sync::atomic::Ordering::Relaxed);
            let room = shared
                .config
                .max_queued_total
                .saturating_sub(used)
                .min(CLAIM_BATCH);
            if room == 0 {
                break;
            }
            let lease = Lease {
                owner: shared.node_id.clone(),
                until: shared.clock.now_ms() + shared.config.lease_ms as i64,
                except: Vec::new(),
            };
            let skip = shared.held_back_now();
            match shared
                .store
                .claim_due(shared.clock.now_ms(), lease, room as u32, skip)
                .await
            {
                Ok(jobs) => {
                    let full = jobs.len() == room;
                    let jobs = shared.hold(jobs);
                    // Count them now; the dispatcher reports the exact load
                    // once it has taken them.
                    load.fetch_add(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                    if !jobs.is_empty() && tx.send(Msg::Jobs(jobs)).is_err() {
                        return;
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim due deliveries");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.claim_wake.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// A lease this node took and then lost track of (the publish's commit
/// answered an error, so its deliveries never reached the dispatcher) is
/// not claimed back like another node's: it is made pending again, once
/// it has lapsed for a whole lease period, unless the delivery is held here.
async fn free_forgotten_leases(shared: &Shared) {
    let keep = shared.holding_now();
    let now = shared.clock.now_ms();
    let before = now - shared.config.lease_ms as i64;
    match shared
        .store
        .free_lapsed_leases(shared.node_id.clone(), before, keep, now)
        .await
    {
        Ok(0) => {}
        Ok(freed) => {
            tracing::warn!(
                deliveries = freed,
                "freed deliveries leased to this node that it had lost track of; they will be sent now"
            );
            shared.wake_claimer();
        }
        Err(e) => tracing::warn!(error = %e, "cannot free this node's forgotten leases"),
    }
}

/// Deletes events past the retention period, a small batch per commit.
async fn purge(shared: Arc<Shared>, shutdown: CancellationToken) {
    let interval = Duration::from_millis(shared.retention.purge_interval_ms);
    let period = shared.retention.period_secs as i64 * 1000;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        let cutoff = shared.clock.now_ms() - period;
        let mut purged = 0;
        loop {
            match shared
                .store
                .purge(cutoff, shared.retention.purge_batch)
                .await
            {
                Ok(n) => {
                    purged += n;
                    if n < u64::from(shared.retention.purge_batch) || shutdown.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot purge old events");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(events = purged, "purged events past the retention period");
        }
    }
}
