//! The dispatcher: one task that owns every webhook's lane (its queue of
//! deliveries in memory, its requests in flight, its circuit) and decides
//! what is sent next. It never waits on the network itself: each request
//! runs in its own task and reports back, so a slow or dead receiver only
//! ever occupies its own lane's `max_in_flight` slots.
//!
//! Memory is bounded: past the per-webhook and total queue limits,
//! deliveries go back to the store (deferred) and are claimed again later.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use orghooks_core::attempt::{self, Verdict};
use orghooks_core::circuit::{Circuit, Gate, Transition};
use orghooks_store::{AttemptRecord, DeliveryJob, Outcome, Settle};
use tokio::sync::mpsc;
use uuid::Uuid;

use orghooks_core::notices::Notice;

use super::sender::Attempt;
use super::{Msg, Shared};
use crate::metrics::{OutcomeLabels, WebhookLabels};

/// What the request task found.
#[derive(Debug)]
pub enum Sent {
    Attempted {
        attempt: Attempt,
        /// The webhook's cap as just read (`None`: the node's default).
        max_in_flight: Option<u32>,
        /// The webhook's own retry gaps (`None`: the node's schedule).
        retry_gaps: Option<std::sync::Arc<[std::time::Duration]>>,
    },
    /// The webhook is inactive: hold the delivery.
    Held,
    /// The webhook is gone: cancel the delivery.
    Cancelled,
    /// The webhook could not be loaded; try again later.
    Unavailable(String),
}

struct Lane {
    queue: VecDeque<DeliveryJob>,
    in_flight: u32,
    max_in_flight: u32,
    circuit: Circuit,
    /// Waiting in `Dispatcher::starved` for a global slot.
    starved: bool,
    /// Held back for being full (see `Shared::hold_back`).
    full: bool,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    lanes: HashMap<Uuid, Lane>,
    starved: VecDeque<Uuid>,
    queued_total: usize,
    in_flight_total: usize,
    stopping: bool,
}

