//! Admission: a bound on the requests a listener serves at once, and a deadline on the wait for
//! a place.
//!
//! Without it a flood is queued, not shed: every request waits its turn at the store, and past a
//! few seconds marketplaces time out and send again, which feeds the flood. With it a request
//! takes one of `max_in_flight` places (FIFO, so the oldest waiter is served first); one that has
//! waited `queue_deadline` without a place is answered 503 `overloaded` with `Retry-After` at
//! once, having read nothing and stored nothing. At most [`WAITING_PER_PLACE`] requests per place
//! wait; past that a request is shed without waiting, so under a flood many times the capacity
//! the shed are told at once instead of each holding a connection for the whole deadline, and the
//! accepted wait only as long as that queue takes to serve. The probes and `/metrics` take no
//! place, so they answer promptly whatever the load.
//!
//! Holding a place spans the handler (reading the body included), so the places also bound the
//! memory bodies take: at most `max_in_flight` × the body limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use switchyard_core::metrics::{self, Metrics};

use crate::error::AppError;

/// What a shed request is told to wait, in seconds.
pub const OVERLOADED_RETRY_AFTER_SECS: i64 = 1;

/// Requests that may wait per place; more are shed at once.
pub const WAITING_PER_PLACE: usize = 4;

/// Paths that never wait for a place.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The places of one listener. Cloning shares them.
#[derive(Clone)]
pub struct Admission {
    places: Arc<Semaphore>,
    max_in_flight: usize,
    /// Requests waiting for a place now.
    waiting: Arc<AtomicUsize>,
    queue_deadline: Duration,
    metrics: Metrics,
}

impl Admission {
    pub fn new(max_in_flight: usize, queue_deadline: Duration, metrics: Metrics) -> Admission {
        for reason in ["deadline", "line_full", "connections"] {
            metrics.add(&metrics::HTTP_SHED, &[("reason", reason)], 0);
        }
        Admission {
            places: Arc::new(Semaphore::new(max_in_flight.max(1))),
            max_in_flight: max_in_flight.max(1),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue_deadline,
            metrics,
        }
    }
}

impl Admission {
    /// Requests holding a place now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.places.available_permits()
    }
}

/// The middleware: serves the request once it has a place, or answers 503 `overloaded`.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    if EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let place = match admission.places.clone().try_acquire_owned() {
        Ok(place) => place,
        Err(_) => match wait_for_place(&admission).await {
            Ok(place) => place,
            Err(reason) => {
                admission
                    .metrics
                    .inc(&metrics::HTTP_SHED, &[("reason", reason)]);
                return AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the hub is serving as many requests as it can; nothing was stored, try again",
                )
                .retry_after(OVERLOADED_RETRY_AFTER_SECS)
                .into_response();
            }
        },
    };
    let response = next.run(request).await;
    drop(place);
    response
}

/// Waits for a place, in line, for at most the queueing deadline; else why not (`line_full`,
/// `deadline`), as the shed counter's reason.
async fn wait_for_place(
    admission: &Admission,
) -> Result<tokio::sync::OwnedSemaphorePermit, &'static str> {
    let limit = admission.max_in_flight.saturating_mul(WAITING_PER_PLACE);
    // Counted out on drop, so a request whose client goes away while it waits leaves the line.
    let _in_line = InLine::join(&admission.waiting, limit).ok_or("line_full")?;
    let waited = tokio::time::timeout(
        admission.queue_deadline,
        admission.places.clone().acquire_owned(),
    )
    .await;
    // Timed out, or the semaphore closed (this code never closes it).
    waited.ok().and_then(Result::ok).ok_or("deadline")
}

/// One request's place in the line of those waiting.
struct InLine<'a>(&'a AtomicUsize);

impl<'a> InLine<'a> {
    fn join(waiting: &'a AtomicUsize, limit: usize) -> Option<InLine<'a>> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(InLine(waiting))
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer to a connection over the bound, written without HTTP machinery: it costs no
/// parser, no buffers and no place.
const TURNED_AWAY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 119\r\n\r\n\
{\"error\":{\"code\":\"overloaded\",\"message\":\"the hub has as many connections as it serves; nothing was stored, try again\"}}";

/// Answers a connection over the bound 503 `overloaded` and closes it. What the client sent is
/// read first, and after the answer the socket lingers (up to a second) until the client has
/// closed: closing with unread input would reset the connection, and a reset can destroy the
/// answer before the client reads it.
pub async fn turn_away(mut stream: tokio::net::TcpStream, metrics: Metrics) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    metrics.inc(&metrics::HTTP_SHED, &[("reason", "connections")]);
    let mut buf = [0u8; 2048];
    let linger = async {
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
        stream.write_all(TURNED_AWAY).await?;
        stream.shutdown().await?;
        // Drain until the client closes, for at most 64 KiB.
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turned_away_answer_is_well_formed_json_with_its_length() {
        let text = std::str::from_utf8(TURNED_AWAY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "overloaded");
    }
}
