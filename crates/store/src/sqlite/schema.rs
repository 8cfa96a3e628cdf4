//! The SQLite schema, as an ordered list of migrations tracked in `PRAGMA user_version`.
//!
//! Times are integer milliseconds since the epoch; ids are UUIDv7 as 16-byte blobs (big-endian,
//! so they sort by creation time and keyset paging by id is paging by time); client ids and the
//! origin of an event (a source id or `publish`) are text.

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
    MIGRATION_9,
    r#"
-- A subscription's pending deliveries, counted and dated by its health (the console's webhook
-- pages, `GET /v3/webhooks/{id}` health): without it each count walked every delivery the
-- subscription ever had.
CREATE INDEX deliveries_pending ON deliveries (subscription_id, created_at)
    WHERE status = 'pending';
"#,
    r#"
-- Traces, when they are kept: the span an event was stored in (its deliveries continue it),
-- and the trace an attempt is part of.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
ALTER TABLE attempts ADD COLUMN trace_id TEXT;
-- A subscription's content filter (JSON), when it has one.
ALTER TABLE subscriptions ADD COLUMN filter TEXT;
"#,
    r#"
-- A subscription's transformation (JavaScript), and whether it wants the latest state only;
-- a delivery a newer event of its resource may supersede (a state event, to such a
-- subscription) says so. The event log's `seq` is each envelope's resourceVersion.
ALTER TABLE subscriptions ADD COLUMN transform TEXT;
ALTER TABLE subscriptions ADD COLUMN coalesce_state INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN supersedable INTEGER;
"#,
    r#"
-- Reconciliation. A source's settings (JSON, credentials sealed), when it reconciles.
ALTER TABLE sources ADD COLUMN reconcile TEXT;
-- The order facts events claimed (webhooks of sources that reconcile, and reconciliations),
-- so that a webhook and a reconciliation stating one fact are one event.
CREATE TABLE order_claims (
    marketplace       TEXT NOT NULL,
    partner_id        TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    fact              TEXT NOT NULL,
    event_id          BLOB NOT NULL,
    by_reconciliation INTEGER NOT NULL,
    PRIMARY KEY (marketplace, partner_id, order_id, fact)
) WITHOUT ROWID;
-- Each reconciling source's cursor (where the next window starts), its next run and the
-- lease of the node running it.
CREATE TABLE reconcile_state (
    source_id    BLOB PRIMARY KEY,
    cursor_at    INTEGER,
    next_run_at  INTEGER NOT NULL,
    leased_by    TEXT,
    leased_until INTEGER
);
-- Runs, with their report (JSON).
CREATE TABLE reconcile_runs (
    id         BLOB PRIMARY KEY,
    source_id  BLOB NOT NULL,
    started_at INTEGER NOT NULL,
    run        TEXT NOT NULL
);
CREATE INDEX reconcile_runs_source ON reconcile_runs (source_id, started_at);
CREATE INDEX reconcile_runs_started ON reconcile_runs (started_at);
"#,
    r#"
-- The due index covers what a claim reads of each delivery it passes (its id and subscription),
-- so the leased ones among the earliest due, every attempt in flight, cost no row read each.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id, subscription_id)
    WHERE status = 'pending';
"#,
];

