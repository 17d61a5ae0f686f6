//! The schema of both backends, as numbered migrations side by side: a
//! change to the data (a new webhook setting, an event column) is written
//! here once per dialect. Each list is applied in order and never edited
//! once released; SQLite records its place in `PRAGMA user_version`,
//! PostgreSQL in `orghooks_migrations`. The two lists are numbered apart
//! (SQLite has a readiness table PostgreSQL does not need).

/// SQLite, in order.
pub(crate) const SQLITE: &[&str] = &[
    r#"
CREATE TABLE orgs (
    uuid        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE accounts (
    uuid                TEXT PRIMARY KEY,
    org_uuid            TEXT NOT NULL REFERENCES orgs(uuid),
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('manager', 'member')),
    client_id           TEXT NOT NULL,
    client_secret_hash  BLOB NOT NULL,
    disabled_at         INTEGER,
    created_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_client_id ON accounts(client_id);
CREATE INDEX accounts_org ON accounts(org_uuid);

CREATE TABLE tokens (
    hash          BLOB PRIMARY KEY,
    account_uuid  TEXT NOT NULL REFERENCES accounts(uuid),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_expiry ON tokens(expires_at);

CREATE TABLE webhooks (
    uuid                 TEXT PRIMARY KEY,
    org_uuid             TEXT NOT NULL REFERENCES orgs(uuid),
    url                  TEXT NOT NULL,
    url_password_sealed  TEXT,
    description          TEXT,
    is_active            INTEGER NOT NULL,
    event_names          TEXT NOT NULL,
    secret_sealed        TEXT,
    signature_scheme     TEXT NOT NULL,
    ordering             TEXT NOT NULL,
    max_in_flight        INTEGER NOT NULL,
    disabled_reason      TEXT,
    disabled_at          INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER
);
CREATE UNIQUE INDEX webhooks_org_url ON webhooks(org_uuid, url) WHERE deleted_at IS NULL;
CREATE INDEX webhooks_org ON webhooks(org_uuid) WHERE deleted_at IS NULL;
"#,
    r#"
ALTER TABLE webhooks ADD COLUMN previous_secret_sealed TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_until INTEGER;

CREATE TABLE publisher_tokens (
    uuid        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE UNIQUE INDEX publisher_tokens_hash ON publisher_tokens(hash);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT NOT NULL,
    org_uuid        TEXT NOT NULL,
    account_uuid    TEXT NOT NULL,
    event_name      TEXT NOT NULL,
    book_uuid       TEXT,
    occurred_at     INTEGER NOT NULL,
    accepted_at     INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    payload_hash    BLOB NOT NULL,
    delivery_count  INTEGER NOT NULL,
    is_test         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX events_org_uuid ON events(org_uuid, uuid);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    uuid             TEXT NOT NULL,
    event_id         INTEGER NOT NULL REFERENCES events(id),
    webhook_uuid     TEXT NOT NULL,
    status           TEXT NOT NULL,
    is_test          INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- Per-book ordering: the delivery's place in its (webhook, book) sequence.
    book_uuid        TEXT,
    book_seq         INTEGER
);
CREATE UNIQUE INDEX deliveries_uuid ON deliveries(uuid);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_log ON deliveries(webhook_uuid, id);
CREATE INDEX deliveries_event ON deliveries(event_id);
CREATE INDEX deliveries_book ON deliveries(webhook_uuid, book_uuid, book_seq) WHERE book_seq IS NOT NULL;
CREATE INDEX events_accepted ON events(accepted_at);

CREATE TABLE book_sequences (
    webhook_uuid  TEXT NOT NULL,
    book_uuid     TEXT NOT NULL,
    last_seq      INTEGER NOT NULL,
    PRIMARY KEY (webhook_uuid, book_uuid)
) WITHOUT ROWID;

CREATE TABLE attempts (
    id                INTEGER PRIMARY KEY,
    uuid              TEXT NOT NULL,
    delivery_id       INTEGER NOT NULL REFERENCES deliveries(id),
    started_at        INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    error             TEXT,
    request_headers   TEXT
);
CREATE INDEX attempts_delivery ON attempts(delivery_id);
"#,
    // Readiness writes here: a store that cannot commit is not ready.
    r#"
CREATE TABLE health (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    beats  INTEGER NOT NULL
);
"#,
    // A redelivery asked for while an attempt is in flight.
    r#"
ALTER TABLE deliveries ADD COLUMN redeliver INTEGER NOT NULL DEFAULT 0;
"#,
    // A webhook that did not set max_in_flight follows the node's default
    // (no copy stored). Every webhook so far was stored with the default,
    // 16, copied in; those now follow the default. SQLite cannot drop a
    // NOT NULL, so the table is rebuilt (nothing references it).
    r#"
CREATE TABLE webhooks_next (
    uuid                    TEXT PRIMARY KEY,
    org_uuid                TEXT NOT NULL REFERENCES orgs(uuid),
    url                     TEXT NOT NULL,
    url_password_sealed     TEXT,
    description             TEXT,
    is_active               INTEGER NOT NULL,
    event_names             TEXT NOT NULL,
    secret_sealed           TEXT,
    signature_scheme        TEXT NOT NULL,
    ordering                TEXT NOT NULL,
    max_in_flight           INTEGER,
    disabled_reason         TEXT,
    disabled_at             INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    deleted_at              INTEGER,
    previous_secret_sealed  TEXT,
    previous_secret_until   INTEGER
);
INSERT INTO webhooks_next (uuid, org_uuid, url, url_password_sealed, description, is_active,
    event_names, secret_sealed, signature_scheme, ordering, max_in_flight, disabled_reason,
    disabled_at, created_at, updated_at, deleted_at, previous_secret_sealed, previous_secret_until)
SELECT uuid, org_uuid, url, url_password_sealed, description, is_active, event_names,
    secret_sealed, signature_scheme, ordering, nullif(max_in_flight, 16), disabled_reason,
    disabled_at, created_at, updated_at, deleted_at, previous_secret_sealed, previous_secret_until
FROM webhooks;
DROP TABLE webhooks;
ALTER TABLE webhooks_next RENAME TO webhooks;
CREATE UNIQUE INDEX webhooks_org_url ON webhooks(org_uuid, url) WHERE deleted_at IS NULL;
CREATE INDEX webhooks_org ON webhooks(org_uuid) WHERE deleted_at IS NULL;
"#,
    // Webhooks scoped to some accounts (a JSON list; NULL: every account).
    r#"
ALTER TABLE webhooks ADD COLUMN account_uuids TEXT;
"#,
    // Ocrolus's account-level webhooks: one per account (its owner), outside
    // the org's URL rule (several accounts may point at one receiver).
    r#"
ALTER TABLE webhooks ADD COLUMN owner_account_uuid TEXT;
DROP INDEX webhooks_org_url;
CREATE UNIQUE INDEX webhooks_org_url ON webhooks(org_uuid, url)
    WHERE deleted_at IS NULL AND owner_account_uuid IS NULL;
CREATE UNIQUE INDEX webhooks_owner ON webhooks(owner_account_uuid)
    WHERE deleted_at IS NULL AND owner_account_uuid IS NOT NULL;
"#,
    // Portal links and the dashboard sessions they become.
    r#"
CREATE TABLE portal_sessions (
    hash        BLOB PRIMARY KEY,
    org_uuid    TEXT NOT NULL REFERENCES orgs(uuid),
    read_only   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    opened_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);
"#,
    // A webhook's own headers (sealed), retry gaps and timeout, as JSON.
    r#"
ALTER TABLE webhooks ADD COLUMN options TEXT;
"#,
];

/// PostgreSQL, in order.
pub(crate) const POSTGRES: &[&str] = &[
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
    // Webhooks scoped to some accounts (a JSON list; NULL: every account).
    r#"
ALTER TABLE webhooks ADD COLUMN account_uuids TEXT;
"#,
    // Ocrolus's account-level webhooks: one per account (its owner), outside
    // the org's URL rule (several accounts may point at one receiver).
    r#"
ALTER TABLE webhooks ADD COLUMN owner_account_uuid UUID;
DROP INDEX webhooks_org_url;
CREATE UNIQUE INDEX webhooks_org_url ON webhooks(org_uuid, url)
    WHERE deleted_at IS NULL AND owner_account_uuid IS NULL;
CREATE UNIQUE INDEX webhooks_owner ON webhooks(owner_account_uuid)
    WHERE deleted_at IS NULL AND owner_account_uuid IS NOT NULL;
"#,
    // Portal links and the dashboard sessions they become.
    r#"
CREATE TABLE portal_sessions (
    hash        BYTEA PRIMARY KEY,
    org_uuid    UUID NOT NULL REFERENCES orgs(uuid),
    read_only   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    opened_at   BIGINT
);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);
"#,
    // A webhook's own headers (sealed), retry gaps and timeout, as JSON.
    r#"
ALTER TABLE webhooks ADD COLUMN options TEXT;
"#,
    // Leases by expiry, for claiming lapsed ones. Partial on the lease, not
    // on `status = 'delivering'`: settling and renewing (which say
    // `status = 'delivering'`) then go by id, never through this index,
    // whose entries of settled rows linger until vacuum (a bitmap scan
    // walked thousands of them per settle).
    r#"
DROP INDEX deliveries_leased;
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE lease_until IS NOT NULL;
"#,
    // A number every change of accounts or webhooks moves on, in the
    // change's own commit: a node may keep where events go in memory and
    // check in each publish statement that it is still right.
    r#"
CREATE TABLE routing_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    v   BIGINT NOT NULL
);
INSERT INTO routing_version VALUES (1, 0);
CREATE FUNCTION orghooks_routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE routing_version SET v = v + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER webhooks_routing AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION orghooks_routing_changed();
CREATE TRIGGER accounts_routing AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION orghooks_routing_changed();
"#,
];
