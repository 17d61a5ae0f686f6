//! The delivery log: a webhook's deliveries with filters and keyset
//! pagination, one delivery with its attempts, sending again (redeliver,
//! recover), and the retention purge. The statements both backends run and
//! the row decoders.

use async_trait::async_trait;
use uuid::Uuid;

use crate::StoreError;
use crate::model::*;
use crate::sql::{Cells, Sql};

/// What was delivered, and sending it again.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// A webhook's deliveries, newest first, filtered.
    async fn list_deliveries(
        &self,
        webhook: Uuid,
        filter: DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError>;
    /// One delivery of a webhook with its attempts (`NotFound` otherwise).
    async fn get_delivery(
        &self,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<DeliveryDetail, StoreError>;
    /// How many of a webhook's deliveries (tests left out) created at or
    /// after `since` are in each status, per `slice_ms`: its health.
    async fn delivery_counts(
        &self,
        webhook: Uuid,
        since: i64,
        slice_ms: i64,
    ) -> Result<Vec<DeliveryCount>, StoreError>;
    /// Sends a finished (succeeded or failed) delivery again: it is reset to
    /// a fresh retry budget and leased to the caller, who sends it now.
    /// One in flight gets one more attempt after the current one unless
    /// that succeeds. `None` when it is already waiting to be sent
    /// (idempotent).
    async fn redeliver(
        &self,
        webhook: Uuid,
        delivery: Uuid,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<Option<Redelivery>, StoreError>;
    /// Re-queues the webhook's failed deliveries created in `[since, until)`
    /// with a fresh retry budget; answers how many.
    async fn recover(
        &self,
        webhook: Uuid,
        since: i64,
        until: i64,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// Deletes up to `limit` events accepted before `cutoff` whose
    /// deliveries are all finished, with their deliveries and attempts.
    async fn purge(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError>;
}

/// The columns [`summary`] reads, in its order.
macro_rules! summary_cols {
    () => {
        "d.id, d.uuid, d.webhook_uuid, e.uuid, e.event_name, e.book_uuid, d.status, d.is_test, \
         d.attempts, d.created_at, d.updated_at, d.next_attempt_at"
    };
}

/// `$2`… are the filter's fields, each ignored when null.
pub(crate) static LIST: Sql = Sql::new(concat!(
    "SELECT ",
    summary_cols!(),
    " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.webhook_uuid = $1 \
     AND (d.status = $2 OR $2 IS NULL) AND (e.event_name = $3 OR $3 IS NULL) \
     AND (e.book_uuid = $4 OR $4 IS NULL) AND (d.created_at >= $5 OR $5 IS NULL) \
     AND (d.created_at < $6 OR $6 IS NULL) AND (d.id < $7 OR $7 IS NULL) \
     ORDER BY d.id DESC LIMIT $8"
));
pub(crate) static COUNTS: Sql = Sql::new(
    "SELECT (created_at - $2) / $3, status, count(*) FROM deliveries \
     WHERE webhook_uuid = $1 AND created_at >= $2 AND is_test = false GROUP BY 1, 2",
);

pub(crate) fn count(r: &dyn Cells) -> Result<DeliveryCount, StoreError> {
    Ok(DeliveryCount {
        slice: r.int(0)?,
        status: DeliveryStatus::parse(&r.text(1)?).unwrap_or(DeliveryStatus::Pending),
        count: r.count(2)?,
    })
}

/// One delivery (`$1`) of a webhook (`$2`), with (column 12) its payload.
pub(crate) static GET: Sql = Sql::new(concat!(
    "SELECT ",
    summary_cols!(),
    ", e.payload FROM deliveries d JOIN events e ON e.id = d.event_id \
     WHERE d.uuid = $1 AND d.webhook_uuid = $2"
));
pub(crate) static ATTEMPTS: Sql = Sql::new(
    "SELECT uuid, started_at, duration_ms, request_headers, response_status, response_headers, \
     response_body, error FROM attempts WHERE delivery_id = $1 ORDER BY id",
);

pub(crate) fn summary(r: &dyn Cells) -> Result<DeliverySummary, StoreError> {
    Ok(DeliverySummary {
        id: r.int(0)?,
        uuid: r.uuid(1)?,
        webhook_uuid: r.uuid(2)?,
        event_uuid: r.uuid(3)?,
        event_name: r.text(4)?,
        book_uuid: r.opt_text(5)?,
        status: DeliveryStatus::parse(&r.text(6)?).unwrap_or(DeliveryStatus::Pending),
        is_test: r.flag(7)?,
        attempts: r.count(8)?,
        created_at: r.int(9)?,
        updated_at: r.int(10)?,
        next_attempt_at: r.int(11)?,
    })
}

pub(crate) fn attempt(r: &dyn Cells) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        uuid: r.uuid(0)?,
        started_at: r.int(1)?,
        duration_ms: r.int(2)?,
        request_headers: r.opt_text(3)?,
        response_status: r
            .opt_int(4)?
            .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("status {s}"))))
            .transpose()?,
        response_headers: r.opt_text(5)?,
        response_body: r.opt_text(6)?,
        error: r.opt_text(7)?,
    })
}

