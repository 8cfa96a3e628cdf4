//! Where a subscription's deliveries go: its `eventUrl` read as an HTTP URL, a broker address, or
//! `poll:` (nothing pushed; the subscriber polls). Pure: parsing and checking only.
//!
//! | scheme | form |
//! |---|---|
//! | NATS JetStream | `nats://HOST:PORT/SUBJECT` |
//! | RabbitMQ | `amqp://HOST:PORT/VHOST?exchange=EX&routingKey=RK` (VHOST `%2f` for `/`) |
//! | Redis Streams | `redis://HOST:PORT/DB?stream=NAME[&maxlen=N]` |
//! | MQTT | `mqtt://HOST:PORT/TOPIC` |

use crate::error::CoreError;

/// A parsed `eventUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An HTTP or HTTPS URL, as given.
    Http(String),
    Broker(BrokerAddress),
    /// `poll:`: deliveries wait to be read from the subscription's poll endpoint.
    Poll,
}

/// The kinds of broker a delivery can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    Nats,
    Amqp,
    Redis,
    Mqtt,
}

impl BrokerKind {
    pub fn scheme(self) -> &'static str {
        match self {
            BrokerKind::Nats => "nats",
            BrokerKind::Amqp => "amqp",
            BrokerKind::Redis => "redis",
            BrokerKind::Mqtt => "mqtt",
        }
    }
}

/// A broker and where on it a delivery is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    pub kind: BrokerKind,
    pub host: String,
    pub port: u16,
    pub target: BrokerTarget,
}

/// Where on a broker: one variant per kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BrokerTarget {
    /// A JetStream subject.
    Nats {
        subject: String,
    },
    Amqp {
        vhost: String,
        exchange: String,
        routing_key: String,
    },
    Redis {
        db: i64,
        stream: String,
        maxlen: Option<u64>,
    },
    Mqtt {
        topic: String,
    },
}

/// What `eventUrl` names, or why it is not one of the forms above (a 400 naming `field`).
pub fn parse(field: &str, url: &str) -> Result<Destination, CoreError> {
    if url == "poll:" {
        return Ok(Destination::Poll);
    }
    let invalid = |why: &str| CoreError::invalid(field, format!("{field} {why}"));
    if url.len() > 2048 || url.contains(char::is_whitespace) {
        return Err(invalid(
            "must be a URL without spaces, at most 2048 characters",
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(
            "must be an http(s), nats, amqp, redis or mqtt URL, or poll:",
        ));
    };
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            crate::model::validate_http_url(field, url)?;
            return Ok(Destination::Http(url.to_string()));
        }
        "nats" => BrokerKind::Nats,
        "amqp" => BrokerKind::Amqp,
        "redis" => BrokerKind::Redis,
        "mqtt" => BrokerKind::Mqtt,
        _ => {
            return Err(invalid(
                "must be an http(s), nats, amqp, redis or mqtt URL, or poll:",
            ));
        }
    };
    let (authority, path_and_query) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid(
            "must not carry credentials: give them in authDetails (BASIC_AUTH)",
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid("has a port that is not a number from 1 to 65535"))?,
        ),
        _ => (authority, default_port(kind)),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("needs a host"));
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let known = |names: &[&str]| -> Result<(), CoreError> {
        match params.iter().find(|(k, _)| !names.contains(&k.as_str())) {
            Some((k, _)) => Err(invalid(&format!("has an unknown parameter {k:?}"))),
            None => Ok(()),
        }
    };
    let path = decode(path);
    let target = match kind {
        BrokerKind::Nats => {
            known(&[])?;
            if path.is_empty() || path.contains(['*', '>']) || path.split('.').any(str::is_empty) {
                return Err(invalid(
                    "needs a NATS subject without wildcards: nats://HOST:PORT/SUBJECT",
                ));
            }
            BrokerTarget::Nats { subject: path }
        }
        BrokerKind::Amqp => {
            known(&["exchange", "routingKey"])?;
            let routing_key = param("routingKey").unwrap_or_default();
            let exchange = param("exchange").unwrap_or_default();
            if exchange.is_empty() && routing_key.is_empty() {
                return Err(invalid(
                    "needs an exchange or a routing key: amqp://HOST:PORT/VHOST?exchange=EX&routingKey=RK",
                ));
            }
            BrokerTarget::Amqp {
                vhost: if path.is_empty() { "/".into() } else { path },
                exchange,
                routing_key,
            }
        }
        BrokerKind::Redis => {
            known(&["stream", "maxlen"])?;
            let db = if path.is_empty() {
                0
            } else {
                path.parse::<i64>()
                    .ok()
                    .filter(|d| (0..=15).contains(d))
                    .ok_or_else(|| invalid("has a database that is not a number from 0 to 15"))?
            };
            let stream = param("stream").filter(|s| !s.is_empty()).ok_or_else(|| {
                invalid("needs a stream: redis://HOST:PORT/DB?stream=NAME[&maxlen=N]")
            })?;
            let maxlen = match param("maxlen") {
                None => None,
                Some(n) => Some(
                    n.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| invalid("has a maxlen that is not a positive number"))?,
                ),
            };
            BrokerTarget::Redis { db, stream, maxlen }
        }
        BrokerKind::Mqtt => {
            known(&[])?;
            if path.is_empty() || path.contains(['+', '#']) {
                return Err(invalid(
                    "needs an MQTT topic without wildcards: mqtt://HOST:PORT/TOPIC",
                ));
            }
            BrokerTarget::Mqtt { topic: path }
        }
    };
    Ok(Destination::Broker(BrokerAddress {
        kind,
        host: host.to_ascii_lowercase(),
        port,
        target,
    }))
}

