//! Appending a batch of events on PostgreSQL with a constant number of
//! round trips: multi-row inserts through `UNNEST` for the events and their
//! deliveries, one query each for accounts, earlier events and webhooks.
//! Only deliveries of `per_book` webhooks take a statement each, for their
//! place in the book's sequence.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::{pg, row, rows};
use crate::StoreError;
use crate::model::*;
use crate::queue::{self, Target};
use crate::sql::Sql;

/// The active webhooks of several orgs, as [`queue::SUBSCRIBERS`] answers
/// for one (its column 4 is the org).
static SUBSCRIBERS_OF_ORGS: Sql = Sql::new(
    "SELECT uuid, event_names, max_in_flight, ordering, org_uuid, account_uuids FROM webhooks \
     WHERE org_uuid = ANY($1) AND deleted_at IS NULL AND is_active = true \
     ORDER BY created_at, uuid",
);

/// A delivery to insert, and the index of its event in the batch.
struct Row {
    event: usize,
    uuid: Uuid,
    webhook: Uuid,
    max_in_flight: Option<u32>,
    leased: bool,
    book: Option<String>,
    seq: Option<i64>,
}

pub(super) async fn append_events(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    now: i64,
    lease: Option<&Lease>,
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    let account_ids: Vec<Uuid> = events.iter().map(|e| e.account_uuid).collect();
    let orgs: HashMap<Uuid, Uuid> = tx
        .query(
            "SELECT uuid, org_uuid FROM accounts WHERE uuid = ANY($1)",
            &[&account_ids],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let org_ids: Vec<Uuid> = orgs
        .values()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut targets: HashMap<Uuid, Vec<Target>> = HashMap::new();
    for (org, target) in rows(tx, &SUBSCRIBERS_OF_ORGS, &[&org_ids], |r| {
        Ok((r.uuid(4)?, queue::target(r)?))
    })
    .await?
    {
        targets.entry(org).or_default().push(target);
    }
    let subscribed = |e: &NewEvent, org: &Uuid| -> Vec<&Target> {
        targets
            .get(org)
            .map(|ts| {
                ts.iter()
                    .filter(|t| t.wants(&e.event_name, &e.account_uuid))
                    .collect()
            })
            .unwrap_or_default()
    };

    // Insert every event of a known account in one statement; the ones
    // that conflict were published before (or earlier in this batch).
    let known: Vec<usize> = (0..events.len())
        .filter(|&i| orgs.contains_key(&events[i].account_uuid))
        .collect();
    let col =
        |f: &dyn Fn(&NewEvent) -> Uuid| known.iter().map(|&i| f(&events[i])).collect::<Vec<_>>();
    let uuids = col(&|e| e.uuid);
    let org_col = col(&|e| orgs[&e.account_uuid]);
    let accounts = col(&|e| e.account_uuid);
    let names: Vec<&str> = known
        .iter()
        .map(|&i| events[i].event_name.as_str())
        .collect();
    let books: Vec<Option<&str>> = known
        .iter()
        .map(|&i| events[i].book_uuid.as_deref())
        .collect();
    let occurred: Vec<i64> = known.iter().map(|&i| events[i].occurred_at).collect();
    let payloads: Vec<&str> = known.iter().map(|&i| &*events[i].payload).collect();
    let hashes: Vec<&[u8]> = known
        .iter()
        .map(|&i| events[i].payload_hash.as_slice())
        .collect();
    let counts: Vec<i32> = known
        .iter()
        .map(|&i| subscribed(&events[i], &orgs[&events[i].account_uuid]).len() as i32)
        .collect();
    let inserted: HashMap<(Uuid, Uuid), i64> = tx
        .query(
            "INSERT INTO events (uuid, org_uuid, account_uuid, event_name, book_uuid, occurred_at, \
             accepted_at, payload, payload_hash, delivery_count, is_test) \
             SELECT u, o, a, n, b, occ, $9, p, h, c, false FROM UNNEST($1::uuid[], $2::uuid[], \
               $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::bytea[], $10::int4[]) \
               AS t(u, o, a, n, b, occ, p, h, c) \
             ON CONFLICT (org_uuid, uuid) DO NOTHING RETURNING id, org_uuid, uuid",
            &[&uuids, &org_col, &accounts, &names, &books, &occurred, &payloads, &hashes, &now, &counts],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| ((r.get(1), r.get(2)), r.get(0)))
        .collect();
    // Which batch item wrote each new event (the first of duplicates).
    let mut writer_of: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    for &i in &known {
        let key = (orgs[&events[i].account_uuid], events[i].uuid);
        if inserted.contains_key(&key) {
            writer_of.entry(key).or_insert(i);
        }
    }
    let earlier_keys: Vec<usize> = known
        .iter()
        .copied()
        .filter(|&i| writer_of.get(&(orgs[&events[i].account_uuid], events[i].uuid)) != Some(&i))
        .collect();
    let mut earlier: HashMap<(Uuid, Uuid), (Vec<u8>, i32)> = HashMap::new();
    if !earlier_keys.is_empty() {
        let o: Vec<Uuid> = earlier_keys
            .iter()
            .map(|&i| orgs[&events[i].account_uuid])
            .collect();
        let u: Vec<Uuid> = earlier_keys.iter().map(|&i| events[i].uuid).collect();
        for r in tx
            .query(
                "SELECT e.org_uuid, e.uuid, e.payload_hash, e.delivery_count FROM events e \
                 JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(o, u) ON e.org_uuid = k.o AND e.uuid = k.u",
                &[&o, &u],
            )
            .await
            .map_err(pg)?
        {
            earlier.insert((r.get(0), r.get(1)), (r.get(2), r.get(3)));
        }
    }

    // The deliveries of the new events, in batch order, so that a book's
    // events get their places in the order they were published.
    let mut rows = Vec::new();
    let mut books_in_batch: HashSet<(Uuid, &str)> = HashSet::new();
    for &i in &known {
        let org = orgs[&events[i].account_uuid];
        if writer_of.get(&(org, events[i].uuid)) != Some(&i) {
            continue;
        }
        for t in subscribed(&events[i], &org) {
            let (book, seq, blocked) = match (&events[i].book_uuid, t.per_book) {
                (Some(book), true) => {
                    let (seq, blocked) = place_in_book(tx, t.uuid, book).await?;
                    // An earlier event of the book in this same batch is
                    // not in the table yet, and not finished either.
                    let first_in_batch = books_in_batch.insert((t.uuid, book.as_str()));
                    (Some(book.clone()), Some(seq), blocked || !first_in_batch)
                }
                _ => (None, None, false),
            };
            rows.push(Row {
                event: i,
                uuid: Uuid::now_v7(),
                webhook: t.uuid,
                max_in_flight: t.max_in_flight,
                leased: lease.is_some_and(|l| l.takes(&t.uuid)) && !blocked,
                book,
                seq,
            });
        }
    }
    let mut ids: HashMap<Uuid, i64> = HashMap::new();
    if !rows.is_empty() {
        let d_uuids: Vec<Uuid> = rows.iter().map(|r| r.uuid).collect();
        let d_events: Vec<i64> = rows
            .iter()
            .map(|r| inserted[&(orgs[&events[r.event].account_uuid], events[r.event].uuid)])
            .collect();
        let d_webhooks: Vec<Uuid> = rows.iter().map(|r| r.webhook).collect();
        let d_status: Vec<&str> = rows
            .iter()
            .map(|r| if r.leased { "delivering" } else { "pending" })
            .collect();
        let d_owner: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.leased.then(|| lease.map(|l| l.owner.as_str())).flatten())
            .collect();
        let d_until: Vec<Option<i64>> = rows
            .iter()
            .map(|r| r.leased.then(|| lease.map(|l| l.until)).flatten())
            .collect();
        let d_books: Vec<Option<&str>> = rows.iter().map(|r| r.book.as_deref()).collect();
        let d_seqs: Vec<Option<i64>> = rows.iter().map(|r| r.seq).collect();
        for r in tx
            .query(
                "INSERT INTO deliveries (uuid, event_id, webhook_uuid, status, is_test, attempts, \
                 next_attempt_at, lease_owner, lease_until, created_at, updated_at, book_uuid, book_seq) \
                 SELECT u, e, w, s, false, 0, $9, o, l, $9, $9, b, q FROM UNNEST($1::uuid[], $2::int8[], \
                   $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::int8[]) \
                   AS t(u, e, w, s, o, l, b, q) \
                 RETURNING id, uuid",
                &[&d_uuids, &d_events, &d_webhooks, &d_status, &d_owner, &d_until, &d_books, &d_seqs, &now],
            )
            .await
            .map_err(pg)?
        {
            ids.insert(r.get(1), r.get(0));
        }
    }

    let mut jobs: HashMap<usize, Vec<DeliveryJob>> = HashMap::new();
    for r in rows.iter().filter(|r| r.leased) {
        let e = &events[r.event];
        let job = queue::created_job(
            ids[&r.uuid],
            r.uuid,
            r.webhook,
            r.max_in_flight,
            e,
            false,
            r.seq.is_some(),
        );
        jobs.entry(r.event).or_default().push(job);
    }
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let Some(org) = orgs.get(&e.account_uuid) else {
            out.push(Err(AppendError::UnknownAccount));
            continue;
        };
        let key = (*org, e.uuid);
        if writer_of.get(&key) == Some(&i) {
            out.push(Ok(Appended {
                event_uuid: e.uuid,
                delivery_count: subscribed(e, org).len() as u32,
                deliveries: jobs.remove(&i).unwrap_or_default(),
                replayed: false,
            }));
            continue;
        }
        // Published before this batch, or earlier in it.
        let (hash, count) = match (earlier.get(&key), writer_of.get(&key)) {
            (Some((hash, count)), _) => (hash.clone(), *count as u32),
            (None, Some(&first)) => (
                events[first].payload_hash.clone(),
                subscribed(&events[first], org).len() as u32,
            ),
            (None, None) => return Err(StoreError::Corrupt(format!("event {} vanished", e.uuid))),
        };
        out.push(if hash == e.payload_hash {
            Ok(Appended {
                event_uuid: e.uuid,
                delivery_count: count,
                deliveries: Vec::new(),
                replayed: true,
            })
        } else {
            Err(AppendError::PayloadMismatch)
        });
    }
    Ok(out)
}

/// The delivery's place in its (webhook, book) sequence, and whether an
/// earlier one is unfinished. The sequence row's lock orders concurrent
/// publishes of the book; the check after it sees every earlier commit.
async fn place_in_book(
    tx: &Transaction<'_>,
    webhook: Uuid,
    book: &str,
) -> Result<(i64, bool), StoreError> {
    let seq = row(tx, &queue::NEXT_BOOK_SEQ, &[&webhook, &book], |r| r.int(0))
        .await?
        .unwrap_or(1);
    let blocked = row(
        tx,
        &queue::WAITS_FOR_EARLIER,
        &[&webhook, &book, &seq],
        |r| r.flag(0),
    )
    .await?
    .unwrap_or(false);
    Ok((seq, blocked))
}
