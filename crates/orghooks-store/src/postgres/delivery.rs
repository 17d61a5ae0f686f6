//! Events and deliveries on PostgreSQL: append with fan-out, claim with
//! `FOR UPDATE SKIP LOCKED`, complete, the delivery log, resending and the
//! retention purge. Each function runs in the caller's transaction.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;
use uuid::Uuid;

use super::pg;
use crate::StoreError;
use crate::model::*;

struct NewDelivery<'a> {
    event: &'a NewEvent,
    event_id: i64,
    webhook: Uuid,
    max_in_flight: u32,
    place: Option<(&'a str, i64, bool)>,
    is_test: bool,
}

async fn insert_delivery(
    tx: &Transaction<'_>,
    new: &NewDelivery<'_>,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
    // Time-ordered ids keep the uuid index append-only.
    let uuid = Uuid::now_v7();
    let blocked = new.place.is_some_and(|(_, _, blocked)| blocked);
    let (status, owner, until) = match lease {
        Some(lease) if !blocked && lease.takes(&new.webhook) => {
            ("delivering", Some(lease.owner.as_str()), Some(lease.until))
        }
        _ => ("pending", None, None),
    };
    let id: i64 = tx
        .query_one(
            "INSERT INTO deliveries (uuid, event_id, webhook_uuid, status, is_test, attempts, \
             next_attempt_at, lease_owner, lease_until, created_at, updated_at, book_uuid, book_seq) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $6, $6, $9, $10) RETURNING id",
            &[
                &uuid,
                &new.event_id,
                &new.webhook,
                &status,
                &new.is_test,
                &now,
                &owner,
                &until,
                &new.place.map(|(book, _, _)| book),
                &new.place.map(|(_, seq, _)| seq),
            ],
        )
        .await
        .map_err(pg)?
        .get(0);
    let job = owner.is_some().then(|| DeliveryJob {
        id,
        uuid,
        webhook_uuid: new.webhook,
        max_in_flight: new.max_in_flight,
        event_uuid: new.event.uuid,
        payload: new.event.payload.clone(),
        attempts: 0,
        is_test: new.is_test,
        ordered: new.place.is_some(),
    });
    Ok((uuid, job))
}

pub(super) async fn append_test(
    tx: &Transaction<'_>,
    webhook: Uuid,
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
    let row = tx
        .query_opt(
            "SELECT org_uuid, max_in_flight FROM webhooks WHERE uuid = $1 AND deleted_at IS NULL",
            &[&webhook],
        )
        .await
        .map_err(pg)?
        .ok_or(StoreError::NotFound)?;
    let org: Uuid = row.get(0);
    let max_in_flight: i32 = row.get(1);
    let event_id: i64 = tx
        .query_one(
            "INSERT INTO events (uuid, org_uuid, account_uuid, event_name, book_uuid, occurred_at, \
             accepted_at, payload, payload_hash, delivery_count, is_test) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, true) RETURNING id",
            &[
                &event.uuid,
                &org,
                &event.account_uuid,
                &event.event_name,
                &event.book_uuid,
                &event.occurred_at,
                &now,
                &&*event.payload,
                &event.payload_hash,
            ],
        )
        .await
        .map_err(pg)?
        .get(0);
    let new = NewDelivery {
        event,
        event_id,
        webhook,
        max_in_flight: max_in_flight as u32,
        place: None,
        is_test: true,
    };
    insert_delivery(tx, &new, now, lease).await
}

