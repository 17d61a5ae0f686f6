//! Appending a batch of events on PostgreSQL with few round trips: one
//! statement inserts the events and their deliveries together (a
//! data-modifying `WITH`, multi-row through `UNNEST`), committed on its
//! own, no `BEGIN`/`COMMIT`. Which webhooks each event goes to (accounts'
//! orgs and their active webhooks) is read once and kept by the batcher;
//! the insert itself checks that `routing_version`, which every change of
//! accounts or webhooks moves on in its own commit, is still the one read,
//! and writes nothing otherwise, so a change made through any node applies
//! to the next publish: the routing is read again and the insert retried.
//!
//! A batch with an event for a `per_book` webhook takes the longer way, in
//! a transaction: events first, then each such delivery's place in its
//! book's sequence (a statement each), then the deliveries.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{pg, prepared, row};
use crate::StoreError;
use crate::model::*;
use crate::queue::{self, Target};

/// The accounts' orgs, each with its active webhooks (columns as
/// [`queue::target`] reads them, the account, its org and the routing
/// version after them); an account of an org without webhooks comes with
/// nulls. No row at all: the version alone.
const ROUTING: &str = "SELECT w.uuid, w.event_names, w.max_in_flight, w.ordering, w.org_uuid, \
     w.account_uuids, a.uuid, a.org_uuid, v.v FROM routing_version v \
     LEFT JOIN accounts a ON a.uuid = ANY($1) \
     LEFT JOIN webhooks w ON w.org_uuid = a.org_uuid AND w.deleted_at IS NULL AND w.is_active = true \
     ORDER BY w.created_at, w.uuid";

/// Inserts the events of `$1`… (an event the org already has is skipped),
/// if `guard` holds, and answers the new ones' `id, org_uuid, uuid`.
macro_rules! insert_events {
    ($guard:literal) => {
        concat!(
        "INSERT INTO events (uuid, org_uuid, account_uuid, event_name, book_uuid, occurred_at, \
         accepted_at, payload, payload_hash, delivery_count, is_test) \
         SELECT u, o, a, n, b, occ, $9, p, h, c, false FROM UNNEST($1::uuid[], $2::uuid[], \
           $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::bytea[], $10::int4[]) \
           AS t(u, o, a, n, b, occ, p, h, c) ",
            $guard,
            " ON CONFLICT (org_uuid, uuid) DO NOTHING RETURNING id, org_uuid, uuid"
        )
    };
}

/// The events and their deliveries in one statement, only while the
/// routing version is still `$18`, the one the deliveries were chosen by: a
/// delivery row (`$11`…, keyed by its event's org and uuid) is inserted
/// only with an event that was. Answers the version (`kind` 0: version),
/// the events (`kind` 1: id, uuid, org) and the deliveries (`kind` 2: id,
/// uuid).
const INSERT_BOTH: &str = concat!(
    "WITH e AS (",
    insert_events!("WHERE (SELECT v FROM routing_version WHERE id = 1) = $18"),
    "), d AS (INSERT INTO deliveries (uuid, event_id, webhook_uuid, status, is_test, attempts, \
       next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
       SELECT t.u, e.id, t.w, t.s, false, 0, $9, t.o, t.l, $9, $9 FROM UNNEST($11::uuid[], \
         $12::uuid[], $13::uuid[], $14::uuid[], $15::text[], $16::text[], $17::int8[]) \
         AS t(u, eo, eu, w, s, o, l) JOIN e ON e.org_uuid = t.eo AND e.uuid = t.eu \
       RETURNING id, uuid) \
     SELECT 0, v, NULL, NULL FROM routing_version WHERE id = 1 \
     UNION ALL SELECT 1, id, uuid, org_uuid FROM e UNION ALL SELECT 2, id, uuid, NULL FROM d",
);

/// The deliveries of `$1`…, after their events (the ordered way).
const INSERT_DELIVERIES: &str = "INSERT INTO deliveries (uuid, event_id, webhook_uuid, status, \
     is_test, attempts, next_attempt_at, lease_owner, lease_until, created_at, updated_at, \
     book_uuid, book_seq) \
     SELECT u, e, w, s, false, 0, $9, o, l, $9, $9, b, q FROM UNNEST($1::uuid[], $2::int8[], \
       $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::int8[]) \
       AS t(u, e, w, s, o, l, b, q) \
     RETURNING id, uuid";

/// Most accounts a node keeps the routing of.
const CACHED_ACCOUNTS: usize = 100_000;

/// Where events go: for the accounts read so far, while no account or
/// webhook changes (`routing_version` stays `version`). The batcher, the
/// node's only appender, keeps one between batches.
#[derive(Default)]
pub(super) struct Routing {
    version: i64,
    /// Account → org, for the accounts that exist.
    orgs: HashMap<Uuid, Uuid>,
    /// Org → its active webhooks, oldest first.
    targets: HashMap<Uuid, Vec<Target>>,
}

