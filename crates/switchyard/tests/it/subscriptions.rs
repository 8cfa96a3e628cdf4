//! The `/v3/webhooks` API as a Walmart integrator uses it: shapes, PATCH, masking, scopes,
//! tenant isolation, publishing and its idempotency.

use serde_json::json;

use switchyard_core::model::Access;

use crate::helpers::*;

fn offer(partner: &str) -> serde_json::Value {
    json!({
        "eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM",
        "eventUrl": "https://example.com/hook", "partnerId": partner,
    })
}

#[tokio::test]
async fn management_calls_need_a_valid_token() {
    let app = spawn_app().await;
    for token in ["", "sy.forged.token", "not-even-close"] {
        let answer = app.get("/v3/webhooks/subscriptions", token).await;
        assert_eq!(answer.status, 401, "token {token:?}");
        assert!(answer.body["error"]["code"].is_string());
    }
    // WM_SEC.ACCESS_TOKEN works like Authorization: Bearer.
    let token = app.admin_token().await;
    let answer = app
        .http
        .get(format!("{}/v3/webhooks/subscriptions", app.base))
        .header("WM_SEC.ACCESS_TOKEN", token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // Tokens expire after 900 seconds.
    let token = app.admin_token().await;
    app.advance(jiff::SignedDuration::from_secs(901));
    assert_eq!(
        app.get("/v3/webhooks/subscriptions", &token).await.status,
        401
    );
    // Wrong credentials and grants.
    let bad = app
        .http
        .post(format!("{}/v3/token", app.base))
        .basic_auth(ADMIN_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let bad = app
        .http
        .post(format!("{}/v3/token", app.base))
        .form(&[
            ("grant_type", "password"),
            ("client_id", ADMIN_ID),
            ("client_secret", ADMIN_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let good = app
        .http
        .post(format!("{}/v3/token", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN_ID),
            ("client_secret", ADMIN_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let body: serde_json::Value = good.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
}

#[tokio::test]
async fn event_types_list_the_catalog_without_any_scope() {
    let app = spawn_app().await;
    let token = app.partner_client("nobody", &["p9"], &[]).await;
    let answer = app.get("/v3/webhooks/eventTypes", &token).await;
    assert_eq!(answer.status, 200);
    let events = answer.body["events"].as_array().unwrap();
    let find = |t: &str| events.iter().find(|e| e["eventType"] == t).cloned();
    let spn = find("SELLER_PERFORMANCE_NOTIFICATIONS").expect("listed");
    assert_eq!(spn["resourceName"], "FEEDS");
    assert_eq!(spn["eventVersion"], "V1");
    for t in [
        "OFFER_PUBLISHED",
        "BUY_BOX_CHANGED",
        "INVENTORY_OOS",
        "PO_CREATED",
        "ORDER_UPDATES",
        "REPORT_STATUS",
        "onOrderCreated",
        "onProductQcStatusChanged",
        "order.created",
        "inventory.low",
    ] {
        let e = find(t).unwrap_or_else(|| panic!("{t} listed"));
        assert!(e["description"].is_string() && e["schema"].is_object());
    }
}

#[tokio::test]
async fn create_list_patch_mask_and_delete_in_walmarts_shapes() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let created = app
        .post("/v3/webhooks/subscriptions", &token, json!({"events": [
            {"eventType": "OFFER_UNPUBLISHED", "eventVersion": "V1", "resourceName": "ITEM",
             "eventUrl": "https://example.com/a", "partnerId": "p1", "headers": {"content-type": "application/json"},
             "authDetails": {"authMethod": "BASIC_AUTH", "userName": "abc", "password": "test-password"}},
            {"eventType": "PO_CREATED", "resourceName": "ORDER", "eventUrl": "https://example.com/b",
             "partnerId": "p1", "status": "INACTIVE"},
        ]}))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let events = created.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for key in [
        "eventType",
        "subscriptionId",
        "partnerId",
        "eventVersion",
        "resourceName",
        "status",
    ] {
        assert!(events[0].get(key).is_some(), "{key} in the create answer");
    }
    assert!(
        events[0]["signingSecret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(events[1]["status"], "INACTIVE");
    let id = events[0]["subscriptionId"].as_str().unwrap();

    // Reads mask credentials and never show the signing secret again.
    let one = app
        .get(&format!("/v3/webhooks/subscriptions/{id}"), &token)
        .await;
    assert_eq!(one.body["authDetails"]["password"], "********");
    assert_eq!(one.body["authDetails"]["userName"], "abc");
    assert!(one.body.get("signingSecret").is_none());
    let text = one.body.to_string();
    assert!(!text.contains("test-password"));

    // Filters.
    let by_status = app
        .get("/v3/webhooks/subscriptions?status=INACTIVE", &token)
        .await;
    assert_eq!(by_status.body["events"].as_array().unwrap().len(), 1);
    assert_eq!(by_status.body["events"][0]["eventType"], "PO_CREATED");
    let by_type = app
        .get(
            "/v3/webhooks/subscriptions?eventType=OFFER_UNPUBLISHED&resourceName=ITEM",
            &token,
        )
        .await;
    assert_eq!(by_type.body["events"].as_array().unwrap().len(), 1);
    let by_id = app
        .get(
            &format!("/v3/webhooks/subscriptions?subscriptionId={id}"),
            &token,
        )
        .await;
    assert_eq!(by_id.body["events"][0]["subscriptionId"], id);
    assert_eq!(
        app.get("/v3/webhooks/subscriptions?status=PAUSED", &token)
            .await
            .status,
        400
    );

    // PATCH changes only what it names and answers the full object.
    let patched = app
        .patch(
            &format!("/v3/webhooks/subscriptions/{id}"),
            &token,
            json!({"status": "INACTIVE"}),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["status"], "INACTIVE");
    assert_eq!(patched.body["eventUrl"], "https://example.com/a");
    assert_eq!(
        patched.body["headers"],
        json!({"content-type": "application/json"})
    );
    assert_eq!(patched.body["authDetails"]["password"], "********");
    let patched = app
        .patch(&format!("/v3/webhooks/subscriptions/{id}"), &token, json!({
            "eventUrl": "https://example.com/moved",
            "authDetails": {"authMethod": "BASIC_AUTH", "userName": "abc2", "password": "********"},
        }))
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["eventUrl"], "https://example.com/moved");
    assert_eq!(patched.body["status"], "INACTIVE");
    assert_eq!(patched.body["authDetails"]["userName"], "abc2");
    // Sending back what was read changes nothing.
    let echoed = app
        .patch(
            &format!("/v3/webhooks/subscriptions/{id}"),
            &token,
            patched.body.clone(),
        )
        .await;
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    // The masked password kept the stored one: check the sealed value still opens to it.
    let stored = app
        .state
        .store
        .unscoped()
        .get_subscription(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let auth = app
        .state
        .secrets
        .open(stored.auth_sealed.as_deref().unwrap())
        .unwrap();
    assert!(auth.contains("\"password\":\"test-password\"") && auth.contains("abc2"));
    // Wrong PATCHes.
    for (body, field) in [
        (json!({"status": "PAUSED"}), "status"),
        (json!({"eventUrl": "ftp://example.com"}), "eventUrl"),
        (json!({"eventType": "PO_CREATED"}), "eventType"),
        (
            json!({"authDetails": {"authMethod": "OAUTH", "clientId": "x"}}),
            "authDetails",
        ),
        (json!({"nonsense": 1}), ""),
    ] {
        let answer = app
            .patch(
                &format!("/v3/webhooks/subscriptions/{id}"),
                &token,
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, 400, "{body}");
        assert!(answer.body["error"]["code"].is_string());
        if !field.is_empty() {
            assert!(
                answer.body["error"]["field"]
                    .as_str()
                    .unwrap_or("")
                    .contains(field),
                "{}",
                answer.body
            );
        }
    }

    // Secrets are not stored in the clear.
    let db = std::fs::read(app.dir.path().join("switchyard.db")).unwrap_or_default();
    let wal = std::fs::read(app.dir.path().join("switchyard.db-wal")).unwrap_or_default();
    let secret = events[0]["signingSecret"].as_str().unwrap();
    for needle in ["test-password", secret] {
        let found = [&db, &wal]
            .iter()
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()));
        assert!(!found, "{needle} must not be in the database file");
    }

    let deleted = app
        .delete(&format!("/v3/webhooks/subscriptions/{id}"), &token)
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.body,
        json!({"subscriptionId": id, "message": "Successfully deleted subscription"})
    );
    assert_eq!(
        app.get(&format!("/v3/webhooks/subscriptions/{id}"), &token)
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete(&format!("/v3/webhooks/subscriptions/{id}"), &token)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let cases = [
        (
            json!({"eventType": "NOPE", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1"}),
            "unknown_event_type",
            "events[0].eventType",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ORDER", "eventUrl": "https://x.io", "partnerId": "p1"}),
            "resource_mismatch",
            "events[0].resourceName",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "eventUrl": "https://x.io", "partnerId": "p1"}),
            "invalid_field",
            "events[0].resourceName",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "javascript:alert(1)", "partnerId": "p1"}),
            "invalid_field",
            "events[0].eventUrl",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1", "status": "ON"}),
            "invalid_field",
            "events[0].status",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1", "eventVersion": "V9"}),
            "unknown_event_version",
            "events[0].eventVersion",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1", "authDetails": {"authMethod": "HMAC"}}),
            "invalid_field",
            "events[0].authDetails",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1", "authDetails": {"authMethod": "BASIC_AUTH", "userName": "u"}}),
            "invalid_field",
            "events[0].authDetails",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1", "headers": {"bad header": "v"}}),
            "invalid_field",
            "events[0].headers",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1", "retryPolicy": "hourly"}),
            "invalid_field",
            "events[0].retryPolicy",
        ),
        (
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "p1"}),
            "invalid_field",
            "events[0]",
        ),
    ];
    for (event, code, field) in cases {
        let answer = app
            .post(
                "/v3/webhooks/subscriptions",
                &token,
                json!({"events": [event]}),
            )
            .await;
        assert_eq!(answer.status, 400, "{event}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["code"], code,
            "{event}: {}",
            answer.body
        );
        assert!(
            answer.body["error"]["field"]
                .as_str()
                .unwrap_or("")
                .starts_with(field),
            "{event}: {}",
            answer.body
        );
        assert!(answer.body["error"]["message"].is_string());
    }
    // Nothing of a refused batch is stored, even its valid entries.
    let batch = app
        .post("/v3/webhooks/subscriptions", &token, json!({"events": [
            offer("p1"),
            {"eventType": "NOPE", "resourceName": "ITEM", "eventUrl": "https://x.io", "partnerId": "p1"},
        ]}))
        .await;
    assert_eq!(batch.status, 400);
    assert_eq!(
        app.get("/v3/webhooks/subscriptions", &token).await.body["events"],
        json!([])
    );
    // Walmart's schema spelling `event` is accepted too.
    let alias = app
        .post(
            "/v3/webhooks/subscriptions",
            &token,
            json!({"event": [offer("p1")]}),
        )
        .await;
    assert_eq!(alias.status, 200);
}

#[tokio::test]
async fn subscribing_needs_a_scope_other_than_no_access_but_reading_does_not() {
    let app = spawn_app().await;
    let token = app
        .partner_client(
            "seller",
            &["p1"],
            &[("ITEM", Access::NoAccess), ("ORDER", Access::ViewOnly)],
        )
        .await;
    let refused = app
        .post(
            "/v3/webhooks/subscriptions",
            &token,
            json!({"events": [offer("p1")]}),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"]["code"], "insufficient_scope");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ITEM")
    );
    let allowed = app
        .post("/v3/webhooks/subscriptions", &token, json!({"events": [
            {"eventType": "PO_CREATED", "resourceName": "ORDER", "eventUrl": "https://example.com/o"}
        ]}))
        .await;
    assert_eq!(
        allowed.status, 200,
        "a single-partner client needs no partnerId: {}",
        allowed.body
    );
    assert_eq!(allowed.body["events"][0]["partnerId"], "p1");
    assert_eq!(app.get("/v3/webhooks/eventTypes", &token).await.status, 200);
    assert_eq!(
        app.get("/v3/webhooks/subscriptions", &token).await.status,
        200
    );
    // A partner it does not manage.
    let other = app.post("/v3/webhooks/subscriptions", &token, json!({"events": [
        {"eventType": "PO_CREATED", "resourceName": "ORDER", "eventUrl": "https://example.com/o", "partnerId": "p2"}
    ]})).await;
    assert_eq!(other.status, 403);
    assert_eq!(other.body["error"]["code"], "partner_not_managed");
}

#[tokio::test]
async fn a_client_never_sees_or_changes_another_clients_objects() {
    let app = spawn_app().await;
    let a = app
        .partner_client(
            "client-a",
            &["pa"],
            &[("ITEM", Access::FullAccess), ("ORDER", Access::FullAccess)],
        )
        .await;
    let b = app
        .partner_client("client-b", &["pb"], &[("ITEM", Access::FullAccess)])
        .await;
    let (sub_b, _) = app.subscribe(&b, offer("pb")).await;
    let event_b = app.publish(&b, "pb", json!({"n": 1})).await;
    let delivery_b = app.deliveries_of(&b, &sub_b).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        app.get("/v3/webhooks/subscriptions", &a).await.body["events"],
        json!([])
    );
    assert_eq!(
        app.get(
            &format!("/v3/webhooks/subscriptions?subscriptionId={sub_b}"),
            &a
        )
        .await
        .body["events"],
        json!([])
    );
    for (method, path, body) in [
        ("GET", format!("/v3/webhooks/subscriptions/{sub_b}"), None),
        (
            "PATCH",
            format!("/v3/webhooks/subscriptions/{sub_b}"),
            Some(json!({"status": "INACTIVE"})),
        ),
        (
            "DELETE",
            format!("/v3/webhooks/subscriptions/{sub_b}"),
            None,
        ),
        ("GET", format!("/api/v1/subscriptions/{sub_b}/health"), None),
        (
            "POST",
            format!("/api/v1/subscriptions/{sub_b}/replay"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (
            "POST",
            format!("/api/v1/subscriptions/{sub_b}/rotate-secret"),
            Some(json!({})),
        ),
        ("GET", format!("/api/v1/deliveries/{delivery_b}"), None),
        (
            "POST",
            format!("/api/v1/deliveries/{delivery_b}/retry"),
            Some(json!({})),
        ),
        ("GET", format!("/api/v1/events/{event_b}"), None),
        (
            "POST",
            format!("/api/v1/events/{event_b}/outcome"),
            Some(json!({"status": "processed"})),
        ),
    ] {
        let answer = app.call(method.parse().unwrap(), &path, &a, body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.body);
    }
    // Naming B's partner is refused outright.
    for (path, body) in [
        (
            "/api/v1/orders/facts",
            json!({"partnerId": "pb", "facts": []}),
        ),
        (
            "/api/v1/performance/run",
            json!({"partnerId": "pb", "notificationType": "ALARMS"}),
        ),
        (
            "/v3/webhooks/test",
            json!({"partnerId": "pb", "eventType": "OFFER_UNPUBLISHED",
                   "resourceName": "ITEM", "eventUrl": "https://example.com/hook"}),
        ),
    ] {
        let answer = app.post(path, &a, body).await;
        assert_eq!(answer.status, 403, "POST {path}: {}", answer.body);
    }
    assert_eq!(
        app.get("/api/v1/events", &a).await.body["events"],
        json!([])
    );
    // B's refused requests are B's: A lists none and counts none.
    let source_b = app
        .post(
            "/api/v1/sources",
            &b,
            json!({"kind": "walmart", "partners": ["pb"], "secrets": [{"id": "1", "value": "s"}]}),
        )
        .await;
    assert_eq!(source_b.status, 201, "{}", source_b.body);
    let forged = app
        .http
        .post(source_b.body["ingestUrl"].as_str().expect("ingestUrl"))
        .body("{}")
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 401);
    assert_eq!(
        app.get("/api/v1/rejections", &b).await.body["rejections"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        app.get("/api/v1/rejections", &a).await.body["rejections"],
        json!([])
    );
    let summary = app.get("/api/v1/rejections/summary", &a).await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert!(
        !summary.body.to_string().contains("missing_signature"),
        "{}",
        summary.body
    );
    let source_id = source_b.body["sourceId"].as_str().unwrap_or_default();
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"name": "mine now"}));
        let answer = app
            .call(
                method.parse().unwrap(),
                &format!("/api/v1/sources/{source_id}"),
                &a,
                body,
            )
            .await;
        assert_eq!(answer.status, 404, "{method} source: {}", answer.body);
    }
    let listed = app.get("/api/v1/deliveries", &a).await;
    assert_eq!(listed.body["deliveries"], json!([]));
    let publish = app
        .post(
            "/api/v1/events",
            &a,
            json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "pb", "payload": {}}),
        )
        .await;
    assert_eq!(publish.status, 403);
    // B's subscription is untouched, and B still sees it.
    let still = app
        .get(&format!("/v3/webhooks/subscriptions/{sub_b}"), &b)
        .await;
    assert_eq!(still.status, 200);
    assert_eq!(still.body["status"], "ACTIVE");
    // The admin sees both tenants.
    let admin = app.admin_token().await;
    assert_eq!(
        app.get(&format!("/v3/webhooks/subscriptions/{sub_b}"), &admin)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn publishing_is_idempotent_and_validated_against_the_schema() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &token,
            json!({
                "eventType": "SELLER_PERFORMANCE_NOTIFICATIONS", "resourceName": "FEEDS",
                "eventUrl": "https://example.com/perf", "partnerId": "p1", "status": "INACTIVE",
            }),
        )
        .await;
    let _ = sub;
    let alarms = switchyard_core::catalog::seller_performance_alarms_sample();
    let report = switchyard_core::catalog::seller_performance_report_sample();
    let publish = |payload: serde_json::Value, event_id: Option<&str>| {
        let mut body = json!({"eventType": "SELLER_PERFORMANCE_NOTIFICATIONS", "partnerId": "p1", "payload": payload});
        if let Some(id) = event_id {
            body["eventId"] = json!(id);
        }
        body
    };
    let first = app
        .post(
            "/api/v1/events",
            &token,
            publish(alarms.clone(), Some("evt-1")),
        )
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = app
        .post(
            "/api/v1/events",
            &token,
            publish(alarms.clone(), Some("evt-1")),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "duplicate");
    assert_eq!(again.body["eventId"], first.body["eventId"]);
    assert_eq!(
        app.post("/api/v1/events", &token, publish(report.clone(), None))
            .await
            .status,
        202
    );

    // Idempotency-Key works like eventId.
    let keyed = |key: &str| {
        app.http
            .post(format!("{}/api/v1/events", app.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&publish(report.clone(), None))
            .send()
    };
    let k1 = keyed("key-1").await.unwrap();
    assert_eq!(k1.status(), 202);
    let k2 = keyed("key-1").await.unwrap();
    assert_eq!(k2.status(), 200);

    let mut bad = report.clone();
    bad["enNotification"]["metrics"][0]["overallTrend"] = json!("SIDEWAYS");
    let refused = app.post("/api/v1/events", &token, publish(bad, None)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"]["code"], "schema_mismatch");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overallTrend")
    );
    let unknown = app
        .post(
            "/api/v1/events",
            &token,
            json!({"eventType": "X", "partnerId": "p1", "payload": {}}),
        )
        .await;
    assert_eq!(unknown.body["error"]["code"], "unknown_event_type");
    let event_id = first.body["eventId"].as_str().unwrap();
    let shown = app.get(&format!("/api/v1/events/{event_id}"), &token).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["publicEventId"], "evt-1");
    assert_eq!(shown.body["payload"], alarms);
}

