//! The embedded SQLite backend: one file in WAL mode, one writer thread with
//! group commit ([`writer`]), a few read-only connections ([`readers`]).
//!
//! Durability: `synchronous=FULL` by default, so an answered write survives
//! an OS crash; `NORMAL` is an operator's choice (the server warns).

mod log;
mod queue;
mod readers;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, Params, params};
use uuid::Uuid;

use crate::error::{CLIENT_ID_RULE, ORG_RULE, WEBHOOK_URL_RULE};
use crate::model::*;
use crate::sql::{Cells, Sql};
use crate::{Store, StoreError, Tenancy, Webhooks, tenancy, webhooks};
use readers::Readers;
use writer::Writer;

/// How the SQLite backend is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (durable across OS crashes) when true, else `NORMAL`.
    pub synchronous_full: bool,
    /// Read-only connections; reads beyond this many wait their turn.
    pub readers: usize,
    /// Writes queued for the writer before callers wait (or are told Busy).
    pub write_queue: usize,
    /// How long a write waits for another process (the CLI) to release the
    /// database lock before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            readers: 4,
            write_queue: 8192,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
}

/// Maps a SQLite error: the disk or file failing (full, read-only, I/O
/// error, locked past the busy timeout) is `Unavailable`, the rest a bug.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DiskFull
            | C::SystemIoFailure
            | C::ReadOnly
            | C::CannotOpen
            | C::DatabaseBusy
            | C::DatabaseLocked,
        ) => StoreError::Unavailable(Arc::new(e)),
        _ => StoreError::Backend(Arc::new(e)),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(options.busy_timeout).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        let sync = if options.synchronous_full {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        // Bound the WAL after a burst (PERFORMANCE.md §3).
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(backend)?;
        schema::migrate(&mut conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut reader_conns = Vec::with_capacity(options.readers.max(1));
        for _ in 0..options.readers.max(1) {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(backend)?;
            r.busy_timeout(options.busy_timeout).map_err(backend)?;
            reader_conns.push(r);
        }
        let writer = Writer::start(conn, options.write_queue.max(1))
            .map_err(|e| StoreError::Backend(Arc::new(e)))?;
        Ok(Self {
            writer,
            readers: Readers::new(reader_conns),
        })
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Maps a unique violation to the domain rule it enforces.
fn unique_as(rule: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(rule)
        } else {
            backend(e)
        }
    }
}

/// Runs a statement; answers how many rows it changed.
pub(crate) fn exec(conn: &Connection, sql: &Sql, params: impl Params) -> Result<u64, StoreError> {
    exec_or(conn, sql, params, backend)
}

fn exec_or(
    conn: &Connection,
    sql: &Sql,
    params: impl Params,
    on_error: impl Fn(rusqlite::Error) -> StoreError,
) -> Result<u64, StoreError> {
    conn.prepare_cached(sql.sqlite())
        .and_then(|mut s| s.execute(params))
        .map(|n| n as u64)
        .map_err(on_error)
}

/// Every row of a query, decoded.
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &Sql,
    params: impl Params,
    decode: impl Fn(&dyn Cells) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut s = conn.prepare_cached(sql.sqlite()).map_err(backend)?;
    let mut rows = s.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(decode(r)?);
    }
    Ok(out)
}

/// The first row of a query, decoded, if there is one.
pub(crate) fn row<T>(
    conn: &Connection,
    sql: &Sql,
    params: impl Params,
    decode: impl Fn(&dyn Cells) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    row_or(conn, sql, params, decode, backend)
}

fn row_or<T>(
    conn: &Connection,
    sql: &Sql,
    params: impl Params,
    decode: impl Fn(&dyn Cells) -> Result<T, StoreError>,
    on_error: impl Fn(rusqlite::Error) -> StoreError,
) -> Result<Option<T>, StoreError> {
    let mut s = conn.prepare_cached(sql.sqlite()).map_err(backend)?;
    let mut rows = s.query(params).map_err(&on_error)?;
    match rows.next().map_err(on_error)? {
        Some(r) => decode(r).map(Some),
        None => Ok(None),
    }
}

#[async_trait]
impl Store for SqliteStore {
    /// A real write through the writer: ready means able to commit (a
    /// full disk fails here once the WAL cannot grow).
    async fn ping(&self) -> Result<(), StoreError> {
        static BEAT: Sql = Sql::new(
            "INSERT INTO health (id, beats) VALUES (1, 1) \
             ON CONFLICT (id) DO UPDATE SET beats = health.beats + 1",
        );
        self.writer
            .submit(|conn| exec(conn, &BEAT, []).map(|_| ()))
            .await
    }
}

