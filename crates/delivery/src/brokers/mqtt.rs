//! MQTT deliveries (rumqttc, MQTT 5): a QoS 1 publish to the URL's topic, a success when the
//! broker's PUBACK for it says so. The headers are the message's user properties, and
//! `content-type` is also its content type property.
//!
//! rumqttc's client only queues a publish; its event loop, driven by a task of the connection's
//! own, says which packet id each publish got (in the order they were queued) and which ids the
//! broker acknowledged. [`Waiters`] matches the two up, so that each delivery waits for its own
//! PUBACK however many share the connection.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Packet, PubAck, PubAckReason, PublishProperties,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use switchyard_core::destination::BrokerTarget;
use tokio::sync::oneshot;

use super::{BrokerError, Connection, Credentials, Message};

/// What a publish is answered: the PUBACK's text for the attempt's log, or why there is none.
type Ack = Result<String, BrokerError>;

struct Mqtt {
    client: AsyncClient,
    waiters: Arc<Mutex<Waiters>>,
    /// Held while a publish is queued, so that requests enter rumqttc's queue in the order their
    /// waiters enter ours.
    in_order: Arc<tokio::sync::Mutex<()>>,
    /// Dropped with the connection: its task then disconnects and ends.
    _stop: oneshot::Sender<()>,
}

pub(super) async fn connect(
    addr: SocketAddr,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    // rumqttc joins host and port as `HOST:PORT` and resolves that: an IPv6 literal needs its
    // brackets to stay a literal.
    let host = match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    let client_id = format!("switchyard-{}", uuid::Uuid::now_v7().simple());
    let mut options = MqttOptions::new(client_id, host, addr.port());
    options
        .set_clean_start(true)
        .set_keep_alive(Duration::from_secs(30));
    if credentials.user.is_some() || credentials.password.is_some() {
        options.set_credentials(
            credentials.user.clone().unwrap_or_default(),
            credentials.password.clone().unwrap_or_default(),
        );
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    // The first poll connects and answers the CONNACK; until then the event loop is ours, so a
    // caller that gives up drops it and nothing is left running.
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => continue,
            Err(ConnectionError::ConnectionRefused(code)) => return Err(refusal(addr, code)),
            Err(e) => {
                return Err(BrokerError::connect(format!(
                    "cannot connect to MQTT at {addr}: {e}"
                )));
            }
        }
    }
    let waiters = Arc::new(Mutex::new(Waiters::default()));
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(drive(
        eventloop,
        client.clone(),
        waiters.clone(),
        stopped,
        addr,
    ));
    Ok(Arc::new(Mqtt {
        client,
        waiters,
        in_order: Arc::default(),
        _stop: stop,
    }))
}

/// A refused CONNACK: `auth` when it is about the credentials.
fn refusal(addr: SocketAddr, code: ConnectReturnCode) -> BrokerError {
    match code {
        ConnectReturnCode::BadUserNamePassword
        | ConnectReturnCode::NotAuthorized
        | ConnectReturnCode::BadAuthenticationMethod
        | ConnectReturnCode::Banned => {
            BrokerError::auth(format!("MQTT at {addr} refused the credentials: {code:?}"))
        }
        _ => BrokerError::connect(format!("MQTT at {addr} refused the connection: {code:?}")),
    }
}

/// The connection's task: runs the event loop, hands its events to the waiters, and ends at the
/// first error (rumqttc would connect again behind the pool's back) or when the connection is
/// dropped, failing whatever still waits.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    waiters: Arc<Mutex<Waiters>>,
    mut stop: oneshot::Receiver<()>,
    addr: SocketAddr,
) {
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            _ = &mut stop => break,
        };
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lock(&waiters).sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => lock(&waiters).acked(&ack),
            Ok(_) => {}
            Err(e) => {
                lock(&waiters).fail_all(&format!("the MQTT connection to {addr} failed: {e}"));
                return;
            }
        }
    }
    // Dropped: no publish is running any more. Say goodbye, briefly, and close.
    lock(&waiters).fail_all("the MQTT connection was closed");
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(event) = eventloop.poll().await {
                if event == Event::Outgoing(Outgoing::Disconnect) {
                    break;
                }
            }
        })
        .await;
    }
}

