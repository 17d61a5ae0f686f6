//! The embedded SQLite backend: one file in WAL mode, one writer thread with
//! group commit ([`writer`]), a few read-only connections ([`readers`]).
//!
//! Durability: `synchronous=FULL` by default, so an answered write survives
//! an OS crash; `NORMAL` is an operator's choice (the server warns).

mod delivery;
mod log;
mod readers;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orghooks_core::webhook::{Ordering, SignatureScheme};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::error::{CLIENT_ID_RULE, ORG_RULE, WEBHOOK_URL_RULE};
use crate::model::*;
use crate::{Store, StoreError};
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

pub(crate) fn uuid_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(idx)?;
    Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
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

const ACCOUNT_COLS: &str = "uuid, org_uuid, name, role, client_id, disabled_at, created_at";

fn account_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let role: String = row.get(3)?;
    Ok(Account {
        uuid: uuid_col(row, 0)?,
        org_uuid: uuid_col(row, 1)?,
        name: row.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        client_id: row.get(4)?,
        disabled_at: row.get(5)?,
        created_at: row.get(6)?,
    })
}

const WEBHOOK_COLS: &str = "uuid, org_uuid, url, url_password_sealed, description, is_active, \
     event_names, secret_sealed, signature_scheme, ordering, max_in_flight, disabled_reason, \
     disabled_at, created_at, updated_at, previous_secret_sealed, previous_secret_until";

fn webhook_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(6)?;
    let scheme: String = row.get(8)?;
    let ordering: String = row.get(9)?;
    Ok(Webhook {
        uuid: uuid_col(row, 0)?,
        org_uuid: uuid_col(row, 1)?,
        url: row.get(2)?,
        url_password_sealed: row.get(3)?,
        description: row.get(4)?,
        is_active: row.get(5)?,
        event_names: serde_json::from_str(&events).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
        })?,
        secret_sealed: row.get(7)?,
        signature_scheme: SignatureScheme::from_stored(&scheme),
        ordering: Ordering::from_stored(&ordering),
        max_in_flight: row.get(10)?,
        disabled_reason: row.get(11)?,
        disabled_at: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        previous_secret_sealed: row.get(15)?,
        previous_secret_until: row.get(16)?,
    })
}

fn json_list(names: &[String]) -> String {
    serde_json::to_string(names).expect("a list of strings serialises")
}

fn live_webhook(conn: &Connection, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLS} FROM webhooks WHERE uuid = ?1 AND org_uuid = ?2 AND deleted_at IS NULL"
    ))
    .and_then(|mut s| {
        s.query_row(params![webhook.to_string(), org.to_string()], webhook_row)
            .optional()
    })
    .map_err(backend)?
    .ok_or(StoreError::NotFound)
}

