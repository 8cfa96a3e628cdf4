//! `GET /docs`: the OpenAPI document as one HTML page, operations grouped by tag, with no script
//! and no outside asset. It reads the generated document, so it says what `/openapi.json` says;
//! it is a maud template, so every text of the document is escaped.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

/// Follows a `#/…` reference within the document.
pub(super) fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer))
            .unwrap_or(value),
        None => value,
    }
}

/// A short name for a schema's type.
fn type_name(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    let base = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    };
    match (
        schema.get("format").and_then(Value::as_str),
        schema.get("enum").and_then(Value::as_array),
    ) {
        (_, Some(values)) => format!(
            "{base}: {}",
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(format), None) => format!("{base} ({format})"),
        (None, None) => base,
    }
}

pub(super) const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The page's style sheet: constant markup.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
code,pre{font-family:ui-monospace,monospace;font-size:.9em}\
pre{background:#f4f4f4;padding:.6rem;overflow-x:auto}\
section.op{border-top:1px solid #ddd;padding:.5rem 0}\
.method{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}";

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Renders the document as one self-contained HTML page: operations grouped by tag.
pub fn render_html(doc: &Value) -> String {
    let title = text(&doc["info"], "title");
    let tags = doc["tags"].as_array().cloned().unwrap_or_default();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " API" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) " API " small { (text(&doc["info"], "version")) } }
                p { (text(&doc["info"], "description")) }
                p {
                    "The machine-readable document: " a href="/openapi.json" { "/openapi.json" }
                    " (OpenAPI " (text(doc, "openapi")) ")."
                }
                nav { ul {
                    @for tag in &tags {
                        li { a href={ "#tag-" (text(tag, "name")) } { (text(tag, "name")) } }
                    }
                } }
                @for tag in &tags {
                    @let name = text(tag, "name");
                    h2 id={ "tag-" (name) } { (name) }
                    p { (text(tag, "description")) }
                    @for (path, item) in &paths {
                        @for method in METHODS {
                            @if let Some(operation) = item.get(method) {
                                @if operation["tags"].as_array().and_then(|t| t.first()).and_then(Value::as_str) == Some(name) {
                                    (operation_html(doc, path, method, operation))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

/// How an operation authenticates, in words.
fn authentication(doc: &Value, operation: &Value) -> String {
    let security = operation.get("security").unwrap_or(&doc["security"]);
    let schemes: Vec<String> = security
        .as_array()
        .map(|alternatives| {
            alternatives
                .iter()
                .filter_map(Value::as_object)
                .map(|req| {
                    if req.is_empty() {
                        "none".to_string()
                    } else {
                        req.keys().cloned().collect::<Vec<_>>().join(" + ")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if schemes.is_empty() {
        "none".to_string()
    } else {
        schemes.join(" or ")
    }
}

fn operation_html(doc: &Value, path: &str, method: &str, operation: &Value) -> Markup {
    let parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let bodies = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let responses = operation
        .get("responses")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    html! {
        section class="op" id=(text(operation, "operationId")) {
            h3 { span class="method" { (method) } " " code { (path) } }
            p { strong { (text(operation, "summary")) } " — " (text(operation, "description")) }
            p { "Authentication: " (authentication(doc, operation)) }
            @if !parameters.is_empty() {
                table {
                    tr { th { "parameter" } th { "in" } th { "type" } th { "required" } th { "description" } }
                    @for p in &parameters {
                        @let p = resolve(doc, p);
                        tr {
                            td { code { (text(p, "name")) } }
                            td { (text(p, "in")) }
                            td { (type_name(&p["schema"])) }
                            td { @if p.get("required").and_then(Value::as_bool).unwrap_or(false) { "yes" } @else { "no" } }
                            td { (text(p, "description")) }
                        }
                    }
                }
            }
            @for (media, body) in &bodies {
                p { "Request body (" code { (media) } "): " (type_name(&body["schema"])) }
                @if let Some(example) = body.get("example") {
                    pre { (serde_json::to_string_pretty(example).unwrap_or_default()) }
                }
            }
            p { "Responses:" }
            ul {
                @for (code, response) in &responses {
                    @let response = resolve(doc, response);
                    li {
                        code { (code) } " " (text(response, "description")) " "
                        em { (response.pointer("/content/application~1json/schema").map(type_name).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}