impl Dispatcher {
    pub fn new(
        shared: Arc<Shared>,
        tx: mpsc::UnboundedSender<Msg>,
        outcomes: mpsc::UnboundedSender<Outcome>,
    ) -> Self {
        Self {
            shared,
            tx,
            outcomes,
            lanes: HashMap::new(),
            starved: VecDeque::new(),
            queued_total: 0,
            in_flight_total: 0,
            stopping: false,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight_total
    }

    /// Deliveries in memory (queued and in flight): what the claimer may add.
    pub fn load(&self) -> usize {
        self.queued_total + self.in_flight_total
    }

    fn now(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    fn settle(&mut self, job: &DeliveryJob, attempt: Option<AttemptRecord>, settle: Settle) {
        // Counted as settled by the completer, once the outcome is committed.
        let _ = self.outcomes.send(Outcome {
            delivery_id: job.id,
            attempt,
            settle,
            ordered: job.ordered,
        });
    }

    /// New deliveries (accepted just now, or claimed).
    pub fn enqueue(&mut self, jobs: Vec<DeliveryJob>) {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let mut touched = Vec::new();
        // Each delivery comes here once (`Shared::hold`), until its outcome
        // is written.
        for job in jobs {
            let full = self.queued_total >= cfg.max_queued_total;
            let lane = self.lanes.entry(job.webhook_uuid).or_insert_with(|| Lane {
                queue: VecDeque::new(),
                in_flight: 0,
                max_in_flight: cfg.default_max_in_flight,
                circuit: Circuit::default(),
                starved: false,
                full: false,
            });
            if self.stopping || full || lane.queue.len() >= cfg.max_queued_per_webhook {
                // Back to the database, due now; while the lane is full the
                // claimer leaves this webhook's deliveries there.
                if lane.queue.len() >= cfg.max_queued_per_webhook && !lane.full {
                    lane.full = true;
                    shared.hold_back(job.webhook_uuid, None);
                }
                let at = shared.clock.now_ms();
                self.settle(&job, None, Settle::Deferred { at });
                continue;
            }
            lane.max_in_flight = cfg.max_in_flight(job.max_in_flight);
            if lane.queue.is_empty() {
                touched.push(job.webhook_uuid);
            }
            lane.queue.push_back(job);
            self.queued_total += 1;
        }
        for webhook in touched {
            self.pump(webhook);
        }
    }

    /// Starts what the lane's limits, the global limit and the circuit allow.
    fn pump(&mut self, webhook: Uuid) {
        let now = self.now();
        let total_cap = self.shared.config.max_in_flight_total;
        let claim_gap = self.shared.config.claim_interval_ms as i64;
        let Some(lane) = self.lanes.get_mut(&webhook) else {
            return;
        };
        let mut deferred = Vec::new();
        let mut start = Vec::new();
        while lane.in_flight < lane.max_in_flight && !self.stopping {
            let Some(job) = lane.queue.front() else { break };
            if self.in_flight_total + start.len() >= total_cap {
                if !lane.starved {
                    lane.starved = true;
                    self.starved.push_back(webhook);
                }
                break;
            }
            let gate = lane.circuit.gate(now, job.is_test);
            let job = lane.queue.pop_front().expect("front exists");
            self.queued_total -= 1;
            match gate {
                Gate::Wait { until } => deferred.push((job, until.max(now + claim_gap))),
                Gate::Send { probe } => {
                    lane.in_flight += 1;
                    start.push((job, probe));
                }
            }
        }
        let lane_in_flight = lane.in_flight;
        if lane.full && lane.queue.len() < self.shared.config.max_queued_per_webhook / 2 {
            lane.full = false;
            if !lane.circuit.is_open() {
                self.shared.release(webhook);
            }
        }
        if lane.queue.is_empty() && lane.in_flight == 0 && !lane.starved && lane.circuit.is_idle() {
            self.lanes.remove(&webhook);
        }
        for (job, at) in deferred {
            self.settle(&job, None, Settle::Deferred { at });
        }
        if !start.is_empty() {
            self.shared
                .metrics
                .in_flight
                .get_or_create(&WebhookLabels {
                    webhook_uuid: webhook.to_string(),
                })
                .set(lane_in_flight as i64);
        }
        for (job, probe) in start {
            self.in_flight_total += 1;
            let shared = self.shared.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let sent = shared.attempt(&job).await;
                let _ = tx.send(Msg::Done {
                    job,
                    probe,
                    sent: Box::new(sent),
                });
            });
        }
    }