#[async_trait]
impl Store for SqliteStore {
    /// A real write through the writer: ready means able to commit (a
    /// full disk fails here once the WAL cannot grow).
    async fn ping(&self) -> Result<(), StoreError> {
        self.writer
            .submit(|conn| {
                conn.prepare_cached(
                    "INSERT INTO health (id, beats) VALUES (1, 1) \
                     ON CONFLICT (id) DO UPDATE SET beats = beats + 1",
                )
                .and_then(|mut s| s.execute([]))
                .map(|_| ())
                .map_err(backend)
            })
            .await
    }

    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError> {
        self.writer
            .submit(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO orgs (uuid, name, created_at) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| {
                    s.execute(params![org.uuid.to_string(), org.name, org.created_at])
                })
                .map_err(unique_as(ORG_RULE))?;
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
            .read(|conn| {
                let mut s = conn
                    .prepare_cached(
                        "SELECT uuid, name, created_at FROM orgs ORDER BY created_at, uuid",
                    )
                    .map_err(backend)?;
                let rows = s
                    .query_map([], |r| {
                        Ok(Org {
                            uuid: uuid_col(r, 0)?,
                            name: r.get(1)?,
                            created_at: r.get(2)?,
                        })
                    })
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)
            })
            .await
    }

    async fn create_account(&self, a: NewAccount) -> Result<Account, StoreError> {
        self.writer
            .submit(move |conn| {
                let org_exists: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM orgs WHERE uuid = ?1)")
                    .and_then(|mut s| s.query_row([a.org_uuid.to_string()], |r| r.get(0)))
                    .map_err(backend)?;
                if !org_exists {
                    return Err(StoreError::NotFound);
                }
                conn.prepare_cached(
                    "INSERT INTO accounts (uuid, org_uuid, name, role, client_id, client_secret_hash, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.uuid.to_string(),
                        a.org_uuid.to_string(),
                        a.name,
                        a.role.as_str(),
                        a.client_id,
                        a.client_secret_hash,
                        a.created_at
                    ])
                })
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
            })
            .await
    }

    async fn list_accounts(&self, org: Option<Uuid>) -> Result<Vec<Account>, StoreError> {
        self.readers
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached(&format!(
                        "SELECT {ACCOUNT_COLS} FROM accounts WHERE ?1 IS NULL OR org_uuid = ?1 \
                         ORDER BY created_at, uuid"
                    ))
                    .map_err(backend)?;
                let rows = s
                    .query_map([org.map(|o| o.to_string())], account_row)
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)
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
                conn.prepare_cached(&format!(
                    "UPDATE accounts SET disabled_at = ?2 WHERE uuid = ?1 RETURNING {ACCOUNT_COLS}"
                ))
                .and_then(|mut s| {
                    s.query_row(params![account.to_string(), disabled_at], account_row)
                        .optional()
                })
                .map_err(backend)?
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
                conn.prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLS}, client_secret_hash FROM accounts WHERE client_id = ?1"
                ))
                .and_then(|mut s| {
                    s.query_row([client_id], |r| {
                        Ok(AccountCredentials {
                            account: account_row(r)?,
                            client_secret_hash: r.get(7)?,
                        })
                    })
                    .optional()
                })
                .map_err(backend)
            })
            .await
    }

    async fn insert_token(&self, t: NewToken) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                // Expired tokens go as new ones come, a few at a time.
                conn.prepare_cached(
                    "DELETE FROM tokens WHERE hash IN \
                     (SELECT hash FROM tokens WHERE expires_at < ?1 LIMIT 16)",
                )
                .and_then(|mut s| s.execute([t.created_at]))
                .map_err(backend)?;
                conn.prepare_cached(
                    "INSERT INTO tokens (hash, account_uuid, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| {
                    s.execute(params![t.hash, t.account_uuid.to_string(), t.created_at, t.expires_at])
                })
                .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn token_grant(&self, token_hash: Vec<u8>) -> Result<Option<TokenGrant>, StoreError> {
        self.readers
            .lookup(move |conn| {
                conn.prepare_cached(
                    "SELECT a.uuid, a.org_uuid, a.name, a.role, a.client_id, a.disabled_at, a.created_at, \
                     t.expires_at FROM tokens t JOIN accounts a ON a.uuid = t.account_uuid \
                     WHERE t.hash = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([token_hash], |r| {
                        Ok(TokenGrant {
                            account: account_row(r)?,
                            expires_at: r.get(7)?,
                        })
                    })
                    .optional()
                })
                .map_err(backend)
            })
            .await
    }

    async fn insert_webhook(&self, w: NewWebhook, max_per_org: u32) -> Result<Webhook, StoreError> {
        self.writer
            .submit(move |conn| {
                let live: u32 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM webhooks WHERE org_uuid = ?1 AND deleted_at IS NULL",
                    )
                    .and_then(|mut s| s.query_row([w.org_uuid.to_string()], |r| r.get(0)))
                    .map_err(backend)?;
                if live >= max_per_org {
                    return Err(StoreError::LimitReached);
                }
                conn.prepare_cached(&format!(
                    "INSERT INTO webhooks (uuid, org_uuid, url, url_password_sealed, description, \
                     is_active, event_names, signature_scheme, ordering, max_in_flight, created_at, \
                     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) \
                     RETURNING {WEBHOOK_COLS}"
                ))
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            w.uuid.to_string(),
                            w.org_uuid.to_string(),
                            w.url,
                            w.url_password_sealed,
                            w.description,
                            w.is_active,
                            json_list(&w.event_names),
                            w.signature_scheme.as_str(),
                            w.ordering.as_str(),
                            w.max_in_flight,
                            w.created_at
                        ],
                        webhook_row,
                    )
                })
                .map_err(unique_as(WEBHOOK_URL_RULE))
            })
            .await
    }

    async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError> {
        self.readers
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached(&format!(
                        "SELECT {WEBHOOK_COLS} FROM webhooks WHERE org_uuid = ?1 AND deleted_at IS NULL \
                         ORDER BY created_at, uuid"
                    ))
                    .map_err(backend)?;
                let rows = s
                    .query_map([org.to_string()], webhook_row)
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)
            })
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
                if let Some(active) = patch.is_active.filter(|a| *a != w.is_active) {
                    delivery::hold_or_release(conn, &w.uuid.to_string(), active, patch.updated_at)?;
                }
                crate::patch::apply(&mut w, patch);
                conn.prepare_cached(
                    "UPDATE webhooks SET url = ?2, url_password_sealed = ?3, description = ?4, \
                     is_active = ?5, event_names = ?6, secret_sealed = ?7, signature_scheme = ?8, \
                     ordering = ?9, max_in_flight = ?10, disabled_reason = ?11, disabled_at = ?12, \
                     updated_at = ?13, previous_secret_sealed = ?14, previous_secret_until = ?15 \
                     WHERE uuid = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        w.uuid.to_string(),
                        w.url,
                        w.url_password_sealed,
                        w.description,
                        w.is_active,
                        json_list(&w.event_names),
                        w.secret_sealed,
                        w.signature_scheme.as_str(),
                        w.ordering.as_str(),
                        w.max_in_flight,
                        w.disabled_reason,
                        w.disabled_at,
                        w.updated_at,
                        w.previous_secret_sealed,
                        w.previous_secret_until
                    ])
                })
                .map_err(unique_as(WEBHOOK_URL_RULE))?;
                Ok(w)
            })
            .await
    }

    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE webhooks SET deleted_at = ?3, updated_at = ?3 \
                         WHERE uuid = ?1 AND org_uuid = ?2 AND deleted_at IS NULL",
                    )
                    .and_then(|mut s| s.execute(params![webhook.to_string(), org.to_string(), now]))
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                delivery::cancel_open(conn, &webhook.to_string(), now)
            })
            .await
    }

    async fn webhook_by_uuid(&self, webhook: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.readers
            .lookup(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE uuid = ?1 AND deleted_at IS NULL"
                ))
                .and_then(|mut s| s.query_row([webhook.to_string()], webhook_row).optional())
                .map_err(backend)
            })
            .await
    }

    async fn disable_webhook(
        &self,
        webhook: Uuid,
        reason: String,
        at: i64,
    ) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE webhooks SET is_active = 0, disabled_reason = ?2, disabled_at = ?3, \
                         updated_at = ?3 WHERE uuid = ?1 AND deleted_at IS NULL AND is_active = 1",
                    )
                    .and_then(|mut s| s.execute(params![webhook.to_string(), reason, at]))
                    .map_err(backend)?;
                if n > 0 {
                    delivery::hold_or_release(conn, &webhook.to_string(), false, at)?;
                }
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
                conn.prepare_cached(
                    "INSERT INTO publisher_tokens (uuid, name, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![t.uuid.to_string(), t.name, t.hash, t.created_at]))
                .map_err(backend)?;
                Ok(PublisherToken {
                    uuid: t.uuid,
                    name: t.name,
                    created_at: t.created_at,
                    revoked_at: None,
                })
            })
            .await
    }

    async fn list_publisher_tokens(&self) -> Result<Vec<PublisherToken>, StoreError> {
        self.readers
            .read(|conn| {
                let mut s = conn
                    .prepare_cached(&format!(
                        "SELECT {PUBLISHER_COLS} FROM publisher_tokens ORDER BY created_at, uuid"
                    ))
                    .map_err(backend)?;
                let rows = s.query_map([], publisher_row).map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)
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
                conn.prepare_cached(&format!(
                    "UPDATE publisher_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE uuid = ?1 \
                     RETURNING {PUBLISHER_COLS}"
                ))
                .and_then(|mut s| s.query_row(params![token.to_string(), at], publisher_row).optional())
                .map_err(backend)?
                .ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn publisher_token(&self, hash: Vec<u8>) -> Result<Option<PublisherToken>, StoreError> {
        self.readers
            .lookup(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {PUBLISHER_COLS} FROM publisher_tokens WHERE hash = ?1"
                ))
                .and_then(|mut s| s.query_row([hash], publisher_row).optional())
                .map_err(backend)
            })
            .await
    }

    async fn append_events(
        &self,
        events: Vec<NewEvent>,
        now: i64,
        lease: Option<Lease>,
        wait: bool,
    ) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
        let job = move |conn: &Connection| {
            events
                .iter()
                .map(|e| delivery::append_event(conn, e, now, lease.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        if wait {
            self.writer.submit_hot(job).await
        } else {
            self.writer.try_submit_hot(job).await
        }
    }

    async fn append_test_delivery(
        &self,
        webhook: Uuid,
        event: NewEvent,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<(Uuid, Option<DeliveryJob>), StoreError> {
        self.writer
            .submit(move |conn| delivery::append_test(conn, webhook, &event, now, lease.as_ref()))
            .await
    }

    async fn claim_due(
        &self,
        now: i64,
        lease: Lease,
        limit: u32,
        skip: Vec<Uuid>,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let skip = serde_json::to_string(&skip.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .expect("a list of strings serialises");
        self.writer
            .submit_hot(move |conn| delivery::claim(conn, now, &lease, limit, &skip))
            .await
    }

    async fn complete(&self, outcomes: Vec<Outcome>, now: i64) -> Result<Vec<i64>, StoreError> {
        self.writer
            .submit_hot(move |conn| delivery::complete(conn, &outcomes, now))
            .await
    }

    async fn release_deferred(&self, webhook: Uuid, now: i64) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| delivery::release_deferred(conn, &webhook.to_string(), now))
            .await
    }

    async fn list_deliveries(
        &self,
        webhook: Uuid,
        filter: DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        self.readers
            .read(move |conn| log::list(conn, webhook, &filter))
            .await
    }

    async fn get_delivery(
        &self,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<DeliveryDetail, StoreError> {
        self.readers
            .read(move |conn| log::get(conn, webhook, delivery))
            .await
    }

    async fn redeliver(
        &self,
        webhook: Uuid,
        delivery: Uuid,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<Option<Redelivery>, StoreError> {
        self.writer
            .submit(move |conn| log::redeliver(conn, webhook, delivery, now, lease.as_ref()))
            .await
    }

    async fn recover(
        &self,
        webhook: Uuid,
        since: i64,
        until: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| log::recover(conn, webhook, since, until, now))
            .await
    }

    async fn purge(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| log::purge(conn, cutoff, limit))
            .await
    }

    async fn recover_leases(&self, now: i64) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| delivery::recover_leases(conn, now))
            .await
    }

    async fn renew_leases(
        &self,
        owner: String,
        ids: Vec<i64>,
        until: i64,
    ) -> Result<(), StoreError> {
        let ids = serde_json::to_string(&ids).expect("a list of integers serialises");
        self.writer
            .submit(move |conn| {
                conn.prepare_cached(
                    "UPDATE deliveries SET lease_until = ?2 \
                     WHERE id IN (SELECT value FROM json_each(?3)) \
                     AND lease_owner = ?1 AND status = 'delivering'",
                )
                .and_then(|mut s| s.execute(rusqlite::params![owner, until, ids]))
                .map(|_| ())
                .map_err(backend)
            })
            .await
    }
}

const PUBLISHER_COLS: &str = "uuid, name, created_at, revoked_at";

fn publisher_row(row: &Row<'_>) -> rusqlite::Result<PublisherToken> {
    Ok(PublisherToken {
        uuid: uuid_col(row, 0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
        revoked_at: row.get(3)?,
    })
}
