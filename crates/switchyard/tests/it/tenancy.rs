//! Tenants stay apart on every route the router has. The routes come from the router's own source
//! (`switchyard_server::route_table`), not from a list kept here: a route added to the router
//! fails this test until it is given its place below. Client A then calls each one with client B's
//! objects (a subscription, an event, its delivery, a source, a rejection), as the API and as a
//! console session, and must get 404 for an object it addresses, 403 for a partner it names, and
//! lists without a trace of B; afterwards B's objects are as they were.

use reqwest::StatusCode;
use serde_json::{Value, json};

use switchyard_core::model::Access;

use crate::console::Browser;
use crate::helpers::*;

/// What a route is, for this test.
#[derive(Debug, PartialEq)]
enum Role {
    /// Holds no tenant's data, or checks its own credentials (named why).
    Public(&'static str),
    /// Addresses one object by the id in its path.
    Addressed,
    /// Lists the caller's objects.
    List,
    /// Acts for the partner its body names.
    Acting,
    /// The console: the same, as a signed-in session.
    ConsoleAddressed,
    ConsoleList,
    ConsoleActing,
    /// The console's admin-only pages: refused to a partner's client whatever they address.
    ConsoleAdmin,
}

fn role(method: &str, path: &str) -> Option<Role> {
    use Role::*;
    let public = match path {
        "/healthz" | "/readyz" | "/metrics" => Some("probes and counters"),
        "/openapi.json" | "/docs" => Some("the document"),
        "/v3/token" => Some("issues tokens for client credentials"),
        "/v3/webhooks/eventTypes" => Some("the catalog"),
        "/sellercenter" => Some("SellerCenter's signed dialect; its scoping is in sellercenter::"),
        "/" | "/login" | "/logout" | "/assets/console.css" | "/assets/console.js" => {
            Some("the console's door")
        }
        p if p.starts_with("/ingest/") => {
            Some("marketplaces' inbound endpoints, signed per source")
        }
        _ => None,
    };
    if let Some(why) = public {
        return Some(Public(why));
    }
    let addressed = path.contains("{id}");
    if let Some(rest) = path.strip_prefix("/console") {
        return Some(match (method, addressed) {
            _ if rest.starts_with("/partners") => ConsoleAdmin,
            (_, true) => ConsoleAddressed,
            ("get", false) if !rest.ends_with("/new") => ConsoleList,
            ("get", false) => Public("an empty form"),
            ("post", false) => ConsoleActing,
            _ => return None,
        });
    }
    if addressed {
        return Some(Addressed);
    }
    match method {
        "get" => Some(List),
        "post" => Some(Acting),
        _ => None,
    }
}

/// B's objects, by the kind a path addresses.
struct Theirs {
    subscription: String,
    event: String,
    delivery: String,
    source: String,
}

impl Theirs {
    fn ids(&self) -> [&str; 4] {
        [
            &self.subscription,
            &self.event,
            &self.delivery,
            &self.source,
        ]
    }

    /// B's subscription and source as B reads them.
    async fn as_b_sees_them(&self, app: &TestApp, b: &str) -> [Value; 2] {
        [
            app.get(
                &format!("/v3/webhooks/subscriptions/{}", self.subscription),
                b,
            )
            .await
            .body,
            app.get(&format!("/api/v1/sources/{}", self.source), b)
                .await
                .body,
        ]
    }

    /// The path with B's object of the kind it addresses.
    fn address(&self, path: &str) -> String {
        let id = if path.contains("/deliveries/") {
            &self.delivery
        } else if path.contains("/events/") {
            &self.event
        } else if path.contains("/sources/") {
            &self.source
        } else if path.contains("/webhooks/") || path.contains("/subscriptions/") {
            &self.subscription
        } else {
            panic!("{path}: which kind of object does it address?")
        };
        path.replace("{id}", id)
    }
}

/// A body the route would take from B itself, so that only the tenant check can refuse it.
fn api_body(method: &str, path: &str) -> Option<Value> {
    let subscription = json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM",
                              "partnerId": "pb", "eventUrl": "https://example.com/hook"});
    Some(match (method, path) {
        ("get" | "delete", _) => return None,
        ("patch", p) if p.contains("/sources/") => json!({"name": "taken"}),
        ("patch", _) => json!({"status": "INACTIVE"}),
        (_, p) if p.ends_with("/replay") => json!({"since": "2020-01-01T00:00:00Z"}),
        (_, p) if p.ends_with("/outcome") => json!({"status": "processed"}),
        (_, "/v3/webhooks/subscriptions") => json!({"events": [subscription]}),
        (_, "/v3/webhooks/test") => subscription,
        (_, "/api/v1/events") => {
            json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "pb", "payload": {"n": 2}})
        }
        (_, "/api/v1/orders/facts") => json!({"partnerId": "pb", "facts": []}),
        (_, "/api/v1/performance/run") => json!({"partnerId": "pb", "notificationType": "ALARMS"}),
        (_, "/api/v1/sources") => {
            json!({"kind": "walmart", "partners": ["pb"], "secret": "s"})
        }
        _ => json!({}),
    })
}

