//! The console's HTML building blocks: the page layout, forms, tables and bar charts, as maud
//! templates.
//!
//! Every page is a [`maud::html!`] template: text spliced in with `(expr)` is escaped by maud,
//! so no text from a record or a request can reach a page as markup, and nothing has to be
//! called for that. The builders take [`Markup`] only for what other templates made; `format!`
//! builds text (URLs, messages), never markup. No `PreEscaped` is needed: `DOCTYPE` is maud's
//! constant.

use std::collections::BTreeMap;

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, display, html};

use super::Session;

/// Percent-encodes a query value (maud escapes for HTML, it does not encode URLs).
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

fn html_response(markup: Markup) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn document(title: &str, header: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Switchyard" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                (header)
                main {
                    h1 { (title) }
                    (main)
                }
            }
        }
    }
}

/// A page outside a session (sign-in, errors).
pub fn bare_page(title: &str, main: Markup) -> Response {
    let header = html! {
        header { a class="brand" href="/" { "Switchyard" } }
    };
    html_response(document(title, header, main))
}

/// A page of the signed-in console, with the navigation and the sign-out form.
pub fn page(session: &Session, title: &str, main: Markup) -> Response {
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
    let header = html! {
        header {
            a class="brand" href="/" { "Switchyard" }
            nav {
                @for (href, label) in &links {
                    a href=(href) { (label) }
                }
            }
            form method="post" action="/logout" class="inline" {
                (csrf_field(session))
                span class="who" { (session.client.id) }
                " "
                button type="submit" { "Sign out" }
            }
        }
    };
    let main = html! {
        @if !session.hidden_partners.is_empty() {
            p class="notice" {
                "The console is switched off for " (session.hidden_partners.join(", "))
                "; the API still works for them."
            }
        }
        (main)
    };
    html_response(document(title, header, main))
}

pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A form posting to `action` with the session's CSRF token, laid inline (for actions such as
/// pause or retry): `fields` are its hidden inputs and button. With `confirm`, the console's
/// script asks that question first.
pub fn inline_form(
    session: &Session,
    action: &str,
    confirm: Option<&str>,
    fields: Markup,
) -> Markup {
    html! {
        form method="post" action=(action) class="inline" data-confirm=[confirm] {
            (csrf_field(session))
            (fields)
        }
    }
}

/// A one-button form posting to `action`.
pub fn button_form(session: &Session, action: &str, label: &str, confirm: Option<&str>) -> Markup {
    inline_form(
        session,
        action,
        confirm,
        html! { button type="submit" { (label) } },
    )
}

/// A table of cells made by templates; an empty one says `empty` instead.
pub fn table(headers: &[&str], rows: &[Vec<Markup>], empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="empty" { (empty) }
        } @else {
            table {
                thead { tr { @for h in headers { th { (h) } } } }
                tbody {
                    @for row in rows {
                        tr { @for cell in row { td { (cell) } } }
                    }
                }
            }
        }
    }
}

/// A two-column table of an object's facts: a label and its value.
pub fn facts(rows: &[(&str, Markup)]) -> Markup {
    html! {
        table {
            thead { tr { th {} th {} } }
            tbody {
                @for (label, value) in rows {
                    tr { td { (label) } td { (value) } }
                }
            }
        }
    }
}

/// A time as the console shows it (UTC, to the second).
pub fn time(t: jiff::Timestamp) -> Markup {
    html! {
        time datetime=(display(t)) { (display(t.strftime("%Y-%m-%d %H:%M:%S UTC"))) }
    }
}

pub fn opt_time(t: Option<jiff::Timestamp>) -> Markup {
    html! {
        @match t {
            Some(t) => (time(t)),
            None => "—",
        }
    }
}

pub fn link(href: &str, text: &str) -> Markup {
    html! { a href=(href) { (text) } }
}

/// A status as a coloured badge.
pub fn badge(status: &str) -> Markup {
    labelled_badge(status, status)
}

/// A status's coloured badge showing another word (`on` for `ok`, say).
pub fn labelled_badge(status: &str, label: &str) -> Markup {
    let class = match status {
        "ACTIVE" | "succeeded" | "ok" | "processed" => "good",
        "INACTIVE" | "pending" | "open" => "warn",
        "failed" | "refused" => "bad",
        _ => "plain",
    };
    html! { span class={ "badge " (class) } { (label) } }
}

/// Text in `<code>`.
pub fn code(text: &str) -> Markup {
    html! { code { (text) } }
}

/// A URL to copy, with the button the console's script copies it with.
pub fn copyable(url: &str) -> Markup {
    html! {
        code class="copy" { (url) }
        " "
        button type="button" class="secondary" data-copy=(url) { "Copy" }
    }
}

