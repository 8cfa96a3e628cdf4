//! The inbound gateway as marketplaces and operators see it: sources, verified and refused
//! webhooks, dedup, normalization onto topics, and the failures dashboard's data.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use switchyard_marketplaces::{Kind, SignRequest, SignedRequest};

use crate::helpers::*;

fn now_of(app: &TestApp) -> Timestamp {
    use switchyard_core::Clock;
    app.clock.now()
}

#[tokio::test]
async fn the_same_order_from_three_marketplaces_and_a_retry_reaches_an_order_created_subscriber_three_times()
 {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let token = app.admin_token().await;
    let (walmart, walmart_url) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "walmart-secret"}],
    })).await;
    let (_, tiktok_url) = source(&app, &token, json!({
        "kind": "tiktok", "partners": ["seller-1"], "secret": "tiktok-app-secret", "options": {"appKey": "app-key"},
    })).await;
    let (_, sellercenter_url) = source(
        &app,
        &token,
        json!({"kind": "sellercenter", "partners": ["seller-1"]}),
    )
    .await;
    assert!(walmart_url.ends_with(&format!("/ingest/{walmart}")));
    let sellercenter_token = sellercenter_url.rsplit('/').next().unwrap().to_string();
    let (sub, _) = app.subscribe(&token, json!({
        "eventType": "order.created", "resourceName": "ORDER", "eventUrl": sink.hook_url(), "partnerId": "seller-1",
    })).await;

    let now = now_of(&app);
    let walmart_po = sign(
        Kind::Walmart,
        "walmart-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-1",
        "wm-evt-1",
        now,
    );
    let first = send(&app, &walmart_url, &walmart_po).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["status"], "accepted");
    // Walmart retries the same event: acknowledged as a duplicate, nothing new.
    let retry = send(&app, &walmart_url, &walmart_po).await;
    assert_eq!(retry.status, 200);
    assert_eq!(
        retry.body,
        json!({"status": "duplicate", "eventId": first.body["eventId"]})
    );

    let tiktok = sign(
        Kind::Tiktok,
        "tiktok-app-secret",
        json!({"appKey": "app-key", "orderStatus": "AWAITING_SHIPMENT"}),
        "1",
        "TT-1",
        "tt-1",
        now,
    );
    assert_eq!(send(&app, &tiktok_url, &tiktok).await.status, 200);
    // TikTok's next status change for the same order is an update, not a creation.
    let tiktok_later = sign(
        Kind::Tiktok,
        "tiktok-app-secret",
        json!({"appKey": "app-key", "orderStatus": "IN_TRANSIT"}),
        "1",
        "TT-1",
        "tt-2",
        now,
    );
    assert_eq!(send(&app, &tiktok_url, &tiktok_later).await.status, 200);

    let mut sellercenter = sign(
        Kind::Sellercenter,
        &sellercenter_token,
        json!({}),
        "onOrderCreated",
        "190",
        "sc-1",
        now,
    );
    // Sent to the URL as registered, which already carries the token.
    sellercenter.url_suffix.clear();
    let answer = send(&app, &sellercenter_url, &sellercenter).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    eventually("three order.created deliveries", || async {
        sink.hook_count() >= 3
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.hook_count(), 3, "exactly three");
    let mut marketplaces: Vec<String> = sink
        .hooks()
        .iter()
        .map(|h| {
            let body = h.json();
            assert_eq!(body["source"]["eventType"], "order.created");
            assert_eq!(body["payload"]["partnerId"], "seller-1");
            assert_eq!(body["payload"]["resource"]["type"], "order");
            assert!(body["payload"]["native"].is_object());
            body["payload"]["marketplace"].as_str().unwrap().to_string()
        })
        .collect();
    marketplaces.sort();
    assert_eq!(marketplaces, vec!["sellercenter", "tiktok", "walmart"]);
    assert_eq!(app.deliveries_of(&token, &sub).await.len(), 3);

    // What arrived is there to see: raw body byte for byte, normalized form, deliveries.
    let event_id = first.body["eventId"].as_str().unwrap();
    let event = app.get(&format!("/api/v1/events/{event_id}"), &token).await;
    assert_eq!(event.status, 200);
    assert_eq!(
        event.body["raw"]["body"].as_str().unwrap().as_bytes(),
        &walmart_po.body[..]
    );
    assert_eq!(event.body["topic"], "order.created");
    assert_eq!(event.body["normalized"]["nativeEventType"], "PO_CREATED");
    assert_eq!(event.body["deliveries"].as_array().unwrap().len(), 1);
    let tiktok_events = app.get("/api/v1/events?marketplace=tiktok", &token).await;
    let topics: Vec<&str> = tiktok_events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["topic"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(topics, vec!["order.updated", "order.created"]);
    let created = app
        .get(
            "/api/v1/events?topic=order.created&partnerId=seller-1",
            &token,
        )
        .await;
    assert_eq!(created.body["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn refused_requests_get_json_errors_are_recorded_and_store_nothing() {
    let app = spawn_app_with(|s| s.max_body_bytes = 16 * 1024).await;
    let token = app.admin_token().await;
    let (walmart, url) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "walmart-secret"}],
    })).await;
    let now = now_of(&app);
    let good = sign(
        Kind::Walmart,
        "walmart-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-9",
        "evt-9",
        now,
    );

    let mut tampered = good.clone();
    tampered.body = String::from_utf8(good.body.clone())
        .unwrap()
        .replace("PO-9", "PO-8")
        .into_bytes();
    let wrong_secret = sign(
        Kind::Walmart,
        "not-the-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-9",
        "evt-9",
        now,
    );
    let stale = sign(
        Kind::Walmart,
        "walmart-secret",
        json!({"keyVersion": "1"}),
        "PO_CREATED",
        "PO-9",
        "evt-9",
        now - SignedDuration::from_mins(10),
    );
    let mut unsigned = good.clone();
    unsigned
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("WM_SEC.AUTH_SIGNATURE"));
    let other_partner = {
        let mut body: Value = serde_json::from_slice(&good.body).unwrap();
        body["payload"]["partnerId"] = json!("seller-2");
        sign_body(good.clone(), body, "walmart-secret")
    };
    let malformed = sign_raw(good.clone(), b"{not json".to_vec(), "walmart-secret");
    let mut huge = good.clone();
    huge.body = vec![b' '; 20 * 1024];

    for (name, request, status, code) in [
        ("tampered", &tampered, 401, "signature_mismatch"),
        ("wrong secret", &wrong_secret, 401, "signature_mismatch"),
        ("stale", &stale, 401, "stale_timestamp"),
        ("unsigned", &unsigned, 401, "missing_signature"),
        ("other partner", &other_partner, 403, "unknown_partner"),
        ("malformed", &malformed, 400, "malformed_body"),
        ("huge", &huge, 413, "too_large"),
    ] {
        let answer = send(&app, &url, request).await;
        assert_eq!(answer.status, status, "{name}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], code, "{name}");
    }
    let unknown = send(
        &app,
        &format!("{}/ingest/00000000-0000-0000-0000-000000000000", app.base),
        &good,
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], "unknown_source");
    let junk = send(&app, &format!("{}/ingest/not-a-source", app.base), &good).await;
    assert_eq!(junk.status, 404);

    // Nothing was stored; every refusal was recorded without the body or a secret.
    assert_eq!(
        app.get("/api/v1/events", &token).await.body["events"],
        json!([])
    );
    let rejections = app.get("/api/v1/rejections?limit=100", &token).await;
    let rows = rejections.body["rejections"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    for row in rows {
        assert_eq!(row["bodySha256"].as_str().unwrap().len(), 64);
        assert!(row["remoteAddr"].as_str().unwrap().starts_with("127.0.0.1"));
        assert!(!row.to_string().contains("walmart-secret"));
        assert!(!row.to_string().contains("PO-9"));
    }
    let mismatches = app
        .get(
            &format!("/api/v1/rejections?sourceId={walmart}&reason=signature_mismatch"),
            &token,
        )
        .await;
    assert_eq!(mismatches.body["rejections"].as_array().unwrap().len(), 2);
    let summary = app.get("/api/v1/rejections/summary", &token).await;
    assert_eq!(summary.body["total"], 9);
    assert_eq!(
        summary.body["counts"][0],
        json!({"sourceId": walmart, "reason": "signature_mismatch", "count": 2})
    );

    // And the real one still goes through.
    assert_eq!(send(&app, &url, &good).await.body["status"], "accepted");
}

