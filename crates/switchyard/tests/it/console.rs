//! The operator console: a real session in headless Chromium, and the guarantees a browser
//! cannot show well (CSRF, tenant isolation, the per-partner switch, escaping), over HTTP.

use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use switchyard_core::model::Access;

use crate::helpers::*;

/// A browser-like client for the console: keeps the cookies it is given, follows no redirect.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Browser {
        Browser::at(&app.base)
    }

    /// A browser on a hub at `base` (a hub process, say).
    pub(crate) fn at(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: Default::default(),
        }
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep_cookies(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, response.text().await.unwrap_or_default(), location)
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("POST");
        self.keep_cookies(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, response.text().await.unwrap_or_default(), location)
    }

    /// The hidden CSRF field of a page.
    pub(crate) fn csrf(page: &str) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
        page[start..].split('"').next().expect("token").to_string()
    }

    pub(crate) async fn sign_in(&mut self, id: &str, secret: &str) -> StatusCode {
        let (_, page, _) = self.get("/login").await;
        let csrf = Browser::csrf(&page);
        let (status, _, _) = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("client_id", id),
                    ("client_secret", secret),
                ],
            )
            .await;
        status
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The acceptance session: sign in, create a webhook for an entity, trigger an event, see the
/// attempt in the callback logs, pause the webhook, see a refused forged request on the failures
/// dashboard. Screenshots go to `SWITCHYARD_SCREENSHOTS` (e.g. `docs/screenshots`), else a
/// temporary directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and `npm ci` in tests/browser; bash .ci/run installs both and runs it"]
async fn a_user_session_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script_dir = workspace_root().join("tests/browser");
    assert!(
        std::path::Path::new(&chromium).exists(),
        "this test needs Chromium at {chromium} (or CHROMIUM=path)"
    );
    assert!(
        script_dir.join("node_modules/playwright-core").exists(),
        "this test needs playwright-core: run `npm ci` in tests/browser"
    );
    let app = spawn_app().await;
    app.partner_client(
        "console-user",
        &["seller-1"],
        &[("ORDER", Access::FullAccess)],
    )
    .await;
    let admin = app.admin_token().await;
    let source = app
        .post(
            "/api/v1/sources",
            &admin,
            json!({"kind": "standard", "name": "Storefront", "partners": ["seller-1"],
                   "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.body);
    let source_id = source.body["sourceId"]
        .as_str()
        .expect("source id")
        .to_string();
    // A Walmart source that reconciles: its orders API (simulated) holds three orders no
    // webhook announced, so the failures dashboard shows them as missed by webhook.
    let now = switchyard_core::Clock::now(&app.clock);
    let orders = (1..=3)
        .map(|i| switchyard_simulator::SimOrder {
            id: format!("PO-10{i}"),
            status: "Created".into(),
            created_at: now - jiff::SignedDuration::from_hours(2),
            updated_at: now - jiff::SignedDuration::from_mins(30 * i),
            extra: serde_json::Value::Null,
        })
        .collect();
    let credentials = json!({"clientId": "wm-id", "clientSecret": "wm-secret"});
    let walmart_api = switchyard_simulator::start(
        "walmart",
        "127.0.0.1:0",
        switchyard_simulator::SimConfig {
            credentials: credentials.clone(),
            ..Default::default()
        },
        orders,
    )
    .await
    .expect("the simulator starts");
    let walmart = app
        .post(
            "/api/v1/sources",
            &admin,
            json!({"kind": "walmart", "name": "Walmart US", "partners": ["seller-1"],
                   "secrets": [{"id": "1", "value": "walmart-secret"}],
                   "reconcile": {"apiBaseUrl": walmart_api.base_url(), "credentials": credentials}}),
        )
        .await;
    assert_eq!(walmart.status, 201, "{}", walmart.body);
    let walmart_id = walmart.body["sourceId"].as_str().expect("id").to_string();
    let run = app
        .post(
            &format!("/api/v1/sources/{walmart_id}/reconcile"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(run.body["missing"], 3, "{}", run.body);
    let sink = Sink::start().await;
    let shots = std::env::var("SWITCHYARD_SCREENSHOTS")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|_| app.dir.path().join("screenshots"));

    let mut command = std::process::Command::new("node");
    command
        .arg(script_dir.join("console.mjs"))
        .current_dir(&script_dir)
        .env("BASE", &app.base)
        .env("CLIENT_ID", "console-user")
        .env("CLIENT_SECRET", "console-user-secret")
        .env("ADMIN_ID", ADMIN_ID)
        .env("ADMIN_SECRET", ADMIN_SECRET)
        .env("SINK_URL", sink.hook_url())
        .env("SOURCE_ID", &source_id)
        .env("RECONCILING_SOURCE_ID", &walmart_id)
        .env("PARTNER_ID", "seller-1")
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium);
    // The script waits on the hub, so it runs off the async workers.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("ok"),
        "the browser session failed (screenshot: {}/failure.png)\n{stdout}\n{stderr}",
        shots.display()
    );

    // What the session did is what the hub holds.
    assert_eq!(sink.hook_count(), 1, "the event reached the sink once");
    let subs = app.get("/v3/webhooks/subscriptions", &admin).await;
    let events = subs.body["events"].as_array().expect("subscriptions");
    let po = events
        .iter()
        .find(|s| s["eventType"] == "PO_CREATED")
        .expect("the entity's PO_CREATED subscription");
    assert_eq!(po["status"], "INACTIVE", "paused in the console");
    assert!(
        events
            .iter()
            .filter(|s| s["resourceName"] == "ORDER")
            .count()
            > 3,
        "choosing the ORDER entity subscribed all its events"
    );
    let refused = app
        .get(&format!("/api/v1/rejections?sourceId={source_id}"), &admin)
        .await;
    assert_eq!(
        refused.body["rejections"][0]["reason"],
        "signature_mismatch"
    );
}

/// Every form route of the console, read from the router (`route_table`), refuses a post without
/// the session's CSRF token, or with another's, and changes nothing: the webhook it names is still
/// there, unchanged, and so is the session.
#[tokio::test]
async fn every_console_form_refuses_a_post_without_the_sessions_token() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "pa",
                   "eventUrl": "https://example.com/h"}),
        )
        .await;
    let before = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await
        .body;
    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in(ADMIN_ID, ADMIN_SECRET).await,
        StatusCode::SEE_OTHER
    );
    let forms: Vec<String> = switchyard_server::route_table::plain_routes()
        .into_iter()
        .filter(|(path, methods)| {
            methods.contains("post") && (path.starts_with("/console/") || path == "/logout")
        })
        .map(|(path, _)| path.replace("{id}", &sub))
        .collect();
    assert!(forms.len() >= 10, "the console's forms: {forms:?}");
    for path in &forms {
        for token in [None, Some("0000")] {
            let mut form = vec![
                ("status", "INACTIVE"),
                ("event_url", "https://example.com/changed"),
                ("since", "2020-01-01T00:00"),
                ("enabled", "false"),
                ("partner_id", "pa"),
            ];
            form.extend(token.map(|t| ("csrf", t)));
            let (status, _, _) = browser.post(path, &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} with {token:?}");
        }
    }
    let after = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert_eq!(after.status, 200, "the webhook is still there");
    assert_eq!(after.body, before, "and unchanged");
    let (status, _, _) = browser.get("/console/webhooks").await;
    assert_eq!(status, StatusCode::OK, "still signed in");
}