/// A stacked bar chart of counts per bucket and series, as inline SVG (no script needed).
pub fn bar_chart(
    title: &str,
    buckets: &[jiff::Timestamp],
    series: &BTreeMap<String, BTreeMap<jiff::Timestamp, u64>>,
) -> Markup {
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
        return html! {
            figure class="chart" {
                figcaption { (title) }
                p class="empty" { "None in this window." }
            }
        };
    }
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (width, height) = (720.0, 160.0);
    let bar = width / buckets.len().max(1) as f64;
    // Each bar's segments, bottom up: (x, y, height, colour, bucket, series, count).
    let mut rects = Vec::new();
    for (i, bucket) in buckets.iter().enumerate() {
        let mut y = height;
        for (n, (name, counts)) in series.iter().enumerate() {
            let count = counts.get(bucket).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let h = count as f64 / max as f64 * (height - 10.0);
            y -= h;
            let x = i as f64 * bar + 1.0;
            rects.push((x, y, h, COLOURS[n % COLOURS.len()], bucket, name, count));
        }
    }
    let total: u64 = totals.iter().sum();
    let bar_width = (bar - 2.0).max(1.0);
    html! {
        figure class="chart" {
            figcaption { (title) " — " (total) " in all, at most " (max) " per bar" }
            svg viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(title) {
                line x1="0" y1=(height) x2=(width) y2=(height) stroke="#999" {}
                @for (x, y, h, colour, bucket, name, count) in &rects {
                    rect x=(format_args!("{x:.1}")) y=(format_args!("{y:.1}"))
                        width=(format_args!("{bar_width:.1}")) height=(format_args!("{h:.1}"))
                        fill=(colour) {
                        title { (display(bucket.strftime("%m-%d %H:%M"))) " · " (name) ": " (count) }
                    }
                }
            }
            div class="legend" {
                @for (n, name) in series.keys().enumerate() {
                    span {
                        i style={ "background:" (COLOURS[n % COLOURS.len()]) } {}
                        (name)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::model::Client;

    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script>\"'&";
    /// `HOSTILE` as it must appear: `<`, `>`, `"` and `&` as entities. maud leaves `'` as it is,
    /// which is inert: every attribute it writes is double-quoted.
    const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";

    fn session() -> Session {
        Session {
            client: Client {
                id: HOSTILE.into(),
                name: HOSTILE.into(),
                secret_hash: String::new(),
                partners: vec![HOSTILE.into()],
                scopes: Default::default(),
                admin: true,
                created_at: jiff::Timestamp::UNIX_EPOCH,
            },
            csrf: HOSTILE.into(),
            hidden_partners: vec![HOSTILE.into()],
        }
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    /// No hostile text survives raw, and it is there escaped as often as it was given.
    fn assert_escaped(markup: &str, times: usize) {
        assert!(!markup.contains("<script>"), "raw: {markup}");
        assert!(!markup.contains("\"'&"), "raw quote: {markup}");
        assert_eq!(markup.matches(ESCAPED).count(), times, "{markup}");
    }

    #[tokio::test]
    async fn the_layout_escapes_by_default() {
        let session = session();
        let main = html! { p { (HOSTILE) } };
        let page = body(page(&session, HOSTILE, main)).await;
        // Title twice, the client's id, the CSRF field, the hidden partner notice, the body.
        assert_escaped(&page, 6);
        assert!(page.contains(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{ESCAPED}\">"
        )));
        assert!(page.contains(&format!("<span class=\"who\">{ESCAPED}</span>")));
        let bare = body(bare_page(HOSTILE, html! { (HOSTILE) })).await;
        assert_escaped(&bare, 3);
        assert!(bare.starts_with("<!DOCTYPE html><html lang=\"en\">"));
    }

    #[test]
    fn forms_tables_and_links_escape_by_default() {
        let session = session();
        let form = button_form(&session, HOSTILE, HOSTILE, Some(HOSTILE)).into_string();
        // Action, confirmation, CSRF token, label.
        assert_escaped(&form, 4);
        assert!(form.starts_with(&format!(
            "<form method=\"post\" action=\"{ESCAPED}\" class=\"inline\" data-confirm=\"{ESCAPED}\">"
        )));
        let rows = vec![vec![
            link(HOSTILE, HOSTILE),
            badge(HOSTILE),
            code(HOSTILE),
            copyable(HOSTILE),
            html! { (HOSTILE) },
        ]];
        let table = table(&[HOSTILE, ""], &rows, HOSTILE).into_string();
        // The header, the link's two, the badge, the code, the copyable's two, the text.
        assert_escaped(&table, 8);
        assert!(table.contains(&format!("<td><a href=\"{ESCAPED}\">{ESCAPED}</a></td>")));
        assert_escaped(&super::table(&[], &[], HOSTILE).into_string(), 1);
        let facts = facts(&[(HOSTILE, html! { (HOSTILE) })]).into_string();
        assert_escaped(&facts, 2);
    }

    #[test]
    fn charts_escape_by_default() {
        let t = jiff::Timestamp::from_second(3600).expect("time");
        let series = BTreeMap::from([(HOSTILE.to_string(), BTreeMap::from([(t, 3)]))]);
        let chart = bar_chart(HOSTILE, &[t], &series).into_string();
        // The caption, the label, the bar's title, the legend.
        assert_escaped(&chart, 4);
        let empty = bar_chart(HOSTILE, &[t], &BTreeMap::new()).into_string();
        assert_escaped(&empty, 1);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(q("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
