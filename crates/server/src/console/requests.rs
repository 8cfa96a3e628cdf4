//! What the pages share about requests and answers: a form into a use case's typed input, query
//! strings, times and ids from fields, redirects, and the fixed notices a redirect may ask for.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use serde_json::Value;

use super::ConsoleError;
use super::html::Form;
use crate::error::AppError;

/// Rows per page of a list.
pub const PAGE_SIZE: u32 = 50;

/// A form turned into a use case's typed input; a shape the API does not take is a 400.
pub fn input<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ConsoleError> {
    serde_json::from_value(body)
        .map_err(|e| ConsoleError(AppError::bad_request("invalid_form", e.to_string())))
}

pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

/// A console-local path to go back to, or the fallback (never an outside URL).
pub fn back_to(form: &Form, fallback: &str) -> String {
    match form.get("back") {
        Some(path) if path.starts_with("/console/") && !path.contains("//") => path,
        _ => fallback.to_string(),
    }
}

/// Notices a redirect may ask a page to show: fixed texts, never text from the URL.
pub fn notice(query: &Form) -> Markup {
    let text = match query.get("notice").as_deref() {
        Some("created") => "Webhook created.",
        Some("saved") => "Saved.",
        Some("paused") => "Webhook paused: deliveries wait until it is resumed.",
        Some("resumed") => "Webhook resumed.",
        Some("deleted") => "Webhook deleted; its pending deliveries ended as failed.",
        Some("retried") => "The delivery is pending again and will be sent now.",
        Some("replayed") => "Replay started: the events of that range are pending again.",
        Some("source_saved") => "Source saved.",
        Some("reconciled") => "Reconciled: the run is listed below.",
        Some("reconcile_failed") => "The run failed: its error is below; the next run asks again.",
        Some("partner_saved") => "Console setting saved.",
        _ => return Markup::default(),
    };
    html! { p class="notice" { (text) } }
}

/// The link to the page after a full one: `path` with the query the page was asked with (less
/// a redirect's `notice`), `key` set to the last row's key. `None` when the page was not full:
/// there is nothing older.
pub fn older_page<T, K: std::fmt::Display>(
    path: &str,
    query: &Form,
    key: &str,
    rows: &[T],
    key_of: impl Fn(&T) -> K,
) -> Option<String> {
    let last = rows.last().filter(|_| rows.len() == PAGE_SIZE as usize)?;
    let kept: Vec<(String, String)> = query
        .0
        .iter()
        .filter(|(name, _)| name != key && name != "notice")
        .cloned()
        .chain([(key.to_string(), key_of(last).to_string())])
        .collect();
    Some(format!(
        "{path}?{}",
        serde_urlencoded::to_string(&kept).unwrap_or_default()
    ))
}

pub fn query(raw: Option<String>) -> Form {
    Form::parse(raw.unwrap_or_default().as_bytes())
}

/// A time from a `datetime-local` field (taken as UTC) or RFC 3339.
pub fn parse_time(form: &Form, name: &str) -> Result<Option<Timestamp>, ConsoleError> {
    let Some(text) = form.get(name) else {
        return Ok(None);
    };
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(Some(t));
    }
    let local = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text.clone()
    };
    local
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| Some(z.timestamp()))
        .ok_or_else(|| {
            ConsoleError(AppError::invalid(
                name,
                format!("{name} must be a date and time such as 2026-11-23T08:00"),
            ))
        })
}

/// A time as a `datetime-local` field's value.
pub fn time_input_value(t: Option<Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

pub fn parse_uuid<Id: std::str::FromStr>(form: &Form, name: &str) -> Option<Id> {
    form.get(name).and_then(|v| v.parse().ok())
}

/// JSON as the pages show it (the template escapes it).
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_page_keeps_the_filters_and_moves_the_key() {
        let asked = query(Some(
            "reason=bad%20signature&before=old&notice=retried&since=2026-12-01T00:00".into(),
        ));
        let full: Vec<u32> = (1..=PAGE_SIZE).collect();
        assert_eq!(
            older_page("/console/rejections", &asked, "before", &full, |n| n * 10).as_deref(),
            Some("/console/rejections?reason=bad+signature&since=2026-12-01T00%3A00&before=500"),
        );
        let short = &full[..PAGE_SIZE as usize - 1];
        assert_eq!(
            older_page("/console/rejections", &asked, "before", short, |n| *n),
            None
        );
    }
}