#[tokio::test]
async fn the_token_endpoint_slows_down_after_repeated_wrong_secrets() {
    let app = spawn_app().await;
    let attempt = |secret: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/v3/token", app.base))
                .basic_auth(ADMIN_ID, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token request")
        }
    };
    // Five wrong secrets are only refused; the sixth earns a refusal of the id itself.
    for _ in 0..6 {
        assert_eq!(attempt("wrong").await.status(), 401);
    }
    // Now even the right secret is refused, with a clear error and when to come back.
    let refused = attempt(ADMIN_SECRET).await;
    assert_eq!(refused.status(), 429);
    let wait: i64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_failures");
    // Another client id is not slowed by this one's failures.
    assert_eq!(
        app.http
            .post(format!("{}/v3/token", app.base))
            .basic_auth("someone-else", Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request")
            .status(),
        401
    );
    // Each further failure doubles the wait.
    app.advance(jiff::SignedDuration::from_secs(wait));
    assert_eq!(attempt("wrong").await.status(), 401);
    let longer: i64 = attempt(ADMIN_SECRET).await.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(longer > wait, "{longer} after {wait}");
    // Once the wait is over, the right secret works and clears the count.
    app.advance(jiff::SignedDuration::from_secs(longer));
    app.token(ADMIN_ID, ADMIN_SECRET).await;
    assert_eq!(attempt("wrong").await.status(), 401);
    app.token(ADMIN_ID, ADMIN_SECRET).await;
}
