//! The PostgreSQL schema, as ordered migrations tracked in `switchyard_migrations`. It mirrors the
//! SQLite schema: times are BIGINT milliseconds, ids UUIDv7 (`uuid`), JSON documents text.

use tokio_postgres::Client;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    partners    TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    admin       BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    id                         TEXT PRIMARY KEY,
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
    previous_secret_expires_at BIGINT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);
CREATE INDEX subscriptions_partner ON subscriptions (partner_id, id);

CREATE TABLE subscription_event_types (
    partner_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    PRIMARY KEY (partner_id, event_type, subscription_id)
);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    origin          TEXT NOT NULL,
    dedup_key       TEXT,
    partner_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event_version   TEXT NOT NULL,
    topic           TEXT,
    public_event_id TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    payload         TEXT NOT NULL,
    normalized      TEXT,
    raw_body        BYTEA,
    marketplace     TEXT
);
CREATE UNIQUE INDEX events_dedup ON events (origin, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX events_partner_received ON events (partner_id, received_at);
CREATE INDEX events_topic ON events (topic, id);
CREATE INDEX events_marketplace ON events (marketplace, id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    partner_id       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    first_attempt_at BIGINT,
    last_attempt_at  BIGINT,
    last_status_code INTEGER,
    last_error       TEXT,
    locked_until     BIGINT,
    lease_owner      TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id);
CREATE INDEX deliveries_partner ON deliveries (partner_id, id);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    attempted_at     BIGINT NOT NULL,
    succeeded        BOOLEAN NOT NULL,
    status_code      INTEGER,
    latency_ms       BIGINT NOT NULL,
    error_class      TEXT,
    error_message    TEXT,
    response_excerpt TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempted_at);
CREATE INDEX attempts_subscription ON attempts (subscription_id, attempted_at);

CREATE TABLE sources (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    name               TEXT NOT NULL,
    partners           TEXT NOT NULL,
    secrets_sealed     TEXT NOT NULL,
    replay_window_secs BIGINT NOT NULL,
    options            TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE rejections (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL,
    partners    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    message     TEXT NOT NULL,
    remote_addr TEXT,
    body_sha256 TEXT NOT NULL,
    body_size   BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX rejections_received ON rejections (received_at);
CREATE INDEX rejections_source ON rejections (source_id, id);

CREATE TABLE resource_registry (
    marketplace   TEXT NOT NULL,
    partner_id    TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    status        TEXT,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (marketplace, partner_id, resource_kind, resource_id)
);
"#,
    r#"
ALTER TABLE subscriptions ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE events ADD COLUMN resource_key TEXT;
ALTER TABLE deliveries ADD COLUMN resource_key TEXT;
CREATE INDEX deliveries_resource ON deliveries (subscription_id, resource_key, id)
    WHERE status = 'pending';
"#,
    r#"
-- Pacing: caps and the token bucket live on the subscription, read and spent in the claim.
ALTER TABLE subscriptions ADD COLUMN max_in_flight INTEGER;
ALTER TABLE subscriptions ADD COLUMN rate_per_sec DOUBLE PRECISION;
ALTER TABLE subscriptions ADD COLUMN rate_burst DOUBLE PRECISION;
ALTER TABLE subscriptions ADD COLUMN rate_tokens DOUBLE PRECISION;
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
    WHERE NOT succeeded;
-- A webhook's failed attempts, newest first, however rare failures are.
CREATE INDEX attempts_failed_log ON attempts (subscription_id, attempted_at, id) WHERE NOT succeeded;
CREATE INDEX events_resource ON events (resource_key, id) WHERE resource_key IS NOT NULL;
CREATE INDEX events_received ON events (received_at);
CREATE TABLE duplicates (
    id          BIGSERIAL PRIMARY KEY,
    origin      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at BIGINT NOT NULL
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
    reported_at BIGINT NOT NULL
);
CREATE INDEX outcomes_event ON outcomes (event_id, id);
CREATE INDEX outcomes_reported ON outcomes (reported_at);
CREATE TABLE partner_settings (
    partner_id      TEXT PRIMARY KEY,
    console_enabled BOOLEAN NOT NULL
);
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
-- subscription) says so. Events gain their position in the log, each envelope's
-- resourceVersion: taken from a sequence as each row is inserted (rows already stored are
-- numbered in the order the table holds them).
ALTER TABLE subscriptions ADD COLUMN transform TEXT;
ALTER TABLE subscriptions ADD COLUMN coalesce_state BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE deliveries ADD COLUMN supersedable BOOLEAN;
CREATE SEQUENCE events_seq;
ALTER TABLE events ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('events_seq');
ALTER SEQUENCE events_seq OWNED BY events.seq;
-- Polling subscriptions (`poll:`): their deliveries wait as `polling`, read in the order of the
-- transaction that stored them (`xact`), only once no earlier transaction can still commit.
ALTER TABLE deliveries ADD COLUMN xact BIGINT;
CREATE INDEX deliveries_polling ON deliveries (subscription_id, xact, id)
    WHERE status = 'polling';
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
    event_id          uuid NOT NULL,
    by_reconciliation BOOLEAN NOT NULL,
    PRIMARY KEY (marketplace, partner_id, order_id, fact)
);
-- Each reconciling source's cursor (where the next window starts), its next run and the
-- lease of the node running it.
CREATE TABLE reconcile_state (
    source_id    uuid PRIMARY KEY,
    cursor_at    BIGINT,
    next_run_at  BIGINT NOT NULL,
    leased_by    TEXT,
    leased_until BIGINT
);
-- Runs, with their report (JSON).
CREATE TABLE reconcile_runs (
    id         uuid PRIMARY KEY,
    source_id  uuid NOT NULL,
    started_at BIGINT NOT NULL,
    run        TEXT NOT NULL
);
CREATE INDEX reconcile_runs_source ON reconcile_runs (source_id, started_at);
CREATE INDEX reconcile_runs_started ON reconcile_runs (started_at);
"#,
    r#"
