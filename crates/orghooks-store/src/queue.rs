//! The delivery queue: events appended with their fan-out, deliveries
//! claimed under a lease, their outcomes written back. The statements both
//! backends run, the row decoders and the rules both apply (who is leased
//! at creation, what an outcome writes). What stays per backend is the
//! batched append (`UNNEST` on PostgreSQL), the claim (`SKIP LOCKED` there,
//! `json_each` on SQLite) and lease renewal (how a list is bound).

use async_trait::async_trait;
use uuid::Uuid;

use crate::StoreError;
use crate::model::*;
use crate::sql::{Cells, Sql};

/// Events in, deliveries out.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Notified when another process announces deliveries due now (an
    /// `api` node's publishes on PostgreSQL), so claimers need not wait for
    /// their interval; `None` where nothing else writes (SQLite).
    fn due_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Appends events and fans each out, in the same commit, to every
    /// active webhook of the account's org subscribed to it; the new
    /// deliveries are leased to `lease.owner`. Each event is judged on its
    /// own. Without a lease (a node that does not deliver) the deliveries
    /// are left for the claimers.
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now: i64,
        lease: Option<Lease>,
        backpressure: Backpressure,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError>;
    /// Appends a test event with one test delivery to `webhook`; the job is
    /// returned when it was leased.
    async fn append_test_delivery(
        &self,
        webhook: Uuid,
        event: NewEvent,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<(Uuid, Option<DeliveryJob>), StoreError>;
    /// Appends one of orghooks' own notices (`webhook.disabled`, …) as one
    /// event with a delivery to each of `webhooks` that still exists (all
    /// of one org, chosen by the caller), due now for the claimers; answers
    /// how many deliveries it made.
    async fn append_notice(
        &self,
        webhooks: Vec<Uuid>,
        event: NewEvent,
        now: i64,
    ) -> Result<u32, StoreError>;
    /// Leases up to `limit` deliveries that are due, or whose lease
    /// expired, oldest due first (ties by creation), except those of the
    /// webhooks in `skip` (the caller has no room for them: they stay in
    /// the database until it has). A delivery of a `per_book` webhook is
    /// due only once every earlier one of its book is finished. A lease
    /// that lapsed is taken only from another owner: what `lease.owner`
    /// leased itself it still has in memory, about to send or to write
    /// back, and taking it again would send it twice (its own forgotten
    /// leases come back through [`Self::free_lapsed_leases`]).
    async fn claim_due(
        &self,
        now: i64,
        lease: Lease,
        limit: u32,
        skip: Vec<Uuid>,
    ) -> Result<Vec<DeliveryJob>, StoreError>;
    /// Writes back what happened to deliveries `owner` holds, in one
    /// commit. Answers the ids of deliveries whose outcome found them no
    /// longer held by `owner` (their lease lapsed and another claim took
    /// them, so they may be sent again); deliveries cancelled meanwhile are
    /// not among them.
    async fn complete(
        &self,
        owner: String,
        outcomes: Vec<Outcome>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError>;
    /// Makes every pending delivery of `webhook` due now (its circuit closed).
    async fn release_deferred(&self, webhook: Uuid, now: i64) -> Result<(), StoreError>;
    /// Frees every lease (single-node backends at start, before serving:
    /// any lease left is a dead process's). Answers how many deliveries
    /// were freed.
    async fn recover_leases(&self, now: i64) -> Result<u64, StoreError>;
    /// Makes `owner`'s deliveries whose lease lapsed at or before `before`
    /// pending and due at `now`, for the next claim, except `keep` (those
    /// `owner` still has in memory). These are leases their owner lost
    /// track of: a publish whose commit answered an error. Answers how many.
    async fn free_lapsed_leases(
        &self,
        owner: String,
        before: i64,
        keep: Vec<i64>,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// Extends `owner`'s leases on the deliveries `ids` it still holds
    /// (queued or in flight) to `until`, so that no claim takes a delivery
    /// back from a live node that is about to send it.
    async fn renew_leases(
        &self,
        owner: String,
        ids: Vec<i64>,
        until: i64,
    ) -> Result<(), StoreError>;
}

/// What an append does when the store's write queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Wait for room (internal writers that must not lose their work).
    Wait,
    /// Answer `StoreError::Busy` at once, so the caller can push back.
    Refuse,
}

/// A webhook an event fans out to.
pub(crate) struct Target {
    pub uuid: Uuid,
    pub event_names: Vec<String>,
    pub max_in_flight: Option<u32>,
    pub per_book: bool,
    /// Empty: every account of the org.
    pub accounts: Vec<Uuid>,
}

impl Target {
    /// Whether an event `event_name` published for `account` goes here.
    pub(crate) fn wants(&self, event_name: &str, account: &Uuid) -> bool {
        self.event_names.iter().any(|n| n == event_name)
            && (self.accounts.is_empty() || self.accounts.contains(account))
    }
}

/// The active webhooks of an org (`$1`), oldest first, as [`target`] reads them.
pub(crate) static SUBSCRIBERS: Sql = Sql::new(
    "SELECT uuid, event_names, max_in_flight, ordering, org_uuid, account_uuids FROM webhooks \
     WHERE org_uuid = $1 AND deleted_at IS NULL AND is_active = true ORDER BY created_at, uuid",
);

/// Reads a row of [`SUBSCRIBERS`] but its org (column 4).
pub(crate) fn target(r: &dyn Cells) -> Result<Target, StoreError> {
    Ok(Target {
        uuid: r.uuid(0)?,
        event_names: r.text_list(1)?,
        max_in_flight: r.opt_count(2)?,
        per_book: r.text(3)? == "per_book",
        accounts: crate::webhooks::accounts(r, 5)?,
    })
}

pub(crate) static ACCOUNT_ORG: Sql = Sql::new("SELECT org_uuid FROM accounts WHERE uuid = $1");

/// Inserts an event; no row when the org already has one with its uuid.
pub(crate) static INSERT_EVENT: Sql = Sql::new(
    "INSERT INTO events (uuid, org_uuid, account_uuid, event_name, book_uuid, occurred_at, \
     accepted_at, payload, payload_hash, delivery_count, is_test) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (org_uuid, uuid) DO NOTHING RETURNING id",
);
/// An event published before: its payload hash and fan-out.
pub(crate) static EARLIER_EVENT: Sql =
    Sql::new("SELECT payload_hash, delivery_count FROM events WHERE org_uuid = $1 AND uuid = $2");

/// The next place in a (webhook, book) sequence. The row it writes orders
/// concurrent publishes of the book.
pub(crate) static NEXT_BOOK_SEQ: Sql = Sql::new(
    "INSERT INTO book_sequences (webhook_uuid, book_uuid, last_seq) VALUES ($1, $2, 1) \
     ON CONFLICT (webhook_uuid, book_uuid) DO UPDATE \
     SET last_seq = book_sequences.last_seq + 1 RETURNING last_seq",
);
/// Whether an earlier delivery of the sequence is not finished yet.
pub(crate) static WAITS_FOR_EARLIER: Sql = Sql::new(
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE webhook_uuid = $1 AND book_uuid = $2 \
     AND book_seq < $3 AND status IN ('pending', 'delivering', 'held'))",
);

