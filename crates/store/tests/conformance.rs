//! The conformance suite of the `Store` trait: every implementation must pass it. Each behaviour
//! is an `async fn` taking a fresh store, run by `on_both_stores!` as `sqlite::NAME` on a new
//! SQLite file and as `postgres::NAME` in a PostgreSQL schema of its own (dropped afterwards).
//! The PostgreSQL ones are `#[ignore]`d, so `cargo test` lists them as ignored without a server;
//! `bash .ci/run` runs them with `--include-ignored`.

use std::collections::BTreeMap;
use std::sync::Arc;
use switchyard_core::model::PartnerId;

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use switchyard_core::model::{
    Access, AttemptFilter, AttemptRecord, Client, DeliveryFilter, DeliveryId, DeliveryStatus,
    Envelope, EventFilter, EventId, EventRecord, OutcomeFilter, OutcomeRecord, SourceId,
    SubscriptionFilter, SubscriptionId, SubscriptionRecord, SubscriptionStatus,
};
use switchyard_core::retry::RetryPolicy;
use switchyard_store::{
    DeliveryNext, FailurePolicy, InsertOutcome, QueueDepth, Scope, SourceStats, SqliteStore, Store,
    StoreError, TenantStore,
};

/// A store a test runs on, with what must live as long as it: the SQLite file's directory, or
/// the PostgreSQL schema (dropped when the test ends).
struct Fresh {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<PgSchema>,
}

/// Drops a test's PostgreSQL schema when the test ends.
struct PgSchema {
    url: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
            Ok::<(), std::io::Error>(())
        })
        .join();
    }
}

/// A new SQLite file.
async fn sqlite_store() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("switchyard.db")).expect("open sqlite");
    Fresh {
        store: Arc::new(store),
        _dir: Some(dir),
        _schema: None,
    }
}

/// A PostgreSQL store in a schema of its own; fails the test without a server to use.
async fn postgres_store() -> Fresh {
    let url = match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "this test needs PostgreSQL: set SWITCHYARD_TEST_POSTGRES_URL \
             (for example postgres://postgres@127.0.0.1:5432/test)"
        ),
    };
    let name = format!("sy_test_{}", Uuid::now_v7().simple());
    let store = switchyard_store::PostgresStore::connect_in_schema(&url, &name, true)
        .await
        .expect("PostgreSQL store (is the server up?)");
    Fresh {
        store: Arc::new(store),
        _dir: None,
        _schema: Some(PgSchema { url, name }),
    }
}

/// Runs each behaviour below on both stores: `sqlite::NAME` always, `postgres::NAME` marked
/// ignored (it needs a server), which `bash .ci/run` includes.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fresh = super::sqlite_store().await;
                    super::$name(fresh.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
                async fn $name() {
                    let fresh = super::postgres_store().await;
                    super::$name(fresh.store.clone()).await;
                }
            )*
        }
    };
}

on_both_stores!(
    clients_are_created_once_and_read_back,
    subscriptions_round_trip_filter_update_and_delete,
    an_event_fans_out_to_matching_active_subscriptions_in_the_same_write,
    due_deliveries_are_leased_once_and_move_on_after_each_attempt,
    a_claim_carries_the_body_each_subscription_is_sent,
    inactive_subscriptions_hold_their_deliveries_until_resumed,
    released_leases_are_claimable_at_once,
    retry_and_replay_make_deliveries_pending_again_under_the_same_id,
    deliveries_page_by_key_newest_first,
    sources_round_trip_and_are_listed_only_to_who_manages_all_their_partners,
    rejections_are_listed_filtered_and_counted,
    received_events_keep_raw_body_and_normalized_form_and_the_first_sighting_sets_the_topic,
    ordered_subscriptions_get_one_delivery_at_a_time_per_resource,
    claims_respect_max_in_flight_rate_limits_and_holds,
    failure_streaks_open_the_breaker_probe_one_at_a_time_and_disable,
    attempts_recorded_together_each_count_in_the_streak,
    retention_removes_only_what_is_old_and_done_while_writes_go_on,
    console_views_page_logs_count_failures_outcomes_and_duplicates,
    queue_depth_splits_pending_deliveries_by_state_and_ages_only_active_ones,
    order_facts_apply_all_or_nothing_and_are_read_back_per_partner,
    order_facts_and_the_resource_search_are_derived_after_the_ack_once,
    a_subscriptions_envelope_round_trips,
    a_scoped_store_reaches_only_its_partners_objects,
    a_content_filter_keeps_the_events_it_rejects_from_fanning_out,
    coalescing_supersedes_older_state_and_a_cancel_ends_a_leased_delivery,
    a_polling_subscriptions_deliveries_wait_to_be_read_in_order,
    an_order_fact_is_one_event_whether_a_webhook_or_a_reconciliation_states_it_first,
    a_sources_reconciliation_is_leased_once_and_a_failed_run_keeps_the_cursor,
    reconcile_settings_round_trip_with_the_source,
);

/// Whether leases run out by themselves: they do where several nodes share the database (a
/// node that died holds its deliveries until then); a SQLite file serves one process, whose
/// attempts in progress keep their leases until recorded (or released at shutdown).
fn leases_run_out(store: &Arc<dyn Store>) -> bool {
    store.kind() == "postgres"
}

fn t0() -> Timestamp {
    "2026-11-01T12:00:00Z".parse().unwrap()
}