/// Re-signs a Walmart request over a changed body (for refusals that are not about the MAC).
fn sign_body(request: SignedRequest, body: Value, secret: &str) -> SignedRequest {
    sign_raw(request, serde_json::to_vec(&body).unwrap(), secret)
}

fn sign_raw(mut request: SignedRequest, body: Vec<u8>, secret: &str) -> SignedRequest {
    let timestamp = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("WM_SEC.TIMESTAMP"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let signature = switchyard_core::signatures::walmart::sign(secret, &timestamp, &body);
    for (name, value) in &mut request.headers {
        if name.eq_ignore_ascii_case("WM_SEC.AUTH_SIGNATURE") {
            *value = signature.clone();
        }
    }
    request.body = body;
    request
}

#[tokio::test]
async fn sources_are_write_only_for_secrets_and_isolated_between_clients() {
    let app = spawn_app().await;
    let a = app.partner_client("client-a", &["pa"], &[]).await;
    let b = app.partner_client("client-b", &["pb"], &[]).await;
    let (id, url) = source(&app, &a, json!({"kind": "shopify", "name": "Shop A", "partners": ["pa"], "secret": "shpss_secret_value"})).await;
    assert!(url.starts_with(&app.base));
    let shown = app.get(&format!("/api/v1/sources/{id}"), &a).await;
    assert_eq!(
        shown.body["secrets"],
        json!([{"id": "1", "value": "********"}])
    );
    assert_eq!(shown.body["replayWindowSeconds"], 300);
    assert!(!shown.body.to_string().contains("shpss_secret_value"));
    // Rotation: add a second secret, keep the first by sending its mask back.
    let patched = app
        .patch(&format!("/api/v1/sources/{id}"), &a, json!({"secrets": [{"id": "1", "value": "********"}, {"id": "2", "value": "new-secret"}], "replayWindowSeconds": 120}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(patched.body["replayWindowSeconds"], 120);

    for (method, path) in [
        ("GET", format!("/api/v1/sources/{id}")),
        ("PATCH", format!("/api/v1/sources/{id}")),
        ("DELETE", format!("/api/v1/sources/{id}")),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "mine"}));
        assert_eq!(
            app.call(method.parse().unwrap(), &path, &b, body)
                .await
                .status,
            404,
            "{method} {path}"
        );
    }
    assert_eq!(
        app.get("/api/v1/sources", &b).await.body["sources"],
        json!([])
    );
    let other = app
        .post(
            "/api/v1/sources",
            &b,
            json!({"kind": "shopify", "partners": ["pa"], "secret": "x"}),
        )
        .await;
    assert_eq!(other.status, 403);
    for (body, code) in [
        (
            json!({"kind": "myspace", "partners": ["pa"], "secret": "x"}),
            "unknown_kind",
        ),
        (
            json!({"kind": "shopify", "partners": [], "secret": "x"}),
            "invalid_field",
        ),
        (
            json!({"kind": "shopify", "partners": ["pa"]}),
            "invalid_field",
        ),
        (
            json!({"kind": "shopify", "partners": ["pa"], "secret": "x", "replayWindowSeconds": 0}),
            "invalid_field",
        ),
        (
            json!({"kind": "shopify", "partners": ["pa"], "secret": "x", "options": []}),
            "invalid_field",
        ),
    ] {
        let answer = app.post("/api/v1/sources", &a, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.body["error"]["code"], code, "{body}");
    }
    let deleted = app.delete(&format!("/api/v1/sources/{id}"), &a).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        app.get(&format!("/api/v1/sources/{id}"), &a).await.status,
        404
    );
}

