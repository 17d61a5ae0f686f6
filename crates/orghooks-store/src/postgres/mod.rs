//! The PostgreSQL backend, for several nodes sharing one database. Each
//! call is one transaction on a pooled connection (concurrent appends are
//! merged into one, see [`batcher`]); rules that span rows
//! are made atomic with row locks (the org row for the webhook limit, the
//! book sequence row for per-book ordering) and claims use
//! `FOR UPDATE SKIP LOCKED`, so no delivery is leased to two nodes.
//! Durability: `synchronous_commit = on` is set on every connection.

mod append;
mod batcher;
mod delivery;
mod schema;
pub mod scratch;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use orghooks_core::webhook::{Ordering, SignatureScheme};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::error::{CLIENT_ID_RULE, ORG_RULE, WEBHOOK_URL_RULE};
use crate::model::*;
use crate::{Store, StoreError};

/// How the PostgreSQL backend is opened.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections this node keeps open.
    pub pool_size: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { pool_size: 16 }
    }
}

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    appends: tokio::sync::mpsc::Sender<batcher::Request>,
}

/// Maps a PostgreSQL error: a lost or refused connection, a server
/// shutting down or starting, exhausted resources (disk full) and a
/// read-only server (a standby after failover) are `Unavailable`.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    let state = e.code().map(SqlState::code);
    let unavailable = e.is_closed()
        || io
        || state.is_some_and(|c| {
            c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") || c == "25006"
        });
    if unavailable {
        StoreError::Unavailable(Arc::new(e))
    } else {
        StoreError::Backend(Arc::new(e))
    }
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        other => StoreError::Unavailable(Arc::new(other)),
    }
}

/// Maps a unique violation to the domain rule it enforces.
fn unique_as(rule: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::Conflict(rule)
        } else {
            pg(e)
        }
    }
}

