//! The records the store holds, as callers see them. Timestamps are Unix
//! milliseconds; sealed fields hold ciphertext produced by
//! `orghooks_core::sealing`, never a plaintext secret.

use orghooks_core::webhook::{Ordering, SignatureScheme};
use std::sync::Arc;

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrg {
    pub uuid: Uuid,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub uuid: Uuid,
    pub name: String,
    pub created_at: i64,
}

/// What an API account may do: managers manage webhooks, members read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Manager,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manager => "manager",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manager" => Some(Self::Manager),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub name: String,
    pub role: Role,
    pub client_id: String,
    pub client_secret_hash: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub name: String,
    pub role: Role,
    pub client_id: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

/// An account with the hash of its client secret, for the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCredentials {
    pub account: Account,
    pub client_secret_hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub hash: Vec<u8>,
    pub account_uuid: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Who a token speaks for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub account: Account,
    pub expires_at: i64,
}

/// A portal link (`POST /v1/portal/sessions`), stored as its hash until
/// it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPortalLink {
    pub hash: Vec<u8>,
    pub org_uuid: Uuid,
    pub read_only: bool,
    pub created_at: i64,
    /// The link must be opened before this, and the session it opens ends
    /// then.
    pub expires_at: i64,
}

/// The dashboard session an opened portal link became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub org_uuid: Uuid,
    pub read_only: bool,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    /// Normalised, without its password.
    pub url: String,
    pub url_password_sealed: Option<String>,
    pub description: Option<String>,
    pub is_active: bool,
    pub event_names: Vec<String>,
    pub signature_scheme: SignatureScheme,
    pub ordering: Ordering,
    /// `None`: the node's `delivery.default_max_in_flight` applies.
    pub max_in_flight: Option<u32>,
    /// The accounts whose events it receives; empty: every account of the org.
    pub account_uuids: Vec<Uuid>,
    /// Set for an account-level webhook (Ocrolus's older API): the account
    /// that owns it, at most one per account.
    pub owner_account: Option<Uuid>,
    pub options: DeliveryOptions,
    pub created_at: i64,
}

/// A webhook's own delivery settings (extension fields); each unset one is
/// the node's. Stored as one JSON column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Custom header names, in order (names are not secret).
    pub header_names: Vec<String>,
    /// The custom headers' `[[name, value], …]` as JSON, sealed: their
    /// values often hold API keys. `None` without headers.
    pub headers_sealed: Option<String>,
    /// Gaps before attempts 2, 3, …
    pub retry_gaps_ms: Option<Vec<u64>>,
    pub timeout_ms: Option<u32>,
}

/// How many webhooks an organization may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookLimit {
    /// Live org-level webhooks per organization.
    pub max_per_org: u32,
    /// Whether account-level webhooks count too (and are refused at the limit).
    pub account_level_counts: bool,
}

impl WebhookLimit {
    /// `max_per_org` org-level webhooks; account-level ones do not count.
    pub fn org_level(max_per_org: u32) -> Self {
        Self {
            max_per_org,
            account_level_counts: false,
        }
    }

    /// Whether a webhook owned by `owner_account` (`None`: org-level)
    /// counts toward the limit, so that adding it must first count the
    /// org's live webhooks.
    pub fn counts(&self, owner_account: Option<Uuid>) -> bool {
        owner_account.is_none() || self.account_level_counts
    }

    pub fn applies_to(&self, w: &NewWebhook) -> bool {
        self.counts(w.owner_account)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub url: String,
    pub url_password_sealed: Option<String>,
    pub description: Option<String>,
    pub is_active: bool,
    pub event_names: Vec<String>,
    pub secret_sealed: Option<String>,
    /// The secret replaced by the last rotation, still signing until
    /// `previous_secret_until` (standard-webhooks overlap).
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub signature_scheme: SignatureScheme,
    pub ordering: Ordering,
    /// `None`: the node's `delivery.default_max_in_flight` applies.
    pub max_in_flight: Option<u32>,
    /// The accounts whose events it receives; empty: every account of the org.
    pub account_uuids: Vec<Uuid>,
    /// The owning account of an account-level webhook; `None` for org-level.
    pub owner_account: Option<Uuid>,
    /// Its own headers, retry gaps and timeout (the node's where unset).
    pub options: DeliveryOptions,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// A new URL replaces the password too: `(url, sealed password)`.
    pub url: Option<(String, Option<String>)>,
    pub description: Option<String>,
    /// Re-activating clears `disabled_reason` and `disabled_at`.
    pub is_active: Option<bool>,
    pub event_names: Option<Vec<String>>,
    pub signature_scheme: Option<SignatureScheme>,
    pub ordering: Option<Ordering>,
    pub max_in_flight: Option<u32>,
    /// Replaces the account scope (empty: every account).
    pub account_uuids: Option<Vec<Uuid>>,
    /// Replaces the webhook's own delivery settings.
    pub options: Option<DeliveryOptions>,
    pub secret_sealed: Option<String>,
    /// With `secret_sealed`: keep the replaced secret signing until then.
    pub keep_previous_secret_until: Option<i64>,
    pub updated_at: i64,
}

/// A platform-wide token for the publish API (stored as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPublisherToken {
    pub uuid: Uuid,
    pub name: String,
    pub hash: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherToken {
    pub uuid: Uuid,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A validated, completed event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub uuid: Uuid,
    pub account_uuid: Uuid,
    pub event_name: String,
    pub book_uuid: Option<String>,
    pub occurred_at: i64,
    /// The completed payload, serialised once; deliveries send these bytes.
    pub payload: Arc<str>,
    /// Identifies the payload for idempotent replays.
    pub payload_hash: Vec<u8>,
}

/// Who owns freshly created or claimed deliveries, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
    /// Webhooks whose new deliveries the owner does not take now (its lane
    /// for them is full, or their circuit is open): those are created
    /// pending, for a later claim, instead of leased.
    pub except: Vec<Uuid>,
}

