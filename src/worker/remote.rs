//! A business process's core loop: the client events a gateway sends (see
//! [`crate::gateway`]) run the handler as a local connection's would, with a [`Context`] whose
//! calls go to the gateway that holds the client.

use std::panic::{AssertUnwindSafe, catch_unwind};

use log::error;

use super::Worker;
use crate::codec::Message;
use crate::conn::remote::RemoteConn;
use crate::handler::Context;
use crate::mailbox::RemoteEvent;
use crate::stats::bump;

impl Worker {
    /// The link to `gateway` broke: its clients are forgotten here, without `on_close` (they
    /// may still be connected, and come back through this process or another).
    pub(super) fn unlinked(&mut self, server: u16, gateway: u16) {
        if self.servers.get(server as usize).is_some() {
            self.remotes.retain(|id, _| id.instance() != gateway);
        }
    }

    /// Runs the handler for one client event from a gateway.
    pub(super) fn remote(&mut self, server: u16, event: RemoteEvent) {
        let Some(s) = self.servers.get_mut(server as usize) else {
            return;
        };
        let id = event.id();
        let counters = s.shared.counters(self.id);
        // A client may come to this process without its open (its business process went
        // away and it moved here): it is served from its next event on.
        let mut conn = self
            .remotes
            .remove(&id)
            .unwrap_or_else(|| RemoteConn::new(id));
        let handler = s.handler.handler();
        let mut keep = true;
        let outcome = catch_unwind(AssertUnwindSafe(|| match event {
            RemoteEvent::Open { request, .. } => {
                conn.request = request;
                let mut ctx = Context::remote(&mut conn, &s.shared, &s.facade, self.id);
                handler.on_open(&mut ctx);
            }
            RemoteEvent::Message {
                is_text, payload, ..
            } => {
                bump(&counters.messages_in, 1);
                let message = match (is_text, std::str::from_utf8(&payload)) {
                    (true, Ok(text)) => Message::Text(text),
                    _ => Message::Binary(&payload),
                };
                let mut ctx = Context::remote(&mut conn, &s.shared, &s.facade, self.id);
                handler.on_message(&mut ctx, message);
            }
            RemoteEvent::Closed { flag, groups, .. } => {
                keep = false;
                conn.gone = Some((flag, groups));
                let mut ctx = Context::remote(&mut conn, &s.shared, &s.facade, self.id);
                handler.on_close(&mut ctx);
            }
        }));
        if outcome.is_err() {
            bump(&counters.handler_panics, 1);
            error!("handler panicked on client {id} (held by a gateway); closing it");
            if keep {
                let _ = s.facade.close(id);
            }
        }
        if !s.shared.config.keep_request {
            conn.request = None;
        }
        if keep {
            self.remotes.insert(id, conn);
        }
    }
}
