//! Where orghooks keeps its state: the [`Store`] trait, the errors it
//! answers with, the records it holds, and its backends. This is the only
//! crate that knows SQL; callers see [`StoreError`], never a driver error.
//!
//! The write path is batch-first: a backend commits many callers' writes in
//! one transaction (group commit) and answers each caller only after that
//! commit is durable. Later work (events, deliveries, claims, outcomes) adds
//! methods to [`Store`] that follow the same shape.

mod error;
pub mod model;
mod patch;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use uuid::Uuid;

pub use error::StoreError;
pub use model::*;

/// Everything orghooks reads and writes, whatever the backend.
///
/// Methods that take an `org` only ever see that organization's rows: a
/// webhook of another org is `NotFound`, exactly as if it did not exist.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does (for readiness checks).
    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError>;
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError>;

    /// Fails with `NotFound` when the org does not exist and `Conflict` when
    /// the client id is taken.
    async fn create_account(&self, account: NewAccount) -> Result<Account, StoreError>;
    async fn list_accounts(&self, org: Option<Uuid>) -> Result<Vec<Account>, StoreError>;
    /// Disables (`Some(at)`) or re-enables (`None`) an account.
    async fn set_account_disabled(
        &self,
        account: Uuid,
        disabled_at: Option<i64>,
    ) -> Result<Account, StoreError>;
    async fn account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<AccountCredentials>, StoreError>;

    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError>;
    /// The grant behind a token hash, read fresh on every call so that a
    /// disabled account or an expired token is refused at once.
    async fn token_grant(&self, token_hash: Vec<u8>) -> Result<Option<TokenGrant>, StoreError>;

    /// Adds a webhook unless the org already has `max_per_org` live ones
    /// (`LimitReached`) or one with the same URL (`Conflict`). The check and
    /// the insert are one atomic step.
    async fn insert_webhook(
        &self,
        webhook: NewWebhook,
        max_per_org: u32,
    ) -> Result<Webhook, StoreError>;
    async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError>;
    async fn get_webhook(&self, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError>;
    async fn update_webhook(
        &self,
        org: Uuid,
        webhook: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError>;
    /// Soft-deletes: the webhook no longer counts for the limit or URL
    /// rule, and its pending and held deliveries are cancelled (answers
    /// how many).
    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<u64, StoreError>;
    /// A live webhook by uuid, whatever its org (for the delivery engine).
    async fn webhook_by_uuid(&self, webhook: Uuid) -> Result<Option<Webhook>, StoreError>;
    /// Turns a webhook off on the receiver's word (410 Gone, a circuit open
    /// too long): `is_active = false` with the reason; its pending
    /// deliveries are held.
    async fn disable_webhook(
        &self,
        webhook: Uuid,
        reason: String,
        at: i64,
    ) -> Result<(), StoreError>;

    async fn create_publisher_token(
        &self,
        token: NewPublisherToken,
    ) -> Result<PublisherToken, StoreError>;
    async fn list_publisher_tokens(&self) -> Result<Vec<PublisherToken>, StoreError>;
    async fn revoke_publisher_token(
        &self,
        token: Uuid,
        at: i64,
    ) -> Result<PublisherToken, StoreError>;
    async fn publisher_token(&self, hash: Vec<u8>) -> Result<Option<PublisherToken>, StoreError>;

    /// Appends events and fans each out, in the same commit, to every
    /// active webhook of the account's org subscribed to it; the new
    /// deliveries are leased to `lease.owner`. Each event is judged on its
    /// own. With `wait = false` a full write queue answers `Busy` at once.
    /// Without a lease (a node that does not deliver) the deliveries are
    /// left for the claimers.
    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now: i64,
        lease: Option<Lease>,
        wait: bool,
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
    /// Leases up to `limit` deliveries that are due, or whose lease
    /// expired, except those of the webhooks in `skip` (the caller has no
    /// room for them: they stay in the database until it has).
    async fn claim_due(
        &self,
        now: i64,
        lease: Lease,
        limit: u32,
        skip: Vec<Uuid>,
    ) -> Result<Vec<DeliveryJob>, StoreError>;
    /// Writes back what happened to deliveries, in one commit. Answers the
    /// ids of deliveries whose outcome found them no longer being delivered
    /// (their lease lapsed and another claim took them, so they may be sent
    /// again); deliveries cancelled meanwhile are not among them.
    async fn complete(&self, outcomes: Vec<Outcome>, now: i64) -> Result<Vec<i64>, StoreError>;
    /// Makes every pending delivery of `webhook` due now (its circuit closed).
    async fn release_deferred(&self, webhook: Uuid, now: i64) -> Result<(), StoreError>;
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
    /// Sends a finished (succeeded or failed) delivery again: it is reset to
    /// a fresh retry budget and leased to the caller, who sends it now.
    /// `None` when it is already waiting to be sent (idempotent).
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
    /// Frees every lease (single-node backends at start: any lease left is
    /// a dead process's). Answers how many deliveries were freed.
    async fn recover_leases(&self, now: i64) -> Result<u64, StoreError>;
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