#[async_trait]
impl Tenancy for SqliteStore {
    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError> {
        self.writer
            .submit(move |conn| {
                exec_or(
                    conn,
                    &tenancy::INSERT_ORG,
                    params![org.uuid.to_string(), org.name, org.created_at],
                    unique_as(ORG_RULE),
                )?;
                Ok(Org {
                    uuid: org.uuid,
                    name: org.name,
                    created_at: org.created_at,
                })
            })
            .await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.readers
            .read(|conn| rows(conn, &tenancy::LIST_ORGS, [], tenancy::org))
            .await
    }

    async fn create_account(&self, a: NewAccount) -> Result<Account, StoreError> {
        self.writer
            .submit(move |conn| {
                let org = a.org_uuid.to_string();
                let exists = row(conn, &tenancy::ORG_EXISTS, [&org], |r| r.flag(0))?;
                if exists != Some(true) {
                    return Err(StoreError::NotFound);
                }
                exec_or(
                    conn,
                    &tenancy::INSERT_ACCOUNT,
                    params![
                        a.uuid.to_string(),
                        org,
                        a.name,
                        a.role.as_str(),
                        a.client_id,
                        a.client_secret_hash,
                        a.created_at
                    ],
                    unique_as(CLIENT_ID_RULE),
                )?;
                Ok(tenancy::created_account(a))
            })
            .await
    }

    async fn list_accounts(&self, org: Option<Uuid>) -> Result<Vec<Account>, StoreError> {
        self.readers
            .read(move |conn| {
                let org = org.map(|o| o.to_string());
                rows(conn, &tenancy::LIST_ACCOUNTS, [org], tenancy::account)
            })
            .await
    }

    async fn set_account_disabled(
        &self,
        account: Uuid,
        disabled_at: Option<i64>,
    ) -> Result<Account, StoreError> {
        self.writer
            .submit(move |conn| {
                row(
                    conn,
                    &tenancy::SET_ACCOUNT_DISABLED,
                    params![account.to_string(), disabled_at],
                    tenancy::account,
                )?
                .ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<AccountCredentials>, StoreError> {
        let client_id = client_id.to_owned();
        self.readers
            .lookup(move |conn| {
                row(
                    conn,
                    &tenancy::ACCOUNT_BY_CLIENT_ID,
                    [client_id],
                    tenancy::account_credentials,
                )
            })
            .await
    }

    async fn delete_token(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                exec(conn, &tenancy::DELETE_TOKEN, [hash])?;
                Ok(())
            })
            .await
    }

    async fn insert_token(&self, t: NewToken) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                exec(conn, &tenancy::PURGE_EXPIRED_TOKENS, [t.created_at])?;
                exec(
                    conn,
                    &tenancy::INSERT_TOKEN,
                    params![
                        t.hash,
                        t.account_uuid.to_string(),
                        t.created_at,
                        t.expires_at
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn token_grant(&self, token_hash: Vec<u8>) -> Result<Option<TokenGrant>, StoreError> {
        self.readers
            .lookup(move |conn| {
                row(
                    conn,
                    &tenancy::TOKEN_GRANT,
                    [token_hash],
                    tenancy::token_grant,
                )
            })
            .await
    }

    async fn insert_portal_link(&self, l: NewPortalLink) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                let org = l.org_uuid.to_string();
                let exists = row(conn, &tenancy::ORG_EXISTS, [&org], |r| r.flag(0))?;
                if exists != Some(true) {
                    return Err(StoreError::NotFound);
                }
                exec(conn, &tenancy::PURGE_EXPIRED_PORTAL, [l.created_at])?;
                exec(
                    conn,
                    &tenancy::INSERT_PORTAL_LINK,
                    params![l.hash, org, l.read_only, l.created_at, l.expires_at],
                )?;
                Ok(())
            })
            .await
    }

    async fn open_portal_link(
        &self,
        link_hash: Vec<u8>,
        session_hash: Vec<u8>,
        now: i64,
    ) -> Result<Option<PortalSession>, StoreError> {
        self.writer
            .submit(move |conn| {
                row(
                    conn,
                    &tenancy::OPEN_PORTAL_LINK,
                    params![link_hash, session_hash, now],
                    tenancy::portal_session,
                )
            })
            .await
    }

    async fn portal_session(&self, hash: Vec<u8>) -> Result<Option<PortalSession>, StoreError> {
        self.readers
            .lookup(move |conn| {
                row(
                    conn,
                    &tenancy::PORTAL_SESSION,
                    [hash],
                    tenancy::portal_session,
                )
            })
            .await
    }