/// Each fact once, 16-byte ids, and only the indexes a query needs (ARCHITECTURE.md lists each
/// with its query). Events are an append-only log keyed by `seq`; a received event keeps its
/// body once (`payload` NULL when the body is the payload, the normalized form without its
/// `native` copy); deliveries are narrow rows without a partner (the event's) and without leases
/// (a serving process keeps them in memory, being alone on its file); the resource search and
/// order facts are derived after the ack (`derive_state` is the cursor over the log).
/// Rows written before keep their copies (`native_elided` 0) and read back the same.
const MIGRATION_9: &str = r#"
CREATE TABLE subscriptions_v9 (
    id                         BLOB PRIMARY KEY,
    partner_id                 TEXT NOT NULL,
    client_id                  TEXT NOT NULL,
    event_types                TEXT NOT NULL,
    event_version              TEXT NOT NULL,
    resource_name              TEXT NOT NULL,
    event_url                  TEXT NOT NULL,
    headers                    TEXT NOT NULL,
    auth_sealed                TEXT,
    status                     TEXT NOT NULL,
    retry_policy               TEXT NOT NULL,
    signing_secret_sealed      TEXT NOT NULL,
    previous_secret_sealed     TEXT,
    previous_secret_expires_at INTEGER,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    ordering                   TEXT NOT NULL,
    max_in_flight              INTEGER,
    rate_per_sec               REAL,
    rate_burst                 REAL,
    rate_tokens                REAL,
    rate_updated_at            INTEGER,
    paced_until                INTEGER,
    disabled_reason            TEXT,
    breaker_threshold          INTEGER NOT NULL,
    breaker_probe_secs         INTEGER NOT NULL,
    auto_disable_after_secs    INTEGER NOT NULL,
    consecutive_failures       INTEGER NOT NULL,
    failing_since              INTEGER,
    breaker_until              INTEGER,
    envelope                   TEXT NOT NULL
);
INSERT INTO subscriptions_v9 SELECT unhex(replace(id, '-', '')), partner_id, client_id,
    event_types, event_version, resource_name, event_url, headers, auth_sealed, status,
    retry_policy, signing_secret_sealed, previous_secret_sealed, previous_secret_expires_at,
    created_at, updated_at, ordering, max_in_flight, rate_per_sec, rate_burst, rate_tokens,
    rate_updated_at, paced_until, disabled_reason, breaker_threshold, breaker_probe_secs,
    auto_disable_after_secs, consecutive_failures, failing_since, breaker_until, envelope
FROM subscriptions;

CREATE TABLE subscription_event_types_v9 (
    partner_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    subscription_id BLOB NOT NULL,
    PRIMARY KEY (partner_id, event_type, subscription_id)
) WITHOUT ROWID;
INSERT INTO subscription_event_types_v9
    SELECT partner_id, event_type, unhex(replace(subscription_id, '-', ''))
    FROM subscription_event_types;

CREATE TABLE events_v9 (
    seq             INTEGER PRIMARY KEY,
    id              BLOB NOT NULL,
    origin          TEXT NOT NULL,
    dedup_key       TEXT,
    partner_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event_version   TEXT NOT NULL,
    topic           TEXT,
    public_event_id TEXT,
    occurred_at     INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    payload         TEXT,
    raw_body        BLOB,
    normalized      TEXT,
    native_elided   INTEGER NOT NULL,
    marketplace     TEXT,
    resource_key    TEXT,
    headers         TEXT
);
INSERT INTO events_v9 (id, origin, dedup_key, partner_id, event_type, event_version, topic,
        public_event_id, occurred_at, received_at, payload, raw_body, normalized, native_elided,
        marketplace, resource_key, headers)
    SELECT unhex(replace(id, '-', '')), origin, dedup_key, partner_id, event_type, event_version,
        topic, NULLIF(public_event_id, id), occurred_at, received_at, payload, raw_body,
        normalized, 0, marketplace, resource_key, headers
    FROM events ORDER BY id;

CREATE TABLE deliveries_v9 (
    id               BLOB PRIMARY KEY,
    event_id         BLOB NOT NULL,
    subscription_id  BLOB NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    first_attempt_at INTEGER,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    resource_key     TEXT
) WITHOUT ROWID;
INSERT INTO deliveries_v9 SELECT unhex(replace(d.id, '-', '')),
        unhex(replace(d.event_id, '-', '')), unhex(replace(d.subscription_id, '-', '')),
        d.status, d.attempts, d.next_attempt_at, d.first_attempt_at, d.last_attempt_at,
        d.last_status_code, d.last_error, d.created_at, d.updated_at,
        CASE WHEN s.ordering = 'resource' THEN d.resource_key END
    FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id;

CREATE TABLE attempts_v9 (
    id               BLOB PRIMARY KEY,
    delivery_id      BLOB NOT NULL,
    subscription_id  BLOB NOT NULL,
    attempted_at     INTEGER NOT NULL,
    succeeded        INTEGER NOT NULL,
    status_code      INTEGER,
    latency_ms       INTEGER NOT NULL,
    error_class      TEXT,
    error_message    TEXT,
    response_excerpt TEXT
);
INSERT INTO attempts_v9 SELECT unhex(replace(id, '-', '')), unhex(replace(delivery_id, '-', '')),
        unhex(replace(subscription_id, '-', '')), attempted_at, succeeded, status_code,
        latency_ms, error_class, error_message, response_excerpt
    FROM attempts ORDER BY id;

