//! The SQLite schema, as an ordered list of migrations tracked in `PRAGMA user_version`.
//!
//! Times are integer milliseconds since the epoch; ids are hyphenated UUIDv7 text, which sorts by
//! creation time, so keyset paging by id is paging by time.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    partners    TEXT NOT NULL,   -- JSON array
    scopes      TEXT NOT NULL,   -- JSON object resource -> access
    admin       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE subscriptions (
    id                         TEXT PRIMARY KEY,
    partner_id                 TEXT NOT NULL,
    client_id                  TEXT NOT NULL,
    event_types                TEXT NOT NULL,   -- JSON array
    event_version              TEXT NOT NULL,
    resource_name              TEXT NOT NULL,
    event_url                  TEXT NOT NULL,
    headers                    TEXT NOT NULL,   -- JSON object
    auth_sealed                TEXT,
    status                     TEXT NOT NULL,
    retry_policy               TEXT NOT NULL,   -- JSON
    signing_secret_sealed      TEXT NOT NULL,
    previous_secret_sealed     TEXT,
    previous_secret_expires_at INTEGER,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);
CREATE INDEX subscriptions_partner ON subscriptions (partner_id, id);

-- What fan-out looks up: the subscriptions of a partner naming an event type or topic.
CREATE TABLE subscription_event_types (
    partner_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    PRIMARY KEY (partner_id, event_type, subscription_id)
) WITHOUT ROWID;

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    origin          TEXT NOT NULL,
    dedup_key       TEXT,
    partner_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event_version   TEXT NOT NULL,
    topic           TEXT,
    public_event_id TEXT NOT NULL,
    occurred_at     INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    payload         TEXT NOT NULL
);
CREATE UNIQUE INDEX events_dedup ON events (origin, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX events_partner_received ON events (partner_id, received_at);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    partner_id       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,   -- in the current retry cycle
    next_attempt_at  INTEGER,
    first_attempt_at INTEGER,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    locked_until     INTEGER,
    lease_owner      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id);
CREATE INDEX deliveries_partner ON deliveries (partner_id, id);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    attempted_at     INTEGER NOT NULL,
    succeeded        INTEGER NOT NULL,
    status_code      INTEGER,
    latency_ms       INTEGER NOT NULL,
    error_class      TEXT,
    error_message    TEXT,
    response_excerpt TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempted_at);
CREATE INDEX attempts_subscription ON attempts (subscription_id, attempted_at);
"#,
    r#"
-- Received events keep their body byte for byte and their normalized form.
ALTER TABLE events ADD COLUMN normalized TEXT;
ALTER TABLE events ADD COLUMN raw_body BLOB;
ALTER TABLE events ADD COLUMN marketplace TEXT;
CREATE INDEX events_topic ON events (topic, id);
CREATE INDEX events_marketplace ON events (marketplace, id);

CREATE TABLE sources (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    name               TEXT NOT NULL,
    partners           TEXT NOT NULL,   -- JSON array
    secrets_sealed     TEXT NOT NULL,
    replay_window_secs INTEGER NOT NULL,
    options            TEXT NOT NULL,   -- JSON object
    client_id          TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE rejections (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL,
    partners    TEXT NOT NULL,   -- JSON array, for tenant filtering
    reason      TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    message     TEXT NOT NULL,
    remote_addr TEXT,
    body_sha256 TEXT NOT NULL,
    body_size   INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX rejections_received ON rejections (received_at);
CREATE INDEX rejections_source ON rejections (source_id, id);

-- The last status seen per resource, so a first sighting can be told from a change.
CREATE TABLE resource_registry (
    marketplace   TEXT NOT NULL,
    partner_id    TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    status        TEXT,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (marketplace, partner_id, resource_kind, resource_id)
) WITHOUT ROWID;
"#,
    r#"
-- Per-resource ordering: deliveries carry their event's resource.
ALTER TABLE subscriptions ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE events ADD COLUMN resource_key TEXT;
ALTER TABLE deliveries ADD COLUMN resource_key TEXT;
CREATE INDEX deliveries_resource ON deliveries (subscription_id, resource_key, id)
    WHERE status = 'pending';
"#,
    r#"
-- Pacing: caps and the token bucket live on the subscription, read and spent in the claim.
ALTER TABLE subscriptions ADD COLUMN max_in_flight INTEGER;
ALTER TABLE subscriptions ADD COLUMN rate_per_sec REAL;
ALTER TABLE subscriptions ADD COLUMN rate_burst REAL;
ALTER TABLE subscriptions ADD COLUMN rate_tokens REAL;
ALTER TABLE subscriptions ADD COLUMN rate_updated_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN paced_until BIGINT;
"#,
    r#"
-- Failure streaks: circuit breaking and auto-disable.
ALTER TABLE subscriptions ADD COLUMN disabled_reason TEXT;
ALTER TABLE subscriptions ADD COLUMN breaker_threshold INTEGER NOT NULL DEFAULT 5;
ALTER TABLE subscriptions ADD COLUMN breaker_probe_secs BIGINT NOT NULL DEFAULT 60;
ALTER TABLE subscriptions ADD COLUMN auto_disable_after_secs BIGINT NOT NULL DEFAULT 432000;
ALTER TABLE subscriptions ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN failing_since BIGINT;
ALTER TABLE subscriptions ADD COLUMN breaker_until BIGINT;
"#,
    r#"
-- The console: callback logs paged by time, failures by time, search by resource, duplicate
-- sightings per source, subscribers' outcomes, and the per-partner console switch.
DROP INDEX attempts_subscription;
ALTER TABLE events ADD COLUMN headers TEXT;
CREATE INDEX attempts_log ON attempts (subscription_id, attempted_at, id);
CREATE INDEX attempts_failed ON attempts (attempted_at, subscription_id, status_code, error_class)
    WHERE succeeded = 0;
-- A webhook's failed attempts, newest first, however rare failures are.
CREATE INDEX attempts_failed_log ON attempts (subscription_id, attempted_at, id) WHERE succeeded = 0;
CREATE INDEX events_resource ON events (resource_key, id) WHERE resource_key IS NOT NULL;
CREATE INDEX events_received ON events (received_at);
CREATE TABLE duplicates (
    origin      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX duplicates_origin ON duplicates (origin, received_at);
CREATE INDEX duplicates_received ON duplicates (received_at);
CREATE TABLE outcomes (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    message     TEXT,
    reported_at INTEGER NOT NULL
);
CREATE INDEX outcomes_event ON outcomes (event_id, id);
CREATE INDEX outcomes_reported ON outcomes (reported_at);
CREATE TABLE partner_settings (
    partner_id      TEXT PRIMARY KEY,
    console_enabled INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- What is known about each order, for seller performance notifications.
CREATE TABLE order_facts (
    partner_id       TEXT NOT NULL,
    marketplace      TEXT NOT NULL,
    po_number        TEXT NOT NULL,
    facts            TEXT NOT NULL,   -- JSON, switchyard_core::performance::OrderFacts
    last_activity_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, marketplace, po_number)
);
CREATE INDEX order_facts_activity ON order_facts (partner_id, last_activity_at);
"#,
    r#"
-- The body shape of a subscription's deliveries: walmart, sellercenter or normalized.
ALTER TABLE subscriptions ADD COLUMN envelope TEXT NOT NULL DEFAULT 'walmart';
"#,
];

/// Brings the database to the newest schema; each migration runs in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}