/// What redeliver does with a delivery in each state.
pub(crate) enum RedeliverStep {
    /// Finished: send it again.
    Resend,
    /// In flight: mark it to go once more after the current attempt.
    AfterCurrent,
    /// Already waiting to be sent (or its webhook is gone): nothing.
    Nothing,
}

pub(crate) fn redeliver_step(status: DeliveryStatus) -> RedeliverStep {
    match status {
        DeliveryStatus::Succeeded | DeliveryStatus::Failed => RedeliverStep::Resend,
        DeliveryStatus::Delivering => RedeliverStep::AfterCurrent,
        _ => RedeliverStep::Nothing,
    }
}

pub(crate) static MARK_REDELIVER: Sql =
    Sql::new("UPDATE deliveries SET redeliver = true WHERE id = $1 AND status = 'delivering'");
/// Due now with a fresh budget, for the claimers.
pub(crate) static REQUEUE: Sql = Sql::new(
    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, \
     updated_at = $2 WHERE id = $1 AND status IN ('succeeded', 'failed')",
);
/// Leased to the caller with a fresh budget; answers the webhook's cap and
/// whether the delivery has a place in a book's sequence.
pub(crate) static LEASE_AGAIN: Sql = Sql::new(
    "UPDATE deliveries SET status = 'delivering', attempts = 0, next_attempt_at = $2, \
     lease_owner = $3, lease_until = $4, updated_at = $2 \
     WHERE id = $1 AND status IN ('succeeded', 'failed') \
     RETURNING (SELECT max_in_flight FROM webhooks w WHERE w.uuid = webhook_uuid), book_seq",
);

/// Reads a row of [`LEASE_AGAIN`]: the webhook's cap, and whether the
/// delivery has a place in a book's sequence.
pub(crate) fn leased_again(r: &dyn Cells) -> Result<(Option<u32>, bool), StoreError> {
    Ok((r.opt_count(0)?, r.opt_int(1)?.is_some()))
}

/// The job a redelivery leased.
pub(crate) fn leased_job(
    detail: DeliveryDetail,
    (max_in_flight, ordered): (Option<u32>, bool),
) -> Redelivery {
    Redelivery::Leased(DeliveryJob {
        id: detail.summary.id,
        uuid: detail.summary.uuid,
        webhook_uuid: detail.summary.webhook_uuid,
        max_in_flight,
        event_uuid: detail.summary.event_uuid,
        payload: detail.payload.into(),
        attempts: 0,
        is_test: detail.summary.is_test,
        ordered,
    })
}

pub(crate) static RECOVER: Sql = Sql::new(
    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4, updated_at = $4 \
     WHERE webhook_uuid = $1 AND status = 'failed' AND created_at >= $2 AND created_at < $3",
);

/// Events old enough to go whose deliveries are all finished.
macro_rules! purgeable {
    () => {
        "SELECT id FROM events e WHERE accepted_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.event_id = e.id \
          AND d.status IN ('pending', 'delivering', 'held')) ORDER BY id LIMIT $2"
    };
}
pub(crate) use purgeable;
