//! The delivery queue on SQLite: append with fan-out, claim, complete.
//! Each function runs inside a writer job (one savepoint of a group
//! commit); the statements are the shared ones of [`crate::queue`] but for
//! the claim and the renewal, which pass lists through `json_each`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{SqliteStore, exec, row, rows};
use crate::model::*;
use crate::queue::{self, Target};
use crate::sql::Sql;
use crate::{Backpressure, DeliveryQueue, StoreError};

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now: i64,
        lease: Option<Lease>,
        backpressure: Backpressure,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
        let job = move |conn: &Connection| {
            events
                .iter()
                .map(|e| append_event(conn, e, now, lease.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        match backpressure {
            Backpressure::Wait => self.writer.submit_hot(job).await,
            Backpressure::Refuse => self.writer.try_submit_hot(job).await,
        }
    }

    async fn append_test_delivery(
        &self,
        webhook: Uuid,
        event: NewEvent,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
        self.writer
            .submit(move |conn| append_test(conn, webhook, &event, now, lease.as_ref()))
            .await
    }

    async fn append_notice(
        &self,
        webhooks: Vec<Uuid>,
        event: NewEvent,
        now: i64,
    ) -> Result<u32, StoreError> {
        self.writer
            .submit(move |conn| append_notice(conn, &webhooks, &event, now))
            .await
    }

    async fn claim_due(
        &self,
        now: i64,
        lease: Lease,
        limit: u32,
        skip: Vec<Uuid>,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let skip = serde_json::to_string(&skip.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .expect("a list of strings serialises");
        self.writer
            .submit_hot(move |conn| claim(conn, now, &lease, limit, &skip))
            .await
    }

    async fn complete(
        &self,
        owner: String,
        outcomes: Vec<Outcome>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.writer
            .submit_hot(move |conn| complete(conn, &owner, &outcomes, now))
            .await
    }

    async fn release_deferred(&self, webhook: Uuid, now: i64) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                exec(
                    conn,
                    &queue::RELEASE_DEFERRED,
                    params![webhook.to_string(), now],
                )
                .map(|_| ())
            })
            .await
    }

    async fn recover_leases(&self, now: i64) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| exec(conn, &queue::RECOVER_LEASES, [now]))
            .await
    }

    async fn free_lapsed_leases(
        &self,
        owner: String,
        before: i64,
        keep: Vec<i64>,
        now: i64,
    ) -> Result<u64, StoreError> {
        static FREE: Sql = Sql::new(concat!(
            queue::free_lapsed_leases!(),
            "NOT IN (SELECT value FROM json_each($4))"
        ));
        let keep = serde_json::to_string(&keep).expect("a list of integers serialises");
        self.writer
            .submit(move |conn| exec(conn, &FREE, params![owner, before, now, keep]))
            .await
    }

    async fn renew_leases(
        &self,
        owner: String,
        ids: Vec<i64>,
        until: i64,
    ) -> Result<(), StoreError> {
        static RENEW: Sql = Sql::new(
            "UPDATE deliveries SET lease_until = $2 \
             WHERE id IN (SELECT value FROM json_each($3)) \
             AND lease_owner = $1 AND status = 'delivering'",
        );
        let ids = serde_json::to_string(&ids).expect("a list of integers serialises");
        self.writer
            .submit(move |conn| exec(conn, &RENEW, params![owner, until, ids]).map(|_| ()))
            .await
    }
}

