//! The routes as the router's source declares them (`routes/mod.rs` and the console's), with
//! their methods. axum's `Router` cannot be asked what it holds, so the tests that must cover
//! every route (the OpenAPI document's, tenant isolation's) read its source: a route added to the
//! router is then a route those tests know about, and fail on until it is covered.

use std::collections::{BTreeMap, BTreeSet};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `routes/mod.rs` and `console/mod.rs`, as compiled into this build.
const SOURCES: [&str; 2] = [
    include_str!("routes/mod.rs"),
    include_str!("console/mod.rs"),
];

/// Every route of the router (the API's and the console's) with its methods (`get`, `post`, ...).
pub fn declared_routes() -> BTreeMap<String, BTreeSet<String>> {
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
