//! Every route of the router, with its methods, for the tests that must cover them all (the
//! OpenAPI document's, tenant isolation's). The JSON API's come from its `OpenApiRouter`
//! ([`crate::routes::api_routes`]), which mounts each handler at the path and method its
//! `#[utoipa::path]` names; the rest are plain axum `.route(…)` calls, and axum's `Router` cannot
//! be asked what it holds, so those are read from the router's source (`routes/mod.rs` and the
//! console's). A route added either way is then a route those tests know about, and fail on
//! until it is covered.

use std::collections::{BTreeMap, BTreeSet};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `routes/mod.rs` and `console/mod.rs`, as compiled into this build.
const SOURCES: [&str; 2] = [
    include_str!("routes/mod.rs"),
    include_str!("console/mod.rs"),
];

/// Every route of the router (the API's and the console's) with its methods (`get`, `post`, ...).
pub fn declared_routes() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = api_routes();
    for (path, methods) in plain_routes() {
        all.entry(path).or_default().extend(methods);
    }
    all
}

/// The JSON API's routes, as its `OpenApiRouter` mounted them.
pub fn api_routes() -> BTreeMap<String, BTreeSet<String>> {
    let api = crate::routes::api_routes().into_openapi();
    let mut all = BTreeMap::new();
    for (path, item) in &api.paths.paths {
        let item = serde_json::to_value(item).unwrap_or_default();
        let methods = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_string())
            .collect();
        all.insert(path.clone(), methods);
    }
    all
}

/// The routes mounted with a plain `.route(…)`: the document, its page, metrics, the console.
pub fn plain_routes() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = BTreeMap::new();
    for source in SOURCES {
        for (path, methods) in routes_in_source(source) {
            all.entry(path)
                .or_insert_with(BTreeSet::new)
                .extend(methods);
        }
    }
    all
}

/// Every `.route("path", method(…).method(…))` of the router's source, with its methods.
pub fn routes_in_source(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let after = &rest[at + ".route(".len()..];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &after[..end];
        rest = &after[end..];
        let Some(open) = args.find('"') else { continue };
        let Some(close) = args[open + 1..].find('"') else {
            continue;
        };
        let path = args[open + 1..open + 1 + close].to_string();
        let handlers = &args[open + 1 + close + 1..];
        let methods = routes.entry(path).or_default();
        for method in METHODS {
            let call = format!("{method}(");
            let mut from = 0;
            while let Some(found) = handlers[from..].find(&call) {
                let start = from + found;
                let before = handlers[..start].chars().next_back();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    methods.insert(method.to_string());
                }
                from = start + call.len();
            }
        }
    }
    routes
}