/// The form the console's create pages would take from B itself.
fn console_form(path: &str) -> Vec<(&'static str, &'static str)> {
    match path {
        "/console/webhooks" => vec![
            ("event", "OFFER_UNPUBLISHED"),
            ("event_url", "https://example.com/hook"),
            ("partner_id", "pb"),
        ],
        "/console/sources" => vec![("kind", "walmart"), ("partners", "pb"), ("secret", "s")],
        _ => vec![],
    }
}

fn assert_no_trace(what: &str, text: &str, theirs: &Theirs) {
    for id in theirs.ids() {
        assert!(!text.contains(id), "{what} shows B's {id}");
    }
    assert!(
        !text.contains("\"pb\"") && !text.contains(">pb<"),
        "{what} shows B's partner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_router_keeps_another_tenants_objects_out_of_reach() {
    let app = spawn_app().await;
    let scopes = [("ITEM", Access::FullAccess), ("ORDER", Access::FullAccess)];
    let a = app.partner_client("client-a", &["pa"], &scopes).await;
    let b = app.partner_client("client-b", &["pb"], &scopes).await;
    let sink = Sink::start().await;
    let (subscription, _) = app
        .subscribe(
            &b,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "pb",
                   "eventUrl": sink.hook_url()}),
        )
        .await;
    let event = app.publish(&b, "pb", json!({"n": 1})).await;
    let delivery = app.deliveries_of(&b, &subscription).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (source, ingest_url) = crate::helpers::source(&app, &b, json!({
        "kind": "walmart", "partners": ["pb"], "secrets": [{"id": "1", "value": "walmart-secret"}],
    }))
    .await;
    // A rejection of B's source.
    let refused = app.http.post(&ingest_url).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let theirs = Theirs {
        subscription,
        event,
        delivery,
        source,
    };
    let before = theirs.as_b_sees_them(&app, &b).await;

    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in("client-a", "client-a-secret").await,
        StatusCode::SEE_OTHER
    );
    let (_, page, _) = browser.get("/console/webhooks").await;
    let csrf = Browser::csrf(&page);

    let routes = switchyard_server::route_table::declared_routes();
    assert!(routes.len() >= 40, "the route table: {routes:?}");
    let mut checked = 0;
    for (path, methods) in &routes {
        for method in methods {
            let role = role(method, path).unwrap_or_else(|| {
                panic!("{method} {path} is new: give it its place in tenancy.rs")
            });
            let what = format!("{} {path}", method.to_uppercase());
            match role {
                Role::Public(_) => continue,
                Role::Addressed => {
                    let at = theirs.address(path);
                    let answer = app
                        .call(
                            method.to_uppercase().parse().unwrap(),
                            &at,
                            &a,
                            api_body(method, path),
                        )
                        .await;
                    assert_eq!(
                        answer.status, 404,
                        "{what} with B's object: {}",
                        answer.body
                    );
                }
                Role::List => {
                    let answer = app.get(path, &a).await;
                    assert_eq!(answer.status, 200, "{what}: {}", answer.body);
                    assert_no_trace(&what, &answer.body.to_string(), &theirs);
                }
                Role::Acting => {
                    let answer = app
                        .call(
                            method.to_uppercase().parse().unwrap(),
                            path,
                            &a,
                            api_body(method, path),
                        )
                        .await;
                    assert_eq!(
                        answer.status, 403,
                        "{what} naming B's partner: {}",
                        answer.body
                    );
                }
                Role::ConsoleAddressed => {
                    let at = theirs.address(path);
                    // What B's own forms would carry, so that only the tenant check refuses.
                    let form = [
                        ("csrf", csrf.as_str()),
                        ("status", "INACTIVE"),
                        ("since", "2020-01-01T00:00"),
                        ("name", "taken"),
                        ("partners", "pb"),
                    ];
                    let (status, page, _) = if method == "get" {
                        browser.get(&at).await
                    } else {
                        browser.post(&at, &form).await
                    };
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{what} with B's object: {page}"
                    );
                }
                Role::ConsoleList => {
                    let (status, page, _) = browser.get(path).await;
                    assert_eq!(status, StatusCode::OK, "{what}");
                    assert_no_trace(&what, &page, &theirs);
                }
                Role::ConsoleActing => {
                    let mut form = vec![("csrf", csrf.as_str())];
                    form.extend(console_form(path));
                    let (status, page, _) = browser.post(path, &form).await;
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{what} naming B's partner: {page}"
                    );
                }
                Role::ConsoleAdmin => {
                    let at = path.replace("{id}", "pb");
                    let status = if method == "get" {
                        browser.get(&at).await.0
                    } else {
                        browser
                            .post(&at, &[("csrf", &csrf), ("enabled", "false")])
                            .await
                            .0
                    };
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{what} as a partner's client"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 35, "{checked} routes checked");

    // B's objects are as they were, and B still sees them.
    let after = theirs.as_b_sees_them(&app, &b).await;
    assert_eq!(before, after, "nothing of B's changed");
    let events = app.get("/api/v1/events", &b).await.body;
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(1),
        "B's events: {events}"
    );
    let rejections = app.get("/api/v1/rejections", &b).await.body;
    assert!(
        rejections.to_string().contains(&theirs.source),
        "B sees its rejection"
    );
}
