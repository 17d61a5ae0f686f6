//! The delivery queue on PostgreSQL. Appends go through the batcher
//! (`append.rs`, multi-row inserts); claims take rows with
//! `FOR UPDATE SKIP LOCKED`, so no delivery is leased to two nodes. The
//! other statements are the shared ones of [`crate::queue`].

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Object, Transaction};
use uuid::Uuid;

use tokio_postgres::types::Type;

use super::{PgStore, batcher, exec, pg, row, rows, rows_planned_now};
use crate::model::*;
use crate::queue;
use crate::sql::Sql;
use crate::{Backpressure, DeliveryQueue, StoreError};

#[async_trait]
impl DeliveryQueue for PgStore {
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now: i64,
        lease: Option<Lease>,
        backpressure: Backpressure,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = batcher::Request {
            events,
            now,
            lease,
            reply,
        };
        match backpressure {
            Backpressure::Wait => self
                .appends
                .send(request)
                .await
                .map_err(|_| StoreError::Closed)?,
            Backpressure::Refuse => self.appends.try_send(request).map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                tokio::sync::mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?,
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn append_test_delivery(
        &self,
        webhook: Uuid,
        event: NewEvent,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let answer = append_test(&tx, webhook, &event, now, lease.as_ref()).await?;
        tx.commit().await.map_err(pg)?;
        Ok(answer)
    }

    fn due_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.due.clone())
    }

    async fn append_notice(
        &self,
        webhooks: Vec<Uuid>,
        event: NewEvent,
        now: i64,
    ) -> Result<u32, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let made = append_notice(&tx, &webhooks, &event, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(made)
    }

    async fn claim_due(
        &self,
        now: i64,
        lease: Lease,
        limit: u32,
        skip: Vec<Uuid>,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let client = self.client().await?;
        claim(&client, now, &lease, limit, &skip).await
    }

    async fn complete(
        &self,
        owner: String,
        outcomes: Vec<Outcome>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        complete(&client, &owner, &outcomes, now).await
    }

    async fn release_deferred(&self, webhook: Uuid, now: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(&client, &queue::RELEASE_DEFERRED, &[&webhook, &now]).await?;
        Ok(())
    }

    async fn recover_leases(&self, now: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        exec(&client, &queue::RECOVER_LEASES, &[&now]).await
    }

    async fn free_lapsed_leases(
        &self,
        owner: String,
        before: i64,
        keep: Vec<i64>,
        now: i64,
    ) -> Result<u64, StoreError> {
        static FREE: Sql = Sql::new(concat!(queue::free_lapsed_leases!(), "<> ALL($4)"));
        let client = self.client().await?;
        exec(&client, &FREE, &[&owner, &before, &now, &keep]).await
    }

    async fn renew_leases(
        &self,
        owner: String,
        ids: Vec<i64>,
        until: i64,
    ) -> Result<(), StoreError> {
        static RENEW: Sql = Sql::new(
            "UPDATE deliveries SET lease_until = $2 \
             WHERE id = ANY($3) AND lease_owner = $1 AND status = 'delivering' RETURNING id",
        );
        let client = self.client().await?;
        rows_planned_now(
            &client,
            &RENEW,
            &[
                (&owner, Type::TEXT),
                (&until, Type::INT8),
                (&ids, Type::INT8_ARRAY),
            ],
            |_| Ok(()),
        )
        .await?;
        Ok(())
    }
}

async fn append_test(
    tx: &Transaction<'_>,
    webhook: Uuid,
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
    let target = row(tx, &queue::TEST_TARGET, &[&webhook], |r| {
        Ok((r.uuid(0)?, r.opt_count(1)?))
    })
    .await?
    .ok_or(StoreError::NotFound)?;
    let mut made = append_direct(
        tx,
        &[(webhook, target.0, target.1)],
        event,
        now,
        lease,
        true,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => StoreError::Conflict("test event uuid already exists"),
        other => other,
    })?;
    Ok(made.remove(0))
}

async fn append_notice(
    tx: &Transaction<'_>,
    webhooks: &[Uuid],
    event: &NewEvent,
    now: i64,
) -> Result<u32, StoreError> {
    let mut targets = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        if let Some((org, cap)) = row(tx, &queue::TEST_TARGET, &[webhook], |r| {
            Ok((r.uuid(0)?, r.opt_count(1)?))
        })
        .await?
        {
            targets.push((*webhook, org, cap));
        }
    }
    if targets.is_empty() {
        return Ok(0);
    }
    let made = append_direct(tx, &targets, event, now, None, false).await?;
    Ok(made.len() as u32)
}