/// Appends one event with its fan-out; `Ok(Err(..))` is a per-event refusal.
fn append_event(
    conn: &Connection,
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
) -> Result<Result<Appended, AppendError>, StoreError> {
    let Some(org) = row(
        conn,
        &queue::ACCOUNT_ORG,
        [event.account_uuid.to_string()],
        |r| r.text(0),
    )?
    else {
        return Ok(Err(AppendError::UnknownAccount));
    };
    let targets: Vec<Target> = rows(conn, &queue::SUBSCRIBERS, [&org], queue::target)?
        .into_iter()
        .filter(|t| t.wants(&event.event_name, &event.account_uuid))
        .collect();
    let delivery_count = targets.len() as u32;
    // Insert first: the unique index answers whether it was published before.
    let Some(event_id) = insert_event(conn, event, &org, now, delivery_count, false)? else {
        let (hash, count) = row(
            conn,
            &queue::EARLIER_EVENT,
            [&org, &event.uuid.to_string()],
            |r| Ok((r.bytes(0)?, r.count(1)?)),
        )?
        .ok_or_else(|| StoreError::Corrupt(format!("event {} vanished", event.uuid)))?;
        if hash != event.payload_hash {
            return Ok(Err(AppendError::PayloadMismatch));
        }
        return Ok(Ok(Appended {
            event_uuid: event.uuid,
            delivery_count: count,
            deliveries: Vec::new(),
            replayed: true,
        }));
    };
    let mut deliveries = Vec::with_capacity(targets.len());
    for target in targets {
        let place = match (&event.book_uuid, target.per_book) {
            (Some(book), true) => {
                let webhook = target.uuid.to_string();
                let seq: i64 = row(conn, &queue::NEXT_BOOK_SEQ, params![webhook, book], |r| {
                    r.int(0)
                })?
                .unwrap_or(1);
                let blocked = row(
                    conn,
                    &queue::WAITS_FOR_EARLIER,
                    params![webhook, book, seq],
                    |r| r.flag(0),
                )?
                .unwrap_or(false);
                Some((book.as_str(), seq, blocked))
            }
            _ => None,
        };
        let new = NewDelivery {
            event,
            event_id,
            webhook: target.uuid,
            max_in_flight: target.max_in_flight,
            place,
            is_test: false,
        };
        // A delivery that must wait for an earlier one of its book is left
        // for the claimer; the others are leased and sent at once.
        if let (_, Some(job)) = insert_delivery(conn, &new, now, lease)? {
            deliveries.push(job);
        }
    }
    Ok(Ok(Appended {
        event_uuid: event.uuid,
        delivery_count,
        deliveries,
        replayed: false,
    }))
}

/// Inserts an event; `None` when the org already has one with its uuid.
fn insert_event(
    conn: &Connection,
    event: &NewEvent,
    org: &str,
    now: i64,
    delivery_count: u32,
    is_test: bool,
) -> Result<Option<i64>, StoreError> {
    row(
        conn,
        &queue::INSERT_EVENT,
        params![
            event.uuid.to_string(),
            org,
            event.account_uuid.to_string(),
            event.event_name,
            event.book_uuid,
            event.occurred_at,
            now,
            &*event.payload,
            event.payload_hash,
            delivery_count,
            is_test
        ],
        |r| r.int(0),
    )
}

struct NewDelivery<'a> {
    event: &'a NewEvent,
    event_id: i64,
    webhook: Uuid,
    max_in_flight: Option<u32>,
    /// Book, place in the sequence, and whether an earlier one is pending.
    place: Option<(&'a str, i64, bool)>,
    is_test: bool,
}

/// Inserts a delivery, leased unless it waits for an earlier one of its
/// book; answers the job to send now, if any.
fn insert_delivery(
    conn: &Connection,
    new: &NewDelivery<'_>,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
    // Time-ordered ids keep the uuid index append-only.
    let uuid = Uuid::now_v7();
    let blocked = new.place.is_some_and(|(_, _, blocked)| blocked);
    let (status, owner, until) = queue::lease_columns(lease, &new.webhook, blocked);
    let id = row(
        conn,
        &queue::INSERT_DELIVERY,
        params![
            uuid.to_string(),
            new.event_id,
            new.webhook.to_string(),
            status,
            new.is_test,
            now,
            owner,
            until,
            new.place.map(|(book, _, _)| book),
            new.place.map(|(_, seq, _)| seq)
        ],
        |r| r.int(0),
    )?
    .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))?;
    let job = owner.is_some().then(|| {
        queue::created_job(
            id,
            uuid,
            new.webhook,
            new.max_in_flight,
            new.event,
            new.is_test,
            new.place.is_some(),
        )
    });
    Ok((uuid, job))
}

fn append_test(
    conn: &Connection,
    webhook: Uuid,
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
    let (org, max_in_flight) = row(conn, &queue::TEST_TARGET, [webhook.to_string()], |r| {
        Ok((r.text(0)?, r.opt_count(1)?))
    })?
    .ok_or(StoreError::NotFound)?;
    let event_id = insert_event(conn, event, &org, now, 1, true)?
        .ok_or(StoreError::Conflict("test event uuid already exists"))?;
    let new = NewDelivery {
        event,
        event_id,
        webhook,
        max_in_flight,
        place: None,
        is_test: true,
    };
    insert_delivery(conn, &new, now, lease)
}

