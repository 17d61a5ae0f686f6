//! The PostgreSQL backend, for several nodes sharing one database. Each
//! call is one transaction on a pooled connection (concurrent appends are
//! merged into one, see [`batcher`]); rules that span rows
//! are made atomic with row locks (the org row for the webhook limit, the
//! book sequence row for per-book ordering) and claims use
//! `FOR UPDATE SKIP LOCKED`, so no delivery is leased to two nodes.
//! Durability: `synchronous_commit = on` is set on every connection.

mod append;
mod batcher;
mod log;
mod queue;
mod schema;
pub mod scratch;
mod wakeup;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{CLIENT_ID_RULE, ORG_RULE, WEBHOOK_URL_RULE};
use crate::model::*;
use crate::sql::{Cells, Sql, Value};
use crate::{Store, StoreError, Tenancy, Webhooks, tenancy, webhooks};

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
    /// Notified when another node announces due deliveries.
    due: Arc<tokio::sync::Notify>,
    _listening: Arc<wakeup::Listening>,
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
        let listen_config = config.clone();
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
        let due = Arc::new(tokio::sync::Notify::new());
        let listening = Arc::new(wakeup::start(listen_config, due.clone()));
        let store = Self {
            pool,
            appends,
            due,
            _listening: listening,
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The connection's prepared statement for `sql`, parsed by the server
/// once per connection: each later use is one round trip (bind and
/// execute) instead of two, and no parse.
pub(crate) async fn prepared(
    c: &impl GenericClient,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    c.prepare_cached(sql).await.map_err(pg)
}

/// Every row of a query whose best plan depends on how many rows the
/// queue holds now (claiming, settling, renewing leases): sent unprepared
/// with its parameters' types, so the server plans it for these values and
/// the table as it is, in the same single round trip. A prepared
/// statement's plan is made once, and may be the whole-table scan that a
/// nearly empty table deserved until the next `ANALYZE`.
pub(crate) async fn rows_planned_now<T>(
    c: &tokio_postgres::Client,
    sql: &Sql,
    params: &[(&(dyn ToSql + Sync), tokio_postgres::types::Type)],
    decode: impl Fn(&dyn Cells) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    c.query_typed(sql.pg(), params)
        .await
        .map_err(pg)?
        .iter()
        .map(|r| decode(r))
        .collect()
}

/// Runs a statement; answers how many rows it changed.
pub(crate) async fn exec(
    c: &impl GenericClient,
    sql: &Sql,
    params: Params<'_>,
) -> Result<u64, StoreError> {
    let statement = prepared(c, sql.pg()).await?;
    c.execute(&statement, params).await.map_err(pg)
}

/// Every row of a query, decoded.
pub(crate) async fn rows<T>(
    c: &impl GenericClient,
    sql: &Sql,
    params: Params<'_>,
    decode: impl Fn(&dyn Cells) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let statement = prepared(c, sql.pg()).await?;
    c.query(&statement, params)
        .await
        .map_err(pg)?
        .iter()
        .map(|r| decode(r))
        .collect()
}

/// The first row of a query, decoded, if there is one.
pub(crate) async fn row<T>(
    c: &impl GenericClient,
    sql: &Sql,
    params: Params<'_>,
    decode: impl Fn(&dyn Cells) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let statement = prepared(c, sql.pg()).await?;
    c.query_opt(&statement, params)
        .await
        .map_err(pg)?
        .as_ref()
        .map(|r| decode(r))
        .transpose()
}

/// Neutral values as this driver binds them.
fn refs(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
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
}

#[async_trait]
impl Tenancy for PgStore {
    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                tenancy::INSERT_ORG.pg(),
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
        rows(&client, &tenancy::LIST_ORGS, &[], tenancy::org).await
    }

    async fn create_account(&self, a: NewAccount) -> Result<Account, StoreError> {
        let client = self.client().await?;
        let exists = row(&client, &tenancy::ORG_EXISTS, &[&a.org_uuid], |r| r.flag(0)).await?;
        if exists != Some(true) {
            return Err(StoreError::NotFound);
        }
        client
            .execute(
                tenancy::INSERT_ACCOUNT.pg(),
                &[
                    &a.uuid,
                    &a.org_uuid,
                    &a.name,
                    &a.role.as_str(),
                    &a.client_id,
                    &a.client_secret_hash,
                    &a.created_at,
                ],
            )
            .await
            .map_err(unique_as(CLIENT_ID_RULE))?;
        Ok(tenancy::created_account(a))
    }

    async fn list_accounts(&self, org: Option<Uuid>) -> Result<Vec<Account>, StoreError> {
        let client = self.client().await?;
        rows(&client, &tenancy::LIST_ACCOUNTS, &[&org], tenancy::account).await
    }

    async fn set_account_disabled(
        &self,
        account: Uuid,
        at: Option<i64>,
    ) -> Result<Account, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::SET_ACCOUNT_DISABLED,
            &[&account, &at],
            tenancy::account,
        )
        .await?
        .ok_or(StoreError::NotFound)
    }

    async fn account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<AccountCredentials>, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::ACCOUNT_BY_CLIENT_ID,
            &[&client_id],
            tenancy::account_credentials,
        )
        .await
    }

    async fn delete_token(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(&client, &tenancy::DELETE_TOKEN, &[&hash]).await?;
        Ok(())
    }

    async fn insert_token(&self, t: NewToken) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(&client, &tenancy::PURGE_EXPIRED_TOKENS, &[&t.created_at]).await?;
        exec(
            &client,
            &tenancy::INSERT_TOKEN,
            &[&t.hash, &t.account_uuid, &t.created_at, &t.expires_at],
        )
        .await?;
        Ok(())
    }

    async fn token_grant(&self, token_hash: Vec<u8>) -> Result<Option<TokenGrant>, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::TOKEN_GRANT,
            &[&token_hash],
            tenancy::token_grant,
        )
        .await
    }

    async fn insert_portal_link(&self, l: NewPortalLink) -> Result<(), StoreError> {
        let client = self.client().await?;
        let exists = row(&client, &tenancy::ORG_EXISTS, &[&l.org_uuid], |r| r.flag(0)).await?;
        if exists != Some(true) {
            return Err(StoreError::NotFound);
        }
        exec(&client, &tenancy::PURGE_EXPIRED_PORTAL, &[&l.created_at]).await?;
        exec(
            &client,
            &tenancy::INSERT_PORTAL_LINK,
            &[
                &l.hash,
                &l.org_uuid,
                &l.read_only,
                &l.created_at,
                &l.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn open_portal_link(
        &self,
        link_hash: Vec<u8>,
        session_hash: Vec<u8>,
        now: i64,
    ) -> Result<Option<PortalSession>, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::OPEN_PORTAL_LINK,
            &[&link_hash, &session_hash, &now],
            tenancy::portal_session,
        )
        .await
    }

    async fn portal_session(&self, hash: Vec<u8>) -> Result<Option<PortalSession>, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::PORTAL_SESSION,
            &[&hash],
            tenancy::portal_session,
        )
        .await
    }

    async fn delete_portal_session(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(&client, &tenancy::DELETE_PORTAL_SESSION, &[&hash]).await?;
        Ok(())
    }

    async fn create_publisher_token(
        &self,
        t: NewPublisherToken,
    ) -> Result<PublisherToken, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::INSERT_PUBLISHER_TOKEN,
            &[&t.uuid, &t.name, &t.hash, &t.created_at],
            tenancy::publisher_token,
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))
    }

    async fn list_publisher_tokens(&self) -> Result<Vec<PublisherToken>, StoreError> {
        let client = self.client().await?;
        rows(
            &client,
            &tenancy::LIST_PUBLISHER_TOKENS,
            &[],
            tenancy::publisher_token,
        )
        .await
    }

    async fn revoke_publisher_token(
        &self,
        token: Uuid,
        at: i64,
    ) -> Result<PublisherToken, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::REVOKE_PUBLISHER_TOKEN,
            &[&token, &at],
            tenancy::publisher_token,
        )
        .await?
        .ok_or(StoreError::NotFound)
    }

    async fn publisher_token(&self, hash: Vec<u8>) -> Result<Option<PublisherToken>, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &tenancy::PUBLISHER_TOKEN_BY_HASH,
            &[&hash],
            tenancy::publisher_token,
        )
        .await
    }
}