CREATE TABLE sources_v9 (
    id                 BLOB PRIMARY KEY,
    kind               TEXT NOT NULL,
    name               TEXT NOT NULL,
    partners           TEXT NOT NULL,
    secrets_sealed     TEXT NOT NULL,
    replay_window_secs INTEGER NOT NULL,
    options            TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
INSERT INTO sources_v9 SELECT unhex(replace(id, '-', '')), kind, name, partners, secrets_sealed,
        replay_window_secs, options, client_id, created_at, updated_at
    FROM sources;

CREATE TABLE rejections_v9 (
    id          BLOB PRIMARY KEY,
    source_id   TEXT NOT NULL,
    partners    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    message     TEXT NOT NULL,
    remote_addr TEXT,
    body_sha256 TEXT NOT NULL,
    body_size   INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
INSERT INTO rejections_v9 SELECT unhex(replace(id, '-', '')), source_id, partners, reason,
        status_code, message, remote_addr, body_sha256, body_size, received_at
    FROM rejections ORDER BY id;

CREATE TABLE duplicates_v9 (
    origin      TEXT NOT NULL,
    event_id    BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
INSERT INTO duplicates_v9 SELECT origin, unhex(replace(event_id, '-', '')), received_at
    FROM duplicates ORDER BY rowid;

CREATE TABLE outcomes_v9 (
    id          BLOB PRIMARY KEY,
    event_id    BLOB NOT NULL,
    partner_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    message     TEXT,
    reported_at INTEGER NOT NULL
);
INSERT INTO outcomes_v9 SELECT unhex(replace(id, '-', '')), unhex(replace(event_id, '-', '')),
        partner_id, client_id, status, reason, message, reported_at
    FROM outcomes ORDER BY id;

DROP TABLE subscriptions;
DROP TABLE subscription_event_types;
DROP TABLE events;
DROP TABLE deliveries;
DROP TABLE attempts;
DROP TABLE sources;
DROP TABLE rejections;
DROP TABLE duplicates;
DROP TABLE outcomes;
ALTER TABLE subscriptions_v9 RENAME TO subscriptions;
ALTER TABLE subscription_event_types_v9 RENAME TO subscription_event_types;
ALTER TABLE events_v9 RENAME TO events;
ALTER TABLE deliveries_v9 RENAME TO deliveries;
ALTER TABLE attempts_v9 RENAME TO attempts;
ALTER TABLE sources_v9 RENAME TO sources;
ALTER TABLE rejections_v9 RENAME TO rejections;
ALTER TABLE duplicates_v9 RENAME TO duplicates;
ALTER TABLE outcomes_v9 RENAME TO outcomes;

CREATE INDEX subscriptions_partner ON subscriptions (partner_id, id);
CREATE UNIQUE INDEX events_id ON events (id);
CREATE UNIQUE INDEX events_dedup ON events (origin, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX events_partner ON events (partner_id, seq);
CREATE INDEX events_topic ON events (topic, seq) WHERE topic IS NOT NULL;
CREATE INDEX events_received ON events (received_at);
CREATE UNIQUE INDEX deliveries_event ON deliveries (event_id, subscription_id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id);
CREATE INDEX deliveries_resource ON deliveries (subscription_id, resource_key, id)
    WHERE status = 'pending' AND resource_key IS NOT NULL;
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempted_at);
CREATE INDEX attempts_log ON attempts (subscription_id, attempted_at, id);
CREATE INDEX attempts_failed ON attempts (attempted_at, subscription_id, status_code, error_class)
    WHERE succeeded = 0;
CREATE INDEX attempts_failed_log ON attempts (subscription_id, attempted_at, id)
    WHERE succeeded = 0;
CREATE INDEX rejections_received ON rejections (received_at);
CREATE INDEX rejections_source ON rejections (source_id, id);
CREATE INDEX duplicates_origin ON duplicates (origin, received_at);
CREATE INDEX duplicates_received ON duplicates (received_at);
CREATE INDEX outcomes_event ON outcomes (event_id, id);
CREATE INDEX outcomes_reported ON outcomes (reported_at);

-- Derived after the ack: which events are about a resource (the console's search), and how
-- far the event log has been derived. Events already stored had their facts applied when they
-- were acknowledged, so the cursor starts after them.
CREATE TABLE event_resources (
    resource_key TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (resource_key, seq)
) WITHOUT ROWID;
INSERT INTO event_resources SELECT resource_key, seq FROM events WHERE resource_key IS NOT NULL;
CREATE TABLE derive_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT INTO derive_state VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM events));
"#;

/// Brings the database to the newest schema; each migration runs in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        crate::migrating(index + 1, MIGRATIONS.len());
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}