/// Claims due deliveries; rows another node is claiming are skipped.
pub(super) async fn claim(
    client: &impl GenericClient,
    now: i64,
    lease: &Lease,
    limit: u32,
    skip: &[Uuid],
) -> Result<Vec<DeliveryJob>, StoreError> {
    let rows = client
        .query(
            "UPDATE deliveries SET status = 'delivering', lease_owner = $1, lease_until = $2, updated_at = $3 \
             WHERE id IN ( \
               SELECT id FROM deliveries d \
               WHERE ((status = 'pending' AND next_attempt_at <= $3 \
                       AND (book_seq IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p \
                            WHERE p.webhook_uuid = d.webhook_uuid AND p.book_uuid = d.book_uuid \
                            AND p.book_seq < d.book_seq \
                            AND p.status IN ('pending', 'delivering', 'held')))) \
                      OR (status = 'delivering' AND lease_until <= $3)) \
               AND webhook_uuid <> ALL($5) \
               ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, uuid, webhook_uuid, event_id, attempts, is_test, book_seq, \
               (SELECT max_in_flight FROM webhooks w WHERE w.uuid = webhook_uuid)",
            &[&lease.owner, &lease.until, &now, &i64::from(limit), &skip],
        )
        .await
        .map_err(pg)?;
    let mut events: HashMap<i64, (Uuid, Arc<str>)> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for r in rows {
        let event_id: i64 = r.get("event_id");
        if let std::collections::hash_map::Entry::Vacant(slot) = events.entry(event_id) {
            let e = client
                .query_one(
                    "SELECT uuid, payload FROM events WHERE id = $1",
                    &[&event_id],
                )
                .await
                .map_err(pg)?;
            let payload: String = e.get(1);
            slot.insert((e.get(0), payload.into()));
        }
        let (event_uuid, payload) = &events[&event_id];
        let attempts: i32 = r.get("attempts");
        let max_in_flight: Option<i32> = r.get(7);
        let book_seq: Option<i64> = r.get("book_seq");
        jobs.push(DeliveryJob {
            id: r.get("id"),
            uuid: r.get("uuid"),
            webhook_uuid: r.get("webhook_uuid"),
            max_in_flight: max_in_flight.unwrap_or(1) as u32,
            event_uuid: *event_uuid,
            payload: payload.clone(),
            attempts: attempts as u32,
            is_test: r.get("is_test"),
            ordered: book_seq.is_some(),
        });
    }
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

pub(super) async fn complete(
    tx: &Transaction<'_>,
    outcomes: &[Outcome],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut lost = Vec::new();
    for outcome in outcomes {
        if let Some(a) = &outcome.attempt {
            tx.execute(
                "INSERT INTO attempts (uuid, delivery_id, started_at, duration_ms, response_status, \
                 response_headers, response_body, error, request_headers) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &a.uuid,
                    &outcome.delivery_id,
                    &a.started_at,
                    &a.duration_ms,
                    &a.response_status.map(i32::from),
                    &a.response_headers,
                    &a.response_body,
                    &a.error,
                    &a.request_headers,
                ],
            )
            .await
            .map_err(pg)?;
        }
        let attempted = i32::from(outcome.attempt.is_some());
        let (status, due) = match outcome.settle {
            Settle::Succeeded => (DeliveryStatus::Succeeded, now),
            Settle::Retry { at } => (DeliveryStatus::Pending, at),
            Settle::Failed => (DeliveryStatus::Failed, now),
            Settle::Held => (DeliveryStatus::Held, now),
            Settle::Cancelled => (DeliveryStatus::Cancelled, now),
            Settle::Deferred { at } => (DeliveryStatus::Pending, at),
        };
        // As on SQLite: a redelivery asked for in flight goes again now.
        let settled = tx.execute(
            "UPDATE deliveries SET status = CASE WHEN redeliver AND $2::text IN ('failed', 'pending') THEN 'pending' ELSE $2::text END, \
             next_attempt_at = CASE WHEN redeliver AND $2::text IN ('failed', 'pending') THEN $5::bigint ELSE $3::bigint END, \
             attempts = CASE WHEN redeliver AND $2::text IN ('failed', 'pending') THEN 0 ELSE attempts + $4::integer END, \
             redeliver = false, \
             lease_owner = NULL, lease_until = NULL, updated_at = $5 \
             WHERE id = $1 AND status = 'delivering'",
            &[
                &outcome.delivery_id,
                &status.as_str(),
                &due,
                &attempted,
                &now,
            ],
        )
        .await
        .map_err(pg)?;
        if settled == 0 {
            let row = tx
                .query_opt(
                    "SELECT status FROM deliveries WHERE id = $1",
                    &[&outcome.delivery_id],
                )
                .await
                .map_err(pg)?;
            if row.map(|r| r.get::<_, String>(0)).as_deref() != Some("cancelled") {
                lost.push(outcome.delivery_id);
            }
        }
    }
    Ok(lost)
}

pub(super) async fn hold_or_release(
    tx: &Transaction<'_>,
    webhook: Uuid,
    active: bool,
    now: i64,
) -> Result<(), StoreError> {
    let sql = if active {
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2 \
         WHERE webhook_uuid = $1 AND status = 'held'"
    } else {
        "UPDATE deliveries SET status = 'held', updated_at = $2 \
         WHERE webhook_uuid = $1 AND status = 'pending'"
    };
    tx.execute(sql, &[&webhook, &now]).await.map_err(pg)?;
    Ok(())
}

const SUMMARY_COLS: &str = "d.id, d.uuid, d.webhook_uuid, e.uuid AS event_uuid, e.event_name, \
     e.book_uuid, d.status, d.is_test, d.attempts, d.created_at, d.updated_at, d.next_attempt_at";

fn summary_row(r: &Row) -> DeliverySummary {
    let status: String = r.get("status");
    let attempts: i32 = r.get("attempts");
    DeliverySummary {
        id: r.get("id"),
        uuid: r.get("uuid"),
        webhook_uuid: r.get("webhook_uuid"),
        event_uuid: r.get("event_uuid"),
        event_name: r.get("event_name"),
        book_uuid: r.get("book_uuid"),
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        is_test: r.get("is_test"),
        attempts: attempts as u32,
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        next_attempt_at: r.get("next_attempt_at"),
    }
}