/// One event of the first target's org with a delivery to each target
/// `(webhook, org, cap)`, outside fan-out and ordering: a test, a notice.
async fn append_direct(
    tx: &Transaction<'_>,
    targets: &[(Uuid, Uuid, Option<u32>)],
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
    is_test: bool,
) -> Result<Vec<(Uuid, Option<DeliveryJob>)>, StoreError> {
    let count = targets.len() as i32;
    let event_id = row(
        tx,
        &queue::INSERT_EVENT,
        &[
            &event.uuid,
            &targets[0].1,
            &event.account_uuid,
            &event.event_name,
            &event.book_uuid,
            &event.occurred_at,
            &now,
            &&*event.payload,
            &event.payload_hash,
            &count,
            &is_test,
        ],
        |r| r.int(0),
    )
    .await?
    .ok_or(StoreError::Conflict("event uuid already exists"))?;
    let mut made = Vec::with_capacity(targets.len());
    for (webhook, _, max_in_flight) in targets {
        // Time-ordered ids keep the uuid index append-only.
        let uuid = Uuid::now_v7();
        let (status, owner, until) = queue::lease_columns(lease, webhook, false);
        let id = row(
            tx,
            &queue::INSERT_DELIVERY,
            &[
                &uuid,
                &event_id,
                webhook,
                &status,
                &is_test,
                &now,
                &owner,
                &until,
                &None::<&str>,
                &None::<i64>,
            ],
            |r| r.int(0),
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))?;
        let job = owner
            .is_some()
            .then(|| queue::created_job(id, uuid, *webhook, *max_in_flight, event, is_test, false));
        made.push((uuid, job));
    }
    Ok(made)
}

/// Due pending deliveries and other owners' expired leases, oldest due
/// first, locked with `SKIP LOCKED` so that concurrent claims take
/// different rows. Each kind is read through its own partial index
/// (`deliveries_due`, `deliveries_leased`).
static CLAIM: Sql = Sql::new(concat!(
    "WITH due AS (SELECT id, next_attempt_at AS at FROM deliveries d \
                   WHERE status = 'pending' AND next_attempt_at <= $3 \
                   AND webhook_uuid <> ALL($5) AND ",
    queue::book_is_free!(),
    "              ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED), \
          lapsed AS (SELECT id, lease_until AS at FROM deliveries \
                   WHERE status = 'delivering' AND lease_until <= $3 \
                   AND lease_owner <> $1 AND webhook_uuid <> ALL($5) \
                   ORDER BY lease_until, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE deliveries SET status = 'delivering', lease_owner = $1, lease_until = $2, \
       updated_at = $3 \
     WHERE id IN (SELECT id FROM (SELECT id, at FROM due UNION ALL SELECT id, at FROM lapsed) c \
                  ORDER BY at, id LIMIT $4) \
     RETURNING ",
    queue::claimed_cols!()
));

async fn claim(
    client: &Object,
    now: i64,
    lease: &Lease,
    limit: u32,
    skip: &[Uuid],
) -> Result<Vec<DeliveryJob>, StoreError> {
    let claimed = rows_planned_now(
        client,
        &CLAIM,
        &[
            (&lease.owner, Type::TEXT),
            (&lease.until, Type::INT8),
            (&now, Type::INT8),
            (&i64::from(limit), Type::INT8),
            (&skip, Type::UUID_ARRAY),
        ],
        queue::claimed,
    )
    .await?;
    let mut events: HashMap<i64, (Uuid, Arc<str>)> = HashMap::new();
    let mut jobs = Vec::with_capacity(claimed.len());
    for c in claimed {
        if let std::collections::hash_map::Entry::Vacant(slot) = events.entry(c.event_id) {
            let (event_uuid, payload) = row(client, &queue::EVENT_PAYLOAD, &[&c.event_id], |r| {
                Ok((r.uuid(0)?, r.text(1)?))
            })
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("event {} vanished", c.event_id)))?;
            slot.insert((event_uuid, payload.into()));
        }
        let (event_uuid, payload) = &events[&c.event_id];
        jobs.push(c.into_job(*event_uuid, payload.clone()));
    }
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