-- More room in each page for a claim's lease update to stay on it (a HOT update, which writes
-- no index entry). A delivery is updated twice, its lease and then its outcome; at a fill
-- factor of 85 most lease updates found no room and wrote an entry in each of four indexes
-- (22% of all updates HOT); at 50 nearly all of them do (46%: the outcome's update changes
-- indexed columns and cannot be). Pages written before keep their fill until rewritten.
ALTER TABLE deliveries SET (fillfactor = 50);
"#,
];

/// Each fact once, 16-byte ids, only the indexes a query needs (ARCHITECTURE.md lists each with
/// its query): the same layout as SQLite's schema 9, in PostgreSQL's types. A received event
/// keeps its body once (`payload` NULL when the body is the payload, the normalized form
/// without its `native` copy when `native_elided`); deliveries lose their partner (the event's)
/// and keep leases, which several nodes share; the resource search and order facts are derived
/// after the ack from `derive_queue`, written in each event's own transaction. Rows written
/// before keep their copies and read back the same.
const MIGRATION_9: &str = r#"
ALTER TABLE subscriptions ALTER COLUMN id TYPE uuid USING id::uuid;
ALTER TABLE subscription_event_types
    ALTER COLUMN subscription_id TYPE uuid USING subscription_id::uuid;

ALTER TABLE events
    ALTER COLUMN id TYPE uuid USING id::uuid,
    ALTER COLUMN payload DROP NOT NULL,
    ALTER COLUMN public_event_id DROP NOT NULL,
    ADD COLUMN native_elided BOOLEAN NOT NULL DEFAULT false;
UPDATE events SET public_event_id = NULL WHERE public_event_id = id::text;
DROP INDEX events_partner_received;
DROP INDEX events_marketplace;
DROP INDEX events_resource;
DROP INDEX events_topic;
CREATE INDEX events_partner ON events (partner_id, id);
CREATE INDEX events_topic ON events (topic, id) WHERE topic IS NOT NULL;

ALTER TABLE deliveries
    ALTER COLUMN id TYPE uuid USING id::uuid,
    ALTER COLUMN event_id TYPE uuid USING event_id::uuid,
    ALTER COLUMN subscription_id TYPE uuid USING subscription_id::uuid,
    DROP COLUMN partner_id;
UPDATE deliveries d SET resource_key = NULL FROM subscriptions s
    WHERE s.id = d.subscription_id AND s.ordering <> 'resource' AND d.resource_key IS NOT NULL;
DROP INDEX deliveries_resource;
CREATE INDEX deliveries_resource ON deliveries (subscription_id, resource_key, id)
    WHERE status = 'pending' AND resource_key IS NOT NULL;
-- Room in each page for a lease's update to stay on it (no index changes: a HOT update), and
-- a queue's churn vacuumed and analyzed often (PostgreSQL's defaults wait for 20% of the table).
ALTER TABLE deliveries SET (fillfactor = 85, autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02);

ALTER TABLE attempts
    ALTER COLUMN id TYPE uuid USING id::uuid,
    ALTER COLUMN delivery_id TYPE uuid USING delivery_id::uuid,
    ALTER COLUMN subscription_id TYPE uuid USING subscription_id::uuid;
ALTER TABLE sources ALTER COLUMN id TYPE uuid USING id::uuid;
ALTER TABLE rejections ALTER COLUMN id TYPE uuid USING id::uuid;
ALTER TABLE duplicates ALTER COLUMN event_id TYPE uuid USING event_id::uuid;
ALTER TABLE outcomes
    ALTER COLUMN id TYPE uuid USING id::uuid,
    ALTER COLUMN event_id TYPE uuid USING event_id::uuid;

-- Derived after the ack: which events are about a resource (the console's search), and the
-- events not derived yet. Events already stored had their facts applied when acknowledged.
CREATE TABLE event_resources (
    resource_key TEXT NOT NULL,
    event_id     uuid NOT NULL,
    PRIMARY KEY (resource_key, event_id)
);
INSERT INTO event_resources SELECT resource_key, id FROM events WHERE resource_key IS NOT NULL;
CREATE TABLE derive_queue (event_id uuid PRIMARY KEY);
"#;

/// Brings the schema up to date. Nodes starting together take an advisory lock, so one migrates
/// and the others wait for it.
pub async fn migrate(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "SELECT pg_advisory_lock(7226817);
             CREATE TABLE IF NOT EXISTS switchyard_migrations (version INTEGER PRIMARY KEY);",
        )
        .await?;
    let result = async {
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM switchyard_migrations",
                &[],
            )
            .await?;
        let current: i32 = row.get(0);
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            let version = (index + 1) as i32;
            crate::migrating(index + 1, MIGRATIONS.len());
            client.batch_execute("BEGIN").await?;
            let applied = async {
                client.batch_execute(sql).await?;
                client
                    .execute(
                        "INSERT INTO switchyard_migrations (version) VALUES ($1)",
                        &[&version],
                    )
                    .await?;
                client.batch_execute("COMMIT").await
            }
            .await;
            if applied.is_err() {
                let _ = client.batch_execute("ROLLBACK").await;
                return applied;
            }
        }
        Ok(())
    }
    .await;
    let _ = client
        .batch_execute("SELECT pg_advisory_unlock(7226817)")
        .await;
    result
}
