//! AMQP 0-9-1 deliveries (lapin), for RabbitMQ: a `basic.publish` to the URL's exchange (empty:
//! the default exchange) with its routing key, persistent and `mandatory`, a success when the
//! broker confirms it (publisher confirms). The `message-id` property is the `webhook-id`, the
//! `content-type` property the envelope's, and every header (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, `content-type`, the subscription's custom headers) is an entry of the
//! message's headers table. A message the broker returns because no queue is bound to its
//! exchange and routing key is a failed attempt, not a success: it went nowhere.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Confirmation, ConnectionProperties, ErrorKind};
use switchyard_core::destination::{BrokerAddress, BrokerTarget};

use super::{BrokerError, Connection, Credentials, Message};

/// How many channels one connection opens at most, so how many publishes are in flight on it at
/// once; further ones wait for a channel (within the attempt's timeout).
const CHANNELS: usize = 32;

struct Amqp {
    /// Opens channels beyond the first, and keeps the connection open: lapin closes it when this
    /// and every channel of it are dropped.
    connection: lapin::Connection,
    /// Channels in confirm mode that no publish is using. A channel carries one publish at a
    /// time: lapin hands a returned (unroutable) message to whichever confirmation on the channel
    /// resolves next, so with two in flight on one channel the return of one could be reported on
    /// the other, and the message that went nowhere reported confirmed.
    idle: Mutex<Vec<Channel>>,
    /// One permit per channel that may be open.
    slots: tokio::sync::Semaphore,
}

pub(super) async fn connect(
    addr: SocketAddr,
    address: &BrokerAddress,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    let vhost = match &address.target {
        BrokerTarget::Amqp { vhost, .. } => vhost.clone(),
        _ => "/".to_string(),
    };
    // lapin would panic on a longer one.
    if vhost.len() > lapin::types::MAX_SHORT_STRING_LENGTH {
        return Err(BrokerError::connect(
            "an AMQP vhost name is at most 255 bytes",
        ));
    }
    let uri = uri(addr, vhost, credentials);
    // lapin's defaults: no reconnection and no topology recovery. The hub connects again itself
    // after a failed publish; a client retrying behind its back would hold an attempt past its
    // timeout.
    let properties = ConnectionProperties::default().with_connection_name("switchyard".into());
    let connection = lapin::Connection::connect_uri(uri, properties)
        .await
        .map_err(|e| {
            if refused_login(&e) {
                BrokerError::auth(format!("RabbitMQ refused the login: {e}"))
            } else {
                BrokerError::connect(format!("cannot connect to RabbitMQ at {addr}: {e}"))
            }
        })?;
    let channel = open_channel(&connection)
        .await
        .map_err(|e| BrokerError::connect(format!("cannot open a channel on RabbitMQ: {e}")))?;
    Ok(Arc::new(Amqp {
        connection,
        idle: Mutex::new(vec![channel]),
        slots: tokio::sync::Semaphore::new(CHANNELS),
    }))
}

/// Where lapin connects: the checked `addr`, the address's vhost, and the credentials. The URI is
/// given to lapin parsed, not as an `amqp://…` string, so nothing needs escaping, and because
/// lapin (amq-protocol-uri) reads a string's host with `Url::domain`, which is nothing for an
/// IPv6 literal: it would connect to "localhost" instead.
fn uri(addr: SocketAddr, vhost: String, credentials: &Credentials) -> AMQPUri {
    let user = credentials.user.as_deref().filter(|u| !u.is_empty());
    let (username, password) = match (user, credentials.password.as_deref()) {
        // No credentials: RabbitMQ's default user, guest/guest, which a stock broker accepts
        // (from its own host only, unless it is configured otherwise).
        (None, None) => ("guest", "guest"),
        (user, password) => (user.unwrap_or_default(), password.unwrap_or_default()),
    };
    AMQPUri {
        scheme: AMQPScheme::AMQP,
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: username.to_string(),
                password: password.to_string(),
            },
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        vhost,
        query: AMQPQueryString::default(),
    }
}

/// Whether connecting failed because the broker refused the login (`ACCESS_REFUSED`) or the
/// user's access to the vhost (`NOT_ALLOWED`, "access to vhost … refused for user …"), rather
/// than because it could not be reached or has no such vhost.
fn refused_login(e: &lapin::Error) -> bool {
    let ErrorKind::ProtocolError(amqp) = e.kind() else {
        return false;
    };
    match amqp.kind() {
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => true,
        AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => {
            amqp.get_message().as_str().contains("refused for user")
        }
        _ => false,
    }
}

