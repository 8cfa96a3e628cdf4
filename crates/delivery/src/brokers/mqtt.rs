//! MQTT deliveries (being written).

use std::net::SocketAddr;
use std::sync::Arc;

use super::{BrokerError, Connection, Credentials};

pub(super) async fn connect(
    addr: SocketAddr,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    let _ = (addr, credentials);
    Err(BrokerError::connect("MQTT delivery is not built yet"))
}
