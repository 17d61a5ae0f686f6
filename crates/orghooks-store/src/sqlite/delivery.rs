//! Events and deliveries on SQLite: append with fan-out, claim, complete,
//! and the bookkeeping around held and cancelled deliveries. Each function
//! runs inside a writer job (one savepoint of a group commit).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{backend, uuid_col};
use crate::StoreError;
use crate::model::*;

/// Appends one event with its fan-out; `Ok(Err(..))` is a per-event refusal.
pub(super) fn append_event(
    conn: &Connection,
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
) -> Result<Result<Appended, AppendError>, StoreError> {
    let org: Option<String> = conn
        .prepare_cached("SELECT org_uuid FROM accounts WHERE uuid = ?1")
        .and_then(|mut s| {
            s.query_row([event.account_uuid.to_string()], |r| r.get(0))
                .optional()
        })
        .map_err(backend)?;
    let Some(org) = org else {
        return Ok(Err(AppendError::UnknownAccount));
    };
    let targets = subscribed_webhooks(conn, &org, &event.event_name)?;
    // Insert first: the unique index answers whether it was published before.
    let Some(event_id) = insert_event(conn, event, &org, now, targets.len() as u32, false)? else {
        let (hash, count): (Vec<u8>, u32) = conn
            .prepare_cached(
                "SELECT payload_hash, delivery_count FROM events WHERE org_uuid = ?1 AND uuid = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![org, event.uuid.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .map_err(backend)?;
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
    let delivery_count = targets.len() as u32;
    let mut deliveries = Vec::with_capacity(targets.len());
    for target in targets {
        let place = match (&event.book_uuid, target.per_book) {
            (Some(book), true) => {
                let webhook = target.uuid.to_string();
                let seq = next_book_seq(conn, &webhook, book)?;
                let blocked = waits_for_earlier(conn, &webhook, book, seq)?;
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

/// The org's active webhooks subscribed to `event_name`, oldest first.
/// A webhook an event fans out to.
struct Target {
    uuid: Uuid,
    max_in_flight: u32,
    per_book: bool,
}

fn subscribed_webhooks(
    conn: &Connection,
    org: &str,
    event_name: &str,
) -> Result<Vec<Target>, StoreError> {
    let mut s = conn
        .prepare_cached(
            "SELECT uuid, event_names, max_in_flight, ordering FROM webhooks \
             WHERE org_uuid = ?1 AND deleted_at IS NULL AND is_active = 1 ORDER BY created_at, uuid",
        )
        .map_err(backend)?;
    let rows = s
        .query_map([org], |r| {
            Ok((
                uuid_col(r, 0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (uuid, names, max_in_flight, ordering) = row.map_err(backend)?;
        let names: Vec<String> =
            serde_json::from_str(&names).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if names.iter().any(|n| n == event_name) {
            out.push(Target {
                uuid,
                max_in_flight,
                per_book: ordering == "per_book",
            });
        }
    }
    Ok(out)
}

/// The next place in a (webhook, book) sequence.
fn next_book_seq(conn: &Connection, webhook: &str, book: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO book_sequences (webhook_uuid, book_uuid, last_seq) VALUES (?1, ?2, 1) \
         ON CONFLICT (webhook_uuid, book_uuid) DO UPDATE SET last_seq = last_seq + 1 \
         RETURNING last_seq",
    )
    .and_then(|mut s| s.query_row(params![webhook, book], |r| r.get(0)))
    .map_err(backend)
}

/// Whether an earlier delivery of the sequence is not finished yet.
fn waits_for_earlier(
    conn: &Connection,
    webhook: &str,
    book: &str,
    seq: i64,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE webhook_uuid = ?1 AND book_uuid = ?2 \
         AND book_seq < ?3 AND status IN ('pending', 'delivering', 'held'))",
    )
    .and_then(|mut s| s.query_row(params![webhook, book, seq], |r| r.get(0)))
    .map_err(backend)
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
    conn.prepare_cached(
        "INSERT INTO events (uuid, org_uuid, account_uuid, event_name, book_uuid, occurred_at, \
         accepted_at, payload, payload_hash, delivery_count, is_test) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (org_uuid, uuid) DO NOTHING RETURNING id",
    )
    .and_then(|mut s| {
        s.query_row(
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
            |r| r.get(0),
        )
        .optional()
    })
    .map_err(backend)
}

struct NewDelivery<'a> {
    event: &'a NewEvent,
    event_id: i64,
    webhook: Uuid,
    max_in_flight: u32,
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
    let (status, owner, until) = match lease {
        Some(lease) if !blocked && lease.takes(&new.webhook) => {
            ("delivering", Some(lease.owner.as_str()), Some(lease.until))
        }
        _ => ("pending", None, None),
    };
    let id = conn
        .prepare_cached(
            "INSERT INTO deliveries (uuid, event_id, webhook_uuid, status, is_test, attempts, \
             next_attempt_at, lease_owner, lease_until, created_at, updated_at, book_uuid, book_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?6, ?6, ?9, ?10) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
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
                |r| r.get(0),
            )
        })
        .map_err(backend)?;
    let leased = owner.is_some();
    Ok((
        uuid,
        leased.then(|| DeliveryJob {
            id,
            uuid,
            webhook_uuid: new.webhook,
            max_in_flight: new.max_in_flight,
            event_uuid: new.event.uuid,
            payload: new.event.payload.clone(),
            attempts: 0,
            is_test: new.is_test,
            ordered: new.place.is_some(),
        }),
    ))
}

pub(super) fn append_test(
    conn: &Connection,
    webhook: Uuid,
    event: &NewEvent,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
    let (org, max_in_flight): (String, u32) = conn
        .prepare_cached(
            "SELECT org_uuid, max_in_flight FROM webhooks WHERE uuid = ?1 AND deleted_at IS NULL",
        )
        .and_then(|mut s| {
            s.query_row([webhook.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(backend)?
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

pub(super) fn claim(
    conn: &Connection,
    now: i64,
    lease: &Lease,
    limit: u32,
    skip_json: &str,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let mut s = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 'delivering', lease_owner = ?1, lease_until = ?2, updated_at = ?3 \
             WHERE id IN ( \
               SELECT id FROM (SELECT id, next_attempt_at AS due FROM deliveries d \
                                WHERE status = 'pending' AND next_attempt_at <= ?3 \
                                AND webhook_uuid NOT IN (SELECT value FROM json_each(?5)) \
                                AND (book_seq IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p \
                                     WHERE p.webhook_uuid = d.webhook_uuid AND p.book_uuid = d.book_uuid \
                                     AND p.book_seq < d.book_seq \
                                     AND p.status IN ('pending', 'delivering', 'held'))) \
                               UNION ALL \
                               SELECT id, lease_until AS due FROM deliveries \
                                WHERE status = 'delivering' AND lease_until <= ?3 \
                                AND webhook_uuid NOT IN (SELECT value FROM json_each(?5))) \
               ORDER BY due LIMIT ?4) \
             RETURNING id, uuid, webhook_uuid, event_id, attempts, is_test, \
               (SELECT max_in_flight FROM webhooks w WHERE w.uuid = webhook_uuid), book_seq",
        )
        .map_err(backend)?;
    let rows = s
        .query_map(
            params![lease.owner, lease.until, now, limit, skip_json],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    uuid_col(r, 1)?,
                    uuid_col(r, 2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, Option<u32>>(6)?,
                    r.get::<_, Option<i64>>(7)?.is_some(),
                ))
            },
        )
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let mut events: HashMap<i64, (Uuid, Arc<str>)> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for (id, uuid, webhook_uuid, event_id, attempts, is_test, max_in_flight, ordered) in rows {
        if let std::collections::hash_map::Entry::Vacant(slot) = events.entry(event_id) {
            let (event_uuid, payload): (Uuid, String) = conn
                .prepare_cached("SELECT uuid, payload FROM events WHERE id = ?1")
                .and_then(|mut s| s.query_row([event_id], |r| Ok((uuid_col(r, 0)?, r.get(1)?))))
                .map_err(backend)?;
            slot.insert((event_uuid, payload.into()));
        }
        let (event_uuid, payload) = &events[&event_id];
        jobs.push(DeliveryJob {
            id,
            uuid,
            webhook_uuid,
            // A deleted webhook's delivery is cancelled before it is sent.
            max_in_flight: max_in_flight.unwrap_or(1),
            event_uuid: *event_uuid,
            payload: payload.clone(),
            attempts,
            is_test,
            ordered,
        });
    }
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

pub(super) fn complete(
    conn: &Connection,
    outcomes: &[Outcome],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut lost = Vec::new();
    for outcome in outcomes {
        if let Some(a) = &outcome.attempt {
            conn.prepare_cached(
                "INSERT INTO attempts (uuid, delivery_id, started_at, duration_ms, response_status, \
                 response_headers, response_body, error, request_headers) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    a.uuid.to_string(),
                    outcome.delivery_id,
                    a.started_at,
                    a.duration_ms,
                    a.response_status,
                    a.response_headers,
                    a.response_body,
                    a.error,
                    a.request_headers
                ])
            })
            .map_err(backend)?;
        }
        let attempted = i64::from(outcome.attempt.is_some());
        let (status, due) = match outcome.settle {
            Settle::Succeeded => (DeliveryStatus::Succeeded, now),
            Settle::Retry { at } => (DeliveryStatus::Pending, at),
            Settle::Failed => (DeliveryStatus::Failed, now),
            Settle::Held => (DeliveryStatus::Held, now),
            Settle::Cancelled => (DeliveryStatus::Cancelled, now),
            Settle::Deferred { at } => (DeliveryStatus::Pending, at),
        };
        // A delivery cancelled while in flight stays cancelled. One whose
        // redelivery was asked for while in flight goes again now, with a
        // fresh budget, unless this attempt succeeded.
        let settled = conn.prepare_cached(
            "UPDATE deliveries SET status = CASE WHEN redeliver = 1 AND ?2 IN ('failed', 'pending') THEN 'pending' ELSE ?2 END, \
             next_attempt_at = CASE WHEN redeliver = 1 AND ?2 IN ('failed', 'pending') THEN ?5 ELSE ?3 END, \
             attempts = CASE WHEN redeliver = 1 AND ?2 IN ('failed', 'pending') THEN 0 ELSE attempts + ?4 END, \
             redeliver = 0, \
             lease_owner = NULL, lease_until = NULL, updated_at = ?5 \
             WHERE id = ?1 AND status = 'delivering'",
        )
        .and_then(|mut s| {
            s.execute(params![
                outcome.delivery_id,
                status.as_str(),
                due,
                attempted,
                now
            ])
        })
        .map_err(backend)?;
        if settled == 0 {
            let now_status: Option<String> = conn
                .prepare_cached("SELECT status FROM deliveries WHERE id = ?1")
                .and_then(|mut s| s.query_row([outcome.delivery_id], |r| r.get(0)).optional())
                .map_err(backend)?;
            if now_status.as_deref() != Some("cancelled") {
                lost.push(outcome.delivery_id);
            }
        }
    }
    Ok(lost)
}

/// Pending deliveries of a webhook become held (it was turned off) or held
/// ones pending again, due now (it was turned back on).
pub(super) fn hold_or_release(
    conn: &Connection,
    webhook: &str,
    active: bool,
    now: i64,
) -> Result<(), StoreError> {
    let sql = if active {
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, updated_at = ?2 \
         WHERE webhook_uuid = ?1 AND status = 'held'"
    } else {
        "UPDATE deliveries SET status = 'held', updated_at = ?2 \
         WHERE webhook_uuid = ?1 AND status = 'pending'"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params![webhook, now]))
        .map_err(backend)?;
    Ok(())
}

pub(super) fn cancel_open(conn: &Connection, webhook: &str, now: i64) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'cancelled', updated_at = ?2 \
         WHERE webhook_uuid = ?1 AND status IN ('pending', 'held')",
    )
    .and_then(|mut s| s.execute(params![webhook, now]))
    .map(|n| n as u64)
    .map_err(backend)
}

pub(super) fn release_deferred(
    conn: &Connection,
    webhook: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?2, updated_at = ?2 \
         WHERE webhook_uuid = ?1 AND status = 'pending' AND next_attempt_at > ?2",
    )
    .and_then(|mut s| s.execute(params![webhook, now]))
    .map_err(backend)?;
    Ok(())
}

pub(super) fn recover_leases(conn: &Connection, now: i64) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, lease_owner = NULL, \
         lease_until = NULL, updated_at = ?1 WHERE status = 'delivering'",
    )
    .and_then(|mut s| s.execute([now]))
    .map(|n| n as u64)
    .map_err(backend)
}