/// A webhook's page shows its transformation and "latest state only"; its button tries the code
/// on a sample (what the handler got, what it would send, or why it failed) and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_transformation_is_shown_and_tried_on_a_sample() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let code = "function handler(webhook) { webhook.payload = {tried: 'yes-' + webhook.eventType}; return webhook; }";
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "pa",
                   "eventUrl": "https://example.com/h", "transform": code, "coalesce": true}),
        )
        .await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(ADMIN_ID, ADMIN_SECRET).await, 303);
    let here = format!("/console/webhooks/{sub}");
    let (status, page, _) = browser.get(&here).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("<pre><code>{code}</code></pre>")),
        "{page}"
    );
    assert!(page.contains("<td>Latest state only</td><td>on:"), "{page}");
    let csrf = Browser::csrf(&page);
    let try_it = format!("{here}/transform/try");
    let (status, page, _) = browser.post(&try_it, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Would be sent"), "{page}");
    assert!(
        page.contains("yes-OFFER_UNPUBLISHED"),
        "the transformed payload: {page}"
    );

    // Code that throws is saved (it compiles), and trying it says why it fails.
    let throws = "function handler(webhook) { throw new Error('no sku here'); }";
    let edit = |transform| {
        [
            ("csrf", csrf.as_str()),
            ("event_url", "https://example.com/h"),
            ("transform", transform),
        ]
    };
    assert_eq!(browser.post(&here, &edit(throws)).await.0, 303);
    let (status, page, _) = browser.post(&try_it, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("class=\"error\"") && page.contains("no sku here"),
        "{page}"
    );

    // Emptied and unticked, the webhook has neither; its page offers no try.
    assert_eq!(browser.post(&here, &edit("")).await.0, 303);
    let read = app
        .get(&format!("/v3/webhooks/subscriptions/{sub}"), &admin)
        .await;
    assert!(read.body.get("transform").is_none(), "{}", read.body);
    assert!(read.body.get("coalesce").is_none(), "{}", read.body);
    let (_, page, _) = browser.get(&here).await;
    assert!(!page.contains("Try the transformation"), "{page}");
}

