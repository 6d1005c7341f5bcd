//! The handler a gateway's core loops run: every client event goes to a business process,
//! which runs the application's handler for it.

use std::collections::HashMap;
use std::sync::Arc;

use super::hub::{Hub, Serving};
use super::proto;
use crate::codec::Message;
use crate::handler::{Context, Handler};
use crate::id::ClientId;

/// The handler of a gateway server (see [`ServerConfig::gateway`](crate::ServerConfig::gateway)):
/// it relays each client's open, messages and close to the business process serving that
/// client, in order.
#[derive(Debug)]
pub struct GatewayHandler {
    hub: Arc<Hub>,
    /// The business process serving each client of this core loop.
    serving: HashMap<ClientId, Serving>,
}

impl GatewayHandler {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        GatewayHandler {
            hub,
            serving: HashMap::new(),
        }
    }

    fn relay(&mut self, id: ClientId, frame: Vec<u8>) {
        let serving = self.serving.entry(id).or_default();
        self.hub.dispatch(serving, frame);
    }
}

impl Handler for GatewayHandler {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let mut frame = Vec::new();
        let (uri, headers) = ctx
            .request()
            .map_or(("", &[][..]), |r| (r.uri(), r.headers()));
        proto::open(ctx.client_id(), uri, headers, &mut frame);
        self.relay(ctx.client_id(), frame);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let mut frame = Vec::with_capacity(message.as_bytes().len() + 18);
        proto::data(
            ctx.client_id(),
            message.is_text(),
            message.as_bytes(),
            &mut frame,
        );
        self.relay(ctx.client_id(), frame);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>) {
        let mut frame = Vec::new();
        proto::closed(
            ctx.client_id(),
            ctx.flag().as_deref(),
            &ctx.groups(),
            &mut frame,
        );
        self.relay(ctx.client_id(), frame);
        self.serving.remove(&ctx.client_id());
    }
}