/// A new channel of `connection`, in confirm mode.
async fn open_channel(connection: &lapin::Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// `value` as an AMQP short string (at most 255 bytes), or why not.
fn short(what: &str, value: &str) -> Result<ShortString, BrokerError> {
    ShortString::try_new(value)
        .map_err(|_| BrokerError::refused(format!("{what} is longer than AMQP's 255 bytes")))
}

/// Where a message went, for errors: `exchange "orders" with routing key "created"`.
fn destination(exchange: &str, routing_key: &str) -> String {
    if exchange.is_empty() {
        format!("the default exchange with routing key {routing_key:?}")
    } else {
        format!("exchange {exchange:?} with routing key {routing_key:?}")
    }
}

#[async_trait::async_trait]
impl Connection for Amqp {
    async fn publish(
        &self,
        target: &BrokerTarget,
        message: &Message<'_>,
    ) -> Result<String, BrokerError> {
        let BrokerTarget::Amqp {
            exchange,
            routing_key,
            ..
        } = target
        else {
            return Err(BrokerError::refused("not an AMQP address"));
        };
        let to = destination(exchange, routing_key);
        let mut headers = FieldTable::default();
        for (name, value) in message.headers {
            headers.insert(
                short("a header name", name)?,
                AMQPValue::LongString(LongString::from(value.as_str())),
            );
        }
        let content_type = message
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map_or("application/json", |(_, value)| value.as_str());
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("content-type", content_type)?)
            .with_message_id(short("the webhook-id", message.id)?)
            .with_headers(headers);
        let exchange_name = short("the exchange name", exchange)?;
        let routing_key_name = short("the routing key", routing_key)?;

        // The permit is held until this publish is confirmed; the semaphore is never closed.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| BrokerError::connect(format!("RabbitMQ connection closed: {e}")))?;
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let channel = match pooled.filter(|c| c.status().connected()) {
            Some(channel) => channel,
            None => open_channel(&self.connection).await.map_err(|e| {
                BrokerError::connect(format!("cannot open a channel on RabbitMQ: {e}"))
            })?,
        };
        let failed = |e: lapin::Error| {
            if e.is_amqp_soft_error() {
                // The broker closed the channel over this publish: no such exchange, or no
                // permission to write to it.
                BrokerError::refused(format!("RabbitMQ refused the publish to {to}: {e}"))
            } else {
                BrokerError::connect(format!("the connection to RabbitMQ failed: {e}"))
            }
        };
        let confirmation = channel
            .basic_publish(
                exchange_name,
                routing_key_name,
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                message.body,
                properties,
            )
            .await
            .map_err(failed)?
            .await
            .map_err(failed)?;
        // Only a publish that ran to its confirmation gives its channel back: one abandoned
        // halfway (the attempt timed out) would leave a confirmation for the next publish.
        if channel.status().connected() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(channel);
        }
        match confirmation {
            Confirmation::Ack(None) => Ok("confirmed".to_string()),
            Confirmation::Ack(Some(returned)) => Err(BrokerError::refused(format!(
                "no queue is bound to {to}: RabbitMQ returned the message ({} {})",
                returned.reply_code, returned.reply_text
            ))),
            Confirmation::Nack(_) => Err(BrokerError::refused(format!(
                "RabbitMQ did not take the message for {to} (basic.nack)"
            ))),
            Confirmation::NotRequested => {
                Err(BrokerError::connect("the channel is not in confirm mode"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against the RabbitMQ on 127.0.0.1:5672 (guest/guest).

    use std::time::Duration;

    use lapin::options::{
        BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{ConnectionProperties, ExchangeKind};
    use switchyard_core::destination::{self, BrokerAddress, Destination};

    use super::super::{Brokers, Credentials, Message};
    use crate::guard::AddressGuard;
    use crate::sender::SendOutcome;

    const BROKER: &str = "127.0.0.1:5672";

    /// A direct exchange and a durable queue bound to it with the routing key "created", both
    /// uniquely named, on a connection of the test's own.
    struct Fixture {
        _connection: lapin::Connection,
        channel: lapin::Channel,
        exchange: String,
        queue: String,
    }

    impl Fixture {
        async fn new() -> Fixture {
            let connection = lapin::Connection::connect(
                &format!("amqp://{BROKER}/%2f"),
                ConnectionProperties::default(),
            )
            .await
            .expect("RabbitMQ on 127.0.0.1:5672");
            let channel = connection.create_channel().await.unwrap();
            let unique = uuid::Uuid::now_v7().simple().to_string();
            let exchange = format!("switchyard-test-{unique}");
            let queue = format!("switchyard-test-{unique}");
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    "created".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            Fixture {
                _connection: connection,
                channel,
                exchange,
                queue,
            }
        }

        /// The next message in the queue (acknowledged on the way out).
        async fn get(&self) -> Option<lapin::message::BasicGetMessage> {
            self.channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
        }

        async fn delete(self) {
            self.channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap();
            self.channel
                .exchange_delete(
                    self.exchange.as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await
                .unwrap();
        }
    }

    fn address(url: &str) -> BrokerAddress {
        match destination::parse("eventUrl", url).unwrap() {
            Destination::Broker(address) => address,
            other => panic!("{url} is not a broker address: {other:?}"),
        }
    }

    fn brokers() -> Brokers {
        Brokers::new(
            AddressGuard {
                allow_private: true,
            },
            Duration::from_secs(5),
        )
    }

    fn headers(id: &str) -> Vec<(String, String)> {
        [
            ("content-type", "application/json"),
            ("webhook-id", id),
            ("webhook-timestamp", "1767225600"),
            ("webhook-signature", "v1,c2lnbmF0dXJl"),
            ("x-tenant", "acme"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    async fn publish(
        brokers: &Brokers,
        url: &str,
        credentials: &Credentials,
        id: &str,
        body: &[u8],
    ) -> SendOutcome {
        let headers = headers(id);
        let message = Message {
            id,
            body,
            headers: &headers,
        };
        brokers.publish(&address(url), credentials, &message).await
    }

    fn header(message: &lapin::message::BasicGetMessage, name: &str) -> Option<String> {
        let table = message.delivery.properties.headers().as_ref()?;
        match table.inner().get(name)? {
            AMQPValue::LongString(value) => Some(String::from_utf8_lossy(value.as_bytes()).into()),
            other => panic!("header {name} is not a long string: {other:?}"),
        }
    }

    #[test]
    fn the_uri_names_the_checked_address_and_defaults_to_guest() {
        let addr = "[2001:db8::1]:5673".parse().unwrap();
        let uri = super::uri(addr, "a/b c".into(), &Credentials::default());
        assert_eq!(uri.authority.host, "2001:db8::1");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.vhost, "a/b c");
        assert_eq!(uri.authority.userinfo.username, "guest");
        assert_eq!(uri.authority.userinfo.password, "guest");

        let credentials = Credentials {
            user: Some("hub@example".into()),
            password: Some("p:ss/w%rd".into()),
        };
        let uri = super::uri("10.1.2.3:5672".parse().unwrap(), "/".into(), &credentials);
        assert_eq!(uri.authority.host, "10.1.2.3");
        assert_eq!(uri.authority.userinfo.username, "hub@example");
        assert_eq!(uri.authority.userinfo.password, "p:ss/w%rd");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_confirmed_publish_reaches_the_bound_queue() {
        let fixture = Fixture::new().await;
        let url = format!(
            "amqp://{BROKER}/%2f?exchange={}&routingKey=created",
            fixture.exchange
        );
        let body = br#"{"type":"order.created","data":{"id":42}}"#;
        // No credentials: guest/guest.
        let outcome = publish(
            &brokers(),
            &url,
            &Credentials::default(),
            "msg_amqp_1",
            body,
        )
        .await;
        let got = fixture.get().await;
        let extra = fixture.get().await;
        fixture.delete().await;

        assert!(outcome.succeeded(), "{outcome:?}");
        assert_eq!(outcome.response_excerpt.as_deref(), Some("confirmed"));
        let got = got.expect("the message is in the queue");
        assert!(extra.is_none(), "one message, not two");
        assert_eq!(got.delivery.data, body);
        let properties = &got.delivery.properties;
        assert_eq!(
            properties.message_id().as_ref().map(|s| s.as_str()),
            Some("msg_amqp_1")
        );
        assert_eq!(
            properties.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        assert_eq!(*properties.delivery_mode(), Some(2));
        assert_eq!(header(&got, "webhook-id").as_deref(), Some("msg_amqp_1"));
        assert_eq!(
            header(&got, "webhook-timestamp").as_deref(),
            Some("1767225600")
        );
        assert_eq!(
            header(&got, "webhook-signature").as_deref(),
            Some("v1,c2lnbmF0dXJl")
        );
        assert_eq!(
            header(&got, "content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(header(&got, "x-tenant").as_deref(), Some("acme"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_default_exchange_routes_to_the_queue_named() {
        let fixture = Fixture::new().await;
        let url = format!("amqp://{BROKER}/%2f?routingKey={}", fixture.queue);
        let outcome = publish(&brokers(), &url, &Credentials::default(), "msg_2", b"{}").await;
        let got = fixture.get().await;
        fixture.delete().await;

        assert!(outcome.succeeded(), "{outcome:?}");
        assert_eq!(
            got.expect("the message is in the queue").delivery.data,
            b"{}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_routing_key_no_queue_is_bound_to_is_a_broker_failure() {
        let fixture = Fixture::new().await;
        let url = format!(
            "amqp://{BROKER}/%2f?exchange={}&routingKey=nobody-listens",
            fixture.exchange
        );
        let brokers = brokers();
        let outcome = publish(&brokers, &url, &Credentials::default(), "msg_3", b"{}").await;
        // The connection is still good for the next delivery.
        let bound = url.replace("nobody-listens", "created");
        let next = publish(&brokers, &bound, &Credentials::default(), "msg_4", b"{}").await;
        let got = fixture.get().await;
        fixture.delete().await;

        assert_eq!(outcome.error_class, Some("broker"), "{outcome:?}");
        let message = outcome.error_message.unwrap();
        assert!(message.contains("no queue is bound"), "{message}");
        assert!(message.contains("nobody-listens"), "{message}");
        assert!(next.succeeded(), "{next:?}");
        let got = got.expect("the second message is in the queue");
        assert_eq!(
            got.delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str()),
            Some("msg_4")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exchange_that_does_not_exist_is_a_broker_failure() {
        let url = format!(
            "amqp://{BROKER}/%2f?exchange=switchyard-test-missing-{}&routingKey=created",
            uuid::Uuid::now_v7().simple()
        );
        let outcome = publish(&brokers(), &url, &Credentials::default(), "msg_5", b"{}").await;
        assert_eq!(outcome.error_class, Some("broker"), "{outcome:?}");
        let message = outcome.error_message.unwrap();
        assert!(message.contains("NOT-FOUND"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_password_is_an_auth_failure() {
        let fixture = Fixture::new().await;
        let url = format!(
            "amqp://{BROKER}/%2f?exchange={}&routingKey=created",
            fixture.exchange
        );
        let credentials = Credentials {
            user: Some("guest".into()),
            password: Some("not-the-password".into()),
        };
        let outcome = publish(&brokers(), &url, &credentials, "msg_6", b"{}").await;
        let got = fixture.get().await;
        fixture.delete().await;

        assert_eq!(outcome.error_class, Some("auth"), "{outcome:?}");
        assert!(got.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_vhost_that_does_not_exist_is_a_connect_failure() {
        let url = format!("amqp://{BROKER}/switchyard-test-missing?exchange=x&routingKey=created");
        let outcome = publish(&brokers(), &url, &Credentials::default(), "msg_7", b"{}").await;
        assert_eq!(outcome.error_class, Some("connect"), "{outcome:?}");
    }

    /// Many deliveries at once through one pooled connection: each is told its own outcome,
    /// confirmed or returned, never another's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishes_each_get_their_own_outcome() {
        let fixture = Fixture::new().await;
        let brokers = brokers();
        let credentials = Credentials {
            user: Some("guest".into()),
            password: Some("guest".into()),
        };
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let key = if i % 2 == 0 {
                    "created"
                } else {
                    "nobody-listens"
                };
                let url = format!(
                    "amqp://{BROKER}/%2f?exchange={}&routingKey={key}",
                    fixture.exchange
                );
                let (brokers, credentials) = (brokers.clone(), credentials.clone());
                tokio::spawn(async move {
                    let id = format!("msg_{i}");
                    let outcome = publish(&brokers, &url, &credentials, &id, &[b'x'; 2000]).await;
                    (i, outcome)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let mut queued = Vec::new();
        while let Some(got) = fixture.get().await {
            let id = got.delivery.properties.message_id().clone().unwrap();
            queued.push(id.to_string());
        }
        fixture.delete().await;

        for (i, outcome) in &outcomes {
            if i % 2 == 0 {
                assert!(outcome.succeeded(), "msg_{i}: {outcome:?}");
            } else {
                assert_eq!(outcome.error_class, Some("broker"), "msg_{i}: {outcome:?}");
            }
        }
        queued.sort();
        let mut expected: Vec<String> = (0..200).step_by(2).map(|i| format!("msg_{i}")).collect();
        expected.sort();
        assert_eq!(queued, expected);
    }
}