fn default_port(kind: BrokerKind) -> u16 {
    match kind {
        BrokerKind::Nats => 4222,
        BrokerKind::Amqp => 5672,
        BrokerKind::Redis => 6379,
        BrokerKind::Mqtt => 1883,
    }
}

/// Percent-decoding of a URL component (`%2f` is `/`); invalid escapes are kept as written.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(url: &str) -> BrokerAddress {
        match parse("eventUrl", url) {
            Ok(Destination::Broker(b)) => b,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn each_form_parses() {
        let n = broker("nats://127.0.0.1:4222/orders.created");
        assert_eq!(
            (n.kind, n.host.as_str(), n.port),
            (BrokerKind::Nats, "127.0.0.1", 4222)
        );
        assert_eq!(
            n.target,
            BrokerTarget::Nats {
                subject: "orders.created".into()
            }
        );
        let a = broker("amqp://rabbit:5673/%2f?exchange=orders&routingKey=created");
        assert_eq!(
            a.target,
            BrokerTarget::Amqp {
                vhost: "/".into(),
                exchange: "orders".into(),
                routing_key: "created".into()
            }
        );
        assert_eq!(a.port, 5673);
        let r = broker("redis://localhost/2?stream=orders&maxlen=1000");
        assert_eq!(r.port, 6379);
        assert_eq!(
            r.target,
            BrokerTarget::Redis {
                db: 2,
                stream: "orders".into(),
                maxlen: Some(1000)
            }
        );
        let m = broker("mqtt://[::1]:1884/shop/orders");
        assert_eq!((m.host.as_str(), m.port), ("::1", 1884));
        assert_eq!(
            m.target,
            BrokerTarget::Mqtt {
                topic: "shop/orders".into()
            }
        );
        assert!(matches!(parse("eventUrl", "poll:"), Ok(Destination::Poll)));
        assert!(matches!(
            parse("eventUrl", "https://example.com/h"),
            Ok(Destination::Http(u)) if u == "https://example.com/h"
        ));
    }

    #[test]
    fn bad_forms_say_what_is_missing() {
        for (url, says) in [
            ("ftp://x/y", "must be an http(s)"),
            ("nats://127.0.0.1:4222/", "needs a NATS subject"),
            ("nats://127.0.0.1:4222/orders.*", "without wildcards"),
            ("nats://user:pw@127.0.0.1/x", "must not carry credentials"),
            ("amqp://127.0.0.1/%2f", "needs an exchange or a routing key"),
            ("redis://127.0.0.1/0", "needs a stream"),
            ("redis://127.0.0.1/99?stream=s", "database"),
            ("redis://127.0.0.1/0?stream=s&maxlen=0", "maxlen"),
            ("redis://127.0.0.1/0?stream=s&other=1", "unknown parameter"),
            ("mqtt://127.0.0.1:99999/t", "port"),
            ("mqtt://127.0.0.1/a/#", "without wildcards"),
            ("mqtt:///t", "needs a host"),
            ("poll:x", "must be an http(s)"),
        ] {
            match parse("eventUrl", url) {
                Err(CoreError::Invalid { message, .. }) => {
                    assert!(message.contains(says), "{url}: {message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
