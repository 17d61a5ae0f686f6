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
    /// Soft-deletes: the webhook no longer counts for the limit or URL rule.
    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<(), StoreError>;
}
