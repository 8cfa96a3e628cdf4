//! `GET /docs`: the OpenAPI document as one HTML page, operations grouped by tag, with no script
//! and no outside asset. It reads the generated document, so it says what `/openapi.json` says.

use std::fmt::Write as _;

use serde_json::Value;

pub(super) use crate::markup::escape;

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

/// Renders the document as one self-contained HTML page: operations grouped by tag.
pub fn render_html(doc: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let mut html = String::new();
    let title = text(&doc["info"], "title");
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} API</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}\
         code,pre{{font-family:ui-monospace,monospace;font-size:.9em}}\
         pre{{background:#f4f4f4;padding:.6rem;overflow-x:auto}}\
         section.op{{border-top:1px solid #ddd;padding:.5rem 0}}\
         .method{{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}}\
         </style></head><body>\n<h1>{} API <small>{}</small></h1>\n<p>{}</p>\n\
         <p>The machine-readable document: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>\n",
        escape(&title),
        escape(&title),
        escape(&text(&doc["info"], "version")),
        escape(&text(&doc["info"], "description")),
        escape(&text(doc, "openapi")),
    );
    let tags = doc["tags"].as_array().cloned().unwrap_or_default();
    html.push_str("<nav><ul>\n");
    for tag in &tags {
        let name = text(tag, "name");
        let _ = writeln!(html, "<li><a href=\"#tag-{0}\">{0}</a></li>", escape(&name));
    }
    html.push_str("</ul></nav>\n");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for tag in &tags {
        let name = text(tag, "name");
        let _ = write!(
            html,
            "<h2 id=\"tag-{0}\">{0}</h2>\n<p>{1}</p>\n",
            escape(&name),
            escape(&text(tag, "description"))
        );
        for (path, item) in &paths {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let in_tag = operation["tags"]
                    .as_array()
                    .and_then(|t| t.first())
                    .and_then(Value::as_str)
                    == Some(name.as_str());
                if in_tag {
                    render_operation(&mut html, doc, path, method, operation);
                }
            }
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn render_operation(html: &mut String, doc: &Value, path: &str, method: &str, operation: &Value) {
    let text = |key: &str| operation.get(key).and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        html,
        "<section class=\"op\" id=\"{}\">\n<h3><span class=\"method\">{}</span> <code>{}</code></h3>\n\
         <p><strong>{}</strong> — {}</p>\n",
        escape(text("operationId")),
        escape(method),
        escape(path),
        escape(text("summary")),
        escape(text("description")),
    );
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
    let auth = if schemes.is_empty() {
        "none".to_string()
    } else {
        schemes.join(" or ")
    };
    let _ = writeln!(html, "<p>Authentication: {}</p>", escape(&auth));
    if let Some(parameters) = operation.get("parameters").and_then(Value::as_array) {
        html.push_str(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>\n",
        );
        for p in parameters {
            let p = resolve(doc, p);
            let get = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(get("name")),
                escape(get("in")),
                escape(&type_name(&p["schema"])),
                if required { "yes" } else { "no" },
                escape(get("description")),
            );
        }
        html.push_str("</table>\n");
    }
    if let Some(content) = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
    {
        for (media, body) in content {
            let schema = type_name(&body["schema"]);
            let _ = writeln!(
                html,
                "<p>Request body (<code>{}</code>): {}</p>",
                escape(media),
                escape(&schema)
            );
            if let Some(example) = body.get("example") {
                let shown = serde_json::to_string_pretty(example).unwrap_or_default();
                let _ = writeln!(html, "<pre>{}</pre>", escape(&shown));
            }
        }
    }
    html.push_str("<p>Responses:</p>\n<ul>\n");
    if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
        for (code, response) in responses {
            let response = resolve(doc, response);
            let schema = response
                .pointer("/content/application~1json/schema")
                .map(type_name)
                .unwrap_or_default();
            let _ = writeln!(
                html,
                "<li><code>{}</code> {} <em>{}</em></li>",
                escape(code),
                escape(
                    response
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
                escape(&schema),
            );
        }
    }
    html.push_str("</ul>\n</section>\n");
}
