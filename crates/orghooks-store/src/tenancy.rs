//! Who may call orghooks: organizations, their API accounts, the tokens
//! those accounts are granted, and the platform's publisher tokens. The
//! statements both backends run and the row decoders; backends add only
//! how a statement runs.

use async_trait::async_trait;
use uuid::Uuid;

use crate::StoreError;
use crate::model::*;
use crate::sql::{Cells, Sql};

/// Organizations, accounts and tokens.
#[async_trait]
pub trait Tenancy: Send + Sync {
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

    /// Stores a token, and drops a few expired ones on the way.
    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError>;
    /// The grant behind a token hash, read fresh on every call so that a
    /// disabled account or an expired token is refused at once.
    async fn token_grant(&self, token_hash: Vec<u8>) -> Result<Option<TokenGrant>, StoreError>;
    /// Ends a token at once (a dashboard sign-out); an unknown one is fine.
    async fn delete_token(&self, token_hash: Vec<u8>) -> Result<(), StoreError>;

    /// Stores a portal link, and drops a few expired ones on the way;
    /// `NotFound` when the org does not exist.
    async fn insert_portal_link(&self, link: NewPortalLink) -> Result<(), StoreError>;
    /// Opens a portal link once: in one statement its hash becomes the
    /// session's, so the link matches nothing afterwards. `None` when it is
    /// unknown, already opened or expired.
    async fn open_portal_link(
        &self,
        link_hash: Vec<u8>,
        session_hash: Vec<u8>,
        now: i64,
    ) -> Result<Option<PortalSession>, StoreError>;
    /// The session an opened link became (expired ones too: the caller
    /// compares `expires_at`).
    async fn portal_session(&self, hash: Vec<u8>) -> Result<Option<PortalSession>, StoreError>;
    /// Ends a portal session at once (sign-out); an unknown one is fine.
    async fn delete_portal_session(&self, hash: Vec<u8>) -> Result<(), StoreError>;

    async fn create_publisher_token(
        &self,
        token: NewPublisherToken,
    ) -> Result<PublisherToken, StoreError>;
    async fn list_publisher_tokens(&self) -> Result<Vec<PublisherToken>, StoreError>;
    /// Revokes a publisher token (a second revoke keeps the first time).
    async fn revoke_publisher_token(
        &self,
        token: Uuid,
        at: i64,
    ) -> Result<PublisherToken, StoreError>;
    async fn publisher_token(&self, hash: Vec<u8>) -> Result<Option<PublisherToken>, StoreError>;
}

pub(crate) static INSERT_ORG: Sql =
    Sql::new("INSERT INTO orgs (uuid, name, created_at) VALUES ($1, $2, $3)");
pub(crate) static LIST_ORGS: Sql =
    Sql::new("SELECT uuid, name, created_at FROM orgs ORDER BY created_at, uuid");
pub(crate) static ORG_EXISTS: Sql = Sql::new("SELECT EXISTS (SELECT 1 FROM orgs WHERE uuid = $1)");

pub(crate) fn org(r: &dyn Cells) -> Result<Org, StoreError> {
    Ok(Org {
        uuid: r.uuid(0)?,
        name: r.text(1)?,
        created_at: r.int(2)?,
    })
}

pub(crate) static INSERT_ACCOUNT: Sql = Sql::new(
    "INSERT INTO accounts (uuid, org_uuid, name, role, client_id, client_secret_hash, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)",
);
pub(crate) static LIST_ACCOUNTS: Sql = Sql::new(
    "SELECT uuid, org_uuid, name, role, client_id, disabled_at, created_at FROM accounts \
     WHERE org_uuid = $1 OR $1 IS NULL ORDER BY created_at, uuid",
);
pub(crate) static SET_ACCOUNT_DISABLED: Sql = Sql::new(
    "UPDATE accounts SET disabled_at = $2 WHERE uuid = $1 \
     RETURNING uuid, org_uuid, name, role, client_id, disabled_at, created_at",
);
/// An account and (column 7) its client secret's hash.
pub(crate) static ACCOUNT_BY_CLIENT_ID: Sql = Sql::new(
    "SELECT uuid, org_uuid, name, role, client_id, disabled_at, created_at, client_secret_hash \
     FROM accounts WHERE client_id = $1",
);

/// Reads the seven account columns from index 0.
pub(crate) fn account(r: &dyn Cells) -> Result<Account, StoreError> {
    Ok(Account {
        uuid: r.uuid(0)?,
        org_uuid: r.uuid(1)?,
        name: r.text(2)?,
        role: Role::parse(&r.text(3)?).unwrap_or(Role::Member),
        client_id: r.text(4)?,
        disabled_at: r.opt_int(5)?,
        created_at: r.int(6)?,
    })
}