    /// A request task reported back.
    pub fn done(&mut self, job: DeliveryJob, probe: bool, sent: Sent) {
        self.in_flight_total -= 1;
        let webhook = job.webhook_uuid;
        let now = self.now();
        let mut circuit_event = None;
        if let Some(lane) = self.lanes.get_mut(&webhook) {
            lane.in_flight -= 1;
            if probe {
                lane.circuit.probe_done();
            }
            self.shared
                .metrics
                .in_flight
                .get_or_create(&WebhookLabels {
                    webhook_uuid: webhook.to_string(),
                })
                .set(lane.in_flight as i64);
            if let Sent::Attempted { max_in_flight, .. } = &sent {
                lane.max_in_flight = self.shared.config.max_in_flight(*max_in_flight);
            }
        }
        match sent {
            Sent::Held => self.settle(&job, None, Settle::Held),
            Sent::Cancelled => self.settle(&job, None, Settle::Cancelled),
            Sent::Unavailable(reason) => {
                tracing::warn!(webhook_uuid = %webhook, delivery_uuid = %job.uuid, error = %reason,
                    "cannot load the webhook; the delivery waits");
                let at = now + self.shared.config.claim_interval_ms as i64;
                self.settle(&job, None, Settle::Deferred { at });
            }
            Sent::Attempted {
                attempt,
                retry_gaps,
                ..
            } => {
                circuit_event = self.attempted(&job, attempt, retry_gaps, now);
            }
        }
        let mut disable = None;
        if let Some(lane) = self.lanes.get_mut(&webhook)
            && !job.is_test
        {
            let c = &mut lane.circuit;
            let transition = match circuit_event {
                Some(CircuitEvent::Success) => c.on_success(),
                Some(CircuitEvent::Failure { next_at }) => {
                    c.on_failure(now, next_at, &self.shared.circuit_policy())
                }
                None => Transition::Stay,
            };
            let failures = c.consecutive_failures();
            match transition {
                Transition::Stay => {}
                Transition::Closed => {
                    if let Some(opened_at) = self.shared.circuit_closed(webhook) {
                        self.shared
                            .notify(webhook, Notice::CircuitClosed { opened_at }, now);
                    }
                    self.shared.release(webhook);
                    self.shared.metrics.circuits_open.dec();
                    tracing::info!(webhook_uuid = %webhook, "circuit closed: the receiver answers again");
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        let now = shared.clock.now_ms();
                        if let Err(e) = shared.store.release_deferred(webhook, now).await {
                            tracing::error!(webhook_uuid = %webhook, error = %e, "cannot release deferred deliveries");
                        }
                        shared.wake_claimer();
                    });
                }
                Transition::Opened { probe_at } => {
                    self.shared.circuit_open(webhook, now, failures, probe_at);
                    self.shared.notify(
                        webhook,
                        Notice::CircuitOpened {
                            failures,
                            next_attempt_at: probe_at,
                        },
                        now,
                    );
                    self.shared.hold_back(webhook, Some(probe_at));
                    self.shared.metrics.circuits_open.inc();
                    tracing::warn!(webhook_uuid = %webhook, failures,
                        "circuit opened: deliveries wait while one probe at a time retries");
                }
                Transition::Reopened { probe_at } => {
                    self.shared.circuit_open(webhook, now, failures, probe_at);
                    self.shared.hold_back(webhook, Some(probe_at));
                }
                Transition::Disable { opened_at } => {
                    // Open for too long: the receiver is gone for good.
                    disable = Some(format!(
                        "the receiver kept failing: its circuit was open from {} to {}",
                        orghooks_core::clock::format_ms(opened_at),
                        orghooks_core::clock::format_ms(now)
                    ));
                    self.shared.circuit_closed(webhook);
                    self.shared.release(webhook);
                    self.shared.metrics.circuits_open.dec();
                }
            }
        }
        if let Some(reason) = disable {
            self.disable(webhook, reason);
        }
        self.pump(webhook);
        while self.in_flight_total < self.shared.config.max_in_flight_total {
            let Some(next) = self.starved.pop_front() else {
                break;
            };
            if let Some(lane) = self.lanes.get_mut(&next) {
                lane.starved = false;
            }
            self.pump(next);
        }
    }

    fn attempted(
        &mut self,
        job: &DeliveryJob,
        attempt: Attempt,
        retry_gaps: Option<std::sync::Arc<[std::time::Duration]>>,
        now: i64,
    ) -> Option<CircuitEvent> {
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        metrics
            .attempt_duration
            .observe(attempt.duration.as_secs_f64());
        let record = AttemptRecord {
            uuid: attempt.request_id,
            started_at: attempt.started_at_ms,
            duration_ms: attempt.duration.as_millis() as i64,
            request_headers: attempt.request_headers.clone(),
            response_status: attempt.status(),
            response_headers: attempt.headers.clone(),
            response_body: attempt.body.clone(),
            error: attempt.error().map(ToString::to_string),
        };
        metrics
            .attempts
            .get_or_create(&OutcomeLabels {
                outcome: attempt.ending.label(),
            })
            .inc();
        let attempts_done = job.attempts + 1;
        let own;
        let schedule = match retry_gaps {
            Some(gaps) => {
                own = orghooks_core::retry::Schedule {
                    gaps: gaps.to_vec(),
                    jitter: self.shared.schedule.jitter,
                };
                &own
            }
            None => &self.shared.schedule,
        };
        let verdict = attempt::decide(
            &attempt.ending,
            attempts_done,
            schedule,
            job.uuid.as_bytes(),
            now,
        );
        let settle = match verdict {
            Verdict::Succeeded => {
                self.settle(job, Some(record), Settle::Succeeded);
                return Some(CircuitEvent::Success);
            }
            Verdict::Gone => {
                self.settle(job, Some(record), Settle::Held);
                self.disable(
                    job.webhook_uuid,
                    "the receiver answered 410 Gone".to_owned(),
                );
                return None;
            }
            Verdict::Retry { at } => Settle::Retry { at },
            Verdict::Exhausted { .. } => {
                self.exhausted(job, attempts_done, &attempt, now);
                Settle::Failed
            }
        };
        tracing::warn!(
            webhook_uuid = %job.webhook_uuid,
            delivery_uuid = %job.uuid,
            attempt = attempts_done,
            status = attempt.status(),
            error = %attempt.error().map(ToString::to_string).unwrap_or_default(),
            retry_at = verdict.next_try().filter(|_| matches!(settle, Settle::Retry { .. })),
            "delivery attempt failed"
        );
        self.settle(job, Some(record), settle);
        verdict
            .next_try()
            .map(|next_at| CircuitEvent::Failure { next_at })
    }

    /// A delivery failed its whole schedule: `delivery.exhausted`, unless
    /// it was itself a notice, or one went for this webhook lately.
    fn exhausted(&self, job: &DeliveryJob, attempts: u32, attempt: &Attempt, now: i64) {
        let event_type = serde_json::from_str::<serde_json::Value>(&job.payload)
            .ok()
            .and_then(|p| p["event_name"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if job.is_test || orghooks_core::notices::NAMES.contains(&event_type.as_str()) {
            return; // a test, or a notice's own delivery: notices never beget notices
        }
        let Some(since_last_notice) = self.shared.notices.exhausted_due(job.webhook_uuid, now)
        else {
            return;
        };
        let last_error = match (attempt.status(), attempt.error()) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(e)) => e.to_string(),
            (None, None) => String::new(),
        };
        self.shared.notify(
            job.webhook_uuid,
            Notice::Exhausted {
                delivery_uuid: job.uuid,
                event_uuid: job.event_uuid,
                event_type,
                attempts,
                last_error,
                since_last_notice,
            },
            now,
        );
    }

    /// Turns the webhook off (its pending deliveries are held); the one
    /// call that does raises `webhook.disabled`.
    fn disable(&self, webhook: Uuid, reason: String) {
        tracing::warn!(webhook_uuid = %webhook, reason = %reason, "disabling the webhook");
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let now = shared.clock.now_ms();
            match shared
                .store
                .disable_webhook(webhook, reason.clone(), now)
                .await
            {
                Ok(true) => shared.notify(webhook, Notice::Disabled { reason }, now),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(webhook_uuid = %webhook, error = %e, "cannot disable the webhook");
                }
            }
            shared.targets.invalidate(webhook);
        });
    }

    /// A webhook was changed by its admin: it starts with a closed circuit.
    pub fn reset(&mut self, webhook: Uuid) {
        if let Some(lane) = self.lanes.get_mut(&webhook)
            && lane.circuit.reset()
        {
            self.shared.metrics.circuits_open.dec();
        }
        self.shared.circuit_closed(webhook);
        self.shared.release(webhook);
    }

    /// Stops starting requests; queued deliveries go back to the store.
    pub fn stop(&mut self) {
        self.stopping = true;
        let now = self.now();
        let lanes: Vec<Uuid> = self.lanes.keys().copied().collect();
        for webhook in lanes {
            let Some(lane) = self.lanes.get_mut(&webhook) else {
                continue;
            };
            let jobs: Vec<DeliveryJob> = lane.queue.drain(..).collect();
            self.queued_total -= jobs.len();
            for job in jobs {
                self.settle(&job, None, Settle::Deferred { at: now });
            }
        }
    }
}

enum CircuitEvent {
    Success,
    Failure { next_at: i64 },
}
