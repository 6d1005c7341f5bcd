//! The Gateway split (imi's GatewayServerUtil, Workerman's GatewayWorker): gateway processes
//! hold the client connections and relay; business processes run the application's
//! [`Handler`](crate::Handler) and push through the gateways. A business process can be
//! restarted or redeployed without dropping a client, and gateways scale apart from logic.
//!
//! * A **gateway** is a server made with [`ServerConfig::gateway`](crate::ServerConfig::gateway):
//!   it listens for clients as any server does, and for business processes on its internal
//!   address ([`hub`]). Each client's events go to one business process (the next in turn
//!   when it opens; it stays with it while that one lives, and moves to another when it goes
//!   away); while none is connected, events wait up to a bound, then are dropped and counted.
//!   It carries out every facade call a business process makes on its clients.
//! * A **business process** is a server with
//!   [`BackendConfig::Gateway`](crate::BackendConfig::Gateway) and no listener: its facade
//!   reaches the gateways' clients as a cluster backend reaches other instances' (a gateway
//!   is an instance of the cluster that holds clients; the business process holds none), and
//!   its core loops run the handler for the events the gateways send ([`business`]).
//!
//! The protocol between them is in [`proto`].

pub(crate) mod business;
pub(crate) mod config;
mod forward;
pub(crate) mod hub;
pub(crate) mod proto;

use std::sync::Arc;

pub use config::{GatewayBackendConfig, GatewayConfig};
pub use forward::GatewayHandler;
pub use hub::GatewayHandle;

use crate::config::{GatewayRole, ServerConfig};
use crate::spec::ServerSpec;
use hub::Hub;

impl ServerConfig {
    /// Makes this server a gateway: its clients' events go to the business processes that
    /// connect to `gateway.internal_addr`, which run the application's handler; the gateway
    /// carries out what they ask. The runtime needs an instance number from 1 up
    /// ([`RuntimeBuilder::instance`](crate::RuntimeBuilder::instance)), unique among the
    /// gateways of a deployment: it is part of every client id.
    pub fn gateway(mut self, gateway: GatewayConfig) -> ServerSpec<GatewayHandler> {
        let hub = Arc::new(Hub::new(gateway));
        self.role = Some(GatewayRole(hub.clone()));
        self.handler(move |_| GatewayHandler::new(hub.clone()))
    }
}

/// The gateway of a server, where it is one.
pub(crate) fn hub_of(config: &ServerConfig) -> Option<Arc<Hub>> {
    config
        .role
        .as_ref()
        .and_then(|role| role.0.clone().downcast::<Hub>().ok())
}
