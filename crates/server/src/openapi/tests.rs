//! The document's own checks: committed, covering the router, shaped as OpenAPI 3.1, and its page.

use std::collections::BTreeSet;

use serde_json::Value;

use super::page::{METHODS, resolve};
use super::{document, render_html};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

/// Routes that are not part of the JSON API: this document, its page, metrics, and the HTML
/// console.
fn undocumented(path: &str) -> bool {
    matches!(path, "/" | "/openapi.json" | "/docs" | "/metrics")
        || ["/console", "/login", "/logout", "/assets"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

fn pretty(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

#[test]
fn openapi_committed_document_is_current() {
    let generated = pretty(&document());
    if std::env::var_os("SWITCHYARD_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not what document() builds; regenerate it with \
         SWITCHYARD_UPDATE_OPENAPI=1 cargo test -p switchyard-server openapi"
    );
}

#[test]
fn openapi_documents_every_route_of_the_router_with_its_methods() {
    let doc = document();
    let mut missing = Vec::new();
    // A plain `.route(…)` is outside the document: only the undocumented ones may be.
    for (path, methods) in crate::route_table::plain_routes() {
        if !undocumented(&path) {
            missing.push(format!(
                "{path} (mounted with .route, not from a #[utoipa::path])"
            ));
        }
        assert!(!methods.is_empty(), "no method found for {path}");
    }
    let routes = crate::route_table::declared_routes();
    assert!(routes.len() >= 40, "the route table: {routes:?}");
    for (path, methods) in &routes {
        if undocumented(path) {
            continue;
        }
        assert!(!methods.is_empty(), "no method found for {path}");
        for method in methods {
            if doc["paths"][path].get(method).is_none() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "not in the document: {missing:?}");
    // The API's routes are there, with their methods.
    let api = crate::route_table::api_routes();
    assert!(api.len() >= 25, "{api:?}");
    assert_eq!(
        api["/v3/webhooks/subscriptions/{id}"]
            .iter()
            .collect::<Vec<_>>(),
        ["delete", "get", "patch"]
    );
}

#[test]
fn openapi_route_parser_reads_chained_methods() {
    let source = r#"
        .route("/a", get(x::get_one).patch(x::update).delete(x::delete))
        .route(
            "/b/{id}",
            post(api::publish).get(api::list_events),
        )
        .route("/console", get(console::index))
    "#;
    let routes = crate::route_table::routes_in_source(source);
    let names = |p: &str| routes[p].iter().cloned().collect::<Vec<_>>();
    assert_eq!(names("/a"), ["delete", "get", "patch"]);
    assert_eq!(names("/b/{id}"), ["get", "post"]);
    assert!(undocumented("/console"));
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn openapi_document_has_the_shape_of_openapi_3_1() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1."))
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    let mut linked = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with('/'), "{path}");
        let item = item.as_object().expect("path item");
        assert!(!item.is_empty(), "{path} has no operation");
        let templated: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for (method, operation) in item {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(operation["summary"].is_string(), "{id}: summary");
            let tag = operation["tags"][0].as_str().expect("tag");
            assert!(tags.contains(tag), "{id}: undeclared tag {tag}");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{id}: no success answer"
            );
            for (code, response) in responses {
                assert!(
                    code.len() == 3 && code.parse::<u16>().is_ok(),
                    "{id}: {code}"
                );
                let response = resolve(&doc, response);
                assert!(response["description"].is_string(), "{id} {code}");
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    linked.push(link["operationId"].as_str().expect("link").to_string());
                }
                assert!(
                    response
                        .pointer("/content/application~1json/schema")
                        .is_some(),
                    "{id} {code}: no JSON schema"
                );
            }
            let params: Vec<&Value> = operation["parameters"]
                .as_array()
                .map(|p| p.iter().collect())
                .unwrap_or_default();
            let in_path: BTreeSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            assert_eq!(in_path, templated, "{id}: path parameters");
            for p in &params {
                assert!(
                    ["path", "query", "header"].contains(&p["in"].as_str().unwrap_or("")),
                    "{id}"
                );
                assert!(p["schema"].is_object(), "{id}: parameter schema");
            }
            if let Some(body) = operation.get("requestBody") {
                let content = body["content"].as_object().expect("content");
                for (media, m) in content {
                    assert!(m["schema"].is_object(), "{id} {media}: schema");
                    assert!(
                        m.get("example").is_some()
                            || m["examples"].as_object().is_some_and(|e| !e.is_empty()),
                        "{id} {media}: example"
                    );
                }
            }
            let security = operation.get("security").unwrap_or(&doc["security"]);
            for requirement in security.as_array().expect("security") {
                for scheme in requirement.as_object().expect("requirement").keys() {
                    assert!(schemes.contains_key(scheme), "{id}: scheme {scheme}");
                }
            }
        }
    }
    for target in linked {
        assert!(ids.contains(&target), "a link names no operation {target}");
    }
}

#[test]
fn openapi_docs_page_lists_every_operation_escaped() {
    let doc = document();
    let page = render_html(&doc);
    for item in doc["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("item").values() {
            let id = operation["operationId"].as_str().expect("id");
            assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
        }
    }
    assert!(!page.contains("<script"));
    assert!(
        !page.contains("<link") && !page.contains(" src="),
        "no outside asset"
    );
    // Text is escaped: the descriptions' quotes and markup-looking text (`<Request>…`).
    assert!(page.contains("&quot;"));
    assert!(page.contains("&lt;Request&gt;") && !page.contains("<Request>"));
    // A hostile document renders inert.
    let hostile = serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "<script>alert(1)</script>", "version": "\"><b>", "description": "&"},
        "tags": [{"name": "t", "description": "<img src=x onerror=alert(1)>"}],
        "paths": {"/x": {"get": {"operationId": "o\"><script>", "tags": ["t"],
                   "summary": "<i>s</i>", "responses": {}}}},
    });
    let page = render_html(&hostile);
    assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<i>"));
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
}
