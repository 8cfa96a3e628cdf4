//! Redis Streams deliveries (redis-rs): `XADD NAME [MAXLEN ~ N] * field value …`, a success when
//! it answers the new entry's id. The fields are `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, `content-type`, the subscription's custom headers, and `body`, the
//! envelope's bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use switchyard_core::destination::{BrokerAddress, BrokerTarget};

use super::{BrokerError, Connection, Credentials, Message};

struct Redis {
    /// Cloning a multiplexed connection shares it.
    connection: MultiplexedConnection,
}

pub(super) async fn connect(
    addr: SocketAddr,
    address: &BrokerAddress,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    let db = match &address.target {
        BrokerTarget::Redis { db, .. } => *db,
        _ => 0,
    };
    let mut settings = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(user) = credentials.user.as_deref().filter(|u| !u.is_empty()) {
        settings = settings.set_username(user);
    }
    if let Some(password) = &credentials.password {
        settings = settings.set_password(password);
    }
    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()
        .map_err(|e| BrokerError::connect(format!("bad Redis address {addr}: {e}")))?
        .set_redis_settings(settings);
    let client = redis::Client::open(info)
        .map_err(|e| BrokerError::connect(format!("bad Redis address {addr}: {e}")))?;
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| {
            if matches!(
                e.kind(),
                redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::Server(_)
            ) && e.to_string().to_ascii_uppercase().contains("AUTH")
            {
                BrokerError::auth(format!("Redis refused the credentials: {e}"))
            } else {
                BrokerError::connect(format!("cannot connect to Redis at {addr}: {e}"))
            }
        })?;
    Ok(Arc::new(Redis { connection }))
}

use redis::IntoConnectionInfo as _;

#[async_trait::async_trait]
impl Connection for Redis {
    async fn publish(
        &self,
        target: &BrokerTarget,
        message: &Message<'_>,
    ) -> Result<String, BrokerError> {
        let BrokerTarget::Redis { stream, maxlen, .. } = target else {
            return Err(BrokerError::refused("not a Redis address"));
        };
        let mut command = redis::cmd("XADD");
        command.arg(stream);
        if let Some(n) = maxlen {
            command.arg("MAXLEN").arg("~").arg(*n);
        }
        command.arg("*");
        for (name, value) in message.headers {
            command.arg(name.to_ascii_lowercase()).arg(value);
        }
        command.arg("body").arg(message.body);
        let mut connection = self.connection.clone();
        let id: String = command.query_async(&mut connection).await.map_err(|e| {
            if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                BrokerError::connect(format!("Redis went away: {e}"))
            } else {
                BrokerError::refused(format!("Redis refused XADD {stream}: {e}"))
            }
        })?;
        Ok(format!("entry {id}"))
    }
}
