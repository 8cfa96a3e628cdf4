//! The console's HTML building blocks: escaping, the page layout, forms, tables and bar charts.
//!
//! Every text that comes from a record or a request goes through [`esc`]; the builders here take
//! already-escaped markup only where their parameter is named `html`.

use std::collections::BTreeMap;

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::Session;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn q(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// A submitted form (or query string), keeping repeated names.
#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The first value of a field, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

fn html_response(body: String) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn document(title: &str, nav: &str, html: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Switchyard</title><link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head>\
         <body>{nav}<main><h1>{title}</h1>{html}</main></body></html>",
        title = esc(title),
    )
}

/// A page outside a session (sign-in, errors).
pub fn bare_page(title: &str, html: &str) -> Response {
    let nav = "<header><a class=\"brand\" href=\"/\">Switchyard</a></header>";
    html_response(document(title, nav, html))
}

/// A page of the signed-in console, with the navigation and the sign-out form.
pub fn page(session: &Session, title: &str, html: &str) -> Response {
    let mut links = vec![
        ("/console/webhooks", "Webhooks"),
        ("/console/events", "Events"),
        ("/console/failures", "Failures"),
        ("/console/sources", "Sources"),
    ];
    if session.client.admin {
        links.push(("/console/partners", "Partners"));
    }
    links.push(("/docs", "API"));
    let items: String = links
        .iter()
        .map(|(href, label)| format!("<a href=\"{href}\">{label}</a>"))
        .collect();
    let notice = if session.hidden_partners.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"notice\">The console is switched off for {}; the API still works for them.</p>",
            esc(&session.hidden_partners.join(", "))
        )
    };
    let nav = format!(
        "<header><a class=\"brand\" href=\"/\">Switchyard</a><nav>{items}</nav>\
         <form method=\"post\" action=\"/logout\" class=\"inline\">{csrf}\
         <span class=\"who\">{who}</span> <button type=\"submit\">Sign out</button></form></header>",
        csrf = csrf_field(session),
        who = esc(&session.client.id),
    );
    html_response(document(title, &nav, &format!("{notice}{html}")))
}

pub fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// A one-button form posting to `action`, for actions such as pause or retry.
pub fn button_form(session: &Session, action: &str, label: &str, confirm: Option<&str>) -> String {
    let confirm = confirm
        .map(|c| format!(" data-confirm=\"{}\"", esc(c)))
        .unwrap_or_default();
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\"{confirm}>{}<button type=\"submit\">{}</button></form>",
        esc(action),
        csrf_field(session),
        esc(label)
    )
}

/// A table; cells are markup (escape text before passing it).
pub fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let head: String = headers
        .iter()
        .map(|h| format!("<th>{}</th>", esc(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|row| {
            let cells: String = row.iter().map(|c| format!("<td>{c}</td>")).collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!("<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
}

/// A time as the console shows it (UTC, to the second).
pub fn time(t: jiff::Timestamp) -> String {
    let text = t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    format!("<time datetime=\"{t}\">{}</time>", esc(&text))
}

pub fn opt_time(t: Option<jiff::Timestamp>) -> String {
    t.map(time).unwrap_or_else(|| "—".into())
}

pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// A status as a coloured badge.
pub fn badge(text: &str) -> String {
    let class = match text {
        "ACTIVE" | "succeeded" | "ok" | "processed" => "good",
        "INACTIVE" | "pending" | "open" => "warn",
        "failed" | "refused" => "bad",
        _ => "plain",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(text))
}

/// A stacked bar chart of counts per bucket and series, as inline SVG (no script needed).
pub fn bar_chart(
    title: &str,
    buckets: &[jiff::Timestamp],
    series: &BTreeMap<String, BTreeMap<jiff::Timestamp, u64>>,
) -> String {
    const COLOURS: [&str; 8] = [
        "#c0392b", "#2471a3", "#d68910", "#229954", "#7d3c98", "#17a589", "#a04000", "#566573",
    ];
    let totals: Vec<u64> = buckets
        .iter()
        .map(|b| {
            series
                .values()
                .map(|s| s.get(b).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    if totals.iter().all(|t| *t == 0) {
        return format!(
            "<figure class=\"chart\"><figcaption>{}</figcaption><p class=\"empty\">None in this window.</p></figure>",
            esc(title)
        );
    }
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (width, height) = (720.0, 160.0);
    let bar = width / buckets.len().max(1) as f64;
    let mut rects = String::new();
    for (i, bucket) in buckets.iter().enumerate() {
        let mut y = height;
        for (n, (name, counts)) in series.iter().enumerate() {
            let count = counts.get(bucket).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let h = count as f64 / max as f64 * (height - 10.0);
            y -= h;
            rects += &format!(
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} · {}: {count}</title></rect>",
                i as f64 * bar + 1.0,
                (bar - 2.0).max(1.0),
                COLOURS[n % COLOURS.len()],
                esc(&bucket.strftime("%m-%d %H:%M").to_string()),
                esc(name),
            );
        }
    }
    let legend: String = series
        .keys()
        .enumerate()
        .map(|(n, name)| {
            format!(
                "<span><i style=\"background:{}\"></i>{}</span>",
                COLOURS[n % COLOURS.len()],
                esc(name)
            )
        })
        .collect();
    let total: u64 = totals.iter().sum();
    format!(
        "<figure class=\"chart\"><figcaption>{} — {total} in all, at most {max} per bar</figcaption>\
         <svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">\
         <line x1=\"0\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" stroke=\"#999\"/>{rects}</svg>\
         <div class=\"legend\">{legend}</div></figure>",
        esc(title),
        esc(title),
    )
}