/// The waiters, locked only for bookkeeping, never across an await.
fn lock(waiters: &Mutex<Waiters>) -> MutexGuard<'_, Waiters> {
    waiters.lock().unwrap_or_else(|p| p.into_inner())
}

/// The publishes of one connection that wait for their PUBACK.
#[derive(Default)]
struct Waiters {
    /// Why the connection is unusable, once it is: later publishes fail at once.
    broken: Option<String>,
    /// Publishes queued and not yet given a packet id, oldest first, each with its ticket.
    queued: VecDeque<(u64, oneshot::Sender<Ack>)>,
    next_ticket: u64,
    /// Publishes sent, by packet id, until their PUBACK.
    sent: HashMap<u16, oneshot::Sender<Ack>>,
}

impl Waiters {
    /// Queues a waiter for the publish about to be queued; answers its ticket.
    fn enqueue(&mut self, waiter: oneshot::Sender<Ack>) -> Result<u64, BrokerError> {
        if let Some(why) = &self.broken {
            return Err(BrokerError::connect(why));
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queued.push_back((ticket, waiter));
        Ok(ticket)
    }

    /// Takes back the waiter of a publish that did not get queued after all.
    fn withdraw(&mut self, ticket: u64) {
        self.queued.retain(|(t, _)| *t != ticket);
    }

    /// rumqttc sent the oldest queued publish as `pkid`. (A publish whose id was still in use
    /// waits in rumqttc until that id's PUBACK and is sent then, before any later one, so it is
    /// still the oldest.)
    fn sent(&mut self, pkid: u16) {
        let Some((_, waiter)) = self.queued.pop_front() else {
            tracing::warn!(pkid, "MQTT publish sent that no delivery waits for");
            return;
        };
        if let Some(previous) = self.sent.insert(pkid, waiter) {
            let _ = previous.send(Err(BrokerError::refused(format!(
                "packet id {pkid} was reused before its PUBACK"
            ))));
        }
    }

    /// The broker acknowledged `ack.pkid`.
    fn acked(&mut self, ack: &PubAck) {
        let Some(waiter) = self.sent.remove(&ack.pkid) else {
            return;
        };
        let answer = match ack.reason {
            PubAckReason::Success => Ok(format!("puback pkid {}", ack.pkid)),
            // Taken: the broker has the message, it just has no one to give it to yet.
            PubAckReason::NoMatchingSubscribers => Ok(format!(
                "puback pkid {} (no matching subscribers)",
                ack.pkid
            )),
            reason => {
                let said = ack
                    .properties
                    .as_ref()
                    .and_then(|p| p.reason_string.as_deref())
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                Err(BrokerError::refused(format!(
                    "the MQTT broker refused the message (PUBACK {reason:?}{said})"
                )))
            }
        };
        let _ = waiter.send(answer);
    }

    /// The connection is gone: every waiter, and every later publish, fails with `why`.
    fn fail_all(&mut self, why: &str) {
        self.broken.get_or_insert_with(|| why.to_owned());
        let queued = self.queued.drain(..).map(|(_, waiter)| waiter);
        for waiter in queued.chain(self.sent.drain().map(|(_, waiter)| waiter)) {
            let _ = waiter.send(Err(BrokerError::connect(why)));
        }
    }
}

#[async_trait::async_trait]
impl Connection for Mqtt {
    async fn publish(
        &self,
        target: &BrokerTarget,
        message: &Message<'_>,
    ) -> Result<String, BrokerError> {
        let BrokerTarget::Mqtt { topic } = target else {
            return Err(BrokerError::refused("not an MQTT address"));
        };
        let properties = PublishProperties {
            content_type: message
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .map(|(_, value)| value.clone()),
            user_properties: message.headers.to_vec(),
            ..Default::default()
        };
        let (waiter, acknowledged) = oneshot::channel();
        let (client, waiters, in_order) = (
            self.client.clone(),
            self.waiters.clone(),
            self.in_order.clone(),
        );
        let (topic, payload) = (topic.clone(), bytes::Bytes::copy_from_slice(message.body));
        // A task of its own, so that a caller that gives up (the attempt's timeout) cannot leave
        // a waiter queued without its publish, or a publish without its waiter: either would
        // hand every later PUBACK to the wrong delivery.
        let queued = tokio::spawn(async move {
            let _in_order = in_order.lock().await;
            let ticket = lock(&waiters).enqueue(waiter)?;
            let queued = client
                .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
                .await;
            if let Err(e) = queued {
                lock(&waiters).withdraw(ticket);
                return Err(BrokerError::connect(format!("MQTT publish failed: {e}")));
            }
            Ok(())
        });
        queued
            .await
            .map_err(|e| BrokerError::connect(format!("MQTT publish failed: {e}")))??;
        acknowledged
            .await
            .map_err(|_| BrokerError::connect("the MQTT connection was closed"))?
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rumqttc::v5::mqttbytes::v5::{Filter, Publish};
    use switchyard_core::destination::{BrokerAddress, Destination};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::*;
    use crate::guard::AddressGuard;

    fn brokers() -> super::super::Brokers {
        super::super::Brokers::new(
            AddressGuard {
                allow_private: true,
            },
            Duration::from_secs(5),
        )
    }

    fn address(url: &str) -> BrokerAddress {
        match switchyard_core::destination::parse("eventUrl", url) {
            Ok(Destination::Broker(address)) => address,
            other => panic!("{url}: {other:?}"),
        }
    }

    fn headers(id: &str) -> Vec<(String, String)> {
        [
            ("content-type", "application/json"),
            ("webhook-id", id),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", "v1,c2lnbmF0dXJl"),
            ("x-tenant", "acme"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .to_vec()
    }

    fn unique_topic() -> String {
        format!("switchyard-test/{}", uuid::Uuid::now_v7().simple())
    }

    /// A second client subscribed to `topic`, answering what arrives on it.
    async fn subscribe(topic: &str) -> mpsc::UnboundedReceiver<Publish> {
        let id = format!("switchyard-test-{}", uuid::Uuid::now_v7().simple());
        let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", 1883), 10);
        client
            .subscribe_many([Filter::new(topic, QoS::AtLeastOnce)])
            .await
            .unwrap();
        let (subscribed, is_subscribed) = oneshot::channel();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _client = client;
            let mut subscribed = Some(subscribed);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("subscriber: {e}"),
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), is_subscribed)
            .await
            .expect("SUBACK in time")
            .unwrap();
        rx
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Publish>) -> Publish {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a message in time")
            .expect("subscriber running")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_with_headers_as_user_properties() {
        let topic = unique_topic();
        let mut received = subscribe(&topic).await;
        let address = address(&format!("mqtt://127.0.0.1:1883/{topic}"));
        let headers = headers("msg_one");
        let body = br#"{"type":"order.created","data":{"id":1}}"#;
        let message = Message {
            id: "msg_one",
            body,
            headers: &headers,
        };
        let outcome = brokers()
            .publish(&address, &Default::default(), &message)
            .await;
        assert!(outcome.succeeded(), "{outcome:?}");
        assert!(
            outcome
                .response_excerpt
                .as_deref()
                .unwrap()
                .starts_with("puback pkid "),
            "{outcome:?}"
        );

        let publish = next(&mut received).await;
        assert_eq!(publish.topic, topic.as_bytes());
        assert_eq!(&publish.payload[..], &body[..]);
        let properties = publish.properties.expect("properties");
        assert_eq!(properties.content_type.as_deref(), Some("application/json"));
        let property = |name: &str| {
            properties
                .user_properties
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(property("webhook-id"), Some("msg_one"));
        assert_eq!(property("webhook-timestamp"), Some("1700000000"));
        assert_eq!(property("webhook-signature"), Some("v1,c2lnbmF0dXJl"));
        assert_eq!(property("content-type"), Some("application/json"));
        assert_eq!(property("x-tenant"), Some("acme"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishes_share_one_connection() {
        let topic = unique_topic();
        let mut received = subscribe(&topic).await;
        let address = address(&format!("mqtt://127.0.0.1:1883/{topic}"));
        let brokers = brokers();
        let mut publishes = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (brokers, address) = (brokers.clone(), address.clone());
            publishes.spawn(async move {
                let id = format!("msg_{i}");
                let headers = headers(&id);
                let body = format!("{{\"n\":{i}}}");
                let message = Message {
                    id: &id,
                    body: body.as_bytes(),
                    headers: &headers,
                };
                brokers
                    .publish(&address, &Default::default(), &message)
                    .await
            });
        }
        let mut acks = Vec::new();
        while let Some(outcome) = publishes.join_next().await {
            let outcome = outcome.unwrap();
            assert!(outcome.succeeded(), "{outcome:?}");
            acks.push(outcome.response_excerpt.unwrap());
        }
        assert_eq!(acks.len(), 20);

        let mut bodies = Vec::new();
        for _ in 0..20 {
            let publish = next(&mut received).await;
            let properties = publish.properties.unwrap();
            let id = properties
                .user_properties
                .iter()
                .find(|(n, _)| n == "webhook-id")
                .map(|(_, v)| v.clone())
                .unwrap();
            let body = String::from_utf8(publish.payload.to_vec()).unwrap();
            // Each message keeps its own headers.
            assert_eq!(format!("msg_{}", &body[5..body.len() - 1]), id);
            bodies.push(body);
        }
        bodies.sort();
        let mut expected: Vec<String> = (0..20).map(|i| format!("{{\"n\":{i}}}")).collect();
        expected.sort();
        assert_eq!(bodies, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_without_subscribers_still_takes_the_message() {
        let address = address(&format!("mqtt://127.0.0.1:1883/{}", unique_topic()));
        let headers = headers("msg_alone");
        let message = Message {
            id: "msg_alone",
            body: b"{}",
            headers: &headers,
        };
        let outcome = brokers()
            .publish(&address, &Default::default(), &message)
            .await;
        assert!(outcome.succeeded(), "{outcome:?}");
        // Mosquitto answers 0x10, no matching subscribers: taken all the same.
        let acknowledged = outcome.response_excerpt.unwrap();
        assert!(acknowledged.starts_with("puback pkid "), "{acknowledged}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_that_is_not_there_is_a_connect_failure() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let address = address(&format!("mqtt://127.0.0.1:{port}/switchyard-test/nowhere"));
        let headers = headers("msg_gone");
        let message = Message {
            id: "msg_gone",
            body: b"{}",
            headers: &headers,
        };
        let outcome = brokers()
            .publish(&address, &Default::default(), &message)
            .await;
        assert_eq!(outcome.error_class, Some("connect"), "{outcome:?}");
    }

    /// One MQTT packet off the wire: its first byte and the rest after the length.
    async fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
        let first = stream.read_u8().await.unwrap();
        let (mut length, mut shift) = (0usize, 0);
        loop {
            let byte = stream.read_u8().await.unwrap();
            length |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let mut rest = vec![0; length];
        stream.read_exact(&mut rest).await.unwrap();
        (first, rest)
    }

    /// A pretend broker: accepts one client, answers its CONNECT, then does `then` with it.
    async fn pretend_broker<F, Fut>(then: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (first, _) = read_packet(&mut stream).await;
            assert_eq!(first >> 4, 1, "CONNECT");
            // CONNACK: no session, success, no properties.
            stream
                .write_all(&[0x20, 0x03, 0x00, 0x00, 0x00])
                .await
                .unwrap();
            then(stream).await;
        });
        addr
    }

    fn message_for_pretend<'a>(headers: &'a [(String, String)]) -> Message<'a> {
        Message {
            id: "msg_pretend",
            body: b"{}",
            headers,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusing_puback_is_a_broker_failure() {
        let addr = pretend_broker(|mut stream| async move {
            let (first, rest) = read_packet(&mut stream).await;
            assert_eq!(first >> 4, 3, "PUBLISH");
            let topic_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let pkid = [rest[2 + topic_len], rest[3 + topic_len]];
            // PUBACK, reason 0x87 (not authorized), no properties.
            stream
                .write_all(&[0x40, 0x03, pkid[0], pkid[1], 0x87])
                .await
                .unwrap();
            let _ = read_packet(&mut stream).await;
        })
        .await;
        let connection = connect(addr, &Credentials::default()).await.unwrap();
        let headers = headers("msg_pretend");
        let target = BrokerTarget::Mqtt {
            topic: "refused".into(),
        };
        let refused = connection
            .publish(&target, &message_for_pretend(&headers))
            .await
            .unwrap_err();
        assert_eq!(refused.class, "broker", "{refused:?}");
        assert!(refused.message.contains("NotAuthorized"), "{refused:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_that_went_away_fails_publishes_fast() {
        let (gone, is_gone) = oneshot::channel();
        let addr = pretend_broker(|stream| async move {
            drop(stream);
            let _ = gone.send(());
        })
        .await;
        let connection = connect(addr, &Credentials::default()).await.unwrap();
        is_gone.await.unwrap();
        let headers = headers("msg_pretend");
        let target = BrokerTarget::Mqtt {
            topic: "gone".into(),
        };
        for _ in 0..2 {
            let failed = tokio::time::timeout(
                Duration::from_secs(2),
                connection.publish(&target, &message_for_pretend(&headers)),
            )
            .await
            .expect("fails fast")
            .unwrap_err();
            assert_eq!(failed.class, "connect", "{failed:?}");
        }
    }

    #[test]
    fn pubacks_find_their_own_publish() {
        let mut waiters = Waiters::default();
        let mut answers = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            waiters.enqueue(tx).unwrap();
            answers.push(rx);
        }
        // The second is withdrawn before rumqttc got it; the others are sent as 7 and 8 and
        // acknowledged out of order.
        waiters.withdraw(1);
        waiters.sent(7);
        waiters.sent(8);
        waiters.acked(&PubAck::new(8, None));
        let mut refused = PubAck::new(7, None);
        refused.reason = PubAckReason::QuotaExceeded;
        waiters.acked(&refused);
        let mut answers = answers.into_iter();
        let first = answers.next().unwrap().try_recv().unwrap().unwrap_err();
        assert_eq!(first.class, "broker");
        assert!(answers.next().unwrap().try_recv().is_err(), "withdrawn");
        assert_eq!(
            answers.next().unwrap().try_recv().unwrap().unwrap(),
            "puback pkid 8"
        );
        assert!(waiters.queued.is_empty() && waiters.sent.is_empty());
    }

    #[test]
    fn a_broken_connection_fails_everything_waiting_and_later() {
        let mut waiters = Waiters::default();
        let (sent, sent_answer) = oneshot::channel();
        let (queued, queued_answer) = oneshot::channel();
        waiters.enqueue(sent).unwrap();
        waiters.enqueue(queued).unwrap();
        waiters.sent(1);
        waiters.fail_all("gone");
        for mut answer in [sent_answer, queued_answer] {
            assert_eq!(answer.try_recv().unwrap().unwrap_err().class, "connect");
        }
        let (later, _) = oneshot::channel();
        assert_eq!(waiters.enqueue(later).unwrap_err().class, "connect");
    }

    #[test]
    fn refused_credentials_are_auth_failures() {
        let addr: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        for code in [
            ConnectReturnCode::BadUserNamePassword,
            ConnectReturnCode::NotAuthorized,
        ] {
            assert_eq!(refusal(addr, code).class, "auth");
        }
        assert_eq!(
            refusal(addr, ConnectReturnCode::ServerUnavailable).class,
            "connect"
        );
    }
}
