//! NATS JetStream deliveries (async-nats): a JetStream publish to the URL's subject, a success
//! when the stream acknowledges it. `Nats-Msg-Id` is the `webhook-id`, so JetStream's own
//! de-duplication window drops a retry the stream already has.

use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_core::destination::BrokerTarget;

use super::{BrokerError, Connection, Credentials, Message};

struct Nats {
    jetstream: async_nats::jetstream::Context,
}

pub(super) async fn connect(
    addr: SocketAddr,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    let mut options = async_nats::ConnectOptions::new()
        .name("switchyard")
        // One reconnect attempt, then the client closes and publishes fail at once: the hub
        // connects afresh at the delivery's next attempt, on its retry policy, instead of a
        // client retrying (and buffering) behind its back (0 would mean "without end").
        .max_reconnects(Some(1))
        // The servers a cluster announces are not addresses the guard checked.
        .ignore_discovered_servers();
    options = match (&credentials.user, &credentials.password) {
        (Some(user), Some(password)) if !user.is_empty() => {
            options.user_and_password(user.clone(), password.clone())
        }
        (_, Some(token)) => options.token(token.clone()),
        _ => options,
    };
    let client = options
        .connect(format!("nats://{addr}"))
        .await
        .map_err(|e| {
            let message = e.to_string();
            if message.to_ascii_lowercase().contains("authori") {
                BrokerError::auth(format!("NATS refused the credentials: {message}"))
            } else {
                BrokerError::connect(format!("cannot connect to NATS at {addr}: {message}"))
            }
        })?;
    Ok(Arc::new(Nats {
        jetstream: async_nats::jetstream::new(client),
    }))
}

#[async_trait::async_trait]
impl Connection for Nats {
    async fn publish(
        &self,
        target: &BrokerTarget,
        message: &Message<'_>,
    ) -> Result<String, BrokerError> {
        let BrokerTarget::Nats { subject } = target else {
            return Err(BrokerError::refused("not a NATS address"));
        };
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in message.headers {
            headers.insert(name.as_str(), value.as_str());
        }
        headers.insert("Nats-Msg-Id", message.id);
        let ack = self
            .jetstream
            .publish_with_headers(
                subject.clone(),
                headers,
                bytes::Bytes::copy_from_slice(message.body),
            )
            .await
            .map_err(|e| BrokerError::connect(format!("NATS publish failed: {e}")))?
            .await
            .map_err(|e| {
                BrokerError::refused(format!("JetStream did not acknowledge {subject}: {e}"))
            })?;
        Ok(format!(
            "stream {} sequence {}{}",
            ack.stream,
            ack.sequence,
            if ack.duplicate { " (duplicate)" } else { "" }
        ))
    }
}