/// The per-book rule as a claim filter on `d`: no earlier delivery of its
/// book is unfinished. Used by both claims.
macro_rules! book_is_free {
    () => {
        "(d.book_seq IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p \
          WHERE p.webhook_uuid = d.webhook_uuid AND p.book_uuid = d.book_uuid \
          AND p.book_seq < d.book_seq AND p.status IN ('pending', 'delivering', 'held')))"
    };
}
pub(crate) use book_is_free;

/// What a claim answers for each delivery, as [`claimed`] reads it.
macro_rules! claimed_cols {
    () => {
        "id, uuid, webhook_uuid, event_id, attempts, is_test, \
         (SELECT max_in_flight FROM webhooks w WHERE w.uuid = webhook_uuid), book_seq"
    };
}
pub(crate) use claimed_cols;

pub(crate) static INSERT_DELIVERY: Sql = Sql::new(
    "INSERT INTO deliveries (uuid, event_id, webhook_uuid, status, is_test, attempts, \
     next_attempt_at, lease_owner, lease_until, created_at, updated_at, book_uuid, book_seq) \
     VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $6, $6, $9, $10) RETURNING id",
);
/// The webhook a test delivery goes to: its org and cap.
pub(crate) static TEST_TARGET: Sql =
    Sql::new("SELECT org_uuid, max_in_flight FROM webhooks WHERE uuid = $1 AND deleted_at IS NULL");
pub(crate) static EVENT_PAYLOAD: Sql = Sql::new("SELECT uuid, payload FROM events WHERE id = $1");