/// A live webhook of an org, locked until the transaction ends.
static LOCK_LIVE: Sql = Sql::new(concat!(
    "SELECT ",
    webhooks::cols!(),
    " FROM webhooks WHERE uuid = $1 AND org_uuid = $2 AND deleted_at IS NULL FOR UPDATE"
));

#[async_trait]
impl Webhooks for PgStore {
    async fn insert_webhook(
        &self,
        w: NewWebhook,
        limit: WebhookLimit,
    ) -> Result<Webhook, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // The org's row lock serialises adds, so the limit holds.
        tx.execute(
            "SELECT 1 FROM orgs WHERE uuid = $1 FOR UPDATE",
            &[&w.org_uuid],
        )
        .await
        .map_err(pg)?;
        if limit.applies_to(&w) {
            let live = row(
                &tx,
                &webhooks::COUNT_LIVE,
                &[&w.org_uuid, &limit.account_level_counts],
                |r| r.int(0),
            )
            .await?;
            if live.unwrap_or(0) >= i64::from(limit.max_per_org) {
                return Err(StoreError::LimitReached);
            }
        }
        let inserted = tx
            .query_one(webhooks::INSERT.pg(), &refs(&webhooks::insert_values(&w)))
            .await
            .map_err(unique_as(WEBHOOK_URL_RULE))?;
        let webhook = webhooks::decode(&inserted)?;
        tx.commit().await.map_err(pg)?;
        Ok(webhook)
    }

    async fn account_webhook(&self, account: Uuid) -> Result<Option<Webhook>, StoreError> {
        let client = self.client().await?;
        row(&client, &webhooks::BY_OWNER, &[&account], webhooks::decode).await
    }

    async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError> {
        let client = self.client().await?;
        rows(&client, &webhooks::LIST, &[&org], webhooks::decode).await
    }

    async fn get_webhook(&self, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError> {
        let client = self.client().await?;
        row(
            &client,
            &webhooks::GET_LIVE,
            &[&webhook, &org],
            webhooks::decode,
        )
        .await?
        .ok_or(StoreError::NotFound)
    }

    async fn update_webhook(
        &self,
        org: Uuid,
        webhook: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let mut w = row(&tx, &LOCK_LIVE, &[&webhook, &org], webhooks::decode)
            .await?
            .ok_or(StoreError::NotFound)?;
        if let Some(active) = patch.is_active.filter(|a| *a != w.is_active) {
            exec(
                &tx,
                webhooks::hold_or_release(active),
                &[&webhook, &patch.updated_at],
            )
            .await?;
        }
        webhooks::apply(&mut w, patch);
        tx.execute(webhooks::UPDATE.pg(), &refs(&webhooks::update_values(&w)))
            .await
            .map_err(unique_as(WEBHOOK_URL_RULE))?;
        tx.commit().await.map_err(pg)?;
        Ok(w)
    }

    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if exec(&tx, &webhooks::DELETE, &[&webhook, &org, &now]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let cancelled = exec(&tx, &webhooks::CANCEL_OPEN, &[&webhook, &now]).await?;
        tx.commit().await.map_err(pg)?;
        Ok(cancelled)
    }

    async fn webhook_by_uuid(&self, webhook: Uuid) -> Result<Option<Webhook>, StoreError> {
        let client = self.client().await?;
        row(&client, &webhooks::BY_UUID, &[&webhook], webhooks::decode).await
    }

    async fn disable_webhook(
        &self,
        webhook: Uuid,
        reason: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let turned_off = exec(&tx, &webhooks::DISABLE, &[&webhook, &reason, &at]).await? > 0;
        if turned_off {
            exec(&tx, webhooks::hold_or_release(false), &[&webhook, &at]).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(turned_off)
    }
}