fn subscription(partner: &str, types: &[&str]) -> SubscriptionRecord {
    SubscriptionRecord {
        id: SubscriptionId::new(),
        partner_id: partner.into(),
        client_id: "client-a".into(),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        event_version: "V1".into(),
        resource_name: "ORDER".into(),
        event_url: "https://example.com/hook".into(),
        headers: BTreeMap::from([("x-team".into(), "orders".into())]),
        auth_sealed: Some("sy1:sealed".into()),
        status: SubscriptionStatus::Active,
        retry_policy: RetryPolicy::Walmart,
        signing_secret_sealed: "sy1:secret".into(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        created_at: t0(),
        updated_at: t0(),
        ordering: switchyard_core::model::Ordering::None,
        max_in_flight: None,
        rate_limit: None,
        disabled_reason: None,
        breaker: Default::default(),
        auto_disable_after_secs: switchyard_core::model::DEFAULT_AUTO_DISABLE_AFTER_SECS,
        envelope: Default::default(),
        filter: None,
        transform: None,
        coalesce: false,
    }
}

fn event(partner: &str, event_type: &str, topic: Option<&str>, key: Option<&str>) -> EventRecord {
    EventRecord {
        id: EventId::new(),
        origin: "publish".into(),
        dedup_key: key.map(str::to_string),
        partner_id: partner.into(),
        event_type: event_type.into(),
        event_version: "V1".into(),
        topic: topic.map(str::to_string),
        public_event_id: key.unwrap_or("generated").into(),
        occurred_at: t0(),
        received_at: t0(),
        payload: serde_json::json!({"partnerId": partner, "n": 1}),
        normalized: None,
        raw_body: None,
        resource_key: None,
        headers: Default::default(),
        trace_parent: None,
        resource_version: None,
        native_elided: false,
    }
}

/// An event read back, without the place in the log the store gave it (which the record
/// written did not have).
fn unversioned(mut e: EventRecord) -> EventRecord {
    e.resource_version = None;
    e
}

fn attempt(delivery_id: DeliveryId, at: Timestamp, ok: bool) -> AttemptRecord {
    AttemptRecord {
        id: Uuid::now_v7(),
        delivery_id,
        attempted_at: at,
        succeeded: ok,
        status_code: Some(if ok { 200 } else { 500 }),
        latency_ms: 12,
        error_class: (!ok).then(|| "http_status".to_string()),
        error_message: None,
        response_excerpt: Some("body".into()),
        // Kept as given (and absent when traces are not kept).
        trace_id: ok.then(|| "4bf92f3577b34da6a3ce929d0e0e4736".into()),
    }
}

fn created(outcome: InsertOutcome) -> (EventId, u32) {
    match outcome {
        InsertOutcome::Created {
            event_id,
            deliveries,
        } => (event_id, deliveries),
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn clients_are_created_once_and_read_back(store: Arc<dyn Store>) {
    let client = Client {
        id: "c1".into(),
        name: "Acme".into(),
        secret_hash: "ab".repeat(32),
        partners: vec!["p1".into(), "p2".into()],
        scopes: BTreeMap::from([("ITEM".into(), Access::FullAccess)]),
        admin: false,
        created_at: t0(),
    };
    store.create_client(client.clone()).await.unwrap();
    assert_eq!(store.get_client("c1").await.unwrap(), Some(client.clone()));
    assert!(matches!(
        store.create_client(client).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_client("nobody").await.unwrap(), None);
}

async fn subscriptions_round_trip_filter_update_and_delete(store: Arc<dyn Store>) {
    let a = subscription("p1", &["PO_CREATED"]);
    let mut b = subscription("p2", &["order.created", "order.updated"]);
    b.status = SubscriptionStatus::Inactive;
    store
        .create_subscriptions(vec![a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(store.get_subscription(a.id).await.unwrap(), Some(a.clone()));

    let only_p2 = SubscriptionFilter {
        partners: Some(vec!["p2".into()]),
        ..Default::default()
    };
    assert_eq!(
        store.list_subscriptions(&only_p2).await.unwrap(),
        vec![b.clone()]
    );
    let by_type = SubscriptionFilter {
        event_type: Some("order.updated".into()),
        ..Default::default()
    };
    assert_eq!(
        store.list_subscriptions(&by_type).await.unwrap(),
        vec![b.clone()]
    );
    let active = SubscriptionFilter {
        status: Some(SubscriptionStatus::Active),
        ..Default::default()
    };
    assert_eq!(
        store.list_subscriptions(&active).await.unwrap(),
        vec![a.clone()]
    );

    // All or nothing: a batch holding an existing id creates none of its subscriptions.
    let c = subscription("p1", &["PO_CREATED"]);
    assert!(
        store
            .create_subscriptions(vec![c.clone(), a.clone()])
            .await
            .is_err()
    );
    assert_eq!(store.get_subscription(c.id).await.unwrap(), None);

    let mut changed = a.clone();
    changed.event_url = "https://example.com/moved".into();
    changed.event_types = vec!["ORDER_UPDATES".into()];
    assert!(store.update_subscription(changed.clone()).await.unwrap());
    assert_eq!(store.get_subscription(a.id).await.unwrap(), Some(changed));
    let by_old_type = SubscriptionFilter {
        event_type: Some("PO_CREATED".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_subscriptions(&by_old_type)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.delete_subscription(a.id, t0()).await.unwrap());
    assert!(!store.delete_subscription(a.id, t0()).await.unwrap());
    assert_eq!(store.get_subscription(a.id).await.unwrap(), None);
    assert!(!store.update_subscription(a).await.unwrap());
}

async fn an_event_fans_out_to_matching_active_subscriptions_in_the_same_write(
    store: Arc<dyn Store>,
) {
    let by_type = subscription("p1", &["PO_CREATED"]);
    let by_topic = subscription("p1", &["order.created"]);
    let both = subscription("p1", &["PO_CREATED", "order.created"]);
    let other_partner = subscription("p2", &["PO_CREATED"]);
    let mut inactive = subscription("p1", &["PO_CREATED"]);
    inactive.status = SubscriptionStatus::Inactive;
    let mut other_version = subscription("p1", &["PO_CREATED"]);
    other_version.event_version = "V2".into();
    store
        .create_subscriptions(vec![
            by_type.clone(),
            by_topic.clone(),
            both.clone(),
            other_partner,
            inactive,
            other_version,
        ])
        .await
        .unwrap();

    let e = event("p1", "PO_CREATED", Some("order.created"), Some("evt-1"));
    let (event_id, fanned) = created(store.insert_event(e.clone(), None).await.unwrap());
    assert_eq!(event_id, e.id);
    assert_eq!(fanned, 3, "type, topic and both; once each");
    let back = store.get_event(e.id).await.unwrap().expect("stored");
    assert!(
        back.resource_version.is_some(),
        "a stored event has its place"
    );
    assert_eq!(unversioned(back), e);

    let deliveries = store
        .list_deliveries(&DeliveryFilter {
            event_id: Some(e.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut subs: Vec<SubscriptionId> = deliveries.iter().map(|d| d.subscription_id).collect();
    subs.sort();
    let mut expected = vec![by_type.id, by_topic.id, both.id];
    expected.sort();
    assert_eq!(subs, expected);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending
                && d.next_attempt_at == Some(t0())
                && d.attempts == 0)
    );

    // The same dedup key again: the original comes back and nothing is written.
    let again = event("p1", "PO_CREATED", Some("order.created"), Some("evt-1"));
    assert_eq!(
        store.insert_event(again.clone(), None).await.unwrap(),
        InsertOutcome::Duplicate { event_id: e.id }
    );
    assert_eq!(store.get_event(again.id).await.unwrap(), None);
    // Another origin may use the same key.
    let mut elsewhere = event("p1", "PO_CREATED", None, Some("evt-1"));
    elsewhere.origin = "source-x".into();
    created(store.insert_event(elsewhere, None).await.unwrap());
}

fn json_of(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("a JSON body")
}

/// Each envelope, the payload as received (spliced in with its own spacing and key order) or
/// the normalized form, for a subscriber of the native type and of the topic.
async fn a_claim_carries_the_body_each_subscription_is_sent(store: Arc<dyn Store>) {
    let mut subs = Vec::new();
    for (types, envelope) in [
        (&["PO_CREATED"][..], Envelope::Walmart),
        (&["order.created"][..], Envelope::Walmart),
        (&["PO_CREATED"][..], Envelope::Normalized),
        (&["PO_CREATED"][..], Envelope::Sellercenter),
        (&["order.created"][..], Envelope::Sellercenter),
    ] {
        let mut s = subscription("p1", types);
        s.envelope = envelope;
        subs.push(s);
    }
    store.create_subscriptions(subs.clone()).await.unwrap();
    let raw = r#"{ "z": 1,  "a": {"partnerId": "p1"} }"#;
    let mut e = event("p1", "PO_CREATED", Some("order.created"), None);
    e.raw_body = Some(raw.as_bytes().to_vec());
    e.payload = serde_json::from_str(raw).unwrap();
    e.normalized = Some(
        serde_json::json!({"marketplace": "walmart", "native": e.payload,
        "resource": {"type": "order", "id": "PO-1"}}),
    );
    created(store.insert_event(e.clone(), None).await.unwrap());
    let lease = t0() + SignedDuration::from_secs(60);
    let claimed = store.claim_due(t0(), 10, lease, "n1").await.unwrap();
    assert_eq!(claimed.len(), subs.len());
    for c in &claimed {
        let by_topic = c.subscription.event_types == ["order.created"];
        let whole = EventRecord {
            resource_version: c.event.resource_version,
            ..e.clone()
        };
        let expected = switchyard_core::envelope::body(&whole, c.subscription.envelope, by_topic);
        assert_eq!(json_of(&c.body), json_of(&expected), "{:?}", c.subscription);
        let uses_payload = !by_topic && c.subscription.envelope != Envelope::Normalized;
        assert_eq!(
            String::from_utf8_lossy(&c.body).contains(raw),
            uses_payload,
            "the received bytes, spliced in, exactly when the payload is sent: {}",
            String::from_utf8_lossy(&c.body)
        );
        assert_eq!(c.event.id, e.id);
        assert_eq!(c.event.event_type, e.event_type);
    }
}

async fn due_deliveries_are_leased_once_and_move_on_after_each_attempt(store: Arc<dyn Store>) {
    let sub = subscription("p1", &["PO_CREATED"]);
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    let e = event("p1", "PO_CREATED", None, None);
    created(store.insert_event(e.clone(), None).await.unwrap());
    assert_eq!(store.next_due_at().await.unwrap(), Some(t0()));

    let lease = t0() + SignedDuration::from_secs(60);
    assert!(
        store
            .claim_due(t0() - SignedDuration::from_secs(1), 10, lease, "n1")
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let claimed = store.claim_due(t0(), 10, lease, "n1").await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    // The body carries the payload, so the claimed event leaves it to the body.
    let whole = EventRecord {
        payload: e.payload.clone(),
        ..c.event.clone()
    };
    assert_eq!(unversioned(whole.clone()), e);
    assert_eq!(c.event.payload, serde_json::Value::Null);
    assert_eq!(
        json_of(&c.body),
        json_of(&switchyard_core::envelope::body(
            &whole,
            sub.envelope,
            false
        ))
    );
    assert_eq!(c.subscription, sub);
    assert!(
        store
            .claim_due(t0(), 10, lease, "n2")
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    // The attempt fails: pending again, due at the retry time, attempt logged.
    let retry_at = t0() + SignedDuration::from_mins(5);
    store
        .complete_attempt(
            attempt(c.delivery.id, t0(), false),
            DeliveryNext::RetryAt(retry_at),
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    let (d, attempts) = store.get_delivery(c.delivery.id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.next_attempt_at, Some(retry_at));
    assert_eq!(d.first_attempt_at, Some(t0()));
    assert_eq!(d.last_status_code, Some(500));
    assert_eq!(attempts.len(), 1);
    assert_eq!(store.next_due_at().await.unwrap(), Some(retry_at));
    assert!(
        store
            .claim_due(t0() + SignedDuration::from_mins(4), 10, lease, "n1")
            .await
            .unwrap()
            .is_empty()
    );

    let claimed = store
        .claim_due(retry_at, 10, retry_at + SignedDuration::from_secs(30), "n1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let later = retry_at + SignedDuration::from_secs(31);
    if !leases_run_out(&store) {
        // One process serves the file: its attempt in progress keeps the lease however far
        // the clock moves, and nobody else can take it.
        let taken = store
            .claim_due(later, 10, later + SignedDuration::from_secs(30), "n2")
            .await
            .unwrap();
        assert!(taken.is_empty(), "an attempt in progress keeps its lease");
        store
            .complete_attempt(
                attempt(c.delivery.id, later, true),
                DeliveryNext::Succeeded,
                "n1",
                FailurePolicy::lenient(t0()),
            )
            .await
            .unwrap();
        let (d, attempts) = store.get_delivery(c.delivery.id).await.unwrap().unwrap();
        assert_eq!(d.status, DeliveryStatus::Succeeded);
        assert_eq!(attempts.len(), 2, "every attempt is logged");
        assert_eq!(store.next_due_at().await.unwrap(), None);
        return;
    }
    // Several nodes: a lease that expires is taken over by another node; the old holder cannot
    // finish it.
    let taken = store
        .claim_due(later, 10, later + SignedDuration::from_secs(30), "n2")
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    store
        .complete_attempt(
            attempt(c.delivery.id, later, true),
            DeliveryNext::Succeeded,
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    let (d, _) = store.get_delivery(c.delivery.id).await.unwrap().unwrap();
    assert_eq!(
        d.status,
        DeliveryStatus::Pending,
        "n1 no longer holds the lease"
    );
    store
        .complete_attempt(
            attempt(c.delivery.id, later, true),
            DeliveryNext::Succeeded,
            "n2",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    let (d, attempts) = store.get_delivery(c.delivery.id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(attempts.len(), 3, "every attempt is logged");
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

async fn inactive_subscriptions_hold_their_deliveries_until_resumed(store: Arc<dyn Store>) {
    let mut sub = subscription("p1", &["PO_CREATED"]);
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    created(
        store
            .insert_event(event("p1", "PO_CREATED", None, None), None)
            .await
            .unwrap(),
    );
    sub.status = SubscriptionStatus::Inactive;
    store.update_subscription(sub.clone()).await.unwrap();
    let later = t0() + SignedDuration::from_hours(1);
    assert!(
        store
            .claim_due(later, 10, later, "n1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_at().await.unwrap(), None);
    // New events are not fanned out to it while INACTIVE.
    let (_, fanned) = created(
        store
            .insert_event(event("p1", "PO_CREATED", None, None), None)
            .await
            .unwrap(),
    );
    assert_eq!(fanned, 0);
    sub.status = SubscriptionStatus::Active;
    store.update_subscription(sub).await.unwrap();
    assert_eq!(
        store
            .claim_due(later, 10, later + SignedDuration::from_secs(60), "n1")
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn released_leases_are_claimable_at_once(store: Arc<dyn Store>) {
    store
        .create_subscriptions(vec![subscription("p1", &["PO_CREATED"])])
        .await
        .unwrap();
    created(
        store
            .insert_event(event("p1", "PO_CREATED", None, None), None)
            .await
            .unwrap(),
    );
    let lease = t0() + SignedDuration::from_hours(1);
    assert_eq!(
        store.claim_due(t0(), 10, lease, "n1").await.unwrap().len(),
        1
    );
    assert_eq!(store.release_leases("n1").await.unwrap(), 1);
    assert_eq!(
        store.claim_due(t0(), 10, lease, "n2").await.unwrap().len(),
        1
    );
}

async fn retry_and_replay_make_deliveries_pending_again_under_the_same_id(store: Arc<dyn Store>) {
    let sub = subscription("p1", &["PO_CREATED"]);
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    let e = event("p1", "PO_CREATED", None, None);
    created(store.insert_event(e.clone(), None).await.unwrap());
    let claimed = store
        .claim_due(t0(), 10, t0() + SignedDuration::from_secs(60), "n1")
        .await
        .unwrap();
    let id = claimed[0].delivery.id;
    store
        .complete_attempt(
            attempt(id, t0(), false),
            DeliveryNext::Failed,
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_delivery(id).await.unwrap().unwrap().0.status,
        DeliveryStatus::Failed
    );

    let now = t0() + SignedDuration::from_hours(2);
    let d = store.retry_delivery(id, now).await.unwrap().unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at),
        (DeliveryStatus::Pending, 0, Some(now))
    );
    assert!(
        store
            .retry_delivery(DeliveryId::new(), now)
            .await
            .unwrap()
            .is_none()
    );

    // A subscription created after the event gets it through replay; the existing delivery
    // is reused.
    let late = subscription("p1", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![late.clone()])
        .await
        .unwrap();
    let n = store
        .replay(late.id, t0(), t0() + SignedDuration::from_secs(1), now)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = store
        .replay(sub.id, t0(), t0() + SignedDuration::from_secs(1), now)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let all = store
        .list_deliveries(&DeliveryFilter {
            event_id: Some(e.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|d| d.id == id));
    // Outside the window: nothing.
    assert_eq!(
        store
            .replay(sub.id, now, now + SignedDuration::from_secs(1), now)
            .await
            .unwrap(),
        0
    );
}

async fn deliveries_page_by_key_newest_first(store: Arc<dyn Store>) {
    let sub = subscription("p1", &["PO_CREATED"]);
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    for _ in 0..25 {
        created(
            store
                .insert_event(event("p1", "PO_CREATED", None, None), None)
                .await
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_deliveries(&DeliveryFilter {
                subscription_id: Some(sub.id),
                before,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|d| d.id);
        seen.extend(page.into_iter().map(|d| d.id));
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, no repeats");
    let other = store
        .list_deliveries(&DeliveryFilter {
            partners: Some(vec!["p2".into()]),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty(), "partner filter applies");
}

/// Many concurrent writers: each is answered only after its write committed, and all of them
/// are in the file when it is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_committed_together_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    store
        .create_subscriptions(vec![subscription("p1", &["PO_CREATED"])])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{}", i % 150);
            store
                .insert_event(event("p1", "PO_CREATED", None, Some(&key)), None)
                .await
        }));
    }
    let mut created_count = 0;
    for t in tasks {
        if let InsertOutcome::Created { .. } = t.await.unwrap().unwrap() {
            created_count += 1;
        }
    }
    assert_eq!(created_count, 150, "each key stored once");
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    let deliveries = reopened
        .list_deliveries(&DeliveryFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 150);
}

#[tokio::test]
async fn only_one_serving_process_may_open_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.db");
    let serving = SqliteStore::open_for_serving(&path).unwrap();
    let second = SqliteStore::open_for_serving(&path);
    assert!(matches!(second, Err(StoreError::Database(m)) if m.contains("in use")));
    // Tools may still open it beside the server.
    let tool = SqliteStore::open(&path).unwrap();
    tool.ping().await.unwrap();
    drop(serving);
}

fn source(partners: &[&str]) -> switchyard_core::model::SourceRecord {
    switchyard_core::model::SourceRecord {
        id: SourceId::new(),
        kind: "walmart".into(),
        name: "Walmart US".into(),
        partners: partners.iter().map(|p| (*p).into()).collect(),
        secrets_sealed: "sy1:sealed".into(),
        replay_window_secs: 300,
        options: serde_json::json!({"form": "seed"}),
        client_id: "client-a".into(),
        created_at: t0(),
        updated_at: t0(),
        reconcile: None,
    }
}

async fn sources_round_trip_and_are_listed_only_to_who_manages_all_their_partners(
    store: Arc<dyn Store>,
) {
    let one = source(&["p1"]);
    let two = source(&["p1", "p2"]);
    store.create_source(one.clone()).await.unwrap();
    store.create_source(two.clone()).await.unwrap();
    assert_eq!(store.get_source(one.id).await.unwrap(), Some(one.clone()));
    assert!(matches!(
        store.create_source(one.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.list_sources(Some(vec!["p1".into()])).await.unwrap(),
        vec![one.clone()]
    );
    assert_eq!(
        store
            .list_sources(Some(vec!["p1".into(), "p2".into()]))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.list_sources(None).await.unwrap().len(), 2);
    let mut changed = one.clone();
    changed.name = "renamed".into();
    changed.replay_window_secs = 60;
    assert!(store.update_source(changed.clone()).await.unwrap());
    assert_eq!(store.get_source(one.id).await.unwrap(), Some(changed));
    assert!(store.delete_source(one.id).await.unwrap());
    assert!(!store.delete_source(one.id).await.unwrap());
    assert_eq!(store.get_source(one.id).await.unwrap(), None);
}

async fn rejections_are_listed_filtered_and_counted(store: Arc<dyn Store>) {
    let reject = |source: &str, partners: &[&str], reason: &str, minutes: i64| {
        switchyard_core::model::RejectionRecord {
            id: Uuid::now_v7(),
            source_id: source.into(),
            partners: partners.iter().map(|p| (*p).into()).collect(),
            reason: reason.into(),
            status_code: 401,
            message: "no".into(),
            remote_addr: Some("127.0.0.1".into()),
            body_sha256: "00".repeat(32),
            body_size: 12,
            received_at: t0() + SignedDuration::from_mins(minutes),
        }
    };
    for r in [
        reject("s1", &["p1"], "signature_mismatch", 0),
        reject("s1", &["p1"], "signature_mismatch", 1),
        reject("s1", &["p1"], "stale_timestamp", 2),
        reject("s2", &["p2"], "signature_mismatch", 3),
        reject("nope", &[], "unknown_source", 4),
    ] {
        store.insert_rejection(r).await.unwrap();
    }
    let all = store
        .list_rejections(&switchyard_core::model::RejectionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].reason, "unknown_source", "newest first");
    let p1 = store
        .list_rejections(&switchyard_core::model::RejectionFilter {
            partners: Some(vec!["p1".into()]),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p1.len(), 3);
    let filtered = store
        .list_rejections(&switchyard_core::model::RejectionFilter {
            source_id: Some("s1".into()),
            reason: Some("signature_mismatch".into()),
            since: Some(t0() + SignedDuration::from_secs(30)),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    let summary = store.rejection_summary(None, t0()).await.unwrap();
    assert_eq!(
        summary[0],
        switchyard_store::RejectionCount {
            source_id: "s1".into(),
            reason: "signature_mismatch".into(),
            count: 2
        }
    );
    assert_eq!(summary.len(), 4);
    let mine = store
        .rejection_summary(Some(vec!["p2".into()]), t0())
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
}

async fn received_events_keep_raw_body_and_normalized_form_and_the_first_sighting_sets_the_topic(
    store: Arc<dyn Store>,
) {
    let by_topic = subscription("p1", &["order.created"]);
    store
        .create_subscriptions(vec![by_topic.clone()])
        .await
        .unwrap();
    let sighting = |status: &str| switchyard_core::model::ResourceSighting {
        marketplace: "tiktok".into(),
        partner_id: "p1".into(),
        resource_kind: "order".into(),
        resource_id: "O-1".into(),
        status: Some(status.into()),
        first_sighting_topic: Some("order.created".into()),
        claim: None,
    };
    let received = |key: &str| {
        let mut e = event("p1", "1", Some("order.updated"), Some(key));
        e.origin = "source-tiktok".into();
        e.raw_body = Some(b"{\"type\":1, \"raw\": true}".to_vec());
        e.normalized = Some(
            serde_json::json!({"marketplace": "tiktok", "resource": {"type": "order", "id": "O-1"}}),
        );
        e
    };
    let first = received("n-1");
    let (_, fanned) = created(
        store
            .insert_event(first.clone(), Some(sighting("UNPAID")))
            .await
            .unwrap(),
    );
    assert_eq!(fanned, 1, "first sighting: order.created");
    let stored = store.get_event(first.id).await.unwrap().unwrap();
    assert_eq!(stored.topic.as_deref(), Some("order.created"));
    assert_eq!(stored.raw_body, first.raw_body);
    assert_eq!(stored.normalized, first.normalized);

    // A retry of the same notification changes nothing.
    let retry = received("n-1");
    assert!(matches!(
        store
            .insert_event(retry, Some(sighting("UNPAID")))
            .await
            .unwrap(),
        InsertOutcome::Duplicate { .. }
    ));
    // The next status change of the same order is an update.
    let second = received("n-2");
    let (_, fanned) = created(
        store
            .insert_event(second.clone(), Some(sighting("AWAITING_SHIPMENT")))
            .await
            .unwrap(),
    );
    assert_eq!(fanned, 0);
    assert_eq!(
        store
            .get_event(second.id)
            .await
            .unwrap()
            .unwrap()
            .topic
            .as_deref(),
        Some("order.updated")
    );

    let listed = store
        .list_events(&switchyard_core::model::EventFilter {
            marketplace: Some("tiktok".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
    let created_only = store
        .list_events(&switchyard_core::model::EventFilter {
            topic: Some("order.created".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created_only.len(), 1);
    let other = store
        .list_events(&switchyard_core::model::EventFilter {
            partners: Some(vec!["p2".into()]),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty());
}

/// What is not needed to acknowledge an event is derived from it afterwards: a received order
/// event's facts and its entry in the resource search, each once, whenever the deriver runs;
/// the search finds the event before that too.
async fn order_facts_and_the_resource_search_are_derived_after_the_ack_once(store: Arc<dyn Store>) {
    let order_event = |key: &str, status: &str, at_secs: i64| {
        let mut e = event("p1", "PO_STATUS", Some("order.updated"), Some(key));
        e.origin = "source-walmart".into();
        e.received_at = t0() + SignedDuration::from_secs(at_secs);
        e.resource_key = Some("order:PO-7".into());
        let native =
            serde_json::json!({"purchaseOrderId": "PO-7", "orderDate": "2026-10-30T10:00:00Z"});
        e.payload = native.clone();
        e.raw_body = Some(serde_json::to_vec(&native).unwrap());
        e.normalized = Some(serde_json::json!({
            "marketplace": "walmart", "partnerId": "p1", "status": status,
            "resource": {"type": "order", "id": "PO-7"},
            "occurredAt": e.received_at, "nativeEventType": "PO_STATUS", "native": native,
        }));
        e
    };
    let by_resource = |keys: &[&str]| switchyard_core::model::EventFilter {
        resource_keys: Some(keys.iter().map(|k| k.to_string()).collect()),
        limit: 10,
        ..Default::default()
    };
    let first = order_event("wm-1", "Created", 0);
    created(store.insert_event(first.clone(), None).await.unwrap());
    // Found by resource before it is derived, and read back whole.
    let found = store
        .list_events(&by_resource(&["order:PO-7"]))
        .await
        .unwrap();
    assert_eq!(
        found.into_iter().map(unversioned).collect::<Vec<_>>(),
        vec![first.clone()]
    );
    let second = order_event("wm-2", "Acknowledged", 60);
    created(store.insert_event(second.clone(), None).await.unwrap());

    store.derive_pending().await.unwrap();
    assert_eq!(store.derive_pending().await.unwrap(), 0, "nothing twice");
    let orders = store.partner_orders("p1", t0()).await.unwrap();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].po_number, "PO-7");
    assert_eq!(
        orders[0].status.as_deref(),
        Some("Acknowledged"),
        "in log order"
    );
    assert_eq!(
        orders[0].ordered_at,
        Some("2026-10-30T10:00:00Z".parse().unwrap()),
        "read from the payload the normalized form refers to"
    );
    let found = store
        .list_events(&by_resource(&["order:PO-7", "order:other"]))
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
    assert!(
        store
            .list_events(&by_resource(&["order:other"]))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn ordered_subscriptions_get_one_delivery_at_a_time_per_resource(store: Arc<dyn Store>) {
    let mut sub = subscription("p1", &["PO_CREATED"]);
    sub.ordering = switchyard_core::model::Ordering::Resource;
    let free = subscription("p1", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![sub.clone(), free.clone()])
        .await
        .unwrap();
    let on = |resource: &str| {
        let mut e = event("p1", "PO_CREATED", None, None);
        e.resource_key = Some(format!("order:{resource}"));
        e
    };
    let (a1, a2, b1) = (on("A"), on("A"), on("B"));
    for e in [&a1, &a2, &b1] {
        created(store.insert_event(e.clone(), None).await.unwrap());
    }
    let lease = t0() + SignedDuration::from_secs(60);
    let claimed = store.claim_due(t0(), 100, lease, "n1").await.unwrap();
    let mine: Vec<EventId> = claimed
        .iter()
        .filter(|c| c.subscription.id == sub.id)
        .map(|c| c.event.id)
        .collect();
    assert_eq!(
        mine,
        vec![a1.id, b1.id],
        "A's second waits behind its first; B flows"
    );
    assert_eq!(
        claimed
            .iter()
            .filter(|c| c.subscription.id == free.id)
            .count(),
        3,
        "unordered: all at once"
    );
    let first_a = claimed
        .iter()
        .find(|c| c.subscription.id == sub.id && c.event.id == a1.id)
        .unwrap();

    // A failed attempt that will be retried still holds A's queue.
    let retry_at = t0() + SignedDuration::from_mins(5);
    store
        .complete_attempt(
            attempt(first_a.delivery.id, t0(), false),
            DeliveryNext::RetryAt(retry_at),
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_due(t0(), 100, lease, "n1")
            .await
            .unwrap()
            .iter()
            .all(|c| c.event.id != a2.id)
    );
    // When it finally fails for good, the next one goes.
    let again = store
        .claim_due(
            retry_at,
            100,
            retry_at + SignedDuration::from_secs(60),
            "n1",
        )
        .await
        .unwrap();
    let retried = again
        .iter()
        .find(|c| c.event.id == a1.id && c.subscription.id == sub.id)
        .expect("A1 retried");
    store
        .complete_attempt(
            attempt(retried.delivery.id, retry_at, false),
            DeliveryNext::Failed,
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    let next = store
        .claim_due(
            retry_at,
            100,
            retry_at + SignedDuration::from_secs(60),
            "n1",
        )
        .await
        .unwrap();
    assert!(
        next.iter()
            .any(|c| c.event.id == a2.id && c.subscription.id == sub.id),
        "A2 is released"
    );
}

async fn claims_respect_max_in_flight_rate_limits_and_holds(store: Arc<dyn Store>) {
    let mut capped = subscription("p1", &["PO_CREATED"]);
    capped.max_in_flight = Some(2);
    let mut limited = subscription("p1", &["PO_CREATED"]);
    limited.rate_limit = Some(switchyard_core::model::RateLimit {
        per_second: 10.0,
        burst: 10.0,
    });
    let held = subscription("p1", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![capped.clone(), limited.clone(), held.clone()])
        .await
        .unwrap();
    for _ in 0..30 {
        created(
            store
                .insert_event(event("p1", "PO_CREATED", None, None), None)
                .await
                .unwrap(),
        );
    }
    store
        .pace_subscription(held.id, t0() + SignedDuration::from_secs(60))
        .await
        .unwrap();
    let count = |claimed: &[switchyard_store::ClaimedDelivery], sub: SubscriptionId| {
        claimed.iter().filter(|c| c.subscription.id == sub).count()
    };
    let lease = t0() + SignedDuration::from_secs(30);
    let first = store.claim_due(t0(), 1000, lease, "n1").await.unwrap();
    assert_eq!(count(&first, capped.id), 2, "two in flight at most");
    assert_eq!(count(&first, limited.id), 10, "a full bucket");
    assert_eq!(count(&first, held.id), 0, "held by a 429");
    // Half a second later: five more tokens; the cap is still full.
    let later = t0() + SignedDuration::from_millis(500);
    let second = store.claim_due(later, 1000, lease, "n1").await.unwrap();
    assert_eq!(
        (count(&second, capped.id), count(&second, limited.id)),
        (0, 5)
    );
    // One of the capped finishes: one more may go.
    let done = first
        .iter()
        .find(|c| c.subscription.id == capped.id)
        .unwrap();
    store
        .complete_attempt(
            attempt(done.delivery.id, later, true),
            DeliveryNext::Succeeded,
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    let third = store.claim_due(later, 1000, lease, "n1").await.unwrap();
    assert_eq!(count(&third, capped.id), 1);
    // The hold ends.
    let after = t0() + SignedDuration::from_secs(61);
    let fourth = store
        .claim_due(after, 1000, after + SignedDuration::from_secs(30), "n1")
        .await
        .unwrap();
    assert_eq!(count(&fourth, held.id), 30);
}

/// Attempts recorded at once, which a writer takes into one batch, keep a subscription's
/// failure streak as if recorded one by one: each failure counts.
async fn attempts_recorded_together_each_count_in_the_streak(store: Arc<dyn Store>) {
    let mut sub = subscription("p1", &["PO_CREATED"]);
    sub.breaker.failure_threshold = 100;
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    for _ in 0..12 {
        created(
            store
                .insert_event(event("p1", "PO_CREATED", None, None), None)
                .await
                .unwrap(),
        );
    }
    let lease = t0() + SignedDuration::from_secs(30);
    let claimed = store.claim_due(t0(), 12, lease, "n1").await.unwrap();
    assert_eq!(claimed.len(), 12);
    let mut recording = tokio::task::JoinSet::new();
    for c in claimed {
        let store = store.clone();
        recording.spawn(async move {
            store
                .complete_attempt(
                    attempt(c.delivery.id, t0(), false),
                    DeliveryNext::RetryAt(t0() + SignedDuration::from_secs(60)),
                    "n1",
                    FailurePolicy::lenient(t0() + SignedDuration::from_secs(60)),
                )
                .await
                .unwrap()
        });
    }
    while let Some(done) = recording.join_next().await {
        assert_eq!(done.unwrap(), switchyard_store::AttemptEffects::default());
    }
    let state = store.subscription_state(sub.id).await.unwrap();
    assert_eq!(state.consecutive_failures, 12);
    assert_eq!(state.failing_since, Some(t0()));
    assert_eq!(state.pending, 12, "each to be retried");
}

async fn failure_streaks_open_the_breaker_probe_one_at_a_time_and_disable(store: Arc<dyn Store>) {
    let mut sub = subscription("p1", &["PO_CREATED"]);
    sub.breaker = switchyard_core::model::Breaker {
        failure_threshold: 3,
        probe_interval_seconds: 60,
    };
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    for _ in 0..10 {
        created(
            store
                .insert_event(event("p1", "PO_CREATED", None, None), None)
                .await
                .unwrap(),
        );
    }
    let lease = |at: Timestamp| at + SignedDuration::from_secs(30);
    let reopen = t0() + SignedDuration::from_secs(60);
    // Three failures in a row open the breaker.
    let claimed = store.claim_due(t0(), 3, lease(t0()), "n1").await.unwrap();
    assert_eq!(claimed.len(), 3);
    for c in &claimed {
        let effects = store
            .complete_attempt(
                attempt(c.delivery.id, t0(), false),
                DeliveryNext::RetryAt(t0()),
                "n1",
                FailurePolicy::lenient(reopen),
            )
            .await
            .unwrap();
        assert_eq!(effects, switchyard_store::AttemptEffects::default());
    }
    assert!(
        store
            .claim_due(t0(), 100, lease(t0()), "n1")
            .await
            .unwrap()
            .is_empty(),
        "open: nothing goes"
    );
    // At the probe time, one delivery only.
    let probe = store
        .claim_due(reopen, 100, lease(reopen), "n1")
        .await
        .unwrap();
    assert_eq!(probe.len(), 1);
    assert!(
        store
            .claim_due(reopen, 100, lease(reopen), "n1")
            .await
            .unwrap()
            .is_empty(),
        "one probe at a time"
    );
    // The probe succeeds: recovered, and the backlog flows again.
    let effects = store
        .complete_attempt(
            attempt(probe[0].delivery.id, reopen, true),
            DeliveryNext::Succeeded,
            "n1",
            FailurePolicy::lenient(reopen),
        )
        .await
        .unwrap();
    assert!(effects.recovered);
    assert_eq!(
        store
            .claim_due(reopen, 100, lease(reopen), "n1")
            .await
            .unwrap()
            .len(),
        9
    );

    // A 410 disables at once, with its reason.
    let gone_sub = subscription("p2", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![gone_sub.clone()])
        .await
        .unwrap();
    created(
        store
            .insert_event(event("p2", "PO_CREATED", None, None), None)
            .await
            .unwrap(),
    );
    let c = store
        .claim_due(reopen, 100, lease(reopen), "n2")
        .await
        .unwrap();
    let gone = FailurePolicy {
        gone: true,
        ..FailurePolicy::lenient(reopen)
    };
    let effects = store
        .complete_attempt(
            attempt(c[0].delivery.id, reopen, false),
            DeliveryNext::Failed,
            "n2",
            gone,
        )
        .await
        .unwrap();
    assert_eq!(
        effects.disabled.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    let stored = store.get_subscription(gone_sub.id).await.unwrap().unwrap();
    assert_eq!(stored.status, SubscriptionStatus::Inactive);
    assert_eq!(
        stored.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );

    // A streak older than the policy's limit disables too.
    let slow = subscription("p3", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![slow.clone()])
        .await
        .unwrap();
    created(
        store
            .insert_event(event("p3", "PO_CREATED", None, None), None)
            .await
            .unwrap(),
    );
    let c = store
        .claim_due(reopen, 100, lease(reopen), "n3")
        .await
        .unwrap();
    let not_yet = FailurePolicy {
        disable_if_failing_since: reopen - SignedDuration::from_secs(1),
        ..FailurePolicy::lenient(reopen)
    };
    let effects = store
        .complete_attempt(
            attempt(c[0].delivery.id, reopen, false),
            DeliveryNext::RetryAt(reopen),
            "n3",
            not_yet,
        )
        .await
        .unwrap();
    assert_eq!(effects.disabled, None, "the streak just began");
    let later = reopen + SignedDuration::from_hours(1);
    let c = store
        .claim_due(later, 100, lease(later), "n3")
        .await
        .unwrap();
    let c: Vec<_> = c
        .into_iter()
        .filter(|c| c.subscription.id == slow.id)
        .collect();
    let too_long = FailurePolicy {
        disable_if_failing_since: later - SignedDuration::from_mins(30),
        ..FailurePolicy::lenient(later)
    };
    let effects = store
        .complete_attempt(
            attempt(c[0].delivery.id, later, false),
            DeliveryNext::RetryAt(later),
            "n3",
            too_long,
        )
        .await
        .unwrap();
    assert!(
        effects
            .disabled
            .unwrap()
            .starts_with("failing continuously since")
    );
}

async fn retention_removes_only_what_is_old_and_done_while_writes_go_on(store: Arc<dyn Store>) {
    store
        .create_subscriptions(vec![subscription("p1", &["PO_CREATED"])])
        .await
        .unwrap();
    let old = t0() - SignedDuration::from_hours(24 * 40);
    let at = |when: Timestamp| {
        let mut e = event("p1", "PO_CREATED", None, None);
        e.received_at = when;
        e
    };
    // Old and delivered; old but still pending; recent.
    let (done, pending, recent) = (at(old), at(old), at(t0()));
    for e in [&done, &pending, &recent] {
        created(store.insert_event(e.clone(), None).await.unwrap());
    }
    let claimed = store
        .claim_due(t0(), 10, t0() + SignedDuration::from_secs(60), "n1")
        .await
        .unwrap();
    for c in claimed.iter().filter(|c| c.event.id != pending.id) {
        store
            .complete_attempt(
                attempt(c.delivery.id, old, true),
                DeliveryNext::Succeeded,
                "n1",
                FailurePolicy::lenient(t0()),
            )
            .await
            .unwrap();
    }
    store.release_leases("n1").await.unwrap();
    store
        .insert_rejection(switchyard_core::model::RejectionRecord {
            id: Uuid::now_v7(),
            source_id: "s".into(),
            partners: vec![],
            reason: "signature_mismatch".into(),
            status_code: 401,
            message: "x".into(),
            remote_addr: None,
            body_sha256: "0".repeat(64),
            body_size: 1,
            received_at: old,
        })
        .await
        .unwrap();
    // Traffic goes on while retention runs in batches of one.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                created(
                    store
                        .insert_event(event("p1", "PO_CREATED", None, None), None)
                        .await
                        .unwrap(),
                );
            }
        })
    };
    let before = t0() - SignedDuration::from_hours(24 * 30);
    let mut total = switchyard_store::PurgeCounts::default();
    loop {
        let batch = store.purge_before(before, 1).await.unwrap();
        if batch.total() == 0 {
            break;
        }
        total.events += batch.events;
        total.deliveries += batch.deliveries;
        total.attempts += batch.attempts;
        total.rejections += batch.rejections;
    }
    writer.await.unwrap();
    assert_eq!(
        (
            total.events,
            total.deliveries,
            total.attempts,
            total.rejections
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(store.get_event(done.id).await.unwrap(), None);
    assert!(
        store.get_event(pending.id).await.unwrap().is_some(),
        "a pending delivery keeps its event"
    );
    assert!(store.get_event(recent.id).await.unwrap().is_some());
    let all = store
        .list_events(&switchyard_core::model::EventFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 52, "the concurrent writes all landed");
}

/// What the console reads: callback logs paged by time, failures bucketed per tenant, outcomes,
/// a source's accepted/duplicate/refused counts, search by resource, and the console switch.
async fn console_views_page_logs_count_failures_outcomes_and_duplicates(store: Arc<dyn Store>) {
    let mut sub = subscription("p1", &["PO_CREATED"]);
    sub.breaker.failure_threshold = 100;
    let other = subscription("p2", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![sub.clone(), other.clone()])
        .await
        .unwrap();
    let source = SourceId::new();
    let mut first = None;
    for i in 0..5 {
        let mut e = event("p1", "PO_CREATED", None, Some(&format!("k{i}")));
        e.origin = source.to_string();
        e.resource_key = Some(format!("order:PO-{i}"));
        e.received_at = t0() + SignedDuration::from_mins(i);
        let (id, _) = created(store.insert_event(e, None).await.unwrap());
        first.get_or_insert(id);
    }
    let mut dup = event("p1", "PO_CREATED", None, Some("k0"));
    dup.origin = source.to_string();
    assert_eq!(
        store.insert_event(dup, None).await.unwrap(),
        InsertOutcome::Duplicate {
            event_id: first.unwrap()
        }
    );
    created(
        store
            .insert_event(event("p2", "PO_CREATED", None, Some("x")), None)
            .await
            .unwrap(),
    );

    // Every delivery fails once, then succeeds: 12 attempts, 6 of them failures.
    let now = t0() + SignedDuration::from_hours(1);
    let lease = SignedDuration::from_secs(60);
    let claimed = store.claim_due(now, 100, now + lease, "n1").await.unwrap();
    assert_eq!(claimed.len(), 6);
    for (i, c) in claimed
        .iter()
        .filter(|c| c.subscription.id == sub.id)
        .chain(claimed.iter().filter(|c| c.subscription.id != sub.id))
        .enumerate()
    {
        let at = now + SignedDuration::from_secs(i as i64);
        store
            .complete_attempt(
                attempt(c.delivery.id, at, false),
                DeliveryNext::RetryAt(now),
                "n1",
                FailurePolicy::lenient(now),
            )
            .await
            .unwrap();
    }
    let later = now + SignedDuration::from_mins(10);
    let claimed = store
        .claim_due(later, 100, later + lease, "n1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6);
    for (i, c) in claimed.iter().enumerate() {
        let at = later + SignedDuration::from_secs(i as i64);
        store
            .complete_attempt(
                attempt(c.delivery.id, at, true),
                DeliveryNext::Succeeded,
                "n1",
                FailurePolicy::lenient(later),
            )
            .await
            .unwrap();
    }

    // The callback log: newest first, paged without repeats, filtered by outcome and time.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_attempts(&AttemptFilter {
                subscription_id: sub.id,
                succeeded: None,
                since: None,
                until: None,
                after,
                limit: 3,
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|l| l.attempt.id);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 10, "five deliveries, two attempts each");
    assert!(
        seen.windows(2)
            .all(|w| w[0].attempt.attempted_at >= w[1].attempt.attempted_at),
        "newest first"
    );
    assert!(
        seen.iter()
            .all(|l| l.subscription_id == sub.id && l.event_type == "PO_CREATED")
    );
    let failed = store
        .list_attempts(&AttemptFilter {
            subscription_id: sub.id,
            succeeded: Some(false),
            since: Some(now),
            until: Some(now + SignedDuration::from_secs(3)),
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 3, "failures in [now, now+3s)");
    assert!(failed.iter().all(|l| !l.attempt.succeeded));

    // Failures and outcomes, per tenant and bucket.
    let mut rejection = switchyard_core::model::RejectionRecord {
        id: Uuid::now_v7(),
        source_id: source.to_string(),
        partners: vec!["p1".into()],
        reason: "signature_mismatch".into(),
        status_code: 401,
        message: "no".into(),
        remote_addr: None,
        body_sha256: "00".repeat(32),
        body_size: 1,
        received_at: now,
    };
    store.insert_rejection(rejection.clone()).await.unwrap();
    rejection.id = Uuid::now_v7();
    rejection.source_id = "elsewhere".into();
    rejection.partners = vec!["p2".into()];
    store.insert_rejection(rejection).await.unwrap();
    let outcome = OutcomeRecord {
        id: Uuid::now_v7(),
        event_id: first.unwrap(),
        partner_id: "p1".into(),
        client_id: "client-a".into(),
        status: "failed".into(),
        reason: Some("inventory_mismatch".into()),
        message: Some("SKU-1 has 0 on hand".into()),
        reported_at: later,
    };
    store.insert_outcome(outcome.clone()).await.unwrap();
    let listed = store
        .list_outcomes(&OutcomeFilter {
            event_id: first,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed, vec![outcome]);

    let all = store.failure_report(None, t0(), 3600).await.unwrap();
    let total = |rows: &[switchyard_store::BucketCount]| rows.iter().map(|b| b.count).sum();
    let sum: u64 = total(&all.attempt_failures);
    assert_eq!(sum, 6);
    assert!(all.attempt_failures.iter().all(|b| b.reason == "HTTP 500"));
    assert_eq!(all.rejections.len(), 2);
    let p1 = store
        .failure_report(Some(vec!["p1".into()]), t0(), 3600)
        .await
        .unwrap();
    let sum: u64 = total(&p1.attempt_failures);
    assert_eq!(sum, 5, "p2's failure is not p1's");
    assert!(
        p1.attempt_failures
            .iter()
            .all(|b| b.key == sub.id.to_string())
    );
    assert_eq!(p1.rejections.len(), 1);
    assert_eq!(p1.rejections[0].key, source.to_string());
    assert_eq!(
        p1.outcomes
            .iter()
            .map(|b| (b.reason.as_str(), b.count))
            .collect::<Vec<_>>(),
        vec![("inventory_mismatch", 1)]
    );
    let bucket = p1.rejections[0].bucket;
    assert_eq!(bucket.as_second() % 3600, 0, "bucketed on the hour");
    let p2 = store
        .failure_report(Some(vec!["p2".into()]), t0(), 3600)
        .await
        .unwrap();
    assert!(p2.outcomes.is_empty());

    // The source's counts, and search by resource and time.
    assert_eq!(
        store.source_stats(source).await.unwrap(),
        SourceStats {
            accepted: 5,
            duplicates: 1,
            refused: 1
        }
    );
    let by_resource = store
        .list_events(&EventFilter {
            resource_keys: Some(vec!["order:PO-1".into(), "item:PO-1".into()]),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_resource.len(), 1);
    let early = store
        .list_events(&EventFilter {
            partner_id: Some("p1".into()),
            since: Some(t0() + SignedDuration::from_mins(1)),
            until: Some(t0() + SignedDuration::from_mins(3)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(early.len(), 2, "minutes 1 and 2");

    // The console switch.
    assert!(store.console_disabled_partners().await.unwrap().is_empty());
    store.set_console_enabled("p1", false).await.unwrap();
    store.set_console_enabled("p2", false).await.unwrap();
    store.set_console_enabled("p2", true).await.unwrap();
    assert_eq!(store.console_disabled_partners().await.unwrap(), vec!["p1"]);
}

async fn queue_depth_splits_pending_deliveries_by_state_and_ages_only_active_ones(
    store: Arc<dyn Store>,
) {
    assert_eq!(
        store.queue_depth(t0()).await.unwrap(),
        QueueDepth::default(),
        "nothing pending"
    );
    let sub = subscription("p1", &["PO_CREATED"]);
    let mut paused = subscription("p2", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![sub.clone(), paused.clone()])
        .await
        .unwrap();
    let at = |mins: i64| t0() + SignedDuration::from_mins(mins);
    let insert = |partner: &'static str, received: Timestamp| {
        let store = store.clone();
        async move {
            let mut e = event(partner, "PO_CREATED", None, None);
            e.received_at = received;
            created(store.insert_event(e.clone(), None).await.unwrap());
            e.id
        }
    };
    // The paused subscription's delivery is the oldest of all.
    insert("p2", at(-10)).await;
    paused.status = SubscriptionStatus::Inactive;
    assert!(store.update_subscription(paused.clone()).await.unwrap());
    let done = insert("p1", at(-5)).await;
    let leased = insert("p1", at(-2)).await;
    let retried = insert("p1", at(-1)).await;
    insert("p1", t0()).await;

    // One at a time, oldest first: one succeeds, one stays leased, one waits for a retry.
    let claim = |owner: &'static str| {
        let store = store.clone();
        async move {
            let claimed = store.claim_due(t0(), 1, at(1), owner).await.unwrap();
            assert_eq!(claimed.len(), 1);
            claimed[0].clone()
        }
    };
    let first = claim("n1").await;
    assert_eq!(first.event.id, done);
    store
        .complete_attempt(
            attempt(first.delivery.id, t0(), true),
            DeliveryNext::Succeeded,
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    assert_eq!(claim("n1").await.event.id, leased);
    let third = claim("n2").await;
    assert_eq!(third.event.id, retried);
    store
        .complete_attempt(
            attempt(third.delivery.id, t0(), false),
            DeliveryNext::RetryAt(at(5)),
            "n2",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();

    // Due: the paused one (counted, but not aged) and the newest; the leased one is not.
    assert_eq!(
        store.queue_depth(t0()).await.unwrap(),
        QueueDepth {
            due: 2,
            scheduled: 1,
            leased: 1,
            oldest_due_at: Some(t0()),
        }
    );
    if leases_run_out(&store) {
        // The lease ran out at +1 min: that delivery is due again, and the oldest.
        assert_eq!(
            store.queue_depth(at(2)).await.unwrap(),
            QueueDepth {
                due: 3,
                scheduled: 1,
                leased: 0,
                oldest_due_at: Some(at(-2)),
            }
        );
    } else {
        // Its attempt is in progress however late it is; shutdown releases it.
        assert_eq!(store.queue_depth(at(2)).await.unwrap().leased, 1);
        assert_eq!(store.release_leases("n1").await.unwrap(), 1);
    }
    // The retry time passed.
    assert_eq!(
        store.queue_depth(at(10)).await.unwrap(),
        QueueDepth {
            due: 4,
            scheduled: 0,
            leased: 0,
            oldest_due_at: Some(at(-2)),
        }
    );
    // Resumed, the paused subscription's backlog is aged too.
    paused.status = SubscriptionStatus::Active;
    assert!(store.update_subscription(paused).await.unwrap());
    assert_eq!(
        store.queue_depth(at(10)).await.unwrap().oldest_due_at,
        Some(at(-10))
    );
}

/// Order facts: changes apply in one transaction or not at all, and are read back per partner.
async fn order_facts_apply_all_or_nothing_and_are_read_back_per_partner(store: Arc<dyn Store>) {
    use switchyard_core::performance::OrderFact;
    use switchyard_store::{OrderChange, OrderUpdate};
    let shipped = |po: &str| OrderFact::Shipped {
        po_number: po.into(),
        marketplace: "walmart".into(),
        carrier: "UPS".into(),
        tracking_number: "1Z999AA10123456784".into(),
        shipped_at: t0(),
    };
    let update = |po: &str, fact: OrderFact| OrderUpdate {
        marketplace: "walmart".into(),
        po_number: po.into(),
        change: OrderChange::Fact(fact),
    };
    let normalized = serde_json::json!({
        "marketplace": "walmart",
        "resource": {"type": "order", "id": "PO-1"},
        "status": "Created",
        "occurredAt": t0(),
    });
    store
        .update_orders(
            "p1",
            vec![
                OrderUpdate {
                    marketplace: "walmart".into(),
                    po_number: "PO-1".into(),
                    change: OrderChange::Normalized(normalized),
                },
                update("PO-1", shipped("PO-1")),
            ],
            t0(),
        )
        .await
        .unwrap();
    // The second change names another order than its key: the whole batch is refused.
    let refused = store
        .update_orders(
            "p1",
            vec![
                update("PO-2", shipped("PO-2")),
                update("PO-3", shipped("PO-9")),
            ],
            t0(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid { .. })),
        "{refused:?}"
    );
    let orders = store
        .partner_orders("p1", t0() - SignedDuration::from_hours(1))
        .await
        .unwrap();
    assert_eq!(orders.len(), 1, "PO-2 was rolled back with its batch");
    let po1 = &orders[0];
    assert_eq!(po1.po_number, "PO-1");
    assert_eq!(
        po1.shipment
            .as_ref()
            .and_then(|s| s.tracking_number.as_deref()),
        Some("1Z999AA10123456784")
    );
    assert!(
        po1.ordered_at.is_some(),
        "the normalized event dated the order"
    );
    assert!(
        store
            .partner_orders("p2", t0() - SignedDuration::from_hours(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .partner_orders("p1", t0() + SignedDuration::from_hours(1))
            .await
            .unwrap()
            .is_empty(),
        "only orders changed since the time asked"
    );
}

async fn a_subscriptions_envelope_round_trips(store: Arc<dyn Store>) {
    use switchyard_core::model::Envelope;
    let mut sub = subscription("p1", &["onOrderCreated", "order.created"]);
    sub.envelope = Envelope::Sellercenter;
    store.create_subscriptions(vec![sub.clone()]).await.unwrap();
    let read = store.get_subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(read.envelope, Envelope::Sellercenter);
    let mut changed = read.clone();
    changed.envelope = Envelope::Normalized;
    assert!(store.update_subscription(changed).await.unwrap());
    let read = store.get_subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(read.envelope, Envelope::Normalized);
    // A normalized topic fans out to it like any other type.
    let (_, deliveries) = created(
        store
            .insert_event(
                event("p1", "ORDER_X", Some("order.created"), Some("k1")),
                None,
            )
            .await
            .unwrap(),
    );
    assert_eq!(deliveries, 1);
}

/// Through a scope, another partner's objects do not exist: lists leave them out, reads find
/// nothing, changes to them change nothing, and writes naming them are refused.
async fn a_scoped_store_reaches_only_its_partners_objects(store: Arc<dyn Store>) {
    let theirs = subscription("p2", &["PO_CREATED"]);
    let mine = subscription("p1", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![theirs.clone(), mine.clone()])
        .await
        .unwrap();
    let (their_event, _) = created(
        store
            .insert_event(event("p2", "PO_CREATED", None, Some("e-2")), None)
            .await
            .unwrap(),
    );
    let their_source = source(&["p2"]);
    store.create_source(their_source.clone()).await.unwrap();

    let tenants = TenantStore::new(store.clone());
    let p1: Vec<PartnerId> = vec!["p1".into()];
    let scoped = tenants.scoped(Scope::Partners(&p1));

    let listed = scoped
        .list_subscriptions(&SubscriptionFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [mine.id]);
    // A filter naming another partner is narrowed to nothing, not widened.
    let asked = SubscriptionFilter {
        partners: Some(vec!["p2".into()]),
        ..Default::default()
    };
    assert!(scoped.list_subscriptions(&asked).await.unwrap().is_empty());
    assert_eq!(scoped.get_subscription(theirs.id).await.unwrap(), None);
    assert_eq!(scoped.get_event(their_event).await.unwrap(), None);
    assert!(
        scoped
            .list_events(&EventFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    let deliveries = scoped
        .list_deliveries(&DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(deliveries.iter().all(|d| d.partner_id == "p1"));
    assert_eq!(scoped.get_source(their_source.id).await.unwrap(), None);
    assert_eq!(scoped.source_stats(their_source.id).await.unwrap(), None);

    // Changes to another partner's objects change nothing.
    assert!(!scoped.delete_subscription(theirs.id, t0()).await.unwrap());
    assert!(!scoped.delete_source(their_source.id).await.unwrap());
    assert!(matches!(
        scoped.update_subscription(theirs.clone()).await,
        Err(StoreError::OutOfScope)
    ));
    assert!(store.get_subscription(theirs.id).await.unwrap().is_some());
    assert!(store.get_source(their_source.id).await.unwrap().is_some());
    // Writes naming another partner are refused, and store nothing.
    let planted = subscription("p2", &["PO_CREATED"]);
    assert!(matches!(
        scoped.create_subscriptions(vec![planted.clone()]).await,
        Err(StoreError::OutOfScope)
    ));
    assert_eq!(store.get_subscription(planted.id).await.unwrap(), None);
    assert!(matches!(
        scoped
            .insert_event(event("p2", "PO_CREATED", None, Some("e-3")), None)
            .await,
        Err(StoreError::OutOfScope)
    ));
    assert!(matches!(
        scoped.create_source(source(&["p1", "p2"])).await,
        Err(StoreError::OutOfScope)
    ));

    // Its own objects are all there, and an admin's scope reaches everyone's.
    assert_eq!(
        scoped.get_subscription(mine.id).await.unwrap(),
        Some(mine.clone())
    );
    let all = tenants.scoped(Scope::All);
    assert_eq!(
        all.list_subscriptions(&SubscriptionFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(all.get_event(their_event).await.unwrap().is_some());
}

/// Fan-out matches a subscription's content filter against the envelope it would deliver: an
/// event it rejects makes no delivery to it, and other subscriptions are not affected.
async fn a_content_filter_keeps_the_events_it_rejects_from_fanning_out(store: Arc<dyn Store>) {
    let mut filtered = subscription("p1", &["PO_CREATED"]);
    filtered.filter =
        Some(serde_json::json!({"payload.n": {"$gte": 2}, "source.eventType": "PO_CREATED"}));
    let plain = subscription("p1", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![filtered.clone(), plain.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.get_subscription(filtered.id).await.unwrap(),
        Some(filtered.clone()),
        "the filter is stored as given"
    );
    let mut low = event("p1", "PO_CREATED", None, Some("low"));
    low.payload = serde_json::json!({"n": 1});
    let mut high = event("p1", "PO_CREATED", None, Some("high"));
    high.payload = serde_json::json!({"n": 3});
    let (_, low_deliveries) = created(store.insert_event(low, None).await.unwrap());
    let (_, high_deliveries) = created(store.insert_event(high, None).await.unwrap());
    assert_eq!((low_deliveries, high_deliveries), (1, 2));
    let to_filtered = store
        .list_deliveries(&DeliveryFilter {
            subscription_id: Some(filtered.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(to_filtered.len(), 1);

    // A subscriber of the topic gets, and is filtered on, the normalized form under the topic's
    // name; a subscriber of the native type on the payload as received.
    let mut by_topic = subscription("p1", &["order.created"]);
    by_topic.filter = Some(serde_json::json!({
        "source.eventType": "order.created", "payload.total": {"$gte": 10}
    }));
    let mut by_native = subscription("p1", &["PO_LINE_ADDED"]);
    by_native.filter = Some(serde_json::json!({
        "source.eventType": "PO_LINE_ADDED", "payload.n": 1
    }));
    store
        .create_subscriptions(vec![by_topic.clone(), by_native.clone()])
        .await
        .unwrap();
    let mut order = event("p1", "PO_LINE_ADDED", Some("order.created"), Some("order"));
    order.normalized = Some(serde_json::json!({"total": 12}));
    let (_, order_deliveries) = created(store.insert_event(order, None).await.unwrap());
    assert_eq!(order_deliveries, 2, "each filter saw its own envelope");
    let mut small = event("p1", "PO_LINE_ADDED", Some("order.created"), Some("small"));
    small.normalized = Some(serde_json::json!({"total": 3}));
    let (_, small_deliveries) = created(store.insert_event(small, None).await.unwrap());
    assert_eq!(
        small_deliveries, 1,
        "the normalized total is under the topic filter's"
    );
    let to_topic = store
        .list_deliveries(&DeliveryFilter {
            subscription_id: Some(by_topic.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(to_topic.len(), 1);
}

/// Latest state only: a coalescing subscription's pending delivery of a state event is
/// superseded by a newer one of the same resource (with a note), one in flight is left to its
/// attempt and superseded when that attempt would retry it, other resources and other
/// subscriptions are untouched, and each stored event's resourceVersion is larger than the
/// previous one's. A leased delivery is cancelled only by its lease holder.
async fn coalescing_supersedes_older_state_and_a_cancel_ends_a_leased_delivery(
    store: Arc<dyn Store>,
) {
    let mut latest = subscription("p1", &["INVENTORY_OOS"]);
    latest.coalesce = true;
    let every = subscription("p1", &["INVENTORY_OOS"]);
    store
        .create_subscriptions(vec![latest.clone(), every.clone()])
        .await
        .unwrap();
    assert!(
        store
            .get_subscription(latest.id)
            .await
            .unwrap()
            .is_some_and(|s| s.coalesce)
    );
    let stock = |key: &str, sku: &str| {
        let mut e = event("p1", "INVENTORY_OOS", None, Some(key));
        e.resource_key = Some(format!("sku:{sku}"));
        e
    };
    let of = |sub: SubscriptionId| {
        let store = store.clone();
        async move {
            let mut all = store
                .list_deliveries(&DeliveryFilter {
                    subscription_id: Some(sub),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap();
            all.sort_by_key(|d| d.id);
            all
        }
    };
    let (first, _) = created(store.insert_event(stock("a1", "A"), None).await.unwrap());
    let (other, _) = created(store.insert_event(stock("b1", "B"), None).await.unwrap());
    let (second, _) = created(store.insert_event(stock("a2", "A"), None).await.unwrap());
    let version = |id: EventId| {
        let store = store.clone();
        async move {
            store
                .get_event(id)
                .await
                .unwrap()
                .and_then(|e| e.resource_version)
                .expect("a version")
        }
    };
    assert!(version(first).await < version(second).await);
    let statuses =
        |all: &[switchyard_core::model::DeliveryRecord]| -> Vec<(EventId, DeliveryStatus)> {
            all.iter().map(|d| (d.event_id, d.status)).collect()
        };
    let mine = of(latest.id).await;
    assert_eq!(
        statuses(&mine),
        vec![
            (first, DeliveryStatus::Superseded),
            (other, DeliveryStatus::Pending),
            (second, DeliveryStatus::Pending),
        ]
    );
    assert!(
        mine[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(&format!("superseded by event {second}"))),
        "{:?}",
        mine[0].last_error
    );
    assert!(
        of(every.id)
            .await
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending),
        "a subscription without coalescing keeps every state"
    );

    // In flight when a newer state arrives: left to its attempt, superseded instead of retried.
    let lease = t0() + SignedDuration::from_secs(60);
    let claimed = store.claim_due(t0(), 10, lease, "n1").await.unwrap();
    let in_flight = claimed
        .iter()
        .find(|c| c.event.id == second && c.subscription.id == latest.id)
        .expect("the second state is claimed")
        .delivery
        .id;
    let (third, _) = created(store.insert_event(stock("a3", "A"), None).await.unwrap());
    let (d, _) = store.get_delivery(in_flight).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending, "in flight is left alone");
    store
        .complete_attempt(
            attempt(in_flight, t0(), false),
            DeliveryNext::RetryAt(t0() + SignedDuration::from_mins(5)),
            "n1",
            FailurePolicy::lenient(t0()),
        )
        .await
        .unwrap();
    let (d, attempts) = store.get_delivery(in_flight).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Superseded);
    assert_eq!(attempts.len(), 1, "its attempt is logged");

    // A cancel ends a leased delivery, and only its holder's.
    let newest = of(latest.id)
        .await
        .into_iter()
        .find(|d| d.event_id == third)
        .expect("the third state's delivery")
        .id;
    for c in &claimed {
        store
            .complete_attempt(
                attempt(c.delivery.id, t0(), true),
                DeliveryNext::Succeeded,
                "n1",
                FailurePolicy::lenient(t0()),
            )
            .await
            .unwrap();
    }
    let claimed = store.claim_due(t0(), 10, lease, "n1").await.unwrap();
    assert!(claimed.iter().any(|c| c.delivery.id == newest));
    let note = "cancelled by the subscription's transformation";
    assert!(
        !store
            .cancel_delivery(newest, "n2", t0(), note)
            .await
            .unwrap()
    );
    assert!(
        store
            .cancel_delivery(newest, "n1", t0(), note)
            .await
            .unwrap()
    );
    let (d, attempts) = store.get_delivery(newest).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Cancelled);
    assert_eq!(d.last_error.as_deref(), Some(note));
    assert!(attempts.is_empty(), "a cancel is no attempt");
    assert!(
        !store
            .cancel_delivery(newest, "n1", t0(), note)
            .await
            .unwrap(),
        "once"
    );
}

/// A polling subscription's deliveries wait as `polling`, are never claimed, and are read in
/// the order they were stored, page after page.
async fn a_polling_subscriptions_deliveries_wait_to_be_read_in_order(store: Arc<dyn Store>) {
    let mut polled = subscription("p1", &["PO_CREATED"]);
    polled.event_url = "poll:".into();
    let pushed = subscription("p1", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![polled.clone(), pushed.clone()])
        .await
        .unwrap();
    let mut events = Vec::new();
    for n in 0..3 {
        let (id, fanned) = created(
            store
                .insert_event(
                    event("p1", "PO_CREATED", None, Some(&format!("e{n}"))),
                    None,
                )
                .await
                .unwrap(),
        );
        assert_eq!(fanned, 2);
        events.push(id);
    }
    let claimed = store
        .claim_due(t0(), 10, t0() + SignedDuration::from_secs(60), "n1")
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        3,
        "only the pushed subscription's are claimed"
    );
    assert!(claimed.iter().all(|c| c.subscription.id == pushed.id));
    // On PostgreSQL a delivery is readable once no transaction that began before it is still
    // under way anywhere on the server (other tests' included): wait for that.
    let mut first = Vec::new();
    for _ in 0..100 {
        first = store.poll_deliveries(polled.id, None, 2).await.unwrap();
        if first.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        first.iter().map(|p| p.event.id).collect::<Vec<_>>(),
        events[..2]
    );
    assert!(
        first
            .iter()
            .all(|p| p.delivery.status == DeliveryStatus::Polling)
    );
    let rest = store
        .poll_deliveries(polled.id, first.last().map(|p| p.position), 2)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|p| p.event.id).collect::<Vec<_>>(),
        events[2..]
    );
    let after_all = store
        .poll_deliveries(polled.id, rest.last().map(|p| p.position), 2)
        .await
        .unwrap();
    assert!(after_all.is_empty());
    assert!(
        store
            .poll_deliveries(pushed.id, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a pushed subscription has nothing to poll"
    );
}

/// An event of `partner` about order `order` stating `fact`, from a webhook or a reconciliation.
fn claiming(
    partner: &str,
    order: &str,
    fact: &str,
    by_reconciliation: bool,
    key: &str,
) -> (EventRecord, switchyard_core::model::ResourceSighting) {
    let mut e = event(partner, "PO_CREATED", Some("order.created"), Some(key));
    e.resource_key = Some(format!("order:{order}"));
    let sighting = switchyard_core::model::ResourceSighting {
        marketplace: "walmart".into(),
        partner_id: partner.into(),
        resource_kind: "order".into(),
        resource_id: order.into(),
        status: Some("Created".into()),
        first_sighting_topic: None,
        claim: Some(switchyard_core::model::FactClaim {
            fact: fact.into(),
            by_reconciliation,
        }),
    };
    (e, sighting)
}

async fn an_order_fact_is_one_event_whether_a_webhook_or_a_reconciliation_states_it_first(
    store: Arc<dyn Store>,
) {
    let sub = subscription("p1", &["order.created"]);
    store.create_subscriptions(vec![sub]).await.unwrap();
    let insert = |(e, s): (EventRecord, switchyard_core::model::ResourceSighting)| {
        let store = store.clone();
        async move { store.insert_event(e, Some(s)).await.unwrap() }
    };
    // A reconciliation first: the webhook that comes later is its duplicate.
    let backfill = claiming("p1", "R-1", "order.created", true, "reconciliation:R-1");
    let backfill_id = backfill.0.id;
    let (_, fanned) = created(insert(backfill).await);
    assert_eq!(fanned, 1);
    let late = insert(claiming("p1", "R-1", "order.created", false, "wh-1")).await;
    assert_eq!(
        late,
        InsertOutcome::Duplicate {
            event_id: backfill_id
        }
    );
    // The fact is the webhook's now: the marketplace's next notification of it is its own
    // event (a webhook is never deduplicated by content), and a reconciliation's a duplicate.
    created(insert(claiming("p1", "R-1", "order.created", false, "wh-2")).await);
    assert!(matches!(
        insert(claiming(
            "p1",
            "R-1",
            "order.created",
            true,
            "reconciliation:R-1b"
        ))
        .await,
        InsertOutcome::Duplicate { .. }
    ));

    // A webhook first: a reconciliation stating the same fact is its duplicate.
    let webhook = claiming("p1", "R-2", "order.created", false, "wh-3");
    let webhook_id = webhook.0.id;
    created(insert(webhook).await);
    assert_eq!(
        insert(claiming(
            "p1",
            "R-2",
            "order.created",
            true,
            "reconciliation:R-2"
        ))
        .await,
        InsertOutcome::Duplicate {
            event_id: webhook_id
        }
    );
    // Another fact of the same order, and the same order id of another partner, are new.
    created(
        insert(claiming(
            "p1",
            "R-2",
            "order.cancelled|Cancelled",
            true,
            "reconciliation:R-2:c",
        ))
        .await,
    );
    created(
        insert(claiming(
            "p2",
            "R-2",
            "order.created",
            true,
            "reconciliation:p2:R-2",
        ))
        .await,
    );
    let events = store
        .list_events(&EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 5, "R-1 twice, R-2 and its cancel, p2's R-2");
}

fn run_of(
    source: SourceId,
    started_at: Timestamp,
    error: bool,
) -> switchyard_core::model::ReconcileRun {
    switchyard_core::model::ReconcileRun {
        run_id: Uuid::now_v7(),
        source_id: source,
        partners: vec!["p1".into()],
        marketplace: "walmart".into(),
        trigger: "schedule".into(),
        started_at,
        finished_at: started_at,
        since: started_at - SignedDuration::from_hours(24),
        until: started_at - SignedDuration::from_mins(3),
        orders_checked: 4,
        missing: 1,
        backfilled: vec![switchyard_core::model::Backfilled {
            event_id: EventId::new(),
            resource_id: "R-1".into(),
            topic: Some("order.created".into()),
        }],
        errors: if error {
            vec![switchyard_core::model::RunError {
                code: "unauthorized".into(),
                message: "credentials refused: HTTP 401".into(),
            }]
        } else {
            Vec::new()
        },
    }
}

async fn a_sources_reconciliation_is_leased_once_and_a_failed_run_keeps_the_cursor(
    store: Arc<dyn Store>,
) {
    let source = source(&["p1"]);
    store.create_source(source.clone()).await.unwrap();
    let id = source.id;
    let t = t0();
    let lease = SignedDuration::from_mins(15);
    let first = store
        .lease_reconcile(id, "a", t, t + lease, false)
        .await
        .unwrap();
    assert_eq!(
        first.map(|l| l.cursor),
        Some(None),
        "never run: due, no cursor"
    );
    // Held: not even a manual run takes it.
    assert!(
        store
            .lease_reconcile(id, "b", t, t + lease, true)
            .await
            .unwrap()
            .is_none()
    );
    let cursor = t - SignedDuration::from_mins(3);
    let next = t + SignedDuration::from_mins(15);
    let first_run = run_of(id, t, false);
    store
        .finish_reconcile(first_run.clone(), "a", Some(cursor), next)
        .await
        .unwrap();
    // Not due yet for the schedule; a manual run may.
    let soon = t + SignedDuration::from_mins(1);
    assert!(
        store
            .lease_reconcile(id, "b", soon, soon + lease, false)
            .await
            .unwrap()
            .is_none()
    );
    let manual = store
        .lease_reconcile(id, "b", soon, soon + lease, true)
        .await
        .unwrap();
    assert_eq!(manual.map(|l| l.cursor), Some(Some(cursor)));
    // A failed run keeps the cursor.
    store
        .finish_reconcile(run_of(id, soon, true), "b", None, next)
        .await
        .unwrap();
    let due = next + SignedDuration::from_secs(1);
    let again = store
        .lease_reconcile(id, "a", due, due + lease, false)
        .await
        .unwrap();
    assert_eq!(again.map(|l| l.cursor), Some(Some(cursor)));
    // A lease that ran out (its node died) is taken over.
    let later = due + lease + SignedDuration::from_secs(1);
    let taken = store
        .lease_reconcile(id, "b", later, later + lease, false)
        .await
        .unwrap();
    assert_eq!(taken.map(|l| l.cursor), Some(Some(cursor)));

    let runs = store.list_reconcile_runs(Some(id), t, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].started_at, soon, "newest first");
    assert_eq!(runs[0].errors.len(), 1);
    assert_eq!(runs[1], first_run, "read back as written");
    assert_eq!(
        store
            .list_reconcile_runs(None, soon, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_reconcile_runs(Some(SourceId::new()), t, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reconcile_settings_round_trip_with_the_source(store: Arc<dyn Store>) {
    let mut with = source(&["p1"]);
    with.reconcile = Some(switchyard_core::model::ReconcileSettings {
        api_base_url: Some("http://127.0.0.1:9/".into()),
        credentials_sealed: "sy1:sealed-credentials".into(),
        options: serde_json::json!({"shopId": "1"}),
        interval_seconds: 900,
        lookback_seconds: 86_400,
    });
    store.create_source(with.clone()).await.unwrap();
    assert_eq!(store.get_source(with.id).await.unwrap(), Some(with.clone()));
    let mut without = with.clone();
    without.reconcile = None;
    assert!(store.update_source(without.clone()).await.unwrap());
    assert_eq!(store.get_source(with.id).await.unwrap(), Some(without));
}

/// PostgreSQL sends a batch's COMMIT right behind its last statements, before their answers.
/// When one of those statements fails, the server turns that COMMIT into a rollback: then no
/// caller may be told its write was stored unless it was (the batch is written again, one
/// operation at a time), and the refused one leaves nothing behind. A trigger refuses the
/// deliveries of one partner's events, and the attempts of one latency, to make those
/// statements fail inside batches of writes that go in together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn postgres_a_batch_whose_last_statement_fails_acknowledges_only_what_it_stored() {
    let fresh = postgres_store().await;
    let store = fresh.store.clone();
    let schema = fresh._schema.as_ref().expect("a PostgreSQL schema");
    let good = subscription("p1", &["PO_CREATED"]);
    let refused = subscription("p2", &["PO_CREATED"]);
    store
        .create_subscriptions(vec![good.clone(), refused.clone()])
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let s = &schema.name;
    client
        .batch_execute(&format!(
            "CREATE FUNCTION {s}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               -- Nested: PL/pgSQL may evaluate both sides of an OR, and each table has
               -- only its own columns.
               IF TG_TABLE_NAME = 'deliveries' THEN
                 IF NEW.subscription_id IN
                      (SELECT id FROM {s}.subscriptions WHERE partner_id = 'p2') THEN
                   RAISE EXCEPTION 'refused by the test';
                 END IF;
               ELSIF NEW.latency_ms = 999 THEN
                 RAISE EXCEPTION 'refused by the test';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON {s}.deliveries
               FOR EACH ROW EXECUTE FUNCTION {s}.refuse();
             CREATE TRIGGER refuse BEFORE INSERT ON {s}.attempts
               FOR EACH ROW EXECUTE FUNCTION {s}.refuse();"
        ))
        .await
        .expect("triggers");

    // Events go in together, every eighth to the partner whose deliveries are refused.
    let mut writes = Vec::new();
    for i in 0..48 {
        let partner = if i % 8 == 0 { "p2" } else { "p1" };
        let e = event(partner, "PO_CREATED", None, Some(&format!("key-{i}")));
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            let outcome = store.insert_event(e.clone(), None).await;
            (e, outcome)
        }));
    }
    let mut stored = Vec::new();
    for w in writes {
        let (e, outcome) = w.await.unwrap();
        match (e.partner_id.0.as_str(), outcome) {
            ("p1", Ok(outcome)) => {
                assert_eq!(created(outcome), (e.id, 1));
                stored.push(e.id);
            }
            ("p2", Err(_)) => {
                assert_eq!(store.get_event(e.id).await.unwrap(), None, "nothing left");
            }
            (partner, outcome) => panic!("{partner}: unexpected {outcome:?}"),
        }
    }
    assert_eq!(stored.len(), 42);
    for id in &stored {
        assert!(
            store.get_event(*id).await.unwrap().is_some(),
            "acknowledged, so stored"
        );
    }

    // Attempts recorded together, one of them refused: the others are kept and move their
    // deliveries on; the refused one's delivery is still leased, pending, untouched.
    let lease = t0() + SignedDuration::from_secs(60);
    let claimed = store.claim_due(t0(), 100, lease, "n1").await.unwrap();
    assert_eq!(claimed.len(), 42);
    let mut attempts = Vec::new();
    for (i, c) in claimed.iter().enumerate() {
        let mut a = attempt(c.delivery.id, t0(), true);
        if i == 5 {
            a.latency_ms = 999;
        }
        let store = store.clone();
        attempts.push(tokio::spawn(async move {
            let id = a.delivery_id;
            let done = store
                .complete_attempt(
                    a,
                    DeliveryNext::Succeeded,
                    "n1",
                    FailurePolicy::lenient(t0()),
                )
                .await;
            (id, i == 5, done)
        }));
    }
    for a in attempts {
        let (delivery, refused, done) = a.await.unwrap();
        let (back, logged) = store
            .get_delivery(delivery)
            .await
            .unwrap()
            .expect("delivery");
        if refused {
            assert!(done.is_err());
            assert_eq!((back.status, back.attempts), (DeliveryStatus::Pending, 0));
            assert!(logged.is_empty());
        } else {
            done.expect("recorded");
            assert_eq!((back.status, back.attempts), (DeliveryStatus::Succeeded, 1));
            assert_eq!(logged.len(), 1);
        }
    }
}