impl Routing {
    async fn read(c: &impl GenericClient, events: &[NewEvent]) -> Result<Self, StoreError> {
        let accounts: Vec<Uuid> = events.iter().map(|e| e.account_uuid).collect();
        let statement = prepared(c, ROUTING).await?;
        let mut routing = Self::default();
        let mut seen: HashSet<(Uuid, Uuid)> = HashSet::new();
        for r in c.query(&statement, &[&accounts]).await.map_err(pg)? {
            routing.version = r.get(8);
            let Some(account) = r.get::<_, Option<Uuid>>(6) else {
                continue;
            };
            let org: Uuid = r.get(7);
            routing.orgs.insert(account, org);
            let targets = routing.targets.entry(org).or_default();
            if let Some(webhook) = r.get::<_, Option<Uuid>>(0) {
                // An org's webhooks come once per account of the batch.
                if seen.insert((org, webhook)) {
                    targets.push(queue::target(&r)?);
                }
            }
        }
        Ok(routing)
    }

    /// Reads the routing of the batch's accounts into this one: added to
    /// it while the version is the same, in its place once it moved on.
    async fn refresh(
        &mut self,
        c: &impl GenericClient,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let fresh = Self::read(c, events).await?;
        if fresh.version != self.version || self.orgs.len() > CACHED_ACCOUNTS {
            *self = fresh;
        } else {
            self.orgs.extend(fresh.orgs);
            self.targets.extend(fresh.targets);
        }
        Ok(())
    }

    fn knows(&self, events: &[NewEvent]) -> bool {
        events
            .iter()
            .all(|e| self.orgs.contains_key(&e.account_uuid))
    }

    fn org(&self, e: &NewEvent) -> Option<Uuid> {
        self.orgs.get(&e.account_uuid).copied()
    }

    fn subscribed(&self, e: &NewEvent) -> Vec<&Target> {
        self.org(e)
            .and_then(|org| self.targets.get(&org))
            .map(|ts| {
                ts.iter()
                    .filter(|t| t.wants(&e.event_name, &e.account_uuid))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether an event of the batch has a place in a book's sequence.
    fn orders_books(&self, events: &[NewEvent]) -> bool {
        events
            .iter()
            .any(|e| e.book_uuid.is_some() && self.subscribed(e).iter().any(|t| t.per_book))
    }
}

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

impl Row {
    fn status(&self) -> &'static str {
        if self.leased { "delivering" } else { "pending" }
    }

    fn owner<'a>(&self, lease: Option<&'a Lease>) -> Option<&'a str> {
        self.leased
            .then(|| lease.map(|l| l.owner.as_str()))
            .flatten()
    }

    fn until(&self, lease: Option<&Lease>) -> Option<i64> {
        self.leased.then(|| lease.map(|l| l.until)).flatten()
    }
}

/// Appends a batch: by the routing in `cache` when it knows every account
/// and is still current (checked by the insert itself), else read again.
pub(super) async fn append_events(
    client: &mut Object,
    events: &[NewEvent],
    now: i64,
    lease: Option<&Lease>,
    cache: &mut Routing,
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    // A change of accounts or webhooks between the read and the insert
    // sends it round again; should changes keep coming, the transaction
    // below reads and inserts without the check, as the ordered way does.
    for _ in 0..3 {
        if !cache.knows(events) {
            cache.refresh(&*client, events).await?;
        }
        if cache.orders_books(events) {
            break;
        }
        match append_unordered(&*client, events, now, lease, cache).await? {
            Some(out) => return Ok(out),
            None => cache.refresh(&*client, events).await?,
        }
    }
    let tx = client.transaction().await.map_err(pg)?;
    let routing = Routing::read(&tx, events).await?;
    let out = append_ordered(&tx, events, now, lease, &routing).await?;
    tx.commit().await.map_err(pg)?;
    Ok(out)
}

/// The batch's events of known accounts, in order: their indexes, and the
/// parameters `$1`…`$10` of [`insert_events!`].
struct EventColumns<'a> {
    known: Vec<usize>,
    uuids: Vec<Uuid>,
    orgs: Vec<Uuid>,
    accounts: Vec<Uuid>,
    names: Vec<&'a str>,
    books: Vec<Option<&'a str>>,
    occurred: Vec<i64>,
    payloads: Vec<&'a str>,
    hashes: Vec<&'a [u8]>,
    counts: Vec<i32>,
}