impl PgStore {
    /// Connects to `url` (postgres://…) and migrates the schema.
    pub async fn open(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Backend(Arc::new(e)))?;
        let mut config = config;
        // Durable commits, whatever the server's default (SPEC §7).
        config.options("-c synchronous_commit=on");
        // An unreachable server must fail a request, not hang it.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Backend(Arc::new(e)))?;
        let appends = batcher::start(pool.clone(), 8192);
        let store = Self { pool, appends };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

fn org_row(r: &Row) -> Org {
    Org {
        uuid: r.get("uuid"),
        name: r.get("name"),
        created_at: r.get("created_at"),
    }
}

const ACCOUNT_COLS: &str = "uuid, org_uuid, name, role, client_id, disabled_at, created_at";

fn account_row(r: &Row) -> Account {
    let role: String = r.get("role");
    Account {
        uuid: r.get("uuid"),
        org_uuid: r.get("org_uuid"),
        name: r.get("name"),
        role: Role::parse(&role).unwrap_or(Role::Member),
        client_id: r.get("client_id"),
        disabled_at: r.get("disabled_at"),
        created_at: r.get("created_at"),
    }
}

const WEBHOOK_COLS: &str = "uuid, org_uuid, url, url_password_sealed, description, is_active, \
     event_names, secret_sealed, signature_scheme, ordering, max_in_flight, disabled_reason, \
     disabled_at, created_at, updated_at, previous_secret_sealed, previous_secret_until";

fn webhook_row(r: &Row) -> Result<Webhook, StoreError> {
    let events: String = r.get("event_names");
    let scheme: String = r.get("signature_scheme");
    let ordering: String = r.get("ordering");
    let max_in_flight: i32 = r.get("max_in_flight");
    Ok(Webhook {
        uuid: r.get("uuid"),
        org_uuid: r.get("org_uuid"),
        url: r.get("url"),
        url_password_sealed: r.get("url_password_sealed"),
        description: r.get("description"),
        is_active: r.get("is_active"),
        event_names: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secret_sealed: r.get("secret_sealed"),
        previous_secret_sealed: r.get("previous_secret_sealed"),
        previous_secret_until: r.get("previous_secret_until"),
        signature_scheme: SignatureScheme::from_stored(&scheme),
        ordering: Ordering::from_stored(&ordering),
        max_in_flight: max_in_flight as u32,
        disabled_reason: r.get("disabled_reason"),
        disabled_at: r.get("disabled_at"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

const PUBLISHER_COLS: &str = "uuid, name, created_at, revoked_at";

fn publisher_row(r: &Row) -> PublisherToken {
    PublisherToken {
        uuid: r.get("uuid"),
        name: r.get("name"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
    }
}

fn json_list(names: &[String]) -> String {
    serde_json::to_string(names).expect("a list of strings serialises")
}

#[async_trait]
impl Store for PgStore {
    /// Ready means connected to a server that accepts writes (not a
    /// standby, as a node may find itself on after a failover).
    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(pg)?;
        if row.get::<_, bool>(0) {
            return Err(StoreError::Unavailable(Arc::new(std::io::Error::other(
                "the server is a read-only standby",
            ))));
        }
        Ok(())
    }

    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO orgs (uuid, name, created_at) VALUES ($1, $2, $3)",
                &[&org.uuid, &org.name, &org.created_at],
            )
            .await
            .map_err(unique_as(ORG_RULE))?;
        Ok(Org {
            uuid: org.uuid,
            name: org.name,
            created_at: org.created_at,
        })
    }

    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT uuid, name, created_at FROM orgs ORDER BY created_at, uuid",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(org_row).collect())
    }

    async fn create_account(&self, a: NewAccount) -> Result<Account, StoreError> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM orgs WHERE uuid = $1)",
                &[&a.org_uuid],
            )
            .await
            .map_err(pg)?
            .get(0);
        if !exists {
            return Err(StoreError::NotFound);
        }
        client
            .execute(
                "INSERT INTO accounts (uuid, org_uuid, name, role, client_id, client_secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&a.uuid, &a.org_uuid, &a.name, &a.role.as_str(), &a.client_id, &a.client_secret_hash, &a.created_at],
            )
            .await
            .map_err(unique_as(CLIENT_ID_RULE))?;
        Ok(Account {
            uuid: a.uuid,
            org_uuid: a.org_uuid,
            name: a.name,
            role: a.role,
            client_id: a.client_id,
            disabled_at: None,
            created_at: a.created_at,
        })
    }

    async fn list_accounts(&self, org: Option<Uuid>) -> Result<Vec<Account>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts WHERE $1::uuid IS NULL OR org_uuid = $1 \
                     ORDER BY created_at, uuid"
                ),
                &[&org],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(account_row).collect())
    }

    async fn set_account_disabled(
        &self,
        account: Uuid,
        at: Option<i64>,
    ) -> Result<Account, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!(
                    "UPDATE accounts SET disabled_at = $2 WHERE uuid = $1 RETURNING {ACCOUNT_COLS}"
                ),
                &[&account, &at],
            )
            .await
            .map_err(pg)?
            .map(|r| account_row(&r))
            .ok_or(StoreError::NotFound)
    }

    async fn account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<AccountCredentials>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {ACCOUNT_COLS}, client_secret_hash FROM accounts WHERE client_id = $1"
                ),
                &[&client_id],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| AccountCredentials {
            account: account_row(&r),
            client_secret_hash: r.get("client_secret_hash"),
        }))
    }

    async fn insert_token(&self, t: NewToken) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at < $1 LIMIT 16)",
                &[&t.created_at],
            )
            .await
            .map_err(pg)?;
        client
            .execute(
                "INSERT INTO tokens (hash, account_uuid, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[&t.hash, &t.account_uuid, &t.created_at, &t.expires_at],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn token_grant(&self, token_hash: Vec<u8>) -> Result<Option<TokenGrant>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT a.uuid, a.org_uuid, a.name, a.role, a.client_id, a.disabled_at, a.created_at, \
                 t.expires_at FROM tokens t JOIN accounts a ON a.uuid = t.account_uuid WHERE t.hash = $1",
                &[&token_hash],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| TokenGrant {
            account: account_row(&r),
            expires_at: r.get("expires_at"),
        }))
    }

    async fn insert_webhook(&self, w: NewWebhook, max_per_org: u32) -> Result<Webhook, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // The org's row lock serialises adds, so the limit holds.
        tx.execute(
            "SELECT 1 FROM orgs WHERE uuid = $1 FOR UPDATE",
            &[&w.org_uuid],
        )
        .await
        .map_err(pg)?;
        let live: i64 = tx
            .query_one(
                "SELECT count(*) FROM webhooks WHERE org_uuid = $1 AND deleted_at IS NULL",
                &[&w.org_uuid],
            )
            .await
            .map_err(pg)?
            .get(0);
        if live >= i64::from(max_per_org) {
            return Err(StoreError::LimitReached);
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webhooks (uuid, org_uuid, url, url_password_sealed, description, \
                     is_active, event_names, signature_scheme, ordering, max_in_flight, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                     RETURNING {WEBHOOK_COLS}"
                ),
                &[
                    &w.uuid,
                    &w.org_uuid,
                    &w.url,
                    &w.url_password_sealed,
                    &w.description,
                    &w.is_active,
                    &json_list(&w.event_names),
                    &w.signature_scheme.as_str(),
                    &w.ordering.as_str(),
                    &(w.max_in_flight as i32),
                    &w.created_at,
                ],
            )
            .await
            .map_err(unique_as(WEBHOOK_URL_RULE))?;
        let webhook = webhook_row(&row)?;
        tx.commit().await.map_err(pg)?;
        Ok(webhook)
    }

    async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE org_uuid = $1 AND deleted_at IS NULL \
                     ORDER BY created_at, uuid"
                ),
                &[&org],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(webhook_row).collect()
    }

    async fn get_webhook(&self, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE uuid = $1 AND org_uuid = $2 AND deleted_at IS NULL"
                ),
                &[&webhook, &org],
            )
            .await
            .map_err(pg)?
            .ok_or(StoreError::NotFound)?;
        webhook_row(&row)
    }

    async fn update_webhook(
        &self,
        org: Uuid,
        webhook: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE uuid = $1 AND org_uuid = $2 \
                     AND deleted_at IS NULL FOR UPDATE"
                ),
                &[&webhook, &org],
            )
            .await
            .map_err(pg)?
            .ok_or(StoreError::NotFound)?;
        let mut w = webhook_row(&row)?;
        let activation = patch.is_active.filter(|a| *a != w.is_active);
        crate::patch::apply(&mut w, patch);
        if let Some(active) = activation {
            delivery::hold_or_release(&tx, webhook, active, w.updated_at).await?;
        }
        tx.execute(
            "UPDATE webhooks SET url = $2, url_password_sealed = $3, description = $4, \
             is_active = $5, event_names = $6, secret_sealed = $7, signature_scheme = $8, \
             ordering = $9, max_in_flight = $10, disabled_reason = $11, disabled_at = $12, \
             updated_at = $13, previous_secret_sealed = $14, previous_secret_until = $15 \
             WHERE uuid = $1",
            &[
                &w.uuid,
                &w.url,
                &w.url_password_sealed,
                &w.description,
                &w.is_active,
                &json_list(&w.event_names),
                &w.secret_sealed,
                &w.signature_scheme.as_str(),
                &w.ordering.as_str(),
                &(w.max_in_flight as i32),
                &w.disabled_reason,
                &w.disabled_at,
                &w.updated_at,
                &w.previous_secret_sealed,
                &w.previous_secret_until,
            ],
        )
        .await
        .map_err(unique_as(WEBHOOK_URL_RULE))?;
        tx.commit().await.map_err(pg)?;
        Ok(w)
    }

    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute(
                "UPDATE webhooks SET deleted_at = $3, updated_at = $3 \
                 WHERE uuid = $1 AND org_uuid = $2 AND deleted_at IS NULL",
                &[&webhook, &org, &now],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let cancelled = tx
            .execute(
                "UPDATE deliveries SET status = 'cancelled', updated_at = $2 \
                 WHERE webhook_uuid = $1 AND status IN ('pending', 'held')",
                &[&webhook, &now],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(cancelled)
    }

    async fn webhook_by_uuid(&self, webhook: Uuid) -> Result<Option<Webhook>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE uuid = $1 AND deleted_at IS NULL"
                ),
                &[&webhook],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(webhook_row).transpose()
    }

    async fn disable_webhook(
        &self,
        webhook: Uuid,
        reason: String,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute(
                "UPDATE webhooks SET is_active = false, disabled_reason = $2, disabled_at = $3, \
                 updated_at = $3 WHERE uuid = $1 AND deleted_at IS NULL AND is_active",
                &[&webhook, &reason, &at],
            )
            .await
            .map_err(pg)?;
        if n > 0 {
            delivery::hold_or_release(&tx, webhook, false, at).await?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn create_publisher_token(
        &self,
        t: NewPublisherToken,
    ) -> Result<PublisherToken, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO publisher_tokens (uuid, name, hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&t.uuid, &t.name, &t.hash, &t.created_at],
            )
            .await
            .map_err(pg)?;
        Ok(PublisherToken {
            uuid: t.uuid,
            name: t.name,
            created_at: t.created_at,
            revoked_at: None,
        })
    }

    async fn list_publisher_tokens(&self) -> Result<Vec<PublisherToken>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {PUBLISHER_COLS} FROM publisher_tokens ORDER BY created_at, uuid"),
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(publisher_row).collect())
    }

    async fn revoke_publisher_token(
        &self,
        token: Uuid,
        at: i64,
    ) -> Result<PublisherToken, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!(
                    "UPDATE publisher_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE uuid = $1 \
                     RETURNING {PUBLISHER_COLS}"
                ),
                &[&token, &at],
            )
            .await
            .map_err(pg)?
            .map(|r| publisher_row(&r))
            .ok_or(StoreError::NotFound)
    }

    async fn publisher_token(&self, hash: Vec<u8>) -> Result<Option<PublisherToken>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {PUBLISHER_COLS} FROM publisher_tokens WHERE hash = $1"),
                &[&hash],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| publisher_row(&r)))
    }

    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now: i64,
        lease: Option<Lease>,
        wait: bool,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = batcher::Request {
            events,
            now,
            lease,
            reply,
        };
        if wait {
            self.appends
                .send(request)
                .await
                .map_err(|_| StoreError::Closed)?;
        } else {
            self.appends.try_send(request).map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                tokio::sync::mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn append_test_delivery(
        &self,
        webhook: Uuid,
        event: NewEvent,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let answer = delivery::append_test(&tx, webhook, &event, now, lease.as_ref()).await?;
        tx.commit().await.map_err(pg)?;
        Ok(answer)
    }

    async fn claim_due(
        &self,
        now: i64,
        lease: Lease,
        limit: u32,
        skip: Vec<Uuid>,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let client = self.client().await?;
        delivery::claim(&client, now, &lease, limit, &skip).await
    }

    async fn complete(&self, outcomes: Vec<Outcome>, now: i64) -> Result<Vec<i64>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let lost = delivery::complete(&tx, &outcomes, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(lost)
    }

    async fn release_deferred(&self, webhook: Uuid, now: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE deliveries SET next_attempt_at = $2, updated_at = $2 \
                 WHERE webhook_uuid = $1 AND status = 'pending' AND next_attempt_at > $2",
                &[&webhook, &now],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        webhook: Uuid,
        filter: DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        let client = self.client().await?;
        delivery::list(&client, webhook, &filter).await
    }

    async fn get_delivery(
        &self,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<DeliveryDetail, StoreError> {
        let client = self.client().await?;
        delivery::get(&client, webhook, delivery).await
    }

    async fn redeliver(
        &self,
        webhook: Uuid,
        delivery: Uuid,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<Option<Redelivery>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let answer = delivery::redeliver(&tx, webhook, delivery, now, lease.as_ref()).await?;
        tx.commit().await.map_err(pg)?;
        Ok(answer)
    }

    async fn recover(
        &self,
        webhook: Uuid,
        since: i64,
        until: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4, updated_at = $4 \
                 WHERE webhook_uuid = $1 AND status = 'failed' AND created_at >= $2 AND created_at < $3",
                &[&webhook, &since, &until, &now],
            )
            .await
            .map_err(pg)
    }

    async fn purge(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = delivery::purge(&tx, cutoff, limit).await?;
        tx.commit().await.map_err(pg)?;
        Ok(n)
    }

    async fn renew_leases(
        &self,
        owner: String,
        ids: Vec<i64>,
        until: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE deliveries SET lease_until = $2 \
                 WHERE id = ANY($3) AND lease_owner = $1 AND status = 'delivering'",
                &[&owner, &until, &ids],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn recover_leases(&self, now: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, lease_owner = NULL, \
                 lease_until = NULL, updated_at = $1 WHERE status = 'delivering'",
                &[&now],
            )
            .await
            .map_err(pg)
    }
}