pub(crate) static INSERT_ATTEMPT: Sql = Sql::new(
    "INSERT INTO attempts (uuid, delivery_id, started_at, duration_ms, response_status, \
     response_headers, response_body, error, request_headers) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
);
/// Writes an outcome (PostgreSQL runs the same rule for a whole batch in
/// one statement, `postgres/queue.rs`): `$1` the delivery, `$2` its status, `$3` when it is
/// due, `$4` 1 when an attempt was made, `$5` now, `$6` the lease owner.
/// A delivery cancelled while in flight stays cancelled (no row). One whose
/// redelivery was asked for while in flight goes again now, with a fresh
/// budget, unless this attempt succeeded.
pub(crate) static SETTLE: Sql = Sql::new(
    "UPDATE deliveries SET \
     status = CASE WHEN redeliver = true AND CAST($2 AS TEXT) IN ('failed', 'pending') \
              THEN 'pending' ELSE CAST($2 AS TEXT) END, \
     next_attempt_at = CASE WHEN redeliver = true AND CAST($2 AS TEXT) IN ('failed', 'pending') \
              THEN CAST($5 AS BIGINT) ELSE CAST($3 AS BIGINT) END, \
     attempts = CASE WHEN redeliver = true AND CAST($2 AS TEXT) IN ('failed', 'pending') \
              THEN 0 ELSE attempts + CAST($4 AS INTEGER) END, \
     redeliver = false, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
     WHERE id = $1 AND status = 'delivering' AND lease_owner = $6",
);
pub(crate) static STATUS_OF: Sql = Sql::new("SELECT status FROM deliveries WHERE id = $1");

pub(crate) static RELEASE_DEFERRED: Sql = Sql::new(
    "UPDATE deliveries SET next_attempt_at = $2, updated_at = $2 \
     WHERE webhook_uuid = $1 AND status = 'pending' AND next_attempt_at > $2",
);
pub(crate) static RECOVER_LEASES: Sql = Sql::new(
    "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, lease_owner = NULL, \
     lease_until = NULL, updated_at = $1 WHERE status = 'delivering'",
);
/// [`DeliveryQueue::free_lapsed_leases`] but for its list of ids to keep,
/// which each backend binds its own way: `$1` the owner, `$2` before, `$3`
/// now, then `AND id …` follows.
macro_rules! free_lapsed_leases {
    () => {
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $3, lease_owner = NULL, \
         lease_until = NULL, updated_at = $3 \
         WHERE status = 'delivering' AND lease_owner = $1 AND lease_until <= $2 AND id "
    };
}
pub(crate) use free_lapsed_leases;

/// A new delivery's status and lease columns: leased to the caller unless
/// it waits for an earlier one of its book, or the caller does not take
/// its webhook now.
pub(crate) fn lease_columns<'a>(
    lease: Option<&'a Lease>,
    webhook: &Uuid,
    blocked: bool,
) -> (&'static str, Option<&'a str>, Option<i64>) {
    match lease {
        Some(lease) if !blocked && lease.takes(webhook) => {
            ("delivering", Some(lease.owner.as_str()), Some(lease.until))
        }
        _ => ("pending", None, None),
    }
}

/// A delivery just created and leased to the caller: nothing attempted yet.
pub(crate) fn created_job(
    id: i64,
    uuid: Uuid,
    webhook_uuid: Uuid,
    max_in_flight: Option<u32>,
    event: &NewEvent,
    is_test: bool,
    ordered: bool,
) -> DeliveryJob {
    DeliveryJob {
        id,
        uuid,
        webhook_uuid,
        max_in_flight,
        event_uuid: event.uuid,
        payload: event.payload.clone(),
        attempts: 0,
        is_test,
        ordered,
    }
}

/// A claimed delivery before its event's payload is read.
pub(crate) struct Claimed {
    pub id: i64,
    pub uuid: Uuid,
    pub webhook_uuid: Uuid,
    pub event_id: i64,
    pub attempts: u32,
    pub is_test: bool,
    pub max_in_flight: Option<u32>,
    pub ordered: bool,
}

impl Claimed {
    pub(crate) fn into_job(self, event_uuid: Uuid, payload: std::sync::Arc<str>) -> DeliveryJob {
        DeliveryJob {
            id: self.id,
            uuid: self.uuid,
            webhook_uuid: self.webhook_uuid,
            max_in_flight: self.max_in_flight,
            event_uuid,
            payload,
            attempts: self.attempts,
            is_test: self.is_test,
            ordered: self.ordered,
        }
    }
}

/// Reads a row of [`claimed_cols`].
pub(crate) fn claimed(r: &dyn Cells) -> Result<Claimed, StoreError> {
    Ok(Claimed {
        id: r.int(0)?,
        uuid: r.uuid(1)?,
        webhook_uuid: r.uuid(2)?,
        event_id: r.int(3)?,
        attempts: r.count(4)?,
        is_test: r.flag(5)?,
        max_in_flight: r.opt_count(6)?,
        ordered: r.opt_int(7)?.is_some(),
    })
}

/// Whether a settle that matched nothing lost the delivery to another
/// claim (`status` is what the row says now; `None`: the row is gone).
pub(crate) fn lost(status: Option<&str>) -> bool {
    status != Some(DeliveryStatus::Cancelled.as_str())
}