impl<'a> EventColumns<'a> {
    /// `$1`…`$10` of [`insert_events!`], with `now` as `$9`.
    fn params<'p>(&'p self, now: &'p i64) -> Vec<&'p (dyn ToSql + Sync)> {
        vec![
            &self.uuids,
            &self.orgs,
            &self.accounts,
            &self.names,
            &self.books,
            &self.occurred,
            &self.payloads,
            &self.hashes,
            now,
            &self.counts,
        ]
    }

    fn new(events: &'a [NewEvent], routing: &Routing) -> Self {
        let known: Vec<usize> = (0..events.len())
            .filter(|&i| routing.org(&events[i]).is_some())
            .collect();
        let known_events = || known.iter().map(|&i| &events[i]);
        Self {
            uuids: known_events().map(|e| e.uuid).collect(),
            orgs: known_events().filter_map(|e| routing.org(e)).collect(),
            accounts: known_events().map(|e| e.account_uuid).collect(),
            names: known_events().map(|e| e.event_name.as_str()).collect(),
            books: known_events().map(|e| e.book_uuid.as_deref()).collect(),
            occurred: known_events().map(|e| e.occurred_at).collect(),
            payloads: known_events().map(|e| &*e.payload).collect(),
            hashes: known_events().map(|e| e.payload_hash.as_slice()).collect(),
            counts: known_events()
                .map(|e| routing.subscribed(e).len() as i32)
                .collect(),
            known,
        }
    }
}

/// The common case: events and deliveries in one statement. `None`: the
/// routing is out of date and nothing was written.
async fn append_unordered(
    c: &impl GenericClient,
    events: &[NewEvent],
    now: i64,
    lease: Option<&Lease>,
    routing: &Routing,
) -> Result<Option<Vec<Result<Appended, AppendError>>>, StoreError> {
    let cols = EventColumns::new(events, routing);
    // Deliveries for the first of each event in the batch; the statement
    // keeps those whose event it inserted.
    let mut first: HashSet<(Uuid, Uuid)> = HashSet::new();
    let mut rows = Vec::new();
    for &i in &cols.known {
        let e = &events[i];
        let org = routing.org(e).expect("known");
        if !first.insert((org, e.uuid)) {
            continue;
        }
        for t in routing.subscribed(e) {
            rows.push(Row {
                event: i,
                uuid: Uuid::now_v7(),
                webhook: t.uuid,
                max_in_flight: t.max_in_flight,
                leased: lease.is_some_and(|l| l.takes(&t.uuid)),
                book: None,
                seq: None,
            });
        }
    }
    let d_uuids: Vec<Uuid> = rows.iter().map(|r| r.uuid).collect();
    let d_orgs: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| routing.org(&events[r.event]))
        .collect();
    let d_events: Vec<Uuid> = rows.iter().map(|r| events[r.event].uuid).collect();
    let d_webhooks: Vec<Uuid> = rows.iter().map(|r| r.webhook).collect();
    let d_status: Vec<&str> = rows.iter().map(Row::status).collect();
    let d_owner: Vec<Option<&str>> = rows.iter().map(|r| r.owner(lease)).collect();
    let d_until: Vec<Option<i64>> = rows.iter().map(|r| r.until(lease)).collect();
    let statement = prepared(c, INSERT_BOTH).await?;
    let mut inserted: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    let mut ids: HashMap<Uuid, i64> = HashMap::new();
    let mut params = cols.params(&now);
    params.extend::<[&(dyn ToSql + Sync); 8]>([
        &d_uuids,
        &d_orgs,
        &d_events,
        &d_webhooks,
        &d_status,
        &d_owner,
        &d_until,
        &routing.version,
    ]);
    for r in c.query(&statement, &params).await.map_err(pg)? {
        match r.get::<_, i32>(0) {
            0 if r.get::<_, i64>(1) != routing.version => return Ok(None),
            0 => {}
            1 => {
                inserted.insert((r.get(3), r.get(2)), r.get(1));
            }
            _ => {
                ids.insert(r.get(2), r.get(1));
            }
        }
    }
    let writers = writers(events, routing, &cols.known, &inserted);
    rows.retain(|r| ids.contains_key(&r.uuid));
    answer(c, events, routing, &writers, &rows, &ids)
        .await
        .map(Some)
}