pub(crate) fn account_credentials(r: &dyn Cells) -> Result<AccountCredentials, StoreError> {
    Ok(AccountCredentials {
        account: account(r)?,
        client_secret_hash: r.bytes(7)?,
    })
}

/// Expired tokens go as new ones come, a few at a time.
pub(crate) static PURGE_EXPIRED_TOKENS: Sql = Sql::new(
    "DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at < $1 LIMIT 16)",
);
pub(crate) static INSERT_TOKEN: Sql = Sql::new(
    "INSERT INTO tokens (hash, account_uuid, created_at, expires_at) VALUES ($1, $2, $3, $4)",
);
pub(crate) static DELETE_TOKEN: Sql = Sql::new("DELETE FROM tokens WHERE hash = $1");
pub(crate) static TOKEN_GRANT: Sql = Sql::new(
    "SELECT a.uuid, a.org_uuid, a.name, a.role, a.client_id, a.disabled_at, a.created_at, \
     t.expires_at FROM tokens t JOIN accounts a ON a.uuid = t.account_uuid WHERE t.hash = $1",
);

pub(crate) fn token_grant(r: &dyn Cells) -> Result<TokenGrant, StoreError> {
    Ok(TokenGrant {
        account: account(r)?,
        expires_at: r.int(7)?,
    })
}

pub(crate) static PURGE_EXPIRED_PORTAL: Sql = Sql::new(
    "DELETE FROM portal_sessions WHERE hash IN \
     (SELECT hash FROM portal_sessions WHERE expires_at < $1 LIMIT 16)",
);
pub(crate) static INSERT_PORTAL_LINK: Sql = Sql::new(
    "INSERT INTO portal_sessions (hash, org_uuid, read_only, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5)",
);
pub(crate) static OPEN_PORTAL_LINK: Sql = Sql::new(
    "UPDATE portal_sessions SET hash = $2, opened_at = $3 \
     WHERE hash = $1 AND opened_at IS NULL AND expires_at > $3 \
     RETURNING org_uuid, read_only, expires_at",
);
pub(crate) static PORTAL_SESSION: Sql = Sql::new(
    "SELECT org_uuid, read_only, expires_at FROM portal_sessions \
     WHERE hash = $1 AND opened_at IS NOT NULL",
);
pub(crate) static DELETE_PORTAL_SESSION: Sql =
    Sql::new("DELETE FROM portal_sessions WHERE hash = $1 AND opened_at IS NOT NULL");

pub(crate) fn portal_session(r: &dyn Cells) -> Result<PortalSession, StoreError> {
    Ok(PortalSession {
        org_uuid: r.uuid(0)?,
        read_only: r.flag(1)?,
        expires_at: r.int(2)?,
    })
}

pub(crate) static INSERT_PUBLISHER_TOKEN: Sql = Sql::new(
    "INSERT INTO publisher_tokens (uuid, name, hash, created_at) VALUES ($1, $2, $3, $4) \
     RETURNING uuid, name, created_at, revoked_at",
);
pub(crate) static LIST_PUBLISHER_TOKENS: Sql = Sql::new(
    "SELECT uuid, name, created_at, revoked_at FROM publisher_tokens ORDER BY created_at, uuid",
);
pub(crate) static REVOKE_PUBLISHER_TOKEN: Sql = Sql::new(
    "UPDATE publisher_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE uuid = $1 \
     RETURNING uuid, name, created_at, revoked_at",
);
pub(crate) static PUBLISHER_TOKEN_BY_HASH: Sql =
    Sql::new("SELECT uuid, name, created_at, revoked_at FROM publisher_tokens WHERE hash = $1");

pub(crate) fn publisher_token(r: &dyn Cells) -> Result<PublisherToken, StoreError> {
    Ok(PublisherToken {
        uuid: r.uuid(0)?,
        name: r.text(1)?,
        created_at: r.int(2)?,
        revoked_at: r.opt_int(3)?,
    })
}

/// What a created account looks like before anyone disabled it.
pub(crate) fn created_account(a: NewAccount) -> Account {
    Account {
        uuid: a.uuid,
        org_uuid: a.org_uuid,
        name: a.name,
        role: a.role,
        client_id: a.client_id,
        disabled_at: None,
        created_at: a.created_at,
    }
}