fn append_notice(
    conn: &Connection,
    webhooks: &[Uuid],
    event: &NewEvent,
    now: i64,
) -> Result<u32, StoreError> {
    let mut targets = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        if let Some((org, cap)) = row(conn, &queue::TEST_TARGET, [webhook.to_string()], |r| {
            Ok((r.text(0)?, r.opt_count(1)?))
        })? {
            targets.push((*webhook, org, cap));
        }
    }
    let Some((_, org, _)) = targets.first() else {
        return Ok(0);
    };
    let event_id = insert_event(conn, event, org, now, targets.len() as u32, false)?
        .ok_or(StoreError::Conflict("notice event uuid already exists"))?;
    for (webhook, _, max_in_flight) in &targets {
        let new = NewDelivery {
            event,
            event_id,
            webhook: *webhook,
            max_in_flight: *max_in_flight,
            place: None,
            is_test: false,
        };
        insert_delivery(conn, &new, now, None)?;
    }
    Ok(targets.len() as u32)
}

/// Due pending deliveries and other owners' expired leases, oldest due
/// first. Two indexed scans (`deliveries_due`, `deliveries_leased`) joined
/// by due time.
static CLAIM: Sql = Sql::new(concat!(
    "UPDATE deliveries SET status = 'delivering', lease_owner = $1, lease_until = $2, \
     updated_at = $3 WHERE id IN ( \
       SELECT id FROM (SELECT id, next_attempt_at AS due FROM deliveries d \
                        WHERE status = 'pending' AND next_attempt_at <= $3 \
                        AND webhook_uuid NOT IN (SELECT value FROM json_each($5)) AND ",
    queue::book_is_free!(),
    "              UNION ALL \
                      SELECT id, lease_until AS due FROM deliveries \
                        WHERE status = 'delivering' AND lease_until <= $3 \
                        AND lease_owner <> $1 AND webhook_uuid NOT IN (SELECT value FROM json_each($5))) \
       ORDER BY due, id LIMIT $4) \
     RETURNING ",
    queue::claimed_cols!()
));

fn claim(
    conn: &Connection,
    now: i64,
    lease: &Lease,
    limit: u32,
    skip_json: &str,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let claimed = rows(
        conn,
        &CLAIM,
        params![lease.owner, lease.until, now, limit, skip_json],
        queue::claimed,
    )?;
    let mut events: HashMap<i64, (Uuid, Arc<str>)> = HashMap::new();
    let mut jobs = Vec::with_capacity(claimed.len());
    for c in claimed {
        if let std::collections::hash_map::Entry::Vacant(slot) = events.entry(c.event_id) {
            let (event_uuid, payload) = row(conn, &queue::EVENT_PAYLOAD, [c.event_id], |r| {
                Ok((r.uuid(0)?, r.text(1)?))
            })?
            .ok_or_else(|| StoreError::Corrupt(format!("event {} vanished", c.event_id)))?;
            slot.insert((event_uuid, payload.into()));
        }
        let (event_uuid, payload) = &events[&c.event_id];
        jobs.push(c.into_job(*event_uuid, payload.clone()));
    }
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

fn complete(
    conn: &Connection,
    owner: &str,
    outcomes: &[Outcome],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut lost = Vec::new();
    for outcome in outcomes {
        if let Some(a) = &outcome.attempt {
            exec(
                conn,
                &queue::INSERT_ATTEMPT,
                params![
                    a.uuid.to_string(),
                    outcome.delivery_id,
                    a.started_at,
                    a.duration_ms,
                    a.response_status,
                    a.response_headers,
                    a.response_body,
                    a.error,
                    a.request_headers
                ],
            )?;
        }
        let (status, due) = outcome.settle.status_and_due(now);
        let settled = exec(
            conn,
            &queue::SETTLE,
            params![
                outcome.delivery_id,
                status.as_str(),
                due,
                i64::from(outcome.attempt.is_some()),
                now,
                owner
            ],
        )?;
        if settled == 0 {
            let status = row(conn, &queue::STATUS_OF, [outcome.delivery_id], |r| {
                r.text(0)
            })?;
            if queue::lost(status.as_deref()) {
                lost.push(outcome.delivery_id);
            }
        }
    }
    Ok(lost)
}