pub(super) async fn list(
    client: &impl GenericClient,
    webhook: Uuid,
    f: &DeliveryFilter,
) -> Result<Vec<DeliverySummary>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {SUMMARY_COLS} FROM deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE d.webhook_uuid = $1 \
                 AND ($2::text IS NULL OR d.status = $2) AND ($3::text IS NULL OR e.event_name = $3) \
                 AND ($4::text IS NULL OR e.book_uuid = $4) AND ($5::bigint IS NULL OR d.created_at >= $5) \
                 AND ($6::bigint IS NULL OR d.created_at < $6) AND ($7::bigint IS NULL OR d.id < $7) \
                 ORDER BY d.id DESC LIMIT $8"
            ),
            &[
                &webhook,
                &f.status.map(DeliveryStatus::as_str),
                &f.event_name,
                &f.book_uuid,
                &f.since,
                &f.until,
                &f.before,
                &i64::from(f.limit),
            ],
        )
        .await
        .map_err(pg)?;
    Ok(rows.iter().map(summary_row).collect())
}

pub(super) async fn get(
    client: &impl GenericClient,
    webhook: Uuid,
    delivery: Uuid,
) -> Result<DeliveryDetail, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {SUMMARY_COLS}, e.payload FROM deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE d.uuid = $1 AND d.webhook_uuid = $2"
            ),
            &[&delivery, &webhook],
        )
        .await
        .map_err(pg)?
        .ok_or(StoreError::NotFound)?;
    let summary = summary_row(&row);
    let attempts = client
        .query(
            "SELECT uuid, started_at, duration_ms, request_headers, response_status, \
             response_headers, response_body, error FROM attempts WHERE delivery_id = $1 ORDER BY id",
            &[&summary.id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            let status: Option<i32> = r.get("response_status");
            AttemptRecord {
                uuid: r.get("uuid"),
                started_at: r.get("started_at"),
                duration_ms: r.get("duration_ms"),
                request_headers: r.get("request_headers"),
                response_status: status.map(|s| s as u16),
                response_headers: r.get("response_headers"),
                response_body: r.get("response_body"),
                error: r.get("error"),
            }
        })
        .collect();
    Ok(DeliveryDetail {
        payload: row.get("payload"),
        summary,
        attempts,
    })
}

pub(super) async fn redeliver(
    tx: &Transaction<'_>,
    webhook: Uuid,
    delivery: Uuid,
    now: i64,
    lease: Option<&Lease>,
) -> Result<Option<Redelivery>, StoreError> {
    let detail = get(tx, webhook, delivery).await?;
    if detail.summary.status == DeliveryStatus::Delivering {
        tx.execute(
            "UPDATE deliveries SET redeliver = true WHERE id = $1 AND status = 'delivering'",
            &[&detail.summary.id],
        )
        .await
        .map_err(pg)?;
        return Ok(Some(Redelivery::AfterCurrent));
    }
    if !matches!(
        detail.summary.status,
        DeliveryStatus::Succeeded | DeliveryStatus::Failed
    ) {
        return Ok(None);
    }
    let Some(lease) = lease else {
        tx.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, \
             updated_at = $2 WHERE id = $1",
            &[&detail.summary.id, &now],
        )
        .await
        .map_err(pg)?;
        return Ok(Some(Redelivery::Queued));
    };
    let row = tx
        .query_opt(
            "UPDATE deliveries SET status = 'delivering', attempts = 0, next_attempt_at = $2, \
             lease_owner = $3, lease_until = $4, updated_at = $2 \
             WHERE id = $1 AND status IN ('succeeded', 'failed') \
             RETURNING (SELECT max_in_flight FROM webhooks w WHERE w.uuid = webhook_uuid), book_seq",
            &[&detail.summary.id, &now, &lease.owner, &lease.until],
        )
        .await
        .map_err(pg)?;
    // Another request redelivered it meanwhile: idempotent.
    let Some(row) = row else { return Ok(None) };
    let max_in_flight: Option<i32> = row.get(0);
    let book_seq: Option<i64> = row.get(1);
    Ok(Some(Redelivery::Leased(DeliveryJob {
        id: detail.summary.id,
        uuid: detail.summary.uuid,
        webhook_uuid: webhook,
        max_in_flight: max_in_flight.unwrap_or(1) as u32,
        event_uuid: detail.summary.event_uuid,
        payload: detail.payload.into(),
        attempts: 0,
        is_test: detail.summary.is_test,
        ordered: book_seq.is_some(),
    })))
}

pub(super) async fn purge(
    tx: &Transaction<'_>,
    cutoff: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let ids: Vec<i64> = tx
        .query(
            "SELECT id FROM events e WHERE accepted_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.event_id = e.id \
              AND d.status IN ('pending', 'delivering', 'held')) \
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&cutoff, &i64::from(limit)],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ANY($1))",
        &[&ids],
    )
    .await
    .map_err(pg)?;
    tx.execute("DELETE FROM deliveries WHERE event_id = ANY($1)", &[&ids])
        .await
        .map_err(pg)?;
    tx.execute("DELETE FROM events WHERE id = ANY($1)", &[&ids])
        .await
        .map_err(pg)?;
    Ok(ids.len() as u64)
}