    async fn delete_portal_session(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                exec(conn, &tenancy::DELETE_PORTAL_SESSION, [hash])?;
                Ok(())
            })
            .await
    }

    async fn create_publisher_token(
        &self,
        t: NewPublisherToken,
    ) -> Result<PublisherToken, StoreError> {
        self.writer
            .submit(move |conn| {
                row(
                    conn,
                    &tenancy::INSERT_PUBLISHER_TOKEN,
                    params![t.uuid.to_string(), t.name, t.hash, t.created_at],
                    tenancy::publisher_token,
                )?
                .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))
            })
            .await
    }

    async fn list_publisher_tokens(&self) -> Result<Vec<PublisherToken>, StoreError> {
        self.readers
            .read(|conn| {
                rows(
                    conn,
                    &tenancy::LIST_PUBLISHER_TOKENS,
                    [],
                    tenancy::publisher_token,
                )
            })
            .await
    }

    async fn revoke_publisher_token(
        &self,
        token: Uuid,
        at: i64,
    ) -> Result<PublisherToken, StoreError> {
        self.writer
            .submit(move |conn| {
                row(
                    conn,
                    &tenancy::REVOKE_PUBLISHER_TOKEN,
                    params![token.to_string(), at],
                    tenancy::publisher_token,
                )?
                .ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn publisher_token(&self, hash: Vec<u8>) -> Result<Option<PublisherToken>, StoreError> {
        self.readers
            .lookup(move |conn| {
                row(
                    conn,
                    &tenancy::PUBLISHER_TOKEN_BY_HASH,
                    [hash],
                    tenancy::publisher_token,
                )
            })
            .await
    }
}

fn live_webhook(conn: &Connection, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError> {
    row(
        conn,
        &webhooks::GET_LIVE,
        [webhook.to_string(), org.to_string()],
        webhooks::decode,
    )?
    .ok_or(StoreError::NotFound)
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn insert_webhook(
        &self,
        w: NewWebhook,
        limit: WebhookLimit,
    ) -> Result<Webhook, StoreError> {
        self.writer
            .submit(move |conn| {
                if limit.applies_to(&w) {
                    let live = row(
                        conn,
                        &webhooks::COUNT_LIVE,
                        rusqlite::params![w.org_uuid.to_string(), limit.account_level_counts],
                        |r| r.count(0),
                    )?;
                    if live.unwrap_or(0) >= limit.max_per_org {
                        return Err(StoreError::LimitReached);
                    }
                }
                row_or(
                    conn,
                    &webhooks::INSERT,
                    rusqlite::params_from_iter(webhooks::insert_values(&w)),
                    webhooks::decode,
                    unique_as(WEBHOOK_URL_RULE),
                )?
                .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))
            })
            .await
    }

    async fn account_webhook(&self, account: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.readers
            .read(move |conn| {
                row(
                    conn,
                    &webhooks::BY_OWNER,
                    [account.to_string()],
                    webhooks::decode,
                )
            })
            .await
    }

    async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError> {
        self.readers
            .read(move |conn| rows(conn, &webhooks::LIST, [org.to_string()], webhooks::decode))
            .await
    }

    async fn get_webhook(&self, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError> {
        self.readers
            .lookup(move |conn| live_webhook(conn, org, webhook))
            .await
    }

    async fn update_webhook(
        &self,
        org: Uuid,
        webhook: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError> {
        self.writer
            .submit(move |conn| {
                let mut w = live_webhook(conn, org, webhook)?;
                let id = w.uuid.to_string();
                if let Some(active) = patch.is_active.filter(|a| *a != w.is_active) {
                    exec(
                        conn,
                        webhooks::hold_or_release(active),
                        params![id, patch.updated_at],
                    )?;
                }
                webhooks::apply(&mut w, patch);
                exec_or(
                    conn,
                    &webhooks::UPDATE,
                    rusqlite::params_from_iter(webhooks::update_values(&w)),
                    unique_as(WEBHOOK_URL_RULE),
                )?;
                Ok(w)
            })
            .await
    }

    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| {
                let id = webhook.to_string();
                if exec(conn, &webhooks::DELETE, params![id, org.to_string(), now])? == 0 {
                    return Err(StoreError::NotFound);
                }
                exec(conn, &webhooks::CANCEL_OPEN, params![id, now])
            })
            .await
    }

    async fn webhook_by_uuid(&self, webhook: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.readers
            .lookup(move |conn| {
                row(
                    conn,
                    &webhooks::BY_UUID,
                    [webhook.to_string()],
                    webhooks::decode,
                )
            })
            .await
    }

    async fn disable_webhook(
        &self,
        webhook: Uuid,
        reason: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.writer
            .submit(move |conn| {
                let id = webhook.to_string();
                let turned_off = exec(conn, &webhooks::DISABLE, params![id, reason, at])? > 0;
                if turned_off {
                    exec(conn, webhooks::hold_or_release(false), params![id, at])?;
                }
                Ok(turned_off)
            })
            .await
    }
}