/// A source whose options its verifier would refuse (so every request to it would be answered
/// 500 `source_misconfigured`) is refused when it is created or changed, naming the field, and
/// nothing is stored.
#[tokio::test]
async fn sources_whose_options_cannot_verify_are_refused_and_stored_nowhere() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // The authorization form (named, or by default) signs the app key, so it needs one.
    let unusable = [
        json!({"form": "authorization"}),
        json!({}),
        json!({"form": "sealed"}),
    ];
    for options in &unusable {
        let answer = app
            .post(
                "/api/v1/sources",
                &token,
                json!({"kind": "tiktok", "partners": ["seller-1"], "secret": "tiktok-app-secret", "options": options}),
            )
            .await;
        assert_eq!(answer.status, 400, "{options}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["code"], "invalid_field",
            "{}",
            answer.body
        );
        assert_eq!(answer.body["error"]["field"], "options", "{}", answer.body);
    }
    let answer = app
        .post(
            "/api/v1/sources",
            &token,
            json!({"kind": "tiktok", "partners": ["seller-1"], "secret": "tiktok-app-secret", "options": {"form": "authorization"}}),
        )
        .await;
    assert_eq!(
        answer.body["error"]["message"],
        "the authorization form needs the option appKey"
    );
    assert_eq!(
        app.get("/api/v1/sources", &token).await.body["sources"],
        json!([])
    );

    // A well-configured source of the kind is created, and the same change to it is refused.
    let (id, url) = source(
        &app,
        &token,
        json!({
            "kind": "tiktok", "partners": ["seller-1"], "secret": "tiktok-app-secret",
            "options": {"form": "authorization", "appKey": "app-key"},
        }),
    )
    .await;
    let before = app.get(&format!("/api/v1/sources/{id}"), &token).await;
    assert_eq!(before.status, 200);
    for options in &unusable {
        let answer = app
            .patch(
                &format!("/api/v1/sources/{id}"),
                &token,
                json!({"name": "renamed", "options": options}),
            )
            .await;
        assert_eq!(answer.status, 400, "{options}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["code"], "invalid_field",
            "{}",
            answer.body
        );
        assert_eq!(answer.body["error"]["field"], "options", "{}", answer.body);
    }
    let after = app.get(&format!("/api/v1/sources/{id}"), &token).await;
    assert_eq!(
        after.body, before.body,
        "the refused changes left it as it was"
    );
    let listed = app.get("/api/v1/sources", &token).await.body["sources"].clone();
    assert_eq!(listed, json!([before.body]));
    // And it still verifies what TikTok sends.
    let signed = sign(
        Kind::Tiktok,
        "tiktok-app-secret",
        json!({"appKey": "app-key"}),
        "1",
        "576684019603311365",
        "tts-1",
        now_of(&app),
    );
    let answer = send(&app, &url, &signed).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "accepted");
    // A change to options it can use is taken.
    let patched = app
        .patch(
            &format!("/api/v1/sources/{id}"),
            &token,
            json!({"options": {"form": "seed"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["options"], json!({"form": "seed"}));
}

/// `switchyard simulate` sends what the marketplace would, and its refusals are the right ones.
#[tokio::test]
async fn simulate_sends_signed_webhooks_that_the_hub_accepts_dedups_and_refuses_when_forged() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (_, url) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "sim-secret"}],
    })).await;
    // The hub's clock is the test's, not the machine's: sign as of it.
    let at = switchyard_core::Clock::now(&app.clock).to_string();
    let simulate = move |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--marketplace",
            "walmart",
            "--event",
            "PO_CREATED",
            "--to",
            &url,
            "--secret",
            "sim-secret",
            "--option",
            "keyVersion=1",
            "--at",
            &at,
        ];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(&args)
            .env("SWITCHYARD_LOG", "warn")
            .output()
            .expect("simulate runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let sent = tokio::task::spawn_blocking({
        let simulate = simulate.clone();
        move || simulate(&["--duplicate", "--event-id", "sim-evt-1"])
    });
    let lines = sent.await.unwrap();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("200 ") && lines[0].contains("accepted"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("200 ") && lines[1].contains("duplicate"),
        "{lines:?}"
    );
    let tampered = tokio::task::spawn_blocking({
        let simulate = simulate.clone();
        move || simulate(&["--tamper", "--event-id", "sim-evt-2"])
    });
    assert!(tampered.await.unwrap()[0].starts_with("401 "));
    let stale =
        tokio::task::spawn_blocking(move || simulate(&["--stale", "--event-id", "sim-evt-3"]));
    let stale = stale.await.unwrap();
    assert!(
        stale[0].starts_with("401 ") && stale[0].contains("stale_timestamp"),
        "{stale:?}"
    );
}

