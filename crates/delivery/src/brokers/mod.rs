//! Deliveries to message brokers: NATS JetStream, RabbitMQ (AMQP 0.9.1), Redis Streams and MQTT,
//! one module per kind behind [`Connection`], so that adding another kind is one file and one
//! arm in [`connect`]. Each module uses its broker's well-kept client crate; none speaks a
//! protocol of its own.
//!
//! What a delivery is, for every kind: the envelope an HTTP delivery would POST, byte for byte,
//! with `webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type` and the
//! subscription's custom headers as the message's headers (stream fields for Redis), so any
//! Standard Webhooks library verifies it. Success is the broker's own acknowledgement (a
//! JetStream ack, a publisher confirm, an `XADD` id, a PUBACK); anything else is a failed
//! attempt, retried under the same `webhook-id`.
//!
//! Connections are kept per broker address and credentials and shared by all deliveries to it;
//! one whose publish failed is dropped, so the next attempt connects afresh (a broker that
//! restarted is reached again). The address guard applies to a broker's host as to an HTTP
//! host: the name is resolved here and the client is given the checked address, never the name.

mod amqp;
mod mqtt;
mod nats;
mod redis;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::destination::{BrokerAddress, BrokerKind, BrokerTarget};

use crate::guard::AddressGuard;
use crate::sender::SendOutcome;

/// Broker credentials, from a subscription's `authDetails` (`BASIC_AUTH`). For NATS, a password
/// without a user name is a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub user: Option<String>,
    pub password: Option<String>,
}

/// One message, as every kind publishes it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The `webhook-id`: the broker's own de-duplication key where it has one.
    pub id: &'a str,
    /// The envelope, exactly the bytes signed.
    pub body: &'a [u8],
    /// `content-type`, the Standard Webhooks headers and the subscription's custom headers.
    pub headers: &'a [(String, String)],
}

/// Why a publish failed: the attempt's `errorClass` and message.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerError {
    /// `connect` (the broker cannot be reached), `auth` (it refused the credentials), `broker`
    /// (it refused or did not confirm the message), `timeout`.
    pub class: &'static str,
    pub message: String,
}

impl BrokerError {
    pub fn connect(message: impl std::fmt::Display) -> Self {
        BrokerError {
            class: "connect",
            message: message.to_string(),
        }
    }
    pub fn refused(message: impl std::fmt::Display) -> Self {
        BrokerError {
            class: "broker",
            message: message.to_string(),
        }
    }
    pub fn auth(message: impl std::fmt::Display) -> Self {
        BrokerError {
            class: "auth",
            message: message.to_string(),
        }
    }
}

/// A live connection to one broker.
#[async_trait::async_trait]
pub trait Connection: Send + Sync {
    /// Publishes `message` to `target` and waits for the broker's acknowledgement; answers what
    /// the broker said (a stream sequence, an entry id), for the attempt's log.
    async fn publish(
        &self,
        target: &BrokerTarget,
        message: &Message<'_>,
    ) -> Result<String, BrokerError>;
}

/// Connects to the broker of `address` at the checked `addr`.
async fn connect(
    address: &BrokerAddress,
    addr: SocketAddr,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    match address.kind {
        BrokerKind::Nats => nats::connect(addr, credentials).await,
        BrokerKind::Amqp => amqp::connect(addr, address, credentials).await,
        BrokerKind::Redis => redis::connect(addr, address, credentials).await,
        BrokerKind::Mqtt => mqtt::connect(addr, credentials).await,
    }
}

/// What a connection is kept under: the broker, the part of the address a connection is bound
/// to (an AMQP vhost, a Redis database), and the credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    kind: BrokerKind,
    host: String,
    port: u16,
    scope: String,
    credentials: Credentials,
}

impl PoolKey {
    fn of(address: &BrokerAddress, credentials: &Credentials) -> PoolKey {
        let scope = match &address.target {
            BrokerTarget::Amqp { vhost, .. } => vhost.clone(),
            BrokerTarget::Redis { db, .. } => db.to_string(),
            BrokerTarget::Nats { .. } | BrokerTarget::Mqtt { .. } => String::new(),
        };
        PoolKey {
            kind: address.kind,
            host: address.host.clone(),
            port: address.port,
            scope,
            credentials: credentials.clone(),
        }
    }
}

