//! The one way to change what is delivered, or how: publishing, sending a
//! test, redelivering, recovering, resuming after a restart, and changing,
//! rotating or deleting a webhook. Each call commits to the store and then
//! tells this node's engine, in that order: leasing new deliveries to this
//! node and handing them to the dispatcher are private to `delivery/`, so
//! no handler can follow half the protocol. Reads (lists, the log) stay
//! plain store calls.

use std::sync::Arc;

use orghooks_core::Clock;
use orghooks_store::{
    AppendError, Appended, Backpressure, NewEvent, Redelivery, Store, StoreError, Webhook,
    WebhookPatch,
};
use uuid::Uuid;

use super::Engine;
use crate::metrics::{Metrics, OutcomeLabels};

/// Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    engine: Engine,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        engine: Engine,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            engine,
            clock,
            metrics,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Commits the events with their deliveries, then starts those this
    /// node leased. A 202 may be sent once this returns `Ok`. A full write
    /// queue answers `StoreError::Busy` at once.
    pub async fn publish(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
        let results = self
            .store
            .append_events(
                events,
                self.now(),
                self.engine.lease(),
                Backpressure::Refuse,
            )
            .await?;
        let mut jobs = Vec::new();
        let mut created = 0;
        for appended in results.iter().flatten() {
            jobs.extend(appended.deliveries.iter().cloned());
            if !appended.replayed {
                // Every delivery, whether leased here or left pending.
                created += u64::from(appended.delivery_count);
            }
        }
        self.metrics.deliveries_created.inc_by(created);
        self.engine.submit(jobs);
        Ok(results)
    }

    /// The webhook's circuit as this node knows it.
    pub fn circuit(&self, webhook: Uuid) -> super::CircuitView {
        self.engine.circuit(webhook)
    }

    /// Creates a test delivery of `event` to `webhook` and starts it;
    /// answers the delivery's uuid.
    pub async fn send_test(&self, webhook: Uuid, event: NewEvent) -> Result<Uuid, StoreError> {
        let (uuid, job) = self
            .store
            .append_test_delivery(webhook, event, self.now(), self.engine.lease())
            .await?;
        self.metrics.deliveries_created.inc();
        self.engine.submit(job.into_iter().collect());
        Ok(uuid)
    }

    /// Sends a finished delivery again (see `DeliveryLog::redeliver`).
    pub async fn redeliver(
        &self,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<Option<Redelivery>, StoreError> {
        let answer = self
            .store
            .redeliver(webhook, delivery, self.now(), self.engine.lease())
            .await?;
        match &answer {
            Some(Redelivery::Leased(job)) => self.engine.submit(vec![job.clone()]),
            Some(Redelivery::Queued) => self.engine.wake(),
            Some(Redelivery::AfterCurrent) | None => {}
        }
        Ok(answer)
    }

    /// Re-queues a webhook's failed deliveries created in `[since, until)`
    /// and looks for them now; answers how many.
    pub async fn recover(&self, webhook: Uuid, since: i64, until: i64) -> Result<u64, StoreError> {
        let recovered = self
            .store
            .recover(webhook, since, until, self.now())
            .await?;
        self.engine.wake();
        Ok(recovered)
    }

    /// Changes a webhook (settings, activation, its secret). This node
    /// forgets the webhook's cached settings and circuit at once; other
    /// nodes within `delivery.webhook_cache_ms`.
    pub async fn change_webhook(
        &self,
        org: Uuid,
        webhook: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError> {
        let changed = self.store.update_webhook(org, webhook, patch).await?;
        self.engine.webhook_changed(webhook);
        Ok(changed)
    }

    /// Deletes a webhook and cancels its waiting deliveries; answers how
    /// many were cancelled.
    pub async fn delete_webhook(&self, org: Uuid, webhook: Uuid) -> Result<u64, StoreError> {
        let cancelled = self.store.delete_webhook(org, webhook, self.now()).await?;
        self.metrics
            .deliveries_settled
            .get_or_create(&OutcomeLabels {
                outcome: "cancelled",
            })
            .inc_by(cancelled);
        self.engine.webhook_changed(webhook);
        Ok(cancelled)
    }

    /// At start, before serving, on a single-node store: every lease left
    /// is a dead or stopped run's, so those deliveries are due again now.
    /// They may have reached their receivers already (a run killed between
    /// the receiver's answer and the commit of its outcome): the log says
    /// how many.
    pub async fn resume_leases(&self) -> Result<u64, StoreError> {
        let resumed = self.store.recover_leases(self.now()).await?;
        if resumed > 0 {
            tracing::warn!(
                deliveries = resumed,
                "resuming deliveries the last run left leased; any of them it was sending when it \
                 stopped may reach its receiver a second time"
            );
        }
        Ok(resumed)
    }
}