impl Lease {
    /// Whether a new delivery to `webhook` is taken under this lease.
    pub fn takes(&self, webhook: &Uuid) -> bool {
        !self.except.contains(webhook)
    }
}

/// The answer to one appended event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event_uuid: Uuid,
    /// How many deliveries the event fanned out to (also on a replay).
    pub delivery_count: u32,
    /// The new deliveries, leased to the caller; empty on a replay.
    pub deliveries: Vec<DeliveryJob>,
    /// True when the event was already accepted with the same payload.
    pub replayed: bool,
}

/// Why one event of a batch was refused by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    UnknownAccount,
    /// The event uuid was accepted before with another payload.
    PayloadMismatch,
}

/// Where a delivery stands (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Succeeded,
    Failed,
    Held,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivering => "delivering",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Held => "held",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "delivering" => Self::Delivering,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "held" => Self::Held,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A delivery ready to send: everything the sender needs but the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    /// The store's internal id, for completing it cheaply.
    pub id: i64,
    pub uuid: Uuid,
    pub webhook_uuid: Uuid,
    /// The webhook's concurrency cap per node, as it was when this was
    /// read (`None`: the node's default).
    pub max_in_flight: Option<u32>,
    pub event_uuid: Uuid,
    pub payload: Arc<str>,
    /// Attempts already made.
    pub attempts: u32,
    pub is_test: bool,
    /// Has a place in a per-book sequence: finishing it may unblock the next.
    pub ordered: bool,
}

/// One HTTP request of a delivery, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub uuid: Uuid,
    pub started_at: i64,
    pub duration_ms: i64,
    /// JSON object of the request headers, secrets masked.
    pub request_headers: Option<String>,
    pub response_status: Option<u16>,
    /// JSON object of the response headers.
    pub response_headers: Option<String>,
    /// The response body, for non-2xx answers and tests only, up to a
    /// limit.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// What happens to a delivery after an attempt (or instead of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Succeeded,
    /// Try again at this time.
    Retry {
        at: i64,
    },
    /// The retry budget is spent.
    Failed,
    /// The webhook is inactive: wait for re-activation.
    Held,
    /// The webhook is gone.
    Cancelled,
    /// Not attempted (the circuit is open): wait without spending budget.
    Deferred {
        at: i64,
    },
}

impl Settle {
    /// The delivery's status and when it is next due once this is written.
    pub fn status_and_due(&self, now: i64) -> (DeliveryStatus, i64) {
        match *self {
            Self::Succeeded => (DeliveryStatus::Succeeded, now),
            Self::Retry { at } | Self::Deferred { at } => (DeliveryStatus::Pending, at),
            Self::Failed => (DeliveryStatus::Failed, now),
            Self::Held => (DeliveryStatus::Held, now),
            Self::Cancelled => (DeliveryStatus::Cancelled, now),
        }
    }
}

/// The result of handling one delivery, written back in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub delivery_id: i64,
    pub attempt: Option<AttemptRecord>,
    pub settle: Settle,
    /// The delivery has a place in a per-book sequence: once this is
    /// written, the next one of its book may be claimable.
    pub ordered: bool,
}

/// How many of a webhook's deliveries in one time slice are in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCount {
    /// The slice: `(created_at - since) / slice_ms`.
    pub slice: i64,
    pub status: DeliveryStatus,
    pub count: u32,
}

/// Which deliveries of a webhook to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_name: Option<String>,
    pub book_uuid: Option<String>,
    /// Created at or after.
    pub since: Option<i64>,
    /// Created before.
    pub until: Option<i64>,
    /// Only deliveries older than this cursor (from the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// A delivery as the log lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySummary {
    /// The store's id: the pagination cursor.
    pub id: i64,
    pub uuid: Uuid,
    pub webhook_uuid: Uuid,
    pub event_uuid: Uuid,
    pub event_name: String,
    pub book_uuid: Option<String>,
    pub status: DeliveryStatus,
    pub is_test: bool,
    pub attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_attempt_at: i64,
}

/// One delivery with its payload and every attempt, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    pub summary: DeliverySummary,
    pub payload: String,
    pub attempts: Vec<AttemptRecord>,
}

/// A finished delivery made due again by `redeliver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivery {
    /// Leased to the caller: send it now.
    Leased(DeliveryJob),
    /// Left for the claimers (the caller does not deliver).
    Queued,
    /// An attempt is in flight: one more follows it unless it succeeds.
    AfterCurrent,
}