/// The broker connections of a process. Cheap to clone.
#[derive(Clone)]
pub struct Brokers {
    guard: AddressGuard,
    /// Connecting, and publishing with its acknowledgement, each take at most this long.
    timeout: Duration,
    pool: Arc<Mutex<HashMap<PoolKey, Arc<dyn Connection>>>>,
    /// One lock per broker being connected to, so that a burst of deliveries to a broker that
    /// is not connected yet makes one connection, not one each, while a broker that is slow to
    /// answer holds up only the deliveries to it.
    connecting: Arc<Mutex<HashMap<PoolKey, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Brokers {
    pub fn new(guard: AddressGuard, timeout: Duration) -> Brokers {
        Brokers {
            guard,
            timeout,
            pool: Arc::default(),
            connecting: Arc::default(),
        }
    }

    /// One delivery to a broker, as an attempt's outcome.
    pub async fn publish(
        &self,
        address: &BrokerAddress,
        credentials: &Credentials,
        message: &Message<'_>,
    ) -> SendOutcome {
        let started = Instant::now();
        let key = PoolKey::of(address, credentials);
        let result = async {
            let connection = self.connection(&key, address, credentials).await?;
            let published =
                tokio::time::timeout(self.timeout, connection.publish(&address.target, message))
                    .await
                    .unwrap_or_else(|_| {
                        Err(BrokerError {
                            class: "timeout",
                            message: format!(
                                "the broker did not acknowledge within {} s",
                                self.timeout.as_secs()
                            ),
                        })
                    });
            if published.is_err() {
                // Whatever went wrong, the next attempt starts from a new connection.
                self.pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
            }
            published
        }
        .await;
        match result {
            Ok(acknowledged) => SendOutcome {
                status_code: None,
                latency: started.elapsed(),
                error_class: None,
                error_message: None,
                response_excerpt: Some(acknowledged),
                retry_after: None,
            },
            Err(e) => SendOutcome {
                status_code: None,
                latency: started.elapsed(),
                error_class: Some(e.class),
                error_message: Some(e.message),
                response_excerpt: None,
                retry_after: None,
            },
        }
    }

    /// The pooled connection to `address`, or a new one.
    async fn connection(
        &self,
        key: &PoolKey,
        address: &BrokerAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Connection>, BrokerError> {
        let pooled = || {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .cloned()
        };
        if let Some(connection) = pooled() {
            return Ok(connection);
        }
        let lock = self
            .connecting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        if let Some(connection) = pooled() {
            return Ok(connection);
        }
        let addr = self.resolve(address).await?;
        let connection = tokio::time::timeout(self.timeout, connect(address, addr, credentials))
            .await
            .unwrap_or_else(|_| {
                Err(BrokerError {
                    class: "timeout",
                    message: format!(
                        "connecting to {}:{} took longer than {} s",
                        address.host,
                        address.port,
                        self.timeout.as_secs()
                    ),
                })
            })?;
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), connection.clone());
        Ok(connection)
    }

    /// The broker's address, resolved and checked by the guard (`refused_target` when every
    /// address it has is internal).
    async fn resolve(&self, address: &BrokerAddress) -> Result<SocketAddr, BrokerError> {
        let name = crate::guard::canonical_name(&address.host);
        let refused = |why: String| BrokerError {
            class: "refused_target",
            message: why,
        };
        if !self.guard.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
            return Err(refused(format!("{} is this machine", address.host)));
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((address.host.as_str(), address.port))
            .await
            .map_err(|e| BrokerError::connect(format!("cannot resolve {}: {e}", address.host)))?
            .collect();
        found
            .iter()
            .find(|a| self.guard.allows(a.ip()))
            .copied()
            .ok_or_else(|| {
                refused(format!(
                    "{} resolves only to internal addresses",
                    address.host
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::destination::{self, Destination};

    fn address(url: &str) -> BrokerAddress {
        match destination::parse("eventUrl", url) {
            Ok(Destination::Broker(address)) => address,
            other => panic!("{url}: {other:?}"),
        }
    }

    /// The guard refuses a broker on an internal address before anything connects, for every
    /// kind, whether the host is a literal or a name for this machine.
    #[tokio::test]
    async fn the_address_guard_applies_to_broker_hosts() {
        let brokers = Brokers::new(
            AddressGuard {
                allow_private: false,
            },
            Duration::from_secs(2),
        );
        let message = Message {
            id: "msg_1",
            body: b"{}",
            headers: &[],
        };
        for url in [
            "nats://127.0.0.1:4222/orders",
            "amqp://10.0.0.8:5672/%2f?routingKey=orders",
            "redis://localhost:6379/0?stream=orders",
            "mqtt://[::1]:1883/orders",
            "mqtt://169.254.169.254:1883/orders",
        ] {
            let outcome = brokers
                .publish(&address(url), &Credentials::default(), &message)
                .await;
            assert_eq!(
                outcome.error_class,
                Some("refused_target"),
                "{url}: {outcome:?}"
            );
        }
    }
}