/// Batches with events in a book's sequence: a transaction, each such
/// delivery numbered after its event is in.
async fn append_ordered(
    tx: &impl GenericClient,
    events: &[NewEvent],
    now: i64,
    lease: Option<&Lease>,
    routing: &Routing,
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    let cols = EventColumns::new(events, routing);
    let statement = prepared(tx, insert_events!("")).await?;
    let inserted: HashMap<(Uuid, Uuid), i64> = tx
        .query(&statement, &cols.params(&now))
        .await
        .map_err(pg)?
        .iter()
        .map(|r| ((r.get(1), r.get(2)), r.get(0)))
        .collect();
    let writers = writers(events, routing, &cols.known, &inserted);

    // In batch order, so that a book's events get their places in the
    // order they were published.
    let mut rows = Vec::new();
    let mut books_in_batch: HashSet<(Uuid, &str)> = HashSet::new();
    for &i in &cols.known {
        let org = routing.org(&events[i]).expect("known");
        if writers.get(&(org, events[i].uuid)) != Some(&i) {
            continue;
        }
        for t in routing.subscribed(&events[i]) {
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
            .map(|r| {
                let e = &events[r.event];
                inserted[&(routing.org(e).expect("known"), e.uuid)]
            })
            .collect();
        let d_webhooks: Vec<Uuid> = rows.iter().map(|r| r.webhook).collect();
        let d_status: Vec<&str> = rows.iter().map(Row::status).collect();
        let d_owner: Vec<Option<&str>> = rows.iter().map(|r| r.owner(lease)).collect();
        let d_until: Vec<Option<i64>> = rows.iter().map(|r| r.until(lease)).collect();
        let d_books: Vec<Option<&str>> = rows.iter().map(|r| r.book.as_deref()).collect();
        let d_seqs: Vec<Option<i64>> = rows.iter().map(|r| r.seq).collect();
        let statement = prepared(tx, INSERT_DELIVERIES).await?;
        for r in tx
            .query(
                &statement,
                &[
                    &d_uuids,
                    &d_events,
                    &d_webhooks,
                    &d_status,
                    &d_owner,
                    &d_until,
                    &d_books,
                    &d_seqs,
                    &now,
                ],
            )
            .await
            .map_err(pg)?
        {
            ids.insert(r.get(1), r.get(0));
        }
    }
    answer(tx, events, routing, &writers, &rows, &ids).await
}

/// Which batch item wrote each new event: the first of its duplicates.
fn writers(
    events: &[NewEvent],
    routing: &Routing,
    known: &[usize],
    inserted: &HashMap<(Uuid, Uuid), i64>,
) -> HashMap<(Uuid, Uuid), usize> {
    let mut writer_of = HashMap::new();
    for &i in known {
        let key = (routing.org(&events[i]).expect("known"), events[i].uuid);
        if inserted.contains_key(&key) {
            writer_of.entry(key).or_insert(i);
        }
    }
    writer_of
}

/// Each event's answer: appended with its leased deliveries, a replay of
/// one published before (same payload), or refused.
async fn answer(
    c: &impl GenericClient,
    events: &[NewEvent],
    routing: &Routing,
    writers: &HashMap<(Uuid, Uuid), usize>,
    rows: &[Row],
    ids: &HashMap<Uuid, i64>,
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    // Events published before this batch: their hash and fan-out.
    let replays: Vec<(Uuid, Uuid)> = events
        .iter()
        .filter_map(|e| {
            let key = (routing.org(e)?, e.uuid);
            (!writers.contains_key(&key)).then_some(key)
        })
        .collect();
    let mut earlier: HashMap<(Uuid, Uuid), (Vec<u8>, i32)> = HashMap::new();
    if !replays.is_empty() {
        let (o, u): (Vec<Uuid>, Vec<Uuid>) = replays.into_iter().unzip();
        let statement = prepared(
            c,
            "SELECT e.org_uuid, e.uuid, e.payload_hash, e.delivery_count FROM events e \
             JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(o, u) ON e.org_uuid = k.o AND e.uuid = k.u",
        )
        .await?;
        for r in c.query(&statement, &[&o, &u]).await.map_err(pg)? {
            earlier.insert((r.get(0), r.get(1)), (r.get(2), r.get(3)));
        }
    }

    let mut jobs: HashMap<usize, Vec<DeliveryJob>> = HashMap::new();
    for r in rows.iter().filter(|r| r.leased) {
        let job = queue::created_job(
            ids[&r.uuid],
            r.uuid,
            r.webhook,
            r.max_in_flight,
            &events[r.event],
            false,
            r.seq.is_some(),
        );
        jobs.entry(r.event).or_default().push(job);
    }
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let Some(org) = routing.org(e) else {
            out.push(Err(AppendError::UnknownAccount));
            continue;
        };
        let key = (org, e.uuid);
        if writers.get(&key) == Some(&i) {
            out.push(Ok(Appended {
                event_uuid: e.uuid,
                delivery_count: routing.subscribed(e).len() as u32,
                deliveries: jobs.remove(&i).unwrap_or_default(),
                replayed: false,
            }));
            continue;
        }
        // Published before this batch, or earlier in it.
        let (hash, count) = match (earlier.get(&key), writers.get(&key)) {
            (Some((hash, count)), _) => (hash.clone(), *count as u32),
            (None, Some(&first)) => (
                events[first].payload_hash.clone(),
                routing.subscribed(&events[first]).len() as u32,
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
    tx: &impl GenericClient,
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
