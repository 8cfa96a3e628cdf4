//! AMQP deliveries (being written).

use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_core::destination::BrokerAddress;

use super::{BrokerError, Connection, Credentials};

pub(super) async fn connect(
    addr: SocketAddr,
    address: &BrokerAddress,
    credentials: &Credentials,
) -> Result<Arc<dyn Connection>, BrokerError> {
    let _ = (addr, address, credentials);
    Err(BrokerError::connect("AMQP delivery is not built yet"))
}
