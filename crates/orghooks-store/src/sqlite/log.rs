//! The delivery log on SQLite: listing a webhook's deliveries with filters
//! and keyset pagination, one delivery with its attempts, resending
//! (redeliver, recover), and the retention purge.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{backend, uuid_col};
use crate::StoreError;
use crate::model::*;

const SUMMARY_COLS: &str = "d.id, d.uuid, d.webhook_uuid, e.uuid, e.event_name, e.book_uuid, \
     d.status, d.is_test, d.attempts, d.created_at, d.updated_at, d.next_attempt_at";

fn summary_row(r: &Row<'_>) -> rusqlite::Result<DeliverySummary> {
    let status: String = r.get(6)?;
    Ok(DeliverySummary {
        id: r.get(0)?,
        uuid: uuid_col(r, 1)?,
        webhook_uuid: uuid_col(r, 2)?,
        event_uuid: uuid_col(r, 3)?,
        event_name: r.get(4)?,
        book_uuid: r.get(5)?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        is_test: r.get(7)?,
        attempts: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        next_attempt_at: r.get(11)?,
    })
}

pub(super) fn list(
    conn: &Connection,
    webhook: Uuid,
    f: &DeliveryFilter,
) -> Result<Vec<DeliverySummary>, StoreError> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.webhook_uuid = ?1 \
             AND (?2 IS NULL OR d.status = ?2) AND (?3 IS NULL OR e.event_name = ?3) \
             AND (?4 IS NULL OR e.book_uuid = ?4) AND (?5 IS NULL OR d.created_at >= ?5) \
             AND (?6 IS NULL OR d.created_at < ?6) AND (?7 IS NULL OR d.id < ?7) \
             ORDER BY d.id DESC LIMIT ?8"
        ))
        .map_err(backend)?;
    let rows = s
        .query_map(
            params![
                webhook.to_string(),
                f.status.map(DeliveryStatus::as_str),
                f.event_name,
                f.book_uuid,
                f.since,
                f.until,
                f.before,
                f.limit
            ],
            summary_row,
        )
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

pub(super) fn get(
    conn: &Connection,
    webhook: Uuid,
    delivery: Uuid,
) -> Result<DeliveryDetail, StoreError> {
    let (summary, payload) = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLS}, e.payload FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.uuid = ?1 AND d.webhook_uuid = ?2"
        ))
        .and_then(|mut s| {
            s.query_row(params![delivery.to_string(), webhook.to_string()], |r| {
                Ok((summary_row(r)?, r.get::<_, String>(12)?))
            })
            .optional()
        })
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
    let mut s = conn
        .prepare_cached(
            "SELECT uuid, started_at, duration_ms, request_headers, response_status, \
             response_headers, response_body, error FROM attempts WHERE delivery_id = ?1 ORDER BY id",
        )
        .map_err(backend)?;
    let attempts = s
        .query_map([summary.id], |r| {
            Ok(AttemptRecord {
                uuid: uuid_col(r, 0)?,
                started_at: r.get(1)?,
                duration_ms: r.get(2)?,
                request_headers: r.get(3)?,
                response_status: r.get(4)?,
                response_headers: r.get(5)?,
                response_body: r.get(6)?,
                error: r.get(7)?,
            })
        })
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    Ok(DeliveryDetail {
        summary,
        payload,
        attempts,
    })
}

pub(super) fn redeliver(
    conn: &Connection,
    webhook: Uuid,
    delivery: Uuid,
    now: i64,
    lease: Option<&Lease>,
) -> Result<Option<Redelivery>, StoreError> {
    let detail = get(conn, webhook, delivery)?;
    match detail.summary.status {
        DeliveryStatus::Succeeded | DeliveryStatus::Failed => {}
        DeliveryStatus::Delivering => {
            conn.prepare_cached(
                "UPDATE deliveries SET redeliver = 1 WHERE id = ?1 AND status = 'delivering'",
            )
            .and_then(|mut s| s.execute(params![detail.summary.id]))
            .map_err(backend)?;
            return Ok(Some(Redelivery::AfterCurrent));
        }
        // Already waiting to be sent (or the webhook is gone): nothing to do.
        _ => return Ok(None),
    }
    let Some(lease) = lease else {
        conn.prepare_cached(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2, \
             updated_at = ?2 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![detail.summary.id, now]))
        .map_err(backend)?;
        return Ok(Some(Redelivery::Queued));
    };
    let (max_in_flight, ordered): (u32, bool) = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 'delivering', attempts = 0, next_attempt_at = ?2, \
             lease_owner = ?3, lease_until = ?4, updated_at = ?2 WHERE id = ?1 \
             RETURNING (SELECT max_in_flight FROM webhooks w WHERE w.uuid = webhook_uuid), \
             book_seq IS NOT NULL",
        )
        .and_then(|mut s| {
            s.query_row(
                params![detail.summary.id, now, lease.owner, lease.until],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .map_err(backend)?;
    Ok(Some(Redelivery::Leased(DeliveryJob {
        id: detail.summary.id,
        uuid: detail.summary.uuid,
        webhook_uuid: webhook,
        max_in_flight,
        event_uuid: detail.summary.event_uuid,
        payload: detail.payload.into(),
        attempts: 0,
        is_test: detail.summary.is_test,
        ordered,
    })))
}

pub(super) fn recover(
    conn: &Connection,
    webhook: Uuid,
    since: i64,
    until: i64,
    now: i64,
) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?4, updated_at = ?4 \
         WHERE webhook_uuid = ?1 AND status = 'failed' AND created_at >= ?2 AND created_at < ?3",
    )
    .and_then(|mut s| s.execute(params![webhook.to_string(), since, until, now]))
    .map(|n| n as u64)
    .map_err(backend)
}

pub(super) fn purge(conn: &Connection, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM events e WHERE accepted_at < ?1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.event_id = e.id \
              AND d.status IN ('pending', 'delivering', 'held')) \
             ORDER BY id LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![cutoff, limit], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(backend)?;
    for id in &ids {
        for sql in [
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ?1)",
            "DELETE FROM deliveries WHERE event_id = ?1",
            "DELETE FROM events WHERE id = ?1",
        ] {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute([id]))
                .map_err(backend)?;
        }
    }
    Ok(ids.len() as u64)
}