#[tokio::test]
async fn sign_in_needs_the_right_secret_and_forms_need_the_sessions_token() {
    let app = spawn_app().await;
    app.partner_client("alice", &["pa"], &[("ORDER", Access::FullAccess)])
        .await;
    let mut browser = Browser::new(&app);

    let (status, _, location) = browser.get("/console/webhooks").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("/login"),
        "no session: sign in first"
    );

    assert_eq!(
        browser.sign_in("alice", "wrong").await,
        StatusCode::UNAUTHORIZED
    );
    // A sign-in form posted from elsewhere has no matching nonce cookie.
    let mut stranger = Browser::new(&app);
    let (status, _, _) = stranger
        .post(
            "/login",
            &[
                ("csrf", "guess"),
                ("client_id", "alice"),
                ("client_secret", "alice-secret"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_eq!(
        browser.sign_in("alice", "alice-secret").await,
        StatusCode::SEE_OTHER
    );
    let session = browser
        .cookies
        .get("sy_session")
        .cloned()
        .expect("session cookie");
    assert!(!session.contains("alice-secret"));
    let (status, page, _) = browser.get("/console/webhooks/new").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = Browser::csrf(&page);

    // Without the token, or with another's, nothing is created.
    for token in ["", "0000"] {
        let (status, _, _) = browser
            .post(
                "/console/webhooks",
                &[
                    ("csrf", token),
                    ("event_url", "https://example.com/h"),
                    ("entity", "ORDER"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let token = app.token("alice", "alice-secret").await;
    let listed = app.get("/v3/webhooks/subscriptions", &token).await;
    assert_eq!(
        listed.body["events"],
        json!([]),
        "refused forms leave nothing"
    );

    let (status, page, _) = browser
        .post(
            "/console/webhooks",
            &[
                ("csrf", &csrf),
                ("event_url", "https://example.com/h"),
                ("event", "PO_CREATED"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("whsec_"), "the signing secret is shown once");
    let listed = app.get("/v3/webhooks/subscriptions", &token).await;
    assert_eq!(listed.body["events"].as_array().map(Vec::len), Some(1));

    // Bad input comes back as a page with the API's message, and stores nothing.
    let (status, page, _) = browser
        .post(
            "/console/webhooks",
            &[
                ("csrf", &csrf),
                ("event_url", "not a url"),
                ("event", "PO_CREATED"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("eventUrl"), "{page}");
    let listed = app.get("/v3/webhooks/subscriptions", &token).await;
    assert_eq!(listed.body["events"].as_array().map(Vec::len), Some(1));

    // Signing out ends the session.
    let (status, _, _) = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, location) = browser.get("/console/webhooks").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
}

#[tokio::test]
async fn a_partner_sees_only_its_own_and_an_admin_can_switch_the_console_off() {
    let app = spawn_app().await;
    let a = app
        .partner_client("client-a", &["pa"], &[("ORDER", Access::FullAccess)])
        .await;
    app.partner_client("client-b", &["pb"], &[("ORDER", Access::FullAccess)])
        .await;
    // A header value a user typed, with markup in it.
    let (sub_a, _) = app
        .subscribe(
            &a,
            json!({"eventType": "PO_CREATED", "resourceName": "ORDER", "eventUrl": "https://a.example.com/h",
                   "headers": {"x-note": "<script>alert(1)</script>"}}),
        )
        .await;

    let mut b = Browser::new(&app);
    assert_eq!(
        b.sign_in("client-b", "client-b-secret").await,
        StatusCode::SEE_OTHER
    );
    let (_, list, _) = b.get("/console/webhooks").await;
    assert!(!list.contains(&sub_a), "B's list does not show A's webhook");
    for path in [
        format!("/console/webhooks/{sub_a}"),
        format!("/console/webhooks/{sub_a}/logs"),
    ] {
        let (status, _, _) = b.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, page, _) = b.get("/console/webhooks").await;
    let csrf = Browser::csrf(&page);
    let (status, _, _) = b
        .post(
            &format!("/console/webhooks/{sub_a}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "B cannot delete A's webhook");

    let mut alice = Browser::new(&app);
    assert_eq!(
        alice.sign_in("client-a", "client-a-secret").await,
        StatusCode::SEE_OTHER
    );
    let (status, page, _) = alice.get(&format!("/console/webhooks/{sub_a}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped"
    );
    assert!(!page.contains("<script>alert(1)"), "never raw");

    // The admin switches the console off for pa: A's pages hide pa, the API still works.
    let mut admin = Browser::new(&app);
    assert_eq!(
        admin.sign_in(ADMIN_ID, ADMIN_SECRET).await,
        StatusCode::SEE_OTHER
    );
    let (_, page, _) = admin.get("/console/partners").await;
    assert!(page.contains("<td>pa</td>"), "{page}");
    let csrf = Browser::csrf(&page);
    let (status, _, _) = admin
        .post(
            "/console/partners/pa",
            &[("csrf", &csrf), ("enabled", "false")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page, _) = alice.get("/console/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("switched off for pa"), "{page}");
    assert!(!page.contains(&sub_a));
    let (status, _, _) = alice.get(&format!("/console/webhooks/{sub_a}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let api = app
        .get(&format!("/v3/webhooks/subscriptions/{sub_a}"), &a)
        .await;
    assert_eq!(api.status, 200, "the API is not affected");
    // Only admins switch.
    let (_, page, _) = b.get("/console/webhooks").await;
    let csrf = Browser::csrf(&page);
    let (status, _, _) = b
        .post(
            "/console/partners/pa",
            &[("csrf", &csrf), ("enabled", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csrf = Browser::csrf(&admin.get("/console/partners").await.1);
    let (status, _, _) = admin
        .post(
            "/console/partners/pa",
            &[("csrf", &csrf), ("enabled", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = alice.get("/console/webhooks").await;
    assert!(page.contains(&sub_a), "switched back on");
}

#[tokio::test]
async fn subscribers_report_outcomes_and_the_failures_dashboard_counts_them() {
    let app = spawn_app().await;
    let a = app
        .partner_client(
            "client-a",
            &["pa"],
            &[("ORDER", Access::FullAccess), ("ITEM", Access::FullAccess)],
        )
        .await;
    let b = app
        .partner_client("client-b", &["pb"], &[("ORDER", Access::FullAccess)])
        .await;
    let event_id = app
        .publish(&a, "pa", json!({"purchaseOrderId": "PO-9"}))
        .await;
    let path = format!("/api/v1/events/{event_id}/outcome");

    for bad in [
        json!({"status": "done"}),
        json!({"status": "failed", "reason": "Not Snake Case"}),
        json!({"status": "failed", "extra": 1}),
        json!({"status": "failed", "message": "x".repeat(1001)}),
    ] {
        let answer = app.post(&path, &a, bad.clone()).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
        assert!(answer.body["error"]["code"].is_string());
    }
    let other = app
        .post(
            &path,
            &b,
            json!({"status": "failed", "reason": "inventory_mismatch"}),
        )
        .await;
    assert_eq!(
        other.status, 404,
        "another tenant's event does not exist for B"
    );

    for reason in [
        "inventory_mismatch",
        "inventory_mismatch",
        "customer_match_failed",
    ] {
        let answer = app
            .post(
                &path,
                &a,
                json!({"status": "failed", "reason": reason, "message": "SKU-1"}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body["eventId"], event_id.as_str());
        assert_eq!(answer.body["reason"], reason);
    }
    let ok = app.post(&path, &a, json!({"status": "processed"})).await;
    assert_eq!(ok.status, 201);

    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in("client-a", "client-a-secret").await,
        StatusCode::SEE_OTHER
    );
    let (status, page, _) = browser.get("/console/failures").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("subscriber: inventory_mismatch</td><td>2"),
        "{page}"
    );
    assert!(page.contains("subscriber: customer_match_failed</td><td>1"));
    let (_, page, _) = browser
        .get("/console/outcomes?reason=inventory_mismatch")
        .await;
    assert_eq!(page.matches("SKU-1").count(), 2, "{page}");
    let (_, page, _) = browser.get(&format!("/console/events/{event_id}")).await;
    assert!(page.contains("customer_match_failed") && page.contains("processed"));

    let mut other = Browser::new(&app);
    assert_eq!(
        other.sign_in("client-b", "client-b-secret").await,
        StatusCode::SEE_OTHER
    );
    let (_, page, _) = other.get("/console/failures").await;
    assert!(
        !page.contains("inventory_mismatch"),
        "B sees none of A's failures"
    );
}

/// A received event's page shows the headers kept, and none that carries a signature.
#[tokio::test]
async fn an_events_page_shows_its_raw_body_and_headers_without_signatures() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let source = app
        .post(
            "/api/v1/sources",
            &admin,
            json!({"kind": "standard", "partners": ["seller-1"], "secret": secret}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.body);
    let source_id = source.body["sourceId"].as_str().expect("id").to_string();
    let body = br#"{"type":"order.created","data":{"id":"PO-77","partnerId":"seller-1"}}"#;
    let ts = switchyard_core::Clock::now(&app.clock).as_second();
    let signature =
        switchyard_core::signatures::standard_webhooks::sign(secret, "msg_kept_1", ts, body)
            .expect("signed");
    let answer = app
        .http
        .post(format!("{}/ingest/{source_id}", app.base))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_kept_1")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", &signature)
        .header("x-shop-note", "<b>hi</b>")
        .body(body.to_vec())
        .send()
        .await
        .expect("ingest");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let stored: serde_json::Value = answer.json().await.unwrap_or_default();
    let event_id = stored["eventId"].as_str().expect("event id").to_string();

    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in(ADMIN_ID, ADMIN_SECRET).await,
        StatusCode::SEE_OTHER
    );
    let (status, page, _) = browser.get(&format!("/console/events/{event_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("msg_kept_1"), "webhook-id is kept: {page}");
    assert!(
        page.contains("&lt;b&gt;hi&lt;/b&gt;"),
        "kept headers are escaped"
    );
    assert!(page.contains("PO-77"), "the raw body is shown");
    assert!(
        !page.contains(signature.trim_start_matches("v1,")),
        "no signature is kept"
    );
    let (_, page, _) = browser.get("/console/events?partner=seller-1").await;
    assert!(page.contains(&event_id), "found by partner");
    let (_, page, _) = browser.get("/console/events?partner=seller-2").await;
    assert!(!page.contains(&event_id), "not under another partner");
    let (_, page, _) = browser.get("/console/sources").await;
    assert!(
        page.contains("<td>1</td>"),
        "one accepted request counted: {page}"
    );
}

/// A replay started from the console runs in the background, and its page says how far it got
/// until it is done; another client cannot see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_replay_shows_its_progress_until_it_is_done() {
    let app = spawn_app().await;
    let sink = Sink::start().await;
    let admin = app.admin_token().await;
    let (sub, _) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                   "partnerId": "seller-1", "eventUrl": sink.hook_url()}),
        )
        .await;
    for n in 0..3 {
        app.publish(&admin, "seller-1", json!({"sku": format!("SKU-{n}")}))
            .await;
    }
    wait_for("the first deliveries", || async {
        (sink.hook_count() == 3).then_some(())
    })
    .await;

    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in(ADMIN_ID, ADMIN_SECRET).await,
        StatusCode::SEE_OTHER
    );
    let (_, logs, _) = browser.get(&format!("/console/webhooks/{sub}/logs")).await;
    let csrf = Browser::csrf(&logs);
    let (status, _, location) = browser
        .post(
            &format!("/console/webhooks/{sub}/replay"),
            &[("csrf", &csrf), ("since", "2020-01-01T00:00")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let progress_page = location.expect("the replay's page");
    assert!(
        progress_page.starts_with(&format!("/console/webhooks/{sub}/replays/")),
        "{progress_page}"
    );
    let mut finished = None;
    for _ in 0..200 {
        let (status, page, _) = browser.get(&progress_page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("<progress"), "{page}");
        if page.contains("Done.") {
            finished = Some(page);
            break;
        }
        assert!(
            page.contains("http-equiv=\"refresh\""),
            "an unfinished replay's page refreshes itself: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let finished = finished.expect("the replay finished");
    assert!(
        finished.contains("<strong>3</strong> deliveries pending again"),
        "{finished}"
    );
    assert!(!finished.contains("http-equiv=\"refresh\""), "{finished}");
    wait_for("the replayed deliveries", || async {
        (sink.hook_count() == 6).then_some(())
    })
    .await;

    // Another client of the same partner does not see it.
    app.partner_client(
        "other",
        &["seller-1"],
        &[("ITEM", switchyard_core::model::Access::FullAccess)],
    )
    .await;
    let mut other = Browser::new(&app);
    assert_eq!(
        other.sign_in("other", "other-secret").await,
        StatusCode::SEE_OTHER
    );
    let (status, _, _) = other.get(&progress_page).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
