//! The PostgreSQL schema, as numbered migrations recorded in
//! `orghooks_migrations`, applied under an advisory lock so that nodes
//! starting together migrate once.

use tokio_postgres::Client;

use super::pg;
use crate::StoreError;

/// Any fixed number: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6f72_6768_6f6f_6b73;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE orgs (
    uuid        UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE accounts (
    uuid                UUID PRIMARY KEY,
    org_uuid            UUID NOT NULL REFERENCES orgs(uuid),
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('manager', 'member')),
    client_id           TEXT NOT NULL,
    client_secret_hash  BYTEA NOT NULL,
    disabled_at         BIGINT,
    created_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_client_id ON accounts(client_id);
CREATE INDEX accounts_org ON accounts(org_uuid);

CREATE TABLE tokens (
    hash          BYTEA PRIMARY KEY,
    account_uuid  UUID NOT NULL REFERENCES accounts(uuid),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX tokens_expiry ON tokens(expires_at);

CREATE TABLE webhooks (
    uuid                    UUID PRIMARY KEY,
    org_uuid                UUID NOT NULL REFERENCES orgs(uuid),
    url                     TEXT NOT NULL,
    url_password_sealed     TEXT,
    description             TEXT,
    is_active               BOOLEAN NOT NULL,
    event_names             TEXT NOT NULL,
    secret_sealed           TEXT,
    signature_scheme        TEXT NOT NULL,
    ordering                TEXT NOT NULL,
    max_in_flight           INTEGER NOT NULL,
    disabled_reason         TEXT,
    disabled_at             BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    deleted_at              BIGINT,
    previous_secret_sealed  TEXT,
    previous_secret_until   BIGINT
);
CREATE UNIQUE INDEX webhooks_org_url ON webhooks(org_uuid, url) WHERE deleted_at IS NULL;
CREATE INDEX webhooks_org ON webhooks(org_uuid) WHERE deleted_at IS NULL;

CREATE TABLE publisher_tokens (
    uuid        UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX publisher_tokens_hash ON publisher_tokens(hash);

CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    uuid            UUID NOT NULL,
    org_uuid        UUID NOT NULL,
    account_uuid    UUID NOT NULL,
    event_name      TEXT NOT NULL,
    book_uuid       TEXT,
    occurred_at     BIGINT NOT NULL,
    accepted_at     BIGINT NOT NULL,
    payload         TEXT NOT NULL,
    payload_hash    BYTEA NOT NULL,
    delivery_count  INTEGER NOT NULL,
    is_test         BOOLEAN NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX events_org_uuid ON events(org_uuid, uuid);
CREATE INDEX events_accepted ON events(accepted_at);

CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    uuid             UUID NOT NULL,
    event_id         BIGINT NOT NULL REFERENCES events(id),
    webhook_uuid     UUID NOT NULL,
    status           TEXT NOT NULL,
    is_test          BOOLEAN NOT NULL DEFAULT false,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    book_uuid        TEXT,
    book_seq         BIGINT
);
CREATE UNIQUE INDEX deliveries_uuid ON deliveries(uuid);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_log ON deliveries(webhook_uuid, id);
CREATE INDEX deliveries_event ON deliveries(event_id);
CREATE INDEX deliveries_book ON deliveries(webhook_uuid, book_uuid, book_seq) WHERE book_seq IS NOT NULL;

CREATE TABLE book_sequences (
    webhook_uuid  UUID NOT NULL,
    book_uuid     TEXT NOT NULL,
    last_seq      BIGINT NOT NULL,
    PRIMARY KEY (webhook_uuid, book_uuid)
);

CREATE TABLE attempts (
    id                BIGSERIAL PRIMARY KEY,
    uuid              UUID NOT NULL,
    delivery_id       BIGINT NOT NULL REFERENCES deliveries(id),
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    error             TEXT,
    request_headers   TEXT
);
CREATE INDEX attempts_delivery ON attempts(delivery_id);
"#,
    // A redelivery asked for while an attempt is in flight.
    r#"
ALTER TABLE deliveries ADD COLUMN redeliver BOOLEAN NOT NULL DEFAULT false;
"#,
    // A webhook that did not set max_in_flight follows the node's default
    // (no copy stored). Every webhook so far was stored with the default,
    // 16, copied in; those now follow the default.
    r#"
ALTER TABLE webhooks ALTER COLUMN max_in_flight DROP NOT NULL;
UPDATE webhooks SET max_in_flight = NULL WHERE max_in_flight = 16;
"#,
];

/// Brings the schema up to date; refuses a database newer than this binary.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS orghooks_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM orghooks_migrations",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    let version = version as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this orghooks ({}); upgrade orghooks",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO orghooks_migrations (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}