/// A batch of outcomes in one statement, committed on its own: each
/// delivery settled as [`queue::SETTLE`] does (`$1`… are the outcomes'
/// columns, `$5` the owner, `$6` now) and every attempt recorded (`$7`…),
/// also those of deliveries no longer leased here: they were sent. Answers
/// the ids it settled.
static SETTLE_ALL: Sql = Sql::new(
    "WITH settled AS (UPDATE deliveries d SET \
     status = CASE WHEN d.redeliver AND o.status IN ('failed', 'pending') \
              THEN 'pending' ELSE o.status END, \
     next_attempt_at = CASE WHEN d.redeliver AND o.status IN ('failed', 'pending') \
              THEN $6 ELSE o.due END, \
     attempts = CASE WHEN d.redeliver AND o.status IN ('failed', 'pending') \
              THEN 0 ELSE d.attempts + o.attempted END, \
     redeliver = false, lease_owner = NULL, lease_until = NULL, updated_at = $6 \
     FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int4[]) AS o(id, status, due, attempted) \
     WHERE d.id = o.id AND d.status = 'delivering' AND d.lease_owner = $5 \
     RETURNING d.id), \
     recorded AS (INSERT INTO attempts (uuid, delivery_id, started_at, duration_ms, \
       response_status, response_headers, response_body, error, request_headers) \
       SELECT * FROM UNNEST($7::uuid[], $8::int8[], $9::int8[], $10::int8[], $11::int4[], \
         $12::text[], $13::text[], $14::text[], $15::text[])) \
     SELECT id FROM settled",
);

static STATUSES_OF: Sql = Sql::new("SELECT id, status FROM deliveries WHERE id = ANY($1)");

/// Writes a batch of outcomes: one statement, and one more only when some
/// delivery was no longer leased here.
async fn complete(
    c: &Object,
    owner: &str,
    outcomes: &[Outcome],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let attempts: Vec<(i64, &AttemptRecord)> = outcomes
        .iter()
        .filter_map(|o| o.attempt.as_ref().map(|a| (o.delivery_id, a)))
        .collect();
    let col = |f: &dyn Fn(&AttemptRecord) -> Option<String>| {
        attempts.iter().map(|(_, a)| f(a)).collect::<Vec<_>>()
    };
    let (statuses, dues): (Vec<&str>, Vec<i64>) = outcomes
        .iter()
        .map(|o| {
            let (status, due) = o.settle.status_and_due(now);
            (status.as_str(), due)
        })
        .unzip();
    let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id).collect();
    let attempted: Vec<i32> = outcomes
        .iter()
        .map(|o| i32::from(o.attempt.is_some()))
        .collect();
    let attempt_uuids: Vec<Uuid> = attempts.iter().map(|(_, a)| a.uuid).collect();
    let attempt_of: Vec<i64> = attempts.iter().map(|(id, _)| *id).collect();
    let started: Vec<i64> = attempts.iter().map(|(_, a)| a.started_at).collect();
    let durations: Vec<i64> = attempts.iter().map(|(_, a)| a.duration_ms).collect();
    let answered: Vec<Option<i32>> = attempts
        .iter()
        .map(|(_, a)| a.response_status.map(i32::from))
        .collect();
    let (headers, bodies, errors, sent) = (
        col(&|a| a.response_headers.clone()),
        col(&|a| a.response_body.clone()),
        col(&|a| a.error.clone()),
        col(&|a| a.request_headers.clone()),
    );
    let settled: std::collections::HashSet<i64> = rows_planned_now(
        c,
        &SETTLE_ALL,
        &[
            (&ids, Type::INT8_ARRAY),
            (&statuses, Type::TEXT_ARRAY),
            (&dues, Type::INT8_ARRAY),
            (&attempted, Type::INT4_ARRAY),
            (&owner, Type::TEXT),
            (&now, Type::INT8),
            (&attempt_uuids, Type::UUID_ARRAY),
            (&attempt_of, Type::INT8_ARRAY),
            (&started, Type::INT8_ARRAY),
            (&durations, Type::INT8_ARRAY),
            (&answered, Type::INT4_ARRAY),
            (&headers, Type::TEXT_ARRAY),
            (&bodies, Type::TEXT_ARRAY),
            (&errors, Type::TEXT_ARRAY),
            (&sent, Type::TEXT_ARRAY),
        ],
        |r| r.int(0),
    )
    .await?
    .into_iter()
    .collect();
    let unsettled: Vec<i64> = ids.into_iter().filter(|id| !settled.contains(id)).collect();
    if unsettled.is_empty() {
        return Ok(unsettled);
    }
    let now_status: HashMap<i64, String> = rows(c, &STATUSES_OF, &[&unsettled], |r| {
        Ok((r.int(0)?, r.text(1)?))
    })
    .await?
    .into_iter()
    .collect();
    Ok(unsettled
        .into_iter()
        .filter(|id| queue::lost(now_status.get(id).map(String::as_str)))
        .collect())
}