/// One hub can feed another: Switchyard's own OAUTH and HMAC deliveries are accepted by its
/// Walmart sources (here the hub feeds itself), and come out normalized to a topic subscriber.
#[tokio::test]
async fn walmart_sources_accept_switchyards_own_oauth_and_hmac_deliveries() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let token = app.admin_token().await;
    let (_, oauth_url) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-2"], "secrets": [{"id": "oauth", "value": "oauth-secret"}],
        "options": {"form": "bearer", "oauthClientId": "hub-a"},
    })).await;
    let (_, hmac_url) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-2"], "secrets": [{"id": "1", "value": "hmac-secret"}],
    })).await;
    app.subscribe(&token, json!({
        "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": oauth_url, "partnerId": "seller-1",
        "authDetails": {"authMethod": "OAUTH", "authUrl": format!("{oauth_url}/oauth/token"), "clientId": "hub-a", "clientSecret": "oauth-secret"},
    })).await;
    app.subscribe(&token, json!({
        "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "eventUrl": hmac_url, "partnerId": "seller-1",
        "authDetails": {"authMethod": "HMAC", "clientSecret": "hmac-secret"},
    })).await;
    app.subscribe(&token, json!({
        "eventType": "listing.rejected", "resourceName": "ITEM", "eventUrl": sink.hook_url(), "partnerId": "seller-2",
    })).await;
    app.publish(
        &token,
        "seller-1",
        json!({"partnerId": "seller-2", "sku": "SKU-7"}),
    )
    .await;
    eventually("both hub-to-hub deliveries arrive normalized", || async {
        sink.hook_count() == 2
    })
    .await;
    for hook in sink.hooks() {
        let body = hook.json();
        assert_eq!(body["source"]["eventType"], "listing.rejected");
        assert_eq!(body["payload"]["marketplace"], "walmart");
        assert_eq!(body["payload"]["nativeEventType"], "OFFER_UNPUBLISHED");
        assert_eq!(
            body["payload"]["resource"],
            json!({"type": "item", "id": "SKU-7"})
        );
    }

    // The token URL refuses wrong credentials, and a forged bearer token gets nothing in.
    let refused = app
        .http
        .post(format!("{oauth_url}/oauth/token"))
        .basic_auth("hub-a", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let forged = app
        .http
        .post(&oauth_url)
        .bearer_auth("sy.forged.token")
        .body(r#"{"source":{"eventType":"PO_CREATED","eventTime":"2026-01-01T00:00:00Z","eventId":"x"},"payload":{"partnerId":"seller-2"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

/// Amazon SNS through the hub: the subscription confirmation is answered, a notification signed
/// with the certificate the source pins is accepted and normalized, another key's is refused.
#[tokio::test]
async fn amazon_sns_confirmation_and_notifications_through_the_hub() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let now = now_of(&app);
    let cert_url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";
    let topic = "arn:aws:sns:us-east-1:123456789012:orders";
    let options = json!({"certUrl": cert_url, "topicArn": topic, "subscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"});
    let notification = sign(
        Kind::AmazonSns,
        "",
        options.clone(),
        "Notification",
        "111-222",
        "n-1",
        now,
    );
    let key = notification.key_pem.clone().unwrap();
    let cert = notification.certificate_pem.clone().unwrap();
    let (_, url) = source(
        &app,
        &token,
        json!({
            "kind": "amazon_sns", "partners": ["seller-1"],
            "options": {"topicArns": [topic], "pinnedCertificates": {cert_url: cert}},
        }),
    )
    .await;

    let confirmation = sign(
        Kind::AmazonSns,
        &key,
        options.clone(),
        "SubscriptionConfirmation",
        "",
        "c-1",
        now,
    );
    let answer = send(&app, &url, &confirmation).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "confirming");

    let accepted = send(&app, &url, &notification).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "accepted");
    let event = app
        .get(
            &format!(
                "/api/v1/events/{}",
                accepted.body["eventId"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(event.body["eventType"], "ORDER_CHANGE");
    assert_eq!(
        event.body["topic"], "order.created",
        "first sighting of the order"
    );
    assert_eq!(
        event.body["normalized"]["resource"],
        json!({"type": "order", "id": "111-222"})
    );
    assert_eq!(event.body["normalized"]["marketplace"], "amazon");

    // Signed by a key whose certificate the source does not have.
    let other = sign(
        Kind::AmazonSns,
        "",
        options,
        "Notification",
        "111-333",
        "n-2",
        now,
    );
    let refused = send(&app, &url, &other).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"]["code"], "signature_mismatch");
    assert_eq!(
        app.get("/api/v1/events", &token).await.body["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// eBay's challenge is answered with the hash of the code, the verification token and the exact
/// URL the source was registered under; a challenge stores nothing.
#[tokio::test]
async fn ebay_challenge_is_answered_for_the_registered_url() {
    use sha2::Digest;
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (_, url) = source(&app, &token, json!({
        "kind": "ebay", "partners": ["seller-1"], "options": {"verificationToken": "verification-token-of-32-chars-x"},
    })).await;
    let answer = app
        .http
        .get(format!("{url}?challenge_code=abc123"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    let expected = hex_of(&sha2::Sha256::digest(
        format!("abc123verification-token-of-32-chars-x{url}").as_bytes(),
    ));
    assert_eq!(body, json!({"challengeResponse": expected}));
    assert_eq!(
        app.get("/api/v1/events", &token).await.body["events"],
        json!([])
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every kind through the hub: its own signed request is accepted, a resend is a duplicate, and a
/// payload naming a seller the source may not speak for is refused (kinds whose payloads name no
/// seller are stored under the source's partner).
#[tokio::test]
async fn every_kind_is_accepted_deduplicated_and_partner_checked_through_the_hub() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let cases = [
        (
            Kind::Walmart,
            json!({"secrets": [{"id": "1", "value": "s3cret"}]}),
            "s3cret",
            json!({}),
        ),
        (
            Kind::Tiktok,
            json!({"secret": "s3cret", "options": {"appKey": "k"}}),
            "s3cret",
            json!({"appKey": "k"}),
        ),
        (
            Kind::Shopify,
            json!({"secret": "s3cret"}),
            "s3cret",
            json!({}),
        ),
        (Kind::Etsy, json!({"secret": whsec}), whsec, json!({})),
        (Kind::Standard, json!({"secret": whsec}), whsec, json!({})),
        (
            Kind::Flipkart,
            json!({"secret": "s3cret"}),
            "s3cret",
            json!({}),
        ),
        (
            Kind::Ebay,
            json!({"secret": "dev-id", "options": {"signatureForm": "hmac"}}),
            "dev-id",
            json!({"signatureForm": "hmac"}),
        ),
        (Kind::Sellercenter, json!({}), "", json!({})),
    ];
    for (kind, extra, secret, sign_options) in cases {
        let mut body = json!({"kind": kind.as_str(), "partners": ["seller-1"]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (_, url) = source(&app, &token, body).await;
        let secret = if kind == Kind::Sellercenter {
            url.rsplit('/').next().unwrap().to_string()
        } else {
            secret.to_string()
        };
        let signed = |partner: &str, event_id: &str| {
            let mut request = kind
                .sign(&SignRequest {
                    event_type: String::new(),
                    secret: secret.clone(),
                    options: sign_options.clone(),
                    endpoint_url: url.clone(),
                    partner_id: partner.into(),
                    resource_id: format!("R-{event_id}"),
                    event_id: event_id.into(),
                    now: now_of(&app),
                })
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            request.url_suffix.clear();
            request
        };
        let good = signed("seller-1", &format!("{}-1", kind.as_str()));
        let accepted = send(&app, &url, &good).await;
        assert_eq!(accepted.status, 200, "{kind:?}: {}", accepted.body);
        assert_eq!(accepted.body["status"], "accepted", "{kind:?}");
        let again = send(&app, &url, &good).await;
        assert_eq!(
            again.body["status"], "duplicate",
            "{kind:?}: {}",
            again.body
        );

        let intruder = send(
            &app,
            &url,
            &signed("intruder", &format!("{}-2", kind.as_str())),
        )
        .await;
        if intruder.status == 403 {
            assert_eq!(
                intruder.body["error"]["code"], "unknown_partner",
                "{kind:?}"
            );
        } else {
            assert_eq!(intruder.status, 200, "{kind:?}: {}", intruder.body);
            let event = app
                .get(
                    &format!(
                        "/api/v1/events/{}",
                        intruder.body["eventId"].as_str().unwrap()
                    ),
                    &token,
                )
                .await;
            assert_eq!(
                event.body["partnerId"], "seller-1",
                "{kind:?}: a payload naming no seller is the source's"
            );
            assert!(
                matches!(kind, Kind::Flipkart | Kind::Sellercenter),
                "{kind:?} names its seller, so it must be checked"
            );
        }
    }
}

/// A source's `inventoryLowThreshold`: a stock level at or below it is `inventory.low`.
#[tokio::test]
async fn stock_levels_at_or_below_the_sources_threshold_are_inventory_low() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (_, url) = source(&app, &token, json!({
        "kind": "shopify", "partners": ["seller-1"], "secret": "s3cret", "options": {"inventoryLowThreshold": 5},
    })).await;
    for (available, event_id, topic) in [
        (3, "inv-1", json!("inventory.low")),
        (5, "inv-2", json!("inventory.low")),
        (6, "inv-3", Value::Null),
    ] {
        let signed = sign(
            Kind::Shopify,
            "s3cret",
            json!({"available": available}),
            "inventory_levels/update",
            "SKU-1",
            event_id,
            now_of(&app),
        );
        let answer = send(&app, &url, &signed).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let event = app
            .get(
                &format!(
                    "/api/v1/events/{}",
                    answer.body["eventId"].as_str().unwrap()
                ),
                &token,
            )
            .await;
        assert_eq!(event.body["topic"], topic, "available {available}");
    }
}

/// A burst of refusals at a source is announced once as `source.rejections_spiking`.
#[tokio::test]
async fn a_burst_of_refusals_is_announced_once() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let watch = Sink::start().await;
    app.subscribe(&token, json!({
        "eventType": "source.rejections_spiking", "resourceName": "WEBHOOKS", "eventUrl": watch.hook_url(), "partnerId": "seller-1",
    }))
    .await;
    let (source_id, url) = source(&app, &token, json!({
        "kind": "walmart", "partners": ["seller-1"], "secrets": [{"id": "1", "value": "real-secret"}],
        "options": {"rejectionSpikeThreshold": 5},
    }))
    .await;
    for i in 0..12 {
        let forged = sign(
            Kind::Walmart,
            "forged",
            json!({}),
            "PO_CREATED",
            "PO-1",
            &format!("f-{i}"),
            now_of(&app),
        );
        assert_eq!(send(&app, &url, &forged).await.status, 401);
    }
    eventually("the spike is announced", || async {
        watch.hook_count() >= 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(watch.hook_count(), 1, "once per window");
    let body = watch.hooks()[0].json();
    assert_eq!(body["source"]["eventType"], "source.rejections_spiking");
    assert_eq!(body["payload"]["sourceId"], source_id.as_str());
    assert_eq!(body["payload"]["reasons"], json!(["signature_mismatch"]));
}

/// Secrets a source's verifier could never use are refused when the source is made or changed
/// (400 naming `secrets`), as its options are, rather than answered 500 on every webhook.
#[tokio::test]
async fn sources_whose_secrets_cannot_verify_are_refused_and_stored_nowhere() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (body, why) in [
        (
            json!({"kind": "standard", "partners": ["seller-1"], "secret": "not base64 !!"}),
            "whsec_",
        ),
        (
            json!({"kind": "etsy", "partners": ["seller-1"], "secret": "%%%"}),
            "whsec_",
        ),
        (
            json!({"kind": "ebay", "partners": ["seller-1"], "options": {"signatureForm": "hmac"}}),
            "needs a secret",
        ),
        (
            // It could never answer eBay's challenge (the GET used to be a 500).
            json!({"kind": "ebay", "partners": ["seller-1"]}),
            "verificationToken",
        ),
    ] {
        let refused = app.post("/api/v1/sources", &admin, body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(
            refused.body["error"]["field"], "secrets",
            "{}",
            refused.body
        );
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(why)),
            "{}",
            refused.body
        );
    }
    let listed = app.get("/api/v1/sources", &admin).await;
    assert_eq!(listed.body["sources"], json!([]), "nothing was stored");

    // A good source, then a change that would break it: refused, and the source unchanged.
    let (id, _) = source(
        &app,
        &admin,
        json!({"kind": "standard", "partners": ["seller-1"],
               "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    )
    .await;
    let before = app.get(&format!("/api/v1/sources/{id}"), &admin).await;
    let broken = app
        .patch(
            &format!("/api/v1/sources/{id}"),
            &admin,
            json!({"secrets": [{"id": "2", "value": "no good"}]}),
        )
        .await;
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert_eq!(broken.body["error"]["field"], "secrets");
    let after = app.get(&format!("/api/v1/sources/{id}"), &admin).await;
    assert_eq!(before.body, after.body);
}
